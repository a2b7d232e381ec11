/* FHOG features exactly as dlib 19.x extract_fhog_features computes them (cell size 8), as
 * OpenFace calls it on the aligned face (PIPELINE_SPEC §5), flattened in OpenFace's order. */
#ifndef FACEAU_FEATURES_FHOG_H
#define FACEAU_FEATURES_FHOG_H

#include <stdint.h>

#include "core/error.h"

/* FHOG of a 112x112 BGR (or gray) face into features[FA_HOG_SIZE]: index (row*12+col)*31+o.
 * No allocation. A face of any other size gives all zeros. */
void fa_fhog_extract(const fa_image_t *face, float *features);

/* The portable C path of fa_fhog_extract; same output bit for bit (for the kernel test). */
void fa_fhog_extract_reference(const fa_image_t *face, float *features);

/* Internal to fhog*.c. The geometry of a 112x112 face at cell size 8, and the columns that
 * dlib's 8-wide SIMD loop covers (x = 1..104); columns 105..110 take its scalar tail. */
enum {
    FA_FHOG_SIDE = 112,
    FA_FHOG_CELL = 8,
    FA_FHOG_GRID = FA_FHOG_SIDE / FA_FHOG_CELL + 2, /* 14 cells plus a border ring */
    FA_FHOG_BINS = 18,
    FA_FHOG_SIMD_END = 105,
};

/* One image row's bilinear votes. Slot x + FA_FHOG_VOTE_PAD holds pixel x: it adds
 * top_left/bottom_left to float index[] of histogram rows iyp+1 and iyp+2 (index counts from
 * the row start, cell column included) and top_right/bottom_right to index[] + FA_FHOG_BINS.
 * Slots of pixels outside 1..110 hold zero weights, so every cell's pixels fill 8 slots. */
enum { FA_FHOG_VOTE_PAD = 4, FA_FHOG_VOTE_SLOTS = FA_FHOG_SIDE + 8 };

typedef struct fa_fhog_votes {
    int32_t index[FA_FHOG_VOTE_SLOTS];
    float top_left[FA_FHOG_VOTE_SLOTS], bottom_left[FA_FHOG_VOTE_SLOTS];
    float top_right[FA_FHOG_VOTE_SLOTS], bottom_right[FA_FHOG_VOTE_SLOTS];
} fa_fhog_votes_t;

/* Votes of the SIMD columns of one image row (row pointers for y-1, y, y+1). */
typedef void (*fa_fhog_votes_fn)(const uint8_t *above, const uint8_t *row, const uint8_t *below,
                                 int channels, float vy0, float vy1, fa_fhog_votes_t *votes);

/* Block normalisation of hist[GRID][GRID][BINS] with the cell energies energy[GRID-2][GRID-2]
 * into the FA_HOG_SIZE features. */
typedef void (*fa_fhog_normalise_fn)(const float *hist, const float *energy, float *features);

void fa_fhog_votes_simd_columns_c(const uint8_t *above, const uint8_t *row, const uint8_t *below,
                                  int channels, float vy0, float vy1, fa_fhog_votes_t *votes);
void fa_fhog_normalise_c(const float *hist, const float *energy, float *features);
#if defined(__x86_64__) || defined(__i386__)
#define FA_FHOG_HAVE_AVX2 1
void fa_fhog_votes_simd_columns_avx2(const uint8_t *above, const uint8_t *row,
                                     const uint8_t *below, int channels, float vy0, float vy1,
                                     fa_fhog_votes_t *votes);
void fa_fhog_normalise_avx2(const float *hist, const float *energy, float *features);
#endif

#endif
