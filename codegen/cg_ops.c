/* cg_ops.c — C statements for each op of a planned graph.
 *
 * Heavy ops are calls into libbqcrt with every extent spelled as an expression of the bound
 * symbols: bqc.Linear → bq_matmul_f32_packed on the pre-packed weight (with number formats:
 * bq_qk_matmul_spec with a kernel instantiated here from qkern.h's templates for the pair and K,
 * on the weight packed for it; bq_qmatmul on the quantised rows for pairs without a fast
 * kernel), LayerNormalization, Softmax, MatMul,
 * bqc.Attention (over the KV cache in the decoder API; the _q kernels with formats) — the
 * kernels the interpreter calls, with the same arguments. Light ops become
 * loop nests over the output with each operand's strides (0 where it broadcasts), adjacent
 * dimensions merged when every operand steps through them contiguously — the same loop the
 * interpreter runs. Elementwise expressions are the rows of bqcrt_ew.h, printed verbatim, so
 * generated code and interpreter compute the same bits by construction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt_ew.h"
#include "cg_int.h"

/* ---- the elementwise rows as text ---- */

typedef struct { const char *f32, *f64; } FloatRow;
#define TXT_UF(op, e32, e64) [OP_##op] = {#e32, #e64},
#define TXT_UI(op, e) [OP_##op] = #e,
#define TXT_BF(op, e) [OP_##op] = #e,
static const FloatRow unary_float[OP__COUNT] = {BQ_EW_UNARY_FLOAT(TXT_UF)};
static const char *const unary_int[OP__COUNT] = {BQ_EW_UNARY_INT(TXT_UI)};
static const char *const binary_float[OP__COUNT] = {BQ_EW_BINARY_FLOAT(TXT_BF)};
static const char *const binary_int[OP__COUNT] = {BQ_EW_BINARY_INT(TXT_BF)};
static const char *const binary_cmp[OP__COUNT] = {BQ_EW_BINARY_CMP(TXT_BF)};
static const char *const binary_bool[OP__COUNT] = {BQ_EW_BINARY_BOOL(TXT_BF)};

static bool unsupported(CgGraph *cg, IrId node, const char *why)
{
    return ir_node_error(cg->g, node, "the C backend does not support this: %s", why);
}

static IrId node_id(const CgGraph *cg, const IrNode *n) { return (IrId)(n - cg->g->nodes); }
static const IrType *ty(const CgGraph *cg, IrId v) { return &cg->g->vals[v].type; }

/* ---- loop nests ---- */

#define MAX_OPS 5
typedef struct Loop {
    int rank;
    IrDim dims[IR_MAX_RANK];
    int nops;
    const char *ptr[MAX_OPS];
    IrDim stride[MAX_OPS][IR_MAX_RANK];
    const char *base[MAX_OPS];   /* extra index offset (C expression) or NULL */
} Loop;

/* Contiguous strides of `t`, right-aligned to the loop's rank, 0 where it broadcasts. */
static void set_operand(CgGraph *cg, Loop *l, int op, const char *ptr, const IrType *t)
{
    l->ptr[op] = ptr;
    int off = l->rank - t->rank;
    IrDim s = 1;
    for (int d = l->rank - 1; d >= 0; d--) {
        int td = d - off;
        bool bcast = td < 0 || (t->dims[td] == 1 && l->dims[d] != 1);
        l->stride[op][d] = bcast ? 0 : s;
        if (td >= 0) s = ir_dim_mul(cg->m, s, t->dims[td]);
    }
}

static void loop_init(CgGraph *cg, Loop *l, const char *out_ptr, const IrType *out)
{
    memset(l, 0, sizeof *l);
    l->rank = out->rank;
    memcpy(l->dims, out->dims, sizeof l->dims);
    l->nops = 1;
    set_operand(cg, l, 0, out_ptr, out);
}

/* Merges dimensions (innermost first), drops extent-1 ones, and prints the nest with the
 * statement `body`, where $k stands for operand k's element. */
static void emit_loop(CgGraph *cg, Out *o, Loop *l, const char *body)
{
    int n = 0;
    IrDim dims[IR_MAX_RANK], st[MAX_OPS][IR_MAX_RANK];
    for (int d = l->rank - 1; d >= 0; d--) {
        if (l->dims[d] == 1) continue;
        bool merge = n > 0;
        for (int op = 0; op < l->nops && merge; op++)
            merge = l->stride[op][d] == ir_dim_mul(cg->m, st[op][n - 1], dims[n - 1]);
        if (merge) {
            dims[n - 1] = ir_dim_mul(cg->m, dims[n - 1], l->dims[d]);
            continue;
        }
        dims[n] = l->dims[d];
        for (int op = 0; op < l->nops; op++) st[op][n] = l->stride[op][d];
        n++;
    }
    /* Print outermost first: loop variable i<k> runs over dims[n-1-k]. */
    const char *idx[MAX_OPS];
    for (int op = 0; op < l->nops; op++) {
        Out e = {0};
        out_printf(&e, "%s", l->base[op] ? l->base[op] : "0");
        for (int k = 0; k < n; k++) {
            IrDim s = st[op][n - 1 - k];
            if (s == 0) continue;
            if (s == 1) out_printf(&e, " + i%d", k);
            else out_printf(&e, " + i%d * %s", k, cg_dim(cg, s));
        }
        idx[op] = cg_fmt(cg, "%s", e.buf);
        out_free(&e);
    }
    for (int k = 0; k < n; k++)
        out_printf(o, "%*sfor (int64_t i%d = 0; i%d < %s; i%d++)\n", 4 + 4 * k, "", k, k, cg_dim(cg, dims[n - 1 - k]), k);
    out_printf(o, "%*s", 4 + 4 * n, "");
    for (const char *p = body; *p; p++) {
        if (*p == '$' && p[1] >= '0' && p[1] < '0' + l->nops) {
            int op = p[1] - '0';
            out_printf(o, "%s[%s]", l->ptr[op], idx[op]);
            p++;
        } else {
            out_printf(o, "%c", *p);
        }
    }
    out_printf(o, "\n");
}

/* ---- elementwise ---- */

/* Declarations the expression needs: the element type T, the attributes `at`. */
static void emit_expr_prelude(Out *o, const char *expr, const char *T, const IrAttr *a)
{
    if (strstr(expr, "T")) out_printf(o, "    typedef %s T;\n", T);
    if (strstr(expr, "at->"))
        out_printf(o, "    const bq_ew_attr at_ = {{%.9gf, %.9gf}, {%lld}}, *at = &at_;\n", a->act.alpha, a->act.beta,
                   (long long)a->mod.fmod);
}

static bool emit_unary(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *t = ty(cg, n->in[0]);
    const char *expr = NULL;
    if (t->dtype == DT_F32) expr = unary_float[n->op].f32;
    else if (t->dtype == DT_F64) expr = unary_float[n->op].f64;
    else if (ir_dtype_is_int(t->dtype)) expr = unary_int[n->op];
    if (!expr) return unsupported(cg, node_id(cg, n), "this op on this element type");
    const char *T = cg_ctype(t->dtype);
    out_printf(o, "    {\n");
    emit_expr_prelude(o, expr, T, &n->attr);
    Loop l;
    loop_init(cg, &l, cg_vname(cg, n->out[0]), ty(cg, n->out[0]));
    set_operand(cg, &l, 1, cg_vname(cg, n->in[0]), t);
    l.nops = 2;
    emit_loop(cg, o, &l, cg_fmt(cg, "{ %s v = $1; $0 = (%s)(%s); }", T, T, expr));
    out_printf(o, "    }\n");
    return true;
}

static bool emit_binary(CgGraph *cg, Out *o, const IrNode *n)
{
    if (n->nin != 2 || n->op == OP_MEAN) return unsupported(cg, node_id(cg, n), "variadic Max/Min/Sum/Mean");
    const IrType *ta = ty(cg, n->in[0]), *tout = ty(cg, n->out[0]);
    const char *expr = NULL;
    bool cmp = ir_ops[n->op].flags & F_BOOLOUT;
    if (ta->dtype == DT_BOOL) expr = binary_bool[n->op];
    else if (cmp) expr = binary_cmp[n->op];
    else if (ta->dtype == DT_F32 || ta->dtype == DT_F64) expr = binary_float[n->op];
    else if (ir_dtype_is_int(ta->dtype)) expr = binary_int[n->op];
    if (!expr) return unsupported(cg, node_id(cg, n), "this op on this element type");
    const char *T = cg_ctype(ta->dtype), *To = cg_ctype(tout->dtype);
    out_printf(o, "    {\n");
    emit_expr_prelude(o, expr, T, &n->attr);
    Loop l;
    loop_init(cg, &l, cg_vname(cg, n->out[0]), tout);
    set_operand(cg, &l, 1, cg_vname(cg, n->in[0]), ta);
    set_operand(cg, &l, 2, cg_vname(cg, n->in[1]), ty(cg, n->in[1]));
    l.nops = 3;
    emit_loop(cg, o, &l, cg_fmt(cg, "{ %s x = $1, y = $2; $0 = (%s)(%s); }", T, To, expr));
    out_printf(o, "    }\n");
    return true;
}

static bool emit_where(CgGraph *cg, Out *o, const IrNode *n)
{
    Loop l;
    loop_init(cg, &l, cg_vname(cg, n->out[0]), ty(cg, n->out[0]));
    for (int k = 0; k < 3; k++) set_operand(cg, &l, 1 + k, cg_vname(cg, n->in[k]), ty(cg, n->in[k]));
    l.nops = 4;
    emit_loop(cg, o, &l, "$0 = $1 ? $2 : $3;");
    return true;
}

static bool emit_cast(CgGraph *cg, Out *o, const IrNode *n)
{
    IrDType from = ty(cg, n->in[0])->dtype, to = ty(cg, n->out[0])->dtype;
    bool fi = ir_dtype_is_int(from) || from == DT_BOOL, ti = ir_dtype_is_int(to) || to == DT_BOOL;
    const char *body;
    if (from == to) body = "$0 = $1;";
    else if (to == DT_BOOL) body = "$0 = $1 != 0;";
    else if (fi && ti) body = cg_fmt(cg, "$0 = (%s)(uint64_t)$1;", cg_ctype(to));
    else if (fi && (to == DT_F32 || to == DT_F64)) body = cg_fmt(cg, "$0 = (%s)(double)$1;", cg_ctype(to));
    else if (from == DT_F32 && to == DT_F64) body = "$0 = $1;";
    else return unsupported(cg, node_id(cg, n), "Cast between these element types");
    Loop l;
    loop_init(cg, &l, cg_vname(cg, n->out[0]), ty(cg, n->out[0]));
    set_operand(cg, &l, 1, cg_vname(cg, n->in[0]), ty(cg, n->in[0]));
    l.nops = 2;
    emit_loop(cg, o, &l, body);
    return true;
}

static bool emit_expand(CgGraph *cg, Out *o, const IrNode *n)
{
    Loop l;
    loop_init(cg, &l, cg_vname(cg, n->out[0]), ty(cg, n->out[0]));
    set_operand(cg, &l, 1, cg_vname(cg, n->in[0]), ty(cg, n->in[0]));
    l.nops = 2;
    emit_loop(cg, o, &l, "$0 = $1;");
    return true;
}

/* A view that is a graph output (or written into one) is copied. */
static bool emit_copy(CgGraph *cg, Out *o, const IrNode *n)
{
    if (cg->vals[n->out[0]].kind != SK_OUTPUT) return true;   /* aliases need no code */
    const IrType *t = ty(cg, n->out[0]);
    out_printf(o, "    memcpy(%s, %s, (size_t)%s * sizeof *%s);\n", cg_vname(cg, n->out[0]), cg_vname(cg, n->in[0]),
               cg_numel(cg, t, 0, t->rank), cg_vname(cg, n->out[0]));
    return true;
}

/* ---- data movement ---- */

static bool emit_transpose(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *in = ty(cg, n->in[0]), *out = ty(cg, n->out[0]);
    int r = in->rank;
    IrDim st[IR_MAX_RANK], s = 1;
    for (int d = r - 1; d >= 0; d--) st[d] = s, s = ir_dim_mul(cg->m, s, in->dims[d]);
    Loop l;
    loop_init(cg, &l, cg_vname(cg, n->out[0]), out);
    l.ptr[1] = cg_vname(cg, n->in[0]);
    for (int d = 0; d < r; d++) {
        int p = n->attr.transpose.perm.n ? (int)n->attr.transpose.perm.v[d] : r - 1 - d;
        l.stride[1][d] = st[p];
    }
    l.nops = 2;
    emit_loop(cg, o, &l, "$0 = $1;");
    return true;
}

static int axis_of(int64_t axis, int rank) { return (int)(axis < 0 ? axis + rank : axis); }

static bool emit_concat(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *out = ty(cg, n->out[0]);
    int ax = axis_of(n->attr.axis.axis, out->rank);
    IrDim off = 0;
    for (uint32_t k = 0; k < n->nin; k++) {
        const IrType *t = ty(cg, n->in[k]);
        Loop l;
        loop_init(cg, &l, cg_vname(cg, n->out[0]), t);
        /* Write into the output's strides, shifted along the axis. */
        IrDim s = 1;
        for (int d = out->rank - 1; d >= 0; d--) l.stride[0][d] = s, s = ir_dim_mul(cg->m, s, out->dims[d]);
        l.base[0] = cg_fmt(cg, "%s * %s", cg_dim(cg, off), cg_dim(cg, l.stride[0][ax]));
        set_operand(cg, &l, 1, cg_vname(cg, n->in[k]), t);
        l.nops = 2;
        emit_loop(cg, o, &l, "$0 = $1;");
        off = ir_dim_add(cg->m, off, t->dims[ax]);
    }
    return true;
}

static bool emit_gather(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *data = ty(cg, n->in[0]), *idx = ty(cg, n->in[1]);
    int ax = axis_of(n->attr.axis.axis, data->rank);
    const char *outer = cg_numel(cg, data, 0, ax), *inner = cg_numel(cg, data, ax + 1, data->rank);
    const char *len = cg_dim(cg, data->dims[ax]), *ni = cg_numel(cg, idx, 0, idx->rank);
    out_printf(o, "    for (int64_t o_ = 0; o_ < %s; o_++)\n", outer);
    out_printf(o, "        for (int64_t j_ = 0; j_ < %s; j_++) {\n", ni);
    out_printf(o, "            int64_t k_ = (int64_t)%s[j_];\n", cg_vname(cg, n->in[1]));
    out_printf(o, "            if (k_ < 0) k_ += %s;\n", len);
    out_printf(o, "            if (k_ < 0 || k_ >= %s) return BQ_ERR_ARG;   /* index out of range */\n", len);
    out_printf(o, "            memcpy(%s + (o_ * %s + j_) * %s, %s + (o_ * %s + k_) * %s, (size_t)%s * sizeof *%s);\n",
               cg_vname(cg, n->out[0]), ni, inner, cg_vname(cg, n->in[0]), len, inner, inner, cg_vname(cg, n->out[0]));
    out_printf(o, "        }\n");
    return true;
}

/* Slice with starts/ends/steps known symbolically: clamped at run time like ONNX, and the
 * extent checked against the one inference derived. */
static bool emit_slice(CgGraph *cg, Out *o, const IrNode *n)
{
    IrId id = node_id(cg, n);
    const IrType *in = ty(cg, n->in[0]), *out = ty(cg, n->out[0]);
    const IrSVal *st = &cg->sv[n->in[1]], *en = &cg->sv[n->in[2]];
    const IrSVal *ax = n->nin > 3 && n->in[3] != IR_NONE ? &cg->sv[n->in[3]] : NULL;
    const IrSVal *sp = n->nin > 4 && n->in[4] != IR_NONE ? &cg->sv[n->in[4]] : NULL;
    if (st->n < 0 || en->n < 0 || (ax && ax->n < 0) || (sp && sp->n < 0))
        return unsupported(cg, id, "Slice bounds that depend on data");
    const char *start[IR_MAX_RANK];
    IrDim step[IR_MAX_RANK];
    for (int d = 0; d < in->rank; d++) start[d] = NULL, step[d] = 1;
    out_printf(o, "    {\n");
    for (int64_t i = 0; i < st->n; i++) {
        int d = ax ? axis_of(ax->v[i], in->rank) : (int)i;
        IrDim s = st->v[i], e = en->v[i], k = sp ? sp->v[i] : 1;
        if (!IR_DIM_IS_CONST(k) || k == 0) return unsupported(cg, id, "a Slice step that is not a known non-zero number");
        const char *dim = cg_dim(cg, in->dims[d]);
        out_printf(o, "        int64_t s%d = %s, e%d = %s;\n", d, IR_DIM_IS_CONST(s) ? cg_fmt(cg, "INT64_C(%lld)", (long long)s) : cg_dim(cg, s), d,
                   IR_DIM_IS_CONST(e) ? cg_fmt(cg, "INT64_C(%lld)", (long long)e) : cg_dim(cg, e));
        if (k > 0) {
            out_printf(o, "        if (s%d < 0) s%d += %s;\n        s%d = s%d < 0 ? 0 : s%d > %s ? %s : s%d;\n", d, d, dim, d, d, d, dim, dim, d);
            out_printf(o, "        if (e%d < 0) e%d += %s;\n        e%d = e%d < 0 ? 0 : e%d > %s ? %s : e%d;\n", d, d, dim, d, d, d, dim, dim, d);
            out_printf(o, "        if ((e%d > s%d ? (e%d - s%d + %lld) / %lld : 0) != %s) return BQ_ERR_ARG;\n", d, d, d, d,
                       (long long)k - 1, (long long)k, cg_dim(cg, out->dims[d]));
        } else {
            out_printf(o, "        if (s%d < 0) s%d += %s;\n        s%d = s%d < 0 ? -1 : s%d > %s - 1 ? %s - 1 : s%d;\n", d, d, dim, d, d, d, dim, dim, d);
            out_printf(o, "        if (e%d < 0) e%d += %s;\n        e%d = e%d < -1 ? -1 : e%d > %s - 1 ? %s - 1 : e%d;\n", d, d, dim, d, d, d, dim, dim, d);
            out_printf(o, "        if ((s%d > e%d ? (s%d - e%d + %lld) / %lld : 0) != %s) return BQ_ERR_ARG;\n", d, d, d, d,
                       (long long)-k - 1, (long long)-k, cg_dim(cg, out->dims[d]));
        }
        start[d] = cg_fmt(cg, "s%d", d);
        step[d] = k;
    }
    Loop l;
    loop_init(cg, &l, cg_vname(cg, n->out[0]), out);
    IrDim s = 1;
    Out base = {0};
    out_printf(&base, "0");
    for (int d = in->rank - 1; d >= 0; d--) {
        l.stride[1][d] = ir_dim_mul(cg->m, s, step[d]);
        if (start[d]) out_printf(&base, " + %s * %s", start[d], cg_dim(cg, s));
        s = ir_dim_mul(cg->m, s, in->dims[d]);
    }
    l.ptr[1] = cg_vname(cg, n->in[0]);
    l.base[1] = cg_fmt(cg, "%s", base.buf);
    out_free(&base);
    l.nops = 2;
    emit_loop(cg, o, &l, "$0 = $1;");
    out_printf(o, "    }\n");
    return true;
}

static bool emit_cumsum(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *t = ty(cg, n->in[0]);
    const IrSVal *a = &cg->sv[n->in[1]];
    if (a->n != 1 || !IR_DIM_IS_CONST(a->v[0])) return unsupported(cg, node_id(cg, n), "a CumSum axis that is not known");
    int ax = axis_of(a->v[0], t->rank);
    const char *T = cg_ctype(t->dtype);
    bool isint = ir_dtype_is_int(t->dtype);
    const char *outer = cg_numel(cg, t, 0, ax), *len = cg_dim(cg, t->dims[ax]), *inner = cg_numel(cg, t, ax + 1, t->rank);
    const char *x = cg_vname(cg, n->in[0]), *y = cg_vname(cg, n->out[0]);
    bool rev = n->attr.cumsum.reverse, ex = n->attr.cumsum.exclusive;
    out_printf(o, "    for (int64_t o_ = 0; o_ < %s; o_++)\n        for (int64_t i_ = 0; i_ < %s; i_++) {\n", outer, inner);
    out_printf(o, "            %s acc = 0;\n", T);
    out_printf(o, "            for (int64_t k_ = 0; k_ < %s; k_++) {\n", len);
    out_printf(o, "                int64_t at_ = (o_ * %s + %s) * %s + i_;\n", len, rev ? cg_fmt(cg, "(%s - 1 - k_)", len) : "k_", inner);
    const char *add = isint ? cg_fmt(cg, "(%s)((uint64_t)acc + (uint64_t)%s[at_])", T, x) : cg_fmt(cg, "acc + %s[at_]", x);
    if (ex) out_printf(o, "                %s v_ = %s[at_];\n                %s[at_] = acc;\n                acc = %s;\n", T, x, y,
                       isint ? cg_fmt(cg, "(%s)((uint64_t)acc + (uint64_t)v_)", T) : "acc + v_");
    else out_printf(o, "                acc = %s;\n                %s[at_] = acc;\n", add, y);
    out_printf(o, "            }\n        }\n");
    return true;
}

/* ---- runtime kernels ---- */

const char *cg_format_init(CgGraph *cg, const bq_format *f)
{
    char name[64];
    bq_format_name(f, name, sizeof name);
    return cg_fmt(cg, "{%d, %d, %d, %d} /* %s */", f->family, f->width, f->ebits, f->block, name);
}

static const char *weight_ptr(CgGraph *cg, int e, const char *T)
{
    return cg_fmt(cg, "(const %s *)(m->w.base + %llu)", T, (unsigned long long)cg->weights->w[e].offset);
}

/* The fast kernel for Linear n's formats at reduction K: qkern.h's template instantiated with
 * the pair's constants and K folded (BQ_QK_DEFINE), once per distinct (spec, K) in the model;
 * returns its name. */
static const char *kernel_for(CgGraph *cg, const IrNode *n, int64_t K)
{
    CgKernels *ks = cg->kernels;
    const bq_format *fa = &n->attr.linear.input_format, *fw = &n->attr.linear.weight_format;
    bq_qk_spec sp = bq_qk_spec_of(fa, fw);
    int64_t nb = (K + sp.block - 1) / sp.block;
    for (uint32_t i = 0; i < ks->n; i++)
        if (memcmp(&ks->k[i].sp, &sp, sizeof sp) == 0 && ks->k[i].nb == nb) return ks->k[i].name;
    if (ks->n == ks->cap) {
        ks->cap = ks->cap ? 2 * ks->cap : 8;
        ks->k = realloc(ks->k, ks->cap * sizeof *ks->k);
        if (!ks->k) unreachable("out of memory");
    }
    CgKernel *k = &ks->k[ks->n++];
    memset(k, 0, sizeof *k);
    k->sp = sp, k->nb = nb;
    char an[32], wn[32], id[96];
    bq_format_name(fa, an, sizeof an);
    bq_format_name(fw, wn, sizeof wn);
    snprintf(id, sizeof id, "qk_%s_%s_k%lld", wn, an, (long long)K);
    cg_ident(id, k->name, sizeof k->name);
    out_printf(&ks->text, "/* %s weights x %s inputs, K = %lld: %s kernel, %d-bit storage, block %d */\n", wn, an,
               (long long)K, sp.kind == 1 ? "integer (vpdpbusd)" : "fp32-chain", sp.cls, sp.block);
    out_printf(&ks->text, "BQ_QK_DEFINE(%s, %d, %d, %d, %d, %d, %d, %lld)\n", k->name, sp.kind, sp.cls, sp.lut, sp.skind,
               sp.p2, sp.block, (long long)nb);
    return k->name;
}

static bool emit_linear(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *x = ty(cg, n->in[0]), *w = ty(cg, n->in[1]);
    if (x->dtype != DT_F32) return unsupported(cg, node_id(cg, n), "a non-f32 Linear");
    const IrValue *wv = &cg->g->vals[n->in[1]];
    int tb = (int)n->attr.linear.trans_b;
    bool packed = w->dtype == DT_U8;   /* quantised rows [N, bytes(K)] (passes/quantise_weights.c) */
    if (packed && !IR_DIM_IS_CONST(x->dims[x->rank - 1]))
        return unsupported(cg, node_id(cg, n), "a quantised Linear of unknown width");
    int64_t K = packed ? x->dims[x->rank - 1] : tb ? w->dims[1] : w->dims[0];
    int64_t N = packed || tb ? w->dims[0] : w->dims[1];
    const char *bias = n->nin > 2 && n->in[2] != IR_NONE ? cg_vname(cg, n->in[2]) : "NULL";
    if (n->nin > 2 && n->in[2] != IR_NONE && !ir_format_is_fp32(&n->attr.linear.bias_format) &&
        ty(cg, n->in[2])->dtype == DT_F32)   /* rounded through bias_format at compile time */
        bias = weight_ptr(cg, cg_weight_xform(cg->weights, cg->m->arena, &cg->g->vals[n->in[2]], CG_X_ROUND,
                                              &n->attr.linear.bias_format, 0, 0, 0), "float");
    const char *M = cg_numel(cg, x, 0, x->rank - 1), *X = cg_vname(cg, n->in[0]), *Y = cg_vname(cg, n->out[0]);
    if (!cg_linear_quantised(n)) {
        int e = cg_weight(cg->weights, wv, true, N, K, tb);
        out_printf(o, "    bq_matmul_f32_packed(m->isa, m->pool, %s, %lld, %s, %s, %d, %s, %lld, %s, %lld, %lld);\n", X,
                   (long long)K, weight_ptr(cg, e, "float"), bias, (int)n->attr.linear.relu, Y, (long long)N, M,
                   (long long)N, (long long)K);
        return true;
    }
    /* The weight in the blob as cg_plan.c stored it: packed for a fast kernel instantiated
     * for this (formats, K), or the rows bq_qmatmul reads. */
    bool qk;
    const char *wp = weight_ptr(cg, cg_linear_qweight(cg, n, N, K, &qk), "unsigned char");
    out_printf(o, "    {\n        static const bq_format fa_ = %s, fw_ = %s;\n",
               cg_format_init(cg, &n->attr.linear.input_format), cg_format_init(cg, &n->attr.linear.weight_format));
    if (qk) {
        const char *kn = kernel_for(cg, n, K);
        out_printf(o, "        bq_status s_ = bq_qk_matmul_spec(m->isa, m->pool, &fa_, %s, %lld, &fw_, %s, %s, %d, %s, %lld, %s, "
                      "%lld, %lld, BQ_QK_AVX512_FN(%s), %s_portable);\n",
                   X, (long long)K, wp, bias, (int)n->attr.linear.relu, Y, (long long)N, M, (long long)N, (long long)K, kn, kn);
    } else {
        out_printf(o, "        bq_status s_ = bq_qmatmul(m->isa, m->pool, &fa_, %s, %lld, &fw_, %s, %s, %d, %s, %lld, %s, %lld, %lld);\n",
                   X, (long long)K, wp, bias, (int)n->attr.linear.relu, Y, (long long)N, M, (long long)N, (long long)K);
    }
    out_printf(o, "        if (s_ != BQ_OK) return s_;\n    }\n");
    return true;
}

static bool emit_matmul(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *a = ty(cg, n->in[0]), *b = ty(cg, n->in[1]), *c = ty(cg, n->out[0]);
    if (a->dtype != DT_F32 || a->rank < 2 || b->rank < 2) return unsupported(cg, node_id(cg, n), "MatMul other than f32 with rank >= 2");
    IrDim M = a->dims[a->rank - 2], K = a->dims[a->rank - 1], N = b->dims[b->rank - 1];
    /* Batch dims: equal, or b has none (broadcast weight-like operand). */
    bool bbatch = b->rank > 2;
    if (bbatch && (b->rank != a->rank || c->rank != a->rank))
        return unsupported(cg, node_id(cg, n), "MatMul with broadcast batch dimensions");
    for (int d = 0; bbatch && d < a->rank - 2; d++)
        if (a->dims[d] != b->dims[d]) return unsupported(cg, node_id(cg, n), "MatMul with broadcast batch dimensions");
    const char *batch = cg_numel(cg, a, 0, a->rank - 2), *mk = cg_dim(cg, ir_dim_mul(cg->m, M, K));
    const char *kn = cg_dim(cg, ir_dim_mul(cg->m, K, N)), *mn = cg_dim(cg, ir_dim_mul(cg->m, M, N));
    out_printf(o, "    for (int64_t b_ = 0; b_ < %s; b_++)\n", batch);
    out_printf(o, "        bq_matmul_f32(m->isa, m->pool, %s + b_ * %s, %s, %s + %s, %s, 0, NULL, 0, %s + b_ * %s, %s, %s, %s, %s);\n",
               cg_vname(cg, n->in[0]), mk, cg_dim(cg, K), cg_vname(cg, n->in[1]), bbatch ? cg_fmt(cg, "b_ * %s", kn) : "0",
               cg_dim(cg, N), cg_vname(cg, n->out[0]), mn, cg_dim(cg, N), cg_dim(cg, M), cg_dim(cg, N), cg_dim(cg, K));
    return true;
}

static bool emit_layernorm(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *x = ty(cg, n->in[0]);
    int ax = axis_of(n->attr.layernorm.axis, x->rank);
    if (x->dtype != DT_F32 || ax != x->rank - 1 || n->nout > 1)
        return unsupported(cg, node_id(cg, n), "LayerNormalization other than f32 over the last axis with one output");
    out_printf(o, "    bq_layernorm_f32(%s, %s, %s, %.9gf, %s, %s, %s);\n", cg_vname(cg, n->in[0]), cg_vname(cg, n->in[1]),
               n->nin > 2 && n->in[2] != IR_NONE ? cg_vname(cg, n->in[2]) : "NULL", n->attr.layernorm.epsilon,
               cg_vname(cg, n->out[0]), cg_numel(cg, x, 0, x->rank - 1), cg_dim(cg, x->dims[x->rank - 1]));
    return true;
}

static bool emit_softmax(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *x = ty(cg, n->in[0]);
    if (n->op != OP_SOFTMAX || x->dtype != DT_F32 || axis_of(n->attr.axis.axis, x->rank) != x->rank - 1)
        return unsupported(cg, node_id(cg, n), "Softmax other than f32 over the last axis");
    const char *numel = cg_numel(cg, x, 0, x->rank);
    out_printf(o, "    memcpy(%s, %s, (size_t)%s * sizeof(float));\n", cg_vname(cg, n->out[0]), cg_vname(cg, n->in[0]), numel);
    out_printf(o, "    bq_softmax_f32(%s, %s, %s);\n", cg_vname(cg, n->out[0]), cg_numel(cg, x, 0, x->rank - 1),
               cg_dim(cg, x->dims[x->rank - 1]));
    return true;
}

static bool emit_attention(CgGraph *cg, Out *o, const IrNode *n)
{
    const IrType *q = ty(cg, n->in[0]);
    int64_t H = n->attr.attention.num_heads;
    if (!IR_DIM_IS_CONST(q->dims[2])) return unsupported(cg, node_id(cg, n), "attention with an unknown model width");
    int64_t E = q->dims[2], D = E / H;
    const char *B = cg_dim(cg, q->dims[0]), *S = cg_dim(cg, q->dims[1]);
    const char *mask = cg_vname(cg, n->in[3]);
    if (ty(cg, n->in[3])->dtype != DT_I64) return unsupported(cg, node_id(cg, n), "an attention mask that is not i64");
    const char *qkv = cg_fmt(cg, "%s, %s, %s, %lld", cg_vname(cg, n->in[0]), cg_vname(cg, n->in[1]),
                             cg_vname(cg, n->in[2]), (long long)E);
    const char *msk = cg_fmt(cg, "%s, %d, %.9gf", mask, (int)n->attr.attention.causal, n->attr.attention.scale);
    if (!cg->decode && n->nin > 4 && n->nout < 3)
        return unsupported(cg, node_id(cg, n), "attention with past but without present outputs");
    /* With number formats: the _q kernels, which return a status (their buffers are malloc'd). */
    const bq_format *f[4] = {&n->attr.attention.qk_input_format, &n->attr.attention.qk_weight_format,
                             &n->attr.attention.pv_input_format, &n->attr.attention.pv_weight_format};
    bool quant = !ir_format_is_fp32(f[0]) || !ir_format_is_fp32(f[1]) || !ir_format_is_fp32(f[2]) || !ir_format_is_fp32(f[3]);
    const char *qv = quant ? "_q" : "", *fa = quant ? "&f_, " : "", *pre = quant ? "    s_ = " : "";
    const char *post = quant ? "        if (s_ != BQ_OK) return s_;\n    }\n" : "";
    if (cg->decode) {
        /* The cache of layer slot/2: its formats and quantised keys/values are the ones the
         * state was planned with (cg_api.c: <name>_attn_fmt, qkv). */
        int slot = cg->vals[n->in[4]].index;
        const char *fl = cg_fmt(cg, "&%s_attn_fmt[%d], ", cg->prefix, slot / 2), *qc = cg_fmt(cg, "m->qkv[%d], ", slot / 2);
        out_printf(o, "    %sbq_attention_cached%s_f32(m->isa, m->pool, %s%s, %s, m->kv[%d], m->kv[%d], %sm->cfg.max_ctx, %s, %s, %s, S_past, %lld, %lld, m->scratch);\n%s",
                   quant ? "{\n        bq_status s_ = " : "", qv, quant ? fl : "", qkv, msk, slot, slot + 1, quant ? qc : "",
                   cg_vname(cg, n->out[0]), B, S, (long long)H, (long long)D, post);
        return true;
    }
    if (quant)
        out_printf(o, "    {\n        static const bq_attn_formats f_ = {%s,\n            %s,\n            %s,\n            %s};\n"
                      "        bq_status s_;\n", cg_format_init(cg, f[0]), cg_format_init(cg, f[1]), cg_format_init(cg, f[2]),
                   cg_format_init(cg, f[3]));
    bool past = n->nin > 4;
    /* Without past, K/V go to temporaries the kernel needs anyway (it attends over them). */
    const char *P = past ? cg_dim(cg, ty(cg, n->in[4])->dims[2]) : "0";
    const char *pk = past ? cg_vname(cg, n->in[4]) : "NULL", *pv = past ? cg_vname(cg, n->in[5]) : "NULL";
    const char *ok = past ? cg_vname(cg, n->out[1]) : "m->kvtmp[0]", *ov = past ? cg_vname(cg, n->out[2]) : "m->kvtmp[1]";
    out_printf(o, "    %sbq_attention%s_f32(m->isa, m->pool, %s%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %lld, %lld, m->scratch);\n%s",
               pre, qv, fa, qkv, pk, pv, msk, ok, ov, cg_vname(cg, n->out[0]), B, S, P, (long long)H, (long long)D, post);
    return true;
}

/* ---- dispatch ---- */

typedef bool (*EmitFn)(CgGraph *, Out *, const IrNode *);
static const EmitFn emitters[OP__COUNT] = CG_OP_EMITTERS;

bool cg_emit_node(CgGraph *cg, Out *o, IrId id)
{
    const IrNode *n = &cg->g->nodes[id];
    /* Nodes whose every result is known at compile time compute nothing at run time. */
    bool needed = false;
    for (uint32_t k = 0; k < n->nout; k++) {
        StoreKind s = cg->vals[n->out[k]].kind;
        needed |= s != SK_STATIC && s != SK_LOCAL && s != SK_NONE;
    }
    if (!needed) return true;
    if (!emitters[n->op]) return unsupported(cg, id, cg_fmt(cg, "op %s", ir_ops[n->op].name));
    return emitters[n->op](cg, o, n);
}
