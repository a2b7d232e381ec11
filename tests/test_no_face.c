/* Frames without a face: OpenFace writes success 0 and zero AUs for them and goes on. A
 * sequence of 3 face images, 3 black images and 3 face images, and one of black images only. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "io/bmp.h"
#include "io/image_file.h"
#include "testing.h"

static char work[256];

static void write_frame(const char *folder, int index, const char *source)
{
    fa_image_t image = {0};
    fa_error_t error = {0};
    if (source) {
        CHECK(fa_image_file_read(source, &image, &error) == FA_OK, "%s", error.message);
    } else {
        fa_image_allocate(&image, 640, 480, 3, &error); /* black */
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%03d.bmp", folder, index);
    CHECK(fa_bmp_write(path, &image, &error) == FA_OK, "%s", error.message);
    fa_image_release(&image);
}

static int run(const char *folder, const char *out_dir)
{
    char command[8192];
    snprintf(command, sizeof command, "'%s' -fdir '%s' -out_dir '%s' --models '%s' -q -aus",
             FACEAU_CLI, folder, out_dir, test_models_dir());
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
    strcpy(work, "/tmp/faceau_noface_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    char mixed[512], black[512], source[4096], path[1024];
    snprintf(mixed, sizeof mixed, "%s/mixed", work);
    snprintf(black, sizeof black, "%s/black", work);
    mkdir(mixed, 0777);
    mkdir(black, 0777);
    for (int i = 1; i <= 9; i++) {
        int face = i <= 3 || i >= 7;
        snprintf(source, sizeof source, "%s/%03d.jpg",
                 test_shared_path("data/images/image_sequence"), i <= 3 ? i : i - 3);
        write_frame(mixed, i, face ? source : NULL);
        if (i <= 4) write_frame(black, i, NULL);
    }

    CHECK(run(mixed, work) == 0, "faceau on a sequence with faceless frames");
    snprintf(path, sizeof path, "%s/mixed.csv", work);
    test_csv_t csv;
    if (test_csv_load(path, &csv) == 0) {
        int success = test_csv_column(&csv, "success"), au = test_csv_column(&csv, "AU01_r");
        CHECK(csv.rows == 9, "%d rows", csv.rows);
        for (int r = 0; r < csv.rows && success >= 0; r++) {
            int expected = r < 3 || r >= 6;
            int got = test_csv_value(&csv, r, success) != 0;
            /* The face comes back at frame 7: found again at once or on the next frames. */
            if (r != 6 && r != 7) CHECK(got == expected, "frame %d success %d", r + 1, got);
        }
        /* The middle black frame has failed neighbours, so the 3-frame smoothing keeps its
         * intensities at 0 (presences take a 7-frame vote that reaches the faces). */
        for (int c = au; c >= 0 && c < csv.columns; c++)
            if (csv.names[c][strlen(csv.names[c]) - 1] == 'r')
                CHECK(test_csv_value(&csv, 4, c) == 0, "frame 5 %s = %g", csv.names[c],
                      test_csv_value(&csv, 4, c));
        test_csv_free(&csv);
    } else {
        CHECK(0, "no CSV %s", path);
    }

    CHECK(run(black, work) == 0, "faceau on a sequence without any face");
    snprintf(path, sizeof path, "%s/black.csv", work);
    if (test_csv_load(path, &csv) == 0) {
        int success = test_csv_column(&csv, "success");
        CHECK(csv.rows == 4, "%d rows", csv.rows);
        for (int r = 0; r < csv.rows; r++)
            CHECK(test_csv_value(&csv, r, success) == 0, "frame %d has a face?", r + 1);
        test_csv_free(&csv);
    } else {
        CHECK(0, "no CSV %s", path);
    }
    snprintf(path, sizeof path, "rm -rf '%s'", work);
    if (system(path) != 0) fprintf(stderr, "could not remove %s\n", work);
    return test_finish("test_no_face");
}
