/* The linear SVR/SVM kernels: (input) x (stacked support vectors), OpenFace's cv::gemm of a
 * 1 x 4702 row by a 4702 x K matrix. Each sum is accumulated from zero in feature order, which
 * is how OpenCV's gemm sums a row-by-matrix product; models are interleaved by four so that the
 * four sums are independent (and vectorisable) without reordering any single sum. */
#include "au/au_internal.h"

void fa_au_group_dot_reference(const fa_au_group_t *group, const double *input, double *sums) {
    for (int block = 0; block < group->stride / 4; block++) {
        const double *w = group->weights + (size_t)block * FA_AU_FEATURES * 4;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int k = 0; k < FA_AU_FEATURES; k++, w += 4) {
            double a = input[k];
            s0 += a * w[0];
            s1 += a * w[1];
            s2 += a * w[2];
            s3 += a * w[3];
        }
        sums[4 * block] = s0;
        sums[4 * block + 1] = s1;
        sums[4 * block + 2] = s2;
        sums[4 * block + 3] = s3;
    }
}

void fa_au_group_dot2_reference(const fa_au_group_t *group, const double *input_a,
                                const double *input_b, double *sums_a, double *sums_b) {
    for (int block = 0; block < group->stride / 4; block++) {
        const double *w = group->weights + (size_t)block * FA_AU_FEATURES * 4;
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        for (int k = 0; k < FA_AU_FEATURES; k++, w += 4) {
            double a = input_a[k], b = input_b[k];
            a0 += a * w[0];
            a1 += a * w[1];
            a2 += a * w[2];
            a3 += a * w[3];
            b0 += b * w[0];
            b1 += b * w[1];
            b2 += b * w[2];
            b3 += b * w[3];
        }
        double *sa = sums_a + 4 * block, *sb = sums_b + 4 * block;
        sa[0] = a0, sa[1] = a1, sa[2] = a2, sa[3] = a3;
        sb[0] = b0, sb[1] = b1, sb[2] = b2, sb[3] = b3;
    }
}

/* ---------------------------------------------------------------------------------------------
 * AVX2: a block's four sums in one vector, each lane the reference's chain (a multiply, then an
 * add: no FMA); several blocks (and both inputs) at once so that the chains overlap. */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))

enum { MAX_BLOCKS = 4 };

/* Blocks [first, first + count) for `inputs` inputs (1 or 2, constants after inlining). */
TARGET static inline __attribute__((always_inline)) void
dot_blocks(const fa_au_group_t *group, int first, int count, int inputs, const double *input_a,
           const double *input_b, double *sums_a, double *sums_b) {
    __m256d a[MAX_BLOCKS], b[MAX_BLOCKS];
    const double *w[MAX_BLOCKS];
    for (int j = 0; j < count; j++) {
        a[j] = b[j] = _mm256_setzero_pd();
        w[j] = group->weights + (size_t)(first + j) * FA_AU_FEATURES * 4;
    }
    for (int k = 0; k < FA_AU_FEATURES; k++) {
        __m256d x = _mm256_set1_pd(input_a[k]);
        __m256d y = inputs == 2 ? _mm256_set1_pd(input_b[k]) : x;
        for (int j = 0; j < count; j++) {
            __m256d weights = _mm256_loadu_pd(w[j] + 4 * k);
            a[j] = _mm256_add_pd(a[j], _mm256_mul_pd(x, weights));
            if (inputs == 2) b[j] = _mm256_add_pd(b[j], _mm256_mul_pd(y, weights));
        }
    }
    for (int j = 0; j < count; j++) {
        _mm256_storeu_pd(sums_a + 4 * (first + j), a[j]);
        if (inputs == 2) _mm256_storeu_pd(sums_b + 4 * (first + j), b[j]);
    }
}

TARGET void fa_au_group_dot_avx2(const fa_au_group_t *group, const double *input,
                                 double *sums) {
    int blocks = group->stride / 4, first = 0;
    for (; first + 4 <= blocks; first += 4)
        dot_blocks(group, first, 4, 1, input, NULL, sums, NULL);
    for (; first + 2 <= blocks; first += 2)
        dot_blocks(group, first, 2, 1, input, NULL, sums, NULL);
    if (first < blocks) dot_blocks(group, first, 1, 1, input, NULL, sums, NULL);
}

TARGET void fa_au_group_dot2_avx2(const fa_au_group_t *group, const double *input_a,
                                  const double *input_b, double *sums_a, double *sums_b) {
    int blocks = group->stride / 4, first = 0;
    for (; first + 2 <= blocks; first += 2)
        dot_blocks(group, first, 2, 2, input_a, input_b, sums_a, sums_b);
    if (first < blocks) dot_blocks(group, first, 1, 2, input_a, input_b, sums_a, sums_b);
}

static int have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

#else

static int have_avx2(void) {
    return 0;
}

void fa_au_group_dot_avx2(const fa_au_group_t *group, const double *input, double *sums) {
    fa_au_group_dot_reference(group, input, sums);
}

void fa_au_group_dot2_avx2(const fa_au_group_t *group, const double *input_a,
                           const double *input_b, double *sums_a, double *sums_b) {
    fa_au_group_dot2_reference(group, input_a, input_b, sums_a, sums_b);
}

#endif

void fa_au_group_dot(const fa_au_group_t *group, const double *input, double *sums) {
    if (have_avx2())
        fa_au_group_dot_avx2(group, input, sums);
    else
        fa_au_group_dot_reference(group, input, sums);
}

void fa_au_group_dot2(const fa_au_group_t *group, const double *input_a, const double *input_b,
                      double *sums_a, double *sums_b) {
    if (have_avx2())
        fa_au_group_dot2_avx2(group, input_a, input_b, sums_a, sums_b);
    else
        fa_au_group_dot2_reference(group, input_a, input_b, sums_a, sums_b);
}
