/* frontend.h — what comes into bqc: ONNX models, and tensors in .npy / ONNX .pb files.
 *
 * protobuf-c and the generated onnx.pb-c.h are included only by the frontend's .c files; everything
 * outside sees IrModel and IrTensor.
 */
#ifndef BQC_FRONTEND_H
#define BQC_FRONTEND_H

#include "../ir/ir.h"

#define ONNX_OPSET_MIN 13    /* default-domain opsets bqc imports */
#define ONNX_OPSET_MAX 17

/* Loads an ONNX model: initializers (raw_data and typed fields; raw_data is borrowed from the
 * mapped file, or copied once when misaligned for its element type), Constant nodes (folded into
 * constants), external data (location/offset/length relative to the model's directory, mmapped),
 * If subgraphs (captured outer values made explicit inputs), graph input types with dim_params as
 * named symbols, opset checks. Import only: no shape inference (ir_infer_graph does that).
 * Every error names the file and, where there is one, the node and op type. NULL on error. */
IrModel *onnx_load(Diag *diag, const char *path);

/* Tensor files, chosen by extension: ".npy" (NumPy format 1.0–3.0, C order) or ".pb" (an ONNX
 * TensorProto, as in ONNX's test_data_set_N folders). On read, *name (if not NULL) receives the
 * TensorProto's name or NULL (.npy has none; caller frees). The tensor is owned. */
bool tensor_read(Diag *diag, const char *path, IrTensor *t, char **name);
bool tensor_write(Diag *diag, const char *path, const IrTensor *t, const char *name);

/* Reads input_0.pb, input_1.pb, ... from an ONNX test_data_set_N folder (also output_K.pb
 * with prefix "output"), stopping at the first missing index. Returns how many were read
 * (<= max; more files than max is an error), -1 on error with nothing left allocated. names
 * may be NULL; its entries are the TensorProto names (caller frees). */
int tensor_read_dir(Diag *diag, const char *dir, const char *prefix, IrTensor *t, char **names, int max);

/* bqc's byte-level vocabulary (text.c): ids 0..3 are <s>, <pad>, </s>, <unk>; byte b is id
 * b + BYTEVOCAB_OFFSET. Reads a whole file as token ids (malloc'd); NULL after an error. */
#define BYTEVOCAB_OFFSET 4
#define BYTEVOCAB_SIZE 260
int64_t *text_read_ids(Diag *d, const char *path, int64_t *count);

/* plan.json (frontend/plan.c, docs/plans.md): the precision plan, read into `a` (the model's
 * arena, typically). Every error is one line naming the file and the JSON path
 * ("plan.json: rules[2].weight: error: bfp width 9 is outside 3..8"); invalid JSON names the
 * line and column. NULL on error. */
Plan *plan_read(Diag *diag, Arena *a, const char *path);
Plan *plan_parse(Diag *diag, Arena *a, const char *path, const char *text, size_t len);
/* Writes the resolved plan of mm[0..n) (plan_resolve, or plan_matmuls after the pipeline):
 * one rule per (node, matmul) with the exact node name and every role the matmul has, itself
 * a valid plan. `src` (may be NULL) supplies block_size when a block is still "auto". False
 * (reported) when two nodes of one name need different formats or an "auto" has no list. */
bool plan_write(FILE *f, Diag *diag, const IrGraph *g, const PlanMatmul *mm, uint32_t n, const Plan *src);

#endif
