/* fastnn's thread pool: fnn_parallel (fastnn.h).
 *
 * Why not OpenMP: an OpenMP region ends in a barrier that waits for every thread of the
 * team, including one the OS has not run yet. Right after a threaded NumPy call, OpenBLAS's
 * threads keep spinning on the cores for a while, a woken OpenMP thread waits milliseconds
 * for a time slice, longer than the whole of a small GEMM. Here the items of a call are
 * claimed one at a time from a shared ticket, by the caller too: a worker that has not
 * started claims nothing and nobody waits for it. The caller waits only for items that
 * a running worker has claimed.
 *
 * The ticket is one 64-bit word: the call's epoch in the high half, the next unclaimed item
 * in the low half (CLOSED while a call is being set up or is over). A worker claims with a
 * compare-and-swap that also checks the epoch, so a worker that wakes late, after its call
 * has ended or while the next one is being set up, can never run an item of the wrong call.
 * Only one call uses the workers at a time; a call made meanwhile from another thread (the
 * kernels release the GIL) runs on its own thread. Items must give the same results
 * whichever thread runs them, which is what keeps fastnn's results independent of the
 * thread count.
 *
 * Placement (Linux): some schedulers, those of virtual machines that pack threads onto few
 * virtual CPUs among them, leave a new or woken thread on its waker's CPU, beside the busy
 * caller, while another CPU idles; the worker then claims nothing and the call runs at one
 * thread's speed (a spinning barrier such as OpenMP's hides this only by forcing the
 * scheduler's hand after a few milliseconds). So a worker starts, and is woken, with its
 * affinity limited to the CPUs other than the caller's (widened to the process's CPUs again
 * once it runs), and moves off the caller's CPU when it finds itself there. */
#define _GNU_SOURCE /* pthread_attr_setaffinity_np, sched_getcpu */
#include <stdint.h>
#include <time.h>

#include "fastnn.h"

#if defined(_WIN32) || !defined(__GNUC__)

void fnn_parallel(int threads, ptrdiff_t items, fnn_task task, void *ctx)
{
    (void)threads;
    for (ptrdiff_t i = 0; i < items; i++)
        task(ctx, i);
}

#else

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define CLOSED UINT32_C(0xffffffff)
#define MAX_WORKERS 1023
/* After its last item a worker polls for the next call, for SPIN_NS with pause between
 * polls and then until YIELD_NS with sched_yield between them (any other thread ready on
 * its core, NumPy's BLAS threads included, runs first), and then sleeps. Waking a sleeping
 * thread can take longer than many GEMMs of a training step, whose kernels follow each
 * other within a millisecond, so a worker keeps polling for a while before it sleeps. */
#define SPIN_NS 50000
#define YIELD_NS 3000000

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

static pthread_mutex_t owner = PTHREAD_MUTEX_INITIALIZER; /* held by the call using the workers */
static pthread_mutex_t sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static _Atomic uint64_t ticket = CLOSED; /* epoch 0, closed */
static _Atomic int sleepers;
static int workers;                 /* started; changed only by the owner */
static pthread_t worker_thread[MAX_WORKERS];
static _Atomic(fnn_task) job_task;
static _Atomic(void *) job_ctx;
static _Atomic ptrdiff_t job_items, job_done;
static _Atomic int job_helpers;     /* workers 0 .. job_helpers-1 take part */
#ifdef __linux__
static _Atomic int job_cpu;         /* the caller's CPU when the call started */
static _Atomic char narrowed[MAX_WORKERS]; /* affinity kept off the caller's CPU for now */
#endif

static uint32_t epoch_of(uint64_t t) { return (uint32_t)(t >> 32); }

/* The next item of the call of epoch e, or -1 when it has none left (or is over). */
static ptrdiff_t claim(uint32_t e, ptrdiff_t items)
{
    uint64_t t = atomic_load_explicit(&ticket, memory_order_acquire);
    for (;;) {
        uint32_t next = (uint32_t)t;
        if (epoch_of(t) != e || next == CLOSED || (ptrdiff_t)next >= items)
            return -1;
        if (atomic_compare_exchange_weak_explicit(&ticket, &t, t + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            return (ptrdiff_t)next;
    }
}

static void run_items(uint32_t e, ptrdiff_t items, fnn_task task, void *ctx)
{
    ptrdiff_t i;
    while ((i = claim(e, items)) >= 0) {
        task(ctx, i);
        atomic_fetch_add_explicit(&job_done, 1, memory_order_release);
    }
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A call the worker has not seen yet: its epoch, or 0 when there is none (epochs start
 * at 1). */
static uint32_t open_call(uint32_t seen)
{
    uint64_t t = atomic_load_explicit(&ticket, memory_order_acquire);
    return epoch_of(t) != seen && (uint32_t)t != CLOSED ? epoch_of(t) : 0;
}

#ifdef __linux__
/* The CPUs the process may use (set before the first worker starts), for placement. */
static cpu_set_t allowed;
static int allowed_ok;

/* The allowed CPUs but `cpu`; false when that leaves none (or cpu is unknown). */
static int others_than(int cpu, cpu_set_t *others)
{
    if (!allowed_ok || cpu < 0 || cpu >= CPU_SETSIZE)
        return 0;
    *others = allowed;
    CPU_CLR(cpu, others);
    return CPU_COUNT(others) > 0;
}

/* A worker that finds itself on the caller's CPU moves to another allowed one (the
 * affinity call migrates it at once) and then lets the OS move it again; at most once per
 * LEAVE_NS, so that it never fights the scheduler call after call. */
#define LEAVE_NS 10000000
static void leave_cpu(int caller_cpu, int64_t *last)
{
    cpu_set_t others;
    if (sched_getcpu() != caller_cpu || now_ns() - *last < LEAVE_NS ||
        !others_than(caller_cpu, &others))
        return;
    *last = now_ns();
    if (pthread_setaffinity_np(pthread_self(), sizeof others, &others) == 0)
        pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
}
#endif

static void *worker_main(void *arg)
{
    const int id = (int)(intptr_t)arg;
#ifdef __linux__
    int64_t left = 0; /* when it last left the caller's CPU */
#endif
    uint32_t seen = epoch_of(atomic_load_explicit(&ticket, memory_order_acquire)), e;
    for (;;) {
        const int64_t start = now_ns();
        int polls = 0, yielding = 0;
        while (!(e = open_call(seen))) {
            if (yielding)
                sched_yield();
            else
                CPU_RELAX();
            if (++polls % 64 == 0 || yielding) {
                int64_t spent = now_ns() - start;
                if (spent > YIELD_NS)
                    break;
                yielding = spent > SPIN_NS;
            }
        }
        if (!e) {
            /* Dekker with fnn_parallel: it publishes the ticket, then reads `sleepers`;
             * this counts itself in, then reads the ticket (all sequentially consistent),
             * so either it sees the call or the caller sees it and signals. */
            pthread_mutex_lock(&sleep_lock);
            atomic_fetch_add(&sleepers, 1);
            while (!(e = open_call(seen)))
                pthread_cond_wait(&wake, &sleep_lock);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_lock);
        }
        seen = e;
#ifdef __linux__
        /* Started or woken away from the caller: from now on the OS may move it. */
        if (atomic_exchange(&narrowed[id], 0))
            pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
#endif
        /* These may already belong to a later call: claim() then fails on the epoch. */
        if (id >= atomic_load_explicit(&job_helpers, memory_order_relaxed))
            continue;
#ifdef __linux__
        leave_cpu(atomic_load_explicit(&job_cpu, memory_order_relaxed), &left);
#endif
        run_items(e, atomic_load_explicit(&job_items, memory_order_relaxed),
                  atomic_load_explicit(&job_task, memory_order_relaxed),
                  atomic_load_explicit(&job_ctx, memory_order_relaxed));
    }
    return NULL;
}

/* In a child after fork() only the forking thread exists: forget the parent's workers
 * (OpenMP's runtime hangs there instead). */
static void after_fork_child(void)
{
    pthread_mutex_init(&owner, NULL);
    pthread_mutex_init(&sleep_lock, NULL);
    pthread_cond_init(&wake, NULL);
    atomic_store(&ticket, CLOSED);
    atomic_store(&sleepers, 0);
    workers = 0;
#ifdef __linux__
    allowed_ok = 0;
    for (int i = 0; i < MAX_WORKERS; i++)
        atomic_store(&narrowed[i], 0);
#endif
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void register_atfork(void) { pthread_atfork(NULL, NULL, after_fork_child); }

static void start_workers(int wanted)
{
    if (wanted > MAX_WORKERS)
        wanted = MAX_WORKERS;
    if (workers >= wanted)
        return;
    pthread_once(&atfork_once, register_atfork);
#ifdef __linux__
    if (!workers)
        allowed_ok = pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) == 0 &&
                     CPU_COUNT(&allowed) > 1;
    cpu_set_t others;
    const int away = others_than(sched_getcpu(), &others);
#endif
    while (workers < wanted) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
#ifdef __linux__
        if (away && pthread_attr_setaffinity_np(&attr, sizeof others, &others) == 0)
            atomic_store(&narrowed[workers], 1);
#endif
        int rc = pthread_create(&th, &attr, worker_main, (void *)(intptr_t)workers);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break; /* fewer workers: the calls still complete, on fewer threads */
        worker_thread[workers++] = th;
    }
}

void fnn_parallel(int threads, ptrdiff_t items, fnn_task task, void *ctx)
{
    if (threads < 2 || items < 2 || pthread_mutex_trylock(&owner) != 0) {
        for (ptrdiff_t i = 0; i < items; i++)
            task(ctx, i);
        return;
    }
    start_workers(threads - 1);
    int helpers = threads - 1 < workers ? threads - 1 : workers;
    /* The ticket is closed between calls (the exchange at the end, whose acquire keeps
     * these writes after it), so no worker claims while the fields change. */
    uint32_t e = epoch_of(atomic_load(&ticket)) + 1;
    if (e == 0)
        e = 1;
    atomic_store_explicit(&job_task, task, memory_order_relaxed);
    atomic_store_explicit(&job_ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&job_items, items, memory_order_relaxed);
    atomic_store_explicit(&job_helpers, helpers, memory_order_relaxed);
#ifdef __linux__
    atomic_store_explicit(&job_cpu, sched_getcpu(), memory_order_relaxed);
#endif
    atomic_store_explicit(&job_done, 0, memory_order_relaxed);
    atomic_store(&ticket, (uint64_t)e << 32);
    if (atomic_load(&sleepers) > 0) {
#ifdef __linux__
        cpu_set_t others;
        if (others_than(atomic_load_explicit(&job_cpu, memory_order_relaxed), &others))
            for (int i = 0; i < helpers; i++)
                if (pthread_setaffinity_np(worker_thread[i], sizeof others, &others) == 0)
                    atomic_store(&narrowed[i], 1);
#endif
        pthread_mutex_lock(&sleep_lock);
        pthread_cond_broadcast(&wake);
        pthread_mutex_unlock(&sleep_lock);
    }
    run_items(e, items, task, ctx);
    /* Items still running were claimed by workers that are running (or were preempted
     * while running one): wait for those alone. */
    for (int polls = 0; atomic_load_explicit(&job_done, memory_order_acquire) < items;) {
        if (++polls < 4096)
            CPU_RELAX();
        else
            sched_yield();
    }
    atomic_exchange(&ticket, (uint64_t)e << 32 | CLOSED);
    pthread_mutex_unlock(&owner);
}

#endif
