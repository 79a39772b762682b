/*
 * A minimal plug-in whose table is built wrong on purpose, one way per -D switch, for the
 * loader's validation tests. With no switch it is a valid V2 plug-in.
 *   -DTABLE_VERSION=0x300    a version halo does not support
 *   -DTABLE_SIZE_DELTA=8     TableSize that does not match the version
 *   -DNULL_LOOKS_ALIVE       a NULL mandatory entry point
 *   -DSTARTUP_STATUS=1306    Startup refuses with that status
 *   -DV1_ONLY                exports only the V1 Startup with a V1 table
 *   -DNO_STARTUP             exports no Startup at all
 */
#include "halo_resapi.h"

#include <stdlib.h>

#ifndef TABLE_VERSION
#ifdef V1_ONLY
#define TABLE_VERSION CLRES_VERSION_V1_00
#else
#define TABLE_VERSION CLRES_VERSION_V2_00
#endif
#endif
#ifndef TABLE_SIZE_DELTA
#define TABLE_SIZE_DELTA 0
#endif
#ifndef STARTUP_STATUS
#define STARTUP_STATUS ERROR_SUCCESS
#endif

typedef struct T {
    RESOURCE_HANDLE Handle;
    int Online;
} T;

static PSET_RESOURCE_STATUS_ROUTINE g_set_status;
static PLOG_EVENT_ROUTINE g_log;

static RESID TOpen(LPCWSTR Name, HALO_PARAMETERS Key, RESOURCE_HANDLE Handle) {
    T *t = (T *)calloc(1, sizeof(T));
    (void)Key;
    if (t != NULL) {
        t->Handle = Handle;
        if (g_log != NULL) {
            g_log(Handle, LOG_WARNING, "v1 open %s", Name);
        }
    }
    return t;
}
static RESID TOpenV2(LPCWSTR Name, HALO_PARAMETERS Key, RESOURCE_HANDLE Handle, DWORD Flags) {
    (void)Flags;
    return TOpen(Name, Key, Handle);
}
static VOID TClose(RESID R) { free(R); }
static DWORD TOnline(RESID R, LPHANDLE E) {
    *E = NULL;
    ((T *)R)->Online = 1;
    return ERROR_SUCCESS;
}
static DWORD TOnlineV2(RESID R, LPHANDLE E, DWORD F, PBYTE B, DWORD S, DWORD X) {
    (void)F; (void)B; (void)S; (void)X;
    return TOnline(R, E);
}
static DWORD TOffline(RESID R) {
    ((T *)R)->Online = 0;
    return ERROR_SUCCESS;
}
static DWORD TOfflineV2(RESID R, LPCWSTR D, DWORD F, PBYTE B, DWORD S, DWORD X) {
    (void)D; (void)F; (void)B; (void)S; (void)X;
    return TOffline(R);
}
static VOID TTerminate(RESID R) { ((T *)R)->Online = 0; }
static BOOL TAlive(RESID R) { return ((T *)R)->Online; }
static BOOL TLooksAlive(RESID R) { return TAlive(R); }
static BOOL TIsAlive(RESID R) { return TAlive(R); }
static DWORD TControl(RESID R, DWORD C, PVOID I, DWORD IS, PVOID O, DWORD OS, LPDWORD BR) {
    (void)R; (void)C; (void)I; (void)IS; (void)O; (void)OS;
    *BR = 0;
    return ERROR_INVALID_FUNCTION;
}
static DWORD TTypeControl(LPCWSTR N, DWORD C, PVOID I, DWORD IS, PVOID O, DWORD OS, LPDWORD BR) {
    (void)N; (void)C; (void)I; (void)IS; (void)O; (void)OS;
    *BR = 0;
    return ERROR_INVALID_FUNCTION;
}
static DWORD TCancel(RESID R, DWORD F) { (void)R; (void)F; return ERROR_SUCCESS; }

#ifdef NULL_LOOKS_ALIVE
#define LOOKS_ALIVE NULL
#else
#define LOOKS_ALIVE TLooksAlive
#endif

#ifdef V1_ONLY
static CLRES_V1_FUNCTION_TABLE(g_table, TABLE_VERSION, T, NULL, NULL, TControl, TTypeControl);
static void Fill(void) {
    g_table.TableSize = (DWORD)(CLRES_V1_FUNCTION_SIZE + TABLE_SIZE_DELTA);
    g_table.V1Functions.LooksAlive = LOOKS_ALIVE;
}
#else
static CLRES_FUNCTION_TABLE g_table;
static void Fill(void) {
    CLRES_V2_FUNCTION_TABLE_SET(g_table, TABLE_VERSION, T, NULL, NULL, TControl, TTypeControl, LOOKS_ALIVE, TIsAlive,
                                TCancel)
    g_table.TableSize = (DWORD)(CLRES_V2_FUNCTION_SIZE + TABLE_SIZE_DELTA);
}
#endif

#ifndef NO_STARTUP
#ifdef V1_ONLY
DWORD Startup(LPCWSTR Type, DWORD Min, DWORD Max, PSET_RESOURCE_STATUS_ROUTINE SetStatus, PLOG_EVENT_ROUTINE Log,
              PCLRES_FUNCTION_TABLE *Table) {
    (void)Type; (void)Min; (void)Max;
    g_set_status = SetStatus;
    g_log = Log;
    Fill();
    *Table = &g_table;
    return STARTUP_STATUS;
}
#else
DWORD StartupEx(LPCWSTR Type, DWORD Min, DWORD Max, PCLRES_CALLBACK_FUNCTION_TABLE Callbacks,
                PCLRES_FUNCTION_TABLE *Table) {
    (void)Type; (void)Min; (void)Max;
    g_log = Callbacks->LogEvent;
    Fill();
    *Table = &g_table;
    return STARTUP_STATUS;
}
#endif
#endif

/* Keeps the otherwise unused V1 entry points referenced in every variant. */
void *halo_test_unused[] = {(void *)TOpen, (void *)TOnline, (void *)TOffline, (void *)TOpenV2, (void *)TOnlineV2,
                            (void *)TOfflineV2, (void *)TCancel, (void *)&g_set_status,
                            (void *)Fill, (void *)TLooksAlive};
