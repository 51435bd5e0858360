/* report.c — `bqc MODEL -plan plan.json --report[=json]`: what the plan did to the model.
 *
 * Printed after the pipeline, from the formats on the nodes (the truth the interpreter and
 * the code generator act on) and the evidence the passes recorded in a PlanReport (apply-plan:
 * the deciding rule; block-size: variance and SQNR per candidate block; quantise-weights: the
 * SQNR and variance of each packed weight). Per operand: node, kind, role, format, block,
 * bits per element, SQNR, variance, where the format came from and the block-size evidence;
 * per model: parameters, average weight and activation bpw, memory density vs fp32 and the
 * estimated weight bytes (plan_summarise, ir/plan.c, defines exactly what is counted).
 *
 * It lives in the driver, not in passes/, because it is presentation (a table for people, JSON
 * for scripts) of numbers the library computes; search and eval will read PlanSummary and
 * PlanReport directly rather than parse this output.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_num(FILE *f, double x)
{
    if (isfinite(x)) fprintf(f, "%.17g", x);
    else fputs("null", f);
}

static const char *rule_str(int rule, char *buf, size_t n)
{
    if (rule >= 0) snprintf(buf, n, "rules[%d]", rule);
    else snprintf(buf, n, "%s", rule == PLAN_RULE_DEFAULT ? "default" : "-");
    return buf;
}

static const char *num_str(double x, const char *fmt, char *buf, size_t n)
{
    if (isnan(x)) snprintf(buf, n, "-");
    else if (isinf(x)) snprintf(buf, n, "inf");
    else snprintf(buf, n, fmt, x);
    return buf;
}

/* 1234567 → "1,234,567" */
static const char *grouped(uint64_t v, char *buf, size_t n)
{
    char d[32];
    int k = snprintf(d, sizeof d, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < k && (size_t)o + 2 < n; i++) {
        if (i && (k - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = d[i];
    }
    buf[o] = 0;
    return buf;
}

typedef struct Row {           /* one operand as printed */
    const char *node, *tensor;
    PlanKind kind;
    PlanRole role;
    bq_format fmt;
    const PlanReportRow *ev;   /* may be NULL */
} Row;

static void evidence(FILE *f, const PlanEvidence *e)
{
    for (uint32_t i = 0; i < e->ncand; i++) {
        char s[32];
        fprintf(f, "%s%u:%s%s", i ? " " : "", e->cand[i], num_str(e->sqnr_db[i], "%.1f", s, sizeof s),
                e->cand[i] == e->chosen ? "*" : "");
    }
    fprintf(f, " (target %.3g dB %s)", e->target_db, e->met ? "met" : "not met: best SQNR");
}

static void table_row(FILE *f, const Row *r, int wnode)
{
    char fn[64], bpw[32], sq[32], var[32], rule[32], blk[16];
    bq_format_name(&r->fmt, fn, sizeof fn);
    bool plain = r->fmt.family <= BQ_FAM_BF16;
    snprintf(blk, sizeof blk, plain ? "-" : "%u", r->fmt.block);
    const PlanReportRow *e = r->ev;
    fprintf(f, "%-*s  %-8s %-7s %-11s %5s %6s %8s %10s  %-*s", wnode, r->node, plan_kind_name(r->kind),
            plan_role_name(r->role), fn, blk, num_str(bq_format_bpe(&r->fmt), "%.2f", bpw, sizeof bpw),
            num_str(e ? e->sqnr_db : NAN, "%.1f", sq, sizeof sq), num_str(e ? e->variance : NAN, "%.3g", var, sizeof var),
            e && e->ev.ncand ? 9 : 0, rule_str(e ? e->rule : PLAN_RULE_NONE, rule, sizeof rule));
    if (e && e->ev.ncand) {
        fputs("  ", f);
        evidence(f, &e->ev);
    }
    fputc('\n', f);
}

static void json_row(FILE *f, const Row *r, bool first)
{
    char fn[64], rule[32];
    bq_format_name(&r->fmt, fn, sizeof fn);
    const PlanReportRow *e = r->ev;
    fprintf(f, "%s\n    {\"node\": ", first ? "" : ",");
    json_str(f, r->node);
    fprintf(f, ", \"kind\": \"%s\", \"role\": \"%s\", \"tensor\": ", plan_kind_name(r->kind), plan_role_name(r->role));
    if (r->tensor) json_str(f, r->tensor);
    else fputs("null", f);
    fprintf(f, ", \"format\": \"%s\", \"block\": %u, \"bpw\": ", fn, r->fmt.block);
    json_num(f, bq_format_bpe(&r->fmt));
    fputs(", \"sqnr_db\": ", f);
    json_num(f, e ? e->sqnr_db : NAN);
    fputs(", \"variance\": ", f);
    json_num(f, e ? e->variance : NAN);
    fprintf(f, ", \"values\": %lld, \"source\": ", (long long)(e ? e->nvalues : 0));
    if (e && e->nvalues) fprintf(f, "\"%s\"", e->calibrated ? "calibration" : "weights");
    else fputs("null", f);
    fputs(", \"rule\": ", f);
    if (e && e->rule != PLAN_RULE_NONE) json_str(f, rule_str(e->rule, rule, sizeof rule));
    else fputs("null", f);
    if (e && e->ev.ncand) {
        fputs(", \"block_size\": {\"candidates\": [", f);
        for (uint32_t i = 0; i < e->ev.ncand; i++) fprintf(f, "%s%u", i ? ", " : "", e->ev.cand[i]);
        fputs("], \"sqnr_db\": [", f);
        for (uint32_t i = 0; i < e->ev.ncand; i++) {
            if (i) fputs(", ", f);
            json_num(f, e->ev.sqnr_db[i]);
        }
        fprintf(f, "], \"chosen\": %u, \"target_sqnr_db\": ", e->ev.chosen);
        json_num(f, e->ev.target_db);
        fprintf(f, ", \"target_met\": %s}", e->ev.met ? "true" : "false");
    }
    fputc('}', f);
}

static void summary_text(FILE *f, const PlanSummary *s)
{
    char a[32], b[32], c[32];
    uint64_t other = (uint64_t)(s->params - s->params_quant);
    fprintf(f, "\nparameters       %s (quantised matmul weights %s, the rest %s)\n", grouped((uint64_t)s->params, a, sizeof a),
            grouped((uint64_t)s->params_quant, b, sizeof b), grouped(other, c, sizeof c));
    fprintf(f, "weight bpw       %s (the %s weights of q/k/v/out, fc1, fc2)\n", num_str(s->weight_bpw, "%.2f", a, sizeof a),
            grouped((uint64_t)s->w_elems, b, sizeof b));
    fprintf(f, "activation bpw   %s (their inputs and both attention matmuls' operands, %lld tokens)\n",
            num_str(s->act_bpw, "%.2f", a, sizeof a), (long long)s->seq);
    fprintf(f, "memory density   %sx vs fp32 (formats.md §8, over those matmuls)\n", num_str(s->density, "%.2f", a, sizeof a));
    fprintf(f, "weight bytes     %s estimated (fp32: %s)\n", grouped(s->weight_bytes, a, sizeof a),
            grouped((uint64_t)s->params * 4, b, sizeof b));
}

static void summary_json(FILE *f, const PlanSummary *s)
{
    fprintf(f, ",\n  \"summary\": {\"seq\": %lld, \"parameters\": %lld, \"quantised_matmul_weights\": %lld, "
               "\"other_parameters\": %lld, \"weight_bpw\": ",
            (long long)s->seq, (long long)s->params, (long long)s->params_quant, (long long)(s->params - s->params_quant));
    json_num(f, s->weight_bpw);
    fputs(", \"activation_bpw\": ", f);
    json_num(f, s->act_bpw);
    fputs(", \"memory_density\": ", f);
    json_num(f, s->density);
    fprintf(f, ", \"density_weights\": %.0f, \"density_activations\": %.0f, \"weight_bytes\": %llu, "
               "\"fp32_weight_bytes\": %llu}",
            s->w_elems, s->a_elems, (unsigned long long)s->weight_bytes, (unsigned long long)s->params * 4);
}

bool driver_report(FILE *out, const IrModel *m, const DriverOptions *o, const PlanReport *r, bool json)
{
    const IrGraph *g = m->graph;
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(g, &mm);
    Row *rows = calloc(3 * n + 1, sizeof *rows);
    if (!rows) unreachable("out of memory");
    uint32_t nr = 0;
    int wnode = 4;
    for (uint32_t i = 0; i < n; i++) {
        IrNode *nd = &g->nodes[mm[i].node];
        for (int k = 0; k < PLAN_NROLES; k++) {
            if (!plan_format_attr(nd, mm[i].kind, (PlanRole)k)) continue;
            IrId v = plan_operand(g, &mm[i], (PlanRole)k);
            Row *row = &rows[nr++];
            *row = (Row){.node = nd->name ? nd->name : "", .tensor = v != IR_NONE ? g->vals[v].name : NULL,
                         .kind = mm[i].kind, .role = (PlanRole)k, .fmt = mm[i].fmt[k]};
            row->ev = plan_report_find(r, row->node, row->kind, row->role);
            if ((int)strlen(row->node) > wnode) wnode = (int)strlen(row->node);
        }
    }
    PlanSummary s;
    plan_summarise(g, o->report_seq, &s);
    if (json) {
        fputs("{\n  \"model\": ", out);
        json_str(out, o->model);
        fputs(", \"plan\": ", out);
        if (o->plan) json_str(out, o->plan);
        else fputs("null", out);
        fputs(", \"calibration\": ", out);
        if (o->calib && r->calib_tokens) {
            fputs("{\"file\": ", out);
            json_str(out, o->calib);
            fprintf(out, ", \"tokens\": %lld}", (long long)r->calib_tokens);
        } else {
            fputs("null", out);
        }
        fputs(",\n  \"tensors\": [", out);
        for (uint32_t i = 0; i < nr; i++) json_row(out, &rows[i], i == 0);
        fputs(nr ? "\n  ]" : "]", out);
        summary_json(out, &s);
        fputs("\n}\n", out);
    } else {
        fprintf(out, "bqc report: %s, %s%s", o->model, o->plan ? "plan " : "no plan", o->plan ? o->plan : "");
        if (o->calib && r->calib_tokens) fprintf(out, ", calibration %lld tokens of %s", (long long)r->calib_tokens, o->calib);
        fprintf(out, "\n\n%-*s  %-8s %-7s %-11s %5s %6s %8s %10s  %-9s  %s\n", wnode, "node", "kind", "role", "format",
                "block", "bpw", "SQNR dB", "variance", "from", "block-size evidence (block:SQNR dB, * chosen)");
        for (uint32_t i = 0; i < nr; i++) table_row(out, &rows[i], wnode);
        summary_text(out, &s);
    }
    free(rows);
    free(mm);
    fflush(out);
    return !ferror(out);
}
