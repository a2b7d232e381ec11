/* Response kernels of the CCNF experts: a plain C reference and an AVX2 version that gives the same
 * bits. Internal to src/landmarks/.
 *
 * Both follow OpenFace's ResponseOpenBlas operation by operation (LANDMARKS_SPEC §2.5, §2.6):
 * - per position, the 11x11 window summed in row-major order, mean = sum / 121, centred values and
 *   their squares summed in column-major order, scaled by (float)(1.0 / sqrt(sum_sq));
 * - each neuron's activation as OpenBLAS 0.3.21's sgemm (Haswell kernels, the ones Debian's
 *   DYNAMIC_ARCH build runs on these CPUs) computes it, see fa_ccnf_activation;
 * - the sigmoids added in double and rounded to float after each neuron (glibc exp);
 * - Sigma times the map as sgemm does (fused multiply-adds in column order), then the shift that
 *   makes the minimum 0 when it is negative. */
#ifndef FACEAU_LANDMARKS_CCNF_KERNELS_H
#define FACEAU_LANDMARKS_CCNF_KERNELS_H

#include <math.h>

#include "landmarks/ccnf.h"

/* raw = the W x W map (row-major) before the Sigma product. area has side W + 10. */
void fa_ccnf_raw_reference(const fa_ccnf_expert_t *expert, int window, const float *area,
                           float *raw, fa_ccnf_workspace_t *workspace);
/* out = Sigma * raw, then shifted so that its minimum is not negative. n = W². */
void fa_ccnf_sigma_reference(const float *sigma_transposed, int stride, int n, const float *raw,
                             float *out);

int fa_ccnf_avx2_supported(void);
void fa_ccnf_raw_avx2(const fa_ccnf_expert_t *expert, int window, const float *area, float *raw,
                      fa_ccnf_workspace_t *workspace);
void fa_ccnf_sigma_avx2(const float *sigma_transposed, int stride, int n, const float *raw,
                        float *out);
/* The same in passes of 32 rows, as on CPUs without AVX-512VL (fa_ccnf_sigma_avx2 takes one
 * pass over Sigma with its 32 registers). */
void fa_ccnf_sigma_avx2_narrow(const float *sigma_transposed, int stride, int n, const float *raw,
                               float *out);
/* For 8 lanes, response[l] = the fa_ccnf_add_sigmoid chain over neurons k < count with
 * alphas[k] > 1e-4 of activations z[k * z_stride + l], bit for bit. 16-byte aligned. */
void fa_ccnf_sigmoid_sums_avx2(const double *alphas, int count, const float *z, int z_stride,
                               float *response);

/* A neuron's activation z = bias + sum_t w[t] x[t] (w[0] the bias, x the 121 normalised inputs)
 * with OpenBLAS's rounding. sgemm sees positions as rows (M = W²), neurons as columns (N) and
 * inputs as K = 122 (a constant 1 first). Its 4-column micro-kernel, which takes neurons 0-3,
 * accumulates each 8-input chunk of K alternately into two accumulators (even and odd inputs) with
 * fused multiply-adds, the last K mod 8 inputs into the even one, and adds the two at the end; the
 * narrower kernels for the remaining neurons, and the 1-row kernel for the last position of an
 * odd W², accumulate in one register, input after input. Found by comparing with the library. */
static inline float fa_ccnf_activation(const float *w, const float *x, int paired) {
    enum { K = 1 + 11 * 11, K_MAIN = K / 8 * 8 };
    if (!paired) {
        float z = w[0];
        for (int t = 1; t < K; t++)
            z = fmaf(x[t - 1], w[t], z);
        return z;
    }
    float even = w[0], odd = 0;
    for (int t = 1; t < K_MAIN; t += 2) {
        odd = fmaf(x[t - 1], w[t], odd);
        if (t + 1 < K_MAIN) even = fmaf(x[t], w[t + 1], even);
    }
    for (int t = K_MAIN; t < K; t++)
        even = fmaf(x[t - 1], w[t], even);
    return even + odd;
}

/* The activations of all count neurons with one accumulator each (OpenBLAS's 1-row kernel, the
 * last position of an odd W²): the same chains as fa_ccnf_activation(w, x, 0), interleaved so that
 * they do not wait on each other's latency. */
static inline void fa_ccnf_activations_single(const float *weights, int count, const float *x,
                                              float *z) {
    enum { K = 1 + 11 * 11, CHAINS = 8 };
    for (int k0 = 0; k0 < count; k0 += CHAINS) {
        /* eight chains in registers; past the last neuron they repeat neuron k0, unused */
        const float *w[CHAINS];
        float chain[CHAINS];
        for (int c = 0; c < CHAINS; c++) {
            w[c] = weights + (size_t)(k0 + c < count ? k0 + c : k0) * K;
            chain[c] = w[c][0];
        }
        for (int t = 1; t < K; t++)
            for (int c = 0; c < CHAINS; c++)
                chain[c] = fmaf(x[t - 1], w[c][t], chain[c]);
        for (int k = k0; k < count && k < k0 + CHAINS; k++)
            z[k] = chain[k - k0];
    }
}

/* Whether neuron k of count at position p of W² uses the paired accumulation. */
static inline int fa_ccnf_paired(int k, int count, int position, int positions) {
    return k < (count & ~3) && !(position == positions - 1 && (positions & 1));
}

/* One neuron's contribution added to a response value: 2 alpha / (1 + e^-z) in double (glibc's
 * exp, as OpenFace's build calls the double overload), the sum rounded to float. */
static inline float fa_ccnf_add_sigmoid(float response, double alpha, float activation) {
    return (float)((double)response + (2.0 * alpha) / (1.0 + exp(-(double)activation)));
}

#endif
