#include "testing.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

int test_checks_failed, test_checks_passed;

/* Every test process gets its own empty model cache folder in FACEAU_CACHE, which the faceau
 * programs it runs inherit, removed when it exits: no test reads or writes the user's cache or
 * depends on an earlier run's. */
static char cache_dir[64];

static void remove_cache_dir(void)
{
    DIR *folder = opendir(cache_dir);
    if (!folder) return;
    char path[sizeof cache_dir + 256];
    for (struct dirent *entry; (entry = readdir(folder));) {
        if (!strcmp(entry->d_name, ".") || !strcmp(entry->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", cache_dir, entry->d_name);
        unlink(path);
    }
    closedir(folder);
    rmdir(cache_dir);
}

__attribute__((constructor)) static void create_cache_dir(void)
{
    snprintf(cache_dir, sizeof cache_dir, "/tmp/faceau_test_cache_XXXXXX");
    if (!mkdtemp(cache_dir)) {
        cache_dir[0] = '\0';
        setenv("FACEAU_CACHE", "", 1); /* no cache rather than the user's */
        return;
    }
    setenv("FACEAU_CACHE", cache_dir, 1);
    atexit(remove_cache_dir);
}

const char *test_cache_dir(void) { return cache_dir; }

int test_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, test_checks_passed, test_checks_failed);
    return test_checks_failed ? 1 : 0;
}

const char *test_shared_path(const char *relative)
{
    static char buffers[8][4096];
    static int next;
    char *out = buffers[next++ % 8];
    const char *root = getenv("FACEAU_SHARED");
    if (!root || !root[0]) root = FACEAU_SHARED_DIR;
    snprintf(out, 4096, "%s/%s", root, relative);
    return out;
}

const char *test_models_dir(void)
{
    const char *models = getenv("FACEAU_MODELS");
    if (models && models[0]) return models;
    return test_shared_path("models/openface");
}

static char *read_text(const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    if (text && fread(text, 1, (size_t)size, file) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text) text[size] = '\0';
    fclose(file);
    return text;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
    return s;
}

int test_csv_load(const char *path, test_csv_t *csv)
{
    memset(csv, 0, sizeof *csv);
    char *text = read_text(path);
    if (!text) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    char *save_line = NULL;
    char *line = strtok_r(text, "\n", &save_line);
    if (!line) {
        free(text);
        return -1;
    }
    int capacity = 16;
    csv->names = malloc(sizeof(char *) * (size_t)capacity);
    char *save_field = NULL;
    for (char *field = strtok_r(line, ",", &save_field); field;
         field = strtok_r(NULL, ",", &save_field)) {
        if (csv->columns == capacity) {
            capacity *= 2;
            csv->names = realloc(csv->names, sizeof(char *) * (size_t)capacity);
        }
        csv->names[csv->columns++] = strdup(trim(field));
    }
    int row_capacity = 64;
    csv->values = malloc(sizeof(double) * (size_t)row_capacity * (size_t)csv->columns);
    while ((line = strtok_r(NULL, "\n", &save_line))) {
        if (!trim(line)[0]) continue;
        if (csv->rows == row_capacity) {
            row_capacity *= 2;
            csv->values = realloc(csv->values,
                                  sizeof(double) * (size_t)row_capacity * (size_t)csv->columns);
        }
        double *row = csv->values + (size_t)csv->rows * (size_t)csv->columns;
        int column = 0;
        for (char *field = strtok_r(line, ",", &save_field); field && column < csv->columns;
             field = strtok_r(NULL, ",", &save_field))
            row[column++] = strtod(field, NULL);
        while (column < csv->columns) row[column++] = NAN;
        csv->rows++;
    }
    free(text);
    return 0;
}

int test_csv_column(const test_csv_t *csv, const char *name)
{
    for (int i = 0; i < csv->columns; i++)
        if (strcmp(csv->names[i], name) == 0) return i;
    return -1;
}

double test_csv_value(const test_csv_t *csv, int row, int column)
{
    return csv->values[(size_t)row * (size_t)csv->columns + (size_t)column];
}

void test_csv_free(test_csv_t *csv)
{
    for (int i = 0; i < csv->columns; i++) free(csv->names[i]);
    free(csv->names);
    free(csv->values);
    memset(csv, 0, sizeof *csv);
}

int test_hog_load(const char *path, test_hog_t *hog)
{
    memset(hog, 0, sizeof *hog);
    FILE *file = fopen(path, "rb");
    if (!file) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fseek(file, 0, SEEK_SET);
    const long record = 16 + 4L * FA_HOG_SIZE;
    hog->frames = (int)(size / record);
    hog->success = malloc(sizeof(float) * (size_t)hog->frames);
    hog->values = malloc(sizeof(float) * (size_t)hog->frames * FA_HOG_SIZE);
    for (int f = 0; f < hog->frames; f++) {
        int header[3];
        if (fread(header, 4, 3, file) != 3 || fread(&hog->success[f], 4, 1, file) != 1 ||
            fread(hog->values + (size_t)f * FA_HOG_SIZE, 4, FA_HOG_SIZE, file) != FA_HOG_SIZE ||
            header[0] != 12 || header[1] != 12 || header[2] != 31) {
            fclose(file);
            test_hog_free(hog);
            return -1;
        }
    }
    fclose(file);
    return 0;
}

void test_hog_free(test_hog_t *hog)
{
    free(hog->success);
    free(hog->values);
    memset(hog, 0, sizeof *hog);
}

double test_pearson(const double *a, const double *b, int n)
{
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) {
        ma += a[i];
        mb += b[i];
    }
    ma /= n;
    mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    if (saa == 0 || sbb == 0) return (saa == sbb) ? 1.0 : 0.0;
    return sab / sqrt(saa * sbb);
}

/* Compares the AU columns (AU*_r, AU*_c) of our CSV with OpenFace's: per intensity AU Pearson
 * r and max |diff| (an OpenFace column whose spread is under flat_spread is judged by the
 * difference alone),
 * per presence AU the share of equal values, and the share over all presence values. Prints the
 * table; returns the overall presence share. */

double test_compare_aus(const char *name, const test_csv_t *ours, const test_csv_t *reference,
                        double flat_spread, double min_pearson, double max_au_diff,
                        double min_presence_equal, double min_presence_overall)
{
    CHECK(ours->rows == reference->rows, "%s: %d rows, OpenFace has %d", name, ours->rows,
          reference->rows);
    int rows = ours->rows < reference->rows ? ours->rows : reference->rows;
    double *a = malloc(sizeof(double) * (size_t)rows), *b = malloc(sizeof(double) * (size_t)rows);
    printf("%s: AU   Pearson r   max |diff|   (intensity)\n", name);
    int au_columns = 0;
    long presence_equal = 0, presence_total = 0;
    for (int c = 0; c < reference->columns; c++) {
        const char *column = reference->names[c];
        size_t length = strlen(column);
        if (strncmp(column, "AU", 2) != 0 || length < 3) continue;
        int ours_column = test_csv_column(ours, column);
        CHECK(ours_column >= 0, "%s: column %s missing", name, column);
        if (ours_column < 0) continue;
        au_columns++;
        double max_diff = 0;
        int equal = 0;
        for (int r = 0; r < rows; r++) {
            a[r] = test_csv_value(ours, r, ours_column);
            b[r] = test_csv_value(reference, r, c);
            max_diff = fmax(max_diff, fabs(a[r] - b[r]));
            equal += fabs(a[r] - b[r]) < 1e-9;
        }
        double spread = 0;
        for (int r = 1; r < rows; r++) spread = fmax(spread, fabs(b[r] - b[0]));
        if (column[length - 1] == 'r' && spread < flat_spread) {
            /* OpenFace's column (2 decimals) barely moves: r would measure the rounding. */
            printf("%s: %s  flat        %.3f\n", name, column, max_diff);
            CHECK(max_diff <= max_au_diff + 1e-9, "%s: %s max diff %.3f > %.2f", name, column,
                  max_diff, max_au_diff);
        } else if (column[length - 1] == 'r') {
            double r = test_pearson(a, b, rows);
            printf("%s: %s  %.5f   %.3f\n", name, column, r, max_diff);
            CHECK(r >= min_pearson, "%s: %s Pearson r %.5f < %.3f", name, column, r, min_pearson);
            CHECK(max_diff <= max_au_diff + 1e-9, "%s: %s max diff %.3f > %.2f", name, column,
                  max_diff, max_au_diff);
        } else {
            double share = (double)equal / rows;
            presence_equal += equal;
            presence_total += rows;
            printf("%s: %s  %.2f%% equal (presence)\n", name, column, 100.0 * share);
            CHECK(share >= min_presence_equal, "%s: %s only %.2f%% equal", name, column,
                  100.0 * share);
        }
    }
    CHECK(au_columns == 35, "%s: %d AU columns compared", name, au_columns);
    double overall = presence_total ? (double)presence_equal / (double)presence_total : 0;
    printf("%s: presence values equal overall: %.2f%%\n", name, 100.0 * overall);
    CHECK(overall >= min_presence_overall, "%s: %.2f%% of presence values equal", name,
          100.0 * overall);
    free(a);
    free(b);
    return overall;
}


void test_temporary_folder(char *path, size_t size, const char *name)
{
    snprintf(path, size, "/tmp/faceau_%s_XXXXXX", name);
    CHECK(mkdtemp(path) != NULL, "temporary folder %s", path);
}

void test_remove_folder(const char *path)
{
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", path);
    CHECK(system(command) == 0, "removing %s", path);
}

int test_run_shell(const char *folder, const char *command, char *output, size_t size)
{
    int status = system(command);
    char path[4200];
    snprintf(path, sizeof path, "%s/stderr.txt", folder);
    FILE *file = fopen(path, "r");
    size_t length = file ? fread(output, 1, size - 1, file) : 0;
    output[length] = '\0';
    if (file) fclose(file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#ifdef FACEAU_CLI
int test_run_cli(const char *folder, const char *prefix, const char *arguments, char *output,
                 size_t size)
{
    char command[16384];
    snprintf(command, sizeof command, "%s '%s' %s -q 2>'%s/stderr.txt'", prefix ? prefix : "",
             FACEAU_CLI, arguments, folder);
    return test_run_shell(folder, command, output, size);
}
#endif

long test_resident_kb(void)
{
    FILE *file = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (file) {
        if (fscanf(file, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(file);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int test_run_cli_models(const char *folder, const char *arguments, char *output, size_t size)
{
    char with_models[16384];
    snprintf(with_models, sizeof with_models, "%s --models '%s'", arguments, test_models_dir());
    return test_run_cli(folder, NULL, with_models, output, size);
}

int test_exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}
