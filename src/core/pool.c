#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* One fa_pool_for call, on the caller's stack. Workers join while it is the pool's current job;
 * the caller never waits for a worker that has not started, only for those inside. */
typedef struct pool_job {
    fa_pool_task task;
    void *context;
    int count;
    atomic_int next; /* the next unclaimed index */
    int inside;      /* workers running indices (under the pool's lock) */
} pool_job_t;

struct fa_pool {
    pthread_mutex_t lock;
    pthread_cond_t start, finished;
    pthread_t *threads;
    int worker_count;
    long generation;  /* bumped per job; workers wait for a new one */
    pool_job_t *job;  /* the current job; NULL once its caller has claimed the last index */
    int stopping;
};

typedef struct worker_start {
    fa_pool_t *pool;
    int participant;
} worker_start_t;

static void run_indices(pool_job_t *job, int participant)
{
    for (;;) {
        int index = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (index >= job->count) return;
        job->task(job->context, index, participant);
    }
}

static void *worker_main(void *argument)
{
    worker_start_t *start = argument;
    fa_pool_t *pool = start->pool;
    int participant = start->participant;
    free(start);
    long seen = 0;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (!pool->stopping && (pool->generation == seen || !pool->job))
            pthread_cond_wait(&pool->start, &pool->lock);
        if (pool->stopping) break;
        seen = pool->generation;
        pool_job_t *job = pool->job;
        job->inside++;
        pthread_mutex_unlock(&pool->lock);
        run_indices(job, participant);
        pthread_mutex_lock(&pool->lock);
        if (--job->inside == 0) pthread_cond_broadcast(&pool->finished);
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

fa_status fa_pool_create(int workers, fa_pool_t **out, fa_error_t *error)
{
    *out = NULL;
    if (workers < 0) workers = 0;
    fa_pool_t *pool = calloc(1, sizeof *pool);
    if (!pool) return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    if (pthread_mutex_init(&pool->lock, NULL) != 0) {
        free(pool);
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "cannot create a mutex");
    }
    pthread_cond_init(&pool->start, NULL);
    pthread_cond_init(&pool->finished, NULL);
    pool->threads = workers ? calloc((size_t)workers, sizeof *pool->threads) : NULL;
    if (workers && !pool->threads) {
        fa_pool_destroy(pool);
        return fa_error_set(error, FA_ERROR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < workers; i++) {
        worker_start_t *start = malloc(sizeof *start);
        if (start) *start = (worker_start_t){pool, i + 1};
        if (!start || pthread_create(&pool->threads[i], NULL, worker_main, start) != 0) {
            free(start);
            fa_pool_destroy(pool);
            return fa_error_set(error, FA_ERROR_NO_MEMORY, "cannot start thread %d of %d", i + 1,
                                workers);
        }
        pool->worker_count++;
    }
    *out = pool;
    return FA_OK;
}

void fa_pool_destroy(fa_pool_t *pool)
{
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->worker_count; i++) pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->start);
    pthread_cond_destroy(&pool->finished);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}

int fa_pool_participants(const fa_pool_t *pool)
{
    return pool ? pool->worker_count + 1 : 1;
}

void fa_pool_for(fa_pool_t *pool, int count, fa_pool_task task, void *context)
{
    if (!pool || pool->worker_count == 0 || count <= 1) {
        for (int i = 0; i < count; i++) task(context, i, 0);
        return;
    }
    pool_job_t job = {.task = task, .context = context, .count = count};
    atomic_init(&job.next, 0);
    pthread_mutex_lock(&pool->lock);
    pool->job = &job;
    pool->generation++;
    pthread_cond_broadcast(&pool->start);
    pthread_mutex_unlock(&pool->lock);
    run_indices(&job, 0);
    pthread_mutex_lock(&pool->lock);
    pool->job = NULL; /* late workers find nothing to join */
    while (job.inside > 0) pthread_cond_wait(&pool->finished, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
}

int fa_cpu_count(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
