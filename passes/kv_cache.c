/* kv_cache.c — give a decoder exported without past a KV cache: past/present on every
 * bqc.Attention, so one prefill and then single-token decode steps reproduce the full forward.
 *
 * The rewrite mirrors what a with-past export contains. Each attention gets graph inputs
 * past_key_values.N.{key,value} [batch, H, past, D] and outputs present.N.{key,value}
 * [batch, H, past + seq, D]; attention_mask becomes [batch, past + seq] (it covers the cached
 * keys too); and learned positions, computed from attention_mask by a running count, are
 * computed over the whole mask and sliced to the new tokens ([:, past:]) just before the
 * position-embedding Gather. That last step assumes the position subgraph is causal along
 * the sequence (a cumulative sum is), so, like fuse-attention, the pass does not trust the
 * structure: it runs the original graph over a whole probe sequence and the rewritten graph
 * as prefill + decode, and keeps the rewrite only if every logit agrees.
 *
 * Graphs that already have past inputs are left alone. Anything else reading the mask, or
 * any other graph input, makes the pass report why it cannot add a cache.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pass.h"

#define MAX_LAYERS 256

typedef struct Kv {
    PassCtx *c;
    IrGraph *g;
    IrId ids, mask;            /* graph inputs input_ids, attention_mask */
    IrId attn[MAX_LAYERS];     /* attention node indices are unstable: keep their outputs */
    uint32_t nattn;
    IrId logits;
    uint32_t ntainted;         /* values that existed when the taint was computed */
} Kv;

static bool fail(Kv *k, const char *why)
{
    return diag_error(k->c->m->diag, k->c->m->path, "kv-cache: cannot add a KV cache: %s", why);
}

/* Values computed from the mask, by one forward sweep in topological order. The sweep stops
 * at attention ops (which take the mask as it is meant) and at Gathers from a constant table
 * (the position embedding: its indices are the positions). Everything else on the way must
 * be integer arithmetic — the position ids — or the graph is not one this pass understands. */
static bool taint_mask(Kv *k, uint8_t *tainted)
{
    IrGraph *g = k->g;
    tainted[k->mask] = 1;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        if (n->dead || n->op == OP_ATTENTION) continue;
        bool reads = false;
        for (uint32_t j = 0; j < n->nin && !reads; j++) reads = n->in[j] != IR_NONE && tainted[n->in[j]];
        if (!reads || (n->op == OP_GATHER && ir_is_const(g, n->in[0]) && !tainted[n->in[0]])) continue;
        for (uint32_t j = 0; j < n->nout; j++) {
            if (!ir_dtype_is_int(g->vals[n->out[j]].type.dtype))
                return fail(k, "a node other than attention and the position ids reads the attention mask");
            tainted[n->out[j]] = 1;
        }
    }
    return true;
}

/* Finds the attention ops, the mask and ids inputs; false with a reason otherwise. */
static bool survey(Kv *k, bool *already)
{
    IrGraph *g = k->g;
    uint32_t with_past = 0;
    k->mask = IR_NONE;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        if (n->dead || n->op != OP_ATTENTION) continue;
        if (k->nattn == MAX_LAYERS) return fail(k, "too many attention layers");
        if (n->nin > 4) with_past++;
        if (k->mask != IR_NONE && n->in[3] != k->mask) return fail(k, "attention layers read different masks");
        k->mask = n->in[3];
        k->attn[k->nattn++] = n->out[0];
    }
    if (!k->nattn) return fail(k, "the graph has no bqc.Attention (run fuse-attention first)");
    *already = with_past == k->nattn;
    if (with_past && !*already) return fail(k, "some attention layers have past inputs and some do not");
    if (*already) return true;
    if (g->vals[k->mask].kind != IR_VAL_INPUT) return fail(k, "the attention mask is not a graph input");
    k->ids = IR_NONE;
    for (uint32_t i = 0; i < g->ninputs; i++) {
        IrId v = g->inputs[i];
        if (v == k->mask) continue;
        if (k->ids != IR_NONE || g->vals[v].type.rank != 2 || !ir_dtype_is_int(g->vals[v].type.dtype))
            return fail(k, "the graph has inputs besides token ids and the attention mask");
        k->ids = v;
    }
    if (k->ids == IR_NONE || g->noutputs != 1) return fail(k, "expected inputs (input_ids, attention_mask) and one output");
    k->logits = g->outputs[0];
    return true;
}

/* Appends past inputs and present outputs to attention node `id` (layer `layer`). */
static void add_past(Kv *k, IrId id, int layer, IrDim past)
{
    IrGraph *g = k->g;
    Arena *a = g->model->arena;
    IrNode *n = &g->nodes[id];
    const IrType *qt = &g->vals[n->in[0]].type;
    int64_t H = n->attr.attention.num_heads, D = qt->dims[2] / H;
    IrType pt = {.dtype = DT_F32, .rank = 4, .dims = {qt->dims[0], H, past, D}};
    IrId pk = ir_input_add(g, arena_printf(a, "past_key_values.%d.key", layer), &pt);
    IrId pv = ir_input_add(g, arena_printf(a, "past_key_values.%d.value", layer), &pt);
    n = &g->nodes[id];
    IrId *in = arena_alloc(a, 6 * sizeof(IrId));
    memcpy(in, n->in, 4 * sizeof(IrId));
    in[4] = pk, in[5] = pv;
    n->in = in, n->nin = 6;
    IrId *out = arena_alloc(a, 3 * sizeof(IrId));
    out[0] = n->out[0];
    for (int j = 0; j < 2; j++) {
        out[1 + j] = ir_value_add(g, arena_printf(a, "present.%d.%s", layer, j ? "value" : "key"), IR_VAL_NODE, NULL);
        g->vals[out[1 + j]].def = id;
        ir_output_add(g, out[1 + j]);
    }
    n = &g->nodes[id];
    n->out = out, n->nout = 3;
}

/* Inserts `positions[:, past:]` (past read from the first past input's shape) in front of
 * every Gather whose indices are computed from the mask. */
static bool slice_positions(Kv *k, IrId past_in, const uint8_t *tainted)
{
    IrGraph *g = k->g;
    uint32_t sliced = 0;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        if (n->dead || n->op != OP_GATHER || !ir_is_const(g, n->in[0])) continue;
        if (n->in[1] >= k->ntainted || !tainted[n->in[1]]) continue;
        char base[256];
        snprintf(base, sizeof base, "%s/kv_cache", n->name);
        int64_t end = INT64_MAX, axis = 1;
        IrType one = {.dtype = DT_I64, .rank = 1, .dims = {1}};
        Arena *a = g->model->arena;
        IrId ends = ir_const_add(g, ir_unique_name(g, arena_printf(a, "%s/ends", base)), &one, arena_memdup(a, &end, 8), 8);
        IrId axes = ir_const_add(g, ir_unique_name(g, arena_printf(a, "%s/axes", base)), &one, arena_memdup(a, &axis, 8), 8);
        const char *sname = ir_unique_name(g, arena_printf(a, "%s/past_len", base));
        IrId sh = ir_node_insert(g, i, OP_SHAPE, arena_printf(a, "%s/Shape", base), &past_in, 1, 1, &sname);
        g->nodes[sh].attr.shape.start = 2;
        g->nodes[sh].attr.shape.end = 3;
        IrId start = g->nodes[sh].out[0];
        IrId gather_idx = g->nodes[i + 1].in[1];
        IrId sin[4] = {gather_idx, start, ends, axes};
        const char *pname = ir_unique_name(g, arena_printf(a, "%s/new_positions", base));
        IrId sl = ir_node_insert(g, i + 1, OP_SLICE, arena_printf(a, "%s/Slice", base), sin, 4, 1, &pname);
        g->nodes[i + 2].in[1] = g->nodes[sl].out[0];
        i += 2;
        sliced++;
    }
    return sliced > 0 || fail(k, "no position-embedding Gather reads the attention mask");
}

/* ---- the probe check: prefill + decode on the rewritten graph == one full forward ---- */

static bool tensor_i64(IrTensor *t, int64_t b, int64_t s, const int64_t *src, int64_t ld, int64_t off)
{
    int64_t dims[2] = {b, s};
    if (!ir_tensor_alloc(t, DT_I64, 2, dims)) return false;
    for (int64_t i = 0; i < b; i++)
        for (int64_t j = 0; j < s; j++) ((int64_t *)t->data)[i * s + j] = src[i * ld + off + j];
    return true;
}

/* Rows [off, off+S) of the full forward against a part, at real (unpadded) positions only:
 * a padding position attends uniformly over every key there is, so its values depend on how
 * many keys exist yet — meaningless, and different between prefill and one full forward in
 * any runtime. */
static bool rows_agree(const IrTensor *full, int64_t off, const IrTensor *part, const int64_t *mask)
{
    int64_t B = part->dims[0], S = part->dims[1], V = part->dims[2], T = full->dims[1];
    const float *f = full->data, *p = part->data;
    float peak = 0, err = 0;
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++) {
            if (!mask[b * T + off + s]) continue;
            for (int64_t v = 0; v < V; v++) {
                float x = f[(b * T + off + s) * V + v], y = p[(b * S + s) * V + v];
                if (isnan(x) || isnan(y)) return false;
                peak = fmaxf(peak, fabsf(x));
                err = fmaxf(err, fabsf(x - y));
            }
        }
    return err <= 1e-5f * fmaxf(peak, 1.0f);
}

/* Runs `orig` on 5 tokens and `g` as prefill(3) + decode(2); batch 2, row 1 left-padded. */
static bool decode_matches(IrGraph *orig, IrGraph *g)
{
    enum { B = 2, T = 5, P = 3 };
    int64_t ids[B * T], mask[B * T];
    for (int i = 0; i < B * T; i++) {
        ids[i] = 2 + (i * 7 + 3) % 5;
        mask[i] = !(i / T == 1 && i % T < 2);
        if (!mask[i]) ids[i] = 1;   /* the padding token */
    }
    uint32_t nl = (g->noutputs - 1) / 2;
    IrTensor *in = calloc(2 + 2 * nl, sizeof *in), *out1 = calloc(1 + 2 * nl, sizeof *out1);
    IrTensor *out2 = calloc(1 + 2 * nl, sizeof *out2), full = {0}, oin[2] = {0};
    if (!in || !out1 || !out2) unreachable("out of memory");
    bool ok = tensor_i64(&oin[0], B, T, ids, T, 0) && tensor_i64(&oin[1], B, T, mask, T, 0) &&
              ir_run(orig, oin, &full, NULL);
    /* Prefill: the first P tokens with an empty cache. */
    ok = ok && tensor_i64(&in[0], B, P, ids, T, 0) && tensor_i64(&in[1], B, P, mask, T, 0);
    for (uint32_t j = 0; ok && j < 2 * nl; j++) {
        const IrType *t = &g->vals[g->inputs[2 + j]].type;
        int64_t dims[4] = {B, t->dims[1], 0, t->dims[3]};
        ok = ir_tensor_alloc(&in[2 + j], DT_F32, 4, dims);
    }
    ok = ok && ir_run(g, in, out1, NULL) && rows_agree(&full, 0, &out1[0], mask);
    /* Decode: the remaining tokens, the whole mask, the presents as the past. */
    for (uint32_t j = 0; j < 2 + 2 * nl; j++) ir_tensor_free(&in[j]);
    ok = ok && tensor_i64(&in[0], B, T - P, ids, T, P) && tensor_i64(&in[1], B, T, mask, T, 0);
    for (uint32_t j = 0; ok && j < 2 * nl; j++) in[2 + j] = out1[1 + j], in[2 + j].owned = false;
    ok = ok && ir_run(g, in, out2, NULL) && rows_agree(&full, P, &out2[0], mask);
    ir_tensor_free(&in[0]), ir_tensor_free(&in[1]);
    ir_tensor_free(&oin[0]), ir_tensor_free(&oin[1]), ir_tensor_free(&full);
    for (uint32_t j = 0; j < 1 + 2 * nl; j++) ir_tensor_free(&out1[j]), ir_tensor_free(&out2[j]);
    free(in), free(out1), free(out2);
    return ok;
}

bool pass_kv_cache(PassCtx *c)
{
    Kv k = {.c = c, .g = c->g};
    bool already = false;
    if (!survey(&k, &already)) return false;
    if (already) return true;
    IrGraph *g = c->g;
    uint8_t *tainted = calloc(g->nvals, 1);
    k.ntainted = g->nvals;
    if (!taint_mask(&k, tainted)) return free(tainted), false;
    IrModel *orig = ir_model_clone(c->m);
    IrDim past = ir_dim_sym(c->m, "past");
    IrValue *mv = &g->vals[k.mask];
    mv->type.dims[1] = ir_dim_add(c->m, past, g->vals[k.ids].type.dims[1]);
    IrId first_past = IR_NONE;
    for (uint32_t l = 0; l < k.nattn; l++) {
        add_past(&k, g->vals[k.attn[l]].def, (int)l, past);
        if (l == 0) first_past = g->inputs[g->ninputs - 2];
    }
    bool ok = slice_positions(&k, first_past, tainted) && ir_infer_graph(g, NULL);
    free(tainted);
    /* The check runs quietly: a mismatch is reported as one reason, not interpreter noise. */
    Diag quiet, *loud = c->m->diag;
    diag_init(&quiet, NULL, NULL);
    c->m->diag = orig->diag = &quiet;
    bool same = ok && decode_matches(orig->graph, g);
    c->m->diag = loud;
    ir_model_destroy(orig);
    if (ok && !same) ok = fail(&k, "decoding with the cache does not reproduce the full forward on probe inputs");
    c->changed += ok;
    return ok;
}
