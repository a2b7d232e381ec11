/* OpenFace 2.2's CLNF detection validator (LANDMARKS_SPEC §1.6, §4): a piecewise-affine warp of
 * the face into a 60×60 frame of the nearest of 7 views, per-view normalisation and a small CNN
 * whose argmax over 30 bins becomes the quantised "confidence"; success = certainty > 0.725.
 *
 * The validator loads once and is then read-only (share it between threads); every call works in
 * a caller-owned fa_validator_workspace_t and allocates nothing. */
#ifndef FACEAU_LANDMARKS_VALIDATOR_H
#define FACEAU_LANDMARKS_VALIDATOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "landmarks/validator_cnn.h"

/* The one network layout that validator_cnn.txt holds (checked at load):
 * conv 1→10 9×9 · ReLU · pool · conv 10→10 7×7 · ReLU · pool · FC 1000→50 · ReLU · FC 50→30. */
enum {
    FA_VALIDATOR_SIDE = 60, /* warped face: 60×60 */
    FA_VALIDATOR_PIXELS = FA_VALIDATOR_SIDE * FA_VALIDATOR_SIDE,
    FA_VALIDATOR_MAX_VIEWS = 16,
    FA_VALIDATOR_MAX_TRIANGLES = 256,
    FA_VALIDATOR_LANDMARKS = 68,
    FA_VALIDATOR_KERNELS = 10, /* both convolutions */
    FA_VALIDATOR_CONV1_SIDE = 9,
    FA_VALIDATOR_CONV1_OUT = FA_VALIDATOR_SIDE - FA_VALIDATOR_CONV1_SIDE + 1, /* 52 */
    FA_VALIDATOR_POOL1_OUT = FA_VALIDATOR_CONV1_OUT / 2,                      /* 26 */
    FA_VALIDATOR_CONV2_SIDE = 7,
    FA_VALIDATOR_CONV2_OUT = FA_VALIDATOR_POOL1_OUT - FA_VALIDATOR_CONV2_SIDE + 1, /* 20 */
    FA_VALIDATOR_POOL2_OUT = FA_VALIDATOR_CONV2_OUT / 2,                           /* 10 */
    FA_VALIDATOR_FLAT = FA_VALIDATOR_KERNELS * FA_VALIDATOR_POOL2_OUT * FA_VALIDATOR_POOL2_OUT,
    FA_VALIDATOR_HIDDEN = 50,
    FA_VALIDATOR_BINS = 30,
};

/* success = certainty > this (OpenFace's validation_boundary), i.e. bin <= 7. */
#define FA_VALIDATOR_BOUNDARY 0.725

typedef struct fa_validator_view {
    double orientation[3]; /* rx, ry, rz in radians, as OpenFace converts the file's degrees */

    /* Piecewise-affine warp into the 60×60 frame. */
    float min_x, min_y; /* frame pixel (x, y) is the reference point (x + min_x, y + min_y) */
    int triangle_count;
    int32_t (*triangles)[3]; /* landmark indices */
    float (*alpha)[3], (*beta)[3];
    /* The pixels inside the mask in column-major order (x outer, y inner), OpenFace's order for
     * both the normalisation vector and the CNN input; pixel_count of each. */
    int pixel_count;
    uint8_t *pixel_x, *pixel_y;
    int16_t *pixel_triangle;
    float *mean, *standard_deviation; /* per mask pixel, in the same order */

    /* The network. Convolution weights use validator_cnn.h's layout (tap-major, kernel fastest),
     * fully connected weights are inputs × outputs as stored. */
    float *conv1_weights, *conv1_bias; /* 81 × 10, 10 */
    float *conv2_weights, *conv2_bias; /* 490 × 10, 10 */
    float *fc1_weights, *fc1_bias;     /* 1000 × 50, 50 */
    float *fc2_weights, *fc2_bias;     /* 50 × 30, 30 */
} fa_validator_view_t;

typedef struct fa_validator {
    int view_count;
    fa_validator_view_t views[FA_VALIDATOR_MAX_VIEWS];
    /* The convolution kernel, chosen at load (AVX2 when the CPU has it); tests may replace it
     * with fa_validator_cnn_convolve_c, which gives identical results. */
    fa_validator_cnn_convolve_fn convolve;
} fa_validator_t;

/* Per-call scratch memory (about 200 KB: allocate it, do not put it on a small stack). After a
 * call, view, bin and scores describe that call. */
typedef struct fa_validator_workspace {
    float coefficients[FA_VALIDATOR_MAX_TRIANGLES][6];
    float samples[FA_VALIDATOR_PIXELS];
    float image[FA_VALIDATOR_PIXELS];
    float conv1[FA_VALIDATOR_KERNELS * FA_VALIDATOR_CONV1_OUT * FA_VALIDATOR_CONV1_OUT];
    float pool1[FA_VALIDATOR_KERNELS * FA_VALIDATOR_POOL1_OUT * FA_VALIDATOR_POOL1_OUT];
    float conv2[FA_VALIDATOR_KERNELS * FA_VALIDATOR_CONV2_OUT * FA_VALIDATOR_CONV2_OUT];
    float pool2[FA_VALIDATOR_FLAT];
    float flat[FA_VALIDATOR_FLAT];
    float hidden[FA_VALIDATOR_HIDDEN];
    float scores[FA_VALIDATOR_BINS]; /* the last layer's outputs */
    int view;                        /* the view used */
    int bin;                         /* argmax of scores; -1 when the CNN did not run */
} fa_validator_workspace_t;

/* Parses validator_cnn.txt held in memory (every byte must be consumed); name is used in error
 * messages. FA_ERROR_MODEL on a damaged or unsupported file. */
fa_status fa_validator_parse(const char *data, size_t size, const char *name,
                             fa_validator_t *validator, fa_error_t *error);
fa_status fa_validator_load(const char *path, fa_validator_t *validator, fa_error_t *error);
void fa_validator_release(fa_validator_t *validator);
/* Sets convolve to the fastest kernel this CPU has (the parser does; so does the model cache). */
void fa_validator_choose_kernel(fa_validator_t *validator);

/* The view nearest to orientation (rx, ry, rz in radians; ties to the lower index). */
int fa_validator_view_index(const fa_validator_t *validator, const float orientation[3]);

/* The certainty OpenFace derives from the argmax bin: 1 − (2·bin + 1)/bins, rounded to float. */
double fa_validator_certainty_from_bin(int bin, int bins);

/* OpenFace's DetectionValidator::Check: certainty in [0, 1] for 68 landmarks
 * (x0..x67, y0..y67, pixels of gray) and the head orientation (params_global rx, ry, rz).
 * certainty is 0 when the landmarks' box has no area inside the image (or when a landmark is not
 * finite, where OpenFace's behaviour is undefined). gray must be 8-bit, one channel: OpenCV 4.6's
 * cvtColor(BGR2GRAY) of the frame, which uses 15-bit weights (3735, 19235, 9798). */
fa_status fa_validator_check(const fa_validator_t *validator, fa_validator_workspace_t *workspace,
                             const fa_image_t *gray, const float *landmarks,
                             const float orientation[3], double *certainty, fa_error_t *error);

#endif
