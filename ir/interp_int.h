/* interp_int.h — private to the reference interpreter: interp.c and the exec_*.c files.
 *
 * Exec functions receive concrete input tensors (NULL for omitted optional inputs) and output
 * tensors the interpreter already allocated with the shapes concrete-mode inference computed
 * (data == NULL: the node has no such result). They compute, never decide shapes, except the
 * few ops whose result shapes come from a branch or from operand values (exec_allocates in
 * interp.c), which allocate their results themselves. Per-dtype work is
 * described by rows (element access, conversions, kernels per op and dtype); a dtype an op has
 * no row for is reported as "unsupported", which callers treat as a skip, not a bug.
 */
#ifndef BQC_INTERP_INT_H
#define BQC_INTERP_INT_H

#include "bqcrt.h"
#include "ir.h"

struct IrExecCtx {
    IrGraph *g;                /* graph of the node being run */
    IrId node;                 /* the node being run (messages) */
    bq_isa isa;                /* kernel path for the run (bq_isa_detect once) */
    const IrRunOptions *opt;
    int depth;                 /* If nesting */
};

/* A node error ("model.onnx: node 'x' (Op): error: ...") for the node being run; false. */
bool exec_error(IrExecCtx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "unsupported element type f16 for <what>"; false. */
bool exec_unsupported(IrExecCtx *x, const char *what, IrDType t);

/* Runs a branch graph on borrowed inputs (one per graph input) into owned outputs (interp.c). */
bool interp_run_graph(IrExecCtx *parent, IrGraph *g, IrTensor *const *inputs, IrTensor *outputs);

/* ---- exec_common.c: element access, conversions, broadcasting loops ---- */

/* Element i's exact value (x87 long double holds every f64, i64 and u64 exactly). */
long double exec_get(const IrTensor *t, int64_t i);
/* Stores v rounded to nearest even (floats), truncated and saturated (ints; NaN -> 0), or
 * v != 0 (bool). */
void exec_set(IrTensor *t, int64_t i, long double v);
/* Integer and bool elements as int64 (u64 keeps its bits); floats truncated (saturating). */
int64_t exec_get_i64(const IrTensor *t, int64_t i);
/* Stores an integer, wrapping (two's complement) into integer and bool (!= 0) elements. */
void exec_set_i64(IrTensor *t, int64_t i, int64_t v);
/* Cast semantics (ONNX Cast): ints and bools wrap between each other, anything else converts
 * by value with one rounding. src and dst have the same element count. */
void exec_convert(const IrTensor *src, IrTensor *dst);
/* A new owned tensor of dtype dt holding src's values (exec_convert); false on OOM. */
bool exec_convert_new(const IrTensor *src, IrDType dt, IrTensor *dst);
float exec_f16_to_f32(uint16_t h);
uint16_t exec_f32_to_f16(float f);
bool exec_alloc_like(IrExecCtx *x, IrTensor *t, IrDType dt, int rank, const int64_t *dims);
/* Normalises an axis in [-rank, rank-1]; false with an error otherwise. */
bool exec_axis(IrExecCtx *x, int64_t axis, int rank, int *out);

/* Broadcasting: operand 0 is the output, 1.. the inputs (right-aligned, extent-1 dims
 * repeat). Dimensions that are contiguous for every operand are merged, so the innermost
 * row is as long as possible. */
#define EXEC_MAX_OPS 4
typedef struct ExecLoop {
    int rank;                                 /* >= 1 after merging */
    int nops;
    int64_t dims[IR_MAX_RANK];
    int64_t st[EXEC_MAX_OPS][IR_MAX_RANK];    /* element strides (0: broadcast) */
    int64_t rows;                             /* product of all but the innermost dim */
} ExecLoop;
void exec_loop_init(ExecLoop *l, const IrTensor *out, const IrTensor *const *in, int nin);
/* Element offsets of the start of row r, one per operand. */
void exec_loop_row(const ExecLoop *l, int64_t r, int64_t *off);
static inline int64_t exec_loop_inner(const ExecLoop *l) { return l->dims[l->rank - 1]; }

/* n elements of size es from src (stride ss elements: 0 repeats, negative walks back) to
 * contiguous dst. */
void exec_copy_row(size_t es, const void *src, int64_t ss, void *dst, int64_t n);
/* out = in broadcast to out's shape (same dtype), any element size. */
void exec_broadcast_copy(const IrTensor *in, IrTensor *out);
/* Row-major strides of a tensor, in elements. */
void exec_strides(const IrTensor *t, int64_t *st);

#endif
