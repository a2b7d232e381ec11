/* Issue #3 acceptance: faceau finds the face and its landmarks itself (MTCNN, CLNF, validator,
 * tracking) and must reproduce OpenFace 2.2's whole CSV: success, confidence, landmarks, pose
 * and AUs, on the sample videos and the image sequence. Landmarks are measured against OpenFace's
 * landmarks rebuilt from all its printed columns (~0.001 px, reference_landmarks.h), so the
 * CSV's 0.1-px rounding does not count as our error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "reference_landmarks.h"
#include "testing.h"

/* The bars. Pearson r is required where OpenFace's AU spans at least FLAT_SPREAD (10% of
 * the 0-5 scale); on near-absent AUs its 2-decimal steps dominate r, and the difference bound
 * applies alone. */
static const double MIN_SUCCESS_EQUAL = 0.99, MAX_CONFIDENCE_DIFF = 0.02;
static const double MAX_MEAN_DISTANCE = 0.5, MIN_CLOSE_FRAMES = 0.95, MAX_DISTANCE_ANY = 2.0;
static const double MAX_POSE_T = 1.0, MAX_POSE_R = 0.01, MIN_POSE_FRAMES = 0.95;
static const double FLAT_SPREAD = 0.5, MIN_PEARSON = 0.99, MAX_AU_DIFF = 0.15,
                    MIN_PRESENCE_EQUAL = 0.90,
                    MIN_PRESENCE_OVERALL = 0.98;

static char work_dir[256];

static int column(const test_csv_t *csv, const char *name)
{
    int c = test_csv_column(csv, name);
    CHECK(c >= 0, "column %s missing", name);
    return c < 0 ? 0 : c;
}

/* The tracker's landmarks at full precision (the CSV prints one decimal), from the library. */
static float *track_landmarks(const char *input, fa_source_kind kind, int *frames)
{
    fa_error_t error = {0};
    fa_models_t *models = NULL;
    fa_session_t *session = NULL;
    fa_source_t *source = NULL;
    float *all = NULL;
    *frames = 0;
    if (fa_models_load(test_models_dir(), NULL, &models, &error) != FA_OK ||
        fa_session_create(models, NULL, &session, &error) != FA_OK ||
        fa_source_open(input, kind, &source, &error) != FA_OK) {
        CHECK(0, "%s: %s", input, error.message);
    } else {
        const fa_image_t *frame;
        double timestamp;
        fa_frame_result_t result;
        while (fa_source_read(source, &frame, &timestamp, &error) == FA_OK &&
               fa_session_process(session, frame, timestamp, NULL, &result, &error) == FA_OK) {
            all = realloc(all, sizeof(float) * 2 * FA_NUM_LANDMARKS * (size_t)(*frames + 1));
            memcpy(all + (size_t)*frames * 2 * FA_NUM_LANDMARKS, result.landmarks,
                   sizeof result.landmarks);
            ++*frames;
        }
    }
    fa_source_close(source);
    fa_session_destroy(session);
    fa_models_free(models);
    return all;
}

static void compare_landmarks(const char *name, const char *input, fa_source_kind kind,
                              const test_csv_t *ours, const test_csv_t *rebuilt)
{
    int frames = 0;
    float *tracked = track_landmarks(input, kind, &frames);
    int rows = frames < rebuilt->rows ? frames : rebuilt->rows, close = 0, successes = 0;
    CHECK(frames == rebuilt->rows, "%s: %d frames tracked, %d in OpenFace's CSV", name, frames,
          rebuilt->rows);
    double worst = 0, sum = 0;
    int ours_success = column(ours, "success");
    int rebuilt_x[FA_NUM_LANDMARKS], rebuilt_y[FA_NUM_LANDMARKS];
    for (int i = 0; i < FA_NUM_LANDMARKS; i++) {
        char x[16], y[16];
        snprintf(x, sizeof x, "x_%d", i);
        snprintf(y, sizeof y, "y_%d", i);
        rebuilt_x[i] = column(rebuilt, x), rebuilt_y[i] = column(rebuilt, y);
    }
    int exact = 0;
    for (int r = 0; r < rows; r++) {
        const float *landmarks = tracked + (size_t)r * 2 * FA_NUM_LANDMARKS;
        double distance = 0;
        for (int i = 0; i < FA_NUM_LANDMARKS; i++)
            distance += hypot(landmarks[i] - test_csv_value(rebuilt, r, rebuilt_x[i]),
                              landmarks[FA_NUM_LANDMARKS + i] -
                                  test_csv_value(rebuilt, r, rebuilt_y[i]));
        distance /= FA_NUM_LANDMARKS;
        sum += distance;
        exact += distance < 0.005; /* the rebuilt reference is good to ~0.001 px */
        close += distance <= MAX_MEAN_DISTANCE;
        if (test_csv_value(ours, r, ours_success) != 0) {
            successes++;
            worst = fmax(worst, distance);
        }
    }
    printf("%s: landmarks: mean distance %.4f px, %d of %d frames <= %.1f px, %d within 0.005 px, "
           "worst %.3f px\n",
           name, sum / rows, close, rows, MAX_MEAN_DISTANCE, exact, worst);
    free(tracked);
    CHECK(close >= MIN_CLOSE_FRAMES * rows, "%s: %d of %d frames within %.1f px", name, close,
          rows, MAX_MEAN_DISTANCE);
    CHECK(worst <= MAX_DISTANCE_ANY, "%s: a successful frame is %.2f px away", name, worst);
}

static void compare_tracking(const char *name, const test_csv_t *ours, const test_csv_t *theirs)
{
    CHECK(ours->rows == theirs->rows, "%s: %d rows, OpenFace has %d", name, ours->rows,
          theirs->rows);
    int rows = ours->rows < theirs->rows ? ours->rows : theirs->rows;
    int success_equal = 0, confident = 0, successes = 0, pose_ok = 0;
    double worst_t = 0, worst_r = 0;
    static const char *const translations[3] = {"pose_Tx", "pose_Ty", "pose_Tz"};
    static const char *const rotations[3] = {"pose_Rx", "pose_Ry", "pose_Rz"};
    for (int r = 0; r < rows; r++) {
        double a = test_csv_value(ours, r, column(ours, "success"));
        double b = test_csv_value(theirs, r, column(theirs, "success"));
        success_equal += a == b;
        if (b != 0) {
            successes++;
            confident += fabs(test_csv_value(ours, r, column(ours, "confidence")) -
                              test_csv_value(theirs, r, column(theirs, "confidence"))) <=
                         MAX_CONFIDENCE_DIFF + 1e-9;
        }
        double t = 0, rot = 0;
        for (int k = 0; k < 3; k++) {
            t = fmax(t, fabs(test_csv_value(ours, r, column(ours, translations[k])) -
                             test_csv_value(theirs, r, column(theirs, translations[k]))));
            rot = fmax(rot, fabs(test_csv_value(ours, r, column(ours, rotations[k])) -
                                 test_csv_value(theirs, r, column(theirs, rotations[k]))));
        }
        /* Both sides are printed rounded (0.1 mm, 0.001 rad): allow half a step each. */
        pose_ok += t <= MAX_POSE_T + 0.05 && rot <= MAX_POSE_R + 0.0005;
        worst_t = fmax(worst_t, t);
        worst_r = fmax(worst_r, rot);
    }
    printf("%s: success equal %d/%d, confidence within %.2f on %d/%d successful frames, pose "
           "within bounds %d/%d (worst %.2f mm, %.4f rad)\n",
           name, success_equal, rows, MAX_CONFIDENCE_DIFF, confident, successes, pose_ok, rows,
           worst_t, worst_r);
    CHECK(success_equal >= MIN_SUCCESS_EQUAL * rows, "%s: success equal on %d of %d", name,
          success_equal, rows);
    CHECK(confident == successes, "%s: confidence off on %d frames", name, successes - confident);
    CHECK(pose_ok >= MIN_POSE_FRAMES * rows, "%s: pose within bounds on %d of %d", name, pose_ok,
          rows);
}

/* The CSV as text against OpenFace's: every row the same bytes. faceau reproduces the summation
 * orders of the libraries the reference run used (docs/FIDELITY.md), so nothing is left to
 * tolerance; the bars above stay as the and say how far a regression went. */
static void compare_text(const char *name, const char *ours_path, const char *theirs_path)
{
    FILE *ours = fopen(ours_path, "r"), *theirs = fopen(theirs_path, "r");
    CHECK(ours && theirs, "%s: cannot open the CSVs", name);
    if (!ours || !theirs) {
        if (ours) fclose(ours);
        if (theirs) fclose(theirs);
        return;
    }
    static char a[65536], b[65536];
    int rows = 0, identical = 0, first_different = -1;
    for (;;) {
        char *got_a = fgets(a, sizeof a, ours), *got_b = fgets(b, sizeof b, theirs);
        if (!got_a && !got_b) break;
        int same = got_a && got_b && strcmp(a, b) == 0;
        if (!same && first_different < 0) first_different = rows;
        identical += same;
        rows++;
    }
    fclose(ours);
    fclose(theirs);
    printf("%s: %d of %d CSV lines (header included) identical to OpenFace's\n", name, identical,
           rows);
    CHECK(identical == rows, "%s: line %d is the first that differs", name, first_different);
}

/* OpenFace's flag sets of the other reference runs of default.wmv: the CSV, and the aligned faces
 * the reference kept (the first 30), byte for byte. */
static void check_flags(const char *name, const char *flags, int aligned_frames)
{
    char out_dir[512], command[16384], ours[1024], theirs[4096];
    snprintf(out_dir, sizeof out_dir, "%s/%s", work_dir, name);
    snprintf(command, sizeof command, "'%s' -f '%s' %s -out_dir '%s' --models '%s' -q", FACEAU_CLI,
             test_shared_path("data/videos/default.wmv"), flags, out_dir, test_models_dir());
    int status = system(command);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: faceau failed", name);
    snprintf(ours, sizeof ours, "%s/default.csv", out_dir);
    snprintf(theirs, sizeof theirs, "%s/%s/default.csv",
             test_shared_path("data/reference/openface-2.2-clnf"), name);
    compare_text(name, ours, theirs);
    int same = 0;
    for (int f = 1; f <= aligned_frames; f++) {
        snprintf(command, sizeof command,
                 "cmp -s '%s/default_aligned/frame_det_00_%06d.bmp' "
                 "'%s/%s/default_aligned/frame_det_00_%06d.bmp'",
                 out_dir, f, test_shared_path("data/reference/openface-2.2-clnf"), name, f);
        status = system(command);
        same += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (aligned_frames) printf("%s: %d of %d aligned faces identical\n", name, same, aligned_frames);
    CHECK(same == aligned_frames, "%s: %d of %d aligned faces identical", name, same,
          aligned_frames);
}

static void check_input(const char *name, const char *input_flag, const char *input,
                        fa_source_kind kind)
{
    char out_dir[512], command[16384], ours_path[1024], theirs_path[4096], rebuilt_path[1024],
        pdm_path[4096];
    snprintf(out_dir, sizeof out_dir, "%s/%s", work_dir, name);
    snprintf(command, sizeof command, "'%s' %s '%s' -out_dir '%s' --models '%s' -q", FACEAU_CLI,
             input_flag, input, out_dir, test_models_dir());
    int status = system(command);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: faceau failed", name);
    snprintf(ours_path, sizeof ours_path, "%s/%s.csv", out_dir, name);
    snprintf(theirs_path, sizeof theirs_path, "%s/%s/%s.csv",
             test_shared_path("data/reference/openface-2.2-clnf"), name, name);
    snprintf(rebuilt_path, sizeof rebuilt_path, "%s/%s_rebuilt.csv", work_dir, name);
    snprintf(pdm_path, sizeof pdm_path, "%s/model/pdms/In-the-wild_aligned_PDM_68.txt",
             test_models_dir());
    CHECK(reference_landmarks_write(theirs_path, rebuilt_path, pdm_path) == 0,
          "%s: cannot rebuild landmarks", name);
    test_csv_t ours, theirs, rebuilt;
    if (test_csv_load(ours_path, &ours) != 0 || test_csv_load(theirs_path, &theirs) != 0 ||
        test_csv_load(rebuilt_path, &rebuilt) != 0) {
        CHECK(0, "%s: cannot read the CSVs", name);
        return;
    }
    compare_text(name, ours_path, theirs_path);
    compare_tracking(name, &ours, &theirs);
    compare_landmarks(name, input, kind, &ours, &rebuilt);
    test_compare_aus(name, &ours, &theirs, FLAT_SPREAD, MIN_PEARSON, MAX_AU_DIFF,
                     MIN_PRESENCE_EQUAL, MIN_PRESENCE_OVERALL);
    test_csv_free(&ours);
    test_csv_free(&theirs);
    test_csv_free(&rebuilt);
}

int main(void)
{
    strcpy(work_dir, "/tmp/faceau_tracking_XXXXXX");
    CHECK(mkdtemp(work_dir) != NULL, "cannot create a temporary folder");
    check_input("default", "-f", test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO);
    check_input("changeLighting", "-f", test_shared_path("data/videos/changeLighting.wmv"),
                FA_SOURCE_VIDEO);
    check_input("image_sequence", "-fdir", test_shared_path("data/images/image_sequence"),
                FA_SOURCE_DIRECTORY);
    check_flags("default_sim200", "-simalign -simsize 200 -simscale 0.5 -nomask -g -aus", 30);
    check_flags("default_au_static", "-au_static -aus", 0);
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", work_dir);
    if (system(command) != 0) fprintf(stderr, "could not remove %s\n", work_dir);
    return test_finish("test_golden_tracking");
}
