#include "au/running_median.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* The histograms are big (17 MB for HOG) and every dimension's row is touched from the first
 * frame on: with 4 KB pages, faulting them in costs tens of milliseconds per video. Zero pages
 * mapped with transparent huge pages where the system offers them cut that to a few. */
static int32_t *allocate_histogram(size_t count, size_t *mapped) {
    *mapped = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE) && defined(MAP_ANONYMOUS)
    size_t size = count * sizeof(int32_t);
    void *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory != MAP_FAILED) {
        madvise(memory, size, MADV_HUGEPAGE); /* only a hint: failure is harmless */
        *mapped = size;
        return memory;
    }
#endif
    return calloc(count, sizeof(int32_t));
}

static void free_histogram(int32_t *histogram, size_t mapped) {
#if defined(__linux__) && defined(MADV_HUGEPAGE) && defined(MAP_ANONYMOUS)
    if (mapped) {
        munmap(histogram, mapped);
        return;
    }
#endif
    free(histogram);
}

fa_status fa_running_median_init(fa_running_median_t *median, int dimension, int bins,
                                 double min_value, double max_value, fa_error_t *error) {
    memset(median, 0, sizeof *median);
    if (dimension <= 0 || bins <= 0 || !(max_value > min_value))
        return fa_error_set(error, FA_ERROR_ARGUMENT, "running median: bad shape");
    median->dimension = dimension;
    median->bins = bins;
    median->histogram =
        allocate_histogram((size_t)dimension * (size_t)bins, &median->histogram_mapped);
    median->median_bin = calloc((size_t)dimension, sizeof(int32_t));
    median->below = calloc((size_t)dimension, sizeof(int32_t));
    median->median = calloc((size_t)dimension, sizeof(double));
    median->centres = calloc((size_t)bins, sizeof(double));
    if (!median->histogram || !median->median_bin || !median->below || !median->median ||
        !median->centres) {
        fa_running_median_release(median);
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (running median)");
    }
    /* OpenCV folds (x - min) * bins / length into one scale and shift (MatExpr algebra). */
    double length = max_value - min_value;
    median->scale = (double)bins * (1.0 / length);
    median->shift = -min_value * (double)bins * (1.0 / length);
    double width = length / (double)bins, half = 0.5 * length / (double)bins;
    for (int j = 0; j < bins; j++)
        median->centres[j] = min_value + (double)j * width + half;
    return FA_OK;
}

void fa_running_median_release(fa_running_median_t *median) {
    if (median->histogram) free_histogram(median->histogram, median->histogram_mapped);
    free(median->median_bin);
    free(median->below);
    free(median->median);
    free(median->centres);
    memset(median, 0, sizeof *median);
}

int fa_running_median_bin(const fa_running_median_t *median, double value) {
    /* OpenCV's convertTo evaluates value * scale + shift with a fused multiply-add (v_fma). */
    double position = fma(value, median->scale, median->shift);
    if (position > median->bins - 1) position = median->bins - 1;
    if (!(position >= 0)) position = 0; /* also NaN, which OpenFace would not survive */
    return (int)position;
}

/* Restores median_bin = the first bin whose cumulative count reaches cutoff. The cutoff grows
 * by at most one per added value, so the bin moves little (it may cross empty bins). */
static void settle(const int32_t *histogram, int32_t *bin, int32_t *below, int cutoff) {
    int32_t j = *bin, count = *below;
    while (count + histogram[j] < cutoff)
        count += histogram[j++];
    while (j > 0 && count >= cutoff)
        count -= histogram[--j];
    *bin = j;
    *below = count;
}

void fa_running_median_update(fa_running_median_t *median, const double *descriptor, int update) {
    int dimension = median->dimension, bins = median->bins;
    if (!median->started) {
        median->started = 1;
        memcpy(median->median, descriptor, (size_t)dimension * sizeof(double));
    }
    if (update) {
        for (int i = 0; i < dimension; i++) {
            int bin = fa_running_median_bin(median, descriptor[i]);
            median->histogram[(size_t)i * bins + bin]++;
            if (bin < median->median_bin[i]) median->below[i]++;
        }
        median->count++;
    }
    if (median->count == 1) {
        memcpy(median->median, descriptor, (size_t)dimension * sizeof(double));
        return;
    }
    /* With no value yet the cutoff is 0 and OpenFace's scan stops at bin 0: keep that quirk. */
    int cutoff = (median->count + 1) / 2;
    for (int i = 0; i < dimension; i++) {
        if (update || median->count == 0)
            settle(median->histogram + (size_t)i * bins, &median->median_bin[i], &median->below[i],
                   cutoff);
        median->median[i] = median->centres[median->median_bin[i]];
    }
}

void fa_running_median_reference_bins(const fa_running_median_t *median, int32_t *bins) {
    int cutoff = (median->count + 1) / 2;
    for (int i = 0; i < median->dimension; i++) {
        const int32_t *row = median->histogram + (size_t)i * median->bins;
        int sum = 0;
        bins[i] = -1;
        for (int j = 0; j < median->bins; j++) {
            sum += row[j];
            if (sum >= cutoff) {
                bins[i] = j;
                break;
            }
        }
    }
}
