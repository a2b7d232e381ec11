/* libFuzzer harness for the model text parsers: the first byte picks the format, the rest is the
 * file. Text matrices and tokens (src/model/reader.c), AU SVR/SVM .dat files, PDMs, the
 * triangulation, CCNF patch-expert scales. Every parse must end in FA_OK or a clean error. */
#include <stdint.h>
#include <stdlib.h>

#include "align/align.h"
#include "au/au_internal.h"
#include "landmarks/ccnf.h"
#include "model/reader.h"
#include "pdm/pdm.h"

static void read_everything(const char *data, size_t size)
{
    fa_reader_t reader;
    fa_reader_init(&reader, data, size, "fuzz");
    for (int i = 0; i < 64; i++) {
        fa_matrix_t matrix = {0};
        fa_reader_skip_comments(&reader);
        fa_status status = fa_read_text_matrix(&reader, &matrix, NULL);
        fa_matrix_release(&matrix);
        if (status != FA_OK) break;
    }
    fa_reader_init(&reader, data, size, "fuzz");
    char token[64];
    int value;
    double number;
    for (int i = 0; i < 64; i++) {
        if (fa_read_token(&reader, token, sizeof token, NULL) != FA_OK) break;
        if (fa_read_text_int(&reader, &value, NULL) != FA_OK) break;
        if (fa_read_text_double(&reader, &number, NULL) != FA_OK) break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    if (size < 1) return 0;
    const char *data = (const char *)bytes + 1;
    size--;
    switch (bytes[0] % 5) {
    case 0: read_everything(data, size); break;
    case 1: {
        fa_au_regressor_t regressor = {0};
        if (fa_au_regressor_parse(data, size, "fuzz", &regressor, NULL) == FA_OK)
            fa_au_regressor_release(&regressor);
        break;
    }
    case 2: {
        fa_pdm_t pdm;
        if (fa_pdm_parse(data, size, "fuzz", &pdm, NULL) == FA_OK) fa_pdm_release(&pdm);
        break;
    }
    case 3: {
        fa_triangulation_t triangulation;
        if (fa_triangulation_parse(data, size, "fuzz", &triangulation, NULL) == FA_OK)
            fa_triangulation_release(&triangulation);
        break;
    }
    default: {
        fa_ccnf_scale_t scale;
        if (fa_ccnf_parse_scale(data, size, "fuzz", &scale, NULL) == FA_OK)
            fa_ccnf_scale_release(&scale);
        break;
    }
    }
    return 0;
}
