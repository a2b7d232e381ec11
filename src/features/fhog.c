/* FHOG as dlib 19.24's extract_fhog_features computes it (cell size 8) in a build for plain
 * x86-64, i.e. SSE2 only; that build, and no other, reproduces OpenFace 2.2's .hog files bit
 * for bit. Every float operation below mirrors one of dlib's, in dlib's order. */
#include "features/fhog.h"

#include <math.h>
#include <string.h>

enum { CELLS = FA_FHOG_GRID - 2, HOG_CELLS = CELLS - 2, ROW_FLOATS = FA_FHOG_GRID * FA_FHOG_BINS };

typedef float histogram_t[FA_FHOG_GRID][FA_FHOG_GRID][FA_FHOG_BINS];

/* dlib's unit vectors, rounded to 4 digits; exactly these, as floats. */
static const float direction_x[9] = {1.0000f, 0.9397f, 0.7660f, 0.500f, 0.1736f,
                                     -0.1736f, -0.5000f, -0.7660f, -0.9397f};
static const float direction_y[9] = {0.0000f, 0.3420f, 0.6428f, 0.8660f, 0.9848f,
                                     0.9848f, 0.8660f, 0.6428f, 0.3420f};

/* Gradient of one pixel; for colour, the channel with the largest squared length. dlib's SIMD
 * loop keeps red only if strictly stronger than green and that only if strictly stronger than
 * blue (ties go to the later channel); its scalar tail moves off red only to a strictly
 * stronger channel (ties go to the earlier one). */
static void pixel_gradient(const uint8_t *above, const uint8_t *row, const uint8_t *below,
                           int x, int channels, int simd_ties, int *gx, int *gy)
{
    if (channels == 1) {
        *gx = row[x + 1] - row[x - 1];
        *gy = below[x] - above[x];
        return;
    }
    int dx[3], dy[3], length[3]; /* red, green, blue; BGR in memory */
    for (int c = 0; c < 3; c++) {
        int byte = 2 - c;
        dx[c] = row[3 * (x + 1) + byte] - row[3 * (x - 1) + byte];
        dy[c] = below[3 * x + byte] - above[3 * x + byte];
        length[c] = dx[c] * dx[c] + dy[c] * dy[c];
    }
    int best;
    if (simd_ties) {
        best = length[0] > length[1] ? 0 : 1;
        best = length[best] > length[2] ? best : 2;
    } else {
        best = 0;
        if (length[1] > length[best]) best = 1;
        if (length[2] > length[best]) best = 2;
    }
    *gx = dx[best];
    *gy = dy[best];
}

/* One of 18 contrast-sensitive orientations; a zero gradient gives bin 0. */
static int orientation_bin(float gx, float gy)
{
    float best_dot = 0;
    int bin = 0;
    for (int o = 0; o < 9; o++) {
        float dot = gx * direction_x[o] + gy * direction_y[o];
        if (dot > best_dot) {
            best_dot = dot;
            bin = o;
        } else if (-dot > best_dot) {
            best_dot = -dot;
            bin = o + 9;
        }
    }
    return bin;
}

/* dlib's SIMD loop: xp = (x + 0.5)/8 + 0.5 truncated, and the magnitude is split along x
 * first (vx*v) and then along y, which rounds differently from the scalar tail. */
void fa_fhog_votes_simd_columns_c(const uint8_t *above, const uint8_t *row, const uint8_t *below,
                                  int channels, float vy0, float vy1, fa_fhog_votes_t *votes)
{
    for (int x = 1; x < FA_FHOG_SIMD_END; x++) {
        int gx, gy;
        pixel_gradient(above, row, below, x, channels, 1, &gx, &gy);
        float v = sqrtf((float)(gx * gx + gy * gy));
        int bin = orientation_bin((float)gx, (float)gy);
        float xp = ((float)x + 0.5f) / (float)FA_FHOG_CELL + 0.5f;
        int ixp = (int)xp;
        float vx0 = xp - (float)ixp;
        float vx1 = 1.0f - vx0;
        float near = vx1 * v, far = vx0 * v;
        int slot = x + FA_FHOG_VOTE_PAD;
        votes->index[slot] = ixp * FA_FHOG_BINS + bin;
        votes->top_left[slot] = vy1 * near;
        votes->bottom_left[slot] = vy0 * near;
        votes->top_right[slot] = vy1 * far;
        votes->bottom_right[slot] = vy0 * far;
    }
}

/* dlib's scalar tail (x = 105..110): xp in double, weights multiplied (vy*vx)*v. */
static void votes_tail_columns(const uint8_t *above, const uint8_t *row, const uint8_t *below,
                               int channels, float vy0, float vy1, fa_fhog_votes_t *votes)
{
    for (int x = FA_FHOG_SIMD_END; x < FA_FHOG_SIDE - 1; x++) {
        int gx, gy;
        pixel_gradient(above, row, below, x, channels, 0, &gx, &gy);
        int bin = orientation_bin((float)gx, (float)gy);
        float v = sqrtf((float)gx * (float)gx + (float)gy * (float)gy);
        float xp = (float)(((double)x + 0.5) / (double)FA_FHOG_CELL - 0.5);
        int ixp = (int)floorf(xp);
        float vx0 = xp - (float)ixp;
        float vx1 = (float)(1.0 - (double)vx0);
        int slot = x + FA_FHOG_VOTE_PAD;
        votes->index[slot] = (ixp + 1) * FA_FHOG_BINS + bin;
        votes->top_left[slot] = vy1 * vx1 * v;
        votes->bottom_left[slot] = vy0 * vx1 * v;
        votes->top_right[slot] = vy1 * vx0 * v;
        votes->bottom_right[slot] = vy0 * vx0 * v;
    }
}

enum { BLOCK_ROWS = 4, GROUPS = 15, LAG = 2 };

/* Adds the votes of `rows` consecutive image rows. Each cell must receive its additions in
 * dlib's raster order, and cell k gets them from pixel groups k-1 (right votes) and k (left
 * votes) of each row, a group being the 8 slots 8k..8k+7. Running row j two groups behind row
 * j-1 keeps the rows handled together on disjoint cells, so interleaving them pixel by pixel
 * is exact, and it hides the store-to-load latency of runs of equal bins. */
static void scatter_block(const fa_fhog_votes_t *votes, float *const *hist_top, int rows)
{
    for (int step = 0; step < GROUPS + LAG * (rows - 1); step++) {
        int first = step >= GROUPS ? (step - GROUPS) / LAG + 1 : 0;
        int last = step / LAG < rows - 1 ? step / LAG : rows - 1;
        for (int i = 0; i < 8; i++) {
            for (int j = first; j <= last; j++) {
                const fa_fhog_votes_t *v = &votes[j];
                int slot = (step - LAG * j) * 8 + i, left = v->index[slot];
                float *top = hist_top[j], *bottom = top + ROW_FLOATS;
                top[left] += v->top_left[slot];
                bottom[left] += v->bottom_left[slot];
                top[left + FA_FHOG_BINS] += v->top_right[slot];
                bottom[left + FA_FHOG_BINS] += v->bottom_right[slot];
            }
        }
    }
}

/* Bilinear votes of pixels 1..110 (row and column 0 and 111 have no centred gradient) into
 * hist, which has a one-cell border ring. */
static void vote_image(const fa_image_t *face, fa_fhog_votes_fn votes_simd_columns,
                       histogram_t hist)
{
    fa_fhog_votes_t votes[BLOCK_ROWS];
    memset(votes, 0, sizeof votes); /* padding slots: weight 0 into cell 0 */
    memset(hist, 0, sizeof(histogram_t));
    for (int top_row = 1; top_row < FA_FHOG_SIDE - 1; top_row += BLOCK_ROWS) {
        int rows = FA_FHOG_SIDE - 1 - top_row < BLOCK_ROWS ? FA_FHOG_SIDE - 1 - top_row
                                                           : BLOCK_ROWS;
        float *hist_top[BLOCK_ROWS];
        for (int j = 0; j < rows; j++) {
            int y = top_row + j;
            const uint8_t *row = face->data + (ptrdiff_t)y * face->stride;
            const uint8_t *above = row - face->stride, *below = row + face->stride;
            float yp = (float)(((double)y + 0.5) / (double)FA_FHOG_CELL - 0.5);
            int iyp = (int)floorf(yp);
            float vy0 = yp - (float)iyp;
            float vy1 = (float)(1.0 - (double)vy0);
            votes_simd_columns(above, row, below, face->channels, vy0, vy1, &votes[j]);
            votes_tail_columns(above, row, below, face->channels, vy0, vy1, &votes[j]);
            hist_top[j] = &hist[iyp + 1][0][0];
        }
        scatter_block(votes, hist_top, rows);
    }
}

/* Energy of each inner cell: sum over 9 orientations of (h[o] + h[o+9])^2. */
static void cell_energies(const histogram_t hist, float energy[CELLS][CELLS])
{
    for (int r = 0; r < CELLS; r++) {
        for (int c = 0; c < CELLS; c++) {
            const float *h = hist[r + 1][c + 1];
            float sum = 0;
            for (int o = 0; o < 9; o++) sum += (h[o] + h[o + 9]) * (h[o] + h[o + 9]);
            energy[r][c] = sum;
        }
    }
}

/* dlib's SSE2 horizontal sum of a 4-lane vector. */
static float lane_sum(const float lane[4])
{
    return (lane[0] + lane[2]) + (lane[1] + lane[3]);
}

static float min_float(float a, float b)
{
    return a < b ? a : b;
}

/* The 31 features of output cell (y, x) = grid cell (y+1, x+1), normalised by the four 2x2
 * blocks holding it; lane k is dlib's k-th SIMD lane: blocks at (1,1) (0,1) (1,0) (0,0). */
static void cell_features(const float *h, const float (*energy)[CELLS], int y, int x, float *out)
{
    static const int block_dy[4] = {1, 0, 1, 0}, block_dx[4] = {1, 1, 0, 0};
    float nn[4], scale[4], texture[4] = {0, 0, 0, 0};
    for (int k = 0; k < 4; k++) {
        const float *e0 = &energy[y + block_dy[k]][x + block_dx[k]], *e1 = e0 + CELLS;
        float block = ((e0[0] + e0[1]) + e1[0]) + e1[1];
        nn[k] = 0.2f * sqrtf(block + 0.0001f);
        scale[k] = 0.1f / nn[k];
    }
    for (int o = 0; o < FA_FHOG_BINS; o += 3) {
        float part[3][4];
        for (int j = 0; j < 3; j++) {
            for (int k = 0; k < 4; k++) part[j][k] = min_float(h[o + j], nn[k]) * scale[k];
            out[o + j] = lane_sum(part[j]);
        }
        for (int k = 0; k < 4; k++) texture[k] += (part[0][k] + part[1][k]) + part[2][k];
    }
    for (int o = 0; o < 9; o++) {
        float part[4];
        for (int k = 0; k < 4; k++) part[k] = min_float(h[o] + h[o + 9], nn[k]) * scale[k];
        out[FA_FHOG_BINS + o] = lane_sum(part);
    }
    for (int k = 0; k < 4; k++) out[27 + k] = texture[k] * (float)(2 * 0.2357);
}

void fa_fhog_normalise_c(const float *hist, const float *energy, float *features)
{
    for (int y = 0; y < HOG_CELLS; y++) {
        for (int x = 0; x < HOG_CELLS; x++) {
            cell_features(hist + ((y + 2) * FA_FHOG_GRID + x + 2) * FA_FHOG_BINS,
                          (const float(*)[CELLS])energy, y, x,
                          features + (y * HOG_CELLS + x) * FA_HOG_CHANNELS);
        }
    }
}

static void extract_with(const fa_image_t *face, float *features,
                         fa_fhog_votes_fn votes_simd_columns, fa_fhog_normalise_fn normalise)
{
    if (face->width != FA_FHOG_SIDE || face->height != FA_FHOG_SIDE ||
        (face->channels != 1 && face->channels != 3)) {
        memset(features, 0, sizeof(float) * FA_HOG_SIZE);
        return;
    }
    histogram_t hist;
    float energy[CELLS][CELLS];
    vote_image(face, votes_simd_columns, hist);
    cell_energies(hist, energy);
    normalise(&hist[0][0][0], &energy[0][0], features);
}

void fa_fhog_extract_reference(const fa_image_t *face, float *features)
{
    extract_with(face, features, fa_fhog_votes_simd_columns_c, fa_fhog_normalise_c);
}

void fa_fhog_extract(const fa_image_t *face, float *features)
{
#ifdef FA_FHOG_HAVE_AVX2
    if (__builtin_cpu_supports("avx2")) {
        extract_with(face, features, fa_fhog_votes_simd_columns_avx2, fa_fhog_normalise_avx2);
        return;
    }
#endif
    extract_with(face, features, fa_fhog_votes_simd_columns_c, fa_fhog_normalise_c);
}
