/* OpenFace's histogram running median (PIPELINE_SPEC §7, FaceAnalyser::UpdateRunningMedian),
 * kept incrementally: per dimension the current median bin and the count below it, so an update
 * costs O(dimension) plus the bins the median moves over, instead of a rescan of every bin.
 *
 * The counts are stored in 16 bits; the rare bin that passes 65535 (only after 65535 updates,
 * over half an hour of video) keeps its higher bits in a small sorted table of carries, so every
 * count, hence every median, is exactly OpenFace's. */
#ifndef FACEAU_AU_RUNNING_MEDIAN_H
#define FACEAU_AU_RUNNING_MEDIAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* The high bits of one count: count = low 16 bits in the histogram + 65536 * high. */
typedef struct fa_running_median_carry {
    int32_t cell; /* dimension index * bins + bin */
    uint32_t high;
} fa_running_median_carry_t;

typedef struct fa_running_median {
    int dimension, bins;
    int count;               /* descriptors added to the histogram */
    int started;             /* OpenFace allocates the histogram at the first call */
    double scale, shift;     /* bin position = value * scale + shift, as OpenCV evaluates it */
    double *centres;         /* bins: the value a median in each bin takes */
    uint16_t *histogram;     /* low 16 bits of every count, in tiles of bins (running_median.c) */
    size_t histogram_mapped; /* bytes when mapped directly, else 0 */
    fa_running_median_carry_t *carries; /* sorted by cell */
    int carry_count, carry_capacity;
    uint8_t *carried;    /* dimension: 1 once a bin of the dimension has a carry */
    int32_t *median_bin; /* dimension: first bin whose cumulative count reaches the cutoff */
    int32_t *below;      /* dimension: count in the bins before median_bin */
    double *median;      /* dimension */
    int32_t *new_bin;    /* dimension: the bin of each value of the update in progress */
} fa_running_median_t;

fa_status fa_running_median_init(fa_running_median_t *median, int dimension, int bins,
                                 double min_value, double max_value, fa_error_t *error);
void fa_running_median_release(fa_running_median_t *median);

/* Makes room for the carries the next update may create (it allocates only once 65535
 * descriptors were added, and then rarely), so that the update itself cannot fail. */
fa_status fa_running_median_reserve(fa_running_median_t *median, fa_error_t *error);

/* One call of UpdateRunningMedian: adds descriptor to the histogram when update is set, then
 * sets the median (the descriptor itself while exactly one was added). Reserves first; returns
 * FA_ERROR_NO_MEMORY, with nothing changed, when that fails. */
fa_status fa_running_median_update(fa_running_median_t *median, const double *descriptor,
                                   int update);

/* The histogram bin of a value (truncated after clamping, as OpenFace does). */
int fa_running_median_bin(const fa_running_median_t *median, double value);

/* The full count of one bin of one dimension. */
int32_t fa_running_median_count(const fa_running_median_t *median, int dimension, int bin);

/* Brute-force median bins over the current histogram (OpenFace's full rescan), for tests. */
void fa_running_median_reference_bins(const fa_running_median_t *median, int32_t *bins);

#endif
