/* Per-frame AU prediction (PIPELINE_SPEC §7, §8.3-§8.4; FaceAnalyser::AddNextFrame). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "au/au_internal.h"

enum {
    HOG_BINS = 1000,
    GEOMETRY_BINS = 10000,
    ONLINE_BINS = 200,      /* CorrectOnlineAUs: 200 bins over [-3, 5], */
    ONLINE_MIN_FRAMES = 10, /* active after 10 frames, */
};
static const double ONLINE_MIN = -3, ONLINE_MAX = 5, ONLINE_RATIO = 0.10; /* bottom 10% */

fa_status fa_au_state_create(const fa_au_models_t *models, int online, fa_au_state_t **state,
                             fa_error_t *error) {
    if (!models || !state) return fa_error_set(error, FA_ERROR_ARGUMENT, "AU state: no models");
    fa_au_state_t *s = calloc(1, sizeof *s);
    if (!s) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (AU state)");
    s->models = models;
    s->online = online != 0;
    s->dynamic_count = models->groups[FA_AU_GROUP_SVR_DYNAMIC].count +
                       models->groups[FA_AU_GROUP_SVM_DYNAMIC].count;
    fa_status status =
        fa_running_median_init(&s->hog_median, FA_HOG_SIZE, HOG_BINS, -0.005, 1, error);
    if (status == FA_OK)
        status = fa_running_median_init(&s->geometry_median, FA_GEOMETRY_SIZE, GEOMETRY_BINS, -60,
                                        60, error);
    /* Room for every re-prediction row at once: no growth during the video, and pages that no
     * frame reaches (short videos) are never touched. */
    if (status == FA_OK && s->dynamic_count) {
        s->init_sums =
            malloc((size_t)FA_AU_MAX_INIT_FRAMES * (size_t)s->dynamic_count * sizeof(double));
        if (!s->init_sums)
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (AU state)");
    }
    if (status == FA_OK && s->online) {
        s->online_histogram = calloc((size_t)models->count[0] * ONLINE_BINS + 1, sizeof(int32_t));
        if (!s->online_histogram)
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (AU state)");
    }
    if (status != FA_OK) {
        fa_au_state_free(s);
        return status;
    }
    *state = s;
    return FA_OK;
}

void fa_au_state_free(fa_au_state_t *state) {
    if (!state) return;
    fa_running_median_release(&state->hog_median);
    fa_running_median_release(&state->geometry_median);
    free(state->block);
    if (state->spill) fclose(state->spill);
    free(state->all_intensity);
    free(state->all_presence);
    free(state->init_sums);
    free(state->online_histogram);
    free(state);
}

/* The medians change only on odd calls (OpenFace's "small speedup"), and only successful frames
 * enter the histograms; the HOG median is clamped at zero after every update. */
static fa_status update_medians(fa_au_state_t *state, int success) {
    if (state->frames_tracking % 2 != 1) return FA_OK;
    /* Cannot fail: fa_au_state_add_frame reserved the histograms' carries. */
    fa_status status = fa_running_median_update(&state->hog_median, state->features, success);
    double *hog = state->hog_median.median;
    for (int i = 0; i < FA_HOG_SIZE; i++)
        if (hog[i] < 0) hog[i] = 0;
    if (status == FA_OK)
        status = fa_running_median_update(&state->geometry_median, state->features + FA_HOG_SIZE,
                                          success);
    return status;
}

/* x - means, and for dynamic models (x - means) - [hog median, geometry median], in the order
 * OpenCV evaluates input - means - median. */
static void centre(fa_au_state_t *state, const fa_au_group_t *group, int dynamic) {
    const double *x = state->features, *means = group->means;
    for (int k = 0; k < FA_AU_FEATURES; k++)
        state->centred[k] = x[k] - means[k];
    if (!dynamic) return;
    const double *hog = state->hog_median.median, *geometry = state->geometry_median.median;
    for (int k = 0; k < FA_HOG_SIZE; k++)
        state->normalised[k] = state->centred[k] - hog[k];
    for (int k = 0; k < FA_GEOMETRY_SIZE; k++)
        state->normalised[FA_HOG_SIZE + k] = state->centred[FA_HOG_SIZE + k] - geometry[k];
}

/* Decision values of every model; keeps the median-free sums of dynamic models when the frame
 * will be re-predicted. */
static void predict(fa_au_state_t *state, int keep_plain) {
    for (int g = 0; g < FA_AU_GROUPS; g++) {
        const fa_au_group_t *group = &state->models->groups[g];
        if (!group->count) continue;
        int dynamic = fa_au_group_is_dynamic(g);
        double sums[FA_MAX_AUS];
        centre(state, group, dynamic);
        if (dynamic && keep_plain)
            fa_au_group_dot2(group, state->normalised, state->centred, sums, state->plain[g]);
        else
            fa_au_group_dot(group, dynamic ? state->normalised : state->centred, sums);
        for (int m = 0; m < group->count; m++)
            state->values[g][m] = sums[m] + group->biases[m];
    }
}

/* Makes room for one more history row: a full block goes to the temporary file. */
void fa_au_state_set_history_block(fa_au_state_t *state, size_t rows) {
    if (!state->block && rows > 0) state->block_capacity = rows;
}

static fa_status reserve_frame(fa_au_state_t *state, fa_error_t *error) {
    if (!state->block) {
        if (!state->block_capacity) state->block_capacity = FA_AU_HISTORY_BLOCK;
        state->row_size = fa_au_history_row_size(state->models);
        /* Not calloc, whose zeroing can make all 640 KB resident at once: record() writes
         * whole rows, so only the rows used take memory. */
        state->block = malloc(state->block_capacity * state->row_size);
        if (!state->block)
            return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (AU history)");
    }
    if (state->block_rows < state->block_capacity) return FA_OK;
    if (!state->spill) {
        state->spill = tmpfile();
        if (!state->spill)
            return fa_error_set(error, FA_ERROR_IO,
                                "cannot create a temporary file for the AU history: %s",
                                strerror(errno));
    }
    if (fwrite(state->block, state->row_size, state->block_rows, state->spill) != state->block_rows)
        return fa_error_set(error, FA_ERROR_IO, "cannot write the AU history: %s", strerror(errno));
    state->spilled += state->block_rows;
    state->block_rows = 0;
    return FA_OK;
}

static void store_init_frame(fa_au_state_t *state) {
    state->init_frames++;
    if (!state->dynamic_count) return;
    double *out = state->init_sums + (state->init_frames - 1) * (size_t)state->dynamic_count;
    const fa_au_group_t *groups = state->models->groups;
    for (int m = 0; m < groups[FA_AU_GROUP_SVR_DYNAMIC].count; m++)
        *out++ = state->plain[FA_AU_GROUP_SVR_DYNAMIC][m];
    for (int m = 0; m < groups[FA_AU_GROUP_SVM_DYNAMIC].count; m++)
        *out++ = state->plain[FA_AU_GROUP_SVM_DYNAMIC][m];
}

/* Writes the sorted outputs and appends the frame to the history. */
static void record(fa_au_state_t *state, int success, double *intensity, double *presence) {
    const fa_au_models_t *models = state->models;
    state->frames++;
    uint8_t *row = state->block + state->block_rows++ * state->row_size;
    memset(row, 0, state->row_size); /* the padding too: the row may go to the file */
    row[0] = (uint8_t)success;
    uint8_t *positive = row + 1;
    double history[FA_MAX_AUS];
    for (int i = 0; i < models->count[0]; i++) {
        fa_au_source_t s = models->sources[0][i];
        history[i] = success ? state->values[s.group][s.model] : 0;
        intensity[i] = history[i];
    }
    memcpy(row + state->row_size - sizeof(double) * (size_t)models->count[0], history,
           sizeof(double) * (size_t)models->count[0]);
    for (int i = 0; i < models->count[1]; i++) {
        fa_au_source_t s = models->sources[1][i];
        const fa_au_group_t *group = &models->groups[s.group];
        positive[i] = state->values[s.group][s.model] > 0;
        double value = positive[i] ? group->positive[s.model] : group->negative[s.model];
        presence[i] = success ? value : 0;
    }
}

/* CorrectOnlineAUs(dyn_shift, no scaling, update on success, clip): subtracts the running 10th
 * percentile (lower bin edge) of each intensity once 10 successful frames were seen. */
static void correct_online(fa_au_state_t *state, int success, double *intensity) {
    int count = state->models->count[0];
    const double length = ONLINE_MAX - ONLINE_MIN;
    if (success) state->online_count++;
    int cutoff = (int)(ONLINE_RATIO * state->online_count);
    for (int i = 0; i < count; i++) {
        int32_t *histogram = state->online_histogram + (size_t)i * ONLINE_BINS;
        double correction = 0;
        if (success) {
            double position = (intensity[i] - ONLINE_MIN) * (double)ONLINE_BINS / length;
            int bin = !(position >= 0)             ? 0
                      : position > ONLINE_BINS - 1 ? ONLINE_BINS - 1
                                                   : (int)position;
            histogram[bin]++;
        }
        if (success && state->online_count >= ONLINE_MIN_FRAMES) {
            int sum = 0, j = 0;
            while (j < ONLINE_BINS && (sum += histogram[j]) <= cutoff)
                j++;
            if (j < ONLINE_BINS) correction = ONLINE_MIN + j * (length / ONLINE_BINS);
        }
        double value = intensity[i] - correction;
        intensity[i] = value < 0 ? 0 : value > 5 ? 5 : value;
    }
}

fa_status fa_au_state_add_frame(fa_au_state_t *state, const float *hog, const double *geometry,
                                int success, double *intensity, double *presence,
                                fa_error_t *error) {
    if (!state || !hog || !geometry)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "AU frame: missing state or features");
    success = success != 0;
    /* The first 3000 successful frames are kept for re-prediction (FaceAnalyser's
     * max_init_frames). */
    int keep = success && state->successes < FA_AU_MAX_INIT_FRAMES;
    fa_status status = reserve_frame(state, error);
    if (status == FA_OK && success) status = fa_running_median_reserve(&state->hog_median, error);
    if (status == FA_OK && success)
        status = fa_running_median_reserve(&state->geometry_median, error);
    if (status != FA_OK) return status;
    state->frames_tracking++;
    state->successes += success;
    for (int k = 0; k < FA_HOG_SIZE; k++)
        state->features[k] = hog[k];
    /* A failed frame has zero local parameters, hence zero geometry. */
    for (int k = 0; k < FA_GEOMETRY_SIZE; k++)
        state->features[FA_HOG_SIZE + k] = success ? geometry[k] : 0;
    status = update_medians(state, success);
    if (status != FA_OK)
        return fa_error_set(error, status, "out of memory (running median carries)");
    predict(state, keep && state->dynamic_count);
    if (keep) store_init_frame(state);
    double intensities[FA_MAX_AUS], presences[FA_MAX_AUS];
    record(state, success, intensities, presences);
    if (state->online) correct_online(state, success, intensities);
    if (intensity) memcpy(intensity, intensities, (size_t)state->models->count[0] * sizeof(double));
    if (presence) memcpy(presence, presences, (size_t)state->models->count[1] * sizeof(double));
    return FA_OK;
}
