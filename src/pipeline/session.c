/* Models and sessions: the AU engine of one face in one video, as OpenFace's
 * FaceAnalyser::AddNextFrame runs it (PIPELINE_SPEC §0 step 4). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "align/align.h"
#include "au/au.h"
#include "core/error.h"
#include "core/file.h"
#include "core/image.h"
#include "core/pool.h"
#include "features/fhog.h"
#include "features/geometry.h"
#include "pdm/pdm.h"
#include "pipeline/face_tracker.h"
#include "pipeline/model_cache.h"
#include "pose/pose.h"

enum { PATH_SIZE = 4096 };

static const double AU_ALIGN_SCALE = 0.7; /* OpenFace's fixed scale for the AU face */

struct fa_models {
    fa_au_models_t *au;
    fa_pdm_t pdm;
    fa_triangulation_t triangulation;
    fa_face_models_t *faces; /* detector and tracker; NULL when not loaded */
    fa_model_cache_t *cache; /* when restored from the cache: owns all of the above */
};

struct fa_session {
    const fa_models_t *models;
    fa_settings_t settings;
    fa_au_state_t *au;
    fa_face_tracker_t *tracker; /* NULL without face models */
    int threads;                /* resolved n_threads */
    fa_pool_t *pool;            /* the tracker's helpers; NULL with one thread */
    int face_found;             /* the AU stage's success of the last frame */
    float aligned_params[6];    /* CalcParams' global parameters of the last frame */
    int frame_count;
    fa_camera_t camera;         /* the pose's intrinsics, fixed on the first frame */
    fa_image_t au_face;       /* 112x112 BGR masked face: the HOG input */
    fa_image_t output_face;   /* aligned-face output when its settings differ from au_face */
    fa_image_t output_gray;   /* gray copy of au_face for -g when the settings match it */
    float hog[FA_HOG_SIZE];
    double geometry[FA_GEOMETRY_SIZE];
    double stage_seconds[FA_STAGE_COUNT];
};

static double seconds_now(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

const char *fa_stage_name(fa_stage stage)
{
    static const char *const names[FA_STAGE_COUNT] = {
        "tracking (MTCNN, CLNF)", "CalcParams", "alignment", "FHOG",
        "geometry",               "AU (medians, SVR, SVM)", "pose, 3D landmarks, gaze"};
    return stage >= 0 && stage < FA_STAGE_COUNT ? names[stage] : "unknown";
}

void fa_session_stage_seconds(const fa_session_t *session, double seconds[FA_STAGE_COUNT])
{
    memcpy(seconds, session->stage_seconds, sizeof session->stage_seconds);
}

void fa_default_settings(fa_settings_t *settings)
{
    memset(settings, 0, sizeof *settings);
    settings->n_threads = 0;
    settings->aligned_scale = AU_ALIGN_SCALE;
    settings->aligned_size = FA_ALIGNED_SIZE;
    settings->aligned_mask = 1;
    settings->tracker = 1;
}

/* OpenFace's text models: the AU predictors, their PDM and triangulation, and (with the tracker)
 * the detector, the CLNF model set and the validator. */
static fa_status load_text_models(const char *models_dir, const fa_settings_t *settings,
                                  fa_models_t *models, fa_error_t *error)
{
    char au_dir[PATH_SIZE], pdm_path[PATH_SIZE], triangulation_path[PATH_SIZE];
    fa_status status = fa_path_join(au_dir, sizeof au_dir, models_dir, "AU_predictors", error);
    if (status == FA_OK)
        status = fa_au_models_load(au_dir, settings->au_static, &models->au, pdm_path,
                                   sizeof pdm_path, triangulation_path, sizeof triangulation_path,
                                   error);
    if (status == FA_OK) status = fa_pdm_load(pdm_path, &models->pdm, error);
    if (status == FA_OK && (models->pdm.point_count != FA_NUM_LANDMARKS ||
                            models->pdm.mode_count != FA_NUM_PDM_MODES))
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: expected a 68-point, 34-mode PDM",
                              pdm_path);
    if (status == FA_OK)
        status = fa_triangulation_load(triangulation_path, &models->triangulation, error);
    if (status == FA_OK && settings->tracker) {
        char model_dir[PATH_SIZE];
        status = fa_path_join(model_dir, sizeof model_dir, models_dir, "model", error);
        models->faces = status == FA_OK ? calloc(1, sizeof *models->faces) : NULL;
        if (status == FA_OK && !models->faces)
            status = fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
        if (status == FA_OK)
            status = fa_face_models_load(model_dir, settings->n_threads, models->faces, error);
        if (status != FA_OK) {
            free(models->faces);
            models->faces = NULL;
        }
    }
    return status;
}

fa_status fa_models_load(const char *models_dir, const fa_settings_t *settings,
                         fa_models_t **out, fa_error_t *error)
{
    *out = NULL;
    fa_settings_t defaults;
    if (!settings) {
        fa_default_settings(&defaults);
        settings = &defaults;
    }
    if (!models_dir || !models_dir[0])
        return fa_error_set(error, FA_ERROR_ARGUMENT, "no models folder given");
    fa_models_t *models = calloc(1, sizeof *models);
    if (!models) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    fa_status status = FA_OK;
    fa_model_slots_t slots = {&models->au, &models->pdm, &models->triangulation, &models->faces};
    const char *cache_dir = settings->cache_dir && settings->cache_dir[0] ? settings->cache_dir
                                                                          : NULL;
    if (!cache_dir || fa_model_cache_load(cache_dir, models_dir, settings, &slots, &models->cache,
                                          NULL) != FA_MODEL_CACHE_HIT) {
        /* The cache, when there is one, lists the files the text readers open. */
        fa_file_log_t sources = {0};
        fa_file_log_t *outer = cache_dir ? fa_file_log_attach(&sources) : NULL;
        status = load_text_models(models_dir, settings, models, error);
        if (cache_dir) fa_file_log_attach(outer);
        if (status == FA_OK && cache_dir)
            fa_model_cache_store(cache_dir, models_dir, settings, &sources, &slots, NULL);
        fa_file_log_release(&sources);
    }
    if (status != FA_OK) {
        fa_models_free(models);
        return status;
    }
    *out = models;
    return FA_OK;
}

void fa_models_free(fa_models_t *models)
{
    if (!models) return;
    if (models->cache) {
        fa_model_cache_close(models->cache); /* owns every restored structure */
    } else {
        fa_au_models_free(models->au);
        if (models->faces) fa_face_models_release(models->faces);
        free(models->faces);
        fa_pdm_release(&models->pdm);
        fa_triangulation_release(&models->triangulation);
    }
    free(models);
}

int fa_models_au_count(const fa_models_t *models, fa_au_kind kind)
{
    return fa_au_models_count(models->au, kind == FA_AU_PRESENCE);
}

const char *fa_models_au_name(const fa_models_t *models, fa_au_kind kind, int index)
{
    return fa_au_models_name(models->au, kind == FA_AU_PRESENCE, index);
}

static int output_face_is_au_face(const fa_settings_t *settings)
{
    return settings->aligned_scale == AU_ALIGN_SCALE && settings->aligned_size == FA_ALIGNED_SIZE &&
           settings->aligned_mask;
}

fa_status fa_session_create(const fa_models_t *models, const fa_settings_t *settings,
                            fa_session_t **out, fa_error_t *error)
{
    *out = NULL;
    if (!models) return fa_error_set(error, FA_ERROR_ARGUMENT, "no models");
    fa_session_t *session = calloc(1, sizeof *session);
    if (!session) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    session->models = models;
    if (settings) session->settings = *settings;
    else fa_default_settings(&session->settings);
    const fa_settings_t *s = &session->settings;
    fa_status status = FA_OK;
    if (s->aligned_size <= 0 || s->aligned_size > 4096 || !(s->aligned_scale > 0))
        status = fa_error_set(error, FA_ERROR_ARGUMENT, "bad aligned-face size %d or scale %g",
                              s->aligned_size, (double)s->aligned_scale);
    if (status == FA_OK)
        status = fa_image_allocate(&session->au_face, FA_ALIGNED_SIZE, FA_ALIGNED_SIZE, 3, error);
    if (status == FA_OK && !output_face_is_au_face(s))
        status = fa_image_allocate(&session->output_face, s->aligned_size, s->aligned_size,
                                   s->aligned_gray ? 1 : 3, error);
    else if (status == FA_OK && s->aligned_gray)
        status = fa_image_allocate(&session->output_gray, FA_ALIGNED_SIZE, FA_ALIGNED_SIZE, 1,
                                   error);
    if (status == FA_OK) status = fa_au_state_create(models->au, s->online, &session->au, error);
    session->threads = s->n_threads > 0 ? s->n_threads : fa_cpu_count();
    if (status == FA_OK && models->faces && session->threads > 1)
        status = fa_pool_create(session->threads - 1, &session->pool, error);
    if (status == FA_OK && models->faces)
        status = fa_face_tracker_create(models->faces, session->pool, &session->tracker, error);
    if (status != FA_OK) {
        fa_session_destroy(session);
        return status;
    }
    *out = session;
    return FA_OK;
}

void fa_session_destroy(fa_session_t *session)
{
    if (!session) return;
    fa_au_state_free(session->au);
    fa_face_tracker_destroy(session->tracker);
    fa_pool_destroy(session->pool);
    fa_image_release(&session->au_face);
    fa_image_release(&session->output_face);
    fa_image_release(&session->output_gray);
    free(session);
}

/* What the tracking half of a frame hands to the feature half. */
typedef struct tracked_frame {
    int face_found;      /* the AU stage's success (the model's, not the CSV's) */
    int landmarks_given; /* p_* then come from CalcParams */
    double seconds;      /* tracking time */
    fa_tracked_eyes_t eyes; /* none with given landmarks */
} tracked_frame_t;

/* The order-dependent first half: the tracker (or the given landmarks). Touches only the
 * tracker's state, so it may run for frame n+1 while frame n is in session_features. */
static fa_status session_track(fa_session_t *session, const fa_image_t *frame,
                               const fa_tracker_frame_t *prepared, double timestamp,
                               const fa_landmarks_t *landmarks, fa_frame_result_t *result,
                               tracked_frame_t *tracked, fa_error_t *error)
{
    memset(result, 0, sizeof *result);
    memset(tracked, 0, sizeof *tracked);
    result->frame_number = ++session->frame_count;
    result->timestamp = timestamp;
    double start = seconds_now();
    if (!landmarks) {
        if (!session->tracker)
            return fa_error_set(error, FA_ERROR_ARGUMENT,
                                "no landmarks given and no face tracker loaded");
        fa_tracked_face_t face;
        fa_status status = fa_face_tracker_process(session->tracker, frame, prepared, &face, error);
        if (status != FA_OK) return status;
        result->success = face.success;
        result->confidence = face.confidence;
        result->detector_ran = face.detector_ran;
        /* The AU stage is given the model's success, which differs from the CSV's on an initial
         * detection that fails validation (LANDMARKS_SPEC §5.4). */
        tracked->face_found = face.model_success;
        memcpy(result->landmarks, face.landmarks, sizeof result->landmarks);
        memcpy(result->params_global, face.params_global, sizeof result->params_global);
        memcpy(result->params_local, face.params_local, sizeof result->params_local);
        tracked->eyes = face.eyes;
    } else {
        result->success = tracked->face_found = landmarks->success;
        result->confidence = landmarks->confidence;
        tracked->landmarks_given = 1;
        memcpy(result->landmarks, landmarks->x, sizeof landmarks->x);
        memcpy(result->landmarks + FA_NUM_LANDMARKS, landmarks->y, sizeof landmarks->y);
    }
    tracked->seconds = seconds_now() - start;
    return FA_OK;
}

/* The second half, in frame order: CalcParams, aligned face, FHOG, geometry, AUs (running
 * medians), pose. Touches only the AU state and the session's feature buffers. */
static fa_status session_features(fa_session_t *session, const fa_image_t *frame,
                                  const tracked_frame_t *tracked, fa_frame_result_t *result,
                                  fa_error_t *error)
{
    const fa_models_t *models = session->models;
    int face_found = tracked->face_found;
    float params_global[6] = {0}, params_local[FA_NUM_PDM_MODES] = {0};
    double *seconds = session->stage_seconds, t0 = seconds_now(), t1 = t0, t2 = t0;
    seconds[FA_STAGE_TRACKING] = tracked->seconds;
    if (face_found) {
        fa_pdm_calc_params(&models->pdm, result->landmarks, params_global, params_local);
        t1 = seconds_now();
        fa_status status = fa_align_face_at_scale(frame, result->landmarks, params_global,
                                                  &models->pdm, &models->triangulation,
                                                  AU_ALIGN_SCALE, 1, &session->au_face, error);
        if (status != FA_OK) return status;
        t2 = seconds_now();
    } else {
        /* OpenFace: a black face, zero local parameters (so zero geometry). */
        fa_image_fill(&session->au_face, 0);
    }
    fa_fhog_extract(&session->au_face, session->hog);
    double t3 = seconds_now();
    fa_geometry_extract(&models->pdm, params_local, session->geometry);
    if (!face_found) memset(session->geometry, 0, sizeof session->geometry);
    double t4 = seconds_now();
    fa_status status = fa_au_state_add_frame(session->au, session->hog, session->geometry,
                                             face_found, result->au_intensity,
                                             result->au_presence, error);
    double t5 = seconds_now();
    seconds[FA_STAGE_CALC_PARAMS] = t1 - t0;
    seconds[FA_STAGE_ALIGN] = t2 - t1;
    seconds[FA_STAGE_FHOG] = t3 - t2;
    seconds[FA_STAGE_GEOMETRY] = t4 - t3;
    seconds[FA_STAGE_AU] = t5 - t4;
    session->face_found = face_found;
    memcpy(session->aligned_params, params_global, sizeof params_global);
    if (tracked->landmarks_given) { /* the CSV's p_* are the tracker's; here CalcParams' */
        memcpy(result->params_global, params_global, sizeof params_global);
        memcpy(result->params_local, params_local, sizeof params_local);
    }
    /* As OpenFace, the intrinsics are set once, from the first frame: an image folder of mixed
     * sizes keeps the first image's. */
    if (!(session->camera.fx > 0)) {
        session->camera = (fa_camera_t){session->settings.fx, session->settings.fy,
                                         session->settings.cx, session->settings.cy};
        if (!(session->camera.fx > 0)) fa_camera_default(frame->width, frame->height,
                                                         &session->camera);
    }
    fa_camera_t camera = session->camera;
    /* OpenFace's GetPose runs on every frame, with whatever parameters the tracker holds. */
    fa_pose_estimate(&models->pdm, result->params_global, result->params_local, result->landmarks,
                     &camera, result->pose);
    fa_pose_landmarks_3d(&models->pdm, result->params_global, result->params_local,
                         result->landmarks, &camera, result->landmarks_3d);
    fa_eyes_result(&tracked->eyes, &camera, result);
    seconds[FA_STAGE_POSE] = seconds_now() - t5;
    result->hog = session->hog;
    result->geometry = session->geometry;
    result->aligned = session->au_face;
    return status;
}

static fa_status check_frame(const fa_image_t *frame, fa_error_t *error)
{
    if (!frame || !frame->data || frame->channels != 3 || frame->width <= 0 || frame->height <= 0)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "frames must be BGR images");
    return FA_OK;
}

fa_status fa_session_process(fa_session_t *session, const fa_image_t *frame, double timestamp,
                             const fa_landmarks_t *landmarks, fa_frame_result_t *result,
                             fa_error_t *error)
{
    if (!session || !result)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "process needs a session and a result");
    fa_status status = check_frame(frame, error);
    tracked_frame_t tracked;
    if (status == FA_OK)
        status = session_track(session, frame, NULL, timestamp, landmarks, result, &tracked, error);
    if (status == FA_OK) status = session_features(session, frame, &tracked, result, error);
    return status;
}

fa_status fa_session_aligned_output(fa_session_t *session, const fa_image_t *frame,
                                    const fa_frame_result_t *result, const fa_image_t **aligned,
                                    fa_error_t *error)
{
    const fa_settings_t *s = &session->settings;
    const fa_models_t *models = session->models;
    if (output_face_is_au_face(s)) {
        if (!s->aligned_gray) {
            *aligned = &session->au_face;
            return FA_OK;
        }
        fa_image_bgr_to_gray(&session->au_face, &session->output_gray);
        *aligned = &session->output_gray;
        return FA_OK;
    }
    /* OpenFace aligns the output face separately; -g converts after warping (the warp does). */
    fa_image_t *face = &session->output_face;
    *aligned = face;
    if (!session->face_found) {
        fa_image_fill(face, 0);
        return FA_OK;
    }
    return fa_align_face_at_scale(frame, result->landmarks, session->aligned_params, &models->pdm,
                                  &models->triangulation, s->aligned_scale, s->aligned_mask, face,
                                  error);
}

fa_status fa_session_postprocess(fa_session_t *session, fa_au_series_t *series, fa_error_t *error)
{
    memset(series, 0, sizeof *series);
    series->intensity_count = fa_models_au_count(session->models, FA_AU_INTENSITY);
    series->presence_count = fa_models_au_count(session->models, FA_AU_PRESENCE);
    series->session = session;
    return fa_au_state_postprocess(session->au, &series->frame_count, error);
}

fa_status fa_au_series_next(fa_au_series_t *series, double *intensity, double *presence,
                            fa_error_t *error)
{
    if (!series || !series->session)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "no post-processed series");
    return fa_au_state_next_row(series->session->au, intensity, presence, error);
}

/* ---------------------------------------------------------------------------------------------
 * fa_session_run: a ring of frames, read (in order, by whichever of the two threads is free
 * first), tracked on a thread of the session's, then finished on the calling thread (features,
 * AUs, the done callback). The tracker's pool workers are the only other threads: on two cores,
 * a thread of its own for reading only made one more thread to share them, and the tracker
 * waited for frames while the calling thread was busy. */

/* One frame being tracked, one being read or finished, one tracked or read ahead: a fourth slot
 * measured no faster on two cores and cost 1.2 MB of peak memory. */
enum { RING_SLOTS = 3 };

typedef enum slot_state { SLOT_FREE, SLOT_READ, SLOT_TRACKED } slot_state_t;

typedef struct slot {
    slot_state_t state;
    fa_status status; /* of reading, then of tracking; FA_ERROR_END after the last frame */
    fa_error_t error;
    fa_frame_input_t input;
    fa_tracker_frame_t prepared; /* gray versions made by the reading thread, for the tracker */
    int is_prepared;
    fa_frame_result_t result;
    tracked_frame_t tracked;
} slot_t;

typedef struct ring {
    fa_session_t *session;
    fa_read_frame_fn read;
    void *read_context;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int stopping;
    long next_read; /* the frame the next read fills */
    int reading;    /* a thread is reading next_read */
    int read_ended; /* a read failed or found the end: no more reads */
    slot_t slots[RING_SLOTS];
} ring_t;

static void hand_on(ring_t *ring, slot_t *slot, slot_state_t state)
{
    pthread_mutex_lock(&ring->lock);
    slot->state = state;
    pthread_cond_broadcast(&ring->changed);
    pthread_mutex_unlock(&ring->lock);
}

/* With the lock held: whether the next frame can be read now (no one reading, its slot free). */
static int read_due(const ring_t *ring)
{
    return !ring->read_ended && !ring->reading &&
           ring->slots[ring->next_read % RING_SLOTS].state == SLOT_FREE;
}

/* With the lock held and read_due: reads the next frame (and its gray versions for the tracker)
 * without the lock, then hands the slot to the tracker. */
static void read_next(ring_t *ring)
{
    slot_t *slot = &ring->slots[ring->next_read % RING_SLOTS];
    ring->reading = 1;
    pthread_mutex_unlock(&ring->lock);
    slot->input.has_landmarks = 0;
    fa_status status = ring->read(ring->read_context, &slot->input, &slot->error);
    if (status == FA_OK) status = check_frame(&slot->input.image, &slot->error);
    slot->is_prepared = status == FA_OK && ring->session->tracker && !slot->input.has_landmarks;
    if (slot->is_prepared)
        status = fa_tracker_frame_prepare(&slot->prepared, &slot->input.image, &slot->error);
    slot->status = status;
    pthread_mutex_lock(&ring->lock);
    slot->state = SLOT_READ; /* the slot is the tracker's from here */
    ring->reading = 0;
    ring->next_read++;
    ring->read_ended = status != FA_OK;
    pthread_cond_broadcast(&ring->changed);
}

static void *tracker_main(void *argument)
{
    ring_t *ring = argument;
    for (long n = 0;; n++) {
        slot_t *slot = &ring->slots[n % RING_SLOTS];
        pthread_mutex_lock(&ring->lock);
        while (slot->state != SLOT_READ && !ring->stopping) {
            if (read_due(ring))
                read_next(ring); /* rather than wait for the calling thread to do it */
            else
                pthread_cond_wait(&ring->changed, &ring->lock);
        }
        int ready = slot->state == SLOT_READ;
        pthread_mutex_unlock(&ring->lock);
        if (!ready) break;
        if (slot->status == FA_OK)
            slot->status = session_track(ring->session, &slot->input.image,
                                         slot->is_prepared ? &slot->prepared : NULL,
                                         slot->input.timestamp,
                                         slot->input.has_landmarks ? &slot->input.landmarks : NULL,
                                         &slot->result, &slot->tracked, &slot->error);
        int last = slot->status != FA_OK;
        hand_on(ring, slot, SLOT_TRACKED); /* the slot is the caller's from here */
        if (last) break;
    }
    return NULL;
}

static fa_status run_in_order(fa_session_t *session, fa_read_frame_fn read, void *read_context,
                              fa_frame_done_fn done, void *done_context, fa_error_t *error)
{
    fa_frame_input_t input = {0};
    fa_status status = FA_OK;
    while (status == FA_OK) {
        input.has_landmarks = 0;
        status = read(read_context, &input, error);
        if (status != FA_OK) break;
        fa_frame_result_t result;
        status = fa_session_process(session, &input.image, input.timestamp,
                                    input.has_landmarks ? &input.landmarks : NULL, &result, error);
        if (status == FA_OK) status = done(done_context, &input.image, &result, error);
    }
    fa_image_release(&input.image);
    return status == FA_ERROR_END ? FA_OK : status;
}

fa_status fa_session_run(fa_session_t *session, fa_read_frame_fn read, void *read_context,
                         fa_frame_done_fn done, void *done_context, fa_error_t *error)
{
    if (!session || !read || !done)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "run needs a session and two callbacks");
    if (session->threads <= 1)
        return run_in_order(session, read, read_context, done, done_context, error);
    ring_t *ring = calloc(1, sizeof *ring);
    if (!ring) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    *ring = (ring_t){.session = session, .read = read, .read_context = read_context};
    pthread_t tracker;
    int have_tracker = 0;
    fa_status status = FA_OK;
    if (pthread_mutex_init(&ring->lock, NULL) != 0 || pthread_cond_init(&ring->changed, NULL) != 0)
        status = fa_error_set(error, FA_ERROR_NO_MEMORY, "cannot create a lock");
    if (status == FA_OK) have_tracker = pthread_create(&tracker, NULL, tracker_main, ring) == 0;
    if (status == FA_OK && !have_tracker)
        status = fa_error_set(error, FA_ERROR_NO_MEMORY, "cannot start the run's threads");
    /* This thread finishes tracked frames in order and reads when it has nothing to finish. */
    for (long next_done = 0; status == FA_OK; next_done++) {
        slot_t *slot = &ring->slots[next_done % RING_SLOTS];
        pthread_mutex_lock(&ring->lock);
        while (slot->state != SLOT_TRACKED) {
            if (read_due(ring))
                read_next(ring);
            else
                pthread_cond_wait(&ring->changed, &ring->lock);
        }
        pthread_mutex_unlock(&ring->lock);
        status = slot->status;
        if (status == FA_OK)
            status = session_features(session, &slot->input.image, &slot->tracked, &slot->result,
                                      &slot->error);
        if (status == FA_OK)
            status = done(done_context, &slot->input.image, &slot->result, &slot->error);
        if (status != FA_OK) {
            if (error) *error = slot->error;
            break;
        }
        hand_on(ring, slot, SLOT_FREE);
    }
    pthread_mutex_lock(&ring->lock);
    ring->stopping = 1;
    pthread_cond_broadcast(&ring->changed);
    pthread_mutex_unlock(&ring->lock);
    if (have_tracker) pthread_join(tracker, NULL);
    pthread_cond_destroy(&ring->changed);
    pthread_mutex_destroy(&ring->lock);
    for (int i = 0; i < RING_SLOTS; i++) {
        fa_image_release(&ring->slots[i].input.image);
        fa_tracker_frame_release(&ring->slots[i].prepared);
    }
    free(ring);
    return status == FA_ERROR_END ? FA_OK : status;
}
