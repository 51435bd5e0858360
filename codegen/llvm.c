/* llvm.c — the LLVM backend: object code (--emit=obj), LLVM assembly (--emit=llvm) and an
 * in-process JIT (bqc run --exec=llvm) for the same graphs, weights and API as the C backend.
 *
 * The model is planned by the code the C backend uses (cg_begin: decoder copy, storage,
 * buffer regions, weights), so the weights file and <name>.h are the C backend's: an
 * application built against the C backend's header links against this object. The module is
 * the runtime's bitcode (embedded in bqc at build time; no C compiler runs when a model is
 * compiled) plus the graph functions (llvm_ops.c) and the API as IR: thin functions passing a
 * constant bq_gm_desc to gmodel.c's table-driven open/prefill/decode, and <name>_run, whose
 * argument checks depend on the model's dimensions. Then default<O2> (or -O) through
 * LLVMRunPasses inlines the always-inline helpers and folds their constants.
 *
 * Two choices are not obvious. The target machine always gets LLVMGetHostCPUFeatures() for
 * the host, never the CPU name alone, because this machine's hypervisor hides features its CPU
 * model implies; and nothing sets fast-math flags or builds fmuladd, so no multiply-add is
 * contracted and every result is the interpreter's bits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/BitReader.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Linker.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "bqcrt_ops.h"
#include "llvm_int.h"

/* The runtime's bitcode (CMake: clang -emit-llvm over runtime/ops.c, gmodel.c, ops_qk.c). */
extern const unsigned char bqc_runtime_bc[];
extern const size_t bqc_runtime_bc_size;

/* ---- target machine ---- */

static void init_x86(void)
{
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmPrinter();
}

/* LLVM reports an unknown -mcpu or -mattr entry on stderr and carries on; a compiler should
 * refuse it, so the target machine is created with stderr captured and the text examined. */
static int capture_stderr_begin(FILE **tmp)
{
    fflush(stderr);
    *tmp = tmpfile();
    int saved = *tmp ? dup(2) : -1;
    if (saved >= 0) dup2(fileno(*tmp), 2);
    return saved;
}

static char *capture_stderr_end(int saved, FILE *tmp)
{
    if (saved < 0) return NULL;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    long n = fseek(tmp, 0, SEEK_END) == 0 ? ftell(tmp) : 0;
    char *s = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (s && n > 0) {
        rewind(tmp);
        if (fread(s, 1, (size_t)n, tmp) != (size_t)n) s[0] = 0;
    }
    fclose(tmp);
    return s;
}

typedef struct Target {
    LLVMTargetMachineRef tm;
    char *triple;
} Target;

static bool make_target(Diag *d, const CgTarget *t, Target *out)
{
    init_x86();
    char *host = LLVMGetDefaultTargetTriple();
    char *triple = t && t->triple ? LLVMNormalizeTargetTriple(t->triple) : LLVMNormalizeTargetTriple(host);
    bool is_host = strcmp(triple, host) == 0 || (!t || !t->triple);
    LLVMDisposeMessage(host);
    if (strncmp(triple, "x86_64-", 7) != 0) {
        diag_error(d, NULL, "-mtriple '%s': the LLVM backend's runtime bitcode is built for x86_64; use an x86_64 triple",
                   t->triple);
        LLVMDisposeMessage(triple);
        return false;
    }
    char *err = NULL;
    LLVMTargetRef target;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        diag_error(d, NULL, "-mtriple '%s': %s", t && t->triple ? t->triple : triple, err ? err : "unknown target");
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        return false;
    }
    /* The host: its CPU name and always its feature list. Otherwise -mcpu (default the
     * generic x86-64), plus -mattr in both cases. */
    bool native = !t || !t->cpu || strcmp(t->cpu, "native") == 0;
    char *cpu = native && is_host ? LLVMGetHostCPUName() : NULL;
    char *hostf = native && is_host ? LLVMGetHostCPUFeatures() : NULL;
    const char *cpu_name = cpu ? cpu : t && t->cpu && strcmp(t->cpu, "native") != 0 ? t->cpu : "x86-64";
    size_t flen = (hostf ? strlen(hostf) : 0) + (t && t->features ? strlen(t->features) : 0) + 2;
    char *features = calloc(1, flen);
    if (!features) unreachable("out of memory");
    snprintf(features, flen, "%s%s%s", hostf ? hostf : "", hostf && t && t->features && *t->features ? "," : "",
             t && t->features ? t->features : "");
    FILE *tmp;
    int saved = capture_stderr_begin(&tmp);
    out->tm = LLVMCreateTargetMachine(target, triple, cpu_name, features, LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                      LLVMCodeModelDefault);
    char *said = capture_stderr_end(saved, tmp);
    bool ok = out->tm != NULL;
    if (!ok) diag_error(d, NULL, "cannot create a target machine for '%s' (-mcpu '%s')", triple, cpu_name);
    else if (said && strstr(said, "not a recognized processor"))
        ok = diag_error(d, NULL, "-mcpu '%s' is not a processor LLVM knows for %s", cpu_name, triple);
    else if (said && strstr(said, "not a recognized feature"))
        ok = diag_error(d, NULL, "-mattr '%s': %s", t && t->features ? t->features : "", strtok(said, "\n"));
    else if (said && *said) fputs(said, stderr);
    free(said);
    free(features);
    if (cpu) LLVMDisposeMessage(cpu);
    if (hostf) LLVMDisposeMessage(hostf);
    if (!ok) {
        if (out->tm) LLVMDisposeTargetMachine(out->tm);
        LLVMDisposeMessage(triple);
        out->tm = NULL;
        return false;
    }
    out->triple = triple;
    return true;
}

static void free_target(Target *t)
{
    if (t->tm) LLVMDisposeTargetMachine(t->tm);
    if (t->triple) LLVMDisposeMessage(t->triple);
    memset(t, 0, sizeof *t);
}

/* Does the target machine have what the AVX-512 kernels need? */
static bool has_avx512_vnni(LLVMTargetMachineRef tm)
{
    char *f = LLVMGetTargetMachineFeatureString(tm);
    bool on = f && strstr(f, "+avx512f") && strstr(f, "+avx512bw") && strstr(f, "+avx512vl") && strstr(f, "+avx512vnni");
    LLVMDisposeMessage(f);
    return on;
}

/* ---- the module ---- */

static void add_fn_attr(Lv *lv, LLVMValueRef f, const char *kind)
{
    unsigned k = LLVMGetEnumAttributeKindForName(kind, strlen(kind));
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(lv->ctx, k, 0));
}

/* Everything the runtime bitcode defines becomes internal and always-inline (so call sites
 * are specialised and unused helpers disappear), and takes the target machine's CPU instead
 * of the generic one clang compiled it for — except the AVX-512 kernel templates, which keep
 * their own feature set as their C source asks. */
static void adopt_runtime(Lv *lv)
{
    for (LLVMValueRef f = LLVMGetFirstFunction(lv->mod); f; f = LLVMGetNextFunction(f)) {
        if (LLVMIsDeclaration(f)) continue;
        LLVMSetLinkage(f, LLVMInternalLinkage);
        add_fn_attr(lv, f, "alwaysinline");
        LLVMRemoveStringAttributeAtIndex(f, LLVMAttributeFunctionIndex, "target-cpu", 10);
        LLVMRemoveStringAttributeAtIndex(f, LLVMAttributeFunctionIndex, "tune-cpu", 8);
        LLVMAttributeRef fa = LLVMGetStringAttributeAtIndex(f, LLVMAttributeFunctionIndex, "target-features", 15);
        unsigned len = 0;
        const char *fs = fa ? LLVMGetStringAttributeValue(fa, &len) : NULL;
        if (fa && !(fs && len && strstr(fs, "+avx512f")))
            LLVMRemoveStringAttributeAtIndex(f, LLVMAttributeFunctionIndex, "target-features", 15);
    }
    for (LLVMValueRef g = LLVMGetFirstGlobal(lv->mod); g; g = LLVMGetNextGlobal(g))
        if (!LLVMIsDeclaration(g)) LLVMSetLinkage(g, LLVMInternalLinkage);
}

static bool lv_init(Lv *lv, Cg *cg, LLVMContextRef ctx, const Target *t)
{
    memset(lv, 0, sizeof *lv);
    lv->cg = cg;
    lv->ctx = ctx;
    lv->i8 = LLVMInt8TypeInContext(ctx);
    lv->i16 = LLVMInt16TypeInContext(ctx);
    lv->i32 = LLVMInt32TypeInContext(ctx);
    lv->i64 = LLVMInt64TypeInContext(ctx);
    lv->f32 = LLVMFloatTypeInContext(ctx);
    lv->f64 = LLVMDoubleTypeInContext(ctx);
    lv->ptr = LLVMPointerTypeInContext(ctx, 0);
    lv->vd = LLVMVoidTypeInContext(ctx);
    lv->avx512 = has_avx512_vnni(t->tm);
    LLVMMemoryBufferRef buf = LLVMCreateMemoryBufferWithMemoryRange((const char *)bqc_runtime_bc, bqc_runtime_bc_size,
                                                                    "bqcrt.bc", 0);
    LLVMModuleRef rt = NULL;
    bool bad = LLVMParseBitcodeInContext2(ctx, buf, &rt);
    LLVMDisposeMemoryBuffer(buf);
    if (bad) unreachable("the embedded runtime bitcode does not parse");
    lv->mod = LLVMModuleCreateWithNameInContext(cg->o->name, ctx);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(t->tm);
    char *layout = LLVMCopyStringRepOfTargetData(td);
    LLVMSetDataLayout(lv->mod, layout);
    LLVMSetDataLayout(rt, layout);
    LLVMSetTarget(lv->mod, t->triple);
    LLVMSetTarget(rt, t->triple);
    LLVMDisposeMessage(layout);
    LLVMDisposeTargetData(td);
    char src[4200];
    snprintf(src, sizeof src, "generated by bqc %s from %s", CG_BQC_VERSION, cg->o->source);
    LLVMSetSourceFileName(lv->mod, src, strlen(src));
    if (LLVMLinkModules2(lv->mod, rt)) unreachable("linking the runtime bitcode failed");
    adopt_runtime(lv);
    lv->b = LLVMCreateBuilderInContext(ctx);
    return true;
}

/* ---- the descriptor and the API ---- */

static LLVMValueRef i64_array(Lv *lv, const int64_t *v, unsigned n, const char *name)
{
    LLVMValueRef e[IR_MAX_SYMS + CG_MAX_REGIONS + 1];
    for (unsigned i = 0; i < n; i++) e[i] = lv_i64(lv, v[i]);
    if (n == 0) e[n++] = lv_i64(lv, 0);
    return lv_global(lv, LLVMConstArray2(lv->i64, e, n), name);
}

/* bq_gm_graph for one planned graph (or the empty one). */
static LLVMValueRef graph_desc(Lv *lv, CgGraph *g, LLVMValueRef fn)
{
    LLVMValueRef f[6];
    if (!fn) {
        for (int i = 0; i < 6; i++) f[i] = i == 2 || i == 4 ? lv_i64(lv, 0) : LLVMConstNull(lv->ptr);
        return LLVMConstStructInContext(lv->ctx, f, 6, 0);
    }
    const IrModel *m = g->m;
    int64_t units[CG_MAX_REGIONS], batch[IR_MAX_SYMS];
    for (int r = 0; r < g->nregions; r++) units[r] = g->regions[r].units;
    /* A symbol that is some input's first extent is a batch size; the rest are lengths. */
    for (uint32_t s = 0; s < m->dims.nsyms; s++) {
        batch[s] = 0;
        for (uint32_t k = 0; k < g->g->ninputs; k++) {
            const IrType *t = &g->g->vals[g->g->inputs[k]].type;
            batch[s] |= t->rank > 0 && cg_plain_symbol(m, t->dims[0]) == (int)s;
        }
    }
    f[0] = fn;
    f[1] = lv_emit_units(lv, g);
    f[2] = lv_i64(lv, g->nregions);
    f[3] = i64_array(lv, units, (unsigned)g->nregions, "region_units");
    f[4] = lv_i64(lv, m->dims.nsyms);
    f[5] = i64_array(lv, batch, m->dims.nsyms, "sym_batch");
    return LLVMConstStructInContext(lv->ctx, f, 6, 0);
}

/* The decoder's symbols: which are n and n_past, and which input is the mask. */
static bool decoder_symbols(Cg *cg, int64_t *seq, int64_t *past, int64_t *mask)
{
    const IrModel *m = cg->step_model;
    const IrGraph *g = m->graph;
    *seq = cg_plain_symbol(m, g->vals[g->inputs[0]].type.dims[1]);
    *past = *mask = -1;
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == OP_ATTENTION && *past < 0) {
            *past = cg_plain_symbol(m, g->vals[g->nodes[i].in[4]].type.dims[2]);
            for (uint32_t k = 0; k < g->ninputs; k++)
                if (g->inputs[k] == g->nodes[i].in[3]) *mask = (int)k;
        }
    if (*seq < 0 || *past < 0 || *mask < 0)
        return diag_error(cg->m->diag, cg->m->path, "decoder API: cannot find the sequence and past lengths");
    return true;
}

static LLVMValueRef emit_desc(Lv *lv, LLVMValueRef run, LLVMValueRef step)
{
    Cg *cg = lv->cg;
    int64_t seq = 0, past = 0, mask = 0;
    if (cg->decoder && !decoder_symbols(cg, &seq, &past, &mask)) return NULL;
    /* The decoder's per-layer formats, from which gmodel.c sizes each layer's qcache. */
    LLVMValueRef lf = LLVMConstNull(lv->ptr);
    if (cg->decoder && cg->step.nlayers > 0) {
        LLVMValueRef *e = calloc(cg->step.nlayers, sizeof *e);
        if (!e) unreachable("out of memory");
        for (uint32_t i = 0; i < cg->step.nlayers; i++) e[i] = lv_attn_formats(lv, &cg->step.layer_fmt[i]);
        lf = lv_global(lv, LLVMConstArray2(LLVMTypeOf(e[0]), e, cg->step.nlayers), "layer_fmt");
        free(e);
    }
    LLVMValueRef f[16] = {
        LLVMConstInt(lv->i64, cg->hash, 0), LLVMConstInt(lv->i64, cg->w.total, 0), graph_desc(lv, &cg->run, run),
        graph_desc(lv, &cg->step, step), lv_i64(lv, cg->decoder ? 2 * cg->step.nlayers : 0),
        lv_i64(lv, cg->decoder ? cg->step.heads : 0), lv_i64(lv, cg->decoder ? cg->step.head_dim : 0),
        lv_i64(lv, cg->attn_width), lv_i64(lv, cg->head_dim ? cg->head_dim : 1), lv_i64(lv, cg->vocab), lv_i64(lv, seq),
        lv_i64(lv, past), lv_i64(lv, mask),
        lv_i64(lv, cg->decoder ? cg->step_model->graph->ninputs : 0),
        lv_i64(lv, cg->decoder ? cg->step_model->graph->noutputs : 0), lf};
    return lv_global(lv, LLVMConstStructInContext(lv->ctx, f, 16, 0), "desc");
}

static LLVMValueRef api_fn(Lv *lv, const char *suffix, LLVMTypeRef ret, LLVMTypeRef *p, unsigned n)
{
    char name[256];
    snprintf(name, sizeof name, "%s_%s", lv->cg->o->name, suffix);
    return lv_function(lv, name, ret, p, n, true);
}

/* <name>_open/_close/_state_bytes and the decoder API: calls into gmodel.c with the descriptor. */
static void emit_thin_api(Lv *lv, LLVMValueRef desc)
{
    LLVMTypeRef P = lv->ptr;
    LLVMTypeRef p3[3] = {P, P, P}, p4[4] = {P, P, lv->i64, P}, pd[3] = {P, lv->i32, P};
    LLVMValueRef f = api_fn(lv, "state_bytes", lv->i64, p3, 1);
    LLVMValueRef a[5] = {desc, LLVMGetParam(f, 0)};
    LLVMBuildRet(lv->b, lv_call(lv, "bq_gm_state_bytes", a, 2));
    f = api_fn(lv, "open", lv->i32, p3, 3);
    a[1] = LLVMGetParam(f, 0), a[2] = LLVMGetParam(f, 1), a[3] = LLVMGetParam(f, 2);
    LLVMBuildRet(lv->b, lv_call(lv, "bq_gm_open", a, 4));
    f = api_fn(lv, "close", lv->vd, p3, 1);
    a[0] = LLVMGetParam(f, 0);
    lv_call(lv, "bq_gm_close", a, 1);
    LLVMBuildRetVoid(lv->b);
    if (!lv->cg->decoder) return;
    f = api_fn(lv, "prefill", lv->i32, p4, 4);
    a[0] = desc;
    for (int i = 0; i < 4; i++) a[1 + i] = LLVMGetParam(f, (unsigned)i);
    LLVMBuildRet(lv->b, lv_call(lv, "bq_gm_prefill", a, 5));
    f = api_fn(lv, "decode", lv->i32, pd, 3);
    for (int i = 0; i < 3; i++) a[1 + i] = LLVMGetParam(f, (unsigned)i);
    LLVMBuildRet(lv->b, lv_call(lv, "bq_gm_decode", a, 4));
    f = api_fn(lv, "reset", lv->vd, p3, 1);
    a[0] = LLVMGetParam(f, 0);
    lv_call(lv, "bq_gm_reset", a, 1);
    LLVMBuildRetVoid(lv->b);
    f = api_fn(lv, "n_past", lv->i64, p3, 1);
    a[0] = LLVMGetParam(f, 0);
    LLVMBuildRet(lv->b, lv_call(lv, "bq_gm_n_past", a, 1));
}

static void emit_names(Lv *lv)
{
    const IrGraph *g = lv->cg->m->graph;
    for (int io = 0; io < 2; io++) {
        uint32_t n = io ? g->noutputs : g->ninputs;
        LLVMValueRef *e = calloc(n + 1, sizeof *e);
        if (!e) unreachable("out of memory");
        for (uint32_t k = 0; k < n; k++) {
            const char *s = g->vals[io ? g->outputs[k] : g->inputs[k]].name;
            e[k] = lv_global(lv, LLVMConstStringInContext2(lv->ctx, s, strlen(s), 0), "name");
        }
        char name[256];
        snprintf(name, sizeof name, "%s_%s_names", lv->cg->o->name, io ? "output" : "input");
        LLVMValueRef arr = LLVMConstArray2(lv->ptr, e, n);
        LLVMValueRef gv = LLVMAddGlobal(lv->mod, LLVMTypeOf(arr), name);
        LLVMSetInitializer(gv, arr);
        LLVMSetGlobalConstant(gv, 1);
        free(e);
    }
}

/* bq_tensor fields (bqcrt.h): data, bytes, dtype, rank, dims[8]. */
enum { T_DATA = 0, T_BYTES = 8, T_DTYPE = 16, T_RANK = 20, T_DIMS = 24, T_SIZE = 88 };

static LLVMValueRef field(Lv *lv, LLVMValueRef base, uint32_t k, int64_t off)
{
    LLVMValueRef ix = lv_i64(lv, (int64_t)k * T_SIZE + off);
    return LLVMBuildGEP2(lv->b, lv->i8, base, &ix, 1, "");
}

static LLVMValueRef load_at(Lv *lv, LLVMTypeRef t, LLVMValueRef base, uint32_t k, int64_t off)
{
    return LLVMBuildLoad2(lv->b, t, field(lv, base, k, off), "");
}

/* <name>_run: check inputs, bind symbols from their extents, size the outputs, run (cg_api.c's
 * emit_run). */
static bool emit_run(Lv *lv, LLVMValueRef graph)
{
    Cg *cg = lv->cg;
    const IrModel *m = cg->m;
    const IrGraph *g = m->graph;
    uint32_t ns = m->dims.nsyms ? m->dims.nsyms : 1;
    bool bound[IR_MAX_SYMS] = {0};
    for (uint32_t k = 0; k < g->ninputs; k++) {
        const IrType *t = &g->vals[g->inputs[k]].type;
        for (int d = 0; d < t->rank; d++)
            if (cg_plain_symbol(m, t->dims[d]) >= 0) bound[cg_plain_symbol(m, t->dims[d])] = true;
    }
    for (uint32_t v = 0; v < g->nvals; v++) {
        if (cg->run.vals[v].kind != SK_BUFFER && cg->run.vals[v].kind != SK_OUTPUT) continue;
        for (int d = 0; d < g->vals[v].type.rank; d++) {
            IrDimPoly poly;
            if (IR_DIM_IS_CONST(g->vals[v].type.dims[d]) || !ir_dim_poly(m, g->vals[v].type.dims[d], &poly)) continue;
            for (int t = 0; t < poly.nterms; t++)
                for (int s = 0; s < IR_MAX_SYMS; s++)
                    if (poly.t[t].exp[s] && !bound[s])
                        return diag_error(m->diag, m->path, "LLVM backend: dimension '%s' is not an extent of any input",
                                          m->dims.sym[s]);
        }
    }
    LLVMTypeRef P = lv->ptr, p3[3] = {P, P, P};
    LLVMValueRef f = api_fn(lv, "run", lv->i32, p3, 3);
    LLVMValueRef mm = LLVMGetParam(f, 0), ins = LLVMGetParam(f, 1), outs = LLVMGetParam(f, 2);
    LLVMValueRef arg = lv_i32(lv, BQ_ERR_ARG), cap = lv_i32(lv, BQ_ERR_CAPACITY);
    LLVMValueRef any_null = LLVMBuildOr(lv->b, LLVMBuildOr(lv->b, LLVMBuildIsNull(lv->b, mm, ""), LLVMBuildIsNull(lv->b, ins, ""), ""),
                                        LLVMBuildIsNull(lv->b, outs, ""), "");
    lv_return_if(lv, any_null, arg);
    LLVMTypeRef symt = LLVMArrayType(lv->i64, ns);
    LLVMValueRef symp = LLVMBuildAlloca(lv->b, symt, "sym");
    LLVMValueRef sp[IR_MAX_SYMS];
    for (uint32_t s = 0; s < ns; s++) {
        LLVMValueRef ix[2] = {lv_i64(lv, 0), lv_i64(lv, s)};
        sp[s] = LLVMBuildGEP2(lv->b, symt, symp, ix, 2, "");
        LLVMBuildStore(lv->b, lv_i64(lv, -1), sp[s]);
    }
    for (uint32_t k = 0; k < g->ninputs; k++) {
        const IrType *t = &g->vals[g->inputs[k]].type;
        lv_return_if(lv, LLVMBuildIsNull(lv->b, load_at(lv, P, ins, k, T_DATA), ""), arg);
        lv_return_if(lv, LLVMBuildICmp(lv->b, LLVMIntNE, load_at(lv, lv->i32, ins, k, T_DTYPE), lv_i32(lv, ir_dtype_onnx(t->dtype)), ""), arg);
        lv_return_if(lv, LLVMBuildICmp(lv->b, LLVMIntNE, load_at(lv, lv->i32, ins, k, T_RANK), lv_i32(lv, t->rank), ""), arg);
        for (int d = 0; d < t->rank; d++) {
            LLVMValueRef x = load_at(lv, lv->i64, ins, k, T_DIMS + 8 * d);
            lv_return_if(lv, LLVMBuildICmp(lv->b, LLVMIntSLT, x, lv_i64(lv, 0), ""), arg);
            int s = cg_plain_symbol(m, t->dims[d]);
            if (s < 0) continue;
            LLVMValueRef cur = LLVMBuildLoad2(lv->b, lv->i64, sp[s], "");
            LLVMBuildStore(lv->b, LLVMBuildSelect(lv->b, LLVMBuildICmp(lv->b, LLVMIntSLT, cur, lv_i64(lv, 0), ""), x, cur, ""), sp[s]);
        }
    }
    LLVMValueRef sym[IR_MAX_SYMS];
    for (uint32_t s = 0; s < m->dims.nsyms; s++) sym[s] = LLVMBuildLoad2(lv->b, lv->i64, sp[s], m->dims.sym[s]);
    for (uint32_t k = 0; k < g->ninputs; k++) {
        const IrType *t = &g->vals[g->inputs[k]].type;
        for (int d = 0; d < t->rank; d++) {
            LLVMValueRef want = lv_dim(lv, m, t->dims[d], sym);
            lv_return_if(lv, LLVMBuildICmp(lv->b, LLVMIntNE, load_at(lv, lv->i64, ins, k, T_DIMS + 8 * d), want, ""), arg);
        }
    }
    LLVMTypeRef int_t = LLVMArrayType(P, g->ninputs ? g->ninputs : 1), outt = LLVMArrayType(P, g->noutputs ? g->noutputs : 1);
    LLVMValueRef inp = LLVMBuildAlloca(lv->b, int_t, "in"), outp = LLVMBuildAlloca(lv->b, outt, "out");
    for (uint32_t k = 0; k < g->ninputs; k++) {
        LLVMValueRef ix[2] = {lv_i64(lv, 0), lv_i64(lv, k)};
        LLVMBuildStore(lv->b, load_at(lv, P, ins, k, T_DATA), LLVMBuildGEP2(lv->b, int_t, inp, ix, 2, ""));
    }
    /* Shapes first, for every output: a caller may learn them from a call that fails with
     * BQ_ERR_CAPACITY, then allocate. */
    for (uint32_t k = 0; k < g->noutputs; k++) {
        const IrType *t = &g->vals[g->outputs[k]].type;
        LLVMBuildStore(lv->b, lv_i32(lv, ir_dtype_onnx(t->dtype)), field(lv, outs, k, T_DTYPE));
        LLVMBuildStore(lv->b, lv_i32(lv, t->rank), field(lv, outs, k, T_RANK));
        for (int d = 0; d < t->rank; d++) LLVMBuildStore(lv->b, lv_dim(lv, m, t->dims[d], sym), field(lv, outs, k, T_DIMS + 8 * d));
    }
    for (uint32_t k = 0; k < g->noutputs; k++) {
        const IrType *t = &g->vals[g->outputs[k]].type;
        LLVMValueRef n = lv_i64(lv, (int64_t)ir_dtype_size(t->dtype));
        for (int d = 0; d < t->rank; d++) n = LLVMBuildMul(lv->b, n, lv_dim(lv, m, t->dims[d], sym), "");
        LLVMValueRef data = load_at(lv, P, outs, k, T_DATA);
        lv_return_if(lv, LLVMBuildIsNull(lv->b, data, ""), cap);
        lv_return_if(lv, LLVMBuildICmp(lv->b, LLVMIntULT, load_at(lv, lv->i64, outs, k, T_BYTES), n, ""), cap);
        LLVMValueRef ix[2] = {lv_i64(lv, 0), lv_i64(lv, k)};
        LLVMBuildStore(lv->b, data, LLVMBuildGEP2(lv->b, outt, outp, ix, 2, ""));
    }
    LLVMValueRef a[4] = {mm, symp, inp, outp};
    LLVMBuildRet(lv->b, LLVMBuildCall2(lv->b, LLVMGlobalGetValueType(graph), graph, a, 4, ""));
    return true;
}

/* ---- building, optimising, writing ---- */

/* The whole module for a planned model: graph functions, the weights file (its hash goes into
 * the descriptor), the descriptor and the API. */
static bool build_module(Lv *lv, const char *weights_path)
{
    Cg *cg = lv->cg;
    LLVMValueRef run = lv_emit_graph(lv, &cg->run, 0);
    LLVMValueRef step = run && cg->decoder ? lv_emit_graph(lv, &cg->step, 1) : NULL;
    if (!run || (cg->decoder && !step)) return false;
    if (!cg_write_weights(cg, weights_path)) return false;
    LLVMValueRef desc = emit_desc(lv, run, step);
    if (!desc) return false;
    emit_thin_api(lv, desc);
    emit_names(lv);
    return emit_run(lv, run);
}

static bool optimise(Lv *lv, const Target *t, int opt)
{
    char *msg = NULL;
    if (LLVMVerifyModule(lv->mod, LLVMReturnStatusAction, &msg)) {
        fprintf(stderr, "%s\n", msg);
        unreachable("the LLVM backend built an invalid module");
    }
    LLVMDisposeMessage(msg);
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", opt < 0 ? 2 : opt > 3 ? 3 : opt);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(lv->mod, pipeline, t->tm, po);
    LLVMDisposePassBuilderOptions(po);
    if (e) {
        char *s = LLVMGetErrorMessage(e);
        diag_error(lv->cg->m->diag, NULL, "LLVM passes '%s': %s", pipeline, s);
        LLVMDisposeErrorMessage(s);
        return false;
    }
    return true;
}

/* What the object writer and the JIT share: cg_begin, the module (its weights blob written
 * beside it), optimised at `opt`. The caller disposes what lv holds and calls cg_end either way. */
static bool build_optimised(IrModel *m, const CgOptions *o, Target *tg, LLVMContextRef ctx, int opt, Cg *cg, Lv *lv)
{
    bool ok = cg_begin(cg, m, o);
    char wpath[4096];
    snprintf(wpath, sizeof wpath, "%s/%s.weights", o->out_dir, o->name);
    return ok && lv_init(lv, cg, ctx, tg) && build_module(lv, wpath) && optimise(lv, tg, opt);
}

bool cg_emit_llvm(IrModel *m, const CgOptions *o, const CgTarget *t, bool assembly, const char *path)
{
    Target tg = {0};
    if (!make_target(m->diag, t, &tg)) return false;
    Cg cg;
    LLVMContextRef ctx = LLVMContextCreate();
    Lv lv = {0};
    bool ok = build_optimised(m, o, &tg, ctx, t ? t->opt : 2, &cg, &lv);
    if (ok) {
        char *err = NULL;
        if (assembly ? LLVMPrintModuleToFile(lv.mod, path, &err)
                     : LLVMTargetMachineEmitToFile(tg.tm, lv.mod, path, LLVMObjectFile, &err))
            ok = diag_error(m->diag, NULL, "cannot write '%s': %s", path, err ? err : "LLVM failed");
        LLVMDisposeMessage(err);
    }
    if (ok) {
        Out h = {0};
        char hpath[4096];
        cg_emit_header(&cg, &h);
        snprintf(hpath, sizeof hpath, "%s/%s.h", o->out_dir, o->name);
        ok = out_write_file(m->diag, &h, hpath);
        out_free(&h);
    }
    if (lv.b) LLVMDisposeBuilder(lv.b);
    if (lv.mod) LLVMDisposeModule(lv.mod);
    LLVMContextDispose(ctx);
    cg_end(&cg);
    free_target(&tg);
    return ok;
}

/* ---- JIT ---- */

struct CgJit {
    LLVMOrcLLJITRef jit;
};

static bool jit_error(Diag *d, LLVMErrorRef e, const char *what)
{
    char *s = LLVMGetErrorMessage(e);
    diag_error(d, NULL, "LLVM JIT: %s: %s", what, s);
    LLVMDisposeErrorMessage(s);
    return false;
}

CgJit *cg_jit_create(IrModel *m, const CgOptions *o, int opt)
{
    Target tg = {0};
    if (!make_target(m->diag, NULL, &tg)) return NULL;
    Cg cg;
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    Lv lv = {0};
    bool ok = build_optimised(m, o, &tg, LLVMOrcThreadSafeContextGetContext(tsc), opt, &cg, &lv);
    if (lv.b) LLVMDisposeBuilder(lv.b);
    cg_end(&cg);
    free_target(&tg);
    CgJit *j = ok ? calloc(1, sizeof *j) : NULL;
    LLVMErrorRef e = NULL;
    if (j) {
        /* The default builder targets the host as LLVM detects it: CPU name and features. */
        e = LLVMOrcCreateLLJIT(&j->jit, NULL);
        ok = !e || jit_error(m->diag, e, "creating the JIT");
    }
    if (j && ok) {
        LLVMOrcDefinitionGeneratorRef gen;
        e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->jit), NULL, NULL);
        ok = !e || jit_error(m->diag, e, "resolving symbols in bqc");
        if (ok) LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(j->jit), gen);
    }
    if (j && ok) {
        LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(lv.mod, tsc);
        lv.mod = NULL;   /* owned by tsm, then by the JIT */
        e = LLVMOrcLLJITAddLLVMIRModule(j->jit, LLVMOrcLLJITGetMainJITDylib(j->jit), tsm);
        if (e) LLVMOrcDisposeThreadSafeModule(tsm);
        ok = !e || jit_error(m->diag, e, "adding the module");
    }
    if (lv.mod) LLVMDisposeModule(lv.mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    if (!ok) {
        cg_jit_destroy(j);
        return NULL;
    }
    return j;
}

void *cg_jit_lookup(CgJit *j, Diag *d, const char *name)
{
    LLVMOrcExecutorAddress addr = 0;
    LLVMErrorRef e = LLVMOrcLLJITLookup(j->jit, &addr, name);
    if (e) return jit_error(d, e, name), NULL;
    return (void *)(uintptr_t)addr;
}

void cg_jit_destroy(CgJit *j)
{
    if (!j) return;
    if (j->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
        if (e) LLVMConsumeError(e);
    }
    free(j);
}
