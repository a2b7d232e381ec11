#include <stdlib.h>
#include <string.h>

#include "core/error.h"

fa_status fa_image_allocate(fa_image_t *image, int width, int height, int channels,
                            fa_error_t *error)
{
    memset(image, 0, sizeof *image);
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3 && channels != 4))
        return fa_error_set(error, FA_ERROR_ARGUMENT, "bad image size %dx%dx%d", width, height,
                            channels);
    size_t stride = (size_t)width * (size_t)channels;
    image->data = calloc((size_t)height, stride);
    if (!image->data)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory for a %dx%d image", width,
                            height);
    image->width = width;
    image->height = height;
    image->channels = channels;
    image->stride = (ptrdiff_t)stride;
    return FA_OK;
}

void fa_image_release(fa_image_t *image)
{
    if (!image) return;
    free(image->data);
    memset(image, 0, sizeof *image);
}
