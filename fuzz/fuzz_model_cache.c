/* libFuzzer harness for the model cache reader and the restoring code behind it
 * (src/model/cache.c, src/pipeline/model_cache.c).
 *
 * An input is the start of a cache file: header, sources and index (seeds: the first
 * data-offset bytes of real caches). The harness places it at the start of a large region, so
 * that the data section the header claims exists: the data of the cache named by
 * $FUZZ_CACHE_TEMPLATE (a real cache written by the same build, so that the index arrays it
 * validates hold real values) or zeros. It makes the file-size field agree, seals the checksum
 * (so that mutations reach the structure checks instead of stopping at the checksum), restores
 * the models from the image and reads a value of each to make sure the pointers are usable. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "au/au_internal.h"
#include "model/cache.h"
#include "pipeline/model_cache.h"

enum { REGION = 256 << 20, MAX_INPUT = 16 << 20 };

static uint8_t *region, *pristine; /* pristine: the region's first MAX_INPUT bytes */

static void setup(void)
{
    region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
    pristine = calloc(MAX_INPUT, 1);
    if (region == MAP_FAILED || !pristine) abort();
    const char *template = getenv("FUZZ_CACHE_TEMPLATE");
    FILE *file = template ? fopen(template, "rb") : NULL;
    if (template && !file) abort();
    if (file) {
        size_t read = fread(region, 1, REGION, file);
        fclose(file);
        memcpy(pristine, region, read < MAX_INPUT ? read : MAX_INPUT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!region) setup();
    if (size > MAX_INPUT) return 0;
    memcpy(region, data, size);
    size_t image = size;
    if (size >= FA_CACHE_HEADER_SIZE) {
        uint64_t offset, length;
        memcpy(&offset, region + FA_CACHE_FIELD_DATA_OFFSET, 8);
        memcpy(&length, region + FA_CACHE_FIELD_DATA_SIZE, 8);
        if (offset >= FA_CACHE_HEADER_SIZE && offset <= REGION && length <= REGION - offset &&
            offset + length >= size) {
            image = (size_t)(offset + length);
            uint64_t file_size = image;
            memcpy(region + FA_CACHE_FIELD_FILE_SIZE, &file_size, 8);
        }
        fa_cache_seal(region, image);
    }
    fa_au_models_t *au = NULL;
    fa_pdm_t pdm;
    fa_triangulation_t triangulation;
    fa_face_models_t *faces = NULL;
    fa_model_slots_t slots = {&au, &pdm, &triangulation, &faces};
    fa_model_cache_t *cache = NULL;
    if (fa_model_cache_load_image(region, image, &slots, &cache, NULL) == FA_MODEL_CACHE_HIT) {
        volatile float sink = pdm.mean_shape[3 * pdm.point_count - 1] +
                              (float)au->groups[0].count + (float)triangulation.vertices[0][0];
        if (faces) sink += faces->set.main.pdm.components[0] + faces->fit_main.clamp[0];
        (void)sink;
        fa_model_cache_close(cache);
    }
    memcpy(region, pristine, size);
    return 0;
}
