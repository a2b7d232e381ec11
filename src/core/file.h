/* Whole-file reading: model parsers work on memory buffers so that they can be fuzzed. */
#ifndef FACEAU_CORE_FILE_H
#define FACEAU_CORE_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Reads the whole file at path into a new buffer (NUL-terminated, *size excludes the NUL).
 * Free with free(). */
fa_status fa_file_read_all(const char *path, char **contents, size_t *size, fa_error_t *error);

/* Fails with FA_ERROR_IO naming path and named_by (the file that refers to it) when path cannot
 * be opened for reading. */
fa_status fa_file_check_readable(const char *path, const char *named_by, fa_error_t *error);

/* A file's size and modification time (nanoseconds since the epoch), as the model cache records
 * its sources. */
typedef struct fa_file_stamp {
    uint64_t size;
    int64_t mtime_ns;
} fa_file_stamp_t;

fa_status fa_file_stamp(const char *path, fa_file_stamp_t *stamp, fa_error_t *error);

/* The files read while a log is attached to the calling thread: every path given to
 * fa_file_read_all or fa_file_check_readable, once, with its stamp taken when it was opened (so
 * a file changed after being read looks changed). The model cache lists its sources this way. */
typedef struct fa_file_log {
    int count, capacity;
    char **paths;
    fa_file_stamp_t *stamps;
    int incomplete; /* an entry could not be recorded (out of memory, or no stamp) */
} fa_file_log_t;

/* Attaches log to this thread (NULL detaches); returns the log attached before. */
fa_file_log_t *fa_file_log_attach(fa_file_log_t *log);
void fa_file_log_release(fa_file_log_t *log);

/* Joins directory and name with a '/' into out (size bytes); fails if it does not fit. */
fa_status fa_path_join(char *out, size_t size, const char *directory, const char *name,
                       fa_error_t *error);

/* The directory part of path (without the trailing '/'), "." when there is none. */
void fa_path_directory(char *out, size_t size, const char *path);

#endif
