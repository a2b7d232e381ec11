#include "landmarks/ccnf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/cv_round.h"
#include "core/file.h"
#include "landmarks/ccnf_kernels.h"
#include "landmarks/openblas_sposv.h"
#include "model/reader.h"

/* Bounds that no shipped file comes near; they keep damaged files from asking for huge memory. */
enum { MAX_VIEWS = 64, MAX_POINTS = 1024, MAX_WINDOW_SIZES = 32, MAX_COMPONENTS = 16 };

static const double DEGREES_TO_RADIANS = 3.14159265358979323846 / 180.0;

/* ---------------------------------------------------------------------------------------------
 * Reading */

static void expert_release(fa_ccnf_expert_t *expert) {
    free(expert->weights);
    free(expert->alphas);
    free(expert->betas);
    for (int i = 0; i < FA_CCNF_MAX_PREPARED; i++)
        free(expert->sigma[i]);
    memset(expert, 0, sizeof *expert);
}

void fa_ccnf_scale_release(fa_ccnf_scale_t *scale) {
    if (!scale) return;
    if (scale->experts)
        for (int i = 0; i < scale->view_count * scale->point_count; i++)
            expert_release(&scale->experts[i]);
    free(scale->experts);
    free(scale->centers);
    free(scale->visible);
    for (int i = 0; i < scale->component_set_count; i++)
        free(scale->components[i].matrices);
    free(scale->components);
    memset(scale, 0, sizeof *scale);
}

static fa_status read_count(fa_reader_t *reader, int low, int high, const char *what, int *value,
                            fa_error_t *error) {
    int32_t read = 0;
    fa_status status = fa_read_i32(reader, &read, error);
    if (status != FA_OK) return status;
    if (read < low || read > high)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: %s %d out of range [%d, %d] at byte %zu",
                            reader->name, what, (int)read, low, high, reader->position - 4);
    *value = read;
    return FA_OK;
}

static fa_status read_matrix(fa_reader_t *reader, int rows, int cols, int type, const char *what,
                             fa_matrix_t *matrix, fa_error_t *error) {
    fa_status status = fa_read_matbin(reader, matrix, error);
    if (status != FA_OK) return status;
    status = fa_matrix_expect(matrix, rows, cols, reader->name, what, error);
    if (status == FA_OK && matrix->type != type)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: %s has type %d, expected %d",
                              reader->name, what, matrix->type, type);
    if (status != FA_OK) fa_matrix_release(matrix);
    return status;
}

static fa_status read_components(fa_reader_t *reader, fa_ccnf_scale_t *scale, fa_error_t *error) {
    int count = 0;
    fa_status status = read_count(reader, 0, MAX_WINDOW_SIZES, "window size count", &count, error);
    if (status != FA_OK) return status;
    scale->components = calloc((size_t)count + 1, sizeof *scale->components);
    if (!scale->components) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    scale->component_set_count = count;
    for (int w = 0; w < count && status == FA_OK; w++) {
        fa_ccnf_components_t *set = &scale->components[w];
        status = read_count(reader, 1, 64, "window size", &set->window, error);
        if (status == FA_OK)
            status =
                read_count(reader, 0, MAX_COMPONENTS, "sigma component count", &set->count, error);
        if (status != FA_OK) break;
        size_t n = (size_t)set->window * (size_t)set->window;
        set->matrices = malloc(((size_t)set->count * n * n + 1) * sizeof(float));
        if (!set->matrices) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
        for (int c = 0; c < set->count && status == FA_OK; c++) {
            fa_matrix_t matrix;
            status =
                read_matrix(reader, (int)n, (int)n, FA_CV_32F, "sigma component", &matrix, error);
            if (status != FA_OK) break;
            for (size_t i = 0; i < n * n; i++)
                set->matrices[(size_t)c * n * n + i] = (float)matrix.data[i];
            fa_matrix_release(&matrix);
        }
    }
    return status;
}

static fa_status read_neuron(fa_reader_t *reader, fa_ccnf_expert_t *expert, int k,
                             fa_error_t *error) {
    int type = 0, neuron_type = -1;
    double norm_weights = 0, bias = 0;
    fa_status status = read_count(reader, 2, 2, "neuron type tag", &type, error);
    if (status == FA_OK) status = read_count(reader, 0, 0, "neuron type", &neuron_type, error);
    if (status == FA_OK) status = fa_read_f64(reader, &norm_weights, error);
    if (status == FA_OK) status = fa_read_f64(reader, &bias, error);
    if (status == FA_OK) status = fa_read_f64(reader, &expert->alphas[k], error);
    fa_matrix_t weights;
    if (status == FA_OK)
        status = read_matrix(reader, FA_CCNF_SUPPORT, FA_CCNF_SUPPORT, FA_CV_32F, "neuron weights",
                             &weights, error);
    if (status != FA_OK) return status;
    if (!isfinite(norm_weights) || !isfinite(bias) || !isfinite(expert->alphas[k])) {
        fa_matrix_release(&weights);
        return fa_error_set(error, FA_ERROR_MODEL, "%s: non-finite neuron parameter", reader->name);
    }
    /* OpenFace's weight_matrix row: the bias, then the weights column by column, each multiplied
       by norm_weights (cv::Mat * double: a float product with the factor rounded to float). */
    float *row = expert->weights + (size_t)k * FA_CCNF_INPUTS;
    float factor = (float)norm_weights;
    row[0] = (float)bias;
    for (int column = 0; column < FA_CCNF_SUPPORT; column++)
        for (int r = 0; r < FA_CCNF_SUPPORT; r++)
            row[1 + column * FA_CCNF_SUPPORT + r] =
                (float)weights.data[r * FA_CCNF_SUPPORT + column] * factor;
    fa_matrix_release(&weights);
    return FA_OK;
}

static fa_status read_expert(fa_reader_t *reader, int beta_count, int has_windows,
                             fa_ccnf_expert_t *expert, fa_error_t *error) {
    int type = 0, width = 0, height = 0, neurons = 0, ignored = 0;
    fa_status status = read_count(reader, 5, 5, "patch expert type", &type, error);
    if (status == FA_OK) status = read_count(reader, 0, 1 << 16, "expert width", &width, error);
    if (status == FA_OK) status = read_count(reader, 0, 1 << 16, "expert height", &height, error);
    if (status == FA_OK)
        status = read_count(reader, 0, FA_CCNF_MAX_NEURONS, "neuron count", &neurons, error);
    if (status != FA_OK) return status;
    if (neurons == 0) return read_count(reader, INT32_MIN, INT32_MAX, "padding", &ignored, error);
    if (width != FA_CCNF_SUPPORT || height != FA_CCNF_SUPPORT)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: %dx%d expert (only 11x11 is supported)",
                            reader->name, width, height);
    expert->weights = malloc((size_t)neurons * FA_CCNF_INPUTS * sizeof(float));
    expert->alphas = calloc((size_t)neurons, sizeof(double));
    expert->betas = calloc((size_t)beta_count + 1, sizeof(double));
    if (!expert->weights || !expert->alphas || !expert->betas)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    expert->neuron_count = neurons;
    for (int k = 0; k < neurons && status == FA_OK; k++)
        status = read_neuron(reader, expert, k, error);
    /* The sum OpenFace's ComputeSigmas uses: float accumulator, each step in double. */
    float sum = 0;
    for (int k = 0; k < neurons; k++)
        sum = (float)((double)sum + expert->alphas[k]);
    expert->alpha_sum = sum;
    expert->beta_count = has_windows ? beta_count : 0;
    for (int b = 0; b < expert->beta_count && status == FA_OK; b++)
        status = fa_read_f64(reader, &expert->betas[b], error);
    if (status == FA_OK) status = fa_read_f64(reader, &expert->confidence, error);
    return status;
}

static fa_status parse_scale(fa_reader_t *reader, fa_ccnf_scale_t *scale, fa_error_t *error) {
    fa_status status = fa_read_f64(reader, &scale->scaling, error);
    if (status == FA_OK)
        status = read_count(reader, 1, MAX_VIEWS, "view count", &scale->view_count, error);
    if (status != FA_OK) return status;
    int views = scale->view_count;
    scale->centers = calloc((size_t)views, sizeof *scale->centers);
    if (!scale->centers) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    for (int v = 0; v < views && status == FA_OK; v++) {
        fa_matrix_t center;
        status = read_matrix(reader, 3, 1, FA_CV_64F, "view centre", &center, error);
        if (status != FA_OK) break;
        for (int i = 0; i < 3; i++)
            scale->centers[v][i] = center.data[i] * DEGREES_TO_RADIANS;
        fa_matrix_release(&center);
    }
    for (int v = 0; v < views && status == FA_OK; v++) {
        fa_matrix_t visibility;
        status = fa_read_matbin(reader, &visibility, error);
        if (status != FA_OK) break;
        if (v == 0) {
            scale->point_count = visibility.rows;
            if (visibility.rows < 1 || visibility.rows > MAX_POINTS) {
                fa_matrix_release(&visibility);
                return fa_error_set(error, FA_ERROR_MODEL, "%s: %d landmarks", reader->name,
                                    visibility.rows);
            }
            scale->visible = calloc((size_t)views * (size_t)scale->point_count, sizeof(int));
            if (!scale->visible) {
                fa_matrix_release(&visibility);
                return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
            }
        }
        status =
            fa_matrix_expect(&visibility, scale->point_count, 1, reader->name, "visibility", error);
        for (int i = 0; status == FA_OK && i < scale->point_count; i++)
            scale->visible[v * scale->point_count + i] = visibility.data[i] != 0;
        fa_matrix_release(&visibility);
    }
    if (status == FA_OK) status = read_components(reader, scale, error);
    if (status != FA_OK) return status;
    /* Betas per expert: as many as the first window entry has components. */
    int beta_count = scale->component_set_count > 0 ? scale->components[0].count : 0;
    size_t total = (size_t)views * (size_t)scale->point_count;
    scale->experts = calloc(total, sizeof *scale->experts);
    if (!scale->experts) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < total && status == FA_OK; i++)
        status = read_expert(reader, beta_count, scale->component_set_count > 0, &scale->experts[i],
                             error);
    for (size_t i = 0; i < total && status == FA_OK; i++)
        if ((scale->experts[i].neuron_count > 0) != (scale->visible[i] != 0))
            status = fa_error_set(
                error, FA_ERROR_MODEL, "%s: view %zu landmark %zu: visibility and expert disagree",
                reader->name, i / (size_t)scale->point_count, i % (size_t)scale->point_count);
    if (status == FA_OK && reader->position != reader->size)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: %zu unexpected bytes after the experts",
                              reader->name, reader->size - reader->position);
    return status;
}

fa_status fa_ccnf_parse_scale(const char *data, size_t size, const char *name,
                              fa_ccnf_scale_t *scale, fa_error_t *error) {
    memset(scale, 0, sizeof *scale);
    fa_reader_t reader;
    fa_reader_init(&reader, data, size, name);
    fa_status status = parse_scale(&reader, scale, error);
    if (status == FA_ERROR_END)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: truncated", name ? name : "(memory)");
    if (status != FA_OK) fa_ccnf_scale_release(scale);
    return status;
}

void fa_ccnf_release(fa_ccnf_t *ccnf) {
    if (!ccnf) return;
    for (int s = 0; s < ccnf->scale_count; s++)
        fa_ccnf_scale_release(&ccnf->scales[s]);
    memset(ccnf, 0, sizeof *ccnf);
}

fa_status fa_ccnf_load(const char *const *paths, int count, fa_ccnf_t *ccnf, fa_error_t *error) {
    memset(ccnf, 0, sizeof *ccnf);
    if (count < 1 || count > FA_CCNF_MAX_SCALES)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "%d CCNF scales (1 to %d supported)", count,
                            FA_CCNF_MAX_SCALES);
    for (int s = 0; s < count; s++) {
        char *data = NULL;
        size_t size = 0;
        fa_status status = fa_file_read_all(paths[s], &data, &size, error);
        if (status == FA_OK)
            status = fa_ccnf_parse_scale(data, size, paths[s], &ccnf->scales[s], error);
        free(data);
        if (status == FA_OK) ccnf->scale_count = s + 1;
        if (status == FA_OK && s > 0 && ccnf->scales[s].point_count != ccnf->point_count)
            status = fa_error_set(error, FA_ERROR_MODEL, "%s: %d landmarks, previous scales %d",
                                  paths[s], ccnf->scales[s].point_count, ccnf->point_count);
        if (status != FA_OK) {
            fa_ccnf_release(ccnf);
            return status;
        }
        ccnf->point_count = ccnf->scales[s].point_count;
    }
    return FA_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Sigma */

/* In-place Cholesky solve A X = B (A m x m symmetric positive definite, B m x n), the algorithm
 * and roundings of OpenCV's CholImpl (below FA_CCNF_LAPACK_ROWS rows): double accumulators fed with
 * float products, the factor and the solution stored as float, the factor's diagonal kept as its
 * reciprocal. */
static int cholesky_solve(float *a, int m, float *b, int n) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < i; j++) {
            double s = a[i * m + j];
            for (int k = 0; k < j; k++)
                s -= (double)(a[i * m + k] * a[j * m + k]);
            a[i * m + j] = (float)(s * a[j * m + j]);
        }
        double s = a[i * m + i];
        for (int k = 0; k < i; k++) {
            double t = a[i * m + k];
            s -= t * t;
        }
        if (!(s >= 1.1920928955078125e-07)) return 0; /* FLT_EPSILON, as OpenCV checks */
        a[i * m + i] = (float)(1.0 / sqrt(s));
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = b[i * n + j];
            for (int k = 0; k < i; k++)
                s -= (double)(a[i * m + k] * b[k * n + j]);
            b[i * n + j] = (float)(s * a[i * m + i]);
        }
    for (int i = m - 1; i >= 0; i--)
        for (int j = 0; j < n; j++) {
            double s = b[i * n + j];
            for (int k = m - 1; k > i; k--)
                s -= (double)(a[k * m + i] * b[k * n + j]);
            b[i * n + j] = (float)(s * a[i * m + i]);
        }
    return 1;
}

void fa_ccnf_sigma_inverse(const fa_ccnf_expert_t *expert, const float *components, int count,
                           int window, float *out) {
    int n = window * window;
    memset(out, 0, (size_t)n * (size_t)n * sizeof(float));
    /* q2 = sum_b beta_b S_b, each step one fused multiply-add (OpenCV's scaleAdd on FMA CPUs);
       SigmaInv = 2 (alpha_sum I + q2). */
    for (int c = 0; c < count && c < expert->beta_count; c++) {
        float beta = (float)expert->betas[c];
        const float *component = components + (size_t)c * (size_t)n * (size_t)n;
        for (size_t i = 0; i < (size_t)n * (size_t)n; i++)
            out[i] = fmaf(component[i], beta, out[i]);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            float q1 = i == j ? expert->alpha_sum : 0.0f;
            out[i * n + j] = 2.0f * (q1 + out[i * n + j]);
        }
}

int fa_ccnf_compute_sigma(const fa_ccnf_expert_t *expert, const float *components, int count,
                          int window, float *out) {
    int n = window * window;
    float *inverse = malloc((size_t)n * (size_t)n * sizeof(float));
    if (!inverse) return 0;
    fa_ccnf_sigma_inverse(expert, components, count, window, inverse);
    for (size_t i = 0; i < (size_t)n * (size_t)n; i++)
        out[i] = 0;
    for (int i = 0; i < n; i++)
        out[i * n + i] = 1;
    int ok;
    if (n < FA_CCNF_LAPACK_ROWS) {
        ok = cholesky_solve(inverse, n, out, n);
    } else {
        /* OpenCV's LAPACK path: sposv sees the row-major matrices as column-major (SigmaInv is
           symmetric, the identity too) and OpenCV transposes the solution back. */
        ok = fa_openblas_sposv_lower(n, inverse, n, out, n, n, FA_SPOSV_AUTO) == 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < i; j++) {
                float t = out[i * n + j];
                out[i * n + j] = out[j * n + i];
                out[j * n + i] = t;
            }
    }
    free(inverse);
    return ok;
}

const float *fa_ccnf_sigma_components(const fa_ccnf_t *ccnf, int window, int *count) {
    /* The components of the last file read, for W² (OpenFace keeps one list per CLNF). */
    const fa_ccnf_scale_t *last = &ccnf->scales[ccnf->scale_count - 1];
    const float *components = NULL;
    *count = 0;
    for (int i = 0; i < last->component_set_count; i++)
        if (last->components[i].count > 0 && last->components[i].window == window) {
            components = last->components[i].matrices;
            *count = last->components[i].count;
        }
    return components;
}

int fa_ccnf_window_index(const fa_ccnf_t *ccnf, int scale, int window) {
    if (scale < 0 || scale >= ccnf->scale_count) return -1;
    const fa_ccnf_scale_t *s = &ccnf->scales[scale];
    for (int i = 0; i < s->window_count; i++)
        if (s->windows[i] == window) return i;
    return -1;
}

fa_status fa_ccnf_prepare_window(fa_ccnf_t *ccnf, int scale, int window, fa_error_t *error) {
    if (scale < 0 || scale >= ccnf->scale_count || window < 1 || window > FA_CCNF_MAX_WINDOW)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "CCNF scale %d window %d not available",
                            scale, window);
    if (fa_ccnf_window_index(ccnf, scale, window) >= 0) return FA_OK;
    fa_ccnf_scale_t *s = &ccnf->scales[scale];
    if (s->window_count >= FA_CCNF_MAX_PREPARED)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "more than %d CCNF windows at scale %d",
                            FA_CCNF_MAX_PREPARED, scale);
    int count = 0;
    const float *components = fa_ccnf_sigma_components(ccnf, window, &count);
    int n = window * window, stride = (n + 7) & ~7, index = s->window_count;
    float *sigma = malloc((size_t)n * (size_t)n * sizeof(float));
    if (!sigma) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    fa_status status = FA_OK;
    for (int e = 0; e < s->view_count * s->point_count && status == FA_OK; e++) {
        fa_ccnf_expert_t *expert = &s->experts[e];
        if (expert->neuron_count == 0) continue;
        if (count > expert->beta_count) {
            status = fa_error_set(error, FA_ERROR_MODEL,
                                  "CCNF scale %d: %d sigma components for "
                                  "window %d but experts have %d betas",
                                  scale, count, window, expert->beta_count);
            break;
        }
        expert->sigma[index] = calloc((size_t)n * (size_t)stride, sizeof(float));
        if (!expert->sigma[index]) {
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
            break;
        }
        if (!fa_ccnf_compute_sigma(expert, components, count, window, sigma)) {
            status = fa_error_set(error, FA_ERROR_MODEL,
                                  "CCNF scale %d expert %d: Sigma for "
                                  "window %d is not positive definite",
                                  scale, e, window);
            break;
        }
        for (int i = 0; i < n; i++)
            for (int t = 0; t < n; t++)
                expert->sigma[index][t * stride + i] = sigma[i * n + t];
    }
    free(sigma);
    if (status != FA_OK) {
        for (int e = 0; e < s->view_count * s->point_count; e++) {
            free(s->experts[e].sigma[index]);
            s->experts[e].sigma[index] = NULL;
        }
        return status;
    }
    s->windows[index] = window;
    s->sigma_stride[index] = stride;
    s->window_count = index + 1;
    return FA_OK;
}

int fa_ccnf_view_index(const fa_ccnf_t *ccnf, int scale, const float rotation[3]) {
    const fa_ccnf_scale_t *s = &ccnf->scales[scale];
    int best = 0;
    float best_distance = 0;
    for (int v = 0; v < s->view_count; v++) {
        float d0 = (float)(rotation[0] - s->centers[v][0]);
        float d1 = (float)(rotation[1] - s->centers[v][1]);
        float d2 = (float)(rotation[2] - s->centers[v][2]);
        float distance = d0 * d0 + d1 * d1 + d2 * d2;
        if (v == 0 || distance < best_distance) {
            best_distance = distance;
            best = v;
        }
    }
    return best;
}

/* ---------------------------------------------------------------------------------------------
 * Area of interest: OpenCV 4.6's warpAffine (WARP_INVERSE_MAP, INTER_LINEAR, BORDER_CONSTANT 0)
 * on a float image. Source positions are computed in fixed point with 10 fractional bits, rounded
 * to 5 (1/32 px), and interpolated with the bilinear table (exact products of multiples of 1/32).
 */

enum { AB_BITS = 10, INTER_BITS = 5, INTER_TAB_SIZE = 1 << INTER_BITS };

void fa_ccnf_area_map(float a, float b, float x, float y, int side, fa_ccnf_area_map_t *map) {
    /* The matrix as OpenFace builds it (float), widened to double as warpAffine does. */
    float half_a = a * ((float)side - 1.0f) / 2.0f, half_b = b * ((float)side - 1.0f) / 2.0f;
    const double m0 = a, m1 = -b, m2 = x - half_a + half_b;
    const double m3 = b, m4 = a, m5 = y - half_a - half_b;
    const int round_delta = (1 << AB_BITS) / INTER_TAB_SIZE / 2;
    memset(map, 0, sizeof *map);
    map->side = side;
    for (int u = 0; u < side; u++) { /* per column, as warpAffine's tables */
        map->x_step[u] = fa_cv_round(m0 * u * (1 << AB_BITS));
        map->y_step[u] = fa_cv_round(m3 * u * (1 << AB_BITS));
    }
    for (int v = 0; v < side; v++) {
        map->row_x[v] = (int)((unsigned)fa_cv_round((m1 * v + m2) * (1 << AB_BITS)) + round_delta);
        map->row_y[v] = (int)((unsigned)fa_cv_round((m4 * v + m5) * (1 << AB_BITS)) + round_delta);
    }
}

/* Row and column terms add as ints that wrap, as OpenCV's do. */
static int wrapping_add(int a, int b) {
    return (int)((unsigned)a + (unsigned)b);
}

void fa_ccnf_sample_map_reference(const uint8_t *image, int width, int height, ptrdiff_t stride,
                                  const fa_ccnf_area_map_t *map, float *area) {
    const int side = map->side;
    for (int v = 0; v < side; v++)
        for (int u = 0; u < side; u++)
            area[v * side + u] = fa_ccnf_sample_pixel(image, width, height, stride,
                                                      wrapping_add(map->row_x[v], map->x_step[u]),
                                                      wrapping_add(map->row_y[v], map->y_step[u]));
}

void fa_ccnf_sample_area(const uint8_t *image, int width, int height, ptrdiff_t stride, float a,
                         float b, float x, float y, int side, float *area) {
    if (side > FA_CCNF_MAX_AREA) return; /* a programming error: windows are bounded */
    fa_ccnf_area_map_t map;
    fa_ccnf_area_map(a, b, x, y, side, &map);
    if (fa_ccnf_avx2_supported())
        fa_ccnf_sample_map_avx2(image, width, height, stride, &map, area);
    else
        fa_ccnf_sample_map_reference(image, width, height, stride, &map, area);
}

/* ---------------------------------------------------------------------------------------------
 * Responses */

fa_ccnf_kernel fa_ccnf_workspace_init(fa_ccnf_workspace_t *workspace, fa_ccnf_kernel kernel) {
    memset(workspace, 0, sizeof *workspace);
    int avx2 = fa_ccnf_avx2_supported();
    if (kernel == FA_CCNF_KERNEL_AUTO) kernel = FA_CCNF_KERNEL_AVX2;
    if (kernel == FA_CCNF_KERNEL_AVX2 && !avx2) kernel = FA_CCNF_KERNEL_REFERENCE;
    workspace->kernel = kernel;
    return kernel;
}

void fa_ccnf_response(const fa_ccnf_expert_t *expert, int window, int sigma_index, int sigma_stride,
                      const float *area, float *response, fa_ccnf_workspace_t *workspace) {
    const float *sigma = expert->sigma[sigma_index];
    if (workspace->kernel == FA_CCNF_KERNEL_AVX2) {
        fa_ccnf_raw_avx2(expert, window, area, workspace->raw, workspace);
        fa_ccnf_sigma_avx2(sigma, sigma_stride, window * window, workspace->raw, response);
    } else {
        fa_ccnf_raw_reference(expert, window, area, workspace->raw, workspace);
        fa_ccnf_sigma_reference(sigma, sigma_stride, window * window, workspace->raw, response);
    }
}

typedef struct responses_job {
    const fa_ccnf_scale_t *scale;
    int view, window, sigma_index, side;
    const uint8_t *image;
    int width, height;
    ptrdiff_t stride;
    const float *landmarks;
    float a, b;
    float *responses;
    fa_ccnf_workspace_t *workspaces;
} responses_job_t;

static void landmark_response(void *context, int i, int participant) {
    const responses_job_t *job = context;
    const fa_ccnf_scale_t *s = job->scale;
    int n = s->point_count;
    const fa_ccnf_expert_t *expert = &s->experts[job->view * n + i];
    if (!s->visible[job->view * n + i] || expert->neuron_count == 0) return;
    fa_ccnf_workspace_t *workspace = &job->workspaces[participant];
    fa_ccnf_sample_area(job->image, job->width, job->height, job->stride, job->a, job->b,
                        job->landmarks[i], job->landmarks[n + i], job->side, workspace->area);
    fa_ccnf_response(expert, job->window, job->sigma_index, s->sigma_stride[job->sigma_index],
                     workspace->area,
                     job->responses + (size_t)i * (size_t)(job->window * job->window), workspace);
}

void fa_ccnf_responses(const fa_ccnf_t *ccnf, int scale, int window, int view, const uint8_t *image,
                       int width, int height, ptrdiff_t stride, const float *landmarks, float a,
                       float b, float *responses, fa_ccnf_workspace_t *workspaces,
                       fa_pool_t *pool) {
    int index = fa_ccnf_window_index(ccnf, scale, window);
    if (index < 0) return; /* a programming error: the window was not prepared */
    responses_job_t job = {.scale = &ccnf->scales[scale],
                           .view = view,
                           .window = window,
                           .sigma_index = index,
                           .side = window + FA_CCNF_SUPPORT - 1,
                           .image = image,
                           .width = width,
                           .height = height,
                           .stride = stride,
                           .landmarks = landmarks,
                           .a = a,
                           .b = b,
                           .responses = responses,
                           .workspaces = workspaces};
    fa_pool_for(pool, ccnf->scales[scale].point_count, landmark_response, &job);
}

/* ---------------------------------------------------------------------------------------------
 * Reference kernels */

/* The contrast-normalised 11x11 window at (x, y), column-major. */
static void normalise_window(const float *area, int side, int x, int y, float *out) {
    enum { S = FA_CCNF_SUPPORT };
    float sum = 0;
    for (int yy = 0; yy < S; yy++)
        for (int xx = 0; xx < S; xx++)
            sum += area[(y + yy) * side + x + xx];
    float mean = sum / (float)(S * S);
    float sum_sq = 0;
    for (int xx = 0; xx < S; xx++)
        for (int yy = 0; yy < S; yy++) {
            float centred = area[(y + yy) * side + x + xx] - mean;
            out[xx * S + yy] = centred;
            sum_sq += centred * centred;
        }
    float norm = sqrtf(sum_sq);
    if (norm == 0) norm = 1;
    float scale = (float)(1.0 / (double)norm);
    for (int t = 0; t < S * S; t++)
        out[t] *= scale;
}

void fa_ccnf_raw_reference(const fa_ccnf_expert_t *expert, int window, const float *area,
                           float *raw, fa_ccnf_workspace_t *workspace) {
    int side = window + FA_CCNF_SUPPORT - 1, count = expert->neuron_count;
    float *input = workspace->columns;
    for (int y = 0; y < window; y++)
        for (int x = 0; x < window; x++) {
            normalise_window(area, side, x, y, input);
            float response = 0;
            for (int k = 0; k < count; k++) {
                const float *w = expert->weights + (size_t)k * FA_CCNF_INPUTS;
                fa_sgemm_order order = fa_ccnf_activation_order(x * window + y, window, k, count);
                float z = fa_ccnf_activation(w, input, order);
                if (expert->alphas[k] > 1e-4)
                    response = fa_ccnf_add_sigmoid(response, expert->alphas[k], z);
            }
            raw[y * window + x] = response;
        }
}

void fa_ccnf_sigma_reference(const float *sigma_transposed, int stride, int n, const float *raw,
                             float *out) {
    for (int i = 0; i < n; i++) {
        fa_sgemm_order order = fa_ccnf_sigma_order(i, n);
        if (order == FA_SGEMM_CHAIN) {
            float sum = 0;
            for (int t = 0; t < n; t++)
                sum = fmaf(raw[t], sigma_transposed[t * stride + i], sum);
            out[i] = sum;
        } else {
            float lane[16] = {0};
            for (int t = 0; t < n; t++)
                lane[t % 16] = fmaf(raw[t], sigma_transposed[t * stride + i], lane[t % 16]);
            out[i] = fa_sgemm_lanes_sum(lane, order);
        }
    }
    float minimum = out[0];
    for (int i = 1; i < n; i++)
        if (out[i] < minimum) minimum = out[i];
    if (minimum < 0)
        for (int i = 0; i < n; i++)
            out[i] -= minimum;
}
