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

#define DISPATCH(name, ...) \
    (dt == FNN_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

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
