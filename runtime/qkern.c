/* qkern.c — the fast quantised matmul: which pairs of formats it serves, the packed weight
 * layout, activation rows prepared once per call, and the dispatch over the pool.
 *
 * A format is analysed once (the family's reference decoder over every code): each element
 * code is M·2^emin with an integer M, or a float (nf4). A weight whose M fit int8 is stored
 * offset to unsigned, M + woff, in the narrowest of three classes the kernel unpacks in
 * registers (nibbles; nibbles plus a 2-bit plane; bytes) — keeping 4- and 6-bit weights at
 * their size is the bandwidth the GEMV lives on — and its block scales as one byte (the
 * biased fp32 exponent of a power-of-two scale), an fp16 d or an fp32 absmax. Activation rows
 * are quantised into the plan's input format on the fly (vectorised for bfp, int and mxint8,
 * otherwise bq_quantize and the reference decoder), giving int8 elements, the block scales
 * and -woff·ΣMa per block, so the kernels' integer block sums are exact and every later step
 * is the contract's fp32 operation (qkern.h). Scales are bq_dot_ref's own: a zero weight block
 * whose scale is below fp32's normal range stores scale 0 (its contribution is +0 either way,
 * and stays NaN for a NaN activation block); a NaN block stores an infinite scale, so its
 * zero sum gives NaN as the reference does. A non-zero block with a subnormal scale has no
 * encoding: bq_qk_pack refuses it and the caller keeps bq_qmatmul.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats_int.h"
#include "qkern_int.h"

/* ---- analysing a format ---- */

typedef struct qk_elems {
    int plain, exact, nf4;
    int emin;             /* exact: element = M · 2^emin */
    int fits8;            /* exact and every M in -128..127 (two's complement -2^(w-1) included) */
    int twos;             /* M is the code's two's complement value */
    int zero_code;        /* a code whose element is 0 */
    int32_t M[256];
    float v[256];         /* element values */
} qk_elems;

static int qk_analyse(const bq_format *f, qk_elems *e)
{
    if (bq_format_bytes(f, 1) == 0) return 0;
    const bq_family_row *row = bq_family_row_of(f->family);
    memset(e, 0, sizeof *e);
    e->plain = f->block == 1;
    e->nf4 = f->family == BQ_FAM_NF4;
    e->exact = row->exact;
    if (e->plain) return 1;
    uint32_t ncodes = 1u << f->width, codes[256];
    for (uint32_t c = 0; c < ncodes; c++) codes[c] = c;
    bq_elems *d = malloc(sizeof *d);   /* large: not on the stack */
    if (!d) return 0;
    row->decode(f, 0, codes, (int)ncodes, d);
    int emin = INT_MAX;
    for (uint32_t c = 0; c < ncodes; c++) {
        e->v[c] = d->exact ? ldexpf((float)d->m[c], d->e[c]) : d->v[c];
        if (d->exact && d->m[c] && d->e[c] < emin) emin = d->e[c];
    }
    e->zero_code = -1;
    for (uint32_t c = 0; c < ncodes && e->zero_code < 0; c++)
        if (e->v[c] == 0.0f && !signbit(e->v[c])) e->zero_code = (int)c;
    if (e->exact) {
        e->emin = emin == INT_MAX ? 0 : emin;
        e->fits8 = 1;
        e->twos = 1;
        for (uint32_t c = 0; c < ncodes; c++) {
            int sh = d->e[c] - e->emin;
            int64_t mag = d->m[c] < 0 ? -(int64_t)d->m[c] : d->m[c];
            if (d->m[c] && (sh > 7 || (mag << sh) > (d->m[c] < 0 ? 128 : 127))) {
                e->fits8 = 0;
                break;
            }
            e->M[c] = d->m[c] ? (int32_t)(d->m[c] < 0 ? -(mag << sh) : (mag << sh)) : 0;
            e->twos &= e->M[c] == bq_twos_value(c, f->width);
        }
        e->twos &= e->fits8;
    }
    free(d);
    return e->zero_code >= 0;
}

/* ---- which kernel ---- */

typedef struct qk_wlayout {
    int cls, lut, skind, woff, emin;
    uint8_t lut8[16];
    float lutf[16];
    uint8_t store[256];   /* element code -> stored value (cls 8: byte; cls 4: nibble; cls 6: 6 bits) */
    uint8_t zero;         /* stored value of a zero element (padding) */
} qk_wlayout;

/* The packed form of weight format f; 0 if it has none. */
static int qk_wlayout_of(const bq_format *f, const qk_elems *e, qk_wlayout *L)
{
    memset(L, 0, sizeof *L);
    if (e->plain || (!e->fits8 && !e->nf4)) return 0;
    int B = f->block, ncodes = 1 << f->width;
    L->skind = bq_family_row_of(f->family)->sbits / 8;
    L->emin = e->emin;
    if (f->width <= 4) {
        L->cls = 4;
        L->lut = !e->twos;
        L->woff = L->lut ? 128 : 8;
    } else if (f->width <= 6 && e->twos && B % 16 == 0) {
        L->cls = 6;
        L->woff = 32;
    } else {
        L->cls = 8;
        L->woff = 128;
    }
    for (int c = 0; c < ncodes; c++) {
        int st = L->lut ? c : e->M[c] + L->woff;   /* nf4 (not exact): lut, M = 0 */
        L->store[c] = (uint8_t)st;
        if (L->cls == 4) {
            L->lut8[st] = (uint8_t)(e->M[c] + L->woff);
            L->lutf[st] = e->v[c];
        }
    }
    L->zero = L->store[e->zero_code];
    return 1;
}

bq_qk_spec bq_qk_spec_of(const bq_format *A_fmt, const bq_format *W_fmt)
{
    bq_qk_spec s = {0};
    qk_elems *ea = malloc(sizeof *ea), *ew = malloc(sizeof *ew);
    qk_wlayout L;
    if (!ea || !ew || !A_fmt || !W_fmt || !qk_analyse(A_fmt, ea) || !qk_analyse(W_fmt, ew) ||
        !qk_wlayout_of(W_fmt, ew, &L) || (!ea->plain && A_fmt->block != W_fmt->block))
        goto done;
    if (ea->exact && ea->fits8 && ew->exact) {
        if (ea->emin + ew->emin < -126) goto done;
        s.kind = 1;
        s.p2 = ea->emin + ew->emin != 0;
    } else if (L.cls == 4 && (ew->nf4 || ea->plain || ea->nf4)) {
        s.kind = 2;   /* some operand is not exact: the fp32 chain of the contract */
    } else {
        goto done;
    }
    s.cls = (uint8_t)L.cls, s.lut = (uint8_t)L.lut, s.skind = (uint8_t)L.skind, s.block = W_fmt->block;
done:
    free(ea);
    free(ew);
    return s;
}

/* ---- packing ---- */

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t group_bytes(int cls, int skind, int64_t B, int64_t nb)
{
    int64_t SBB = 4 / skind, BB = 2 * cls * B, SBSZ = 64 + SBB * BB, nsb = ceil_div(nb, SBB);
    return nsb == 0 ? 0 : (nsb - 1) * SBSZ + 64 + (nb - (nsb - 1) * SBB) * BB;
}

size_t bq_qk_packed_bytes(const bq_format *W_fmt, int64_t N, int64_t K)
{
    qk_elems *e = malloc(sizeof *e);
    qk_wlayout L;
    int ok = e && W_fmt && N >= 0 && K >= 0 && qk_analyse(W_fmt, e) && qk_wlayout_of(W_fmt, e, &L);
    free(e);
    if (!ok) return 0;
    int64_t nb = ceil_div(K, W_fmt->block);
    return BQ_QK_HEADER + (size_t)ceil_div(N, BQ_QK_LANES) * (size_t)group_bytes(L.cls, L.skind, W_fmt->block, nb);
}

/* Code i (w bits, LSB-first) of a block's code area. */
static uint32_t code_at(const uint8_t *c, int w, int64_t i)
{
    if (w == 8) return c[i];
    if (w == 4) return (c[i >> 1] >> ((i & 1) * 4)) & 15u;
    int64_t bit = i * w;   /* w <= 7: a code spans at most two bytes */
    uint32_t v = c[bit >> 3] | ((bit & 7) + w > 8 ? (uint32_t)c[(bit >> 3) + 1] << 8 : 0u);
    return (v >> (bit & 7)) & ((1u << w) - 1);
}

/* The scale field of a block as stored; -1 if it has no encoding. */
static int64_t scale_field(const bq_format *f, int skind, const uint8_t *blk, int zero_block)
{
    uint32_t s = 0;
    for (int i = 0; i < skind; i++) s |= (uint32_t)blk[i] << (8 * i);
    if (skind != 1) return s;   /* fp16 d, fp32 absmax: the kernels convert them as they are */
    bq_elems el;
    bq_family_row_of(f->family)->decode(f, s, NULL, 0, &el);
    if (isnan(el.scale)) return 255;   /* +inf: its zero sum times inf is NaN, as the reference's */
    uint32_t bits;
    memcpy(&bits, &el.scale, 4);
    uint32_t eb = (bits >> 23) & 255u;
    if (eb != 0 && (bits & 0x807FFFFFu) == 0) return eb;   /* a normal power of two */
    return zero_block ? 0 : -1;   /* subnormal: only a zero block keeps (scale 0: contributes +0) */
}

/* One block of 16 lanes: stored values v[lane][k] (B of them) into the class's code layout. */
static void put_codes(int cls, int64_t B, uint8_t v[BQ_QK_LANES][BQ_BLOCK_MAX], uint8_t *w)
{
    for (int l = 0; l < BQ_QK_LANES; l++)
        for (int64_t k = 0; k < B; k++) {
            unsigned x = v[l][k];
            if (cls == 8) {
                w[64 * (k >> 2) + 4 * l + (k & 3)] = (uint8_t)x;
            } else if (cls == 4) {
                w[64 * (k >> 3) + 4 * l + (k & 3)] |= (uint8_t)((x & 15u) << (k & 4));
            } else {
                uint8_t *u = w + 192 * (k >> 4);
                int64_t kk = k & 15;
                u[64 * (kk >> 3) + 4 * l + (kk & 3)] |= (uint8_t)((x & 15u) << (kk & 4));
                u[128 + 4 * l + (kk & 3)] |= (uint8_t)(((x >> 4) & 3u) << (2 * (kk >> 2)));
            }
        }
}

bq_status bq_qk_pack(const bq_format *W_fmt, const void *Wq, int64_t N, int64_t K, void *dst)
{
    qk_elems *e = malloc(sizeof *e);
    uint8_t(*v)[BQ_BLOCK_MAX] = malloc(BQ_QK_LANES * BQ_BLOCK_MAX);
    qk_wlayout L;
    bq_status st = BQ_ERR_ARG;
    if (!e || !v) {
        st = BQ_ERR_NOMEM;
        goto done;
    }
    if (!W_fmt || N < 0 || K < 0 || !qk_analyse(W_fmt, e) || !qk_wlayout_of(W_fmt, e, &L)) goto done;
    int64_t B = W_fmt->block, nb = ceil_div(K, B), ng = ceil_div(N, BQ_QK_LANES);
    int64_t gbytes = group_bytes(L.cls, L.skind, B, nb), SBB = 4 / L.skind, BB = 2 * L.cls * B;
    int64_t SBSZ = 64 + SBB * BB;
    size_t row = bq_format_bytes(W_fmt, K), bbytes = bq_format_bytes(W_fmt, B);
    int sbytes = L.skind;
    unsigned char *out = dst;
    memset(out, 0, bq_qk_packed_bytes(W_fmt, N, K));
    bq_qk_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, BQ_QK_MAGIC, 8);
    h.family = W_fmt->family, h.width = W_fmt->width, h.ebits = W_fmt->ebits, h.block = W_fmt->block;
    h.cls = (uint8_t)L.cls, h.lut = (uint8_t)L.lut, h.skind = (uint8_t)L.skind;
    h.woff = L.woff, h.emin = L.emin;
    h.N = N, h.K = K, h.group_bytes = gbytes;
    memcpy(h.lut8, L.lut8, 16);
    memcpy(h.lutf, L.lutf, sizeof h.lutf);
    memcpy(out, &h, sizeof h);
    for (int64_t g = 0; g < ng; g++) {
        unsigned char *gb = out + BQ_QK_HEADER + g * gbytes;
        for (int64_t b = 0; b < nb; b++) {
            unsigned char *sp = gb + (b / SBB) * SBSZ, *w = sp + 64 + (b % SBB) * BB;
            int j = (int)(b % SBB);
            int64_t len = K - b * B < B ? K - b * B : B;
            for (int l = 0; l < BQ_QK_LANES; l++) {
                int64_t n = g * BQ_QK_LANES + l;
                int zero_block = 1;
                for (int64_t k = 0; k < B; k++) v[l][k] = L.zero;   /* padding: zero elements, scale 0 */
                if (n >= N) continue;
                const uint8_t *blk = (const uint8_t *)Wq + (size_t)n * row + (size_t)b * bbytes;
                for (int64_t k = 0; k < len; k++) {
                    uint32_t c = code_at(blk + sbytes, W_fmt->width, k);
                    v[l][k] = L.store[c];
                    zero_block &= e->nf4 ? 1 : e->M[c] == 0;
                }
                int64_t sf = scale_field(W_fmt, L.skind, blk, zero_block);
                if (sf < 0) {
                    st = BQ_ERR_FORMAT;
                    goto done;
                }
                for (int i = 0; i < sbytes; i++) sp[j * 16 * sbytes + l * sbytes + i] = (uint8_t)(sf >> (8 * i));
            }
            put_codes(L.cls, B, v, w);
        }
    }
    st = BQ_OK;
done:
    free(e);
    free(v);
    return st;
}

/* ---- activation rows ---- */

/* Elements and scales of rows [m0, m1) for either kernel through the reference quantiser and
 * decoder (every format; the fast quantisers below cover the common integer ones). */
typedef struct qk_prep_job {
    const bq_format *fa;
    const qk_elems *ea;
    bq_qk_prep p;
    int kind;
    const float *A;
    int64_t lda_in;
    int8_t *a8;
    float *af, *sa;
    int32_t *corr;
    int64_t rows_per_part, M;
    bq_isa isa;           /* whose fast quantiser serves */
} qk_prep_job;

static void prep_ref_rows(const qk_prep_job *j, int64_t m0, int64_t m1)
{
    const bq_format *f = j->fa;
    int64_t K = j->p.K, B = j->p.B, nb = j->p.nb;
    size_t qbytes = bq_format_bytes(f, K);
    uint8_t *q = malloc(qbytes + 8);
    bq_elems *el = malloc(sizeof *el);
    if (!q || !el) abort();   /* a few KB: treated like a failed stack allocation */
    for (int64_t m = m0; m < m1; m++) {
        const float *x = j->A + m * j->lda_in;
        float *sa = j->sa + m * j->p.lds;
        if (j->ea->plain) {   /* the float kernel: values (fp32 as given), scale 1 */
            float *af = j->af + m * j->p.lda;
            if (f->family == BQ_FAM_FP32) memcpy(af, x, (size_t)K * sizeof *af);
            else {
                bq_quantize(f, x, K, q);
                bq_dequantize(f, q, K, af);
            }
            for (int64_t k = K; k < j->p.lda; k++) af[k] = 0.0f;
            for (int64_t b = 0; b < nb; b++) sa[b] = 1.0f;
            continue;
        }
        bq_quantize(f, x, K, q);
        for (int64_t b = 0; b < nb; b++) {
            int64_t len = K - b * B < B ? K - b * B : B;
            bq_decode_run(f, q, K, b * B, len, el);
            sa[b] = el->scale;
            if (j->kind == 1) {
                int8_t *a = j->a8 + m * j->p.lda + b * B;
                int32_t sum = 0;
                for (int64_t i = 0; i < len; i++) {
                    int32_t M = el->m[i] ? el->m[i] * (1 << (el->e[i] - j->ea->emin)) : 0;
                    a[i] = (int8_t)M;
                    sum += M;
                }
                j->corr[m * j->p.lds + b] = -j->p.woff * sum;
            } else {
                float *a = j->af + m * j->p.lda + b * B;
                for (int64_t i = 0; i < len; i++) a[i] = el->exact ? ldexpf((float)el->m[i], el->e[i]) : el->v[i];
            }
        }
        if (j->kind == 1) memset(j->a8 + m * j->p.lda + K, 0, (size_t)(j->p.lda - K));
        else
            for (int64_t k = K; k < j->p.lda; k++) j->af[m * j->p.lda + k] = 0.0f;
    }
    free(q);
    free(el);
}

static void prep_part(void *ctx, int64_t i)
{
    const qk_prep_job *j = ctx;
    int64_t m0 = i * j->rows_per_part, m1 = m0 + j->rows_per_part < j->M ? m0 + j->rows_per_part : j->M;
    if (j->kind == 1 && bq_qk_prep_rows(j->isa, &j->p, j->A, j->lda_in, m0, m1, j->a8, j->sa, j->corr)) return;
    prep_ref_rows(j, m0, m1);
}

int bq_qk_prep_rows(bq_isa isa, const bq_qk_prep *p, const float *A, int64_t lda_in, int64_t m0, int64_t m1,
                    int8_t *a8, float *sa, int32_t *corr)
{
#ifdef BQ_QK_HAVE_AVX512
    if (isa == BQ_ISA_AVX512 && bq_qk_prep_rows_avx512(p, A, lda_in, m0, m1, a8, sa, corr)) return 1;
#endif
    return bq_qk_prep_rows_portable(p, A, lda_in, m0, m1, a8, sa, corr);
}

int bq_qk_int8_rows(const bq_format *f, int *emin)
{
    if (!f || f->block <= 1 || (f->family != BQ_FAM_BFP && f->family != BQ_FAM_INT && f->family != BQ_FAM_MXINT))
        return 0;
    qk_elems *e = malloc(sizeof *e);
    int ok = e && qk_analyse(f, e) && e->exact && e->fits8;
    if (ok) *emin = e->emin;
    free(e);
    return ok;
}

/* ---- int8 block dot products (attention, nn_q.c) ---- */

static inline int32_t bsum_portable(const int8_t *a, const int8_t *w, int64_t B)
{
    int32_t s = 0;
    for (int64_t i = 0; i < B; i++) s += (int32_t)a[i] * w[i];
    return s;
}

void bq_qk_idot_portable(const int8_t *a, const float *sa, const int8_t *w, int64_t ldw, const float *sw, int64_t lds,
                         int64_t nb, int64_t B, int64_t N, float p2, float *acc)
{
    bq_qk_idot_t(a, sa, w, ldw, sw, lds, nb, B, N, p2, acc, bsum_portable);
}

void bq_qk_idot(bq_isa isa, const int8_t *a, const float *sa, const int8_t *w, int64_t ldw, const float *sw,
                int64_t lds, int64_t nb, int64_t B, int64_t N, float p2, float *acc)
{
#ifdef BQ_QK_HAVE_AVX512
    if (isa == BQ_ISA_AVX512) {
        bq_qk_idot_avx512(a, sa, w, ldw, sw, lds, nb, B, N, p2, acc);
        return;
    }
#endif
    bq_qk_idot_portable(a, sa, w, ldw, sw, lds, nb, B, N, p2, acc);
}

static inline int scan_portable(const float *x, int64_t len, float *amax)
{
    if (!bq_block_finite(x, (int)len)) return 0;
    *amax = bq_block_amax(x, (int)len);
    return 1;
}

/* The elements in double, as bq_quantize computes them. */
static inline int32_t quant_portable(const float *x, int64_t len, const bq_qk_bscale *s, int8_t *q)
{
    int32_t sum = 0;
    for (int64_t i = 0; i < len; i++) {
        double r = s->pow2 ? nearbyint(ldexp((double)x[i], s->sh)) : s->d == 0.0 ? 0.0 : nearbyint(x[i] / s->d);
        q[i] = (int8_t)(r > s->qmax ? s->qmax : r < -s->qmax ? -s->qmax : r);
        sum += q[i];
    }
    return sum;
}

int bq_qk_prep_rows_portable(const bq_qk_prep *p, const float *A, int64_t lda_in, int64_t m0, int64_t m1, int8_t *a8,
                             float *sa, int32_t *corr)
{
    return bq_qk_prep_rows_t(p, A, lda_in, m0, m1, a8, sa, corr, scan_portable, quant_portable);
}

/* ---- the call ---- */

typedef struct qk_run {
    bq_qk_task *tasks;
    bq_qk_fn fn;
} qk_run;

static void run_part(void *ctx, int64_t i)
{
    const qk_run *r = ctx;
    if (r->tasks[i].g0 < r->tasks[i].g1) r->fn(&r->tasks[i]);
}

static int64_t qk_prefetch_bytes(void)
{
    const char *e = getenv("BQC_QK_PREFETCH");   /* tuning knob (bytes ahead per group stream) */
    return e ? atoll(e) : 2048;
}

bq_status bq_qk_matmul_spec(bq_isa isa, bq_pool *pool, const bq_format *A_fmt, const float *A, int64_t lda,
                            const bq_format *W_fmt, const void *Wp, const float *bias, int relu, float *C,
                            int64_t ldc, int64_t M, int64_t N, int64_t K, bq_qk_fn avx512, bq_qk_fn portable)
{
    if (!A_fmt || !W_fmt || !Wp || M < 0 || N < 0 || K < 0) return BQ_ERR_ARG;
    bq_qk_spec sp = bq_qk_spec_of(A_fmt, W_fmt);
    if (!sp.kind) return BQ_ERR_ARG;
    bq_qk_header h;
    memcpy(&h, Wp, sizeof h);
    if (memcmp(h.magic, BQ_QK_MAGIC, 8) != 0 || h.family != W_fmt->family || h.width != W_fmt->width ||
        h.ebits != W_fmt->ebits || h.block != W_fmt->block || h.N != N || h.K != K || h.cls != sp.cls)
        return BQ_ERR_FORMAT;
    if (M == 0 || N == 0) return BQ_OK;
    qk_elems *ea = malloc(sizeof *ea);
    if (!ea) return BQ_ERR_NOMEM;
    qk_analyse(A_fmt, ea);
    int64_t B = W_fmt->block, nb = ceil_div(K, B), lda8 = (nb * B + 63) & ~(int64_t)63;
    int threads = bq_pool_threads(pool);
    size_t esz = sp.kind == 1 ? 1 : sizeof(float);
    size_t a_bytes = ((size_t)(M * lda8) * esz + 63) & ~(size_t)63, s_bytes = ((size_t)(M * nb) * 4 + 63) & ~(size_t)63;
    int64_t ng = ceil_div(N, BQ_QK_LANES);
    int64_t parts = ng < threads ? ng : threads;
    size_t t_bytes = ((size_t)parts * sizeof(bq_qk_task) + 63) & ~(size_t)63;   /* aligned_alloc: a multiple of 64 */
    unsigned char *mem = aligned_alloc(64, a_bytes + 2 * s_bytes + t_bytes);
    if (!mem) {
        free(ea);
        return BQ_ERR_NOMEM;
    }
    qk_prep_job pj = {.fa = A_fmt, .ea = ea, .kind = sp.kind, .A = A, .lda_in = lda, .M = M,
                      .isa = isa};
    pj.p = (bq_qk_prep){A_fmt, h.woff, K, B, nb, lda8, nb};
    pj.a8 = (int8_t *)mem;
    pj.af = (float *)mem;
    pj.sa = (float *)(mem + a_bytes);
    pj.corr = (int32_t *)(mem + a_bytes + s_bytes);
    int64_t pparts = M < threads ? M : threads;
    pj.rows_per_part = ceil_div(M, pparts);
    bq_pool_run(pool, prep_part, &pj, ceil_div(M, pj.rows_per_part));

    bq_qk_task *tasks = (bq_qk_task *)(mem + a_bytes + 2 * s_bytes);
    bq_qk_task t = {.W = Wp, .group_bytes = h.group_bytes, .a8 = pj.a8, .af = pj.af, .lda = lda8, .sa = pj.sa,
                    .corr = pj.corr, .lds = nb, .p2 = ldexpf(1.0f, ea->emin + h.emin),
                    .lut8 = ((const bq_qk_header *)Wp)->lut8, .lutf = ((const bq_qk_header *)Wp)->lutf, .bias = bias,
                    .relu = relu, .C = C, .ldc = ldc, .M = M, .N = N, .nb = nb, .B = B,
                    .prefetch = qk_prefetch_bytes(), .sp = sp};
    /* Parts own whole runs of groups (multiples of the GEMV's 4 streams where possible). */
    int64_t unit = M == 1 && ng >= 4 * parts ? 4 : 1, units = ceil_div(ng, unit);
    for (int64_t i = 0; i < parts; i++) {
        tasks[i] = t;
        tasks[i].g0 = units * i / parts * unit;
        tasks[i].g1 = units * (i + 1) / parts * unit < ng ? units * (i + 1) / parts * unit : ng;
    }
    qk_run run = {tasks, isa == BQ_ISA_AVX512 && avx512 ? avx512 : portable};
    bq_pool_run(pool, run_part, &run, parts);
    free(mem);
    free(ea);
    return BQ_OK;
}

bq_status bq_qk_matmul(bq_isa isa, bq_pool *pool, const bq_format *A_fmt, const float *A, int64_t lda,
                       const bq_format *W_fmt, const void *Wp, const float *bias, int relu, float *C, int64_t ldc,
                       int64_t M, int64_t N, int64_t K)
{
    if (!A_fmt || !W_fmt) return BQ_ERR_ARG;
    bq_qk_spec sp = bq_qk_spec_of(A_fmt, W_fmt);
    if (!sp.kind) return BQ_ERR_ARG;
    bq_qk_fn avx = NULL;
#ifdef BQ_QK_HAVE_AVX512
    avx = bq_qk_avx512_for(&sp);
#endif
    return bq_qk_matmul_spec(isa, pool, A_fmt, A, lda, W_fmt, Wp, bias, relu, C, ldc, M, N, K, avx,
                             bq_qk_portable_for(&sp));
}

/* ---- the runtime's portable instantiations ---- */

#define QK_DEF(kind, cls, lut, sk, p2, B) BQ_QK_DEFINE_PORTABLE(qk_##kind##_##cls##_##lut##_##sk##_##p2##_##B, kind, cls, lut, sk, p2, B, 0)
BQ_QK_SPEC_ROWS(QK_DEF)
#undef QK_DEF

static void qk_generic_portable(const bq_qk_task *t)
{
    bq_qk_kernel_portable(t, t->sp.kind, t->sp.cls, t->sp.lut, t->sp.skind, t->sp.p2, 0, 0);
}

bq_qk_fn bq_qk_portable_for(const bq_qk_spec *s)
{
#define QK_ROW(KD, CL, LU, SK, PT, BL)                                                                 \
    if (s->kind == KD && s->cls == CL && s->lut == LU && s->skind == SK && s->p2 == PT && s->block == BL) \
        return qk_##KD##_##CL##_##LU##_##SK##_##PT##_##BL##_portable;
    BQ_QK_SPEC_ROWS(QK_ROW)
#undef QK_ROW
    return qk_generic_portable;
}
