/* Image helpers beyond the public fa_image_allocate / fa_image_release. */
#ifndef FACEAU_CORE_IMAGE_H
#define FACEAU_CORE_IMAGE_H

#include "faceau.h"

/* One pixel of OpenCV 4.x cvtColor(COLOR_BGR2GRAY) on 8 bits: 15-bit fixed-point weights of
 * 0.114, 0.587, 0.299, rounded. */
static inline uint8_t fa_gray_from_bgr(const uint8_t *bgr)
{
    enum { GRAY_SHIFT = 15, BLUE = 3735, GREEN = 19235, RED = 9798 };
    return (uint8_t)((bgr[0] * BLUE + bgr[1] * GREEN + bgr[2] * RED + (1 << (GRAY_SHIFT - 1))) >>
                     GRAY_SHIFT);
}

/* Gray from BGR exactly as OpenCV's cvtColor(COLOR_BGR2GRAY) on 8-bit images. Same size. */
void fa_image_bgr_to_gray(const fa_image_t *bgr, fa_image_t *gray);
/* The same, one pixel at a time in plain C (what the SIMD path is tested against). */
void fa_image_bgr_to_gray_reference(const fa_image_t *bgr, fa_image_t *gray);

/* A SIMD row kernel: converts a prefix of the row (whole vectors) and returns its length. Only
 * on x86, and only where the CPU has the instructions (SSSE3; AVX-512 BW and VBMI). */
typedef int (*fa_gray_row_fn)(const uint8_t *bgr, uint8_t *gray, int width);
int fa_gray_row_ssse3(const uint8_t *bgr, uint8_t *gray, int width);
int fa_gray_row_vbmi(const uint8_t *bgr, uint8_t *gray, int width);
/* The conversion with a given row kernel (the rest of each row in plain C). */
void fa_image_bgr_to_gray_with(const fa_image_t *bgr, fa_image_t *gray, fa_gray_row_fn row);

void fa_image_fill(fa_image_t *image, uint8_t value);

/* EXIF orientations (1 = as stored; 2 mirrored; 3 rotated 180 degrees; 4 flipped; 5 transposed;
 * 6 to be rotated 90 degrees clockwise for display; 7 transversed; 8 rotated 90 degrees
 * counter-clockwise): out, of the displayed size (width and height swapped for 5-8) and the same
 * channels, receives the image as it is meant to be seen. */
void fa_image_orient(const fa_image_t *in, int orientation, fa_image_t *out);
static inline int fa_orientation_swaps_sides(int orientation)
{
    return orientation >= 5 && orientation <= 8;
}

#endif
