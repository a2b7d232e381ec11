/* Head pose and 3D landmarks as OpenFace 2.2 writes them (LANDMARKS_SPEC §6.1-§6.3):
 * - the pose is LandmarkDetector::GetPose, i.e. cv::solvePnP (SOLVEPNP_ITERATIVE with an
 *   extrinsic guess) of the unrotated PDM shape to the 2D landmarks, reproduced from OpenCV 4.6's
 *   Levenberg-Marquardt refinement (cvFindExtrinsicCameraParams2 / CvLevMarq), in double;
 * - the 3D landmarks are CLNF::GetShape: the rotated PDM shape's depth at the weak-perspective
 *   distance fx / scale, back-projected through the 2D landmarks.
 * Nothing here allocates or keeps state: every function is safe to call from many threads. */
#ifndef FACEAU_POSE_POSE_H
#define FACEAU_POSE_POSE_H

#include "pdm/pdm.h"

/* Pinhole intrinsics in pixels, float as OpenFace keeps them. */
typedef struct fa_camera {
    float fx, fy, cx, cy;
} fa_camera_t;

/* OpenFace's intrinsics when none are given (SequenceCapture::SetCameraIntrinsics):
 * fx = fy = (500 W / 640 + 500 H / 480) / 2, cx = W / 2, cy = H / 2. */
void fa_camera_default(int width, int height, fa_camera_t *camera);

/* GetPose: pose = (Tx, Ty, Tz) in mm in the camera frame, then the Euler angles (Rx, Ry, Rz) in
 * radians. params_global = (scale, rx, ry, rz, tx, ty) seeds the refinement (the Euler angles are
 * used as an axis-angle vector, as OpenFace does); landmarks are x0..x(n-1), y0..y(n-1). A zero
 * scale gives an all-zero pose, as in OpenFace. The values are those OpenFace stores in float. */
void fa_pose_estimate(const fa_pdm_t *pdm, const float params_global[6], const float *params_local,
                      const float *landmarks, const fa_camera_t *camera, double pose[6]);

/* GetShape: the 3D landmarks in mm, X0..X(n-1), Y0..Y(n-1), Z0..Z(n-1) (3 * point_count). */
void fa_pose_landmarks_3d(const fa_pdm_t *pdm, const float params_global[6],
                          const float *params_local, const float *landmarks,
                          const fa_camera_t *camera, float *points);

/* cv::Rodrigues of a float axis-angle vector (computed in double, rounded to float). */
void fa_axis_angle_to_rotation(const float axis_angle[3], float rotation[3][3]);

#endif
