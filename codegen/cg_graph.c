/* cg_graph.c — one compiled graph as one C function.
 *
 *   static bq_status <name>_graph_<fn>(<name>_model *m, const int64_t *sym,
 *                                      const void *const *in, void *const *out)
 *
 * binds the symbols, checks the bound extents against the capacity the state was sized
 * for, derives each region's unit and base, declares a typed pointer for every value that is
 * read or written (inputs, weights, buffers, views, outputs), then runs the nodes in order.
 */
#include <stdlib.h>
#include <string.h>

#include "cg_int.h"

static IrId root_of(const CgGraph *cg, IrId v)
{
    while (cg->vals[v].kind == SK_ALIAS) v = cg->vals[v].root;
    return v;
}

/* Which values the emitted statements touch: read as data by a node that runs, or written. */
static uint8_t *referenced(const CgGraph *cg)
{
    const IrGraph *g = cg->g;
    uint8_t *ref = calloc(g->nvals + 1, 1);
    if (!ref) unreachable("out of memory");
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        bool runs = false;
        for (uint32_t k = 0; k < n->nout; k++) {
            StoreKind s = cg->vals[n->out[k]].kind;
            runs |= s == SK_BUFFER || s == SK_OUTPUT;
            if (s == SK_BUFFER || s == SK_OUTPUT) ref[n->out[k]] = 1;
        }
        for (uint32_t k = 0; runs && k < n->nin; k++)
            if (n->in[k] != IR_NONE && cg_reads_data(n, k)) ref[n->in[k]] = 1;
    }
    /* A referenced view needs its root's pointer too. */
    for (uint32_t v = 0; v < g->nvals; v++)
        if (ref[v] && cg->vals[v].kind == SK_ALIAS)
            for (IrId u = v; cg->vals[u].kind == SK_ALIAS; u = cg->vals[u].root) ref[cg->vals[u].root] = 1;
    return ref;
}

static void declare(CgGraph *cg, Out *o, IrId v, const char *prefix)
{
    const CgVal *cv = &cg->vals[v];
    const IrValue *val = &cg->g->vals[v];
    const char *T = cg_ctype(val->type.dtype), *q = cv->readonly ? "const " : "";
    const char *name = cg_vname(cg, v);
    switch (cv->kind) {
    case SK_INPUT:
        out_printf(o, "    const %s *const %s = (const %s *)in[%d];\n", T, name, T, cv->index);
        break;
    case SK_OUTPUT:
        out_printf(o, "    %s *const %s = (%s *)out[%d];\n", T, name, T, cv->index);
        break;
    case SK_WEIGHT:
        out_printf(o, "    const %s *const %s = (const %s *)(m->w.base + %llu);\n", T, name, T,
                   (unsigned long long)cg->weights->w[cv->index].offset);
        break;
    case SK_BUFFER:
        out_printf(o, "    %s *const %s = (%s *)(R%d + %lld * U%d);\n", T, name, T, cv->region, (long long)cv->offset,
                   cv->region);
        break;
    case SK_ALIAS:
        out_printf(o, "    %s%s *const %s = (%s%s *)%s;\n", q, T, name, q, T, cg_vname(cg, root_of(cg, v)));
        break;
    case SK_LOCAL: {
        const IrSVal *s = &cg->sv[v];
        out_printf(o, "    const %s %s[%lld] = {", T, name, (long long)(s->n ? s->n : 1));
        for (int64_t i = 0; i < s->n; i++) out_printf(o, "%s(%s)%s", i ? ", " : "", T, cg_dim(cg, s->v[i]));
        out_printf(o, "%s};\n", s->n ? "" : "0");
        break;
    }
    default:
        break;
    }
    (void)prefix;
}

bool cg_emit_graph(CgGraph *cg, Out *o, const char *prefix)
{
    IrGraph *g = cg->g;
    IrModel *m = cg->m;
    cg->prefix = prefix;
    for (uint32_t v = 0; v < g->nvals; v++) {
        StoreKind k = cg->vals[v].kind;
        if ((k == SK_BUFFER || k == SK_OUTPUT || k == SK_INPUT) && !cg_ctype(g->vals[v].type.dtype))
            return diag_error(m->diag, m->path, "the C backend does not support element type %s ('%s')",
                              ir_dtype_name(g->vals[v].type.dtype), g->vals[v].name);
        if (k == SK_BUFFER || k == SK_OUTPUT)
            for (int d = 0; d < g->vals[v].type.rank; d++)
                if (!cg_dim(cg, g->vals[v].type.dims[d]))
                    return diag_error(m->diag, m->path, "the C backend needs known extents: '%s' has a data-dependent shape",
                                      g->vals[v].name);
    }
    out_printf(o, "static bq_status %s_graph_%s(%s_model *m, const int64_t *sym, const void *const *in, void *const *out)\n{\n",
               prefix, cg->fn, prefix);
    for (uint32_t s = 0; s < m->dims.nsyms; s++) {
        char id[128];
        cg_ident(m->dims.sym[s], id, sizeof id);
        out_printf(o, "    const int64_t S_%s = sym[%u];\n    (void)S_%s;\n", id, s, id);
    }
    out_printf(o, "    (void)in;\n    (void)out;\n");
    for (int r = 0; r < cg->nregions; r++) {
        out_printf(o, "    const int64_t U%d = 64 * %s;\n", r, cg_dim(cg, cg->regions[r].unit));
        out_printf(o, "    if (U%d > m->cap_%s[%d]) return BQ_ERR_CAPACITY;\n", r, cg->fn, r);
        out_printf(o, "    unsigned char *const R%d = m->state + m->base_%s[%d];\n", r, cg->fn, r);
    }
    uint8_t *ref = referenced(cg);
    for (uint32_t v = 0; v < g->nvals; v++) {
        StoreKind k = cg->vals[v].kind;
        if (ref[v] && (k == SK_INPUT || k == SK_WEIGHT || k == SK_LOCAL)) declare(cg, o, v, prefix);
    }
    bool ok = true;
    for (uint32_t i = 0; i < g->nnodes && ok; i++) {
        const IrNode *n = &g->nodes[i];
        bool runs = false;
        for (uint32_t k = 0; k < n->nout; k++)
            runs |= cg->vals[n->out[k]].kind == SK_BUFFER || cg->vals[n->out[k]].kind == SK_OUTPUT;
        if (runs) {
            out_printf(o, "    /* ");
            for (const char *c = n->name ? n->name : ""; *c; c++)   /* a name must not end the comment */
                out_printf(o, "%c", (*c == '*' && c[1] == '/') || *c == '\n' ? ' ' : *c);
            out_printf(o, " (%s) */\n", ir_ops[n->op].name);
        }
        for (uint32_t k = 0; k < n->nout; k++) {
            IrId v = n->out[k];
            StoreKind s = cg->vals[v].kind;
            if (ref[v] && (s == SK_BUFFER || s == SK_OUTPUT || s == SK_ALIAS)) declare(cg, o, v, prefix);
        }
        ok = cg_emit_node(cg, o, i);
    }
    free(ref);
    out_printf(o, "    return BQ_OK;\n}\n\n");
    return ok;
}
