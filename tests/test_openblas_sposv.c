/* fa_openblas_sposv_lower against the library it models: OpenBLAS 0.3.21's sposv_ loaded with
 * dlopen and forced onto its SkylakeX kernels, bit for bit, on random positive definite systems
 * of 100-127 rows (both kernels) and on every Sigma system of 100 rows or more that loading
 * main_clnf_general.txt prepares (the stored Sigma against the library's solution as OpenCV
 * returns it). That part is skipped, with a message, when the CPU lacks AVX-512 or the library is
 * missing or another version; the AVX2 kernel is compared with the plain C one regardless. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "landmarks/ccnf.h"
#include "landmarks/clnf_model.h"
#include "landmarks/openblas_sposv.h"
#include "openblas_skylakex.h"
#include "testing.h"

typedef void (*sposv_fn)(const char *uplo, const int *n, const int *nrhs, float *a, const int *lda,
                         float *b, const int *ldb, int *info, size_t uplo_length);
static sposv_fn library_sposv;

/* A random M M^T + diagonal (column-major, n x n) and the identity (even trial) or n x nrhs random
 * values (odd trial) in b (n x n allocated). */
static void random_system(int n, int trial, float *a, float *b) {
    size_t nn = (size_t)n * (size_t)n;
    float *m = malloc(nn * sizeof(float));
    for (size_t i = 0; i < nn; i++)
        m[i] = test_random_float();
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) {
            double sum = i == j ? 0.1 * n * (trial + 1) : 0;
            for (int k = 0; k < n; k++)
                sum += (double)m[i + k * n] * m[j + k * n];
            a[i + j * n] = a[j + i * n] = (float)sum;
        }
    memset(b, 0, nn * sizeof(float));
    if (trial % 2)
        for (size_t i = 0; i < nn; i++)
            b[i] = test_random_float();
    else
        for (int i = 0; i < n; i++)
            b[i + (size_t)i * n] = 1;
    free(m);
}

static const int sizes[] = {100, 101, 110, 121, 127};
enum { SIZES = sizeof sizes / sizeof sizes[0], TRIALS = 4 };
static int right_hand_sides(int n, int trial) {
    return trial % 2 ? 7 + 4 * trial : n;
}

/* A random system and its right-hand sides, in two copies (each solve overwrites its own). */
static void random_system_twice(int n, int trial, float **a, float **a2, float **b, float **b2) {
    size_t bytes = (size_t)n * (size_t)n * sizeof(float);
    *a = malloc(bytes), *a2 = malloc(bytes), *b = malloc(bytes), *b2 = malloc(bytes);
    random_system(n, trial, *a, *b);
    memcpy(*a2, *a, bytes);
    memcpy(*b2, *b, bytes);
}

/* The AVX2 kernel against the plain C one. */
static void test_kernels_agree(void) {
    if (!fa_sposv_avx2_supported()) {
        printf("AVX2 not available on this CPU: kernel comparison skipped\n");
        return;
    }
    for (int s = 0; s < SIZES; s++)
        for (int trial = 0; trial < TRIALS; trial++) {
            int n = sizes[s], nrhs = right_hand_sides(n, trial);
            float *a, *a2, *b, *b2;
            random_system_twice(n, trial, &a, &a2, &b, &b2);
            int info = fa_openblas_sposv_lower(n, a, n, b, n, nrhs, FA_SPOSV_REFERENCE);
            int info2 = fa_openblas_sposv_lower(n, a2, n, b2, n, nrhs, FA_SPOSV_AVX2);
            long d = test_differing_floats(b, b2, (size_t)n * nrhs);
            CHECK(info == 0 && info2 == 0 && d == 0,
                  "AVX2 vs C, n=%d nrhs=%d: info %d/%d, %ld of %d values differ", n, nrhs, info,
                  info2, d, n * nrhs);
            free(a), free(a2), free(b), free(b2);
        }
    printf("AVX2 kernel vs plain C: compared\n");
}

/* Both kernels against the library. */
static void test_random(void) {
    for (int s = 0; s < SIZES; s++)
        for (int trial = 0; trial < TRIALS; trial++)
            for (int kernel = FA_SPOSV_REFERENCE; kernel <= FA_SPOSV_AVX2; kernel++) {
                if (kernel == FA_SPOSV_AVX2 && !fa_sposv_avx2_supported()) continue;
                int n = sizes[s], nrhs = right_hand_sides(n, trial);
                float *a, *a2, *b, *b2;
                random_system_twice(n, trial, &a, &a2, &b, &b2);
                int info = -1;
                library_sposv("L", &n, &nrhs, a, &n, b, &n, &info, 1);
                int ours = fa_openblas_sposv_lower(n, a2, n, b2, n, nrhs, (fa_sposv_kernel)kernel);
                long d = test_differing_floats(b, b2, (size_t)n * nrhs);
                CHECK(info == 0 && ours == 0 && d == 0,
                      "%s kernel, random n=%d nrhs=%d: info %d/%d, %ld of %d values differ",
                      kernel == FA_SPOSV_AVX2 ? "AVX2" : "C", n, nrhs, info, ours, d, n * nrhs);
                free(a), free(a2), free(b), free(b2);
            }
    printf("random systems of 100-127 rows vs the library: compared\n");
}

/* Every prepared Sigma of W² >= FA_CCNF_LAPACK_ROWS in the shipped model set. */
static void test_sigmas(void) {
    fa_clnf_set_t model;
    if (!test_load_model_set(&model)) return;
    long systems = 0, values = 0, differ = 0, failed = 0;
    for (int d = -1; d < model.part_count; d++) {
        const fa_ccnf_t *ccnf = d < 0 ? &model.main.ccnf : &model.parts[d].detector.ccnf;
        for (int s = 0; s < ccnf->scale_count; s++) {
            const fa_ccnf_scale_t *scale = &ccnf->scales[s];
            for (int w = 0; w < scale->window_count; w++) {
                int window = scale->windows[w], n = window * window, count = 0;
                if (n < FA_CCNF_LAPACK_ROWS) continue;
                const float *components = fa_ccnf_sigma_components(ccnf, window, &count);
                size_t nn = (size_t)n * (size_t)n;
                float *a = malloc(nn * sizeof(float)), *x = calloc(nn, sizeof(float));
                for (int e = 0; e < scale->view_count * scale->point_count; e++) {
                    const fa_ccnf_expert_t *expert = &scale->experts[e];
                    if (!expert->neuron_count) continue;
                    /* what cv::invert hands to sposv_: the row-major SigmaInv as column-major,
                       the identity; Sigma(i, t) is then x[i + t n] */
                    fa_ccnf_sigma_inverse(expert, components, count, window, a);
                    memset(x, 0, nn * sizeof(float));
                    for (int i = 0; i < n; i++)
                        x[i + (size_t)i * n] = 1;
                    int info = -1;
                    library_sposv("L", &n, &n, a, &n, x, &n, &info, 1);
                    const float *stored = expert->sigma[w];
                    int stride = scale->sigma_stride[w];
                    long d_here = 0;
                    for (int i = 0; i < n; i++)
                        for (int t = 0; t < n; t++)
                            d_here += memcmp(&stored[(size_t)t * stride + i], &x[i + (size_t)t * n],
                                             sizeof(float)) != 0;
                    systems++, values += (long)nn, differ += d_here;
                    failed += info != 0 || d_here != 0;
                }
                free(a), free(x);
            }
        }
    }
    printf("model Sigmas of 100+ rows: %ld systems, %ld of %ld values differ from the library\n",
           systems, differ, values);
    CHECK(systems > 0, "no Sigma of 100 rows or more prepared");
    CHECK(failed == 0, "%ld systems differ (%ld values)", failed, differ);
    fa_clnf_set_release(&model);
}

int main(void) {
    test_kernels_agree();
    void *library = test_openblas_skylakex_open();
    if (!library) return test_finish("openblas_sposv");
    library_sposv = (sposv_fn)test_openblas_symbol(library, "sposv_");
    CHECK(library_sposv != NULL, "no sposv_ in the library");
    if (!library_sposv) return test_finish("openblas_sposv");
    test_random();
    test_sigmas();
    dlclose(library);
    return test_finish("openblas_sposv");
}
