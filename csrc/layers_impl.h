/* Template body of layers.c: included once per element type with T and SFX defined.
 * Every function is static and suffixed with SFX. Per-feature statistics are summed in
 * double, in a fixed order. */

#define F(name) FNN_CAT(name, SFX)

static void F(mask_scale)(ptrdiff_t n, const void *x_, const uint8_t *mask, double scale_,
                          void *y_)
{
    const T *x = x_;
    T *y = y_;
    const T scale = (T)scale_;
    ptrdiff_t i;
    for (i = 0; i < n; i++) {
        const T v = x[i] * scale; /* loaded unconditionally so that the select vectorises */
        y[i] = mask[i] ? v : (T)0;
    }
}

/* Batch norm over x[m, n, s]: channel j is the m runs of s contiguous elements at
 * (i*n + j)*s (s = 1: the columns of an (m, n) batch; s = H*W: the planes of images). A
 * channel's sums are taken run by run in row order, each run in the fixed lanes below. The
 * work items are chunks of whole channels, so no sum is split between threads and the
 * result does not depend on their number. Where s is 1, the loops run across the chunk's
 * channels instead (the same sums: a run of one is its element), which vectorises. */

/* Runs are summed in FNN_LANES partial sums, added in a fixed order at the end: the loop
 * then vectorises without the compiler reordering a floating-point sum. */
static inline double F(run_sum)(ptrdiff_t s, const T *p)
{
    double lane[FNN_LANES] = {0}, t = 0.0;
    ptrdiff_t k = 0;
    for (; k + FNN_LANES <= s; k += FNN_LANES)
        for (int l = 0; l < FNN_LANES; l++) lane[l] += (double)p[k + l];
    for (; k < s; k++) t += (double)p[k];
    for (int l = 0; l < FNN_LANES; l++) t += lane[l];
    return t;
}

static inline double F(run_sqdev)(ptrdiff_t s, const T *p, double mu)
{
    double lane[FNN_LANES] = {0}, t = 0.0;
    ptrdiff_t k = 0;
    for (; k + FNN_LANES <= s; k += FNN_LANES)
        for (int l = 0; l < FNN_LANES; l++) {
            const double d = (double)p[k + l] - mu;
            lane[l] += d * d;
        }
    for (; k < s; k++) {
        const double d = (double)p[k] - mu;
        t += d * d;
    }
    for (int l = 0; l < FNN_LANES; l++) t += lane[l];
    return t;
}

/* Adds sum dy and sum dy xhat over a run, xhat = (x - mu) inv. */
static inline void F(run_dy)(ptrdiff_t s, const T *x, const T *dy, double mu, double inv,
                             double *sdy, double *sdyx)
{
    double a[FNN_LANES] = {0}, b[FNN_LANES] = {0}, ta = 0.0, tb = 0.0;
    ptrdiff_t k = 0;
    for (; k + FNN_LANES <= s; k += FNN_LANES)
        for (int l = 0; l < FNN_LANES; l++) {
            const double d = (double)dy[k + l];
            a[l] += d;
            b[l] += d * (((double)x[k + l] - mu) * inv);
        }
    for (; k < s; k++) {
        const double d = (double)dy[k];
        ta += d;
        tb += d * (((double)x[k] - mu) * inv);
    }
    for (int l = 0; l < FNN_LANES; l++) {
        ta += a[l];
        tb += b[l];
    }
    *sdy += ta;
    *sdyx += tb;
}

/* Mean and biased variance of channels c0..c1 (two passes: the variance is a sum of
 * squared deviations, which does not cancel catastrophically). */
static void F(chunk_moments)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const T *x, ptrdiff_t c0,
                             ptrdiff_t c1, double *mean, double *var)
{
    const ptrdiff_t w = c1 - c0;
    const double count = (double)m * (double)s;
    for (ptrdiff_t j = 0; j < w; j++) mean[j] = var[j] = 0.0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *row = x + (i * n + c0) * s;
        if (s == 1)
            for (ptrdiff_t j = 0; j < w; j++) mean[j] += (double)row[j];
        else
            for (ptrdiff_t j = 0; j < w; j++) mean[j] += F(run_sum)(s, row + j * s);
    }
    for (ptrdiff_t j = 0; j < w; j++) mean[j] /= count;
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *row = x + (i * n + c0) * s;
        if (s == 1)
            for (ptrdiff_t j = 0; j < w; j++) {
                const double d = (double)row[j] - mean[j];
                var[j] += d * d;
            }
        else
            for (ptrdiff_t j = 0; j < w; j++) var[j] += F(run_sqdev)(s, row + j * s, mean[j]);
    }
    for (ptrdiff_t j = 0; j < w; j++) var[j] /= count;
}

static void F(column_moments)(ptrdiff_t m, ptrdiff_t n, const void *x_, void *mean_, void *var_)
{
    const T *x = x_;
    T *mean = mean_, *var = var_;
    ptrdiff_t c0;
    for (c0 = 0; c0 < n; c0 += FNN_COL_CHUNK) {
        const ptrdiff_t c1 = c0 + FNN_COL_CHUNK < n ? c0 + FNN_COL_CHUNK : n;
        double mu[FNN_COL_CHUNK], v[FNN_COL_CHUNK];
        F(chunk_moments)(m, n, 1, x, c0, c1, mu, v);
        for (ptrdiff_t j = c0; j < c1; j++) {
            mean[j] = (T)mu[j - c0];
            var[j] = (T)v[j - c0];
        }
    }
}

/* y = x * a[j] + b[j] over channels c0..c1: PyTorch's folded batch-norm transform with
 * a = gamma * invstd and b = beta - mean * a. */
static void F(chunk_affine)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const T *x, ptrdiff_t c0,
                            ptrdiff_t c1, const T *a, const T *b, T *y)
{
    const ptrdiff_t w = c1 - c0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *xr = x + (i * n + c0) * s;
        T *yr = y + (i * n + c0) * s;
        if (s == 1)
            for (ptrdiff_t j = 0; j < w; j++) yr[j] = xr[j] * a[j] + b[j];
        else
            for (ptrdiff_t j = 0; j < w; j++) {
                const T aj = a[j], bj = b[j];
                for (ptrdiff_t k = j * s; k < (j + 1) * s; k++) yr[k] = xr[k] * aj + bj;
            }
    }
}

/* The arguments of the batch-norm tasks; each kernel uses its own subset. */
typedef struct {
    ptrdiff_t m, n, s, w; /* w: channels per work item */
    const T *x, *gamma, *beta, *dy, *crmean, *crvar, *mean, *invstd;
    T *rmean, *rvar, *y, *save_mean, *save_invstd, *dx, *dgamma, *dbeta;
    double eps, momentum;
} F(bn_args);

/* Runs task over chunks of channels, each of at least FNN_COL_CHUNK elements a row (or one
 * channel) so that the inner loops stay long. */
static void F(bn_run)(F(bn_args) *A, fnn_task task)
{
    A->w = A->s > 0 && A->s < FNN_COL_CHUNK ? FNN_COL_CHUNK / A->s : 1;
    fnn_parallel(nthreads_for(A->m * A->n * A->s), (A->n + A->w - 1) / A->w, task, A);
}

static void F(bn_train_task)(void *ctx, ptrdiff_t item)
{
    const F(bn_args) *A = ctx;
    FNN_BN_CHUNK(A, item);
    const T *gamma = A->gamma, *beta = A->beta;
    const double count = (double)A->m * (double)A->s;
    const double unbias = count > 1 ? count / (count - 1) : 1.0, momentum = A->momentum;
    double mu[FNN_COL_CHUNK], v[FNN_COL_CHUNK];
    T a[FNN_COL_CHUNK], b[FNN_COL_CHUNK];
    F(chunk_moments)(A->m, A->n, A->s, A->x, c0, c1, mu, v);
    for (ptrdiff_t j = c0; j < c1; j++) {
        const ptrdiff_t k = j - c0;
        const T mean = (T)mu[k], invstd = (T)(1.0 / sqrt(v[k] + A->eps));
        A->save_mean[j] = mean;
        A->save_invstd[j] = invstd;
        if (A->rmean) {
            /* The running variance is the unbiased estimate; normalising uses the biased
             * one (PyTorch). */
            A->rmean[j] = (T)((1.0 - momentum) * (double)A->rmean[j] + momentum * mu[k]);
            A->rvar[j] = (T)((1.0 - momentum) * (double)A->rvar[j] + momentum * v[k] * unbias);
        }
        a[k] = gamma ? gamma[j] * invstd : invstd;
        b[k] = (beta ? beta[j] : (T)0) - mean * a[k];
    }
    F(chunk_affine)(A->m, A->n, A->s, A->x, c0, c1, a, b, A->y);
}

static void F(batchnorm_train)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                               const void *gamma, const void *beta, double eps, double momentum,
                               void *running_mean, void *running_var, void *y, void *save_mean,
                               void *save_invstd)
{
    F(bn_args) A = {.m = m, .n = n, .s = s, .x = x, .gamma = gamma, .beta = beta,
                    .rmean = running_mean, .rvar = running_var, .y = y,
                    .save_mean = save_mean, .save_invstd = save_invstd,
                    .eps = eps, .momentum = momentum};
    F(bn_run)(&A, F(bn_train_task));
}

static void F(bn_eval_task)(void *ctx, ptrdiff_t item)
{
    const F(bn_args) *A = ctx;
    FNN_BN_CHUNK(A, item);
    const T *gamma = A->gamma, *beta = A->beta;
    T a[FNN_COL_CHUNK], b[FNN_COL_CHUNK];
    for (ptrdiff_t j = c0; j < c1; j++) {
        const ptrdiff_t k = j - c0;
        const T invstd = (T)(1.0 / sqrt((double)A->crvar[j] + A->eps));
        a[k] = gamma ? gamma[j] * invstd : invstd;
        b[k] = (beta ? beta[j] : (T)0) - A->crmean[j] * a[k];
    }
    F(chunk_affine)(A->m, A->n, A->s, A->x, c0, c1, a, b, A->y);
}

static void F(batchnorm_eval)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                              const void *gamma, const void *beta, double eps,
                              const void *running_mean, const void *running_var, void *y)
{
    F(bn_args) A = {.m = m, .n = n, .s = s, .x = x, .gamma = gamma, .beta = beta,
                    .crmean = running_mean, .crvar = running_var, .y = y, .eps = eps};
    F(bn_run)(&A, F(bn_eval_task));
}

/* With xhat = (x - mean) invstd and batch statistics depending on x:
 * dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)). */
static void F(bn_backward_task)(void *ctx, ptrdiff_t item)
{
    const F(bn_args) *A = ctx;
    FNN_BN_CHUNK(A, item);
    const ptrdiff_t m = A->m, n = A->n, s = A->s, w = c1 - c0;
    const T *x = A->x, *dy = A->dy, *mean = A->mean + c0, *invstd = A->invstd + c0;
    const double count = (double)m * (double)s;
    double sdy[FNN_COL_CHUNK], sdyx[FNN_COL_CHUNK];
    T mdy[FNN_COL_CHUNK], mdyx[FNN_COL_CHUNK], k1[FNN_COL_CHUNK];
    for (ptrdiff_t j = 0; j < w; j++) sdy[j] = sdyx[j] = 0.0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *xr = x + (i * n + c0) * s, *dyr = dy + (i * n + c0) * s;
        if (s == 1)
            for (ptrdiff_t j = 0; j < w; j++) {
                const double xhat = ((double)xr[j] - (double)mean[j]) * (double)invstd[j];
                sdy[j] += (double)dyr[j];
                sdyx[j] += (double)dyr[j] * xhat;
            }
        else
            for (ptrdiff_t j = 0; j < w; j++)
                F(run_dy)(s, xr + j * s, dyr + j * s, (double)mean[j], (double)invstd[j],
                          &sdy[j], &sdyx[j]);
    }
    for (ptrdiff_t j = 0; j < w; j++) {
        if (A->dgamma) A->dgamma[c0 + j] = (T)sdyx[j];
        if (A->dbeta) A->dbeta[c0 + j] = (T)sdy[j];
        mdy[j] = (T)(sdy[j] / count);
        mdyx[j] = (T)(sdyx[j] / count);
        k1[j] = (A->gamma ? A->gamma[c0 + j] : (T)1) * invstd[j];
    }
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *xr = x + (i * n + c0) * s, *dyr = dy + (i * n + c0) * s;
        T *dxr = A->dx + (i * n + c0) * s;
        if (s == 1)
            for (ptrdiff_t j = 0; j < w; j++) {
                const T xhat = (xr[j] - mean[j]) * invstd[j];
                dxr[j] = k1[j] * (dyr[j] - mdy[j] - xhat * mdyx[j]);
            }
        else
            for (ptrdiff_t j = 0; j < w; j++) {
                const T mj = mean[j], ij = invstd[j], kj = k1[j], dj = mdy[j], ej = mdyx[j];
                for (ptrdiff_t k = j * s; k < (j + 1) * s; k++) {
                    const T xhat = (xr[k] - mj) * ij;
                    dxr[k] = kj * (dyr[k] - dj - xhat * ej);
                }
            }
    }
}

static void F(batchnorm_backward)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t s, const void *x,
                                  const void *mean, const void *invstd, const void *gamma,
                                  const void *dy, void *dx, void *dgamma, void *dbeta)
{
    F(bn_args) A = {.m = m, .n = n, .s = s, .x = x, .mean = mean, .invstd = invstd,
                    .gamma = gamma, .dy = dy, .dx = dx, .dgamma = dgamma, .dbeta = dbeta};
    F(bn_run)(&A, F(bn_backward_task));
}

static void F(maxout_forward)(ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces, const void *z_,
                              void *y_, int64_t *argmax)
{
    const T *z = z_;
    T *y = y_;
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        for (ptrdiff_t u = 0; u < units; u++) {
            /* Unit-major: unit u owns columns u*pieces .. u*pieces + pieces - 1; ties go to
             * the first piece, and the first NaN piece wins (NaN propagates, as in argmax). */
            const T *zr = z + (i * units + u) * pieces;
            ptrdiff_t best = 0;
            for (ptrdiff_t k = 1; k < pieces; k++)
                if (zr[k] > zr[best] || (zr[k] != zr[k] && zr[best] == zr[best])) best = k;
            y[i * units + u] = zr[best];
            argmax[i * units + u] = best;
        }
    }
}

static void F(maxout_backward)(ptrdiff_t m, ptrdiff_t units, ptrdiff_t pieces, const void *dy_,
                               const int64_t *argmax, void *dz_)
{
    const T *dy = dy_;
    T *dz = dz_;
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        T *dzr = dz + i * units * pieces;
        for (ptrdiff_t k = 0; k < units * pieces; k++) dzr[k] = 0;
        for (ptrdiff_t u = 0; u < units; u++)
            dzr[u * pieces + argmax[i * units + u]] = dy[i * units + u];
    }
}

static void F(standardize)(ptrdiff_t m, ptrdiff_t n, const void *x_, const void *mean_,
                           const void *std_, void *y_)
{
    const T *x = x_, *mean = mean_, *std = std_;
    T *y = y_;
    ptrdiff_t i;
    for (i = 0; i < m; i++) {
        const T *xr = x + i * n;
        T *yr = y + i * n;
        for (ptrdiff_t j = 0; j < n; j++) {
            /* A constant feature (std 0) is only centred. */
            const T s = std[j] != 0 ? std[j] : (T)1;
            yr[j] = (xr[j] - (mean ? mean[j] : (T)0)) / s;
        }
    }
}

#undef F
