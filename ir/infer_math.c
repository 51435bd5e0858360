/* infer_math.c — inference for reductions, scans, matrix products and the fused ops:
 * ReduceX, ArgMax, CumSum, MatMul, Gemm, LayerNormalization, bqc.Linear, bqc.Attention.
 *
 * These are where a model's dimensions meet: a contraction's inner extents, attention's
 * heads × head size. Known extents that disagree are errors naming both; symbolic ones are
 * left to the interpreter, which checks them concretely. The fused ops check the contracts
 * in docs/ir.md that the fusion passes and the runtime kernels rely on.
 */
#include "ir.h"

static int64_t vector_len(const IrType *t)
{
    return t->rank == 1 && IR_DIM_IS_CONST(t->dims[0]) ? t->dims[0] : -1;
}

static void fresh_dims(IrModel *m, IrType *t)
{
    for (int i = 0; i < t->rank; i++) t->dims[i] = ir_dim_fresh(m);
}

/* ---- reductions ---- */

typedef bool (*ReduceVal)(IrModel *m, IrDim a, IrDim b, IrDim *r);

static bool rv_max(IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    return IR_DIM_IS_CONST(a) && IR_DIM_IS_CONST(b) && (*r = a > b ? a : b, true);
}

static bool rv_min(IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    return IR_DIM_IS_CONST(a) && IR_DIM_IS_CONST(b) && (*r = a < b ? a : b, true);
}

/* Known values of reducing a 1-D vector (ReduceProd(Shape(x)) counts elements). */
static const ReduceVal reduce_vals[OP__COUNT] = {
    [OP_REDUCE_SUM] = ir_infer_vadd,
    [OP_REDUCE_PROD] = ir_infer_vmul,
    [OP_REDUCE_MAX] = rv_max,
    [OP_REDUCE_MIN] = rv_min,
};

/* The reduced axes: ReduceSum (opset 13) takes them as an input, the others as an attribute.
 * *k < 0: unknown axes. */
static bool reduce_axes(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                        const int64_t **axes, int64_t *k)
{
    if (ir_ops[n->op].in_max < 2) {
        *axes = n->attr.reduce.axes.v;
        *k = n->attr.reduce.axes.n;
        return true;
    }
    if (n->nin < 2 || !in[1]) {
        *axes = NULL;
        *k = 0;
        return true;
    }
    if (!ir_infer_vector(c, in[1], "axes", IR_TC_I64)) return false;
    *axes = ir_infer_sval_const(inval[1]) ? inval[1]->v : NULL;
    *k = *axes ? inval[1]->n : -1;
    return true;
}

static void reduce_values(IrInferCtx *c, const IrNode *n, const IrType *x, const IrSVal *xv, IrType *o, IrSVal *ov)
{
    ReduceVal val = reduce_vals[n->op];
    if (!val || !xv || x->rank != 1 || xv->n < 1 || !ir_infer_has_values(o)) return;
    IrDim acc = xv->v[0];
    for (int64_t i = 1; i < xv->n; i++)
        if (!val(c->m, acc, xv->v[i], &acc)) return;
    ov->v[0] = acc;
    ov->n = 1;
}

bool infer_reduce(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_dtype(c, x, "the input", IR_TC_NUM)) return false;
    const int64_t *axes;
    int64_t k;
    if (!reduce_axes(c, n, in, inval, &axes, &k)) return false;
    bool keep = n->attr.reduce.keepdims != 0;
    out[0] = (IrType){.dtype = x->dtype, .rank = -1};
    if (x->rank < 0) return true;
    if (k < 0) {
        int64_t len = vector_len(in[1]);
        if (keep || (len >= 0 && len <= x->rank)) out[0].rank = (int8_t)(keep ? x->rank : x->rank - len);
        fresh_dims(c->m, &out[0]);
        return true;
    }
    uint32_t mask = (1u << x->rank) - 1;
    if (k == 0 && n->attr.reduce.noop_with_empty_axes) mask = 0;
    else if (k > 0 && !ir_infer_axes(c, axes, k, x->rank, &mask)) return false;
    out[0].rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!(mask & (1u << i))) out[0].dims[out[0].rank++] = x->dims[i];
        else if (keep) out[0].dims[out[0].rank++] = 1;
    }
    if (mask) reduce_values(c, n, x, inval[0], &out[0], &outval[0]);
    else if (inval[0]) outval[0] = *inval[0];
    return true;
}

bool infer_argmax(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_dtype(c, x, "the input", IR_TC_NUM)) return false;
    out[0] = (IrType){.dtype = DT_I64, .rank = -1};
    if (x->rank < 0) return true;
    int axis;
    if (!ir_infer_axis(c, n->attr.argmax.axis, x->rank, &axis)) return false;
    out[0].rank = 0;
    for (int i = 0; i < x->rank; i++)
        if (i != axis || n->attr.argmax.keepdims) out[0].dims[out[0].rank++] = i == axis ? 1 : x->dims[i];
    return true;
}

bool infer_cumsum(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_dtype(c, x, "the input", IR_TC_NUM) || !ir_infer_dtype(c, in[1], "axis", IR_TC_INDEX)) return false;
    if (in[1]->rank > 1 || (in[1]->rank == 1 && in[1]->dims[0] != 1))
        return ir_infer_error(c, "axis must be a scalar, got %s", ir_infer_tstr(c, in[1]).s);
    out[0] = *x;
    if (x->rank < 0 || !ir_infer_sval_const(inval[1])) return true;
    int axis;
    if (!ir_infer_axis(c, inval[1]->v[0], x->rank, &axis)) return false;
    if (!inval[0] || x->rank != 1 || !ir_infer_has_values(x)) return true;
    int64_t ne = inval[0]->n;
    bool rev = n->attr.cumsum.reverse != 0, excl = n->attr.cumsum.exclusive != 0;
    IrDim acc = 0;
    for (int64_t j = 0; j < ne; j++) {
        int64_t i = rev ? ne - 1 - j : j;
        IrDim next;
        if (!ir_infer_vadd(c->m, acc, inval[0]->v[i], &next)) return true;
        outval[0].v[i] = excl ? acc : next;
        acc = next;
    }
    outval[0].n = ne;
    return true;
}

/* ---- matrix products ---- */

static bool inner_dims(IrInferCtx *c, IrDim ka, IrDim kb)
{
    IrDim k;
    if (ir_infer_same_dim(c, ka, kb, &k)) return true;
    return ir_infer_error(c, "inner dimensions differ (%s vs %s)", ir_infer_dstr(c, ka).s, ir_infer_dstr(c, kb).s);
}

static bool same_float(IrInferCtx *c, const IrType *a, const IrType *b, const char *wa, const char *wb, unsigned tc)
{
    if (!ir_infer_dtype(c, a, wa, tc)) return false;
    if (b->dtype != a->dtype)
        return ir_infer_error(c, "%s is %s but %s is %s", wb, ir_dtype_name(b->dtype), wa, ir_dtype_name(a->dtype));
    return true;
}

/* numpy matmul: 1-D operands gain and then lose a unit dimension; batch dimensions broadcast. */
bool infer_matmul(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    const IrType *a = in[0], *b = in[1];
    if (!same_float(c, a, b, "A", "B", IR_TC_NUM)) return false;
    if (ir_infer_unranked(n, in, out, a->dtype)) return true;
    if (a->rank == 0 || b->rank == 0)
        return ir_infer_error(c, "operands must have rank 1 or more, got %s and %s", ir_infer_tstr(c, a).s,
                              ir_infer_tstr(c, b).s);
    int ra = a->rank, rb = b->rank;
    if (!inner_dims(c, a->dims[ra - 1], rb == 1 ? b->dims[0] : b->dims[rb - 2])) return false;
    IrType ba = {.dtype = a->dtype, .rank = (int8_t)(ra > 2 ? ra - 2 : 0)}, bb = {.dtype = b->dtype, .rank = (int8_t)(rb > 2 ? rb - 2 : 0)};
    for (int i = 0; i < ba.rank; i++) ba.dims[i] = a->dims[i];
    for (int i = 0; i < bb.rank; i++) bb.dims[i] = b->dims[i];
    if (!ir_broadcast(c, &ba, &bb, &out[0]))
        return ir_infer_error(c, "cannot broadcast the batch dimensions of %s and %s", ir_infer_tstr(c, a).s,
                              ir_infer_tstr(c, b).s);
    if (ra > 1) out[0].dims[out[0].rank++] = a->dims[ra - 2];
    if (rb > 1) out[0].dims[out[0].rank++] = b->dims[rb - 1];
    return true;
}

/* C broadcasts to the result [M, N], never the other way round. */
static bool gemm_c_fits(const IrType *cc, const IrType *o)
{
    if (cc->rank > 2) return false;
    for (int i = 0; i < cc->rank; i++) {
        IrDim d = cc->dims[cc->rank - 1 - i], od = o->dims[1 - i];
        if (d != 1 && d != od && IR_DIM_IS_CONST(d) && IR_DIM_IS_CONST(od)) return false;
    }
    return true;
}

bool infer_gemm(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                IrSVal *outval)
{
    const IrType *a = in[0], *b = in[1], *cc = n->nin > 2 ? in[2] : NULL;
    if (!same_float(c, a, b, "A", "B", IR_TC_NUM) || (cc && !same_float(c, a, cc, "A", "C", IR_TC_NUM))) return false;
    if (ir_infer_unranked(n, in, out, a->dtype)) return true;
    if (a->rank != 2 || b->rank != 2)
        return ir_infer_error(c, "A and B must be 2-D, got %s and %s", ir_infer_tstr(c, a).s, ir_infer_tstr(c, b).s);
    int ta = n->attr.gemm.trans_a != 0, tb = n->attr.gemm.trans_b != 0;
    if (!inner_dims(c, a->dims[1 - ta], b->dims[tb])) return false;
    out[0] = (IrType){.dtype = a->dtype, .rank = 2, .dims = {a->dims[ta], b->dims[1 - tb]}};
    if (cc && !gemm_c_fits(cc, &out[0]))
        return ir_infer_error(c, "C %s does not broadcast to the result %s", ir_infer_tstr(c, cc).s,
                              ir_infer_tstr(c, &out[0]).s);
    return true;
}

/* ---- normalisation ---- */

/* Scale and bias broadcast to the normalised dimensions x.dims[axis:]. */
static bool norm_param(IrInferCtx *c, const IrType *x, int axis, const IrType *p, const char *what)
{
    if (!same_float(c, x, p, "the input", what, IR_TC_FLOAT)) return false;
    if (p->rank < 0) return true;
    bool ok = p->rank <= x->rank - axis;
    for (int i = 0; ok && i < p->rank; i++) {
        IrDim d = p->dims[p->rank - 1 - i], xd = x->dims[x->rank - 1 - i];
        ok = d == 1 || d == xd || !IR_DIM_IS_CONST(d) || !IR_DIM_IS_CONST(xd);
    }
    if (!ok)
        return ir_infer_error(c, "%s %s does not match the normalized dimensions of %s (axis %d)", what,
                              ir_infer_tstr(c, p).s, ir_infer_tstr(c, x).s, axis);
    return true;
}

bool infer_layernorm(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                     IrType *out, IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_dtype(c, x, "the input", IR_TC_FLOAT)) return false;
    IrDType stash = ir_dtype_from_onnx((int)n->attr.layernorm.stash_type);
    if (!ir_dtype_is_float(stash))
        return ir_infer_error(c, "unsupported stash_type %lld", (long long)n->attr.layernorm.stash_type);
    out[0] = *x;
    for (uint32_t k = 1; k < n->nout; k++) out[k] = (IrType){.dtype = stash, .rank = x->rank};
    if (x->rank < 0) return true;
    int axis;
    if (!ir_infer_axis(c, n->attr.layernorm.axis, x->rank, &axis) || !norm_param(c, x, axis, in[1], "scale") ||
        (n->nin > 2 && in[2] && !norm_param(c, x, axis, in[2], "bias")))
        return false;
    for (uint32_t k = 1; k < n->nout; k++)
        for (int i = 0; i < x->rank; i++) out[k].dims[i] = i < axis ? x->dims[i] : 1;
    return true;
}

/* ---- bqc.Linear, bqc.Attention (docs/ir.md) ---- */

bool infer_linear(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    const IrType *x = in[0], *w = in[1], *bias = n->nin > 2 ? in[2] : NULL;
    /* A quantised weight (passes/quantise_weights.c) is u8 [N, bq_format_bytes(weight_format, K)]. */
    const bq_format *wf = &n->attr.linear.weight_format;
    bool packed = !ir_format_is_fp32(wf) && w->dtype == DT_U8;
    if (!same_float(c, x, packed ? x : w, "X", "W", IR_TC_FLOAT) ||
        (bias && !same_float(c, x, bias, "X", "the bias", IR_TC_FLOAT)))
        return false;
    if (ir_infer_unranked(n, in, out, x->dtype)) return true;
    if (x->rank < 1 || w->rank != 2)
        return ir_infer_error(c, "X must have rank 1 or more and W rank 2, got %s and %s", ir_infer_tstr(c, x).s,
                              ir_infer_tstr(c, w).s);
    int tb = n->attr.linear.trans_b != 0;
    IrDim nn = packed ? w->dims[0] : w->dims[1 - tb], nb, k = x->dims[x->rank - 1];
    if (packed && IR_DIM_IS_CONST(k) && IR_DIM_IS_CONST(w->dims[1]) && (uint64_t)w->dims[1] != bq_format_bytes(wf, k))
        return ir_infer_error(c, "the quantised weight has %lld bytes per row; %lld inputs need %zu",
                              (long long)w->dims[1], (long long)k, bq_format_bytes(wf, k));
    if (!packed && !inner_dims(c, k, w->dims[tb])) return false;
    if (bias && (bias->rank != 1 || !ir_infer_same_dim(c, nn, bias->dims[0], &nb)))
        return ir_infer_error(c, "the bias %s does not match the %s outputs", ir_infer_tstr(c, bias).s,
                              ir_infer_dstr(c, nn).s);
    out[0] = *x;
    out[0].dims[x->rank - 1] = nn;
    return true;
}

/* Merges extent d of `what` into *acc; an error when both are known and differ. */
static bool match(IrInferCtx *c, IrDim *acc, IrDim d, const char *what, const char *name)
{
    IrDim r;
    if (!ir_infer_same_dim(c, *acc, d, &r))
        return ir_infer_error(c, "%s of %s is %s, expected %s", what, name, ir_infer_dstr(c, d).s,
                              ir_infer_dstr(c, *acc).s);
    *acc = r;
    return true;
}

typedef struct AttnDims { IrDim b, s, hd, h, d, p; } AttnDims;

static bool attn_inputs(IrInferCtx *c, const IrNode *n, const IrType *const *in, AttnDims *a)
{
    static const char *const names[3] = {"q", "k", "v"};
    for (int k = 0; k < 3; k++) {
        if (!same_float(c, in[0], in[k], "q", names[k], IR_TC_FLOAT)) return false;
        if (in[k]->rank != 3) return ir_infer_error(c, "%s must be 3-D, got %s", names[k], ir_infer_tstr(c, in[k]).s);
    }
    *a = (AttnDims){in[0]->dims[0], in[0]->dims[1], in[0]->dims[2], n->attr.attention.num_heads, 0, 0};
    for (int k = 1; k < 3; k++)
        if (!match(c, &a->b, in[k]->dims[0], "the batch", names[k]) || !match(c, &a->s, in[k]->dims[1], "the sequence", names[k]) ||
            !match(c, &a->hd, in[k]->dims[2], "the hidden size", names[k]))
            return false;
    if (a->h < 1) return ir_infer_error(c, "num_heads must be positive, got %lld", (long long)a->h);
    if (IR_DIM_IS_CONST(a->hd) && a->hd % a->h != 0)
        return ir_infer_error(c, "hidden size %lld is not a multiple of num_heads %lld", (long long)a->hd, (long long)a->h);
    a->d = ir_dim_div(c->m, a->hd, a->h);
    return true;
}

static bool attn_past(IrInferCtx *c, const IrNode *n, const IrType *const *in, AttnDims *a)
{
    const IrType *pk = n->nin > 4 ? in[4] : NULL, *pv = n->nin > 5 ? in[5] : NULL;
    if (!pk && !pv) return true;
    if (!pk || !pv) return ir_infer_error(c, "past_k and past_v must be given together");
    static const char *const names[2] = {"past_k", "past_v"};
    const IrType *p[2] = {pk, pv};
    a->p = pk->dims[2];
    for (int k = 0; k < 2; k++) {
        if (!same_float(c, in[0], p[k], "q", names[k], IR_TC_FLOAT)) return false;
        if (p[k]->rank != 4) return ir_infer_error(c, "%s must be 4-D, got %s", names[k], ir_infer_tstr(c, p[k]).s);
        if (!match(c, &a->b, p[k]->dims[0], "the batch", names[k]) || !match(c, &a->h, p[k]->dims[1], "the head count", names[k]) ||
            !match(c, &a->p, p[k]->dims[2], "the past length", names[k]) || !match(c, &a->d, p[k]->dims[3], "the head size", names[k]))
            return false;
    }
    return true;
}

bool infer_attention(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                     IrType *out, IrSVal *outval)
{
    if (ir_infer_unranked(n, in, out, in[0]->dtype)) return true;
    AttnDims a = {0};
    if (!attn_inputs(c, n, in, &a) || !attn_past(c, n, in, &a)) return false;
    const IrType *mask = in[3];
    if (!ir_infer_dtype(c, mask, "the mask", IR_TC_I64)) return false;
    if (mask->rank != 2) return ir_infer_error(c, "the mask must be 2-D, got %s", ir_infer_tstr(c, mask).s);
    IrDim total = ir_dim_add(c->m, a.p, a.s), keys = total;
    if (!match(c, &a.b, mask->dims[0], "the batch", "the mask") || !match(c, &keys, mask->dims[1], "the key count", "the mask"))
        return false;
    out[0] = (IrType){.dtype = in[0]->dtype, .rank = 3, .dims = {a.b, a.s, a.hd}};
    for (uint32_t k = 1; k < n->nout; k++) out[k] = (IrType){.dtype = in[0]->dtype, .rank = 4, .dims = {a.b, a.h, total, a.d}};
    return true;
}
