#include "cnn_layers.h"

#include <stdlib.h>

#include "openblas_skylakex.h"
#include "testing.h"

fa_cnn_layer_t test_random_cnn_layer(fa_cnn_layer_type type, int inputs, int outputs,
                                     int kernel_height, int kernel_width) {
    fa_cnn_layer_t layer = {0};
    layer.type = type, layer.inputs = inputs, layer.outputs = outputs;
    layer.kernel_height = kernel_height, layer.kernel_width = kernel_width;
    size_t n = (size_t)inputs * (size_t)outputs * (size_t)(kernel_height * kernel_width);
    layer.weights = malloc(sizeof(float) * n);
    layer.bias = malloc(sizeof(float) * (size_t)outputs);
    CHECK(layer.weights && layer.bias, "out of memory");
    if (!layer.weights || !layer.bias) return layer;
    for (size_t i = 0; i < n; i++)
        layer.weights[i] = test_random_float();
    for (int i = 0; i < outputs; i++)
        layer.bias[i] = 2.0f * test_random_float();
    fa_error_t error = {0};
    CHECK(fa_cnn_prepare_layer(&layer, "synthetic", &error) == FA_OK, "%s", error.message);
    return layer;
}

void test_free_cnn_layer(fa_cnn_layer_t *layer) {
    free(layer->weights);
    free(layer->bias);
    free(layer->weights_by_input);
}
