/* Response kernels of the CCNF experts: a plain C reference and AVX2 / AVX-512 versions that give
 * the same bits. Internal to src/landmarks/.
 *
 * All follow OpenFace's ResponseOpenBlas operation by operation (LANDMARKS_SPEC §2.5, §2.6), with
 * the rounding of OpenBLAS 0.3.21's SkylakeX kernels, which made the reference outputs
 * (docs/FIDELITY.md):
 * - per position, the 11x11 window summed in row-major order, mean = sum / 121, centred values and
 *   their squares summed in column-major order, scaled by (float)(1.0 / sqrt(sum_sq));
 * - each neuron's activation as that sgemm computes it (fa_ccnf_activation): one chain of fused
 *   multiply-adds, or for the last position of windows 9 and 7, 16 lanes added at the end;
 * - the sigmoids added in double and rounded to float after each neuron (glibc exp);
 * - Sigma times the map as that sgemm computes it (fa_ccnf_sigma_order: 16 lanes from W² = 32 up,
 *   one chain below), then the shift that makes the minimum 0 when it is negative.
 * tests/test_openblas_ccnf.c compares every kernel with the library itself. */
#ifndef FACEAU_LANDMARKS_CCNF_KERNELS_H
#define FACEAU_LANDMARKS_CCNF_KERNELS_H

#include <math.h>

#include "core/sgemm_order.h"
#include "landmarks/ccnf.h"

/* raw = the W x W map (row-major) before the Sigma product. area has side W + 10. */
void fa_ccnf_raw_reference(const fa_ccnf_expert_t *expert, int window, const float *area,
                           float *raw, fa_ccnf_workspace_t *workspace);
/* out = Sigma * raw, then shifted so that its minimum is not negative. n = W². */
void fa_ccnf_sigma_reference(const float *sigma_transposed, int stride, int n, const float *raw,
                             float *out);

int fa_ccnf_avx2_supported(void);
/* AVX2, FMA, AVX-512 F and VL: the wide paths of the kernels below. */
int fa_ccnf_avx512_supported(void);
void fa_ccnf_raw_avx2(const fa_ccnf_expert_t *expert, int window, const float *area, float *raw,
                      fa_ccnf_workspace_t *workspace);
/* fa_ccnf_raw_avx2 computes two lane groups of eight positions in one 16-lane vector where the
 * CPU has AVX-512 (F, VL); this is the AVX2 path other CPUs take. */
void fa_ccnf_raw_avx2_narrow(const fa_ccnf_expert_t *expert, int window, const float *area,
                             float *raw, fa_ccnf_workspace_t *workspace);
void fa_ccnf_sigma_avx2(const float *sigma_transposed, int stride, int n, const float *raw,
                        float *out);
/* fa_ccnf_sigma_avx2 takes 16 outputs a vector where the CPU has AVX-512 (F, VL); this is the AVX2
 * path other CPUs take. */
void fa_ccnf_sigma_avx2_narrow(const float *sigma_transposed, int stride, int n, const float *raw,
                               float *out);
/* For 8 lanes, response[l] = the fa_ccnf_add_sigmoid chain over neurons k < count with
 * alphas[k] > 1e-4 of activations z[k * z_stride + l], bit for bit. 16-byte aligned. */
void fa_ccnf_sigmoid_sums_avx2(const double *alphas, int count, const float *z, int z_stride,
                               float *response);
/* The same in one AVX-512 vector of eight doubles (fa_ccnf_avx512_supported); 32-byte aligned. */
void fa_ccnf_sigmoid_sums_wide(const double *alphas, int count, const float *z, int z_stride,
                               float *response);

/* Where warpAffine reads each pixel of an area of interest: pixel (u, v) of the side x side
 * area comes from (row_x[v] + x_step[u], row_y[v] + y_step[u]) in fixed point with AB_BITS = 10
 * fractional bits, the rounding delta included. Steps past side are 0, so that whole vectors
 * of columns can be read. */
typedef struct fa_ccnf_area_map {
    int side;
    int row_x[FA_CCNF_MAX_AREA], row_y[FA_CCNF_MAX_AREA];
    int x_step[FA_CCNF_AREA_STEPS], y_step[FA_CCNF_AREA_STEPS];
} fa_ccnf_area_map_t;

/* The map of fa_ccnf_sample_area's (a, b, x, y, side); side <= FA_CCNF_MAX_AREA. */
void fa_ccnf_area_map(float a, float b, float x, float y, int side, fa_ccnf_area_map_t *map);
/* The area from its map: plain C, and AVX2 (gathers, the plain pixel code near the border). */
void fa_ccnf_sample_map_reference(const uint8_t *image, int width, int height, ptrdiff_t stride,
                                  const fa_ccnf_area_map_t *map, float *area);
void fa_ccnf_sample_map_avx2(const uint8_t *image, int width, int height, ptrdiff_t stride,
                             const fa_ccnf_area_map_t *map, float *area);

/* One pixel of the area at fixed-point source position (x, y): the four neighbours (0 outside
 * the image) weighted by the 1/32 px fractions. Every product and partial sum is a multiple of
 * 1/1024 below 2^8, so exact in float: any order of the additions gives these bits. */
static inline float fa_ccnf_sample_pixel(const uint8_t *image, int width, int height,
                                         ptrdiff_t stride, int x, int y) {
    enum { INTER_BITS = 5, INTER_TAB_SIZE = 1 << INTER_BITS, FIXED_SHIFT = 10 - INTER_BITS };
    int fixed_x = x >> FIXED_SHIFT, fixed_y = y >> FIXED_SHIFT; /* arithmetic, as OpenCV's */
    int sx = fixed_x >> INTER_BITS, sy = fixed_y >> INTER_BITS;
    float fx = (float)(fixed_x & (INTER_TAB_SIZE - 1)) / INTER_TAB_SIZE;
    float fy = (float)(fixed_y & (INTER_TAB_SIZE - 1)) / INTER_TAB_SIZE;
    float w0 = (1.0f - fy) * (1.0f - fx), w1 = (1.0f - fy) * fx;
    float w2 = fy * (1.0f - fx), w3 = fy * fx;
    if (sx >= 0 && sy >= 0 && sx < width - 1 && sy < height - 1) {
        const uint8_t *p = image + sy * stride + sx;
        return (float)p[0] * w0 + (float)p[1] * w1 + (float)p[stride] * w2 +
               (float)p[stride + 1] * w3;
    }
    if (sx >= width || sx + 1 < 0 || sy >= height || sy + 1 < 0) return 0.0f;
    float corner[4];
    for (int k = 0; k < 4; k++) {
        int cx = sx + (k & 1), cy = sy + (k >> 1);
        corner[k] = cx >= 0 && cy >= 0 && cx < width && cy < height ? image[cy * stride + cx] : 0;
    }
    return corner[0] * w0 + corner[1] * w1 + corner[2] * w2 + corner[3] * w3;
}

/* A neuron's activation z = bias + sum_t w[t] x[t] (w[0] the bias, x the 121 normalised inputs)
 * summed as sgemm does it: OpenFace's sgemm has the positions as rows (M = W², numbered
 * column-major: x W + y), the neurons as columns and K = 122 inputs, a constant 1 first. The
 * chain starts as fmaf(1, bias, 0), which is bias + 0. */
static inline float fa_ccnf_activation(const float *w, const float *x, fa_sgemm_order order) {
    enum { K = FA_CCNF_INPUTS };
    if (order == FA_SGEMM_CHAIN) {
        float z = w[0] + 0.0f;
        for (int t = 1; t < K; t++)
            z = fmaf(x[t - 1], w[t], z);
        return z;
    }
    float lane[16] = {w[0] + 0.0f};
    for (int t = 1; t < K; t++)
        lane[t % 16] = fmaf(x[t - 1], w[t], lane[t % 16]);
    return fa_sgemm_lanes_sum(lane, order);
}

/* The order of the activation of neuron k of count at the position of OpenBLAS row p (x W + y). */
static inline fa_sgemm_order fa_ccnf_activation_order(int p, int window, int k, int count) {
    return fa_sgemm_small_order(p, window * window, k, count, FA_CCNF_INPUTS);
}

/* The order of output i of the Sigma product: OpenFace's sgemm has raw as a 1 x W² A and Sigma as
 * B, so C(0, i) = sum_t raw[t] Sigma[i][t] with rows = 1, columns = k = W². */
static inline fa_sgemm_order fa_ccnf_sigma_order(int i, int n) {
    return fa_sgemm_small_order(0, 1, i, n, n);
}

/* One neuron's contribution added to a response value: 2 alpha / (1 + e^-z) in double (glibc's
 * exp, as OpenFace's build calls the double overload), the sum rounded to float. */
static inline float fa_ccnf_add_sigmoid(float response, double alpha, float activation) {
    return (float)((double)response + (2.0 * alpha) / (1.0 + exp(-(double)activation)));
}

#endif
