/* The MTCNN layers that OpenFace runs through OpenBLAS (convolutions as im2col + sgemm_, fully
 * connected layers of 100 outputs or more through cv::gemm -> cblas_sgemm) against OpenBLAS
 * 0.3.21 itself, loaded with dlopen and forced onto its SkylakeX kernels, bit for bit: every
 * such layer of PNet, RNet and ONet on the shapes a 640x480 and a 1280x720 frame give, with
 * faceau's reference and AVX2 kernels; then synthetic layers that reach the parts of the model
 * OpenFace's networks do not (16-lane rows, inner dimensions of 385-448 and of three panels). All
 * is skipped, with a message, when the CPU lacks AVX-512 or the library is missing or another
 * version; test_mtcnn compares the AVX2 kernels with the C ones regardless. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "detect/cnn.h"
#include "detect/mtcnn.h"
#include "openblas_skylakex.h"
#include "cnn_layers.h"
#include "testing.h"

static void *library;

static size_t count_of(const fa_tensor_t *t) {
    return (size_t)t->channels * (size_t)t->height * (size_t)t->width;
}

/* A tensor with FA_CNN_PADDING readable floats after its end, as the fast kernels need. */
static fa_tensor_t new_tensor(int channels, int height, int width, size_t extra) {
    fa_tensor_t t = {channels, height, width, NULL};
    t.data = calloc(count_of(&t) + extra + FA_CNN_PADDING, sizeof(float));
    return t;
}

static fa_tensor_t random_tensor(int channels, int height, int width) {
    fa_tensor_t t = new_tensor(channels, height, width, 0);
    for (size_t i = 0; i < count_of(&t); i++)
        t.data[i] = 2.0f * test_random_float();
    return t;
}

static const char *kernels_name(fa_cnn_kernels kernels) {
    return kernels == FA_CNN_KERNELS_AVX2 ? "AVX2" : "C";
}

/* OpenFace's convolution: column-major C (outputs x pixels) = W (outputs x K) times the im2col
 * matrix (K x pixels), K = maps x kernel + 1, the last row of ones meeting the bias. */
static void library_convolution(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                                const fa_tensor_t *shape, float *c) {
    const int kh = layer->kernel_height, kw = layer->kernel_width;
    const int m = layer->outputs, n = shape->height * shape->width;
    const int k = layer->inputs * kh * kw + 1;
    float *a = malloc(sizeof(float) * (size_t)m * (size_t)k);
    float *b = malloc(sizeof(float) * (size_t)k * (size_t)n);
    for (int o = 0; o < m; o++) {
        for (int column = 0; column < k - 1; column++)
            a[o + (size_t)m * (size_t)column] =
                layer->weights[(size_t)o * (size_t)(k - 1) + (size_t)column];
        a[o + (size_t)m * (size_t)(k - 1)] = layer->bias[o];
    }
    for (int y = 0; y < shape->height; y++)
        for (int x = 0; x < shape->width; x++) {
            float *col = b + (size_t)(y * shape->width + x) * (size_t)k;
            int column = 0;
            for (int map = 0; map < layer->inputs; map++)
                for (int xx = 0; xx < kw; xx++)
                    for (int yy = 0; yy < kh; yy++)
                        col[column++] =
                            in->data[((size_t)map * (size_t)in->height + (size_t)(y + yy)) *
                                         (size_t)in->width +
                                     (size_t)(x + xx)];
            col[column] = 1.0f;
        }
    test_openblas_sgemm(library, m, n, k, 1.0f, a, m, b, k, 0.0f, c, m);
    free(a), free(b);
}

/* Differences between faceau's convolution (both kernel sets) and the library's. */
static long compare_convolution(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                                const char *what) {
    fa_tensor_t out = *in;
    fa_cnn_output_shape(layer, in, &out);
    const size_t pixels = (size_t)out.height * (size_t)out.width;
    float *expected = malloc(sizeof(float) * count_of(&out));
    library_convolution(layer, in, &out, expected);
    long total = 0;
    for (int kernels = FA_CNN_KERNELS_REFERENCE; kernels <= FA_CNN_KERNELS_AVX2; kernels++) {
        if (kernels == FA_CNN_KERNELS_AVX2 && !fa_cnn_have_avx2()) continue;
        fa_tensor_t mine = new_tensor(out.channels, out.height, out.width, 0);
        float *scratch = calloc(fa_cnn_convolution_scratch(layer, in), sizeof(float));
        fa_cnn_convolution(layer, in, &mine, scratch, (fa_cnn_kernels)kernels);
        long differ = 0;
        for (int o = 0; o < out.channels; o++)
            for (size_t p = 0; p < pixels; p++)
                differ += memcmp(&mine.data[(size_t)o * pixels + p],
                                 &expected[o + (size_t)out.channels * p], sizeof(float)) != 0;
        CHECK(differ == 0, "%s (M=%d N=%zu K=%d), %s kernels: %ld of %zu outputs differ", what,
              layer->outputs, pixels,
              layer->inputs * layer->kernel_height * layer->kernel_width + 1,
              kernels_name((fa_cnn_kernels)kernels), differ, count_of(&out));
        total += differ;
        free(mine.data), free(scratch);
    }
    free(expected);
    return total;
}

/* OpenCV's weights * x + bias through cblas_sgemm, row-major: OpenBLAS sees column-major
 * C (1 x outputs) = x (1 x inputs) times W^T (inputs x outputs), beta = 1 on C = the bias. */
static long compare_fully_connected(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                                    const char *what) {
    fa_tensor_t out = *in;
    fa_cnn_output_shape(layer, in, &out);
    /* The flattened input as OpenFace builds it: map by map, each transposed. */
    float *x = malloc(sizeof(float) * (size_t)layer->inputs);
    size_t i = 0;
    for (int map = 0; map < in->channels; map++)
        for (int xx = 0; xx < in->width; xx++)
            for (int yy = 0; yy < in->height; yy++)
                x[i++] =
                    in->data[((size_t)map * (size_t)in->height + (size_t)yy) * (size_t)in->width +
                             (size_t)xx];
    float *expected = malloc(sizeof(float) * (size_t)layer->outputs);
    memcpy(expected, layer->bias, sizeof(float) * (size_t)layer->outputs);
    test_openblas_sgemm(library, 1, layer->outputs, layer->inputs, 1.0f, x, 1, layer->weights,
                        layer->inputs, 1.0f, expected, 1);
    long total = 0;
    for (int kernels = FA_CNN_KERNELS_REFERENCE; kernels <= FA_CNN_KERNELS_AVX2; kernels++) {
        if (kernels == FA_CNN_KERNELS_AVX2 && !fa_cnn_have_avx2()) continue;
        fa_tensor_t mine = new_tensor(out.channels, out.height, out.width, count_of(in));
        fa_cnn_fully_connected(layer, in, &mine, (fa_cnn_kernels)kernels);
        long differ = test_differing_floats(mine.data, expected, (size_t)layer->outputs);
        CHECK(differ == 0, "%s (%d inputs, %d outputs), %s kernels: %ld outputs differ", what,
              layer->inputs, layer->outputs, kernels_name((fa_cnn_kernels)kernels), differ);
        total += differ;
        free(mine.data);
    }
    free(x), free(expected);
    return total;
}

/* Runs a network on a random input with faceau's reference kernels, comparing every layer that
 * OpenFace sends to OpenBLAS on the way. Returns the number of layers compared. */
static int compare_network(const fa_cnn_t *cnn, int height, int width, const char *name) {
    fa_tensor_t current = random_tensor(3, height, width);
    int compared = 0;
    for (int i = 0; i < cnn->layer_count; i++) {
        const fa_cnn_layer_t *layer = &cnn->layers[i];
        char what[96];
        snprintf(what, sizeof(what), "%s %dx%d layer %d", name, width, height, i);
        fa_tensor_t next = current;
        fa_cnn_output_shape(layer, &current, &next);
        next = new_tensor(next.channels, next.height, next.width, count_of(&current));
        switch (layer->type) {
        case FA_CNN_CONVOLUTION: {
            compare_convolution(layer, &current, what);
            compared++;
            float *scratch = calloc(fa_cnn_convolution_scratch(layer, &current), sizeof(float));
            fa_cnn_convolution(layer, &current, &next, scratch, FA_CNN_KERNELS_REFERENCE);
            free(scratch);
            break;
        }
        case FA_CNN_FULLY_CONNECTED:
            if (layer->outputs >= 100 && current.channels != layer->inputs) {
                compare_fully_connected(layer, &current, what);
                compared++;
            }
            fa_cnn_fully_connected(layer, &current, &next, FA_CNN_KERNELS_REFERENCE);
            break;
        case FA_CNN_MAX_POOL:
            fa_cnn_max_pool(layer, &current, &next, FA_CNN_KERNELS_REFERENCE);
            break;
        case FA_CNN_PRELU:
            memcpy(next.data, current.data, sizeof(float) * count_of(&current));
            fa_cnn_prelu(layer, &next, FA_CNN_KERNELS_REFERENCE);
            break;
        case FA_CNN_SIGMOID:
            memcpy(next.data, current.data, sizeof(float) * count_of(&current));
            fa_cnn_sigmoid(&next);
            break;
        }
        free(current.data);
        current = next;
    }
    free(current.data);
    return compared;
}

/* PNet on every pyramid level OpenFace's detector builds for a frame (minimum face 60). */
static void compare_pyramid(const fa_cnn_t *pnet, int height, int width) {
    const int min_side = width < height ? width : height;
    const int levels = (int)floor(log(60.0 / min_side) / log(0.709)) + 1;
    int compared = 0;
    for (int i = 0; i < levels; i++) {
        double scale = 12.0 / 60.0 * pow(0.709, i);
        compared +=
            compare_network(pnet, (int)ceil(height * scale), (int)ceil(width * scale), "PNet");
    }
    CHECK(compared == 3 * levels, "PNet: %d layers compared", compared);
}


/* Shapes OpenFace's networks do not have, for the rest of the summation model. */
static void compare_synthetic(void) {
    /* (maps, outputs, kernel height, kernel width, input height, input width) */
    static const int convolutions[][6] = {
        {4, 20, 3, 3, 9, 9},     /* small: M mod 16 = 4, K = 37: 16-lane rows */
        {4, 23, 3, 3, 8, 9},     /* M mod 16 = 7, 42 pixels: by halves in the last 2 */
        {4, 25, 3, 3, 8, 9},     /* M mod 16 = 9: one accumulator */
        {3, 21, 3, 3, 8, 9},     /* K = 28 < 32: one accumulator */
        {44, 8, 3, 3, 17, 20},   /* small, K = 397: 16 lanes */
        {44, 16, 3, 3, 60, 60},  /* regular, K = 397: one panel (448 at most) */
        {50, 16, 3, 3, 40, 40},  /* regular, K = 451: two panels */
        {100, 16, 3, 3, 40, 40}, /* regular, K = 901: three panels */
        {7, 5, 2, 3, 300, 301},  /* regular, M = 5 */
    };
    /* The outputs added by halves are few (the last 1-3 rows in the last 1-3 columns): the
     * first two shapes are tried with many random layers. */
    for (size_t t = 0; t < sizeof convolutions / sizeof convolutions[0]; t++)
        for (int trial = 0; trial < (t < 2 ? 40 : 1); trial++) {
            const int *c = convolutions[t];
            fa_cnn_layer_t layer = test_random_cnn_layer(FA_CNN_CONVOLUTION, c[0], c[1], c[2], c[3]);
            fa_tensor_t in = random_tensor(c[0], c[4], c[5]);
            char what[64];
            snprintf(what, sizeof what, "synthetic convolution %zu, trial %d", t, trial);
            compare_convolution(&layer, &in, what);
            free(in.data);
            test_free_cnn_layer(&layer);
        }
    /* (inputs, outputs): lanes with a last partial group of 4 outputs, K < 32, and the regular
     * path (inputs x outputs above 10^6) from a bias. */
    static const int fully_connected[][2] = {{576, 130}, {100, 103}, {20, 150}, {1200, 1000}};
    for (size_t t = 0; t < sizeof fully_connected / sizeof fully_connected[0]; t++)
        for (int trial = 0; trial < (t < 2 ? 40 : 1); trial++) {
            const int *c = fully_connected[t];
            fa_cnn_layer_t layer = test_random_cnn_layer(FA_CNN_FULLY_CONNECTED, c[0], c[1], 1, 1);
            fa_tensor_t in = random_tensor(1, c[0], 1);
            char what[64];
            snprintf(what, sizeof what, "synthetic fully connected %zu, trial %d", t, trial);
            compare_fully_connected(&layer, &in, what);
            free(in.data);
            test_free_cnn_layer(&layer);
        }
}

int main(void) {
    library = test_openblas_skylakex_open();
    if (!library) return test_finish("cnn_openblas");
    char detector[1024];
    snprintf(detector, sizeof detector, "%s/model/mtcnn_detector/MTCNN_detector.txt",
             test_models_dir());
    fa_mtcnn_t mtcnn;
    fa_error_t error = {0};
    if (fa_mtcnn_load(&mtcnn, detector, &error) != FA_OK) {
        CHECK(0, "load: %s", error.message);
        return test_finish("cnn_openblas");
    }
    compare_pyramid(&mtcnn.pnet, 480, 640);
    compare_pyramid(&mtcnn.pnet, 720, 1280);
    CHECK(compare_network(&mtcnn.rnet, 24, 24, "RNet") == 4, "RNet: 3 convolutions + 1 FC");
    CHECK(compare_network(&mtcnn.onet, 48, 48, "ONet") == 5, "ONet: 4 convolutions + 1 FC");
    compare_synthetic();
    fa_mtcnn_release(&mtcnn);
    return test_finish("cnn_openblas");
}
