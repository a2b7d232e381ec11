/* CLNF fitting: KDE mean-shift, NU-RLMS and the per-scale Fit (LANDMARKS_SPEC §3.1–§3.4), with
 * the float arithmetic of OpenFace 2.2 built against OpenCV 4.6 and OpenBLAS:
 * - exp, sqrt and log on float arguments resolve to the double functions in OpenFace's
 *   translation units (checked by compiling its headers), so each is a double call rounded;
 * - the 2x2 similarity products go through cv::gemm, i.e. double sums rounded to float;
 * - the Jacobian, gradient, Hessian, Cholesky solve and parameter update are CalcParams'
 *   own pieces (pdm.c), since both come from PDM.cpp and cv::solve. */
#include "landmarks/clnf_fit.h"
#include "landmarks/clnf_kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_POINTS = FA_CLNF_MAX_POINTS, MAX_MODES = FA_CLNF_MAX_MODES };

static const float step_size = 0.1f; /* the KDE grid */

/* ---------------------------------------------------------------------------------------------
 * Settings and model */

static void settings_clear(fa_clnf_settings_t *settings) {
    memset(settings, 0, sizeof *settings);
    settings->iterations = 5;
}

void fa_clnf_settings_main(fa_clnf_settings_t *settings) {
    settings_clear(settings);
    settings->sigma = 1.5f;
    settings->reg_factor = 25;
    settings->refine_parameters = 1;
    settings->scale_count = 3;
    const double scaling[] = {0.25, 0.35, 0.5};
    const int init[] = {11, 9, 7, 5}, track[] = {0, 9, 7, 0};
    for (int s = 0; s < FA_CLNF_MAX_SCALES; s++) {
        settings->patch_scaling[s] = s < 3 ? scaling[s] : 0;
        settings->windows_init[s] = init[s];
        settings->windows_track[s] = track[s];
    }
}

void fa_clnf_settings_inner(fa_clnf_settings_t *settings) {
    settings_clear(settings);
    settings->sigma = 1.75f;
    settings->reg_factor = 2.5f;
    settings->weight_factor = 2.5f;
    settings->scale_count = 1;
    settings->patch_scaling[0] = 1.0;
    settings->windows_init[0] = settings->windows_track[0] = 9;
}

void fa_clnf_settings_eye(fa_clnf_settings_t *settings) {
    settings_clear(settings);
    settings->sigma = 1.0f;
    settings->reg_factor = 0.5f;
    settings->scale_count = 2;
    settings->patch_scaling[0] = 1.0;
    settings->patch_scaling[1] = 1.5;
    settings->windows_init[0] = settings->windows_track[0] = 3;
    settings->windows_init[1] = settings->windows_track[1] = 5;
}

/* The sigma, regularisation and weight Fit uses at one scale (CLNF::Fit's tmp_parameters). */
typedef struct scale_parameters {
    float sigma, reg_factor, weight_factor;
} scale_parameters_t;

static scale_parameters_t parameters_at_scale(const fa_clnf_settings_t *settings, int scale) {
    scale_parameters_t p = {settings->sigma, settings->reg_factor, settings->weight_factor};
    if (!settings->refine_parameters) return p;
    int scale_max = scale >= 2 ? 2 : scale;
    double ratio = log(settings->patch_scaling[scale_max] / 0.25);
    /* As written in C++: k * log(x) / log(2), left to right; 2 * weight is a float product. */
    p.reg_factor = (float)(settings->reg_factor - 15 * ratio / log(2));
    if (p.reg_factor <= 0) p.reg_factor = (float)0.001;
    p.sigma = (float)(settings->sigma + 0.25 * ratio / log(2));
    p.weight_factor =
        (float)(settings->weight_factor + 2 * settings->weight_factor * ratio / log(2));
    return p;
}

/* Grid points per axis: OpenFace loops while x < W / 0.1 (float), and indexes rows with
 * (int)(W / 0.1 + 0.5); both give 10 W for W <= 11. */
static int grid_size(int window) {
    return (int)(window / step_size + 0.5);
}

/* NonVectorisedMeanShift_precalc_kde's table: row (x, y) holds, for every response cell
 * (ii, jj), exp(a ((y/10 - ii)^2 + (x/10 - jj)^2)) with float squares and a double exp. */
static void kde_fill_row(float *out, int window, float sigma, int x, int y) {
    float a = (float)(-0.5 / (sigma * sigma));
    float dx = x * step_size, dy = y * step_size;
    for (int ii = 0; ii < window; ii++) {
        float vx = (dy - ii) * (dy - ii);
        for (int jj = 0; jj < window; jj++) {
            float vy = (dx - jj) * (dx - jj);
            *out++ = (float)exp(a * (vx + vy));
        }
    }
}

size_t fa_clnf_kde_size(int window) {
    size_t grid = (size_t)grid_size(window);
    return grid * grid * (size_t)window * (size_t)window;
}

/* A window's KDE sigma, and its table when tracking uses the window: windows only detection
 * uses (the largest) get their rows computed when needed, which keeps several MB of table out
 * of memory for a few frames' work. */
static fa_status kde_add(fa_clnf_model_t *model, int window, float sigma, int table,
                         fa_error_t *error) {
    if (window == 0) return FA_OK;
    if (!(model->kde_sigma[window] > 0)) model->kde_sigma[window] = sigma; /* the first wins */
    if (!table || model->kde[window]) return FA_OK;
    int grid = grid_size(window);
    model->kde[window] = malloc(fa_clnf_kde_size(window) * sizeof *model->kde[window]);
    if (!model->kde[window]) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    for (int x = 0; x < grid; x++)
        for (int y = 0; y < grid; y++)
            kde_fill_row(model->kde[window] + ((size_t)x * grid + y) * window * window, window,
                         model->kde_sigma[window], x, y);
    return FA_OK;
}

static fa_status check_settings(const fa_pdm_t *pdm, const fa_clnf_settings_t *settings,
                                fa_error_t *error) {
    if (!pdm || pdm->point_count <= 0 || pdm->point_count > MAX_POINTS || pdm->mode_count <= 0 ||
        pdm->mode_count > MAX_MODES)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: unsupported PDM");
    if (settings->scale_count < 1 || settings->scale_count > FA_CLNF_MAX_SCALES ||
        settings->iterations < 0)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: %d scales, %d iterations",
                            settings->scale_count, settings->iterations);
    for (int s = 0; s < FA_CLNF_MAX_SCALES; s++) {
        int a = settings->windows_init[s], b = settings->windows_track[s];
        if (a < 0 || a > FA_CLNF_MAX_WINDOW || b < 0 || b > FA_CLNF_MAX_WINDOW)
            return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: window %d/%d above %d", a, b,
                                FA_CLNF_MAX_WINDOW);
        if (s < settings->scale_count && !(settings->patch_scaling[s] > 0))
            return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: patch scaling %d missing", s);
    }
    return FA_OK;
}

fa_status fa_clnf_model_init(fa_clnf_model_t *model, const fa_pdm_t *pdm,
                             const fa_clnf_settings_t *settings, fa_error_t *error) {
    memset(model, 0, sizeof *model);
    fa_status status = check_settings(pdm, settings, error);
    if (status != FA_OK) return status;
    model->pdm = pdm;
    model->settings = *settings;
    /* PDM::Clamp's limit: 3 (float) times the double square root. */
    for (int j = 0; j < pdm->mode_count; j++)
        model->clamp[j] = (float)(3.0f * sqrt(pdm->eigenvalues[j]));
    for (int pass = 0; pass < 2 && status == FA_OK; pass++) {
        const int *windows = pass == 0 ? settings->windows_init : settings->windows_track;
        for (int s = 0; s < settings->scale_count && status == FA_OK; s++) {
            int tracked = 0;
            for (int t = 0; t < settings->scale_count; t++)
                tracked |= settings->windows_track[t] == windows[s];
            status =
                kde_add(model, windows[s], parameters_at_scale(settings, s).sigma, tracked, error);
        }
    }
    if (status != FA_OK) fa_clnf_model_release(model);
    return status;
}

void fa_clnf_model_release(fa_clnf_model_t *model) {
    if (!model) return;
    for (int w = 0; w <= FA_CLNF_MAX_WINDOW; w++)
        free(model->kde[w]);
    memset(model, 0, sizeof *model);
}

const float *fa_clnf_kde_row(const fa_clnf_model_t *model, int window, int gx, int gy,
                             float *scratch) {
    if (window < 1 || window > FA_CLNF_MAX_WINDOW || !(model->kde_sigma[window] > 0)) return NULL;
    int grid = grid_size(window);
    if (gx < 0 || gy < 0 || gx >= grid || gy >= grid) return NULL;
    if (model->kde[window]) return model->kde[window] + ((size_t)gx * grid + gy) * window * window;
    kde_fill_row(scratch, window, model->kde_sigma[window], gx, gy);
    return scratch;
}

void fa_clnf_state_reset(fa_clnf_state_t *state) {
    memset(state, 0, sizeof *state);
    state->params_global[0] = 1;
    state->model_likelihood = -10;
}

/* ---------------------------------------------------------------------------------------------
 * NU-RLMS */

/* A row vector times the transpose of a 2x2 matrix, as cv::gemm: double sums, one rounding. */
static void transform_2x2(const float m[4], float x, float y, float *out_x, float *out_y) {
    *out_x = (float)((double)x * m[0] + (double)y * m[1]);
    *out_y = (float)((double)x * m[2] + (double)y * m[3]);
}

/* The mean shifts of four landmarks' response maps from (dx, dy), in the reference frame. Each
 * landmark's three sums are float chains over the cells in order; the four landmarks' chains
 * are interleaved so that they overlap instead of waiting on addition latency. */
static void mean_shift_4(const fa_clnf_model_t *model, int window, const float *const maps[4],
                         const float dxs[4], const float dys[4], float shifts_x[4],
                         float shifts_y[4]) {
    float dx[4], dy[4];
    float scratch[4][FA_CLNF_MAX_WINDOW * FA_CLNF_MAX_WINDOW];
    const float *kde[4];
    for (int l = 0; l < 4; l++) {
        dx[l] = dxs[l], dy[l] = dys[l];
        kde[l] = fa_clnf_mean_shift_row(model, window, &dx[l], &dy[l], scratch[l]);
    }
    float mx0 = 0, my0 = 0, sum0 = 0, mx1 = 0, my1 = 0, sum1 = 0;
    float mx2 = 0, my2 = 0, sum2 = 0, mx3 = 0, my3 = 0, sum3 = 0;
    for (int ii = 0; ii < window; ii++)
        for (int jj = 0; jj < window; jj++) {
            int c = ii * window + jj;
            float v0 = maps[0][c] * kde[0][c], v1 = maps[1][c] * kde[1][c];
            float v2 = maps[2][c] * kde[2][c], v3 = maps[3][c] * kde[3][c];
            sum0 += v0, mx0 += v0 * jj, my0 += v0 * ii;
            sum1 += v1, mx1 += v1 * jj, my1 += v1 * ii;
            sum2 += v2, mx2 += v2 * jj, my2 += v2 * ii;
            sum3 += v3, mx3 += v3 * jj, my3 += v3 * ii;
        }
    float mx[4] = {mx0, mx1, mx2, mx3}, my[4] = {my0, my1, my2, my3};
    float sum[4] = {sum0, sum1, sum2, sum3};
    /* The table was picked with the snapped position, the shift uses the clamped one. */
    for (int l = 0; l < 4; l++) {
        shifts_x[l] = mx[l] / sum[l] - dx[l];
        shifts_y[l] = my[l] / sum[l] - dy[l];
    }
}

/* Four landmarks at a time; a short group repeats its first and drops the copies. */
void fa_clnf_mean_shifts_reference(const fa_clnf_model_t *model, int window, const float *maps,
                                   const int *points, int count, const float *dxs, const float *dys,
                                   float *shifts_x, float *shifts_y) {
    for (int first = 0; first < count; first += 4) {
        int group = count - first < 4 ? count - first : 4;
        const float *group_maps[4];
        float dx[4], dy[4], sx[4], sy[4];
        for (int l = 0; l < 4; l++) {
            int k = points[first + (l < group ? l : 0)];
            group_maps[l] = maps + (size_t)k * window * window;
            dx[l] = dxs[k], dy[l] = dys[k];
        }
        mean_shift_4(model, window, group_maps, dx, dy, sx, sy);
        for (int l = 0; l < group; l++) {
            int k = points[first + l];
            shifts_x[k] = sx[l], shifts_y[k] = sy[l];
        }
    }
}

fa_clnf_mean_shifts_fn fa_clnf_mean_shifts_kernel(void) {
    if (fa_clnf_avx512_supported()) return fa_clnf_mean_shifts_avx512;
    if (fa_clnf_avx2_supported()) return fa_clnf_mean_shifts_avx2;
    return fa_clnf_mean_shifts_reference;
}

/* The likelihood of one landmark at (dx, dy): the response under an exact Gaussian. */
static float landmark_likelihood(int window, const float *map, float dx, float dy, float sigma) {
    float sum = 0;
    double variance = sigma * sigma;
    for (int ii = 0; ii < window; ii++) {
        float vx = (dy - ii) * (dy - ii);
        for (int jj = 0; jj < window; jj++) {
            float vy = (dx - jj) * (dx - jj);
            sum += (float)(map[ii * window + jj] * exp(-0.5 * (vx + vy) / variance));
        }
    }
    return sum;
}

static float log_likelihood(const fa_clnf_responses_t *responses, int n, int window,
                            const float *dxs, const float *dys, float sigma,
                            float *landmark_likelihoods) {
    float total = 0;
    double visible = 0;
    for (int i = 0; i < n; i++) {
        visible += responses->visible[i];
        landmark_likelihoods[i] = -1e8f;
        if (responses->visible[i] == 0) continue;
        const float *map = responses->maps + (size_t)i * window * window;
        float sum = landmark_likelihood(window, map, dxs[i], dys[i], sigma);
        landmark_likelihoods[i] = sum;
        total = (float)(total + log(sum + 1e-8)); /* the offset avoids log(0) */
    }
    return (float)(total / visible);
}

/* The diagonal weights of GetWeightMatrix and whether the non-rigid Jacobian uses them (only
 * when their trace differs from 2n). */
static int weight_matrix(const fa_clnf_responses_t *responses, int n, float weight_factor,
                         float *weights) {
    if (!(weight_factor > 0)) {
        for (int i = 0; i < n; i++)
            weights[i] = 1.0f;
        return 0;
    }
    for (int i = 0; i < n; i++)
        weights[i] = weight_factor * (0.0f + responses->confidence[i]);
    double trace = 0; /* cv::trace over the 2n diagonal: the x weights, then the y weights */
    for (int k = 0; k < 2 * n; k++)
        trace += weights[k % n];
    return trace != 2 * n;
}

/* The mean shifts in the image frame of every landmark (0 for invisible ones), and the
 * offsets dxs, dys of the current shape from the base shape in the reference frame. */
static void mean_shifts(const fa_clnf_model_t *model, const fa_clnf_responses_t *responses,
                        int window, const float *shape, const float *base_shape, float *shifts,
                        float *dxs, float *dys) {
    int n = model->pdm->point_count;
    float half = (float)((window - 1) / 2);
    for (int i = 0; i < n; i++) {
        float ox, oy;
        transform_2x2(responses->img_to_ref, shape[i] - base_shape[i],
                      shape[i + n] - base_shape[i + n], &ox, &oy);
        dxs[i] = ox + half;
        dys[i] = oy + half;
        shifts[i] = shifts[i + n] = 0; /* the reference-frame shift until transformed below */
    }
    int points[MAX_POINTS], count = 0;
    for (int i = 0; i < n; i++)
        if (responses->visible[i] != 0) points[count++] = i;
    fa_clnf_mean_shifts_kernel()(model, window, responses->maps, points, count, dxs, dys, shifts,
                                 shifts + n);
    for (int i = 0; i < n; i++) {
        if (responses->visible[i] == 0) continue;
        float sx = shifts[i], sy = shifts[i + n];
        transform_2x2(responses->ref_to_img, sx, sy, &shifts[i], &shifts[i + n]);
    }
}

/* PDM::Clamp: every mode within 3 standard deviations. */
static void clamp_local(const fa_clnf_model_t *model, float *local) {
    for (int j = 0; j < model->pdm->mode_count; j++) {
        float v = model->clamp[j];
        if (fabsf(local[j]) > v) local[j] = local[j] > 0 ? v : -v;
    }
}

/* One iteration's Jacobians at shape_3d = the shape of the local parameters: J (rows of invisible
 * points zeroed) and the weighted J_w. */
static void jacobians(const fa_clnf_model_t *model, const fa_clnf_responses_t *responses,
                      const float global[6], const float *shape_3d, int rigid, const float *weights,
                      int weighted_nonrigid, fa_clnf_workspace_t *ws) {
    const fa_pdm_t *pdm = model->pdm;
    int n = pdm->point_count, columns = rigid ? 6 : 6 + pdm->mode_count;
    fa_pdm_jacobian(pdm, global, shape_3d, rigid, ws->jacobian);
    /* The rigid Jacobian is always weighted (by 1 with unit weights, which changes nothing). */
    int use_weights = rigid || weighted_nonrigid;
    for (int k = 0; k < 2 * n; k++) {
        int point = k < n ? k : k - n;
        float *row = ws->jacobian + (size_t)k * columns, *out = ws->weighted + (size_t)k * columns;
        if (responses->visible[point] == 0) memset(row, 0, sizeof(float) * (size_t)columns);
        if (!use_weights) {
            memcpy(out, row, sizeof(float) * (size_t)columns);
            continue;
        }
        float weight = weights[point];
        for (int c = 0; c < columns; c++)
            out[c] = row[c] * weight;
    }
}

float fa_clnf_nu_rlms(const fa_clnf_model_t *model, const fa_clnf_responses_t *responses,
                      const float *base_shape, const fa_clnf_rlms_t *rlms, float params_global[6],
                      float *params_local, float *landmark_likelihoods, fa_clnf_workspace_t *ws) {
    const fa_pdm_t *pdm = model->pdm;
    int n = pdm->point_count, m = pdm->mode_count, window = rlms->window;
    int columns = rlms->rigid ? 6 : 6 + m;
    float regularisation[MAX_MODES], weights[MAX_POINTS];
    for (int j = 0; j < m; j++)
        regularisation[j] = rlms->reg_factor / pdm->eigenvalues[j];
    int weighted_nonrigid = weight_matrix(responses, n, rlms->weight_factor, weights);

    float shape_3d[3 * MAX_POINTS], shape[2 * MAX_POINTS], previous[2 * MAX_POINTS];
    float shifts[2 * MAX_POINTS];
    float dxs[MAX_POINTS] = {0}, dys[MAX_POINTS] = {0}, delta[FA_CLNF_MAX_PARAMS];
    for (int iteration = 0; iteration < model->settings.iterations; iteration++) {
        fa_pdm_shape_3d(pdm, params_local, shape_3d);
        fa_pdm_project(pdm, params_global, shape_3d, shape);
        if (iteration > 0 && fa_pdm_norm_difference(shape, previous, 2 * n) < 0.01) break;
        memcpy(previous, shape, (size_t)(2 * n) * sizeof *shape);

        jacobians(model, responses, params_global, shape_3d, rlms->rigid, weights,
                  weighted_nonrigid, ws);
        mean_shifts(model, responses, window, shape, base_shape, shifts, dxs, dys);
        fa_pdm_gradient(ws->weighted, 2 * n, columns, shifts, regularisation, params_local, delta);
        fa_pdm_hessian(ws->jacobian, ws->weighted, 2 * n, columns, regularisation, ws->hessian);
        fa_pdm_cholesky_solve(ws->hessian, columns, delta); /* no damping, unlike CalcParams */
        fa_pdm_update_parameters(delta, rlms->rigid ? 0 : m, params_global, params_local);
        clamp_local(model, params_local);
    }
    if (!rlms->compute_likelihood) return 0;
    return log_likelihood(responses, n, window, dxs, dys, rlms->sigma, landmark_likelihoods);
}

/* ---------------------------------------------------------------------------------------------
 * Fit */

fa_status fa_clnf_fit(const fa_clnf_model_t *model, const int windows[FA_CLNF_MAX_SCALES],
                      const fa_clnf_provider_t *provider, fa_clnf_workspace_t *workspace,
                      fa_clnf_state_t *state, int *success, fa_error_t *error) {
    const fa_clnf_settings_t *settings = &model->settings;
    int scales = settings->scale_count;
    float base_shape[2 * MAX_POINTS];
    *success = 1;
    for (int scale = 0; scale < scales; scale++) {
        int window = windows[scale];
        if (window == 0) continue;
        if (window < 0 || window > FA_CLNF_MAX_WINDOW || !(model->kde_sigma[window] > 0))
            return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: no KDE table for window %d",
                                window);
        fa_clnf_responses_t responses = {.maps = workspace->maps};
        fa_status status = provider->respond(provider->context, scale, window, state->params_global,
                                             state->params_local, &responses, error);
        if (status != FA_OK) return status;
        if (!responses.visible || !responses.maps ||
            (settings->weight_factor > 0 && !responses.confidence))
            return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: incomplete responses");
        scale_parameters_t p = parameters_at_scale(settings, scale);
        fa_pdm_shape_2d(model->pdm, state->params_global, state->params_local, base_shape);

        fa_clnf_rlms_t rlms = {window, 1, 0, p.sigma, p.reg_factor, p.weight_factor};
        fa_clnf_nu_rlms(model, &responses, base_shape, &rlms, state->params_global,
                        state->params_local, NULL, workspace);
        /* The likelihood is recorded when this is the last scale fitted. */
        rlms.rigid = 0;
        rlms.compute_likelihood =
            scale == scales - 1 || windows[scale + 1] == 0 || state->params_global[0] < 0.30;
        float likelihood =
            fa_clnf_nu_rlms(model, &responses, base_shape, &rlms, state->params_global,
                            state->params_local, state->landmark_likelihoods, workspace);
        if (rlms.compute_likelihood) state->model_likelihood = likelihood;
        if (state->params_global[0] < 0.25) { /* too small to fit reliably */
            *success = 0;
            return FA_OK;
        }
    }
    return FA_OK;
}
