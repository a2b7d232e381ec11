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

/* Eight positions whose responses are computed together: along a row from (x0, y0) (padded
 * holds the area row-major) or down a column (from the transposed copy). Pixel (xx, yy) of lane
 * 0's window is at base + yy * y_step + xx * x_step; lane l's is l floats further. */
typedef struct lane_group {
    const float *base;
    int y_step, x_step;
    int down_column, x0, y0, lanes;
} lane_group_t;

/* The normalised inputs of two groups, one vector per input index t (column-major within the
 * 11x11 window). Every lane sums its own window in the reference's order; the two groups'
 * sums are interleaved so that neither waits on the other's addition latency. a and b may be
 * the same group. */
TARGET static inline __attribute__((always_inline)) void
normalise_pair(const lane_group_t *a, const lane_group_t *b, __m256 *input_a, __m256 *input_b) {
#define AT(g, yy, xx) _mm256_loadu_ps((g)->base + (yy) * (g)->y_step + (xx) * (g)->x_step)
    __m256 sum_a = _mm256_setzero_ps(), sum_b = _mm256_setzero_ps();
    for (int yy = 0; yy < S; yy++)
        for (int xx = 0; xx < S; xx++) {
            sum_a = _mm256_add_ps(sum_a, AT(a, yy, xx));
            sum_b = _mm256_add_ps(sum_b, AT(b, yy, xx));
        }
    __m256 mean_a = _mm256_div_ps(sum_a, _mm256_set1_ps((float)PIXELS));
    __m256 mean_b = _mm256_div_ps(sum_b, _mm256_set1_ps((float)PIXELS));
    __m256 sum_sq_a = _mm256_setzero_ps(), sum_sq_b = _mm256_setzero_ps();
    for (int xx = 0; xx < S; xx++)
        for (int yy = 0; yy < S; yy++) {
            __m256 centred_a = _mm256_sub_ps(AT(a, yy, xx), mean_a);
            __m256 centred_b = _mm256_sub_ps(AT(b, yy, xx), mean_b);
            input_a[xx * S + yy] = centred_a;
            input_b[xx * S + yy] = centred_b;
            sum_sq_a = _mm256_add_ps(sum_sq_a, _mm256_mul_ps(centred_a, centred_a));
            sum_sq_b = _mm256_add_ps(sum_sq_b, _mm256_mul_ps(centred_b, centred_b));
        }
#undef AT
    __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    __m256 norm_a = _mm256_sqrt_ps(sum_sq_a), norm_b = _mm256_sqrt_ps(sum_sq_b);
    norm_a = _mm256_blendv_ps(norm_a, one, _mm256_cmp_ps(norm_a, zero, _CMP_EQ_OQ));
    norm_b = _mm256_blendv_ps(norm_b, one, _mm256_cmp_ps(norm_b, zero, _CMP_EQ_OQ));
    /* (float)(1.0 / norm) in double equals the correctly rounded float quotient. */
    __m256 scale_a = _mm256_div_ps(one, norm_a), scale_b = _mm256_div_ps(one, norm_b);
    for (int t = 0; t < PIXELS; t++) {
        input_a[t] = _mm256_mul_ps(input_a[t], scale_a);
        input_b[t] = _mm256_mul_ps(input_b[t], scale_b);
    }
}

/* e^x for |x| < 600 within a few units in the last place (not glibc's bits): x = k ln2 + r,
 * e^r by its Taylor series to r^13 (|r| <= ln2 / 2), 2^k put into the exponent. */
TARGET static inline __m256d exp_near(__m256d x) {
    const __m256d magic = _mm256_set1_pd(0x1.8p52); /* adding it rounds to an integer */
    __m256d k_shifted = _mm256_add_pd(_mm256_mul_pd(x, _mm256_set1_pd(0x1.71547652b82fep0)), magic);
    __m256d k = _mm256_sub_pd(k_shifted, magic);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.62e42fefa39efp-1), x);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.abc9e3b39803fp-56), r);
    static const double inverse_factorials[14] = {1.0,
                                                  1.0,
                                                  1.0 / 2,
                                                  1.0 / 6,
                                                  1.0 / 24,
                                                  1.0 / 120,
                                                  1.0 / 720,
                                                  1.0 / 5040,
                                                  1.0 / 40320,
                                                  1.0 / 362880,
                                                  1.0 / 3628800,
                                                  1.0 / 39916800,
                                                  1.0 / 479001600,
                                                  1.0 / 6227020800.0};
    __m256d p = _mm256_set1_pd(inverse_factorials[13]);
    for (int i = 12; i >= 0; i--)
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(inverse_factorials[i]));
    /* the low bits of k_shifted hold k + 2^51; 2^k's bits are (k + 1023) << 52 */
    __m256i bits = _mm256_sub_epi64(_mm256_castpd_si256(k_shifted), _mm256_castpd_si256(magic));
    bits = _mm256_slli_epi64(_mm256_add_epi64(bits, _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(bits));
}

/* Four lanes of fa_ccnf_add_sigmoid. The sum is rounded to float; with exp_near's error the
 * double sum is within |sum| 2^-48 of the reference's (the terms are positive), so where every
 * value within |sum| 2^-40 rounds to the same float that float is the reference's. Lanes where
 * it might not, or whose activation is out of exp_near's range, are redone with glibc's exp. */
TARGET static inline __m128 add_sigmoids(__m128 response, double alpha, __m128 activation) {
    __m256d z = _mm256_cvtps_pd(activation);
    __m256d e = exp_near(_mm256_sub_pd(_mm256_setzero_pd(), z));
    __m256d one = _mm256_set1_pd(1.0);
    __m256d sum = _mm256_add_pd(_mm256_cvtps_pd(response),
                                _mm256_div_pd(_mm256_set1_pd(2.0 * alpha), _mm256_add_pd(one, e)));
    __m256d margin =
        _mm256_mul_pd(_mm256_andnot_pd(_mm256_set1_pd(-0.0), sum), _mm256_set1_pd(0x1p-40));
    __m128 rounded = _mm256_cvtpd_ps(sum);
    __m128 low = _mm256_cvtpd_ps(_mm256_sub_pd(sum, margin));
    __m128 high = _mm256_cvtpd_ps(_mm256_add_pd(sum, margin));
    __m256d magnitude = _mm256_andnot_pd(_mm256_set1_pd(-0.0), z);
    int in_range = _mm256_movemask_pd(_mm256_cmp_pd(magnitude, _mm256_set1_pd(600.0), _CMP_LT_OQ));
    int uncertain = _mm_movemask_ps(_mm_cmpneq_ps(low, high)) | (~in_range & 15);
    if (__builtin_expect(uncertain != 0, 0)) {
        _Alignas(16) float lanes[4], previous[4], activations[4];
        _mm_store_ps(lanes, rounded);
        _mm_store_ps(previous, response);
        _mm_store_ps(activations, activation);
        for (int l = 0; l < 4; l++)
            if (uncertain & (1 << l))
                lanes[l] = fa_ccnf_add_sigmoid(previous[l], alpha, activations[l]);
        rounded = _mm_load_ps(lanes);
    }
    return rounded;
}

TARGET void fa_ccnf_sigmoid_sums_avx2(const double *alphas, int count, const float *z, int z_stride,
                                      float *response) {
    __m128 low = _mm_setzero_ps(), high = _mm_setzero_ps();
    for (int k = 0; k < count; k++)
        if (alphas[k] > 1e-4) {
            low = add_sigmoids(low, alphas[k], _mm_load_ps(z + k * z_stride));
            high = add_sigmoids(high, alphas[k], _mm_load_ps(z + k * z_stride + 4));
        }
    _mm_store_ps(response, low);
    _mm_store_ps(response + 4, high);
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

/* The responses of a group's positions from its normalised inputs. */
TARGET static inline __attribute__((always_inline)) void
respond_group(const fa_ccnf_expert_t *expert, int window, const lane_group_t *group,
              const __m256 *input, float *raw) {
    int count = expert->neuron_count, positions = window * window;
    int x0 = group->x0, y0 = group->y0, down_column = group->down_column;
    __m256 acc[FA_CCNF_MAX_NEURONS];
    _Alignas(32) float z[FA_CCNF_MAX_NEURONS][LANES];
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
    for (int l = 0; l < group->lanes; l++) {
        int position = down_column ? (y0 + l) * window + x0 : y0 * window + x0 + l;
        if (position == positions - 1 && (positions & 1)) {
            /* OpenBLAS's 1-row kernel: one accumulator for every neuron. */
            _Alignas(32) float lane_input[PIXELS][LANES];
            float x[PIXELS], single[FA_CCNF_MAX_NEURONS];
            for (int t = 0; t < PIXELS; t++) {
                _mm256_store_ps(lane_input[t], input[t]);
                x[t] = lane_input[t][l];
            }
            fa_ccnf_activations_single(expert->weights, count, x, single);
            for (int k = 0; k < count; k++)
                z[k][l] = single[k];
        }
    }
    _Alignas(32) float response[LANES];
    fa_ccnf_sigmoid_sums_avx2(expert->alphas, count, z[0], LANES, response);
    for (int l = 0; l < group->lanes; l++)
        raw[down_column ? (y0 + l) * window + x0 : y0 * window + x0 + l] = response[l];
}

/* Positions go eight to a vector: whole groups of eight along each row, then the columns left
 * over eight at a time downwards (from a transposed copy of the area), so that few lanes are
 * wasted (window 9: 11 vectors instead of 18). Groups are normalised two at a time. */
TARGET void fa_ccnf_raw_avx2(const fa_ccnf_expert_t *expert, int window, const float *area,
                             float *raw, fa_ccnf_workspace_t *workspace) {
    enum { MAX_GROUPS = FA_CCNF_MAX_WINDOW * (FA_CCNF_MAX_WINDOW / LANES + 2) };
    int side = window + S - 1, full = window / LANES, count = 0;
    float *padded = workspace->padded, *transposed = workspace->padded_transposed;
    lane_group_t groups[MAX_GROUPS];
    for (int row = 0; row < side; row++) {
        memcpy(padded + row * PAD_STRIDE, area + row * side, (size_t)side * sizeof(float));
        memset(padded + row * PAD_STRIDE + side, 0, (size_t)(PAD_STRIDE - side) * sizeof(float));
    }
    for (int y = 0; y < window; y++)
        for (int g = 0; g < full; g++)
            groups[count++] = (lane_group_t){
                padded + y * PAD_STRIDE + g * LANES, PAD_STRIDE, 1, 0, g * LANES, y, LANES};
    if (full * LANES < window) {
        for (int column = 0; column < side; column++) {
            for (int row = 0; row < side; row++)
                transposed[column * PAD_STRIDE + row] = area[row * side + column];
            memset(transposed + column * PAD_STRIDE + side, 0,
                   (size_t)(PAD_STRIDE - side) * sizeof(float));
        }
        for (int x = full * LANES; x < window; x++)
            for (int y0 = 0; y0 < window; y0 += LANES)
                groups[count++] = (lane_group_t){
                    transposed + x * PAD_STRIDE + y0,         1, PAD_STRIDE, 1, x, y0,
                    window - y0 < LANES ? window - y0 : LANES};
    }
    __m256 input_a[PIXELS], input_b[PIXELS];
    for (int i = 0; i < count; i += 2) {
        const lane_group_t *a = &groups[i], *b = i + 1 < count ? &groups[i + 1] : a;
        normalise_pair(a, b, input_a, input_b);
        respond_group(expert, window, a, input_a, raw);
        if (b != a) respond_group(expert, window, b, input_b, raw);
    }
}

/* Rows [i0, i0 + 8 * blocks) of Sigma * raw: per row a chain of FMAs in t order. */
TARGET static inline __attribute__((always_inline)) void sigma_rows(const float *sigma_transposed,
                                                                    int stride, int n,
                                                                    const float *raw, int i0,
                                                                    int blocks, float *result) {
    enum { MAX_BLOCKS = 16 };
    __m256 acc[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++)
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

/* With AVX-512VL's 32 registers a window of up to 11 takes one pass over Sigma, reading each
 * column whole, instead of four passes over a quarter of each. */
__attribute__((target("avx2,fma,avx512f,avx512vl"))) static void
sigma_wide(const float *sigma_transposed, int stride, int n, const float *raw, float *result) {
    int i0 = 0;
    for (; stride - i0 >= 16 * LANES; i0 += 16 * LANES)
        sigma_rows(sigma_transposed, stride, n, raw, i0, 16, result);
    switch ((stride - i0) / LANES) { /* constant block counts keep the sums in registers */
    case 0:
        break;
    case 7:
        sigma_rows(sigma_transposed, stride, n, raw, i0, 7, result);
        break;
    case 11:
        sigma_rows(sigma_transposed, stride, n, raw, i0, 11, result);
        break;
    default:
        for (; i0 < stride; i0 += LANES)
            sigma_rows(sigma_transposed, stride, n, raw, i0, 1, result);
    }
}

/* The minimum shift of the Sigma product (see fa_ccnf_sigma_reference). */
static void shift_to_nonnegative(const float *result, int n, float *out) {
    float minimum = result[0];
    for (int i = 1; i < n; i++)
        if (result[i] < minimum) minimum = result[i];
    if (minimum < 0)
        for (int i = 0; i < n; i++)
            out[i] = result[i] - minimum;
    else
        memcpy(out, result, (size_t)n * sizeof(float));
}

TARGET void fa_ccnf_sigma_avx2_narrow(const float *sigma_transposed, int stride, int n,
                                      const float *raw, float *out) {
    enum { BLOCKS = 4 };
    _Alignas(32) float result[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW + LANES * BLOCKS];
    for (int i0 = 0; i0 < stride; i0 += LANES * BLOCKS) {
        int blocks = (stride - i0) / LANES < BLOCKS ? (stride - i0) / LANES : BLOCKS;
        if (blocks == BLOCKS)
            sigma_rows(sigma_transposed, stride, n, raw, i0, BLOCKS, result);
        else
            sigma_rows(sigma_transposed, stride, n, raw, i0, blocks, result);
    }
    shift_to_nonnegative(result, n, out);
}

TARGET void fa_ccnf_sigma_avx2(const float *sigma_transposed, int stride, int n, const float *raw,
                               float *out) {
    _Alignas(32) float result[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW + LANES];
    if (!__builtin_cpu_supports("avx512vl")) {
        fa_ccnf_sigma_avx2_narrow(sigma_transposed, stride, n, raw, out);
        return;
    }
    sigma_wide(sigma_transposed, stride, n, raw, result);
    shift_to_nonnegative(result, n, out);
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

void fa_ccnf_sigma_avx2_narrow(const float *sigma_transposed, int stride, int n, const float *raw,
                               float *out) {
    fa_ccnf_sigma_reference(sigma_transposed, stride, n, raw, out);
}

void fa_ccnf_sigmoid_sums_avx2(const double *alphas, int count, const float *z, int z_stride,
                               float *response) {
    for (int l = 0; l < 8; l++) {
        response[l] = 0;
        for (int k = 0; k < count; k++)
            if (alphas[k] > 1e-4)
                response[l] = fa_ccnf_add_sigmoid(response[l], alphas[k], z[k * z_stride + l]);
    }
}

#endif
