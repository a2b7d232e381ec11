/* Images of odd sizes through the program: 1x1, 33x17 and an 8000x6000 photo each give their row
 * (no face: success 0, as OpenFace writes) and exit 0; the large one stays within a memory
 * bound; a folder mixing sizes and faces goes through in order. */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jpeglib.h> /* after stdio.h, which it needs */

#include "media.h"
#include "testing.h"

static char work[256];

/* A texture without faces: smooth waves plus a little noise. */
static unsigned char texture(int x, int y, int c) {
    unsigned noise = ((unsigned)x * 2654435761u ^ (unsigned)y * 40503u) >> 28;
    return (unsigned char)(128 + 60 * ((x / 97 + y / 53 + c) % 3 - 1) + (int)noise);
}

static void texture_row(void *context, int y, unsigned char *row) {
    int width = *(const int *)context;
    for (int x = 0; x < width; x++)
        for (int c = 0; c < 3; c++)
            row[3 * x + c] = texture(x, y, c);
}

static void write_jpeg(const char *path, int width, int height) {
    CHECK(test_jpeg_write(path, width, height, JCS_RGB, JCS_YCbCr, 80, texture_row, &width) == 0,
          "%s not written", path);
}

static void write_png(const char *path, int width, int height) {
    FILE *file = fopen(path, "wb");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, file);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_bytep row = malloc((size_t)width * 3);
    for (int y = 0; y < height; y++) {
        texture_row(&width, y, row);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(file);
    free(row);
}

/* Runs faceau on a folder; returns the exit code. */
static int run_folder(const char *folder) {
    char command[8192];
    snprintf(command, sizeof command,
             "'%s' -fdir '%s/%s' -out_dir '%s/out' --models '%s' -q 2>'%s/%s.stderr'", FACEAU_CLI,
             work, folder, work, test_models_dir(), work, folder);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The success column of <folder>.csv, as a string of 0/1; "" if unreadable. */
static const char *successes(const char *folder) {
    static char flags[64];
    flags[0] = '\0';
    char path[600];
    snprintf(path, sizeof path, "%s/out/%s.csv", work, folder);
    test_csv_t csv;
    if (test_csv_load(path, &csv) != 0) return flags;
    int column = test_csv_column(&csv, "success");
    for (int r = 0; r < csv.rows && r < 63 && column >= 0; r++)
        flags[r] = test_csv_value(&csv, r, column) != 0 ? '1' : '0', flags[r + 1] = '\0';
    test_csv_free(&csv);
    return flags;
}

static void make_folder(const char *folder) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", work, folder);
    mkdir(path, 0777);
}

/* Writes row `row` of an OpenFace CSV's landmarks as frame `frame` of a landmark CSV. */
static void append_landmarks(FILE *out, const char *reference, int frame) {
    test_csv_t csv;
    if (test_csv_load(reference, &csv) != 0) {
        CHECK(0, "cannot read %s", reference);
        return;
    }
    int x = test_csv_column(&csv, "x_0"), y = test_csv_column(&csv, "y_0");
    fprintf(out, "%d, 1", frame);
    for (int i = 0; i < 2 * FA_NUM_LANDMARKS && x >= 0 && y >= 0; i++)
        fprintf(out, ", %.1f", test_csv_value(&csv, 0, i < FA_NUM_LANDMARKS ? x + i : y + i - 68));
    fputc('\n', out);
    test_csv_free(&csv);
}

/* The pose columns of row `row` of a CSV, or -1e9 if unreadable. */
static void read_pose(const char *path, int row, double pose[6]) {
    static const char *const names[6] = {"pose_Tx", "pose_Ty", "pose_Tz",
                                         "pose_Rx", "pose_Ry", "pose_Rz"};
    test_csv_t csv;
    for (int i = 0; i < 6; i++)
        pose[i] = -1e9;
    if (test_csv_load(path, &csv) != 0) return;
    for (int i = 0; i < 6 && row < csv.rows; i++) {
        int column = test_csv_column(&csv, names[i]);
        if (column >= 0) pose[i] = test_csv_value(&csv, row, column);
    }
    test_csv_free(&csv);
}

/* OpenFace sets the camera intrinsics once, from the first image of a folder: a 640x480 image
 * after a 640x400 one is posed with fx = fy = (500 + 500 * 400 / 480) / 2, cx = 320, cy = 200.
 * With landmarks given the pose depends on nothing else, so it must equal a run on that image
 * alone with those intrinsics, and differ from one with its own. */
static void check_first_image_intrinsics(void) {
    char path[1024], command[8192];
    make_folder("intrinsics");
    make_folder("alone");
    snprintf(command, sizeof command,
             "cp '%s' %s/intrinsics/1.jpg && cp '%s' %s/intrinsics/2.jpg && cp '%s' %s/alone/2.jpg",
             test_shared_path("data/images/sample1.jpg"), work,
             test_shared_path("data/images/image_sequence/001.jpg"), work,
             test_shared_path("data/images/image_sequence/001.jpg"), work);
    CHECK(system(command) == 0, "copy images");
    char both[600], alone[600];
    snprintf(both, sizeof both, "%s/both.csv", work);
    snprintf(alone, sizeof alone, "%s/alone.csv", work);
    FILE *files[2] = {fopen(both, "w"), fopen(alone, "w")};
    for (int f = 0; f < 2; f++) {
        if (!files[f]) continue;
        fputs("frame, success", files[f]);
        for (int i = 0; i < 2 * FA_NUM_LANDMARKS; i++)
            fprintf(files[f], ", %c_%d", i < FA_NUM_LANDMARKS ? 'x' : 'y', i % FA_NUM_LANDMARKS);
        fputc('\n', files[f]);
    }
    const char *sequence =
        test_shared_path("data/reference/openface-2.2-clnf/image_sequence/image_sequence.csv");
    append_landmarks(files[0],
                     test_shared_path("data/reference/openface-2.2-clnf/images/sample1.csv"), 1);
    append_landmarks(files[0], sequence, 2);
    append_landmarks(files[1], sequence, 1);
    for (int f = 0; f < 2; f++)
        if (files[f]) fclose(files[f]);

    float fx = (500.0f * (640.0f / 640.0f) + 500.0f * (400.0f / 480.0f)) / 2.0f;
    const char *runs[3][2] = {{"intrinsics", both}, {"alone", alone}, {"alone", alone}};
    double poses[3][6];
    for (int r = 0; r < 3; r++) {
        char intrinsics[200] = "";
        if (r == 1)
            snprintf(intrinsics, sizeof intrinsics, "-fx %.9g -fy %.9g -cx 320 -cy 200", fx, fx);
        snprintf(command, sizeof command,
                 "'%s' -fdir %s/%s --landmarks-from %s -out_dir %s/pose%d -pose %s --models '%s' "
                 "-q",
                 FACEAU_CLI, work, runs[r][0], runs[r][1], work, r, intrinsics, test_models_dir());
        CHECK(system(command) == 0, "pose run %d", r);
        snprintf(path, sizeof path, "%s/pose%d/%s.csv", work, r, runs[r][0]);
        read_pose(path, r == 0 ? 1 : 0, poses[r]);
    }
    int same = 1;
    for (int i = 0; i < 6; i++)
        same &= poses[0][i] == poses[1][i];
    CHECK(same && poses[0][2] > 0,
          "second image's pose Tz %.1f, alone with the first's intrinsics "
          "%.1f",
          poses[0][2], poses[1][2]);
    CHECK(poses[2][2] - poses[1][2] > 10, "its own intrinsics give Tz %.1f, the first's %.1f",
          poses[2][2], poses[1][2]);
}

int main(void) {
    strcpy(work, "/tmp/faceau_sizes_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    char path[1024], command[4096];

    make_folder("one");
    snprintf(path, sizeof path, "%s/one/1x1.png", work);
    write_png(path, 1, 1);
    make_folder("odd");
    snprintf(path, sizeof path, "%s/odd/33x17.jpg", work);
    write_jpeg(path, 33, 17);
    CHECK(run_folder("one") == 0 && strcmp(successes("one"), "0") == 0, "1x1 PNG: rows %s",
          successes("one"));
    CHECK(run_folder("odd") == 0 && strcmp(successes("odd"), "0") == 0, "33x17 JPEG: rows %s",
          successes("odd"));

    /* Sizes change from image to image (640x480 face, 33x17, 640x400 face, 1x1, 640x480 face):
     * the tiny frames are rows without a face, the tracker survives landmarks far outside
     * them, and the last face is found. The third image's flag follows OpenFace's schedule
     * (tracking from the previous landmarks, detection only every few frames), so it is not
     * checked. */
    make_folder("mixed");
    snprintf(command, sizeof command,
             "cp '%s' %s/mixed/1.jpg && cp '%s' %s/mixed/3.jpg && cp '%s' %s/mixed/5.jpg",
             test_shared_path("data/images/image_sequence/001.jpg"), work,
             test_shared_path("data/images/sample1.jpg"), work,
             test_shared_path("data/images/image_sequence/002.jpg"), work);
    CHECK(system(command) == 0, "copy face images");
    snprintf(path, sizeof path, "%s/mixed/2.jpg", work);
    write_jpeg(path, 33, 17);
    snprintf(path, sizeof path, "%s/mixed/4.png", work);
    write_png(path, 1, 1);
    CHECK(run_folder("mixed") == 0, "mixed sizes: exit code");
    const char *mixed = successes("mixed");
    CHECK(strlen(mixed) == 5 && mixed[0] == '1' && mixed[1] == '0' && mixed[3] == '0' &&
              mixed[4] == '1',
          "mixed sizes: rows %s (expected 10?01)", mixed);

    check_first_image_intrinsics();

    /* A 48-megapixel photo: its row, and memory in proportion (0.96 GB measured; the frame
     * alone is 144 MB in BGR, and OpenFace's detector and tracker keep float copies). */
    make_folder("large");
    snprintf(path, sizeof path, "%s/large/8000x6000.jpg", work);
    write_jpeg(path, 8000, 6000);
    CHECK(run_folder("large") == 0 && strcmp(successes("large"), "0") == 0,
          "8000x6000 JPEG: rows %s", successes("large"));
    struct rusage usage;
    getrusage(RUSAGE_CHILDREN, &usage);
    double peak_mb = (double)usage.ru_maxrss / 1024.0;
    printf("8000x6000 photo: peak resident memory %.0f MB\n", peak_mb);
    CHECK(peak_mb < 1500, "peak memory %.0f MB", peak_mb);

    snprintf(command, sizeof command, "rm -rf '%s'", work);
    CHECK(system(command) == 0, "cleanup");
    return test_finish("test_image_sizes");
}
