/* The session's thread pool: every index runs exactly once, on a participant in range, for
 * pools of 0..3 workers and many consecutive jobs (where a slow worker could otherwise run a
 * stale job or be waited for). */
#include <stdatomic.h>
#include <string.h>

#include "core/pool.h"
#include "testing.h"

enum { MAX_COUNT = 97, JOBS = 3000 };

typedef struct counts {
    atomic_int runs[MAX_COUNT];
    atomic_int bad_participant;
    int participants;
} counts_t;

static void count_run(void *context, int index, int participant)
{
    counts_t *counts = context;
    atomic_fetch_add(&counts->runs[index], 1);
    if (participant < 0 || participant >= counts->participants)
        atomic_fetch_add(&counts->bad_participant, 1);
    volatile double spin = 0; /* uneven task lengths */
    for (int i = 0; i < (index % 7) * 50; i++) spin = spin + i;
    (void)spin;
}

int main(void)
{
    CHECK(fa_cpu_count() >= 1, "cores");
    CHECK(fa_pool_participants(NULL) == 1, "a NULL pool runs on the caller");
    for (int workers = 0; workers <= 3; workers++) {
        fa_pool_t *pool = NULL;
        fa_error_t error = {0};
        CHECK(fa_pool_create(workers, &pool, &error) == FA_OK, "%s", error.message);
        if (!pool) continue;
        CHECK(fa_pool_participants(pool) == workers + 1, "%d workers", workers);
        int wrong = 0, bad = 0;
        for (int job = 0; job < JOBS; job++) {
            counts_t counts;
            memset(&counts, 0, sizeof counts);
            counts.participants = workers + 1;
            int count = job % MAX_COUNT; /* includes 0 and 1 */
            fa_pool_for(pool, count, count_run, &counts);
            for (int i = 0; i < MAX_COUNT; i++)
                wrong += atomic_load(&counts.runs[i]) != (i < count);
            bad += atomic_load(&counts.bad_participant);
        }
        CHECK(wrong == 0, "%d workers: %d indices not run exactly once", workers, wrong);
        CHECK(bad == 0, "%d workers: %d runs with a bad participant number", workers, bad);
        fa_pool_destroy(pool);
    }
    return test_finish("test_pool");
}
