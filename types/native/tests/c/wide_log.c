/* A minimal wide plug-in (built against include/compat) whose Open logs FormatMessage inserts of
 * every kind, for tests/windows_style.rs. Type name: "wide-log". */
#include <windows.h>
#include <clusapi.h>
#include <resapi.h>

static CLRES_CALLBACK_FUNCTION_TABLE g_monitor;
static CLRES_FUNCTION_TABLE g_table;
static int g_dummy;

static RESID WINAPI WideOpenV2(LPCWSTR ResourceName, HKEY ResourceKey, RESOURCE_HANDLE ResourceHandle, DWORD OpenFlags) {
    PLOG_EVENT_ROUTINE log = g_monitor.LogEvent;
    UNREFERENCED_PARAMETER(ResourceKey);
    log(ResourceHandle, LOG_INFORMATION, L"name=%1 flags=%2!u!\n", ResourceName, OpenFlags);
    log(ResourceHandle, LOG_WARNING, L"ws=%1!ws! s=%2!s! hs=%3!hs! S=%4!S! ls=%5!ls!", L"w\u00e9", L"s", "narrow",
        "S", L"l");
    log(ResourceHandle, LOG_ERROR, L"u=%1!u! d=%2!d! x=%3!x! X=%4!08X! lu=%5!lu! I64=%6!I64u! ll=%7!lld!", 4000000000u,
        -7, 255u, 0xBEEFu, 42u, (ULONGLONG)1 << 40, (LONGLONG)-5);
    log(ResourceHandle, LOG_INFORMATION, L"pad=[%1!5u!] [%2!-4d!] c=%3!c! %%%n%t%b%.%! end", 42u, 7, (int)L'\u00df');
    log(ResourceHandle, LOG_INFORMATION, L"%2 before %1", L"first", L"second");
    log(ResourceHandle, LOG_INFORMATION, L"keep%0drop %1", L"unused");
    log(ResourceHandle, LOG_INFORMATION, L"star=[%1!*u!]", 6, 12u);
    return (RESID)&g_dummy;
}

static VOID WINAPI WideClose(RESID Resource) { UNREFERENCED_PARAMETER(Resource); }
static DWORD WINAPI WideOnlineV2(RESID Resource, LPHANDLE EventHandle, DWORD OnlineFlags, PBYTE InBuffer,
                                 DWORD InBufferSize, DWORD Reserved) {
    UNREFERENCED_PARAMETER(Resource);
    UNREFERENCED_PARAMETER(EventHandle);
    UNREFERENCED_PARAMETER(OnlineFlags);
    UNREFERENCED_PARAMETER(InBuffer);
    UNREFERENCED_PARAMETER(InBufferSize);
    UNREFERENCED_PARAMETER(Reserved);
    return ERROR_SUCCESS;
}
static DWORD WINAPI WideOfflineV2(RESID Resource, LPCWSTR DestinationNodeName, DWORD OfflineFlags, PBYTE InBuffer,
                                  DWORD InBufferSize, DWORD Reserved) {
    UNREFERENCED_PARAMETER(Resource);
    UNREFERENCED_PARAMETER(DestinationNodeName);
    UNREFERENCED_PARAMETER(OfflineFlags);
    UNREFERENCED_PARAMETER(InBuffer);
    UNREFERENCED_PARAMETER(InBufferSize);
    UNREFERENCED_PARAMETER(Reserved);
    return ERROR_SUCCESS;
}
static VOID WINAPI WideTerminate(RESID Resource) { UNREFERENCED_PARAMETER(Resource); }
static BOOL WINAPI WideAlive(RESID Resource) {
    UNREFERENCED_PARAMETER(Resource);
    return TRUE;
}
static DWORD WINAPI WideControl(RESID Resource, DWORD ControlCode, PVOID InBuffer, DWORD InBufferSize, PVOID OutBuffer,
                                DWORD OutBufferSize, LPDWORD BytesReturned) {
    UNREFERENCED_PARAMETER(Resource);
    UNREFERENCED_PARAMETER(ControlCode);
    UNREFERENCED_PARAMETER(InBuffer);
    UNREFERENCED_PARAMETER(InBufferSize);
    UNREFERENCED_PARAMETER(OutBuffer);
    UNREFERENCED_PARAMETER(OutBufferSize);
    *BytesReturned = 0;
    return ERROR_INVALID_FUNCTION;
}
static DWORD WINAPI WideTypeControl(LPCWSTR ResourceTypeName, DWORD ControlCode, PVOID InBuffer, DWORD InBufferSize,
                                    PVOID OutBuffer, DWORD OutBufferSize, LPDWORD BytesReturned) {
    UNREFERENCED_PARAMETER(ResourceTypeName);
    return WideControl(NULL, ControlCode, InBuffer, InBufferSize, OutBuffer, OutBufferSize, BytesReturned);
}
static DWORD WINAPI WideCancel(RESID Resource, DWORD Flags) {
    UNREFERENCED_PARAMETER(Resource);
    UNREFERENCED_PARAMETER(Flags);
    return ERROR_SUCCESS;
}

__declspec(dllexport) DWORD WINAPI StartupEx(LPCWSTR ResourceType, DWORD MinVersionSupported,
                                             DWORD MaxVersionSupported,
                                             PCLRES_CALLBACK_FUNCTION_TABLE MonitorCallbackFunctions,
                                             PCLRES_FUNCTION_TABLE *ResourceDllInterfaceFunctions) {
    if (MinVersionSupported > CLRES_VERSION_V2_00 || MaxVersionSupported < CLRES_VERSION_V2_00) {
        return ERROR_REVISION_MISMATCH;
    }
    if (wcscmp(ResourceType, L"wide-log") != 0) {
        return ERROR_CLUSTER_RESNAME_NOT_FOUND;
    }
    g_monitor = *MonitorCallbackFunctions;
    g_table.TableSize = CLRES_V2_FUNCTION_SIZE;
    g_table.Version = CLRES_VERSION_V2_00;
    g_table.V2Functions.Open = WideOpenV2;
    g_table.V2Functions.Close = WideClose;
    g_table.V2Functions.Online = WideOnlineV2;
    g_table.V2Functions.Offline = WideOfflineV2;
    g_table.V2Functions.Terminate = WideTerminate;
    g_table.V2Functions.LooksAlive = WideAlive;
    g_table.V2Functions.IsAlive = WideAlive;
    g_table.V2Functions.ResourceControl = WideControl;
    g_table.V2Functions.ResourceTypeControl = WideTypeControl;
    g_table.V2Functions.Cancel = WideCancel;
    *ResourceDllInterfaceFunctions = &g_table;
    return ERROR_SUCCESS;
}
