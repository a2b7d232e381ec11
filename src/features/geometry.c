/* Geometry descriptor (PIPELINE_SPEC §6), as FaceAnalyser builds it: the local shape deformation
 * V * p_local (no mean; X block, Y block, Z block) followed by p_local, all in double. */
#include "features/geometry.h"

void fa_geometry_extract(const fa_pdm_t *pdm, const float *params_local, double *geometry) {
    int modes = pdm->mode_count, rows = 3 * pdm->point_count;
    for (int row = 0; row < rows; row++) {
        /* OpenFace widens V and p_local to double before multiplying. */
        const float *component = pdm->components + (size_t)row * (size_t)modes;
        double sum = 0;
        for (int j = 0; j < modes; j++)
            sum += (double)component[j] * (double)params_local[j];
        geometry[row] = sum;
    }
    for (int j = 0; j < modes; j++)
        geometry[rows + j] = params_local[j];
}
