/* The CCNF response kernels against the library whose rounding they model: OpenFace's
 * ResponseOpenBlas computed with OpenBLAS 0.3.21's sgemm_ (loaded with dlopen, forced onto its
 * SkylakeX kernels), bit for bit. Every expert of main_clnf_general.txt (main model, inner face,
 * eyes) at every window the tracker prepares, on areas sampled from frames of default.wmv around
 * the landmarks OpenFace found there; then windows 1-15 on random areas with a random Sigma, which
 * reach the rules' other cases (groups of 4 rows, several leftover rows). Compared: each
 * activation with fa_ccnf_activation, the raw map and the Sigma product of both kernels, and the
 * whole response. Skipped, with a message, when the CPU lacks AVX-512 or the library is missing
 * or another version. */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/image.h"
#include "landmarks/ccnf.h"
#include "landmarks/ccnf_kernels.h"
#include "landmarks/clnf_model.h"
#include "openblas_skylakex.h"
#include "testing.h"

enum { K = FA_CCNF_INPUTS, MAX_N = FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW };

static void *library;
static fa_ccnf_workspace_t *reference_workspace, *fast_workspace;

typedef struct tally {
    long activations, activations_differ;
    long maps, raw_differ[3], sigma_differ[3], response_differ[2];
} tally_t;

/* OpenFace's im2colContrastNormBias: row p = x W + y of the column-major M x K matrix A holds 1
 * and the window at (x, y) flattened column-major, centred and divided by its norm. */
static void im2col(const float *area, int window, float *a) {
    int side = window + FA_CCNF_SUPPORT - 1, m = window * window;
    for (int x = 0; x < window; x++)
        for (int y = 0; y < window; y++) {
            int p = x * window + y;
            float row[K], sum = 0;
            for (int yy = 0; yy < FA_CCNF_SUPPORT; yy++)
                for (int xx = 0; xx < FA_CCNF_SUPPORT; xx++) {
                    float value = area[(y + yy) * side + x + xx];
                    sum += value;
                    row[1 + xx * FA_CCNF_SUPPORT + yy] = value;
                }
            float mean = sum / (float)(FA_CCNF_SUPPORT * FA_CCNF_SUPPORT), sum_sq = 0;
            for (int t = 1; t < K; t++) {
                row[t] -= mean;
                sum_sq += row[t] * row[t];
            }
            float norm = sqrtf(sum_sq);
            if (norm == 0) norm = 1;
            norm = (float)(1.0 / norm);
            row[0] = 1;
            for (int t = 1; t < K; t++)
                row[t] *= norm;
            for (int t = 0; t < K; t++)
                a[p + (size_t)m * t] = row[t];
        }
}

/* One expert on one area: the library's response (in expected) next to faceau's kernels. sigma
 * is the stored Sigma (transposed, rows of stride floats). */
static void compare_expert(const fa_ccnf_expert_t *expert, int window, const float *sigma,
                           int stride, const float *area, tally_t *tally, float *expected) {
    int m = window * window, count = expert->neuron_count;
    static float a[MAX_N * K], b[FA_CCNF_MAX_NEURONS * K], c[MAX_N * FA_CCNF_MAX_NEURONS];
    static float sigma_b[MAX_N * MAX_N];
    im2col(area, window, a);
    /* B = OpenFace's weight_matrix (neurons x K, row-major) seen as column-major K x N */
    memcpy(b, expert->weights, sizeof(float) * (size_t)count * K);
    test_openblas_sgemm(library, m, count, K, 1.0f, a, m, b, K, 0.0f, c, m);

    float x[K - 1];
    for (int p = 0; p < m; p++) {
        for (int t = 1; t < K; t++)
            x[t - 1] = a[p + (size_t)m * t];
        for (int k = 0; k < count; k++) {
            float z = fa_ccnf_activation(expert->weights + (size_t)k * K, x,
                                         fa_ccnf_activation_order(p, window, k, count));
            tally->activations_differ += test_differing_floats(&z, &c[p + m * k], 1);
        }
    }
    tally->activations += (long)m * count;

    /* The sigmoid sums (no BLAS here), then OpenFace's map transposed to row-major y W + x. */
    float raw[MAX_N];
    for (int x0 = 0; x0 < window; x0++)
        for (int y0 = 0; y0 < window; y0++) {
            int p = x0 * window + y0;
            float response = 0;
            for (int k = 0; k < count; k++)
                if (expert->alphas[k] > 1e-4)
                    response = fa_ccnf_add_sigmoid(response, expert->alphas[k], c[p + m * k]);
            raw[y0 * window + x0] = response;
        }
    /* The Sigma product: A = raw (1 x W²), B = OpenFace's Sigma (row-major) as column-major,
       B(t, i) = Sigma[i][t] = sigma[t * stride + i]. */
    for (int t = 0; t < m; t++)
        for (int i = 0; i < m; i++)
            sigma_b[t + (size_t)m * i] = sigma[(size_t)t * stride + i];
    test_openblas_sgemm(library, 1, m, m, 1.0f, raw, 1, sigma_b, m, 0.0f, expected, 1);
    float minimum = expected[0];
    for (int i = 1; i < m; i++)
        minimum = expected[i] < minimum ? expected[i] : minimum;
    if (minimum < 0)
        for (int i = 0; i < m; i++)
            expected[i] -= minimum;

    float ours[MAX_N], product[MAX_N];
    fa_ccnf_raw_reference(expert, window, area, ours, reference_workspace);
    tally->raw_differ[0] += test_differing_floats(ours, raw, (size_t)m);
    fa_ccnf_sigma_reference(sigma, stride, m, raw, product);
    tally->sigma_differ[0] += test_differing_floats(product, expected, (size_t)m);
    if (fast_workspace->kernel == FA_CCNF_KERNEL_AVX2) {
        fa_ccnf_raw_avx2(expert, window, area, ours, fast_workspace);
        tally->raw_differ[1] += test_differing_floats(ours, raw, (size_t)m);
        fa_ccnf_raw_avx2_narrow(expert, window, area, ours, fast_workspace);
        tally->raw_differ[2] += test_differing_floats(ours, raw, (size_t)m);
        fa_ccnf_sigma_avx2(sigma, stride, m, raw, product);
        tally->sigma_differ[1] += test_differing_floats(product, expected, (size_t)m);
        fa_ccnf_sigma_avx2_narrow(sigma, stride, m, raw, product);
        tally->sigma_differ[2] += test_differing_floats(product, expected, (size_t)m);
    }
    tally->maps++;
}

/* compare_expert at a prepared window, and the response as fa_ccnf_response gives it. */
static void compare_response(const fa_ccnf_scale_t *scale, int e, int w, const float *area,
                             tally_t *tally) {
    const fa_ccnf_expert_t *expert = &scale->experts[e];
    int window = scale->windows[w], m = window * window;
    int stride = scale->sigma_stride[w];
    float expected[MAX_N], ours[MAX_N];
    compare_expert(expert, window, expert->sigma[w], stride, area, tally, expected);
    fa_ccnf_response(expert, window, w, stride, area, ours, reference_workspace);
    tally->response_differ[0] += test_differing_floats(ours, expected, (size_t)m);
    fa_ccnf_response(expert, window, w, stride, area, ours, fast_workspace);
    tally->response_differ[1] += test_differing_floats(ours, expected, (size_t)m);
}

static void report(const char *what, const tally_t *t) {
    printf("%s: %ld maps; values differing from the library: activations %ld of %ld, raw maps "
           "%ld / %ld / %ld, Sigma products %ld / %ld / %ld (C / AVX2 / AVX2 narrow), "
           "responses %ld / %ld (C / AVX2)\n",
           what, t->maps, t->activations_differ, t->activations, t->raw_differ[0], t->raw_differ[1],
           t->raw_differ[2], t->sigma_differ[0], t->sigma_differ[1], t->sigma_differ[2],
           t->response_differ[0], t->response_differ[1]);
    long total = t->activations_differ + t->response_differ[0] + t->response_differ[1];
    for (int i = 0; i < 3; i++)
        total += t->raw_differ[i] + t->sigma_differ[i];
    CHECK(t->maps > 0 && total == 0, "%s: %ld values differ from OpenBLAS", what, total);
}

/* The gray frames and OpenFace's landmarks (x then y, 68 each) and PDM scale on them. */
enum { FRAMES = 3 };
static const int frame_numbers[FRAMES] = {0, 120, 250};
typedef struct frame {
    uint8_t *gray;
    int width, height;
    float landmarks[136];
    float scale, roll;
} frame_t;

static int load_frames(frame_t *frames) {
    fa_source_t *source = NULL;
    fa_error_t error = {0};
    test_csv_t csv;
    if (fa_source_open(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO, &source,
                       &error) != FA_OK ||
        test_csv_load(test_shared_path("data/reference/openface-2.2-clnf/default/default.csv"),
                      &csv) != 0) {
        CHECK(0, "default.wmv or its reference CSV: %s", error.message);
        fa_source_close(source);
        return 0;
    }
    int loaded = 0;
    for (int number = 0; loaded < FRAMES; number++) {
        const fa_image_t *image = NULL;
        double timestamp;
        if (fa_source_read(source, &image, &timestamp, &error) != FA_OK) break;
        if (number != frame_numbers[loaded]) continue;
        frame_t *f = &frames[loaded++];
        fa_image_t gray;
        fa_image_allocate(&gray, image->width, image->height, 1, &error);
        fa_image_bgr_to_gray(image, &gray);
        f->width = gray.width, f->height = gray.height;
        f->gray = malloc((size_t)f->width * f->height);
        for (int y = 0; y < f->height; y++)
            memcpy(f->gray + (size_t)y * f->width, gray.data + y * gray.stride, (size_t)f->width);
        fa_image_release(&gray);
        char name[16];
        for (int i = 0; i < 68; i++) {
            snprintf(name, sizeof name, "x_%d", i);
            f->landmarks[i] = (float)test_csv_value(&csv, number, test_csv_column(&csv, name));
            snprintf(name, sizeof name, "y_%d", i);
            f->landmarks[68 + i] = (float)test_csv_value(&csv, number, test_csv_column(&csv, name));
        }
        f->scale = (float)test_csv_value(&csv, number, test_csv_column(&csv, "p_scale"));
        f->roll = (float)test_csv_value(&csv, number, test_csv_column(&csv, "p_rz"));
    }
    test_csv_free(&csv);
    fa_source_close(source);
    CHECK(loaded == FRAMES, "read %d of %d frames", loaded, FRAMES);
    return loaded == FRAMES;
}

/* Every expert of one CLNF at every prepared window, on each frame around the main landmark
 * `anchor(i)` of its landmark i (part landmarks without a main one take the pairs in turn). */
static void test_detector(const fa_ccnf_t *ccnf, const fa_clnf_set_part_t *part,
                          const frame_t *frames, const char *name) {
    tally_t tally = {0};
    for (int s = 0; s < ccnf->scale_count; s++) {
        const fa_ccnf_scale_t *scale = &ccnf->scales[s];
        for (int w = 0; w < scale->window_count; w++) {
            int window = scale->windows[w], side = window + FA_CCNF_SUPPORT - 1;
            for (int f = 0; f < FRAMES; f++) {
                const frame_t *frame = &frames[f];
                float k = frame->scale / (float)scale->scaling;
                float a = k * cosf(frame->roll), b = k * sinf(frame->roll);
                for (int e = 0; e < scale->view_count * scale->point_count; e++) {
                    if (!scale->experts[e].neuron_count) continue;
                    int i = e % scale->point_count, anchor = i;
                    if (part) {
                        anchor = part->pairs[i % part->pair_count][0];
                        for (int q = 0; q < part->pair_count; q++)
                            if (part->pairs[q][1] == i) anchor = part->pairs[q][0];
                    }
                    float area[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA];
                    fa_ccnf_sample_area(frame->gray, frame->width, frame->height, frame->width, a,
                                        b, frame->landmarks[anchor], frame->landmarks[68 + anchor],
                                        side, area);
                    compare_response(scale, e, w, area, &tally);
                }
            }
        }
    }
    report(name, &tally);
}

static void test_model(void) {
    fa_clnf_set_t model;
    if (!test_load_model_set(&model)) return;
    frame_t frames[FRAMES] = {{0}};
    if (load_frames(frames)) {
        test_detector(&model.main.ccnf, NULL, frames, "main model");
        for (int p = 0; p < model.part_count; p++)
            test_detector(&model.parts[p].detector.ccnf, &model.parts[p], frames,
                          model.parts[p].name);
    }
    for (int f = 0; f < FRAMES; f++)
        free(frames[f].gray);
    fa_clnf_set_release(&model);
}

/* Windows 1-15 on random areas (one flat) with random Sigmas, experts of 7 and of 1-9 neurons. */
static void test_other_windows(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model/patch_experts/ccnf_patches_0.35_general.txt",
             test_models_dir());
    fa_ccnf_t ccnf;
    fa_error_t error = {0};
    const char *paths[1] = {path};
    if (fa_ccnf_load(paths, 1, &ccnf, &error) != FA_OK) {
        CHECK(0, "%s", error.message);
        return;
    }
    tally_t tally = {0};
    const fa_ccnf_expert_t *experts = ccnf.scales[0].experts;
    static float sigma[MAX_N * (MAX_N + 7)], weights[FA_CCNF_MAX_NEURONS * K];
    static double alphas[FA_CCNF_MAX_NEURONS];
    for (int window = 1; window <= FA_CCNF_MAX_WINDOW; window++)
        for (int trial = 0; trial < 12; trial++) {
            int m = window * window, stride = (m + 7) & ~7, side = window + FA_CCNF_SUPPORT - 1;
            /* neurons taken in turn from the landmarks of view 0, all of which have experts */
            fa_ccnf_expert_t expert = experts[trial];
            expert.neuron_count = trial < 3 ? 7 : trial - 2; /* 7, then 1 to 9 */
            for (int k = 0; k < expert.neuron_count; k++) {
                const fa_ccnf_expert_t *from = &experts[(trial * 7 + k) / 7 % 68];
                memcpy(weights + k * K, from->weights + (trial * 7 + k) % 7 * K, sizeof(float) * K);
                alphas[k] = from->alphas[(trial * 7 + k) % 7];
            }
            expert.weights = weights;
            expert.alphas = alphas;
            float area[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA];
            for (int i = 0; i < side * side; i++)
                area[i] = trial == 1 ? 77.0f : 128.0f + 255.0f * test_random_float();
            for (int i = 0; i < m * stride; i++)
                sigma[i] = 0.01f * (test_random_float() + 0.2f);
            float expected[MAX_N];
            compare_expert(&expert, window, sigma, stride, area, &tally, expected);
        }
    report("windows 1-15, random areas and Sigmas", &tally);
    fa_ccnf_release(&ccnf);
}

int main(void) {
    library = test_openblas_skylakex_open();
    if (!library) return test_finish("openblas_ccnf");
    reference_workspace = malloc(sizeof *reference_workspace);
    fast_workspace = malloc(sizeof *fast_workspace);
    fa_ccnf_workspace_init(reference_workspace, FA_CCNF_KERNEL_REFERENCE);
    if (fa_ccnf_workspace_init(fast_workspace, FA_CCNF_KERNEL_AUTO) != FA_CCNF_KERNEL_AVX2)
        printf("AVX2 kernel not available on this CPU: only the C kernel compared\n");
    test_model();
    test_other_windows();
    free(reference_workspace);
    free(fast_workspace);
    dlclose(library);
    return test_finish("openblas_ccnf");
}
