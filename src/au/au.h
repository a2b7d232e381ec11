/* AU prediction (PIPELINE_SPEC §7-§8): model lists and SVR/SVM readers, running medians,
 * per-frame prediction, online correction and the offline post-processing. */
#ifndef FACEAU_AU_AU_H
#define FACEAU_AU_AU_H

#include <stddef.h>

#include "core/error.h"

/* The predictors named by AU_predictors/main_dynamic_svms.txt (or main_static_svms.txt). */
typedef struct fa_au_models fa_au_models_t;

/* Reads <au_directory>/main_dynamic_svms.txt (or main_static_svms.txt when static_models) and the
 * predictors it names. pdm_path and triangulation_path receive the paths of the PDM and
 * triangulation files it names (joined with au_directory). */
fa_status fa_au_models_load(const char *au_directory, int static_models, fa_au_models_t **models,
                            char *pdm_path, size_t pdm_path_size, char *triangulation_path,
                            size_t triangulation_path_size, fa_error_t *error);
void fa_au_models_free(fa_au_models_t *models);

/* Counts and names of the outputs, sorted by name as OpenFace's CSV orders them. */
int fa_au_models_count(const fa_au_models_t *models, int presence);
const char *fa_au_models_name(const fa_au_models_t *models, int presence, int index);

/* Per-video state: running medians, prediction history for post-processing. */
typedef struct fa_au_state fa_au_state_t;

fa_status fa_au_state_create(const fa_au_models_t *models, int online, fa_au_state_t **state,
                             fa_error_t *error);
void fa_au_state_free(fa_au_state_t *state);

/* One frame, as FaceAnalyser::AddNextFrame: hog (FA_HOG_SIZE), geometry (FA_GEOMETRY_SIZE).
 * Writes the per-frame intensity and presence values in sorted-name order. */
fa_status fa_au_state_add_frame(fa_au_state_t *state, const float *hog, const double *geometry,
                                int success, double *intensity, double *presence,
                                fa_error_t *error);

/* Offline post-processing over every frame added (§8.6): the per-AU offsets and the
 * re-prediction of the first successful frames; then fa_au_state_next_row gives the finished
 * values frame by frame. Memory: one intensity column (8 bytes per frame) while an offset is
 * computed, otherwise constant. */
fa_status fa_au_state_postprocess(fa_au_state_t *state, size_t *frame_count, fa_error_t *error);

/* The next frame's finished values (sorted-name order), from the first frame on;
 * FA_ERROR_END after the last. */
fa_status fa_au_state_next_row(fa_au_state_t *state, double *intensity, double *presence,
                               fa_error_t *error);

/* Both at once into frame_count-row matrices owned by the state (for tests: memory grows with
 * the frames). */
fa_status fa_au_state_postprocess_all(fa_au_state_t *state, size_t *frame_count,
                                      const double **intensity, const double **presence,
                                      fa_error_t *error);

#endif
