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

/* fa_source_read_into gives what fa_source_read gives, frame by frame, timestamps included. */
static void check_read_into(const char *path, fa_source_kind kind, int expected_frames)
{
    fa_source_t *by_pointer = NULL, *into = NULL;
    fa_error_t error = {0};
    CHECK_OK(fa_source_open(path, kind, &by_pointer, &error));
    CHECK_OK(fa_source_open(path, kind, &into, &error));
    if (!by_pointer || !into) return;
    fa_image_t image = {0};
    const fa_image_t *frame;
    double t1 = 0, t2 = 0;
    int frames = 0, differ = 0;
    while (fa_source_read(by_pointer, &frame, &t1, &error) == FA_OK) {
        if (fa_source_read_into(into, &image, &t2, &error) != FA_OK) {
            differ++;
            break;
        }
        int same = image.width == frame->width && image.height == frame->height &&
                   image.channels == frame->channels && t1 == t2;
        for (int y = 0; same && y < image.height; y++)
            same = memcmp(image.data + y * image.stride, frame->data + y * frame->stride,
                          (size_t)image.width * (size_t)image.channels) == 0;
        differ += !same;
        frames++;
    }
    CHECK(fa_source_read_into(into, &image, &t2, &error) == FA_ERROR_END, "%s: no end", path);
    CHECK(frames == expected_frames && differ == 0, "%s: %d frames, %d differ", path, frames,
          differ);
    fa_image_release(&image);
    fa_source_close(by_pointer);
    fa_source_close(into);
}

int main(void)
{
    check_read_into(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO, 288);
    check_read_into(test_shared_path("data/images/image_sequence"), FA_SOURCE_DIRECTORY, 30);

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
