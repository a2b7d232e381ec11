/* A small test harness: checks count failures, main() returns non-zero if any failed, and
 * helpers read OpenFace's reference outputs in ../shared/data. */
#ifndef FACEAU_TESTING_H
#define FACEAU_TESTING_H

#include <stddef.h>
#include <stdio.h>

#include "faceau.h"

extern int test_checks_failed, test_checks_passed;

#define CHECK(condition, ...)                                                                   \
    do {                                                                                       \
        if (condition) {                                                                       \
            test_checks_passed++;                                                              \
        } else {                                                                               \
            test_checks_failed++;                                                              \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #condition);      \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

#define CHECK_OK(call)                                                                         \
    do {                                                                                       \
        fa_error_t check_error_ = {0};                                                         \
        fa_status check_status_ = (call);                                                      \
        (void)check_error_;                                                                    \
        CHECK(check_status_ == FA_OK, "status %d", (int)check_status_);                        \
    } while (0)

/* TEST_UNDER_ASAN is defined under AddressSanitizer, whose shadow memory and quarantine make
 * resident-memory figures meaningless. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif

/* This process's resident memory now, in KB (/proc/self/statm; 0 if unreadable). */
long test_resident_kb(void);

/* A new folder /tmp/faceau_<name>_XXXXXX in path (CHECKed); test_remove_folder deletes it. */
void test_temporary_folder(char *path, size_t size, const char *name);
void test_remove_folder(const char *path);

/* Runs a shell command that sends its stderr to <folder>/stderr.txt; that text goes into output.
 * Returns the exit code, or 128 + signal. */
int test_run_shell(const char *folder, const char *command, char *output, size_t size);

/* Runs the faceau program (FACEAU_CLI) with arguments (a shell fragment, -q added) after an
 * optional command prefix (e.g. dropping root); stderr goes to <folder>/stderr.txt and into
 * output. Returns the exit code, or 128 + signal. */
int test_run_cli(const char *folder, const char *prefix, const char *arguments, char *output,
                 size_t size);

/* test_run_cli with --models <test_models_dir()> added to the arguments. */
int test_run_cli_models(const char *folder, const char *arguments, char *output, size_t size);

/* Whether a file or folder exists (stat succeeds). */
int test_exists(const char *path);

/* Prints the summary and returns the process exit code. */
int test_finish(const char *name);

/* Path of a file below the shared folder (models/, data/): $FACEAU_SHARED or the build's
 * default (../shared beside the repository). Returns a static buffer per call slot. */
const char *test_shared_path(const char *relative);
const char *test_models_dir(void); /* $FACEAU_MODELS or <shared>/models/openface */
/* This test process's own model cache folder (also in $FACEAU_CACHE; "" if none could be
 * made), empty at start and removed at exit. */
const char *test_cache_dir(void);

/* An OpenFace CSV read whole: the header's column names and all rows as doubles. */
typedef struct test_csv {
    int columns, rows;
    char **names;
    double *values; /* rows * columns */
} test_csv_t;

int test_csv_load(const char *path, test_csv_t *csv);
int test_csv_column(const test_csv_t *csv, const char *name); /* -1 if absent */
double test_csv_value(const test_csv_t *csv, int row, int column);
void test_csv_free(test_csv_t *csv);

/* An OpenFace .hog file: per frame a success flag and FA_HOG_SIZE floats. */
typedef struct test_hog {
    int frames;
    float *success; /* +1 / -1 */
    float *values;  /* frames * FA_HOG_SIZE */
} test_hog_t;

int test_hog_load(const char *path, test_hog_t *hog);
void test_hog_free(test_hog_t *hog);

/* OpenFace AU columns compared with CHECKs (see testing.c); returns the overall presence share. */
double test_compare_aus(const char *name, const test_csv_t *ours, const test_csv_t *reference,
                        double flat_spread, double min_pearson, double max_au_diff,
                        double min_presence_equal, double min_presence_overall);

/* Pearson correlation of two series. */
double test_pearson(const double *a, const double *b, int n);

#endif
