/* AVX2 + FMA response kernels. Each lane performs exactly the scalar operations of the reference
 * kernels (ccnf_kernels.h), so the results are bit-identical: the lanes are 8 neighbouring
 * positions of one response row, the area copied into a zero-padded buffer so that every lane can
 * be loaded at once (lanes past the window are computed and dropped). */
#include "landmarks/ccnf_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx2,fma")))

enum { S = FA_CCNF_SUPPORT, PIXELS = S * S, PAD_STRIDE = 32, LANES = 8 };

int fa_ccnf_avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

/* Normalised inputs of 8 positions, one vector per input index t (column-major within the 11x11
 * window). The lanes run along a row from (x0, y0) (down_column = 0: padded holds the area
 * row-major) or down a column (down_column = 1: padded holds it transposed); either way every
 * lane sums its own window in the same order. */
TARGET static inline __attribute__((always_inline)) void
normalise_lanes(const float *padded, int down_column, int x0, int y0, __m256 *input) {
#define AT(yy, xx)                                                                              \
    (down_column ? padded + (x0 + (xx)) * PAD_STRIDE + y0 + (yy)                                \
                 : padded + (y0 + (yy)) * PAD_STRIDE + x0 + (xx))
    __m256 sum = _mm256_setzero_ps();
    for (int yy = 0; yy < S; yy++)
        for (int xx = 0; xx < S; xx++)
            sum = _mm256_add_ps(sum, _mm256_loadu_ps(AT(yy, xx)));
    __m256 mean = _mm256_div_ps(sum, _mm256_set1_ps((float)PIXELS));
    __m256 sum_sq = _mm256_setzero_ps();
    for (int xx = 0; xx < S; xx++)
        for (int yy = 0; yy < S; yy++) {
            __m256 value = _mm256_loadu_ps(AT(yy, xx));
            __m256 centred = _mm256_sub_ps(value, mean);
            input[xx * S + yy] = centred;
            sum_sq = _mm256_add_ps(sum_sq, _mm256_mul_ps(centred, centred));
        }
#undef AT
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 norm = _mm256_sqrt_ps(sum_sq);
    norm = _mm256_blendv_ps(norm, one, _mm256_cmp_ps(norm, _mm256_setzero_ps(), _CMP_EQ_OQ));
    /* (float)(1.0 / norm) in double equals the correctly rounded float quotient. */
    __m256 scale = _mm256_div_ps(one, norm);
    for (int t = 0; t < PIXELS; t++)
        input[t] = _mm256_mul_ps(input[t], scale);
}

/* Activations with OpenBLAS's accumulation (fa_ccnf_activation): `paired` neurons with an even and
 * an odd accumulator over the first K_MAIN inputs, the others with one. The counts are
 * compile-time constants after inlining, so the accumulators stay in registers. */
TARGET static inline __attribute__((always_inline)) void
activations(const float *weights, int paired, int single, const __m256 *input, __m256 *z) {
    enum { K = FA_CCNF_INPUTS, K_MAIN = K / 8 * 8 };
    __m256 even[4], odd[4], one[8];
    for (int k = 0; k < paired; k++) {
        even[k] = _mm256_set1_ps(weights[k * K]);
        odd[k] = _mm256_setzero_ps();
    }
    for (int k = 0; k < single; k++)
        one[k] = _mm256_set1_ps(weights[(paired + k) * K]);
    for (int t = 1; t < K; t++) {
        for (int k = 0; k < paired; k++) {
            __m256 w = _mm256_broadcast_ss(weights + k * K + t);
            if (t < K_MAIN && (t & 1))
                odd[k] = _mm256_fmadd_ps(input[t - 1], w, odd[k]);
            else
                even[k] = _mm256_fmadd_ps(input[t - 1], w, even[k]);
        }
        for (int k = 0; k < single; k++)
            one[k] = _mm256_fmadd_ps(input[t - 1],
                                     _mm256_broadcast_ss(weights + (paired + k) * K + t), one[k]);
    }
    for (int k = 0; k < paired; k++)
        z[k] = _mm256_add_ps(even[k], odd[k]);
    for (int k = 0; k < single; k++)
        z[paired + k] = one[k];
}

/* The responses of `lanes` positions: along row y0 from x0, or down column x0 from y0. */
TARGET static inline __attribute__((always_inline)) void
respond_lanes(const fa_ccnf_expert_t *expert, int window, const float *padded, int down_column,
              int x0, int y0, int lanes, float *raw) {
    int count = expert->neuron_count, positions = window * window;
    __m256 input[PIXELS], acc[FA_CCNF_MAX_NEURONS];
    _Alignas(32) float z[FA_CCNF_MAX_NEURONS][LANES];
    normalise_lanes(padded, down_column, x0, y0, input);
    if (count == 7) {
        activations(expert->weights, 4, 3, input, acc);
    } else {
        for (int k = 0; k < count; k++) {
            const float *w = expert->weights + (size_t)k * FA_CCNF_INPUTS;
            if (k < (count & ~3))
                activations(w, 1, 0, input, acc + k);
            else
                activations(w, 0, 1, input, acc + k);
        }
    }
    for (int k = 0; k < count; k++)
        _mm256_store_ps(z[k], acc[k]);
    for (int l = 0; l < lanes; l++) {
        int position = down_column ? (y0 + l) * window + x0 : y0 * window + x0 + l;
        if (position == positions - 1 && (positions & 1)) {
            /* OpenBLAS's 1-row kernel: one accumulator for every neuron. */
            _Alignas(32) float lane_input[PIXELS][LANES];
            float x[PIXELS];
            for (int t = 0; t < PIXELS; t++) {
                _mm256_store_ps(lane_input[t], input[t]);
                x[t] = lane_input[t][l];
            }
            for (int k = 0; k < count; k++)
                z[k][l] = fa_ccnf_activation(expert->weights + k * FA_CCNF_INPUTS, x, 0);
        }
        float response = 0;
        for (int k = 0; k < count; k++)
            if (expert->alphas[k] > 1e-4)
                response = fa_ccnf_add_sigmoid(response, expert->alphas[k], z[k][l]);
        raw[position] = response;
    }
}

/* Positions go eight to a vector: whole groups of eight along each row, then the columns left
 * over eight at a time downwards (from a transposed copy of the area), so that few lanes are
 * wasted (window 9: 11 vectors instead of 18). */
TARGET void fa_ccnf_raw_avx2(const fa_ccnf_expert_t *expert, int window, const float *area,
                             float *raw, fa_ccnf_workspace_t *workspace) {
    int side = window + S - 1, full = window / LANES;
    float *padded = workspace->padded, *transposed = workspace->padded_transposed;
    for (int row = 0; row < side; row++) {
        memcpy(padded + row * PAD_STRIDE, area + row * side, (size_t)side * sizeof(float));
        memset(padded + row * PAD_STRIDE + side, 0, (size_t)(PAD_STRIDE - side) * sizeof(float));
    }
    for (int y = 0; y < window; y++)
        for (int g = 0; g < full; g++)
            respond_lanes(expert, window, padded, 0, g * LANES, y, LANES, raw);
    if (full * LANES == window) return;
    for (int column = 0; column < side; column++) {
        for (int row = 0; row < side; row++)
            transposed[column * PAD_STRIDE + row] = area[row * side + column];
        memset(transposed + column * PAD_STRIDE + side, 0,
               (size_t)(PAD_STRIDE - side) * sizeof(float));
    }
    for (int x = full * LANES; x < window; x++)
        for (int y0 = 0; y0 < window; y0 += LANES)
            respond_lanes(expert, window, transposed, 1, x, y0,
                          window - y0 < LANES ? window - y0 : LANES, raw);
}

TARGET void fa_ccnf_sigma_avx2(const float *sigma_transposed, int stride, int n, const float *raw,
                               float *out) {
    enum { BLOCKS = 4 };
    _Alignas(32) float result[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW + LANES * BLOCKS];
    for (int i0 = 0; i0 < stride; i0 += LANES * BLOCKS) {
        int blocks = (stride - i0) / LANES < BLOCKS ? (stride - i0) / LANES : BLOCKS;
        __m256 acc[BLOCKS];
        for (int b = 0; b < BLOCKS; b++)
            acc[b] = _mm256_setzero_ps();
        for (int t = 0; t < n; t++) {
            __m256 r = _mm256_set1_ps(raw[t]);
            const float *column = sigma_transposed + (size_t)t * (size_t)stride + i0;
            for (int b = 0; b < blocks; b++)
                acc[b] = _mm256_fmadd_ps(r, _mm256_loadu_ps(column + b * LANES), acc[b]);
        }
        for (int b = 0; b < blocks; b++)
            _mm256_store_ps(result + i0 + b * LANES, acc[b]);
    }
    float minimum = result[0];
    for (int i = 1; i < n; i++)
        if (result[i] < minimum) minimum = result[i];
    if (minimum < 0)
        for (int i = 0; i < n; i++)
            out[i] = result[i] - minimum;
    else
        memcpy(out, result, (size_t)n * sizeof(float));
}

#else

int fa_ccnf_avx2_supported(void) {
    return 0;
}

void fa_ccnf_raw_avx2(const fa_ccnf_expert_t *expert, int window, const float *area, float *raw,
                      fa_ccnf_workspace_t *workspace) {
    fa_ccnf_raw_reference(expert, window, area, raw, workspace);
}

void fa_ccnf_sigma_avx2(const float *sigma_transposed, int stride, int n, const float *raw,
                        float *out) {
    fa_ccnf_sigma_reference(sigma_transposed, stride, n, raw, out);
}

#endif
