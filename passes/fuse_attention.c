/* fuse_attention.c — recognise each layer's self-attention as one bqc.Attention.
 *
 * Exported attention is ~25 nodes per layer (head-split reshapes and transposes, Q·Kᵀ, the
 * additive mask, the finfo.min clamp, softmax, P·V, head merge) plus a mask subgraph built
 * from attention_mask with Range/Less/Where/Expand — and every exporter version spells it
 * a little differently. The code generator needs one op with known semantics (it adds the
 * KV cache and the decode API around it), so this pass works in two steps:
 *
 *   1. Structure: from each Softmax over the last axis, walk back through layout ops to the
 *      scores MatMul and the mask Add/Max, trace its operands to the q (after an optional
 *      Mul by a scalar: OPT scales q after projection), k and v projections (through an
 *      optional Concat with past keys/values), and walk forward to the merged context.
 *   2. Semantics: evaluate the original subgraph and the candidate bqc.Attention with the
 *      interpreter on probe inputs — batch 2 with left padding, with and without past — and
 *      fuse only if they agree. The mask subgraph is never pattern-matched: its meaning
 *      (causal + key padding from attention_mask) is confirmed by evaluation.
 *
 * With the runtime's kernel contracts the fused op reproduces the original graph's values
 * (same fmaf order in Q·Kᵀ and P·V, same softmax); agreement is still checked with a small
 * tolerance so the pass never depends on that.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pass.h"

typedef struct Match {
    IrId q, k, v;              /* [B, S, H*D] projections (q before scaling) */
    float scale;               /* the scalar q was multiplied by (1 if none) */
    IrId past_k, past_v;       /* graph inputs [B, H, P, D] or IR_NONE */
    IrId present_k, present_v; /* the Concat results (present outputs) or IR_NONE */
    IrId mask_src;             /* the graph input the additive mask is computed from */
    IrId ctx;                  /* the merged context [B, S, H*D] */
    IrId pv;                   /* P·V MatMul output (the new node goes at its position) */
    int64_t heads;
    const char *name;          /* name for the fused node */
} Match;

static bool is_view(const IrNode *n) { return n && (ir_ops[n->op].flags & F_LAYOUT); }

/* Follows layout ops backwards from v to the first value not produced by one. */
static IrId back_views(const IrGraph *g, IrId v)
{
    for (IrNode *n = pat_def(g, v); is_view(n); n = pat_def(g, v)) v = n->in[0];
    return v;
}

/* The only node reading v, or NULL. */
static IrNode *only_consumer(const IrGraph *g, const uint32_t *uses, IrId v)
{
    if (!pat_single_use(g, uses, v)) return NULL;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        for (uint32_t k = 0; !n->dead && k < n->nin; k++)
            if (n->in[k] == v) return n;
    }
    return NULL;
}

/* Follows single-consumer layout ops forwards from v. */
static IrId forward_views(const IrGraph *g, const uint32_t *uses, IrId v)
{
    for (IrNode *n = only_consumer(g, uses, v); is_view(n) && n->in[0] == v; n = only_consumer(g, uses, v))
        v = n->out[0];
    return v;
}

static bool is_graph_input(const IrGraph *g, IrId v) { return v != IR_NONE && g->vals[v].kind == IR_VAL_INPUT; }

/* kv operand of a MatMul: either the projection itself, or Concat(past, projection) along
 * the sequence axis of [B, H, T, D] whose result is the present output. */
static bool trace_kv(const IrGraph *g, IrId operand, IrId *proj, IrId *past, IrId *present)
{
    IrId base = back_views(g, operand);
    IrNode *cat = pat_def_op(g, base, OP_CONCAT);
    if (cat) {
        if (cat->nin != 2 || g->vals[base].type.rank != 4 || pat_axis(cat->attr.axis.axis, 4) != 2 ||
            !is_graph_input(g, cat->in[0]))
            return false;
        *past = cat->in[0];
        *present = base;
        base = back_views(g, cat->in[1]);
    } else {
        *past = *present = IR_NONE;
    }
    *proj = base;
    return pat_def(g, base) != NULL;   /* a computed projection, not a constant or input */
}

/* The graph input whose values (not only its shape) the mask is computed from. */
static IrId mask_source(const IrGraph *g, IrId mask)
{
    bool *seen = calloc(g->nvals, 1);
    IrId *stack = malloc(g->nvals * sizeof *stack), found = IR_NONE;
    uint32_t sp = 0;
    bool ambiguous = false;
    stack[sp++] = mask;
    seen[mask] = true;
    while (sp && !ambiguous) {
        IrNode *n = pat_def(g, stack[--sp]);
        for (uint32_t k = 0; n && k < n->nin; k++) {
            IrId in = n->in[k];
            if (in == IR_NONE) continue;
            if (is_graph_input(g, in) && n->op != OP_SHAPE) {
                if (found != IR_NONE && found != in) ambiguous = true;
                found = in;
            }
            if (!seen[in]) seen[in] = true, stack[sp++] = in;
        }
    }
    free(seen);
    free(stack);
    return ambiguous ? IR_NONE : found;
}

/* Structural match around one Softmax. */
static bool match(const IrGraph *g, const uint32_t *uses, IrNode *sm, Match *m)
{
    memset(m, 0, sizeof *m);
    const IrType *st = &g->vals[sm->out[0]].type;
    if (st->dtype != DT_F32 || st->rank < 2 || pat_axis(sm->attr.axis.axis, st->rank) != st->rank - 1) return false;
    IrId s = back_views(g, sm->in[0]);
    IrNode *mx = pat_def_op(g, s, OP_MAX);
    double clamp;
    if (mx && mx->nin == 2 && pat_const_scalar(g, mx->in[1], &clamp)) s = back_views(g, mx->in[0]);
    IrNode *add = pat_def_op(g, s, OP_ADD);
    if (!add) return false;
    IrNode *qk = NULL;
    IrId mask = IR_NONE;
    for (int side = 0; side < 2 && !qk; side++) {
        qk = pat_def_op(g, back_views(g, add->in[side]), OP_MATMUL);
        mask = add->in[1 - side];
    }
    if (!qk || ir_is_const(g, qk->in[0]) || ir_is_const(g, qk->in[1])) return false;

    IrId qb = back_views(g, qk->in[0]);
    IrNode *mul = pat_def_op(g, qb, OP_MUL);
    double scale;
    m->q = qb;
    m->scale = 1.0f;
    if (mul && pat_const_scalar(g, mul->in[1], &scale) && g->vals[mul->in[1]].type.dtype == DT_F32)
        m->q = mul->in[0], m->scale = (float)scale;
    else if (mul && pat_const_scalar(g, mul->in[0], &scale) && g->vals[mul->in[0]].type.dtype == DT_F32)
        m->q = mul->in[1], m->scale = (float)scale;
    if (!trace_kv(g, qk->in[1], &m->k, &m->past_k, &m->present_k)) return false;

    IrNode *pv = only_consumer(g, uses, forward_views(g, uses, sm->out[0]));
    if (!pv || pv->op != OP_MATMUL || back_views(g, pv->in[0]) != sm->out[0]) return false;
    if (!trace_kv(g, pv->in[1], &m->v, &m->past_v, &m->present_v)) return false;
    if ((m->past_k == IR_NONE) != (m->past_v == IR_NONE)) return false;
    m->pv = pv->out[0];
    m->ctx = forward_views(g, uses, pv->out[0]);

    const IrType *qt = &g->vals[m->q].type, *dq = &g->vals[qk->in[0]].type;
    const IrType *kt = &g->vals[m->k].type, *vt = &g->vals[m->v].type, *ct = &g->vals[m->ctx].type;
    if (qt->rank != 3 || kt->rank != 3 || vt->rank != 3 || ct->rank != 3 || dq->rank < 1) return false;
    IrDim E = qt->dims[2], D = dq->dims[dq->rank - 1];
    if (!IR_DIM_IS_CONST(E) || !IR_DIM_IS_CONST(D) || D <= 0 || E % D != 0) return false;
    if (kt->dims[2] != E || vt->dims[2] != E || ct->dims[2] != E) return false;
    m->heads = E / D;
    m->mask_src = mask_source(g, mask);
    if (m->mask_src == IR_NONE || g->vals[m->mask_src].type.rank != 2) return false;
    m->name = qk->name;
    return true;
}

/* ---- semantic check on probe inputs ---- */

typedef struct Probe { int64_t B, S, P; } Probe;

/* Symbol values for a probe: batch, seq and past from the roles the match identified; a
 * separate symbol for the mask length is P + S. Every graph input must get concrete dims. */
static bool bind_symbols(const IrGraph *g, const Match *m, const Probe *p, int64_t *sym)
{
    const IrModel *md = g->model;
    for (int i = 0; i < IR_MAX_SYMS; i++) sym[i] = -1;
    struct { IrDim d; int64_t v; } roles[4] = {
        {g->vals[m->q].type.dims[0], p->B},
        {g->vals[m->q].type.dims[1], p->S},
        {m->past_k != IR_NONE ? g->vals[m->past_k].type.dims[2] : 0, p->P},
        {g->vals[m->mask_src].type.dims[1], p->P + p->S},
    };
    for (int r = 0; r < 4; r++) {
        IrDimPoly poly;
        if (IR_DIM_IS_CONST(roles[r].d) || !ir_dim_poly(md, roles[r].d, &poly) || poly.opaque) continue;
        if (poly.nterms != 1 || poly.t[0].coef != 1) continue;
        int which = -1, deg = 0;
        for (int s = 0; s < IR_MAX_SYMS; s++)
            if (poly.t[0].exp[s]) which = s, deg += poly.t[0].exp[s];
        if (deg == 1 && sym[which] < 0) sym[which] = roles[r].v;
    }
    for (int r = 0; r < 4; r++)
        if (ir_dim_eval(md, roles[r].d, sym) != roles[r].v) return false;
    return true;
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

/* Probe tensors for every graph input; attention_mask gets left padding on row 1. */
static bool make_inputs(const IrGraph *g, const Match *m, const Probe *p, IrTensor *in)
{
    int64_t sym[IR_MAX_SYMS];
    if (!bind_symbols(g, m, p, sym)) return false;
    uint32_t seed = 12345;
    for (uint32_t k = 0; k < g->ninputs; k++) {
        const IrValue *v = &g->vals[g->inputs[k]];
        int64_t dims[IR_MAX_RANK];
        for (int d = 0; d < v->type.rank; d++)
            if ((dims[d] = ir_dim_eval(g->model, v->type.dims[d], sym)) < 0) return false;
        if (!ir_tensor_alloc(&in[k], v->type.dtype, v->type.rank, dims)) return false;
        int64_t n = ir_tensor_numel(&in[k]);
        bool is_mask = g->inputs[k] == m->mask_src;
        for (int64_t i = 0; i < n; i++) {
            int64_t col = v->type.rank ? i % dims[v->type.rank - 1] : 0, row = v->type.rank ? i / dims[v->type.rank - 1] : 0;
            double x = is_mask ? (row == 1 && col < 2 ? 0 : 1) : (double)(lcg(&seed) >> 8) / (1 << 24);
            switch (v->type.dtype) {
            case DT_F32: ((float *)in[k].data)[i] = (float)(2 * x - 1); break;
            case DT_I64: ((int64_t *)in[k].data)[i] = is_mask ? (int64_t)x : 2 + (int64_t)(x * 5); break;
            case DT_I32: ((int32_t *)in[k].data)[i] = is_mask ? (int32_t)x : 2 + (int32_t)(x * 5); break;
            case DT_BOOL: ((uint8_t *)in[k].data)[i] = is_mask ? (uint8_t)x : 0; break;
            default: return false;
            }
        }
    }
    return true;
}

static bool close_enough(const IrTensor *a, const IrTensor *b)
{
    if (a->dtype != DT_F32 || b->dtype != DT_F32 || a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    int64_t n = ir_tensor_numel(a);
    const float *x = a->data, *y = b->data;
    float peak = 0, err = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i]) != isnan(y[i])) return false;
        if (isnan(x[i])) continue;
        peak = fmaxf(peak, fabsf(y[i]));
        err = fmaxf(err, fabsf(x[i] - y[i]));
    }
    return err <= 1e-5f * fmaxf(peak, 1.0f);
}

/* Evaluates original and fused outputs on one probe; true if they agree. */
static bool agrees(IrGraph *g, const Match *m, const IrNode *fused, const Probe *p)
{
    IrId want[6];
    uint32_t nw = 0;
    want[nw++] = m->ctx;
    want[nw++] = fused->out[0];
    if (m->present_k != IR_NONE) {
        want[nw++] = m->present_k, want[nw++] = fused->out[1];
        want[nw++] = m->present_v, want[nw++] = fused->out[2];
    }
    IrTensor *in = calloc(g->ninputs + 1, sizeof *in), out[6] = {0};
    bool ok = make_inputs(g, m, p, in);
    Diag quiet, *loud = g->model->diag;
    diag_init(&quiet, NULL, NULL);
    g->model->diag = &quiet;
    ok = ok && ir_eval(g, g->inputs, in, g->ninputs, want, out, nw, NULL);
    g->model->diag = loud;
    for (uint32_t i = 0; ok && i < nw; i += 2) ok = close_enough(&out[i + 1], &out[i]);
    for (uint32_t i = 0; i < nw; i++) ir_tensor_free(&out[i]);
    for (uint32_t k = 0; k < g->ninputs; k++) ir_tensor_free(&in[k]);
    free(in);
    return ok;
}

/* Inserts the candidate op at the P·V MatMul's position, checks it, and rewires or drops it. */
static bool fuse(IrGraph *g, const Match *m)
{
    bool past = m->past_k != IR_NONE;
    IrId in[6] = {m->q, m->k, m->v, m->mask_src, m->past_k, m->past_v};
    IrId at = g->vals[m->pv].def;
    /* Named after the layer: "/decoder/layers.0/self_attn/MatMul" → ".../self_attn/Attention". */
    const char *slash = strrchr(m->name, '/');
    int dir = slash ? (int)(slash - m->name) : 0;
    Arena *a = g->model->arena;
    const char *name = arena_printf(a, "%.*s%sAttention", dir, m->name, slash ? "/" : "");
    const char *outs[3] = {ir_unique_name(g, arena_printf(a, "%s_output_0", name)),
                           ir_unique_name(g, arena_printf(a, "%s_present_key", name)),
                           ir_unique_name(g, arena_printf(a, "%s_present_value", name))};
    IrId id = ir_node_insert(g, at, OP_ATTENTION, name, in, past ? 6 : 4, past ? 3 : 1, outs);
    IrNode *n = &g->nodes[id];
    n->attr.attention.num_heads = m->heads;
    n->attr.attention.causal = 1;
    n->attr.attention.scale = m->scale;
    if (!ir_infer_graph(g, NULL)) return false;
    Probe probes[2] = {{2, 3, past ? 2 : 0}, {2, past ? 1 : 4, past ? 4 : 0}};
    bool ok = agrees(g, m, &g->nodes[id], &probes[0]) && agrees(g, m, &g->nodes[id], &probes[1]);
    n = &g->nodes[id];
    if (!ok) {
        n->dead = true;
        ir_graph_compact(g);
        return false;
    }
    pat_replace_value(g, m->ctx, n->out[0]);
    if (past) {
        pat_replace_value(g, m->present_k, n->out[1]);
        pat_replace_value(g, m->present_v, n->out[2]);
    }
    return true;
}

bool pass_fuse_attention(PassCtx *c)
{
    IrGraph *g = c->g;
    /* Softmax results are stable value ids; node indices shift as fused ops are inserted. */
    IrId *sms = malloc((g->nnodes + 1) * sizeof *sms);
    uint32_t nsm = 0;
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (!g->nodes[i].dead && g->nodes[i].op == OP_SOFTMAX) sms[nsm++] = g->nodes[i].out[0];
    bool ok = true;
    for (uint32_t i = 0; i < nsm && ok; i++) {
        IrNode *sm = pat_def_op(g, sms[i], OP_SOFTMAX);
        uint32_t *uses = ir_use_counts(g);
        Match m;
        bool found = sm && match(g, uses, sm, &m);
        free(uses);
        if (found && fuse(g, &m)) c->changed++;
        ok = c->m->diag->nerrors == 0;
    }
    free(sms);
    ir_dce(g);
    return ok;
}
