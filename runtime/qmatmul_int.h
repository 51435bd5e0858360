/* qmatmul_int.h — private to the quantised matmul (qmatmul*.c): the panel kernels and their shapes.
 *
 * bq_qmatmul (qmatmul.c) turns both operands into one of three element forms and a scale per
 * block, then runs a kernel over panels of QNR weight rows:
 *   Q_I16  elements are integers M (int16) of one unit 2^emin per format; a block's sum is an
 *          exact int32 (the formats' widths guarantee it); weights interleaved in pairs of k,
 *          [k/2][QNR][2], so one pmaddwd/vpdpwssd does two k of QNR outputs;
 *   Q_I32  the same with int32 elements, [k][QNR], and exact int64 block sums (wide minifloats);
 *   Q_F32  elements as floats (nf4 and plain operands), [k][QNR]; a block's sum is the fmaf
 *          chain of the contract.
 * Every kernel then adds each block's contribution ((float)sum · 2^(emin_a+emin_w)) · (sa · sw)
 * to one fp32 accumulator per output, block after block: K order is never changed, the lanes
 * are outputs (N), so every ISA path computes bq_dot_ref's bits.
 */
#ifndef BQ_QMATMUL_INT_H
#define BQ_QMATMUL_INT_H

#include "bqcrt.h"

enum { QNR = 16,   /* weight rows per panel: one zmm of int32/float lanes */
       QMR = 4 };  /* activation rows per kernel call */

/* One kernel call: rows 0..mr-1 of the activation against one panel, over every block. */
typedef struct bq_qtile {
    const void *a;       /* activation elements of row 0 (int16/int32/float as the form says) */
    int64_t lda;         /* elements between activation rows */
    const float *sa;     /* activation block scales of row 0 */
    int64_t ldsa;        /* floats between the scale rows */
    const void *w;       /* the panel */
    const float *sw;     /* panel block scales [nb][QNR] */
    int64_t K, nb;       /* reduction length (Q_I16: even, zero padded) and blocks */
    int64_t B;           /* block length (the last block is K - (nb-1)·B long) */
    float p2;            /* 2^(emin_a + emin_w): the integer forms' unit (normal, exact) */
    float *acc;          /* out: [mr][QNR] results (without bias) */
    int mr;              /* 1..QMR */
} bq_qtile;

typedef void (*bq_qkernel_fn)(const bq_qtile *t);

/* Two formats analysed once for many products (the attention's heads): bq_qmatmul is
 * create, bq_qmatmul_pair, destroy. BQ_ERR_ARG for invalid formats or blocks that differ. */
typedef struct bq_qpair bq_qpair;
bq_status bq_qpair_create(const bq_format *A_fmt, const bq_format *W_fmt, bq_qpair **out);
void bq_qpair_destroy(bq_qpair *p);
bq_status bq_qmatmul_pair(bq_isa isa, bq_pool *pool, const bq_qpair *pair, const float *A, int64_t lda,
                          const void *Wq, const float *bias, int relu, float *C, int64_t ldc, int64_t M, int64_t N,
                          int64_t K);

/* Decodes one block of 16 weight rows straight into a Q_I16 panel (the hot loop when few
 * activation rows share the decoded weights): rows[l] points at row l's element codes in the
 * block; `groups` runs of 16 k are written from the panel's first pair onwards. w = 8: byte i
 * is M, or with sbit = 2^(w'-1) a w'-bit two's complement code to sign-extend; w = 4: M =
 * lut4[code] for two codes per byte. */
typedef void (*bq_qpack16_fn)(const uint8_t *const *rows, int w, int sbit, const int8_t *lut4, int64_t groups,
                              int16_t *panel);
void bq_qpack16_avx512(const uint8_t *const *rows, int w, int sbit, const int8_t *lut4, int64_t groups,
                       int16_t *panel);

void bq_qk_i16_portable(const bq_qtile *t);
void bq_qk_i32_portable(const bq_qtile *t);
void bq_qk_f32_portable(const bq_qtile *t);
void bq_qk_i16_avx2(const bq_qtile *t);
void bq_qk_f32_avx2(const bq_qtile *t);
void bq_qk_i16_avx512(const bq_qtile *t);
void bq_qk_f32_avx512(const bq_qtile *t);

#endif
