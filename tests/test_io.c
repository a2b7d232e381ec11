/* I/O units: the landmark CSV stream, BMP round trip, still images. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/image.h"
#include "io/bmp.h"
#include "io/image_file.h"
#include "testing.h"

static void write_file(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    fputs(text, file);
    fclose(file);
}

static void make_landmark_csv(const char *path, const char *rows)
{
    FILE *file = fopen(path, "w");
    fputs("frame, face_id, timestamp, confidence, success", file);
    for (int i = 0; i < 68; i++) fprintf(file, ", x_%d", i);
    for (int i = 0; i < 68; i++) fprintf(file, ", y_%d", i);
    fputc('\n', file);
    fputs(rows, file);
    fclose(file);
}

static void append_row(char *rows, int frame, int success, double base)
{
    char *end = rows + strlen(rows);
    end += sprintf(end, "%d,  0,  0.000,  0.75,  %d", frame, success);
    for (int i = 0; i < 136; i++) end += sprintf(end, ",  %.1f", base + i);
    strcat(end, "\n");
}

static void test_landmark_file(void)
{
    char path[] = "/tmp/faceau_landmarks_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    static char rows[65536];
    rows[0] = '\0';
    append_row(rows, 1, 1, 100.0);
    append_row(rows, 3, 0, 200.0); /* frame 2 missing, frame 3 without face */
    append_row(rows, 4, 1, 300.0);
    append_row(rows, 4, 1, 900.0); /* a second face in frame 4: ignored */
    append_row(rows, 5, 1, 400.0);
    make_landmark_csv(path, rows);

    fa_landmark_file_t *file = NULL;
    fa_error_t error = {0};
    CHECK(fa_landmark_file_open(path, &file, &error) == FA_OK, "open: %s", error.message);
    fa_landmarks_t lm;
    CHECK(fa_landmark_file_get(file, 1, &lm, &error) == FA_OK && lm.success && lm.x[0] == 100.0f &&
              lm.y[67] == 235.0f && fabs(lm.confidence - 0.75) < 1e-12,
          "frame 1: success %d x0 %g y67 %g", lm.success, (double)lm.x[0], (double)lm.y[67]);
    CHECK(fa_landmark_file_get(file, 2, &lm, &error) == FA_OK && !lm.success, "frame 2 has no row");
    CHECK(fa_landmark_file_get(file, 3, &lm, &error) == FA_OK && !lm.success, "frame 3 failed");
    CHECK(fa_landmark_file_get(file, 4, &lm, &error) == FA_OK && lm.x[0] == 300.0f,
          "frame 4 takes the first face: x0 %g", (double)lm.x[0]);
    CHECK(fa_landmark_file_get(file, 5, &lm, &error) == FA_OK && lm.x[0] == 400.0f, "frame 5");
    CHECK(fa_landmark_file_get(file, 9, &lm, &error) == FA_OK && !lm.success, "past the end");
    CHECK(fa_landmark_file_get(file, 9, &lm, &error) == FA_ERROR_ARGUMENT, "out of order");
    fa_landmark_file_close(file);

    rows[0] = '\0';
    append_row(rows, 1, 1, 100.0);
    strcat(rows, "2, 0, 0.1, 0.9, 1, abc\n");
    make_landmark_csv(path, rows);
    CHECK(fa_landmark_file_open(path, &file, &error) == FA_OK, "open");
    CHECK(fa_landmark_file_get(file, 1, &lm, &error) == FA_OK, "good row");
    CHECK(fa_landmark_file_get(file, 2, &lm, &error) == FA_ERROR_INPUT &&
              strstr(error.message, path) && strstr(error.message, ":3:"),
          "a bad row names file and line: %s", error.message);
    fa_landmark_file_close(file);

    write_file(path, "frame, success, confidence\n1, 1, 0.9\n");
    CHECK(fa_landmark_file_open(path, &file, &error) == FA_ERROR_INPUT && file == NULL,
          "a CSV without landmark columns is refused: %s", error.message);
    write_file(path, "");
    CHECK(fa_landmark_file_open(path, &file, &error) == FA_ERROR_INPUT, "empty file");
    CHECK(fa_landmark_file_open("/nonexistent.csv", &file, &error) == FA_ERROR_IO, "missing");
    unlink(path);
}

static void test_bmp_round_trip(void)
{
    char path[] = "/tmp/faceau_bmp_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    for (int channels = 1; channels <= 3; channels += 2) {
        fa_image_t image, back;
        fa_error_t error = {0};
        fa_image_allocate(&image, 13, 7, channels, &error); /* odd width: row padding */
        for (int i = 0; i < 13 * 7 * channels; i++) image.data[i] = (uint8_t)(i * 37 + 11);
        CHECK(fa_bmp_write(path, &image, &error) == FA_OK, "write: %s", error.message);
        CHECK(fa_bmp_read(path, &back, &error) == FA_OK, "read: %s", error.message);
        CHECK(back.width == 13 && back.height == 7 && back.channels == channels &&
                  memcmp(back.data, image.data, (size_t)(13 * 7 * channels)) == 0,
              "%d-channel BMP round trip", channels);
        fa_image_release(&image);
        fa_image_release(&back);
    }
    unlink(path);
}

static void test_still_images(void)
{
    fa_image_t image = {0};
    fa_error_t error = {0};
    CHECK(fa_image_file_read(test_shared_path("data/images/sample1.jpg"), &image, &error) == FA_OK,
          "sample1.jpg: %s", error.message);
    CHECK(image.width == 640 && image.height == 400 && image.channels == 3, "size %dx%d",
          image.width, image.height);
    /* An OpenFace aligned face (BMP) is read as BGR. */
    CHECK(fa_image_file_read(test_shared_path("data/reference/openface-2.2-clnf/default/"
                                              "default_aligned/frame_det_00_000001.bmp"),
                             &image, &error) == FA_OK &&
              image.width == 112,
          "BMP through fa_image_file_read: %s", error.message);
    char path[] = "/tmp/faceau_image_XXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, "not an image at all", 19) == 19, "write");
    close(fd);
    CHECK(fa_image_file_read(path, &image, &error) == FA_ERROR_INPUT && strstr(error.message, path),
          "text file refused: %s", error.message);
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, "\xff\xd8\xff\xe0\x00\x10JFIF", 10) == 10, "write");
    close(fd);
    CHECK(fa_image_file_read(path, &image, &error) == FA_ERROR_INPUT, "truncated JPEG refused: %s",
          error.message);
    unlink(path);
    fa_image_release(&image);
}

/* The SIMD BGR-to-gray against the per-pixel formula, on widths around the 16-pixel step and
 * on the extremes (all 0, all 255). */
static void check_gray_kernels(void)
{
    static const int widths[] = {1, 2, 15, 16, 17, 31, 33, 63, 64, 65, 127, 128, 129, 640, 641};
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int have_ssse3 = __builtin_cpu_supports("ssse3");
    int have_vbmi = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw");
#endif
    unsigned seed = 7;
    int differing = 0;
    for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
        for (int fill = 0; fill < 3; fill++) {
            fa_image_t bgr = {0}, fast = {0}, reference = {0};
            int width = widths[w], height = 3;
            fa_image_allocate(&bgr, width, height, 3, NULL);
            fa_image_allocate(&fast, width, height, 1, NULL);
            fa_image_allocate(&reference, width, height, 1, NULL);
            for (int i = 0; i < width * height * 3; i++) {
                seed = seed * 1103515245u + 12345u;
                bgr.data[i] = fill == 0 ? (uint8_t)(seed >> 16) : fill == 1 ? 0 : 255;
            }
            fa_image_bgr_to_gray(&bgr, &fast);
            fa_image_bgr_to_gray_reference(&bgr, &reference);
            differing += memcmp(fast.data, reference.data, (size_t)(width * height)) != 0;
#if defined(__x86_64__) || defined(__i386__)
            /* each kernel, not only the one this CPU gets */
            if (have_ssse3) {
                fa_image_bgr_to_gray_with(&bgr, &fast, fa_gray_row_ssse3);
                differing += memcmp(fast.data, reference.data, (size_t)(width * height)) != 0;
            }
            if (have_vbmi) {
                fa_image_bgr_to_gray_with(&bgr, &fast, fa_gray_row_vbmi);
                differing += memcmp(fast.data, reference.data, (size_t)(width * height)) != 0;
            }
#endif
            fa_image_release(&bgr);
            fa_image_release(&fast);
            fa_image_release(&reference);
        }
    }
    CHECK(differing == 0, "%d gray images differ between the SIMD and plain C paths", differing);
}

int main(void)
{
    check_gray_kernels();
    test_landmark_file();
    test_bmp_round_trip();
    test_still_images();
    return test_finish("test_io");
}
