/* Frame sources: video through FFmpeg's libraries, converted to BGR the way OpenCV 4.6's FFmpeg
 * backend does (sws_scale, SWS_BICUBIC, same size), so frames match what OpenFace saw; single
 * images; folders of images in name order. */
#include <dirent.h>
#include <math.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "core/error.h"
#include "core/file.h"
#include "core/image.h"
#include "io/image_file.h"

typedef struct video_state {
    AVFormatContext *format;
    AVCodecContext *decoder;
    AVPacket *packet;
    AVFrame *decoded;
    struct SwsContext *scaler;
    int stream_index;
    int draining, finished;
    double fps;
    int orientation;  /* EXIF-style (1, 3, 6, 8) from the stream's display matrix */
    fa_image_t upright; /* the decoded frame before it is turned, when orientation != 1 */
    int stream_timestamps; /* 1: the stream's presentation times instead of OpenFace's */
    AVRational time_base;
    int64_t first_pts, frame_pts; /* AV_NOPTS_VALUE until known */
    double stream_time;           /* the last frame's stream time, seconds from the first */
} video_state_t;

struct fa_source {
    fa_source_kind kind;
    char path[4096];
    fa_image_t frame;
    long frames_read;
    video_state_t video;
    char **files; /* image folder: sorted names */
    int file_count;
};

static fa_status av_failure(fa_error_t *error, const char *path, const char *what, int code)
{
    char reason[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(code, reason, sizeof reason);
    return fa_error_set(error, FA_ERROR_INPUT, "%s: %s: %s", path, what, reason);
}

/* The turn players apply from the display matrix (phones record sideways and tag the stream):
 * as ffmpeg's autorotate, the matrix's counter-clockwise angle rounded to a quarter turn. */
static int display_orientation(const AVStream *stream)
{
    const int32_t *matrix = NULL;
#if LIBAVFORMAT_VERSION_MAJOR >= 61
    const AVPacketSideData *side = av_packet_side_data_get(
        stream->codecpar->coded_side_data, stream->codecpar->nb_coded_side_data,
        AV_PKT_DATA_DISPLAYMATRIX);
    if (side && side->size >= 9 * sizeof(int32_t)) matrix = (const int32_t *)side->data;
#else
    size_t size = 0;
    const uint8_t *data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (data && size >= 9 * sizeof(int32_t)) matrix = (const int32_t *)data;
#endif
    if (!matrix) return 1;
    double angle = -av_display_rotation_get(matrix); /* clockwise degrees to display */
    if (angle != angle) return 1;                   /* NaN: a degenerate matrix */
    long quarter = lround(angle / 90.0) % 4;
    if (quarter < 0) quarter += 4;
    static const int orientations[4] = {1, 6, 3, 8};
    return orientations[quarter];
}

/* The frame rate OpenFace works with: OpenCV 4.6's CAP_PROP_FPS (the stream's average frame
 * rate, else FFmpeg's guess, else the time base's), and 30 when that is not a positive number,
 * as OpenFace's SequenceCapture assumes. On variable frame rate recordings the average differs
 * from FFmpeg's guess, which follows the shortest frame interval. */
static double opencv_fps(AVFormatContext *format, AVStream *stream)
{
    const double eps_zero = 0.000025; /* OpenCV's threshold */
    double fps = av_q2d(stream->avg_frame_rate);
    if (!(fps >= eps_zero)) fps = av_q2d(av_guess_frame_rate(format, stream, NULL));
    if (!(fps >= eps_zero) && stream->time_base.num > 0)
        fps = 1.0 / av_q2d(stream->time_base);
    return fps > 0 && isfinite(fps) ? fps : 30.0;
}

static fa_status open_video(fa_source_t *source, fa_error_t *error)
{
    video_state_t *video = &source->video;
    const char *path = source->path;
    av_log_set_level(AV_LOG_QUIET); /* the library never prints */
    int code = avformat_open_input(&video->format, path, NULL, NULL);
    if (code < 0) {
        if (code == AVERROR(ENOENT) || code == AVERROR(EACCES))
            return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(AVUNERROR(code)));
        return av_failure(error, path, "cannot open as a video", code);
    }
    code = avformat_find_stream_info(video->format, NULL);
    if (code < 0) return av_failure(error, path, "cannot read stream information", code);
    const AVCodec *codec = NULL;
    video->stream_index = av_find_best_stream(video->format, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (video->stream_index == AVERROR_STREAM_NOT_FOUND)
        return fa_error_set(error, FA_ERROR_INPUT, "%s: no video stream (%u audio or other)",
                            path, video->format->nb_streams);
    if (video->stream_index < 0 || !codec)
        return fa_error_set(error, FA_ERROR_INPUT, "%s: no decoder for its video stream", path);
    AVStream *stream = video->format->streams[video->stream_index];
    video->decoder = avcodec_alloc_context3(codec);
    video->packet = av_packet_alloc();
    video->decoded = av_frame_alloc();
    if (!video->decoder || !video->packet || !video->decoded)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    code = avcodec_parameters_to_context(video->decoder, stream->codecpar);
    if (code >= 0) code = avcodec_open2(video->decoder, codec, NULL);
    if (code < 0) return av_failure(error, path, "cannot open the decoder", code);
    video->orientation = display_orientation(stream);
    video->fps = opencv_fps(video->format, stream);
    video->time_base = stream->time_base;
    video->first_pts = video->frame_pts = AV_NOPTS_VALUE;
    return FA_OK;
}

static void close_video(video_state_t *video)
{
    sws_freeContext(video->scaler);
    av_frame_free(&video->decoded);
    av_packet_free(&video->packet);
    fa_image_release(&video->upright);
    avcodec_free_context(&video->decoder);
    avformat_close_input(&video->format);
}

/* (Re)allocates image to width x height BGR when its size differs. */
static fa_status ensure_size(fa_image_t *image, int width, int height, fa_error_t *error)
{
    if (image->data && image->width == width && image->height == height) return FA_OK;
    fa_image_release(image);
    return fa_image_allocate(image, width, height, 3, error);
}

/* Converts the decoded frame into out (BGR), turned upright when the stream says so. */
static fa_status convert_frame(fa_source_t *source, fa_image_t *out, fa_error_t *error)
{
    video_state_t *video = &source->video;
    AVFrame *decoded = video->decoded;
    if (decoded->width <= 0 || decoded->height <= 0)
        return fa_error_set(error, FA_ERROR_INPUT, "%s: frame without size", source->path);
    int turned = video->orientation != 1, swap = fa_orientation_swaps_sides(video->orientation);
    fa_image_t *target = turned ? &video->upright : out;
    fa_status status = ensure_size(target, decoded->width, decoded->height, error);
    if (status == FA_OK && turned)
        status = ensure_size(out, swap ? decoded->height : decoded->width,
                             swap ? decoded->width : decoded->height, error);
    if (status != FA_OK) return status;
    video->scaler = sws_getCachedContext(video->scaler, decoded->width, decoded->height,
                                         (enum AVPixelFormat)decoded->format, decoded->width,
                                         decoded->height, AV_PIX_FMT_BGR24, SWS_BICUBIC, NULL,
                                         NULL, NULL);
    if (!video->scaler)
        return fa_error_set(error, FA_ERROR_INPUT, "%s: unsupported pixel format %d",
                            source->path, decoded->format);
    uint8_t *planes[4] = {target->data, NULL, NULL, NULL};
    int strides[4] = {(int)target->stride, 0, 0, 0};
    sws_scale(video->scaler, (const uint8_t *const *)decoded->data, decoded->linesize, 0,
              decoded->height, planes, strides);
    if (turned) fa_image_orient(target, video->orientation, out);
    return FA_OK;
}

static fa_status read_video_frame(fa_source_t *source, fa_image_t *out, fa_error_t *error)
{
    video_state_t *video = &source->video;
    for (;;) {
        if (video->finished) return FA_ERROR_END;
        int code = avcodec_receive_frame(video->decoder, video->decoded);
        if (code == 0) {
            video->frame_pts = video->decoded->best_effort_timestamp;
            fa_status status = convert_frame(source, out, error);
            av_frame_unref(video->decoded);
            return status;
        }
        if (code == AVERROR_EOF) {
            video->finished = 1;
            return FA_ERROR_END;
        }
        if (code != AVERROR(EAGAIN)) return av_failure(error, source->path, "decoding", code);
        if (video->draining) {
            video->finished = 1;
            return FA_ERROR_END;
        }
        code = av_read_frame(video->format, video->packet);
        if (code < 0) {
            /* End of file or a damaged tail: flush what the decoder holds, then stop. */
            video->draining = 1;
            avcodec_send_packet(video->decoder, NULL);
            continue;
        }
        if (video->packet->stream_index == video->stream_index) {
            code = avcodec_send_packet(video->decoder, video->packet);
            /* A corrupt packet is skipped as OpenCV does; the next one may decode. */
            (void)code;
        }
        av_packet_unref(video->packet);
    }
}

/* OpenFace's timestamp, frame number * (1 / fps), or the stream's own time from the first
 * frame; a frame without a time comes one frame interval after the previous one. */
static double video_timestamp(fa_source_t *source)
{
    video_state_t *video = &source->video;
    double openface = (double)source->frames_read * (1.0 / video->fps);
    if (!video->stream_timestamps) return openface;
    if (video->frame_pts == AV_NOPTS_VALUE || video->time_base.den <= 0) {
        video->stream_time = source->frames_read ? video->stream_time + 1.0 / video->fps : 0.0;
    } else {
        if (video->first_pts == AV_NOPTS_VALUE) video->first_pts = video->frame_pts;
        video->stream_time = (double)(video->frame_pts - video->first_pts) *
                             video->time_base.num / video->time_base.den;
    }
    return video->stream_time;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An entry of an image folder that belongs to the sequence: a file (or a link to one) with an
 * image extension (any case). Hidden files are left out: "._name.jpg" is the metadata a Mac
 * leaves beside name.jpg on foreign disks, not an image; so are folders named like images. */
static int is_sequence_image(const char *folder, const struct dirent *entry)
{
    if (entry->d_name[0] == '.' || !fa_image_file_is_supported(entry->d_name)) return 0;
    if (entry->d_type == DT_REG) return 1;
    if (entry->d_type != DT_UNKNOWN && entry->d_type != DT_LNK) return 0;
    char path[4096 + 256];
    struct stat info;
    snprintf(path, sizeof path, "%s/%s", folder, entry->d_name);
    return stat(path, &info) != 0 || S_ISREG(info.st_mode); /* unreadable: reported when read */
}

static fa_status open_directory(fa_source_t *source, fa_error_t *error)
{
    DIR *directory = opendir(source->path);
    if (!directory) return fa_error_set(error, FA_ERROR_IO, "%s: %s", source->path, strerror(errno));
    int capacity = 0;
    fa_status status = FA_OK;
    for (struct dirent *entry; (entry = readdir(directory));) {
        if (!is_sequence_image(source->path, entry)) continue;
        if (source->file_count == capacity) {
            capacity = capacity ? 2 * capacity : 64;
            char **grown = realloc(source->files, sizeof(char *) * (size_t)capacity);
            if (!grown) {
                status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
                break;
            }
            source->files = grown;
        }
        source->files[source->file_count] = strdup(entry->d_name);
        if (!source->files[source->file_count++]) {
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
            break;
        }
    }
    closedir(directory);
    if (status != FA_OK) return status;
    if (source->file_count == 0)
        return fa_error_set(error, FA_ERROR_INPUT, "%s: no images (.jpg, .png, .bmp) in folder",
                            source->path);
    qsort(source->files, (size_t)source->file_count, sizeof(char *), compare_names);
    return FA_OK;
}

fa_status fa_source_open(const char *path, fa_source_kind kind, fa_source_t **out,
                         fa_error_t *error)
{
    *out = NULL;
    if (!path) return fa_error_set(error, FA_ERROR_ARGUMENT, "no input path");
    fa_source_t *source = calloc(1, sizeof *source);
    if (!source) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    source->kind = kind;
    snprintf(source->path, sizeof source->path, "%s", path);
    struct stat info;
    fa_status status = FA_OK;
    if (stat(path, &info) != 0) {
        status = fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
    } else if (kind == FA_SOURCE_DIRECTORY) {
        status = S_ISDIR(info.st_mode) ? open_directory(source, error)
                                       : fa_error_set(error, FA_ERROR_INPUT,
                                                      "%s: not a folder", path);
    } else if (S_ISDIR(info.st_mode)) {
        status = fa_error_set(error, FA_ERROR_INPUT, "%s: is a folder (use -fdir)", path);
    } else if (kind == FA_SOURCE_VIDEO) {
        status = open_video(source, error);
    } else if (kind != FA_SOURCE_IMAGE) {
        status = fa_error_set(error, FA_ERROR_ARGUMENT, "unknown source kind %d", (int)kind);
    }
    if (status != FA_OK) {
        fa_source_close(source);
        return status;
    }
    *out = source;
    return FA_OK;
}

void fa_source_close(fa_source_t *source)
{
    if (!source) return;
    if (source->kind == FA_SOURCE_VIDEO) close_video(&source->video);
    for (int i = 0; i < source->file_count; i++) free(source->files[i]);
    free(source->files);
    fa_image_release(&source->frame);
    free(source);
}

fa_status fa_source_read_into(fa_source_t *source, fa_image_t *image, double *timestamp,
                              fa_error_t *error)
{
    fa_status status;
    if (source->kind == FA_SOURCE_VIDEO) {
        status = read_video_frame(source, image, error);
        if (status == FA_OK && timestamp) *timestamp = video_timestamp(source);
    } else {
        const char *path = source->path;
        char joined[4096 + 256];
        if (source->kind == FA_SOURCE_DIRECTORY) {
            if (source->frames_read >= source->file_count) return FA_ERROR_END;
            status = fa_path_join(joined, sizeof joined, source->path,
                                  source->files[source->frames_read], error);
            if (status != FA_OK) return status;
            path = joined;
        } else if (source->frames_read > 0) {
            return FA_ERROR_END;
        }
        status = fa_image_file_read(path, image, error);
        if (timestamp) *timestamp = 0.0; /* OpenFace writes 0 for image sequences */
    }
    if (status != FA_OK) return status;
    source->frames_read++;
    return FA_OK;
}

fa_status fa_source_read(fa_source_t *source, const fa_image_t **frame, double *timestamp,
                         fa_error_t *error)
{
    fa_status status = fa_source_read_into(source, &source->frame, timestamp, error);
    if (status == FA_OK) *frame = &source->frame;
    return status;
}

double fa_source_fps(const fa_source_t *source)
{
    return source->kind == FA_SOURCE_VIDEO ? source->video.fps : 0.0;
}

void fa_source_use_stream_timestamps(fa_source_t *source, int enabled)
{
    if (source->kind == FA_SOURCE_VIDEO) source->video.stream_timestamps = enabled != 0;
}
