/* OpenCV's cvRound on x86-64 (cvtsd2si): round to nearest, ties to even; values out of int range
 * give INT_MIN. Adding and removing 1.5 * 2^52 rounds in the current (nearest) mode without a
 * libm call. */
#ifndef FACEAU_CORE_CV_ROUND_H
#define FACEAU_CORE_CV_ROUND_H

#include <limits.h>

static inline int fa_cv_round(double value)
{
    if (!(value >= -2147483648.5 && value < 2147483647.5)) return INT_MIN;
    const double magic = 6755399441055744.0;
    return (int)((value + magic) - magic);
}

#endif
