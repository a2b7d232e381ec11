/* libFuzzer harness for the video path (src/io/source.c): FFmpeg opens the bytes held in an
 * in-memory file, probes, decodes and converts every frame to BGR, as `faceau -f video` does. */
#define _GNU_SOURCE
#include "faceau.h"
#include "fuzz_memfd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fa_source_t *source = NULL;
    if (fa_source_open(fuzz_memfd_path(data, size), FA_SOURCE_VIDEO, &source, NULL) != FA_OK)
        return 0;
    const fa_image_t *frame;
    double timestamp;
    for (int i = 0; i < 32; i++) {
        if (fa_source_read(source, &frame, &timestamp, NULL) != FA_OK) break;
        volatile uint8_t sink = frame->data[0];
        (void)sink;
    }
    fa_source_close(source);
    return 0;
}
