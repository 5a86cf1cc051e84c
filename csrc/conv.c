/* fnn_conv2d_forward and fnn_conv2d_backward (fastnn.h): per image, im2col and GEMMs, one
 * templated source (conv_impl.h) instantiated per type and ISA by kernel_instances.h. */
#include <stdatomic.h>

#include "fastnn.h"
#include "scratch.h"

/* Images per backward chunk: the weight gradient is summed per chunk and the chunks'
 * sums added in order, so the chunks, not the threads, fix the summation order. */
#define CONV_CHUNKS 16
/* Partial sums of the bias gradient's rows (F(row_sum) in conv_impl.h). */
#define CONV_LANES 16
/* Below this many multiply-adds a call stays on the calling thread. */
#define CONV_MIN_FLOPS_PER_THREAD 1e6

/* A 1x1 kernel at stride 1 without padding reads the image itself as its patches. */
static int conv_pointwise(const fnn_conv2d_geom *g)
{
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 &&
           g->oh == g->h && g->ow == g->w;
}

/* From this many taps (K = c / groups * kh * kw) a convolution's patches are read in place
 * from the image by the GEMM's micro-kernel (fnn_gemm_gather) instead of being copied out
 * first (im2col): no pass over the largest operand, no packing of it, and the backward
 * reads the image again instead of kept patches. Below it the products are too shallow or
 * too narrow for that to pay: the copy, with the tile of output channels times pixels, is
 * faster (AMD EPYC Zen 3, float32, batch 64, copied -> read in place: 16->32 5x5 on 14x14
 * padding 2 forward 7.1 -> 3.9 ms, weight gradient 6.1 -> 4.0 ms; 32->64 3x3 on 26x26
 * forward 20.1 -> 15.5 ms, weight gradient 18.6 -> 15.8 ms; 6->16 5x5 on 14x14 forward
 * 0.95 -> 0.45 ms; but 1->32 3x3 on 28x28 forward 0.69 -> 0.95 ms and 1->6 5x5 padding 2
 * weight gradient 0.31 -> 0.82 ms). */
static _Atomic ptrdiff_t conv_implicit_min_k = 64;

ptrdiff_t fnn_conv2d_set_implicit_min_k(ptrdiff_t k)
{
    return atomic_exchange(&conv_implicit_min_k, k);
}

/* Output rows per slice of an image: a bound on the patches' memory per thread for large
 * images. Below it an image is one slice: the GEMM blocks for the caches itself, and
 * smaller slices measured slower (AMD EPYC Zen 3: 16->32 5x5 on 14x14, batch 64, forward
 * 6.5 ms whole, 7.2 ms in 96 KiB slices, 9.0 ms in 32 KiB). */
#define CONV_SLICE_BYTES (4 << 20)

static ptrdiff_t conv_slice_rows(const fnn_conv2d_geom *g, size_t elem)
{
    ptrdiff_t per_row = (g->c / g->groups) * g->kh * g->kw * g->ow * (ptrdiff_t)elem;
    ptrdiff_t rows = CONV_SLICE_BYTES / per_row;
    return rows < 1 ? 1 : rows > g->oh ? g->oh : rows;
}

/* Whether the patches are read in place (fnn_gemm_gather), never copied out: enough taps,
 * and a padded copy of the image (F(padded) in conv_impl.h) no larger than the patch
 * matrix it stands for (strides beyond the kernel skip most of the image). Enough taps is
 * conv_implicit_min_k, or a quarter of it when the group's output channels, the product's
 * columns, come in whole 16s, which fill every GEMM tile of either type without padding
 * (AMD EPYC Zen 4, float32, batch 64, copied -> read in place, forward and backward:
 * conv16-32's 1->16 5x5 layer on 28x28 with padding 2, 25 taps, 2.83 -> 2.00 ms, its
 * training step 5-6% faster on one thread and 8-10% on two; 3->32 and 3->64 3x3 on 32x32
 * with padding 1, 27 taps, 5-6% faster, 3->16 within noise; with 9 taps, 1->16 and 1->32
 * 3x3, within noise or slower, hence the floor). */
static int conv_implicit(const fnn_conv2d_geom *g)
{
    ptrdiff_t K = (g->c / g->groups) * g->kh * g->kw, min_k = atomic_load(&conv_implicit_min_k);
    double hp = (double)(g->oh - 1) * (double)g->sh + (double)((g->kh - 1) * g->dh + 1);
    double wp = (double)(g->ow - 1) * (double)g->sw + (double)((g->kw - 1) * g->dw + 1);
    if ((g->o / g->groups) % 16 == 0)
        min_k /= 4;
    return !conv_pointwise(g) && K >= min_k &&
           (double)(g->c / g->groups) * hp * wp <= (double)K * (double)(g->oh * g->ow);
}

/* Whether the input gradient is computed as a convolution of dz (conv_impl.h,
 * F(dz_padded)) rather than as dcols = W^T dz scattered back by col2im: at stride 1, for
 * the convolutions whose patches are read in place, when it costs no more multiply-adds
 * (an input no larger than the output: "same" padding) and the group's input channels fill
 * at least half a tile's columns (AMD EPYC Zen 3, float32, batch 64: 16->32 5x5 on 14x14
 * with padding 2, input gradient 7.2 -> 4.0 ms). */
static int conv_transposed_dx(const fnn_conv2d_geom *g)
{
    return conv_implicit(g) && g->sh == 1 && g->sw == 1 && g->h * g->w <= g->oh * g->ow &&
           g->c / g->groups >= 8;
}

/* Whether copied-out patches are copied in rows of the padded image's width (conv_impl.h,
 * F(im2col_wide)): at stride 1 each tap's patches are then one run of the padded image
 * instead of bounds and a short copy per output row, but the products run over the wider
 * rows, the output (forward) and dz (weight gradient) are copied between the two widths,
 * and the patches are rebuilt in the backward rather than kept. That pays with at least
 * twice as many taps as output channels (AMD EPYC Zen 4, batch 64, copied in rows of ow ->
 * of wp: 1->6 5x5 on 28x28 with padding 2, 25 taps, forward 1.24-1.28x faster in float32,
 * 1.05x in float64, backward against rebuilt patches 1.04-1.17x and 0.98x, and LeNet-5's
 * step, which kept them, 3.7 -> 3.2 ms; 3->12 3x3, 27 taps, forward even; 2->24 and 1->32
 * 3x3, 18 and 9 taps, 12-15% slower). */
static int conv_wide(const fnn_conv2d_geom *g)
{
    return !conv_pointwise(g) && !conv_implicit(g) && g->sh == 1 && g->sw == 1 &&
           (g->c / g->groups) * g->kh * g->kw >= 2 * (g->o / g->groups);
}

int fnn_conv2d_keeps_patches(const fnn_conv2d_geom *g)
{
    return !conv_pointwise(g) && !conv_implicit(g) && !conv_wide(g);
}

static int conv_threads(const fnn_conv2d_geom *g)
{
    double flops = 2.0 * (double)g->n * (double)(g->o * g->oh * g->ow) *
                   (double)(g->c / g->groups * g->kh * g->kw);
    int nt = fnn_get_num_threads();
    if (nt > flops / CONV_MIN_FLOPS_PER_THREAD)
        nt = (int)(flops / CONV_MIN_FLOPS_PER_THREAD);
    return nt > 1 ? nt : 1;
}

/* The patch rows are a few dozen elements: GCC would turn their copy loops into memcpy and
 * memset calls, one per row, whose overhead is a large part of copying so few (in LeNet-5's
 * step the memmove calls took 8% beside the 13% of the patch copies themselves). */
#if defined(__GNUC__) && !defined(__clang__)
#define FNN_NO_LIBCALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define FNN_NO_LIBCALLS
#endif

#define FNN_IMPL "conv_impl.h"
#include "kernel_instances.h"

int fnn_conv2d_forward(fnn_dtype dt, const fnn_conv2d_geom *g, const void *x,
                       const void *weight, const void *bias, int act, double act_param,
                       void *y, void *patches)
{
    return FNN_DISPATCH(conv2d_forward, g, x, weight, bias, act, act_param, y, patches);
}

int fnn_conv2d_backward(fnn_dtype dt, const fnn_conv2d_geom *g, const void *x,
                        const void *weight, const void *dy, int act, double act_param,
                        const void *y, const void *patches, void *dx, void *dweight,
                        void *dbias)
{
    return FNN_DISPATCH(conv2d_backward, g, x, weight, dy, act, act_param, y, patches, dx,
                        dweight, dbias);
}
