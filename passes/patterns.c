/* patterns.c — the small vocabulary passes match with: "defined by op X", "constant scalar",
 * "single use", and a value replacement that keeps graph output names stable.
 *
 * Kept here rather than in any one pass because every fusion needs the same questions asked
 * the same way; none of it knows about a particular pattern.
 */
#include <math.h>
#include <string.h>

#include "pass.h"

IrNode *pat_def(const IrGraph *g, IrId v)
{
    if (v == IR_NONE || g->vals[v].kind != IR_VAL_NODE || g->vals[v].def == IR_NONE) return NULL;
    IrNode *n = &g->nodes[g->vals[v].def];
    return n->dead ? NULL : n;
}

IrNode *pat_def_op(const IrGraph *g, IrId v, IrOp op)
{
    IrNode *n = pat_def(g, v);
    return n && n->op == op ? n : NULL;
}

bool pat_const_scalar(const IrGraph *g, IrId v, double *out)
{
    if (!ir_is_const(g, v) || ir_type_numel(&g->vals[v].type) != 1) return false;
    *out = ir_const_elem_f64(&g->vals[v], 0);
    return true;
}

bool pat_const_all(const IrGraph *g, IrId v, double x)
{
    if (!ir_is_const(g, v)) return false;
    int64_t n = ir_type_numel(&g->vals[v].type);
    if (n < 1) return false;
    for (int64_t i = 0; i < n; i++)
        if (ir_const_elem_f64(&g->vals[v], i) != x) return false;
    return true;
}

bool pat_is_graph_output(const IrGraph *g, IrId v)
{
    for (uint32_t k = 0; k < g->noutputs; k++)
        if (g->outputs[k] == v) return true;
    return false;
}

bool pat_single_use(const IrGraph *g, const uint32_t *uses, IrId v)
{
    return uses[v] == 1 && !pat_is_graph_output(g, v);
}

bool pat_replace_value(IrGraph *g, IrId from, IrId to)
{
    if (from == to) return true;
    if (pat_is_graph_output(g, from)) {
        if (g->vals[to].kind == IR_VAL_INPUT || pat_is_graph_output(g, to)) return false;
        const char *name = g->vals[from].name;
        g->vals[from].name = arena_printf(g->model->arena, "%s.replaced%u", name, from);
        g->vals[to].name = name;
    }
    ir_replace_uses(g, from, to);
    return true;
}

int pat_axis(int64_t axis, int rank)
{
    if (axis < 0) axis += rank;
    return axis >= 0 && axis < rank ? (int)axis : -1;
}
