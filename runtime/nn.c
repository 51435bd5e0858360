/* nn.c — fp32 LayerNorm, softmax and fused multi-head attention.
 *
 * These follow the numerics contract in bqcrt.h literally: sums run sequentially in increasing
 * index order, each step rounds to float, and attention is built from the matmul and softmax
 * kernels, so a fused bqc.Attention gives the same bits as the MatMul/Add/Max/Softmax/MatMul
 * graph it replaces. None of this is vectorised across the summed index, on purpose; these
 * kernels are a small share of a transformer's time next to the matmuls. Attention works on a
 * KV cache of any capacity: the cache-less bq_attention_f32 copies the past into `present`
 * and runs the cached kernel on it, so the two cannot drift apart; threads split (batch,
 * head) pairs, each with its own scratch slot, and never a sum.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "bqcrt_int.h"

void bq_layernorm_f32(const float *x, const float *gamma, const float *beta, float eps, float *y,
                      int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++, x += n, y += n) {
        float s = 0.0f;
        for (int64_t i = 0; i < n; i++) s += x[i];
        float mean = s / (float)n;
        float v = 0.0f;
        for (int64_t i = 0; i < n; i++) {
            float d = x[i] - mean;
            float dd = d * d;
            v += dd;
        }
        float den = sqrtf(v / (float)n + eps);
        for (int64_t i = 0; i < n; i++) {
            float t = (x[i] - mean) / den;
            if (gamma) t = t * gamma[i];
            if (beta) t = t + beta[i];
            y[i] = t;
        }
    }
}

void bq_softmax_f32(float *x, int64_t rows, int64_t n)
{
    for (int64_t r = 0; r < rows; r++, x += n) {
        if (n <= 0) continue;
        float m = x[0];
        for (int64_t j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
        float s = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            x[j] = expf(x[j] - m);
            s += x[j];
        }
        for (int64_t j = 0; j < n; j++) x[j] = x[j] / s;
    }
}

int64_t bq_attention_scratch(int64_t S, int64_t P, int64_t D) { return S * D + S * (P + S); }

int64_t bq_attention_scratch_threads(int64_t S, int64_t P, int64_t D, int n_threads)
{
    return (n_threads > 1 ? n_threads : 1) * bq_attention_scratch(S, P, D);
}

typedef struct attn_job {
    bq_isa isa;
    const float *q, *k, *v;
    const int64_t *mask;
    float *kcache, *vcache, *out, *scratch;
    int64_t ld_qkv, cap, B, S, P, H, D;
    int64_t per;   /* (batch, head) pairs per pool index */
    float scale;
    int causal;
} attn_job;

void bq_attn_append(const float *q, const float *k, const float *v, int64_t ld, float scale, int64_t b, int64_t h,
                    int64_t S, int64_t P, int64_t D, float *K, float *V, float *qs)
{
    for (int64_t s = 0; s < S; s++) {
        memcpy(K + (P + s) * D, k + (b * S + s) * ld + h * D, (size_t)D * sizeof(float));
        memcpy(V + (P + s) * D, v + (b * S + s) * ld + h * D, (size_t)D * sizeof(float));
    }
    for (int64_t i = 0; i < S; i++)
        for (int64_t d = 0; d < D; d++) qs[i * D + d] = q[(b * S + i) * ld + h * D + d] * scale;
}

void bq_attn_mask(float *scores, const int64_t *mrow, int causal, int64_t S, int64_t P)
{
    const int64_t T = P + S;
    for (int64_t i = 0; i < S; i++) {
        float *row = scores + i * T;
        for (int64_t t = 0; t < T; t++)
            if ((mrow && mrow[t] == 0) || (causal && t > P + i)) row[t] = -FLT_MAX;
    }
}

/* One (batch, head): append the new keys and values to the cache, then attend over P+S. */
static void attend_head(const attn_job *j, int64_t b, int64_t h, float *scratch)
{
    const int64_t S = j->S, P = j->P, D = j->D, T = P + S, HD = j->H * D;
    float *K = j->kcache + (b * j->H + h) * j->cap * D, *V = j->vcache + (b * j->H + h) * j->cap * D;
    float *qs = scratch, *scores = scratch + S * D;
    bq_attn_append(j->q, j->k, j->v, j->ld_qkv, j->scale, b, h, S, P, D, K, V, qs);
    bq_matmul_f32(j->isa, NULL, qs, D, K, D, 1, NULL, 0, scores, T, S, T, D);
    bq_attn_mask(scores, j->mask ? j->mask + b * T : NULL, j->causal, S, P);
    bq_softmax_f32(scores, S, T);
    bq_matmul_f32(j->isa, NULL, scores, T, V, D, 0, NULL, 0, j->out + b * S * HD + h * D, HD, S, D, T);
}

/* Index i owns a contiguous run of (batch, head) pairs and scratch slot i (i < threads). */
static void attend_part(void *ctx, int64_t i)
{
    const attn_job *j = ctx;
    float *scratch = j->scratch + i * bq_attention_scratch(j->S, j->P, j->D);
    int64_t end = (i + 1) * j->per < j->B * j->H ? (i + 1) * j->per : j->B * j->H;
    for (int64_t bh = i * j->per; bh < end; bh++) attend_head(j, bh / j->H, bh % j->H, scratch);
}

void bq_attention_cached_f32(bq_isa isa, bq_pool *pool, const float *q, const float *k, const float *v,
                             int64_t ld_qkv, const int64_t *mask, int causal, float scale, float *kcache,
                             float *vcache, int64_t cap, float *out, int64_t B, int64_t S, int64_t P,
                             int64_t H, int64_t D, float *scratch)
{
    int64_t pairs = B * H;
    if (B <= 0 || H <= 0 || S <= 0) return;
    int64_t parts = bq_pool_threads(pool) < pairs ? bq_pool_threads(pool) : pairs;
    int64_t per = (pairs + parts - 1) / parts;
    attn_job j = {isa, q, k, v, mask, kcache, vcache, out, scratch, ld_qkv, cap, B, S, P, H, D, per, scale, causal};
    bq_pool_run(pool, attend_part, &j, (pairs + per - 1) / per);
}

void bq_attention_f32(bq_isa isa, bq_pool *pool, const float *q, const float *k, const float *v,
                      int64_t ld_qkv, const float *past_k, const float *past_v, const int64_t *mask,
                      int causal, float scale, float *present_k, float *present_v, float *out,
                      int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch)
{
    const int64_t T = P + S;
    for (int64_t bh = 0; P > 0 && bh < B * H; bh++) {
        memcpy(present_k + bh * T * D, past_k + bh * P * D, (size_t)(P * D) * sizeof(float));
        memcpy(present_v + bh * T * D, past_v + bh * P * D, (size_t)(P * D) * sizeof(float));
    }
    bq_attention_cached_f32(isa, pool, q, k, v, ld_qkv, mask, causal, scale, present_k, present_v, T, out, B, S, P,
                            H, D, scratch);
}
