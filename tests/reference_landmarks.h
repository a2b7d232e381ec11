/* Test utility (not library code): recovers OpenFace's landmarks to well below the CSV's 0.1 px
 * print precision.
 *
 * OpenFace's CLNF output is PDM-consistent: x_i, y_i = CalcShape2D(p) of the tracker's final
 * parameters p (LANDMARKS_SPEC §3.5, §6.4), and X_i, Y_i, Z_i = GetShape(fx, fy, cx, cy) of the
 * same p and landmarks (§6.3). The CSV prints the landmarks and X/Y/Z with 1 decimal and the 40
 * parameters with 3. Every printed value is a slab constraint on p; the projection is practically
 * linear inside the ±0.0005 parameter box, so p lies in a polytope in 40 dimensions. We take its
 * analytic centre (Newton on the log barrier; a min-max phase 1 first finds an interior point or,
 * if the row is inconsistent, the least violating one) and print the float projection of that
 * p*. Landmarks only (136 slabs) leave the scale/rotation directions loose; the X/Y/Z columns pin
 * down the scale (Z = fx/s + ...) and rotation. In a simulation with known float landmarks
 * (random p in the boxes, everything printed as OpenFace prints it) the error is 0.0008 px rms
 * (max 0.006) with X/Y/Z, 0.002 px rms without, against 0.029 px for the printed values; the
 * centroid of the polytope (hit-and-run) did no better than its analytic centre. Every row of
 * every reference CSV is consistent (main scale > 0.9 everywhere, so the final re-fit ran).
 *
 * Header-only: include it in exactly one test file (everything is static).
 *
 *   int reference_landmarks_write(const char *openface_csv, const char *out_csv,
 *                                 const char *pdm_path);
 *
 * writes "frame, face_id, timestamp, confidence, success, x_0..x_67, y_0..y_67" with the first
 * five fields copied as text and the landmarks with 6 decimals (a float round-trips). The camera
 * intrinsics for X/Y/Z come from <csv stem>_of_details.txt ("Camera parameters:fx,fy,cx,cy");
 * without that file only the 2D landmarks and parameters are used. Rows whose columns cannot be
 * reconciled at all (e.g. all-zero landmarks before a first detection) are copied unchanged.
 * Returns 0 on success, -1 on an I/O or format error. */
#ifndef FACEAU_TESTS_REFERENCE_LANDMARKS_H
#define FACEAU_TESTS_REFERENCE_LANDMARKS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pdm/pdm.h"

enum {
    RL_POINTS = 68,
    RL_MODES = 34,
    RL_PARAMS = 6 + RL_MODES,
    RL_MAX_ROWS = 5 * RL_POINTS + RL_PARAMS, /* x, y, X, Y, Z slabs and the parameter box */
    RL_VARS = RL_PARAMS + 1,                 /* plus the phase-1 bound */
};

/* Half-widths of the printed values' rounding intervals, with a hair of slack. */
#define RL_LANDMARK_HALF 0.05
#define RL_PARAM_HALF 0.0005
#define RL_SLACK 1e-6

typedef struct rl_camera {
    int valid;
    double fx, fy, cx, cy;
} rl_camera_t;

typedef struct rl_result {
    float params[RL_PARAMS];        /* p*: scale, rx, ry, rz, tx, ty, p_0..p_33 */
    float landmarks[2 * RL_POINTS]; /* its float projection (CalcShape2D), x0..x67, y0..y67 */
    double tau;        /* max violation in units of the half-widths when phase 1 ended: < 1
                          once an interior point is found, else the least reached */
    int feasible;      /* the linear model admits p* inside every slab and box */
    int rounds_ok;     /* every projected landmark prints ("%.1f") as the CSV's value */
    int rounds_3d_ok;  /* likewise X/Y/Z (double model of GetShape at p*); 1 without them */
    int in_box;        /* every p* within 0.0005 (+slack) of the CSV's value */
    int iterations;    /* Newton steps */
    double max_offset; /* max |landmark - CSV landmark| */
} rl_result_t;

/* ---------------------------------------------------------------------------------------------
 * The model in double: 2D projection (x, y), and GetShape's X, Y, Z. */

static void rl_rotation(double rx, double ry, double rz, double r[3][3])
{
    double s1 = sin(rx), c1 = cos(rx), s2 = sin(ry), c2 = cos(ry), s3 = sin(rz), c3 = cos(rz);
    r[0][0] = c2 * c3;
    r[0][1] = -c2 * s3;
    r[0][2] = s2;
    r[1][0] = c1 * s3 + c3 * s1 * s2;
    r[1][1] = c1 * c3 - s1 * s2 * s3;
    r[1][2] = -c2 * s1;
    r[2][0] = s1 * s3 - c1 * c3 * s2;
    r[2][1] = c3 * s1 + c1 * s2 * s3;
    r[2][2] = c1 * c2;
}

/* out: x[68], y[68], X[68], Y[68], Z[68] for global parameters g and the model shape S. */
static void rl_project_global(const double g[6], const double *shape, const rl_camera_t *camera,
                              double *out)
{
    double r[3][3];
    rl_rotation(g[1], g[2], g[3], r);
    for (int i = 0; i < RL_POINTS; i++) {
        double X = shape[i], Y = shape[i + RL_POINTS], Z = shape[i + 2 * RL_POINTS];
        double x = g[0] * (r[0][0] * X + r[0][1] * Y + r[0][2] * Z) + g[4];
        double y = g[0] * (r[1][0] * X + r[1][1] * Y + r[1][2] * Z) + g[5];
        out[i] = x;
        out[i + RL_POINTS] = y;
        if (camera->valid) {
            double depth = camera->fx / g[0] + (r[2][0] * X + r[2][1] * Y + r[2][2] * Z);
            out[i + 2 * RL_POINTS] = depth * (x - camera->cx) / camera->fx;
            out[i + 3 * RL_POINTS] = depth * (y - camera->cy) / camera->fy;
            out[i + 4 * RL_POINTS] = depth;
        }
    }
}

/* Cholesky solve of the n x n SPD system h (row-major, overwritten) h x = b. Returns 0 if h is not
 * positive definite. */
static int rl_cholesky_solve(double *h, const double *b, double *x, int n)
{
    for (int j = 0; j < n; j++) {
        double d = h[j * n + j];
        for (int k = 0; k < j; k++) d -= h[j * n + k] * h[j * n + k];
        if (!(d > 0)) return 0;
        d = sqrt(d);
        h[j * n + j] = d;
        for (int i = j + 1; i < n; i++) {
            double v = h[i * n + j];
            for (int k = 0; k < j; k++) v -= h[i * n + k] * h[j * n + k];
            h[i * n + j] = v / d;
        }
    }
    for (int i = 0; i < n; i++) {
        double v = b[i];
        for (int k = 0; k < i; k++) v -= h[i * n + k] * x[k];
        x[i] = v / h[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) {
        double v = x[i];
        for (int k = i + 1; k < n; k++) v -= h[k * n + i] * x[k];
        x[i] = v / h[i * n + i];
    }
    return 1;
}

/* The slab system: rows j with r_j(z) = a_j . z + e_j, |r_j| <= tau; z is the parameter offset
 * in units of the box half-width. */
typedef struct rl_system {
    int rows;
    double a[RL_MAX_ROWS][RL_PARAMS];
    double e[RL_MAX_ROWS];
} rl_system_t;

/* Barrier F = t*tau - sum log(tau - r) - sum log(tau + r) over (z, tau) when phase1, else over z
 * with tau fixed. Newton with backtracking that keeps every slab strictly satisfied. Returns the
 * number of steps; stops early in phase 1 once tau <= stop_tau. */
static int rl_newton(const rl_system_t *sys, double *z, double *tau, int phase1, double t,
                     double stop_tau, int max_steps)
{
    int n = phase1 ? RL_VARS : RL_PARAMS, steps = 0;
    double r[RL_MAX_ROWS];
    for (; steps < max_steps; steps++) {
        double h[RL_VARS * RL_VARS], grad[RL_VARS], step[RL_VARS];
        memset(h, 0, sizeof h);
        memset(grad, 0, sizeof grad);
        if (phase1) grad[RL_PARAMS] = t;
        for (int j = 0; j < sys->rows; j++) {
            double v = sys->e[j];
            for (int k = 0; k < RL_PARAMS; k++) v += sys->a[j][k] * z[k];
            r[j] = v;
            double ip = 1 / (*tau - v), im = 1 / (*tau + v);
            double gz = ip - im, hz = ip * ip + im * im, hzt = im * im - ip * ip;
            const double *a = sys->a[j];
            for (int k = 0; k < RL_PARAMS; k++) {
                if (a[k] == 0) continue;
                grad[k] += gz * a[k];
                double w = hz * a[k];
                for (int l = k; l < RL_PARAMS; l++) h[k * n + l] += w * a[l];
            }
            if (phase1) {
                grad[RL_PARAMS] -= ip + im;
                for (int k = 0; k < RL_PARAMS; k++) h[k * n + RL_PARAMS] += hzt * a[k];
                h[RL_PARAMS * n + RL_PARAMS] += hz;
            }
        }
        for (int k = 0; k < n; k++)
            for (int l = 0; l < k; l++) h[k * n + l] = h[l * n + k];
        double minus_grad[RL_VARS];
        for (int k = 0; k < n; k++) minus_grad[k] = -grad[k];
        if (!rl_cholesky_solve(h, minus_grad, step, n)) break;
        double decrement = 0;
        for (int k = 0; k < n; k++) decrement -= grad[k] * step[k];
        if (decrement < 1e-14) break;
        /* Largest step keeping tau -/+ r > 0, then backtrack on F. */
        double alpha = 1;
        for (int j = 0; j < sys->rows; j++) {
            double dr = 0;
            for (int k = 0; k < RL_PARAMS; k++) dr += sys->a[j][k] * step[k];
            double dtau = phase1 ? step[RL_PARAMS] : 0;
            double gap_p = *tau - r[j], gap_m = *tau + r[j];
            double rate_p = dtau - dr, rate_m = dtau + dr;
            if (rate_p < 0) alpha = fmin(alpha, 0.99 * gap_p / -rate_p);
            if (rate_m < 0) alpha = fmin(alpha, 0.99 * gap_m / -rate_m);
        }
        double f0 = phase1 ? t * *tau : 0;
        for (int j = 0; j < sys->rows; j++) f0 -= log(*tau - r[j]) + log(*tau + r[j]);
        for (int tries = 0; tries < 30; tries++, alpha *= 0.5) {
            double nz[RL_PARAMS], ntau = phase1 ? *tau + alpha * step[RL_PARAMS] : *tau;
            for (int k = 0; k < RL_PARAMS; k++) nz[k] = z[k] + alpha * step[k];
            double f1 = phase1 ? t * ntau : 0;
            int ok = 1;
            for (int j = 0; j < sys->rows && ok; j++) {
                double v = sys->e[j];
                for (int k = 0; k < RL_PARAMS; k++) v += sys->a[j][k] * nz[k];
                if (!(ntau - v > 0 && ntau + v > 0)) ok = 0;
                else f1 -= log(ntau - v) + log(ntau + v);
            }
            if (ok && f1 <= f0 - 0.25 * alpha * decrement) {
                memcpy(z, nz, sizeof nz);
                *tau = ntau;
                break;
            }
        }
        if (phase1 && *tau <= stop_tau) return steps + 1;
        if (decrement < 1e-10) break;
    }
    return steps;
}

/* Reconstructs one CSV row. csv_landmarks: x0..x67, y0..y67; csv_params: the 40 p_*;
 * csv_shape3d: X0..X67, Y0..Y67, Z0..Z67 or NULL (then camera is not used). */
static void rl_reconstruct(const fa_pdm_t *pdm, const double *csv_landmarks,
                           const double *csv_params, const double *csv_shape3d,
                           const rl_camera_t *camera_in, rl_result_t *result)
{
    static rl_system_t sys; /* big; tests are single-threaded */
    rl_camera_t camera = *camera_in;
    if (!csv_shape3d || !(csv_params[0] > 0)) camera.valid = 0;
    int outputs = camera.valid ? 5 * RL_POINTS : 2 * RL_POINTS;
    double half[RL_PARAMS];
    for (int k = 0; k < RL_PARAMS; k++) half[k] = RL_PARAM_HALF + RL_SLACK;

    /* Linearise at the CSV's parameters: base values and the Jacobian (global parameters by
     * central differences at fixed shape, local ones by the chain rule). */
    double shape[3 * RL_POINTS], base[5 * RL_POINTS], g[6];
    for (int k = 0; k < 6; k++) g[k] = csv_params[k];
    for (int c = 0; c < 3 * RL_POINTS; c++) {
        double v = pdm->mean_shape[c];
        for (int m = 0; m < RL_MODES; m++)
            v += (double)pdm->components[c * RL_MODES + m] * csv_params[6 + m];
        shape[c] = v;
    }
    rl_project_global(g, shape, &camera, base);
    static double jac[5 * RL_POINTS][RL_PARAMS]; /* likewise */
    for (int k = 0; k < 6; k++) {
        double plus[5 * RL_POINTS], minus[5 * RL_POINTS], gp[6], gm[6], step = 1e-4;
        memcpy(gp, g, sizeof g);
        memcpy(gm, g, sizeof g);
        gp[k] += step;
        gm[k] -= step;
        rl_project_global(gp, shape, &camera, plus);
        rl_project_global(gm, shape, &camera, minus);
        for (int o = 0; o < outputs; o++) jac[o][k] = (plus[o] - minus[o]) / (2 * step);
    }
    double r[3][3];
    rl_rotation(g[1], g[2], g[3], r);
    for (int i = 0; i < RL_POINTS; i++) {
        double x = base[i], y = base[i + RL_POINTS];
        double depth = camera.valid ? base[i + 4 * RL_POINTS] : 0;
        for (int m = 0; m < RL_MODES; m++) {
            double vx = pdm->components[i * RL_MODES + m];
            double vy = pdm->components[(i + RL_POINTS) * RL_MODES + m];
            double vz = pdm->components[(i + 2 * RL_POINTS) * RL_MODES + m];
            double dx = g[0] * (r[0][0] * vx + r[0][1] * vy + r[0][2] * vz);
            double dy = g[0] * (r[1][0] * vx + r[1][1] * vy + r[1][2] * vz);
            jac[i][6 + m] = dx;
            jac[i + RL_POINTS][6 + m] = dy;
            if (camera.valid) {
                double dz = r[2][0] * vx + r[2][1] * vy + r[2][2] * vz;
                jac[i + 2 * RL_POINTS][6 + m] = (dz * (x - camera.cx) + depth * dx) / camera.fx;
                jac[i + 3 * RL_POINTS][6 + m] = (dz * (y - camera.cy) + depth * dy) / camera.fy;
                jac[i + 4 * RL_POINTS][6 + m] = dz;
            }
        }
    }

    /* Slabs in units of their half-widths; z in units of the parameter box. */
    sys.rows = 0;
    for (int o = 0; o < outputs; o++) {
        double target = o < 2 * RL_POINTS ? csv_landmarks[o] : csv_shape3d[o - 2 * RL_POINTS];
        double h = RL_LANDMARK_HALF + RL_SLACK;
        for (int k = 0; k < RL_PARAMS; k++) sys.a[sys.rows][k] = jac[o][k] * half[k] / h;
        sys.e[sys.rows] = (base[o] - target) / h;
        sys.rows++;
    }
    for (int k = 0; k < RL_PARAMS; k++) {
        memset(sys.a[sys.rows], 0, sizeof sys.a[sys.rows]);
        sys.a[sys.rows][k] = 1;
        sys.e[sys.rows] = 0;
        sys.rows++;
    }

    /* Start from the least-squares point of all slabs (their centres as targets, the box as
     * one more set of rows); phase 1 then minimises the largest violation until it is inside,
     * phase 2 finds the analytic centre of the slabs. */
    double z[RL_PARAMS] = {0}, tau = 0;
    {
        double h[RL_PARAMS * RL_PARAMS] = {0}, b[RL_PARAMS] = {0};
        for (int j = 0; j < sys.rows; j++) {
            const double *a = sys.a[j];
            for (int k = 0; k < RL_PARAMS; k++) {
                if (a[k] == 0) continue;
                b[k] -= a[k] * sys.e[j];
                for (int l = k; l < RL_PARAMS; l++) h[k * RL_PARAMS + l] += a[k] * a[l];
            }
        }
        for (int k = 0; k < RL_PARAMS; k++)
            for (int l = 0; l < k; l++) h[k * RL_PARAMS + l] = h[l * RL_PARAMS + k];
        if (!rl_cholesky_solve(h, b, z, RL_PARAMS)) memset(z, 0, sizeof z);
    }
    for (int j = 0; j < sys.rows; j++) {
        double v = sys.e[j];
        for (int k = 0; k < RL_PARAMS; k++) v += sys.a[j][k] * z[k];
        tau = fmax(tau, fabs(v));
    }
    tau = tau * 1.01 + 0.01;
    int steps = 0;
    const double stop = 0.999;
    if (tau > stop) {
        double t = 4.0 * sys.rows / tau;
        for (int outer = 0; outer < 12 && tau > stop; outer++, t *= 10)
            steps += rl_newton(&sys, z, &tau, 1, t, stop, 8);
    }
    result->feasible = tau < 1;
    result->tau = tau;
    if (result->feasible) {
        double one = 1;
        steps += rl_newton(&sys, z, &one, 0, 0, 0, 60);
    }
    result->iterations = steps;

    for (int k = 0; k < RL_PARAMS; k++)
        result->params[k] = (float)(csv_params[k] + z[k] * half[k]);
    fa_pdm_shape_2d(pdm, result->params, result->params + 6, result->landmarks);
    result->rounds_ok = 1;
    result->in_box = 1;
    result->max_offset = 0;
    for (int o = 0; o < 2 * RL_POINTS; o++) {
        char printed[64], expected[64];
        snprintf(printed, sizeof printed, "%.1f", (double)result->landmarks[o]);
        snprintf(expected, sizeof expected, "%.1f", csv_landmarks[o]);
        if (strcmp(printed, expected) != 0) result->rounds_ok = 0;
        result->max_offset = fmax(result->max_offset, fabs(result->landmarks[o] - csv_landmarks[o]));
    }
    for (int k = 0; k < RL_PARAMS; k++)
        if (fabs((double)result->params[k] - csv_params[k]) > RL_PARAM_HALF + RL_SLACK)
            result->in_box = 0;
    result->rounds_3d_ok = 1;
    if (camera.valid) {
        double star[6], values[5 * RL_POINTS];
        for (int k = 0; k < 6; k++) star[k] = result->params[k];
        for (int c = 0; c < 3 * RL_POINTS; c++) {
            double v = pdm->mean_shape[c];
            for (int m = 0; m < RL_MODES; m++)
                v += (double)pdm->components[c * RL_MODES + m] * result->params[6 + m];
            shape[c] = v;
        }
        rl_project_global(star, shape, &camera, values);
        for (int o = 0; o < 3 * RL_POINTS; o++) {
            char printed[64], expected[64];
            snprintf(printed, sizeof printed, "%.1f", values[2 * RL_POINTS + o]);
            snprintf(expected, sizeof expected, "%.1f", csv_shape3d[o]);
            if (strcmp(printed, expected) != 0) result->rounds_3d_ok = 0;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * The CSV rewrite. */

/* Reads "Camera parameters:fx,fy,cx,cy" from <stem>_of_details.txt beside csv_path. */
static rl_camera_t rl_camera_for(const char *csv_path)
{
    rl_camera_t camera = {0};
    size_t length = strlen(csv_path);
    if (length < 4 || length > 4000) return camera;
    char path[4096 + 32];
    memcpy(path, csv_path, length - 4);
    strcpy(path + length - 4, "_of_details.txt");
    FILE *file = fopen(path, "r");
    if (!file) return camera;
    char line[1024];
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "Camera parameters:%lf,%lf,%lf,%lf", &camera.fx, &camera.fy, &camera.cx,
                   &camera.cy) == 4 &&
            camera.fx > 0 && camera.fy > 0)
            camera.valid = 1;
    fclose(file);
    return camera;
}

/* Splits line in place at ',' (fields trimmed of spaces and line ends); returns the count. */
static int rl_split(char *line, char **fields, int capacity)
{
    int count = 0;
    char *cursor = line;
    while (count < capacity) {
        while (*cursor == ' ' || *cursor == '\t') cursor++;
        fields[count++] = cursor;
        char *comma = strchr(cursor, ',');
        char *end = comma ? comma : cursor + strlen(cursor);
        while (end > cursor && (end[-1] == ' ' || end[-1] == '\r' || end[-1] == '\n')) end--;
        if (!comma) {
            *end = '\0';
            break;
        }
        *end = '\0';
        cursor = comma + 1;
    }
    return count;
}

static int rl_find(char **names, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

/* Column indices of one OpenFace CSV. */
typedef struct rl_columns {
    int lead[5];                      /* frame, face_id, timestamp, confidence, success */
    int landmarks[2 * RL_POINTS];     /* x_i, y_i */
    int params[RL_PARAMS];            /* p_scale .. p_33 */
    int shape3d[3 * RL_POINTS];       /* X_i, Y_i, Z_i; [0] == -1 if absent */
    int has_params;
} rl_columns_t;

static int rl_columns_find(char **names, int count, rl_columns_t *c)
{
    static const char *lead[5] = {"frame", "face_id", "timestamp", "confidence", "success"};
    static const char *global[6] = {"p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"};
    char name[32];
    for (int i = 0; i < 5; i++)
        if ((c->lead[i] = rl_find(names, count, lead[i])) < 0) return -1;
    for (int i = 0; i < 2 * RL_POINTS; i++) {
        snprintf(name, sizeof name, "%c_%d", i < RL_POINTS ? 'x' : 'y', i % RL_POINTS);
        if ((c->landmarks[i] = rl_find(names, count, name)) < 0) return -1;
    }
    c->has_params = 1;
    for (int i = 0; i < RL_PARAMS; i++) {
        if (i < 6) snprintf(name, sizeof name, "%s", global[i]);
        else snprintf(name, sizeof name, "p_%d", i - 6);
        if ((c->params[i] = rl_find(names, count, name)) < 0) c->has_params = 0;
    }
    for (int i = 0; i < 3 * RL_POINTS; i++) {
        snprintf(name, sizeof name, "%c_%d", "XYZ"[i / RL_POINTS], i % RL_POINTS);
        c->shape3d[i] = rl_find(names, count, name);
        if (c->shape3d[i] < 0) {
            c->shape3d[0] = -1;
            break;
        }
    }
    return 0;
}

/* Fills the row's numbers; returns 0 if every needed field parsed. */
static int rl_row_values(char **fields, int count, const rl_columns_t *c, double *landmarks,
                         double *params, double *shape3d)
{
    for (int i = 0; i < 2 * RL_POINTS; i++) {
        if (c->landmarks[i] >= count) return -1;
        landmarks[i] = strtod(fields[c->landmarks[i]], NULL);
    }
    if (c->has_params)
        for (int i = 0; i < RL_PARAMS; i++) {
            if (c->params[i] >= count) return -1;
            params[i] = strtod(fields[c->params[i]], NULL);
        }
    if (c->shape3d[0] >= 0)
        for (int i = 0; i < 3 * RL_POINTS; i++) {
            if (c->shape3d[i] >= count) return -1;
            shape3d[i] = strtod(fields[c->shape3d[i]], NULL);
        }
    return 0;
}

/* Reconstruction is used when the row is consistent up to a small excess (tau is the largest
 * violation in units of the rounding half-width); otherwise the CSV's landmarks stand. */
#define RL_ACCEPT_TAU 1.5

static int reference_landmarks_write(const char *openface_csv, const char *out_csv,
                                     const char *pdm_path)
{
    fa_pdm_t pdm;
    fa_error_t error = {0};
    if (fa_pdm_load(pdm_path, &pdm, &error) != FA_OK) return -1;
    if (pdm.point_count != RL_POINTS || pdm.mode_count != RL_MODES) {
        fa_pdm_release(&pdm);
        return -1;
    }
    FILE *in = fopen(openface_csv, "r");
    FILE *out = in ? fopen(out_csv, "w") : NULL;
    enum { LINE = 1 << 16, FIELDS = 1024 };
    char *line = malloc(LINE), **fields = malloc(sizeof(char *) * FIELDS);
    char **names = malloc(sizeof(char *) * FIELDS);
    char *header = malloc(LINE);
    int status = in && out && line && fields && names && header ? 0 : -1;
    rl_columns_t columns = {0};
    int name_count = 0;
    if (status == 0 && fgets(header, LINE, in)) {
        name_count = rl_split(header, names, FIELDS);
        status = rl_columns_find(names, name_count, &columns);
    } else {
        status = -1;
    }
    rl_camera_t camera = rl_camera_for(openface_csv);
    if (status == 0) {
        fprintf(out, "frame, face_id, timestamp, confidence, success");
        for (int i = 0; i < 2 * RL_POINTS; i++)
            fprintf(out, ", %c_%d", i < RL_POINTS ? 'x' : 'y', i % RL_POINTS);
        fputc('\n', out);
    }
    while (status == 0 && fgets(line, LINE, in)) {
        if (line[0] == '\n' || line[0] == '\r' || line[0] == '\0') continue;
        int count = rl_split(line, fields, FIELDS);
        double landmarks[2 * RL_POINTS], params[RL_PARAMS], shape3d[3 * RL_POINTS];
        if (rl_row_values(fields, count, &columns, landmarks, params, shape3d) != 0 ||
            columns.lead[4] >= count) {
            status = -1;
            break;
        }
        float values[2 * RL_POINTS];
        for (int i = 0; i < 2 * RL_POINTS; i++) values[i] = (float)landmarks[i];
        if (columns.has_params) {
            rl_result_t result;
            rl_reconstruct(&pdm, landmarks, params, columns.shape3d[0] >= 0 ? shape3d : NULL,
                           &camera, &result);
            if (result.tau <= RL_ACCEPT_TAU) memcpy(values, result.landmarks, sizeof values);
        }
        for (int i = 0; i < 5; i++) fprintf(out, i ? ", %s" : "%s", fields[columns.lead[i]]);
        for (int i = 0; i < 2 * RL_POINTS; i++) fprintf(out, ", %.6f", (double)values[i]);
        fputc('\n', out);
    }
    if (out && fclose(out) != 0) status = -1;
    if (in) fclose(in);
    free(line);
    free(fields);
    free(names);
    free(header);
    fa_pdm_release(&pdm);
    return status;
}

#endif
