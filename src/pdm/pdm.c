/* OpenFace's PDM and CalcParams (PIPELINE_SPEC §3). The arithmetic follows what OpenFace 2.2
 * executes with OpenCV 4.6 and OpenBLAS, operation by operation, because CalcParams is an
 * iterative fit whose stopping rule amplifies last-bit differences:
 * - float32 Jacobian, Hessian and update, as in PDM.cpp; the shape and the Hessian are OpenBLAS
 *   sgemm products, summed as OpenBLAS 0.3.21's SkylakeX kernels sum them (the reference's);
 * - cv::gemm on small float matrices accumulates in double, so J^T r and the loop's projection
 *   are double sums rounded to float;
 * - cv::solve(DECOMP_CHOLESKY) on a 40x40 float matrix is OpenCV's own Cholesky (LAPACK only
 *   takes over from 100 rows): float factors, double accumulators;
 * - the rotation update goes through cv::SVD (one-sided Jacobi) and cv::Rodrigues (double). */
#include "pdm/pdm.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/sgemm_order.h"
#include "model/reader.h"

/* x86-64 builds with GCC or Clang get a hardware-FMA variant of the sgemm emulation, chosen at
 * run time; elsewhere fmaf gives the same numbers, only slower. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FA_PDM_X86 1
#else
#define FA_PDM_X86 0
#endif
#if FA_PDM_X86
#include <immintrin.h>
#endif
#if defined(__GNUC__) || defined(__clang__)
#define FA_ALWAYS_INLINE __attribute__((always_inline))
#else
#define FA_ALWAYS_INLINE
#endif

enum { MAX_POINTS = FA_PDM_MAX_POINTS, MAX_MODES = FA_PDM_MAX_MODES, MAX_PARAMS = 6 + MAX_MODES };

/* ---------------------------------------------------------------------------------------------
 * Loading */

static fa_status matrix_to_floats(const fa_matrix_t *matrix, float **out, fa_error_t *error) {
    size_t count = (size_t)matrix->rows * (size_t)matrix->cols;
    *out = malloc((count ? count : 1) * sizeof **out);
    if (!*out) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    /* OpenFace reads doubles and converts them to float (convertTo CV_32F). */
    for (size_t i = 0; i < count; i++)
        (*out)[i] = (float)matrix->data[i];
    return FA_OK;
}

static fa_status check_shapes(const fa_matrix_t *mean, const fa_matrix_t *components,
                              const fa_matrix_t *eigenvalues, const char *name, fa_error_t *error) {
    int rows = mean->rows, modes = components->cols;
    if (mean->cols != 1 || rows <= 0 || rows % 3 != 0 || rows / 3 > MAX_POINTS)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: mean shape is %dx%d, not 3n x 1 (n <= %d)",
                            name, mean->rows, mean->cols, MAX_POINTS);
    if (components->rows != rows || modes <= 0 || modes > MAX_MODES)
        return fa_error_set(error, FA_ERROR_MODEL,
                            "%s: principal components are %dx%d, expected %d x m (m <= %d)", name,
                            components->rows, components->cols, rows, MAX_MODES);
    if (eigenvalues->rows * eigenvalues->cols != modes ||
        (eigenvalues->rows != 1 && eigenvalues->cols != 1))
        return fa_error_set(error, FA_ERROR_MODEL, "%s: %dx%d eigenvalues for %d modes", name,
                            eigenvalues->rows, eigenvalues->cols, modes);
    for (int i = 0; i < modes; i++)
        if (!(eigenvalues->data[i] > 0))
            return fa_error_set(error, FA_ERROR_MODEL, "%s: eigenvalue %d is not positive", name,
                                i);
    return FA_OK;
}

fa_status fa_pdm_parse(const char *data, size_t size, const char *name, fa_pdm_t *pdm,
                       fa_error_t *error) {
    memset(pdm, 0, sizeof *pdm);
    fa_reader_t reader;
    fa_reader_init(&reader, data, size, name);
    name = reader.name;
    fa_matrix_t mean = {0}, components = {0}, eigenvalues = {0};
    fa_status status = fa_read_text_matrix(&reader, &mean, error);
    if (status == FA_OK) status = fa_read_text_matrix(&reader, &components, error);
    if (status == FA_OK) status = fa_read_text_matrix(&reader, &eigenvalues, error);
    if (status == FA_OK) status = check_shapes(&mean, &components, &eigenvalues, name, error);
    if (status == FA_OK) status = matrix_to_floats(&mean, &pdm->mean_shape, error);
    if (status == FA_OK) status = matrix_to_floats(&components, &pdm->components, error);
    if (status == FA_OK) status = matrix_to_floats(&eigenvalues, &pdm->eigenvalues, error);
    if (status == FA_OK) {
        pdm->point_count = mean.rows / 3;
        pdm->mode_count = components.cols;
        size_t rows = (size_t)mean.rows, modes = (size_t)components.cols;
        pdm->components_blocked = malloc(sizeof(float) * rows * modes);
        if (!pdm->components_blocked)
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
        size_t whole = rows - rows % 8;
        for (size_t r = 0; status == FA_OK && r < rows; r++)
            for (size_t k = 0; k < modes; k++) {
                size_t at = r < whole ? r / 8 * 8 * modes + k * 8 + r % 8
                                      : whole * modes + k * (rows - whole) + (r - whole);
                pdm->components_blocked[at] = pdm->components[r * modes + k];
            }
    }
    if (status != FA_OK) {
        fa_pdm_release(pdm);
    }
    fa_matrix_release(&mean);
    fa_matrix_release(&components);
    fa_matrix_release(&eigenvalues);
    return status;
}

fa_status fa_pdm_load(const char *path, fa_pdm_t *pdm, fa_error_t *error) {
    memset(pdm, 0, sizeof *pdm);
    char *contents = NULL;
    size_t size = 0;
    fa_status status = fa_file_read_all(path, &contents, &size, error);
    if (status != FA_OK) return status;
    status = fa_pdm_parse(contents, size, path, pdm, error);
    free(contents);
    return status;
}

void fa_pdm_release(fa_pdm_t *pdm) {
    if (!pdm) return;
    free(pdm->mean_shape);
    free(pdm->components);
    free(pdm->eigenvalues);
    free(pdm->components_blocked);
    memset(pdm, 0, sizeof *pdm);
}

/* ---------------------------------------------------------------------------------------------
 * OpenBLAS's summation orders */

/* The shape and Hessian products are OpenBLAS sgemm calls in OpenFace (PDM.cpp calls sgemm_,
 * and cv::gemm hands it its larger float products), and the reference outputs were made with
 * OpenBLAS 0.3.21 running its SkylakeX kernels. These send every sgemm with M N K <= 10^6 (all
 * of these) to a small-matrix kernel, which sums element (i, j) of the column-major M x N
 * product over K in one of three orders (docs/FIDELITY.md). */
/* The sum of a[t * a_step] * b[t * b_step] over t < k in the given order. */
static float dot_in_order(const float *a, size_t a_step, const float *b, size_t b_step, int k,
                          fa_sgemm_order order) {
    if (order == FA_SGEMM_CHAIN) {
        float sum = 0;
        for (int t = 0; t < k; t++)
            sum = fmaf(a[t * a_step], b[t * b_step], sum);
        return sum;
    }
    float x[16] = {0};
    for (int t = 0; t < k; t++)
        x[t % 16] = fmaf(a[t * a_step], b[t * b_step], x[t % 16]);
    return fa_sgemm_lanes_sum(x, order);
}

/* ---------------------------------------------------------------------------------------------
 * Shapes */

/* mean + V * p_local as PDM::CalcShape3D's sgemm forms it: M = 1 (A = p_local), N = the shape's
 * rows (B(k, j) = V[j][k]), K = the modes, C = the mean with beta = 1. So row j is the mean plus
 * the sum in fa_sgemm_small_order(0, 1, j, N, K): one accumulator for the eye models' 10 modes; for
 * the 34 and 32 modes of the others, lanes added in groups of 4, except in the last N mod 4 rows,
 * where they are added as halves. CalcParams forms the product on the visible points' rows alone,
 * so which rows are last depends on the points. */
static float shape_row(const fa_pdm_t *pdm, const float *params_local, int row,
                       fa_sgemm_order order) {
    int modes = pdm->mode_count;
    return pdm->mean_shape[row] + dot_in_order(pdm->components + (size_t)row * (size_t)modes, 1,
                                               params_local, 1, modes, order);
}

/* Every row of the full shape, the rows from halves_from on in the order of a product's last
 * rows, the others in that of the rows before. */
static void shape_generic(const fa_pdm_t *pdm, const float *params_local, int halves_from,
                          float *shape) {
    fa_sgemm_order leading = fa_sgemm_small_order(0, 1, 0, 4, pdm->mode_count);
    fa_sgemm_order last = fa_sgemm_small_order(0, 1, 0, 1, pdm->mode_count);
    for (int row = 0; row < 3 * pdm->point_count; row++)
        shape[row] = shape_row(pdm, params_local, row, row < halves_from ? leading : last);
}

#if FA_PDM_X86
/* The lanes of one block of rows of the blocked copy (fa_pdm_t): x[r] sums the modes k = first
 * + r mod 16, each vector lane one row; mode k of the block is at block + k * width. Lanes are
 * summed from 32 modes up and models have fewer than 48, so every lane takes two or three. */
_Static_assert(FA_PDM_MAX_MODES < 48, "shape_lanes_avx2 takes at most three modes per lane");
__attribute__((target("avx2,fma"))) static inline FA_ALWAYS_INLINE void
shape_lanes_avx2(const float *block, int width, const float *params_local, int modes, int first,
                 int masked, __m256i mask, __m256 x[8]) {
#define SHAPE_LANE_TERM(k, sum)                                                                    \
    _mm256_fmadd_ps(masked ? _mm256_maskload_ps(block + (k)*width, mask)                           \
                           : _mm256_loadu_ps(block + (k)*width),                                   \
                    _mm256_set1_ps(params_local[k]), sum)
    for (int r = 0; r < 8; r++) {
        int k = first + r; /* k + 16 < 32 <= modes */
        x[r] = SHAPE_LANE_TERM(k + 16, SHAPE_LANE_TERM(k, _mm256_setzero_ps()));
        if (k + 32 < modes) x[r] = SHAPE_LANE_TERM(k + 32, x[r]);
    }
#undef SHAPE_LANE_TERM
}

/* One block's sum of its lanes in groups of 4, a half of the lanes at a time. */
__attribute__((target("avx2,fma"))) static inline FA_ALWAYS_INLINE __m256
shape_lanes_by_groups(const float *block, const float *params_local, int modes) {
    __m256 x[8], group[4];
    for (int h = 0; h < 2; h++) {
        shape_lanes_avx2(block, 8, params_local, modes, 8 * h, 0, _mm256_setzero_si256(), x);
        for (int q = 0; q < 2; q++)
            group[2 * h + q] = _mm256_add_ps(_mm256_add_ps(x[4 * q], x[4 * q + 1]),
                                             _mm256_add_ps(x[4 * q + 2], x[4 * q + 3]));
    }
    return _mm256_add_ps(_mm256_add_ps(group[0], group[1]), _mm256_add_ps(group[2], group[3]));
}

/* shape_generic a block of eight rows at a time (the last rows under a mask), from the blocked
 * copy: each vector lane is one row, with the scalar code's operations. */
__attribute__((target("avx2,fma"))) static void
shape_avx2(const fa_pdm_t *pdm, const float *params_local, int halves_from, float *shape) {
    const int modes = pdm->mode_count, rows = 3 * pdm->point_count, whole = rows - rows % 8;
    const float *blocked = pdm->components_blocked;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    int row = 0;
    if (modes < 32) { /* one chain per row; four blocks in flight to hide the FMA latency */
        for (; row + 32 <= whole; row += 32) {
            __m256 sum[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                             _mm256_setzero_ps()};
            const float *block = blocked + (size_t)row * (size_t)modes;
            for (int k = 0; k < modes; k++) {
                __m256 p = _mm256_set1_ps(params_local[k]);
                for (int b = 0; b < 4; b++)
                    sum[b] = _mm256_fmadd_ps(
                        _mm256_loadu_ps(block + (size_t)(8 * b) * modes + 8 * k), p, sum[b]);
            }
            for (int b = 0; b < 4; b++)
                _mm256_storeu_ps(
                    shape + row + 8 * b,
                    _mm256_add_ps(_mm256_loadu_ps(pdm->mean_shape + row + 8 * b), sum[b]));
        }
        for (; row < rows; row += 8) {
            int width = row < whole ? 8 : rows - whole;
            __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(width), lane);
            const float *block = blocked + (size_t)row * (size_t)modes;
            __m256 sum = _mm256_setzero_ps();
            for (int k = 0; k < modes; k++)
                sum = _mm256_fmadd_ps(_mm256_maskload_ps(block + k * width, mask),
                                      _mm256_set1_ps(params_local[k]), sum);
            _mm256_maskstore_ps(
                shape + row, mask,
                _mm256_add_ps(_mm256_maskload_ps(pdm->mean_shape + row, mask), sum));
        }
        return;
    }
    /* lanes, added in groups of 4: the whole blocks before halves_from */
    for (; row + 8 <= whole && row + 8 <= halves_from; row += 8) {
        __m256 sum =
            shape_lanes_by_groups(blocked + (size_t)row * (size_t)modes, params_local, modes);
        _mm256_storeu_ps(shape + row, _mm256_add_ps(_mm256_loadu_ps(pdm->mean_shape + row), sum));
    }
    for (; row < rows; row += 8) { /* the rest under a mask, the rows from halves_from as halves */
        int width = row < whole ? 8 : rows - whole;
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(width), lane);
        const float *block = blocked + (size_t)row * (size_t)modes;
        __m256 low[8], high[8], group[4], half[8], quarter[4];
        shape_lanes_avx2(block, width, params_local, modes, 0, 1, mask, low);
        shape_lanes_avx2(block, width, params_local, modes, 8, 1, mask, high);
        for (int q = 0; q < 2; q++) {
            group[q] = _mm256_add_ps(_mm256_add_ps(low[4 * q], low[4 * q + 1]),
                                     _mm256_add_ps(low[4 * q + 2], low[4 * q + 3]));
            group[q + 2] = _mm256_add_ps(_mm256_add_ps(high[4 * q], high[4 * q + 1]),
                                         _mm256_add_ps(high[4 * q + 2], high[4 * q + 3]));
        }
        __m256 sum =
            _mm256_add_ps(_mm256_add_ps(group[0], group[1]), _mm256_add_ps(group[2], group[3]));
        for (int l = 0; l < 8; l++)
            half[l] = _mm256_add_ps(low[l], high[l]);
        for (int l = 0; l < 4; l++)
            quarter[l] = _mm256_add_ps(half[l], half[l + 4]);
        __m256 halves = _mm256_add_ps(_mm256_add_ps(quarter[0], quarter[2]),
                                      _mm256_add_ps(quarter[1], quarter[3]));
        __m256i late = _mm256_cmpgt_epi32(_mm256_add_epi32(_mm256_set1_epi32(row), lane),
                                          _mm256_set1_epi32(halves_from - 1));
        sum = _mm256_blendv_ps(sum, halves, _mm256_castsi256_ps(late));
        _mm256_maskstore_ps(shape + row, mask,
                            _mm256_add_ps(_mm256_maskload_ps(pdm->mean_shape + row, mask), sum));
    }
}
#endif

static int cpu_has_fma(void) {
#if FA_PDM_X86
    return __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
#else
    return 0;
#endif
}

static void compute_shape(const fa_pdm_t *pdm, const float *params_local, int halves_from,
                          float *shape, int fma) {
#if FA_PDM_X86
    if (fma && pdm->components_blocked) {
        shape_avx2(pdm, params_local, halves_from, shape);
        return;
    }
#endif
    (void)fma;
    shape_generic(pdm, params_local, halves_from, shape);
}

/* CalcShape3D on the rows of the listed points (X block, Y block, Z block), from the full shape
 * in the leading rows' order: the product's last N mod 4 rows are summed again in their own. */
static void shape_of_points(const fa_pdm_t *pdm, const float *params_local, const int *points,
                            int count, int fma, float *shape) {
    float full[3 * MAX_POINTS];
    int n = pdm->point_count, rows = 3 * count;
    compute_shape(pdm, params_local, 3 * n, full, fma);
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < count; i++)
            shape[b * count + i] = full[b * n + points[i]];
    for (int j = rows & ~3; j < rows; j++) {
        fa_sgemm_order order = fa_sgemm_small_order(0, 1, j, rows, pdm->mode_count);
        shape[j] = shape_row(pdm, params_local, (j / count) * n + points[j % count], order);
    }
}

void fa_pdm_shape_3d(const fa_pdm_t *pdm, const float *params_local, float *shape) {
    compute_shape(pdm, params_local, 3 * pdm->point_count & ~3, shape, cpu_has_fma());
}

void fa_pdm_shape_3d_reference(const fa_pdm_t *pdm, const float *params_local, float *shape) {
    compute_shape(pdm, params_local, 3 * pdm->point_count & ~3, shape, 0);
}

void fa_pdm_shape_3d_points(const fa_pdm_t *pdm, const float *params_local, const int *points,
                            int count, int simd, float *shape) {
    shape_of_points(pdm, params_local, points, count, simd && cpu_has_fma(), shape);
}

/* Utilities::Euler2RotationMatrix: R = Rx * Ry * Rz, in float. Its sin and cos calls resolve to
 * the double functions in OpenFace's build, hence the double calls rounded to float. */
static void euler_to_rotation(const float euler[3], float r[3][3]) {
    float s1 = (float)sin(euler[0]), s2 = (float)sin(euler[1]), s3 = (float)sin(euler[2]);
    float c1 = (float)cos(euler[0]), c2 = (float)cos(euler[1]), c3 = (float)cos(euler[2]);
    r[0][0] = c2 * c3;
    r[0][1] = -c2 * s3;
    r[0][2] = s2;
    r[1][0] = c1 * s3 + c3 * s1 * s2;
    r[1][1] = c1 * c3 - s1 * s2 * s3;
    r[1][2] = -c2 * s1;
    r[2][0] = s1 * s3 - c1 * c3 * s2;
    r[2][1] = c3 * s1 + c1 * s2 * s3;
    r[2][2] = c1 * c2;
}

void fa_pdm_shape_2d(const fa_pdm_t *pdm, const float params_global[6], const float *params_local,
                     float *landmarks) {
    float shape[3 * MAX_POINTS];
    fa_pdm_shape_3d(pdm, params_local, shape);
    fa_pdm_project(pdm, params_global, shape, landmarks);
}

void fa_pdm_project(const fa_pdm_t *pdm, const float params_global[6], const float *shape,
                    float *landmarks) {
    int n = pdm->point_count;
    float r[3][3];
    euler_to_rotation(params_global + 1, r);
    float s = params_global[0], tx = params_global[4], ty = params_global[5];
    for (int i = 0; i < n; i++) {
        float x = shape[i], y = shape[i + n], z = shape[i + 2 * n];
        landmarks[i] = s * (r[0][0] * x + r[0][1] * y + r[0][2] * z) + tx;
        landmarks[i + n] = s * (r[1][0] * x + r[1][1] * y + r[1][2] * z) + ty;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Rotations, as OpenCV computes them */

/* OpenCV's hypot in lapack.cpp (not libm's): a * sqrt(1 + (b/a)^2). */
static double opencv_hypot(double a, double b) {
    a = fabs(a);
    b = fabs(b);
    if (a > b) {
        b /= a;
        return a * sqrt(1 + b * b);
    }
    if (b > 0) {
        a /= b;
        return b * sqrt(1 + a * a);
    }
    return 0;
}

/* cv::SVD of a 3x3 matrix: OpenCV's one-sided Jacobi (JacobiSVDImpl_) on the transposed matrix,
 * in float (vectors) with double norms. Gives u and vt; singular values are not needed. A zero
 * singular value (impossible for the rotation-like inputs here) is not given OpenCV's random
 * completion. */
#define DEFINE_JACOBI_SVD3(NAME, T, EPS)                                                           \
    static void NAME(const T a[3][3], T u[3][3], T vt[3][3]) {                                     \
        T at[3][3];                                                                                \
        double w[3];                                                                               \
        for (int i = 0; i < 3; i++) {                                                              \
            double sd = 0;                                                                         \
            for (int k = 0; k < 3; k++) {                                                          \
                at[i][k] = a[k][i];                                                                \
                sd += (double)at[i][k] * at[i][k];                                                 \
            }                                                                                      \
            w[i] = sd;                                                                             \
            for (int k = 0; k < 3; k++)                                                            \
                vt[i][k] = (T)(i == k);                                                            \
        }                                                                                          \
        for (int iteration = 0; iteration < 30; iteration++) {                                     \
            int changed = 0;                                                                       \
            for (int i = 0; i < 2; i++)                                                            \
                for (int j = i + 1; j < 3; j++) {                                                  \
                    double a0 = w[i], b0 = w[j], p = 0;                                            \
                    for (int k = 0; k < 3; k++)                                                    \
                        p += (double)at[i][k] * at[j][k];                                          \
                    if (fabs(p) <= (EPS)*sqrt(a0 * b0)) continue;                                  \
                    p *= 2;                                                                        \
                    double beta = a0 - b0, gamma = opencv_hypot(p, beta);                          \
                    T c, s;                                                                        \
                    if (beta < 0) {                                                                \
                        double delta = (gamma - beta) * 0.5;                                       \
                        s = (T)sqrt(delta / gamma);                                                \
                        c = (T)(p / (gamma * s * 2));                                              \
                    } else {                                                                       \
                        c = (T)sqrt((gamma + beta) / (gamma * 2));                                 \
                        s = (T)(p / (gamma * c * 2));                                              \
                    }                                                                              \
                    a0 = b0 = 0;                                                                   \
                    for (int k = 0; k < 3; k++) {                                                  \
                        T t0 = c * at[i][k] + s * at[j][k];                                        \
                        T t1 = -s * at[i][k] + c * at[j][k];                                       \
                        at[i][k] = t0;                                                             \
                        at[j][k] = t1;                                                             \
                        a0 += (double)t0 * t0;                                                     \
                        b0 += (double)t1 * t1;                                                     \
                    }                                                                              \
                    w[i] = a0;                                                                     \
                    w[j] = b0;                                                                     \
                    changed = 1;                                                                   \
                    for (int k = 0; k < 3; k++) {                                                  \
                        T t0 = c * vt[i][k] + s * vt[j][k];                                        \
                        T t1 = -s * vt[i][k] + c * vt[j][k];                                       \
                        vt[i][k] = t0;                                                             \
                        vt[j][k] = t1;                                                             \
                    }                                                                              \
                }                                                                                  \
            if (!changed) break;                                                                   \
        }                                                                                          \
        for (int i = 0; i < 3; i++) {                                                              \
            double sd = 0;                                                                         \
            for (int k = 0; k < 3; k++)                                                            \
                sd += (double)at[i][k] * at[i][k];                                                 \
            w[i] = sqrt(sd);                                                                       \
        }                                                                                          \
        for (int i = 0; i < 2; i++) { /* descending singular values, selection as OpenCV */        \
            int j = i;                                                                             \
            for (int k = i + 1; k < 3; k++)                                                        \
                if (w[j] < w[k]) j = k;                                                            \
            if (i == j) continue;                                                                  \
            double wt = w[i];                                                                      \
            w[i] = w[j];                                                                           \
            w[j] = wt;                                                                             \
            for (int k = 0; k < 3; k++) {                                                          \
                T t = at[i][k];                                                                    \
                at[i][k] = at[j][k];                                                               \
                at[j][k] = t;                                                                      \
                t = vt[i][k];                                                                      \
                vt[i][k] = vt[j][k];                                                               \
                vt[j][k] = t;                                                                      \
            }                                                                                      \
        }                                                                                          \
        for (int i = 0; i < 3; i++) {                                                              \
            T scale = (T)(w[i] > DBL_MIN ? 1 / w[i] : 0.);                                         \
            for (int k = 0; k < 3; k++)                                                            \
                u[k][i] = at[i][k] * scale;                                                        \
        }                                                                                          \
    }

DEFINE_JACOBI_SVD3(svd3_float, float, FLT_EPSILON * 2)
DEFINE_JACOBI_SVD3(svd3_double, double, DBL_EPSILON * 10)

/* cv::gemm's 3x3 float path: float dot products. */
static void multiply3_float(const float a[3][3], const float b[3][3], float out[3][3]) {
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            out[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
}

/* PDM::Orthonormalise: u * diag(1, 1, det(u vt)) * vt. */
static void orthonormalise(float r[3][3]) {
    float u[3][3], vt[3][3], x[3][3];
    svd3_float((const float(*)[3])r, u, vt);
    multiply3_float((const float(*)[3])u, (const float(*)[3])vt, x);
    /* cv::determinant of a 3x3 float matrix: the 2x2 minors in double. */
    double det = x[0][0] * ((double)x[1][1] * x[2][2] - (double)x[1][2] * x[2][1]) -
                 x[0][1] * ((double)x[1][0] * x[2][2] - (double)x[1][2] * x[2][0]) +
                 x[0][2] * ((double)x[1][0] * x[2][1] - (double)x[1][1] * x[2][0]);
    float w[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, (float)det}}, uw[3][3];
    multiply3_float((const float(*)[3])u, (const float(*)[3])w, uw);
    multiply3_float((const float(*)[3])uw, (const float(*)[3])vt, r);
}

/* cv::Rodrigues, rotation matrix to axis-angle: re-orthonormalised in double by SVD. */
static void rotation_to_axis_angle(const float rotation[3][3], float axis_angle[3]) {
    double a[3][3], u[3][3], vt[3][3], r[3][3];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            a[i][j] = rotation[i][j];
    svd3_double((const double(*)[3])a, u, vt);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            double s = 0;
            for (int k = 0; k < 3; k++)
                s += u[i][k] * vt[k][j];
            r[i][j] = s;
        }
    double rx = r[2][1] - r[1][2], ry = r[0][2] - r[2][0], rz = r[1][0] - r[0][1];
    double s = sqrt((rx * rx + ry * ry + rz * rz) * 0.25);
    double c = (r[0][0] + r[1][1] + r[2][2] - 1) * 0.5;
    c = c > 1. ? 1. : c < -1. ? -1. : c;
    double theta = acos(c);
    if (s < 1e-5) {
        if (c > 0) {
            rx = ry = rz = 0;
        } else { /* a half turn: the axis from the diagonal */
            double t = (r[0][0] + 1) * 0.5;
            rx = sqrt(fmax(t, 0.));
            t = (r[1][1] + 1) * 0.5;
            ry = sqrt(fmax(t, 0.)) * (r[0][1] < 0 ? -1. : 1.);
            t = (r[2][2] + 1) * 0.5;
            rz = sqrt(fmax(t, 0.)) * (r[0][2] < 0 ? -1. : 1.);
            if (fabs(rx) < fabs(ry) && fabs(rx) < fabs(rz) && (r[1][2] > 0) != (ry * rz > 0))
                rz = -rz;
            theta /= sqrt(rx * rx + ry * ry + rz * rz);
            rx *= theta;
            ry *= theta;
            rz *= theta;
        }
    } else {
        double scale = 1 / (2 * s);
        scale *= theta;
        rx *= scale;
        ry *= scale;
        rz *= scale;
    }
    axis_angle[0] = (float)rx;
    axis_angle[1] = (float)ry;
    axis_angle[2] = (float)rz;
}

/* cv::Rodrigues, axis-angle to rotation matrix, in double. */
static void axis_angle_to_rotation(const float axis_angle[3], float rotation[3][3]) {
    double x = axis_angle[0], y = axis_angle[1], z = axis_angle[2];
    double theta = sqrt(x * x + y * y + z * z);
    if (theta < DBL_EPSILON) {
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
                rotation[i][j] = (float)(i == j);
        return;
    }
    double c = cos(theta), s = sin(theta), c1 = 1. - c, inverse = theta ? 1. / theta : 0.;
    x *= inverse;
    y *= inverse;
    z *= inverse;
    const double rrt[3][3] = {{x * x, x * y, x * z}, {x * y, y * y, y * z}, {x * z, y * z, z * z}};
    const double cross[3][3] = {{0, -z, y}, {z, 0, -x}, {-y, x, 0}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            rotation[i][j] = (float)((c * (double)(i == j) + c1 * rrt[i][j]) + s * cross[i][j]);
}

/* Utilities::RotationMatrix2Euler: through a quaternion, in float with the double sqrt, asin and
 * atan2 (as OpenFace's build resolves them). */
void fa_pdm_rotation_to_euler(const float r[3][3], float euler[3]) {
    float q0 = (float)(sqrt(1 + r[0][0] + r[1][1] + r[2][2]) / 2.0f);
    float q1 = (r[2][1] - r[1][2]) / (4.0f * q0);
    float q2 = (r[0][2] - r[2][0]) / (4.0f * q0);
    float q3 = (r[1][0] - r[0][1]) / (4.0f * q0);
    float t1 = 2.0f * (q0 * q2 + q1 * q3);
    if (t1 > 1) t1 = 1.0f;
    if (t1 < -1) t1 = -1.0f;
    euler[1] = (float)asin(t1);
    euler[0] = (float)atan2(2.0f * (q0 * q1 - q2 * q3), q0 * q0 - q1 * q1 - q2 * q2 + q3 * q3);
    euler[2] = (float)atan2(2.0f * (q0 * q3 - q1 * q2), q0 * q0 + q1 * q1 - q2 * q2 - q3 * q3);
}

/* PDM::UpdateModelParameters. */
static void update_parameters(const float *delta, int modes, float global[6], float *local) {
    global[0] += delta[0];
    global[4] += delta[4];
    global[5] += delta[5];
    float r1[3][3], r3[3][3];
    euler_to_rotation(global + 1, r1);
    /* The small-angle rotation R' = I + [w]x, made orthonormal. */
    float r2[3][3] = {{1, -delta[3], delta[2]}, {delta[3], 1, -delta[1]}, {-delta[2], delta[1], 1}};
    orthonormalise(r2);
    for (int i = 0; i < 3; i++) /* cv::Matx product: float, from 0 */
        for (int j = 0; j < 3; j++) {
            float s = 0;
            for (int k = 0; k < 3; k++)
                s += r1[i][k] * r2[k][j];
            r3[i][j] = s;
        }
    float axis_angle[3], r[3][3], euler[3];
    rotation_to_axis_angle((const float(*)[3])r3, axis_angle);
    axis_angle_to_rotation(axis_angle, r);
    fa_pdm_rotation_to_euler((const float(*)[3])r, euler);
    if (isnan(euler[0]) || isnan(euler[1]) || isnan(euler[2])) euler[0] = euler[1] = euler[2] = 0;
    global[1] = euler[0];
    global[2] = euler[1];
    global[3] = euler[2];
    for (int j = 0; j < modes; j++)
        local[j] += delta[6 + j];
}

/* ---------------------------------------------------------------------------------------------
 * CalcParams */

typedef struct fit {
    const fa_pdm_t *pdm;
    int n, m, count;              /* all points, modes, visible points */
    int fma;                      /* the CPU has FMA and AVX2 */
    int index[MAX_POINTS];        /* visible point indices */
    float target[2 * MAX_POINTS]; /* visible x then visible y */
    float shape[3 * MAX_POINTS];  /* model-space shape of the visible points: X, Y, Z blocks */
    float projection_shape[3 * MAX_POINTS]; /* the same, as the loop's projection forms it */
} fit_t;

/* The shape of the visible points, twice. The Jacobian's (ComputeJacobian's CalcShape3D on the
 * subsampled PDM) always goes through sgemm, with the visible points' rows as N. The loop's
 * projection uses M + V * p_local through cv::gemm (C = M), which OpenCV hands to OpenBLAS only
 * from 100 rows (cblas_sgemm, row-major: the same sgemm as CalcShape3D's); below that its own
 * gemm forms a double sum of the float products plus C, rounded once (probed: e.g. the eye
 * models with 6 visible points, 18 rows). */
static void fit_shape(fit_t *fit, const float *local) {
    shape_of_points(fit->pdm, local, fit->index, fit->count, fit->fma, fit->shape);
    if (3 * fit->count >= 100) {
        memcpy(fit->projection_shape, fit->shape, sizeof(float) * (size_t)(3 * fit->count));
        return;
    }
    const fa_pdm_t *pdm = fit->pdm;
    int m = fit->m;
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < fit->count; i++) {
            size_t row = (size_t)(b * fit->n + fit->index[i]);
            const float *component = pdm->components + row * (size_t)m;
            double sum = 0;
            for (int j = 0; j < m; j++)
                sum += (double)component[j] * local[j];
            fit->projection_shape[b * fit->count + i] = (float)(sum + pdm->mean_shape[row]);
        }
}

double fa_pdm_norm_difference(const float *a, const float *b, int count) {
    double sum = 0;
    int i = 0;
    for (; i + 4 <= count; i += 4) {
        double v0 = a[i] - b[i], v1 = a[i + 1] - b[i + 1];
        double v2 = a[i + 2] - b[i + 2], v3 = a[i + 3] - b[i + 3];
        sum += v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3;
    }
    for (; i < count; i++) {
        double v = a[i] - b[i];
        sum += v * v;
    }
    return sqrt(sum);
}

/* The loop's projection: scaling * shape^T * R_2D^T through cv::gemm (double sums), then the
 * translation added in float. */
static void fit_project(const fit_t *fit, const float global[6], float *projected) {
    float r[3][3];
    euler_to_rotation(global + 1, r);
    int c = fit->count;
    for (int axis = 0; axis < 2; axis++)
        for (int i = 0; i < c; i++) {
            const float *shape = fit->projection_shape;
            double s = (double)shape[i] * r[axis][0];
            s += (double)shape[i + c] * r[axis][1];
            s += (double)shape[i + 2 * c] * r[axis][2];
            projected[axis * c + i] = (float)(s * global[0]) + global[4 + axis];
        }
}

/* The non-rigid columns of a point's two Jacobian rows: jx[j] = s (r0 . v_j), jy[j] = s (r1 . v_j)
 * over the modes, v_j = (vx[j], vy[j], vz[j]), each a float sum from the left. */
static void jacobian_modes_generic(const float r[2][3], float s, const float *vx, const float *vy,
                                   const float *vz, int modes, float *jx, float *jy) {
    for (int j = 0; j < modes; j++) {
        jx[j] = s * (r[0][0] * vx[j] + r[0][1] * vy[j] + r[0][2] * vz[j]);
        jy[j] = s * (r[1][0] * vx[j] + r[1][1] * vy[j] + r[1][2] * vz[j]);
    }
}

#if FA_PDM_X86
/* jacobian_modes_generic sixteen modes a vector (AVX-512), the last ones under a mask. */
__attribute__((target("avx2,avx512f,avx512vl"))) static void
jacobian_modes_wide(const float r[2][3], float s, const float *vx, const float *vy, const float *vz,
                    int modes, float *jx, float *jy) {
    __m512 scale = _mm512_set1_ps(s), r00 = _mm512_set1_ps(r[0][0]), r01 = _mm512_set1_ps(r[0][1]),
           r02 = _mm512_set1_ps(r[0][2]), r10 = _mm512_set1_ps(r[1][0]),
           r11 = _mm512_set1_ps(r[1][1]), r12 = _mm512_set1_ps(r[1][2]);
    for (int j = 0; j < modes; j += 16) {
        __mmask16 mask = (__mmask16)(modes - j >= 16 ? 0xFFFF : (1u << (modes - j)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(mask, vx + j), y = _mm512_maskz_loadu_ps(mask, vy + j),
               z = _mm512_maskz_loadu_ps(mask, vz + j);
        __m512 u = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(r00, x), _mm512_mul_ps(r01, y)),
                                 _mm512_mul_ps(r02, z));
        __m512 v = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(r10, x), _mm512_mul_ps(r11, y)),
                                 _mm512_mul_ps(r12, z));
        _mm512_mask_storeu_ps(jx + j, mask, _mm512_mul_ps(scale, u));
        _mm512_mask_storeu_ps(jy + j, mask, _mm512_mul_ps(scale, v));
    }
}
#endif

/* PDM::ComputeJacobian (unit weights): rows x0.., then y0..; columns s, rx, ry, rz, tx, ty, then
 * the first `modes` modes (fit->m, or 0 for ComputeRigidJacobian). simd = 0: plain C. */
static void fit_jacobian(const fit_t *fit, const float global[6], int modes, int simd,
                         float *jacobian) {
    float r[3][3];
    euler_to_rotation(global + 1, r);
    int c = fit->count, m = fit->m, columns = 6 + modes;
#if FA_PDM_X86
    int wide = simd && modes > 0 && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512vl");
#else
    (void)simd;
#endif
    float s = global[0];
    for (int i = 0; i < c; i++) {
        float x = fit->shape[i], y = fit->shape[i + c], z = fit->shape[i + 2 * c];
        float *jx = jacobian + (size_t)i * columns, *jy = jacobian + (size_t)(i + c) * columns;
        jx[0] = x * r[0][0] + y * r[0][1] + z * r[0][2];
        jy[0] = x * r[1][0] + y * r[1][1] + z * r[1][2];
        jx[1] = s * (y * r[0][2] - z * r[0][1]);
        jy[1] = s * (y * r[1][2] - z * r[1][1]);
        jx[2] = -s * (x * r[0][2] - z * r[0][0]);
        jy[2] = -s * (x * r[1][2] - z * r[1][0]);
        jx[3] = s * (x * r[0][1] - y * r[0][0]);
        jy[3] = s * (x * r[1][1] - y * r[1][0]);
        jx[4] = 1.0f;
        jy[4] = 0.0f;
        jx[5] = 0.0f;
        jy[5] = 1.0f;
        if (modes == 0) continue;
        int p = fit->index[i], n = fit->n;
        const float *vx = fit->pdm->components + (size_t)p * m;
        const float *vy = fit->pdm->components + (size_t)(p + n) * m;
        const float *vz = fit->pdm->components + (size_t)(p + 2 * n) * m;
#if FA_PDM_X86
        if (wide) {
            jacobian_modes_wide((const float(*)[3])r, s, vx, vy, vz, modes, jx + 6, jy + 6);
            continue;
        }
#endif
        jacobian_modes_generic((const float(*)[3])r, s, vx, vy, vz, modes, jx + 6, jy + 6);
    }
}

/* The right-hand side J^T r - Λ p_local. J^T r is cv::gemm with a one-column B: double sums in
 * four interleaved accumulators. The regularisation is a gemm with C = the gradient, beta = 1,
 * alpha = -1: one rounding of the double difference. */
static void gradient_generic(const float *jacobian, int rows, int columns, const float *residual,
                             float *gradient) {
    for (int j = 0; j < columns; j++) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int k = 0;
        for (; k + 4 <= rows; k += 4) {
            s0 += (double)jacobian[(size_t)k * columns + j] * residual[k];
            s1 += (double)jacobian[(size_t)(k + 1) * columns + j] * residual[k + 1];
            s2 += (double)jacobian[(size_t)(k + 2) * columns + j] * residual[k + 2];
            s3 += (double)jacobian[(size_t)(k + 3) * columns + j] * residual[k + 3];
        }
        for (; k < rows; k++)
            s0 += (double)jacobian[(size_t)k * columns + j] * residual[k];
        gradient[j] = (float)(s0 + s1 + s2 + s3);
    }
}

#if FA_PDM_X86
/* gradient_generic with one column a lane: eight columns a vector of doubles with AVX-512, four
 * with AVX2 (two vectors at a time, so that eight chains overlap). */
__attribute__((target("avx2,avx512f,avx512vl"))) static void gradient_wide(const float *jacobian,
                                                                           int rows, int columns,
                                                                           const float *residual,
                                                                           float *gradient) {
    for (int j = 0; j < columns; j += 8) {
        __mmask8 mask = (__mmask8)(columns - j >= 8 ? 0xFF : (1u << (columns - j)) - 1);
        const float *column = jacobian + j;
#define GRADIENT_TERM(s, k)                                                                        \
    s = _mm512_add_pd(                                                                             \
        s,                                                                                         \
        _mm512_mul_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(mask, column + (size_t)(k)*columns)),  \
                      _mm512_set1_pd((double)residual[k])))
        __m512d s0 = _mm512_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
        int k = 0;
        for (; k + 4 <= rows; k += 4) {
            GRADIENT_TERM(s0, k);
            GRADIENT_TERM(s1, k + 1);
            GRADIENT_TERM(s2, k + 2);
            GRADIENT_TERM(s3, k + 3);
        }
        for (; k < rows; k++)
            GRADIENT_TERM(s0, k);
#undef GRADIENT_TERM
        __m512d sum = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(s0, s1), s2), s3);
        _mm256_mask_storeu_ps(gradient + j, mask, _mm512_cvtpd_ps(sum));
    }
}

__attribute__((target("avx2"))) static void gradient_avx2(const float *jacobian, int rows,
                                                          int columns, const float *residual,
                                                          float *gradient) {
    const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
    for (int j = 0; j < columns; j += 8) {
        __m128i mask_a = _mm_cmpgt_epi32(_mm_set1_epi32(columns - j), lane);
        __m128i mask_b = _mm_cmpgt_epi32(_mm_set1_epi32(columns - j - 4), lane);
        const float *column = jacobian + j;
#define GRADIENT_TERM(s, t, k)                                                                     \
    do {                                                                                           \
        __m256d r = _mm256_set1_pd((double)residual[k]);                                           \
        const float *row = column + (size_t)(k)*columns;                                           \
        s = _mm256_add_pd(s, _mm256_mul_pd(_mm256_cvtps_pd(_mm_maskload_ps(row, mask_a)), r));     \
        t = _mm256_add_pd(t, _mm256_mul_pd(_mm256_cvtps_pd(_mm_maskload_ps(row + 4, mask_b)), r)); \
    } while (0)
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        __m256d b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        int k = 0;
        for (; k + 4 <= rows; k += 4) {
            GRADIENT_TERM(a0, b0, k);
            GRADIENT_TERM(a1, b1, k + 1);
            GRADIENT_TERM(a2, b2, k + 2);
            GRADIENT_TERM(a3, b3, k + 3);
        }
        for (; k < rows; k++)
            GRADIENT_TERM(a0, b0, k);
#undef GRADIENT_TERM
        __m128 low = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), a2), a3));
        __m128 high = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_add_pd(_mm256_add_pd(b0, b1), b2), b3));
        _mm_maskstore_ps(gradient + j, mask_a, low);
        _mm_maskstore_ps(gradient + j + 4, mask_b, high);
    }
}
#endif

/* J^T r by the widest kernel the CPU has (simd = 0: plain C). */
static void gradient_product(const float *jacobian, int rows, int columns, const float *residual,
                             int simd, float *gradient) {
#if FA_PDM_X86
    if (simd && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) {
        gradient_wide(jacobian, rows, columns, residual, gradient);
        return;
    }
    if (simd && __builtin_cpu_supports("avx2")) {
        gradient_avx2(jacobian, rows, columns, residual, gradient);
        return;
    }
#endif
    (void)simd;
    gradient_generic(jacobian, rows, columns, residual, gradient);
}

static void gradient_regularise(int modes, const float *regularisation, const float *local,
                                float *gradient) {
    for (int j = 0; j < modes; j++)
        gradient[6 + j] = (float)((double)regularisation[j] * local[j] * -1.0 + gradient[6 + j]);
}

static void fit_gradient(const fit_t *fit, const float *jacobian, const float *residual,
                         const float *regularisation, const float *local, float *gradient) {
    gradient_product(jacobian, 2 * fit->count, 6 + fit->m, residual, fit->fma, gradient);
    gradient_regularise(fit->m, regularisation, local, gradient);
}

/* ---------------------------------------------------------------------------------------------
 * The Hessian */

/* J^T W J + Λ as OpenFace's sgemm forms it: A = J^T (M = the columns, K = the rows), B = the
 * weighted J (N = the columns), C = Λ with beta = 1. Column-major C(i, j) is
 * hessian[j * columns + i]: Λ(i, j) plus the sum over k of J[k][i] Jw[k][j] in
 * fa_sgemm_small_order(i, columns, j, columns, rows). For OpenFace's models: one accumulator for i
 * < 32 and for all 16 of the eye models; lanes for the other i of 40 and 38 columns and for all 6
 * of a rigid step (at least 32 rows), added as halves where i and j are both 36 or 37 (38
 * columns) or both 4 or 5 (6 columns). */
static void hessian_generic(const float *jacobian, const float *weighted, int rows, int columns,
                            const float *regularisation, float *hessian) {
    for (int j = 0; j < columns; j++)
        for (int i = 0; i < columns; i++) {
            fa_sgemm_order order = fa_sgemm_small_order(i, columns, j, columns, rows);
            float sum = dot_in_order(jacobian + i, (size_t)columns, weighted + j, (size_t)columns,
                                     rows, order);
            hessian[j * columns + i] = (i == j && i >= 6 ? regularisation[i - 6] : 0.0f) + sum;
        }
}

#if FA_PDM_X86
/* The SIMD kernels: the elements i < chains of a column sum in one accumulator, the others (at
 * most 8) in lanes. The AVX2 kernel takes the chains in whole blocks of 8, then a tail: the
 * fewer than 8 chains left or the lanes. Every vector lane is one element, with
 * hessian_generic's operations. */
typedef struct hessian_layout {
    int chains, blocks, tail_first, tail_count, tail_lanes;
} hessian_layout_t;

static hessian_layout_t hessian_layout(int rows, int columns) {
    hessian_layout_t layout;
    layout.chains = fa_sgemm_small_order(columns - 1, columns, 0, columns, rows) == FA_SGEMM_CHAIN
                        ? columns
                        : columns - columns % 16;
    layout.blocks = layout.chains / 8;
    layout.tail_first = 8 * layout.blocks;
    layout.tail_count = columns - layout.tail_first;
    layout.tail_lanes = layout.chains < columns;
    return layout;
}

/* Adds the regularisation to the diagonal of the local parameters, as sgemm's C + Λ. */
static void hessian_regularise(int columns, const float *regularisation, float *hessian) {
    for (int j = 0; j < columns; j++)
        for (int i = 0; i < columns; i++)
            hessian[j * columns + i] =
                (i == j && i >= 6 ? regularisation[i - 6] : 0.0f) + hessian[j * columns + i];
}

/* The blocks of columns j .. j + COLUMNS - 1: independent chains side by side hide the FMA
 * latency. COLUMNS and blocks are constants where it is inlined, so the accumulators stay in
 * registers (COLUMNS x blocks of them). */
#define HESSIAN_MAX_BLOCKS (MAX_PARAMS / 8)
#define DEFINE_HESSIAN_CHAINS(NAME, TARGET, COLUMNS)                                               \
    TARGET static inline FA_ALWAYS_INLINE void NAME(const float *jacobian, const float *weighted,  \
                                                    int rows, int columns, int j, int blocks,      \
                                                    float *hessian) {                              \
        __m256 sum[COLUMNS][HESSIAN_MAX_BLOCKS];                                                   \
        for (int c = 0; c < COLUMNS; c++)                                                          \
            for (int b = 0; b < blocks; b++)                                                       \
                sum[c][b] = _mm256_setzero_ps();                                                   \
        for (int k = 0; k < rows; k++) {                                                           \
            const float *row = jacobian + (size_t)k * columns;                                     \
            const float *factors = weighted + (size_t)k * columns + j;                             \
            for (int b = 0; b < blocks; b++) {                                                     \
                __m256 value = _mm256_loadu_ps(row + 8 * b);                                       \
                for (int c = 0; c < COLUMNS; c++)                                                  \
                    sum[c][b] = _mm256_fmadd_ps(value, _mm256_set1_ps(factors[c]), sum[c][b]);     \
            }                                                                                      \
        }                                                                                          \
        for (int c = 0; c < COLUMNS; c++)                                                          \
            for (int b = 0; b < blocks; b++)                                                       \
                _mm256_storeu_ps(hessian + (size_t)(j + c) * columns + 8 * b, sum[c][b]);          \
    }

#define AVX2_TARGET __attribute__((target("avx2,fma")))
#define WIDE_TARGET __attribute__((target("avx2,fma,avx512f,avx512vl")))
DEFINE_HESSIAN_CHAINS(hessian_chains_1, AVX2_TARGET, 1)
DEFINE_HESSIAN_CHAINS(hessian_chains_3, AVX2_TARGET, 3)

/* The blocks of every column, GROUP columns at a time (a remainder one by one); the switch
 * gives the model sizes (4 blocks: 38 and 40 columns; 2: 16) constant loops. */
#define DEFINE_HESSIAN_BLOCKS(NAME, TARGET, GROUP, CHAINS)                                         \
    TARGET static void NAME(const float *jacobian, const float *weighted, int rows, int columns,   \
                            int blocks, float *hessian) {                                          \
        int j = 0;                                                                                 \
        for (; j + GROUP <= columns; j += GROUP)                                                   \
            switch (blocks) {                                                                      \
            case 4:                                                                                \
                CHAINS(jacobian, weighted, rows, columns, j, 4, hessian);                          \
                break;                                                                             \
            case 2:                                                                                \
                CHAINS(jacobian, weighted, rows, columns, j, 2, hessian);                          \
                break;                                                                             \
            default:                                                                               \
                CHAINS(jacobian, weighted, rows, columns, j, blocks, hessian);                     \
                break;                                                                             \
            }                                                                                      \
        for (; j < columns; j++)                                                                   \
            hessian_chains_1(jacobian, weighted, rows, columns, j, blocks, hessian);               \
    }
DEFINE_HESSIAN_BLOCKS(hessian_blocks_avx2, AVX2_TARGET, 3, hessian_chains_3)

/* With AVX-512, the single chains of columns j .. j + COLUMNS - 1 sixteen elements to a vector:
 * all `chains` of a column in `blocks` vectors, the last one under a mask when chains is not a
 * multiple of 16 (so no tail of single chains is left). */
#define HESSIAN_MAX_WIDE_BLOCKS ((MAX_PARAMS + 15) / 16)
#define DEFINE_HESSIAN_WIDE_CHAINS(NAME, COLUMNS)                                                  \
    WIDE_TARGET static inline FA_ALWAYS_INLINE void NAME(                                          \
        const float *jacobian, const float *weighted, int rows, int columns, int j, int chains,    \
        int blocks, float *hessian) {                                                              \
        __m512 sum[COLUMNS][HESSIAN_MAX_WIDE_BLOCKS];                                              \
        __mmask16 mask[HESSIAN_MAX_WIDE_BLOCKS];                                                   \
        for (int b = 0; b < blocks; b++) {                                                         \
            int count = chains - 16 * b < 16 ? chains - 16 * b : 16;                               \
            mask[b] = (__mmask16)((1u << count) - 1);                                              \
            for (int c = 0; c < COLUMNS; c++)                                                      \
                sum[c][b] = _mm512_setzero_ps();                                                   \
        }                                                                                          \
        for (int k = 0; k < rows; k++) {                                                           \
            const float *row = jacobian + (size_t)k * columns;                                     \
            const float *factors = weighted + (size_t)k * columns + j;                             \
            for (int b = 0; b < blocks; b++) {                                                     \
                __m512 value = _mm512_maskz_loadu_ps(mask[b], row + 16 * b);                       \
                for (int c = 0; c < COLUMNS; c++)                                                  \
                    sum[c][b] = _mm512_fmadd_ps(value, _mm512_set1_ps(factors[c]), sum[c][b]);     \
            }                                                                                      \
        }                                                                                          \
        for (int c = 0; c < COLUMNS; c++)                                                          \
            for (int b = 0; b < blocks; b++)                                                       \
                _mm512_mask_storeu_ps(hessian + (size_t)(j + c) * columns + 16 * b, mask[b],       \
                                      sum[c][b]);                                                  \
    }
DEFINE_HESSIAN_WIDE_CHAINS(hessian_wide_chains_8, 8)
DEFINE_HESSIAN_WIDE_CHAINS(hessian_wide_chains_4, 4)
DEFINE_HESSIAN_WIDE_CHAINS(hessian_wide_chains_2, 2)
DEFINE_HESSIAN_WIDE_CHAINS(hessian_wide_chains_1, 1)

/* Every column's single chains, eight columns at a time, then four, two and one (16 live
 * accumulators for the models' 2 blocks, in AVX-512's 32 registers). */
#define HESSIAN_WIDE_GROUP(CHAINS, BLOCKS)                                                         \
    CHAINS(jacobian, weighted, rows, columns, j, chains, BLOCKS, hessian)
#define HESSIAN_WIDE_GROUPS(BLOCKS)                                                                \
    do {                                                                                           \
        for (; j + 8 <= columns; j += 8)                                                           \
            HESSIAN_WIDE_GROUP(hessian_wide_chains_8, BLOCKS);                                     \
        if (j + 4 <= columns) HESSIAN_WIDE_GROUP(hessian_wide_chains_4, BLOCKS), j += 4;           \
        if (j + 2 <= columns) HESSIAN_WIDE_GROUP(hessian_wide_chains_2, BLOCKS), j += 2;           \
        if (j < columns) HESSIAN_WIDE_GROUP(hessian_wide_chains_1, BLOCKS), j++;                   \
    } while (0)
WIDE_TARGET static void hessian_blocks_wide(const float *jacobian, const float *weighted, int rows,
                                            int columns, int chains, float *hessian) {
    int j = 0, blocks = (chains + 15) / 16;
    if (blocks == 1)
        HESSIAN_WIDE_GROUPS(1);
    else if (blocks == 2)
        HESSIAN_WIDE_GROUPS(2);
    else
        HESSIAN_WIDE_GROUPS(blocks);
}

/* A tail of fewer than 8 single chains in every column: the tail's elements as the lanes of one
 * masked vector, four columns' chains at a time (a short group repeats its first column). */
AVX2_TARGET static void hessian_tail_chains(const float *jacobian, const float *weighted, int rows,
                                            int columns, hessian_layout_t layout, float *hessian) {
    enum { GROUP = 4 };
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(layout.tail_count),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const float *tail = jacobian + layout.tail_first;
    for (int j0 = 0; j0 < columns; j0 += GROUP) {
        int column[GROUP];
        __m256 sum[GROUP];
        for (int g = 0; g < GROUP; g++) {
            column[g] = j0 + g < columns ? j0 + g : j0;
            sum[g] = _mm256_setzero_ps();
        }
        for (int k = 0; k < rows; k++) {
            __m256 value = _mm256_maskload_ps(tail + (size_t)k * columns, mask);
            for (int g = 0; g < GROUP; g++)
                sum[g] = _mm256_fmadd_ps(
                    value, _mm256_set1_ps(weighted[(size_t)k * columns + column[g]]), sum[g]);
        }
        for (int g = 0; g < GROUP && j0 + g < columns; g++)
            _mm256_maskstore_ps(hessian + (size_t)column[g] * columns + layout.tail_first, mask,
                                sum[g]);
    }
}

/* The lanes of a tail (16 vectors, each lane one element) added in groups of 4 and as halves;
 * in columns from columns & ~3 on, the elements from there on take the halves. */
AVX2_TARGET static inline FA_ALWAYS_INLINE __m256 lanes_total(const __m256 x[16], int columns,
                                                              int first, int j) {
    __m256 group[4], half[8], quarter[4];
    for (int q = 0; q < 4; q++)
        group[q] = _mm256_add_ps(_mm256_add_ps(x[4 * q], x[4 * q + 1]),
                                 _mm256_add_ps(x[4 * q + 2], x[4 * q + 3]));
    __m256 by_groups =
        _mm256_add_ps(_mm256_add_ps(group[0], group[1]), _mm256_add_ps(group[2], group[3]));
    int whole = columns & ~3;
    if (j < whole) return by_groups;
    for (int l = 0; l < 8; l++)
        half[l] = _mm256_add_ps(x[l], x[l + 8]);
    for (int l = 0; l < 4; l++)
        quarter[l] = _mm256_add_ps(half[l], half[l + 4]);
    __m256 by_halves =
        _mm256_add_ps(_mm256_add_ps(quarter[0], quarter[2]), _mm256_add_ps(quarter[1], quarter[3]));
    __m256i past = _mm256_cmpgt_epi32(
        _mm256_add_epi32(_mm256_set1_epi32(first), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
        _mm256_set1_epi32(whole - 1));
    return _mm256_blendv_ps(by_groups, by_halves, _mm256_castsi256_ps(past));
}

/* A tail summed in lanes, column by column: lane l of each element takes the rows k = l mod
 * 16, one lane at a time (16 accumulators would not fit AVX2's registers). */
AVX2_TARGET static void hessian_tail_lanes_avx2(const float *jacobian, const float *weighted,
                                                int rows, int columns, hessian_layout_t layout,
                                                float *hessian) {
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(layout.tail_count),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const float *tail = jacobian + layout.tail_first;
    for (int j = 0; j < columns; j++) {
        __m256 x[16];
        for (int l = 0; l < 16; l++) {
            x[l] = _mm256_setzero_ps();
            for (int k = l; k < rows; k += 16)
                x[l] = _mm256_fmadd_ps(_mm256_maskload_ps(tail + (size_t)k * columns, mask),
                                       _mm256_set1_ps(weighted[(size_t)k * columns + j]), x[l]);
        }
        _mm256_maskstore_ps(hessian + (size_t)j * columns + layout.tail_first, mask,
                            lanes_total(x, columns, layout.tail_first, j));
    }
}

/* A tail summed in lanes with AVX-512VL's 32 registers: as hessian_tail_lanes_avx2, but the 16
 * lane accumulators of a column live together, so the rows are read in order. Used below 16
 * columns (the rigid 6). */
WIDE_TARGET static void hessian_tail_lanes_narrow(const float *jacobian, const float *weighted,
                                                  int rows, int columns, hessian_layout_t layout,
                                                  float *hessian) {
    __mmask8 mask = (__mmask8)((1u << layout.tail_count) - 1);
    const float *tail = jacobian + layout.tail_first;
    for (int j = 0; j < columns; j++) {
        __m256 x[16];
        for (int l = 0; l < 16; l++)
            x[l] = _mm256_setzero_ps();
        for (int k0 = 0; k0 < rows; k0 += 16)
            for (int l = 0; l < 16; l++) {
                int k = k0 + l;
                if (k < rows)
                    x[l] = _mm256_fmadd_ps(_mm256_maskz_loadu_ps(mask, tail + (size_t)k * columns),
                                           _mm256_set1_ps(weighted[(size_t)k * columns + j]), x[l]);
            }
        _mm256_mask_storeu_ps(hessian + (size_t)j * columns + layout.tail_first, mask,
                              lanes_total(x, columns, layout.tail_first, j));
    }
}

/* A tail summed in lanes with AVX-512, sixteen columns j to a vector instead of the tail's
 * elements i: an element's lanes as 16 vectors that live together in the 32 registers, so the
 * rows are read in order. Used from 16 columns on (the models' 38 and 40). */
WIDE_TARGET static void hessian_tail_lanes_wide(const float *jacobian, const float *weighted,
                                                int rows, int columns, hessian_layout_t layout,
                                                float *hessian) {
    int whole = columns & ~3;
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int j0 = 0; j0 < columns; j0 += 16) {
        int count = columns - j0 < 16 ? columns - j0 : 16;
        __mmask16 mask = (__mmask16)((1u << count) - 1);
        /* the columns from whole on take the halves in the elements from whole on */
        __mmask16 late = _mm512_cmpge_epi32_mask(_mm512_add_epi32(_mm512_set1_epi32(j0), lane),
                                                 _mm512_set1_epi32(whole));
        for (int i = layout.tail_first; i < columns; i++) {
            __m512 x[16];
            for (int l = 0; l < 16; l++)
                x[l] = _mm512_setzero_ps();
            for (int k0 = 0; k0 < rows; k0 += 16)
                for (int l = 0; l < 16; l++) {
                    int k = k0 + l;
                    if (k < rows)
                        x[l] = _mm512_fmadd_ps(
                            _mm512_set1_ps(jacobian[(size_t)k * columns + i]),
                            _mm512_maskz_loadu_ps(mask, weighted + (size_t)k * columns + j0), x[l]);
                }
            __m512 group[4], half[8], quarter[4];
            for (int q = 0; q < 4; q++)
                group[q] = _mm512_add_ps(_mm512_add_ps(x[4 * q], x[4 * q + 1]),
                                         _mm512_add_ps(x[4 * q + 2], x[4 * q + 3]));
            __m512 total =
                _mm512_add_ps(_mm512_add_ps(group[0], group[1]), _mm512_add_ps(group[2], group[3]));
            if (i >= whole && late) {
                for (int l = 0; l < 8; l++)
                    half[l] = _mm512_add_ps(x[l], x[l + 8]);
                for (int l = 0; l < 4; l++)
                    quarter[l] = _mm512_add_ps(half[l], half[l + 4]);
                total = _mm512_mask_blend_ps(late, total,
                                             _mm512_add_ps(_mm512_add_ps(quarter[0], quarter[2]),
                                                           _mm512_add_ps(quarter[1], quarter[3])));
            }
            float sums[16];
            _mm512_storeu_ps(sums, total);
            for (int c = 0; c < count; c++)
                hessian[(size_t)(j0 + c) * columns + i] = sums[c];
        }
    }
}

AVX2_TARGET static void hessian_avx2(const float *jacobian, const float *weighted, int rows,
                                     int columns, const float *regularisation, float *hessian) {
    hessian_layout_t layout = hessian_layout(rows, columns);
    if (layout.blocks)
        hessian_blocks_avx2(jacobian, weighted, rows, columns, layout.blocks, hessian);
    if (layout.tail_count && layout.tail_lanes)
        hessian_tail_lanes_avx2(jacobian, weighted, rows, columns, layout, hessian);
    else if (layout.tail_count)
        hessian_tail_chains(jacobian, weighted, rows, columns, layout, hessian);
    hessian_regularise(columns, regularisation, hessian);
}

WIDE_TARGET static void hessian_wide(const float *jacobian, const float *weighted, int rows,
                                     int columns, const float *regularisation, float *hessian) {
    hessian_layout_t layout = hessian_layout(rows, columns);
    if (layout.chains)
        hessian_blocks_wide(jacobian, weighted, rows, columns, layout.chains, hessian);
    if (layout.tail_count && layout.tail_lanes && columns >= 16)
        hessian_tail_lanes_wide(jacobian, weighted, rows, columns, layout, hessian);
    else if (layout.tail_count && layout.tail_lanes)
        hessian_tail_lanes_narrow(jacobian, weighted, rows, columns, layout, hessian);
    hessian_regularise(columns, regularisation, hessian);
}

/* The widest Hessian kernel the CPU has (AVX2 + FMA at least). */
static void hessian_simd(const float *jacobian, const float *weighted, int rows, int columns,
                         const float *regularisation, float *hessian) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        hessian_wide(jacobian, weighted, rows, columns, regularisation, hessian);
    else
        hessian_avx2(jacobian, weighted, rows, columns, regularisation, hessian);
}
#endif

static void fit_hessian(const fit_t *fit, const float *jacobian, const float *regularisation,
                        float *hessian) {
#if FA_PDM_X86
    if (fit->fma) {
        hessian_simd(jacobian, jacobian, 2 * fit->count, 6 + fit->m, regularisation, hessian);
        return;
    }
#endif
    hessian_generic(jacobian, jacobian, 2 * fit->count, 6 + fit->m, regularisation, hessian);
}

/* Forward and back substitution with the factor (inverse diagonal), as CholImpl. */
static void cholesky_substitute(const float *a, int size, float *b) {
    for (int i = 0; i < size; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++)
            s -= a[i * size + k] * b[k];
        b[i] = (float)(s * a[i * size + i]);
    }
    for (int i = size - 1; i >= 0; i--) {
        double s = b[i];
        for (int k = size - 1; k > i; k--)
            s -= a[k * size + i] * b[k];
        b[i] = (float)(s * a[i * size + i]);
    }
}

static int cholesky_fail(int size, float *b) {
    for (int k = 0; k < size; k++)
        b[k] = 0;
    return 0;
}

/* cv::solve(DECOMP_CHOLESKY) for one right-hand side, as OpenCV's CholImpl: the factor and the
 * solution in float, each sum in double (of float products). Returns 0 if the matrix is not
 * positive definite, and then, like cv::solve, the solution is zero. */
static int cholesky_solve_reference(float *a, int size, float *b) {
    for (int i = 0; i < size; i++) {
        double s;
        int j;
        for (j = 0; j < i; j++) {
            s = a[i * size + j];
            for (int k = 0; k < j; k++)
                s -= a[i * size + k] * a[j * size + k];
            a[i * size + j] = (float)(s * a[j * size + j]);
        }
        s = a[i * size + i];
        for (int k = 0; k < j; k++) {
            double t = a[i * size + k];
            s -= t * t;
        }
        if (s < FLT_EPSILON) return cholesky_fail(size, b);
        a[i * size + i] = (float)(1. / sqrt(s)); /* the diagonal holds inverses */
    }
    cholesky_substitute(a, size, b);
    return 1;
}

#if FA_PDM_X86
/* 4 lanes of "sum -= (double)(l * value)" with float products, as the scalar loops. */
__attribute__((target("avx2"))) static inline FA_ALWAYS_INLINE __m256d
subtract_products(__m256d sum, const float *l, float value) {
    return _mm256_sub_pd(sum, _mm256_cvtps_pd(_mm_mul_ps(_mm_loadu_ps(l), _mm_set1_ps(value))));
}

/* cholesky_substitute eight rows at a time: each row's double sum runs over the same k in the
 * same order, but eight rows' sums advance together over the solved part before the 8 x 8
 * triangle finishes them one by one, instead of each waiting on the previous row's latency. */
__attribute__((target("avx2"))) static void substitute_avx2(const float *a, const float *transposed,
                                                            int size, float *b) {
    enum { ROWS = 8 };
    _Alignas(32) double sums[ROWS];
    int i0 = 0;
    for (; i0 + ROWS <= size; i0 += ROWS) { /* forward: L(i, k) = transposed[k * size + i] */
        __m256d low = _mm256_cvtps_pd(_mm_loadu_ps(b + i0)),
                high = _mm256_cvtps_pd(_mm_loadu_ps(b + i0 + 4));
        for (int k = 0; k < i0; k++) {
            low = subtract_products(low, transposed + k * size + i0, b[k]);
            high = subtract_products(high, transposed + k * size + i0 + 4, b[k]);
        }
        _mm256_store_pd(sums, low);
        _mm256_store_pd(sums + 4, high);
        for (int i = i0; i < i0 + ROWS; i++) {
            double s_i = sums[i - i0];
            for (int k = i0; k < i; k++)
                s_i -= a[i * size + k] * b[k];
            b[i] = (float)(s_i * a[i * size + i]);
        }
    }
    for (int i = i0; i < size; i++) {
        double s_i = b[i];
        for (int k = 0; k < i; k++)
            s_i -= a[i * size + k] * b[k];
        b[i] = (float)(s_i * a[i * size + i]);
    }
    /* backward: row i sums L(k, i) b[k] for k from size - 1 down; the block is rows
     * [top - 7, top], whose L(k, .) are contiguous in row k of a */
    int top = size - 1;
    for (; top - (ROWS - 1) >= 0; top -= ROWS) {
        int first = top - (ROWS - 1);
        __m256d low = _mm256_cvtps_pd(_mm_loadu_ps(b + first)),
                high = _mm256_cvtps_pd(_mm_loadu_ps(b + first + 4));
        for (int k = size - 1; k > top; k--) {
            low = subtract_products(low, a + k * size + first, b[k]);
            high = subtract_products(high, a + k * size + first + 4, b[k]);
        }
        _mm256_store_pd(sums, low);
        _mm256_store_pd(sums + 4, high);
        for (int i = top; i >= first; i--) {
            double s_i = sums[i - first];
            for (int k = top; k > i; k--)
                s_i -= a[k * size + i] * b[k];
            b[i] = (float)(s_i * a[i * size + i]);
        }
    }
    for (int i = top; i >= 0; i--) {
        double s_i = b[i];
        for (int k = size - 1; k > i; k--)
            s_i -= a[k * size + i] * b[k];
        b[i] = (float)(s_i * a[i * size + i]);
    }
}

/* The same factor column by column, four rows at a time: every element is the same sequence of
 * operations as in the row-by-row reference (float products, double sums in k order), only the
 * order in which elements are computed changes. A transposed copy makes the rows' values
 * contiguous. On failure the matrix is left partly factored, as it is destroyed anyway. */
__attribute__((target("avx2"))) static int cholesky_solve_avx2(float *a, int size, float *b) {
    float transposed[MAX_PARAMS * MAX_PARAMS]; /* transposed[k * size + i] = L(i, k) */
    for (int j = 0; j < size; j++) {
        double s = a[j * size + j];
        for (int k = 0; k < j; k++) {
            double t = a[j * size + k];
            s -= t * t;
        }
        if (s < FLT_EPSILON) return cholesky_fail(size, b);
        float inverse = (float)(1. / sqrt(s));
        a[j * size + j] = inverse;
        const float *row_j = a + j * size;
        int i = j + 1;
        for (; i + 4 <= size; i += 4) {
            __m256d sum = _mm256_setr_pd(a[i * size + j], a[(i + 1) * size + j],
                                         a[(i + 2) * size + j], a[(i + 3) * size + j]);
            for (int k = 0; k < j; k++) {
                __m128 product =
                    _mm_mul_ps(_mm_loadu_ps(transposed + k * size + i), _mm_set1_ps(row_j[k]));
                sum = _mm256_sub_pd(sum, _mm256_cvtps_pd(product));
            }
            __m128 value = _mm256_cvtpd_ps(_mm256_mul_pd(sum, _mm256_set1_pd(inverse)));
            _mm_storeu_ps(transposed + j * size + i, value);
            float lanes[4];
            _mm_storeu_ps(lanes, value);
            for (int l = 0; l < 4; l++)
                a[(i + l) * size + j] = lanes[l];
        }
        for (; i < size; i++) {
            double t = a[i * size + j];
            for (int k = 0; k < j; k++)
                t -= a[i * size + k] * row_j[k];
            a[i * size + j] = (float)(t * inverse);
            transposed[j * size + i] = a[i * size + j];
        }
    }
    substitute_avx2(a, transposed, size, b);
    return 1;
}
#endif

/* cv::solve(DECOMP_CHOLESKY) for one right-hand side; see cholesky_solve_reference. */
static int cholesky_solve(float *a, int size, float *b) {
#if FA_PDM_X86
    if (size <= MAX_PARAMS && cpu_has_fma()) return cholesky_solve_avx2(a, size, b);
#endif
    return cholesky_solve_reference(a, size, b);
}

/* Initial global parameters from the bounding boxes of the target and of the mean shape. */
static void fit_initialise(const fit_t *fit, float global[6]) {
    const float *mean = fit->pdm->mean_shape;
    int c = fit->count, n = fit->n;
    float min_x = 0, max_x = 0, min_y = 0, max_y = 0;
    float model_min_x = 0, model_max_x = 0, model_min_y = 0, model_max_y = 0;
    for (int i = 0; i < c; i++) {
        float x = fit->target[i], y = fit->target[i + c];
        float mx = mean[fit->index[i]], my = mean[fit->index[i] + n];
        if (i == 0 || x < min_x) min_x = x;
        if (i == 0 || x > max_x) max_x = x;
        if (i == 0 || y < min_y) min_y = y;
        if (i == 0 || y > max_y) max_y = y;
        if (i == 0 || mx < model_min_x) model_min_x = mx;
        if (i == 0 || mx > model_max_x) model_max_x = mx;
        if (i == 0 || my < model_min_y) model_min_y = my;
        if (i == 0 || my > model_max_y) model_max_y = my;
    }
    float width = fabsf(min_x - max_x), height = fabsf(min_y - max_y);
    float model_width = fabsf(model_min_x - model_max_x);
    float model_height = fabsf(model_min_y - model_max_y);
    global[0] = ((width / model_width) + (height / model_height)) / 2.0f;
    global[1] = global[2] = global[3] = 0;
    global[4] = (min_x + max_x) / 2.0f;
    global[5] = (min_y + max_y) / 2.0f;
}

/* The initial error: PDM.cpp projects the initial shape with float arithmetic here. */
static float fit_initial_error(const fit_t *fit, const float global[6]) {
    float projected[2 * MAX_POINTS], r[3][3];
    euler_to_rotation(global + 1, r);
    int c = fit->count;
    for (int i = 0; i < c; i++) {
        float x = fit->shape[i], y = fit->shape[i + c], z = fit->shape[i + 2 * c];
        projected[i] = global[0] * (r[0][0] * x + r[0][1] * y + r[0][2] * z) + global[4];
        projected[i + c] = global[0] * (r[1][0] * x + r[1][1] * y + r[1][2] * z) + global[5];
    }
    return (float)fa_pdm_norm_difference(projected, fit->target, 2 * c);
}

void fa_pdm_calc_params(const fa_pdm_t *pdm, const float *landmarks, float params_global[6],
                        float *params_local) {
    fit_t fit;
    fit.pdm = pdm;
    fit.n = pdm->point_count;
    fit.m = pdm->mode_count;
    fit.count = 0;
    fit.fma = cpu_has_fma();
    for (int i = 0; i < fit.n; i++)
        if (landmarks[i] != 0) fit.index[fit.count++] = i; /* x == 0 marks an invisible point */
    for (int i = 0; i < fit.count; i++) {
        fit.target[i] = landmarks[fit.index[i]];
        fit.target[i + fit.count] = landmarks[fit.index[i] + fit.n];
    }
    int m = fit.m, columns = 6 + m, rows = 2 * fit.count;
    float global[6], local[MAX_MODES] = {0}, regularisation[MAX_MODES];
    for (int j = 0; j < m; j++)
        regularisation[j] = 1.0f / pdm->eigenvalues[j];
    if (fit.count == 0) { /* nothing to fit: OpenFace would read garbage; return the mean */
        memset(params_global, 0, 6 * sizeof *params_global);
        memset(params_local, 0, (size_t)m * sizeof *params_local);
        return;
    }
    fit_shape(&fit, local);
    fit_initialise(&fit, global);
    float current_error = fit_initial_error(&fit, global);

    float jacobian[2 * MAX_POINTS * MAX_PARAMS], hessian[MAX_PARAMS * MAX_PARAMS];
    float projected[2 * MAX_POINTS], residual[2 * MAX_POINTS], delta[MAX_PARAMS];
    int not_improved = 0;
    for (int iteration = 0; iteration < 1000; iteration++) {
        fit_shape(&fit, local);
        fit_project(&fit, global, projected);
        for (int k = 0; k < rows; k++)
            residual[k] = fit.target[k] - projected[k];
        fit_jacobian(&fit, global, fit.m, fit.fma, jacobian);
        fit_gradient(&fit, jacobian, residual, regularisation, local, delta);
        fit_hessian(&fit, jacobian, regularisation, hessian);
        cholesky_solve(hessian, columns, delta);
        for (int j = 0; j < columns; j++)
            delta[j] = 0.75f * delta[j]; /* damped step */
        update_parameters(delta, m, global, local);
        /* OpenFace measures the new error on the shape of the old local parameters. */
        fit_project(&fit, global, projected);
        float error = (float)fa_pdm_norm_difference(projected, fit.target, rows);
        /* The counter is never reset: three non-improving steps in all end the fit. */
        if (0.999 * current_error < error && ++not_improved == 3) break;
        current_error = error;
    }
    memcpy(params_global, global, sizeof global);
    memcpy(params_local, local, (size_t)m * sizeof *params_local);
}

/* ---------------------------------------------------------------------------------------------
 * The pieces of CalcParams that CLNF's NU-RLMS shares (PDM.cpp is common to both) */

void fa_pdm_rotation_matrix(const float euler[3], float rotation[3][3]) {
    euler_to_rotation(euler, rotation);
}

static void jacobian_of_all_points(const fa_pdm_t *pdm, const float params_global[6],
                                   const float *shape_3d, int rigid, int simd, float *jacobian) {
    fit_t fit;
    fit.pdm = pdm;
    fit.n = fit.count = pdm->point_count;
    fit.m = pdm->mode_count;
    fit.fma = 0;
    for (int i = 0; i < fit.n; i++)
        fit.index[i] = i;
    memcpy(fit.shape, shape_3d, (size_t)(3 * fit.n) * sizeof *shape_3d);
    fit_jacobian(&fit, params_global, rigid ? 0 : fit.m, simd, jacobian);
}

void fa_pdm_jacobian(const fa_pdm_t *pdm, const float params_global[6], const float *shape_3d,
                     int rigid, float *jacobian) {
    jacobian_of_all_points(pdm, params_global, shape_3d, rigid, 1, jacobian);
}

void fa_pdm_jacobian_reference(const fa_pdm_t *pdm, const float params_global[6],
                               const float *shape_3d, int rigid, float *jacobian) {
    jacobian_of_all_points(pdm, params_global, shape_3d, rigid, 0, jacobian);
}

void fa_pdm_gradient(const float *weighted, int rows, int columns, const float *residual,
                     const float *regularisation, const float *params_local, float *gradient) {
    gradient_product(weighted, rows, columns, residual, cpu_has_fma(), gradient);
    gradient_regularise(columns - 6, regularisation, params_local, gradient);
}

void fa_pdm_gradient_reference(const float *weighted, int rows, int columns, const float *residual,
                               const float *regularisation, const float *params_local,
                               float *gradient) {
    gradient_product(weighted, rows, columns, residual, 0, gradient);
    gradient_regularise(columns - 6, regularisation, params_local, gradient);
}

int fa_pdm_gradient_kernel(int kernel, const float *weighted, int rows, int columns,
                           const float *residual, const float *regularisation,
                           const float *params_local, float *gradient) {
#if FA_PDM_X86
    if (kernel == FA_PDM_HESSIAN_AVX2 && __builtin_cpu_supports("avx2")) {
        gradient_avx2(weighted, rows, columns, residual, gradient);
    } else if (kernel == FA_PDM_HESSIAN_WIDE && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512vl")) {
        gradient_wide(weighted, rows, columns, residual, gradient);
    } else {
        return 0;
    }
    gradient_regularise(columns - 6, regularisation, params_local, gradient);
    return 1;
#else
    return 0;
#endif
}

void fa_pdm_hessian_reference(const float *jacobian, const float *weighted, int rows, int columns,
                              const float *regularisation, float *hessian) {
    hessian_generic(jacobian, weighted, rows, columns, regularisation, hessian);
}

void fa_pdm_hessian(const float *jacobian, const float *weighted, int rows, int columns,
                    const float *regularisation, float *hessian) {
#if FA_PDM_X86
    if (cpu_has_fma()) {
        hessian_simd(jacobian, weighted, rows, columns, regularisation, hessian);
        return;
    }
#endif
    hessian_generic(jacobian, weighted, rows, columns, regularisation, hessian);
}

int fa_pdm_hessian_kernel(int kernel, const float *jacobian, const float *weighted, int rows,
                          int columns, const float *regularisation, float *hessian) {
#if FA_PDM_X86
    if (!cpu_has_fma()) return 0;
    if (kernel == FA_PDM_HESSIAN_AVX2) {
        hessian_avx2(jacobian, weighted, rows, columns, regularisation, hessian);
        return 1;
    }
    if (kernel == FA_PDM_HESSIAN_WIDE && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512vl")) {
        hessian_wide(jacobian, weighted, rows, columns, regularisation, hessian);
        return 1;
    }
#endif
    return 0;
}

int fa_pdm_cholesky_solve(float *matrix, int size, float *rhs) {
    return cholesky_solve(matrix, size, rhs);
}

int fa_pdm_cholesky_solve_reference(float *matrix, int size, float *rhs) {
    return cholesky_solve_reference(matrix, size, rhs);
}

void fa_pdm_update_parameters(const float *delta, int modes, float params_global[6],
                              float *params_local) {
    update_parameters(delta, modes, params_global, params_local);
}
