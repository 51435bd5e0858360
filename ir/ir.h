/* ir.h — the bqc intermediate representation, and everything in ir/.
 *
 * A model is a set of graphs (the main graph and If-branch subgraphs) over SSA values. Nodes and
 * values live in flat arrays and refer to each other by 32-bit ids, so analyses are side arrays
 * and cloning a graph is a handful of memcpys. Ops, element types and attributes are rows of
 * ops.def, dtypes.def and attrs.def; nothing here keeps two lists in step by hand.
 *
 * Shapes are symbolic: a dimension (IrDim) is a known extent (>= 0) or a polynomial over named
 * symbols (batch, seq, past, ...) interned in the model's dimension table, so "batch*seq" and
 * "past + seq" are first-class. The same infer functions compute symbolic shapes at compile
 * time and concrete shapes at run time (the interpreter), so shape logic exists once.
 *
 * Memory: one Arena per model for strings, operand arrays and folded constants; weights are
 * borrowed from mmapped files. Passes never free. Errors are values collected in a Diag.
 */
#ifndef BQC_IR_H
#define BQC_IR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bqcrt.h"   /* bq_format: number formats are runtime data the IR carries */

#define IR_MAX_RANK 8
#define IR_MAX_SYMS 16       /* named symbols per model (batch, seq, past, ...) */
#define IR_MAX_TERMS 8       /* terms of one dimension polynomial */
#define IR_NONE UINT32_MAX   /* absent optional operand / no defining node */
#define IR_MAX_SVAL 64       /* integer tensors up to this many elements get known values */

typedef uint32_t IrId;
typedef struct Arena Arena;
typedef struct IrModel IrModel;
typedef struct IrGraph IrGraph;

/* Bugs are not diagnostics: a broken invariant prints file:line and aborts. */
_Noreturn void ir_unreachable_at(const char *file, int line, const char *what);
#define unreachable(what) ir_unreachable_at(__FILE__, __LINE__, what)

/* ------------------------------------------------------------------------------------------ */
/* arena.c — bump allocation; everything is freed with the arena                              */

Arena *arena_create(void);
void arena_destroy(Arena *a);
void *arena_alloc(Arena *a, size_t size);                      /* zeroed, 16-byte aligned */
void *arena_alloc_aligned(Arena *a, size_t size, size_t align); /* zeroed */
void *arena_memdup(Arena *a, const void *p, size_t size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
size_t arena_bytes(const Arena *a);                            /* total bytes reserved */

/* ------------------------------------------------------------------------------------------ */
/* diag.c — diagnostics are values: collected with severity and location, handed to a sink   */

typedef enum { DIAG_NOTE, DIAG_WARNING, DIAG_ERROR } DiagLevel;

/* A sink receives one complete line, without a trailing newline. */
typedef void (*DiagSink)(void *ud, DiagLevel level, const char *line);

typedef struct Diag {
    DiagSink sink;       /* NULL: messages are only counted and kept in `last` */
    void *ud;            /* sink's user data */
    int nerrors;
    int nwarnings;
    char last[1024];     /* the most recent error line (tests assert on it) */
} Diag;

void diag_init(Diag *d, DiagSink sink, void *ud);
void diag_sink_stderr(void *ud, DiagLevel level, const char *line);  /* ud unused */
/* `where` is the location prefix ("model.onnx: node 'x' (MatMul)") or NULL. Produces
 * "<where>: error: <msg>" and returns false, so `return diag_error(...)` reads naturally. */
bool diag_error(Diag *d, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, const char *where, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_emitv(Diag *d, DiagLevel level, const char *where, const char *fmt, va_list ap);

/* A growable text buffer sink, for tests and for capturing messages. */
typedef struct DiagBuffer { char *text; size_t len, cap; } DiagBuffer;
void diag_sink_buffer(void *ud, DiagLevel level, const char *line);  /* ud: DiagBuffer* */
void diag_buffer_free(DiagBuffer *b);

/* ------------------------------------------------------------------------------------------ */
/* element types (dtypes.def)                                                                 */

typedef enum IrDType {
    DT_UNDEF = 0,
#define DT(id, name, size, onnx, npy) DT_##id,
#include "dtypes.def"
#undef DT
    DT__COUNT
} IrDType;

const char *ir_dtype_name(IrDType t);          /* "f32"; "?" for DT_UNDEF */
size_t ir_dtype_size(IrDType t);               /* bytes per element; 0 for DT_UNDEF */
int ir_dtype_onnx(IrDType t);                  /* TensorProto.DataType code */
const char *ir_dtype_npy(IrDType t);           /* NumPy descr ("<f4") or NULL */
IrDType ir_dtype_from_onnx(int code);          /* DT_UNDEF if unsupported */
IrDType ir_dtype_from_name(const char *s, size_t n);
IrDType ir_dtype_from_npy(const char *descr);  /* accepts "<f4", "|b1", "=i8", ... */
bool ir_dtype_is_float(IrDType t);             /* f16, bf16, f32, f64 */
bool ir_dtype_is_int(IrDType t);               /* signed and unsigned integers (not bool) */

/* ------------------------------------------------------------------------------------------ */
/* dim.c — symbolic dimensions                                                                */

/* A dimension or an element of a known integer value (so it may be negative: Reshape's -1).
 * Values in (INT64_MIN, IR_DIM_SYM_LIMIT] are symbolic: INT64_MIN + 1 + index into the
 * model's dimension table, where each entry is a canonical polynomial over named symbols
 * (interned: equal expressions have equal IrDim) or an opaque unknown (equal only to itself,
 * printed "?N"). Integer data in that far-negative range is treated as unknown, never
 * misread as a symbol. */
typedef int64_t IrDim;
#define IR_DIM_SYM_LIMIT (INT64_MIN + ((int64_t)1 << 32))
#define IR_DIM_IS_CONST(d) ((d) > IR_DIM_SYM_LIMIT)

typedef struct IrDimTerm { int64_t coef; uint8_t exp[IR_MAX_SYMS]; } IrDimTerm;
typedef struct IrDimPoly {
    uint32_t opaque;           /* != 0: an unknown with this serial; terms unused */
    uint8_t nterms;
    IrDimTerm t[IR_MAX_TERMS]; /* canonical: like terms merged, no zero coefs, sorted */
} IrDimPoly;

typedef struct IrDimTab {
    const char *sym[IR_MAX_SYMS];  /* named symbols ("batch"); arena strings */
    uint32_t nsyms;
    uint32_t nopaque;              /* unknowns made so far */
    IrDimPoly *poly;               /* interned expressions; malloc'd, grows */
    uint32_t npoly, cappoly;
} IrDimTab;

/* Named symbol, created on first use; an opaque unknown (with a warning) if the table is full. */
IrDim ir_dim_sym(IrModel *m, const char *name);
IrDim ir_dim_fresh(IrModel *m);                        /* a new opaque unknown */
int ir_dim_sym_index(const IrModel *m, const char *name, size_t n);  /* -1 if not declared */
/* Arithmetic: constant fast paths never touch the table (m may be NULL for known dims).
 * Results that cannot be represented (non-exact division, overflow, table full) are fresh
 * unknown symbols, never wrong values. */
IrDim ir_dim_add(IrModel *m, IrDim a, IrDim b);
IrDim ir_dim_sub(IrModel *m, IrDim a, IrDim b);
IrDim ir_dim_mul(IrModel *m, IrDim a, IrDim b);
IrDim ir_dim_div(IrModel *m, IrDim a, IrDim b);        /* exact division only */
bool ir_dim_poly(const IrModel *m, IrDim d, IrDimPoly *out);  /* constants too */
IrDim ir_dim_intern(IrModel *m, const IrDimPoly *p);    /* constant polys give constants */
/* Value under a binding of symbols (values[i] for sym i; unbound: < 0). -1 if unbound. */
int64_t ir_dim_eval(const IrModel *m, IrDim d, const int64_t *values);
/* Prints "batch*seq + 2", "?3" for an unknown (returns chars written like snprintf). */
int ir_dim_format(const IrModel *m, IrDim d, char *buf, size_t size);
/* Parses a dimension expression — integers and symbol names with + - * and parentheses,
 * e.g. "past_sequence_length + sequence_length" as optimum names the attention mask —
 * declaring new symbols with ir_dim_sym. False (nothing declared) on a syntax error. */
bool ir_dim_parse(IrModel *m, const char *s, size_t n, IrDim *out);

/* ------------------------------------------------------------------------------------------ */
/* types, attributes, ops                                                                     */

typedef struct IrType {
    IrDType dtype;
    int8_t rank;                   /* -1: unknown rank */
    IrDim dims[IR_MAX_RANK];
} IrType;

typedef struct IrInts { uint8_t n; int64_t v[IR_MAX_RANK]; } IrInts;
typedef struct IrScalar { IrDType dtype; double f; int64_t i; } IrScalar;  /* f for floats */

/* Typed attributes, a union over op families; the schema (attrs.def) names the fields. */
typedef union IrAttr {
    struct { int64_t axis; } axis;                       /* Concat Gather Split Softmax Flatten */
    struct { float alpha, beta; } act;                   /* LeakyRelu, Elu */
    struct { int64_t to; } cast;                         /* IrDType */
    struct { int64_t fmod; } mod;
    struct { int64_t start, end; } shape;                /* end INT64_MAX: to the rank */
    struct { int64_t allowzero; } reshape;
    struct { IrInts perm; } transpose;                   /* n = 0: reverse */
    struct { IrScalar value; } cos;                      /* ConstantOfShape */
    struct { int64_t upper; } trilu;
    struct { IrInts axes; int64_t keepdims, noop_with_empty_axes; } reduce;
    struct { int64_t axis, keepdims, select_last_index; } argmax;
    struct { int64_t exclusive, reverse; } cumsum;
    struct { float alpha, beta; int64_t trans_a, trans_b; } gemm;
    struct { int64_t axis; float epsilon; int64_t stash_type; } layernorm;
    struct { uint32_t then_g, else_g; } if_;              /* indices into g->subs */
    struct {                                             /* W is [K,N], or [N,K] if trans_b; */
        int64_t trans_b, relu;                           /* a quantised W is u8 [N, bytes(K)] */
        bq_format input_format, weight_format, bias_format;
    } linear;
    struct {
        int64_t num_heads, causal;
        float scale;
        bq_format qk_input_format, qk_weight_format;     /* Q·Kᵀ: q, and the keys */
        bq_format pv_input_format, pv_weight_format;     /* P·V: probabilities, and the values */
    } attention;
} IrAttr;

typedef enum IrOp {
#define OP(id, name, inmin, inmax, outmin, outmax, since, flags, infer, exec) OP_##id,
#include "ops.def"
#undef OP
    OP__COUNT
} IrOp;

enum {                    /* op trait flags (ops.def column) */
    F_EW1 = 1 << 0,       /* elementwise, one input, output type = input type */
    F_EW2 = 1 << 1,       /* elementwise over broadcast inputs */
    F_BOOLOUT = 1 << 2,   /* output element type is bool */
    F_LAYOUT = 1 << 3,    /* data movement only: output bytes are input bytes, re-viewed */
    F_REDUCE = 1 << 4,    /* reduction over axes */
};
#define VAR 0xffff        /* variadic arity */

typedef struct IrOpInfo {
    const char *name;     /* ONNX op_type, or "bqc.Name" for internal ops */
    uint16_t in_min, in_max, out_min, out_max;
    uint16_t since;       /* first default-domain opset with this op (0: internal) */
    uint32_t flags;
} IrOpInfo;
extern const IrOpInfo ir_ops[OP__COUNT];
IrOp ir_op_from_name(const char *s, size_t n);   /* OP__COUNT if unknown */

typedef enum { AK_INT, AK_FLOAT, AK_INTS, AK_DTYPE, AK_SCALAR, AK_GRAPH, AK_IGNORE, AK_FORMAT } IrAttrKind;
typedef struct IrAttrInfo {
    IrOp op;
    const char *name;     /* ONNX attribute name */
    IrAttrKind kind;
    size_t offset;        /* of the field inside IrAttr */
    bool required;
    double def;           /* default for INT/FLOAT/DTYPE */
} IrAttrInfo;
extern const IrAttrInfo ir_attrs[];
extern const size_t ir_nattrs;
/* Fills every attribute of `op` with its default. */
void ir_attr_defaults(IrOp op, IrAttr *a);
/* The canonical plain fp32 format (the default of every FORMAT attribute). */
bq_format ir_format_fp32(void);
bool ir_format_is_fp32(const bq_format *f);
bool ir_format_eq(const bq_format *a, const bq_format *b);   /* field by field (no padding) */

/* ------------------------------------------------------------------------------------------ */
/* graph.c — models, graphs, values, nodes                                                    */

typedef struct IrFile {        /* a file the model borrows bytes from (mmapped, read-only) */
    const char *path;          /* absolute path */
    const uint8_t *base;
    size_t size;
} IrFile;

/* IR_VAL_DEAD: a constant or orphaned result removed by DCE; its id stays so no other id
 * moves, but nothing may read it and the printer skips it. */
typedef enum { IR_VAL_NODE, IR_VAL_INPUT, IR_VAL_CONST, IR_VAL_DEAD } IrValKind;

typedef struct IrValue {
    const char *name;          /* unique within its graph (ONNX tensor name) */
    IrValKind kind;
    IrType type;
    IrId def;                  /* defining node (IR_VAL_NODE), else IR_NONE */
    const void *data;          /* IR_VAL_CONST: row-major little-endian payload */
    uint64_t nbytes;           /* IR_VAL_CONST: payload size */
    uint32_t file;             /* 1 + index in model->files if data is borrowed from it, else 0 */
    uint64_t file_offset;      /* byte offset of data inside that file */
} IrValue;

typedef struct IrNode {
    IrOp op;
    bool dead;                 /* removed; compacted away by ir_graph_compact */
    const char *name;          /* ONNX node name (may be ""), used by plans and messages */
    uint32_t nin, nout;
    IrId *in;                  /* arena arrays; in[i] may be IR_NONE (omitted optional input) */
    IrId *out;
    IrAttr attr;
} IrNode;

struct IrGraph {
    IrModel *model;
    IrGraph *parent;           /* enclosing graph for If branches, NULL for the main graph */
    const char *name;          /* "main", or the branch's name */
    IrValue *vals;  uint32_t nvals, capvals;     /* malloc'd, grow */
    IrNode *nodes;  uint32_t nnodes, capnodes;   /* topological order (verified) */
    IrId *inputs;   uint32_t ninputs, capinputs; /* graph inputs (IR_VAL_INPUT values) */
    IrId *outputs;  uint32_t noutputs, capoutputs;
    IrGraph **subs; uint32_t nsubs, capsubs;     /* branch graphs referenced by If nodes */
};

struct IrModel {
    Arena *arena;
    Diag *diag;
    const char *path;          /* the model file as the user named it (messages use this) */
    const char *dir;           /* its directory (external data is relative to it) */
    int64_t opset;             /* default-domain opset */
    const char *producer;      /* "pytorch 1.13.1", informational */
    IrGraph *graph;            /* the main graph */
    IrDimTab dims;
    IrFile *files; uint32_t nfiles, capfiles;    /* unmapped by ir_model_destroy */
    bool files_borrowed;       /* a clone: the source model owns the mappings */
    void *frontend;            /* frontend-owned state, released through frontend_free */
    void (*frontend_free)(void *);
    void *exec_cache;          /* interpreter-owned (weights packed for the fast kernels, kept
                                * across runs), released through exec_cache_free; not cloned */
    void (*exec_cache_free)(void *);
};

IrModel *ir_model_create(Diag *diag, const char *path);
void ir_model_destroy(IrModel *m);
/* Maps `path` read-only and records it; returns its index or -1 (error reported). */
int ir_model_map_file(IrModel *m, const char *path, const char *where);
/* A deep copy for search: new arrays and dimension table, same arena contents borrowed
 * (the source must outlive the clone). */
IrModel *ir_model_clone(const IrModel *m);

IrGraph *ir_graph_create(IrModel *m, IrGraph *parent, const char *name);
IrId ir_graph_add_sub(IrGraph *g, IrGraph *sub);

/* Values. Names are copied into the arena; add functions never fail (abort on OOM). */
IrId ir_value_add(IrGraph *g, const char *name, IrValKind kind, const IrType *t);
IrId ir_input_add(IrGraph *g, const char *name, const IrType *t);
IrId ir_const_add(IrGraph *g, const char *name, const IrType *t, const void *data, uint64_t nbytes);
IrId ir_const_scalar_i64(IrGraph *g, const char *name, int64_t v);
IrId ir_const_scalar_f32(IrGraph *g, const char *name, float v);
void ir_output_add(IrGraph *g, IrId v);
IrId ir_value_find(const IrGraph *g, const char *name);   /* IR_NONE if absent (linear) */
const char *ir_unique_name(IrGraph *g, const char *base); /* base, or base_2, base_3 ... */

/* Nodes: outputs are created as new values named out_names[i] (NULL: generated). */
IrId ir_node_add(IrGraph *g, IrOp op, const char *name, const IrId *in, uint32_t nin,
                 uint32_t nout, const char *const *out_names);
/* Inserts the node at position `pos` (topological order is the caller's concern). */
IrId ir_node_insert(IrGraph *g, uint32_t pos, IrOp op, const char *name, const IrId *in,
                    uint32_t nin, uint32_t nout, const char *const *out_names);
/* Every use of `from` (node inputs, graph outputs) now reads `to`. */
void ir_replace_uses(IrGraph *g, IrId from, IrId to);
/* Drops dead nodes, keeps order; value ids stay stable. */
void ir_graph_compact(IrGraph *g);
/* Dead-code elimination: removes nodes whose outputs are unused (transitively) and marks
 * unused constants IR_VAL_DEAD. Returns the number of nodes removed. */
uint32_t ir_dce(IrGraph *g);

/* Use lists as a side array: uses[v] = number of node inputs + graph outputs reading v. */
uint32_t *ir_use_counts(const IrGraph *g);           /* malloc'd, nvals entries */

static inline IrValue *ir_val(const IrGraph *g, IrId v) { return &g->vals[v]; }
static inline IrNode *ir_node(const IrGraph *g, IrId n) { return &g->nodes[n]; }
static inline bool ir_is_const(const IrGraph *g, IrId v) {
    return v != IR_NONE && g->vals[v].kind == IR_VAL_CONST;
}
int64_t ir_type_numel(const IrType *t);   /* -1 if unknown or symbolic */
bool ir_type_is_concrete(const IrType *t);
/* "f32[batch, seq, 64]" into buf; returns chars written like snprintf. */
int ir_type_format(const IrModel *m, const IrType *t, char *buf, size_t size);

/* Location prefix for messages: "model.onnx: node '/decoder/fc2/MatMul' (MatMul)". */
const char *ir_where_node(const IrGraph *g, IrId node, char *buf, size_t size);
/* Reports an error about a node and returns false. */
bool ir_node_error(const IrGraph *g, IrId node, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Constant payload helpers: a known-size constant's elements converted to int64 / double. */
bool ir_const_i64(const IrGraph *g, IrId v, int64_t *out, int64_t max);  /* false if not int/too big */
double ir_const_elem_f64(const IrValue *v, int64_t i);

/* ------------------------------------------------------------------------------------------ */
/* verify.c — structural invariants (arity, ids, SSA, topological order, subgraphs)           */

bool ir_verify(const IrGraph *g);   /* errors go to g->model->diag */

/* ------------------------------------------------------------------------------------------ */
/* infer.c — types, shapes and known integer values, symbolic at compile time, concrete at
 * run time. One function per op (ops.def "infer" column).                                    */

/* The known content of a small integer tensor, as dims (so it may be symbolic). */
typedef struct IrSVal { int64_t n; IrDim v[IR_MAX_SVAL]; } IrSVal;

typedef struct IrInferCtx {
    IrModel *m;
    const IrGraph *g;
    IrId node;                 /* for messages */
    bool concrete;             /* run time: every dim must come out known */
} IrInferCtx;

/* in[i] / inval[i] are NULL for omitted inputs; inval[i] is NULL when the value is unknown.
 * Fills out[i] (and outval[i]->n = -1 when nothing is known). Returns false with a node
 * error on invalid input (rank/dtype/shape mismatch). */
typedef bool (*IrInferFn)(IrInferCtx *c, const IrNode *n, const IrType *const *in,
                          const IrSVal *const *inval, IrType *out, IrSVal *outval);
#define OP(id, name, inmin, inmax, outmin, outmax, since, flags, infer, exec) \
    bool infer(IrInferCtx *, const IrNode *, const IrType *const *, const IrSVal *const *, IrType *, IrSVal *);
#include "ops.def"
#undef OP
extern const IrInferFn ir_infer_fns[OP__COUNT];

/* Infers every value of the graph (and its subgraphs) in place; keeps known-value side info
 * in *svals (malloc'd array of nvals, entries with n = -1 unknown) if svals is not NULL. */
bool ir_infer_graph(IrGraph *g, IrSVal **svals);
/* Broadcasting of two shapes (numpy rules); false if incompatible. */
bool ir_broadcast(IrInferCtx *c, const IrType *a, const IrType *b, IrType *out);

/* Helpers shared by the per-family files infer_*.c (infer.c). */
typedef struct IrTypeStr { char s[192]; } IrTypeStr;   /* a printed type or dim, by value */
IrTypeStr ir_infer_tstr(const IrInferCtx *c, const IrType *t);
IrTypeStr ir_infer_dstr(const IrInferCtx *c, IrDim d);
bool ir_infer_error(IrInferCtx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
enum { IR_TC_FLOAT = 1, IR_TC_INT = 2, IR_TC_BOOL = 4, IR_TC_INDEX = 8, IR_TC_I64 = 16,
       IR_TC_NUM = IR_TC_FLOAT | IR_TC_INT, IR_TC_ANY = IR_TC_NUM | IR_TC_BOOL };
bool ir_infer_dtype(IrInferCtx *c, const IrType *t, const char *what, unsigned classes);
/* An operand that must be a 1-D vector of i64 (or i32 too with IR_TC_INDEX) integers. */
bool ir_infer_vector(IrInferCtx *c, const IrType *t, const char *what, unsigned classes);
bool ir_infer_axis(IrInferCtx *c, int64_t axis, int rank, int *out);   /* [-rank, rank-1] */
/* k axes normalised into a bit mask; false (reported) if one is out of range or repeated. */
bool ir_infer_axes(IrInferCtx *c, const int64_t *axes, int64_t k, int rank, uint32_t *mask);
bool ir_infer_sval_const(const IrSVal *v);   /* known, and every element a constant */
void ir_infer_unflatten(const IrType *t, int64_t flat, int64_t *idx);  /* concrete t */
int64_t ir_infer_flatten(const IrType *t, const int64_t *idx);
bool ir_infer_same_dim(IrInferCtx *c, IrDim a, IrDim b, IrDim *out);  /* false: known, differ */
bool ir_infer_bcast_dim(IrInferCtx *c, IrDim a, IrDim b, IrDim *out); /* false: incompatible */
/* Any input of unknown rank: every result gets dtype dt and unknown rank; returns true. */
bool ir_infer_unranked(const IrNode *n, const IrType *const *in, IrType *out, IrDType dt);
IrDim ir_infer_prod(IrModel *m, const IrType *t, int from, int to);    /* dims[from:to] */
bool ir_infer_is_opaque(const IrModel *m, IrDim d);
bool ir_infer_nonneg(const IrModel *m, IrDim d);   /* provably >= 0 (svals hold dims only) */
/* Known-value arithmetic: false when the result is not exactly representable. */
bool ir_infer_vadd(IrModel *m, IrDim a, IrDim b, IrDim *r);
bool ir_infer_vsub(IrModel *m, IrDim a, IrDim b, IrDim *r);
bool ir_infer_vmul(IrModel *m, IrDim a, IrDim b, IrDim *r);
bool ir_infer_vdiv(IrModel *m, IrDim a, IrDim b, IrDim *r);
bool ir_infer_has_values(const IrType *t);  /* int/bool with a known numel <= IR_MAX_SVAL */
/* Row-major offset into `in` (dims right-aligned, extent-1 dims broadcast) of element
 * `flat` of `out`; both concrete. */
int64_t ir_infer_bcast_offset(const IrType *in, const IrType *out, int64_t flat);
/* The elements of a small f32/f64 operand that is a constant of the graph, else false. */
bool ir_infer_const_f64(const IrInferCtx *c, const IrNode *n, uint32_t k, double *out, int64_t max);

/* ------------------------------------------------------------------------------------------ */
/* tensor.c — concrete tensors (interpreter, .npy/.pb I/O)                                    */

typedef struct IrTensor {
    IrDType dtype;
    int rank;
    int64_t dims[IR_MAX_RANK];
    void *data;                /* 64-byte aligned when allocated by ir_tensor_alloc */
    size_t nbytes;
    bool owned;                /* data is freed by ir_tensor_free */
} IrTensor;

int64_t ir_tensor_numel(const IrTensor *t);
bool ir_tensor_alloc(IrTensor *t, IrDType dt, int rank, const int64_t *dims);  /* zeroed */
void ir_tensor_free(IrTensor *t);
void ir_tensor_borrow(IrTensor *t, IrDType dt, int rank, const int64_t *dims, const void *data);
/* "f32[2, 5, 64]" */
int ir_tensor_format_type(const IrTensor *t, char *buf, size_t size);

/* ------------------------------------------------------------------------------------------ */
/* interp.c — the reference interpreter (fp32 and integer graphs)                             */

typedef struct IrExecCtx IrExecCtx;   /* interpreter state for one run (interp.c) */
typedef bool (*IrExecFn)(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out);
#define OP(id, name, inmin, inmax, outmin, outmax, since, flags, infer, exec) \
    bool exec(IrExecCtx *, const IrNode *, IrTensor *const *, IrTensor *);
#include "ops.def"
#undef OP
extern const IrExecFn ir_exec_fns[OP__COUNT];

typedef struct IrRunOptions {
    int n_threads;             /* 0: 1 */
    bool trace;                /* print each node with its output shape to stderr */
} IrRunOptions;

/* Runs g on inputs (one per graph input, in order; a tensor with data == NULL and dtype
 * DT_UNDEF marks an omitted optional input) and fills outputs (one per graph output; owned
 * tensors the caller frees). Checks inputs against the graph's declared types: dtype, rank,
 * known extents, and consistent symbol bindings. Errors go to g->model->diag. */
bool ir_run(IrGraph *g, const IrTensor *inputs, IrTensor *outputs, const IrRunOptions *opt);
/* Evaluates `nout` values of g given bindings for some values (region evaluation, used by
 * passes to check a pattern semantically and to fold constants). Values not bound and not
 * constants are computed from their nodes; a graph input that is needed but unbound is an
 * error. */
bool ir_eval(IrGraph *g, const IrId *bind, const IrTensor *bind_vals, uint32_t nbind,
             const IrId *want, IrTensor *out, uint32_t nout, const IrRunOptions *opt);

/* ------------------------------------------------------------------------------------------ */
/* plan.c — the precision plan (design.md "The precision plan"; docs/plans.md): which number
 * format each operand of each matmul gets. frontend/plan.c reads plan.json into a Plan (the
 * only place cJSON is seen); the passes apply-plan, block-size and quantise-weights act on
 * it; the functions here are what they share: kinds, resolution, where the formats live on
 * the nodes, quantisation statistics, the report's evidence and the model-level figures.   */

typedef enum PlanRole { PLAN_INPUT, PLAN_WEIGHT, PLAN_BIAS, PLAN_NROLES } PlanRole;
/* linear: every bqc.Linear but the lm_head; attn_qk / attn_pv: a bqc.Attention's Q·Kᵀ
 * (input q, weight the keys) and P·V (input the probabilities, weight the values); lm_head:
 * the bqc.Linear whose result reaches the graph's first output (the logits) through views. */
typedef enum PlanKind { PLAN_LINEAR, PLAN_ATTN_QK, PLAN_ATTN_PV, PLAN_LM_HEAD, PLAN_NKINDS } PlanKind;
#define PLAN_ANY_KIND (-1)
#define PLAN_MAX_CAND 16       /* candidate block sizes per role */
#define PLAN_RULE_DEFAULT (-1) /* PlanMatmul.rule: the format came from the default */
#define PLAN_RULE_NONE (-2)    /* ... from nothing (fp32), or the operand does not exist */
#define PLAN_DEFAULT_TARGET_DB 30.0

typedef struct PlanRule {
    const char *match;         /* fnmatch(3) glob over ONNX node names ('*' crosses '/'), or NULL */
    int kind;                  /* PlanKind, or PLAN_ANY_KIND */
    uint8_t sets;              /* bit r: the rule sets role r */
    bq_format fmt[PLAN_NROLES];/* block 0: "auto" */
} PlanRule;

typedef struct PlanBlocks { uint32_t n; uint16_t size[PLAN_MAX_CAND]; } PlanBlocks;

typedef struct Plan {
    const char *path;          /* the plan file as the user named it (messages) */
    uint8_t def_sets;          /* bit r: the default sets role r (a missing role is fp32) */
    bq_format def[PLAN_NROLES];
    PlanRule *rules;           /* in order: the first that matches and sets a role decides it */
    uint32_t nrules;
    PlanBlocks blocks[PLAN_NROLES];  /* candidate sizes for "auto": [PLAN_INPUT], [PLAN_WEIGHT] */
    double target_sqnr_db;     /* block-size's target (PLAN_DEFAULT_TARGET_DB if not given) */
    bool has_block_size;       /* the file had a "block_size" object */
} Plan;

/* One matmul a plan addresses: a bqc.Linear, or one of a bqc.Attention's two. */
typedef struct PlanMatmul {
    IrId node;
    PlanKind kind;
    bq_format fmt[PLAN_NROLES];/* attention has no bias: fp32 */
    int rule[PLAN_NROLES];     /* the deciding rule's index, PLAN_RULE_DEFAULT or PLAN_RULE_NONE */
} PlanMatmul;

const char *plan_role_name(PlanRole r);        /* "input" */
const char *plan_kind_name(PlanKind k);        /* "attn_qk" */
int plan_kind_from_name(const char *s);        /* -1 if unknown */
/* Where the format of role r of matmul kind k lives on node n (NULL: no such operand). */
bq_format *plan_format_attr(IrNode *n, PlanKind k, PlanRole r);
/* The value feeding an operand: Linear X / W / bias; attn_qk q / k; attn_pv v as the weight;
 * IR_NONE for the probabilities (internal to bqc.Attention) and absent operands. */
IrId plan_operand(const IrGraph *g, const PlanMatmul *mm, PlanRole r);
/* The matmuls of g's main graph in node order, kinds classified, formats as the nodes'
 * attributes hold them. *out is malloc'd (NULL when there are none); returns the count. */
uint32_t plan_matmuls(const IrGraph *g, PlanMatmul **out);
/* Resolves p against g: every operand's format and the rule that decided it. Errors (a rule
 * that matches no node) name the plan file and the rule's JSON path. *out is malloc'd. */
bool plan_resolve(const Plan *p, const IrGraph *g, Diag *d, PlanMatmul **out, uint32_t *n);
/* The matmul's reduction length K when it is fixed — a Linear's in_features, the head size
 * for Q·Kᵀ — or -1 (P·V reduces over the keys, as many as the sequence). apply-plan makes a
 * "row" block this K. */
int64_t plan_matmul_k(const IrGraph *g, const PlanMatmul *mm);

/* Quantisation statistics of values run through a format, accumulated over runs along K. */
typedef struct PlanQStats {
    double sig, err;           /* Σx², Σ(x - q(x))² */
    double sum, sumsq;         /* moments of x (variance) */
    int64_t n;
} PlanQStats;
/* Adds one run of k values (x need not be contiguous: stride apart). scratch: k floats and
 * bq_format_bytes(f, k) bytes (plan_qstats_scratch). Non-finite values are not counted. */
void plan_qstats_add(PlanQStats *s, const bq_format *f, const float *x, int64_t k, int64_t stride, void *scratch);
size_t plan_qstats_scratch(const bq_format *f, int64_t k);
double plan_qstats_sqnr_db(const PlanQStats *s);   /* 10·log10(sig/err); INFINITY if exact; NAN if empty */
double plan_qstats_variance(const PlanQStats *s);  /* population variance; NAN if empty */

/* The report's evidence (passes/ write it through PassEnv.report; tools/bqc/report.c prints it). */
typedef struct PlanEvidence {  /* block-size's measurements of one "auto" operand */
    uint32_t ncand;            /* 0: the block was not auto */
    uint16_t cand[PLAN_MAX_CAND];
    double sqnr_db[PLAN_MAX_CAND];
    uint16_t chosen;
    bool met;                  /* the chosen block meets target_db (else: the best SQNR) */
    double target_db;
} PlanEvidence;

typedef struct PlanReportRow {
    const char *node;          /* ONNX node name (model arena) */
    PlanKind kind;
    PlanRole role;
    int rule;                  /* as PlanMatmul.rule (PLAN_RULE_NONE: no plan) */
    bq_format planned;         /* the plan's format (block 0: auto) */
    bool has_planned;
    double variance;           /* of the fp32 values (NAN: not measured) */
    double sqnr_db;            /* of the final format (NAN: not measured) */
    int64_t nvalues;           /* values measured */
    bool calibrated;           /* statistics from the calibration run (activations) */
    PlanEvidence ev;
} PlanReportRow;

typedef struct PlanReport { PlanReportRow *rows; uint32_t n, cap; int64_t calib_tokens; } PlanReport;
/* The row of (node, kind, role), added (variance and SQNR NAN) if absent. */
PlanReportRow *plan_report_row(PlanReport *r, const char *node, PlanKind k, PlanRole role);
const PlanReportRow *plan_report_find(const PlanReport *r, const char *node, PlanKind k, PlanRole role);
void plan_report_free(PlanReport *r);

/* Model-level figures (formats.md §8), from the formats on g's nodes after the pipeline.
 * The density set is every `linear` matmul (q/k/v/out, fc1, fc2, project_in/out) and both
 * attention matmuls; the lm_head, biases and every other parameter are outside it.
 * Activations are counted for one sequence of `seq` tokens (batch 1, no past): a Linear's
 * input seq·K; Q·Kᵀ: q and the keys, seq·hidden each; P·V: the probabilities H·seq·seq
 * (the causal zeros included: the matmul is dense) and the values seq·hidden. */
typedef struct PlanSummary {
    int64_t seq;
    int64_t params;            /* every floating-point constant element (a packed weight: N·K) */
    int64_t params_quant;      /* of which matmul weights with a non-fp32 format */
    uint64_t weight_bytes;     /* estimated storage of those parameters as compiled */
    double w_elems, w_bits;    /* density-set weights */
    double a_elems, a_bits;    /* density-set activations */
    double weight_bpw, act_bpw;/* bits per element (NAN: an operand is still "auto") */
    double density;            /* 32·(w_elems + a_elems) / (w_bits + a_bits) */
} PlanSummary;
void plan_summarise(const IrGraph *g, int64_t seq, PlanSummary *s);

/* ------------------------------------------------------------------------------------------ */
/* print.c, parse.c — the text form (docs/ir.md)                                              */

bool ir_print_model(FILE *f, const IrModel *m);
/* inline_weights: constants borrowed from files print their values instead of file(...),
 * which makes a self-contained text (golden tests, bug reports). */
bool ir_print_model_opt(FILE *f, const IrModel *m, bool inline_weights);
bool ir_print_graph(FILE *f, const IrGraph *g);
/* Parses text (path is for messages and for resolving relative file("...") constants). */
IrModel *ir_parse_model(Diag *diag, const char *path, const char *text, size_t len);
IrModel *ir_parse_file(Diag *diag, const char *path);

#endif
