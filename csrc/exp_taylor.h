/* The constants of fastnn's two e^x for x <= 0, the GEMM epilogue's in intrinsics
 * (gemm_ukr_simd.h) and the other kernels' in plain C (elementwise_impl.h):
 * e^x = 2^n e^r with n = round(x log2 e), r = x - n ln 2 (ln 2 split so that n * hi is
 * exact), e^r by its Taylor series: degree 7 for float (the last 8 coefficients), 13 for
 * double. */
#ifndef FASTNN_EXP_TAYLOR_H
#define FASTNN_EXP_TAYLOR_H

/* 1/13!, 1/12!, ..., 1/1!, 1/0! */
static const double fnn_exp_inv_fact[14] = {
    1.6059043836821613e-10, 2.08767569878681e-09, 2.505210838544172e-08,
    2.755731922398589e-07, 2.7557319223985893e-06, 2.48015873015873e-05,
    1.984126984126984e-04, 1.388888888888889e-03, 8.333333333333333e-03,
    4.1666666666666664e-02, 0.16666666666666666, 0.5, 1.0, 1.0};
#define FNN_EXP_FIRST(T) (sizeof(T) == 4 ? 6 : 0) /* the series' first coefficient */
/* Below this e^x rounds to zero. */
#define FNN_EXP_LOWEST(T) (sizeof(T) == 4 ? (T)-104 : (T)-746)
#define FNN_LOG2E 1.4426950408889634
#define FNN_LN2_HI 0.693359375
#define FNN_LN2_LO 2.12194440054690583e-4 /* ln 2 = HI - LO */

/* tanh's odd Taylor series tanh x = x + x^3 (c[10] + x^2 (c[9] + ...)), used below |x| = 0.3
 * where (1 - e) / (1 + e) with e = e^-2|x| loses digits to cancellation: from c[6] for float
 * (through x^11), from c[0] for double (through x^23). */
static const double fnn_tanh_coef[11] = {
    -3.927832388331683e-05, 9.691537956929451e-05, -2.3912911424355248e-04,
    5.90027440945586e-04, -1.4558343870513183e-03, 3.592128036572481e-03,
    -8.863235529902197e-03, 2.1869488536155203e-02, -5.396825396825397e-02,
    0.13333333333333333, -0.3333333333333333};
#define FNN_TANH_FIRST(T) (sizeof(T) == 4 ? 6 : 0)
#define FNN_TANH_SMALL 0.3

#endif
