/* What the elementwise, optimizer and layer kernel files share: the name pasting of their
 * templates, and when an optimizer update uses more than the calling thread. Not for the
 * GEMM, whose threading is decided by FLOPs (gemm.c). The other kernels stay on the calling
 * thread: they stream memory once, a small part of a step next to the GEMMs. */
#ifndef FASTNN_KERNEL_COMMON_H
#define FASTNN_KERNEL_COMMON_H

#include "fastnn.h"

#define FNN_CAT_(a, b) a##_##b
#define FNN_CAT(a, b) FNN_CAT_(a, b)

/* Below this many elements a kernel stays on the calling thread: waking the pool costs
 * more than the work. */
#define FNN_PARALLEL_MIN 65536

/* Reductions are summed over at most this many fixed blocks, whose boundaries depend only
 * on the size: however the blocks are shared among threads, the total is the same. */
#define FNN_MAX_BLOCKS 64

static inline int nthreads_for(ptrdiff_t work)
{
    int nt = fnn_get_num_threads();
    return work >= FNN_PARALLEL_MIN && nt > 1 ? nt : 1;
}

#endif
