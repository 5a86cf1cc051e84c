/* Template body of layers.c: included once per element type with T and SFX defined.
 * Every function is static and suffixed with SFX. Per-feature statistics are summed in
 * double, each column in row order. */

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

/* Mean and biased variance of columns c0..c1 (two passes: the variance is a sum of
 * squared deviations, which does not cancel catastrophically). */
static void F(chunk_moments)(ptrdiff_t m, ptrdiff_t n, const T *x, ptrdiff_t c0, ptrdiff_t c1,
                             double *mean, double *var)
{
    const ptrdiff_t w = c1 - c0;
    for (ptrdiff_t j = 0; j < w; j++) mean[j] = var[j] = 0.0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *row = x + i * n + c0;
        for (ptrdiff_t j = 0; j < w; j++) mean[j] += (double)row[j];
    }
    for (ptrdiff_t j = 0; j < w; j++) mean[j] /= (double)m;
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *row = x + i * n + c0;
        for (ptrdiff_t j = 0; j < w; j++) {
            const double d = (double)row[j] - mean[j];
            var[j] += d * d;
        }
    }
    for (ptrdiff_t j = 0; j < w; j++) var[j] /= (double)m;
}

static void F(column_moments)(ptrdiff_t m, ptrdiff_t n, const void *x_, void *mean_, void *var_)
{
    const T *x = x_;
    T *mean = mean_, *var = var_;
    ptrdiff_t c0;
    for (c0 = 0; c0 < n; c0 += FNN_COL_CHUNK) {
        const ptrdiff_t c1 = c0 + FNN_COL_CHUNK < n ? c0 + FNN_COL_CHUNK : n;
        double mu[FNN_COL_CHUNK], v[FNN_COL_CHUNK];
        F(chunk_moments)(m, n, x, c0, c1, mu, v);
        for (ptrdiff_t j = c0; j < c1; j++) {
            mean[j] = (T)mu[j - c0];
            var[j] = (T)v[j - c0];
        }
    }
}

/* y = x * a[j] + b[j] over columns c0..c1: PyTorch's folded batch-norm transform with
 * a = gamma * invstd and b = beta - mean * a. */
static void F(chunk_affine)(ptrdiff_t m, ptrdiff_t n, const T *x, ptrdiff_t c0, ptrdiff_t c1,
                            const T *a, const T *b, T *y)
{
    const ptrdiff_t w = c1 - c0;
    for (ptrdiff_t i = 0; i < m; i++) {
        const T *xr = x + i * n + c0;
        T *yr = y + i * n + c0;
        for (ptrdiff_t j = 0; j < w; j++) yr[j] = xr[j] * a[j] + b[j];
    }
}

static void F(batchnorm_train)(ptrdiff_t m, ptrdiff_t n, const void *x_, const void *gamma_,
                               const void *beta_, double eps, double momentum,
                               void *running_mean_, void *running_var_, void *y_,
                               void *save_mean_, void *save_invstd_)
{
    const T *x = x_, *gamma = gamma_, *beta = beta_;
    T *rmean = running_mean_, *rvar = running_var_, *y = y_;
    T *save_mean = save_mean_, *save_invstd = save_invstd_;
    const double unbias = m > 1 ? (double)m / (double)(m - 1) : 1.0;
    ptrdiff_t c0;
    for (c0 = 0; c0 < n; c0 += FNN_COL_CHUNK) {
        const ptrdiff_t c1 = c0 + FNN_COL_CHUNK < n ? c0 + FNN_COL_CHUNK : n;
        double mu[FNN_COL_CHUNK], v[FNN_COL_CHUNK];
        T a[FNN_COL_CHUNK], b[FNN_COL_CHUNK];
        F(chunk_moments)(m, n, x, c0, c1, mu, v);
        for (ptrdiff_t j = c0; j < c1; j++) {
            const ptrdiff_t k = j - c0;
            const T mean = (T)mu[k], invstd = (T)(1.0 / sqrt(v[k] + eps));
            save_mean[j] = mean;
            save_invstd[j] = invstd;
            if (rmean) {
                /* The running variance is the unbiased estimate; normalising uses the
                 * biased one (PyTorch). */
                rmean[j] = (T)((1.0 - momentum) * (double)rmean[j] + momentum * mu[k]);
                rvar[j] = (T)((1.0 - momentum) * (double)rvar[j] + momentum * v[k] * unbias);
            }
            a[k] = gamma ? gamma[j] * invstd : invstd;
            b[k] = (beta ? beta[j] : (T)0) - mean * a[k];
        }
        F(chunk_affine)(m, n, x, c0, c1, a, b, y);
    }
}

static void F(batchnorm_eval)(ptrdiff_t m, ptrdiff_t n, const void *x_, const void *gamma_,
                              const void *beta_, double eps, const void *running_mean_,
                              const void *running_var_, void *y_)
{
    const T *x = x_, *gamma = gamma_, *beta = beta_;
    const T *rmean = running_mean_, *rvar = running_var_;
    T *y = y_;
    ptrdiff_t c0;
    for (c0 = 0; c0 < n; c0 += FNN_COL_CHUNK) {
        const ptrdiff_t c1 = c0 + FNN_COL_CHUNK < n ? c0 + FNN_COL_CHUNK : n;
        T a[FNN_COL_CHUNK], b[FNN_COL_CHUNK];
        for (ptrdiff_t j = c0; j < c1; j++) {
            const ptrdiff_t k = j - c0;
            const T invstd = (T)(1.0 / sqrt((double)rvar[j] + eps));
            a[k] = gamma ? gamma[j] * invstd : invstd;
            b[k] = (beta ? beta[j] : (T)0) - rmean[j] * a[k];
        }
        F(chunk_affine)(m, n, x, c0, c1, a, b, y);
    }
}

static void F(batchnorm_backward)(ptrdiff_t m, ptrdiff_t n, const void *x_, const void *mean_,
                                  const void *invstd_, const void *gamma_, const void *dy_,
                                  void *dx_, void *dgamma_, void *dbeta_)
{
    const T *x = x_, *mean = mean_, *invstd = invstd_, *gamma = gamma_, *dy = dy_;
    T *dx = dx_, *dgamma = dgamma_, *dbeta = dbeta_;
    ptrdiff_t c0;
    /* With xhat = (x - mean) invstd and batch statistics depending on x:
     * dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)). */
    for (c0 = 0; c0 < n; c0 += FNN_COL_CHUNK) {
        const ptrdiff_t c1 = c0 + FNN_COL_CHUNK < n ? c0 + FNN_COL_CHUNK : n, w = c1 - c0;
        double sdy[FNN_COL_CHUNK], sdyx[FNN_COL_CHUNK];
        T mdy[FNN_COL_CHUNK], mdyx[FNN_COL_CHUNK], k1[FNN_COL_CHUNK];
        for (ptrdiff_t j = 0; j < w; j++) sdy[j] = sdyx[j] = 0.0;
        for (ptrdiff_t i = 0; i < m; i++) {
            const T *xr = x + i * n + c0, *dyr = dy + i * n + c0;
            for (ptrdiff_t j = 0; j < w; j++) {
                const double xhat = ((double)xr[j] - (double)mean[c0 + j]) * (double)invstd[c0 + j];
                sdy[j] += (double)dyr[j];
                sdyx[j] += (double)dyr[j] * xhat;
            }
        }
        for (ptrdiff_t j = 0; j < w; j++) {
            if (dgamma) dgamma[c0 + j] = (T)sdyx[j];
            if (dbeta) dbeta[c0 + j] = (T)sdy[j];
            mdy[j] = (T)(sdy[j] / (double)m);
            mdyx[j] = (T)(sdyx[j] / (double)m);
            k1[j] = (gamma ? gamma[c0 + j] : (T)1) * invstd[c0 + j];
        }
        for (ptrdiff_t i = 0; i < m; i++) {
            const T *xr = x + i * n + c0, *dyr = dy + i * n + c0;
            T *dxr = dx + i * n + c0;
            for (ptrdiff_t j = 0; j < w; j++) {
                const T xhat = (xr[j] - mean[c0 + j]) * invstd[c0 + j];
                dxr[j] = k1[j] * (dyr[j] - mdy[j] - xhat * mdyx[j]);
            }
        }
    }
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
