/* Test media made at test time with FFmpeg's encoders (no video is ever committed): videos of
 * any size, pixel format and timing, and audio-only files. */
#ifndef FACEAU_TEST_MEDIA_H
#define FACEAU_TEST_MEDIA_H

#include <libavutil/frame.h>
#include <stdint.h>

typedef struct test_video_spec {
    const char *path;    /* the container follows the extension (.mkv, .mp4, .avi, .nut) */
    const char *encoder; /* e.g. "ffv1" (lossless), "mpeg4" */
    int pixel_format;    /* an enum AVPixelFormat the encoder takes */
    int width, height, frames;
    int time_base;         /* the encoder's time base is 1/time_base seconds */
    const int64_t *pts;    /* per frame in time-base units; NULL: 0, 1, 2, ... */
    int display_clockwise; /* 90, 180, 270: a display matrix telling players to turn the
                              frames so far clockwise (as phones tag sideways recordings) */
    /* Fills frame `index` (already allocated in pixel_format, width x height). */
    void (*draw)(void *context, int index, AVFrame *frame);
    void *context;
} test_video_spec_t;

/* Encodes and writes the video; returns 0 on success, else prints why and returns 1. */
int test_video_write(const test_video_spec_t *spec);

/* A JPEG written with libjpeg: input_space (JCS_RGB, JCS_CMYK or JCS_GRAYSCALE) gives the
 * components per pixel, stored the colour space in the file; fill writes row y's samples.
 * Returns 0 on success. */
int test_jpeg_write(const char *path, int width, int height, int input_space, int stored,
                    int quality, void (*fill)(void *context, int y, unsigned char *row),
                    void *context);

/* An audio-only file (a sine tone) of `seconds`, encoded with `encoder` ("pcm_s16le" for .wav,
 * "aac" for .mp4/.m4a); returns 0 on success. */
int test_audio_write(const char *path, const char *encoder, double seconds);

#endif
