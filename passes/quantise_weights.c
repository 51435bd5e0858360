/* quantise_weights.c — pack every quantised bqc.Linear weight into its format.
 *
 * The contract the interpreter and the code generator implement (ir.h, docs/ir.md): a Linear
 * whose weight_format is not fp32 reads its weight as a u8 constant [N, bq_format_bytes(fmt,
 * K)] whose row n holds output n's K weights quantised along K by bq_quantize — from W [K, N],
 * or [N, K] with trans_b, which is then irrelevant and cleared. Packing happens once, at
 * compile time, so neither the interpreter nor generated code ever sees fp32 weights of a
 * quantised matmul, and both read the same bytes.
 *
 * A bias keeps its f32 values: rounding it through bias_format (bq_quantize then
 * bq_dequantize over its N values, blocks along N) is part of bqc.Linear's semantics, done by
 * the executors — the interpreter per call, the code generator once into the weights blob —
 * so it happens in exactly one place. This pass only checks the bias and measures what the
 * rounding costs (SQNR) for the report.
 *
 * A weight (or bias) holding NaN or Inf is an error naming the tensor and the element
 * (formats.md §0): quantising it would silently poison whole blocks. The pass records each
 * packed tensor's SQNR and variance for --report. Already-packed weights (u8) are left alone,
 * so running the pass twice is harmless.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pass.h"

typedef struct Packed { IrId from; bq_format f; IrId to; PlanQStats st; } Packed;   /* shared weights pack once */

/* "<name>.bfp6_16": the new constant's name. */
static const char *packed_name(IrGraph *g, const char *base, const bq_format *f)
{
    char fn[64];
    bq_format_name(f, fn, sizeof fn);
    for (char *p = fn; *p; p++)
        if (*p == '/') *p = '_';
    return ir_unique_name(g, arena_printf(g->model->arena, "%s.%s", base, fn));
}

/* A constant f32 tensor of `rank` known dims, or an error. */
static bool const_f32(PassCtx *c, IrId node, IrId v, int rank, const char *what)
{
    const IrValue *val = &c->g->vals[v];
    if (ir_is_const(c->g, v) && val->type.dtype == DT_F32 && val->type.rank == rank && ir_type_is_concrete(&val->type) &&
        val->nbytes >= (uint64_t)ir_type_numel(&val->type) * sizeof(float))
        return true;
    return ir_node_error(c->g, node, "the %s '%s' must be a constant f32 tensor of rank %d to be quantised", what,
                         val->name, rank);
}

static bool all_finite(PassCtx *c, IrId node, IrId v, const char *what)
{
    const IrValue *val = &c->g->vals[v];
    const float *x = val->data;
    int64_t n = ir_type_numel(&val->type), cols = val->type.rank == 2 ? val->type.dims[1] : n;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(x[i])) continue;
        if (val->type.rank == 2)
            return ir_node_error(c->g, node, "%s '%s' has a non-finite value at element %lld (row %lld, column %lld)",
                                 what, val->name, (long long)i, (long long)(i / cols), (long long)(i % cols));
        return ir_node_error(c->g, node, "%s '%s' has a non-finite value at element %lld", what, val->name, (long long)i);
    }
    return true;
}

static void accumulate(PlanQStats *s, const float *x, const float *y, int64_t k)
{
    for (int64_t i = 0; i < k; i++) {
        double v = x[i], e = v - (double)y[i];
        s->sig += v * v;
        s->err += e * e;
        s->sum += v;
        s->sumsq += v * v;
    }
    s->n += k;
}

static void record(PassCtx *c, const IrNode *nd, PlanKind kind, PlanRole role, const PlanQStats *s)
{
    if (!c->env->report) return;
    PlanReportRow *row = plan_report_row(c->env->report, nd->name ? nd->name : "", kind, role);
    row->variance = plan_qstats_variance(s);
    row->sqnr_db = plan_qstats_sqnr_db(s);
    row->nvalues = s->n;
    row->calibrated = false;
}

/* The packed form of the weight of Linear `node` (nothing is changed on error). */
static IrId pack_weight(PassCtx *c, IrId node, const bq_format *f, PlanQStats *st)
{
    IrGraph *g = c->g;
    IrNode *n = &g->nodes[node];
    IrId w = n->in[1];
    if (!const_f32(c, node, w, 2, "weight") || !all_finite(c, node, w, "weight")) return IR_NONE;
    const IrValue *wv = &g->vals[w];
    int tb = n->attr.linear.trans_b != 0;
    int64_t K = wv->type.dims[tb], N = wv->type.dims[1 - tb];
    size_t rb = bq_format_bytes(f, K);
    uint8_t *data = arena_alloc_aligned(g->model->arena, (size_t)N * rb + 1, 64);
    float *row = malloc((size_t)(2 * K + 1) * sizeof *row), *y = row + K;
    if (!row) unreachable("out of memory");
    const float *W = wv->data;
    for (int64_t j = 0; j < N; j++) {
        for (int64_t k = 0; k < K; k++) row[k] = tb ? W[j * K + k] : W[k * N + j];
        bq_quantize(f, row, K, data + (size_t)j * rb);
        bq_dequantize(f, data + (size_t)j * rb, K, y);
        accumulate(st, row, y, K);
    }
    free(row);
    IrType t = {.dtype = DT_U8, .rank = 2, .dims = {N, (int64_t)rb}};
    const char *name = packed_name(g, wv->name, f);
    return ir_const_add(g, name, &t, data, (uint64_t)N * rb);
}

/* Checks the bias and measures its rounding through the format (the executors round it). */
static bool measure_bias(PassCtx *c, IrId node, const bq_format *f, PlanQStats *st)
{
    IrGraph *g = c->g;
    IrId b = g->nodes[node].in[2];
    if (!const_f32(c, node, b, 1, "bias") || !all_finite(c, node, b, "bias")) return false;
    const IrValue *bv = &g->vals[b];
    int64_t N = bv->type.dims[0];
    float *y = malloc((size_t)(N + 1) * sizeof *y);
    void *q = malloc(bq_format_bytes(f, N) + 1);
    if (!y || !q) unreachable("out of memory");
    bq_quantize(f, bv->data, N, q);
    bq_dequantize(f, q, N, y);
    accumulate(st, bv->data, y, N);
    free(q);
    free(y);
    return true;
}

static bool not_auto(PassCtx *c, IrId node, const bq_format *f, const char *role)
{
    if (f->block != 0) return true;
    char fn[64];
    bq_format_name(f, fn, sizeof fn);
    return ir_node_error(c->g, node, "the %s format %s has an 'auto' block: block-size must run first", role, fn);
}

static bool quantise_linear(PassCtx *c, const PlanMatmul *mm, Packed *done, uint32_t *ndone)
{
    IrGraph *g = c->g;
    IrId node = mm->node;
    IrNode *n = &g->nodes[node];
    const bq_format wf = n->attr.linear.weight_format, bf = n->attr.linear.bias_format;
    if (!ir_format_is_fp32(&wf) && g->vals[n->in[1]].type.dtype != DT_U8) {
        if (!not_auto(c, node, &wf, "weight")) return false;
        IrId q = IR_NONE;
        PlanQStats st = {0};
        for (uint32_t i = 0; i < *ndone && q == IR_NONE; i++)
            if (done[i].from == n->in[1] && ir_format_eq(&done[i].f, &wf)) q = done[i].to, st = done[i].st;
        if (q == IR_NONE) {
            IrId from = n->in[1];
            if ((q = pack_weight(c, node, &wf, &st)) == IR_NONE) return false;
            done[(*ndone)++] = (Packed){from, wf, q, st};
        }
        n = &g->nodes[node];
        record(c, n, mm->kind, PLAN_WEIGHT, &st);
        n->in[1] = q;
        n->attr.linear.trans_b = 0;
        c->changed++;
    }
    if (n->nin > 2 && n->in[2] != IR_NONE && !ir_format_is_fp32(&bf)) {
        if (!not_auto(c, node, &bf, "bias")) return false;
        PlanQStats st = {0};
        if (!measure_bias(c, node, &bf, &st)) return false;
        record(c, &g->nodes[node], mm->kind, PLAN_BIAS, &st);
    }
    return true;
}

bool pass_quantise_weights(PassCtx *c)
{
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(c->g, &mm);
    Packed *done = calloc(n + 1, sizeof *done);
    uint32_t ndone = 0;
    bool ok = done != NULL;
    for (uint32_t i = 0; ok && i < n; i++)
        if (c->g->nodes[mm[i].node].op == OP_LINEAR) ok = quantise_linear(c, &mm[i], done, &ndone);
    free(done);
    free(mm);
    if (ok) ir_dce(c->g);
    return ok;
}
