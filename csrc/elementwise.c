/* Elementwise, loss and update kernels: one templated source (elementwise_impl.h)
 * instantiated per type and ISA by kernel_instances.h, dispatched here. */
#include <float.h>
#include <math.h>
#include <string.h>

#define FNN_IMPL "elementwise_impl.h"
#include "exp_taylor.h"
#include "kernel_instances.h"

void fnn_act_forward(fnn_dtype dt, ptrdiff_t n, int act, double slope, const void *x, void *y)
{
    FNN_DISPATCH(act_forward, n, act, slope, x, y);
}

void fnn_act_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, int act, double slope,
                      const void *src, const void *dy, void *dx, void *dbias)
{
    FNN_DISPATCH(act_backward, m, n, act, slope, src, dy, dx, dbias);
}

void fnn_add_bias(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, const void *bias, void *y)
{
    FNN_DISPATCH(add_bias, m, n, x, bias, y);
}

void fnn_column_sum(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *out)
{
    FNN_DISPATCH(column_sum, m, n, x, out);
}

void fnn_softmax(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *y)
{
    FNN_DISPATCH(softmax, m, n, x, y);
}

double fnn_softmax_xent_labels(fnn_dtype dt, ptrdiff_t m, ptrdiff_t k, const void *logits,
                               const int64_t *labels, void *grad, double grad_scale)
{
    return FNN_DISPATCH(softmax_xent_labels, m, k, logits, labels, grad, grad_scale);
}

double fnn_softmax_xent_probs(fnn_dtype dt, ptrdiff_t m, ptrdiff_t k, const void *logits,
                              const void *probs, void *grad, double grad_scale)
{
    return FNN_DISPATCH(softmax_xent_probs, m, k, logits, probs, grad, grad_scale);
}

double fnn_bce_logits(fnn_dtype dt, ptrdiff_t n, const void *x, const void *t, void *grad,
                      double grad_scale)
{
    return FNN_DISPATCH(bce_logits, n, x, t, grad, grad_scale);
}

double fnn_mse(fnn_dtype dt, ptrdiff_t n, const void *x, const void *t, void *grad,
               double grad_scale)
{
    return FNN_DISPATCH(mse, n, x, t, grad, grad_scale);
}

void fnn_softmax_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *y, const void *dy,
                          void *dx)
{
    FNN_DISPATCH(softmax_backward, m, n, y, dy, dx);
}

double fnn_penalty(fnn_dtype dt, ptrdiff_t n, const void *w, void *g, double l1, double l2)
{
    return FNN_DISPATCH(penalty, n, w, g, l1, l2);
}

int fnn_all_finite(fnn_dtype dt, ptrdiff_t n, const void *x)
{
    return FNN_DISPATCH(all_finite, n, x);
}
