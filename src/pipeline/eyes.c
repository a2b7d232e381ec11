#include "pipeline/eyes.h"

#include <string.h>

void fa_eye_parts_find(const fa_clnf_set_t *set, fa_eye_parts_t *eyes) {
    memset(eyes, 0, sizeof *eyes);
    int seen[FA_EYE_PARTS] = {0};
    for (int p = 0; p < set->part_count; p++) {
        const char *name = set->parts[p].name;
        int left = strcmp(name, "left_eye_28") == 0, right = strcmp(name, "right_eye_28") == 0;
        if (!left && !right) continue;
        fa_gaze_eye side = left ? FA_GAZE_LEFT : FA_GAZE_RIGHT;
        if (seen[side]++ || eyes->count == FA_EYE_PARTS ||
            set->parts[p].detector.pdm.point_count != FA_EYE_PART_POINTS) {
            eyes->count = FA_EYE_PARTS + 1; /* not the pair of 28-point eyes: none */
            break;
        }
        eyes->part[eyes->count] = p;
        eyes->side[eyes->count] = side;
        eyes->pdm[eyes->count] = &set->parts[p].detector.pdm;
        eyes->count++;
    }
    if (eyes->count != FA_EYE_PARTS) memset(eyes, 0, sizeof *eyes);
}

void fa_tracked_eyes_capture(const fa_eye_parts_t *parts, const fa_clnf_state_t *states,
                             fa_tracked_eyes_t *eyes) {
    eyes->parts = parts;
    for (int e = 0; parts && e < parts->count; e++) {
        const fa_clnf_state_t *state = &states[parts->part[e]];
        memcpy(eyes->params_global[e], state->params_global, sizeof eyes->params_global[e]);
        memcpy(eyes->params_local[e], state->params_local, sizeof eyes->params_local[e]);
        memcpy(eyes->landmarks[e], state->landmarks, sizeof eyes->landmarks[e]);
    }
}

void fa_eyes_result(const fa_tracked_eyes_t *eyes, const fa_camera_t *camera,
                    fa_frame_result_t *result) {
    const fa_eye_parts_t *parts = eyes->parts;
    result->eye_landmark_count = 0;
    memset(result->gaze_0, 0, sizeof result->gaze_0);
    memset(result->gaze_1, 0, sizeof result->gaze_1);
    memset(result->gaze_angle, 0, sizeof result->gaze_angle);
    memset(result->eye_landmarks, 0, sizeof result->eye_landmarks);
    memset(result->eye_landmarks_3d, 0, sizeof result->eye_landmarks_3d);
    if (!parts || parts->count != FA_EYE_PARTS) return;
    enum { N = FA_EYE_PART_POINTS, ALL = FA_NUM_EYE_LANDMARKS };
    float points[FA_EYE_PARTS][3 * N]; /* GetShape of each eye part */
    for (int e = 0; e < FA_EYE_PARTS; e++) {
        fa_pose_landmarks_3d(parts->pdm[e], eyes->params_global[e], eyes->params_local[e],
                             eyes->landmarks[e], camera, points[e]);
        for (int i = 0; i < N; i++) {
            result->eye_landmarks[e * N + i] = eyes->landmarks[e][i];
            result->eye_landmarks[ALL + e * N + i] = eyes->landmarks[e][N + i];
            for (int axis = 0; axis < 3; axis++)
                result->eye_landmarks_3d[axis * ALL + e * N + i] = points[e][axis * N + i];
        }
    }
    result->eye_landmark_count = ALL;
    if (!result->success) return;
    const float head_rotation[3] = {(float)result->pose[3], (float)result->pose[4],
                                    (float)result->pose[5]};
    for (int e = 0; e < FA_EYE_PARTS; e++)
        fa_gaze_estimate(head_rotation, points[e], N, result->landmarks_3d, parts->side[e],
                         parts->side[e] == FA_GAZE_LEFT ? result->gaze_0 : result->gaze_1);
    fa_gaze_angle(result->gaze_0, result->gaze_1, result->gaze_angle);
}
