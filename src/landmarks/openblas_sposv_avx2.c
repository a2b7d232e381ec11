/* AVX2 + FMA form of the sposv model's triangular solves: 8 right-hand sides per vector, each lane
 * performing exactly the scalar operations of solve_block_reference (openblas_sposv.c). */
#include "landmarks/openblas_sposv.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <stddef.h>

#define TARGET __attribute__((target("avx2,fma")))
#define AT(m, ld, r, c) ((m)[(size_t)(r) + (size_t)(c) * (size_t)(ld)])

int fa_sposv_avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

TARGET void fa_sposv_block_avx2(const float *l, int lda, float *x, int r0, int width, int from,
                                int to, int backward) {
    const __m256 minus_one = _mm256_set1_ps(-1.0f);
    for (int r = r0; r < r0 + width && from < to; r++) {
        __m256 sum = _mm256_setzero_ps();
        for (int k = from; k < to; k++) {
            float lrk = backward ? AT(l, lda, k, r) : AT(l, lda, r, k);
            sum = _mm256_fmadd_ps(_mm256_set1_ps(lrk), _mm256_loadu_ps(x + (size_t)k * 8), sum);
        }
        float *xr = x + (size_t)r * 8;
        _mm256_storeu_ps(xr, _mm256_fmadd_ps(sum, minus_one, _mm256_loadu_ps(xr)));
    }
    for (int step = 0; step < width; step++) {
        int i = backward ? r0 + width - 1 - step : r0 + step;
        float *xi = x + (size_t)i * 8;
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xi), _mm256_set1_ps(1.0f / AT(l, lda, i, i)));
        _mm256_storeu_ps(xi, v);
        int k_from = backward ? r0 : i + 1, k_to = backward ? i : r0 + width;
        for (int k = k_from; k < k_to; k++) {
            float lki = backward ? AT(l, lda, i, k) : AT(l, lda, k, i);
            float *xk = x + (size_t)k * 8;
            /* -(v lki) + x: the same single rounding as fmaf(-v, lki, x) */
            _mm256_storeu_ps(xk, _mm256_fnmadd_ps(v, _mm256_set1_ps(lki), _mm256_loadu_ps(xk)));
        }
    }
}

#else

int fa_sposv_avx2_supported(void) {
    return 0;
}
void fa_sposv_block_avx2(const float *l, int lda, float *x, int r0, int width, int from, int to,
                         int backward) {
    (void)l, (void)lda, (void)x, (void)r0, (void)width, (void)from, (void)to, (void)backward;
}

#endif
