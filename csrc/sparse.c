/* Sparse (CSR) times dense: one templated source (sparse_impl.h) instantiated per type and
 * ISA by kernel_instances.h, dispatched here, and the index checks, which are the same for
 * every type. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "exp_taylor.h"
#include "kernel_common.h"
#include "scratch.h"

/* Entry k of an index array of int32_t (index64 == 0) or int64_t. */
static inline int64_t fnn_index_at(const void *p, int index64, ptrdiff_t k)
{
    return index64 ? ((const int64_t *)p)[k] : (int64_t)((const int32_t *)p)[k];
}

/* The output rows of both kernels are split into this many parts per thread, so that a
 * thread the OS runs late leaves its share to the others (fnn_parallel claims parts one at
 * a time). */
#define FNN_CSR_PARTS_PER_THREAD 4

/* The first row of part p of `parts` over rows 0 .. rows-1, whose costs are their entries
 * plus one (the epilogue): the least r whose rows before it cost at least p / parts of all. */
static ptrdiff_t fnn_csr_part_start(const void *indptr, int index64, ptrdiff_t rows,
                                    ptrdiff_t parts, ptrdiff_t p)
{
    const int64_t base = fnn_index_at(indptr, index64, 0);
    const double total = (double)(fnn_index_at(indptr, index64, rows) - base + rows);
    const double target = total * (double)p / (double)parts;
    ptrdiff_t lo = 0, hi = rows;
    while (lo < hi) {
        const ptrdiff_t mid = lo + (hi - lo) / 2;
        if ((double)(fnn_index_at(indptr, index64, mid) - base + mid) < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return p >= parts ? rows : lo;
}

/* fnn_csr_matmul asks for the row of b of the entry this many entries ahead (of the part,
 * across row ends) while it adds the current one: the rows come from anywhere in b, which
 * is larger than the caches, and the memory's latency is then paid a few rows at a time.
 * (fnn_csr_t_matmul's scattered output rows gained nothing from it.) */
#define FNN_CSR_PREFETCH 4
#define FNN_IMPL "sparse_impl.h"
#include "kernel_instances.h"

int fnn_csr_check(int index64, ptrdiff_t rows, const void *indptr, const void *indices,
                  ptrdiff_t nnz, ptrdiff_t n_cols, ptrdiff_t *where)
{
    int64_t prev = fnn_index_at(indptr, index64, 0);
    if (prev < 0) {
        *where = 0;
        return FNN_CSR_BAD_START;
    }
    const int64_t start = prev;
    for (ptrdiff_t i = 1; i <= rows; i++) {
        const int64_t p = fnn_index_at(indptr, index64, i);
        if (p < prev) {
            *where = i;
            return FNN_CSR_DECREASING;
        }
        prev = p;
    }
    if (prev > (int64_t)nnz) {
        *where = rows;
        return FNN_CSR_PAST_END;
    }
    /* Unsigned, so that one comparison also catches negative indices. */
    const uint64_t limit = (uint64_t)n_cols;
    for (ptrdiff_t k = (ptrdiff_t)start; k < (ptrdiff_t)prev; k++)
        if ((uint64_t)fnn_index_at(indices, index64, k) >= limit) {
            *where = k;
            return FNN_CSR_BAD_INDEX;
        }
    return 0;
}

void fnn_csr_matmul(fnn_dtype dt, int index64, ptrdiff_t rows, ptrdiff_t units,
                    const void *data, const void *indices, const void *indptr, const void *b,
                    const void *bias, int act, double act_param, void *out)
{
    FNN_DISPATCH(csr_matmul, index64, rows, units, data, indices, indptr, b, bias, act,
                 act_param, out);
}

void fnn_csr_t_matmul(fnn_dtype dt, int index64, ptrdiff_t rows, ptrdiff_t n_cols,
                      ptrdiff_t units, const void *data, const void *indices,
                      const void *indptr, const void *b, void *out)
{
    FNN_DISPATCH(csr_t_matmul, index64, rows, n_cols, units, data, indices, indptr, b, out);
}
