#include "landmarks/clnf_model.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"

enum { PATH_SIZE = FA_CLNF_SET_PATH_SIZE, TOKEN_SIZE = 256 };

/* ---------------------------------------------------------------------------------------------
 * Lines and tokens, as OpenFace's getline and operator>> see them */

typedef struct line_cursor {
    const char *data;
    size_t size, position;
    int number; /* 1-based number of the line last returned */
} line_cursor_t;

/* The next line without its '\n' (a '\r' stays: the readers treat it as OpenFace does). */
static int next_line(line_cursor_t *cursor, const char **line, size_t *length) {
    if (cursor->position >= cursor->size) return 0;
    const char *start = cursor->data + cursor->position;
    const char *end = memchr(start, '\n', cursor->size - cursor->position);
    *line = start;
    *length = end ? (size_t)(end - start) : cursor->size - cursor->position;
    cursor->position += *length + (end != NULL);
    cursor->number++;
    return 1;
}

/* The next whitespace-separated token of line from *position; 0 if there is none. */
static fa_status take_token(const char *line, size_t length, size_t *position, char *out,
                            const char *file, int line_number, fa_error_t *error) {
    size_t p = *position;
    while (p < length && isspace((unsigned char)line[p]))
        p++;
    size_t start = p;
    while (p < length && !isspace((unsigned char)line[p]))
        p++;
    if (p - start >= TOKEN_SIZE)
        return fa_error_set(error, FA_ERROR_MODEL, "%s line %d: token too long", file, line_number);
    memcpy(out, line + start, p - start);
    out[p - start] = '\0';
    *position = p;
    return FA_OK;
}

/* OpenFace's root / location: relative to the folder of the file that names it. */
static fa_status resolve(char *out, const char *root, const char *location, fa_error_t *error) {
    if (location[0] == '/') {
        if (strlen(location) >= PATH_SIZE)
            return fa_error_set(error, FA_ERROR_ARGUMENT, "path too long: %s", location);
        strcpy(out, location);
        return FA_OK;
    }
    return fa_path_join(out, PATH_SIZE, root, location, error);
}

/* ---------------------------------------------------------------------------------------------
 * Parameters (LandmarkDetectorParameters.cpp init(), CLNF::Read's part overrides; §3.1) */

static void set_windows(fa_clnf_parameters_t *parameters, const int *windows, int count) {
    parameters->window_count = count;
    for (int i = 0; i < count; i++)
        parameters->windows_init[i] = parameters->windows_small[i] = windows[i];
}

static void default_parameters(fa_clnf_parameters_t *parameters) {
    static const int init[4] = {11, 9, 7, 5}, small[4] = {0, 9, 7, 0};
    memset(parameters, 0, sizeof *parameters);
    parameters->sigma = 1.5f;
    parameters->reg_factor = 25.0f;
    parameters->weight_factor = 0.0f;
    parameters->iterations = 5;
    parameters->window_count = 4;
    memcpy(parameters->windows_init, init, sizeof init);
    memcpy(parameters->windows_small, small, sizeof small);
    parameters->refine_parameters = 1;
    parameters->refine_hierarchical = 1;
    parameters->validate_detections = 1;
    parameters->validation_boundary = 0.725f;
}

/* FaceModelParameters scales sigma and reg_factor when its model path's stem is the CE-CLM one;
 * for the main model that path is the model file itself (-mloc). */
static void apply_model_path_rule(fa_clnf_parameters_t *parameters, const char *path) {
    const char *name = strrchr(path, '/');
    name = name ? name + 1 : path;
    const char *dot = strrchr(name, '.');
    size_t length = dot && dot != name ? (size_t)(dot - name) : strlen(name);
    if (length == strlen("main_ceclm_general") && !strncmp(name, "main_ceclm_general", length)) {
        parameters->sigma = 1.5f * parameters->sigma;
        parameters->reg_factor = 0.9f * parameters->reg_factor;
    }
}

/* A part's parameters: built from the defaults with OpenFace's default model path (CE-CLM, so
 * sigma and reg are scaled), three switches off, then overrides by part name. */
static void part_parameters(const char *name, fa_clnf_parameters_t *parameters, int *eye_model) {
    default_parameters(parameters);
    apply_model_path_rule(parameters, "model/main_ceclm_general.txt");
    parameters->validate_detections = 0;
    parameters->refine_hierarchical = 0;
    parameters->refine_parameters = 0;
    if (!strcmp(name, "left_eye") || !strcmp(name, "right_eye")) {
        set_windows(parameters, (const int[]){5, 3}, 2);
        parameters->reg_factor = (float)0.1;
        parameters->sigma = 2.0f;
    } else if (!strcmp(name, "left_eye_28") || !strcmp(name, "right_eye_28")) {
        set_windows(parameters, (const int[]){3, 5, 9}, 3);
        parameters->reg_factor = 0.5f;
        parameters->sigma = 1.0f;
        *eye_model = 1;
    } else if (!strcmp(name, "mouth")) {
        set_windows(parameters, (const int[]){7, 7}, 2);
        parameters->reg_factor = 1.0f;
        parameters->sigma = 2.0f;
    } else if (!strcmp(name, "brow")) {
        set_windows(parameters, (const int[]){11, 9}, 2);
        parameters->reg_factor = 10.0f;
        parameters->sigma = 3.5f;
    } else if (!strcmp(name, "inner")) {
        set_windows(parameters, (const int[]){9}, 1);
        parameters->reg_factor = 2.5f;
        parameters->sigma = 1.75f;
        parameters->weight_factor = 2.5f;
    }
}

/* ---------------------------------------------------------------------------------------------
 * One CLNF (CLNF::Read_CLNF, §1.3) */

static void detector_release(fa_clnf_detector_t *detector) {
    fa_pdm_release(&detector->pdm);
    fa_ccnf_release(&detector->ccnf);
    memset(detector, 0, sizeof *detector);
}

typedef struct clnf_lines {
    char pdm[PATH_SIZE];
    char ccnf[FA_CCNF_MAX_SCALES][PATH_SIZE];
    int ccnf_count, intensity_count, cen_count;
} clnf_lines_t;

/* Here the location is the rest of the line after the module and one character (a space), with
 * a trailing '\r' removed: it may contain spaces. */
static fa_status parse_clnf_file(const char *path, const char *data, size_t size,
                                 clnf_lines_t *lines, fa_error_t *error) {
    char root[PATH_SIZE], module[TOKEN_SIZE], location[PATH_SIZE], resolved[PATH_SIZE];
    fa_path_directory(root, sizeof root, path);
    line_cursor_t cursor = {data, size, 0, 0};
    const char *line;
    size_t length;
    while (next_line(&cursor, &line, &length)) {
        size_t position = 0;
        fa_status status = take_token(line, length, &position, module, path, cursor.number, error);
        if (status != FA_OK) return status;
        if (position < length) position++;
        size_t rest = length - position;
        if (rest > 0 && line[position + rest - 1] == '\r') rest--;
        if (rest >= sizeof location)
            return fa_error_set(error, FA_ERROR_MODEL, "%s line %d: location too long", path,
                                cursor.number);
        memcpy(location, line + position, rest);
        location[rest] = '\0';
        int is_pdm = !strcmp(module, "PDM"), is_ccnf = !strcmp(module, "PatchesCCNF");
        int is_triangulation = !strcmp(module, "Triangulations");
        if (!is_pdm && !is_ccnf && !is_triangulation) {
            lines->intensity_count += !strcmp(module, "PatchesIntensity");
            lines->cen_count += !strcmp(module, "PatchesCEN");
            continue;
        }
        status = resolve(resolved, root, location, error);
        if (status != FA_OK) return status;
        if (is_pdm) {
            strcpy(lines->pdm, resolved);
        } else if (is_ccnf) {
            if (lines->ccnf_count == FA_CCNF_MAX_SCALES)
                return fa_error_set(error, FA_ERROR_MODEL, "%s: more than %d PatchesCCNF lines",
                                    path, FA_CCNF_MAX_SCALES);
            strcpy(lines->ccnf[lines->ccnf_count++], resolved);
        } else {
            /* Loaded but never used by OpenFace; a missing file still fails its load. */
            status = fa_file_check_readable(resolved, path, error);
            if (status != FA_OK) return status;
        }
    }
    if (!lines->pdm[0]) return fa_error_set(error, FA_ERROR_MODEL, "%s: no PDM line", path);
    /* CEN experts take precedence over CCNF ones in OpenFace; SVR experts are only a fallback. */
    if (lines->cen_count > 0 || (lines->ccnf_count == 0 && lines->intensity_count > 0))
        return fa_error_set(error, FA_ERROR_MODEL,
                            "%s: CEN and SVR patch experts are not supported (CLNF needs "
                            "PatchesCCNF)",
                            path);
    if (lines->ccnf_count == 0)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: no PatchesCCNF line", path);
    return FA_OK;
}

static fa_status read_clnf(const char *path, fa_clnf_detector_t *detector, fa_error_t *error) {
    memset(detector, 0, sizeof *detector);
    char *data = NULL;
    size_t size = 0;
    fa_status status = fa_file_read_all(path, &data, &size, error);
    if (status != FA_OK) return status;
    clnf_lines_t *lines = calloc(1, sizeof *lines);
    if (!lines) {
        free(data);
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    }
    status = parse_clnf_file(path, data, size, lines, error);
    free(data);
    if (status == FA_OK) status = fa_pdm_load(lines->pdm, &detector->pdm, error);
    if (status == FA_OK) {
        const char *paths[FA_CCNF_MAX_SCALES];
        for (int i = 0; i < lines->ccnf_count; i++)
            paths[i] = lines->ccnf[i];
        status = fa_ccnf_load(paths, lines->ccnf_count, &detector->ccnf, error);
    }
    if (status == FA_OK && detector->ccnf.point_count != detector->pdm.point_count)
        status = fa_error_set(error, FA_ERROR_MODEL,
                              "%s: the PDM %s has %d landmarks but its patch experts %d", path,
                              lines->pdm, detector->pdm.point_count, detector->ccnf.point_count);
    free(lines);
    if (status != FA_OK) detector_release(detector);
    return status;
}

/* A part's own main file: only its LandmarkDetector line matters (its parts and validator, if it
 * named any, would never run: parts fit without hierarchy or validation). */
static fa_status read_part_main(const char *path, fa_clnf_detector_t *detector, fa_error_t *error) {
    char *data = NULL;
    size_t size = 0;
    fa_status status = fa_file_read_all(path, &data, &size, error);
    if (status != FA_OK) return status;
    char root[PATH_SIZE], module[TOKEN_SIZE], location[TOKEN_SIZE], resolved[PATH_SIZE];
    fa_path_directory(root, sizeof root, path);
    line_cursor_t cursor = {data, size, 0, 0};
    const char *line;
    size_t length;
    int found = 0;
    while (status == FA_OK && !found && next_line(&cursor, &line, &length)) {
        size_t position = 0;
        status = take_token(line, length, &position, module, path, cursor.number, error);
        if (status == FA_OK)
            status = take_token(line, length, &position, location, path, cursor.number, error);
        if (status != FA_OK || strcmp(module, "LandmarkDetector")) continue;
        found = 1;
        status = resolve(resolved, root, location, error);
        if (status == FA_OK) status = read_clnf(resolved, detector, error);
    }
    free(data);
    if (status == FA_OK && !found)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: no LandmarkDetector line", path);
    return status;
}

/* ---------------------------------------------------------------------------------------------
 * The main file (CLNF::Read, §1.2) */

typedef struct main_reader {
    const char *path;
    char root[PATH_SIZE];
    fa_clnf_set_t *model;
    int has_main;
    int part_lines[FA_CLNF_SET_MAX_PARTS]; /* for messages about their pairs */
} main_reader_t;

static fa_status parse_index(const char *token, int *value, const char *file, int line_number,
                             fa_error_t *error) {
    char *end = NULL;
    long parsed = strtol(token, &end, 10);
    if (end == token || *end != '\0' || parsed < 0 || parsed > 1000000)
        return fa_error_set(error, FA_ERROR_MODEL, "%s line %d: '%s' is not a landmark index", file,
                            line_number, token);
    *value = (int)parsed;
    return FA_OK;
}

/* "LandmarkDetector_part <file> <name> (main part)*". OpenFace reads pairs until the end of the
 * line; an odd index count or trailing garbage leaves it reading uninitialised values or looping
 * forever, so both are errors here. Trailing whitespace is ignored. */
static fa_status read_part_line(main_reader_t *reader, const char *line, size_t length,
                                size_t position, const char *location, int line_number,
                                fa_error_t *error) {
    fa_clnf_set_t *model = reader->model;
    if (model->part_count == FA_CLNF_SET_MAX_PARTS)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: more than %d parts", reader->path,
                            FA_CLNF_SET_MAX_PARTS);
    fa_clnf_set_part_t *part = &model->parts[model->part_count];
    char token[TOKEN_SIZE], resolved[PATH_SIZE];
    fa_status status = take_token(line, length, &position, token, reader->path, line_number, error);
    if (status != FA_OK) return status;
    if (!token[0] || strlen(token) >= sizeof part->name)
        return fa_error_set(error, FA_ERROR_MODEL, "%s line %d: a part needs a name (< %d chars)",
                            reader->path, line_number, FA_CLNF_SET_NAME_SIZE);
    strcpy(part->name, token);
    int count = 0;
    for (;;) {
        int index = 0;
        status = take_token(line, length, &position, token, reader->path, line_number, error);
        if (status != FA_OK) return status;
        if (!token[0]) break;
        if (count == 2 * FA_PDM_MAX_POINTS)
            return fa_error_set(error, FA_ERROR_MODEL, "%s line %d: more than %d pairs",
                                reader->path, line_number, FA_PDM_MAX_POINTS);
        status = parse_index(token, &index, reader->path, line_number, error);
        if (status != FA_OK) return status;
        part->pairs[count / 2][count % 2] = index;
        count++;
    }
    if (count % 2)
        return fa_error_set(error, FA_ERROR_MODEL,
                            "%s line %d: part %s has an odd number of landmark indices",
                            reader->path, line_number, part->name);
    part->pair_count = count / 2;
    status = resolve(resolved, reader->root, location, error);
    if (status == FA_OK) status = read_part_main(resolved, &part->detector, error);
    if (status != FA_OK) return status;
    part_parameters(part->name, &part->detector.parameters, &model->eye_model);
    reader->part_lines[model->part_count++] = line_number;
    return FA_OK;
}

static fa_status read_main_line(main_reader_t *reader, const char *line, size_t length,
                                int line_number, fa_error_t *error) {
    char module[TOKEN_SIZE], location[TOKEN_SIZE], resolved[PATH_SIZE];
    size_t position = 0;
    fa_status status =
        take_token(line, length, &position, module, reader->path, line_number, error);
    if (status == FA_OK)
        status = take_token(line, length, &position, location, reader->path, line_number, error);
    if (status != FA_OK) return status;
    fa_clnf_set_t *model = reader->model;
    if (!strcmp(module, "LandmarkDetector")) {
        if (reader->has_main)
            return fa_error_set(error, FA_ERROR_MODEL, "%s line %d: a second LandmarkDetector",
                                reader->path, line_number);
        status = resolve(resolved, reader->root, location, error);
        if (status == FA_OK) status = read_clnf(resolved, &model->main, error);
        if (status != FA_OK) return status;
        reader->has_main = 1;
        default_parameters(&model->main.parameters);
        apply_model_path_rule(&model->main.parameters, reader->path);
    } else if (!strcmp(module, "LandmarkDetector_part")) {
        return read_part_line(reader, line, length, position, location, line_number, error);
    } else if (!strcmp(module, "DetectionValidator")) {
        status = resolve(resolved, reader->root, location, error);
        if (status == FA_OK) status = fa_file_check_readable(resolved, reader->path, error);
        if (status != FA_OK) return status;
        strcpy(model->validator_path, resolved);
    }
    /* Anything else (FaceDetConversion included) is ignored, as by OpenFace. */
    return FA_OK;
}

/* Everything the rest of the pipeline relies on: 68 main points, pairs inside both models,
 * a window for every patch scale. */
static fa_status check_model(const main_reader_t *reader, fa_error_t *error) {
    const fa_clnf_set_t *model = reader->model;
    if (!reader->has_main)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: no LandmarkDetector line", reader->path);
    if (!model->validator_path[0])
        return fa_error_set(error, FA_ERROR_MODEL, "%s: no DetectionValidator line", reader->path);
    int main_points = model->main.pdm.point_count;
    if (main_points != FA_CLNF_SET_MAIN_POINTS)
        return fa_error_set(error, FA_ERROR_MODEL,
                            "%s: the main PDM has %d landmarks; only %d-landmark models are "
                            "supported",
                            reader->path, main_points, FA_CLNF_SET_MAIN_POINTS);
    for (int p = 0; p < model->part_count; p++) {
        const fa_clnf_set_part_t *part = &model->parts[p];
        for (int i = 0; i < part->pair_count; i++) {
            int main_index = part->pairs[i][0], part_index = part->pairs[i][1];
            if (main_index >= main_points || part_index >= part->detector.pdm.point_count)
                return fa_error_set(error, FA_ERROR_MODEL,
                                    "%s line %d: part %s pair (%d, %d) is out of range (the main "
                                    "model has %d landmarks, the part %d)",
                                    reader->path, reader->part_lines[p], part->name, main_index,
                                    part_index, main_points, part->detector.pdm.point_count);
        }
    }
    for (int d = -1; d < model->part_count; d++) {
        const fa_clnf_detector_t *detector = d < 0 ? &model->main : &model->parts[d].detector;
        if (detector->parameters.window_count < detector->ccnf.scale_count)
            return fa_error_set(error, FA_ERROR_MODEL,
                                "%s: model %s has %d patch scales but %d window sizes",
                                reader->path, d < 0 ? "main" : model->parts[d].name,
                                detector->ccnf.scale_count, detector->parameters.window_count);
    }
    return FA_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Sigma preparation: one task per (model, scale). fa_ccnf_prepare_window writes only its own
 * scale and reads the (never written) sigma components, so tasks are independent. */

typedef struct prepare_task {
    fa_ccnf_t *ccnf;
    const char *model_name;
    int scale, window_count, windows[2];
    double cost;
    fa_status status;
    fa_error_t error;
} prepare_task_t;

typedef struct prepare_queue {
    prepare_task_t *tasks;
    int count;
    atomic_int next;
} prepare_queue_t;

static void *prepare_worker(void *argument) {
    prepare_queue_t *queue = argument;
    for (;;) {
        int i = atomic_fetch_add(&queue->next, 1);
        if (i >= queue->count) return NULL;
        prepare_task_t *task = &queue->tasks[i];
        for (int w = 0; w < task->window_count && task->status == FA_OK; w++)
            task->status =
                fa_ccnf_prepare_window(task->ccnf, task->scale, task->windows[w], &task->error);
    }
}

/* Largest first, so that the long window-11 task does not start last. */
static int compare_cost(const void *a, const void *b) {
    double ca = ((const prepare_task_t *)a)->cost, cb = ((const prepare_task_t *)b)->cost;
    return (ca < cb) - (ca > cb);
}

static int collect_tasks(fa_clnf_set_t *model, prepare_task_t *tasks) {
    int count = 0;
    for (int d = -1; d < model->part_count; d++) {
        fa_clnf_detector_t *detector = d < 0 ? &model->main : &model->parts[d].detector;
        const fa_clnf_parameters_t *parameters = &detector->parameters;
        for (int s = 0; s < detector->ccnf.scale_count; s++) {
            prepare_task_t *task = &tasks[count];
            memset(task, 0, sizeof *task);
            int candidates[2] = {parameters->windows_init[s], parameters->windows_small[s]};
            for (int c = 0; c < 2; c++)
                if (candidates[c] > 0 &&
                    (task->window_count == 0 || task->windows[0] != candidates[c]))
                    task->windows[task->window_count++] = candidates[c];
            if (task->window_count == 0) continue;
            const fa_ccnf_scale_t *scale = &detector->ccnf.scales[s];
            for (int w = 0; w < task->window_count; w++) {
                double n = (double)task->windows[w] * task->windows[w];
                task->cost += n * n * n * scale->view_count * scale->point_count;
            }
            task->ccnf = &detector->ccnf;
            task->model_name = d < 0 ? "main" : model->parts[d].name;
            task->scale = s;
            count++;
        }
    }
    return count;
}

static fa_status prepare_sigmas(fa_clnf_set_t *model, int threads, const char *path,
                                fa_error_t *error) {
    prepare_task_t *tasks =
        calloc((size_t)(model->part_count + 1) * FA_CCNF_MAX_SCALES, sizeof *tasks);
    if (!tasks) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    prepare_queue_t queue = {tasks, collect_tasks(model, tasks), 0};
    qsort(tasks, (size_t)queue.count, sizeof *tasks, compare_cost);
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 1;
    }
    if (threads > queue.count) threads = queue.count;
    pthread_t workers[64];
    int started = 0;
    while (started < threads - 1 && started < 64 &&
           pthread_create(&workers[started], NULL, prepare_worker, &queue) == 0)
        started++;
    prepare_worker(&queue); /* the caller works too, so a failed pthread_create only slows */
    for (int i = 0; i < started; i++)
        pthread_join(workers[i], NULL);
    fa_status status = FA_OK;
    for (int i = 0; i < queue.count && status == FA_OK; i++)
        if (tasks[i].status != FA_OK)
            status = fa_error_set(error, tasks[i].status, "%s: %s model: %s", path,
                                  tasks[i].model_name, tasks[i].error.message);
    free(tasks);
    return status;
}

/* ---------------------------------------------------------------------------------------------
 * Public functions */

void fa_clnf_set_release(fa_clnf_set_t *model) {
    if (!model) return;
    detector_release(&model->main);
    for (int p = 0; p < model->part_count; p++)
        detector_release(&model->parts[p].detector);
    memset(model, 0, sizeof *model);
}

fa_status fa_clnf_set_load(const char *path, int threads, fa_clnf_set_t *model,
                             fa_error_t *error) {
    memset(model, 0, sizeof *model);
    char *data = NULL;
    size_t size = 0;
    fa_status status = fa_file_read_all(path, &data, &size, error);
    if (status != FA_OK) return status;
    main_reader_t reader = {.path = path, .model = model};
    fa_path_directory(reader.root, sizeof reader.root, path);
    line_cursor_t cursor = {data, size, 0, 0};
    const char *line;
    size_t length;
    while (status == FA_OK && next_line(&cursor, &line, &length))
        status = read_main_line(&reader, line, length, cursor.number, error);
    free(data);
    if (status == FA_OK) status = check_model(&reader, error);
    if (status == FA_OK) status = prepare_sigmas(model, threads, path, error);
    if (status != FA_OK) {
        /* A part that failed mid-load was released by its reader; count it out. */
        fa_clnf_set_release(model);
    }
    return status;
}

int fa_clnf_window(const fa_clnf_detector_t *detector, int scale, int tracking) {
    const fa_clnf_parameters_t *parameters = &detector->parameters;
    if (scale < 0 || scale >= parameters->window_count) return 0;
    return tracking ? parameters->windows_small[scale] : parameters->windows_init[scale];
}

fa_clnf_adapted_t fa_clnf_adapted_parameters(const fa_clnf_detector_t *detector, int scale) {
    const fa_clnf_parameters_t *p = &detector->parameters;
    fa_clnf_adapted_t adapted = {p->reg_factor, p->sigma, p->weight_factor};
    if (!p->refine_parameters || scale < 0 || scale >= detector->ccnf.scale_count) return adapted;
    int scale_max = scale >= 2 ? 2 : scale;
    /* The expressions and their evaluation order are OpenFace's (CLNF::Fit). */
    double octave = log(detector->ccnf.scales[scale_max].scaling / 0.25);
    adapted.reg_factor = (float)((double)p->reg_factor - 15 * octave / log(2.0));
    if (adapted.reg_factor <= 0) adapted.reg_factor = (float)0.001;
    adapted.sigma = (float)((double)p->sigma + 0.25 * octave / log(2.0));
    adapted.weight_factor =
        (float)((double)p->weight_factor + (double)(2 * p->weight_factor) * octave / log(2.0));
    return adapted;
}

void fa_clnf_detector_settings(const fa_clnf_detector_t *detector, fa_clnf_settings_t *settings) {
    const fa_clnf_parameters_t *p = &detector->parameters;
    memset(settings, 0, sizeof *settings);
    settings->sigma = p->sigma;
    settings->reg_factor = p->reg_factor;
    settings->weight_factor = p->weight_factor;
    settings->iterations = p->iterations;
    settings->refine_parameters = p->refine_parameters;
    settings->scale_count = detector->ccnf.scale_count;
    for (int s = 0; s < detector->ccnf.scale_count && s < FA_CLNF_MAX_SCALES; s++) {
        settings->patch_scaling[s] = detector->ccnf.scales[s].scaling;
        settings->windows_init[s] = fa_clnf_window(detector, s, 0);
        settings->windows_track[s] = fa_clnf_window(detector, s, 1);
    }
}
