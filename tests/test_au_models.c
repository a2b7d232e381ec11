/* AU stage units: model readers, damaged files, the incremental running median against a full
 * rescan, post-processing semantics on hand-made series, re-prediction against a direct one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "au/au_internal.h"
#include "core/file.h"
#include "testing.h"

static const char *au_dir(void) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/AU_predictors", test_models_dir());
    return path;
}

static int group_model(const fa_au_models_t *models, int group, const char *name) {
    for (int m = 0; m < models->groups[group].count; m++)
        if (!strcmp(models->groups[group].names[m], name)) return m;
    return -1;
}

static void check_dynamic_models(void) {
    fa_au_models_t *models = NULL;
    fa_error_t error = {0};
    char pdm[4096], tris[4096];
    fa_status status =
        fa_au_models_load(au_dir(), 0, &models, pdm, sizeof pdm, tris, sizeof tris, &error);
    CHECK(status == FA_OK, "load: %s", error.message);
    if (!models) return;
    CHECK(fa_au_models_count(models, 0) == 17 && fa_au_models_count(models, 1) == 18,
          "counts %d %d", fa_au_models_count(models, 0), fa_au_models_count(models, 1));
    CHECK(!strcmp(fa_au_models_name(models, 0, 0), "AU01") &&
              !strcmp(fa_au_models_name(models, 0, 16), "AU45") &&
              !strcmp(fa_au_models_name(models, 1, 16), "AU28"),
          "sorted names");
    for (int i = 1; i < 17; i++)
        CHECK(strcmp(fa_au_models_name(models, 0, i - 1), fa_au_models_name(models, 0, i)) < 0,
              "intensity names sorted at %d", i);
    const fa_au_group_t *g = models->groups;
    CHECK(g[FA_AU_GROUP_SVR_STATIC].count == 6 && g[FA_AU_GROUP_SVR_DYNAMIC].count == 11 &&
              g[FA_AU_GROUP_SVM_STATIC].count == 8 && g[FA_AU_GROUP_SVM_DYNAMIC].count == 10,
          "group sizes %d %d %d %d", g[0].count, g[1].count, g[2].count, g[3].count);
    int au02 = group_model(models, FA_AU_GROUP_SVR_DYNAMIC, "AU02");
    int au25 = group_model(models, FA_AU_GROUP_SVR_DYNAMIC, "AU25");
    CHECK(au02 >= 0 && g[FA_AU_GROUP_SVR_DYNAMIC].cutoffs[au02] == 0.75, "AU02 cutoff");
    CHECK(au25 >= 0 && fabs(g[FA_AU_GROUP_SVR_DYNAMIC].cutoffs[au25] - 0.3) < 1e-12, "AU25 cutoff");
    int au12 = group_model(models, FA_AU_GROUP_SVM_STATIC, "AU12");
    int au01 = group_model(models, FA_AU_GROUP_SVM_DYNAMIC, "AU01");
    CHECK(au12 >= 0 && g[FA_AU_GROUP_SVM_STATIC].positive[au12] == 1 &&
              g[FA_AU_GROUP_SVM_STATIC].negative[au12] == 0,
          "AU12 classes (1, 0)");
    CHECK(au01 >= 0 && g[FA_AU_GROUP_SVM_DYNAMIC].positive[au01] == 0 &&
              g[FA_AU_GROUP_SVM_DYNAMIC].negative[au01] == 1,
          "AU01 classes (0, 1)");
    CHECK(strstr(pdm, "In-the-wild_aligned_PDM_68.txt") && strstr(tris, "tris_68_full.txt"),
          "paths %s %s", pdm, tris);
    fa_au_models_free(models);

    status = fa_au_models_load(au_dir(), 1, &models, NULL, 0, NULL, 0, &error);
    CHECK(status == FA_OK && models, "static load: %s", error.message);
    if (!models) return;
    g = models->groups;
    CHECK(g[FA_AU_GROUP_SVR_STATIC].count == 17 && g[FA_AU_GROUP_SVM_STATIC].count == 18 &&
              !g[FA_AU_GROUP_SVR_DYNAMIC].count && !g[FA_AU_GROUP_SVM_DYNAMIC].count,
          "static groups");
    fa_au_models_free(models);
}

static fa_status parse_copy(const char *data, size_t size, const char *name, fa_error_t *error) {
    fa_au_regressor_t regressor;
    fa_status status = fa_au_regressor_parse(data, size, name, &regressor, error);
    fa_au_regressor_release(&regressor);
    return status;
}

static void check_damaged_dat(void) {
    char path[4096], *data = NULL;
    size_t size = 0;
    fa_error_t error = {0};
    snprintf(path, sizeof path, "%s/svr_combined/AU_1_dynamic_intensity_comb.dat", au_dir());
    CHECK_OK(fa_file_read_all(path, &data, &size, &error));
    if (!data) return;
    CHECK(size == 75276 && parse_copy(data, size, "good.dat", &error) == FA_OK, "good file");
    fa_status status = parse_copy(data, size - 100, "truncated.dat", &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "truncated.dat"), "truncated: %s",
          error.message);
    char *longer = malloc(size + 1);
    memcpy(longer, data, size);
    longer[size] = 0;
    status = parse_copy(longer, size + 1, "trailing.dat", &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "trailing.dat"), "trailing: %s",
          error.message);
    int32_t value = 3;
    memcpy(longer, &value, 4); /* unused legacy type */
    status = parse_copy(longer, size, "type.dat", &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "type.dat"), "type: %s", error.message);
    memcpy(longer, data, size);
    value = 5; /* means stored as float32 */
    memcpy(longer + 4 + 8 + 8, &value, 4);
    status = parse_copy(longer, size, "float.dat", &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "float.dat"), "means type: %s",
          error.message);
    memcpy(longer, data, size);
    value = 4701; /* means 1 x 4701 */
    memcpy(longer + 4 + 8 + 4, &value, 4);
    status = parse_copy(longer, size, "short.dat", &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "short.dat"), "means size: %s",
          error.message);
    memcpy(longer, data, size);
    double cutoff = 1.5;
    memcpy(longer + 4, &cutoff, 8);
    status = parse_copy(longer, size, "cutoff.dat", &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "cutoff.dat"), "cutoff: %s",
          error.message);
    free(longer);
    free(data);
}

static void write_bytes(const char *directory, const char *name, const char *data, size_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", directory, name);
    FILE *file = fopen(path, "wb");
    if (!file) return;
    fwrite(data, 1, size, file);
    fclose(file);
}

static void write_text(const char *directory, const char *name, const char *text) {
    write_bytes(directory, name, text, strlen(text));
}

/* A model folder whose list names a missing file, then a damaged one. */
static void check_damaged_folder(void) {
    char directory[] = "/tmp/faceau_au_XXXXXX", path[4096];
    if (!mkdtemp(directory)) return;
    write_text(directory, "main_dynamic_svms.txt",
               "AUPredictor list.txt\nPDM pdm.txt\nTriangulation tris.txt\n");
    write_text(directory, "list.txt", "missing.dat AU01\n");
    fa_au_models_t *models = NULL;
    fa_error_t error = {0};
    fa_status status = fa_au_models_load(directory, 0, &models, NULL, 0, NULL, 0, &error);
    CHECK(status == FA_ERROR_IO && strstr(error.message, "missing.dat") && !models,
          "missing model: %d %s", (int)status, error.message);
    write_text(directory, "list.txt", "damaged.dat AU01\r\n");
    write_bytes(directory, "damaged.dat", "\001\000\000\000garbage", 11);
    status = fa_au_models_load(directory, 0, &models, NULL, 0, NULL, 0, &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "damaged.dat") && !models,
          "damaged model: %d %s", (int)status, error.message);
    status = fa_au_models_load(directory, 1, &models, NULL, 0, NULL, 0, &error);
    CHECK(status == FA_ERROR_IO && strstr(error.message, "main_static_svms.txt"),
          "missing list: %d %s", (int)status, error.message);
    const char *names[] = {"main_dynamic_svms.txt", "list.txt", "damaged.dat"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", directory, names[i]);
        remove(path);
    }
    rmdir(directory);
}

static double random_unit(void) {
    return (double)rand() / RAND_MAX;
}

/* The incremental median against OpenFace's full rescan, with out-of-range values, frames
 * that do not update, and a start without any update (the cutoff-0 quirk). */
static void check_running_median(void) {
    enum { DIMENSION = 40, BINS = 300, CALLS = 600 };
    fa_running_median_t median;
    fa_error_t error = {0};
    CHECK_OK(fa_running_median_init(&median, DIMENSION, BINS, -2.0, 3.0, &error));
    double descriptor[DIMENSION];
    int32_t reference[DIMENSION], mismatches = 0, value_mismatches = 0;
    for (int call = 0; call < CALLS; call++) {
        for (int i = 0; i < DIMENSION; i++) {
            double spread = i % 3 == 0 ? 8.0 : i % 3 == 1 ? 0.3 : 2.0; /* some overflow */
            descriptor[i] = (random_unit() - 0.4) * spread + (call > 300 ? 0.7 : 0);
        }
        int update = call > 0 && rand() % 4 != 0;
        fa_running_median_update(&median, descriptor, update);
        fa_running_median_reference_bins(&median, reference);
        for (int i = 0; i < DIMENSION; i++) {
            double expected = median.count == 1 ? descriptor[i] : median.centres[reference[i]];
            if (median.count != 1 && median.median_bin[i] != reference[i]) mismatches++;
            if (median.median[i] != expected) value_mismatches++;
        }
        if (call == 0)
            CHECK(median.median[0] == -2.0 + 0.5 * 5.0 / BINS, "no update yet: bin 0 centre %g",
                  median.median[0]);
    }
    CHECK(mismatches == 0 && value_mismatches == 0, "median mismatches %d/%d", mismatches,
          value_mismatches);
    CHECK(fa_running_median_bin(&median, -100) == 0 &&
              fa_running_median_bin(&median, 100) == BINS - 1,
          "clamped bins");
    fa_running_median_release(&median);
}

static void time_median_update(void) {
    fa_running_median_t median;
    fa_error_t error = {0};
    if (fa_running_median_init(&median, FA_HOG_SIZE, 1000, -0.005, 1, &error) != FA_OK) return;
    static double descriptor[FA_HOG_SIZE];
    enum { CALLS = 2000 };
    clock_t start = clock();
    for (int call = 0; call < CALLS; call++) {
        for (int i = 0; i < FA_HOG_SIZE; i++)
            descriptor[i] = random_unit() * 0.3;
        fa_running_median_update(&median, descriptor, 1);
    }
    double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("HOG median update (4464 dims, 1000 bins, incl. random input): %.1f us per call\n",
           seconds / CALLS * 1e6);
    fa_running_median_release(&median);
}

static void check_finish(void) {
    double scratch[16];
    uint8_t all[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    double a[6] = {0, 3, 0, 3, 0, 6};
    fa_au_finish_intensity(a, all, 6, -1, scratch);
    const double a_expected[6] = {0, 1, 2, 1, 8.0 / 3, 5}; /* endpoints raw (6 clipped to 5) */
    for (int i = 0; i < 6; i++)
        CHECK(fabs(a[i] - a_expected[i]) < 1e-12, "smooth %d: %g vs %g", i, a[i], a_expected[i]);
    /* Offset: sorted successful values [-1, 0.5, 1, 7], index (int)(4 * 0.5) = 2, so 1 (not an
     * interpolated median); failed frames become 0 before smoothing. */
    double b[5] = {0.5, -1, 2, 7, 1};
    uint8_t success[5] = {1, 1, 0, 1, 1};
    fa_au_finish_intensity(b, success, 5, 0.5, scratch);
    const double b_expected[5] = {0, 0, 5.0 / 3, 5.0 / 3, 0};
    for (int i = 0; i < 5; i++)
        CHECK(fabs(b[i] - b_expected[i]) < 1e-12, "offset %d: %g vs %g", i, b[i], b_expected[i]);
    double c[10] = {1, 1, 1, 0, 0, 1, 0, 1, 1, 0};
    fa_au_finish_presence(c, 10, scratch);
    const double c_expected[10] = {1, 1, 1, 1, 1, 1, 0, 1, 1, 0};
    for (int i = 0; i < 10; i++)
        CHECK(c[i] == c_expected[i], "vote %d: %g", i, c[i]);
    double d[3] = {1, 0, 1}, e[2] = {4, 0};
    fa_au_finish_presence(d, 3, scratch);
    fa_au_finish_intensity(e, all, 2, -1, scratch);
    CHECK(d[1] == 0 && e[0] == 4 && e[1] == 0, "short series untouched");
}

/* The post-processed output against a direct re-prediction with the final medians. */
static void check_reprediction(void) {
    enum { FRAMES = 41 };
    fa_au_models_t *models = NULL;
    fa_au_state_t *state = NULL, *online = NULL;
    fa_error_t error = {0};
    if (fa_au_models_load(au_dir(), 0, &models, NULL, 0, NULL, 0, &error) != FA_OK) return;
    CHECK_OK(fa_au_state_create(models, 0, &state, &error));
    CHECK_OK(fa_au_state_create(models, 1, &online, &error));
    float(*hog)[FA_HOG_SIZE] = malloc(sizeof(float[FRAMES][FA_HOG_SIZE]));
    double(*geometry)[FA_GEOMETRY_SIZE] = malloc(sizeof(double[FRAMES][FA_GEOMETRY_SIZE]));
    uint8_t success[FRAMES];
    int online_ok = 1;
    for (int f = 0; f < FRAMES; f++) {
        for (int k = 0; k < FA_HOG_SIZE; k++)
            hog[f][k] = (float)(random_unit() * 0.3);
        for (int k = 0; k < FA_GEOMETRY_SIZE; k++)
            geometry[f][k] = (random_unit() - 0.5) * 30;
        success[f] = f != 7 && f != 20;
        double r[FA_MAX_AUS], p[FA_MAX_AUS], ro[FA_MAX_AUS], po[FA_MAX_AUS];
        fa_au_state_add_frame(state, hog[f], geometry[f], success[f], r, p, &error);
        fa_au_state_add_frame(online, hog[f], geometry[f], success[f], ro, po, &error);
        for (int i = 0; i < 17 && f < 9; i++)
            if (ro[i] != (r[i] < 0 ? 0 : r[i] > 5 ? 5 : r[i])) online_ok = 0;
        for (int i = 0; i < 17; i++)
            if (ro[i] < 0 || ro[i] > 5) online_ok = 0;
        for (int i = 0; i < 18; i++)
            if (po[i] != p[i]) online_ok = 0;
    }
    CHECK(online_ok, "online correction: clipped raw values for 9 frames, then in [0, 5]");
    size_t frames = 0;
    const double *intensity = NULL, *presence = NULL;
    CHECK_OK(fa_au_state_postprocess_all(state, &frames, &intensity, &presence, &error));
    /* Direct re-prediction: (x - means - median) . w + b with the state's final medians. */
    double series[FRAMES], scratch[FRAMES], x[FA_AU_FEATURES];
    int bad = 0;
    for (int kind = 0; kind < 2; kind++) {
        for (int i = 0; i < models->count[kind]; i++) {
            fa_au_source_t s = models->sources[kind][i];
            const fa_au_group_t *g = &models->groups[s.group];
            for (int f = 0; f < FRAMES; f++) {
                for (int k = 0; k < FA_AU_FEATURES; k++) {
                    x[k] = k < FA_HOG_SIZE ? hog[f][k] : geometry[f][k - FA_HOG_SIZE];
                    x[k] -= g->means[k];
                    if (fa_au_group_is_dynamic(s.group))
                        x[k] -= k < FA_HOG_SIZE ? state->hog_median.median[k]
                                                : state->geometry_median.median[k - FA_HOG_SIZE];
                }
                double sums[FA_MAX_AUS], v;
                fa_au_group_dot(g, x, sums);
                v = sums[s.model] + g->biases[s.model];
                if (kind) v = v > 0 ? g->positive[s.model] : g->negative[s.model];
                series[f] = success[f] ? v : 0;
            }
            if (kind)
                fa_au_finish_presence(series, FRAMES, scratch);
            else
                fa_au_finish_intensity(
                    series, success, FRAMES,
                    s.group == FA_AU_GROUP_SVR_DYNAMIC ? g->cutoffs[s.model] : -1, scratch);
            const double *out = kind ? presence : intensity;
            for (int f = 0; f < FRAMES; f++)
                if (fabs(out[f * models->count[kind] + i] - series[f]) > 1e-9) bad++;
        }
    }
    CHECK(frames == FRAMES && bad == 0, "re-prediction mismatches: %d", bad);
    free(hog);
    free(geometry);
    fa_au_state_free(state);
    fa_au_state_free(online);
    fa_au_models_free(models);
}

/* The AVX2 dot products against the plain ones, bit for bit, on every group of the real models
 * with random inputs (wide-ranging magnitudes, so that any change of order would show). */
static void check_dot_kernels(void) {
    fa_au_models_t *models = NULL;
    fa_error_t error = {0};
    fa_status status = fa_au_models_load(au_dir(), 0, &models, NULL, 0, NULL, 0, &error);
    CHECK(status == FA_OK, "load: %s", error.message);
    if (!models) return;
    static double input_a[FA_AU_FEATURES], input_b[FA_AU_FEATURES];
    double expected_a[FA_MAX_AUS + 4], expected_b[FA_MAX_AUS + 4];
    double actual_a[FA_MAX_AUS + 4], actual_b[FA_MAX_AUS + 4];
    int mismatches = 0, compared = 0;
    for (int trial = 0; trial < 20; trial++) {
        for (int k = 0; k < FA_AU_FEATURES; k++) {
            input_a[k] = ldexp((double)rand() / RAND_MAX - 0.5, rand() % 40 - 20);
            input_b[k] = ldexp((double)rand() / RAND_MAX - 0.5, rand() % 40 - 20);
        }
        for (int g = 0; g < FA_AU_GROUPS; g++) {
            const fa_au_group_t *group = &models->groups[g];
            if (group->count == 0) continue;
            fa_au_group_dot_reference(group, input_a, expected_a);
            fa_au_group_dot_avx2(group, input_a, actual_a);
            mismatches += memcmp(expected_a, actual_a, sizeof(double) * group->stride) != 0;
            fa_au_group_dot2_reference(group, input_a, input_b, expected_a, expected_b);
            fa_au_group_dot2_avx2(group, input_a, input_b, actual_a, actual_b);
            mismatches += memcmp(expected_a, actual_a, sizeof(double) * group->stride) != 0;
            mismatches += memcmp(expected_b, actual_b, sizeof(double) * group->stride) != 0;
            compared += 3;
        }
    }
    CHECK(compared > 0 && mismatches == 0, "AVX2 AU dot products differ in %d of %d", mismatches,
          compared);
    printf("AU dot products: AVX2 equals the plain kernels in %d comparisons\n", compared);
    fa_au_models_free(models);
}

int main(void) {
    srand(12345);
    check_dot_kernels();
    check_dynamic_models();
    check_damaged_dat();
    check_damaged_folder();
    check_running_median();
    check_finish();
    check_reprediction();
    time_median_update();
    return test_finish("test_au_models");
}
