/* AVX2 versions of fa_fhog_votes_simd_columns_c and fa_fhog_normalise_c: the same float
 * operations 8 pixels (or 4 blocks) at a time, as dlib's simd8f/simd4f code does, so the result
 * is identical. Compiled for AVX2 per function and chosen at run time; no FMA is enabled, so
 * nothing can be contracted. */
#include "features/fhog.h"

#if defined(FA_FHOG_HAVE_AVX2)

#include <immintrin.h>

#define AVX2 __attribute__((target("avx2")))

/* The 8 values of one channel (0 blue, 1 green, 2 red) of 8 BGR pixels starting at p, as int32:
 * bytes c, c+3, ..., c+21 gathered from a 16-byte and an 8-byte load. */
static AVX2 __m256i load_channel(const uint8_t *p, int c)
{
    static const int8_t low_mask[3][16] = {
        {0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
        {1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1},
        {2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}};
    static const int8_t high_mask[3][16] = {
        {-1, -1, -1, -1, -1, -1, 2, 5, -1, -1, -1, -1, -1, -1, -1, -1},
        {-1, -1, -1, -1, -1, 0, 3, 6, -1, -1, -1, -1, -1, -1, -1, -1},
        {-1, -1, -1, -1, -1, 1, 4, 7, -1, -1, -1, -1, -1, -1, -1, -1}};
    __m128i low = _mm_loadu_si128((const __m128i *)p);
    __m128i high = _mm_loadl_epi64((const __m128i *)(p + 16));
    low = _mm_shuffle_epi8(low, _mm_loadu_si128((const __m128i *)low_mask[c]));
    high = _mm_shuffle_epi8(high, _mm_loadu_si128((const __m128i *)high_mask[c]));
    return _mm256_cvtepu8_epi32(_mm_or_si128(low, high));
}

static AVX2 __m256i load_gray(const uint8_t *p)
{
    return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

static AVX2 __m256i square_length(__m256i dx, __m256i dy)
{
    return _mm256_add_epi32(_mm256_mullo_epi32(dx, dx), _mm256_mullo_epi32(dy, dy));
}

/* Gradients of pixels x..x+7; for colour dlib's SIMD rule: ties go to the later channel. */
static AVX2 void gradient8(const uint8_t *above, const uint8_t *row, const uint8_t *below,
                           int x, int channels, __m256i *gx, __m256i *gy)
{
    if (channels == 1) {
        *gx = _mm256_sub_epi32(load_gray(row + x + 1), load_gray(row + x - 1));
        *gy = _mm256_sub_epi32(load_gray(below + x), load_gray(above + x));
        return;
    }
    __m256i dx[3], dy[3], length[3];
    for (int c = 0; c < 3; c++) {
        dx[c] = _mm256_sub_epi32(load_channel(row + 3 * (x + 1), c),
                                 load_channel(row + 3 * (x - 1), c));
        dy[c] = _mm256_sub_epi32(load_channel(below + 3 * x, c), load_channel(above + 3 * x, c));
        length[c] = square_length(dx[c], dy[c]);
    }
    /* blendv takes its second operand where the mask is set */
    __m256i red = _mm256_cmpgt_epi32(length[2], length[1]);
    __m256i best_dx = _mm256_blendv_epi8(dx[1], dx[2], red);
    __m256i best_dy = _mm256_blendv_epi8(dy[1], dy[2], red);
    __m256i best_length = _mm256_blendv_epi8(length[1], length[2], red);
    __m256i keep = _mm256_cmpgt_epi32(best_length, length[0]);
    *gx = _mm256_blendv_epi8(dx[0], best_dx, keep);
    *gy = _mm256_blendv_epi8(dy[0], best_dy, keep);
}

/* dlib's argmax over +-dot_o with strict ">", rearranged exactly: best >= 0, so "dot > best"
 * and "-dot > best" cannot both hold and together mean |dot| > best; directions 5..8 mirror
 * 4..1 in x, so their dots are py - px with the same rounded products. */
static AVX2 __m256i orientation_bin8(__m256 gx, __m256 gy)
{
    static const float direction_x[5] = {1.0000f, 0.9397f, 0.7660f, 0.500f, 0.1736f};
    static const float direction_y[5] = {0.0000f, 0.3420f, 0.6428f, 0.8660f, 0.9848f};
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 dot[9];
    for (int o = 0; o < 5; o++) {
        __m256 px = _mm256_mul_ps(gx, _mm256_set1_ps(direction_x[o]));
        __m256 py = _mm256_mul_ps(gy, _mm256_set1_ps(direction_y[o]));
        dot[o] = _mm256_add_ps(px, py);
        if (o > 0) dot[9 - o] = _mm256_sub_ps(py, px);
    }
    __m256 best = _mm256_setzero_ps(), best_dot = _mm256_setzero_ps();
    __m256i bin = _mm256_setzero_si256();
    for (int o = 0; o < 9; o++) {
        __m256 size = _mm256_andnot_ps(sign, dot[o]);
        __m256 better = _mm256_cmp_ps(size, best, _CMP_GT_OQ);
        best = _mm256_max_ps(size, best);
        best_dot = _mm256_blendv_ps(best_dot, dot[o], better);
        bin = _mm256_blendv_epi8(bin, _mm256_set1_epi32(o), _mm256_castps_si256(better));
    }
    __m256i negative =
        _mm256_castps_si256(_mm256_cmp_ps(best_dot, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_add_epi32(bin, _mm256_and_si256(negative, _mm256_set1_epi32(9)));
}

AVX2 void fa_fhog_votes_simd_columns_avx2(const uint8_t *above, const uint8_t *row,
                                          const uint8_t *below, int channels, float vy0,
                                          float vy1, fa_fhog_votes_t *votes)
{
    const __m256 y0 = _mm256_set1_ps(vy0), y1 = _mm256_set1_ps(vy1);
    for (int x = 1; x < FA_FHOG_SIMD_END; x += 8) {
        __m256i gx, gy;
        gradient8(above, row, below, x, channels, &gx, &gy);
        __m256 v = _mm256_sqrt_ps(_mm256_cvtepi32_ps(square_length(gx, gy)));
        __m256i bin = orientation_bin8(_mm256_cvtepi32_ps(gx), _mm256_cvtepi32_ps(gy));
        __m256 column = _mm256_add_ps(_mm256_set1_ps((float)x),
                                      _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 xp = _mm256_add_ps(
            _mm256_div_ps(_mm256_add_ps(column, _mm256_set1_ps(0.5f)), _mm256_set1_ps(8.0f)),
            _mm256_set1_ps(0.5f));
        __m256i ixp = _mm256_cvttps_epi32(xp);
        __m256 vx0 = _mm256_sub_ps(xp, _mm256_cvtepi32_ps(ixp));
        __m256 near = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), vx0), v);
        __m256 far = _mm256_mul_ps(vx0, v);
        __m256i cell = _mm256_mullo_epi32(ixp, _mm256_set1_epi32(FA_FHOG_BINS));
        int slot = x + FA_FHOG_VOTE_PAD;
        _mm256_storeu_si256((__m256i *)(votes->index + slot), _mm256_add_epi32(cell, bin));
        _mm256_storeu_ps(votes->top_left + slot, _mm256_mul_ps(y1, near));
        _mm256_storeu_ps(votes->bottom_left + slot, _mm256_mul_ps(y0, near));
        _mm256_storeu_ps(votes->top_right + slot, _mm256_mul_ps(y1, far));
        _mm256_storeu_ps(votes->bottom_right + slot, _mm256_mul_ps(y0, far));
    }
}

/* dlib's SSE2 horizontal sum (l0 + l2) + (l1 + l3) of four vectors at once, by transposing. */
static AVX2 __m128 lane_sums4(const __m128 *v)
{
    __m128 r0 = v[0], r1 = v[1], r2 = v[2], r3 = v[3];
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    return _mm_add_ps(_mm_add_ps(r0, r2), _mm_add_ps(r1, r3));
}

/* Block energies of output cell (y, x) in dlib's lane order: blocks at (1,1) (0,1) (1,0) (0,0). */
static AVX2 __m128 block_energy(const float *energy, int y, int x)
{
    enum { ROW = FA_FHOG_GRID - 2 };
    const float *e = energy + y * ROW + x;
#define E(r, c) e[(r) * ROW + (c)]
    __m128 z1 = _mm_setr_ps(E(1, 1), E(0, 1), E(1, 0), E(0, 0));
    __m128 z2 = _mm_setr_ps(E(1, 2), E(0, 2), E(1, 1), E(0, 1));
    __m128 z3 = _mm_setr_ps(E(2, 1), E(1, 1), E(2, 0), E(1, 0));
    __m128 z4 = _mm_setr_ps(E(2, 2), E(1, 2), E(2, 1), E(1, 1));
#undef E
    return _mm_add_ps(_mm_add_ps(_mm_add_ps(z1, z2), z3), z4);
}

static AVX2 void cell_features4(const float *h, __m128 block, float *out)
{
    __m128 nn = _mm_mul_ps(_mm_set1_ps(0.2f), _mm_sqrt_ps(_mm_add_ps(block, _mm_set1_ps(0.0001f))));
    __m128 scale = _mm_div_ps(_mm_set1_ps(0.1f), nn);
    __m128 part[28], texture = _mm_setzero_ps();
    for (int o = 0; o < FA_FHOG_BINS; o++)
        part[o] = _mm_mul_ps(_mm_min_ps(_mm_set1_ps(h[o]), nn), scale);
    for (int o = 0; o < FA_FHOG_BINS; o += 3)
        texture = _mm_add_ps(texture, _mm_add_ps(_mm_add_ps(part[o], part[o + 1]), part[o + 2]));
    for (int o = 0; o < 9; o++)
        part[FA_FHOG_BINS + o] =
            _mm_mul_ps(_mm_min_ps(_mm_set1_ps(h[o] + h[o + 9]), nn), scale);
    part[27] = _mm_setzero_ps();
    for (int o = 0; o < 28; o += 4) _mm_storeu_ps(out + o, lane_sums4(part + o));
    _mm_storeu_ps(out + 27, _mm_mul_ps(texture, _mm_set1_ps((float)(2 * 0.2357))));
}

AVX2 void fa_fhog_normalise_avx2(const float *hist, const float *energy, float *features)
{
    enum { CELLS = FA_HOG_CELLS };
    for (int y = 0; y < CELLS; y++) {
        for (int x = 0; x < CELLS; x++) {
            cell_features4(hist + ((y + 2) * FA_FHOG_GRID + x + 2) * FA_FHOG_BINS,
                           block_energy(energy, y, x),
                           features + (y * CELLS + x) * FA_HOG_CHANNELS);
        }
    }
}

#endif
