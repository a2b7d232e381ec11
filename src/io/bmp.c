#include "io/bmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_u16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, unsigned long v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static unsigned long get_u32(const unsigned char *p)
{
    return (unsigned long)p[0] | (unsigned long)p[1] << 8 | (unsigned long)p[2] << 16 |
           (unsigned long)p[3] << 24;
}

static unsigned get_u16(const unsigned char *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

fa_status fa_bmp_write(const char *path, const fa_image_t *image, fa_error_t *error)
{
    if (image->channels != 1 && image->channels != 3)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "%s: BMP needs 1 or 3 channels", path);
    const unsigned palette_size = image->channels == 1 ? 1024 : 0;
    const size_t row_bytes = ((size_t)image->width * (size_t)image->channels + 3) & ~(size_t)3;
    const unsigned long header_size = 14 + 40 + palette_size;
    unsigned char header[14 + 40 + 1024] = {0};
    header[0] = 'B';
    header[1] = 'M';
    put_u32(header + 2, header_size + row_bytes * (size_t)image->height);
    put_u32(header + 10, header_size);
    put_u32(header + 14, 40);
    put_u32(header + 18, (unsigned long)image->width);
    put_u32(header + 22, (unsigned long)image->height);
    put_u16(header + 26, 1);
    put_u16(header + 28, (unsigned)(8 * image->channels));
    for (unsigned i = 0; i < palette_size / 4; i++) {
        unsigned char *entry = header + 54 + 4 * i;
        entry[0] = entry[1] = entry[2] = (unsigned char)i;
    }
    FILE *file = fopen(path, "wb");
    if (!file) return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
    int ok = fwrite(header, 1, header_size, file) == header_size;
    unsigned char padding[4] = {0};
    size_t data_bytes = (size_t)image->width * (size_t)image->channels;
    for (int y = image->height - 1; ok && y >= 0; y--) {
        ok = fwrite(image->data + (ptrdiff_t)y * image->stride, 1, data_bytes, file) == data_bytes;
        if (ok && row_bytes > data_bytes)
            ok = fwrite(padding, 1, row_bytes - data_bytes, file) == row_bytes - data_bytes;
    }
    int reason = ok ? 0 : errno;
    if (fclose(file) != 0 && ok) ok = 0, reason = errno;
    if (!ok) {
        remove(path); /* a cut image would look like a finished one */
        return fa_error_set(error, FA_ERROR_IO, "%s: write failed: %s", path,
                            strerror(reason ? reason : EIO));
    }
    return FA_OK;
}

fa_status fa_bmp_read(const char *path, fa_image_t *image, fa_error_t *error)
{
    memset(image, 0, sizeof *image);
    FILE *file = fopen(path, "rb");
    if (!file) return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
    unsigned char header[54];
    fa_status status = FA_OK;
    if (fread(header, 1, sizeof header, file) != sizeof header || header[0] != 'B' ||
        header[1] != 'M') {
        status = fa_error_set(error, FA_ERROR_INPUT, "%s: not a BMP file", path);
        goto done;
    }
    unsigned long offset = get_u32(header + 10);
    long width = (long)get_u32(header + 18), height = (long)(int32_t)get_u32(header + 22);
    unsigned bits = get_u16(header + 28);
    unsigned long compression = get_u32(header + 30);
    int top_down = height < 0;
    if (top_down) height = -height;
    if ((bits != 8 && bits != 24) || compression != 0 || width <= 0 || height <= 0 ||
        width > 1 << 16 || height > 1 << 16) {
        status = fa_error_set(error, FA_ERROR_INPUT, "%s: unsupported BMP (%u bits)", path, bits);
        goto done;
    }
    int channels = bits == 8 ? 1 : 3;
    status = fa_image_allocate(image, (int)width, (int)height, channels, error);
    if (status != FA_OK) goto done;
    size_t row_bytes = ((size_t)width * (size_t)channels + 3) & ~(size_t)3;
    if (fseek(file, (long)offset, SEEK_SET) != 0) {
        status = fa_error_set(error, FA_ERROR_INPUT, "%s: truncated", path);
        goto done;
    }
    unsigned char *row = malloc(row_bytes);
    for (long i = 0; row && i < height && status == FA_OK; i++) {
        if (fread(row, 1, row_bytes, file) != row_bytes) {
            status = fa_error_set(error, FA_ERROR_INPUT, "%s: truncated pixel data", path);
            break;
        }
        long y = top_down ? i : height - 1 - i;
        memcpy(image->data + y * image->stride, row, (size_t)width * (size_t)channels);
    }
    if (!row) status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    free(row);
done:
    fclose(file);
    if (status != FA_OK) fa_image_release(image);
    return status;
}
