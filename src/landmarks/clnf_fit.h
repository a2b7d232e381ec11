/* CLNF landmark fitting as OpenFace 2.2 runs it (LANDMARKS_SPEC §3, §5): the KDE mean-shift,
 * NU-RLMS, the per-scale Fit, DetectLandmarks with hierarchical part models, the multi-view
 * initialisation and the video tracking state machine.
 *
 * The patch experts, the face detector and the detection validator are not called directly:
 * they are injected as callbacks, so this file depends only on the PDM. Models
 * (fa_clnf_model_t) are immutable after fa_clnf_model_init and can be shared between threads;
 * all per-video state and scratch memory lives in an fa_clnf_tracker_t, which allocates
 * nothing after it is created. Nothing here prints. */
#ifndef FACEAU_LANDMARKS_CLNF_FIT_H
#define FACEAU_LANDMARKS_CLNF_FIT_H

#include "core/error.h"
#include "core/pool.h"
#include "pdm/pdm.h"

enum {
    FA_CLNF_MAX_POINTS = FA_PDM_MAX_POINTS, /* 68 */
    FA_CLNF_MAX_MODES = FA_PDM_MAX_MODES,   /* 34 */
    FA_CLNF_MAX_PARAMS = 6 + FA_CLNF_MAX_MODES,
    FA_CLNF_MAX_WINDOW = 11, /* largest response map side */
    FA_CLNF_MAX_SCALES = 4,  /* OpenFace's window lists have four entries */
    FA_CLNF_MAX_PARTS = 3,   /* inner, left eye, right eye */
    FA_CLNF_HYPOTHESES = 11, /* rotations tried by the multi-view initialisation */
};

/* The fitting parameters of one CLNF (OpenFace's FaceModelParameters, the part the fit reads,
 * and the patch scalings of the model's CCNF files). */
typedef struct fa_clnf_settings {
    float sigma, reg_factor, weight_factor;
    int iterations;        /* NU-RLMS iterations per call (5) */
    int refine_parameters; /* adapt sigma, reg and weight per scale (main model only) */
    int scale_count;       /* number of patch expert scales */
    double patch_scaling[FA_CLNF_MAX_SCALES];
    int windows_init[FA_CLNF_MAX_SCALES];  /* after a failure or for a detection; 0 = skip */
    int windows_track[FA_CLNF_MAX_SCALES]; /* after a success */
} fa_clnf_settings_t;

/* OpenFace's defaults for main_clnf_general's models (LANDMARKS_SPEC §3.1), for tests that run
 * without the model files; the tracker takes them from the files (fa_clnf_detector_settings),
 * and test_clnf_model checks that both agree. */
void fa_clnf_settings_main(fa_clnf_settings_t *settings);  /* 68 points, 3 scales */
void fa_clnf_settings_inner(fa_clnf_settings_t *settings); /* 51 points, 1 scale */
void fa_clnf_settings_eye(fa_clnf_settings_t *settings);   /* 28 points, 2 scales */

/* A model: its PDM (borrowed, must outlive the model), settings, the 3-sigma clamp of each
 * mode, and the KDE tables of the mean-shift, one per window size. OpenFace caches a table
 * per window size at its first use, with that call's sigma; init builds them in the order of
 * first use (the init windows, scale by scale, then the tracking windows). */
typedef struct fa_clnf_model {
    const fa_pdm_t *pdm;
    fa_clnf_settings_t settings;
    float clamp[FA_CLNF_MAX_MODES];
    float *kde[FA_CLNF_MAX_WINDOW + 1];      /* (10W)^2 rows of W^2 values; NULL if not tracked */
    float kde_sigma[FA_CLNF_MAX_WINDOW + 1]; /* 0 if the window is unused */
} fa_clnf_model_t;

fa_status fa_clnf_model_init(fa_clnf_model_t *model, const fa_pdm_t *pdm,
                             const fa_clnf_settings_t *settings, fa_error_t *error);
void fa_clnf_model_release(fa_clnf_model_t *model);

/* The KDE table row for grid position (gx, gy) = (dx, dy) / 0.1 of a window (W^2 values,
 * row-major over the response map): in the table, or for a window without one computed into
 * scratch (W^2 floats); NULL for an unused window or a position off the grid. */
const float *fa_clnf_kde_row(const fa_clnf_model_t *model, int window, int gx, int gy,
                             float *scratch);
/* Floats in the KDE table of a window (1 to FA_CLNF_MAX_WINDOW). */
size_t fa_clnf_kde_size(int window);

/* ---------------------------------------------------------------------------------------------
 * Response provider: what the CCNF patch experts give the fit for one scale. */

typedef struct fa_clnf_responses {
    /* point_count maps of window x window floats, row-major. Preset to a workspace buffer
     * of FA_CLNF_MAX_POINTS x 11 x 11 floats; the provider fills it or points elsewhere. */
    float *maps;
    float img_to_ref[4], ref_to_img[4]; /* sim_img_to_ref and its inverse, 2x2 row-major */
    int view;                           /* the patch experts' view index (informative) */
    const int *visible;                 /* per point: 0 = no expert in this view */
    const float *confidence;            /* per point patch_confidence; read if weight > 0 */
} fa_clnf_responses_t;

/* Fills responses->maps (window x window per point, OpenFace's response after the Sigma
 * correction), the similarity transforms, the view and the visibility/confidence pointers
 * (which must stay valid until the next call), for patch scale index `scale` around the shape
 * of (params_global, params_local). */
typedef fa_status (*fa_clnf_respond_fn)(void *context, int scale, int window,
                                        const float params_global[6], const float *params_local,
                                        fa_clnf_responses_t *responses, fa_error_t *error);

typedef struct fa_clnf_provider {
    fa_clnf_respond_fn respond;
    void *context;
} fa_clnf_provider_t;

/* ---------------------------------------------------------------------------------------------
 * One model's state (the members of OpenFace's CLNF that the fit reads and writes). */

typedef struct fa_clnf_state {
    float params_global[6]; /* scale, rx, ry, rz, tx, ty */
    float params_local[FA_CLNF_MAX_MODES];
    float landmarks[2 * FA_CLNF_MAX_POINTS]; /* detected_landmarks: x0.., then y0.. */
    float landmark_likelihoods[FA_CLNF_MAX_POINTS];
    float model_likelihood;
    float detection_certainty;
    int detection_success;
} fa_clnf_state_t;

/* OpenFace's state after loading and after Reset(). */
void fa_clnf_state_reset(fa_clnf_state_t *state);

/* Scratch memory of one fit (about 90 KB); one per thread. */
typedef struct fa_clnf_workspace {
    float maps[FA_CLNF_MAX_POINTS * FA_CLNF_MAX_WINDOW * FA_CLNF_MAX_WINDOW];
    float jacobian[2 * FA_CLNF_MAX_POINTS * FA_CLNF_MAX_PARAMS];
    float weighted[2 * FA_CLNF_MAX_POINTS * FA_CLNF_MAX_PARAMS];
    float hessian[FA_CLNF_MAX_PARAMS * FA_CLNF_MAX_PARAMS];
} fa_clnf_workspace_t;

/* The parameters of one NU-RLMS call. */
typedef struct fa_clnf_rlms {
    int window;
    int rigid;              /* 1: the 6 global parameters only */
    int compute_likelihood; /* 1: return the log-likelihood, fill landmark_likelihoods */
    float sigma, reg_factor, weight_factor;
} fa_clnf_rlms_t;

/* OpenFace's CLNF::NU_RLMS: refines (params_global, params_local) in place against the
 * responses (workspace->maps is not touched: responses->maps may point to it), with
 * base_shape the 2D shape the maps are centred on. Returns the log-likelihood (0 unless
 * requested); landmark_likelihoods (point_count) is written only when requested. */
float fa_clnf_nu_rlms(const fa_clnf_model_t *model, const fa_clnf_responses_t *responses,
                      const float *base_shape, const fa_clnf_rlms_t *rlms, float params_global[6],
                      float *params_local, float *landmark_likelihoods,
                      fa_clnf_workspace_t *workspace);

/* OpenFace's CLNF::Fit over the scales with the given window list (0 = skip a scale). Updates
 * state->params_*, model_likelihood and landmark_likelihoods; *success = 0 when the face became
 * too small (scale < 0.25), the only way it fails. */
fa_status fa_clnf_fit(const fa_clnf_model_t *model, const int windows[FA_CLNF_MAX_SCALES],
                      const fa_clnf_provider_t *provider, fa_clnf_workspace_t *workspace,
                      fa_clnf_state_t *state, int *success, fa_error_t *error);

/* ---------------------------------------------------------------------------------------------
 * The main model with its parts, detection, validation and tracking. */

typedef struct fa_clnf_part {
    const fa_clnf_model_t *model;
    int mapping_count;
    int mapping[FA_CLNF_MAX_POINTS][2]; /* (main point, part point) pairs, file order */
} fa_clnf_part_t;

/* What OpenFace's face model holds, immutable: main model, parts in file order (inner, left
 * eye, right eye) and the validation switches. */
typedef struct fa_clnf_system {
    const fa_clnf_model_t *main;
    int part_count;
    fa_clnf_part_t parts[FA_CLNF_MAX_PARTS];
    int refine_hierarchical;   /* 1 */
    int validate_detections;   /* 1 */
    float validation_boundary; /* 0.725 */
    int reinit_video_every;    /* 2 */
} fa_clnf_system_t;

/* The validator's certainty for landmarks (2 * main point count) at orientation (rx, ry, rz):
 * OpenFace's DetectionValidator::Check on the frame the context holds. */
typedef fa_status (*fa_clnf_validate_fn)(void *context, const float orientation[3],
                                         const float *landmarks, float *certainty,
                                         fa_error_t *error);
/* One face box (x, y, width, height), as DetectSingleFaceMTCNN returns it, or *found = 0. */
typedef fa_status (*fa_clnf_detect_fn)(void *context, float box[4], int *found, fa_error_t *error);

/* The per-frame callbacks; their contexts hold the frame. */
typedef struct fa_clnf_callbacks {
    fa_clnf_provider_t main;
    fa_clnf_provider_t parts[FA_CLNF_MAX_PARTS];
    fa_clnf_validate_fn validate;
    void *validate_context;
    fa_clnf_detect_fn detect;
    void *detect_context;
    /* Fits the parts at once when not NULL (they are independent, as OpenFace's parallel_for
     * over them); the parts' providers must then be safe to call concurrently. */
    fa_pool_t *pool;
    /* Called after each rotation hypothesis of a multi-view detection when not NULL: each
     * hypothesis reads the patch experts of its own views, so what the last one read may be
     * given back (the model cache drops those pages from memory). */
    void (*hypothesis_done)(void *context);
    void *hypothesis_context;
} fa_clnf_callbacks_t;

/* Per-video state: OpenFace's CLNF members, its parts', and the fit's scratch memory. */
typedef struct fa_clnf_tracker {
    fa_clnf_state_t main;
    fa_clnf_state_t parts[FA_CLNF_MAX_PARTS];
    int tracking_initialised;
    int failures_in_a_row;
    /* What the last fa_clnf_track call did (for callers and tests). */
    int last_tracked;   /* ran the tracking step */
    int last_detection; /* called the face detector */
    int last_restored;  /* a failed re-detection was undone */
    fa_clnf_workspace_t workspace;
    fa_clnf_workspace_t part_workspaces[FA_CLNF_MAX_PARTS];
    fa_clnf_state_t best_main, saved_main; /* multi-view and re-detection scratch */
    fa_clnf_state_t best_parts[FA_CLNF_MAX_PARTS];
} fa_clnf_tracker_t;

/* Creates a tracker in OpenFace's initial state (heap, so that the workspace is not on a
 * stack); fa_clnf_tracker_reset is OpenFace's Reset() (the parts are not reset, as there). */
fa_status fa_clnf_tracker_create(fa_clnf_tracker_t **tracker, fa_error_t *error);
void fa_clnf_tracker_destroy(fa_clnf_tracker_t *tracker);
void fa_clnf_tracker_reset(fa_clnf_tracker_t *tracker);

/* CLNF::DetectLandmarks: Fit with windows, hierarchical refinement, validation. Sets
 * tracker->main's success and certainty; *success is the detection success. */
fa_status fa_clnf_detect_landmarks(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                                   const fa_clnf_callbacks_t *callbacks,
                                   const int windows[FA_CLNF_MAX_SCALES], int *success,
                                   fa_error_t *error);

/* DetectLandmarksInImage with multi_view: the 11 rotation hypotheses from a face box, the best
 * by model likelihood kept. *success is the best hypothesis's detection success. */
fa_status fa_clnf_detect_in_box(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                                const fa_clnf_callbacks_t *callbacks, const float box[4],
                                int *success, fa_error_t *error);

/* DetectLandmarksInVideo for one frame. *success is its return value (the CSV "success");
 * tracker->main.detection_success is the model's (what the AU stage is given). */
fa_status fa_clnf_track(const fa_clnf_system_t *system, fa_clnf_tracker_t *tracker,
                        const fa_clnf_callbacks_t *callbacks, int *success, fa_error_t *error);

#endif
