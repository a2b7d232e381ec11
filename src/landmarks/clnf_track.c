/* CLNF detection and tracking flow (LANDMARKS_SPEC §3.5, §3.6, §5): DetectLandmarks with the
 * hierarchical part models and validation, the multi-view initialisation from a face box, and
 * DetectLandmarksInVideo's state machine. The numerics are in clnf_fit.c and pdm.c; this file
 * only reproduces the order of operations and which state is kept or restored. */
#include <stdlib.h>
#include <string.h>

#include "landmarks/clnf_fit.h"

/* DetectLandmarksInImage's rotation hypotheses (Vec3d, converted to float by CalcParams). */
static const double rotation_hypotheses[FA_CLNF_HYPOTHESES][3] = {
    {0, 0, 0},    {0, -0.5236, 0},   {0, 0.5236, 0},    {0, -0.96, 0},
    {0, 0.96, 0}, {0, 0, 0.5236},    {0, 0, -0.5236},   {0, -1.57, 0},
    {0, 1.57, 0}, {0, -1.22, 0.698}, {0, 1.22, -0.698},
};

fa_status fa_clnf_tracker_create(fa_clnf_tracker_t **tracker, fa_error_t *error) {
    *tracker = calloc(1, sizeof **tracker);
    if (!*tracker) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    for (int p = 0; p < FA_CLNF_MAX_PARTS; p++)
        fa_clnf_state_reset(&(*tracker)->parts[p]);
    fa_clnf_tracker_reset(*tracker);
    return FA_OK;
}

void fa_clnf_tracker_destroy(fa_clnf_tracker_t *tracker) {
    free(tracker);
}

void fa_clnf_tracker_reset(fa_clnf_tracker_t *tracker) {
    fa_clnf_state_reset(&tracker->main);
    tracker->tracking_initialised = 0;
    tracker->failures_in_a_row = -1;
    tracker->last_tracked = tracker->last_detection = tracker->last_restored = 0;
}

static fa_status check_system(const fa_clnf_system_t *system, const fa_clnf_callbacks_t *callbacks,
                              fa_error_t *error) {
    if (!system->main || !callbacks->main.respond || system->part_count < 0 ||
        system->part_count > FA_CLNF_MAX_PARTS)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: incomplete system");
    if (system->validate_detections && !callbacks->validate)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: no validator");
    int n = system->main->pdm->point_count;
    for (int p = 0; p < system->part_count; p++) {
        const fa_clnf_part_t *part = &system->parts[p];
        if (!part->model || !callbacks->parts[p].respond || part->mapping_count < 0 ||
            part->mapping_count > FA_CLNF_MAX_POINTS)
            return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: incomplete part %d", p);
        for (int k = 0; k < part->mapping_count; k++)
            if (part->mapping[k][0] < 0 || part->mapping[k][0] >= n || part->mapping[k][1] < 0 ||
                part->mapping[k][1] >= part->model->pdm->point_count)
                return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: part %d mapping %d", p, k);
    }
    return FA_OK;
}

/* Fits one part from the main landmarks: CalcParams on the mapped points (the others stay 0,
 * i.e. invisible), then its own Fit if the face is large enough. Returns whether it fitted. */
static fa_status fit_part(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                          const fa_clnf_callbacks_t *callbacks, int p, int *fitted,
                          fa_error_t *error) {
    const fa_clnf_part_t *part = &system->parts[p];
    const fa_clnf_model_t *model = part->model;
    const float *landmarks = tracker->main.landmarks;
    fa_clnf_state_t *state = &tracker->parts[p];
    int n = system->main->pdm->point_count, part_n = model->pdm->point_count;
    float target[2 * FA_CLNF_MAX_POINTS] = {0};
    for (int k = 0; k < part->mapping_count; k++) {
        target[part->mapping[k][1]] = landmarks[part->mapping[k][0]];
        target[part->mapping[k][1] + part_n] = landmarks[part->mapping[k][0] + n];
    }
    fa_pdm_calc_params(model->pdm, target, state->params_global, state->params_local);
    *fitted = tracker->main.params_global[0] > 0.9 * model->settings.patch_scaling[0];
    if (*fitted) { /* the part's DetectLandmarks: no parts of its own, no validation */
        int success;
        fa_status status = fa_clnf_fit(model, model->settings.windows_init, &callbacks->parts[p],
                                       &tracker->part_workspaces[p], state, &success, error);
        if (status != FA_OK) return status;
        state->detection_success = success;
        state->detection_certainty = success ? 1.0f : 0.0f;
    }
    fa_pdm_shape_2d(model->pdm, state->params_global, state->params_local, state->landmarks);
    return FA_OK;
}

typedef struct parts_job {
    const fa_clnf_system_t *system;
    fa_clnf_tracker_t *tracker;
    const fa_clnf_callbacks_t *callbacks;
    int fitted[FA_CLNF_MAX_PARTS];
    fa_status status[FA_CLNF_MAX_PARTS];
    fa_error_t errors[FA_CLNF_MAX_PARTS];
} parts_job_t;

static void fit_part_task(void *context, int p, int participant) {
    (void)participant;
    parts_job_t *job = context;
    job->status[p] = fit_part(job->system, job->tracker, job->callbacks, p, &job->fitted[p],
                              &job->errors[p]);
}

/* Hierarchical refinement: the parts (each from the main landmarks alone, so they may run at
 * once), written back in order (so the eyes override the inner model on the eye points), then
 * a CalcParams re-fit of the main model, only if the parts were fitted. */
static fa_status refine_parts(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                              const fa_clnf_callbacks_t *callbacks, fa_error_t *error) {
    parts_job_t job = {.system = system, .tracker = tracker, .callbacks = callbacks};
    fa_pool_for(callbacks->pool, system->part_count, fit_part_task, &job);
    int parts_used = 0;
    for (int p = 0; p < system->part_count; p++) {
        if (job.status[p] != FA_OK) {
            if (error) *error = job.errors[p];
            return job.status[p];
        }
        parts_used |= job.fitted[p];
    }
    if (!parts_used) return FA_OK;
    fa_clnf_state_t *state = &tracker->main;
    const fa_pdm_t *pdm = system->main->pdm;
    int n = pdm->point_count;
    for (int p = 0; p < system->part_count; p++) {
        const fa_clnf_part_t *part = &system->parts[p];
        int part_n = part->model->pdm->point_count;
        for (int k = 0; k < part->mapping_count; k++) {
            state->landmarks[part->mapping[k][0]] =
                tracker->parts[p].landmarks[part->mapping[k][1]];
            state->landmarks[part->mapping[k][0] + n] =
                tracker->parts[p].landmarks[part->mapping[k][1] + part_n];
        }
    }
    fa_pdm_calc_params(pdm, state->landmarks, state->params_global, state->params_local);
    fa_pdm_shape_2d(pdm, state->params_global, state->params_local, state->landmarks);
    return FA_OK;
}

fa_status fa_clnf_detect_landmarks(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                                   const fa_clnf_callbacks_t *callbacks,
                                   const int windows[FA_CLNF_MAX_SCALES], int *success,
                                   fa_error_t *error) {
    fa_status status = check_system(system, callbacks, error);
    if (status != FA_OK) return status;
    fa_clnf_state_t *state = &tracker->main;
    int fit_success;
    status = fa_clnf_fit(system->main, windows, &callbacks->main, &tracker->workspace, state,
                         &fit_success, error);
    if (status != FA_OK) return status;
    fa_pdm_shape_2d(system->main->pdm, state->params_global, state->params_local, state->landmarks);
    if (system->refine_hierarchical && system->part_count > 0) {
        /* Runs even when the fit failed. */
        status = refine_parts(system, tracker, callbacks, error);
        if (status != FA_OK) return status;
    }
    if (system->validate_detections && fit_success) {
        const float orientation[3] = {state->params_global[1], state->params_global[2],
                                      state->params_global[3]};
        float certainty = 0;
        status = callbacks->validate(callbacks->validate_context, orientation, state->landmarks,
                                     &certainty, error);
        if (status != FA_OK) return status;
        state->detection_certainty = certainty;
        state->detection_success = certainty > system->validation_boundary;
    } else {
        state->detection_success = fit_success;
        state->detection_certainty = fit_success ? 1.0f : 0.0f;
    }
    *success = state->detection_success;
    return FA_OK;
}

/* The part state a hypothesis hands on: parameters and landmarks, not likelihood or success. */
static void restore_part(fa_clnf_state_t *part, const fa_clnf_state_t *best) {
    memcpy(part->params_global, best->params_global, sizeof part->params_global);
    memcpy(part->params_local, best->params_local, sizeof part->params_local);
    memcpy(part->landmarks, best->landmarks, sizeof part->landmarks);
    memcpy(part->landmark_likelihoods, best->landmark_likelihoods,
           sizeof part->landmark_likelihoods);
}

fa_status fa_clnf_detect_in_box(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                                const fa_clnf_callbacks_t *callbacks, const float box[4],
                                int *success, fa_error_t *error) {
    fa_status status = check_system(system, callbacks, error);
    if (status != FA_OK) return status;
    fa_clnf_state_t *state = &tracker->main;
    int best_success = 0;
    for (int h = 0; h < FA_CLNF_HYPOTHESES; h++) {
        memset(state->params_local, 0, sizeof state->params_local);
        for (int p = 0; p < system->part_count; p++)
            memset(tracker->parts[p].params_local, 0, sizeof tracker->parts[p].params_local);
        const float rotation[3] = {(float)rotation_hypotheses[h][0],
                                   (float)rotation_hypotheses[h][1],
                                   (float)rotation_hypotheses[h][2]};
        fa_pdm_params_from_box(system->main->pdm, box, state->params_local, rotation,
                               state->params_global);
        int hypothesis_success;
        status = fa_clnf_detect_landmarks(system, tracker, callbacks,
                                          system->main->settings.windows_init, &hypothesis_success,
                                          error);
        if (status != FA_OK) return status;
        if (callbacks->hypothesis_done) callbacks->hypothesis_done(callbacks->hypothesis_context);
        /* The first hypothesis is the initial best; later ones must be strictly better. */
        if (h == 0 || tracker->best_main.model_likelihood < state->model_likelihood) {
            tracker->best_main = *state;
            best_success = hypothesis_success;
            for (int p = 0; p < system->part_count; p++)
                tracker->best_parts[p] = tracker->parts[p];
        }
    }
    *state = tracker->best_main;
    state->detection_success = best_success;
    for (int p = 0; p < system->part_count; p++)
        restore_part(&tracker->parts[p], &tracker->best_parts[p]);
    *success = best_success;
    return FA_OK;
}

/* Whether DetectLandmarksInVideo runs the face detector on this frame. */
static int detection_due(const fa_clnf_system_t *system, const fa_clnf_tracker_t *tracker) {
    int every = system->reinit_video_every, failures = tracker->failures_in_a_row;
    if (!tracker->tracking_initialised) return every * 6 != 0 && (failures + 1) % (every * 6) == 0;
    return !tracker->main.detection_success && every > 0 && failures % every == 0;
}

/* A (re-)detection from a found face box; it finishes the frame, *success is the frame's
 * return value. */
static fa_status redetect(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                          const fa_clnf_callbacks_t *callbacks, const float box[4], int initial,
                          int *success, fa_error_t *error) {
    fa_clnf_state_t *state = &tracker->main;
    tracker->tracking_initialised = 1;
    tracker->saved_main = *state;
    memset(state->params_local, 0, sizeof state->params_local);
    const float no_rotation[3] = {0, 0, 0};
    fa_pdm_params_from_box(system->main->pdm, box, state->params_local, no_rotation,
                           state->params_global);
    int ok;
    fa_status status = fa_clnf_detect_in_box(system, tracker, callbacks, box, &ok, error);
    if (status != FA_OK) return status;
    if (!initial && !ok) {
        /* Undo the parameters, likelihoods and landmarks; success, certainty and the parts
         * keep the failed re-detection's values. */
        const fa_clnf_state_t *saved = &tracker->saved_main;
        memcpy(state->params_global, saved->params_global, sizeof state->params_global);
        memcpy(state->params_local, saved->params_local, sizeof state->params_local);
        memcpy(state->landmarks, saved->landmarks, sizeof state->landmarks);
        memcpy(state->landmark_likelihoods, saved->landmark_likelihoods,
               sizeof state->landmark_likelihoods);
        state->model_likelihood = saved->model_likelihood;
        tracker->last_restored = 1;
        *success = 0;
        return FA_OK;
    }
    /* An initial detection is kept even if validation failed. */
    tracker->failures_in_a_row = -1;
    *success = 1;
    return FA_OK;
}

fa_status fa_clnf_track(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                        const fa_clnf_callbacks_t *callbacks, int *success, fa_error_t *error) {
    fa_status status = check_system(system, callbacks, error);
    if (status != FA_OK) return status;
    if (!callbacks->detect) return fa_error_set(error, FA_ERROR_ARGUMENT, "CLNF: no detector");
    tracker->last_tracked = tracker->last_detection = tracker->last_restored = 0;
    int initial = !tracker->tracking_initialised;
    if (tracker->tracking_initialised) {
        const fa_clnf_settings_t *settings = &system->main->settings;
        const int *windows =
            tracker->main.detection_success ? settings->windows_track : settings->windows_init;
        int tracked;
        status = fa_clnf_detect_landmarks(system, tracker, callbacks, windows, &tracked, error);
        if (status != FA_OK) return status;
        tracker->last_tracked = 1;
        tracker->failures_in_a_row = tracked ? -1 : tracker->failures_in_a_row + 1;
    }
    if (detection_due(system, tracker)) {
        float box[4] = {0};
        int found = 0;
        status = callbacks->detect(callbacks->detect_context, box, &found, error);
        if (status != FA_OK) return status;
        tracker->last_detection = 1;
        if (found) return redetect(system, tracker, callbacks, box, initial, success, error);
    }
    if (!tracker->tracking_initialised) tracker->failures_in_a_row++;
    if (tracker->failures_in_a_row > 100) tracker->tracking_initialised = 0;
    *success = tracker->main.detection_success;
    return FA_OK;
}
