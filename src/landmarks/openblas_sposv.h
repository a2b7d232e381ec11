/* LAPACK's sposv with uplo 'L' (A X = B, A symmetric positive definite, Cholesky A = L L^T) with
 * the roundings of OpenBLAS 0.3.21 running its SkylakeX kernels, the library and CPU that made
 * OpenFace's reference outputs. OpenCV 4.6's Cholesky solve (cv::invert / cv::solve with
 * DECOMP_CHOLESKY) hands float systems of 100 rows or more to it. Internal to src/landmarks/.
 *
 * Plain C, fmaf where the kernels fuse; one thread's algorithm, which is what OpenBLAS runs for
 * potrf below 128 rows (the triangular solves split only the right-hand sides between threads,
 * which changes no rounding). Checked bit for bit against the library by tests/test_openblas_sposv.
 *
 * The operation order (OpenBLAS's lapack/potrf, lapack/potf2, driver/level3 and the kernels):
 * - spotrf: n <= 32 unblocked (potf2), else blocks of n / 4 columns: the diagonal block factored
 *   recursively, the panel below it solved against it (trsm_kernel_RN, 4 columns at a time) and
 *   the trailing lower triangle updated (ssyrk_kernel_L);
 * - potf2, column j: a_jj - sdot(row j) with the dot product summed pairwise (fma(x0, x0, x1 x1)
 *   in float, added in double), sqrt; the column below updated by sgemv_n and scaled by 1 / l_jj;
 * - every product sum of sgemm, ssyrk and sgemv (AVX-512 kernels) is one fused multiply-add chain
 *   from zero in index order, subtracted from its target with one rounding; the exception is
 *   sgemv with 4 columns, which runs Haswell's 4x4 kernel: its first (m & 4) + (m & 8) rows sum
 *   columns 0 + 2 and 1 + 3 in two chains and add them;
 * - spotrs: forward solve in row blocks of 16 (then 8, 4, 2, 1) from the top, backward solve in
 *   row blocks from the bottom (the 1, 2, 4, 8 remainders first, then 16s); within a block each
 *   unknown is multiplied by the reciprocal of the diagonal and eliminated with fused
 *   multiply-adds. */
#ifndef FACEAU_LANDMARKS_OPENBLAS_SPOSV_H
#define FACEAU_LANDMARKS_OPENBLAS_SPOSV_H

typedef enum fa_sposv_kernel {
    FA_SPOSV_AUTO,      /* AVX2 when the CPU has it */
    FA_SPOSV_REFERENCE, /* plain C */
    FA_SPOSV_AVX2       /* only where fa_sposv_avx2_supported() */
} fa_sposv_kernel;

/* Column-major a (n x n, leading dimension lda; only the lower triangle is read, L is left in it)
 * and b (n x nrhs, ldb; the solution replaces it). Returns LAPACK's info: 0, or j + 1 when the
 * leading minor of order j + 1 is not positive definite (b then untouched); -1 when out of
 * memory. Both kernels give the same bits: the AVX2 one solves 8 right-hand sides at once, each
 * lane with the reference's scalar operations. */
int fa_openblas_sposv_lower(int n, float *a, int lda, float *b, int ldb, int nrhs,
                            fa_sposv_kernel kernel);

/* The triangular solves work on FA_SPOSV_LANES right-hand sides stored row by row. One block of
 * rows [r0, r0 + width): subtract the products with rows [from, to) already solved, then solve
 * the block (backward = 0: L x = y from the top; 1: L^T x = y from the bottom). */
enum { FA_SPOSV_LANES = 8 };
int fa_sposv_avx2_supported(void);
void fa_sposv_block_avx2(const float *l, int lda, float *x, int r0, int width, int from, int to,
                         int backward);

#endif
