/* Outputs that cannot be finished: a disk that fills up mid-run, at the final rewrite of the AU
 * columns, or before the first row; SIGTERM and SIGINT mid-run. Each ends non-zero with the
 * reason, and leaves nothing that looks complete: no <name>.csv, only the .part file with whole
 * rows (for signals), no leftover temporary file, no cut aligned-face image.
 *
 * The full disk is a small tmpfs when this process may mount one (root in CI); otherwise the
 * file size limit (ulimit -f, SIGXFSZ ignored) makes writes fail the same way mid-run. The
 * other two cases point the file faceau writes at /dev/full, which any user can. */
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

static char work[256];
static char output_text[65536];
static char video[4096], landmarks[4096];

static int run_shell(const char *command) {
    return test_run_shell(work, command, output_text, sizeof output_text);
}

static int exists(const char *path) {
    struct stat info;
    return lstat(path, &info) == 0;
}

/* The finished-looking or temporary files a failed run must not leave in folder. */
static void check_nothing_complete(const char *folder, const char *what) {
    char path[1024];
    static const char *const names[] = {"changeLighting.csv", "changeLighting.csv.tmp"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", folder, names[i]);
        CHECK(!exists(path), "%s: %s left behind", what, names[i]);
    }
    /* Every aligned face written is whole: 112x112 BGR with its 54-byte header. */
    snprintf(path, sizeof path, "%s/changeLighting_aligned", folder);
    DIR *directory = opendir(path);
    int cut = 0, whole = 0;
    for (struct dirent *entry; directory && (entry = readdir(directory));) {
        if (entry->d_name[0] == '.') continue;
        char image[1400];
        struct stat info;
        snprintf(image, sizeof image, "%s/%s", path, entry->d_name);
        if (stat(image, &info) == 0 && info.st_size == 54 + 112 * 112 * 3)
            whole++;
        else
            cut++;
    }
    if (directory) closedir(directory);
    CHECK(cut == 0, "%s: %d cut aligned-face images (%d whole)", what, cut, whole);
}

/* Every line of a .part CSV is a whole row: as many fields as the header. Returns the rows. */
static int whole_rows(const char *path, const char *what) {
    FILE *file = fopen(path, "r");
    CHECK(file != NULL, "%s: no %s", what, path);
    if (!file) return -1;
    char *line = NULL;
    size_t capacity = 0;
    int header_fields = -1, rows = 0, broken = 0;
    ssize_t length;
    while ((length = getline(&line, &capacity, file)) >= 0) {
        int fields = 1;
        for (char *p = line; *p; p++)
            fields += *p == ',';
        if (length == 0 || line[length - 1] != '\n') broken++;
        if (header_fields < 0)
            header_fields = fields;
        else if (fields != header_fields)
            broken++;
        else
            rows++;
    }
    free(line);
    fclose(file);
    CHECK(broken == 0 && header_fields > 0, "%s: %d broken lines in %s", what, broken, path);
    return rows;
}

/* The disk fills up while frames are being written. */
static void check_disk_full_mid_run(void) {
    char folder[512], command[16384];
    snprintf(folder, sizeof folder, "%s/small", work);
    mkdir(folder, 0777);
    int mounted = mount("tmpfs", folder, "tmpfs", 0, "size=1m") == 0;
    if (getenv("FACEAU_TEST_NO_MOUNT") && mounted) mounted = umount(folder) != 0;
    const char *expected_reason = mounted ? "No space left on device" : "File too large";
    printf("test_output_faults: a full disk is %s\n",
           mounted ? "a 1 MB tmpfs" : "a 1 MB file size limit (tmpfs not permitted)");
    snprintf(command, sizeof command,
             "%s '%s' -f '%s' --landmarks-from '%s' -out_dir %s -q 2>%s/stderr.txt",
             mounted ? "" : "trap '' XFSZ; ulimit -f 2048;", FACEAU_CLI, video, landmarks, folder,
             work);
    int code = run_shell(command);
    CHECK(code == 13 && strstr(output_text, folder) && strstr(output_text, expected_reason),
          "disk full mid-run: exit %d: %s", code, output_text);
    CHECK(strstr(output_text, "incomplete output"), "the program says the output is incomplete: %s",
          output_text);
    check_nothing_complete(folder, "disk full mid-run");
    char path[1024];
    snprintf(path, sizeof path, "%s/changeLighting.csv.part", folder);
    CHECK(exists(path), "disk full mid-run: the .part file stays");
    if (mounted) CHECK(umount(folder) == 0, "unmount the tmpfs");
}

/* The disk is full when the AU columns are rewritten at the end ("<name>.csv.tmp"), and before
 * the first row (".csv.part"): /dev/full stands in for the file. */
static void check_disk_full_at(const char *suffix, const char *what) {
    char folder[512], command[16384], path[1024];
    snprintf(folder, sizeof folder, "%s/full%s", work, suffix);
    mkdir(folder, 0777);
    snprintf(path, sizeof path, "%s/changeLighting%s", folder, suffix);
    CHECK(symlink("/dev/full", path) == 0, "link %s", path);
    snprintf(command, sizeof command,
             "'%s' -f '%s' --landmarks-from '%s' -out_dir %s -aus -q 2>%s/stderr.txt", FACEAU_CLI,
             video, landmarks, folder, work);
    int code = run_shell(command);
    CHECK(code == 13 && strstr(output_text, path) && strstr(output_text, "No space left on device"),
          "%s: exit %d: %s", what, code, output_text);
    snprintf(path, sizeof path, "%s/changeLighting.csv", folder);
    CHECK(!exists(path), "%s: no CSV", what);
    if (strcmp(suffix, ".csv.tmp") == 0) {
        snprintf(path, sizeof path, "%s/changeLighting.csv.part", folder);
        CHECK(whole_rows(path, what) == 88, "%s: the 88 rows stay in the .part file", what);
        snprintf(path, sizeof path, "%s/changeLighting.csv.tmp", folder);
        CHECK(!exists(path), "%s: the temporary file is removed", what);
    }
}

/* A signal mid-run: the current frame finishes, the rows so far stay whole in .part, no CSV,
 * exit 128 + signal. The tracked default.wmv (288 frames, seconds) is long enough. */
static void check_signal(int signal_number, const char *name) {
    char folder[512], command[16384], path[1024];
    snprintf(folder, sizeof folder, "%s/%s", work, name);
    snprintf(path, sizeof path, "%s/default.csv.part", folder);
    snprintf(command, sizeof command,
             "'%s' -f '%s' -out_dir %s -q 2>%s/stderr.txt & pid=$!; "
             "while kill -0 $pid 2>/dev/null && [ $(cat %s 2>/dev/null | wc -l) -lt 20 ]; do "
             "sleep 0.02; done; kill -%s $pid; wait $pid",
             FACEAU_CLI, test_shared_path("data/videos/default.wmv"), folder, work, path, name);
    int code = run_shell(command);
    CHECK(code == 128 + signal_number && strstr(output_text, "interrupted"), "%s: exit %d: %s",
          name, code, output_text);
    int rows = whole_rows(path, name);
    CHECK(rows >= 19 && rows < 288, "%s: %d whole rows kept", name, rows);
    snprintf(path, sizeof path, "%s/default.csv", folder);
    CHECK(!exists(path), "%s: no CSV", name);
    snprintf(path, sizeof path, "%s/default.hog", folder);
    CHECK(!exists(path), "%s: no HOG file", name);
}

int main(void) {
    strcpy(work, "/tmp/faceau_faults_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    snprintf(video, sizeof video, "%s", test_shared_path("data/videos/changeLighting.wmv"));
    snprintf(
        landmarks, sizeof landmarks, "%s",
        test_shared_path("data/reference/openface-2.2-clnf/changeLighting/changeLighting.csv"));
    setenv("FACEAU_MODELS", test_models_dir(), 1);

    check_disk_full_mid_run();
    check_disk_full_at(".csv.tmp", "disk full at the AU rewrite");
    check_disk_full_at(".csv.part", "disk full from the start");
    check_signal(SIGTERM, "TERM");
    check_signal(SIGINT, "INT");

    char command[300];
    snprintf(command, sizeof command, "rm -rf '%s'", work);
    CHECK(system(command) == 0, "cleanup");
    return test_finish("test_output_faults");
}
