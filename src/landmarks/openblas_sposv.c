#include "landmarks/openblas_sposv.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

/* Element (r, c) of a column-major matrix. */
#define AT(m, ld, r, c) ((m)[(size_t)(r) + (size_t)(c) * (size_t)(ld)])

/* OpenBLAS's blocking for SkylakeX: potf2 below DTB_ENTRIES / 2 rows, GEMM_Q, the kernels'
 * unrolling of rows in the triangular solves and of columns in the potrf panel solve. */
enum { UNBLOCKED_MAX = 32, GEMM_Q = 448, SOLVE_ROWS = 16, PANEL_COLUMNS = 4 };

/* sdot of a row with itself, stride inc (the kernel's non-unit-stride loop). */
static float row_square_sum(int n, const float *x, int inc) {
    double sum = 0.0;
    int i = 0;
    for (; i + 1 < n; i += 2) {
        float x0 = x[(size_t)i * inc], x1 = x[(size_t)(i + 1) * inc];
        sum += (double)fmaf(x0, x0, x1 * x1);
    }
    if (i < n) {
        float x0 = x[(size_t)i * inc];
        sum += (double)(x0 * x0);
    }
    return (float)sum;
}

/* target - sum_{l < k} x[l * incx] y[l * incy]: one fma chain, one rounding at the end. */
static float minus_chain(float target, int k, const float *x, size_t incx, const float *y,
                         size_t incy) {
    if (k <= 0) return target;
    float sum = 0.0f;
    for (int l = 0; l < k; l++)
        sum = fmaf(x[l * incx], y[l * incy], sum);
    return fmaf(sum, -1.0f, target);
}

/* y -= A x, A m x n (lda), x with stride incx: sgemv_n as potf2 calls it. */
static void gemv_minus(int m, int n, const float *a, int lda, const float *x, int incx, float *y) {
    int paired_rows = n == 4 ? (m & 4) + (m & 8) : 0;
    for (int r = 0; r < m; r++) {
        if (r < paired_rows) {
            float even = fmaf(AT(a, lda, r, 2), x[2 * (size_t)incx], AT(a, lda, r, 0) * x[0]);
            float odd = fmaf(AT(a, lda, r, 3), x[3 * (size_t)incx], AT(a, lda, r, 1) * x[incx]);
            y[r] = (odd + even) * -1.0f + y[r];
        } else {
            y[r] = minus_chain(y[r], n, &AT(a, lda, r, 0), (size_t)lda, x, (size_t)incx);
        }
    }
}

static int factor_unblocked(float *a, int lda, int n) {
    for (int j = 0; j < n; j++) {
        float ajj = AT(a, lda, j, j) - row_square_sum(j, &AT(a, lda, j, 0), lda);
        if (!(ajj > 0.0f)) return j + 1;
        ajj = sqrtf(ajj);
        AT(a, lda, j, j) = ajj;
        int below = n - j - 1;
        if (below > 0) {
            float *column = &AT(a, lda, j + 1, j);
            gemv_minus(below, j, &AT(a, lda, j + 1, 0), lda, &AT(a, lda, j, 0), lda, column);
            float scale = 1.0f / ajj;
            for (int r = 0; r < below; r++)
                column[r] *= scale;
        }
    }
    return 0;
}

/* Width of the next block of a sweep over total rows or columns: `unroll` while that many are
 * left, then the binary digits of the remainder from the largest down. */
static int block_width(int done, int total, int unroll) {
    int left = total - done;
    if (left >= unroll) return unroll;
    int width = unroll >> 1;
    while (width > 1 && !(left & width))
        width >>= 1;
    return width;
}

static int factor(float *a, int lda, int n) {
    if (n <= UNBLOCKED_MAX) return factor_unblocked(a, lda, n);
    int blocking = n <= 4 * GEMM_Q ? n / 4 : GEMM_Q;
    for (int j = 0; j < n; j += blocking) {
        int bk = n - j < blocking ? n - j : blocking;
        float *diag = &AT(a, lda, j, j);
        int info = factor(diag, lda, bk);
        if (info) return info + j;
        int rest = n - j - bk;
        if (rest <= 0) continue;
        /* the panel below: P := P L^-T */
        float *panel = &AT(a, lda, j + bk, j);
        for (int r = 0; r < rest; r++)
            for (int c0 = 0, width; c0 < bk; c0 += width) {
                width = block_width(c0, bk, PANEL_COLUMNS);
                for (int c = c0; c < c0 + width; c++)
                    AT(panel, lda, r, c) =
                        minus_chain(AT(panel, lda, r, c), c0, &AT(panel, lda, r, 0), (size_t)lda,
                                    &AT(diag, lda, c, 0), (size_t)lda);
                for (int i = c0; i < c0 + width; i++) {
                    float x = AT(panel, lda, r, i) * (1.0f / AT(diag, lda, i, i));
                    AT(panel, lda, r, i) = x;
                    for (int k = i + 1; k < c0 + width; k++)
                        AT(panel, lda, r, k) = fmaf(-x, AT(diag, lda, k, i), AT(panel, lda, r, k));
                }
            }
        /* the trailing lower triangle: T := T - P P^T */
        float *trail = &AT(a, lda, j + bk, j + bk);
        for (int c = 0; c < rest; c++)
            for (int r = c; r < rest; r++)
                AT(trail, lda, r, c) = minus_chain(AT(trail, lda, r, c), bk, &AT(panel, lda, r, 0),
                                                   (size_t)lda, &AT(panel, lda, c, 0), (size_t)lda);
    }
    return 0;
}

/* Lane-wise forms of the triangular solves: x holds FA_SPOSV_LANES right-hand sides row by row
 * (x[r * LANES + lane]), each lane computed exactly as a column alone would be. */
enum { LANES = FA_SPOSV_LANES };

/* Rows [r0, r0 + width): x[r] -= sum over l in [from, to) of l(r, l) x[l] (forward: the row of
 * L; backward: its column, as L^T's row), then the block's own unknowns in order. */
static void solve_block_reference(const float *l, int lda, float *x, int r0, int width, int from,
                                  int to, int backward) {
    for (int r = r0; r < r0 + width && from < to; r++)
        for (int lane = 0; lane < LANES; lane++) {
            float sum = 0.0f;
            for (int k = from; k < to; k++)
                sum =
                    fmaf(backward ? AT(l, lda, k, r) : AT(l, lda, r, k), x[k * LANES + lane], sum);
            x[r * LANES + lane] = fmaf(sum, -1.0f, x[r * LANES + lane]);
        }
    for (int step = 0; step < width; step++) {
        int i = backward ? r0 + width - 1 - step : r0 + step;
        float inverse = 1.0f / AT(l, lda, i, i);
        int k_from = backward ? r0 : i + 1, k_to = backward ? i : r0 + width;
        for (int lane = 0; lane < LANES; lane++) {
            float v = x[i * LANES + lane] * inverse;
            x[i * LANES + lane] = v;
            for (int k = k_from; k < k_to; k++) {
                float lki = backward ? AT(l, lda, i, k) : AT(l, lda, k, i);
                x[k * LANES + lane] = fmaf(-v, lki, x[k * LANES + lane]);
            }
        }
    }
}

/* x := L^-T L^-1 x: trsm left lower without, then with transposition. */
static void solve_lanes(const float *l, int lda, int n, float *x, int avx2) {
    for (int r0 = 0, width; r0 < n; r0 += width) {
        width = block_width(r0, n, SOLVE_ROWS);
        if (avx2)
            fa_sposv_block_avx2(l, lda, x, r0, width, 0, r0, 0);
        else
            solve_block_reference(l, lda, x, r0, width, 0, r0, 0);
    }
    int solved = n;
    for (int width = 1; width <= SOLVE_ROWS; width <<= 1) {
        int blocks = width < SOLVE_ROWS ? (n & width) != 0 : n / SOLVE_ROWS;
        for (int b = 0; b < blocks; b++) {
            int r0 = solved - width;
            if (avx2)
                fa_sposv_block_avx2(l, lda, x, r0, width, solved, n, 1);
            else
                solve_block_reference(l, lda, x, r0, width, solved, n, 1);
            solved = r0;
        }
    }
}

int fa_openblas_sposv_lower(int n, float *a, int lda, float *b, int ldb, int nrhs,
                            fa_sposv_kernel kernel) {
    int avx2 = kernel == FA_SPOSV_AVX2 || (kernel == FA_SPOSV_AUTO && fa_sposv_avx2_supported());
    float *x = malloc((size_t)n * LANES * sizeof(float));
    if (!x) return -1;
    int info = factor(a, lda, n);
    for (int j0 = 0; j0 < nrhs && !info; j0 += LANES) {
        int lanes = nrhs - j0 < LANES ? nrhs - j0 : LANES;
        for (int r = 0; r < n; r++)
            for (int lane = 0; lane < LANES; lane++)
                x[r * LANES + lane] = lane < lanes ? AT(b, ldb, r, j0 + lane) : 0.0f;
        solve_lanes(a, lda, n, x, avx2);
        for (int r = 0; r < n; r++)
            for (int lane = 0; lane < lanes; lane++)
                AT(b, ldb, r, j0 + lane) = x[r * LANES + lane];
    }
    free(x);
    return info;
}
