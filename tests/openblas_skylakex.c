#include "openblas_skylakex.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

void *test_openblas_skylakex_open(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512cd") ||
        !__builtin_cpu_supports("avx512bw") || !__builtin_cpu_supports("avx512dq") ||
        !__builtin_cpu_supports("avx512vl")) {
        printf("skipped: this CPU lacks AVX-512, OpenBLAS cannot run its SkylakeX kernels\n");
        return NULL;
    }
    /* Read when the library initialises: set before it is loaded (nothing else loads it). */
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    void *library = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        printf("skipped: libopenblas.so.0 not found (%s)\n", dlerror());
        return NULL;
    }
    char *(*config)(void) = (char *(*)(void))dlsym(library, "openblas_get_config");
    char *(*core)(void) = (char *(*)(void))dlsym(library, "openblas_get_corename");
    if (!config || !core || !dlsym(library, "sgemm_") || !strstr(config(), "OpenBLAS 0.3.21 ") ||
        strcmp(core(), "SkylakeX") != 0) {
        printf("skipped: the library is not OpenBLAS 0.3.21 running SkylakeX kernels (%s, %s)\n",
               config ? config() : "?", core ? core() : "?");
        dlclose(library);
        return NULL;
    }
    printf("%s, core %s\n", config(), core());
    return library;
}

void *test_openblas_symbol(void *library, const char *name) {
    return dlsym(library, name);
}

void test_openblas_sgemm(void *library, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc) {
    test_sgemm_fn sgemm = (test_sgemm_fn)dlsym(library, "sgemm_");
    sgemm("N", "N", &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc, 1, 1);
}

static uint64_t random_state = 0x2545F4914F6CDD1Dull;

float test_random_float(void) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (float)((double)(random_state >> 40) / 16777216.0 - 0.5);
}

long test_differing_floats(const float *x, const float *y, size_t count) {
    long d = 0;
    for (size_t i = 0; i < count; i++)
        d += memcmp(&x[i], &y[i], sizeof(float)) != 0;
    return d;
}

int test_load_model_set(fa_clnf_set_t *model) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model/main_clnf_general.txt", test_models_dir());
    fa_error_t error = {0};
    int loaded = fa_clnf_set_load(path, 0, model, &error) == FA_OK;
    CHECK(loaded, "%s", error.message);
    return loaded;
}
