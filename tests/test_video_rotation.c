/* Videos tagged with a display rotation (phones record sideways and tag the stream) are turned
 * upright as players turn them: ffmpeg's autorotate turns the frame clockwise by
 * -av_display_rotation_get(matrix) degrees. The test remuxes the sample H.264 video into MP4s
 * whose display matrices say "turn 90, 180, 270 degrees clockwise" by that rule and checks
 * every frame against the untagged video's, turned by the definition; then the program, given
 * default.wmv's frames stored sideways and tagged, must write exactly the CSV of the same frames
 * stored upright. */
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media.h"
#include "testing.h"

enum { FRAMES = 12, PROGRAM_FRAMES = 30 };

static int turns_clockwise(const int32_t matrix[9], double clockwise)
{
    double turn = fmod(-av_display_rotation_get(matrix) - clockwise, 360.0);
    return fabs(turn) < 1e-6 || fabs(fabs(turn) - 360.0) < 1e-6;
}

/* Copies the first packets of the video stream of `in` into an MP4 at `out` whose display
 * matrix tells players to turn the frames `clockwise` degrees. Returns 0 on success. */
static int remux_rotated(const char *in, const char *out, double clockwise)
{
    AVFormatContext *input = NULL, *output = NULL;
    if (avformat_open_input(&input, in, NULL, NULL) < 0) return 1;
    int failed = avformat_find_stream_info(input, NULL) < 0;
    int video = failed ? -1 : av_find_best_stream(input, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    failed |= video < 0 || avformat_alloc_output_context2(&output, NULL, "mp4", out) < 0;
    AVStream *stream = failed ? NULL : avformat_new_stream(output, NULL);
    failed |= !stream;
    if (!failed) {
        failed |= avcodec_parameters_copy(stream->codecpar, input->streams[video]->codecpar) < 0;
        stream->codecpar->codec_tag = 0;
        stream->time_base = input->streams[video]->time_base;
        int32_t matrix[9];
        av_display_rotation_set(matrix, clockwise);
        /* Whatever av_display_rotation_set's sign convention, the players' rule decides: they
         * turn clockwise by -av_display_rotation_get(matrix), modulo a full turn. */
        if (!turns_clockwise(matrix, clockwise)) av_display_rotation_set(matrix, -clockwise);
        failed |= !turns_clockwise(matrix, clockwise);
#if LIBAVFORMAT_VERSION_MAJOR >= 61
        AVPacketSideData *side = av_packet_side_data_new(
            &stream->codecpar->coded_side_data, &stream->codecpar->nb_coded_side_data,
            AV_PKT_DATA_DISPLAYMATRIX, sizeof matrix, 0);
        uint8_t *data = side ? side->data : NULL;
#else
        uint8_t *data = av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, sizeof matrix);
#endif
        failed |= !data;
        if (data) memcpy(data, matrix, sizeof matrix);
    }
    failed |= failed || avio_open(&output->pb, out, AVIO_FLAG_WRITE) < 0;
    failed |= failed || avformat_write_header(output, NULL) < 0;
    AVPacket *packet = av_packet_alloc();
    for (int copied = 0; !failed && copied < 4 * FRAMES && av_read_frame(input, packet) >= 0;) {
        if (packet->stream_index == video) {
            av_packet_rescale_ts(packet, input->streams[video]->time_base, stream->time_base);
            packet->stream_index = 0;
            packet->pos = -1;
            failed |= av_interleaved_write_frame(output, packet) < 0;
            copied++;
        }
        av_packet_unref(packet);
    }
    if (!failed) failed |= av_write_trailer(output) < 0;
    av_packet_free(&packet);
    if (output && output->pb) avio_closep(&output->pb);
    avformat_free_context(output);
    avformat_close_input(&input);
    return failed;
}

/* Every frame of `rotated` must be the frame of `plain` seen turned clockwise by quarter turns. */
static void compare(const char *plain_path, const char *rotated_path, int quarter_turns)
{
    fa_source_t *plain = NULL, *rotated = NULL;
    fa_error_t error = {0};
    CHECK(fa_source_open(plain_path, FA_SOURCE_VIDEO, &plain, &error) == FA_OK, "%s",
          error.message);
    CHECK(fa_source_open(rotated_path, FA_SOURCE_VIDEO, &rotated, &error) == FA_OK, "%s",
          error.message);
    int frames = 0, wrong_size = 0, wrong_pixels = 0;
    for (; plain && rotated && frames < FRAMES; frames++) {
        const fa_image_t *a, *b;
        double ta, tb;
        if (fa_source_read(plain, &a, &ta, &error) != FA_OK) break;
        if (fa_source_read(rotated, &b, &tb, &error) != FA_OK) break;
        int swap = quarter_turns % 2;
        if (b->width != (swap ? a->height : a->width) ||
            b->height != (swap ? a->width : a->height)) {
            wrong_size++;
            continue;
        }
        for (int y = 0; y < b->height; y++)
            for (int x = 0; x < b->width; x++) {
                /* Turned clockwise by 90 degrees: the displayed (x, y) is the stored
                 * (y, H - 1 - x); by 180: (W - 1 - x, H - 1 - y); by 270: (W - 1 - y, x). */
                int sx = quarter_turns == 1 ? y
                         : quarter_turns == 2 ? a->width - 1 - x
                                              : a->width - 1 - y;
                int sy = quarter_turns == 1 ? a->height - 1 - x
                         : quarter_turns == 2 ? a->height - 1 - y
                                              : x;
                wrong_pixels += memcmp(b->data + y * b->stride + 3 * x,
                                       a->data + sy * a->stride + 3 * sx, 3) != 0;
            }
    }
    CHECK(frames == FRAMES, "%d frames compared", frames);
    CHECK(wrong_size == 0, "%d quarter turns: %d frames of the wrong size", quarter_turns,
          wrong_size);
    CHECK(wrong_pixels == 0, "%d quarter turns: %d pixels not where the rotation puts them",
          quarter_turns, wrong_pixels);
    fa_source_close(plain);
    fa_source_close(rotated);
}

/* Frames of default.wmv for the program check: stored turned a quarter counter-clockwise
 * when `sideways`, so that the tagged video shows them upright. */
typedef struct sideways_frames {
    fa_image_t images[PROGRAM_FRAMES];
    int sideways;
} sideways_frames_t;

static void draw_frame(void *context, int index, AVFrame *frame)
{
    const sideways_frames_t *frames = context;
    const fa_image_t *image = &frames->images[index];
    for (int y = 0; y < frame->height; y++)
        for (int x = 0; x < frame->width; x++) {
            /* Stored (x, y) of a frame turned counter-clockwise is upright (W - 1 - y, x)...
             * seen the other way: turning it clockwise shows stored (y, H' - 1 - x). */
            int ux = frames->sideways ? image->width - 1 - y : x;
            int uy = frames->sideways ? x : y;
            uint8_t *p = frame->data[0] + y * frame->linesize[0] + 4 * x;
            memcpy(p, image->data + uy * image->stride + 3 * ux, 3);
            p[3] = 0;
        }
}

/* The program on a sideways recording tagged to be turned upright writes exactly the CSV it
 * writes for the same frames stored upright: detection, tracking and AUs see upright faces. */
static void check_program_upright(const char *work)
{
    sideways_frames_t *frames = calloc(1, sizeof *frames);
    fa_source_t *source = NULL;
    fa_error_t error = {0};
    CHECK(fa_source_open(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO, &source,
                         &error) == FA_OK,
          "%s", error.message);
    int count = 0;
    const fa_image_t *frame;
    while (source && count < PROGRAM_FRAMES && fa_source_read(source, &frame, NULL, &error) == FA_OK)
        CHECK_OK(fa_image_copy(&frames->images[count++], frame, &check_error_));
    fa_source_close(source);
    CHECK(count == PROGRAM_FRAMES, "%d frames", count);
    char upright[256], sideways[256], command[8192];
    snprintf(upright, sizeof upright, "%s/upright.mov", work);
    snprintf(sideways, sizeof sideways, "%s/sideways.mov", work);
    for (int turned = 0; turned < 2 && count == PROGRAM_FRAMES; turned++) {
        frames->sideways = turned;
        int width = frames->images[0].width, height = frames->images[0].height;
        test_video_spec_t spec = {.path = turned ? sideways : upright, .encoder = "ffv1",
                                  .pixel_format = AV_PIX_FMT_BGR0,
                                  .width = turned ? height : width,
                                  .height = turned ? width : height, .frames = count,
                                  .time_base = 15, .display_clockwise = turned ? 90 : 0,
                                  .draw = draw_frame, .context = frames};
        CHECK(test_video_write(&spec) == 0, "encode %s", spec.path);
    }
    for (int i = 0; i < count; i++) fa_image_release(&frames->images[i]);
    free(frames);
    snprintf(command, sizeof command,
             "'%s' -f %s -f %s -out_dir %s/out -2Dfp -pose -pdmparams -aus --models '%s' -q "
             "--threads 1 && "
             "cmp %s/out/upright.csv %s/out/sideways.csv",
             FACEAU_CLI, upright, sideways, work, test_models_dir(), work, work);
    CHECK(system(command) == 0, "the sideways recording gives the upright one's CSV");
    snprintf(command, sizeof command, "%s/out/sideways.csv", work);
    test_csv_t csv;
    int found = 0, rows = 0;
    if (test_csv_load(command, &csv) == 0) {
        int success = test_csv_column(&csv, "success");
        for (int r = 0; r < csv.rows && success >= 0; r++) found += test_csv_value(&csv, r, success) != 0;
        rows = csv.rows;
        test_csv_free(&csv);
    }
    CHECK(rows == PROGRAM_FRAMES && found == rows, "faces found on %d of %d rows of the sideways "
          "recording", found, rows);
}

int main(void)
{
    char work[256];
    test_temporary_folder(work, sizeof work, "rotation");
    const char *sample = test_shared_path("data/videos/two_faces.mp4");
    char plain[256], quarter[256], half[256], three[256];
    snprintf(plain, sizeof plain, "%s/plain.mp4", work);
    snprintf(quarter, sizeof quarter, "%s/quarter.mp4", work);
    snprintf(half, sizeof half, "%s/half.mp4", work);
    snprintf(three, sizeof three, "%s/three_quarters.mp4", work);
    /* The untagged copy has the same packets, so any difference is the rotation. */
    CHECK(remux_rotated(sample, plain, 0) == 0, "remux without rotation");
    CHECK(remux_rotated(sample, quarter, 90) == 0, "remux turned a quarter clockwise");
    CHECK(remux_rotated(sample, half, 180) == 0, "remux turned a half");
    CHECK(remux_rotated(sample, three, 270) == 0, "remux turned three quarters clockwise");
    compare(plain, quarter, 1);
    compare(plain, half, 2);
    compare(plain, three, 3);
    check_program_upright(work);
    test_remove_folder(work);
    return test_finish("test_video_rotation");
}
