/* Optimizer update kernels and gradient-norm helpers: one templated source (optim_impl.h)
 * instantiated per type and ISA by kernel_instances.h, dispatched here. */
#include <math.h>
#include <string.h>

#define FNN_IMPL "optim_impl.h"
#include "kernel_instances.h"

void fnn_sgd_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *buf, double lr,
                  double momentum, double dampening, int nesterov, double weight_decay,
                  int first)
{
    FNN_DISPATCH(sgd_step, n, p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first);
}

void fnn_adagrad_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *sum, double clr,
                      double weight_decay, double eps)
{
    FNN_DISPATCH(adagrad_step, n, p, g, sum, clr, weight_decay, eps);
}

void fnn_rmsprop_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *square_avg,
                      void *grad_avg, void *momentum_buffer, double lr, double alpha, double eps,
                      double weight_decay, double momentum)
{
    FNN_DISPATCH(rmsprop_step, n, p, g, square_avg, grad_avg, momentum_buffer, lr, alpha, eps,
             weight_decay, momentum);
}

double fnn_adam_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *exp_avg,
                     void *exp_avg_sq, double lr, double beta1, double beta2, double eps,
                     double weight_decay, int decoupled, double step, int want_sum_squares)
{
    return FNN_DISPATCH(adam_step, n, p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                        weight_decay, decoupled, step, want_sum_squares);
}

double fnn_sum_squares(fnn_dtype dt, ptrdiff_t n, const void *x)
{
    return FNN_DISPATCH(sum_squares, n, x);
}

void fnn_scale(fnn_dtype dt, ptrdiff_t n, void *x, double alpha)
{
    FNN_DISPATCH(scale, n, x, alpha);
}
