#include "pipeline/model_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "au/au_internal.h"
#include "faceau_build_id.h"
#include "model/cache.h"

_Static_assert(sizeof(int) == 4, "the cache stores int fields as int32");

enum {
    PATH_SIZE = 4096,
    END_MARK = 0x21444e45, /* after the last record: catches a store/restore mismatch */
    /* Bounds the text readers also enforce (ccnf.c, cnn.c, clnf_model.c). */
    CCNF_MAX_VIEWS = 64,
    CCNF_MAX_POINTS = 1024,
    CCNF_MAX_WINDOW_SETS = 32,
    CCNF_MAX_COMPONENTS = 16,
    CCNF_MAX_COMPONENT_WINDOW = 64,
    CNN_MAX_LAYERS = 64,
    CNN_MAX_MAPS = 4096,
    CNN_MAX_KERNEL = 16,
    CNN_MAX_FEATURES = 1 << 20,
    MAX_ITERATIONS = 1000,
};

/* A span of the mapping, as offsets from its start. */
typedef struct map_range {
    size_t start, end;
} map_range_t;

struct fa_model_cache {
    void *map;
    size_t size;
    int mapped;         /* map is our mapping of the file (not a caller's image) */
    void **allocations; /* the structure arrays restoring allocated */
    int allocation_count, allocation_capacity;
    /* The per-view arrays (patch experts, validator views): while restoring, one range per
     * array; then merged and cut to whole pages (fa_model_cache_release_views). */
    map_range_t *views;
    size_t view_count, view_capacity;
};

void fa_model_cache_close(fa_model_cache_t *cache) {
    if (!cache) return;
    for (int i = 0; i < cache->allocation_count; i++)
        free(cache->allocations[i]);
    free(cache->allocations);
    free(cache->views);
    if (cache->mapped) munmap(cache->map, cache->size);
    free(cache);
}

/* Records a restored per-view array; 0 when out of memory. */
static int note_view_array(fa_model_cache_t *cache, const void *array, size_t bytes) {
    if (!array || !bytes) return 1;
    if (cache->view_count == cache->view_capacity) {
        size_t capacity = cache->view_capacity ? 2 * cache->view_capacity : 1024;
        map_range_t *grown = realloc(cache->views, capacity * sizeof *grown);
        if (!grown) return 0;
        cache->views = grown;
        cache->view_capacity = capacity;
    }
    size_t start = (size_t)((const char *)array - (const char *)cache->map);
    cache->views[cache->view_count++] = (map_range_t){start, start + bytes};
    return 1;
}

static int by_start(const void *a, const void *b) {
    size_t x = ((const map_range_t *)a)->start, y = ((const map_range_t *)b)->start;
    return (x > y) - (x < y);
}

/* The recorded arrays as few whole-page ranges: arrays less than a page apart are joined (the
 * writer lays a scale's experts and the validator's views out one after another; equal arrays
 * share their bytes), then each range shrinks to the pages it covers entirely, so that no page
 * of other data is dropped with them. */
static void merge_view_ranges(fa_model_cache_t *cache) {
    if (!cache->view_count) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    qsort(cache->views, cache->view_count, sizeof *cache->views, by_start);
    size_t merged = 0;
    for (size_t i = 1; i < cache->view_count; i++) {
        map_range_t *last = &cache->views[merged], next = cache->views[i];
        if (next.start <= last->end + page) {
            if (next.end > last->end) last->end = next.end;
        } else {
            cache->views[++merged] = next;
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i <= merged; i++) {
        size_t start = (cache->views[i].start + page - 1) / page * page;
        size_t end = cache->views[i].end / page * page;
        if (end > start) cache->views[kept++] = (map_range_t){start, end};
    }
    cache->view_count = kept;
}

/* The mapping is private, read-only and never written: a dropped page loses nothing and is read
 * back unchanged. A failure only leaves pages resident. */
static void drop_pages(const fa_model_cache_t *cache, size_t start, size_t end) {
    madvise((char *)cache->map + start, end - start, MADV_DONTNEED);
}

void fa_model_cache_release_views(const fa_model_cache_t *cache) {
    if (!cache || !cache->mapped) return;
    for (size_t i = 0; i < cache->view_count; i++)
        drop_pages(cache, cache->views[i].start, cache->views[i].end);
}

void fa_model_cache_release_all(const fa_model_cache_t *cache) {
    if (cache && cache->mapped) drop_pages(cache, 0, cache->size);
}

static void *cache_allocate(fa_model_cache_t *cache, size_t size) {
    if (cache->allocation_count == cache->allocation_capacity) {
        int capacity = cache->allocation_capacity ? 2 * cache->allocation_capacity : 32;
        void **grown = realloc(cache->allocations, sizeof *grown * (size_t)capacity);
        if (!grown) return NULL;
        cache->allocations = grown;
        cache->allocation_capacity = capacity;
    }
    void *memory = calloc(1, size);
    if (memory) cache->allocations[cache->allocation_count++] = memory;
    return memory;
}

/* ---------------------------------------------------------------------------------------------
 * One description of every stored structure, for both directions: storing writes each field,
 * restoring reads it back into the same place, checking the bounds the text readers check and
 * pointing arrays into the mapped file. After a failure every step does nothing and counts read
 * as 0, so that no loop runs on damaged counts. */

typedef struct cache_io {
    fa_cache_writer_t *writer; /* storing */
    fa_cache_reader_t *reader; /* restoring */
    fa_model_cache_t *cache;   /* restoring: owns the structure arrays */
    const char *models_dir;
    char store_problem[160]; /* why storing failed, when the models break an invariant */
} cache_io_t;

static int io_ok(const cache_io_t *io) {
    return io->writer ? !io->writer->failed : !io->reader->failed;
}

static void io_fail(cache_io_t *io, const char *what) {
    char reason[160];
    snprintf(reason, sizeof reason, "%s out of range", what);
    if (io->reader) {
        fa_cache_reader_fail(io->reader, reason);
    } else if (!io->writer->failed) {
        io->writer->failed = 1;
        snprintf(io->store_problem, sizeof io->store_problem, "%s", reason);
    }
}

static void io_int(cache_io_t *io, int *value, int minimum, int maximum, const char *what) {
    if (io->writer) {
        if (*value < minimum || *value > maximum) io_fail(io, what);
        fa_cache_write_int(io->writer, *value);
        return;
    }
    int32_t read = fa_cache_read_int(io->reader);
    if (io_ok(io) && (read < minimum || read > maximum)) io_fail(io, what);
    *value = io_ok(io) ? read : 0;
}

static void io_float(cache_io_t *io, float *value) {
    if (io->writer)
        fa_cache_write_float(io->writer, *value);
    else
        *value = fa_cache_read_float(io->reader);
}

static void io_double(cache_io_t *io, double *value) {
    if (io->writer)
        fa_cache_write_double(io->writer, *value);
    else
        *value = fa_cache_read_double(io->reader);
}

static void io_text(cache_io_t *io, char *text, size_t size) {
    if (io->writer) {
        if (strnlen(text, size) == size) io_fail(io, "text length");
        fa_cache_write_text(io->writer, text);
    } else {
        fa_cache_read_text(io->reader, text, size);
    }
}

/* field is the address of a pointer (of any object type) to count elements. */
static void io_array(cache_io_t *io, void *field, fa_cache_element type, size_t count) {
    void *pointer;
    memcpy(&pointer, field, sizeof pointer);
    if (io->writer) {
        if (count && !pointer) io_fail(io, "missing array");
        fa_cache_write_array(io->writer, type, pointer, count);
        return;
    }
    /* The mapping is read-only; the models are immutable and never write through these. */
    pointer = (void *)fa_cache_read_array(io->reader, type, count);
    memcpy(field, &pointer, sizeof pointer);
}

/* Integer arrays whose values index something are checked value by value. */
static void io_indices(cache_io_t *io, void *field, fa_cache_element type, size_t count,
                       int minimum, int maximum, const char *what) {
    io_array(io, field, type, count);
    const void *values;
    memcpy(&values, field, sizeof values);
    for (size_t i = 0; values && io_ok(io) && i < count; i++) {
        int value = type == FA_CACHE_U8    ? ((const uint8_t *)values)[i]
                    : type == FA_CACHE_I16 ? ((const int16_t *)values)[i]
                                           : ((const int32_t *)values)[i];
        if (value < minimum || value > maximum) io_fail(io, what);
    }
}

/* An array of count structures: restoring allocates it zeroed (NULL after a failure). */
static void *io_structures(cache_io_t *io, void *field, size_t count, size_t size) {
    void *array = NULL;
    if (io->writer) {
        memcpy(&array, field, sizeof array);
        return array;
    }
    if (io_ok(io) && count) {
        array = cache_allocate(io->cache, count * size);
        if (!array) fa_cache_reader_fail(io->reader, "out of memory");
    }
    memcpy(field, &array, sizeof array);
    return array;
}

static void io_require(cache_io_t *io, int condition, const char *what) {
    if (io_ok(io) && !condition) io_fail(io, what);
}

/* A path below models_dir (a source, the validator's) is stored relative to it, so that the
 * same folder reached by another spelling finds its files. */
static const char *relative_source(const char *path, const char *models_dir) {
    size_t length = strlen(models_dir);
    if (!strncmp(path, models_dir, length) && path[length] == '/') return path + length + 1;
    return path;
}

static void io_model_path(cache_io_t *io, char *path, size_t size) {
    if (io->writer) {
        char relative[PATH_SIZE];
        snprintf(relative, sizeof relative, "%s", relative_source(path, io->models_dir));
        io_text(io, relative, sizeof relative);
        return;
    }
    char stored[PATH_SIZE];
    io_text(io, stored, sizeof stored);
    if (!io_ok(io) || !stored[0]) {
        path[0] = '\0';
        return;
    }
    int written = stored[0] == '/' ? snprintf(path, size, "%s", stored)
                                   : snprintf(path, size, "%s/%s", io->models_dir, stored);
    io_require(io, written > 0 && (size_t)written < size, "path length");
}

/* ---------------------------------------------------------------------------------------------
 * The structures */

static void visit_pdm(cache_io_t *io, fa_pdm_t *pdm) {
    io_int(io, &pdm->point_count, 1, FA_PDM_MAX_POINTS, "PDM point count");
    io_int(io, &pdm->mode_count, 1, FA_PDM_MAX_MODES, "PDM mode count");
    size_t values = 3 * (size_t)pdm->point_count;
    io_array(io, &pdm->mean_shape, FA_CACHE_F32, values);
    io_array(io, &pdm->components, FA_CACHE_F32, values * (size_t)pdm->mode_count);
    io_array(io, &pdm->eigenvalues, FA_CACHE_F32, (size_t)pdm->mode_count);
    io_array(io, &pdm->components_blocked, FA_CACHE_F32, values * (size_t)pdm->mode_count);
}

static void visit_triangulation(cache_io_t *io, fa_triangulation_t *triangulation) {
    io_int(io, &triangulation->count, 1, FA_ALIGN_MAX_TRIANGLES, "triangle count");
    io_indices(io, &triangulation->vertices, FA_CACHE_I32, 3 * (size_t)triangulation->count, 0,
               FA_ALIGN_MAX_POINTS - 1, "triangle vertex");
}

static void visit_au_models(cache_io_t *io, fa_au_models_t *models) {
    for (int g = 0; g < FA_AU_GROUPS; g++) {
        fa_au_group_t *group = &models->groups[g];
        io_int(io, &group->count, 0, FA_MAX_AUS, "AU model count");
        io_int(io, &group->stride, 0, FA_MAX_AUS + 3, "AU weight stride");
        io_require(io, group->stride == (group->count + 3) / 4 * 4, "AU weight stride");
        size_t features = group->count ? FA_AU_FEATURES : 0;
        io_array(io, &group->means, FA_CACHE_F64, features);
        io_array(io, &group->weights, FA_CACHE_F64, features * (size_t)group->stride);
        for (int m = 0; m < FA_MAX_AUS; m++) {
            io_double(io, &group->biases[m]);
            io_double(io, &group->cutoffs[m]);
            io_double(io, &group->positive[m]);
            io_double(io, &group->negative[m]);
            io_text(io, group->names[m], FA_AU_NAME_SIZE);
        }
    }
    for (int p = 0; p < 2; p++) {
        io_int(io, &models->count[p], 0, FA_MAX_AUS, "AU output count");
        for (int i = 0; i < FA_MAX_AUS; i++) {
            fa_au_source_t *source = &models->sources[p][i];
            io_int(io, &source->group, 0, FA_AU_GROUPS - 1, "AU output group");
            io_int(io, &source->model, 0, FA_MAX_AUS - 1, "AU output model");
            if (i < models->count[p])
                io_require(io, source->model < models->groups[source->group].count,
                           "AU output model");
        }
    }
}

/* Restoring: the expert's arrays are per-view data (fa_model_cache_release_views). */
static void note_expert(cache_io_t *io, const fa_ccnf_expert_t *expert, size_t weights,
                        const size_t sigma[FA_CCNF_MAX_PREPARED]) {
    if (!io->reader || !io_ok(io)) return;
    int noted =
        note_view_array(io->cache, expert->weights, weights * sizeof(float)) &&
        note_view_array(io->cache, expert->alphas, (size_t)expert->neuron_count * sizeof(double)) &&
        note_view_array(io->cache, expert->betas, (size_t)expert->beta_count * sizeof(double));
    for (int k = 0; noted && k < FA_CCNF_MAX_PREPARED; k++)
        noted = note_view_array(io->cache, expert->sigma[k], sigma[k] * sizeof(float));
    if (!noted) fa_cache_reader_fail(io->reader, "out of memory");
}

static void visit_expert(cache_io_t *io, const fa_ccnf_scale_t *scale, int visible,
                         fa_ccnf_expert_t *expert) {
    io_int(io, &expert->neuron_count, 0, FA_CCNF_MAX_NEURONS, "CCNF neuron count");
    io_require(io, (expert->neuron_count > 0) == (visible != 0), "CCNF expert visibility");
    size_t neurons = (size_t)expert->neuron_count;
    io_array(io, &expert->weights, FA_CACHE_F32, neurons * FA_CCNF_INPUTS);
    io_array(io, &expert->alphas, FA_CACHE_F64, neurons);
    io_float(io, &expert->alpha_sum);
    io_int(io, &expert->beta_count, 0, CCNF_MAX_COMPONENTS, "CCNF beta count");
    io_array(io, &expert->betas, FA_CACHE_F64, (size_t)expert->beta_count);
    io_double(io, &expert->confidence);
    size_t sigma[FA_CCNF_MAX_PREPARED];
    for (int k = 0; k < FA_CCNF_MAX_PREPARED; k++) {
        sigma[k] = 0;
        if (neurons && k < scale->window_count)
            sigma[k] =
                (size_t)(scale->windows[k] * scale->windows[k]) * (size_t)scale->sigma_stride[k];
        io_array(io, &expert->sigma[k], FA_CACHE_F32, sigma[k]);
    }
    note_expert(io, expert, neurons * FA_CCNF_INPUTS, sigma);
}

static void visit_ccnf_scale(cache_io_t *io, fa_ccnf_scale_t *scale) {
    io_double(io, &scale->scaling);
    io_int(io, &scale->view_count, 1, CCNF_MAX_VIEWS, "CCNF view count");
    io_int(io, &scale->point_count, 1, CCNF_MAX_POINTS, "CCNF point count");
    io_int(io, &scale->component_set_count, 0, CCNF_MAX_WINDOW_SETS, "CCNF window size count");
    io_int(io, &scale->window_count, 0, FA_CCNF_MAX_PREPARED, "CCNF prepared windows");
    for (int k = 0; k < FA_CCNF_MAX_PREPARED; k++) {
        io_int(io, &scale->windows[k], 0, FA_CCNF_MAX_WINDOW, "CCNF window");
        io_int(io, &scale->sigma_stride[k], 0, FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW + 7,
               "CCNF Sigma stride");
        int n = scale->windows[k] * scale->windows[k];
        if (k < scale->window_count)
            io_require(io, n > 0 && scale->sigma_stride[k] == ((n + 7) & ~7), "CCNF Sigma stride");
    }
    size_t views = (size_t)scale->view_count, total = views * (size_t)scale->point_count;
    io_array(io, &scale->centers, FA_CACHE_F64, 3 * views);
    io_indices(io, &scale->visible, FA_CACHE_I32, total, 0, 1, "CCNF visibility");
    fa_ccnf_components_t *components = io_structures(
        io, &scale->components, (size_t)scale->component_set_count, sizeof *components);
    for (int c = 0; components && c < scale->component_set_count; c++) {
        fa_ccnf_components_t *set = &components[c];
        io_int(io, &set->window, 1, CCNF_MAX_COMPONENT_WINDOW, "CCNF component window");
        io_int(io, &set->count, 0, CCNF_MAX_COMPONENTS, "CCNF component count");
        size_t n = (size_t)set->window * (size_t)set->window;
        io_array(io, &set->matrices, FA_CACHE_F32, (size_t)set->count * n * n);
    }
    fa_ccnf_expert_t *experts = io_structures(io, &scale->experts, total, sizeof *experts);
    for (size_t i = 0; experts && io_ok(io) && i < total; i++)
        visit_expert(io, scale, scale->visible[i], &experts[i]);
}

static void visit_ccnf(cache_io_t *io, fa_ccnf_t *ccnf) {
    io_int(io, &ccnf->scale_count, 1, FA_CCNF_MAX_SCALES, "CCNF scale count");
    io_int(io, &ccnf->point_count, 1, CCNF_MAX_POINTS, "CCNF point count");
    for (int s = 0; s < ccnf->scale_count; s++) {
        visit_ccnf_scale(io, &ccnf->scales[s]);
        io_require(io, ccnf->scales[s].point_count == ccnf->point_count, "CCNF point count");
    }
}

static void visit_parameters(cache_io_t *io, fa_clnf_parameters_t *parameters) {
    io_float(io, &parameters->sigma);
    io_float(io, &parameters->reg_factor);
    io_float(io, &parameters->weight_factor);
    io_int(io, &parameters->iterations, 0, MAX_ITERATIONS, "CLNF iterations");
    io_int(io, &parameters->window_count, 0, FA_CLNF_SET_MAX_WINDOWS, "CLNF window count");
    for (int i = 0; i < FA_CLNF_SET_MAX_WINDOWS; i++) {
        io_int(io, &parameters->windows_init[i], 0, FA_CCNF_MAX_WINDOW, "CLNF window");
        io_int(io, &parameters->windows_small[i], 0, FA_CCNF_MAX_WINDOW, "CLNF window");
    }
    io_int(io, &parameters->refine_parameters, 0, 1, "CLNF switch");
    io_int(io, &parameters->refine_hierarchical, 0, 1, "CLNF switch");
    io_int(io, &parameters->validate_detections, 0, 1, "CLNF switch");
    io_float(io, &parameters->validation_boundary);
}

static void visit_detector(cache_io_t *io, fa_clnf_detector_t *detector) {
    visit_pdm(io, &detector->pdm);
    visit_ccnf(io, &detector->ccnf);
    visit_parameters(io, &detector->parameters);
    io_require(io, detector->ccnf.point_count == detector->pdm.point_count, "CLNF point count");
    io_require(io, detector->parameters.window_count >= detector->ccnf.scale_count,
               "CLNF window count");
    /* Every window the fitter can ask for has its Sigmas. */
    for (int s = 0; io_ok(io) && s < detector->ccnf.scale_count; s++)
        for (int tracking = 0; tracking < 2; tracking++) {
            int window = fa_clnf_window(detector, s, tracking);
            io_require(io, window == 0 || fa_ccnf_window_index(&detector->ccnf, s, window) >= 0,
                       "CLNF window without Sigma");
        }
}

static void visit_clnf_set(cache_io_t *io, fa_clnf_set_t *set) {
    visit_detector(io, &set->main);
    io_require(io, set->main.pdm.point_count == FA_CLNF_SET_MAIN_POINTS, "main point count");
    io_int(io, &set->part_count, 0, FA_CLNF_MAX_PARTS, "CLNF part count");
    for (int p = 0; p < set->part_count; p++) {
        fa_clnf_set_part_t *part = &set->parts[p];
        io_text(io, part->name, sizeof part->name);
        visit_detector(io, &part->detector);
        io_int(io, &part->pair_count, 0, FA_PDM_MAX_POINTS, "CLNF pair count");
        for (int i = 0; i < part->pair_count; i++) {
            io_int(io, &part->pairs[i][0], 0, set->main.pdm.point_count - 1, "CLNF pair");
            io_int(io, &part->pairs[i][1], 0, part->detector.pdm.point_count - 1, "CLNF pair");
        }
    }
    io_int(io, &set->eye_model, 0, 1, "eye model flag");
    io_model_path(io, set->validator_path, sizeof set->validator_path);
    io_require(io, set->validator_path[0] != '\0', "validator path");
}

static void visit_fit_model(cache_io_t *io, fa_clnf_model_t *model) {
    fa_clnf_settings_t *settings = &model->settings;
    io_float(io, &settings->sigma);
    io_float(io, &settings->reg_factor);
    io_float(io, &settings->weight_factor);
    io_int(io, &settings->iterations, 0, MAX_ITERATIONS, "fit iterations");
    io_int(io, &settings->refine_parameters, 0, 1, "fit switch");
    io_int(io, &settings->scale_count, 1, FA_CLNF_MAX_SCALES, "fit scale count");
    for (int s = 0; s < FA_CLNF_MAX_SCALES; s++) {
        io_double(io, &settings->patch_scaling[s]);
        io_int(io, &settings->windows_init[s], 0, FA_CLNF_MAX_WINDOW, "fit window");
        io_int(io, &settings->windows_track[s], 0, FA_CLNF_MAX_WINDOW, "fit window");
        if (s < settings->scale_count)
            io_require(io, settings->patch_scaling[s] > 0, "fit patch scaling");
    }
    for (int j = 0; j < FA_CLNF_MAX_MODES; j++)
        io_float(io, &model->clamp[j]);
    for (int w = 1; w <= FA_CLNF_MAX_WINDOW; w++) {
        int present = model->kde[w] != NULL;
        io_int(io, &present, 0, 1, "KDE table flag");
        io_array(io, &model->kde[w], FA_CACHE_F32, present ? fa_clnf_kde_size(w) : 0);
        io_float(io, &model->kde_sigma[w]);
    }
    /* Every window the fit can use has its table. */
    for (int s = 0; io_ok(io) && s < settings->scale_count; s++) {
        int init = settings->windows_init[s], track = settings->windows_track[s];
        io_require(io, (!init || model->kde_sigma[init] > 0) && (!track || model->kde[track]),
                   "KDE table");
    }
}

/* Restoring: a validator view's arrays are per-view data (fa_model_cache_release_views). */
static void note_validator_view(cache_io_t *io, const fa_validator_view_t *view) {
    if (!io->reader || !io_ok(io)) return;
    size_t triangles = 3 * (size_t)view->triangle_count, pixels = (size_t)view->pixel_count;
    enum { K = FA_VALIDATOR_KERNELS };
    const struct {
        const void *array;
        size_t bytes;
    } arrays[] = {
        {view->triangles, triangles * sizeof(int32_t)},
        {view->alpha, triangles * sizeof(float)},
        {view->beta, triangles * sizeof(float)},
        {view->pixel_x, pixels},
        {view->pixel_y, pixels},
        {view->pixel_triangle, pixels * sizeof(int16_t)},
        {view->mean, pixels * sizeof(float)},
        {view->standard_deviation, pixels * sizeof(float)},
        {view->conv1_weights,
         FA_VALIDATOR_CONV1_SIDE * FA_VALIDATOR_CONV1_SIDE * K * sizeof(float)},
        {view->conv1_bias, K * sizeof(float)},
        {view->conv2_weights,
         K * FA_VALIDATOR_CONV2_SIDE * FA_VALIDATOR_CONV2_SIDE * K * sizeof(float)},
        {view->conv2_bias, K * sizeof(float)},
        {view->fc1_weights, FA_VALIDATOR_FLAT * FA_VALIDATOR_HIDDEN * sizeof(float)},
        {view->fc1_bias, FA_VALIDATOR_HIDDEN * sizeof(float)},
        {view->fc2_weights, FA_VALIDATOR_HIDDEN * FA_VALIDATOR_BINS * sizeof(float)},
        {view->fc2_bias, FA_VALIDATOR_BINS * sizeof(float)},
    };
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        if (!note_view_array(io->cache, arrays[i].array, arrays[i].bytes)) {
            fa_cache_reader_fail(io->reader, "out of memory");
            return;
        }
}

static void visit_validator(cache_io_t *io, fa_validator_t *validator) {
    io_int(io, &validator->view_count, 1, FA_VALIDATOR_MAX_VIEWS, "validator view count");
    for (int v = 0; v < validator->view_count; v++) {
        fa_validator_view_t *view = &validator->views[v];
        for (int i = 0; i < 3; i++)
            io_double(io, &view->orientation[i]);
        io_float(io, &view->min_x);
        io_float(io, &view->min_y);
        io_require(io, fabsf(view->min_x) < 1e4f && fabsf(view->min_y) < 1e4f, "PAW origin");
        io_int(io, &view->triangle_count, 1, FA_VALIDATOR_MAX_TRIANGLES, "PAW triangle count");
        size_t triangles = (size_t)view->triangle_count;
        io_indices(io, &view->triangles, FA_CACHE_I32, 3 * triangles, 0, FA_VALIDATOR_LANDMARKS - 1,
                   "PAW triangle vertex");
        io_array(io, &view->alpha, FA_CACHE_F32, 3 * triangles);
        io_array(io, &view->beta, FA_CACHE_F32, 3 * triangles);
        io_int(io, &view->pixel_count, 1, FA_VALIDATOR_PIXELS, "PAW pixel count");
        size_t pixels = (size_t)view->pixel_count;
        io_indices(io, &view->pixel_x, FA_CACHE_U8, pixels, 0, FA_VALIDATOR_SIDE - 1, "PAW pixel");
        io_indices(io, &view->pixel_y, FA_CACHE_U8, pixels, 0, FA_VALIDATOR_SIDE - 1, "PAW pixel");
        io_indices(io, &view->pixel_triangle, FA_CACHE_I16, pixels, 0, view->triangle_count - 1,
                   "PAW pixel triangle");
        io_array(io, &view->mean, FA_CACHE_F32, pixels);
        io_array(io, &view->standard_deviation, FA_CACHE_F32, pixels);
        enum { K = FA_VALIDATOR_KERNELS };
        io_array(io, &view->conv1_weights, FA_CACHE_F32,
                 FA_VALIDATOR_CONV1_SIDE * FA_VALIDATOR_CONV1_SIDE * K);
        io_array(io, &view->conv1_bias, FA_CACHE_F32, K);
        io_array(io, &view->conv2_weights, FA_CACHE_F32,
                 K * FA_VALIDATOR_CONV2_SIDE * FA_VALIDATOR_CONV2_SIDE * K);
        io_array(io, &view->conv2_bias, FA_CACHE_F32, K);
        io_array(io, &view->fc1_weights, FA_CACHE_F32, FA_VALIDATOR_FLAT * FA_VALIDATOR_HIDDEN);
        io_array(io, &view->fc1_bias, FA_CACHE_F32, FA_VALIDATOR_HIDDEN);
        io_array(io, &view->fc2_weights, FA_CACHE_F32, FA_VALIDATOR_HIDDEN * FA_VALIDATOR_BINS);
        io_array(io, &view->fc2_bias, FA_CACHE_F32, FA_VALIDATOR_BINS);
        note_validator_view(io, view);
    }
    if (io->reader && io_ok(io)) fa_validator_choose_kernel(validator);
}

/* A layer's fields, then its arrays with the sizes its type implies (cnn.c's reader). */
static void visit_cnn_layer(cache_io_t *io, fa_cnn_layer_t *layer) {
    int type = (int)layer->type;
    io_int(io, &type, FA_CNN_CONVOLUTION, FA_CNN_SIGMOID, "CNN layer type");
    layer->type = (fa_cnn_layer_type)type;
    io_int(io, &layer->inputs, 0, CNN_MAX_FEATURES, "CNN inputs");
    io_int(io, &layer->outputs, 0, CNN_MAX_FEATURES, "CNN outputs");
    io_int(io, &layer->kernel_width, 0, CNN_MAX_KERNEL, "CNN kernel width");
    io_int(io, &layer->kernel_height, 0, CNN_MAX_KERNEL, "CNN kernel height");
    io_int(io, &layer->stride_x, 0, CNN_MAX_KERNEL, "CNN stride");
    io_int(io, &layer->stride_y, 0, CNN_MAX_KERNEL, "CNN stride");
    io_int(io, &layer->padded_outputs, 0, CNN_MAX_FEATURES + 7, "CNN padded outputs");
    size_t inputs = (size_t)layer->inputs, outputs = (size_t)layer->outputs;
    size_t weights = 0, bias = 0, by_input = 0;
    switch (layer->type) {
    case FA_CNN_CONVOLUTION: {
        io_require(io,
                   layer->inputs >= 1 && layer->inputs <= CNN_MAX_MAPS && layer->outputs >= 1 &&
                       layer->outputs <= CNN_MAX_MAPS && layer->kernel_width >= 1 &&
                       layer->kernel_height >= 1 &&
                       layer->padded_outputs == (layer->outputs + 3) / 4 * 4,
                   "CNN convolution");
        size_t columns = inputs * (size_t)(layer->kernel_width * layer->kernel_height);
        weights = outputs * columns;
        bias = outputs;
        by_input = (size_t)layer->padded_outputs * columns;
        break;
    }
    case FA_CNN_MAX_POOL:
        io_require(io,
                   layer->kernel_width >= 1 && layer->kernel_height >= 1 && layer->stride_x >= 1 &&
                       layer->stride_y >= 1,
                   "CNN max-pool");
        break;
    case FA_CNN_FULLY_CONNECTED:
        io_require(io,
                   layer->inputs >= 1 && layer->outputs >= 1 &&
                       layer->padded_outputs == (layer->outputs + 7) / 8 * 8,
                   "CNN fully connected");
        weights = outputs * inputs;
        bias = outputs;
        by_input = (size_t)layer->padded_outputs * inputs;
        break;
    case FA_CNN_PRELU:
        io_require(io, layer->outputs >= 1 && layer->inputs == layer->outputs, "CNN PReLU");
        weights = outputs;
        break;
    case FA_CNN_SIGMOID:
        break;
    }
    if (!io_ok(io)) return;
    io_array(io, &layer->weights, FA_CACHE_F32, weights);
    io_array(io, &layer->bias, FA_CACHE_F32, bias);
    io_array(io, &layer->weights_by_input, FA_CACHE_F32, by_input);
}

static void visit_cnn(cache_io_t *io, fa_cnn_t *cnn) {
    io_int(io, &cnn->layer_count, 1, CNN_MAX_LAYERS, "CNN layer count");
    fa_cnn_layer_t *layers =
        io_structures(io, &cnn->layers, (size_t)cnn->layer_count, sizeof *layers);
    for (int i = 0; layers && i < cnn->layer_count; i++)
        visit_cnn_layer(io, &layers[i]);
}

static void visit_face_models(cache_io_t *io, fa_face_models_t *faces) {
    visit_clnf_set(io, &faces->set);
    visit_validator(io, &faces->validator);
    visit_cnn(io, &faces->mtcnn.pnet);
    visit_cnn(io, &faces->mtcnn.rnet);
    visit_cnn(io, &faces->mtcnn.onet);
    visit_fit_model(io, &faces->fit_main);
    for (int p = 0; p < faces->set.part_count; p++)
        visit_fit_model(io, &faces->fit_parts[p]);
    if (io->reader && io_ok(io)) fa_face_models_link(faces);
}

/* Everything fa_models_load produces, in one order. */
static void visit_models(cache_io_t *io, int tracker, const fa_model_slots_t *slots) {
    fa_au_models_t *au = io_structures(io, slots->au, 1, sizeof *au);
    if (au) visit_au_models(io, au);
    visit_pdm(io, slots->pdm);
    io_require(io,
               slots->pdm->point_count == FA_NUM_LANDMARKS &&
                   slots->pdm->mode_count == FA_NUM_PDM_MODES,
               "AU PDM size");
    visit_triangulation(io, slots->triangulation);
    if (tracker) {
        fa_face_models_t *faces = io_structures(io, slots->faces, 1, sizeof *faces);
        if (faces) visit_face_models(io, faces);
    }
    int end = END_MARK;
    io_int(io, &end, END_MARK, END_MARK, "end mark");
}

/* ---------------------------------------------------------------------------------------------
 * Files */

/* What identifies a model set: the models folder's real path and the loading settings. */
typedef struct cache_key {
    char models_real[PATH_SIZE];
    int au_static, tracker;
} cache_key_t;

static fa_status make_key(const char *models_dir, const fa_settings_t *settings, cache_key_t *key,
                          fa_error_t *error) {
    memset(key, 0, sizeof *key);
    char real[PATH_MAX];
    if (!realpath(models_dir, real))
        return fa_error_set(error, FA_ERROR_IO, "%s: %s", models_dir, strerror(errno));
    if (strlen(real) >= sizeof key->models_real)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "path too long: %s", real);
    strcpy(key->models_real, real);
    key->au_static = settings->au_static != 0;
    key->tracker = settings->tracker != 0;
    return FA_OK;
}

static void visit_key(cache_io_t *io, cache_key_t *key) {
    io_text(io, key->models_real, sizeof key->models_real);
    io_int(io, &key->au_static, 0, 1, "key");
    io_int(io, &key->tracker, 0, 1, "key");
}

static uint64_t hash_key(const cache_key_t *key) {
    uint64_t hash = 0xcbf29ce484222325u; /* FNV-1a */
    const unsigned char *text = (const unsigned char *)key->models_real;
    for (size_t i = 0; text[i]; i++)
        hash = (hash ^ text[i]) * 0x100000001b3u;
    hash = (hash ^ (uint64_t)(key->au_static + 2 * key->tracker + 1)) * 0x100000001b3u;
    return hash;
}

static fa_status key_path(const char *cache_dir, const cache_key_t *key, char *path, size_t size,
                          fa_error_t *error) {
    int written = snprintf(path, size, "%s/models-%016llx.cache", cache_dir,
                           (unsigned long long)hash_key(key));
    if (written < 0 || (size_t)written >= size)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "path too long: %s", cache_dir);
    return FA_OK;
}

fa_status fa_model_cache_path(const char *cache_dir, const char *models_dir,
                              const fa_settings_t *settings, char *path, size_t size,
                              fa_error_t *error) {
    cache_key_t key;
    fa_status status = make_key(models_dir, settings, &key, error);
    return status == FA_OK ? key_path(cache_dir, &key, path, size, error) : status;
}

/* Every source still has its recorded size and modification time. */
static int sources_fresh(fa_cache_reader_t *reader, const char *models_dir, fa_error_t *error) {
    char stored[FA_CACHE_MAX_PATH], path[PATH_SIZE + FA_CACHE_MAX_PATH];
    fa_file_stamp_t recorded, now;
    while (fa_cache_read_source(reader, stored, sizeof stored, &recorded)) {
        if (stored[0] == '/')
            snprintf(path, sizeof path, "%s", stored);
        else
            snprintf(path, sizeof path, "%s/%s", models_dir, stored);
        if (fa_file_stamp(path, &now, NULL) != FA_OK || now.size != recorded.size ||
            now.mtime_ns != recorded.mtime_ns) {
            fa_error_set(error, FA_ERROR_MODEL, "model cache: %s changed", path);
            return 0;
        }
    }
    return 1;
}

static fa_model_cache_outcome map_file(const char *path, fa_model_cache_t *cache,
                                       fa_error_t *error) {
    int descriptor = open(path, O_RDONLY | O_CLOEXEC);
    if (descriptor < 0) {
        fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
        return errno == ENOENT ? FA_MODEL_CACHE_MISSING : FA_MODEL_CACHE_UNAVAILABLE;
    }
    struct stat info;
    fa_model_cache_outcome outcome = FA_MODEL_CACHE_UNAVAILABLE;
    if (fstat(descriptor, &info) != 0 || !S_ISREG(info.st_mode)) {
        fa_error_set(error, FA_ERROR_IO, "%s: not a regular file", path);
    } else if (info.st_size < FA_CACHE_HEADER_SIZE || (uint64_t)info.st_size > SIZE_MAX) {
        fa_error_set(error, FA_ERROR_MODEL, "%s: truncated", path);
        outcome = FA_MODEL_CACHE_INVALID;
    } else {
        void *map = mmap(NULL, (size_t)info.st_size, PROT_READ, MAP_PRIVATE, descriptor, 0);
        if (map == MAP_FAILED) {
            fa_error_set(error, FA_ERROR_IO, "%s: cannot be mapped: %s", path, strerror(errno));
        } else {
            cache->map = map;
            cache->size = (size_t)info.st_size;
            cache->mapped = 1;
            outcome = FA_MODEL_CACHE_HIT;
        }
    }
    close(descriptor);
    return outcome;
}

/* Restores what cache->map holds. With a key, the file must be for that key and its sources
 * unchanged; without (an image in memory), the stored key is taken as it is and the sources are
 * read but not looked at. */
static fa_model_cache_outcome restore(fa_model_cache_t *cache, const char *models_dir,
                                      const cache_key_t *key, const fa_model_slots_t *slots,
                                      fa_error_t *error) {
    fa_cache_reader_t reader;
    if (fa_cache_reader_open(&reader, cache->map, cache->size, FA_BUILD_ID, error) != FA_OK)
        return FA_MODEL_CACHE_INVALID;
    cache_io_t io = {.reader = &reader, .cache = cache, .models_dir = models_dir};
    cache_key_t stored;
    visit_key(&io, &stored);
    if (!io_ok(&io) ||
        (key && (strcmp(stored.models_real, key->models_real) ||
                 stored.au_static != key->au_static || stored.tracker != key->tracker))) {
        fa_error_set(error, FA_ERROR_MODEL, "model cache: written for other models (%s)",
                     reader.failed ? reader.reason : "another folder or settings");
        return FA_MODEL_CACHE_INVALID;
    }
    if (key && !sources_fresh(&reader, models_dir, error)) return FA_MODEL_CACHE_STALE;
    char path[FA_CACHE_MAX_PATH];
    fa_file_stamp_t stamp;
    while (!key && fa_cache_read_source(&reader, path, sizeof path, &stamp)) {
    }
    if (reader.failed) {
        fa_error_set(error, FA_ERROR_MODEL, "model cache: %s", reader.reason);
        return FA_MODEL_CACHE_INVALID;
    }
    /* Into temporaries: the slots stay untouched unless everything restores. */
    fa_au_models_t *au = NULL;
    fa_pdm_t pdm = {0};
    fa_triangulation_t triangulation = {0};
    fa_face_models_t *faces = NULL;
    fa_model_slots_t restored = {&au, &pdm, &triangulation, &faces};
    visit_models(&io, stored.tracker, &restored);
    if (io_ok(&io) && reader.index_position != reader.index_end)
        fa_cache_reader_fail(&reader, "unexpected records after the end mark");
    if (!io_ok(&io)) {
        fa_error_set(error, FA_ERROR_MODEL, "model cache: %s", reader.reason);
        return FA_MODEL_CACHE_INVALID;
    }
    merge_view_ranges(cache);
    if (faces) faces->cache = cache;
    *slots->au = au;
    *slots->pdm = pdm;
    *slots->triangulation = triangulation;
    *slots->faces = faces;
    return FA_MODEL_CACHE_HIT;
}

fa_model_cache_outcome fa_model_cache_load_image(const void *image, size_t size,
                                                 const fa_model_slots_t *slots,
                                                 fa_model_cache_t **out, fa_error_t *error) {
    *out = NULL;
    fa_model_cache_t *cache = calloc(1, sizeof *cache);
    if (!cache) {
        fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
        return FA_MODEL_CACHE_UNAVAILABLE;
    }
    cache->map = (void *)image; /* read only, never written nor freed here */
    cache->size = size;
    fa_model_cache_outcome outcome = restore(cache, "", NULL, slots, error);
    if (outcome != FA_MODEL_CACHE_HIT) {
        fa_model_cache_close(cache);
        return outcome;
    }
    *out = cache;
    return outcome;
}

fa_model_cache_outcome fa_model_cache_load(const char *cache_dir, const char *models_dir,
                                           const fa_settings_t *settings,
                                           const fa_model_slots_t *slots, fa_model_cache_t **out,
                                           fa_error_t *error) {
    *out = NULL;
    if (!cache_dir || !cache_dir[0]) {
        fa_error_set(error, FA_ERROR_ARGUMENT, "no cache folder");
        return FA_MODEL_CACHE_UNAVAILABLE;
    }
    cache_key_t key;
    char path[PATH_SIZE];
    if (make_key(models_dir, settings, &key, error) != FA_OK ||
        key_path(cache_dir, &key, path, sizeof path, error) != FA_OK)
        return FA_MODEL_CACHE_UNAVAILABLE;
    fa_model_cache_t *cache = calloc(1, sizeof *cache);
    if (!cache) {
        fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
        return FA_MODEL_CACHE_UNAVAILABLE;
    }
    fa_model_cache_outcome outcome = map_file(path, cache, error);
    if (outcome == FA_MODEL_CACHE_HIT) outcome = restore(cache, models_dir, &key, slots, error);
    if (outcome != FA_MODEL_CACHE_HIT) {
        fa_model_cache_close(cache);
        return outcome;
    }
    *out = cache;
    return FA_MODEL_CACHE_HIT;
}

/* mkdir -p, private to the user. */
static fa_status make_folders(const char *folder, fa_error_t *error) {
    char path[PATH_SIZE];
    if (snprintf(path, sizeof path, "%s", folder) >= (int)sizeof path)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "path too long: %s", folder);
    for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash) *slash = '\0';
        if (path[0] && mkdir(path, 0700) != 0 && errno != EEXIST)
            return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
        if (!slash) break;
        *slash = '/';
    }
    return FA_OK;
}

static int write_to_file(void *context, const void *bytes, size_t size) {
    return fwrite(bytes, 1, size, (FILE *)context) == size;
}

fa_status fa_model_cache_store(const char *cache_dir, const char *models_dir,
                               const fa_settings_t *settings, const fa_file_log_t *sources,
                               const fa_model_slots_t *slots, fa_error_t *error) {
    if (!cache_dir || !cache_dir[0])
        return fa_error_set(error, FA_ERROR_ARGUMENT, "no cache folder");
    if (sources->incomplete || sources->count == 0)
        return fa_error_set(error, FA_ERROR_INTERNAL, "model cache: the source list is incomplete");
    cache_key_t key;
    char path[PATH_SIZE], temporary[PATH_SIZE + 16];
    fa_status status = make_key(models_dir, settings, &key, error);
    if (status == FA_OK) status = key_path(cache_dir, &key, path, sizeof path, error);
    if (status == FA_OK) status = make_folders(cache_dir, error);
    if (status != FA_OK) return status;
    fa_cache_writer_t writer;
    fa_cache_writer_init(&writer);
    cache_io_t io = {.writer = &writer, .models_dir = models_dir};
    for (int i = 0; i < sources->count; i++)
        fa_cache_write_source(&writer, relative_source(sources->paths[i], models_dir),
                              &sources->stamps[i]);
    visit_key(&io, &key);
    visit_models(&io, settings->tracker != 0, slots);
    if (writer.failed && io.store_problem[0])
        status = fa_error_set(error, FA_ERROR_INTERNAL, "model cache: %s", io.store_problem);
    snprintf(temporary, sizeof temporary, "%s.XXXXXX", path);
    int descriptor = status == FA_OK ? mkstemp(temporary) : -1;
    if (status == FA_OK && descriptor < 0)
        status = fa_error_set(error, FA_ERROR_IO, "%s: %s", temporary, strerror(errno));
    FILE *file = descriptor >= 0 ? fdopen(descriptor, "wb") : NULL;
    if (descriptor >= 0 && !file) {
        close(descriptor);
        status = fa_error_set(error, FA_ERROR_IO, "%s: %s", temporary, strerror(errno));
    }
    if (file) {
        status = fa_cache_writer_emit(&writer, FA_BUILD_ID, write_to_file, file, error);
        if (fclose(file) != 0 && status == FA_OK)
            status = fa_error_set(error, FA_ERROR_IO, "%s: %s", temporary, strerror(errno));
        if (status == FA_OK && rename(temporary, path) != 0)
            status = fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
        if (status != FA_OK) unlink(temporary);
    }
    fa_cache_writer_release(&writer);
    return status;
}
