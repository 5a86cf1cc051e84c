/* Template body of optim.c: included once per element type with T, SFX and SQRT defined.
 * Every function is static and suffixed with SFX. Each update is one pass over a
 * parameter, in PyTorch's order of operations (its single-tensor code path).
 *
 * The updates run on the thread pool over fixed blocks of the parameter (F(block_len)):
 * each element's update is independent of the others, and Adam's optional sum of squares
 * is summed per block and then in block order, so nothing depends on the thread count. */

#define F(name) FNN_CAT(name, SFX)

/* The blocks' length: at most FNN_MAX_BLOCKS blocks, of at least 4096 elements. */
static ptrdiff_t F(block_len)(ptrdiff_t n)
{
    const ptrdiff_t bmin = 4096, br = (n + FNN_MAX_BLOCKS - 1) / FNN_MAX_BLOCKS;
    return br < bmin ? bmin : br;
}

/* Runs task over the blocks of n elements (i0, i1 from the block index b in the task). */
#define FNN_BLOCKS_RUN(n, task, args)                                                      \
    do {                                                                                   \
        (args)->br = F(block_len)(n);                                                      \
        (args)->n = (n);                                                                   \
        const ptrdiff_t nb_ = ((n) + (args)->br - 1) / (args)->br;                         \
        fnn_parallel(nthreads_for(n), nb_, task, (args));                                  \
    } while (0)
#define FNN_BLOCK_BOUNDS(A, b)                                                             \
    const ptrdiff_t i0 = (b) * (A)->br, i1 = i0 + (A)->br < (A)->n ? i0 + (A)->br : (A)->n

typedef struct {
    ptrdiff_t n, br;
    T *p, *buf;
    const T *g;
    T lr, mom, damp, wd;
    int nesterov, first;
} F(sgd_args);

static void F(sgd_task)(void *ctx, ptrdiff_t b)
{
    const F(sgd_args) *A = ctx;
    FNN_BLOCK_BOUNDS(A, b);
    T *p = A->p, *buf = A->buf;
    const T *g = A->g;
    const T lr = A->lr, mom = A->mom, damp = A->damp, wd = A->wd;
    const int nesterov = A->nesterov, first = A->first;
    /* PyTorch's order: d = g + wd p; buf = mom buf + (1 - dampening) d (buf = d on the
     * first step); d = nesterov ? d + mom buf : buf; p -= lr d. */
    if (!buf) {
        for (ptrdiff_t i = i0; i < i1; i++) p[i] -= lr * (g[i] + wd * p[i]);
        return;
    }
    for (ptrdiff_t i = i0; i < i1; i++) {
        const T d = g[i] + wd * p[i];
        const T v = first ? d : mom * buf[i] + damp * d;
        buf[i] = v;
        p[i] -= lr * (nesterov ? d + mom * v : v);
    }
}

static void F(sgd_step)(ptrdiff_t n, void *p, const void *g, void *buf, double lr,
                        double momentum, double dampening, int nesterov, double wd, int first)
{
    F(sgd_args) A = {0, 0, p, momentum == 0.0 ? NULL : buf, g, (T)lr, (T)momentum,
                     (T)1 - (T)dampening, (T)wd, nesterov, first};
    FNN_BLOCKS_RUN(n, F(sgd_task), &A);
}

typedef struct {
    ptrdiff_t n, br;
    T *p, *sum;
    const T *g;
    T clr, wd, eps;
} F(adagrad_args);

static void F(adagrad_task)(void *ctx, ptrdiff_t b)
{
    const F(adagrad_args) *A = ctx;
    FNN_BLOCK_BOUNDS(A, b);
    T *p = A->p, *sum = A->sum;
    const T *g = A->g;
    const T clr = A->clr, wd = A->wd, eps = A->eps;
    for (ptrdiff_t i = i0; i < i1; i++) {
        const T d = g[i] + wd * p[i];
        const T s = sum[i] + d * d;
        sum[i] = s;
        p[i] -= clr * (d / (SQRT(s) + eps));
    }
}

static void F(adagrad_step)(ptrdiff_t n, void *p, const void *g, void *sum, double clr,
                            double wd, double eps)
{
    F(adagrad_args) A = {0, 0, p, sum, g, (T)clr, (T)wd, (T)eps};
    FNN_BLOCKS_RUN(n, F(adagrad_task), &A);
}

typedef struct {
    ptrdiff_t n, br;
    T *p, *sq, *gavg, *buf;
    const T *g;
    T lr, alpha, one_m_alpha, eps, wd, mom;
} F(rmsprop_args);

static void F(rmsprop_task)(void *ctx, ptrdiff_t b)
{
    const F(rmsprop_args) *A = ctx;
    FNN_BLOCK_BOUNDS(A, b);
    T *p = A->p, *sq = A->sq, *gavg = A->gavg, *buf = A->buf;
    const T *g = A->g;
    const T lr = A->lr, alpha = A->alpha, one_m_alpha = A->one_m_alpha, eps = A->eps;
    const T wd = A->wd, mom = A->mom;
    for (ptrdiff_t i = i0; i < i1; i++) {
        const T d = g[i] + wd * p[i];
        const T s = alpha * sq[i] + one_m_alpha * d * d;
        sq[i] = s;
        T var = s;
        if (gavg) {
            /* centered: subtract the square of the running mean gradient (PyTorch lerps
             * towards d by 1 - alpha). */
            const T a = gavg[i] + one_m_alpha * (d - gavg[i]);
            gavg[i] = a;
            var = s - a * a;
        }
        const T step = d / (SQRT(var) + eps);
        if (buf) {
            const T v = mom * buf[i] + step;
            buf[i] = v;
            p[i] -= lr * v;
        } else {
            p[i] -= lr * step;
        }
    }
}

static void F(rmsprop_step)(ptrdiff_t n, void *p, const void *g, void *sq, void *gavg,
                            void *buf, double lr, double alpha, double eps, double wd,
                            double momentum)
{
    F(rmsprop_args) A = {0, 0, p, sq, gavg, buf, g, (T)lr, (T)alpha, (T)(1.0 - alpha), (T)eps,
                         (T)wd, (T)momentum};
    FNN_BLOCKS_RUN(n, F(rmsprop_task), &A);
}

/* Sum of squares of x[0..n) in double. Four vectors of four double accumulators (lane j
 * takes the elements i with i % 16 == j): one serial chain would be bound by the add
 * latency, and a vector type keeps the lane order, so the result, the same in every ISA
 * build, does not depend on how the compiler vectorises. */
static double F(sum_squares_run)(const T *x, ptrdiff_t n)
{
    typedef T vT __attribute__((vector_size(4 * sizeof(T))));
    typedef double v4d __attribute__((vector_size(32)));
    v4d acc[4] = {{0.0}};
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 4; j++) {
            vT v;
            memcpy(&v, x + i + 4 * j, sizeof v);
            const v4d d = __builtin_convertvector(v, v4d);
            acc[j] += d * d;
        }
    double total = 0.0;
    for (; i < n; i++) total += (double)x[i] * (double)x[i];
    for (int j = 0; j < 4; j++) total += (acc[j][0] + acc[j][1]) + (acc[j][2] + acc[j][3]);
    return total;
}

/* With `want_sum_squares`, also returns sum p^2 over the parameter before the update (the
 * L2 penalty's value, for callers that report it), from the same pass: each block's
 * squares are summed just before the block is updated, while it is in cache. */
typedef struct {
    ptrdiff_t n, br;
    T *p, *m, *v;
    const T *g;
    T step_size, bc2_sqrt, b1c, b2, b2c, eps, shrink, wd;
    int want_sum_squares;
    double part[FNN_MAX_BLOCKS];
} F(adam_args);

static void F(adam_task)(void *ctx, ptrdiff_t b)
{
    F(adam_args) *A = ctx;
    FNN_BLOCK_BOUNDS(A, b);
    T *p = A->p, *m = A->m, *v = A->v;
    const T *g = A->g;
    const T step_size = A->step_size, bc2_sqrt = A->bc2_sqrt, b1c = A->b1c, b2 = A->b2;
    const T b2c = A->b2c, eps = A->eps, shrink = A->shrink, wd = A->wd;
    A->part[b] = A->want_sum_squares ? F(sum_squares_run)(p + i0, i1 - i0) : 0.0;
    for (ptrdiff_t i = i0; i < i1; i++) {
        const T w = p[i] * shrink;
        const T d = g[i] + wd * w;
        const T a = m[i] + b1c * (d - m[i]);
        const T q = b2 * v[i] + b2c * d * d;
        m[i] = a;
        v[i] = q;
        p[i] = w - step_size * (a / (SQRT(q) / bc2_sqrt + eps));
    }
}

static double F(adam_step)(ptrdiff_t n, void *p, const void *g, void *m, void *v, double lr,
                           double beta1, double beta2, double eps, double wd, int decoupled,
                           double step, int want_sum_squares)
{
    /* Bias corrections in double, as PyTorch computes them from its Python-float step. */
    const double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    /* AdamW shrinks the weights before the update; Adam adds the decay to the gradient. */
    F(adam_args) A = {0, 0, p, m, v, g, (T)(lr / bc1), (T)sqrt(bc2), (T)(1.0 - beta1),
                      (T)beta2, (T)(1.0 - beta2), (T)eps, decoupled ? (T)(1.0 - lr * wd) : (T)1,
                      decoupled ? (T)0 : (T)wd, want_sum_squares, {0}};
    FNN_BLOCKS_RUN(n, F(adam_task), &A);
    double total = 0.0;
    for (ptrdiff_t b = 0; b * A.br < n; b++) total += A.part[b];
    return total;
}

static double F(sum_squares)(ptrdiff_t n, const void *x_)
{
    const T *x = x_;
    const ptrdiff_t br = F(block_len)(n), nb = (n + br - 1) / br;
    double total = 0.0;
    for (ptrdiff_t b = 0; b < nb; b++) {
        const ptrdiff_t i0 = b * br, i1 = i0 + br < n ? i0 + br : n;
        total += F(sum_squares_run)(x + i0, i1 - i0);
    }
    return total;
}

static void F(scale)(ptrdiff_t n, void *x_, double alpha_)
{
    T *x = x_;
    const T alpha = (T)alpha_;
    for (ptrdiff_t i = 0; i < n; i++) x[i] *= alpha;
}

#undef FNN_BLOCKS_RUN
#undef FNN_BLOCK_BOUNDS
#undef F
