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

/* A valid C identifier prefix from a file name ("opt-125m.onnx" -> "opt_125m"). */
void cg_default_name(const char *model_path, char *buf, size_t size);

#endif
