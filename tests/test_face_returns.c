/* A face that leaves and comes back: default.wmv's first 120 frames with frames 41-60 blanked,
 * re-encoded losslessly (tests/media.c). The blank frames are rows without a face; afterwards
 * the tracker finds the face again by detection and follows it as OpenFace did on the same
 * frames (OpenFace's CSV of the untouched video is the reference). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "media.h"
#include "testing.h"

enum { FRAMES = 120, BLANK_FIRST = 41, BLANK_LAST = 60, RECOVERY_FRAMES = 3 };

typedef struct frames {
    fa_image_t images[FRAMES];
    int count;
} frames_t;

static void draw(void *context, int index, AVFrame *frame) {
    const frames_t *frames = context;
    int blank = index + 1 >= BLANK_FIRST && index + 1 <= BLANK_LAST;
    const fa_image_t *image = &frames->images[index];
    for (int y = 0; y < frame->height; y++) {
        uint8_t *row = frame->data[0] + y * frame->linesize[0];
        for (int x = 0; x < frame->width; x++) {
            for (int c = 0; c < 3; c++)
                row[4 * x + c] = blank ? 0 : image->data[y * image->stride + 3 * x + c];
            row[4 * x + 3] = 0;
        }
    }
}

/* Mean distance in pixels between the 68 landmarks of row r of two CSVs. */
static double landmark_distance(const test_csv_t *a, int ra, const test_csv_t *b, int rb) {
    int ax = test_csv_column(a, "x_0"), ay = test_csv_column(a, "y_0");
    int bx = test_csv_column(b, "x_0"), by = test_csv_column(b, "y_0");
    if (ax < 0 || ay < 0 || bx < 0 || by < 0) return INFINITY;
    double sum = 0;
    for (int i = 0; i < FA_NUM_LANDMARKS; i++)
        sum += hypot(test_csv_value(a, ra, ax + i) - test_csv_value(b, rb, bx + i),
                     test_csv_value(a, ra, ay + i) - test_csv_value(b, rb, by + i));
    return sum / FA_NUM_LANDMARKS;
}

int main(void) {
    char work[] = "/tmp/faceau_returns_XXXXXX";
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    frames_t *frames = calloc(1, sizeof *frames);
    fa_source_t *source = NULL;
    fa_error_t error = {0};
    CHECK(fa_source_open(test_shared_path("data/videos/default.wmv"), FA_SOURCE_VIDEO, &source,
                         &error) == FA_OK,
          "%s", error.message);
    const fa_image_t *frame;
    while (source && frames->count < FRAMES &&
           fa_source_read(source, &frame, NULL, &error) == FA_OK)
        CHECK_OK(fa_image_copy(&frames->images[frames->count++], frame, &check_error_));
    fa_source_close(source);
    CHECK(frames->count == FRAMES, "%d frames of default.wmv", frames->count);

    char video[256], command[8192], csv_path[512];
    snprintf(video, sizeof video, "%s/returns.mkv", work);
    test_video_spec_t spec = {.path = video,
                              .encoder = "ffv1",
                              .pixel_format = AV_PIX_FMT_BGR0,
                              .width = frames->images[0].width,
                              .height = frames->images[0].height,
                              .frames = frames->count,
                              .time_base = 15,
                              .draw = draw,
                              .context = frames};
    CHECK(frames->count == FRAMES && test_video_write(&spec) == 0, "encode");
    for (int i = 0; i < frames->count; i++)
        fa_image_release(&frames->images[i]);
    free(frames);

    snprintf(command, sizeof command, "'%s' -f %s -out_dir %s -2Dfp -aus --models '%s' -q",
             FACEAU_CLI, video, work, test_models_dir());
    int status = system(command);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "faceau exit status %d", status);

    test_csv_t ours, reference;
    snprintf(csv_path, sizeof csv_path, "%s/returns.csv", work);
    const char *reference_path =
        test_shared_path("data/reference/openface-2.2-clnf/default/default.csv");
    int have_ours = test_csv_load(csv_path, &ours) == 0;
    int have_reference = test_csv_load(reference_path, &reference) == 0;
    CHECK(have_ours && have_reference, "cannot read %s or %s", csv_path, reference_path);
    if (have_ours && have_reference) {
        int success = test_csv_column(&ours, "success");
        int reference_success = test_csv_column(&reference, "success");
        CHECK(ours.rows == FRAMES && success >= 0, "%d rows", ours.rows);
        int first_found = 0, lost_after = 0, blank_found = 0, before_differ = 0;
        double before = 0, after = 0, worst_after = 0;
        int after_count = 0;
        for (int r = 0; r < ours.rows && r < FRAMES && success >= 0; r++) {
            int frame_number = r + 1, found = test_csv_value(&ours, r, success) != 0;
            if (frame_number < BLANK_FIRST) {
                before_differ += found != (test_csv_value(&reference, r, reference_success) != 0);
                before = fmax(before, landmark_distance(&ours, r, &reference, r));
            } else if (frame_number <= BLANK_LAST) {
                blank_found += found;
            } else if (!first_found) {
                if (found) first_found = frame_number;
            } else if (!found) {
                lost_after++;
            } else {
                double distance = landmark_distance(&ours, r, &reference, r);
                after += distance, after_count++;
                worst_after = fmax(worst_after, distance);
            }
        }
        CHECK(before_differ == 0 && before < 0.5,
              "before the gap: %d success flags differ from OpenFace's, worst landmark distance "
              "%.3f px",
              before_differ, before);
        CHECK(blank_found == 0, "%d blank frames with a face", blank_found);
        CHECK(first_found >= BLANK_LAST + 1 && first_found <= BLANK_LAST + RECOVERY_FRAMES,
              "face found again at frame %d (blank until %d)", first_found, BLANK_LAST);
        CHECK(lost_after == 0, "%d frames lost after the face came back", lost_after);
        after /= after_count > 0 ? after_count : 1;
        printf("after the gap: found again at frame %d, landmarks %.3f px from OpenFace's on "
               "average, worst frame %.3f px\n",
               first_found, after, worst_after);
        CHECK(after_count > 0 && after < 0.3 && worst_after < 2.0,
              "after the gap: mean %.3f px, worst %.3f px from OpenFace's landmarks", after,
              worst_after);
    }
    if (have_ours) test_csv_free(&ours);
    if (have_reference) test_csv_free(&reference);
    snprintf(command, sizeof command, "rm -rf '%s'", work);
    CHECK(system(command) == 0, "cleanup");
    return test_finish("test_face_returns");
}
