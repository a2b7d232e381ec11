#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/image.h"

fa_status fa_image_allocate(fa_image_t *image, int width, int height, int channels,
                            fa_error_t *error)
{
    memset(image, 0, sizeof *image);
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 3 && channels != 4))
        return fa_error_set(error, FA_ERROR_ARGUMENT, "bad image size %dx%dx%d", width, height,
                            channels);
    size_t stride = (size_t)width * (size_t)channels;
    image->data = calloc((size_t)height, stride);
    if (!image->data)
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory for a %dx%d image", width,
                            height);
    image->width = width;
    image->height = height;
    image->channels = channels;
    image->stride = (ptrdiff_t)stride;
    return FA_OK;
}

fa_status fa_image_copy(fa_image_t *destination, const fa_image_t *source, fa_error_t *error)
{
    if (!source || !source->data)
        return fa_error_set(error, FA_ERROR_ARGUMENT, "no image to copy");
    if (destination->width != source->width || destination->height != source->height ||
        destination->channels != source->channels || !destination->data) {
        fa_image_release(destination);
        fa_status status = fa_image_allocate(destination, source->width, source->height,
                                             source->channels, error);
        if (status != FA_OK) return status;
    }
    size_t row = (size_t)source->width * (size_t)source->channels;
    for (int y = 0; y < source->height; y++)
        memcpy(destination->data + (ptrdiff_t)y * destination->stride,
               source->data + (ptrdiff_t)y * source->stride, row);
    return FA_OK;
}

void fa_image_release(fa_image_t *image)
{
    if (!image) return;
    free(image->data);
    memset(image, 0, sizeof *image);
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FA_GRAY_SSSE3 1

/* Sixteen pixels at a time: pshufb splits B, G and R, then pmaddwd forms B*wb + G*wg and
 * R*wr + 1 * 2^14 in 32 bits, the same integer sum as fa_gray_from_bgr (so the same bytes). */
__attribute__((target("ssse3"))) int fa_gray_row_ssse3(const uint8_t *in, uint8_t *out, int width)
{
    const __m128i blue0 = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i blue1 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1);
    const __m128i blue2 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13);
    const __m128i green0 = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i green1 = _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1);
    const __m128i green2 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14);
    const __m128i red0 = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i red1 = _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1);
    const __m128i red2 = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15);
    const __m128i weights_bg = _mm_setr_epi16(3735, 19235, 3735, 19235, 3735, 19235, 3735, 19235);
    const __m128i weights_r1 = _mm_setr_epi16(9798, 16384, 9798, 16384, 9798, 16384, 9798, 16384);
    const __m128i zero = _mm_setzero_si128(), one = _mm_set1_epi16(1);
    int x = 0;
    for (; x + 16 <= width; x += 16, in += 48) {
        __m128i v0 = _mm_loadu_si128((const __m128i *)in);
        __m128i v1 = _mm_loadu_si128((const __m128i *)(in + 16));
        __m128i v2 = _mm_loadu_si128((const __m128i *)(in + 32));
        __m128i b = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(v0, blue0), _mm_shuffle_epi8(v1, blue1)),
                                 _mm_shuffle_epi8(v2, blue2));
        __m128i g = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(v0, green0), _mm_shuffle_epi8(v1, green1)),
                                 _mm_shuffle_epi8(v2, green2));
        __m128i r = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(v0, red0), _mm_shuffle_epi8(v1, red1)),
                                 _mm_shuffle_epi8(v2, red2));
        __m128i halves[2];
        for (int h = 0; h < 2; h++) {
            __m128i b16 = h ? _mm_unpackhi_epi8(b, zero) : _mm_unpacklo_epi8(b, zero);
            __m128i g16 = h ? _mm_unpackhi_epi8(g, zero) : _mm_unpacklo_epi8(g, zero);
            __m128i r16 = h ? _mm_unpackhi_epi8(r, zero) : _mm_unpacklo_epi8(r, zero);
            __m128i low = _mm_add_epi32(_mm_madd_epi16(_mm_unpacklo_epi16(b16, g16), weights_bg),
                                        _mm_madd_epi16(_mm_unpacklo_epi16(r16, one), weights_r1));
            __m128i high = _mm_add_epi32(_mm_madd_epi16(_mm_unpackhi_epi16(b16, g16), weights_bg),
                                         _mm_madd_epi16(_mm_unpackhi_epi16(r16, one), weights_r1));
            halves[h] = _mm_packs_epi32(_mm_srli_epi32(low, 15), _mm_srli_epi32(high, 15));
        }
        _mm_storeu_si128((__m128i *)(out + x), _mm_packus_epi16(halves[0], halves[1]));
    }
    return x;
}

/* 32 pixels' gray values as 16-bit lanes (in-lane order, as the SSSE3 path's packs leave them). */
__attribute__((target("avx512f,avx512bw"))) static inline __m512i gray_half(__m256i b, __m256i g,
                                                                          __m256i r)
{
    const __m512i weights_bg = _mm512_set1_epi32(3735 | 19235 << 16);
    const __m512i weights_r1 = _mm512_set1_epi32(9798 | 16384 << 16);
    const __m512i one = _mm512_set1_epi16(1);
    __m512i b16 = _mm512_cvtepu8_epi16(b), g16 = _mm512_cvtepu8_epi16(g);
    __m512i r16 = _mm512_cvtepu8_epi16(r);
    __m512i lo = _mm512_add_epi32(_mm512_madd_epi16(_mm512_unpacklo_epi16(b16, g16), weights_bg),
                                  _mm512_madd_epi16(_mm512_unpacklo_epi16(r16, one), weights_r1));
    __m512i hi = _mm512_add_epi32(_mm512_madd_epi16(_mm512_unpackhi_epi16(b16, g16), weights_bg),
                                  _mm512_madd_epi16(_mm512_unpackhi_epi16(r16, one), weights_r1));
    return _mm512_packs_epi32(_mm512_srli_epi32(lo, 15), _mm512_srli_epi32(hi, 15));
}

/* Sixty-four pixels at a time with AVX-512 VBMI: vpermt2b gathers each channel's bytes from the
 * 192 input bytes, then the same pmaddwd sums as above in 512-bit vectors. The in-lane unpacks and
 * packs leave the two halves' 8-pixel groups interleaved; one qword permute puts them in order. */
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) int fa_gray_row_vbmi(const uint8_t *in,
                                                                           uint8_t *out, int width)
{
    /* Channel c of pixel i is byte 3i + c: vpermt2b reads it from the first two vectors (index
     * bits 6:0) while 3i + c < 128, vpermb from the third (bits 5:0, the same index as
     * 128 = 0 mod 64) for the from_third lanes. */
    static const _Alignas(64) uint8_t times_three[64] = {
          0,   3,   6,   9,  12,  15,  18,  21,  24,  27,  30,  33,  36,  39,  42,  45,
         48,  51,  54,  57,  60,  63,  66,  69,  72,  75,  78,  81,  84,  87,  90,  93,
         96,  99, 102, 105, 108, 111, 114, 117, 120, 123, 126, 129, 132, 135, 138, 141,
        144, 147, 150, 153, 156, 159, 162, 165, 168, 171, 174, 177, 180, 183, 186, 189,
    };
    const __mmask64 from_third[3] = {~0ull << 43, ~0ull << 43, ~0ull << 42};
    __m512i index[3];
    for (int c = 0; c < 3; c++)
        index[c] = _mm512_add_epi8(_mm512_load_si512(times_three), _mm512_set1_epi8((char)c));
    const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
    int x = 0;
    for (; x + 64 <= width; x += 64, in += 192) {
        __m512i v0 = _mm512_loadu_si512(in), v1 = _mm512_loadu_si512(in + 64);
        __m512i v2 = _mm512_loadu_si512(in + 128);
        __m512i channel[3];
        for (int c = 0; c < 3; c++)
            channel[c] = _mm512_mask_permutexvar_epi8(_mm512_permutex2var_epi8(v0, index[c], v1),
                                                      from_third[c], index[c], v2);
        __m512i halves[2] = {
            gray_half(_mm512_castsi512_si256(channel[0]), _mm512_castsi512_si256(channel[1]),
                      _mm512_castsi512_si256(channel[2])),
            gray_half(_mm512_extracti64x4_epi64(channel[0], 1),
                      _mm512_extracti64x4_epi64(channel[1], 1),
                      _mm512_extracti64x4_epi64(channel[2], 1))};
        __m512i bytes = _mm512_packus_epi16(halves[0], halves[1]);
        _mm512_storeu_si512(out + x, _mm512_permutexvar_epi64(order, bytes));
    }
    return x;
}
#endif

void fa_image_bgr_to_gray_reference(const fa_image_t *bgr, fa_image_t *gray)
{
    for (int y = 0; y < bgr->height; y++) {
        const uint8_t *in = bgr->data + (ptrdiff_t)y * bgr->stride;
        uint8_t *out = gray->data + (ptrdiff_t)y * gray->stride;
        for (int x = 0; x < bgr->width; x++, in += 3) out[x] = fa_gray_from_bgr(in);
    }
}

void fa_image_bgr_to_gray(const fa_image_t *bgr, fa_image_t *gray)
{
#ifdef FA_GRAY_SSSE3
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw")) {
        fa_image_bgr_to_gray_with(bgr, gray, fa_gray_row_vbmi);
        return;
    }
    if (__builtin_cpu_supports("ssse3")) {
        fa_image_bgr_to_gray_with(bgr, gray, fa_gray_row_ssse3);
        return;
    }
#endif
    fa_image_bgr_to_gray_reference(bgr, gray);
}

void fa_image_bgr_to_gray_with(const fa_image_t *bgr, fa_image_t *gray, fa_gray_row_fn row)
{
    for (int y = 0; y < bgr->height; y++) {
        const uint8_t *in = bgr->data + (ptrdiff_t)y * bgr->stride;
        uint8_t *out = gray->data + (ptrdiff_t)y * gray->stride;
        for (int x = row(in, out, bgr->width); x < bgr->width; x++)
            out[x] = fa_gray_from_bgr(in + 3 * x);
    }
}

void fa_image_fill(fa_image_t *image, uint8_t value)
{
    for (int y = 0; y < image->height; y++)
        memset(image->data + (ptrdiff_t)y * image->stride, value,
               (size_t)image->width * (size_t)image->channels);
}

void fa_image_orient(const fa_image_t *in, int orientation, fa_image_t *out)
{
    const int width = in->width, height = in->height, channels = in->channels;
    for (int y = 0; y < out->height; y++) {
        uint8_t *row = out->data + (ptrdiff_t)y * out->stride;
        for (int x = 0; x < out->width; x++) {
            int sx = x, sy = y; /* the input pixel shown at (x, y) */
            switch (orientation) {
            case 2: sx = width - 1 - x; break;
            case 3: sx = width - 1 - x, sy = height - 1 - y; break;
            case 4: sy = height - 1 - y; break;
            case 5: sx = y, sy = x; break;
            case 6: sx = y, sy = height - 1 - x; break;
            case 7: sx = width - 1 - y, sy = height - 1 - x; break;
            case 8: sx = width - 1 - y, sy = x; break;
            default: break;
            }
            memcpy(row + (ptrdiff_t)x * channels,
                   in->data + (ptrdiff_t)sy * in->stride + (ptrdiff_t)sx * channels,
                   (size_t)channels);
        }
    }
}
