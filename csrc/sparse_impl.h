/* Template body of sparse.c: included once per element type and ISA with the parameters of
 * elementwise_impl.h defined, whose activations are the epilogue here. Every function is
 * static and suffixed with SFX. The inner loops are axpys along a dense row of `units`
 * elements, which the compiler vectorises for the ISA of the instance. */
#include "elementwise_impl.h"

#define F(name) FNN_CAT(name, SFX)

/* The arguments of both kernels' tasks (fnn_csr_matmul's and fnn_csr_t_matmul's). */
typedef struct {
    int index64, act;
    double slope;
    ptrdiff_t rows, n_cols, units, parts;
    const T *data, *b, *bias;
    const void *indices, *indptr;
    T *out;
} F(csr_args);

/* y = v x over n elements. */
static inline void F(scaled)(ptrdiff_t n, T v, const T *restrict x, T *restrict y)
{
    for (ptrdiff_t u = 0; u < n; u++) y[u] = v * x[u];
}

/* y += v x over n elements. */
static inline void F(axpy)(ptrdiff_t n, T v, const T *restrict x, T *restrict y)
{
    for (ptrdiff_t u = 0; u < n; u++) y[u] += v * x[u];
}

/* Asks for the cache lines of the n elements at p: rows of b are read in an order the
 * hardware prefetcher cannot guess. */
static inline void F(prefetch_row)(const T *p, ptrdiff_t n)
{
    const char *c = (const char *)p;
    for (ptrdiff_t off = 0; off < n * (ptrdiff_t)sizeof(T); off += 64) __builtin_prefetch(c + off);
}

/* Rows r0 .. r1-1 of act(A @ b + bias), each in its output row, which stays in L1 from
 * the first entry's product to the activation. */
static void F(csr_rows)(const F(csr_args) *A, ptrdiff_t r0, ptrdiff_t r1)
{
    const ptrdiff_t n = A->units;
    const int i64 = A->index64;
    const ptrdiff_t kend = (ptrdiff_t)fnn_index_at(A->indptr, i64, r1);
    for (ptrdiff_t i = r0; i < r1; i++) {
        T *o = A->out + i * n;
        const ptrdiff_t k0 = (ptrdiff_t)fnn_index_at(A->indptr, i64, i);
        const ptrdiff_t k1 = (ptrdiff_t)fnn_index_at(A->indptr, i64, i + 1);
        if (k0 == k1)
            memset(o, 0, (size_t)n * sizeof(T));
        for (ptrdiff_t k = k0; k < k1; k++) {
            if (k + FNN_CSR_PREFETCH < kend)
                F(prefetch_row)(A->b + fnn_index_at(A->indices, i64, k + FNN_CSR_PREFETCH) * n, n);
            const T *br = A->b + fnn_index_at(A->indices, i64, k) * n;
            if (k == k0)
                F(scaled)(n, A->data[k], br, o);
            else
                F(axpy)(n, A->data[k], br, o);
        }
        if (A->bias)
            F(add_bias)(1, n, o, A->bias, o);
        F(act_forward)(n, A->act, A->slope, o, o);
    }
}

static void F(csr_rows_task)(void *ctx, ptrdiff_t p)
{
    const F(csr_args) *A = ctx;
    F(csr_rows)(A, fnn_csr_part_start(A->indptr, A->index64, A->rows, A->parts, p),
                fnn_csr_part_start(A->indptr, A->index64, A->rows, A->parts, p + 1));
}

static void F(csr_matmul)(int index64, ptrdiff_t rows, ptrdiff_t units, const void *data,
                          const void *indices, const void *indptr, const void *b,
                          const void *bias, int act, double slope, void *out)
{
    if (rows <= 0 || units <= 0)
        return;
    const ptrdiff_t nnz = (ptrdiff_t)(fnn_index_at(indptr, index64, rows) -
                                      fnn_index_at(indptr, index64, 0));
    const int nt = nthreads_for((nnz + rows) * units);
    F(csr_args) A = {.index64 = index64, .act = act, .slope = slope, .rows = rows,
                     .units = units, .data = data, .b = b, .bias = bias, .indices = indices,
                     .indptr = indptr, .out = out};
    A.parts = nt > 1 ? (rows < nt * FNN_CSR_PARTS_PER_THREAD ? rows
                                                             : nt * FNN_CSR_PARTS_PER_THREAD)
                     : 1;
    fnn_parallel(nt, A.parts, F(csr_rows_task), &A);
}

/* Rows j0 .. j1-1 of out = A^T @ b: the scaled row of b of every entry in columns j0 ..
 * j1-1 of A added to its output row, in storage order, so that each output row sums its
 * terms in the same order whichever part it falls in. An output row's first term is stored
 * rather than added, and only the rows no entry reaches are zeroed, afterwards: out is
 * written once, not zeroed in full and then read back from memory (it is the size of the
 * weight, larger than the caches). `seen` has a bit per row of the part; without it (no
 * memory) the part is zeroed first. */
static void F(csr_t_rows)(const F(csr_args) *A, ptrdiff_t j0, ptrdiff_t j1, uint64_t *seen)
{
    const ptrdiff_t n = A->units, m = j1 - j0;
    const int i64 = A->index64;
    T *out = A->out + j0 * n;
    if (seen)
        memset(seen, 0, (size_t)(m + 63) / 64 * sizeof *seen);
    else
        memset(out, 0, (size_t)m * (size_t)n * sizeof(T));
    for (ptrdiff_t i = 0; i < A->rows; i++) {
        const T *br = A->b + i * n;
        const ptrdiff_t k1 = (ptrdiff_t)fnn_index_at(A->indptr, i64, i + 1);
        for (ptrdiff_t k = (ptrdiff_t)fnn_index_at(A->indptr, i64, i); k < k1; k++) {
            /* Unsigned: one comparison for both ends of the part. */
            const size_t j = (size_t)(fnn_index_at(A->indices, i64, k) - j0);
            if (j >= (size_t)m)
                continue;
            if (seen && !(seen[j >> 6] >> (j & 63) & 1)) {
                seen[j >> 6] |= UINT64_C(1) << (j & 63);
                F(scaled)(n, A->data[k], br, out + j * n);
            } else {
                F(axpy)(n, A->data[k], br, out + j * n);
            }
        }
    }
    if (!seen)
        return;
    /* The rows never reached, in runs, one memset each. */
    for (ptrdiff_t j = 0; j < m;) {
        if (seen[j >> 6] >> (j & 63) & 1) {
            j++;
            continue;
        }
        ptrdiff_t e = j + 1;
        while (e < m && !(seen[e >> 6] >> (e & 63) & 1)) e++;
        memset(out + j * n, 0, (size_t)(e - j) * (size_t)n * sizeof(T));
        j = e;
    }
}

static void F(csr_t_rows_task)(void *ctx, ptrdiff_t p)
{
    const F(csr_args) *A = ctx;
    const ptrdiff_t j0 = A->n_cols * p / A->parts, j1 = A->n_cols * (p + 1) / A->parts;
    uint64_t *seen = fnn_scratch(FNN_SCRATCH_CSR_SEEN, (size_t)(j1 - j0 + 63) / 64 * 8);
    F(csr_t_rows)(A, j0, j1, seen);
}

static void F(csr_t_matmul)(int index64, ptrdiff_t rows, ptrdiff_t n_cols, ptrdiff_t units,
                            const void *data, const void *indices, const void *indptr,
                            const void *b, void *out)
{
    if (n_cols <= 0 || units <= 0)
        return;
    const ptrdiff_t nnz = (ptrdiff_t)(fnn_index_at(indptr, index64, rows) -
                                      fnn_index_at(indptr, index64, 0));
    const int nt = nthreads_for((nnz + n_cols) * units);
    F(csr_args) A = {.index64 = index64, .rows = rows, .n_cols = n_cols, .units = units,
                     .data = data, .b = b, .indices = indices, .indptr = indptr, .out = out};
    A.parts = nt > 1 ? (n_cols < nt * FNN_CSR_PARTS_PER_THREAD ? n_cols
                                                               : nt * FNN_CSR_PARTS_PER_THREAD)
                     : 1;
    fnn_parallel(nt, A.parts, F(csr_t_rows_task), &A);
}

#undef F
