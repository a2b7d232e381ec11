/* MTCNN: layers against a float64 direct implementation, fast kernels against the reference,
 * the resize, the model reader on damaged files, and detection on OpenFace's sample media. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "detect/cnn.h"
#include "detect/mtcnn.h"
#include "detect/resize.h"
#include "cnn_layers.h"
#include "testing.h"

#include <errno.h>
#include <sys/stat.h>

static int mkdir_p_ok(const char *directory) {
    return mkdir(directory, 0755) == 0 || errno == EEXIST;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float random_uniform(float low, float high) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return low + (high - low) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static fa_tensor_t random_tensor(int channels, int height, int width) {
    fa_tensor_t t = {channels, height, width, NULL};
    size_t n = (size_t)channels * (size_t)height * (size_t)width;
    t.data = malloc(sizeof(float) * (n + FA_CNN_PADDING));
    for (size_t i = 0; i < n + FA_CNN_PADDING; i++)
        t.data[i] = random_uniform(-1.0f, 1.0f);
    return t;
}

static float *output_buffer(size_t n) {
    float *data = malloc(sizeof(float) * (n + FA_CNN_PADDING));
    for (size_t i = 0; i < n + FA_CNN_PADDING; i++)
        data[i] = NAN;
    return data;
}

static size_t tensor_count(const fa_tensor_t *t) {
    return (size_t)t->channels * (size_t)t->height * (size_t)t->width;
}

static double at(const fa_tensor_t *t, int c, int y, int x) {
    return t->data[((size_t)c * (size_t)t->height + (size_t)y) * (size_t)t->width + (size_t)x];
}

/* Any float summation order of n terms is within gamma_n * sum|terms| of the exact sum
 * (Higham, Accuracy and Stability, §3.1), plus one rounding of the result; that bound is what
 * the layer checks allow, whatever order OpenBLAS and the kernels use. */
static int within_sum_bound(double value, double exact, double magnitude, int terms) {
    const double u = 0x1p-24;
    double gamma = (terms + 1) * u / (1.0 - (terms + 1) * u);
    return fabs(value - exact) <= gamma * magnitude + u * fabs(exact) + 1e-30;
}

/* ----- float64 direct layers ----- */

static int check_convolution(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                             fa_cnn_kernels kernels, const char *what) {
    fa_tensor_t out = *in;
    fa_cnn_output_shape(layer, in, &out);
    out.data = output_buffer(tensor_count(&out));
    float *scratch = output_buffer(fa_cnn_convolution_scratch(layer, in));
    fa_cnn_convolution(layer, in, &out, scratch, kernels);
    int bad = 0;
    const int kh = layer->kernel_height, kw = layer->kernel_width;
    for (int k = 0; k < out.channels; k++)
        for (int y = 0; y < out.height; y++)
            for (int x = 0; x < out.width; x++) {
                /* The file's kernel K[c][k](yy, xx) is stored here as weights[k][c][xx][yy]. */
                double sum = layer->bias[k], magnitude = fabs(layer->bias[k]);
                for (int c = 0; c < in->channels; c++)
                    for (int yy = 0; yy < kh; yy++)
                        for (int xx = 0; xx < kw; xx++) {
                            double w =
                                layer->weights[(((size_t)k * (size_t)in->channels + (size_t)c) *
                                                    (size_t)kw +
                                                (size_t)xx) *
                                                   (size_t)kh +
                                               (size_t)yy];
                            double term = at(in, c, y + yy, x + xx) * w;
                            sum += term, magnitude += fabs(term);
                        }
                if (!within_sum_bound(at(&out, k, y, x), sum, magnitude,
                                      in->channels * kh * kw + 1))
                    bad++;
            }
    CHECK(bad == 0, "%s: %d convolution outputs off the float64 result", what, bad);
    free(out.data);
    free(scratch);
    return bad;
}

static void check_max_pool(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                           fa_cnn_kernels kernels, const char *what) {
    fa_tensor_t out = *in;
    /* OpenFace: round((in - k) / s) + 1, half away from zero. */
    int expected_w =
        (int)floor((double)(in->width - layer->kernel_width) / layer->stride_x + 0.5) + 1;
    int expected_h =
        (int)floor((double)(in->height - layer->kernel_height) / layer->stride_y + 0.5) + 1;
    fa_cnn_output_shape(layer, in, &out);
    CHECK(out.width == expected_w && out.height == expected_h, "%s: pool size %dx%d", what,
          out.width, out.height);
    out.data = output_buffer(tensor_count(&out));
    fa_cnn_max_pool(layer, in, &out, kernels);
    int bad = 0;
    for (int c = 0; c < out.channels; c++)
        for (int oy = 0; oy < out.height; oy++)
            for (int ox = 0; ox < out.width; ox++) {
                double best = -INFINITY;
                for (int y = oy * layer->stride_y; y < oy * layer->stride_y + layer->kernel_height;
                     y++)
                    for (int x = ox * layer->stride_x;
                         x < ox * layer->stride_x + layer->kernel_width; x++)
                        if (x < in->width && y < in->height && at(in, c, y, x) > best)
                            best = at(in, c, y, x);
                if (at(&out, c, oy, ox) != best) bad++;
            }
    CHECK(bad == 0, "%s: %d max-pool outputs differ", what, bad);
    free(out.data);
}

static void check_prelu(const fa_cnn_layer_t *layer, const fa_tensor_t *in, fa_cnn_kernels kernels,
                        const char *what) {
    fa_tensor_t out = *in;
    out.data = output_buffer(tensor_count(in));
    memcpy(out.data, in->data, sizeof(float) * tensor_count(in));
    fa_cnn_prelu(layer, &out, kernels);
    int bad = 0;
    for (size_t i = 0; i < tensor_count(in); i++) {
        size_t slope =
            in->channels > 1 ? i / ((size_t)in->height * (size_t)in->width) : i / (size_t)in->width;
        double v = in->data[i];
        double expected = v >= 0 ? v : (float)(v * (double)layer->weights[slope]);
        if (out.data[i] != expected) bad++;
    }
    CHECK(bad == 0, "%s: %d PReLU outputs differ", what, bad);
    free(out.data);
}

static void check_fully_connected(const fa_cnn_layer_t *layer, const fa_tensor_t *in,
                                  fa_cnn_kernels kernels, const char *what) {
    fa_tensor_t out = *in;
    fa_cnn_output_shape(layer, in, &out);
    out.data = output_buffer(tensor_count(&out) + tensor_count(in));
    fa_cnn_fully_connected(layer, in, &out, kernels);
    int bad = 0, per_pixel = in->channels > 1 && in->channels == layer->inputs;
    size_t pixels = per_pixel ? (size_t)in->height * (size_t)in->width : 1;
    for (int o = 0; o < layer->outputs; o++)
        for (size_t p = 0; p < pixels; p++) {
            double sum = layer->bias[o], magnitude = fabs(layer->bias[o]);
            int i = 0;
            if (per_pixel) {
                for (int c = 0; c < in->channels; c++, i++) {
                    double term =
                        (double)layer->weights[(size_t)o * (size_t)layer->inputs + (size_t)c] *
                        in->data[(size_t)c * pixels + p];
                    sum += term, magnitude += fabs(term);
                }
            } else {
                /* OpenFace flattens each map transposed: channel, then x, then y. */
                for (int c = 0; c < in->channels; c++)
                    for (int x = 0; x < in->width; x++)
                        for (int y = 0; y < in->height; y++, i++) {
                            double term =
                                (double)
                                    layer->weights[(size_t)o * (size_t)layer->inputs + (size_t)i] *
                                at(in, c, y, x);
                            sum += term, magnitude += fabs(term);
                        }
            }
            if (!within_sum_bound(out.data[(size_t)o * pixels + p], sum, magnitude, i + 1)) bad++;
        }
    CHECK(bad == 0, "%s: %d fully connected outputs off the float64 result", what, bad);
    free(out.data);
}

/* Runs every layer of a network on random inputs of the shapes it sees, against the float64
 * layers, with both kernel sets. */
static void check_network(const fa_cnn_t *cnn, int height, int width, const char *name) {
    fa_tensor_t shape = {3, height, width, NULL};
    for (int i = 0; i < cnn->layer_count; i++) {
        const fa_cnn_layer_t *layer = &cnn->layers[i];
        fa_tensor_t in = random_tensor(shape.channels, shape.height, shape.width);
        char what[64];
        snprintf(what, sizeof(what), "%s layer %d", name, i);
        switch (layer->type) {
        case FA_CNN_CONVOLUTION:
            check_convolution(layer, &in, FA_CNN_KERNELS_REFERENCE, what);
            check_convolution(layer, &in, FA_CNN_KERNELS_AVX2, what);
            break;
        case FA_CNN_MAX_POOL:
            check_max_pool(layer, &in, FA_CNN_KERNELS_REFERENCE, what);
            check_max_pool(layer, &in, FA_CNN_KERNELS_AVX2, what);
            break;
        case FA_CNN_PRELU:
            check_prelu(layer, &in, FA_CNN_KERNELS_REFERENCE, what);
            check_prelu(layer, &in, FA_CNN_KERNELS_AVX2, what);
            break;
        case FA_CNN_FULLY_CONNECTED:
            check_fully_connected(layer, &in, FA_CNN_KERNELS_REFERENCE, what);
            check_fully_connected(layer, &in, FA_CNN_KERNELS_AVX2, what);
            break;
        default:
            break;
        }
        fa_tensor_t next = shape;
        fa_cnn_output_shape(layer, &shape, &next);
        shape = next;
        free(in.data);
    }
}

/* ----- synthetic layers: odd sizes, remainders, long inner dimensions ----- */


static void test_fast_equals_reference(void) {
    if (!fa_cnn_have_avx2()) {
        fprintf(stderr, "note: no AVX2/FMA on this CPU; fast kernels not tested\n");
        return;
    }
    /* (inputs, outputs, kh, kw, height, width): remainders of 4 outputs and 16 pixels, non-square
     * kernels, and inner dimensions above OpenBLAS's 448-column panel (577, 1153). */
    static const int cases[][6] = {{3, 10, 3, 3, 12, 12},  {5, 7, 2, 3, 9, 17},
                                   {10, 16, 3, 3, 31, 29}, {64, 64, 3, 3, 9, 9},
                                   {1, 1, 1, 1, 1, 1},     {28, 48, 3, 3, 11, 11},
                                   {128, 9, 3, 3, 5, 6},   {64, 128, 2, 2, 3, 3}};
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        const int *c = cases[t];
        fa_cnn_layer_t layer = test_random_cnn_layer(FA_CNN_CONVOLUTION, c[0], c[1], c[2], c[3]);
        fa_tensor_t in = random_tensor(c[0], c[4], c[5]), a = in, b = in;
        fa_cnn_output_shape(&layer, &in, &a);
        b = a;
        a.data = output_buffer(tensor_count(&a));
        b.data = output_buffer(tensor_count(&b));
        float *scratch = output_buffer(fa_cnn_convolution_scratch(&layer, &in));
        fa_cnn_convolution(&layer, &in, &a, scratch, FA_CNN_KERNELS_REFERENCE);
        fa_cnn_convolution(&layer, &in, &b, scratch, FA_CNN_KERNELS_AVX2);
        CHECK(memcmp(a.data, b.data, sizeof(float) * tensor_count(&a)) == 0,
              "convolution case %zu: AVX2 differs from the reference", t);
        check_convolution(&layer, &in, FA_CNN_KERNELS_AVX2, "synthetic convolution");
        free(a.data), free(b.data), free(scratch), free(in.data);
        test_free_cnn_layer(&layer);
    }
    static const int fc_cases[][4] = {
        {576, 128, 64, 3}, {1152, 256, 128, 3}, {100, 101, 4, 5}, {800, 200, 1, 800}};
    for (size_t t = 0; t < sizeof(fc_cases) / sizeof(fc_cases[0]); t++) {
        const int *c = fc_cases[t];
        fa_cnn_layer_t layer = test_random_cnn_layer(FA_CNN_FULLY_CONNECTED, c[0], c[1], 1, 1);
        int channels = c[2], side = c[3];
        fa_tensor_t in =
            random_tensor(channels, channels == 1 ? side : side, channels == 1 ? 1 : side);
        if (channels == 1) in.height = c[0], in.width = 1;
        fa_tensor_t a = in, b;
        fa_cnn_output_shape(&layer, &in, &a);
        b = a;
        a.data = output_buffer(tensor_count(&a) + tensor_count(&in));
        b.data = output_buffer(tensor_count(&b) + tensor_count(&in));
        fa_cnn_fully_connected(&layer, &in, &a, FA_CNN_KERNELS_REFERENCE);
        fa_cnn_fully_connected(&layer, &in, &b, FA_CNN_KERNELS_AVX2);
        CHECK(memcmp(a.data, b.data, sizeof(float) * tensor_count(&a)) == 0,
              "fully connected case %zu: AVX2 differs from the reference", t);
        check_fully_connected(&layer, &in, FA_CNN_KERNELS_AVX2, "synthetic fully connected");
        free(a.data), free(b.data), free(in.data);
        test_free_cnn_layer(&layer);
    }
    /* Max-pool sizes where rounding and clipped windows matter. */
    static const int pool_cases[][6] = {{3, 3, 2, 2, 10, 11},  {2, 2, 2, 2, 7, 7},
                                        {3, 3, 2, 2, 22, 22},  {3, 3, 2, 2, 46, 46},
                                        {2, 2, 2, 2, 94, 126}, {3, 2, 2, 1, 9, 40}};
    for (size_t t = 0; t < sizeof(pool_cases) / sizeof(pool_cases[0]); t++) {
        const int *c = pool_cases[t];
        fa_cnn_layer_t layer = {0};
        layer.type = FA_CNN_MAX_POOL, layer.kernel_width = c[0], layer.kernel_height = c[1];
        layer.stride_x = c[2], layer.stride_y = c[3];
        fa_tensor_t in = random_tensor(3, c[4], c[5]);
        check_max_pool(&layer, &in, FA_CNN_KERNELS_REFERENCE, "synthetic max-pool");
        check_max_pool(&layer, &in, FA_CNN_KERNELS_AVX2, "synthetic max-pool");
        free(in.data);
    }
}

/* ----- resize ----- */

static void test_resize(void) {
    /* Exactness against cv::resize itself was measured in a scratch build (400 random sizes, all
     * equal bit for bit); here: constant images stay constant; an exact halving averages 2x2
     * blocks; an upscale of a ramp interpolates linearly with edges clamped. */
    float src[6 * 4 * 3], dst[12 * 8 * 3];
    char scratch[4096];
    for (int i = 0; i < 6 * 4 * 3; i++)
        src[i] = 7.25f;
    fa_resize_linear(src, 6, 4, 18, 3, dst, 5, 3, scratch);
    int bad = 0;
    /* v * (1 - f) + v * f need not be v in float: within an ulp or two. */
    for (int i = 0; i < 5 * 3 * 3; i++)
        bad += fabsf(dst[i] - 7.25f) > 2e-6f;
    CHECK(bad == 0, "constant resize changed %d values", bad);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 6; x++)
            for (int c = 0; c < 3; c++)
                src[(y * 6 + x) * 3 + c] = (float)(x + 10 * y + c);
    fa_resize_linear(src, 6, 4, 18, 3, dst, 3, 2, scratch);
    CHECK(dst[0] == 5.5f && dst[(1 * 3 + 2) * 3 + 1] == 30.5f, "halving: %g %g", dst[0],
          dst[(1 * 3 + 2) * 3 + 1]);
    fa_resize_linear(src, 6, 4, 18, 3, dst, 12, 8, scratch);
    /* dx = 1: source x = 0.25; dx = 0: source -0.25 clamps to 0. */
    CHECK(dst[0] == 0.0f && dst[3] == 0.25f && dst[11 * 3] == 5.0f, "upscale: %g %g %g", dst[0],
          dst[3], dst[11 * 3]);
}

/* The 8-bit resize (rows converted as they are needed) equals the float resize of the whole
 * image converted first, bit for bit, for BGR and gray sources, halving and bilinear. */
static void test_resize_bytes(void) {
    static const int sizes[][4] = {{37, 23, 7, 5},  {40, 30, 20, 15}, {64, 48, 13, 10},
                                   {17, 9, 40, 21}, {1, 1, 12, 12},   {33, 17, 12, 12}};
    unsigned seed = 12345;
    for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++)
        for (int channels = 1; channels <= 3; channels += 2) {
            int w = sizes[t][0], h = sizes[t][1], dw = sizes[t][2], dh = sizes[t][3];
            size_t stride = (size_t)w * (size_t)channels + 5; /* rows with padding */
            uint8_t *bytes = malloc(stride * (size_t)h);
            float *floats = malloc(sizeof(float) * 3 * (size_t)(w * h));
            float *expected = malloc(sizeof(float) * 3 * (size_t)(dw * dh));
            float *got = malloc(sizeof(float) * 3 * (size_t)(dw * dh));
            void *scratch = malloc(fa_resize_bytes_scratch_size(w, dw, dh));
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int c = 0; c < 3; c++) {
                        if (c < channels) {
                            seed = seed * 1103515245u + 12345u;
                            bytes[(size_t)y * stride + (size_t)(x * channels + c)] =
                                (uint8_t)(seed >> 16);
                        }
                        floats[(y * w + x) * 3 + c] =
                            bytes[(size_t)y * stride +
                                  (size_t)(x * channels + (channels == 3 ? c : 0))];
                    }
            fa_resize_linear(floats, w, h, (size_t)w * 3, 3, expected, dw, dh, scratch);
            fa_resize_linear_bytes(bytes, w, h, stride, channels, got, dw, dh, scratch);
            CHECK(memcmp(expected, got, sizeof(float) * 3 * (size_t)(dw * dh)) == 0,
                  "8-bit resize %dx%dx%d -> %dx%d differs from the float resize", w, h, channels,
                  dw, dh);
            free(bytes), free(floats), free(expected), free(got), free(scratch);
        }
}

/* ----- model reader ----- */

static void test_damaged_models(const char *directory) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/PNet.dat", directory);
    char *data = NULL;
    size_t size = 0;
    fa_error_t error = {0};
    CHECK(fa_file_read_all(path, &data, &size, &error) == FA_OK, "%s", error.message);
    if (!data) return;
    fa_cnn_t cnn;
    /* Truncated at several points: header, a kernel, the last layer. */
    size_t cuts[] = {2, 100, size / 2, size - 3};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        fa_status status = fa_cnn_parse(&cnn, data, cuts[i], "PNet.dat", &error);
        CHECK(status == FA_ERROR_MODEL && strstr(error.message, "PNet.dat"),
              "cut at %zu: status %d, '%s'", cuts[i], (int)status, error.message);
    }
    /* An unknown layer type. */
    char *damaged = malloc(size);
    memcpy(damaged, data, size);
    int32_t bad_type = 9;
    memcpy(damaged + 4, &bad_type, 4);
    CHECK(fa_cnn_parse(&cnn, damaged, size, "PNet.dat", &error) == FA_ERROR_MODEL &&
              strstr(error.message, "layer type"),
          "bad type: '%s'", error.message);
    /* Trailing bytes. */
    CHECK(fa_cnn_parse(&cnn, data, size - 3, "x", &error) == FA_ERROR_MODEL, "trailing");

    /* Through the detector file: the error names the damaged network file. */
    const char *dir = "/tmp/faceau_test_mtcnn";
    char file[1100];
    CHECK(mkdir_p_ok(dir), "mkdir");
    snprintf(file, sizeof(file), "%s/PNet.dat", dir);
    FILE *f = fopen(file, "wb");
    if (f) {
        fwrite(data, 1, size / 3, f);
        fclose(f);
    }
    snprintf(file, sizeof(file), "%s/MTCNN_detector.txt", dir);
    f = fopen(file, "w");
    if (f) {
        fputs("PNet PNet.dat\r\n", f);
        fclose(f);
    }
    fa_mtcnn_t mtcnn;
    fa_status status = fa_mtcnn_load(&mtcnn, file, &error);
    CHECK(status == FA_ERROR_MODEL && strstr(error.message, "/tmp/faceau_test_mtcnn/PNet.dat"),
          "detector with truncated PNet: status %d '%s'", (int)status, error.message);
    free(damaged);
    free(data);
}

/* ----- detection on OpenFace's media ----- */

typedef struct expected_box {
    float x, y, width, height;
} expected_box_t;

static const fa_image_t *first_frame(fa_source_t **source, const char *relative,
                                     fa_source_kind kind) {
    fa_error_t error = {0};
    const fa_image_t *frame = NULL;
    double timestamp = 0;
    if (fa_source_open(test_shared_path(relative), kind, source, &error) != FA_OK ||
        fa_source_read(*source, &frame, &timestamp, &error) != FA_OK) {
        CHECK(0, "%s: %s", relative, error.message);
        return NULL;
    }
    return frame;
}

static int detect(const fa_mtcnn_t *mtcnn, fa_mtcnn_workspace_t *workspace, const fa_image_t *image,
                  fa_cnn_kernels kernels, fa_box_t *boxes, int max_boxes) {
    fa_mtcnn_settings_t settings;
    fa_mtcnn_default_settings(&settings);
    settings.kernels = kernels;
    fa_error_t error = {0};
    int count = 0;
    fa_status status =
        fa_mtcnn_detect(mtcnn, workspace, &settings, image, boxes, max_boxes, &count, &error);
    CHECK(status == FA_OK, "detect: %s", error.message);
    return count;
}

/* Whether a box is exactly (bit for bit) the expected one. */
static int same_box(const fa_box_t *box, expected_box_t expected) {
    return box->x == expected.x && box->y == expected.y && box->width == expected.width &&
           box->height == expected.height;
}

/* Every box of the first frame must be the one OpenFace's own detector code gives, bit for bit:
 * OpenFace 2.2 built against OpenCV 4.6 and OpenBLAS 0.3.21 running its SkylakeX kernels (the
 * reference machine's, docs/FIDELITY.md), printed with %.9g, which round-trips a float. */
static void check_openface_boxes(const fa_mtcnn_t *mtcnn, fa_mtcnn_workspace_t *workspace,
                                 const char *path, fa_source_kind kind,
                                 const expected_box_t *openface, int openface_count) {
    fa_source_t *source = NULL;
    const fa_image_t *frame = first_frame(&source, path, kind);
    if (!frame) return;
    fa_box_t boxes[16];
    for (int kernels = FA_CNN_KERNELS_REFERENCE; kernels <= FA_CNN_KERNELS_AVX2; kernels++) {
        int count = detect(mtcnn, workspace, frame, (fa_cnn_kernels)kernels, boxes, 16);
        CHECK(count == openface_count, "%s: %d faces, OpenFace %d", path, count, openface_count);
        for (int i = 0; i < count && i < openface_count; i++)
            CHECK(same_box(&boxes[i], openface[i]),
                  "%s, kernels %d: box %d is %.9g %.9g %.9g %.9g, OpenFace %.9g %.9g %.9g %.9g",
                  path, kernels, i, boxes[i].x, boxes[i].y, boxes[i].width, boxes[i].height,
                  openface[i].x, openface[i].y, openface[i].width, openface[i].height);
    }
    fa_source_close(source);
}

/* The chosen face of frame 1 must be OpenFace's box (above) and OpenFace's eyebrow-to-chin box
 * around the landmarks OpenFace tracked from it. */
static void check_video(const fa_mtcnn_t *mtcnn, fa_mtcnn_workspace_t *workspace, const char *video,
                        const char *csv_path, expected_box_t openface) {
    check_openface_boxes(mtcnn, workspace, video, FA_SOURCE_VIDEO, &openface, 1);
    fa_source_t *source = NULL;
    const fa_image_t *frame = first_frame(&source, video, FA_SOURCE_VIDEO);
    if (!frame) return;
    fa_box_t boxes[16];
    int count = detect(mtcnn, workspace, frame, FA_CNN_KERNELS_AUTO, boxes, 16);
    fa_source_close(source);
    int chosen = fa_mtcnn_choose_widest(boxes, count < 16 ? count : 16);
    CHECK(count == 1 && chosen == 0, "%s: %d faces", video, count);
    if (chosen < 0) return;
    const fa_box_t *b = &boxes[chosen];
    CHECK(b->confidence > 0.99f, "%s: confidence %g", video, b->confidence);

    test_csv_t csv = {0};
    if (test_csv_load(test_shared_path(csv_path), &csv) != 0) {
        CHECK(0, "cannot read %s", csv_path);
        return;
    }
    double min_x = 1e9, max_x = -1e9, brow = 1e9, chin;
    for (int i = 0; i < 68; i++) {
        char name[16];
        snprintf(name, sizeof(name), "x_%d", i);
        double x = test_csv_value(&csv, 0, test_csv_column(&csv, name));
        snprintf(name, sizeof(name), "y_%d", i);
        double y = test_csv_value(&csv, 0, test_csv_column(&csv, name));
        if (x < min_x) min_x = x;
        if (x > max_x) max_x = x;
        if (i >= 17 && i <= 26 && y < brow) brow = y;
    }
    chin = test_csv_value(&csv, 0, test_csv_column(&csv, "y_8"));
    /* Each side within 10% of the box size: jaw ends at the left and right edges, brows at the
     * top, chin at the bottom. */
    double tx = 0.1 * b->width, ty = 0.1 * b->height;
    CHECK(fabs(min_x - b->x) < tx && fabs(max_x - (b->x + b->width)) < tx &&
              fabs(brow - b->y) < ty && fabs(chin - (b->y + b->height)) < ty,
          "%s: landmarks x %.1f..%.1f brow %.1f chin %.1f vs box %.1f %.1f %.1f %.1f", video, min_x,
          max_x, brow, chin, b->x, b->y, b->width, b->height);
    test_csv_free(&csv);
}

static void check_still(const fa_mtcnn_t *mtcnn, fa_mtcnn_workspace_t *workspace, const char *image,
                        int openface_count) {
    fa_source_t *source = NULL;
    const fa_image_t *frame = first_frame(&source, image, FA_SOURCE_IMAGE);
    if (!frame) return;
    fa_box_t boxes[64];
    int count = detect(mtcnn, workspace, frame, FA_CNN_KERNELS_AUTO, boxes, 64);
    CHECK(count >= openface_count, "%s: %d faces, OpenFace found %d", image, count, openface_count);
    for (int i = 0; i < count && i < 64; i++)
        CHECK(boxes[i].confidence >= 0.7f && boxes[i].width > 0 && boxes[i].height > 0,
              "%s: box %d", image, i);
    fa_source_close(source);
}

static void test_choose_widest(void) {
    fa_box_t boxes[4] = {{0, 0, 10, 5, 1}, {0, 0, 30, 5, 1}, {0, 0, 30, 9, 1}, {0, 0, 2, 5, 1}};
    CHECK(fa_mtcnn_choose_widest(boxes, 4) == 1, "widest, first on ties");
    CHECK(fa_mtcnn_choose_widest(boxes, 0) == -1, "none");
}

int main(void) {
    char detector[1024];
    snprintf(detector, sizeof(detector), "%s/model/mtcnn_detector/MTCNN_detector.txt",
             test_models_dir());
    fa_mtcnn_t mtcnn;
    fa_error_t error = {0};
    if (fa_mtcnn_load(&mtcnn, detector, &error) != FA_OK) {
        CHECK(0, "load: %s", error.message);
        return test_finish("mtcnn");
    }
    check_network(&mtcnn.pnet, 17, 23, "PNet");
    check_network(&mtcnn.pnet, 12, 12, "PNet");
    check_network(&mtcnn.rnet, 24, 24, "RNet");
    check_network(&mtcnn.onet, 48, 48, "ONet");
    test_fast_equals_reference();
    test_resize();
    test_resize_bytes();
    char directory[1024];
    fa_path_directory(directory, sizeof(directory), detector);
    test_damaged_models(directory);
    test_choose_widest();

    fa_mtcnn_workspace_t workspace = {0};
    check_video(&mtcnn, &workspace, "data/videos/default.wmv",
                "data/reference/openface-2.2-clnf/default/default.csv",
                (expected_box_t){147.371201f, 179.349564f, 190.917023f, 197.190735f});
    check_video(&mtcnn, &workspace, "data/videos/changeLighting.wmv",
                "data/reference/openface-2.2-clnf/changeLighting/changeLighting.csv",
                (expected_box_t){202.051651f, 151.700943f, 216.970764f, 212.898636f});
    static const expected_box_t two_faces[] = {
        {145.954681f, 177.964203f, 190.279556f, 198.754135f},
        {839.109192f, 150.798584f, 225.657227f, 219.158554f}};
    check_openface_boxes(&mtcnn, &workspace, "data/videos/two_faces.mp4", FA_SOURCE_VIDEO,
                         two_faces, 2);
    static const expected_box_t sequence[] = {{149.693024f, 178.169662f, 190.212708f, 195.766113f}};
    check_openface_boxes(&mtcnn, &workspace, "data/images/image_sequence/001.jpg", FA_SOURCE_IMAGE,
                         sequence, 1);
    check_still(&mtcnn, &workspace, "data/images/sample2.jpg", 3);
    check_still(&mtcnn, &workspace, "data/images/sample6.jpg", 12);
    fa_mtcnn_workspace_release(&workspace);
    fa_mtcnn_release(&mtcnn);
    return test_finish("mtcnn");
}
