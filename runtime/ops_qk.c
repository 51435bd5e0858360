/* ops_qk.c — the quantised matmul kernel templates of qkern.h as functions whose shape
 * parameters are arguments (bqcrt_ops.h), for generators that instantiate them without a C
 * compiler.
 *
 * The LLVM backend links this file's bitcode into a model, emits one small kernel per distinct
 * (kind, cls, lut, skind, p2, B, nb) that calls the template with those constants, and lets the
 * inliner fold them: the same specialisation BQ_QK_DEFINE gives generated C. Called with
 * run-time values (libbqcrt's own copy) they are qkern's generic kernels.
 */
#include "bqcrt_ops.h"
#include "qkern.h"

void bq_qk_template_portable(const bq_qk_task *t, int kind, int cls, int lut, int skind, int p2, int B, int64_t nb)
{
    bq_qk_kernel_portable(t, kind, cls, lut, skind, p2, B, nb);
}

#ifdef BQ_QK_HAVE_AVX512
BQ_QK_AVX512 void bq_qk_template_avx512(const bq_qk_task *t, int kind, int cls, int lut, int skind, int p2, int B,
                                        int64_t nb)
{
    bq_qk_kernel_avx512(t, kind, cls, lut, skind, p2, B, nb);
}
#endif
