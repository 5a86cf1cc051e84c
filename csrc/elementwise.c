/* Elementwise, loss and update kernels: one templated source (elementwise_impl.h)
 * instantiated for float and double, dispatched on fnn_dtype here. */
#include <math.h>
#include <string.h>
#include "kernel_common.h"

#define T float
#define SFX f32
#define EXP expf
#define LOG logf
#define LOG1P log1pf
#define TANH tanhf
#define UINT uint32_t
#define EXP_MASK UINT32_C(0x7f800000)
#include "elementwise_impl.h"
#undef T
#undef SFX
#undef EXP
#undef LOG
#undef LOG1P
#undef TANH
#undef UINT
#undef EXP_MASK

#define T double
#define SFX f64
#define EXP exp
#define LOG log
#define LOG1P log1p
#define TANH tanh
#define UINT uint64_t
#define EXP_MASK UINT64_C(0x7ff0000000000000)
#include "elementwise_impl.h"
#undef T
#undef SFX
#undef EXP
#undef LOG
#undef LOG1P
#undef TANH
#undef UINT
#undef EXP_MASK

#define DISPATCH(name, ...) \
    (dt == FNN_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

void fnn_act_forward(fnn_dtype dt, ptrdiff_t n, int act, double slope, const void *x, void *y)
{
    DISPATCH(act_forward, n, act, slope, x, y);
}

void fnn_act_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, int act, double slope,
                      const void *src, const void *dy, void *dx, void *dbias)
{
    DISPATCH(act_backward, m, n, act, slope, src, dy, dx, dbias);
}

void fnn_add_bias(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, const void *bias, void *y)
{
    DISPATCH(add_bias, m, n, x, bias, y);
}

void fnn_column_sum(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *out)
{
    DISPATCH(column_sum, m, n, x, out);
}

void fnn_softmax(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *y)
{
    DISPATCH(softmax, m, n, x, y);
}

double fnn_softmax_xent_labels(fnn_dtype dt, ptrdiff_t m, ptrdiff_t k, const void *logits,
                               const int64_t *labels, void *grad, double grad_scale)
{
    return DISPATCH(softmax_xent_labels, m, k, logits, labels, grad, grad_scale);
}

double fnn_softmax_xent_probs(fnn_dtype dt, ptrdiff_t m, ptrdiff_t k, const void *logits,
                              const void *probs, void *grad, double grad_scale)
{
    return DISPATCH(softmax_xent_probs, m, k, logits, probs, grad, grad_scale);
}

double fnn_bce_logits(fnn_dtype dt, ptrdiff_t n, const void *x, const void *t, void *grad,
                      double grad_scale)
{
    return DISPATCH(bce_logits, n, x, t, grad, grad_scale);
}

double fnn_mse(fnn_dtype dt, ptrdiff_t n, const void *x, const void *t, void *grad,
               double grad_scale)
{
    return DISPATCH(mse, n, x, t, grad, grad_scale);
}

void fnn_sgd_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *buf, double lr,
                  double momentum, double dampening, int nesterov, double weight_decay,
                  int first)
{
    DISPATCH(sgd_step, n, p, g, buf, lr, momentum, dampening, nesterov, weight_decay, first);
}

void fnn_softmax_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *y, const void *dy,
                          void *dx)
{
    DISPATCH(softmax_backward, m, n, y, dy, dx);
}

double fnn_penalty(fnn_dtype dt, ptrdiff_t n, const void *w, void *g, double l1, double l2)
{
    return DISPATCH(penalty, n, w, g, l1, l2);
}

int fnn_all_finite(fnn_dtype dt, ptrdiff_t n, const void *x)
{
    return DISPATCH(all_finite, n, x);
}
