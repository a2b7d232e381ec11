/* The CLNF model set: the facts of LANDMARKS_SPEC §1.2–§1.4 and the parameters of §3.1 on the
 * shipped main_clnf_general.txt, the prepared Sigmas (the same with one thread and many), damaged
 * copies of the model folder (each error names the file at fault), and the load time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "landmarks/clnf_model.h"
#include "testing.h"

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *model_path(const char *name) {
    static char buffers[4][4096];
    static int next;
    char *out = buffers[next++ % 4];
    snprintf(out, 4096, "%s/model/%s", test_models_dir(), name);
    return out;
}

static int ends_with(const char *text, const char *suffix) {
    size_t n = strlen(text), m = strlen(suffix);
    return n >= m && !strcmp(text + n - m, suffix);
}

static int near(double value, double expected, double tolerance) {
    return fabs(value - expected) <= tolerance;
}

/* ---------------------------------------------------------------------------------------------
 * The shipped model set */

static void check_windows(const fa_clnf_detector_t *detector, const char *name, const int *expected,
                          int scale_count) {
    CHECK(detector->ccnf.scale_count == scale_count, "%s: %d scales", name,
          detector->ccnf.scale_count);
    for (int s = 0; s < scale_count && s < detector->ccnf.scale_count; s++) {
        const fa_ccnf_scale_t *scale = &detector->ccnf.scales[s];
        CHECK(scale->window_count == 1 && scale->windows[0] == expected[s],
              "%s scale %d: %d windows prepared, first %d (expected only %d)", name, s,
              scale->window_count, scale->windows[0], expected[s]);
        CHECK(fa_ccnf_window_index(&detector->ccnf, s, expected[s]) == 0, "%s scale %d", name, s);
    }
}

static void check_parameters(const fa_clnf_detector_t *detector, const char *name, float sigma,
                             float reg, float weight, const int *init, const int *small,
                             int window_count, int main_switches) {
    const fa_clnf_parameters_t *p = &detector->parameters;
    CHECK(p->sigma == sigma && p->reg_factor == reg && p->weight_factor == weight,
          "%s: sigma %g reg %g weight %g", name, p->sigma, p->reg_factor, p->weight_factor);
    CHECK(p->iterations == 5, "%s: %d iterations", name, p->iterations);
    CHECK(p->window_count == window_count, "%s: %d windows", name, p->window_count);
    for (int i = 0; i < window_count && i < p->window_count; i++) {
        CHECK(p->windows_init[i] == init[i] && fa_clnf_window(detector, i, 0) == init[i],
              "%s init window %d = %d", name, i, p->windows_init[i]);
        CHECK(p->windows_small[i] == small[i] && fa_clnf_window(detector, i, 1) == small[i],
              "%s small window %d = %d", name, i, p->windows_small[i]);
    }
    CHECK(p->refine_parameters == main_switches && p->refine_hierarchical == main_switches &&
              p->validate_detections == main_switches,
          "%s: refine_parameters %d refine_hierarchical %d validate %d", name, p->refine_parameters,
          p->refine_hierarchical, p->validate_detections);
}

/* The fitter's built-in defaults (used by test_clnf_fit) must be what the model files give. */
static void check_fit_settings(const fa_clnf_detector_t *detector, const char *name,
                               void (*defaults)(fa_clnf_settings_t *)) {
    fa_clnf_settings_t loaded, expected;
    fa_clnf_detector_settings(detector, &loaded);
    defaults(&expected);
    int same = loaded.sigma == expected.sigma && loaded.reg_factor == expected.reg_factor &&
               loaded.weight_factor == expected.weight_factor &&
               loaded.iterations == expected.iterations &&
               loaded.refine_parameters == expected.refine_parameters &&
               loaded.scale_count == expected.scale_count;
    for (int s = 0; same && s < loaded.scale_count; s++)
        same = loaded.patch_scaling[s] == expected.patch_scaling[s] &&
               loaded.windows_init[s] == expected.windows_init[s] &&
               loaded.windows_track[s] == expected.windows_track[s];
    CHECK(same, "%s: fitter settings from the files differ from fa_clnf_settings_*", name);
}

static void test_facts(const fa_clnf_set_t *model) {
    static const char *names[3] = {"inner", "left_eye_28", "right_eye_28"};
    static const int points[3] = {51, 28, 28}, modes[3] = {32, 10, 10};
    CHECK(model->main.pdm.point_count == 68 && model->main.pdm.mode_count == 34,
          "main PDM %d points %d modes", model->main.pdm.point_count, model->main.pdm.mode_count);
    CHECK(model->part_count == 3, "%d parts", model->part_count);
    for (int p = 0; p < 3 && p < model->part_count; p++) {
        const fa_clnf_set_part_t *part = &model->parts[p];
        CHECK(!strcmp(part->name, names[p]), "part %d is %s", p, part->name);
        CHECK(part->detector.pdm.point_count == points[p] &&
                  part->detector.ccnf.point_count == points[p],
              "part %s: %d points", part->name, part->detector.pdm.point_count);
        CHECK(part->detector.pdm.mode_count == modes[p], "part %s: %d modes", part->name,
              part->detector.pdm.mode_count);
    }
    if (model->part_count == 3) {
        const fa_clnf_set_part_t *inner = &model->parts[0];
        int ok = inner->pair_count == 51;
        for (int i = 0; ok && i < 51; i++)
            ok = inner->pairs[i][0] == 17 + i && inner->pairs[i][1] == i;
        CHECK(ok, "inner pairs (17, 0) .. (67, 50): %d pairs", inner->pair_count);
        for (int e = 0; e < 2; e++) {
            const fa_clnf_set_part_t *eye = &model->parts[1 + e];
            ok = eye->pair_count == 6;
            for (int i = 0; ok && i < 6; i++)
                ok = eye->pairs[i][0] == 36 + 6 * e + i && eye->pairs[i][1] == 8 + 2 * i;
            CHECK(ok, "%s pairs: %d", eye->name, eye->pair_count);
        }
    }
    const double main_scalings[3] = {0.25, 0.35, 0.5};
    for (int s = 0; s < 3 && s < model->main.ccnf.scale_count; s++)
        CHECK(model->main.ccnf.scales[s].scaling == main_scalings[s], "main scale %d: %g", s,
              model->main.ccnf.scales[s].scaling);
    if (model->part_count == 3) {
        CHECK(model->parts[0].detector.ccnf.scales[0].scaling == 1.0, "inner scaling");
        for (int e = 1; e < 3; e++)
            CHECK(model->parts[e].detector.ccnf.scales[0].scaling == 1.0 &&
                      model->parts[e].detector.ccnf.scales[1].scaling == 1.5,
                  "%s scalings", model->parts[e].name);
    }
    CHECK(ends_with(model->validator_path, "/detection_validation/validator_cnn.txt"),
          "validator %s", model->validator_path);
    CHECK(model->eye_model == 1, "eye model flag");
}

/* §3.1's table, and the Sigmas prepared for exactly the windows it uses. */
static void test_parameters(const fa_clnf_set_t *model) {
    check_parameters(&model->main, "main", 1.5f, 25.0f, 0.0f, (const int[]){11, 9, 7, 5},
                     (const int[]){0, 9, 7, 0}, 4, 1);
    CHECK(model->main.parameters.validation_boundary == 0.725f, "validation boundary");
    check_windows(&model->main, "main", (const int[]){11, 9, 7}, 3);
    if (model->part_count != 3) return;
    check_parameters(&model->parts[0].detector, "inner", 1.75f, 2.5f, 2.5f, (const int[]){9},
                     (const int[]){9}, 1, 0);
    check_windows(&model->parts[0].detector, "inner", (const int[]){9}, 1);
    for (int e = 1; e < 3; e++) {
        check_parameters(&model->parts[e].detector, model->parts[e].name, 1.0f, 0.5f, 0.0f,
                         (const int[]){3, 5, 9}, (const int[]){3, 5, 9}, 3, 0);
        check_windows(&model->parts[e].detector, model->parts[e].name, (const int[]){3, 5}, 2);
    }

    /* Per-scale adaptation of the main model: (reg, sigma, a = -0.5 / sigma²), as the spec
     * tabulates them with six decimals (so a tolerance of two units in the last place). */
    static const double expected[3][3] = {
        {25, 1.5, -0.222222}, {17.718598, 1.621357, -0.190200}, {10, 1.75, -0.163265}};
    for (int s = 0; s < 3; s++) {
        fa_clnf_adapted_t a = fa_clnf_adapted_parameters(&model->main, s);
        double kernel = -0.5 / ((double)a.sigma * a.sigma);
        CHECK(near(a.reg_factor, expected[s][0], 2e-6 * expected[s][0]) &&
                  near(a.sigma, expected[s][1], 2e-6) && near(kernel, expected[s][2], 2e-6) &&
                  a.weight_factor == 0,
              "main scale %d: reg %.7g sigma %.7g a %.7g weight %g", s, a.reg_factor, a.sigma,
              kernel, a.weight_factor);
    }
    fa_clnf_adapted_t exact = fa_clnf_adapted_parameters(&model->main, 1);
    CHECK(exact.reg_factor == (float)(25.0 - 15 * log(1.4) / log(2.0)) &&
              exact.sigma == (float)(1.5 + 0.25 * log(1.4) / log(2.0)),
          "scale 1 rounded as OpenFace");
    /* Parts do not adapt: their own values at every scale. */
    for (int p = 0; p < 3; p++)
        for (int s = 0; s < model->parts[p].detector.ccnf.scale_count; s++) {
            const fa_clnf_detector_t *d = &model->parts[p].detector;
            fa_clnf_adapted_t a = fa_clnf_adapted_parameters(d, s);
            CHECK(a.reg_factor == d->parameters.reg_factor && a.sigma == d->parameters.sigma &&
                      a.weight_factor == d->parameters.weight_factor,
                  "%s scale %d not adapted", model->parts[p].name, s);
        }
    /* The weight rule, on a copy with NU-RLMS weighting: 2.5 + 2 * 2.5 * log2(0.5 / 0.25). */
    fa_clnf_detector_t weighted = model->main;
    weighted.parameters.weight_factor = 2.5f;
    CHECK(fa_clnf_adapted_parameters(&weighted, 2).weight_factor == 7.5f, "weight at scale 2");
    weighted.parameters.reg_factor = 5.0f;
    CHECK(fa_clnf_adapted_parameters(&weighted, 2).reg_factor == 0.001f, "reg floor");
}

static int same_sigmas(const fa_clnf_detector_t *a, const fa_clnf_detector_t *b) {
    for (int s = 0; s < a->ccnf.scale_count; s++) {
        const fa_ccnf_scale_t *sa = &a->ccnf.scales[s], *sb = &b->ccnf.scales[s];
        if (sa->window_count != sb->window_count) return 0;
        for (int w = 0; w < sa->window_count; w++) {
            size_t n = (size_t)sa->windows[w] * (size_t)sa->windows[w];
            for (int e = 0; e < sa->view_count * sa->point_count; e++) {
                const float *x = sa->experts[e].sigma[w], *y = sb->experts[e].sigma[w];
                if (!x != !y) return 0;
                if (x && memcmp(x, y, n * (size_t)sa->sigma_stride[w] * sizeof(float))) return 0;
            }
        }
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Damaged copies of the model folder */

static char work[4096];

static void write_text(const char *name, const char *text) {
    char path[8192];
    snprintf(path, sizeof path, "%s/model/%s", work, name);
    unlink(path);
    FILE *file = fopen(path, "wb");
    CHECK(file != NULL, "cannot write %s", path);
    if (!file) return;
    fputs(text, file);
    fclose(file);
}

static const char *MAIN_HEAD = "LandmarkDetector clnf_general.txt\n";
static const char *INNER_LINE =
    "LandmarkDetector_part model_inner/main_clnf_inner.txt inner 17 0 18 1 19 2 20 3 21 4 22 5 "
    "23 6 24 7 25 8 26 9 27 10 28 11 29 12 30 13 31 14 32 15 33 16 34 17 35 18 36 19 37 20 38 21 "
    "39 22 40 23 41 24 42 25 43 26 44 27 45 28 46 29 47 30 48 31 49 32 50 33 51 34 52 35 53 36 "
    "54 37 55 38 56 39 57 40 58 41 59 42 60 43 61 44 62 45 63 46 64 47 65 48 66 49 67 50\n";
static const char *LEFT_LINE = "LandmarkDetector_part model_eye/main_clnf_synth_left.txt "
                               "left_eye_28 36 8 37 10 38 12 39 14 40 16 41 18\n";
static const char *RIGHT_LINE = "LandmarkDetector_part model_eye/main_clnf_synth_right.txt "
                                "right_eye_28 42 8 43 10 44 12 45 14 46 16 47 18\n";
static const char *TAIL = "FaceDetConversion haarAlign.txt\n"
                          "DetectionValidator detection_validation/validator_cnn.txt";

/* Loads a main file written into the copy and expects a failure whose message holds every
 * given fragment. */
static void expect_failure(const char *case_name, const char *main_text, const char *fragment1,
                           const char *fragment2) {
    write_text("case.txt", main_text);
    char path[8192];
    snprintf(path, sizeof path, "%s/model/case.txt", work);
    fa_clnf_set_t model;
    fa_error_t error = {0};
    fa_status status = fa_clnf_set_load(path, 0, &model, &error);
    CHECK(status != FA_OK && strstr(error.message, fragment1) &&
              (!fragment2 || strstr(error.message, fragment2)),
          "%s: status %d, message '%s' (expected '%s'%s%s)", case_name, (int)status, error.message,
          fragment1, fragment2 ? ", " : "", fragment2 ? fragment2 : "");
    printf("  %-28s %s\n", case_name, error.message);
    fa_clnf_set_release(&model);
}

static void test_damaged(const fa_clnf_set_t *reference) {
    strcpy(work, "/tmp/faceau_clnf_model_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    char command[16384];
    snprintf(command, sizeof command, "cp -rs '%s/model' '%s/model'", test_models_dir(), work);
    CHECK(system(command) == 0, "symbolic copy of the model folder");
    char text[8192];

    /* The copy as shipped, with CRLF line ends, loads the same model. */
    snprintf(text, sizeof text, "%s%s%s%s%s", MAIN_HEAD, INNER_LINE, LEFT_LINE, RIGHT_LINE, TAIL);
    char crlf[16384];
    size_t n = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '\n') crlf[n++] = '\r';
        crlf[n++] = *c;
    }
    crlf[n] = '\0';
    write_text("case.txt", crlf);
    snprintf(command, sizeof command, "%s/model/case.txt", work);
    fa_clnf_set_t copy;
    fa_error_t error = {0};
    CHECK(fa_clnf_set_load(command, 0, &copy, &error) == FA_OK, "CRLF copy: %s", error.message);
    int same = copy.part_count == reference->part_count;
    for (int p = 0; same && p < copy.part_count; p++)
        same = copy.parts[p].pair_count == reference->parts[p].pair_count &&
               !memcmp(copy.parts[p].pairs, reference->parts[p].pairs, sizeof copy.parts[p].pairs);
    CHECK(same, "CRLF copy: same parts and pairs");
    fa_clnf_set_release(&copy);

    snprintf(text, sizeof text, "%s%s%s%s", MAIN_HEAD,
             "LandmarkDetector_part model_inner/main_clnf_inner.txt inner 17 0 18 1 19\n",
             LEFT_LINE, TAIL);
    expect_failure("truncated pair line", text, "case.txt line 2", "odd number");
    snprintf(text, sizeof text, "%s%s%s%s", MAIN_HEAD,
             "LandmarkDetector_part model_inner/main_clnf_inner.txt inner 17 0 18 x\n", LEFT_LINE,
             TAIL);
    expect_failure("garbage index", text, "case.txt line 2", "'x'");
    snprintf(text, sizeof text, "%s%s%s%s", MAIN_HEAD, INNER_LINE,
             "LandmarkDetector_part model_eye/main_clnf_synth_left.txt left_eye_28 36 8 37 28\n",
             TAIL);
    expect_failure("part index out of range", text, "case.txt line 3", "(37, 28)");
    snprintf(text, sizeof text, "%s%s%s%s", MAIN_HEAD, INNER_LINE,
             "LandmarkDetector_part model_eye/main_clnf_synth_left.txt left_eye_28 68 8\n", TAIL);
    expect_failure("main index out of range", text, "case.txt line 3", "(68, 8)");
    snprintf(text, sizeof text, "%s%s%s", INNER_LINE, LEFT_LINE, TAIL);
    expect_failure("no LandmarkDetector", text, "case.txt", "no LandmarkDetector");
    snprintf(text, sizeof text, "%s%s", MAIN_HEAD, LEFT_LINE);
    expect_failure("no DetectionValidator", text, "case.txt", "no DetectionValidator");
    snprintf(text, sizeof text, "%s%s", MAIN_HEAD,
             "DetectionValidator detection_validation/validator_gone.txt\n");
    expect_failure("missing validator", text, "validator_gone.txt", NULL);
    snprintf(text, sizeof text, "%s%s%s", MAIN_HEAD,
             "LandmarkDetector_part model_eye/main_clnf_synth_gone.txt left_eye_28 36 8\n", TAIL);
    expect_failure("missing part file", text, "main_clnf_synth_gone.txt", NULL);

    /* Files named by part models and by the CLNF file. */
    snprintf(command, sizeof command,
             "%s/model/model_eye/patch_experts/"
             "left_ccnf_patches_1.50_synth_lid_.txt",
             work);
    char saved[8192];
    ssize_t saved_length = readlink(command, saved, sizeof saved - 1);
    CHECK(saved_length > 0 && unlink(command) == 0, "remove a patch expert file");
    snprintf(text, sizeof text, "%s%s%s%s", MAIN_HEAD, INNER_LINE, LEFT_LINE, TAIL);
    expect_failure("missing patch expert file", text, "left_ccnf_patches_1.50_synth_lid_.txt",
                   NULL);
    if (saved_length > 0) {
        saved[saved_length] = '\0';
        CHECK(symlink(saved, command) == 0, "restore the patch expert file");
    }
    write_text("clnf_no_pdm.txt", "Triangulations tris_68.txt\n"
                                  "PatchesCCNF patch_experts/ccnf_patches_0.25_general.txt\n");
    expect_failure("no PDM line",
                   "LandmarkDetector clnf_no_pdm.txt\n" /* + validator */
                   "DetectionValidator detection_validation/validator_cnn.txt",
                   "clnf_no_pdm.txt", "no PDM line");
    write_text("clnf_no_patches.txt", "PDM pdms/In-the-wild_aligned_PDM_68.txt\n");
    expect_failure("no PatchesCCNF line", "LandmarkDetector clnf_no_patches.txt\n",
                   "clnf_no_patches.txt", "no PatchesCCNF");
    write_text("clnf_broken_line.txt",
               "PDM pdms/In-the-wild_aligned_PDM_68.txt\n"
               "PatchesCCNF  patch_experts/ccnf_patches_0.25_general.txt\n");
    expect_failure("double space in location", "LandmarkDetector clnf_broken_line.txt\n",
                   " patch_experts/ccnf_patches_0.25_general.txt", NULL);
    write_text("clnf_wrong_pdm.txt", "PDM model_inner/pdms/pdm_51_inner.txt\n"
                                     "PatchesCCNF patch_experts/ccnf_patches_0.25_general.txt\n");
    expect_failure("PDM and experts disagree", "LandmarkDetector clnf_wrong_pdm.txt\n",
                   "clnf_wrong_pdm.txt", "pdm_51_inner.txt has 51 landmarks");
    snprintf(text, sizeof text, "LandmarkDetector model_inner/clnf_inner.txt\n%s", TAIL);
    expect_failure("51-point main model", text, "case.txt", "main PDM has 51 landmarks");

    fa_clnf_set_t model;
    CHECK(fa_clnf_set_load("/nonexistent/main_clnf_general.txt", 1, &model, &error) != FA_OK &&
              strstr(error.message, "/nonexistent/main_clnf_general.txt"),
          "missing main file: %s", error.message);
    fa_clnf_set_release(&model);

    snprintf(command, sizeof command, "rm -rf '%s'", work);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", work);
}

int main(void) {
    const char *path = model_path("main_clnf_general.txt");
    fa_clnf_set_t single, parallel;
    fa_error_t error = {0};
    double start = seconds_now();
    fa_status status = fa_clnf_set_load(path, 1, &single, &error);
    double single_seconds = seconds_now() - start;
    CHECK(status == FA_OK, "load %s: %s", path, error.message);
    if (status != FA_OK) return test_finish("test_clnf_model");
    start = seconds_now();
    status = fa_clnf_set_load(path, 0, &parallel, &error);
    double parallel_seconds = seconds_now() - start;
    CHECK(status == FA_OK, "load with all threads: %s", error.message);
    printf("load time: %.3f s with 1 thread, %.3f s with all %ld cores\n", single_seconds,
           parallel_seconds, sysconf(_SC_NPROCESSORS_ONLN));

    test_facts(&single);
    check_fit_settings(&single.main, "main", fa_clnf_settings_main);
    check_fit_settings(&single.parts[0].detector, "inner", fa_clnf_settings_inner);
    check_fit_settings(&single.parts[1].detector, "left eye", fa_clnf_settings_eye);
    check_fit_settings(&single.parts[2].detector, "right eye", fa_clnf_settings_eye);
    test_parameters(&single);
    if (status == FA_OK) {
        int same = same_sigmas(&single.main, &parallel.main);
        for (int p = 0; same && p < single.part_count; p++)
            same = same_sigmas(&single.parts[p].detector, &parallel.parts[p].detector);
        CHECK(same, "Sigmas prepared by many threads equal those of one");
        test_facts(&parallel);
    }
    fa_clnf_set_release(&parallel);
    test_damaged(&single);
    fa_clnf_set_release(&single);
    return test_finish("test_clnf_model");
}
