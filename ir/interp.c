/* interp.c — the reference interpreter: runs a graph on concrete tensors, node by node.
 *
 * Shapes are never computed here: for each node the interpreter hands the concrete input types
 * (and the values of small integer tensors) to the same per-op infer function the compiler
 * uses, in concrete mode, allocates the results it reports, and calls the op's exec function
 * (ops.def "exec" column). Constants are borrowed from the model (copied only if a payload is
 * misaligned for its element type, which reading it in place would make undefined behaviour);
 * every other tensor is freed after its last reader (use counts), so peak memory is the live
 * set, not the graph. ir_eval runs only the nodes a set of wanted values depends on, which is how passes
 * fold constants and check a rewrite on probe inputs.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "interp_int.h"

const IrExecFn ir_exec_fns[OP__COUNT] = {
#define OP(id, name, inmin, inmax, outmin, outmax, since, flags, infer, exec) [OP_##id] = exec,
#include "ops.def"
#undef OP
};

/* Ops whose result shapes come from a branch or from float operand values, not from
 * inference: their exec functions allocate the results. */
static const bool exec_allocates[OP__COUNT] = {[OP_IF] = true, [OP_RANGE] = true};

#define MAX_DEPTH 64   /* If nesting */

typedef struct Run {
    IrExecCtx x;
    IrGraph *g;
    IrTensor *vals;            /* per value: its tensor while live */
    bool *have;                /* vals[v] holds v */
    uint32_t *uses;            /* reads of each value still to come */
} Run;

static void run_init(Run *r, IrGraph *g, const IrRunOptions *opt, bq_isa isa, int depth)
{
    memset(r, 0, sizeof *r);
    r->g = g;
    r->x = (IrExecCtx){.g = g, .node = IR_NONE, .isa = isa, .opt = opt, .depth = depth};
    r->vals = calloc(g->nvals ? g->nvals : 1, sizeof *r->vals);
    r->have = calloc(g->nvals ? g->nvals : 1, sizeof *r->have);
    if (!r->vals || !r->have) unreachable("out of memory");
}

static void run_free(Run *r)
{
    for (uint32_t v = 0; v < r->g->nvals; v++) ir_tensor_free(&r->vals[v]);
    free(r->vals);
    free(r->have);
    free(r->uses);
}

static void bind(Run *r, IrId v, const IrTensor *t)
{
    r->vals[v] = *t;
    r->vals[v].owned = false;   /* the caller's data: borrowed */
    r->have[v] = true;
}

/* v's tensor, materialising a constant on first use. NULL if v has no value (yet). */
static IrTensor *value_tensor(Run *r, IrId v)
{
    if (r->have[v]) return &r->vals[v];
    const IrValue *val = ir_val(r->g, v);
    if (val->kind != IR_VAL_CONST) return NULL;
    int64_t dims[IR_MAX_RANK];
    for (int d = 0; d < val->type.rank; d++) dims[d] = val->type.dims[d];
    size_t es = ir_dtype_size(val->type.dtype);
    IrTensor *t = &r->vals[v];
    if (!val->data || (uintptr_t)val->data % es == 0) {
        ir_tensor_borrow(t, val->type.dtype, val->type.rank, dims, val->data);
    } else {
        /* Misaligned payloads would be undefined behaviour to read as typed elements. */
        if (!ir_tensor_alloc(t, val->type.dtype, val->type.rank, dims)) return NULL;
        memcpy(t->data, val->data, t->nbytes);
    }
    assert(val->nbytes == t->nbytes || !val->data);
    r->have[v] = true;
    return t;
}

static void drop(Run *r, IrId v)
{
    ir_tensor_free(&r->vals[v]);
    r->have[v] = false;
}

/* ---- one node ---- */

static void svals_of(const IrTensor *t, IrSVal *sv)
{
    sv->n = ir_tensor_numel(t);
    for (int64_t i = 0; i < sv->n; i++) {
        int64_t v = exec_get_i64(t, i);
        /* Far-negative data would read as a symbol; any such value clamps the same way. */
        sv->v[i] = v <= IR_DIM_SYM_LIMIT ? IR_DIM_SYM_LIMIT + 1 : v;
    }
}

/* Output types from concrete-mode inference; allocates out[k] for every result the node has. */
static bool infer_outputs(Run *r, IrId ni, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    IrType *tin = calloc(n->nin + 1, sizeof *tin), *tout = calloc(n->nout + 1, sizeof *tout);
    const IrType **pin = calloc(n->nin + 1, sizeof *pin);
    IrSVal *sv = calloc(n->nin + 1, sizeof *sv), *svout = calloc(n->nout + 1, sizeof *svout);
    const IrSVal **psv = calloc(n->nin + 1, sizeof *psv);
    if (!tin || !tout || !pin || !sv || !svout || !psv) unreachable("out of memory");
    for (uint32_t k = 0; k < n->nin; k++) {
        if (!in[k]) continue;
        tin[k] = (IrType){.dtype = in[k]->dtype, .rank = (int8_t)in[k]->rank};
        for (int d = 0; d < in[k]->rank; d++) tin[k].dims[d] = in[k]->dims[d];
        pin[k] = &tin[k];
        if (!ir_dtype_is_float(in[k]->dtype) && ir_tensor_numel(in[k]) <= IR_MAX_SVAL) {
            svals_of(in[k], &sv[k]);
            psv[k] = &sv[k];
        }
    }
    IrInferCtx c = {.m = r->g->model, .g = r->g, .node = ni, .concrete = true};
    /* Concrete results never refer to the dimension table: drop whatever inference added. */
    uint32_t npoly = c.m->dims.npoly, nopaque = c.m->dims.nopaque;
    bool ok = ir_infer_fns[n->op](&c, n, pin, psv, tout, svout);
    c.m->dims.npoly = npoly;
    c.m->dims.nopaque = nopaque;
    for (uint32_t k = 0; ok && k < n->nout; k++) {
        if (n->out[k] == IR_NONE) continue;
        int64_t dims[IR_MAX_RANK];
        if (!ir_type_is_concrete(&tout[k])) {
            char buf[256];
            ir_type_format(r->g->model, &tout[k], buf, sizeof buf);
            ok = exec_error(&r->x, "result %u has type %s at run time; expected concrete dimensions", k, buf);
            break;
        }
        for (int d = 0; d < tout[k].rank; d++) dims[d] = tout[k].dims[d];
        ok = exec_alloc_like(&r->x, &out[k], tout[k].dtype, tout[k].rank, dims);
    }
    free(tin), free(tout), free(pin), free(sv), free(svout), free(psv);
    return ok;
}

static void trace(const Run *r, IrId ni, const IrNode *n, const IrTensor *out)
{
    fprintf(stderr, "[bqc trace] %s#%u %s '%s' ->", r->g->name, ni, ir_ops[n->op].name, n->name);
    for (uint32_t k = 0; k < n->nout; k++) {
        char buf[256] = "_";
        if (out[k].data) ir_tensor_format_type(&out[k], buf, sizeof buf);
        fprintf(stderr, "%s %s %s", k ? "," : "", n->out[k] == IR_NONE ? "_" : ir_val(r->g, n->out[k])->name, buf);
    }
    fputc('\n', stderr);
}

static bool run_node(Run *r, IrId ni)
{
    const IrNode *n = ir_node(r->g, ni);
    r->x.node = ni;
    IrTensor **in = calloc(n->nin + 1, sizeof *in), *out = calloc(n->nout + 1, sizeof *out);
    if (!in || !out) unreachable("out of memory");
    bool ok = true;
    for (uint32_t k = 0; ok && k < n->nin; k++) {
        if (n->in[k] == IR_NONE) continue;
        in[k] = value_tensor(r, n->in[k]);
        if (!in[k]) ok = exec_error(&r->x, "operand %u ('%s') has no value (an omitted input?)", k, ir_val(r->g, n->in[k])->name);
    }
    ok = ok && (exec_allocates[n->op] || infer_outputs(r, ni, n, in, out));
    ok = ok && ir_exec_fns[n->op](&r->x, n, in, out);
    if (ok && r->x.opt->trace) trace(r, ni, n, out);
    for (uint32_t k = 0; k < n->nout; k++) {
        IrId v = n->out[k];
        if (!ok || v == IR_NONE || r->have[v] || r->uses[v] == 0) {   /* failed, unused or bound */
            ir_tensor_free(&out[k]);
            continue;
        }
        r->vals[v] = out[k];
        r->have[v] = true;
    }
    for (uint32_t k = 0; ok && k < n->nin; k++)
        if (n->in[k] != IR_NONE && --r->uses[n->in[k]] == 0) drop(r, n->in[k]);
    free(in);
    free(out);
    return ok;
}

static bool run_nodes(Run *r, const bool *needed)
{
    for (uint32_t i = 0; i < r->g->nnodes; i++) {
        if (r->g->nodes[i].dead || (needed && !needed[i])) continue;
        if (!run_node(r, i)) return false;
    }
    return true;
}

/* Hands value v to the caller: moved if this was its last use, else copied. */
static bool take_value(Run *r, IrId v, IrTensor *dst)
{
    IrTensor *t = value_tensor(r, v);
    if (!t)
        return diag_error(r->g->model->diag, r->g->model->path, "graph output '%s' has no value (an omitted input?)",
                          ir_val(r->g, v)->name);
    r->uses[v]--;
    if (t->owned && r->uses[v] == 0) {
        *dst = *t;
        t->owned = false;
        drop(r, v);
        return true;
    }
    if (!ir_tensor_alloc(dst, t->dtype, t->rank, t->dims))
        return diag_error(r->g->model->diag, r->g->model->path, "out of memory copying '%s'", ir_val(r->g, v)->name);
    if (t->nbytes) memcpy(dst->data, t->data, t->nbytes);
    return true;
}

static bool collect(Run *r, const IrId *vals, uint32_t n, IrTensor *out)
{
    for (uint32_t k = 0; k < n; k++) {
        if (take_value(r, vals[k], &out[k])) continue;
        for (uint32_t j = 0; j < k; j++) ir_tensor_free(&out[j]);
        return false;
    }
    return true;
}

/* ---- input validation ---- */

/* The symbol index if d is exactly one named symbol ("seq"), else -1. */
static int single_symbol(const IrModel *m, IrDim d)
{
    IrDimPoly p;
    if (IR_DIM_IS_CONST(d) || !ir_dim_poly(m, d, &p) || p.opaque || p.nterms != 1 || p.t[0].coef != 1) return -1;
    int sym = -1;
    for (int s = 0; s < IR_MAX_SYMS; s++) {
        if (p.t[0].exp[s] == 0) continue;
        if (p.t[0].exp[s] != 1 || sym >= 0) return -1;
        sym = s;
    }
    return sym;
}

static bool shape_error(const IrGraph *g, const IrValue *v, const IrTensor *t, const char *with)
{
    char have[256], want[256];
    ir_tensor_format_type(t, have, sizeof have);
    ir_type_format(g->model, &v->type, want, sizeof want);
    return diag_error(g->model->diag, g->model->path, "input '%s' has shape %s but the model expects %s%s", v->name,
                      have, want, with);
}

/* dtype, rank, fixed extents and single-symbol dims; binds the symbols as it goes. */
static bool check_input(const IrGraph *g, uint32_t i, const IrTensor *t, int64_t *symv, uint32_t *symfrom)
{
    const IrModel *m = g->model;
    const IrValue *v = ir_val(g, g->inputs[i]);
    char want[256];
    ir_type_format(m, &v->type, want, sizeof want);
    if (!t->data && ir_tensor_numel(t) > 0) return diag_error(m->diag, m->path, "input '%s' has no data", v->name);
    if (v->type.dtype != DT_UNDEF && t->dtype != v->type.dtype)
        return diag_error(m->diag, m->path, "input '%s' has element type %s; the model expects %s", v->name,
                          ir_dtype_name(t->dtype), want);
    if (v->type.rank < 0) return true;
    if (t->rank != v->type.rank)
        return diag_error(m->diag, m->path, "input '%s' has rank %d; the model expects %s", v->name, t->rank, want);
    for (int d = 0; d < t->rank; d++) {
        IrDim dim = v->type.dims[d];
        if (IR_DIM_IS_CONST(dim)) {
            if (dim != t->dims[d]) return shape_error(g, v, t, "");
            continue;
        }
        int s = single_symbol(m, dim);
        if (s < 0) continue;
        if (symv[s] < 0) {
            symv[s] = t->dims[d];
            symfrom[s] = i;
        } else if (symv[s] != t->dims[d]) {
            char with[256];
            snprintf(with, sizeof with, " with %s = %lld (from '%s')", m->dims.sym[s], (long long)symv[s],
                     ir_val(g, g->inputs[symfrom[s]])->name);
            return shape_error(g, v, t, with);
        }
    }
    return true;
}

/* Expressions (past + seq) once every single symbol is bound. */
static bool check_exprs(const IrGraph *g, uint32_t i, const IrTensor *t, const int64_t *symv)
{
    const IrValue *v = ir_val(g, g->inputs[i]);
    for (int d = 0; v->type.rank >= 0 && d < t->rank; d++) {
        IrDim dim = v->type.dims[d];
        if (IR_DIM_IS_CONST(dim) || single_symbol(g->model, dim) >= 0) continue;
        int64_t want = ir_dim_eval(g->model, dim, symv);
        if (want < 0 || want == t->dims[d]) continue;
        char expr[128], with[256];
        ir_dim_format(g->model, dim, expr, sizeof expr);
        snprintf(with, sizeof with, " with %s = %lld", expr, (long long)want);
        return shape_error(g, v, t, with);
    }
    return true;
}

static bool check_inputs(const IrGraph *g, const IrTensor *in)
{
    int64_t symv[IR_MAX_SYMS];
    uint32_t symfrom[IR_MAX_SYMS] = {0};
    for (int s = 0; s < IR_MAX_SYMS; s++) symv[s] = -1;
    for (uint32_t i = 0; i < g->ninputs; i++)
        if (in[i].dtype != DT_UNDEF && !check_input(g, i, &in[i], symv, symfrom)) return false;
    for (uint32_t i = 0; i < g->ninputs; i++)
        if (in[i].dtype != DT_UNDEF && !check_exprs(g, i, &in[i], symv)) return false;
    return true;
}

/* ---- entry points ---- */

static const IrRunOptions default_options;

static bool run_graph(IrGraph *g, IrTensor *const *inputs, IrTensor *outputs, const IrRunOptions *opt, bq_isa isa,
                      int depth)
{
    Run r;
    run_init(&r, g, opt, isa, depth);
    r.uses = ir_use_counts(g);
    for (uint32_t i = 0; i < g->ninputs; i++)
        if (inputs[i] && inputs[i]->dtype != DT_UNDEF) bind(&r, g->inputs[i], inputs[i]);
    bool ok = run_nodes(&r, NULL) && collect(&r, g->outputs, g->noutputs, outputs);
    run_free(&r);
    return ok;
}

bool ir_run(IrGraph *g, const IrTensor *inputs, IrTensor *outputs, const IrRunOptions *opt)
{
    memset(outputs, 0, g->noutputs * sizeof *outputs);
    if (!check_inputs(g, inputs)) return false;
    IrTensor **in = calloc(g->ninputs + 1, sizeof *in);
    if (!in) unreachable("out of memory");
    for (uint32_t i = 0; i < g->ninputs; i++) in[i] = (IrTensor *)&inputs[i];
    bool ok = run_graph(g, in, outputs, opt ? opt : &default_options, bq_isa_detect(), 0);
    free(in);
    return ok;
}

bool interp_run_graph(IrExecCtx *parent, IrGraph *g, IrTensor *const *inputs, IrTensor *outputs)
{
    if (parent->depth >= MAX_DEPTH) return exec_error(parent, "If branches nested more than %d deep", MAX_DEPTH);
    memset(outputs, 0, g->noutputs * sizeof *outputs);
    return run_graph(g, inputs, outputs, parent->opt, parent->isa, parent->depth + 1);
}

bool exec_if(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    if (ir_tensor_numel(in[0]) != 1)
        return exec_error(x, "the condition has %lld elements; expected one", (long long)ir_tensor_numel(in[0]));
    uint32_t gi = exec_get_i64(in[0], 0) ? n->attr.if_.then_g : n->attr.if_.else_g;
    if (gi >= x->g->nsubs) unreachable("If refers to a missing branch graph");
    IrGraph *sub = x->g->subs[gi];
    if (sub->ninputs != n->nin - 1 || sub->noutputs != n->nout)
        return exec_error(x, "branch '%s' takes %u inputs and gives %u results; the node has %u and %u", sub->name,
                          sub->ninputs, sub->noutputs, n->nin - 1, n->nout);
    return interp_run_graph(x, sub, in + 1, out);
}

/* Marks the nodes `want` depends on, stopping at bound values and constants. */
static bool *needed_nodes(Run *r, const IrId *want, uint32_t nout, bool *needv)
{
    IrGraph *g = r->g;
    bool *need = calloc(g->nnodes + 1, sizeof *need);
    if (!need) unreachable("out of memory");
    for (uint32_t k = 0; k < nout; k++) needv[want[k]] = true;
    for (uint32_t i = g->nnodes; i-- > 0;) {
        const IrNode *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->nout && !n->dead && !need[i]; k++)
            need[i] = n->out[k] != IR_NONE && needv[n->out[k]] && !r->have[n->out[k]];
        if (!need[i]) continue;
        for (uint32_t k = 0; k < n->nin; k++)
            if (n->in[k] != IR_NONE && !r->have[n->in[k]]) needv[n->in[k]] = true;
    }
    return need;
}

bool ir_eval(IrGraph *g, const IrId *bind_ids, const IrTensor *bind_vals, uint32_t nbind, const IrId *want,
             IrTensor *out, uint32_t nout, const IrRunOptions *opt)
{
    memset(out, 0, nout * sizeof *out);
    Run r;
    run_init(&r, g, opt ? opt : &default_options, bq_isa_detect(), 0);
    for (uint32_t i = 0; i < nbind; i++) bind(&r, bind_ids[i], &bind_vals[i]);
    bool *needv = calloc(g->nvals + 1, sizeof *needv);
    if (!needv) unreachable("out of memory");
    bool *need = needed_nodes(&r, want, nout, needv);
    bool ok = true;
    for (uint32_t v = 0; ok && v < g->nvals; v++) {
        const IrValue *val = ir_val(g, v);
        if (!needv[v] || r.have[v] || val->kind == IR_VAL_CONST || (val->kind == IR_VAL_NODE && val->def != IR_NONE))
            continue;
        ok = diag_error(g->model->diag, g->model->path, "cannot evaluate: %s '%s' is needed but not bound",
                        val->kind == IR_VAL_INPUT ? "graph input" : "value", val->name);
    }
    r.uses = calloc(g->nvals + 1, sizeof *r.uses);
    if (!r.uses) unreachable("out of memory");
    for (uint32_t i = 0; i < g->nnodes; i++)
        for (uint32_t k = 0; need[i] && k < g->nodes[i].nin; k++)
            if (g->nodes[i].in[k] != IR_NONE) r.uses[g->nodes[i].in[k]]++;
    for (uint32_t k = 0; k < nout; k++) r.uses[want[k]]++;
    ok = ok && run_nodes(&r, need) && collect(&r, want, nout, out);
    free(needv);
    free(need);
    run_free(&r);
    return ok;
}
