/*
 * halo_resapi.h — the resource-type ABI of halo, a failover cluster for Linux.
 *
 * This is the Linux counterpart of the Windows SDK's resapi.h. Everything the two share keeps
 * the same identifier, value, member order and meaning: entry points (Startup/StartupEx, OpenV2,
 * OnlineV2, OfflineV2, …), CLRES_FUNCTION_TABLE, CLRES_CALLBACK_FUNCTION_TABLE, RESOURCE_STATUS_EX,
 * the CLUS_RESDLL_* flags, ERROR_* codes and CLUSCTL_* control codes. Porting a resource DLL is
 * meant to be mostly a rebuild: compile it with `cc -shared -fPIC -pthread -I include`.
 *
 * Where Linux forces a difference, a comment marked "Linux:" says so. In short:
 *   - Strings are UTF-8 `const char *` (LPCWSTR is an alias for it; L"…" literals do not apply).
 *   - Open/OpenV2 receive an opaque HALO_PARAMETERS handle to read private properties, in place
 *     of the registry key (HKEY). See "Private properties" below.
 *   - RESOURCE_HANDLE is a fixed-width 64-bit value; RESID is the plug-in's own pointer.
 *   - SetLastError/GetLastError are errno-backed inline helpers.
 *   - LogEvent takes printf-style formats, not FormatMessage inserts (%1, %2!u!).
 *   - A source written for Windows (wide strings, HKEY, ResUtil, FormatMessage inserts) builds
 *     instead against include/compat/ (windows.h, clusapi.h, resapi.h); see compat/resapi.h.
 *   - Waitable event handles are not waited on: leave *EventHandle NULL in Online and call
 *     SignalFailure to report an asynchronous failure.
 *   - No calling-convention keywords: every function pointer uses the platform's C convention.
 *
 * halo negotiates table versions CLRES_VERSION_V1_00 and CLRES_VERSION_V2_00 (synchronous
 * ResourceControl). V3/V4 tables (Begin*Control) are refused with ERROR_REVISION_MISMATCH.
 */
#ifndef HALO_RESAPI_H
#define HALO_RESAPI_H

/* The worker helpers need POSIX clocks; strict -std=c11 hides them unless asked for. Include this
 * header first, or build with -std=gnu11 (the compiler default). */
#if !defined(_POSIX_C_SOURCE) && !defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Base types. Linux: fixed-width equivalents of the Win32 types.
 * ------------------------------------------------------------------------------------------- */
typedef uint32_t DWORD, *LPDWORD, *PDWORD;
typedef int32_t BOOL, *PBOOL;
typedef uint8_t BYTE, *PBYTE;
typedef void VOID;
typedef void *PVOID, *LPVOID;
typedef int64_t INT64;
typedef uint64_t ULONGLONG;
typedef char *LPSTR;
typedef const char *LPCSTR;
/* Linux: wide strings are UTF-8 too, so ported signatures keep compiling. */
typedef const char *LPCWSTR;
/* Linux: not waited on by halo (see the Linux notes above); keep it NULL. */
typedef void *HANDLE, **LPHANDLE;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

/* The plug-in's per-resource pointer, returned by Open/OpenV2 and passed to every entry point. */
typedef void *RESID;
/* halo's handle for one resource, given at Open and passed back to the callbacks only.
 * Linux: a 64-bit value on every platform, never a pointer. */
typedef uint64_t RESOURCE_HANDLE;

/* Linux: SetLastError/GetLastError keep the Win32 code in errno (thread-local). Call
 * SetLastError last, right before returning NULL from Open. */
static inline void SetLastError(DWORD Error) { errno = (int)Error; }
static inline DWORD GetLastError(void) { return (DWORD)errno; }

/* Status codes (winerror.h values). */
#define ERROR_SUCCESS                                                          0L
#define ERROR_INVALID_FUNCTION                                                 1L
#define ERROR_FILE_NOT_FOUND                                                   2L
#define ERROR_ACCESS_DENIED                                                    5L
#define ERROR_NOT_ENOUGH_MEMORY                                                8L
#define ERROR_INVALID_DATA                                                     13L
#define ERROR_NOT_SUPPORTED                                                    50L
#define ERROR_INVALID_PARAMETER                                                87L
#define ERROR_DISK_FULL                                                        112L
#define ERROR_CALL_NOT_IMPLEMENTED                                             120L
#define ERROR_INSUFFICIENT_BUFFER                                              122L
#define ERROR_MOD_NOT_FOUND                                                    126L
#define ERROR_PROC_NOT_FOUND                                                   127L
#define ERROR_MORE_DATA                                                        234L
#define ERROR_OPERATION_ABORTED                                                995L
#define ERROR_IO_PENDING                                                       997L
#define ERROR_RETRY                                                            1237L
#define ERROR_NOT_AUTHENTICATED                                                1244L
#define ERROR_REVISION_MISMATCH                                                1306L
#define ERROR_DEPENDENT_RESOURCE_EXISTS                                        5001L
#define ERROR_DEPENDENCY_NOT_FOUND                                             5002L
#define ERROR_DEPENDENCY_ALREADY_EXISTS                                        5003L
#define ERROR_RESOURCE_NOT_ONLINE                                              5004L
#define ERROR_HOST_NODE_NOT_AVAILABLE                                          5005L
#define ERROR_RESOURCE_NOT_AVAILABLE                                           5006L
#define ERROR_RESOURCE_NOT_FOUND                                               5007L
#define ERROR_OBJECT_ALREADY_EXISTS                                            5010L
#define ERROR_GROUP_NOT_AVAILABLE                                              5012L
#define ERROR_GROUP_NOT_FOUND                                                  5013L
#define ERROR_GROUP_NOT_ONLINE                                                 5014L
#define ERROR_CIRCULAR_DEPENDENCY                                              1059L
#define ERROR_HOST_NODE_NOT_GROUP_OWNER                                        5016L
#define ERROR_RESMON_CREATE_FAILED                                             5017L
#define ERROR_RESMON_ONLINE_FAILED                                             5018L
#define ERROR_RESOURCE_ONLINE                                                  5019L
#define ERROR_QUORUM_RESOURCE                                                  5020L
#define ERROR_NOT_QUORUM_CAPABLE                                               5021L
#define ERROR_CLUSTER_SHUTTING_DOWN                                            5022L
#define ERROR_INVALID_STATE                                                    5023L
#define ERROR_RESOURCE_PROPERTIES_STORED                                       5024L
#define ERROR_CORE_RESOURCE                                                    5026L
#define ERROR_NODE_NOT_AVAILABLE                                               5036L
#define ERROR_ALL_NODES_NOT_AVAILABLE                                          5037L
#define ERROR_RESOURCE_FAILED                                                  5038L
#define ERROR_CLUSTER_NODE_NOT_FOUND                                           5042L
#define ERROR_CLUSTER_NODE_DOWN                                                5050L
#define ERROR_DEPENDENCY_NOT_ALLOWED                                           5069L
#define ERROR_CLUSTER_NODE_PAUSED                                              5070L
#define ERROR_NODE_CANT_HOST_RESOURCE                                          5071L
#define ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND                                  5078L
#define ERROR_CLUSTER_RESTYPE_NOT_SUPPORTED                                    5079L
#define ERROR_CLUSTER_RESNAME_NOT_FOUND                                        5080L
#define ERROR_CLUSTER_OWNER_NOT_IN_PREFLIST                                    5082L
#define ERROR_RESMON_INVALID_STATE                                             5084L
#define ERROR_RESOURCE_PROPERTY_UNCHANGEABLE                                   5089L
#define ERROR_CLUSTER_GROUP_MOVING                                             5908L
#define ERROR_CLUSTER_RESOURCE_TYPE_BUSY                                       5909L
#define ERROR_RESOURCE_CALL_TIMED_OUT                                          5910L
#define ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS                                  5913L
#define ERROR_CLUSTER_NO_QUORUM                                                5925L
#define ERROR_DEPENDENCY_TREE_TOO_COMPLEX                                      5929L
#define ERROR_EXCEPTION_IN_RESOURCE_CALL                                       5930L
#define ERROR_CLUSTER_RHS_FAILED_INITIALIZATION                                5931L
#define ERROR_CLUSTER_RESOURCE_PROVIDER_FAILED                                 5942L
#define ERROR_CLUSTER_RESOURCE_CONFIGURATION_ERROR                             5943L
#define ERROR_CLUSTER_GROUP_BUSY                                               5944L
#define ERROR_CLUSTER_RESOURCE_VETOED_MOVE_INCOMPATIBLE_NODES                  5953L
#define ERROR_CLUSTER_RESOURCE_VETOED_CALL                                     5955L
#define ERROR_RESMON_SYSTEM_RESOURCES_LACKING                                  5956L
#define ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_DESTINATION 5957L
#define ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_SOURCE      5958L
#define ERROR_CLUSTER_GROUP_QUEUED                                             5959L
#define ERROR_CLUSTER_RESOURCE_LOCKED_STATUS                                   5960L
#define ERROR_CLUSTER_NODE_DRAIN_IN_PROGRESS                                   5962L
#define ERROR_CLUSTER_RESOURCE_IS_IN_MAINTENANCE_MODE                          5970L
#define ERROR_CLUSTER_AFFINITY_CONFLICT                                        5971L
#define WAIT_TIMEOUT                                                           258L

/* Control codes (CLUSCTL_*): object | operation, in the CLUSCTL control-code layout whose
   shifts are defined further down (object bits 24-31, modify 22, user 21, internal 20, function
   bits 2-19, access bits 0-1; bit 23, "global", is set by only two storage and network codes). */
#define CLUSCTL_RESOURCE_UNKNOWN                                 0x01000000
#define CLUSCTL_RESOURCE_GET_CHARACTERISTICS                     0x01000005
#define CLUSCTL_RESOURCE_GET_FLAGS                               0x01000009
#define CLUSCTL_RESOURCE_GET_CLASS_INFO                          0x0100000D
#define CLUSCTL_RESOURCE_GET_REQUIRED_DEPENDENCIES               0x01000011
#define CLUSCTL_RESOURCE_GET_FAILURE_INFO                        0x01000019
#define CLUSCTL_RESOURCE_GET_NAME                                0x01000029
#define CLUSCTL_RESOURCE_GET_RESOURCE_TYPE                       0x0100002D
#define CLUSCTL_RESOURCE_GET_ID                                  0x01000039
#define CLUSCTL_RESOURCE_ENUM_COMMON_PROPERTIES                  0x01000051
#define CLUSCTL_RESOURCE_GET_RO_COMMON_PROPERTIES                0x01000055
#define CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES                   0x01000059
#define CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES                   0x0140005E
#define CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES              0x01000061
#define CLUSCTL_RESOURCE_GET_COMMON_PROPERTY_FMTS                0x01000065
#define CLUSCTL_RESOURCE_ENUM_PRIVATE_PROPERTIES                 0x01000079
#define CLUSCTL_RESOURCE_GET_RO_PRIVATE_PROPERTIES               0x0100007D
#define CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES                  0x01000081
#define CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES                  0x01400086
#define CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES             0x01000089
#define CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTY_FMTS               0x0100008D
#define CLUSCTL_RESOURCE_ADD_REGISTRY_CHECKPOINT                 0x014000A2
#define CLUSCTL_RESOURCE_DELETE_REGISTRY_CHECKPOINT              0x014000A6
#define CLUSCTL_RESOURCE_GET_REGISTRY_CHECKPOINTS                0x010000A9
#define CLUSCTL_RESOURCE_QUERY_DELETE                            0x010001B9
#define CLUSCTL_RESOURCE_DELETE                                  0x01500006
#define CLUSCTL_RESOURCE_INSTALL_NODE                            0x0150000A
#define CLUSCTL_RESOURCE_EVICT_NODE                              0x0150000E
#define CLUSCTL_RESOURCE_ADD_DEPENDENCY                          0x01500012
#define CLUSCTL_RESOURCE_REMOVE_DEPENDENCY                       0x01500016
#define CLUSCTL_RESOURCE_ADD_OWNER                               0x0150001A
#define CLUSCTL_RESOURCE_REMOVE_OWNER                            0x0150001E
#define CLUSCTL_RESOURCE_SET_NAME                                0x01500026
#define CLUSCTL_RESOURCE_CLUSTER_NAME_CHANGED                    0x0150002A
#define CLUSCTL_RESOURCE_CLUSTER_VERSION_CHANGED                 0x0150002E
#define CLUSCTL_RESOURCE_FORCE_QUORUM                            0x01500046
#define CLUSCTL_RESOURCE_INITIALIZE                              0x0150004A
#define CLUSCTL_RESOURCE_STATE_CHANGE_REASON                     0x0150004E
#define CLUSCTL_RESOURCE_PROVIDER_STATE_CHANGE                   0x01500052
#define CLUSCTL_RESOURCE_LEAVING_GROUP                           0x01500056
#define CLUSCTL_RESOURCE_JOINING_GROUP                           0x0150005A
#define CLUSCTL_RESOURCE_TYPE_UNKNOWN                            0x02000000
#define CLUSCTL_RESOURCE_TYPE_GET_CHARACTERISTICS                0x02000005
#define CLUSCTL_RESOURCE_TYPE_GET_FLAGS                          0x02000009
#define CLUSCTL_RESOURCE_TYPE_GET_CLASS_INFO                     0x0200000D
#define CLUSCTL_RESOURCE_TYPE_GET_REQUIRED_DEPENDENCIES          0x02000011
#define CLUSCTL_RESOURCE_TYPE_GET_ARB_TIMEOUT                    0x02000015
#define CLUSCTL_RESOURCE_TYPE_ENUM_COMMON_PROPERTIES             0x02000051
#define CLUSCTL_RESOURCE_TYPE_GET_RO_COMMON_PROPERTIES           0x02000055
#define CLUSCTL_RESOURCE_TYPE_GET_COMMON_PROPERTIES              0x02000059
#define CLUSCTL_RESOURCE_TYPE_SET_COMMON_PROPERTIES              0x0240005E
#define CLUSCTL_RESOURCE_TYPE_VALIDATE_COMMON_PROPERTIES         0x02000061
#define CLUSCTL_RESOURCE_TYPE_GET_COMMON_PROPERTY_FMTS           0x02000065
#define CLUSCTL_RESOURCE_TYPE_ENUM_PRIVATE_PROPERTIES            0x02000079
#define CLUSCTL_RESOURCE_TYPE_GET_RO_PRIVATE_PROPERTIES          0x0200007D
#define CLUSCTL_RESOURCE_TYPE_GET_PRIVATE_PROPERTIES             0x02000081
#define CLUSCTL_RESOURCE_TYPE_SET_PRIVATE_PROPERTIES             0x02400086
#define CLUSCTL_RESOURCE_TYPE_VALIDATE_PRIVATE_PROPERTIES        0x02000089
#define CLUSCTL_RESOURCE_TYPE_GET_PRIVATE_PROPERTY_FMTS          0x0200008D
#define CLUSCTL_RESOURCE_TYPE_INSTALL_NODE                       0x0250000A
#define CLUSCTL_RESOURCE_TYPE_EVICT_NODE                         0x0250000E
#define CLUSCTL_RESOURCE_TYPE_CLUSTER_VERSION_CHANGED            0x0250002E
#define CLUSCTL_RESOURCE_TYPE_STARTING_PHASE1                    0x02500036
#define CLUSCTL_RESOURCE_TYPE_STARTING_PHASE2                    0x0250003A
#define CLUSCTL_RESOURCE_TYPE_NOTIFY_MONITOR_SHUTTING_DOWN       0x02100081

/* ---------------------------------------------------------------------------------------------
 * States and enumerations (clusapi.h / resapi.h values).
 * ------------------------------------------------------------------------------------------- */
typedef enum CLUSTER_RESOURCE_STATE {
    ClusterResourceStateUnknown = -1,
    ClusterResourceInherited = 0,
    ClusterResourceInitializing = 1,
    ClusterResourceOnline = 2,
    ClusterResourceOffline = 3,
    ClusterResourceFailed = 4,
    ClusterResourcePending = 128,
    ClusterResourceOnlinePending = 129,
    ClusterResourceOfflinePending = 130
} CLUSTER_RESOURCE_STATE;
#define ClusterResourceCannotComeOnlineOnThisNode ((CLUSTER_RESOURCE_STATE)(ClusterResourcePending - 1))
#define ClusterResourceCannotComeOnlineOnAnyNode ((CLUSTER_RESOURCE_STATE)(ClusterResourcePending - 2))

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

/* ---------------------------------------------------------------------------------------------
 * Flags.
 * ------------------------------------------------------------------------------------------- */
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

/* Characteristics (CLUSCTL_RESOURCE_GET_CHARACTERISTICS) and flags (…_GET_FLAGS). */
#define CLUS_CHAR_UNKNOWN                      0x00000000
#define CLUS_CHAR_QUORUM                       0x00000001
#define CLUS_CHAR_DELETE_REQUIRES_ALL_NODES    0x00000002
#define CLUS_CHAR_LOCAL_QUORUM                 0x00000004
#define CLUS_CHAR_LOCAL_QUORUM_DEBUG           0x00000008
#define CLUS_CHAR_REQUIRES_STATE_CHANGE_REASON 0x00000010
#define CLUS_CHAR_BROADCAST_DELETE             0x00000020
#define CLUS_CHAR_SINGLE_CLUSTER_INSTANCE      0x00000040
#define CLUS_CHAR_SINGLE_GROUP_INSTANCE        0x00000080
#define CLUS_CHAR_COEXIST_IN_SHARED_VOLUME_GROUP 0x00000100
#define CLUS_CHAR_PLACEMENT_DATA               0x00000200
#define CLUS_CHAR_MONITOR_DETACH               0x00000400
#define CLUS_CHAR_MONITOR_REATTACH             0x00000800
#define CLUS_CHAR_OPERATION_CONTEXT            0x00001000
#define CLUS_CHAR_CLONES                       0x00002000
#define CLUS_CHAR_NOT_PREEMPTABLE              0x00004000
#define CLUS_CHAR_NOTIFY_NEW_OWNER             0x00008000
#define CLUS_CHAR_SUPPORTS_UNMONITORED_STATE   0x00010000
#define CLUS_CHAR_INFRASTRUCTURE               0x00020000
#define CLUS_FLAG_CORE                         0x00000001

/* ---------------------------------------------------------------------------------------------
 * The CLUSCTL control-code layout (object, modify, user, internal, function and access fields)
 * and the property-list value syntaxes (CLUSPROP_SYNTAX_*: format in the low word, type in the
 * high word).
 * ------------------------------------------------------------------------------------------- */
#define CLUS_ACCESS_ANY          0
#define CLUS_ACCESS_READ         0x01
#define CLUS_ACCESS_WRITE        0x02
#define CLUS_NO_MODIFY           0
#define CLUS_MODIFY              0x01
/* Shift names: clusapi.h spells the inner ones CLCTL_*_SHIFT; the CLUSCTL_ spellings stay for
 * plug-ins written against earlier versions of this header. */
#define CLUSCTL_ACCESS_SHIFT     0
#define CLUSCTL_FUNCTION_SHIFT   2
#define CLCTL_INTERNAL_SHIFT     20
#define CLCTL_USER_SHIFT         21
#define CLCTL_MODIFY_SHIFT       22
#define CLCTL_GLOBAL_SHIFT       23
#define CLUSCTL_OBJECT_SHIFT     24
#define CLUSCTL_MODIFY_SHIFT     CLCTL_MODIFY_SHIFT
#define CLUSCTL_USER_SHIFT       CLCTL_USER_SHIFT
#define CLUSCTL_INTERNAL_SHIFT   CLCTL_INTERNAL_SHIFT
#define CLCTL_INTERNAL_MASK      (1 << CLCTL_INTERNAL_SHIFT)
#define CLCTL_USER_MASK          (1 << CLCTL_USER_SHIFT)
#define CLCTL_MODIFY_MASK        (1 << CLCTL_MODIFY_SHIFT)
#define CLCTL_GLOBAL_MASK        (1 << CLCTL_GLOBAL_SHIFT)
#define CLUSCTL_CONTROL_CODE_MASK 0x3FFFFF
#define CLUSCTL_OBJECT_MASK      0xFF
#define CLUSCTL_ACCESS_MODE_MASK 0x03
#define CLCTL_CLUSTER_BASE       0
#define CLCTL_USER_BASE          (1 << CLCTL_USER_SHIFT)
#define CLCTL_EXTERNAL_CODE(Function, Access, Modify) \
    (((Access) << CLUSCTL_ACCESS_SHIFT) | ((Function) << CLUSCTL_FUNCTION_SHIFT) | ((Modify) << CLCTL_MODIFY_SHIFT))
#define CLCTL_INTERNAL_CODE(Function, Access, Modify) \
    (CLCTL_EXTERNAL_CODE(Function, Access, Modify) | CLCTL_INTERNAL_MASK)
/* A user-defined operation. As Windows' CLUSCTL_USER_CODE does, CLCTL_USER_BASE is added to the
 * function before the shift, so the user bit lands on bit 23: CLUSCTL_RESOURCE_USER_CODE(1, 0)
 * is 0x01800004 = CLUSCTL_USER_CODE(1, CLUS_OBJECT_RESOURCE), the code a Windows DLL and its
 * clients use. */
#define CLCTL_USER_CODE(Function, Modify) \
    (((CLCTL_USER_BASE + (Function)) << CLUSCTL_FUNCTION_SHIFT) | ((Modify) << CLCTL_MODIFY_SHIFT))
#define CLUS_OBJECT_RESOURCE      1
#define CLUS_OBJECT_RESOURCE_TYPE 2
#define CLUS_OBJECT_USER          128
#define CLUSCTL_RESOURCE_CODE(Function)      (((CLUS_OBJECT_RESOURCE) << CLUSCTL_OBJECT_SHIFT) | (Function))
#define CLUSCTL_RESOURCE_TYPE_CODE(Function) (((CLUS_OBJECT_RESOURCE_TYPE) << CLUSCTL_OBJECT_SHIFT) | (Function))
#define CLUSCTL_RESOURCE_USER_CODE(Function, Modify) (CLUSCTL_RESOURCE_CODE(CLCTL_USER_CODE(Function, Modify)))
#define CLUSCTL_USER_CODE(Function, Object) \
    (((Object) << CLUSCTL_OBJECT_SHIFT) | ((CLCTL_USER_BASE + (Function)) << CLUSCTL_FUNCTION_SHIFT))
#define CLUSCTL_GET_CONTROL_FUNCTION(ControlCode) (((ControlCode) >> CLUSCTL_ACCESS_SHIFT) & CLUSCTL_CONTROL_CODE_MASK)
#define CLUSCTL_GET_ACCESS_MODE(ControlCode)      (((ControlCode) >> CLUSCTL_ACCESS_SHIFT) & CLUSCTL_ACCESS_MODE_MASK)
#define CLUSCTL_GET_CONTROL_OBJECT(ControlCode)   (((ControlCode) >> CLUSCTL_OBJECT_SHIFT) & CLUSCTL_OBJECT_MASK)
#define CLUSCTL_GET_USER(ControlCode)             (((ControlCode) & CLCTL_USER_MASK) >> CLCTL_USER_SHIFT)

#define CLUSPROP_FORMAT_UNKNOWN             0
#define CLUSPROP_FORMAT_BINARY              1
#define CLUSPROP_FORMAT_DWORD               2
#define CLUSPROP_FORMAT_SZ                  3
#define CLUSPROP_FORMAT_EXPAND_SZ           4
#define CLUSPROP_FORMAT_MULTI_SZ            5
#define CLUSPROP_FORMAT_ULARGE_INTEGER      6
#define CLUSPROP_FORMAT_LONG                7
#define CLUSPROP_FORMAT_EXPANDED_SZ         8
#define CLUSPROP_FORMAT_SECURITY_DESCRIPTOR 9
#define CLUSPROP_FORMAT_LARGE_INTEGER       10
#define CLUSPROP_FORMAT_WORD                11
#define CLUSPROP_FORMAT_FILETIME            12
#define CLUSPROP_FORMAT_VALUE_LIST          13
#define CLUSPROP_FORMAT_PROPERTY_LIST       14
#define CLUSPROP_FORMAT_USER                32768
#define CLUSPROP_TYPE_ENDMARK               0
#define CLUSPROP_TYPE_LIST_VALUE            1
#define CLUSPROP_TYPE_RESCLASS              2
#define CLUSPROP_TYPE_NAME                  4
#define CLUSPROP_TYPE_USER                  32768
#define CLUSPROP_SYNTAX_ENDMARK                   0x00000000
#define CLUSPROP_SYNTAX_NAME                      0x00040003
#define CLUSPROP_SYNTAX_RESCLASS                  0x00020002
#define CLUSPROP_SYNTAX_LIST_VALUE_BINARY         0x00010001
#define CLUSPROP_SYNTAX_LIST_VALUE_DWORD          0x00010002
#define CLUSPROP_SYNTAX_LIST_VALUE_SZ             0x00010003
#define CLUSPROP_SYNTAX_LIST_VALUE_MULTI_SZ       0x00010005
#define CLUSPROP_SYNTAX_LIST_VALUE_ULARGE_INTEGER 0x00010006
#define CLUSPROP_SYNTAX_LIST_VALUE_FILETIME       0x0001000C

/* ---------------------------------------------------------------------------------------------
 * Status structures.
 * ------------------------------------------------------------------------------------------- */
/* V1 layout, as given to the Startup (V1) SetResourceStatus callback. */
typedef struct RESOURCE_STATUS {
    CLUSTER_RESOURCE_STATE ResourceState;
    DWORD CheckPoint;
    DWORD WaitHint;            /* unused */
    HANDLE EventHandle;        /* Linux: ignored */
} RESOURCE_STATUS, *PRESOURCE_STATUS;

/* Note the different field order from RESOURCE_STATUS: WaitHint moved to the end. */
typedef struct RESOURCE_STATUS_EX {
    CLUSTER_RESOURCE_STATE ResourceState;
    DWORD CheckPoint;
    HANDLE EventHandle;        /* Linux: ignored */
    DWORD ApplicationSpecificErrorCode;
    DWORD Flags;               /* CLUSRESDLL_STATUS_* */
    DWORD WaitHint;            /* unused */
} RESOURCE_STATUS_EX, *PRESOURCE_STATUS_EX;

#define ResUtilInitializeResourceStatus(s) memset((s), 0, sizeof(RESOURCE_STATUS))
#define ResUtilInitializeResourceStatusEx(s) memset((s), 0, sizeof(RESOURCE_STATUS_EX))

/* ---------------------------------------------------------------------------------------------
 * Private properties. Linux: replaces the registry key (HKEY) that Open receives.
 *
 * The handle stays valid until Close returns and always reads the current values, so a plug-in
 * may keep it and re-read its properties at every Online (as a DLL re-reads its key).
 * ------------------------------------------------------------------------------------------- */
typedef struct HALO_PARAMETERS_ *HALO_PARAMETERS;
#define HALO_PARAMETERS_VERSION_1 1
#define HALO_PARAMETERS_VERSION_2 2
typedef struct HALO_PARAMETERS_TABLE {
    DWORD Version; /* HALO_PARAMETERS_VERSION_2 (halo fills in every member of its version) */
    /* The property as UTF-8 text (numbers in decimal, MULTI_SZ joined by '\n'), NUL-terminated.
     * *BufferSize: in, the buffer's size; out, the size needed including the NUL.
     * ERROR_SUCCESS; ERROR_FILE_NOT_FOUND if absent; ERROR_MORE_DATA if the buffer is too small
     * (nothing written); ERROR_INVALID_DATA if the value has no text form (binary). */
    DWORD (*GetString)(HALO_PARAMETERS Parameters, LPCSTR Name, LPSTR Buffer, LPDWORD BufferSize);
    /* A DWORD property, or a string holding a number (decimal or 0x hex).
     * ERROR_SUCCESS; ERROR_FILE_NOT_FOUND if absent; ERROR_INVALID_DATA if not a 32-bit number. */
    DWORD (*GetDword)(HALO_PARAMETERS Parameters, LPCSTR Name, LPDWORD Value);
    /* Every private property as a CLUSPROP property list (UTF-16LE strings, as on the wire).
     * ERROR_SUCCESS, or ERROR_MORE_DATA with *BytesReturned = the size needed. */
    DWORD (*GetPropertyList)(HALO_PARAMETERS Parameters, PVOID Buffer, DWORD BufferSize, LPDWORD BytesReturned);
    /* Version 2 (HALO_PARAMETERS_VERSION_2): registry semantics over wchar_t (UTF-32) names and
     * data, used by the ClusterReg* calls of include/compat/clusapi.h. Check Version first. */
    DWORD (*QueryValueW)(HALO_PARAMETERS Parameters, const wchar_t *Name, LPDWORD Type, PBYTE Data, LPDWORD cbData);
    DWORD (*SetValueW)(HALO_PARAMETERS Parameters, const wchar_t *Name, DWORD Type, const BYTE *Data, DWORD cbData);
    DWORD (*DeleteValueW)(HALO_PARAMETERS Parameters, const wchar_t *Name);
    DWORD (*EnumValueW)(HALO_PARAMETERS Parameters, DWORD Index, wchar_t *Name, LPDWORD cchName, LPDWORD Type,
                        PBYTE Data, LPDWORD cbData);
} HALO_PARAMETERS_TABLE;
struct HALO_PARAMETERS_ {
    const HALO_PARAMETERS_TABLE *Table;
    /* halo's data follows; do not touch. */
};
static inline DWORD HaloGetParameterString(HALO_PARAMETERS P, LPCSTR Name, LPSTR Buffer, LPDWORD BufferSize) {
    return P->Table->GetString(P, Name, Buffer, BufferSize);
}
static inline DWORD HaloGetParameterDword(HALO_PARAMETERS P, LPCSTR Name, LPDWORD Value) {
    return P->Table->GetDword(P, Name, Value);
}
static inline DWORD HaloGetParameterList(HALO_PARAMETERS P, PVOID Buffer, DWORD BufferSize, LPDWORD BytesReturned) {
    return P->Table->GetPropertyList(P, Buffer, BufferSize, BytesReturned);
}

/* ---------------------------------------------------------------------------------------------
 * Callbacks the monitor (halo's host) provides.
 * ------------------------------------------------------------------------------------------- */
/* Linux: printf-style format. One entry is at most 500 characters; longer text is cut. */
typedef VOID (*PLOG_EVENT_ROUTINE)(RESOURCE_HANDLE ResourceHandle, LOG_LEVEL LogLevel, LPCWSTR FormatString, ...);
/* Returns a RESOURCE_EXIT_STATE: ResourceExitStateTerminate means stop the worker now. */
typedef DWORD (*PSET_RESOURCE_STATUS_ROUTINE)(RESOURCE_HANDLE ResourceHandle, PRESOURCE_STATUS ResourceStatus);
typedef DWORD (*PSET_RESOURCE_STATUS_ROUTINE_EX)(RESOURCE_HANDLE ResourceHandle, PRESOURCE_STATUS_EX ResourceStatus);
typedef DWORD (*PSET_RESOURCE_LOCKED_MODE_ROUTINE)(RESOURCE_HANDLE ResourceHandle, BOOL LockedModeEnabled, DWORD LockedModeReason);
typedef DWORD (*PSIGNAL_FAILURE_ROUTINE)(RESOURCE_HANDLE ResourceHandle, FAILURE_TYPE FailureType, DWORD ApplicationSpecificErrorCode);
typedef DWORD (*PSET_RESOURCE_INMEMORY_NODELOCAL_PROPERTIES_ROUTINE)(RESOURCE_HANDLE ResourceHandle, unsigned char *propertyListBuffer, DWORD propertyListBufferSize);
typedef INT64 PRES_CTL_CTX;
typedef INT64 PRESTYPE_CTL_CTX;
typedef DWORD (*PEND_CONTROL_CALL)(const PRES_CTL_CTX context, DWORD status);
typedef DWORD (*PEND_TYPE_CONTROL_CALL)(const PRESTYPE_CTL_CTX context, DWORD status);
typedef DWORD (*PEXTEND_RES_CONTROL_CALL)(const PRES_CTL_CTX context, DWORD newTimeoutInMs);
typedef DWORD (*PEXTEND_RES_TYPE_CONTROL_CALL)(const PRESTYPE_CTL_CTX context, DWORD newTimeoutInMs);
typedef DWORD (*PRAISE_RES_TYPE_NOTIFICATION)(LPCWSTR ResourceType, const PBYTE pPayload, DWORD payloadSize);
typedef DWORD (*PCHANGE_RESOURCE_PROCESS_FOR_DUMPS)(RESOURCE_HANDLE resource, LPCWSTR processName, DWORD processId, BOOL isAdd);
typedef DWORD (*PCHANGE_RES_TYPE_PROCESS_FOR_DUMPS)(LPCWSTR resourceTypeName, LPCWSTR processName, DWORD processId, BOOL isAdd);
typedef DWORD (*PSET_INTERNAL_STATE)(RESOURCE_HANDLE ResourceHandle, CLUSTER_RESOURCE_APPLICATION_STATE stateType, BOOL active);
typedef DWORD (*PSET_RESOURCE_LOCKED_MODE_EX_ROUTINE)(RESOURCE_HANDLE ResourceHandle, BOOL LockedModeEnabled, DWORD LockedModeReason, DWORD LockedModeFlags);
typedef DWORD (*PREQUEST_DUMP_ROUTINE)(RESOURCE_HANDLE ResourceHandle, BOOL DumpDueToCallInProgress, DWORD DumpDelayInMs);
typedef DWORD (*PSET_RESOURCE_WPR_POLICY_ROUTINE)(RESOURCE_HANDLE ResourceHandle, DWORD WprPolicyFlags);
typedef DWORD (*PARM_WPR_WATCHDOG_FOR_CURRENT_RESOURCE_CALL_ROUTINE)(RESOURCE_HANDLE ResourceHandle, ULONGLONG TimeoutInMs);
typedef VOID (*PQUORUM_RESOURCE_LOST)(RESOURCE_HANDLE Resource);

/* Given to StartupEx. Every member is non-NULL. Linux: halo implements LogEvent,
 * SetResourceStatusEx, SetResourceLockedMode, SignalFailure,
 * SetResourceInMemoryNodeLocalProperties and SetResourceLockedModeEx. The control-call members
 * answer ERROR_INVALID_PARAMETER (halo starts no asynchronous control calls: it negotiates V2),
 * and the dump, notification, internal-state and WPR members answer ERROR_NOT_SUPPORTED. */
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
/* Linux: ResourceKey is a HALO_PARAMETERS handle. On failure return NULL after SetLastError. */
typedef RESID (*POPEN_ROUTINE)(LPCWSTR ResourceName, HALO_PARAMETERS ResourceKey, RESOURCE_HANDLE ResourceHandle);
typedef RESID (*POPEN_V2_ROUTINE)(LPCWSTR ResourceName, HALO_PARAMETERS ResourceKey, RESOURCE_HANDLE ResourceHandle, DWORD OpenFlags);
typedef VOID (*PCLOSE_ROUTINE)(RESID Resource);
typedef DWORD (*PONLINE_ROUTINE)(RESID Resource, LPHANDLE EventHandle);
/* halo extension: InBuffer of OnlineV2 and OfflineV2 holds a property list with one
 * ULARGE_INTEGER property "Epoch", the group's ownership epoch (it only grows; a resource may
 * refuse a caller with an older one to fence a stale owner). See docs/wsfc-contract.md. */
typedef DWORD (*PONLINE_V2_ROUTINE)(RESID Resource, LPHANDLE EventHandle, DWORD OnlineFlags, PBYTE InBuffer, DWORD InBufferSize, DWORD Reserved);
typedef DWORD (*POFFLINE_ROUTINE)(RESID Resource);
/* DestinationNodeName is NULL unless the offline is part of a move. */
typedef DWORD (*POFFLINE_V2_ROUTINE)(RESID Resource, LPCWSTR DestinationNodeName, DWORD OfflineFlags, PBYTE InBuffer, DWORD InBufferSize, DWORD Reserved);
typedef VOID (*PTERMINATE_ROUTINE)(RESID Resource);
typedef BOOL (*PIS_ALIVE_ROUTINE)(RESID Resource);
typedef BOOL (*PLOOKS_ALIVE_ROUTINE)(RESID Resource);
typedef DWORD (*PARBITRATE_ROUTINE)(RESID Resource, PQUORUM_RESOURCE_LOST LostQuorumResource);
typedef DWORD (*PRELEASE_ROUTINE)(RESID Resource);
typedef DWORD (*PRESOURCE_CONTROL_ROUTINE)(RESID Resource, DWORD ControlCode, PVOID InBuffer, DWORD InBufferSize, PVOID OutBuffer, DWORD OutBufferSize, LPDWORD BytesReturned);
typedef DWORD (*PRESOURCE_TYPE_CONTROL_ROUTINE)(LPCWSTR ResourceTypeName, DWORD ControlCode, PVOID InBuffer, DWORD InBufferSize, PVOID OutBuffer, DWORD OutBufferSize, LPDWORD BytesReturned);
typedef DWORD (*PCANCEL_ROUTINE)(RESID Resource, DWORD CancelFlags_RESERVED);

#define CLRES_VERSION_V1_00 0x100
#define CLRES_VERSION_V2_00 0x200
#define CLRES_VERSION_V3_00 0x300 /* not accepted by halo */
#define CLRES_VERSION_V4_00 0x400 /* not accepted by halo */

/* Every member non-NULL except Arbitrate and Release (quorum-capable types only). */
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

/* Every member non-NULL except Arbitrate and Release (quorum-capable types only). */
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

/* TableSize = CLRES_Vn_FUNCTION_SIZE of the Version filled in. Only TableSize and Version have
 * fixed offsets; the union starts at the next pointer-aligned offset. */
typedef struct CLRES_FUNCTION_TABLE {
    DWORD TableSize;
    DWORD Version;
    union {
        CLRES_V1_FUNCTIONS V1Functions;
        CLRES_V2_FUNCTIONS V2Functions;
    };
} CLRES_FUNCTION_TABLE, *PCLRES_FUNCTION_TABLE;

#define CLRES_V1_FUNCTION_TABLE(_Name, _Version, _Prefix, _Arbitrate, _Release, _ResControl, _ResTypeControl) \
    CLRES_FUNCTION_TABLE _Name = {CLRES_V1_FUNCTION_SIZE, _Version, {{_Prefix##Open, _Prefix##Close,          \
        _Prefix##Online, _Prefix##Offline, _Prefix##Terminate, _Prefix##LooksAlive, _Prefix##IsAlive,        \
        _Arbitrate, _Release, _ResControl, _ResTypeControl}}}

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

/* Exported by the plug-in (extern "C", default visibility). halo calls StartupEx if present,
 * else Startup, once per resource type and host, with MinVersionSupported = CLRES_VERSION_V1_00
 * and MaxVersionSupported = CLRES_VERSION_V2_00. Return the newest table version within
 * [Min, Max], ERROR_REVISION_MISMATCH if there is none, ERROR_CLUSTER_RESNAME_NOT_FOUND for a
 * type the plug-in does not serve. The tables must stay valid while the plug-in is loaded. */
#define STARTUP_ROUTINE "Startup"
#define STARTUP_EX_ROUTINE "StartupEx"
typedef DWORD (*PSTARTUP_ROUTINE)(LPCWSTR ResourceType, DWORD MinVersionSupported, DWORD MaxVersionSupported,
                                  PSET_RESOURCE_STATUS_ROUTINE SetResourceStatus, PLOG_EVENT_ROUTINE LogEvent,
                                  PCLRES_FUNCTION_TABLE *FunctionTable);
typedef DWORD (*PSTARTUP_EX_ROUTINE)(LPCWSTR ResourceType, DWORD MinVersionSupported, DWORD MaxVersionSupported,
                                     PCLRES_CALLBACK_FUNCTION_TABLE MonitorCallbackFunctions,
                                     PCLRES_FUNCTION_TABLE *ResourceDllInterfaceFunctions);

/* ---------------------------------------------------------------------------------------------
 * Worker threads (ClusWorker*). Linux: inline helpers over pthreads (link with -pthread); the
 * CLUS_WORKER members after Terminate are private.
 * ------------------------------------------------------------------------------------------- */
typedef struct CLUS_WORKER CLUS_WORKER, *PCLUS_WORKER;
typedef DWORD (*PWORKER_START_ROUTINE)(PCLUS_WORKER pWorker, LPVOID lpThreadParameter);
struct CLUS_WORKER {
    pthread_t hThread;
    volatile BOOL Terminate;
    /* private */
    int Joinable_;
    volatile int Done_;
    PWORKER_START_ROUTINE Start_;
    LPVOID Parameter_;
};

static inline void *ClusWorkerThread_(void *Worker) {
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
    if (pthread_create(&lpWorker->hThread, NULL, ClusWorkerThread_, lpWorker) != 0) {
        lpWorker->Joinable_ = 0;
        return ERROR_NOT_ENOUGH_MEMORY;
    }
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
        pthread_join(lpWorker->hThread, NULL);
    }
}

/* Waits up to TimeoutInMilliseconds for the worker to exit; unless WaitOnly, requests
 * termination first. ERROR_SUCCESS if it exited, WAIT_TIMEOUT otherwise. */
static inline DWORD ClusWorkerTerminateEx(PCLUS_WORKER ClusWorker, DWORD TimeoutInMilliseconds, BOOL WaitOnly) {
    struct timespec start, now, pause = {0, 1000000};
    if (!WaitOnly) {
        __atomic_store_n(&ClusWorker->Terminate, TRUE, __ATOMIC_RELEASE);
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!__atomic_load_n(&ClusWorker->Done_, __ATOMIC_ACQUIRE)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t elapsed_ms = (int64_t)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed_ms >= (int64_t)TimeoutInMilliseconds) {
            return WAIT_TIMEOUT;
        }
        nanosleep(&pause, NULL);
    }
    if (__atomic_exchange_n(&ClusWorker->Joinable_, 0, __ATOMIC_ACQ_REL)) {
        pthread_join(ClusWorker->hThread, NULL);
    }
    return ERROR_SUCCESS;
}

/* ClusWorkerTerminateEx over several workers, sharing one timeout. */
static inline DWORD ClusWorkersTerminate(PCLUS_WORKER *ClusWorkers, const size_t ClusWorkersCount,
                                         DWORD TimeoutInMilliseconds, BOOL WaitOnly) {
    DWORD result = ERROR_SUCCESS;
    struct timespec start, now;
    size_t i;
    if (!WaitOnly) {
        for (i = 0; i < ClusWorkersCount; i++) {
            __atomic_store_n(&ClusWorkers[i]->Terminate, TRUE, __ATOMIC_RELEASE);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (i = 0; i < ClusWorkersCount; i++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t elapsed_ms = (int64_t)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        DWORD left = elapsed_ms >= (int64_t)TimeoutInMilliseconds ? 0 : (DWORD)(TimeoutInMilliseconds - elapsed_ms);
        if (ClusWorkerTerminateEx(ClusWorkers[i], left, TRUE) != ERROR_SUCCESS) {
            result = WAIT_TIMEOUT;
        }
    }
    return result;
}

#ifdef __cplusplus
}
#endif

#endif /* HALO_RESAPI_H */
