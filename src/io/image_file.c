#include "io/image_file.h"

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jpeglib.h>
#include <png.h>

#include "core/image.h"
#include "io/bmp.h"

enum { MAX_IMAGE_PIXELS = 1 << 28 };

static fa_status ensure_image(fa_image_t *image, int width, int height, fa_error_t *error)
{
    if (image->data && image->width == width && image->height == height && image->channels == 3)
        return FA_OK;
    fa_image_release(image);
    return fa_image_allocate(image, width, height, 3, error);
}

int fa_image_file_is_supported(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    static const char *const extensions[] = {".jpg", ".jpeg", ".png", ".bmp"};
    for (size_t i = 0; i < sizeof extensions / sizeof *extensions; i++)
        if (strcasecmp(dot, extensions[i]) == 0) return 1;
    return 0;
}

typedef struct jpeg_failure {
    struct jpeg_error_mgr manager;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_failure_t;

static void jpeg_fail(j_common_ptr info)
{
    jpeg_failure_t *failure = (jpeg_failure_t *)info->err;
    failure->manager.format_message(info, failure->message);
    longjmp(failure->jump, 1);
}

static void jpeg_silence(j_common_ptr info, int level) { (void)info, (void)level; }

/* The orientation tag (0x0112) of an APP1 Exif segment, or 1. Every offset is checked against
 * the segment. */
static int exif_orientation(const unsigned char *data, unsigned length)
{
    if (length < 14 || memcmp(data, "Exif\0\0", 6) != 0) return 1;
    const unsigned char *tiff = data + 6;
    unsigned size = length - 6;
    int little = tiff[0] == 'I' && tiff[1] == 'I';
    if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
#define U16(p) (little ? (unsigned)(p)[0] | (unsigned)(p)[1] << 8 : (unsigned)(p)[0] << 8 | (p)[1])
#define U32(p) (little ? U16(p) | U16((p) + 2) << 16 : U16(p) << 16 | U16((p) + 2))
    unsigned ifd = U32(tiff + 4);
    if (ifd > size - 2 || size < 8) return 1;
    unsigned entries = U16(tiff + ifd);
    for (unsigned i = 0; i < entries; i++) {
        unsigned entry = ifd + 2 + 12 * i;
        if (entry > size - 12) break;
        if (U16(tiff + entry) == 0x0112 && U16(tiff + entry + 2) == 3) { /* SHORT */
            unsigned value = U16(tiff + entry + 8);
            return value >= 1 && value <= 8 ? (int)value : 1;
        }
    }
#undef U32
#undef U16
    return 1;
}

/* OpenCV's CMYK to BGR (imread of a CMYK or YCCK JPEG): each ink scaled by the black. */
static void cmyk_to_bgr(const unsigned char *cmyk, unsigned width, unsigned char *bgr)
{
    for (unsigned x = 0; x < width; x++, cmyk += 4, bgr += 3) {
        int k = cmyk[3];
        bgr[0] = (unsigned char)(k - ((255 - cmyk[2]) * k >> 8));
        bgr[1] = (unsigned char)(k - ((255 - cmyk[1]) * k >> 8));
        bgr[2] = (unsigned char)(k - ((255 - cmyk[0]) * k >> 8));
    }
}

static fa_status read_jpeg(FILE *file, const char *path, fa_image_t *image, int *orientation,
                           fa_error_t *error)
{
    struct jpeg_decompress_struct info;
    jpeg_failure_t failure;
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jpeg_fail;
    failure.manager.emit_message = jpeg_silence;
    unsigned char *volatile decoded_row = NULL; /* gray or CMYK samples before conversion */
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&info);
        free(decoded_row);
        return fa_error_set(error, FA_ERROR_INPUT, "%s: bad JPEG: %s", path, failure.message);
    }
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_save_markers(&info, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&info, TRUE);
    /* imread applies the EXIF orientation unless told not to (IMREAD_IGNORE_ORIENTATION). */
    for (jpeg_saved_marker_ptr marker = info.marker_list; marker; marker = marker->next)
        if (marker->marker == JPEG_APP0 + 1) {
            *orientation = exif_orientation(marker->data, marker->data_length);
            if (*orientation != 1) break;
        }
    int gray = info.num_components == 1;
    int cmyk = info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK;
    /* As OpenCV: libjpeg-turbo converts straight to BGR; gray is replicated afterwards, CMYK
     * (print files) converted by OpenCV's formula. */
    info.out_color_space = gray ? JCS_GRAYSCALE : cmyk ? JCS_CMYK : JCS_EXT_BGR;
    if (info.image_width * (unsigned long)info.image_height > MAX_IMAGE_PIXELS) {
        jpeg_destroy_decompress(&info);
        return fa_error_set(error, FA_ERROR_INPUT, "%s: image too large", path);
    }
    jpeg_start_decompress(&info);
    fa_status status = ensure_image(image, (int)info.output_width, (int)info.output_height, error);
    if (status != FA_OK) {
        jpeg_destroy_decompress(&info);
        return status;
    }
    if (gray || cmyk) decoded_row = malloc((size_t)info.output_width * (cmyk ? 4 : 1));
    if ((gray || cmyk) && !decoded_row) {
        jpeg_destroy_decompress(&info);
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = image->data + (ptrdiff_t)info.output_scanline * image->stride;
        if (gray || cmyk) {
            JSAMPROW target = decoded_row;
            jpeg_read_scanlines(&info, &target, 1);
            if (cmyk) cmyk_to_bgr(decoded_row, info.output_width, row);
            for (unsigned x = 0; gray && x < info.output_width; x++)
                row[3 * x] = row[3 * x + 1] = row[3 * x + 2] = decoded_row[x];
        } else {
            jpeg_read_scanlines(&info, &row, 1);
        }
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    free(decoded_row);
    return FA_OK;
}

static void png_fail(png_structp png, png_const_charp message)
{
    char *out = png_get_error_ptr(png);
    snprintf(out, 200, "%s", message);
    png_longjmp(png, 1);
}

static void png_silence(png_structp png, png_const_charp message) { (void)png, (void)message; }

static fa_status read_png(FILE *file, const char *path, fa_image_t *image, fa_error_t *error)
{
    char message[200] = "unknown error";
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, message, png_fail, png_silence);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, &info, NULL);
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return fa_error_set(error, FA_ERROR_INPUT, "%s: bad PNG: %s", path, message);
    }
    png_init_io(png, file);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if ((unsigned long)width * height > MAX_IMAGE_PIXELS) {
        png_destroy_read_struct(&png, &info, NULL);
        return fa_error_set(error, FA_ERROR_INPUT, "%s: image too large", path);
    }
    /* To 8-bit BGR like imread(IMREAD_COLOR): 16-bit keeps the high byte, alpha is dropped. */
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_palette_to_rgb(png);
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_gray_to_rgb(png);
    png_set_bgr(png);
    int passes = png_set_interlace_handling(png); /* interlaced files come in 7 passes */
    png_read_update_info(png, info);
    fa_status status = ensure_image(image, (int)width, (int)height, error);
    if (status == FA_OK) {
        for (int pass = 0; pass < passes; pass++)
            for (png_uint_32 y = 0; y < height; y++)
                png_read_row(png, image->data + (ptrdiff_t)y * image->stride, NULL);
        png_read_end(png, NULL);
    }
    png_destroy_read_struct(&png, &info, NULL);
    return status;
}

fa_status fa_image_file_read(const char *path, fa_image_t *image, fa_error_t *error)
{
    FILE *file = fopen(path, "rb");
    if (!file) return fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
    unsigned char magic[8] = {0};
    size_t got = fread(magic, 1, sizeof magic, file);
    rewind(file);
    fa_status status;
    if (got >= 3 && magic[0] == 0xff && magic[1] == 0xd8 && magic[2] == 0xff) {
        int orientation = 1;
        status = read_jpeg(file, path, image, &orientation, error);
        if (status == FA_OK && orientation != 1) {
            fa_image_t stored = *image; /* a rotated photo: turned into a new buffer */
            int swap = fa_orientation_swaps_sides(orientation);
            status = fa_image_allocate(image, swap ? stored.height : stored.width,
                                       swap ? stored.width : stored.height, 3, error);
            if (status == FA_OK) {
                fa_image_orient(&stored, orientation, image);
                fa_image_release(&stored);
            } else {
                *image = stored;
            }
        }
    } else if (got == 8 && png_sig_cmp(magic, 0, 8) == 0) {
        status = read_png(file, path, image, error);
    } else if (got >= 2 && magic[0] == 'B' && magic[1] == 'M') {
        fa_image_t decoded;
        status = fa_bmp_read(path, &decoded, error);
        if (status == FA_OK) status = ensure_image(image, decoded.width, decoded.height, error);
        if (status == FA_OK) {
            for (int y = 0; y < decoded.height; y++)
                for (int x = 0; x < decoded.width; x++)
                    for (int c = 0; c < 3; c++)
                        image->data[y * image->stride + 3 * x + c] =
                            decoded.data[y * decoded.stride + decoded.channels * x +
                                         (decoded.channels == 3 ? c : 0)];
        }
        fa_image_release(&decoded);
    } else {
        status = fa_error_set(error, FA_ERROR_INPUT,
                              "%s: not an image faceau can read (JPEG, PNG or BMP)", path);
    }
    fclose(file);
    return status;
}
