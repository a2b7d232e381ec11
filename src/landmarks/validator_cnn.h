/* The layers of the detection validator's CNN (LANDMARKS_SPEC §4.6, PIPELINE_SPEC §1.2), on
 * float32 planes stored row-major, one plane after another.
 *
 * Every kernel fixes the order in which it adds its terms, and the SIMD variants vectorise only
 * across independent outputs, so all variants give bit-identical results on every machine.
 * (OpenFace's own numbers come from OpenBLAS's sgemm, whose blocking and FMAs no portable code
 * reproduces; the validator only keeps the argmax of the last layer, which this does not move.) */
#ifndef FACEAU_LANDMARKS_VALIDATOR_CNN_H
#define FACEAU_LANDMARKS_VALIDATOR_CNN_H

#include <stddef.h>

/* Valid cross-correlation, stride 1, summed over the input planes, plus a bias per kernel:
 *   output[k][oy][ox] = Σ_c Σ_kx Σ_ky input[c][oy + ky][ox + kx] · w(c, kx, ky, k)  + bias[k]
 * with the sum taken in that order (c outer, then kx, then ky; the order of OpenFace's im2col)
 * and the bias added last. weights is (channels·kernel_width·kernel_height) × kernels, row-major,
 * row (c·kernel_width + kx)·kernel_height + ky. The output planes are
 * (height − kernel_height + 1) × (width − kernel_width + 1). */
typedef void (*fa_validator_cnn_convolve_fn)(const float *input, int channels, int height, int width,
                                   const float *weights, const float *bias, int kernels,
                                   int kernel_height, int kernel_width, float *output);

void fa_validator_cnn_convolve_c(const float *input, int channels, int height, int width,
                       const float *weights, const float *bias, int kernels, int kernel_height,
                       int kernel_width, float *output);

/* The AVX2 variant (bit-identical to the C one), or NULL when this build or CPU lacks AVX2. */
fa_validator_cnn_convolve_fn fa_validator_cnn_convolve_avx2(void);
/* The same blocks in AVX-512 vectors; NULL without AVX-512 F. */
fa_validator_cnn_convolve_fn fa_validator_cnn_convolve_avx512(void);

/* max(x, 0) in place. */
void fa_validator_cnn_relu(float *values, size_t count);

/* Max-pooling, kernel 2, stride 2, as OpenFace's max_pooling: the output side is
 * round((side − 2) / 2) + 1, windows at the right and bottom border may be partial.
 * Returns the output size through output_height and output_width. */
void fa_validator_cnn_max_pool(const float *input, int planes, int height, int width, float *output,
                     int *output_height, int *output_width);

/* output[o] = Σ_i input[i] · weights[i][o] + bias[o] (i ascending, bias last); weights is
 * inputs × outputs, row-major, as OpenFace's files store it. */
void fa_validator_cnn_fully_connected(const float *input, int inputs, const float *weights, const float *bias,
                            int outputs, float *output);

#endif
