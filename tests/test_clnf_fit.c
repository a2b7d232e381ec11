/* CLNF fitting: the KDE table, NU-RLMS against OpenFace's own numbers on a synthetic input,
 * convergence on synthetic response maps, the hierarchical flow and the tracking schedule. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "landmarks/clnf_fit.h"
#include "pdm/pdm.h"
#include "testing.h"

static const char *model_path(const char *relative) {
    static char paths[4][4096];
    static int slot;
    char *path = paths[slot++ % 4];
    snprintf(path, sizeof paths[0], "%s/model/%s", test_models_dir(), relative);
    return path;
}

static int load_pdm(const char *relative, fa_pdm_t *pdm) {
    fa_error_t error = {0};
    if (fa_pdm_load(model_path(relative), pdm, &error) == FA_OK) return 1;
    fprintf(stderr, "cannot load %s: %s\n", relative, error.message);
    test_checks_failed++;
    return 0;
}

static unsigned float_bits(float value) {
    unsigned bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

/* ---------------------------------------------------------------------------------------------
 * KDE table */

static void check_kde(const fa_clnf_model_t *model, int window, float sigma) {
    CHECK(model->kde_sigma[window] == sigma, "window %d sigma %.9g, expected %.9g", window,
          model->kde_sigma[window], sigma);
    int grid = 10 * window;
    float scratch[FA_CLNF_MAX_WINDOW * FA_CLNF_MAX_WINDOW];
    CHECK(fa_clnf_kde_row(model, window, grid - 1, grid - 1, scratch) != NULL, "last row of %d",
          window);
    CHECK(fa_clnf_kde_row(model, window, grid, 0, scratch) == NULL, "row past the grid of %d",
          window);
    float a = (float)(-0.5 / (sigma * sigma));
    int exact = 0, close = 0, total = 0;
    for (int gx = 0; gx < grid; gx += 7)
        for (int gy = 0; gy < grid; gy += 5) {
            const float *row = fa_clnf_kde_row(model, window, gx, gy, scratch);
            for (int ii = 0; ii < window; ii++)
                for (int jj = 0; jj < window; jj++) {
                    /* OpenFace's expression, evaluated directly. */
                    float dx = gx * 0.1f, dy = gy * 0.1f;
                    float vx = (dy - ii) * (dy - ii), vy = (dx - jj) * (dx - jj);
                    float direct = (float)exp(a * (vx + vy));
                    /* The Gaussian it approximates. */
                    double ex = gx / 10.0 - jj, ey = gy / 10.0 - ii;
                    double gaussian = exp(-0.5 * (ex * ex + ey * ey) / ((double)sigma * sigma));
                    float value = row[ii * window + jj];
                    exact += value == direct;
                    close += fabs(value - gaussian) <= 1e-5 * gaussian + 1e-30;
                    total++;
                }
        }
    CHECK(exact == total, "window %d: %d of %d entries equal the direct evaluation", window, exact,
          total);
    CHECK(close == total, "window %d: %d of %d entries within 1e-5 of the Gaussian", window, close,
          total);
}

static void test_kde(const fa_pdm_t *pdm) {
    fa_clnf_settings_t settings;
    fa_clnf_settings_main(&settings);
    fa_clnf_model_t model;
    fa_error_t error = {0};
    CHECK_OK(fa_clnf_model_init(&model, pdm, &settings, &error));
    check_kde(&model, 11, 1.5f); /* computed row by row: only detection uses window 11 */
    check_kde(&model, 9, (float)(1.5 + 0.25 * log(0.35 / 0.25) / log(2)));
    check_kde(&model, 7, 1.75f);
    CHECK(model.kde[11] == NULL && model.kde[9] && model.kde[7],
          "tables for the tracking windows only");
    CHECK(model.kde[5] == NULL && model.kde_sigma[5] == 0, "the unused 4th window gets no table");
    /* OpenFace fills rows while x < W / 0.1f (float) but indexes them with (int)(W/0.1 + 0.5):
     * the two agree (10 W) for every window up to 11. */
    for (int window = 1; window <= FA_CLNF_MAX_WINDOW; window++) {
        int rows = 0;
        while (rows < window / 0.1f)
            rows++;
        CHECK(rows == 10 * window && (int)(window / 0.1f + 0.5) == 10 * window,
              "window %d: %d grid rows", window, rows);
    }
    /* The per-scale parameters of LANDMARKS_SPEC §3.1 show in the tables' sigmas. */
    CHECK(fabsf(model.kde_sigma[9] - 1.621357f) < 1e-6f, "scale 1 sigma %.7f", model.kde_sigma[9]);
    fa_clnf_model_release(&model);
}

/* ---------------------------------------------------------------------------------------------
 * NU-RLMS against OpenFace */

/* A synthetic response map: a Gaussian bump off the centre plus a small ramp. The same formula
 * ran in the scratch harness that produced the reference numbers below. */
static void synthetic_map(int i, int window, float *map) {
    double c = (window - 1) / 2.0;
    double ox = sin(i * 1.7) * 1.5, oy = cos(i * 2.3) * 1.2;
    for (int ii = 0; ii < window; ii++)
        for (int jj = 0; jj < window; jj++) {
            double ex = jj - c - ox, ey = ii - c - oy;
            map[ii * window + jj] =
                (float)(exp(-(ex * ex + ey * ey) / 2.0) + 0.01 * ((ii * 7 + jj * 3 + i) % 5));
        }
}

typedef struct expected {
    unsigned rigid_global[6], global[6], local[FA_CLNF_MAX_MODES], likelihood, landmark[5];
} expected_t;

/* One rigid and one non-rigid NU-RLMS call from a fixed start on synthetic maps, compared bit
 * for bit with OpenFace's NU_RLMS (its LandmarkDetector library built against OpenCV 4.6 and
 * OpenBLAS 0.3.21, run with OPENBLAS_CORETYPE=SkylakeX as the reference machine ran, in a scratch
 * program outside the repository). */
static void check_exact(const char *name, const fa_pdm_t *pdm, const fa_clnf_settings_t *settings,
                        const float start[6], float a00, float a01, int invisible_stride,
                        const expected_t *expected) {
    fa_clnf_model_t model;
    fa_error_t error = {0};
    CHECK_OK(fa_clnf_model_init(&model, pdm, settings, &error));
    if (!model.pdm) return;
    int n = pdm->point_count, m = pdm->mode_count, window = settings->windows_init[0];
    static fa_clnf_workspace_t workspace;
    static float maps[FA_CLNF_MAX_POINTS * FA_CLNF_MAX_WINDOW * FA_CLNF_MAX_WINDOW];
    int visible[FA_CLNF_MAX_POINTS];
    float confidence[FA_CLNF_MAX_POINTS];
    for (int i = 0; i < n; i++) {
        synthetic_map(i, window, maps + i * window * window);
        visible[i] = !(invisible_stride && i % invisible_stride == 3);
        confidence[i] = 0.5f + 0.01f * (i % 7);
    }
    double det = (double)a00 * a00 + (double)a01 * a01;
    fa_clnf_responses_t responses = {
        .maps = maps,
        .img_to_ref = {a00, a01, -a01, a00},
        .ref_to_img = {(float)(a00 / det), (float)(-a01 / det), (float)(a01 / det),
                       (float)(a00 / det)},
        .visible = visible,
        .confidence = confidence,
    };
    float global[6], local[FA_CLNF_MAX_MODES] = {0}, start_local[FA_CLNF_MAX_MODES] = {0};
    float base[2 * FA_CLNF_MAX_POINTS], likelihoods[FA_CLNF_MAX_POINTS];
    memcpy(global, start, sizeof global);
    for (int j = 0; j < m && j < 4; j++)
        local[j] = start_local[j] = (j % 2 ? -0.3f : 0.4f) * sqrtf(pdm->eigenvalues[j]);
    fa_pdm_shape_2d(pdm, global, local, base);
    fa_clnf_rlms_t rlms = {
        window, 1, 0, settings->sigma, settings->reg_factor, settings->weight_factor};
    fa_clnf_nu_rlms(&model, &responses, base, &rlms, global, local, NULL, &workspace);
    int same = 1;
    for (int j = 0; j < 6; j++)
        same &= float_bits(global[j]) == expected->rigid_global[j];
    CHECK(same, "%s: rigid global (%.9g %.9g %.9g %.9g %.9g %.9g) differs from OpenFace's", name,
          global[0], global[1], global[2], global[3], global[4], global[5]);
    CHECK(memcmp(local, start_local, sizeof local) == 0, "%s: the rigid pass moved p_local", name);
    rlms.rigid = 0;
    rlms.compute_likelihood = 1;
    float likelihood =
        fa_clnf_nu_rlms(&model, &responses, base, &rlms, global, local, likelihoods, &workspace);
    same = 1;
    for (int j = 0; j < 6; j++)
        same &= float_bits(global[j]) == expected->global[j];
    CHECK(same, "%s: global (%.9g %.9g %.9g %.9g %.9g %.9g) differs from OpenFace's", name,
          global[0], global[1], global[2], global[3], global[4], global[5]);
    int local_same = 0;
    for (int j = 0; j < m; j++)
        local_same += float_bits(local[j]) == expected->local[j];
    CHECK(local_same == m, "%s: %d of %d local parameters equal OpenFace's", name, local_same, m);
    CHECK(float_bits(likelihood) == expected->likelihood, "%s: likelihood %.9g (0x%08x)", name,
          likelihood, float_bits(likelihood));
    same = 1;
    for (int i = 0; i < 5; i++)
        same &= float_bits(likelihoods[i]) == expected->landmark[i];
    CHECK(same, "%s: landmark likelihoods differ (%.9g ...)", name, likelihoods[0]);
    fa_clnf_model_release(&model);
}

/* Recorded from OpenFace's code (scratch harness, see check_exact). */
static const expected_t main_w7 = {
    {0x3f99c57f, 0x3d665448, 0xbdb63123, 0x3ca086ed, 0x43a02ccb, 0x436fd201},
    {0x3f98d215, 0x3d6773ef, 0xbdc0cda8, 0x3ca0f78d, 0x43a02f6e, 0x436fcad1},
    {0x40a7f5ca, 0xc1354a6e, 0x40c299ad, 0xc0dd1fb9, 0x400035ed, 0x3e4cc65c, 0xbf4c6b9e,
     0xbe482c4f, 0x3fbf85da, 0xbf208ffe, 0xbe46be53, 0xbe783f38, 0xbf997db2, 0x3f0fa18d,
     0x3fda1846, 0xbf91b822, 0xbf85e82d, 0x3c1ff55c, 0xbecbf153, 0xbe203c10, 0xbf11c20c,
     0xbed6366d, 0x3f08c231, 0xbf84aa2f, 0x3d42000a, 0x3eb8079a, 0xbdb4efaf, 0x3d8c45f3,
     0xbd184a4a, 0xbd4e4f30, 0xbd643ed7, 0x3d00c530, 0xbba5079f, 0x3d07b2af},
    0x3fb83968,
    {0x4093e928, 0x40811ff2, 0x4094dbf7, 0xccbebc20, 0x40987d67},
};
static const expected_t main_w9 = {
    {0x3f668c5b, 0xbe4f505b, 0x3e9a82da, 0x3dcb0ad7, 0x434802f9, 0x43520288},
    {0x3f6600ae, 0xbe527c9d, 0x3e9f6540, 0x3dcdb464, 0x434805a7, 0x4352027e},
    {0x40ecd8de, 0xc10e1497, 0x40d1d411, 0xc10234fe, 0x3fc3c8cf, 0x3edb55ba, 0xbcbe3e4e,
     0x3f33de8f, 0xbe4028a5, 0xbf5087ed, 0xbe5fbec7, 0x3f209cbc, 0xbe79670d, 0xbb6a834c,
     0x3dc06ea2, 0xbf883121, 0x3ce11f01, 0x3e5d7b41, 0xbdae45e0, 0xbf1a4263, 0xbd680e63,
     0x3e98a055, 0x3e44956c, 0xbeda1f19, 0xbe4d7273, 0x3eb50ad3, 0x3cf36916, 0xbddddced,
     0xbcea6ad5, 0xbc832c39, 0xbd509add, 0x3c9a90c6, 0x3bd1c95e, 0x3c8bd252},
    0x3fad759c,
    {0x408bb8c3, 0x404fe784, 0x409677f8, 0x40564725, 0x40780557},
};
static const expected_t inner_w9 = {
    {0x3fa61fb4, 0x3c9e0886, 0x3dd39ea7, 0xbcfa9748, 0x4348081b, 0x43160466},
    {0x3fa5f3c0, 0x3c40c98f, 0x3dbd2849, 0xbce0ec73, 0x434821e7, 0x43160c02},
    {0x40ceefce, 0xc0c145d5, 0x40b0787d, 0xbf27d744, 0xc019310b, 0x3efceb1d, 0xbee76772,
     0xbf36cd1e, 0xbe8c364f, 0xbd5423d9, 0xbf95dc05, 0x3f9ecf24, 0xbe52dcf0, 0xbf81eabf,
     0xbdbf9f76, 0x3f6f7cba, 0xbec40de2, 0x3cd6e724, 0xbda0620a, 0xbe0b59e8, 0xbc12c7db,
     0x3d1d8eea, 0xbdc9bc50, 0x3e9e6b57, 0x3eb35880, 0xbca82da0, 0xbec9faf8, 0x3db01325,
     0x3d87f5ed, 0x3b9b927c, 0x3ccbfe40, 0x3e272db4},
    0x3fb7a4c1,
    {0x4096205b, 0x405db2cb, 0x40a08f00, 0x4076f1b7, 0x40846778},
};

static const expected_t eye_w3 = {
    {0x4005cc02, 0x3d9cd1d1, 0xbe3887db, 0x3d35ff56, 0x431605ec, 0x42f00844},
    {0x4005b937, 0x3de963e3, 0xbe40b04d, 0x3d450358, 0x4316059f, 0x42f00726},
    {0x40836e56, 0xbfd59964, 0x3fdc0a57, 0xbde14293, 0x3d8b2d4f, 0x3df520da, 0xbe89fe11, 0xbe51cae2,
     0xbe84010b, 0xbcf274c4},
    0x3f225c59,
    {0x4003302e, 0x3fb15b83, 0x403a7a35, 0x3faffca7, 0x3fe8e0b0},
};
static const expected_t eye_w5 = {
    {0x40055ef4, 0x3d8a0178, 0xbe2cdaa3, 0x3d291e6e, 0x43160945, 0x42f00b91},
    {0x4005546b, 0x3decb01a, 0xbe37b7d6, 0x3d39a8c8, 0x43160a4e, 0x42f00bcb},
    {0x40821128, 0xbfd55c21, 0x3fd15aff, 0xbd822a17, 0x3e113341, 0x3e504b05, 0xbeb521ce, 0xbe942055,
     0xbeb491ba, 0xbd462740},
    0x3f4973d6,
    {0x4013b3ae, 0x3fd0d7aa, 0x40428ce4, 0x3fd48424, 0x4002b3ea},
};

static void single_scale(fa_clnf_settings_t *settings, float sigma, float reg, float weight,
                         int window) {
    memset(settings, 0, sizeof *settings);
    settings->sigma = sigma;
    settings->reg_factor = reg;
    settings->weight_factor = weight;
    settings->iterations = 5;
    settings->scale_count = 1;
    settings->patch_scaling[0] = 1.0;
    settings->windows_init[0] = settings->windows_track[0] = window;
}

static void test_exact(const fa_pdm_t *main_pdm, const fa_pdm_t *inner_pdm,
                       const fa_pdm_t *eye_pdm) {
    fa_clnf_settings_t settings;
    single_scale(&settings, 1.75f, 10.0f, 0, 7);
    const float start_w7[6] = {1.2f, 0.05f, -0.1f, 0.02f, 320.0f, 240.0f};
    check_exact("main W7", main_pdm, &settings, start_w7, 0.41f, -0.04f, 11, &main_w7);
    single_scale(&settings, 1.621357f, 17.718598f, 0, 9);
    const float start_w9[6] = {0.9f, -0.2f, 0.3f, 0.1f, 200.0f, 210.0f};
    check_exact("main W9", main_pdm, &settings, start_w9, 0.38f, 0.03f, 0, &main_w9);
    fa_clnf_settings_inner(&settings);
    const float start_inner[6] = {1.3f, 0.02f, 0.1f, -0.03f, 200.0f, 150.0f};
    check_exact("inner W9 weighted", inner_pdm, &settings, start_inner, 0.77f, 0.05f, 0, &inner_w9);
    /* The left eye model (16 columns, all in single chains; 10 modes), windows 3 and 5. */
    const float start_eye[6] = {2.1f, 0.1f, -0.2f, 0.05f, 150.0f, 120.0f};
    single_scale(&settings, 1.0f, 0.5f, 0, 3);
    check_exact("left eye W3", eye_pdm, &settings, start_eye, 1.4f, 0.1f, 0, &eye_w3);
    single_scale(&settings, 1.0f, 0.5f, 0, 5);
    check_exact("left eye W5", eye_pdm, &settings, start_eye, 1.4f, 0.1f, 0, &eye_w5);

    /* PDM::CalcParams from a box, also recorded from OpenFace's code. */
    const float box[4] = {100.5f, 80.25f, 150.75f, 160.125f};
    const float rotations[3][3] = {{0, 0, 0}, {0, -0.96f, 0}, {0, 1.22f, -0.698f}};
    const unsigned expected[3][6] = {
        {0x3f8beda0, 0, 0, 0, 0x4330fa55, 0x43188153},
        {0x3f9f5732, 0, 0xbf75c28f, 0, 0x434f1a2d, 0x43176c0c},
        {0x3fa65f16, 0, 0x3f9c28f6, 0xbf32b021, 0x431fcc74, 0x4322e559},
    };
    float zero[FA_CLNF_MAX_MODES] = {0};
    for (int r = 0; r < 3; r++) {
        float global[6];
        fa_pdm_params_from_box(main_pdm, box, zero, rotations[r], global);
        int same = 1;
        for (int j = 0; j < 6; j++)
            same &= float_bits(global[j]) == expected[r][j];
        CHECK(same, "box rotation %d: %.9g %.9g %.9g", r, global[0], global[4], global[5]);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Convergence on synthetic Gaussian peaks at a known shape */

typedef struct synthetic {
    const fa_pdm_t *pdm;
    const fa_clnf_settings_t *settings;
    float truth[2 * FA_CLNF_MAX_POINTS]; /* where the peaks are, in the image */
    int flat;                            /* uniform maps instead of peaks */
    int visible[FA_CLNF_MAX_POINTS];
    float confidence[FA_CLNF_MAX_POINTS];
    int calls, scale0_calls;
} synthetic_t;

static fa_status synthetic_respond(void *context, int scale, int window,
                                   const float params_global[6], const float *params_local,
                                   fa_clnf_responses_t *responses, fa_error_t *error) {
    synthetic_t *s = context;
    s->calls++;
    s->scale0_calls += scale == 0;
    int n = s->pdm->point_count;
    float shape[2 * FA_CLNF_MAX_POINTS];
    fa_pdm_shape_2d(s->pdm, params_global, params_local, shape);
    /* A rotation-free reference frame at the patch scaling. */
    float k = (float)(s->settings->patch_scaling[scale] / params_global[0]);
    responses->img_to_ref[0] = responses->img_to_ref[3] = k;
    responses->img_to_ref[1] = responses->img_to_ref[2] = 0;
    responses->ref_to_img[0] = responses->ref_to_img[3] = 1.0f / k;
    responses->ref_to_img[1] = responses->ref_to_img[2] = 0;
    responses->view = 0;
    responses->visible = s->visible;
    responses->confidence = s->confidence;
    double c = (window - 1) / 2.0;
    for (int i = 0; i < n; i++) {
        double ox = k * (s->truth[i] - shape[i]), oy = k * (s->truth[i + n] - shape[i + n]);
        float *map = responses->maps + i * window * window;
        for (int ii = 0; ii < window; ii++)
            for (int jj = 0; jj < window; jj++) {
                double ex = jj - c - ox, ey = ii - c - oy;
                map[ii * window + jj] = s->flat ? 1.0f : (float)exp(-(ex * ex + ey * ey) / 2.0);
            }
    }
    return FA_OK;
}

static double rms_error(const float *a, const float *b, int n) {
    double sum = 0;
    for (int k = 0; k < 2 * n; k++)
        sum += (a[k] - b[k]) * (double)(a[k] - b[k]);
    return sqrt(sum / n);
}

static void test_convergence(const fa_pdm_t *pdm) {
    fa_clnf_settings_t settings;
    fa_clnf_settings_main(&settings);
    fa_clnf_model_t model;
    fa_error_t error = {0};
    CHECK_OK(fa_clnf_model_init(&model, pdm, &settings, &error));
    if (!model.pdm) return;
    int n = pdm->point_count;
    static synthetic_t s;
    static fa_clnf_workspace_t workspace;
    memset(&s, 0, sizeof s);
    s.pdm = pdm;
    s.settings = &settings;
    for (int i = 0; i < n; i++)
        s.visible[i] = 1;
    float true_global[6] = {1.0f, 0.1f, -0.15f, 0.05f, 300.0f, 250.0f};
    float true_local[FA_CLNF_MAX_MODES] = {0};
    for (int j = 0; j < 5; j++)
        true_local[j] = (j % 2 ? -0.5f : 0.5f) * sqrtf(pdm->eigenvalues[j]);
    fa_pdm_shape_2d(pdm, true_global, true_local, s.truth);
    fa_clnf_provider_t provider = {synthetic_respond, &s};

    /* Rigid only: moves the six global parameters, never p_local. */
    fa_clnf_state_t state;
    fa_clnf_state_reset(&state);
    float start[6] = {0.95f, 0, 0, 0, 304.0f, 246.0f}, shape[2 * FA_CLNF_MAX_POINTS];
    memcpy(state.params_global, start, sizeof start);
    state.params_local[2] = 3.0f;
    fa_clnf_responses_t responses = {.maps = workspace.maps};
    CHECK_OK(
        synthetic_respond(&s, 2, 7, state.params_global, state.params_local, &responses, &error));
    float base[2 * FA_CLNF_MAX_POINTS];
    fa_pdm_shape_2d(pdm, state.params_global, state.params_local, base);
    double before = rms_error(base, s.truth, n);
    fa_clnf_rlms_t rlms = {7, 1, 0, 1.75f, 10.0f, 0};
    fa_clnf_nu_rlms(&model, &responses, base, &rlms, state.params_global, state.params_local, NULL,
                    &workspace);
    fa_pdm_shape_2d(pdm, state.params_global, state.params_local, shape);
    int local_unchanged = state.params_local[2] == 3.0f;
    for (int j = 0; j < pdm->mode_count; j++)
        local_unchanged &= j == 2 || state.params_local[j] == 0;
    CHECK(local_unchanged, "rigid NU-RLMS changed p_local");
    CHECK(memcmp(state.params_global, start, sizeof start) != 0, "rigid NU-RLMS moved nothing");
    CHECK(rms_error(shape, s.truth, n) < before, "rigid step: error %.3f from %.3f",
          rms_error(shape, s.truth, n), before);

    /* Full fits: a detection-sized Fit, then tracking Fits. */
    fa_clnf_state_reset(&state);
    memcpy(state.params_global, start, sizeof start);
    s.calls = s.scale0_calls = 0;
    int success = 0;
    CHECK_OK(fa_clnf_fit(&model, settings.windows_init, &provider, &workspace, &state, &success,
                         &error));
    CHECK(success, "fit failed");
    CHECK(s.scale0_calls == 1 && s.calls == 3, "responses asked %d times (%d at scale 0)", s.calls,
          s.scale0_calls);
    for (int k = 0; k < 3; k++)
        CHECK_OK(fa_clnf_fit(&model, settings.windows_track, &provider, &workspace, &state,
                             &success, &error));
    CHECK(s.scale0_calls == 1, "tracking windows skip scale 0");
    fa_pdm_shape_2d(pdm, state.params_global, state.params_local, shape);
    double after = rms_error(shape, s.truth, n);
    CHECK(after < 0.25, "converged to %.3f px RMS from %.3f", after, before);
    CHECK(fabsf(state.params_global[0] - 1.0f) < 0.01f &&
              fabsf(state.params_global[1] - 0.1f) < 0.03f &&
              fabsf(state.params_global[2] + 0.15f) < 0.03f &&
              fabsf(state.params_global[3] - 0.05f) < 0.01f,
          "global %.4f %.4f %.4f %.4f", state.params_global[0], state.params_global[1],
          state.params_global[2], state.params_global[3]);
    CHECK(state.model_likelihood > -10 && isfinite(state.model_likelihood), "likelihood %.4f",
          state.model_likelihood);

    /* A face that is too small fails the fit. */
    fa_clnf_state_reset(&state);
    float tiny[6] = {0.2f, 0, 0, 0, 300, 250};
    memcpy(state.params_global, tiny, sizeof tiny);
    fa_pdm_shape_2d(pdm, tiny, state.params_local, s.truth);
    CHECK_OK(fa_clnf_fit(&model, settings.windows_init, &provider, &workspace, &state, &success,
                         &error));
    CHECK(!success, "a face at scale 0.2 is too small");
    fa_clnf_model_release(&model);
}

/* ---------------------------------------------------------------------------------------------
 * DetectLandmarks with parts, and the tracking state machine */

typedef struct script {
    int frame;       /* 1-based */
    int face_from;   /* the detector finds a face from this frame on */
    int valid_until; /* the validator accepts up to this frame */
    int validations, detections;
} script_t;

static fa_status script_validate(void *context, const float orientation[3], const float *landmarks,
                                 float *certainty, fa_error_t *error) {
    script_t *s = context;
    s->validations++;
    *certainty = s->frame <= s->valid_until ? 0.95f : 0.2f;
    return FA_OK;
}

static fa_status script_detect(void *context, float box[4], int *found, fa_error_t *error) {
    script_t *s = context;
    s->detections++;
    *found = s->frame >= s->face_from;
    const float face[4] = {250, 200, 120, 130};
    memcpy(box, face, sizeof face);
    return FA_OK;
}

typedef struct system_fixture {
    fa_pdm_t pdms[4]; /* main, inner, left eye, right eye */
    fa_clnf_settings_t settings[4];
    fa_clnf_model_t models[4];
    synthetic_t responses[4];
    fa_clnf_system_t system;
    fa_clnf_callbacks_t callbacks;
    script_t script;
} system_fixture_t;

static int fixture_open(system_fixture_t *f, int with_parts) {
    const char *files[4] = {
        "pdms/In-the-wild_aligned_PDM_68.txt", "model_inner/pdms/pdm_51_inner.txt",
        "model_eye/pdms/pdm_28_l_eye_3D_closed.txt", "model_eye/pdms/pdm_28_eye_3D_closed.txt"};
    fa_clnf_settings_main(&f->settings[0]);
    fa_clnf_settings_inner(&f->settings[1]);
    fa_clnf_settings_eye(&f->settings[2]);
    fa_clnf_settings_eye(&f->settings[3]);
    int count = with_parts ? 4 : 1;
    fa_error_t error = {0};
    for (int k = 0; k < count; k++) {
        if (!load_pdm(files[k], &f->pdms[k])) return 0;
        if (fa_clnf_model_init(&f->models[k], &f->pdms[k], &f->settings[k], &error) != FA_OK)
            return 0;
        synthetic_t *s = &f->responses[k];
        s->pdm = &f->pdms[k];
        s->settings = &f->settings[k];
        s->flat = 1;
        for (int i = 0; i < f->pdms[k].point_count; i++) {
            s->visible[i] = 1;
            s->confidence[i] = 0.6f;
        }
    }
    f->system.main = &f->models[0];
    f->system.refine_hierarchical = 1;
    f->system.validate_detections = 1;
    f->system.validation_boundary = 0.725f;
    f->system.reinit_video_every = 2;
    f->callbacks.main = (fa_clnf_provider_t){synthetic_respond, &f->responses[0]};
    if (with_parts) {
        f->system.part_count = 3;
        for (int p = 0; p < 3; p++) {
            f->system.parts[p].model = &f->models[p + 1];
            f->callbacks.parts[p] = (fa_clnf_provider_t){synthetic_respond, &f->responses[p + 1]};
        }
        fa_clnf_part_t *inner = &f->system.parts[0];
        for (int k = 0; k < 51; k++) {
            inner->mapping[k][0] = 17 + k;
            inner->mapping[k][1] = k;
        }
        inner->mapping_count = 51;
        for (int e = 0; e < 2; e++) {
            fa_clnf_part_t *eye = &f->system.parts[1 + e];
            for (int k = 0; k < 6; k++) {
                eye->mapping[k][0] = 36 + 6 * e + k;
                eye->mapping[k][1] = 8 + 2 * k;
            }
            eye->mapping_count = 6;
        }
    }
    f->callbacks.validate = script_validate;
    f->callbacks.validate_context = &f->script;
    f->callbacks.detect = script_detect;
    f->callbacks.detect_context = &f->script;
    return 1;
}

static void fixture_close(system_fixture_t *f) {
    for (int k = 0; k < 4; k++) {
        fa_clnf_model_release(&f->models[k]);
        fa_pdm_release(&f->pdms[k]);
    }
}

static void test_hierarchical(void) {
    static system_fixture_t f;
    memset(&f, 0, sizeof f);
    if (!fixture_open(&f, 1)) return;
    fa_clnf_tracker_t *tracker = NULL;
    fa_error_t error = {0};
    CHECK_OK(fa_clnf_tracker_create(&tracker, &error));
    if (!tracker) return;
    f.script.valid_until = 1000;
    for (int big = 0; big < 2; big++) {
        /* Scale 0.6 (parts only placed by CalcParams) or 1.5 (parts fitted, main re-fit). */
        float scale = big ? 1.5f : 0.6f;
        float global[6] = {scale, 0, 0, 0, 320, 240};
        memcpy(tracker->main.params_global, global, sizeof global);
        memset(tracker->main.params_local, 0, sizeof tracker->main.params_local);
        for (int k = 0; k < 4; k++)
            f.responses[k].calls = 0;
        int success = 0;
        CHECK_OK(fa_clnf_detect_landmarks(&f.system, tracker, &f.callbacks,
                                          f.settings[0].windows_init, &success, &error));
        CHECK(success && tracker->main.detection_certainty == 0.95f, "success %d, %.2f", success,
              tracker->main.detection_certainty);
        int part_calls = f.responses[1].calls + f.responses[2].calls + f.responses[3].calls;
        CHECK(big ? part_calls == 1 + 2 + 2 : part_calls == 0, "scale %.1f: %d part responses",
              scale, part_calls);
        float projected[2 * FA_CLNF_MAX_POINTS];
        fa_pdm_shape_2d(&f.pdms[0], tracker->main.params_global, tracker->main.params_local,
                        projected);
        CHECK(memcmp(projected, tracker->main.landmarks, 2 * 68 * sizeof(float)) == 0,
              "main landmarks are the projection of its parameters");
        for (int p = 0; p < 3; p++) {
            fa_pdm_shape_2d(&f.pdms[p + 1], tracker->parts[p].params_global,
                            tracker->parts[p].params_local, projected);
            int part_n = f.pdms[p + 1].point_count;
            CHECK(memcmp(projected, tracker->parts[p].landmarks, 2 * part_n * sizeof(float)) == 0,
                  "part %d landmarks are its projection", p);
        }
    }
    fa_clnf_tracker_destroy(tracker);
    fixture_close(&f);
}

static void test_schedule(void) {
    static system_fixture_t f;
    memset(&f, 0, sizeof f);
    if (!fixture_open(&f, 0)) return;
    f.system.part_count = 0;
    fa_clnf_tracker_t *tracker = NULL;
    fa_error_t error = {0};
    CHECK_OK(fa_clnf_tracker_create(&tracker, &error));
    if (!tracker) return;
    script_t *s = &f.script;
    s->face_from = 30;
    s->valid_until = 59;
    int detection_frames[64], detection_count = 0, restored = 0, bad_init_windows = 0;
    int dropped_at = 0, first_csv_mismatch = 0;
    for (int frame = 1; frame <= 175; frame++) {
        s->frame = frame;
        int detections_before = s->detections;
        int scale0_before = f.responses[0].scale0_calls, calls_before = f.responses[0].calls;
        int was_success = tracker->main.detection_success,
            was_tracking = tracker->tracking_initialised;
        int success = -1;
        CHECK_OK(fa_clnf_track(&f.system, tracker, &f.callbacks, &success, &error));
        if (s->detections > detections_before && detection_count < 64)
            detection_frames[detection_count++] = frame;
        restored += tracker->last_restored;
        /* A tracking step after a success asks no scale-0 responses; after a failure it does. */
        if (was_tracking && tracker->last_tracked && !tracker->last_detection) {
            int scale0 = f.responses[0].scale0_calls - scale0_before;
            bad_init_windows += was_success ? scale0 != 0 : scale0 != 1;
        }
        (void)calls_before;
        if (was_tracking && !tracker->tracking_initialised && !dropped_at) dropped_at = frame;
        if (success != tracker->main.detection_success && !first_csv_mismatch)
            first_csv_mismatch = frame;
        if (frame == 37)
            CHECK(success == 1 && tracker->main.detection_success == 1, "frame 37: %d %d", success,
                  tracker->main.detection_success);
        if (frame == 50)
            CHECK(success == 1 && tracker->failures_in_a_row == -1 && !tracker->last_detection,
                  "frame 50 tracks: %d %d", success, tracker->failures_in_a_row);
        if (frame == 60)
            CHECK(success == 0 && tracker->last_restored &&
                      tracker->main.detection_certainty == 0.2f,
                  "frame 60: failed re-detection restored (%d %d %.2f)", success,
                  tracker->last_restored, tracker->main.detection_certainty);
    }
    /* Before the face: 1, 13, 25, 37. Tracking fails from frame 60: re-detections on the 1st,
     * 3rd, 5th... failed frame (60, 62, ..., 160); the counter passes 100 on frame 161 and
     * tracking is dropped; the next detection is on frame 168 (counter 107), an initial one,
     * accepted although validation fails; frame 169 tracks with the init windows, fails and
     * re-detects at once; then 171, 173, 175. */
    int expected[80], expected_count = 0;
    for (int frame = 1; frame <= 37; frame += 12)
        expected[expected_count++] = frame;
    for (int frame = 60; frame <= 160; frame += 2)
        expected[expected_count++] = frame;
    expected[expected_count++] = 168;
    for (int frame = 169; frame <= 175; frame += 2)
        expected[expected_count++] = frame;
    int same = detection_count == expected_count;
    for (int k = 0; same && k < expected_count; k++)
        same = detection_frames[k] == expected[k];
    CHECK(same, "%d detections (expected %d); first differing at index %d", detection_count,
          expected_count, detection_count);
    if (!same)
        for (int k = 0; k < detection_count; k++)
            fprintf(stderr, "detection on frame %d\n", detection_frames[k]);
    CHECK(dropped_at == 161, "tracking dropped on frame %d", dropped_at);
    CHECK(restored == 51 + 4, "%d restored re-detections", restored);
    CHECK(bad_init_windows == 0, "%d tracking frames with the wrong windows", bad_init_windows);
    CHECK(first_csv_mismatch == 168, "CSV success first differs from the model's on frame %d",
          first_csv_mismatch);
    CHECK(s->validations > 0, "validator used");
    fa_clnf_tracker_reset(tracker);
    CHECK(!tracker->tracking_initialised && tracker->failures_in_a_row == -1 &&
              tracker->main.model_likelihood == -10 && tracker->main.params_global[0] == 1,
          "reset");
    fa_clnf_tracker_destroy(tracker);
    fixture_close(&f);
}

int main(void) {
    fa_pdm_t main_pdm, inner_pdm, eye_pdm;
    if (load_pdm("pdms/In-the-wild_aligned_PDM_68.txt", &main_pdm)) {
        test_kde(&main_pdm);
        if (load_pdm("model_inner/pdms/pdm_51_inner.txt", &inner_pdm)) {
            if (load_pdm("model_eye/pdms/pdm_28_l_eye_3D_closed.txt", &eye_pdm)) {
                test_exact(&main_pdm, &inner_pdm, &eye_pdm);
                fa_pdm_release(&eye_pdm);
            }
            fa_pdm_release(&inner_pdm);
        }
        test_convergence(&main_pdm);
        fa_pdm_release(&main_pdm);
    }
    test_hierarchical();
    test_schedule();
    return test_finish("clnf_fit");
}
