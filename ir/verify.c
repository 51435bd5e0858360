/* verify.c — the structural invariants every pass must preserve.
 *
 * The verifier checks what the rest of bqc assumes without checking: arities within the
 * ops.def bounds, operand ids in range, SSA (one definition per value, def links right),
 * topological order, defined graph outputs, well-formed constants and types, If nodes whose
 * branch graphs fit them, no dead nodes left behind; then it recurses into the branches.
 * It reports every violation it can find (one line each, naming the node) and returns false;
 * `--verify-each` runs it after every pass to name the pass that broke an invariant.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct Verify {
    const IrGraph *g;
    Diag *diag;
    char where[256];           /* "model.onnx: graph 'main'" */
    bool ok;
} Verify;

static void verr(Verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void verr(Verify *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(v->diag, DIAG_ERROR, v->where, fmt, ap);
    va_end(ap);
    v->ok = false;
}

#define NODE_ERR(v, i, ...) ((v)->ok = ir_node_error((v)->g, (i), __VA_ARGS__))

/* A type is well formed: known element type, rank in range, every symbolic dim in the table. */
static bool type_ok(const IrModel *m, const IrType *t, bool need_dtype)
{
    if ((need_dtype && t->dtype == DT_UNDEF) || t->dtype >= DT__COUNT || t->rank < -1 || t->rank > IR_MAX_RANK)
        return false;
    for (int i = 0; i < t->rank; i++) {
        IrDimPoly p;
        if (!IR_DIM_IS_CONST(t->dims[i]) ? !ir_dim_poly(m, t->dims[i], &p) : t->dims[i] < 0) return false;
    }
    return true;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_names(Verify *v)
{
    const IrGraph *g = v->g;
    const char **names = malloc((g->nvals ? g->nvals : 1) * sizeof *names);
    if (!names) unreachable("out of memory");
    for (uint32_t i = 0; i < g->nvals; i++) names[i] = g->vals[i].name ? g->vals[i].name : "";
    qsort(names, g->nvals, sizeof *names, name_cmp);
    for (uint32_t i = 1; i < g->nvals; i++)
        if (strcmp(names[i - 1], names[i]) == 0 && (i < 2 || strcmp(names[i - 2], names[i]) != 0))
            verr(v, "value name '%s' is used more than once", names[i]);
    free(names);
}

static void check_const(Verify *v, IrId id)
{
    const IrValue *val = &v->g->vals[id];
    int64_t n = ir_type_numel(&val->type);
    size_t es = ir_dtype_size(val->type.dtype);
    if (n < 0 || es == 0) {
        char t[192];
        ir_type_format(v->g->model, &val->type, t, sizeof t);
        verr(v, "constant '%s' has type %s; constants need an element type and a concrete shape", val->name, t);
    } else if ((uint64_t)n > UINT64_MAX / es || val->nbytes != (uint64_t)n * es) {
        verr(v, "constant '%s' has %llu bytes; %lld elements of %zu bytes need %llu", val->name,
             (unsigned long long)val->nbytes, (long long)n, es, (unsigned long long)((uint64_t)n * es));
    } else if (val->nbytes && !val->data) {
        verr(v, "constant '%s' has no data", val->name);
    }
    if (val->def != IR_NONE) verr(v, "constant '%s' has a defining node", val->name);
}

/* Values: kinds, types, graph inputs defined once, constants well formed. */
static void check_values(Verify *v, uint8_t *input_seen)
{
    const IrGraph *g = v->g;
    for (uint32_t k = 0; k < g->ninputs; k++) {
        IrId id = g->inputs[k];
        if (id >= g->nvals) {
            verr(v, "input %u refers to no value (%u)", k, id);
            continue;
        }
        if (g->vals[id].kind != IR_VAL_INPUT) verr(v, "input %u ('%s') is not an input value", k, g->vals[id].name);
        if (input_seen[id]++) verr(v, "input '%s' is listed more than once", g->vals[id].name);
    }
    for (uint32_t id = 0; id < g->nvals; id++) {
        const IrValue *val = &g->vals[id];
        if (val->kind == IR_VAL_DEAD) continue;   /* removed by DCE: only its id remains */
        if (!val->name) verr(v, "value %u has no name", id);
        if (!type_ok(g->model, &val->type, val->kind != IR_VAL_NODE))
            verr(v, "value '%s' has a malformed type", val->name ? val->name : "");
        if (val->kind == IR_VAL_CONST) check_const(v, id);
        else if (val->kind == IR_VAL_INPUT && !input_seen[id]) verr(v, "input value '%s' is not a graph input", val->name);
        else if (val->kind == IR_VAL_INPUT && val->def != IR_NONE) verr(v, "input '%s' has a defining node", val->name);
    }
}

/* Operands: in range, optional only where ops.def allows, defined before use. */
static void check_operands(Verify *v, IrId ni, const IrNode *n)
{
    const IrGraph *g = v->g;
    const IrOpInfo *oi = &ir_ops[n->op];
    for (uint32_t k = 0; k < n->nin; k++) {
        IrId id = n->in[k];
        if (id == IR_NONE) {
            if (k < oi->in_min || oi->in_max == VAR) NODE_ERR(v, ni, "input %u is omitted but required", k);
            continue;
        }
        if (id >= g->nvals) {
            NODE_ERR(v, ni, "input %u refers to no value (%u)", k, id);
            continue;
        }
        const IrValue *val = &g->vals[id];
        if (val->kind == IR_VAL_DEAD) NODE_ERR(v, ni, "input %u ('%s') was removed by DCE", k, val->name);
        if (val->kind == IR_VAL_NODE && (val->def == IR_NONE || val->def >= ni))
            NODE_ERR(v, ni, "input %u ('%s') is %s", k, val->name,
                     val->def == IR_NONE ? "not defined" : val->def == ni ? "its own result" : "defined by a later node");
    }
}

static void check_results(Verify *v, IrId ni, const IrNode *n, IrId *defined_by)
{
    const IrGraph *g = v->g;
    for (uint32_t k = 0; k < n->nout; k++) {
        IrId id = n->out[k];
        if (id == IR_NONE) {
            if (k < ir_ops[n->op].out_min) NODE_ERR(v, ni, "result %u is omitted but required", k);
            continue;
        }
        if (id >= g->nvals) {
            NODE_ERR(v, ni, "result %u refers to no value (%u)", k, id);
            continue;
        }
        const IrValue *val = &g->vals[id];
        if (val->kind != IR_VAL_NODE) {
            NODE_ERR(v, ni, "result %u ('%s') is a graph input or constant", k, val->name);
        } else if (defined_by[id] != IR_NONE) {
            NODE_ERR(v, ni, "result %u ('%s') is also defined by node #%u", k, val->name, defined_by[id]);
        } else {
            defined_by[id] = ni;
            if (val->def != ni)
                NODE_ERR(v, ni, "result %u ('%s') names node #%u as its definition", k, val->name, val->def);
        }
    }
}

static void check_if(Verify *v, IrId ni, const IrNode *n)
{
    const uint32_t gi[2] = {n->attr.if_.then_g, n->attr.if_.else_g};
    static const char *const names[2] = {"then", "else"};
    for (int b = 0; b < 2; b++) {
        if (gi[b] >= v->g->nsubs) {
            NODE_ERR(v, ni, "%s_branch refers to subgraph %u, but the graph has %u", names[b], gi[b], v->g->nsubs);
            continue;
        }
        const IrGraph *br = v->g->subs[gi[b]];
        if (br->ninputs != n->nin - 1 || br->noutputs != n->nout)
            NODE_ERR(v, ni, "%s_branch '@%s' has %u inputs and %u outputs; the node captures %u values and has %u results",
                     names[b], br->name, br->ninputs, br->noutputs, n->nin - 1, n->nout);
    }
}

static const char *arity_str(char *buf, size_t size, unsigned lo, unsigned hi)
{
    if (hi == VAR) snprintf(buf, size, "%u or more", lo);
    else if (lo == hi) snprintf(buf, size, "%u", lo);
    else snprintf(buf, size, "%u to %u", lo, hi);
    return buf;
}

static bool has_graph_attrs(IrOp op)
{
    for (size_t i = 0; i < ir_nattrs; i++)
        if (ir_attrs[i].op == op && ir_attrs[i].kind == AK_GRAPH) return true;
    return false;
}

static void check_node(Verify *v, IrId ni, IrId *defined_by)
{
    const IrNode *n = &v->g->nodes[ni];
    if (n->op >= OP__COUNT) {
        verr(v, "node #%u has no valid op (%d)", ni, (int)n->op);
        return;
    }
    const IrOpInfo *oi = &ir_ops[n->op];
    char want[32];
    if (n->dead) NODE_ERR(v, ni, "is marked dead but still in the graph (call ir_graph_compact)");
    if (n->nin < oi->in_min || (oi->in_max != VAR && n->nin > oi->in_max))
        NODE_ERR(v, ni, "has %u inputs; %s takes %s", n->nin, oi->name, arity_str(want, sizeof want, oi->in_min, oi->in_max));
    if (n->nout < oi->out_min || (oi->out_max != VAR && n->nout > oi->out_max))
        NODE_ERR(v, ni, "has %u results; %s gives %s", n->nout, oi->name,
                 arity_str(want, sizeof want, oi->out_min, oi->out_max));
    check_operands(v, ni, n);
    check_results(v, ni, n, defined_by);
    if (has_graph_attrs(n->op)) check_if(v, ni, n);
}

static void check_outputs(Verify *v)
{
    const IrGraph *g = v->g;
    for (uint32_t k = 0; k < g->noutputs; k++) {
        IrId id = g->outputs[k];
        if (id >= g->nvals) verr(v, "output %u refers to no value (%u)", k, id);
        else if ((g->vals[id].kind == IR_VAL_NODE && g->vals[id].def == IR_NONE) || g->vals[id].kind == IR_VAL_DEAD)
            verr(v, "output %u ('%s') is not defined", k, g->vals[id].name);
    }
}

static bool verify_graph(const IrGraph *g)
{
    Verify v = {.g = g, .diag = g->model->diag, .ok = true};
    snprintf(v.where, sizeof v.where, "%s: graph '%s'", g->model->path, g->name);
    uint8_t *input_seen = calloc(g->nvals ? g->nvals : 1, 1);
    IrId *defined_by = malloc((g->nvals ? g->nvals : 1) * sizeof *defined_by);
    if (!input_seen || !defined_by) unreachable("out of memory");
    for (uint32_t i = 0; i < g->nvals; i++) defined_by[i] = IR_NONE;
    check_names(&v);
    check_values(&v, input_seen);
    for (IrId i = 0; i < g->nnodes; i++) check_node(&v, i, defined_by);
    for (uint32_t id = 0; id < g->nvals; id++)
        if (g->vals[id].kind == IR_VAL_NODE && g->vals[id].def != IR_NONE && defined_by[id] == IR_NONE)
            verr(&v, "value '%s' names node #%u as its definition, which does not define it", g->vals[id].name,
                 g->vals[id].def);
    check_outputs(&v);
    free(input_seen);
    free(defined_by);
    for (uint32_t s = 0; s < g->nsubs; s++) {
        if (g->subs[s]->parent != g) verr(&v, "subgraph '%s' does not name this graph as its parent", g->subs[s]->name);
        v.ok &= verify_graph(g->subs[s]);
    }
    return v.ok;
}

bool ir_verify(const IrGraph *g) { return verify_graph(g); }
