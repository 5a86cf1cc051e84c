/* Internal interface between the GEMM driver (gemm.c) and the per-ISA micro-kernels. */
#ifndef FASTNN_GEMM_KERNELS_H
#define FASTNN_GEMM_KERNELS_H

#include <stddef.h>

#if defined(__x86_64__) || defined(__i386__)
#define FNN_X86 1
#endif

/* Largest micro-tile of any kernel, for stack scratch tiles. */
#define FNN_MAX_MR 16
#define FNN_MAX_NR 32

/* A micro-kernel computes one MR x NR tile of C:
 *   c = act( (loadc ? c : 0) + a @ b + bias )
 * a, b: packed, k steps of MR (NR) values;
 * c: rows rsc apart, unit column stride; bias: NR values or NULL.
 * The kernel always computes the whole tile; the driver handles edges via scratch.
 * ukr_small is the same kernel for an mrs x NR tile (a packed mrs values a step): a row
 * count that MR divides badly is tiled with a few of those instead (m = 32 with MR = 6 is
 * 6+6+6+6+4+4, not six tiles of which the last is two thirds padding). Every element's
 * arithmetic is the same in both, so the tiling never changes a result.
 *
 * The transposed tile (ukr_rows) is the same product with W's rows for A, read in
 * place: w[i] points at row i (unit stride along p), b is packed as above, and
 *   d = act( (loadc ? d : 0) + W @ b + bias[i] along row i ),
 * d being MR x NR contiguous. For C = X W^T with few rows of X: C^T = W X^T.
 *
 * The indirect tile (ukr_ind) is UKR with A read in place through pointers: row i's value
 * at step p is r[i][off[p]], an implicit im2col (fnn_gather, fastnn.h) with nothing packed.
 *
 * Skinny (no packing) kernels compute the whole m x n product for small m:
 *   sknn: B row-major, b[p*ldb + j]; C with unit column stride (csc == 1).
 *   sknt: B = W^T, b[j*ldb + p], A with unit column stride (csa == 1); any csc.
 * Each element of C is reduced in an order that depends only on k (never on m, n or
 * where the column range starts), so splitting columns across threads is exact.
 *
 * A configuration couples a kernel with the cache blocking tuned for it. */
#define FNN_GEMM_DECLARE(T, SUF)                                                        \
    typedef void (*fnn_ukr_##SUF)(ptrdiff_t k, const T *a, const T *b, T *c,            \
                                  ptrdiff_t rsc, const T *bias, int loadc, int act,     \
                                  T slope);                                             \
    typedef void (*fnn_ukr_rows_##SUF)(ptrdiff_t k, const T *const *w, const T *b, T *d,  \
                                       const T *bias, int loadc, int act, T slope);     \
    typedef void (*fnn_ukr_ind_##SUF)(ptrdiff_t k, const T *const *r, const ptrdiff_t *off, \
                                      const T *b, T *c, ptrdiff_t rsc, const T *bias,   \
                                      int loadc, int act, T slope);                     \
    typedef void (*fnn_skinny_##SUF)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,             \
                                     const T *a, ptrdiff_t rsa, ptrdiff_t csa,          \
                                     const T *b, ptrdiff_t ldb,                         \
                                     T *c, ptrdiff_t rsc, ptrdiff_t csc,                \
                                     const T *bias, int loadc, int act, T slope);       \
    typedef void (*fnn_pack_tr_##SUF)(T *dst, const T *src, ptrdiff_t es, ptrdiff_t len,  \
                                      int w);                                           \
    typedef struct {                                                                    \
        int mr, nr; /* micro-tile */                                                    \
        int mrs;    /* rows of the shorter tile ukr_small (0: none), see above */        \
        int mc, kc, nc; /* cache blocks; mc % mr == 0, nc % nr == 0 */                  \
        fnn_ukr_##SUF ukr, ukr_small;                                                   \
        fnn_ukr_rows_##SUF ukr_rows; /* the transposed tile, see below */                \
        fnn_ukr_ind_##SUF ukr_ind;   /* the indirect tile, see above */                 \
        fnn_skinny_##SUF sknn, sknt; /* unpacked small-m kernels, see below */          \
        fnn_pack_tr_##SUF pack_tr;   /* transposing pack, or NULL */                    \
    } fnn_gemm_cfg_##SUF;

FNN_GEMM_DECLARE(float, f32)
FNN_GEMM_DECLARE(double, f64)

#ifdef FNN_X86
extern const fnn_gemm_cfg_f32 fnn_gemm_avx2_f32, fnn_gemm_avx512_f32;
extern const fnn_gemm_cfg_f64 fnn_gemm_avx2_f64, fnn_gemm_avx512_f64;
#endif

#endif
