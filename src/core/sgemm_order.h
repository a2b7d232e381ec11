/* The summation orders of OpenBLAS 0.3.21's SkylakeX small-matrix sgemm (M N K <= 10^6), the
 * kernels that computed OpenFace's reference outputs (docs/FIDELITY.md). The MTCNN layers, the
 * CCNF responses and the PDM products reproduce them; tests compare each with the library. */
#ifndef FACEAU_CORE_SGEMM_ORDER_H
#define FACEAU_CORE_SGEMM_ORDER_H

typedef enum fa_sgemm_order {
    FA_SGEMM_CHAIN,        /* one fused multiply-add chain from 0, k in order */
    FA_SGEMM_LANES_QUADS,  /* 16 lanes (lane l takes the k = l mod 16), added in groups of 4 */
    FA_SGEMM_LANES_HALVES, /* 16 lanes added as GCC's _mm512_reduce_add_ps adds them */
} fa_sgemm_order;

/* How element (row, column) of a column-major C = A B with `rows` rows, `columns` columns and
 * depth k is summed: rows below rows & ~15, and the others when rows mod 16 > 8 or k < 32, in one
 * chain; the rest in 16 lanes, added in groups of 4 for rows below rows & ~3 and for columns
 * below columns & ~3, else as halves. Found by comparing with the library. */
static inline fa_sgemm_order fa_sgemm_small_order(int row, int rows, int column, int columns,
                                                  int k) {
    if (row < (rows & ~15) || (rows & 15) > 8 || k < 32) return FA_SGEMM_CHAIN;
    return row < (rows & ~3) || column < (columns & ~3) ? FA_SGEMM_LANES_QUADS
                                                        : FA_SGEMM_LANES_HALVES;
}

/* The 16 lanes added. Groups of 4: neighbours paired within each quarter, then the quarters'
 * sums as (q0 + q1) + (q2 + q3). Halves: lane l + 8 to l, then l + 4, then (0 + 2) + (1 + 3). */
static inline float fa_sgemm_lanes_sum(const float lane[16], fa_sgemm_order order) {
    if (order == FA_SGEMM_LANES_QUADS) {
        float quarter[4];
        for (int q = 0; q < 4; q++)
            quarter[q] = (lane[4 * q] + lane[4 * q + 1]) + (lane[4 * q + 2] + lane[4 * q + 3]);
        return (quarter[0] + quarter[1]) + (quarter[2] + quarter[3]);
    }
    float half[8], quarter[4];
    for (int l = 0; l < 8; l++)
        half[l] = lane[l] + lane[l + 8];
    for (int l = 0; l < 4; l++)
        quarter[l] = half[l] + half[l + 4];
    return (quarter[0] + quarter[2]) + (quarter[1] + quarter[3]);
}

#endif
