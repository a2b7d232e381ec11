/* The small CNNs of OpenFace's MTCNN detector: the .dat reader, the layers, and inference.
 *
 * Layer semantics follow OpenFace's CNN_utils.cpp (PIPELINE_SPEC §1.2): valid stride-1
 * cross-correlation, max-pooling with rounded output size and clipped windows, PReLU, and fully
 * connected layers that act per pixel when the map count equals the input size and otherwise
 * flatten the maps in (channel, x, y) order.
 *
 * Arithmetic. OpenFace runs convolutions (im2col + sgemm_, K = maps x kernel + a column of ones
 * meeting the bias) and the large FC layers (100 outputs or more: cv::gemm -> cblas_sgemm, the
 * bias as C with beta = 1) through OpenBLAS, and the small FC layers through OpenCV's own gemm,
 * which accumulates in double. The reference outputs were made by OpenBLAS 0.3.21 running its
 * SkylakeX kernels (docs/FIDELITY.md), whose sgemm, for column-major M x N = (M x K)(K x N)
 * (M = outputs; N = pixels for a convolution; for an FC layer M = 1, N = outputs), sums:
 * - when M N K <= 10^6, in the small-matrix kernel: one fmaf chain over all of K per output,
 *   except the last M mod 16 rows when that is 1-8 and K >= 32, which sum 16 lanes (lane l takes
 *   the terms k = l mod 16) and add them by groups of four, or by halves in the last N mod 4
 *   columns of the last M mod 4 rows; an FC layer is such a row (M = 1);
 * - otherwise in the blocked path: K in panels of up to 448 (the single-threaded level3.c split;
 *   OpenFace sets OpenBLAS to one thread in CNN::Read), each an fmaf chain from zero added to C
 *   (zeroed first when beta = 0). The SkylakeX kernel keeps one accumulator per output whatever
 *   its place in the blocking.
 * Both were checked bit for bit against the library on every OpenBLAS layer of the three
 * networks (tests/test_cnn_openblas.c), and the detector's boxes equal those of OpenFace run
 * with OPENBLAS_CORETYPE=SkylakeX (tests/test_mtcnn.c).
 * The AVX2 kernels give exactly the reference kernels' results (convolution rows summed in 16
 * lanes, which OpenFace's networks do not have, are left to the reference). */
#ifndef FACEAU_DETECT_CNN_H
#define FACEAU_DETECT_CNN_H

#include <stddef.h>

#include "core/error.h"

typedef enum fa_cnn_layer_type {
    FA_CNN_CONVOLUTION = 0,
    FA_CNN_MAX_POOL = 1,
    FA_CNN_FULLY_CONNECTED = 2,
    FA_CNN_PRELU = 3,
    FA_CNN_SIGMOID = 4,
} fa_cnn_layer_type;

typedef struct fa_cnn_layer {
    fa_cnn_layer_type type;
    /* Convolution: inputs -> outputs maps with kernel_height x kernel_width kernels.
     * Fully connected: inputs -> outputs features. PReLU: outputs slopes. */
    int inputs, outputs;
    int kernel_width, kernel_height;
    int stride_x, stride_y; /* max-pool; its window is kernel_width x kernel_height */
    /* Convolution: weights[o][i][x][y] (the im2col order; the file stores [i][o][y][x]).
     * Fully connected: weights[o][i]. PReLU: slopes in weights. */
    float *weights;
    float *bias; /* outputs values */
    /* For the fast kernels. Convolution: groups of 4 outputs (the last padded with zeros), each
     * [column][4]. Fully connected: weights[i][o] with the outputs padded to a multiple of 8. */
    float *weights_by_input;
    int padded_outputs;
} fa_cnn_layer_t;

typedef struct fa_cnn {
    int layer_count;
    fa_cnn_layer_t *layers;
} fa_cnn_t;

/* Parses a network .dat held in memory; name is used in error messages. */
fa_status fa_cnn_parse(fa_cnn_t *cnn, const char *data, size_t size, const char *name,
                       fa_error_t *error);
/* Builds a layer's fast-kernel copy of its weights (weights_by_input) from weights; done by the
 * reader, and by whoever builds a layer by hand. */
fa_status fa_cnn_prepare_layer(fa_cnn_layer_t *layer, const char *name, fa_error_t *error);
fa_status fa_cnn_load(fa_cnn_t *cnn, const char *path, fa_error_t *error);
void fa_cnn_release(fa_cnn_t *cnn);

/* A stack of planar float maps: channels x height x width, contiguous. A vector produced by a
 * flattening FC layer is 1 x n x 1 (a column, as OpenFace keeps it). */
typedef struct fa_tensor {
    int channels, height, width;
    float *data;
} fa_tensor_t;

/* Per-thread scratch memory for inference; grows to the largest input seen, then no more
 * allocation. Zero-initialise before first use. */
typedef struct fa_cnn_workspace {
    float *buffers[3];
    size_t capacity; /* floats per buffer */
} fa_cnn_workspace_t;

void fa_cnn_workspace_release(fa_cnn_workspace_t *workspace);

/* The kernels an inference uses. */
typedef enum fa_cnn_kernels {
    FA_CNN_KERNELS_AUTO = 0,      /* the fastest this CPU supports */
    FA_CNN_KERNELS_REFERENCE = 1, /* plain C, OpenBLAS's order and fused multiply-adds (fmaf) */
    FA_CNN_KERNELS_AVX2 = 2,      /* AVX2 + FMA, equal to REFERENCE bit for bit (falls back to
                                     REFERENCE if the CPU lacks them) */
    FA_CNN_KERNELS_UNFUSED = 3,   /* plain C rounding every product: for measuring only */
} fa_cnn_kernels;

int fa_cnn_have_avx2(void);

/* Runs the network on input (planar, channels already in the network's order). The result
 * points into the workspace and stays valid until its next use. */
fa_status fa_cnn_forward(const fa_cnn_t *cnn, fa_cnn_workspace_t *workspace,
                         const fa_tensor_t *input, fa_cnn_kernels kernels, fa_tensor_t *output,
                         fa_error_t *error);

/* The single layers, exposed for tests. Output sizes follow OpenFace. The fast convolution reads
 * whole vectors: its input needs FA_CNN_PADDING readable floats after its end. A flattening
 * fully connected layer uses out beyond its outputs as scratch: out must hold outputs + inputs
 * floats. */
enum { FA_CNN_PADDING = 64 };
/* Sets out's dimensions (not its data). */
void fa_cnn_output_shape(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out);
void fa_cnn_convolution(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                        float *scratch, fa_cnn_kernels kernels);
void fa_cnn_max_pool(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                     fa_cnn_kernels kernels);
void fa_cnn_prelu(const fa_cnn_layer_t *layer, fa_tensor_t *in_out, fa_cnn_kernels kernels);
void fa_cnn_fully_connected(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                            fa_cnn_kernels kernels);
void fa_cnn_sigmoid(fa_tensor_t *in_out);
/* Floats of scratch fa_cnn_convolution needs for an input of this shape. */
size_t fa_cnn_convolution_scratch(const fa_cnn_layer_t *layer, const fa_tensor_t *in);

/* OpenBLAS's summation model, shared with the AVX2 kernels (cnn_avx2.c), for a column-major
 * m x n = (m x k)(k x n) sgemm. Whether it goes to the small-matrix kernel; the length of the
 * next panel of the inner dimension (all of it for the small kernel); whether the small kernel
 * sums row `row` in 16 lanes, and if so whether it adds them by groups of four (else by halves). */
int fa_cnn_sgemm_is_small(int m, int n, int k);
int fa_cnn_next_panel(int small, int remaining);
int fa_cnn_sgemm_uses_lanes(int m, int k, int row);
int fa_cnn_sgemm_lanes_by_quads(int m, int n, int row, int column);
void fa_cnn_convolution_avx2(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                             float *scratch);
void fa_cnn_fully_connected_avx2(const fa_cnn_layer_t *layer, const float *x, float *out);
void fa_cnn_prelu_avx2(float *data, size_t count, float slope);
/* Max-pool of one output row with horizontal stride 2; returns how many outputs it wrote (those
 * whose windows lie inside the row, in blocks of 8). */
int fa_cnn_max_pool_row_avx2(const float *row, int width, int kernel_width, int kernel_height,
                             int rows, int out_width, float *dst);

#endif
