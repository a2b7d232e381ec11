/* OpenFace's CLNF model set as FeatureExtraction loads it from main_clnf_general.txt
 * (LANDMARKS_SPEC §1.2–§1.4, §3.1): the main 68-point model and its part models (inner face,
 * eyes), each with its PDM, its CCNF patch experts (Sigmas prepared for every window its
 * parameters can ask for) and the fitting parameters OpenFace gives it; the mapping between main
 * and part landmarks; the detection validator's path (the validator is read elsewhere).
 *
 * The model is immutable once loaded: share one between threads and videos. Per-video state
 * (parameters, landmarks, likelihoods; LANDMARKS_SPEC §1.8) belongs to the fitter. */
#ifndef FACEAU_LANDMARKS_CLNF_MODEL_H
#define FACEAU_LANDMARKS_CLNF_MODEL_H

#include "core/error.h"
#include "landmarks/ccnf.h"
#include "landmarks/clnf_fit.h"
#include "pdm/pdm.h"

enum {
    FA_CLNF_SET_MAX_PARTS = 8,    /* the shipped set has 3 */
    FA_CLNF_SET_MAX_WINDOWS = 4,  /* OpenFace's window lists have at most 4 entries */
    FA_CLNF_SET_NAME_SIZE = 64,   /* part names */
    FA_CLNF_SET_PATH_SIZE = 4096, /* validator path */
    FA_CLNF_SET_MAIN_POINTS = 68, /* the validator, pose and AU stages need 68 landmarks */
};

/* OpenFace's FaceModelParameters, the part that belongs to one CLNF. Window lists are indexed by
 * patch scale; 0 skips the scale. Only the first ccnf.scale_count entries are used. */
typedef struct fa_clnf_parameters {
    float sigma, reg_factor, weight_factor;       /* weight_factor > 0: NU-RLMS weighting */
    int iterations;                               /* NU-RLMS iterations per call */
    int window_count;                             /* entries in both lists */
    int windows_init[FA_CLNF_SET_MAX_WINDOWS];  /* detection, re-detection, after a failure */
    int windows_small[FA_CLNF_SET_MAX_WINDOWS]; /* tracking after a success */
    int refine_parameters;   /* adapt reg, sigma, weight per scale (fa_clnf_adapted_parameters) */
    int refine_hierarchical; /* fit the part models after the main fit */
    int validate_detections; /* run the detection validator */
    float validation_boundary;
} fa_clnf_parameters_t;

/* One CLNF (OpenFace's "LandmarkDetector" module): shape model, patch experts, parameters.
 * ccnf.scales[s].scaling is the patch scaling of scale s; every non-zero window of either list
 * is prepared at its scale. */
typedef struct fa_clnf_detector {
    fa_pdm_t pdm;
    fa_ccnf_t ccnf;
    fa_clnf_parameters_t parameters;
} fa_clnf_detector_t;

/* A part model ("LandmarkDetector_part"), with its (main landmark, part landmark) pairs in file
 * order. */
typedef struct fa_clnf_set_part {
    char name[FA_CLNF_SET_NAME_SIZE];
    fa_clnf_detector_t detector;
    int pair_count;
    int pairs[FA_PDM_MAX_POINTS][2];
} fa_clnf_set_part_t;

typedef struct fa_clnf_set {
    fa_clnf_detector_t main;
    int part_count;
    fa_clnf_set_part_t parts[FA_CLNF_SET_MAX_PARTS]; /* file order: inner, left, right eye */
    int eye_model; /* a part named left_eye_28 or right_eye_28: gaze and eye landmarks exist */
    char validator_path[FA_CLNF_SET_PATH_SIZE]; /* "" when the file names none */
} fa_clnf_set_t;

/* Loads the model set named by path (main_clnf_general.txt) and prepares every Sigma it needs,
 * with up to `threads` threads (0 = one per core). Errors name the offending file. On failure
 * model is left empty (safe to release). */
fa_status fa_clnf_set_load(const char *path, int threads, fa_clnf_set_t *model,
                             fa_error_t *error);
void fa_clnf_set_release(fa_clnf_set_t *model);

/* The window at patch scale `scale` of the initial (tracking = 0) or small (tracking = 1) list,
 * 0 when the scale is skipped. */
int fa_clnf_window(const fa_clnf_detector_t *detector, int scale, int tracking);

/* The parameters in effect at patch scale `scale` as CLNF::Fit derives them (LANDMARKS_SPEC §3.1):
 * with refine_parameters, reg, sigma and weight move with log2(scaling / 0.25) of scale
 * min(scale, 2), in double and stored as float as OpenFace does; otherwise they are the
 * detector's own. */
typedef struct fa_clnf_adapted {
    float reg_factor, sigma, weight_factor;
} fa_clnf_adapted_t;

fa_clnf_adapted_t fa_clnf_adapted_parameters(const fa_clnf_detector_t *detector, int scale);

/* The fitter's settings (clnf_fit.h) of a loaded detector: the model files are the one source of
 * the parameters; entries past the detector's scale count are 0. */
void fa_clnf_detector_settings(const fa_clnf_detector_t *detector, fa_clnf_settings_t *settings);

#endif
