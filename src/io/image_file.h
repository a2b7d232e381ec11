/* Still images (JPEG, PNG, BMP) decoded to 8-bit BGR as OpenCV's imread(IMREAD_COLOR) does. */
#ifndef FACEAU_IO_IMAGE_FILE_H
#define FACEAU_IO_IMAGE_FILE_H

#include "core/error.h"

/* Decodes the file at path into image, reallocating it when the size changes. */
fa_status fa_image_file_read(const char *path, fa_image_t *image, fa_error_t *error);

/* 1 when the name ends with an image extension faceau reads. */
int fa_image_file_is_supported(const char *name);

#endif
