/* What the elementwise, optimizer and layer kernel files share: the name pasting of their
 * templates, and when a kernel may use more than the calling thread. Not for the GEMM, whose
 * threading is decided by FLOPs (gemm.c). */
#ifndef FASTNN_KERNEL_COMMON_H
#define FASTNN_KERNEL_COMMON_H

#include "fastnn.h"

#define FNN_CAT_(a, b) a##_##b
#define FNN_CAT(a, b) FNN_CAT_(a, b)

/* Below this many elements a kernel stays on the calling thread: waking the pool costs
 * more than the work. */
#define FNN_PARALLEL_MIN 65536

/* Reductions are summed over at most this many fixed blocks, whose boundaries depend only
 * on the size, so the total is the same whatever the thread count. */
#define FNN_MAX_BLOCKS 64

static inline int nthreads_for(ptrdiff_t work)
{
    int nt = fnn_get_num_threads();
    return work >= FNN_PARALLEL_MIN && nt > 1 ? nt : 1;
}

/* The loop (a `for` statement, the second argument) on nthreads_for(work) threads, run
 * directly when that is one: entering an OpenMP region costs a futex system call (about
 * 0.4 us) even on one thread, more than a small kernel's whole pass. */
#ifdef _OPENMP
#define FNN_PARALLEL_FOR(work, ...)                                                         \
    do {                                                                                    \
        const int fnn_nt_ = nthreads_for(work);                                             \
        if (fnn_nt_ > 1) {                                                                  \
            _Pragma("omp parallel for num_threads(fnn_nt_) schedule(static)")               \
            __VA_ARGS__                                                                     \
        } else {                                                                            \
            __VA_ARGS__                                                                     \
        }                                                                                   \
    } while (0)
#else
#define FNN_PARALLEL_FOR(work, ...) do { __VA_ARGS__ } while (0)
#endif

#endif
