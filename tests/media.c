#include "media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/opt.h>
#include <jpeglib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The open output file and its one encoded stream. */
typedef struct writer {
    AVFormatContext *format;
    AVCodecContext *encoder;
    AVStream *stream;
    AVPacket *packet, *held; /* held: the last packet, written once its duration is known */
    int64_t last_duration;
} writer_t;

static int fail(const char *path, const char *what, int code) {
    char reason[AV_ERROR_MAX_STRING_SIZE] = "";
    if (code < 0) av_strerror(code, reason, sizeof reason);
    fprintf(stderr, "test media %s: %s %s\n", path, what, reason);
    return 1;
}

static int open_writer(writer_t *writer, const char *path, const char *encoder_name) {
    *writer = (writer_t){0};
    const AVCodec *codec = avcodec_find_encoder_by_name(encoder_name);
    if (!codec) return fail(path, "no encoder", 0);
    if (avformat_alloc_output_context2(&writer->format, NULL, NULL, path) < 0)
        return fail(path, "no container for this extension", 0);
    writer->encoder = avcodec_alloc_context3(codec);
    writer->stream = avformat_new_stream(writer->format, NULL);
    writer->packet = av_packet_alloc();
    writer->held = av_packet_alloc();
    if (!writer->encoder || !writer->stream || !writer->packet || !writer->held)
        return fail(path, "memory", 0);
    if (writer->format->oformat->flags & AVFMT_GLOBALHEADER)
        writer->encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    return 0;
}

/* Tags the stream with a display matrix: players (ffmpeg's autorotate) turn its frames
 * clockwise by -av_display_rotation_get(matrix), and av_display_rotation_set takes the
 * clockwise angle. */
static int tag_rotation(AVStream *stream, int clockwise) {
    int32_t matrix[9];
    av_display_rotation_set(matrix, (double)clockwise);
    if (lround(-av_display_rotation_get(matrix) - clockwise) % 360 != 0) return 1;
#if LIBAVFORMAT_VERSION_MAJOR >= 61
    AVPacketSideData *side = av_packet_side_data_new(&stream->codecpar->coded_side_data,
                                                     &stream->codecpar->nb_coded_side_data,
                                                     AV_PKT_DATA_DISPLAYMATRIX, sizeof matrix, 0);
    uint8_t *data = side ? side->data : NULL;
#else
    uint8_t *data = av_stream_new_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, sizeof matrix);
#endif
    if (data) memcpy(data, matrix, sizeof matrix);
    return data ? 0 : 1;
}

/* Opens the encoder (its fields set by the caller), then the file. */
static int start_writer(writer_t *writer, const char *path, int display_clockwise) {
    int code = avcodec_open2(writer->encoder, writer->encoder->codec, NULL);
    if (code < 0) return fail(path, "cannot open the encoder", code);
    code = avcodec_parameters_from_context(writer->stream->codecpar, writer->encoder);
    if (code >= 0 && display_clockwise && tag_rotation(writer->stream, display_clockwise))
        return fail(path, "cannot tag the rotation", 0);
    writer->stream->time_base = writer->encoder->time_base;
    if (code >= 0) code = avio_open(&writer->format->pb, path, AVIO_FLAG_WRITE);
    if (code >= 0) code = avformat_write_header(writer->format, NULL);
    return code < 0 ? fail(path, "cannot start the file", code) : 0;
}

/* Writes the held packet with the given duration (MP4 drops a last sample without one). */
static int write_held(writer_t *writer, const char *path, int64_t duration) {
    if (!writer->held->data) return 0;
    writer->held->duration = duration > 0 ? duration : 1;
    writer->last_duration = writer->held->duration;
    av_packet_rescale_ts(writer->held, writer->encoder->time_base, writer->stream->time_base);
    writer->held->stream_index = 0;
    int code = av_interleaved_write_frame(writer->format, writer->held);
    av_packet_unref(writer->held);
    return code < 0 ? fail(path, "writing", code) : 0;
}

/* Sends one frame (NULL: flush) and writes every packet the encoder has ready (the encoders
 * used here keep packets in presentation order). */
static int encode(writer_t *writer, const char *path, const AVFrame *frame) {
    int code = avcodec_send_frame(writer->encoder, frame);
    if (code < 0) return fail(path, "encoding", code);
    for (;;) {
        code = avcodec_receive_packet(writer->encoder, writer->packet);
        if (code == AVERROR_EOF) return write_held(writer, path, writer->last_duration);
        if (code == AVERROR(EAGAIN)) return 0;
        if (code < 0) return fail(path, "encoding", code);
        if (writer->held->data &&
            write_held(writer, path, writer->packet->pts - writer->held->pts) != 0)
            return 1;
        av_packet_move_ref(writer->held, writer->packet);
    }
}

static int close_writer(writer_t *writer, const char *path, int failed) {
    if (!failed) failed = encode(writer, path, NULL);
    if (!failed && av_write_trailer(writer->format) < 0) failed = fail(path, "trailer", 0);
    if (writer->format && writer->format->pb) avio_closep(&writer->format->pb);
    avformat_free_context(writer->format);
    avcodec_free_context(&writer->encoder);
    av_packet_free(&writer->packet);
    av_packet_free(&writer->held);
    return failed;
}

int test_video_write(const test_video_spec_t *spec) {
    writer_t writer;
    int failed = open_writer(&writer, spec->path, spec->encoder);
    AVFrame *frame = av_frame_alloc();
    if (!failed && frame) {
        AVCodecContext *encoder = writer.encoder;
        encoder->width = spec->width;
        encoder->height = spec->height;
        encoder->pix_fmt = (enum AVPixelFormat)spec->pixel_format;
        encoder->time_base = (AVRational){1, spec->time_base};
        if (!spec->pts) encoder->framerate = (AVRational){spec->time_base, 1};
        encoder->gop_size = 12;
        encoder->bit_rate = 2000000;
        failed = start_writer(&writer, spec->path, spec->display_clockwise);
        frame->format = spec->pixel_format;
        frame->width = spec->width;
        frame->height = spec->height;
        if (!failed && av_frame_get_buffer(frame, 0) < 0) failed = fail(spec->path, "frame", 0);
    }
    for (int i = 0; !failed && i < spec->frames; i++) {
        if (av_frame_make_writable(frame) < 0) failed = fail(spec->path, "frame", 0);
        if (failed) break;
        spec->draw(spec->context, i, frame);
        frame->pts = spec->pts ? spec->pts[i] : i;
        failed = encode(&writer, spec->path, frame);
    }
    failed |= !frame;
    av_frame_free(&frame);
    return close_writer(&writer, spec->path, failed);
}

int test_audio_write(const char *path, const char *encoder_name, double seconds) {
    writer_t writer;
    int failed = open_writer(&writer, path, encoder_name);
    AVFrame *frame = av_frame_alloc();
    if (!failed && frame) {
        AVCodecContext *encoder = writer.encoder;
        const enum AVSampleFormat *formats = encoder->codec->sample_fmts;
        encoder->sample_fmt = formats ? formats[0] : AV_SAMPLE_FMT_S16;
        encoder->sample_rate = 44100;
        av_channel_layout_default(&encoder->ch_layout, 1);
        encoder->time_base = (AVRational){1, encoder->sample_rate};
        encoder->bit_rate = 64000;
        failed = start_writer(&writer, path, 0);
        frame->format = encoder->sample_fmt;
        frame->nb_samples = encoder->frame_size > 0 ? encoder->frame_size : 1024;
        frame->sample_rate = encoder->sample_rate;
        if (!failed) failed = av_channel_layout_copy(&frame->ch_layout, &encoder->ch_layout) < 0;
        if (!failed && av_frame_get_buffer(frame, 0) < 0) failed = fail(path, "frame", 0);
    }
    int64_t total = (int64_t)(seconds * 44100), done = 0;
    while (!failed && done < total) {
        if (av_frame_make_writable(frame) < 0) {
            failed = fail(path, "frame", 0);
            break;
        }
        for (int s = 0; s < frame->nb_samples; s++) {
            double value = 0.3 * sin(2 * M_PI * 440.0 * (double)(done + s) / 44100.0);
            if (frame->format == AV_SAMPLE_FMT_FLTP || frame->format == AV_SAMPLE_FMT_FLT)
                ((float *)frame->data[0])[s] = (float)value;
            else
                ((int16_t *)frame->data[0])[s] = (int16_t)(value * 32767);
        }
        frame->pts = done;
        done += frame->nb_samples;
        failed = encode(&writer, path, frame);
    }
    failed |= !frame;
    av_frame_free(&frame);
    return close_writer(&writer, path, failed);
}

int test_jpeg_write(const char *path, int width, int height, int input_space, int stored,
                    int quality, void (*fill)(void *context, int y, unsigned char *row),
                    void *context) {
    FILE *file = fopen(path, "wb");
    if (!file) {
        fprintf(stderr, "%s: cannot create\n", path);
        return 1;
    }
    struct jpeg_compress_struct info;
    struct jpeg_error_mgr errors;
    info.err = jpeg_std_error(&errors);
    jpeg_create_compress(&info);
    jpeg_stdio_dest(&info, file);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.in_color_space = (J_COLOR_SPACE)input_space;
    info.input_components = input_space == JCS_GRAYSCALE ? 1 : input_space == JCS_CMYK ? 4 : 3;
    jpeg_set_defaults(&info);
    jpeg_set_colorspace(&info, (J_COLOR_SPACE)stored);
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    unsigned char *row = malloc((size_t)width * (size_t)info.input_components);
    for (int y = 0; y < height; y++) {
        fill(context, y, row);
        JSAMPROW rows[1] = {row};
        jpeg_write_scanlines(&info, rows, 1);
    }
    jpeg_finish_compress(&info);
    jpeg_destroy_compress(&info);
    free(row);
    return fclose(file) != 0;
}
