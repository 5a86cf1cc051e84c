/* Template body of elementwise.c: included once per element type with T, SFX, LOG, LOG1P
 * and UINT defined. Every function is static and suffixed with SFX. */

#define F(name) FNN_CAT(name, SFX)

/* e^x for x <= 0 or NaN, to about 1 ulp (the method and constants of exp_taylor.h), in
 * plain arithmetic the compiler vectorises (a libm call per element stays scalar),
 * with 2^n built in the exponent bits in two halves so that subnormal results are rounded
 * once. */
static inline T F(expneg)(T x)
{
    const int single = sizeof(T) == 4;
    /* A NaN x fails the test and stays. */
    x = x < FNN_EXP_LOWEST(T) ? FNN_EXP_LOWEST(T) : x;
    /* Adding 1.5 * 2^(mantissa bits) rounds x log2(e) to the integer n held in the low
     * bits of t. */
    const T magic = single ? (T)12582912.0 : (T)6755399441055744.0;
    const T t = x * (T)FNN_LOG2E + magic;
    const T n = t - magic;
    T r = x - n * (T)FNN_LN2_HI;
    r = r + n * (T)FNN_LN2_LO;
    T p = (T)fnn_exp_inv_fact[FNN_EXP_FIRST(T)];
#pragma GCC unroll 16
    for (int i = FNN_EXP_FIRST(T) + 1; i < 14; i++) p = p * r + (T)fnn_exp_inv_fact[i];
    UINT tb, mb;
    memcpy(&tb, &t, sizeof tb);
    memcpy(&mb, &magic, sizeof mb);
    const UINT u = mb - tb; /* -n, at most 151 (float) or 1077 (double) */
    const UINT k1 = u >> 1, k2 = u - k1;
    const int mant = single ? 23 : 52;
    const UINT bias = single ? 127 : 1023;
    const UINT b1 = (bias - k1) << mant, b2 = (bias - k2) << mant;
    T s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

static inline T F(sigmoid)(T x)
{
    /* From e = e^-|x|, so that exp never overflows; selects, so that it vectorises. */
    const T ax = x < 0 ? -x : x;
    const T e = F(expneg)(-ax), s = (T)1 / ((T)1 + e);
    return x < 0 ? e * s : s;
}

static inline T F(tanh)(T x)
{
    /* The method of the GEMM epilogue's tanh (gemm_ukr_simd.h), in selects that vectorise. */
    const T ax = x < 0 ? -x : x;
    const T e = F(expneg)((T)-2 * ax);
    T big = ((T)1 - e) / ((T)1 + e);
    big = x < 0 ? -big : big;
    const T x2 = x * x;
    T p = (T)fnn_tanh_coef[FNN_TANH_FIRST(T)];
#pragma GCC unroll 16
    for (int i = FNN_TANH_FIRST(T) + 1; i < 11; i++) p = p * x2 + (T)fnn_tanh_coef[i];
    const T small = x * x2 * p + x;
    /* tanh x rounds to x below the smallest normal; this also keeps the sign of -0. */
    const T tiny = sizeof(T) == 4 ? (T)FLT_MIN : (T)DBL_MIN;
    return ax < tiny ? x : ax < (T)FNN_TANH_SMALL ? small : big;
}

static void F(act_forward)(ptrdiff_t n, int act, double slope_, const void *x_, void *y_)
{
    const T *x = x_;
    T *y = y_;
    const T slope = (T)slope_;
    ptrdiff_t i;
    /* One loop per activation keeps the switch out of the inner loop so it vectorises. */
    switch (act) {
    case FNN_ACT_RELU:
        /* "x <= 0", not "x > 0": NaN must propagate, or a NaN weight would vanish. */
        for (i = 0; i < n; i++) y[i] = x[i] <= 0 ? (T)0 : x[i];
        break;
    case FNN_ACT_LEAKY_RELU:
        for (i = 0; i < n; i++) {
            /* Two selects against zero, which gcc turns into blends (a select between x and
             * slope * x stays a branch); a NaN x lands in `neg` and propagates. */
            const T v = x[i];
            const T pos = v > 0 ? v : (T)0, neg = v > 0 ? (T)0 : v;
            y[i] = pos + slope * neg;
        }
        break;
    case FNN_ACT_SIGMOID:
        for (i = 0; i < n; i++) y[i] = F(sigmoid)(x[i]);
        break;
    case FNN_ACT_TANH:
        for (i = 0; i < n; i++) y[i] = F(tanh)(x[i]);
        break;
    default:
        if (y != x)
            for (i = 0; i < n; i++) y[i] = x[i];
    }
}

static void F(act_backward)(ptrdiff_t m, ptrdiff_t n, int act, double slope_, const void *src_,
                            const void *dy_, void *dx_, void *dbias_)
{
    const T *src = src_, *dy = dy_;
    T *dx = dx_, *dbias = dbias_;
    const T slope = (T)slope_;
    const ptrdiff_t total = m * n;
    ptrdiff_t i, j;
    switch (act) {
    /* Written as selects against zero with dy loaded first, so that gcc vectorises blends:
     * the plain `src > 0 ? dy : slope * dy` stays a branch, mispredicted on random signs. */
    case FNN_ACT_RELU:
        for (i = 0; i < total; i++) {
            const T d = dy[i];
            dx[i] = src[i] > 0 ? d : (T)0;
        }
        break;
    case FNN_ACT_LEAKY_RELU:
        for (i = 0; i < total; i++) {
            const T d = dy[i];
            const T pos = src[i] > 0 ? d : (T)0, neg = src[i] > 0 ? (T)0 : d;
            dx[i] = pos + slope * neg;
        }
        break;
    case FNN_ACT_SIGMOID:
        for (i = 0; i < total; i++) {
            dx[i] = dy[i] * src[i] * ((T)1 - src[i]);
        }
        break;
    case FNN_ACT_TANH:
        for (i = 0; i < total; i++) {
            dx[i] = dy[i] * ((T)1 - src[i] * src[i]);
        }
        break;
    default:
        if (dx != dy)
            for (i = 0; i < total; i++) dx[i] = dy[i];
    }
    if (dbias) {
        for (j = 0; j < n; j++) dbias[j] = 0;
        for (i = 0; i < m; i++) {
            const T *row = dx + i * n;
            for (j = 0; j < n; j++) dbias[j] += row[j];
        }
    }
}

static void F(add_bias)(ptrdiff_t m, ptrdiff_t n, const void *x_, const void *bias_, void *y_)
{
    const T *x = x_, *bias = bias_;
    T *y = y_;
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        const T *xr = x + i * n;
        T *yr = y + i * n;
        for (ptrdiff_t j = 0; j < n; j++) yr[j] = xr[j] + bias[j];
    }
}

static void F(column_sum)(ptrdiff_t m, ptrdiff_t n, const void *x_, void *out_)
{
    const T *x = x_;
    T *out = out_;
    /* Rows outer, columns inner: each column is summed in row order while the inner loop
     * vectorises across columns; column chunks keep the running sums in cache. */
    const ptrdiff_t chunk = 256;
    ptrdiff_t c0;
    for (c0 = 0; c0 < n; c0 += chunk) {
        const ptrdiff_t c1 = c0 + chunk < n ? c0 + chunk : n;
        for (ptrdiff_t j = c0; j < c1; j++) out[j] = 0;
        for (ptrdiff_t i = 0; i < m; i++) {
            const T *row = x + i * n;
            for (ptrdiff_t j = c0; j < c1; j++) out[j] += row[j];
        }
    }
}

/* The row's max, and e_j = exp(x_j - max) written to e: one exp per element. Returns the
 * sum of the e_j, which is >= 1 (the max contributes 1). */
static inline T F(row_max_exps)(ptrdiff_t k, const T *x, T *e, T *mx_out)
{
    T mx = x[0];
    for (ptrdiff_t j = 1; j < k; j++) mx = x[j] > mx ? x[j] : mx;
    /* Two loops: the exps vectorise, the sum keeps its order. */
    for (ptrdiff_t j = 0; j < k; j++) e[j] = F(expneg)(x[j] - mx);
    T s = 0;
    for (ptrdiff_t j = 0; j < k; j++) s += e[j];
    *mx_out = mx;
    return s;
}

static void F(softmax_row)(ptrdiff_t n, const T *x, T *y)
{
    T mx;
    const T inv = (T)1 / F(row_max_exps)(n, x, y, &mx);
    for (ptrdiff_t j = 0; j < n; j++) y[j] *= inv;
}

static void F(softmax)(ptrdiff_t m, ptrdiff_t n, const void *x_, void *y_)
{
    const T *x = x_;
    T *y = y_;
    ptrdiff_t i;
    if (n == 0) return;
    for (i = 0; i < m; i++) {
        F(softmax_row)(n, x + i * n, y + i * n);
    }
}

/* Row blocks of the loss sums (double partials, summed in block order). */
static inline ptrdiff_t F(block_rows)(ptrdiff_t m)
{
    ptrdiff_t b = (m + FNN_MAX_BLOCKS - 1) / FNN_MAX_BLOCKS;
    return b < 64 ? 64 : b;
}

/* A row's max and log sum_j exp(x_j - max): log-sum-exp is their sum, but losses keep them
 * apart so that x_y is subtracted from the max (exact when x_y is the max) rather than
 * from an lse whose rounding, at |x| ~ 1e30, swallows the log term. */
static inline T F(row_max_logsum)(ptrdiff_t k, const T *x, T *mx_out)
{
    T mx = x[0];
    for (ptrdiff_t j = 1; j < k; j++) mx = x[j] > mx ? x[j] : mx;
    T s = 0;
    for (ptrdiff_t j = 0; j < k; j++) s += F(expneg)(x[j] - mx);
    *mx_out = mx;
    return LOG(s);
}

static double F(softmax_xent_labels)(ptrdiff_t m, ptrdiff_t k, const void *logits_,
                                     const int64_t *labels, void *grad_, double grad_scale)
{
    const T *logits = logits_;
    T *grad = grad_;
    const T gs = (T)grad_scale;
    const ptrdiff_t br = F(block_rows)(m), nb = (m + br - 1) / br;
    double part[FNN_MAX_BLOCKS];
    ptrdiff_t b;
    if (m == 0) return 0.0;
    for (b = 0; b < nb; b++) {
        double acc = 0.0;
        const ptrdiff_t r1 = (b + 1) * br < m ? (b + 1) * br : m;
        for (ptrdiff_t i = b * br; i < r1; i++) {
            const T *x = logits + i * k;
            const ptrdiff_t y = (ptrdiff_t)labels[i];
            T mx, logsum;
            if (grad) {
                /* Softmax paired with cross-entropy: d loss / d logits = p - onehot. */
                T *g = grad + i * k;
                const T sum = F(row_max_exps)(k, x, g, &mx), ps = gs / sum;
                logsum = LOG(sum);
                for (ptrdiff_t j = 0; j < k; j++) g[j] *= ps;
                g[y] -= gs;
            } else {
                logsum = F(row_max_logsum)(k, x, &mx);
            }
            /* In double: for float32 logits near FLT_MAX the difference itself overflows. */
            acc += ((double)mx - (double)x[y]) + (double)logsum;
        }
        part[b] = acc;
    }
    double total = 0.0;
    for (b = 0; b < nb; b++) total += part[b];
    return total;
}

static double F(softmax_xent_probs)(ptrdiff_t m, ptrdiff_t k, const void *logits_,
                                    const void *probs_, void *grad_, double grad_scale)
{
    const T *logits = logits_, *probs = probs_;
    T *grad = grad_;
    const T gs = (T)grad_scale;
    const ptrdiff_t br = F(block_rows)(m), nb = (m + br - 1) / br;
    double part[FNN_MAX_BLOCKS];
    ptrdiff_t b;
    if (m == 0) return 0.0;
    for (b = 0; b < nb; b++) {
        double acc = 0.0;
        const ptrdiff_t r1 = (b + 1) * br < m ? (b + 1) * br : m;
        for (ptrdiff_t i = b * br; i < r1; i++) {
            const T *x = logits + i * k, *t = probs + i * k;
            T *g = grad ? grad + i * k : NULL;
            T mx, tsum = 0, sum = 0, logsum;
            double row = 0.0;
            if (g) {
                sum = F(row_max_exps)(k, x, g, &mx);
                logsum = LOG(sum);
            } else {
                logsum = F(row_max_logsum)(k, x, &mx);
            }
            /* -sum_j t_j log p_j = sum_j t_j ((max - x_j) + logsum), in double as above. */
            for (ptrdiff_t j = 0; j < k; j++) {
                tsum += t[j];
                row += (double)t[j] * (((double)mx - (double)x[j]) + (double)logsum);
            }
            acc += row;
            if (g) {
                /* Gradient p_j * sum(t) - t_j: equals p - t when the rows sum to one. */
                const T ps = tsum / sum;
                for (ptrdiff_t j = 0; j < k; j++) g[j] = (g[j] * ps - t[j]) * gs;
            }
        }
        part[b] = acc;
    }
    double total = 0.0;
    for (b = 0; b < nb; b++) total += part[b];
    return total;
}

/* Shared shape of the elementwise losses: fixed blocks, per-block double partials. */
#define FNN_ELEMENTWISE_LOSS(body)                                                        \
    const ptrdiff_t br = F(block_rows)(n) * 16, nb = (n + br - 1) / br;                   \
    double part[FNN_MAX_BLOCKS];                                                          \
    ptrdiff_t b;                                                                          \
    if (n == 0) return 0.0;                                                               \
    for (b = 0; b < nb; b++) {                                                            \
        double acc = 0.0;                                                                 \
        const ptrdiff_t e1 = (b + 1) * br < n ? (b + 1) * br : n;                         \
        for (ptrdiff_t i = b * br; i < e1; i++) { body }                                  \
        part[b] = acc;                                                                    \
    }                                                                                     \
    double total = 0.0;                                                                   \
    for (b = 0; b < nb; b++) total += part[b];                                            \
    return total;

static double F(bce_logits)(ptrdiff_t n, const void *x_, const void *t_, void *grad_,
                            double grad_scale)
{
    const T *x = x_, *t = t_;
    T *grad = grad_;
    const T gs = (T)grad_scale;
    /* loss = max(x, 0) - x t + log(1 + exp(-|x|)): never overflows; sigmoid paired with
     * BCE gives d loss / d x = sigmoid(x) - t. */
    FNN_ELEMENTWISE_LOSS(
        const T v = x[i];
        const T av = v >= 0 ? v : -v;
        acc += (v > 0 ? (double)v : 0.0) - (double)v * (double)t[i] + (double)LOG1P(F(expneg)(-av));
        if (grad) grad[i] = (F(sigmoid)(v) - t[i]) * gs;
    )
}

static double F(mse)(ptrdiff_t n, const void *x_, const void *t_, void *grad_, double grad_scale)
{
    const T *x = x_, *t = t_;
    T *grad = grad_;
    const T gs2 = (T)(2.0 * grad_scale);
    FNN_ELEMENTWISE_LOSS(
        const T d = x[i] - t[i];
        const double dd = (double)x[i] - (double)t[i]; /* float32 x - t may overflow */
        acc += dd * dd;
        if (grad) grad[i] = d * gs2;
    )
}

static void F(softmax_backward)(ptrdiff_t m, ptrdiff_t n, const void *y_, const void *dy_,
                                void *dx_)
{
    const T *y = y_, *dy = dy_;
    T *dx = dx_;
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        const T *yr = y + i * n, *dyr = dy + i * n;
        T *dxr = dx + i * n;
        T dot = 0;
        for (ptrdiff_t j = 0; j < n; j++) dot += yr[j] * dyr[j];
        for (ptrdiff_t j = 0; j < n; j++) dxr[j] = yr[j] * (dyr[j] - dot);
    }
}

static double F(penalty)(ptrdiff_t n, const void *w_, void *g_, double l1_, double l2_)
{
    const T *w = w_;
    T *g = g_;
    const T l1 = (T)l1_, l2x2 = (T)(2.0 * l2_);
    double s1 = 0.0, s2 = 0.0;
    for (ptrdiff_t i = 0; i < n; i++) {
        const T v = w[i];
        const T sgn = (T)((v > 0) - (v < 0));
        s1 += v >= 0 ? (double)v : -(double)v;
        s2 += (double)v * (double)v;
        g[i] += l1 * sgn + l2x2 * v;
    }
    return l1_ * s1 + l2_ * s2;
}

static int F(all_finite)(ptrdiff_t n, const void *x_)
{
    const T *x = x_;
    int bad = 0;
    /* A float is NaN or infinite exactly when its exponent bits are all ones. Integer
     * tests with no early exit vectorise, so this costs one streaming read. */
    for (ptrdiff_t i = 0; i < n; i++) {
        UINT bits;
        memcpy(&bits, &x[i], sizeof bits);
        bad |= (bits & EXP_MASK) == EXP_MASK;
    }
    return !bad;
}

#undef F
