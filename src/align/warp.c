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
#include <string.h>

#include "align/align.h"
#include "core/cv_round.h"
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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FA_WARP_AVX2 1

/* Eight BGR pixels of a row: the same integers as source_position and sample, in lanes. The
 * neighbours come from four gathers (each row's left pixel at 3 sx, its right one at 3 sx + 2,
 * so that no read passes the pair); returns 0, writing nothing, when a lane's square is not
 * inside the frame (the caller then takes sample). */
__attribute__((target("avx2"))) static int sample_8_bgr(const fa_image_t *frame, int row_x,
                                                       int row_y, const int *column_x,
                                                       const int *column_y, uint8_t *out)
{
    __m256i vx = _mm256_add_epi32(_mm256_set1_epi32(row_x),
                                  _mm256_loadu_si256((const __m256i *)column_x));
    __m256i vy = _mm256_add_epi32(_mm256_set1_epi32(row_y),
                                  _mm256_loadu_si256((const __m256i *)column_y));
    vx = _mm256_srai_epi32(vx, AB_BITS - INTER_BITS); /* shift_floor */
    vy = _mm256_srai_epi32(vy, AB_BITS - INTER_BITS);
    const __m256i fraction = _mm256_set1_epi32(INTER_TAB_SIZE - 1);
    const __m256i fx = _mm256_and_si256(vx, fraction), fy = _mm256_and_si256(vy, fraction);
    const __m256i short_min = _mm256_set1_epi32(SHRT_MIN), short_max = _mm256_set1_epi32(SHRT_MAX);
    const __m256i sx = _mm256_max_epi32(
        _mm256_min_epi32(_mm256_srai_epi32(vx, INTER_BITS), short_max), short_min);
    const __m256i sy = _mm256_max_epi32(
        _mm256_min_epi32(_mm256_srai_epi32(vy, INTER_BITS), short_max), short_min);
    const __m256i zero = _mm256_setzero_si256();
    __m256i outside = _mm256_or_si256(_mm256_cmpgt_epi32(zero, sx), _mm256_cmpgt_epi32(zero, sy));
    outside = _mm256_or_si256(outside,
                              _mm256_cmpgt_epi32(sx, _mm256_set1_epi32(frame->width - 2)));
    outside = _mm256_or_si256(outside,
                              _mm256_cmpgt_epi32(sy, _mm256_set1_epi32(frame->height - 2)));
    if (!_mm256_testz_si256(outside, outside)) return 0;
    const __m256i offset = _mm256_add_epi32(
        _mm256_mullo_epi32(sy, _mm256_set1_epi32((int)frame->stride)),
        _mm256_mullo_epi32(sx, _mm256_set1_epi32(3)));
    const int *top = (const int *)frame->data;
    const int *bottom = (const int *)(frame->data + frame->stride);
    const __m256i top_left = _mm256_i32gather_epi32(top, offset, 1);
    const __m256i top_right = _mm256_i32gather_epi32((const int *)(frame->data + 2), offset, 1);
    const __m256i bottom_left = _mm256_i32gather_epi32(bottom, offset, 1);
    const __m256i bottom_right =
        _mm256_i32gather_epi32((const int *)(frame->data + frame->stride + 2), offset, 1);
    const __m256i size = _mm256_set1_epi32(INTER_TAB_SIZE);
    const __m256i gx = _mm256_sub_epi32(size, fx), gy = _mm256_sub_epi32(size, fy);
    const __m256i w0 = _mm256_mullo_epi32(gx, gy), w1 = _mm256_mullo_epi32(fx, gy);
    const __m256i w2 = _mm256_mullo_epi32(gx, fy), w3 = _mm256_mullo_epi32(fx, fy);
    const __m256i byte = _mm256_set1_epi32(0xff), half = _mm256_set1_epi32(1 << (SHIFT - 1));
    __m256i packed = zero;
    for (int k = 0; k < 3; k++) {
        /* channel k: byte k of the left dwords, byte k + 1 of the right ones */
        __m256i p = _mm256_and_si256(_mm256_srli_epi32(top_left, 8 * k), byte);
        __m256i q = _mm256_and_si256(_mm256_srli_epi32(top_right, 8 * (k + 1)), byte);
        __m256i r = _mm256_and_si256(_mm256_srli_epi32(bottom_left, 8 * k), byte);
        __m256i t = _mm256_and_si256(_mm256_srli_epi32(bottom_right, 8 * (k + 1)), byte);
        __m256i sum = _mm256_add_epi32(
            _mm256_add_epi32(_mm256_mullo_epi32(p, w0), _mm256_mullo_epi32(q, w1)),
            _mm256_add_epi32(_mm256_mullo_epi32(r, w2), _mm256_mullo_epi32(t, w3)));
        sum = _mm256_srli_epi32(_mm256_add_epi32(sum, half), SHIFT);
        packed = _mm256_or_si256(packed, _mm256_slli_epi32(sum, 8 * k));
    }
    /* the low three bytes of each lane, in order: 12 bytes per 128-bit half */
    const __m256i squeeze = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,
                                             0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
    packed = _mm256_shuffle_epi8(packed, squeeze);
    _Alignas(32) uint8_t bytes[32];
    _mm256_store_si256((__m256i *)bytes, packed);
    memcpy(out, bytes, 12);
    memcpy(out + 12, bytes + 16, 12);
    return 1;
}

static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#endif

static void warp_block(const fa_image_t *frame, const double m[6], int first, int count,
                       int vectors, fa_image_t *out)
{
    int column_x[BLOCK], column_y[BLOCK];
    for (int i = 0; i < count; i++) {
        column_x[i] = fa_cv_round(m[0] * (first + i) * (1 << AB_BITS));
        column_y[i] = fa_cv_round(m[3] * (first + i) * (1 << AB_BITS));
    }
    const int to_gray = frame->channels == 3 && out->channels == 1;
#ifdef FA_WARP_AVX2
    const int bgr_vectors = vectors && frame->channels == 3 && out->channels == 3;
#else
    (void)vectors;
#endif
    for (int y = 0; y < out->height; y++) {
        uint8_t *row = out->data + (ptrdiff_t)y * out->stride + (ptrdiff_t)first * out->channels;
        const int row_x = fa_cv_round((m[1] * y + m[2]) * (1 << AB_BITS)) + ROUND_DELTA;
        const int row_y = fa_cv_round((m[4] * y + m[5]) * (1 << AB_BITS)) + ROUND_DELTA;
        for (int i = 0; i < count; i++) {
#ifdef FA_WARP_AVX2
            /* eight at once where all eight squares are inside the frame */
            if (bgr_vectors && i % 8 == 0 && i + 8 <= count &&
                sample_8_bgr(frame, row_x, row_y, column_x + i, column_y + i, row + 3 * i)) {
                i += 7;
                continue;
            }
#endif
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

static void warp_affine(const fa_image_t *frame, const float forward[6], int vectors,
                        fa_image_t *out)
{
    double m[6];
    fa_warp_inverse(forward, m);
    for (int first = 0; first < out->width; first += BLOCK)
        warp_block(frame, m, first, out->width - first < BLOCK ? out->width - first : BLOCK,
                   vectors, out);
}

void fa_warp_affine(const fa_image_t *frame, const float forward[6], fa_image_t *out)
{
#ifdef FA_WARP_AVX2
    warp_affine(frame, forward, have_avx2(), out);
#else
    warp_affine(frame, forward, 0, out);
#endif
}

void fa_warp_affine_reference(const fa_image_t *frame, const float forward[6], fa_image_t *out)
{
    warp_affine(frame, forward, 0, out);
}
