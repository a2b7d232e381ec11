/* OpenFace's point distribution model (PDM): loading, 3D/2D shapes and CalcParams (fitting the
 * global and local parameters to 2D landmarks), float32 throughout as OpenFace computes them
 * (PIPELINE_SPEC §3). */
#ifndef FACEAU_PDM_PDM_H
#define FACEAU_PDM_PDM_H

#include <stddef.h>

#include "core/error.h"

/* Largest model CalcParams works on without allocating (OpenFace's 68-point PDMs have 34 modes,
 * its part models fewer); fa_pdm_parse rejects bigger ones. */
enum { FA_PDM_MAX_POINTS = 68, FA_PDM_MAX_MODES = 34 };

typedef struct fa_pdm {
    int point_count;           /* 68 */
    int mode_count;            /* 34 */
    float *mean_shape;         /* 3 * point_count: X0..X67, Y0..Y67, Z0..Z67 */
    float *components;         /* (3 * point_count) x mode_count, row-major */
    float *eigenvalues;        /* mode_count */
    float *components_blocked; /* the same in blocks of 8 rows, mode after mode (8 x
                                  mode_count values a block; the last rows' block as wide as
                                  they are), so that the shape's rows can be summed eight at a
                                  time from contiguous memory */
} fa_pdm_t;

/* Parses an OpenFace PDM text file held in memory; name is used in messages. */
fa_status fa_pdm_parse(const char *data, size_t size, const char *name, fa_pdm_t *pdm,
                       fa_error_t *error);
fa_status fa_pdm_load(const char *path, fa_pdm_t *pdm, fa_error_t *error);
void fa_pdm_release(fa_pdm_t *pdm);

/* shape = mean + components * params_local (3 * point_count values, X block, Y block, Z block),
 * summed as OpenFace's PDM::CalcShape3D has OpenBLAS sum it. */
void fa_pdm_shape_3d(const fa_pdm_t *pdm, const float *params_local, float *shape);
/* The same in plain C (what the SIMD path is tested against). */
void fa_pdm_shape_3d_reference(const fa_pdm_t *pdm, const float *params_local, float *shape);
/* The shape of the count listed points alone (3 * count values, X block, Y block, Z block), as
 * CalcParams has CalcShape3D form it on the PDM of its visible points (the sums of the last rows
 * depend on count). simd = 0: plain C. */
void fa_pdm_shape_3d_points(const fa_pdm_t *pdm, const float *params_local, const int *points,
                            int count, int simd, float *shape);

/* 2D landmarks (x0..x67, y0..y67) of params under weak perspective projection. */
void fa_pdm_shape_2d(const fa_pdm_t *pdm, const float params_global[6], const float *params_local,
                     float *landmarks);
/* The 2D landmarks of a 3D shape (fa_pdm_shape_3d's layout): fa_pdm_shape_2d is fa_pdm_shape_3d,
 * then this. */
void fa_pdm_project(const fa_pdm_t *pdm, const float params_global[6], const float *shape,
                    float *landmarks);

/* OpenFace's PDM::CalcParams on 2D landmarks (x0..x67, y0..y67), with all its quirks (§3.5).
 * No allocation. */
void fa_pdm_calc_params(const fa_pdm_t *pdm, const float *landmarks, float params_global[6],
                        float *params_local);

/* Global parameters that place the PDM shape of params_local, rotated by rotation (Euler, as
 * OpenFace's Vec3f), into a face box (x, y, width, height): OpenFace's PDM::CalcParams overload
 * for boxes (PIPELINE_SPEC §1.5). pdm_fit.c. */
void fa_pdm_params_from_box(const fa_pdm_t *pdm, const float box[4], const float *params_local,
                            const float rotation[3], float params_global[6]);

/* The pieces of CalcParams that CLNF's NU-RLMS shares with it (both are PDM.cpp code), with the
 * same arithmetic. Matrices are row-major. */

/* Utilities::Euler2RotationMatrix. */
void fa_pdm_rotation_matrix(const float euler[3], float rotation[3][3]);

/* Utilities::RotationMatrix2Euler: (rx, ry, rz) through a quaternion, as OpenFace computes it. */
void fa_pdm_rotation_to_euler(const float rotation[3][3], float euler[3]);

/* cv::norm(a, b) of float vectors as OpenCV computes it: double squares summed four at a time. */
double fa_pdm_norm_difference(const float *a, const float *b, int count);
/* PDM::ComputeJacobian (rigid = 0: 2n x (6 + m)) or ComputeRigidJacobian (rigid = 1: 2n x 6),
 * at shape_3d = fa_pdm_shape_3d(params_local). */
void fa_pdm_jacobian(const fa_pdm_t *pdm, const float params_global[6], const float *shape_3d,
                     int rigid, float *jacobian);
/* The same in plain C (what the SIMD path, sixteen modes a vector, is tested against). */
void fa_pdm_jacobian_reference(const fa_pdm_t *pdm, const float params_global[6],
                               const float *shape_3d, int rigid, float *jacobian);
/* weighted^T * residual (cv::gemm), then minus regularisation[j] * params_local[j] on the
 * columns - 6 non-rigid entries. weighted is rows x columns. */
void fa_pdm_gradient(const float *weighted, int rows, int columns, const float *residual,
                     const float *regularisation, const float *params_local, float *gradient);
/* The same in plain C (what the SIMD path, a column a lane, is tested against). */
void fa_pdm_gradient_reference(const float *weighted, int rows, int columns, const float *residual,
                               const float *regularisation, const float *params_local,
                               float *gradient);
/* The same with one SIMD kernel, for tests: FA_PDM_HESSIAN_AVX2 (AVX2, four columns a vector) or
 * FA_PDM_HESSIAN_WIDE (AVX-512F and VL, eight). Returns 0 when the CPU lacks it, and then
 * computes nothing. */
int fa_pdm_gradient_kernel(int kernel, const float *weighted, int rows, int columns,
                           const float *residual, const float *regularisation,
                           const float *params_local, float *gradient);
/* jacobian^T * weighted + diag(0 x 6, regularisation) as OpenFace's sgemm has OpenBLAS sum it
 * (jacobian and weighted are rows x columns): hessian[j * columns + i] sums jacobian[k][i] *
 * weighted[k][j], sgemm's column-major C read as row-major, as cv::solve then reads it. */
void fa_pdm_hessian(const float *jacobian, const float *weighted, int rows, int columns,
                    const float *regularisation, float *hessian);
/* The same with one SIMD kernel, for tests: FA_PDM_HESSIAN_AVX2 (AVX2 + FMA, three columns at a
 * time) or FA_PDM_HESSIAN_WIDE (AVX-512F and VL: sixteen elements a vector, eight columns at a
 * time). Returns 0 when the CPU lacks it, and then computes nothing. */
enum { FA_PDM_HESSIAN_AVX2 = 1, FA_PDM_HESSIAN_WIDE = 2 };
int fa_pdm_hessian_kernel(int kernel, const float *jacobian, const float *weighted, int rows,
                          int columns, const float *regularisation, float *hessian);
/* The same in plain C (what the SIMD path is tested against). */
void fa_pdm_hessian_reference(const float *jacobian, const float *weighted, int rows, int columns,
                              const float *regularisation, float *hessian);
/* cv::solve(DECOMP_CHOLESKY) in place: rhs becomes the solution; matrix is destroyed. Returns 0
 * (and a zero solution) if the matrix is not positive definite. */
int fa_pdm_cholesky_solve(float *matrix, int size, float *rhs);
/* The same, row by row in plain C (what the SIMD path is tested against). */
int fa_pdm_cholesky_solve_reference(float *matrix, int size, float *rhs);
/* PDM::UpdateModelParameters with delta of 6 + modes entries (modes = 0 for a rigid step). */
void fa_pdm_update_parameters(const float *delta, int modes, float params_global[6],
                              float *params_local);

#endif
