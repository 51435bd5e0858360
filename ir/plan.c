/* plan.c — the precision plan applied to a graph (design.md "The precision plan", docs/plans.md).
 *
 * A plan addresses matmuls, not nodes: a bqc.Linear is one (kind `linear`, or `lm_head` when
 * its result reaches the logits through views), a bqc.Attention is two (`attn_qk`, `attn_pv`).
 * Each matmul has up to three operand roles (input, weight, bias) whose formats live in the
 * node's FORMAT attributes; plan_format_attr is the one place that knows where. Resolution is
 * the rule of the design: per role, the first rule that matches the node (glob) and kind and
 * sets the role decides; otherwise the default; otherwise fp32.
 *
 * Also here, because three passes and the report share them: quantisation statistics (SQNR
 * and variance of values run through a format), the report's evidence rows, and the
 * model-level figures of formats.md §8 (bits per element, memory density). Reading plan.json
 * is frontend/plan.c's job; nothing here sees JSON.
 */
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static const char *const role_names[PLAN_NROLES] = {"input", "weight", "bias"};
static const char *const kind_names[PLAN_NKINDS] = {"linear", "attn_qk", "attn_pv", "lm_head"};

const char *plan_role_name(PlanRole r) { return (unsigned)r < PLAN_NROLES ? role_names[r] : "?"; }
const char *plan_kind_name(PlanKind k) { return (unsigned)k < PLAN_NKINDS ? kind_names[k] : "?"; }

int plan_kind_from_name(const char *s)
{
    for (int k = 0; k < PLAN_NKINDS; k++)
        if (strcmp(s, kind_names[k]) == 0) return k;
    return -1;
}

bq_format *plan_format_attr(IrNode *n, PlanKind k, PlanRole r)
{
    if (n->op == OP_LINEAR && (k == PLAN_LINEAR || k == PLAN_LM_HEAD)) {
        if (r == PLAN_INPUT) return &n->attr.linear.input_format;
        if (r == PLAN_WEIGHT) return &n->attr.linear.weight_format;
        return n->nin > 2 && n->in[2] != IR_NONE ? &n->attr.linear.bias_format : NULL;
    }
    if (n->op == OP_ATTENTION && r != PLAN_BIAS) {
        if (k == PLAN_ATTN_QK) return r == PLAN_INPUT ? &n->attr.attention.qk_input_format : &n->attr.attention.qk_weight_format;
        if (k == PLAN_ATTN_PV) return r == PLAN_INPUT ? &n->attr.attention.pv_input_format : &n->attr.attention.pv_weight_format;
    }
    return NULL;
}

IrId plan_operand(const IrGraph *g, const PlanMatmul *mm, PlanRole r)
{
    const IrNode *n = &g->nodes[mm->node];
    if (n->op == OP_LINEAR) return r < n->nin ? n->in[r] : IR_NONE;
    if (mm->kind == PLAN_ATTN_QK) return r == PLAN_INPUT ? n->in[0] : r == PLAN_WEIGHT ? n->in[1] : IR_NONE;
    return r == PLAN_WEIGHT ? n->in[2] : IR_NONE;
}

/* The bqc.Linear whose result reaches the first graph output through layout ops, or IR_NONE. */
static IrId lm_head(const IrGraph *g)
{
    if (g->noutputs == 0) return IR_NONE;
    IrId v = g->outputs[0];
    for (;;) {
        const IrValue *val = &g->vals[v];
        if (val->kind != IR_VAL_NODE || val->def == IR_NONE) return IR_NONE;
        const IrNode *n = &g->nodes[val->def];
        if (n->dead) return IR_NONE;
        if (n->op == OP_LINEAR) return val->def;
        if (!(ir_ops[n->op].flags & F_LAYOUT) || n->nin < 1) return IR_NONE;
        v = n->in[0];
    }
}

static void read_formats(const IrGraph *g, PlanMatmul *mm)
{
    for (int r = 0; r < PLAN_NROLES; r++) {
        bq_format *a = plan_format_attr(&g->nodes[mm->node], mm->kind, (PlanRole)r);
        mm->fmt[r] = a ? *a : ir_format_fp32();
        mm->rule[r] = PLAN_RULE_NONE;
    }
}

uint32_t plan_matmuls(const IrGraph *g, PlanMatmul **out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (!g->nodes[i].dead) n += g->nodes[i].op == OP_LINEAR ? 1 : g->nodes[i].op == OP_ATTENTION ? 2 : 0;
    *out = NULL;
    if (n == 0) return 0;
    PlanMatmul *mm = calloc(n, sizeof *mm);
    if (!mm) unreachable("out of memory");
    IrId head = lm_head(g);
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *nd = &g->nodes[i];
        if (nd->dead) continue;
        if (nd->op == OP_LINEAR) {
            mm[k++] = (PlanMatmul){.node = i, .kind = i == head ? PLAN_LM_HEAD : PLAN_LINEAR};
        } else if (nd->op == OP_ATTENTION) {
            mm[k++] = (PlanMatmul){.node = i, .kind = PLAN_ATTN_QK};
            mm[k++] = (PlanMatmul){.node = i, .kind = PLAN_ATTN_PV};
        }
    }
    for (uint32_t j = 0; j < n; j++) read_formats(g, &mm[j]);
    *out = mm;
    return n;
}

static bool rule_matches(const PlanRule *r, const IrNode *n, PlanKind k)
{
    if (r->kind != PLAN_ANY_KIND && r->kind != (int)k) return false;
    return !r->match || fnmatch(r->match, n->name ? n->name : "", 0) == 0;
}

bool plan_resolve(const Plan *p, const IrGraph *g, Diag *d, PlanMatmul **out, uint32_t *nout)
{
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(g, &mm);
    bool *used = calloc(p->nrules + 1, sizeof *used);
    if (!used) unreachable("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const IrNode *nd = &g->nodes[mm[i].node];
        for (uint32_t j = 0; j < p->nrules; j++)
            if (rule_matches(&p->rules[j], nd, mm[i].kind)) used[j] = true;
        for (int r = 0; r < PLAN_NROLES; r++) {
            if (!plan_format_attr(&g->nodes[mm[i].node], mm[i].kind, (PlanRole)r)) continue;
            bool def = p->def_sets >> r & 1;
            mm[i].fmt[r] = def ? p->def[r] : ir_format_fp32();
            mm[i].rule[r] = def ? PLAN_RULE_DEFAULT : PLAN_RULE_NONE;
            for (uint32_t j = 0; j < p->nrules; j++) {
                const PlanRule *ru = &p->rules[j];
                if (!(ru->sets >> r & 1) || !rule_matches(ru, nd, mm[i].kind)) continue;
                mm[i].fmt[r] = ru->fmt[r];
                mm[i].rule[r] = (int)j;
                break;
            }
        }
    }
    bool ok = true;
    for (uint32_t j = 0; j < p->nrules; j++) {
        if (used[j]) continue;
        char where[1024];
        snprintf(where, sizeof where, "%s: rules[%u]", p->path, j);
        ok = diag_error(d, where, "matches no node");
    }
    free(used);
    if (!ok) {
        free(mm);
        mm = NULL;
        n = 0;
    }
    *out = mm;
    *nout = n;
    return ok;
}

int64_t plan_matmul_k(const IrGraph *g, const PlanMatmul *mm)
{
    const IrNode *n = &g->nodes[mm->node];
    const IrType *x = &g->vals[n->in[0]].type;
    if (mm->kind == PLAN_ATTN_PV || x->rank < 1 || !IR_DIM_IS_CONST(x->dims[x->rank - 1])) return -1;
    int64_t k = x->dims[x->rank - 1];
    if (n->op == OP_LINEAR) return k;
    int64_t h = n->attr.attention.num_heads;
    return h > 0 && k % h == 0 ? k / h : -1;
}

/* ---- quantisation statistics ---- */

size_t plan_qstats_scratch(const bq_format *f, int64_t k)
{
    return 2 * (size_t)k * sizeof(float) + bq_format_bytes(f, k) + 64;
}

void plan_qstats_add(PlanQStats *s, const bq_format *f, const float *x, int64_t k, int64_t stride, void *scratch)
{
    float *run = scratch, *y = run + k;
    void *q = y + k;
    for (int64_t i = 0; i < k; i++) {
        run[i] = x[i * stride];
        if (!isfinite(run[i])) return;
    }
    if (ir_format_is_fp32(f)) {
        memcpy(y, run, (size_t)k * sizeof *y);
    } else {
        bq_quantize(f, run, k, q);
        bq_dequantize(f, q, k, y);
    }
    for (int64_t i = 0; i < k; i++) {
        double v = run[i], e = v - (double)y[i];
        s->sig += v * v;
        s->err += e * e;
        s->sum += v;
        s->sumsq += v * v;
    }
    s->n += k;
}

double plan_qstats_sqnr_db(const PlanQStats *s)
{
    if (s->n == 0) return NAN;
    if (s->err == 0) return s->sig > 0 ? INFINITY : NAN;
    return 10.0 * log10(s->sig / s->err);
}

double plan_qstats_variance(const PlanQStats *s)
{
    if (s->n == 0) return NAN;
    double mean = s->sum / (double)s->n, v = s->sumsq / (double)s->n - mean * mean;
    return v < 0 ? 0 : v;
}

/* ---- the report's evidence ---- */

const PlanReportRow *plan_report_find(const PlanReport *r, const char *node, PlanKind k, PlanRole role)
{
    for (uint32_t i = 0; r && i < r->n; i++)
        if (r->rows[i].kind == k && r->rows[i].role == role && strcmp(r->rows[i].node, node) == 0)
            return &r->rows[i];
    return NULL;
}

PlanReportRow *plan_report_row(PlanReport *r, const char *node, PlanKind k, PlanRole role)
{
    const PlanReportRow *found = plan_report_find(r, node, k, role);
    if (found) return &r->rows[found - r->rows];
    if (r->n == r->cap) {
        uint32_t cap = r->cap ? 2 * r->cap : 64;
        PlanReportRow *rows = realloc(r->rows, cap * sizeof *rows);
        if (!rows) unreachable("out of memory");
        r->rows = rows;
        r->cap = cap;
    }
    PlanReportRow *row = &r->rows[r->n++];
    *row = (PlanReportRow){.node = node, .kind = k, .role = role, .rule = PLAN_RULE_NONE, .variance = NAN,
                           .sqnr_db = NAN};
    return row;
}

void plan_report_free(PlanReport *r)
{
    free(r->rows);
    memset(r, 0, sizeof *r);
}

/* ---- model-level figures ---- */

static int64_t const_dim(const IrType *t, int i)
{
    if (t->rank < 0 || i < 0 || i >= t->rank || !IR_DIM_IS_CONST(t->dims[i])) return -1;
    return t->dims[i];
}

/* K and N of a Linear, packed or not (-1 when not known). */
static void linear_kn(const IrGraph *g, const IrNode *n, int64_t *K, int64_t *N)
{
    const IrType *x = &g->vals[n->in[0]].type, *w = &g->vals[n->in[1]].type;
    bool packed = !ir_format_is_fp32(&n->attr.linear.weight_format) && w->dtype == DT_U8;
    int tb = n->attr.linear.trans_b != 0;
    *K = const_dim(x, x->rank - 1);
    *N = const_dim(w, packed ? 0 : 1 - tb);
}

static void count(double *elems, double *bits, double n, const bq_format *f)
{
    *elems += n;
    *bits += n * bq_format_bpe(f);   /* NAN for an unresolved "auto" block */
}

void plan_summarise(const IrGraph *g, int64_t seq, PlanSummary *s)
{
    memset(s, 0, sizeof *s);
    s->seq = seq;
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(g, &mm);
    /* Matmul weights stored in a format: elements and estimated bytes, by value. */
    int64_t *welems = calloc(g->nvals + 1, sizeof *welems);
    uint64_t *wbytes = calloc(g->nvals + 1, sizeof *wbytes);
    if (!welems || !wbytes) unreachable("out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const IrNode *nd = &g->nodes[mm[i].node];
        if (nd->op == OP_LINEAR) {
            int64_t K, N;
            linear_kn(g, nd, &K, &N);
            if (K < 0 || N < 0) continue;
            const bq_format *wf = &mm[i].fmt[PLAN_WEIGHT];
            if (!ir_format_is_fp32(wf)) {
                welems[nd->in[1]] = K * N;
                wbytes[nd->in[1]] = (uint64_t)N * bq_format_bytes(wf, K);
                s->params_quant += K * N;
            }
            if (mm[i].kind != PLAN_LINEAR) continue;
            count(&s->w_elems, &s->w_bits, (double)K * N, wf);
            count(&s->a_elems, &s->a_bits, (double)seq * K, &mm[i].fmt[PLAN_INPUT]);
        } else {
            int64_t hd = const_dim(&g->vals[nd->in[0]].type, 2), H = nd->attr.attention.num_heads;
            if (hd < 0) continue;
            double in = mm[i].kind == PLAN_ATTN_QK ? (double)seq * hd : (double)H * seq * seq;
            count(&s->a_elems, &s->a_bits, in, &mm[i].fmt[PLAN_INPUT]);
            count(&s->a_elems, &s->a_bits, (double)seq * hd, &mm[i].fmt[PLAN_WEIGHT]);
        }
    }
    for (uint32_t v = 0; v < g->nvals; v++) {
        const IrValue *val = &g->vals[v];
        if (val->kind != IR_VAL_CONST) continue;
        if (welems[v]) {
            s->params += welems[v];
            s->weight_bytes += wbytes[v];
        } else if (ir_dtype_is_float(val->type.dtype)) {
            int64_t k = ir_type_numel(&val->type);
            s->params += k > 0 ? k : 0;
            s->weight_bytes += k > 0 ? (uint64_t)k * ir_dtype_size(val->type.dtype) : 0;
        }
    }
    s->weight_bpw = s->w_elems > 0 ? s->w_bits / s->w_elems : NAN;
    s->act_bpw = s->a_elems > 0 ? s->a_bits / s->a_elems : NAN;
    double bits = s->w_bits + s->a_bits;
    s->density = bits > 0 ? 32.0 * (s->w_elems + s->a_elems) / bits : NAN;
    free(welems);
    free(wbytes);
    free(mm);
}
