/* The faceau program on bad input: a clear message naming the file, a distinct exit code, no
 * crash, and nothing that looks like a complete output (issue #5's table, first rows). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

static char work[256];
static char output_text[65536];

static int run(const char *arguments)
{
    return test_run_cli(work, NULL, arguments, output_text, sizeof output_text);
}

int main(void)
{
    strcpy(work, "/tmp/faceau_cli_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    char models[4096], landmarks[4096], video[4096], args[16384], path[1024];
    snprintf(models, sizeof models, "--models '%s'", test_models_dir());
    snprintf(video, sizeof video, "%s", test_shared_path("data/videos/changeLighting.wmv"));
    snprintf(landmarks, sizeof landmarks, "%s",
             test_shared_path("data/reference/openface-2.2-clnf/changeLighting/changeLighting.csv"));

    CHECK(run("") == 2, "no arguments is a usage error");
    CHECK(run("--no-such-flag") == 2 && strstr(output_text, "--no-such-flag"), "unknown flag");
    snprintf(args, sizeof args, "-f x.mp4 -out_dir %s/o --models /nonexistent/models", work);
    CHECK(run(args) == 13 && strstr(output_text, "/nonexistent/models"),
          "missing models folder: exit 13, named: %s", output_text);

    /* Damaged model: a copy of the AU folder with one predictor truncated. */
    snprintf(args, sizeof args,
             "cp -r '%s/AU_predictors' %s/AU_predictors && "
             "truncate -s 1000 %s/AU_predictors/svr_combined/AU_1_dynamic_intensity_comb.dat",
             test_models_dir(), work, work);
    CHECK(system(args) == 0, "copy models");
    snprintf(args, sizeof args, "-f '%s' --landmarks-from '%s' -out_dir %s/o --models %s", video,
             landmarks, work, work);
    CHECK(run(args) == 14 && strstr(output_text, "AU_1_dynamic_intensity_comb.dat"),
          "damaged model: exit 14, named: %s", output_text);

    snprintf(args, sizeof args, "-f %s/missing.wmv --landmarks-from '%s' -out_dir %s/o %s", work,
             landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "missing.wmv"), "missing video: %s", output_text);

    snprintf(path, sizeof path, "%s/text.mp4", work);
    FILE *file = fopen(path, "w");
    fputs("this is not a video\n", file);
    fclose(file);
    snprintf(args, sizeof args, "-f %s --landmarks-from '%s' -out_dir %s/o %s", path, landmarks,
             work, models);
    CHECK(run(args) == 15 && strstr(output_text, "text.mp4"), "text as video: %s", output_text);

    snprintf(path, sizeof path, "%s/empty.wmv", work);
    fclose(fopen(path, "w"));
    snprintf(args, sizeof args, "-f %s --landmarks-from '%s' -out_dir %s/o %s", path, landmarks,
             work, models);
    CHECK(run(args) == 15 && strstr(output_text, "empty.wmv"), "empty file: %s", output_text);

    /* Random bytes with a video extension: a clear error. */
    snprintf(args, sizeof args, "head -c 200000 /dev/urandom > %s/random.mp4", work);
    CHECK(system(args) == 0, "random file");
    snprintf(args, sizeof args, "-f %s/random.mp4 -out_dir %s/o %s", work, work, models);
    CHECK(run(args) == 15 && strstr(output_text, "random.mp4"), "random bytes: %s", output_text);

    /* A video cut mid-stream: the frames before the cut are processed. */
    snprintf(args, sizeof args, "head -c 150000 '%s' > %s/cut.wmv", video, work);
    CHECK(system(args) == 0, "cut video");
    snprintf(args, sizeof args, "-f %s/cut.wmv --landmarks-from '%s' -out_dir %s/cut -aus %s",
             work, landmarks, work, models);
    CHECK(run(args) == 0, "cut video: %s", output_text);
    snprintf(path, sizeof path, "%s/cut/cut.csv", work);
    test_csv_t cut;
    if (test_csv_load(path, &cut) == 0) {
        CHECK(cut.rows > 0 && cut.rows < 88, "cut video gave %d rows", cut.rows);
        test_csv_free(&cut);
    } else {
        CHECK(0, "no CSV for the cut video");
    }

    /* A batch goes on after a bad input and reports it. */
    snprintf(args, sizeof args,
             "-f %s/missing.wmv --landmarks-from '%s' -f '%s' --landmarks-from '%s' -out_dir %s/batch "
             "-aus %s",
             work, landmarks, video, landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "1 of 2 inputs done, 1 failed"),
          "batch summary: %s", output_text);
    snprintf(path, sizeof path, "%s/batch/changeLighting.csv", work);
    CHECK(test_exists(path), "the good input of the batch was processed");

    /* Two inputs at once (--threads 2, from a --list) give the same files as one at a time. */
    snprintf(path, sizeof path, "%s/list.txt", work);
    file = fopen(path, "w");
    fprintf(file, "# two inputs\n%s\t%s\n%s/copy.wmv\t%s\n", video, landmarks, work, landmarks);
    fclose(file);
    snprintf(args, sizeof args, "cp '%s' %s/copy.wmv", video, work);
    CHECK(system(args) == 0, "copy video");
    snprintf(args, sizeof args, "--list %s/list.txt --threads 2 -out_dir %s/parallel -aus %s", work,
             work, models);
    CHECK(run(args) == 0, "parallel batch: %s", output_text);
    snprintf(args, sizeof args,
             "cmp -s %s/parallel/changeLighting.csv %s/batch/changeLighting.csv && "
             "cmp -s %s/parallel/copy.csv %s/batch/changeLighting.csv",
             work, work, work, work);
    CHECK(system(args) == 0, "parallel outputs equal the sequential one");

    /* Read-only output folder: a clear error, no CSV left. */
    snprintf(path, sizeof path, "%s/readonly", work);
    mkdir(path, 0555);
    if (geteuid() != 0) { /* root writes anywhere: the check means nothing then */
        snprintf(args, sizeof args, "-f '%s' --landmarks-from '%s' -out_dir %s %s", video,
                 landmarks, path, models);
        CHECK(run(args) == 13 && strstr(output_text, "readonly"), "read-only: %s", output_text);
    }

    /* An output folder that cannot be created (a file is in the way): exit 13, no CSV. */
    snprintf(args, sizeof args, "-f '%s' --landmarks-from '%s' -out_dir %s/text.mp4/out %s", video,
             landmarks, work, models);
    CHECK(run(args) == 13 && strstr(output_text, "text.mp4/out"), "blocked out_dir: %s",
          output_text);

    /* An output folder whose parents do not exist yet is created with them (mkdir -p). */
    snprintf(args, sizeof args, "-f '%s' --landmarks-from '%s' -out_dir %s/nested/a/b -aus %s",
             video, landmarks, work, models);
    CHECK(run(args) == 0, "nested output folder: %s", output_text);
    snprintf(path, sizeof path, "%s/nested/a/b/changeLighting.csv", work);
    CHECK(test_exists(path), "CSV in the nested output folder");

    /* SIGINT or SIGTERM mid-run (the tracker on the longer video, so that the run is still
     * going): the finished rows stay in .part, no final CSV, exit 128 + signal. */
    static const struct { const char *name; int code; } signals[] = {{"INT", 130}, {"TERM", 143}};
    for (int k = 0; k < 2; k++) {
        snprintf(args, sizeof args,
                 "'%s' -f '%s' -out_dir %s/sig%s %s -q 2>/dev/null & pid=$!; "
                 "while [ ! -s %s/sig%s/default.csv.part ]; do sleep 0.01; done; "
                 "kill -%s $pid; wait $pid; echo $? > %s/sig_status",
                 FACEAU_CLI, test_shared_path("data/videos/default.wmv"), work, signals[k].name,
                 models, work, signals[k].name, signals[k].name, work);
        CHECK(system(args) == 0, "signal run");
        snprintf(path, sizeof path, "%s/sig_status", work);
        file = fopen(path, "r");
        int code = -1;
        if (file && fscanf(file, "%d", &code) != 1) code = -1;
        if (file) fclose(file);
        snprintf(path, sizeof path, "%s/sig%s/default.csv", work, signals[k].name);
        CHECK(code == signals[k].code && !test_exists(path), "SIG%s: exit %d, final CSV %s",
              signals[k].name, code, test_exists(path) ? "present" : "absent");
        snprintf(path, sizeof path, "%s/sig%s/default.csv.part", work, signals[k].name);
        CHECK(test_exists(path), "SIG%s: the .part file keeps the finished rows", signals[k].name);
    }

    snprintf(args, sizeof args, "rm -rf %s", work);
    if (system(args) != 0) fprintf(stderr, "could not remove %s\n", work);
    return test_finish("test_cli");
}
