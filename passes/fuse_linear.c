/* fuse_linear.c — MatMul|Gemm with a constant weight, + bias Add, + Relu → bqc.Linear.
 *
 * Linear is the unit the precision plan quantises (one weight, one activation input, one
 * bias) and the code generator specialises, so every projection and FFN layer becomes one.
 * The fusion never changes a bit: the runtime's matmul contract adds the bias after the
 * full K reduction and applies ReLU last, exactly the MatMul → Add → Relu sequence it
 * replaces (Gemm only with alpha = beta = 1 and no transA, for the same reason).
 *
 * The rewrite happens in place: the MatMul node becomes the Linear and takes over the
 * value of the last node it absorbs, so names downstream (and graph outputs) are unchanged.
 */
#include <stdlib.h>

#include "pass.h"

/* The single consumer of v if it is `op` and v has no other use. */
static IrNode *sole_consumer(IrGraph *g, const uint32_t *uses, IrId v, IrOp op, uint32_t *operand)
{
    if (!pat_single_use(g, uses, v)) return NULL;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        if (n->dead) continue;
        for (uint32_t k = 0; k < n->nin; k++)
            if (n->in[k] == v) {
                if (n->op != op) return NULL;
                if (operand) *operand = k;
                return n;
            }
    }
    return NULL;
}

/* A constant f32 holding N values laid out along the last axis ([N], [1, N], [1, 1, N]). */
static bool is_bias(const IrGraph *g, IrId b, int64_t N)
{
    if (!ir_is_const(g, b)) return false;
    const IrType *t = &g->vals[b].type;
    if (t->dtype != DT_F32 || t->rank < 1 || ir_type_numel(t) != N || t->dims[t->rank - 1] != N) return false;
    return true;
}

/* The bias as a [N] constant (sharing the payload when the shape has leading 1s). */
static IrId bias_1d(IrGraph *g, IrId b, int64_t N)
{
    IrValue *v = &g->vals[b];
    if (v->type.rank == 1) return b;
    IrType t = {.dtype = DT_F32, .rank = 1, .dims = {N}};
    IrId c = ir_const_add(g, ir_unique_name(g, v->name), &t, g->vals[b].data, g->vals[b].nbytes);
    g->vals[c].file = g->vals[b].file;
    g->vals[c].file_offset = g->vals[b].file_offset;
    return c;
}

static void make_linear(IrGraph *g, IrNode *n, IrId x, IrId w, IrId bias, int trans_b, bool relu, IrId result)
{
    uint32_t id = (uint32_t)(n - g->nodes);
    n->op = OP_LINEAR;
    ir_attr_defaults(OP_LINEAR, &n->attr);
    n->attr.linear.trans_b = trans_b;
    n->attr.linear.relu = relu;
    n->nin = bias == IR_NONE ? 2 : 3;
    n->in = arena_alloc(g->model->arena, 3 * sizeof(IrId));
    n->in[0] = x;
    n->in[1] = w;
    n->in[2] = bias;
    if (n->out[0] != result) g->vals[n->out[0]].def = IR_NONE;  /* absorbed: now unused */
    n->out[0] = result;
    g->vals[result].def = id;
}

/* Absorbs a following bias Add and Relu; returns the last absorbed value. */
static IrId absorb_epilogue(IrGraph *g, const uint32_t *uses, IrId y, int64_t N, IrId *bias, bool *relu)
{
    uint32_t operand;
    IrNode *add = sole_consumer(g, uses, y, OP_ADD, &operand);
    if (add && *bias == IR_NONE && is_bias(g, add->in[1 - operand], N) &&
        g->vals[add->out[0]].type.rank == g->vals[y].type.rank) {
        *bias = bias_1d(g, add->in[1 - operand], N);
        add->dead = true;
        y = add->out[0];
    }
    IrNode *r = sole_consumer(g, uses, y, OP_RELU, NULL);
    if (r) {
        *relu = true;
        r->dead = true;
        y = r->out[0];
    }
    return y;
}

static bool fuse_matmul(IrGraph *g, const uint32_t *uses, IrNode *n)
{
    IrId x = n->in[0], w = n->in[1];
    const IrType *wt = &g->vals[w].type, *xt = &g->vals[x].type;
    if (!ir_is_const(g, w) || wt->dtype != DT_F32 || wt->rank != 2 || xt->dtype != DT_F32 || xt->rank < 2)
        return false;
    IrId bias = IR_NONE;
    bool relu = false;
    IrId y = absorb_epilogue(g, uses, n->out[0], wt->dims[1], &bias, &relu);
    make_linear(g, n, x, w, bias, 0, relu, y);
    return true;
}

static bool fuse_gemm(IrGraph *g, const uint32_t *uses, IrNode *n)
{
    IrId x = n->in[0], w = n->in[1], cin = n->nin > 2 ? n->in[2] : IR_NONE;
    const IrType *wt = &g->vals[w].type;
    if (n->attr.gemm.trans_a || n->attr.gemm.alpha != 1.0f || !ir_is_const(g, w) || wt->dtype != DT_F32 ||
        wt->rank != 2 || g->vals[x].type.dtype != DT_F32)
        return false;
    int64_t N = n->attr.gemm.trans_b ? wt->dims[0] : wt->dims[1];
    IrId bias = IR_NONE;
    if (cin != IR_NONE) {
        if (n->attr.gemm.beta != 1.0f || !is_bias(g, cin, N)) return false;
        bias = bias_1d(g, cin, N);
    }
    bool relu = false;
    IrId y = absorb_epilogue(g, uses, n->out[0], N, &bias, &relu);
    make_linear(g, n, x, w, bias, (int)n->attr.gemm.trans_b, relu, y);
    return true;
}

bool pass_fuse_linear(PassCtx *c)
{
    IrGraph *g = c->g;
    uint32_t *uses = ir_use_counts(g);
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        if (n->dead) continue;
        if ((n->op == OP_MATMUL && fuse_matmul(g, uses, n)) || (n->op == OP_GEMM && fuse_gemm(g, uses, n)))
            c->changed++;
    }
    free(uses);
    ir_graph_compact(g);
    ir_dce(g);
    return true;
}
