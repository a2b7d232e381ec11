/* BMP files as OpenCV's imwrite writes them: 24-bit BGR or 8-bit gray with a grey palette,
 * bottom-up rows padded to 4 bytes. */
#ifndef FACEAU_IO_BMP_H
#define FACEAU_IO_BMP_H

#include "core/error.h"

fa_status fa_bmp_write(const char *path, const fa_image_t *image, fa_error_t *error);

/* Reads an uncompressed 8-bit (paletted gray) or 24-bit BMP into a new BGR or gray image. */
fa_status fa_bmp_read(const char *path, fa_image_t *image, fa_error_t *error);

#endif
