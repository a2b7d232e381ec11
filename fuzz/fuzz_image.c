/* libFuzzer harness for still-image decoding (src/io/image_file.c, src/io/bmp.c: JPEG, PNG,
 * BMP by their magic bytes) through the image source, as `faceau -f photo.jpg` opens it. */
#define _GNU_SOURCE
#include "faceau.h"
#include "fuzz_memfd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fa_source_t *source = NULL;
    if (fa_source_open(fuzz_memfd_path(data, size), FA_SOURCE_IMAGE, &source, NULL) != FA_OK)
        return 0;
    const fa_image_t *frame;
    double timestamp;
    if (fa_source_read(source, &frame, &timestamp, NULL) == FA_OK) {
        volatile uint8_t sink = frame->data[(size_t)(frame->height - 1) * (size_t)frame->stride +
                                            (size_t)(frame->width * frame->channels - 1)];
        (void)sink;
    }
    fa_source_close(source);
    return 0;
}
