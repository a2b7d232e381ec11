/* Face alignment as OpenFace's AlignFaceMask (PIPELINE_SPEC §4): similarity transform of the
 * rigid landmarks onto the PDM mean shape, OpenCV warpAffine INTER_LINEAR bit-exactly (fixed
 * point), and the triangulation mask. */
#ifndef FACEAU_ALIGN_ALIGN_H
#define FACEAU_ALIGN_ALIGN_H

#include <stddef.h>

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

/* Warps frame (BGR or gray) into out (preallocated size x size, same channel count as out:
 * gray output from a BGR frame uses OpenCV's BGR2GRAY first). landmarks are x0..x67, y0..y67;
 * params_global from fa_pdm_calc_params. mask != 0 applies the triangulation mask. */
fa_status fa_align_face(const fa_image_t *frame, const float *landmarks,
                        const float params_global[6], const fa_pdm_t *pdm,
                        const fa_triangulation_t *triangulation, float sim_scale, int mask,
                        fa_image_t *out, fa_error_t *error);

#endif
