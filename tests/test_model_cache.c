/* The binary model cache (src/pipeline/model_cache.c, src/model/cache.c):
 * (a) every array and field of every model restored from the cache equals, bit for bit, the one
 *     loaded from OpenFace's text files, and faceau's outputs do not change;
 * (b) a changed, moved or deleted source file makes the cache stale: it is rebuilt (or loading
 *     fails as from text);
 * (c) truncated, damaged, foreign or other-build cache files are refused (never read past their
 *     bounds) and rebuilt;
 * (d) an unwritable cache folder only costs time. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/file.h"
#include "model/cache.h"
#include "pipeline/model_cache.h"
#include "testing.h"

#include "au/au_internal.h"

static char work[64];

typedef struct loaded {
    fa_au_models_t *au;
    fa_pdm_t pdm;
    fa_triangulation_t triangulation;
    fa_face_models_t *faces;
    fa_model_cache_t *cache; /* when restored */
} loaded_t;

static fa_model_slots_t slots_of(loaded_t *models) {
    fa_model_slots_t slots = {&models->au, &models->pdm, &models->triangulation, &models->faces};
    return slots;
}

/* The text loading of fa_models_load, with the files it reads listed in log. */
static fa_status load_text(const char *models_dir, const fa_settings_t *settings, loaded_t *out,
                           fa_file_log_t *log, fa_error_t *error) {
    memset(out, 0, sizeof *out);
    fa_file_log_t *outer = fa_file_log_attach(log);
    char au_dir[4096], model_dir[4096], pdm_path[4096], triangulation_path[4096];
    snprintf(au_dir, sizeof au_dir, "%s/AU_predictors", models_dir);
    snprintf(model_dir, sizeof model_dir, "%s/model", models_dir);
    fa_status status =
        fa_au_models_load(au_dir, settings->au_static, &out->au, pdm_path, sizeof pdm_path,
                          triangulation_path, sizeof triangulation_path, error);
    if (status == FA_OK) status = fa_pdm_load(pdm_path, &out->pdm, error);
    if (status == FA_OK)
        status = fa_triangulation_load(triangulation_path, &out->triangulation, error);
    if (status == FA_OK && settings->tracker) {
        out->faces = calloc(1, sizeof *out->faces);
        status = fa_face_models_load(model_dir, 0, out->faces, error);
    }
    fa_file_log_attach(outer);
    return status;
}

static void release(loaded_t *models) {
    if (models->cache) {
        fa_model_cache_close(models->cache);
    } else {
        fa_au_models_free(models->au);
        fa_pdm_release(&models->pdm);
        fa_triangulation_release(&models->triangulation);
        if (models->faces) fa_face_models_release(models->faces);
        free(models->faces);
    }
    memset(models, 0, sizeof *models);
}

static int quiet; /* 1: do not say why a cache was not used */

static fa_model_cache_outcome restore(const char *cache_dir, const char *models_dir,
                                      const fa_settings_t *settings, loaded_t *out) {
    memset(out, 0, sizeof *out);
    fa_model_slots_t slots = slots_of(out);
    fa_error_t error = {0};
    fa_model_cache_outcome outcome =
        fa_model_cache_load(cache_dir, models_dir, settings, &slots, &out->cache, &error);
    if (outcome != FA_MODEL_CACHE_HIT && !quiet) printf("  cache not used: %s\n", error.message);
    return outcome;
}

static void settings_for(fa_settings_t *settings, int tracker, int au_static, const char *cache) {
    fa_default_settings(settings);
    settings->tracker = tracker;
    settings->au_static = au_static;
    settings->cache_dir = cache;
}

static int run(const char *command) {
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---------------------------------------------------------------------------------------------
 * (a) Comparison, written independently of the cache's own description of the structures:
 * scalar fields by comparing copies whose pointers are cleared, arrays by their contents. */

static int differences;

static void same_bytes(const void *a, const void *b, size_t size, const char *what) {
    int same = size == 0 || (a && b && !memcmp(a, b, size));
    if (!same && differences++ < 20) CHECK(0, "%s differs (%zu bytes)", what, size);
}

#define SAME_ARRAY(a, b, count, what) same_bytes((a), (b), (size_t)(count) * sizeof *(a), what)
#define SAME_FIELDS(a, b, what) same_bytes(&(a), &(b), sizeof(a), what)

static void compare_pdm(const fa_pdm_t *a, const fa_pdm_t *b) {
    fa_pdm_t x = *a, y = *b;
    x.mean_shape = y.mean_shape = x.components = y.components = x.eigenvalues = y.eigenvalues =
        x.components_blocked = y.components_blocked = NULL;
    SAME_FIELDS(x, y, "PDM fields");
    size_t values = 3 * (size_t)a->point_count;
    SAME_ARRAY(a->mean_shape, b->mean_shape, values, "PDM mean");
    SAME_ARRAY(a->components, b->components, values * (size_t)a->mode_count, "PDM components");
    SAME_ARRAY(a->eigenvalues, b->eigenvalues, a->mode_count, "PDM eigenvalues");
    SAME_ARRAY(a->components_blocked, b->components_blocked, values * (size_t)a->mode_count,
               "PDM components in blocks");
}

static void compare_au(const fa_au_models_t *a, const fa_au_models_t *b) {
    fa_au_models_t x = *a, y = *b;
    for (int g = 0; g < FA_AU_GROUPS; g++) {
        x.groups[g].means = y.groups[g].means = x.groups[g].weights = y.groups[g].weights = NULL;
        size_t features = a->groups[g].count ? FA_AU_FEATURES : 0;
        SAME_ARRAY(a->groups[g].means, b->groups[g].means, features, "AU means");
        SAME_ARRAY(a->groups[g].weights, b->groups[g].weights,
                   features * (size_t)a->groups[g].stride, "AU weights");
    }
    SAME_FIELDS(x, y, "AU model fields");
}

static void compare_scale(const fa_ccnf_scale_t *a, const fa_ccnf_scale_t *b) {
    fa_ccnf_scale_t x = *a, y = *b;
    x.centers = y.centers = NULL;
    x.visible = y.visible = NULL;
    x.experts = y.experts = NULL;
    x.components = y.components = NULL;
    SAME_FIELDS(x, y, "CCNF scale fields");
    size_t total = (size_t)a->view_count * (size_t)a->point_count;
    SAME_ARRAY(a->centers, b->centers, a->view_count, "CCNF view centres");
    SAME_ARRAY(a->visible, b->visible, total, "CCNF visibility");
    for (int c = 0; c < a->component_set_count; c++) {
        fa_ccnf_components_t p = a->components[c], q = b->components[c];
        p.matrices = q.matrices = NULL;
        SAME_FIELDS(p, q, "CCNF component fields");
        size_t n = (size_t)p.window * (size_t)p.window;
        SAME_ARRAY(a->components[c].matrices, b->components[c].matrices, (size_t)p.count * n * n,
                   "CCNF sigma components");
    }
    for (size_t e = 0; e < total; e++) {
        const fa_ccnf_expert_t *ea = &a->experts[e], *eb = &b->experts[e];
        fa_ccnf_expert_t p = *ea, q = *eb;
        p.weights = q.weights = NULL;
        p.alphas = q.alphas = p.betas = q.betas = NULL;
        for (int k = 0; k < FA_CCNF_MAX_PREPARED; k++)
            p.sigma[k] = q.sigma[k] = NULL;
        SAME_FIELDS(p, q, "CCNF expert fields");
        size_t neurons = (size_t)ea->neuron_count;
        SAME_ARRAY(ea->weights, eb->weights, neurons * FA_CCNF_INPUTS, "CCNF weights");
        SAME_ARRAY(ea->alphas, eb->alphas, neurons, "CCNF alphas");
        SAME_ARRAY(ea->betas, eb->betas, ea->beta_count, "CCNF betas");
        for (int k = 0; k < a->window_count; k++)
            SAME_ARRAY(
                ea->sigma[k], eb->sigma[k],
                neurons ? (size_t)(a->windows[k] * a->windows[k]) * (size_t)a->sigma_stride[k] : 0,
                "CCNF Sigma");
        for (int k = a->window_count; k < FA_CCNF_MAX_PREPARED; k++)
            CHECK(!ea->sigma[k] && !eb->sigma[k], "unprepared Sigma");
    }
}

static void compare_detector(const fa_clnf_detector_t *a, const fa_clnf_detector_t *b) {
    compare_pdm(&a->pdm, &b->pdm);
    SAME_FIELDS(a->parameters, b->parameters, "CLNF parameters");
    CHECK(a->ccnf.scale_count == b->ccnf.scale_count && a->ccnf.point_count == b->ccnf.point_count,
          "CCNF scales");
    for (int s = 0; s < a->ccnf.scale_count; s++)
        compare_scale(&a->ccnf.scales[s], &b->ccnf.scales[s]);
}

static void compare_fit_model(const fa_clnf_model_t *a, const fa_clnf_model_t *b,
                              const fa_pdm_t *b_pdm) {
    fa_clnf_model_t x = *a, y = *b;
    x.pdm = y.pdm = NULL;
    for (int w = 0; w <= FA_CLNF_MAX_WINDOW; w++) {
        CHECK(!a->kde[w] == !b->kde[w], "KDE table %d present in both", w);
        SAME_ARRAY(a->kde[w], b->kde[w], a->kde[w] ? fa_clnf_kde_size(w) : 0, "KDE table");
        x.kde[w] = y.kde[w] = NULL;
    }
    SAME_FIELDS(x, y, "fit model fields");
    CHECK(b->pdm == b_pdm, "fit model points at its own PDM");
}

static void compare_validator(const fa_validator_t *a, const fa_validator_t *b) {
    CHECK(a->view_count == b->view_count && a->convolve == b->convolve, "validator fields");
    for (int v = 0; v < a->view_count; v++) {
        const fa_validator_view_t *p = &a->views[v], *q = &b->views[v];
        fa_validator_view_t x = *p, y = *q;
        x.triangles = y.triangles = NULL;
        x.alpha = y.alpha = x.beta = y.beta = NULL;
        x.pixel_x = y.pixel_x = x.pixel_y = y.pixel_y = NULL;
        x.pixel_triangle = y.pixel_triangle = NULL;
        x.mean = y.mean = x.standard_deviation = y.standard_deviation = NULL;
        x.conv1_weights = y.conv1_weights = x.conv1_bias = y.conv1_bias = NULL;
        x.conv2_weights = y.conv2_weights = x.conv2_bias = y.conv2_bias = NULL;
        x.fc1_weights = y.fc1_weights = x.fc1_bias = y.fc1_bias = NULL;
        x.fc2_weights = y.fc2_weights = x.fc2_bias = y.fc2_bias = NULL;
        SAME_FIELDS(x, y, "validator view fields");
        size_t triangles = (size_t)p->triangle_count, pixels = (size_t)p->pixel_count;
        SAME_ARRAY(p->triangles, q->triangles, triangles, "validator triangles");
        SAME_ARRAY(p->alpha, q->alpha, triangles, "validator alpha");
        SAME_ARRAY(p->beta, q->beta, triangles, "validator beta");
        SAME_ARRAY(p->pixel_x, q->pixel_x, pixels, "validator pixels");
        SAME_ARRAY(p->pixel_y, q->pixel_y, pixels, "validator pixels");
        SAME_ARRAY(p->pixel_triangle, q->pixel_triangle, pixels, "validator pixel triangles");
        SAME_ARRAY(p->mean, q->mean, pixels, "validator mean");
        SAME_ARRAY(p->standard_deviation, q->standard_deviation, pixels, "validator deviation");
        enum { K = FA_VALIDATOR_KERNELS };
        SAME_ARRAY(p->conv1_weights, q->conv1_weights, 81 * K, "validator conv1");
        SAME_ARRAY(p->conv1_bias, q->conv1_bias, K, "validator conv1 bias");
        SAME_ARRAY(p->conv2_weights, q->conv2_weights, K * 49 * K, "validator conv2");
        SAME_ARRAY(p->conv2_bias, q->conv2_bias, K, "validator conv2 bias");
        SAME_ARRAY(p->fc1_weights, q->fc1_weights, FA_VALIDATOR_FLAT * FA_VALIDATOR_HIDDEN,
                   "validator fc1");
        SAME_ARRAY(p->fc1_bias, q->fc1_bias, FA_VALIDATOR_HIDDEN, "validator fc1 bias");
        SAME_ARRAY(p->fc2_weights, q->fc2_weights, FA_VALIDATOR_HIDDEN * FA_VALIDATOR_BINS,
                   "validator fc2");
        SAME_ARRAY(p->fc2_bias, q->fc2_bias, FA_VALIDATOR_BINS, "validator fc2 bias");
    }
}

static void compare_cnn(const fa_cnn_t *a, const fa_cnn_t *b) {
    CHECK(a->layer_count == b->layer_count, "CNN layer count");
    for (int i = 0; i < a->layer_count && i < b->layer_count; i++) {
        const fa_cnn_layer_t *p = &a->layers[i], *q = &b->layers[i];
        fa_cnn_layer_t x = *p, y = *q;
        x.weights = y.weights = x.bias = y.bias = x.weights_by_input = y.weights_by_input = NULL;
        SAME_FIELDS(x, y, "CNN layer fields");
        size_t inputs = (size_t)p->inputs, outputs = (size_t)p->outputs;
        size_t kernel = (size_t)(p->kernel_width * p->kernel_height);
        if (p->type == FA_CNN_CONVOLUTION) {
            SAME_ARRAY(p->weights, q->weights, outputs * inputs * kernel, "convolution weights");
            SAME_ARRAY(p->bias, q->bias, outputs, "convolution bias");
            SAME_ARRAY(p->weights_by_input, q->weights_by_input,
                       (size_t)p->padded_outputs * inputs * kernel, "convolution fast weights");
        } else if (p->type == FA_CNN_FULLY_CONNECTED) {
            SAME_ARRAY(p->weights, q->weights, outputs * inputs, "FC weights");
            SAME_ARRAY(p->bias, q->bias, outputs, "FC bias");
            SAME_ARRAY(p->weights_by_input, q->weights_by_input, (size_t)p->padded_outputs * inputs,
                       "FC fast weights");
        } else if (p->type == FA_CNN_PRELU) {
            SAME_ARRAY(p->weights, q->weights, outputs, "PReLU slopes");
        }
    }
}

static void compare_faces(const fa_face_models_t *a, const fa_face_models_t *b) {
    const fa_clnf_set_t *p = &a->set, *q = &b->set;
    compare_detector(&p->main, &q->main);
    CHECK(p->part_count == q->part_count && p->eye_model == q->eye_model &&
              !strcmp(p->validator_path, q->validator_path),
          "CLNF set fields (validator %s, %s)", p->validator_path, q->validator_path);
    for (int i = 0; i < p->part_count; i++) {
        const fa_clnf_set_part_t *pa = &p->parts[i], *pb = &q->parts[i];
        CHECK(!strcmp(pa->name, pb->name) && pa->pair_count == pb->pair_count &&
                  !memcmp(pa->pairs, pb->pairs, sizeof pa->pairs[0] * (size_t)pa->pair_count),
              "part %d name and pairs", i);
        compare_detector(&pa->detector, &pb->detector);
        compare_fit_model(&a->fit_parts[i], &b->fit_parts[i], &pb->detector.pdm);
    }
    compare_fit_model(&a->fit_main, &b->fit_main, &q->main.pdm);
    compare_validator(&a->validator, &b->validator);
    compare_cnn(&a->mtcnn.pnet, &b->mtcnn.pnet);
    compare_cnn(&a->mtcnn.rnet, &b->mtcnn.rnet);
    compare_cnn(&a->mtcnn.onet, &b->mtcnn.onet);
    /* The system holds pointers to the models it lives beside; the rest must match. */
    fa_clnf_system_t x = a->system, y = b->system;
    CHECK(y.main == &b->fit_main, "system points at its own main model");
    x.main = y.main = NULL;
    for (int i = 0; i < FA_CLNF_MAX_PARTS; i++) {
        CHECK(i >= y.part_count || y.parts[i].model == &b->fit_parts[i], "system part %d", i);
        x.parts[i].model = y.parts[i].model = NULL;
    }
    SAME_FIELDS(x, y, "CLNF system");
}

static void test_identical(const char *cache_dir, int tracker, int au_static) {
    fa_settings_t settings;
    settings_for(&settings, tracker, au_static, cache_dir);
    loaded_t text, cached;
    fa_file_log_t log = {0};
    fa_error_t error = {0};
    CHECK(load_text(test_models_dir(), &settings, &text, &log, &error) == FA_OK, "text: %s",
          error.message);
    CHECK(!log.incomplete && log.count > 10, "%d sources listed", log.count);
    fa_model_slots_t slots = slots_of(&text);
    CHECK(fa_model_cache_store(cache_dir, test_models_dir(), &settings, &log, &slots, &error) ==
              FA_OK,
          "store: %s", error.message);
    fa_file_log_release(&log);
    CHECK(restore(cache_dir, test_models_dir(), &settings, &cached) == FA_MODEL_CACHE_HIT,
          "restore (tracker %d, static %d)", tracker, au_static);
    if (cached.cache) {
        differences = 0;
        compare_au(text.au, cached.au);
        compare_pdm(&text.pdm, &cached.pdm);
        CHECK(text.triangulation.count == cached.triangulation.count, "triangle count");
        SAME_ARRAY(text.triangulation.vertices, cached.triangulation.vertices,
                   text.triangulation.count, "triangles");
        CHECK(!tracker == !cached.faces, "face models restored only with the tracker");
        if (tracker && cached.faces) compare_faces(text.faces, cached.faces);
        CHECK(differences == 0, "%d differences (tracker %d, static %d)", differences, tracker,
              au_static);
    }
    release(&cached);
    release(&text);
}

/* The same outputs from text-loaded and cache-loaded models, through the CLI. */
static void test_same_outputs(void) {
    char command[16384], a[256], b[256];
    snprintf(a, sizeof a, "%s/out_text", work);
    snprintf(b, sizeof b, "%s/out_cache", work);
    const char *input = test_shared_path("data/images/image_sequence");
    const char *formats = "'%s' -fdir '%s' -out_dir '%s' --models '%s' --cache-dir '%s' -q";
    snprintf(command, sizeof command, formats, FACEAU_CLI, input, a, test_models_dir(), "");
    CHECK(run(command) == 0, "faceau without a cache");
    for (int pass = 0; pass < 2; pass++) { /* cold, then warm */
        snprintf(command, sizeof command, formats, FACEAU_CLI, input, b, test_models_dir(), work);
        CHECK(run(command) == 0, "faceau with a cache (pass %d)", pass);
        snprintf(command, sizeof command,
                 "cmp -s '%s/image_sequence.csv' '%s/image_sequence.csv' && "
                 "cmp -s '%s/image_sequence.hog' '%s/image_sequence.hog'",
                 a, b, a, b);
        CHECK(run(command) == 0, "outputs identical with and without the cache (pass %d)", pass);
    }
    fa_settings_t settings;
    settings_for(&settings, 1, 0, work);
    char path[4096];
    CHECK(fa_model_cache_path(work, test_models_dir(), &settings, path, sizeof path, NULL) ==
                  FA_OK &&
              access(path, R_OK) == 0,
          "the CLI wrote %s", path);
}

/* ---------------------------------------------------------------------------------------------
 * (b) Staleness */

static void set_mtime(const char *path, long seconds) {
    struct timespec times[2] = {{seconds, 123456789}, {seconds, 123456789}};
    CHECK(utimensat(AT_FDCWD, path, times, 0) == 0, "utimensat %s", path);
}

/* A models folder of our own: AU_predictors copied (its files can be changed), model/ as
 * symbolic links except main_clnf_general.txt, copied. */
static void make_models_copy(char *models, size_t size) {
    snprintf(models, size, "%s/models", work);
    char command[16384];
    snprintf(command, sizeof command,
             "mkdir -p '%s' && cp -r '%s/AU_predictors' '%s/' && cp -rs '%s/model' '%s/' && "
             "rm '%s/model/main_clnf_general.txt' && "
             "cp '%s/model/main_clnf_general.txt' '%s/model/'",
             models, test_models_dir(), models, test_models_dir(), models, models,
             test_models_dir(), models);
    CHECK(run(command) == 0, "copy of the models");
}

static fa_status load_public(const char *models, const fa_settings_t *settings, fa_error_t *error) {
    fa_models_t *loaded = NULL;
    fa_status status = fa_models_load(models, settings, &loaded, error);
    if (status == FA_OK)
        CHECK(fa_models_au_count(loaded, FA_AU_INTENSITY) == 17, "17 AUs from %s", models);
    fa_models_free(loaded);
    return status;
}

static fa_model_cache_outcome probe(const char *cache_dir, const char *models,
                                    const fa_settings_t *settings) {
    loaded_t restored;
    fa_model_cache_outcome outcome = restore(cache_dir, models, settings, &restored);
    release(&restored);
    return outcome;
}

static void test_stale(const char *models, const char *cache_dir, int tracker, const char *file) {
    fa_settings_t settings;
    settings_for(&settings, tracker, 0, cache_dir);
    char path[8192];
    snprintf(path, sizeof path, "%s/%s", models, file);
    fa_error_t error = {0};
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_MISSING, "no cache yet");
    CHECK(load_public(models, &settings, &error) == FA_OK, "cold load: %s", error.message);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_HIT, "cache written");
    set_mtime(path, 1000000000);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_STALE, "%s touched: stale", file);
    CHECK(load_public(models, &settings, &error) == FA_OK, "load after touch: %s", error.message);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_HIT, "rebuilt after touch");
    /* Same mtime, other size. */
    struct stat info;
    CHECK(stat(path, &info) == 0, "stat");
    CHECK(truncate(path, info.st_size + 1) == 0, "grow %s", file);
    set_mtime(path, 1000000000);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_STALE, "%s grown: stale", file);
    CHECK(truncate(path, info.st_size) == 0, "shrink back");
    set_mtime(path, 1000000000);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_HIT, "%s as recorded: fresh", file);
}

static void test_staleness(void) {
    char models[256], cache_dir[256], path[8192];
    make_models_copy(models, sizeof models);
    snprintf(cache_dir, sizeof cache_dir, "%s/stale_cache", work);
    test_stale(models, cache_dir, 0, "AU_predictors/svr_combined/AU_15_dynamic_intensity_comb.dat");
    test_stale(models, cache_dir, 1, "model/main_clnf_general.txt");

    /* A source removed: loading fails as it does from text, naming the file. */
    fa_settings_t settings;
    settings_for(&settings, 0, 0, cache_dir);
    const char *removed = "AU_predictors/svm_combined/AU_4_static.dat";
    snprintf(path, sizeof path, "%s/%s", models, removed);
    char saved[8300];
    snprintf(saved, sizeof saved, "%s.saved", path);
    CHECK(rename(path, saved) == 0, "move %s away", removed);
    fa_error_t error = {0};
    fa_status status = load_public(models, &settings, &error);
    CHECK(status != FA_OK && strstr(error.message, "AU_4_static"), "missing source: status %d, %s",
          (int)status, error.message);
    CHECK(rename(saved, path) == 0, "move it back");

    /* The same folder through another spelling uses the same cache. */
    char spelled[512];
    snprintf(spelled, sizeof spelled, "%s/./models/", work);
    CHECK(load_public(models, &settings, &error) == FA_OK, "load: %s", error.message);
    CHECK(probe(cache_dir, spelled, &settings) == FA_MODEL_CACHE_HIT, "other spelling hits");
}

/* ---------------------------------------------------------------------------------------------
 * (c) Damaged files */

static unsigned char *read_file(const char *path, size_t *size) {
    char *data = NULL;
    if (fa_file_read_all(path, &data, size, NULL) != FA_OK) return NULL;
    return (unsigned char *)data;
}

static void write_file(const char *path, const void *data, size_t size) {
    FILE *file = fopen(path, "wb");
    CHECK(file && fwrite(data, 1, size, file) == size, "write %s", path);
    if (file) fclose(file);
}

/* Rewrites the first size bytes of path in place. */
static void patch_file(const char *path, const void *data, size_t size) {
    int descriptor = open(path, O_WRONLY);
    CHECK(descriptor >= 0 && pwrite(descriptor, data, size, 0) == (ssize_t)size, "patch %s", path);
    if (descriptor >= 0) close(descriptor);
}

static uint64_t header_u64(const unsigned char *data, size_t at) {
    uint64_t value;
    memcpy(&value, data + at, 8);
    return value;
}

static void test_damage(void) {
    char cache_dir[256], path[4096];
    snprintf(cache_dir, sizeof cache_dir, "%s/damage_cache", work);
    fa_settings_t settings;
    settings_for(&settings, 0, 0, cache_dir);
    const char *models = test_models_dir();
    fa_error_t error = {0};
    CHECK(load_public(models, &settings, &error) == FA_OK, "cold load: %s", error.message);
    CHECK(fa_model_cache_path(cache_dir, models, &settings, path, sizeof path, NULL) == FA_OK,
          "cache path");
    size_t size = 0;
    unsigned char *good = read_file(path, &size);
    CHECK(good && size > 4096, "cache of %zu bytes", size);
    if (!good) return;
    unsigned char *bad = malloc(size);
    size_t head = (size_t)header_u64(good, FA_CACHE_FIELD_DATA_OFFSET); /* header, sources, index */
    CHECK(head > FA_CACHE_HEADER_SIZE && head < size, "data at %zu", head);

    /* Truncated: refused, then rebuilt by the next load. */
    const size_t cuts[] = {
        0, 7, FA_CACHE_HEADER_SIZE - 1, FA_CACHE_HEADER_SIZE, head / 2, head, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_file(path, good, cuts[i]);
        CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_INVALID, "cut at %zu", cuts[i]);
        CHECK(load_public(models, &settings, &error) == FA_OK, "load: %s", error.message);
        size_t rebuilt_size = 0;
        unsigned char *rebuilt = read_file(path, &rebuilt_size);
        CHECK(rebuilt && rebuilt_size == size &&
                  probe(cache_dir, models, &settings) == FA_MODEL_CACHE_HIT,
              "rebuilt after a cut at %zu", cuts[i]);
        free(rebuilt);
    }
    /* Any changed byte before the data is caught by the checksum (or the header checks). */
    quiet = 1;
    int refused = 0, tried = 0;
    write_file(path, good, size);
    memcpy(bad, good, size);
    for (size_t at = 0; at < head; at += 1 + at / 8) {
        bad[at] ^= 0x5a;
        patch_file(path, bad, head);
        bad[at] ^= 0x5a;
        tried++;
        refused += probe(cache_dir, models, &settings) == FA_MODEL_CACHE_INVALID;
    }
    CHECK(refused == tried, "%d of %d damaged bytes refused", refused, tried);
    /* Damage behind a valid checksum (as a fuzzer would make it): refused or loaded, never a
     * crash or a read out of bounds (the sanitizer build checks the latter). */
    unsigned seed = 12345;
    int survived = 0;
    for (int round = 0; round < 300; round++) {
        memcpy(bad, good, head);
        for (int k = 0; k < 1 + round % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = FA_CACHE_HEADER_SIZE + (seed >> 8) % (head - FA_CACHE_HEADER_SIZE);
            seed = seed * 1103515245u + 12345u;
            bad[at] = (unsigned char)(seed >> 16);
        }
        fa_cache_seal(bad, size);
        patch_file(path, bad, head);
        fa_model_cache_outcome outcome = probe(cache_dir, models, &settings);
        survived += outcome == FA_MODEL_CACHE_INVALID || outcome == FA_MODEL_CACHE_HIT ||
                    outcome == FA_MODEL_CACHE_STALE;
    }
    CHECK(survived == 300, "%d of 300 sealed damaged caches handled", survived);
    quiet = 0;
    /* Another build's cache, correctly sealed. */
    memcpy(bad, good, size);
    bad[FA_CACHE_FIELD_BUILD_ID] ^= 1;
    fa_cache_seal(bad, size);
    write_file(path, bad, size);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_INVALID, "other build refused");
    /* Foreign files. */
    write_file(path, "not a cache at all\n", 19);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_INVALID, "text file refused");
    for (size_t i = 0; i < size; i++)
        bad[i] = (unsigned char)(i * 2654435761u >> 13);
    write_file(path, bad, size);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_INVALID, "random bytes refused");
    /* A cache of another models folder, under this folder's name. */
    write_file(path, good, size);
    char other[256];
    snprintf(other, sizeof other, "%s/models", work); /* made by test_staleness */
    char other_path[4096];
    CHECK(fa_model_cache_path(cache_dir, other, &settings, other_path, sizeof other_path, NULL) ==
              FA_OK,
          "other path");
    CHECK(rename(path, other_path) == 0, "rename");
    CHECK(probe(cache_dir, other, &settings) == FA_MODEL_CACHE_INVALID, "foreign folder refused");
    /* And after all that, a load repairs the cache. */
    CHECK(load_public(models, &settings, &error) == FA_OK, "load: %s", error.message);
    CHECK(probe(cache_dir, models, &settings) == FA_MODEL_CACHE_HIT, "repaired");
    free(bad);
    free(good);
}

/* ---------------------------------------------------------------------------------------------
 * (d) A cache folder that cannot be written */

static void test_unwritable(void) {
    char blocker[256], cache_dir[512];
    snprintf(blocker, sizeof blocker, "%s/a_file", work);
    write_file(blocker, "x", 1);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", blocker); /* below a regular file */
    fa_settings_t settings;
    settings_for(&settings, 0, 0, cache_dir);
    fa_error_t error = {0};
    for (int i = 0; i < 2; i++)
        CHECK(load_public(test_models_dir(), &settings, &error) == FA_OK, "load %d: %s", i,
              error.message);
    CHECK(probe(cache_dir, test_models_dir(), &settings) == FA_MODEL_CACHE_MISSING ||
              probe(cache_dir, test_models_dir(), &settings) == FA_MODEL_CACHE_UNAVAILABLE,
          "nothing cached");
    settings.cache_dir = "";
    CHECK(load_public(test_models_dir(), &settings, &error) == FA_OK, "no cache: %s",
          error.message);
    char command[1024];
    snprintf(command, sizeof command,
             "'%s' -fdir '%s' -out_dir '%s/out_unwritable' --models '%s' "
             "--cache-dir '%s' -q",
             FACEAU_CLI, test_shared_path("data/images/image_sequence"), work, test_models_dir(),
             cache_dir);
    CHECK(run(command) == 0, "the CLI runs with an unwritable cache folder");
}

int main(void) {
    snprintf(work, sizeof work, "/tmp/faceau_model_cache_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    char cache_dir[256];
    snprintf(cache_dir, sizeof cache_dir, "%s/identical", work);
    test_identical(cache_dir, 1, 0);
    test_identical(cache_dir, 0, 1);
    test_same_outputs();
    test_staleness();
    test_damage();
    test_unwritable();
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", work);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", work);
    return test_finish("test_model_cache");
}
