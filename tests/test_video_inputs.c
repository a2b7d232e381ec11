/* Videos off the beaten track, made here with FFmpeg's encoders (tests/media.c): variable frame
 * rate, grayscale (8 and 16 bits), odd and tiny sizes, audio only. Expected values come from
 * the definitions (the frames and times written, OpenCV 4.6's rules), not from faceau. */
#include <libavformat/avformat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "media.h"
#include "testing.h"

static char work[256];
static char output_text[65536];

/* Runs faceau with arguments (a shell fragment), stderr captured; returns the exit code. */
static int run(const char *arguments) {
    return test_run_cli_models(work, arguments, output_text, sizeof output_text);
}

static int count_lines(const char *text) {
    int lines = 0;
    for (; *text; text++)
        lines += *text == '\n';
    return lines;
}

/* ------------------------------------------------------------------------------------------ */
/* Variable frame rate: irregular presentation times; every frame must come out once, in order. */

enum { VFR_FRAMES = 24 };

/* Frame i is a flat gray of level 20 + 9 i, so a dropped or repeated frame shows. */
static int vfr_level(int index) {
    return 20 + 9 * index;
}

static void draw_flat_yuv(void *context, int index, AVFrame *frame) {
    (void)context;
    for (int plane = 0; plane < 3; plane++) {
        int width = plane ? (frame->width + 1) / 2 : frame->width;
        int height = plane ? (frame->height + 1) / 2 : frame->height;
        for (int y = 0; y < height; y++)
            memset(frame->data[plane] + y * frame->linesize[plane], plane ? 128 : vfr_level(index),
                   (size_t)width);
    }
}

/* OpenCV 4.6's CAP_PROP_FPS, which OpenFace's timestamps divide by: the stream's average frame
 * rate, else FFmpeg's guess (checked against OpenCV on both files: 15.7998... for the MP4, whose
 * guess would be 1000; 1000 for the MKV, which records no average). */
static double opencv_fps(const char *path) {
    AVFormatContext *format = NULL;
    double fps = 0;
    if (avformat_open_input(&format, path, NULL, NULL) == 0 &&
        avformat_find_stream_info(format, NULL) >= 0) {
        int video = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
        AVStream *stream = video >= 0 ? format->streams[video] : NULL;
        if (stream) fps = av_q2d(stream->avg_frame_rate);
        if (stream && !(fps > 0)) fps = av_q2d(av_guess_frame_rate(format, stream, NULL));
    }
    avformat_close_input(&format);
    return fps;
}

/* The frame whose flat level (limited-range luma, neutral chroma, shown as BGR) is nearest. */
static int frame_shown(int bgr_level) {
    int best = -1, best_distance = 1 << 30;
    for (int i = 0; i < VFR_FRAMES; i++) {
        double shown = (vfr_level(i) - 16) * 255.0 / 219.0;
        int distance = abs(bgr_level - (int)(shown + 0.5));
        if (distance < best_distance) best = i, best_distance = distance;
    }
    return best;
}

static void check_vfr(const char *name, const char *encoder, int pixel_format) {
    /* Milliseconds: 10 fps, then a 0.37 s gap, then 20 fps, then frames 7 ms apart. */
    int64_t pts[VFR_FRAMES];
    for (int i = 0; i < VFR_FRAMES; i++)
        pts[i] = i < 8 ? 100 * i : i < 16 ? 1070 + 50 * (i - 8) : 1470 + 7 * (i - 16);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", work, name);
    test_video_spec_t spec = {.path = path,
                              .encoder = encoder,
                              .pixel_format = pixel_format,
                              .width = 64,
                              .height = 48,
                              .frames = VFR_FRAMES,
                              .time_base = 1000,
                              .pts = pts,
                              .draw = draw_flat_yuv};
    CHECK(test_video_write(&spec) == 0, "%s: encode", name);
    double fps = opencv_fps(path);
    CHECK(fps > 0, "%s: frame rate %g", name, fps);

    /* Frame by frame through the source: each frame once, in order; both kinds of time. */
    for (int stream_times = 0; stream_times < 2; stream_times++) {
        fa_source_t *source = NULL;
        fa_error_t error = {0};
        CHECK(fa_source_open(path, FA_SOURCE_VIDEO, &source, &error) == FA_OK, "%s: %s", name,
              error.message);
        if (!source) return;
        fa_source_use_stream_timestamps(source, stream_times);
        int frames = 0, wrong_frame = 0, wrong_time = 0;
        const fa_image_t *frame;
        double time;
        for (; fa_source_read(source, &frame, &time, &error) == FA_OK; frames++) {
            int level = frame->data[(frame->height / 2) * frame->stride + 3 * (frame->width / 2)];
            wrong_frame += frame_shown(level) != frames; /* levels are 10 apart, codecs ±2 */
            double expected = stream_times ? (double)pts[frames] / 1000.0 : frames * (1.0 / fps);
            wrong_time += frames >= VFR_FRAMES || time != expected;
            if (frames < VFR_FRAMES && time != expected)
                fprintf(stderr, "%s frame %d: time %.17g, expected %.17g\n", name, frames, time,
                        expected);
        }
        CHECK(frames == VFR_FRAMES, "%s: %d frames read of %d", name, frames, VFR_FRAMES);
        CHECK(wrong_frame == 0, "%s: %d frames dropped, repeated or out of order", name,
              wrong_frame);
        CHECK(wrong_time == 0, "%s (%s times): %d wrong timestamps", name,
              stream_times ? "stream" : "OpenFace", wrong_time);
        fa_source_close(source);
    }

    /* Through the program: one row per frame; the timestamp column as asked. */
    for (int stream_times = 0; stream_times < 2; stream_times++) {
        char args[4096], csv_path[600];
        snprintf(args, sizeof args, "-f %s -out_dir %s/vfr%d -aus %s", path, work, stream_times,
                 stream_times ? "--stream-timestamps" : "");
        CHECK(run(args) == 0, "%s: %s", name, output_text);
        char stem[256];
        snprintf(stem, sizeof stem, "%s", name);
        *strrchr(stem, '.') = '\0';
        snprintf(csv_path, sizeof csv_path, "%s/vfr%d/%s.csv", work, stream_times, stem);
        test_csv_t csv;
        if (test_csv_load(csv_path, &csv) != 0) {
            CHECK(0, "no CSV %s", csv_path);
            continue;
        }
        int frame_column = test_csv_column(&csv, "frame");
        int time_column = test_csv_column(&csv, "timestamp");
        CHECK(csv.rows == VFR_FRAMES, "%s: %d rows", name, csv.rows);
        int wrong = 0;
        for (int r = 0; r < csv.rows && r < VFR_FRAMES && time_column >= 0; r++) {
            double expected = stream_times ? (double)pts[r] / 1000.0 : r * (1.0 / fps);
            char printed[32];
            snprintf(printed, sizeof printed, "%.3f", expected);
            wrong += test_csv_value(&csv, r, frame_column) != r + 1 ||
                     test_csv_value(&csv, r, time_column) != atof(printed);
        }
        CHECK(wrong == 0, "%s: %d rows with the wrong frame or timestamp", name, wrong);
        test_csv_free(&csv);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Grayscale videos: OpenCV's VideoCapture gives B = G = R = the gray sample for 8 bits, and
 * min(255, (v + 128) >> 8) for 16 bits (swscale's rounding; checked against OpenCV 4.6 for all
 * 65536 values). */

static int gray8_value(int x, int y, int index) {
    return (x * 7 + y * 13 + index * 29) % 256;
}
static int gray16_value(int x, int y, int index) {
    return (x * 1021 + y * 4093 + index * 257 * 29 + (x & 3) * 61) % 65536;
}

static void draw_gray(void *context, int index, AVFrame *frame) {
    int sixteen = *(const int *)context;
    for (int y = 0; y < frame->height; y++)
        for (int x = 0; x < frame->width; x++) {
            uint8_t *p = frame->data[0] + y * frame->linesize[0];
            if (sixteen) {
                int v = gray16_value(x, y, index);
                p[2 * x] = (uint8_t)v, p[2 * x + 1] = (uint8_t)(v >> 8); /* little-endian */
            } else {
                p[x] = (uint8_t)gray8_value(x, y, index);
            }
        }
}

static void check_gray(int sixteen) {
    const char *name = sixteen ? "gray16.mkv" : "gray8.mkv";
    char path[512];
    snprintf(path, sizeof path, "%s/%s", work, name);
    test_video_spec_t spec = {.path = path,
                              .encoder = "ffv1",
                              .pixel_format = sixteen ? AV_PIX_FMT_GRAY16LE : AV_PIX_FMT_GRAY8,
                              .width = 256,
                              .height = 16,
                              .frames = 4,
                              .time_base = 25,
                              .draw = draw_gray,
                              .context = &sixteen};
    CHECK(test_video_write(&spec) == 0, "%s: encode", name);
    fa_source_t *source = NULL;
    fa_error_t error = {0};
    CHECK(fa_source_open(path, FA_SOURCE_VIDEO, &source, &error) == FA_OK, "%s", error.message);
    int frames = 0, wrong = 0;
    const fa_image_t *frame;
    for (; source && fa_source_read(source, &frame, NULL, &error) == FA_OK; frames++)
        for (int y = 0; y < frame->height; y++)
            for (int x = 0; x < frame->width; x++) {
                int v =
                    sixteen ? (gray16_value(x, y, frames) + 128) >> 8 : gray8_value(x, y, frames);
                if (v > 255) v = 255;
                const uint8_t *p = frame->data + y * frame->stride + 3 * x;
                wrong += p[0] != v || p[1] != v || p[2] != v;
            }
    CHECK(frames == 4, "%s: %d frames", name, frames);
    CHECK(wrong == 0, "%s: %d pixels not the gray sample", name, wrong);
    fa_source_close(source);
}

/* ------------------------------------------------------------------------------------------ */
/* Odd and tiny sizes: lossless BGR frames come back exactly; the program writes one row per
 * frame, no face (OpenFace's rows for faceless frames). */

static int pattern(int x, int y, int c, int index) {
    return (x * 31 + y * 17 + c * 71 + index * 5) % 256;
}

static void draw_bgr0(void *context, int index, AVFrame *frame) {
    (void)context;
    for (int y = 0; y < frame->height; y++)
        for (int x = 0; x < frame->width; x++) {
            uint8_t *p = frame->data[0] + y * frame->linesize[0] + 4 * x;
            for (int c = 0; c < 3; c++)
                p[c] = (uint8_t)pattern(x, y, c, index);
            p[3] = 0;
        }
}

static void check_size(int width, int height) {
    char name[64], path[512];
    snprintf(name, sizeof name, "size_%dx%d", width, height);
    snprintf(path, sizeof path, "%s/%s.mkv", work, name);
    test_video_spec_t spec = {.path = path,
                              .encoder = "ffv1",
                              .pixel_format = AV_PIX_FMT_BGR0,
                              .width = width,
                              .height = height,
                              .frames = 5,
                              .time_base = 25,
                              .draw = draw_bgr0};
    CHECK(test_video_write(&spec) == 0, "%s: encode", name);
    fa_source_t *source = NULL;
    fa_error_t error = {0};
    CHECK(fa_source_open(path, FA_SOURCE_VIDEO, &source, &error) == FA_OK, "%s", error.message);
    int frames = 0, wrong = 0;
    const fa_image_t *frame;
    for (; source && fa_source_read(source, &frame, NULL, &error) == FA_OK; frames++) {
        if (frame->width != width || frame->height != height) {
            wrong++;
            continue;
        }
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                    wrong += frame->data[y * frame->stride + 3 * x + c] != pattern(x, y, c, frames);
    }
    CHECK(frames == 5 && wrong == 0, "%s: %d frames, %d samples wrong", name, frames, wrong);
    fa_source_close(source);

    char args[2048], csv_path[600];
    snprintf(args, sizeof args, "-f %s -out_dir %s/sizes", path, work);
    CHECK(run(args) == 0, "%s: %s", name, output_text);
    snprintf(csv_path, sizeof csv_path, "%s/sizes/%s.csv", work, name);
    test_csv_t csv;
    if (test_csv_load(csv_path, &csv) == 0) {
        int success = test_csv_column(&csv, "success"), found = 0;
        for (int r = 0; r < csv.rows && success >= 0; r++)
            found += test_csv_value(&csv, r, success) != 0;
        CHECK(csv.rows == 5 && success >= 0 && found == 0, "%s: %d rows, %d with a face", name,
              csv.rows, found);
        test_csv_free(&csv);
    } else {
        CHECK(0, "no CSV %s", csv_path);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Audio only: a one-line error naming the file, exit 15 (the input cannot be used as a video),
 * and a batch goes on with the next input. */

static void check_audio_only(void) {
    static const struct {
        const char *name, *encoder;
    } files[] = {
        {"tone.wav", "pcm_s16le"},
        {"tone.mp4", "aac"},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[512], args[2048];
        snprintf(path, sizeof path, "%s/%s", work, files[i].name);
        CHECK(test_audio_write(path, files[i].encoder, 0.5) == 0, "%s: encode", files[i].name);
        snprintf(args, sizeof args, "-f %s -out_dir %s/audio", path, work);
        CHECK(run(args) == 15, "%s: exit code: %s", files[i].name, output_text);
        CHECK(strstr(output_text, path) && strstr(output_text, "no video stream") &&
                  count_lines(output_text) == 1,
              "%s: one line naming the file and the reason: %s", files[i].name, output_text);
    }
    /* In a batch, the video after it is still processed. */
    char args[2048], path[600];
    snprintf(args, sizeof args, "-f %s/tone.wav -f %s/size_33x17.mkv -out_dir %s/audio_batch", work,
             work, work);
    CHECK(run(args) == 15 && strstr(output_text, "1 of 2 inputs done, 1 failed"), "batch: %s",
          output_text);
    snprintf(path, sizeof path, "%s/audio_batch/size_33x17.csv", work);
    FILE *file = fopen(path, "r");
    CHECK(file != NULL, "the video after the audio file was processed");
    if (file) fclose(file);
}

int main(void) {
    strcpy(work, "/tmp/faceau_videos_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    check_vfr("vfr.mp4", "mpeg4", AV_PIX_FMT_YUV420P);
    check_vfr("vfr.mkv", "ffv1", AV_PIX_FMT_YUV420P);
    check_gray(0);
    check_gray(1);
    check_size(33, 17);
    check_size(1, 1);
    check_size(2, 1);
    check_audio_only();
    char command[300];
    snprintf(command, sizeof command, getenv("FACEAU_TEST_KEEP") ? "echo kept %s" : "rm -rf '%s'",
             work);
    CHECK(system(command) == 0, "cleanup");
    return test_finish("test_video_inputs");
}
