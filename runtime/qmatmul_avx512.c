/* qmatmul_avx512.c — AVX-512 kernels of the quantised matmul (qmatmul_int.h), chosen at run time.
 *
 * A panel's QNR = 16 outputs are the 16 lanes of one zmm. Integer form: the weights are
 * interleaved in pairs of k, so one vpdpwssd (VNNI) adds two k of 16 outputs to an int32 lane
 * for one activation row — the block sum is exact whatever the order, so this is free to pair
 * k. Float form: one _mm512_fmadd_ps per k, i.e. each lane is the block's fmaf chain in
 * increasing k. After each block every lane adds ((float)sum · 2^e) · (sa · sw) to its fp32
 * accumulator with separate multiplies and an add (vcvtdq2ps rounds to nearest even, as the
 * int→float conversion of the portable kernel does), so the bits are the portable kernel's.
 * Up to QMR = 4 activation rows share each weight load; one instance per row count keeps the
 * accumulators in registers.
 */
#include <string.h>

#include "qmatmul_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define ROWS(X) X(0) X(1) X(2) X(3)

static inline __m512i pair_of(const int16_t *a)
{
    int32_t x;
    memcpy(&x, a, sizeof x);
    return _mm512_set1_epi32(x);
}

#define I16_SETUP(i)                                                                         \
    const int16_t *a##i = (const int16_t *)t->a + (mr > (i) ? (i) : 0) * t->lda;              \
    const float *sa##i = t->sa + (mr > (i) ? (i) : 0) * t->ldsa;                               \
    __m512 acc##i = _mm512_setzero_ps();
#define I16_ZERO(i) __m512i s##i = _mm512_setzero_si512();
#define I16_DOT(i) \
    if (mr > (i)) s##i = _mm512_dpwssd_epi32(s##i, pair_of(a##i + 2 * kp), w);
#define BLOCK_ADD(i, sum)                                                                     \
    if (mr > (i)) {                                                                           \
        __m512 sc = _mm512_mul_ps(_mm512_set1_ps(sa##i[b]), swv);                             \
        acc##i = _mm512_add_ps(acc##i, _mm512_mul_ps(sum, sc));                               \
    }
#define I16_END(i) BLOCK_ADD(i, _mm512_mul_ps(_mm512_cvtepi32_ps(s##i), p2))
#define STORE(i) \
    if (mr > (i)) _mm512_storeu_ps(t->acc + (i) * QNR, acc##i);

static inline __attribute__((always_inline)) void i16_tile(const int mr, const bq_qtile *t)
{
    const int16_t *W = t->w;
    const __m512 p2 = _mm512_set1_ps(t->p2);
    ROWS(I16_SETUP)
    for (int64_t b = 0, k0 = 0; b < t->nb; b++, k0 += t->B) {
        int64_t k1 = k0 + t->B < t->K ? k0 + t->B : t->K;   /* both even */
        ROWS(I16_ZERO)
        for (int64_t kp = k0 >> 1; kp < k1 >> 1; kp++) {
            __m512i w = _mm512_loadu_si512((const void *)(W + kp * 2 * QNR));
            ROWS(I16_DOT)
        }
        __m512 swv = _mm512_loadu_ps(t->sw + b * QNR);
        ROWS(I16_END)
    }
    ROWS(STORE)
}

void bq_qk_i16_avx512(const bq_qtile *t)
{
    switch (t->mr) {
    case 1: i16_tile(1, t); break;
    case 2: i16_tile(2, t); break;
    case 3: i16_tile(3, t); break;
    default: i16_tile(4, t); break;
    }
    _mm256_zeroupper();
}

/* ---- decoding 16 weight rows into a panel: a 16 x 8 transpose of k-pairs ----
 * Each row's 16 codes become 16 int16 (8 int32 pairs); pairs of rows share a zmm, and three
 * rounds of vpermt2d gather, for each pair p, the 16 rows' pair p into one zmm, which is the
 * panel's 64-byte row for that pair. */

static const int32_t perm1[2][16] = {{0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27},
                                     {4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31}};
static const int32_t perm2[2][16] = {{0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29},
                                     {2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31}};
static const int32_t perm3[2][16] = {{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
                                     {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31}};

void bq_qpack16_avx512(const uint8_t *const *rows, int w, int sbit, const int8_t *lut4, int64_t groups,
                       int16_t *panel)
{
    const __m128i sb = _mm_set1_epi8((char)sbit);   /* (c ^ s) - s sign-extends from the bit s */
    __m512i i1[2], i2[2], i3[2];
    for (int h = 0; h < 2; h++) {
        i1[h] = _mm512_loadu_si512((const void *)perm1[h]);
        i2[h] = _mm512_loadu_si512((const void *)perm2[h]);
        i3[h] = _mm512_loadu_si512((const void *)perm3[h]);
    }
    __m128i lut = _mm_setzero_si128(), low4 = _mm_set1_epi8(0x0F);
    if (w == 4) lut = _mm_loadu_si128((const __m128i *)lut4);
    for (int64_t g = 0; g < groups; g++) {
        __m512i z[8], y[4][2], x[2][2][2];
        for (int j = 0; j < 8; j++) {
            __m256i r[2];
            for (int e = 0; e < 2; e++) {
                const uint8_t *c = rows[2 * j + e];
                __m128i v;
                if (w == 8) {
                    v = _mm_loadu_si128((const __m128i *)(c + 16 * g));
                    if (sbit) v = _mm_sub_epi8(_mm_xor_si128(v, sb), sb);
                } else {   /* element 2i in the low nibble of byte i */
                    __m128i b = _mm_loadl_epi64((const __m128i *)(c + 8 * g));
                    __m128i lo = _mm_and_si128(b, low4), hi = _mm_and_si128(_mm_srli_epi16(b, 4), low4);
                    v = _mm_shuffle_epi8(lut, _mm_unpacklo_epi8(lo, hi));
                }
                r[e] = _mm256_cvtepi8_epi16(v);
            }
            z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(r[0]), r[1], 1);
        }
        for (int i = 0; i < 4; i++)
            for (int h = 0; h < 2; h++) y[i][h] = _mm512_permutex2var_epi32(z[2 * i], i1[h], z[2 * i + 1]);
        for (int i = 0; i < 2; i++)
            for (int h = 0; h < 2; h++)
                for (int q = 0; q < 2; q++) x[i][h][q] = _mm512_permutex2var_epi32(y[2 * i][h], i2[q], y[2 * i + 1][h]);
        for (int h = 0; h < 2; h++)
            for (int q = 0; q < 2; q++)
                for (int r = 0; r < 2; r++)
                    _mm512_storeu_si512((void *)(panel + (g * 8 + 4 * h + 2 * q + r) * 2 * QNR),
                                        _mm512_permutex2var_epi32(x[0][h][q], i3[r], x[1][h][q]));
    }
    _mm256_zeroupper();
}

#define F32_SETUP(i)                                                                         \
    const float *a##i = (const float *)t->a + (mr > (i) ? (i) : 0) * t->lda;                  \
    const float *sa##i = t->sa + (mr > (i) ? (i) : 0) * t->ldsa;                               \
    __m512 acc##i = _mm512_setzero_ps();
#define F32_ZERO(i) __m512 s##i = _mm512_setzero_ps();
#define F32_FMA(i) \
    if (mr > (i)) s##i = _mm512_fmadd_ps(_mm512_set1_ps(a##i[k]), w, s##i);
#define F32_END(i) BLOCK_ADD(i, s##i)

static inline __attribute__((always_inline)) void f32_tile(const int mr, const bq_qtile *t)
{
    const float *W = t->w;
    ROWS(F32_SETUP)
    for (int64_t b = 0, k0 = 0; b < t->nb; b++, k0 += t->B) {
        int64_t k1 = k0 + t->B < t->K ? k0 + t->B : t->K;
        ROWS(F32_ZERO)
        for (int64_t k = k0; k < k1; k++) {
            __m512 w = _mm512_loadu_ps(W + k * QNR);
            ROWS(F32_FMA)
        }
        __m512 swv = _mm512_loadu_ps(t->sw + b * QNR);
        ROWS(F32_END)
    }
    ROWS(STORE)
}

void bq_qk_f32_avx512(const bq_qtile *t)
{
    switch (t->mr) {
    case 1: f32_tile(1, t); break;
    case 2: f32_tile(2, t); break;
    case 3: f32_tile(3, t); break;
    default: f32_tile(4, t); break;
    }
    _mm256_zeroupper();
}
#endif
