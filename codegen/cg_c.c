/* cg_c.c — the C backend's driver: which graphs to compile, the weights blob, the header,
 * and the API functions around the compiled graph functions.
 *
 * Every model gets <name>_run with the ONNX signature (the graph as optimised). A decoder —
 * token ids and an attention mask in, logits out, bqc.Attention inside — also gets the
 * decoder API: a copy of the graph goes through the kv-cache pass (unless it already has
 * past inputs), is bound to batch 1, and computes logits for the last position only; its
 * past/present values are the model's KV cache, so <name>_prefill and <name>_decode run the
 * same function with seq = n or 1 and past = the tokens already cached.
 *
 * State memory (KV cache, activations of whichever API runs, attention scratch) is one
 * block the caller may supply; its size is a formula of max_ctx, max_batch and n_threads.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt.h"
#include "cg_int.h"
#include "pass.h"



void cg_default_name(const char *path, char *buf, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", base);
    char *dot = strrchr(tmp, '.');
    if (dot && dot != tmp) *dot = 0;
    cg_ident(tmp, buf, size);
}

/* ---- preparing the decoder graph ---- */

/* Logits for the last position only: the row-wise tail (Linear, LayerNorm, elementwise)
 * before the logits reads x[:, -1:] instead of x. Prefill then costs one lm_head row. */
static bool last_token_only(IrGraph *g)
{
    IrId v = g->outputs[0], consumer_input = IR_NONE;
    IrNode *first = NULL;
    for (IrNode *n = pat_def(g, v); n; n = pat_def(g, v)) {
        bool rowwise = n->op == OP_LINEAR || (ir_ops[n->op].flags & F_EW1) ||
                       (n->op == OP_LAYER_NORM && n->attr.layernorm.axis == -1 && n->nout == 1);
        if (!rowwise) break;
        first = n;
        consumer_input = n->in[0];
        v = n->in[0];
    }
    if (!first || g->vals[consumer_input].type.rank != 3) return false;
    IrModel *m = g->model;
    int64_t starts = -1, ends = INT64_MAX, axes = 1;
    IrType one = {.dtype = DT_I64, .rank = 1, .dims = {1}};
    IrId c[3];
    const int64_t vals[3] = {starts, ends, axes};
    const char *names[3] = {"last_token/starts", "last_token/ends", "last_token/axes"};
    for (int i = 0; i < 3; i++)
        c[i] = ir_const_add(g, ir_unique_name(g, names[i]), &one, arena_memdup(m->arena, &vals[i], 8), 8);
    uint32_t pos = (uint32_t)(first - g->nodes);
    IrId in[4] = {consumer_input, c[0], c[1], c[2]};
    const char *out = ir_unique_name(g, "last_token");
    IrId sl = ir_node_insert(g, pos, OP_SLICE, "last_token/Slice", in, 4, 1, &out);
    g->nodes[pos + 1].in[0] = g->nodes[sl].out[0];
    return ir_infer_graph(g, NULL);
}

/* batch := 1 on the decoder copy's inputs, then types follow. */
static bool bind_batch1(IrGraph *g)
{
    for (uint32_t k = 0; k < g->ninputs; k++) {
        IrValue *v = &g->vals[g->inputs[k]];
        if (v->type.rank > 0) v->type.dims[0] = 1;
    }
    return ir_infer_graph(g, NULL);
}

/* Is m a decoder the API can drive? Token ids [batch, seq] (int), a mask, logits first. */
static bool looks_like_decoder(const IrGraph *g)
{
    bool attn = false;
    for (uint32_t i = 0; i < g->nnodes; i++) attn |= g->nodes[i].op == OP_ATTENTION;
    if (!attn || g->ninputs < 2 || g->noutputs < 1) return false;
    const IrType *ids = &g->vals[g->inputs[0]].type, *logits = &g->vals[g->outputs[0]].type;
    return ids->rank == 2 && ir_dtype_is_int(ids->dtype) && logits->rank == 3 && logits->dtype == DT_F32 &&
           IR_DIM_IS_CONST(logits->dims[2]);
}

static bool prepare_decoder(Cg *cg)
{
    IrModel *m = cg->m;
    if (!looks_like_decoder(m->graph)) {
        diag_note(m->diag, m->path, "not a decoder graph (token ids, mask, logits, attention): only %s_run is generated",
                  cg->o->name);
        return true;
    }
    IrModel *dm = ir_model_clone(m);
    Diag quiet;
    diag_init(&quiet, NULL, NULL);
    dm->diag = &quiet;
    PassRunOptions po = {.pipeline = "kv-cache", .dump = stderr};
    bool ok = pass_run_pipeline(dm, &po) && bind_batch1(dm->graph) && last_token_only(dm->graph);
    dm->diag = m->diag;
    if (!ok) {
        diag_note(m->diag, m->path, "no decoder API: %s", quiet.last[0] ? quiet.last : "the graph's tail is not row-wise");
        ir_model_destroy(dm);
        return true;
    }
    cg->step_model = dm;
    cg->decoder = true;
    cg->vocab = m->graph->vals[m->graph->outputs[0]].type.dims[2];
    return true;
}

/* ---- weights ---- */

bool cg_write_weights(Cg *cg, const char *path)
{
    IrModel *m = cg->m;
    FILE *f = fopen(path, "wb");
    if (!f) return diag_error(m->diag, NULL, "cannot write '%s': %s", path, strerror(errno));
    uint64_t h = 1469598103934665603ull;   /* FNV-1a over everything after the header */
    unsigned char zeros[64] = {0};
    bool ok = fwrite(zeros, 1, 64, f) == 64;
    uint64_t at = 64;
    for (uint32_t i = 0; i < cg->w.n && ok; i++) {
        const CgWeight *e = &cg->w.w[i];
        while (at < e->offset && ok) {
            size_t pad = (size_t)(e->offset - at < 64 ? e->offset - at : 64);
            for (size_t k = 0; k < pad; k++) h = (h ^ 0) * 1099511628211ull;
            ok = fwrite(zeros, 1, pad, f) == pad;
            at += pad;
        }
        const unsigned char *src = e->data;
        unsigned char *packed = NULL;
        if (e->packed) {
            packed = aligned_alloc(64, (e->bytes + 63) & ~(uint64_t)63);
            if (!packed) unreachable("out of memory");
            bq_pack_f32(e->data, e->trans_b ? e->K : e->N, e->trans_b, e->N, e->K, (float *)packed);
            src = packed;
        }
        for (uint64_t k = 0; k < e->bytes; k++) h = (h ^ src[k]) * 1099511628211ull;
        ok = ok && fwrite(src, 1, e->bytes, f) == e->bytes;
        at += e->bytes;
        free(packed);
    }
    cg->hash = h ^ cg->w.total;
    unsigned char hdr[64];
    ok = ok && bq_weights_write_header(hdr, cg->w.total, cg->hash) == BQ_OK;
    ok = ok && fseek(f, 0, SEEK_SET) == 0 && fwrite(hdr, 1, 64, f) == 64;
    ok = (fclose(f) == 0) && ok;
    return ok || diag_error(m->diag, NULL, "cannot write '%s': %s", path, strerror(errno));
}

/* ---- header ---- */

void cg_emit_header(Cg *cg, Out *h)
{
    const char *p = cg->o->name;
    char up[128];
    snprintf(up, sizeof up, "%s", p);
    for (char *c = up; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    IrGraph *g = cg->m->graph;
    out_printf(h, "/* Generated by bqc %s from %s. Do not edit. */\n", CG_BQC_VERSION, cg->o->source);
    out_printf(h, "#ifndef %s_H_\n#define %s_H_\n\n#include <stddef.h>\n#include <stdint.h>\n\n#include \"bqcrt.h\"\n\n", up, up);
    out_printf(h, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    out_printf(h, "#define %s_WEIGHTS_BYTES %lluULL   /* size of %s.weights */\n", up, (unsigned long long)cg->w.total, p);
    out_printf(h, "#define %s_NUM_INPUTS %u\n#define %s_NUM_OUTPUTS %u\n", up, g->ninputs, up, g->noutputs);
    out_printf(h, "#define %s_HAS_DECODER %d\n", up, cg->decoder);
    if (cg->decoder)
        out_printf(h, "#define %s_VOCAB %lld\n#define %s_LAYERS %u\n#define %s_HEADS %lld\n#define %s_HEAD_DIM %lld\n", up,
                   (long long)cg->vocab, up, cg->step.nlayers, up, (long long)cg->step.heads, up, (long long)cg->step.head_dim);
    out_printf(h, "\ntypedef struct %s_model %s_model;\n\n", p, p);
    out_printf(h, "typedef struct %s_config {\n"
                  "    int64_t max_ctx;    /* longest sequence the state holds: cached + new tokens (default 256) */\n"
                  "    int64_t max_batch;  /* largest batch %s_run accepts (default 1) */\n"
                  "    int n_threads;      /* kernel threads (default 1) */\n"
                  "    void *state;        /* %s_state_bytes(cfg) bytes, 64-byte aligned, or NULL: allocated */\n"
                  "} %s_config;\n\n", p, p, p, p);
    out_printf(h, "/* Bytes of state a configuration needs (KV cache, activations, scratch). */\n"
                  "size_t %s_state_bytes(const %s_config *cfg);\n"
                  "#define %s_STATE_BYTES(max_ctx, max_batch, n_threads) \\\n"
                  "    %s_state_bytes(&(%s_config){(max_ctx), (max_batch), (n_threads), NULL})\n\n", p, p, up, p, p);
    out_printf(h, "/* Maps the weights (%s.weights) and prepares the state; cfg may be NULL (defaults). */\n"
                  "bq_status %s_open(%s_model **m, const char *weights_path, const %s_config *cfg);\n"
                  "void %s_close(%s_model *m);\n\n", p, p, p, p, p, p);
    out_printf(h, "/* The graph with its ONNX signature: inputs in the order of %s_input_names, outputs\n"
                  " * in the order of %s_output_names; each output's data must hold its bytes (set\n"
                  " * `bytes` to the capacity); dtype/rank/dims are filled in. BQ_ERR_CAPACITY when a\n"
                  " * dimension exceeds what the configuration was sized for. */\n"
                  "bq_status %s_run(%s_model *m, const bq_tensor *inputs, bq_tensor *outputs);\n"
                  "extern const char *const %s_input_names[%s_NUM_INPUTS];\n"
                  "extern const char *const %s_output_names[%s_NUM_OUTPUTS];\n", p, p, p, p, p, up, p, up);
    if (cg->decoder)
        out_printf(h, "\n/* Decoder API (batch 1, KV cache in the state): prefill appends n tokens and writes the\n"
                      " * logits of the last one (%s_VOCAB floats); decode appends one. reset empties the cache. */\n"
                      "bq_status %s_prefill(%s_model *m, const int32_t *tokens, int64_t n, float *logits);\n"
                      "bq_status %s_decode(%s_model *m, int32_t token, float *logits);\n"
                      "void %s_reset(%s_model *m);\n"
                      "int64_t %s_n_past(const %s_model *m);   /* tokens in the cache */\n",
                   up, p, p, p, p, p, p, p, p);
    out_printf(h, "\n#ifdef __cplusplus\n}\n#endif\n#endif\n");
}


/* Widest attention (H*D) and largest head size over a graph: sizes of K/V temporaries and
 * the attention scratch. */
static void attention_sizes(Cg *cg, const IrGraph *g)
{
    for (uint32_t i = 0; g && i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        if (n->op != OP_ATTENTION) continue;
        const IrType *q = &g->vals[n->in[0]].type;
        if (!IR_DIM_IS_CONST(q->dims[2])) continue;
        int64_t E = q->dims[2], D = E / n->attr.attention.num_heads;
        if (E > cg->attn_width) cg->attn_width = E;
        if (D > cg->head_dim) cg->head_dim = D;
    }
}

bool cg_begin(Cg *cg, IrModel *m, const CgOptions *o)
{
    *cg = (Cg){.o = o, .m = m};
    bool ok = prepare_decoder(cg);
    attention_sizes(cg, m->graph);
    if (cg->step_model) attention_sizes(cg, cg->step_model->graph);
    cg->run = (CgGraph){.fn = "run", .m = m, .g = m->graph, .weights = &cg->w, .kernels = &cg->k};
    ok = ok && cg_plan(&cg->run, &cg->w);
    if (ok && cg->decoder) {
        cg->step = (CgGraph){.fn = "step", .m = cg->step_model, .g = cg->step_model->graph, .decode = true, .weights = &cg->w,
                             .kernels = &cg->k};
        ok = cg_plan(&cg->step, &cg->w);
    }
    return ok;
}

void cg_end(Cg *cg)
{
    cg_graph_free(&cg->run);
    cg_graph_free(&cg->step);
    free(cg->w.w);
    free(cg->k.k);
    out_free(&cg->k.text);
    if (cg->step_model) ir_model_destroy(cg->step_model);
    memset(cg, 0, sizeof *cg);
}

bool cg_emit_c(IrModel *m, const CgOptions *o)
{
    Cg cg;
    bool ok = cg_begin(&cg, m, o);
    Out c = {0}, h = {0};
    char path[4096];
    if (ok) {
        /* The graph functions first: emitting them registers the packed weights. */
        Out body = {0};
        ok = cg_emit_graph(&cg.run, &body, o->name) && (!cg.decoder || cg_emit_graph(&cg.step, &body, o->name));
        snprintf(path, sizeof path, "%s/%s.weights", o->out_dir, o->name);
        ok = ok && cg_write_weights(&cg, path);
        if (ok) {
            cg_emit_header(&cg, &h);
            ok = cg_emit_source(&cg, &c, &body);
        }
        out_free(&body);
    }
    if (ok) {
        snprintf(path, sizeof path, "%s/%s.h", o->out_dir, o->name);
        ok = out_write_file(m->diag, &h, path);
        snprintf(path, sizeof path, "%s/%s.c", o->out_dir, o->name);
        ok = ok && out_write_file(m->diag, &c, path);
    }
    out_free(&c);
    out_free(&h);
    cg_end(&cg);
    return ok;
}
