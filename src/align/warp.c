/* OpenCV 4.6's warpAffine with INTER_LINEAR and BORDER_CONSTANT 0, reproduced bit-exactly.
 *
 * OpenCV inverts the float forward matrix in double, then walks the destination in fixed point:
 * source coordinates carry AB_BITS = 10 fractional bits (rounded with cvRound, plus a rounding
 * delta of half an interpolation step), of which the top INTER_BITS = 5 select one of 32x32
 * bilinear weight sets scaled to 2^15. The weights are exact products (a/32)(b/32) except the
 * integer position, whose weight 32768 saturates to a short's 32767 and gets the missing unit
 * added to the opposite corner; that never changes an 8-bit result, so the weights used here are
 * the exact ones, 32 (32 - fx)(32 - fy) and so on. Corners outside the frame read as 0. */
#include <limits.h>
#include <math.h>

#include "align/align.h"
#include "core/image.h"

enum {
    AB_BITS = 10,   /* fractional bits of the fixed-point source coordinate */
    INTER_BITS = 5, /* of which select the interpolation weights */
    INTER_TAB_SIZE = 1 << INTER_BITS,
    COEF_BITS = 15, /* weights sum to 1 << COEF_BITS */
    ROUND_DELTA = (1 << AB_BITS) / INTER_TAB_SIZE / 2,
    /* The weights here are OpenCV's divided by 2^5, so results round at 2^(15 - 5). */
    SHIFT = COEF_BITS - INTER_BITS,
};

/* cvRound on x86-64: round to nearest, ties to even; out of range gives INT_MIN like cvtsd2si.
 * Adding and removing 1.5 * 2^52 rounds in the current (nearest) mode without a libm call. */
static int round_to_int(double value)
{
    if (!(value >= -2147483648.5 && value < 2147483647.5)) return INT_MIN;
    const double magic = 6755399441055744.0;
    return (int)((value + magic) - magic);
}

static short saturate_short(int value)
{
    return (short)(value < SHRT_MIN ? SHRT_MIN : value > SHRT_MAX ? SHRT_MAX : value);
}

/* Floor division by 2^bits; C leaves >> of negative values implementation-defined. */
static int shift_floor(int value, int bits)
{
    return value >= 0 ? value >> bits : -(int)((-(long long)value + (1 << bits) - 1) >> bits);
}

void fa_warp_inverse(const float forward[6], double inverse[6])
{
    /* As warpAffine does without WARP_INVERSE_MAP: in double, from the float matrix. */
    double m[6];
    for (int i = 0; i < 6; i++)
        m[i] = forward[i];
    double d = m[0] * m[4] - m[1] * m[3];
    d = d != 0 ? 1. / d : 0;
    double a11 = m[4] * d, a22 = m[0] * d;
    m[0] = a11;
    m[1] *= -d;
    m[3] *= -d;
    m[4] = a22;
    double b1 = -m[0] * m[2] - m[1] * m[5];
    double b2 = -m[3] * m[2] - m[4] * m[5];
    m[2] = b1;
    m[5] = b2;
    for (int i = 0; i < 6; i++)
        inverse[i] = m[i];
}

/* One interpolated pixel of cn channels at integer position (sx, sy), weights index (fx, fy). */
static void sample(const fa_image_t *frame, int sx, int sy, int fx, int fy, uint8_t *out)
{
    const int cn = frame->channels;
    const int weight[4] = {(INTER_TAB_SIZE - fx) * (INTER_TAB_SIZE - fy),
                           fx * (INTER_TAB_SIZE - fy), (INTER_TAB_SIZE - fx) * fy, fx * fy};
    int sum[4] = {0, 0, 0, 0};
    if (sx >= 0 && sy >= 0 && sx < frame->width - 1 && sy < frame->height - 1) {
        const uint8_t *p = frame->data + (ptrdiff_t)sy * frame->stride + (ptrdiff_t)sx * cn;
        const uint8_t *q = p + frame->stride;
        if (cn == 3) { /* the common case, unrolled */
            for (int k = 0; k < 3; k++)
                out[k] = (uint8_t)((p[k] * weight[0] + p[k + 3] * weight[1] + q[k] * weight[2] +
                                    q[k + 3] * weight[3] + (1 << (SHIFT - 1))) >>
                                   SHIFT);
            return;
        }
        for (int k = 0; k < cn; k++)
            sum[k] =
                p[k] * weight[0] + p[k + cn] * weight[1] + q[k] * weight[2] + q[k + cn] * weight[3];
    } else if (sx >= frame->width || sx + 1 < 0 || sy >= frame->height || sy + 1 < 0) {
        for (int k = 0; k < cn; k++)
            out[k] = 0;
        return;
    } else {
        for (int corner = 0; corner < 4; corner++) {
            int x = sx + (corner & 1), y = sy + (corner >> 1);
            if (x < 0 || y < 0 || x >= frame->width || y >= frame->height) continue;
            const uint8_t *p = frame->data + (ptrdiff_t)y * frame->stride + (ptrdiff_t)x * cn;
            for (int k = 0; k < cn; k++)
                sum[k] += p[k] * weight[corner];
        }
    }
    for (int k = 0; k < cn; k++)
        out[k] = (uint8_t)((sum[k] + (1 << (SHIFT - 1))) >> SHIFT);
}

/* Source position of each destination pixel as OpenCV computes it: per column and per row terms
 * rounded separately to 1/1024 px, summed, then split into integer part and 1/32 px fraction. */
static void source_position(int row_term, int column_term, int *integer, int *fraction)
{
    int v = (int)((unsigned)row_term + (unsigned)column_term); /* wraps like OpenCV's int sum */
    v = shift_floor(v, AB_BITS - INTER_BITS);
    *fraction = v & (INTER_TAB_SIZE - 1);
    *integer = saturate_short(shift_floor(v, INTER_BITS));
}

enum { BLOCK = 64 }; /* columns per block: the column terms live on the stack */

static void warp_block(const fa_image_t *frame, const double m[6], int first, int count,
                       fa_image_t *out)
{
    int column_x[BLOCK], column_y[BLOCK];
    for (int i = 0; i < count; i++) {
        column_x[i] = round_to_int(m[0] * (first + i) * (1 << AB_BITS));
        column_y[i] = round_to_int(m[3] * (first + i) * (1 << AB_BITS));
    }
    const int to_gray = frame->channels == 3 && out->channels == 1;
    for (int y = 0; y < out->height; y++) {
        uint8_t *row = out->data + (ptrdiff_t)y * out->stride + (ptrdiff_t)first * out->channels;
        const int row_x = round_to_int((m[1] * y + m[2]) * (1 << AB_BITS)) + ROUND_DELTA;
        const int row_y = round_to_int((m[4] * y + m[5]) * (1 << AB_BITS)) + ROUND_DELTA;
        for (int i = 0; i < count; i++) {
            int sx, sy, fx, fy;
            source_position(row_x, column_x[i], &sx, &fx);
            source_position(row_y, column_y[i], &sy, &fy);
            if (to_gray) {
                uint8_t bgr[3];
                sample(frame, sx, sy, fx, fy, bgr);
                row[i] = fa_gray_from_bgr(bgr);
            } else {
                sample(frame, sx, sy, fx, fy, row + (ptrdiff_t)i * out->channels);
            }
        }
    }
}

void fa_warp_affine(const fa_image_t *frame, const float forward[6], fa_image_t *out)
{
    double m[6];
    fa_warp_inverse(forward, m);
    for (int first = 0; first < out->width; first += BLOCK)
        warp_block(frame, m, first, out->width - first < BLOCK ? out->width - first : BLOCK, out);
}
