#include "landmarks/validator.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "model/reader.h"

/* ---------------------------------------------------------------------------------------------
 * Loading (LANDMARKS_SPEC §1.6) */

enum { LAYER_CONVOLUTION = 0, LAYER_MAX_POOL = 1, LAYER_FULLY_CONNECTED = 2, LAYER_RELU = 3 };

/* The only layer sequence validator_cnn.txt uses; see validator.h. */
static const int expected_layers[] = {LAYER_CONVOLUTION,     LAYER_RELU, LAYER_MAX_POOL,
                                      LAYER_CONVOLUTION,     LAYER_RELU, LAYER_MAX_POOL,
                                      LAYER_FULLY_CONNECTED, LAYER_RELU, LAYER_FULLY_CONNECTED};
enum { LAYER_COUNT = (int)(sizeof expected_layers / sizeof expected_layers[0]) };

/* Reads a MatBin that must have the given type and shape (rows or cols −1: any). */
static fa_status read_matrix(fa_reader_t *reader, int type, int rows, int cols, const char *what,
                             fa_matrix_t *matrix, fa_error_t *error)
{
    fa_status status = fa_read_matbin(reader, matrix, error);
    if (status != FA_OK) return status;
    if (matrix->type != type || (rows >= 0 && matrix->rows != rows) ||
        (cols >= 0 && matrix->cols != cols)) {
        status = fa_error_set(
            error, FA_ERROR_MODEL, "%s: %s is a %dx%d matrix of type %d, expected %dx%d of type %d",
            reader->name, what, matrix->rows, matrix->cols, matrix->type, rows, cols, type);
        fa_matrix_release(matrix);
    }
    return status;
}

static fa_status allocate_floats(float **out, size_t count, fa_error_t *error)
{
    *out = calloc(count ? count : 1, sizeof(float));
    return *out ? FA_OK : fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
}

/* A matrix's values as a new float array (double to float rounds to nearest, as convertTo). */
static fa_status read_floats(fa_reader_t *reader, int type, int rows, int cols, const char *what,
                             float **out, fa_error_t *error)
{
    fa_matrix_t matrix;
    fa_status status = read_matrix(reader, type, rows, cols, what, &matrix, error);
    if (status != FA_OK) return status;
    size_t count = (size_t)matrix.rows * (size_t)matrix.cols;
    status = allocate_floats(out, count, error);
    for (size_t i = 0; status == FA_OK && i < count; i++)
        (*out)[i] = (float)matrix.data[i];
    fa_matrix_release(&matrix);
    return status;
}

static fa_status read_int(fa_reader_t *reader, int minimum, int maximum, const char *what,
                          int *value, fa_error_t *error)
{
    int32_t raw = 0;
    fa_status status = fa_read_i32(reader, &raw, error);
    if (status != FA_OK) return status;
    if (raw < minimum || raw > maximum)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: %s is %d, expected %d..%d", reader->name,
                            what, (int)raw, minimum, maximum);
    *value = (int)raw;
    return FA_OK;
}

/* A convolution layer: kernels stored per input plane, then per kernel, each kh×kw (rows = y),
 * rearranged into validator_cnn.h's tap-major layout. */
static fa_status read_convolution(fa_reader_t *reader, int channels, int side, float **weights,
                                  float **bias, fa_error_t *error)
{
    int in_count = 0, kernel_count = 0;
    fa_status status =
        read_int(reader, channels, channels, "convolution input count", &in_count, error);
    if (status == FA_OK)
        status = read_int(reader, FA_VALIDATOR_KERNELS, FA_VALIDATOR_KERNELS,
                          "convolution kernel count", &kernel_count, error);
    if (status == FA_OK) status = allocate_floats(bias, FA_VALIDATOR_KERNELS, error);
    for (int k = 0; status == FA_OK && k < FA_VALIDATOR_KERNELS; k++) {
        status = fa_read_f32(reader, &(*bias)[k], error);
        if (status == FA_OK && !isfinite((*bias)[k]))
            status = fa_error_set(error, FA_ERROR_MODEL, "%s: non-finite convolution bias",
                                  reader->name);
    }
    if (status == FA_OK)
        status = allocate_floats(
            weights, (size_t)channels * (size_t)(side * side) * FA_VALIDATOR_KERNELS, error);
    for (int c = 0; status == FA_OK && c < channels; c++) {
        for (int k = 0; status == FA_OK && k < FA_VALIDATOR_KERNELS; k++) {
            fa_matrix_t kernel;
            status =
                read_matrix(reader, FA_CV_32F, side, side, "convolution kernel", &kernel, error);
            if (status != FA_OK) break;
            for (int ky = 0; ky < side; ky++)
                for (int kx = 0; kx < side; kx++)
                    (*weights)[((c * side + kx) * side + ky) * FA_VALIDATOR_KERNELS + k] =
                        (float)kernel.data[ky * side + kx];
            fa_matrix_release(&kernel);
        }
    }
    return status;
}

static fa_status read_fully_connected(fa_reader_t *reader, int inputs, int outputs, float **weights,
                                      float **bias, fa_error_t *error)
{
    fa_status status =
        read_floats(reader, FA_CV_32F, outputs, 1, "fully connected bias", bias, error);
    if (status == FA_OK)
        status = read_floats(reader, FA_CV_32F, inputs, outputs, "fully connected weights", weights,
                             error);
    return status;
}

static fa_status read_network(fa_reader_t *reader, fa_validator_view_t *view, fa_error_t *error)
{
    int depth = 0, convolutions = 0, fully_connected = 0;
    fa_status status = read_int(reader, LAYER_COUNT, LAYER_COUNT,
                                "network depth (only the "
                                "9-layer validator_cnn.txt network is supported)",
                                &depth, error);
    for (int layer = 0; status == FA_OK && layer < LAYER_COUNT; layer++) {
        int type = 0;
        status = read_int(reader, expected_layers[layer], expected_layers[layer], "layer type",
                          &type, error);
        if (status != FA_OK) break;
        if (type == LAYER_CONVOLUTION && convolutions++ == 0)
            status = read_convolution(reader, 1, FA_VALIDATOR_CONV1_SIDE, &view->conv1_weights,
                                      &view->conv1_bias, error);
        else if (type == LAYER_CONVOLUTION)
            status = read_convolution(reader, FA_VALIDATOR_KERNELS, FA_VALIDATOR_CONV2_SIDE,
                                      &view->conv2_weights, &view->conv2_bias, error);
        else if (type == LAYER_FULLY_CONNECTED && fully_connected++ == 0)
            status = read_fully_connected(reader, FA_VALIDATOR_FLAT, FA_VALIDATOR_HIDDEN,
                                          &view->fc1_weights, &view->fc1_bias, error);
        else if (type == LAYER_FULLY_CONNECTED)
            status = read_fully_connected(reader, FA_VALIDATOR_HIDDEN, FA_VALIDATOR_BINS,
                                          &view->fc2_weights, &view->fc2_bias, error);
    }
    return status;
}

/* The mask and triangle map become the list of mask pixels in column-major order. */
static fa_status collect_pixels(fa_reader_t *reader, fa_validator_view_t *view,
                                const fa_matrix_t *triangle_id, const fa_matrix_t *mask,
                                fa_error_t *error)
{
    int count = 0;
    for (int i = 0; i < FA_VALIDATOR_PIXELS; i++)
        count += mask->data[i] > 0; /* → CV_8U */
    if (count != view->pixel_count)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: the PAW mask has %d pixels, expected %d",
                            reader->name, count, view->pixel_count);
    view->pixel_x = malloc((size_t)count + 1);
    view->pixel_y = malloc((size_t)count + 1);
    view->pixel_triangle = malloc(sizeof(int16_t) * ((size_t)count + 1));
    if (!view->pixel_x || !view->pixel_y || !view->pixel_triangle)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    int n = 0;
    for (int x = 0; x < FA_VALIDATOR_SIDE; x++) {
        for (int y = 0; y < FA_VALIDATOR_SIDE; y++) {
            if (!(mask->data[y * FA_VALIDATOR_SIDE + x] > 0)) continue;
            double triangle = triangle_id->data[y * FA_VALIDATOR_SIDE + x];
            if (triangle < 0 || triangle >= view->triangle_count)
                return fa_error_set(error, FA_ERROR_MODEL,
                                    "%s: PAW pixel (%d, %d) lies in no triangle", reader->name, x,
                                    y);
            view->pixel_x[n] = (uint8_t)x;
            view->pixel_y[n] = (uint8_t)y;
            view->pixel_triangle[n++] = (int16_t)triangle;
        }
    }
    return FA_OK;
}

static fa_status read_triangles(fa_reader_t *reader, fa_validator_view_t *view, fa_error_t *error)
{
    fa_matrix_t matrix;
    fa_status status = read_matrix(reader, FA_CV_32S, -1, 3, "PAW triangulation", &matrix, error);
    if (status != FA_OK) return status;
    view->triangle_count = matrix.rows;
    if (matrix.rows < 1 || matrix.rows > FA_VALIDATOR_MAX_TRIANGLES)
        status =
            fa_error_set(error, FA_ERROR_MODEL, "%s: %d PAW triangles", reader->name, matrix.rows);
    if (status == FA_OK) {
        view->triangles = malloc(sizeof *view->triangles * (size_t)matrix.rows);
        if (!view->triangles) status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; status == FA_OK && i < 3 * matrix.rows; i++) {
        if (matrix.data[i] < 0 || matrix.data[i] >= FA_VALIDATOR_LANDMARKS)
            status = fa_error_set(error, FA_ERROR_MODEL, "%s: PAW triangle vertex %g", reader->name,
                                  matrix.data[i]);
        else
            view->triangles[i / 3][i % 3] = (int32_t)matrix.data[i];
    }
    fa_matrix_release(&matrix);
    return status;
}

/* PAW::Read. */
static fa_status read_warp(fa_reader_t *reader, fa_validator_view_t *view, fa_error_t *error)
{
    double min_x = 0, min_y = 0;
    float *destination = NULL, *alpha = NULL, *beta = NULL;
    fa_matrix_t triangle_id = {0}, mask = {0};
    fa_status status =
        read_int(reader, view->pixel_count, view->pixel_count,
                 "PAW pixel count (must match the mean image)", &view->pixel_count, error);
    if (status == FA_OK) status = fa_read_f64(reader, &min_x, error);
    if (status == FA_OK) status = fa_read_f64(reader, &min_y, error);
    if (status == FA_OK && (!(fabs(min_x) < 1e4) || !(fabs(min_y) < 1e4)))
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: PAW origin (%g, %g)", reader->name, min_x,
                              min_y);
    view->min_x = (float)min_x;
    view->min_y = (float)min_y;
    /* The destination shape is not needed: alpha and beta already encode it. */
    if (status == FA_OK)
        status = read_floats(reader, FA_CV_64F, 2 * FA_VALIDATOR_LANDMARKS, 1,
                             "PAW destination landmarks", &destination, error);
    if (status == FA_OK) status = read_triangles(reader, view, error);
    if (status == FA_OK)
        status = read_matrix(reader, FA_CV_32S, FA_VALIDATOR_SIDE, FA_VALIDATOR_SIDE,
                             "PAW triangle map", &triangle_id, error);
    if (status == FA_OK)
        status = read_matrix(reader, FA_CV_32S, FA_VALIDATOR_SIDE, FA_VALIDATOR_SIDE,
                             "PAW pixel mask", &mask, error);
    if (status == FA_OK)
        status =
            read_floats(reader, FA_CV_64F, view->triangle_count, 3, "PAW alpha", &alpha, error);
    if (status == FA_OK)
        status = read_floats(reader, FA_CV_64F, view->triangle_count, 3, "PAW beta", &beta, error);
    if (status == FA_OK) status = collect_pixels(reader, view, &triangle_id, &mask, error);
    view->alpha = (float(*)[3])alpha;
    view->beta = (float(*)[3])beta;
    free(destination);
    fa_matrix_release(&triangle_id);
    fa_matrix_release(&mask);
    return status;
}

static fa_status read_view(fa_reader_t *reader, fa_validator_view_t *view, fa_error_t *error)
{
    fa_matrix_t mean;
    fa_status status = read_matrix(reader, FA_CV_64F, 1, -1, "mean image", &mean, error);
    if (status != FA_OK) return status;
    view->pixel_count = mean.cols;
    if (mean.cols < 1 || mean.cols > FA_VALIDATOR_PIXELS)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: mean image of %d pixels", reader->name,
                              mean.cols);
    if (status == FA_OK) status = allocate_floats(&view->mean, (size_t)mean.cols, error);
    for (int i = 0; status == FA_OK && i < mean.cols; i++)
        view->mean[i] = (float)mean.data[i];
    fa_matrix_release(&mean);
    if (status == FA_OK)
        status = read_floats(reader, FA_CV_64F, 1, view->pixel_count, "standard deviation image",
                             &view->standard_deviation, error);
    if (status == FA_OK) status = read_network(reader, view, error);
    if (status == FA_OK) status = read_warp(reader, view, error);
    return status;
}

static fa_status read_orientation(fa_reader_t *reader, double orientation[3], fa_error_t *error)
{
    fa_matrix_t matrix;
    fa_status status = read_matrix(reader, FA_CV_64F, 3, 1, "view orientation", &matrix, error);
    if (status != FA_OK) return status;
    /* OpenFace: Vec3d * M_PI / 180.0, where Vec's division multiplies by the reciprocal. */
    for (int i = 0; i < 3; i++)
        orientation[i] = (matrix.data[i] * M_PI) * (1.0 / 180.0);
    fa_matrix_release(&matrix);
    return FA_OK;
}

fa_status fa_validator_parse(const char *data, size_t size, const char *name,
                             fa_validator_t *validator, fa_error_t *error)
{
    memset(validator, 0, sizeof *validator);
    fa_reader_t reader;
    fa_reader_init(&reader, data, size, name);
    int type = 0;
    fa_status status = read_int(&reader, 3, 3, "validator type (3 = CNN)", &type, error);
    if (status == FA_OK)
        status = read_int(&reader, 1, FA_VALIDATOR_MAX_VIEWS, "view count", &validator->view_count,
                          error);
    for (int v = 0; status == FA_OK && v < validator->view_count; v++)
        status = read_orientation(&reader, validator->views[v].orientation, error);
    for (int v = 0; status == FA_OK && v < validator->view_count; v++)
        status = read_view(&reader, &validator->views[v], error);
    if (status == FA_OK && reader.position != reader.size)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: %zu unexpected bytes after the last view",
                              name, reader.size - reader.position);
    if (status != FA_OK) {
        fa_validator_release(validator);
        return status;
    }
    fa_validator_choose_kernel(validator);
    return FA_OK;
}

void fa_validator_choose_kernel(fa_validator_t *validator)
{
    fa_validator_cnn_convolve_fn fast = fa_validator_cnn_convolve_avx512();
    if (!fast) fast = fa_validator_cnn_convolve_avx2();
    validator->convolve = fast ? fast : fa_validator_cnn_convolve_c;
}

fa_status fa_validator_load(const char *path, fa_validator_t *validator, fa_error_t *error)
{
    char *data = NULL;
    size_t size = 0;
    memset(validator, 0, sizeof *validator);
    fa_status status = fa_file_read_all(path, &data, &size, error);
    if (status != FA_OK) return status;
    status = fa_validator_parse(data, size, path, validator, error);
    free(data);
    return status;
}

void fa_validator_release(fa_validator_t *validator)
{
    if (!validator) return;
    for (int v = 0; v < FA_VALIDATOR_MAX_VIEWS; v++) {
        fa_validator_view_t *view = &validator->views[v];
        free(view->triangles);
        free(view->alpha);
        free(view->beta);
        free(view->pixel_x);
        free(view->pixel_y);
        free(view->pixel_triangle);
        free(view->mean);
        free(view->standard_deviation);
        free(view->conv1_weights);
        free(view->conv1_bias);
        free(view->conv2_weights);
        free(view->conv2_bias);
        free(view->fc1_weights);
        free(view->fc1_bias);
        free(view->fc2_weights);
        free(view->fc2_bias);
    }
    memset(validator, 0, sizeof *validator);
}

/* ---------------------------------------------------------------------------------------------
 * Checking (LANDMARKS_SPEC §4) */

int fa_validator_view_index(const fa_validator_t *validator, const float orientation[3])
{
    int best = 0;
    double best_distance = 0;
    for (int v = 0; v < validator->view_count; v++) {
        double sum = 0; /* cv::norm of a Vec3d difference: squares summed in order */
        for (int i = 0; i < 3; i++) {
            double d = (double)orientation[i] - validator->views[v].orientation[i];
            sum += d * d;
        }
        double distance = sqrt(sum);
        if (v == 0 || distance < best_distance) {
            best_distance = distance;
            best = v;
        }
    }
    return best;
}

double fa_validator_certainty_from_bin(int bin, int bins)
{
    /* The class is turned back into a value in [−1, 1] (bin centre), then into [0, 1]. */
    double step = (1.0 - -1.0) / (double)bins;
    double decision = -1.0 + step / 2.0 + bin * step;
    return (double)(float)(0.5 * (1.0 - decision));
}

/* PAW::CalcCoeff for the landmarks already moved into the crop. */
static void warp_coefficients(const fa_validator_view_t *view, const float *x, const float *y,
                              float (*coefficients)[6])
{
    for (int t = 0; t < view->triangle_count; t++) {
        const int i = view->triangles[t][0], j = view->triangles[t][1], k = view->triangles[t][2];
        const float *alpha = view->alpha[t], *beta = view->beta[t];
        const float x0 = x[i], xj = x[j] - x0, xk = x[k] - x0;
        const float y0 = y[i], yj = y[j] - y0, yk = y[k] - y0;
        float *c = coefficients[t];
        c[0] = x0 + xj * alpha[0] + xk * beta[0];
        c[1] = xj * alpha[1] + xk * beta[1];
        c[2] = xj * alpha[2] + xk * beta[2];
        c[3] = y0 + yj * alpha[0] + yk * beta[0];
        c[4] = yj * alpha[1] + yk * beta[1];
        c[5] = yj * alpha[2] + yk * beta[2];
    }
}

typedef struct crop {
    const uint8_t *pixels; /* top-left of the crop inside the gray image */
    ptrdiff_t stride;
    int width, height;
} crop_t;

static float crop_pixel(const crop_t *crop, int x, int y)
{
    if (x < 0 || y < 0 || x >= crop->width || y >= crop->height) return 0.0f; /* constant 0 */
    return (float)crop->pixels[(ptrdiff_t)y * crop->stride + x];
}

/* cv::remap with INTER_LINEAR and a constant-0 border at one float map position: OpenCV
 * rounds the position to 1/32 px and weighs the four taps with its bilinear table. */
static float sample_bilinear(const crop_t *crop, float map_x, float map_y)
{
    /* Far outside: OpenCV saturates to short and lands outside too (no image is that big). */
    if (!(fabsf(map_x) < 30000.0f) || !(fabsf(map_y) < 30000.0f)) return 0.0f;
    const int fixed_x = (int)lrintf(map_x * 32.0f), fixed_y = (int)lrintf(map_y * 32.0f);
    const int fraction_x = fixed_x & 31, fraction_y = fixed_y & 31;
    const int x = (fixed_x - fraction_x) / 32, y = (fixed_y - fraction_y) / 32;
    /* The table's weights are products of (1 − a/32) and a/32, all exact in float. */
    const float w0 = (float)((32 - fraction_y) * (32 - fraction_x)) * (1.0f / 1024.0f);
    const float w1 = (float)((32 - fraction_y) * fraction_x) * (1.0f / 1024.0f);
    const float w2 = (float)(fraction_y * (32 - fraction_x)) * (1.0f / 1024.0f);
    const float w3 = (float)(fraction_y * fraction_x) * (1.0f / 1024.0f);
    float v0, v1, v2, v3;
    if (x >= 0 && y >= 0 && x < crop->width - 1 && y < crop->height - 1) {
        const uint8_t *p = crop->pixels + (ptrdiff_t)y * crop->stride + x;
        v0 = p[0];
        v1 = p[1];
        v2 = p[crop->stride];
        v3 = p[crop->stride + 1];
    } else {
        v0 = crop_pixel(crop, x, y);
        v1 = crop_pixel(crop, x + 1, y);
        v2 = crop_pixel(crop, x, y + 1);
        v3 = crop_pixel(crop, x + 1, y + 1);
    }
    return v0 * w0 + v1 * w1 + v2 * w2 + v3 * w3;
}

/* PAW::WarpRegion + remap, evaluated only at the mask pixels, in column-major order. */
static void warp_samples(const fa_validator_view_t *view, const crop_t *crop,
                         const float (*coefficients)[6], float *samples)
{
    for (int n = 0; n < view->pixel_count; n++) {
        const float *c = coefficients[view->pixel_triangle[n]];
        const float x = (float)view->pixel_x[n] + view->min_x;
        const float y = (float)view->pixel_y[n] + view->min_y;
        const float map_x = c[0] + c[1] * x + c[2] * y;
        const float map_y = c[3] + c[4] * x + c[5] * y;
        samples[n] = sample_bilinear(crop, map_x, map_y);
    }
}

/* NormaliseWarpedToVector and the CNN input image (zero outside the mask). */
static void normalise_samples(const fa_validator_view_t *view, const float *samples, float *image)
{
    const int count = view->pixel_count;
    double sum = 0, sum_squares = 0; /* cv::meanStdDev */
    for (int n = 0; n < count; n++) {
        sum += samples[n];
        sum_squares += (double)samples[n] * samples[n];
    }
    const double scale = 1.0 / count;
    const double mean = sum * scale;
    double deviation = sqrt(fmax(sum_squares * scale - mean * mean, 0.0));
    if (deviation == 0) deviation = 1;
    /* vec -= mean and vec /= std: float arithmetic with the scalar (and its reciprocal) rounded
     * to float first, as OpenCV does for a float matrix. */
    const float mean_f = (float)mean, reciprocal_f = (float)(1.0 / deviation);
    memset(image, 0, sizeof(float) * FA_VALIDATOR_PIXELS);
    for (int n = 0; n < count; n++) {
        const float value = (samples[n] - mean_f) * reciprocal_f;
        image[view->pixel_y[n] * FA_VALIDATOR_SIDE + view->pixel_x[n]] =
            (value - view->mean[n]) / view->standard_deviation[n];
    }
}

/* The network; returns the argmax bin (the first maximum). */
static int run_network(const fa_validator_t *validator, const fa_validator_view_t *view,
                       fa_validator_workspace_t *ws)
{
    int height, width;
    validator->convolve(ws->image, 1, FA_VALIDATOR_SIDE, FA_VALIDATOR_SIDE, view->conv1_weights,
                        view->conv1_bias, FA_VALIDATOR_KERNELS, FA_VALIDATOR_CONV1_SIDE,
                        FA_VALIDATOR_CONV1_SIDE, ws->conv1);
    fa_validator_cnn_relu(ws->conv1, sizeof ws->conv1 / sizeof ws->conv1[0]);
    fa_validator_cnn_max_pool(ws->conv1, FA_VALIDATOR_KERNELS, FA_VALIDATOR_CONV1_OUT, FA_VALIDATOR_CONV1_OUT,
                    ws->pool1, &height, &width);
    validator->convolve(ws->pool1, FA_VALIDATOR_KERNELS, height, width, view->conv2_weights,
                        view->conv2_bias, FA_VALIDATOR_KERNELS, FA_VALIDATOR_CONV2_SIDE,
                        FA_VALIDATOR_CONV2_SIDE, ws->conv2);
    fa_validator_cnn_relu(ws->conv2, sizeof ws->conv2 / sizeof ws->conv2[0]);
    fa_validator_cnn_max_pool(ws->conv2, FA_VALIDATOR_KERNELS, FA_VALIDATOR_CONV2_OUT, FA_VALIDATOR_CONV2_OUT,
                    ws->pool2, &height, &width);
    /* OpenFace flattens map after map, each map column-major. */
    const int side = FA_VALIDATOR_POOL2_OUT, area = side * side;
    for (int m = 0; m < FA_VALIDATOR_KERNELS; m++)
        for (int x = 0; x < side; x++)
            for (int y = 0; y < side; y++)
                ws->flat[m * area + x * side + y] = ws->pool2[m * area + y * side + x];
    fa_validator_cnn_fully_connected(ws->flat, FA_VALIDATOR_FLAT, view->fc1_weights, view->fc1_bias,
                           FA_VALIDATOR_HIDDEN, ws->hidden);
    fa_validator_cnn_relu(ws->hidden, FA_VALIDATOR_HIDDEN);
    fa_validator_cnn_fully_connected(ws->hidden, FA_VALIDATOR_HIDDEN, view->fc2_weights, view->fc2_bias,
                           FA_VALIDATOR_BINS, ws->scores);
    int best = 0;
    for (int i = 1; i < FA_VALIDATOR_BINS; i++)
        if (ws->scores[i] > ws->scores[best]) best = i;
    return best;
}

/* ROI corners as OpenFace truncates and clamps them; the float is clamped first only so that
 * the conversion stays defined (the clamped corners are the same). */
static int roi_corner(float value, int limit)
{
    if (value < -2.0f) value = -2.0f;
    if (value > (float)limit + 2.0f) value = (float)limit + 2.0f;
    return (int)value;
}

fa_status fa_validator_check(const fa_validator_t *validator, fa_validator_workspace_t *workspace,
                             const fa_image_t *gray, const float *landmarks,
                             const float orientation[3], double *certainty, fa_error_t *error)
{
    if (!validator || !workspace || !gray || !gray->data || !landmarks || !orientation ||
        !certainty || validator->view_count < 1)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "validator check: missing argument");
    if (gray->channels != 1 || gray->width < 1 || gray->height < 1)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "validator check: needs a gray image");
    const int n = FA_VALIDATOR_LANDMARKS;
    const fa_validator_view_t *view =
        &validator->views[fa_validator_view_index(validator, orientation)];
    workspace->view = (int)(view - validator->views);
    workspace->bin = -1;
    *certainty = 0;
    float min_x = landmarks[0], max_x = landmarks[0], min_y = landmarks[n], max_y = landmarks[n];
    for (int i = 0; i < 2 * n; i++)
        if (!isfinite(landmarks[i])) return FA_OK;
    for (int i = 1; i < n; i++) {
        min_x = landmarks[i] < min_x ? landmarks[i] : min_x;
        max_x = landmarks[i] > max_x ? landmarks[i] : max_x;
        min_y = landmarks[n + i] < min_y ? landmarks[n + i] : min_y;
        max_y = landmarks[n + i] > max_y ? landmarks[n + i] : max_y;
    }
    int left = roi_corner(min_x - 3.0f, gray->width), right = roi_corner(max_x + 3.0f, gray->width);
    int top = roi_corner(min_y - 3.0f, gray->height);
    int bottom = roi_corner(max_y + 3.0f, gray->height);
    left = left < 0 ? 0 : left;
    top = top < 0 ? 0 : top;
    right = right > gray->width - 1 ? gray->width - 1 : right;
    bottom = bottom > gray->height - 1 ? gray->height - 1 : bottom;
    if (right - left <= 1 || bottom - top <= 1) return FA_OK;

    const crop_t crop = {gray->data + (ptrdiff_t)top * gray->stride + left, gray->stride,
                         right - left, bottom - top};
    float x[FA_VALIDATOR_LANDMARKS], y[FA_VALIDATOR_LANDMARKS];
    for (int i = 0; i < n; i++) {
        x[i] = landmarks[i] - (float)left;
        y[i] = landmarks[n + i] - (float)top;
    }
    warp_coefficients(view, x, y, workspace->coefficients);
    warp_samples(view, &crop, (const float(*)[6])workspace->coefficients, workspace->samples);
    normalise_samples(view, workspace->samples, workspace->image);
    workspace->bin = run_network(validator, view, workspace);
    *certainty = fa_validator_certainty_from_bin(workspace->bin, FA_VALIDATOR_BINS);
    return FA_OK;
}
