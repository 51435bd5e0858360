/* infer_data.c — inference for the ops that select, join or make data: Concat, Split,
 * Gather, Slice, Expand, Tile, ConstantOfShape, Range.
 *
 * These are the ops of exported shape logic (Gather(Shape(x), 1), Concat of [batch] [seq]
 * [12] [64], Slice(mask, past, INT64_MAX), Range(0, seq)) as well as of the data path, so each
 * carries known values through when its inputs have them. Where a symbolic extent meets a
 * constant index (Slice's end, Range's limit), the result assumes the extent is large enough
 * for the index, as every exporter's shape logic does; the interpreter recomputes the exact
 * extent at run time. What depends on unknown data gets a fresh unknown.
 */
#include <math.h>
#include <string.h>

#include "ir.h"

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

static int64_t vector_len(const IrType *t)
{
    return t->rank == 1 && IR_DIM_IS_CONST(t->dims[0]) ? t->dims[0] : -1;
}

/* ---- Concat, Split ---- */

static bool concat_check(IrInferCtx *c, const IrNode *n, const IrType *const *in, int axis, IrType *o)
{
    *o = *in[0];
    for (uint32_t k = 1; k < n->nin; k++) {
        if (in[k]->rank != o->rank)
            return ir_infer_error(c, "input %u has rank %d but input 0 has rank %d", k, in[k]->rank, o->rank);
        for (int i = 0; i < o->rank; i++)
            if (i != axis && !ir_infer_same_dim(c, o->dims[i], in[k]->dims[i], &o->dims[i]))
                return ir_infer_error(c, "input %u (%s) and input 0 (%s) differ in dimension %d", k,
                                      ir_infer_tstr(c, in[k]).s, ir_infer_tstr(c, in[0]).s, i);
        o->dims[axis] = ir_dim_add(c->m, o->dims[axis], in[k]->dims[axis]);
    }
    return true;
}

bool infer_concat(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    for (uint32_t k = 1; k < n->nin; k++)
        if (in[k]->dtype != in[0]->dtype)
            return ir_infer_error(c, "input %u is %s but input 0 is %s", k, ir_dtype_name(in[k]->dtype),
                                  ir_dtype_name(in[0]->dtype));
    if (ir_infer_unranked(n, in, out, in[0]->dtype)) return true;
    if (in[0]->rank == 0) return ir_infer_error(c, "cannot concatenate scalars");
    int axis;
    if (!ir_infer_axis(c, n->attr.axis.axis, in[0]->rank, &axis) || !concat_check(c, n, in, axis, &out[0])) return false;
    for (uint32_t k = 0; k < n->nin; k++)
        if (!inval[k]) return true;
    if (!ir_infer_has_values(&out[0])) return true;
    /* Row-major: each input contributes one chunk per outer index. */
    int64_t outer = ir_infer_prod(c->m, &out[0], 0, axis), at = 0;
    for (int64_t o = 0; o < outer; o++)
        for (uint32_t k = 0; k < n->nin; k++) {
            int64_t chunk = inval[k]->n / outer;
            for (int64_t i = 0; i < chunk; i++) outval[0].v[at++] = inval[k]->v[o * chunk + i];
        }
    outval[0].n = at;
    return true;
}

/* The extents of Split's results along the axis, written into out[k].dims[axis]. */
static bool split_sizes(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                        int axis, IrType *out)
{
    IrDim d = in[0]->dims[axis];
    if (n->nin < 2 || !in[1]) {
        if (IR_DIM_IS_CONST(d) && d % n->nout != 0)
            return ir_infer_error(c, "cannot split extent %lld into %u equal parts", (long long)d, n->nout);
        for (uint32_t k = 0; k < n->nout; k++) out[k].dims[axis] = ir_dim_div(c->m, d, (IrDim)n->nout);
        return true;
    }
    if (!ir_infer_vector(c, in[1], "split", IR_TC_I64)) return false;
    int64_t len = vector_len(in[1]);
    if (len >= 0 && len != n->nout)
        return ir_infer_error(c, "split has %lld sizes for %u results", (long long)len, n->nout);
    IrDim sum = 0;
    for (uint32_t k = 0; k < n->nout; k++) {
        IrDim e = inval[1] ? inval[1]->v[k] : ir_dim_fresh(c->m);
        if (IR_DIM_IS_CONST(e) && e < 0) return ir_infer_error(c, "split size %lld is negative", (long long)e);
        out[k].dims[axis] = e;
        sum = ir_dim_add(c->m, sum, e);
    }
    if (IR_DIM_IS_CONST(sum) && IR_DIM_IS_CONST(d) && sum != d)
        return ir_infer_error(c, "split sizes add up to %lld but the axis has extent %lld", (long long)sum, (long long)d);
    return true;
}

bool infer_split(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                 IrSVal *outval)
{
    const IrType *x = in[0];
    if (ir_infer_unranked(n, in, out, x->dtype)) return true;
    if (x->rank == 0) return ir_infer_error(c, "cannot split a scalar");
    int axis;
    if (!ir_infer_axis(c, n->attr.axis.axis, x->rank, &axis)) return false;
    for (uint32_t k = 0; k < n->nout; k++) out[k] = *x;
    if (!split_sizes(c, n, in, inval, axis, out)) return false;
    if (!inval[0] || !ir_infer_has_values(x)) return true;
    for (uint32_t k = 0; k < n->nout; k++)
        if (!IR_DIM_IS_CONST(out[k].dims[axis])) return true;
    int64_t outer = ir_infer_prod(c->m, x, 0, axis), inner = ir_infer_prod(c->m, x, axis + 1, x->rank);
    int64_t row = inval[0]->n / (outer ? outer : 1), off = 0;
    for (uint32_t k = 0; k < n->nout; k++) {
        int64_t chunk = out[k].dims[axis] * inner;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < chunk; i++) outval[k].v[o * chunk + i] = inval[0]->v[o * row + off + i];
        outval[k].n = outer * chunk;
        off += chunk;
    }
    return true;
}

/* ---- Gather ---- */

static bool gather_indices(IrInferCtx *c, const IrSVal *iv, IrDim d, int axis, int64_t *idx)
{
    for (int64_t i = 0; i < iv->n; i++) {
        idx[i] = iv->v[i];
        if (!IR_DIM_IS_CONST(d)) continue;
        if (idx[i] < -d || idx[i] >= d)
            return ir_infer_error(c, "index %lld is out of range for axis %d of extent %lld", (long long)idx[i], axis,
                                  (long long)d);
        if (idx[i] < 0) idx[i] += d;
    }
    return true;
}

bool infer_gather(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    const IrType *x = in[0], *ind = in[1];
    if (!ir_infer_dtype(c, ind, "indices", IR_TC_INDEX)) return false;
    if (ir_infer_unranked(n, in, out, x->dtype)) return true;
    if (x->rank == 0) return ir_infer_error(c, "cannot gather from a scalar");
    int axis, r = x->rank, q = ind->rank;
    if (!ir_infer_axis(c, n->attr.axis.axis, r, &axis)) return false;
    if (r - 1 + q > IR_MAX_RANK)
        return ir_infer_error(c, "the result would have rank %d; bqc supports up to %d", r - 1 + q, IR_MAX_RANK);
    out[0] = (IrType){.dtype = x->dtype, .rank = (int8_t)(r - 1 + q)};
    for (int i = 0; i < axis; i++) out[0].dims[i] = x->dims[i];
    for (int i = 0; i < q; i++) out[0].dims[axis + i] = ind->dims[i];
    for (int i = axis + 1; i < r; i++) out[0].dims[q + i - 1] = x->dims[i];
    if (!ir_infer_sval_const(inval[1])) return true;
    int64_t idx[IR_MAX_SVAL];
    if (!gather_indices(c, inval[1], x->dims[axis], axis, idx)) return false;
    if (!inval[0] || !ir_infer_has_values(&out[0])) return true;
    int64_t outer = ir_infer_prod(c->m, x, 0, axis), inner = ir_infer_prod(c->m, x, axis + 1, r), at = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inval[1]->n; j++)
            for (int64_t i = 0; i < inner; i++) outval[0].v[at++] = inval[0]->v[(o * x->dims[axis] + idx[j]) * inner + i];
    outval[0].n = at;
    return true;
}

/* ---- Slice ---- */

typedef struct SliceAxis { int64_t start, step, len; } SliceAxis;

/* ONNX's clamping for a known extent. */
static SliceAxis slice_const(int64_t d, int64_t s, int64_t e, int64_t step)
{
    if (s < 0) s += d;
    if (e < 0) e += d;
    if (step > 0) {
        s = clamp(s, 0, d);
        e = clamp(e, 0, d);
    } else {
        s = clamp(s, 0, d - 1);
        e = clamp(e, -1, d - 1);
    }
    int64_t span = step > 0 ? e - s : s - e, st = step > 0 ? step : -step;
    return (SliceAxis){s, step, span <= 0 ? 0 : (span - 1) / st + 1};
}

/* Symbolic extent or bounds, step 1 (or a whole reversal): ends at or beyond INT32_MAX mean
 * "to the end", and the extent is assumed to cover the other bounds. */
static IrDim slice_sym(IrModel *m, IrDim d, IrDim s, IrDim e, IrDim step)
{
    const int64_t huge = INT32_MAX;
    if (step == -1 && IR_DIM_IS_CONST(s) && (s == -1 || s >= huge) && IR_DIM_IS_CONST(e) && e <= -huge) return d;
    if (step != 1) return ir_dim_fresh(m);
    IrDim s0 = s, e0 = e;
    if (IR_DIM_IS_CONST(s)) s0 = s >= 0 ? s : s <= -huge ? 0 : ir_dim_add(m, d, s);
    else if (!ir_infer_nonneg(m, s)) return ir_dim_fresh(m);
    if (IR_DIM_IS_CONST(e)) e0 = e >= huge ? d : e >= 0 ? e : e <= -huge ? 0 : ir_dim_add(m, d, e);
    else if (!ir_infer_nonneg(m, e)) return ir_dim_fresh(m);
    IrDim len = ir_dim_sub(m, e0, s0);
    return IR_DIM_IS_CONST(len) && len < 0 ? 0 : len;
}

typedef struct SliceArgs {
    int k;                      /* number of sliced axes */
    int axis[IR_MAX_RANK];
    const IrSVal *starts, *ends, *steps;   /* known values or NULL */
} SliceArgs;

/* Which axes are sliced; false with a->k < 0 when that is not known. */
static bool slice_axes(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, int r,
                       SliceArgs *a)
{
    int64_t k = vector_len(in[1]), ke = vector_len(in[2]);
    if (k >= 0 && ke >= 0 && k != ke)
        return ir_infer_error(c, "starts has %lld elements but ends has %lld", (long long)k, (long long)ke);
    a->k = -1;
    if (n->nin > 3 && in[3]) {
        if (!ir_infer_sval_const(inval[3])) return true;
        uint32_t mask;
        if (!ir_infer_axes(c, inval[3]->v, inval[3]->n, r, &mask)) return false;
        if (k >= 0 && k != inval[3]->n)
            return ir_infer_error(c, "starts has %lld elements but axes has %lld", (long long)k, (long long)inval[3]->n);
        k = inval[3]->n;
        for (int i = 0; i < k; i++) a->axis[i] = (int)(inval[3]->v[i] < 0 ? inval[3]->v[i] + r : inval[3]->v[i]);
    } else {
        if (k < 0) return true;
        if (k > r) return ir_infer_error(c, "starts has %lld elements for rank %d", (long long)k, r);
        for (int i = 0; i < k; i++) a->axis[i] = i;
    }
    a->k = (int)k;
    return true;
}

static bool slice_inputs(IrInferCtx *c, const IrNode *n, const IrType *const *in)
{
    static const char *const what[5] = {NULL, "starts", "ends", "axes", "steps"};
    for (uint32_t k = 1; k < n->nin; k++)
        if (in[k] && !ir_infer_vector(c, in[k], what[k], IR_TC_INDEX)) return false;
    if (in[2]->dtype != in[1]->dtype)
        return ir_infer_error(c, "ends is %s but starts is %s", ir_dtype_name(in[2]->dtype), ir_dtype_name(in[1]->dtype));
    return true;
}

/* Known values of a slice of a known tensor: every bound must be a constant. */
static void slice_values(const IrType *x, const IrSVal *xv, const SliceArgs *a, const IrType *o, IrSVal *ov)
{
    SliceAxis ax[IR_MAX_RANK];
    for (int i = 0; i < x->rank; i++) ax[i] = (SliceAxis){0, 1, x->dims[i]};
    for (int i = 0; i < a->k; i++) {
        IrDim st = a->steps ? a->steps->v[i] : 1;
        if (!IR_DIM_IS_CONST(a->starts->v[i]) || !IR_DIM_IS_CONST(a->ends->v[i]) || !IR_DIM_IS_CONST(st)) return;
        ax[a->axis[i]] = slice_const(x->dims[a->axis[i]], a->starts->v[i], a->ends->v[i], st);
    }
    int64_t ne = ir_type_numel(o), idx[IR_MAX_RANK];
    for (int64_t f = 0; f < ne; f++) {
        ir_infer_unflatten(o, f, idx);
        for (int i = 0; i < x->rank; i++) idx[i] = ax[i].start + idx[i] * ax[i].step;
        ov->v[f] = xv->v[ir_infer_flatten(x, idx)];
    }
    ov->n = ne;
}

/* Slice bounds of INT64_MIN ("from the very end", as exporters write reversals) are too
 * negative to be known values; within Slice every such bound clamps alike, so a constant
 * bound is read directly with those values pinned just above the symbolic range. */
static const IrSVal *slice_bound(IrInferCtx *c, const IrNode *n, uint32_t k, const IrSVal *known, IrSVal *tmp)
{
    if (known || !ir_const_i64(c->g, n->in[k], tmp->v, IR_MAX_SVAL)) return known;
    tmp->n = ir_type_numel(&ir_val(c->g, n->in[k])->type);
    for (int64_t i = 0; i < tmp->n; i++)
        if (!IR_DIM_IS_CONST(tmp->v[i])) tmp->v[i] = IR_DIM_SYM_LIMIT + 1;
    return tmp;
}

bool infer_slice(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                 IrSVal *outval)
{
    const IrType *x = in[0];
    if (!slice_inputs(c, n, in)) return false;
    out[0] = *x;
    if (x->rank < 0) return true;
    IrSVal tmp[2];
    SliceArgs a = {.starts = slice_bound(c, n, 1, inval[1], &tmp[0]), .ends = slice_bound(c, n, 2, inval[2], &tmp[1]),
                   .steps = n->nin > 4 && in[4] ? inval[4] : NULL};
    if (!slice_axes(c, n, in, inval, x->rank, &a)) return false;
    if (a.k < 0) {
        for (int i = 0; i < x->rank; i++) out[0].dims[i] = ir_dim_fresh(c->m);
        return true;
    }
    bool steps_known = !(n->nin > 4 && in[4]) || a.steps;
    const IrSVal *given[3] = {a.starts, a.ends, a.steps};
    for (int j = 0; j < 3; j++)
        if (given[j] && given[j]->n != a.k)
            return ir_infer_error(c, "%s has %lld elements for %d axes", j == 0 ? "starts" : j == 1 ? "ends" : "steps",
                                  (long long)given[j]->n, a.k);
    for (int i = 0; i < a.k; i++) {
        IrDim *d = &out[0].dims[a.axis[i]];
        if (!a.starts || !a.ends || !steps_known) {
            *d = ir_dim_fresh(c->m);
            continue;
        }
        IrDim s = a.starts->v[i], e = a.ends->v[i], st = a.steps ? a.steps->v[i] : 1;
        if (st == 0) return ir_infer_error(c, "step 0 on axis %d", a.axis[i]);
        if (IR_DIM_IS_CONST(*d) && IR_DIM_IS_CONST(s) && IR_DIM_IS_CONST(e) && IR_DIM_IS_CONST(st))
            *d = slice_const(*d, s, e, st).len;
        else
            *d = slice_sym(c->m, *d, s, e, st);
    }
    if (inval[0] && a.starts && a.ends && steps_known && ir_infer_has_values(&out[0]))
        slice_values(x, inval[0], &a, &out[0], &outval[0]);
    return true;
}

/* ---- Expand, Tile ---- */

/* Unknown target shape: an extent of the input other than 1 survives; others are unknown. */
static void expand_unknown(IrModel *m, const IrType *x, IrType *o)
{
    for (int i = 0; i < o->rank; i++) {
        int j = i - (o->rank - x->rank);
        IrDim d = j >= 0 ? x->dims[j] : 1;
        o->dims[i] = IR_DIM_IS_CONST(d) && d != 1 ? d : ir_dim_fresh(m);
    }
}

bool infer_expand(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval,
                  IrType *out, IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_vector(c, in[1], "the shape", IR_TC_I64)) return false;
    int64_t len = vector_len(in[1]);
    out[0] = (IrType){.dtype = x->dtype, .rank = -1};
    if (x->rank < 0 || len < 0) return true;
    if (len > IR_MAX_RANK)
        return ir_infer_error(c, "the result would have rank %lld; bqc supports up to %d", (long long)len, IR_MAX_RANK);
    if (!inval[1]) {
        out[0].rank = (int8_t)(len > x->rank ? len : x->rank);
        expand_unknown(c->m, x, &out[0]);
        return true;
    }
    IrType shape = {.dtype = x->dtype, .rank = (int8_t)len};
    for (int i = 0; i < len; i++) {
        shape.dims[i] = inval[1]->v[i];
        if (IR_DIM_IS_CONST(shape.dims[i]) && shape.dims[i] < 0)
            return ir_infer_error(c, "invalid shape element %lld", (long long)shape.dims[i]);
    }
    if (!ir_broadcast(c, x, &shape, &out[0])) {
        IrTypeStr st = ir_infer_tstr(c, &shape);   /* printed without its element type */
        return ir_infer_error(c, "cannot expand %s to shape %s", ir_infer_tstr(c, x).s, strchr(st.s, '['));
    }
    if (!inval[0] || !ir_infer_has_values(&out[0])) return true;
    int64_t ne = ir_type_numel(&out[0]);
    for (int64_t f = 0; f < ne; f++) outval[0].v[f] = inval[0]->v[ir_infer_bcast_offset(x, &out[0], f)];
    outval[0].n = ne;
    return true;
}

bool infer_tile(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                IrSVal *outval)
{
    const IrType *x = in[0];
    if (!ir_infer_vector(c, in[1], "repeats", IR_TC_I64)) return false;
    out[0] = *x;
    int64_t len = vector_len(in[1]);
    if (x->rank < 0) return true;
    if (len >= 0 && len != x->rank)
        return ir_infer_error(c, "repeats has %lld elements for rank %d", (long long)len, x->rank);
    for (int i = 0; i < x->rank; i++) {
        IrDim rep = inval[1] ? inval[1]->v[i] : ir_dim_fresh(c->m);
        if (IR_DIM_IS_CONST(rep) && rep < 0) return ir_infer_error(c, "repeat %lld is negative", (long long)rep);
        out[0].dims[i] = ir_dim_mul(c->m, x->dims[i], rep);
    }
    if (!inval[0] || !ir_infer_has_values(&out[0])) return true;
    int64_t ne = ir_type_numel(&out[0]), idx[IR_MAX_RANK];
    for (int64_t f = 0; f < ne; f++) {
        ir_infer_unflatten(&out[0], f, idx);
        for (int i = 0; i < x->rank; i++) idx[i] %= x->dims[i];
        outval[0].v[f] = inval[0]->v[ir_infer_flatten(x, idx)];
    }
    outval[0].n = ne;
    return true;
}

/* ---- ConstantOfShape, Range ---- */

bool infer_cos(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
               IrSVal *outval)
{
    if (!ir_infer_vector(c, in[0], "the shape", IR_TC_I64)) return false;
    const IrScalar *v = &n->attr.cos.value;
    out[0] = (IrType){.dtype = v->dtype != DT_UNDEF ? v->dtype : DT_F32, .rank = -1};
    int64_t len = vector_len(in[0]);
    if (len < 0) return true;
    if (len > IR_MAX_RANK)
        return ir_infer_error(c, "the result would have rank %lld; bqc supports up to %d", (long long)len, IR_MAX_RANK);
    out[0].rank = (int8_t)len;
    for (int i = 0; i < len; i++) {
        out[0].dims[i] = inval[0] ? inval[0]->v[i] : ir_dim_fresh(c->m);
        if (IR_DIM_IS_CONST(out[0].dims[i]) && out[0].dims[i] < 0)
            return ir_infer_error(c, "invalid shape element %lld", (long long)out[0].dims[i]);
    }
    if (!ir_infer_has_values(&out[0])) return true;
    int64_t ne = ir_type_numel(&out[0]);
    IrDim x = v->dtype == DT_BOOL ? v->i != 0 : v->i;
    for (int64_t i = 0; i < ne; i++) outval[0].v[i] = x;
    outval[0].n = IR_DIM_IS_CONST(x) ? ne : -1;
    return true;
}

/* max(ceil((limit - start) / delta), 0) over integers, without overflow. */
static bool range_count(IrInferCtx *c, int64_t s, int64_t l, int64_t d, int64_t *n)
{
    if (d == 0) return ir_infer_error(c, "delta is 0");
    if (s == l || (l > s) != (d > 0)) return *n = 0, true;
    uint64_t span = l > s ? (uint64_t)l - (uint64_t)s : (uint64_t)s - (uint64_t)l;
    uint64_t step = d > 0 ? (uint64_t)d : 0 - (uint64_t)d;
    uint64_t k = (span - 1) / step + 1;
    if (k > INT64_MAX / 2) return ir_infer_error(c, "the range has too many elements");
    return *n = (int64_t)k, true;
}

/* Symbolic bounds with a constant step: Range(0, seq, 1) has seq elements. */
static IrDim range_sym(IrModel *m, IrDim s, IrDim l, IrDim d)
{
    if (!IR_DIM_IS_CONST(d) || d == 0) return ir_dim_fresh(m);
    IrDim span = d > 0 ? ir_dim_sub(m, l, s) : ir_dim_sub(m, s, l);
    IrDim n = d == 1 || d == -1 ? span : ir_dim_div(m, span, d > 0 ? d : -d);
    return IR_DIM_IS_CONST(n) && n < 0 ? 0 : n;
}

static bool range_int(IrInferCtx *c, const IrSVal *const *inval, IrType *o, IrSVal *ov)
{
    if (!inval[0] || !inval[1] || !inval[2]) {
        o->dims[0] = ir_dim_fresh(c->m);
        return true;
    }
    IrDim s = inval[0]->v[0], l = inval[1]->v[0], d = inval[2]->v[0];
    if (IR_DIM_IS_CONST(s) && IR_DIM_IS_CONST(l) && IR_DIM_IS_CONST(d)) {
        if (!range_count(c, s, l, d, &o->dims[0])) return false;
    } else {
        o->dims[0] = range_sym(c->m, s, l, d);
    }
    if (!ir_infer_has_values(o)) return true;
    for (int64_t i = 0; i < o->dims[0]; i++) {
        IrDim step;
        if (!ir_infer_vmul(c->m, d, i, &step) || !ir_infer_vadd(c->m, s, step, &ov->v[i])) return true;
    }
    ov->n = o->dims[0];
    return true;
}

/* Float bounds are only known when they are constants; counted as ONNX Runtime does:
 * (limit - start) in the element type, then divided in double. */
static bool range_float(IrInferCtx *c, const IrNode *n, const IrType *t, IrType *o)
{
    double v[3];
    for (uint32_t k = 0; k < 3; k++)
        if (!ir_infer_const_f64(c, n, k, &v[k], 1)) {
            o->dims[0] = ir_dim_fresh(c->m);
            return true;
        }
    double span = t->dtype == DT_F32 ? (double)((float)v[1] - (float)v[0]) : v[1] - v[0];
    if (v[2] == 0) return ir_infer_error(c, "delta is 0");
    double k = ceil(span / v[2]);
    if (!(k < 1e12)) return ir_infer_error(c, "cannot make a range of %g elements", k);
    o->dims[0] = k > 0 ? (int64_t)k : 0;
    return true;
}

bool infer_range(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
                 IrSVal *outval)
{
    static const char *const what[3] = {"start", "limit", "delta"};
    for (int k = 0; k < 3; k++) {
        if (!ir_infer_dtype(c, in[k], what[k], IR_TC_NUM)) return false;
        if (in[k]->dtype != in[0]->dtype)
            return ir_infer_error(c, "%s is %s but start is %s", what[k], ir_dtype_name(in[k]->dtype),
                                  ir_dtype_name(in[0]->dtype));
        if (in[k]->rank != 0) return ir_infer_error(c, "%s must be a scalar, got %s", what[k], ir_infer_tstr(c, in[k]).s);
    }
    out[0] = (IrType){.dtype = in[0]->dtype, .rank = 1};
    if (ir_dtype_is_float(in[0]->dtype)) return range_float(c, n, in[0], &out[0]);
    return range_int(c, inval, &out[0], &outval[0]);
}
