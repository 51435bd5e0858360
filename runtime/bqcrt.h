/* bqcrt.h — libbqcrt, the bqc runtime: the public API generated code and applications use.
 *
 * The runtime is a library the caller controls: caller-supplied memory, status codes, no
 * globals (a thread pool is an object the caller creates). Kernels here are also what bqc's
 * reference interpreter calls, so interpreter and generated code compute the same bits.
 *
 * fp32 numerics contract (every ISA path gives identical bits):
 *   matmul     C[m,n] = acc after acc = fmaf(A[m,k], B[k,n], acc) for k = 0..K-1 from 0.0f,
 *              then acc + bias[n] (if any), then relu(acc) = acc < 0 ? 0 : acc (if relu; NaN
 *              and -0 pass through, as max(0, x) in SIMD does). Vectorised across n only.
 *   layernorm  mean = (Σ_i x_i, increasing i) / n; var = (Σ_i d_i·d_i, increasing i) / n with
 *              d_i = x_i - mean (products rounded, then added: no fma); y_i = d_i / sqrtf(var +
 *              eps) * gamma_i + beta_i (each step rounded) — what the decomposed ONNX graph
 *              ReduceMean/Sub/Pow(2)/ReduceMean/Add/Sqrt/Div/Mul/Add computes.
 *   softmax    m = max_j x_j; e_j = expf(x_j - m); s = Σ_j e_j (increasing j); y_j = e_j / s.
 */
#ifndef BQCRT_H
#define BQCRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum bq_status {
    BQ_OK = 0,
    BQ_ERR_ARG,        /* invalid argument (NULL, size out of range) */
    BQ_ERR_NOMEM,      /* an allocation failed */
    BQ_ERR_IO,         /* a file could not be opened, mapped or read */
    BQ_ERR_FORMAT,     /* a file's contents do not match what the model expects */
    BQ_ERR_CAPACITY,   /* a sequence longer than the state was sized for */
} bq_status;

const char *bq_status_str(bq_status s);

/* ---- CPU features and kernel paths ---- */
typedef enum bq_isa { BQ_ISA_PORTABLE = 0, BQ_ISA_AVX2 = 1, BQ_ISA_AVX512 = 2 } bq_isa;
/* The best path this CPU supports (AVX2 needs AVX2+FMA, AVX-512 needs F/BW/VL/VNNI, each
 * with the OS saving the registers), capped by the environment variable BQC_ISA
 * ("portable", "avx2", "avx512") so tests can force a slower path. */
bq_isa bq_isa_detect(void);
const char *bq_isa_name(bq_isa isa);

/* ---- fp32 kernels ---- */

/* C[M,N] = A[M,K] · B (+ bias) (ReLU). A rows are lda apart; B is [K,N] (ldb between rows)
 * or, with trans_b, [N,K] (ldb between the rows of N); C rows are ldc apart. `isa` must be
 * what bq_isa_detect() returned, or a lower path (it is not re-checked per call). Uses a small
 * malloc'd packing buffer (and a slower unpacked loop with the same bits if that allocation
 * fails). */
void bq_matmul_f32(bq_isa isa, const float *A, int64_t lda, const float *B, int64_t ldb, int trans_b,
                   const float *bias, int relu, float *C, int64_t ldc, int64_t M, int64_t N, int64_t K);

/* y[r, :] = layernorm(x[r, :]) over rows of n elements; gamma/beta may be NULL (that multiply
 * or add is skipped). y may equal x. */
void bq_layernorm_f32(const float *x, const float *gamma, const float *beta, float eps, float *y,
                      int64_t rows, int64_t n);

/* In place, over rows of n elements. */
void bq_softmax_f32(float *x, int64_t rows, int64_t n);

/* Multi-head causal attention, the semantics of bqc.Attention (docs/ir.md):
 *   q, k, v   [B, S, H*D] (rows of stride ld_qkv), past_k/past_v [B, H, P, D] or NULL (P = 0),
 *   mask      [B, P+S] key mask (non-zero: keep) or NULL; causal: key j > P+i masked,
 *   present_k/present_v [B, H, P+S, D] receive concat(past, k/v) (required: they hold K/V),
 *   out       [B, S, H*D] (rows of H*D),
 *   scratch   bq_attention_scratch(S, P, D) floats.
 * Scores: qs = fl(q·scale); s_j = Σ_d qs_d·K_jd (fmaf, increasing d, from 0: the matmul
 * contract); masked s_j = -FLT_MAX; softmax as above; out_d = Σ_j p_j·V_jd (fmaf, increasing
 * j, from 0). A fully masked row therefore averages V uniformly over all P+S keys, exactly
 * what the exported graphs compute. */
void bq_attention_f32(bq_isa isa, const float *q, const float *k, const float *v, int64_t ld_qkv,
                      const float *past_k, const float *past_v, const int64_t *mask, int causal,
                      float scale, float *present_k, float *present_v, float *out,
                      int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch);
/* Scratch floats bq_attention_f32 needs: S·D scaled queries and S·(P+S) scores. */
int64_t bq_attention_scratch(int64_t S, int64_t P, int64_t D);

#ifdef __cplusplus
}
#endif
#endif
