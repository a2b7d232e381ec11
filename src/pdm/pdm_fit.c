/* PDM functions used by the CLNF landmark fit only. */
#include <math.h>

#include "pdm/pdm.h"

void fa_pdm_params_from_box(const fa_pdm_t *pdm, const float box[4], const float *params_local,
                            const float rotation[3], float params_global[6]) {
    int n = pdm->point_count;
    float shape[3 * FA_PDM_MAX_POINTS], r[3][3];
    fa_pdm_shape_3d(pdm, params_local, shape);
    fa_pdm_rotation_matrix(rotation, r);
    /* The rotated shape is a cv::gemm product (double sums rounded to float); minMaxLoc then
     * reports its extremes as doubles. */
    double min_x = 0, max_x = 0, min_y = 0, max_y = 0;
    for (int i = 0; i < n; i++) {
        float x = (float)((double)r[0][0] * shape[i] + (double)r[0][1] * shape[i + n] +
                          (double)r[0][2] * shape[i + 2 * n]);
        float y = (float)((double)r[1][0] * shape[i] + (double)r[1][1] * shape[i + n] +
                          (double)r[1][2] * shape[i + 2 * n]);
        if (i == 0 || x < min_x) min_x = x;
        if (i == 0 || x > max_x) max_x = x;
        if (i == 0 || y < min_y) min_y = y;
        if (i == 0 || y > max_y) max_y = y;
    }
    float width = (float)fabs(min_x - max_x), height = (float)fabs(min_y - max_y);
    float scaling = ((box[2] / width) + (box[3] / height)) / 2.0f;
    float tx = box[0] + box[2] / 2, ty = box[1] + box[3] / 2;
    tx = (float)(tx - scaling * (min_x + max_x) / 2.0);
    ty = (float)(ty - scaling * (min_y + max_y) / 2.0);
    params_global[0] = scaling;
    params_global[1] = rotation[0];
    params_global[2] = rotation[1];
    params_global[3] = rotation[2];
    params_global[4] = tx;
    params_global[5] = ty;
}
