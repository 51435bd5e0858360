/* qkern_int.h — private to the fast quantised matmul (qkern*.c): the runtime's own
 * specialisations and the vectorised activation quantisers.
 *
 * The runtime instantiates the templates of qkern.h twice per ISA: once for each row of
 * BQ_QK_SPEC_ROWS (the kernels plans use most, constants folded) and once generically (every
 * parameter read from the task). Generated code instantiates its own kernels instead, with K
 * folded too.
 */
#ifndef BQ_QKERN_INT_H
#define BQ_QKERN_INT_H

#include "formats_int.h"
#include "qkern.h"

/* X(kind, cls, lut, skind, p2, B) — the runtime's constant instantiations. */
#define BQ_QK_SPEC_ROWS(X)                                                      \
    X(1, 4, 0, 1, 0, 16) X(1, 4, 0, 1, 0, 32) X(1, 4, 0, 1, 0, 64)   /* bfp3/4 */ \
    X(1, 6, 0, 1, 0, 16) X(1, 6, 0, 1, 0, 32) X(1, 6, 0, 1, 0, 64)   /* bfp5/6 */ \
    X(1, 8, 0, 1, 0, 16) X(1, 8, 0, 1, 0, 32) X(1, 8, 0, 1, 0, 64)   /* bfp7/8 */ \
    X(1, 4, 0, 2, 0, 32) X(1, 4, 0, 2, 0, 64)                        /* int2..4 */ \
    X(1, 6, 0, 2, 0, 32) X(1, 8, 0, 2, 0, 32) X(1, 8, 0, 2, 0, 64)   /* int5..8 */ \
    X(1, 8, 0, 1, 1, 32)                                             /* mxint8 */ \
    X(1, 4, 1, 1, 1, 32)                                             /* mxfp4 */ \
    X(2, 4, 1, 4, 0, 32) X(2, 4, 1, 4, 0, 64)                        /* nf4 */

/* The kernel for a spec on one ISA (a row's specialisation, or the generic one). */
bq_qk_fn bq_qk_portable_for(const bq_qk_spec *s);
#ifdef BQ_QK_HAVE_AVX512
bq_qk_fn bq_qk_avx512_for(const bq_qk_spec *s);
#endif

/* Activation rows for the integer kernel from the three families with vectorised
 * quantisers (bfp, int, mxint8): row m's elements Ma (int8, zero padded to lda), its block
 * scales (bq_dot_ref's scale_a) and corr = -woff·ΣMa per block — exactly what bq_quantize
 * followed by decoding gives. Returns 0 if the format has no fast quantiser. */
typedef struct bq_qk_prep {
    const bq_format *f;
    int woff;
    int64_t K, B, nb, lda, lds;
} bq_qk_prep;
int bq_qk_prep_rows_portable(const bq_qk_prep *p, const float *A, int64_t lda_in, int64_t m0, int64_t m1, int8_t *a8,
                             float *sa, int32_t *corr);
#ifdef BQ_QK_HAVE_AVX512
int bq_qk_prep_rows_avx512(const bq_qk_prep *p, const float *A, int64_t lda_in, int64_t m0, int64_t m1, int8_t *a8,
                           float *sa, int32_t *corr);
#endif
/* One block's scale for the quantisers above, from its largest magnitude amax (finite; the
 * per-family arithmetic both ISA paths share, written once): the elements are RNE(x·2^sh)
 * (pow2: bfp, mxint8) or RNE(x/d) with the quotient in double (int; d == 0: all zero),
 * clamped to ±qmax; sa is the block's scale. (bfp's sign-magnitude rounding, RNE(|x|·2^sh)
 * with x's sign, is the same number: RNE and the clamp are symmetric.) */
typedef struct bq_qk_bscale {
    int pow2, sh;
    double d, qmax;
    float sa;
} bq_qk_bscale;

/* floor and ceil of log2 of a positive finite float, exactly (subnormals included), from its
 * bits: inline, as the quantisers call them once per block. */
static inline int bq_qk_floor_log2(float a)
{
    uint32_t b;
    memcpy(&b, &a, 4);
    int ef = (int)(b >> 23), e;
    if (ef) return ef - 127;
    (void)frexpf(a, &e);   /* subnormal (rare): a = f·2^e, f in [0.5, 1) */
    return e - 1;
}
static inline int bq_qk_ceil_log2(float a)
{
    uint32_t b;
    memcpy(&b, &a, 4);
    int pow2 = (b >> 23) ? (b & 0x7FFFFFu) == 0 : (b & (b - 1)) == 0;
    return pow2 ? bq_qk_floor_log2(a) : bq_qk_floor_log2(a) + 1;
}

/* bfp: E = ceil(log2 amax) clamped (zero block -127); q = clamp(RNE(x·2^(m-E)), ±(2^m-1));
 * scale 2^(E-m). int: d = fp16(amax/qmax); q = clamp(RNE(x/d)); scale d. mxint8:
 * S = floor(log2 amax) clamped; q = clamp(RNE(x·2^(6-S)), ±127); element q·2^-6, scale 2^S.
 * The arithmetic is bq_quantize's own (formats_kernels.c, formats_mf.c), written for int8. */
static inline bq_qk_bscale bq_qk_block_scale(const bq_format *f, float amax)
{
    bq_qk_bscale s = {0};
    if (f->family == BQ_FAM_BFP) {
        int mb = f->width - 1, E = amax == 0.0f ? -127 : bq_clamp_int(bq_qk_ceil_log2(amax), -127, 127);
        s.pow2 = 1, s.sh = mb - E, s.qmax = (double)((1 << mb) - 1), s.sa = ldexpf(1.0f, E - mb);
    } else if (f->family == BQ_FAM_MXINT) {
        int S = amax == 0.0f ? -127 : bq_clamp_int(bq_qk_floor_log2(amax), -127, 127);
        s.pow2 = 1, s.sh = 6 - S, s.qmax = 127.0, s.sa = ldexpf(1.0f, S);
    } else {
        s.qmax = (double)((1 << (f->width - 1)) - 1);
        uint16_t h = bq_f16_from_double((double)amax / s.qmax);
        if (h > 0x7BFFu) h = 0x7BFFu;
        s.d = bq_f16_to_float(h), s.sa = (float)s.d;
    }
    return s;
}

/* The row and block loop both quantisers share (inlined per ISA, like bq_qk_idot_t): scan
 * tells whether a block is all finite and gives its largest magnitude; quant writes its int8
 * elements for the block scale and returns their sum. A block with a NaN or Inf is zeros with
 * scale NaN, as bq_quantize has it. */
BQ_QK_AI int bq_qk_prep_rows_t(const bq_qk_prep *p, const float *A, int64_t lda_in, int64_t m0, int64_t m1, int8_t *a8,
                               float *sa, int32_t *corr, int (*scan)(const float *, int64_t, float *),
                               int32_t (*quant)(const float *, int64_t, const bq_qk_bscale *, int8_t *))
{
    int fam = p->f->family;
    if (fam != BQ_FAM_BFP && fam != BQ_FAM_INT && fam != BQ_FAM_MXINT) return 0;
    for (int64_t m = m0; m < m1; m++) {
        const float *x = A + m * lda_in;
        int8_t *a = a8 + m * p->lda;
        for (int64_t b = 0; b < p->nb; b++) {
            int64_t k0 = b * p->B, len = p->K - k0 < p->B ? p->K - k0 : p->B;
            int32_t sum = 0;
            float scale = NAN, amax;
            if (!scan(x + k0, len, &amax)) {
                memset(a + k0, 0, (size_t)len);
            } else {
                bq_qk_bscale s = bq_qk_block_scale(p->f, amax);
                sum = quant(x + k0, len, &s, a + k0);
                scale = s.sa;
            }
            sa[m * p->lds + b] = scale;
            corr[m * p->lds + b] = -p->woff * sum;
        }
        memset(a + p->K, 0, (size_t)(p->lda - p->K));
    }
    return 1;
}

/* The ISA's fast quantiser, else the portable one (0: the format has none). */
int bq_qk_prep_rows(bq_isa isa, const bq_qk_prep *p, const float *A, int64_t lda_in, int64_t m0, int64_t m1,
                    int8_t *a8, float *sa, int32_t *corr);
/* Whether rows in f quantise straight to int8 elements (bq_qk_prep_rows: blocked bfp, int,
 * mxint8), and the unit 2^emin of those elements (*emin). */
int bq_qk_int8_rows(const bq_format *f, int *emin);

/* Block dot products of one int8 row against N int8 rows, both in bq_qk_prep_rows' layout
 * (blocks of B elements, zero padded; one scale per block): for n < N and blocks b < nb in
 * increasing order, the integer kernel's steps
 *   F = (float)Σ a·w;  F = F · p2;  P = sa[b] · sw[n·lds + b];  c = F · P;  acc[n] = acc[n] + c
 * which are bq_dot_ref's for a pair of such formats (p2 = 2^(emin_a + emin_w)). The caller
 * starts acc at 0.0f and may continue it with more blocks (another call). */
void bq_qk_idot(bq_isa isa, const int8_t *a, const float *sa, const int8_t *w, int64_t ldw, const float *sw,
                int64_t lds, int64_t nb, int64_t B, int64_t N, float p2, float *acc);
/* The loop both paths share; bsum(a, w, B) is a block's exact Σ a·w (inlined per ISA). */
BQ_QK_AI void bq_qk_idot_t(const int8_t *a, const float *sa, const int8_t *w, int64_t ldw, const float *sw,
                           int64_t lds, int64_t nb, int64_t B, int64_t N, float p2, float *acc,
                           int32_t (*bsum)(const int8_t *, const int8_t *, int64_t))
{
    for (int64_t n = 0; n < N; n++) {
        const int8_t *wn = w + n * ldw;
        float s = acc[n];
        for (int64_t b = 0; b < nb; b++) s = bq_qk_block_acc(s, (float)bsum(a + b * B, wn + b * B, B) * p2, sa[b], sw[n * lds + b]);
        acc[n] = s;
    }
}
void bq_qk_idot_portable(const int8_t *a, const float *sa, const int8_t *w, int64_t ldw, const float *sw, int64_t lds,
                         int64_t nb, int64_t B, int64_t N, float p2, float *acc);
#ifdef BQ_QK_HAVE_AVX512
void bq_qk_idot_avx512(const int8_t *a, const float *sa, const int8_t *w, int64_t ldw, const float *sw, int64_t lds,
                       int64_t nb, int64_t B, int64_t N, float p2, float *acc);
#endif

#endif
