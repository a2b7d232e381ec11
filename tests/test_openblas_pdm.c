/* The PDM's sgemm products against the library OpenFace's reference ran: OpenBLAS 0.3.21's
 * sgemm_ loaded with dlopen and forced onto its SkylakeX kernels, called as OpenFace calls it on
 * faceau's own arrays, bit for bit:
 * - PDM::CalcShape3D, sgemm_(1, rows, modes) with C = the mean shape (also what cv::gemm hands
 *   OpenBLAS for CalcParams' M + V p), on every PDM of main_clnf_general, with the parameters
 *   of OpenFace's reference CSV and random ones, on all points and on the visible subsets that
 *   CalcParams forms;
 * - the Hessians J^T W J + Λ of NU-RLMS and CalcParams, sgemm_(columns, columns, rows), on the
 *   Jacobians left by real NU-RLMS fits (rigid and not, weighted and not, invisible points) and
 *   on Jacobians at the reference CSV's parameters, with every kernel.
 * Skipped, with a message, when the CPU lacks AVX-512 or the library is missing or another
 * version (test_pdm compares the SIMD kernels with plain C regardless). */
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "landmarks/clnf_fit.h"
#include "openblas_skylakex.h"
#include "pdm/pdm.h"
#include "testing.h"

enum { MAX_POINTS = FA_PDM_MAX_POINTS, MAX_MODES = FA_PDM_MAX_MODES, MAX_PARAMS = 6 + MAX_MODES };

static void *library;

static const char *pdm_files[] = {
    "pdms/In-the-wild_aligned_PDM_68.txt", "model_inner/pdms/pdm_51_inner.txt",
    "model_eye/pdms/pdm_28_l_eye_3D_closed.txt", "model_eye/pdms/pdm_28_eye_3D_closed.txt"};
enum { PDM_COUNT = sizeof pdm_files / sizeof pdm_files[0] };

static int load_pdm(const char *relative, fa_pdm_t *pdm) {
    char path[4096];
    snprintf(path, sizeof path, "%s/model/%s", test_models_dir(), relative);
    fa_error_t error = {0};
    if (fa_pdm_load(path, pdm, &error) == FA_OK) return 1;
    CHECK(0, "cannot load %s: %s", relative, error.message);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Shapes */

/* CalcShape3D on the PDM subsampled to the listed points (CalcParams copies their rows of the
 * mean and of the components, X block, Y block, Z block): sgemm_ with M = 1, N = 3 count, K =
 * modes, A = p_local (lda 1), B = the row-major components (ldb modes), C = the mean, beta 1. */
static void library_shape(const fa_pdm_t *pdm, const float *local, const int *points, int count,
                          float *shape) {
    int n = pdm->point_count, m = pdm->mode_count, rows = 3 * count;
    static float components[3 * MAX_POINTS * MAX_MODES];
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < count; i++) {
            int row = b * n + points[i];
            shape[b * count + i] = pdm->mean_shape[row];
            memcpy(components + (size_t)(b * count + i) * m, pdm->components + (size_t)row * m,
                   sizeof(float) * (size_t)m);
        }
    test_openblas_sgemm(library, 1, rows, m, 1.0f, local, 1, components, m, 1.0f, shape, 1);
}

typedef struct tally {
    long products, values, differing;
} tally_t;

static void tally_add(tally_t *tally, const float *ours, const float *theirs, size_t count) {
    tally->products++;
    tally->values += (long)count;
    tally->differing += test_differing_floats(ours, theirs, count);
}

/* Visible sets: all points, then subsets of every size class mod 4 (the last N mod 4 rows of
 * the product are summed differently), dropping points from either end or spread out. */
static int visible_points(int n, int variant, int *points) {
    int count = 0;
    for (int i = 0; i < n; i++) {
        int drop = 0;
        switch (variant) {
        case 1:
            drop = i == n - 1;
            break; /* the last point */
        case 2:
            drop = i == 0 || i == 5;
            break; /* two early ones */
        case 3:
            drop = i % 7 == 3;
            break; /* spread out */
        case 4:
            drop = i >= n - 3;
            break; /* three at the end */
        case 5:
            drop = i % 2 == 1 && i < n / 2;
            break; /* many */
        default:
            break;
        }
        if (!drop) points[count++] = i;
    }
    return count;
}
enum { VISIBLE_VARIANTS = 6 };

static void check_shape(const fa_pdm_t *pdm, const float *local, tally_t *full, tally_t *subsets,
                        int *sizes_mod4) {
    int n = pdm->point_count, points[MAX_POINTS];
    float ours[3 * MAX_POINTS], plain[3 * MAX_POINTS], theirs[3 * MAX_POINTS];
    int count = visible_points(n, 0, points);
    library_shape(pdm, local, points, count, theirs);
    fa_pdm_shape_3d(pdm, local, ours);
    fa_pdm_shape_3d_reference(pdm, local, plain);
    tally_add(full, ours, theirs, (size_t)(3 * n));
    tally_add(full, plain, theirs, (size_t)(3 * n));
    for (int variant = 0; variant < VISIBLE_VARIANTS; variant++) {
        count = visible_points(n, variant, points);
        if (count == 0) continue;
        *sizes_mod4 |= 1 << (3 * count % 4);
        library_shape(pdm, local, points, count, theirs);
        for (int simd = 0; simd < 2; simd++) {
            fa_pdm_shape_3d_points(pdm, local, points, count, simd, ours);
            tally_add(subsets, ours, theirs, (size_t)(3 * count));
        }
    }
}

/* Random parameters of a model's own spread: uniform within 1.5 standard deviations. */
static void random_local(const fa_pdm_t *pdm, float *local) {
    for (int j = 0; j < pdm->mode_count; j++)
        local[j] = 3.0f * test_random_float() * sqrtf(pdm->eigenvalues[j]);
}

/* The reference CSV's p_0..p_33 (and p_scale..p_ty in global) of every frame, or 0 frames. */
static int reference_parameters(float (**local)[MAX_MODES], float (**global)[6]) {
    test_csv_t csv;
    if (test_csv_load(test_shared_path("data/reference/openface-2.2-clnf/default/default.csv"),
                      &csv) != 0)
        return 0;
    int l0 = test_csv_column(&csv, "p_0"), g0 = test_csv_column(&csv, "p_scale");
    if (l0 < 0 || g0 < 0) {
        test_csv_free(&csv);
        return 0;
    }
    *local = calloc((size_t)csv.rows, sizeof **local);
    *global = calloc((size_t)csv.rows, sizeof **global);
    for (int f = 0; f < csv.rows; f++) {
        for (int j = 0; j < MAX_MODES; j++)
            (*local)[f][j] = (float)test_csv_value(&csv, f, l0 + j);
        for (int j = 0; j < 6; j++)
            (*global)[f][j] = (float)test_csv_value(&csv, f, g0 + j);
    }
    int rows = csv.rows;
    test_csv_free(&csv);
    return rows;
}

/* A random PDM-like model in OpenFace's text format (mean, components, eigenvalues; each as
 * rows, columns, type 6 and the values), parsed as a model file is. */
static int random_pdm(int n, int m, fa_pdm_t *pdm) {
    size_t size = 64 * (size_t)(3 * n * (m + 1) + m) + 64;
    char *text = malloc(size);
    size_t used = (size_t)snprintf(text, size, "%d\n1\n6\n", 3 * n);
    for (int r = 0; r < 3 * n; r++)
        used += (size_t)snprintf(text + used, size - used, "%.9g\n", 100.0f * test_random_float());
    used += (size_t)snprintf(text + used, size - used, "%d\n%d\n6\n", 3 * n, m);
    for (int t = 0; t < 3 * n * m; t++)
        used += (size_t)snprintf(text + used, size - used, "%.9g\n", test_random_float());
    used += (size_t)snprintf(text + used, size - used, "%d\n1\n6\n", m);
    for (int j = 0; j < m; j++)
        used += (size_t)snprintf(text + used, size - used, "%.9g\n", 50.0 / (j + 1));
    fa_error_t error = {0};
    fa_status status = fa_pdm_parse(text, used, "random PDM", pdm, &error);
    free(text);
    CHECK(status == FA_OK, "random PDM of %d points, %d modes: %s", n, m, error.message);
    return status == FA_OK;
}

/* Random models of other sizes, so that the rule's edges (K = 32 above all) are checked too,
 * not only the sizes of OpenFace's models. */
static void test_shapes_of_other_sizes(void) {
    static const int points_list[] = {3, 5, 7, 10, 13}, modes_list[] = {1, 16, 20, 31, 32, 33};
    tally_t full = {0}, subsets = {0};
    int sizes_mod4 = 0;
    for (size_t a = 0; a < sizeof points_list / sizeof *points_list; a++)
        for (size_t b = 0; b < sizeof modes_list / sizeof *modes_list; b++) {
            fa_pdm_t pdm;
            if (!random_pdm(points_list[a], modes_list[b], &pdm)) continue;
            float local[MAX_MODES];
            for (int trial = 0; trial < 20; trial++) {
                random_local(&pdm, local);
                check_shape(&pdm, local, &full, &subsets, &sizes_mod4);
            }
            fa_pdm_release(&pdm);
        }
    printf("random models of 3-13 points and 1-33 modes: %ld of %ld shape values differ, %ld of "
           "%ld on visible subsets\n",
           full.differing, full.values, subsets.differing, subsets.values);
    CHECK(full.differing == 0 && subsets.differing == 0,
          "shapes of random models differ from the library's sgemm");
}

static void test_shapes(const fa_pdm_t pdms[PDM_COUNT], float (*csv_local)[MAX_MODES], int frames) {
    for (int p = 0; p < PDM_COUNT; p++) {
        const fa_pdm_t *pdm = &pdms[p];
        tally_t full = {0}, subsets = {0};
        int sizes_mod4 = 0;
        float local[MAX_MODES];
        if (p == 0)
            for (int f = 0; f < frames; f++)
                check_shape(pdm, csv_local[f], &full, &subsets, &sizes_mod4);
        for (int trial = 0; trial < 100; trial++) {
            random_local(pdm, local);
            check_shape(pdm, local, &full, &subsets, &sizes_mod4);
        }
        printf("%s (%d points, %d modes): %ld full shapes, %ld of %ld values differ; %ld visible "
               "subsets, %ld of %ld values differ\n",
               pdm_files[p], pdm->point_count, pdm->mode_count, full.products, full.differing,
               full.values, subsets.products, subsets.differing, subsets.values);
        CHECK(full.differing == 0 && subsets.differing == 0,
              "%s: the shape differs from the library's sgemm", pdm_files[p]);
        CHECK(sizes_mod4 == 15, "%s: subsets of only some sizes mod 4 (%x)", pdm_files[p],
              sizes_mod4);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Hessians */

/* The Hessian as OpenFace's sgemm_ call forms it: A = J.data (rows x columns row-major, lda
 * columns), B = J_w_t.data (the weighted Jacobian transposed, ldb rows), C = Λ, beta 1. */
static void library_hessian(const float *jacobian, const float *weighted, int rows, int columns,
                            const float *regularisation, float *hessian) {
    static float transposed[MAX_PARAMS * 2 * MAX_POINTS];
    for (int k = 0; k < rows; k++)
        for (int j = 0; j < columns; j++)
            transposed[(size_t)j * rows + k] = weighted[(size_t)k * columns + j];
    for (int j = 0; j < columns; j++)
        for (int i = 0; i < columns; i++)
            hessian[j * columns + i] = i == j && i >= 6 ? regularisation[i - 6] : 0.0f;
    test_openblas_sgemm(library, columns, columns, rows, 1.0f, jacobian, columns, transposed, rows,
                        1.0f, hessian, columns);
}

static const char *kernel_names[4] = {"dispatched", "plain C", "AVX2", "AVX-512"};

typedef struct hessian_tally {
    long products[4], differing[4]; /* dispatched, plain C, AVX2, AVX-512 */
    int shapes[16][2], shape_count; /* (columns, rows) seen */
} hessian_tally_t;

static void check_hessian(const float *jacobian, const float *weighted, int rows, int columns,
                          const float *regularisation, hessian_tally_t *tally) {
    float theirs[MAX_PARAMS * MAX_PARAMS], ours[MAX_PARAMS * MAX_PARAMS];
    size_t count = (size_t)columns * (size_t)columns;
    library_hessian(jacobian, weighted, rows, columns, regularisation, theirs);
    for (int kernel = 0; kernel < 4; kernel++) {
        if (kernel == 0)
            fa_pdm_hessian(jacobian, weighted, rows, columns, regularisation, ours);
        else if (kernel == 1)
            fa_pdm_hessian_reference(jacobian, weighted, rows, columns, regularisation, ours);
        else if (!fa_pdm_hessian_kernel(kernel == 2 ? FA_PDM_HESSIAN_AVX2 : FA_PDM_HESSIAN_WIDE,
                                        jacobian, weighted, rows, columns, regularisation, ours))
            continue;
        tally->products[kernel]++;
        tally->differing[kernel] += test_differing_floats(ours, theirs, count) != 0;
    }
    int seen = 0;
    for (int s = 0; s < tally->shape_count; s++)
        seen |= tally->shapes[s][0] == columns && tally->shapes[s][1] == rows;
    if (!seen && tally->shape_count < 16) {
        tally->shapes[tally->shape_count][0] = columns;
        tally->shapes[tally->shape_count++][1] = rows;
    }
}

/* A synthetic response map (a bump off the centre): something for NU-RLMS to fit. */
static void synthetic_map(int i, int window, float *map) {
    double c = (window - 1) / 2.0, ox = sin(i * 1.7) * 1.5, oy = cos(i * 2.3) * 1.2;
    for (int ii = 0; ii < window; ii++)
        for (int jj = 0; jj < window; jj++) {
            double ex = jj - c - ox, ey = ii - c - oy;
            map[ii * window + jj] =
                (float)(exp(-(ex * ex + ey * ey) / 2.0) + 0.01 * ((ii + i) % 5));
        }
}

/* Rigid and non-rigid NU-RLMS on a PDM; after each call the workspace holds the Jacobian and
 * the weighted Jacobian of its last iteration, as OpenFace's sgemm_ would receive them. */
static void hessians_of_fits(const fa_pdm_t *pdm, float weight_factor, int invisible_stride,
                             hessian_tally_t *tally) {
    fa_clnf_settings_t settings;
    memset(&settings, 0, sizeof settings);
    settings.sigma = 1.5f;
    settings.reg_factor = 5.0f;
    settings.weight_factor = weight_factor;
    settings.iterations = 3;
    settings.scale_count = 1;
    settings.patch_scaling[0] = 1.0;
    settings.windows_init[0] = settings.windows_track[0] = 7;
    fa_clnf_model_t model;
    fa_error_t error = {0};
    CHECK_OK(fa_clnf_model_init(&model, pdm, &settings, &error));
    if (!model.pdm) return;
    int n = pdm->point_count, m = pdm->mode_count, window = 7;
    static fa_clnf_workspace_t workspace;
    static float maps[MAX_POINTS * 7 * 7];
    int visible[MAX_POINTS];
    float confidence[MAX_POINTS], regularisation[MAX_MODES], zero[MAX_MODES] = {0};
    for (int i = 0; i < n; i++) {
        synthetic_map(i, window, maps + i * window * window);
        visible[i] = !(invisible_stride && i % invisible_stride == 2);
        confidence[i] = 0.4f + 0.013f * (i % 11);
    }
    fa_clnf_responses_t responses = {.maps = maps,
                                     .img_to_ref = {0.8f, 0.05f, -0.05f, 0.8f},
                                     .ref_to_img = {1.24f, -0.0775f, 0.0775f, 1.24f},
                                     .visible = visible,
                                     .confidence = confidence};
    for (int j = 0; j < m; j++)
        regularisation[j] = settings.reg_factor / pdm->eigenvalues[j];
    for (int start = 0; start < 4; start++) {
        float global[6] = {1.1f + 0.2f * start, 0.05f * start, -0.1f, 0.03f, 300.0f, 250.0f};
        float local[MAX_MODES] = {0}, base[2 * MAX_POINTS];
        for (int j = 0; j < m && j < 6; j++)
            local[j] = ((j + start) % 2 ? -0.4f : 0.3f) * sqrtf(pdm->eigenvalues[j]);
        fa_pdm_shape_2d(pdm, global, local, base);
        for (int rigid = 1; rigid >= 0; rigid--) {
            fa_clnf_rlms_t rlms = {window,       rigid, 0, settings.sigma, settings.reg_factor,
                                   weight_factor};
            fa_clnf_nu_rlms(&model, &responses, base, &rlms, global, local, NULL, &workspace);
            check_hessian(workspace.jacobian, workspace.weighted, 2 * n, rigid ? 6 : 6 + m,
                          rigid ? zero : regularisation, tally);
        }
    }
    fa_clnf_model_release(&model);
}

/* CalcParams' Jacobians (unit weights) at the reference CSV's parameters, on all points and on
 * visible subsets (its rows are those of the visible points only). */
static void hessians_at_parameters(const fa_pdm_t *pdm, const float global[6], const float *local,
                                   hessian_tally_t *tally) {
    static float full[2 * MAX_POINTS * MAX_PARAMS], jacobian[2 * MAX_POINTS * MAX_PARAMS];
    float shape[3 * MAX_POINTS], regularisation[MAX_MODES];
    int n = pdm->point_count, m = pdm->mode_count, columns = 6 + m, points[MAX_POINTS];
    for (int j = 0; j < m; j++)
        regularisation[j] = 1.0f / pdm->eigenvalues[j];
    fa_pdm_shape_3d(pdm, local, shape);
    fa_pdm_jacobian(pdm, global, shape, 0, full);
    for (int variant = 0; variant < VISIBLE_VARIANTS; variant++) {
        int count = visible_points(n, variant, points);
        for (int axis = 0; axis < 2; axis++)
            for (int i = 0; i < count; i++)
                memcpy(jacobian + (size_t)(axis * count + i) * columns,
                       full + (size_t)(axis * n + points[i]) * columns,
                       sizeof(float) * (size_t)columns);
        check_hessian(jacobian, jacobian, 2 * count, columns, regularisation, tally);
    }
}

/* Random Jacobians of other sizes, for the rule's edges: K around 32, columns mod 16 around 8. */
static void test_hessians_of_other_sizes(void) {
    static const int columns_list[] = {1, 3, 6, 9, 13, 16, 17, 24, 25, 33, 38, 40};
    static const int rows_list[] = {1, 5, 12, 16, 20, 31, 32, 33, 47, 64, 100, 136};
    static float jacobian[136 * 40], weighted[136 * 40];
    float regularisation[MAX_MODES];
    hessian_tally_t tally = {0};
    for (int j = 0; j < MAX_MODES; j++)
        regularisation[j] = 0.5f + test_random_float();
    for (size_t c = 0; c < sizeof columns_list / sizeof *columns_list; c++)
        for (size_t r = 0; r < sizeof rows_list / sizeof *rows_list; r++) {
            int columns = columns_list[c], rows = rows_list[r];
            for (int t = 0; t < rows * columns; t++) {
                jacobian[t] = 200.0f * test_random_float();
                weighted[t] = jacobian[t] * (0.5f + test_random_float());
            }
            check_hessian(jacobian, weighted, rows, columns, regularisation, &tally);
        }
    for (int k = 0; k < 4; k++) {
        printf("random Jacobians of 1-40 columns and 1-136 rows, %s: %ld of %ld Hessians differ\n",
               kernel_names[k], tally.differing[k], tally.products[k]);
        CHECK(tally.differing[k] == 0, "%s kernel: %ld of %ld random Hessians differ",
              kernel_names[k], tally.differing[k], tally.products[k]);
    }
}

static void test_hessians(const fa_pdm_t pdms[PDM_COUNT], float (*csv_local)[MAX_MODES],
                          float (*csv_global)[6], int frames) {
    hessian_tally_t tally = {0};
    for (int p = 0; p < PDM_COUNT; p++) {
        hessians_of_fits(&pdms[p], 0, 0, &tally);
        hessians_of_fits(&pdms[p], 2.5f, 0, &tally);
        hessians_of_fits(&pdms[p], 2.5f, 9, &tally);
    }
    for (int f = 0; f < frames; f += 4)
        hessians_at_parameters(&pdms[0], csv_global[f], csv_local[f], &tally);
    /* The eye model's CalcParams on its 6 visible points (12 rows). */
    float eye_global[6] = {2.0f, 0.1f, -0.2f, 0.05f, 150.0f, 120.0f}, eye_local[MAX_MODES];
    for (int trial = 0; trial < 20; trial++) {
        random_local(&pdms[2], eye_local);
        static float full[2 * MAX_POINTS * MAX_PARAMS], jacobian[12 * MAX_PARAMS];
        float shape[3 * MAX_POINTS], regularisation[MAX_MODES];
        int m = pdms[2].mode_count, columns = 6 + m, n = pdms[2].point_count;
        for (int j = 0; j < m; j++)
            regularisation[j] = 1.0f / pdms[2].eigenvalues[j];
        fa_pdm_shape_3d(&pdms[2], eye_local, shape);
        fa_pdm_jacobian(&pdms[2], eye_global, shape, 0, full);
        for (int axis = 0; axis < 2; axis++)
            for (int i = 0; i < 6; i++)
                memcpy(jacobian + (size_t)(axis * 6 + i) * columns,
                       full + (size_t)(axis * n + 8 + 2 * i) * columns,
                       sizeof(float) * (size_t)columns);
        check_hessian(jacobian, jacobian, 12, columns, regularisation, &tally);
    }
    printf("Hessians of");
    for (int s = 0; s < tally.shape_count; s++)
        printf(" %dx%d(K %d)", tally.shapes[s][0], tally.shapes[s][0], tally.shapes[s][1]);
    printf(":\n");
    for (int k = 0; k < 4; k++) {
        printf("  %s: %ld of %ld differ from the library\n", kernel_names[k], tally.differing[k],
               tally.products[k]);
        CHECK(tally.differing[k] == 0, "%s kernel: %ld of %ld Hessians differ", kernel_names[k],
              tally.differing[k], tally.products[k]);
    }
    CHECK(tally.products[0] > 0 && tally.products[1] == tally.products[0],
          "every kernel ran on every Hessian");
}

int main(void) {
    library = test_openblas_skylakex_open();
    if (!library) return test_finish("openblas_pdm");
    fa_pdm_t pdms[PDM_COUNT];
    int loaded = 1;
    for (int p = 0; p < PDM_COUNT; p++)
        loaded &= load_pdm(pdm_files[p], &pdms[p]);
    float(*csv_local)[MAX_MODES] = NULL, (*csv_global)[6] = NULL;
    int frames = reference_parameters(&csv_local, &csv_global);
    CHECK(frames > 0, "cannot read the reference CSV's parameters");
    if (loaded) {
        test_shapes(pdms, csv_local, frames);
        test_hessians(pdms, csv_local, csv_global, frames);
        test_shapes_of_other_sizes();
        test_hessians_of_other_sizes();
        for (int p = 0; p < PDM_COUNT; p++)
            fa_pdm_release(&pdms[p]);
    }
    free(csv_local);
    free(csv_global);
    dlclose(library);
    return test_finish("openblas_pdm");
}
