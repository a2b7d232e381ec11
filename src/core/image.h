/* Image helpers beyond the public fa_image_allocate / fa_image_release. */
#ifndef FACEAU_CORE_IMAGE_H
#define FACEAU_CORE_IMAGE_H

#include "faceau.h"

/* Gray from BGR exactly as OpenCV's cvtColor(COLOR_BGR2GRAY) on 8-bit images. Same size. */
void fa_image_bgr_to_gray(const fa_image_t *bgr, fa_image_t *gray);

void fa_image_fill(fa_image_t *image, uint8_t value);

#endif
