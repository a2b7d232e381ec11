/* Image folders as researchers keep them (-fdir): stray files, subfolders, a Mac's "._" files,
 * upper-case extensions; a damaged image in the middle; nothing usable at all. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing.h"

static char work[256];
static char output_text[65536];

static int run(const char *arguments) {
    return test_run_cli_models(work, arguments, output_text, sizeof output_text);
}

static void write_text(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    if (file) fputs(text, file), fclose(file);
}

/* Rows of a CSV, -1 if it cannot be read. */
static int csv_rows(const char *path) {
    test_csv_t csv;
    if (test_csv_load(path, &csv) != 0) return -1;
    int rows = csv.rows;
    test_csv_free(&csv);
    return rows;
}

int main(void) {
    strcpy(work, "/tmp/faceau_folders_XXXXXX");
    CHECK(mkdtemp(work) != NULL, "temporary folder");
    char command[8192], path[1024], args[4096];
    const char *sequence = test_shared_path("data/images/image_sequence");

    /* Three images among stray files: notes, a subfolder named like an image (with an image in
     * it, not part of the sequence), a Mac's "._" metadata file, an upper-case extension. */
    snprintf(command, sizeof command,
             "mkdir -p %s/mixed/sub.jpg && cp '%s/001.jpg' %s/mixed/ && cp '%s/002.jpg' "
             "%s/mixed/ && cp '%s/003.jpg' %s/mixed/003.JPG && cp '%s/004.jpg' %s/mixed/sub.jpg/ "
             "&& head -c 4096 /dev/urandom > %s/mixed/._002.jpg",
             work, sequence, work, sequence, work, sequence, work, sequence, work, work);
    CHECK(system(command) == 0, "make the mixed folder");
    snprintf(path, sizeof path, "%s/mixed/notes.txt", work);
    write_text(path, "session 3, subject 12\n");
    snprintf(path, sizeof path, "%s/mixed/Thumbs.db", work);
    write_text(path, "\x01\x02 not an image");
    snprintf(path, sizeof path, "%s/mixed/README", work);
    write_text(path, "raw frames\n");
    snprintf(args, sizeof args, "-fdir %s/mixed -out_dir %s/out -aus", work, work);
    CHECK(run(args) == 0, "mixed folder: %s", output_text);
    snprintf(path, sizeof path, "%s/out/mixed.csv", work);
    CHECK(csv_rows(path) == 3, "mixed folder: %d rows (expected the 3 images)", csv_rows(path));

    /* A file that is not an image in the middle (a truncated JPEG still decodes, grey below the
     * cut, as imread gives it): one line naming it and why, exit 15; the rows before it
     * stay in the .part file, nothing looks complete; a batch goes on to the next folder. */
    snprintf(command, sizeof command,
             "mkdir -p %s/damaged && cp '%s/001.jpg' %s/damaged/1.jpg && cp '%s/003.jpg' "
             "%s/damaged/3.jpg && echo '<html>saved from a browser</html>' > %s/damaged/2.jpg",
             work, sequence, work, sequence, work, work);
    CHECK(system(command) == 0, "make the damaged folder");
    snprintf(args, sizeof args, "-fdir %s/damaged -fdir %s/mixed -out_dir %s/batch -aus", work,
             work, work);
    CHECK(run(args) == 15, "damaged image: exit code: %s", output_text);
    CHECK(strstr(output_text, "damaged/2.jpg") && strstr(output_text, "not an image") &&
              strstr(output_text, "1 of 2 inputs done, 1 failed"),
          "damaged image named with its reason, batch summary: %s", output_text);
    snprintf(path, sizeof path, "%s/batch/damaged.csv", work);
    CHECK(!test_exists(path), "no complete-looking CSV for the damaged folder");
    snprintf(path, sizeof path, "%s/batch/damaged.csv.part", work);
    CHECK(csv_rows(path) == 1, "the row before the damaged image is kept: %d", csv_rows(path));
    snprintf(path, sizeof path, "%s/batch/mixed.csv", work);
    CHECK(csv_rows(path) == 3, "the next folder of the batch was processed");

    /* Nothing usable: a clear error, exit 15. */
    snprintf(command, sizeof command,
             "mkdir -p %s/stray/sub.png && cp %s/mixed/notes.txt %s/stray/", work, work, work);
    CHECK(system(command) == 0, "make the stray folder");
    snprintf(args, sizeof args, "-fdir %s/stray -out_dir %s/out", work, work);
    CHECK(run(args) == 15 && strstr(output_text, "stray") && strstr(output_text, "no images"),
          "folder without images: %s", output_text);

    /* -fdir on a file and -f on a folder: usage mistakes named as such. */
    snprintf(args, sizeof args, "-fdir %s/mixed/notes.txt -out_dir %s/out", work, work);
    CHECK(run(args) == 15 && strstr(output_text, "not a folder"), "-fdir on a file: %s",
          output_text);
    snprintf(args, sizeof args, "-f %s/mixed -out_dir %s/out", work, work);
    CHECK(run(args) == 15 && strstr(output_text, "-fdir"), "-f on a folder: %s", output_text);

    snprintf(command, sizeof command, "rm -rf '%s'", work);
    CHECK(system(command) == 0, "cleanup");
    return test_finish("test_folder_inputs");
}
