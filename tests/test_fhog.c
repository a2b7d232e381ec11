/* FHOG: OpenFace 2.2's own .hog records reproduced from the aligned faces it saved; known
 * gradients land in the expected bins; the AVX2 path equals the C reference bit for bit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "features/fhog.h"
#include "io/bmp.h"
#include "testing.h"

enum { SIDE = 112 };

static float *feature_cell(float *features, int row, int col)
{
    return features + (row * FA_HOG_CELLS + col) * FA_HOG_CHANNELS;
}

/* Every frame's FHOG of the saved BMP against OpenFace's record for it. */
static void check_video(const char *name, int expected_frames)
{
    char path[512];
    snprintf(path, sizeof path, "data/reference/openface-2.2-clnf/%s/%s.hog", name, name);
    test_hog_t hog = {0};
    CHECK(test_hog_load(test_shared_path(path), &hog) == 0, "reading %s", path);
    CHECK(hog.frames == expected_frames, "%s: %d HOG frames", name, hog.frames);
    static float features[FA_HOG_SIZE], reference[FA_HOG_SIZE];
    int frames = 0, within = 0, exact = 0;
    long differing = 0;
    double max_difference = 0;
    for (int f = 0; f < hog.frames; f++) {
        snprintf(path, sizeof path,
                 "data/reference/openface-2.2-clnf/%s/%s_aligned/frame_det_00_%06d.bmp", name,
                 name, f + 1);
        fa_image_t face;
        fa_error_t error = {0};
        if (fa_bmp_read(test_shared_path(path), &face, &error) != FA_OK) {
            CHECK(0, "%s", error.message);
            continue;
        }
        fa_fhog_extract(&face, features);
        fa_fhog_extract_reference(&face, reference);
        fa_image_release(&face);
        CHECK(memcmp(features, reference, sizeof features) == 0, "%s frame %d: paths differ",
              name, f + 1);
        const float *expected = hog.values + (size_t)f * FA_HOG_SIZE;
        double frame_max = 0;
        int frame_differing = 0;
        for (int i = 0; i < FA_HOG_SIZE; i++) {
            double d = fabs((double)features[i] - (double)expected[i]);
            if (features[i] != expected[i]) frame_differing++;
            if (d > frame_max) frame_max = d;
        }
        frames++;
        within += frame_max <= 1e-4;
        exact += frame_differing == 0;
        differing += frame_differing;
        if (frame_max > max_difference) max_difference = frame_max;
    }
    printf("%s: %d frames, %d within 1e-4, %d bit-exact, max |diff| %.3g, %ld values differ\n",
           name, frames, within, exact, max_difference, differing);
    CHECK(frames == expected_frames, "%s: compared %d frames", name, frames);
    CHECK(within * 100 >= frames * 99, "%s: only %d of %d frames within 1e-4", name, within,
          frames);
    test_hog_free(&hog);
}

/* A gray ramp of slope 2 per pixel: gradient 4 everywhere. Interior cells hold 64 pixels'
 * worth (256) in one bin, far above the 0.2 clamp, so each of the 4 normalisations gives
 * exactly 0.1 up to float rounding. */
static void check_ramp(int vertical, int descending, int expected_bin)
{
    fa_image_t image;
    CHECK_OK(fa_image_allocate(&image, SIDE, SIDE, 1, NULL));
    for (int y = 0; y < SIDE; y++) {
        for (int x = 0; x < SIDE; x++) {
            int t = vertical ? y : x;
            image.data[y * image.stride + x] = (uint8_t)(descending ? 250 - 2 * t : 2 * t);
        }
    }
    static float features[FA_HOG_SIZE];
    fa_fhog_extract(&image, features);
    fa_image_release(&image);
    const float *cell = feature_cell(features, 5, 5);
    for (int o = 0; o < 18; o++) {
        float expected = o == expected_bin ? 0.4f : 0.0f;
        CHECK(fabsf(cell[o] - expected) < 1e-6f, "ramp %d/%d: bin %d is %g", vertical,
              descending, o, cell[o]);
    }
    for (int o = 0; o < 9; o++) {
        float expected = o == expected_bin % 9 ? 0.4f : 0.0f;
        CHECK(fabsf(cell[18 + o] - expected) < 1e-6f, "ramp: insensitive %d is %g", o,
              cell[18 + o]);
    }
    for (int k = 0; k < 4; k++)
        CHECK(fabsf(cell[27 + k] - 0.04714f) < 1e-6f, "ramp: texture %d is %g", k, cell[27 + k]);
}

/* Red rises along x and blue along y with equal slope, green is flat: a tie. dlib's SIMD
 * columns (x <= 104) take blue (vertical, bin 4); its scalar tail (x >= 105) takes red
 * (horizontal, bin 0), which reaches only the last output column. */
static void check_channel_tie(void)
{
    fa_image_t image;
    CHECK_OK(fa_image_allocate(&image, SIDE, SIDE, 3, NULL));
    for (int y = 0; y < SIDE; y++) {
        for (int x = 0; x < SIDE; x++) {
            uint8_t *p = image.data + y * image.stride + 3 * x;
            p[0] = (uint8_t)(2 * y);
            p[1] = 100;
            p[2] = (uint8_t)(2 * x);
        }
    }
    static float features[FA_HOG_SIZE];
    fa_fhog_extract(&image, features);
    fa_image_release(&image);
    const float *middle = feature_cell(features, 5, 5), *last = feature_cell(features, 5, 11);
    CHECK(middle[4] > 0.3f && middle[0] == 0.0f, "SIMD columns: bins 0/4 = %g/%g", middle[0],
          middle[4]);
    CHECK(last[0] > 0.0f && last[4] > 0.0f, "tail columns: bins 0/4 = %g/%g", last[0], last[4]);
    CHECK(feature_cell(features, 5, 10)[0] == 0.0f, "column 10 has no tail votes");
}

static uint32_t random_state = 12345;

static uint32_t random_next(void)
{
    random_state = random_state * 1664525u + 1013904223u;
    return random_state >> 8;
}

/* Fast path against the C reference on random faces; small ranges force channel ties. */
static void check_kernels(void)
{
    static float fast[FA_HOG_SIZE], reference[FA_HOG_SIZE];
    int mismatches = 0;
    for (int trial = 0; trial < 60; trial++) {
        int channels = trial % 3 == 2 ? 1 : 3;
        uint32_t range = trial % 2 ? 256 : 2 + (uint32_t)(trial % 5);
        fa_image_t image;
        CHECK_OK(fa_image_allocate(&image, SIDE, SIDE, channels, NULL));
        for (int i = 0; i < SIDE * SIDE * channels; i++)
            image.data[i] = (uint8_t)(random_next() % range);
        fa_fhog_extract(&image, fast);
        fa_fhog_extract_reference(&image, reference);
        fa_image_release(&image);
        mismatches += memcmp(fast, reference, sizeof fast) != 0;
    }
#ifdef FA_FHOG_HAVE_AVX2
    printf("kernels: AVX2 %s\n", __builtin_cpu_supports("avx2") ? "used" : "not available");
#endif
    CHECK(mismatches == 0, "%d of 60 random faces differ between paths", mismatches);
}

int main(void)
{
    check_ramp(0, 0, 0);
    check_ramp(0, 1, 9);
    check_ramp(1, 0, 4);
    check_ramp(1, 1, 13);
    check_channel_tie();
    check_kernels();
    check_video("default", 288);
    check_video("changeLighting", 88);
    return test_finish("test_fhog");
}
