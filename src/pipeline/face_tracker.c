#include "pipeline/face_tracker.h"

#include <stdlib.h>
#include <string.h>

#include "align/align.h"
#include "core/file.h"
#include "core/image.h"
#include "landmarks/ccnf.h"
#include "pipeline/model_cache.h"

enum { PATH_SIZE = 4096, MAX_BOXES = 64 };

/* What a response provider needs: the model it serves and the tracker holding the frame. */
typedef struct provider_context {
    struct fa_face_tracker *tracker;
    const fa_clnf_detector_t *detector;
    int shared;                     /* 1: responses over the pool (the main model); 0: alone */
    fa_ccnf_workspace_t *workspace; /* a part's own, as parts may run at once */
    float confidence[FA_CLNF_MAX_POINTS];
    int views[FA_CCNF_MAX_SCALES]; /* the view each scale used last, -1 before the first */
} provider_context_t;

struct fa_face_tracker {
    const fa_face_models_t *models;
    fa_clnf_tracker_t *clnf;
    fa_clnf_callbacks_t callbacks;
    provider_context_t providers[1 + FA_CLNF_MAX_PARTS];
    fa_mtcnn_workspace_t mtcnn_workspace;
    fa_pool_t *pool;                     /* shares out patch responses; may be NULL */
    fa_ccnf_workspace_t *ccnf_workspaces; /* one per pool participant */
    fa_validator_workspace_t validator_workspace;
    const fa_image_t *frame; /* BGR, for the detector */
    fa_tracker_frame_t own;               /* the frame prepared here when not given prepared */
    const fa_tracker_frame_t *prepared;   /* the current frame's gray versions */
};

fa_status fa_face_models_load(const char *model_dir, int threads, fa_face_models_t *models,
                              fa_error_t *error)
{
    memset(models, 0, sizeof *models);
    char path[PATH_SIZE];
    fa_status status = fa_path_join(path, sizeof path, model_dir, "main_clnf_general.txt", error);
    if (status == FA_OK) status = fa_clnf_set_load(path, threads, &models->set, error);
    if (status == FA_OK && models->set.main.pdm.point_count != 68)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: the main model must have 68 points", path);
    if (status == FA_OK && models->set.part_count > FA_CLNF_MAX_PARTS)
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: too many part models", path);
    if (status == FA_OK && !models->set.validator_path[0])
        status = fa_error_set(error, FA_ERROR_MODEL, "%s: names no DetectionValidator", path);
    if (status == FA_OK)
        status = fa_validator_load(models->set.validator_path, &models->validator, error);
    if (status == FA_OK)
        status = fa_path_join(path, sizeof path, model_dir, "mtcnn_detector/MTCNN_detector.txt",
                              error);
    if (status == FA_OK) status = fa_mtcnn_load(&models->mtcnn, path, error);
    fa_clnf_settings_t settings;
    if (status == FA_OK) {
        fa_clnf_detector_settings(&models->set.main, &settings);
        status = fa_clnf_model_init(&models->fit_main, &models->set.main.pdm, &settings, error);
    }
    for (int i = 0; status == FA_OK && i < models->set.part_count; i++) {
        const fa_clnf_set_part_t *part = &models->set.parts[i];
        fa_clnf_detector_settings(&part->detector, &settings);
        status = fa_clnf_model_init(&models->fit_parts[i], &part->detector.pdm, &settings, error);
    }
    if (status == FA_OK) fa_face_models_link(models);
    if (status != FA_OK) fa_face_models_release(models);
    return status;
}

void fa_face_models_link(fa_face_models_t *models)
{
    fa_clnf_system_t *system = &models->system;
    memset(system, 0, sizeof *system);
    models->fit_main.pdm = &models->set.main.pdm;
    system->main = &models->fit_main;
    for (int i = 0; i < models->set.part_count; i++) {
        const fa_clnf_set_part_t *part = &models->set.parts[i];
        models->fit_parts[i].pdm = &part->detector.pdm;
        system->parts[i].model = &models->fit_parts[i];
        system->parts[i].mapping_count = part->pair_count;
        memcpy(system->parts[i].mapping, part->pairs, sizeof part->pairs[0] * (size_t)part->pair_count);
    }
    system->part_count = models->set.part_count;
    const fa_clnf_parameters_t *main_parameters = &models->set.main.parameters;
    system->refine_hierarchical = main_parameters->refine_hierarchical;
    system->validate_detections = main_parameters->validate_detections;
    system->validation_boundary = main_parameters->validation_boundary;
    system->reinit_video_every = 2; /* OpenFace's default */
    fa_eye_parts_find(&models->set, &models->eyes);
}

void fa_face_models_release(fa_face_models_t *models)
{
    if (!models) return;
    fa_clnf_model_release(&models->fit_main);
    for (int i = 0; i < FA_CLNF_MAX_PARTS; i++) fa_clnf_model_release(&models->fit_parts[i]);
    fa_validator_release(&models->validator);
    fa_mtcnn_release(&models->mtcnn);
    fa_clnf_set_release(&models->set);
    memset(models, 0, sizeof *models);
}

/* cv::Matx22f::inv (Patch_experts::Response inverts a Matx, not a Mat): OpenCV's 2x2 fast
 * inverse in the element type, so the determinant, its reciprocal and the products are all
 * float operations (cv::invert on a Mat would use doubles). */
static void invert_2x2(const float m[4], float inverse[4])
{
    float d = m[0] * m[3] - m[1] * m[2];
    if (d == 0) {
        memset(inverse, 0, 4 * sizeof(float));
        return;
    }
    d = 1 / d;
    inverse[3] = m[0] * d;
    inverse[0] = m[3] * d;
    inverse[1] = -m[1] * d;
    inverse[2] = -m[2] * d;
}

/* Patch_experts::Response for one model: the reference frame of the current shape, the view
 * and the W x W response maps (LANDMARKS_SPEC §2). */
static fa_status respond(void *context, int scale, int window, const float params_global[6],
                         const float *params_local, fa_clnf_responses_t *responses,
                         fa_error_t *error)
{
    provider_context_t *provider = context;
    struct fa_face_tracker *tracker = provider->tracker;
    const fa_pdm_t *pdm = &provider->detector->pdm;
    const fa_ccnf_t *ccnf = &provider->detector->ccnf;
    const int n = pdm->point_count;
    if (scale < 0 || scale >= ccnf->scale_count)
        return fa_error_set(error, FA_ERROR_INTERNAL, "patch scale %d out of range", scale);
    float shape[2 * FA_CLNF_MAX_POINTS], reference[2 * FA_CLNF_MAX_POINTS];
    fa_pdm_shape_2d(pdm, params_global, params_local, shape);
    const float reference_global[6] = {(float)ccnf->scales[scale].scaling, 0, 0, 0, 0, 0};
    fa_pdm_shape_2d(pdm, reference_global, params_local, reference);
    fa_align_shapes_with_scale(shape, shape + n, reference, reference + n, n,
                               responses->img_to_ref);
    invert_2x2(responses->img_to_ref, responses->ref_to_img);
    const int view = fa_ccnf_view_index(ccnf, scale, params_global + 1);
    if (provider->views[scale] != view) {
        /* The view left behind goes before the new one is read, so that the two are never
         * resident together (that frame would set the peak). */
        if (provider->views[scale] >= 0) fa_model_cache_release_views(tracker->models->cache);
        provider->views[scale] = view;
    }
    const fa_image_t *gray = &tracker->prepared->gray;
    fa_ccnf_responses(ccnf, scale, window, view, gray->data, gray->width, gray->height,
                      gray->stride, shape, responses->ref_to_img[0], -responses->ref_to_img[1],
                      responses->maps,
                      provider->shared ? tracker->ccnf_workspaces : provider->workspace,
                      provider->shared ? tracker->pool : NULL);
    const fa_ccnf_scale_t *patches = &ccnf->scales[scale];
    responses->view = view;
    responses->visible = patches->visible + (size_t)view * (size_t)n;
    for (int i = 0; i < n; i++)
        provider->confidence[i] = (float)patches->experts[(size_t)view * (size_t)n + i].confidence;
    responses->confidence = provider->confidence;
    return FA_OK;
}

static fa_status validate(void *context, const float orientation[3], const float *landmarks,
                          float *certainty, fa_error_t *error)
{
    struct fa_face_tracker *tracker = context;
    double value = 0;
    fa_status status = fa_validator_check(&tracker->models->validator,
                                          &tracker->validator_workspace, &tracker->prepared->gray, landmarks,
                                          orientation, &value, error);
    *certainty = (float)value;
    return status;
}

/* Each hypothesis of a detection fits and validates with the views nearest its rotation: what
 * it read of them (up to 4 MB a view) need not stay resident for the next. */
static void release_views(void *context) {
    const struct fa_face_tracker *tracker = context;
    fa_model_cache_release_views(tracker->models->cache);
}

static fa_status detect(void *context, float box[4], int *found, fa_error_t *error)
{
    struct fa_face_tracker *tracker = context;
    fa_box_t boxes[MAX_BOXES];
    int count = 0;
    fa_status status = fa_mtcnn_detect(&tracker->models->mtcnn, &tracker->mtcnn_workspace, NULL,
                                       tracker->frame, boxes, MAX_BOXES, &count, error);
    if (status != FA_OK) return status;
    int best = fa_mtcnn_choose_widest(boxes, count);
    *found = best >= 0;
    if (*found) {
        box[0] = boxes[best].x;
        box[1] = boxes[best].y;
        box[2] = boxes[best].width;
        box[3] = boxes[best].height;
    }
    return FA_OK;
}

fa_status fa_face_tracker_create(const fa_face_models_t *models, fa_pool_t *pool,
                                 fa_face_tracker_t **out, fa_error_t *error)
{
    *out = NULL;
    fa_face_tracker_t *tracker = calloc(1, sizeof *tracker);
    if (!tracker) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    tracker->models = models;
    tracker->pool = pool;
    int participants = fa_pool_participants(pool);
    /* One per pool participant for the main model, then one per part. */
    tracker->ccnf_workspaces = aligned_alloc(
        32, sizeof(fa_ccnf_workspace_t) * (size_t)(participants + FA_CLNF_MAX_PARTS));
    fa_status status = tracker->ccnf_workspaces
                           ? fa_clnf_tracker_create(&tracker->clnf, error)
                           : fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    if (status != FA_OK) {
        free(tracker->ccnf_workspaces);
        free(tracker);
        return status;
    }
    for (int i = 0; i < participants + FA_CLNF_MAX_PARTS; i++)
        fa_ccnf_workspace_init(&tracker->ccnf_workspaces[i], FA_CCNF_KERNEL_AUTO);
    fa_clnf_callbacks_t *callbacks = &tracker->callbacks;
    tracker->providers[0] =
        (provider_context_t){.tracker = tracker, .detector = &models->set.main, .shared = 1};
    callbacks->main = (fa_clnf_provider_t){respond, &tracker->providers[0]};
    for (int i = 0; i < models->system.part_count; i++) {
        tracker->providers[1 + i] = (provider_context_t){
            .tracker = tracker,
            .detector = &models->set.parts[i].detector,
            .workspace = &tracker->ccnf_workspaces[participants + i]};
        callbacks->parts[i] = (fa_clnf_provider_t){respond, &tracker->providers[1 + i]};
    }
    for (int i = 0; i < 1 + models->system.part_count; i++)
        for (int s = 0; s < FA_CCNF_MAX_SCALES; s++)
            tracker->providers[i].views[s] = -1;
    callbacks->validate = validate;
    callbacks->validate_context = tracker;
    callbacks->detect = detect;
    callbacks->detect_context = tracker;
    callbacks->pool = pool;
    callbacks->hypothesis_done = release_views;
    callbacks->hypothesis_context = tracker;
    *out = tracker;
    return FA_OK;
}

void fa_face_tracker_destroy(fa_face_tracker_t *tracker)
{
    if (!tracker) return;
    fa_clnf_tracker_destroy(tracker->clnf);
    fa_mtcnn_workspace_release(&tracker->mtcnn_workspace);
    fa_tracker_frame_release(&tracker->own);
    free(tracker->ccnf_workspaces);
    free(tracker);
}

fa_status fa_tracker_frame_prepare(fa_tracker_frame_t *prepared, const fa_image_t *frame,
                                   fa_error_t *error)
{
    if (frame->channels != 3)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "the tracker needs a BGR frame");
    if (prepared->gray.width != frame->width || prepared->gray.height != frame->height) {
        fa_image_release(&prepared->gray);
        fa_status status = fa_image_allocate(&prepared->gray, frame->width, frame->height, 1, error);
        if (status != FA_OK) return status;
    }
    fa_image_bgr_to_gray(frame, &prepared->gray);
    return FA_OK;
}

void fa_tracker_frame_release(fa_tracker_frame_t *prepared)
{
    fa_image_release(&prepared->gray);
    memset(prepared, 0, sizeof *prepared);
}

fa_status fa_face_tracker_process(fa_face_tracker_t *tracker, const fa_image_t *frame,
                                  const fa_tracker_frame_t *prepared, fa_tracked_face_t *face,
                                  fa_error_t *error)
{
    memset(face, 0, sizeof *face);
    if (frame->channels != 3)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "the tracker needs a BGR frame");
    fa_status status = FA_OK;
    if (!prepared) {
        status = fa_tracker_frame_prepare(&tracker->own, frame, error);
        prepared = &tracker->own;
    } else if (prepared->gray.width != frame->width || prepared->gray.height != frame->height) {
        status = fa_error_set(error, FA_ERROR_ARGUMENT, "prepared frame of another size");
    }
    tracker->frame = frame;
    tracker->prepared = prepared;
    int success = 0;
    if (status == FA_OK)
        status = fa_clnf_track(&tracker->models->system, tracker->clnf, &tracker->callbacks,
                               &success, error);
    if (status != FA_OK) return status;
    /* Tracking reads a fraction of what detection read (no MTCNN, no largest scale, one view
     * per scale): let the next frames bring back only that. */
    if (tracker->clnf->last_detection) fa_model_cache_release_all(tracker->models->cache);
    const fa_clnf_state_t *main = &tracker->clnf->main;
    face->success = success;
    face->model_success = main->detection_success;
    face->confidence = main->detection_certainty;
    face->detector_ran = tracker->clnf->last_detection;
    memcpy(face->landmarks, main->landmarks, sizeof face->landmarks);
    memcpy(face->params_global, main->params_global, sizeof face->params_global);
    memcpy(face->params_local, main->params_local, sizeof face->params_local);
    fa_tracked_eyes_capture(&tracker->models->eyes, tracker->clnf->parts, &face->eyes);
    return FA_OK;
}
