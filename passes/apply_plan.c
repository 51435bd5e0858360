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
 * It runs after fuse-attention because kinds exist only on fused ops. A rule that matches no
 * matmul is an error (a typo in a glob should not silently quantise nothing).
 */
#include <stdlib.h>

#include "pass.h"

bool pass_apply_plan(PassCtx *c)
{
    const Plan *p = c->env->plan;
    if (!p) return true;
    PlanMatmul *mm;
    uint32_t n;
    if (!plan_resolve(p, c->g, c->m->diag, &mm, &n)) return false;
    for (uint32_t i = 0; i < n; i++) {
        IrNode *nd = &c->g->nodes[mm[i].node];
        for (int r = 0; r < PLAN_NROLES; r++) {
            bq_format *a = plan_format_attr(nd, mm[i].kind, (PlanRole)r);
            if (!a) continue;
            if (!ir_format_eq(a, &mm[i].fmt[r])) c->changed++;
            *a = mm[i].fmt[r];
            if (!c->env->report) continue;
            PlanReportRow *row = plan_report_row(c->env->report, nd->name ? nd->name : "", mm[i].kind, (PlanRole)r);
            row->rule = mm[i].rule[r];
            row->planned = mm[i].fmt[r];
            row->has_planned = true;
        }
    }
    free(mm);
    return true;
}
