#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

fa_status fa_error_set(fa_error_t *error, fa_status status, const char *format, ...)
{
    if (!error) return status;
    error->status = status;
    va_list args;
    va_start(args, format);
    vsnprintf(error->message, sizeof error->message, format, args);
    va_end(args);
    return status;
}

void fa_error_clear(fa_error_t *error)
{
    if (!error) return;
    error->status = FA_OK;
    error->message[0] = '\0';
}

const char *fa_status_name(fa_status status)
{
    switch (status) {
    case FA_OK: return "ok";
    case FA_ERROR_ARGUMENT: return "argument";
    case FA_ERROR_NO_MEMORY: return "out of memory";
    case FA_ERROR_IO: return "i/o";
    case FA_ERROR_MODEL: return "model";
    case FA_ERROR_INPUT: return "input";
    case FA_ERROR_END: return "end of stream";
    case FA_ERROR_INTERNAL: return "internal";
    }
    return "unknown";
}
