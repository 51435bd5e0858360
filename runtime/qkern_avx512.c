/* qkern_avx512.c — the runtime's AVX-512 instantiations of qkern.h's kernels and the
 * vectorised activation quantisers.
 *
 * Kernels: one function per row of BQ_QK_SPEC_ROWS with its constants folded, and a generic
 * one reading every parameter from the task (what the interpreter and bqc bench fall back to
 * for other pairs). Quantisers: bfp, int and mxint8 blocks of activation rows straight into
 * the kernel's int8 elements, 16 lanes at a time, with bq_quantize's arithmetic: the block
 * maximum found on its bits, its scale by bq_qk_block_scale (shared with the portable path;
 * exact, subnormals included), |x|·2^k by vscalefps (exact wherever the result can round to
 * a non-zero integer), round-half-even by vrndscaleps, and
 * int's x/d in double as bq_quantize divides — so the elements equal the reference's codes.
 */
#include <math.h>
#include <string.h>

#include "formats_int.h"
#include "qkern_int.h"

#define QK_DEF(kind, cls, lut, sk, p2, B)                                                  \
    static BQ_QK_AVX512 void qk_##kind##_##cls##_##lut##_##sk##_##p2##_##B##_avx512(const bq_qk_task *t) \
    {                                                                                        \
        bq_qk_kernel_avx512(t, kind, cls, lut, sk, p2, B, 0);                               \
    }
BQ_QK_SPEC_ROWS(QK_DEF)
#undef QK_DEF

static BQ_QK_AVX512 void qk_generic_avx512(const bq_qk_task *t)
{
    bq_qk_kernel_avx512(t, t->sp.kind, t->sp.cls, t->sp.lut, t->sp.skind, t->sp.p2, 0, 0);
}

bq_qk_fn bq_qk_avx512_for(const bq_qk_spec *s)
{
#define QK_ROW(KD, CL, LU, SK, PT, BL)                                                                 \
    if (s->kind == KD && s->cls == CL && s->lut == LU && s->skind == SK && s->p2 == PT && s->block == BL) \
        return qk_##KD##_##CL##_##LU##_##SK##_##PT##_##BL##_avx512;
    BQ_QK_SPEC_ROWS(QK_ROW)
#undef QK_ROW
    return qk_generic_avx512;
}

/* ---- activation quantisers ---- */

/* Block [x, x+len): all finite? and the largest |x| as float bits. */
static inline int block_scan(const float *x, int64_t len, uint32_t *amax_bits)
{
    const __m512i absm = _mm512_set1_epi32(0x7FFFFFFF), expm = _mm512_set1_epi32(0x7F800000);
    __m512i mx = _mm512_setzero_si512();
    __mmask16 bad = 0;
    for (int64_t i = 0; i < len; i += 16) {
        __mmask16 k = len - i >= 16 ? 0xFFFF : (__mmask16)((1u << (len - i)) - 1);
        __m512i v = _mm512_and_si512(_mm512_maskz_loadu_epi32(k, x + i), absm);
        bad |= _mm512_mask_cmpeq_epi32_mask(k, _mm512_and_si512(v, expm), expm);
        mx = _mm512_max_epu32(mx, v);   /* |x| bits order like |x| for finite floats */
    }
    *amax_bits = _mm512_reduce_max_epu32(mx);
    return bad == 0;
}

/* q = clamp(RNE(x·2^sh), ±qmax), int8 into q, returns Σq. */
static inline int32_t quant_pow2(const float *x, int64_t len, int sh, float qmax, int8_t *q)
{
    const __m512 s = _mm512_set1_ps((float)sh), hi = _mm512_set1_ps(qmax), lo = _mm512_set1_ps(-qmax);
    __m512i sum = _mm512_setzero_si512();
    for (int64_t i = 0; i < len; i += 16) {
        __mmask16 k = len - i >= 16 ? 0xFFFF : (__mmask16)((1u << (len - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        __m512 r = _mm512_roundscale_ps(_mm512_scalef_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512i qi = _mm512_cvttps_epi32(_mm512_max_ps(_mm512_min_ps(r, hi), lo));
        sum = _mm512_add_epi32(sum, qi);
        _mm_mask_storeu_epi8(q + i, k, _mm512_cvtepi32_epi8(qi));
    }
    return _mm512_reduce_add_epi32(sum);
}

/* int<N>: q = clamp(RNE(x/d), ±qmax) with the quotient in double, as bq_quantize. */
static inline int32_t quant_div(const float *x, int64_t len, double d, double qmax, int8_t *q)
{
    const __m512d dv = _mm512_set1_pd(d), hi = _mm512_set1_pd(qmax), lo = _mm512_set1_pd(-qmax);
    __m512i sum = _mm512_setzero_si512();
    for (int64_t i = 0; i < len; i += 8) {
        __mmask8 k = len - i >= 8 ? 0xFF : (__mmask8)((1u << (len - i)) - 1);
        __m512d v = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + i));
        __m512d r = _mm512_roundscale_pd(_mm512_div_pd(v, dv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i qi = _mm512_cvttpd_epi32(_mm512_max_pd(_mm512_min_pd(r, hi), lo));
        sum = _mm512_add_epi32(sum, _mm512_zextsi256_si512(qi));
        _mm_mask_storeu_epi8(q + i, k, _mm256_cvtepi32_epi8(qi));
    }
    return _mm512_reduce_add_epi32(sum);
}

/* The block's largest magnitude from its bits; the elements 16 (pow2) or 8 (int) lanes at a time. */
static inline int scan_avx512(const float *x, int64_t len, float *amax)
{
    uint32_t ab;
    if (!block_scan(x, len, &ab)) return 0;
    memcpy(amax, &ab, 4);
    return 1;
}

static inline int32_t quant_avx512(const float *x, int64_t len, const bq_qk_bscale *s, int8_t *q)
{
    if (s->pow2) return quant_pow2(x, len, s->sh, (float)s->qmax, q);
    if (s->d != 0.0) return quant_div(x, len, s->d, s->qmax, q);
    memset(q, 0, (size_t)len);
    return 0;
}

int bq_qk_prep_rows_avx512(const bq_qk_prep *p, const float *A, int64_t lda_in, int64_t m0, int64_t m1, int8_t *a8,
                           float *sa, int32_t *corr)
{
    return bq_qk_prep_rows_t(p, A, lda_in, m0, m1, a8, sa, corr, scan_avx512, quant_avx512);
}

/* ---- int8 block dot products ---- */

/* A block's Σ a·w 32 elements at a time (vpmaddwd on sign-extended int16: exact). */
static inline int32_t bsum_avx512(const int8_t *a, const int8_t *w, int64_t B)
{
    __m512i v = _mm512_setzero_si512();
    for (int64_t i = 0; i < B; i += 32) {
        __mmask32 k = B - i >= 32 ? 0xFFFFFFFFu : (__mmask32)((1u << (B - i)) - 1);
        __m512i x = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(k, a + i));
        __m512i y = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(k, w + i));
        v = _mm512_add_epi32(v, _mm512_madd_epi16(x, y));
    }
    return _mm512_reduce_add_epi32(v);
}

void bq_qk_idot_avx512(const int8_t *a, const float *sa, const int8_t *w, int64_t ldw, const float *sw, int64_t lds,
                       int64_t nb, int64_t B, int64_t N, float p2, float *acc)
{
    bq_qk_idot_t(a, sa, w, ldw, sw, lds, nb, B, N, p2, acc, bsum_avx512);
}
