/* Still-image formats beyond the plain cases: EXIF orientation in JPEGs (turned upright as
 * imread does), interlaced PNGs, 16-bit and gray PNGs. Expected images are built in the test
 * from the definitions (EXIF's orientation table, PNG's sample layout), not by faceau's code. */
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image_file.h"
#include "testing.h"

static char work[256];

/* The bytes of a file, or NULL. */
static unsigned char *read_bytes(const char *path, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)length);
    if (data && fread(data, 1, (size_t)length, file) != (size_t)length) {
        free(data);
        data = NULL;
    }
    fclose(file);
    *size = (size_t)length;
    return data;
}

/* A copy of a JPEG with an APP1 Exif segment holding only the orientation tag, right after
 * SOI; big- or little-endian TIFF. */
static void write_oriented_jpeg(const unsigned char *jpeg, size_t size, int orientation,
                                int little, const char *path)
{
    unsigned char tiff[26] = {0};
    memcpy(tiff, little ? "II\x2a\0\x08\0\0\0" : "MM\0\x2a\0\0\0\x08", 8);
    unsigned char *entry = tiff + 8;
    if (little) {
        entry[0] = 1;                       /* one entry */
        entry[2] = 0x12, entry[3] = 0x01;   /* tag 0x0112 */
        entry[4] = 3;                       /* SHORT */
        entry[6] = 1;                       /* count 1 */
        entry[10] = (unsigned char)orientation;
    } else {
        entry[1] = 1;
        entry[2] = 0x01, entry[3] = 0x12;
        entry[5] = 3;
        entry[9] = 1;
        entry[11] = (unsigned char)orientation;
    }
    unsigned length = 2 + 6 + sizeof tiff;
    unsigned char header[10] = {0xff, 0xe1, (unsigned char)(length >> 8), (unsigned char)length,
                                'E',  'x',  'i',  'f',  0, 0};
    FILE *file = fopen(path, "wb");
    fwrite(jpeg, 1, 2, file); /* SOI */
    fwrite(header, 1, sizeof header, file);
    fwrite(tiff, 1, sizeof tiff, file);
    fwrite(jpeg + 2, 1, size - 2, file);
    fclose(file);
}

/* The pixel of the stored image shown at displayed position (x, y), per EXIF's table. */
static void stored_position(int orientation, int width, int height, int x, int y, int *sx, int *sy)
{
    switch (orientation) {
    case 3: *sx = width - 1 - x, *sy = height - 1 - y; break;
    case 6: *sx = y, *sy = height - 1 - x; break;  /* rotate 90 clockwise to display */
    case 8: *sx = width - 1 - y, *sy = x; break;   /* rotate 90 counter-clockwise */
    case 2: *sx = width - 1 - x, *sy = y; break;
    default: *sx = x, *sy = y; break;
    }
}

static void check_exif(void)
{
    size_t size = 0;
    unsigned char *jpeg = read_bytes(test_shared_path("data/images/image_sequence/001.jpg"), &size);
    CHECK(jpeg != NULL, "sample JPEG");
    if (!jpeg) return;
    fa_image_t plain = {0};
    fa_error_t error = {0};
    CHECK_OK(fa_image_file_read(test_shared_path("data/images/image_sequence/001.jpg"), &plain,
                                &error));
    static const int orientations[] = {1, 2, 3, 6, 8};
    for (size_t o = 0; o < sizeof orientations / sizeof *orientations; o++) {
        int orientation = orientations[o];
        char path[512];
        snprintf(path, sizeof path, "%s/oriented_%d.jpg", work, orientation);
        write_oriented_jpeg(jpeg, size, orientation, o % 2, path);
        fa_image_t shown = {0};
        CHECK(fa_image_file_read(path, &shown, &error) == FA_OK, "%s", error.message);
        int swap = orientation >= 5;
        CHECK(shown.width == (swap ? plain.height : plain.width) &&
                  shown.height == (swap ? plain.width : plain.height),
              "orientation %d: %dx%d from %dx%d", orientation, shown.width, shown.height,
              plain.width, plain.height);
        int wrong = 0;
        for (int y = 0; shown.data && y < shown.height; y++)
            for (int x = 0; x < shown.width; x++) {
                int sx, sy;
                stored_position(orientation, plain.width, plain.height, x, y, &sx, &sy);
                wrong += memcmp(shown.data + y * shown.stride + 3 * x,
                                plain.data + sy * plain.stride + 3 * sx, 3) != 0;
            }
        CHECK(wrong == 0, "orientation %d: %d pixels not where EXIF puts them", orientation, wrong);
        fa_image_release(&shown);
    }
    fa_image_release(&plain);
    free(jpeg);
}

/* A PNG of the given layout written with libpng; pixel (x, y) channel c holds a known value. */
static unsigned sample_value(int x, int y, int c, int bit_depth)
{
    unsigned v = (unsigned)(x * 37 + y * 101 + c * 53) % 251;
    return bit_depth == 16 ? v * 257 + (unsigned)(x & 1) : v;
}

static void write_png(const char *path, int width, int height, int color_type, int bit_depth,
                      int interlace)
{
    FILE *file = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, file);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    int channels = color_type == PNG_COLOR_TYPE_GRAY ? 1 : 3, bytes = bit_depth / 8;
    png_bytep *rows = malloc(sizeof(png_bytep) * (size_t)height);
    for (int y = 0; y < height; y++) {
        rows[y] = malloc((size_t)(width * channels * bytes));
        for (int x = 0; x < width; x++)
            for (int c = 0; c < channels; c++) {
                unsigned v = sample_value(x, y, c, bit_depth);
                png_bytep p = rows[y] + (x * channels + c) * bytes;
                if (bytes == 2) p[0] = (png_byte)(v >> 8), p[1] = (png_byte)v; /* big-endian */
                else p[0] = (png_byte)v;
            }
    }
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(file);
    for (int y = 0; y < height; y++) free(rows[y]);
    free(rows);
}

static void check_png_layouts(void)
{
    struct { int color_type, bit_depth, interlace; const char *name; } layouts[] = {
        {PNG_COLOR_TYPE_RGB, 8, 1, "interlaced RGB"},
        {PNG_COLOR_TYPE_RGB, 16, 0, "16-bit RGB"},
        {PNG_COLOR_TYPE_GRAY, 8, 1, "interlaced gray"},
        {PNG_COLOR_TYPE_GRAY, 16, 0, "16-bit gray"},
    };
    for (size_t l = 0; l < sizeof layouts / sizeof *layouts; l++) {
        int width = 13, height = 7;
        char path[512];
        snprintf(path, sizeof path, "%s/layout_%zu.png", work, l);
        write_png(path, width, height, layouts[l].color_type, layouts[l].bit_depth,
                  layouts[l].interlace);
        fa_image_t image = {0};
        fa_error_t error = {0};
        CHECK(fa_image_file_read(path, &image, &error) == FA_OK, "%s: %s", layouts[l].name,
              error.message);
        int wrong = 0, gray = layouts[l].color_type == PNG_COLOR_TYPE_GRAY;
        for (int y = 0; image.data && y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++) { /* BGR out: B is the file's third channel */
                    unsigned v = sample_value(x, y, gray ? 0 : 2 - c, layouts[l].bit_depth);
                    if (layouts[l].bit_depth == 16) v >>= 8; /* imread keeps the high byte */
                    wrong += image.data[y * image.stride + 3 * x + c] != v;
                }
        CHECK(wrong == 0, "%s: %d samples wrong", layouts[l].name, wrong);
        fa_image_release(&image);
    }
}

int main(void)
{
    test_temporary_folder(work, sizeof work, "images");
    check_exif();
    check_png_layouts();
    test_remove_folder(work);
    return test_finish("test_image_formats");
}
