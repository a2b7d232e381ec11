/* OpenFace 2.2's MTCNN face detector (FaceDetectorMTCNN::DetectFaces with its defaults) and its
 * choice of one face (DetectSingleFaceMTCNN). PIPELINE_SPEC §1.1-§1.4. */
#ifndef FACEAU_DETECT_MTCNN_H
#define FACEAU_DETECT_MTCNN_H

#include "core/error.h"
#include "detect/cnn.h"

/* A face box in image pixels, already corrected by OpenFace to span eyebrows to chin, and the
 * ONet probability. */
typedef struct fa_box {
    float x, y, width, height;
    float confidence;
} fa_box_t;

/* The three networks; immutable once loaded, shareable across threads. */
typedef struct fa_mtcnn {
    fa_cnn_t pnet, rnet, onet;
} fa_mtcnn_t;

typedef struct fa_mtcnn_settings {
    int min_face;           /* 60 */
    float thresholds[3];    /* PNet, RNet, ONet: 0.6, 0.7, 0.7 */
    fa_cnn_kernels kernels; /* FA_CNN_KERNELS_AUTO */
} fa_mtcnn_settings_t;

void fa_mtcnn_default_settings(fa_mtcnn_settings_t *settings);

/* Reads MTCNN_detector.txt ("PNet PNet.dat" lines, paths relative to its folder). */
fa_status fa_mtcnn_load(fa_mtcnn_t *mtcnn, const char *detector_path, fa_error_t *error);
void fa_mtcnn_release(fa_mtcnn_t *mtcnn);

/* Per-thread scratch memory. Zero-initialise; buffers grow to the largest frame seen. */
typedef struct fa_mtcnn_workspace {
    fa_cnn_workspace_t cnn;
    void *buffers[8];
    size_t capacities[8];
} fa_mtcnn_workspace_t;

void fa_mtcnn_workspace_release(fa_mtcnn_workspace_t *workspace);

/* Detects faces in an 8-bit BGR (or gray) image. Writes at most max_boxes boxes in OpenFace's
 * order and sets *count to the number found (which may exceed max_boxes). settings may be NULL
 * for the defaults. */
fa_status fa_mtcnn_detect(const fa_mtcnn_t *mtcnn, fa_mtcnn_workspace_t *workspace,
                          const fa_mtcnn_settings_t *settings, const fa_image_t *image,
                          fa_box_t *boxes, int max_boxes, int *count, fa_error_t *error);

/* OpenFace's choice without a preference point: the widest box, the first on ties. -1 if none. */
int fa_mtcnn_choose_widest(const fa_box_t *boxes, int count);

#endif
