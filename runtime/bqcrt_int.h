/* bqcrt_int.h — libbqcrt's private header: the per-ISA matmul micro-kernels and their shapes.
 *
 * A micro-kernel computes one full MR x W tile of C over a K block (`kc` steps), vectorised
 * across the W columns only, so every output keeps the contract's fmaf chain over increasing k.
 * matmul.c owns blocking, packing and edges; the ISA files only hold the register tiles.
 */
#ifndef BQCRT_INT_H
#define BQCRT_INT_H

#include "bqcrt.h"

/* C[0..MR, 0..W) (rows ldc apart) = (first ? 0 : C) + A·B over kc steps of k, where A rows are
 * lda apart and B rows (one per k, W floats) are ldb apart. Then, if bias != NULL, + bias[0..W),
 * and if relu, relu. bias/relu are only passed for the last K block. */
typedef void (*bq_ukernel_fn)(const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                              int64_t ldc, int64_t kc, int first, const float *bias, int relu);

typedef struct bq_ukernel {
    bq_ukernel_fn fn;
    int mr;              /* rows of the register tile */
    int w;               /* columns of the register tile (a multiple of the vector width) */
} bq_ukernel;

#define BQ_KC 256        /* K block: one B panel (BQ_KC x w floats) stays in L1/L2 */
#define BQ_MC 192        /* M block: BQ_MC x BQ_KC of A stays in L2 across the N panels */
#define BQ_MAX_MR 8
#define BQ_MAX_W 64

void bq_ukernel_portable(const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                         int64_t ldc, int64_t kc, int first, const float *bias, int relu);
void bq_ukernel_avx2(const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                     int64_t ldc, int64_t kc, int first, const float *bias, int relu);
void bq_ukernel_avx512(const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                       int64_t ldc, int64_t kc, int first, const float *bias, int relu);

#define BQ_PORTABLE_MR 4
#define BQ_PORTABLE_W 8
#define BQ_AVX2_MR 6
#define BQ_AVX2_W 16
#define BQ_AVX512_MR 6
#define BQ_AVX512_W 64

#endif
