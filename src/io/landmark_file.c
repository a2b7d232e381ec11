/* Landmarks from an OpenFace-style CSV, read as a stream so memory stays constant on long
 * videos. Columns are found by name; fields may be padded with spaces (OpenFace writes ", "). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

enum { MAX_COLUMNS = 4096 };

struct fa_landmark_file {
    FILE *file;
    char path[4096];
    char *line;
    size_t line_capacity;
    long line_number;
    int column_count;
    int frame_column, success_column, confidence_column, face_column;
    int x_columns[FA_NUM_LANDMARKS], y_columns[FA_NUM_LANDMARKS];
    double *fields;          /* parsed fields of the pending row */
    int have_pending;        /* a row was read ahead and not yet returned */
    long pending_frame;
    long last_frame_asked;
};

static char *trim(char *text)
{
    while (*text == ' ' || *text == '\t') text++;
    size_t length = strlen(text);
    while (length && strchr(" \t\r\n", text[length - 1])) text[--length] = '\0';
    return text;
}

static fa_status parse_header(fa_landmark_file_t *file, fa_error_t *error)
{
    int found_x = 0, found_y = 0;
    char *save = NULL;
    int column = 0;
    for (char *field = strtok_r(file->line, ",", &save); field;
         field = strtok_r(NULL, ",", &save), column++) {
        if (column >= MAX_COLUMNS)
            return fa_error_set(error, FA_ERROR_INPUT, "%s: too many columns", file->path);
        const char *name = trim(field);
        int index;
        char tail;
        if (strcmp(name, "frame") == 0) file->frame_column = column;
        else if (strcmp(name, "success") == 0) file->success_column = column;
        else if (strcmp(name, "confidence") == 0) file->confidence_column = column;
        else if (strcmp(name, "face_id") == 0) file->face_column = column;
        else if (sscanf(name, "x_%d%c", &index, &tail) == 1 && index >= 0 &&
                 index < FA_NUM_LANDMARKS && file->x_columns[index] < 0) {
            file->x_columns[index] = column;
            found_x++;
        } else if (sscanf(name, "y_%d%c", &index, &tail) == 1 && index >= 0 &&
                   index < FA_NUM_LANDMARKS && file->y_columns[index] < 0) {
            file->y_columns[index] = column;
            found_y++;
        }
    }
    file->column_count = column;
    if (file->frame_column < 0 || found_x != FA_NUM_LANDMARKS || found_y != FA_NUM_LANDMARKS)
        return fa_error_set(error, FA_ERROR_INPUT,
                            "%s: not a landmark CSV (needs columns frame, x_0..x_67, y_0..y_67)",
                            file->path);
    file->fields = calloc((size_t)file->column_count, sizeof(double));
    if (!file->fields) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    return FA_OK;
}

fa_status fa_landmark_file_open(const char *path, fa_landmark_file_t **out, fa_error_t *error)
{
    *out = NULL;
    fa_landmark_file_t *file = calloc(1, sizeof *file);
    if (!file) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    snprintf(file->path, sizeof file->path, "%s", path);
    file->frame_column = file->success_column = file->confidence_column = file->face_column = -1;
    for (int i = 0; i < FA_NUM_LANDMARKS; i++) file->x_columns[i] = file->y_columns[i] = -1;
    fa_status status = FA_OK;
    file->file = fopen(path, "r");
    if (!file->file) {
        status = fa_error_set(error, FA_ERROR_IO, "%s: %s", path, strerror(errno));
    } else if (getline(&file->line, &file->line_capacity, file->file) < 0) {
        status = fa_error_set(error, FA_ERROR_INPUT, "%s: empty file", path);
    } else {
        file->line_number = 1;
        status = parse_header(file, error);
    }
    if (status != FA_OK) {
        fa_landmark_file_close(file);
        return status;
    }
    *out = file;
    return FA_OK;
}

void fa_landmark_file_close(fa_landmark_file_t *file)
{
    if (!file) return;
    if (file->file) fclose(file->file);
    free(file->line);
    free(file->fields);
    free(file);
}

/* Reads the next data row into file->fields; FA_ERROR_END at end of file. */
static fa_status read_row(fa_landmark_file_t *file, fa_error_t *error)
{
    for (;;) {
        if (getline(&file->line, &file->line_capacity, file->file) < 0) return FA_ERROR_END;
        file->line_number++;
        if (trim(file->line)[0] == '\0') continue;
        char *cursor = file->line;
        for (int column = 0; column < file->column_count; column++) {
            char *end = NULL;
            double value = strtod(cursor, &end);
            while (end && (*end == ' ' || *end == '\t')) end++;
            int last = column == file->column_count - 1;
            if (end == cursor || !isfinite(value) || (last ? *end != '\0' : *end != ','))
                return fa_error_set(error, FA_ERROR_INPUT, "%s:%ld: bad value in column %d",
                                    file->path, file->line_number, column + 1);
            file->fields[column] = value;
            cursor = last ? end : end + 1;
        }
        return FA_OK;
    }
}

static void fill_landmarks(const fa_landmark_file_t *file, fa_landmarks_t *landmarks)
{
    const double *fields = file->fields;
    landmarks->success = file->success_column < 0 || fields[file->success_column] != 0.0;
    landmarks->confidence = file->confidence_column >= 0 ? fields[file->confidence_column] : 1.0;
    for (int i = 0; i < FA_NUM_LANDMARKS; i++) {
        landmarks->x[i] = (float)fields[file->x_columns[i]];
        landmarks->y[i] = (float)fields[file->y_columns[i]];
    }
}

fa_status fa_landmark_file_get(fa_landmark_file_t *file, int frame_number,
                               fa_landmarks_t *landmarks, fa_error_t *error)
{
    memset(landmarks, 0, sizeof *landmarks);
    if (frame_number <= file->last_frame_asked)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "%s: frame %d asked out of order",
                            file->path, frame_number);
    file->last_frame_asked = frame_number;
    for (;;) {
        if (!file->have_pending) {
            fa_status status = read_row(file, error);
            if (status == FA_ERROR_END) return FA_OK; /* no more rows: no face */
            if (status != FA_OK) return status;
            file->have_pending = 1;
            file->pending_frame = lround(file->fields[file->frame_column]);
        }
        if (file->pending_frame > frame_number) return FA_OK; /* no row for this frame */
        file->have_pending = 0;
        if (file->pending_frame == frame_number) {
            /* Several faces per frame: the first row (face 0) is used. */
            fill_landmarks(file, landmarks);
            return FA_OK;
        }
    }
}
