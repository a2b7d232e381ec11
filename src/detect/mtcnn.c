/* OpenFace's MTCNN: image pyramid + PNet proposals, RNet and ONet refinement, NMS on rounded
 * integer rectangles, and OpenFace's final box correction. Every float and double operation
 * follows FaceDetectorMTCNN.cpp so that boxes come out as OpenFace computes them. */
#include "detect/mtcnn.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "detect/resize.h"
#include "model/reader.h"

/* A box with its score and the regression (dx1, dy1, dx2, dy2) that corrects it. */
typedef struct proposal {
    float x, y, width, height;
    float score;
    float correction[4];
} proposal_t;

typedef struct ranked {
    float score;
    int index;
} ranked_t;

enum {
    BUFFER_RESIZED,     /* a pyramid level or a crop resized to the network input */
    BUFFER_PLANES,      /* normalised planar RGB network input */
    BUFFER_CANVAS,      /* a crop with its zero border */
    BUFFER_SCRATCH,     /* resize scratch */
    BUFFER_PROPOSALS,   /* all proposals, then the survivors */
    BUFFER_TEMP,        /* proposals of one scale, NMS output */
    BUFFER_RANK,        /* NMS order and flags */
};

static const double PYRAMID_FACTOR = 0.709;
static const int FACE_SUPPORT = 12;

void fa_mtcnn_default_settings(fa_mtcnn_settings_t *settings)
{
    settings->min_face = 60;
    settings->thresholds[0] = 0.6f;
    settings->thresholds[1] = 0.7f;
    settings->thresholds[2] = 0.7f;
    settings->kernels = FA_CNN_KERNELS_AUTO;
}

/* ------------------------------------------------------------------------------------------ */
/* Model */

fa_status fa_mtcnn_load(fa_mtcnn_t *mtcnn, const char *detector_path, fa_error_t *error)
{
    memset(mtcnn, 0, sizeof(*mtcnn));
    char *text = NULL;
    size_t size = 0;
    fa_status status = fa_file_read_all(detector_path, &text, &size, error);
    if (status != FA_OK) return status;
    char directory[4096];
    fa_path_directory(directory, sizeof(directory), detector_path);
    fa_reader_t reader;
    fa_reader_init(&reader, text, size, detector_path);
    for (;;) {
        char module[64], name[1024], path[4096];
        status = fa_read_token(&reader, module, sizeof(module), error);
        if (status == FA_ERROR_END) {
            status = FA_OK;
            break;
        }
        if (status == FA_OK) status = fa_read_token(&reader, name, sizeof(name), error);
        if (status == FA_ERROR_END)
            status = fa_error_set(error, FA_ERROR_MODEL, "%s: no file given for %s", detector_path,
                                  module);
        if (status == FA_OK) status = fa_path_join(path, sizeof(path), directory, name, error);
        if (status != FA_OK) break;
        fa_cnn_t *net = strcmp(module, "PNet") == 0   ? &mtcnn->pnet
                        : strcmp(module, "RNet") == 0 ? &mtcnn->rnet
                        : strcmp(module, "ONet") == 0 ? &mtcnn->onet
                                                      : NULL;
        if (!net) continue; /* OpenFace ignores unknown modules */
        fa_cnn_release(net);
        status = fa_cnn_load(net, path, error);
        if (status != FA_OK) break;
    }
    free(text);
    if (status == FA_OK &&
        (!mtcnn->pnet.layer_count || !mtcnn->rnet.layer_count || !mtcnn->onet.layer_count))
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: PNet, RNet and ONet are not all given",
                              detector_path);
    if (status != FA_OK) fa_mtcnn_release(mtcnn);
    return status;
}

void fa_mtcnn_release(fa_mtcnn_t *mtcnn)
{
    if (!mtcnn) return;
    fa_cnn_release(&mtcnn->pnet);
    fa_cnn_release(&mtcnn->rnet);
    fa_cnn_release(&mtcnn->onet);
}

void fa_mtcnn_workspace_release(fa_mtcnn_workspace_t *workspace)
{
    fa_cnn_workspace_release(&workspace->cnn);
    for (int i = 0; i < 8; i++)
        free(workspace->buffers[i]);
    memset(workspace, 0, sizeof(*workspace));
}

static void *buffer(fa_mtcnn_workspace_t *workspace, int which, size_t bytes, fa_error_t *error)
{
    if (bytes > workspace->capacities[which]) {
        /* Growth by half again only for a buffer that grows: the first frame's size is often
         * the last, and the zeroing below makes every byte resident (a 48-megapixel photo's
         * float image is 576 MB). */
        size_t grown = workspace->capacities[which] ? bytes + bytes / 2 : bytes;
        void *data = realloc(workspace->buffers[which], grown);
        if (!data) {
            fa_error_set(error, FA_ERROR_NO_MEMORY, "MTCNN workspace: out of memory");
            return NULL;
        }
        /* Only the new part: a growing proposal list keeps its contents. */
        memset((char *)data + workspace->capacities[which], 0,
               grown - workspace->capacities[which]);
        workspace->buffers[which] = data;
        workspace->capacities[which] = grown;
    }
    return workspace->buffers[which];
}

/* ------------------------------------------------------------------------------------------ */
/* Boxes */

/* cv::Rect from cv::Rect_<float>: each field rounded to nearest, ties to even. */
typedef struct int_rect {
    int x, y, width, height;
} int_rect_t;

static int round_to_int(float v)
{
    if (!(v > (float)INT_MIN && v < (float)INT_MAX)) return v > 0 ? INT_MAX : INT_MIN;
    return (int)lrintf(v);
}

static int truncate_to_int(double v)
{
    if (!(v > (double)INT_MIN && v < (double)INT_MAX)) return v > 0 ? INT_MAX : INT_MIN;
    return (int)v;
}

static int_rect_t to_int_rect(const proposal_t *p)
{
    int_rect_t r = {round_to_int(p->x), round_to_int(p->y), round_to_int(p->width),
                    round_to_int(p->height)};
    return r;
}

static long long rect_area(int_rect_t r)
{
    return (long long)r.width * r.height;
}

static long long intersection_area(int_rect_t a, int_rect_t b)
{
    if (a.width <= 0 || a.height <= 0 || b.width <= 0 || b.height <= 0) return 0;
    long long x0 = a.x > b.x ? a.x : b.x, y0 = a.y > b.y ? a.y : b.y;
    long long x1 = (long long)a.x + a.width < (long long)b.x + b.width ? (long long)a.x + a.width
                                                                       : (long long)b.x + b.width;
    long long y1 = (long long)a.y + a.height < (long long)b.y + b.height
                       ? (long long)a.y + a.height
                       : (long long)b.y + b.height;
    if (x1 <= x0 || y1 <= y0) return 0;
    return (x1 - x0) * (y1 - y0);
}

static int compare_ranked(const void *a, const void *b)
{
    const ranked_t *p = a, *q = b;
    if (p->score != q->score) return p->score < q->score ? -1 : 1;
    return p->index - q->index;
}

/* OpenFace's NMS: a multimap keyed by score (ties in insertion order); repeatedly keep the last
 * entry and erase every remaining one overlapping it by more than threshold, the overlap being
 * measured on the boxes rounded to integer rectangles. Writes kept indices, best first. */
static int suppress(const proposal_t *boxes, int count, float threshold, int minimum,
                    ranked_t *order, int *kept)
{
    for (int i = 0; i < count; i++)
        order[i].score = boxes[i].score, order[i].index = i;
    qsort(order, (size_t)count, sizeof(ranked_t), compare_ranked);
    int remaining = count, kept_count = 0;
    while (remaining > 0) {
        int current = order[--remaining].index;
        kept[kept_count++] = current;
        int_rect_t r1 = to_int_rect(&boxes[current]);
        int write = 0;
        for (int i = 0; i < remaining; i++) {
            int_rect_t r2 = to_int_rect(&boxes[order[i].index]);
            float inter = (float)intersection_area(r1, r2);
            float denominator;
            if (minimum) {
                long long a1 = rect_area(r1), a2 = rect_area(r2);
                denominator = (float)(a1 < a2 ? a1 : a2);
            } else {
                denominator = (float)(rect_area(r1) + rect_area(r2)) - inter;
            }
            int remove;
            if (denominator == 0.0f)
                remove = inter > 0.0f; /* inf > threshold; 0/0 is NaN, never above */
            else
                remove = inter / denominator > threshold;
            if (!remove) order[write++] = order[i];
        }
        remaining = write;
    }
    return kept_count;
}

static int keep_subset(proposal_t *boxes, const int *kept, int count, proposal_t *temp)
{
    for (int i = 0; i < count; i++)
        temp[i] = boxes[kept[i]];
    memcpy(boxes, temp, sizeof(proposal_t) * (size_t)count);
    return count;
}

static void apply_correction(proposal_t *boxes, int count, int add1)
{
    for (int i = 0; i < count; i++) {
        proposal_t *b = &boxes[i];
        int_rect_t r = to_int_rect(b);
        if (add1) r.width++, r.height++;
        float w = (float)r.width, h = (float)r.height;
        float min_x = (float)r.x + b->correction[0] * w;
        float min_y = (float)r.y + b->correction[1] * h;
        float max_x = (float)(r.x + r.width) + w * b->correction[2];
        float max_y = (float)(r.y + r.height) + h * b->correction[3];
        b->x = min_x, b->y = min_y, b->width = max_x - min_x, b->height = max_y - min_y;
    }
}

/* Squares, with the start and side truncated to integers. */
static void rectify(proposal_t *boxes, int count)
{
    for (int i = 0; i < count; i++) {
        proposal_t *b = &boxes[i];
        float side = b->width < b->height ? b->height : b->width;
        float x = (float)((double)b->x + 0.5 * (double)(b->width - side));
        float y = (float)((double)b->y + 0.5 * (double)(b->height - side));
        b->x = (float)truncate_to_int(x);
        b->y = (float)truncate_to_int(y);
        b->width = b->height = (float)truncate_to_int(side);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Network inputs */

/* Normalises interleaved BGR floats ((v - 127.5) / 128, which OpenCV evaluates exactly as
 * v * 2^-7 - 0.99609375) into planes in R, G, B order. */
static void to_planes(const float *bgr, int width, int height, float *planes)
{
    size_t plane = (size_t)width * (size_t)height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++)
            planes[(size_t)(2 - c) * plane + i] = (bgr[3 * i + (size_t)c] - 127.5f) * 0.0078125f;
}

static float face_probability(float out0, float out1)
{
    return (float)(1.0 / (1.0 + (double)expf(out0 - out1)));
}

/* Runs PNet on one pyramid level and appends the proposals above threshold, scanning columns
 * outer and rows inner as OpenFace does. */
static fa_status pnet_scale(const fa_mtcnn_t *mtcnn, fa_mtcnn_workspace_t *workspace,
                            const fa_mtcnn_settings_t *settings, const fa_image_t *image,
                            double scale, proposal_t **proposals, int *count, fa_error_t *error)
{
    const int width = image->width, height = image->height;
    int scaled_h = (int)ceil(height * scale), scaled_w = (int)ceil(width * scale);
    if (scaled_h < FACE_SUPPORT || scaled_w < FACE_SUPPORT) return FA_OK;
    size_t pixels = (size_t)scaled_w * (size_t)scaled_h;
    float *resized = buffer(workspace, BUFFER_RESIZED, pixels * 3 * sizeof(float), error);
    float *planes =
        buffer(workspace, BUFFER_PLANES, (pixels * 3 + FA_CNN_PADDING) * sizeof(float), error);
    void *scratch = buffer(workspace, BUFFER_SCRATCH,
                           fa_resize_bytes_scratch_size(width, scaled_w, scaled_h), error);
    if (!resized || !planes || !scratch) return FA_ERROR_NO_MEMORY;
    fa_resize_linear_bytes(image->data, width, height, (size_t)image->stride, image->channels,
                           resized, scaled_w, scaled_h, scratch);
    to_planes(resized, scaled_w, scaled_h, planes);
    fa_tensor_t input = {3, scaled_h, scaled_w, planes}, output;
    fa_status status =
        fa_cnn_forward(&mtcnn->pnet, &workspace->cnn, &input, settings->kernels, &output, error);
    if (status != FA_OK) return status;
    if (output.channels < 6)
        return fa_error_set(error, FA_ERROR_MODEL, "PNet gives %d maps, not 6", output.channels);
    const int map_w = output.width, map_h = output.height;
    const size_t plane = (size_t)map_w * (size_t)map_h;
    const float *o = output.data;
    const float scale_f = (float)scale;
    int found = 0;
    for (int x = 0; x < map_w; x++)
        for (int y = 0; y < map_h; y++) {
            size_t i = (size_t)y * (size_t)map_w + (size_t)x;
            float e = expf(o[i] - o[plane + i]);
            if (1.0f / (1.0f + e) >= settings->thresholds[0]) found++;
        }
    proposal_t *grown = buffer(workspace, BUFFER_PROPOSALS,
                               sizeof(proposal_t) * (size_t)(*count + found + 1), error);
    if (!grown) return FA_ERROR_NO_MEMORY;
    *proposals = grown;
    for (int x = 0; x < map_w; x++) {
        for (int y = 0; y < map_h; y++) {
            size_t i = (size_t)y * (size_t)map_w + (size_t)x;
            float p = 1.0f / (1.0f + expf(o[i] - o[plane + i]));
            if (!(p >= settings->thresholds[0])) continue;
            proposal_t *b = &grown[(*count)++];
            float min_x = (float)truncate_to_int((float)(2 * x + 1) / scale_f);
            float max_x = (float)truncate_to_int((float)(2 * x + FACE_SUPPORT) / scale_f);
            float min_y = (float)truncate_to_int((float)(2 * y + 1) / scale_f);
            float max_y = (float)truncate_to_int((float)(2 * y + FACE_SUPPORT) / scale_f);
            b->x = min_x, b->y = min_y, b->width = max_x - min_x, b->height = max_y - min_y;
            b->score = p;
            for (int k = 0; k < 4; k++)
                b->correction[k] = o[(size_t)(2 + k) * plane + i];
        }
    }
    return FA_OK;
}

/* count pixels of row y from column x as BGR floats (a gray frame's value replicated), as
 * OpenFace's float copy of the frame holds them. */
static void copy_as_floats(const fa_image_t *image, int x, int y, int count, float *out)
{
    const uint8_t *row = image->data + (ptrdiff_t)y * image->stride;
    for (int i = 0; i < count; i++)
        for (int c = 0; c < 3; c++)
            out[3 * i + c] = (float)row[image->channels == 1 ? x + i : 3 * (x + i) + c];
}

/* Cuts box (x, y, side) plus one pixel with a zero border where it leaves the image, resizes it
 * to size x size and runs the network; returns the probability and the regression. */
static fa_status refine(const fa_cnn_t *net, fa_mtcnn_workspace_t *workspace,
                        const fa_mtcnn_settings_t *settings, const fa_image_t *image,
                        proposal_t *box, int size, fa_error_t *error)
{
    const int width = image->width, height = image->height;
    const float target_w = box->width + 1.0f, target_h = box->height + 1.0f;
    const int canvas_w = truncate_to_int(target_w), canvas_h = truncate_to_int(target_h);
    if (canvas_w < 1 || canvas_h < 1 || (size_t)canvas_w * (size_t)canvas_h > ((size_t)1 << 28))
        return fa_error_set(error, FA_ERROR_INTERNAL, "MTCNN: degenerate box %gx%g", box->width,
                            box->height);
    float *canvas = buffer(workspace, BUFFER_CANVAS,
                           (size_t)canvas_w * (size_t)canvas_h * 3 * sizeof(float), error);
    float *resized =
        buffer(workspace, BUFFER_RESIZED, (size_t)(size * size * 3) * sizeof(float), error);
    float *planes = buffer(workspace, BUFFER_PLANES,
                           ((size_t)(size * size * 3) + FA_CNN_PADDING) * sizeof(float), error);
    void *scratch = buffer(workspace, BUFFER_SCRATCH, fa_resize_scratch_size(size, size, 3), error);
    if (!canvas || !resized || !planes || !scratch) return FA_ERROR_NO_MEMORY;
    memset(canvas, 0, (size_t)canvas_w * (size_t)canvas_h * 3 * sizeof(float));

    int start_x_in = truncate_to_int(box->x - 1.0f), start_y_in = truncate_to_int(box->y - 1.0f);
    if (start_x_in < 0) start_x_in = 0;
    if (start_y_in < 0) start_y_in = 0;
    int end_x_in = truncate_to_int(box->x + target_w - 1.0f);
    int end_y_in = truncate_to_int(box->y + target_h - 1.0f);
    if (end_x_in > width) end_x_in = width;
    if (end_y_in > height) end_y_in = height;
    int start_x_out = truncate_to_int(-box->x + 1.0f),
        start_y_out = truncate_to_int(-box->y + 1.0f);
    if (start_x_out < 0) start_x_out = 0;
    if (start_y_out < 0) start_y_out = 0;
    float end_x = target_w - (box->x + box->width - (float)width);
    float end_y = target_h - (box->y + box->height - (float)height);
    int end_x_out = truncate_to_int(end_x < target_w ? end_x : target_w);
    int end_y_out = truncate_to_int(end_y < target_h ? end_y : target_h);
    int copy_w = end_x_in - start_x_in, copy_h = end_y_in - start_y_in;
    /* OpenCV's copyTo into a region of another size leaves the canvas untouched. */
    if (copy_w > 0 && copy_h > 0 && copy_w == end_x_out - start_x_out &&
        copy_h == end_y_out - start_y_out && end_x_out <= canvas_w && end_y_out <= canvas_h) {
        for (int y = 0; y < copy_h; y++)
            copy_as_floats(image, start_x_in, start_y_in + y, copy_w,
                           canvas + ((size_t)(start_y_out + y) * (size_t)canvas_w +
                                     (size_t)start_x_out) * 3);
    }
    fa_resize_linear(canvas, canvas_w, canvas_h, (size_t)canvas_w * 3, 3, resized, size, size,
                     scratch);
    to_planes(resized, size, size, planes);
    fa_tensor_t input = {3, size, size, planes}, output;
    fa_status status =
        fa_cnn_forward(net, &workspace->cnn, &input, settings->kernels, &output, error);
    if (status != FA_OK) return status;
    if ((size_t)output.channels * (size_t)output.height * (size_t)output.width < 6)
        return fa_error_set(error, FA_ERROR_MODEL, "MTCNN: a refinement network gives < 6 outputs");
    box->score = face_probability(output.data[0], output.data[1]);
    for (int k = 0; k < 4; k++)
        box->correction[k] = output.data[2 + k];
    return FA_OK;
}

/* Runs a refinement stage over all boxes and keeps those at or above threshold, in order. */
static fa_status refine_all(const fa_cnn_t *net, fa_mtcnn_workspace_t *workspace,
                            const fa_mtcnn_settings_t *settings, const fa_image_t *image,
                            proposal_t *boxes, int *count, int size, float threshold,
                            fa_error_t *error)
{
    int kept = 0;
    for (int i = 0; i < *count; i++) {
        proposal_t box = boxes[i];
        fa_status status = refine(net, workspace, settings, image, &box, size, error);
        if (status != FA_OK) return status;
        if (box.score >= threshold) boxes[kept++] = box;
    }
    *count = kept;
    return FA_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Detection */

static fa_status nms_step(fa_mtcnn_workspace_t *workspace, proposal_t *boxes, int *count,
                          float threshold, int minimum, fa_error_t *error)
{
    if (*count == 0) return FA_OK;
    ranked_t *order =
        buffer(workspace, BUFFER_RANK, ((size_t)*count) * (sizeof(ranked_t) + sizeof(int)), error);
    proposal_t *temp = buffer(workspace, BUFFER_TEMP, sizeof(proposal_t) * (size_t)*count, error);
    if (!order || !temp) return FA_ERROR_NO_MEMORY;
    int *kept = (int *)(order + *count);
    int n = suppress(boxes, *count, threshold, minimum, order, kept);
    *count = keep_subset(boxes, kept, n, temp);
    return FA_OK;
}

fa_status fa_mtcnn_detect(const fa_mtcnn_t *mtcnn, fa_mtcnn_workspace_t *workspace,
                          const fa_mtcnn_settings_t *settings, const fa_image_t *image,
                          fa_box_t *boxes, int max_boxes, int *count, fa_error_t *error)
{
    fa_mtcnn_settings_t defaults;
    if (!settings) {
        fa_mtcnn_default_settings(&defaults);
        settings = &defaults;
    }
    *count = 0;
    if (!image || !image->data || image->width < 1 || image->height < 1 ||
        (image->channels != 1 && image->channels != 3) || settings->min_face < 1)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "MTCNN: not an 8-bit gray or BGR image");
    const int width = image->width, height = image->height;
    const int min_dim = width < height ? width : height;
    const int scales =
        (int)floor(log((double)settings->min_face / (double)min_dim) / log(PYRAMID_FACTOR)) + 1;
    proposal_t *all = buffer(workspace, BUFFER_PROPOSALS, sizeof(proposal_t), error);
    if (!all) return FA_ERROR_NO_MEMORY;
    int total = 0;
    for (int i = 0; i < scales; i++) {
        double scale = ((double)FACE_SUPPORT / (double)settings->min_face) * pow(PYRAMID_FACTOR, i);
        int first = total;
        fa_status status = pnet_scale(mtcnn, workspace, settings, image, scale, &all, &total, error);
        if (status != FA_OK) return status;
        int scale_count = total - first;
        status = nms_step(workspace, all + first, &scale_count, 0.5f, 0, error);
        if (status != FA_OK) return status;
        total = first + scale_count;
    }
    fa_status status = nms_step(workspace, all, &total, 0.7f, 0, error);
    if (status != FA_OK) return status;
    apply_correction(all, total, 0);
    rectify(all, total);

    status = refine_all(&mtcnn->rnet, workspace, settings, image, all, &total, 24,
                        settings->thresholds[1], error);
    if (status == FA_OK) status = nms_step(workspace, all, &total, 0.7f, 0, error);
    if (status != FA_OK) return status;
    apply_correction(all, total, 0);
    rectify(all, total);

    status = refine_all(&mtcnn->onet, workspace, settings, image, all, &total, 48,
                        settings->thresholds[2], error);
    if (status != FA_OK) return status;
    apply_correction(all, total, 1);
    status = nms_step(workspace, all, &total, 0.7f, 1, error);
    if (status != FA_OK) return status;

    /* OpenFace's correction from MTCNN's box to the eyebrow-to-chin box CLNF expects. */
    for (int k = 0; k < total && k < max_boxes; k++) {
        const proposal_t *b = &all[k];
        fa_box_t *o = &boxes[k];
        o->x = (float)((double)b->width * -0.0075 + (double)b->x);
        o->y = (float)((double)b->height * 0.2459 + (double)b->y);
        o->width = (float)(1.0323 * (double)b->width);
        o->height = (float)(0.7751 * (double)b->height);
        o->confidence = b->score;
    }
    *count = total;
    return FA_OK;
}

int fa_mtcnn_choose_widest(const fa_box_t *boxes, int count)
{
    if (count <= 0) return -1;
    int best = 0;
    for (int i = 1; i < count; i++)
        if (boxes[i].width > boxes[best].width) best = i;
    return best;
}
