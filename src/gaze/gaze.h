/* Gaze as OpenFace 2.2's GazeAnalysis computes it (LANDMARKS_SPEC §6.6): per eye, a ray from the
 * camera through the pupil (the mean of the eye model's iris ring in 3D) meets a 12 mm eyeball
 * placed behind the eye corners; the gaze is the unit vector from the eyeball centre to that
 * point. The float/double mix of OpenFace's code (with OpenCV's Point3f and Mat operators) is kept
 * operation by operation. No state, no allocation. */
#ifndef FACEAU_GAZE_GAZE_H
#define FACEAU_GAZE_GAZE_H

enum {
    FA_GAZE_FACE_POINTS = 68, /* the face's 3D landmarks the eyeball is placed from */
    FA_GAZE_IRIS_POINTS = 8,  /* eye-model points 0-7: the iris ring */
};

typedef enum fa_gaze_eye { FA_GAZE_LEFT = 0, FA_GAZE_RIGHT = 1 } fa_gaze_eye;

/* GazeAnalysis::EstimateGaze for one eye. head_rotation: the head pose's Euler angles (GetPose);
 * eye_points: the eye model's 3D landmarks (GetShape: X0.., Y0.., Z0.., eye_point_count >= 8
 * each); face_points: the face's 68 3D landmarks, likewise. The left eye (image left) sits
 * between face points 36 and 39, the right between 42 and 45. */
void fa_gaze_estimate(const float head_rotation[3], const float *eye_points, int eye_point_count,
                      const float *face_points, fa_gaze_eye eye, float gaze[3]);

/* GazeAnalysis::GetGazeAngle: atan2 of the (unnormalised) mean of both gaze vectors,
 * horizontal then vertical, in radians. */
void fa_gaze_angle(const float gaze_0[3], const float gaze_1[3], float angle[2]);

#endif
