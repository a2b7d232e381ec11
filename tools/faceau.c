/* faceau: the command-line program, a thin client of include/faceau.h. It takes OpenFace's
 * FeatureExtraction flags so that existing scripts keep working. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faceau.h"

enum { EXIT_USAGE = 2, MAX_INPUTS = 4096 };

typedef struct input {
    const char *path;
    fa_source_kind kind;
    const char *landmarks; /* --landmarks-from for this input, or NULL */
    int owned;             /* the strings were allocated (--list) */
} input_t;

typedef struct options {
    input_t inputs[MAX_INPUTS];
    int input_count;
    const char *out_dir;
    const char *models_dir;
    const char *cache_dir; /* --cache-dir; NULL: the default */
    unsigned flags;
    int quiet;
    int threads; /* threads in all; 0 = one per core */
    int stream_timestamps; /* --stream-timestamps */
    fa_settings_t settings;
} options_t;

static volatile sig_atomic_t interrupted;

__attribute__((format(printf, 3, 4))) static fa_status fail(fa_error_t *error, fa_status status,
                                                            const char *format, ...)
{
    error->status = status;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(error->message, sizeof error->message, format, arguments);
    va_end(arguments);
    return status;
}

static void on_signal(int signal_number) { interrupted = signal_number; }

static void usage(FILE *out)
{
    fputs("usage: faceau -f VIDEO [-f VIDEO ...] [-fdir FOLDER] -out_dir DIR\n"
          "              [--landmarks-from CSV] [-aus] [-pose] [-gaze] [-pdmparams] [-2Dfp]\n"
          "              [-3Dfp] [-hogalign] [-simalign] [-simscale S] [-simsize N] [-nomask]\n"
          "              [-g] [-au_static] [--models DIR] [--cache-dir DIR] [-q]\n"
          "Computes OpenFace 2.2's facial Action Units. Writes DIR/<name>.csv and, when asked\n"
          "(or when no output flag is given), DIR/<name>.hog and DIR/<name>_aligned/.\n"
          "  -f VIDEO              a video file (repeat for several)\n"
          "  -pose -3Dfp           head pose and 3D landmark columns\n"
          "  -gaze                 gaze and eye landmark columns (from the tracker's eye models;\n"
          "                        none for inputs with --landmarks-from)\n"
          "  -fx -fy -cx -cy V     camera intrinsics for the pose (default: OpenFace's)\n"
          "  -fdir FOLDER          a folder of images, read in name order as one sequence\n"
          "  --landmarks-from CSV  68 landmarks per frame from an OpenFace-style CSV (columns\n"
          "                        frame, success, x_0..x_67, y_0..y_67); applies to the\n"
          "                        input given before it\n"
          "  --list FILE           inputs from a file: one video per line, optionally followed\n"
          "                        by a tab and its landmark CSV\n"
          "  --stream-timestamps   the timestamp column from the video's own frame times\n"
          "                        (variable frame rate recordings) instead of OpenFace's\n"
          "                        frame number / fps\n"
          "  --threads N           threads (default 0: one per core); several inputs are\n"
          "                        processed at once, one input uses them in its pipeline\n"
          "  --models DIR          OpenFace's model folder (holding AU_predictors/ and model/);\n"
          "                        default: $FACEAU_MODELS\n"
          "  --cache-dir DIR       where the binary model cache goes (built on first use, then\n"
          "                        loaded in milliseconds); \"\" for none. Default:\n"
          "                        $FACEAU_CACHE, else $XDG_CACHE_HOME/faceau, else\n"
          "                        ~/.cache/faceau\n"
          "  -q                    no progress line\n",
          out);
}

/* OpenFace flags faceau accepts but does not act on yet; scripts pass them routinely. */
static int is_ignored_openface_flag(const char *flag, int *takes_value)
{
    static const char *const plain[] = {"-tracked", "-verbose",
                                        "-nobadaligned", "-wild", "-multi_view", "-vis-track",
                                        "-vis-hog", "-vis-align", "-vis-aus"};
    static const char *const valued[] = {"-mloc", "-oc", "-of",
                                         "-device", "-format_aligned", "-format_vis_image"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (strcmp(flag, plain[i]) == 0) return (*takes_value = 0), 1;
    for (size_t i = 0; i < sizeof valued / sizeof *valued; i++)
        if (strcmp(flag, valued[i]) == 0) return (*takes_value = 1), 1;
    return 0;
}

/* Reads --list FILE: "video[<TAB>landmarks.csv]" per line. The strings live until exit. */
static int read_list(const char *path, options_t *options)
{
    FILE *file = fopen(path, "r");
    if (!file) {
        fprintf(stderr, "faceau: %s: %s\n", path, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t capacity = 0;
    int ok = 1;
    while (ok && getline(&line, &capacity, file) >= 0) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#') continue;
        if (options->input_count == MAX_INPUTS) {
            fprintf(stderr, "faceau: too many inputs (at most %d)\n", MAX_INPUTS);
            ok = 0;
            break;
        }
        char *tab = strchr(line, '\t');
        if (tab) *tab = '\0';
        input_t *input = &options->inputs[options->input_count++];
        input->path = strdup(line);
        input->kind = FA_SOURCE_VIDEO;
        input->landmarks = tab && tab[1] ? strdup(tab + 1) : NULL;
        input->owned = 1;
        ok = input->path && (!tab || !tab[1] || input->landmarks);
    }
    free(line);
    fclose(file);
    return ok;
}

static void free_options(options_t *options)
{
    for (int i = 0; i < options->input_count; i++) {
        if (!options->inputs[i].owned) continue;
        free((char *)options->inputs[i].path);
        free((char *)options->inputs[i].landmarks);
    }
    free(options);
}

static int parse_arguments(int argc, char **argv, options_t *options)
{
    memset(options, 0, sizeof *options);
    fa_default_settings(&options->settings);
    int scale_set = 0, size_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 0;
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(arg, "--version") == 0) {
            printf("faceau %s\n", FA_VERSION_STRING);
            exit(0);
        } else if (strcmp(arg, "-f") == 0 || strcmp(arg, "-fdir") == 0) {
            if (!value) goto missing;
            if (options->input_count == MAX_INPUTS) {
                fprintf(stderr, "faceau: too many inputs (at most %d)\n", MAX_INPUTS);
                return 0;
            }
            input_t *input = &options->inputs[options->input_count++];
            input->path = value;
            input->kind = strcmp(arg, "-f") == 0 ? FA_SOURCE_VIDEO : FA_SOURCE_DIRECTORY;
            i++;
        } else if (strcmp(arg, "--landmarks-from") == 0) {
            if (!value) goto missing;
            if (options->input_count == 0) {
                fprintf(stderr, "faceau: --landmarks-from must follow the -f it belongs to\n");
                return 0;
            }
            options->inputs[options->input_count - 1].landmarks = value;
            i++;
        } else if (strcmp(arg, "--list") == 0) {
            if (!value) goto missing;
            if (!read_list(value, options)) return 0;
            i++;
        } else if (strcmp(arg, "--threads") == 0) {
            char *end = NULL;
            long threads = value ? strtol(value, &end, 10) : -1;
            if (!value || *end || threads < 0 || threads > 1024) {
                fprintf(stderr, "faceau: --threads needs a number from 0 to 1024\n");
                return 0;
            }
            options->threads = (int)threads, i++;
        } else if (strcmp(arg, "-out_dir") == 0) {
            if (!value) goto missing;
            options->out_dir = value, i++;
        } else if (strcmp(arg, "--models") == 0) {
            if (!value) goto missing;
            options->models_dir = value, i++;
        } else if (strcmp(arg, "--cache-dir") == 0) {
            if (!value) goto missing;
            options->cache_dir = value, i++;
        } else if (strcmp(arg, "-aus") == 0) {
            options->flags |= FA_OUTPUT_AUS;
        } else if (strcmp(arg, "-pdmparams") == 0) {
            options->flags |= FA_OUTPUT_PDM_PARAMS;
        } else if (strcmp(arg, "-2Dfp") == 0) {
            options->flags |= FA_OUTPUT_LANDMARKS_2D;
        } else if (strcmp(arg, "-3Dfp") == 0) {
            options->flags |= FA_OUTPUT_LANDMARKS_3D;
        } else if (strcmp(arg, "-pose") == 0) {
            options->flags |= FA_OUTPUT_POSE;
        } else if (strcmp(arg, "-gaze") == 0) {
            options->flags |= FA_OUTPUT_GAZE;
        } else if (strcmp(arg, "-fx") == 0 || strcmp(arg, "-fy") == 0 || strcmp(arg, "-cx") == 0 ||
                   strcmp(arg, "-cy") == 0) {
            char *end = NULL;
            double number = value ? strtod(value, &end) : 0;
            if (!value || *end || !(number > 0) || number > 1e6) {
                fprintf(stderr, "faceau: bad value for %s\n", arg);
                return 0;
            }
            float *target = arg[1] == 'f' ? (arg[2] == 'x' ? &options->settings.fx
                                                           : &options->settings.fy)
                                          : (arg[2] == 'x' ? &options->settings.cx
                                                           : &options->settings.cy);
            *target = (float)number;
            i++;
        } else if (strcmp(arg, "-hogalign") == 0) {
            options->flags |= FA_OUTPUT_HOG;
        } else if (strcmp(arg, "-simalign") == 0) {
            options->flags |= FA_OUTPUT_ALIGNED;
        } else if (strcmp(arg, "-simscale") == 0 || strcmp(arg, "-simsize") == 0) {
            if (!value) goto missing;
            char *end = NULL;
            double number = strtod(value, &end);
            if (end == value || *end || !(number > 0) || number > 4096) {
                fprintf(stderr, "faceau: bad value for %s: %s\n", arg, value);
                return 0;
            }
            if (strcmp(arg, "-simscale") == 0) options->settings.aligned_scale = number, scale_set = 1;
            else options->settings.aligned_size = (int)number, size_set = 1;
            i++;
        } else if (strcmp(arg, "-nomask") == 0) {
            options->settings.aligned_mask = 0;
        } else if (strcmp(arg, "-g") == 0) {
            options->settings.aligned_gray = 1;
        } else if (strcmp(arg, "-au_static") == 0) {
            options->settings.au_static = 1;
        } else if (strcmp(arg, "-q") == 0) {
            options->quiet = 1;
        } else if (strcmp(arg, "--stream-timestamps") == 0) {
            options->stream_timestamps = 1;
        } else if (is_ignored_openface_flag(arg, &takes_value)) {
            if (takes_value && !value) goto missing;
            fprintf(stderr, "faceau: note: %s is accepted for OpenFace compatibility but not used\n",
                    arg);
            i += takes_value;
        } else {
            fprintf(stderr, "faceau: unknown option %s (see faceau --help)\n", arg);
            return 0;
        }
        continue;
    missing:
        fprintf(stderr, "faceau: %s needs a value\n", arg);
        return 0;
    }
    /* As OpenFace: -simsize alone keeps the face the same size relative to the image. */
    if (size_set && !scale_set)
        options->settings.aligned_scale = options->settings.aligned_size * (0.7 / 112.0);
    for (int i = 0; (options->flags & FA_OUTPUT_GAZE) && i < options->input_count; i++)
        if (options->inputs[i].landmarks) {
            fprintf(stderr, "faceau: note: -gaze: inputs with --landmarks-from have no eye "
                            "models, so their CSVs get no gaze columns (as OpenFace's)\n");
            break;
        }
    if (options->flags == 0) options->flags = FA_OUTPUT_ALL;
    if (options->input_count == 0 || !options->out_dir) {
        fprintf(stderr, "faceau: give at least one input (-f or -fdir) and -out_dir\n");
        return 0;
    }
    return 1;
}

/* The file name without folder and extension: OpenFace's output name. */
static void input_stem(const char *path, char *stem, size_t size)
{
    size_t length = strlen(path);
    while (length > 1 && path[length - 1] == '/') length--;
    const char *start = path;
    for (size_t i = 0; i < length; i++)
        if (path[i] == '/') start = path + i + 1;
    size_t stem_length = (size_t)(path + length - start);
    const char *dot = NULL;
    for (const char *p = start; p < path + length; p++)
        if (*p == '.') dot = p;
    if (dot && dot > start) stem_length = (size_t)(dot - start);
    if (stem_length >= size) stem_length = size - 1;
    memcpy(stem, start, stem_length);
    stem[stem_length] = '\0';
}

typedef struct run {
    fa_source_t *source;
    fa_landmark_file_t *landmarks;
    fa_session_t *session;
    fa_output_t *output;
} run_t;

static void close_run(run_t *run)
{
    fa_output_close(run->output);
    fa_session_destroy(run->session);
    fa_landmark_file_close(run->landmarks);
    fa_source_close(run->source);
}

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

typedef struct frame_loop {
    run_t *run;
    const options_t *options;
    const char *name;
    long frames_read, frames_done;
    int progress;
    double start;
} frame_loop_t;

static fa_status read_frame(void *context, fa_frame_input_t *input, fa_error_t *error)
{
    frame_loop_t *loop = context;
    fa_status status =
        fa_source_read_into(loop->run->source, &input->image, &input->timestamp, error);
    if (status == FA_OK && loop->run->landmarks) {
        status = fa_landmark_file_get(loop->run->landmarks, (int)(loop->frames_read + 1),
                                      &input->landmarks, error);
        input->has_landmarks = 1;
    }
    if (status == FA_OK) loop->frames_read++;
    return status;
}

static fa_status frame_done(void *context, const fa_image_t *frame, const fa_frame_result_t *result,
                            fa_error_t *error)
{
    frame_loop_t *loop = context;
    const fa_image_t *aligned = NULL;
    fa_status status = FA_OK;
    if (loop->options->flags & FA_OUTPUT_ALIGNED)
        status = fa_session_aligned_output(loop->run->session, frame, result, &aligned, error);
    if (status == FA_OK) status = fa_output_write_frame(loop->run->output, result, aligned, error);
    if (status != FA_OK) return status;
    long frames = ++loop->frames_done;
    if (loop->progress && frames % 10 == 0)
        fprintf(stderr, "\r%s: %ld frames, %.0f frames/s ", loop->name, frames,
                (double)frames / (seconds_now() - loop->start));
    if (interrupted)
        return fail(error, FA_ERROR_INPUT, "%s: interrupted after frame %ld", loop->name, frames);
    return FA_OK;
}

static fa_status process_frames(run_t *run, const options_t *options, const char *name,
                                long *frames, fa_error_t *error)
{
    frame_loop_t loop = {.run = run, .options = options, .name = name, .start = seconds_now()};
    loop.progress = !options->quiet && options->input_count == 1 && isatty(STDERR_FILENO);
    fa_status status = fa_session_run(run->session, read_frame, &loop, frame_done, &loop, error);
    *frames = loop.frames_done;
    if (loop.progress) fputc('\n', stderr);
    return status;
}

static fa_status process_input(const input_t *input, const options_t *options,
                               const fa_models_t *models, fa_error_t *error)
{
    run_t run = {0};
    char stem[1024];
    input_stem(input->path, stem, sizeof stem);
    long frames = 0;
    fa_status status = fa_source_open(input->path, input->kind, &run.source, error);
    if (status == FA_OK && options->stream_timestamps)
        fa_source_use_stream_timestamps(run.source, 1);
    if (status == FA_OK && input->landmarks)
        status = fa_landmark_file_open(input->landmarks, &run.landmarks, error);
    if (status == FA_OK) status = fa_session_create(models, &options->settings, &run.session, error);
    /* FeatureExtraction drops the gaze columns when there are no eye models. */
    unsigned flags = input->landmarks ? options->flags & ~FA_OUTPUT_GAZE : options->flags;
    if (status == FA_OK)
        status = fa_output_open(options->out_dir, stem, flags, models, &run.output, error);
    if (status == FA_OK) status = process_frames(&run, options, stem, &frames, error);
    fa_au_series_t series;
    if (status == FA_OK && frames == 0)
        status = fail(error, FA_ERROR_INPUT, "%s: no frame could be decoded", input->path);
    if (status == FA_OK) status = fa_session_postprocess(run.session, &series, error);
    if (status == FA_OK) status = fa_output_finish(run.output, &series, error);
    if (status == FA_OK && !options->quiet)
        fprintf(stderr, "%s: %ld frames -> %s\n", input->path, frames,
                fa_output_csv_path(run.output));
    else if (status != FA_OK && run.output)
        fprintf(stderr, "faceau: %s: incomplete output: %ld frames written to %s\n", input->path,
                frames, fa_output_csv_path(run.output));
    close_run(&run);
    return status;
}

/* Inputs are shared out to worker threads; each has its own session over the shared models. */
typedef struct batch {
    const options_t *options;
    const fa_models_t *models;
    pthread_mutex_t lock;
    int next;
    fa_status *statuses;
} batch_t;

static void *batch_worker(void *argument)
{
    batch_t *batch = argument;
    for (;;) {
        pthread_mutex_lock(&batch->lock);
        int index = batch->next++;
        pthread_mutex_unlock(&batch->lock);
        if (index >= batch->options->input_count || interrupted) break;
        fa_error_t error = {0};
        batch->statuses[index] =
            process_input(&batch->options->inputs[index], batch->options, batch->models, &error);
        if (batch->statuses[index] != FA_OK) fprintf(stderr, "faceau: %s\n", error.message);
    }
    return NULL;
}

/* Returns the exit code of the first failed input (in input order), 0 if none. */
static int run_batch(options_t *options, const fa_models_t *models, int *failures)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int total = options->threads ? options->threads : (cores > 0 ? (int)cores : 1);
    int workers = total < options->input_count ? total : options->input_count;
    options->threads = workers;
    /* Threads beyond one per input go to each input's own pipeline. */
    options->settings.n_threads = total / workers > 1 ? total / workers : 1;
    batch_t batch = {.options = options, .models = models};
    batch.statuses = malloc(sizeof *batch.statuses * (size_t)options->input_count);
    pthread_t *threads = calloc((size_t)workers, sizeof *threads);
    /* FA_ERROR_END marks an input not reached (after an interruption). */
    for (int i = 0; batch.statuses && i < options->input_count; i++)
        batch.statuses[i] = FA_ERROR_END;
    if (!batch.statuses || !threads || pthread_mutex_init(&batch.lock, NULL) != 0) {
        fprintf(stderr, "faceau: out of memory\n");
        free(batch.statuses);
        free(threads);
        return 10 + FA_ERROR_NO_MEMORY;
    }
    int started = 0;
    for (; started < workers - 1; started++)
        if (pthread_create(&threads[started], NULL, batch_worker, &batch) != 0) break;
    batch_worker(&batch); /* the main thread works too */
    for (int i = 0; i < started; i++) pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&batch.lock);
    int exit_code = 0;
    *failures = 0;
    for (int i = 0; i < options->input_count; i++) {
        if (batch.statuses[i] == FA_OK) continue;
        ++*failures;
        if (!exit_code) exit_code = 10 + (int)batch.statuses[i];
    }
    free(batch.statuses);
    free(threads);
    return exit_code;
}

/* The model cache folder: --cache-dir, else $FACEAU_CACHE, else $XDG_CACHE_HOME/faceau, else
 * ~/.cache/faceau; "" (given or in FACEAU_CACHE) means no cache. */
static const char *cache_folder(const options_t *options, char *buffer, size_t size)
{
    if (options->cache_dir) return options->cache_dir;
    const char *folder = getenv("FACEAU_CACHE");
    if (folder) return folder;
    const char *base = getenv("XDG_CACHE_HOME"), *suffix = "/faceau";
    if (!base || base[0] != '/') {
        base = getenv("HOME"), suffix = "/.cache/faceau";
        if (!base || !base[0]) return "";
    }
    int written = snprintf(buffer, size, "%s%s", base, suffix);
    return written > 0 && (size_t)written < size ? buffer : "";
}

int main(int argc, char **argv)
{
    options_t *options = malloc(sizeof *options);
    if (!options) return 1;
    if (!parse_arguments(argc, argv, options)) {
        free_options(options);
        return EXIT_USAGE;
    }
    const char *models_dir = options->models_dir ? options->models_dir : getenv("FACEAU_MODELS");
    if (!models_dir || !models_dir[0]) {
        fprintf(stderr, "faceau: where are OpenFace's models? Give --models DIR or set "
                        "FACEAU_MODELS (see README)\n");
        free_options(options);
        return EXIT_USAGE;
    }
    /* The detector and tracker load only when some input needs them. */
    options->settings.tracker = 0;
    for (int i = 0; i < options->input_count; i++)
        if (!options->inputs[i].landmarks) options->settings.tracker = 1;
    char cache_buffer[4096];
    options->settings.cache_dir = cache_folder(options, cache_buffer, sizeof cache_buffer);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fa_error_t error = {0};
    fa_models_t *models = NULL;
    if (fa_models_load(models_dir, &options->settings, &models, &error) != FA_OK) {
        fprintf(stderr, "faceau: cannot load models: %s\n", error.message);
        free_options(options);
        return 10 + (int)error.status;
    }
    int failures = 0, exit_code = run_batch(options, models, &failures);
    if (options->input_count > 1)
        fprintf(stderr, "faceau: %d of %d inputs done, %d failed\n",
                options->input_count - failures, options->input_count, failures);
    fa_models_free(models);
    free_options(options);
    if (interrupted) return 128 + interrupted;
    return exit_code;
}
