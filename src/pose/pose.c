/* Head pose (GetPose) and 3D landmarks (GetShape), LANDMARKS_SPEC §6.2-§6.3.
 *
 * GetPose hands the PDM shape, the landmarks and a guess to cv::solvePnP with
 * useExtrinsicGuess = true. OpenCV 4.6 then skips its own initialisation and runs only the
 * Levenberg-Marquardt refinement of cvFindExtrinsicCameraParams2, which is what this file
 * reproduces: parameters (rotation vector, translation) in double, residuals projection minus
 * target as cvProjectPoints2 computes them without distortion, Jacobian from cv::Rodrigues'
 * derivative, and CvLevMarq's schedule (lambda starting at 1e-3, at most 20 iterations, stop when
 * the relative parameter change is below FLT_EPSILON). The one deliberate difference: CvLevMarq
 * solves its 6x6 normal equations by SVD, this file by Cholesky. On well-posed input the float
 * results OpenFace keeps are identical (checked against OpenCV 4.6 on the reference videos and on
 * thousands of random poses and bad guesses); they differ only when the system is nearly
 * singular, e.g. the all-zero landmarks before the first detection, where OpenCV's SVD drops
 * tiny singular values and both answers are meaningless anyway.
 */
#include "pose/pose.h"

#include <float.h>
#include <math.h>
#include <string.h>

enum { MAX_POINTS = FA_PDM_MAX_POINTS, MAX_ITERATIONS = 20 };

/* Rounds to float for certain. GCC 12.2's SLP vectorizer (-O2 and up) folds a paired
 * double -> float -> double round trip into nothing, silently skipping the rounding OpenFace's
 * float variables impose; the volatile store keeps it. */
static float round_to_float(double value) {
    volatile float rounded = (float)value;
    return rounded;
}

void fa_camera_default(int width, int height, fa_camera_t *camera) {
    float fx = 500.0f * ((float)width / 640.0f);
    float fy = 500.0f * ((float)height / 480.0f);
    camera->fx = (fx + fy) / 2.0f;
    camera->fy = camera->fx;
    camera->cx = (float)width / 2.0f;
    camera->cy = (float)height / 2.0f;
}

/* ---------------------------------------------------------------------------------------------
 * Rotations (Euler conversions are the PDM's: fa_pdm_rotation_matrix, fa_pdm_rotation_to_euler).
 * OpenFace's sin, cos, sqrt, asin and atan2 on float arguments resolve to the double functions in
 * its build, hence the double calls rounded to float. */


/* cvRodrigues2, vector to matrix, with its derivative when jacobian is not NULL:
 * jacobian[i * 9 + k] = d rotation[k] / d vector[i] (rotation row-major). The operation order
 * is OpenCV's, so the results are bit for bit its own. */
static void rodrigues(const double vector[3], double rotation[9], double *jacobian) {
    static const double identity[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    double x = vector[0], y = vector[1], z = vector[2];
    double theta = sqrt(x * x + y * y + z * z);
    if (theta < DBL_EPSILON) {
        memcpy(rotation, identity, sizeof identity);
        if (jacobian) {
            memset(jacobian, 0, 27 * sizeof *jacobian);
            jacobian[5] = jacobian[15] = jacobian[19] = -1;
            jacobian[7] = jacobian[11] = jacobian[21] = 1;
        }
        return;
    }
    double c = cos(theta), s = sin(theta), c1 = 1. - c, inverse = theta ? 1. / theta : 0.;
    x *= inverse;
    y *= inverse;
    z *= inverse;
    const double rrt[9] = {x * x, x * y, x * z, x * y, y * y, y * z, x * z, y * z, z * z};
    const double cross[9] = {0, -z, y, z, 0, -x, -y, x, 0};
    for (int k = 0; k < 9; k++)
        rotation[k] = (c * identity[k] + c1 * rrt[k]) + s * cross[k];
    if (!jacobian) return;
    /* clang-format off */
    const double drrt[27] = {x + x, y, z, y, 0, 0, z, 0, 0,
                             0, x, 0, x, y + y, z, 0, z, 0,
                             0, 0, x, 0, 0, y, x, y, z + z};
    const double dcross[27] = {0, 0, 0, 0, 0, -1, 0, 1, 0,
                               0, 0, 1, 0, 0, 0, -1, 0, 0,
                               0, -1, 0, 1, 0, 0, 0, 0, 0};
    /* clang-format on */
    for (int i = 0; i < 3; i++) {
        double ri = i == 0 ? x : i == 1 ? y : z;
        double a0 = -s * ri, a1 = (s - 2 * c1 * inverse) * ri, a2 = c1 * inverse;
        double a3 = (c - s * inverse) * ri, a4 = s * inverse;
        for (int k = 0; k < 9; k++)
            jacobian[i * 9 + k] = a0 * identity[k] + a1 * rrt[k] + a2 * drrt[i * 9 + k] +
                                  a3 * cross[k] + a4 * dcross[i * 9 + k];
    }
}

void fa_axis_angle_to_rotation(const float axis_angle[3], float rotation[3][3]) {
    double vector[3] = {axis_angle[0], axis_angle[1], axis_angle[2]}, matrix[9];
    rodrigues(vector, matrix, NULL);
    for (int k = 0; k < 9; k++)
        rotation[k / 3][k % 3] = (float)matrix[k];
}

/* ---------------------------------------------------------------------------------------------
 * The Levenberg-Marquardt refinement */

typedef struct pnp_problem {
    int count;
    double object[MAX_POINTS][3]; /* model points, mm */
    double image[MAX_POINTS][2];  /* target pixels */
    double fx, fy, cx, cy;
} pnp_problem_t;

/* cvProjectPoints2 without distortion: residual[2i], [2i+1] = projection - target of point i,
 * and, when jacobian is not NULL, its 2count x 6 derivative (rotation vector, then translation).
 * With zero distortion every distortion term of OpenCV's formulas is an exact no-op. */
static void project(const pnp_problem_t *problem, const double param[6], double *residual,
                    double (*jacobian)[6]) {
    double r[9], dr[27];
    rodrigues(param, r, jacobian ? dr : NULL);
    const double *t = param + 3;
    for (int i = 0; i < problem->count; i++) {
        double X = problem->object[i][0], Y = problem->object[i][1], Z = problem->object[i][2];
        double x = r[0] * X + r[1] * Y + r[2] * Z + t[0];
        double y = r[3] * X + r[4] * Y + r[5] * Z + t[1];
        double z = r[6] * X + r[7] * Y + r[8] * Z + t[2];
        z = z ? 1. / z : 1;
        x *= z;
        y *= z;
        residual[2 * i] = (x * problem->fx + problem->cx) - problem->image[i][0];
        residual[2 * i + 1] = (y * problem->fy + problem->cy) - problem->image[i][1];
        if (!jacobian) continue;
        double *jx = jacobian[2 * i], *jy = jacobian[2 * i + 1];
        for (int j = 0; j < 3; j++) {
            const double *d = dr + 9 * j;
            double dx0 = X * d[0] + Y * d[1] + Z * d[2];
            double dy0 = X * d[3] + Y * d[4] + Z * d[5];
            double dz0 = X * d[6] + Y * d[7] + Z * d[8];
            jx[j] = problem->fx * (z * (dx0 - x * dz0));
            jy[j] = problem->fy * (z * (dy0 - y * dz0));
        }
        jx[3] = problem->fx * z;
        jx[4] = 0;
        jx[5] = problem->fx * (-x * z);
        jy[3] = 0;
        jy[4] = problem->fy * z;
        jy[5] = problem->fy * (-y * z);
    }
}

static double norm(const double *v, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i] * v[i];
    return sqrt(sum);
}

/* Solves (A with its diagonal scaled by 1 + lambda) x = b for the symmetric 6x6 A by Cholesky.
 * Returns 0 if the matrix is not positive definite (x then holds zeros: no step). */
static int solve_damped(const double a[6][6], const double b[6], double lambda, double x[6]) {
    double l[6][6], y[6];
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j <= i; j++) {
            double sum = j == i ? a[i][i] * (1. + lambda) : a[i][j];
            for (int k = 0; k < j; k++)
                sum -= l[i][k] * l[j][k];
            if (j == i) {
                if (!(sum > 0)) {
                    memset(x, 0, 6 * sizeof *x);
                    return 0;
                }
                l[i][i] = sqrt(sum);
            } else {
                l[i][j] = sum / l[j][j];
            }
        }
    }
    for (int i = 0; i < 6; i++) {
        double sum = b[i];
        for (int k = 0; k < i; k++)
            sum -= l[i][k] * y[k];
        y[i] = sum / l[i][i];
    }
    for (int i = 5; i >= 0; i--) {
        double sum = y[i];
        for (int k = i + 1; k < 6; k++)
            sum -= l[k][i] * x[k];
        x[i] = sum / l[i][i];
    }
    return 1;
}

/* CvLevMarq::step: param = previous - (JtJ + lambda diag(JtJ))^-1 JtErr,
 * with lambda = 10^lambda_lg10 computed as OpenCV does. */
static void step(const double jtj[6][6], const double jte[6], int lambda_lg10,
                 const double previous[6], double param[6]) {
    double delta[6];
    solve_damped(jtj, jte, exp(lambda_lg10 * log(10.)), delta);
    for (int i = 0; i < 6; i++)
        param[i] = previous[i] - delta[i];
}

/* CvLevMarq driven by cvFindExtrinsicCameraParams2 (completeSymmFlag set, errors supplied):
 * one Jacobian per accepted step; a worse error raises lambda tenfold and retries from the same
 * point (up to 10^16, after which the worse step is kept); an accepted step lowers it. */
static void refine(const pnp_problem_t *problem, double param[6]) {
    int rows = 2 * problem->count;
    double residual[2 * MAX_POINTS], jacobian[2 * MAX_POINTS][6];
    double jtj[6][6], jte[6], previous[6];
    int lambda_lg10 = -3, iterations = 0;
    double previous_error = DBL_MAX;

    project(problem, param, residual, jacobian);
    for (;;) {
        for (int i = 0; i < 6; i++) {
            for (int j = i; j < 6; j++) {
                double sum = 0;
                for (int k = 0; k < rows; k++)
                    sum += jacobian[k][i] * jacobian[k][j];
                jtj[i][j] = jtj[j][i] = sum;
            }
            double sum = 0;
            for (int k = 0; k < rows; k++)
                sum += jacobian[k][i] * residual[k];
            jte[i] = sum;
        }
        memcpy(previous, param, sizeof previous);
        step(jtj, jte, lambda_lg10, previous, param);
        if (iterations == 0) previous_error = norm(residual, rows);

        double error;
        for (;;) {
            project(problem, param, residual, NULL);
            error = norm(residual, rows);
            if (!(error > previous_error) || ++lambda_lg10 > 16) break;
            step(jtj, jte, lambda_lg10, previous, param);
        }
        lambda_lg10 = lambda_lg10 - 1 > -16 ? lambda_lg10 - 1 : -16;

        double change[6];
        for (int i = 0; i < 6; i++)
            change[i] = param[i] - previous[i];
        if (++iterations >= MAX_ITERATIONS ||
            norm(change, 6) / (norm(previous, 6) + DBL_EPSILON) < FLT_EPSILON)
            return;
        previous_error = error;
        project(problem, param, residual, jacobian);
    }
}

/* ---------------------------------------------------------------------------------------------
 * GetPose and GetShape */

void fa_pose_estimate(const fa_pdm_t *pdm, const float params_global[6], const float *params_local,
                      const float *landmarks, const fa_camera_t *camera, double pose[6]) {
    memset(pose, 0, 6 * sizeof *pose);
    if (params_global[0] == 0) return;
    int n = pdm->point_count;
    float fx = camera->fx, fy = camera->fy, cx = camera->cx, cy = camera->cy;

    /* The guess, with GetPose's mixed float/double arithmetic (1.0 / fx is double). */
    float z = fx / params_global[0];
    float x = round_to_float(((double)(params_global[4] - cx) * (1.0 / fx)) * z);
    float y = round_to_float(((double)(params_global[5] - cy) * (1.0 / fy)) * z);

    pnp_problem_t problem;
    float shape[3 * MAX_POINTS];
    fa_pdm_shape_3d(pdm, params_local, shape);
    problem.count = n;
    for (int i = 0; i < n; i++) {
        problem.object[i][0] = shape[i];
        problem.object[i][1] = shape[i + n];
        problem.object[i][2] = shape[i + 2 * n];
        problem.image[i][0] = landmarks[i];
        problem.image[i][1] = landmarks[i + n];
    }
    problem.fx = fx;
    problem.fy = fy;
    problem.cx = cx;
    problem.cy = cy;

    double param[6] = {params_global[1], params_global[2], params_global[3], x, y, z};
    refine(&problem, param);

    /* solvePnP writes back into OpenFace's cv::Vec3f rotation and translation. */
    float rotation_vector[3], rotation[3][3], euler[3];
    for (int i = 0; i < 3; i++) {
        rotation_vector[i] = round_to_float(param[i]);
        pose[i] = round_to_float(param[3 + i]);
    }
    fa_axis_angle_to_rotation(rotation_vector, rotation);
    fa_pdm_rotation_to_euler((const float(*)[3])rotation, euler);
    for (int i = 0; i < 3; i++)
        pose[3 + i] = euler[i];
}

void fa_pose_landmarks_3d(const fa_pdm_t *pdm, const float params_global[6],
                          const float *params_local, const float *landmarks,
                          const fa_camera_t *camera, float *points) {
    int n = pdm->point_count;
    float shape[3 * MAX_POINTS], r[3][3];
    fa_pdm_shape_3d(pdm, params_local, shape);
    fa_pdm_rotation_matrix(params_global + 1, r);
    float depth = camera->fx / params_global[0];
    for (int i = 0; i < n; i++) {
        /* cv::gemm on these small float matrices sums in double. */
        double X = shape[i], Y = shape[i + n], Z = shape[i + 2 * n];
        float rotated_z = (float)((double)r[2][0] * X + (double)r[2][1] * Y + (double)r[2][2] * Z);
        float point_z = depth + rotated_z;
        points[i] = point_z * ((landmarks[i] - camera->cx) / camera->fx);
        points[i + n] = point_z * ((landmarks[i + n] - camera->cy) / camera->fy);
        points[i + 2 * n] = point_z;
    }
}
