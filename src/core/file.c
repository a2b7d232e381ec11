#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local fa_file_log_t *attached_log;

static void stamp_from_stat(const struct stat *info, fa_file_stamp_t *stamp)
{
    stamp->size = (uint64_t)info->st_size;
    stamp->mtime_ns = (int64_t)info->st_mtim.tv_sec * 1000000000 + (int64_t)info->st_mtim.tv_nsec;
}

/* Adds path to the attached log, if any, unless it is there already. */
static void log_file(const char *path, FILE *file)
{
    fa_file_log_t *log = attached_log;
    if (!log) return;
    for (int i = 0; i < log->count; i++)
        if (!strcmp(log->paths[i], path)) return;
    struct stat info;
    if (fstat(fileno(file), &info) != 0) {
        log->incomplete = 1;
        return;
    }
    if (log->count == log->capacity) {
        int capacity = log->capacity ? 2 * log->capacity : 64;
        char **paths = realloc(log->paths, sizeof *paths * (size_t)capacity);
        if (paths) log->paths = paths;
        fa_file_stamp_t *stamps = realloc(log->stamps, sizeof *stamps * (size_t)capacity);
        if (stamps) log->stamps = stamps;
        if (!paths || !stamps) {
            log->incomplete = 1;
            return;
        }
        log->capacity = capacity;
    }
    char *copy = strdup(path);
    if (!copy) {
        log->incomplete = 1;
        return;
    }
    log->paths[log->count] = copy;
    stamp_from_stat(&info, &log->stamps[log->count]);
    log->count++;
}

fa_file_log_t *fa_file_log_attach(fa_file_log_t *log)
{
    fa_file_log_t *previous = attached_log;
    attached_log = log;
    return previous;
}

void fa_file_log_release(fa_file_log_t *log)
{
    if (!log) return;
    for (int i = 0; i < log->count; i++)
        free(log->paths[i]);
    free(log->paths);
    free(log->stamps);
    memset(log, 0, sizeof *log);
}

fa_status fa_file_check_readable(const char *path, const char *named_by, fa_error_t *error)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return fa_error_set(error, FA_ERROR_IO, "%s (named in %s): cannot be opened", path,
                            named_by);
    log_file(path, file);
    fclose(file);
    return FA_OK;
}

fa_status fa_file_stamp(const char *path, fa_file_stamp_t *stamp, fa_error_t *error)
{
    struct stat info;
    if (stat(path, &info) != 0)
        return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
    stamp_from_stat(&info, stamp);
    return FA_OK;
}

fa_status fa_file_read_all(const char *path, char **contents, size_t *size, fa_error_t *error)
{
    *contents = NULL;
    *size = 0;
    FILE *file = fopen(path, "rb");
    if (!file) return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
    log_file(path, file);
    size_t capacity = 1 << 16, length = 0;
    char *buffer = malloc(capacity + 1);
    for (;;) {
        if (!buffer) {
            fclose(file);
            return fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", path);
        }
        length += fread(buffer + length, 1, capacity - length, file);
        if (length < capacity) break;
        capacity *= 2;
        char *grown = realloc(buffer, capacity + 1);
        if (!grown) free(buffer);
        buffer = grown;
    }
    int failed = ferror(file);
    fclose(file);
    if (failed) {
        free(buffer);
        return fa_error_set(error, FA_ERROR_IO, "%s: read error", path);
    }
    buffer[length] = '\0';
    *contents = buffer;
    *size = length;
    return FA_OK;
}

fa_status fa_path_join(char *out, size_t size, const char *directory, const char *name,
                       fa_error_t *error)
{
    int written = directory && directory[0] ? snprintf(out, size, "%s/%s", directory, name)
                                            : snprintf(out, size, "%s", name);
    if (written < 0 || (size_t)written >= size)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "path too long: %s/%s", directory, name);
    return FA_OK;
}

void fa_path_directory(char *out, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(out, size, ".");
        return;
    }
    size_t length = (size_t)(slash - path);
    if (length == 0) length = 1; /* "/file" lives in "/" */
    if (length >= size) length = size - 1;
    memcpy(out, path, length);
    out[length] = '\0';
}
