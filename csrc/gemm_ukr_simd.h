/* SIMD micro-kernel template, included by gemm_x86.c once per (ISA, type).
 *
 * The includer defines:
 *   T, VT, VLEN        element type, vector type, lanes per vector
 *   MR, NV             tile is MR rows x NV vectors (NR = NV * VLEN)
 *   UKR, TARGET        function name, target attribute string
 *   VZERO() VSET1(x) VLOADU(p) VSTOREU(p, v)
 *   VADD VSUB VMUL VDIV VMAX(a, b)   (VMAX returns b when either is NaN, as x86 does)
 *   VFMA(a, b, c)      a * b + c, fused
 *   VROUND(x)          to nearest integer
 *   VPOW2(n)           2^n for integral n in [-600, 0]
 *   VSEL_LT(x, y, a, b) x < y ? a : b, lane-wise (false for NaN)
 * and this file undefines them all, so the next inclusion starts clean.
 *
 * The accumulators are arrays indexed by constants inside fully unrolled loops, so
 * the compiler keeps them in registers: MR * NV + NV + 1 must not exceed the
 * register file (16 ymm / 32 zmm). */

#define FNN_UNROLL _Pragma("GCC unroll 32")
#define FNN_UCAT_(a, b) a##b
#define FNN_UCAT(a, b) FNN_UCAT_(a, b)
#define FNN_UFN(name) FNN_UCAT(UKR, name)

/* e^x for x <= 0 (or NaN), to about 1 ulp: e^x = 2^n e^r with |r| <= ln2/2, e^r by
 * its Taylor series (degree 7 for float, 13 for double), and 2^n applied in two
 * halves so that results in the subnormal range are rounded only once. */
__attribute__((target(TARGET)))
static inline VT FNN_UFN(_expneg)(VT x)
{
    static const double inv_fact[14] = {
        1.6059043836821613e-10, 2.08767569878681e-09, 2.505210838544172e-08,
        2.755731922398589e-07, 2.7557319223985893e-06, 2.48015873015873e-05,
        1.984126984126984e-04, 1.388888888888889e-03, 8.333333333333333e-03,
        4.1666666666666664e-02, 0.16666666666666666, 0.5, 1.0, 1.0};
    /* Below this e^x rounds to zero; the operand order keeps NaN. */
    x = VMAX(VSET1(sizeof(T) == 4 ? (T)-104 : (T)-746), x);
    VT n = VROUND(VMUL(x, VSET1((T)1.4426950408889634)));
    /* ln 2 = hi + lo with hi short enough that n * hi is exact. */
    VT r = VFMA(n, VSET1((T)-0.693359375), x);
    r = VFMA(n, VSET1((T)2.12194440054690583e-4), r);
    VT p = VSET1((T)inv_fact[sizeof(T) == 4 ? 6 : 0]);
    FNN_UNROLL for (int i = sizeof(T) == 4 ? 7 : 1; i < 14; i++)
        p = VFMA(p, r, VSET1((T)inv_fact[i]));
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

/* Odd Taylor polynomial below |x| = 0.3 (through x^11 for float, x^23 for double),
 * where (1 - e) / (1 + e) with e = e^-2|x| would lose digits to cancellation. */
__attribute__((target(TARGET)))
static inline VT FNN_UFN(_tanh)(VT x)
{
    static const double coef[11] = {
        -3.927832388331683e-05, 9.691537956929451e-05, -2.3912911424355248e-04,
        5.90027440945586e-04, -1.4558343870513183e-03, 3.592128036572481e-03,
        -8.863235529902197e-03, 2.1869488536155203e-02, -5.396825396825397e-02,
        0.13333333333333333, -0.3333333333333333};
    VT ax = VMAX(VSUB(VZERO(), x), x);
    VT e = FNN_UFN(_expneg)(VMUL(ax, VSET1((T)-2)));
    VT big = VDIV(VSUB(VSET1((T)1), e), VADD(VSET1((T)1), e));
    big = VSEL_LT(x, VZERO(), VSUB(VZERO(), big), big);
    VT x2 = VMUL(x, x);
    VT p = VSET1((T)coef[sizeof(T) == 4 ? 6 : 0]);
    FNN_UNROLL for (int i = sizeof(T) == 4 ? 7 : 1; i < 11; i++)
        p = VFMA(p, x2, VSET1((T)coef[i]));
    VT small = VFMA(VMUL(x, x2), p, x);
    return VSEL_LT(ax, VSET1((T)0.3), small, big);
}

__attribute__((target(TARGET)))
static void UKR(ptrdiff_t k, const T *restrict a, const T *restrict b, T *restrict c,
                ptrdiff_t rsc, const T *restrict bias, int loadc, int act, T slope)
{
    VT acc[MR][NV];
    FNN_UNROLL for (int i = 0; i < MR; i++)
        FNN_UNROLL for (int v = 0; v < NV; v++)
            acc[i][v] = VZERO();

    /* The tile of C is needed at the end: start fetching it now. */
    FNN_UNROLL for (int i = 0; i < MR; i++) {
        __builtin_prefetch(c + i * rsc);
        __builtin_prefetch(c + i * rsc + NV * VLEN - 1);
    }

    _Pragma("GCC unroll 4")
    for (ptrdiff_t p = 0; p < k; p++) {
        VT bv[NV];
        FNN_UNROLL for (int v = 0; v < NV; v++)
            bv[v] = VLOADU(b + v * VLEN);
        FNN_UNROLL for (int i = 0; i < MR; i++) {
            VT ai = VSET1(a[i]);
            FNN_UNROLL for (int v = 0; v < NV; v++)
                acc[i][v] = VFMA(ai, bv[v], acc[i][v]);
        }
        a += MR;
        b += NV * VLEN;
    }

    /* Same operation order as the portable kernel: (c + ab) + bias. */
    if (loadc)
        FNN_UNROLL for (int i = 0; i < MR; i++)
            FNN_UNROLL for (int v = 0; v < NV; v++)
                acc[i][v] = VADD(VLOADU(c + i * rsc + v * VLEN), acc[i][v]);
    if (bias) {
        FNN_UNROLL for (int v = 0; v < NV; v++) {
            VT bb = VLOADU(bias + v * VLEN);
            FNN_UNROLL for (int i = 0; i < MR; i++)
                acc[i][v] = VADD(acc[i][v], bb);
        }
    }
    VT s = VSET1(slope);
    FNN_UNROLL for (int i = 0; i < MR; i++) {
        FNN_UNROLL for (int v = 0; v < NV; v++) {
            VT x = acc[i][v];
            switch (act) {
            /* max returns its second operand for NaN, matching x > 0 ? x : 0. */
            case FNN_ACT_RELU: x = VMAX(x, VZERO()); break;
            case FNN_ACT_LEAKY_RELU: x = VSEL_LT(VZERO(), x, x, VMUL(x, s)); break;
            case FNN_ACT_SIGMOID: x = FNN_UFN(_sigmoid)(x); break;
            case FNN_ACT_TANH: x = FNN_UFN(_tanh)(x); break;
            default: break;
            }
            VSTOREU(c + i * rsc + v * VLEN, x);
        }
    }
}

#undef FNN_UNROLL
#undef FNN_UCAT_
#undef FNN_UCAT
#undef FNN_UFN
#undef T
#undef VT
#undef VLEN
#undef MR
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
