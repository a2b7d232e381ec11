/* The model cache's container: a binary file holding what loading OpenFace's text models
 * produced, laid out so that a reader maps it and points into it (no parsing, no copying).
 *
 * Layout (little-endian, fixed-width fields):
 *   header   256 bytes: magic, format version, byte-order mark, build identifier, file size,
 *            offsets and sizes of the three sections, checksum
 *   sources  the files the models came from: per file its size, modification time (ns) and
 *            path, so that a reader can tell a stale cache
 *   index    a stream of tagged records (integers, floats, doubles, texts and array references)
 *            in the order the writer wrote them; the reader reads them back in the same order
 *   data     the arrays, each at a multiple of 64 bytes (offsets are relative to the section);
 *            arrays with identical bytes are stored once and their records share the offset
 *            (half of the CCNF Sigmas are equal: mirrored views, symmetric landmarks), so a
 *            reader must treat arrays as read-only
 * The checksum covers everything before the data (header, sources, index); the reader checks
 * every offset, size, type and alignment against the file's bounds, so a truncated, damaged or
 * foreign file is refused, never read past its end. Array contents are not checksummed (that
 * would mean reading them all at startup); whoever restores integer arrays that index something
 * validates them.
 *
 * Writer and reader work on memory, so that the reader can be fuzzed. */
#ifndef FACEAU_MODEL_CACHE_H
#define FACEAU_MODEL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/file.h"

enum {
    FA_CACHE_FORMAT_VERSION = 2, /* bump whenever the container or any stored layout changes */
    FA_CACHE_ALIGNMENT = 64,
    FA_CACHE_HEADER_SIZE = 256,
    FA_CACHE_BUILD_ID_SIZE = 64,
    FA_CACHE_MAX_PATH = 4096,
};

/* Header fields: byte offsets (u64 unless said otherwise). */
enum {
    FA_CACHE_FIELD_MAGIC = 0,        /* 8 bytes "faceauMC" */
    FA_CACHE_FIELD_VERSION = 8,      /* u32 FA_CACHE_FORMAT_VERSION */
    FA_CACHE_FIELD_BYTE_ORDER = 12,  /* u32 0x01020304 */
    FA_CACHE_FIELD_BUILD_ID = 16,    /* FA_CACHE_BUILD_ID_SIZE bytes, NUL-padded */
    FA_CACHE_FIELD_FILE_SIZE = 80,
    FA_CACHE_FIELD_SOURCES_OFFSET = 88,
    FA_CACHE_FIELD_SOURCES_SIZE = 96,
    FA_CACHE_FIELD_SOURCE_COUNT = 104, /* u32 */
    FA_CACHE_FIELD_INDEX_OFFSET = 112,
    FA_CACHE_FIELD_INDEX_SIZE = 120,
    FA_CACHE_FIELD_DATA_OFFSET = 128, /* a multiple of FA_CACHE_ALIGNMENT */
    FA_CACHE_FIELD_DATA_SIZE = 136,
    FA_CACHE_FIELD_CHECKSUM = 144,
};

typedef enum fa_cache_element {
    FA_CACHE_I32 = 1,
    FA_CACHE_F32 = 2,
    FA_CACHE_F64 = 3,
    FA_CACHE_U8 = 4,
    FA_CACHE_I16 = 5,
} fa_cache_element;

/* ---------------------------------------------------------------------------------------------
 * Writing */

typedef struct fa_cache_chunk {
    const void *data;
    size_t bytes;
    uint64_t offset; /* in the data section */
    uint64_t hash;   /* of the bytes */
} fa_cache_chunk_t;

typedef struct fa_cache_writer {
    uint8_t *sources, *index;
    size_t sources_size, sources_capacity, index_size, index_capacity;
    uint32_t source_count;
    fa_cache_chunk_t *chunks; /* the arrays, referenced, not copied: keep them alive */
    size_t chunk_count, chunk_capacity;
    size_t *slots; /* open-addressing table of chunk index + 1 (0: empty), to find equal arrays */
    size_t slot_count;
    uint64_t data_size;
    int failed; /* out of memory: emit fails */
} fa_cache_writer_t;

void fa_cache_writer_init(fa_cache_writer_t *writer);
void fa_cache_writer_release(fa_cache_writer_t *writer);

void fa_cache_write_source(fa_cache_writer_t *writer, const char *path,
                           const fa_file_stamp_t *stamp);
void fa_cache_write_int(fa_cache_writer_t *writer, int32_t value);
void fa_cache_write_float(fa_cache_writer_t *writer, float value);
void fa_cache_write_double(fa_cache_writer_t *writer, double value);
void fa_cache_write_text(fa_cache_writer_t *writer, const char *text);
/* count elements at data (NULL when count is 0), written when the file is emitted; an array whose
 * bytes equal an earlier one's is not written again but refers to it. */
void fa_cache_write_array(fa_cache_writer_t *writer, fa_cache_element type, const void *data,
                          size_t count);

typedef int (*fa_cache_sink_fn)(void *context, const void *bytes, size_t size); /* 0: failed */

/* Emits the whole file, in order, through sink. build_id: at most FA_CACHE_BUILD_ID_SIZE - 1
 * characters. */
fa_status fa_cache_writer_emit(fa_cache_writer_t *writer, const char *build_id,
                               fa_cache_sink_fn sink, void *context, fa_error_t *error);

/* ---------------------------------------------------------------------------------------------
 * Reading. After the first failure every read returns zero / NULL and `failed` stays set, with
 * the reason in `reason`: callers check once at the end, and bound every count they read before
 * using it. */

typedef struct fa_cache_reader {
    const uint8_t *data;
    size_t size;
    size_t source_position, source_end;
    uint32_t source_count, sources_read;
    size_t index_position, index_end;
    uint64_t data_offset, data_size;
    int failed;
    char reason[160];
} fa_cache_reader_t;

/* Checks the header (magic, format version, byte order, build identifier, size), the sections'
 * bounds and the checksum. data must be aligned to FA_CACHE_ALIGNMENT. FA_ERROR_MODEL, with the
 * reason, when the file is not a cache this build wrote. */
fa_status fa_cache_reader_open(fa_cache_reader_t *reader, const void *data, size_t size,
                               const char *build_id, fa_error_t *error);

/* The next source: 1, or 0 after the last (or on damage: then failed is set). */
int fa_cache_read_source(fa_cache_reader_t *reader, char *path, size_t path_size,
                         fa_file_stamp_t *stamp);
int32_t fa_cache_read_int(fa_cache_reader_t *reader);
float fa_cache_read_float(fa_cache_reader_t *reader);
double fa_cache_read_double(fa_cache_reader_t *reader);
/* A text into out (NUL-terminated); fails if it does not fit. */
void fa_cache_read_text(fa_cache_reader_t *reader, char *out, size_t size);
/* An array of exactly count elements of type, inside the file and aligned; NULL when count is 0
 * (or on failure). */
const void *fa_cache_read_array(fa_cache_reader_t *reader, fa_cache_element type, size_t count);
/* Sets the failure (first reason wins). */
void fa_cache_reader_fail(fa_cache_reader_t *reader, const char *reason);

/* Recomputes the checksum of a whole cache image in memory: for tests and fuzzers that change
 * a file on purpose. No-op on a buffer too small to hold a header. */
void fa_cache_seal(void *data, size_t size);

#endif
