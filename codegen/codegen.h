/* codegen.h — bqc's code generators. The C backend turns an optimised graph into
 * <name>.h (the API, sizes as macros), <name>.c (straight-line calls into libbqcrt with
 * shapes as C expressions of the symbolic dimensions) and <name>.weights (one mmappable blob,
 * weights pre-packed for the kernels).
 *
 * What an application sees is documented in the generated header and in the README:
 * <name>_open/_close/_run for any graph, plus <name>_prefill/_decode/_reset with a KV cache
 * for decoder graphs.
 */
#ifndef BQC_CODEGEN_H
#define BQC_CODEGEN_H

#include "../ir/ir.h"

typedef struct CgOptions {
    const char *name;          /* prefix of every generated symbol and of the file names */
    const char *out_dir;       /* where <name>.h, <name>.c, <name>.weights go */
    const char *source;        /* what the code was generated from (the first line says so) */
} CgOptions;

/* Generates the C backend's three files for m (after the default pipeline). The decoder
 * API is generated when the graph is a decoder (token ids, attention mask, logits, attention
 * ops) and the kv-cache pass succeeds on a copy; otherwise a note says why and only the
 * generic <name>_run exists. False after reporting errors (unsupported op, unknown dims). */
bool cg_emit_c(IrModel *m, const CgOptions *o);

/* ---- the LLVM backend (codegen/llvm*.c; built when LLVM 19 is found: BQC_HAVE_LLVM) ---- */

typedef struct CgTarget {
    const char *triple;        /* -mtriple; NULL: the host */
    const char *cpu;           /* -mcpu; NULL or "native": the host's CPU and its feature list */
    const char *features;      /* -mattr ("+avx2,-avx512f"), added to the CPU's */
    int opt;                   /* -O level 0..3 (default<O2> unless given) */
} CgTarget;

/* The same model, weights file and <name>.h as cg_emit_c, with the code as an object file
 * (or, with `assembly`, LLVM IR text) at `path`; <name>.h and <name>.weights go to
 * o->out_dir. False after reporting errors (also a bad -mtriple/-mcpu/-mattr). */
bool cg_emit_llvm(IrModel *m, const CgOptions *o, const CgTarget *t, bool assembly, const char *path);

/* The model compiled in process for the host (ORC LLJIT); its weights file is written to
 * o->out_dir/<name>.weights. Look up <name>_open, <name>_run, ... and call them as the
 * header declares. */
typedef struct CgJit CgJit;
CgJit *cg_jit_create(IrModel *m, const CgOptions *o, int opt);
void *cg_jit_lookup(CgJit *j, Diag *d, const char *name);
void cg_jit_destroy(CgJit *j);

/* A valid C identifier prefix from a file name ("opt-125m.onnx" -> "opt_125m"). */
void cg_default_name(const char *model_path, char *buf, size_t size);

#endif
