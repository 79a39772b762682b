/*
 * windows.h — the part of the Win32 <windows.h> that WSFC resource DLLs use, for Linux.
 *
 * One of halo's three compatibility headers (with clusapi.h and resapi.h in this directory): a
 * resource DLL source written from Microsoft's documentation builds unchanged with
 *
 *     cc -Wall -Wextra -Werror -shared -fPIC -pthread -I include/compat -o libmytype.so mytype.c
 *
 * Types keep Win32's sizes (DWORD and LONG are 32 bits, HANDLE and *_PTR are pointer-sized) and
 * wide strings are the C compiler's: WCHAR is wchar_t, so L"…" literals and the C library's wide
 * calls (wcslen, wcscmp, …) work. On Linux wchar_t holds UTF-32; how wide strings cross halo's
 * ABI is described at the top of resapi.h. Everything here is static inline or a macro: a plug-in
 * links nothing extra.
 *
 * Not covered: the GUI, COM, services, event objects and waits (WaitForSingleObject), file and
 * registry APIs other than the cluster ones in clusapi.h.
 */
#ifndef HALO_COMPAT_WINDOWS_H
#define HALO_COMPAT_WINDOWS_H

/* The helpers need POSIX (clocks, wcscasecmp); strict -std=c11 hides it unless asked for. */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Resource DLLs are Unicode builds. */
#ifndef UNICODE
#define UNICODE
#endif
#ifndef _UNICODE
#define _UNICODE
#endif

/* ---------------------------------------------------------------------------------------------
 * Calling conventions and declaration modifiers: Linux has one C calling convention.
 * ------------------------------------------------------------------------------------------- */
#define WINAPI
#define WINAPIV
#define APIENTRY
#define CALLBACK
#define NTAPI
#define STDAPICALLTYPE
#ifndef _stdcall
#define _stdcall
#endif
#ifndef __stdcall
#define __stdcall
#endif
#ifndef _cdecl
#define _cdecl
#endif
#ifndef __cdecl
#define __cdecl
#endif
#define CONST const
#define VOID void
#define IN
#define OUT
#define OPTIONAL
#define UNALIGNED
#define FORCEINLINE static inline
#define DECLSPEC_ALIGN(x) __attribute__((aligned(x)))
#define DECLSPEC_NOINLINE __attribute__((noinline))
#define DECLSPEC_NORETURN __attribute__((noreturn))
#define DECLSPEC_SELECTANY __attribute__((weak))
/* __declspec(dllexport) exports the symbol (also from -fvisibility=hidden builds). */
#define HALO_DECLSPEC_dllexport __attribute__((visibility("default")))
#define HALO_DECLSPEC_dllimport
#define HALO_DECLSPEC_noinline __attribute__((noinline))
#define HALO_DECLSPEC_noreturn __attribute__((noreturn))
#define HALO_DECLSPEC_selectany __attribute__((weak))
#define HALO_DECLSPEC_thread __thread
#define HALO_DECLSPEC_align(x) __attribute__((aligned(x)))
#define __declspec(x) HALO_DECLSPEC_##x

/* SAL annotations: documentation only. */
#define _In_
#define _In_opt_
#define _In_z_
#define _In_opt_z_
#define _Inout_
#define _Inout_opt_
#define _Inout_z_
#define _Out_
#define _Out_opt_
#define _Outptr_
#define _Outptr_opt_
#define _Outptr_result_maybenull_
#define _Outptr_result_z_
#define _Reserved_
#define _Check_return_
#define _Must_inspect_result_
#define _Use_decl_annotations_
#define _Ret_maybenull_
#define _Ret_z_
#define _Null_terminated_
#define _NullNull_terminated_
#define _Printf_format_string_
#define _Post_invalid_
#define _Frees_ptr_
#define _Frees_ptr_opt_
#define _Pre_
#define _Post_
#define _Success_(x)
#define _When_(c, a)
#define _At_(t, a)
#define _In_reads_(n)
#define _In_reads_opt_(n)
#define _In_reads_bytes_(n)
#define _In_reads_bytes_opt_(n)
#define _Out_writes_(n)
#define _Out_writes_opt_(n)
#define _Out_writes_z_(n)
#define _Out_writes_bytes_(n)
#define _Out_writes_bytes_opt_(n)
#define _Out_writes_to_(n, c)
#define _Out_writes_to_opt_(n, c)
#define _Out_writes_bytes_to_(n, c)
#define _Out_writes_bytes_to_opt_(n, c)
#define _Out_writes_bytes_all_(n)
#define _Out_writes_bytes_all_opt_(n)
#define _Inout_updates_(n)
#define _Inout_updates_bytes_(n)
#define _Field_size_(n)
#define _Field_size_bytes_(n)
#define _In_range_(a, b)
#define _Out_range_(a, b)
#define _Deref_out_range_(a, b)
#define _Ret_writes_bytes_maybenull_(n)
#define _Analysis_assume_(e)
#define __in
#define __in_opt
#define __out
#define __out_opt
#define __inout
#define __inout_opt
#define __reserved
#define __in_bcount(n)
#define __out_bcount(n)
#define __out_bcount_part(n, c)
#define __out_bcount_part_opt(n, c)
#define __in_bcount_opt(n)
#define __out_ecount(n)
#define __in_ecount(n)
#define __deref_out

/* ---------------------------------------------------------------------------------------------
 * Base types: Win32 sizes (LLP64: LONG and ULONG are 32 bits, *_PTR are pointer-sized).
 * ------------------------------------------------------------------------------------------- */
typedef int32_t BOOL, *PBOOL, *LPBOOL;
typedef uint8_t BOOLEAN, *PBOOLEAN;
typedef uint8_t BYTE, *PBYTE, *LPBYTE;
typedef uint8_t UCHAR, *PUCHAR;
typedef char CHAR, *PCHAR, *LPCH, *PCH;
typedef const char *LPCCH, *PCCH;
typedef int8_t INT8;
typedef uint8_t UINT8;
typedef int16_t SHORT, *PSHORT, INT16;
typedef uint16_t USHORT, *PUSHORT, WORD, *PWORD, *LPWORD, UINT16;
typedef int INT, *PINT, *LPINT;
typedef unsigned int UINT, *PUINT;
typedef int32_t LONG, *PLONG, *LPLONG, INT32, LONG32;
typedef uint32_t ULONG, *PULONG, DWORD, *PDWORD, *LPDWORD, UINT32, ULONG32, DWORD32;
typedef int64_t LONGLONG, *PLONGLONG, INT64, *PINT64, LONG64;
typedef uint64_t ULONGLONG, *PULONGLONG, UINT64, *PUINT64, ULONG64, DWORD64, *PDWORD64, DWORDLONG, *PDWORDLONG;
typedef intptr_t INT_PTR, *PINT_PTR, LONG_PTR, *PLONG_PTR, SSIZE_T;
typedef uintptr_t UINT_PTR, *PUINT_PTR, ULONG_PTR, *PULONG_PTR, DWORD_PTR, *PDWORD_PTR;
typedef size_t SIZE_T, *PSIZE_T;
typedef float FLOAT;
typedef double DOUBLE;
typedef void *PVOID, *LPVOID;
typedef const void *LPCVOID, *PCVOID;
typedef LONG HRESULT;
typedef DWORD ACCESS_MASK, *PACCESS_MASK;
typedef ACCESS_MASK REGSAM;
typedef DWORD LCID;
typedef WORD LANGID;
typedef BYTE BOOLEAN_8;

/* Narrow strings. */
typedef char *LPSTR, *PSTR, *NPSTR;
typedef const char *LPCSTR, *PCSTR;
/* Wide strings: the compiler's wchar_t, UTF-32 on Linux. */
typedef wchar_t WCHAR, *PWCHAR, *LPWCH, *PWCH, *LPWSTR, *PWSTR, *NWPSTR, **PZPWSTR;
typedef const wchar_t *LPCWCH, *PCWCH, *LPCWSTR, *PCWSTR, **PZPCWSTR;
typedef WCHAR *PNZWCH;
typedef const WCHAR *PCNZWCH;
typedef WCHAR TCHAR, *PTCHAR, *LPTSTR, *PTSTR;
typedef const WCHAR *LPCTSTR, *PCTSTR;
#define __TEXT(quote) L##quote
#define TEXT(quote) __TEXT(quote)
#ifndef _T
#define _T(quote) __TEXT(quote)
#endif
#ifndef _TEXT
#define _TEXT(quote) __TEXT(quote)
#endif

/* Handles. */
typedef void *HANDLE, **PHANDLE, **LPHANDLE;
typedef HANDLE HLOCAL, HGLOBAL, HMODULE, HINSTANCE, HWND;
#define INVALID_HANDLE_VALUE ((HANDLE)(LONG_PTR)-1)

typedef union _LARGE_INTEGER {
    struct {
        DWORD LowPart;
        LONG HighPart;
    };
    struct {
        DWORD LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER, *PLARGE_INTEGER;

typedef union _ULARGE_INTEGER {
    struct {
        DWORD LowPart;
        DWORD HighPart;
    };
    struct {
        DWORD LowPart;
        DWORD HighPart;
    } u;
    ULONGLONG QuadPart;
} ULARGE_INTEGER, *PULARGE_INTEGER;

typedef struct _FILETIME {
    DWORD dwLowDateTime;
    DWORD dwHighDateTime;
} FILETIME, *PFILETIME, *LPFILETIME;

typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID, *PGUID, *LPGUID, CLSID, UUID;

typedef PVOID PSECURITY_DESCRIPTOR;
typedef struct _SECURITY_ATTRIBUTES {
    DWORD nLength;
    LPVOID lpSecurityDescriptor;
    BOOL bInheritHandle;
} SECURITY_ATTRIBUTES, *PSECURITY_ATTRIBUTES, *LPSECURITY_ATTRIBUTES;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#define MAX_PATH 260
#define INFINITE 0xFFFFFFFF
#define ANYSIZE_ARRAY 1
#define MAXDWORD 0xffffffff
#define MAXLONG 0x7fffffff
#define MAXULONG 0xffffffff

/* ---------------------------------------------------------------------------------------------
 * Macros.
 * ------------------------------------------------------------------------------------------- */
#define UNREFERENCED_PARAMETER(P) ((void)(P))
#define DBG_UNREFERENCED_PARAMETER(P) ((void)(P))
#define DBG_UNREFERENCED_LOCAL_VARIABLE(V) ((void)(V))
#define UNREFERENCED_LOCAL_VARIABLE(V) ((void)(V))
#define FIELD_OFFSET(type, field) ((LONG)offsetof(type, field))
#define RTL_FIELD_SIZE(type, field) (sizeof(((type *)0)->field))
#define RTL_NUMBER_OF(a) (sizeof(a) / sizeof((a)[0]))
#define ARRAYSIZE(a) RTL_NUMBER_OF(a)
#ifndef _countof
#define _countof(a) RTL_NUMBER_OF(a)
#endif
#define CONTAINING_RECORD(address, type, field) ((type *)((char *)(address) - offsetof(type, field)))
#define ZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define RtlZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define SecureZeroMemory(Destination, Length) memset((Destination), 0, (Length))
#define FillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define RtlFillMemory(Destination, Length, Fill) memset((Destination), (Fill), (Length))
#define CopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#define RtlCopyMemory(Destination, Source, Length) memcpy((Destination), (Source), (Length))
#define MoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))
#define RtlMoveMemory(Destination, Source, Length) memmove((Destination), (Source), (Length))
#define RtlEqualMemory(A, B, Length) (!memcmp((A), (B), (Length)))
#define MAKEWORD(a, b) ((WORD)(((BYTE)((DWORD_PTR)(a) & 0xff)) | ((WORD)((BYTE)((DWORD_PTR)(b) & 0xff))) << 8))
#define MAKELONG(a, b) ((LONG)(((WORD)((DWORD_PTR)(a) & 0xffff)) | ((DWORD)((WORD)((DWORD_PTR)(b) & 0xffff))) << 16))
#define LOWORD(l) ((WORD)((DWORD_PTR)(l) & 0xffff))
#define HIWORD(l) ((WORD)((DWORD_PTR)(l) >> 16))
#define LOBYTE(w) ((BYTE)((DWORD_PTR)(w) & 0xff))
#define HIBYTE(w) ((BYTE)((DWORD_PTR)(w) >> 8))
#if !defined(NOMINMAX) && !defined(__cplusplus)
#ifndef max
#define max(a, b) (((a) > (b)) ? (a) : (b))
#endif
#ifndef min
#define min(a, b) (((a) < (b)) ? (a) : (b))
#endif
#endif

/* HRESULTs. */
#define S_OK ((HRESULT)0L)
#define S_FALSE ((HRESULT)1L)
#define E_FAIL ((HRESULT)0x80004005L)
#define E_OUTOFMEMORY ((HRESULT)0x8007000EL)
#define E_INVALIDARG ((HRESULT)0x80070057L)
#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#define FACILITY_WIN32 7
#define HRESULT_FROM_WIN32(x) \
    ((HRESULT)(x) <= 0 ? ((HRESULT)(x)) : ((HRESULT)(((x) & 0x0000FFFF) | (FACILITY_WIN32 << 16) | 0x80000000)))

/* ---------------------------------------------------------------------------------------------
 * Status codes (winerror.h values). halo_resapi.h carries the same numbers.
 * ------------------------------------------------------------------------------------------- */
#define NO_ERROR 0L
#define ERROR_SUCCESS 0L
#define ERROR_INVALID_FUNCTION 1L
#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_PATH_NOT_FOUND 3L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_BAD_FORMAT 11L
#define ERROR_INVALID_DATA 13L
#define ERROR_OUTOFMEMORY 14L
#define ERROR_NOT_READY 21L
#define ERROR_GEN_FAILURE 31L
#define ERROR_SHARING_VIOLATION 32L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_FILE_EXISTS 80L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_DISK_FULL 112L
#define ERROR_CALL_NOT_IMPLEMENTED 120L
#define ERROR_INSUFFICIENT_BUFFER 122L
#define ERROR_INVALID_NAME 123L
#define ERROR_MOD_NOT_FOUND 126L
#define ERROR_PROC_NOT_FOUND 127L
#define ERROR_BAD_ARGUMENTS 160L
#define ERROR_BUSY 170L
#define ERROR_ALREADY_EXISTS 183L
#define ERROR_MORE_DATA 234L
#define WAIT_TIMEOUT 258L
#define ERROR_NO_MORE_ITEMS 259L
#define ERROR_OPERATION_ABORTED 995L
#define ERROR_IO_INCOMPLETE 996L
#define ERROR_IO_PENDING 997L
#define ERROR_INVALID_FLAGS 1004L
#define ERROR_BADKEY 1010L
#define ERROR_CANTOPEN 1011L
#define ERROR_CANTREAD 1012L
#define ERROR_CANTWRITE 1013L
#define ERROR_SERVICE_REQUEST_TIMEOUT 1053L
#define ERROR_SERVICE_ALREADY_RUNNING 1056L
#define ERROR_CIRCULAR_DEPENDENCY 1059L
#define ERROR_SERVICE_DOES_NOT_EXIST 1060L
#define ERROR_SERVICE_NOT_ACTIVE 1062L
#define ERROR_NO_UNICODE_TRANSLATION 1113L
#define ERROR_NOT_FOUND 1168L
#define ERROR_RETRY 1237L
#define ERROR_NOT_AUTHENTICATED 1244L
#define ERROR_REVISION_MISMATCH 1306L
#define ERROR_TIMEOUT 1460L
#define ERROR_DEPENDENT_RESOURCE_EXISTS 5001L
#define ERROR_DEPENDENCY_NOT_FOUND 5002L
#define ERROR_DEPENDENCY_ALREADY_EXISTS 5003L
#define ERROR_RESOURCE_NOT_ONLINE 5004L
#define ERROR_HOST_NODE_NOT_AVAILABLE 5005L
#define ERROR_RESOURCE_NOT_AVAILABLE 5006L
#define ERROR_RESOURCE_NOT_FOUND 5007L
#define ERROR_SHUTDOWN_CLUSTER 5008L
#define ERROR_CANT_EVICT_ACTIVE_NODE 5009L
#define ERROR_OBJECT_ALREADY_EXISTS 5010L
#define ERROR_OBJECT_IN_LIST 5011L
#define ERROR_GROUP_NOT_AVAILABLE 5012L
#define ERROR_GROUP_NOT_FOUND 5013L
#define ERROR_GROUP_NOT_ONLINE 5014L
#define ERROR_HOST_NODE_NOT_RESOURCE_OWNER 5015L
#define ERROR_HOST_NODE_NOT_GROUP_OWNER 5016L
#define ERROR_RESMON_CREATE_FAILED 5017L
#define ERROR_RESMON_ONLINE_FAILED 5018L
#define ERROR_RESOURCE_ONLINE 5019L
#define ERROR_QUORUM_RESOURCE 5020L
#define ERROR_NOT_QUORUM_CAPABLE 5021L
#define ERROR_CLUSTER_SHUTTING_DOWN 5022L
#define ERROR_INVALID_STATE 5023L
#define ERROR_RESOURCE_PROPERTIES_STORED 5024L
#define ERROR_NOT_QUORUM_CLASS 5025L
#define ERROR_CORE_RESOURCE 5026L
#define ERROR_QUORUM_RESOURCE_ONLINE_FAILED 5027L
#define ERROR_QUORUMLOG_OPEN_FAILED 5028L
#define ERROR_CLUSTERLOG_CORRUPT 5029L
#define ERROR_NODE_NOT_AVAILABLE 5036L
#define ERROR_ALL_NODES_NOT_AVAILABLE 5037L
#define ERROR_RESOURCE_FAILED 5038L
#define ERROR_CLUSTER_INVALID_NODE 5039L
#define ERROR_CLUSTER_NODE_EXISTS 5040L
#define ERROR_CLUSTER_JOIN_IN_PROGRESS 5041L
#define ERROR_CLUSTER_NODE_NOT_FOUND 5042L
#define ERROR_CLUSTER_LOCAL_NODE_NOT_FOUND 5043L
#define ERROR_CLUSTER_NETWORK_EXISTS 5044L
#define ERROR_CLUSTER_NETWORK_NOT_FOUND 5045L
#define ERROR_CLUSTER_NODE_DOWN 5050L
#define ERROR_CLUSTER_NODE_ALREADY_UP 5056L
#define ERROR_CLUSTER_NODE_ALREADY_DOWN 5057L
#define ERROR_CLUSTER_NODE_ALREADY_MEMBER 5065L
#define ERROR_INVALID_OPERATION_ON_QUORUM 5068L
#define ERROR_DEPENDENCY_NOT_ALLOWED 5069L
#define ERROR_CLUSTER_NODE_PAUSED 5070L
#define ERROR_NODE_CANT_HOST_RESOURCE 5071L
#define ERROR_CLUSTER_NODE_NOT_READY 5072L
#define ERROR_CLUSTER_NODE_SHUTTING_DOWN 5073L
#define ERROR_CLUSTER_JOIN_ABORTED 5074L
#define ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND 5078L
#define ERROR_CLUSTER_RESTYPE_NOT_SUPPORTED 5079L
#define ERROR_CLUSTER_RESNAME_NOT_FOUND 5080L
#define ERROR_CLUSTER_NO_RPC_PACKAGES_REGISTERED 5081L
#define ERROR_CLUSTER_OWNER_NOT_IN_PREFLIST 5082L
#define ERROR_CLUSTER_DATABASE_SEQMISMATCH 5083L
#define ERROR_RESMON_INVALID_STATE 5084L
#define ERROR_CLUSTER_GUM_NOT_LOCKER 5085L
#define ERROR_QUORUM_DISK_NOT_FOUND 5086L
#define ERROR_DATABASE_BACKUP_CORRUPT 5087L
#define ERROR_CLUSTER_NODE_ALREADY_HAS_DFS_ROOT 5088L
#define ERROR_RESOURCE_PROPERTY_UNCHANGEABLE 5089L
#define ERROR_CLUSTER_GROUP_MOVING 5908L
#define ERROR_CLUSTER_RESOURCE_TYPE_BUSY 5909L
#define ERROR_RESOURCE_CALL_TIMED_OUT 5910L
#define ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS 5913L
#define ERROR_CLUSTER_NO_QUORUM 5925L
#define ERROR_DEPENDENCY_TREE_TOO_COMPLEX 5929L
#define ERROR_EXCEPTION_IN_RESOURCE_CALL 5930L
#define ERROR_CLUSTER_RHS_FAILED_INITIALIZATION 5931L
#define ERROR_CLUSTER_RESOURCE_PROVIDER_FAILED 5942L
#define ERROR_CLUSTER_RESOURCE_CONFIGURATION_ERROR 5943L
#define ERROR_CLUSTER_GROUP_BUSY 5944L
#define ERROR_CLUSTER_RESOURCE_VETOED_MOVE_INCOMPATIBLE_NODES 5953L
#define ERROR_CLUSTER_RESOURCE_VETOED_CALL 5955L
#define ERROR_RESMON_SYSTEM_RESOURCES_LACKING 5956L
#define ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_DESTINATION 5957L
#define ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_SOURCE 5958L
#define ERROR_CLUSTER_GROUP_QUEUED 5959L
#define ERROR_CLUSTER_RESOURCE_LOCKED_STATUS 5960L
#define ERROR_CLUSTER_NODE_DRAIN_IN_PROGRESS 5962L
#define ERROR_CLUSTER_RESOURCE_IS_IN_MAINTENANCE_MODE 5970L
#define ERROR_CLUSTER_AFFINITY_CONFLICT 5971L

#define WAIT_OBJECT_0 0L
#define WAIT_ABANDONED 0x80L
#define WAIT_FAILED ((DWORD)0xFFFFFFFF)

/* SetLastError/GetLastError keep the Win32 code in errno (thread-local), which is where halo
 * reads it after a failed Open. Call SetLastError last, right before returning NULL. */
static inline void SetLastError(DWORD dwErrCode) { errno = (int)dwErrCode; }
static inline DWORD GetLastError(void) { return (DWORD)errno; }

/* ---------------------------------------------------------------------------------------------
 * Memory: LocalAlloc and friends over malloc (a "handle" is the block's address).
 * ------------------------------------------------------------------------------------------- */
#define LMEM_FIXED 0x0000
#define LMEM_MOVEABLE 0x0002
#define LMEM_NOCOMPACT 0x0010
#define LMEM_NODISCARD 0x0020
#define LMEM_ZEROINIT 0x0040
#define LMEM_MODIFY 0x0080
#define LPTR (LMEM_FIXED | LMEM_ZEROINIT)
#define LHND (LMEM_MOVEABLE | LMEM_ZEROINIT)
#define NONZEROLHND LMEM_MOVEABLE
#define NONZEROLPTR LMEM_FIXED
#define GMEM_FIXED 0x0000
#define GMEM_MOVEABLE 0x0002
#define GMEM_ZEROINIT 0x0040
#define GPTR (GMEM_FIXED | GMEM_ZEROINIT)

static inline HLOCAL LocalAlloc(UINT uFlags, SIZE_T uBytes) {
    /* A zero-byte block is still a distinct, freeable block, as on Windows. */
    void *p = (uFlags & LMEM_ZEROINIT) ? calloc(1, uBytes ? uBytes : 1) : malloc(uBytes ? uBytes : 1);
    if (p == NULL) {
        SetLastError(ERROR_NOT_ENOUGH_MEMORY);
    }
    return p;
}
static inline HLOCAL LocalFree(HLOCAL hMem) {
    free(hMem);
    return NULL;
}
static inline HLOCAL LocalReAlloc(HLOCAL hMem, SIZE_T uBytes, UINT uFlags) {
    void *p;
    if (uFlags & LMEM_MODIFY) {
        return hMem;
    }
    p = realloc(hMem, uBytes ? uBytes : 1);
    if (p == NULL) {
        SetLastError(ERROR_NOT_ENOUGH_MEMORY);
    }
    return p;
}
static inline LPVOID LocalLock(HLOCAL hMem) { return hMem; }
static inline BOOL LocalUnlock(HLOCAL hMem) {
    (void)hMem;
    return FALSE;
}
static inline HGLOBAL GlobalAlloc(UINT uFlags, SIZE_T dwBytes) { return LocalAlloc(uFlags, dwBytes); }
static inline HGLOBAL GlobalFree(HGLOBAL hMem) { return LocalFree(hMem); }

/* The process heap: HeapAlloc/HeapFree over malloc. */
#define HEAP_ZERO_MEMORY 0x00000008
static inline HANDLE GetProcessHeap(void) { return (HANDLE)(LONG_PTR)1; }
static inline LPVOID HeapAlloc(HANDLE hHeap, DWORD dwFlags, SIZE_T dwBytes) {
    (void)hHeap;
    return LocalAlloc((dwFlags & HEAP_ZERO_MEMORY) ? LMEM_ZEROINIT : 0, dwBytes);
}
static inline BOOL HeapFree(HANDLE hHeap, DWORD dwFlags, LPVOID lpMem) {
    (void)hHeap;
    (void)dwFlags;
    free(lpMem);
    return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * Time and threads.
 * ------------------------------------------------------------------------------------------- */
static inline VOID Sleep(DWORD dwMilliseconds) {
    struct timespec t;
    t.tv_sec = (time_t)(dwMilliseconds / 1000);
    t.tv_nsec = (long)(dwMilliseconds % 1000) * 1000000L;
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}
static inline ULONGLONG GetTickCount64(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (ULONGLONG)t.tv_sec * 1000u + (ULONGLONG)t.tv_nsec / 1000000u;
}
static inline DWORD GetTickCount(void) { return (DWORD)GetTickCount64(); }
static inline DWORD GetCurrentProcessId(void) { return (DWORD)getpid(); }

/* CRITICAL_SECTION: a recursive mutex, as on Windows. */
typedef struct _CRITICAL_SECTION {
    pthread_mutex_t Mutex;
} CRITICAL_SECTION, *PCRITICAL_SECTION, *LPCRITICAL_SECTION;
static inline VOID InitializeCriticalSection(LPCRITICAL_SECTION lpCriticalSection) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&lpCriticalSection->Mutex, &attr);
    pthread_mutexattr_destroy(&attr);
}
static inline BOOL InitializeCriticalSectionAndSpinCount(LPCRITICAL_SECTION lpCriticalSection, DWORD dwSpinCount) {
    (void)dwSpinCount;
    InitializeCriticalSection(lpCriticalSection);
    return TRUE;
}
static inline VOID EnterCriticalSection(LPCRITICAL_SECTION lpCriticalSection) {
    pthread_mutex_lock(&lpCriticalSection->Mutex);
}
static inline BOOL TryEnterCriticalSection(LPCRITICAL_SECTION lpCriticalSection) {
    return pthread_mutex_trylock(&lpCriticalSection->Mutex) == 0;
}
static inline VOID LeaveCriticalSection(LPCRITICAL_SECTION lpCriticalSection) {
    pthread_mutex_unlock(&lpCriticalSection->Mutex);
}
static inline VOID DeleteCriticalSection(LPCRITICAL_SECTION lpCriticalSection) {
    pthread_mutex_destroy(&lpCriticalSection->Mutex);
}

/* Interlocked operations: sequentially consistent, like Windows' full barriers. */
static inline LONG InterlockedIncrement(LONG volatile *Addend) { return __atomic_add_fetch(Addend, 1, __ATOMIC_SEQ_CST); }
static inline LONG InterlockedDecrement(LONG volatile *Addend) { return __atomic_sub_fetch(Addend, 1, __ATOMIC_SEQ_CST); }
static inline LONG InterlockedExchange(LONG volatile *Target, LONG Value) {
    return __atomic_exchange_n(Target, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedExchangeAdd(LONG volatile *Addend, LONG Value) {
    return __atomic_fetch_add(Addend, Value, __ATOMIC_SEQ_CST);
}
static inline LONG InterlockedCompareExchange(LONG volatile *Destination, LONG Exchange, LONG Comparand) {
    __atomic_compare_exchange_n(Destination, &Comparand, Exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return Comparand;
}
static inline PVOID InterlockedExchangePointer(PVOID volatile *Target, PVOID Value) {
    return __atomic_exchange_n(Target, Value, __ATOMIC_SEQ_CST);
}
static inline PVOID InterlockedCompareExchangePointer(PVOID volatile *Destination, PVOID Exchange, PVOID Comparand) {
    __atomic_compare_exchange_n(Destination, &Comparand, Exchange, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return Comparand;
}

/* ---------------------------------------------------------------------------------------------
 * Wide strings. The C library's wide calls work as they are (wcslen, wcscmp, wcsncpy, swprintf
 * with %ls); these are the Win32 names DLL sources also use.
 * ------------------------------------------------------------------------------------------- */
static inline int lstrlenW(LPCWSTR lpString) { return lpString == NULL ? 0 : (int)wcslen(lpString); }
static inline int lstrcmpW(LPCWSTR lpString1, LPCWSTR lpString2) { return wcscmp(lpString1, lpString2); }
static inline int lstrcmpiW(LPCWSTR lpString1, LPCWSTR lpString2) { return wcscasecmp(lpString1, lpString2); }
static inline LPWSTR lstrcpyW(LPWSTR lpString1, LPCWSTR lpString2) { return wcscpy(lpString1, lpString2); }
static inline LPWSTR lstrcatW(LPWSTR lpString1, LPCWSTR lpString2) { return wcscat(lpString1, lpString2); }
static inline LPWSTR lstrcpynW(LPWSTR lpString1, LPCWSTR lpString2, int iMaxLength) {
    int i;
    if (iMaxLength <= 0) {
        return lpString1;
    }
    for (i = 0; i < iMaxLength - 1 && lpString2[i] != L'\0'; i++) {
        lpString1[i] = lpString2[i];
    }
    lpString1[i] = L'\0';
    return lpString1;
}
#define lstrlen lstrlenW
#define lstrcmp lstrcmpW
#define lstrcmpi lstrcmpiW
#define lstrcpy lstrcpyW
#define lstrcpyn lstrcpynW
#define lstrcat lstrcatW
#define _wcsicmp wcscasecmp
#define _wcsnicmp wcsncasecmp
#define _wcsdup wcsdup
#define _stricmp strcasecmp
#define _strnicmp strncasecmp

/* ---------------------------------------------------------------------------------------------
 * WideCharToMultiByte / MultiByteToWideChar. Every code page converts as UTF-8 (the Linux
 * locale's encoding); WideCharToMultiByte's default-character arguments are ignored.
 * ------------------------------------------------------------------------------------------- */
#define CP_ACP 0
#define CP_OEMCP 1
#define CP_MACCP 2
#define CP_THREAD_ACP 3
#define CP_UTF7 65000
#define CP_UTF8 65001
#define MB_PRECOMPOSED 0x00000001
#define MB_ERR_INVALID_CHARS 0x00000008
#define WC_COMPOSITECHECK 0x00000200
#define WC_NO_BEST_FIT_CHARS 0x00000400
#define WC_ERR_INVALID_CHARS 0x00000080

/* The UTF-8 bytes of one code point into Out (room for 4); their count. Invalid code points
 * (surrogates, above U+10FFFF) become U+FFFD, or 0 bytes with Strict. */
static inline int HaloUtf8Encode_(uint32_t c, unsigned char *Out, BOOL Strict) {
    if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
        if (Strict) {
            return 0;
        }
        c = 0xFFFD;
    }
    if (c < 0x80) {
        Out[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        Out[0] = (unsigned char)(0xC0 | (c >> 6));
        Out[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        Out[0] = (unsigned char)(0xE0 | (c >> 12));
        Out[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        Out[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    Out[0] = (unsigned char)(0xF0 | (c >> 18));
    Out[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    Out[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    Out[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Decodes one UTF-8 sequence at In (Len bytes left) into *Out; the bytes used, or 0 if the
 * sequence is invalid (then one byte should be skipped). */
static inline int HaloUtf8Decode_(const unsigned char *In, size_t Len, uint32_t *Out) {
    uint32_t c;
    int n, i;
    if (In[0] < 0x80) {
        *Out = In[0];
        return 1;
    } else if ((In[0] & 0xE0) == 0xC0) {
        n = 2;
        c = In[0] & 0x1F;
    } else if ((In[0] & 0xF0) == 0xE0) {
        n = 3;
        c = In[0] & 0x0F;
    } else if ((In[0] & 0xF8) == 0xF0) {
        n = 4;
        c = In[0] & 0x07;
    } else {
        return 0;
    }
    if ((size_t)n > Len) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((In[i] & 0xC0) != 0x80) {
            return 0;
        }
        c = (c << 6) | (In[i] & 0x3F);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF)) {
        return 0;
    }
    *Out = c;
    return n;
}

static inline int WideCharToMultiByte(UINT CodePage, DWORD dwFlags, LPCWSTR lpWideCharStr, int cchWideChar,
                                      LPSTR lpMultiByteStr, int cbMultiByte, LPCSTR lpDefaultChar,
                                      LPBOOL lpUsedDefaultChar) {
    size_t count, i, written = 0;
    unsigned char bytes[4];
    BOOL strict = (dwFlags & WC_ERR_INVALID_CHARS) != 0;
    (void)lpDefaultChar;
    if (lpUsedDefaultChar != NULL) {
        *lpUsedDefaultChar = FALSE;
    }
    if (CodePage == CP_UTF7 || lpWideCharStr == NULL || cchWideChar == 0 || cbMultiByte < 0 ||
        (cbMultiByte > 0 && lpMultiByteStr == NULL)) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return 0;
    }
    /* -1: the string and its terminator. */
    count = cchWideChar < 0 ? wcslen(lpWideCharStr) + 1 : (size_t)cchWideChar;
    for (i = 0; i < count; i++) {
        int n = HaloUtf8Encode_((uint32_t)lpWideCharStr[i], bytes, strict);
        if (n == 0) {
            SetLastError(ERROR_NO_UNICODE_TRANSLATION);
            return 0;
        }
        if (cbMultiByte > 0) {
            if (written + (size_t)n > (size_t)cbMultiByte) {
                SetLastError(ERROR_INSUFFICIENT_BUFFER);
                return 0;
            }
            memcpy(lpMultiByteStr + written, bytes, (size_t)n);
        }
        written += (size_t)n;
    }
    return (int)written;
}

static inline int MultiByteToWideChar(UINT CodePage, DWORD dwFlags, LPCCH lpMultiByteStr, int cbMultiByte,
                                      LPWSTR lpWideCharStr, int cchWideChar) {
    const unsigned char *in = (const unsigned char *)lpMultiByteStr;
    size_t count, i = 0, written = 0;
    if (CodePage == CP_UTF7 || lpMultiByteStr == NULL || cbMultiByte == 0 || cchWideChar < 0 ||
        (cchWideChar > 0 && lpWideCharStr == NULL)) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return 0;
    }
    count = cbMultiByte < 0 ? strlen(lpMultiByteStr) + 1 : (size_t)cbMultiByte;
    while (i < count) {
        uint32_t c;
        int n = HaloUtf8Decode_(in + i, count - i, &c);
        if (n == 0) {
            if (dwFlags & MB_ERR_INVALID_CHARS) {
                SetLastError(ERROR_NO_UNICODE_TRANSLATION);
                return 0;
            }
            c = 0xFFFD;
            n = 1;
        }
        if (cchWideChar > 0) {
            if (written >= (size_t)cchWideChar) {
                SetLastError(ERROR_INSUFFICIENT_BUFFER);
                return 0;
            }
            lpWideCharStr[written] = (WCHAR)c;
        }
        written++;
        i += (size_t)n;
    }
    return (int)written;
}

/* ---------------------------------------------------------------------------------------------
 * Registry constants (winnt.h values), for the cluster registry calls in clusapi.h.
 * ------------------------------------------------------------------------------------------- */
#define REG_NONE 0
#define REG_SZ 1
#define REG_EXPAND_SZ 2
#define REG_BINARY 3
#define REG_DWORD 4
#define REG_DWORD_LITTLE_ENDIAN 4
#define REG_DWORD_BIG_ENDIAN 5
#define REG_LINK 6
#define REG_MULTI_SZ 7
#define REG_RESOURCE_LIST 8
#define REG_FULL_RESOURCE_DESCRIPTOR 9
#define REG_RESOURCE_REQUIREMENTS_LIST 10
#define REG_QWORD 11
#define REG_QWORD_LITTLE_ENDIAN 11

#define DELETE 0x00010000L
#define READ_CONTROL 0x00020000L
#define WRITE_DAC 0x00040000L
#define WRITE_OWNER 0x00080000L
#define SYNCHRONIZE 0x00100000L
#define STANDARD_RIGHTS_REQUIRED 0x000F0000L
#define STANDARD_RIGHTS_READ READ_CONTROL
#define STANDARD_RIGHTS_WRITE READ_CONTROL
#define STANDARD_RIGHTS_EXECUTE READ_CONTROL
#define STANDARD_RIGHTS_ALL 0x001F0000L
#define GENERIC_READ 0x80000000L
#define GENERIC_WRITE 0x40000000L
#define GENERIC_EXECUTE 0x20000000L
#define GENERIC_ALL 0x10000000L
#define MAXIMUM_ALLOWED 0x02000000L

#define KEY_QUERY_VALUE 0x0001
#define KEY_SET_VALUE 0x0002
#define KEY_CREATE_SUB_KEY 0x0004
#define KEY_ENUMERATE_SUB_KEYS 0x0008
#define KEY_NOTIFY 0x0010
#define KEY_CREATE_LINK 0x0020
#define KEY_WOW64_32KEY 0x0200
#define KEY_WOW64_64KEY 0x0100
#define KEY_WOW64_RES 0x0300
#define KEY_READ ((STANDARD_RIGHTS_READ | KEY_QUERY_VALUE | KEY_ENUMERATE_SUB_KEYS | KEY_NOTIFY) & (~SYNCHRONIZE))
#define KEY_WRITE ((STANDARD_RIGHTS_WRITE | KEY_SET_VALUE | KEY_CREATE_SUB_KEY) & (~SYNCHRONIZE))
#define KEY_EXECUTE ((KEY_READ) & (~SYNCHRONIZE))
#define KEY_ALL_ACCESS                                                                                      \
    ((STANDARD_RIGHTS_ALL | KEY_QUERY_VALUE | KEY_SET_VALUE | KEY_CREATE_SUB_KEY | KEY_ENUMERATE_SUB_KEYS | \
      KEY_NOTIFY | KEY_CREATE_LINK) &                                                                       \
     (~SYNCHRONIZE))
#define REG_OPTION_RESERVED 0x00000000L
#define REG_OPTION_NON_VOLATILE 0x00000000L
#define REG_OPTION_VOLATILE 0x00000001L
#define REG_CREATED_NEW_KEY 0x00000001L
#define REG_OPENED_EXISTING_KEY 0x00000002L

/* A registry key handle. halo implements keys over a resource's properties (see clusapi.h). */
typedef struct HKEY__ *HKEY, **PHKEY;

/* DllMain reasons: halo does not call DllMain; initialise in Startup instead. */
#define DLL_PROCESS_ATTACH 1
#define DLL_THREAD_ATTACH 2
#define DLL_THREAD_DETACH 3
#define DLL_PROCESS_DETACH 0

#ifdef __cplusplus
}
#endif

#endif /* HALO_COMPAT_WINDOWS_H */
