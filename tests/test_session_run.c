/* fa_session_run (reader, tracker and feature threads) gives exactly what fa_session_process
 * gives frame by frame, for 1, 2 and 3 threads, with the built-in tracker and with given
 * landmarks; errors from either callback stop the run and come back with their message. */
#include <stdlib.h>
#include <string.h>

#include "testing.h"

enum { FRAMES = 40 };

/* What a frame's result must reproduce: every number, the HOG and the aligned face. */
typedef struct frame_record {
    fa_frame_result_t result;
    float hog[FA_HOG_SIZE];
    uint8_t aligned[FA_ALIGNED_SIZE * FA_ALIGNED_SIZE * 3];
} frame_record_t;

static void record(frame_record_t *out, const fa_frame_result_t *result)
{
    out->result = *result;
    out->result.hog = NULL;
    out->result.geometry = NULL;
    memset(&out->result.aligned, 0, sizeof out->result.aligned);
    memcpy(out->hog, result->hog, sizeof out->hog);
    for (int y = 0; y < FA_ALIGNED_SIZE; y++)
        memcpy(out->aligned + y * FA_ALIGNED_SIZE * 3,
               result->aligned.data + y * result->aligned.stride, FA_ALIGNED_SIZE * 3);
}

typedef struct run_state {
    fa_source_t *source;
    fa_landmark_file_t *landmarks;
    int frames_read, frames_done;
    int fail_read_at, fail_done_at; /* 1-based frame numbers; 0 = never */
    frame_record_t *records;
} run_state_t;

static fa_status read_frame(void *context, fa_frame_input_t *input, fa_error_t *error)
{
    run_state_t *state = context;
    if (state->frames_read == FRAMES) return FA_ERROR_END;
    if (state->frames_read + 1 == state->fail_read_at) {
        snprintf(error->message, sizeof error->message, "reader fails at %d", state->fail_read_at);
        return error->status = FA_ERROR_INPUT;
    }
    const fa_image_t *frame;
    fa_status status = fa_source_read(state->source, &frame, &input->timestamp, error);
    if (status == FA_OK) status = fa_image_copy(&input->image, frame, error);
    if (status == FA_OK && state->landmarks) {
        input->has_landmarks = 1;
        status = fa_landmark_file_get(state->landmarks, state->frames_read + 1, &input->landmarks,
                                      error);
    }
    state->frames_read++;
    return status;
}

static fa_status frame_done(void *context, const fa_image_t *frame, const fa_frame_result_t *result,
                            fa_error_t *error)
{
    run_state_t *state = context;
    CHECK(frame->width == 640 && frame->height == 480, "frame %dx%d", frame->width, frame->height);
    CHECK(result->frame_number == state->frames_done + 1, "frame %d arrived as %d",
          state->frames_done + 1, result->frame_number);
    if (result->frame_number == state->fail_done_at) {
        snprintf(error->message, sizeof error->message, "writer fails at %d", state->fail_done_at);
        return error->status = FA_ERROR_IO;
    }
    if (state->frames_done < FRAMES) record(&state->records[state->frames_done], result);
    state->frames_done++;
    return FA_OK;
}

static fa_status run(const fa_models_t *models, int threads, const char *landmarks,
                     run_state_t *state, fa_error_t *error)
{
    fa_settings_t settings;
    fa_default_settings(&settings);
    settings.n_threads = threads;
    fa_session_t *session = NULL;
    fa_status status =
        fa_source_open(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO,
                       &state->source, error);
    if (status == FA_OK && landmarks)
        status = fa_landmark_file_open(landmarks, &state->landmarks, error);
    if (status == FA_OK) status = fa_session_create(models, &settings, &session, error);
    if (status == FA_OK)
        status = fa_session_run(session, read_frame, state, frame_done, state, error);
    fa_session_destroy(session);
    fa_landmark_file_close(state->landmarks);
    fa_source_close(state->source);
    return status;
}

/* The reference: fa_session_process, one frame after the other, one thread. */
static void process_in_order(const fa_models_t *models, const char *landmarks_path,
                             frame_record_t *records)
{
    fa_settings_t settings;
    fa_default_settings(&settings);
    settings.n_threads = 1;
    fa_error_t error = {0};
    fa_source_t *source = NULL;
    fa_landmark_file_t *landmarks = NULL;
    fa_session_t *session = NULL;
    CHECK(fa_source_open(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO, &source,
                         &error) == FA_OK,
          "%s", error.message);
    if (landmarks_path) CHECK_OK(fa_landmark_file_open(landmarks_path, &landmarks, &error));
    CHECK_OK(fa_session_create(models, &settings, &session, &error));
    for (int i = 0; session && i < FRAMES; i++) {
        const fa_image_t *frame;
        double timestamp;
        fa_landmarks_t given;
        fa_frame_result_t result;
        if (fa_source_read(source, &frame, &timestamp, &error) != FA_OK) break;
        if (landmarks) CHECK_OK(fa_landmark_file_get(landmarks, i + 1, &given, &error));
        CHECK_OK(fa_session_process(session, frame, timestamp, landmarks ? &given : NULL, &result,
                                    &error));
        record(&records[i], &result);
    }
    fa_session_destroy(session);
    fa_landmark_file_close(landmarks);
    fa_source_close(source);
}

static void compare_runs(const fa_models_t *models, const char *landmarks, const char *what)
{
    frame_record_t *expected = calloc(FRAMES, sizeof *expected);
    frame_record_t *got = calloc(FRAMES, sizeof *got);
    process_in_order(models, landmarks, expected);
    for (int threads = 1; threads <= 3; threads++) {
        memset(got, 0, sizeof *got * FRAMES);
        run_state_t state = {.records = got};
        fa_error_t error = {0};
        fa_status status = run(models, threads, landmarks, &state, &error);
        CHECK(status == FA_OK, "%s, %d threads: %s", what, threads, error.message);
        CHECK(state.frames_done == FRAMES, "%s, %d threads: %d frames", what, threads,
              state.frames_done);
        int differing = 0;
        for (int i = 0; i < FRAMES; i++)
            differing += memcmp(&expected[i], &got[i], sizeof got[i]) != 0;
        CHECK(differing == 0, "%s, %d threads: %d of %d frames differ from fa_session_process",
              what, threads, differing, FRAMES);
    }
    free(expected);
    free(got);
}

static void check_failures(const fa_models_t *models)
{
    for (int threads = 1; threads <= 2; threads++) {
        frame_record_t *records = calloc(FRAMES, sizeof *records);
        run_state_t state = {.records = records, .fail_read_at = 10};
        fa_error_t error = {0};
        fa_status status = run(models, threads, NULL, &state, &error);
        CHECK(status == FA_ERROR_INPUT, "%d threads: reader failure gave %d", threads, status);
        CHECK(strstr(error.message, "reader fails at 10") != NULL, "message '%s'", error.message);
        CHECK(state.frames_done == 9, "%d threads: %d frames done before the failure", threads,
              state.frames_done);

        state = (run_state_t){.records = records, .fail_done_at = 5};
        error = (fa_error_t){0};
        status = run(models, threads, NULL, &state, &error);
        CHECK(status == FA_ERROR_IO, "%d threads: writer failure gave %d", threads, status);
        CHECK(strstr(error.message, "writer fails at 5") != NULL, "message '%s'", error.message);
        CHECK(state.frames_done == 4, "%d threads: %d frames done", threads, state.frames_done);
        free(records);
    }
}

int main(void)
{
    fa_error_t error = {0};
    fa_models_t *models = NULL;
    CHECK(fa_models_load(test_models_dir(), NULL, &models, &error) == FA_OK, "%s", error.message);
    if (models) {
        compare_runs(models, NULL, "built-in tracker");
        compare_runs(models, test_shared_path("data/reference/openface-2.2-clnf/default/default.csv"),
                     "given landmarks");
        check_failures(models);
    }
    fa_models_free(models);
    return test_finish("test_session_run");
}
