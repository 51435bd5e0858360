/* fuse_layernorm.c — the opset-13/14 LayerNorm decomposition → LayerNormalization.
 *
 * Before opset 17 exporters spell LayerNorm out (PyTorch's native_layer_norm symbolic):
 *     mean = ReduceMean(x, axes=[-1]);  d = Sub(x, mean)
 *     var  = ReduceMean(Pow(d, 2), axes=[-1]);  std = Sqrt(Add(var, eps))
 *     y    = Add(Mul(Div(d, std), gamma), beta)
 * Fusing it makes every opset look like opset 17 to later passes and the code generator,
 * which have one LayerNorm to plan and specialise. The fused op computes the same formula
 * (runtime/bqcrt.h: mean, then the mean of squared deviations); rounding may differ from
 * the decomposition in the last bits, well inside the 1e-4 agreement with ONNX Runtime.
 */
#include <stdlib.h>

#include "pass.h"

/* ReduceMean over exactly the last axis, keepdims. */
static IrNode *mean_last(const IrGraph *g, IrId v, IrId *x)
{
    IrNode *n = pat_def_op(g, v, OP_REDUCE_MEAN);
    if (!n || !n->attr.reduce.keepdims || n->attr.reduce.axes.n != 1) return NULL;
    int rank = g->vals[n->in[0]].type.rank;
    if (rank < 1 || pat_axis(n->attr.reduce.axes.v[0], rank) != rank - 1) return NULL;
    *x = n->in[0];
    return n;
}

/* Value `v` is `op(a, b)`: the node, with its operands in *a and *b. */
static IrNode *binary(const IrGraph *g, IrId v, IrOp op, IrId *a, IrId *b)
{
    IrNode *n = pat_def_op(g, v, op);
    if (!n) return NULL;
    *a = n->in[0];
    *b = n->in[1];
    return n;
}

/* A [C] f32 constant matching the normalised extent. */
static bool is_affine(const IrGraph *g, IrId v, IrDim C)
{
    if (!ir_is_const(g, v)) return false;
    const IrType *t = &g->vals[v].type;
    return t->dtype == DT_F32 && t->rank == 1 && t->dims[0] == C;
}

/* Matches the normalisation core ending at `v` (the Div); fills x and eps. */
static bool match_core(const IrGraph *g, const uint32_t *uses, IrId v, IrId *x, double *eps, IrNode **nodes)
{
    IrId d, std, var_eps, var, epsv, sq, two, d2, x2;
    IrNode *div = binary(g, v, OP_DIV, &d, &std);
    IrNode *sub = div ? binary(g, d, OP_SUB, x, &var /* mean, reused below */) : NULL;
    if (!sub) return false;
    IrId mean = var;
    IrNode *rm1 = mean_last(g, mean, &x2);
    if (!rm1 || x2 != *x) return false;
    IrNode *sqrt = pat_def_op(g, std, OP_SQRT);
    IrNode *add = sqrt ? binary(g, sqrt->in[0], OP_ADD, &var_eps, &epsv) : NULL;
    if (!add) return false;
    if (!pat_const_scalar(g, epsv, eps)) {
        IrId t = var_eps;
        var_eps = epsv;
        epsv = t;
        if (!pat_const_scalar(g, epsv, eps)) return false;
    }
    IrNode *rm2 = mean_last(g, var_eps, &sq);
    IrNode *pow = rm2 ? binary(g, sq, OP_POW, &d2, &two) : NULL;
    if (!pow || d2 != d || !pat_const_all(g, two, 2.0)) return false;
    /* d feeds exactly Pow and Div; everything else is used once. */
    if (uses[d] != 2 || !pat_single_use(g, uses, mean) || !pat_single_use(g, uses, sq) ||
        !pat_single_use(g, uses, var_eps) || !pat_single_use(g, uses, sqrt->in[0]) || !pat_single_use(g, uses, std))
        return false;
    nodes[0] = rm1, nodes[1] = sub, nodes[2] = pow, nodes[3] = rm2, nodes[4] = add, nodes[5] = sqrt, nodes[6] = div;
    return true;
}

static bool fuse_at(IrGraph *g, const uint32_t *uses, IrNode *div)
{
    IrId x;
    double eps;
    IrNode *core[7];
    if (!match_core(g, uses, div->out[0], &x, &eps, core)) return false;
    const IrType *xt = &g->vals[x].type;
    if (xt->dtype != DT_F32 || xt->rank < 1) return false;
    IrDim C = xt->dims[xt->rank - 1];
    /* Optional affine tail: Mul by gamma, then Add beta. */
    IrId y = div->out[0], gamma = IR_NONE, beta = IR_NONE, a, b;
    IrNode *mul = NULL, *add = NULL;
    for (uint32_t i = 0; i < g->nnodes && pat_single_use(g, uses, y); i++) {
        IrNode *n = &g->nodes[i];
        if (n->dead || n->op != OP_MUL || (n->in[0] != y && n->in[1] != y)) continue;
        IrId other = n->in[0] == y ? n->in[1] : n->in[0];
        if (is_affine(g, other, C)) mul = n, gamma = other;
        break;
    }
    if (mul) {
        y = mul->out[0];
        for (uint32_t i = 0; i < g->nnodes && pat_single_use(g, uses, y); i++) {
            IrNode *n = &g->nodes[i];
            if (n->dead || n->op != OP_ADD || (n->in[0] != y && n->in[1] != y)) continue;
            a = n->in[0], b = n->in[1];
            IrId other = a == y ? b : a;
            if (is_affine(g, other, C)) add = n, beta = other;
            break;
        }
        if (add) y = add->out[0];
    }
    if (gamma == IR_NONE) {
        /* LayerNormalization requires a scale: use ones, which changes no value. */
        if (!IR_DIM_IS_CONST(C) || C < 1) return false;
        int64_t n = C;
        float *ones = arena_alloc_aligned(g->model->arena, (size_t)n * sizeof(float), 64);
        for (int64_t i = 0; i < n; i++) ones[i] = 1.0f;
        IrType t = {.dtype = DT_F32, .rank = 1, .dims = {C}};
        gamma = ir_const_add(g, ir_unique_name(g, "layernorm_ones"), &t, ones, (size_t)n * sizeof(float));
    }
    /* The first node of the pattern becomes the LayerNormalization producing y. */
    IrNode *ln = core[0];
    uint32_t id = (uint32_t)(ln - g->nodes);
    for (int i = 1; i < 7; i++) core[i]->dead = true;
    if (mul) mul->dead = true;
    if (add) add->dead = true;
    ln->op = OP_LAYER_NORM;
    ir_attr_defaults(OP_LAYER_NORM, &ln->attr);
    ln->attr.layernorm.axis = -1;
    ln->attr.layernorm.epsilon = (float)eps;
    ln->nin = beta == IR_NONE ? 2 : 3;
    ln->in = arena_alloc(g->model->arena, 3 * sizeof(IrId));
    ln->in[0] = x, ln->in[1] = gamma, ln->in[2] = beta;
    g->vals[ln->out[0]].def = IR_NONE;
    ln->out[0] = y;
    g->vals[y].def = id;
    return true;
}

bool pass_fuse_layernorm(PassCtx *c)
{
    IrGraph *g = c->g;
    uint32_t *uses = ir_use_counts(g);
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (!g->nodes[i].dead && g->nodes[i].op == OP_DIV && fuse_at(g, uses, &g->nodes[i])) c->changed++;
    free(uses);
    ir_graph_compact(g);
    ir_dce(g);
    return true;
}
