/* pass.h — the pass interface: small and stable, so passes can live out of tree.
 *
 * A pass is one file with one entry point `bool pass_<name>(PassCtx *)`, registered by one
 * line in passes.def. It rewrites ctx->g (and its subgraphs if it cares), reports problems
 * to ctx->m->diag and returns false only on error. Passes include ir.h and this header,
 * nothing from another pass.
 */
#ifndef BQC_PASS_H
#define BQC_PASS_H

#include "../ir/ir.h"

typedef struct PassCtx {
    IrModel *m;
    IrGraph *g;                /* the graph being transformed (the main graph) */
    int changed;               /* passes count their rewrites here (for -stats and tests) */
} PassCtx;

typedef bool (*PassFn)(PassCtx *);

typedef struct PassInfo {
    const char *name;          /* as on the command line: --passes=canonicalize,fuse-linear */
    PassFn fn;
    const char *desc;
} PassInfo;

#define PASS(name, fn, file, desc) bool fn(PassCtx *);
#include "passes.def"
#undef PASS

extern const PassInfo pass_registry[];
extern const size_t pass_count;
const PassInfo *pass_find(const char *name, size_t n);

typedef struct PassRunOptions {
    const char *pipeline;      /* comma-separated names; NULL: the default pipeline */
    const char *dump_after;    /* pass name, or "all": print the IR after it to `dump` */
    FILE *dump;
    bool verify_each;          /* ir_verify after every pass */
    bool stats;                /* print each pass's rewrite count to stderr */
} PassRunOptions;

/* Runs the pipeline on m->graph; false on the first error (unknown pass name included). */
bool pass_run_pipeline(IrModel *m, const PassRunOptions *opt);

#endif
