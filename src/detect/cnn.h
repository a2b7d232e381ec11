/* The small CNNs of OpenFace's MTCNN detector: the .dat reader, the layers, and inference.
 *
 * Layer semantics follow OpenFace's CNN_utils.cpp (PIPELINE_SPEC §1.2): valid stride-1
 * cross-correlation, max-pooling with rounded output size and clipped windows, PReLU, and fully
 * connected layers that act per pixel when the map count equals the input size and otherwise
 * flatten the maps in (channel, x, y) order.
 *
 * Arithmetic. OpenFace runs convolutions and the large FC layers (100 outputs or more) through
 * OpenBLAS sgemm and the small FC layers through OpenCV's own gemm, which accumulates in double.
 * Here:
 * - convolutions and large FC layers accumulate each output with fused multiply-adds in the
 *   im2col column order (channel, x, y), split into OpenBLAS's 384-column panels, with the bias
 *   last (convolutions) or as the starting value (FC, as OpenCV hands it to sgemm as C);
 * - small FC layers accumulate in double, as OpenCV does.
 * OpenBLAS 0.3.21's Haswell kernel (sgemm_kernel_8x4_haswell_2.c) runs some register blocks with
 * two accumulators (even and odd k) chosen by an output's position in the M x N blocking, so a
 * minority of convolution outputs differ from OpenFace's in the last bits; boxes measured against
 * OpenFace's own code differ by at most 1.4e-4 px (see the test and the stage report).
 * The AVX2 kernels give exactly the reference kernels' results. */
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

/* Shared with the AVX2 kernels (cnn_avx2.c). */
int fa_cnn_next_panel(int remaining);
void fa_cnn_convolution_avx2(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                             float *scratch);
void fa_cnn_fully_connected_avx2(const fa_cnn_layer_t *layer, const float *x, float *out);
void fa_cnn_prelu_avx2(float *data, size_t count, float slope);
/* Max-pool of one output row with horizontal stride 2; returns how many outputs it wrote (those
 * whose windows lie inside the row, in blocks of 8). */
int fa_cnn_max_pool_row_avx2(const float *row, int width, int kernel_width, int kernel_height,
                             int rows, int out_width, float *dst);

#endif
