/* llvm_cmd.c — the LLVM backend from the command line: `bqc MODEL --emit=obj|llvm` writes an
 * object file (or LLVM IR) plus the C backend's <name>.h and <name>.weights, and
 * `bqc run --exec=llvm` compiles the model in process (ORC JIT) and calls the generated
 * <name>_run on the inputs, as --exec=c does through a separate program.
 *
 * Without LLVM (BQC_HAVE_LLVM unset) both say the backend is unavailable; nothing else
 * depends on it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"

#ifndef BQC_HAVE_LLVM

static bool unavailable(Diag *d, const char *what)
{
    return diag_error(d, NULL, "%s: this bqc was built without LLVM, so the LLVM backend is unavailable "
                               "(install LLVM 19 with scripts/setup and rebuild; --emit=c and --exec=c work)", what);
}

bool driver_emit_llvm(Diag *d, IrModel *m, const DriverOptions *o, const char *name)
{
    (void)m, (void)name;
    return unavailable(d, strcmp(o->emit, "obj") == 0 ? "--emit=obj" : "--emit=llvm");
}

bool driver_exec_llvm(Diag *d, IrModel *m, const DriverOptions *o, const IrTensor *inputs, IrTensor *outputs)
{
    (void)m, (void)o, (void)inputs, (void)outputs;
    return unavailable(d, "--exec=llvm");
}

#else

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static CgTarget target_of(const DriverOptions *o)
{
    return (CgTarget){.triple = o->mtriple, .cpu = o->mcpu, .features = o->mattr, .opt = o->opt};
}

bool driver_emit_llvm(Diag *d, IrModel *m, const DriverOptions *o, const char *name)
{
    bool assembly = strcmp(o->emit, "llvm") == 0;
    const char *ext = assembly ? ".ll" : ".o";
    /* -o names the file when it ends in the extension (its folder gets the header and the
     * weights), else the folder (default .) that gets all three. */
    char dir[4096], path[4200];
    if (o->output && has_suffix(o->output, ext)) {
        snprintf(path, sizeof path, "%s", o->output);
        snprintf(dir, sizeof dir, "%s", o->output);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else snprintf(dir, sizeof dir, ".");
    } else {
        snprintf(dir, sizeof dir, "%s", o->output ? o->output : ".");
        snprintf(path, sizeof path, "%s/%s%s", dir, name, ext);
    }
    if (!driver_mkdir_p(d, dir)) return false;
    const char *slash = strrchr(o->model, '/');
    CgOptions co = {.name = name, .out_dir = dir, .source = slash ? slash + 1 : o->model};
    CgTarget t = target_of(o);
    if (!cg_emit_llvm(m, &co, &t, assembly, path)) return false;
    const char *inc, *lib;
    driver_runtime_paths(&inc, &lib);
    printf("bqc: wrote %s, %s/%s.h, %s/%s.weights\n", path, dir, name, dir, name);
    if (!assembly)
        printf("build: cc -std=c11 -O2 -I%s -I%s app.c %s %s -lpthread -lm\n", inc, dir, path, lib);
    return true;
}

typedef bq_status (*OpenFn)(void **m, const char *weights, const void *cfg);
typedef bq_status (*RunFn)(void *m, const bq_tensor *in, bq_tensor *out);
typedef void (*CloseFn)(void *m);
typedef struct { int64_t max_ctx, max_batch; int n_threads; void *state; } Config;   /* <name>_config */

static bool call_run(Diag *d, void *model, RunFn run, const IrGraph *g, const IrTensor *inputs, IrTensor *outputs)
{
    bq_tensor *in = calloc(g->ninputs + 1, sizeof *in), *out = calloc(g->noutputs + 1, sizeof *out);
    if (!in || !out) unreachable("out of memory");
    for (uint32_t k = 0; k < g->ninputs; k++) {
        const IrTensor *t = &inputs[k];
        in[k] = (bq_tensor){.data = t->data, .bytes = t->nbytes, .dtype = ir_dtype_onnx(t->dtype), .rank = t->rank};
        memcpy(in[k].dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    }
    /* The first call fills in the output shapes (BQ_ERR_CAPACITY: no memory given yet). */
    bq_status s = run(model, in, out);
    bool ok = s == BQ_OK || s == BQ_ERR_CAPACITY;
    for (uint32_t k = 0; ok && s == BQ_ERR_CAPACITY && k < g->noutputs; k++) {
        IrDType dt = ir_dtype_from_onnx(out[k].dtype);
        ok = dt != DT_UNDEF && ir_tensor_alloc(&outputs[k], dt, out[k].rank, out[k].dims);
        out[k].data = outputs[k].data;
        out[k].bytes = outputs[k].nbytes;
    }
    if (ok && s == BQ_ERR_CAPACITY) s = run(model, in, out);
    free(in);
    free(out);
    if (!ok || s != BQ_OK) return diag_error(d, NULL, "--exec=llvm: model_run: %s", bq_status_str(s));
    return true;
}

bool driver_exec_llvm(Diag *d, IrModel *m, const DriverOptions *o, const IrTensor *inputs, IrTensor *outputs)
{
    const char *base = getenv("TMPDIR");
    char tmp[256], path[512];
    if (!base || !*base || strlen(base) > 200) base = "/tmp";
    snprintf(tmp, sizeof tmp, "%s/bqc-jit-XXXXXX", base);
    if (!mkdtemp(tmp)) return diag_error(d, NULL, "cannot create a temporary directory: %s", strerror(errno));
    const char *slash = strrchr(o->model, '/');
    CgOptions co = {.name = "model", .out_dir = tmp, .source = slash ? slash + 1 : o->model};
    const IrGraph *g = m->graph;
    CgJit *j = cg_jit_create(m, &co, o->opt);
    OpenFn open_ = j ? (OpenFn)cg_jit_lookup(j, d, "model_open") : NULL;
    RunFn run = j ? (RunFn)cg_jit_lookup(j, d, "model_run") : NULL;
    CloseFn close_ = j ? (CloseFn)cg_jit_lookup(j, d, "model_close") : NULL;
    bool ok = open_ && run && close_;
    /* Sized like --exec=c's driver: the largest first extent is the batch, the largest other
     * extent the context. */
    Config cfg = {1, 1, o->threads, NULL};
    for (uint32_t k = 0; k < g->ninputs; k++)
        for (int i = 0; i < inputs[k].rank; i++) {
            int64_t *c = i == 0 ? &cfg.max_batch : &cfg.max_ctx;
            if (inputs[k].dims[i] > *c) *c = inputs[k].dims[i];
        }
    void *model = NULL;
    snprintf(path, sizeof path, "%s/model.weights", tmp);
    if (ok) {
        bq_status s = open_(&model, path, &cfg);
        ok = s == BQ_OK || diag_error(d, NULL, "--exec=llvm: model_open: %s", bq_status_str(s));
    }
    ok = ok && call_run(d, model, run, g, inputs, outputs);
    if (model) close_(model);
    cg_jit_destroy(j);
    if (getenv("BQC_KEEP_TMP")) {
        fprintf(stderr, "bqc: kept %s\n", tmp);
    } else {
        unlink(path);
        rmdir(tmp);
    }
    return ok;
}

#endif
