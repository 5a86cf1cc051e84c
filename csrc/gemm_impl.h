/* GEMM driver template, included by gemm.c once per element type.
 *
 * The includer defines T (element type), SUF (f32 / f64), EXP and TANH (libm
 * functions for T) and GMR, GNR (the portable kernel's tile), and provides
 * pack_space() and split_threads(). This file undefines its parameters at the end.
 *
 * Structure (BLIS): for each nc-wide column panel of C, for each kc-deep slice of K,
 * pack B[kc x nc] into nr-wide micro-panels; for each mc-tall row block, pack
 * A[mc x kc] into mr-tall micro-panels; then sweep micro-tiles with the kernel.
 * The epilogue (bias, activation) is applied with the last K slice only. */

#define FNN_CAT_(a, b) a##b
#define FNN_CAT(a, b) FNN_CAT_(a, b)
#define FN(name) FNN_CAT(FNN_CAT(name, _), SUF)
#define CFG FNN_CAT(fnn_gemm_cfg_, SUF)

static T FN(act1)(T x, int act, T slope)
{
    switch (act) {
    case FNN_ACT_RELU: return x <= 0 ? (T)0 : x; /* NaN propagates, as in PyTorch */
    case FNN_ACT_LEAKY_RELU: return x > 0 ? x : slope * x;
    case FNN_ACT_SIGMOID:
        /* Two branches so that exp never overflows. */
        if (x >= 0)
            return (T)1 / ((T)1 + EXP(-x));
        else {
            T e = EXP(x);
            return e / ((T)1 + e);
        }
    case FNN_ACT_TANH: return TANH(x);
    default: return x;
    }
}

/* One element of C: act((loadc ? c : 0) + x + bias), the micro-kernels' operation order. */
static inline T FN(epi1)(T x, const T *c, int loadc, const T *bias, int act, T slope)
{
    if (loadc)
        x = *c + x;
    if (bias)
        x = x + *bias;
    return FN(act1)(x, act, slope);
}

/* Portable kernel: plain loops over a small tile that compilers auto-vectorise along
 * the contiguous NR axis. Its epilogue follows the same operation order as the SIMD
 * kernels (gemm_ukr_simd.h). */
static void FN(ukr_generic)(ptrdiff_t k, const T *restrict a, const T *restrict b,
                            T *restrict c, ptrdiff_t rsc,
                            const T *restrict bias, int loadc, int act, T slope)
{
    T acc[GMR][GNR] = {{0}};
    for (ptrdiff_t p = 0; p < k; p++) {
        for (int i = 0; i < GMR; i++) {
            T ai = a[p * GMR + i];
            for (int j = 0; j < GNR; j++)
                acc[i][j] += ai * b[p * GNR + j];
        }
    }
    for (int i = 0; i < GMR; i++) {
        for (int j = 0; j < GNR; j++) {
            T *cp = c + i * rsc + j;
            *cp = FN(epi1)(acc[i][j], cp, loadc, bias ? bias + j : NULL, act, slope);
        }
    }
}

static void FN(ukr_rows_generic)(ptrdiff_t k, const T *const *w, const T *restrict b,
                                 T *restrict d, const T *restrict bias, int loadc, int act,
                                 T slope)
{
    T acc[GMR][GNR] = {{0}};
    for (ptrdiff_t p = 0; p < k; p++) {
        for (int i = 0; i < GMR; i++) {
            T wi = w[i][p];
            for (int j = 0; j < GNR; j++)
                acc[i][j] += wi * b[p * GNR + j];
        }
    }
    for (int i = 0; i < GMR; i++) {
        for (int j = 0; j < GNR; j++) {
            T *dp = d + i * GNR + j;
            *dp = FN(epi1)(acc[i][j], dp, loadc, bias ? bias + i : NULL, act, slope);
        }
    }
}

static void FN(ukr_ind_generic)(ptrdiff_t k, const T *const *r, const ptrdiff_t *off,
                                const T *restrict b, T *restrict c, ptrdiff_t rsc,
                                const T *restrict bias, int loadc, int act, T slope)
{
    T acc[GMR][GNR] = {{0}};
    for (ptrdiff_t p = 0; p < k; p++) {
        for (int i = 0; i < GMR; i++) {
            T ai = r[i][off[p]];
            for (int j = 0; j < GNR; j++)
                acc[i][j] += ai * b[p * GNR + j];
        }
    }
    for (int i = 0; i < GMR; i++) {
        for (int j = 0; j < GNR; j++) {
            T *cp = c + i * rsc + j;
            *cp = FN(epi1)(acc[i][j], cp, loadc, bias ? bias + j : NULL, act, slope);
        }
    }
}

/* Portable skinny kernels (see gemm_kernels.h): per element one sum in p order. */
static void FN(sknn_generic)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t rsa,
                             ptrdiff_t csa, const T *b, ptrdiff_t ldb, T *c, ptrdiff_t rsc,
                             ptrdiff_t csc, const T *bias, int loadc, int act, T slope)
{
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j0 = 0; j0 < n; j0 += 64) {
            ptrdiff_t nb = n - j0 < 64 ? n - j0 : 64;
            T acc[64] = {0};
            for (ptrdiff_t p = 0; p < k; p++) {
                T ap = a[i * rsa + p * csa];
                const T *bp = b + p * ldb + j0;
                for (ptrdiff_t j = 0; j < nb; j++)
                    acc[j] += ap * bp[j];
            }
            for (ptrdiff_t j = 0; j < nb; j++) {
                T *cp = c + i * rsc + (j0 + j) * csc;
                *cp = FN(epi1)(acc[j], cp, loadc, bias ? bias + j0 + j : NULL, act, slope);
            }
        }
}

static void FN(sknt_generic)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a, ptrdiff_t rsa,
                             ptrdiff_t csa, const T *b, ptrdiff_t ldb, T *c, ptrdiff_t rsc,
                             ptrdiff_t csc, const T *bias, int loadc, int act, T slope)
{
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) {
            const T *ai = a + i * rsa, *wj = b + j * ldb;
            T x = 0;
            for (ptrdiff_t p = 0; p < k; p++)
                x += ai[p * csa] * wj[p];
            T *cp = c + i * rsc + j * csc;
            *cp = FN(epi1)(x, cp, loadc, bias ? bias + j : NULL, act, slope);
        }
}

static const CFG FN(cfg_generic) = {GMR, GNR, 0, 32 * GMR, 256, 4096, FN(ukr_generic), NULL,
                                    FN(ukr_rows_generic), FN(ukr_ind_generic),
                                    FN(sknn_generic), FN(sknt_generic), NULL};

static ptrdiff_t FN(round_up)(ptrdiff_t x, ptrdiff_t to) { return (x + to - 1) / to * to; }

/* The kernel set of the ISA in use for a product whose tiles span `width` columns, except
 * that on AVX-512 the AVX2 set's half-as-wide tile is taken where it pads the width less:
 * 16 output channels in the AVX-512 tile of 32 waste half its multiply-adds, and AVX2 runs
 * as many per cycle where AVX-512 is executed in two halves (AMD EPYC Zen 4, float32, batch
 * 64: LeNet-5's 6->16 5x5 convolution forward 0.63 -> 0.32 ms, backward 1.76 -> 1.18 ms). */
static const CFG *FN(pick_cfg)(ptrdiff_t width)
{
#ifdef FNN_X86
    switch (fnn_get_isa()) {
    case FNN_ISA_AVX512:
        if (FN(round_up)(width, FNN_CAT(fnn_gemm_avx2_, SUF).nr) <
            FN(round_up)(width, FNN_CAT(fnn_gemm_avx512_, SUF).nr))
            return &FNN_CAT(fnn_gemm_avx2_, SUF);
        return &FNN_CAT(fnn_gemm_avx512_, SUF);
    case FNN_ISA_AVX2: return &FNN_CAT(fnn_gemm_avx2_, SUF);
    default: break;
    }
#endif
    return &FN(cfg_generic);
}

/* Copy `len` runs of W elements: run p comes from src + p*ss (unit stride) when
 * es == 1, else its element j from src + p*ss + j*es; it goes to dst + p*W.
 * Inlined with W constant so the inner loop is fully unrolled: packing is a
 * transpose for A in row-major and B in column-major order, and a per-element
 * loop there would cost as much as the multiply for skinny shapes. */
static inline __attribute__((always_inline)) void
FN(copy_runs)(T *restrict dst, const T *src, ptrdiff_t ss, ptrdiff_t es, ptrdiff_t len, int W)
{
    if (es == 1) {
        for (ptrdiff_t p = 0; p < len; p++)
            for (int j = 0; j < W; j++)
                dst[p * W + j] = src[p * ss + j];
    } else {
        for (ptrdiff_t p = 0; p < len; p++)
            for (int j = 0; j < W; j++)
                dst[p * W + j] = src[p * ss + j * es];
    }
}

/* Packs `len` runs of `w` valid elements into runs of W (padding with zeros); full
 * runs gathered across contiguous source rows go to the kernel set's SIMD transpose. */
static void FN(pack_runs)(const CFG *cfg, T *restrict dst, const T *src, ptrdiff_t ss,
                          ptrdiff_t es, ptrdiff_t len, int w, int W)
{
    if (w == W && ss == 1 && es != 1 && cfg->pack_tr) {
        cfg->pack_tr(dst, src, es, len, W);
        return;
    }
    if (w == W) {
        switch (W) {
        case 4: FN(copy_runs)(dst, src, ss, es, len, 4); return;
        case 6: FN(copy_runs)(dst, src, ss, es, len, 6); return;
        case 8: FN(copy_runs)(dst, src, ss, es, len, 8); return;
        case 12: FN(copy_runs)(dst, src, ss, es, len, 12); return;
        case 16: FN(copy_runs)(dst, src, ss, es, len, 16); return;
        case 32: FN(copy_runs)(dst, src, ss, es, len, 32); return;
        default: break;
        }
    }
    for (ptrdiff_t p = 0; p < len; p++) {
        for (int j = 0; j < w; j++)
            dst[p * W + j] = src[p * ss + j * es];
        for (int j = w; j < W; j++)
            dst[p * W + j] = 0;
    }
}

/* How an mc-row block is cut into row tiles: `big` tiles of MR rows, then `small` of the
 * shorter tile's rows (gemm_kernels.h), the last tile possibly partial: the fewest rows
 * computed, padding included. */
static void FN(row_tiles)(const CFG *cfg, ptrdiff_t mc, ptrdiff_t *big, ptrdiff_t *small)
{
    const int MR = cfg->mr, MRS = cfg->mrs;
    *big = (mc + MR - 1) / MR;
    *small = 0;
    ptrdiff_t best = *big * MR;
    for (int s = 1; MRS && s <= 2; s++) {
        ptrdiff_t rest = mc > s * MRS ? mc - s * MRS : 0, b = (rest + MR - 1) / MR;
        if (b * MR + s * MRS < best) {
            best = b * MR + s * MRS;
            *big = b;
            *small = s;
        }
    }
}

/* Pack the mc x kc block at `a` (element (i, p) at a[i*rsa + p*csa]) tile by tile as
 * row_tiles cuts it, each tile kc steps of its height in values, rows past mc zero: the
 * tile starting at row i is at dst + i*kc. */
static void FN(pack_a)(const CFG *cfg, T *restrict dst, const T *a, ptrdiff_t rsa,
                       ptrdiff_t csa, ptrdiff_t mc, ptrdiff_t kc, ptrdiff_t big,
                       ptrdiff_t small)
{
    ptrdiff_t i0 = 0;
    for (ptrdiff_t t = 0; t < big + small; t++) {
        int h = t < big ? cfg->mr : cfg->mrs;
        int rows = mc - i0 < h ? (int)(mc - i0) : h;
        FN(pack_runs)(cfg, dst + i0 * kc, a + i0 * rsa, csa, rsa, kc, rows, h);
        i0 += h;
    }
}

/* Pack the kc x nc block at `b` (element (p, j) at b[p*rsb + j*csb]) into
 * ceil(nc/nr) panels of kc rows of nr values, columns past nc zero. */
static void FN(pack_b)(const CFG *cfg, T *restrict dst, const T *b, ptrdiff_t rsb,
                       ptrdiff_t csb, ptrdiff_t kc, ptrdiff_t nc, int nr)
{
    for (ptrdiff_t j0 = 0; j0 < nc; j0 += nr, dst += nr * kc) {
        int cols = nc - j0 < nr ? (int)(nc - j0) : nr;
        FN(pack_runs)(cfg, dst, b + j0 * csb, rsb, csb, kc, cols, nr);
    }
}

static inline __attribute__((always_inline)) void
FN(store_tr)(T *restrict c, ptrdiff_t rsc, const T *restrict d, const int MR, const int NR)
{
    for (int v = 0; v < NR; v++)
        for (int i = 0; i < MR; i++)
            c[v * rsc + i] = d[i * NR + v];
}

/* A whole tile written back transposed with its shape known to the compiler (unrolled):
 * the tiles of every kernel set (gemm_x86.c, cfg_generic); 0 for any other shape. */
static int FN(store_tr_full)(T *restrict c, ptrdiff_t rsc, const T *restrict d, int MR, int NR)
{
    switch (MR * 64 + NR) {
    case 6 * 64 + 16: FN(store_tr)(c, rsc, d, 6, 16); return 1;
    case 6 * 64 + 8: FN(store_tr)(c, rsc, d, 6, 8); return 1;
    case 12 * 64 + 32: FN(store_tr)(c, rsc, d, 12, 32); return 1;
    case 12 * 64 + 16: FN(store_tr)(c, rsc, d, 12, 16); return 1;
    case GMR * 64 + GNR: FN(store_tr)(c, rsc, d, GMR, GNR); return 1;
    default: return 0;
    }
}

/* One thread's share: C[m x n] for the whole K. The packed buffers are this
 * thread's, so threads never wait for each other. With ga, A is a patch matrix read in place
 * by the indirect tile (element (i, p) at a[ga->rows[i] + ga->cols[p]]): nothing of it is
 * packed. With bpk, B comes packed already (FN(pack_b) over the whole K: the panel of
 * columns j0.. at bpk + j0 * k), b and its strides are unused. */
static int FN(gemm_serial)(const CFG *cfg, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                           const T *a, ptrdiff_t rsa, ptrdiff_t csa, const fnn_gather *ga,
                           const T *b, ptrdiff_t rsb, ptrdiff_t csb, const T *bpk,
                           T *c, ptrdiff_t rsc, ptrdiff_t csc,
                           int accumulate, const T *bias, int act, T slope)
{
    const int MR = cfg->mr, NR = cfg->nr;
    /* Equal K slices and row blocks no larger than the configured ones: a short last
     * slice (784 = 3 x 256 + 16) would pay a full pass over C for little work. The
     * slices depend on k alone, so every thread's part reduces in the same order. An
     * unpacked A costs nothing per slice, so its slices are longer (IND_KC_FACTOR). */
    ptrdiff_t kslices = (k + cfg->kc * (ga ? IND_KC_FACTOR : 1) - 1) /
                        (cfg->kc * (ga ? IND_KC_FACTOR : 1));
    ptrdiff_t mblocks = (m + cfg->mc - 1) / cfg->mc;
    ptrdiff_t kcap = (k + kslices - 1) / kslices;
    ptrdiff_t mcap = FN(round_up)((m + mblocks - 1) / mblocks, MR);
    ptrdiff_t ncap = bpk ? 0 : FN(round_up)(n < cfg->nc ? n : cfg->nc, NR);
    /* A's region is rounded to 64 bytes so B's starts aligned too. */
    ptrdiff_t asize = ga ? 0 : FN(round_up)(mcap * kcap, 64 / (ptrdiff_t)sizeof(T));
    T *ap = pack_space((size_t)(asize + kcap * ncap) * sizeof(T));
    if (!ap)
        return FNN_ENOMEM;
    T *bp = ap + asize;

    for (ptrdiff_t jc = 0; jc < n; jc += cfg->nc) {
        ptrdiff_t nc = n - jc < cfg->nc ? n - jc : cfg->nc;
        for (ptrdiff_t pc = 0; pc < k; pc += kcap) {
            ptrdiff_t kc = k - pc < kcap ? k - pc : kcap;
            int last = pc + kc == k;
            int loadc = pc > 0 || accumulate;
            int kact = last ? act : FNN_ACT_IDENTITY;
            const T *kbias = last && bias ? bias + jc : NULL;
            if (!bpk)
                FN(pack_b)(cfg, bp, b + pc * rsb + jc * csb, rsb, csb, kc, nc, NR);

            for (ptrdiff_t ic = 0; ic < m; ic += mcap) {
                ptrdiff_t mc = m - ic < mcap ? m - ic : mcap, big, small = 0;
                if (ga) {
                    big = (mc + MR - 1) / MR;
                } else {
                    FN(row_tiles)(cfg, mc, &big, &small);
                    FN(pack_a)(cfg, ap, a + ic * rsa + pc * csa, rsa, csa, mc, kc, big, small);
                }

                for (ptrdiff_t jr = 0; jr < nc; jr += NR) {
                    ptrdiff_t nr = nc - jr < NR ? nc - jr : NR;
                    const T *pb = bpk ? bpk + (jc + jr) * k + pc * NR : bp + jr * kc;
                    const T *tbias = kbias ? kbias + jr : NULL;
                    ptrdiff_t ir = 0;
                    for (ptrdiff_t t = 0; t < big + small; t++) {
                        const int H = t < big ? MR : cfg->mrs;
                        FNN_CAT(fnn_ukr_, SUF) ukr = t < big ? cfg->ukr : cfg->ukr_small;
                        ptrdiff_t mr = mc - ir < H ? mc - ir : H;
                        const T *pa = ap + ir * kc;
                        /* The indirect tile's rows; past the last row of A, the last row
                         * again (those rows of the tile are not stored). */
                        const T *r[FNN_MAX_MR];
                        const ptrdiff_t *off = ga ? ga->cols + pc : NULL;
                        for (int i = 0; ga && i < H; i++)
                            r[i] = a + ga->rows[ic + ir + (i < mr ? i : mr - 1)];
                        T *ct = c + (ic + ir) * rsc + (jc + jr) * csc;
                        ir += H;
                        if (mr == H && nr == NR && csc == 1) {
                            if (ga)
                                cfg->ukr_ind(kc, r, off, pb, ct, rsc, tbias, loadc, kact, slope);
                            else
                                ukr(kc, pa, pb, ct, rsc, tbias, loadc, kact, slope);
                            continue;
                        }
                        /* Edge or strided tile: run the same kernel on a full-size
                         * scratch tile so the arithmetic is identical. */
                        _Alignas(64) T tile[FNN_MAX_MR * FNN_MAX_NR];
                        _Alignas(64) T tb[FNN_MAX_NR];
                        if (loadc)
                            for (ptrdiff_t i = 0; i < H; i++)
                                for (ptrdiff_t j = 0; j < NR; j++)
                                    tile[i * NR + j] = i < mr && j < nr ? ct[i * rsc + j * csc] : 0;
                        if (tbias) {
                            for (ptrdiff_t j = 0; j < NR; j++)
                                tb[j] = j < nr ? tbias[j] : 0;
                        }
                        if (ga)
                            cfg->ukr_ind(kc, r, off, pb, tile, NR, tbias ? tb : NULL, loadc,
                                         kact, slope);
                        else
                            ukr(kc, pa, pb, tile, NR, tbias ? tb : NULL, loadc, kact, slope);
                        /* A column-major C (a transposed product's) whole tile: its columns
                         * are the contiguous runs. */
                        if (rsc == 1 && mr == H && nr == NR &&
                            FN(store_tr_full)(ct, csc, tile, H, NR))
                            continue;
                        for (ptrdiff_t i = 0; i < mr; i++)
                            for (ptrdiff_t j = 0; j < nr; j++)
                                ct[i * rsc + j * csc] = tile[i * NR + j];
                    }
                }
            }
        }
    }
    return FNN_OK;
}

/* C = A W^T with few rows of A (b[p + j*ldw] is W's row j): packing W's rows would cost
 * as much as the multiply, so compute C^T = W A^T tile by tile instead, MR rows of W read
 * in place against A^T packed once (ap), and write each tile back transposed. This does
 * W's row groups g0 .. g1-1; threads share ap and take whole groups. */
static void FN(rows_part)(const CFG *cfg, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                          const T *ap, const T *w, ptrdiff_t ldw, T *c, ptrdiff_t rsc,
                          ptrdiff_t csc, int accumulate, const T *bias, int act, T slope,
                          ptrdiff_t g0, ptrdiff_t g1)
{
    const int MR = cfg->mr, NR = cfg->nr;
    for (ptrdiff_t g = g0; g < g1; g++) {
        ptrdiff_t j0 = g * MR;
        int rows = n - j0 < MR ? (int)(n - j0) : MR;
        /* Past the last row of W, repeat it: those rows of the tile are not stored. */
        const T *wr[FNN_MAX_MR];
        _Alignas(64) T tb[FNN_MAX_MR];
        for (int i = 0; i < MR; i++) {
            int r = i < rows ? i : rows - 1;
            wr[i] = w + (j0 + r) * ldw;
            tb[i] = bias ? bias[j0 + r] : 0;
        }
        for (ptrdiff_t i0 = 0; i0 < m; i0 += NR) {
            int cols = m - i0 < NR ? (int)(m - i0) : NR;
            _Alignas(64) T d[FNN_MAX_MR * FNN_MAX_NR];
            T *ct = c + i0 * rsc + j0 * csc;
            if (accumulate)
                for (int i = 0; i < MR; i++)
                    for (int v = 0; v < NR; v++)
                        d[i * NR + v] = i < rows && v < cols ? ct[v * rsc + i * csc] : 0;
            cfg->ukr_rows(k, wr, ap + i0 * k, d, bias ? tb : NULL, accumulate, act, slope);
            if (rows == MR && cols == NR && csc == 1 && FN(store_tr_full)(ct, rsc, d, MR, NR))
                continue;
            for (int v = 0; v < cols; v++)
                for (int i = 0; i < rows; i++)
                    ct[v * rsc + i * csc] = d[i * NR + v];
        }
    }
}

/* One product split into `parts` for the thread pool (fnn_parallel): the arguments of
 * FN(gemm) and what each kind of split needs. */
typedef struct {
    const CFG *cfg;
    ptrdiff_t m, n, k;
    const T *a;
    ptrdiff_t rsa, csa;
    const T *b;
    ptrdiff_t rsb, csb;
    T *c;
    ptrdiff_t rsc, csc;
    int accumulate;
    const T *bias;
    int act;
    T slope;
    int parts;
    ptrdiff_t units;                /* W row groups, A row groups or B column chunks */
    int tm, tn;                     /* the tiles' grid */
    const T *ap;                    /* the transposed tile's packed A^T, shared */
    FNN_CAT(fnn_skinny_, SUF) sk;
    ptrdiff_t ldb;
    _Atomic int err;
} FN(job);

/* How many parts a split whose parts share their packed data (the transposed tile's A^T,
 * the skinny kernels' unpacked operands) is cut into: SHARED_PARTS_PER_THREAD per thread,
 * so that a thread that starts late or runs on a busy core leaves more of the parts to the
 * others, at no packing cost; one part on one thread. */
static int FN(shared_parts)(int threads, ptrdiff_t units)
{
    ptrdiff_t parts = threads > 1 ? (ptrdiff_t)threads * SHARED_PARTS_PER_THREAD : 1;
    return (int)(parts < units ? parts : units);
}

static void FN(rows_task)(void *ctx, ptrdiff_t p)
{
    const FN(job) *J = ctx;
    FN(rows_part)(J->cfg, J->m, J->n, J->k, J->ap, J->b, J->csb, J->c, J->rsc, J->csc,
                  J->accumulate, J->bias, J->act, J->slope, J->units * p / J->parts,
                  J->units * (p + 1) / J->parts);
}

static int FN(gemm_rows)(FN(job) *J)
{
    const CFG *cfg = J->cfg;
    J->units = (J->n + cfg->mr - 1) / cfg->mr;
    T *ap = pack_space((size_t)(FN(round_up)(J->m, cfg->nr) * J->k) * sizeof(T));
    if (!ap)
        return FNN_ENOMEM;
    /* A^T's element (p, i) is A's (i, p). */
    FN(pack_b)(cfg, ap, J->a, J->csa, J->rsa, J->k, J->m, cfg->nr);
    J->ap = ap;
    int threads = threads_for_flops(J->m, J->n, J->k);
    J->parts = FN(shared_parts)(threads, J->units);
    fnn_parallel(threads, J->parts, FN(rows_task), J);
    return FNN_OK;
}

/* Skinny products split by rows, in whole groups of 4 (neither kernel's per-element
 * arithmetic depends on the rows), or by 64-column chunks (nor on the columns). */
static void FN(skinny_rows_task)(void *ctx, ptrdiff_t p)
{
    const FN(job) *J = ctx;
    ptrdiff_t i0 = J->units * p / J->parts * 4;
    ptrdiff_t i1 = p == J->parts - 1 ? J->m : J->units * (p + 1) / J->parts * 4;
    J->sk(i1 - i0, J->n, J->k, J->a + i0 * J->rsa, J->rsa, J->csa, J->b, J->ldb,
          J->c + i0 * J->rsc, J->rsc, J->csc, J->bias, J->accumulate, J->act, J->slope);
}

static void FN(skinny_cols_task)(void *ctx, ptrdiff_t p)
{
    const FN(job) *J = ctx;
    ptrdiff_t j0 = J->units * p / J->parts * 64, j1 = J->units * (p + 1) / J->parts * 64;
    if (j1 > J->n)
        j1 = J->n;
    /* B's column j is at b + j * csb in both layouts. */
    J->sk(J->m, j1 - j0, J->k, J->a, J->rsa, J->csa, J->b + j0 * J->csb, J->ldb,
          J->c + j0 * J->csc, J->rsc, J->csc, J->bias ? J->bias + j0 : NULL, J->accumulate,
          J->act, J->slope);
}

/* Part p of the tm x tn grid of rectangles of whole micro-tiles, with its own packing.
 * Every element is reduced over K in the same order as on one thread, so the result does
 * not depend on the number of threads. */
static void FN(tiles_task)(void *ctx, ptrdiff_t p)
{
    FN(job) *J = ctx;
    const CFG *cfg = J->cfg;
    ptrdiff_t mtiles = (J->m + cfg->mr - 1) / cfg->mr, ntiles = (J->n + cfg->nr - 1) / cfg->nr;
    ptrdiff_t pi = p / J->tn, pj = p % J->tn;
    ptrdiff_t i0 = mtiles * pi / J->tm * cfg->mr, i1 = mtiles * (pi + 1) / J->tm * cfg->mr;
    ptrdiff_t j0 = ntiles * pj / J->tn * cfg->nr, j1 = ntiles * (pj + 1) / J->tn * cfg->nr;
    if (i1 > J->m)
        i1 = J->m;
    if (j1 > J->n)
        j1 = J->n;
    int r = FN(gemm_serial)(cfg, i1 - i0, j1 - j0, J->k, J->a + i0 * J->rsa, J->rsa, J->csa,
                            NULL, J->b + j0 * J->csb, J->rsb, J->csb, NULL,
                            J->c + i0 * J->rsc + j0 * J->csc, J->rsc, J->csc, J->accumulate,
                            J->bias ? J->bias + j0 : NULL, J->act, J->slope);
    if (r != FNN_OK)
        atomic_store(&J->err, r);
}

static int FN(gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                    const T *a, ptrdiff_t rsa, ptrdiff_t csa,
                    const T *b, ptrdiff_t rsb, ptrdiff_t csb,
                    T *c, ptrdiff_t rsc, ptrdiff_t csc,
                    int accumulate, const T *bias, int act, T slope)
{
    if (k == 0) {
        for (ptrdiff_t i = 0; i < m; i++)
            for (ptrdiff_t j = 0; j < n; j++) {
                T x = accumulate ? c[i * rsc + j * csc] : 0;
                if (bias)
                    x = x + bias[j];
                c[i * rsc + j * csc] = FN(act1)(x, act, slope);
            }
        return FNN_OK;
    }
    /* A column-major C has no unit column stride for the kernel; C^T = B^T A^T has.
     * Only without bias, which would then run along rows. */
    if (csc != 1 && rsc == 1 && !bias) {
        return FN(gemm)(n, m, k, b, csb, rsb, a, csa, rsa, c, csc, rsc,
                        accumulate, bias, act, slope);
    }

    const CFG *cfg = FN(pick_cfg)(n);
    FN(job) J = {cfg, m, n, k, a, rsa, csa, b, rsb, csb, c, rsc, csc, accumulate, bias, act,
                 slope};
    atomic_init(&J.err, FNN_OK);

    /* Small m or n: no packing. The B panel would be packed for a handful of rows; reading
     * B in place (row-major B: C rows are sums of scaled B rows; B = W^T: dot products
     * of A rows with W rows) streams it once. A few columns (a classifier's last layer)
     * would fill a fraction of a micro-tile. */
    if (m <= SKINNY_M_NN || n <= SKINNY_N) {
        if (csb == 1 && csc == 1 &&
            (m <= SKINNY_M || n <= SKINNY_N ||
             ((csa == 1 || k * n < SKINNY_TA_KN) &&
              (rsb * (ptrdiff_t)sizeof(T)) % SKINNY_ALIAS_BYTES != 0))) {
            J.sk = cfg->sknn;
            J.ldb = rsb;
        } else if (rsb == 1 && csa == 1 && (m <= SKINNY_M || n <= SKINNY_N)) {
            J.sk = cfg->sknt;
            J.ldb = csb;
        }
        if (J.sk) {
            ptrdiff_t chunks = (n + 63) / 64;
            int parts = threads_for_flops(m, n, k);
            /* Few columns: split rows instead. */
            ptrdiff_t rgroups = chunks < parts ? m / 4 : 0;
            if (parts > 1 && rgroups >= parts) {
                J.parts = FN(shared_parts)(parts, rgroups);
                J.units = rgroups;
                fnn_parallel(parts, J.parts, FN(skinny_rows_task), &J);
                return FNN_OK;
            }
            J.parts = FN(shared_parts)(parts, chunks);
            J.units = chunks;
            fnn_parallel(parts, J.parts, FN(skinny_cols_task), &J);
            return FNN_OK;
        }
    }

    /* The transposed tile pays where W is deep and A^T fills its panels (at least 7/8:
     * m = 17 or 24 would multiply padding). */
    const CFG *rcfg = FN(pick_cfg)(m); /* the transposed tile spans m */
    ptrdiff_t mpad = FN(round_up)(m, rcfg->nr);
    if (rsb == 1 && k >= ROWS_MIN_K && m <= (k >= ROWS_DEEP_K ? ROWS_M_DEEP : ROWS_M) &&
        8 * (mpad - m) <= mpad) {
        J.cfg = rcfg;
        return FN(gemm_rows)(&J);
    }

    J.parts = split_threads(m, n, k, cfg->mr, cfg->nr, &J.tm, &J.tn);
    fnn_parallel(J.parts, J.parts, FN(tiles_task), &J);
    return atomic_load(&J.err);
}

/* fnn_gemm_pack_b: B (k x n) packed as the GEMM reads it, for fnn_gemm_gather. */
static size_t FN(packed_b_size)(ptrdiff_t k, ptrdiff_t n)
{
    return (size_t)(FN(round_up)(n, FN(pick_cfg)(n)->nr) * k) * sizeof(T);
}

static void FN(pack_b_whole)(ptrdiff_t k, ptrdiff_t n, const T *b, ptrdiff_t rsb,
                             ptrdiff_t csb, T *dst)
{
    const CFG *cfg = FN(pick_cfg)(n);
    FN(pack_b)(cfg, dst, b, rsb, csb, k, n, cfg->nr);
}

/* fnn_gemm_gather: the product on the calling thread, A a patch matrix read in place, B
 * packed by FN(pack_b_whole). */
static int FN(gemm_gather)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const T *a,
                           const fnn_gather *ga, const T *bpk, T *c, ptrdiff_t rsc,
                           ptrdiff_t csc, int accumulate, const T *bias, int act, T slope)
{
    if (k == 0)
        return FN(gemm)(m, n, 0, a, 0, 0, bpk, 0, 0, c, rsc, csc, accumulate, bias, act,
                        slope);
    return FN(gemm_serial)(FN(pick_cfg)(n), m, n, k, a, 0, 0, ga, NULL, 0, 0, bpk, c, rsc, csc,
                           accumulate, bias, act, slope);
}

#undef CFG
#undef FN
#undef FNN_CAT
#undef FNN_CAT_
#undef T
#undef SUF
#undef EXP
#undef TANH
#undef GMR
#undef GNR
