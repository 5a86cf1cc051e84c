/* Optimizer update kernels and gradient-norm helpers: one templated source (optim_impl.h)
 * instantiated for float and double, dispatched on fnn_dtype here. */
#include <math.h>
#include "kernel_common.h"

#define T float
#define SFX f32
#define SQRT sqrtf
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT

#define T double
#define SFX f64
#define SQRT sqrt
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT

/* The same kernels built for AVX2 + FMA (a pragma region, so the file needs no -m flags):
 * Adam, RMSprop and Adagrad wait on square roots and divisions, which run twice as wide. */
#if defined(__x86_64__) && defined(__GNUC__)
#define FNN_OPTIM_AVX2 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define T float
#define SFX f32_avx2
#define SQRT sqrtf
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT

#define T double
#define SFX f64_avx2
#define SQRT sqrt
#include "optim_impl.h"
#undef T
#undef SFX
#undef SQRT
#pragma GCC pop_options
#endif

/* fnn_get_isa() honours FASTNN_ISA, so forcing "generic" runs the baseline build. */
#ifdef FNN_OPTIM_AVX2
#define DISPATCH(name, ...)                                                              \
    (fnn_get_isa() >= FNN_ISA_AVX2                                                      \
         ? (dt == FNN_F32 ? name##_f32_avx2(__VA_ARGS__) : name##_f64_avx2(__VA_ARGS__)) \
         : (dt == FNN_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__)))
#else
#define DISPATCH(name, ...) \
    (dt == FNN_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))
#endif

void fnn_adagrad_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *sum, double clr,
                      double weight_decay, double eps)
{
    DISPATCH(adagrad_step, n, p, g, sum, clr, weight_decay, eps);
}

void fnn_rmsprop_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *square_avg,
                      void *grad_avg, void *momentum_buffer, double lr, double alpha, double eps,
                      double weight_decay, double momentum)
{
    DISPATCH(rmsprop_step, n, p, g, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
             weight_decay, momentum);
}

void fnn_adam_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *exp_avg,
                   void *exp_avg_sq, double lr, double beta1, double beta2, double eps,
                   double weight_decay, int decoupled, double step)
{
    DISPATCH(adam_step, n, p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
             decoupled, step);
}

double fnn_sum_squares(fnn_dtype dt, ptrdiff_t n, const void *x)
{
    return DISPATCH(sum_squares, n, x);
}

void fnn_scale(fnn_dtype dt, ptrdiff_t n, void *x, double alpha)
{
    DISPATCH(scale, n, x, alpha);
}
