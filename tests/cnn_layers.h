/* Random CNN layers for the tests that compare the MTCNN kernels with each other and with
 * OpenBLAS. */
#ifndef FACEAU_TESTS_CNN_LAYERS_H
#define FACEAU_TESTS_CNN_LAYERS_H

#include "detect/cnn.h"

/* A prepared layer with weights in [-0.5, 0.5) and biases in [-1, 1) (test_random_float);
 * test_free_cnn_layer releases it. */
fa_cnn_layer_t test_random_cnn_layer(fa_cnn_layer_type type, int inputs, int outputs,
                                     int kernel_height, int kernel_width);
void test_free_cnn_layer(fa_cnn_layer_t *layer);

#endif
