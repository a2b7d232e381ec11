/* FHOG features exactly as dlib 19.x extract_fhog_features computes them (cell size 8), as
 * OpenFace calls it on the aligned face (PIPELINE_SPEC §5), flattened in OpenFace's order. */
#ifndef FACEAU_FEATURES_FHOG_H
#define FACEAU_FEATURES_FHOG_H

#include "core/error.h"

/* FHOG of a 112x112 BGR (or gray) face into features[FA_HOG_SIZE]: index (row*12+col)*31+o.
 * No allocation. */
void fa_fhog_extract(const fa_image_t *face, float *features);

#endif
