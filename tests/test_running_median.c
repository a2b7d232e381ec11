/* The running median's 16-bit counts with carries: bins driven past 65535 and 131071 values,
 * the median moving up and down across such bins and flipping between two of them, compared
 * after every update with a median rescanned over a plain 64-bit histogram kept here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "au/running_median.h"
#include "testing.h"

enum {
    DIMENSION = 4,
    BINS = 130,       /* three tiles of 64 bins, the last one partial */
    PHASE_A = 140000, /* dimension 0: bin 70, dimension 1: bin 50 (two carries each) */
    PHASE_B = 150000, /* then bin 129 (1: clamped there): the medians move up across them */
    PHASE_C = 300000, /* then bin 5: dimension 1's median moves back down across both */
    UPDATES = PHASE_A + PHASE_B + PHASE_C,
};

static int64_t counts[DIMENSION][BINS];

/* OpenFace's rescan: the first bin whose cumulative count reaches (count + 1) / 2. */
static int brute_force_bin(int dimension, int64_t count) {
    int64_t cutoff = (count + 1) / 2, sum = 0;
    for (int j = 0; j < BINS; j++) {
        sum += counts[dimension][j];
        if (sum >= cutoff) return j;
    }
    return -1;
}

static uint32_t random_state = 12345;
static uint32_t next_random(void) {
    random_state = random_state * 1664525u + 1013904223u;
    return random_state >> 8;
}

/* A value whose bin is j (bins are one unit wide over [0, BINS)), or far outside the range. */
static double value_in(int j) {
    if (j < 0) return -1e9;
    if (j >= BINS) return 1e9;
    return j + 0.5;
}

static void fill(double *descriptor, long update) {
    long b = update - PHASE_A, c = update - PHASE_A - PHASE_B;
    /* 0: one bin, then another above it (crossing it upwards). */
    descriptor[0] = value_in(update < PHASE_A ? 70 : 129);
    /* 1: up across bin 50 to bin 130 (clamped), then down across both to bin 5. */
    descriptor[1] = value_in(c >= 0 ? 5 : b >= 0 ? 200 : 50);
    /* 2: two neighbouring bins at random, the median flipping between them while both pass
     * 65535 and 131071, with a few values clamped into the end bins. */
    uint32_t r = next_random();
    descriptor[2] = value_in(r % 1000 == 0 ? -1 : r % 1000 == 1 ? BINS : 63 + (int)(r & 1));
    /* 3: a wide spread drifting upwards over the video, across the tile boundaries. */
    descriptor[3] = value_in((int)(next_random() % 40) + (int)(update / 8000));
}

/* Pages of the histogram's mapping that were read or written (-1 where unknown). */
static long touched_pages(const fa_running_median_t *median) {
#if defined(__linux__)
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (median->histogram_mapped + (size_t)page - 1) / (size_t)page;
    unsigned char *resident = median->histogram_mapped ? malloc(pages) : NULL;
    long touched = -1;
    if (resident && mincore(median->histogram, median->histogram_mapped, resident) == 0) {
        touched = 0;
        for (size_t p = 0; p < pages; p++)
            touched += resident[p] & 1;
    }
    free(resident);
    return touched;
#else
    (void)median;
    return -1;
#endif
}

/* Values of the geometry histogram's shape all near bin 7500: only the tiles holding those bins
 * are touched, not the 7500 empty bins below them (the search starts at the first value). */
static void check_touched_pages(void) {
    enum { GEOMETRY = 238 };
    fa_running_median_t median;
    fa_error_t error = {0};
    CHECK_OK(fa_running_median_init(&median, GEOMETRY, 10000, -60, 60, &error));
    double descriptor[GEOMETRY];
    for (int call = 0; call < 20; call++) {
        for (int i = 0; i < GEOMETRY; i++)
            descriptor[i] = 30.0 + 0.01 * ((call * 7 + i) % 5);
        fa_running_median_update(&median, descriptor, 1);
    }
    long touched = touched_pages(&median);
    /* One tile of 64 bins is 238 * 128 bytes, 8 pages: allow two tiles and their edges. */
    CHECK(touched < 0 || touched <= 20, "%ld pages of %zu touched", touched,
          median.histogram_mapped / 4096);
    printf("values in one tile: %ld pages of the histogram touched\n", touched);
    fa_running_median_release(&median);
}

int main(void) {
    check_touched_pages();
    fa_running_median_t median;
    fa_error_t error = {0};
    CHECK_OK(fa_running_median_init(&median, DIMENSION, BINS, 0.0, (double)BINS, &error));
    double descriptor[DIMENSION];
    int32_t reference[DIMENSION];
    long bin_mismatches = 0, value_mismatches = 0, reference_mismatches = 0, failures = 0;
    long first_mismatch = -1;
    int64_t added = 0;
    for (long call = 0; added < UPDATES; call++) {
        /* Every seventh call adds nothing (OpenFace's failed frames). */
        int update = call % 7 != 3;
        fill(descriptor, (long)added);
        if (fa_running_median_update(&median, descriptor, update) != FA_OK) failures++;
        if (update) {
            for (int i = 0; i < DIMENSION; i++)
                counts[i][fa_running_median_bin(&median, descriptor[i])]++;
            added++;
        }
        if (added < 2) continue; /* the median is the descriptor itself */
        fa_running_median_reference_bins(&median, reference);
        for (int i = 0; i < DIMENSION; i++) {
            int expected = brute_force_bin(i, added);
            int wrong = median.median_bin[i] != expected;
            bin_mismatches += wrong;
            value_mismatches += median.median[i] != median.centres[expected];
            reference_mismatches += reference[i] != expected;
            if (wrong && first_mismatch < 0) first_mismatch = call;
        }
    }
    CHECK(failures == 0, "%ld updates failed", failures);
    CHECK(median.count == added && added == UPDATES, "%d values added, %lld expected", median.count,
          (long long)added);
    CHECK(bin_mismatches == 0 && value_mismatches == 0 && reference_mismatches == 0,
          "median bins wrong %ld times (first at call %ld), values %ld, rescans %ld",
          bin_mismatches, first_mismatch, value_mismatches, reference_mismatches);
    long count_mismatches = 0;
    for (int i = 0; i < DIMENSION; i++)
        for (int j = 0; j < BINS; j++)
            count_mismatches += fa_running_median_count(&median, i, j) != counts[i][j];
    CHECK(count_mismatches == 0, "%ld bins with a wrong count", count_mismatches);
    /* The scenario reached what it means to test. */
    CHECK(counts[0][70] > 131071 && counts[1][50] > 131071 && counts[1][BINS - 1] > 131071 &&
              counts[2][63] > 131071 && counts[2][64] > 131071,
          "bins past 131071: %lld %lld %lld %lld %lld", (long long)counts[0][70],
          (long long)counts[1][50], (long long)counts[1][BINS - 1], (long long)counts[2][63],
          (long long)counts[2][64]);
    CHECK(median.median_bin[0] == BINS - 1 && median.median_bin[1] == 5, "final median bins %d %d",
          median.median_bin[0], median.median_bin[1]);
    CHECK(median.carry_count > 0 && median.carry_capacity >= median.carry_count, "%d carries in %d",
          median.carry_count, median.carry_capacity);
    printf("%d values, %d bins with carries\n", median.count, median.carry_count);
    fa_running_median_release(&median);

    /* Below 65535 values nothing is allocated for carries. */
    CHECK_OK(fa_running_median_init(&median, DIMENSION, BINS, 0.0, (double)BINS, &error));
    for (int i = 0; i < DIMENSION; i++)
        descriptor[i] = value_in(7);
    for (int call = 0; call < 65535; call++)
        fa_running_median_update(&median, descriptor, 1);
    CHECK(median.carries == NULL && median.median_bin[0] == 7, "carries %p before 65535 values",
          (void *)median.carries);
    fa_running_median_update(&median, descriptor, 1);
    CHECK(median.carry_count == DIMENSION && fa_running_median_count(&median, 3, 7) == 65536 &&
              median.median_bin[3] == 7,
          "65536 values in one bin: %d carries, count %d", median.carry_count,
          fa_running_median_count(&median, 3, 7));
    fa_running_median_release(&median);
    return test_finish("test_running_median");
}
