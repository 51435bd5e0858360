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

/* A tensor at an API boundary (generated <name>_run): caller memory, ONNX element type
 * codes (TensorProto.DataType: 1 float, 7 int64, 6 int32, 9 bool, ...), row-major. For
 * inputs `bytes` is the data size; for outputs it is the capacity, and the callee fills in
 * dtype, rank and dims. */
typedef struct bq_tensor {
    void *data;
    size_t bytes;
    int32_t dtype;
    int32_t rank;
    int64_t dims[8];
} bq_tensor;

/* ---- CPU features and kernel paths ---- */
typedef enum bq_isa { BQ_ISA_PORTABLE = 0, BQ_ISA_AVX2 = 1, BQ_ISA_AVX512 = 2 } bq_isa;
/* The best path this CPU supports (AVX2 needs AVX2+FMA, AVX-512 needs F/BW/VL/VNNI, each
 * with the OS saving the registers), capped by the environment variable BQC_ISA
 * ("portable", "avx2", "avx512") so tests can force a slower path. */
bq_isa bq_isa_detect(void);
const char *bq_isa_name(bq_isa isa);

/* ---- thread pool (runtime/pool.c) ----
 * A persistent team of n_threads - 1 workers plus the calling thread. bq_pool_run runs
 * fn(ctx, i) once for every i in [0, n), in no particular order or thread, and returns when
 * all calls have returned; a NULL pool (or one of 1 thread) runs them in order on the caller.
 * One caller at a time: a call made while the team is busy (from inside fn, or from another
 * thread) runs serially on its caller. Results must not depend on which thread ran which i
 * (the kernels split N or (batch, head), never a sum), so outputs are bit-identical for every
 * thread count. */
typedef struct bq_pool bq_pool;
/* n_threads <= 1: no worker threads. BQ_ERR_ARG above 256 threads; BQ_ERR_NOMEM if a thread
 * or the pool cannot be created. */
bq_status bq_pool_create(int n_threads, bq_pool **out);
void bq_pool_destroy(bq_pool *p);                 /* NULL is a no-op */
int bq_pool_threads(const bq_pool *p);            /* workers + caller; 1 for NULL */
void bq_pool_run(bq_pool *p, void (*fn)(void *ctx, int64_t i), void *ctx, int64_t n);

/* ---- fp32 kernels ---- */

/* C[M,N] = A[M,K] · B (+ bias) (ReLU). A rows are lda apart; B is [K,N] (ldb between rows)
 * or, with trans_b, [N,K] (ldb between the rows of N); C rows are ldc apart. `isa` must be
 * what bq_isa_detect() returned, or a lower path (it is not re-checked per call). The pool
 * (may be NULL) splits N. Uses a small malloc'd packing buffer per column range (and a slower
 * unpacked loop with the same bits if that allocation fails). */
void bq_matmul_f32(bq_isa isa, bq_pool *pool, const float *A, int64_t lda, const float *B, int64_t ldb,
                   int trans_b, const float *bias, int relu, float *C, int64_t ldc, int64_t M, int64_t N,
                   int64_t K);

/* ---- pre-packed fp32 matmul (runtime/matmul_packed*.c) ----
 * Generated code packs each weight once, at compile time, into panels of BQ_F32_PANEL
 * columns: packed[p][k][j] = B(k, p·BQ_F32_PANEL + j), zero past N in the last panel, so a
 * panel is one contiguous K x BQ_F32_PANEL run the kernels stream. Same numerics contract as
 * bq_matmul_f32: the results are bit-identical to bq_matmul_f32 on the unpacked B, on every
 * ISA path and thread count. */
#define BQ_F32_PANEL 64
/* Bytes of the packed form: ceil(N / 64) · K · 64 · sizeof(float). */
size_t bq_pack_f32_bytes(int64_t N, int64_t K);
/* B is [K,N] with rows ldb apart, or with trans_b [N,K] with rows ldb apart. */
void bq_pack_f32(const float *B, int64_t ldb, int trans_b, int64_t N, int64_t K, float *packed);
/* C[M,N] = A[M,K] · B (+ bias) (ReLU) with B packed by bq_pack_f32; the pool splits panels. */
void bq_matmul_f32_packed(bq_isa isa, bq_pool *pool, const float *A, int64_t lda, const float *Bp,
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
void bq_attention_f32(bq_isa isa, bq_pool *pool, const float *q, const float *k, const float *v,
                      int64_t ld_qkv, const float *past_k, const float *past_v, const int64_t *mask,
                      int causal, float scale, float *present_k, float *present_v, float *out,
                      int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch);
/* Scratch floats bq_attention_f32 needs with a NULL or 1-thread pool: S·D scaled queries and
 * S·(P+S) scores. */
int64_t bq_attention_scratch(int64_t S, int64_t P, int64_t D);
/* Scratch floats with a pool of n_threads (bq_pool_threads): one bq_attention_scratch per
 * thread. Both attention functions need this much when given such a pool. */
int64_t bq_attention_scratch_threads(int64_t S, int64_t P, int64_t D, int n_threads);

/* ---- attention over a KV cache ----
 * kcache/vcache are [B, H, cap, D]; positions [0, P) hold the past. The new k and v rows (of
 * [B, S, H*D], stride ld_qkv) are written to positions [P, P+S) (P + S <= cap is the caller's
 * check), then attention runs over the P+S cached keys exactly per the bq_attention_f32
 * contract (mask is [B, P+S] or NULL = keep all). bq_attention_f32 is this function on a
 * cache of capacity P+S, so the two give identical bits. The pool splits (batch, head);
 * scratch holds bq_attention_scratch_threads(S, P, D, bq_pool_threads(pool)) floats. */
void bq_attention_cached_f32(bq_isa isa, bq_pool *pool, const float *q, const float *k, const float *v,
                             int64_t ld_qkv, const int64_t *mask, int causal, float scale, float *kcache,
                             float *vcache, int64_t cap, float *out, int64_t B, int64_t S, int64_t P,
                             int64_t H, int64_t D, float *scratch);

/* ---- weights file (runtime/weights.c) ----
 * The file generated code maps: a 64-byte header, then the tensors at 64-byte aligned
 * offsets the compiler chose. Header (little-endian): char magic[8] = "BQCWGT01"; uint64
 * total_bytes (the file size); uint64 layout_hash (of the compiler's tensor layout); uint32
 * header_bytes = 64; zero bytes up to 64 (reserved, not checked). */
#define BQ_WEIGHTS_HEADER_BYTES 64
typedef struct bq_weights {
    const unsigned char *base;   /* the mapping (read-only); tensors at base + offset */
    size_t size;                 /* bytes mapped = total_bytes */
} bq_weights;
/* Maps path read-only and checks it against what the generated code expects: BQ_ERR_IO if it
 * cannot be opened or mapped, BQ_ERR_FORMAT if the magic, the header size, the file size or
 * the layout hash differ. On failure *w is zeroed. */
bq_status bq_weights_open(const char *path, uint64_t layout_hash, uint64_t total_bytes, bq_weights *w);
void bq_weights_close(bq_weights *w);             /* unmaps; a zeroed *w is a no-op */
/* The header bq_weights_open reads (the compiler writes it); BQ_ERR_ARG if total_bytes < 64. */
bq_status bq_weights_write_header(unsigned char out[64], uint64_t total_bytes, uint64_t layout_hash);

/* ---- number formats (runtime/formats.def, runtime/formats*.c; docs/formats.md) ----
 * The values every format produces are fixed by ../shared/formats.md (bqc's numeric
 * contract); the storage layout is bqc's own and documented in docs/formats.md. */

typedef enum bq_family {
    BQ_FAM_FP32 = 0, BQ_FAM_FP16, BQ_FAM_BF16,   /* plain types: block 1, no shared field */
    BQ_FAM_BFP,       /* block floating point: sign + (w-1) magnitude bits, shared 8-bit exponent */
    BQ_FAM_BM,        /* block minifloat ExMy, shared 8-bit exponent offset */
    BQ_FAM_BL,        /* block log: sign + (w-1)-bit exponent code, shared exponent */
    BQ_FAM_MXINT,     /* OCP MX, INT8 elements (block 32, E8M0 scale) */
    BQ_FAM_MXFP,      /* OCP MX, FP8/FP6/FP4 elements (block 32, E8M0 scale) */
    BQ_FAM_INT,       /* symmetric integer per block, fp16 scale (llama.cpp Q8_0/Q4_0 family) */
    BQ_FAM_NF4,       /* 4-bit NormalFloat, fp32 absmax per block */
    BQ_FAM__COUNT
} bq_family;

typedef struct bq_format {
    uint8_t family;    /* bq_family */
    uint8_t width;     /* bits per element code, sign included (fp32: 32) */
    uint8_t ebits;     /* element exponent bits: bm (x of ExMy) and mxfp; 0 otherwise */
    uint16_t block;    /* elements per block along K; 1 for plain types; 0 = "auto" and
                        * BQ_BLOCK_ROW = "row" (plans, resolved before anything runs) */
} bq_format;

/* Blocks a plan leaves open: "auto" (the block-size pass chooses) and "row" (one block per
 * row of K: apply-plan makes the block K; int only, formats.def rmax). Neither is a block a
 * kernel takes: bq_format_bpe is NaN and bq_format_bytes 0 until they are resolved. */
#define BQ_BLOCK_AUTO 0
#define BQ_BLOCK_ROW 0xFFFF
/* The `allow` flags of bq_format_parse / bq_format_make: which open blocks are accepted. */
#define BQ_ALLOW_AUTO 1
#define BQ_ALLOW_ROW 2

/* "bfp6/16", "bm8e4/16", "bl5/16", "mxint8", "mxfp8e4m3", "mxfp4", "int4/32", "nf4/64",
 * "fp16", "bf16", "fp32" (formats.md names). On failure `why` says what is wrong in one
 * phrase ("unknown format 'bfq6'", "bfp width 9 is outside 3..8"). "/auto" as the block is
 * accepted when allow & BQ_ALLOW_AUTO (block = 0), "/row" when allow & BQ_ALLOW_ROW (block =
 * BQ_BLOCK_ROW; int only). Returns BQ_OK, or BQ_ERR_ARG with `why` filled. A missing block
 * takes the family's default (bfp/bm/bl 16, int 32, nf4 64). */
int bq_format_parse(const char *s, size_t n, int allow, bq_format *f, char *why, size_t whylen);
/* The canonical name (round-trips through bq_format_parse); returns snprintf's count, or -1
 * for an invalid format. */
int bq_format_name(const bq_format *f, char *buf, size_t size);
/* Builds a format from the fields of a plan's object form {"format": family, "width", ...}:
 * family is "bfp", "bm", "bl", "mxint", "mxfp", "int", "nf4", "fp16", "bf16", "fp32";
 * width/ebits/block < 0 mean "not given" (defaults per family). Same checks as parse. */
int bq_format_make(const char *family, int width, int ebits, int block, int allow, bq_format *f,
                   char *why, size_t whylen);
double bq_format_bpe(const bq_format *f);                 /* bits per element, shared bits / B included */
size_t bq_format_bytes(const bq_format *f, int64_t n);    /* storage of n elements along K */
/* Reference quantisation of n consecutive elements along K (blocks of f->block, the last
 * one shorter): dst receives bq_format_bytes(f, n) bytes. */
void bq_quantize(const bq_format *f, const float *x, int64_t n, void *dst);
void bq_dequantize(const bq_format *f, const void *src, int64_t n, float *y);
/* Reference dot product of two quantised runs of n elements (same block size, or one of
 * them a plain type): exact integer block sums (or fp32 in increasing K for nf4 and plain
 * types), (float)block_sum × (scale_a × scale_w), accumulated in fp32 in increasing K from 0
 * — the numerics contract every fast kernel must reproduce bit for bit. Both plain: one
 * fmaf chain over the whole run (bq_matmul_f32's contract). docs/formats.md has the scales. */
float bq_dot_ref(const bq_format *fa, const void *a, const bq_format *fw, const void *w, int64_t n);
/* The valid name forms, for error messages ("bfp<w>/<B> (widths 3..8), ..."); returns the
 * length written (truncated to size). */
size_t bq_format_forms(char *buf, size_t size);
/* Block b of a quantised run of n elements, as stored (bqc quant --codes, tests). Plain
 * types have blocks of one element. */
typedef struct bq_block_info {
    int64_t len;              /* elements in this block */
    uint32_t shared;          /* the shared field's bits: exponent byte (E+127 / E8M0), fp16 d,
                               * fp32 absmax; 0 for plain types */
    int shared_bits;          /* 8, 16, 32, or 0 */
    const char *shared_name;  /* "E", "S", "d", "absmax", "" */
    double shared_value;      /* E or S, d, absmax (NaN: a non-finite block) */
    float scale;              /* the block scale bq_dot_ref multiplies (NaN: non-finite block) */
} bq_block_info;
/* Fills *info and codes[0..len) (element codes; sign-extended for bfp, int and mxint); returns
 * len, or 0 if the format is invalid or b is past the end. */
int64_t bq_block_fields(const bq_format *f, const void *src, int64_t n, int64_t b, bq_block_info *info,
                        int32_t *codes);

/* ---- quantised matmul and attention (runtime/qmatmul*.c, runtime/nn_q.c) ----
 * Both operands of a quantised product are runs along K in a format (blocks along K, the
 * layout of docs/formats.md); the product is bq_dot_ref's contract, bit for bit, on every ISA
 * path and thread count:
 *   C[m,n] = bq_dot_ref(A_fmt, quantize(A_fmt, A[m, 0..K)), W_fmt, W[n], K), then + bias[n]
 *            (if any), then relu (if relu: y < 0 ? 0 : y, NaN and -0 kept).
 * Unlike bq_matmul_f32 that includes fp32 × fp32: one fmaf chain, then 0.0f + (chain · 1.0f),
 * which differs from bq_matmul_f32 only in turning a -0 into +0. A NaN result is NaN on every
 * path; its sign and payload are not part of the contract. A is fp32 ([M, K], rows lda
 * apart), quantised row by row on the fly with bq_quantize(A_fmt). Wq holds N rows of
 * bq_format_bytes(W_fmt, K) bytes back to back (W_fmt fp32: the f32 matrix [N, K]); C rows are
 * ldc apart. The formats must have the same block, or one must be plain (fp32/fp16/bf16).
 * The pool splits N. Scratch is malloc'd per call (activation rows once decoded, one decoded
 * weight panel per thread). Returns BQ_OK, BQ_ERR_ARG (an invalid format, blocks that differ,
 * a negative extent) or BQ_ERR_NOMEM. */
bq_status bq_qmatmul(bq_isa isa, bq_pool *pool, const bq_format *A_fmt, const float *A, int64_t lda,
                     const bq_format *W_fmt, const void *Wq, const float *bias, int relu, float *C, int64_t ldc,
                     int64_t M, int64_t N, int64_t K);
/* The N weight rows bq_qmatmul reads, from an f32 weight: row n is B[0..K, n] (B [K, N], rows
 * ldb apart) or, with trans_b, B[n, 0..K) (B [N, K]), quantised with bq_quantize(f) into
 * dst + n · bq_format_bytes(f, K). Non-finite weights are the caller's check (they quantise to
 * NaN blocks). BQ_ERR_ARG for an invalid format, BQ_ERR_NOMEM (a column buffer). */
bq_status bq_qpack_weights(const bq_format *f, const float *B, int64_t ldb, int trans_b, int64_t N, int64_t K,
                           void *dst);

/* ---- fast quantised matmul kernels (runtime/qkern*.c, runtime/qkern.h; docs/kernels.md) ----
 * The pairs of formats plans use for sub-8-bit inference have kernels on weights repacked once
 * (bq_qk_pack) into groups of 16 outputs: integer block sums with vpdpbusd (AVX-512 VNNI) for
 * weights whose elements fit int8 (bfp3..8, int2..8, mxint8, mxfp4, ...) against activations
 * whose elements do (bfp, int, mxint8, mxfp4, ...), and fp32 block sums for nf4 weights or for
 * plain/nf4 activations against 4-bit weights. The contract is bq_qmatmul's, bit for bit, on
 * every ISA path (BQC_ISA=portable forces the portable one) and thread count; the pool splits
 * N. Pairs without a kernel (kind 0) stay on bq_qmatmul. */
typedef struct bq_qk_spec {
    uint8_t kind;      /* 0: no kernel (bq_qmatmul); 1: integer (vpdpbusd); 2: float (nf4 / plain) */
    uint8_t cls;       /* weight storage: 4 nibbles, 6 nibbles + 2-bit planes, 8 bytes */
    uint8_t lut;       /* nibbles are codes mapped through a 16-entry table (mxfp4, nf4, ...) */
    uint8_t skind;     /* bytes of a weight scale: 1 (a power of two), 2 (fp16 d), 4 (fp32 absmax) */
    uint8_t p2;        /* integer sums are scaled by 2^(emin_a + emin_w) != 1 (MX elements) */
    uint16_t block;    /* B */
} bq_qk_spec;
/* Which kernel serves A_fmt x W_fmt (kind 0: none; invalid formats and blocks that differ too). */
bq_qk_spec bq_qk_spec_of(const bq_format *A_fmt, const bq_format *W_fmt);
/* Bytes of W_fmt's packed form for N outputs of K, or 0 if W_fmt has no packed form. */
size_t bq_qk_packed_bytes(const bq_format *W_fmt, int64_t N, int64_t K);
/* Repacks N weight rows (bq_qmatmul's layout: N rows of bq_format_bytes(W_fmt, K) bytes) into
 * dst (bq_qk_packed_bytes, 64-byte aligned). BQ_ERR_ARG without a packed form; BQ_ERR_FORMAT
 * when a block's scale is outside what the kernels decode (a non-zero block whose scale is
 * subnormal in fp32) — such weights stay on bq_qmatmul. */
bq_status bq_qk_pack(const bq_format *W_fmt, const void *Wq, int64_t N, int64_t K, void *dst);
/* bq_qmatmul's contract on a packed weight (Wp from bq_qk_pack for N, K); the kernel is the
 * runtime's specialisation for the pair, or its generic one. BQ_ERR_ARG for a pair without a
 * kernel or negative extents, BQ_ERR_FORMAT if Wp is not a packed W_fmt [N, K], BQ_ERR_NOMEM
 * (activation buffers are malloc'd per call). */
bq_status bq_qk_matmul(bq_isa isa, bq_pool *pool, const bq_format *A_fmt, const float *A, int64_t lda,
                       const bq_format *W_fmt, const void *Wp, const float *bias, int relu, float *C, int64_t ldc,
                       int64_t M, int64_t N, int64_t K);
/* The same with the caller's kernels (generated code instantiates qkern.h's templates with its
 * shapes folded, BQ_QK_DEFINE): avx512 runs when isa is BQ_ISA_AVX512 and it is not NULL,
 * portable otherwise. */
typedef struct bq_qk_task bq_qk_task;
typedef void (*bq_qk_fn)(const bq_qk_task *t);
bq_status bq_qk_matmul_spec(bq_isa isa, bq_pool *pool, const bq_format *A_fmt, const float *A, int64_t lda,
                            const bq_format *W_fmt, const void *Wp, const float *bias, int relu, float *C,
                            int64_t ldc, int64_t M, int64_t N, int64_t K, bq_qk_fn avx512, bq_qk_fn portable);

/* The number formats of bqc.Attention's two products (docs/ir.md): Q·Kᵀ per head takes the
 * scaled query rows in qk_input along D and each key row in qk_weight along D; P·V takes the
 * probability rows in pv_input along the key axis and each column d of V (the values of
 * consecutive keys) in pv_weight along the key axis. Each product is the bq_qmatmul contract;
 * a product whose two formats are both fp32 is bq_attention_f32's fp32 matmul unchanged. */
typedef struct bq_attn_formats {
    bq_format qk_input, qk_weight, pv_input, pv_weight;
} bq_attn_formats;
/* bq_attention_f32 / bq_attention_cached_f32 with formats (NULL, or all four fp32: exactly
 * those functions). Masking, -FLT_MAX and softmax as in the fp32 contract. With a quantised
 * P·V, each query's value columns are quantised over the keys it can see — up to its causal
 * horizon, masked keys' values as zeros — so prefill + decode equals one full forward bit for
 * bit for every format combination. Same scratch as the fp32 functions, plus malloc'd buffers for the quantised
 * keys and values; BQ_ERR_NOMEM if those fail, BQ_ERR_ARG for invalid or incompatible
 * formats, else BQ_OK. */
bq_status bq_attention_q_f32(bq_isa isa, bq_pool *pool, const bq_attn_formats *fmt, const float *q, const float *k,
                             const float *v, int64_t ld_qkv, const float *past_k, const float *past_v,
                             const int64_t *mask, int causal, float scale, float *present_k, float *present_v,
                             float *out, int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch);
/* qcache: NULL, or bq_attention_qcache_bytes(fmt, B, H, cap, D) bytes (64-byte aligned) that
 * keep the cached keys and values quantised from call to call, so a decode step quantises only
 * its own keys (and the value block they fall in) instead of all P + S. It holds keys [0, P)
 * of kcache/vcache as the earlier calls left them: give it to every call on that cache and
 * to no other, and start a sequence with P = 0 (which fills it; no initialisation needed).
 * The results are the same bits with or without it. */
bq_status bq_attention_cached_q_f32(bq_isa isa, bq_pool *pool, const bq_attn_formats *fmt, const float *q,
                                    const float *k, const float *v, int64_t ld_qkv, const int64_t *mask, int causal,
                                    float scale, float *kcache, float *vcache, void *qcache, int64_t cap, float *out,
                                    int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, float *scratch);
/* Bytes of the qcache for B batches of H heads, cap keys of D; 0 when no product of fmt has
 * the int8-row fast path (a qcache would go unused: pass NULL). */
size_t bq_attention_qcache_bytes(const bq_attn_formats *fmt, int64_t B, int64_t H, int64_t cap, int64_t D);

#ifdef __cplusplus
}
#endif
#endif
