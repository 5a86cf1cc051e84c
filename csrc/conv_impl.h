/* Template body of conv.c: included once per element type and ISA by kernel_instances.h,
 * with T and SFX defined. The GEMM picks its own instruction set; the wider build pays in
 * the patch copies.
 *
 * Per image and group, with P = oh * ow output pixels and K = (c / groups) * kh * kw taps:
 *   cols[K, P]  = the image's patches (the image itself for a pointwise conv)
 *   y[Og, P]    = W[Og, K] @ cols + bias          (bias written first, then accumulated)
 *   dW[Og, K]  += dz[Og, P] @ cols^T
 *   dcols[K, P] = W^T @ dz, added back onto dx (col2im)
 * cols is either copied out (im2col) or, with enough taps (conv_implicit in conv.c), never
 * formed: the micro-kernel reads it in place from the (zero-padded) image through
 * fnn_gather tables, as the A operand of the transposed products
 *   y^T[P, Og] = cols^T @ W^T + bias,   dW^T[K, Og] += cols @ dz^T,
 * and at stride 1 with an output no smaller than the input (conv_transposed_dx) the input
 * gradient is a convolution of dz read the same way (F(dz_padded)). Every product runs on
 * the thread of its pool task. */

#define F(name) FNN_CAT(name, SFX)
#define DT (sizeof(T) == 4 ? FNN_F32 : FNN_F64)

/* The outputs [*lo, *hi) of n_out whose input i0 + o * s lies inside [0, n). */
static void F(valid_range)(ptrdiff_t i0, ptrdiff_t s, ptrdiff_t n, ptrdiff_t n_out,
                           ptrdiff_t *lo, ptrdiff_t *hi)
{
    ptrdiff_t a = i0 >= 0 ? 0 : (-i0 + s - 1) / s;
    ptrdiff_t b = i0 >= n ? 0 : (n - 1 - i0) / s + 1;
    *lo = a < n_out ? a : n_out;
    *hi = b < n_out ? b : n_out;
    if (*hi < *lo)
        *hi = *lo;
}

/* The patches of output rows [oy0, oy1), rows `ld` apart:
 * cols[((ci * kh + ky) * kw + kx) * ld + (oy - oy0) * ow + ox] = x[ci][iy][ix], zero outside
 * the image. */
FNN_NO_LIBCALLS static void F(im2col)(const fnn_conv2d_geom *g, ptrdiff_t cg,
                                      const T *restrict x, ptrdiff_t oy0, ptrdiff_t oy1,
                                      T *restrict cols, ptrdiff_t ld)
{
    const ptrdiff_t ow = g->ow, h = g->h, w = g->w, sh = g->sh, sw = g->sw;
    const ptrdiff_t P = ld;
    for (ptrdiff_t ci = 0; ci < cg; ci++)
        for (ptrdiff_t ky = 0; ky < g->kh; ky++)
            for (ptrdiff_t kx = 0; kx < g->kw; kx++) {
                T *restrict row = cols + ((ci * g->kh + ky) * g->kw + kx) * P;
                ptrdiff_t ix0 = kx * g->dw - g->pw, lo, hi;
                F(valid_range)(ix0, g->sw, g->w, g->ow, &lo, &hi);
                for (ptrdiff_t oy = oy0; oy < oy1; oy++) {
                    T *restrict dst = row + (oy - oy0) * ow;
                    const ptrdiff_t iy = oy * sh - g->ph + ky * g->dh;
                    if (iy < 0 || iy >= h) {
                        for (ptrdiff_t ox = 0; ox < ow; ox++)
                            dst[ox] = 0;
                        continue;
                    }
                    const T *restrict src = x + (ci * h + iy) * w + ix0;
                    for (ptrdiff_t ox = 0; ox < lo; ox++)
                        dst[ox] = 0;
                    if (sw == 1)
                        for (ptrdiff_t ox = lo; ox < hi; ox++)
                            dst[ox] = src[ox];
                    else
                        for (ptrdiff_t ox = lo; ox < hi; ox++)
                            dst[ox] = src[ox * sw];
                    for (ptrdiff_t ox = hi; ox < ow; ox++)
                        dst[ox] = 0;
                }
            }
}

/* dx[ci][iy][ix] += dcols[...][...] for output rows [oy0, oy1): im2col's adjoint, in a
 * fixed order. */
static void F(col2im)(const fnn_conv2d_geom *g, ptrdiff_t cg, const T *dcols, ptrdiff_t oy0,
                       ptrdiff_t oy1, T *dx)
{
    ptrdiff_t P = (oy1 - oy0) * g->ow;
    for (ptrdiff_t ci = 0; ci < cg; ci++)
        for (ptrdiff_t ky = 0; ky < g->kh; ky++)
            for (ptrdiff_t kx = 0; kx < g->kw; kx++) {
                const T *row = dcols + ((ci * g->kh + ky) * g->kw + kx) * P;
                ptrdiff_t ix0 = kx * g->dw - g->pw, lo, hi;
                F(valid_range)(ix0, g->sw, g->w, g->ow, &lo, &hi);
                for (ptrdiff_t oy = oy0; oy < oy1; oy++) {
                    ptrdiff_t iy = oy * g->sh - g->ph + ky * g->dh;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    const T *src = row + (oy - oy0) * g->ow;
                    T *dst = dx + (ci * g->h + iy) * g->w + ix0;
                    for (ptrdiff_t ox = lo; ox < hi; ox++)
                        dst[ox * g->sw] += src[ox];
                }
            }
}

/* Columns per output row of dcols for F(col2im_rows): the output row's ow values, then
 * zeros enough that every input column a tap reads is its own output column or a zero. */
static ptrdiff_t F(dz_row_width)(const fnn_conv2d_geom *g)
{
    ptrdiff_t reach = g->ow + (g->kw - 1) * g->dw - g->pw, right = g->w + g->pw;
    ptrdiff_t wz = reach > right ? reach : right;
    return wz > g->ow ? wz : g->ow;
}

static void F(add_run)(T *restrict dst, const T *restrict src, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        dst[i] += src[i];
}

/* F(col2im) at column stride 1, from dcols whose output rows are wz = F(dz_row_width)
 * columns apart with zeros past ow: each tap adds whole input rows, without bounds per
 * column (where the tap reads past its outputs it reads zeros, at worst the previous tap's
 * last ones, never before dcols: tap (ci, ky, kx) starts at least kx * (wz - dw) + pw >= 0
 * elements in) and, when the rows are contiguous on both sides, as one run. Per input
 * element, the same sum in the same order as F(col2im), plus zeros. */
static void F(col2im_rows)(const fnn_conv2d_geom *g, ptrdiff_t cg, const T *dcols,
                           ptrdiff_t oy0, ptrdiff_t oy1, ptrdiff_t wz, T *dx)
{
    ptrdiff_t Pz = (oy1 - oy0) * wz, w = g->w;
    for (ptrdiff_t ci = 0; ci < cg; ci++)
        for (ptrdiff_t ky = 0; ky < g->kh; ky++)
            for (ptrdiff_t kx = 0; kx < g->kw; kx++) {
                const T *row = dcols + ((ci * g->kh + ky) * g->kw + kx) * Pz + g->pw - kx * g->dw;
                ptrdiff_t iy0 = oy0 * g->sh - g->ph + ky * g->dh, lo, hi;
                F(valid_range)(iy0, g->sh, g->h, oy1 - oy0, &lo, &hi);
                if (lo == hi)
                    continue;
                T *dst = dx + (ci * g->h + iy0 + lo * g->sh) * w;
                if (g->sh == 1 && wz == w)
                    F(add_run)(dst, row + lo * wz, (hi - lo) * w);
                else
                    for (ptrdiff_t r = lo; r < hi; r++)
                        F(add_run)(dst + (r - lo) * g->sh * w, row + r * wz, w);
            }
}

/* x[0] + ... + x[n-1] in CONV_LANES partial sums added in a fixed order: the loop
 * vectorises (one running sum would wait on each add) and the result depends on n only. */
static T F(row_sum)(const T *restrict x, ptrdiff_t n)
{
    T lane[CONV_LANES] = {0};
    ptrdiff_t i = 0;
    for (; i + CONV_LANES <= n; i += CONV_LANES)
        for (int l = 0; l < CONV_LANES; l++)
            lane[l] += x[i + l];
    for (; i < n; i++)
        lane[0] += x[i];
    T s = 0;
    for (int l = 0; l < CONV_LANES; l++)
        s += lane[l];
    return s;
}

typedef struct {
    const fnn_conv2d_geom *g;
    const T *x, *w, *bias, *dy, *y;
    T *out, *dx, *dw_parts, *db_parts;
    T *kept; /* every image's patches, [n][group][K][P], or NULL (see fastnn.h) */
    int act;
    double slope;
    ptrdiff_t chunks, parts; /* backward: image chunks; implicit forward: parts an image */
    int implicit, transposed_dx;
    /* Built once a call and shared by the tasks (F(shared_setup)): the patch tables, and
     * Z's (transposed input gradient); the weights packed as the products' B, a group's
     * `wpk_group` elements apart (forward: W^T; backward: Wr). */
    const ptrdiff_t *tab, *ztab;
    const T *wpk;
    ptrdiff_t wpk_group;
    _Atomic int err;
} F(conv_job);

/* One image group's input as the base of its patch matrix: the image itself, or a copy
 * with the zero padding around it. The tables (fnn_gather) address the patch matrix
 * cols[K, P] of the comment at the top in it: rows[(ci, ky, kx)], cols[(oy, ox)]. */
typedef struct {
    ptrdiff_t hp, wp; /* the padded image's extent: every row and column a patch reads */
    int copy;         /* 0: the image itself is that extent's top-left corner */
} F(padded);

static F(padded) F(padded_geom)(const fnn_conv2d_geom *g)
{
    F(padded) q;
    q.hp = (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1;
    q.wp = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    q.copy = g->ph != 0 || g->pw != 0 || q.hp > g->h || q.wp > g->w;
    if (!q.copy) {
        q.hp = g->h;
        q.wp = g->w;
    }
    return q;
}

static void F(gather_tables)(const fnn_conv2d_geom *g, F(padded) q, ptrdiff_t cg,
                             ptrdiff_t *rows, ptrdiff_t *cols)
{
    for (ptrdiff_t ci = 0; ci < cg; ci++)
        for (ptrdiff_t ky = 0; ky < g->kh; ky++)
            for (ptrdiff_t kx = 0; kx < g->kw; kx++)
                *rows++ = (ci * q.hp + ky * g->dh) * q.wp + kx * g->dw;
    for (ptrdiff_t oy = 0; oy < g->oh; oy++)
        for (ptrdiff_t ox = 0; ox < g->ow; ox++)
            *cols++ = oy * g->sh * q.wp + ox * g->sw;
}

/* `planes` planes of h x w at src, each placed at row `top`, column `left` of a zeroed
 * hp x wp plane in dst (rows or columns past hp, wp dropped). */
static void F(pad_planes)(const T *src, ptrdiff_t planes, ptrdiff_t h, ptrdiff_t w,
                          ptrdiff_t top, ptrdiff_t left, ptrdiff_t hp, ptrdiff_t wp,
                          T *restrict dst)
{
    for (ptrdiff_t ci = 0; ci < planes; ci++)
        for (ptrdiff_t r = 0; r < hp; r++) {
            T *d = dst + (ci * hp + r) * wp;
            ptrdiff_t iy = r - top;
            if (iy < 0 || iy >= h) {
                for (ptrdiff_t j = 0; j < wp; j++)
                    d[j] = 0;
                continue;
            }
            const T *s = src + (ci * h + iy) * w;
            for (ptrdiff_t j = 0; j < wp; j++) {
                ptrdiff_t ix = j - left;
                d[j] = ix >= 0 && ix < w ? s[ix] : 0;
            }
        }
}

/* A product of og x K by `extra` columns of zeros per pair, off the FLOP count. */
static void F(discount)(ptrdiff_t og, ptrdiff_t K, ptrdiff_t extra)
{
    fnn_gemm_flop_discount(2 * (uint64_t)og * (uint64_t)K * (uint64_t)extra);
}

/* The patches of output rows [oy0, oy1) of a stride-1 convolution (conv_wide in conv.c)
 * in rows of the padded image's width wp: cols[t * (oy1 - oy0) * wp + (oy - oy0) * wp + ox]
 * for tap t = (ci, ky, kx), each tap's row one run of the padded image xp from its row
 * oy0 + ky * dh, column kx * dw. The columns from ow on, where the run passes through the
 * next image row (the last row's are not copied), are zeroed: the weight gradient
 * multiplies them by dz's zeros, and an infinity there would make NaN of them. */
FNN_NO_LIBCALLS static void F(im2col_wide)(const fnn_conv2d_geom *g, ptrdiff_t cg, const T *xp,
                                           F(padded) q, ptrdiff_t oy0, ptrdiff_t oy1,
                                           T *restrict cols)
{
    ptrdiff_t rows = oy1 - oy0, wp = q.wp, run = (rows - 1) * wp + g->ow;
    for (ptrdiff_t ci = 0; ci < cg; ci++)
        for (ptrdiff_t ky = 0; ky < g->kh; ky++)
            for (ptrdiff_t kx = 0; kx < g->kw; kx++) {
                T *restrict row = cols + ((ci * g->kh + ky) * g->kw + kx) * rows * wp;
                const T *src = xp + (ci * q.hp + oy0 + ky * g->dh) * wp + kx * g->dw;
                for (ptrdiff_t i = 0; i < run; i++)
                    row[i] = src[i];
                for (ptrdiff_t r = 0; r < rows; r++)
                    for (ptrdiff_t c = g->ow; c < wp; c++)
                        row[r * wp + c] = 0;
            }
}

/* Rows [oy0, oy1) of og planes of dz (P = oh * ow apart) in rows of wd >= ow columns, zeros
 * after each row's ow values. */
FNN_NO_LIBCALLS static void F(widen_rows)(const fnn_conv2d_geom *g, ptrdiff_t og,
                                          const T *restrict dz, ptrdiff_t oy0, ptrdiff_t oy1,
                                          ptrdiff_t wd, T *restrict out)
{
    ptrdiff_t P = g->oh * g->ow, ow = g->ow;
    for (ptrdiff_t o = 0; o < og; o++)
        for (ptrdiff_t oy = oy0; oy < oy1; oy++) {
            const T *restrict src = dz + o * P + oy * ow;
            T *restrict dst = out + (o * (oy1 - oy0) + oy - oy0) * wd;
            for (ptrdiff_t c = 0; c < ow; c++)
                dst[c] = src[c];
            for (ptrdiff_t c = ow; c < wd; c++)
                dst[c] = 0;
        }
}

/* The input gradient of a stride-1 convolution as a convolution itself (conv_transposed_dx
 * in conv.c): dx[c][iy][ix] = sum over (o, ky, kx) of W[o][c][ky][kx] *
 * dz[o][iy + ph - ky * dh][ix + pw - kx * dw], zero outside dz. As a product,
 *   dx^T[HW, cg] = Z[HW, Og * kh * kw] @ Wr[Og * kh * kw, cg],
 * Z read in place from dz zero-padded by (top, left) into planes of hz x wz, Wr the group's
 * weights with the output channel and taps as rows. No col2im scatter, no dx zeroing. */
typedef struct {
    ptrdiff_t top, left, hz, wz;
} F(dz_padded);

static F(dz_padded) F(dz_padded_geom)(const fnn_conv2d_geom *g)
{
    F(dz_padded) z;
    ptrdiff_t reach_y = (g->kh - 1) * g->dh - g->ph, reach_x = (g->kw - 1) * g->dw - g->pw;
    z.top = reach_y > 0 ? reach_y : 0;
    z.left = reach_x > 0 ? reach_x : 0;
    /* Every row dz has and every row a tap reads: up to h - 1 + ph below the top. */
    z.hz = z.top + (g->h + g->ph > g->oh ? g->h + g->ph : g->oh);
    z.wz = z.left + (g->w + g->pw > g->ow ? g->w + g->pw : g->ow);
    return z;
}

/* Z's tables (fnn_gather): rows[iy * w + ix], cols[(o * kh + ky) * kw + kx]. */
static void F(dz_tables)(const fnn_conv2d_geom *g, F(dz_padded) z, ptrdiff_t og,
                         ptrdiff_t *rows, ptrdiff_t *cols)
{
    for (ptrdiff_t iy = 0; iy < g->h; iy++)
        for (ptrdiff_t ix = 0; ix < g->w; ix++)
            *rows++ = (iy + g->ph + z.top) * z.wz + ix + g->pw + z.left;
    for (ptrdiff_t o = 0; o < og; o++)
        for (ptrdiff_t ky = 0; ky < g->kh; ky++)
            for (ptrdiff_t kx = 0; kx < g->kw; kx++)
                *cols++ = o * z.hz * z.wz - ky * g->dh * z.wz - kx * g->dw;
}

/* Task t: image t / parts, its pixels' part t % parts (a pixel's arithmetic does not
 * depend on the range it is computed in). The product is the transposed one,
 * y^T[P, Og] = cols^T @ W^T + bias, so that the patches are A, read in place by the
 * indirect micro-kernel (fnn_gemm_gather), and the output channels fill its columns. */
static void F(forward_image_implicit)(void *ctx, ptrdiff_t t)
{
    F(conv_job) *J = ctx;
    const fnn_conv2d_geom *g = J->g;
    ptrdiff_t P = g->oh * g->ow, cg = g->c / g->groups, og = g->o / g->groups;
    ptrdiff_t K = cg * g->kh * g->kw, n = t / J->parts, part = t % J->parts;
    ptrdiff_t p0 = P * part / J->parts, p1 = P * (part + 1) / J->parts;
    if (p0 >= p1)
        return;
    F(padded) q = F(padded_geom)(g);
    T *padded = NULL;
    if (q.copy && !(padded = fnn_scratch(FNN_SCRATCH_CONV_COLS,
                                         (size_t)(cg * q.hp * q.wp) * sizeof(T)))) {
        atomic_store(&J->err, FNN_ENOMEM);
        return;
    }
    /* cols^T's element (p, k) is at base[pixel p's offset + tap k's]. */
    fnn_gather ga = {J->tab + K + p0, J->tab};
    for (ptrdiff_t gi = 0; gi < g->groups; gi++) {
        const T *xg = J->x + (n * g->c + gi * cg) * g->h * g->w;
        if (q.copy)
            F(pad_planes)(xg, cg, g->h, g->w, g->ph, g->pw, q.hp, q.wp, padded);
        int rc = fnn_gemm_gather(DT, p1 - p0, og, K, q.copy ? padded : xg, &ga,
                                 J->wpk + gi * J->wpk_group,
                                 J->out + (n * g->o + gi * og) * P + p0, 1, P, 0,
                                 J->bias ? J->bias + gi * og : NULL, J->act, J->slope);
        if (rc != FNN_OK)
            atomic_store(&J->err, rc);
    }
}

static void F(forward_image)(void *ctx, ptrdiff_t n)
{
    F(conv_job) *J = ctx;
    const fnn_conv2d_geom *g = J->g;
    ptrdiff_t P = g->oh * g->ow, cg = g->c / g->groups, og = g->o / g->groups;
    ptrdiff_t K = cg * g->kh * g->kw, rows = conv_slice_rows(g, sizeof(T));
    int pointwise = conv_pointwise(g), keep = J->kept && !pointwise, wide = conv_wide(g);
    F(padded) q = F(padded_geom)(g);
    /* Scratch: the patches (not kept), and with wide rows the padded image and the output
     * slice in wide rows. */
    ptrdiff_t wp = wide ? q.wp : g->ow;
    size_t n_cols = pointwise || keep ? 0 : (size_t)(K * rows * wp);
    size_t n_pad = wide && q.copy ? (size_t)(cg * q.hp * q.wp) : 0;
    size_t n_yw = wide ? (size_t)(og * rows * wp) : 0;
    T *cols = NULL, *padded = NULL, *yw = NULL;
    if (n_cols) {
        cols = fnn_scratch(FNN_SCRATCH_CONV_COLS, (n_cols + n_pad + n_yw) * sizeof(T));
        if (!cols) {
            atomic_store(&J->err, FNN_ENOMEM);
            return;
        }
        padded = cols + n_cols;
        yw = padded + n_pad;
    }
    for (ptrdiff_t gi = 0; gi < g->groups; gi++) {
        const T *xg = J->x + (n * g->c + gi * cg) * g->h * g->w;
        T *kept = keep ? J->kept + (n * g->groups + gi) * K * P : NULL;
        if (n_pad)
            F(pad_planes)(xg, cg, g->h, g->w, g->ph, g->pw, q.hp, q.wp, padded);
        for (ptrdiff_t oy0 = 0; oy0 < g->oh; oy0 += rows) {
            ptrdiff_t oy1 = oy0 + rows < g->oh ? oy0 + rows : g->oh, ps = (oy1 - oy0) * g->ow;
            ptrdiff_t off = oy0 * g->ow, ld = pointwise || keep ? P : ps;
            T *yg = J->out + (n * g->o + gi * og) * P + off;
            if (wide) {
                /* y in rows of wp, its columns past ow dropped after the activation. */
                ptrdiff_t pz = (oy1 - oy0) * wp;
                F(im2col_wide)(g, cg, n_pad ? padded : xg, q, oy0, oy1, cols);
                if (J->bias)
                    for (ptrdiff_t o = 0; o < og; o++)
                        for (ptrdiff_t p = 0; p < pz; p++)
                            yw[o * pz + p] = J->bias[gi * og + o];
                int rc = fnn_gemm(DT, og, pz, K, J->w + gi * og * K, K, 1, cols, pz, 1, yw, pz,
                                  1, J->bias != NULL, NULL, J->act, J->slope);
                F(discount)(og, K, pz - ps);
                if (rc != FNN_OK)
                    atomic_store(&J->err, rc);
                for (ptrdiff_t o = 0; o < og; o++)
                    for (ptrdiff_t r = 0; r < oy1 - oy0; r++)
                        for (ptrdiff_t c = 0; c < g->ow; c++)
                            yg[o * P + r * g->ow + c] = yw[o * pz + r * wp + c];
                continue;
            }
            T *c = keep ? kept + off : cols;
            const T *b = pointwise ? xg + off : c;
            if (!pointwise)
                F(im2col)(g, cg, xg, oy0, oy1, c, ld);
            if (J->bias)
                for (ptrdiff_t o = 0; o < og; o++)
                    for (ptrdiff_t p = 0; p < ps; p++)
                        yg[o * P + p] = J->bias[gi * og + o];
            int rc = fnn_gemm(DT, og, ps, K, J->w + gi * og * K, K, 1, b, ld, 1, yg, P, 1,
                              J->bias != NULL, NULL, J->act, J->slope);
            if (rc != FNN_OK)
                atomic_store(&J->err, rc);
        }
    }
}

/* One chunk of images: its partial weight and bias gradients (summed over the chunk's
 * images in order) and the input gradients of its images. */
static void F(backward_chunk)(void *ctx, ptrdiff_t chunk)
{
    F(conv_job) *J = ctx;
    const fnn_conv2d_geom *g = J->g;
    ptrdiff_t P = g->oh * g->ow, cg = g->c / g->groups, og = g->o / g->groups;
    int pointwise = conv_pointwise(g), implicit = J->implicit, wide = conv_wide(g);
    int keep = J->kept && !pointwise && !implicit;
    int tdx = J->dx && J->transposed_dx, sdx = J->dx && !tdx; /* transposed, sliced */
    /* Sliced, dcols by rows (F(col2im_rows)): for output rows shorter than 16, where
     * F(col2im)'s per-row work dominates (AMD EPYC Zen 4, float32, batch 64, backward with
     * the input gradient: 6->16 5x5 on 14x14 1.13x faster, 16->32 5x5 on 10x10 1.25x, 8->16
     * 3x3 on 14x14 1.04x; with rows of 24, 6->16 5x5 on 28x28 and 32->64 3x3 on 26x26,
     * 1-3% slower: the wider dcols costs more than the scatter saves). */
    int rdx = sdx && !pointwise && g->sw == 1 && g->ow < 16;
    ptrdiff_t K = cg * g->kh * g->kw, HW = g->h * g->w, rows = conv_slice_rows(g, sizeof(T));
    ptrdiff_t KZ = og * g->kh * g->kw; /* Z's columns (the transposed input gradient) */
    int need_dz = J->act != FNN_ACT_IDENTITY;
    F(padded) q = F(padded_geom)(g);
    F(dz_padded) z = F(dz_padded_geom)(g);
    ptrdiff_t wz = rdx ? F(dz_row_width)(g) : g->ow, wp = wide ? q.wp : g->ow;
    /* Scratch: dW^T, the padded image (implicit, wide rows) and dz^T packed (implicit);
     * the padded dz (transposed input gradient); the patches being rebuilt (im2col, none
     * when kept) and the slice's dz in their wide rows; their gradient (sliced input
     * gradient) and the slice's dz in rows of wz; one image's dz. */
    size_t slice = pointwise ? 0 : (size_t)(K * rows * g->ow);
    size_t n_dwt = implicit ? (size_t)(g->o * K) : 0;
    size_t n_pad = (implicit || wide) && q.copy ? (size_t)(cg * q.hp * q.wp) : 0;
    size_t n_dzt = implicit ? fnn_gemm_packed_b_size(DT, P, og) / sizeof(T) : 0;
    size_t n_zp = tdx ? (size_t)(og * z.hz * z.wz) : 0;
    size_t n_cols = keep || implicit ? 0 : wide ? (size_t)(K * rows * wp) : slice;
    size_t n_dzw = wide ? (size_t)(og * rows * wp) : 0;
    size_t n_dcols = !sdx ? 0 : rdx ? (size_t)(K * rows * wz) : slice;
    size_t n_dzr = rdx && wz > g->ow ? (size_t)(og * rows * wz) : 0;
    size_t n_dz = need_dz ? (size_t)(g->o * P) : 0;
    T *dwt = fnn_scratch(FNN_SCRATCH_CONV_COLS,
                         (n_dwt + n_pad + n_dzt + n_zp + n_cols + n_dzw + n_dcols + n_dzr +
                          n_dz + 1) * sizeof(T));
    if (!dwt) {
        atomic_store(&J->err, FNN_ENOMEM);
        return;
    }
    T *padded = dwt + n_dwt, *zp = padded + n_pad, *cols = zp + n_zp;
    T *dzw = cols + n_cols, *dcols = dzw + n_dzw, *dzr = dcols + n_dcols, *dz = dzr + n_dzr;
    T *dzt = dz + n_dz;
    fnn_gather ga = {J->tab, J->tab + K}, gz = {J->ztab, J->ztab + HW};
    T *dw = J->dw_parts + chunk * g->o * K;
    T *db = J->db_parts ? J->db_parts + chunk * g->o : NULL;
    ptrdiff_t n0 = g->n * chunk / J->chunks, n1 = g->n * (chunk + 1) / J->chunks;
    for (ptrdiff_t n = n0; n < n1; n++) {
        const T *dyn = J->dy + n * g->o * P;
        if (need_dz) {
            fnn_act_backward(DT, g->o, P, J->act, J->slope, J->y + n * g->o * P, dyn, dz, NULL);
            dyn = dz;
        }
        if (db)
            for (ptrdiff_t o = 0; o < g->o; o++)
                db[o] = (n == n0 ? 0 : db[o]) + F(row_sum)(dyn + o * P, P);
        for (ptrdiff_t gi = 0; gi < g->groups; gi++) {
            const T *xg = J->x + (n * g->c + gi * cg) * HW;
            const T *wg = J->w + gi * og * K;
            const T *dzg0 = dyn + gi * og * P;
            T *dxg = J->dx ? J->dx + (n * g->c + gi * cg) * HW : NULL;
            if (sdx && !pointwise)
                for (ptrdiff_t i = 0; i < cg * HW; i++)
                    dxg[i] = 0;
            int rc = FNN_OK;
            if (n_pad)
                F(pad_planes)(xg, cg, g->h, g->w, g->ph, g->pw, q.hp, q.wp, padded);
            if (implicit) {
                /* dW^T[K, Og] (+)= cols @ dz^T, summed over the chunk's images in order. */
                fnn_gemm_pack_b(DT, P, og, dzg0, 1, P, dzt);
                rc = fnn_gemm_gather(DT, K, og, P, q.copy ? padded : xg, &ga, dzt,
                                     dwt + gi * og * K, og, 1, n > n0, NULL, FNN_ACT_IDENTITY,
                                     0);
            }
            if (rc == FNN_OK && tdx) {
                F(pad_planes)(dzg0, og, g->oh, g->ow, z.top, z.left, z.hz, z.wz, zp);
                rc = fnn_gemm_gather(DT, HW, cg, KZ, zp, &gz, J->wpk + gi * J->wpk_group, dxg,
                                     1, HW, 0, NULL, FNN_ACT_IDENTITY, 0);
            }
            /* The slices: the weight gradient from the patch copies, the input gradient
             * through dcols and col2im. */
            ptrdiff_t oh_sliced = implicit && !sdx ? 0 : g->oh;
            for (ptrdiff_t oy0 = 0; oy0 < oh_sliced && rc == FNN_OK; oy0 += rows) {
                ptrdiff_t oy1 = oy0 + rows < g->oh ? oy0 + rows : g->oh;
                ptrdiff_t ps = (oy1 - oy0) * g->ow, off = oy0 * g->ow;
                const T *dzg = dzg0 + off;
                ptrdiff_t ld = pointwise || keep ? P : ps;
                const T *c = pointwise ? xg + off
                             : keep    ? J->kept + (n * g->groups + gi) * K * P + off
                                       : cols;
                if (wide) {
                    /* dW += dz @ cols^T over wide rows, dz's extra columns zero. */
                    ptrdiff_t pz = (oy1 - oy0) * wp;
                    F(im2col_wide)(g, cg, n_pad ? padded : xg, q, oy0, oy1, cols);
                    F(widen_rows)(g, og, dzg0, oy0, oy1, wp, dzw);
                    rc = fnn_gemm(DT, og, K, pz, dzw, pz, 1, cols, 1, pz, dw + gi * og * K, K,
                                  1, n > n0 || oy0 > 0, NULL, FNN_ACT_IDENTITY, 0);
                    F(discount)(og, K, pz - ps);
                } else if (!implicit) {
                    if (!pointwise && !keep)
                        F(im2col)(g, cg, xg, oy0, oy1, cols, ps);
                    rc = fnn_gemm(DT, og, K, ps, dzg, P, 1, c, 1, ld, dw + gi * og * K, K, 1,
                                  n > n0 || oy0 > 0, NULL, FNN_ACT_IDENTITY, 0);
                }
                if (rc == FNN_OK && sdx) {
                    if (pointwise) {
                        rc = fnn_gemm(DT, K, ps, og, wg, 1, K, dzg, P, 1, dxg + off, HW, 1, 0,
                                      NULL, FNN_ACT_IDENTITY, 0);
                    } else if (rdx) {
                        ptrdiff_t pz = (oy1 - oy0) * wz;
                        const T *dzb = dzg;
                        if (n_dzr) {
                            F(widen_rows)(g, og, dzg0, oy0, oy1, wz, dzr);
                            dzb = dzr;
                        }
                        rc = fnn_gemm(DT, K, pz, og, wg, 1, K, dzb, n_dzr ? pz : P, 1, dcols, pz,
                                      1, 0, NULL, FNN_ACT_IDENTITY, 0);
                        F(discount)(og, K, pz - ps);
                        F(col2im_rows)(g, cg, dcols, oy0, oy1, wz, dxg);
                    } else {
                        rc = fnn_gemm(DT, K, ps, og, wg, 1, K, dzg, P, 1, dcols, ps, 1, 0, NULL,
                                      FNN_ACT_IDENTITY, 0);
                        F(col2im)(g, cg, dcols, oy0, oy1, dxg);
                    }
                }
            }
            if (rc != FNN_OK)
                atomic_store(&J->err, rc);
        }
    }
    if (implicit)
        for (ptrdiff_t gi = 0; gi < g->groups; gi++)
            for (ptrdiff_t o = 0; o < og; o++)
                for (ptrdiff_t k = 0; k < K; k++)
                    dw[(gi * og + o) * K + k] = dwt[gi * og * K + k * og + o];
}

/* The job's shared part (see F(conv_job)) in this thread's FNN_SCRATCH_CONV_SUMS: the patch
 * tables (implicit) and with `backward`, Z's tables and Wr packed (transposed input
 * gradient) and `sums` elements for the partial gradients (dw_parts); else W^T packed. */
static int F(shared_setup)(F(conv_job) *J, size_t sums, int backward)
{
    const fnn_conv2d_geom *g = J->g;
    ptrdiff_t P = g->oh * g->ow, cg = g->c / g->groups, og = g->o / g->groups;
    ptrdiff_t K = cg * g->kh * g->kw, HW = g->h * g->w, KZ = og * g->kh * g->kw;
    int tdx = backward && J->transposed_dx && J->dx;
    int packed = backward ? tdx : J->implicit;
    size_t n_tab = J->implicit ? (size_t)(K + P) : 0, n_ztab = tdx ? (size_t)(HW + KZ) : 0;
    size_t n_wr = tdx ? (size_t)(g->o * K) : 0;
    /* One group's packed weights: Wr is a B of KZ x cg, W^T one of K x og. */
    size_t group = !packed ? 0
                   : tdx   ? fnn_gemm_packed_b_size(DT, KZ, cg) / sizeof(T)
                           : fnn_gemm_packed_b_size(DT, K, og) / sizeof(T);
    size_t n_wpk = group * (size_t)g->groups;
    ptrdiff_t *tab = fnn_scratch(FNN_SCRATCH_CONV_SUMS, (n_tab + n_ztab) * sizeof(ptrdiff_t) +
                                                          (sums + n_wr + n_wpk) * sizeof(T));
    if (!tab)
        return FNN_ENOMEM;
    ptrdiff_t *ztab = tab + n_tab;
    T *parts = (T *)(ztab + n_ztab), *wr = parts + sums, *wpk = wr + n_wr;
    if (J->implicit)
        F(gather_tables)(g, F(padded_geom)(g), cg, tab, tab + K);
    if (tdx) {
        F(dz_tables)(g, F(dz_padded_geom)(g), og, ztab, ztab + HW);
        /* Wr[gi][(o, ky, kx)][c] = W[gi * og + o][c][ky][kx]. */
        for (ptrdiff_t gi = 0; gi < g->groups; gi++)
            for (ptrdiff_t o = 0; o < og; o++)
                for (ptrdiff_t ci = 0; ci < cg; ci++)
                    for (ptrdiff_t t = 0; t < g->kh * g->kw; t++)
                        wr[(gi * KZ + o * g->kh * g->kw + t) * cg + ci] =
                            J->w[((gi * og + o) * cg + ci) * g->kh * g->kw + t];
    }
    for (ptrdiff_t gi = 0; packed && gi < g->groups; gi++) {
        if (tdx)
            fnn_gemm_pack_b(DT, KZ, cg, wr + gi * KZ * cg, cg, 1, wpk + gi * group);
        else /* W^T's element (k, o) is W[o][k]. */
            fnn_gemm_pack_b(DT, K, og, J->w + gi * og * K, 1, K, wpk + gi * group);
    }
    J->dw_parts = backward ? parts : NULL;
    J->tab = tab;
    J->ztab = ztab;
    J->wpk = wpk;
    J->wpk_group = (ptrdiff_t)group;
    return FNN_OK;
}

static int F(conv2d_forward)(const fnn_conv2d_geom *g, const T *x, const T *w, const T *bias,
                             int act, double slope, T *y, T *patches)
{
    F(conv_job) J = {.g = g, .x = x, .w = w, .bias = bias, .out = y, .act = act,
                     .slope = slope, .kept = fnn_conv2d_keeps_patches(g) ? patches : NULL,
                     .implicit = conv_implicit(g)};
    atomic_init(&J.err, FNN_OK);
    int threads = conv_threads(g);
    if (J.implicit) {
        if (g->n == 0)
            return FNN_OK;
        int rc = F(shared_setup)(&J, 0, 0);
        if (rc != FNN_OK)
            return rc;
        /* Fewer images than threads: their pixels are split too. */
        J.parts = g->n < threads ? (threads + g->n - 1) / g->n : 1;
        fnn_parallel(threads, g->n * J.parts, F(forward_image_implicit), &J);
    } else {
        fnn_parallel(threads, g->n, F(forward_image), &J);
    }
    return atomic_load(&J.err);
}

static int F(conv2d_backward)(const fnn_conv2d_geom *g, const T *x, const T *w, const T *dy,
                              int act, double slope, const T *y, const T *patches, T *dx, T *dw,
                              T *db)
{
    ptrdiff_t wsize = g->o * (g->c / g->groups) * g->kh * g->kw;
    ptrdiff_t chunks = g->n < CONV_CHUNKS ? g->n : CONV_CHUNKS;
    if (chunks == 0) {
        for (ptrdiff_t i = 0; i < wsize; i++)
            dw[i] = 0;
        for (ptrdiff_t i = 0; db && i < g->o; i++)
            db[i] = 0;
        return FNN_OK;
    }
    F(conv_job) J = {.g = g, .x = x, .w = w, .dy = dy, .y = y, .dx = dx, .act = act,
                     .slope = slope, .chunks = chunks, .kept = (T *)patches,
                     .implicit = conv_implicit(g), .transposed_dx = conv_transposed_dx(g)};
    atomic_init(&J.err, FNN_OK);
    int rc = F(shared_setup)(&J, (size_t)(chunks * (wsize + g->o)), 1);
    if (rc != FNN_OK)
        return rc;
    T *parts = J.dw_parts;
    J.db_parts = db ? parts + chunks * wsize : NULL;
    fnn_parallel(conv_threads(g), chunks, F(backward_chunk), &J);
    rc = atomic_load(&J.err);
    if (rc != FNN_OK)
        return rc;
    for (ptrdiff_t i = 0; i < wsize; i++) {
        T s = parts[i];
        for (ptrdiff_t c = 1; c < chunks; c++)
            s += parts[c * wsize + i];
        dw[i] = s;
    }
    for (ptrdiff_t o = 0; db && o < g->o; o++) {
        T s = J.db_parts[o];
        for (ptrdiff_t c = 1; c < chunks; c++)
            s += J.db_parts[c * g->o + o];
        db[o] = s;
    }
    return FNN_OK;
}

#undef F
#undef DT
