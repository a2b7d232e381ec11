/* Whole-file reading: model parsers work on memory buffers so that they can be fuzzed. */
#ifndef FACEAU_CORE_FILE_H
#define FACEAU_CORE_FILE_H

#include <stddef.h>

#include "core/error.h"

/* Reads the whole file at path into a new buffer (NUL-terminated, *size excludes the NUL).
 * Free with free(). */
fa_status fa_file_read_all(const char *path, char **contents, size_t *size, fa_error_t *error);

/* Joins directory and name with a '/' into out (size bytes); fails if it does not fit. */
fa_status fa_path_join(char *out, size_t size, const char *directory, const char *name,
                       fa_error_t *error);

/* The directory part of path (without the trailing '/'), "." when there is none. */
void fa_path_directory(char *out, size_t size, const char *path);

#endif
