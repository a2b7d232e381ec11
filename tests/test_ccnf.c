/* CCNF patch experts: the reader against the facts of LANDMARKS_SPEC §1.5, damaged files, the
 * response kernel against an independent double-precision computation, AVX2 against the C
 * reference (bit for bit), Sigma against its inverse, the area sampler against plain bilinear
 * sampling, and the time of a frame's responses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/image.h"
#include "landmarks/ccnf.h"
#include "landmarks/ccnf_kernels.h"
#include "testing.h"

#define PATCHES "models/openface/model/patch_experts/"

static const char *general_path(int scale) {
    static const char *names[3] = {PATCHES "ccnf_patches_0.25_general.txt",
                                   PATCHES "ccnf_patches_0.35_general.txt",
                                   PATCHES "ccnf_patches_0.5_general.txt"};
    return test_shared_path(names[scale]);
}

static uint64_t random_state = 0x9E3779B97F4A7C15ull;
static double random_uniform(void) /* [0, 1) */
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (double)(random_state >> 11) / 9007199254740992.0;
}

/* ---------------------------------------------------------------------------------------------
 * Reader */

static int count_invisible(const fa_ccnf_scale_t *scale, int view, int *list) {
    int count = 0;
    for (int i = 0; i < scale->point_count; i++)
        if (!scale->visible[view * scale->point_count + i]) list[count++] = i;
    return count;
}

static void test_general_files(const fa_ccnf_t *ccnf) {
    static const double scalings[3] = {0.25, 0.35, 0.5};
    static const double yaw[7] = {0, -20, -45, -70, 70, 45, 20};
    static const int invisible3[] = {9,  10, 11, 12, 13, 14, 15, 16, 21, 22, 23,
                                     24, 25, 26, 32, 34, 35, 39, 42, 43, 44, 45,
                                     46, 47, 52, 53, 54, 55, 56, 60, 63, 64, 65};
    static const int invisible4[] = {0,  1,  2,  3,  4,  5,  6,  7,  17, 18, 19,
                                     20, 21, 22, 31, 32, 34, 36, 37, 38, 39, 40,
                                     41, 42, 48, 49, 50, 58, 59, 60, 61, 64, 67};
    CHECK(ccnf->scale_count == 3 && ccnf->point_count == 68, "%d scales, %d points",
          ccnf->scale_count, ccnf->point_count);
    for (int s = 0; s < ccnf->scale_count; s++) {
        const fa_ccnf_scale_t *scale = &ccnf->scales[s];
        CHECK(scale->scaling == scalings[s], "scale %d scaling %g", s, scale->scaling);
        CHECK(scale->view_count == 7, "scale %d: %d views", s, scale->view_count);
        for (int v = 0; v < scale->view_count && v < 7; v++) {
            double expected = yaw[v] * 3.14159265358979323846 / 180.0;
            CHECK(scale->centers[v][0] == 0 && scale->centers[v][2] == 0 &&
                      fabs(scale->centers[v][1] - expected) < 1e-12,
                  "scale %d view %d centre (%g, %g, %g)", s, v, scale->centers[v][0],
                  scale->centers[v][1], scale->centers[v][2]);
        }
        int list[68];
        int count = count_invisible(scale, 3, list);
        CHECK(count == 33 && memcmp(list, invisible3, sizeof invisible3) == 0,
              "scale %d view 3: %d invisible", s, count);
        count = count_invisible(scale, 4, list);
        CHECK(count == 33 && memcmp(list, invisible4, sizeof invisible4) == 0,
              "scale %d view 4: %d invisible", s, count);
        int others = 0;
        for (int v = 0; v < 7; v++)
            if (v != 3 && v != 4) others += count_invisible(scale, v, list);
        CHECK(others == 0, "scale %d: %d invisible in other views", s, others);
        int filled = 0, seven = 0, three_betas = 0;
        for (int e = 0; e < 7 * 68; e++) {
            const fa_ccnf_expert_t *expert = &scale->experts[e];
            if (expert->neuron_count == 0) continue;
            filled++;
            seven += expert->neuron_count == 7;
            three_betas += expert->beta_count == 3;
        }
        CHECK(filled == 410 && seven == 410 && three_betas == 410,
              "scale %d: %d experts, %d with 7 neurons, %d with 3 betas", s, filled, seven,
              three_betas);
        static const int windows[4] = {7, 9, 11, 15};
        CHECK(scale->component_set_count == 4, "scale %d: %d window sizes", s,
              scale->component_set_count);
        for (int w = 0; w < scale->component_set_count && w < 4; w++)
            CHECK(scale->components[w].window == windows[w] && scale->components[w].count == 3,
                  "scale %d: window entry %d is %d with %d components", s, w,
                  scale->components[w].window, scale->components[w].count);
        /* The component block is the same in all three files. */
        if (s > 0 && scale->component_set_count == 4) {
            int same = 1;
            for (int w = 0; w < 4; w++) {
                size_t n = (size_t)windows[w] * (size_t)windows[w];
                same &=
                    memcmp(scale->components[w].matrices, ccnf->scales[0].components[w].matrices,
                           3 * n * n * sizeof(float)) == 0;
            }
            CHECK(same, "scale %d: sigma components differ from scale 0", s);
        }
    }
    /* Component 0 for window 7 is the 4-neighbour grid Laplacian. */
    const float *laplacian = ccnf->scales[0].components[0].matrices;
    int ok = 1;
    for (int i = 0; i < 49; i++)
        for (int j = 0; j < 49; j++) {
            int dy = abs(i / 7 - j / 7), dx = abs(i % 7 - j % 7);
            int degree = (i / 7 > 0) + (i / 7 < 6) + (i % 7 > 0) + (i % 7 < 6);
            float expected = i == j ? (float)degree : dx + dy == 1 ? -1.0f : 0.0f;
            ok &= laplacian[i * 49 + j] == expected;
        }
    CHECK(ok, "window 7 component 0 is not the grid Laplacian");
}

static void test_other_files(void) {
    fa_error_t error = {0};
    fa_ccnf_t inner;
    const char *inner_path = test_shared_path(
        "models/openface/model/model_inner/patch_experts/ccnf_patches_1.00_inner.txt");
    CHECK(fa_ccnf_load(&inner_path, 1, &inner, &error) == FA_OK, "%s", error.message);
    if (inner.scale_count == 1) {
        int list[68];
        const fa_ccnf_scale_t *scale = &inner.scales[0];
        CHECK(scale->point_count == 51 && scale->view_count == 7 && scale->scaling == 1.0,
              "inner: %d points, %d views", scale->point_count, scale->view_count);
        CHECK(count_invisible(scale, 3, list) == 25 && count_invisible(scale, 4, list) == 25,
              "inner: invisible counts");
        CHECK(fa_ccnf_prepare_window(&inner, 0, 9, &error) == FA_OK, "%s", error.message);
    }
    fa_ccnf_release(&inner);

    const char *eye_paths[2] = {
        test_shared_path(
            "models/openface/model/model_eye/patch_experts/left_ccnf_patches_1.00_synth_lid_.txt"),
        test_shared_path(
            "models/openface/model/model_eye/patch_experts/left_ccnf_patches_1.50_synth_lid_.txt")};
    fa_ccnf_t eye;
    CHECK(fa_ccnf_load(eye_paths, 2, &eye, &error) == FA_OK, "%s", error.message);
    if (eye.scale_count == 2) {
        const fa_ccnf_scale_t *scale = &eye.scales[1];
        CHECK(scale->point_count == 28 && scale->view_count == 1 && scale->scaling == 1.5,
              "left eye: %d points, %d views, scaling %g", scale->point_count, scale->view_count,
              scale->scaling);
        CHECK(scale->component_set_count == 6 && scale->components[0].window == 3 &&
                  scale->components[0].count == 0 && scale->experts[0].beta_count == 0,
              "left eye: %d window entries", scale->component_set_count);
        CHECK(fa_ccnf_prepare_window(&eye, 0, 3, &error) == FA_OK, "%s", error.message);
        CHECK(fa_ccnf_prepare_window(&eye, 1, 5, &error) == FA_OK, "%s", error.message);
        /* No components: Sigma is (2 alpha_sum)^-1 I up to float rounding. */
        const fa_ccnf_expert_t *expert = &eye.scales[0].experts[5];
        double expected = 1.0 / (2.0 * expert->alpha_sum), worst = 0;
        int stride = eye.scales[0].sigma_stride[0];
        for (int i = 0; i < 9; i++)
            for (int j = 0; j < 9; j++) {
                double value = expert->sigma[0][i * stride + j];
                worst = fmax(worst, fabs(value - (i == j ? expected : 0)));
            }
        CHECK(worst < 1e-6 * expected, "eye Sigma off the scaled identity by %g", worst);
    }
    fa_ccnf_release(&eye);
}

static void test_damaged(void) {
    const char *path = general_path(2);
    char *data = NULL;
    size_t size = 0;
    fa_error_t error = {0};
    CHECK(fa_file_read_all(path, &data, &size, &error) == FA_OK, "%s", error.message);
    CHECK(size == 2429528, "%s is %zu bytes", path, size);
    if (!data) return;
    fa_ccnf_scale_t scale;
    CHECK(fa_ccnf_parse_scale(data, size, "whole.txt", &scale, &error) == FA_OK, "%s",
          error.message);
    fa_ccnf_scale_release(&scale);
    static const size_t cuts[] = {0, 5, 100, 2000, 1234567, 2429528 - 9, 2429528 - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        error.message[0] = '\0';
        fa_status status = fa_ccnf_parse_scale(data, cuts[i], "cut.txt", &scale, &error);
        CHECK(status == FA_ERROR_MODEL && strstr(error.message, "cut.txt"),
              "cut at %zu: status %d, '%s'", cuts[i], (int)status, error.message);
        CHECK(scale.experts == NULL && scale.centers == NULL, "cut at %zu: not released", cuts[i]);
    }
    char *longer = malloc(size + 4);
    memcpy(longer, data, size);
    memset(longer + size, 0, 4);
    CHECK(fa_ccnf_parse_scale(longer, size + 4, "long.txt", &scale, &error) == FA_ERROR_MODEL &&
              strstr(error.message, "long.txt"),
          "trailing bytes accepted: '%s'", error.message);
    memcpy(longer, data, size);
    int32_t views = -3;
    memcpy(longer + 8, &views, 4);
    CHECK(fa_ccnf_parse_scale(longer, size, "views.txt", &scale, &error) == FA_ERROR_MODEL &&
              strstr(error.message, "views.txt"),
          "negative view count accepted: '%s'", error.message);
    free(longer);
    free(data);
    const char *missing = "/nonexistent/ccnf_patches.txt";
    fa_ccnf_t ccnf;
    CHECK(fa_ccnf_load(&missing, 1, &ccnf, &error) == FA_ERROR_IO &&
              strstr(error.message, "ccnf_patches.txt"),
          "missing file: '%s'", error.message);
}

/* ---------------------------------------------------------------------------------------------
 * An independent double-precision response: the formulas of §2.5/§2.6 with Sigma from a
 * Gauss-Jordan inverse. */

static int invert_double(double *a, int n, double *inverse) {
    for (int i = 0; i < n * n; i++)
        inverse[i] = i % (n + 1) == 0;
    for (int c = 0; c < n; c++) {
        int pivot = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(a[r * n + c]) > fabs(a[pivot * n + c])) pivot = r;
        if (a[pivot * n + c] == 0) return 0;
        for (int j = 0; j < n; j++) {
            double t = a[c * n + j];
            a[c * n + j] = a[pivot * n + j];
            a[pivot * n + j] = t;
            t = inverse[c * n + j];
            inverse[c * n + j] = inverse[pivot * n + j];
            inverse[pivot * n + j] = t;
        }
        double d = a[c * n + c];
        for (int j = 0; j < n; j++) {
            a[c * n + j] /= d;
            inverse[c * n + j] /= d;
        }
        for (int r = 0; r < n; r++) {
            if (r == c || a[r * n + c] == 0) continue;
            double f = a[r * n + c];
            for (int j = 0; j < n; j++) {
                a[r * n + j] -= f * a[c * n + j];
                inverse[r * n + j] -= f * inverse[c * n + j];
            }
        }
    }
    return 1;
}

/* SigmaInv in double from the expert and the components for window (n = W²). */
static void sigma_inverse_double(const fa_ccnf_t *ccnf, const fa_ccnf_expert_t *expert, int window,
                                 double *out) {
    int n = window * window;
    const fa_ccnf_scale_t *last = &ccnf->scales[ccnf->scale_count - 1];
    double alpha_sum = 0;
    for (int k = 0; k < expert->neuron_count; k++)
        alpha_sum += expert->alphas[k];
    for (int i = 0; i < n * n; i++)
        out[i] = i % (n + 1) == 0 ? 2 * alpha_sum : 0;
    for (int w = 0; w < last->component_set_count; w++) {
        if (last->components[w].window != window) continue;
        for (int c = 0; c < last->components[w].count; c++)
            for (int i = 0; i < n * n; i++)
                out[i] +=
                    2 * expert->betas[c] * last->components[w].matrices[(size_t)c * n * n + i];
    }
}

static void response_double(const fa_ccnf_t *ccnf, const fa_ccnf_expert_t *expert, int window,
                            const float *area, double *response) {
    int side = window + 10, n = window * window;
    double *raw = calloc((size_t)n, sizeof(double));
    for (int y = 0; y < window; y++)
        for (int x = 0; x < window; x++) {
            double patch[121], mean = 0, norm = 0;
            for (int r = 0; r < 11; r++)
                for (int c = 0; c < 11; c++)
                    mean += patch[r * 11 + c] = area[(y + r) * side + x + c];
            mean /= 121;
            for (int i = 0; i < 121; i++)
                norm += (patch[i] - mean) * (patch[i] - mean);
            norm = norm == 0 ? 1 : sqrt(norm);
            double total = 0;
            for (int k = 0; k < expert->neuron_count; k++) {
                const float *w = expert->weights + k * FA_CCNF_INPUTS;
                double z = w[0];
                for (int r = 0; r < 11; r++) /* weights are column-major */
                    for (int c = 0; c < 11; c++)
                        z += w[1 + c * 11 + r] * (patch[r * 11 + c] - mean) / norm;
                if (expert->alphas[k] > 1e-4) total += 2 * expert->alphas[k] / (1 + exp(-z));
            }
            raw[y * window + x] = total;
        }
    double *a = malloc(sizeof(double) * n * n), *sigma = malloc(sizeof(double) * n * n);
    sigma_inverse_double(ccnf, expert, window, a);
    invert_double(a, n, sigma);
    double minimum = INFINITY;
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int t = 0; t < n; t++)
            sum += sigma[i * n + t] * raw[t];
        response[i] = sum;
        minimum = fmin(minimum, sum);
    }
    if (minimum < 0)
        for (int i = 0; i < n; i++)
            response[i] -= minimum;
    free(a);
    free(sigma);
    free(raw);
}

static void random_area(float *area, int side, int kind) {
    for (int i = 0; i < side * side; i++) {
        if (kind == 0)
            area[i] = (float)floor(random_uniform() * 256);
        else if (kind == 1)
            area[i] = (float)(random_uniform() * 255);
        else
            area[i] = 77; /* flat: the contrast norm is 0 */
    }
}

static void test_response_double(const fa_ccnf_t *ccnf, fa_ccnf_workspace_t *workspace) {
    static const int windows[3] = {11, 9, 7};
    double worst = 0;
    for (int s = 0; s < 3; s++) {
        int window = windows[s], n = window * window, index = fa_ccnf_window_index(ccnf, s, window);
        const fa_ccnf_scale_t *scale = &ccnf->scales[s];
        for (int trial = 0; trial < 6; trial++) {
            int e = (int)(random_uniform() * 7 * 68);
            while (scale->experts[e].neuron_count == 0)
                e = (e + 1) % (7 * 68);
            float area[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA],
                response[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW];
            double expected[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW];
            random_area(area, window + 10, trial % 3);
            fa_ccnf_response(&scale->experts[e], window, index, scale->sigma_stride[index], area,
                             response, workspace);
            response_double(ccnf, &scale->experts[e], window, area, expected);
            double peak = 0;
            for (int i = 0; i < n; i++)
                peak = fmax(peak, fabs(expected[i]));
            for (int i = 0; i < n; i++)
                worst = fmax(worst, fabs(response[i] - expected[i]) / fmax(peak, 1e-3));
        }
    }
    printf("response vs double: worst error %.3g of the map's peak\n", worst);
    CHECK(worst < 2e-5, "float response off the double one by %g of the peak", worst);
}

static void test_sigma_inverse(const fa_ccnf_t *ccnf) {
    static const int windows[3] = {11, 9, 7};
    double worst = 0;
    for (int s = 0; s < 3; s++) {
        int window = windows[s], n = window * window, index = fa_ccnf_window_index(ccnf, s, window);
        const fa_ccnf_scale_t *scale = &ccnf->scales[s];
        double *inverse = malloc(sizeof(double) * n * n);
        for (int e = 0; e < 7 * 68; e += 37) {
            const fa_ccnf_expert_t *expert = &scale->experts[e];
            if (!expert->neuron_count) continue;
            sigma_inverse_double(ccnf, expert, window, inverse);
            const float *sigma_t = expert->sigma[index];
            int stride = scale->sigma_stride[index];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    double sum = 0; /* (Sigma SigmaInv)(i, j); Sigma(i, t) = sigma_t[t][i] */
                    for (int t = 0; t < n; t++)
                        sum += sigma_t[t * stride + i] * inverse[t * n + j];
                    worst = fmax(worst, fabs(sum - (i == j)));
                }
        }
        free(inverse);
    }
    printf("Sigma * SigmaInv: worst deviation from I %.3g\n", worst);
    CHECK(worst < 1e-4, "Sigma * SigmaInv off I by %g", worst);
}

/* ---------------------------------------------------------------------------------------------
 * Kernels: AVX2 against the reference, bit for bit */

static void test_kernels(const fa_ccnf_t *ccnf, fa_ccnf_workspace_t *reference,
                         fa_ccnf_workspace_t *fast) {
    if (fast->kernel != FA_CCNF_KERNEL_AVX2) {
        printf("AVX2 kernel not available on this CPU: kernel comparison skipped\n");
        return;
    }
    int mismatches = 0, compared = 0;
    const fa_ccnf_scale_t *scale = &ccnf->scales[1];
    for (int window = 1; window <= FA_CCNF_MAX_WINDOW; window++)
        for (int trial = 0; trial < 6; trial++) {
            int e = (int)(random_uniform() * 7 * 68);
            while (scale->experts[e].neuron_count == 0)
                e = (e + 1) % (7 * 68);
            float area[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA];
            float raw1[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW], raw2[sizeof raw1 / sizeof raw1[0]];
            random_area(area, window + 10, trial % 3);
            fa_ccnf_raw_reference(&scale->experts[e], window, area, raw1, reference);
            fa_ccnf_raw_avx2(&scale->experts[e], window, area, raw2, fast);
            mismatches += memcmp(raw1, raw2, sizeof(float) * window * window) != 0;
            fa_ccnf_raw_avx2_narrow(&scale->experts[e], window, area, raw2, fast);
            mismatches += memcmp(raw1, raw2, sizeof(float) * window * window) != 0;
            /* Sigma product on a random matrix with a negative minimum now and then. */
            int n = window * window, stride = (n + 7) & ~7;
            float *sigma = calloc((size_t)n * stride, sizeof(float));
            for (int i = 0; i < n * stride; i++)
                sigma[i] = (float)(random_uniform() - 0.3) * 0.01f;
            float out1[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW], out2[sizeof out1 / sizeof out1[0]];
            fa_ccnf_sigma_reference(sigma, stride, n, raw1, out1);
            fa_ccnf_sigma_avx2(sigma, stride, n, raw1, out2);
            mismatches += memcmp(out1, out2, sizeof(float) * n) != 0;
            fa_ccnf_sigma_avx2_narrow(sigma, stride, n, raw1, out2);
            mismatches += memcmp(out1, out2, sizeof(float) * n) != 0;
            compared += 4;
            free(sigma);
        }
    CHECK(mismatches == 0, "%d of %d kernel results differ between AVX2 and reference", mismatches,
          compared);
}

/* Distance of a double from the nearest point halfway between two floats, relative to it. */
static double midpoint_distance(double sum) {
    float rounded = (float)sum;
    double up = ((double)rounded + (double)nextafterf(rounded, INFINITY)) / 2;
    double down = ((double)rounded + (double)nextafterf(rounded, -INFINITY)) / 2;
    return fmin(fabs(sum - up), fabs(sum - down)) / fabs(sum);
}

/* The AVX2 and AVX-512 sigmoid sums (a polynomial e^x, glibc's exp where the float could depend on
 * its last bits) against the scalar chain: random activations and alphas, then activations whose
 * sum lies within 2^-42 of a float rounding boundary, which the kernels must hand to glibc's exp.
 */
static void test_sigmoid_sums(void) {
    if (!fa_ccnf_avx2_supported()) return;
    _Alignas(32) float z[FA_CCNF_MAX_NEURONS * 8], fast[8], wide[8];
    int has_wide = fa_ccnf_avx512_supported();
    double alphas[FA_CCNF_MAX_NEURONS];
    int mismatches = 0, compared = 0, near_boundary = 0;
    for (int trial = 0; trial < 200000; trial++) {
        int count = 1 + trial % FA_CCNF_MAX_NEURONS;
        for (int k = 0; k < count; k++) {
            alphas[k] = trial % 5 == 0 && k == 1 ? 1e-5 : random_uniform() * 3;
            for (int l = 0; l < 8; l++) {
                double u = random_uniform();
                /* mostly the activations' usual range, now and then far outside exp_near's */
                z[k * 8 + l] = (float)(trial % 97 == 0 ? (u - 0.5) * 2000 : (u - 0.5) * 60);
            }
        }
        fa_ccnf_sigmoid_sums_avx2(alphas, count, z, 8, fast);
        if (has_wide) fa_ccnf_sigmoid_sums_wide(alphas, count, z, 8, wide);
        for (int l = 0; l < 8; l++) {
            float expected = 0;
            for (int k = 0; k < count; k++)
                if (alphas[k] > 1e-4)
                    expected = fa_ccnf_add_sigmoid(expected, alphas[k], z[k * 8 + l]);
            mismatches += memcmp(&expected, &fast[l], sizeof expected) != 0;
            if (has_wide) mismatches += memcmp(&expected, &wide[l], sizeof expected) != 0;
            compared++;
        }
    }
    /* One neuron, activations stepped float by float until 8 sums lie near a boundary. */
    alphas[0] = 0.73;
    float activation = (float)(random_uniform() * 8 - 4);
    for (int found = 0; found < 8 * 4; activation = nextafterf(activation, INFINITY)) {
        double sum = (2.0 * alphas[0]) / (1.0 + exp(-(double)activation));
        if (midpoint_distance(sum) > 0x1p-42) continue;
        z[found % 8] = activation;
        if (++found % 8) continue;
        fa_ccnf_sigmoid_sums_avx2(alphas, 1, z, 8, fast);
        if (has_wide) fa_ccnf_sigmoid_sums_wide(alphas, 1, z, 8, wide);
        for (int l = 0; l < 8; l++) {
            float expected = fa_ccnf_add_sigmoid(0, alphas[0], z[l]);
            mismatches += memcmp(&expected, &fast[l], sizeof expected) != 0;
            if (has_wide) mismatches += memcmp(&expected, &wide[l], sizeof expected) != 0;
            near_boundary++;
        }
    }
    CHECK(mismatches == 0, "%d of %d sigmoid sums differ from the scalar chain", mismatches,
          compared + near_boundary);
    printf("sigmoid sums (AVX2%s): %d random lanes and %d near a float boundary, all bit-equal\n",
           has_wide ? " and AVX-512" : "", compared, near_boundary);
}

/* ---------------------------------------------------------------------------------------------
 * Area of interest */

static double smooth(double x, double y) {
    return 100 + 0.7 * x + 0.4 * y + 20 * sin(x / 9) * cos(y / 7);
}

static double bilinear(const uint8_t *image, int width, int height, double x, double y) {
    int x0 = (int)floor(x), y0 = (int)floor(y);
    double fx = x - x0, fy = y - y0, sum = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int px = x0 + dx, py = y0 + dy;
            double v = px >= 0 && py >= 0 && px < width && py < height ? image[py * width + px] : 0;
            sum += v * (dx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
        }
    return sum;
}

static void test_sampler(void) {
    enum { WIDTH = 160, HEIGHT = 120 };
    uint8_t *image = malloc(WIDTH * HEIGHT);
    for (int y = 0; y < HEIGHT; y++)
        for (int x = 0; x < WIDTH; x++)
            image[y * WIDTH + x] = (uint8_t)lround(0.85 * smooth(x, y)); /* 68 to 238 */
    float area[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA];
    double worst = 0, worst_edge = 0;
    for (int trial = 0; trial < 200; trial++) {
        int side = 13 + 2 * (trial % 7);
        int edge = trial % 4 == 3;
        double scale = 0.5 + (edge ? 4 : 1) * random_uniform(),
               angle = (random_uniform() - 0.5) * 1.5;
        float a = (float)(scale * cos(angle)), b = (float)(scale * sin(angle));
        /* Inside: the area stays well away from the border; edge trials straddle it. */
        float x = edge ? (float)(random_uniform() * 20 - 10) : (float)(55 + 50 * random_uniform());
        float y = edge ? (float)(HEIGHT - 10 + random_uniform() * 20)
                       : (float)(45 + 30 * random_uniform());
        fa_ccnf_sample_area(image, WIDTH, HEIGHT, WIDTH, a, b, x, y, side, area);
        double c = (side - 1) / 2.0;
        for (int v = 0; v < side; v++)
            for (int u = 0; u < side; u++) {
                double sx = a * (u - c) - b * (v - c) + x, sy = b * (u - c) + a * (v - c) + y;
                double expected = bilinear(image, WIDTH, HEIGHT, sx, sy);
                double error = fabs(area[v * side + u] - expected);
                /* 1/32-px quantisation of a function with gradient < 3.3 per axis; at the border
                   the step to 0 makes the slope up to ~250. */
                if (edge)
                    worst_edge = fmax(worst_edge, error);
                else
                    worst = fmax(worst, error);
            }
    }
    printf("area sampler vs exact bilinear: worst %.3g inside, %.3g at borders\n", worst,
           worst_edge);
    /* Neighbours differ by at most 0.85 x the gradient bounds 2.92 and 3.26, plus 1 of rounding. */
    CHECK(worst < (0.85 * 2.92 + 1 + 0.85 * 3.26 + 1) / 64 + 0.02,
          "sampler off by %g inside the image", worst);
    CHECK(worst_edge < 255.0 / 32 * 1.1, "sampler off by %g at the border", worst_edge);
    /* Unit scale, no rotation, integer centre: the area is the image itself. */
    fa_ccnf_sample_area(image, WIDTH, HEIGHT, WIDTH, 1, 0, 80, 60, 19, area);
    int same = 1;
    for (int v = 0; v < 19; v++)
        for (int u = 0; u < 19; u++)
            same &= area[v * 19 + u] == image[(51 + v) * WIDTH + 71 + u];
    CHECK(same, "identity sampling is not a copy");
    fa_ccnf_sample_area(image, WIDTH, HEIGHT, WIDTH, 1, 0, -100, -100, 19, area);
    int zero = 1;
    for (int i = 0; i < 19 * 19; i++)
        zero &= area[i] == 0;
    CHECK(zero, "sampling outside the image is not 0");
    free(image);
}

/* The AVX2 sampler against the plain one, bit for bit: random scales, angles and centres inside,
 * across every border and far outside, on images down to 2x2 with padded strides. */
static void test_sampler_kernels(void) {
    if (!fa_ccnf_avx2_supported()) {
        printf("area sampler kernels: no AVX2 here, the plain sampler is used\n");
        return;
    }
    enum { MAX_SIDE = 200, PAD = 5 };
    uint8_t *image = malloc((MAX_SIDE + PAD) * MAX_SIDE);
    static float expected[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA];
    static float actual[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA];
    int mismatches = 0, trials = 20000, border_pixels = 0;
    for (int trial = 0; trial < trials; trial++) {
        int width = trial % 10 == 0 ? 2 + trial / 10 % 6 : 20 + (int)(random_uniform() * 180);
        int height = trial % 10 == 0 ? 2 + trial / 60 % 6 : 20 + (int)(random_uniform() * 180);
        int stride = width + (trial % 3 == 0 ? PAD : 0);
        for (int i = 0; i < stride * height; i++)
            image[i] = (uint8_t)(random_uniform() * 256);
        int side = 1 + trial % FA_CCNF_MAX_AREA;
        double scale = 0.2 + 3 * random_uniform(), angle = (random_uniform() - 0.5) * 7;
        float a = (float)(scale * cos(angle)), b = (float)(scale * sin(angle));
        /* centres from well outside to well inside, crossing every border */
        float x = (float)((random_uniform() * 1.6 - 0.3) * width);
        float y = (float)((random_uniform() * 1.6 - 0.3) * height);
        fa_ccnf_area_map_t map;
        fa_ccnf_area_map(a, b, x, y, side, &map);
        memset(actual, 0xff, sizeof actual);
        fa_ccnf_sample_map_reference(image, width, height, stride, &map, expected);
        fa_ccnf_sample_map_avx2(image, width, height, stride, &map, actual);
        mismatches += memcmp(expected, actual, sizeof(float) * side * side) != 0;
        /* nothing written past the area (the 0xff bytes are a NaN, equal to nothing) */
        mismatches += side < FA_CCNF_MAX_AREA && actual[side * side] == actual[side * side];
        for (int i = 0; i < side * side; i++)
            border_pixels += expected[i] == 0;
    }
    CHECK(mismatches == 0, "AVX2 area sampler differs from the plain one in %d of %d trials",
          mismatches, trials);
    CHECK(border_pixels > 0, "no trial reached outside the image");
    printf("area sampler: AVX2 equals the plain sampler bit for bit in %d trials "
           "(%d pixels outside an image)\n", trials, border_pixels);
    free(image);
}

/* ---------------------------------------------------------------------------------------------
 * A real frame: default.wmv frame 1 with OpenFace's landmarks; checks and timings */

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void test_frame(const fa_ccnf_t *ccnf, fa_ccnf_workspace_t *reference,
                       fa_ccnf_workspace_t *fast) {
    fa_source_t *source = NULL;
    fa_error_t error = {0};
    const fa_image_t *frame = NULL;
    double timestamp;
    if (fa_source_open(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO, &source,
                       &error) != FA_OK ||
        fa_source_read(source, &frame, &timestamp, &error) != FA_OK) {
        CHECK(0, "video: %s", error.message);
        fa_source_close(source);
        return;
    }
    fa_image_t gray;
    fa_image_allocate(&gray, frame->width, frame->height, 1, &error);
    fa_image_bgr_to_gray(frame, &gray);
    int width = gray.width, height = gray.height;
    uint8_t *image = malloc((size_t)width * height);
    for (int y = 0; y < height; y++)
        memcpy(image + y * width, gray.data + y * gray.stride, (size_t)width);
    fa_image_release(&gray);
    fa_source_close(source);

    test_csv_t csv;
    if (test_csv_load(test_shared_path("data/reference/openface-2.2-clnf/default/default.csv"),
                      &csv) != 0) {
        CHECK(0, "reference CSV missing");
        free(image);
        return;
    }
    float landmarks[136], rotation[3];
    char name[16];
    for (int i = 0; i < 68; i++) {
        snprintf(name, sizeof name, "x_%d", i);
        landmarks[i] = (float)test_csv_value(&csv, 0, test_csv_column(&csv, name));
        snprintf(name, sizeof name, "y_%d", i);
        landmarks[68 + i] = (float)test_csv_value(&csv, 0, test_csv_column(&csv, name));
    }
    rotation[0] = (float)test_csv_value(&csv, 0, test_csv_column(&csv, "p_rx"));
    rotation[1] = (float)test_csv_value(&csv, 0, test_csv_column(&csv, "p_ry"));
    rotation[2] = (float)test_csv_value(&csv, 0, test_csv_column(&csv, "p_rz"));
    double pdm_scale = test_csv_value(&csv, 0, test_csv_column(&csv, "p_scale"));
    test_csv_free(&csv);

    static const int windows[3] = {11, 9, 7};
    float *responses1 = malloc(sizeof(float) * 68 * 121),
          *responses2 = malloc(sizeof(float) * 68 * 121);
    for (int s = 0; s < 3; s++) {
        int window = windows[s], view = fa_ccnf_view_index(ccnf, s, rotation);
        CHECK(view == 0, "frame 1 view %d at scale %d", view, s);
        /* Similarity close to what CLNF would use (the PDM scale over the patch scaling). */
        double k = pdm_scale / ccnf->scales[s].scaling;
        float a = (float)(k * cos(rotation[2])), b = (float)(k * sin(rotation[2]));
        int repeats = 20;
        double times[2];
        for (int kernel = 0; kernel < 2; kernel++) {
            fa_ccnf_workspace_t *workspace = kernel ? fast : reference;
            float *out = kernel ? responses2 : responses1;
            double start = seconds_now();
            for (int r = 0; r < repeats; r++)
                fa_ccnf_responses(ccnf, s, window, view, image, width, height, width, landmarks, a,
                                  b, out, workspace, NULL);
            times[kernel] = (seconds_now() - start) / repeats;
        }
        int n = window * window, nonnegative = 1;
        for (int i = 0; i < 68 * n; i++)
            nonnegative &= responses1[i] >= 0;
        CHECK(nonnegative, "scale %d: negative response", s);
        CHECK(memcmp(responses1, responses2, sizeof(float) * 68 * n) == 0,
              "scale %d: frame responses differ between kernels", s);
        printf("frame responses, 68 landmarks, window %2d at scale %.2f: reference %.3f ms, %s "
               "%.3f ms\n",
               window, ccnf->scales[s].scaling, times[0] * 1e3,
               fast->kernel == FA_CCNF_KERNEL_AVX2 ? "AVX2" : "reference", times[1] * 1e3);
        /* The landmark response of a tracked face peaks near the centre for most landmarks. */
        int central = 0;
        for (int i = 0; i < 68; i++) {
            int best = 0;
            for (int j = 1; j < n; j++)
                if (responses1[i * n + j] > responses1[i * n + best]) best = j;
            central += abs(best / window - window / 2) <= 2 && abs(best % window - window / 2) <= 2;
        }
        CHECK(central >= 50, "scale %d: only %d of 68 responses peak near the landmark", s,
              central);
    }
    free(responses1);
    free(responses2);
    free(image);
}

int main(void) {
    fa_error_t error = {0};
    const char *paths[3] = {general_path(0), general_path(1), general_path(2)};
    fa_ccnf_t ccnf;
    double start = seconds_now();
    fa_status status = fa_ccnf_load(paths, 3, &ccnf, &error);
    CHECK(status == FA_OK, "%s", error.message);
    if (status != FA_OK) return test_finish("ccnf");
    double loaded = seconds_now();
    static const int windows[3] = {11, 9, 7};
    for (int s = 0; s < 3; s++)
        CHECK(fa_ccnf_prepare_window(&ccnf, s, windows[s], &error) == FA_OK, "%s", error.message);
    printf("load %.3f s, Sigmas for windows 11/9/7 %.3f s\n", loaded - start,
           seconds_now() - loaded);
    CHECK(fa_ccnf_window_index(&ccnf, 1, 9) == 0 && fa_ccnf_window_index(&ccnf, 1, 11) < 0,
          "window index");

    fa_ccnf_workspace_t *reference = malloc(sizeof *reference), *fast = malloc(sizeof *fast);
    fa_ccnf_workspace_init(reference, FA_CCNF_KERNEL_REFERENCE);
    fa_ccnf_workspace_init(fast, FA_CCNF_KERNEL_AUTO);

    test_general_files(&ccnf);
    test_other_files();
    test_damaged();
    test_response_double(&ccnf, reference);
    test_response_double(&ccnf, fast);
    test_sigma_inverse(&ccnf);
    test_kernels(&ccnf, reference, fast);
    test_sigmoid_sums();
    test_sampler();
    test_sampler_kernels();
    test_frame(&ccnf, reference, fast);

    free(reference);
    free(fast);
    fa_ccnf_release(&ccnf);
    return test_finish("ccnf");
}
