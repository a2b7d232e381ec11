/* OpenBLAS 0.3.21 loaded with dlopen and forced onto its SkylakeX kernels: the library that
 * computed OpenFace's reference outputs (docs/FIDELITY.md). Tests compare faceau's emulations of
 * its summation orders with it, bit for bit. */
#ifndef FACEAU_TESTS_OPENBLAS_SKYLAKEX_H
#define FACEAU_TESTS_OPENBLAS_SKYLAKEX_H

#include <stddef.h>

#include "landmarks/clnf_model.h"

typedef void (*test_sgemm_fn)(const char *transa, const char *transb, const int *m, const int *n,
                              const int *k, const float *alpha, const float *a, const int *lda,
                              const float *b, const int *ldb, const float *beta, float *c,
                              const int *ldc, size_t transa_length, size_t transb_length);

/* The library's handle, or NULL with the reason printed (no AVX-512, library missing, another
 * version or core). The first call sets OPENBLAS_CORETYPE, so call it before anything else loads
 * OpenBLAS. */
void *test_openblas_skylakex_open(void);
/* A symbol of the opened library (NULL if absent). */
void *test_openblas_symbol(void *library, const char *name);

/* Column-major C = alpha A B + beta C through the library's sgemm_ (no transposes). */
void test_openblas_sgemm(void *library, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);

/* Loads OpenFace's main_clnf_general.txt model set, whose experts and PDMs the library tests run
 * through both sides; returns 0 (CHECKed, message printed) when it cannot. */
int test_load_model_set(fa_clnf_set_t *model);

/* A reproducible pseudo-random float in [-0.5, 0.5). */
float test_random_float(void);
/* How many of count floats differ bit for bit. */
long test_differing_floats(const float *x, const float *y, size_t count);

#endif
