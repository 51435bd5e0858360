/* qmatmul_avx2.c — AVX2 kernels of the quantised matmul (qmatmul_int.h), chosen at run time.
 *
 * The AVX-512 kernels' scheme on two ymm halves of a panel's 16 outputs: integer form with
 * vpmaddwd + vpaddd (two k per instruction, an exact int32 block sum), float form with one
 * _mm256_fmadd_ps per k (each lane the block's fmaf chain), then per block
 * acc + ((float)sum · 2^e) · (sa · sw) as separate operations — the portable kernel's bits.
 * Two activation rows per pass keep the 8 accumulators and the weight vectors in the 16
 * registers; the entry points walk the tile's rows two at a time.
 */
#include <string.h>

#include "qmatmul_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define ROWS(X) X(0) X(1)

static inline __m256i pair_of(const int16_t *a)
{
    int32_t x;
    memcpy(&x, a, sizeof x);
    return _mm256_set1_epi32(x);
}

#define SETUP(T, i)                                                                          \
    const T *a##i = (const T *)t->a + (r0 + (mr > (i) ? (i) : 0)) * t->lda;                   \
    const float *sa##i = t->sa + (r0 + (mr > (i) ? (i) : 0)) * t->ldsa;                        \
    __m256 acc##i##l = _mm256_setzero_ps(), acc##i##h = _mm256_setzero_ps();
#define I16_SETUP(i) SETUP(int16_t, i)
#define F32_SETUP(i) SETUP(float, i)
#define BLOCK_ADD(i, lo, hi)                                                                  \
    if (mr > (i)) {                                                                           \
        __m256 sv = _mm256_set1_ps(sa##i[b]);                                                 \
        acc##i##l = _mm256_add_ps(acc##i##l, _mm256_mul_ps(lo, _mm256_mul_ps(sv, swl)));      \
        acc##i##h = _mm256_add_ps(acc##i##h, _mm256_mul_ps(hi, _mm256_mul_ps(sv, swh)));      \
    }
#define STORE(i)                                                                              \
    if (mr > (i)) {                                                                           \
        _mm256_storeu_ps(t->acc + (r0 + (i)) * QNR, acc##i##l);                               \
        _mm256_storeu_ps(t->acc + (r0 + (i)) * QNR + 8, acc##i##h);                           \
    }

#define I16_ZERO(i) __m256i s##i##l = _mm256_setzero_si256(), s##i##h = _mm256_setzero_si256();
#define I16_DOT(i)                                                                            \
    if (mr > (i)) {                                                                           \
        __m256i x = pair_of(a##i + 2 * kp);                                                   \
        s##i##l = _mm256_add_epi32(s##i##l, _mm256_madd_epi16(x, wl));                        \
        s##i##h = _mm256_add_epi32(s##i##h, _mm256_madd_epi16(x, wh));                        \
    }
#define I16_END(i) \
    BLOCK_ADD(i, _mm256_mul_ps(_mm256_cvtepi32_ps(s##i##l), p2), _mm256_mul_ps(_mm256_cvtepi32_ps(s##i##h), p2))

static inline __attribute__((always_inline)) void i16_tile(const int mr, const bq_qtile *t, int r0)
{
    const int16_t *W = t->w;
    const __m256 p2 = _mm256_set1_ps(t->p2);
    ROWS(I16_SETUP)
    for (int64_t b = 0, k0 = 0; b < t->nb; b++, k0 += t->B) {
        int64_t k1 = k0 + t->B < t->K ? k0 + t->B : t->K;   /* both even */
        ROWS(I16_ZERO)
        for (int64_t kp = k0 >> 1; kp < k1 >> 1; kp++) {
            const int16_t *wk = W + kp * 2 * QNR;
            __m256i wl = _mm256_loadu_si256((const __m256i *)wk), wh = _mm256_loadu_si256((const __m256i *)(wk + 16));
            ROWS(I16_DOT)
        }
        __m256 swl = _mm256_loadu_ps(t->sw + b * QNR), swh = _mm256_loadu_ps(t->sw + b * QNR + 8);
        ROWS(I16_END)
    }
    ROWS(STORE)
}

void bq_qk_i16_avx2(const bq_qtile *t)
{
    for (int r0 = 0; r0 < t->mr; r0 += 2) {
        if (t->mr - r0 >= 2) i16_tile(2, t, r0);
        else i16_tile(1, t, r0);
    }
    _mm256_zeroupper();
}

#define F32_ZERO(i) __m256 s##i##l = _mm256_setzero_ps(), s##i##h = _mm256_setzero_ps();
#define F32_FMA(i)                                                                            \
    if (mr > (i)) {                                                                           \
        __m256 x = _mm256_set1_ps(a##i[k]);                                                   \
        s##i##l = _mm256_fmadd_ps(x, wl, s##i##l);                                            \
        s##i##h = _mm256_fmadd_ps(x, wh, s##i##h);                                            \
    }
#define F32_END(i) BLOCK_ADD(i, s##i##l, s##i##h)

static inline __attribute__((always_inline)) void f32_tile(const int mr, const bq_qtile *t, int r0)
{
    const float *W = t->w;
    ROWS(F32_SETUP)
    for (int64_t b = 0, k0 = 0; b < t->nb; b++, k0 += t->B) {
        int64_t k1 = k0 + t->B < t->K ? k0 + t->B : t->K;
        ROWS(F32_ZERO)
        for (int64_t k = k0; k < k1; k++) {
            __m256 wl = _mm256_loadu_ps(W + k * QNR), wh = _mm256_loadu_ps(W + k * QNR + 8);
            ROWS(F32_FMA)
        }
        __m256 swl = _mm256_loadu_ps(t->sw + b * QNR), swh = _mm256_loadu_ps(t->sw + b * QNR + 8);
        ROWS(F32_END)
    }
    ROWS(STORE)
}

void bq_qk_f32_avx2(const bq_qtile *t)
{
    for (int r0 = 0; r0 < t->mr; r0 += 2) {
        if (t->mr - r0 >= 2) f32_tile(2, t, r0);
        else f32_tile(1, t, r0);
    }
    _mm256_zeroupper();
}
#endif
