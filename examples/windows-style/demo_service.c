/*
 * demo_service.c — a resource DLL written the Windows way, built for halo unchanged.
 *
 * README. This is what a WSFC resource DLL source looks like when it follows Microsoft's
 * documentation: <windows.h>, <clusapi.h> and <resapi.h>; wide strings; a property table over a
 * parameter block read from the resource's "Parameters" key; a ClusWorker thread that reports
 * OnlinePending checkpoints; ResourceControl answering the property codes with the ResUtil
 * helpers; LogEvent with FormatMessage inserts. Nothing in it knows about halo. Build it with
 *
 *     cc -Wall -Wextra -Werror -shared -fPIC -I include/compat \
 *        -o libdemo_service.so examples/windows-style/demo_service.c
 *
 * and register the .so as a `native` type named "Halo Demo Service". Private properties:
 *
 *   ServiceName  (string, required)  the service to run; no spaces (checked by the DLL)
 *   Port         (number, 1-65535, default 8080)
 *   OnlineSteps  (number, 1-50, default 3)  OnlinePending checkpoints before Online
 *   Tags         (multi-string, optional)
 *
 * Control codes: GET_CHARACTERISTICS (CLUS_CHAR_NOT_PREEMPTABLE), ENUM_PRIVATE_PROPERTIES,
 * GET_PRIVATE_PROPERTY_FMTS, GET_PRIVATE_PROPERTIES, VALIDATE_PRIVATE_PROPERTIES (refuses an out
 * of range number or a ServiceName with a space), SET_PRIVATE_PROPERTIES (writes the key, answers
 * ERROR_RESOURCE_PROPERTIES_STORED while online), and a user code, CLUSCTL_DEMO_GET_STATUS, whose
 * output is a WCHAR string ("<ServiceName> online=<0|1> port=<n> onlines=<n>"). Online reads an
 * optional "Epoch" ULARGE_INTEGER from its InBuffer and logs it. tests/windows_style.rs in
 * types/native drives every one of these through halo's loader.
 */
#include <windows.h>
#include <clusapi.h>
#include <resapi.h>

#include <wchar.h>

#define DEMO_RESOURCE_TYPE_NAME L"Halo Demo Service"

/* Private property names, ranges and defaults. */
#define PROP_NAME__SERVICENAME L"ServiceName"
#define PROP_NAME__PORT L"Port"
#define PROP_NAME__ONLINESTEPS L"OnlineSteps"
#define PROP_NAME__TAGS L"Tags"
#define PROP_MIN__PORT (1)
#define PROP_MAX__PORT (65535)
#define PROP_DEFAULT__PORT (8080)
#define PROP_MIN__ONLINESTEPS (1)
#define PROP_MAX__ONLINESTEPS (50)
#define PROP_DEFAULT__ONLINESTEPS (3)

/* A user-defined control code: the resource's status as a WCHAR string. */
#define CLUSCTL_DEMO_GET_STATUS CLUSCTL_USER_CODE(1, CLUS_OBJECT_RESOURCE)

typedef struct DEMO_PARAMS {
    LPWSTR ServiceName;
    DWORD Port;
    DWORD OnlineSteps;
    LPWSTR Tags; /* MULTI_SZ: the pointer, then its size */
    DWORD TagsSize;
} DEMO_PARAMS, *PDEMO_PARAMS;

RESUTIL_PROPERTY_ITEM DemoResourcePrivateProperties[] = {
    {PROP_NAME__SERVICENAME, NULL, CLUSPROP_FORMAT_SZ, 0, 0, 0, RESUTIL_PROPITEM_REQUIRED,
     FIELD_OFFSET(DEMO_PARAMS, ServiceName)},
    {PROP_NAME__PORT, NULL, CLUSPROP_FORMAT_DWORD, PROP_DEFAULT__PORT, PROP_MIN__PORT, PROP_MAX__PORT, 0,
     FIELD_OFFSET(DEMO_PARAMS, Port)},
    {PROP_NAME__ONLINESTEPS, NULL, CLUSPROP_FORMAT_DWORD, PROP_DEFAULT__ONLINESTEPS, PROP_MIN__ONLINESTEPS,
     PROP_MAX__ONLINESTEPS, 0, FIELD_OFFSET(DEMO_PARAMS, OnlineSteps)},
    {PROP_NAME__TAGS, NULL, CLUSPROP_FORMAT_MULTI_SZ, 0, 0, 0, 0, FIELD_OFFSET(DEMO_PARAMS, Tags)},
    {0}};

typedef struct DEMO_RESOURCE {
    RESOURCE_HANDLE ResourceHandle;
    LPWSTR ResourceName;
    HKEY ParametersKey;
    DEMO_PARAMS Params;
    CLUS_WORKER OnlineThread;
    CRITICAL_SECTION Lock;
    volatile CLUSTER_RESOURCE_STATE State;
    DWORD OnlineCount;
} DEMO_RESOURCE, *PDEMO_RESOURCE;

static PLOG_EVENT_ROUTINE g_LogEvent = NULL;
static PSET_RESOURCE_STATUS_ROUTINE g_SetResourceStatus = NULL;
static CLRES_FUNCTION_TABLE g_DemoFunctionTable;

static RESID WINAPI DemoOpenV2(_In_ LPCWSTR ResourceName, _In_ HKEY ResourceKey, _In_ RESOURCE_HANDLE ResourceHandle,
                               _In_ DWORD OpenFlags) {
    PDEMO_RESOURCE resource = NULL;
    HKEY parametersKey = NULL;
    DWORD status;

    g_LogEvent(ResourceHandle, LOG_INFORMATION, L"Open request for %1 with flags %2!u!.\n", ResourceName, OpenFlags);
    status = ClusterRegOpenKey(ResourceKey, L"Parameters", KEY_ALL_ACCESS, &parametersKey);
    if (status != ERROR_SUCCESS) {
        g_LogEvent(ResourceHandle, LOG_ERROR, L"Open: unable to open the Parameters key. Error: %1!u!.\n", status);
        SetLastError(status);
        return NULL;
    }
    resource = (PDEMO_RESOURCE)LocalAlloc(LMEM_FIXED | LMEM_ZEROINIT, sizeof(DEMO_RESOURCE));
    if (resource == NULL) {
        ClusterRegCloseKey(parametersKey);
        SetLastError(ERROR_NOT_ENOUGH_MEMORY);
        return NULL;
    }
    resource->ResourceHandle = ResourceHandle;
    resource->ParametersKey = parametersKey;
    resource->State = ClusterResourceOffline;
    resource->ResourceName = ResUtilDupString(ResourceName);
    InitializeCriticalSection(&resource->Lock);
    g_LogEvent(ResourceHandle, LOG_INFORMATION, L"Open: resource '%1!ws!' is ready (%2!u! bytes of state).\n",
               resource->ResourceName != NULL ? resource->ResourceName : L"?", (DWORD)sizeof(DEMO_RESOURCE));
    return (RESID)resource;
}

static VOID WINAPI DemoClose(_In_ RESID ResourceId) {
    PDEMO_RESOURCE resource = (PDEMO_RESOURCE)ResourceId;
    if (resource == NULL) {
        return;
    }
    ClusWorkerTerminate(&resource->OnlineThread);
    g_LogEvent(resource->ResourceHandle, LOG_INFORMATION, L"Close: %1!ws!.\n", resource->ResourceName);
    ResUtilFreeParameterBlock((LPBYTE)&resource->Params, NULL, DemoResourcePrivateProperties);
    ClusterRegCloseKey(resource->ParametersKey);
    LocalFree(resource->ResourceName);
    DeleteCriticalSection(&resource->Lock);
    LocalFree(resource);
}

static DWORD WINAPI DemoOnlineThread(_In_ PCLUS_WORKER WorkerPtr, _In_ LPVOID Context) {
    PDEMO_RESOURCE resource = (PDEMO_RESOURCE)Context;
    RESOURCE_STATUS resourceStatus;
    DWORD step;

    ResUtilInitializeResourceStatus(&resourceStatus);
    resourceStatus.ResourceState = ClusterResourceOnlinePending;
    for (step = 1; step <= resource->Params.OnlineSteps; step++) {
        if (ClusWorkerCheckTerminate(WorkerPtr)) {
            return ERROR_OPERATION_ABORTED;
        }
        resourceStatus.CheckPoint = step;
        if (g_SetResourceStatus(resource->ResourceHandle, &resourceStatus) == ResourceExitStateTerminate) {
            g_LogEvent(resource->ResourceHandle, LOG_WARNING, L"Online: stopped at step %1!u!.\n", step);
            return ERROR_OPERATION_ABORTED;
        }
    }
    EnterCriticalSection(&resource->Lock);
    resource->State = ClusterResourceOnline;
    resource->OnlineCount++;
    LeaveCriticalSection(&resource->Lock);
    resourceStatus.ResourceState = ClusterResourceOnline;
    resourceStatus.CheckPoint = step;
    g_LogEvent(resource->ResourceHandle, LOG_INFORMATION,
               L"Online: %1!ws! serves on port %2!u! after %3!u! steps (100%% done).\n", resource->Params.ServiceName,
               resource->Params.Port, resource->Params.OnlineSteps);
    g_SetResourceStatus(resource->ResourceHandle, &resourceStatus);
    return ERROR_SUCCESS;
}

static DWORD WINAPI DemoOnlineV2(_In_ RESID ResourceId, _Inout_opt_ PHANDLE EventHandle, _In_ DWORD OnlineFlags,
                                 _In_reads_bytes_opt_(InBufferSize) PBYTE InBuffer, _In_ DWORD InBufferSize,
                                 _In_ DWORD Reserved) {
    PDEMO_RESOURCE resource = (PDEMO_RESOURCE)ResourceId;
    LPWSTR nameOfPropInError = NULL;
    ULONGLONG epoch = 0;
    DWORD status;

    UNREFERENCED_PARAMETER(OnlineFlags);
    UNREFERENCED_PARAMETER(Reserved);
    if (EventHandle != NULL) {
        *EventHandle = NULL;
    }
    /* Re-read the properties at every online, as the key may have changed. */
    status = ResUtilGetPropertiesToParameterBlock(resource->ParametersKey, DemoResourcePrivateProperties,
                                                  (LPBYTE)&resource->Params, TRUE, &nameOfPropInError);
    if (status != ERROR_SUCCESS) {
        g_LogEvent(resource->ResourceHandle, LOG_ERROR, L"Online: unable to read the '%1' property. Error: %2!u!.\n",
                   nameOfPropInError != NULL ? nameOfPropInError : L"?", status);
        return status;
    }
    if (InBuffer != NULL &&
        ResUtilFindULargeIntegerProperty(InBuffer, InBufferSize, L"Epoch", &epoch) == ERROR_SUCCESS) {
        g_LogEvent(resource->ResourceHandle, LOG_INFORMATION, L"Online: ownership epoch %1!I64u!.\n", epoch);
    }
    ClusWorkerTerminate(&resource->OnlineThread);
    resource->State = ClusterResourceOnlinePending;
    status = ClusWorkerCreate(&resource->OnlineThread, DemoOnlineThread, resource);
    if (status != ERROR_SUCCESS) {
        resource->State = ClusterResourceFailed;
        g_LogEvent(resource->ResourceHandle, LOG_ERROR, L"Online: unable to start the worker. Error: %1!u!.\n",
                   status);
        return status;
    }
    return ERROR_IO_PENDING;
}

static DWORD WINAPI DemoOfflineV2(_In_ RESID ResourceId, _In_opt_ LPCWSTR DestinationNodeName,
                                  _In_ DWORD OfflineFlags, _In_reads_bytes_opt_(InBufferSize) PBYTE InBuffer,
                                  _In_ DWORD InBufferSize, _In_ DWORD Reserved) {
    PDEMO_RESOURCE resource = (PDEMO_RESOURCE)ResourceId;
    UNREFERENCED_PARAMETER(InBuffer);
    UNREFERENCED_PARAMETER(InBufferSize);
    UNREFERENCED_PARAMETER(Reserved);
    ClusWorkerTerminate(&resource->OnlineThread);
    resource->State = ClusterResourceOffline;
    g_LogEvent(resource->ResourceHandle, LOG_INFORMATION, L"Offline: destination %1!ws!, flags 0x%2!02x!.\n",
               DestinationNodeName != NULL ? DestinationNodeName : L"(none)", OfflineFlags);
    return ERROR_SUCCESS;
}

static VOID WINAPI DemoTerminate(_In_ RESID ResourceId) {
    PDEMO_RESOURCE resource = (PDEMO_RESOURCE)ResourceId;
    ClusWorkerTerminate(&resource->OnlineThread);
    resource->State = ClusterResourceOffline;
}

static BOOL WINAPI DemoLooksAlive(_In_ RESID ResourceId) {
    return ((PDEMO_RESOURCE)ResourceId)->State == ClusterResourceOnline;
}

static BOOL WINAPI DemoIsAlive(_In_ RESID ResourceId) { return DemoLooksAlive(ResourceId); }

/* Validates new private properties against the table and the DLL's own rule. With pParams, the
 * parsed values are returned there (the caller frees them); otherwise they are discarded. */
static DWORD DemoValidatePrivateResProperties(_In_ PDEMO_RESOURCE resource, _In_ PVOID InBuffer,
                                              _In_ DWORD InBufferSize, _Out_opt_ PDEMO_PARAMS pParams) {
    DEMO_PARAMS params;
    DWORD status;

    if (InBuffer == NULL || InBufferSize < sizeof(DWORD)) {
        return ERROR_INVALID_DATA;
    }
    ZeroMemory(&params, sizeof(params));
    status = ResUtilDupParameterBlock((LPBYTE)&params, (LPBYTE)&resource->Params, DemoResourcePrivateProperties);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    status = ResUtilVerifyPropertyTable(DemoResourcePrivateProperties, NULL, TRUE, InBuffer, InBufferSize,
                                        (LPBYTE)&params);
    if (status == ERROR_SUCCESS && params.ServiceName != NULL && wcschr(params.ServiceName, L' ') != NULL) {
        g_LogEvent(resource->ResourceHandle, LOG_ERROR, L"Validate: the service name '%1!ws!' has a space.\n",
                   params.ServiceName);
        status = ERROR_INVALID_PARAMETER;
    }
    if (status != ERROR_SUCCESS) {
        g_LogEvent(resource->ResourceHandle, LOG_ERROR, L"Validate: refused. Error: %1!u!.\n", status);
    }
    if (status == ERROR_SUCCESS && pParams != NULL) {
        *pParams = params;
    } else {
        ResUtilFreeParameterBlock((LPBYTE)&params, (LPBYTE)&resource->Params, DemoResourcePrivateProperties);
    }
    return status;
}

static DWORD DemoSetPrivateResProperties(_In_ PDEMO_RESOURCE resource, _In_ PVOID InBuffer, _In_ DWORD InBufferSize) {
    DWORD status = DemoValidatePrivateResProperties(resource, InBuffer, InBufferSize, NULL);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    status = ResUtilSetPropertyTable(resource->ParametersKey, DemoResourcePrivateProperties, NULL, TRUE, InBuffer,
                                     InBufferSize, (LPBYTE)&resource->Params);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    /* The running service keeps its settings until the next online. */
    if (resource->State == ClusterResourceOnline || resource->State == ClusterResourceOnlinePending) {
        return ERROR_RESOURCE_PROPERTIES_STORED;
    }
    return ERROR_SUCCESS;
}

static DWORD WINAPI DemoResourceControl(_In_ RESID ResourceId, _In_ DWORD ControlCode,
                                        _In_reads_bytes_opt_(InBufferSize) PVOID InBuffer, _In_ DWORD InBufferSize,
                                        _Out_writes_bytes_to_opt_(OutBufferSize, *BytesReturned) PVOID OutBuffer,
                                        _In_ DWORD OutBufferSize, _Out_ LPDWORD BytesReturned) {
    PDEMO_RESOURCE resource = (PDEMO_RESOURCE)ResourceId;
    DWORD status, required = 0;

    *BytesReturned = 0;
    switch (ControlCode) {
    case CLUSCTL_RESOURCE_UNKNOWN:
        status = ERROR_SUCCESS;
        break;

    case CLUSCTL_RESOURCE_GET_CHARACTERISTICS:
        *BytesReturned = sizeof(DWORD);
        if (OutBufferSize < sizeof(DWORD)) {
            status = ERROR_MORE_DATA;
        } else {
            *(LPDWORD)OutBuffer = CLUS_CHAR_NOT_PREEMPTABLE;
            status = ERROR_SUCCESS;
        }
        break;

    case CLUSCTL_RESOURCE_ENUM_PRIVATE_PROPERTIES:
        status = ResUtilEnumProperties(DemoResourcePrivateProperties, (LPWSTR)OutBuffer, OutBufferSize,
                                       BytesReturned, &required);
        if (status == ERROR_MORE_DATA) {
            *BytesReturned = required;
        }
        break;

    case CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTY_FMTS:
        status = ResUtilGetPropertyFormats(DemoResourcePrivateProperties, OutBuffer, OutBufferSize, BytesReturned,
                                           &required);
        if (status == ERROR_MORE_DATA) {
            *BytesReturned = required;
        }
        break;

    case CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES:
        status = ResUtilGetAllProperties(resource->ParametersKey, DemoResourcePrivateProperties, OutBuffer,
                                         OutBufferSize, BytesReturned, &required);
        if (status == ERROR_MORE_DATA) {
            *BytesReturned = required;
        }
        break;

    case CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES:
        status = DemoValidatePrivateResProperties(resource, InBuffer, InBufferSize, NULL);
        break;

    case CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES:
        status = DemoSetPrivateResProperties(resource, InBuffer, InBufferSize);
        break;

    case CLUSCTL_DEMO_GET_STATUS: {
        WCHAR text[256];
        DWORD size;
        EnterCriticalSection(&resource->Lock);
        swprintf(text, ARRAYSIZE(text), L"%ls online=%d port=%u onlines=%u",
                 resource->Params.ServiceName != NULL ? resource->Params.ServiceName : L"",
                 resource->State == ClusterResourceOnline, resource->Params.Port, resource->OnlineCount);
        LeaveCriticalSection(&resource->Lock);
        size = (DWORD)((wcslen(text) + 1) * sizeof(WCHAR));
        *BytesReturned = size;
        if (OutBufferSize < size) {
            status = ERROR_MORE_DATA;
        } else {
            CopyMemory(OutBuffer, text, size);
            status = ERROR_SUCCESS;
        }
        break;
    }

    default:
        status = ERROR_INVALID_FUNCTION;
        break;
    }
    return status;
}

static DWORD WINAPI DemoResourceTypeControl(_In_ LPCWSTR ResourceTypeName, _In_ DWORD ControlCode,
                                            _In_reads_bytes_opt_(InBufferSize) PVOID InBuffer,
                                            _In_ DWORD InBufferSize,
                                            _Out_writes_bytes_to_opt_(OutBufferSize, *BytesReturned) PVOID OutBuffer,
                                            _In_ DWORD OutBufferSize, _Out_ LPDWORD BytesReturned) {
    DWORD status, required = 0;
    UNREFERENCED_PARAMETER(InBuffer);
    UNREFERENCED_PARAMETER(InBufferSize);
    *BytesReturned = 0;
    if (!ResUtilResourceTypesEqual(ResourceTypeName, DEMO_RESOURCE_TYPE_NAME)) {
        return ERROR_CLUSTER_RESNAME_NOT_FOUND;
    }
    switch (ControlCode) {
    case CLUSCTL_RESOURCE_TYPE_ENUM_PRIVATE_PROPERTIES:
        status = ResUtilEnumProperties(DemoResourcePrivateProperties, (LPWSTR)OutBuffer, OutBufferSize,
                                       BytesReturned, &required);
        break;
    case CLUSCTL_RESOURCE_TYPE_GET_PRIVATE_PROPERTY_FMTS:
        status = ResUtilGetPropertyFormats(DemoResourcePrivateProperties, OutBuffer, OutBufferSize, BytesReturned,
                                           &required);
        break;
    default:
        return ERROR_INVALID_FUNCTION;
    }
    if (status == ERROR_MORE_DATA) {
        *BytesReturned = required;
    }
    return status;
}

static DWORD WINAPI DemoCancel(_In_ RESID ResourceId, _In_ DWORD CancelFlags_RESERVED) {
    UNREFERENCED_PARAMETER(CancelFlags_RESERVED);
    ClusWorkerTerminate(&((PDEMO_RESOURCE)ResourceId)->OnlineThread);
    return ERROR_SUCCESS;
}

__declspec(dllexport) DWORD WINAPI Startup(_In_ LPCWSTR ResourceType, _In_ DWORD MinVersionSupported,
                                           _In_ DWORD MaxVersionSupported,
                                           _In_ PSET_RESOURCE_STATUS_ROUTINE SetResourceStatus,
                                           _In_ PLOG_EVENT_ROUTINE LogEvent,
                                           _Out_ PCLRES_FUNCTION_TABLE *FunctionTable) {
    if (MinVersionSupported > CLRES_VERSION_V2_00 || MaxVersionSupported < CLRES_VERSION_V2_00) {
        return ERROR_REVISION_MISMATCH;
    }
    if (!ResUtilResourceTypesEqual(ResourceType, DEMO_RESOURCE_TYPE_NAME)) {
        return ERROR_CLUSTER_RESNAME_NOT_FOUND;
    }
    g_LogEvent = LogEvent;
    g_SetResourceStatus = SetResourceStatus;
    CLRES_V2_FUNCTION_TABLE_SET(g_DemoFunctionTable, CLRES_VERSION_V2_00, Demo, NULL, NULL, DemoResourceControl,
                                DemoResourceTypeControl, DemoLooksAlive, DemoIsAlive, DemoCancel)
    *FunctionTable = &g_DemoFunctionTable;
    return ERROR_SUCCESS;
}
