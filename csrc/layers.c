/* Kernels of the toolbox layers (Dropout, BatchNorm1d and 2d, Maxout, Standardize): one templated
 * source (layers_impl.h) instantiated per type and ISA by kernel_instances.h, dispatched here. */
#include <math.h>

/* Per-feature statistics are computed over chunks of this many columns: wide enough for the
 * inner loop to vectorise, narrow enough to keep the per-chunk accumulators on the stack. */
#define FNN_COL_CHUNK 64

/* A channel's runs are summed in this many partial sums, added in a fixed order at the end:
 * the loop then vectorises without the compiler reordering a floating-point sum. */
#define FNN_LANES 8

/* The channels c0..c1 of batch-norm work item `item` (F(bn_run)). */
#define FNN_BN_CHUNK(A, item)                                                                \
    const ptrdiff_t c0 = (item) * (A)->w, c1 = c0 + (A)->w < (A)->n ? c0 + (A)->w : (A)->n

#define FNN_IMPL "layers_impl.h"
#include "kernel_instances.h"

void fnn_mask_scale(fnn_dtype dt, ptrdiff_t n, const void *x, const uint8_t *mask, double scale,
                    void *y)
{
    FNN_DISPATCH(mask_scale, n, x, mask, scale, y);
}

void fnn_column_moments(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *mean,
                        void *var)
{
    FNN_DISPATCH(column_moments, m, n, x, mean, var);
}

void fnn_batchnorm_train(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                         const void *gamma, const void *beta, double eps, double momentum,
                         void *running_mean, void *running_var, void *y, void *save_mean,
                         void *save_invstd)
{
    FNN_DISPATCH(batchnorm_train, m, n, s, x, gamma, beta, eps, momentum,
                 running_mean, running_var, y, save_mean, save_invstd);
}

void fnn_batchnorm_eval(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                        const void *gamma, const void *beta, double eps,
                        const void *running_mean, const void *running_var, void *y)
{
    FNN_DISPATCH(batchnorm_eval, m, n, s, x, gamma, beta, eps, running_mean, running_var, y);
}

void fnn_batchnorm_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                            const void *save_mean, const void *save_invstd, const void *gamma,
                            const void *dy, void *dx, void *dgamma, void *dbeta)
{
    FNN_DISPATCH(batchnorm_backward, m, n, s, x, save_mean, save_invstd, gamma,
                 dy, dx, dgamma, dbeta);
}

void fnn_maxout_forward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces,
                        const void *z, void *y, int64_t *argmax)
{
    FNN_DISPATCH(maxout_forward, m, units, pieces, z, y, argmax);
}

void fnn_maxout_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces,
                         const void *dy, const int64_t *argmax, void *dz)
{
    FNN_DISPATCH(maxout_backward, m, units, pieces, dy, argmax, dz);
}

void fnn_standardize(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, const void *mean,
                     const void *std, void *y)
{
    FNN_DISPATCH(standardize, m, n, x, mean, std, y);
}
