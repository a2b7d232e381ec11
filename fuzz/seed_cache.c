/* Writes seeds for fuzz_model_cache: builds this build's model caches (without and with the
 * tracker) in DIR/cache, then writes each cache's header, source list and index (the bytes
 * before its data section) to DIR/seed-N. Usage: fuzz_seed_cache MODELS DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include "faceau.h"
#include "model/cache.h"

int main(int argc, char **argv)
{
    if (argc != 3) return 2;
    char cache_dir[4096];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", argv[2]);
    for (int tracker = 0; tracker < 2; tracker++) {
        fa_settings_t settings;
        fa_default_settings(&settings);
        settings.tracker = tracker;
        settings.cache_dir = cache_dir;
        fa_models_t *models = NULL;
        fa_error_t error = {0};
        if (fa_models_load(argv[1], &settings, &models, &error) != FA_OK) {
            fprintf(stderr, "seed_cache: %s\n", error.message);
            return 1;
        }
        fa_models_free(models);
    }
    DIR *folder = opendir(cache_dir);
    if (!folder) return 1;
    int seeds = 0;
    for (struct dirent *entry; (entry = readdir(folder));) {
        if (!strstr(entry->d_name, ".cache")) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", cache_dir, entry->d_name);
        FILE *file = fopen(path, "rb");
        uint8_t header[FA_CACHE_HEADER_SIZE];
        uint64_t data_offset = 0;
        if (file && fread(header, 1, sizeof header, file) == sizeof header) {
            memcpy(&data_offset, header + FA_CACHE_FIELD_DATA_OFFSET, sizeof data_offset);
            uint8_t *prefix = data_offset <= (64u << 20) ? malloc(data_offset) : NULL;
            if (prefix && fseek(file, 0, SEEK_SET) == 0 &&
                fread(prefix, 1, data_offset, file) == data_offset) {
                snprintf(path, sizeof path, "%s/seed-%d", argv[2], seeds++);
                FILE *out = fopen(path, "wb");
                if (out) {
                    fwrite(prefix, 1, data_offset, out);
                    fclose(out);
                }
            }
            free(prefix);
        }
        if (file) fclose(file);
    }
    closedir(folder);
    printf("%d cache seeds\n", seeds);
    return seeds ? 0 : 1;
}
