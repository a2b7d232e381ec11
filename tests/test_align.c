/* Face alignment: the warpAffine kernel against a plain double-precision bilinear reference, the
 * 2x2 SVD, the mask, and the aligned faces of OpenFace's reference runs (default and
 * changeLighting at 112 px, masked, colour; default at 200 px, scale 0.5, unmasked, gray). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "align/align.h"
#include "core/file.h"
#include "core/image.h"
#include "io/bmp.h"
#include "model/reader.h"
#include "testing.h"

static unsigned long long random_state = 88172645463325252ULL;
static unsigned random_next(void)
{
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return (unsigned)(random_state >> 32);
}
static double random_uniform(double low, double high)
{
    return low + (high - low) * (random_next() / 4294967296.0);
}

/* ----------------------------------------------------------------------------------------- */
/* Kernel: fa_warp_affine vs bilinear interpolation at the exact (double) source position. */

static double reference_pixel(const fa_image_t *image, double x, double y, int channel)
{
    int x0 = (int)floor(x), y0 = (int)floor(y);
    double fx = x - x0, fy = y - y0, sum = 0;
    for (int corner = 0; corner < 4; corner++) {
        int cx = x0 + (corner & 1), cy = y0 + (corner >> 1);
        if (cx < 0 || cy < 0 || cx >= image->width || cy >= image->height) continue;
        double weight = ((corner & 1) ? fx : 1 - fx) * ((corner >> 1) ? fy : 1 - fy);
        sum += weight * image->data[cy * image->stride + cx * image->channels + channel];
    }
    return sum;
}

/* A smooth random image: interpolation error from OpenCV's 1/32-pixel grid stays below one level
 * only where neighbouring pixels differ by less than ~30. */
static void fill_smooth(fa_image_t *image)
{
    double phase[6], frequency[6];
    for (int i = 0; i < 6; i++)
        phase[i] = random_uniform(0, 6.3), frequency[i] = random_uniform(0.01, 0.12);
    for (int y = 0; y < image->height; y++)
        for (int x = 0; x < image->width; x++)
            for (int c = 0; c < image->channels; c++) {
                double v = 127.5 +
                           60 * sin(frequency[c] * x + phase[c]) *
                               cos(frequency[c + 3] * y + phase[c + 3]) +
                           60 * sin(0.05 * (x + y) + c);
                image->data[y * image->stride + x * image->channels + c] = (uint8_t)lrint(v);
            }
}

static void random_affine(float warp[6])
{
    double angle = random_uniform(-3.2, 3.2), scale = random_uniform(0.3, 3.0);
    warp[0] = (float)(scale * cos(angle));
    warp[1] = (float)(-scale * sin(angle) + random_uniform(-0.2, 0.2));
    warp[3] = (float)(scale * sin(angle));
    warp[4] = (float)(scale * cos(angle));
    warp[2] = (float)random_uniform(-150, 150);
    warp[5] = (float)random_uniform(-150, 150);
}

/* Largest difference between fa_warp_affine and the reference over one random warp. */
static int warp_max_difference(fa_image_t *source, fa_image_t *out)
{
    float warp[6];
    double inverse[6];
    random_affine(warp);
    fa_warp_affine(source, warp, out);
    fa_warp_inverse(warp, inverse);
    int worst = 0;
    for (int y = 0; y < out->height; y++)
        for (int x = 0; x < out->width; x++) {
            double sx = inverse[0] * x + inverse[1] * y + inverse[2];
            double sy = inverse[3] * x + inverse[4] * y + inverse[5];
            /* Near the frame's edge the black outside makes a steep step: check only that
             * well inside it matches and well outside it is black. */
            const double margin = 0.05, w = source->width, h = source->height;
            int inside =
                sx >= margin && sy >= margin && sx <= w - 1 - margin && sy <= h - 1 - margin;
            int outside =
                sx < -1 - margin || sy < -1 - margin || sx > w + margin || sy > h + margin;
            if (!inside && !outside) continue;
            for (int c = 0; c < out->channels; c++) {
                double expected = inside ? reference_pixel(source, sx, sy, c) : 0;
                int got = out->data[y * out->stride + x * out->channels + c];
                int difference = (int)ceil(fabs(got - expected) - 0.5);
                if (difference > worst) worst = difference;
            }
        }
    return worst;
}

static void test_warp_kernel(void)
{
    fa_image_t source, out;
    int worst = 0;
    for (int trial = 0; trial < 200; trial++) {
        int channels = trial % 2 ? 3 : 1;
        CHECK_OK(fa_image_allocate(&source, 40 + (int)(random_next() % 200),
                                   40 + (int)(random_next() % 200), channels, NULL));
        CHECK_OK(fa_image_allocate(&out, 20 + (int)(random_next() % 150),
                                   20 + (int)(random_next() % 150), channels, NULL));
        fill_smooth(&source);
        int difference = warp_max_difference(&source, &out);
        if (difference > worst) worst = difference;
        fa_image_release(&source);
        fa_image_release(&out);
    }
    printf("warp kernel vs double bilinear: max difference %d over 200 random warps\n", worst);
    CHECK(worst <= 1, "warp differs from the double reference by %d", worst);
}

/* The eight-pixel warp against the pixel-by-pixel one, byte for byte: random similarity and
 * shear matrices, faces inside, across and outside the frame, BGR, gray and BGR-to-gray. */
static void test_warp_vectors(void)
{
    fa_image_t source, fast, reference;
    int differing = 0, trials = 600;
    for (int trial = 0; trial < trials; trial++) {
        const int in_channels = trial % 3 == 2 ? 1 : 3, out_channels = trial % 3 == 0 ? 3 : 1;
        const int width = 2 + (int)(random_next() % 300), height = 2 + (int)(random_next() % 300);
        CHECK_OK(fa_image_allocate(&source, width, height, in_channels, NULL));
        CHECK_OK(fa_image_allocate(&fast, 112, 112, out_channels, NULL));
        CHECK_OK(fa_image_allocate(&reference, 112, 112, out_channels, NULL));
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width * in_channels; x++)
                source.data[y * source.stride + x] = (uint8_t)random_next();
        const double scale = random_uniform(0.2, 3), angle = random_uniform(-3.2, 3.2);
        const float forward[6] = {(float)(scale * cos(angle)), (float)(-scale * sin(angle)),
                                  (float)random_uniform(-150, 100),
                                  (float)(scale * sin(angle) + random_uniform(-0.1, 0.1)),
                                  (float)(scale * cos(angle)), (float)random_uniform(-150, 100)};
        fa_warp_affine(&source, forward, &fast);
        fa_warp_affine_reference(&source, forward, &reference);
        for (int y = 0; y < 112; y++)
            differing += memcmp(fast.data + y * fast.stride, reference.data + y * reference.stride,
                                (size_t)(112 * out_channels)) != 0;
        fa_image_release(&source);
        fa_image_release(&fast);
        fa_image_release(&reference);
    }
    CHECK(differing == 0, "the eight-pixel warp differs in %d rows", differing);
    printf("warp: eight-pixel path equals pixel-by-pixel in %d random warps\n", trials);
}

/* Identity and integer shifts copy pixels exactly; outside the frame is black. */
static void test_warp_exact_cases(void)
{
    fa_image_t source, out;
    CHECK_OK(fa_image_allocate(&source, 30, 20, 3, NULL));
    CHECK_OK(fa_image_allocate(&out, 40, 30, 3, NULL));
    for (int i = 0; i < 30 * 20 * 3; i++)
        source.data[i] = (uint8_t)random_next();
    const float shift[6] = {1, 0, 5, 0, 1, 3};
    fa_warp_affine(&source, shift, &out);
    int wrong = 0;
    for (int y = 0; y < out.height; y++)
        for (int x = 0; x < out.width; x++)
            for (int c = 0; c < 3; c++) {
                int sx = x - 5, sy = y - 3, inside = sx >= 0 && sy >= 0 && sx < 30 && sy < 20;
                int expected = inside ? source.data[sy * source.stride + sx * 3 + c] : 0;
                wrong += out.data[y * out.stride + x * 3 + c] != expected;
            }
    CHECK(wrong == 0, "integer shift: %d wrong values", wrong);
    fa_image_release(&source);
    fa_image_release(&out);
}

/* ----------------------------------------------------------------------------------------- */

static void test_svd(void)
{
    double worst_product = 0, worst_orthogonality = 0;
    int order_wrong = 0;
    for (int trial = 0; trial < 10000; trial++) {
        float a[4], w[2], u[4], vt[4];
        for (int i = 0; i < 4; i++)
            a[i] = (float)random_uniform(-2, 2);
        fa_align_svd_2x2(a, w, u, vt);
        order_wrong += !(w[0] >= w[1] && w[1] >= 0);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) {
                double product = 0, uu = 0, vv = 0;
                for (int k = 0; k < 2; k++) {
                    product += (double)u[2 * i + k] * w[k] * vt[2 * k + j];
                    uu += (double)u[2 * k + i] * u[2 * k + j];
                    vv += (double)vt[2 * i + k] * vt[2 * j + k];
                }
                worst_product = fmax(worst_product, fabs(product - a[2 * i + j]));
                worst_orthogonality = fmax(worst_orthogonality, fabs(uu - (i == j)));
                worst_orthogonality = fmax(worst_orthogonality, fabs(vv - (i == j)));
            }
    }
    CHECK(order_wrong == 0, "%d singular value pairs out of order", order_wrong);
    CHECK(worst_product < 1e-5, "U W Vt differs from A by %g", worst_product);
    CHECK(worst_orthogonality < 1e-5, "U or V not orthonormal by %g", worst_orthogonality);
}

/* ----------------------------------------------------------------------------------------- */
/* Mask: one synthetic triangle, then the face mask's shape on a real frame's landmarks. */

/* AlignShapesWithScale on an eye part's 28 points, where OpenCV's cv::sum order matters: its
 * SIMD loop adds 16 elements a step into double lanes and the last 8 of the 56 squares in float
 * groups of 4 (an 8-lane order gives other bits here). The points are an eye model's shape and
 * reference shape on default.wmv; the expected matrix is what OpenFace's own
 * Utilities::AlignShapesWithScale (OpenCV 4.6) returns for them. */
static void test_align_shapes_opencv_order(void)
{
    static const float shape[56] = {
        0x1.88804ap+7f, 0x1.8e3744p+7f, 0x1.9b9372p+7f, 0x1.a8c154p+7f, 0x1.ae088ap+7f,
        0x1.a946d6p+7f, 0x1.9af564p+7f, 0x1.8dc782p+7f, 0x1.772dcep+7f, 0x1.7f84ccp+7f,
        0x1.8af688p+7f, 0x1.98abb4p+7f, 0x1.a6be6p+7f, 0x1.b23076p+7f, 0x1.ba986p+7f,
        0x1.b19b08p+7f, 0x1.a52132p+7f, 0x1.97bbc8p+7f, 0x1.8abe8ep+7f, 0x1.7f6b08p+7f,
        0x1.9582b4p+7f, 0x1.9b468p+7f, 0x1.a11e9p+7f, 0x1.a39e4ep+7f, 0x1.a14f22p+7f,
        0x1.9b8b92p+7f, 0x1.95b3dp+7f, 0x1.9333d6p+7f, 0x1.b14974p+7f, 0x1.a3d706p+7f,
        0x1.9e5628p+7f, 0x1.a40024p+7f, 0x1.b1839ap+7f, 0x1.c00caap+7f, 0x1.c476e4p+7f,
        0x1.becceap+7f, 0x1.b613cap+7f, 0x1.af364ep+7f, 0x1.aa82p+7f, 0x1.a84ea6p+7f,
        0x1.aaa012p+7f, 0x1.b048a2p+7f, 0x1.b82f96p+7f, 0x1.bcca6p+7f, 0x1.be4756p+7f,
        0x1.bf001ep+7f, 0x1.be15a2p+7f, 0x1.bb6b7ap+7f, 0x1.b7bc1cp+7f, 0x1.ba366cp+7f,
        0x1.b7ce22p+7f, 0x1.b1ec6ep+7f, 0x1.ac038ep+7f, 0x1.a9898ep+7f, 0x1.abf198p+7f,
        0x1.b1d2fcp+7f,
    };
    static const float reference[56] = {
        -0x1.6799d6p+2f, -0x1.d5106ep+1f, 0x1.4e6fdep-1f, 0x1.3388f8p+2f, 0x1.96ff6cp+2f,
        0x1.2c9f6ap+2f, 0x1.65e41p-4f, -0x1.042364p+2f, -0x1.67c67p+3f, -0x1.0f6e2cp+3f,
        -0x1.305dbap+2f, -0x1.61f34p-2f, 0x1.077ba2p+2f, 0x1.ec9f1cp+2f, 0x1.48ff82p+3f,
        0x1.d8a7f4p+2f, 0x1.b406d6p+1f, -0x1.be94b8p-1f, -0x1.415f7ap+2f, -0x1.14592ep+3f,
        -0x1.89be34p+0f, 0x1.1cc994p-2f, 0x1.1559a2p+1f, 0x1.82bba6p+1f, 0x1.2bb2c6p+1f,
        0x1.0d0ee2p-1f, -0x1.5cdfbap+0f, -0x1.1bdb28p+1f, -0x1.9796e8p-1f, -0x1.421a2ep+2f,
        -0x1.a9c7f4p+2f, -0x1.2d4064p+2f, -0x1.5760eap-2f, 0x1.10686ep+2f, 0x1.615eeep+2f,
        0x1.c9aec2p+1f, 0x1.0758c8p-1f, -0x1.90c45cp+0f, -0x1.76990ep+1f, -0x1.bd02e6p+1f,
        -0x1.4c5a3cp+1f, -0x1.5f2f0cp-1f, 0x1.e80b44p+0f, 0x1.a65b22p+1f, 0x1.d49d56p+1f,
        0x1.e0dcf6p+1f, 0x1.a8ee58p+1f, 0x1.2a4db4p+1f, 0x1.63ee48p+0f, 0x1.1eeb08p+1f,
        0x1.886ca6p+0f, -0x1.47edf4p-2f, -0x1.1db4c2p+1f, -0x1.8a9bb6p+1f, -0x1.2ff09cp+1f,
        -0x1.0b25d8p-1f,
    };
    static const float expected[4] = {0x1.471188p-1f, -0x1.5330eep-6f, 0x1.5330eap-6f,
                                      0x1.471188p-1f};
    float a[4];
    fa_align_shapes_with_scale(shape, shape + 28, reference, reference + 28, 28, a);
    CHECK(memcmp(a, expected, sizeof a) == 0, "got %a %a %a %a", a[0], a[1], a[2], a[3]);
}

static void test_mask_triangle(void)
{
    /* Three landmarks, one triangle, identity warp; sim_scale 0 keeps the points in place. */
    float landmarks[6] = {2, 12, 2, /* x */ 2, 2, 12 /* y */};
    int vertices[1][3] = {{0, 1, 2}};
    fa_triangulation_t triangulation = {1, vertices};
    const float identity[6] = {1, 0, 0, 0, 1, 0};
    fa_image_t image;
    CHECK_OK(fa_image_allocate(&image, 16, 16, 1, NULL));
    fa_image_fill(&image, 255);
    fa_align_apply_mask(&image, landmarks, 3, identity, &triangulation, 0.0);
    int wrong = 0;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) {
            /* Inclusive of the edges: x >= 2, y >= 2, x + y <= 14. */
            int inside = x >= 2 && y >= 2 && x + y <= 14;
            wrong += (image.data[y * image.stride + x] != 0) != inside;
        }
    CHECK(wrong == 0, "triangle mask: %d pixels wrong", wrong);
    fa_image_release(&image);
}

/* The eight-column mask against the pixel-by-pixel one, byte for byte: faces of every size,
 * angle and position (partly outside the image too), and degenerate landmark sets (random
 * points, coincident and collinear points, NaN, huge values). */
static void test_mask_kernels(const fa_pdm_t *pdm, const fa_triangulation_t *triangulation)
{
    enum { SIDE = 112, TRIALS = 3000 };
    fa_image_t fast, reference;
    CHECK_OK(fa_image_allocate(&fast, SIDE, SIDE, 3, NULL));
    CHECK_OK(fa_image_allocate(&reference, SIDE, SIDE, 3, NULL));
    const float identity[6] = {1, 0, 0, 0, 1, 0};
    float landmarks[2 * 68], local[FA_NUM_PDM_MODES] = {0};
    int differing = 0;
    long kept = 0, zeroed = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        const int kind = trial % 6;
        const float global[6] = {(float)(0.2 + random_uniform(0, 1) * 1.2),
                                 (float)((random_uniform(0, 1) - 0.5) * 0.6),
                                 (float)((random_uniform(0, 1) - 0.5) * 1.2),
                                 (float)((random_uniform(0, 1) - 0.5) * 1.5),
                                 (float)(random_uniform(0, 1) * 140 - 14),
                                 (float)(random_uniform(0, 1) * 140 - 14)};
        for (int j = 0; j < FA_NUM_PDM_MODES; j++)
            local[j] = (float)((random_uniform(0, 1) - 0.5) * 2 * sqrt(pdm->eigenvalues[j]));
        fa_pdm_shape_2d(pdm, global, local, landmarks);
        for (int i = 0; i < 68; i++) {
            float *x = &landmarks[i], *y = &landmarks[68 + i];
            if (kind == 1) *x = (float)random_uniform(-20, 130), *y = (float)random_uniform(-20, 130);
            if (kind == 2) *x = (float)(10 + 30 * (i % 3)), *y = (float)(20 + 40 * (i % 2));
            if (kind == 3) *y = 0.5f * *x + 3; /* all on one line */
            if (kind == 4 && i % 17 == 0) *x = NAN;
            if (kind == 5 && i % 11 == 0) *y = i % 2 ? 1e30f : -1e30f;
        }
        const double sim_scale = trial % 2 ? 0.7 : random_uniform(0, 1);
        fa_image_fill(&fast, 255);
        fa_image_fill(&reference, 255);
        fa_align_apply_mask(&fast, landmarks, 68, identity, triangulation, sim_scale);
        fa_align_apply_mask_reference(&reference, landmarks, 68, identity, triangulation,
                                      sim_scale);
        differing += memcmp(fast.data, reference.data, (size_t)SIDE * fast.stride) != 0;
        for (int i = 0; i < SIDE * SIDE; i++) {
            kept += reference.data[3 * i] != 0;
            zeroed += reference.data[3 * i] == 0;
        }
    }
    CHECK(differing == 0, "the fast mask differs from the pixel-by-pixel one in %d of %d faces",
          differing, TRIALS);
    CHECK(kept > 0 && zeroed > 0, "masks kept %ld and zeroed %ld pixels", kept, zeroed);
    printf("mask: fast equals pixel-by-pixel in %d faces (%.0f%% of pixels kept)\n", TRIALS,
           100.0 * kept / (kept + zeroed));
    fa_image_release(&fast);
    fa_image_release(&reference);
}

/* ----------------------------------------------------------------------------------------- */
/* Golden: OpenFace's aligned BMPs. */

typedef struct agreement {
    long long histogram[256];
    long long values;
    int frames, missing;
} agreement_t;

static void compare_faces(const fa_image_t *ours, const fa_image_t *golden,
                          agreement_t *agreement)
{
    for (int y = 0; y < ours->height; y++)
        for (int x = 0; x < ours->width * ours->channels; x++) {
            int a = ours->data[y * ours->stride + x], b = golden->data[y * golden->stride + x];
            agreement->histogram[abs(a - b)]++;
            agreement->values++;
        }
}

static int report(const char *name, const agreement_t *agreement, double *identical)
{
    int worst = 0;
    for (int i = 0; i < 256; i++)
        if (agreement->histogram[i]) worst = i;
    *identical = agreement->values ? 100.0 * agreement->histogram[0] / agreement->values : 0;
    printf("%s: %d frames, %lld values, identical %.4f%%, max difference %d; histogram:", name,
           agreement->frames, agreement->values, *identical, worst);
    for (int i = 0; i <= worst; i++)
        if (agreement->histogram[i]) printf(" %d:%lld", i, agreement->histogram[i]);
    printf("\n");
    return worst;
}

typedef struct golden_run {
    const char *video, *csv, *bmp_folder;
    double sim_scale;
    int size, channels, mask, max_frames, calc_params;
} golden_run_t;

/* Landmarks and params_global of one CSV row: the FaceAnalyser's own CalcParams on the landmarks
 * (what OpenFace does), or the tracker's params from the CSV. Only tx, ty are used. */
static void frame_inputs(const test_csv_t *csv, int row, const fa_pdm_t *pdm, int calc_params,
                         float *landmarks, float params_global[6])
{
    const int x0 = test_csv_column(csv, "x_0"), y0 = test_csv_column(csv, "y_0");
    const int scale = test_csv_column(csv, "p_scale");
    for (int i = 0; i < 68; i++) {
        landmarks[i] = (float)test_csv_value(csv, row, x0 + i);
        landmarks[68 + i] = (float)test_csv_value(csv, row, y0 + i);
    }
    for (int i = 0; i < 6; i++)
        params_global[i] = (float)test_csv_value(csv, row, scale + i);
    float params_local[FA_ALIGN_MAX_POINTS];
    if (calc_params) fa_pdm_calc_params(pdm, landmarks, params_global, params_local);
}

static void align_and_compare(const golden_run_t *run, const fa_image_t *frame, int number,
                              const float *landmarks, const float *params_global,
                              const fa_pdm_t *pdm, const fa_triangulation_t *triangulation,
                              fa_image_t *face, agreement_t *agreement)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/frame_det_00_%06d.bmp", run->bmp_folder, number);
    fa_image_t golden;
    if (fa_bmp_read(path, &golden, NULL) != FA_OK) {
        agreement->missing++;
        return;
    }
    fa_error_t error = {0};
    fa_status status = fa_align_face_at_scale(frame, landmarks, params_global, pdm, triangulation,
                                              run->sim_scale, run->mask, face, &error);
    CHECK(status == FA_OK, "frame %d: %s", number, error.message);
    CHECK(golden.width == face->width && golden.height == face->height &&
              golden.channels == face->channels,
          "%s: %dx%dx%d", path, golden.width, golden.height, golden.channels);
    if (golden.width == face->width && golden.height == face->height &&
        golden.channels == face->channels) {
        compare_faces(face, &golden, agreement);
        agreement->frames++;
    }
    fa_image_release(&golden);
}

static void run_golden(const golden_run_t *run, const fa_pdm_t *pdm,
                       const fa_triangulation_t *triangulation, agreement_t *agreement)
{
    test_csv_t csv;
    fa_source_t *source = NULL;
    fa_image_t face;
    memset(agreement, 0, sizeof *agreement);
    CHECK(test_csv_load(run->csv, &csv) == 0, "cannot read %s", run->csv);
    fa_error_t error = {0};
    fa_status status = fa_source_open(run->video, FA_SOURCE_VIDEO, &source, &error);
    CHECK(status == FA_OK, "%s", error.message);
    CHECK_OK(fa_image_allocate(&face, run->size, run->size, run->channels, NULL));
    if (!source || !csv.values) return;
    const fa_image_t *frame;
    double timestamp;
    for (int row = 0; row < csv.rows && row < run->max_frames; row++) {
        if (fa_source_read(source, &frame, &timestamp, NULL) != FA_OK) break;
        float landmarks[136], params_global[6];
        frame_inputs(&csv, row, pdm, run->calc_params, landmarks, params_global);
        align_and_compare(run, frame, row + 1, landmarks, params_global, pdm, triangulation, &face,
                          agreement);
    }
    fa_image_release(&face);
    fa_source_close(source);
    test_csv_free(&csv);
}

/* OpenFace's landmarks reach us rounded to 0.1 px, and that alone moves the warp enough to change
 * ~3% of the values by one level and the mask edge by a pixel here and there (the large
 * differences; the unmasked 200 px face has more sharp edges): perturbing exact
 * landmarks by the same rounding (uniform +-0.05 px) gives the same figures against our own
 * output. So the checks are floors just under what is reached, not OpenFace's 99.9%. */
static void check_agreement(const char *name, const agreement_t *agreement, double identical,
                            double floor, int far_permille)
{
    long long far = 0;
    for (int i = 3; i < 256; i++)
        far += agreement->histogram[i];
    CHECK(identical >= floor, "%s: %.4f%% identical (floor %.1f%%)", name, identical, floor);
    CHECK(far * 1000 < agreement->values * far_permille, "%s: %lld values off by more than 2", name,
          far);
}

static void test_golden(const fa_pdm_t *pdm, const fa_triangulation_t *triangulation)
{
#define REFERENCE "data/reference/openface-2.2-clnf/"
    static const struct {
        const char *name, *video, *csv, *bmp_folder;
        double sim_scale;
        int size, channels, mask, frames;
        double floor[2];  /* identical % with the CSV's tx, ty / with CalcParams */
        int far_permille; /* bound on values off by more than 2 */
    } runs[] = {
        {"default",
         "data/videos/default.wmv",
         REFERENCE "default/default.csv",
         REFERENCE "default/default_aligned",
         0.7,
         112,
         3,
         1,
         288,
         {96.9, 96.4},
         1},
        {"changeLighting",
         "data/videos/changeLighting.wmv",
         REFERENCE "changeLighting/changeLighting.csv",
         REFERENCE "changeLighting/changeLighting_aligned",
         0.7,
         112,
         3,
         1,
         88,
         {98.4, 98.1},
         1},
        /* -simsize 200 -simscale 0.5 -nomask -g, first 30 frames; landmarks of the default run. */
        {"default_sim200",
         "data/videos/default.wmv",
         REFERENCE "default/default.csv",
         REFERENCE "default_sim200/default_aligned",
         0.5,
         200,
         1,
         0,
         30,
         {93.1, 92.8},
         5},
    };
#undef REFERENCE
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++)
        for (int calc_params = 1; calc_params >= 0; calc_params--) {
            const golden_run_t run = {test_shared_path(runs[r].video),
                                      test_shared_path(runs[r].csv),
                                      test_shared_path(runs[r].bmp_folder),
                                      runs[r].sim_scale,
                                      runs[r].size,
                                      runs[r].channels,
                                      runs[r].mask,
                                      runs[r].frames,
                                      calc_params};
            agreement_t agreement;
            run_golden(&run, pdm, triangulation, &agreement);
            char name[128];
            snprintf(name, sizeof name, "%s (%s)", runs[r].name,
                     calc_params ? "CalcParams" : "CSV tx, ty");
            double identical;
            report(name, &agreement, &identical);
            CHECK(agreement.frames == runs[r].frames, "%s: %d frames compared, %d missing", name,
                  agreement.frames, agreement.missing);
            check_agreement(name, &agreement, identical, runs[r].floor[calc_params],
                            runs[r].far_permille);
        }
}

int main(void)
{
    test_align_shapes_opencv_order();
    test_warp_exact_cases();
    test_warp_kernel();
    test_warp_vectors();
    test_svd();
    test_mask_triangle();

    fa_pdm_t pdm;
    fa_triangulation_t triangulation;
    fa_error_t error = {0};
    fa_status status = fa_pdm_load(
        test_shared_path("models/openface/AU_predictors/In-the-wild_aligned_PDM_68.txt"), &pdm,
        &error);
    CHECK(status == FA_OK, "PDM: %s", error.message);
    status = fa_triangulation_load(
        test_shared_path("models/openface/AU_predictors/tris_68_full.txt"), &triangulation, &error);
    CHECK(status == FA_OK, "triangulation: %s", error.message);
    CHECK(triangulation.count == 111, "%d triangles", triangulation.count);
    if (status == FA_OK && pdm.mean_shape) test_mask_kernels(&pdm, &triangulation);
    if (status == FA_OK && pdm.mean_shape) test_golden(&pdm, &triangulation);
    fa_pdm_release(&pdm);
    fa_triangulation_release(&triangulation);
    return test_finish("test_align");
}
