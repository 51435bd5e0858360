/* bqcrt_ops.h — op helpers and a table-driven model API, for code generators that do not
 * print C (the LLVM backend, codegen/llvm*.c).
 *
 * The C backend prints small loop nests and the API machinery as C text. A backend that
 * builds machine code itself calls these instead, with constant arguments: the helpers are
 * compiled into the runtime's bitcode too (clang -emit-llvm at bqc build time), linked into
 * the generated module and inlined there, so the optimiser folds the constants — extents,
 * strides, formats — into each call site exactly as a C compiler folds the C backend's text.
 *
 *   bq_nest        a strided loop nest of up to BQ_NEST_MAX levels over up to BQ_NEST_OPS
 *                  operands (operand 0 is written): what the C backend's emit_loop prints;
 *   bq_ew_<OP>_<t> one function per row of bqcrt_ew.h and element type (f32 f64 i64 i32 i16
 *                  i8 u64 u32 u16 u8, bool for the logical rows): y = expr(x[, y]);
 *   bq_copy_<b>, bq_where_<b>, bq_cast_<from>_<to>, bq_gather_<i>, bq_slice_bound,
 *                  bq_cumsum_<t>, bq_matmul_batched_f32, bq_softmax_copy_f32;
 *   bq_gm_*        the model API (open/close/state size/prefill/decode/reset) driven by a
 *                  constant descriptor the generator emits, around its graph functions.
 * Semantics and numerics are the C backend's (docs/codegen.md), bit for bit.
 */
#ifndef BQCRT_OPS_H
#define BQCRT_OPS_H

#include "bqcrt.h"
#include "bqcrt_ew.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- loop nests ---- */

#define BQ_NEST_MAX 8   /* levels (IR_MAX_RANK) */
#define BQ_NEST_OPS 4   /* operands: the output and up to three inputs (Where) */
typedef struct bq_nest {
    int64_t n[BQ_NEST_MAX];                 /* extents, outermost first; unused levels 1 */
    int64_t st[BQ_NEST_OPS][BQ_NEST_MAX];   /* per operand, element stride of each level */
    int64_t off[BQ_NEST_OPS];               /* per operand, element offset of the first */
} bq_nest;

#define BQ_OPS_FLOAT_TYPES(X, ...) X(f32, float, __VA_ARGS__) X(f64, double, __VA_ARGS__)
#define BQ_OPS_INT_TYPES(X, ...)                                                                    \
    X(i64, int64_t, __VA_ARGS__) X(i32, int32_t, __VA_ARGS__) X(i16, int16_t, __VA_ARGS__)          \
    X(i8, int8_t, __VA_ARGS__) X(u64, uint64_t, __VA_ARGS__) X(u32, uint32_t, __VA_ARGS__)          \
    X(u16, uint16_t, __VA_ARGS__) X(u8, uint8_t, __VA_ARGS__)

/* Elementwise: y[i] = expr(a[i]) or expr(a[i], b[i]) over the nest (operands 0, 1, 2), one
 * function per row and type: bq_ew_EXP_f32, bq_ew_ADD_i64, bq_ew_LESS_f64 (bool out), ... */
#define BQ_OPS_DU(t, T, op) void bq_ew_##op##_##t(const bq_nest *L, const bq_ew_attr *at, T *y, const T *a);
#define BQ_OPS_DB(t, T, op, To) \
    void bq_ew_##op##_##t(const bq_nest *L, const bq_ew_attr *at, To *y, const T *a, const T *b);
#define BQ_OPS_DB_SAME(t, T, op) BQ_OPS_DB(t, T, op, T)
#define BQ_OPS_DB_BOOL(t, T, op) BQ_OPS_DB(t, T, op, uint8_t)
#define BQ_OPS_ROW_UF(op, e32, e64) BQ_OPS_FLOAT_TYPES(BQ_OPS_DU, op)
#define BQ_OPS_ROW_UI(op, e) BQ_OPS_INT_TYPES(BQ_OPS_DU, op)
#define BQ_OPS_ROW_BF(op, e) BQ_OPS_FLOAT_TYPES(BQ_OPS_DB_SAME, op)
#define BQ_OPS_ROW_BI(op, e) BQ_OPS_INT_TYPES(BQ_OPS_DB_SAME, op)
#define BQ_OPS_ROW_BC(op, e) BQ_OPS_FLOAT_TYPES(BQ_OPS_DB_BOOL, op) BQ_OPS_INT_TYPES(BQ_OPS_DB_BOOL, op)
#define BQ_OPS_ROW_BB(op, e) BQ_OPS_DB(bool, uint8_t, op, uint8_t)
BQ_EW_UNARY_FLOAT(BQ_OPS_ROW_UF)
BQ_EW_UNARY_INT(BQ_OPS_ROW_UI)
BQ_EW_BINARY_FLOAT(BQ_OPS_ROW_BF)
BQ_EW_BINARY_INT(BQ_OPS_ROW_BI)
BQ_EW_BINARY_CMP(BQ_OPS_ROW_BC)
BQ_EW_BINARY_BOOL(BQ_OPS_ROW_BB)

/* Copies of elements of b bytes (b = 1, 2, 4, 8) over a nest: Expand, Transpose, Slice,
 * Concat, same-type Cast. */
void bq_copy_1(const bq_nest *L, uint8_t *y, const uint8_t *a);
void bq_copy_2(const bq_nest *L, uint16_t *y, const uint16_t *a);
void bq_copy_4(const bq_nest *L, uint32_t *y, const uint32_t *a);
void bq_copy_8(const bq_nest *L, uint64_t *y, const uint64_t *a);
/* y = c ? a : b (c bool). */
void bq_where_1(const bq_nest *L, uint8_t *y, const uint8_t *c, const uint8_t *a, const uint8_t *b);
void bq_where_2(const bq_nest *L, uint16_t *y, const uint8_t *c, const uint16_t *a, const uint16_t *b);
void bq_where_4(const bq_nest *L, uint32_t *y, const uint8_t *c, const uint32_t *a, const uint32_t *b);
void bq_where_8(const bq_nest *L, uint64_t *y, const uint8_t *c, const uint64_t *a, const uint64_t *b);
/* Casts (the C backend's rules): bq_cast_<from>_<to> for integer/bool -> integer (wrapping
 * through uint64_t), integer/bool -> f32/f64 (through double), f32 -> f64, and
 * bq_cast_<from>_bool (x != 0) from every type. */
#define BQ_OPS_DC(f, F, t, T) void bq_cast_##f##_##t(const bq_nest *L, T *y, const F *a);
#define BQ_OPS_DC_TO(t, T, f, F) BQ_OPS_DC(f, F, t, T)
#define BQ_OPS_INT_TYPES_(X, ...)                                                                   \
    X(i64, int64_t, __VA_ARGS__) X(i32, int32_t, __VA_ARGS__) X(i16, int16_t, __VA_ARGS__)          \
    X(i8, int8_t, __VA_ARGS__) X(u64, uint64_t, __VA_ARGS__) X(u32, uint32_t, __VA_ARGS__)          \
    X(u16, uint16_t, __VA_ARGS__) X(u8, uint8_t, __VA_ARGS__)
#define BQ_OPS_DC_FROM_INT(f, F, _) \
    BQ_OPS_INT_TYPES_(BQ_OPS_DC_TO, f, F) BQ_OPS_DC(f, F, f32, float) BQ_OPS_DC(f, F, f64, double)
#define BQ_OPS_DC_BOOL(f, F, _) BQ_OPS_DC(f, F, bool, uint8_t)
BQ_OPS_INT_TYPES(BQ_OPS_DC_FROM_INT, _)
BQ_OPS_DC_FROM_INT(bool, uint8_t, _)
BQ_OPS_INT_TYPES(BQ_OPS_DC_BOOL, _)
BQ_OPS_FLOAT_TYPES(BQ_OPS_DC_BOOL, _)
BQ_OPS_DC_BOOL(bool, uint8_t, _)
BQ_OPS_DC(f32, float, f64, double)

/* Gather along an axis: out[o, j, :] = data[o, idx[j] (+len if < 0), :], rows of
 * inner_bytes; BQ_ERR_ARG for an index out of range. */
bq_status bq_gather_i64(void *out, const void *data, const int64_t *idx, int64_t outer, int64_t ni, int64_t len,
                        int64_t inner_bytes);
bq_status bq_gather_i32(void *out, const void *data, const int32_t *idx, int64_t outer, int64_t ni, int64_t len,
                        int64_t inner_bytes);
/* One axis of a Slice with starts/ends/step clamped like ONNX: *start receives the first
 * index; BQ_ERR_ARG when the resulting extent is not `expect` (what inference derived). */
bq_status bq_slice_bound(int64_t s, int64_t e, int64_t step, int64_t dim, int64_t expect, int64_t *start);
/* CumSum over the middle axis of [outer, len, inner] (reverse, exclusive). */
#define BQ_OPS_DECL_CUMSUM(t, T, _) \
    void bq_cumsum_##t(T *y, const T *x, int64_t outer, int64_t len, int64_t inner, int rev, int ex);
BQ_OPS_FLOAT_TYPES(BQ_OPS_DECL_CUMSUM, _)
BQ_OPS_INT_TYPES(BQ_OPS_DECL_CUMSUM, _)
/* MatMul over `batch` leading matrices (b's stride kn 0: one shared B), bq_matmul_f32 each. */
void bq_matmul_batched_f32(bq_isa isa, bq_pool *pool, const float *a, const float *b, float *c, int64_t batch,
                           int64_t mk, int64_t kn, int64_t mn, int64_t M, int64_t N, int64_t K);
/* y = softmax(x) over rows of n (x copied to y first; y may equal x). */
void bq_softmax_copy_f32(float *y, const float *x, int64_t rows, int64_t n);

/* ---- quantised matmul kernels (ops_qk.c) ----
 * qkern.h's templates with their shape parameters as arguments: a generator defines a
 * bq_qk_fn that calls one with constants and passes it to bq_qk_matmul_spec. The avx512 one
 * exists on x86-64 only and needs AVX-512 F/BW/VL/VNNI at run time. */
void bq_qk_template_portable(const bq_qk_task *t, int kind, int cls, int lut, int skind, int p2, int B, int64_t nb);
void bq_qk_template_avx512(const bq_qk_task *t, int kind, int cls, int lut, int skind, int p2, int B, int64_t nb);

/* ---- the model API from a descriptor ---- */

#define BQ_GM_MAX_REGIONS 16   /* activation regions per graph (the C backend's CG_MAX_REGIONS) */
typedef struct bq_gm bq_gm;

/* Same layout as every generated <name>_config. */
typedef struct bq_gm_config {
    int64_t max_ctx, max_batch;
    int n_threads;
    void *state;
} bq_gm_config;

typedef bq_status (*bq_gm_graph_fn)(bq_gm *m, const int64_t *sym, const void *const *in, void *const *out);
/* Bytes of one unit of each activation region (64·p_r(sym)) for a binding of the symbols. */
typedef void (*bq_gm_units_fn)(const int64_t *sym, int64_t *unit_bytes);

/* One compiled graph. All fields are 8 bytes wide: generators build this as a constant. */
typedef struct bq_gm_graph {
    bq_gm_graph_fn fn;              /* NULL: no such graph (no decoder API) */
    bq_gm_units_fn units;
    int64_t nregions;
    const int64_t *region_units;    /* units each region needs */
    int64_t nsyms;
    const int64_t *sym_batch;       /* per symbol: 1 = sized by max_batch, 0 = by max_ctx */
} bq_gm_graph;

typedef struct bq_gm_desc {
    uint64_t layout_hash, weights_bytes;   /* what the weights file must be */
    bq_gm_graph run, step;                 /* <name>_run; prefill/decode (step.fn NULL: none) */
    int64_t kv_slots, heads, head_dim;     /* KV cache: slots of [heads, max_ctx, head_dim] */
    int64_t attn_width;                    /* K/V temporaries of attention without past: H*D */
    int64_t scratch_head_dim;              /* largest D (attention scratch) */
    int64_t vocab;                         /* decoder: token ids must be below */
    int64_t seq_sym, past_sym;             /* decoder: which symbols are n and n_past */
    int64_t mask_input, step_inputs, step_outputs;
    const bq_attn_formats *layer_fmt;      /* decoder: per layer (kv_slots / 2), its attention's formats */
} bq_gm_desc;

size_t bq_gm_state_bytes(const bq_gm_desc *d, const bq_gm_config *cfg);
bq_status bq_gm_open(const bq_gm_desc *d, bq_gm **m, const char *weights_path, const bq_gm_config *cfg);
void bq_gm_close(bq_gm *m);
bq_status bq_gm_prefill(const bq_gm_desc *d, bq_gm *m, const int32_t *tokens, int64_t n, float *logits);
bq_status bq_gm_decode(const bq_gm_desc *d, bq_gm *m, int32_t token, float *logits);
void bq_gm_reset(bq_gm *m);
int64_t bq_gm_n_past(const bq_gm *m);

/* What graph functions read (graph 0: run, 1: step). */
const unsigned char *bq_gm_weights(const bq_gm *m);
unsigned char *bq_gm_region(const bq_gm *m, int graph, int r);
int64_t bq_gm_region_cap(const bq_gm *m, int graph, int r);   /* unit bytes the region was sized for */
bq_isa bq_gm_isa(const bq_gm *m);
bq_pool *bq_gm_pool(const bq_gm *m);
float *bq_gm_kv(const bq_gm *m, int slot);
void *bq_gm_qkv(const bq_gm *m, int layer);   /* the layer's quantised keys and values (qcache) */
float *bq_gm_kvtmp(const bq_gm *m, int which);
float *bq_gm_scratch(const bq_gm *m);
int64_t bq_gm_max_ctx(const bq_gm *m);

#ifdef __cplusplus
}
#endif
#endif
