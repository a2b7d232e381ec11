/* Files faceau may not read or write: a video, an image folder, an image in it, a landmark CSV,
 * a model file, the output folder. Each gives one line naming the file with the system's
 * reason, exit 13, and a batch goes on. Root reads everything, so as root (CI) faceau runs as
 * the unprivileged user 65534 (setpriv or runuser); the test says so and skips only if neither
 * can run it. That user may not see the build or the shared data (a checkout under /root), so
 * the program, the AU models and every input are copied into a temporary folder first, and
 * landmarks are given so that the tracker's models are not needed. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

static char work[256];
static char as_user[128]; /* the command prefix that drops privileges, "" if not root */
static char output_text[65536];
static char program[512]; /* the copy of faceau */

static int run_command(const char *command) {
    return test_run_shell(work, command, output_text, sizeof output_text);
}

/* faceau with arguments, unprivileged, without a model cache; returns the exit code. */
static int run(const char *arguments) {
    char command[16384];
    snprintf(command, sizeof command, "%s %s %s --cache-dir '' -q 2>%s/stderr.txt", as_user,
             program, arguments, work);
    return run_command(command);
}

/* Finds a way to run faceau as an unprivileged user; 0 if none works. */
static int choose_user(void) {
    if (geteuid() != 0) return 1;
    static const char *const prefixes[] = {
        "setpriv --reuid=65534 --regid=65534 --clear-groups --",
        "runuser -u nobody --",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        char command[8192];
        snprintf(command, sizeof command, "%s %s --version >/dev/null 2>%s/stderr.txt", prefixes[i],
                 program, work);
        snprintf(as_user, sizeof as_user, "%s", prefixes[i]);
        if (run_command(command) == 0) return 1;
    }
    as_user[0] = '\0';
    return 0;
}

static int one_line(const char *text) {
    const char *newline = strchr(text, '\n');
    return newline && newline[1] == '\0';
}

int main(void) {
    strcpy(work, "/tmp/faceau_permissions_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    chmod(work, 0777); /* the unprivileged user writes its outputs here */
    char command[8192], args[8192], path[1024], models[4096];
    snprintf(program, sizeof program, "%s/faceau", work);
    snprintf(command, sizeof command,
             "cp '%s' %s && mkdir %s/models && cp -r '%s/AU_predictors' %s/models/ && "
             "cp '%s' %s/lighting.csv && cp '%s' %s/sequence.csv && chmod -R a+rX %s",
             FACEAU_CLI, program, work, test_models_dir(), work,
             test_shared_path("data/reference/openface-2.2-clnf/changeLighting/changeLighting.csv"),
             work,
             test_shared_path("data/reference/openface-2.2-clnf/image_sequence/image_sequence.csv"),
             work, work);
    CHECK(system(command) == 0, "copy the program, models and landmarks");
    if (!choose_user()) {
        printf("test_permissions: skipped: running as root and neither setpriv nor runuser can "
               "run %s as user 65534 (%s)\n",
               program, output_text);
        snprintf(command, sizeof command, "rm -rf '%s'", work);
        if (system(command) != 0) fprintf(stderr, "could not remove %s\n", work);
        return test_finish("test_permissions");
    }
    if (as_user[0]) printf("test_permissions: faceau runs as: %s\n", as_user);
    snprintf(models, sizeof models, "--models %s/models", work);
    const char *video = test_shared_path("data/videos/changeLighting.wmv");
    char landmarks[600], sequence_landmarks[600];
    snprintf(landmarks, sizeof landmarks, "%s/lighting.csv", work);
    snprintf(sequence_landmarks, sizeof sequence_landmarks, "%s/sequence.csv", work);
    const char *sequence = test_shared_path("data/images/image_sequence");

    /* An unreadable video. */
    snprintf(command, sizeof command,
             "cp '%s' %s/locked.wmv && chmod 000 %s/locked.wmv && cp '%s' %s/open.wmv && "
             "chmod 644 %s/open.wmv",
             video, work, work, video, work, work);
    CHECK(system(command) == 0, "copy videos");
    snprintf(args, sizeof args, "-f %s/locked.wmv --landmarks-from %s -out_dir %s/out %s", work,
             landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "locked.wmv") &&
              strstr(output_text, "Permission denied") && one_line(output_text),
          "unreadable video: %s", output_text);

    /* In a batch: the readable video after it is processed, the summary counts the failure. */
    snprintf(args, sizeof args,
             "-f %s/locked.wmv --landmarks-from %s -f %s/open.wmv --landmarks-from %s "
             "-out_dir %s/out -aus %s",
             work, landmarks, work, landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "1 of 2 inputs done, 1 failed"), "batch: %s",
          output_text);
    snprintf(path, sizeof path, "%s/out/open.csv", work);
    CHECK(test_exists(path), "the readable video of the batch was processed");

    /* An unreadable landmark CSV. */
    snprintf(command, sizeof command, "cp %s %s/locked.csv && chmod 000 %s/locked.csv", landmarks,
             work, work);
    CHECK(system(command) == 0, "copy landmarks");
    snprintf(args, sizeof args, "-f %s/open.wmv --landmarks-from %s/locked.csv -out_dir %s/out %s",
             work, work, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "locked.csv") &&
              strstr(output_text, "Permission denied"),
          "unreadable landmark CSV: %s", output_text);

    /* An image folder that cannot be listed, and an unreadable image inside a readable one:
     * the rows before it stay in the .part file. */
    snprintf(command, sizeof command,
             "mkdir %s/closed %s/frames && cp '%s/001.jpg' %s/closed/ && chmod 000 %s/closed && "
             "cp '%s/001.jpg' '%s/002.jpg' '%s/003.jpg' %s/frames/ && chmod 644 %s/frames/* && "
             "chmod 000 %s/frames/002.jpg",
             work, work, sequence, work, work, sequence, sequence, sequence, work, work, work);
    CHECK(system(command) == 0, "make folders");
    snprintf(args, sizeof args, "-fdir %s/closed --landmarks-from %s -out_dir %s/out %s", work,
             sequence_landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "closed") &&
              strstr(output_text, "Permission denied") && one_line(output_text),
          "unlistable folder: %s", output_text);
    snprintf(args, sizeof args, "-fdir %s/frames --landmarks-from %s -out_dir %s/out -aus %s", work,
             sequence_landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "frames/002.jpg") &&
              strstr(output_text, "Permission denied"),
          "unreadable image: %s", output_text);
    snprintf(path, sizeof path, "%s/out/frames.csv", work);
    CHECK(!test_exists(path), "no complete-looking CSV after the unreadable image");
    snprintf(path, sizeof path, "%s/out/frames.csv.part", work);
    test_csv_t csv;
    int rows = test_csv_load(path, &csv) == 0 ? csv.rows : -1;
    if (rows >= 0) test_csv_free(&csv);
    CHECK(rows == 1, "the row before the unreadable image is kept (%d rows)", rows);

    /* An output folder the user may not write to. */
    snprintf(path, sizeof path, "%s/readonly", work);
    mkdir(path, 0555);
    chmod(path, 0555);
    snprintf(args, sizeof args, "-f %s/open.wmv --landmarks-from %s -out_dir %s %s", work,
             landmarks, path, models);
    CHECK(run(args) == 13 && strstr(output_text, "readonly") &&
              strstr(output_text, "Permission denied"),
          "read-only output folder: %s", output_text);
    snprintf(path, sizeof path, "%s/readonly/open.csv", work);
    CHECK(!test_exists(path), "no CSV in the read-only folder");

    /* An unreadable model file: named at startup, exit 13. */
    snprintf(command, sizeof command,
             "chmod 000 %s/models/AU_predictors/svr_combined/AU_15_dynamic_intensity_comb.dat",
             work);
    CHECK(system(command) == 0, "lock a model file");
    snprintf(args, sizeof args, "-f %s/open.wmv --landmarks-from %s -out_dir %s/out %s", work,
             landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "AU_15_dynamic_intensity_comb.dat") &&
              strstr(output_text, "Permission denied") && one_line(output_text),
          "unreadable model: %s", output_text);

    snprintf(command, sizeof command, "chmod -R u+rwX '%s'; rm -rf '%s'", work, work);
    CHECK(system(command) == 0, "cleanup");
    return test_finish("test_permissions");
}
