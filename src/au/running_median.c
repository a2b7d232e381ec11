#include "au/running_median.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

/* Histogram layout: tile t holds bins [64 t, 64 t + 64) of every dimension, dimension after
 * dimension. A dimension's values fill a narrow band of bins (HOG: mostly within the first ~450
 * of 1000, geometry: a few hundred of 10000), so with zero pages mapped on demand the tiles (and
 * pages within them) that no value reaches are never resident: 4.7 MB of the 13.6 MB on
 * default.wmv (3.9 HOG, 0.8 geometry), where one row per dimension would touch nearly all. */
enum { TILE_SHIFT = 6, TILE_BINS = 1 << TILE_SHIFT, LOW_BITS = 16 };
enum { PREFETCH_AHEAD = 64 }; /* dimensions */

static uint16_t *allocate_histogram(size_t bytes, size_t *mapped) {
    *mapped = 0;
#if defined(__linux__) && defined(MAP_ANONYMOUS)
    void *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (memory != MAP_FAILED) {
#if defined(MADV_NOHUGEPAGE)
        /* A huge page would make a whole 2 MB resident for one touched bin; only a hint. */
        madvise(memory, bytes, MADV_NOHUGEPAGE);
#endif
        *mapped = bytes;
        return memory;
    }
#endif
    return calloc(bytes, 1);
}

static void free_histogram(uint16_t *histogram, size_t mapped) {
#if defined(__linux__) && defined(MAP_ANONYMOUS)
    if (mapped) {
        munmap(histogram, mapped);
        return;
    }
#endif
    free(histogram);
}

static inline uint16_t *cell_of(const fa_running_median_t *median, int dimension, int bin) {
    size_t tile = (size_t)(bin >> TILE_SHIFT) * (size_t)median->dimension + (size_t)dimension;
    return median->histogram + (tile << TILE_SHIFT) + (bin & (TILE_BINS - 1));
}

fa_status fa_running_median_init(fa_running_median_t *median, int dimension, int bins,
                                 double min_value, double max_value, fa_error_t *error) {
    memset(median, 0, sizeof *median);
    if (dimension <= 0 || bins <= 0 || !(max_value > min_value) ||
        (double)dimension * bins > INT32_MAX)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "running median: bad shape");
    median->dimension = dimension;
    median->bins = bins;
    size_t tiles = ((size_t)bins + TILE_BINS - 1) >> TILE_SHIFT;
    median->histogram = allocate_histogram(tiles * (size_t)dimension * TILE_BINS * sizeof(uint16_t),
                                           &median->histogram_mapped);
    median->carried = calloc((size_t)dimension, 1);
    median->median_bin = calloc((size_t)dimension, sizeof(int32_t));
    median->below = calloc((size_t)dimension, sizeof(int32_t));
    median->median = calloc((size_t)dimension, sizeof(double));
    median->new_bin = calloc((size_t)dimension, sizeof(int32_t));
    median->centres = calloc((size_t)bins, sizeof(double));
    if (!median->histogram || !median->carried || !median->median_bin || !median->below ||
        !median->median || !median->new_bin || !median->centres) {
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
    free(median->carries);
    free(median->carried);
    free(median->median_bin);
    free(median->below);
    free(median->median);
    free(median->new_bin);
    free(median->centres);
    memset(median, 0, sizeof *median);
}

/* The first carry whose cell is not below cell (carry_count when none). */
static int find_carry(const fa_running_median_t *median, int32_t cell) {
    int low = 0, high = median->carry_count;
    while (low < high) {
        int middle = low + (high - low) / 2;
        if (median->carries[middle].cell < cell)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* A bin's low 16 bits wrapped to zero: 65536 more in its carry (capacity was reserved). */
static void add_carry(fa_running_median_t *median, int dimension, int bin) {
    int32_t cell = (int32_t)dimension * median->bins + bin;
    int at = find_carry(median, cell);
    fa_running_median_carry_t *carries = median->carries;
    if (at < median->carry_count && carries[at].cell == cell) {
        carries[at].high++;
        return;
    }
    memmove(carries + at + 1, carries + at, (size_t)(median->carry_count - at) * sizeof *carries);
    carries[at] = (fa_running_median_carry_t){cell, 1};
    median->carry_count++;
    median->carried[dimension] = 1;
}

static inline int32_t bin_count(const fa_running_median_t *median, int dimension, int bin) {
    uint32_t count = *cell_of(median, dimension, bin);
    if (median->carried[dimension]) {
        int32_t cell = (int32_t)dimension * median->bins + bin;
        int at = find_carry(median, cell);
        if (at < median->carry_count && median->carries[at].cell == cell)
            count += median->carries[at].high << LOW_BITS;
    }
    return (int32_t)count;
}

int32_t fa_running_median_count(const fa_running_median_t *median, int dimension, int bin) {
    return bin_count(median, dimension, bin);
}

fa_status fa_running_median_reserve(fa_running_median_t *median, fa_error_t *error) {
    /* A bin wraps when it reaches 65536 values, which takes 65536 updates; from then on one
     * update may wrap one bin of every dimension. */
    if (median->count < (1 << LOW_BITS) - 1 ||
        median->carry_capacity - median->carry_count >= median->dimension)
        return FA_OK;
    size_t capacity = (size_t)median->carry_capacity * 2;
    if (capacity < (size_t)median->carry_count + (size_t)median->dimension)
        capacity = (size_t)median->carry_count + (size_t)median->dimension;
    if (capacity > (size_t)INT32_MAX)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (running median carries)");
    void *bigger = realloc(median->carries, capacity * sizeof *median->carries);
    if (!bigger)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory (running median carries)");
    median->carries = bigger;
    median->carry_capacity = (int)capacity;
    return FA_OK;
}

static inline int bin_of(double value, double scale, double shift, double last) {
    /* OpenCV's convertTo evaluates value * scale + shift with a fused multiply-add (v_fma). */
    double position = fma(value, scale, shift);
    if (position > last) position = last;
    if (!(position >= 0)) position = 0; /* also NaN, which OpenFace would not survive */
    return (int)position;
}

int fa_running_median_bin(const fa_running_median_t *median, double value) {
    return bin_of(value, median->scale, median->shift, median->bins - 1);
}

/* A dimension's count at bin from its first cell, tiles tile cells apart. */
static inline int32_t low_count(const uint16_t *first, size_t tile, int32_t bin) {
    return first[(size_t)(bin >> TILE_SHIFT) * tile + (bin & (TILE_BINS - 1))];
}

/* Restores median_bin = the first bin whose cumulative count reaches cutoff. The cutoff grows
 * by at most one per added value, so the bin moves little (it may cross empty bins). */
static void settle(fa_running_median_t *median, int dimension, int cutoff, size_t tile) {
    int32_t j = median->median_bin[dimension], count = median->below[dimension];
    if (median->carried[dimension]) {
        while (count + bin_count(median, dimension, j) < cutoff)
            count += bin_count(median, dimension, j++);
        while (j > 0 && count >= cutoff)
            count -= bin_count(median, dimension, --j);
    } else { /* the usual case: every count of the dimension fits its 16 bits */
        const uint16_t *first = median->histogram + ((size_t)dimension << TILE_SHIFT);
        while (count + low_count(first, tile, j) < cutoff)
            count += low_count(first, tile, j++);
        while (j > 0 && count >= cutoff)
            count -= low_count(first, tile, --j);
    }
    median->median_bin[dimension] = j;
    median->below[dimension] = count;
}

fa_status fa_running_median_update(fa_running_median_t *median, const double *descriptor,
                                   int update) {
    if (update && fa_running_median_reserve(median, NULL) != FA_OK) return FA_ERROR_NO_MEMORY;
    int dimension = median->dimension;
    if (!median->started) {
        median->started = 1;
        memcpy(median->median, descriptor, (size_t)dimension * sizeof(double));
    }
    /* Locals, as the int32 stores below could alias the struct's ints for the compiler. */
    size_t tile = (size_t)dimension << TILE_SHIFT; /* cells from one tile to the next */
    int32_t *median_bin = median->median_bin, *below = median->below;
    if (update) {
        uint16_t *histogram = median->histogram;
        double scale = median->scale, shift = median->shift, last = median->bins - 1;
        int first_value = median->count == 0;
        int32_t *new_bin = median->new_bin;
        for (int i = 0; i < dimension; i++)
            new_bin[i] = bin_of(descriptor[i], scale, shift, last);
        for (int i = 0; i < dimension; i++) {
            /* Each dimension's cell is on a line of its own, rarely still cached from the last
             * update: fetching a few dimensions ahead overlaps the misses. */
            if (i + PREFETCH_AHEAD < dimension)
                __builtin_prefetch(cell_of(median, i + PREFETCH_AHEAD, new_bin[i + PREFETCH_AHEAD]),
                                   1);
            int bin = new_bin[i];
            uint16_t *cell = histogram + (size_t)(bin >> TILE_SHIFT) * tile +
                             ((size_t)i << TILE_SHIFT) + (bin & (TILE_BINS - 1));
            if (++*cell == 0) add_carry(median, i, bin);
            if (first_value) {
                /* Start the search at the first value: a walk from bin 0 would read (and on
                 * systems without a shared zero page, make resident) the empty bins below. */
                median_bin[i] = bin;
                below[i] = 0;
            } else if (bin < median_bin[i]) {
                below[i]++;
            }
        }
        median->count++;
    }
    if (median->count == 1) {
        memcpy(median->median, descriptor, (size_t)dimension * sizeof(double));
        return FA_OK;
    }
    /* With no value yet the cutoff is 0 and OpenFace's scan stops at bin 0: keep that quirk. */
    int cutoff = (median->count + 1) / 2, search = update || median->count == 0;
    const double *centres = median->centres;
    double *values = median->median;
    for (int i = 0; i < dimension; i++) {
        if (search && i + PREFETCH_AHEAD < dimension)
            __builtin_prefetch(cell_of(median, i + PREFETCH_AHEAD, median_bin[i + PREFETCH_AHEAD]));
        if (search) settle(median, i, cutoff, tile);
        values[i] = centres[median_bin[i]];
    }
    return FA_OK;
}

void fa_running_median_reference_bins(const fa_running_median_t *median, int32_t *bins) {
    int cutoff = (median->count + 1) / 2;
    for (int i = 0; i < median->dimension; i++) {
        int sum = 0;
        bins[i] = -1;
        for (int j = 0; j < median->bins; j++) {
            sum += bin_count(median, i, j);
            if (sum >= cutoff) {
                bins[i] = j;
                break;
            }
        }
    }
}
