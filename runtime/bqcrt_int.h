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

/* ---- pre-packed panels (matmul_packed*.c) ----
 * Bp is kc rows of one panel (BQ_F32_PANEL floats each, the packed layout of bqcrt.h).
 * A panel kernel computes C[0..mr, 0..PANEL) (rows ldc apart) = (first ? 0 : C) + A·Bp over kc
 * steps of k for 1 <= mr <= its MR, then + bias[0..PANEL) if bias, then relu if relu. A row
 * kernel is the M = 1 case over np whole panels (K rows each, consecutive in memory):
 * c[0..np·PANEL) = a·B from 0, + bias, relu. Both keep one fmaf chain per output. */
typedef void (*bq_panel_fn)(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc,
                            int64_t kc, int mr, int first, const float *bias, int relu);
typedef void (*bq_panel_row_fn)(const float *a, const float *Bp, int64_t K, int64_t np, float *c,
                                const float *bias, int relu);

void bq_panel_portable(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc,
                       int mr, int first, const float *bias, int relu);
void bq_panel_avx2(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc,
                   int mr, int first, const float *bias, int relu);
void bq_panel_avx512(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc,
                     int mr, int first, const float *bias, int relu);
void bq_panel_row_portable(const float *a, const float *Bp, int64_t K, int64_t np, float *c,
                           const float *bias, int relu);
void bq_panel_row_avx2(const float *a, const float *Bp, int64_t K, int64_t np, float *c,
                       const float *bias, int relu);
void bq_panel_row_avx512(const float *a, const float *Bp, int64_t K, int64_t np, float *c,
                         const float *bias, int relu);

#define BQ_PANEL_MR_PORTABLE 4
#define BQ_PANEL_MR_AVX2 6
#define BQ_PANEL_MR_AVX512 6
#define BQ_PANEL_MR_MAX 8

/* ---- attention (nn.c), the steps around the two products, shared with nn_q.c ----
 * bq_attn_append: (batch b, head h)'s S new keys and values (rows ld apart in k, v) into its
 * cache rows [P, P+S) of K and V (D floats each), and its S queries times scale into qs [S][D].
 * bq_attn_mask: -FLT_MAX in the scores [S][P+S] where mrow (NULL: none) hides a key, and, if
 * causal, where a key is in query i's future (t > P + i). */
void bq_attn_append(const float *q, const float *k, const float *v, int64_t ld, float scale, int64_t b, int64_t h,
                    int64_t S, int64_t P, int64_t D, float *K, float *V, float *qs);
void bq_attn_mask(float *scores, const int64_t *mrow, int causal, int64_t S, int64_t P);

#endif
