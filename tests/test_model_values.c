/* Model files with bad numbers: NaN, infinities, overflow, a decimal comma, a malformed number, a
 * fraction where a count belongs, NaN in a binary predictor. Each stops faceau at startup with
 * one line naming the file and the value, exit 14 (a model file is damaged). The models folder
 * is a tree of links to the real one with the damaged file replaced by an edited copy. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testing.h"

static char work[256];
static char output_text[65536];

static int run(const char *arguments) {
    char command[16384];
    snprintf(command, sizeof command,
             "'%s' %s --models %s/models --cache-dir '' -out_dir %s/out -q 2>%s/stderr.txt",
             FACEAU_CLI, arguments, work, work, work);
    int status = system(command);
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", work);
    FILE *file = fopen(path, "r");
    size_t length = file ? fread(output_text, 1, sizeof output_text - 1, file) : 0;
    output_text[length] = '\0';
    if (file) fclose(file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Replaces the link models/<relative> by a copy whose line `line` is `text`. */
static int damage_line(const char *relative, int line, const char *text) {
    char command[8192];
    snprintf(command, sizeof command,
             "rm -f %s/models/%s && sed '%dc\\\n%s' '%s/%s' > %s/models/%s", work, relative, line,
             text, test_models_dir(), relative, work, relative);
    return system(command);
}

/* Puts the link back. */
static int restore(const char *relative) {
    char command[8192];
    snprintf(command, sizeof command, "rm -f %s/models/%s && ln -s '%s/%s' %s/models/%s", work,
             relative, test_models_dir(), relative, work, relative);
    return system(command);
}

/* The program stops at startup naming the file and the bad value, exit 14. */
static void expect_refused(const char *arguments, const char *relative, const char *value,
                           const char *what) {
    const char *name = strrchr(relative, '/') + 1;
    int code = run(arguments);
    if (getenv("FACEAU_TEST_VERBOSE")) printf("%s: exit %d: %s", what, code, output_text);
    CHECK(code == 14 && strstr(output_text, name) && strstr(output_text, value) &&
              strstr(output_text, "cannot load models") && strchr(output_text, '\n') &&
              strchr(output_text, '\n')[1] == '\0',
          "%s in %s: %s", what, relative, output_text);
}

int main(void) {
    strcpy(work, "/tmp/faceau_model_values_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    char command[8192], landmarks_run[8192], tracker_run[8192];
    snprintf(command, sizeof command, "cp -rs '%s' %s/models && mkdir %s/out", test_models_dir(),
             work, work);
    CHECK(system(command) == 0, "link the models");
    snprintf(
        landmarks_run, sizeof landmarks_run, "-f '%s' --landmarks-from '%s' -aus",
        test_shared_path("data/videos/changeLighting.wmv"),
        test_shared_path("data/reference/openface-2.2-clnf/changeLighting/changeLighting.csv"));
    snprintf(tracker_run, sizeof tracker_run, "-f '%s' -aus",
             test_shared_path("data/videos/changeLighting.wmv"));

    /* The AU engine's PDM (text): its first mean, line 5, spoiled in five ways. */
    const char *pdm = "AU_predictors/In-the-wild_aligned_PDM_68.txt";
    static const struct {
        const char *text, *shown, *what;
    } numbers[] = {
        {"nan", "'nan'", "NaN"},
        {"-inf", "'-inf'", "an infinity"},
        {"1e999", "'1e999'", "an overflow"},
        {"-73,393523", "'-73,393523'", "a decimal comma"},
        {"-73.39.3523", "'-73.39.3523'", "a malformed number"},
    };
    for (size_t i = 0; i < sizeof numbers / sizeof *numbers; i++) {
        CHECK(damage_line(pdm, 5, numbers[i].text) == 0, "edit %s", pdm);
        expect_refused(landmarks_run, pdm, numbers[i].shown, numbers[i].what);
    }
    CHECK(restore(pdm) == 0, "restore %s", pdm);

    /* The tracker's PDM: an infinity among the values. */
    const char *tracker_pdm = "model/pdms/In-the-wild_aligned_PDM_68.txt";
    CHECK(damage_line(tracker_pdm, 40, "Infinity") == 0, "edit %s", tracker_pdm);
    expect_refused(tracker_run, tracker_pdm, "'Infinity'", "an infinity");
    CHECK(restore(tracker_pdm) == 0, "restore %s", tracker_pdm);

    /* A fraction where the triangulation's count of triangles belongs. */
    const char *triangles = "AU_predictors/tris_68_full.txt";
    CHECK(damage_line(triangles, 1, "111.5") == 0, "edit %s", triangles);
    expect_refused(landmarks_run, triangles, "111.5", "a fractional count");
    CHECK(restore(triangles) == 0, "restore %s", triangles);

    /* A binary SVR predictor with a NaN among its support vector weights (the double 100 into
     * the weights: type, cutoff, the 4702 means with their header, the weights' header). */
    const char *predictor = "AU_predictors/svr_combined/AU_15_dynamic_intensity_comb.dat";
    long offset = 4 + 8 + 12 + 4702 * 8 + 12 + 100 * 8;
    snprintf(command, sizeof command,
             "rm -f %s/models/%s && cp '%s/%s' %s/models/%s && chmod u+w %s/models/%s && "
             "printf '\\000\\000\\000\\000\\000\\000\\370\\177' | "
             "dd of=%s/models/%s bs=1 seek=%ld conv=notrunc status=none",
             work, predictor, test_models_dir(), predictor, work, predictor, work, predictor, work,
             predictor, offset);
    CHECK(system(command) == 0, "edit %s", predictor);
    expect_refused(landmarks_run, predictor, "non-finite", "NaN in a binary matrix");
    CHECK(restore(predictor) == 0, "restore %s", predictor);

    /* With everything restored the same run succeeds: the failures came from the edits. */
    CHECK(run(landmarks_run) == 0, "restored models: %s", output_text);

    snprintf(command, sizeof command, "rm -rf '%s'", work);
    CHECK(system(command) == 0, "cleanup");
    return test_finish("test_model_values");
}
