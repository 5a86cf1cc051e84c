/* SIMD micro-kernel template, included by gemm_x86.c once per (ISA, type).
 *
 * The includer defines:
 *   T, VT, VLEN        element type, vector type, lanes per vector
 *   MR, NV             tile is MR rows x NV vectors (NR = NV * VLEN)
 *   UKR, TARGET        function name, target attribute string
 *   VZERO() VSET1(x) VLOADU(p) VSTOREU(p, v) VADD(a, b) VMUL(a, b) VMAX(a, b)
 *   VFMA(a, b, c)      a * b + c, fused
 *   VSELPOS(x, y)      x > 0 ? x : y, lane-wise
 * and this file undefines them all, so the next inclusion starts clean.
 *
 * The accumulators are arrays indexed by constants inside fully unrolled loops, so
 * the compiler keeps them in registers: MR * NV + NV + 1 must not exceed the
 * register file (16 ymm / 32 zmm). */

#define FNN_UNROLL _Pragma("GCC unroll 32")

__attribute__((target(TARGET)))
static void UKR(ptrdiff_t k, const T *restrict a, const T *restrict b, T *restrict c,
                ptrdiff_t rsc, const T *restrict bias, int loadc, int act, T slope)
{
    VT acc[MR][NV];
    FNN_UNROLL for (int i = 0; i < MR; i++)
        FNN_UNROLL for (int v = 0; v < NV; v++)
            acc[i][v] = VZERO();

#ifdef XPF
    FNN_UNROLL for (int i = 0; i < MR; i++) {
        __builtin_prefetch(c + i * rsc);
        __builtin_prefetch(c + i * rsc + NV * VLEN - 1);
    }
#endif
#ifdef XUN
    _Pragma("GCC unroll 4")
#endif
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

    /* Same operation order as the scalar epilogue in gemm_impl.h: (c + ab) + bias. */
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
    if (act == FNN_ACT_RELU) {
        /* max returns its second operand for NaN input, matching x > 0 ? x : 0. */
        FNN_UNROLL for (int i = 0; i < MR; i++)
            FNN_UNROLL for (int v = 0; v < NV; v++)
                acc[i][v] = VMAX(acc[i][v], VZERO());
    } else if (act == FNN_ACT_LEAKY_RELU) {
        VT s = VSET1(slope);
        FNN_UNROLL for (int i = 0; i < MR; i++)
            FNN_UNROLL for (int v = 0; v < NV; v++)
                acc[i][v] = VSELPOS(acc[i][v], VMUL(acc[i][v], s));
    }
    FNN_UNROLL for (int i = 0; i < MR; i++)
        FNN_UNROLL for (int v = 0; v < NV; v++)
            VSTOREU(c + i * rsc + v * VLEN, acc[i][v]);
}

#undef FNN_UNROLL
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
#undef VMUL
#undef VMAX
#undef VFMA
#undef VSELPOS
