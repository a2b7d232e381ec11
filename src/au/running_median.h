/* OpenFace's histogram running median (PIPELINE_SPEC §7, FaceAnalyser::UpdateRunningMedian),
 * kept incrementally: per dimension the current median bin and the count below it, so an update
 * costs O(dimension) plus the bins the median moves over, instead of a rescan of every bin. */
#ifndef FACEAU_AU_RUNNING_MEDIAN_H
#define FACEAU_AU_RUNNING_MEDIAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct fa_running_median {
    int dimension, bins;
    int count;               /* descriptors added to the histogram */
    int started;             /* OpenFace allocates the histogram at the first call */
    double scale, shift;     /* bin position = value * scale + shift, as OpenCV evaluates it */
    double *centres;         /* bins: the value a median in each bin takes */
    int32_t *histogram;      /* dimension x bins */
    size_t histogram_mapped; /* bytes when mapped directly (see running_median.c), else 0 */
    int32_t *median_bin;     /* dimension: first bin whose cumulative count reaches the cutoff */
    int32_t *below;          /* dimension: count in the bins before median_bin */
    double *median;          /* dimension */
} fa_running_median_t;

fa_status fa_running_median_init(fa_running_median_t *median, int dimension, int bins,
                                 double min_value, double max_value, fa_error_t *error);
void fa_running_median_release(fa_running_median_t *median);

/* One call of UpdateRunningMedian: adds descriptor to the histogram when update is set, then
 * sets the median (the descriptor itself while exactly one was added). */
void fa_running_median_update(fa_running_median_t *median, const double *descriptor, int update);

/* The histogram bin of a value (truncated after clamping, as OpenFace does). */
int fa_running_median_bin(const fa_running_median_t *median, double value);

/* Brute-force median bins over the current histogram (OpenFace's full rescan), for tests. */
void fa_running_median_reference_bins(const fa_running_median_t *median, int32_t *bins);

#endif
