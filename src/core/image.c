#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/image.h"

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

fa_status fa_image_copy(fa_image_t *destination, const fa_image_t *source, fa_error_t *error)
{
    if (!source || !source->data)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "no image to copy");
    if (destination->width != source->width || destination->height != source->height ||
        destination->channels != source->channels || !destination->data) {
        fa_image_release(destination);
        fa_status status = fa_image_allocate(destination, source->width, source->height,
                                             source->channels, error);
        if (status != FA_OK) return status;
    }
    size_t row = (size_t)source->width * (size_t)source->channels;
    for (int y = 0; y < source->height; y++)
        memcpy(destination->data + (ptrdiff_t)y * destination->stride,
               source->data + (ptrdiff_t)y * source->stride, row);
    return FA_OK;
}

void fa_image_release(fa_image_t *image)
{
    if (!image) return;
    free(image->data);
    memset(image, 0, sizeof *image);
}

void fa_image_bgr_to_gray(const fa_image_t *bgr, fa_image_t *gray)
{
    for (int y = 0; y < bgr->height; y++) {
        const uint8_t *in = bgr->data + (ptrdiff_t)y * bgr->stride;
        uint8_t *out = gray->data + (ptrdiff_t)y * gray->stride;
        for (int x = 0; x < bgr->width; x++, in += 3) out[x] = fa_gray_from_bgr(in);
    }
}

void fa_image_fill(fa_image_t *image, uint8_t value)
{
    for (int y = 0; y < image->height; y++)
        memset(image->data + (ptrdiff_t)y * image->stride, value,
               (size_t)image->width * (size_t)image->channels);
}
