/* fastnn C kernels: the only header the Cython floor includes.
 *
 * Conventions shared by every entry point:
 *  - `dt` selects the element type; pointers are `void *` so that one Cython call
 *    serves both dtypes and each kernel has a single templated C source.
 *  - Sizes are ptrdiff_t element counts. Strides are in elements and may be negative.
 *  - Inputs are trusted: the Cython floor has validated dtype, shape, strides and ranges.
 *  - Functions that can fail return 0 on success or a negative FNN_E* code.
 */
#ifndef FASTNN_H
#define FASTNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { FNN_F32 = 0, FNN_F64 = 1 } fnn_dtype;

enum { FNN_OK = 0, FNN_ENOMEM = -1, FNN_EINVAL = -2 };

/* ---- runtime: CPU probe, instruction-set choice, threads ---------------------------- */
typedef enum { FNN_ISA_GENERIC = 0, FNN_ISA_AVX2 = 1, FNN_ISA_AVX512 = 2 } fnn_isa;

int fnn_cpu_isa(void);             /* best ISA this CPU and OS support (cached probe) */
int fnn_get_isa(void);             /* ISA the kernels currently use */
int fnn_set_isa(int isa);          /* FNN_EINVAL if the CPU lacks it; 0 otherwise */
const char *fnn_isa_name(int isa); /* "generic", "avx2", "avx512" */
int fnn_get_num_threads(void);
void fnn_set_num_threads(int n);   /* n >= 1 */

/* The thread pool (pool.c): runs task(ctx, i) for every i in [0, items) on up to `threads`
 * threads, the caller included, and returns when all have run. Items are claimed one at a
 * time, so a thread the OS has not scheduled yet holds up nobody; an item may therefore
 * run on any thread, and must give the same result wherever it runs. */
typedef void (*fnn_task)(void *ctx, ptrdiff_t item);
void fnn_parallel(int threads, ptrdiff_t items, fnn_task task, void *ctx);

/* Single-core float32 FMA throughput limit of `isa` in GFLOP/s, measured (csrc/peak.c);
 * 0 if the CPU lacks it or it is the generic path. Takes about 0.1 s. */
double fnn_fma_peak_gflops(int isa);

/* ---- GEMM with fused epilogue ------------------------------------------------------
 * C[m,n] = act( (accumulate ? C : 0) + A[m,k] @ B[k,n] + bias[n] )
 * A is read as a[i*rsa + j*csa], likewise B and C: any layout, transposes are strides.
 * bias may be NULL. act is an fnn_act; act_param is LeakyReLU's negative slope.
 * k == 0 is valid (the product is zero). Returns FNN_OK or FNN_ENOMEM. */
typedef enum {
    FNN_ACT_IDENTITY = 0, FNN_ACT_RELU = 1, FNN_ACT_LEAKY_RELU = 2,
    FNN_ACT_SIGMOID = 3, FNN_ACT_TANH = 4
} fnn_act;

int fnn_gemm(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
             const void *a, ptrdiff_t rsa, ptrdiff_t csa,
             const void *b, ptrdiff_t rsb, ptrdiff_t csb,
             void *c, ptrdiff_t rsc, ptrdiff_t csc,
             int accumulate, const void *bias, int act, double act_param);
uint64_t fnn_gemm_flop_count(void); /* sum of 2*m*n*k over every GEMM call so far */
/* Takes off the count the part of a product spent on columns of zeros its caller added
 * (a convolution's rows widened to runs of the image, conv_impl.h), so that the count
 * stays the work of the products as the caller means them. */
void fnn_gemm_flop_discount(uint64_t flops);

/* A patch matrix read in place (an implicit im2col): element (r, c) at
 * base[rows[r] + cols[c]]. */
typedef struct {
    const ptrdiff_t *rows, *cols;
} fnn_gather;

/* B (k x n, element (p, j) at b[p*rsb + j*csb]) packed into dst, fnn_gemm_packed_b_size
 * bytes, the way fnn_gemm_gather reads it with the same instruction set: an operand used
 * by many products (a convolution's weights, once per image) is packed once. */
size_t fnn_gemm_packed_b_size(fnn_dtype dt, ptrdiff_t k, ptrdiff_t n);
void fnn_gemm_pack_b(fnn_dtype dt, ptrdiff_t k, ptrdiff_t n, const void *b, ptrdiff_t rsb,
                     ptrdiff_t csb, void *dst);

/* fnn_gemm on the calling thread with A a patch matrix (base a, tables ga), read in place by
 * the micro-kernel: nothing of it is packed; B packed by fnn_gemm_pack_b. C has any
 * strides, as in fnn_gemm. */
int fnn_gemm_gather(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const void *a,
                    const fnn_gather *ga, const void *b, void *c, ptrdiff_t rsc, ptrdiff_t csc,
                    int accumulate, const void *bias, int act, double act_param);


/* ---- 2-D convolution (csrc/conv.c) --------------------------------------------------
 * x (n, c, h, w), weight (o, c / groups, kh, kw), y (n, o, oh, ow), all C-contiguous;
 * PyTorch's cross-correlation. ph, pw: the zero padding before the first row and column;
 * the padding after them is whatever oh, ow imply (so "same" may pad unevenly). Input
 * positions outside the image read as zero. Each image is a GEMM over its patches
 * (copied out, or packed from the image: fnn_conv2d_keeps_patches); images are split
 * among threads whole, so results do not depend on the thread count. Both return FNN_OK
 * or FNN_ENOMEM. */
typedef struct {
    ptrdiff_t n, c, h, w;   /* input batch, channels, height, width */
    ptrdiff_t o, oh, ow;    /* output channels, height, width */
    ptrdiff_t kh, kw;       /* kernel */
    ptrdiff_t sh, sw;       /* stride */
    ptrdiff_t ph, pw;       /* padding before */
    ptrdiff_t dh, dw;       /* dilation */
    ptrdiff_t groups;       /* divides c and o */
} fnn_conv2d_geom;

/* Whether the forward copies out patch matrices that it can keep for the backward (see
 * fnn_conv2d_forward): not for a pointwise convolution, nor for one with enough taps that
 * the GEMM packs its patches from the image itself. */
int fnn_conv2d_keeps_patches(const fnn_conv2d_geom *g);

/* Tests' switch between the two ways of forming the patches: from k taps on they are read
 * in place (k = 0: always; a huge k: never). Default 64 (conv.c); returns the previous k. */
ptrdiff_t fnn_conv2d_set_implicit_min_k(ptrdiff_t k);

/* y = act(conv(x, weight) + bias[o]); bias may be NULL. With `patches` (n * groups * K * P
 * elements, K = c / groups * kh * kw, P = oh * ow; may be NULL) every image's patch matrix
 * is kept there, [n][group][K][P], for the backward, when fnn_conv2d_keeps_patches(g);
 * otherwise `patches` is not touched. */
int fnn_conv2d_forward(fnn_dtype dt, const fnn_conv2d_geom *g, const void *x,
                       const void *weight, const void *bias, int act, double act_param,
                       void *y, void *patches);

/* Gradients of fnn_conv2d_forward from dy: with act other than identity, y (that call's
 * output) turns dy into the gradient before the activation first. `patches`: what that
 * call kept, or NULL (they are rebuilt; ignored unless fnn_conv2d_keeps_patches).
 * Writes dweight, dbias (may be NULL) and dx (may be NULL: not wanted). */
int fnn_conv2d_backward(fnn_dtype dt, const fnn_conv2d_geom *g, const void *x,
                        const void *weight, const void *dy, int act, double act_param,
                        const void *y, const void *patches, void *dx, void *dweight,
                        void *dbias);


/* ---- elementwise, loss and update kernels (csrc/elementwise.c) ---------------------
 * All arrays here are C-contiguous; the Cython floor copies anything else first.
 * 2-D arrays are m rows of n elements. Outputs may alias inputs where noted. */

/* y = act(x); y may alias x. */
void fnn_act_forward(fnn_dtype dt, ptrdiff_t n, int act, double slope, const void *x, void *y);

/* dx = dy * act'(.), where `src` is the activation's output y (for the ReLU family the
 * sign test "src > 0" also holds with the input x, which LeakyReLU with a negative slope
 * must pass). dx may alias dy. If dbias is not NULL it also receives the column sums of
 * dx (the preceding Dense layer's bias gradient) from the same pass. */
void fnn_act_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, int act, double slope,
                      const void *src, const void *dy, void *dx, void *dbias);

/* y = x + bias[col], row by row; y may alias x. */
void fnn_add_bias(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, const void *bias, void *y);

/* out[j] = sum_i x[i, j], each column summed in row order (deterministic). */
void fnn_column_sum(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *out);

/* Row-wise softmax; y may alias x. */
void fnn_softmax(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *y);

/* Softmax cross-entropy on logits[m, k], fused and stable.
 * Returns the summed loss over rows; grad = (softmax - target) * grad_scale (grad may be NULL).
 * labels: int64 class indices in [0, k). probs: target distribution rows (m, k). */
double fnn_softmax_xent_labels(fnn_dtype dt, ptrdiff_t m, ptrdiff_t k, const void *logits,
                               const int64_t *labels, void *grad, double grad_scale);
double fnn_softmax_xent_probs(fnn_dtype dt, ptrdiff_t m, ptrdiff_t k, const void *logits,
                              const void *probs, void *grad, double grad_scale);

/* Sigmoid + binary cross-entropy on logits, elementwise over n; returns the summed loss;
 * grad = (sigmoid(x) - t) * grad_scale (grad may be NULL). */
double fnn_bce_logits(fnn_dtype dt, ptrdiff_t n, const void *x, const void *t, void *grad,
                      double grad_scale);

/* Returns sum (x - t)^2; grad = 2 (x - t) * grad_scale (grad may be NULL). */
double fnn_mse(fnn_dtype dt, ptrdiff_t n, const void *x, const void *t, void *grad,
               double grad_scale);

/* Softmax's own backward from its output y: dx = y * (dy - sum_j dy_j y_j), row-wise. */
void fnn_softmax_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *y, const void *dy,
                          void *dx);

/* Weight penalties: g += l1 sign(w) + 2 l2 w; returns l1 sum|w| + l2 sum w^2. */
double fnn_penalty(fnn_dtype dt, ptrdiff_t n, const void *w, void *g, double l1, double l2);

/* ---- optimizer updates and gradient norms (csrc/optim.c) ---------------------------
 * One PyTorch update of a C-contiguous parameter p with gradient g, in place on p and
 * its state arrays (same size n). d = g + weight_decay p unless stated otherwise. */

/* SGD: in place on p and buf (buf unused if momentum == 0).
 * first: buf holds no history yet (PyTorch's "buf is None"). */
void fnn_sgd_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *buf, double lr,
                  double momentum, double dampening, int nesterov, double weight_decay,
                  int first);

/* Adagrad: sum += d^2; p -= clr d / (sqrt(sum) + eps), clr = lr / (1 + (step-1) lr_decay). */
void fnn_adagrad_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *sum, double clr,
                      double weight_decay, double eps);

/* RMSprop: sq = alpha sq + (1-alpha) d^2; with grad_avg (centered, else NULL)
 * ga += (1-alpha)(d - ga) and the denominator uses sq - ga^2; step = d / (sqrt(.) + eps);
 * with momentum_buffer (momentum > 0, else NULL) buf = momentum buf + step, p -= lr buf;
 * otherwise p -= lr step. */
void fnn_rmsprop_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *square_avg,
                      void *grad_avg, void *momentum_buffer, double lr, double alpha, double eps,
                      double weight_decay, double momentum);

/* Adam (decoupled = 0) or AdamW (decoupled = 1: p *= 1 - lr wd first, and d = g).
 * m += (1-beta1)(d - m); v = beta2 v + (1-beta2) d^2;
 * p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps). step >= 1.
 * With want_sum_squares, returns sum p^2 before the update (as fnn_sum_squares), else 0. */
double fnn_adam_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *exp_avg,
                     void *exp_avg_sq, double lr, double beta1, double beta2, double eps,
                     double weight_decay, int decoupled, double step, int want_sum_squares);

/* sum_i x_i^2 in double, in a fixed order (the same bits on every ISA). */
double fnn_sum_squares(fnn_dtype dt, ptrdiff_t n, const void *x);

/* x *= alpha in place. */
void fnn_scale(fnn_dtype dt, ptrdiff_t n, void *x, double alpha);


/* ---- toolbox layers (csrc/layers.c) --------------------------------------------------
 * Contiguous row-major arrays of m rows; per-feature vectors have n entries. Per-feature
 * sums are taken in double, each column in row order. */

/* Dropout's forward and backward: y = mask ? x * scale : 0; y may alias x. */
void fnn_mask_scale(fnn_dtype dt, ptrdiff_t n, const void *x, const uint8_t *mask, double scale,
                    void *y);

/* Column means and biased variances of x[m, n]; m >= 1. */
void fnn_column_moments(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, void *mean,
                        void *var);

/* Batch norm over the channels of x[m, n, s]: channel j is x[i, j, k] for every i and k
 * (s = 1: the columns of an (m, n) batch, BatchNorm1d; s = H*W: images, BatchNorm2d).
 * Per-channel vectors have n entries; sums are taken in double, in a fixed order, and the
 * work is split over channels, so results do not depend on the thread count.
 *
 * With batch statistics (m*s >= 2): save_mean, save_invstd = 1/sqrt(var + eps) from the
 * biased variance; y = (x - mean) invstd gamma + beta (gamma/beta NULL: 1/0). If
 * running_mean is not NULL, running = (1-momentum) running + momentum batch, with the
 * unbiased variance for running_var. y may alias x. */
void fnn_batchnorm_train(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                         const void *gamma, const void *beta, double eps, double momentum,
                         void *running_mean, void *running_var, void *y, void *save_mean,
                         void *save_invstd);

/* Batch norm with running statistics: y = (x - rm) / sqrt(rv + eps) gamma + beta; y may
 * alias x. */
void fnn_batchnorm_eval(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                        const void *gamma, const void *beta, double eps,
                        const void *running_mean, const void *running_var, void *y);

/* Backward of fnn_batchnorm_train: dx, and the per-channel sums dgamma = sum dy xhat,
 * dbeta = sum dy (either may be NULL; gamma NULL means 1). dx may alias dy. */
void fnn_batchnorm_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                            const void *save_mean, const void *save_invstd, const void *gamma,
                            const void *dy, void *dx, void *dgamma, void *dbeta);

/* Maxout over z[m, units * pieces], unit-major (unit u owns columns u*pieces ..
 * u*pieces + pieces - 1): y[i, u] = max of them, argmax[i, u] = which piece (first on ties). */
void fnn_maxout_forward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces,
                        const void *z, void *y, int64_t *argmax);

/* dz = 0 except dz[i, u*pieces + argmax[i, u]] = dy[i, u]; argmax entries in [0, pieces). */
void fnn_maxout_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces,
                         const void *dy, const int64_t *argmax, void *dz);

/* y = (x - mean) / s with s = std, or 1 where std is 0; mean may be NULL (0): that is the
 * backward, dx = dy / s. y may alias x. */
void fnn_standardize(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *x, const void *mean,
                     const void *std, void *y);

/* ---- pooling (csrc/pooling.c) -------------------------------------------------------
 * `planes` contiguous h x w planes (the N*C planes of NCHW images) in, as many oh x ow
 * planes out. The window of output (oy, ox) covers rows oy*sh - ph .. + kh - 1 and
 * columns ox*sw - pw .. + kw - 1; positions outside the input are skipped (padding), and
 * the geometry must leave every window at least one input position (ph <= kh / 2 and
 * pw <= kw / 2 with oh, ow of floor rounding, as the Cython floor checks). Planes are
 * split between threads, so results do not depend on their number. */
typedef struct {
    ptrdiff_t h, w;   /* input plane */
    ptrdiff_t oh, ow; /* output plane */
    ptrdiff_t kh, kw; /* window */
    ptrdiff_t sh, sw; /* stride */
    ptrdiff_t ph, pw; /* padding, top and left */
} fnn_window2d;

/* y = the window's maximum, argmax = its index h*w_in + w within the input plane: the
 * first maximum in row-major order on ties, the first NaN if there is one (NaN wins). */
void fnn_maxpool2d_forward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g, const void *x,
                           void *y, int64_t *argmax);

/* dx = 0, then dx[argmax] += dy output by output in row-major order; argmax entries in
 * [0, h*w). */
void fnn_maxpool2d_backward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g,
                            const void *dy, const int64_t *argmax, void *dx);

/* y = the window's sum (in double, row-major) / divisor: with count_include_pad the window
 * clipped to the padded plane (ph below and pw right of the input too, PyTorch's rule),
 * without it the input positions in the window. */
void fnn_avgpool2d_forward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g,
                           int count_include_pad, const void *x, void *y);

/* dx = 0, then each output's dy / divisor added to its window's input positions, output
 * by output in row-major order. */
void fnn_avgpool2d_backward(fnn_dtype dt, ptrdiff_t planes, const fnn_window2d *g,
                            int count_include_pad, const void *dy, void *dx);

/* 1 if no element of x is NaN or infinite, else 0 (the weight check before inference). */
int fnn_all_finite(fnn_dtype dt, ptrdiff_t n, const void *x);

/* ---- sparse times dense (csrc/sparse.c) ---------------------------------------------
 * A CSR matrix A of `rows` rows comes as data (T), indices and indptr: int32_t when
 * index64 is 0, else int64_t. indptr has rows + 1 non-decreasing entries, ABSOLUTE positions
 * into data and indices (a batch of rows is a slice of a longer indptr: indptr[0] may be
 * above 0); row i holds the entries indptr[i] .. indptr[i+1] - 1, whose column indices
 * may come in any order and repeat (repeats add up). Dense arrays are C-contiguous; the
 * dense row length is `units`. Entries are taken in storage order, and the work is split
 * only over output rows (fnn_csr_t_matmul: every part reads all entries and takes those of
 * its columns of A), never over a sum, so results do not depend on the thread count. */

/* fnn_csr_check's findings (0 = none). */
enum { FNN_CSR_BAD_START = 1, FNN_CSR_DECREASING = 2, FNN_CSR_PAST_END = 3,
       FNN_CSR_BAD_INDEX = 4 };

/* The checks that keep the two kernels in bounds: indptr[0] >= 0, indptr non-decreasing,
 * indptr[rows] <= nnz (the length of data and indices), and every column index the rows
 * use (positions indptr[0] .. indptr[rows] - 1, no others) in [0, n_cols). Returns 0 or the
 * first finding, with *where its position in indptr (or, for a bad index, in indices). */
int fnn_csr_check(int index64, ptrdiff_t rows, const void *indptr, const void *indices,
                  ptrdiff_t nnz, ptrdiff_t n_cols, ptrdiff_t *where);

/* out[rows, units] = act(A @ b + bias): b[n_cols, units], bias[units] or NULL. */
void fnn_csr_matmul(fnn_dtype dt, int index64, ptrdiff_t rows, ptrdiff_t units,
                    const void *data, const void *indices, const void *indptr, const void *b,
                    const void *bias, int act, double act_param, void *out);

/* out[n_cols, units] = A^T @ b (overwritten): b[rows, units]. */
void fnn_csr_t_matmul(fnn_dtype dt, int index64, ptrdiff_t rows, ptrdiff_t n_cols,
                      ptrdiff_t units, const void *data, const void *indices,
                      const void *indptr, const void *b, void *out);

#ifdef __cplusplus
}
#endif
#endif
