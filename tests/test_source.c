/* Frame sources: frame counts, sizes and timestamps of the sample media. */
#include <math.h>
#include <string.h>

#include "testing.h"

static int count_frames(const char *path, fa_source_kind kind, int *width, int *height,
                        double *last_timestamp)
{
    fa_source_t *source = NULL;
    fa_error_t error = {0};
    if (fa_source_open(path, kind, &source, &error) != FA_OK) {
        fprintf(stderr, "%s\n", error.message);
        return -1;
    }
    int frames = 0;
    const fa_image_t *frame;
    double timestamp = 0;
    while (fa_source_read(source, &frame, &timestamp, &error) == FA_OK) {
        *width = frame->width;
        *height = frame->height;
        *last_timestamp = timestamp;
        frames++;
    }
    fa_source_close(source);
    return frames;
}

int main(void)
{
    int width = 0, height = 0;
    double last = 0;
    int frames = count_frames(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO,
                              &width, &height, &last);
    CHECK(frames == 288, "default.wmv has %d frames", frames);
    CHECK(width == 640 && height == 480, "size %dx%d", width, height);
    CHECK(fabs(last - 287.0 / 15.0) < 1e-9, "last timestamp %f", last);

    frames = count_frames(test_shared_path("data/videos/changeLighting.wmv"), FA_SOURCE_VIDEO,
                          &width, &height, &last);
    CHECK(frames == 88, "changeLighting.wmv has %d frames", frames);

    frames = count_frames(test_shared_path("data/images/image_sequence"), FA_SOURCE_DIRECTORY,
                          &width, &height, &last);
    CHECK(frames == 30, "image_sequence has %d images", frames);

    fa_source_t *source = NULL;
    fa_error_t error = {0};
    CHECK(fa_source_open("/nonexistent/video.mp4", FA_SOURCE_VIDEO, &source, &error) ==
              FA_ERROR_IO,
          "missing file gives an i/o error");
    CHECK(source == NULL && strstr(error.message, "/nonexistent/video.mp4") != NULL,
          "message names the file: %s", error.message);
    return test_finish("test_source");
}
