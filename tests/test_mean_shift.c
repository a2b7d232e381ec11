/* The SIMD mean shifts of NU-RLMS against the plain C reference, bit for bit: random maps and
 * positions (clamped ones at and past the window edges, grid-snapping boundaries, infinities and
 * NaN, which get a row of zeros), random visibility and every group size, windows 1 to 11 with
 * and without a KDE table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "landmarks/clnf_kernels.h"
#include "testing.h"

enum { POINTS = FA_CLNF_MAX_POINTS, CELLS = FA_CLNF_MAX_WINDOW * FA_CLNF_MAX_WINDOW };

static unsigned random_state = 12345;

static unsigned random_next(void) {
    random_state = random_state * 1103515245u + 12345u;
    return random_state >> 8;
}

static float random_unit(void) {
    return (float)(random_next() & 0xFFFFFF) / 16777216.0f;
}

/* A position: mostly inside the window, often clamped or on an edge or a snapping boundary,
 * rarely infinite or not a number. */
static float random_position(int window) {
    float last = window - 0.1f;
    if (random_next() % 64 == 0) return (random_next() & 1) ? NAN : -INFINITY;
    switch (random_next() % 10) {
    case 0:
        return -2.0f * random_unit() - 1e-6f;
    case 1:
        return last + 2.0f * random_unit() + 1e-6f;
    case 2:
        return (random_next() & 1) ? 0.0f : -0.0f;
    case 3:
        return last;
    case 4:
        return (float)(random_next() % (10 * window)) * 0.1f + 0.05f; /* halfway */
    case 5:
        return nextafterf(last, 0);
    default:
        return (window + 2.0f) * random_unit() - 1.0f;
    }
}

/* Response maps: random non-negative values, some sparse, an all-zero one (a 0/0 shift). */
static void random_maps(int window, float *maps) {
    int cells = window * window;
    for (int i = 0; i < POINTS; i++) {
        int kind = random_next() % 6;
        for (int c = 0; c < cells; c++) {
            float v = random_unit();
            if (kind == 0) v = (random_next() % 4) ? 0.0f : v;
            if (kind == 1) v *= 1e-3f;
            if (kind == 2 && i % 17 == 0) v = 0;
            maps[i * cells + c] = v;
        }
    }
}

typedef struct kernel {
    const char *name;
    fa_clnf_mean_shifts_fn run;
} kernel_t;

static unsigned long compared;

static void compare_kernels(const fa_clnf_model_t *model, int window, const float *maps,
                            const int *points, int count, const float *dxs, const float *dys,
                            const kernel_t *kernels, int kernel_count, const char *what) {
    float expected[2 * POINTS], actual[2 * POINTS];
    memset(expected, 0x5A, sizeof expected);
    fa_clnf_mean_shifts_reference(model, window, maps, points, count, dxs, dys, expected,
                                  expected + POINTS);
    for (int k = 0; k < kernel_count; k++) {
        memset(actual, 0x5A, sizeof actual);
        kernels[k].run(model, window, maps, points, count, dxs, dys, actual, actual + POINTS);
        int equal = memcmp(expected, actual, sizeof actual) == 0;
        CHECK(equal, "%s, window %d, %s, %d points", kernels[k].name, window, what, count);
        if (!equal)
            for (int i = 0; i < 2 * POINTS; i++)
                if (memcmp(&expected[i], &actual[i], sizeof(float)) != 0) {
                    fprintf(stderr, "  shift %d: %.9g, expected %.9g\n", i, actual[i], expected[i]);
                    break;
                }
        compared++;
    }
}

/* Models that have a KDE table for the window (tracking uses it) and that do not. */
static void test_window(const fa_pdm_t *pdm, int window, int table, const kernel_t *kernels,
                        int kernel_count) {
    fa_clnf_settings_t settings;
    fa_clnf_settings_inner(&settings);
    settings.sigma = 1.0f + 0.1f * window;
    settings.windows_init[0] = window;
    settings.windows_track[0] = table ? window : 0;
    fa_clnf_model_t model;
    fa_error_t error = {0};
    CHECK_OK(fa_clnf_model_init(&model, pdm, &settings, &error));
    if (!model.pdm) return;
    CHECK((model.kde[window] != NULL) == table, "window %d table %d", window, table);
    const char *what = table ? "table" : "rows computed";
    static float maps[POINTS * CELLS];
    float dxs[POINTS], dys[POINTS];
    int points[POINTS];
    for (int round = 0; round < 12; round++) {
        random_maps(window, maps);
        for (int i = 0; i < POINTS; i++)
            dxs[i] = random_position(window), dys[i] = random_position(window);
        /* every group size in order, then random visibility (some rounds none or all) */
        for (int count = round == 0 ? 0 : POINTS; count <= POINTS; count++) {
            for (int i = 0; i < count; i++)
                points[i] = i;
            compare_kernels(&model, window, maps, points, count, dxs, dys, kernels, kernel_count,
                            what);
        }
        int visible_percent = (int)(random_next() % 101), count = 0;
        for (int i = 0; i < POINTS; i++)
            if ((int)(random_next() % 100) < visible_percent) points[count++] = i;
        compare_kernels(&model, window, maps, points, count, dxs, dys, kernels, kernel_count, what);
    }
    fa_clnf_model_release(&model);
}

int main(void) {
    /* The fit reads only the PDM's sizes and eigenvalues. */
    float eigenvalue = 1.0f;
    fa_pdm_t pdm = {.point_count = POINTS, .mode_count = 1, .eigenvalues = &eigenvalue};
    kernel_t kernels[3];
    int kernel_count = 0;
    if (fa_clnf_avx2_supported())
        kernels[kernel_count++] = (kernel_t){"AVX2", fa_clnf_mean_shifts_avx2};
    else
        printf("no AVX2: the AVX2 mean shifts are not tested\n");
    if (fa_clnf_avx512_supported())
        kernels[kernel_count++] = (kernel_t){"AVX-512", fa_clnf_mean_shifts_avx512};
    else
        printf("no AVX-512: the AVX-512 mean shifts are not tested\n");
    kernels[kernel_count++] = (kernel_t){"selected", fa_clnf_mean_shifts_kernel()};
    for (int window = 1; window <= FA_CLNF_MAX_WINDOW; window++)
        for (int table = 0; table < 2; table++)
            test_window(&pdm, window, table, kernels, kernel_count);
    printf("%lu comparisons\n", compared);
    return test_finish("mean_shift");
}
