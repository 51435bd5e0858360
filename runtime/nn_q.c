/* nn_q.c — bqc.Attention with number formats on its two products.
 *
 * The fp32 kernel (nn.c) with each product swapped for a quantised one when either of its
 * formats is not fp32 — the int8-row fast path below for bfp/int/mxint8 pairs, otherwise:
 * Q·Kᵀ is bq_qmatmul of the scaled query rows (quantised along D by bq_qmatmul itself)
 * against the key rows quantised along D; P·V is bq_qmatmul of the probability rows
 * (quantised along the T = P+S keys) against the columns of V, transposed to rows of T and
 * quantised along the keys. A product whose formats are both fp32 keeps the fp32
 * matmul, so every fp32 bit of bq_attention_f32 is untouched. Appending to the cache, the
 * mask and the softmax are nn.c's own functions (bq_attn_append, bq_attn_mask, bq_softmax_f32).
 *
 * Why decode equals a full forward for every format: a key row, a query row and a probability
 * row are quantised on their own (the masked tail of a probability row is exact zeros, and
 * zeros neither move a block's scale nor add to a block sum). Values are quantised along the
 * keys, per column, and only the keys a query can see take part: each query's columns are
 * quantised over the keys up to its causal horizon — the last block shorter, as formats.md has
 * it for any K not a multiple of B — with the values of keys the attention mask hides (left
 * padding) as zeros. Their probabilities are exactly zero, so this changes no product, only
 * keeps invisible keys out of the block scales: keys from a query's future may not exist yet
 * (decode), and a padded position's hidden state is meaningless (a fully masked query
 * averages over however many keys exist). The result is the same for a full forward and for
 * decode. Without causal masking every query sees all keys: one quantisation serves.
 *
 * On the fast path the int8 keys and values can persist between calls (qcache, kv8 below):
 * key rows never change once appended, and a value block of B keys is final once it is full,
 * so a call quantises keys [P, T) and value blocks from floor(P/B) only. Same bits either way:
 * the cached int8 data is exactly what quantising the float cache again would give.
 */
#include <stdlib.h>
#include <string.h>

#include "bqcrt_int.h"
#include "qkern_int.h"
#include "qmatmul_int.h"

static int is_fp32(const bq_format *f) { return f->family == BQ_FAM_FP32; }
static int valid(const bq_format *f) { return bq_format_bytes(f, 1) != 0; }
static int compatible(const bq_format *a, const bq_format *w)
{
    return valid(a) && valid(w) && (a->block == 1 || w->block == 1 || a->block == w->block);
}

enum { MAX_PARTS = 256 };   /* bq_pool's thread limit */

/* A product whose two formats quantise straight to int8 rows (bfp, int, mxint8 — the W+A
 * plans' formats) runs on the fast path: both operands through the vectorised quantisers of
 * the matmul kernels (qkern.c), block sums of int8 products, the contract's fp32 steps per
 * block (bq_qk_idot). Other pairs go through bq_qmatmul. Both give bq_dot_ref's bits. */
typedef struct fast_pair {
    int on;
    int64_t B, nb, ld;           /* block, blocks and int8 row length along the product's K */
    float p2;                    /* 2^(emin_a + emin_w) */
} fast_pair;

static fast_pair fast_pair_of(const bq_format *a, const bq_format *w, int64_t K)
{
    fast_pair p = {0};
    int ea, ew;
    if (!bq_qk_int8_rows(a, &ea) || !bq_qk_int8_rows(w, &ew) || ea + ew < -126) return p;
    p.on = 1, p.B = a->block, p.nb = (K + p.B - 1) / p.B, p.ld = p.nb * p.B, p.p2 = ldexpf(1.0f, ea + ew);
    return p;
}

typedef struct qattn_job {
    bq_isa isa;
    const bq_attn_formats *fmt;
    const float *q, *k, *v;
    const int64_t *mask;
    float *kcache, *vcache, *out, *scratch;
    unsigned char *qcache;       /* NULL, or the persistent int8 keys and values (kv8_layout per pair) */
    size_t qstride;              /* bytes of one (batch, head) in qcache */
    int64_t ld_qkv, cap, B, S, P, H, D;
    int64_t per;                 /* (batch, head) pairs per pool index */
    float scale;
    int causal;
    fast_pair fqk, fpv;          /* Q·Kᵀ along D, P·V along the T keys */
    const bq_qpair *qk, *pv;     /* the products' formats for bq_qmatmul (NULL: both fp32, or fast) */
    bq_status status[MAX_PARTS];
} qattn_job;

/* The fast path's int8 keys and values of one (batch, head), for keys [0, cap): key rows
 * [cap][ld_D] with scales [cap][nb_D]; values block-major, [cap/B][D][B] with scales [cap/B][D]
 * (block k of every column: keys [kB, kB+B)), so a block of new keys is written without
 * touching its neighbours and a column's blocks are summed in order by one call per block. */
typedef struct kv8 {
    int8_t *k8, *v8;
    float *ks, *vs;
} kv8;

static size_t kv8_layout(const fast_pair *a, const fast_pair *b, int64_t cap, int64_t D, unsigned char *base, kv8 *o)
{
    size_t at = 0;
#define TAKE(dst, ptr, bytes)                                               \
    do {                                                                    \
        dst->ptr = base ? (void *)(base + at) : NULL;                       \
        at += ((size_t)(bytes) + 63) & ~(size_t)63;                         \
    } while (0)
    memset(o, 0, sizeof *o);
    if (a->on) {
        TAKE(o, k8, cap * a->ld);
        TAKE(o, ks, (size_t)(cap * a->nb) * sizeof(float));
    }
    if (b->on) {
        int64_t nb = (cap + b->B - 1) / b->B;
        TAKE(o, v8, nb * D * b->B);
        TAKE(o, vs, (size_t)(nb * D) * sizeof(float));
    }
    return at;
}

/* One pool index's buffers, carved from one allocation (part_layout with base NULL sizes it). */
typedef struct part_bufs {
    unsigned char *kq, *vq;      /* bq_qmatmul path: quantised key rows, value columns */
    float *vt;                   /* value columns [D][T] (bq_qmatmul path: hidden keys zero) */
    kv8 kv;                      /* fast path: this call's int8 keys and values (no qcache, or hidden keys) */
    int8_t *q8, *p8, *vp8;       /* int8 rows of queries, a probability row, a block of value columns */
    float *qs, *ps, *vps;        /* their block scales */
    float *vb;                   /* a block of value columns [D][B] in fp32 */
    int32_t *corr;               /* bq_qk_prep_rows' -woff·Σ (woff 0 here: unused) */
    float *acc;                  /* D accumulators */
} part_bufs;

static size_t part_layout(const qattn_job *j, unsigned char *base, part_bufs *pb)
{
    const int64_t S = j->S, D = j->D, T = j->P + j->S;
    const fast_pair *a = &j->fqk, *b = &j->fpv;
    memset(pb, 0, sizeof *pb);
    size_t at = kv8_layout(a, b, T, D, base, &pb->kv);
    int qk_ref = !a->on && !(is_fp32(&j->fmt->qk_input) && is_fp32(&j->fmt->qk_weight));
    int pv_ref = !b->on && !(is_fp32(&j->fmt->pv_input) && is_fp32(&j->fmt->pv_weight));
    if (qk_ref) TAKE(pb, kq, bq_format_bytes(&j->fmt->qk_weight, D) * (size_t)T);
    if (pv_ref) TAKE(pb, vq, bq_format_bytes(&j->fmt->pv_weight, T) * (size_t)D);
    if (pv_ref || b->on) TAKE(pb, vt, (size_t)(D * T) * sizeof(float));
    if (a->on) {
        TAKE(pb, q8, S * a->ld);
        TAKE(pb, qs, (size_t)(S * a->nb) * sizeof(float));
    }
    if (b->on) {
        TAKE(pb, p8, b->ld);
        TAKE(pb, ps, (size_t)b->nb * sizeof(float));
        TAKE(pb, vp8, D * b->B);
        TAKE(pb, vps, (size_t)D * sizeof(float));
        TAKE(pb, vb, (size_t)(D * b->B) * sizeof(float));
        TAKE(pb, acc, (size_t)D * sizeof(float));
    }
    int64_t rows = S > T ? S : T, nb = a->nb > b->nb ? a->nb : b->nb;
    if (a->on || b->on) TAKE(pb, corr, (size_t)((rows > D ? rows : D) * nb) * sizeof(int32_t));
#undef TAKE
    return at < 64 ? 64 : at;
}

/* Rows [0, rows) of x (rows ld_in apart, K elements each) into int8 rows of p's layout. */
static void prep(const qattn_job *j, const bq_format *f, const fast_pair *p, const float *x, int64_t ld_in,
                 int64_t rows, int64_t K, int8_t *a8, int64_t lda, float *s, int64_t lds, int32_t *corr)
{
    bq_qk_prep pr = {f, 0, K, p->B, (K + p->B - 1) / p->B, lda, lds};
    bq_qk_prep_rows(j->isa, &pr, x, ld_in, 0, rows, a8, s, corr);
}

/* Q·Kᵀ on the fast path: keys [from, T) join kv's int8 rows (the rows before are there from
 * earlier calls), then the scores of query i over the keys it can see (the rest are masked). */
static void qk_fast(const qattn_job *j, const float *qs, const float *K, float *scores, const part_bufs *pb,
                    const kv8 *kv, int64_t from)
{
    const fast_pair *a = &j->fqk;
    const int64_t S = j->S, P = j->P, D = j->D, T = P + S;
    prep(j, &j->fmt->qk_input, a, qs, D, S, D, pb->q8, a->ld, pb->qs, a->nb, pb->corr);
    prep(j, &j->fmt->qk_weight, a, K + from * D, D, T - from, D, kv->k8 + from * a->ld, a->ld, kv->ks + from * a->nb,
         a->nb, pb->corr);
    for (int64_t i = 0; i < S; i++) {
        int64_t seen = j->causal ? P + i + 1 : T;
        float *row = scores + i * T;
        for (int64_t t = 0; t < T; t++) row[t] = 0.0f;
        bq_qk_idot(j->isa, pb->q8 + i * a->ld, pb->qs + i * a->nb, kv->k8, a->ld, kv->ks, a->nb, a->nb, a->B, seen,
                   a->p2, row);
    }
}

/* One block of len keys of every value column (vt: the columns, rows ldt apart) into w8
 * [D][B] and ws [D], with the values of the keys mrow hides as zeros (mrow NULL: none hidden;
 * else the mask from the block's first key). */
static void v_block(const qattn_job *j, const float *vt, int64_t ldt, const int64_t *mrow, int64_t len,
                    const part_bufs *pb, int8_t *w8, float *ws)
{
    const int64_t D = j->D, B = j->fpv.B;
    if (mrow) {
        for (int64_t d = 0; d < D; d++)
            for (int64_t t = 0; t < len; t++) pb->vb[d * B + t] = mrow[t] == 0 ? 0.0f : vt[d * ldt + t];
        vt = pb->vb, ldt = B;
    }
    prep(j, &j->fmt->pv_weight, &j->fpv, vt, ldt, D, len, w8, B, ws, 1, pb->corr);
}

/* P·V on the fast path. The value blocks of keys [from, T) join kv (a block is final once
 * full: the last, short one is redone when its keys grow); a query whose horizon ends inside
 * a block re-quantises just that block over the keys it sees. Keys the mask hides (mrow) move
 * block scales, so with any hidden key this call quantises every block afresh, hidden values
 * as zeros, into its own buffers, and kv keeps the unmasked values for later calls. The
 * columns of the keys this call reads are transposed once, into vt from key k0. */
static void pv_fast(const qattn_job *j, const float *V, const int64_t *mrow, const float *scores, float *o,
                    const part_bufs *pb, const kv8 *kv, int64_t from)
{
    const fast_pair *b = &j->fpv;
    const int64_t S = j->S, P = j->P, D = j->D, T = P + S, B = b->B, HD = j->H * D, nbT = (T + B - 1) / B;
    const int64_t k0 = mrow ? 0 : from / B * B, ldt = T - k0;
    float *vt = pb->vt;
    for (int64_t t = k0; t < T; t++)
        for (int64_t d = 0; d < D; d++) vt[d * ldt + t - k0] = V[t * D + d];
    const kv8 *src = kv;
    if (!mrow || kv != &pb->kv)
        for (int64_t k = from / B; k < nbT; k++)
            v_block(j, vt + k * B - k0, ldt, NULL, T - k * B < B ? T - k * B : B, pb, kv->v8 + k * D * B, kv->vs + k * D);
    if (mrow) {
        for (int64_t k = 0; k < nbT; k++)
            v_block(j, vt + k * B, ldt, mrow + k * B, T - k * B < B ? T - k * B : B, pb, pb->kv.v8 + k * D * B,
                    pb->kv.vs + k * D);
        src = &pb->kv;
    }
    for (int64_t i = 0; i < S; i++) {
        int64_t seen = j->causal ? P + i + 1 : T, nb = (seen + B - 1) / B;
        prep(j, &j->fmt->pv_input, b, scores + i * T, T, 1, seen, pb->p8, b->ld, pb->ps, b->nb, pb->corr);
        for (int64_t d = 0; d < D; d++) pb->acc[d] = 0.0f;
        for (int64_t k = 0; k < nb; k++) {
            const int8_t *w8 = src->v8 + k * D * B;
            const float *ws = src->vs + k * D;
            if (seen < T && seen - k * B < B) {   /* the horizon's short block (k * B >= k0: past key P) */
                v_block(j, vt + k * B - k0, ldt, mrow ? mrow + k * B : NULL, seen - k * B, pb, pb->vp8, pb->vps);
                w8 = pb->vp8, ws = pb->vps;
            }
            bq_qk_idot(j->isa, pb->p8 + k * B, pb->ps + k, w8, B, ws, 1, 1, B, D, b->p2, pb->acc);
        }
        memcpy(o + i * HD, pb->acc, (size_t)D * sizeof(float));
    }
}

static bq_status attend_head_q(const qattn_job *j, int64_t b, int64_t h, float *scratch, const part_bufs *pb)
{
    const bq_attn_formats *f = j->fmt;
    const int64_t S = j->S, P = j->P, D = j->D, T = P + S, HD = j->H * D;
    float *K = j->kcache + (b * j->H + h) * j->cap * D, *V = j->vcache + (b * j->H + h) * j->cap * D;
    float *qs = scratch, *scores = scratch + S * D;
    bq_attn_append(j->q, j->k, j->v, j->ld_qkv, j->scale, b, h, S, P, D, K, V, qs);
    /* The fast path's int8 keys and values: this pair's persistent ones, which hold keys
     * [0, P) from earlier calls, or this call's, filled from key 0. */
    kv8 own;
    const kv8 *kv = &pb->kv;
    int64_t from = 0;
    if (j->qcache) {
        kv8_layout(&j->fqk, &j->fpv, j->cap, D, j->qcache + (size_t)(b * j->H + h) * j->qstride, &own);
        kv = &own, from = P;
    }
    bq_status st = BQ_OK;
    if (is_fp32(&f->qk_input) && is_fp32(&f->qk_weight)) {
        bq_matmul_f32(j->isa, NULL, qs, D, K, D, 1, NULL, 0, scores, T, S, T, D);
    } else if (j->fqk.on) {
        qk_fast(j, qs, K, scores, pb, kv, from);
    } else {
        const void *kw = K;
        if (!is_fp32(&f->qk_weight)) {
            size_t row = bq_format_bytes(&f->qk_weight, D);
            for (int64_t t = 0; t < T; t++) bq_quantize(&f->qk_weight, K + t * D, D, pb->kq + (size_t)t * row);
            kw = pb->kq;
        }
        st = bq_qmatmul_pair(j->isa, NULL, j->qk, qs, D, kw, NULL, 0, scores, T, S, T, D);
        if (st != BQ_OK) return st;
    }
    const int64_t *mrow = NULL;   /* the mask's row, if it hides any key */
    for (int64_t t = 0; j->mask && t < T && !mrow; t++)
        if (j->mask[b * T + t] == 0) mrow = j->mask + b * T;
    bq_attn_mask(scores, mrow, j->causal, S, P);
    bq_softmax_f32(scores, S, T);
    float *o = j->out + b * S * HD + h * D;
    if (is_fp32(&f->pv_input) && is_fp32(&f->pv_weight)) {
        bq_matmul_f32(j->isa, NULL, scores, T, V, D, 0, NULL, 0, o, HD, S, D, T);
        return BQ_OK;
    }
    if (j->fpv.on) {
        pv_fast(j, V, mrow, scores, o, pb, kv, from);
        return BQ_OK;
    }
    float *vt = pb->vt;
    for (int64_t t = 0; t < T; t++) {
        int hidden = mrow && mrow[t] == 0;
        for (int64_t d = 0; d < D; d++) vt[d * T + t] = hidden ? 0.0f : V[t * D + d];
    }
    /* One product per query under causal masking (its own horizon), else one for all. */
    int64_t groups = j->causal ? S : 1;
    for (int64_t i = 0; i < groups && st == BQ_OK; i++) {
        int64_t Ki = j->causal ? P + i + 1 : T, rows = j->causal ? 1 : S;
        size_t row = bq_format_bytes(&f->pv_weight, Ki);
        for (int64_t d = 0; d < D; d++) {
            if (is_fp32(&f->pv_weight)) memcpy(pb->vq + (size_t)d * row, vt + d * T, (size_t)Ki * sizeof(float));
            else bq_quantize(&f->pv_weight, vt + d * T, Ki, pb->vq + (size_t)d * row);
        }
        st = bq_qmatmul_pair(j->isa, NULL, j->pv, scores + i * T, T, pb->vq, NULL, 0, o + i * HD, HD, rows, D, Ki);
    }
    return st;
}

static void attend_part_q(void *ctx, int64_t i)
{
    qattn_job *j = ctx;
    float *scratch = j->scratch + i * bq_attention_scratch(j->S, j->P, j->D);
    part_bufs pb;
    unsigned char *mem = aligned_alloc(64, part_layout(j, NULL, &pb));
    if (!mem) {
        j->status[i] = BQ_ERR_NOMEM;
        return;
    }
    part_layout(j, mem, &pb);
    int64_t end = (i + 1) * j->per < j->B * j->H ? (i + 1) * j->per : j->B * j->H;
    bq_status st = BQ_OK;
    for (int64_t bh = i * j->per; bh < end && st == BQ_OK; bh++) st = attend_head_q(j, bh / j->H, bh % j->H, scratch, &pb);
    j->status[i] = st;
    free(mem);
}

static int all_fp32(const bq_attn_formats *f)
{
    return !f || (is_fp32(&f->qk_input) && is_fp32(&f->qk_weight) && is_fp32(&f->pv_input) && is_fp32(&f->pv_weight));
}

size_t bq_attention_qcache_bytes(const bq_attn_formats *fmt, int64_t B, int64_t H, int64_t cap, int64_t D)
{
    if (!fmt || B < 1 || H < 1 || cap < 1 || D < 1) return 0;
    if (!compatible(&fmt->qk_input, &fmt->qk_weight) || !compatible(&fmt->pv_input, &fmt->pv_weight)) return 0;
    fast_pair qk = fast_pair_of(&fmt->qk_input, &fmt->qk_weight, D), pv = fast_pair_of(&fmt->pv_input, &fmt->pv_weight, cap);
    kv8 kv;
    return qk.on || pv.on ? (size_t)(B * H) * kv8_layout(&qk, &pv, cap, D, NULL, &kv) : 0;
}

bq_status bq_attention_cached_q_f32(bq_isa isa, bq_pool *pool, const bq_attn_formats *fmt, const float *q,
                                    const float *k, const float *v, int64_t ld_qkv, const int64_t *mask, int causal,
                                    float scale, float *kcache, float *vcache, void *qcache, int64_t cap, float *out,
                                    int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch)
{
    if (all_fp32(fmt)) {
        bq_attention_cached_f32(isa, pool, q, k, v, ld_qkv, mask, causal, scale, kcache, vcache, cap, out, B, S, P, H,
                                D, scratch);
        return BQ_OK;
    }
    if (!compatible(&fmt->qk_input, &fmt->qk_weight) || !compatible(&fmt->pv_input, &fmt->pv_weight)) return BQ_ERR_ARG;
    int64_t pairs = B * H, T = P + S;
    if (B <= 0 || H <= 0 || S <= 0) return BQ_OK;
    int64_t parts = bq_pool_threads(pool) < pairs ? bq_pool_threads(pool) : pairs;
    int64_t per = (pairs + parts - 1) / parts;
    qattn_job *j = calloc(1, sizeof *j);
    if (!j) return BQ_ERR_NOMEM;
    *j = (qattn_job){.isa = isa, .fmt = fmt, .q = q, .k = k, .v = v, .mask = mask, .kcache = kcache, .vcache = vcache,
                     .out = out, .scratch = scratch, .ld_qkv = ld_qkv, .cap = cap, .B = B, .S = S, .P = P, .H = H,
                     .D = D, .per = per, .scale = scale, .causal = causal};
    j->fqk = fast_pair_of(&fmt->qk_input, &fmt->qk_weight, D);
    j->fpv = fast_pair_of(&fmt->pv_input, &fmt->pv_weight, T);
    if (qcache && (j->fqk.on || j->fpv.on)) {
        kv8 kv;
        j->qcache = qcache, j->qstride = kv8_layout(&j->fqk, &j->fpv, cap, D, NULL, &kv);
    }
    int64_t n = (pairs + per - 1) / per;
    bq_qpair *qk = NULL, *pv = NULL;
    bq_status st = BQ_OK;
    if (!j->fqk.on && (!is_fp32(&fmt->qk_input) || !is_fp32(&fmt->qk_weight)))
        st = bq_qpair_create(&fmt->qk_input, &fmt->qk_weight, &qk);
    if (st == BQ_OK && !j->fpv.on && (!is_fp32(&fmt->pv_input) || !is_fp32(&fmt->pv_weight)))
        st = bq_qpair_create(&fmt->pv_input, &fmt->pv_weight, &pv);
    j->qk = qk, j->pv = pv;
    if (st == BQ_OK) bq_pool_run(pool, attend_part_q, j, n);
    for (int64_t i = 0; i < n && st == BQ_OK; i++) st = j->status[i];
    bq_qpair_destroy(qk);
    bq_qpair_destroy(pv);
    free(j);
    return st;
}

bq_status bq_attention_q_f32(bq_isa isa, bq_pool *pool, const bq_attn_formats *fmt, const float *q, const float *k,
                             const float *v, int64_t ld_qkv, const float *past_k, const float *past_v,
                             const int64_t *mask, int causal, float scale, float *present_k, float *present_v,
                             float *out, int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch)
{
    const int64_t T = P + S;
    for (int64_t bh = 0; P > 0 && bh < B * H; bh++) {
        memcpy(present_k + bh * T * D, past_k + bh * P * D, (size_t)(P * D) * sizeof(float));
        memcpy(present_v + bh * T * D, past_v + bh * P * D, (size_t)(P * D) * sizeof(float));
    }
    return bq_attention_cached_q_f32(isa, pool, fmt, q, k, v, ld_qkv, mask, causal, scale, present_k, present_v, NULL,
                                     T, out, B, S, P, H, D, scratch);
}
