#include "core/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fa_status fa_file_read_all(const char *path, char **contents, size_t *size, fa_error_t *error)
{
    *contents = NULL;
    *size = 0;
    FILE *file = fopen(path, "rb");
    if (!file) return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
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
