/* The eye part models' share of a frame's result (LANDMARKS_SPEC §6.5, §6.6): OpenFace's eye
 * landmarks in 2D (the parts' detected landmarks) and 3D (their GetShape), and the gaze of both
 * eyes. The parts' state is copied on the tracking thread (fa_tracked_eyes_capture) and turned
 * into results after the head pose (fa_eyes_result), so that the two halves of a frame may run
 * on different threads. */
#ifndef FACEAU_PIPELINE_EYES_H
#define FACEAU_PIPELINE_EYES_H

#include "faceau.h"
#include "gaze/gaze.h"
#include "landmarks/clnf_fit.h"
#include "landmarks/clnf_model.h"
#include "pose/pose.h"

enum { FA_EYE_PARTS = 2, FA_EYE_PART_POINTS = FA_NUM_EYE_LANDMARKS / FA_EYE_PARTS };

/* The eye models of a model set: the parts named left_eye_28 and right_eye_28, in file order
 * (the order of OpenFace's eye landmark columns). count is 0 unless the set has exactly one of
 * each, with 28 points. */
typedef struct fa_eye_parts {
    int count;
    int part[FA_EYE_PARTS];         /* index among the set's parts */
    fa_gaze_eye side[FA_EYE_PARTS]; /* which eye each is (GazeAnalysis picks them by name) */
    const fa_pdm_t *pdm[FA_EYE_PARTS];
} fa_eye_parts_t;

void fa_eye_parts_find(const fa_clnf_set_t *set, fa_eye_parts_t *eyes);

/* The eye parts' state after a frame: what CalculateAllEyeLandmarks and GetShape read. */
typedef struct fa_tracked_eyes {
    const fa_eye_parts_t *parts; /* NULL or count 0: no eye models (given landmarks) */
    float params_global[FA_EYE_PARTS][6];
    float params_local[FA_EYE_PARTS][FA_PDM_MAX_MODES];
    float landmarks[FA_EYE_PARTS][2 * FA_EYE_PART_POINTS];
} fa_tracked_eyes_t;

/* Copies the eye parts' states (states: the tracker's parts, in set order). */
void fa_tracked_eyes_capture(const fa_eye_parts_t *parts, const fa_clnf_state_t *states,
                             fa_tracked_eyes_t *eyes);

/* Fills result's eye fields: the eye landmarks on every frame, the gaze when result->success
 * (FeatureExtraction's rule), from result's pose and 3D face landmarks (computed before). Without
 * eye models everything stays zero and eye_landmark_count is 0. */
void fa_eyes_result(const fa_tracked_eyes_t *eyes, const fa_camera_t *camera,
                    fa_frame_result_t *result);

#endif
