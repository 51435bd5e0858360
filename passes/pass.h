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

/* What a compilation brings besides the model: read-only inputs for the passes that need them
 * and a sink for what they measure. NULL fields (or a NULL env) mean "not given"; a pass that
 * needs something absent does nothing, or reports an error when it cannot do without. */
typedef struct PassEnv {
    const Plan *plan;          /* the precision plan (-plan FILE) */
    const char *calib_path;    /* --calib FILE: text for activation statistics */
    int calib_windows;         /* at most this many windows of calibration text (0: 4) */
    int calib_seq;             /* tokens per window (0: the model's context) */
    PlanReport *report;        /* evidence for --report (formats, SQNR, block choices) */
    /* Long-running work reports progress here (the CLI prints it on a terminal). */
    void (*progress)(void *ud, const char *what, int64_t done, int64_t total);
    void *progress_ud;
} PassEnv;

typedef struct PassCtx {
    IrModel *m;
    IrGraph *g;                /* the graph being transformed (the main graph) */
    int changed;               /* passes count their rewrites here (for -stats and tests) */
    const PassEnv *env;        /* never NULL while a pass runs (an empty env without one) */
} PassCtx;

typedef bool (*PassFn)(PassCtx *);

typedef struct PassInfo {
    const char *name;          /* as on the command line: --passes=canonicalize,fuse-linear */
    PassFn fn;
    bool in_default;           /* part of the default pipeline */
    const char *desc;
} PassInfo;

#define PASS(name, fn, file, when, desc) bool fn(PassCtx *);
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
    const PassEnv *env;        /* handed to every pass (NULL: an empty env) */
} PassRunOptions;

/* Runs the pipeline on m->graph; false on the first error (unknown pass name included). */
bool pass_run_pipeline(IrModel *m, const PassRunOptions *opt);

/* ---- patterns.c: small matching helpers shared by the passes ---- */

/* The node defining v, or NULL (inputs, constants, IR_NONE). */
IrNode *pat_def(const IrGraph *g, IrId v);
/* The node defining v if its op is `op`, else NULL. */
IrNode *pat_def_op(const IrGraph *g, IrId v, IrOp op);
/* v is a constant with exactly one element; its value as double. */
bool pat_const_scalar(const IrGraph *g, IrId v, double *out);
/* v is a constant whose elements all equal x (any shape). */
bool pat_const_all(const IrGraph *g, IrId v, double x);
/* Is v read by exactly one node input and no graph output? (uses from ir_use_counts) */
bool pat_single_use(const IrGraph *g, const uint32_t *uses, IrId v);
bool pat_is_graph_output(const IrGraph *g, IrId v);
/* Replaces every use of `from` with `to`; if `from` is a graph output, `to` takes over its
 * name (and `from` is renamed), so the model's signature never changes. False (nothing done)
 * when `to` is itself a graph input or output and `from` is an output: the caller keeps the
 * original node then. */
bool pat_replace_value(IrGraph *g, IrId from, IrId to);
/* Normalises an axis against a rank (negative counts from the end); -1 if out of range. */
int pat_axis(int64_t axis, int rank);

#endif
