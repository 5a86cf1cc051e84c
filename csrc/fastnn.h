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
int fnn_has_openmp(void);

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

/* One PyTorch SGD step on a parameter, in place on p and buf (buf unused if momentum == 0).
 * first: buf holds no history yet (PyTorch's "buf is None"). */
void fnn_sgd_step(fnn_dtype dt, ptrdiff_t n, void *p, const void *g, void *buf, double lr,
                  double momentum, double dampening, int nesterov, double weight_decay,
                  int first);

/* Softmax's own backward from its output y: dx = y * (dy - sum_j dy_j y_j), row-wise. */
void fnn_softmax_backward(fnn_dtype dt, ptrdiff_t m, ptrdiff_t n, const void *y, const void *dy,
                          void *dx);

/* Weight penalties: g += l1 sign(w) + 2 l2 w; returns l1 sum|w| + l2 sum w^2. */
double fnn_penalty(fnn_dtype dt, ptrdiff_t n, const void *w, void *g, double l1, double l2);

/* 1 if no element of x is NaN or infinite, else 0 (the weight check before inference). */
int fnn_all_finite(fnn_dtype dt, ptrdiff_t n, const void *x);

#ifdef __cplusplus
}
#endif
#endif
