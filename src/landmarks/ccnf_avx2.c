/* AVX2 + FMA response kernels, and AVX-512 ones where the CPU has it. Each lane performs exactly
 * the scalar operations of the reference kernels (ccnf_kernels.h), so the results are
 * bit-identical: the lanes are 8 neighbouring positions of one response row or column (16, two
 * such groups, with AVX-512), the area copied into a zero-padded buffer so that every lane can be
 * loaded at once (lanes past the window are computed and dropped). The few positions and Sigma
 * outputs that OpenBLAS sums in 16 lanes get 16 lanes here too, added in its orders. */
#include "landmarks/ccnf_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx2,fma")))
#define TARGET_WIDE __attribute__((target("avx2,fma,avx512f,avx512vl")))

enum { S = FA_CCNF_SUPPORT, PIXELS = S * S, PAD_STRIDE = 32, LANES = 8 };

int fa_ccnf_avx2_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int fa_ccnf_avx512_supported(void) {
    __builtin_cpu_init();
    return fa_ccnf_avx2_supported() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512vl");
}

/* Eight positions whose responses are computed together: along a row from (x0, y0) (padded
 * holds the area row-major) or down a column (from the transposed copy). Pixel (xx, yy) of lane
 * 0's window is at base + yy * y_step + xx * x_step; lane l's is l floats further. */
typedef struct lane_group {
    const float *base;
    int y_step, x_step;
    int down_column, x0, y0, lanes;
    int lanes_summed; /* lanes whose activations OpenBLAS sums in 16 lanes, not in one chain */
} lane_group_t;

/* The normalised inputs of one group, or of two (`two`, a compile-time constant after inlining),
 * one vector per input index t (column-major within the 11x11 window). Every lane sums its own
 * window in the reference's order; two groups' sums are interleaved so that neither waits on the
 * other's addition latency. */
TARGET static inline __attribute__((always_inline)) void normalise_groups(const lane_group_t *a,
                                                                          const lane_group_t *b,
                                                                          int two, __m256 *input_a,
                                                                          __m256 *input_b) {
#define AT(g, yy, xx) _mm256_loadu_ps((g)->base + (yy) * (g)->y_step + (xx) * (g)->x_step)
    __m256 sum_a = _mm256_setzero_ps(), sum_b = _mm256_setzero_ps();
    for (int yy = 0; yy < S; yy++)
        for (int xx = 0; xx < S; xx++) {
            sum_a = _mm256_add_ps(sum_a, AT(a, yy, xx));
            if (two) sum_b = _mm256_add_ps(sum_b, AT(b, yy, xx));
        }
    __m256 mean_a = _mm256_div_ps(sum_a, _mm256_set1_ps((float)PIXELS));
    __m256 mean_b = _mm256_div_ps(sum_b, _mm256_set1_ps((float)PIXELS));
    __m256 sum_sq_a = _mm256_setzero_ps(), sum_sq_b = _mm256_setzero_ps();
    for (int xx = 0; xx < S; xx++)
        for (int yy = 0; yy < S; yy++) {
            __m256 centred_a = _mm256_sub_ps(AT(a, yy, xx), mean_a);
            input_a[xx * S + yy] = centred_a;
            sum_sq_a = _mm256_add_ps(sum_sq_a, _mm256_mul_ps(centred_a, centred_a));
            if (two) {
                __m256 centred_b = _mm256_sub_ps(AT(b, yy, xx), mean_b);
                input_b[xx * S + yy] = centred_b;
                sum_sq_b = _mm256_add_ps(sum_sq_b, _mm256_mul_ps(centred_b, centred_b));
            }
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
        if (two) input_b[t] = _mm256_mul_ps(input_b[t], scale_b);
    }
}

static const double INVERSE_FACTORIALS[14] = {1.0,
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

/* e^x for |x| < 600 within a few units in the last place (not glibc's bits): x = k ln2 + r,
 * e^r by its Taylor series to r^13 (|r| <= ln2 / 2), 2^k put into the exponent. */
TARGET static inline __m256d exp_near(__m256d x) {
    const __m256d magic = _mm256_set1_pd(0x1.8p52); /* adding it rounds to an integer */
    __m256d k_shifted = _mm256_add_pd(_mm256_mul_pd(x, _mm256_set1_pd(0x1.71547652b82fep0)), magic);
    __m256d k = _mm256_sub_pd(k_shifted, magic);
    __m256d r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.62e42fefa39efp-1), x);
    r = _mm256_fnmadd_pd(k, _mm256_set1_pd(0x1.abc9e3b39803fp-56), r);
    __m256d p = _mm256_set1_pd(INVERSE_FACTORIALS[13]);
    for (int i = 12; i >= 0; i--)
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(INVERSE_FACTORIALS[i]));
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

/* exp_near on eight lanes (AVX-512), the same operations. */
TARGET_WIDE static inline __m512d exp_near_wide(__m512d x) {
    const __m512d magic = _mm512_set1_pd(0x1.8p52);
    __m512d k_shifted = _mm512_add_pd(_mm512_mul_pd(x, _mm512_set1_pd(0x1.71547652b82fep0)), magic);
    __m512d k = _mm512_sub_pd(k_shifted, magic);
    __m512d r = _mm512_fnmadd_pd(k, _mm512_set1_pd(0x1.62e42fefa39efp-1), x);
    r = _mm512_fnmadd_pd(k, _mm512_set1_pd(0x1.abc9e3b39803fp-56), r);
    __m512d p = _mm512_set1_pd(INVERSE_FACTORIALS[13]);
    for (int i = 12; i >= 0; i--)
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(INVERSE_FACTORIALS[i]));
    __m512i bits = _mm512_sub_epi64(_mm512_castpd_si512(k_shifted), _mm512_castpd_si512(magic));
    bits = _mm512_slli_epi64(_mm512_add_epi64(bits, _mm512_set1_epi64(1023)), 52);
    return _mm512_mul_pd(p, _mm512_castsi512_pd(bits));
}

/* add_sigmoids on eight lanes (AVX-512), the same operations and the same check. */
TARGET_WIDE static inline __m256 add_sigmoids_wide(__m256 response, double alpha,
                                                   __m256 activation) {
    __m512d z = _mm512_cvtps_pd(activation);
    __m512d e = exp_near_wide(_mm512_sub_pd(_mm512_setzero_pd(), z));
    __m512d sum = _mm512_add_pd(
        _mm512_cvtps_pd(response),
        _mm512_div_pd(_mm512_set1_pd(2.0 * alpha), _mm512_add_pd(_mm512_set1_pd(1.0), e)));
    __m512d margin = _mm512_mul_pd(_mm512_abs_pd(sum), _mm512_set1_pd(0x1p-40));
    __m256 rounded = _mm512_cvtpd_ps(sum);
    __m256 low = _mm512_cvtpd_ps(_mm512_sub_pd(sum, margin));
    __m256 high = _mm512_cvtpd_ps(_mm512_add_pd(sum, margin));
    __mmask8 in_range = _mm512_cmp_pd_mask(_mm512_abs_pd(z), _mm512_set1_pd(600.0), _CMP_LT_OQ);
    unsigned uncertain = (unsigned)_mm256_cmp_ps_mask(low, high, _CMP_NEQ_UQ) | (~in_range & 255u);
    if (__builtin_expect(uncertain != 0, 0)) {
        _Alignas(32) float lanes[8], previous[8], activations[8];
        _mm256_store_ps(lanes, rounded);
        _mm256_store_ps(previous, response);
        _mm256_store_ps(activations, activation);
        for (int l = 0; l < 8; l++)
            if (uncertain & (1u << l))
                lanes[l] = fa_ccnf_add_sigmoid(previous[l], alpha, activations[l]);
        rounded = _mm256_load_ps(lanes);
    }
    return rounded;
}

TARGET_WIDE void fa_ccnf_sigmoid_sums_wide(const double *alphas, int count, const float *z,
                                           int z_stride, float *response) {
    __m256 sum = _mm256_setzero_ps();
    for (int k = 0; k < count; k++)
        if (alphas[k] > 1e-4)
            sum = add_sigmoids_wide(sum, alphas[k], _mm256_load_ps(z + k * z_stride));
    _mm256_store_ps(response, sum);
}

/* The activations of `count` neurons for one group or two (`two`) with one fused multiply-add
 * chain each, input after input (fa_ccnf_activation's FA_SGEMM_CHAIN); each weight is
 * broadcast once for both groups. count and two are compile-time constants after inlining, so
 * the chains stay in registers. */
TARGET static inline __attribute__((always_inline)) void chains(const float *weights, int count,
                                                                int two, const __m256 *input_a,
                                                                const __m256 *input_b, __m256 *z_a,
                                                                __m256 *z_b) {
    enum { K = FA_CCNF_INPUTS, MAX = 8 };
    __m256 a[MAX], b[MAX];
    for (int k = 0; k < count; k++)
        a[k] = b[k] = _mm256_set1_ps(weights[k * K] + 0.0f);
    for (int t = 1; t < K; t++)
        for (int k = 0; k < count; k++) {
            __m256 w = _mm256_broadcast_ss(weights + k * K + t);
            a[k] = _mm256_fmadd_ps(input_a[t - 1], w, a[k]);
            if (two) b[k] = _mm256_fmadd_ps(input_b[t - 1], w, b[k]);
        }
    for (int k = 0; k < count; k++) {
        z_a[k] = a[k];
        if (two) z_b[k] = b[k];
    }
}

/* All neurons of an expert for one group or two: seven at once for one group (the shipped
 * experts have seven), four and three for two (their 14 chains would not fit in 16 registers),
 * others four at a time. */
TARGET static inline __attribute__((always_inline)) void activations(const fa_ccnf_expert_t *expert,
                                                                     int two, const __m256 *input_a,
                                                                     const __m256 *input_b,
                                                                     __m256 *z_a, __m256 *z_b) {
    enum { K = FA_CCNF_INPUTS };
    int count = expert->neuron_count;
    if (count == 7 && !two) {
        chains(expert->weights, 7, two, input_a, input_b, z_a, z_b);
        return;
    }
    int k = 0;
    /* z_b is NULL for a lone group: no offset on it then (undefined behaviour even when 0). */
#define Z_B(k) (two ? z_b + (k) : NULL)
    for (; k + 4 <= count; k += 4)
        chains(expert->weights + k * K, 4, two, input_a, input_b, z_a + k, Z_B(k));
    if (count - k == 3) {
        chains(expert->weights + k * K, 3, two, input_a, input_b, z_a + k, Z_B(k));
        return;
    }
    for (; k < count; k++)
        chains(expert->weights + k * K, 1, two, input_a, input_b, z_a + k, Z_B(k));
#undef Z_B
}

/* The activations of one position in OpenBLAS's 16 lanes (fa_ccnf_activation's reduce orders):
 * lanes 0-7 and 8-15 in two vectors over the inputs with the constant 1 first, then added as
 * order_of(k) says. */
TARGET static void lane_activations(const fa_ccnf_expert_t *expert, int position, int window,
                                    const float *x, float *z) {
    enum { K = FA_CCNF_INPUTS, BLOCKS = K / 16, TAIL = K - BLOCKS * 16 - 8 };
    _Static_assert(TAIL > 0 && TAIL < 8, "the last 16 inputs fill the first vector");
    _Alignas(32) float inputs[(BLOCKS + 1) * 16] = {1.0f};
    memcpy(inputs + 1, x, PIXELS * sizeof(float));
    __m256i tail_mask =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(TAIL), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int k = 0; k < expert->neuron_count; k++) {
        const float *w = expert->weights + (size_t)k * K;
        __m256 low = _mm256_setzero_ps(), high = _mm256_setzero_ps();
        for (int block = 0; block < BLOCKS; block++) {
            const float *wb = w + block * 16, *xb = inputs + block * 16;
            low = _mm256_fmadd_ps(_mm256_load_ps(xb), _mm256_loadu_ps(wb), low);
            high = _mm256_fmadd_ps(_mm256_load_ps(xb + 8), _mm256_loadu_ps(wb + 8), high);
        }
        const float *wb = w + BLOCKS * 16, *xb = inputs + BLOCKS * 16;
        low = _mm256_fmadd_ps(_mm256_load_ps(xb), _mm256_loadu_ps(wb), low);
        /* the last TAIL inputs in the first lanes of high; its other lanes keep their sums */
        __m256 last =
            _mm256_fmadd_ps(_mm256_load_ps(xb + 8), _mm256_maskload_ps(wb + 8, tail_mask), high);
        high = _mm256_blendv_ps(high, last, _mm256_castsi256_ps(tail_mask));
        _Alignas(32) float lane[16];
        _mm256_store_ps(lane, low);
        _mm256_store_ps(lane + 8, high);
        z[k] = fa_sgemm_lanes_sum(
            lane, fa_ccnf_activation_order(position, window, k, expert->neuron_count));
    }
}

/* A group's OpenBLAS row numbers (x W + y) per lane. */
static inline int lane_position(const lane_group_t *group, int window, int l) {
    return group->down_column ? group->x0 * window + group->y0 + l
                              : (group->x0 + l) * window + group->y0;
}

/* The responses of a group's positions from their activations (lane l of neuron k at
 * activation[k * stride + l]); positions that OpenBLAS sums in 16 lanes are redone from their
 * inputs (lane l of input t at input[t * stride + l]). */
TARGET static inline __attribute__((always_inline)) void
respond_group_body(const fa_ccnf_expert_t *expert, int window, const lane_group_t *group,
                   const float *input, const float *activation, int stride, float *raw, int wide) {
    int count = expert->neuron_count;
    _Alignas(32) float z[FA_CCNF_MAX_NEURONS][LANES];
    for (int k = 0; k < count; k++)
        _mm256_store_ps(z[k], _mm256_loadu_ps(activation + k * stride));
    if (group->lanes_summed)
        for (int l = 0; l < group->lanes; l++) {
            int position = lane_position(group, window, l);
            if (fa_ccnf_activation_order(position, window, 0, count) == FA_SGEMM_CHAIN) continue;
            float x[PIXELS], single[FA_CCNF_MAX_NEURONS];
            for (int t = 0; t < PIXELS; t++)
                x[t] = input[t * stride + l];
            lane_activations(expert, position, window, x, single);
            for (int k = 0; k < count; k++)
                z[k][l] = single[k];
        }
    _Alignas(32) float response[LANES];
    if (wide)
        fa_ccnf_sigmoid_sums_wide(expert->alphas, count, z[0], LANES, response);
    else
        fa_ccnf_sigmoid_sums_avx2(expert->alphas, count, z[0], LANES, response);
    for (int l = 0; l < group->lanes; l++)
        raw[group->down_column ? (group->y0 + l) * window + group->x0
                               : group->y0 * window + group->x0 + l] = response[l];
}

TARGET static void respond_group(const fa_ccnf_expert_t *expert, int window,
                                 const lane_group_t *group, const float *input,
                                 const float *activation, int stride, float *raw) {
    respond_group_body(expert, window, group, input, activation, stride, raw, 0);
}

/* respond_group with the AVX-512 sigmoid sums. */
TARGET_WIDE static void respond_group_wide(const fa_ccnf_expert_t *expert, int window,
                                           const lane_group_t *group, const float *input,
                                           const float *activation, int stride, float *raw) {
    respond_group_body(expert, window, group, input, activation, stride, raw, 1);
}

/* respond_group from vectors. */
TARGET static inline __attribute__((always_inline)) void
respond_group_vectors(const fa_ccnf_expert_t *expert, int window, const lane_group_t *group,
                      const __m256 *input, const __m256 *z, float *raw) {
    _Alignas(32) float activation[FA_CCNF_MAX_NEURONS][LANES];
    for (int k = 0; k < expert->neuron_count; k++)
        _mm256_store_ps(activation[k], z[k]);
    respond_group(expert, window, group, (const float *)input, activation[0], LANES, raw);
}

/* Positions go eight to a vector: whole groups of eight along each row, then the columns left
 * over eight at a time downwards (from a transposed copy of the area), so that few lanes are
 * wasted (window 9: 11 vectors instead of 18). Returns the number of groups. */
enum { MAX_GROUPS = FA_CCNF_MAX_WINDOW * (FA_CCNF_MAX_WINDOW / LANES + 2) };
static int lane_groups(const fa_ccnf_expert_t *expert, int window, const float *area,
                       fa_ccnf_workspace_t *workspace, lane_group_t *groups) {
    int side = window + S - 1, full = window / LANES, count = 0;
    float *padded = workspace->padded, *transposed = workspace->padded_transposed;
    for (int row = 0; row < side; row++) {
        memcpy(padded + row * PAD_STRIDE, area + row * side, (size_t)side * sizeof(float));
        memset(padded + row * PAD_STRIDE + side, 0, (size_t)(PAD_STRIDE - side) * sizeof(float));
    }
    for (int y = 0; y < window; y++)
        for (int g = 0; g < full; g++)
            groups[count++] = (lane_group_t){
                padded + y * PAD_STRIDE + g * LANES, PAD_STRIDE, 1, 0, g * LANES, y, LANES, 0};
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
                    transposed + x * PAD_STRIDE + y0,          1, PAD_STRIDE, 1, x, y0,
                    window - y0 < LANES ? window - y0 : LANES, 0};
    }
    for (int i = 0; i < count; i++)
        for (int l = 0; l < groups[i].lanes; l++)
            groups[i].lanes_summed +=
                fa_ccnf_activation_order(lane_position(&groups[i], window, l), window, 0,
                                         expert->neuron_count) != FA_SGEMM_CHAIN;
    return count;
}

/* The last group when the count is odd, alone; if OpenBLAS sums its every lane in 16 lanes
 * (window 9's last position) the chains are skipped. */
TARGET static void lone_group(const fa_ccnf_expert_t *expert, int window, const lane_group_t *group,
                              float *raw) {
    __m256 input[PIXELS], z[FA_CCNF_MAX_NEURONS];
    normalise_groups(group, NULL, 0, input, NULL);
    if (group->lanes_summed < group->lanes)
        activations(expert, 0, input, NULL, z, NULL);
    else
        for (int k = 0; k < expert->neuron_count; k++)
            z[k] = _mm256_setzero_ps();
    respond_group_vectors(expert, window, group, input, z, raw);
}

/* Groups normalised and their activations computed two at a time, four and three neurons at a
 * time in 16 registers. */
TARGET void fa_ccnf_raw_avx2_narrow(const fa_ccnf_expert_t *expert, int window, const float *area,
                                    float *raw, fa_ccnf_workspace_t *workspace) {
    lane_group_t groups[MAX_GROUPS];
    int count = lane_groups(expert, window, area, workspace, groups), i = 0;
    __m256 input_a[PIXELS], input_b[PIXELS], z_a[FA_CCNF_MAX_NEURONS], z_b[FA_CCNF_MAX_NEURONS];
    for (; i + 1 < count; i += 2) {
        normalise_groups(&groups[i], &groups[i + 1], 1, input_a, input_b);
        activations(expert, 1, input_a, input_b, z_a, z_b);
        respond_group_vectors(expert, window, &groups[i], input_a, z_a, raw);
        respond_group_vectors(expert, window, &groups[i + 1], input_b, z_b, raw);
    }
    if (i < count) lone_group(expert, window, &groups[i], raw);
}

TARGET_WIDE static inline __m512 halves(__m256 low, __m256 high) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(low)),
                                               _mm256_castps_pd(high), 1));
}

/* AVX-512: two groups in the halves of one 16-lane vector, normalised as in normalise_groups
 * (each lane's operations unchanged); `pairs` such vectors (1 or 2, a compile-time constant after
 * inlining) at once, their sums interleaved. g holds the 2 pairs groups. */
TARGET_WIDE static inline __attribute__((always_inline)) void
normalise_wide(const lane_group_t *g, int pairs, __m512 (*input)[PIXELS]) {
    enum { MAX_PAIRS = 2 };
#define AT(p, yy, xx)                                                                              \
    halves(_mm256_loadu_ps(g[2 * (p)].base + (yy)*g[2 * (p)].y_step + (xx)*g[2 * (p)].x_step),     \
           _mm256_loadu_ps(g[2 * (p) + 1].base + (yy)*g[2 * (p) + 1].y_step +                      \
                           (xx)*g[2 * (p) + 1].x_step))
    __m512 sum[MAX_PAIRS], mean[MAX_PAIRS], sum_sq[MAX_PAIRS];
    for (int p = 0; p < pairs; p++)
        sum[p] = sum_sq[p] = _mm512_setzero_ps();
    for (int yy = 0; yy < S; yy++)
        for (int xx = 0; xx < S; xx++)
            for (int p = 0; p < pairs; p++)
                sum[p] = _mm512_add_ps(sum[p], AT(p, yy, xx));
    for (int p = 0; p < pairs; p++)
        mean[p] = _mm512_div_ps(sum[p], _mm512_set1_ps((float)PIXELS));
    for (int xx = 0; xx < S; xx++)
        for (int yy = 0; yy < S; yy++)
            for (int p = 0; p < pairs; p++) {
                __m512 centred = _mm512_sub_ps(AT(p, yy, xx), mean[p]);
                input[p][xx * S + yy] = centred;
                sum_sq[p] = _mm512_add_ps(sum_sq[p], _mm512_mul_ps(centred, centred));
            }
#undef AT
    __m512 one = _mm512_set1_ps(1.0f);
    for (int p = 0; p < pairs; p++) {
        __m512 norm = _mm512_sqrt_ps(sum_sq[p]);
        norm = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(norm, _mm512_setzero_ps(), _CMP_EQ_OQ), norm,
                                    one);
        __m512 scale = _mm512_div_ps(one, norm);
        for (int t = 0; t < PIXELS; t++)
            input[p][t] = _mm512_mul_ps(input[p][t], scale);
    }
}

/* chains() on 16 lanes: neurons [first, first + count) for `pairs` vectors (compile-time
 * constants after inlining; 14 chains for 7 neurons and two vectors, which hide the FMA
 * latency). */
TARGET_WIDE static inline __attribute__((always_inline)) void
chains_wide(const float *weights, int first, int count, int pairs, __m512 (*input)[PIXELS],
            __m512 (*z)[FA_CCNF_MAX_NEURONS]) {
    enum { K = FA_CCNF_INPUTS, MAX = 8, MAX_PAIRS = 2 };
    __m512 acc[MAX_PAIRS][MAX];
    weights += first * K;
    for (int p = 0; p < pairs; p++)
        for (int k = 0; k < count; k++)
            acc[p][k] = _mm512_set1_ps(weights[k * K] + 0.0f);
    for (int t = 1; t < K; t++)
        for (int k = 0; k < count; k++) {
            __m512 w = _mm512_set1_ps(weights[k * K + t]);
            for (int p = 0; p < pairs; p++)
                acc[p][k] = _mm512_fmadd_ps(input[p][t - 1], w, acc[p][k]);
        }
    for (int p = 0; p < pairs; p++)
        for (int k = 0; k < count; k++)
            z[p][first + k] = acc[p][k];
}

/* The 2 pairs groups at g: normalised, activations, responses. */
TARGET_WIDE static inline __attribute__((always_inline)) void
respond_wide(const fa_ccnf_expert_t *expert, int window, const lane_group_t *g, int pairs,
             float *raw) {
    enum { MAX_PAIRS = 2 };
    __m512 input[MAX_PAIRS][PIXELS], z[MAX_PAIRS][FA_CCNF_MAX_NEURONS];
    _Alignas(64) float activation[FA_CCNF_MAX_NEURONS][2 * LANES];
    int neurons = expert->neuron_count;
    normalise_wide(g, pairs, input);
    if (neurons == 7) {
        chains_wide(expert->weights, 0, 7, pairs, input, z);
    } else {
        int k = 0;
        for (; k + 4 <= neurons; k += 4)
            chains_wide(expert->weights, k, 4, pairs, input, z);
        for (; k < neurons; k++)
            chains_wide(expert->weights, k, 1, pairs, input, z);
    }
    for (int p = 0; p < pairs; p++) {
        for (int k = 0; k < neurons; k++)
            _mm512_store_ps(activation[k], z[p][k]);
        const float *in = (const float *)input[p];
        respond_group_wide(expert, window, &g[2 * p], in, activation[0], 2 * LANES, raw);
        respond_group_wide(expert, window, &g[2 * p + 1], in + LANES, activation[0] + LANES,
                           2 * LANES, raw);
    }
}

/* With AVX-512 two groups share each 16-lane vector, two such vectors at a time. */
TARGET_WIDE static void raw_wide(const fa_ccnf_expert_t *expert, int window, const float *area,
                                 float *raw, fa_ccnf_workspace_t *workspace) {
    lane_group_t groups[MAX_GROUPS];
    int count = lane_groups(expert, window, area, workspace, groups), i = 0;
    for (; i + 3 < count; i += 4)
        respond_wide(expert, window, &groups[i], 2, raw);
    if (i + 1 < count) {
        respond_wide(expert, window, &groups[i], 1, raw);
        i += 2;
    }
    if (i < count) lone_group(expert, window, &groups[i], raw);
}

/* The area of interest eight columns at a time: positions as the map's ints, the four
 * neighbours by two gathers (the top row's dword at the pixel, the bottom row's ending at its
 * second byte, so that neither reads outside the image), the weights and sum as
 * fa_ccnf_sample_pixel computes them. Vectors with a lane near or past the border take
 * fa_ccnf_sample_pixel itself. */
TARGET void fa_ccnf_sample_map_avx2(const uint8_t *image, int width, int height, ptrdiff_t stride,
                                    const fa_ccnf_area_map_t *map, float *area) {
    const int side = map->side;
    if ((double)stride * height > 2147483647.0 || width < 2 || height < 2) {
        fa_ccnf_sample_map_reference(image, width, height, stride, map, area);
        return;
    }
    const __m256i last_x = _mm256_set1_epi32(width - 2), last_y = _mm256_set1_epi32(height - 2);
    const __m256i zero = _mm256_setzero_si256(), byte = _mm256_set1_epi32(0xff);
    const __m256i fraction_mask = _mm256_set1_epi32(31), row_step = _mm256_set1_epi32((int)stride);
    const __m256 one = _mm256_set1_ps(1.0f), fraction_scale = _mm256_set1_ps(1.0f / 32);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int *top = (const int *)image, *bottom = (const int *)(image + stride - 2);
    for (int v = 0; v < side; v++) {
        const __m256i row_x = _mm256_set1_epi32(map->row_x[v]);
        const __m256i row_y = _mm256_set1_epi32(map->row_y[v]);
        float *out = area + v * side;
        for (int u = 0; u < side; u += LANES) {
            const int count = side - u < LANES ? side - u : LANES;
            __m256i fixed_x = _mm256_srai_epi32(
                _mm256_add_epi32(row_x, _mm256_loadu_si256((const __m256i *)(map->x_step + u))), 5);
            __m256i fixed_y = _mm256_srai_epi32(
                _mm256_add_epi32(row_y, _mm256_loadu_si256((const __m256i *)(map->y_step + u))), 5);
            __m256i sx = _mm256_srai_epi32(fixed_x, 5), sy = _mm256_srai_epi32(fixed_y, 5);
            __m256i outside = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpgt_epi32(zero, sx), _mm256_cmpgt_epi32(sx, last_x)),
                _mm256_or_si256(_mm256_cmpgt_epi32(zero, sy), _mm256_cmpgt_epi32(sy, last_y)));
            outside = _mm256_and_si256(outside, _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lane));
            if (!_mm256_testz_si256(outside, outside)) {
                for (int l = 0; l < count; l++)
                    out[u + l] = fa_ccnf_sample_pixel(
                        image, width, height, stride,
                        (int)((unsigned)map->row_x[v] + (unsigned)map->x_step[u + l]),
                        (int)((unsigned)map->row_y[v] + (unsigned)map->y_step[u + l]));
                continue;
            }
            /* Lanes past count (their steps are 0) read pixel (0, 0) and are not stored. */
            __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lane);
            sx = _mm256_and_si256(sx, valid);
            sy = _mm256_and_si256(sy, valid);
            __m256i offset = _mm256_add_epi32(_mm256_mullo_epi32(sy, row_step), sx);
            __m256i upper = _mm256_i32gather_epi32(top, offset, 1);
            __m256i lower = _mm256_i32gather_epi32(bottom, offset, 1);
            __m256 p0 = _mm256_cvtepi32_ps(_mm256_and_si256(upper, byte));
            __m256 p1 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(upper, 8), byte));
            __m256 p2 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(lower, 16), byte));
            __m256 p3 = _mm256_cvtepi32_ps(_mm256_srli_epi32(lower, 24));
            __m256 fx = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(fixed_x, fraction_mask)),
                                      fraction_scale);
            __m256 fy = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(fixed_y, fraction_mask)),
                                      fraction_scale);
            __m256 gx = _mm256_sub_ps(one, fx), gy = _mm256_sub_ps(one, fy);
            __m256 value = _mm256_mul_ps(p0, _mm256_mul_ps(gy, gx));
            value = _mm256_add_ps(value, _mm256_mul_ps(p1, _mm256_mul_ps(gy, fx)));
            value = _mm256_add_ps(value, _mm256_mul_ps(p2, _mm256_mul_ps(fy, gx)));
            value = _mm256_add_ps(value, _mm256_mul_ps(p3, _mm256_mul_ps(fy, fx)));
            if (count == LANES)
                _mm256_storeu_ps(out + u, value);
            else
                _mm256_maskstore_ps(out + u, valid, value);
        }
    }
}

void fa_ccnf_raw_avx2(const fa_ccnf_expert_t *expert, int window, const float *area, float *raw,
                      fa_ccnf_workspace_t *workspace) {
    if (fa_ccnf_avx512_supported())
        raw_wide(expert, window, area, raw, workspace);
    else
        fa_ccnf_raw_avx2_narrow(expert, window, area, raw, workspace);
}

/* Outputs [i0, i0 + 8 * blocks) of Sigma * raw: per output one chain of FMAs in t order. */
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

/* Sigma * raw in OpenBLAS's 16 lanes (W² >= 32), lane l accumulating the t = l (mod 16) terms in
 * t order: lanes [lane0, lane0 + lanes) of outputs [i0, i0 + 8 blocks) into sums[l][i]. Each row
 * of Sigma belongs to one lane, so taking a few lanes and blocks at a time reads every cache line
 * once, and the blocks share each broadcast of raw[t]. */
enum { SUMS_STRIDE = FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW + 2 * LANES + 1 };
TARGET static inline __attribute__((always_inline)) void
sigma_tile(const float *sigma_transposed, int stride, int n, const float *raw, int lane0, int lanes,
           int i0, int blocks, float (*sums)[SUMS_STRIDE]) {
    enum { MAX_LANES = 4, MAX_BLOCKS = 4 };
    __m256 acc[MAX_LANES][MAX_BLOCKS];
    for (int l = 0; l < lanes; l++)
        for (int b = 0; b < blocks; b++)
            acc[l][b] = _mm256_setzero_ps();
    for (int t0 = lane0; t0 < n; t0 += 16)
        for (int l = 0; l < lanes && t0 + l < n; l++) {
            __m256 r = _mm256_set1_ps(raw[t0 + l]);
            const float *row = sigma_transposed + (size_t)(t0 + l) * (size_t)stride + i0;
            for (int b = 0; b < blocks; b++)
                acc[l][b] = _mm256_fmadd_ps(r, _mm256_loadu_ps(row + b * LANES), acc[l][b]);
        }
    for (int l = 0; l < lanes; l++)
        for (int b = 0; b < blocks; b++)
            _mm256_storeu_ps(sums[lane0 + l] + i0 + b * LANES, acc[l][b]);
}

/* sigma_tile over all lanes and outputs, `blocks` blocks at a time (a compile-time constant
 * after inlining; the tail through a switch so that every count is one too). */
TARGET static inline __attribute__((always_inline)) void sigma_tiles(const float *sigma_transposed,
                                                                     int stride, int n,
                                                                     const float *raw, int blocks,
                                                                     float (*sums)[SUMS_STRIDE]) {
    int block_count = (n + LANES - 1) / LANES;
    for (int lane0 = 0; lane0 < 16; lane0 += 4) {
        int b0 = 0;
        for (; b0 + blocks <= block_count; b0 += blocks)
            sigma_tile(sigma_transposed, stride, n, raw, lane0, 4, b0 * LANES, blocks, sums);
        switch (block_count - b0) {
        case 3:
            sigma_tile(sigma_transposed, stride, n, raw, lane0, 4, b0 * LANES, 3, sums);
            break;
        case 2:
            sigma_tile(sigma_transposed, stride, n, raw, lane0, 4, b0 * LANES, 2, sums);
            break;
        case 1:
            sigma_tile(sigma_transposed, stride, n, raw, lane0, 4, b0 * LANES, 1, sums);
            break;
        default:
            break;
        }
    }
}

/* The 16 lanes of eight outputs added in the reference's orders (fa_ccnf_lanes_sum), lane by
 * lane: reduce4 for outputs below n & ~3, reduce_add for the others. */
TARGET static inline __attribute__((always_inline)) void sigma_lanes_sum(const __m256 *x, int n,
                                                                         int i0, float *result) {
    __m256 quarter[4];
    for (int q = 0; q < 4; q++)
        quarter[q] = _mm256_add_ps(_mm256_add_ps(x[4 * q], x[4 * q + 1]),
                                   _mm256_add_ps(x[4 * q + 2], x[4 * q + 3]));
    __m256 sum =
        _mm256_add_ps(_mm256_add_ps(quarter[0], quarter[1]), _mm256_add_ps(quarter[2], quarter[3]));
    int first_add = n & ~3;
    if (i0 + LANES > first_add) {
        __m256 half[8];
        for (int l = 0; l < 8; l++)
            half[l] = _mm256_add_ps(x[l], x[l + 8]);
        for (int l = 0; l < 4; l++)
            quarter[l] = _mm256_add_ps(half[l], half[l + 4]);
        __m256 other = _mm256_add_ps(_mm256_add_ps(quarter[0], quarter[2]),
                                     _mm256_add_ps(quarter[1], quarter[3]));
        __m256i output =
            _mm256_add_epi32(_mm256_set1_epi32(i0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256i use_other = _mm256_cmpgt_epi32(output, _mm256_set1_epi32(first_add - 1));
        sum = _mm256_blendv_ps(sum, other, _mm256_castsi256_ps(use_other));
    }
    _mm256_store_ps(result + i0, sum);
}

/* sigma_tile with AVX-512: blocks of 16 outputs, loads masked at the row's end (stride). */
TARGET_WIDE static inline __attribute__((always_inline)) void
sigma_tile_wide(const float *sigma_transposed, int stride, int n, const float *raw, int lane0,
                int i0, int blocks, float (*sums)[SUMS_STRIDE]) {
    enum { LANE_COUNT = 4, MAX_BLOCKS = 4 };
    __m512 acc[LANE_COUNT][MAX_BLOCKS];
    __mmask16 inside[MAX_BLOCKS];
    for (int b = 0; b < blocks; b++) {
        int left = stride - (i0 + 16 * b);
        inside[b] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        for (int l = 0; l < LANE_COUNT; l++)
            acc[l][b] = _mm512_setzero_ps();
    }
    for (int t0 = lane0; t0 < n; t0 += 16)
        for (int l = 0; l < LANE_COUNT && t0 + l < n; l++) {
            __m512 r = _mm512_set1_ps(raw[t0 + l]);
            const float *row = sigma_transposed + (size_t)(t0 + l) * (size_t)stride + i0;
            for (int b = 0; b < blocks; b++)
                acc[l][b] =
                    _mm512_fmadd_ps(r, _mm512_maskz_loadu_ps(inside[b], row + 16 * b), acc[l][b]);
        }
    for (int l = 0; l < LANE_COUNT; l++)
        for (int b = 0; b < blocks; b++)
            _mm512_storeu_ps(sums[lane0 + l] + i0 + 16 * b, acc[l][b]);
}

/* With AVX-512, four lanes of four 16-output blocks at a time, and the lanes added 16 outputs
 * at a time (as sigma_lanes_sum). */
TARGET_WIDE static void sigma_lanes_wide(const float *sigma_transposed, int stride, int n,
                                         const float *raw, float *result) {
    _Alignas(64) float sums[16][SUMS_STRIDE];
    int block_count = (n + 15) / 16;
    for (int lane0 = 0; lane0 < 16; lane0 += 4) {
        int b0 = 0;
        for (; b0 + 4 <= block_count; b0 += 4)
            sigma_tile_wide(sigma_transposed, stride, n, raw, lane0, 16 * b0, 4, sums);
        switch (block_count - b0) { /* constant block counts keep the sums in registers */
        case 3:
            sigma_tile_wide(sigma_transposed, stride, n, raw, lane0, 16 * b0, 3, sums);
            break;
        case 2:
            sigma_tile_wide(sigma_transposed, stride, n, raw, lane0, 16 * b0, 2, sums);
            break;
        case 1:
            sigma_tile_wide(sigma_transposed, stride, n, raw, lane0, 16 * b0, 1, sums);
            break;
        default:
            break;
        }
    }
    int first_add = n & ~3;
    for (int i0 = 0; i0 < n; i0 += 16) {
        __m512 x[16], quarter[4];
        for (int l = 0; l < 16; l++)
            x[l] = _mm512_loadu_ps(sums[l] + i0);
        for (int q = 0; q < 4; q++)
            quarter[q] = _mm512_add_ps(_mm512_add_ps(x[4 * q], x[4 * q + 1]),
                                       _mm512_add_ps(x[4 * q + 2], x[4 * q + 3]));
        __m512 sum = _mm512_add_ps(_mm512_add_ps(quarter[0], quarter[1]),
                                   _mm512_add_ps(quarter[2], quarter[3]));
        if (i0 + 16 > first_add) {
            __m512 half[8];
            for (int l = 0; l < 8; l++)
                half[l] = _mm512_add_ps(x[l], x[l + 8]);
            for (int l = 0; l < 4; l++)
                quarter[l] = _mm512_add_ps(half[l], half[l + 4]);
            __m512 other = _mm512_add_ps(_mm512_add_ps(quarter[0], quarter[2]),
                                         _mm512_add_ps(quarter[1], quarter[3]));
            __mmask16 use_other = (__mmask16)(0xFFFFu << (first_add > i0 ? first_add - i0 : 0));
            sum = _mm512_mask_blend_ps(use_other, sum, other);
        }
        _mm512_storeu_ps(result + i0, sum);
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

/* Sigma * raw as one chain per output (W² < 32, at most 32 outputs): eight outputs a vector. */
TARGET static void sigma_chains(const float *sigma_transposed, int stride, int n, const float *raw,
                                float *result) {
    switch (stride / LANES) { /* constant block counts keep the sums in registers */
    case 4:
        sigma_rows(sigma_transposed, stride, n, raw, 0, 4, result);
        break;
    case 2:
        sigma_rows(sigma_transposed, stride, n, raw, 0, 2, result);
        break;
    default:
        for (int i0 = 0; i0 < stride; i0 += LANES)
            sigma_rows(sigma_transposed, stride, n, raw, i0, 1, result);
    }
}

TARGET void fa_ccnf_sigma_avx2_narrow(const float *sigma_transposed, int stride, int n,
                                      const float *raw, float *out) {
    _Alignas(32) float result[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW + LANES];
    if (fa_ccnf_sigma_order(0, n) == FA_SGEMM_CHAIN) {
        sigma_chains(sigma_transposed, stride, n, raw, result);
    } else {
        /* 16 registers: four lanes of three blocks at a time */
        _Alignas(32) float sums[16][SUMS_STRIDE];
        sigma_tiles(sigma_transposed, stride, n, raw, 3, sums);
        for (int i0 = 0; i0 < n; i0 += LANES) {
            __m256 lane[16];
            for (int l = 0; l < 16; l++)
                lane[l] = _mm256_loadu_ps(sums[l] + i0);
            sigma_lanes_sum(lane, n, i0, result);
        }
    }
    shift_to_nonnegative(result, n, out);
}

TARGET void fa_ccnf_sigma_avx2(const float *sigma_transposed, int stride, int n, const float *raw,
                               float *out) {
    _Alignas(64) float result[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW + 2 * LANES];
    if (fa_ccnf_sigma_order(0, n) == FA_SGEMM_CHAIN || !fa_ccnf_avx512_supported()) {
        fa_ccnf_sigma_avx2_narrow(sigma_transposed, stride, n, raw, out);
        return;
    }
    sigma_lanes_wide(sigma_transposed, stride, n, raw, result);
    shift_to_nonnegative(result, n, out);
}

#else

void fa_ccnf_sample_map_avx2(const uint8_t *image, int width, int height, ptrdiff_t stride,
                             const fa_ccnf_area_map_t *map, float *area) {
    fa_ccnf_sample_map_reference(image, width, height, stride, map, area);
}


int fa_ccnf_avx2_supported(void) {
    return 0;
}

int fa_ccnf_avx512_supported(void) {
    return 0;
}

void fa_ccnf_sigmoid_sums_wide(const double *alphas, int count, const float *z, int z_stride,
                               float *response) {
    fa_ccnf_sigmoid_sums_avx2(alphas, count, z, z_stride, response);
}

void fa_ccnf_raw_avx2(const fa_ccnf_expert_t *expert, int window, const float *area, float *raw,
                      fa_ccnf_workspace_t *workspace) {
    fa_ccnf_raw_reference(expert, window, area, raw, workspace);
}

void fa_ccnf_raw_avx2_narrow(const fa_ccnf_expert_t *expert, int window, const float *area,
                             float *raw, fa_ccnf_workspace_t *workspace) {
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
