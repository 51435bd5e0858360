/* nn_q.c — bqc.Attention with number formats on its two products.
 *
 * The fp32 kernel (nn.c) with each product swapped for the quantised matmul when either of its
 * formats is not fp32: Q·Kᵀ is bq_qmatmul of the scaled query rows (quantised along D by
 * bq_qmatmul itself) against the key rows quantised along D; P·V is bq_qmatmul of the
 * probability rows (quantised along the T = P+S keys) against the columns of V, transposed to
 * rows of T and quantised along the keys. A product whose formats are both fp32 keeps the fp32
 * matmul, so every fp32 bit of bq_attention_f32 is untouched. Appending to the cache, the
 * mask, -FLT_MAX and the softmax are nn.c's, line for line.
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
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt_int.h"
#include "qmatmul_int.h"

static int is_fp32(const bq_format *f) { return f->family == BQ_FAM_FP32; }
static int valid(const bq_format *f) { return bq_format_bytes(f, 1) != 0; }
static int compatible(const bq_format *a, const bq_format *w)
{
    return valid(a) && valid(w) && (a->block == 1 || w->block == 1 || a->block == w->block);
}

enum { MAX_PARTS = 256 };   /* bq_pool's thread limit */

typedef struct qattn_job {
    bq_isa isa;
    const bq_attn_formats *fmt;
    const float *q, *k, *v;
    const int64_t *mask;
    float *kcache, *vcache, *out, *scratch;
    int64_t ld_qkv, cap, B, S, P, H, D;
    int64_t per;                 /* (batch, head) pairs per pool index */
    float scale;
    int causal;
    size_t kq_row, vq_row;       /* bytes of a quantised key row (D) and value column (T) */
    size_t part_bytes;           /* quantised keys, transposed values, quantised values */
    const bq_qpair *qk, *pv;     /* the products' formats, analysed once (NULL: both fp32) */
    bq_status status[MAX_PARTS];
} qattn_job;

static bq_status attend_head_q(const qattn_job *j, int64_t b, int64_t h, float *scratch, unsigned char *mem)
{
    const bq_attn_formats *f = j->fmt;
    const int64_t S = j->S, P = j->P, D = j->D, T = P + S, HD = j->H * D, ld = j->ld_qkv;
    float *K = j->kcache + (b * j->H + h) * j->cap * D, *V = j->vcache + (b * j->H + h) * j->cap * D;
    float *qs = scratch, *scores = scratch + S * D;
    unsigned char *kq = mem;
    float *vt = (float *)(mem + ((j->kq_row * (size_t)T + 63) & ~(size_t)63));
    unsigned char *vq = (unsigned char *)(vt + ((D * T + 15) & ~(int64_t)15));
    for (int64_t s = 0; s < S; s++) {
        memcpy(K + (P + s) * D, j->k + (b * S + s) * ld + h * D, (size_t)D * sizeof(float));
        memcpy(V + (P + s) * D, j->v + (b * S + s) * ld + h * D, (size_t)D * sizeof(float));
    }
    for (int64_t i = 0; i < S; i++)
        for (int64_t d = 0; d < D; d++) qs[i * D + d] = j->q[(b * S + i) * ld + h * D + d] * j->scale;
    bq_status st = BQ_OK;
    if (is_fp32(&f->qk_input) && is_fp32(&f->qk_weight)) {
        bq_matmul_f32(j->isa, NULL, qs, D, K, D, 1, NULL, 0, scores, T, S, T, D);
    } else {
        const void *kw = K;
        if (!is_fp32(&f->qk_weight)) {
            for (int64_t t = 0; t < T; t++) bq_quantize(&f->qk_weight, K + t * D, D, kq + (size_t)t * j->kq_row);
            kw = kq;
        }
        st = bq_qmatmul_pair(j->isa, NULL, j->qk, qs, D, kw, NULL, 0, scores, T, S, T, D);
        if (st != BQ_OK) return st;
    }
    for (int64_t i = 0; i < S; i++) {
        float *row = scores + i * T;
        for (int64_t t = 0; t < T; t++)
            if ((j->mask && j->mask[b * T + t] == 0) || (j->causal && t > P + i)) row[t] = -FLT_MAX;
    }
    bq_softmax_f32(scores, S, T);
    float *o = j->out + b * S * HD + h * D;
    if (is_fp32(&f->pv_input) && is_fp32(&f->pv_weight)) {
        bq_matmul_f32(j->isa, NULL, scores, T, V, D, 0, NULL, 0, o, HD, S, D, T);
        return BQ_OK;
    }
    for (int64_t t = 0; t < T; t++) {
        int hidden = j->mask && j->mask[b * T + t] == 0;
        for (int64_t d = 0; d < D; d++) vt[d * T + t] = hidden ? 0.0f : V[t * D + d];
    }
    /* One product per query under causal masking (its own horizon), else one for all. */
    int64_t groups = j->causal ? S : 1;
    for (int64_t i = 0; i < groups && st == BQ_OK; i++) {
        int64_t Ki = j->causal ? P + i + 1 : T, rows = j->causal ? 1 : S;
        size_t row = bq_format_bytes(&f->pv_weight, Ki);
        for (int64_t d = 0; d < D; d++) {
            if (is_fp32(&f->pv_weight)) memcpy(vq + (size_t)d * row, vt + d * T, (size_t)Ki * sizeof(float));
            else bq_quantize(&f->pv_weight, vt + d * T, Ki, vq + (size_t)d * row);
        }
        st = bq_qmatmul_pair(j->isa, NULL, j->pv, scores + i * T, T, vq, NULL, 0, o + i * HD, HD, rows, D, Ki);
    }
    return st;
}

static void attend_part_q(void *ctx, int64_t i)
{
    qattn_job *j = ctx;
    float *scratch = j->scratch + i * bq_attention_scratch(j->S, j->P, j->D);
    unsigned char *mem = aligned_alloc(64, j->part_bytes);
    if (!mem) {
        j->status[i] = BQ_ERR_NOMEM;
        return;
    }
    int64_t end = (i + 1) * j->per < j->B * j->H ? (i + 1) * j->per : j->B * j->H;
    bq_status st = BQ_OK;
    for (int64_t bh = i * j->per; bh < end && st == BQ_OK; bh++) st = attend_head_q(j, bh / j->H, bh % j->H, scratch, mem);
    j->status[i] = st;
    free(mem);
}

static int all_fp32(const bq_attn_formats *f)
{
    return !f || (is_fp32(&f->qk_input) && is_fp32(&f->qk_weight) && is_fp32(&f->pv_input) && is_fp32(&f->pv_weight));
}

bq_status bq_attention_cached_q_f32(bq_isa isa, bq_pool *pool, const bq_attn_formats *fmt, const float *q,
                                    const float *k, const float *v, int64_t ld_qkv, const int64_t *mask, int causal,
                                    float scale, float *kcache, float *vcache, int64_t cap, float *out, int64_t B,
                                    int64_t S, int64_t P, int64_t H, int64_t D, float *scratch)
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
    *j = (qattn_job){isa, fmt, q, k, v, mask, kcache, vcache, out, scratch, ld_qkv, cap, B, S, P, H, D, per, scale,
                     causal, bq_format_bytes(&fmt->qk_weight, D), bq_format_bytes(&fmt->pv_weight, T), 0, NULL, NULL,
                     {BQ_OK}};
    j->part_bytes = ((j->kq_row * (size_t)T + 63) & ~(size_t)63) + (size_t)((D * T + 15) & ~(int64_t)15) * sizeof(float) +
                    ((j->vq_row * (size_t)D + 127) & ~(size_t)63);   /* aligned_alloc: a multiple of 64 */
    int64_t n = (pairs + per - 1) / per;
    bq_qpair *qk = NULL, *pv = NULL;
    bq_status st = BQ_OK;
    if (!is_fp32(&fmt->qk_input) || !is_fp32(&fmt->qk_weight)) st = bq_qpair_create(&fmt->qk_input, &fmt->qk_weight, &qk);
    if (st == BQ_OK && (!is_fp32(&fmt->pv_input) || !is_fp32(&fmt->pv_weight)))
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
    return bq_attention_cached_q_f32(isa, pool, fmt, q, k, v, ld_qkv, mask, causal, scale, present_k, present_v, T,
                                     out, B, S, P, H, D, scratch);
}
