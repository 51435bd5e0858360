/* apply_plan.c — attach the precision plan's formats to the matmuls.
 *
 * The plan (PassEnv.plan, read from -plan FILE) is resolved against the fused graph
 * (plan_resolve, ir/plan.c): every bqc.Linear gets input/weight/bias formats and every
 * bqc.Attention the formats of its two matmuls (Q·Kᵀ, P·V), written into the nodes' FORMAT
 * attributes. Nothing else changes here — weights are packed later (quantise-weights), after
 * block-size has chosen the blocks the plan left "auto". Operands the plan does not set are
 * fp32, so applying a plan replaces whatever formats the IR carried before. Without a plan
 * the pass does nothing.
 *
 * A "row" block (one scale per row of K, as vector-wise int8 quantises) becomes the matmul's
 * K here, the one place that knows both the plan and the shapes: a Linear's in_features, the
 * head size for Q·Kᵀ. P·V reduces over the keys, whose number is the sequence length, so
 * "row" there is an error (give the block, e.g. the model's context). So is a K the family
 * cannot take as a block (int: a multiple of 8 in 8..4096).
 *
 * It runs after fuse-attention because kinds exist only on fused ops. A rule that matches no
 * matmul is an error (a typo in a glob should not silently quantise nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pass.h"

/* A "row" block made the matmul's K (other formats unchanged); false (reported) if it cannot be. */
static bool resolve_row(PassCtx *c, const PlanMatmul *mm, PlanRole r, bq_format *f)
{
    if (f->block != BQ_BLOCK_ROW) return true;
    const char *what = mm->kind == PLAN_ATTN_QK ? "attn_qk " : mm->kind == PLAN_ATTN_PV ? "attn_pv " : "";
    char fn[64], name[96], why[200];
    bq_format_name(f, fn, sizeof fn);
    int64_t K = plan_matmul_k(c->g, mm);
    if (K < 0)
        return ir_node_error(c->g, mm->node, "the %s%s format %s needs a fixed K, but %s", what, plan_role_name(r), fn,
                             mm->kind == PLAN_ATTN_PV
                                 ? "P·V reduces over the keys, as many as the sequence: give a block (e.g. the model's context)"
                                 : "the input's last dimension is not known");
    /* "int8/row" -> "int8/<K>": the parser says whether the family takes that block, and why not */
    snprintf(name, sizeof name, "%.*s/%lld", (int)(strlen(fn) - 4), fn, (long long)K);
    bq_format g;
    if (bq_format_parse(name, strlen(name), 0, &g, why, sizeof why) != BQ_OK)
        return ir_node_error(c->g, mm->node, "the %s%s format %s: K = %lld is not a block it takes (%s)", what,
                             plan_role_name(r), fn, (long long)K, why);
    *f = g;
    return true;
}

bool pass_apply_plan(PassCtx *c)
{
    const Plan *p = c->env->plan;
    if (!p) return true;
    PlanMatmul *mm;
    uint32_t n;
    if (!plan_resolve(p, c->g, c->m->diag, &mm, &n)) return false;
    bool ok = true;
    for (uint32_t i = 0; i < n; i++) {
        IrNode *nd = &c->g->nodes[mm[i].node];
        for (int r = 0; r < PLAN_NROLES; r++) {
            bq_format *a = plan_format_attr(nd, mm[i].kind, (PlanRole)r);
            if (!a) continue;
            bq_format f = mm[i].fmt[r];
            if (!resolve_row(c, &mm[i], (PlanRole)r, &f)) {
                ok = false;
                continue;
            }
            if (!ir_format_eq(a, &f)) c->changed++;
            *a = f;
            if (!c->env->report) continue;
            PlanReportRow *row = plan_report_row(c->env->report, nd->name ? nd->name : "", mm[i].kind, (PlanRole)r);
            row->rule = mm[i].rule[r];
            row->planned = mm[i].fmt[r];
            row->has_planned = true;
        }
    }
    free(mm);
    return ok;
}
