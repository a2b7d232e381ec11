/* AU model lists and .dat readers (PIPELINE_SPEC §8.1-§8.2; FaceAnalyser::Read, ReadAU,
 * ReadRegressor and the SVR/SVM Read methods). OpenFace skips files it cannot open or parse;
 * here every such problem is an error naming the file. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "au/au_internal.h"
#include "core/file.h"
#include "model/reader.h"

enum { LINE_SIZE = 4096 };

void fa_au_regressor_release(fa_au_regressor_t *regressor) {
    free(regressor->means);
    free(regressor->weights);
    memset(regressor, 0, sizeof *regressor);
}

/* A 64-bit float matrix of the given shape, moved out of the reader's matrix. */
static fa_status read_vector(fa_reader_t *reader, int rows, int cols, const char *what,
                             double **out, fa_error_t *error) {
    fa_matrix_t matrix;
    fa_status status = fa_read_matbin(reader, &matrix, error);
    if (status != FA_OK) return status;
    if (matrix.type != FA_CV_64F)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: %s has type %d, expected %d (CV_64F)",
                              reader->name, what, matrix.type, FA_CV_64F);
    if (status == FA_OK) status = fa_matrix_expect(&matrix, rows, cols, reader->name, what, error);
    if (status != FA_OK) {
        fa_matrix_release(&matrix);
        return status;
    }
    *out = matrix.data;
    return FA_OK;
}

static fa_status read_finite(fa_reader_t *reader, const char *what, double *value,
                             fa_error_t *error) {
    fa_status status = fa_read_f64(reader, value, error);
    if (status == FA_OK && !isfinite(*value))
        return fa_error_set(error, FA_ERROR_MODEL, "%s: %s is not finite", reader->name, what);
    return status;
}

static fa_status parse_body(fa_reader_t *reader, fa_au_regressor_t *r, fa_error_t *error) {
    fa_status status = FA_OK;
    if (r->type == FA_AU_SVR_DYNAMIC) {
        status = read_finite(reader, "cutoff", &r->cutoff, error);
        /* OpenFace indexes the sorted values with (int)(N * cutoff): it must stay below N. */
        if (status == FA_OK && r->cutoff != -1 && !(r->cutoff >= 0 && r->cutoff < 1))
            status = fa_error_set(error, FA_ERROR_MODEL, "%s: cutoff %g is not in [0, 1)",
                                  reader->name, r->cutoff);
    }
    if (status == FA_OK) status = read_vector(reader, 1, FA_AU_FEATURES, "means", &r->means, error);
    if (status == FA_OK)
        status = read_vector(reader, FA_AU_FEATURES, 1, "support vector", &r->weights, error);
    if (status == FA_OK) status = read_finite(reader, "bias", &r->bias, error);
    if (status == FA_OK && (r->type == FA_AU_SVM_STATIC || r->type == FA_AU_SVM_DYNAMIC)) {
        status = read_finite(reader, "positive class", &r->positive, error);
        if (status == FA_OK) status = read_finite(reader, "negative class", &r->negative, error);
    }
    if (status == FA_OK && reader->position != reader->size)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: %zu unexpected bytes after the model",
                              reader->name, reader->size - reader->position);
    return status;
}

fa_status fa_au_regressor_parse(const char *data, size_t size, const char *name,
                                fa_au_regressor_t *regressor, fa_error_t *error) {
    memset(regressor, 0, sizeof *regressor);
    regressor->cutoff = -1;
    fa_reader_t reader;
    fa_reader_init(&reader, data, size, name);
    int32_t type = 0;
    fa_status status = fa_read_i32(&reader, &type, error);
    if (status != FA_OK) return status;
    if (type != FA_AU_SVR_STATIC && type != FA_AU_SVR_DYNAMIC && type != FA_AU_SVM_STATIC &&
        type != FA_AU_SVM_DYNAMIC)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: unknown AU regressor type %d", name,
                            (int)type);
    regressor->type = type;
    status = parse_body(&reader, regressor, error);
    if (status != FA_OK) fa_au_regressor_release(regressor);
    return status;
}

static fa_au_group_index group_of_type(int type) {
    switch (type) {
    case FA_AU_SVR_STATIC:
        return FA_AU_GROUP_SVR_STATIC;
    case FA_AU_SVR_DYNAMIC:
        return FA_AU_GROUP_SVR_DYNAMIC;
    case FA_AU_SVM_STATIC:
        return FA_AU_GROUP_SVM_STATIC;
    default:
        return FA_AU_GROUP_SVM_DYNAMIC;
    }
}

/* Models are collected per group model-major while reading, then interleaved (see au_internal.h).
 */
typedef struct loading {
    double *weights[FA_AU_GROUPS][FA_MAX_AUS];
} loading_t;

static fa_status add_regressor(fa_au_models_t *models, loading_t *loading,
                               fa_au_regressor_t *regressor, const char *au_name, const char *path,
                               fa_error_t *error) {
    fa_au_group_t *group = &models->groups[group_of_type(regressor->type)];
    int index = group->count;
    if (index >= FA_MAX_AUS)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: more than %d AU models of one kind", path,
                            FA_MAX_AUS);
    /* OpenFace keeps the first file's means for the whole group (and only warns if another
     * file's differ); so do we. */
    if (!group->means) {
        group->means = regressor->means;
        regressor->means = NULL;
    }
    loading->weights[group - models->groups][index] = regressor->weights;
    regressor->weights = NULL;
    group->biases[index] = regressor->bias;
    group->cutoffs[index] = regressor->cutoff;
    group->positive[index] = regressor->positive;
    group->negative[index] = regressor->negative;
    snprintf(group->names[index], FA_AU_NAME_SIZE, "%s", au_name);
    group->count++;
    return FA_OK;
}

static fa_status load_regressor(fa_au_models_t *models, loading_t *loading, const char *path,
                                const char *au_name, fa_error_t *error) {
    char *contents = NULL;
    size_t size = 0;
    fa_status status = fa_file_read_all(path, &contents, &size, error);
    if (status != FA_OK) return status;
    fa_au_regressor_t regressor;
    status = fa_au_regressor_parse(contents, size, path, &regressor, error);
    free(contents);
    if (status == FA_OK) status = add_regressor(models, loading, &regressor, au_name, path, error);
    fa_au_regressor_release(&regressor);
    return status;
}

static char *trim(char *text) {
    while (isspace((unsigned char)*text))
        text++;
    size_t length = strlen(text);
    while (length && isspace((unsigned char)text[length - 1]))
        text[--length] = '\0';
    return text;
}

/* "<relative .dat path> <AU name>": OpenFace allows a comma-separated list of names but then
 * pairs names with outputs by position, which only works for one name per file. */
static fa_status parse_au_line(char *line, const char *list_path, char **path, char **name,
                               fa_error_t *error) {
    *path = trim(line);
    char *space = *path + strcspn(*path, " \t");
    if (!*space)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: no AU name after '%s'", list_path, *path);
    *space = '\0';
    *name = trim(space + 1);
    size_t length = strlen(*name);
    if (length == 0 || length >= FA_AU_NAME_SIZE || strchr(*name, ','))
        return fa_error_set(error, FA_ERROR_MODEL, "%s: '%s' is not one AU name", list_path, *name);
    return FA_OK;
}

static fa_status load_au_list(fa_au_models_t *models, loading_t *loading, const char *list_path,
                              fa_error_t *error) {
    char *contents = NULL, line[LINE_SIZE], directory[LINE_SIZE], path[LINE_SIZE];
    size_t size = 0;
    fa_status status = fa_file_read_all(list_path, &contents, &size, error);
    if (status != FA_OK) return status;
    fa_path_directory(directory, sizeof directory, list_path);
    fa_reader_t reader;
    fa_reader_init(&reader, contents, size, list_path);
    while (status == FA_OK) {
        char *relative = NULL, *name = NULL;
        status = fa_read_line(&reader, line, sizeof line, error);
        if (status != FA_OK || trim(line)[0] == '\0') continue;
        status = parse_au_line(line, list_path, &relative, &name, error);
        if (status == FA_OK) status = fa_path_join(path, sizeof path, directory, relative, error);
        if (status == FA_OK) status = load_regressor(models, loading, path, name, error);
    }
    if (status == FA_ERROR_END) status = fa_error_set(error, FA_OK, "%s", "");
    free(contents);
    return status;
}

/* Interleaves each group's weights by four models (zero padding), see au_predict.c. */
static fa_status interleave(fa_au_models_t *models, loading_t *loading, fa_error_t *error) {
    for (int g = 0; g < FA_AU_GROUPS; g++) {
        fa_au_group_t *group = &models->groups[g];
        if (!group->count) continue;
        group->stride = (group->count + 3) / 4 * 4;
        group->weights = calloc((size_t)FA_AU_FEATURES * group->stride, sizeof(double));
        if (!group->weights) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
        for (int m = 0; m < group->count; m++) {
            double *block = group->weights + (size_t)(m / 4) * FA_AU_FEATURES * 4;
            for (int k = 0; k < FA_AU_FEATURES; k++)
                block[4 * k + m % 4] = loading->weights[g][m][k];
        }
    }
    return FA_OK;
}

static int compare_sources(const fa_au_models_t *models, fa_au_source_t a, fa_au_source_t b) {
    return strcmp(models->groups[a.group].names[a.model], models->groups[b.group].names[b.model]);
}

/* Output order: names sorted as OpenFace's std::map and CSV sort them. Duplicates would be
 * merged by that map into one broken history, so they are refused. */
static fa_status order_outputs(fa_au_models_t *models, int presence, const char *list_path,
                               fa_error_t *error) {
    fa_au_source_t *sources = models->sources[presence];
    int count = 0;
    for (int g = 0; g < FA_AU_GROUPS; g++) {
        if (fa_au_group_is_presence(g) != presence) continue;
        for (int m = 0; m < models->groups[g].count; m++) {
            if (count == FA_MAX_AUS)
                return fa_error_set(error, FA_ERROR_MODEL, "%s: more than %d AUs", list_path,
                                    FA_MAX_AUS);
            fa_au_source_t source = {g, m};
            int i = count++;
            for (; i > 0 && compare_sources(models, sources[i - 1], source) > 0; i--)
                sources[i] = sources[i - 1];
            sources[i] = source;
            if (i > 0 && compare_sources(models, sources[i - 1], source) == 0)
                return fa_error_set(error, FA_ERROR_MODEL, "%s: AU %s appears twice", list_path,
                                    models->groups[g].names[m]);
        }
    }
    models->count[presence] = count;
    return FA_OK;
}

static fa_status build_models(fa_au_models_t *models, const char *list_path, fa_error_t *error) {
    loading_t loading;
    memset(&loading, 0, sizeof loading);
    fa_status status = load_au_list(models, &loading, list_path, error);
    if (status == FA_OK) status = interleave(models, &loading, error);
    if (status == FA_OK) status = order_outputs(models, 0, list_path, error);
    if (status == FA_OK) status = order_outputs(models, 1, list_path, error);
    if (status == FA_OK && models->count[0] + models->count[1] == 0)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: no AU models", list_path);
    for (int g = 0; g < FA_AU_GROUPS; g++)
        for (int m = 0; m < FA_MAX_AUS; m++)
            free(loading.weights[g][m]);
    return status;
}

typedef struct main_paths {
    char au_list[LINE_SIZE], pdm[LINE_SIZE], triangulation[LINE_SIZE];
} main_paths_t;

/* main_*_svms.txt: lines "<Module> <relative path>", Module in AUPredictor, PDM, Triangulation;
 * other modules are ignored as OpenFace ignores them. */
static fa_status read_main_list(const char *au_directory, const char *main_name,
                                main_paths_t *paths, fa_error_t *error) {
    char main_path[LINE_SIZE], *contents = NULL, line[LINE_SIZE];
    size_t size = 0;
    memset(paths, 0, sizeof *paths);
    fa_status status = fa_path_join(main_path, sizeof main_path, au_directory, main_name, error);
    if (status == FA_OK) status = fa_file_read_all(main_path, &contents, &size, error);
    if (status != FA_OK) return status;
    fa_reader_t reader;
    fa_reader_init(&reader, contents, size, main_path);
    while (status == FA_OK) {
        status = fa_read_line(&reader, line, sizeof line, error);
        if (status != FA_OK) continue;
        char *save = NULL, *module = strtok_r(line, " \t", &save);
        char *location = strtok_r(NULL, " \t", &save);
        char *target = NULL;
        if (!module || !location) continue;
        if (!strcmp(module, "AUPredictor")) target = paths->au_list;
        if (!strcmp(module, "PDM")) target = paths->pdm;
        if (!strcmp(module, "Triangulation")) target = paths->triangulation;
        if (target) status = fa_path_join(target, LINE_SIZE, au_directory, location, error);
    }
    if (status == FA_ERROR_END) status = fa_error_set(error, FA_OK, "%s", "");
    free(contents);
    if (status == FA_OK && (!paths->au_list[0] || !paths->pdm[0] || !paths->triangulation[0]))
        status = fa_error_set(error, FA_ERROR_MODEL,
                              "%s: needs AUPredictor, PDM and Triangulation lines", main_path);
    return status;
}

static fa_status copy_path(char *out, size_t size, const char *path, fa_error_t *error) {
    if (!out) return FA_OK;
    if (strlen(path) >= size)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "path too long: %s", path);
    memcpy(out, path, strlen(path) + 1);
    return FA_OK;
}

fa_status fa_au_models_load(const char *au_directory, int static_models, fa_au_models_t **models,
                            char *pdm_path, size_t pdm_path_size, char *triangulation_path,
                            size_t triangulation_path_size, fa_error_t *error) {
    if (!au_directory || !models)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "AU models: no directory or output");
    *models = NULL;
    main_paths_t paths;
    const char *main_name = static_models ? "main_static_svms.txt" : "main_dynamic_svms.txt";
    fa_status status = read_main_list(au_directory, main_name, &paths, error);
    if (status == FA_OK) status = copy_path(pdm_path, pdm_path_size, paths.pdm, error);
    if (status == FA_OK)
        status = copy_path(triangulation_path, triangulation_path_size, paths.triangulation, error);
    if (status != FA_OK) return status;
    fa_au_models_t *loaded = calloc(1, sizeof *loaded);
    if (!loaded) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    status = build_models(loaded, paths.au_list, error);
    if (status != FA_OK) {
        fa_au_models_free(loaded);
        return status;
    }
    *models = loaded;
    return FA_OK;
}

void fa_au_models_free(fa_au_models_t *models) {
    if (!models) return;
    for (int g = 0; g < FA_AU_GROUPS; g++) {
        free(models->groups[g].means);
        free(models->groups[g].weights);
    }
    free(models);
}

int fa_au_models_count(const fa_au_models_t *models, int presence) {
    return models ? models->count[presence != 0] : 0;
}

const char *fa_au_models_name(const fa_au_models_t *models, int presence, int index) {
    if (!models || index < 0 || index >= models->count[presence != 0]) return NULL;
    fa_au_source_t source = models->sources[presence != 0][index];
    return models->groups[source.group].names[source.model];
}
