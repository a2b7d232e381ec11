/* AVX2 + FMA kernels for the MTCNN networks. They keep the reference's order of operations (see
 * cnn.h), so their results equal it bit for bit; the speed comes from 4 outputs x 16 pixels
 * (convolution) or 8 outputs (fully connected) per instruction stream. */
#include "detect/cnn.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FA_HAVE_X86 1
#endif

int fa_cnn_have_avx2(void) {
#if FA_HAVE_X86
    /* No cached flag: a plain static written on first use would be a data race between threads.
     * __builtin_cpu_init returns at once after the first call. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#if FA_HAVE_X86
#define FA_TARGET __attribute__((target("avx2,fma")))

/* Sums columns [start, end) for 4 outputs at 16 positions: a = the input at base + offset,
 * weights 4 per column. */
static inline FA_TARGET void panel(const float *base, const int32_t *offsets, const float *weights,
                                   int start, int end, __m256 sum[8]) {
    for (int j = 0; j < 8; j++)
        sum[j] = _mm256_setzero_ps();
    for (int column = start; column < end; column++) {
        const float *a = base + offsets[column];
        const float *w = weights + (size_t)column * 4;
        __m256 a0 = _mm256_loadu_ps(a), a1 = _mm256_loadu_ps(a + 8);
        __m256 b = _mm256_broadcast_ss(w);
        sum[0] = _mm256_fmadd_ps(a0, b, sum[0]), sum[1] = _mm256_fmadd_ps(a1, b, sum[1]);
        b = _mm256_broadcast_ss(w + 1);
        sum[2] = _mm256_fmadd_ps(a0, b, sum[2]), sum[3] = _mm256_fmadd_ps(a1, b, sum[3]);
        b = _mm256_broadcast_ss(w + 2);
        sum[4] = _mm256_fmadd_ps(a0, b, sum[4]), sum[5] = _mm256_fmadd_ps(a1, b, sum[5]);
        b = _mm256_broadcast_ss(w + 3);
        sum[6] = _mm256_fmadd_ps(a0, b, sum[6]), sum[7] = _mm256_fmadd_ps(a1, b, sum[7]);
    }
}

FA_TARGET void fa_cnn_convolution_avx2(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                                       fa_tensor_t *out, float *scratch) {
    /* Computing on the input's grid (row stride = input width) turns every im2col column into a
     * shifted view of an input map; the columns past the output width are dropped afterwards. */
    const int kh = layer->kernel_height, kw = layer->kernel_width;
    const int data_columns = layer->inputs * kh * kw, columns = data_columns + 1;
    const size_t plane = (size_t)in->height * (size_t)in->width;
    const size_t positions = (size_t)out->height * (size_t)in->width;
    const size_t stride = (positions + 15) / 16 * 16;
    const int groups = layer->padded_outputs / 4;
    int32_t *offsets = (int32_t *)(scratch + (size_t)layer->padded_outputs * stride);
    for (int c = 0, i = 0; c < layer->inputs; c++)
        for (int xx = 0; xx < kw; xx++)
            for (int yy = 0; yy < kh; yy++)
                offsets[i++] = (int32_t)((size_t)c * plane + (size_t)(yy * in->width + xx));
    const int small = fa_cnn_sgemm_is_small(layer->outputs, out->height * out->width, columns);
    float bias[4];
    for (int g = 0; g < groups; g++) {
        const float *weights = layer->weights_by_input + (size_t)g * (size_t)data_columns * 4;
        for (int j = 0; j < 4; j++)
            bias[j] = 4 * g + j < layer->outputs ? layer->bias[4 * g + j] : 0.0f;
        float *wide = scratch + (size_t)(4 * g) * stride;
        for (size_t p = 0; p < positions; p += 16) {
            const float *base = in->data + p;
            __m256 total[8], sum[8];
            for (int j = 0; j < 8; j++)
                total[j] = _mm256_setzero_ps();
            /* OpenBLAS's panels (one for the small kernel), each added to the zeroed output; the
             * bias is the last column of the last one. */
            for (int start = 0; start < columns;) {
                int end = start + fa_cnn_next_panel(small, columns - start);
                panel(base, offsets, weights, start, end < data_columns ? end : data_columns, sum);
                if (end == columns)
                    for (int j = 0; j < 8; j++)
                        sum[j] = _mm256_add_ps(sum[j], _mm256_set1_ps(bias[j / 2]));
                for (int j = 0; j < 8; j++)
                    total[j] = small ? sum[j] : _mm256_add_ps(total[j], sum[j]);
                start = end;
            }
            for (int j = 0; j < 4; j++) {
                _mm256_storeu_ps(wide + (size_t)j * stride + p, total[2 * j]);
                _mm256_storeu_ps(wide + (size_t)j * stride + p + 8, total[2 * j + 1]);
            }
        }
    }
    for (int c = 0; c < out->channels; c++)
        for (int y = 0; y < out->height; y++)
            memcpy(out->data + ((size_t)c * (size_t)out->height + (size_t)y) * (size_t)out->width,
                   scratch + (size_t)c * stride + (size_t)y * (size_t)in->width,
                   sizeof(float) * (size_t)out->width);
}

/* Even lanes of 16 floats at p: p[0], p[2], ..., p[14]. */
static inline FA_TARGET __m256 load_even(const float *p) {
    __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    __m256 mixed = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(mixed), _MM_SHUFFLE(3, 1, 2, 0)));
}

FA_TARGET int fa_cnn_max_pool_row_avx2(const float *row, int width, int kernel_width,
                                       int kernel_height, int rows, int out_width, float *dst) {
    /* Outputs whose horizontal stride-2 windows lie inside the row, 8 at a time, with the
     * scalar rule per lane: scan x outer, y inner, replace the best only if strictly greater. */
    int ox = 0;
    (void)kernel_height;
    for (; ox + 8 <= out_width && 2 * (ox + 7) + kernel_width + 1 <= width; ox += 8) {
        __m256 best = _mm256_set1_ps(-3.402823466e+38f);
        for (int x = 0; x < kernel_width; x++)
            for (int y = 0; y < rows; y++) {
                __m256 v = load_even(row + (size_t)y * (size_t)width + (size_t)(2 * ox + x));
                best = _mm256_blendv_ps(best, v, _mm256_cmp_ps(v, best, _CMP_GT_OQ));
            }
        _mm256_storeu_ps(dst + ox, best);
    }
    return ox;
}

FA_TARGET void fa_cnn_prelu_avx2(float *data, size_t count, float slope) {
    const __m256 zero = _mm256_setzero_ps(), s = _mm256_set1_ps(slope);
    size_t i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 v = _mm256_loadu_ps(data + i);
        __m256 keep = _mm256_cmp_ps(v, zero, _CMP_GE_OQ);
        _mm256_storeu_ps(data + i, _mm256_blendv_ps(_mm256_mul_ps(v, s), v, keep));
    }
    for (; i < count; i++)
        data[i] = data[i] >= 0.0f ? data[i] : data[i] * slope;
}

/* Eight of the small kernel's 16 lanes (first_lane to first_lane + 7) for 8 outputs from o:
 * lane l sums the inputs i = l mod 16, in order. */
static inline FA_TARGET void eight_lanes(const fa_cnn_layer_t *layer, const float *x, int o,
                                         int first_lane, __m256 lanes[8]) {
    const int n = layer->inputs;
    const size_t padded = (size_t)layer->padded_outputs;
    const float *w = layer->weights_by_input + (size_t)o;
    for (int l = 0; l < 8; l++)
        lanes[l] = _mm256_setzero_ps();
    int i = first_lane;
    for (; i + 8 <= n; i += 16)
        for (int l = 0; l < 8; l++)
            lanes[l] = _mm256_fmadd_ps(_mm256_set1_ps(x[i + l]),
                                       _mm256_loadu_ps(w + (size_t)(i + l) * padded), lanes[l]);
    for (int l = 0; l < 8 && i + l < n; l++)
        lanes[l] = _mm256_fmadd_ps(_mm256_set1_ps(x[i + l]),
                                   _mm256_loadu_ps(w + (size_t)(i + l) * padded), lanes[l]);
}

/* OpenBLAS's small kernel with 16 lanes per output (M = 1, inputs >= 32), 8 outputs at a time,
 * the lanes added across registers in the reference's two orders. */
static FA_TARGET void fully_connected_lanes(const fa_cnn_layer_t *layer, const float *x,
                                            float *out) {
    const int quads_end = layer->outputs & ~3; /* later outputs add their lanes by halves */
    for (int o = 0; o < layer->padded_outputs; o += 8) {
        __m256 low[8], high[8];
        eight_lanes(layer, x, o, 0, low);
        eight_lanes(layer, x, o, 8, high);
        __m256 q0 = _mm256_add_ps(_mm256_add_ps(low[0], low[1]), _mm256_add_ps(low[2], low[3]));
        __m256 q1 = _mm256_add_ps(_mm256_add_ps(low[4], low[5]), _mm256_add_ps(low[6], low[7]));
        __m256 q2 = _mm256_add_ps(_mm256_add_ps(high[0], high[1]), _mm256_add_ps(high[2], high[3]));
        __m256 q3 = _mm256_add_ps(_mm256_add_ps(high[4], high[5]), _mm256_add_ps(high[6], high[7]));
        __m256 sum = _mm256_add_ps(_mm256_add_ps(q0, q1), _mm256_add_ps(q2, q3));
        if (o + 8 > quads_end) {
            __m256 four[4];
            for (int l = 0; l < 4; l++)
                four[l] = _mm256_add_ps(_mm256_add_ps(high[l + 4], low[l + 4]),
                                        _mm256_add_ps(high[l], low[l]));
            __m256 halves =
                _mm256_add_ps(_mm256_add_ps(four[0], four[2]), _mm256_add_ps(four[1], four[3]));
            __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            __m256 by_halves = _mm256_castsi256_ps(_mm256_cmpgt_epi32(
                _mm256_add_epi32(lane, _mm256_set1_epi32(o)), _mm256_set1_epi32(quads_end - 1)));
            sum = _mm256_blendv_ps(sum, halves, by_halves);
        }
        const int count = layer->outputs - o < 8 ? layer->outputs - o : 8;
        float lanes[8] = {0};
        memcpy(lanes, layer->bias + o, sizeof(float) * (size_t)count);
        _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_loadu_ps(lanes), sum)); /* beta = 1 */
        memcpy(out + o, lanes, sizeof(float) * (size_t)count);
    }
}

FA_TARGET void fa_cnn_fully_connected_avx2(const fa_cnn_layer_t *layer, const float *x,
                                           float *out) {
    const int n = layer->inputs, padded = layer->padded_outputs;
    const int small = fa_cnn_sgemm_is_small(1, layer->outputs, n);
    if (small && fa_cnn_sgemm_uses_lanes(1, n, 0)) {
        fully_connected_lanes(layer, x, out);
        return;
    }
    /* One accumulator per panel (a single panel for the small kernel), added to the bias. */
    for (int o = 0; o < padded; o += 8) {
        const int count = layer->outputs - o < 8 ? layer->outputs - o : 8;
        float lanes[8] = {0};
        memcpy(lanes, layer->bias + o, sizeof(float) * (size_t)count);
        __m256 total = _mm256_loadu_ps(lanes); /* OpenCV passes the bias as C, beta = 1 */
        for (int start = 0; start < n;) {
            int end = start + fa_cnn_next_panel(small, n - start);
            __m256 sum = _mm256_setzero_ps();
            for (int i = start; i < end; i++)
                sum = _mm256_fmadd_ps(_mm256_set1_ps(x[i]),
                                      _mm256_loadu_ps(layer->weights_by_input +
                                                      (size_t)i * (size_t)padded + (size_t)o),
                                      sum);
            total = _mm256_add_ps(sum, total);
            start = end;
        }
        _mm256_storeu_ps(lanes, total);
        memcpy(out + o, lanes, sizeof(float) * (size_t)count);
    }
}

#else
int fa_cnn_max_pool_row_avx2(const float *row, int width, int kernel_width, int kernel_height,
                             int rows, int out_width, float *dst) {
    (void)row, (void)width, (void)kernel_width, (void)kernel_height, (void)rows, (void)out_width,
        (void)dst;
    return 0;
}
void fa_cnn_prelu_avx2(float *data, size_t count, float slope) {
    (void)data, (void)count, (void)slope;
}
void fa_cnn_convolution_avx2(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                             float *scratch) {
    (void)layer, (void)in, (void)out, (void)scratch;
}
void fa_cnn_fully_connected_avx2(const fa_cnn_layer_t *layer, const float *x, float *out) {
    (void)layer, (void)x, (void)out;
}
#endif
