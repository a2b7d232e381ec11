/* Offline post-processing (PIPELINE_SPEC §8.6; FaceAnalyser::PostprocessPredictions,
 * ExtractAllPredictionsOfflineReg/Class), quirks included. */
#include <errno.h>
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
 * without keeping 4702 doubles per frame. Static models keep their stored values. */
static void repredict_frame(const fa_au_state_t *state, const double *plain, double *intensity,
                            double *presence) {
    const fa_au_models_t *models = state->models;
    int svr_count = models->groups[FA_AU_GROUP_SVR_DYNAMIC].count;
    for (int kind = 0; kind < 2; kind++) {
        double *out = kind ? presence : intensity;
        for (int i = 0; i < models->count[kind]; i++) {
            fa_au_source_t s = models->sources[kind][i];
            if (!fa_au_group_is_dynamic(s.group)) continue;
            const fa_au_group_t *group = &models->groups[s.group];
            double value = (plain[kind ? svr_count + s.model : s.model] -
                            state->median_sums[s.group][s.model]) +
                           group->biases[s.model];
            if (kind) value = value > 0 ? group->positive[s.model] : group->negative[s.model];
            out[i] = value;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Reading the history: the spilled rows from the temporary file, then the block in memory. */

static fa_status history_rewind(fa_au_state_t *state, fa_error_t *error) {
    state->read_position = 0;
    state->successes_read = 0;
    if (state->spill && (fflush(state->spill) != 0 || fseek(state->spill, 0, SEEK_SET) != 0))
        return fa_error_set(error, FA_ERROR_IO, "cannot read back the AU history: %s",
                            strerror(errno));
    return FA_OK;
}

/* The next history row: success, raw intensities (count[0]) and presence classes (count[1]),
 * the first successful frames' re-predicted once post-processing started. */
static fa_status history_next(fa_au_state_t *state, int *success, double *intensity,
                              double *presence, fa_error_t *error) {
    const fa_au_models_t *models = state->models;
    int n0 = models->count[0], n1 = models->count[1];
    uint8_t spilled_row[8 + (FA_MAX_AUS + 1) * 9];
    const uint8_t *row;
    size_t position = state->read_position++;
    if (position < state->spilled) {
        if (fread(spilled_row, state->row_size, 1, state->spill) != 1)
            return fa_error_set(error, FA_ERROR_IO, "cannot read back the AU history: %s",
                                ferror(state->spill) ? strerror(errno)
                                                     : "file shorter than written");
        row = spilled_row;
    } else {
        row = state->block + (position - state->spilled) * state->row_size;
    }
    *success = row[0];
    memcpy(intensity, row + state->row_size - sizeof(double) * (size_t)n0,
           sizeof(double) * (size_t)n0);
    for (int i = 0; i < n1; i++) {
        fa_au_source_t s = models->sources[1][i];
        const fa_au_group_t *group = &models->groups[s.group];
        presence[i] = row[1 + i] ? group->positive[s.model] : group->negative[s.model];
    }
    if (*success && state->successes_read++ < state->init_frames && state->repredicting)
        repredict_frame(
            state, state->init_sums + (state->successes_read - 1) * (size_t)state->dynamic_count,
            intensity, presence);
    return FA_OK;
}

/* The person-specific offset of each dynamic intensity: the cutoff quantile of its raw values
 * over the successful frames, indexed as OpenFace does with (int)(N * cutoff). One column in
 * memory at a time. */
static fa_status compute_offsets(fa_au_state_t *state, fa_error_t *error) {
    const fa_au_models_t *models = state->models;
    double *column = NULL, intensity[FA_MAX_AUS], presence[FA_MAX_AUS];
    fa_status status = FA_OK;
    for (int i = 0; status == FA_OK && i < models->count[0]; i++) {
        fa_au_source_t s = models->sources[0][i];
        double cutoff =
            s.group == FA_AU_GROUP_SVR_DYNAMIC ? models->groups[s.group].cutoffs[s.model] : -1;
        state->offsets[i] = 0;
        if (cutoff == -1) continue;
        if (!column) {
            column = malloc(sizeof(double) * ((size_t)state->successes + 1));
            if (!column)
                return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (AU offsets)");
        }
        status = history_rewind(state, error);
        size_t good = 0;
        while (status == FA_OK && state->read_position < state->frames) {
            int success;
            status = history_next(state, &success, intensity, presence, error);
            if (status == FA_OK && success && good <= (size_t)state->successes)
                column[good++] = intensity[i];
        }
        if (status == FA_OK && good) {
            qsort(column, good, sizeof *column, compare_doubles);
            state->offsets[i] = column[(int)((double)good * cutoff)];
        }
    }
    free(column);
    return status;
}

/* Reads history row f into the window: clipped intensities (offset, [0, 5], 0 when failed) and
 * presence classes (0 when failed). */
static fa_status load_window_row(fa_au_state_t *state, fa_error_t *error) {
    const fa_au_models_t *models = state->models;
    size_t f = state->read_position;
    int success;
    double *intensity = state->window[f % 7][0], *presence = state->window[f % 7][1];
    fa_status status = history_next(state, &success, intensity, presence, error);
    if (status != FA_OK) return status;
    state->window_success[f % 7] = (uint8_t)success;
    for (int i = 0; i < models->count[0]; i++) {
        double value = intensity[i] - state->offsets[i];
        intensity[i] = !success ? 0 : value < 0 ? 0 : value > 5 ? 5 : value;
    }
    for (int i = 0; i < models->count[1]; i++)
        if (!success) presence[i] = 0;
    return FA_OK;
}

fa_status fa_au_state_postprocess(fa_au_state_t *state, size_t *frame_count, fa_error_t *error) {
    if (!state || !frame_count)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "AU post-processing: missing argument");
    state->finished = 0;
    median_sums(state, state->median_sums);
    state->repredicting = state->dynamic_count > 0;
    fa_status status = compute_offsets(state, error);
    if (status == FA_OK) status = history_rewind(state, error);
    if (status != FA_OK) return status;
    state->next_row = 0;
    state->finished = 1;
    *frame_count = state->frames;
    return FA_OK;
}

fa_status fa_au_state_next_row(fa_au_state_t *state, double *intensity, double *presence,
                               fa_error_t *error) {
    if (!state || !state->finished)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "AU rows asked for before post-processing");
    size_t f = state->next_row, frames = state->frames;
    if (f >= frames) return FA_ERROR_END;
    while (state->read_position < frames && state->read_position <= f + 3) {
        fa_status status = load_window_row(state, error);
        if (status != FA_OK) return status;
    }
    const fa_au_models_t *models = state->models;
    /* 3-tap moving average over every frame, failed ones included; the endpoints stay. */
    for (int i = 0; i < models->count[0]; i++)
        intensity[i] = frames < 3 || f == 0 || f + 1 == frames
                           ? state->window[f % 7][0][i]
                           : (state->window[(f - 1) % 7][0][i] + state->window[f % 7][0][i] +
                              state->window[(f + 1) % 7][0][i]) /
                                 3;
    /* 7-frame majority vote; the first and last three frames keep their values. */
    for (int i = 0; i < models->count[1]; i++) {
        if (frames <= 3 || f < 3 || f + 3 >= frames) {
            presence[i] = state->window[f % 7][1][i];
            continue;
        }
        double sum = 0;
        for (size_t j = f - 3; j <= f + 3; j++)
            sum += state->window[j % 7][1][i];
        presence[i] = sum / 7 < 0.5 ? 0 : 1;
    }
    state->next_row++;
    return FA_OK;
}

fa_status fa_au_state_postprocess_all(fa_au_state_t *state, size_t *frame_count,
                                      const double **intensity, const double **presence,
                                      fa_error_t *error) {
    fa_status status = fa_au_state_postprocess(state, frame_count, error);
    if (status != FA_OK) return status;
    size_t n0 = (size_t)state->models->count[0], n1 = (size_t)state->models->count[1];
    free(state->all_intensity);
    free(state->all_presence);
    state->all_intensity = malloc(sizeof(double) * (*frame_count * n0 + 1));
    state->all_presence = malloc(sizeof(double) * (*frame_count * n1 + 1));
    if (!state->all_intensity || !state->all_presence)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (AU series)");
    for (size_t f = 0; status == FA_OK && f < *frame_count; f++)
        status = fa_au_state_next_row(state, state->all_intensity + f * n0,
                                      state->all_presence + f * n1, error);
    *intensity = state->all_intensity;
    *presence = state->all_presence;
    return status;
}
