/* AVX2 and AVX-512 mean shifts (clnf_kernels.h): one landmark per vector lane, eight with AVX2,
 * sixteen with AVX-512, each lane with the reference's operations in its order (a product, then
 * three float chains over the cells), so the bits are the same.
 *
 * The maps and KDE rows are stored landmark by landmark: the products map[c] kde[c] are formed
 * eight cells of one landmark at a time, and an 8 x 8 transpose turns them into one vector per
 * cell, added into the sums at once. Measured on Zen 5 and slower: gathers instead of the
 * transposes (four times), the products first transposed into a lane-major scratch, and two
 * groups' chains interleaved (register spills). */
#include "landmarks/clnf_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))
#define TARGET_WIDE __attribute__((target("avx2,avx512f,avx512vl")))
#define INLINE static inline __attribute__((always_inline))

enum { CELLS = FA_CLNF_MAX_WINDOW * FA_CLNF_MAX_WINDOW, MAX_LANES = 16 };

int fa_clnf_avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

int fa_clnf_avx512_supported(void) {
    __builtin_cpu_init();
    return fa_clnf_avx2_supported() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl");
}

/* The landmarks of one group of lanes (lanes past the group repeat its first landmark): their
 * maps, KDE rows and clamped positions. */
typedef struct lane_group {
    _Alignas(64) float dx[MAX_LANES];
    _Alignas(64) float dy[MAX_LANES];
    const float *map[MAX_LANES], *kde[MAX_LANES];
    float scratch[MAX_LANES][CELLS]; /* KDE rows that are not in a table */
} lane_group_t;

/* The coordinates (jj, ii) of every cell, as floats. */
static void cell_coordinates(int window, float *x, float *y) {
    for (int ii = 0, c = 0; ii < window; ii++)
        for (int jj = 0; jj < window; jj++, c++)
            x[c] = (float)jj, y[c] = (float)ii;
}

static void group_store(const int *points, int group, const float *sx, const float *sy,
                        float *shifts_x, float *shifts_y) {
    for (int l = 0; l < group; l++)
        shifts_x[points[l]] = sx[l], shifts_y[points[l]] = sy[l];
}

/* ---------------------------------------------------------------------------------------------
 * Lane set-up, eight lanes a vector (AVX2) */

/* fa_clnf_mean_shift_row's clamp: x < 0 ? 0 : x > last ? last : x. */
TARGET INLINE __m256 clamp_8(__m256 x, __m256 last) {
    __m256 zero = _mm256_setzero_ps();
    x = _mm256_blendv_ps(x, last, _mm256_cmp_ps(x, last, _CMP_GT_OQ));
    return _mm256_blendv_ps(x, zero, _mm256_cmp_ps(x, zero, _CMP_LT_OQ));
}

/* (int)(x / 0.1f + 0.5), the sum in double; INT_MIN for what is not a number. */
TARGET INLINE __m256i snap_8(__m256 x) {
    __m256 q = _mm256_div_ps(x, _mm256_set1_ps(0.1f));
    __m256d half = _mm256_set1_pd(0.5);
    __m128i low =
        _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(q)), half));
    __m128i high =
        _mm256_cvttpd_epi32(_mm256_add_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(q, 1)), half));
    return _mm256_set_m128i(high, low);
}

/* Lanes lane0 .. lane0 + 7 of a group of `group` landmarks (points: the group's). */
TARGET static void group_init_8(const fa_clnf_model_t *model, int window, const float *maps,
                                const int *points, int group, int lane0, const float *dxs,
                                const float *dys, lane_group_t *g) {
    __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(group - lane0),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i k = _mm256_set1_epi32(points[0]);
    if (lane0 < group) k = _mm256_blendv_epi8(k, _mm256_maskload_epi32(points + lane0, live), live);
    __m256 last = _mm256_set1_ps(window - 0.1f);
    __m256 x = clamp_8(_mm256_i32gather_ps(dxs, k, 4), last);
    __m256 y = clamp_8(_mm256_i32gather_ps(dys, k, 4), last);
    _mm256_store_ps(g->dx + lane0, x);
    _mm256_store_ps(g->dy + lane0, y);
    int cells = window * window, grid = 10 * window;
    __m256i gx = snap_8(x), gy = snap_8(y), limit = _mm256_set1_epi32(grid);
    __m256i row = _mm256_add_epi32(_mm256_mullo_epi32(gx, limit), gy);
    _Alignas(32) int map_offset[8], kde_offset[8];
    _mm256_store_si256((__m256i *)map_offset, _mm256_mullo_epi32(k, _mm256_set1_epi32(cells)));
    _mm256_store_si256((__m256i *)kde_offset, _mm256_mullo_epi32(row, _mm256_set1_epi32(cells)));
    /* 0 <= gx, gy < grid */
    __m256i minus_one = _mm256_set1_epi32(-1);
    __m256i inside = _mm256_and_si256(
        _mm256_and_si256(_mm256_cmpgt_epi32(limit, gx), _mm256_cmpgt_epi32(gx, minus_one)),
        _mm256_and_si256(_mm256_cmpgt_epi32(limit, gy), _mm256_cmpgt_epi32(gy, minus_one)));
    const float *table = model->kde[window];
    if (table && _mm256_movemask_epi8(inside) == -1) {
        for (int l = 0; l < 8; l++) {
            g->map[lane0 + l] = maps + map_offset[l];
            g->kde[lane0 + l] = table + kde_offset[l];
        }
        return;
    }
    for (int l = lane0; l < lane0 + 8; l++) { /* a window without a table, or not a number */
        int point = points[l < group ? l : 0];
        float dx = dxs[point], dy = dys[point];
        g->map[l] = maps + (size_t)point * cells;
        g->kde[l] = fa_clnf_mean_shift_row(model, window, &dx, &dy, g->scratch[l]);
    }
}

/* ---------------------------------------------------------------------------------------------
 * AVX2 */

/* r[j] lane l <- r[l] lane j. */
TARGET INLINE void transpose_8x8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        u[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

TARGET INLINE void accumulate_8(__m256 v, float x, float y, __m256 *sum, __m256 *mx, __m256 *my) {
    *sum = _mm256_add_ps(*sum, v);
    *mx = _mm256_add_ps(*mx, _mm256_mul_ps(v, _mm256_set1_ps(x)));
    *my = _mm256_add_ps(*my, _mm256_mul_ps(v, _mm256_set1_ps(y)));
}

/* The shifts of one group's lanes: x in shifts[0..7], y in shifts[8..15]. The one cell left
 * after the blocks of eight when W is odd is formed lane by lane (faster than a transpose). */
TARGET static void group_shifts_8(const lane_group_t *g, int window, const float *cell_x,
                                  const float *cell_y, float *shifts) {
    int cells = window * window, c0 = 0;
    __m256 sum = _mm256_setzero_ps(), mx = sum, my = sum;
    for (; c0 + 8 <= cells; c0 += 8) {
        __m256 v[8];
        for (int l = 0; l < 8; l++)
            v[l] = _mm256_mul_ps(_mm256_loadu_ps(g->map[l] + c0), _mm256_loadu_ps(g->kde[l] + c0));
        transpose_8x8(v);
        for (int j = 0; j < 8; j++)
            accumulate_8(v[j], cell_x[c0 + j], cell_y[c0 + j], &sum, &mx, &my);
    }
    for (; c0 < cells; c0++) {
        _Alignas(32) float p[8];
        for (int l = 0; l < 8; l++)
            p[l] = g->map[l][c0] * g->kde[l][c0];
        accumulate_8(_mm256_load_ps(p), cell_x[c0], cell_y[c0], &sum, &mx, &my);
    }
    _mm256_store_ps(shifts, _mm256_sub_ps(_mm256_div_ps(mx, sum), _mm256_load_ps(g->dx)));
    _mm256_store_ps(shifts + 8, _mm256_sub_ps(_mm256_div_ps(my, sum), _mm256_load_ps(g->dy)));
}

TARGET void fa_clnf_mean_shifts_avx2(const fa_clnf_model_t *model, int window, const float *maps,
                                     const int *points, int count, const float *dxs,
                                     const float *dys, float *shifts_x, float *shifts_y) {
    float cell_x[CELLS], cell_y[CELLS];
    cell_coordinates(window, cell_x, cell_y);
    lane_group_t g;
    for (int first = 0; first < count; first += 8) {
        int group = count - first < 8 ? count - first : 8;
        _Alignas(32) float shifts[16];
        group_init_8(model, window, maps, points + first, group, 0, dxs, dys, &g);
        group_shifts_8(&g, window, cell_x, cell_y, shifts);
        group_store(points + first, group, shifts, shifts + 8, shifts_x, shifts_y);
    }
}

/* ---------------------------------------------------------------------------------------------
 * AVX-512: sixteen lanes, eight cells of two landmarks a vector (l and l + 8) before the
 * transposes, which then run in the two 256-bit halves at once. */

/* transpose_8x8 in each 256-bit half. */
TARGET_WIDE INLINE void transpose_halves(__m512 r[8]) {
    __m512 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        u[4 * h] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
        u[4 * h + 1] = _mm512_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
        u[4 * h + 2] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
        u[4 * h + 3] = _mm512_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
    }
    /* the low (high) 128 bits of each half of a, then of b */
    const __m512i low = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i high =
        _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_permutex2var_ps(u[i], low, u[i + 4]);
        r[i + 4] = _mm512_permutex2var_ps(u[i], high, u[i + 4]);
    }
}

TARGET_WIDE INLINE __m512 join(__m256 low, __m256 high) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(low)),
                                               _mm256_castps_pd(high), 1));
}

TARGET_WIDE INLINE void accumulate_16(__m512 v, float x, float y, __m512 *sum, __m512 *mx,
                                      __m512 *my) {
    *sum = _mm512_add_ps(*sum, v);
    *mx = _mm512_add_ps(*mx, _mm512_mul_ps(v, _mm512_set1_ps(x)));
    *my = _mm512_add_ps(*my, _mm512_mul_ps(v, _mm512_set1_ps(y)));
}

TARGET_WIDE static void group_shifts_16(const lane_group_t *g, int window, const float *cell_x,
                                        const float *cell_y, float *shifts) {
    int cells = window * window, c0 = 0;
    __m512 sum = _mm512_setzero_ps(), mx = sum, my = sum;
    for (; c0 + 8 <= cells; c0 += 8) {
        __m512 v[8];
        for (int l = 0; l < 8; l++)
            v[l] = join(
                _mm256_mul_ps(_mm256_loadu_ps(g->map[l] + c0), _mm256_loadu_ps(g->kde[l] + c0)),
                _mm256_mul_ps(_mm256_loadu_ps(g->map[l + 8] + c0),
                              _mm256_loadu_ps(g->kde[l + 8] + c0)));
        transpose_halves(v);
        for (int j = 0; j < 8; j++)
            accumulate_16(v[j], cell_x[c0 + j], cell_y[c0 + j], &sum, &mx, &my);
    }
    for (; c0 < cells; c0++) {
        _Alignas(64) float p[16];
        for (int l = 0; l < 16; l++)
            p[l] = g->map[l][c0] * g->kde[l][c0];
        accumulate_16(_mm512_load_ps(p), cell_x[c0], cell_y[c0], &sum, &mx, &my);
    }
    _mm512_store_ps(shifts, _mm512_sub_ps(_mm512_div_ps(mx, sum), _mm512_load_ps(g->dx)));
    _mm512_store_ps(shifts + 16, _mm512_sub_ps(_mm512_div_ps(my, sum), _mm512_load_ps(g->dy)));
}

/* Groups of sixteen; the last eight landmarks or fewer as a group of eight. */
TARGET_WIDE void fa_clnf_mean_shifts_avx512(const fa_clnf_model_t *model, int window,
                                            const float *maps, const int *points, int count,
                                            const float *dxs, const float *dys, float *shifts_x,
                                            float *shifts_y) {
    float cell_x[CELLS], cell_y[CELLS];
    cell_coordinates(window, cell_x, cell_y);
    lane_group_t g;
    int first = 0;
    for (; first + 8 < count; first += 16) {
        int group = count - first < 16 ? count - first : 16;
        _Alignas(64) float shifts[32];
        group_init_8(model, window, maps, points + first, group, 0, dxs, dys, &g);
        group_init_8(model, window, maps, points + first, group, 8, dxs, dys, &g);
        group_shifts_16(&g, window, cell_x, cell_y, shifts);
        group_store(points + first, group, shifts, shifts + 16, shifts_x, shifts_y);
    }
    if (first < count) {
        _Alignas(32) float shifts[16];
        group_init_8(model, window, maps, points + first, count - first, 0, dxs, dys, &g);
        group_shifts_8(&g, window, cell_x, cell_y, shifts);
        group_store(points + first, count - first, shifts, shifts + 8, shifts_x, shifts_y);
    }
}

#else

int fa_clnf_avx2_supported(void) {
    return 0;
}

int fa_clnf_avx512_supported(void) {
    return 0;
}

void fa_clnf_mean_shifts_avx2(const fa_clnf_model_t *model, int window, const float *maps,
                              const int *points, int count, const float *dxs, const float *dys,
                              float *shifts_x, float *shifts_y) {
    fa_clnf_mean_shifts_reference(model, window, maps, points, count, dxs, dys, shifts_x, shifts_y);
}

void fa_clnf_mean_shifts_avx512(const fa_clnf_model_t *model, int window, const float *maps,
                                const int *points, int count, const float *dxs, const float *dys,
                                float *shifts_x, float *shifts_y) {
    fa_clnf_mean_shifts_reference(model, window, maps, points, count, dxs, dys, shifts_x, shifts_y);
}

#endif
