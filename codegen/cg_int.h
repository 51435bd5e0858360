/* cg_int.h — private to the C backend (codegen/cg_*.c).
 *
 * The backend compiles one or two graphs of a model into C functions: the ONNX-signature
 * graph (<name>_run) and, for decoders, the graph with a KV cache bound to batch 1 (what
 * prefill and decode run). Each value gets a storage class; buffers are placed by a
 * liveness-based plan whose sizes are polynomials of the symbolic dimensions (see
 * cg_plan.c), so the generated code computes every pointer and extent from the bound
 * symbols with integer arithmetic only.
 */
#ifndef BQC_CG_INT_H
#define BQC_CG_INT_H

#include <stdarg.h>

#include "codegen.h"

/* ---- text output (cg_out.c) ---- */

typedef struct Out { char *buf; size_t len, cap; } Out;
void out_printf(Out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void out_free(Out *o);
bool out_write_file(Diag *d, const Out *o, const char *path);

/* ---- storage (cg_plan.c) ---- */

typedef enum StoreKind {
    SK_NONE,       /* not needed at run time */
    SK_STATIC,     /* an integer value known at compile time (possibly symbolic): no storage */
    SK_LOCAL,      /* a static value some op reads as data: a small local array */
    SK_WEIGHT,     /* a constant in the weights blob */
    SK_INPUT,      /* a graph input: caller memory */
    SK_OUTPUT,     /* a graph output: caller memory */
    SK_BUFFER,     /* planned activation memory */
    SK_ALIAS,      /* a view of another value's storage (Reshape, Squeeze, ...) */
    SK_CACHE,      /* decoder API: a past input or present output bound to the KV cache */
} StoreKind;

typedef struct CgVal {
    StoreKind kind;
    IrId root;                 /* SK_ALIAS: the value whose storage this views */
    int index;                 /* SK_INPUT/SK_OUTPUT: position; SK_WEIGHT: entry; SK_CACHE: layer*2+kv */
    int region;                /* SK_BUFFER: which region */
    int64_t offset;            /* SK_BUFFER: offset in the region, in units */
    int64_t size;              /* SK_BUFFER: size in units */
    uint32_t first, last;      /* SK_BUFFER: node indices of definition and last use */
    bool readonly;             /* storage the graph must not write (inputs, weights, their views) */
} CgVal;

#define CG_MAX_REGIONS 16
typedef struct CgRegion {
    IrDim unit;                /* bytes of one unit = 64 * unit (a polynomial of the symbols) */
    int64_t units;             /* units the plan needs */
} CgRegion;

/* Number formats applied to a constant at compile time (cg_plan.c). */
typedef enum CgXform {
    CG_X_NONE,
    CG_X_QROWS,                /* f32 weight -> the N rows bq_qmatmul reads (bq_qpack_weights) */
    CG_X_ROUND,                /* f32 values -> rounded through the format (bq_quantize, bq_dequantize) */
    CG_X_QK,                   /* f32 weight or u8 rows -> the fast kernels' layout (bq_qk_pack) */
} CgXform;

typedef struct CgWeight {
    const void *data;          /* the constant's payload (the key, with `packed`) */
    uint64_t src_bytes;
    bool packed;               /* bq_pack_f32 panels for bqc.Linear */
    int64_t N, K;              /* packed: the matmul's output and reduction extents */
    int trans_b;
    uint64_t offset, bytes;    /* in the blob */
    CgXform xform;             /* CG_X_NONE, or data holds the constant `src` transformed: */
    const void *src;           /* the constant's payload (the key, with xform and fmt) */
    bq_format fmt;             /* ... quantised into bq_qmatmul's rows, or rounded */
} CgWeight;

typedef struct CgWeights {
    CgWeight *w;
    uint32_t n, cap;
    uint64_t total;            /* blob size, header included */
} CgWeights;

/* The fast-kernel instantiations a model uses (qkern.h's BQ_QK_DEFINE), one per distinct
 * (kernel spec, blocks per row): emitted once at the top of the .c file, shared by its graphs. */
typedef struct CgKernel {
    bq_qk_spec sp;
    int64_t nb;                /* ceil(K / B), folded into the kernel */
    char name[64];             /* the instantiation's name: qk_<w format>_<a format>_k<K> */
} CgKernel;
typedef struct CgKernels {
    CgKernel *k;
    uint32_t n, cap;
    Out text;                  /* the BQ_QK_DEFINE lines */
} CgKernels;

typedef struct CgGraph {
    const char *fn;            /* function suffix: "run" or "step" */
    IrModel *m;
    IrGraph *g;
    IrSVal *sv;                /* known integer values (ir_infer_graph) */
    CgVal *vals;               /* per value */
    CgRegion regions[CG_MAX_REGIONS];
    int nregions;
    bool decode;               /* past/present are the model's KV cache (batch 1) */
    int64_t heads, head_dim;   /* decode: of the cache */
    uint32_t nlayers;          /* decode: attention layers (cache slots) */
    bq_attn_formats *layer_fmt; /* decode: per layer, its attention's number formats */
    const char *prefix;        /* the model's C name (set by cg_emit_graph) */
    CgWeights *weights;        /* shared by every graph of the model */
    CgKernels *kernels;        /* likewise */
} CgGraph;

/* Classifies every value, registers the weights it reads, plans buffers. */
bool cg_plan(CgGraph *cg, CgWeights *w);
void cg_graph_free(CgGraph *cg);
/* Weight entry for constant v (raw, or packed for a Linear). */
int cg_weight(CgWeights *w, const IrValue *v, bool packed, int64_t N, int64_t K, int trans_b);
/* Weight entry for constant v transformed through format f (CG_X_QROWS: N rows of K, from W
 * [K, N] or [N, K] with trans_b; CG_X_ROUND: all of v's values); the transformed bytes live in
 * the model's arena. */
int cg_weight_xform(CgWeights *w, Arena *a, const IrValue *v, CgXform x, const bq_format *f, int64_t N, int64_t K,
                    int trans_b);
/* Does this bqc.Linear run through the quantised kernels (its input or weight format is not
 * fp32)? */
bool cg_linear_quantised(const IrNode *n);
/* The weight entry of quantised Linear n (N outputs of K): the fast kernels' packed layout when
 * its formats have a kernel and the weight packs (*qk = true), else the rows bq_qmatmul reads
 * (a u8 constant as it is, an f32 one quantised). The same node always gets the same entry. */
int cg_linear_qweight(CgGraph *cg, const IrNode *n, int64_t N, int64_t K, bool *qk);
/* Is input `k` of node n read as data (not only as a shape operand)? */
bool cg_reads_data(const IrNode *n, uint32_t k);

/* ---- expressions (cg_expr.c) ---- */

/* A dimension as a C expression over the symbol variables S_<name> ("(S_batch*S_seq)"). */
const char *cg_dim(const CgGraph *cg, IrDim d);
/* Product of dims [from, to) of a type, as a C expression ("1" when empty). */
const char *cg_numel(const CgGraph *cg, const IrType *t, int from, int to);
const char *cg_ctype(IrDType t);
/* The C name of a value's pointer ("v12"). */
const char *cg_vname(const CgGraph *cg, IrId v);
/* Fresh text with arena lifetime. */
const char *cg_fmt(const CgGraph *cg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A valid C identifier from a symbol name. */
void cg_ident(const char *s, char *buf, size_t size);

/* ---- the model being compiled (cg_c.c) ---- */

#define CG_BQC_VERSION "0.1.0"

typedef struct Cg {
    const CgOptions *o;
    IrModel *m;
    CgWeights w;
    CgKernels k;
    CgGraph run, step;
    IrModel *step_model;       /* the decoder copy, or NULL */
    bool decoder;
    uint64_t hash;             /* of the weights blob: open() checks it */
    int64_t vocab;
    int64_t attn_width;        /* largest H*D over attention ops (scratch and K/V temporaries) */
    int64_t head_dim;          /* largest D */
} Cg;

/* Shared by the backends: prepares the decoder copy and plans both graphs (false after
 * reporting errors); cg_end frees what cg_begin made. */
bool cg_begin(Cg *cg, IrModel *m, const CgOptions *o);
void cg_end(Cg *cg);
/* The weights blob (sets cg->hash) and the header <name>.h every backend's code implements. */
bool cg_write_weights(Cg *cg, const char *path);
void cg_emit_header(Cg *cg, Out *h);
/* The single symbol a dimension is, or -1 (expressions and constants): cg_api.c. */
int cg_plain_symbol(const IrModel *m, IrDim d);
/* The .c file: model struct, state layout, open/close, run and the decoder API around the
 * graph functions in `body` (cg_api.c). */
bool cg_emit_source(Cg *cg, Out *c, const Out *body);

/* ---- op emission (cg_ops.c) ---- */

/* Emits the statements computing node n into o; false (error reported) if unsupported. */
bool cg_emit_node(CgGraph *cg, Out *o, IrId n);
/* Emits the body of a graph function (pointer set-up, every node). */
bool cg_emit_graph(CgGraph *cg, Out *o, const char *prefix);
/* A bq_format as a C initialiser, its name in a comment. */
const char *cg_format_init(CgGraph *cg, const bq_format *f);

/* Which emitter serves each op, for both backends: cg_ops.c and llvm_ops.c each define static
 * functions of these names (emit_unary, emit_binary, ...) with their own EmitFn signature, so
 * the op -> emitter map is written once. An op without an entry is not supported. */
#define CG_OP_EMITTERS {                                                                                   \
    [OP_ABS] = emit_unary, [OP_NEG] = emit_unary, [OP_EXP] = emit_unary, [OP_LOG] = emit_unary,            \
    [OP_SQRT] = emit_unary, [OP_RECIPROCAL] = emit_unary, [OP_FLOOR] = emit_unary, [OP_CEIL] = emit_unary, \
    [OP_ROUND] = emit_unary, [OP_RELU] = emit_unary, [OP_SIGMOID] = emit_unary, [OP_TANH] = emit_unary,    \
    [OP_ERF] = emit_unary, [OP_SIN] = emit_unary, [OP_COS] = emit_unary, [OP_SIGN] = emit_unary,           \
    [OP_SOFTPLUS] = emit_unary, [OP_LEAKY_RELU] = emit_unary, [OP_ELU] = emit_unary,                       \
    [OP_ADD] = emit_binary, [OP_SUB] = emit_binary, [OP_MUL] = emit_binary, [OP_DIV] = emit_binary,        \
    [OP_MOD] = emit_binary, [OP_MAX] = emit_binary, [OP_MIN] = emit_binary, [OP_SUM] = emit_binary,        \
    [OP_EQUAL] = emit_binary, [OP_LESS] = emit_binary, [OP_LESS_EQUAL] = emit_binary,                      \
    [OP_GREATER] = emit_binary, [OP_GREATER_EQUAL] = emit_binary, [OP_AND] = emit_binary,                  \
    [OP_OR] = emit_binary, [OP_XOR] = emit_binary,                                                         \
    [OP_WHERE] = emit_where, [OP_CAST] = emit_cast, [OP_EXPAND] = emit_expand,                             \
    [OP_RESHAPE] = emit_copy, [OP_SQUEEZE] = emit_copy, [OP_UNSQUEEZE] = emit_copy,                        \
    [OP_FLATTEN] = emit_copy, [OP_IDENTITY] = emit_copy,                                                   \
    [OP_TRANSPOSE] = emit_transpose, [OP_CONCAT] = emit_concat, [OP_GATHER] = emit_gather,                 \
    [OP_SLICE] = emit_slice, [OP_CUMSUM] = emit_cumsum,                                                    \
    [OP_LINEAR] = emit_linear, [OP_MATMUL] = emit_matmul, [OP_LAYER_NORM] = emit_layernorm,                \
    [OP_SOFTMAX] = emit_softmax, [OP_ATTENTION] = emit_attention,                                          \
}

#endif
