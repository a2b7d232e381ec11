/* The mean-shift kernels of NU-RLMS: a plain C reference and AVX2 / AVX-512 versions that give the
 * same bits. Internal to src/landmarks/.
 *
 * The mean shift of one landmark (NonVectorisedMeanShift_precalc_kde, LANDMARKS_SPEC §3.2): its
 * position (dx, dy) clamped to [0, W - 0.1], the KDE row of the grid point nearest it, and three
 * float sums over the W x W cells c = ii W + jj in order, of v = map[c] kde[c], v jj and v ii;
 * the shift is (sum_x / sum - dx, sum_y / sum - dy). The SIMD versions compute one landmark per
 * vector lane with the same operations; tests/test_mean_shift.c compares them with the
 * reference. */
#ifndef FACEAU_LANDMARKS_CLNF_KERNELS_H
#define FACEAU_LANDMARKS_CLNF_KERNELS_H

#include "landmarks/clnf_fit.h"

/* Clamps a landmark's position (*dx, *dy) to [0, W - 0.1] and returns the KDE row of the grid
 * point nearest it, as fa_clnf_kde_row (scratch: W^2 floats, for a window without a table); a
 * row of zeros for a position that is not a number. The table has 10 W rows a side for every
 * W <= FA_CLNF_MAX_WINDOW. */
static inline const float *fa_clnf_mean_shift_row(const fa_clnf_model_t *model, int window,
                                                  float *dx, float *dy, float *scratch) {
    static const float zeros[FA_CLNF_MAX_WINDOW * FA_CLNF_MAX_WINDOW];
    const float step = 0.1f, last = window - step;
    float x = *dx < 0 ? 0 : *dx > last ? last : *dx;
    float y = *dy < 0 ? 0 : *dy > last ? last : *dy;
    *dx = x, *dy = y;
    if (x != x || y != y) return zeros;
    int gx = (int)(x / step + 0.5), gy = (int)(y / step + 0.5), grid = 10 * window;
    const float *table = model->kde[window];
    if (table && gx >= 0 && gy >= 0 && gx < grid && gy < grid)
        return table + ((size_t)gx * grid + gy) * window * window;
    const float *row = fa_clnf_kde_row(model, window, gx, gy, scratch);
    return row ? row : zeros;
}

/* The mean shifts of the landmarks k = points[l], l < count: map k at maps + k W^2, position
 * (dxs[k], dys[k]), shift written to (shifts_x[k], shifts_y[k]). */
typedef void (*fa_clnf_mean_shifts_fn)(const fa_clnf_model_t *model, int window, const float *maps,
                                       const int *points, int count, const float *dxs,
                                       const float *dys, float *shifts_x, float *shifts_y);

void fa_clnf_mean_shifts_reference(const fa_clnf_model_t *model, int window, const float *maps,
                                   const int *points, int count, const float *dxs, const float *dys,
                                   float *shifts_x, float *shifts_y);

/* AVX2: eight landmarks a vector. */
int fa_clnf_avx2_supported(void);
void fa_clnf_mean_shifts_avx2(const fa_clnf_model_t *model, int window, const float *maps,
                              const int *points, int count, const float *dxs, const float *dys,
                              float *shifts_x, float *shifts_y);
/* AVX-512 (F, VL): sixteen landmarks a vector. */
int fa_clnf_avx512_supported(void);
void fa_clnf_mean_shifts_avx512(const fa_clnf_model_t *model, int window, const float *maps,
                                const int *points, int count, const float *dxs, const float *dys,
                                float *shifts_x, float *shifts_y);

/* The fastest of the above this CPU runs. */
fa_clnf_mean_shifts_fn fa_clnf_mean_shifts_kernel(void);

#endif
