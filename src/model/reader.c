#include "model/reader.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* No OpenFace matrix comes near this; it bounds allocations on damaged files. */
enum { MAX_MATRIX_ELEMENTS = 1 << 26 };

void fa_matrix_release(fa_matrix_t *matrix)
{
    if (!matrix) return;
    free(matrix->data);
    memset(matrix, 0, sizeof *matrix);
}

void fa_reader_init(fa_reader_t *reader, const char *data, size_t size, const char *name)
{
    reader->data = data;
    reader->size = size;
    reader->position = 0;
    reader->name = name ? name : "(memory)";
}

static int at_end(const fa_reader_t *reader) { return reader->position >= reader->size; }

static void skip_whitespace(fa_reader_t *reader)
{
    while (!at_end(reader) && isspace((unsigned char)reader->data[reader->position]))
        reader->position++;
}

static void skip_line(fa_reader_t *reader)
{
    while (!at_end(reader) && reader->data[reader->position] != '\n') reader->position++;
    if (!at_end(reader)) reader->position++;
}

void fa_reader_skip_comments(fa_reader_t *reader)
{
    while (!at_end(reader)) {
        char c = reader->data[reader->position];
        if (c == '#') {
            skip_line(reader);
        } else if (isspace((unsigned char)c)) {
            reader->position++;
        } else {
            break;
        }
    }
}

fa_status fa_read_token(fa_reader_t *reader, char *out, size_t size, fa_error_t *error)
{
    skip_whitespace(reader);
    if (at_end(reader)) return fa_error_set(error, FA_ERROR_END, "%s: unexpected end of file",
                                            reader->name);
    size_t length = 0;
    while (!at_end(reader) && !isspace((unsigned char)reader->data[reader->position])) {
        if (length + 1 >= size)
            return fa_error_set(error, FA_ERROR_MODEL, "%s: token too long at byte %zu",
                                reader->name, reader->position);
        out[length++] = reader->data[reader->position++];
    }
    out[length] = '\0';
    return FA_OK;
}

fa_status fa_read_line(fa_reader_t *reader, char *out, size_t size, fa_error_t *error)
{
    if (at_end(reader)) return fa_error_set(error, FA_ERROR_END, "%s: end of file", reader->name);
    size_t length = 0;
    while (!at_end(reader) && reader->data[reader->position] != '\n') {
        char c = reader->data[reader->position++];
        if (c == '\r') continue;
        if (length + 1 >= size)
            return fa_error_set(error, FA_ERROR_MODEL, "%s: line too long", reader->name);
        out[length++] = c;
    }
    if (!at_end(reader)) reader->position++;
    out[length] = '\0';
    return FA_OK;
}

fa_status fa_read_text_double(fa_reader_t *reader, double *value, fa_error_t *error)
{
    char token[128];
    fa_status status = fa_read_token(reader, token, sizeof token, error);
    if (status == FA_ERROR_END)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: truncated (a number was expected)",
                            reader->name);
    if (status != FA_OK) return status;
    char *end = NULL;
    double parsed = strtod(token, &end);
    if (end == token || *end != '\0' || !isfinite(parsed))
        return fa_error_set(error, FA_ERROR_MODEL, "%s: '%s' is not a finite number",
                            reader->name, token);
    *value = parsed;
    return FA_OK;
}

fa_status fa_read_text_int(fa_reader_t *reader, int *value, fa_error_t *error)
{
    double parsed;
    fa_status status = fa_read_text_double(reader, &parsed, error);
    if (status != FA_OK) return status;
    if (parsed != floor(parsed) || parsed < -2147483647.0 || parsed > 2147483647.0)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: %g is not an integer", reader->name,
                            parsed);
    *value = (int)parsed;
    return FA_OK;
}

static fa_status allocate_matrix(fa_reader_t *reader, fa_matrix_t *matrix, int rows, int cols,
                                 int type, fa_error_t *error)
{
    memset(matrix, 0, sizeof *matrix);
    if (rows < 0 || cols < 0 || (rows > 0 && cols > MAX_MATRIX_ELEMENTS / rows))
        return fa_error_set(error, FA_ERROR_MODEL, "%s: implausible matrix size %dx%d",
                            reader->name, rows, cols);
    if (type != FA_CV_8U && type != FA_CV_32S && type != FA_CV_32F && type != FA_CV_64F)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: unsupported matrix type %d",
                            reader->name, type);
    matrix->data = calloc((size_t)rows * (size_t)cols + 1, sizeof(double));
    if (!matrix->data) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    matrix->rows = rows;
    matrix->cols = cols;
    matrix->type = type;
    return FA_OK;
}

fa_status fa_read_text_matrix(fa_reader_t *reader, fa_matrix_t *matrix, fa_error_t *error)
{
    int rows = 0, cols = 0, type = 0;
    fa_reader_skip_comments(reader);
    fa_status status = fa_read_text_int(reader, &rows, error);
    if (status == FA_OK) status = fa_read_text_int(reader, &cols, error);
    if (status == FA_OK) status = fa_read_text_int(reader, &type, error);
    if (status == FA_OK) status = allocate_matrix(reader, matrix, rows, cols, type, error);
    size_t count = (size_t)rows * (size_t)cols;
    for (size_t i = 0; status == FA_OK && i < count; i++)
        status = fa_read_text_double(reader, &matrix->data[i], error);
    if (status != FA_OK) fa_matrix_release(matrix);
    return status;
}

static fa_status read_bytes(fa_reader_t *reader, void *out, size_t count, fa_error_t *error)
{
    if (reader->size - reader->position < count || reader->position > reader->size)
        return fa_error_set(error, FA_ERROR_MODEL, "%s: truncated at byte %zu (needs %zu more)",
                            reader->name, reader->position, count);
    memcpy(out, reader->data + reader->position, count);
    reader->position += count;
    return FA_OK;
}

fa_status fa_read_i32(fa_reader_t *reader, int32_t *value, fa_error_t *error)
{
    return read_bytes(reader, value, sizeof *value, error);
}

fa_status fa_read_f32(fa_reader_t *reader, float *value, fa_error_t *error)
{
    return read_bytes(reader, value, sizeof *value, error);
}

fa_status fa_read_f64(fa_reader_t *reader, double *value, fa_error_t *error)
{
    return read_bytes(reader, value, sizeof *value, error);
}

static size_t element_size(int type)
{
    switch (type) {
    case FA_CV_8U: return 1;
    case FA_CV_32S:
    case FA_CV_32F: return 4;
    default: return 8;
    }
}

fa_status fa_read_matbin(fa_reader_t *reader, fa_matrix_t *matrix, fa_error_t *error)
{
    int32_t rows = 0, cols = 0, type = 0;
    fa_status status = fa_read_i32(reader, &rows, error);
    if (status == FA_OK) status = fa_read_i32(reader, &cols, error);
    if (status == FA_OK) status = fa_read_i32(reader, &type, error);
    if (status == FA_OK) status = allocate_matrix(reader, matrix, rows, cols, type, error);
    if (status != FA_OK) return status;
    size_t count = (size_t)rows * (size_t)cols, size = element_size(type);
    if (reader->size - reader->position < count * size) {
        fa_matrix_release(matrix);
        return fa_error_set(error, FA_ERROR_MODEL, "%s: truncated matrix %dx%d at byte %zu",
                            reader->name, rows, cols, reader->position);
    }
    const unsigned char *bytes = (const unsigned char *)reader->data + reader->position;
    for (size_t i = 0; i < count; i++, bytes += size) {
        double value;
        if (type == FA_CV_8U) {
            value = bytes[0];
        } else if (type == FA_CV_32S) {
            int32_t v;
            memcpy(&v, bytes, 4);
            value = v;
        } else if (type == FA_CV_32F) {
            float v;
            memcpy(&v, bytes, 4);
            value = v;
        } else {
            memcpy(&value, bytes, 8);
        }
        if (!isfinite(value)) {
            fa_matrix_release(matrix);
            return fa_error_set(error, FA_ERROR_MODEL, "%s: non-finite value in a %dx%d matrix",
                                reader->name, rows, cols);
        }
        matrix->data[i] = value;
    }
    reader->position += count * size;
    return FA_OK;
}

fa_status fa_matrix_expect(const fa_matrix_t *matrix, int rows, int cols, const char *name,
                           const char *what, fa_error_t *error)
{
    if (matrix->rows == rows && matrix->cols == cols) return FA_OK;
    return fa_error_set(error, FA_ERROR_MODEL, "%s: %s is %dx%d, expected %dx%d", name, what,
                        matrix->rows, matrix->cols, rows, cols);
}
