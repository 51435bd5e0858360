/* pool.c — a persistent team of worker threads that runs index ranges with the caller.
 *
 * Generated code calls bq_pool_run for every matmul of every decoded token, so a call must cost
 * about a microsecond, not a thread creation or a round of futex calls. The workers live as
 * long as the pool; between jobs they spin briefly on one atomic state word (the next matmul
 * usually follows within microseconds), then sleep on a condition variable. The state word
 * holds the job's generation, a "closed" bit and the number of workers inside the job. A
 * worker joins with one compare-and-swap, which fails once the caller has closed the job or
 * published the next one, so the caller never waits for a worker that did not join (one
 * still asleep when the work ran out), and a late worker never sees a stale job. Indices are
 * handed out by an atomic counter; the caller works too, then closes the job and waits for the
 * joined workers to leave. A call made while the team is busy (from inside fn, or from a
 * second thread) runs serially on its caller instead of deadlocking.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

enum {
    POOL_MAX_THREADS = 256,
    POOL_SPIN = 20000,        /* pauses (~0.2 ms on the dev machine) an idle worker polls, then sleeps */
    POOL_WAIT_SPIN = 2000,    /* pauses the caller polls for joined workers, then it yields */
};

/* state word: generation << 32 | CLOSED | number of joined workers */
#define ST_CLOSED ((uint64_t)1 << 31)
#define ST_COUNT (ST_CLOSED - 1)
#define ST_GEN(s) ((uint32_t)((s) >> 32))

typedef void (*pool_fn)(void *ctx, int64_t i);

struct bq_pool {
    pthread_t *threads;          /* n_workers handles */
    int n_workers;               /* threads besides the caller */
    int started;                 /* workers created so far */
    pthread_mutex_t mu;          /* only for sleeping and waking */
    pthread_cond_t wake;
    /* the job: written by the caller while no worker is joined, read by joined workers */
    pool_fn fn;
    void *ctx;
    int64_t n;
    uint32_t gen;                /* the caller's copy of the current generation */
    atomic_int sleepers;         /* workers in (or entering) pthread_cond_wait */
    atomic_int busy;             /* a job is running */
    atomic_int stop;             /* destroy: workers exit */
    /* the two words every thread writes, each on its own cache line */
    _Alignas(64) _Atomic uint64_t state;
    _Alignas(64) atomic_int_fast64_t next;   /* next index to hand out */
    char pad[64 - sizeof(atomic_int_fast64_t)];
};

static void work(pool_fn fn, void *ctx, int64_t n, atomic_int_fast64_t *next)
{
    for (int64_t i; (i = atomic_fetch_add_explicit(next, 1, memory_order_relaxed)) < n;) fn(ctx, i);
}

/* Waits until the generation differs from `seen` (or stop); returns the state seen. */
static uint64_t wait_job(bq_pool *p, uint32_t seen)
{
    uint64_t s;
    for (int i = 0; i < POOL_SPIN; i++) {
        s = atomic_load_explicit(&p->state, memory_order_acquire);
        if (ST_GEN(s) != seen || atomic_load_explicit(&p->stop, memory_order_relaxed)) return s;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);   /* seq_cst, against the caller's publish and check */
    while (ST_GEN(s = atomic_load(&p->state)) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return s;
}

static void *worker_main(void *arg)
{
    bq_pool *p = arg;
    uint32_t seen = 0;
    for (;;) {
        uint64_t s = wait_job(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return NULL;
        seen = ST_GEN(s);
        int joined = 0;
        while (!joined && !(s & ST_CLOSED) && ST_GEN(s) == seen)
            joined = atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acq_rel,
                                                           memory_order_acquire);
        if (!joined) continue;   /* the work ran out before we arrived */
        work(p->fn, p->ctx, p->n, &p->next);
        atomic_fetch_sub_explicit(&p->state, 1, memory_order_release);
    }
}

static void pool_stop(bq_pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 0; t < p->started; t++) pthread_join(p->threads[t], NULL);
}

bq_status bq_pool_create(int n_threads, bq_pool **out)
{
    if (!out) return BQ_ERR_ARG;
    *out = NULL;
    if (n_threads > POOL_MAX_THREADS) return BQ_ERR_ARG;
    bq_pool *p = aligned_alloc(64, sizeof *p);   /* sizeof is a multiple of the 64-byte alignment */
    if (!p) return BQ_ERR_NOMEM;
    memset(p, 0, sizeof *p);
    p->n_workers = n_threads > 1 ? n_threads - 1 : 0;
    atomic_init(&p->state, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return BQ_ERR_NOMEM;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return BQ_ERR_NOMEM;
    }
    p->threads = p->n_workers ? calloc((size_t)p->n_workers, sizeof *p->threads) : NULL;
    bq_status st = p->n_workers && !p->threads ? BQ_ERR_NOMEM : BQ_OK;
    for (; st == BQ_OK && p->started < p->n_workers; p->started++)
        if (pthread_create(&p->threads[p->started], NULL, worker_main, p) != 0) st = BQ_ERR_NOMEM;
    if (st != BQ_OK) {
        bq_pool_destroy(p);
        return st;
    }
    *out = p;
    return BQ_OK;
}

void bq_pool_destroy(bq_pool *p)
{
    if (!p) return;
    pool_stop(p);
    free(p->threads);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int bq_pool_threads(const bq_pool *p) { return p ? p->n_workers + 1 : 1; }

void bq_pool_run(bq_pool *p, void (*fn)(void *ctx, int64_t i), void *ctx, int64_t n)
{
    if (n <= 0) return;
    if (!p || p->n_workers == 0 || n == 1 || atomic_exchange_explicit(&p->busy, 1, memory_order_acquire)) {
        for (int64_t i = 0; i < n; i++) fn(ctx, i);   /* serial: no team, or the team is taken */
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->gen++;
    atomic_store(&p->state, (uint64_t)p->gen << 32);   /* seq_cst: published before the check */
    if (atomic_load(&p->sleepers)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    work(fn, ctx, n, &p->next);
    atomic_fetch_or_explicit(&p->state, ST_CLOSED, memory_order_acq_rel);   /* no more joins */
    for (int s = 0; atomic_load_explicit(&p->state, memory_order_acquire) & ST_COUNT; s++) {
        if (s < POOL_WAIT_SPIN) cpu_relax();
        else sched_yield();   /* a joined worker may be descheduled: give it the core */
    }
    atomic_store_explicit(&p->busy, 0, memory_order_release);
}
