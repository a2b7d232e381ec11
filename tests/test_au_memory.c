/* Memory does not grow with the number of frames: 40,000 frames through the AU state (the
 * history past 4096 rows goes to its temporary file), then post-processing and every finished
 * row read back. Resident memory is compared between frame 10,000 and the end (an in-memory
 * history would add 160 bytes a frame, 4.8 MB here). Skipped under AddressSanitizer, whose
 * quarantine makes resident memory meaningless. */
#include <stdlib.h>
#include <string.h>

#include "au/au.h"
#include "testing.h"

enum { FRAMES = 40000, CHECKPOINT = 10000 };

int main(void)
{
#ifdef TEST_UNDER_ASAN
    printf("skipped under AddressSanitizer: resident memory is not meaningful there\n");
    return test_finish("test_au_memory");
#else
    char au_dir[4096];
    snprintf(au_dir, sizeof au_dir, "%s/AU_predictors", test_models_dir());
    fa_au_models_t *models = NULL;
    fa_au_state_t *state = NULL;
    fa_error_t error = {0};
    CHECK_OK(fa_au_models_load(au_dir, 0, &models, NULL, 0, NULL, 0, &error));
    if (models) CHECK_OK(fa_au_state_create(models, 0, &state, &error));
    if (!state) return test_finish("test_au_memory");
    static float hog[FA_HOG_SIZE];
    static double geometry[FA_GEOMETRY_SIZE];
    double intensity[FA_MAX_AUS], presence[FA_MAX_AUS];
    long at_checkpoint = 0;
    int failed = 0;
    for (int f = 0; f < FRAMES && !failed; f++) {
        for (int k = 0; k < FA_HOG_SIZE; k += 97) hog[k] = (float)((f * 31 + k) % 100) / 400.0f;
        for (int k = 0; k < FA_GEOMETRY_SIZE; k += 7) geometry[k] = (double)((f + k) % 50) - 25;
        failed = fa_au_state_add_frame(state, hog, geometry, f % 13 != 0, intensity, presence,
                                       &error) != FA_OK;
        if (f + 1 == CHECKPOINT) at_checkpoint = test_resident_kb();
    }
    CHECK(!failed, "adding frames: %s", error.message);
    size_t frames = 0, rows = 0;
    CHECK_OK(fa_au_state_postprocess(state, &frames, &error));
    while (fa_au_state_next_row(state, intensity, presence, &error) == FA_OK) rows++;
    CHECK(frames == FRAMES && rows == FRAMES, "%zu frames, %zu rows read", frames, rows);
    long at_end = test_resident_kb();
    printf("resident: %.1f MB after %d frames, %.1f MB after %d frames and post-processing\n",
           at_checkpoint / 1024.0, CHECKPOINT, at_end / 1024.0, FRAMES);
    CHECK(at_end - at_checkpoint < 1536, "resident memory grew by %ld KB over %d frames",
          at_end - at_checkpoint, FRAMES - CHECKPOINT);
    fa_au_state_free(state);
    fa_au_models_free(models);
    return test_finish("test_au_memory");
#endif
}
