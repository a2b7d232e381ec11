/* Per-stage benchmark: for each sample video (OpenFace's landmarks as input), the median time
 * per frame of every stage, its share, end-to-end frames/s, model-load time (from text, with a
 * cold and a warm model cache) and peak memory.
 * Usage: bench_stages [--track] [--loop N] [VIDEO [LANDMARKS.csv]] (default: the two sample
 * videos in ../shared with OpenFace's landmarks; --track: faceau's own detector and tracker;
 * --loop N: default.wmv repeated up to N times in one session, resident memory at the end). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "faceau.h"
#include "features/fhog.h"

/* Rows: decode, landmark reading, the session's own stages, output. */
enum {
    STAGE_DECODE,
    STAGE_LANDMARKS,
    STAGE_SESSION_FIRST,
    STAGE_OUTPUT = STAGE_SESSION_FIRST + FA_STAGE_COUNT,
    STAGE_COUNT
};

static const char *stage_label(int stage)
{
    if (stage == STAGE_DECODE) return "decode (FFmpeg, to BGR)";
    if (stage == STAGE_LANDMARKS) return "landmarks (CSV read)";
    if (stage == STAGE_OUTPUT) return "output (CSV row, HOG record)";
    return fa_stage_name((fa_stage)(stage - STAGE_SESSION_FIRST));
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int count)
{
    if (count == 0) return 0;
    qsort(values, (size_t)count, sizeof *values, compare_doubles);
    return count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

static int bench_video(const fa_models_t *models, const char *video, const char *landmarks_path)
{
    int detections = 0;
    enum { MAX_FRAMES = 100000 };
    double *times[STAGE_COUNT];
    for (int s = 0; s < STAGE_COUNT; s++) times[s] = malloc(sizeof(double) * MAX_FRAMES);
    fa_error_t error = {0};
    fa_source_t *source = NULL;
    fa_landmark_file_t *landmarks = NULL;
    fa_session_t *session = NULL;
    fa_output_t *output = NULL;
    fa_settings_t settings; /* one thread: each stage's own cost */
    fa_default_settings(&settings);
    settings.n_threads = 1;
    char out_dir[] = "/tmp/faceau_bench_XXXXXX";
    if (!mkdtemp(out_dir) || fa_source_open(video, FA_SOURCE_VIDEO, &source, &error) ||
        (landmarks_path && fa_landmark_file_open(landmarks_path, &landmarks, &error)) ||
        fa_session_create(models, &settings, &session, &error) ||
        fa_output_open(out_dir, "bench", FA_OUTPUT_LANDMARKS_2D | FA_OUTPUT_PDM_PARAMS |
                                             FA_OUTPUT_AUS | FA_OUTPUT_HOG,
                       models, &output, &error)) {
        fprintf(stderr, "bench: %s\n", error.message);
        return 1;
    }
    int frames = 0;
    double start = now();
    while (frames < MAX_FRAMES) {
        const fa_image_t *frame;
        double timestamp, t0 = now();
        if (fa_source_read(source, &frame, &timestamp, &error) != FA_OK) break;
        double t1 = now();
        fa_landmarks_t lm;
        if (landmarks) fa_landmark_file_get(landmarks, frames + 1, &lm, &error);
        double t2 = now();
        fa_frame_result_t result;
        if (fa_session_process(session, frame, timestamp, landmarks ? &lm : NULL, &result,
                               &error) != FA_OK)
            break;
        detections += result.detector_ran;
        double t3 = now();
        fa_output_write_frame(output, &result, NULL, &error);
        double t4 = now();
        double session_seconds[FA_STAGE_COUNT];
        fa_session_stage_seconds(session, session_seconds);
        times[STAGE_DECODE][frames] = t1 - t0;
        times[STAGE_LANDMARKS][frames] = t2 - t1;
        for (int s = 0; s < FA_STAGE_COUNT; s++)
            times[STAGE_SESSION_FIRST + s][frames] = session_seconds[s];
        times[STAGE_OUTPUT][frames] = t4 - t3;
        frames++;
    }
    double t_post = now();
    fa_au_series_t series;
    fa_session_postprocess(session, &series, &error);
    fa_output_finish(output, &series, &error);
    double end = now();
    double medians[STAGE_COUNT], total = 0;
    for (int s = 0; s < STAGE_COUNT; s++) total += medians[s] = median(times[s], frames);
    printf("\n%s: %d frames\n%-32s %10s %7s\n", video, frames, "stage", "us/frame", "share");
    for (int s = 0; s < STAGE_COUNT; s++)
        printf("%-32s %10.1f %6.1f%%\n", stage_label(s), 1e6 * medians[s],
               100.0 * medians[s] / total);
    printf("%-32s %10.1f\n", "sum of medians", 1e6 * total);
    /* The mean is above the sum of medians: the first frame runs the detector's multi-view
     * search, and some frames take more fitting iterations than the median one. */
    double frame_sum = 0, first = 0;
    for (int f = 0; f < frames; f++)
        for (int s = 0; s < STAGE_COUNT; s++) {
            frame_sum += times[s][f];
            if (f == 0) first += times[s][f];
        }
    if (frames > 0)
        printf("%-32s %10.1f (first frame %.1f ms)\n", "mean per frame", 1e6 * frame_sum / frames,
               1e3 * first);
    printf("%-32s %10.1f us once\n", "post-processing + CSV rewrite", 1e6 * (end - t_post));
    printf("end to end, stage by stage, 1 thread: %.1f frames/s (%.3f s)\n", frames / (end - start),
           end - start);
    if (!landmarks) printf("face detector ran on %d of %d frames\n", detections, frames);
    fa_output_close(output);
    fa_session_destroy(session);
    fa_landmark_file_close(landmarks);
    fa_source_close(source);
    for (int s = 0; s < STAGE_COUNT; s++) free(times[s]);
    char command[256];
    snprintf(command, sizeof command, "rm -rf %s", out_dir);
    return system(command) != 0;
}

/* End to end through fa_session_run (the library's threaded pipeline), all CSV outputs and the
 * .hog file: frames read by a callback that decodes (and, with loops > 1, starts the video
 * again), results written in order. Memory is sampled every `loops` pass. */
typedef struct run_input {
    const char *video;
    fa_source_t *source;
    fa_landmark_file_t *landmarks;
    const char *landmarks_path;
    int loops, loop, frame_in_loop;
    long frames;
    fa_output_t *output;
} run_input_t;

static long resident_kb(void)
{
    FILE *file = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (file) {
        if (fscanf(file, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(file);
    }
    return resident * 4;
}

static fa_status run_read(void *context, fa_frame_input_t *input, fa_error_t *error)
{
    run_input_t *run = context;
    for (;;) {
        fa_status status =
            fa_source_read_into(run->source, &input->image, &input->timestamp, error);
        if (status == FA_ERROR_END && ++run->loop < run->loops) {
            fa_source_close(run->source);
            run->source = NULL;
            run->frame_in_loop = 0;
            status = fa_source_open(run->video, FA_SOURCE_VIDEO, &run->source, error);
            if (status == FA_OK && run->landmarks) {
                fa_landmark_file_close(run->landmarks);
                run->landmarks = NULL;
                status = fa_landmark_file_open(run->landmarks_path, &run->landmarks, error);
            }
            if (status == FA_OK) continue;
        }
        if (status == FA_OK && run->landmarks) {
            input->has_landmarks = 1;
            status = fa_landmark_file_get(run->landmarks, ++run->frame_in_loop, &input->landmarks,
                                          error);
        }
        return status;
    }
}

static fa_status run_done(void *context, const fa_image_t *frame, const fa_frame_result_t *result,
                          fa_error_t *error)
{
    (void)frame;
    run_input_t *run = context;
    run->frames++;
    return fa_output_write_frame(run->output, result, NULL, error);
}

/* Runs the video `loops` times in one session with `threads` threads; returns frames/s (0 on
 * failure) and, through resident_mb, the resident memory at the end. */
static double run_video(const fa_models_t *models, const char *video, const char *landmarks_path,
                        int threads, int loops, double *resident_mb)
{
    fa_settings_t settings;
    fa_default_settings(&settings);
    settings.n_threads = threads;
    fa_error_t error = {0};
    run_input_t run = {.video = video, .landmarks_path = landmarks_path, .loops = loops};
    fa_session_t *session = NULL;
    char out_dir[] = "/tmp/faceau_bench_XXXXXX";
    double frames_per_second = 0, start = now();
    if (!mkdtemp(out_dir)) return 0;
    if (fa_source_open(video, FA_SOURCE_VIDEO, &run.source, &error) == FA_OK &&
        (!landmarks_path ||
         fa_landmark_file_open(landmarks_path, &run.landmarks, &error) == FA_OK) &&
        fa_session_create(models, &settings, &session, &error) == FA_OK &&
        fa_output_open(out_dir, "bench", FA_OUTPUT_LANDMARKS_2D | FA_OUTPUT_PDM_PARAMS |
                                             FA_OUTPUT_AUS | FA_OUTPUT_HOG | FA_OUTPUT_POSE |
                                             FA_OUTPUT_LANDMARKS_3D,
                       models, &run.output, &error) == FA_OK &&
        fa_session_run(session, run_read, &run, run_done, &run, &error) == FA_OK) {
        fa_au_series_t series;
        if (fa_session_postprocess(session, &series, &error) == FA_OK &&
            fa_output_finish(run.output, &series, &error) == FA_OK)
            frames_per_second = (double)run.frames / (now() - start);
    }
    if (error.status != FA_OK) fprintf(stderr, "bench: %s\n", error.message);
    *resident_mb = resident_kb() / 1024.0;
    fa_output_close(run.output);
    fa_session_destroy(session);
    fa_landmark_file_close(run.landmarks);
    fa_source_close(run.source);
    char command[256];
    snprintf(command, sizeof command, "rm -rf %s", out_dir);
    if (system(command) != 0) fprintf(stderr, "bench: cannot remove %s\n", out_dir);
    return frames_per_second;
}

/* End-to-end frames/s, median of `repeats` runs, for 1 thread and all cores; then all cores on
 * the video played LONG_LOOPS times in one session, where the per-video costs (opening the
 * video, the first frame's face detection, post-processing) weigh as little as on a long
 * recording. */
enum { LONG_LOOPS = 8, LONG_REPEATS = 3 };
static void bench_end_to_end(const fa_models_t *models, const char *video,
                             const char *landmarks_path, int repeats)
{
    int thread_counts[2] = {1, 0};
    for (int t = 0; t < 2; t++) {
        double samples[16], resident = 0;
        for (int r = 0; r < repeats; r++)
            samples[r] = run_video(models, video, landmarks_path, thread_counts[t], 1, &resident);
        printf("end to end (fa_session_run), %s: %.1f frames/s (median of %d runs)\n",
               thread_counts[t] ? "1 thread" : "all cores", median(samples, repeats), repeats);
    }
    double samples[LONG_REPEATS], resident = 0;
    for (int r = 0; r < LONG_REPEATS; r++)
        samples[r] = run_video(models, video, landmarks_path, 0, LONG_LOOPS, &resident);
    printf("end to end (fa_session_run), all cores, the video %d times in one session: %.1f "
           "frames/s (median of %d runs)\n",
           LONG_LOOPS, median(samples, LONG_REPEATS), LONG_REPEATS);
}

/* Micro-benchmark of the FHOG kernel alone (the AU engine's largest part). */
static void bench_fhog(void)
{
    fa_image_t face;
    fa_image_allocate(&face, FA_ALIGNED_SIZE, FA_ALIGNED_SIZE, 3, NULL);
    for (int i = 0; i < FA_ALIGNED_SIZE * FA_ALIGNED_SIZE * 3; i++)
        face.data[i] = (uint8_t)((i * 2654435761u) >> 24);
    static float features[FA_HOG_SIZE];
    enum { RUNS = 2000 };
    double samples[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now();
        fa_fhog_extract(&face, features);
        samples[r] = now() - t0;
    }
    printf("FHOG kernel: %.1f us per 112x112 face (median of %d)\n", 1e6 * median(samples, RUNS),
           RUNS);
    fa_image_release(&face);
}

/* Median time of `runs` loads with settings (the cache file, when fresh is set, is removed
 * before each load: a cold start). */
static double load_milliseconds(const char *models_dir, const fa_settings_t *settings, int runs,
                                int fresh)
{
    enum { MAX_RUNS = 16 };
    double samples[MAX_RUNS];
    for (int r = 0; r < runs && r < MAX_RUNS; r++) {
        if (fresh && settings->cache_dir) {
            char command[8300];
            snprintf(command, sizeof command, "rm -f '%s'/models-*.cache", settings->cache_dir);
            if (system(command) != 0) return -1;
        }
        fa_error_t error = {0};
        fa_models_t *models = NULL;
        double t0 = now();
        if (fa_models_load(models_dir, settings, &models, &error) != FA_OK) {
            fprintf(stderr, "bench: %s\n", error.message);
            return -1;
        }
        samples[r] = now() - t0;
        fa_models_free(models);
    }
    return 1e3 * median(samples, runs < MAX_RUNS ? runs : MAX_RUNS);
}

/* Startup without a cache, with an empty one (cold: the text models are read and the cache
 * written) and with a warm one, measured in a child process so that the cold loads' memory does
 * not count in the peak of the run that follows. Leaves a warm cache in cache_dir. */
static int bench_startup(const char *models_dir, fa_settings_t settings, const char *cache_dir)
{
    enum { RUNS = 5 };
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        settings.cache_dir = NULL;
        double text = load_milliseconds(models_dir, &settings, RUNS, 0);
        settings.cache_dir = cache_dir;
        double cold = load_milliseconds(models_dir, &settings, RUNS, 1);
        printf("model load (medians of %d): text models, no cache %.1f ms; cold cache (text + "
               "writing it) %.1f ms\n",
               RUNS, text, cold);
        fflush(stdout);
        _exit(text < 0 || cold < 0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    printf("peak memory while loading from text: %.1f MB\n", usage.ru_maxrss / 1024.0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 1;
    settings.cache_dir = cache_dir;
    double warm = load_milliseconds(models_dir, &settings, RUNS, 0);
    char command[8300];
    snprintf(command, sizeof command, "du -k '%s' | tail -1", cache_dir);
    FILE *du = popen(command, "r");
    long kilobytes = 0;
    if (du) {
        if (fscanf(du, "%ld", &kilobytes) != 1) kilobytes = 0;
        pclose(du);
    }
    printf("model load, warm cache: %.2f ms (median of %d); cache file %.1f MB\n", warm, RUNS,
           kilobytes / 1024.0);
    return warm < 0;
}

int main(int argc, char **argv)
{
    int track = argc > 1 && strcmp(argv[1], "--track") == 0;
    argc -= track, argv += track;
    /* --loop N: memory over a long input (the video N times in one session). */
    int loops = argc > 2 && strcmp(argv[1], "--loop") == 0 ? atoi(argv[2]) : 0;
    if (loops) argc -= 2, argv += 2;
    const char *models_dir = getenv("FACEAU_MODELS");
    static char default_models[4096];
    if (!models_dir) {
        snprintf(default_models, sizeof default_models, "%s/models/openface", FACEAU_SHARED_DIR);
        models_dir = default_models;
    }
    char cache_dir[] = "/tmp/faceau_bench_cache_XXXXXX";
    if (!mkdtemp(cache_dir)) {
        perror("bench: mkdtemp");
        return 1;
    }
    fa_settings_t settings;
    fa_default_settings(&settings);
    settings.tracker = track;
    if (bench_startup(models_dir, settings, cache_dir) != 0) return 1;
    /* The videos run with models from the warm cache, as a second run of faceau would. */
    fa_error_t error = {0};
    fa_models_t *models = NULL;
    settings.cache_dir = cache_dir;
    if (fa_models_load(models_dir, &settings, &models, &error) != FA_OK) {
        fprintf(stderr, "bench: %s\n", error.message);
        return 1;
    }
    bench_fhog();
    int failed = 0;
    if (loops > 0) {
        char video[4096], landmarks[4096];
        snprintf(video, sizeof video, "%s/data/videos/default.wmv", FACEAU_SHARED_DIR);
        snprintf(landmarks, sizeof landmarks,
                 "%s/data/reference/openface-2.2-clnf/default/default.csv", FACEAU_SHARED_DIR);
        for (int n = 1; n <= loops; n *= 4) {
            double resident = 0, fps = run_video(models, video, track ? NULL : landmarks, 0, n,
                                                 &resident);
            printf("%6d frames in one session: %.1f frames/s, resident at the end %.1f MB\n",
                   288 * n, fps, resident);
            failed |= fps == 0;
        }
    } else if (argc >= 2) {
        failed |= bench_video(models, argv[1], track ? NULL : argc > 2 ? argv[2] : NULL);
        bench_end_to_end(models, argv[1], track ? NULL : argc > 2 ? argv[2] : NULL, 5);
    } else {
        const char *names[] = {"default", "changeLighting"};
        for (int i = 0; i < 2; i++) {
            char video[4096], landmarks[4096];
            snprintf(video, sizeof video, "%s/data/videos/%s.wmv", FACEAU_SHARED_DIR, names[i]);
            snprintf(landmarks, sizeof landmarks,
                     "%s/data/reference/openface-2.2-clnf/%s/%s.csv", FACEAU_SHARED_DIR,
                     names[i], names[i]);
            failed |= bench_video(models, video, track ? NULL : landmarks);
            bench_end_to_end(models, video, track ? NULL : landmarks, 5);
        }
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("\npeak memory (models from the warm cache): %.1f MB\n", usage.ru_maxrss / 1024.0);
    fa_models_free(models);
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", cache_dir);
    failed |= system(command) != 0;
    return failed;
}
