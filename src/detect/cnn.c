/* MTCNN networks: reading OpenFace's .dat files and running them (see cnn.h for the rounding
 * model). */
#include "detect/cnn.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/sgemm_order.h"
#include "model/reader.h"

enum { MAX_LAYERS = 64, MAX_MAPS = 4096, MAX_KERNEL = 16, MAX_FEATURES = 1 << 20 };

/* OpenBLAS 0.3.21's SkylakeX sgemm (see cnn.h). The blocked path splits the inner dimension
 * into panels: 448 at a time, except that a remainder between 448 and 896 is cut in two halves
 * rounded up to a multiple of 16 (driver/level3/level3.c with SkylakeX's GEMM_Q and
 * GEMM_UNROLL_M). */
enum { GEMM_Q = 448, GEMM_UNROLL_M = 16, SMALL_LANES = 16 };

int fa_cnn_sgemm_is_small(int m, int n, int k) {
    return (double)m * (double)n * (double)k <= 1e6;
}

int fa_cnn_next_panel(int small, int remaining) {
    if (small) return remaining;
    if (remaining >= 2 * GEMM_Q) return GEMM_Q;
    if (remaining > GEMM_Q)
        return ((remaining / 2 + GEMM_UNROLL_M - 1) / GEMM_UNROLL_M) * GEMM_UNROLL_M;
    return remaining;
}

int fa_cnn_sgemm_uses_lanes(int m, int k, int row) {
    const int rest = m % SMALL_LANES;
    return rest >= 1 && rest <= 8 && k >= 32 && row >= m - rest;
}

int fa_cnn_sgemm_lanes_by_quads(int m, int n, int row, int column) {
    return row < (m & ~3) || column < (n & ~3);
}

/* Element (row, column) of column-major C = A B (+ C when add_c), alpha = 1, as OpenBLAS
 * computes it for an m x n x k product: a holds the row of A, b the column of B (k terms each).
 * fused = 0 rounds every product (for measuring only). */
static float sgemm_element(const float *a, const float *b, int m, int n, int k, int row, int column,
                           int add_c, float c, int fused) {
    const int small = fa_cnn_sgemm_is_small(m, n, k);
    if (small && fa_cnn_sgemm_uses_lanes(m, k, row)) {
        float lanes[SMALL_LANES] = {0};
        for (int i = 0; i < k; i++)
            lanes[i % SMALL_LANES] = fused ? fmaf(a[i], b[i], lanes[i % SMALL_LANES])
                                           : lanes[i % SMALL_LANES] + a[i] * b[i];
        float sum = fa_sgemm_lanes_sum(lanes, fa_cnn_sgemm_lanes_by_quads(m, n, row, column)
                                                  ? FA_SGEMM_LANES_QUADS
                                                  : FA_SGEMM_LANES_HALVES);
        return add_c ? c + sum : sum;
    }
    /* One accumulator per panel; the blocked path first sets C to 0 when there is no C to add
     * (beta = 0), then adds each panel to it. */
    float total = add_c ? c : 0.0f;
    for (int start = 0; start < k;) {
        const int end = start + fa_cnn_next_panel(small, k - start);
        float sum = 0.0f;
        for (int i = start; i < end; i++)
            sum = fused ? fmaf(a[i], b[i], sum) : sum + a[i] * b[i];
        total = small && !add_c ? sum : sum + total;
        start = end;
    }
    return total;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading */

static fa_status read_count(fa_reader_t *reader, int low, int high, const char *what, int *value,
                            fa_error_t *error) {
    int32_t v = 0;
    fa_status status = fa_read_i32(reader, &v, error);
    if (status != FA_OK) return status;
    if (v < low || v > high)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: %s %d out of range [%d, %d] at byte %zu",
                            reader->name, what, (int)v, low, high, reader->position - 4);
    *value = v;
    return FA_OK;
}

static fa_status read_float_matrix(fa_reader_t *reader, fa_matrix_t *matrix, fa_error_t *error) {
    fa_status status = fa_read_matbin(reader, matrix, error);
    if (status != FA_OK) return status;
    if (matrix->type != FA_CV_32F) {
        fa_matrix_release(matrix);
        return fa_error_set(error, FA_ERROR_MODEL, "%s: expected a float32 matrix, got type %d",
                            reader->name, matrix->type);
    }
    return FA_OK;
}

static fa_status read_convolution(fa_reader_t *reader, fa_cnn_layer_t *layer, fa_error_t *error) {
    fa_status status = read_count(reader, 1, MAX_MAPS, "input map count", &layer->inputs, error);
    if (status == FA_OK)
        status = read_count(reader, 1, MAX_MAPS, "kernel count", &layer->outputs, error);
    if (status != FA_OK) return status;
    layer->bias = malloc(sizeof(float) * (size_t)layer->outputs);
    if (!layer->bias)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", reader->name);
    for (int k = 0; k < layer->outputs && status == FA_OK; k++)
        status = fa_read_f32(reader, &layer->bias[k], error);
    for (int in = 0; in < layer->inputs && status == FA_OK; in++) {
        for (int k = 0; k < layer->outputs && status == FA_OK; k++) {
            fa_matrix_t kernel = {0};
            status = read_float_matrix(reader, &kernel, error);
            if (status != FA_OK) break;
            if (!layer->weights) {
                if (kernel.rows < 1 || kernel.rows > MAX_KERNEL || kernel.cols < 1 ||
                    kernel.cols > MAX_KERNEL) {
                    fa_matrix_release(&kernel);
                    return fa_error_set(error, FA_ERROR_MODEL, "%s: bad kernel size %dx%d",
                                        reader->name, kernel.rows, kernel.cols);
                }
                layer->kernel_height = kernel.rows;
                layer->kernel_width = kernel.cols;
                size_t count = (size_t)layer->outputs * (size_t)layer->inputs *
                               (size_t)(kernel.rows * kernel.cols);
                layer->weights = malloc(sizeof(float) * count);
                if (!layer->weights) {
                    fa_matrix_release(&kernel);
                    return fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory",
                                        reader->name);
                }
            }
            status = fa_matrix_expect(&kernel, layer->kernel_height, layer->kernel_width,
                                      reader->name, "convolution kernel", error);
            if (status == FA_OK) {
                int kh = layer->kernel_height, kw = layer->kernel_width;
                float *w = layer->weights +
                           ((size_t)k * (size_t)layer->inputs + (size_t)in) * (size_t)(kh * kw);
                for (int x = 0; x < kw; x++)
                    for (int y = 0; y < kh; y++)
                        w[x * kh + y] = (float)kernel.data[y * kw + x];
            }
            fa_matrix_release(&kernel);
        }
    }
    return status;
}

fa_status fa_cnn_prepare_layer(fa_cnn_layer_t *layer, const char *name, fa_error_t *error) {
    free(layer->weights_by_input);
    layer->weights_by_input = NULL;
    if (layer->type == FA_CNN_CONVOLUTION) {
        /* The fast convolution broadcasts 4 outputs' weights of one column from adjacent floats. */
        const int columns = layer->inputs * layer->kernel_height * layer->kernel_width;
        layer->padded_outputs = (layer->outputs + 3) / 4 * 4;
        layer->weights_by_input =
            calloc((size_t)layer->padded_outputs * (size_t)columns, sizeof(float));
        if (!layer->weights_by_input)
            return fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", name);
        for (int o = 0; o < layer->outputs; o++)
            for (int c = 0; c < columns; c++)
                layer->weights_by_input[((size_t)(o / 4) * (size_t)columns + (size_t)c) * 4 +
                                        (size_t)(o % 4)] =
                    layer->weights[(size_t)o * (size_t)columns + (size_t)c];
    } else if (layer->type == FA_CNN_FULLY_CONNECTED) {
        /* The fast kernel loads 8 outputs' weights of one input from adjacent floats. */
        layer->padded_outputs = (layer->outputs + 7) / 8 * 8;
        layer->weights_by_input =
            calloc((size_t)layer->padded_outputs * (size_t)layer->inputs, sizeof(float));
        if (!layer->weights_by_input)
            return fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", name);
        for (int o = 0; o < layer->outputs; o++)
            for (int i = 0; i < layer->inputs; i++)
                layer->weights_by_input[(size_t)i * (size_t)layer->padded_outputs + (size_t)o] =
                    layer->weights[(size_t)o * (size_t)layer->inputs + (size_t)i];
    }
    return FA_OK;
}

static fa_status read_fully_connected(fa_reader_t *reader, fa_cnn_layer_t *layer,
                                      fa_error_t *error) {
    fa_matrix_t bias = {0}, weights = {0};
    fa_status status = read_float_matrix(reader, &bias, error);
    if (status == FA_OK) status = read_float_matrix(reader, &weights, error);
    if (status == FA_OK && (bias.cols != 1 || bias.rows < 1 || weights.rows < 1 ||
                            weights.rows > MAX_FEATURES || bias.rows > MAX_FEATURES))
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: bad fully connected bias %dx%d",
                              reader->name, bias.rows, bias.cols);
    if (status == FA_OK)
        status = fa_matrix_expect(&weights, weights.rows, bias.rows, reader->name,
                                  "fully connected weights", error);
    if (status == FA_OK) {
        layer->inputs = weights.rows;
        layer->outputs = bias.rows;
        layer->bias = malloc(sizeof(float) * (size_t)layer->outputs);
        layer->weights = malloc(sizeof(float) * (size_t)layer->outputs * (size_t)layer->inputs);
        if (!layer->bias || !layer->weights) {
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", reader->name);
        } else {
            for (int o = 0; o < layer->outputs; o++) {
                layer->bias[o] = (float)bias.data[o];
                for (int i = 0; i < layer->inputs; i++)
                    layer->weights[(size_t)o * (size_t)layer->inputs + (size_t)i] =
                        (float)weights.data[(size_t)i * (size_t)layer->outputs + (size_t)o];
            }
        }
    }
    fa_matrix_release(&bias);
    fa_matrix_release(&weights);
    return status;
}

static fa_status read_prelu(fa_reader_t *reader, fa_cnn_layer_t *layer, fa_error_t *error) {
    fa_matrix_t slopes = {0};
    fa_status status = read_float_matrix(reader, &slopes, error);
    if (status != FA_OK) return status;
    if (slopes.cols != 1 || slopes.rows < 1 || slopes.rows > MAX_FEATURES) {
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: bad PReLU slopes %dx%d", reader->name,
                              slopes.rows, slopes.cols);
    } else {
        layer->inputs = layer->outputs = slopes.rows;
        layer->weights = malloc(sizeof(float) * (size_t)slopes.rows);
        if (!layer->weights)
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", reader->name);
        for (int i = 0; layer->weights && i < slopes.rows; i++)
            layer->weights[i] = (float)slopes.data[i];
    }
    fa_matrix_release(&slopes);
    return status;
}

static fa_status read_layer(fa_reader_t *reader, fa_cnn_layer_t *layer, fa_error_t *error) {
    int32_t type = 0;
    fa_status status = fa_read_i32(reader, &type, error);
    if (status != FA_OK) return status;
    layer->type = (fa_cnn_layer_type)type;
    switch (type) {
    case FA_CNN_CONVOLUTION:
        status = read_convolution(reader, layer, error);
        return status == FA_OK ? fa_cnn_prepare_layer(layer, reader->name, error) : status;
    case FA_CNN_MAX_POOL:
        status = read_count(reader, 1, MAX_KERNEL, "pool width", &layer->kernel_width, error);
        if (status == FA_OK)
            status = read_count(reader, 1, MAX_KERNEL, "pool height", &layer->kernel_height, error);
        if (status == FA_OK)
            status = read_count(reader, 1, MAX_KERNEL, "pool stride x", &layer->stride_x, error);
        if (status == FA_OK)
            status = read_count(reader, 1, MAX_KERNEL, "pool stride y", &layer->stride_y, error);
        return status;
    case FA_CNN_FULLY_CONNECTED:
        status = read_fully_connected(reader, layer, error);
        return status == FA_OK ? fa_cnn_prepare_layer(layer, reader->name, error) : status;
    case FA_CNN_PRELU:
        return read_prelu(reader, layer, error);
    case FA_CNN_SIGMOID:
        return FA_OK;
    default:
        return fa_error_set(error, FA_ERROR_MODEL, "%s: unknown layer type %d at byte %zu",
                            reader->name, (int)type, reader->position - 4);
    }
}

fa_status fa_cnn_parse(fa_cnn_t *cnn, const char *data, size_t size, const char *name,
                       fa_error_t *error) {
    memset(cnn, 0, sizeof(*cnn));
    fa_reader_t reader;
    fa_reader_init(&reader, data, size, name);
    int depth = 0;
    fa_status status = read_count(&reader, 1, MAX_LAYERS, "layer count", &depth, error);
    if (status != FA_OK) return status;
    cnn->layers = calloc((size_t)depth, sizeof(fa_cnn_layer_t));
    if (!cnn->layers) return fa_error_set(error, FA_ERROR_NO_MEMORY, "%s: out of memory", name);
    for (int i = 0; i < depth && status == FA_OK; i++) {
        cnn->layer_count = i + 1;
        status = read_layer(&reader, &cnn->layers[i], error);
    }
    if (status == FA_OK && reader.position != size)
        status =
            fa_error_set(error, FA_ERROR_MODEL, "%s: %zu unexpected bytes after the last layer",
                         name, size - reader.position);
    if (status != FA_OK) fa_cnn_release(cnn);
    return status;
}

fa_status fa_cnn_load(fa_cnn_t *cnn, const char *path, fa_error_t *error) {
    char *data = NULL;
    size_t size = 0;
    memset(cnn, 0, sizeof(*cnn));
    fa_status status = fa_file_read_all(path, &data, &size, error);
    if (status != FA_OK) return status;
    status = fa_cnn_parse(cnn, data, size, path, error);
    free(data);
    return status;
}

void fa_cnn_release(fa_cnn_t *cnn) {
    if (!cnn) return;
    for (int i = 0; i < cnn->layer_count; i++) {
        free(cnn->layers[i].weights);
        free(cnn->layers[i].bias);
        free(cnn->layers[i].weights_by_input);
    }
    free(cnn->layers);
    memset(cnn, 0, sizeof(*cnn));
}

/* ------------------------------------------------------------------------------------------ */
/* Layers */

void fa_cnn_output_shape(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out) {
    out->channels = in->channels, out->height = in->height, out->width = in->width;
    switch (layer->type) {
    case FA_CNN_CONVOLUTION:
        out->channels = layer->outputs;
        out->height = in->height - layer->kernel_height + 1;
        out->width = in->width - layer->kernel_width + 1;
        break;
    case FA_CNN_MAX_POOL:
        /* OpenFace rounds (not floors) to get Caffe's sizes. */
        out->width =
            (int)roundf((float)(in->width - layer->kernel_width) / (float)layer->stride_x) + 1;
        out->height =
            (int)roundf((float)(in->height - layer->kernel_height) / (float)layer->stride_y) + 1;
        break;
    case FA_CNN_FULLY_CONNECTED:
        if (in->channels > 1 && in->channels == layer->inputs) {
            out->channels = layer->outputs; /* per pixel, a 1x1 convolution */
        } else if (in->channels > 1) {
            out->channels = 1, out->height = layer->outputs, out->width = 1; /* a column */
        } else {
            out->channels = 1, out->height = 1, out->width = layer->outputs; /* OpenFace's .t() */
        }
        break;
    default:
        break;
    }
}

size_t fa_cnn_convolution_scratch(const fa_cnn_layer_t *layer, const fa_tensor_t *in) {
    /* The fast kernel computes outputs on the input's row stride, 16 at a time, for groups of
     * 4 outputs; then come the column offsets. */
    size_t wide = (size_t)(in->height - layer->kernel_height + 1) * (size_t)in->width;
    size_t outputs = (size_t)(layer->outputs + 3) / 4 * 4;
    size_t columns = (size_t)(layer->inputs * layer->kernel_height * layer->kernel_width) + 1;
    size_t fast = outputs * ((wide + 15) / 16 * 16) + columns;
    /* The reference kernels lay out a weight row and a pixel's column. */
    return (fast > 2 * columns ? fast : 2 * columns) + FA_CNN_PADDING;
}

/* Output k of a valid cross-correlation as OpenFace's sgemm computes it: M = outputs, N =
 * pixels, K = the im2col columns (channel, x, y) and a last column of ones meeting the bias. The
 * weight row and each pixel's column are laid out in scratch (2 K floats). */
static void convolution_output_reference(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                                         fa_tensor_t *out, int k, float *scratch, int fused) {
    const int kh = layer->kernel_height, kw = layer->kernel_width;
    const int columns = layer->inputs * kh * kw + 1, pixels = out->height * out->width;
    float *weights = scratch, *column = scratch + columns;
    memcpy(weights, layer->weights + (size_t)k * (size_t)(columns - 1),
           sizeof(float) * (size_t)(columns - 1));
    weights[columns - 1] = layer->bias[k];
    const size_t plane = (size_t)in->height * (size_t)in->width;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            int i = 0;
            for (int c = 0; c < layer->inputs; c++) {
                const float *map =
                    in->data + (size_t)c * plane + (size_t)y * (size_t)in->width + (size_t)x;
                for (int xx = 0; xx < kw; xx++)
                    for (int yy = 0; yy < kh; yy++)
                        column[i++] = map[(size_t)yy * (size_t)in->width + (size_t)xx];
            }
            column[i] = 1.0f;
            out->data[((size_t)k * (size_t)out->height + (size_t)y) * (size_t)out->width +
                      (size_t)x] = sgemm_element(weights, column, layer->outputs, pixels, columns,
                                                 k, y * out->width + x, 0, 0.0f, fused);
        }
}

void fa_cnn_convolution(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                        float *scratch, fa_cnn_kernels kernels) {
    fa_cnn_output_shape(layer, in, out);
    const int columns = layer->inputs * layer->kernel_height * layer->kernel_width + 1;
    int first_reference = 0;
    if (kernels == FA_CNN_KERNELS_AVX2 && fa_cnn_have_avx2()) {
        fa_cnn_convolution_avx2(layer, in, out, scratch);
        /* The kernel sums with one accumulator per output; the few rows that OpenBLAS's small
         * kernel sums in 16 lanes (none in OpenFace's networks) are redone here. */
        first_reference = layer->outputs;
        if (fa_cnn_sgemm_is_small(layer->outputs, out->height * out->width, columns))
            while (first_reference > 0 &&
                   fa_cnn_sgemm_uses_lanes(layer->outputs, columns, first_reference - 1))
                first_reference--;
    }
    for (int k = first_reference; k < out->channels; k++)
        convolution_output_reference(layer, in, out, k, scratch, kernels != FA_CNN_KERNELS_UNFUSED);
}

void fa_cnn_max_pool(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                     fa_cnn_kernels kernels) {
    fa_cnn_output_shape(layer, in, out);
    const int w = in->width, h = in->height;
    const int fast = kernels == FA_CNN_KERNELS_AVX2 && layer->stride_x == 2 && fa_cnn_have_avx2();
    for (int c = 0; c < in->channels; c++) {
        const float *src = in->data + (size_t)c * (size_t)w * (size_t)h;
        float *dst = out->data + (size_t)c * (size_t)out->width * (size_t)out->height;
        for (int oy = 0; oy < out->height; oy++) {
            int ox = 0, y_start = oy * layer->stride_y;
            if (fast && y_start < h) {
                int rows = y_start + layer->kernel_height < h ? layer->kernel_height : h - y_start;
                ox = fa_cnn_max_pool_row_avx2(src + (size_t)y_start * (size_t)w, w,
                                              layer->kernel_width, layer->kernel_height, rows,
                                              out->width, dst + (size_t)oy * (size_t)out->width);
            }
            for (; ox < out->width; ox++) {
                /* Windows start at multiples of the stride and are clipped at the border. An
                 * output whose window starts outside the input stays 0, as in OpenFace. */
                int x0 = ox * layer->stride_x, y0 = oy * layer->stride_y;
                float best = (x0 < w && y0 < h) ? -FLT_MAX : 0.0f;
                int x1 = x0 + layer->kernel_width < w ? x0 + layer->kernel_width : w;
                int y1 = y0 + layer->kernel_height < h ? y0 + layer->kernel_height : h;
                /* Scanned x outer, y inner like OpenFace: the first of equal maxima wins, which
                 * only shows for +0 against -0. */
                const float *column = src + (x0 < w && y0 < h ? y0 * w + x0 : 0);
                for (int x = x0; x < x1; x++, column++) {
                    const float *p = column;
                    for (int y = y0; y < y1; y++, p += w)
                        if (*p > best) best = *p;
                }
                dst[oy * out->width + ox] = best;
            }
        }
    }
}

void fa_cnn_prelu(const fa_cnn_layer_t *layer, fa_tensor_t *in_out, fa_cnn_kernels kernels) {
    const float *slopes = layer->weights;
    if (in_out->channels > 1) {
        size_t plane = (size_t)in_out->height * (size_t)in_out->width;
        int fast = kernels == FA_CNN_KERNELS_AVX2 && fa_cnn_have_avx2();
        for (int c = 0; c < in_out->channels && c < layer->outputs; c++) {
            float *p = in_out->data + (size_t)c * plane;
            const float slope = slopes[c];
            if (fast) {
                fa_cnn_prelu_avx2(p, plane, slope);
                continue;
            }
            for (size_t i = 0; i < plane; i++) {
                /* Written without a branch so that the compiler vectorises it. */
                float v = p[i], negative = v * slope;
                p[i] = v >= 0.0f ? v : negative;
            }
        }
    } else {
        /* One map (a feature vector): one slope per row. */
        for (int r = 0; r < in_out->height && r < layer->outputs; r++) {
            float *p = in_out->data + (size_t)r * (size_t)in_out->width;
            for (int i = 0; i < in_out->width; i++)
                p[i] = p[i] >= 0.0f ? p[i] : p[i] * slopes[r];
        }
    }
}

/* OpenCV's own gemm (used for matrices with fewer than 100 rows) accumulates in double. */
static double dot_double(const float *w, const float *x, size_t stride, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += (double)w[i] * (double)x[(size_t)i * stride];
    return sum;
}

void fa_cnn_fully_connected(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_tensor_t *out,
                            fa_cnn_kernels kernels) {
    fa_cnn_output_shape(layer, in, out);
    const int n = layer->inputs;
    const int blas = layer->outputs >= 100; /* OpenCV's threshold for calling BLAS */
    if (in->channels > 1 && in->channels == n) {
        /* Per pixel: weights (out x maps) times the maps (maps x pixels), then the bias added in
         * float. */
        size_t pixels = (size_t)in->height * (size_t)in->width;
        for (int o = 0; o < layer->outputs; o++)
            for (size_t p = 0; p < pixels; p++)
                out->data[(size_t)o * pixels + p] =
                    (float)dot_double(layer->weights + (size_t)o * (size_t)n, in->data + p, pixels,
                                      n) +
                    layer->bias[o];
        return;
    }
    /* Flatten: each map transposed, so the order is (channel, x, y). */
    const float *x = in->data;
    float *flat = out->data + layer->outputs; /* room left after the outputs (see forward) */
    if (in->channels > 1) {
        size_t i = 0;
        for (int c = 0; c < in->channels; c++)
            for (int xx = 0; xx < in->width; xx++)
                for (int yy = 0; yy < in->height; yy++)
                    flat[i++] =
                        in->data[((size_t)c * (size_t)in->height + (size_t)yy) * (size_t)in->width +
                                 (size_t)xx];
        x = flat;
    }
    if (blas && kernels == FA_CNN_KERNELS_AVX2 && fa_cnn_have_avx2()) {
        fa_cnn_fully_connected_avx2(layer, x, out->data);
        return;
    }
    /* OpenCV hands cblas_sgemm the row-major weights * x + bias: OpenBLAS sees column-major
     * C (1 x outputs) = x^T (1 x inputs) W^T (inputs x outputs), beta = 1 with the bias as C. */
    for (int o = 0; o < layer->outputs; o++) {
        const float *w = layer->weights + (size_t)o * (size_t)n;
        if (!blas)
            out->data[o] = (float)(dot_double(w, x, 1, n) + (double)layer->bias[o]);
        else
            out->data[o] = sgemm_element(x, w, 1, layer->outputs, n, 0, o, 1, layer->bias[o],
                                         kernels != FA_CNN_KERNELS_UNFUSED);
    }
}

void fa_cnn_sigmoid(fa_tensor_t *in_out) {
    size_t count = (size_t)in_out->channels * (size_t)in_out->height * (size_t)in_out->width;
    for (size_t i = 0; i < count; i++)
        in_out->data[i] = (float)(1.0 / (1.0 + (double)expf(-in_out->data[i])));
}

/* ------------------------------------------------------------------------------------------ */
/* Inference */

static size_t tensor_size(const fa_tensor_t *t) {
    return (size_t)t->channels * (size_t)t->height * (size_t)t->width;
}

void fa_cnn_workspace_release(fa_cnn_workspace_t *workspace) {
    for (int i = 0; i < 3; i++)
        free(workspace->buffers[i]);
    memset(workspace, 0, sizeof(*workspace));
}

static fa_status check_shapes(const fa_cnn_t *cnn, const fa_tensor_t *input, size_t *needed,
                              fa_error_t *error) {
    fa_tensor_t shape = *input;
    size_t most = tensor_size(input);
    for (int i = 0; i < cnn->layer_count; i++) {
        const fa_cnn_layer_t *layer = &cnn->layers[i];
        fa_tensor_t next = shape;
        fa_cnn_output_shape(layer, &shape, &next);
        int ok = next.height >= 1 && next.width >= 1;
        if (layer->type == FA_CNN_CONVOLUTION) ok = ok && shape.channels == layer->inputs;
        if (layer->type == FA_CNN_FULLY_CONNECTED && shape.channels != layer->inputs)
            ok = ok && (size_t)layer->inputs == tensor_size(&shape);
        if (!ok)
            return fa_error_set(error, FA_ERROR_ARGUMENT,
                                "CNN layer %d cannot take a %dx%dx%d input", i, shape.channels,
                                shape.height, shape.width);
        size_t size = tensor_size(&next);
        if (layer->type == FA_CNN_CONVOLUTION) {
            size_t scratch = fa_cnn_convolution_scratch(layer, &shape);
            if (scratch > most) most = scratch;
        }
        if (layer->type == FA_CNN_FULLY_CONNECTED) size += tensor_size(&shape);
        if (size > most) most = size;
        shape = next;
    }
    *needed = most + FA_CNN_PADDING;
    return FA_OK;
}

fa_status fa_cnn_forward(const fa_cnn_t *cnn, fa_cnn_workspace_t *workspace,
                         const fa_tensor_t *input, fa_cnn_kernels kernels, fa_tensor_t *output,
                         fa_error_t *error) {
    size_t needed = 0;
    fa_status status = check_shapes(cnn, input, &needed, error);
    if (status != FA_OK) return status;
    if (kernels == FA_CNN_KERNELS_AUTO)
        kernels = fa_cnn_have_avx2() ? FA_CNN_KERNELS_AVX2 : FA_CNN_KERNELS_REFERENCE;
    if (needed > workspace->capacity) {
        for (int i = 0; i < 3; i++) {
            float *grown = realloc(workspace->buffers[i], needed * sizeof(float));
            if (!grown)
                return fa_error_set(error, FA_ERROR_NO_MEMORY, "CNN workspace: out of memory");
            /* Zeroed so that the fast kernels' reads past a map's end see finite values. */
            memset(grown, 0, needed * sizeof(float));
            workspace->buffers[i] = grown;
        }
        workspace->capacity = needed;
    }
    fa_tensor_t current = *input;
    int which = 0;
    if (cnn->layer_count > 0 && cnn->layers[0].type == FA_CNN_PRELU) {
        /* PReLU works in place: never write into the caller's input. */
        memcpy(workspace->buffers[0], input->data, tensor_size(input) * sizeof(float));
        current.data = workspace->buffers[0];
        which = 1;
    }
    for (int i = 0; i < cnn->layer_count; i++) {
        const fa_cnn_layer_t *layer = &cnn->layers[i];
        fa_tensor_t next = current;
        next.data = workspace->buffers[which];
        switch (layer->type) {
        case FA_CNN_CONVOLUTION:
            fa_cnn_convolution(layer, &current, &next, workspace->buffers[2], kernels);
            break;
        case FA_CNN_MAX_POOL:
            fa_cnn_max_pool(layer, &current, &next, kernels);
            break;
        case FA_CNN_FULLY_CONNECTED:
            fa_cnn_fully_connected(layer, &current, &next, kernels);
            break;
        case FA_CNN_PRELU:
            fa_cnn_prelu(layer, &current, kernels);
            continue;
        case FA_CNN_SIGMOID:
            if (current.data != input->data) {
                fa_cnn_sigmoid(&current);
                continue;
            }
            memcpy(next.data, current.data, tensor_size(&current) * sizeof(float));
            fa_cnn_sigmoid(&next);
            break;
        }
        current = next;
        which = 1 - which;
    }
    *output = current;
    return FA_OK;
}
