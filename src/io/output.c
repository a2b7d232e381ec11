/* Outputs in OpenFace's formats: the CSV (RecorderCSV's columns, ", " separators and decimals),
 * the post-processing rewrite of its AU columns (FaceAnalyser::PostprocessOutputFile, including
 * the doubled space it leaves before untouched fields), .hog records and aligned-face BMPs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"
#include "io/bmp.h"

enum { PATH_SIZE = 4096 };

/* Rows go to <stem>.csv.part (and .hog.part) while the run lasts; only a finished run renames
 * them to their final names, so a crash or an interruption never leaves a file that looks
 * complete, and keeps every row written so far. */
struct fa_output {
    unsigned flags;
    const fa_models_t *models;
    int finished;
    char csv_path[PATH_SIZE], hog_path[PATH_SIZE], aligned_dir[PATH_SIZE];
    char csv_part_path[PATH_SIZE + 8], hog_part_path[PATH_SIZE + 8];
    FILE *csv, *hog;
    long rows;
    int au_columns_begin; /* index of the first AU column, -1 without AUs */
};

/* mkdir -p, as OpenFace's create_directories: the missing parents too. */
static fa_status make_directory(const char *path, fa_error_t *error)
{
    char parent[PATH_SIZE];
    size_t length = strlen(path);
    if (length > 0 && length < sizeof parent) {
        memcpy(parent, path, length + 1);
        for (char *slash = parent + 1; (slash = strchr(slash, '/')); slash++) {
            *slash = '\0';
            if (mkdir(parent, 0777) != 0 && errno != EEXIST) break; /* reported below */
            *slash = '/';
        }
    }
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat info;
        if (stat(path, &info) == 0 && S_ISDIR(info.st_mode)) return FA_OK;
    }
    return fa_error_set(error, FA_ERROR_IO, "%s: cannot create folder: %s", path, strerror(errno));
}

static fa_status join_stem(char *out, const char *dir, const char *stem, const char *suffix,
                           fa_error_t *error)
{
    int written = snprintf(out, PATH_SIZE, "%s/%s%s", dir, stem, suffix);
    if (written < 0 || written >= PATH_SIZE)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "output path too long: %s/%s", dir, stem);
    return FA_OK;
}

static int write_header(fa_output_t *output)
{
    FILE *csv = output->csv;
    fputs("frame, face_id, timestamp, confidence, success", csv);
    int column = 5;
    if (output->flags & FA_OUTPUT_GAZE) {
        fputs(", gaze_0_x, gaze_0_y, gaze_0_z, gaze_1_x, gaze_1_y, gaze_1_z, gaze_angle_x, "
              "gaze_angle_y", csv);
        static const char *const axes[5] = {"x", "y", "X", "Y", "Z"};
        for (int a = 0; a < 5; a++)
            for (int i = 0; i < FA_NUM_EYE_LANDMARKS; i++)
                fprintf(csv, ", eye_lmk_%s_%d", axes[a], i);
        column += 8 + 5 * FA_NUM_EYE_LANDMARKS;
    }
    if (output->flags & FA_OUTPUT_POSE) {
        fputs(", pose_Tx, pose_Ty, pose_Tz, pose_Rx, pose_Ry, pose_Rz", csv);
        column += 6;
    }
    if (output->flags & FA_OUTPUT_LANDMARKS_2D) {
        for (int i = 0; i < FA_NUM_LANDMARKS; i++) fprintf(csv, ", x_%d", i);
        for (int i = 0; i < FA_NUM_LANDMARKS; i++) fprintf(csv, ", y_%d", i);
        column += 2 * FA_NUM_LANDMARKS;
    }
    if (output->flags & FA_OUTPUT_LANDMARKS_3D) {
        static const char axes[3] = {'X', 'Y', 'Z'};
        for (int a = 0; a < 3; a++)
            for (int i = 0; i < FA_NUM_LANDMARKS; i++) fprintf(csv, ", %c_%d", axes[a], i);
        column += 3 * FA_NUM_LANDMARKS;
    }
    if (output->flags & FA_OUTPUT_PDM_PARAMS) {
        fputs(", p_scale, p_rx, p_ry, p_rz, p_tx, p_ty", csv);
        for (int i = 0; i < FA_NUM_PDM_MODES; i++) fprintf(csv, ", p_%d", i);
        column += 6 + FA_NUM_PDM_MODES;
    }
    output->au_columns_begin = -1;
    if (output->flags & FA_OUTPUT_AUS) {
        output->au_columns_begin = column;
        for (int i = 0; i < fa_models_au_count(output->models, FA_AU_INTENSITY); i++)
            fprintf(csv, ", %s_r", fa_models_au_name(output->models, FA_AU_INTENSITY, i));
        for (int i = 0; i < fa_models_au_count(output->models, FA_AU_PRESENCE); i++)
            fprintf(csv, ", %s_c", fa_models_au_name(output->models, FA_AU_PRESENCE, i));
    }
    fputc('\n', csv);
    return fflush(csv) == 0 && !ferror(csv);
}

fa_status fa_output_open(const char *out_dir, const char *stem, unsigned flags,
                         const fa_models_t *models, fa_output_t **out, fa_error_t *error)
{
    *out = NULL;
    if (!out_dir || !stem || !stem[0] || !models)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "output needs a folder, a name and models");
    fa_output_t *output = calloc(1, sizeof *output);
    if (!output) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    output->flags = flags;
    output->models = models;
    fa_status status = make_directory(out_dir, error);
    if (status == FA_OK) status = join_stem(output->csv_path, out_dir, stem, ".csv", error);
    if (status == FA_OK) {
        snprintf(output->csv_part_path, sizeof output->csv_part_path, "%s.part", output->csv_path);
        output->csv = fopen(output->csv_part_path, "w");
        if (!output->csv)
            status = fa_error_set(error, FA_ERROR_IO, "%s: %s", output->csv_part_path,
                                  strerror(errno));
        else if (!write_header(output))
            status = fa_error_set(error, FA_ERROR_IO, "%s: write failed: %s",
                                  output->csv_part_path, strerror(errno));
    }
    if (status == FA_OK && (flags & FA_OUTPUT_HOG)) {
        status = join_stem(output->hog_path, out_dir, stem, ".hog", error);
        snprintf(output->hog_part_path, sizeof output->hog_part_path, "%s.part", output->hog_path);
        if (status == FA_OK && !(output->hog = fopen(output->hog_part_path, "wb")))
            status = fa_error_set(error, FA_ERROR_IO, "%s: %s", output->hog_part_path,
                                  strerror(errno));
    }
    if (status == FA_OK && (flags & FA_OUTPUT_ALIGNED)) {
        status = join_stem(output->aligned_dir, out_dir, stem, "_aligned", error);
        if (status == FA_OK) status = make_directory(output->aligned_dir, error);
    }
    if (status != FA_OK) {
        fa_output_close(output);
        return status;
    }
    *out = output;
    return FA_OK;
}

/* RecorderCSV's gaze block: vectors with 6 decimals, angles with 3, eye landmarks with 1. */
static void write_gaze(FILE *csv, const fa_frame_result_t *result)
{
    const float *vectors[2] = {result->gaze_0, result->gaze_1};
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < 3; k++) fprintf(csv, ", %.6f", (double)vectors[e][k]);
    fprintf(csv, ", %.3f, %.3f", (double)result->gaze_angle[0], (double)result->gaze_angle[1]);
    for (int i = 0; i < 2 * FA_NUM_EYE_LANDMARKS; i++)
        fprintf(csv, ", %.1f", (double)result->eye_landmarks[i]);
    for (int i = 0; i < 3 * FA_NUM_EYE_LANDMARKS; i++)
        fprintf(csv, ", %.1f", (double)result->eye_landmarks_3d[i]);
}

static void write_row(fa_output_t *output, const fa_frame_result_t *result)
{
    FILE *csv = output->csv;
    fprintf(csv, "%d, 0, %.3f, %.2f, %d", result->frame_number, result->timestamp,
            result->confidence, result->success ? 1 : 0);
    if (output->flags & FA_OUTPUT_GAZE) write_gaze(csv, result);
    if (output->flags & FA_OUTPUT_POSE)
        fprintf(csv, ", %.1f, %.1f, %.1f, %.3f, %.3f, %.3f", result->pose[0], result->pose[1],
                result->pose[2], result->pose[3], result->pose[4], result->pose[5]);
    if (output->flags & FA_OUTPUT_LANDMARKS_2D)
        for (int i = 0; i < 2 * FA_NUM_LANDMARKS; i++)
            fprintf(csv, ", %.1f", (double)result->landmarks[i]);
    if (output->flags & FA_OUTPUT_LANDMARKS_3D)
        for (int i = 0; i < 3 * FA_NUM_LANDMARKS; i++)
            fprintf(csv, ", %.1f", (double)result->landmarks_3d[i]);
    if (output->flags & FA_OUTPUT_PDM_PARAMS) {
        for (int i = 0; i < 6; i++) fprintf(csv, ", %.3f", (double)result->params_global[i]);
        for (int i = 0; i < FA_NUM_PDM_MODES; i++)
            fprintf(csv, ", %.3f", (double)result->params_local[i]);
    }
    if (output->flags & FA_OUTPUT_AUS) {
        for (int i = 0; i < fa_models_au_count(output->models, FA_AU_INTENSITY); i++)
            fprintf(csv, ", %.2f", result->au_intensity[i]);
        for (int i = 0; i < fa_models_au_count(output->models, FA_AU_PRESENCE); i++)
            fprintf(csv, ", %.1f", result->au_presence[i]);
    }
    fputc('\n', csv);
}

static int write_hog_record(FILE *hog, const fa_frame_result_t *result)
{
    const int32_t header[3] = {FA_HOG_CELLS, FA_HOG_CELLS, FA_HOG_CHANNELS};
    const float good_frame = result->success ? 1.0f : -1.0f;
    return fwrite(header, sizeof header, 1, hog) == 1 && fwrite(&good_frame, 4, 1, hog) == 1 &&
           fwrite(result->hog, sizeof(float), FA_HOG_SIZE, hog) == FA_HOG_SIZE;
}

fa_status fa_output_write_frame(fa_output_t *output, const fa_frame_result_t *result,
                                const fa_image_t *aligned, fa_error_t *error)
{
    write_row(output, result);
    /* Flushed per row so that an interrupted run keeps every finished frame. */
    if (fflush(output->csv) != 0 || ferror(output->csv))
        return fa_error_set(error, FA_ERROR_IO, "%s: write failed: %s", output->csv_part_path,
                            strerror(errno));
    output->rows++;
    if (output->hog && result->hog && !write_hog_record(output->hog, result))
        return fa_error_set(error, FA_ERROR_IO, "%s: write failed: %s", output->hog_part_path,
                            strerror(errno));
    if ((output->flags & FA_OUTPUT_ALIGNED) && aligned && result->success) {
        char path[PATH_SIZE + 32];
        snprintf(path, sizeof path, "%s/frame_det_00_%06d.bmp", output->aligned_dir,
                 result->frame_number);
        return fa_bmp_write(path, aligned, error);
    }
    return FA_OK;
}

/* Rewrites one data row: AU fields get the post-processed values, the others are kept with
 * trailing blanks trimmed, each after ", " as OpenFace does (hence ",  " before kept fields). */
static void rewrite_row(FILE *out, char *line, int au_begin, const double *intensity,
                        int intensity_count, const double *presence, int presence_count)
{
    char *save = NULL;
    int index = 0;
    for (char *token = strtok_r(line, ",", &save); token; token = strtok_r(NULL, ",", &save)) {
        size_t length = strcspn(token, "\r\n");
        while (length && token[length - 1] == ' ') length--;
        token[length] = '\0';
        int au = index - au_begin;
        if (index == 0) fputs(token, out);
        else if (au >= 0 && au < intensity_count) fprintf(out, ", %.2f", intensity[au]);
        else if (au >= intensity_count && au < intensity_count + presence_count)
            fprintf(out, ", %.2f", presence[au - intensity_count]);
        else fprintf(out, ", %s", token);
        index++;
    }
    fputc('\n', out);
}

static fa_status rewrite_aus(fa_output_t *output, fa_au_series_t *series, fa_error_t *error)
{
    if ((size_t)output->rows != series->frame_count)
        return fa_error_set(error, FA_ERROR_INTERNAL, "%s: %ld rows but %zu AU frames",
                            output->csv_path, output->rows, series->frame_count);
    char temporary[PATH_SIZE + 8];
    snprintf(temporary, sizeof temporary, "%s.tmp", output->csv_path);
    FILE *in = fopen(output->csv_part_path, "r"), *out = in ? fopen(temporary, "w") : NULL;
    fa_status status = FA_OK;
    char *line = NULL;
    size_t capacity = 0;
    if (!in || !out) {
        status = fa_error_set(error, FA_ERROR_IO, "%s: %s", in ? temporary : output->csv_part_path,
                              strerror(errno));
    } else if (getline(&line, &capacity, in) < 0) {
        status = fa_error_set(error, FA_ERROR_IO, "%s: cannot read back", output->csv_part_path);
    } else {
        fputs(line, out);
        for (size_t row = 0; row < series->frame_count; row++) {
            if (getline(&line, &capacity, in) < 0) {
                status = fa_error_set(error, FA_ERROR_IO, "%s: short read", output->csv_part_path);
                break;
            }
            double intensity[FA_MAX_AUS], presence[FA_MAX_AUS];
            status = fa_au_series_next(series, intensity, presence, error);
            if (status != FA_OK) break;
            rewrite_row(out, line, output->au_columns_begin, intensity, series->intensity_count,
                        presence, series->presence_count);
        }
    }
    free(line);
    if (in) fclose(in);
    if (out && (ferror(out) | fclose(out)) != 0 && status == FA_OK)
        status = fa_error_set(error, FA_ERROR_IO, "%s: write failed: %s", temporary,
                              strerror(errno));
    if (status == FA_OK && rename(temporary, output->csv_path) != 0)
        status = fa_error_set(error, FA_ERROR_IO, "%s: %s", output->csv_path, strerror(errno));
    if (status == FA_OK) remove(output->csv_part_path);
    else remove(temporary);
    return status;
}

/* Closes a .part file and renames it to its final name. */
static fa_status publish(FILE **file, const char *part_path, const char *final_path,
                         fa_error_t *error)
{
    int failed = (ferror(*file) | fclose(*file)) != 0;
    *file = NULL;
    if (failed)
        return fa_error_set(error, FA_ERROR_IO, "%s: write failed: %s", part_path,
                            strerror(errno));
    if (rename(part_path, final_path) != 0)
        return fa_error_set(error, FA_ERROR_IO, "%s: %s", final_path, strerror(errno));
    return FA_OK;
}

fa_status fa_output_finish(fa_output_t *output, fa_au_series_t *series, fa_error_t *error)
{
    fa_status status = FA_OK;
    if (output->hog) status = publish(&output->hog, output->hog_part_path, output->hog_path, error);
    if (status != FA_OK) return status;
    if (!(output->flags & FA_OUTPUT_AUS) || !series)
        status = publish(&output->csv, output->csv_part_path, output->csv_path, error);
    else {
        int failed = (ferror(output->csv) | fclose(output->csv)) != 0;
        output->csv = NULL;
        status = failed ? fa_error_set(error, FA_ERROR_IO, "%s: write failed: %s",
                                       output->csv_part_path, strerror(errno))
                        : rewrite_aus(output, series, error);
    }
    output->finished = status == FA_OK;
    return status;
}

void fa_output_close(fa_output_t *output)
{
    if (!output) return;
    if (output->csv) fclose(output->csv);
    if (output->hog) fclose(output->hog);
    free(output);
}

const char *fa_output_csv_path(const fa_output_t *output)
{
    return output->finished ? output->csv_path : output->csv_part_path;
}
