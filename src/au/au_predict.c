/* The linear SVR/SVM kernels: (input) x (stacked support vectors), OpenFace's cv::gemm of a
 * 1 x 4702 row by a 4702 x K matrix. Each sum is accumulated from zero in feature order, which
 * is how OpenCV's gemm sums a row-by-matrix product; models are interleaved by four so that the
 * four sums are independent (and vectorisable) without reordering any single sum. */
#include "au/au_internal.h"

void fa_au_group_dot(const fa_au_group_t *group, const double *input, double *sums) {
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

void fa_au_group_dot2(const fa_au_group_t *group, const double *input_a, const double *input_b,
                      double *sums_a, double *sums_b) {
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
