/* Primitives for OpenFace's model files, read from memory: text matrices (rows, cols, OpenCV
 * type, then values) and binary "MatBin" matrices (int32 rows, cols, type, raw row-major data). */
#ifndef FACEAU_MODEL_READER_H
#define FACEAU_MODEL_READER_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

enum { FA_CV_8U = 0, FA_CV_32S = 4, FA_CV_32F = 5, FA_CV_64F = 6 };

/* A matrix as read from a model file; values are widened to double whatever the stored type. */
typedef struct fa_matrix {
    int rows, cols, type;
    double *data; /* rows * cols, row-major */
} fa_matrix_t;

void fa_matrix_release(fa_matrix_t *matrix);

/* A read cursor over a file held in memory; name is used in error messages. */
typedef struct fa_reader {
    const char *data;
    size_t size, position;
    const char *name;
} fa_reader_t;

void fa_reader_init(fa_reader_t *reader, const char *data, size_t size, const char *name);

/* Text files. Comment lines ('#' first, or blank) are skipped before a matrix, as OpenFace's
 * SkipComments does. */
void fa_reader_skip_comments(fa_reader_t *reader);
fa_status fa_read_text_matrix(fa_reader_t *reader, fa_matrix_t *matrix, fa_error_t *error);
/* Next whitespace-separated token into out (NUL-terminated); FA_ERROR_END at end of data. */
fa_status fa_read_token(fa_reader_t *reader, char *out, size_t size, fa_error_t *error);
/* The rest of the current line (without CR/LF) into out; advances past it. */
fa_status fa_read_line(fa_reader_t *reader, char *out, size_t size, fa_error_t *error);
fa_status fa_read_text_int(fa_reader_t *reader, int *value, fa_error_t *error);
fa_status fa_read_text_double(fa_reader_t *reader, double *value, fa_error_t *error);

/* Binary files (little-endian). */
fa_status fa_read_i32(fa_reader_t *reader, int32_t *value, fa_error_t *error);
fa_status fa_read_f32(fa_reader_t *reader, float *value, fa_error_t *error);
fa_status fa_read_f64(fa_reader_t *reader, double *value, fa_error_t *error);
fa_status fa_read_matbin(fa_reader_t *reader, fa_matrix_t *matrix, fa_error_t *error);

/* Checks a matrix's shape, with a clear message naming the file. */
fa_status fa_matrix_expect(const fa_matrix_t *matrix, int rows, int cols, const char *name,
                           const char *what, fa_error_t *error);

#endif
