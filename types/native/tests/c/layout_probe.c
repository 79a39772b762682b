/* Prints the header's sizes and offsets, one "name value" per line, for tests/abi_layout.rs. */
#include "halo_resapi.h"

#include <stdio.h>

#define SIZE(T) printf("sizeof(%s) %zu\n", #T, sizeof(T))
#define OFFSET(T, F) printf("offsetof(%s, %s) %zu\n", #T, #F, offsetof(T, F))

int main(void) {
    SIZE(RESOURCE_STATUS);
    OFFSET(RESOURCE_STATUS, CheckPoint);
    OFFSET(RESOURCE_STATUS, WaitHint);
    OFFSET(RESOURCE_STATUS, EventHandle);
    SIZE(RESOURCE_STATUS_EX);
    OFFSET(RESOURCE_STATUS_EX, CheckPoint);
    OFFSET(RESOURCE_STATUS_EX, EventHandle);
    OFFSET(RESOURCE_STATUS_EX, ApplicationSpecificErrorCode);
    OFFSET(RESOURCE_STATUS_EX, Flags);
    OFFSET(RESOURCE_STATUS_EX, WaitHint);
    SIZE(CLRES_V1_FUNCTIONS);
    SIZE(CLRES_V2_FUNCTIONS);
    OFFSET(CLRES_V2_FUNCTIONS, Offline);
    OFFSET(CLRES_V2_FUNCTIONS, Cancel);
    SIZE(CLRES_FUNCTION_TABLE);
    OFFSET(CLRES_FUNCTION_TABLE, Version);
    OFFSET(CLRES_FUNCTION_TABLE, V1Functions);
    SIZE(CLRES_CALLBACK_FUNCTION_TABLE);
    OFFSET(CLRES_CALLBACK_FUNCTION_TABLE, SignalFailure);
    OFFSET(CLRES_CALLBACK_FUNCTION_TABLE, SetResourceLockedModeEx);
    SIZE(HALO_PARAMETERS_TABLE);
    OFFSET(HALO_PARAMETERS_TABLE, GetPropertyList);
    OFFSET(HALO_PARAMETERS_TABLE, QueryValueW);
    OFFSET(HALO_PARAMETERS_TABLE, EnumValueW);
    return 0;
}
