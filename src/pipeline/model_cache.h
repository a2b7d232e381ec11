/* The model cache: everything fa_models_load builds from OpenFace's text files (the parsed
 * weights, the reordered copies the kernels read, the CCNF Sigma matrices, the KDE tables), kept
 * in one binary file per model set in a cache folder, never next to the models. Loading from a
 * valid cache is open + mmap + checks: the model structures point into the mapped file, so only
 * the pages a run touches become resident.
 *
 * A cache is used only when its header, index checksum and bounds are sound, it was written by
 * this very build (FA_BUILD_ID: a hash of the library's sources and compiler), it describes the
 * same models folder and loading settings, and every source file still has the size and
 * modification time recorded. Otherwise the caller loads from text and stores a new cache
 * (written to a temporary file, then renamed over the old one). */
#ifndef FACEAU_PIPELINE_MODEL_CACHE_H
#define FACEAU_PIPELINE_MODEL_CACHE_H

#include <stddef.h>

#include "align/align.h"
#include "au/au.h"
#include "core/error.h"
#include "core/file.h"
#include "pdm/pdm.h"
#include "pipeline/face_tracker.h"

typedef struct fa_model_cache fa_model_cache_t;

/* Where the models live: the members of fa_models_t. faces is NULL without the tracker. */
typedef struct fa_model_slots {
    fa_au_models_t **au;
    fa_pdm_t *pdm;
    fa_triangulation_t *triangulation;
    fa_face_models_t **faces;
} fa_model_slots_t;

typedef enum fa_model_cache_outcome {
    FA_MODEL_CACHE_HIT = 0,     /* the models were restored from the cache */
    FA_MODEL_CACHE_MISSING,     /* no cache file yet */
    FA_MODEL_CACHE_STALE,       /* a source file changed, moved or vanished */
    FA_MODEL_CACHE_INVALID,     /* truncated, damaged, foreign, or written by another build */
    FA_MODEL_CACHE_UNAVAILABLE, /* no cache folder, or the file cannot be opened or mapped */
} fa_model_cache_outcome;

/* The cache file of a model set: <cache_dir>/models-<hash>.cache, the hash taken over the
 * models folder's real path and the settings that choose what is loaded (au_static, tracker). */
fa_status fa_model_cache_path(const char *cache_dir, const char *models_dir,
                              const fa_settings_t *settings, char *path, size_t size,
                              fa_error_t *error);

/* Restores the models of models_dir from the cache in cache_dir. On a hit, fills the slots with
 * structures pointing into the mapped file and returns the handle that owns them in *cache (keep
 * it until the models are no longer used, then fa_model_cache_close; never release the restored
 * structures one by one). Otherwise fills nothing, sets *cache to NULL and says why in error. */
fa_model_cache_outcome fa_model_cache_load(const char *cache_dir, const char *models_dir,
                                           const fa_settings_t *settings,
                                           const fa_model_slots_t *slots, fa_model_cache_t **cache,
                                           fa_error_t *error);

/* Restores the models from a cache image in memory (aligned to 64 bytes, kept alive and unchanged
 * until the handle is closed), whatever models folder it names and without looking at its
 * sources: for fuzzing the restoring code. */
fa_model_cache_outcome fa_model_cache_load_image(const void *image, size_t size,
                                                 const fa_model_slots_t *slots,
                                                 fa_model_cache_t **cache, fa_error_t *error);

/* Writes the cache of models loaded from text, whose files `sources` recorded (fa_file_log_t);
 * creates cache_dir if needed and atomically replaces the previous cache. Failing is harmless:
 * the models stay loaded. */
fa_status fa_model_cache_store(const char *cache_dir, const char *models_dir,
                               const fa_settings_t *settings, const fa_file_log_t *sources,
                               const fa_model_slots_t *slots, fa_error_t *error);

/* Give back memory: the pages of the mapped file that this process has read are dropped from it
 * (madvise MADV_DONTNEED on the private, read-only mapping) and come back from the page cache,
 * the same bytes, when read again, so results never change. Safe while other threads read the
 * models (they read the pages back). Both do nothing for NULL or a cache image in memory.
 *
 * _views: the per-view data, most of the cache (the CCNF weights and Sigmas of every view and
 * scale of the main and part models, the validator's views). A multi-view detection calls it
 * after each rotation hypothesis: the next one reads other views, tracking one view per scale.
 * _all: everything; called after a detection, so that what only detections read (MTCNN, the
 * largest scale's patch experts and KDE table) does not stay resident while tracking. */
void fa_model_cache_release_views(const fa_model_cache_t *cache);
void fa_model_cache_release_all(const fa_model_cache_t *cache);

/* Unmaps the file and frees what restoring allocated; the restored models become invalid. */
void fa_model_cache_close(fa_model_cache_t *cache);

#endif
