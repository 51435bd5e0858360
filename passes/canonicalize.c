/* canonicalize.c — fold what is known at compile time and drop what is dead.
 *
 * Exported transformers compute shapes at run time: Shape→Gather→Unsqueeze→Concat chains
 * feed every Reshape, and constant subgraphs (casts of constants, arithmetic on them) are
 * common. Symbolic shape inference already knows those values — possibly in terms of batch
 * and seq — so this pass (1) evaluates nodes whose inputs are all constants with the
 * interpreter (one source of truth for op semantics), (2) replaces integer values whose
 * content inference knows exactly by constants, (3) rewrites Reshape/Expand shape operands
 * whose content is symbolic into constants using ONNX's 0 ("copy this dim"), -1 ("infer")
 * and 1 ("broadcast") spellings, and (4) removes Identity nodes and dead code.
 */
#include <stdlib.h>
#include <string.h>

#include "pass.h"

/* Constants bigger than this stay computed at run time: folding e.g. a transpose of a
 * 150 MB embedding would double the model's memory for no speed-up. */
#define FOLD_MAX_BYTES (1u << 20)

typedef struct Canon {
    PassCtx *c;
    IrGraph *g;
    IrSVal *sv;         /* known integer values from inference, indexed by value id */
    uint32_t nsv;       /* values that existed when sv was computed */
} Canon;

static const IrSVal *known(const Canon *k, IrId v)
{
    if (v == IR_NONE || v >= k->nsv || k->sv[v].n < 0) return NULL;
    return &k->sv[v];
}

static IrId make_const(IrGraph *g, const char *base, const IrType *t, const void *data, size_t nbytes)
{
    char name[512];
    snprintf(name, sizeof name, "%s_folded", base);
    void *copy = arena_memdup(g->model->arena, data, nbytes);
    return ir_const_add(g, ir_unique_name(g, name), t, copy, nbytes);
}

static bool all_inputs_const(const IrGraph *g, const IrNode *n)
{
    for (uint32_t k = 0; k < n->nin; k++)
        if (n->in[k] != IR_NONE && !ir_is_const(g, n->in[k])) return false;
    return true;
}

/* (1) Every input constant: run the node once and keep its results as constants. */
static bool fold_node(Canon *k, IrId id)
{
    IrGraph *g = k->g;
    IrNode *n = &g->nodes[id];
    if (n->op == OP_IF || !all_inputs_const(g, n)) return false;
    uint64_t bytes = 0;
    for (uint32_t j = 0; j < n->nout; j++) {
        int64_t numel = ir_type_numel(&g->vals[n->out[j]].type);
        if (numel < 0) return false;
        bytes += (uint64_t)numel * ir_dtype_size(g->vals[n->out[j]].type.dtype);
    }
    if (bytes > FOLD_MAX_BYTES) return false;
    IrTensor outs[8];
    if (n->nout > 8) return false;
    IrId want[8];
    memcpy(want, n->out, n->nout * sizeof(IrId));
    uint32_t nout = n->nout;
    /* Evaluate quietly: a node the interpreter cannot run now simply stays for run time,
     * where it reports its own error if it is ever reached. */
    Diag quiet, *loud = g->model->diag;
    diag_init(&quiet, NULL, NULL);
    g->model->diag = &quiet;
    bool ok = ir_eval(g, NULL, NULL, 0, want, outs, nout, NULL);
    g->model->diag = loud;
    if (!ok) return false;
    bool replaced_all = true;
    for (uint32_t j = 0; j < nout; j++) {
        IrType t = {.dtype = outs[j].dtype, .rank = (int8_t)outs[j].rank};
        for (int d = 0; d < outs[j].rank; d++) t.dims[d] = outs[j].dims[d];
        IrId cv = make_const(g, g->vals[want[j]].name, &t, outs[j].data, outs[j].nbytes);
        replaced_all &= pat_replace_value(g, want[j], cv);
        ir_tensor_free(&outs[j]);
    }
    if (replaced_all) g->nodes[id].dead = true;
    k->c->changed++;
    return true;
}

/* Writes v into element i of an integer buffer of type dt. */
static void put_int(void *buf, IrDType dt, int64_t i, int64_t v)
{
    switch (dt) {
    case DT_I64: ((int64_t *)buf)[i] = v; break;
    case DT_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case DT_U64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
    case DT_U32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    case DT_I16: ((int16_t *)buf)[i] = (int16_t)v; break;
    case DT_U16: ((uint16_t *)buf)[i] = (uint16_t)v; break;
    case DT_I8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case DT_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    default: unreachable("put_int on a non-integer type");
    }
}

/* (2) An integer result whose content inference knows exactly becomes a constant. */
static bool fold_known(Canon *k, IrId id)
{
    IrGraph *g = k->g;
    IrNode *n = &g->nodes[id];
    if (n->op == OP_IF) return false;
    bool any = false;
    for (uint32_t j = 0; j < n->nout; j++) {
        IrId out = n->out[j];
        const IrSVal *s = known(k, out);
        const IrType *t = &g->vals[out].type;
        if (!s || !ir_dtype_is_int(t->dtype) || ir_type_numel(t) != s->n) continue;
        bool exact = true;
        for (int64_t i = 0; i < s->n && exact; i++) exact = IR_DIM_IS_CONST(s->v[i]);
        if (!exact) continue;
        int64_t buf[IR_MAX_SVAL];
        for (int64_t i = 0; i < s->n; i++) put_int(buf, t->dtype, i, s->v[i]);
        IrId cv = make_const(g, g->vals[out].name, t, buf, (size_t)s->n * ir_dtype_size(t->dtype));
        if (pat_replace_value(g, out, cv)) any = true;
    }
    if (any) k->c->changed++;
    return any;
}

static IrId shape_const(IrGraph *g, const char *base, const int64_t *v, int n)
{
    IrType t = {.dtype = DT_I64, .rank = 1, .dims = {n}};
    return make_const(g, base, &t, v, (size_t)n * sizeof(int64_t));
}

/* (3a) Reshape(x, [batch, seq, 12, 64]) with x: [batch, seq, 768] → Reshape(x, [0, 0, 12, 64]). */
static void rewrite_reshape(Canon *k, IrNode *n)
{
    IrGraph *g = k->g;
    const IrSVal *s = known(k, n->in[1]);
    if (!s || ir_is_const(g, n->in[1]) || s->n > IR_MAX_RANK) return;
    const IrType *in = &g->vals[n->in[0]].type;
    int64_t target[IR_MAX_RANK];
    int inferred = 0;
    for (int i = 0; i < s->n; i++) {
        IrDim d = s->v[i];
        if (IR_DIM_IS_CONST(d)) {
            target[i] = d;
            inferred += d == -1;
        } else if (!n->attr.reshape.allowzero && i < in->rank && in->dims[i] == d) {
            target[i] = 0;
        } else {
            target[i] = -1;
            inferred++;
        }
    }
    if (inferred > 1) return;
    n->in[1] = shape_const(g, g->vals[n->in[1]].name, target, (int)s->n);
    k->c->changed++;
}

/* (3b) Expand(x, [batch, 1, seq, seq]) where x already has those symbolic extents → 1s. */
static void rewrite_expand(Canon *k, IrNode *n)
{
    IrGraph *g = k->g;
    const IrSVal *s = known(k, n->in[1]);
    if (!s || ir_is_const(g, n->in[1]) || s->n > IR_MAX_RANK) return;
    const IrType *in = &g->vals[n->in[0]].type;
    if (in->rank < 0) return;
    int64_t target[IR_MAX_RANK];
    int lead = (int)s->n - in->rank;
    for (int i = 0; i < s->n; i++) {
        IrDim d = s->v[i];
        int j = i - lead;
        if (IR_DIM_IS_CONST(d)) target[i] = d;
        else if (j >= 0 && in->dims[j] == d) target[i] = 1;
        else return;
    }
    n->in[1] = shape_const(g, g->vals[n->in[1]].name, target, (int)s->n);
    k->c->changed++;
}

/* (4) Identity, and Cast to the type it already has. */
static void drop_identity(Canon *k, IrId id)
{
    IrGraph *g = k->g;
    IrNode *n = &g->nodes[id];
    bool noop = n->op == OP_IDENTITY ||
                (n->op == OP_CAST && g->vals[n->in[0]].type.dtype == (IrDType)n->attr.cast.to);
    if (!noop) return;
    if (pat_replace_value(g, n->out[0], n->in[0])) {
        n->dead = true;
        k->c->changed++;
    }
}

bool pass_canonicalize(PassCtx *c)
{
    Canon k = {.c = c, .g = c->g};
    if (!ir_infer_graph(c->g, &k.sv)) return false;
    k.nsv = c->g->nvals;
    for (uint32_t i = 0; i < c->g->nnodes; i++) {
        if (c->g->nodes[i].dead) continue;
        if (fold_node(&k, i) || fold_known(&k, i)) continue;
        IrNode *n = &c->g->nodes[i];
        if (n->op == OP_RESHAPE) rewrite_reshape(&k, n);
        else if (n->op == OP_EXPAND) rewrite_expand(&k, n);
        else drop_identity(&k, i);
    }
    free(k.sv);
    ir_graph_compact(c->g);
    c->changed += (int)ir_dce(c->g);
    return true;
}
