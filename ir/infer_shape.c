/* infer_shape.c — inference for the ops that read or rearrange shapes: Shape, Size, Reshape,
 * Flatten, Squeeze, Unsqueeze, Transpose.
 *
 * Shape turns extents into known values (possibly symbolic: [batch, seq, 768]) and Reshape
 * turns known values back into extents, so a target shape computed from Shape() of another
 * tensor comes out as f32[batch, seq, 12, 64] rather than four unknowns. Known values pass
 * through every op here unchanged (they only re-view the elements), except Transpose, which
 * permutes them.
 */
#include "ir.h"

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static void fresh_dims(IrModel *m, IrType *t)
{
    for (int i = 0; i < t->rank; i++) t->dims[i] = ir_dim_fresh(m);
}

/* Known values of a data-movement op whose output keeps the input's element order. */
static void pass_values(const IrSVal *in, const IrType *out, IrSVal *outval)
{
    if (in && ir_infer_has_values(out) && in->n == ir_type_numel(out)) *outval = *in;
}

bool infer_shape(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                 IrSVal *outval)
{
    out[0] = (IrType){.dtype = DT_I64, .rank = 1};
    int64_t r = in[0]->rank;
    if (r < 0) {
        out[0].dims[0] = ir_dim_fresh(c->m);
        return true;
    }
    int64_t s = n->attr.shape.start, e = n->attr.shape.end;
    s = clamp(s < 0 ? s + r : s, 0, r);
    e = clamp(e < 0 ? e + r : e, 0, r);
    int64_t len = e > s ? e - s : 0;
    out[0].dims[0] = len;
    for (int64_t i = 0; i < len; i++) outval[0].v[i] = in[0]->dims[s + i];
    outval[0].n = len;
    return true;
}

bool infer_size(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                IrSVal *outval)
{
    out[0] = (IrType){.dtype = DT_I64, .rank = 0};
    if (in[0]->rank < 0) return true;
    IrDim p = 1;
    for (int i = 0; i < in[0]->rank; i++)
        if (!ir_infer_vmul(c->m, p, in[0]->dims[i], &p)) return true;
    outval[0].v[0] = p;
    outval[0].n = 1;
    return true;
}

/* The length of a 1-D operand (a shape, axes), or -1 when it is not known. */
static int64_t vector_len(const IrType *t)
{
    return t->rank == 1 && IR_DIM_IS_CONST(t->dims[0]) ? t->dims[0] : -1;
}

static bool check_rank(IrInferCtx *c, int64_t r)
{
    if (r > IR_MAX_RANK) return ir_infer_error(c, "the result would have rank %lld; bqc supports up to %d", (long long)r, IR_MAX_RANK);
    return true;
}

/* Reshape's -1: the input's element count over the product of the other extents. */
static bool reshape_infer(IrInferCtx *c, const IrType *x, IrType *o, int neg, IrDim known)
{
    IrDim total = x->rank >= 0 ? ir_infer_prod(c->m, x, 0, x->rank) : ir_dim_fresh(c->m);
    if (known == 0) return ir_infer_error(c, "cannot infer -1 next to a zero extent");
    if (IR_DIM_IS_CONST(total) && IR_DIM_IS_CONST(known) && total % known != 0)
        return ir_infer_error(c, "cannot reshape %s: %lld elements are not a multiple of %lld", ir_infer_tstr(c, x).s,
                              (long long)total, (long long)known);
    o->dims[neg] = ir_dim_div(c->m, total, known);
    return true;
}

/* The extents the shape values name: 0 copies the input's (unless allowzero); the position
 * of a -1 goes to *neg, and *known is the product of the others. */
static bool reshape_dims(IrInferCtx *c, const IrNode *n, const IrType *x, const IrSVal *sv, IrType *o, int *neg,
                         IrDim *known)
{
    *neg = -1;
    *known = 1;
    for (int i = 0; i < o->rank; i++) {
        IrDim e = sv->v[i], d = e;
        if (e == -1) {
            if (*neg >= 0) return ir_infer_error(c, "the shape has more than one -1");
            *neg = i;
            continue;
        }
        if (IR_DIM_IS_CONST(e) && e < -1) return ir_infer_error(c, "invalid shape element %lld", (long long)e);
        if (e == 0 && !n->attr.reshape.allowzero) {
            if (x->rank >= 0 && i >= x->rank)
                return ir_infer_error(c, "shape element %d is 0 (copy) but the input %s has no dimension %d", i,
                                      ir_infer_tstr(c, x).s, i);
            d = x->rank >= 0 ? x->dims[i] : ir_dim_fresh(c->m);
        }
        o->dims[i] = d;
        *known = ir_dim_mul(c->m, *known, d);
    }
    return true;
}

bool infer_reshape(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                   IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_vector(c, in[1], "the shape", IR_TC_I64)) return false;
    int64_t r = vector_len(in[1]);
    out[0] = (IrType){.dtype = x->dtype, .rank = -1};
    if (r < 0) return true;
    if (!check_rank(c, r)) return false;
    out[0].rank = (int8_t)r;
    if (!inval[1]) {
        fresh_dims(c->m, &out[0]);
        return true;
    }
    int neg;
    IrDim known;
    if (!reshape_dims(c, n, x, inval[1], &out[0], &neg, &known)) return false;
    if (neg >= 0) {
        if (!reshape_infer(c, x, &out[0], neg, known)) return false;
    } else if (x->rank >= 0) {
        IrDim total = ir_infer_prod(c->m, x, 0, x->rank);
        if (IR_DIM_IS_CONST(total) && IR_DIM_IS_CONST(known) && total != known)
            return ir_infer_error(c, "cannot reshape %s (%lld elements) to %s (%lld elements)", ir_infer_tstr(c, x).s,
                                  (long long)total, ir_infer_tstr(c, &out[0]).s, (long long)known);
    }
    pass_values(inval[0], &out[0], &outval[0]);
    return true;
}

bool infer_flatten(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                   IrSVal *outval)
{
    const IrType *x = in[0];
    out[0] = (IrType){.dtype = x->dtype, .rank = 2};
    if (x->rank < 0) {
        fresh_dims(c->m, &out[0]);
        return true;
    }
    int64_t axis = n->attr.axis.axis, r = x->rank;
    if (axis < -r || axis > r)
        return ir_infer_error(c, "axis %lld is out of range for rank %lld", (long long)axis, (long long)r);
    if (axis < 0) axis += r;
    out[0].dims[0] = ir_infer_prod(c->m, x, 0, (int)axis);
    out[0].dims[1] = ir_infer_prod(c->m, x, (int)axis, (int)r);
    pass_values(inval[0], &out[0], &outval[0]);
    return true;
}

/* Without axes, Squeeze drops the extents that are 1: unknowable for symbolic extents. */
static void squeeze_all(const IrType *x, IrType *o)
{
    o->rank = 0;
    for (int i = 0; i < x->rank; i++) {
        if (!IR_DIM_IS_CONST(x->dims[i])) {
            o->rank = -1;
            return;
        }
        if (x->dims[i] != 1) o->dims[o->rank++] = x->dims[i];
    }
}

bool infer_squeeze(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                   IrSVal *outval)
{
    const IrType *x = in[0];
    const IrType *axes = n->nin > 1 ? in[1] : NULL;
    if (axes && !ir_infer_vector(c, axes, "axes", IR_TC_I64)) return false;
    out[0] = (IrType){.dtype = x->dtype, .rank = -1};
    if (x->rank < 0) return true;
    if (!axes) {
        squeeze_all(x, &out[0]);
    } else if (!ir_infer_sval_const(inval[1])) {
        int64_t k = vector_len(axes);
        if (k >= 0 && k <= x->rank) {
            out[0].rank = (int8_t)(x->rank - k);
            fresh_dims(c->m, &out[0]);
        }
    } else {
        uint32_t mask;
        if (!ir_infer_axes(c, inval[1]->v, inval[1]->n, x->rank, &mask)) return false;
        out[0].rank = 0;
        for (int i = 0; i < x->rank; i++) {
            IrDim d = x->dims[i];
            if (!(mask & (1u << i))) out[0].dims[out[0].rank++] = d;
            else if (IR_DIM_IS_CONST(d) && d != 1)
                return ir_infer_error(c, "cannot squeeze axis %d of %s: its extent is not 1", i, ir_infer_tstr(c, x).s);
        }
    }
    pass_values(inval[0], &out[0], &outval[0]);
    return true;
}

bool infer_unsqueeze(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                     IrType *out, IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_vector(c, in[1], "axes", IR_TC_I64)) return false;
    out[0] = (IrType){.dtype = x->dtype, .rank = -1};
    int64_t k = vector_len(in[1]);
    if (x->rank < 0 || k < 0) return true;
    if (!check_rank(c, x->rank + k)) return false;
    int r = (int)(x->rank + k);
    out[0].rank = (int8_t)r;
    if (!ir_infer_sval_const(inval[1])) {
        fresh_dims(c->m, &out[0]);
        return true;
    }
    uint32_t mask;
    if (!ir_infer_axes(c, inval[1]->v, k, r, &mask)) return false;
    for (int i = 0, j = 0; i < r; i++) out[0].dims[i] = mask & (1u << i) ? 1 : x->dims[j++];
    pass_values(inval[0], &out[0], &outval[0]);
    return true;
}

static bool transpose_perm(IrInferCtx *c, const IrNode *n, int r, int *perm)
{
    const IrInts *p = &n->attr.transpose.perm;
    if (p->n == 0) {
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
        return true;
    }
    if (p->n != r) return ir_infer_error(c, "perm has %d entries for rank %d", p->n, r);
    uint32_t seen = 0;
    for (int i = 0; i < r; i++) {
        if (p->v[i] < 0 || p->v[i] >= r || (seen & (1u << p->v[i])))
            return ir_infer_error(c, "perm is not a permutation of 0..%d", r - 1);
        seen |= 1u << p->v[i];
        perm[i] = (int)p->v[i];
    }
    return true;
}

bool infer_transpose(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                     IrType *out, IrSVal *outval)
{
    const IrType *x = in[0];
    out[0] = *x;
    if (x->rank < 0) return true;
    int perm[IR_MAX_RANK];
    if (!transpose_perm(c, n, x->rank, perm)) return false;
    for (int i = 0; i < x->rank; i++) out[0].dims[i] = x->dims[perm[i]];
    if (!inval[0] || !ir_infer_has_values(&out[0])) return true;
    int64_t ne = ir_type_numel(&out[0]), oi[IR_MAX_RANK], ii[IR_MAX_RANK];
    for (int64_t f = 0; f < ne; f++) {
        ir_infer_unflatten(&out[0], f, oi);
        for (int i = 0; i < x->rank; i++) ii[perm[i]] = oi[i];
        outval[0].v[f] = inval[0]->v[ir_infer_flatten(x, ii)];
    }
    outval[0].n = ne;
    return true;
}
