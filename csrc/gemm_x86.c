/* x86 GEMM micro-kernels: AVX2+FMA and AVX-512F, float and double, instantiated
 * from gemm_ukr_simd.h. Each function carries its own target attribute, so this
 * file builds with baseline flags; the driver only calls a kernel after
 * fnn_get_isa() has confirmed the CPU and OS support it. */
#include "gemm_kernels.h"

#ifdef FNN_X86
#include <immintrin.h>

#include "fastnn.h"

/* Lane sums for the skinny kernels, in a fixed order. */
__attribute__((target("avx2,fma"))) static inline float hsum_avx2_f32(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) static inline double hsum_avx2_f64(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}
__attribute__((target("avx512f"))) static inline float hsum_avx512_f32(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
__attribute__((target("avx512f"))) static inline double hsum_avx512_f64(__m512d v)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

/* Transposing packs: W source rows, `es` elements apart and contiguous along p, become
 * len runs of W values (dst[p*W + j] = src[j*es + p]). Blocks of 8 x 8 floats (4 x 4
 * doubles) are transposed in registers; element by element this copy costs as much as
 * the multiply for the x @ W^T and dY @ W layouts at small batch. */

/* rb (constant after inlining) rows of an 8 x 8 float block: row j at src + j*es,
 * column q of the block to dst + q*W. */
__attribute__((target("avx2"), always_inline)) static inline void
tr8_f32(float *restrict dst, const float *src, ptrdiff_t es, int W, const int rb)
{
    __m256 r[8];
    for (int j = 0; j < 8; j++)
        r[j] = j < rb ? _mm256_loadu_ps(src + j * es) : _mm256_setzero_ps();
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    __m256 o[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                   _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                   _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                   _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
    for (int q = 0; q < 8; q++) {
        float *d = dst + q * W;
        if (rb == 8)
            _mm256_storeu_ps(d, o[q]);
        else if (rb == 4)
            _mm_storeu_ps(d, _mm256_castps256_ps128(o[q]));
        else { /* rb == 6 */
            _mm_storeu_ps(d, _mm256_castps256_ps128(o[q]));
            _mm_storel_pi((__m64 *)(d + 4), _mm256_extractf128_ps(o[q], 1));
        }
    }
}

/* The same for 4 x 4 doubles, rb = 4 or 2. */
__attribute__((target("avx2"), always_inline)) static inline void
tr4_f64(double *restrict dst, const double *src, ptrdiff_t es, int W, const int rb)
{
    __m256d r[4];
    for (int j = 0; j < 4; j++)
        r[j] = j < rb ? _mm256_loadu_pd(src + j * es) : _mm256_setzero_pd();
    __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    __m256d o[4] = {_mm256_permute2f128_pd(t0, t2, 0x20), _mm256_permute2f128_pd(t1, t3, 0x20),
                    _mm256_permute2f128_pd(t0, t2, 0x31), _mm256_permute2f128_pd(t1, t3, 0x31)};
    for (int q = 0; q < 4; q++) {
        if (rb == 4)
            _mm256_storeu_pd(dst + q * W, o[q]);
        else
            _mm_storeu_pd(dst + q * W, _mm256_castpd256_pd128(o[q]));
    }
}

/* Every W the kernels use is a sum of the block heights above: 6 = 4 + 2 doubles, 6 floats
 * in one partial block, 12 = 8 + 4 floats. */
#define FNN_PACK_TR(SUF, T, BL, TR, ...)                                                   \
    __attribute__((target("avx2"))) static void pack_tr_avx2_##SUF(                        \
        T *restrict dst, const T *src, ptrdiff_t es, ptrdiff_t len, int W)                 \
    {                                                                                      \
        ptrdiff_t p = 0;                                                                   \
        for (; p + BL <= len; p += BL)                                                     \
            for (int j0 = 0; j0 < W; j0 += BL) {                                           \
                const T *s = src + j0 * es + p;                                            \
                T *d = dst + p * W + j0;                                                   \
                switch (W - j0) {                                                          \
                    __VA_ARGS__                                                            \
                default: TR(d, s, es, W, BL); break;                                       \
                }                                                                          \
            }                                                                              \
        for (; p < len; p++)                                                               \
            for (int j = 0; j < W; j++)                                                    \
                dst[p * W + j] = src[j * es + p];                                          \
    }
FNN_PACK_TR(f32, float, 8, tr8_f32, case 6: tr8_f32(d, s, es, W, 6); break;
            case 4: tr8_f32(d, s, es, W, 4); break;)
FNN_PACK_TR(f64, double, 4, tr4_f64, case 2: tr4_f64(d, s, es, W, 2); break;)
#undef FNN_PACK_TR

/* Block sizes: the B micro-panel (kc x nr: 16 KiB for AVX2, 24 KiB for AVX-512) stays
 * in a 32 KiB L1d next to the streamed A micro-panel; the packed A block (mc x kc,
 * 110-150 KiB) in L2; the packed B panel (kc x nc) in L3. Within those cache bounds the
 * exact mc and kc matter little (docs/benchmarks.md), so they are not tuned per CPU. */

/* ---- AVX2 + FMA: 6 x 16 float (12 accumulators + 2 B vectors + 1 broadcast), 4 x 16 ---- */
#define T float
#define VT __m256
#define VLEN 8
#define MR 6
#define MRS 4
#define VREGS 16
#define NV 2
#define UKR ukr_avx2_f32
#define TARGET "avx2,fma"
#define VZERO() _mm256_setzero_ps()
#define VSET1(x) _mm256_set1_ps(x)
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps(p, v)
#define VADD(x, y) _mm256_add_ps(x, y)
#define VMUL(x, y) _mm256_mul_ps(x, y)
#define VMAX(x, y) _mm256_max_ps(x, y)
#define VFMA(x, y, z) _mm256_fmadd_ps(x, y, z)
#define VSUB(x, y) _mm256_sub_ps(x, y)
#define VDIV(x, y) _mm256_div_ps(x, y)
#define VROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(n) \
    _mm256_castsi256_ps(_mm256_slli_epi32( \
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define VSEL_LT(x, y, a, b) _mm256_blendv_ps(b, a, _mm256_cmp_ps(x, y, _CMP_LT_OQ))
#define VMASK __m256i
#define VMASK_FIRST(n) \
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define VMLOAD(p, m) _mm256_maskload_ps(p, m)
#define VMSTORE(p, m, v) _mm256_maskstore_ps(p, m, v)
#define VHSUM(v) hsum_avx2_f32(v)
#include "gemm_ukr_simd.h"
const fnn_gemm_cfg_f32 fnn_gemm_avx2_f32 = {6, 16, 4, 144, 256, 4096, ukr_avx2_f32,
                                            ukr_avx2_f32_small, ukr_avx2_f32_rows,
                                            ukr_avx2_f32_ind, ukr_avx2_f32_sknn,
                                            ukr_avx2_f32_sknt, pack_tr_avx2_f32};

/* ---- AVX2 + FMA: 6 x 8 double, 4 x 8 ---- */
#define T double
#define VT __m256d
#define VLEN 4
#define MR 6
#define MRS 4
#define VREGS 16
#define NV 2
#define UKR ukr_avx2_f64
#define TARGET "avx2,fma"
#define VZERO() _mm256_setzero_pd()
#define VSET1(x) _mm256_set1_pd(x)
#define VLOADU(p) _mm256_loadu_pd(p)
#define VSTOREU(p, v) _mm256_storeu_pd(p, v)
#define VADD(x, y) _mm256_add_pd(x, y)
#define VMUL(x, y) _mm256_mul_pd(x, y)
#define VMAX(x, y) _mm256_max_pd(x, y)
#define VFMA(x, y, z) _mm256_fmadd_pd(x, y, z)
#define VSUB(x, y) _mm256_sub_pd(x, y)
#define VDIV(x, y) _mm256_div_pd(x, y)
#define VROUND(x) _mm256_round_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(n) \
    _mm256_castsi256_pd(_mm256_slli_epi64( \
        _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)), \
                         _mm256_set1_epi64x(1023)), 52))
#define VSEL_LT(x, y, a, b) _mm256_blendv_pd(b, a, _mm256_cmp_pd(x, y, _CMP_LT_OQ))
#define VMASK __m256i
#define VMASK_FIRST(n) _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3))
#define VMLOAD(p, m) _mm256_maskload_pd(p, m)
#define VMSTORE(p, m, v) _mm256_maskstore_pd(p, m, v)
#define VHSUM(v) hsum_avx2_f64(v)
#include "gemm_ukr_simd.h"
const fnn_gemm_cfg_f64 fnn_gemm_avx2_f64 = {6, 8, 4, 72, 256, 4096, ukr_avx2_f64,
                                            ukr_avx2_f64_small, ukr_avx2_f64_rows,
                                            ukr_avx2_f64_ind, ukr_avx2_f64_sknn,
                                            ukr_avx2_f64_sknt, pack_tr_avx2_f64};

/* ---- AVX-512F: 12 x 32 float (24 accumulators + 2 B vectors + 1 broadcast of 32), 8 x 32 ---- */
#define T float
#define VT __m512
#define VLEN 16
#define MR 12
#define MRS 8
#define VREGS 32
#define NV 2
#define UKR ukr_avx512_f32
#define TARGET "avx512f"
#define VZERO() _mm512_setzero_ps()
#define VSET1(x) _mm512_set1_ps(x)
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps(p, v)
#define VADD(x, y) _mm512_add_ps(x, y)
#define VMUL(x, y) _mm512_mul_ps(x, y)
#define VMAX(x, y) _mm512_max_ps(x, y)
#define VFMA(x, y, z) _mm512_fmadd_ps(x, y, z)
#define VSUB(x, y) _mm512_sub_ps(x, y)
#define VDIV(x, y) _mm512_div_ps(x, y)
#define VROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(n) _mm512_scalef_ps(_mm512_set1_ps(1), n)
#define VSEL_LT(x, y, a, b) _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, y, _CMP_LT_OQ), b, a)
#define VMASK __mmask16
#define VMASK_FIRST(n) ((__mmask16)((n) >= 16 ? 0xffff : (n) <= 0 ? 0 : (1u << (n)) - 1))
#define VMLOAD(p, m) _mm512_maskz_loadu_ps(m, p)
#define VMSTORE(p, m, v) _mm512_mask_storeu_ps(p, m, v)
#define VHSUM(v) hsum_avx512_f32(v)
#include "gemm_ukr_simd.h"
const fnn_gemm_cfg_f32 fnn_gemm_avx512_f32 = {12, 32, 8, 144, 192, 4096, ukr_avx512_f32,
                                              ukr_avx512_f32_small, ukr_avx512_f32_rows,
                                              ukr_avx512_f32_ind, ukr_avx512_f32_sknn,
                                              ukr_avx512_f32_sknt, pack_tr_avx2_f32};

/* ---- AVX-512F: 12 x 16 double, 8 x 16 ---- */
#define T double
#define VT __m512d
#define VLEN 8
#define MR 12
#define MRS 8
#define VREGS 32
#define NV 2
#define UKR ukr_avx512_f64
#define TARGET "avx512f"
#define VZERO() _mm512_setzero_pd()
#define VSET1(x) _mm512_set1_pd(x)
#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd(p, v)
#define VADD(x, y) _mm512_add_pd(x, y)
#define VMUL(x, y) _mm512_mul_pd(x, y)
#define VMAX(x, y) _mm512_max_pd(x, y)
#define VFMA(x, y, z) _mm512_fmadd_pd(x, y, z)
#define VSUB(x, y) _mm512_sub_pd(x, y)
#define VDIV(x, y) _mm512_div_pd(x, y)
#define VROUND(x) _mm512_roundscale_pd(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define VPOW2(n) _mm512_scalef_pd(_mm512_set1_pd(1), n)
#define VSEL_LT(x, y, a, b) _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, y, _CMP_LT_OQ), b, a)
#define VMASK __mmask8
#define VMASK_FIRST(n) ((__mmask8)((n) >= 8 ? 0xff : (n) <= 0 ? 0 : (1u << (n)) - 1))
#define VMLOAD(p, m) _mm512_maskz_loadu_pd(m, p)
#define VMSTORE(p, m, v) _mm512_mask_storeu_pd(p, m, v)
#define VHSUM(v) hsum_avx512_f64(v)
#include "gemm_ukr_simd.h"
const fnn_gemm_cfg_f64 fnn_gemm_avx512_f64 = {12, 16, 8, 72, 192, 4096, ukr_avx512_f64,
                                              ukr_avx512_f64_small, ukr_avx512_f64_rows,
                                              ukr_avx512_f64_ind, ukr_avx512_f64_sknn,
                                              ukr_avx512_f64_sknt, pack_tr_avx2_f64};

#endif
