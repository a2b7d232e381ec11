/* Gaze (GazeAnalysis::EstimateGaze, GetGazeAngle) and the eye fields of a frame's result.
 *
 * The expected vectors below were computed by OpenFace 2.2's own GazeEstimation.cpp steps
 * (RaySphereIntersect, GetPupilPosition, the eyeball-centre Mat expression, GetGazeAngle, with
 * Utilities::Euler2RotationMatrix) compiled against OpenCV 4.6, fed with the same inputs as
 * gaze_case() makes here; faceau must give the same floats bit for bit. That harness is not part
 * of the repository (it is OpenFace's code); on 200 000 random cases, a quarter of them with
 * rays missing the eyeball, it agreed on every bit, and it tells a float sqrt or a float sum of
 * R * offset from OpenFace's double ones. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gaze/gaze.h"
#include "testing.h"

static unsigned case_state;

static float case_uniform(double low, double high) {
    case_state ^= case_state << 13;
    case_state ^= case_state >> 17;
    case_state ^= case_state << 5;
    return (float)(low + (high - low) * (case_state / 4294967296.0));
}

/* Case c: head rotation, each eye model's 28 3D points (X.., Y.., Z..), the face's 68. The iris
 * points scatter around the middle of the eye corners; in case 5 so widely that both rays miss
 * their eyeballs (OpenFace then takes the point (0, 0, -1)). */
static void gaze_case(int c, float rotation[3], float eyes[2][84], float face[204]) {
    case_state = 2463534242u + 7919u * (unsigned)c;
    for (int k = 0; k < 3; k++)
        rotation[k] = case_uniform(-0.6, 0.6);
    float tx = case_uniform(-120, 120), ty = case_uniform(-120, 120), tz = case_uniform(300, 1200);
    for (int i = 0; i < 68; i++) {
        face[i] = tx + case_uniform(-70, 70);
        face[68 + i] = ty + case_uniform(-70, 70);
        face[136 + i] = tz + case_uniform(-40, 40);
    }
    float spread = c == 5 ? 60.0f : 5.0f;
    for (int e = 0; e < 2; e++) {
        int a = e ? 42 : 36;
        for (int axis = 0; axis < 3; axis++) {
            float middle = (face[68 * axis + a] + face[68 * axis + a + 3]) / 2;
            for (int i = 0; i < 28; i++)
                eyes[e][28 * axis + i] =
                    middle + (axis < 2 ? case_uniform(-spread, spread) : case_uniform(-12, 2));
        }
    }
}

typedef struct expected {
    float gaze[2][3], angle[2];
} expected_t;

/* clang-format off */
static const expected_t EXPECTED[8] = {
    {{{-0x1.d76d9ep-4, 0x1.6955f2p-4, -0x1.fa9686p-1}, {-0x1.b44ffap-4, 0x1.c68cap-5, -0x1.fc4b2ap-1}}, {-0x1.c80de2p-4, 0x1.286e4ap-4}},
    {{{0x1.30573ep-2, 0x1.0eb376p-2, -0x1.d5c0eap-1}, {0x1.6a12d4p-3, 0x1.6ab526p-2, -0x1.d62be6p-1}}, {0x1.02beecp-2, 0x1.4ccc78p-2}},
    {{{0x1.480f4ep-2, 0x1.88b4p-4, -0x1.e285ecp-1}, {0x1.554ef2p-3, 0x1.9c8da6p-4, -0x1.f632f6p-1}}, {0x1.fbede4p-3, 0x1.a13d22p-4}},
    {{{0x1.581488p-5, 0x1.0f4d3cp-2, -0x1.ed3c1p-1}, {0x1.0a813ep-2, 0x1.b912f8p-2, -0x1.ba7014p-1}}, {0x1.4fb1acp-3, 0x1.747798p-2}},
    {{{-0x1.1ccb7p-5, -0x1.0a85d2p-2, -0x1.ee0872p-1}, {-0x1.39f4dp-6, -0x1.4377eep-3, -0x1.f97a6ep-1}}, {-0x1.c47b44p-6, -0x1.b0376p-3}},
    {{{0x1.2fc778p-4, 0x1.26b6eap-4, -0x1.fd425cp-1}, {0x1.794cap-3, -0x1.568ca4p-8, -0x1.f73abp-1}}, {0x1.0a186p-3, 0x1.144ec6p-5}},
    {{{-0x1.58942ap-7, 0x1.561ee6p-5, -0x1.ff8664p-1}, {0x1.ab915p-4, 0x1.179fbep-3, -0x1.f861a8p-1}}, {0x1.83450cp-5, 0x1.6f13d2p-4}},
    {{{-0x1.cd270cp-2, 0x1.5cdf6ap-2, -0x1.a68d6ap-1}, {-0x1.d5e064p-2, 0x1.03e202p-1, -0x1.756002p-1}}, {-0x1.0ef602p-1, 0x1.ff81aap-2}},
};
/* clang-format on */

static void test_against_openface(void) {
    for (int c = 0; c < 8; c++) {
        float rotation[3], eyes[2][84], face[204], gaze[2][3], angle[2];
        gaze_case(c, rotation, eyes, face);
        fa_gaze_estimate(rotation, eyes[0], 28, face, FA_GAZE_LEFT, gaze[0]);
        fa_gaze_estimate(rotation, eyes[1], 28, face, FA_GAZE_RIGHT, gaze[1]);
        fa_gaze_angle(gaze[0], gaze[1], angle);
        for (int e = 0; e < 2; e++)
            for (int k = 0; k < 3; k++)
                CHECK(gaze[e][k] == EXPECTED[c].gaze[e][k], "case %d gaze_%d[%d] %a, OpenFace %a",
                      c, e, k, gaze[e][k], EXPECTED[c].gaze[e][k]);
        for (int k = 0; k < 2; k++)
            CHECK(angle[k] == EXPECTED[c].angle[k], "case %d angle %d: %a, OpenFace %a", c, k,
                  angle[k], EXPECTED[c].angle[k]);
    }
}

/* ---------------------------------------------------------------------------------------------
 * The eye fields of fa_frame_result_t through a session. */

static int all_zero(const float *values, int count) {
    for (int i = 0; i < count; i++)
        if (values[i] != 0) return 0;
    return 1;
}

static int gaze_zero(const fa_frame_result_t *r) {
    return all_zero(r->gaze_0, 3) && all_zero(r->gaze_1, 3) && all_zero(r->gaze_angle, 2);
}

static float camera_fx, camera_cx; /* OpenFace's default intrinsics for the test frames */

static void check_face_frame(const fa_frame_result_t *r) {
    enum { N = FA_NUM_EYE_LANDMARKS, M = FA_NUM_LANDMARKS };
    CHECK(r->success == 1, "no face found in the image");
    CHECK(r->eye_landmark_count == N, "%d eye landmarks", r->eye_landmark_count);
    const float *vectors[2] = {r->gaze_0, r->gaze_1};
    for (int e = 0; e < 2; e++) {
        double length =
            sqrt((double)vectors[e][0] * vectors[e][0] + (double)vectors[e][1] * vectors[e][1] +
                 (double)vectors[e][2] * vectors[e][2]);
        CHECK(fabs(length - 1) < 1e-6, "gaze_%d has length %g", e, length);
        CHECK(vectors[e][2] < -0.8f, "gaze_%d does not face the camera: z %g", e, vectors[e][2]);
    }
    /* The eye models' corners (points 8 and 14) are the face's 36/39 (left eye, first 28) and
     * 42/45 (right eye): the face takes them from the eye fits before its re-fit. */
    const int corners[4][2] = {{8, 36}, {14, 39}, {28 + 8, 42}, {28 + 14, 45}};
    for (int k = 0; k < 4; k++) {
        int eye = corners[k][0], face = corners[k][1];
        double distance = hypot(r->eye_landmarks[eye] - r->landmarks[face],
                                r->eye_landmarks[N + eye] - r->landmarks[M + face]);
        CHECK(distance < 2.5, "eye point %d is %.2f px from face point %d", eye, distance, face);
        /* Eye-PDM units are about 0.8 mm (LANDMARKS_SPEC §1.4), so GetShape puts the eyes
         * nearer than the face: OpenFace's CSVs show Z ratios of 0.81-0.86. */
        double ratio = r->eye_landmarks_3d[2 * N + eye] / r->landmarks_3d[2 * M + face];
        CHECK(ratio > 0.75 && ratio < 0.95, "eye point %d Z / face point %d Z = %g", eye, face,
              ratio);
    }
    /* GetShape back-projects the 2D points at their depth. */
    for (int i = 0; i < N; i++) {
        float x = r->eye_landmarks[i], X = r->eye_landmarks_3d[i],
              Z = r->eye_landmarks_3d[2 * N + i];
        CHECK(fabs(X - Z * (x - camera_cx) / camera_fx) < 1e-3, "eye point %d: x %g X %g Z %g", i,
              x, X, Z);
    }
    float mean_x = (r->gaze_0[0] + r->gaze_1[0]) / 2, mean_z = (r->gaze_0[2] + r->gaze_1[2]) / 2;
    CHECK(fabs(r->gaze_angle[0] - atan2(mean_x, -mean_z)) < 1e-6, "gaze_angle_x %g",
          r->gaze_angle[0]);
}

static void test_session(void) {
    fa_error_t error = {0};
    fa_models_t *models = NULL;
    fa_session_t *session = NULL;
    fa_source_t *source = NULL;
    fa_image_t black = {0};
    fa_settings_t settings;
    fa_default_settings(&settings);
    settings.n_threads = 1;
    char image[4096];
    snprintf(image, sizeof image, "%s/001.jpg", test_shared_path("data/images/image_sequence"));
    const fa_image_t *frame = NULL;
    double timestamp;
    if (fa_models_load(test_models_dir(), &settings, &models, &error) != FA_OK ||
        fa_session_create(models, &settings, &session, &error) != FA_OK ||
        fa_source_open(image, FA_SOURCE_IMAGE, &source, &error) != FA_OK ||
        fa_source_read(source, &frame, &timestamp, &error) != FA_OK ||
        fa_image_allocate(&black, frame->width, frame->height, 3, &error) != FA_OK) {
        CHECK(0, "setup: %s", error.message);
        goto done;
    }
    fa_frame_result_t *r = calloc(1, sizeof *r);
    if (!r) goto done;
    enum { N = FA_NUM_EYE_LANDMARKS };

    /* No face yet: no gaze; the eye landmarks are still written, from the eye models' initial
     * state (zero 2D points, scale 1, so Z near fx and X = Z (0 - cx) / fx). */
    CHECK_OK(fa_session_process(session, &black, 0, NULL, r, &error));
    CHECK(r->success == 0 && gaze_zero(r), "gaze on a black frame");
    CHECK(r->eye_landmark_count == N, "%d eye landmarks before any face", r->eye_landmark_count);
    CHECK(all_zero(r->eye_landmarks, 2 * N), "eye landmarks before any face");
    camera_fx = 500.0f * (black.width / 640.0f + black.height / 480.0f) / 2;
    camera_cx = black.width / 2.0f;
    for (int i = 0; i < N; i++) {
        float X = r->eye_landmarks_3d[i], Z = r->eye_landmarks_3d[2 * N + i];
        CHECK(fabs(Z - camera_fx) < 30 && fabs(X - Z * -camera_cx / camera_fx) < 1e-3,
              "eye point %d: X %g Z %g", i, X, Z);
    }

    /* A fresh session: after a faceless first frame OpenFace waits 11 frames to detect again. */
    fa_session_destroy(session);
    session = NULL;
    CHECK_OK(fa_session_create(models, &settings, &session, &error));
    CHECK_OK(fa_session_process(session, frame, 1, NULL, r, &error));
    check_face_frame(r);

    /* Lost again: no gaze, but the eye landmarks of the last fit are written. */
    CHECK_OK(fa_session_process(session, &black, 2, NULL, r, &error));
    CHECK(r->success == 0 && gaze_zero(r), "gaze on a black frame after a face");
    CHECK(r->eye_landmark_count == N && !all_zero(r->eye_landmarks, 2 * N),
          "eye landmarks after losing the face");

    /* Given landmarks: no eye models, so no eye fields at all, even on a success. */
    fa_landmarks_t given = {.success = 1, .confidence = 0.9};
    CHECK_OK(fa_session_process(session, frame, 3, NULL, r, &error));
    memcpy(given.x, r->landmarks, sizeof given.x);
    memcpy(given.y, r->landmarks + FA_NUM_LANDMARKS, sizeof given.y);
    CHECK_OK(fa_session_process(session, frame, 4, &given, r, &error));
    CHECK(r->success == 1 && r->eye_landmark_count == 0 && gaze_zero(r) &&
              all_zero(r->eye_landmarks, 2 * N) && all_zero(r->eye_landmarks_3d, 3 * N),
          "eye fields with given landmarks");
    free(r);
done:
    fa_image_release(&black);
    fa_source_close(source);
    fa_session_destroy(session);
    fa_models_free(models);
}

int main(void) {
    test_against_openface();
    test_session();
    return test_finish("test_gaze");
}
