/* More rows of the bad-input table (docs/BAD_INPUT.md): a file with no video stream, tiny images,
 * an unreadable input (run as an unprivileged user), NaN in a model text file, and a full output
 * disk (a small tmpfs). Each gives correct output or one line naming the file, with its exit
 * code, and never a complete-looking partial output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/bmp.h"
#include "testing.h"

static char work[256];
static char output_text[65536];

static int run(const char *prefix, const char *arguments)
{
    return test_run_cli(work, prefix, arguments, output_text, sizeof output_text);
}

static int exists(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0;
}

/* A WAV file of silence: a real media file with an audio stream only. */
static void write_wav(const char *path)
{
    const uint32_t rate = 8000, samples = 8000;
    uint8_t header[44] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ',
                          16, 0, 0, 0, 1, 0, 1, 0};
    uint32_t data_size = samples * 2, riff_size = 36 + data_size, byte_rate = rate * 2;
    memcpy(header + 4, &riff_size, 4);
    memcpy(header + 24, &rate, 4);
    memcpy(header + 28, &byte_rate, 4);
    header[32] = 2, header[34] = 16; /* block align, bits per sample */
    memcpy(header + 36, "data", 4);
    memcpy(header + 40, &data_size, 4);
    FILE *file = fopen(path, "wb");
    fwrite(header, 1, sizeof header, file);
    for (uint32_t i = 0; i < data_size; i++) fputc(0, file);
    fclose(file);
}

static void check_no_video_stream(const char *models)
{
    char path[512], args[8192];
    snprintf(path, sizeof path, "%s/silence.wav", work);
    write_wav(path);
    snprintf(args, sizeof args, "-f '%s' -out_dir %s/o1 %s", path, work, models);
    CHECK(run("", args) == 15 && strstr(output_text, "silence.wav") &&
              strstr(output_text, "no decodable video stream"),
          "audio only: exit 15 naming the file: %s", output_text);
}

/* 1x1 and 33x17 images: no face, one row with success 0, exit 0. */
static void check_tiny_images(const char *models)
{
    static const int sizes[][2] = {{1, 1}, {33, 17}};
    for (int i = 0; i < 2; i++) {
        char path[512], args[8192], csv[512];
        snprintf(path, sizeof path, "%s/tiny%d.bmp", work, i);
        fa_image_t image = {0};
        fa_image_allocate(&image, sizes[i][0], sizes[i][1], 3, NULL);
        for (int k = 0; k < sizes[i][0] * sizes[i][1] * 3; k++) image.data[k] = (uint8_t)(k * 7);
        CHECK(fa_bmp_write(path, &image, NULL) == FA_OK, "write %s", path);
        fa_image_release(&image);
        snprintf(args, sizeof args, "-f '%s' -out_dir %s/o2 -aus %s", path, work, models);
        int code = run("", args);
        CHECK(code == 0, "%dx%d image: exit %d: %s", sizes[i][0], sizes[i][1], code, output_text);
        snprintf(csv, sizeof csv, "%s/o2/tiny%d.csv", work, i);
        test_csv_t table;
        if (test_csv_load(csv, &table) == 0) {
            int success = test_csv_column(&table, "success");
            CHECK(table.rows == 1 && success >= 0 && test_csv_value(&table, 0, success) == 0,
                  "%dx%d image: one row without a face", sizes[i][0], sizes[i][1]);
            test_csv_free(&table);
        } else {
            CHECK(0, "%s missing", csv);
        }
    }
}

/* An input the user cannot read (mode 000), run as nobody (root reads anything). */
static void check_unreadable(const char *models)
{
    if (access("/usr/bin/setpriv", X_OK) != 0) {
        printf("skipped: unreadable input (no setpriv to drop root)\n");
        return;
    }
    char path[512], out[512], args[8192];
    snprintf(path, sizeof path, "%s/locked.wmv", work);
    snprintf(args, sizeof args, "cp '%s' '%s'", test_shared_path("data/videos/changeLighting.wmv"),
             path);
    CHECK(system(args) == 0, "copy video");
    chmod(path, 0);
    snprintf(out, sizeof out, "%s/o3", work);
    mkdir(out, 0777);
    chmod(out, 0777);
    chmod(work, 0755);
    snprintf(args, sizeof args, "-f '%s' -out_dir %s %s --cache-dir ''", path, out, models);
    int code = run("setpriv --reuid=65534 --regid=65534 --clear-groups", args);
    CHECK(code == 13 && strstr(output_text, "locked.wmv") && strstr(output_text, "ermission"),
          "unreadable input as nobody: exit %d: %s", code, output_text);
}

/* A NaN in the PDM text: refused at startup, naming the file. */
static void check_nan_in_model(void)
{
    char args[16384];
    snprintf(args, sizeof args,
             "mkdir -p %s/nanmodels && cp -r '%s/AU_predictors' %s/nanmodels/ && chmod -R u+w "
             "%s/nanmodels && sed -i '10s/^[^ ]*/nan/' "
             "%s/nanmodels/AU_predictors/In-the-wild_aligned_PDM_68.txt",
             work, test_models_dir(), work, work, work);
    CHECK(system(args) == 0, "copy models");
    snprintf(args, sizeof args,
             "-f '%s' --landmarks-from '%s' -out_dir %s/o4 --models %s/nanmodels --cache-dir ''",
             test_shared_path("data/videos/changeLighting.wmv"),
             test_shared_path("data/reference/openface-2.2-clnf/changeLighting/changeLighting.csv"),
             work, work);
    int code = run("", args);
    CHECK(code == 14 && strstr(output_text, "In-the-wild_aligned_PDM_68.txt"),
          "NaN in the PDM: exit %d: %s", code, output_text);
}

/* A full output disk: a 256 KB tmpfs fills up after a few HOG records. */
static void check_full_disk(void)
{
    char out[512], args[8192], path[600];
    snprintf(out, sizeof out, "%s/full", work);
    mkdir(out, 0755);
    if (mount("tmpfs", out, "tmpfs", 0, "size=256k") != 0) {
        printf("skipped: full disk (cannot mount a tmpfs here)\n");
        return;
    }
    snprintf(args, sizeof args,
             "-f '%s' --landmarks-from '%s' -out_dir %s -aus -hogalign --cache-dir ''",
             test_shared_path("data/videos/changeLighting.wmv"),
             test_shared_path("data/reference/openface-2.2-clnf/changeLighting/changeLighting.csv"),
             out);
    int code = run("", args);
    CHECK(code == 13 && strstr(output_text, "changeLighting"),
          "full disk: exit %d: %s", code, output_text);
    snprintf(path, sizeof path, "%s/changeLighting.csv", out);
    CHECK(!exists(path), "no complete-looking CSV on a full disk");
    snprintf(path, sizeof path, "%s/changeLighting.hog", out);
    CHECK(!exists(path), "no complete-looking HOG file on a full disk");
    umount(out);
}

int main(void)
{
    test_temporary_folder(work, sizeof work, "bad");
    char models[4096];
    snprintf(models, sizeof models, "--models '%s'", test_models_dir());
    check_no_video_stream(models);
    check_tiny_images(models);
    check_unreadable(models);
    check_nan_in_model();
    check_full_disk();
    test_remove_folder(work);
    return test_finish("test_bad_input");
}
