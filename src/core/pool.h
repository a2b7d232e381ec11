/* A small fork-join thread pool owned by a session: fa_pool_for runs task(index) for every index
 * in [0, count) on the calling thread and the pool's workers, and returns when all are done.
 * Tasks get the participant's number (0 = the caller) so they can use per-thread scratch. */
#ifndef FACEAU_CORE_POOL_H
#define FACEAU_CORE_POOL_H

#include "core/error.h"

typedef struct fa_pool fa_pool_t;
typedef void (*fa_pool_task)(void *context, int index, int participant);

/* Starts `workers` threads (0 gives a pool that runs everything on the caller). */
fa_status fa_pool_create(int workers, fa_pool_t **pool, fa_error_t *error);
void fa_pool_destroy(fa_pool_t *pool);

/* Participants in a fa_pool_for: workers + 1; 1 for a NULL pool. */
int fa_pool_participants(const fa_pool_t *pool);

/* Runs task for each index; a NULL pool runs them in order on the caller. Not reentrant: one
 * fa_pool_for at a time per pool. */
void fa_pool_for(fa_pool_t *pool, int count, fa_pool_task task, void *context);

/* Cores online (at least 1): what n_threads = 0 means. */
int fa_cpu_count(void);

#endif
