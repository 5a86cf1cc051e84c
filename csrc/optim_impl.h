/* Template body of optim.c: included once per element type with T, SFX and SQRT defined.
 * Every function is static and suffixed with SFX. Each update is one pass over a
 * parameter, in PyTorch's order of operations (its single-tensor code path). */

#define F(name) FNN_CAT(name, SFX)

static void F(adagrad_step)(ptrdiff_t n, void *p_, const void *g_, void *sum_, double clr_,
                            double wd_, double eps_)
{
    T *p = p_, *sum = sum_;
    const T *g = g_;
    const T clr = (T)clr_, wd = (T)wd_, eps = (T)eps_;
    ptrdiff_t i;
    FNN_PARALLEL_FOR(n, for (i = 0; i < n; i++) {
        const T d = g[i] + wd * p[i];
        const T s = sum[i] + d * d;
        sum[i] = s;
        p[i] -= clr * (d / (SQRT(s) + eps));
    });
}

static void F(rmsprop_step)(ptrdiff_t n, void *p_, const void *g_, void *sq_, void *gavg_,
                            void *buf_, double lr_, double alpha_, double eps_, double wd_,
                            double momentum_)
{
    T *p = p_, *sq = sq_, *gavg = gavg_, *buf = buf_;
    const T *g = g_;
    const T lr = (T)lr_, alpha = (T)alpha_, one_m_alpha = (T)(1.0 - alpha_), eps = (T)eps_;
    const T wd = (T)wd_, mom = (T)momentum_;
    ptrdiff_t i;
    FNN_PARALLEL_FOR(n, for (i = 0; i < n; i++) {
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
    });
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

/* Reductions run over fixed blocks whose boundaries depend only on n, summed in block order,
 * so a total is the same whatever the thread count. */
static ptrdiff_t F(block_len)(ptrdiff_t n)
{
    const ptrdiff_t bmin = 4096, br = (n + FNN_MAX_BLOCKS - 1) / FNN_MAX_BLOCKS;
    return br < bmin ? bmin : br;
}

/* With `want_sum_squares`, also returns sum p^2 over the parameter before the update (the
 * L2 penalty's value, for callers that report it), from the same pass: each block's
 * squares are summed just before the block is updated, while it is in cache. */
static double F(adam_step)(ptrdiff_t n, void *p_, const void *g_, void *m_, void *v_,
                           double lr_, double beta1_, double beta2_, double eps_, double wd_,
                           int decoupled, double step, int want_sum_squares)
{
    T *p = p_, *m = m_, *v = v_;
    const T *g = g_;
    /* Bias corrections in double, as PyTorch computes them from its Python-float step. */
    const double bc1 = 1.0 - pow(beta1_, step), bc2 = 1.0 - pow(beta2_, step);
    const T step_size = (T)(lr_ / bc1), bc2_sqrt = (T)sqrt(bc2);
    const T b1c = (T)(1.0 - beta1_), b2 = (T)beta2_, b2c = (T)(1.0 - beta2_), eps = (T)eps_;
    /* AdamW shrinks the weights before the update; Adam adds the decay to the gradient. */
    const T shrink = decoupled ? (T)(1.0 - lr_ * wd_) : (T)1;
    const T wd = decoupled ? (T)0 : (T)wd_;
    const ptrdiff_t br = F(block_len)(n), nb = (n + br - 1) / br;
    double part[FNN_MAX_BLOCKS];
    ptrdiff_t b;
    FNN_PARALLEL_FOR(n, for (b = 0; b < nb; b++) {
        const ptrdiff_t i0 = b * br, i1 = i0 + br < n ? i0 + br : n;
        part[b] = want_sum_squares ? F(sum_squares_run)(p + i0, i1 - i0) : 0.0;
        for (ptrdiff_t i = i0; i < i1; i++) {
            const T w = p[i] * shrink;
            const T d = g[i] + wd * w;
            const T a = m[i] + b1c * (d - m[i]);
            const T q = b2 * v[i] + b2c * d * d;
            m[i] = a;
            v[i] = q;
            p[i] = w - step_size * (a / (SQRT(q) / bc2_sqrt + eps));
        }
    });
    double total = 0.0;
    for (b = 0; b < nb; b++) total += part[b];
    return total;
}

static double F(sum_squares)(ptrdiff_t n, const void *x_)
{
    const T *x = x_;
    const ptrdiff_t br = F(block_len)(n), nb = (n + br - 1) / br;
    double part[FNN_MAX_BLOCKS];
    ptrdiff_t b;
    FNN_PARALLEL_FOR(n, for (b = 0; b < nb; b++) {
        const ptrdiff_t i0 = b * br, i1 = i0 + br < n ? i0 + br : n;
        part[b] = F(sum_squares_run)(x + i0, i1 - i0);
    });
    double total = 0.0;
    for (b = 0; b < nb; b++) total += part[b];
    return total;
}

static void F(scale)(ptrdiff_t n, void *x_, double alpha_)
{
    T *x = x_;
    const T alpha = (T)alpha_;
    ptrdiff_t i;
    FNN_PARALLEL_FOR(n, for (i = 0; i < n; i++) { x[i] *= alpha; });
}

#undef F
