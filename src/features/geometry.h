/* Geometry descriptor (PIPELINE_SPEC §6): [components * params_local (204), params_local (34)]. */
#ifndef FACEAU_FEATURES_GEOMETRY_H
#define FACEAU_FEATURES_GEOMETRY_H

#include "pdm/pdm.h"

void fa_geometry_extract(const fa_pdm_t *pdm, const float *params_local, double *geometry);

#endif
