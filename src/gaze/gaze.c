/* GazeAnalysis::EstimateGaze and GetGazeAngle (LANDMARKS_SPEC §6.6). Each step names the OpenFace
 * or OpenCV operation whose rounding it reproduces; sqrt and atan2 on float arguments resolve to
 * the double functions in OpenFace's build, as sin and cos do (pdm.c). */
#include "gaze/gaze.h"

#include <math.h>

#include "pdm/pdm.h"

static const float EYEBALL_RADIUS = 12; /* mm */
/* The eyeball centre relative to the middle of the eye corners, in head coordinates (mm). */
static const float EYEBALL_OFFSET[3] = {0, -3.5f, 7.0f};

/* cv::norm of a Point3f: double squares summed in order. */
static double point_norm(const float p[3]) {
    return sqrt((double)p[0] * p[0] + (double)p[1] * p[1] + (double)p[2] * p[2]);
}

/* Point3f / double: each coordinate divided in double, rounded to float. */
static void divide_point(const float p[3], double divisor, float out[3]) {
    for (int k = 0; k < 3; k++)
        out[k] = (float)(p[k] / divisor);
}

/* GetPupilPosition: cv::mean of each coordinate over the iris ring (a double sum times 1/8). */
static void pupil_position(const float *eye_points, int eye_point_count, float pupil[3]) {
    for (int axis = 0; axis < 3; axis++) {
        const float *coordinates = eye_points + axis * eye_point_count;
        double sum = 0;
        for (int i = 0; i < FA_GAZE_IRIS_POINTS; i++)
            sum += coordinates[i];
        pupil[axis] = (float)(sum * (1. / FA_GAZE_IRIS_POINTS));
    }
}

/* The eyeball centre: (P_a + P_b) / 2 (cv::addWeighted with 0.5, 0.5: the correctly rounded
 * mean) plus R * offset (cv::gemm of float matrices: a double sum rounded to float), added in
 * float. */
static void eyeball_centre(const float head_rotation[3], const float *face_points, fa_gaze_eye eye,
                           float centre[3]) {
    float rotation[3][3];
    fa_pdm_rotation_matrix(head_rotation, rotation);
    const int a = eye == FA_GAZE_LEFT ? 36 : 42, b = a + 3;
    for (int k = 0; k < 3; k++) {
        const float *coordinates = face_points + k * FA_GAZE_FACE_POINTS;
        float middle = (float)(0.5 * coordinates[a] + 0.5 * coordinates[b]);
        double rotated = 0;
        for (int j = 0; j < 3; j++)
            rotated += (double)rotation[k][j] * EYEBALL_OFFSET[j];
        centre[k] = middle + (float)rotated;
    }
}

/* RaySphereIntersect from the camera origin along direction: float coefficients; the root
 * (-b - sqrt(disc)) / 2 * a is taken in double, as the double sqrt makes it, and is multiplied
 * by a rather than divided (OpenFace's precedence slip; a is 1 within rounding). No hit gives
 * the point (0, 0, -1). */
static void ray_sphere_intersect(const float direction[3], const float centre[3], float radius,
                                 float point[3]) {
    const float dx = direction[0], dy = direction[1], dz = direction[2];
    const float cx = centre[0], cy = centre[1], cz = centre[2];
    const float a = dx * dx + dy * dy + dz * dz;
    const float b = 2 * dx * (0 - cx) + 2 * dy * (0 - cy) + 2 * dz * (0 - cz);
    /* The ray origin's terms are all zero (adding zeros changes nothing). */
    const float c = cx * cx + cy * cy + cz * cz - radius * radius;
    const float disc = b * b - 4 * a * c;
    if (disc < 0) {
        point[0] = 0, point[1] = 0, point[2] = -1;
        return;
    }
    const float t = (float)((-b - sqrt(disc)) / 2 * a);
    for (int k = 0; k < 3; k++)
        point[k] = direction[k] * t;
}

void fa_gaze_estimate(const float head_rotation[3], const float *eye_points, int eye_point_count,
                      const float *face_points, fa_gaze_eye eye, float gaze[3]) {
    float pupil[3], direction[3], centre[3], hit[3], axis[3];
    pupil_position(eye_points, eye_point_count, pupil);
    divide_point(pupil, point_norm(pupil), direction);
    eyeball_centre(head_rotation, face_points, eye, centre);
    ray_sphere_intersect(direction, centre, EYEBALL_RADIUS, hit);
    for (int k = 0; k < 3; k++)
        axis[k] = hit[k] - centre[k];
    divide_point(axis, point_norm(axis), gaze);
}

void fa_gaze_angle(const float gaze_0[3], const float gaze_1[3], float angle[2]) {
    float mean[3];
    for (int k = 0; k < 3; k++)
        mean[k] = (gaze_0[k] + gaze_1[k]) / 2;
    angle[0] = (float)atan2(mean[0], -mean[2]);
    angle[1] = (float)atan2(mean[1], -mean[2]);
}
