/* Offline post-processing (PIPELINE_SPEC §8.6; FaceAnalyser::PostprocessPredictions,
 * ExtractAllPredictionsOfflineReg/Class), quirks included. */
#include <stdlib.h>
#include <string.h>

#include "au/au_internal.h"

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void fa_au_finish_intensity(double *series, const uint8_t *success, size_t frames, double cutoff,
                            double *scratch) {
    /* The person-specific offset: the cutoff quantile of the raw (unclipped) values of the
     * successful frames, indexed as OpenFace does with (int)(N * cutoff). */
    double offset = 0;
    if (cutoff != -1) {
        size_t good = 0;
        for (size_t f = 0; f < frames; f++)
            if (success[f]) scratch[good++] = series[f];
        if (good) {
            qsort(scratch, good, sizeof *scratch, compare_doubles);
            offset = scratch[(int)((double)good * cutoff)];
        }
    }
    for (size_t f = 0; f < frames; f++) {
        double value = series[f] - offset;
        series[f] = !success[f] ? 0 : value < 0 ? 0 : value > 5 ? 5 : value;
    }
    /* 3-tap moving average over every frame, failed ones included; the endpoints stay. */
    if (frames < 3) return;
    memcpy(scratch, series, frames * sizeof *series);
    for (size_t i = 1; i + 1 < frames; i++)
        series[i] = (scratch[i - 1] + scratch[i] + scratch[i + 1]) / 3;
}

void fa_au_finish_presence(double *series, size_t frames, double *scratch) {
    /* 7-frame majority vote; the first and last three frames keep their values. */
    if (frames <= 3) return;
    memcpy(scratch, series, frames * sizeof *series);
    for (size_t i = 3; i + 3 < frames; i++) {
        double sum = 0;
        for (size_t j = i - 3; j <= i + 3; j++)
            sum += scratch[j];
        series[i] = sum / 7 < 0.5 ? 0 : 1;
    }
}

/* The per-frame values as recorded: raw intensities, SVM classes, zeros on failed frames. */
static void copy_history(fa_au_state_t *state) {
    const fa_au_models_t *models = state->models;
    size_t n0 = (size_t)models->count[0], n1 = (size_t)models->count[1];
    if (!state->frames) return;
    memcpy(state->final_intensity, state->intensity, state->frames * n0 * sizeof(double));
    for (size_t f = 0; f < state->frames; f++) {
        for (size_t i = 0; i < n1; i++) {
            fa_au_source_t s = models->sources[1][i];
            const fa_au_group_t *group = &models->groups[s.group];
            double value =
                state->positive[f * n1 + i] ? group->positive[s.model] : group->negative[s.model];
            state->final_presence[f * n1 + i] = state->success[f] ? value : 0;
        }
    }
}

/* median . w for every dynamic model, with the final medians. */
static void median_sums(fa_au_state_t *state, double sums[FA_AU_GROUPS][FA_MAX_AUS]) {
    double *median = state->normalised; /* scratch */
    memcpy(median, state->hog_median.median, FA_HOG_SIZE * sizeof(double));
    memcpy(median + FA_HOG_SIZE, state->geometry_median.median, FA_GEOMETRY_SIZE * sizeof(double));
    for (int g = 0; g < FA_AU_GROUPS; g++)
        if (fa_au_group_is_dynamic(g) && state->models->groups[g].count)
            fa_au_group_dot(&state->models->groups[g], median, sums[g]);
}

/* One re-predicted frame: OpenFace predicts (x - means - median) . w + b again from stored
 * features. The product is linear, so (x - means) . w, stored per frame, minus median . w gives
 * the same value up to double rounding of the sums (~1e-13 here, far below the output's 0.01),
 * without keeping 4702 doubles per frame. Static models would give their stored values. */
static void repredict_frame(fa_au_state_t *state, size_t frame, const double *plain,
                            double sums[FA_AU_GROUPS][FA_MAX_AUS]) {
    const fa_au_models_t *models = state->models;
    int svr_count = models->groups[FA_AU_GROUP_SVR_DYNAMIC].count;
    for (int kind = 0; kind < 2; kind++) {
        size_t n = (size_t)models->count[kind];
        double *out = (kind ? state->final_presence : state->final_intensity) + frame * n;
        for (size_t i = 0; i < n; i++) {
            fa_au_source_t s = models->sources[kind][i];
            if (!fa_au_group_is_dynamic(s.group)) continue;
            const fa_au_group_t *group = &models->groups[s.group];
            double value = (plain[kind ? svr_count + s.model : s.model] - sums[s.group][s.model]) +
                           group->biases[s.model];
            if (kind) value = value > 0 ? group->positive[s.model] : group->negative[s.model];
            out[i] = value;
        }
    }
}

static void repredict(fa_au_state_t *state) {
    if (!state->dynamic_count || !state->init_frames) return;
    double sums[FA_AU_GROUPS][FA_MAX_AUS];
    median_sums(state, sums);
    size_t stored = 0;
    for (size_t f = 0; f < state->frames && stored < state->init_frames; f++) {
        if (!state->success[f]) continue;
        repredict_frame(state, f, state->init_sums + stored * (size_t)state->dynamic_count, sums);
        stored++;
    }
}

/* Runs finish on column i of a frames x n matrix through contiguous scratch. */
static void finish_columns(fa_au_state_t *state, int kind, double *scratch) {
    const fa_au_models_t *models = state->models;
    size_t frames = state->frames, n = (size_t)models->count[kind];
    double *matrix = kind ? state->final_presence : state->final_intensity;
    double *series = scratch, *work = scratch + frames;
    for (size_t i = 0; i < n; i++) {
        fa_au_source_t s = models->sources[kind][i];
        for (size_t f = 0; f < frames; f++)
            series[f] = matrix[f * n + i];
        if (kind) {
            fa_au_finish_presence(series, frames, work);
        } else {
            double cutoff =
                s.group == FA_AU_GROUP_SVR_DYNAMIC ? models->groups[s.group].cutoffs[s.model] : -1;
            fa_au_finish_intensity(series, state->success, frames, cutoff, work);
        }
        for (size_t f = 0; f < frames; f++)
            matrix[f * n + i] = series[f];
    }
}

fa_status fa_au_state_postprocess(fa_au_state_t *state, size_t *frame_count,
                                  const double **intensity, const double **presence,
                                  fa_error_t *error) {
    if (!state || !frame_count || !intensity || !presence)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "AU post-processing: missing argument");
    size_t frames = state->frames;
    free(state->final_intensity);
    free(state->final_presence);
    state->final_intensity =
        malloc((frames * (size_t)state->models->count[0] + 1) * sizeof(double));
    state->final_presence = malloc((frames * (size_t)state->models->count[1] + 1) * sizeof(double));
    double *scratch = malloc((2 * frames + 1) * sizeof(double));
    if (!state->final_intensity || !state->final_presence || !scratch) {
        free(scratch);
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (AU post-processing)");
    }
    copy_history(state);
    repredict(state);
    finish_columns(state, 0, scratch);
    finish_columns(state, 1, scratch);
    free(scratch);
    *frame_count = frames;
    *intensity = state->final_intensity;
    *presence = state->final_presence;
    return FA_OK;
}
