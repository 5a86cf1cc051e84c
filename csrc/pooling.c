/* Kernels of the pooling layers (MaxPool2d, AvgPool2d): one templated source
 * (pooling_impl.h) instantiated per type and ISA by kernel_instances.h, dispatched here. */

/* The planes p0..p1 of pooling work item `item` (F(pool_run)). */
#define FNN_POOL_PLANES(A, item)                                                             \
    const ptrdiff_t p0 = (item) * (A)->per,                                                  \
                    p1 = p0 + (A)->per < (A)->planes ? p0 + (A)->per : (A)->planes

/* Outputs per block of the max-pooling rows' vectorised path. */
#define FNN_POOL_BLOCK 64

#define FNN_IMPL "pooling_impl.h"
#include "kernel_instances.h"

void fnn_maxpool2d_forward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g, const void *x,
                           void *y, int64_t *argmax)
{
    FNN_DISPATCH(maxpool2d_forward, planes, g, x, y, argmax);
}

void fnn_maxpool2d_backward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g,
                            const void *dy, const int64_t *argmax, void *dx)
{
    FNN_DISPATCH(maxpool2d_backward, planes, g, dy, argmax, dx);
}

void fnn_avgpool2d_forward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g,
                           int count_include_pad, const void *x, void *y)
{
    FNN_DISPATCH(avgpool2d_forward, planes, g, count_include_pad, x, y);
}

void fnn_avgpool2d_backward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g,
                            int count_include_pad, const void *dy, void *dx)
{
    FNN_DISPATCH(avgpool2d_backward, planes, g, count_include_pad, dy, dx);
}
