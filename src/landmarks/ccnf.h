/* CLNF's CCNF patch experts (LANDMARKS_SPEC §1.5, §2): reading the binary ccnf_patches_*.txt files,
 * the per-window Sigma (CRF) matrices, the area of interest sampled as OpenCV's warpAffine does,
 * and the response maps, computed with the same float operations in the same order as OpenFace's
 * ResponseOpenBlas on Debian's OpenCV 4.6 and OpenBLAS 0.3.21.
 *
 * A fa_ccnf_t is immutable after loading and fa_ccnf_prepare_window: share it between threads.
 * Per-call scratch lives in a caller-owned fa_ccnf_workspace_t (one per thread); nothing is
 * allocated per frame. */
#ifndef FACEAU_LANDMARKS_CCNF_H
#define FACEAU_LANDMARKS_CCNF_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/pool.h"

enum {
    FA_CCNF_SUPPORT = 11,     /* every shipped expert is 11x11 */
    FA_CCNF_MAX_NEURONS = 16, /* the shipped files have 7 */
    FA_CCNF_MAX_SCALES = 4,
    FA_CCNF_MAX_WINDOW = 15, /* the largest window with sigma components in the files */
    FA_CCNF_MAX_AREA = FA_CCNF_MAX_WINDOW + FA_CCNF_SUPPORT - 1,
    FA_CCNF_AREA_STEPS = (FA_CCNF_MAX_AREA + 7) / 8 * 8, /* columns in whole 8-lane vectors */
    FA_CCNF_MAX_PREPARED = 2, /* windows with precomputed Sigmas per scale */
    FA_CCNF_INPUTS = 1 + FA_CCNF_SUPPORT * FA_CCNF_SUPPORT, /* bias + 121 pixels */
};

/* One landmark's expert in one view. */
typedef struct fa_ccnf_expert {
    int neuron_count; /* 0: the landmark has no expert (invisible) in this view */
    float *weights;   /* neuron_count x FA_CCNF_INPUTS: bias, then norm_weights * w, w flattened
                         column-major (index column * 11 + row) as OpenFace's weight_matrix */
    double *alphas;   /* neuron_count */
    float alpha_sum;  /* over all neurons, accumulated as OpenFace does (for Sigma) */
    int beta_count;
    double *betas;
    double confidence; /* patch_confidence (NU-RLMS weights of the inner model) */
    /* Per prepared window (index as in fa_ccnf_scale_t.windows): Sigma transposed, i.e. row t holds
       Sigma[i][t] for i = 0..W²-1, rows padded to sigma_stride floats. NULL until prepared. */
    float *sigma[FA_CCNF_MAX_PREPARED];
} fa_ccnf_expert_t;

/* The sigma components stored for one window size. */
typedef struct fa_ccnf_components {
    int window;
    int count;
    float *matrices; /* count x (window² x window²), row-major */
} fa_ccnf_components_t;

/* One patch-expert file: one scale. */
typedef struct fa_ccnf_scale {
    double scaling; /* patch scaling, e.g. 0.25 */
    int view_count, point_count;
    double (*centers)[3];      /* view_count Euler angles (rx, ry, rz) in radians */
    int *visible;              /* view_count x point_count, 1 where the landmark has an expert */
    fa_ccnf_expert_t *experts; /* view_count x point_count */
    int component_set_count;
    fa_ccnf_components_t *components;
    int window_count; /* prepared windows */
    int windows[FA_CCNF_MAX_PREPARED];
    int sigma_stride[FA_CCNF_MAX_PREPARED];
} fa_ccnf_scale_t;

/* The CCNF experts of one CLNF model: its scales in file order. */
typedef struct fa_ccnf {
    int scale_count;
    int point_count;
    fa_ccnf_scale_t scales[FA_CCNF_MAX_SCALES];
} fa_ccnf_t;

/* Parses one ccnf_patches file held in memory into scale (name is used in messages). The whole
 * buffer must be consumed. On failure scale is left empty. */
fa_status fa_ccnf_parse_scale(const char *data, size_t size, const char *name,
                              fa_ccnf_scale_t *scale, fa_error_t *error);
void fa_ccnf_scale_release(fa_ccnf_scale_t *scale);

/* Loads the given files as scales 0..count-1 (they must agree on the number of landmarks). */
fa_status fa_ccnf_load(const char *const *paths, int count, fa_ccnf_t *ccnf, fa_error_t *error);
void fa_ccnf_release(fa_ccnf_t *ccnf);

/* Precomputes Sigma for window W at scale for every expert present. As in OpenFace the sigma
 * components come from the last file loaded (they are per CLNF object), matched by W². */
fa_status fa_ccnf_prepare_window(fa_ccnf_t *ccnf, int scale, int window, fa_error_t *error);

/* Index of the prepared window W at scale, or -1. */
int fa_ccnf_window_index(const fa_ccnf_t *ccnf, int scale, int window);

/* OpenFace's GetViewIdx: the view whose centre is nearest to (rx, ry, rz) = params_global[1..3]
 * (float distances, lower index wins ties). */
int fa_ccnf_view_index(const fa_ccnf_t *ccnf, int scale, const float rotation[3]);

/* OpenCV 4.6 solves Cholesky systems of this many rows or more with LAPACK (OpenBLAS's sposv),
 * smaller ones with its own code. */
enum { FA_CCNF_LAPACK_ROWS = 100 };

/* SigmaInv = 2 (alpha_sum I + sum_b beta_b S_b) in float as OpenFace's ComputeSigmas builds it;
 * out is W² x W² row-major. components may be NULL when count is 0. */
void fa_ccnf_sigma_inverse(const fa_ccnf_expert_t *expert, const float *components, int count,
                           int window, float *out);
/* Sigma = SigmaInv^-1 computed as OpenFace does (cv::invert, DECOMP_CHOLESKY): OpenCV's own
 * Cholesky below FA_CCNF_LAPACK_ROWS rows (W <= 9), else OpenBLAS 0.3.21's sposv with its SkylakeX
 * kernels (the reference machine's). out is W² x W² row-major. Exposed for tests; returns 0 if
 * SigmaInv is not positive definite. */
int fa_ccnf_compute_sigma(const fa_ccnf_expert_t *expert, const float *components, int count,
                          int window, float *out);
/* The sigma components (S_b) for window, from the last scale's file as OpenFace keeps them; NULL
 * and *count 0 when there are none. */
const float *fa_ccnf_sigma_components(const fa_ccnf_t *ccnf, int window, int *count);

/* ---------------------------------------------------------------------------------------------
 * Responses */

typedef enum fa_ccnf_kernel {
    FA_CCNF_KERNEL_AUTO = 0,      /* the fastest the CPU supports */
    FA_CCNF_KERNEL_REFERENCE = 1, /* plain C */
    FA_CCNF_KERNEL_AVX2 = 2,      /* AVX2 + FMA */
} fa_ccnf_kernel;

/* Scratch for one thread. About 10 KB. */
typedef struct fa_ccnf_workspace {
    fa_ccnf_kernel kernel; /* resolved: REFERENCE or AVX2 */
    float area[FA_CCNF_MAX_AREA * FA_CCNF_MAX_AREA];
    float raw[FA_CCNF_MAX_WINDOW * FA_CCNF_MAX_WINDOW];
    _Alignas(32) float padded[FA_CCNF_MAX_AREA * 32];
    _Alignas(32) float padded_transposed[FA_CCNF_MAX_AREA * 32];
    _Alignas(32) float columns[FA_CCNF_INPUTS]; /* one normalised window (reference kernel) */
} fa_ccnf_workspace_t;

/* Selects the kernel; FA_CCNF_KERNEL_AVX2 falls back to the reference when the CPU lacks it.
 * Returns the kernel in use. */
fa_ccnf_kernel fa_ccnf_workspace_init(fa_ccnf_workspace_t *workspace, fa_ccnf_kernel kernel);

/* The (W+10) x (W+10) area of interest around image point (x, y) as OpenFace samples it:
 * cv::warpAffine(image, area, [a, -b, tx; b, a, ty], WARP_INVERSE_MAP | INTER_LINEAR, border 0)
 * with the translation putting the area's centre on (x, y); a = sim_ref_to_img(0,0),
 * b = -sim_ref_to_img(0,1). Bit-exact with OpenCV 4.6 on OpenFace's float copy of the gray
 * frame, read here from the 8-bit gray frame itself (every byte is exact as a float); stride in
 * bytes. */
void fa_ccnf_sample_area(const uint8_t *image, int width, int height, ptrdiff_t stride, float a,
                         float b, float x, float y, int side, float *area);

/* Response map (W x W, row-major, index row * W + column) of one expert over an area of interest
 * of side W + 10, with Sigma of the prepared window sigma_index. expert must have neurons. */
void fa_ccnf_response(const fa_ccnf_expert_t *expert, int window, int sigma_index, int sigma_stride,
                      const float *area, float *response, fa_ccnf_workspace_t *workspace);

/* All responses of one scale for one frame, as Patch_experts::Response: for each landmark i
 * visible in view, the area around (landmarks[i], landmarks[n + i]) and its W x W response at
 * responses + i * W². Invisible landmarks' maps are left untouched. window must be prepared.
 * Landmarks are shared out over pool (may be NULL); workspaces holds one workspace per
 * participant (fa_pool_participants). Each map is computed alone, so the result does not depend
 * on the pool. */
void fa_ccnf_responses(const fa_ccnf_t *ccnf, int scale, int window, int view, const uint8_t *image,
                       int width, int height, ptrdiff_t stride, const float *landmarks, float a,
                       float b, float *responses, fa_ccnf_workspace_t *workspaces, fa_pool_t *pool);

#endif
