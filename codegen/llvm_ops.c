/* llvm_ops.c — the LLVM backend's graph functions: one IR function per planned graph.
 *
 * This is cg_graph.c and cg_ops.c as IR instead of text, on the same plan (cg_plan.c: storage
 * classes, buffer regions, weight offsets): symbols are loaded once, each region's unit is
 * checked against the capacity the state was sized for, every value's pointer is computed
 * where it is first used (all later uses are dominated: the function is straight-line with
 * early returns), and each node becomes a call — a bqcrt_ops.h helper (a loop nest over a
 * bq_nest filled with constants, an elementwise row of bqcrt_ew.h) or a libbqcrt kernel with
 * the C backend's arguments. The helpers are inlined at O2, so their loops are specialised to
 * the node's extents and strides as the C compiler specialises the C backend's loops.
 */
#include <stdlib.h>
#include <string.h>

#include "bqcrt_ew.h"
#include "bqcrt_ops.h"
#include "llvm_int.h"

/* ---- small builders ---- */

LLVMValueRef lv_i64(Lv *lv, int64_t v) { return LLVMConstInt(lv->i64, (unsigned long long)v, 1); }
LLVMValueRef lv_i32(Lv *lv, int32_t v) { return LLVMConstInt(lv->i32, (unsigned long long)(int64_t)v, 1); }

/* libbqcrt's kernels the runtime bitcode does not already declare: return type and parameter
 * types, one letter each (v void, i int/enum, l int64_t, f float, p pointer). */
static const struct { const char *name, *ret, *params; } kernels[] = {
    {"bq_matmul_f32_packed", "v", "ipplppipllll"},
    {"bq_qmatmul", "i", "ippplpppipllll"},
    {"bq_qk_matmul_spec", "i", "ippplpppipllllpp"},
    {"bq_layernorm_f32", "v", "pppfpll"},
    {"bq_attention_f32", "v", "ipppplpppifppplllllp"},
    {"bq_attention_q_f32", "i", "ippppplpppifppplllllp"},
    {"bq_attention_cached_f32", "v", "ipppplpifpplplllllp"},
    {"bq_attention_cached_q_f32", "i", "ippppplpifppplplllllp"},
};

static LLVMTypeRef letter_type(Lv *lv, char c)
{
    switch (c) {
    case 'v': return lv->vd;
    case 'i': return lv->i32;
    case 'l': return lv->i64;
    case 'f': return lv->f32;
    default: return lv->ptr;
    }
}

LLVMValueRef lv_fn(Lv *lv, const char *name)
{
    LLVMValueRef f = LLVMGetNamedFunction(lv->mod, name);
    if (f) return f;
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        if (strcmp(kernels[i].name, name) != 0) continue;
        LLVMTypeRef p[32];
        unsigned n = (unsigned)strlen(kernels[i].params);
        for (unsigned k = 0; k < n; k++) p[k] = letter_type(lv, kernels[i].params[k]);
        return LLVMAddFunction(lv->mod, name, LLVMFunctionType(letter_type(lv, kernels[i].ret[0]), p, n, 0));
    }
    unreachable(name);
}

LLVMValueRef lv_call(Lv *lv, const char *name, LLVMValueRef *args, unsigned n)
{
    LLVMValueRef f = lv_fn(lv, name);
    LLVMTypeRef t = LLVMGlobalGetValueType(f);
    if (LLVMCountParamTypes(t) != n) unreachable(name);
    return LLVMBuildCall2(lv->b, t, f, args, n, "");
}

LLVMValueRef lv_function(Lv *lv, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, unsigned n, bool external)
{
    LLVMValueRef f = LLVMAddFunction(lv->mod, name, LLVMFunctionType(ret, params, n, 0));
    LLVMSetLinkage(f, external ? LLVMExternalLinkage : LLVMInternalLinkage);
    LLVMPositionBuilderAtEnd(lv->b, LLVMAppendBasicBlockInContext(lv->ctx, f, "entry"));
    return f;
}

void lv_return_if(Lv *lv, LLVMValueRef cond, LLVMValueRef status)
{
    LLVMValueRef f = LLVMGetBasicBlockParent(LLVMGetInsertBlock(lv->b));
    LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(lv->ctx, f, "fail");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(lv->ctx, f, "");
    LLVMBuildCondBr(lv->b, cond, fail, cont);
    LLVMPositionBuilderAtEnd(lv->b, fail);
    LLVMBuildRet(lv->b, status);
    LLVMPositionBuilderAtEnd(lv->b, cont);
}

LLVMValueRef lv_global(Lv *lv, LLVMValueRef init, const char *name)
{
    LLVMValueRef g = LLVMAddGlobal(lv->mod, LLVMTypeOf(init), name);
    LLVMSetInitializer(g, init);
    LLVMSetGlobalConstant(g, 1);
    LLVMSetLinkage(g, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
    return g;
}

/* ---- the graph being emitted ---- */

typedef struct G {
    Lv *lv;
    CgGraph *cg;
    int which;                         /* 0 run, 1 step (bq_gm_region's graph) */
    LLVMValueRef fn, m, in, out;
    LLVMValueRef sym[IR_MAX_SYMS];
    LLVMValueRef unit[CG_MAX_REGIONS], base[CG_MAX_REGIONS];
    LLVMValueRef wbase, isa, pool;
    LLVMValueRef *ptr;                 /* per value, made on first use */
    LLVMBuilderRef entry;              /* allocas go to the top of the entry block */
} G;

static const IrType *ty(const G *g, IrId v) { return &g->cg->g->vals[v].type; }

static bool unsupported(G *g, const IrNode *n, const char *why)
{
    return ir_node_error(g->cg->g, (IrId)(n - g->cg->g->nodes), "the LLVM backend does not support this: %s", why);
}

/* A dimension (a polynomial of the symbols) as i64 arithmetic; NULL if it is not one. */
LLVMValueRef lv_dim(Lv *lv, const IrModel *m, IrDim d, LLVMValueRef *sym)
{
    if (IR_DIM_IS_CONST(d)) return lv_i64(lv, d);
    IrDimPoly p;
    if (!ir_dim_poly(m, d, &p) || p.opaque) return NULL;
    LLVMValueRef sum = NULL;
    for (int i = 0; i < p.nterms; i++) {
        LLVMValueRef t = NULL;
        for (int s = 0; s < IR_MAX_SYMS; s++)
            for (int e = 0; e < p.t[i].exp[s]; e++) t = t ? LLVMBuildMul(lv->b, t, sym[s], "") : sym[s];
        if (!t) t = lv_i64(lv, p.t[i].coef);
        else if (p.t[i].coef != 1) t = LLVMBuildMul(lv->b, lv_i64(lv, p.t[i].coef), t, "");
        sum = sum ? LLVMBuildAdd(lv->b, sum, t, "") : t;
    }
    return sum ? sum : lv_i64(lv, 0);
}

static LLVMValueRef dim(G *g, IrDim d)
{
    LLVMValueRef v = lv_dim(g->lv, g->cg->m, d, g->sym);
    if (!v) unreachable("a dimension the plan accepted is not a polynomial");
    return v;
}

static LLVMValueRef numel(G *g, const IrType *t, int from, int to)
{
    IrDim n = 1;
    for (int i = from; i < to; i++) n = ir_dim_mul(g->cg->m, n, t->dims[i]);
    return dim(g, n);
}

static LLVMValueRef entry_alloca(G *g, LLVMTypeRef t, const char *name)
{
    LLVMBasicBlockRef bb = LLVMGetEntryBasicBlock(g->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(bb);
    if (first) LLVMPositionBuilderBefore(g->entry, first);
    else LLVMPositionBuilderAtEnd(g->entry, bb);
    return LLVMBuildAlloca(g->entry, t, name);
}

static LLVMValueRef gep8(Lv *lv, LLVMValueRef p, LLVMValueRef off)
{
    return LLVMBuildGEP2(lv->b, lv->i8, p, &off, 1, "");
}

static LLVMTypeRef elem_type(Lv *lv, IrDType t)
{
    switch (ir_dtype_size(t)) {
    case 1: return lv->i8;
    case 2: return lv->i16;
    case 4: return t == DT_F32 ? lv->f32 : lv->i32;
    default: return t == DT_F64 ? lv->f64 : lv->i64;
    }
}

static IrId root_of(const G *g, IrId v)
{
    while (g->cg->vals[v].kind == SK_ALIAS) v = g->cg->vals[v].root;
    return v;
}

/* The pointer to value v's first element (cg_graph.c's declare). */
static LLVMValueRef vptr(G *g, IrId v)
{
    if (g->ptr[v]) return g->ptr[v];
    Lv *lv = g->lv;
    const CgVal *cv = &g->cg->vals[v];
    LLVMValueRef p = NULL, idx;
    switch (cv->kind) {
    case SK_INPUT:
    case SK_OUTPUT:
        idx = lv_i64(lv, cv->index);
        p = LLVMBuildLoad2(lv->b, lv->ptr, LLVMBuildGEP2(lv->b, lv->ptr, cv->kind == SK_INPUT ? g->in : g->out, &idx, 1, ""), "");
        break;
    case SK_WEIGHT:
        p = gep8(lv, g->wbase, lv_i64(lv, (int64_t)g->cg->weights->w[cv->index].offset));
        break;
    case SK_BUFFER:
        p = gep8(lv, g->base[cv->region], LLVMBuildMul(lv->b, lv_i64(lv, cv->offset), g->unit[cv->region], ""));
        break;
    case SK_ALIAS:
        p = vptr(g, root_of(g, v));
        break;
    case SK_LOCAL: {
        const IrSVal *s = &g->cg->sv[v];
        LLVMTypeRef et = elem_type(lv, g->cg->g->vals[v].type.dtype);
        LLVMTypeRef at = LLVMArrayType(et, (unsigned)(s->n ? s->n : 1));
        p = entry_alloca(g, at, "local");
        for (int64_t i = 0; i < s->n; i++) {
            LLVMValueRef x = dim(g, s->v[i]);
            if (et != lv->i64) x = LLVMBuildTrunc(lv->b, x, et, "");
            LLVMValueRef ix[2] = {lv_i64(lv, 0), lv_i64(lv, i)};
            LLVMBuildStore(lv->b, x, LLVMBuildGEP2(lv->b, at, p, ix, 2, ""));
        }
        break;
    }
    default:
        unreachable("a value without storage is read");
    }
    return g->ptr[v] = p;
}

static void check_status(G *g, LLVMValueRef s)
{
    lv_return_if(g->lv, LLVMBuildICmp(g->lv->b, LLVMIntNE, s, lv_i32(g->lv, 0), ""), s);
}

/* ---- loop nests (cg_ops.c's Loop, executed by the bq_nest helpers) ---- */

typedef struct Loop {
    int rank;
    IrDim dims[IR_MAX_RANK];
    int nops;
    LLVMValueRef ptr[BQ_NEST_OPS];
    IrDim stride[BQ_NEST_OPS][IR_MAX_RANK];
    LLVMValueRef base[BQ_NEST_OPS];    /* extra element offset, or NULL */
} Loop;

static void set_operand(G *g, Loop *l, int op, IrId v, const IrType *t)
{
    l->ptr[op] = vptr(g, v);
    int off = l->rank - t->rank;
    IrDim s = 1;
    for (int d = l->rank - 1; d >= 0; d--) {
        int td = d - off;
        bool bcast = td < 0 || (t->dims[td] == 1 && l->dims[d] != 1);
        l->stride[op][d] = bcast ? 0 : s;
        if (td >= 0) s = ir_dim_mul(g->cg->m, s, t->dims[td]);
    }
}

static void loop_init(G *g, Loop *l, IrId out)
{
    const IrType *t = ty(g, out);
    memset(l, 0, sizeof *l);
    l->rank = t->rank;
    memcpy(l->dims, t->dims, sizeof l->dims);
    l->nops = 1;
    set_operand(g, l, 0, out, t);
}

/* Merges dimensions like the C backend, fills a bq_nest and calls helper(nest, [attr,] ptrs). */
static void emit_loop(G *g, Loop *l, const char *helper, LLVMValueRef attr)
{
    Lv *lv = g->lv;
    int n = 0;
    IrDim dims[IR_MAX_RANK], st[BQ_NEST_OPS][IR_MAX_RANK];
    for (int d = l->rank - 1; d >= 0; d--) {
        if (l->dims[d] == 1) continue;
        bool merge = n > 0;
        for (int op = 0; op < l->nops && merge; op++)
            merge = l->stride[op][d] == ir_dim_mul(g->cg->m, st[op][n - 1], dims[n - 1]);
        if (merge) {
            dims[n - 1] = ir_dim_mul(g->cg->m, dims[n - 1], l->dims[d]);
            continue;
        }
        dims[n] = l->dims[d];
        for (int op = 0; op < l->nops; op++) st[op][n] = l->stride[op][d];
        n++;
    }
    /* bq_nest as i64 words: n[8], st[4][8], off[4]; level k runs over dims[n-1-k]. */
    LLVMTypeRef at = LLVMArrayType(lv->i64, sizeof(bq_nest) / 8);
    LLVMValueRef nest = entry_alloca(g, at, "nest");
    int64_t words = sizeof(bq_nest) / 8;
    for (int64_t w = 0; w < words; w++) {
        LLVMValueRef x;
        if (w < BQ_NEST_MAX) {
            x = w < n ? dim(g, dims[n - 1 - w]) : lv_i64(lv, 1);
        } else if (w < BQ_NEST_MAX + BQ_NEST_OPS * BQ_NEST_MAX) {
            int op = (int)((w - BQ_NEST_MAX) / BQ_NEST_MAX), k = (int)((w - BQ_NEST_MAX) % BQ_NEST_MAX);
            x = op < l->nops && k < n ? dim(g, st[op][n - 1 - k]) : lv_i64(lv, 0);
        } else {
            int op = (int)(w - BQ_NEST_MAX - BQ_NEST_OPS * BQ_NEST_MAX);
            x = op < l->nops && l->base[op] ? l->base[op] : lv_i64(lv, 0);
        }
        LLVMValueRef ix[2] = {lv_i64(lv, 0), lv_i64(lv, w)};
        LLVMBuildStore(lv->b, x, LLVMBuildGEP2(lv->b, at, nest, ix, 2, ""));
    }
    LLVMValueRef args[2 + BQ_NEST_OPS];
    unsigned na = 0;
    args[na++] = nest;
    if (attr) args[na++] = attr;
    for (int op = 0; op < l->nops; op++) args[na++] = l->ptr[op];
    lv_call(lv, helper, args, na);
}

/* ---- elementwise ---- */

#define NAME_UF(op, e32, e64) [OP_##op] = #op,
#define NAME_ROW(op, e) [OP_##op] = #op,
static const char *const unary_float[OP__COUNT] = {BQ_EW_UNARY_FLOAT(NAME_UF)};
static const char *const unary_int[OP__COUNT] = {BQ_EW_UNARY_INT(NAME_ROW)};
static const char *const binary_float[OP__COUNT] = {BQ_EW_BINARY_FLOAT(NAME_ROW)};
static const char *const binary_int[OP__COUNT] = {BQ_EW_BINARY_INT(NAME_ROW)};
static const char *const binary_cmp[OP__COUNT] = {BQ_EW_BINARY_CMP(NAME_ROW)};
static const char *const binary_bool[OP__COUNT] = {BQ_EW_BINARY_BOOL(NAME_ROW)};

/* The helpers' type suffix (bqcrt_ops.h). */
static const char *tsuffix(IrDType t)
{
    switch (t) {
    case DT_F32: return "f32";
    case DT_F64: return "f64";
    case DT_I64: return "i64";
    case DT_I32: return "i32";
    case DT_I16: return "i16";
    case DT_I8: return "i8";
    case DT_U64: return "u64";
    case DT_U32: return "u32";
    case DT_U16: return "u16";
    case DT_U8: return "u8";
    case DT_BOOL: return "bool";
    default: return NULL;
    }
}

/* The node's bq_ew_attr as a constant. */
static LLVMValueRef ew_attr(G *g, const IrAttr *a)
{
    Lv *lv = g->lv;
    LLVMValueRef f[3] = {LLVMConstReal(lv->f32, a->act.alpha), LLVMConstReal(lv->f32, a->act.beta),
                         lv_i64(lv, a->mod.fmod)};
    return lv_global(lv, LLVMConstStructInContext(lv->ctx, f, 3, 0), "ew_attr");
}

static bool emit_unary(G *g, const IrNode *n)
{
    const IrType *t = ty(g, n->in[0]);
    const char *row = NULL;
    if (t->dtype == DT_F32 || t->dtype == DT_F64) row = unary_float[n->op];
    else if (ir_dtype_is_int(t->dtype)) row = unary_int[n->op];
    if (!row) return unsupported(g, n, "this op on this element type");
    char name[64];
    snprintf(name, sizeof name, "bq_ew_%s_%s", row, tsuffix(t->dtype));
    Loop l;
    loop_init(g, &l, n->out[0]);
    set_operand(g, &l, 1, n->in[0], t);
    l.nops = 2;
    emit_loop(g, &l, name, ew_attr(g, &n->attr));
    return true;
}

static bool emit_binary(G *g, const IrNode *n)
{
    if (n->nin != 2 || n->op == OP_MEAN) return unsupported(g, n, "variadic Max/Min/Sum/Mean");
    const IrType *ta = ty(g, n->in[0]);
    const char *row = NULL;
    bool cmp = ir_ops[n->op].flags & F_BOOLOUT;
    if (ta->dtype == DT_BOOL) row = binary_bool[n->op];
    else if (cmp) row = binary_cmp[n->op];
    else if (ta->dtype == DT_F32 || ta->dtype == DT_F64) row = binary_float[n->op];
    else if (ir_dtype_is_int(ta->dtype)) row = binary_int[n->op];
    if (!row || !tsuffix(ta->dtype)) return unsupported(g, n, "this op on this element type");
    char name[64];
    snprintf(name, sizeof name, "bq_ew_%s_%s", row, tsuffix(ta->dtype));
    Loop l;
    loop_init(g, &l, n->out[0]);
    set_operand(g, &l, 1, n->in[0], ta);
    set_operand(g, &l, 2, n->in[1], ty(g, n->in[1]));
    l.nops = 3;
    emit_loop(g, &l, name, ew_attr(g, &n->attr));
    return true;
}

/* "bq_copy_4", "bq_where_8": the helpers by element size. */
typedef struct { char s[32]; } Name;
static Name sized(IrDType t, const char *what)
{
    Name n;
    snprintf(n.s, sizeof n.s, "bq_%s_%zu", what, ir_dtype_size(t));
    return n;
}

static bool emit_where(G *g, const IrNode *n)
{
    Loop l;
    loop_init(g, &l, n->out[0]);
    for (int k = 0; k < 3; k++) set_operand(g, &l, 1 + k, n->in[k], ty(g, n->in[k]));
    l.nops = 4;
    emit_loop(g, &l, sized(ty(g, n->out[0])->dtype, "where").s, NULL);
    return true;
}

static bool emit_cast(G *g, const IrNode *n)
{
    IrDType from = ty(g, n->in[0])->dtype, to = ty(g, n->out[0])->dtype;
    bool fi = ir_dtype_is_int(from) || from == DT_BOOL, ti = ir_dtype_is_int(to) || to == DT_BOOL;
    char name[64];
    if (from == to) snprintf(name, sizeof name, "%s", sized(to, "copy").s);
    else if ((to == DT_BOOL || (fi && ti) || (fi && (to == DT_F32 || to == DT_F64)) || (from == DT_F32 && to == DT_F64)) &&
             tsuffix(from))
        snprintf(name, sizeof name, "bq_cast_%s_%s", tsuffix(from), tsuffix(to));
    else return unsupported(g, n, "Cast between these element types");
    Loop l;
    loop_init(g, &l, n->out[0]);
    set_operand(g, &l, 1, n->in[0], ty(g, n->in[0]));
    l.nops = 2;
    emit_loop(g, &l, name, NULL);
    return true;
}

static bool emit_expand(G *g, const IrNode *n)
{
    Loop l;
    loop_init(g, &l, n->out[0]);
    set_operand(g, &l, 1, n->in[0], ty(g, n->in[0]));
    l.nops = 2;
    emit_loop(g, &l, sized(ty(g, n->out[0])->dtype, "copy").s, NULL);
    return true;
}

static bool emit_copy(G *g, const IrNode *n)
{
    if (g->cg->vals[n->out[0]].kind != SK_OUTPUT) return true;   /* aliases need no code */
    const IrType *t = ty(g, n->out[0]);
    Lv *lv = g->lv;
    LLVMValueRef bytes = LLVMBuildMul(lv->b, numel(g, t, 0, t->rank), lv_i64(lv, (int64_t)ir_dtype_size(t->dtype)), "");
    LLVMBuildMemCpy(lv->b, vptr(g, n->out[0]), 1, vptr(g, n->in[0]), 1, bytes);
    return true;
}

/* ---- data movement ---- */

static int axis_of(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

static bool emit_transpose(G *g, const IrNode *n)
{
    const IrType *in = ty(g, n->in[0]);
    int r = in->rank;
    IrDim st[IR_MAX_RANK], s = 1;
    for (int d = r - 1; d >= 0; d--) st[d] = s, s = ir_dim_mul(g->cg->m, s, in->dims[d]);
    Loop l;
    loop_init(g, &l, n->out[0]);
    l.ptr[1] = vptr(g, n->in[0]);
    for (int d = 0; d < r; d++) {
        int p = n->attr.transpose.perm.n ? (int)n->attr.transpose.perm.v[d] : r - 1 - d;
        l.stride[1][d] = st[p];
    }
    l.nops = 2;
    emit_loop(g, &l, sized(in->dtype, "copy").s, NULL);
    return true;
}

static bool emit_concat(G *g, const IrNode *n)
{
    const IrType *out = ty(g, n->out[0]);
    int ax = axis_of(n->attr.axis.axis, out->rank);
    IrDim off = 0;
    for (uint32_t k = 0; k < n->nin; k++) {
        const IrType *t = ty(g, n->in[k]);
        Loop l;
        memset(&l, 0, sizeof l);
        l.rank = t->rank;
        memcpy(l.dims, t->dims, sizeof l.dims);
        l.ptr[0] = vptr(g, n->out[0]);
        IrDim s = 1;
        for (int d = out->rank - 1; d >= 0; d--) l.stride[0][d] = s, s = ir_dim_mul(g->cg->m, s, out->dims[d]);
        l.base[0] = LLVMBuildMul(g->lv->b, dim(g, off), dim(g, l.stride[0][ax]), "");
        set_operand(g, &l, 1, n->in[k], t);
        l.nops = 2;
        emit_loop(g, &l, sized(out->dtype, "copy").s, NULL);
        off = ir_dim_add(g->cg->m, off, t->dims[ax]);
    }
    return true;
}

static bool emit_gather(G *g, const IrNode *n)
{
    const IrType *data = ty(g, n->in[0]), *idx = ty(g, n->in[1]);
    int ax = axis_of(n->attr.axis.axis, data->rank);
    if (idx->dtype != DT_I64 && idx->dtype != DT_I32) return unsupported(g, n, "Gather indices other than int64/int32");
    Lv *lv = g->lv;
    LLVMValueRef inner = LLVMBuildMul(lv->b, numel(g, data, ax + 1, data->rank), lv_i64(lv, (int64_t)ir_dtype_size(data->dtype)), "");
    LLVMValueRef a[7] = {vptr(g, n->out[0]), vptr(g, n->in[0]), vptr(g, n->in[1]), numel(g, data, 0, ax),
                         numel(g, idx, 0, idx->rank), dim(g, data->dims[ax]), inner};
    check_status(g, lv_call(lv, idx->dtype == DT_I64 ? "bq_gather_i64" : "bq_gather_i32", a, 7));
    return true;
}

static bool emit_slice(G *g, const IrNode *n)
{
    Lv *lv = g->lv;
    const IrType *in = ty(g, n->in[0]), *out = ty(g, n->out[0]);
    const IrSVal *st = &g->cg->sv[n->in[1]], *en = &g->cg->sv[n->in[2]];
    const IrSVal *ax = n->nin > 3 && n->in[3] != IR_NONE ? &g->cg->sv[n->in[3]] : NULL;
    const IrSVal *sp = n->nin > 4 && n->in[4] != IR_NONE ? &g->cg->sv[n->in[4]] : NULL;
    if (st->n < 0 || en->n < 0 || (ax && ax->n < 0) || (sp && sp->n < 0))
        return unsupported(g, n, "Slice bounds that depend on data");
    LLVMValueRef start[IR_MAX_RANK] = {0};
    IrDim step[IR_MAX_RANK];
    for (int d = 0; d < in->rank; d++) step[d] = 1;
    for (int64_t i = 0; i < st->n; i++) {
        int d = ax ? axis_of(ax->v[i], in->rank) : (int)i;
        IrDim k = sp ? sp->v[i] : 1;
        if (!IR_DIM_IS_CONST(k) || k == 0) return unsupported(g, n, "a Slice step that is not a known non-zero number");
        LLVMValueRef s = entry_alloca(g, lv->i64, "start");
        LLVMValueRef a[6] = {dim(g, st->v[i]), dim(g, en->v[i]), lv_i64(lv, k), dim(g, in->dims[d]), dim(g, out->dims[d]), s};
        check_status(g, lv_call(lv, "bq_slice_bound", a, 6));
        start[d] = LLVMBuildLoad2(lv->b, lv->i64, s, "");
        step[d] = k;
    }
    Loop l;
    loop_init(g, &l, n->out[0]);
    IrDim s = 1;
    LLVMValueRef base = lv_i64(lv, 0);
    for (int d = in->rank - 1; d >= 0; d--) {
        l.stride[1][d] = ir_dim_mul(g->cg->m, s, step[d]);
        if (start[d]) base = LLVMBuildAdd(lv->b, base, LLVMBuildMul(lv->b, start[d], dim(g, s), ""), "");
        s = ir_dim_mul(g->cg->m, s, in->dims[d]);
    }
    l.ptr[1] = vptr(g, n->in[0]);
    l.base[1] = base;
    l.nops = 2;
    emit_loop(g, &l, sized(in->dtype, "copy").s, NULL);
    return true;
}

static bool emit_cumsum(G *g, const IrNode *n)
{
    const IrType *t = ty(g, n->in[0]);
    const IrSVal *a = &g->cg->sv[n->in[1]];
    if (a->n != 1 || !IR_DIM_IS_CONST(a->v[0])) return unsupported(g, n, "a CumSum axis that is not known");
    if (t->dtype == DT_BOOL || !tsuffix(t->dtype)) return unsupported(g, n, "CumSum on this element type");
    int ax = axis_of(a->v[0], t->rank);
    char name[32];
    snprintf(name, sizeof name, "bq_cumsum_%s", tsuffix(t->dtype));
    LLVMValueRef args[7] = {vptr(g, n->out[0]), vptr(g, n->in[0]), numel(g, t, 0, ax), dim(g, t->dims[ax]),
                            numel(g, t, ax + 1, t->rank), lv_i32(g->lv, (int)n->attr.cumsum.reverse),
                            lv_i32(g->lv, (int)n->attr.cumsum.exclusive)};
    lv_call(g->lv, name, args, 7);
    return true;
}

/* ---- runtime kernels ---- */

static LLVMValueRef format_const(Lv *lv, const bq_format *f)
{
    LLVMValueRef v[4] = {LLVMConstInt(lv->i8, f->family, 0), LLVMConstInt(lv->i8, f->width, 0),
                         LLVMConstInt(lv->i8, f->ebits, 0), LLVMConstInt(lv->i16, f->block, 0)};
    return LLVMConstStructInContext(lv->ctx, v, 4, 0);
}

LLVMValueRef lv_attn_formats(Lv *lv, const bq_attn_formats *f)
{
    LLVMValueRef fs[4] = {format_const(lv, &f->qk_input), format_const(lv, &f->qk_weight), format_const(lv, &f->pv_input),
                          format_const(lv, &f->pv_weight)};
    return LLVMConstStructInContext(lv->ctx, fs, 4, 0);
}

static LLVMValueRef weight_ptr(G *g, int e)
{
    return gep8(g->lv, g->wbase, lv_i64(g->lv, (int64_t)g->cg->weights->w[e].offset));
}

/* The fast kernels for a pair of formats at reduction K: qkern.h's templates (ops_qk.c in the
 * runtime bitcode) called with the pair's constants and K's block count, which the inliner
 * folds — one (avx512, portable) pair of functions per distinct (spec, nb) in the model, as
 * the C backend's BQ_QK_DEFINE. The avx512 one exists only for targets with AVX-512 VNNI. */
static void kernel_for(Lv *lv, const bq_format *fa, const bq_format *fw, int64_t K, LLVMValueRef *avx512,
                       LLVMValueRef *portable)
{
    bq_qk_spec sp = bq_qk_spec_of(fa, fw);
    int64_t nb = (K + sp.block - 1) / sp.block;
    for (int i = 0; i < lv->nkernels; i++)
        if (memcmp(&lv->kernels[i].sp, &sp, sizeof sp) == 0 && lv->kernels[i].nb == nb) {
            *avx512 = lv->kernels[i].avx512, *portable = lv->kernels[i].portable;
            return;
        }
    if (lv->nkernels == LV_MAX_KERNELS) unreachable("too many distinct quantised kernels");
    LLVMBasicBlockRef at = LLVMGetInsertBlock(lv->b);
    LLVMValueRef made[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        const char *tmpl = k == 0 ? "bq_qk_template_avx512" : "bq_qk_template_portable";
        if (k == 0 && !lv->avx512) continue;
        char id[256], name[256], an[32], wn[32];
        bq_format_name(fa, an, sizeof an);
        bq_format_name(fw, wn, sizeof wn);
        snprintf(id, sizeof id, "%s_qk_%s_%s_k%lld_%s", lv->cg->o->name, wn, an, (long long)K, k ? "portable" : "avx512");
        cg_ident(id, name, sizeof name);
        LLVMTypeRef p = lv->ptr;
        LLVMValueRef f = lv_function(lv, name, lv->vd, &p, 1, false);
        LLVMValueRef t = LLVMGetNamedFunction(lv->mod, tmpl);
        LLVMAttributeRef feat = t ? LLVMGetStringAttributeAtIndex(t, LLVMAttributeFunctionIndex, "target-features", 15) : NULL;
        if (feat) LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, feat);   /* the template's ISA, to inline it */
        LLVMValueRef a[8] = {LLVMGetParam(f, 0), lv_i32(lv, sp.kind), lv_i32(lv, sp.cls), lv_i32(lv, sp.lut),
                             lv_i32(lv, sp.skind), lv_i32(lv, sp.p2), lv_i32(lv, sp.block), lv_i64(lv, nb)};
        lv_call(lv, tmpl, a, 8);
        LLVMBuildRetVoid(lv->b);
        made[k] = f;
    }
    LLVMPositionBuilderAtEnd(lv->b, at);
    lv->kernels[lv->nkernels++] = (LvKernel){sp, nb, made[0] ? made[0] : LLVMConstNull(lv->ptr), made[1]};
    *avx512 = lv->kernels[lv->nkernels - 1].avx512, *portable = made[1];
}

static bool emit_linear(G *g, const IrNode *n)
{
    Lv *lv = g->lv;
    CgGraph *cg = g->cg;
    const IrType *x = ty(g, n->in[0]), *w = ty(g, n->in[1]);
    if (x->dtype != DT_F32) return unsupported(g, n, "a non-f32 Linear");
    const IrValue *wv = &cg->g->vals[n->in[1]];
    int tb = (int)n->attr.linear.trans_b;
    bool packed = w->dtype == DT_U8;
    if (packed && !IR_DIM_IS_CONST(x->dims[x->rank - 1])) return unsupported(g, n, "a quantised Linear of unknown width");
    int64_t K = packed ? x->dims[x->rank - 1] : tb ? w->dims[1] : w->dims[0];
    int64_t N = packed || tb ? w->dims[0] : w->dims[1];
    LLVMValueRef bias = LLVMConstNull(lv->ptr);
    if (n->nin > 2 && n->in[2] != IR_NONE) {
        if (!ir_format_is_fp32(&n->attr.linear.bias_format) && ty(g, n->in[2])->dtype == DT_F32)
            bias = weight_ptr(g, cg_weight_xform(cg->weights, cg->m->arena, &cg->g->vals[n->in[2]], CG_X_ROUND,
                                                 &n->attr.linear.bias_format, 0, 0, 0));
        else bias = vptr(g, n->in[2]);
    }
    LLVMValueRef M = numel(g, x, 0, x->rank - 1), X = vptr(g, n->in[0]), Y = vptr(g, n->out[0]);
    if (!cg_linear_quantised(n)) {
        int e = cg_weight(cg->weights, wv, true, N, K, tb);
        LLVMValueRef a[12] = {g->isa, g->pool, X, lv_i64(lv, K), weight_ptr(g, e), bias, lv_i32(lv, (int)n->attr.linear.relu),
                              Y, lv_i64(lv, N), M, lv_i64(lv, N), lv_i64(lv, K)};
        lv_call(lv, "bq_matmul_f32_packed", a, 12);
        return true;
    }
    /* The weight in the blob as cg_plan.c stored it: packed for a fast kernel instantiated
     * for this (formats, K), or the rows bq_qmatmul reads. */
    bool qk;
    LLVMValueRef wp = weight_ptr(g, cg_linear_qweight(cg, n, N, K, &qk));
    LLVMValueRef fa = lv_global(lv, format_const(lv, &n->attr.linear.input_format), "fa");
    LLVMValueRef fw = lv_global(lv, format_const(lv, &n->attr.linear.weight_format), "fw");
    LLVMValueRef a[16] = {g->isa, g->pool, fa, X, lv_i64(lv, K), fw, wp, bias, lv_i32(lv, (int)n->attr.linear.relu),
                          Y, lv_i64(lv, N), M, lv_i64(lv, N), lv_i64(lv, K)};
    if (qk) {
        kernel_for(lv, &n->attr.linear.input_format, &n->attr.linear.weight_format, K, &a[14], &a[15]);
        check_status(g, lv_call(lv, "bq_qk_matmul_spec", a, 16));
    } else {
        check_status(g, lv_call(lv, "bq_qmatmul", a, 14));
    }
    return true;
}

static bool emit_matmul(G *g, const IrNode *n)
{
    const IrType *a = ty(g, n->in[0]), *b = ty(g, n->in[1]), *c = ty(g, n->out[0]);
    if (a->dtype != DT_F32 || a->rank < 2 || b->rank < 2) return unsupported(g, n, "MatMul other than f32 with rank >= 2");
    IrDim M = a->dims[a->rank - 2], K = a->dims[a->rank - 1], N = b->dims[b->rank - 1];
    bool bbatch = b->rank > 2;
    if (bbatch && (b->rank != a->rank || c->rank != a->rank)) return unsupported(g, n, "MatMul with broadcast batch dimensions");
    for (int d = 0; bbatch && d < a->rank - 2; d++)
        if (a->dims[d] != b->dims[d]) return unsupported(g, n, "MatMul with broadcast batch dimensions");
    IrModel *m = g->cg->m;
    LLVMValueRef args[12] = {g->isa, g->pool, vptr(g, n->in[0]), vptr(g, n->in[1]), vptr(g, n->out[0]),
                             numel(g, a, 0, a->rank - 2), dim(g, ir_dim_mul(m, M, K)),
                             bbatch ? dim(g, ir_dim_mul(m, K, N)) : lv_i64(g->lv, 0), dim(g, ir_dim_mul(m, M, N)),
                             dim(g, M), dim(g, N), dim(g, K)};
    lv_call(g->lv, "bq_matmul_batched_f32", args, 12);
    return true;
}

static bool emit_layernorm(G *g, const IrNode *n)
{
    const IrType *x = ty(g, n->in[0]);
    int ax = axis_of(n->attr.layernorm.axis, x->rank);
    if (x->dtype != DT_F32 || ax != x->rank - 1 || n->nout > 1)
        return unsupported(g, n, "LayerNormalization other than f32 over the last axis with one output");
    Lv *lv = g->lv;
    LLVMValueRef a[7] = {vptr(g, n->in[0]), vptr(g, n->in[1]),
                         n->nin > 2 && n->in[2] != IR_NONE ? vptr(g, n->in[2]) : LLVMConstNull(lv->ptr),
                         LLVMConstReal(lv->f32, n->attr.layernorm.epsilon), vptr(g, n->out[0]),
                         numel(g, x, 0, x->rank - 1), dim(g, x->dims[x->rank - 1])};
    lv_call(lv, "bq_layernorm_f32", a, 7);
    return true;
}

static bool emit_softmax(G *g, const IrNode *n)
{
    const IrType *x = ty(g, n->in[0]);
    if (n->op != OP_SOFTMAX || x->dtype != DT_F32 || axis_of(n->attr.axis.axis, x->rank) != x->rank - 1)
        return unsupported(g, n, "Softmax other than f32 over the last axis");
    LLVMValueRef a[4] = {vptr(g, n->out[0]), vptr(g, n->in[0]), numel(g, x, 0, x->rank - 1), dim(g, x->dims[x->rank - 1])};
    lv_call(g->lv, "bq_softmax_copy_f32", a, 4);
    return true;
}

static LLVMValueRef model_ptr(G *g, const char *accessor, int k)
{
    LLVMValueRef a[2] = {g->m, lv_i32(g->lv, k)};
    return lv_call(g->lv, accessor, a, 2);
}

static bool emit_attention(G *g, const IrNode *n)
{
    Lv *lv = g->lv;
    const IrType *q = ty(g, n->in[0]);
    int64_t H = n->attr.attention.num_heads;
    if (!IR_DIM_IS_CONST(q->dims[2])) return unsupported(g, n, "attention with an unknown model width");
    int64_t E = q->dims[2], D = E / H;
    if (ty(g, n->in[3])->dtype != DT_I64) return unsupported(g, n, "an attention mask that is not i64");
    if (!g->cg->decode && n->nin > 4 && n->nout < 3) return unsupported(g, n, "attention with past but without present outputs");
    const bq_format *f[4] = {&n->attr.attention.qk_input_format, &n->attr.attention.qk_weight_format,
                             &n->attr.attention.pv_input_format, &n->attr.attention.pv_weight_format};
    bool quant = !ir_format_is_fp32(f[0]) || !ir_format_is_fp32(f[1]) || !ir_format_is_fp32(f[2]) || !ir_format_is_fp32(f[3]);
    LLVMValueRef a[24];
    unsigned k = 0;
    a[k++] = g->isa;
    a[k++] = g->pool;
    if (quant) {
        bq_attn_formats af = {*f[0], *f[1], *f[2], *f[3]};
        a[k++] = lv_global(lv, lv_attn_formats(lv, &af), "attn_formats");
    }
    a[k++] = vptr(g, n->in[0]);
    a[k++] = vptr(g, n->in[1]);
    a[k++] = vptr(g, n->in[2]);
    a[k++] = lv_i64(lv, E);
    LLVMValueRef mask = vptr(g, n->in[3]), causal = lv_i32(lv, (int)n->attr.attention.causal);
    LLVMValueRef scale = LLVMConstReal(lv->f32, n->attr.attention.scale);
    LLVMValueRef B = dim(g, q->dims[0]), S = dim(g, q->dims[1]);
    const char *fn;
    if (g->cg->decode) {
        int slot = g->cg->vals[n->in[4]].index;
        a[k++] = mask, a[k++] = causal, a[k++] = scale;
        a[k++] = model_ptr(g, "bq_gm_kv", slot);
        a[k++] = model_ptr(g, "bq_gm_kv", slot + 1);
        if (quant) a[k++] = model_ptr(g, "bq_gm_qkv", slot / 2);   /* planned from the desc's layer_fmt */
        a[k++] = lv_call(lv, "bq_gm_max_ctx", &g->m, 1);
        a[k++] = vptr(g, n->out[0]);
        a[k++] = B, a[k++] = S, a[k++] = dim(g, ty(g, n->in[4])->dims[2]);
        fn = quant ? "bq_attention_cached_q_f32" : "bq_attention_cached_f32";
    } else {
        bool past = n->nin > 4;
        a[k++] = past ? vptr(g, n->in[4]) : LLVMConstNull(lv->ptr);
        a[k++] = past ? vptr(g, n->in[5]) : LLVMConstNull(lv->ptr);
        a[k++] = mask, a[k++] = causal, a[k++] = scale;
        a[k++] = past ? vptr(g, n->out[1]) : model_ptr(g, "bq_gm_kvtmp", 0);
        a[k++] = past ? vptr(g, n->out[2]) : model_ptr(g, "bq_gm_kvtmp", 1);
        a[k++] = vptr(g, n->out[0]);
        a[k++] = B, a[k++] = S, a[k++] = past ? dim(g, ty(g, n->in[4])->dims[2]) : lv_i64(lv, 0);
        fn = quant ? "bq_attention_q_f32" : "bq_attention_f32";
    }
    a[k++] = lv_i64(lv, H);
    a[k++] = lv_i64(lv, D);
    a[k++] = lv_call(lv, "bq_gm_scratch", &g->m, 1);
    LLVMValueRef s = lv_call(lv, fn, a, k);
    if (quant) check_status(g, s);
    return true;
}

/* ---- dispatch ---- */

typedef bool (*EmitFn)(G *, const IrNode *);
static const EmitFn emitters[OP__COUNT] = CG_OP_EMITTERS;

static bool emit_node(G *g, IrId id)
{
    const IrNode *n = &g->cg->g->nodes[id];
    bool needed = false;
    for (uint32_t k = 0; k < n->nout; k++) {
        StoreKind s = g->cg->vals[n->out[k]].kind;
        needed |= s != SK_STATIC && s != SK_LOCAL && s != SK_NONE;
    }
    if (!needed) return true;
    if (!emitters[n->op]) {
        char why[64];
        snprintf(why, sizeof why, "op %s", ir_ops[n->op].name);
        return unsupported(g, n, why);
    }
    return emitters[n->op](g, n);
}

static bool check_graph(const CgGraph *cg)
{
    const IrGraph *g = cg->g;
    IrModel *m = cg->m;
    for (uint32_t v = 0; v < g->nvals; v++) {
        StoreKind k = cg->vals[v].kind;
        if ((k == SK_BUFFER || k == SK_OUTPUT || k == SK_INPUT) && !tsuffix(g->vals[v].type.dtype))
            return diag_error(m->diag, m->path, "the LLVM backend does not support element type %s ('%s')",
                              ir_dtype_name(g->vals[v].type.dtype), g->vals[v].name);
        if (k == SK_BUFFER || k == SK_OUTPUT)
            for (int d = 0; d < g->vals[v].type.rank; d++)
                if (!cg_dim(cg, g->vals[v].type.dims[d]))
                    return diag_error(m->diag, m->path, "the LLVM backend needs known extents: '%s' has a data-dependent shape",
                                      g->vals[v].name);
    }
    return true;
}

static void load_syms(Lv *lv, const IrModel *m, LLVMValueRef symp, LLVMValueRef *sym)
{
    for (uint32_t s = 0; s < m->dims.nsyms; s++) {
        LLVMValueRef ix = lv_i64(lv, s);
        sym[s] = LLVMBuildLoad2(lv->b, lv->i64, LLVMBuildGEP2(lv->b, lv->i64, symp, &ix, 1, ""), m->dims.sym[s]);
    }
}

LLVMValueRef lv_emit_units(Lv *lv, CgGraph *cg)
{
    char name[256];
    snprintf(name, sizeof name, "%s_units_%s", lv->cg->o->name, cg->fn);
    LLVMTypeRef p[2] = {lv->ptr, lv->ptr};
    LLVMValueRef f = lv_function(lv, name, lv->vd, p, 2, false);
    LLVMValueRef sym[IR_MAX_SYMS];
    load_syms(lv, cg->m, LLVMGetParam(f, 0), sym);
    for (int r = 0; r < cg->nregions; r++) {
        LLVMValueRef u = LLVMBuildMul(lv->b, lv_i64(lv, 64), lv_dim(lv, cg->m, cg->regions[r].unit, sym), "");
        LLVMValueRef ix = lv_i64(lv, r);
        LLVMBuildStore(lv->b, u, LLVMBuildGEP2(lv->b, lv->i64, LLVMGetParam(f, 1), &ix, 1, ""));
    }
    LLVMBuildRetVoid(lv->b);
    return f;
}

LLVMValueRef lv_emit_graph(Lv *lv, CgGraph *cg, int which)
{
    if (!check_graph(cg)) return NULL;
    char name[256];
    snprintf(name, sizeof name, "%s_graph_%s", lv->cg->o->name, cg->fn);
    LLVMTypeRef p[4] = {lv->ptr, lv->ptr, lv->ptr, lv->ptr};
    G g = {.lv = lv, .cg = cg, .which = which};
    g.fn = lv_function(lv, name, lv->i32, p, 4, false);
    g.m = LLVMGetParam(g.fn, 0);
    g.in = LLVMGetParam(g.fn, 2);
    g.out = LLVMGetParam(g.fn, 3);
    g.entry = LLVMCreateBuilderInContext(lv->ctx);
    g.ptr = calloc(cg->g->nvals + 1, sizeof *g.ptr);
    if (!g.ptr) unreachable("out of memory");
    load_syms(lv, cg->m, LLVMGetParam(g.fn, 1), g.sym);
    g.wbase = lv_call(lv, "bq_gm_weights", &g.m, 1);
    g.isa = lv_call(lv, "bq_gm_isa", &g.m, 1);
    g.pool = lv_call(lv, "bq_gm_pool", &g.m, 1);
    for (int r = 0; r < cg->nregions; r++) {
        g.unit[r] = LLVMBuildMul(lv->b, lv_i64(lv, 64), dim(&g, cg->regions[r].unit), "");
        LLVMValueRef a[3] = {g.m, lv_i32(lv, which), lv_i32(lv, r)};
        LLVMValueRef cap = lv_call(lv, "bq_gm_region_cap", a, 3);
        lv_return_if(lv, LLVMBuildICmp(lv->b, LLVMIntSGT, g.unit[r], cap, ""), lv_i32(lv, BQ_ERR_CAPACITY));
        g.base[r] = lv_call(lv, "bq_gm_region", a, 3);
    }
    bool ok = true;
    for (uint32_t i = 0; i < cg->g->nnodes && ok; i++) ok = emit_node(&g, i);
    if (ok) LLVMBuildRet(lv->b, lv_i32(lv, BQ_OK));
    LLVMDisposeBuilder(g.entry);
    free(g.ptr);
    return ok ? g.fn : NULL;
}
