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

/* ---------------------------------------------------------------------------------------------
 * LogEvent for wide plug-ins (include/compat): a wchar_t format with FormatMessage inserts.
 *
 * %1 … %99 insert arguments, each optionally followed by !spec! (a printf spec in Windows'
 * dialect: l is 32 bits, I64/ll 64 bits, I/z pointer-sized; s, ls and ws are wide strings, hs
 * and S narrow ones; the default spec is s). A * width or precision takes the next argument.
 * Escapes: %% %n (line break) %r %t %b (space) %. %! "% " and %0 (ends the message).
 * Arguments are read in number order, so a type must be known for each one used.
 * ------------------------------------------------------------------------------------------- */
#include <wchar.h>

#define HALO_MAX_INSERTS 99

enum halo_arg_kind { ARG_NONE, ARG_INT32, ARG_INT64, ARG_DOUBLE, ARG_PTR, ARG_WSTR, ARG_STR, ARG_WCHAR, ARG_CHAR };

struct halo_spec {
    char flags[8];     /* printf flags */
    int width_star;    /* width comes from an argument */
    int precision_star;
    char width[12];    /* digits, or "" */
    char precision[12]; /* ".digits", ".", or "" */
    enum halo_arg_kind kind;
    char conversion; /* the C conversion character to use */
};

/* Parses "spec" (between the !s) into *out; 0 if it is not one halo understands. */
static int halo_parse_spec(const wchar_t *spec, size_t len, struct halo_spec *out) {
    size_t i = 0, n;
    int wide = -1; /* -1 default (wide), 0 narrow, 1 wide */
    int size64 = 0;
    wchar_t c;
    memset(out, 0, sizeof(*out));
    for (n = 0; i < len && wcschr(L"-+ #0", spec[i]) != NULL && n < sizeof(out->flags) - 1; i++) {
        out->flags[n++] = (char)spec[i];
    }
    if (i < len && spec[i] == L'*') {
        out->width_star = 1;
        i++;
    }
    for (n = 0; i < len && spec[i] >= L'0' && spec[i] <= L'9' && n < sizeof(out->width) - 1; i++) {
        out->width[n++] = (char)spec[i];
    }
    if (i < len && spec[i] == L'.') {
        out->precision[0] = '.';
        i++;
        if (i < len && spec[i] == L'*') {
            out->precision_star = 1;
            i++;
        }
        for (n = 1; i < len && spec[i] >= L'0' && spec[i] <= L'9' && n < sizeof(out->precision) - 1; i++) {
            out->precision[n++] = (char)spec[i];
        }
    }
    /* Size prefixes. */
    if (len - i >= 3 && wcsncmp(spec + i, L"I64", 3) == 0) {
        size64 = 1;
        i += 3;
    } else if (len - i >= 3 && wcsncmp(spec + i, L"I32", 3) == 0) {
        i += 3;
    } else if (len - i >= 2 && (wcsncmp(spec + i, L"ll", 2) == 0 || wcsncmp(spec + i, L"hh", 2) == 0)) {
        size64 = spec[i] == L'l';
        i += 2;
    } else if (i < len && (spec[i] == L'I' || spec[i] == L'z' || spec[i] == L'j' || spec[i] == L't')) {
        size64 = sizeof(void *) == 8;
        i++;
    } else if (i < len && (spec[i] == L'l' || spec[i] == L'w')) {
        wide = 1; /* l is 32-bit for integers, wide for strings and characters */
        i++;
    } else if (i < len && spec[i] == L'h') {
        wide = 0;
        i++;
    } else if (i < len && spec[i] == L'L') {
        i++;
    }
    if (i + 1 != len) {
        return 0;
    }
    c = spec[i];
    switch (c) {
    case L's':
        out->kind = wide == 0 ? ARG_STR : ARG_WSTR;
        out->conversion = 's';
        return 1;
    case L'S':
        out->kind = wide == 1 ? ARG_WSTR : ARG_STR;
        out->conversion = 's';
        return 1;
    case L'c':
        out->kind = wide == 0 ? ARG_CHAR : ARG_WCHAR;
        out->conversion = 's';
        return 1;
    case L'C':
        out->kind = wide == 1 ? ARG_WCHAR : ARG_CHAR;
        out->conversion = 's';
        return 1;
    case L'd':
    case L'i':
    case L'u':
    case L'x':
    case L'X':
    case L'o':
        out->kind = size64 ? ARG_INT64 : ARG_INT32;
        out->conversion = (char)c;
        return 1;
    case L'p':
        out->kind = ARG_PTR;
        out->conversion = 'p';
        return 1;
    case L'e':
    case L'E':
    case L'f':
    case L'F':
    case L'g':
    case L'G':
    case L'a':
    case L'A':
        out->kind = ARG_DOUBLE;
        out->conversion = (char)c;
        return 1;
    default:
        return 0;
    }
}

/* Finds the insert at format[*i] ("%" already seen, *i at the digit): its number, spec and the
 * index just past it. 0 if there is none. */
static int halo_insert_at(const wchar_t *format, size_t *i, int *number, struct halo_spec *spec) {
    size_t j = *i;
    int n = 0;
    if (format[j] < L'1' || format[j] > L'9') {
        return 0;
    }
    n = (int)(format[j++] - L'0');
    if (format[j] >= L'0' && format[j] <= L'9') {
        n = n * 10 + (int)(format[j++] - L'0');
    }
    memset(spec, 0, sizeof(*spec));
    spec->kind = ARG_WSTR; /* the default, !s! */
    spec->conversion = 's';
    if (format[j] == L'!') {
        const wchar_t *end = wcschr(format + j + 1, L'!');
        if (end != NULL && halo_parse_spec(format + j + 1, (size_t)(end - (format + j + 1)), spec)) {
            j = (size_t)(end - format) + 1;
        }
    }
    *number = n;
    *i = j;
    return 1;
}

union halo_arg {
    int32_t i32;
    int64_t i64;
    double d;
    const void *p;
};

struct halo_out {
    char *buffer;
    size_t size;
    size_t used;
};

static void halo_put(struct halo_out *o, const char *text, size_t len) {
    size_t room = o->size - 1 - o->used;
    if (len > room) {
        len = room;
    }
    memcpy(o->buffer + o->used, text, len);
    o->used += len;
    o->buffer[o->used] = '\0';
}

/* UTF-8 of one code point (invalid ones become U+FFFD); its length. */
static size_t halo_utf8(uint32_t c, char *out) {
    if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) {
        c = 0xFFFD;
    }
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* A wide string as UTF-8, cut to fit. */
static void halo_wide_to_utf8(const wchar_t *text, char *out, size_t size) {
    size_t used = 0;
    char bytes[4];
    for (; text != NULL && *text != L'\0'; text++) {
        size_t n = halo_utf8((uint32_t)*text, bytes);
        if (used + n >= size) {
            break;
        }
        memcpy(out + used, bytes, n);
        used += n;
    }
    out[used] = '\0';
}

static void halo_format_insert(struct halo_out *o, const struct halo_spec *spec, const union halo_arg *args,
                               int number) {
    char fmt[48], piece[HALO_LOG_ENTRY_MAX * 4 + 1], text[HALO_LOG_ENTRY_MAX * 4 + 1];
    int width = 0, precision = 0, arg = number;
    int n;
    if (spec->width_star) {
        width = args[arg++].i32;
    }
    if (spec->precision_star) {
        precision = args[arg++].i32;
    }
    if (arg > HALO_MAX_INSERTS) {
        return;
    }
    /* One printf spec with any * kept, then the value. */
    snprintf(fmt, sizeof fmt, "%%%s%s%s%s%s%s", spec->flags, spec->width_star ? "*" : spec->width,
             spec->precision_star ? ".*" : spec->precision,
             spec->kind == ARG_INT64 ? "ll" : "", "", "");
    n = (int)strlen(fmt);
    fmt[n] = spec->conversion;
    fmt[n + 1] = '\0';
    switch (spec->kind) {
    case ARG_WSTR:
        halo_wide_to_utf8(args[arg].p != NULL ? (const wchar_t *)args[arg].p : L"(null)", text, sizeof text);
        break;
    case ARG_STR:
        snprintf(text, sizeof text, "%s", args[arg].p != NULL ? (const char *)args[arg].p : "(null)");
        break;
    case ARG_WCHAR:
        text[halo_utf8((uint32_t)args[arg].i32, text)] = '\0';
        break;
    case ARG_CHAR:
        text[0] = (char)args[arg].i32;
        text[1] = '\0';
        break;
    default:
        break;
    }
#define HALO_PRINT(value)                                                                   \
    do {                                                                                    \
        if (spec->width_star && spec->precision_star)                                       \
            snprintf(piece, sizeof piece, fmt, width, precision, value);                    \
        else if (spec->width_star)                                                          \
            snprintf(piece, sizeof piece, fmt, width, value);                               \
        else if (spec->precision_star)                                                      \
            snprintf(piece, sizeof piece, fmt, precision, value);                           \
        else                                                                                \
            snprintf(piece, sizeof piece, fmt, value);                                      \
    } while (0)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    switch (spec->kind) {
    case ARG_INT32:
        if (spec->conversion == 'd' || spec->conversion == 'i') {
            HALO_PRINT(args[arg].i32);
        } else {
            HALO_PRINT((uint32_t)args[arg].i32);
        }
        break;
    case ARG_INT64:
        if (spec->conversion == 'd' || spec->conversion == 'i') {
            HALO_PRINT((long long)args[arg].i64);
        } else {
            HALO_PRINT((unsigned long long)args[arg].i64);
        }
        break;
    case ARG_DOUBLE:
        HALO_PRINT(args[arg].d);
        break;
    case ARG_PTR:
        HALO_PRINT(args[arg].p);
        break;
    default:
        HALO_PRINT(text);
        break;
    }
#pragma GCC diagnostic pop
#undef HALO_PRINT
    halo_put(o, piece, strlen(piece));
}

void halo_native_log_event_wide(RESOURCE_HANDLE handle, LOG_LEVEL level, const wchar_t *format, ...) {
    enum halo_arg_kind kinds[HALO_MAX_INSERTS + 3];
    union halo_arg args[HALO_MAX_INSERTS + 3];
    char message[HALO_LOG_ENTRY_MAX * 4 + 1];
    struct halo_out out = {message, sizeof message, 0};
    struct halo_spec spec;
    size_t i, count;
    int number, max = 0, k;
    va_list list;
    if (format == NULL) {
        halo_native_log_message(handle, (uint32_t)level, "(LogEvent called with a NULL format)");
        return;
    }
    message[0] = '\0';
    memset(kinds, 0, sizeof kinds);
    memset(args, 0, sizeof args);
    /* First pass: the type of every argument an insert uses. */
    for (i = 0; format[i] != L'\0'; i++) {
        if (format[i] != L'%') {
            continue;
        }
        i++;
        if (format[i] == L'\0') {
            break;
        }
        if (halo_insert_at(format, &i, &number, &spec)) {
            k = number;
            if (spec.width_star) {
                kinds[k++] = ARG_INT32;
            }
            if (spec.precision_star) {
                kinds[k++] = ARG_INT32;
            }
            if (k <= HALO_MAX_INSERTS) {
                kinds[k] = spec.kind;
                max = k > max ? k : max;
            }
            i--; /* the loop's i++ */
        }
    }
    /* Read the arguments in order; an unused one is taken as a 64-bit slot. */
    va_start(list, format);
    for (k = 1; k <= max; k++) {
        switch (kinds[k]) {
        case ARG_INT32:
        case ARG_WCHAR:
        case ARG_CHAR:
            args[k].i32 = va_arg(list, int32_t);
            break;
        case ARG_DOUBLE:
            args[k].d = va_arg(list, double);
            break;
        case ARG_PTR:
        case ARG_WSTR:
        case ARG_STR:
            args[k].p = va_arg(list, const void *);
            break;
        default:
            args[k].i64 = va_arg(list, int64_t);
            break;
        }
    }
    va_end(list);
    /* Second pass: the text. */
    for (i = 0; format[i] != L'\0';) {
        char bytes[4];
        if (format[i] != L'%') {
            halo_put(&out, bytes, halo_utf8((uint32_t)format[i], bytes));
            i++;
            continue;
        }
        i++;
        if (format[i] == L'\0') {
            halo_put(&out, "%", 1);
            break;
        }
        if (format[i] == L'0') {
            break;
        }
        if (halo_insert_at(format, &i, &number, &spec)) {
            halo_format_insert(&out, &spec, args, number);
            continue;
        }
        switch (format[i]) {
        case L'n':
            halo_put(&out, "\n", 1);
            break;
        case L'r':
            halo_put(&out, "\r", 1);
            break;
        case L't':
            halo_put(&out, "\t", 1);
            break;
        case L'b':
        case L' ':
            halo_put(&out, " ", 1);
            break;
        case L'%':
        case L'.':
        case L'!':
            halo_put(&out, bytes, halo_utf8((uint32_t)format[i], bytes));
            break;
        default:
            halo_put(&out, "%", 1);
            halo_put(&out, bytes, halo_utf8((uint32_t)format[i], bytes));
            break;
        }
        i++;
    }
    /* One entry per call: drop trailing line breaks, keep at most 500 characters. */
    while (out.used > 0 && (message[out.used - 1] == '\n' || message[out.used - 1] == '\r')) {
        message[--out.used] = '\0';
    }
    count = 0;
    for (i = 0; i < out.used; i++) {
        if (((unsigned char)message[i] & 0xC0) != 0x80 && ++count > HALO_LOG_ENTRY_MAX) {
            message[i] = '\0';
            break;
        }
    }
    halo_native_log_message(handle, (uint32_t)level, message);
}
