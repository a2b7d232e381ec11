/* OpenCV 4.6's cv::resize with INTER_LINEAR on interleaved float images, reproduced bit for bit:
 * its source coordinates ((d + 0.5) * scale - 0.5 in double, then float), its clamping at the
 * borders, its horizontal-then-vertical float passes, and its switch to area averaging when both
 * factors are exactly 2. */
#ifndef FACEAU_DETECT_RESIZE_H
#define FACEAU_DETECT_RESIZE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of scratch fa_resize_linear needs. */
size_t fa_resize_scratch_size(int dst_width, int dst_height, int channels);

/* src: src_height rows of src_width * channels floats, rows src_stride floats apart; dst is
 * contiguous. channels is 1..4. */
void fa_resize_linear(const float *src, int src_width, int src_height, size_t src_stride,
                      int channels, float *dst, int dst_width, int dst_height, void *scratch);

/* The same on an 8-bit image (src_channels 3, or 1 replicated to 3 as for a gray frame) whose
 * values are taken as floats; dst gets 3 channels. Identical to converting the whole image to
 * float first, without that image. */
size_t fa_resize_bytes_scratch_size(int src_width, int dst_width, int dst_height);
void fa_resize_linear_bytes(const uint8_t *src, int src_width, int src_height, size_t src_stride,
                            int src_channels, float *dst, int dst_width, int dst_height,
                            void *scratch);

#endif
