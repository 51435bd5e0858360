/* manager.c — the pass registry (from passes.def) and the pipeline runner.
 *
 * A pipeline is a comma-separated list of registry names, or the registry order when none is
 * given. --verify-each runs the verifier after every pass and names the pass that broke an
 * invariant; --dump-after prints the IR text after a pass (or after all of them).
 */
#include <stdlib.h>
#include <string.h>

#include "pass.h"

#define DEFAULT true
#define ON_DEMAND false
const PassInfo pass_registry[] = {
#define PASS(nm, f, file, when, d) {nm, f, when, d},
#include "passes.def"
#undef PASS
};
#undef DEFAULT
#undef ON_DEMAND
const size_t pass_count = sizeof pass_registry / sizeof pass_registry[0];

const PassInfo *pass_find(const char *name, size_t n)
{
    for (size_t i = 0; i < pass_count; i++)
        if (strlen(pass_registry[i].name) == n && memcmp(pass_registry[i].name, name, n) == 0)
            return &pass_registry[i];
    return NULL;
}

static bool run_one(IrModel *m, const PassInfo *p, const PassRunOptions *o)
{
    static const PassEnv no_env;
    PassCtx ctx = {.m = m, .g = m->graph, .env = o->env ? o->env : &no_env};
    int before = m->diag->nerrors;
    bool ok = p->fn(&ctx);
    /* A pass that reported its errors has said what went wrong: one line is enough. */
    if (m->diag->nerrors > before) return false;
    if (!ok) return diag_error(m->diag, m->path, "pass '%s' failed", p->name);
    /* Rewrites make values whose types are not known yet; inference is idempotent, so
     * re-running it keeps every later pass (and the dump) seeing complete types. */
    if (!ir_infer_graph(m->graph, NULL))
        return diag_error(m->diag, m->path, "type inference failed after pass '%s'", p->name);
    if (o->stats) fprintf(stderr, "bqc: pass %-16s %d rewrites\n", p->name, ctx.changed);
    if (o->verify_each && !ir_verify(m->graph))
        return diag_error(m->diag, m->path, "IR is invalid after pass '%s'", p->name);
    if (o->dump_after && (strcmp(o->dump_after, "all") == 0 || strcmp(o->dump_after, p->name) == 0)) {
        fprintf(o->dump, "# IR after %s\n", p->name);
        ir_print_model(o->dump, m);
    }
    return true;
}

bool pass_run_pipeline(IrModel *m, const PassRunOptions *o)
{
    if (o->dump_after && strcmp(o->dump_after, "all") != 0 && !pass_find(o->dump_after, strlen(o->dump_after)))
        return diag_error(m->diag, NULL, "--dump-after: unknown pass '%s'", o->dump_after);
    if (!o->pipeline) {
        for (size_t i = 0; i < pass_count; i++)
            if (pass_registry[i].in_default && !run_one(m, &pass_registry[i], o)) return false;
        return true;
    }
    /* Validate every name before running anything: a typo should not leave half a pipeline. */
    for (int pass = 0; pass < 2; pass++) {
        const char *s = o->pipeline;
        while (*s) {
            size_t n = strcspn(s, ",");
            if (n > 0) {
                const PassInfo *p = pass_find(s, n);
                if (!p) return diag_error(m->diag, NULL, "--passes: unknown pass '%.*s'", (int)n, s);
                if (pass == 1 && !run_one(m, p, o)) return false;
            }
            s += n;
            if (*s == ',') s++;
        }
    }
    return true;
}
