/* cg_api.c — the generated .c file around the graph functions: the model struct, the state
 * layout, <name>_open/_close, <name>_run with its input checks and symbol binding, and the
 * decoder API.
 *
 * The state layout is computed by one generated function (<name>_plan) from the
 * configuration, so <name>_state_bytes and <name>_open can never disagree: activations
 * (either graph's regions, sized for the largest extents the configuration admits), the KV
 * cache, the attention scratch, and the decoder's token and mask buffers, each 64-byte
 * aligned.
 */
#include <stdlib.h>
#include <string.h>

#include "cg_int.h"

/* The single symbol a dimension is, or -1 (expressions and constants). */
int cg_plain_symbol(const IrModel *m, IrDim d)
{
    IrDimPoly p;
    if (IR_DIM_IS_CONST(d) || !ir_dim_poly(m, d, &p) || p.opaque || p.nterms != 1 || p.t[0].coef != 1) return -1;
    int which = -1, deg = 0;
    for (int s = 0; s < IR_MAX_SYMS; s++)
        if (p.t[0].exp[s]) which = s, deg += p.t[0].exp[s];
    return deg == 1 ? which : -1;
}

static void sym_decls(Out *c, const IrModel *m, const char *indent)
{
    for (uint32_t s = 0; s < m->dims.nsyms; s++) {
        char id[128];
        cg_ident(m->dims.sym[s], id, sizeof id);
        out_printf(c, "%sconst int64_t S_%s = sym[%u];\n%s(void)S_%s;\n", indent, id, s, indent, id);
    }
}

/* Region capacities and bases of one graph for the configuration's largest extents. */
static void emit_plan_graph(Cg *cg, Out *c, const CgGraph *g, const char *acc)
{
    const IrModel *m = g->m;
    out_printf(c, "    {\n        int64_t sym[%u];\n", m->dims.nsyms ? m->dims.nsyms : 1);
    for (uint32_t s = 0; s < m->dims.nsyms; s++) {
        /* A symbol that is some input's first extent is a batch size; the rest are lengths. */
        bool batch = false;
        for (uint32_t k = 0; k < g->g->ninputs; k++) {
            const IrType *t = &g->g->vals[g->g->inputs[k]].type;
            batch |= t->rank > 0 && cg_plain_symbol(m, t->dims[0]) == (int)s;
        }
        out_printf(c, "        sym[%u] = c->%s;\n", s, batch ? "max_batch" : "max_ctx");
    }
    sym_decls(c, m, "        ");
    for (int r = 0; r < g->nregions; r++) {
        out_printf(c, "        L->cap_%s[%d] = 64 * %s;\n", g->fn, r, cg_dim(g, g->regions[r].unit));
        out_printf(c, "        L->base_%s[%d] = (int64_t)%s;\n", g->fn, r, acc);
        out_printf(c, "        %s += %s_align((size_t)%lld * (size_t)L->cap_%s[%d]);\n", acc, cg->o->name,
                   (long long)g->regions[r].units, g->fn, r);
    }
    out_printf(c, "    }\n");
}

static void emit_struct_and_plan(Cg *cg, Out *c)
{
    const char *p = cg->o->name;
    int rr = cg->run.nregions ? cg->run.nregions : 1, rs = cg->step.nregions ? cg->step.nregions : 1;
    uint32_t slots = cg->decoder ? 2 * cg->step.nlayers : 1, layers = cg->decoder ? cg->step.nlayers : 1;
    if (cg->decoder) {   /* one table for the state plan (qcache sizes) and the step graph's calls */
        out_printf(c, "/* Per attention layer of the decoder: the number formats of its products. */\n"
                      "static const bq_attn_formats %s_attn_fmt[%u] = {\n", p, layers);
        for (uint32_t i = 0; i < layers; i++) {
            const bq_format *f = &cg->step.layer_fmt[i].qk_input;
            out_printf(c, "    {%s, %s, %s, %s},\n", cg_format_init(&cg->step, &f[0]), cg_format_init(&cg->step, &f[1]),
                       cg_format_init(&cg->step, &f[2]), cg_format_init(&cg->step, &f[3]));
        }
        out_printf(c, "};\n\n");
    }
    out_printf(c, "struct %s_model {\n"
                  "    bq_weights w;\n    bq_pool *pool;\n    bq_isa isa;\n    %s_config cfg;\n"
                  "    unsigned char *state;   /* activations, KV cache, scratch */\n    int own_state;\n"
                  "    int64_t base_run[%d], cap_run[%d];    /* activation regions of %s_run */\n"
                  "    int64_t base_step[%d], cap_step[%d];  /* ... of prefill/decode */\n"
                  "    float *kv[%u];          /* per layer: K and V cache [heads, max_ctx, head_dim] */\n"
                  "    unsigned char *qkv[%u]; /* per layer: its keys and values quantised (bq_attention_cached_q_f32's qcache) */\n"
                  "    float *kvtmp[2];        /* K and V of attention without past (%s_run) */\n"
                  "    float *scratch;         /* attention scratch */\n"
                  "    int64_t *ids, *ones;    /* decoder: token ids of a call, the all-ones mask */\n"
                  "    int64_t n_past;         /* decoder: tokens in the cache */\n};\n\n",
               p, p, rr, rr, p, rs, rs, slots, layers, p);
    out_printf(c, "typedef struct %s_layout {\n    int64_t base_run[%d], cap_run[%d], base_step[%d], cap_step[%d];\n"
                  "    size_t kv, qkv[%u], kvtmp, scratch, ids, ones, total;\n} %s_layout;\n\n", p, rr, rr, rs, rs, layers, p);
    out_printf(c, "static size_t %s_align(size_t x) { return (x + 63) & ~(size_t)63; }\n\n", p);
    out_printf(c, "static void %s_plan(const %s_config *c, %s_layout *L)\n{\n    memset(L, 0, sizeof *L);\n"
                  "    size_t run = 0, step = 0;\n", p, p, p);
    emit_plan_graph(cg, c, &cg->run, "run");
    if (cg->decoder) emit_plan_graph(cg, c, &cg->step, "step");
    int64_t H = cg->decoder ? cg->step.heads : 0, D = cg->decoder ? cg->step.head_dim : 0;
    out_printf(c, "    size_t at = %s_align(run > step ? run : step);\n", p);
    out_printf(c, "    L->kv = at;\n    at += %s_align((size_t)%u * %lld * (size_t)c->max_ctx * %lld * sizeof(float));\n", p,
               cg->decoder ? 2 * cg->step.nlayers : 0, (long long)H, (long long)D);
    if (cg->decoder)
        out_printf(c, "    for (int i = 0; i < %u; i++) {\n        L->qkv[i] = at;\n"
                      "        at += %s_align(bq_attention_qcache_bytes(&%s_attn_fmt[i], 1, %lld, c->max_ctx, %lld));\n    }\n",
                   layers, p, p, (long long)H, (long long)D);
    out_printf(c, "    L->kvtmp = at;\n    at += 2 * %s_align((size_t)c->max_batch * (size_t)c->max_ctx * %lld * sizeof(float));\n",
               p, (long long)cg->attn_width);
    out_printf(c, "    L->scratch = at;\n    at += %s_align((size_t)bq_attention_scratch_threads(c->max_ctx, c->max_ctx, %lld, "
                  "c->n_threads) * sizeof(float));\n", p, (long long)(cg->head_dim ? cg->head_dim : 1));
    out_printf(c, "    L->ids = at;\n    at += %s_align((size_t)c->max_ctx * sizeof(int64_t));\n", p);
    out_printf(c, "    L->ones = at;\n    at += %s_align((size_t)c->max_ctx * sizeof(int64_t));\n", p);
    out_printf(c, "    L->total = at;\n}\n\n");
    out_printf(c, "static %s_config %s_defaults(const %s_config *cfg)\n{\n"
                  "    %s_config c = {256, 1, 1, NULL};\n"
                  "    if (cfg) {\n        c = *cfg;\n        if (c.max_ctx == 0) c.max_ctx = 256;\n"
                  "        if (c.max_batch == 0) c.max_batch = 1;\n        if (c.n_threads == 0) c.n_threads = 1;\n    }\n"
                  "    return c;\n}\n\n", p, p, p, p);
    out_printf(c, "size_t %s_state_bytes(const %s_config *cfg)\n{\n    %s_config c = %s_defaults(cfg);\n"
                  "    %s_layout L;\n    %s_plan(&c, &L);\n    return L.total;\n}\n\n", p, p, p, p, p, p);
}

static void emit_open_close(Cg *cg, Out *c)
{
    const char *p = cg->o->name;
    out_printf(c, "bq_status %s_open(%s_model **out, const char *weights_path, const %s_config *cfg)\n{\n"
                  "    if (!out || !weights_path) return BQ_ERR_ARG;\n    *out = NULL;\n"
                  "    %s_config c = %s_defaults(cfg);\n"
                  "    if (c.max_ctx < 1 || c.max_batch < 1 || c.n_threads < 1 || c.n_threads > 256) return BQ_ERR_ARG;\n"
                  "    if (c.state && (uintptr_t)c.state %% 64 != 0) return BQ_ERR_ARG;\n"
                  "    %s_model *m = calloc(1, sizeof *m);\n    if (!m) return BQ_ERR_NOMEM;\n    m->cfg = c;\n"
                  "    bq_status s = bq_weights_open(weights_path, %s_LAYOUT_HASH, %s_WEIGHTS_BYTES_, &m->w);\n"
                  "    if (s != BQ_OK) {\n        free(m);\n        return s;\n    }\n"
                  "    %s_layout L;\n    %s_plan(&c, &L);\n"
                  "    m->state = c.state ? (unsigned char *)c.state : (unsigned char *)aligned_alloc(64, L.total);\n"
                  "    m->own_state = !c.state;\n"
                  "    if (!m->state || bq_pool_create(c.n_threads, &m->pool) != BQ_OK) {\n"
                  "        %s_close(m);\n        return BQ_ERR_NOMEM;\n    }\n"
                  "    memcpy(m->base_run, L.base_run, sizeof m->base_run);\n    memcpy(m->cap_run, L.cap_run, sizeof m->cap_run);\n"
                  "    memcpy(m->base_step, L.base_step, sizeof m->base_step);\n    memcpy(m->cap_step, L.cap_step, sizeof m->cap_step);\n",
               p, p, p, p, p, p, p, p, p, p, p);
    if (cg->decoder)
        out_printf(c, "    for (int i = 0; i < %u; i++)\n"
                      "        m->kv[i] = (float *)(m->state + L.kv) + (size_t)i * %lld * (size_t)c.max_ctx * %lld;\n"
                      "    for (int i = 0; i < %u; i++)\n        m->qkv[i] = m->state + L.qkv[i];\n",
                   2 * cg->step.nlayers, (long long)cg->step.heads, (long long)cg->step.head_dim, cg->step.nlayers);
    out_printf(c, "    m->kvtmp[0] = (float *)(m->state + L.kvtmp);\n"
                  "    m->kvtmp[1] = (float *)(m->state + L.kvtmp + %s_align((size_t)c.max_batch * (size_t)c.max_ctx * %lld * sizeof(float)));\n"
                  "    m->scratch = (float *)(m->state + L.scratch);\n"
                  "    m->ids = (int64_t *)(m->state + L.ids);\n    m->ones = (int64_t *)(m->state + L.ones);\n"
                  "    for (int64_t i = 0; i < c.max_ctx; i++) m->ones[i] = 1;\n"
                  "    m->isa = bq_isa_detect();\n    *out = m;\n    return BQ_OK;\n}\n\n", p, (long long)cg->attn_width);
    out_printf(c, "void %s_close(%s_model *m)\n{\n    if (!m) return;\n    bq_pool_destroy(m->pool);\n"
                  "    bq_weights_close(&m->w);\n    if (m->own_state) free(m->state);\n    free(m);\n}\n\n", p, p);
}

static void emit_names(Cg *cg, Out *c)
{
    const IrGraph *g = cg->m->graph;
    const char *p = cg->o->name;
    for (int io = 0; io < 2; io++) {
        uint32_t n = io ? g->noutputs : g->ninputs;
        out_printf(c, "const char *const %s_%s_names[%u] = {", p, io ? "output" : "input", n);
        for (uint32_t k = 0; k < n; k++) {
            out_printf(c, "%s\"", k ? ", " : "");
            for (const char *s = g->vals[io ? g->outputs[k] : g->inputs[k]].name; *s; s++)
                out_printf(c, *s == '"' || *s == '\\' ? "\\%c" : (*s < 32 ? "?" : "%c"), *s);
            out_printf(c, "\"");
        }
        out_printf(c, "};\n");
    }
    out_printf(c, "\n");
}

/* <name>_run: check inputs, bind symbols from their extents, size the outputs, run. */
static bool emit_run(Cg *cg, Out *c)
{
    const char *p = cg->o->name;
    const IrModel *m = cg->m;
    const IrGraph *g = m->graph;
    uint32_t ns = m->dims.nsyms ? m->dims.nsyms : 1;
    bool bound[IR_MAX_SYMS] = {0};
    out_printf(c, "bq_status %s_run(%s_model *m, const bq_tensor *inputs, bq_tensor *outputs)\n{\n"
                  "    if (!m || !inputs || !outputs) return BQ_ERR_ARG;\n    int64_t sym[%u];\n"
                  "    for (int i = 0; i < %u; i++) sym[i] = -1;\n", p, p, ns, ns);
    for (uint32_t k = 0; k < g->ninputs; k++) {
        const IrType *t = &g->vals[g->inputs[k]].type;
        out_printf(c, "    if (!inputs[%u].data || inputs[%u].dtype != %d || inputs[%u].rank != %d) return BQ_ERR_ARG;\n", k, k,
                   ir_dtype_onnx(t->dtype), k, t->rank);
        out_printf(c, "    for (int d = 0; d < %d; d++)\n        if (inputs[%u].dims[d] < 0) return BQ_ERR_ARG;\n", t->rank, k);
        for (int d = 0; d < t->rank; d++) {
            int s = cg_plain_symbol(m, t->dims[d]);
            if (s >= 0) {
                out_printf(c, "    if (sym[%d] < 0) sym[%d] = inputs[%u].dims[%d];\n", s, s, k, d);
                bound[s] = true;
            }
        }
    }
    /* Every symbol the graph uses must come from some input's extent. */
    for (uint32_t v = 0; v < g->nvals; v++) {
        if (cg->run.vals[v].kind != SK_BUFFER && cg->run.vals[v].kind != SK_OUTPUT) continue;
        for (int d = 0; d < g->vals[v].type.rank; d++) {
            IrDimPoly poly;
            if (IR_DIM_IS_CONST(g->vals[v].type.dims[d]) || !ir_dim_poly(m, g->vals[v].type.dims[d], &poly)) continue;
            for (int t = 0; t < poly.nterms; t++)
                for (int s = 0; s < IR_MAX_SYMS; s++)
                    if (poly.t[t].exp[s] && !bound[s])
                        return diag_error(m->diag, m->path, "C backend: dimension '%s' is not an extent of any input",
                                          m->dims.sym[s]);
        }
    }
    sym_decls(c, m, "    ");
    for (uint32_t k = 0; k < g->ninputs; k++) {
        const IrType *t = &g->vals[g->inputs[k]].type;
        for (int d = 0; d < t->rank; d++)
            out_printf(c, "    if (inputs[%u].dims[%d] != %s) return BQ_ERR_ARG;\n", k, d, cg_dim(&cg->run, t->dims[d]));
    }
    out_printf(c, "    const void *in[%u];\n    void *out[%u];\n", g->ninputs ? g->ninputs : 1, g->noutputs);
    for (uint32_t k = 0; k < g->ninputs; k++) out_printf(c, "    in[%u] = inputs[%u].data;\n", k, k);
    /* Shapes first, for every output: a caller may learn them from a call that fails with
     * BQ_ERR_CAPACITY, then allocate. */
    for (uint32_t k = 0; k < g->noutputs; k++) {
        const IrType *t = &g->vals[g->outputs[k]].type;
        out_printf(c, "    outputs[%u].dtype = %d;\n    outputs[%u].rank = %d;\n", k, ir_dtype_onnx(t->dtype), k, t->rank);
        for (int d = 0; d < t->rank; d++) out_printf(c, "    outputs[%u].dims[%d] = %s;\n", k, d, cg_dim(&cg->run, t->dims[d]));
    }
    for (uint32_t k = 0; k < g->noutputs; k++) {
        const IrType *t = &g->vals[g->outputs[k]].type;
        out_printf(c, "    if (!outputs[%u].data || outputs[%u].bytes < (size_t)%s * %zu) return BQ_ERR_CAPACITY;\n", k, k,
                   cg_numel(&cg->run, t, 0, t->rank), ir_dtype_size(t->dtype));
        out_printf(c, "    out[%u] = outputs[%u].data;\n", k, k);
    }
    out_printf(c, "    return %s_graph_run(m, sym, in, out);\n}\n\n", p);
    return true;
}

static bool emit_decoder(Cg *cg, Out *c)
{
    const char *p = cg->o->name;
    const IrModel *m = cg->step_model;
    const IrGraph *g = m->graph;
    int seq = cg_plain_symbol(m, g->vals[g->inputs[0]].type.dims[1]), past = -1;
    int mask = -1;
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == OP_ATTENTION && past < 0) {
            past = cg_plain_symbol(m, g->vals[g->nodes[i].in[4]].type.dims[2]);
            for (uint32_t k = 0; k < g->ninputs; k++)
                if (g->inputs[k] == g->nodes[i].in[3]) mask = (int)k;
        }
    if (seq < 0 || past < 0 || mask < 0)
        return diag_error(cg->m->diag, cg->m->path, "decoder API: cannot find the sequence and past lengths");
    uint32_t ns = m->dims.nsyms;
    out_printf(c, "bq_status %s_prefill(%s_model *m, const int32_t *tokens, int64_t n, float *logits)\n{\n"
                  "    if (!m || !tokens || !logits || n < 1) return BQ_ERR_ARG;\n"
                  "    if (n > m->cfg.max_ctx - m->n_past) return BQ_ERR_CAPACITY;\n"
                  "    for (int64_t i = 0; i < n; i++) {\n"
                  "        if (tokens[i] < 0 || tokens[i] >= %lld) return BQ_ERR_ARG;\n"
                  "        m->ids[i] = tokens[i];\n    }\n"
                  "    int64_t sym[%u];\n    for (int i = 0; i < %u; i++) sym[i] = -1;\n"
                  "    sym[%d] = n;\n    sym[%d] = m->n_past;\n"
                  "    const void *in[%u] = {0};\n    void *out[%u] = {0};\n"
                  "    in[0] = m->ids;\n    in[%d] = m->ones;\n    out[0] = logits;\n"
                  "    bq_status s = %s_graph_step(m, sym, in, out);\n"
                  "    if (s == BQ_OK) m->n_past += n;\n    return s;\n}\n\n",
               p, p, (long long)cg->vocab, ns, ns, seq, past, g->ninputs, g->noutputs, mask, p);
    out_printf(c, "bq_status %s_decode(%s_model *m, int32_t token, float *logits)\n{\n"
                  "    return %s_prefill(m, &token, 1, logits);\n}\n\n", p, p, p);
    out_printf(c, "void %s_reset(%s_model *m)\n{\n    if (m) m->n_past = 0;\n}\n\n", p, p);
    out_printf(c, "int64_t %s_n_past(const %s_model *m) { return m ? m->n_past : 0; }\n", p, p);
    return true;
}

bool cg_emit_source(Cg *cg, Out *c, const Out *body)
{
    const char *p = cg->o->name;
    out_printf(c, "/* Generated by bqc %s from %s. Do not edit. */\n", CG_BQC_VERSION, cg->o->source);
    out_printf(c, "#include <stdlib.h>\n#include <string.h>\n\n#include \"%s.h\"\n#include \"bqcrt_ew.h\"\n\n", p);
    out_printf(c, "#define %s_LAYOUT_HASH 0x%016llxULL\n#define %s_WEIGHTS_BYTES_ %lluULL\n\n", p,
               (unsigned long long)cg->hash, p, (unsigned long long)cg->w.total);
    emit_struct_and_plan(cg, c);
    out_printf(c, "void %s_close(%s_model *m);\n\n", p, p);
    emit_open_close(cg, c);
    emit_names(cg, c);
    if (cg->k.n) {
        /* The fast quantised matmuls this model uses, each qkern.h's template with its
         * constants folded (docs/kernels.md). */
        out_printf(c, "#include \"qkern.h\"\n\n%s\n", cg->k.text.buf);
    }
    out_printf(c, "%s", body->buf ? body->buf : "");
    return emit_run(cg, c) && (!cg->decoder || emit_decoder(cg, c));
}
