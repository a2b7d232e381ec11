#include "model/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the model cache stores arrays in host order and needs a little-endian host"
#endif

static const char MAGIC[8] = {'f', 'a', 'c', 'e', 'a', 'u', 'M', 'C'};
enum { BYTE_ORDER_MARK = 0x01020304 };

/* Index record tags. */
enum { TAG_INT = 0x494e5431, TAG_FLOAT, TAG_DOUBLE, TAG_TEXT, TAG_ARRAY };

static size_t element_size(fa_cache_element type) {
    switch (type) {
    case FA_CACHE_I32:
    case FA_CACHE_F32:
        return 4;
    case FA_CACHE_F64:
        return 8;
    case FA_CACHE_U8:
        return 1;
    case FA_CACHE_I16:
        return 2;
    }
    return 0;
}

static uint64_t align_up(uint64_t value, uint64_t alignment) {
    return (value + alignment - 1) / alignment * alignment;
}

/* ---------------------------------------------------------------------------------------------
 * Checksum: a 64-bit multiply-rotate hash over 8-byte words; it detects damage, not malice. */

static const uint64_t PRIME_1 = 0x9e3779b185ebca87u, PRIME_2 = 0xc2b2ae3d27d4eb4fu;

static uint64_t rotate_left(uint64_t x, int bits) {
    return (x << bits) | (x >> (64 - bits));
}

/* size must be a multiple of 8. */
static uint64_t hash_words(uint64_t hash, const uint8_t *bytes, size_t size) {
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, bytes + i, 8);
        hash = rotate_left(hash ^ (word * PRIME_2), 31) * PRIME_1;
    }
    return hash;
}

static uint64_t hash_finish(uint64_t hash) {
    hash ^= hash >> 33;
    hash *= PRIME_2;
    hash ^= hash >> 29;
    return hash;
}

/* The checksum of [0, end): the header with its checksum field as zero, then the rest. */
static uint64_t checksum(const uint8_t *data, size_t end) {
    uint8_t header[FA_CACHE_HEADER_SIZE];
    memcpy(header, data, FA_CACHE_HEADER_SIZE);
    memset(header + FA_CACHE_FIELD_CHECKSUM, 0, 8);
    uint64_t hash = hash_words(PRIME_1 ^ (uint64_t)end, header, FA_CACHE_HEADER_SIZE);
    return hash_finish(hash_words(hash, data + FA_CACHE_HEADER_SIZE, end - FA_CACHE_HEADER_SIZE));
}

static uint64_t get_u64(const uint8_t *at) {
    uint64_t value;
    memcpy(&value, at, 8);
    return value;
}

static uint32_t get_u32(const uint8_t *at) {
    uint32_t value;
    memcpy(&value, at, 4);
    return value;
}

static void put_u64(uint8_t *at, uint64_t value) {
    memcpy(at, &value, 8);
}
static void put_u32(uint8_t *at, uint32_t value) {
    memcpy(at, &value, 4);
}

void fa_cache_seal(void *data, size_t size) {
    uint8_t *bytes = data;
    if (size < FA_CACHE_HEADER_SIZE) return;
    uint64_t end = get_u64(bytes + FA_CACHE_FIELD_DATA_OFFSET);
    if (end < FA_CACHE_HEADER_SIZE || end > size || end % 8) return;
    put_u64(bytes + FA_CACHE_FIELD_CHECKSUM, checksum(bytes, (size_t)end));
}

/* ---------------------------------------------------------------------------------------------
 * Writing */

void fa_cache_writer_init(fa_cache_writer_t *writer) {
    memset(writer, 0, sizeof *writer);
}

void fa_cache_writer_release(fa_cache_writer_t *writer) {
    free(writer->sources);
    free(writer->index);
    free(writer->chunks);
    free(writer->slots);
    memset(writer, 0, sizeof *writer);
}

/* Room for size more bytes in a growing buffer; NULL (and failed set) when out of memory. */
static uint8_t *grow(fa_cache_writer_t *writer, uint8_t **buffer, size_t *used, size_t *capacity,
                     size_t size) {
    if (writer->failed) return NULL;
    if (*used + size > *capacity) {
        size_t wanted = *capacity ? *capacity : 4096;
        while (wanted < *used + size)
            wanted *= 2;
        uint8_t *grown = realloc(*buffer, wanted);
        if (!grown) {
            writer->failed = 1;
            return NULL;
        }
        *buffer = grown;
        *capacity = wanted;
    }
    uint8_t *at = *buffer + *used;
    memset(at, 0, size);
    *used += size;
    return at;
}

static uint8_t *index_record(fa_cache_writer_t *writer, uint32_t tag, size_t payload) {
    uint8_t *at =
        grow(writer, &writer->index, &writer->index_size, &writer->index_capacity, 4 + payload);
    if (at) put_u32(at, tag);
    return at ? at + 4 : NULL;
}

void fa_cache_write_source(fa_cache_writer_t *writer, const char *path,
                           const fa_file_stamp_t *stamp) {
    size_t length = strlen(path);
    if (length >= FA_CACHE_MAX_PATH) {
        writer->failed = 1;
        return;
    }
    uint8_t *at = grow(writer, &writer->sources, &writer->sources_size, &writer->sources_capacity,
                       (size_t)align_up(20 + length, 8));
    if (!at) return;
    put_u64(at, stamp->size);
    put_u64(at + 8, (uint64_t)stamp->mtime_ns);
    put_u32(at + 16, (uint32_t)length);
    memcpy(at + 20, path, length);
    writer->source_count++;
}

void fa_cache_write_int(fa_cache_writer_t *writer, int32_t value) {
    uint8_t *at = index_record(writer, TAG_INT, 4);
    if (at) memcpy(at, &value, 4);
}

void fa_cache_write_float(fa_cache_writer_t *writer, float value) {
    uint8_t *at = index_record(writer, TAG_FLOAT, 4);
    if (at) memcpy(at, &value, 4);
}

void fa_cache_write_double(fa_cache_writer_t *writer, double value) {
    uint8_t *at = index_record(writer, TAG_DOUBLE, 8);
    if (at) memcpy(at, &value, 8);
}

void fa_cache_write_text(fa_cache_writer_t *writer, const char *text) {
    size_t length = strlen(text);
    if (length > UINT32_MAX - 8) {
        writer->failed = 1;
        return;
    }
    uint8_t *at = index_record(writer, TAG_TEXT, (size_t)align_up(4 + length, 4));
    if (!at) return;
    put_u32(at, (uint32_t)length);
    memcpy(at + 4, text, length);
}

/* The hash of an array's bytes (a tail shorter than a word is zero-padded). */
static uint64_t hash_bytes(const void *data, size_t bytes) {
    size_t whole = bytes / 8 * 8;
    uint64_t hash = hash_words(PRIME_1 ^ (uint64_t)bytes, data, whole);
    uint8_t tail[8] = {0};
    memcpy(tail, (const uint8_t *)data + whole, bytes - whole);
    return hash_finish(hash_words(hash, tail, sizeof tail));
}

/* Doubles the table of equal-array slots (kept at most half full); 0 when out of memory. */
static int grow_slots(fa_cache_writer_t *writer) {
    size_t count = writer->slot_count ? 2 * writer->slot_count : 1024;
    size_t *slots = calloc(count, sizeof *slots);
    if (!slots) return 0;
    for (size_t i = 0; i < writer->chunk_count; i++) {
        size_t at = (size_t)writer->chunks[i].hash & (count - 1);
        while (slots[at])
            at = (at + 1) & (count - 1);
        slots[at] = i + 1;
    }
    free(writer->slots);
    writer->slots = slots;
    writer->slot_count = count;
    return 1;
}

void fa_cache_write_array(fa_cache_writer_t *writer, fa_cache_element type, const void *data,
                          size_t count) {
    uint8_t *at = index_record(writer, TAG_ARRAY, 20);
    if (!at) return;
    put_u32(at, (uint32_t)type);
    put_u64(at + 4, count);
    if (count == 0) return; /* offset 0: no array */
    if (!data || element_size(type) == 0) {
        writer->failed = 1;
        return;
    }
    if (2 * (writer->chunk_count + 1) > writer->slot_count && !grow_slots(writer)) {
        writer->failed = 1;
        return;
    }
    size_t bytes = count * element_size(type);
    uint64_t hash = hash_bytes(data, bytes);
    size_t slot = (size_t)hash & (writer->slot_count - 1);
    for (; writer->slots[slot]; slot = (slot + 1) & (writer->slot_count - 1)) {
        const fa_cache_chunk_t *earlier = &writer->chunks[writer->slots[slot] - 1];
        if (earlier->hash == hash && earlier->bytes == bytes &&
            !memcmp(earlier->data, data, bytes)) {
            put_u64(at + 12, earlier->offset);
            return;
        }
    }
    if (writer->chunk_count == writer->chunk_capacity) {
        size_t capacity = writer->chunk_capacity ? 2 * writer->chunk_capacity : 256;
        fa_cache_chunk_t *chunks = realloc(writer->chunks, capacity * sizeof *chunks);
        if (!chunks) {
            writer->failed = 1;
            return;
        }
        writer->chunks = chunks;
        writer->chunk_capacity = capacity;
    }
    writer->slots[slot] = writer->chunk_count + 1;
    fa_cache_chunk_t *chunk = &writer->chunks[writer->chunk_count++];
    chunk->data = data;
    chunk->bytes = bytes;
    chunk->offset = writer->data_size;
    chunk->hash = hash;
    put_u64(at + 12, chunk->offset);
    writer->data_size = align_up(writer->data_size + bytes, FA_CACHE_ALIGNMENT);
}

static int emit_zeros(fa_cache_sink_fn sink, void *context, uint64_t count) {
    static const uint8_t zeros[FA_CACHE_ALIGNMENT];
    while (count > 0) {
        size_t part = count < sizeof zeros ? (size_t)count : sizeof zeros;
        if (!sink(context, zeros, part)) return 0;
        count -= part;
    }
    return 1;
}

fa_status fa_cache_writer_emit(fa_cache_writer_t *writer, const char *build_id,
                               fa_cache_sink_fn sink, void *context, fa_error_t *error) {
    if (writer->failed)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "model cache: out of memory");
    if (strlen(build_id) >= FA_CACHE_BUILD_ID_SIZE)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "model cache: build identifier too long");
    uint64_t sources_offset = FA_CACHE_HEADER_SIZE;
    uint64_t index_offset = sources_offset + writer->sources_size;
    uint64_t data_offset = align_up(index_offset + writer->index_size, FA_CACHE_ALIGNMENT);
    size_t head_size = (size_t)data_offset;
    uint8_t *head = calloc(1, head_size);
    if (!head) return fa_error_set(error, FA_ERROR_NO_MEMORY, "model cache: out of memory");
    memcpy(head + FA_CACHE_FIELD_MAGIC, MAGIC, sizeof MAGIC);
    put_u32(head + FA_CACHE_FIELD_VERSION, FA_CACHE_FORMAT_VERSION);
    put_u32(head + FA_CACHE_FIELD_BYTE_ORDER, BYTE_ORDER_MARK);
    memcpy(head + FA_CACHE_FIELD_BUILD_ID, build_id, strlen(build_id));
    put_u64(head + FA_CACHE_FIELD_FILE_SIZE, data_offset + writer->data_size);
    put_u64(head + FA_CACHE_FIELD_SOURCES_OFFSET, sources_offset);
    put_u64(head + FA_CACHE_FIELD_SOURCES_SIZE, writer->sources_size);
    put_u32(head + FA_CACHE_FIELD_SOURCE_COUNT, writer->source_count);
    put_u64(head + FA_CACHE_FIELD_INDEX_OFFSET, index_offset);
    put_u64(head + FA_CACHE_FIELD_INDEX_SIZE, writer->index_size);
    put_u64(head + FA_CACHE_FIELD_DATA_OFFSET, data_offset);
    put_u64(head + FA_CACHE_FIELD_DATA_SIZE, writer->data_size);
    if (writer->sources_size) memcpy(head + sources_offset, writer->sources, writer->sources_size);
    if (writer->index_size) memcpy(head + index_offset, writer->index, writer->index_size);
    put_u64(head + FA_CACHE_FIELD_CHECKSUM, checksum(head, head_size));
    int ok = sink(context, head, head_size);
    free(head);
    uint64_t position = 0;
    for (size_t i = 0; ok && i < writer->chunk_count; i++) {
        const fa_cache_chunk_t *chunk = &writer->chunks[i];
        ok = emit_zeros(sink, context, chunk->offset - position) &&
             sink(context, chunk->data, chunk->bytes);
        position = chunk->offset + chunk->bytes;
    }
    if (ok) ok = emit_zeros(sink, context, writer->data_size - position);
    return ok ? FA_OK : fa_error_set(error, FA_ERROR_IO, "model cache: write failed");
}

/* ---------------------------------------------------------------------------------------------
 * Reading */

void fa_cache_reader_fail(fa_cache_reader_t *reader, const char *reason) {
    if (reader->failed) return;
    reader->failed = 1;
    snprintf(reader->reason, sizeof reader->reason, "%s", reason);
}

/* [offset, offset + size) lies within [0, limit). */
static int within(uint64_t offset, uint64_t size, uint64_t limit) {
    return offset <= limit && size <= limit - offset;
}

fa_status fa_cache_reader_open(fa_cache_reader_t *reader, const void *data, size_t size,
                               const char *build_id, fa_error_t *error) {
    memset(reader, 0, sizeof *reader);
    const uint8_t *bytes = data;
    const char *problem = NULL;
    char id[FA_CACHE_BUILD_ID_SIZE] = {0};
    strncpy(id, build_id, sizeof id - 1);
    if ((uintptr_t)data % FA_CACHE_ALIGNMENT)
        problem = "not aligned in memory";
    else if (size < FA_CACHE_HEADER_SIZE ||
             memcmp(bytes + FA_CACHE_FIELD_MAGIC, MAGIC, sizeof MAGIC))
        problem = "not a faceau model cache";
    else if (get_u32(bytes + FA_CACHE_FIELD_VERSION) != FA_CACHE_FORMAT_VERSION)
        problem = "another format version";
    else if (get_u32(bytes + FA_CACHE_FIELD_BYTE_ORDER) != BYTE_ORDER_MARK)
        problem = "another byte order";
    else if (memcmp(bytes + FA_CACHE_FIELD_BUILD_ID, id, sizeof id))
        problem = "written by another build of faceau";
    else if (get_u64(bytes + FA_CACHE_FIELD_FILE_SIZE) != size)
        problem = "truncated or extended";
    if (problem) return fa_error_set(error, FA_ERROR_MODEL, "model cache: %s", problem);
    uint64_t sources_offset = get_u64(bytes + FA_CACHE_FIELD_SOURCES_OFFSET);
    uint64_t sources_size = get_u64(bytes + FA_CACHE_FIELD_SOURCES_SIZE);
    uint64_t index_offset = get_u64(bytes + FA_CACHE_FIELD_INDEX_OFFSET);
    uint64_t index_size = get_u64(bytes + FA_CACHE_FIELD_INDEX_SIZE);
    uint64_t data_offset = get_u64(bytes + FA_CACHE_FIELD_DATA_OFFSET);
    uint64_t data_size = get_u64(bytes + FA_CACHE_FIELD_DATA_SIZE);
    if (sources_offset != FA_CACHE_HEADER_SIZE || !within(sources_offset, sources_size, size) ||
        index_offset != sources_offset + sources_size || !within(index_offset, index_size, size) ||
        data_offset != align_up(index_offset + index_size, FA_CACHE_ALIGNMENT) ||
        !within(data_offset, data_size, size) || data_offset + data_size != size)
        return fa_error_set(error, FA_ERROR_MODEL, "model cache: damaged section table");
    if (get_u64(bytes + FA_CACHE_FIELD_CHECKSUM) != checksum(bytes, (size_t)data_offset))
        return fa_error_set(error, FA_ERROR_MODEL, "model cache: checksum mismatch");
    reader->data = bytes;
    reader->size = size;
    reader->source_position = (size_t)sources_offset;
    reader->source_end = (size_t)(sources_offset + sources_size);
    reader->source_count = get_u32(bytes + FA_CACHE_FIELD_SOURCE_COUNT);
    reader->index_position = (size_t)index_offset;
    reader->index_end = (size_t)(index_offset + index_size);
    reader->data_offset = data_offset;
    reader->data_size = data_size;
    return FA_OK;
}

int fa_cache_read_source(fa_cache_reader_t *reader, char *path, size_t path_size,
                         fa_file_stamp_t *stamp) {
    if (reader->failed || reader->sources_read == reader->source_count) {
        if (!reader->failed && reader->source_position != reader->source_end)
            fa_cache_reader_fail(reader, "unexpected bytes after the sources");
        return 0;
    }
    size_t at = reader->source_position;
    if (!within(at, 20, reader->source_end)) {
        fa_cache_reader_fail(reader, "source table truncated");
        return 0;
    }
    uint32_t length = get_u32(reader->data + at + 16);
    uint64_t entry = align_up(20 + (uint64_t)length, 8);
    if (!within(at, entry, reader->source_end) || length >= path_size) {
        fa_cache_reader_fail(reader, "source entry out of bounds");
        return 0;
    }
    stamp->size = get_u64(reader->data + at);
    stamp->mtime_ns = (int64_t)get_u64(reader->data + at + 8);
    memcpy(path, reader->data + at + 20, length);
    path[length] = '\0';
    if (strlen(path) != length) {
        fa_cache_reader_fail(reader, "source path holds a NUL");
        return 0;
    }
    reader->source_position = at + (size_t)entry;
    reader->sources_read++;
    return 1;
}

/* The payload of the next record if it has this tag and payload fits; NULL otherwise. */
static const uint8_t *next_record(fa_cache_reader_t *reader, uint32_t tag, size_t payload) {
    if (reader->failed) return NULL;
    size_t at = reader->index_position;
    if (!within(at, 4 + (uint64_t)payload, reader->index_end)) {
        fa_cache_reader_fail(reader, "index ends early");
        return NULL;
    }
    if (get_u32(reader->data + at) != tag) {
        fa_cache_reader_fail(reader, "index record of an unexpected kind");
        return NULL;
    }
    reader->index_position = at + 4 + payload;
    return reader->data + at + 4;
}

int32_t fa_cache_read_int(fa_cache_reader_t *reader) {
    const uint8_t *at = next_record(reader, TAG_INT, 4);
    int32_t value = 0;
    if (at) memcpy(&value, at, 4);
    return value;
}

float fa_cache_read_float(fa_cache_reader_t *reader) {
    const uint8_t *at = next_record(reader, TAG_FLOAT, 4);
    float value = 0;
    if (at) memcpy(&value, at, 4);
    return value;
}

double fa_cache_read_double(fa_cache_reader_t *reader) {
    const uint8_t *at = next_record(reader, TAG_DOUBLE, 8);
    double value = 0;
    if (at) memcpy(&value, at, 8);
    return value;
}

void fa_cache_read_text(fa_cache_reader_t *reader, char *out, size_t size) {
    if (size) out[0] = '\0';
    const uint8_t *at = next_record(reader, TAG_TEXT, 4);
    if (!at) return;
    uint32_t length = get_u32(at);
    size_t padded = (size_t)align_up(length, 4);
    if (!within(reader->index_position, padded, reader->index_end) || length >= size) {
        fa_cache_reader_fail(reader, "text out of bounds");
        return;
    }
    memcpy(out, at + 4, length);
    out[length] = '\0';
    if (strlen(out) != length) fa_cache_reader_fail(reader, "text holds a NUL");
    reader->index_position += padded;
}

const void *fa_cache_read_array(fa_cache_reader_t *reader, fa_cache_element type, size_t count) {
    const uint8_t *at = next_record(reader, TAG_ARRAY, 20);
    if (!at) return NULL;
    uint64_t stored_count = get_u64(at + 4), offset = get_u64(at + 12);
    size_t size = element_size(type);
    if (get_u32(at) != (uint32_t)type || stored_count != count) {
        fa_cache_reader_fail(reader, "array of an unexpected type or length");
        return NULL;
    }
    if (count == 0) return NULL;
    if (count > UINT64_MAX / size || offset % FA_CACHE_ALIGNMENT ||
        !within(offset, count * size, reader->data_size)) {
        fa_cache_reader_fail(reader, "array out of bounds");
        return NULL;
    }
    return reader->data + reader->data_offset + offset;
}
