/* infer_ew.c — inference for elementwise ops: unary ops, Dropout, Cast, the broadcasting
 * binary and variadic ops, Where.
 *
 * The shapes are the easy part (a copy, or numpy broadcasting). What matters here is the
 * known-value arithmetic on small integer tensors: exported shape logic computes target
 * shapes with Add/Sub/Mul/Div/Equal/Where on Shape() outputs, and folding those symbolically
 * (seq - 1, batch*seq, Equal(shape, -1) = false) is what keeps downstream shapes symbolic
 * instead of unknown. Per-op element types and value rules are rows of two tables.
 */
#include <assert.h>
#include <math.h>

#include "ir.h"

/* ---- unary ---- */

typedef bool (*UnaryVal)(IrModel *m, IrDim a, IrDim *r);

static bool uv_copy(IrModel *m, IrDim a, IrDim *r) { return *r = a, true; }
static bool uv_neg(IrModel *m, IrDim a, IrDim *r) { return ir_infer_vmul(m, a, -1, r); }

static bool uv_abs(IrModel *m, IrDim a, IrDim *r)
{
    if (IR_DIM_IS_CONST(a)) return *r = a < 0 ? -a : a, true;
    return ir_infer_nonneg(m, a) && (*r = a, true);
}

static bool uv_relu(IrModel *m, IrDim a, IrDim *r)
{
    if (IR_DIM_IS_CONST(a)) return *r = a < 0 ? 0 : a, true;
    return ir_infer_nonneg(m, a) && (*r = a, true);
}

static bool uv_sign(IrModel *m, IrDim a, IrDim *r)
{
    return IR_DIM_IS_CONST(a) && (*r = (a > 0) - (a < 0), true);
}

static bool uv_not(IrModel *m, IrDim a, IrDim *r) { return IR_DIM_IS_CONST(a) && (*r = a == 0, true); }

typedef struct UnaryRow { uint8_t types; int8_t min_rank; bool axis; UnaryVal val; } UnaryRow;
/*    op                 element types  min rank  axis attr  known values */
static const UnaryRow unary_rows[OP__COUNT] = {
    [OP_ABS]         = {IR_TC_NUM,   0, false, uv_abs},
    [OP_NEG]         = {IR_TC_NUM,   0, false, uv_neg},
    [OP_EXP]         = {IR_TC_FLOAT, 0, false, NULL},
    [OP_LOG]         = {IR_TC_FLOAT, 0, false, NULL},
    [OP_SQRT]        = {IR_TC_FLOAT, 0, false, NULL},
    [OP_RECIPROCAL]  = {IR_TC_FLOAT, 0, false, NULL},
    [OP_FLOOR]       = {IR_TC_FLOAT, 0, false, NULL},
    [OP_CEIL]        = {IR_TC_FLOAT, 0, false, NULL},
    [OP_ROUND]       = {IR_TC_FLOAT, 0, false, NULL},
    [OP_RELU]        = {IR_TC_NUM,   0, false, uv_relu},
    [OP_SIGMOID]     = {IR_TC_FLOAT, 0, false, NULL},
    [OP_TANH]        = {IR_TC_FLOAT, 0, false, NULL},
    [OP_ERF]         = {IR_TC_NUM,   0, false, NULL},
    [OP_SIN]         = {IR_TC_FLOAT, 0, false, NULL},
    [OP_COS]         = {IR_TC_FLOAT, 0, false, NULL},
    [OP_SIGN]        = {IR_TC_NUM,   0, false, uv_sign},
    [OP_SOFTPLUS]    = {IR_TC_FLOAT, 0, false, NULL},
    [OP_LEAKY_RELU]  = {IR_TC_FLOAT, 0, false, NULL},
    [OP_ELU]         = {IR_TC_FLOAT, 0, false, NULL},
    [OP_NOT]         = {IR_TC_BOOL,  0, false, uv_not},
    [OP_ISNAN]       = {IR_TC_FLOAT, 0, false, NULL},
    [OP_IDENTITY]    = {IR_TC_ANY,   0, false, uv_copy},
    [OP_TRILU]       = {IR_TC_ANY,   2, false, NULL},
    [OP_SOFTMAX]     = {IR_TC_FLOAT, 1, true,  NULL},
    [OP_LOG_SOFTMAX] = {IR_TC_FLOAT, 1, true,  NULL},
};

bool infer_unary(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                 IrSVal *outval)
{
    const UnaryRow *row = &unary_rows[n->op];
    assert(row->types && "op uses infer_unary without a row in unary_rows");
    if (!ir_infer_dtype(c, in[0], "the input", row->types)) return false;
    out[0] = *in[0];
    if (ir_ops[n->op].flags & F_BOOLOUT) out[0].dtype = DT_BOOL;
    /* Trilu's optional k, the only second input among these ops. */
    if (n->nin > 1 && in[1]) {
        if (!ir_infer_dtype(c, in[1], "k", IR_TC_I64)) return false;
        if (in[1]->rank > 0) return ir_infer_error(c, "k must be a scalar, got %s", ir_infer_tstr(c, in[1]).s);
    }
    if (in[0]->rank < 0) return true;
    if (in[0]->rank < row->min_rank)
        return ir_infer_error(c, "the input must have rank %d or more, got %s", row->min_rank, ir_infer_tstr(c, in[0]).s);
    int axis;
    if (row->axis && !ir_infer_axis(c, n->attr.axis.axis, in[0]->rank, &axis)) return false;
    if (row->val && inval[0] && ir_infer_has_values(&out[0])) {
        for (int64_t i = 0; i < inval[0]->n; i++)
            if (!row->val(c->m, inval[0]->v[i], &outval[0].v[i])) return true;
        outval[0].n = inval[0]->n;
    }
    return true;
}

bool infer_dropout(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                   IrType *out, IrSVal *outval)
{
    if (!ir_infer_dtype(c, in[0], "the input", IR_TC_FLOAT)) return false;
    static const char *const what[3] = {NULL, "ratio", "training_mode"};
    static const unsigned types[3] = {0, IR_TC_FLOAT, IR_TC_BOOL};
    for (uint32_t k = 1; k < n->nin; k++) {
        if (!in[k]) continue;
        if (!ir_infer_dtype(c, in[k], what[k], types[k])) return false;
        if (in[k]->rank > 0) return ir_infer_error(c, "%s must be a scalar, got %s", what[k], ir_infer_tstr(c, in[k]).s);
    }
    out[0] = *in[0];
    if (n->nout > 1) {
        out[1] = *in[0];
        out[1].dtype = DT_BOOL;
    }
    return true;
}

/* ---- Cast ---- */

static bool dtype_signed(IrDType t) { return t == DT_I8 || t == DT_I16 || t == DT_I32 || t == DT_I64; }

/* An integer value converted to `to` with C's (two's complement) wrap-around. */
static bool cast_int(IrModel *m, IrDim x, IrDType to, IrDim *r)
{
    if (!IR_DIM_IS_CONST(x)) {
        /* Symbolic values are extents: they fit any type of 32 bits or more. */
        bool wide = to == DT_I64 || ((to == DT_I32 || to == DT_U32 || to == DT_U64) && ir_infer_nonneg(m, x));
        return wide && (*r = x, true);
    }
    if (to == DT_BOOL) return *r = x != 0, true;
    unsigned bits = (unsigned)ir_dtype_size(to) * 8;
    if (bits == 64) return (to == DT_I64 || x >= 0) && (*r = x, true);
    uint64_t u = (uint64_t)x & ((UINT64_C(1) << bits) - 1);
    if (dtype_signed(to) && (u >> (bits - 1))) *r = (int64_t)u - ((int64_t)1 << bits);
    else *r = (int64_t)u;
    return true;
}

/* Float to integer truncates toward zero; out-of-range values are undefined in ONNX, so
 * they stay unknown. */
static bool cast_float(IrModel *m, double f, IrDType to, IrDim *r)
{
    if (to == DT_BOOL) return *r = f != 0, true;
    if (!isfinite(f) || f <= -9223372036854775808.0 || f >= 9223372036854775808.0) return false;
    IrDim x = (IrDim)trunc(f), y;
    return IR_DIM_IS_CONST(x) && cast_int(m, x, to, &y) && y == x && (*r = x, true);
}

bool infer_cast(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                IrSVal *outval)
{
    int64_t to = n->op == OP_CAST ? n->attr.cast.to : (int64_t)in[1]->dtype;
    if (to <= DT_UNDEF || to >= DT__COUNT) return ir_infer_error(c, "unsupported target type %lld", (long long)to);
    out[0] = *in[0];
    out[0].dtype = (IrDType)to;
    if (!ir_infer_has_values(&out[0])) return true;
    int64_t ne = ir_type_numel(&out[0]);
    double f[IR_MAX_SVAL];
    if (inval[0]) {
        for (int64_t i = 0; i < ne; i++)
            if (!cast_int(c->m, inval[0]->v[i], out[0].dtype, &outval[0].v[i])) return true;
    } else if (ir_infer_const_f64(c, n, 0, f, IR_MAX_SVAL)) {
        for (int64_t i = 0; i < ne; i++)
            if (!cast_float(c->m, f[i], out[0].dtype, &outval[0].v[i])) return true;
    } else {
        return true;
    }
    outval[0].n = ne;
    return true;
}

/* ---- broadcasting binary and variadic ops ---- */

typedef bool (*BinaryVal)(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r);

static bool both_const(IrDim a, IrDim b) { return IR_DIM_IS_CONST(a) && IR_DIM_IS_CONST(b); }

static bool bv_add(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return ir_infer_vadd(m, a, b, r); }
static bool bv_sub(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return ir_infer_vsub(m, a, b, r); }
static bool bv_mul(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return ir_infer_vmul(m, a, b, r); }
static bool bv_div(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return ir_infer_vdiv(m, a, b, r); }

/* Integer Mod: fmod = 0 takes the divisor's sign (Python), fmod = 1 the dividend's (C). */
static bool bv_mod(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (!both_const(a, b) || b == 0) return false;
    IrDim x = a % b;
    if (!n->attr.mod.fmod && x != 0 && ((x < 0) != (b < 0))) x += b;
    return *r = x, true;
}

/* Extents are never negative, so an extent never equals a negative constant (the exported
 * Where(Equal(shape, -1), ...) guards rely on it). */
static bool bv_eq(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (a == b || both_const(a, b)) return *r = a == b, true;
    if ((IR_DIM_IS_CONST(a) && a < 0 && ir_infer_nonneg(m, b)) || (IR_DIM_IS_CONST(b) && b < 0 && ir_infer_nonneg(m, a)))
        return *r = 0, true;
    return false;
}

static bool bv_lt(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return both_const(a, b) && (*r = a < b, true); }
static bool bv_le(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return both_const(a, b) && (*r = a <= b, true); }
static bool bv_gt(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return both_const(a, b) && (*r = a > b, true); }
static bool bv_ge(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return both_const(a, b) && (*r = a >= b, true); }
static bool bv_and(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return both_const(a, b) && (*r = a && b, true); }
static bool bv_or(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return both_const(a, b) && (*r = a || b, true); }
static bool bv_xor(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r) { return both_const(a, b) && (*r = !a != !b, true); }

static bool bv_max(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (a == b || both_const(a, b)) return *r = a > b ? a : b, true;
    if (IR_DIM_IS_CONST(b) && b <= 0 && ir_infer_nonneg(m, a)) return *r = a, true;
    if (IR_DIM_IS_CONST(a) && a <= 0 && ir_infer_nonneg(m, b)) return *r = b, true;
    return false;
}

static bool bv_min(const IrNode *n, IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (a == b || both_const(a, b)) return *r = a < b ? a : b, true;
    if (IR_DIM_IS_CONST(b) && b <= 0 && ir_infer_nonneg(m, a)) return *r = b, true;
    if (IR_DIM_IS_CONST(a) && a <= 0 && ir_infer_nonneg(m, b)) return *r = a, true;
    return false;
}

typedef struct BinaryRow { uint8_t types; bool mixed; BinaryVal val; } BinaryRow;
/*    op                   element types  mixed (Pow's exponent)  known values */
static const BinaryRow binary_rows[OP__COUNT] = {
    [OP_ADD]           = {IR_TC_NUM,   false, bv_add},
    [OP_SUB]           = {IR_TC_NUM,   false, bv_sub},
    [OP_MUL]           = {IR_TC_NUM,   false, bv_mul},
    [OP_DIV]           = {IR_TC_NUM,   false, bv_div},
    [OP_POW]           = {IR_TC_NUM,   true,  NULL},
    [OP_MOD]           = {IR_TC_NUM,   false, bv_mod},
    [OP_EQUAL]         = {IR_TC_ANY,   false, bv_eq},
    [OP_LESS]          = {IR_TC_NUM,   false, bv_lt},
    [OP_LESS_EQUAL]    = {IR_TC_NUM,   false, bv_le},
    [OP_GREATER]       = {IR_TC_NUM,   false, bv_gt},
    [OP_GREATER_EQUAL] = {IR_TC_NUM,   false, bv_ge},
    [OP_AND]           = {IR_TC_BOOL,  false, bv_and},
    [OP_OR]            = {IR_TC_BOOL,  false, bv_or},
    [OP_XOR]           = {IR_TC_BOOL,  false, bv_xor},
    [OP_MAX]           = {IR_TC_NUM,   false, bv_max},
    [OP_MIN]           = {IR_TC_NUM,   false, bv_min},
    [OP_SUM]           = {IR_TC_NUM,   false, bv_add},
    [OP_MEAN]          = {IR_TC_FLOAT, false, NULL},
};

/* Folds the row's value rule over the inputs, element by element under broadcasting. */
static void binary_values(IrInferCtx *c, const IrNode *n, BinaryVal val, const IrType *const *in,
                          const IrSVal *const *inval, const IrType *out, IrSVal *outval)
{
    for (uint32_t k = 0; k < n->nin; k++)
        if (!inval[k]) return;
    int64_t ne = ir_type_numel(out);
    for (int64_t i = 0; i < ne; i++) {
        IrDim acc = inval[0]->v[ir_infer_bcast_offset(in[0], out, i)];
        for (uint32_t k = 1; k < n->nin; k++)
            if (!val(n, c->m, acc, inval[k]->v[ir_infer_bcast_offset(in[k], out, i)], &acc)) return;
        outval->v[i] = acc;
    }
    outval->n = ne;
}

bool infer_broadcast(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                     IrType *out, IrSVal *outval)
{
    const BinaryRow *row = &binary_rows[n->op];
    assert(row->types && "op uses infer_broadcast without a row in binary_rows");
    IrType acc = *in[0];
    for (uint32_t k = 0; k < n->nin; k++) {
        char what[32];
        snprintf(what, sizeof what, "input %u", k);
        if (!ir_infer_dtype(c, in[k], what, row->types)) return false;
        if (k > 0 && !row->mixed && in[k]->dtype != in[0]->dtype)
            return ir_infer_error(c, "input %u is %s but input 0 is %s", k, ir_dtype_name(in[k]->dtype),
                                  ir_dtype_name(in[0]->dtype));
        if (k > 0 && !ir_broadcast(c, &acc, in[k], &acc))
            return ir_infer_error(c, "cannot broadcast %s with %s", ir_infer_tstr(c, &acc).s, ir_infer_tstr(c, in[k]).s);
    }
    if (n->op == OP_MOD && ir_dtype_is_float(in[0]->dtype) && !n->attr.mod.fmod)
        return ir_infer_error(c, "fmod must be 1 for floating-point inputs");
    out[0] = acc;
    out[0].dtype = ir_ops[n->op].flags & F_BOOLOUT ? DT_BOOL : in[0]->dtype;
    if (row->val && ir_infer_has_values(&out[0])) binary_values(c, n, row->val, in, inval, &out[0], &outval[0]);
    return true;
}

/* ---- Where ---- */

bool infer_where(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                 IrSVal *outval)
{
    if (!ir_infer_dtype(c, in[0], "the condition", IR_TC_BOOL)) return false;
    if (in[1]->dtype != in[2]->dtype)
        return ir_infer_error(c, "the values are %s and %s; they must have one type", ir_dtype_name(in[1]->dtype),
                              ir_dtype_name(in[2]->dtype));
    IrType t;
    if (!ir_broadcast(c, in[0], in[1], &t) || !ir_broadcast(c, &t, in[2], &t))
        return ir_infer_error(c, "cannot broadcast %s, %s and %s", ir_infer_tstr(c, in[0]).s, ir_infer_tstr(c, in[1]).s,
                              ir_infer_tstr(c, in[2]).s);
    out[0] = t;
    out[0].dtype = in[1]->dtype;
    if (!inval[0] || !ir_infer_has_values(&out[0])) return true;
    int64_t ne = ir_type_numel(&out[0]);
    for (int64_t i = 0; i < ne; i++) {
        IrDim cond = inval[0]->v[ir_infer_bcast_offset(in[0], &out[0], i)];
        int k = cond != 0 ? 1 : 2;
        if (!IR_DIM_IS_CONST(cond) || !inval[k]) return true;
        outval[0].v[i] = inval[k]->v[ir_infer_bcast_offset(in[k], &out[0], i)];
    }
    outval[0].n = ne;
    return true;
}
