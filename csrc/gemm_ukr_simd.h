/* SIMD micro-kernel template, included by gemm_x86.c once per (ISA, type).
 *
 * The includer defines:
 *   T, VT, VLEN        element type, vector type, lanes per vector
 *   MR, NV             tile is MR rows x NV vectors (NR = NV * VLEN)
 *   MRS                the shorter tile's rows (UKR_small), for row counts MR divides badly
 *   VREGS              vector registers (16 ymm / 32 zmm)
 *   UKR, TARGET        function name, target attribute string
 *   VZERO() VSET1(x) VLOADU(p) VSTOREU(p, v)
 *   VADD VSUB VMUL VDIV VMAX(a, b)   (VMAX returns b when either is NaN, as x86 does)
 *   VFMA(a, b, c)      a * b + c, fused
 *   VROUND(x)          to nearest integer
 *   VPOW2(n)           2^n for integral n in [-600, 0]
 *   VSEL_LT(x, y, a, b) x < y ? a : b, lane-wise (false for NaN)
 *   VMASK              lane-mask type; VMASK_FIRST(n) selects lanes 0..n-1 (n may be
 *                      <= 0 or >= VLEN); VMLOAD(p, m) (zero in unselected lanes, which
 *                      never fault), VMSTORE(p, m, v)
 *   VHSUM(v)           sum of the lanes, in a fixed order
 * and this file undefines them all, so the next inclusion starts clean.
 *
 * The accumulators are arrays indexed by constants inside fully unrolled loops, so
 * the compiler keeps them in registers: MR * NV + NV + 1 must not exceed the
 * register file (16 ymm / 32 zmm). */

#include <float.h>

#include "exp_taylor.h"

#define FNN_UNROLL _Pragma("GCC unroll 32")
#define FNN_UCAT_(a, b) a##b
#define FNN_UCAT(a, b) FNN_UCAT_(a, b)
#define FNN_UFN(name) FNN_UCAT(UKR, name)

/* e^x for x <= 0 (or NaN), to about 1 ulp (the method and constants of exp_taylor.h),
 * with 2^n applied in two halves so that results in the subnormal range are rounded only
 * once. */
__attribute__((target(TARGET)))
static inline VT FNN_UFN(_expneg)(VT x)
{
    /* The operand order keeps NaN. */
    x = VMAX(VSET1(FNN_EXP_LOWEST(T)), x);
    VT n = VROUND(VMUL(x, VSET1((T)FNN_LOG2E)));
    VT r = VFMA(n, VSET1((T)-FNN_LN2_HI), x);
    r = VFMA(n, VSET1((T)FNN_LN2_LO), r);
    VT p = VSET1((T)fnn_exp_inv_fact[FNN_EXP_FIRST(T)]);
    FNN_UNROLL for (int i = FNN_EXP_FIRST(T) + 1; i < 14; i++)
        p = VFMA(p, r, VSET1((T)fnn_exp_inv_fact[i]));
    VT n1 = VROUND(VMUL(n, VSET1((T)0.5)));
    return VMUL(VMUL(p, VPOW2(n1)), VPOW2(VSUB(n, n1)));
}

/* 1 / (1 + e^-x) for x >= 0 and e^x / (1 + e^x) below, so e never overflows. */
__attribute__((target(TARGET)))
static inline VT FNN_UFN(_sigmoid)(VT x)
{
    VT ax = VMAX(VSUB(VZERO(), x), x);
    VT e = FNN_UFN(_expneg)(VSUB(VZERO(), ax));
    VT s = VDIV(VSET1((T)1), VADD(VSET1((T)1), e));
    return VSEL_LT(x, VZERO(), VMUL(e, s), s);
}

/* (1 - e) / (1 + e) with e = e^-2|x|, the odd series of exp_taylor.h near zero. */
__attribute__((target(TARGET)))
static inline VT FNN_UFN(_tanh)(VT x)
{
    VT ax = VMAX(VSUB(VZERO(), x), x);
    VT e = FNN_UFN(_expneg)(VMUL(ax, VSET1((T)-2)));
    VT big = VDIV(VSUB(VSET1((T)1), e), VADD(VSET1((T)1), e));
    big = VSEL_LT(x, VZERO(), VSUB(VZERO(), big), big);
    VT x2 = VMUL(x, x);
    VT p = VSET1((T)fnn_tanh_coef[FNN_TANH_FIRST(T)]);
    FNN_UNROLL for (int i = FNN_TANH_FIRST(T) + 1; i < 11; i++)
        p = VFMA(p, x2, VSET1((T)fnn_tanh_coef[i]));
    VT small = VFMA(VMUL(x, x2), p, x);
    /* tanh x rounds to x below the smallest normal; this also keeps the sign of -0. */
    small = VSEL_LT(ax, VSET1(sizeof(T) == 4 ? (T)FLT_MIN : (T)DBL_MIN), x, small);
    return VSEL_LT(ax, VSET1((T)FNN_TANH_SMALL), small, big);
}

/* The fused activation of one vector. max returns its second operand when one is NaN:
 * a NaN x stays NaN. */
__attribute__((target(TARGET), always_inline))
static inline VT FNN_UFN(_act)(VT x, int act, VT s)
{
    switch (act) {
    case FNN_ACT_RELU: return VMAX(VZERO(), x);
    case FNN_ACT_LEAKY_RELU: return VSEL_LT(VZERO(), x, x, VMUL(x, s));
    case FNN_ACT_SIGMOID: return FNN_UFN(_sigmoid)(x);
    case FNN_ACT_TANH: return FNN_UFN(_tanh)(x);
    default: return x;
    }
}

/* One step along K of either tile kernel: acc[i] += A_I * (the NV vectors at b) for the
 * TM rows i, A_I the expression for row i's value (in terms of i). */
#define FNN_K_STEP(TM, A_I)                                                                \
    do {                                                                                   \
        VT bv[NV];                                                                         \
        FNN_UNROLL for (int v = 0; v < NV; v++)                                            \
            bv[v] = VLOADU(b + v * VLEN);                                                  \
        FNN_UNROLL for (int i = 0; i < TM; i++) {                                          \
            VT ai = VSET1(A_I);                                                            \
            FNN_UNROLL for (int v = 0; v < NV; v++)                                        \
                acc[i][v] = VFMA(ai, bv[v], acc[i][v]);                                    \
        }                                                                                  \
    } while (0)

/* A TM-row tile (TM is MR or MRS, constant after inlining), A packed at `a` or, with row
 * pointers r (the indirect tile), read in place at r[i][off[p]]. Each element's arithmetic
 * depends on neither TM nor where A comes from, so all tiles give the same bits. */
__attribute__((target(TARGET), always_inline))
static inline void FNN_UFN(_tile)(const int TM, ptrdiff_t k, const T *restrict a,
                                  const T *const *r, const ptrdiff_t *restrict off,
                                  const T *restrict b, T *restrict c, ptrdiff_t rsc,
                                  const T *restrict bias, int loadc, int act, T slope)
{
    VT acc[MR][NV];
    FNN_UNROLL for (int i = 0; i < TM; i++)
        FNN_UNROLL for (int v = 0; v < NV; v++)
            acc[i][v] = VZERO();

    /* The tile of C is needed at the end: start fetching it now. */
    FNN_UNROLL for (int i = 0; i < TM; i++) {
        __builtin_prefetch(c + i * rsc);
        __builtin_prefetch(c + i * rsc + NV * VLEN - 1);
    }

    if (r) {
        const T *ri[MR];
        FNN_UNROLL for (int i = 0; i < TM; i++)
            ri[i] = r[i];
        _Pragma("GCC unroll 4")
        for (ptrdiff_t p = 0; p < k; p++) {
            const ptrdiff_t o = off[p];
            FNN_K_STEP(TM, ri[i][o]);
            b += NV * VLEN;
        }
    } else {
        _Pragma("GCC unroll 4")
        for (ptrdiff_t p = 0; p < k; p++) {
            FNN_K_STEP(TM, a[i]);
            a += TM;
            b += NV * VLEN;
        }
    }

    /* Same operation order as the portable kernel: (c + ab) + bias. */
    if (loadc)
        FNN_UNROLL for (int i = 0; i < TM; i++)
            FNN_UNROLL for (int v = 0; v < NV; v++)
                acc[i][v] = VADD(VLOADU(c + i * rsc + v * VLEN), acc[i][v]);
    if (bias) {
        FNN_UNROLL for (int v = 0; v < NV; v++) {
            VT bb = VLOADU(bias + v * VLEN);
            FNN_UNROLL for (int i = 0; i < TM; i++)
                acc[i][v] = VADD(acc[i][v], bb);
        }
    }
    VT s = VSET1(slope);
    FNN_UNROLL for (int i = 0; i < TM; i++)
        FNN_UNROLL for (int v = 0; v < NV; v++)
            VSTOREU(c + i * rsc + v * VLEN, FNN_UFN(_act)(acc[i][v], act, s));
}

__attribute__((target(TARGET)))
static void UKR(ptrdiff_t k, const T *restrict a, const T *restrict b, T *restrict c,
                ptrdiff_t rsc, const T *restrict bias, int loadc, int act, T slope)
{
    FNN_UFN(_tile)(MR, k, a, NULL, NULL, b, c, rsc, bias, loadc, act, slope);
}

__attribute__((target(TARGET)))
static void FNN_UFN(_small)(ptrdiff_t k, const T *restrict a, const T *restrict b,
                            T *restrict c, ptrdiff_t rsc, const T *restrict bias, int loadc,
                            int act, T slope)
{
    FNN_UFN(_tile)(MRS, k, a, NULL, NULL, b, c, rsc, bias, loadc, act, slope);
}

/* The indirect tile (gemm_kernels.h, ukr_ind). */
__attribute__((target(TARGET)))
static void FNN_UFN(_ind)(ptrdiff_t k, const T *const *r, const ptrdiff_t *restrict off,
                          const T *restrict b, T *restrict c, ptrdiff_t rsc,
                          const T *restrict bias, int loadc, int act, T slope)
{
    FNN_UFN(_tile)(MR, k, NULL, r, off, b, c, rsc, bias, loadc, act, slope);
}

/* The transposed tile (gemm_kernels.h, ukr_rows): the MR rows of W are read in place,
 * each contiguous along p, and broadcast as the packed A values would be; one bias
 * value per row. Same operation order as UKR. */
__attribute__((target(TARGET)))
static void FNN_UFN(_rows)(ptrdiff_t k, const T *const *w, const T *restrict b,
                           T *restrict d, const T *restrict bias, int loadc, int act,
                           T slope)
{
    const T *wr[MR];
    VT acc[MR][NV];
    FNN_UNROLL for (int i = 0; i < MR; i++) {
        wr[i] = w[i];
        FNN_UNROLL for (int v = 0; v < NV; v++)
            acc[i][v] = VZERO();
    }

    _Pragma("GCC unroll 4")
    for (ptrdiff_t p = 0; p < k; p++) {
        FNN_K_STEP(MR, wr[i][p]);
        b += NV * VLEN;
    }

    VT s = VSET1(slope);
    FNN_UNROLL for (int i = 0; i < MR; i++) {
        FNN_UNROLL for (int v = 0; v < NV; v++) {
            VT x = acc[i][v];
            if (loadc)
                x = VADD(VLOADU(d + (i * NV + v) * VLEN), x);
            if (bias)
                x = VADD(x, VSET1(bias[i]));
            VSTOREU(d + (i * NV + v) * VLEN, FNN_UFN(_act)(x, act, s));
        }
    }
}

/* ---- Skinny kernels (no packing), see gemm_kernels.h ------------------------------ */

/* Out of line: the skinny kernels inline their epilogue at many places. */
__attribute__((target(TARGET), noinline))
static VT FNN_UFN(_act_smooth)(VT x, int act)
{
    return act == FNN_ACT_SIGMOID ? FNN_UFN(_sigmoid)(x) : FNN_UFN(_tanh)(x);
}

/* One vector of a C row: c = act((loadc ? c : 0) + x + bias), the micro-kernel's
 * operation order. `full` selects plain loads / stores, else lanes of `mk`. */
__attribute__((target(TARGET), always_inline))
static inline void FNN_UFN(_epi)(VT x, T *c, const T *bias, int full, VMASK mk, int loadc,
                                 int act, VT s)
{
    if (loadc)
        x = VADD(full ? VLOADU(c) : VMLOAD(c, mk), x);
    if (bias)
        x = VADD(x, full ? VLOADU(bias) : VMLOAD(bias, mk));
    switch (act) {
    case FNN_ACT_RELU: x = VMAX(VZERO(), x); break;
    case FNN_ACT_LEAKY_RELU: x = VSEL_LT(VZERO(), x, x, VMUL(x, s)); break;
    case FNN_ACT_SIGMOID:
    case FNN_ACT_TANH: x = FNN_UFN(_act_smooth)(x, act); break;
    default: break;
    }
    if (full)
        VSTOREU(c, x);
    else
        VMSTORE(c, mk, x);
}

/* SR rows x SNV vectors of C = A[SR x k] B[k x SNV*VLEN], B rows ldb apart. With `masked`,
 * the last vector holds `last` (1..VLEN) valid columns. Each column is one FMA chain
 * over p = 0..k-1. */
__attribute__((target(TARGET), always_inline))
static inline void FNN_UFN(_nnblk)(const int SR, const int SNV, const int masked, int last,
                                   ptrdiff_t k, const T *a, ptrdiff_t rsa, ptrdiff_t csa,
                                   const T *b, ptrdiff_t ldb, T *c, ptrdiff_t rsc,
                                   const T *bias, int loadc, int act, T slope)
{
    VT acc[6][4];
    VMASK mk = VMASK_FIRST(last);
    const int pf = (ldb * (ptrdiff_t)sizeof(T)) % 4096 != 0;
    FNN_UNROLL for (int i = 0; i < SR; i++)
        FNN_UNROLL for (int v = 0; v < SNV; v++)
            acc[i][v] = VZERO();
    _Pragma("GCC unroll 2")
    for (ptrdiff_t p = 0; p < k; p++) {
        VT bv[4];
        /* B rows are far apart: the hardware prefetcher does not follow. (Not for
         * strides of whole pages, whose rows share L1 sets: there it only evicts.) */
        if (pf) {
            __builtin_prefetch(b + 8 * ldb);
            if (SNV * VLEN * sizeof(T) > 64)
                __builtin_prefetch(b + 8 * ldb + SNV * VLEN - 1);
        }
        FNN_UNROLL for (int v = 0; v < SNV; v++)
            bv[v] = masked && v == SNV - 1 ? VMLOAD(b + v * VLEN, mk) : VLOADU(b + v * VLEN);
        FNN_UNROLL for (int i = 0; i < SR; i++) {
            VT ai = VSET1(a[i * rsa]);
            FNN_UNROLL for (int v = 0; v < SNV; v++)
                acc[i][v] = VFMA(ai, bv[v], acc[i][v]);
        }
        a += csa;
        b += ldb;
    }
    VT s = VSET1(slope);
    FNN_UNROLL for (int i = 0; i < SR; i++)
        FNN_UNROLL for (int v = 0; v < SNV; v++)
            FNN_UFN(_epi)(acc[i][v], c + i * rsc + v * VLEN, bias ? bias + v * VLEN : NULL,
                          !(masked && v == SNV - 1), mk, loadc, act, s);
}

/* SR rows: full blocks of SNV vectors, then the rest with one masked block. */
#define FNN_NN_ROWS(SR, SNV)                                                                 \
    do {                                                                                   \
        ptrdiff_t j = 0;                                                                   \
        for (; j + SNV * VLEN <= n; j += SNV * VLEN)                                         \
            FNN_UFN(_nnblk)(SR, SNV, 0, VLEN, k, a, rsa, csa, b + j, ldb, c + j, rsc,        \
                            bias ? bias + j : NULL, loadc, act, slope);                    \
        ptrdiff_t rest = n - j;                                                            \
        if (rest > 0) {                                                                    \
            int nv = (int)((rest + VLEN - 1) / VLEN), last = (int)(rest - (nv - 1) * VLEN); \
            const T *bj = bias ? bias + j : NULL;                                          \
            switch (nv) {                                                                  \
            case 1:                                                                        \
                FNN_UFN(_nnblk)(SR, 1, 1, last, k, a, rsa, csa, b + j, ldb,                \
                                c + j, rsc, bj, loadc, act, slope);                        \
                break;                                                                     \
            case 2:                                                                        \
                FNN_UFN(_nnblk)(SR, SNV >= 2 ? 2 : 1, 1, last, k, a, rsa, csa, b + j, ldb, \
                                c + j, rsc, bj, loadc, act, slope);                        \
                break;                                                                     \
            case 3:                                                                        \
                FNN_UFN(_nnblk)(SR, SNV >= 3 ? 3 : 1, 1, last, k, a, rsa, csa, b + j, ldb, \
                                c + j, rsc, bj, loadc, act, slope);                        \
                break;                                                                     \
            case 4:                                                                        \
                FNN_UFN(_nnblk)(SR, SNV >= 4 ? 4 : 1, 1, last, k, a, rsa, csa, b + j, ldb, \
                                c + j, rsc, bj, loadc, act, slope);                        \
                break;                                                                     \
            default: break;                                                                \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* Column chunks of 12 vectors (a multiple of every block width) outermost, so a
 * chunk of B is read from memory once and from cache by the further row groups. Row
 * groups: up to 6 rows as one, more in fours. */
__attribute__((target(TARGET)))
static void FNN_UFN(_sknn)(ptrdiff_t m, ptrdiff_t n0, ptrdiff_t k, const T *a0, ptrdiff_t rsa,
                           ptrdiff_t csa, const T *b0, ptrdiff_t ldb, T *c0, ptrdiff_t rsc,
                           ptrdiff_t csc, const T *bias0, int loadc, int act, T slope)
{
    (void)csc;
    for (ptrdiff_t j0 = 0; j0 < n0; j0 += 12 * VLEN) {
        ptrdiff_t n = n0 - j0 < 12 * VLEN ? n0 - j0 : 12 * VLEN;
        const T *b = b0 + j0, *bias = bias0 ? bias0 + j0 : NULL;
        const T *a = a0;
        T *c = c0 + j0;
        for (ptrdiff_t ml = m; ml > 0;) {
            int r = ml <= 6 ? (int)ml : 4;
            switch (r) {
            case 1: FNN_NN_ROWS(1, 4); break;
            case 2: FNN_NN_ROWS(2, 4); break;
            case 3: FNN_NN_ROWS(3, 3); break;
            case 4: FNN_NN_ROWS(4, 3); break;
            case 5: FNN_NN_ROWS(5, 2); break;
            default: FNN_NN_ROWS(6, 2); break;
            }
            ml -= r;
            a += r * rsa;
            c += r * rsc;
        }
    }
}
#undef FNN_NN_ROWS

/* SR rows x SJ columns of dot products over k (A and W rows unit stride), lane p % VLEN
 * accumulated in p order, then VHSUM; written to out[i * ldo + j]. */
__attribute__((target(TARGET), always_inline))
static inline void FNN_UFN(_ntblk)(const int SR, const int SJ, ptrdiff_t k, const T *a,
                                   ptrdiff_t rsa, const T *w, ptrdiff_t ldw, T *out,
                                   ptrdiff_t ldo)
{
    VT acc[6][8];
    FNN_UNROLL for (int i = 0; i < SR; i++)
        FNN_UNROLL for (int j = 0; j < SJ; j++)
            acc[i][j] = VZERO();
    ptrdiff_t p = 0;
    for (; p + VLEN <= k; p += VLEN) {
        VT av[6];
        FNN_UNROLL for (int i = 0; i < SR; i++)
            av[i] = VLOADU(a + i * rsa + p);
        FNN_UNROLL for (int j = 0; j < SJ; j++) {
            VT wv = VLOADU(w + j * ldw + p);
            FNN_UNROLL for (int i = 0; i < SR; i++)
                acc[i][j] = VFMA(av[i], wv, acc[i][j]);
        }
    }
    if (p < k) {
        VMASK mk = VMASK_FIRST((int)(k - p));
        VT av[6];
        FNN_UNROLL for (int i = 0; i < SR; i++)
            av[i] = VMLOAD(a + i * rsa + p, mk);
        FNN_UNROLL for (int j = 0; j < SJ; j++) {
            VT wv = VMLOAD(w + j * ldw + p, mk);
            FNN_UNROLL for (int i = 0; i < SR; i++)
                acc[i][j] = VFMA(av[i], wv, acc[i][j]);
        }
    }
    FNN_UNROLL for (int i = 0; i < SR; i++)
        FNN_UNROLL for (int j = 0; j < SJ; j++)
            out[i * ldo + j] = VHSUM(acc[i][j]);
}

#define FNN_NT_COLS(SR, SJ)                                                                  \
    do {                                                                                   \
        ptrdiff_t j = 0;                                                                   \
        for (; j + SJ <= nb; j += SJ)                                                        \
            FNN_UFN(_ntblk)(SR, SJ, k, a, rsa, w + j * ldb, ldb, tmp + j, NTB);                \
        for (; j < nb; j++)                                                                \
            FNN_UFN(_ntblk)(SR, 1, k, a, rsa, w + j * ldb, ldb, tmp + j, NTB);                \
    } while (0)

#define NTB 64
__attribute__((target(TARGET)))
static void FNN_UFN(_sknt)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a0, ptrdiff_t rsa,
                           ptrdiff_t csa, const T *b, ptrdiff_t ldb, T *c0, ptrdiff_t rsc,
                           ptrdiff_t csc, const T *bias, int loadc, int act, T slope)
{
    (void)csa;
    _Alignas(64) T tmp[6 * NTB], ctmp[NTB];
    VT s = VSET1(slope);
    VMASK none = VMASK_FIRST(VLEN);
    for (ptrdiff_t j0 = 0; j0 < n; j0 += NTB) {
        ptrdiff_t nb = n - j0 < NTB ? n - j0 : NTB;
        const T *w = b + j0 * ldb;
        const T *a = a0;
        T *c = c0;
        for (ptrdiff_t ml = m; ml > 0;) {
            /* Six rows by four columns need 24 accumulators and 7 operands: only with 32
             * registers, where they load 10 vectors for 24 multiply-adds (4 x 2: 6 for 8). */
            int r = VREGS >= 32 && ml >= 6 ? 6 : ml >= 4 ? 4 : (int)ml;
            switch (r) {
            case 1: FNN_NT_COLS(1, 8); break;
            case 2: FNN_NT_COLS(2, 4); break;
            case 3: FNN_NT_COLS(3, 3); break;
            case 4: FNN_NT_COLS(4, 2); break;
            default: FNN_NT_COLS(6, 4); break;
            }
            for (int i = 0; i < r; i++) {
                T *ci = c + i * rsc + j0 * csc;
                T *dst = csc == 1 ? ci : ctmp;
                if (csc != 1 && loadc)
                    for (ptrdiff_t j = 0; j < nb; j++)
                        ctmp[j] = ci[j * csc];
                for (ptrdiff_t j = 0; j < nb; j += VLEN) {
                    int full = nb - j >= VLEN;
                    VMASK mk = full ? none : VMASK_FIRST((int)(nb - j));
                    VT x = full ? VLOADU(tmp + i * NTB + j) : VMLOAD(tmp + i * NTB + j, mk);
                    FNN_UFN(_epi)(x, dst + j, bias ? bias + j0 + j : NULL, full, mk, loadc,
                                  act, s);
                }
                if (csc != 1)
                    for (ptrdiff_t j = 0; j < nb; j++)
                        ci[j * csc] = ctmp[j];
            }
            ml -= r;
            a += r * rsa;
            c += r * rsc;
        }
    }
}
#undef NTB
#undef FNN_NT_COLS

#undef FNN_K_STEP
#undef FNN_UNROLL
#undef FNN_UCAT_
#undef FNN_UCAT
#undef FNN_UFN
#undef T
#undef VT
#undef VLEN
#undef MR
#undef MRS
#undef VREGS
#undef NV
#undef UKR
#undef TARGET
#undef VZERO
#undef VSET1
#undef VLOADU
#undef VSTOREU
#undef VADD
#undef VSUB
#undef VMUL
#undef VDIV
#undef VMAX
#undef VFMA
#undef VROUND
#undef VPOW2
#undef VSEL_LT
#undef VMASK
#undef VMASK_FIRST
#undef VMLOAD
#undef VMSTORE
#undef VHSUM
