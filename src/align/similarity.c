/* The warp of OpenFace's AlignFace/AlignFaceMask: AlignShapesWithScale (scaled Kabsch) of the
 * rigid landmarks onto the mean shape, reproducing the float/double mix of the OpenCV calls it is
 * written with (cv::mean and cv::sum accumulate in double, MatExpr division multiplies by a float
 * reciprocal, gemm accumulates in double and stores float, cv::SVD is a one-sided Jacobi). */
#include <float.h>
#include <math.h>
#include <string.h>

#include "align/align.h"

/* OpenFace's extract_rigid_points: outline, nose and eye corners (0-based). */
static const int rigid_points[] = {1,  2,  3,  4,  12, 13, 14, 15, 27, 28, 29, 31,
                                   32, 33, 34, 35, 36, 39, 40, 41, 42, 45, 46, 47};
/* OpenCV passes FLT_EPSILON * 2 as the orthogonality threshold for float. */
#define FLT_EPSILON_2 (FLT_EPSILON * 2)

enum { RIGID_COUNT = sizeof rigid_points / sizeof rigid_points[0] };

/* Points as n rows of (x, y). */
typedef struct point_set {
    int count;
    float x[FA_ALIGN_MAX_POINTS], y[FA_ALIGN_MAX_POINTS];
} point_set_t;

/* cv::mean of a float column: a double sum times the double reciprocal of the count. */
static float mean_of(const float *v, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    return (float)(sum * (1. / n));
}

/* cv::sum of the squares of an n x 2 float matrix stored row-major, as OpenCV 4.6's SIMD loop on
 * the AVX2 / AVX-512 CPUs of the reference runs does it: 16 elements a step, element i into
 * double lane i % 16, then the lanes in order, then the tail (checked against cv::sum on
 * 2,000 random inputs of 12-136 elements; an 8-lane order differs on the 68-point shapes). */
static double sum_of_squares(const point_set_t *p)
{
    enum { LANES = 16 };
    double lane[LANES] = {0};
    const int total = 2 * p->count, whole = total / LANES * LANES;
    float squares[2 * FA_ALIGN_MAX_POINTS];
    for (int i = 0; i < p->count; i++) {
        squares[2 * i] = p->x[i] * p->x[i]; /* cv::pow(.., 2) multiplies in float */
        squares[2 * i + 1] = p->y[i] * p->y[i];
    }
    for (int i = 0; i < whole; i++)
        lane[i % LANES] += squares[i];
    double sum = 0;
    for (int i = 0; i < LANES; i++)
        sum += lane[i];
    /* The tail is OpenCV's generic unrolled loop: four elements added in float, then to the
     * double sum, then single elements. */
    int i = whole;
    for (; i + 4 <= total; i += 4)
        sum += squares[i] + squares[i + 1] + squares[i + 2] + squares[i + 3];
    for (; i < total; i++)
        sum += squares[i];
    return sum;
}

/* Centres and normalises p in place as AlignShapesWithScale does; returns its RMS scale. */
static float normalise(point_set_t *p)
{
    const int n = p->count;
    const float mean_x = mean_of(p->x, n), mean_y = mean_of(p->y, n);
    for (int i = 0; i < n; i++) {
        p->x[i] -= mean_x;
        p->y[i] -= mean_y;
    }
    const float scale = (float)sqrt(sum_of_squares(p) / n);
    /* Mat / double is a convertTo with the float-rounded reciprocal as factor. */
    const float factor = (float)(1. / scale);
    for (int i = 0; i < n; i++) {
        p->x[i] *= factor;
        p->y[i] *= factor;
    }
    return scale;
}

/* 2x2 float product of two matrices through cv::gemm (double sums, float result); each operand
 * may be transposed. Row-major. */
static void gemm_2x2(const float *a, int a_transposed, const float *b, int b_transposed, float *d)
{
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double sum = 0;
            for (int k = 0; k < 2; k++) {
                float left = a_transposed ? a[2 * k + i] : a[2 * i + k];
                float right = b_transposed ? b[2 * j + k] : b[2 * k + j];
                sum += (double)left * right;
            }
            d[2 * i + j] = (float)sum;
        }
}

/* AlignShapesKabsch2D on normalised sets: R = V diag(1, sign det(V U^T)) U^T. */
static void kabsch(const point_set_t *from, const point_set_t *to, float rotation[4])
{
    float cross[4]; /* from^T to, via gemm with the first operand transposed */
    const float *columns_from[2] = {from->x, from->y}, *columns_to[2] = {to->x, to->y};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            double sum = 0;
            for (int k = 0; k < from->count; k++)
                sum += (double)columns_from[i][k] * columns_to[j][k];
            cross[2 * i + j] = (float)sum;
        }
    float w[2], u[4], vt[4], vu[4];
    fa_align_svd_2x2(cross, w, u, vt);
    gemm_2x2(vt, 1, u, 1, vu);
    const double det = (double)vu[0] * vu[3] - (double)vu[1] * vu[2];
    float v_corrected[4]; /* V diag(1, ±1): exact, as gemm with corr is */
    const float sign = det > 0 ? 1.0f : -1.0f;
    for (int i = 0; i < 2; i++) {
        v_corrected[2 * i] = vt[i];
        v_corrected[2 * i + 1] = vt[2 + i] * sign;
    }
    gemm_2x2(v_corrected, 0, u, 1, rotation);
}

void fa_align_shapes_with_scale(const float *from_x, const float *from_y, const float *to_x,
                                const float *to_y, int count, float a[4])
{
    point_set_t from, to;
    from.count = to.count = count;
    memcpy(from.x, from_x, sizeof(float) * (size_t)count);
    memcpy(from.y, from_y, sizeof(float) * (size_t)count);
    memcpy(to.x, to_x, sizeof(float) * (size_t)count);
    memcpy(to.y, to_y, sizeof(float) * (size_t)count);
    const float scale_from = normalise(&from), scale_to = normalise(&to);
    const float s = scale_to / scale_from;
    float rotation[4];
    kabsch(&from, &to, rotation);
    for (int i = 0; i < 4; i++)
        a[i] = s * rotation[i];
}

/* The similarity of the rigid landmarks onto the scaled mean shape (2x2, no translation). */
static void align_shapes(const fa_pdm_t *pdm, const float *landmarks, double sim_scale,
                         float a[4])
{
    float from_x[FA_ALIGN_MAX_POINTS], from_y[FA_ALIGN_MAX_POINTS];
    float to_x[FA_ALIGN_MAX_POINTS], to_y[FA_ALIGN_MAX_POINTS];
    const int n = pdm->point_count, rigid = n == 68, count = rigid ? RIGID_COUNT : n;
    /* pdm.mean_shape * sim_scale is a convertTo whose factor is rounded to float. */
    const float factor = (float)sim_scale;
    for (int i = 0; i < count; i++) {
        int p = rigid ? rigid_points[i] : i;
        from_x[i] = landmarks[p];
        from_y[i] = landmarks[n + p];
        to_x[i] = pdm->mean_shape[p] * factor;
        to_y[i] = pdm->mean_shape[n + p] * factor;
    }
    fa_align_shapes_with_scale(from_x, from_y, to_x, to_y, count, a);
}

void fa_align_warp_matrix(const fa_pdm_t *pdm, const float *landmarks, const float params_global[6],
                          double sim_scale, int width, int height, float warp[6])
{
    float a[4];
    align_shapes(pdm, landmarks, sim_scale, a);
    /* Matx22f * Vec2f: float sums starting from 0. */
    const float tx = params_global[4], ty = params_global[5];
    float t0 = 0.0f, t1 = 0.0f;
    t0 += a[0] * tx;
    t0 += a[1] * ty;
    t1 += a[2] * tx;
    t1 += a[3] * ty;
    warp[0] = a[0];
    warp[1] = a[1];
    warp[2] = -t0 + (float)(width / 2);
    warp[3] = a[2];
    warp[4] = a[3];
    warp[5] = -t1 + (float)(height / 2);
}

/* One Jacobi rotation of rows i < j of at (and of vt), as OpenCV's JacobiSVDImpl_ for float;
 * returns 0 when the rows are already orthogonal enough. */
static int jacobi_rotate(float at[2][2], float vt[2][2], double w[2])
{
    const float eps = FLT_EPSILON_2;
    double a = w[0], b = w[1], p = 0;
    for (int k = 0; k < 2; k++)
        p += (double)at[0][k] * at[1][k];
    if (fabs(p) <= eps * sqrt(a * b)) return 0;
    p *= 2;
    const double beta = a - b, gamma = hypot(p, beta);
    float c, s;
    if (beta < 0) {
        const double delta = (gamma - beta) * 0.5;
        s = (float)sqrt(delta / gamma);
        c = (float)(p / (gamma * s * 2));
    } else {
        c = (float)sqrt((gamma + beta) / (gamma * 2));
        s = (float)(p / (gamma * c * 2));
    }
    a = b = 0;
    for (int k = 0; k < 2; k++) {
        const float t0 = c * at[0][k] + s * at[1][k];
        const float t1 = -s * at[0][k] + c * at[1][k];
        at[0][k] = t0;
        at[1][k] = t1;
        a += (double)t0 * t0;
        b += (double)t1 * t1;
    }
    w[0] = a;
    w[1] = b;
    for (int k = 0; k < 2; k++) {
        const float t0 = c * vt[0][k] + s * vt[1][k];
        const float t1 = -s * vt[0][k] + c * vt[1][k];
        vt[0][k] = t0;
        vt[1][k] = t1;
    }
    return 1;
}

static double row_norm_squared(const float row[2])
{
    double sum = 0;
    for (int k = 0; k < 2; k++)
        sum += (double)row[k] * row[k];
    return sum;
}

void fa_align_svd_2x2(const float a[4], float w[2], float u[4], float vt[4])
{
    /* cv::SVD works on the transpose: rows of at are columns of a; u ends up as at^T. */
    float at[2][2] = {{a[0], a[2]}, {a[1], a[3]}}, v[2][2] = {{1, 0}, {0, 1}};
    double norm[2] = {row_norm_squared(at[0]), row_norm_squared(at[1])};
    for (int iteration = 0; iteration < 30; iteration++)
        if (!jacobi_rotate(at, v, norm)) break;
    for (int i = 0; i < 2; i++)
        norm[i] = sqrt(row_norm_squared(at[i]));
    if (norm[0] < norm[1]) {
        double t = norm[0];
        norm[0] = norm[1];
        norm[1] = t;
        for (int k = 0; k < 2; k++) {
            float x = at[0][k];
            at[0][k] = at[1][k];
            at[1][k] = x;
            x = v[0][k];
            v[0][k] = v[1][k];
            v[1][k] = x;
        }
    }
    for (int i = 0; i < 2; i++) {
        w[i] = (float)norm[i];
        /* A zero singular value would need OpenCV's random completion; aligning never has one. */
        const float s = (float)(norm[i] > FLT_MIN ? 1 / norm[i] : 0.);
        for (int k = 0; k < 2; k++)
            at[i][k] *= s;
    }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 2; k++) {
            u[2 * i + k] = at[k][i];
            vt[2 * i + k] = v[i][k];
        }
}
