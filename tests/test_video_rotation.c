/* Videos tagged with a display rotation (phones record sideways and tag the stream) are turned
 * upright as players turn them: ffmpeg's autorotate turns the frame clockwise by
 * -av_display_rotation_get(matrix) degrees. The test remuxes the sample H.264 video into MP4s
 * whose display matrices say "turn 90 degrees clockwise" and "turn 180 degrees" by that rule,
 * then checks every frame against the untagged video's, turned by the definition. */
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

enum { FRAMES = 12 };

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
        /* Whatever av_display_rotation_set's sign convention, the players' rule decides. */
        if (av_display_rotation_get(matrix) != -clockwise) av_display_rotation_set(matrix, -clockwise);
        failed |= av_display_rotation_get(matrix) != -clockwise &&
                  !(clockwise == 180 && av_display_rotation_get(matrix) == 180);
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
                 * (y, H - 1 - x); by 180: (W - 1 - x, H - 1 - y). */
                int sx = quarter_turns == 1 ? y : a->width - 1 - x;
                int sy = quarter_turns == 1 ? a->height - 1 - x : a->height - 1 - y;
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

int main(void)
{
    char work[256];
    test_temporary_folder(work, sizeof work, "rotation");
    const char *sample = test_shared_path("data/videos/two_faces.mp4");
    char plain[256], quarter[256], half[256];
    snprintf(plain, sizeof plain, "%s/plain.mp4", work);
    snprintf(quarter, sizeof quarter, "%s/quarter.mp4", work);
    snprintf(half, sizeof half, "%s/half.mp4", work);
    /* The untagged copy has the same packets, so any difference is the rotation. */
    CHECK(remux_rotated(sample, plain, 0) == 0, "remux without rotation");
    CHECK(remux_rotated(sample, quarter, 90) == 0, "remux turned a quarter clockwise");
    CHECK(remux_rotated(sample, half, 180) == 0, "remux turned a half");
    compare(plain, quarter, 1);
    compare(plain, half, 2);
    test_remove_folder(work);
    return test_finish("test_video_rotation");
}
