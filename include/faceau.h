/* faceau: facial Action Units as OpenFace 2.2 computes them, faster.
 *
 * The only public header. Conventions:
 * - every fallible function returns an fa_status and fills an optional fa_error_t with a message;
 * - the library never prints, exits or reads the environment;
 * - fa_models_t is immutable once loaded and may be shared by many sessions and threads;
 *   fa_session_t holds the state of one video (running medians, AU history) and is used by one
 *   thread at a time.
 */
#ifndef FACEAU_H
#define FACEAU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FA_VERSION_STRING "0.1.0"

enum {
    FA_NUM_LANDMARKS = 68,
    FA_NUM_PDM_MODES = 34,   /* local (non-rigid) PDM parameters */
    FA_HOG_CELLS = 12,       /* FHOG grid of the 112x112 aligned face: 12x12 cells */
    FA_HOG_CHANNELS = 31,    /* dlib FHOG features per cell */
    FA_HOG_SIZE = FA_HOG_CELLS * FA_HOG_CELLS * FA_HOG_CHANNELS, /* 4464 */
    FA_GEOMETRY_SIZE = 3 * FA_NUM_LANDMARKS + FA_NUM_PDM_MODES,  /* 238 */
    FA_ALIGNED_SIZE = 112,   /* side of the aligned face the AU models see */
    FA_NUM_EYE_LANDMARKS = 56, /* OpenFace's eye_lmk_*: 28 per eye model, left eye first */
    FA_MAX_AUS = 32,         /* upper bound on AUs of one kind in any model list */
    FA_ERROR_MESSAGE_SIZE = 512,
};

typedef enum fa_status {
    FA_OK = 0,
    FA_ERROR_ARGUMENT = 1,  /* the caller passed something invalid */
    FA_ERROR_NO_MEMORY = 2, /* an allocation failed */
    FA_ERROR_IO = 3,        /* a file is missing, unreadable or unwritable */
    FA_ERROR_MODEL = 4,     /* a model file is damaged or not of the expected format */
    FA_ERROR_INPUT = 5,     /* an input image, video or landmark file cannot be decoded */
    FA_ERROR_END = 6,       /* end of a stream: not a failure */
    FA_ERROR_INTERNAL = 7,
} fa_status;

typedef struct fa_error {
    fa_status status;
    char message[FA_ERROR_MESSAGE_SIZE];
} fa_error_t;

/* A short stable name for a status, e.g. "model". */
const char *fa_status_name(fa_status status);

/* An 8-bit image, interleaved channels (1 = gray, 3 = BGR as OpenCV stores it). */
typedef struct fa_image {
    int width, height, channels;
    ptrdiff_t stride; /* bytes from one row to the next */
    uint8_t *data;
} fa_image_t;

fa_status fa_image_allocate(fa_image_t *image, int width, int height, int channels,
                            fa_error_t *error);
void fa_image_release(fa_image_t *image);
/* Copies source into destination, reallocating destination only when its size or channels
 * differ (destination must be zeroed or allocated). */
fa_status fa_image_copy(fa_image_t *destination, const fa_image_t *source, fa_error_t *error);

/* ---------------------------------------------------------------------------------------------
 * Settings */

typedef struct fa_settings {
    int n_threads;        /* worker threads; 0 = one per core */
    int au_static;        /* 1: OpenFace's static AU models (-au_static), no person normalisation */
    int online;           /* 1: OpenFace's online AU correction (webcam-style input) */
    double aligned_scale; /* scale of the aligned-face output (-simscale), default 0.7 */
    int aligned_size;     /* side of the aligned-face output (-simsize), default 112 */
    int aligned_mask;     /* 1: mask the aligned-face output outside the face, default 1 */
    int aligned_gray;     /* 1: gray aligned-face output (-g) */
    int tracker;          /* 1 (default): load the face detector and landmark tracker (model/);
                             0: landmarks always come from the caller */
    float fx, fy, cx, cy; /* camera intrinsics for pose; 0 = OpenFace's defaults for the size */
    const char *cache_dir; /* folder of the binary model cache (created if needed); NULL or "":
                              no cache. fa_models_load then reads the text models once, stores
                              what it built there, and later maps it in milliseconds */
    uint8_t reserved[56]; /* room to grow without breaking the ABI; keep zero */
} fa_settings_t;

void fa_default_settings(fa_settings_t *settings);

/* ---------------------------------------------------------------------------------------------
 * Models: OpenFace 2.2's model folder (the one holding AU_predictors/ and model/). */

typedef struct fa_models fa_models_t;

fa_status fa_models_load(const char *models_dir, const fa_settings_t *settings,
                         fa_models_t **models, fa_error_t *error);
void fa_models_free(fa_models_t *models);

typedef enum fa_au_kind { FA_AU_INTENSITY = 0, FA_AU_PRESENCE = 1 } fa_au_kind;

/* Number of AUs of a kind; names are sorted as in OpenFace's CSV ("AU01", "AU02", ...). */
int fa_models_au_count(const fa_models_t *models, fa_au_kind kind);
const char *fa_models_au_name(const fa_models_t *models, fa_au_kind kind, int index);

/* ---------------------------------------------------------------------------------------------
 * A session: one video (or image sequence) of one face. */

typedef struct fa_session fa_session_t;

/* Landmarks of one frame, as a tracker or a landmark file gives them. */
typedef struct fa_landmarks {
    int success;       /* 0: no face in this frame */
    double confidence; /* the tracker's detection certainty, as written in the CSV */
    float x[FA_NUM_LANDMARKS], y[FA_NUM_LANDMARKS];
} fa_landmarks_t;

typedef struct fa_frame_result {
    int frame_number;  /* 1-based, in the order frames were given */
    double timestamp;  /* seconds */
    int success;
    double confidence;
    float landmarks[2 * FA_NUM_LANDMARKS];  /* x0..x67, y0..y67 */
    float params_global[6];                 /* scale, rx, ry, rz, tx, ty: the tracker's, or */
    float params_local[FA_NUM_PDM_MODES];   /* CalcParams' for given landmarks */
    double pose[6];                         /* Tx, Ty, Tz (mm), Rx, Ry, Rz (radians) */
    float landmarks_3d[3 * FA_NUM_LANDMARKS]; /* X0..X67, Y0..Y67, Z0..Z67 (mm) */
    /* Gaze and eye landmarks from the tracker's two eye models (OpenFace's GazeAnalysis). The
     * eye landmarks are set on every frame; the gaze only when success is 1 (else zeros, as
     * OpenFace). With given landmarks there are no eye models: all zeros, eye_landmark_count 0. */
    float gaze_0[3], gaze_1[3]; /* unit vectors, camera frame: left eye (image left), right eye */
    float gaze_angle[2];        /* horizontal, vertical (radians) of the mean of both vectors */
    int eye_landmark_count;     /* FA_NUM_EYE_LANDMARKS with the tracker, else 0 */
    float eye_landmarks[2 * FA_NUM_EYE_LANDMARKS];    /* x0..x55, y0..y55 (pixels) */
    float eye_landmarks_3d[3 * FA_NUM_EYE_LANDMARKS]; /* X0..X55, Y0..Y55, Z0..Z55 (mm) */
    int detector_ran;                       /* the face detector ran on this frame */
    double au_intensity[FA_MAX_AUS];        /* per-frame predictions, before post-processing */
    double au_presence[FA_MAX_AUS];
    const float *hog;      /* FA_HOG_SIZE values, owned by the session, valid until next call */
    const double *geometry;/* FA_GEOMETRY_SIZE values, likewise */
    fa_image_t aligned;    /* 112x112 BGR masked face the HOG was computed on, likewise */
} fa_frame_result_t;

fa_status fa_session_create(const fa_models_t *models, const fa_settings_t *settings,
                            fa_session_t **session, fa_error_t *error);
void fa_session_destroy(fa_session_t *session);

/* Processes the next frame (BGR) with the given landmarks, or, with landmarks NULL, with the
 * built-in detector and tracker (as OpenFace's FeatureExtraction). */
fa_status fa_session_process(fa_session_t *session, const fa_image_t *frame, double timestamp,
                             const fa_landmarks_t *landmarks, fa_frame_result_t *result,
                             fa_error_t *error);

/* Stages of fa_session_process, for benchmarks: the time each took on the last frame. */
typedef enum fa_stage {
    FA_STAGE_TRACKING = 0,    /* face detection and CLNF landmarks (0 with given landmarks) */
    FA_STAGE_CALC_PARAMS,     /* PDM fit to the landmarks */
    FA_STAGE_ALIGN,           /* similarity warp and mask */
    FA_STAGE_FHOG,
    FA_STAGE_GEOMETRY,
    FA_STAGE_AU,              /* running medians, SVR and SVM predictions */
    FA_STAGE_POSE,            /* head pose, 3D landmarks, eye landmarks and gaze */
    FA_STAGE_COUNT
} fa_stage;

const char *fa_stage_name(fa_stage stage);
void fa_session_stage_seconds(const fa_session_t *session, double seconds[FA_STAGE_COUNT]);

/* AU values of every frame after OpenFace's offline post-processing (re-prediction with the final
 * running medians, per-AU offset, clipping, smoothing), read frame by frame with
 * fa_au_series_next: the per-frame history lives in a temporary file past a few thousand frames,
 * so memory does not grow with the length of the video. */
typedef struct fa_au_series {
    size_t frame_count;
    int intensity_count, presence_count; /* fa_models_au_count() */
    fa_session_t *session;               /* where the rows come from */
} fa_au_series_t;

fa_status fa_session_postprocess(fa_session_t *session, fa_au_series_t *series, fa_error_t *error);

/* The next frame's values (intensity_count and presence_count of them, sorted-name order), from
 * the first frame on; FA_ERROR_END after the last. */
fa_status fa_au_series_next(fa_au_series_t *series, double *intensity, double *presence,
                            fa_error_t *error);

/* The aligned face for output (-simalign), with the session's aligned_* settings; the image is
 * owned by the session and valid until the next call. Call after fa_session_process. */
fa_status fa_session_aligned_output(fa_session_t *session, const fa_image_t *frame,
                                    const fa_frame_result_t *result, const fa_image_t **aligned,
                                    fa_error_t *error);

/* ---------------------------------------------------------------------------------------------
 * Running a whole video on the session's threads (settings.n_threads): the tracker
 * (order-dependent, its patch responses shared out over the other threads) works on frame n+1
 * on a thread of its own while the calling thread computes frame n's features, AUs and pose;
 * frames are read ahead by whichever is free; results come back in frame order. Outputs are identical to calling fa_session_process frame by frame;
 * with one thread that is what it does. */

/* One input frame; the reader fills it and may keep its image between calls (reallocate with
 * fa_image_copy or fa_image_allocate only when the size changes). */
typedef struct fa_frame_input {
    fa_image_t image; /* BGR */
    double timestamp;
    int has_landmarks; /* 0: the built-in tracker finds the face */
    fa_landmarks_t landmarks;
} fa_frame_input_t;

/* Fills the next frame; returns FA_OK, FA_ERROR_END after the last frame, or an error. Called
 * in frame order, one call at a time, on the thread that called fa_session_run or on the
 * session's tracking thread (whichever is free first). */
typedef fa_status (*fa_read_frame_fn)(void *context, fa_frame_input_t *input, fa_error_t *error);

/* Takes one frame's result, in frame order, on the thread that called fa_session_run; the frame
 * and the result's buffers are valid during the call, and fa_session_aligned_output may be
 * called from it. A status other than FA_OK stops the run, which returns it. */
typedef fa_status (*fa_frame_done_fn)(void *context, const fa_image_t *frame,
                                      const fa_frame_result_t *result, fa_error_t *error);

fa_status fa_session_run(fa_session_t *session, fa_read_frame_fn read, void *read_context,
                         fa_frame_done_fn done, void *done_context, fa_error_t *error);

/* ---------------------------------------------------------------------------------------------
 * Frame sources: a video file (FFmpeg, frames converted to BGR as OpenCV does), one image, or a
 * folder of images read in name order (OpenFace -fdir). */

typedef struct fa_source fa_source_t;

typedef enum fa_source_kind {
    FA_SOURCE_VIDEO = 0,
    FA_SOURCE_IMAGE = 1,
    FA_SOURCE_DIRECTORY = 2,
} fa_source_kind;

fa_status fa_source_open(const char *path, fa_source_kind kind, fa_source_t **source,
                         fa_error_t *error);
void fa_source_close(fa_source_t *source);

/* The next frame (BGR, owned by the source, valid until the next call) and its timestamp in
 * seconds. Returns FA_ERROR_END after the last frame. */
fa_status fa_source_read(fa_source_t *source, const fa_image_t **frame, double *timestamp,
                         fa_error_t *error);
/* The same, decoded straight into the caller's image (an fa_image_t of its own, zeroed or
 * allocated; resized when the frame size differs): no copy, no frame kept by the source. */
fa_status fa_source_read_into(fa_source_t *source, fa_image_t *image, double *timestamp,
                              fa_error_t *error);
double fa_source_fps(const fa_source_t *source); /* 0 when unknown (images) */
/* Video timestamps: by default OpenFace's, frame number * (1 / fps); enabled, the stream's own
 * presentation times from the first frame, which differ on variable frame rate recordings.
 * Call before the first read. */
void fa_source_use_stream_timestamps(fa_source_t *source, int enabled);

/* ---------------------------------------------------------------------------------------------
 * Landmark files: an OpenFace CSV (columns frame, success, x_0..x_67, y_0..y_67; confidence is
 * used when present), read as a stream in frame order. */

typedef struct fa_landmark_file fa_landmark_file_t;

fa_status fa_landmark_file_open(const char *path, fa_landmark_file_t **file, fa_error_t *error);
void fa_landmark_file_close(fa_landmark_file_t *file);

/* Landmarks for 1-based frame_number. Frames must be asked for in increasing order; a frame the
 * file has no row for gives success = 0. */
fa_status fa_landmark_file_get(fa_landmark_file_t *file, int frame_number,
                               fa_landmarks_t *landmarks, fa_error_t *error);

/* ---------------------------------------------------------------------------------------------
 * Output in OpenFace's formats: <dir>/<stem>.csv, <stem>.hog, <stem>_aligned/. */

enum {
    FA_OUTPUT_LANDMARKS_2D = 1 << 0, /* x_*, y_* */
    FA_OUTPUT_PDM_PARAMS = 1 << 1,   /* p_* */
    FA_OUTPUT_AUS = 1 << 2,          /* AU*_r, AU*_c */
    FA_OUTPUT_HOG = 1 << 3,          /* <stem>.hog */
    FA_OUTPUT_ALIGNED = 1 << 4,      /* <stem>_aligned/frame_det_00_NNNNNN.bmp */
    FA_OUTPUT_POSE = 1 << 5,         /* pose_T*, pose_R* */
    FA_OUTPUT_LANDMARKS_3D = 1 << 6, /* X_*, Y_*, Z_* */
    FA_OUTPUT_GAZE = 1 << 7,         /* gaze_*, eye_lmk_* (OpenFace's -gaze writes both); with
                                        given landmarks they would be zeros: OpenFace, without
                                        eye models, writes none (the CLI leaves the flag out) */
    FA_OUTPUT_ALL = 0xff,
};

typedef struct fa_output fa_output_t;

fa_status fa_output_open(const char *out_dir, const char *stem, unsigned flags,
                         const fa_models_t *models, fa_output_t **output, fa_error_t *error);

/* Writes one frame's row (and HOG record and aligned image when asked); aligned may be NULL. */
fa_status fa_output_write_frame(fa_output_t *output, const fa_frame_result_t *result,
                                const fa_image_t *aligned, fa_error_t *error);

/* While a run lasts, rows are written and flushed to <stem>.csv.part and <stem>.hog.part. After
 * the last frame fa_output_finish rewrites the AU columns with the post-processed series, as
 * OpenFace does, and renames the files to <stem>.csv and <stem>.hog. A run that stops early keeps
 * its .part files (complete rows only). Then call fa_output_close. */
fa_status fa_output_finish(fa_output_t *output, fa_au_series_t *series, fa_error_t *error);
void fa_output_close(fa_output_t *output);

/* The CSV written: <stem>.csv after a successful finish, else <stem>.csv.part. */
const char *fa_output_csv_path(const fa_output_t *output);

#ifdef __cplusplus
}
#endif
#endif
