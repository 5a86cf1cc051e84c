/* Per-thread scratch memory for the kernels (scratch.c): kept for the life of the thread
 * and only grown, so steady-state calls never allocate. */
#ifndef FASTNN_SCRATCH_H
#define FASTNN_SCRATCH_H

#include <stddef.h>

/* Independent buffers of one thread: a kernel may hold one slot while it calls another
 * kernel that uses another (a convolution's patches while its GEMM packs). */
enum {
    FNN_SCRATCH_GEMM_PACK = 0, /* the GEMM's packed blocks */
    FNN_SCRATCH_CONV_COLS,     /* a convolution's image patches and their gradient */
    FNN_SCRATCH_CONV_SUMS,     /* a convolution's partial weight and bias gradients */
    FNN_SCRATCH_CSR_SEEN,      /* fnn_csr_t_matmul's bitmap of the output rows written */
    FNN_SCRATCH_SLOTS
};

/* `bytes` of 64-byte-aligned memory in this thread's `slot`, valid until the next call
 * with the same slot on this thread; NULL if it cannot be allocated. */
void *fnn_scratch(int slot, size_t bytes);

#endif
