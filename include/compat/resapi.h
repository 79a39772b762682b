/*
 * resapi.h — the resource-DLL API of WSFC (the Win32 <resapi.h>), for halo on Linux.
 *
 * A resource DLL source written from Microsoft's documentation includes <windows.h>,
 * <clusapi.h> and <resapi.h> and builds unchanged against this directory:
 *
 *     cc -Wall -Wextra -Werror -shared -fPIC -pthread -I include/compat -o libmytype.so mytype.c
 *
 * Entry points, tables, callbacks, status structures, flags, RESUTIL_PROPERTY_ITEM and the
 * ResUtil/ClusWorker helpers keep the SDK's names, values, layouts and meanings. The helpers are
 * static inline here, so a plug-in links nothing extra. halo negotiates CLRES_VERSION_V1_00 and
 * CLRES_VERSION_V2_00 (synchronous ResourceControl), as with include/halo_resapi.h.
 *
 * WIDE STRINGS: HOW THEY CROSS HALO'S ABI
 *
 * On Linux, WCHAR is the compiler's wchar_t: 4 bytes, holding UTF-32 code points. Including this
 * header defines a weak exported symbol, HaloResApiWideStrings (its value: sizeof(WCHAR)). When
 * halo loads a plug-in it looks that symbol up; if present, the plug-in is "wide" and halo
 * converts at the boundary, so the plug-in sees wchar_t everywhere Windows would give it WCHAR:
 *
 *   - Startup/StartupEx ResourceType, ResourceTypeControl's ResourceTypeName, OpenV2's
 *     ResourceName and OfflineV2's DestinationNodeName arrive as NUL-terminated wchar_t strings
 *     (halo's UTF-8 converted to UTF-32).
 *   - LogEvent takes a wide FormatString with FormatMessage inserts: %1 … %99, each optionally
 *     followed by !printf-spec! (%1!u!, %2!ws!, %3!s!, %4!08x!, %5!I64u!, …; the default is !s!,
 *     and s, ls and ws are wide strings, hs and S narrow ones), and the escapes %% %n %r %t %b %.
 *     %! and %0. The text reaches halo's log as UTF-8, one entry of at most 500 characters, with
 *     trailing line breaks dropped.
 *   - The key Open receives is an HKEY: ClusterRegOpenKey(Key, L"Parameters", …) gives the
 *     resource's private properties with registry semantics (see clusapi.h).
 *   - Control-code buffers that Windows defines as holding strings are converted both ways
 *     between halo's wire form (property lists with UTF-16LE strings) and the plug-in's form
 *     (the same layout with wchar_t strings, cbLength counting 4 bytes per character): property
 *     lists for the GET/SET/VALIDATE_*_PROPERTIES and *_PROPERTY_FMTS codes and OnlineV2/
 *     OfflineV2's InBuffer, NUL-separated name lists for ENUM_*_PROPERTIES and
 *     GET_REGISTRY_CHECKPOINTS, value lists for GET_REQUIRED_DEPENDENCIES, and single strings for
 *     GET_NAME, GET_ID, GET_RESOURCE_TYPE, SET_NAME and the registry-checkpoint codes. The plug-in
 *     reports sizes (BytesReturned, ERROR_MORE_DATA) in its own form; halo reports the size of
 *     the converted output to the caller. User-defined codes (CLUSCTL_USER_CODE) and every other
 *     buffer pass through byte for byte: the plug-in and its callers agree on those bytes.
 *
 * A plug-in built against include/halo_resapi.h exports no such symbol and keeps halo's narrow
 * ABI: UTF-8 strings, printf-style LogEvent, HALO_PARAMETERS, buffers as on the wire.
 */
#ifndef HALO_COMPAT_RESAPI_H
#define HALO_COMPAT_RESAPI_H

#include <windows.h>
#include <clusapi.h>

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The marker halo's loader looks up (see above). Weak, so every translation unit may define it. */
#ifdef __cplusplus
extern
#endif
    __attribute__((weak, visibility("default"))) const DWORD HaloResApiWideStrings = (DWORD)sizeof(WCHAR);

/* The plug-in's per-resource pointer, returned by Open and passed to every entry point. */
typedef PVOID RESID;
/* halo's handle for one resource, given at Open and passed back to the callbacks. */
typedef HANDLE RESOURCE_HANDLE;

typedef enum LOG_LEVEL { LOG_INFORMATION = 0, LOG_WARNING = 1, LOG_ERROR = 2, LOG_SEVERE = 3 } LOG_LEVEL, *PLOG_LEVEL;

typedef enum _RESOURCE_EXIT_STATE {
    ResourceExitStateContinue = 0,
    ResourceExitStateTerminate = 1,
    ResourceExitStateMax = 2
} RESOURCE_EXIT_STATE;

typedef enum _FAILURE_TYPE {
    FAILURE_TYPE_GENERAL = 0,
    FAILURE_TYPE_EMBEDDED = 1,
    FAILURE_TYPE_NETWORK_LOSS = 2
} FAILURE_TYPE, *PFAILURE_TYPE;

typedef enum CLUSTER_RESOURCE_APPLICATION_STATE {
    ClusterResourceApplicationStateUnknown = 1,
    ClusterResourceApplicationOSHeartBeat = 2,
    ClusterResourceApplicationReady = 3
} CLUSTER_RESOURCE_APPLICATION_STATE;

#define ClusterResourceCannotComeOnlineOnThisNode ((CLUSTER_RESOURCE_STATE)(ClusterResourcePending - 1))
#define ClusterResourceCannotComeOnlineOnAnyNode ((CLUSTER_RESOURCE_STATE)(ClusterResourcePending - 2))

#define CLUS_RESDLL_OPEN_RECOVER_MONITOR_STATE                 0x00000001
#define CLUS_RESDLL_OPEN_DONT_DELETE_TEMP_DISK                 0x00000002

#define CLUS_RESDLL_ONLINE_RECOVER_MONITOR_STATE               0x00000001
#define CLUS_RESDLL_ONLINE_IGNORE_RESOURCE_STATUS              0x00000002
#define CLUS_RESDLL_ONLINE_RETURN_TO_SOURCE_NODE_ON_ERROR      0x00000004
#define CLUS_RESDLL_ONLINE_RESTORE_ONLINE_STATE                0x00000008
#define CLUS_RESDLL_ONLINE_IGNORE_NETWORK_CONNECTIVITY         0x00000010

#define CLUS_RESDLL_OFFLINE_IGNORE_RESOURCE_STATUS                     0x00000001
#define CLUS_RESDLL_OFFLINE_RETURN_TO_SOURCE_NODE_ON_ERROR             0x00000002
#define CLUS_RESDLL_OFFLINE_QUEUE_ENABLED                              0x00000004
#define CLUS_RESDLL_OFFLINE_RETURNING_TO_SOURCE_NODE_BECAUSE_OF_ERROR  0x00000008
#define CLUS_RESDLL_OFFLINE_DUE_TO_EMBEDDED_FAILURE                    0x00000010
#define CLUS_RESDLL_OFFLINE_IGNORE_NETWORK_CONNECTIVITY                0x00000020
#define CLUS_RESDLL_OFFLINE_DO_NOT_UPDATE_PERSISTENT_STATE             0x00000040

#define CLUSRESDLL_STATUS_OFFLINE_BUSY                         0x00000001
#define CLUSRESDLL_STATUS_OFFLINE_SOURCE_THROTTLED             0x00000002
#define CLUSRESDLL_STATUS_OFFLINE_DESTINATION_THROTTLED        0x00000004
#define CLUSRESDLL_STATUS_OFFLINE_DESTINATION_REJECTED         0x00000008
#define CLUSRESDLL_STATUS_INSUFFICIENT_MEMORY                  0x00000010
#define CLUSRESDLL_STATUS_INSUFFICIENT_PROCESSOR               0x00000020
#define CLUSRESDLL_STATUS_INSUFFICIENT_OTHER_RESOURCES         0x00000040
#define CLUSRESDLL_STATUS_INVALID_PARAMETERS                   0x00000080
#define CLUSRESDLL_STATUS_NETWORK_NOT_AVAILABLE                0x00000100
#define CLUSRESDLL_STATUS_DO_NOT_COLLECT_WER_REPORT            0x40000000
#define CLUSRESDLL_STATUS_DUMP_NOW                             0x80000000

#define LOCKED_MODE_FLAGS_DONT_REMOVE_FROM_MOVE_QUEUE          0x00000001

/* ---------------------------------------------------------------------------------------------
 * Status structures.
 * ------------------------------------------------------------------------------------------- */
typedef struct RESOURCE_STATUS {
    CLUSTER_RESOURCE_STATE ResourceState;
    DWORD CheckPoint;
    DWORD WaitHint;     /* unused */
    HANDLE EventHandle; /* Linux: not waited on; leave it NULL and call SignalFailure */
} RESOURCE_STATUS, *PRESOURCE_STATUS;

/* Note the different field order from RESOURCE_STATUS: WaitHint moved to the end. */
typedef struct RESOURCE_STATUS_EX {
    CLUSTER_RESOURCE_STATE ResourceState;
    DWORD CheckPoint;
    HANDLE EventHandle; /* Linux: not waited on */
    DWORD ApplicationSpecificErrorCode;
    DWORD Flags; /* CLUSRESDLL_STATUS_* */
    DWORD WaitHint;
} RESOURCE_STATUS_EX, *PRESOURCE_STATUS_EX;

#define ResUtilInitializeResourceStatus(_resource_status_) ZeroMemory((_resource_status_), sizeof(RESOURCE_STATUS))
#define ResUtilInitializeResourceStatusEx(_resource_status_) \
    ZeroMemory((_resource_status_), sizeof(RESOURCE_STATUS_EX))

/* ---------------------------------------------------------------------------------------------
 * Callbacks the monitor (halo's host) provides.
 * ------------------------------------------------------------------------------------------- */
/* FormatString: FormatMessage inserts (see the top of this file). */
typedef VOID(_stdcall *PLOG_EVENT_ROUTINE)(RESOURCE_HANDLE ResourceHandle, LOG_LEVEL LogLevel, LPCWSTR FormatString,
                                           ...);
/* Returns a RESOURCE_EXIT_STATE: ResourceExitStateTerminate means stop the worker now. */
typedef DWORD(_stdcall *PSET_RESOURCE_STATUS_ROUTINE)(RESOURCE_HANDLE ResourceHandle, PRESOURCE_STATUS ResourceStatus);
typedef DWORD(_stdcall *PSET_RESOURCE_STATUS_ROUTINE_EX)(RESOURCE_HANDLE ResourceHandle,
                                                         PRESOURCE_STATUS_EX ResourceStatus);
typedef DWORD(_stdcall *PSET_RESOURCE_LOCKED_MODE_ROUTINE)(RESOURCE_HANDLE ResourceHandle, BOOL LockedModeEnabled,
                                                           DWORD LockedModeReason);
typedef DWORD(_stdcall *PSIGNAL_FAILURE_ROUTINE)(RESOURCE_HANDLE ResourceHandle, FAILURE_TYPE FailureType,
                                                 DWORD ApplicationSpecificErrorCode);
typedef DWORD(_stdcall *PSET_RESOURCE_INMEMORY_NODELOCAL_PROPERTIES_ROUTINE)(RESOURCE_HANDLE ResourceHandle,
                                                                             PBYTE propertyListBuffer,
                                                                             DWORD propertyListBufferSize);
typedef INT64 PRES_CTL_CTX;
typedef INT64 PRESTYPE_CTL_CTX;
typedef DWORD(_stdcall *PEND_CONTROL_CALL)(const PRES_CTL_CTX context, DWORD status);
typedef DWORD(_stdcall *PEND_TYPE_CONTROL_CALL)(const PRESTYPE_CTL_CTX context, DWORD status);
typedef DWORD(_stdcall *PEXTEND_RES_CONTROL_CALL)(const PRES_CTL_CTX context, DWORD newTimeoutInMs);
typedef DWORD(_stdcall *PEXTEND_RES_TYPE_CONTROL_CALL)(const PRESTYPE_CTL_CTX context, DWORD newTimeoutInMs);
typedef DWORD(_stdcall *PRAISE_RES_TYPE_NOTIFICATION)(LPCWSTR ResourceType, const PBYTE pPayload, DWORD payloadSize);
typedef DWORD(_stdcall *PCHANGE_RESOURCE_PROCESS_FOR_DUMPS)(RESOURCE_HANDLE resource, LPCWSTR processName,
                                                            DWORD processId, BOOL isAdd);
typedef DWORD(_stdcall *PCHANGE_RES_TYPE_PROCESS_FOR_DUMPS)(LPCWSTR resourceTypeName, LPCWSTR processName,
                                                            DWORD processId, BOOL isAdd);
typedef DWORD(_stdcall *PSET_INTERNAL_STATE)(RESOURCE_HANDLE ResourceHandle,
                                             CLUSTER_RESOURCE_APPLICATION_STATE stateType, BOOL active);
typedef DWORD(_stdcall *PSET_RESOURCE_LOCKED_MODE_EX_ROUTINE)(RESOURCE_HANDLE ResourceHandle, BOOL LockedModeEnabled,
                                                              DWORD LockedModeReason, DWORD LockedModeFlags);
typedef DWORD(_stdcall *PREQUEST_DUMP_ROUTINE)(RESOURCE_HANDLE ResourceHandle, BOOL DumpDueToCallInProgress,
                                               DWORD DumpDelayInMs);
typedef DWORD(_stdcall *PSET_RESOURCE_WPR_POLICY_ROUTINE)(RESOURCE_HANDLE ResourceHandle, DWORD WprPolicyFlags);
typedef DWORD(_stdcall *PARM_WPR_WATCHDOG_FOR_CURRENT_RESOURCE_CALL_ROUTINE)(RESOURCE_HANDLE ResourceHandle,
                                                                            ULONGLONG TimeoutInMs);
typedef VOID(_stdcall *PQUORUM_RESOURCE_LOST)(RESOURCE_HANDLE Resource);

/* Given to StartupEx. halo implements LogEvent, SetResourceStatusEx, SetResourceLockedMode(Ex),
 * SignalFailure and SetResourceInMemoryNodeLocalProperties; the control-call members answer
 * ERROR_INVALID_PARAMETER (halo negotiates V2) and the rest ERROR_NOT_SUPPORTED. */
typedef struct CLRES_CALLBACK_FUNCTION_TABLE {
    PLOG_EVENT_ROUTINE LogEvent;
    PSET_RESOURCE_STATUS_ROUTINE_EX SetResourceStatusEx;
    PSET_RESOURCE_LOCKED_MODE_ROUTINE SetResourceLockedMode;
    PSIGNAL_FAILURE_ROUTINE SignalFailure;
    PSET_RESOURCE_INMEMORY_NODELOCAL_PROPERTIES_ROUTINE SetResourceInMemoryNodeLocalProperties;
    PEND_CONTROL_CALL EndControlCall;
    PEND_TYPE_CONTROL_CALL EndTypeControlCall;
    PEXTEND_RES_CONTROL_CALL ExtendControlCall;
    PEXTEND_RES_TYPE_CONTROL_CALL ExtendTypeControlCall;
    PRAISE_RES_TYPE_NOTIFICATION RaiseResTypeNotification;
    PCHANGE_RESOURCE_PROCESS_FOR_DUMPS ChangeResourceProcessForDumps;
    PCHANGE_RES_TYPE_PROCESS_FOR_DUMPS ChangeResTypeProcessForDumps;
    PSET_INTERNAL_STATE SetInternalState;
    PSET_RESOURCE_LOCKED_MODE_EX_ROUTINE SetResourceLockedModeEx;
    PREQUEST_DUMP_ROUTINE RequestDump;
    PSET_RESOURCE_WPR_POLICY_ROUTINE SetResourceWprPolicy;
    PARM_WPR_WATCHDOG_FOR_CURRENT_RESOURCE_CALL_ROUTINE ArmWprWatchdogForCurrentResourceCall;
} CLRES_CALLBACK_FUNCTION_TABLE, *PCLRES_CALLBACK_FUNCTION_TABLE;

/* ---------------------------------------------------------------------------------------------
 * Entry points the plug-in provides. Every call but Terminate must return within 300 ms;
 * longer work goes to a worker (ClusWorkerCreate) and the call returns ERROR_IO_PENDING.
 * ------------------------------------------------------------------------------------------- */
typedef RESID(_stdcall *POPEN_ROUTINE)(LPCWSTR ResourceName, HKEY ResourceKey, RESOURCE_HANDLE ResourceHandle);
typedef RESID(_stdcall *POPEN_V2_ROUTINE)(LPCWSTR ResourceName, HKEY ResourceKey, RESOURCE_HANDLE ResourceHandle,
                                          DWORD OpenFlags);
typedef VOID(_stdcall *PCLOSE_ROUTINE)(RESID Resource);
typedef DWORD(_stdcall *PONLINE_ROUTINE)(RESID Resource, LPHANDLE EventHandle);
typedef DWORD(_stdcall *PONLINE_V2_ROUTINE)(RESID Resource, LPHANDLE EventHandle, DWORD OnlineFlags, PBYTE InBuffer,
                                            DWORD InBufferSize, DWORD Reserved);
typedef DWORD(_stdcall *POFFLINE_ROUTINE)(RESID Resource);
typedef DWORD(_stdcall *POFFLINE_V2_ROUTINE)(RESID Resource, LPCWSTR DestinationNodeName, DWORD OfflineFlags,
                                             PBYTE InBuffer, DWORD InBufferSize, DWORD Reserved);
typedef VOID(_stdcall *PTERMINATE_ROUTINE)(RESID Resource);
typedef BOOL(_stdcall *PIS_ALIVE_ROUTINE)(RESID Resource);
typedef BOOL(_stdcall *PLOOKS_ALIVE_ROUTINE)(RESID Resource);
typedef DWORD(_stdcall *PARBITRATE_ROUTINE)(RESID Resource, PQUORUM_RESOURCE_LOST LostQuorumResource);
typedef DWORD(_stdcall *PRELEASE_ROUTINE)(RESID Resource);
typedef DWORD(_stdcall *PRESOURCE_CONTROL_ROUTINE)(RESID Resource, DWORD ControlCode, PVOID InBuffer,
                                                   DWORD InBufferSize, PVOID OutBuffer, DWORD OutBufferSize,
                                                   LPDWORD BytesReturned);
typedef DWORD(_stdcall *PRESOURCE_TYPE_CONTROL_ROUTINE)(LPCWSTR ResourceTypeName, DWORD ControlCode, PVOID InBuffer,
                                                        DWORD InBufferSize, PVOID OutBuffer, DWORD OutBufferSize,
                                                        LPDWORD BytesReturned);
typedef DWORD(_stdcall *PCANCEL_ROUTINE)(RESID Resource, DWORD CancelFlags_RESERVED);

#define CLRES_VERSION_V1_00 0x100
#define CLRES_VERSION_V2_00 0x200
#define CLRES_VERSION_V3_00 0x300 /* not accepted by halo */
#define CLRES_VERSION_V4_00 0x400 /* not accepted by halo */

typedef struct CLRES_V1_FUNCTIONS {
    POPEN_ROUTINE Open;
    PCLOSE_ROUTINE Close;
    PONLINE_ROUTINE Online;
    POFFLINE_ROUTINE Offline;
    PTERMINATE_ROUTINE Terminate;
    PLOOKS_ALIVE_ROUTINE LooksAlive;
    PIS_ALIVE_ROUTINE IsAlive;
    PARBITRATE_ROUTINE Arbitrate;
    PRELEASE_ROUTINE Release;
    PRESOURCE_CONTROL_ROUTINE ResourceControl;
    PRESOURCE_TYPE_CONTROL_ROUTINE ResourceTypeControl;
} CLRES_V1_FUNCTIONS, *PCLRES_V1_FUNCTIONS;

typedef struct CLRES_V2_FUNCTIONS {
    POPEN_V2_ROUTINE Open;
    PCLOSE_ROUTINE Close;
    PONLINE_V2_ROUTINE Online;
    POFFLINE_V2_ROUTINE Offline;
    PTERMINATE_ROUTINE Terminate;
    PLOOKS_ALIVE_ROUTINE LooksAlive;
    PIS_ALIVE_ROUTINE IsAlive;
    PARBITRATE_ROUTINE Arbitrate;
    PRELEASE_ROUTINE Release;
    PRESOURCE_CONTROL_ROUTINE ResourceControl;
    PRESOURCE_TYPE_CONTROL_ROUTINE ResourceTypeControl;
    PCANCEL_ROUTINE Cancel;
} CLRES_V2_FUNCTIONS, *PCLRES_V2_FUNCTIONS;

#define CLRES_V1_FUNCTION_SIZE sizeof(CLRES_V1_FUNCTIONS)
#define CLRES_V2_FUNCTION_SIZE sizeof(CLRES_V2_FUNCTIONS)

typedef struct CLRES_FUNCTION_TABLE {
    DWORD TableSize;
    DWORD Version;
    union {
        CLRES_V1_FUNCTIONS V1Functions;
        CLRES_V2_FUNCTIONS V2Functions;
    };
} CLRES_FUNCTION_TABLE, *PCLRES_FUNCTION_TABLE;

#define CLRES_V1_FUNCTION_TABLE(_Name, _Version, _Prefix, _Arbitrate, _Release, _ResControl, _ResTypeControl) \
    CLRES_FUNCTION_TABLE _Name = {CLRES_V1_FUNCTION_SIZE,                                                    \
                                  _Version,                                                                  \
                                  {{_Prefix##Open, _Prefix##Close, _Prefix##Online, _Prefix##Offline,        \
                                    _Prefix##Terminate, _Prefix##LooksAlive, _Prefix##IsAlive, _Arbitrate,   \
                                    _Release, _ResControl, _ResTypeControl}}}

#define CLRES_V2_FUNCTION_TABLE_SET(_Name, _Version, _Prefix, _Arbitrate, _Release, _ResControl, _ResTypeControl, \
                                    _LooksAlive, _IsAlive, _Cancel)                                                \
    _Name.TableSize = CLRES_V2_FUNCTION_SIZE;                                                                       \
    _Name.Version = _Version;                                                                                       \
    _Name.V2Functions.Open = _Prefix##OpenV2;                                                                       \
    _Name.V2Functions.Close = _Prefix##Close;                                                                       \
    _Name.V2Functions.Online = _Prefix##OnlineV2;                                                                   \
    _Name.V2Functions.Offline = _Prefix##OfflineV2;                                                                 \
    _Name.V2Functions.Terminate = _Prefix##Terminate;                                                               \
    _Name.V2Functions.LooksAlive = _LooksAlive;                                                                     \
    _Name.V2Functions.IsAlive = _IsAlive;                                                                           \
    _Name.V2Functions.Arbitrate = _Arbitrate;                                                                       \
    _Name.V2Functions.Release = _Release;                                                                           \
    _Name.V2Functions.ResourceControl = _ResControl;                                                                \
    _Name.V2Functions.ResourceTypeControl = _ResTypeControl;                                                        \
    _Name.V2Functions.Cancel = _Cancel;

/* Exported by the plug-in (default visibility). halo calls StartupEx if present, else Startup,
 * with MinVersionSupported = CLRES_VERSION_V1_00 and MaxVersionSupported = CLRES_VERSION_V2_00. */
#define STARTUP_ROUTINE "Startup"
#define STARTUP_EX_ROUTINE "StartupEx"
typedef DWORD(_stdcall *PSTARTUP_ROUTINE)(LPCWSTR ResourceType, DWORD MinVersionSupported, DWORD MaxVersionSupported,
                                          PSET_RESOURCE_STATUS_ROUTINE SetResourceStatus,
                                          PLOG_EVENT_ROUTINE LogEvent, PCLRES_FUNCTION_TABLE *FunctionTable);
typedef DWORD(_stdcall *PSTARTUP_EX_ROUTINE)(LPCWSTR ResourceType, DWORD MinVersionSupported,
                                             DWORD MaxVersionSupported,
                                             PCLRES_CALLBACK_FUNCTION_TABLE MonitorCallbackFunctions,
                                             PCLRES_FUNCTION_TABLE *ResourceDllInterfaceFunctions);

/* ---------------------------------------------------------------------------------------------
 * Worker threads (ClusWorker*) over pthreads (link with -pthread). hThread is non-NULL while a
 * worker exists; the members after Terminate are private.
 * ------------------------------------------------------------------------------------------- */
typedef struct CLUS_WORKER CLUS_WORKER, *PCLUS_WORKER;
typedef DWORD(WINAPI *PWORKER_START_ROUTINE)(PCLUS_WORKER pWorker, LPVOID lpThreadParameter);
struct CLUS_WORKER {
    HANDLE hThread;
    BOOL Terminate;
    /* private */
    pthread_t Thread_;
    int Joinable_;
    int Done_;
    PWORKER_START_ROUTINE Start_;
    LPVOID Parameter_;
};

static inline void *HaloClusWorkerThread_(void *Worker) {
    PCLUS_WORKER w = (PCLUS_WORKER)Worker;
    w->Start_(w, w->Parameter_);
    __atomic_store_n(&w->Done_, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Starts lpStartAddress(lpWorker, lpParameter) on a new thread. ERROR_SUCCESS or an error. */
static inline DWORD ClusWorkerCreate(PCLUS_WORKER lpWorker, PWORKER_START_ROUTINE lpStartAddress, PVOID lpParameter) {
    lpWorker->Terminate = FALSE;
    lpWorker->Done_ = 0;
    lpWorker->Start_ = lpStartAddress;
    lpWorker->Parameter_ = lpParameter;
    if (pthread_create(&lpWorker->Thread_, NULL, HaloClusWorkerThread_, lpWorker) != 0) {
        lpWorker->Joinable_ = 0;
        lpWorker->hThread = NULL;
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    lpWorker->hThread = (HANDLE)lpWorker;
    __atomic_store_n(&lpWorker->Joinable_, 1, __ATOMIC_RELEASE);
    return ERROR_SUCCESS;
}

/* TRUE once termination was requested: the worker should return promptly. */
static inline BOOL ClusWorkerCheckTerminate(PCLUS_WORKER lpWorker) {
    return __atomic_load_n(&lpWorker->Terminate, __ATOMIC_ACQUIRE);
}

/* Requests termination and waits for the worker to exit. The first caller waits; later or
 * concurrent callers return at once. Never call it from the worker itself. */
static inline VOID ClusWorkerTerminate(PCLUS_WORKER lpWorker) {
    __atomic_store_n(&lpWorker->Terminate, TRUE, __ATOMIC_RELEASE);
    if (__atomic_exchange_n(&lpWorker->Joinable_, 0, __ATOMIC_ACQ_REL)) {
        pthread_join(lpWorker->Thread_, NULL);
        lpWorker->hThread = NULL;
    }
}

/* Waits up to TimeoutInMilliseconds for the worker to exit; unless WaitOnly, requests
 * termination first. ERROR_SUCCESS if it exited, WAIT_TIMEOUT otherwise. */
static inline DWORD ClusWorkerTerminateEx(PCLUS_WORKER ClusWorker, DWORD TimeoutInMilliseconds, BOOL WaitOnly) {
    ULONGLONG start = GetTickCount64();
    if (!WaitOnly) {
        __atomic_store_n(&ClusWorker->Terminate, TRUE, __ATOMIC_RELEASE);
    }
    while (__atomic_load_n(&ClusWorker->Joinable_, __ATOMIC_ACQUIRE) &&
           !__atomic_load_n(&ClusWorker->Done_, __ATOMIC_ACQUIRE)) {
        if (GetTickCount64() - start >= TimeoutInMilliseconds) {
            return WAIT_TIMEOUT;
        }
        Sleep(1);
    }
    if (__atomic_exchange_n(&ClusWorker->Joinable_, 0, __ATOMIC_ACQ_REL)) {
        pthread_join(ClusWorker->Thread_, NULL);
        ClusWorker->hThread = NULL;
    }
    return ERROR_SUCCESS;
}

/* ClusWorkerTerminateEx over several workers, sharing one timeout. */
static inline DWORD ClusWorkersTerminate(PCLUS_WORKER *ClusWorkers, const size_t ClusWorkersCount,
                                         DWORD TimeoutInMilliseconds, BOOL WaitOnly) {
    DWORD result = ERROR_SUCCESS;
    ULONGLONG start = GetTickCount64();
    size_t i;
    if (!WaitOnly) {
        for (i = 0; i < ClusWorkersCount; i++) {
            __atomic_store_n(&ClusWorkers[i]->Terminate, TRUE, __ATOMIC_RELEASE);
        }
    }
    for (i = 0; i < ClusWorkersCount; i++) {
        ULONGLONG elapsed = GetTickCount64() - start;
        DWORD left = elapsed >= TimeoutInMilliseconds ? 0 : (DWORD)(TimeoutInMilliseconds - elapsed);
        if (ClusWorkerTerminateEx(ClusWorkers[i], left, TRUE) != ERROR_SUCCESS) {
            result = WAIT_TIMEOUT;
        }
    }
    return result;
}

/* ---------------------------------------------------------------------------------------------
 * Property tables (RESUTIL_PROPERTY_ITEM, the SDK's layout) and parameter blocks.
 *
 * A parameter block holds, at each item's Offset: a DWORD for DWORD/LONG; an LPWSTR for SZ and
 * EXPAND_SZ; an LPWSTR then a DWORD byte size for MULTI_SZ; an LPBYTE then a DWORD size for
 * BINARY; 8 bytes for (U)LARGE_INTEGER. Strings and buffers in a block are LocalAlloc'd.
 * ------------------------------------------------------------------------------------------- */
typedef struct RESUTIL_LARGEINT_DATA {
    LARGE_INTEGER Default;
    LARGE_INTEGER Minimum;
    LARGE_INTEGER Maximum;
} RESUTIL_LARGEINT_DATA, *PRESUTIL_LARGEINT_DATA;
typedef struct RESUTIL_ULARGEINT_DATA {
    ULARGE_INTEGER Default;
    ULARGE_INTEGER Minimum;
    ULARGE_INTEGER Maximum;
} RESUTIL_ULARGEINT_DATA, *PRESUTIL_ULARGEINT_DATA;
typedef struct RESUTIL_FILETIME_DATA {
    FILETIME Default;
    FILETIME Minimum;
    FILETIME Maximum;
} RESUTIL_FILETIME_DATA, *PRESUTIL_FILETIME_DATA;

#define RESUTIL_PROPITEM_READ_ONLY 0x00000001
#define RESUTIL_PROPITEM_REQUIRED 0x00000002
#define RESUTIL_PROPITEM_SIGNED 0x00000004
#define RESUTIL_PROPITEM_IN_MEMORY 0x00000008

/* Property tables are written as in the SDK's samples, { Name, KeyName, Format, Default, Minimum,
 * Maximum, Flags, Offset }, with the union's braces elided (MSVC accepts that silently). GCC and
 * Clang warn about elided braces under -Wall, which would fail such a table under -Werror, so
 * this header turns that one warning off for the rest of the translation unit. */
#pragma GCC diagnostic ignored "-Wmissing-braces"

typedef struct RESUTIL_PROPERTY_ITEM {
    LPWSTR Name;
    LPWSTR KeyName;
    DWORD Format;
    union {
        DWORD_PTR DefaultPtr;
        DWORD Default;
        LPVOID lpDefault;
        PRESUTIL_LARGEINT_DATA LargeIntData;
        PRESUTIL_ULARGEINT_DATA ULargeIntData;
        PRESUTIL_FILETIME_DATA FileTimeData;
    };
    DWORD Minimum;
    DWORD Maximum;
    DWORD Flags;
    DWORD Offset;
} RESUTIL_PROPERTY_ITEM, *PRESUTIL_PROPERTY_ITEM;

/* ---------------------------------------------------------------------------------------------
 * ResUtil helpers. Property lists here are in the plug-in's form (WCHAR strings; see the top of
 * this file). Where a DWORD is expected, a string holding a decimal or 0x-hex number is accepted
 * too, because halo keeps private properties as text.
 * ------------------------------------------------------------------------------------------- */

/* A LocalAlloc'd copy of pszInString, or NULL (GetLastError says why). */
static inline LPWSTR ResUtilDupString(LPCWSTR pszInString) {
    size_t size;
    LPWSTR copy;
    if (pszInString == NULL) {
        SetLastError(ERROR_INVALID_PARAMETER);
        return NULL;
    }
    size = (wcslen(pszInString) + 1) * sizeof(WCHAR);
    copy = (LPWSTR)LocalAlloc(LMEM_FIXED, size);
    if (copy != NULL) {
        memcpy(copy, pszInString, size);
    }
    return copy;
}

/* TRUE if the two type names are the same, ignoring case. */
static inline BOOL ResUtilResourceTypesEqual(LPCWSTR lpszResourceTypeName, LPCWSTR lpszResourceTypeName2) {
    return lpszResourceTypeName != NULL && lpszResourceTypeName2 != NULL &&
           wcscasecmp(lpszResourceTypeName, lpszResourceTypeName2) == 0;
}

/* Parses a whole string as a number: decimal, or hex after 0x; a leading '-' only if Signed. */
static inline BOOL HaloParseNumber_(LPCWSTR Text, DWORD Length, BOOL Signed, DWORD *Value) {
    WCHAR buffer[32];
    wchar_t *end = NULL;
    LPCWSTR digits = buffer;
    BOOL negative = FALSE;
    unsigned long long n;
    if (Length == 0 || Length >= 32) {
        return FALSE;
    }
    memcpy(buffer, Text, Length * sizeof(WCHAR));
    buffer[Length] = L'\0';
    if (Signed && digits[0] == L'-') {
        negative = TRUE;
        digits++;
    }
    if (!((digits[0] >= L'0' && digits[0] <= L'9'))) {
        return FALSE;
    }
    errno = 0;
    if (digits[0] == L'0' && (digits[1] == L'x' || digits[1] == L'X')) {
        if (digits[2] == L'\0') {
            return FALSE;
        }
        n = wcstoull(digits + 2, &end, 16);
    } else {
        n = wcstoull(digits, &end, 10);
    }
    if (errno != 0 || end == NULL || *end != L'\0' || n > 0xFFFFFFFFull) {
        return FALSE;
    }
    if (negative) {
        if (n > 0x80000000ull) {
            return FALSE;
        }
        *Value = (DWORD)(0u - (DWORD)n);
    } else {
        *Value = (DWORD)n;
    }
    return TRUE;
}

/* The number in a value of registry Type: REG_DWORD, or a string holding a number. */
static inline DWORD HaloValueToDword_(DWORD Type, const BYTE *Data, DWORD Size, BOOL Signed, DWORD *Value) {
    if (Type == REG_DWORD && Size == sizeof(DWORD)) {
        memcpy(Value, Data, sizeof(DWORD));
        return ERROR_SUCCESS;
    }
    if ((Type == REG_SZ || Type == REG_EXPAND_SZ) && Size >= sizeof(WCHAR) && Size % sizeof(WCHAR) == 0) {
        LPCWSTR text = (LPCWSTR)Data;
        DWORD length = Size / (DWORD)sizeof(WCHAR);
        while (length > 0 && text[length - 1] == L'\0') {
            length--;
        }
        if (HaloParseNumber_(text, length, Signed, Value)) {
            return ERROR_SUCCESS;
        }
    }
    return ERROR_INVALID_DATA;
}

/* Reads a value into a new LocalAlloc'd buffer (with a spare NUL WCHAR past its end). */
static inline DWORD HaloQueryAlloc_(HKEY hKey, LPCWSTR Name, DWORD *Type, BYTE **Data, DWORD *Size) {
    int attempt;
    for (attempt = 0; attempt < 4; attempt++) {
        DWORD size = 0, status;
        BYTE *data;
        status = (DWORD)ClusterRegQueryValue(hKey, Name, Type, NULL, &size);
        if (status != ERROR_SUCCESS && status != ERROR_MORE_DATA) {
            return status;
        }
        data = (BYTE *)LocalAlloc(LMEM_ZEROINIT, (SIZE_T)size + sizeof(WCHAR));
        if (data == NULL) {
            return ERROR_NOT_ENOUGH_MEMORY;
        }
        status = (DWORD)ClusterRegQueryValue(hKey, Name, Type, data, &size);
        if (status == ERROR_SUCCESS) {
            *Data = data;
            *Size = size;
            return ERROR_SUCCESS;
        }
        LocalFree(data);
        if (status != ERROR_MORE_DATA) {
            return status;
        }
        /* The value grew between the two reads: try again. */
    }
    return ERROR_MORE_DATA;
}

/* A LocalAlloc'd copy of a string value, or NULL (GetLastError says why). */
static inline LPWSTR ResUtilGetSzValue(HKEY hkeyClusterKey, LPCWSTR pszValueName) {
    DWORD type = REG_NONE, size = 0, status;
    BYTE *data = NULL;
    status = HaloQueryAlloc_(hkeyClusterKey, pszValueName, &type, &data, &size);
    if (status != ERROR_SUCCESS) {
        SetLastError(status);
        return NULL;
    }
    if (type != REG_SZ && type != REG_EXPAND_SZ && type != REG_MULTI_SZ) {
        LocalFree(data);
        SetLastError(ERROR_INVALID_DATA);
        return NULL;
    }
    return (LPWSTR)data;
}

static inline DWORD ResUtilGetDwordValue(HKEY hkeyClusterKey, LPCWSTR pszValueName, LPDWORD pdwOutValue,
                                         DWORD dwDefaultValue) {
    DWORD type = REG_NONE, size = 0, status;
    BYTE *data = NULL;
    if (pdwOutValue == NULL) {
        return ERROR_INVALID_PARAMETER;
    }
    status = HaloQueryAlloc_(hkeyClusterKey, pszValueName, &type, &data, &size);
    if (status == ERROR_FILE_NOT_FOUND) {
        *pdwOutValue = dwDefaultValue;
        return ERROR_SUCCESS;
    }
    if (status != ERROR_SUCCESS) {
        return status;
    }
    status = HaloValueToDword_(type, data, size, FALSE, pdwOutValue);
    LocalFree(data);
    return status;
}

static inline DWORD ResUtilGetBinaryValue(HKEY hkeyClusterKey, LPCWSTR pszValueName, LPBYTE *ppbOutValue,
                                          LPDWORD pcbOutValueSize) {
    DWORD type = REG_NONE, size = 0, status;
    BYTE *data = NULL;
    if (ppbOutValue == NULL) {
        return ERROR_INVALID_PARAMETER;
    }
    status = HaloQueryAlloc_(hkeyClusterKey, pszValueName, &type, &data, &size);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    *ppbOutValue = data;
    if (pcbOutValueSize != NULL) {
        *pcbOutValueSize = size;
    }
    return ERROR_SUCCESS;
}

static inline DWORD ResUtilGetMultiSzValue(HKEY hkeyClusterKey, LPCWSTR pszValueName, LPWSTR *ppszOutValue,
                                           LPDWORD pcbOutValueSize) {
    DWORD type = REG_NONE, size = 0, status;
    BYTE *data = NULL;
    if (ppszOutValue == NULL) {
        return ERROR_INVALID_PARAMETER;
    }
    status = HaloQueryAlloc_(hkeyClusterKey, pszValueName, &type, &data, &size);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    if (type != REG_MULTI_SZ) {
        LocalFree(data);
        return ERROR_INVALID_DATA;
    }
    *ppszOutValue = (LPWSTR)data;
    if (pcbOutValueSize != NULL) {
        *pcbOutValueSize = size;
    }
    return ERROR_SUCCESS;
}

static inline DWORD ResUtilSetSzValue(HKEY hkeyClusterKey, LPCWSTR pszValueName, LPCWSTR pszNewValue,
                                      LPWSTR *ppszOutString) {
    DWORD status;
    if (pszNewValue == NULL) {
        return ERROR_INVALID_PARAMETER;
    }
    status = ClusterRegSetValue(hkeyClusterKey, pszValueName, REG_SZ, (const BYTE *)pszNewValue,
                                (DWORD)((wcslen(pszNewValue) + 1) * sizeof(WCHAR)));
    if (status == ERROR_SUCCESS && ppszOutString != NULL) {
        LPWSTR copy = ResUtilDupString(pszNewValue);
        if (copy == NULL) {
            return ERROR_NOT_ENOUGH_MEMORY;
        }
        LocalFree(*ppszOutString);
        *ppszOutString = copy;
    }
    return status;
}

static inline DWORD ResUtilSetDwordValue(HKEY hkeyClusterKey, LPCWSTR pszValueName, DWORD dwNewValue,
                                         LPDWORD pdwOutValue) {
    DWORD status = ClusterRegSetValue(hkeyClusterKey, pszValueName, REG_DWORD, (const BYTE *)&dwNewValue,
                                      sizeof(DWORD));
    if (status == ERROR_SUCCESS && pdwOutValue != NULL) {
        *pdwOutValue = dwNewValue;
    }
    return status;
}

/* ---- property-list reading and writing (plug-in form) ---- */

typedef struct HaloListReader_ {
    const BYTE *Data;
    DWORD Size;
    DWORD Offset;
} HaloListReader_;

typedef struct HaloListValue_ {
    DWORD Syntax;
    const BYTE *Data;
    DWORD Size;
} HaloListValue_;

static inline BOOL HaloReadDword_(HaloListReader_ *r, DWORD *Value) {
    if (r->Size - r->Offset < sizeof(DWORD) || r->Offset > r->Size) {
        return FALSE;
    }
    memcpy(Value, r->Data + r->Offset, sizeof(DWORD));
    r->Offset += (DWORD)sizeof(DWORD);
    return TRUE;
}

/* One entry (syntax, length, padded data); an ENDMARK has no length. */
static inline BOOL HaloReadEntry_(HaloListReader_ *r, HaloListValue_ *Entry) {
    DWORD padded;
    if (!HaloReadDword_(r, &Entry->Syntax)) {
        return FALSE;
    }
    Entry->Data = NULL;
    Entry->Size = 0;
    if (Entry->Syntax == CLUSPROP_SYNTAX_ENDMARK) {
        return TRUE;
    }
    if (!HaloReadDword_(r, &Entry->Size)) {
        return FALSE;
    }
    padded = ALIGN_CLUSPROP(Entry->Size);
    if (padded < Entry->Size || padded > r->Size - r->Offset) {
        return FALSE;
    }
    Entry->Data = r->Data + r->Offset;
    r->Offset += padded;
    return TRUE;
}

/* A NUL-terminated WCHAR string filling Size bytes. */
static inline BOOL HaloIsWideString_(const BYTE *Data, DWORD Size) {
    WCHAR last;
    if (Size < sizeof(WCHAR) || Size % sizeof(WCHAR) != 0) {
        return FALSE;
    }
    memcpy(&last, Data + Size - sizeof(WCHAR), sizeof(WCHAR));
    return last == L'\0';
}

/* The next property of a list: its name (pointing into the list) and first value. */
static inline DWORD HaloNextProperty_(HaloListReader_ *r, LPCWSTR *Name, HaloListValue_ *Value) {
    HaloListValue_ entry;
    if (!HaloReadEntry_(r, &entry) || entry.Syntax != CLUSPROP_SYNTAX_NAME || !HaloIsWideString_(entry.Data, entry.Size)) {
        return ERROR_INVALID_DATA;
    }
    *Name = (LPCWSTR)entry.Data;
    if (!HaloReadEntry_(r, Value) || Value->Syntax == CLUSPROP_SYNTAX_ENDMARK) {
        return ERROR_INVALID_DATA;
    }
    /* Skip further values up to the ENDMARK. */
    do {
        if (!HaloReadEntry_(r, &entry)) {
            return ERROR_INVALID_DATA;
        }
    } while (entry.Syntax != CLUSPROP_SYNTAX_ENDMARK);
    return ERROR_SUCCESS;
}

/* Finds a property by name (ignoring case) in a property list. */
static inline DWORD HaloFindProperty_(const PVOID pPropertyList, DWORD cbPropertyListSize, LPCWSTR pszPropertyName,
                                      HaloListValue_ *Value) {
    HaloListReader_ r = {(const BYTE *)pPropertyList, cbPropertyListSize, 0};
    DWORD count, i;
    if (pPropertyList == NULL || pszPropertyName == NULL || !HaloReadDword_(&r, &count)) {
        return ERROR_INVALID_PARAMETER;
    }
    for (i = 0; i < count; i++) {
        LPCWSTR name;
        DWORD status = HaloNextProperty_(&r, &name, Value);
        if (status != ERROR_SUCCESS) {
            return status;
        }
        if (wcscasecmp(name, pszPropertyName) == 0) {
            return ERROR_SUCCESS;
        }
    }
    return ERROR_FILE_NOT_FOUND;
}

static inline WORD HaloFormatOf_(DWORD Syntax) { return (WORD)(Syntax & 0xFFFF); }

static inline BOOL HaloIsStringFormat_(WORD Format) {
    return Format == CLUSPROP_FORMAT_SZ || Format == CLUSPROP_FORMAT_EXPAND_SZ || Format == CLUSPROP_FORMAT_EXPANDED_SZ;
}

/* A DWORD from a list value: DWORD, LONG or WORD data, or a string holding a number. */
static inline DWORD HaloListValueToDword_(const HaloListValue_ *Value, BOOL Signed, DWORD *Out) {
    WORD format = HaloFormatOf_(Value->Syntax);
    if ((format == CLUSPROP_FORMAT_DWORD || format == CLUSPROP_FORMAT_LONG) && Value->Size == sizeof(DWORD)) {
        memcpy(Out, Value->Data, sizeof(DWORD));
        return ERROR_SUCCESS;
    }
    if (format == CLUSPROP_FORMAT_WORD && Value->Size >= sizeof(WORD)) {
        WORD w;
        memcpy(&w, Value->Data, sizeof(WORD));
        *Out = w;
        return ERROR_SUCCESS;
    }
    if (HaloIsStringFormat_(format)) {
        return HaloValueToDword_(REG_SZ, Value->Data, Value->Size, Signed, Out);
    }
    return ERROR_INVALID_DATA;
}

static inline DWORD HaloDupBytes_(const BYTE *Data, DWORD Size, BYTE **Out) {
    BYTE *copy = (BYTE *)LocalAlloc(LMEM_FIXED, Size);
    if (copy == NULL) {
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    if (Size > 0) {
        memcpy(copy, Data, Size);
    }
    *Out = copy;
    return ERROR_SUCCESS;
}

static inline DWORD ResUtilFindSzProperty(const PVOID pPropertyList, DWORD cbPropertyListSize,
                                          LPCWSTR pszPropertyName, LPWSTR *pszPropertyValue) {
    HaloListValue_ value;
    DWORD status = HaloFindProperty_(pPropertyList, cbPropertyListSize, pszPropertyName, &value);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    if (!HaloIsStringFormat_(HaloFormatOf_(value.Syntax)) || !HaloIsWideString_(value.Data, value.Size)) {
        return ERROR_INVALID_DATA;
    }
    if (pszPropertyValue != NULL) {
        return HaloDupBytes_(value.Data, value.Size, (BYTE **)pszPropertyValue);
    }
    return ERROR_SUCCESS;
}

static inline DWORD ResUtilFindExpandSzProperty(const PVOID pPropertyList, DWORD cbPropertyListSize,
                                                LPCWSTR pszPropertyName, LPWSTR *pszPropertyValue) {
    return ResUtilFindSzProperty(pPropertyList, cbPropertyListSize, pszPropertyName, pszPropertyValue);
}

static inline DWORD ResUtilFindDwordProperty(const PVOID pPropertyList, DWORD cbPropertyListSize,
                                             LPCWSTR pszPropertyName, LPDWORD pdwPropertyValue) {
    HaloListValue_ value;
    DWORD number, status = HaloFindProperty_(pPropertyList, cbPropertyListSize, pszPropertyName, &value);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    status = HaloListValueToDword_(&value, FALSE, &number);
    if (status == ERROR_SUCCESS && pdwPropertyValue != NULL) {
        *pdwPropertyValue = number;
    }
    return status;
}

static inline DWORD ResUtilFindLongProperty(const PVOID pPropertyList, DWORD cbPropertyListSize,
                                            LPCWSTR pszPropertyName, LPLONG plPropertyValue) {
    HaloListValue_ value;
    DWORD number, status = HaloFindProperty_(pPropertyList, cbPropertyListSize, pszPropertyName, &value);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    status = HaloListValueToDword_(&value, TRUE, &number);
    if (status == ERROR_SUCCESS && plPropertyValue != NULL) {
        *plPropertyValue = (LONG)number;
    }
    return status;
}

static inline DWORD ResUtilFindULargeIntegerProperty(const PVOID pPropertyList, DWORD cbPropertyListSize,
                                                     LPCWSTR pszPropertyName, ULONGLONG *plPropertyValue) {
    HaloListValue_ value;
    DWORD status = HaloFindProperty_(pPropertyList, cbPropertyListSize, pszPropertyName, &value);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    if (value.Size != sizeof(ULONGLONG)) {
        return ERROR_INVALID_DATA;
    }
    if (plPropertyValue != NULL) {
        memcpy(plPropertyValue, value.Data, sizeof(ULONGLONG));
    }
    return ERROR_SUCCESS;
}

static inline DWORD ResUtilFindMultiSzProperty(const PVOID pPropertyList, DWORD cbPropertyListSize,
                                               LPCWSTR pszPropertyName, LPWSTR *pszPropertyValue,
                                               LPDWORD pcbPropertyValueSize) {
    HaloListValue_ value;
    DWORD status = HaloFindProperty_(pPropertyList, cbPropertyListSize, pszPropertyName, &value);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    if (HaloFormatOf_(value.Syntax) != CLUSPROP_FORMAT_MULTI_SZ || !HaloIsWideString_(value.Data, value.Size)) {
        return ERROR_INVALID_DATA;
    }
    if (pcbPropertyValueSize != NULL) {
        *pcbPropertyValueSize = value.Size;
    }
    if (pszPropertyValue != NULL) {
        return HaloDupBytes_(value.Data, value.Size, (BYTE **)pszPropertyValue);
    }
    return ERROR_SUCCESS;
}

static inline DWORD ResUtilFindBinaryProperty(const PVOID pPropertyList, DWORD cbPropertyListSize,
                                              LPCWSTR pszPropertyName, LPBYTE *pbPropertyValue,
                                              LPDWORD pcbPropertyValueSize) {
    HaloListValue_ value;
    DWORD status = HaloFindProperty_(pPropertyList, cbPropertyListSize, pszPropertyName, &value);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    if (HaloFormatOf_(value.Syntax) != CLUSPROP_FORMAT_BINARY) {
        return ERROR_INVALID_DATA;
    }
    if (pcbPropertyValueSize != NULL) {
        *pcbPropertyValueSize = value.Size;
    }
    if (pbPropertyValue != NULL) {
        return HaloDupBytes_(value.Data, value.Size, pbPropertyValue);
    }
    return ERROR_SUCCESS;
}

/* Builds a list into a buffer that may be too small: writes only what fits, counts everything. */
typedef struct HaloListWriter_ {
    BYTE *Buffer;
    DWORD Size;
    DWORD Used;
    DWORD Count;
} HaloListWriter_;

static inline void HaloPut_(HaloListWriter_ *w, const void *Data, DWORD Size) {
    if (w->Buffer != NULL && w->Used <= w->Size && Size <= w->Size - w->Used) {
        if (Data != NULL) {
            memcpy(w->Buffer + w->Used, Data, Size);
        } else {
            memset(w->Buffer + w->Used, 0, Size);
        }
    }
    w->Used += Size;
}

static inline void HaloPutDword_(HaloListWriter_ *w, DWORD Value) { HaloPut_(w, &Value, sizeof(Value)); }

static inline void HaloPutEntry_(HaloListWriter_ *w, DWORD Syntax, const void *Data, DWORD Size) {
    HaloPutDword_(w, Syntax);
    HaloPutDword_(w, Size);
    HaloPut_(w, Data, Size);
    HaloPut_(w, NULL, ALIGN_CLUSPROP(Size) - Size);
}

/* One property: NAME, one value, ENDMARK. */
static inline void HaloPutProperty_(HaloListWriter_ *w, LPCWSTR Name, DWORD Syntax, const void *Data, DWORD Size) {
    HaloPutEntry_(w, CLUSPROP_SYNTAX_NAME, Name, (DWORD)((wcslen(Name) + 1) * sizeof(WCHAR)));
    HaloPutEntry_(w, Syntax, Data, Size);
    HaloPutDword_(w, CLUSPROP_SYNTAX_ENDMARK);
    w->Count++;
}

/* Finishes a property list (patches its count) and reports it the ResUtil way. */
static inline DWORD HaloFinishList_(HaloListWriter_ *w, LPDWORD pcbBytesReturned, LPDWORD pcbRequired) {
    if (pcbBytesReturned != NULL) {
        *pcbBytesReturned = 0;
    }
    if (pcbRequired != NULL) {
        *pcbRequired = 0;
    }
    if (w->Buffer == NULL || w->Used > w->Size) {
        if (pcbRequired != NULL) {
            *pcbRequired = w->Used;
        }
        return ERROR_MORE_DATA;
    }
    memcpy(w->Buffer, &w->Count, sizeof(DWORD));
    if (pcbBytesReturned != NULL) {
        *pcbBytesReturned = w->Used;
    }
    return ERROR_SUCCESS;
}

static inline BOOL HaloIsEndOfTable_(const RESUTIL_PROPERTY_ITEM *Item) { return Item->Name == NULL; }

static inline const RESUTIL_PROPERTY_ITEM *HaloFindItem_(const RESUTIL_PROPERTY_ITEM *Table, LPCWSTR Name) {
    for (; Table != NULL && !HaloIsEndOfTable_(Table); Table++) {
        if (wcscasecmp(Table->Name, Name) == 0) {
            return Table;
        }
    }
    return NULL;
}

/* Every name in the table, as a MULTI_SZ (NUL after each, one more at the end). */
static inline DWORD ResUtilEnumProperties(const PRESUTIL_PROPERTY_ITEM pPropertyTable, LPWSTR pszOutProperties,
                                          DWORD cbOutPropertiesSize, LPDWORD pcbBytesReturned,
                                          LPDWORD pcbRequired) {
    HaloListWriter_ w = {(BYTE *)pszOutProperties, cbOutPropertiesSize, 0, 0};
    const RESUTIL_PROPERTY_ITEM *item;
    WCHAR nul = L'\0';
    for (item = pPropertyTable; item != NULL && !HaloIsEndOfTable_(item); item++) {
        HaloPut_(&w, item->Name, (DWORD)((wcslen(item->Name) + 1) * sizeof(WCHAR)));
    }
    HaloPut_(&w, &nul, sizeof(nul));
    if (pcbBytesReturned != NULL) {
        *pcbBytesReturned = 0;
    }
    if (pcbRequired != NULL) {
        *pcbRequired = 0;
    }
    if (pszOutProperties == NULL || w.Used > cbOutPropertiesSize) {
        if (pcbRequired != NULL) {
            *pcbRequired = w.Used;
        }
        return ERROR_MORE_DATA;
    }
    if (pcbBytesReturned != NULL) {
        *pcbBytesReturned = w.Used;
    }
    return ERROR_SUCCESS;
}

/* Each property's name and format (a CLUSPROP_WORD), as GET_*_PROPERTY_FMTS answers. */
static inline DWORD ResUtilGetPropertyFormats(const PRESUTIL_PROPERTY_ITEM pPropertyTable,
                                              PVOID pOutPropertyFormatList, DWORD cbPropertyFormatListSize,
                                              LPDWORD pcbBytesReturned, LPDWORD pcbRequired) {
    HaloListWriter_ w = {(BYTE *)pOutPropertyFormatList, cbPropertyFormatListSize, 0, 0};
    const RESUTIL_PROPERTY_ITEM *item;
    HaloPutDword_(&w, 0);
    for (item = pPropertyTable; item != NULL && !HaloIsEndOfTable_(item); item++) {
        WORD format = (WORD)item->Format;
        HaloPutProperty_(&w, item->Name, CLUSPROP_SYNTAX_LIST_VALUE_WORD, &format, sizeof(format));
    }
    return HaloFinishList_(&w, pcbBytesReturned, pcbRequired);
}

static inline DWORD HaloRegTypeOf_(DWORD Format) {
    switch (Format) {
    case CLUSPROP_FORMAT_DWORD:
    case CLUSPROP_FORMAT_LONG:
    case CLUSPROP_FORMAT_WORD:
        return REG_DWORD;
    case CLUSPROP_FORMAT_SZ:
    case CLUSPROP_FORMAT_EXPANDED_SZ:
        return REG_SZ;
    case CLUSPROP_FORMAT_EXPAND_SZ:
        return REG_EXPAND_SZ;
    case CLUSPROP_FORMAT_MULTI_SZ:
        return REG_MULTI_SZ;
    case CLUSPROP_FORMAT_ULARGE_INTEGER:
    case CLUSPROP_FORMAT_LARGE_INTEGER:
    case CLUSPROP_FORMAT_FILETIME:
        return REG_QWORD;
    default:
        return REG_BINARY;
    }
}

static inline DWORD HaloFormatOfRegType_(DWORD Type) {
    switch (Type) {
    case REG_DWORD:
        return CLUSPROP_FORMAT_DWORD;
    case REG_SZ:
        return CLUSPROP_FORMAT_SZ;
    case REG_EXPAND_SZ:
        return CLUSPROP_FORMAT_EXPAND_SZ;
    case REG_MULTI_SZ:
        return CLUSPROP_FORMAT_MULTI_SZ;
    case REG_QWORD:
        return CLUSPROP_FORMAT_ULARGE_INTEGER;
    default:
        return CLUSPROP_FORMAT_BINARY;
    }
}

/* Appends one table item's value, read from the key (or its default), to a property list. */
static inline DWORD HaloPutItemValue_(HaloListWriter_ *w, HKEY hKey, const RESUTIL_PROPERTY_ITEM *Item) {
    DWORD type = REG_NONE, size = 0, syntax = CLUSPROP_SYNTAX_VALUE(CLUSPROP_TYPE_LIST_VALUE, Item->Format);
    BYTE *data = NULL;
    DWORD status = HaloQueryAlloc_(hKey, Item->Name, &type, &data, &size);
    if (status == ERROR_FILE_NOT_FOUND) {
        switch (Item->Format) {
        case CLUSPROP_FORMAT_DWORD:
        case CLUSPROP_FORMAT_LONG:
            HaloPutProperty_(w, Item->Name, syntax, &Item->Default, sizeof(DWORD));
            break;
        case CLUSPROP_FORMAT_SZ:
        case CLUSPROP_FORMAT_EXPAND_SZ:
            if (Item->lpDefault != NULL) {
                HaloPutProperty_(w, Item->Name, syntax, Item->lpDefault,
                                 (DWORD)((wcslen((LPCWSTR)Item->lpDefault) + 1) * sizeof(WCHAR)));
            }
            break;
        case CLUSPROP_FORMAT_MULTI_SZ:
        case CLUSPROP_FORMAT_BINARY:
            if (Item->lpDefault != NULL && Item->Minimum > 0) {
                HaloPutProperty_(w, Item->Name, syntax, Item->lpDefault, Item->Minimum);
            }
            break;
        case CLUSPROP_FORMAT_ULARGE_INTEGER:
            if (Item->ULargeIntData != NULL) {
                HaloPutProperty_(w, Item->Name, syntax, &Item->ULargeIntData->Default, sizeof(ULONGLONG));
            }
            break;
        case CLUSPROP_FORMAT_LARGE_INTEGER:
            if (Item->LargeIntData != NULL) {
                HaloPutProperty_(w, Item->Name, syntax, &Item->LargeIntData->Default, sizeof(LONGLONG));
            }
            break;
        default:
            break;
        }
        return ERROR_SUCCESS;
    }
    if (status != ERROR_SUCCESS) {
        return status;
    }
    if (Item->Format == CLUSPROP_FORMAT_DWORD || Item->Format == CLUSPROP_FORMAT_LONG) {
        DWORD number;
        status = HaloValueToDword_(type, data, size, Item->Format == CLUSPROP_FORMAT_LONG, &number);
        if (status == ERROR_SUCCESS) {
            HaloPutProperty_(w, Item->Name, syntax, &number, sizeof(number));
        }
    } else {
        HaloPutProperty_(w, Item->Name, syntax, data, size);
    }
    LocalFree(data);
    return status;
}

/* The table's properties (from the key, else their defaults), then the key's other values. */
static inline DWORD ResUtilGetAllProperties(HKEY hkeyClusterKey, const PRESUTIL_PROPERTY_ITEM pPropertyTable,
                                            PVOID pOutPropertyList, DWORD cbOutPropertyListSize,
                                            LPDWORD pcbBytesReturned, LPDWORD pcbRequired) {
    HaloListWriter_ w = {(BYTE *)pOutPropertyList, cbOutPropertyListSize, 0, 0};
    const RESUTIL_PROPERTY_ITEM *item;
    DWORD index, status;
    HaloPutDword_(&w, 0);
    for (item = pPropertyTable; item != NULL && !HaloIsEndOfTable_(item); item++) {
        status = HaloPutItemValue_(&w, hkeyClusterKey, item);
        if (status != ERROR_SUCCESS) {
            return status;
        }
    }
    for (index = 0;; index++) {
        WCHAR name[256];
        DWORD cchName = (DWORD)(sizeof(name) / sizeof(WCHAR)), type = REG_NONE, size = 0;
        BYTE *data;
        status = ClusterRegEnumValue(hkeyClusterKey, index, name, &cchName, &type, NULL, &size);
        if (status == ERROR_NO_MORE_ITEMS) {
            break;
        }
        if (status != ERROR_SUCCESS) {
            return status;
        }
        if (HaloFindItem_(pPropertyTable, name) != NULL) {
            continue;
        }
        status = HaloQueryAlloc_(hkeyClusterKey, name, &type, &data, &size);
        if (status != ERROR_SUCCESS) {
            return status;
        }
        HaloPutProperty_(&w, name, CLUSPROP_SYNTAX_VALUE(CLUSPROP_TYPE_LIST_VALUE, HaloFormatOfRegType_(type)), data,
                         size);
        LocalFree(data);
    }
    return HaloFinishList_(&w, pcbBytesReturned, pcbRequired);
}

/* Every value in the key, each in the format of its registry type. */
static inline DWORD ResUtilGetPrivateProperties(HKEY hkeyClusterKey, PVOID pOutPropertyList,
                                                DWORD cbOutPropertyListSize, LPDWORD pcbBytesReturned,
                                                LPDWORD pcbRequired) {
    RESUTIL_PROPERTY_ITEM empty[1];
    memset(empty, 0, sizeof(empty));
    return ResUtilGetAllProperties(hkeyClusterKey, empty, pOutPropertyList, cbOutPropertyListSize, pcbBytesReturned,
                                   pcbRequired);
}

/* ---- parameter blocks ---- */

static inline LPWSTR *HaloBlockString_(LPBYTE Block, const RESUTIL_PROPERTY_ITEM *Item) {
    return (LPWSTR *)(Block + Item->Offset);
}
static inline DWORD *HaloBlockDword_(LPBYTE Block, const RESUTIL_PROPERTY_ITEM *Item) {
    return (DWORD *)(Block + Item->Offset);
}
/* MULTI_SZ and BINARY: the size DWORD follows the pointer. */
static inline DWORD *HaloBlockSize_(LPBYTE Block, const RESUTIL_PROPERTY_ITEM *Item) {
    return (DWORD *)(Block + Item->Offset + sizeof(LPVOID));
}

/* Checks a DWORD/LONG against the item's range (no range when Minimum and Maximum are both 0). */
static inline BOOL HaloInRange_(const RESUTIL_PROPERTY_ITEM *Item, DWORD Value) {
    if (Item->Minimum == 0 && Item->Maximum == 0) {
        return TRUE;
    }
    if (Item->Format == CLUSPROP_FORMAT_LONG || (Item->Flags & RESUTIL_PROPITEM_SIGNED)) {
        return (LONG)Value >= (LONG)Item->Minimum && (LONG)Value <= (LONG)Item->Maximum;
    }
    return Value >= Item->Minimum && Value <= Item->Maximum;
}

/* Stores one value (registry type and data) for an item into a parameter block, replacing and
 * freeing what was there. */
static inline DWORD HaloStoreInBlock_(const RESUTIL_PROPERTY_ITEM *Item, LPBYTE Block, DWORD Type, const BYTE *Data,
                                      DWORD Size) {
    BYTE *copy = NULL;
    DWORD status;
    switch (Item->Format) {
    case CLUSPROP_FORMAT_DWORD:
    case CLUSPROP_FORMAT_LONG: {
        DWORD number;
        status = HaloValueToDword_(Type, Data, Size, Item->Format == CLUSPROP_FORMAT_LONG, &number);
        if (status == ERROR_SUCCESS && Block != NULL) {
            *HaloBlockDword_(Block, Item) = number;
        }
        return status;
    }
    case CLUSPROP_FORMAT_SZ:
    case CLUSPROP_FORMAT_EXPAND_SZ:
        if (!HaloIsWideString_(Data, Size) || (Type != REG_SZ && Type != REG_EXPAND_SZ)) {
            return ERROR_INVALID_DATA;
        }
        if (Block == NULL) {
            return ERROR_SUCCESS;
        }
        status = HaloDupBytes_(Data, Size, &copy);
        if (status == ERROR_SUCCESS) {
            LocalFree(*HaloBlockString_(Block, Item));
            *HaloBlockString_(Block, Item) = (LPWSTR)copy;
        }
        return status;
    case CLUSPROP_FORMAT_MULTI_SZ:
    case CLUSPROP_FORMAT_BINARY:
        if (Item->Format == CLUSPROP_FORMAT_MULTI_SZ && (Type != REG_MULTI_SZ || !HaloIsWideString_(Data, Size))) {
            return ERROR_INVALID_DATA;
        }
        if (Block == NULL) {
            return ERROR_SUCCESS;
        }
        status = HaloDupBytes_(Data, Size, &copy);
        if (status == ERROR_SUCCESS) {
            LocalFree(*HaloBlockString_(Block, Item));
            *HaloBlockString_(Block, Item) = (LPWSTR)copy;
            *HaloBlockSize_(Block, Item) = Size;
        }
        return status;
    case CLUSPROP_FORMAT_ULARGE_INTEGER:
    case CLUSPROP_FORMAT_LARGE_INTEGER:
    case CLUSPROP_FORMAT_FILETIME:
        if (Size != sizeof(ULONGLONG)) {
            return ERROR_INVALID_DATA;
        }
        if (Block != NULL) {
            memcpy(Block + Item->Offset, Data, sizeof(ULONGLONG));
        }
        return ERROR_SUCCESS;
    default:
        return ERROR_INVALID_PARAMETER;
    }
}

/* Stores an item's default into a parameter block. */
static inline DWORD HaloStoreDefault_(const RESUTIL_PROPERTY_ITEM *Item, LPBYTE Block) {
    switch (Item->Format) {
    case CLUSPROP_FORMAT_DWORD:
    case CLUSPROP_FORMAT_LONG:
        *HaloBlockDword_(Block, Item) = Item->Default;
        return ERROR_SUCCESS;
    case CLUSPROP_FORMAT_SZ:
    case CLUSPROP_FORMAT_EXPAND_SZ: {
        LPWSTR copy = NULL;
        if (Item->lpDefault != NULL && (copy = ResUtilDupString((LPCWSTR)Item->lpDefault)) == NULL) {
            return ERROR_NOT_ENOUGH_MEMORY;
        }
        LocalFree(*HaloBlockString_(Block, Item));
        *HaloBlockString_(Block, Item) = copy;
        return ERROR_SUCCESS;
    }
    case CLUSPROP_FORMAT_MULTI_SZ:
    case CLUSPROP_FORMAT_BINARY: {
        BYTE *copy = NULL;
        if (Item->lpDefault != NULL && Item->Minimum > 0 &&
            HaloDupBytes_((const BYTE *)Item->lpDefault, Item->Minimum, &copy) != ERROR_SUCCESS) {
            return ERROR_NOT_ENOUGH_MEMORY;
        }
        LocalFree(*HaloBlockString_(Block, Item));
        *HaloBlockString_(Block, Item) = (LPWSTR)copy;
        *HaloBlockSize_(Block, Item) = copy != NULL ? Item->Minimum : 0;
        return ERROR_SUCCESS;
    }
    case CLUSPROP_FORMAT_ULARGE_INTEGER:
        if (Item->ULargeIntData != NULL) {
            memcpy(Block + Item->Offset, &Item->ULargeIntData->Default, sizeof(ULONGLONG));
        }
        return ERROR_SUCCESS;
    case CLUSPROP_FORMAT_LARGE_INTEGER:
        if (Item->LargeIntData != NULL) {
            memcpy(Block + Item->Offset, &Item->LargeIntData->Default, sizeof(LONGLONG));
        }
        return ERROR_SUCCESS;
    default:
        return ERROR_SUCCESS;
    }
}

/* Reads every table property from the key into a parameter block (defaults for the missing
 * ones), freeing the strings it replaces. A missing required property fails with
 * ERROR_FILE_NOT_FOUND and its name in *pszNameOfPropInError. */
static inline DWORD ResUtilGetPropertiesToParameterBlock(HKEY hkeyClusterKey,
                                                         const PRESUTIL_PROPERTY_ITEM pPropertyTable,
                                                         LPBYTE pOutParams, BOOL bCheckForRequiredProperties,
                                                         LPWSTR *pszNameOfPropInError) {
    const RESUTIL_PROPERTY_ITEM *item;
    if (pPropertyTable == NULL || pOutParams == NULL) {
        return ERROR_BAD_ARGUMENTS;
    }
    for (item = pPropertyTable; !HaloIsEndOfTable_(item); item++) {
        DWORD type = REG_NONE, size = 0, status;
        BYTE *data = NULL;
        status = HaloQueryAlloc_(hkeyClusterKey, item->Name, &type, &data, &size);
        if (status == ERROR_FILE_NOT_FOUND) {
            if (bCheckForRequiredProperties && (item->Flags & RESUTIL_PROPITEM_REQUIRED)) {
                if (pszNameOfPropInError != NULL) {
                    *pszNameOfPropInError = item->Name;
                }
                return ERROR_FILE_NOT_FOUND;
            }
            status = HaloStoreDefault_(item, pOutParams);
        } else if (status == ERROR_SUCCESS) {
            status = HaloStoreInBlock_(item, pOutParams, type, data, size);
            LocalFree(data);
        }
        if (status != ERROR_SUCCESS) {
            if (pszNameOfPropInError != NULL) {
                *pszNameOfPropInError = item->Name;
            }
            return status;
        }
    }
    return ERROR_SUCCESS;
}

/* Copies a parameter block, duplicating its strings and buffers. */
static inline DWORD ResUtilDupParameterBlock(LPBYTE pOutParams, const LPBYTE pInParams,
                                             const PRESUTIL_PROPERTY_ITEM pPropertyTable) {
    const RESUTIL_PROPERTY_ITEM *item;
    for (item = pPropertyTable; item != NULL && !HaloIsEndOfTable_(item); item++) {
        switch (item->Format) {
        case CLUSPROP_FORMAT_SZ:
        case CLUSPROP_FORMAT_EXPAND_SZ: {
            LPWSTR source = *HaloBlockString_(pInParams, item);
            *HaloBlockString_(pOutParams, item) = NULL;
            if (source != NULL && (*HaloBlockString_(pOutParams, item) = ResUtilDupString(source)) == NULL) {
                return ERROR_NOT_ENOUGH_MEMORY;
            }
            break;
        }
        case CLUSPROP_FORMAT_MULTI_SZ:
        case CLUSPROP_FORMAT_BINARY: {
            LPWSTR source = *HaloBlockString_(pInParams, item);
            DWORD size = *HaloBlockSize_(pInParams, item);
            BYTE *copy = NULL;
            if (source != NULL && HaloDupBytes_((const BYTE *)source, size, &copy) != ERROR_SUCCESS) {
                *HaloBlockString_(pOutParams, item) = NULL;
                return ERROR_NOT_ENOUGH_MEMORY;
            }
            *HaloBlockString_(pOutParams, item) = (LPWSTR)copy;
            *HaloBlockSize_(pOutParams, item) = size;
            break;
        }
        case CLUSPROP_FORMAT_ULARGE_INTEGER:
        case CLUSPROP_FORMAT_LARGE_INTEGER:
        case CLUSPROP_FORMAT_FILETIME:
            memcpy(pOutParams + item->Offset, pInParams + item->Offset, sizeof(ULONGLONG));
            break;
        default:
            *HaloBlockDword_(pOutParams, item) = *HaloBlockDword_(pInParams, item);
            break;
        }
    }
    return ERROR_SUCCESS;
}

/* Frees the strings and buffers of pOutParams that pInParams (may be NULL) does not share. */
static inline void ResUtilFreeParameterBlock(LPBYTE pOutParams, const LPBYTE pInParams,
                                             const PRESUTIL_PROPERTY_ITEM pPropertyTable) {
    const RESUTIL_PROPERTY_ITEM *item;
    for (item = pPropertyTable; item != NULL && !HaloIsEndOfTable_(item); item++) {
        if (item->Format == CLUSPROP_FORMAT_SZ || item->Format == CLUSPROP_FORMAT_EXPAND_SZ ||
            item->Format == CLUSPROP_FORMAT_MULTI_SZ || item->Format == CLUSPROP_FORMAT_BINARY) {
            LPWSTR mine = *HaloBlockString_(pOutParams, item);
            if (mine != NULL && (pInParams == NULL || mine != *HaloBlockString_(pInParams, item))) {
                LocalFree(mine);
            }
        }
    }
}

/* The registry type and data a list value has for an item (a numeric string becomes REG_DWORD). */
static inline DWORD HaloItemValueFromList_(const RESUTIL_PROPERTY_ITEM *Item, const HaloListValue_ *Value,
                                           DWORD *Type, const BYTE **Data, DWORD *Size, DWORD *Number) {
    WORD format = HaloFormatOf_(Value->Syntax);
    switch (Item->Format) {
    case CLUSPROP_FORMAT_DWORD:
    case CLUSPROP_FORMAT_LONG: {
        DWORD status = HaloListValueToDword_(Value, Item->Format == CLUSPROP_FORMAT_LONG, Number);
        if (status != ERROR_SUCCESS) {
            return ERROR_INVALID_PARAMETER;
        }
        if (!HaloInRange_(Item, *Number)) {
            return ERROR_INVALID_PARAMETER;
        }
        *Type = REG_DWORD;
        *Data = (const BYTE *)Number;
        *Size = sizeof(DWORD);
        return ERROR_SUCCESS;
    }
    case CLUSPROP_FORMAT_SZ:
    case CLUSPROP_FORMAT_EXPAND_SZ:
        if (!HaloIsStringFormat_(format) || !HaloIsWideString_(Value->Data, Value->Size)) {
            return ERROR_INVALID_PARAMETER;
        }
        *Type = Item->Format == CLUSPROP_FORMAT_EXPAND_SZ ? REG_EXPAND_SZ : REG_SZ;
        break;
    case CLUSPROP_FORMAT_MULTI_SZ:
        if (format != CLUSPROP_FORMAT_MULTI_SZ || !HaloIsWideString_(Value->Data, Value->Size)) {
            return ERROR_INVALID_PARAMETER;
        }
        *Type = REG_MULTI_SZ;
        break;
    case CLUSPROP_FORMAT_BINARY:
        if (format != CLUSPROP_FORMAT_BINARY) {
            return ERROR_INVALID_PARAMETER;
        }
        *Type = REG_BINARY;
        break;
    default:
        if (format != Item->Format || Value->Size != sizeof(ULONGLONG)) {
            return ERROR_INVALID_PARAMETER;
        }
        *Type = REG_QWORD;
        break;
    }
    *Data = Value->Data;
    *Size = Value->Size;
    return ERROR_SUCCESS;
}

/* Checks a property list against a table: known names (unless bAllowUnknownProperties), not
 * read-only, the right format, DWORDs and LONGs within range. With pOutParams, also stores the
 * values there (as ResUtilGetPropertiesToParameterBlock does). ERROR_INVALID_PARAMETER if not. */
static inline DWORD ResUtilVerifyPropertyTable(const PRESUTIL_PROPERTY_ITEM pPropertyTable, PVOID Reserved,
                                               BOOL bAllowUnknownProperties, const PVOID pInPropertyList,
                                               DWORD cbInPropertyListSize, LPBYTE pOutParams) {
    HaloListReader_ r = {(const BYTE *)pInPropertyList, cbInPropertyListSize, 0};
    DWORD count, i;
    (void)Reserved;
    if (pPropertyTable == NULL || pInPropertyList == NULL || !HaloReadDword_(&r, &count)) {
        return ERROR_INVALID_PARAMETER;
    }
    for (i = 0; i < count; i++) {
        LPCWSTR name;
        HaloListValue_ value;
        const RESUTIL_PROPERTY_ITEM *item;
        DWORD type, size, number, status;
        const BYTE *data;
        status = HaloNextProperty_(&r, &name, &value);
        if (status != ERROR_SUCCESS) {
            return status;
        }
        item = HaloFindItem_(pPropertyTable, name);
        if (item == NULL) {
            if (!bAllowUnknownProperties) {
                return ERROR_INVALID_PARAMETER;
            }
            continue;
        }
        if (item->Flags & RESUTIL_PROPITEM_READ_ONLY) {
            return ERROR_INVALID_PARAMETER;
        }
        status = HaloItemValueFromList_(item, &value, &type, &data, &size, &number);
        if (status == ERROR_SUCCESS && pOutParams != NULL) {
            status = HaloStoreInBlock_(item, pOutParams, type, data, size);
        }
        if (status != ERROR_SUCCESS) {
            return status;
        }
    }
    return ERROR_SUCCESS;
}

/* Verifies a property list against a table, then writes its values to the key (and to
 * pOutParams, if given). Unknown properties are written too when allowed. */
static inline DWORD ResUtilSetPropertyTable(HKEY hkeyClusterKey, const PRESUTIL_PROPERTY_ITEM pPropertyTable,
                                            PVOID Reserved, BOOL bAllowUnknownProperties,
                                            const PVOID pInPropertyList, DWORD cbInPropertyListSize,
                                            LPBYTE pOutParams) {
    HaloListReader_ r = {(const BYTE *)pInPropertyList, cbInPropertyListSize, 0};
    DWORD count, i;
    DWORD status = ResUtilVerifyPropertyTable(pPropertyTable, Reserved, bAllowUnknownProperties, pInPropertyList,
                                              cbInPropertyListSize, NULL);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    if (!HaloReadDword_(&r, &count)) {
        return ERROR_INVALID_PARAMETER;
    }
    for (i = 0; i < count; i++) {
        LPCWSTR name;
        HaloListValue_ value;
        const RESUTIL_PROPERTY_ITEM *item;
        DWORD type, size, number = 0;
        const BYTE *data;
        status = HaloNextProperty_(&r, &name, &value);
        if (status != ERROR_SUCCESS) {
            return status;
        }
        item = HaloFindItem_(pPropertyTable, name);
        if (item != NULL) {
            status = HaloItemValueFromList_(item, &value, &type, &data, &size, &number);
            if (status == ERROR_SUCCESS) {
                status = ClusterRegSetValue(hkeyClusterKey, item->Name, type, data, size);
            }
            if (status == ERROR_SUCCESS && pOutParams != NULL) {
                status = HaloStoreInBlock_(item, pOutParams, type, data, size);
            }
        } else {
            status = ClusterRegSetValue(hkeyClusterKey, name, HaloRegTypeOf_(HaloFormatOf_(value.Syntax)), value.Data,
                                        value.Size);
        }
        if (status != ERROR_SUCCESS) {
            return status;
        }
    }
    return ERROR_SUCCESS;
}

#ifdef __cplusplus
}
#endif

#endif /* HALO_COMPAT_RESAPI_H */
