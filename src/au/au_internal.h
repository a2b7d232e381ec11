/* Internals of the AU stage shared by its files (and by its tests). */
#ifndef FACEAU_AU_AU_INTERNAL_H
#define FACEAU_AU_AU_INTERNAL_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "au/au.h"
#include "au/running_median.h"

enum {
    FA_AU_FEATURES = FA_HOG_SIZE + FA_GEOMETRY_SIZE, /* 4702: [HOG, geometry] */
    FA_AU_NAME_SIZE = 16,
    FA_AU_MAX_INIT_FRAMES = 3000, /* FaceAnalyser::max_init_frames */
};

/* The .dat types (OpenFace's RegressorType); the values are the file's first int32. */
typedef enum fa_au_regressor_type {
    FA_AU_SVR_STATIC = 0,
    FA_AU_SVR_DYNAMIC = 1,
    FA_AU_SVM_STATIC = 4,
    FA_AU_SVM_DYNAMIC = 5,
} fa_au_regressor_type;

/* One .dat file as read. */
typedef struct fa_au_regressor {
    int type;
    double cutoff; /* SVR dynamic; -1 otherwise */
    double bias;
    double positive, negative; /* SVM classes */
    double *means;             /* FA_AU_FEATURES */
    double *weights;           /* FA_AU_FEATURES */
} fa_au_regressor_t;

fa_status fa_au_regressor_parse(const char *data, size_t size, const char *name,
                                fa_au_regressor_t *regressor, fa_error_t *error);
void fa_au_regressor_release(fa_au_regressor_t *regressor);

/* Models of one kind stacked as OpenFace stacks them: one means vector (the first file's) and
 * one weight matrix, here laid out feature-major (row k = feature k's weight in each model, rows
 * padded to stride with zeros) so that one pass over the input feeds every model. */
typedef enum fa_au_group_index {
    FA_AU_GROUP_SVR_STATIC,
    FA_AU_GROUP_SVR_DYNAMIC,
    FA_AU_GROUP_SVM_STATIC,
    FA_AU_GROUP_SVM_DYNAMIC,
    FA_AU_GROUPS
} fa_au_group_index;

typedef struct fa_au_group {
    int count, stride;
    double *means;   /* FA_AU_FEATURES */
    double *weights; /* FA_AU_FEATURES * stride */
    double biases[FA_MAX_AUS], cutoffs[FA_MAX_AUS], positive[FA_MAX_AUS], negative[FA_MAX_AUS];
    char names[FA_MAX_AUS][FA_AU_NAME_SIZE];
} fa_au_group_t;

/* Where the output at a sorted position comes from. */
typedef struct fa_au_source {
    int group, model;
} fa_au_source_t;

struct fa_au_models {
    fa_au_group_t groups[FA_AU_GROUPS];
    int count[2];                          /* [0] intensity, [1] presence */
    fa_au_source_t sources[2][FA_MAX_AUS]; /* sorted by name */
};

/* sums[j] = sum over features k of input[k] * weight[k][j], accumulated in feature order from
 * zero as OpenCV's gemm does; sums has group->stride entries. */
void fa_au_group_dot(const fa_au_group_t *group, const double *input, double *sums);

/* The same for two inputs in one pass over the weights. */
void fa_au_group_dot2(const fa_au_group_t *group, const double *input_a, const double *input_b,
                      double *sums_a, double *sums_b);

/* The plain C kernels and the AVX2 ones (the same bits; these fall back to the plain ones where
 * the build has no AVX2); fa_au_group_dot and fa_au_group_dot2 pick one. */
void fa_au_group_dot_reference(const fa_au_group_t *group, const double *input, double *sums);
void fa_au_group_dot2_reference(const fa_au_group_t *group, const double *input_a,
                                const double *input_b, double *sums_a, double *sums_b);
void fa_au_group_dot_avx2(const fa_au_group_t *group, const double *input, double *sums);
void fa_au_group_dot2_avx2(const fa_au_group_t *group, const double *input_a,
                           const double *input_b, double *sums_a, double *sums_b);

/* Offline post-processing of one AU's series (frames values): offset by the cutoff quantile
 * (cutoff -1: none), clip to [0, 5], zero failed frames, 3-tap smoothing. scratch: frames. */
void fa_au_finish_intensity(double *series, const uint8_t *success, size_t frames, double cutoff,
                            double *scratch);
/* 7-frame majority vote of one presence series. scratch: frames. */
void fa_au_finish_presence(double *series, size_t frames, double *scratch);

static inline int fa_au_group_is_dynamic(int group) {
    return group == FA_AU_GROUP_SVR_DYNAMIC || group == FA_AU_GROUP_SVM_DYNAMIC;
}

static inline int fa_au_group_is_presence(int group) {
    return group == FA_AU_GROUP_SVM_STATIC || group == FA_AU_GROUP_SVM_DYNAMIC;
}

/* Per-video state (FaceAnalyser's running medians and prediction history). */
struct fa_au_state {
    const fa_au_models_t *models;
    int online;
    long frames_tracking; /* every call, as FaceAnalyser::frames_tracking */
    long successes;       /* successful calls */
    fa_running_median_t hog_median, geometry_median;

    /* Scratch of one frame: features, features - means, and that minus the medians. */
    double features[FA_AU_FEATURES], centred[FA_AU_FEATURES], normalised[FA_AU_FEATURES];
    double values[FA_AU_GROUPS][FA_MAX_AUS]; /* decision values, bias included */
    double plain[FA_AU_GROUPS][FA_MAX_AUS];  /* dynamic groups: (x - means) . w, no median */

    /* History for the offline post-processing, one row per frame (fa_au_history_*): success,
     * the presence signs (the SVM output is its stored class for that sign), the raw
     * intensities (0 on failed frames). The last rows sit in memory; older blocks go to an
     * unlinked temporary file, so memory stays constant however long the video. */
    size_t frames;
    size_t row_size;       /* bytes per row */
    uint8_t *block;        /* FA_AU_HISTORY_BLOCK rows */
    size_t block_rows;     /* rows in block */
    size_t block_capacity; /* FA_AU_HISTORY_BLOCK, smaller in tests */
    FILE *spill;           /* NULL until the first block is full */
    size_t spilled;        /* rows in spill */

    /* Re-prediction data for the first FA_AU_MAX_INIT_FRAMES successful frames: instead of
     * OpenFace's 4702 features per frame, the dynamic models' (x - means) . w (see postprocess.c).
     */
    int dynamic_count;
    size_t init_frames;
    double *init_sums; /* FA_AU_MAX_INIT_FRAMES x dynamic_count: SVR dynamic, then SVM dynamic */

    /* Online correction (CorrectOnlineAUs): per intensity AU a 200-bin histogram. */
    int32_t *online_histogram;
    int online_count;

    /* Post-processing (postprocess.c): per-AU offsets, the final medians' dot products with the
     * dynamic models (the first successful frames are re-predicted from them as they are read),
     * and a window of 7 finished rows around the row being read. */
    int finished;
    int repredicting; /* history rows of the first successful frames are re-predicted */
    double median_sums[FA_AU_GROUPS][FA_MAX_AUS];
    double offsets[FA_MAX_AUS];
    size_t read_position;  /* rows of the history read so far */
    size_t successes_read; /* successful rows among them (init_sums index) */
    size_t next_row;       /* the next row fa_au_state_next_row gives */
    double window[7][2][FA_MAX_AUS];
    uint8_t window_success[7];
    double *all_intensity, *all_presence; /* fa_au_state_postprocess_all (tests) */
};

enum { FA_AU_HISTORY_BLOCK = 4096 };

/* Rows kept in memory before a block goes to the temporary file (tests use a few, to spill
 * short inputs); call before the first frame. */
void fa_au_state_set_history_block(fa_au_state_t *state, size_t rows);

/* Row layout: success byte, count[1] sign bytes, padding to 8, count[0] doubles. */
static inline size_t fa_au_history_row_size(const fa_au_models_t *models) {
    return ((size_t)(1 + models->count[1]) + 7) / 8 * 8 + sizeof(double) * (size_t)models->count[0];
}

#endif
