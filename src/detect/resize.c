/* Bilinear resize as OpenCV 4.6 does it on float images (see resize.h). */
#include "detect/resize.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct taps {
    int offset;  /* first source pixel */
    float alpha; /* weight of the second; the first gets 1 - alpha */
} taps_t;

/* OpenCV's coefficient table for one axis: f = (float)((d + 0.5) * scale - 0.5) and its floor.
 * Horizontally, coordinates outside the source are clamped to the edge pixel with weights (1, 0);
 * vertically OpenCV keeps the weights and clamps only the rows it reads, so a border row is
 * edge * (1 - f) + edge * f, which need not equal the edge in float. */
static void compute_taps(int src_size, int dst_size, double scale, int clamp_weights, taps_t *taps)
{
    for (int d = 0; d < dst_size; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (clamp_weights) {
            if (s < 0) s = 0, f = 0.0f;
            if (s >= src_size - 1) s = src_size - 1, f = 0.0f;
        }
        taps[d].offset = s;
        taps[d].alpha = f;
    }
}

size_t fa_resize_scratch_size(int dst_width, int dst_height, int channels)
{
    return sizeof(taps_t) * (size_t)(dst_width + dst_height) +
           2 * sizeof(float) * (size_t)dst_width * (size_t)channels + 64;
}

static void resize_rows(const float *row, int src_width, int channels, const taps_t *x_taps,
                        int dst_width, float *out)
{
    for (int dx = 0; dx < dst_width; dx++) {
        const taps_t *t = &x_taps[dx];
        const float *p = row + (size_t)t->offset * (size_t)channels;
        float a0 = 1.0f - t->alpha, a1 = t->alpha;
        if (t->offset + 1 >= src_width) {
            for (int c = 0; c < channels; c++)
                out[dx * channels + c] = p[c] * a0;
        } else {
            for (int c = 0; c < channels; c++)
                out[dx * channels + c] = p[c] * a0 + p[c + channels] * a1;
        }
    }
}

/* Where the resize gets source rows: a float image, or 8-bit BGR/gray rows converted on demand
 * (exactly, as convertTo to float would) so that no float copy of a whole frame is needed. */
typedef struct row_source {
    const float *floats;
    const uint8_t *bytes;
    size_t stride; /* floats or bytes from one row to the next */
    int width, byte_channels;
    float *converted[2]; /* for 8-bit rows: one buffer per row parity */
} row_source_t;

static const float *source_row(const row_source_t *source, int y)
{
    if (source->floats) return source->floats + (size_t)y * source->stride;
    const uint8_t *row = source->bytes + (size_t)y * source->stride;
    float *out = source->converted[y & 1];
    if (source->byte_channels == 1) {
        for (int x = 0; x < source->width; x++)
            out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (float)row[x];
    } else {
        for (int x = 0; x < 3 * source->width; x++) out[x] = (float)row[x];
    }
    return out;
}

/* OpenCV's INTER_AREA fast path for an exact halving: the 2x2 block summed left to right, top
 * to bottom, times 0.25. */
static void halve(const row_source_t *source, int channels, float *dst, int dst_width,
                  int dst_height)
{
    for (int dy = 0; dy < dst_height; dy++) {
        const float *s0 = source_row(source, 2 * dy), *s1 = source_row(source, 2 * dy + 1);
        float *d = dst + (size_t)dy * (size_t)dst_width * (size_t)channels;
        for (int dx = 0; dx < dst_width; dx++)
            for (int c = 0; c < channels; c++) {
                size_t i = (size_t)(2 * dx * channels + c);
                float sum = s0[i] + s0[i + (size_t)channels] + s1[i] + s1[i + (size_t)channels];
                d[dx * channels + c] = sum * 0.25f;
            }
    }
}

static void resize(const row_source_t *source, int src_width, int src_height, int channels,
                   float *dst, int dst_width, int dst_height, void *scratch)
{
    double inv_scale_x = (double)dst_width / src_width,
           inv_scale_y = (double)dst_height / src_height;
    double scale_x = 1.0 / inv_scale_x, scale_y = 1.0 / inv_scale_y;
    int iscale_x = (int)lrint(scale_x), iscale_y = (int)lrint(scale_y);
    if (fabs(scale_x - iscale_x) < DBL_EPSILON && fabs(scale_y - iscale_y) < DBL_EPSILON &&
        iscale_x == 2 && iscale_y == 2) {
        halve(source, channels, dst, dst_width, dst_height);
        return;
    }
    taps_t *x_taps = scratch, *y_taps = x_taps + dst_width;
    float *rows[2];
    rows[0] = (float *)(y_taps + dst_height);
    rows[1] = rows[0] + (size_t)dst_width * (size_t)channels;
    int cached[2] = {-1, -1};
    compute_taps(src_width, dst_width, scale_x, 1, x_taps);
    compute_taps(src_height, dst_height, scale_y, 0, y_taps);
    size_t row_size = (size_t)dst_width * (size_t)channels;
    for (int dy = 0; dy < dst_height; dy++) {
        int s0 = y_taps[dy].offset, s1 = s0 + 1;
        s0 = s0 < 0 ? 0 : s0 >= src_height ? src_height - 1 : s0;
        s1 = s1 < 0 ? 0 : s1 >= src_height ? src_height - 1 : s1;
        float b0 = 1.0f - y_taps[dy].alpha, b1 = y_taps[dy].alpha;
        /* Two cached source rows, resized horizontally; moving down reuses one of them. */
        int slot0 = cached[0] == s0 ? 0 : cached[1] == s0 ? 1 : -1;
        if (slot0 < 0) {
            slot0 = cached[0] == s1 ? 1 : 0;
            resize_rows(source_row(source, s0), src_width, channels, x_taps, dst_width,
                        rows[slot0]);
            cached[slot0] = s0;
        }
        int slot1 = cached[0] == s1 ? 0 : cached[1] == s1 ? 1 : -1;
        if (slot1 < 0) {
            slot1 = 1 - slot0;
            resize_rows(source_row(source, s1), src_width, channels, x_taps, dst_width,
                        rows[slot1]);
            cached[slot1] = s1;
        }
        const float *h[2] = {rows[slot0], rows[slot1]};
        float *d = dst + (size_t)dy * row_size;
        for (size_t i = 0; i < row_size; i++)
            d[i] = h[0][i] * b0 + h[1][i] * b1;
    }
}

void fa_resize_linear(const float *src, int src_width, int src_height, size_t src_stride,
                      int channels, float *dst, int dst_width, int dst_height, void *scratch)
{
    row_source_t source = {.floats = src, .stride = src_stride, .width = src_width};
    resize(&source, src_width, src_height, channels, dst, dst_width, dst_height, scratch);
}

size_t fa_resize_bytes_scratch_size(int src_width, int dst_width, int dst_height)
{
    return fa_resize_scratch_size(dst_width, dst_height, 3) +
           2 * 3 * sizeof(float) * (size_t)src_width + 64;
}

void fa_resize_linear_bytes(const uint8_t *src, int src_width, int src_height, size_t src_stride,
                            int src_channels, float *dst, int dst_width, int dst_height,
                            void *scratch)
{
    /* The converted rows go after what the float resize uses of the scratch. */
    uintptr_t rows = (uintptr_t)scratch + fa_resize_scratch_size(dst_width, dst_height, 3);
    rows = (rows + 63) & ~(uintptr_t)63;
    row_source_t source = {.bytes = src, .stride = src_stride, .width = src_width,
                           .byte_channels = src_channels};
    source.converted[0] = (float *)rows;
    source.converted[1] = source.converted[0] + 3 * (size_t)src_width;
    resize(&source, src_width, src_height, 3, dst, dst_width, dst_height, scratch);
}
