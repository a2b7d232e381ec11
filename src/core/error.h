/* Errors: every fallible internal function returns an fa_status and fills an optional
 * fa_error_t. */
#ifndef FACEAU_CORE_ERROR_H
#define FACEAU_CORE_ERROR_H

#include "faceau.h"

#if defined(__GNUC__)
#define FA_PRINTF_FORMAT(a, b) __attribute__((format(printf, a, b)))
#else
#define FA_PRINTF_FORMAT(a, b)
#endif

/* Records status and a formatted message in error (which may be NULL); returns status. */
fa_status fa_error_set(fa_error_t *error, fa_status status, const char *format, ...)
    FA_PRINTF_FORMAT(3, 4);

/* Clears error to FA_OK with an empty message. */
void fa_error_clear(fa_error_t *error);

#endif
