/* Kernels of the toolbox layers (Dropout, BatchNorm1d, Maxout, Standardize): one templated
 * source (layers_impl.h) instantiated for float and double, dispatched on fnn_dtype here. */
#include <math.h>
#include "kernel_common.h"

/* Per-feature statistics are computed over chunks of this many columns: wide enough for the
 * inner loop to vectorise, narrow enough to give threads work and keep the per-chunk
 * accumulators on the stack. */
#define FNN_COL_CHUNK 64

#define T float
#define SFX f32
#include "layers_impl.h"
#undef T
#undef SFX

#define T double
#define SFX f64
#include "layers_impl.h"
#undef T
#undef SFX

#define DISPATCH(name, ...) \
    (dt == FNN_F32 ? name##_f32(__VA_ARGS__) : name##_f64(__VA_ARGS__))

void fnn_mask_scale(fnn_dtype dt, ptrdiff_t n, const void *x, const uint8_t *mask, double scale,
                    void *y)
{
    DISPATCH(mask_scale, n, x, mask, scale, y);
}

void fnn_column_moments(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *mean,
                        void *var)
{
    DISPATCH(column_moments, m, n, x, mean, var);
}

void fnn_batchnorm_train(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x,
                         const void *gamma, const void *beta, double eps, double momentum,
                         void *running_mean, void *running_var, void *y, void *save_mean,
                         void *save_invstd)
{
    DISPATCH(batchnorm_train, m, n, x, gamma, beta, eps, momentum, running_mean, running_var, y,
             save_mean, save_invstd);
}

void fnn_batchnorm_eval(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, const void *gamma,
                        const void *beta, double eps, const void *running_mean,
                        const void *running_var, void *y)
{
    DISPATCH(batchnorm_eval, m, n, x, gamma, beta, eps, running_mean, running_var, y);
}

void fnn_batchnorm_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x,
                            const void *save_mean, const void *save_invstd, const void *gamma,
                            const void *dy, void *dx, void *dgamma, void *dbeta)
{
    DISPATCH(batchnorm_backward, m, n, x, save_mean, save_invstd, gamma, dy, dx, dgamma, dbeta);
}

void fnn_maxout_forward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces,
                        const void *z, void *y, int64_t *argmax)
{
    DISPATCH(maxout_forward, m, units, pieces, z, y, argmax);
}

void fnn_maxout_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces,
                         const void *dy, const int64_t *argmax, void *dz)
{
    DISPATCH(maxout_backward, m, units, pieces, dy, argmax, dz);
}

void fnn_standardize(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, const void *mean,
                     const void *std, void *y)
{
    DISPATCH(standardize, m, n, x, mean, std, y);
}
