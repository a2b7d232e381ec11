/* libFuzzer harness for the binary model readers: the first byte picks the format, the rest is
 * the file. MatBin matrices and little-endian scalars (src/model/reader.c), MTCNN network .dat
 * files (src/detect/cnn.c), the CNN validator (src/landmarks/validator.c). */
#include <stdint.h>

#include "detect/cnn.h"
#include "landmarks/validator.h"
#include "model/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    if (size < 1) return 0;
    const char *data = (const char *)bytes + 1;
    size--;
    switch (bytes[0] % 3) {
    case 0: {
        fa_reader_t reader;
        fa_reader_init(&reader, data, size, "fuzz");
        for (int i = 0; i < 16; i++) {
            fa_matrix_t matrix = {0};
            fa_status status = fa_read_matbin(&reader, &matrix, NULL);
            fa_matrix_release(&matrix);
            if (status != FA_OK) break;
        }
        break;
    }
    case 1: {
        fa_cnn_t cnn = {0};
        if (fa_cnn_parse(&cnn, data, size, "fuzz", NULL) == FA_OK) fa_cnn_release(&cnn);
        break;
    }
    default: {
        fa_validator_t validator;
        if (fa_validator_parse(data, size, "fuzz", &validator, NULL) == FA_OK)
            fa_validator_release(&validator);
        break;
    }
    }
    return 0;
}
