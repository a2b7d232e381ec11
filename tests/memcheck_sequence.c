/* The whole pipeline on a short input for valgrind's memcheck (.ci/run): the image sequence in
 * ../shared (30 JPEGs) through the built-in tracker, the AU engine, post-processing and the
 * CSV/HOG writers. It avoids FFmpeg on purpose: linked with --as-needed it does not load
 * libavcodec, whose libjxl -> libhwy start-up code uses an instruction valgrind 3.19 cannot run.
 * Usage: memcheck_sequence MODELS FOLDER OUT_DIR [CACHE_DIR]. Exit 0 on success. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faceau.h"
#include "io/image_file.h"

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc < 4) return 2;
    fa_settings_t settings;
    fa_default_settings(&settings);
    settings.n_threads = 2; /* the pool's threads too */
    settings.cache_dir = argc > 4 ? argv[4] : NULL;
    fa_error_t error = {0};
    fa_models_t *models = NULL;
    fa_session_t *session = NULL;
    fa_output_t *output = NULL;
    char *names[256];
    int count = 0, status = 1;
    DIR *folder = opendir(argv[2]);
    for (struct dirent *entry; folder && (entry = readdir(folder)) && count < 256;)
        if (fa_image_file_is_supported(entry->d_name)) names[count++] = strdup(entry->d_name);
    if (folder) closedir(folder);
    qsort(names, (size_t)count, sizeof *names, compare_names);
    if (count > 0 && fa_models_load(argv[1], &settings, &models, &error) == FA_OK &&
        fa_session_create(models, &settings, &session, &error) == FA_OK &&
        fa_output_open(argv[3], "memcheck", FA_OUTPUT_LANDMARKS_2D | FA_OUTPUT_PDM_PARAMS |
                                                FA_OUTPUT_AUS | FA_OUTPUT_HOG | FA_OUTPUT_POSE |
                                                FA_OUTPUT_LANDMARKS_3D,
                       models, &output, &error) == FA_OK) {
        fa_image_t frame = {0};
        status = 0;
        for (int i = 0; i < count && !status; i++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", argv[2], names[i]);
            fa_frame_result_t result;
            status = fa_image_file_read(path, &frame, &error) != FA_OK ||
                     fa_session_process(session, &frame, 0.0, NULL, &result, &error) != FA_OK ||
                     fa_output_write_frame(output, &result, NULL, &error) != FA_OK;
        }
        fa_au_series_t series;
        if (!status)
            status = fa_session_postprocess(session, &series, &error) != FA_OK ||
                     fa_output_finish(output, &series, &error) != FA_OK;
        fa_image_release(&frame);
    }
    if (status) fprintf(stderr, "memcheck_sequence: %s\n", error.message);
    else printf("memcheck_sequence: %d frames\n", count);
    fa_output_close(output);
    fa_session_destroy(session);
    fa_models_free(models);
    for (int i = 0; i < count; i++) free(names[i]);
    return status;
}
