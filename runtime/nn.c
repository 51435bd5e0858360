/* nn.c — fp32 LayerNorm, softmax and fused multi-head attention.
 *
 * These follow the numerics contract in bqcrt.h literally: sums run sequentially in increasing
 * index order, each step rounds to float, and attention is built from the matmul and softmax
 * kernels, so a fused bqc.Attention gives the same bits as the MatMul/Add/Max/Softmax/MatMul
 * graph it replaces. None of this is vectorised across the summed index, on purpose; these
 * kernels are a small share of a transformer's time next to the matmuls.
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

/* present[b, h] = concat(past[b, h], x[b, :, h*D:(h+1)*D]) along the sequence. */
static void gather_kv(const float *past, const float *x, int64_t ld, float *dst, int64_t b,
                      int64_t h, int64_t S, int64_t P, int64_t H, int64_t D)
{
    if (P) memcpy(dst, past + (b * H + h) * P * D, (size_t)(P * D) * sizeof(float));
    for (int64_t s = 0; s < S; s++)
        memcpy(dst + (P + s) * D, x + (b * S + s) * ld + h * D, (size_t)D * sizeof(float));
}

void bq_attention_f32(bq_isa isa, const float *q, const float *k, const float *v, int64_t ld_qkv,
                      const float *past_k, const float *past_v, const int64_t *mask, int causal,
                      float scale, float *present_k, float *present_v, float *out,
                      int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch)
{
    const int64_t T = P + S, HD = H * D;
    float *qs = scratch, *scores = scratch + S * D;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            float *K = present_k + (b * H + h) * T * D, *V = present_v + (b * H + h) * T * D;
            gather_kv(past_k, k, ld_qkv, K, b, h, S, P, H, D);
            gather_kv(past_v, v, ld_qkv, V, b, h, S, P, H, D);
            for (int64_t i = 0; i < S; i++)
                for (int64_t d = 0; d < D; d++) qs[i * D + d] = q[(b * S + i) * ld_qkv + h * D + d] * scale;
            bq_matmul_f32(isa, qs, D, K, D, 1, NULL, 0, scores, T, S, T, D);
            for (int64_t i = 0; i < S; i++) {
                float *row = scores + i * T;
                for (int64_t j = 0; j < T; j++)
                    if ((mask && mask[b * T + j] == 0) || (causal && j > P + i)) row[j] = -FLT_MAX;
            }
            bq_softmax_f32(scores, S, T);
            bq_matmul_f32(isa, scores, T, V, D, 0, NULL, 0, out + b * S * HD + h * D, HD, S, D, T);
        }
}
