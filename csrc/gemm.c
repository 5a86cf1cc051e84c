/* fnn_gemm: blocked, packed GEMM with a fused bias + activation epilogue.
 * The driver is instantiated for float and double from gemm_impl.h; the SIMD
 * micro-kernels live in gemm_x86.c. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "fastnn.h"
#include "gemm_kernels.h"
#include "scratch.h"

/* Each thread packs into its own scratch (scratch.h), so steady-state calls never
 * allocate. */
static void *pack_space(size_t bytes) { return fnn_scratch(FNN_SCRATCH_GEMM_PACK, bytes); }

/* Below this many flops per thread, waking a thread costs more than it saves. */
#define MIN_FLOPS_PER_THREAD 1e6
/* Up to this many rows of C, skip packing (the skinny kernels); with row-major B up
 * to SKINNY_M_NN unless B's rows are a multiple of SKINNY_ALIAS_BYTES apart (they then
 * fall into a fraction of L1's sets, a quarter at 1 KiB, and packing wins), or A is
 * transposed (dY^T, read a column at a time) and B has at least SKINNY_TA_KN elements.
 * The limits are where packing starts to pay for k, n in 64..1024 (the timings are in
 * docs/benchmarks.md); they are not correctness limits. */
#ifndef SKINNY_M
#define SKINNY_M 16
#endif
#ifndef SKINNY_N
#define SKINNY_N 16
#endif
#ifndef SKINNY_M_NN
#define SKINNY_M_NN 32
#endif
#define SKINNY_TA_KN 131072
#define SKINNY_ALIAS_BYTES 512
/* C = A W^T through the transposed tile (W read in place) for up to ROWS_M rows of A, or
 * ROWS_M_DEEP from ROWS_DEEP_K deep, from ROWS_MIN_K deep: crossover points, as above. */
#define ROWS_MIN_K 128
#define ROWS_M 32
#define ROWS_DEEP_K 512
#define ROWS_M_DEEP 128
/* K slices of a product with an unpacked A (the indirect tile) are this many times the
 * configured kc: only B's panels grow out of L1, and the tiles of a transposed C (a
 * convolution's output written back per slice through scratch) are stored fewer times
 * (AMD EPYC Zen 3, float32, batch 64: 32->64 3x3 on 26x26 forward 22.4 ms with 2 slices
 * of 144, 16.4 ms with one of 288; its weight gradient 17.5 ms in 3 slices of 192,
 * 15.5-16 ms in one of 576). */
#define IND_KC_FACTOR 4
/* Parts per thread of the splits that share their packed data (gemm_impl.h). */
#define SHARED_PARTS_PER_THREAD 4
/* Cost of packing one element, in multiply-adds of the kernel. */
#define PACK_COST 8

/* Threads worth waking for an m x n x k product (at least 1). */
static int threads_for_flops(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    int nt = fnn_get_num_threads();
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (nt > flops / MIN_FLOPS_PER_THREAD)
        nt = (int)(flops / MIN_FLOPS_PER_THREAD);
    return nt > 1 ? nt : 1;
}

/* Split the m x n output into a tm x tn grid of rectangles of whole micro-tiles,
 * one per thread, minimising the largest part's kernel work plus its packing
 * (every part packs its own rows of A and columns of B). Returns tm * tn. */
static int split_threads(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int mr, int nr,
                         int *tm, int *tn)
{
    int nt = threads_for_flops(m, n, k);
    ptrdiff_t mt = (m + mr - 1) / mr, ntl = (n + nr - 1) / nr;
    double best = 0;
    *tm = *tn = 1;
    for (int i = 1; i <= nt && i <= mt; i++) {
        for (int j = 1; i * j <= nt && j <= ntl; j++) {
            double rows = (double)((mt + i - 1) / i * mr);
            double cols = (double)((ntl + j - 1) / j * nr);
            double cost = rows * cols * (double)k + PACK_COST * (double)k * (rows + cols);
            if (best == 0 || cost < best) {
                best = cost;
                *tm = i;
                *tn = j;
            }
        }
    }
    return *tm * *tn;
}

/* Portable kernel tiles: 8 accumulator vectors of 128 bits per type. */
#define T float
#define SUF f32
#define EXP expf
#define TANH tanhf
#define GMR 4
#define GNR 8
#include "gemm_impl.h"

#define T double
#define SUF f64
#define EXP exp
#define TANH tanh
#define GMR 4
#define GNR 4
#include "gemm_impl.h"

/* Every product's 2*m*n*k, so that tests and benchmarks can see exactly which products a
 * training step runs (a relaxed add: a few ns against microseconds of GEMM). */
static _Atomic uint64_t gemm_flops;

uint64_t fnn_gemm_flop_count(void)
{
    return atomic_load_explicit(&gemm_flops, memory_order_relaxed);
}

void fnn_gemm_flop_discount(uint64_t flops)
{
    atomic_fetch_sub_explicit(&gemm_flops, flops, memory_order_relaxed);
}

/* Counts a product for fnn_gemm_flop_count; 0 when it is empty (nothing to compute). */
static int count_product(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    if (m <= 0 || n <= 0)
        return 0;
    atomic_fetch_add_explicit(&gemm_flops, 2 * (uint64_t)m * (uint64_t)n * (uint64_t)k,
                              memory_order_relaxed);
    return 1;
}

int fnn_gemm(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
             const void *a, ptrdiff_t rsa, ptrdiff_t csa,
             const void *b, ptrdiff_t rsb, ptrdiff_t csb,
             void *c, ptrdiff_t rsc, ptrdiff_t csc,
             int accumulate, const void *bias, int act, double act_param)
{
    if (!count_product(m, n, k))
        return FNN_OK;
    if (dt == FNN_F32)
        return gemm_f32(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, csc, accumulate, bias,
                        act, (float)act_param);
    return gemm_f64(m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, csc, accumulate, bias, act,
                    act_param);
}

size_t fnn_gemm_packed_b_size(fnn_dtype dt, ptrdiff_t k, ptrdiff_t n)
{
    return dt == FNN_F32 ? packed_b_size_f32(k, n) : packed_b_size_f64(k, n);
}

void fnn_gemm_pack_b(fnn_dtype dt, ptrdiff_t k, ptrdiff_t n, const void *b, ptrdiff_t rsb,
                     ptrdiff_t csb, void *dst)
{
    if (dt == FNN_F32)
        pack_b_whole_f32(k, n, b, rsb, csb, dst);
    else
        pack_b_whole_f64(k, n, b, rsb, csb, dst);
}

int fnn_gemm_gather(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const void *a,
                    const fnn_gather *ga, const void *b, void *c, ptrdiff_t rsc, ptrdiff_t csc,
                    int accumulate, const void *bias, int act, double act_param)
{
    if (!count_product(m, n, k))
        return FNN_OK;
    if (dt == FNN_F32)
        return gemm_gather_f32(m, n, k, a, ga, b, c, rsc, csc, accumulate, bias, act,
                               (float)act_param);
    return gemm_gather_f64(m, n, k, a, ga, b, c, rsc, csc, accumulate, bias, act, act_param);
}
