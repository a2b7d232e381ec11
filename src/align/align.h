/* Face alignment as OpenFace's AlignFaceMask (PIPELINE_SPEC §4): similarity transform of the
 * rigid landmarks onto the PDM mean shape, OpenCV warpAffine INTER_LINEAR bit-exactly (fixed
 * point), and the triangulation mask. */
#ifndef FACEAU_ALIGN_ALIGN_H
#define FACEAU_ALIGN_ALIGN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "pdm/pdm.h"

typedef struct fa_triangulation {
    int count;
    int (*vertices)[3]; /* 0-based landmark indices */
} fa_triangulation_t;

fa_status fa_triangulation_parse(const char *data, size_t size, const char *name,
                                 fa_triangulation_t *triangulation, fa_error_t *error);
fa_status fa_triangulation_load(const char *path, fa_triangulation_t *triangulation,
                                fa_error_t *error);
void fa_triangulation_release(fa_triangulation_t *triangulation);

/* Warps frame (BGR or gray) into out (preallocated; its width, height and channel count are the
 * output's). A gray out from a BGR frame is the BGR result converted as OpenCV's BGR2GRAY, which is
 * what OpenFace's -g does after aligning. landmarks are x0..x67, y0..y67; params_global from
 * fa_pdm_calc_params. mask != 0 applies the triangulation mask. No allocation, thread-safe.
 * OpenFace's sim_scale is a double: the float given here is taken as the shortest decimal that
 * rounds to it (0.7f means 0.7); fa_align_face_at_scale takes the double itself. */
fa_status fa_align_face(const fa_image_t *frame, const float *landmarks,
                        const float params_global[6], const fa_pdm_t *pdm,
                        const fa_triangulation_t *triangulation, float sim_scale, int mask,
                        fa_image_t *out, fa_error_t *error);
fa_status fa_align_face_at_scale(const fa_image_t *frame, const float *landmarks,
                                 const float params_global[6], const fa_pdm_t *pdm,
                                 const fa_triangulation_t *triangulation, double sim_scale,
                                 int mask, fa_image_t *out, fa_error_t *error);

/* Limits that keep fa_align_face free of allocation. */
enum { FA_ALIGN_MAX_POINTS = 128, FA_ALIGN_MAX_TRIANGLES = 512 };

/* The pieces of fa_align_face, exposed for tests and benchmarks. */

/* The forward 2x3 warp (frame to aligned face, row-major, float as OpenFace keeps it): the
 * similarity of the rigid landmarks onto the scaled mean shape, centred on (tx, ty). */
void fa_align_warp_matrix(const fa_pdm_t *pdm, const float *landmarks, const float params_global[6],
                          double sim_scale, int width, int height, float warp[6]);

/* OpenFace's AlignShapesWithScale: the 2x2 scaled rotation taking the point set "from" onto
 * "to" (each centred and normalised, Kabsch), with OpenCV's float arithmetic. count <=
 * FA_ALIGN_MAX_POINTS. */
void fa_align_shapes_with_scale(const float *from_x, const float *from_y, const float *to_x,
                                const float *to_y, int count, float a[4]);

/* cv::SVD of a 2x2 float matrix (row-major): OpenCV's one-sided Jacobi, w descending. */
void fa_align_svd_2x2(const float a[4], float w[2], float u[4], float vt[4]);

/* cv::warpAffine(frame, out, forward, out size, INTER_LINEAR), BORDER_CONSTANT 0, bit-exactly.
 * frame and out have the same channel count, or frame is BGR and out gray (converted per
 * pixel after interpolation). */
void fa_warp_affine(const fa_image_t *frame, const float forward[6], fa_image_t *out);
/* The same one pixel at a time (fa_warp_affine takes eight BGR pixels at once where the CPU has
 * AVX2; the results are the same bytes). */
void fa_warp_affine_reference(const fa_image_t *frame, const float forward[6], fa_image_t *out);
/* The inverse map warpAffine computes from a forward float matrix (in double). */
void fa_warp_inverse(const float forward[6], double inverse[6]);

/* Zeroes the pixels of image outside OpenFace's face mask: the triangulation over the landmarks
 * mapped by warp, brows raised by 30/0.7 * sim_scale, tested at integer pixels as PAW does. */
void fa_align_apply_mask(fa_image_t *image, const float *landmarks, int point_count,
                         const float warp[6], const fa_triangulation_t *triangulation,
                         double sim_scale);
/* The same one pixel at a time (fa_align_apply_mask tests eight columns at once where the CPU
 * has AVX2; the results are the same bytes). */
void fa_align_apply_mask_reference(fa_image_t *image, const float *landmarks, int point_count,
                                   const float warp[6], const fa_triangulation_t *triangulation,
                                   double sim_scale);

#endif
