# Declarations of csrc/fastnn.h, nothing else.
from libc.stdint cimport int64_t, uint8_t, uint64_t

cdef extern from "fastnn.h" nogil:
    ctypedef enum fnn_dtype:
        FNN_F32
        FNN_F64
    enum:
        FNN_OK
        FNN_ENOMEM
        FNN_EINVAL

    int fnn_cpu_isa()
    int fnn_get_isa()
    int fnn_set_isa(int isa)
    const char *fnn_isa_name(int isa)
    int fnn_get_num_threads()
    void fnn_set_num_threads(int n)
    double fnn_fma_peak_gflops(int isa)

    ctypedef enum fnn_act:
        FNN_ACT_IDENTITY
        FNN_ACT_RELU
        FNN_ACT_LEAKY_RELU
        FNN_ACT_SIGMOID
        FNN_ACT_TANH

    int fnn_gemm(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                 const void *a, Py_ssize_t rsa, Py_ssize_t csa,
                 const void *b, Py_ssize_t rsb, Py_ssize_t csb,
                 void *c, Py_ssize_t rsc, Py_ssize_t csc,
                 int accumulate, const void *bias, int act, double act_param)
    uint64_t fnn_gemm_flop_count()

    ctypedef struct fnn_conv2d_geom:
        Py_ssize_t n, c, h, w
        Py_ssize_t o, oh, ow
        Py_ssize_t kh, kw
        Py_ssize_t sh, sw
        Py_ssize_t ph, pw
        Py_ssize_t dh, dw
        Py_ssize_t groups

    int fnn_conv2d_keeps_patches(const fnn_conv2d_geom *g)
    Py_ssize_t fnn_conv2d_set_implicit_min_k(Py_ssize_t k)
    int fnn_conv2d_forward(fnn_dtype dt, const fnn_conv2d_geom *g, const void *x,
                           const void *weight, const void *bias, int act, double act_param,
                           void *y, void *patches)
    int fnn_conv2d_backward(fnn_dtype dt, const fnn_conv2d_geom *g, const void *x,
                            const void *weight, const void *dy, int act, double act_param,
                            const void *y, const void *patches, void *dx, void *dweight,
                            void *dbias)

    void fnn_act_forward(fnn_dtype dt, Py_ssize_t n, int act, double slope, const void *x, void *y)
    void fnn_act_backward(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, int act, double slope,
                          const void *src, const void *dy, void *dx, void *dbias)
    void fnn_add_bias(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, const void *x, const void *bias,
                      void *y)
    void fnn_column_sum(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, const void *x, void *out)
    void fnn_softmax(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, const void *x, void *y)
    double fnn_softmax_xent_labels(fnn_dtype dt, Py_ssize_t m, Py_ssize_t k, const void *logits,
                                   const int64_t *labels, void *grad, double grad_scale)
    double fnn_softmax_xent_probs(fnn_dtype dt, Py_ssize_t m, Py_ssize_t k, const void *logits,
                                  const void *probs, void *grad, double grad_scale)
    double fnn_bce_logits(fnn_dtype dt, Py_ssize_t n, const void *x, const void *t, void *grad,
                          double grad_scale)
    double fnn_mse(fnn_dtype dt, Py_ssize_t n, const void *x, const void *t, void *grad,
                   double grad_scale)
    void fnn_sgd_step(fnn_dtype dt, Py_ssize_t n, void *p, const void *g, void *buf, double lr,
                      double momentum, double dampening, int nesterov, double weight_decay,
                      int first)
    void fnn_softmax_backward(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, const void *y,
                              const void *dy, void *dx)
    double fnn_penalty(fnn_dtype dt, Py_ssize_t n, const void *w, void *g, double l1, double l2)

    # optim.c
    void fnn_adagrad_step(fnn_dtype dt, Py_ssize_t n, void *p, const void *g, void *sum,
                          double clr, double weight_decay, double eps)
    void fnn_rmsprop_step(fnn_dtype dt, Py_ssize_t n, void *p, const void *g, void *square_avg,
                          void *grad_avg, void *momentum_buffer, double lr, double alpha,
                          double eps, double weight_decay, double momentum)
    double fnn_adam_step(fnn_dtype dt, Py_ssize_t n, void *p, const void *g, void *exp_avg,
                         void *exp_avg_sq, double lr, double beta1, double beta2, double eps,
                         double weight_decay, int decoupled, double step, int want_sum_squares)
    double fnn_sum_squares(fnn_dtype dt, Py_ssize_t n, const void *x)
    void fnn_scale(fnn_dtype dt, Py_ssize_t n, void *x, double alpha)

    # layers.c
    void fnn_mask_scale(fnn_dtype dt, Py_ssize_t n, const void *x, const uint8_t *mask,
                        double scale, void *y)
    void fnn_column_moments(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, const void *x, void *mean,
                            void *var)
    void fnn_batchnorm_train(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, Py_ssize_t s,
                             const void *x, const void *gamma, const void *beta, double eps,
                             double momentum, void *running_mean, void *running_var, void *y,
                             void *save_mean, void *save_invstd)
    void fnn_batchnorm_eval(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, Py_ssize_t s,
                            const void *x, const void *gamma, const void *beta, double eps,
                            const void *running_mean, const void *running_var, void *y)
    void fnn_batchnorm_backward(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, Py_ssize_t s,
                                const void *x, const void *save_mean, const void *save_invstd,
                                const void *gamma, const void *dy, void *dx, void *dgamma,
                                void *dbeta)
    void fnn_maxout_forward(fnn_dtype dt, Py_ssize_t m, Py_ssize_t units, Py_ssize_t pieces,
                            const void *z, void *y, int64_t *argmax)
    void fnn_maxout_backward(fnn_dtype dt, Py_ssize_t m, Py_ssize_t units, Py_ssize_t pieces,
                             const void *dy, const int64_t *argmax, void *dz)
    void fnn_standardize(fnn_dtype dt, Py_ssize_t m, Py_ssize_t n, const void *x,
                         const void *mean, const void *std, void *y)

    # pooling.c
    ctypedef struct fnn_window2d:
        Py_ssize_t h, w, oh, ow, kh, kw, sh, sw, ph, pw
    void fnn_maxpool2d_forward(fnn_dtype dt, Py_ssize_t planes, const fnn_window2d *g,
                               const void *x, void *y, int64_t *argmax)
    void fnn_maxpool2d_backward(fnn_dtype dt, Py_ssize_t planes, const fnn_window2d *g,
                                const void *dy, const int64_t *argmax, void *dx)
    void fnn_avgpool2d_forward(fnn_dtype dt, Py_ssize_t planes, const fnn_window2d *g,
                               int count_include_pad, const void *x, void *y)
    void fnn_avgpool2d_backward(fnn_dtype dt, Py_ssize_t planes, const fnn_window2d *g,
                                int count_include_pad, const void *dy, void *dx)

    # elementwise.c
    int fnn_all_finite(fnn_dtype dt, Py_ssize_t n, const void *x)

    # sparse.c
    enum:
        FNN_CSR_BAD_START
        FNN_CSR_DECREASING
        FNN_CSR_PAST_END
        FNN_CSR_BAD_INDEX
    int fnn_csr_check(int index64, Py_ssize_t rows, const void *indptr, const void *indices,
                      Py_ssize_t nnz, Py_ssize_t n_cols, Py_ssize_t *where)
    void fnn_csr_matmul(fnn_dtype dt, int index64, Py_ssize_t rows, Py_ssize_t units,
                        const void *data, const void *indices, const void *indptr,
                        const void *b, const void *bias, int act, double act_param, void *out)
    void fnn_csr_t_matmul(fnn_dtype dt, int index64, Py_ssize_t rows, Py_ssize_t n_cols,
                          Py_ssize_t units, const void *data, const void *indices,
                          const void *indptr, const void *b, void *out)
