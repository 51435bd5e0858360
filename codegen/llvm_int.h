/* llvm_int.h — private to the LLVM backend (codegen/llvm*.c), the only files that include
 * the llvm-c headers.
 *
 * The backend builds one LLVM module per model: the runtime's bitcode (runtime/ops.c,
 * gmodel.c, ops_qk.c, compiled by clang when bqc was built and embedded in bqc) linked in,
 * then one function per compiled graph that calls those helpers and libbqcrt's kernels with
 * every extent, stride, offset and format as a constant or an expression of the bound
 * symbols, and the public API of the shared <name>.h around them. The helpers are marked
 * always-inline and made internal, so default<O2> specialises each call site.
 */
#ifndef BQC_LLVM_INT_H
#define BQC_LLVM_INT_H

#include <llvm-c/Core.h>

#include "cg_int.h"

/* One instantiation of the quantised matmul templates (llvm_ops.c kernel_for). */
#define LV_MAX_KERNELS 256
typedef struct LvKernel {
    bq_qk_spec sp;
    int64_t nb;                /* blocks per row, folded */
    LLVMValueRef avx512, portable;   /* avx512: a null pointer for targets without AVX-512 VNNI */
} LvKernel;

typedef struct Lv {
    Cg *cg;
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i8, i16, i32, i64, f32, f64, ptr, vd;
    bool avx512;               /* the target has AVX-512 F/BW/VL/VNNI: the kernels' avx512 path exists */
    LvKernel kernels[LV_MAX_KERNELS];   /* quantised matmul kernels instantiated so far */
    int nkernels;
} Lv;

/* ---- llvm_ops.c ---- */

/* Emits `static bq_status <name>_graph_<fn>(bq_gm *m, const int64_t *sym, const void *const
 * *in, void *const *out)` for a planned graph (which: 0 run, 1 step); NULL after errors. */
LLVMValueRef lv_emit_graph(Lv *lv, CgGraph *g, int which);
/* `static void <name>_units_<fn>(const int64_t *sym, int64_t *unit)`: each region's unit in
 * bytes for a binding of the symbols (bq_gm_units_fn). */
LLVMValueRef lv_emit_units(Lv *lv, CgGraph *g);
/* A dimension of m as i64 arithmetic over the loaded symbols; NULL if it is not a polynomial. */
LLVMValueRef lv_dim(Lv *lv, const IrModel *m, IrDim d, LLVMValueRef *sym);
/* A function of the module by name: from the runtime bitcode, or declared from the table of
 * libbqcrt's kernels. Aborts for a name it does not know (a bug). */
LLVMValueRef lv_fn(Lv *lv, const char *name);
LLVMValueRef lv_call(Lv *lv, const char *name, LLVMValueRef *args, unsigned n);
LLVMValueRef lv_i64(Lv *lv, int64_t v);
LLVMValueRef lv_i32(Lv *lv, int32_t v);
/* A new function with internal or external linkage and its entry block (the builder there). */
LLVMValueRef lv_function(Lv *lv, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, unsigned n, bool external);
/* `if (cond) return status;` and continue in a new block. */
void lv_return_if(Lv *lv, LLVMValueRef cond, LLVMValueRef status);
/* bqcrt.h's bq_attn_formats as a constant struct. */
LLVMValueRef lv_attn_formats(Lv *lv, const bq_attn_formats *f);
/* A private constant global. */
LLVMValueRef lv_global(Lv *lv, LLVMValueRef init, const char *name);

#endif
