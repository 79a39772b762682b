/*
 * A sample halo resource type in C: what a ported WSFC resource DLL looks like.
 *
 *   cc -shared -fPIC -pthread -I include -o libhalo_sample.so examples/native/sample_resource.c
 *
 * Type name: "halo-sample". Private properties:
 *   RecordFile  (string, required)  every entry point appends a line here, so a test (or you)
 *                                   can see exactly what halo passed in;
 *   Checkpoints (number, default 3) how many OnlinePending reports Online makes before Online.
 *
 * Online is pending: a worker reports OnlinePending with checkpoints 1..N, then Online.
 * OfflineV2 records the destination node and flags it was given. A user control code returns
 * the last destination.
 */
#include "halo_resapi.h"

#include <stdio.h>
#include <stdlib.h>

#define SAMPLE_TYPE_NAME "halo-sample"
/* A user-defined control code: returns the last OfflineV2 destination as a NUL-terminated string. */
#define CLUSCTL_RESOURCE_SAMPLE_GET_LAST_DESTINATION CLUSCTL_RESOURCE_USER_CODE(1, CLUS_NO_MODIFY)

static CLRES_CALLBACK_FUNCTION_TABLE g_monitor;
static CLRES_FUNCTION_TABLE g_table;

typedef struct SAMPLE_RESOURCE {
    RESOURCE_HANDLE Handle;
    HALO_PARAMETERS Parameters;
    char Name[128];
    char RecordFile[4096];
    char LastDestination[256];
    DWORD Checkpoints;
    CLUS_WORKER Worker;
    BOOL WorkerStarted;
    volatile BOOL Online;
    pthread_mutex_t Lock; /* RecordFile writes: Terminate may run beside another entry point */
} SAMPLE_RESOURCE;

static void Record(SAMPLE_RESOURCE *r, const char *line) {
    pthread_mutex_lock(&r->Lock);
    FILE *f = fopen(r->RecordFile, "a");
    if (f != NULL) {
        fprintf(f, "%s\n", line);
        fclose(f);
    }
    pthread_mutex_unlock(&r->Lock);
}

static void StopWorker(SAMPLE_RESOURCE *r) {
    if (r->WorkerStarted) {
        ClusWorkerTerminate(&r->Worker);
        r->WorkerStarted = FALSE;
    }
}

static RESID WINAPI_OpenV2(LPCWSTR ResourceName, HALO_PARAMETERS ResourceKey, RESOURCE_HANDLE ResourceHandle,
                           DWORD OpenFlags) {
    SAMPLE_RESOURCE *r = (SAMPLE_RESOURCE *)calloc(1, sizeof(*r));
    DWORD size;
    char line[512];
    if (r == NULL) {
        SetLastError(ERROR_NOT_ENOUGH_MEMORY);
        return NULL;
    }
    r->Handle = ResourceHandle;
    r->Parameters = ResourceKey;
    snprintf(r->Name, sizeof r->Name, "%s", ResourceName);
    pthread_mutex_init(&r->Lock, NULL);
    size = sizeof r->RecordFile;
    if (HaloGetParameterString(ResourceKey, "RecordFile", r->RecordFile, &size) != ERROR_SUCCESS) {
        g_monitor.LogEvent(ResourceHandle, LOG_ERROR, "%s: the RecordFile property is required", ResourceName);
        pthread_mutex_destroy(&r->Lock);
        free(r);
        SetLastError(ERROR_INVALID_PARAMETER);
        return NULL;
    }
    snprintf(line, sizeof line, "open name=%s flags=0x%x", ResourceName, OpenFlags);
    Record(r, line);
    g_monitor.LogEvent(ResourceHandle, LOG_INFORMATION, "opened %s (open flags 0x%x)", ResourceName, OpenFlags);
    return r;
}

static VOID WINAPI_Close(RESID Resource) {
    SAMPLE_RESOURCE *r = (SAMPLE_RESOURCE *)Resource;
    StopWorker(r);
    Record(r, "close");
    pthread_mutex_destroy(&r->Lock);
    free(r);
}

static DWORD OnlineWorker(PCLUS_WORKER Worker, LPVOID Parameter) {
    SAMPLE_RESOURCE *r = (SAMPLE_RESOURCE *)Parameter;
    RESOURCE_STATUS_EX status;
    DWORD i;
    ResUtilInitializeResourceStatusEx(&status);
    status.ResourceState = ClusterResourceOnlinePending;
    for (i = 1; i <= r->Checkpoints; i++) {
        if (ClusWorkerCheckTerminate(Worker)) {
            return ERROR_OPERATION_ABORTED;
        }
        status.CheckPoint = i;
        if (g_monitor.SetResourceStatusEx(r->Handle, &status) == ResourceExitStateTerminate) {
            return ERROR_OPERATION_ABORTED;
        }
    }
    r->Online = TRUE;
    status.ResourceState = ClusterResourceOnline;
    status.CheckPoint = r->Checkpoints + 1;
    g_monitor.SetResourceStatusEx(r->Handle, &status);
    return ERROR_SUCCESS;
}

static DWORD WINAPI_OnlineV2(RESID Resource, LPHANDLE EventHandle, DWORD OnlineFlags, PBYTE InBuffer,
                             DWORD InBufferSize, DWORD Reserved) {
    SAMPLE_RESOURCE *r = (SAMPLE_RESOURCE *)Resource;
    char line[256];
    DWORD status;
    (void)InBuffer;
    (void)Reserved;
    *EventHandle = NULL;
    /* Re-read properties at every online, as a DLL re-reads its key. */
    if (HaloGetParameterDword(r->Parameters, "Checkpoints", &r->Checkpoints) != ERROR_SUCCESS) {
        r->Checkpoints = 3;
    }
    snprintf(line, sizeof line, "online flags=0x%x inbuffer=%u checkpoints=%u", OnlineFlags, InBufferSize,
             r->Checkpoints);
    Record(r, line);
    StopWorker(r);
    status = ClusWorkerCreate(&r->Worker, OnlineWorker, r);
    if (status != ERROR_SUCCESS) {
        return status;
    }
    r->WorkerStarted = TRUE;
    return ERROR_IO_PENDING;
}

static DWORD WINAPI_OfflineV2(RESID Resource, LPCWSTR DestinationNodeName, DWORD OfflineFlags, PBYTE InBuffer,
                              DWORD InBufferSize, DWORD Reserved) {
    SAMPLE_RESOURCE *r = (SAMPLE_RESOURCE *)Resource;
    char line[512];
    (void)InBuffer;
    (void)Reserved;
    StopWorker(r);
    r->Online = FALSE;
    snprintf(r->LastDestination, sizeof r->LastDestination, "%s",
             DestinationNodeName != NULL ? DestinationNodeName : "");
    snprintf(line, sizeof line, "offline destination=%s flags=0x%x inbuffer=%u",
             DestinationNodeName != NULL ? DestinationNodeName : "(none)", OfflineFlags, InBufferSize);
    Record(r, line);
    return ERROR_SUCCESS;
}

static VOID WINAPI_Terminate(RESID Resource) {
    SAMPLE_RESOURCE *r = (SAMPLE_RESOURCE *)Resource;
    StopWorker(r);
    r->Online = FALSE;
    Record(r, "terminate");
}

static BOOL WINAPI_LooksAlive(RESID Resource) {
    return ((SAMPLE_RESOURCE *)Resource)->Online;
}

static BOOL WINAPI_IsAlive(RESID Resource) {
    return ((SAMPLE_RESOURCE *)Resource)->Online;
}

static DWORD Reply(const void *Data, DWORD Size, PVOID OutBuffer, DWORD OutBufferSize, LPDWORD BytesReturned) {
    *BytesReturned = Size;
    if (OutBufferSize < Size) {
        return ERROR_MORE_DATA;
    }
    memcpy(OutBuffer, Data, Size);
    return ERROR_SUCCESS;
}

static DWORD WINAPI_ResourceControl(RESID Resource, DWORD ControlCode, PVOID InBuffer, DWORD InBufferSize,
                                    PVOID OutBuffer, DWORD OutBufferSize, LPDWORD BytesReturned) {
    SAMPLE_RESOURCE *r = (SAMPLE_RESOURCE *)Resource;
    DWORD characteristics = CLUS_CHAR_UNKNOWN;
    (void)InBuffer;
    (void)InBufferSize;
    *BytesReturned = 0;
    switch (ControlCode) {
    case CLUSCTL_RESOURCE_GET_CHARACTERISTICS:
        return Reply(&characteristics, sizeof characteristics, OutBuffer, OutBufferSize, BytesReturned);
    case CLUSCTL_RESOURCE_SAMPLE_GET_LAST_DESTINATION:
        return Reply(r->LastDestination, (DWORD)strlen(r->LastDestination) + 1, OutBuffer, OutBufferSize,
                     BytesReturned);
    default:
        return ERROR_INVALID_FUNCTION; /* the monitor applies its default handling */
    }
}

static DWORD WINAPI_ResourceTypeControl(LPCWSTR ResourceTypeName, DWORD ControlCode, PVOID InBuffer,
                                        DWORD InBufferSize, PVOID OutBuffer, DWORD OutBufferSize,
                                        LPDWORD BytesReturned) {
    (void)ResourceTypeName;
    (void)ControlCode;
    (void)InBuffer;
    (void)InBufferSize;
    (void)OutBuffer;
    (void)OutBufferSize;
    *BytesReturned = 0;
    return ERROR_INVALID_FUNCTION;
}

static DWORD WINAPI_Cancel(RESID Resource, DWORD CancelFlags_RESERVED) {
    (void)CancelFlags_RESERVED;
    StopWorker((SAMPLE_RESOURCE *)Resource);
    return ERROR_SUCCESS;
}

DWORD StartupEx(LPCWSTR ResourceType, DWORD MinVersionSupported, DWORD MaxVersionSupported,
                PCLRES_CALLBACK_FUNCTION_TABLE MonitorCallbackFunctions,
                PCLRES_FUNCTION_TABLE *ResourceDllInterfaceFunctions) {
    if (MinVersionSupported > CLRES_VERSION_V2_00 || MaxVersionSupported < CLRES_VERSION_V2_00) {
        return ERROR_REVISION_MISMATCH;
    }
    if (strcmp(ResourceType, SAMPLE_TYPE_NAME) != 0) {
        return ERROR_CLUSTER_RESNAME_NOT_FOUND;
    }
    g_monitor = *MonitorCallbackFunctions;
    CLRES_V2_FUNCTION_TABLE_SET(g_table, CLRES_VERSION_V2_00, WINAPI_, NULL, NULL, WINAPI_ResourceControl,
                                WINAPI_ResourceTypeControl, WINAPI_LooksAlive, WINAPI_IsAlive, WINAPI_Cancel)
    *ResourceDllInterfaceFunctions = &g_table;
    return ERROR_SUCCESS;
}
