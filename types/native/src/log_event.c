/* LogEvent for native plug-ins: printf-style formatting, then the message goes to Rust. */
#include "halo_resapi.h"

#include <stdarg.h>
#include <stdio.h>

/* Defined in callbacks.rs. */
extern void halo_native_log_message(RESOURCE_HANDLE handle, uint32_t level, const char *message);

/* WSFC keeps at most 500 characters per entry. */
#define HALO_LOG_ENTRY_MAX 500

void halo_native_log_event(RESOURCE_HANDLE handle, LOG_LEVEL level, LPCWSTR format, ...) {
    char message[HALO_LOG_ENTRY_MAX + 1];
    va_list args;
    if (format == NULL) {
        halo_native_log_message(handle, (uint32_t)level, "(LogEvent called with a NULL format)");
        return;
    }
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    halo_native_log_message(handle, (uint32_t)level, message);
}
