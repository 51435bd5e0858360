/* infer.c — type and shape inference: the driver, the op table, broadcasting, shared helpers.
 *
 * Each op's function (ops.def "infer" column, in infer_*.c by family) computes its result
 * types and, for small integer tensors, their known values (IrSVal) from the input types and
 * values. The same functions run symbolically at compile time (dims are IrDim polynomials:
 * batch, seq, batch*seq) and concretely in the interpreter, so shape logic exists once.
 * Known values are what let the Shape → Gather → Unsqueeze → Concat → Reshape chains of
 * exported models resolve to symbolic shapes instead of unknowns.
 *
 * The table wraps every op's function with the checks all ops share: arity, cleared results,
 * no negative extents and, at run time, no symbolic extent left over. ir_infer_graph walks a
 * graph in order; a failed node poisons its results so that one error does not cascade into
 * many. Passes re-run inference after every rewrite, so it must be idempotent: an unknown
 * made afresh for a result whose previous type held an unknown in the same place reuses that
 * unknown, and the dimension table is rolled back when a node's new entries went unused.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* ---- helpers shared by the infer_*.c files ---- */

IrTypeStr ir_infer_tstr(const IrInferCtx *c, const IrType *t)
{
    IrTypeStr s;
    ir_type_format(c->m, t, s.s, sizeof s.s);
    return s;
}

IrTypeStr ir_infer_dstr(const IrInferCtx *c, IrDim d)
{
    IrTypeStr s;
    ir_dim_format(c->m, d, s.s, sizeof s.s);
    return s;
}

bool ir_infer_error(IrInferCtx *c, const char *fmt, ...)
{
    char where[768];
    ir_where_node(c->g, c->node, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(c->m->diag, DIAG_ERROR, where, fmt, ap);
    va_end(ap);
    return false;
}

static bool dtype_in(IrDType t, unsigned tc)
{
    return ((tc & IR_TC_FLOAT) && ir_dtype_is_float(t)) || ((tc & IR_TC_INT) && ir_dtype_is_int(t)) ||
           ((tc & IR_TC_BOOL) && t == DT_BOOL) || ((tc & IR_TC_INDEX) && (t == DT_I32 || t == DT_I64)) ||
           ((tc & IR_TC_I64) && t == DT_I64);
}

static const char *tc_name(unsigned tc)
{
    static const struct { unsigned tc; const char *name; } names[] = {
        {IR_TC_FLOAT, "a float type"}, {IR_TC_INT, "an integer type"}, {IR_TC_BOOL, "bool"},
        {IR_TC_INDEX, "i32 or i64"},   {IR_TC_I64, "i64"},             {IR_TC_NUM, "numeric"},
        {IR_TC_INDEX | IR_TC_I64, "i32 or i64"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].tc == tc) return names[i].name;
    return "of another type";
}

bool ir_infer_dtype(IrInferCtx *c, const IrType *t, const char *what, unsigned classes)
{
    if (dtype_in(t->dtype, classes)) return true;
    return ir_infer_error(c, "%s must be %s, got %s", what, tc_name(classes), ir_dtype_name(t->dtype));
}

bool ir_infer_vector(IrInferCtx *c, const IrType *t, const char *what, unsigned classes)
{
    if (!ir_infer_dtype(c, t, what, classes)) return false;
    if (t->rank >= 0 && t->rank != 1)
        return ir_infer_error(c, "%s must be a 1-D tensor, got %s", what, ir_infer_tstr(c, t).s);
    return true;
}

bool ir_infer_axis(IrInferCtx *c, int64_t axis, int rank, int *out)
{
    *out = 0;
    if (axis < -rank || axis >= rank)
        return ir_infer_error(c, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

bool ir_infer_axes(IrInferCtx *c, const int64_t *axes, int64_t k, int rank, uint32_t *mask)
{
    *mask = 0;
    for (int64_t i = 0; i < k; i++) {
        int a;
        if (!ir_infer_axis(c, axes[i], rank, &a)) return false;
        if (*mask & (1u << a)) return ir_infer_error(c, "axis %lld is repeated", (long long)axes[i]);
        *mask |= 1u << a;
    }
    return true;
}

bool ir_infer_sval_const(const IrSVal *v)
{
    if (!v || v->n < 0) return false;
    for (int64_t i = 0; i < v->n; i++)
        if (!IR_DIM_IS_CONST(v->v[i])) return false;
    return true;
}

bool ir_infer_is_opaque(const IrModel *m, IrDim d)
{
    if (IR_DIM_IS_CONST(d)) return false;
    IrDimPoly p;
    return !ir_dim_poly(m, d, &p) || p.opaque != 0;
}

bool ir_infer_nonneg(const IrModel *m, IrDim d)
{
    if (IR_DIM_IS_CONST(d)) return d >= 0;
    IrDimPoly p;
    if (!ir_dim_poly(m, d, &p)) return false;
    if (p.opaque) return true;   /* unknowns in known values are always extents */
    for (int i = 0; i < p.nterms; i++)
        if (p.t[i].coef < 0) return false;
    return true;
}

/* Arithmetic on opaque operands only ever yields a fresh unknown: that is not a value. */
static bool vres(IrModel *m, IrDim r, IrDim *out)
{
    if (ir_infer_is_opaque(m, r)) return false;
    *out = r;
    return true;
}

bool ir_infer_vadd(IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (b == 0 || a == 0) return *r = a == 0 ? b : a, true;
    return vres(m, ir_dim_add(m, a, b), r);
}

bool ir_infer_vsub(IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (b == 0) return *r = a, true;
    if (a == b) return *r = 0, true;
    return vres(m, ir_dim_sub(m, a, b), r);
}

bool ir_infer_vmul(IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (a == 0 || b == 0) return *r = 0, true;
    if (a == 1 || b == 1) return *r = a == 1 ? b : a, true;
    return vres(m, ir_dim_mul(m, a, b), r);
}

bool ir_infer_vdiv(IrModel *m, IrDim a, IrDim b, IrDim *r)
{
    if (b == 0) return false;
    if (b == 1) return *r = a, true;
    return vres(m, ir_dim_div(m, a, b), r);
}

bool ir_infer_has_values(const IrType *t)
{
    if (!ir_dtype_is_int(t->dtype) && t->dtype != DT_BOOL) return false;
    int64_t n = ir_type_numel(t);
    return n >= 0 && n <= IR_MAX_SVAL;
}

IrDim ir_infer_prod(IrModel *m, const IrType *t, int from, int to)
{
    IrDim p = 1;
    for (int i = from; i < to; i++) p = ir_dim_mul(m, p, t->dims[i]);
    return p;
}

bool ir_infer_unranked(const IrNode *n, const IrType *const *in, IrType *out, IrDType dt)
{
    bool any = false;
    for (uint32_t k = 0; k < n->nin; k++) any |= in[k] && in[k]->rank < 0;
    if (!any) return false;
    for (uint32_t k = 0; k < n->nout; k++) out[k] = (IrType){.dtype = dt, .rank = -1};
    return true;
}

void ir_infer_unflatten(const IrType *t, int64_t flat, int64_t *idx)
{
    for (int i = t->rank - 1; i >= 0; i--) {
        idx[i] = flat % t->dims[i];
        flat /= t->dims[i];
    }
}

int64_t ir_infer_flatten(const IrType *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int i = 0; i < t->rank; i++) off = off * t->dims[i] + idx[i];
    return off;
}

int64_t ir_infer_bcast_offset(const IrType *in, const IrType *out, int64_t flat)
{
    int64_t off = 0, stride = 1;
    for (int i = out->rank - 1; i >= 0; i--) {
        int64_t idx = flat % out->dims[i];
        flat /= out->dims[i];
        int j = i - (out->rank - in->rank);
        if (j < 0) continue;
        if (in->dims[j] != 1) off += idx * stride;
        stride *= in->dims[j];
    }
    return off;
}

bool ir_infer_const_f64(const IrInferCtx *c, const IrNode *n, uint32_t k, double *out, int64_t max)
{
    if (k >= n->nin || !ir_is_const(c->g, n->in[k])) return false;
    const IrValue *v = ir_val(c->g, n->in[k]);
    int64_t ne = ir_type_numel(&v->type);
    if ((v->type.dtype != DT_F32 && v->type.dtype != DT_F64) || ne < 0 || ne > max || !v->data) return false;
    for (int64_t i = 0; i < ne; i++) out[i] = ir_const_elem_f64(v, i);
    return true;
}

/* ---- dims: equal and broadcast ---- */

/* Two extents ONNX requires equal: the better-known one wins (the interpreter checks). */
bool ir_infer_same_dim(IrInferCtx *c, IrDim a, IrDim b, IrDim *out)
{
    bool ca = IR_DIM_IS_CONST(a), cb = IR_DIM_IS_CONST(b);
    if (a == b) *out = a;
    else if (ca && cb) return false;
    else if (ca || cb) *out = ca ? a : b;
    else if (ir_infer_is_opaque(c->m, a) != ir_infer_is_opaque(c->m, b)) *out = ir_infer_is_opaque(c->m, a) ? b : a;
    else *out = ir_dim_fresh(c->m);
    return true;
}

/* numpy: 1 stretches; a known extent other than 1 decides against a symbolic one (which must
 * then be 1 or equal); two different symbolic extents give an unknown (either may be 1). */
bool ir_infer_bcast_dim(IrInferCtx *c, IrDim a, IrDim b, IrDim *out)
{
    bool ca = IR_DIM_IS_CONST(a), cb = IR_DIM_IS_CONST(b);
    if (a == b || b == 1) *out = a;
    else if (a == 1) *out = b;
    else if (ca && cb) return false;
    else if (ca || cb) *out = ca ? a : b;
    else *out = ir_dim_fresh(c->m);
    return true;
}

bool ir_broadcast(IrInferCtx *c, const IrType *a, const IrType *b, IrType *out)
{
    IrType r = {.dtype = a->dtype, .rank = -1};
    if (a->rank >= 0 && b->rank >= 0) {
        r.rank = a->rank > b->rank ? a->rank : b->rank;
        for (int i = 0; i < r.rank; i++) {
            int ia = i - (r.rank - a->rank), ib = i - (r.rank - b->rank);
            IrDim da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
            if (!ir_infer_bcast_dim(c, da, db, &r.dims[i])) return false;
        }
    }
    *out = r;
    return true;
}

/* ---- the table: each op's function wrapped with the checks every op shares ---- */

static const char *arity_str(char *buf, size_t size, unsigned lo, unsigned hi)
{
    if (hi == VAR) snprintf(buf, size, "%u or more", lo);
    else if (lo == hi) snprintf(buf, size, "%u", lo);
    else snprintf(buf, size, "%u to %u", lo, hi);
    return buf;
}

static bool check_arity(IrInferCtx *c, const IrNode *n, const IrType *const *in)
{
    const IrOpInfo *oi = &ir_ops[n->op];
    char want[32];
    if (n->nin < oi->in_min || (oi->in_max != VAR && n->nin > oi->in_max))
        return ir_infer_error(c, "has %u inputs; %s takes %s", n->nin, oi->name,
                              arity_str(want, sizeof want, oi->in_min, oi->in_max));
    if (n->nout < oi->out_min || (oi->out_max != VAR && n->nout > oi->out_max))
        return ir_infer_error(c, "has %u results; %s gives %s", n->nout, oi->name,
                              arity_str(want, sizeof want, oi->out_min, oi->out_max));
    /* Variadic inputs (Concat, Sum, If's captures) are never optional. */
    for (uint32_t k = 0; k < n->nin; k++)
        if (!in[k] && (k < oi->in_min || oi->in_max == VAR)) return ir_infer_error(c, "input %u is missing", k);
    return true;
}

static bool check_result(IrInferCtx *c, uint32_t k, const IrType *t, IrSVal *v)
{
    assert(t->dtype > DT_UNDEF && t->dtype < DT__COUNT && t->rank <= IR_MAX_RANK);
    if (t->rank < 0 && c->concrete) return ir_infer_error(c, "cannot determine the rank of result %u", k);
    for (int i = 0; i < t->rank; i++) {
        IrDim d = t->dims[i];
        if (IR_DIM_IS_CONST(d) && d < 0)
            return ir_infer_error(c, "result %u would have a negative extent (%s)", k, ir_infer_tstr(c, t).s);
        if (!IR_DIM_IS_CONST(d) && c->concrete)
            return ir_infer_error(c, "cannot determine the shape of result %u at run time (%s)", k,
                                  ir_infer_tstr(c, t).s);
    }
    assert(v->n < 0 || (ir_infer_has_values(t) && v->n == ir_type_numel(t)));
    return true;
}

static bool infer_run(IrInferFn fn, IrInferCtx *c, const IrNode *n, const IrType *const *in,
                      const IrSVal *const *inval, IrType *out, IrSVal *outval)
{
    if (!check_arity(c, n, in)) return false;
    for (uint32_t k = 0; k < n->nout; k++) {
        out[k] = (IrType){.dtype = DT_UNDEF, .rank = -1};
        outval[k].n = -1;
    }
    if (!fn(c, n, in, inval, out, outval)) return false;
    for (uint32_t k = 0; k < n->nout; k++)
        if (!check_result(c, k, &out[k], &outval[k])) return false;
    return true;
}

#define OP(id, name, inmin, inmax, outmin, outmax, since, flags, infer, exec)                         \
    static bool wrap_##id(IrInferCtx *c, const IrNode *n, const IrType *const *in,                   \
                          const IrSVal *const *inval, IrType *out, IrSVal *outval)                    \
    {                                                                                                 \
        return infer_run(infer, c, n, in, inval, out, outval);                                        \
    }
#include "ops.def"
#undef OP

const IrInferFn ir_infer_fns[OP__COUNT] = {
#define OP(id, name, inmin, inmax, outmin, outmax, since, flags, infer, exec) [OP_##id] = wrap_##id,
#include "ops.def"
#undef OP
};

/* ---- the graph walk ---- */

typedef struct Walk {
    IrModel *m;
    IrGraph *g;
    bool concrete;
    IrType *types;             /* side array of nvals (run time), or NULL: types are written into g */
    IrSVal *vals;              /* known values, nvals entries (n = -1: unknown) */
    bool *bad;                 /* nvals: the producer failed; readers are skipped silently */
    const IrType **in;         /* scratch for one node, sized for the widest node */
    const IrSVal **inv;
    IrType *out;
    IrSVal *outv;
} Walk;

static IrType *wtype(const Walk *w, IrId v) { return w->types ? &w->types[v] : &w->g->vals[v].type; }

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p) unreachable("out of memory");
    return p;
}

static void walk_init(Walk *w, IrModel *m, IrGraph *g, bool concrete)
{
    memset(w, 0, sizeof *w);
    w->m = m;
    w->g = g;
    w->concrete = concrete;
    w->vals = xcalloc(g->nvals, sizeof *w->vals);
    w->bad = xcalloc(g->nvals, sizeof *w->bad);
    for (uint32_t v = 0; v < g->nvals; v++) w->vals[v].n = -1;
    if (concrete) {
        w->types = xcalloc(g->nvals, sizeof *w->types);
        for (uint32_t v = 0; v < g->nvals; v++) w->types[v] = g->vals[v].type;
    }
    uint32_t nin = 1, nout = 1;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        if (g->nodes[i].nin > nin) nin = g->nodes[i].nin;
        if (g->nodes[i].nout > nout) nout = g->nodes[i].nout;
    }
    w->in = xcalloc(nin, sizeof *w->in);
    w->inv = xcalloc(nin, sizeof *w->inv);
    w->out = xcalloc(nout, sizeof *w->out);
    w->outv = xcalloc(nout, sizeof *w->outv);
}

static void walk_free(Walk *w)
{
    free(w->vals);
    free(w->bad);
    free(w->types);
    free(w->in);
    free(w->inv);
    free(w->out);
    free(w->outv);
}

static bool read_int(const void *data, IrDType dt, int64_t i, int64_t *x)
{
    const uint8_t *p = data;
    switch (dt) {
    case DT_I64: memcpy(x, p + 8 * i, 8); return true;
    case DT_U64: { uint64_t u; memcpy(&u, p + 8 * i, 8); *x = (int64_t)u; return u <= INT64_MAX; }
    case DT_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); *x = v; return true; }
    case DT_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); *x = v; return true; }
    case DT_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); *x = v; return true; }
    case DT_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); *x = v; return true; }
    case DT_I8: *x = (int8_t)p[i]; return true;
    case DT_U8: case DT_BOOL: *x = p[i]; return true;
    default: return false;
    }
}

/* Small integer constants become known values; data in the symbolic range stays unknown
 * rather than being misread as a symbol. */
static void const_sval(const IrValue *v, IrSVal *out)
{
    out->n = -1;
    if (!ir_infer_has_values(&v->type)) return;
    int64_t n = ir_type_numel(&v->type);
    for (int64_t i = 0; i < n; i++)
        if (!read_int(v->data, v->type.dtype, i, &out->v[i]) || !IR_DIM_IS_CONST(out->v[i])) return;
    out->n = n;
}

static bool walk_const(Walk *w, IrId v)
{
    const IrValue *val = &w->g->vals[v];
    int64_t n = ir_type_numel(&val->type);
    size_t es = ir_dtype_size(val->type.dtype);
    const char *why = NULL;
    if (es == 0) why = "has no element type";
    else if (n < 0) why = "needs a concrete shape";
    else if ((uint64_t)n > UINT64_MAX / es || val->nbytes != (uint64_t)n * es) why = "has the wrong number of bytes";
    else if (val->nbytes && !val->data) why = "has no data";
    if (why) {
        w->bad[v] = true;
        char type[192];
        ir_type_format(w->m, &val->type, type, sizeof type);
        return diag_error(w->m->diag, w->m->path, "graph '%s': constant '%s' (%s) %s", w->g->name, val->name, type, why);
    }
    const_sval(val, &w->vals[v]);
    return true;
}

static uint32_t dim_index(IrDim d) { return (uint32_t)(d - INT64_MIN - 1); }

static bool is_new(IrDim d, uint32_t mark) { return !IR_DIM_IS_CONST(d) && dim_index(d) >= mark; }

static bool node_reads_dim(const Walk *w, const IrNode *n, IrDim d)
{
    for (uint32_t k = 0; k < n->nin; k++) {
        if (w->in[k])
            for (int i = 0; i < w->in[k]->rank; i++)
                if (w->in[k]->dims[i] == d) return true;
        if (w->inv[k])
            for (int64_t i = 0; i < w->inv[k]->n; i++)
                if (w->inv[k]->v[i] == d) return true;
    }
    return false;
}

static bool results_hold(const Walk *w, const IrNode *n, IrDim d)
{
    for (uint32_t k = 0; k < n->nout; k++)
        for (int i = 0; i < w->out[k].rank; i++)
            if (w->out[k].dims[i] == d) return true;
    return false;
}

static void replace_dim(Walk *w, const IrNode *n, IrDim from, IrDim to)
{
    for (uint32_t k = 0; k < n->nout; k++) {
        for (int i = 0; i < w->out[k].rank; i++)
            if (w->out[k].dims[i] == from) w->out[k].dims[i] = to;
        for (int64_t i = 0; i < w->outv[k].n; i++)
            if (w->outv[k].v[i] == from) w->outv[k].v[i] = to;
    }
}

/* A fresh unknown where the result's previous type had an unknown of its own (not one read
 * from the inputs, not one already used) takes that old unknown back. */
static void reuse_unknowns(Walk *w, const IrNode *n, uint32_t mark)
{
    for (uint32_t k = 0; k < n->nout; k++) {
        if (n->out[k] == IR_NONE) continue;
        const IrType *old = wtype(w, n->out[k]);
        if (old->rank != w->out[k].rank) continue;
        for (int i = 0; i < old->rank; i++) {
            IrDim d = w->out[k].dims[i], o = old->dims[i];
            if (!is_new(d, mark) || !ir_infer_is_opaque(w->m, d) || is_new(o, mark) || !ir_infer_is_opaque(w->m, o) ||
                node_reads_dim(w, n, o) || results_hold(w, n, o))
                continue;
            replace_dim(w, n, d, o);
        }
    }
}

static bool results_use_new(const Walk *w, const IrNode *n, uint32_t mark)
{
    for (uint32_t k = 0; k < n->nout; k++) {
        for (int i = 0; i < w->out[k].rank; i++)
            if (is_new(w->out[k].dims[i], mark)) return true;
        for (int64_t i = 0; i < w->outv[k].n; i++)
            if (is_new(w->outv[k].v[i], mark)) return true;
    }
    return false;
}

/* Ops with subgraphs record their branch types in the table: never roll those back. */
static bool has_subgraphs(IrOp op)
{
    for (size_t i = 0; i < ir_nattrs; i++)
        if (ir_attrs[i].op == op && ir_attrs[i].kind == AK_GRAPH) return true;
    return false;
}

/* Gathers a node's operands; false with *skip when an input is poisoned (already reported),
 * false alone after reporting an operand that cannot be read. */
static bool gather_inputs(Walk *w, IrId ni, bool *skip)
{
    const IrNode *n = &w->g->nodes[ni];
    bool poisoned = false;
    *skip = false;
    for (uint32_t k = 0; k < n->nin; k++) {
        IrId v = n->in[k];
        w->in[k] = NULL;
        w->inv[k] = NULL;
        if (v == IR_NONE) continue;
        if (v >= w->g->nvals) return ir_node_error(w->g, ni, "input %u refers to no value (%u)", k, v);
        if (w->bad[v]) {
            poisoned = true;
            continue;
        }
        const IrType *t = wtype(w, v);
        if (t->dtype == DT_UNDEF)
            return ir_node_error(w->g, ni, "input %u ('%s') has no type: is it defined after this node?", k,
                                 w->g->vals[v].name);
        w->in[k] = t;
        if (w->vals[v].n >= 0) w->inv[k] = &w->vals[v];
    }
    *skip = poisoned;
    return !poisoned;
}

static bool walk_node(Walk *w, IrId ni)
{
    const IrNode *n = &w->g->nodes[ni];
    if (n->dead) return true;
    bool skip, ok = gather_inputs(w, ni, &skip);
    if (ok) {
        IrDimTab *tab = &w->m->dims;
        uint32_t mark = tab->npoly, nopaque = tab->nopaque;
        IrInferCtx c = {.m = w->m, .g = w->g, .node = ni, .concrete = w->concrete};
        ok = ir_infer_fns[n->op](&c, n, w->in, w->inv, w->out, w->outv);
        if (ok && !w->concrete) reuse_unknowns(w, n, mark);
        if ((!ok || !results_use_new(w, n, mark)) && !has_subgraphs(n->op)) {
            tab->npoly = mark;
            tab->nopaque = nopaque;
        }
    }
    for (uint32_t k = 0; k < n->nout; k++) {
        IrId v = n->out[k];
        if (v == IR_NONE) continue;
        if (v >= w->g->nvals) return ir_node_error(w->g, ni, "result %u refers to no value (%u)", k, v);
        w->bad[v] = !ok;
        *wtype(w, v) = ok ? w->out[k] : (IrType){.dtype = DT_UNDEF, .rank = -1};
        if (ok) w->vals[v] = w->outv[k];
        else w->vals[v].n = -1;
    }
    return ok || skip;
}

/* Infers g in order. in_types/in_vals (one per graph input) override the declared input
 * types: an If branch sees the types of the values it captures. */
static bool walk_graph(Walk *w, const IrType *const *in_types, const IrSVal *const *in_vals)
{
    bool ok = true;
    IrGraph *g = w->g;
    for (uint32_t i = 0; i < g->ninputs; i++) {
        IrId v = g->inputs[i];
        if (v >= g->nvals) {
            ok = diag_error(w->m->diag, w->m->path, "graph '%s': input %u refers to no value (%u)", g->name, i, v);
            continue;
        }
        if (in_types) *wtype(w, v) = *in_types[i];
        if (in_vals && in_vals[i]) w->vals[v] = *in_vals[i];
        if (wtype(w, v)->dtype == DT_UNDEF) {
            w->bad[v] = true;
            ok = diag_error(w->m->diag, w->m->path, "graph '%s': input '%s' has no type", g->name, g->vals[v].name);
        }
    }
    for (uint32_t v = 0; v < g->nvals; v++)
        if (g->vals[v].kind == IR_VAL_CONST) ok &= walk_const(w, v);
    for (uint32_t i = 0; i < g->nnodes; i++) ok &= walk_node(w, i);
    for (uint32_t k = 0; k < g->noutputs; k++)
        if (g->outputs[k] >= g->nvals || (!w->bad[g->outputs[k]] && wtype(w, g->outputs[k])->dtype == DT_UNDEF))
            ok = diag_error(w->m->diag, w->m->path, "graph '%s': output %u is not defined", g->name, k);
    return ok;
}

bool ir_infer_graph(IrGraph *g, IrSVal **svals)
{
    Walk w;
    walk_init(&w, g->model, g, false);
    bool ok = walk_graph(&w, NULL, NULL);
    if (svals) {
        *svals = w.vals;
        w.vals = NULL;
    }
    walk_free(&w);
    return ok;
}

/* ---- If: both branches at compile time (their types are recorded), the taken one at run
 * time (in side arrays: the interpreter must not rewrite the IR) ---- */

static bool if_branches(IrInferCtx *c, const IrNode *n, IrGraph **br)
{
    const uint32_t gi[2] = {n->attr.if_.then_g, n->attr.if_.else_g};
    static const char *const names[2] = {"then", "else"};
    for (int b = 0; b < 2; b++) {
        if (gi[b] >= c->g->nsubs)
            return ir_infer_error(c, "%s_branch refers to subgraph %u, but the graph has %u", names[b], gi[b],
                                  c->g->nsubs);
        br[b] = c->g->subs[gi[b]];
        if (br[b]->ninputs != n->nin - 1 || br[b]->noutputs != n->nout)
            return ir_infer_error(c, "%s_branch '@%s' has %u inputs and %u outputs; the node captures %u values and has %u results",
                                  names[b], br[b]->name, br[b]->ninputs, br[b]->noutputs, n->nin - 1, n->nout);
    }
    return true;
}

static bool same_sval(const IrSVal *a, const IrSVal *b)
{
    return a->n >= 0 && a->n == b->n && memcmp(a->v, b->v, (size_t)a->n * sizeof a->v[0]) == 0;
}

/* An unknown for extent i of result k. At compile time, the unknown the result already had
 * there is taken back: the driver's rollback cannot undo table entries for an op whose
 * branches record their own (idempotence, see walk_node). */
static IrDim if_unknown(IrInferCtx *c, const IrNode *n, const IrType *const *in, uint32_t k, int i, int rank)
{
    const IrType *old = n->out[k] < c->g->nvals ? &c->g->vals[n->out[k]].type : NULL;
    if (c->concrete || !old || old->rank != rank || !ir_infer_is_opaque(c->m, old->dims[i]))
        return ir_dim_fresh(c->m);
    for (uint32_t j = 0; j < n->nin; j++)
        for (int d = 0; d < in[j]->rank; d++)
            if (in[j]->dims[d] == old->dims[i]) return ir_dim_fresh(c->m);
    return old->dims[i];
}

/* Result k when either branch may run: equal extents stay, different ones are unknown. */
static bool if_merge(IrInferCtx *c, const IrNode *n, const IrType *const *in, uint32_t k, const IrType *t0,
                     const IrType *t1, IrType *out)
{
    if (t0->dtype != t1->dtype)
        return ir_infer_error(c, "the branches give result %u different element types (%s and %s)", k,
                              ir_dtype_name(t0->dtype), ir_dtype_name(t1->dtype));
    *out = *t0;
    if (t0->rank != t1->rank) out->rank = -1;
    for (int i = 0; i < out->rank; i++)
        if (t0->dims[i] != t1->dims[i]) out->dims[i] = if_unknown(c, n, in, k, i, out->rank);
    return true;
}

bool infer_if(IrInferCtx *c, const IrNode *n, const IrType *const *in, const IrSVal *const *inval, IrType *out,
              IrSVal *outval)
{
    if (!ir_infer_dtype(c, in[0], "the condition", IR_TC_BOOL)) return false;
    int64_t ne = ir_type_numel(in[0]);
    if (ne >= 0 && ne != 1)
        return ir_infer_error(c, "the condition must have one element, got %s", ir_infer_tstr(c, in[0]).s);
    IrGraph *br[2];
    if (!if_branches(c, n, br)) return false;
    int take = -1;
    if (inval[0] && inval[0]->n == 1 && IR_DIM_IS_CONST(inval[0]->v[0])) take = inval[0]->v[0] != 0 ? 0 : 1;
    Walk w[2];
    bool ok = true, walked[2] = {false, false};
    for (int b = 0; b < 2; b++) {
        if (c->concrete && take >= 0 && b != take) continue;
        walk_init(&w[b], c->m, br[b], c->concrete);
        walked[b] = true;
        ok &= walk_graph(&w[b], in + 1, inval + 1);
    }
    for (uint32_t k = 0; ok && k < n->nout; k++) {
        IrId o[2] = {br[0]->outputs[k], br[1]->outputs[k]};
        if (take >= 0) {
            out[k] = *wtype(&w[take], o[take]);
            outval[k] = w[take].vals[o[take]];
            continue;
        }
        ok = if_merge(c, n, in, k, wtype(&w[0], o[0]), wtype(&w[1], o[1]), &out[k]);
        if (ok && same_sval(&w[0].vals[o[0]], &w[1].vals[o[1]]) && ir_infer_has_values(&out[k]))
            outval[k] = w[0].vals[o[0]];
    }
    for (int b = 0; b < 2; b++)
        if (walked[b]) walk_free(&w[b]);
    return ok;
}
