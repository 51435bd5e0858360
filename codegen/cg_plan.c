/* cg_plan.c — where every value of a compiled graph lives, decided at compile time.
 *
 * Each value gets a storage class (cg_int.h): shape computations known symbolically need no
 * storage at all, views share their source's bytes, constants go to the weights blob (Linear
 * weights pre-packed for the kernel; a quantised Linear's f32 weight quantised into the rows
 * bq_qmatmul reads and a bias with a non-fp32 bias_format rounded through it, at compile time,
 * exactly as the interpreter does at run time), inputs and outputs are the caller's memory, and
 * the rest are activation buffers placed by liveness.
 *
 * Buffer sizes are polynomials of the symbols (batch*seq*768*4 bytes), so offsets cannot be
 * plain numbers. A buffer's size is c·p for a primitive polynomial p; buffers with the same
 * p share a region, measured in units of 64·p bytes, where the usual interval allocation
 * works on the integer sizes ceil(c/64). The generated code then places region r at a base
 * fixed when the model is opened (for the largest extents it accepts) and buffer v at
 * base_r + offset_v·64·p(current symbols): no overlap at any size, 64-byte alignment, and
 * total sizes that are formulas of max_ctx and max_batch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt.h"
#include "cg_int.h"

bool cg_reads_data(const IrNode *n, uint32_t k)
{
    switch (n->op) {
    case OP_SHAPE: case OP_SIZE: return false;
    case OP_RESHAPE: case OP_EXPAND: case OP_SQUEEZE: case OP_UNSQUEEZE: case OP_CUMSUM: case OP_TILE:
    case OP_SPLIT: case OP_REDUCE_SUM:
        return k == 0;
    case OP_SLICE: return k == 0;
    case OP_CONSTANT_OF_SHAPE: case OP_RANGE: return false;
    default: return true;
    }
}

static bool is_alias_op(IrOp op)
{
    return op == OP_RESHAPE || op == OP_SQUEEZE || op == OP_UNSQUEEZE || op == OP_FLATTEN || op == OP_IDENTITY;
}

int cg_weight(CgWeights *w, const IrValue *v, bool packed, int64_t N, int64_t K, int trans_b)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->w[i].data == v->data && w->w[i].packed == packed && w->w[i].trans_b == trans_b) return (int)i;
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 64;
        w->w = realloc(w->w, w->cap * sizeof *w->w);
        if (!w->w) unreachable("out of memory");
    }
    if (w->total < 64) w->total = 64;   /* the header */
    CgWeight *e = &w->w[w->n];
    memset(e, 0, sizeof *e);
    e->data = v->data;
    e->src_bytes = v->nbytes;
    e->packed = packed;
    e->N = N, e->K = K, e->trans_b = trans_b;
    e->offset = (w->total + 63) & ~(uint64_t)63;
    e->bytes = packed ? bq_pack_f32_bytes(N, K) : v->nbytes;
    w->total = e->offset + e->bytes;
    return (int)w->n++;
}

/* The fast kernels' packed form of weight v (f32 [K, N] / [N, K], or u8 rows [N, bytes(K)])
 * into data; false if bq_qk_pack refuses the weight (a block scale it cannot encode). */
static bool qk_pack(const IrValue *v, const bq_format *f, int64_t N, int64_t K, int trans_b, void *data)
{
    const void *rows = v->data;
    void *tmp = NULL;
    if (v->type.dtype != DT_U8) {
        tmp = malloc((size_t)N * bq_format_bytes(f, K) + 1);
        if (!tmp || bq_qpack_weights(f, v->data, trans_b ? K : N, trans_b, N, K, tmp) != BQ_OK)
            unreachable("out of memory");
        rows = tmp;
    }
    bq_status st = bq_qk_pack(f, rows, N, K, data);
    free(tmp);
    if (st == BQ_ERR_NOMEM) unreachable("out of memory");
    return st == BQ_OK;
}

int cg_weight_xform(CgWeights *w, Arena *a, const IrValue *v, CgXform x, const bq_format *f, int64_t N, int64_t K,
                    int trans_b)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (w->w[i].xform == x && w->w[i].src == v->data && ir_format_eq(&w->w[i].fmt, f) && w->w[i].trans_b == trans_b)
            return (int)i;
    uint64_t bytes = x == CG_X_QROWS ? (uint64_t)N * bq_format_bytes(f, K)
                     : x == CG_X_QK  ? (uint64_t)bq_qk_packed_bytes(f, N, K)
                                     : v->nbytes;
    void *data = arena_alloc_aligned(a, bytes + 1, 64);
    if (x == CG_X_QROWS) {
        if (bq_qpack_weights(f, v->data, trans_b ? K : N, trans_b, N, K, data) != BQ_OK) unreachable("out of memory");
    } else if (x == CG_X_QK) {
        if (bytes == 0 || !qk_pack(v, f, N, K, trans_b, data)) return -1;   /* the arena keeps the bytes: rare */
    } else {
        int64_t n = (int64_t)(v->nbytes / sizeof(float));
        void *q = malloc(bq_format_bytes(f, n) + 1);
        if (!q) unreachable("out of memory");
        bq_quantize(f, v->data, n, q);
        bq_dequantize(f, q, n, data);
        free(q);
    }
    IrValue t = *v;
    t.data = data;
    t.nbytes = bytes;
    int e = cg_weight(w, &t, false, N, K, trans_b);
    w->w[e].xform = x;
    w->w[e].src = v->data;
    w->w[e].fmt = *f;
    return e;
}

static IrId root_of(const CgGraph *cg, IrId v)
{
    while (cg->vals[v].kind == SK_ALIAS) v = cg->vals[v].root;
    return v;
}

static bool is_output(const IrGraph *g, IrId v)
{
    for (uint32_t k = 0; k < g->noutputs; k++)
        if (g->outputs[k] == v) return true;
    return false;
}

static bool static_value(const CgGraph *cg, IrId v)
{
    const IrValue *val = &cg->g->vals[v];
    if (!ir_dtype_is_int(val->type.dtype) || v >= cg->g->nvals || cg->sv[v].n < 0) return false;
    return ir_type_numel(&val->type) == cg->sv[v].n;
}

/* Decoder mode: past inputs and present outputs of attention ops are cache slots. */
static bool bind_cache(CgGraph *cg)
{
    IrGraph *g = cg->g;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        if (n->op != OP_ATTENTION) continue;
        if (n->nin < 6 || n->nout < 3)
            return diag_error(cg->m->diag, cg->m->path, "decoder API: attention without past/present");
        int layer = (int)cg->nlayers++;
        bq_attn_formats *lf = realloc(cg->layer_fmt, cg->nlayers * sizeof *lf);
        if (!lf) unreachable("out of memory");
        cg->layer_fmt = lf;
        lf[layer] = (bq_attn_formats){n->attr.attention.qk_input_format, n->attr.attention.qk_weight_format,
                                      n->attr.attention.pv_input_format, n->attr.attention.pv_weight_format};
        for (int j = 0; j < 2; j++) {
            IrId past = n->in[4 + j], pres = n->out[1 + j];
            if (g->vals[past].kind != IR_VAL_INPUT || !is_output(g, pres))
                return diag_error(cg->m->diag, cg->m->path, "decoder API: past/present of '%s' are not graph inputs/outputs", n->name);
            cg->vals[past] = (CgVal){.kind = SK_CACHE, .index = layer * 2 + j, .readonly = true};
            cg->vals[pres] = (CgVal){.kind = SK_CACHE, .index = layer * 2 + j};
        }
        const IrType *pt = &g->vals[n->in[4]].type;
        cg->heads = n->attr.attention.num_heads;
        cg->head_dim = IR_DIM_IS_CONST(pt->dims[3]) ? pt->dims[3] : -1;
    }
    return true;
}

/* ---- number formats of bqc.Linear (docs/ir.md): weights quantised, biases rounded here ---- */

bool cg_linear_quantised(const IrNode *n)
{
    return !ir_format_is_fp32(&n->attr.linear.input_format) || !ir_format_is_fp32(&n->attr.linear.weight_format);
}

static bool linear_bias_rounded(const IrGraph *g, const IrNode *n)
{
    return n->nin > 2 && n->in[2] != IR_NONE && !ir_format_is_fp32(&n->attr.linear.bias_format) &&
           g->vals[n->in[2]].type.dtype == DT_F32;
}

static bool format_ok(CgGraph *cg, IrId node, const bq_format *f, const char *role)
{
    if (bq_format_bytes(f, 1) != 0) return true;
    char name[64];
    bq_format_name(f, name, sizeof name);
    return ir_node_error(cg->g, node, "the %s %s cannot be compiled%s", role, name[0] ? name : "format",
                         f->block == 0 ? ": its block is 'auto' (the block-size pass chooses it)" : "");
}

static bool blocks_match(CgGraph *cg, IrId node, const bq_format *a, const bq_format *w, const char *an, const char *wn)
{
    if (a->block == 1 || w->block == 1 || a->block == w->block) return true;
    char fa[64], fw[64];
    bq_format_name(a, fa, sizeof fa);
    bq_format_name(w, fw, sizeof fw);
    return ir_node_error(cg->g, node, "%s %s and %s %s have different blocks: the blocks of a product must match", an, fa,
                         wn, fw);
}

/* A constant f32 operand quantised at compile time must be finite (formats.md §0). */
static bool finite_const(CgGraph *cg, IrId node, IrId v, const char *what)
{
    const IrValue *val = &cg->g->vals[v];
    if (!ir_is_const(cg->g, v) || val->type.dtype != DT_F32 || !ir_type_is_concrete(&val->type))
        return ir_node_error(cg->g, node, "the C backend needs the %s '%s' of a quantised Linear as a constant", what,
                             val->name);
    const float *x = val->data;
    int64_t n = ir_type_numel(&val->type), cols = val->type.rank == 2 ? val->type.dims[1] : n;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return ir_node_error(cg->g, node, "%s '%s' has a non-finite value at element %lld (row %lld, column %lld)",
                                 what, val->name, (long long)i, (long long)(i / cols), (long long)(i % cols));
    return true;
}

int cg_linear_qweight(CgGraph *cg, const IrNode *n, int64_t N, int64_t K, bool *qk)
{
    const IrValue *wv = &cg->g->vals[n->in[1]];
    const bq_format *fa = &n->attr.linear.input_format, *fw = &n->attr.linear.weight_format;
    int tb = (int)n->attr.linear.trans_b, e = -1;
    if (bq_qk_spec_of(fa, fw).kind) e = cg_weight_xform(cg->weights, cg->m->arena, wv, CG_X_QK, fw, N, K, tb);
    *qk = e >= 0;
    if (e >= 0) return e;
    if (wv->type.dtype == DT_U8) return cg_weight(cg->weights, wv, false, 0, 0, 0);
    return cg_weight_xform(cg->weights, cg->m->arena, wv, CG_X_QROWS, fw, N, K, tb);
}

/* The weight entries of Linear `id`: f32 panels, a quantised weight (the fast kernels' layout,
 * or bq_qmatmul's rows: cg_linear_qweight); a rounded bias. */
static bool linear_weights(CgGraph *cg, CgWeights *w, IrId id)
{
    IrGraph *g = cg->g;
    const IrNode *n = &g->nodes[id];
    const IrValue *wv = &g->vals[n->in[1]];
    const bq_format *fa = &n->attr.linear.input_format, *fw = &n->attr.linear.weight_format;
    const bq_format *fb = &n->attr.linear.bias_format;
    int tb = (int)n->attr.linear.trans_b;
    if (!cg_linear_quantised(n)) {
        int64_t N = tb ? wv->type.dims[0] : wv->type.dims[1], K = tb ? wv->type.dims[1] : wv->type.dims[0];
        cg_weight(w, wv, true, N, K, tb);
    } else if (!format_ok(cg, id, fa, "input_format") || !format_ok(cg, id, fw, "weight_format") ||
               !blocks_match(cg, id, fa, fw, "input_format", "weight_format")) {
        return false;
    } else {
        if (wv->type.dtype != DT_U8 && !finite_const(cg, id, n->in[1], "the weight")) return false;
        const IrType *xt = &g->vals[n->in[0]].type;
        int64_t K = wv->type.dtype == DT_U8 ? xt->dims[xt->rank - 1] : tb ? wv->type.dims[1] : wv->type.dims[0];
        int64_t N = wv->type.dtype == DT_U8 || tb ? wv->type.dims[0] : wv->type.dims[1];
        bool qk;
        if (wv->type.dtype != DT_U8 || IR_DIM_IS_CONST(K)) cg_linear_qweight(cg, n, N, K, &qk);
    }
    if (linear_bias_rounded(g, n)) {
        if (!format_ok(cg, id, fb, "bias_format") || !finite_const(cg, id, n->in[2], "the bias")) return false;
        cg_weight_xform(w, cg->m->arena, &g->vals[n->in[2]], CG_X_ROUND, fb, 0, 0, 0);
    }
    return true;
}

static bool attention_formats(CgGraph *cg, IrId id)
{
    const IrNode *n = &cg->g->nodes[id];
    const bq_format *f[4] = {&n->attr.attention.qk_input_format, &n->attr.attention.qk_weight_format,
                             &n->attr.attention.pv_input_format, &n->attr.attention.pv_weight_format};
    static const char *const names[4] = {"qk_input_format", "qk_weight_format", "pv_input_format", "pv_weight_format"};
    for (int i = 0; i < 4; i++)
        if (!ir_format_is_fp32(f[i]) && !format_ok(cg, id, f[i], names[i])) return false;
    return blocks_match(cg, id, f[0], f[1], names[0], names[1]) && blocks_match(cg, id, f[2], f[3], names[2], names[3]);
}

static bool classify(CgGraph *cg, CgWeights *w)
{
    IrGraph *g = cg->g;
    for (uint32_t k = 0; k < g->ninputs; k++)
        if (cg->vals[g->inputs[k]].kind == SK_NONE)
            cg->vals[g->inputs[k]] = (CgVal){.kind = SK_INPUT, .index = (int)k, .readonly = true};
    /* Constants: in the blob if any node reads them as data (Linear weights packed). */
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->nin; k++) {
            IrId v = n->in[k];
            if (v == IR_NONE || !ir_is_const(g, v) || !cg_reads_data(n, k)) continue;
            /* the Linear's own entries: f32 panels, a quantised weight (cg_linear_qweight: a
             * packed u8 weight without a fast kernel is stored as it is), a rounded bias */
            if (n->op == OP_LINEAR && k == 1 &&
                (g->vals[v].type.dtype != DT_U8 ||
                 bq_qk_spec_of(&n->attr.linear.input_format, &n->attr.linear.weight_format).kind))
                continue;
            if (n->op == OP_LINEAR && k == 2 && linear_bias_rounded(g, n)) continue;
            cg->vals[v] = (CgVal){.kind = SK_WEIGHT, .index = cg_weight(w, &g->vals[v], false, 0, 0, 0), .readonly = true};
        }
    }
    for (uint32_t v = 0; v < g->nvals; v++)
        if (g->vals[v].kind == IR_VAL_CONST && cg->vals[v].kind == SK_NONE) cg->vals[v].kind = SK_STATIC;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->nout; k++) {
            IrId v = n->out[k];
            if (v == IR_NONE || cg->vals[v].kind != SK_NONE) continue;
            if (is_output(g, v)) {
                for (uint32_t j = 0; j < g->noutputs; j++)
                    if (g->outputs[j] == v) cg->vals[v] = (CgVal){.kind = SK_OUTPUT, .index = (int)j};
            } else if (static_value(cg, v)) {
                cg->vals[v].kind = SK_STATIC;
            } else if (is_alias_op(n->op)) {
                cg->vals[v] = (CgVal){.kind = SK_ALIAS, .root = n->in[0]};
                cg->vals[v].readonly = cg->vals[n->in[0]].readonly;
            } else {
                cg->vals[v] = (CgVal){.kind = SK_BUFFER, .first = i, .last = i};
            }
        }
        /* Static values some op reads as data become small local arrays. */
        for (uint32_t k = 0; k < n->nin; k++)
            if (n->in[k] != IR_NONE && cg->vals[n->in[k]].kind == SK_STATIC && cg_reads_data(n, k) &&
                !ir_is_const(g, n->in[k]))
                cg->vals[n->in[k]].kind = SK_LOCAL;
    }
    /* Linear weights: packed or quantised entries, one per Linear (shared when identical). */
    for (uint32_t i = 0; i < g->nnodes; i++) {
        if (g->nodes[i].op == OP_LINEAR && !linear_weights(cg, w, i)) return false;
        if (g->nodes[i].op == OP_ATTENTION && !attention_formats(cg, i)) return false;
    }
    return true;
}

/* Extends buffer lifetimes to every read, through views. */
static void liveness(CgGraph *cg)
{
    IrGraph *g = cg->g;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->nin; k++) {
            if (n->in[k] == IR_NONE) continue;
            IrId r = root_of(cg, n->in[k]);
            if (cg->vals[r].kind == SK_BUFFER && cg->vals[r].last < i) cg->vals[r].last = i;
        }
    }
    for (uint32_t k = 0; k < g->noutputs; k++) {
        IrId r = root_of(cg, g->outputs[k]);
        if (cg->vals[r].kind == SK_BUFFER) cg->vals[r].last = g->nnodes;
    }
}

static int64_t gcd64(int64_t a, int64_t b)
{
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* bytes = c·p with p primitive (coefficients coprime, leading one positive). */
static bool split_size(CgGraph *cg, IrDim bytes, int64_t *c, IrDim *p)
{
    IrDimPoly poly;
    if (!ir_dim_poly(cg->m, bytes, &poly) || poly.opaque || poly.nterms == 0) return false;
    int64_t g = 0;
    for (int i = 0; i < poly.nterms; i++) g = gcd64(g, poly.t[i].coef);
    if (poly.t[0].coef < 0) g = -g;
    *c = g;
    *p = ir_dim_div(cg->m, bytes, g);
    return true;
}

static bool place(CgGraph *cg)
{
    IrGraph *g = cg->g;
    for (uint32_t v = 0; v < g->nvals; v++) {
        CgVal *cv = &cg->vals[v];
        if (cv->kind != SK_BUFFER) continue;
        const IrType *t = &g->vals[v].type;
        IrDim bytes = (IrDim)ir_dtype_size(t->dtype);
        for (int d = 0; d < t->rank; d++) bytes = ir_dim_mul(cg->m, bytes, t->dims[d]);
        int64_t c;
        IrDim p;
        if (IR_DIM_IS_CONST(bytes) && bytes == 0) bytes = 1;
        if (!split_size(cg, bytes, &c, &p))
            return diag_error(cg->m->diag, cg->m->path, "C backend: value '%s' has a size that depends on data",
                              g->vals[v].name);
        int r = 0;
        while (r < cg->nregions && cg->regions[r].unit != p) r++;
        if (r == cg->nregions) {
            if (r == CG_MAX_REGIONS) return diag_error(cg->m->diag, cg->m->path, "C backend: too many buffer size classes");
            cg->regions[cg->nregions++] = (CgRegion){.unit = p};
        }
        cv->region = r;
        cv->size = (c + 63) / 64;
        /* First fit among the buffers of this region whose lifetimes overlap. */
        int64_t off = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (uint32_t u = 0; u < v; u++) {
                const CgVal *o = &cg->vals[u];
                if (o->kind != SK_BUFFER || o->region != r || o->last < cv->first || cv->last < o->first) continue;
                if (off < o->offset + o->size && o->offset < off + cv->size) {
                    off = o->offset + o->size;
                    moved = true;
                }
            }
        }
        cv->offset = off;
        if (off + cv->size > cg->regions[r].units) cg->regions[r].units = off + cv->size;
    }
    return true;
}

bool cg_plan(CgGraph *cg, CgWeights *w)
{
    IrGraph *g = cg->g;
    if (!ir_infer_graph(g, &cg->sv)) return false;
    cg->vals = calloc(g->nvals + 1, sizeof *cg->vals);
    if (!cg->vals) unreachable("out of memory");
    if (g->nsubs) return diag_error(cg->m->diag, cg->m->path, "C backend: graphs with If are not supported");
    if (cg->decode && !bind_cache(cg)) return false;
    if (!classify(cg, w)) return false;
    liveness(cg);
    return place(cg);
}

void cg_graph_free(CgGraph *cg)
{
    free(cg->vals);
    free(cg->sv);
    free(cg->layer_fmt);
    cg->vals = NULL;
    cg->sv = NULL;
    cg->layer_fmt = NULL;
}
