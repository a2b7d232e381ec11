#include "landmarks/validator_cnn.h"

#include <float.h>
#include <math.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FA_HAVE_AVX2_KERNELS 1
#include <immintrin.h>
#endif

void fa_validator_cnn_convolve_c(const float *input, int channels, int height, int width,
                       const float *weights, const float *bias, int kernels, int kernel_height,
                       int kernel_width, float *output)
{
    const int out_height = height - kernel_height + 1, out_width = width - kernel_width + 1;
    const size_t plane = (size_t)out_height * (size_t)out_width;
    memset(output, 0, sizeof(float) * plane * (size_t)kernels);
    /* One tap at a time over whole output planes: each output still sums its terms in the
     * documented order, and the innermost loop runs over independent outputs. */
    for (int c = 0; c < channels; c++) {
        for (int kx = 0; kx < kernel_width; kx++) {
            for (int ky = 0; ky < kernel_height; ky++) {
                const float *tap =
                    weights +
                    (size_t)((c * kernel_width + kx) * kernel_height + ky) * (size_t)kernels;
                for (int k = 0; k < kernels; k++) {
                    const float weight = tap[k];
                    float *out = output + (size_t)k * plane;
                    for (int oy = 0; oy < out_height; oy++) {
                        const float *in =
                            input +
                            ((size_t)c * (size_t)height + (size_t)(oy + ky)) * (size_t)width +
                            (size_t)kx;
                        float *out_row = out + (size_t)oy * (size_t)out_width;
                        for (int ox = 0; ox < out_width; ox++)
                            out_row[ox] += in[ox] * weight;
                    }
                }
            }
        }
    }
    for (int k = 0; k < kernels; k++) {
        float *out = output + (size_t)k * plane;
        for (size_t i = 0; i < plane; i++)
            out[i] += bias[k];
    }
}

#ifdef FA_HAVE_AVX2_KERNELS

typedef struct conv_shape {
    int channels, height, width, kernels, kernel_height, kernel_width, out_width;
    size_t plane;
} conv_shape_t;

/* Two vectors of outputs of row oy (at columns x0 and x1) for five kernels from k0 (NAME_five)
 * or for kernel k0 alone (NAME_one): each input load feeds five accumulators, each weight
 * broadcast two. Named accumulators keep everything in registers. Multiplies and adds stay
 * separate (no FMA), in the C kernel's order, so every lane equals the C kernel's bit for bit.
 * Defined for 8-lane (AVX2) and 16-lane (AVX-512) vectors. */
typedef void (*conv_block_fn)(const conv_shape_t *s, const float *input, const float *weights,
                              const float *bias, float *output, int oy, int x0, int x1, int k0);

#define DEFINE_CONV_BLOCKS(NAME, TARGET, VEC, SETZERO, LOADU, SET1, ADD, MUL, STOREU)              \
    TARGET static void NAME##_five(const conv_shape_t *s, const float *input,                     \
                                   const float *weights, const float *bias, float *output,        \
                                   int oy, int x0, int x1, int k0)                                \
    {                                                                                             \
        VEC a0 = SETZERO(), a1 = a0, a2 = a0, a3 = a0, a4 = a0;                                    \
        VEC b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0;                                          \
        for (int c = 0; c < s->channels; c++) {                                                   \
            for (int kx = 0; kx < s->kernel_width; kx++) {                                        \
                const float *tap = weights +                                                      \
                                   (size_t)((c * s->kernel_width + kx) * s->kernel_height) *      \
                                       (size_t)s->kernels +                                       \
                                   (size_t)k0;                                                    \
                const float *in = input +                                                         \
                                  ((size_t)c * (size_t)s->height + (size_t)oy) *                  \
                                      (size_t)s->width +                                          \
                                  (size_t)kx;                                                     \
                for (int ky = 0; ky < s->kernel_height; ky++, tap += s->kernels, in += s->width) { \
                    const VEC u = LOADU(in + x0), v = LOADU(in + x1);                             \
                    VEC w = SET1(tap[0]);                                                         \
                    a0 = ADD(a0, MUL(u, w));                                                      \
                    b0 = ADD(b0, MUL(v, w));                                                      \
                    w = SET1(tap[1]);                                                             \
                    a1 = ADD(a1, MUL(u, w));                                                      \
                    b1 = ADD(b1, MUL(v, w));                                                      \
                    w = SET1(tap[2]);                                                             \
                    a2 = ADD(a2, MUL(u, w));                                                      \
                    b2 = ADD(b2, MUL(v, w));                                                      \
                    w = SET1(tap[3]);                                                             \
                    a3 = ADD(a3, MUL(u, w));                                                      \
                    b3 = ADD(b3, MUL(v, w));                                                      \
                    w = SET1(tap[4]);                                                             \
                    a4 = ADD(a4, MUL(u, w));                                                      \
                    b4 = ADD(b4, MUL(v, w));                                                      \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        const VEC sums[2][5] = {{a0, a1, a2, a3, a4}, {b0, b1, b2, b3, b4}};                      \
        for (int j = 0; j < 5; j++) {                                                             \
            float *row = output + (size_t)(k0 + j) * s->plane + (size_t)oy * (size_t)s->out_width; \
            const VEC b = SET1(bias[k0 + j]);                                                     \
            STOREU(row + x0, ADD(sums[0][j], b));                                                 \
            STOREU(row + x1, ADD(sums[1][j], b));                                                 \
        }                                                                                         \
    }                                                                                             \
    TARGET static void NAME##_one(const conv_shape_t *s, const float *input, const float *weights, \
                                  const float *bias, float *output, int oy, int x0, int x1,       \
                                  int k)                                                          \
    {                                                                                             \
        VEC a = SETZERO(), b = a;                                                                 \
        for (int c = 0; c < s->channels; c++) {                                                   \
            for (int kx = 0; kx < s->kernel_width; kx++) {                                        \
                const float *tap = weights +                                                      \
                                   (size_t)((c * s->kernel_width + kx) * s->kernel_height) *      \
                                       (size_t)s->kernels +                                       \
                                   (size_t)k;                                                     \
                const float *in = input +                                                         \
                                  ((size_t)c * (size_t)s->height + (size_t)oy) *                  \
                                      (size_t)s->width +                                          \
                                  (size_t)kx;                                                     \
                for (int ky = 0; ky < s->kernel_height; ky++, tap += s->kernels, in += s->width) { \
                    const VEC w = SET1(*tap);                                                     \
                    a = ADD(a, MUL(LOADU(in + x0), w));                                           \
                    b = ADD(b, MUL(LOADU(in + x1), w));                                           \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
        float *row = output + (size_t)k * s->plane + (size_t)oy * (size_t)s->out_width;           \
        const VEC bias_k = SET1(bias[k]);                                                         \
        STOREU(row + x0, ADD(a, bias_k));                                                         \
        STOREU(row + x1, ADD(b, bias_k));                                                         \
    }

DEFINE_CONV_BLOCKS(convolve_avx2, __attribute__((target("avx2"))), __m256, _mm256_setzero_ps,
                   _mm256_loadu_ps, _mm256_set1_ps, _mm256_add_ps, _mm256_mul_ps,
                   _mm256_storeu_ps)
DEFINE_CONV_BLOCKS(convolve_wide, __attribute__((target("avx2,avx512f"))), __m512,
                   _mm512_setzero_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_add_ps,
                   _mm512_mul_ps, _mm512_storeu_ps)

/* Every output row in groups of two vectors (2 x lanes columns), the last group moved left to
 * end at the row's end: overlapping outputs are simply recomputed to the same values (no scalar
 * tail). Rows narrower than one vector take the C kernel. */
static void convolve_groups(const float *input, int channels, int height, int width,
                            const float *weights, const float *bias, int kernels,
                            int kernel_height, int kernel_width, float *output, int lanes,
                            conv_block_fn five, conv_block_fn one)
{
    const int out_height = height - kernel_height + 1, out_width = width - kernel_width + 1;
    if (out_width < lanes) {
        fa_validator_cnn_convolve_c(input, channels, height, width, weights, bias, kernels,
                                    kernel_height, kernel_width, output);
        return;
    }
    const conv_shape_t shape = {
        channels,      height,       width,     kernels,
        kernel_height, kernel_width, out_width, (size_t)out_height * (size_t)out_width};
    const int group = 2 * lanes, last = out_width >= group ? out_width - group : 0;
    for (int oy = 0; oy < out_height; oy++) {
        for (int ox = 0; ox < out_width; ox += group) {
            const int x0 = ox < last ? ox : last;
            const int x1 = x0 + lanes <= out_width - lanes ? x0 + lanes : out_width - lanes;
            int k = 0;
            for (; k + 5 <= kernels; k += 5)
                five(&shape, input, weights, bias, output, oy, x0, x1, k);
            for (; k < kernels; k++)
                one(&shape, input, weights, bias, output, oy, x0, x1, k);
        }
    }
}

static void convolve_avx2(const float *input, int channels, int height, int width,
                          const float *weights, const float *bias, int kernels, int kernel_height,
                          int kernel_width, float *output)
{
    convolve_groups(input, channels, height, width, weights, bias, kernels, kernel_height,
                    kernel_width, output, 8, convolve_avx2_five, convolve_avx2_one);
}

/* Sixteen lanes a vector (AVX-512 F); rows narrower than sixteen take the AVX2 blocks. */
static void convolve_wide(const float *input, int channels, int height, int width,
                          const float *weights, const float *bias, int kernels, int kernel_height,
                          int kernel_width, float *output)
{
    if (width - kernel_width + 1 < 16)
        convolve_avx2(input, channels, height, width, weights, bias, kernels, kernel_height,
                      kernel_width, output);
    else
        convolve_groups(input, channels, height, width, weights, bias, kernels, kernel_height,
                        kernel_width, output, 16, convolve_wide_five, convolve_wide_one);
}

fa_validator_cnn_convolve_fn fa_validator_cnn_convolve_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? convolve_avx2 : NULL;
}

fa_validator_cnn_convolve_fn fa_validator_cnn_convolve_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f") ? convolve_wide
                                                                               : NULL;
}

#else

fa_validator_cnn_convolve_fn fa_validator_cnn_convolve_avx2(void)
{
    return NULL;
}

fa_validator_cnn_convolve_fn fa_validator_cnn_convolve_avx512(void)
{
    return NULL;
}

#endif

void fa_validator_cnn_relu(float *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        values[i] = values[i] > 0.0f ? values[i] : 0.0f;
}

static int pooled_side(int side)
{
    /* OpenFace rounds (float, half away from zero) to mimic Caffe's ceil. */
    const int pooled = (int)roundf((float)(side - 2) / 2.0f) + 1;
    return pooled > 0 ? pooled : 0;
}

void fa_validator_cnn_max_pool(const float *input, int planes, int height, int width, float *output,
                     int *output_height, int *output_width)
{
    const int out_height = pooled_side(height), out_width = pooled_side(width);
    for (int p = 0; p < planes; p++) {
        const float *in = input + (size_t)p * (size_t)height * (size_t)width;
        float *out = output + (size_t)p * (size_t)out_height * (size_t)out_width;
        for (int oy = 0; oy < out_height; oy++) {
            const int y_end = 2 * oy + 2 < height ? 2 * oy + 2 : height;
            for (int ox = 0; ox < out_width; ox++) {
                const int x_end = 2 * ox + 2 < width ? 2 * ox + 2 : width;
                float best = -FLT_MAX; /* OpenFace starts from -FLT_MAX */
                for (int y = 2 * oy; y < y_end; y++)
                    for (int x = 2 * ox; x < x_end; x++) {
                        const float value = in[(size_t)y * (size_t)width + (size_t)x];
                        if (value > best) best = value;
                    }
                out[(size_t)oy * (size_t)out_width + (size_t)ox] = best;
            }
        }
    }
    *output_height = out_height;
    *output_width = out_width;
}

void fa_validator_cnn_fully_connected(const float *input, int inputs, const float *weights, const float *bias,
                            int outputs, float *output)
{
    for (int o = 0; o < outputs; o++)
        output[o] = 0.0f;
    for (int i = 0; i < inputs; i++) {
        const float value = input[i];
        const float *row = weights + (size_t)i * (size_t)outputs;
        for (int o = 0; o < outputs; o++)
            output[o] += value * row[o];
    }
    for (int o = 0; o < outputs; o++)
        output[o] += bias[o];
}
