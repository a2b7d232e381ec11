/* Face alignment as OpenFace's AlignFace / AlignFaceMask (PIPELINE_SPEC §4): the warp matrix
 * (similarity.c), OpenCV's warpAffine (warp.c) and the triangulation mask of OpenFace's PAW. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/align.h"
#include "core/file.h"
#include "model/reader.h"

fa_status fa_triangulation_parse(const char *data, size_t size, const char *name,
                                 fa_triangulation_t *triangulation, fa_error_t *error)
{
    memset(triangulation, 0, sizeof *triangulation);
    fa_reader_t reader;
    fa_reader_init(&reader, data, size, name);
    fa_matrix_t matrix = {0};
    fa_status status = fa_read_text_matrix(&reader, &matrix, error);
    if (status != FA_OK) return status;
    if (matrix.cols != 3 || matrix.rows < 1 || matrix.rows > FA_ALIGN_MAX_TRIANGLES) {
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: %dx%d is not a list of 1 to %d triangles",
                              name, matrix.rows, matrix.cols, FA_ALIGN_MAX_TRIANGLES);
    } else if (!(triangulation->vertices = malloc((size_t)matrix.rows * sizeof(int[3])))) {
        status = fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", name);
    }
    for (int i = 0; status == FA_OK && i < matrix.rows * 3; i++) {
        double v = matrix.data[i];
        if (!(v >= 0 && v < FA_ALIGN_MAX_POINTS) || v != floor(v))
            status = fa_error_set(error, FA_ERROR_MODEL, "%s: bad vertex index %g in triangle %d",
                                  name, v, i / 3);
        else
            triangulation->vertices[i / 3][i % 3] = (int)v;
    }
    if (status == FA_OK)
        triangulation->count = matrix.rows;
    else
        fa_triangulation_release(triangulation);
    fa_matrix_release(&matrix);
    return status;
}

fa_status fa_triangulation_load(const char *path, fa_triangulation_t *triangulation,
                                fa_error_t *error)
{
    char *data = NULL;
    size_t size = 0;
    memset(triangulation, 0, sizeof *triangulation);
    fa_status status = fa_file_read_all(path, &data, &size, error);
    if (status != FA_OK) return status;
    status = fa_triangulation_parse(data, size, path, triangulation, error);
    free(data);
    return status;
}

void fa_triangulation_release(fa_triangulation_t *triangulation)
{
    if (!triangulation) return;
    free(triangulation->vertices);
    memset(triangulation, 0, sizeof *triangulation);
}

/* ------------------------------------------------------------------------------------------- */
/* The mask, as PAW's constructor with explicit bounds (0, 0, width - 1, height - 1) builds it. */

typedef struct triangle {
    float x[3], y[3];
    float min_x, min_y, max_x, max_y;
} triangle_t;

/* PAW::sameSide: is (x0, y0) on the same side of the line through 2 and 3 as point 1? */
static int same_side(float x0, float y0, float x1, float y1, float x2, float y2, float x3,
                     float y3)
{
    float x = (x3 - x2) * (y0 - y2) - (x0 - x2) * (y3 - y2);
    float y = (x3 - x2) * (y1 - y2) - (x1 - x2) * (y3 - y2);
    return x * y >= 0;
}

static int point_in_triangle(float x0, float y0, const triangle_t *t)
{
    return same_side(x0, y0, t->x[0], t->y[0], t->x[1], t->y[1], t->x[2], t->y[2]) &&
           same_side(x0, y0, t->x[1], t->y[1], t->x[0], t->y[0], t->x[2], t->y[2]) &&
           same_side(x0, y0, t->x[2], t->y[2], t->x[0], t->y[0], t->x[1], t->y[1]);
}

/* PAW::findTriangle: the guess first (without a bounding-box test, so degenerate triangles behave
 * as OpenFace's do), then the candidates in file order. candidates are the triangles whose y
 * range holds the row, the only ones the full scan would not skip. */
static int find_triangle(float x0, float y0, const triangle_t *triangles, const int *candidates,
                         int candidate_count, int guess)
{
    if (guess != -1 && point_in_triangle(x0, y0, &triangles[guess])) return guess;
    for (int c = 0; c < candidate_count; c++) {
        const triangle_t *t = &triangles[candidates[c]];
        if (t->max_x < x0 || t->min_x > x0) continue;
        if (point_in_triangle(x0, y0, t)) return candidates[c];
    }
    return -1;
}

static void set_bounds(triangle_t *t)
{
    t->min_x = t->max_x = t->x[0];
    t->min_y = t->max_y = t->y[0];
    for (int k = 1; k < 3; k++) {
        t->min_x = fminf(t->min_x, t->x[k]);
        t->max_x = fmaxf(t->max_x, t->x[k]);
        t->min_y = fminf(t->min_y, t->y[k]);
        t->max_y = fmaxf(t->max_y, t->y[k]);
    }
}

/* The detected landmarks through the warp (cv::gemm: double sums stored as float, then the
 * float translation), brows and jaw ends raised to include the forehead. */
static void mask_points(const float *landmarks, int n, const float warp[6], double sim_scale,
                        float *x, float *y)
{
    static const int raised[] = {0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26};
    for (int i = 0; i < n; i++) {
        const float lx = landmarks[i], ly = landmarks[n + i];
        x[i] = (float)((double)lx * warp[0] + (double)ly * warp[1]) + warp[2];
        y[i] = (float)((double)lx * warp[3] + (double)ly * warp[4]) + warp[5];
    }
    for (size_t r = 0; r < sizeof raised / sizeof raised[0]; r++)
        if (raised[r] < n) y[raised[r]] = (float)(y[raised[r]] - (30 / 0.7) * sim_scale);
}

static void zero_pixel(fa_image_t *image, int x, int y)
{
    memset(image->data + (ptrdiff_t)y * image->stride + (ptrdiff_t)x * image->channels, 0,
           (size_t)image->channels);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define FA_MASK_AVX2 1

/* same_side for eight points (x0 + lane, y0) against one line: the point-independent terms
 * computed once in float exactly as same_side computes them, the rest lane by lane with the
 * same operations (no FMA). */
__attribute__((target("avx2"))) static __m256 same_side_8(__m256 x0, float y0, float x1, float y1,
                                                         float x2, float y2, float x3, float y3)
{
    const float row_term = (x3 - x2) * (y0 - y2);
    const float y = (x3 - x2) * (y1 - y2) - (x1 - x2) * (y3 - y2);
    __m256 column_term = _mm256_mul_ps(_mm256_sub_ps(x0, _mm256_set1_ps(x2)),
                                       _mm256_set1_ps(y3 - y2));
    __m256 x = _mm256_sub_ps(_mm256_set1_ps(row_term), column_term);
    return _mm256_cmp_ps(_mm256_mul_ps(x, _mm256_set1_ps(y)), _mm256_setzero_ps(), _CMP_GE_OQ);
}

/* Bit l set when point_in_triangle(column + l, y0, t). */
__attribute__((target("avx2"))) static int in_triangle_8(int column, float y0, const triangle_t *t)
{
    const __m256 x0 = _mm256_add_ps(_mm256_set1_ps((float)column),
                                    _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 inside = same_side_8(x0, y0, t->x[0], t->y[0], t->x[1], t->y[1], t->x[2], t->y[2]);
    inside = _mm256_and_ps(inside, same_side_8(x0, y0, t->x[1], t->y[1], t->x[0], t->y[0],
                                               t->x[2], t->y[2]));
    inside = _mm256_and_ps(inside, same_side_8(x0, y0, t->x[2], t->y[2], t->x[0], t->y[0],
                                               t->x[1], t->y[1]));
    return _mm256_movemask_ps(inside);
}

/* Bit l set when find_triangle(column + l, y0, ..., guess -1) would find a triangle: some
 * candidate whose x range holds the column (NaN bounds hold every column, as find_triangle
 * never skips them) has the point inside. */
__attribute__((target("avx2"))) static int in_candidates_8(int column, float y0,
                                                          const triangle_t *triangles,
                                                          const int *candidates,
                                                          int candidate_count)
{
    const __m256 x0 = _mm256_add_ps(_mm256_set1_ps((float)column),
                                    _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7));
    int found = 0;
    for (int c = 0; c < candidate_count; c++) {
        const triangle_t *t = &triangles[candidates[c]];
        if (t->max_x < (float)column || t->min_x > (float)(column + 7)) continue;
        __m256 skipped = _mm256_or_ps(_mm256_cmp_ps(_mm256_set1_ps(t->max_x), x0, _CMP_LT_OQ),
                                      _mm256_cmp_ps(_mm256_set1_ps(t->min_x), x0, _CMP_GT_OQ));
        found |= in_triangle_8(column, y0, t) & ~_mm256_movemask_ps(skipped);
        if (found == 0xff) break;
    }
    return found;
}

static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#endif

/* PAW's per-pixel search over the image, with `vectors` set: while a guess is held, eight
 * columns at a time are tested against it. A column inside the guess is exactly the scalar
 * search's first outcome (it returns the guess, which stays), so the scalar search only runs
 * from the first column outside it. */
static void mask_rows(fa_image_t *image, const triangle_t *triangles, int count, int vectors)
{
    int candidates[FA_ALIGN_MAX_TRIANGLES];
    int guess = -1;
    for (int row = 0; row < image->height; row++) {
        const float y0 = (float)row;
        int candidate_count = 0;
        /* left of every candidate's x range or right of it, a pixel can only be found through the
           guess; NaN bounds (never skipped by find_triangle) turn this shortcut off */
        float left = INFINITY, right = -INFINITY;
        for (int t = 0; t < count; t++)
            if (!(triangles[t].max_y < y0 || triangles[t].min_y > y0)) {
                candidates[candidate_count++] = t;
                if (isnan(triangles[t].min_x) || isnan(triangles[t].max_x))
                    left = -INFINITY, right = INFINITY;
                left = fminf(left, triangles[t].min_x);
                right = fmaxf(right, triangles[t].max_x);
            }
        for (int column = 0; column < image->width; column++) {
#ifdef FA_MASK_AVX2
            if (vectors && guess != -1 && column + 8 <= image->width) {
                int inside = in_triangle_8(column, y0, &triangles[guess]);
                if (inside == 0xff) {
                    column += 7;
                    continue;
                }
                column += __builtin_ctz((unsigned)~inside); /* the first column outside */
            } else if (vectors && column + 8 <= image->width) {
                /* No guess: columns that no candidate holds are zeroed and keep it so. */
                int found =
                    in_candidates_8(column, y0, triangles, candidates, candidate_count);
                int outside = found ? __builtin_ctz((unsigned)found) : 8;
                for (int k = 0; k < outside; k++)
                    zero_pixel(image, column + k, row);
                if (outside == 8) {
                    column += 7;
                    continue;
                }
                column += outside; /* the first column a candidate holds */
            }
#else
            (void)vectors;
#endif
            const float x0 = (float)column;
            if (guess == -1 && (x0 < left || x0 > right))
                guess = -1;
            else
                guess = find_triangle(x0, y0, triangles, candidates, candidate_count, guess);
            if (guess == -1) zero_pixel(image, column, row);
        }
    }
}

static void apply_mask(fa_image_t *image, const float *landmarks, int point_count,
                       const float warp[6], const fa_triangulation_t *triangulation,
                       double sim_scale, int vectors)
{
    float x[FA_ALIGN_MAX_POINTS], y[FA_ALIGN_MAX_POINTS];
    triangle_t triangles[FA_ALIGN_MAX_TRIANGLES];
    mask_points(landmarks, point_count, warp, sim_scale, x, y);
    for (int t = 0; t < triangulation->count; t++) {
        for (int k = 0; k < 3; k++) {
            triangles[t].x[k] = x[triangulation->vertices[t][k]];
            triangles[t].y[k] = y[triangulation->vertices[t][k]];
        }
        set_bounds(&triangles[t]);
    }
    mask_rows(image, triangles, triangulation->count, vectors);
}

void fa_align_apply_mask(fa_image_t *image, const float *landmarks, int point_count,
                         const float warp[6], const fa_triangulation_t *triangulation,
                         double sim_scale)
{
#ifdef FA_MASK_AVX2
    const int vectors = have_avx2();
#else
    const int vectors = 0;
#endif
    apply_mask(image, landmarks, point_count, warp, triangulation, sim_scale, vectors);
}

void fa_align_apply_mask_reference(fa_image_t *image, const float *landmarks, int point_count,
                                   const float warp[6], const fa_triangulation_t *triangulation,
                                   double sim_scale)
{
    apply_mask(image, landmarks, point_count, warp, triangulation, sim_scale, 0);
}

/* ------------------------------------------------------------------------------------------- */

/* The double OpenFace would have parsed for a float setting: the shortest decimal that rounds to
 * it (n / 10^k is correctly rounded because 10^k is exact for k <= 9). */
static double scale_from_float(float value)
{
    for (int digits = 0; digits <= 9; digits++) {
        const double power = pow(10, digits);
        const double candidate = nearbyint((double)value * power) / power;
        if ((float)candidate == value) return candidate;
    }
    return value;
}

fa_status fa_align_face_at_scale(const fa_image_t *frame, const float *landmarks,
                                 const float params_global[6], const fa_pdm_t *pdm,
                                 const fa_triangulation_t *triangulation, double sim_scale,
                                 int mask, fa_image_t *out, fa_error_t *error)
{
    const int n = pdm->point_count;
    if (n < 1 || n > FA_ALIGN_MAX_POINTS)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "align: %d landmarks (at most %d)", n,
                            FA_ALIGN_MAX_POINTS);
    if (!(out->channels == frame->channels || (out->channels == 1 && frame->channels == 3)))
        return fa_error_set(error, FA_ERROR_ARGUMENT, "align: %d-channel face from %d channels",
                            out->channels, frame->channels);
    if (mask) {
        for (int t = 0; t < triangulation->count; t++)
            for (int k = 0; k < 3; k++)
                if (triangulation->vertices[t][k] >= n)
                    return fa_error_set(error, FA_ERROR_ARGUMENT,
                                        "align: triangle %d uses landmark %d of %d", t,
                                        triangulation->vertices[t][k], n);
    }
    float warp[6];
    fa_align_warp_matrix(pdm, landmarks, params_global, sim_scale, out->width, out->height, warp);
    fa_warp_affine(frame, warp, out);
    if (mask) fa_align_apply_mask(out, landmarks, n, warp, triangulation, sim_scale);
    return FA_OK;
}

fa_status fa_align_face(const fa_image_t *frame, const float *landmarks,
                        const float params_global[6], const fa_pdm_t *pdm,
                        const fa_triangulation_t *triangulation, float sim_scale, int mask,
                        fa_image_t *out, fa_error_t *error)
{
    return fa_align_face_at_scale(frame, landmarks, params_global, pdm, triangulation,
                                  scale_from_float(sim_scale), mask, out, error);
}
