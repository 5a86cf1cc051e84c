/* Template body of pooling.c: included once per element type with T and SFX defined.
 * Every function is static and suffixed with SFX. A work item is a block of whole planes,
 * computed entirely by the thread that claims it (every sum and every scatter of a plane in
 * one fixed order), so results do not depend on the thread count. */

#define F(name) FNN_CAT(name, SFX)

typedef struct {
    const fnn_window2d *g;
    ptrdiff_t planes, per; /* per: planes per work item */
    int include_pad;
    const T *in;
    const int64_t *argmax_in;
    T *out;
    int64_t *argmax_out;
} F(pool_args);

/* Runs task over blocks of planes: at most FNN_MAX_BLOCKS of them, threaded when the planes
 * in and out are large enough to pay for waking the pool. */
static void F(pool_run)(F(pool_args) *A, fnn_task task)
{
    const fnn_window2d *g = A->g;
    A->per = (A->planes + FNN_MAX_BLOCKS - 1) / FNN_MAX_BLOCKS;
    if (A->per < 1) A->per = 1;
    fnn_parallel(nthreads_for(A->planes * (g->h * g->w + g->oh * g->ow)),
                 (A->planes + A->per - 1) / A->per, task, A);
}

/* The window of output o along an axis of n inputs: [*lo, *hi) within the input, and the
 * extent of the window clipped to the padded axis (pad before and after), which is
 * count_include_pad's factor. */
static inline ptrdiff_t F(span)(ptrdiff_t o, ptrdiff_t k, ptrdiff_t s, ptrdiff_t p, ptrdiff_t n,
                                ptrdiff_t *lo, ptrdiff_t *hi)
{
    const ptrdiff_t a = o * s - p, b = a + k < n + p ? a + k : n + p;
    *lo = a > 0 ? a : 0;
    *hi = b < n ? b : n;
    return b - a;
}

/* Output ox of row oy, its window clipped to the image: ties keep the first maximum and
 * the first NaN wins (NaN propagates). */
static inline void F(max_window)(const fnn_window2d *g, const T *x, ptrdiff_t y0, ptrdiff_t y1,
                                 ptrdiff_t ox, T *y, int64_t *am)
{
    ptrdiff_t x0, x1;
    F(span)(ox, g->kw, g->sw, g->pw, g->w, &x0, &x1);
    ptrdiff_t best = y0 * g->w + x0;
    T bv = x[best];
    for (ptrdiff_t r = y0; r < y1; r++)
        for (ptrdiff_t c = x0; c < x1; c++) {
            const T v = x[r * g->w + c];
            if (v > bv || (v != v && bv == bv)) {
                bv = v;
                best = r * g->w + c;
            }
        }
    *y = bv;
    *am = best;
}

/* Windows that lie inside the image columns are taken FNN_POOL_BLOCK outputs at a time, tap
 * by tap across the block: the same comparisons in the same order as F(max_window), as
 * selects that vectorise. (Branching per element on which value wins, which is data,
 * mispredicts about every other tap.) */
static void F(max_row_inner)(const fnn_window2d *g, const T *x, ptrdiff_t y0, ptrdiff_t y1,
                             ptrdiff_t oxa, ptrdiff_t oxb, T *y, int64_t *am)
{
    const ptrdiff_t w = g->w, sw = g->sw, kw = g->kw;
    for (ptrdiff_t o0 = oxa; o0 < oxb; o0 += FNN_POOL_BLOCK) {
        const ptrdiff_t nb = oxb - o0 < FNN_POOL_BLOCK ? oxb - o0 : FNN_POOL_BLOCK;
        const T *base = x + o0 * sw - g->pw;
        const ptrdiff_t first = base - x;
        T bv[FNN_POOL_BLOCK];
        int32_t bi[FNN_POOL_BLOCK];
        for (ptrdiff_t j = 0; j < nb; j++) {
            bv[j] = base[y0 * w + j * sw];
            bi[j] = (int32_t)(y0 * w + first + j * sw);
        }
        for (ptrdiff_t r = y0; r < y1; r++)
            for (ptrdiff_t c = r == y0 ? 1 : 0; c < kw; c++) {
                const T *tap = base + r * w + c;
                const int32_t at = (int32_t)(r * w + first + c);
                for (ptrdiff_t j = 0; j < nb; j++) {
                    const T v = tap[j * sw];
                    const int take = (v > bv[j]) | ((v != v) & (bv[j] == bv[j]));
                    bv[j] = take ? v : bv[j];
                    bi[j] = take ? at + (int32_t)(j * sw) : bi[j];
                }
            }
        for (ptrdiff_t j = 0; j < nb; j++) {
            y[o0 + j] = bv[j];
            am[o0 + j] = bi[j];
        }
    }
}

static int F(has_nan)(const T *restrict x, ptrdiff_t n)
{
    int bad = 0;
    for (ptrdiff_t i = 0; i < n; i++)
        bad |= x[i] != x[i];
    return bad;
}

/* One output row of 2x2 windows at stride 2 without padding (the pooling of every benchmark
 * net), from rows r0 and r1 that hold no NaN (a plane with a NaN takes the general path):
 * the larger of each row's pair (ties keep the left one), then the bottom's if strictly
 * larger, which is F(max_window)'s first maximum in row-major order, as selects that
 * vectorise (NaN-aware ones over the stride-2 taps do not). */
static void F(max_2x2_row)(const T *restrict r0, const T *restrict r1, ptrdiff_t ow,
                           ptrdiff_t w, int64_t first, T *restrict y, int64_t *restrict am)
{
    for (ptrdiff_t ox = 0; ox < ow; ox++) {
        T a = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
        int tl = b > a, tr = d > c;
        T l = tl ? b : a, r = tr ? d : c;
        int t = r > l;
        y[ox] = t ? r : l;
        am[ox] = first + 2 * ox + (t ? w + tr : tl);
    }
}

static void F(maxpool_task)(void *ctx, ptrdiff_t item)
{
    const F(pool_args) *A = ctx;
    const fnn_window2d *g = A->g;
    const int two = g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 &&
                    g->pw == 0;
    /* Outputs [oxa, oxb) have their whole window inside the columns; the block path keeps
     * indices in 32 bits. */
    ptrdiff_t oxa = (g->pw + g->sw - 1) / g->sw, oxb = 0;
    if (g->w >= g->kw && g->h * g->w <= INT32_MAX)
        oxb = (g->w - g->kw + g->pw) / g->sw + 1;
    oxb = oxb < g->ow ? oxb : g->ow;
    oxa = oxa < oxb ? oxa : oxb;
    FNN_POOL_PLANES(A, item);
    for (ptrdiff_t p = p0; p < p1; p++) {
        const T *x = A->in + p * g->h * g->w;
        T *y = A->out + p * g->oh * g->ow;
        int64_t *am = A->argmax_out + p * g->oh * g->ow;
        /* One check a plane: the rows of the nets' later layers are a few windows wide. */
        const int fast = two && !F(has_nan)(x, g->h * g->w);
        for (ptrdiff_t oy = 0; oy < g->oh; oy++) {
            ptrdiff_t y0, y1;
            F(span)(oy, g->kh, g->sh, g->ph, g->h, &y0, &y1);
            T *yr = y + oy * g->ow;
            int64_t *ar = am + oy * g->ow;
            if (fast) {
                F(max_2x2_row)(x + y0 * g->w, x + (y0 + 1) * g->w, g->ow, g->w, y0 * g->w, yr,
                               ar);
                continue;
            }
            for (ptrdiff_t ox = 0; ox < oxa; ox++)
                F(max_window)(g, x, y0, y1, ox, yr + ox, ar + ox);
            F(max_row_inner)(g, x, y0, y1, oxa, oxb, yr, ar);
            for (ptrdiff_t ox = oxb > oxa ? oxb : oxa; ox < g->ow; ox++)
                F(max_window)(g, x, y0, y1, ox, yr + ox, ar + ox);
        }
    }
}

static void F(maxpool2d_forward)(ptrdiff_t planes, const fnn_window2d *g, const void *x,
                                 void *y, int64_t *argmax)
{
    F(pool_args) A = {.g = g, .planes = planes, .in = x, .out = y, .argmax_out = argmax};
    F(pool_run)(&A, F(maxpool_task));
}

static void F(maxpool_backward_task)(void *ctx, ptrdiff_t item)
{
    const F(pool_args) *A = ctx;
    const fnn_window2d *g = A->g;
    const ptrdiff_t in = g->h * g->w, out = g->oh * g->ow;
    FNN_POOL_PLANES(A, item);
    for (ptrdiff_t p = p0; p < p1; p++) {
        const T *dy = A->in + p * out;
        const int64_t *am = A->argmax_in + p * out;
        T *dx = A->out + p * in;
        for (ptrdiff_t i = 0; i < in; i++) dx[i] = 0;
        for (ptrdiff_t o = 0; o < out; o++) dx[am[o]] += dy[o];
    }
}

static void F(maxpool2d_backward)(ptrdiff_t planes, const fnn_window2d *g, const void *dy,
                                  const int64_t *argmax, void *dx)
{
    F(pool_args) A = {.g = g, .planes = planes, .in = dy, .argmax_in = argmax, .out = dx};
    F(pool_run)(&A, F(maxpool_backward_task));
}

static void F(avgpool_task)(void *ctx, ptrdiff_t item)
{
    const F(pool_args) *A = ctx;
    const fnn_window2d *g = A->g;
    FNN_POOL_PLANES(A, item);
    for (ptrdiff_t p = p0; p < p1; p++) {
        const T *x = A->in + p * g->h * g->w;
        T *y = A->out + p * g->oh * g->ow;
        for (ptrdiff_t oy = 0; oy < g->oh; oy++) {
            ptrdiff_t y0, y1;
            const ptrdiff_t ey = F(span)(oy, g->kh, g->sh, g->ph, g->h, &y0, &y1);
            for (ptrdiff_t ox = 0; ox < g->ow; ox++) {
                ptrdiff_t x0, x1;
                const ptrdiff_t ex = F(span)(ox, g->kw, g->sw, g->pw, g->w, &x0, &x1);
                double sum = 0.0;
                for (ptrdiff_t r = y0; r < y1; r++)
                    for (ptrdiff_t c = x0; c < x1; c++) sum += (double)x[r * g->w + c];
                const ptrdiff_t count = A->include_pad ? ey * ex : (y1 - y0) * (x1 - x0);
                y[oy * g->ow + ox] = (T)(sum / (double)count);
            }
        }
    }
}

static void F(avgpool2d_forward)(ptrdiff_t planes, const fnn_window2d *g, int include_pad,
                                 const void *x, void *y)
{
    F(pool_args) A = {.g = g, .planes = planes, .include_pad = include_pad, .in = x, .out = y};
    F(pool_run)(&A, F(avgpool_task));
}

static void F(avgpool_backward_task)(void *ctx, ptrdiff_t item)
{
    const F(pool_args) *A = ctx;
    const fnn_window2d *g = A->g;
    FNN_POOL_PLANES(A, item);
    for (ptrdiff_t p = p0; p < p1; p++) {
        const T *dy = A->in + p * g->oh * g->ow;
        T *dx = A->out + p * g->h * g->w;
        for (ptrdiff_t i = 0; i < g->h * g->w; i++) dx[i] = 0;
        for (ptrdiff_t oy = 0; oy < g->oh; oy++) {
            ptrdiff_t y0, y1;
            const ptrdiff_t ey = F(span)(oy, g->kh, g->sh, g->ph, g->h, &y0, &y1);
            for (ptrdiff_t ox = 0; ox < g->ow; ox++) {
                ptrdiff_t x0, x1;
                const ptrdiff_t ex = F(span)(ox, g->kw, g->sw, g->pw, g->w, &x0, &x1);
                const ptrdiff_t count = A->include_pad ? ey * ex : (y1 - y0) * (x1 - x0);
                const T share = (T)((double)dy[oy * g->ow + ox] / (double)count);
                for (ptrdiff_t r = y0; r < y1; r++)
                    for (ptrdiff_t c = x0; c < x1; c++) dx[r * g->w + c] += share;
            }
        }
    }
}

static void F(avgpool2d_backward)(ptrdiff_t planes, const fnn_window2d *g, int include_pad,
                                  const void *dy, void *dx)
{
    F(pool_args) A = {.g = g, .planes = planes, .include_pad = include_pad, .in = dy, .out = dx};
    F(pool_run)(&A, F(avgpool_backward_task));
}

#undef F
