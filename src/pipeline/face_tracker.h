/* The face tracker of OpenFace's FeatureExtraction with main_clnf_general.txt: MTCNN detection,
 * CLNF fitting with CCNF patch experts and hierarchical parts, the CNN validator, the video
 * tracking state machine, head pose and 3D landmarks (LANDMARKS_SPEC). Wires the stages of
 * src/detect, src/landmarks and src/pose together. */
#ifndef FACEAU_PIPELINE_FACE_TRACKER_H
#define FACEAU_PIPELINE_FACE_TRACKER_H

#include "core/error.h"
#include "core/pool.h"
#include "detect/mtcnn.h"
#include "landmarks/clnf_fit.h"
#include "landmarks/clnf_model.h"
#include "landmarks/validator.h"
#include "pipeline/eyes.h"
#include "pose/pose.h"

/* Immutable once loaded; shared by every video. */
typedef struct fa_face_models {
    fa_mtcnn_t mtcnn;
    fa_clnf_set_t set;                           /* PDMs, patch experts, parameters */
    fa_clnf_model_t fit_main;                    /* the fitter's view of set.main */
    fa_clnf_model_t fit_parts[FA_CLNF_MAX_PARTS]; /* and of the parts */
    fa_clnf_system_t system;
    fa_validator_t validator;
    fa_eye_parts_t eyes; /* which parts are the eye models (gaze, eye landmarks) */
    /* The model cache these models were restored from (model_cache.h): the tracker gives its
     * pages back between a detection's hypotheses, after detections and on view changes. NULL
     * when loaded from text. */
    const struct fa_model_cache *cache;
} fa_face_models_t;

/* Loads <model_dir>/main_clnf_general.txt, the validator it names and
 * <model_dir>/mtcnn_detector/MTCNN_detector.txt; threads prepare the patch experts. */
fa_status fa_face_models_load(const char *model_dir, int threads, fa_face_models_t *models,
                              fa_error_t *error);
void fa_face_models_release(fa_face_models_t *models);

/* Points the fitter's system and models at the loaded model set (done by fa_face_models_load;
 * the model cache calls it after restoring the rest). */
void fa_face_models_link(fa_face_models_t *models);

/* One frame's tracking result, as FeatureExtraction writes it. */
typedef struct fa_tracked_face {
    int success;       /* DetectLandmarksInVideo's return value: the CSV "success" */
    int model_success; /* the model's detection_success: what the AU stage is given */
    double confidence; /* detection certainty */
    int detector_ran;  /* MTCNN ran on this frame */
    float landmarks[2 * 68];
    float params_global[6];
    float params_local[34];
    fa_tracked_eyes_t eyes; /* the eye models' state, for eye landmarks and gaze */
} fa_tracked_face_t;

typedef struct fa_face_tracker fa_face_tracker_t;

/* pool (may be NULL) shares out the patch responses; it must outlive the tracker. */
fa_status fa_face_tracker_create(const fa_face_models_t *models, fa_pool_t *pool,
                                 fa_face_tracker_t **tracker, fa_error_t *error);
void fa_face_tracker_destroy(fa_face_tracker_t *tracker);

/* A frame as the tracker reads it: OpenCV's BGR2GRAY bytes (the validator, and the patch
 * experts, which OpenFace gives a float copy of the same values). Prepared on another thread,
 * it takes that work off the tracking thread; the buffer grows with the frame size. */
typedef struct fa_tracker_frame {
    fa_image_t gray;
} fa_tracker_frame_t;

fa_status fa_tracker_frame_prepare(fa_tracker_frame_t *prepared, const fa_image_t *frame,
                                   fa_error_t *error);
void fa_tracker_frame_release(fa_tracker_frame_t *prepared);

/* Tracks the face in the next frame (BGR), prepared with fa_tracker_frame_prepare or NULL (then
 * prepared here). Frames may change size (buffers then grow). */
fa_status fa_face_tracker_process(fa_face_tracker_t *tracker, const fa_image_t *frame,
                                  const fa_tracker_frame_t *prepared, fa_tracked_face_t *face,
                                  fa_error_t *error);

#endif
