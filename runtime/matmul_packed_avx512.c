/* matmul_packed_avx512.c — AVX-512 kernels for 64-column packed panels (matmul_packed.c).
 *
 * A panel row is exactly four zmm vectors, so a register tile is mr rows x 4 accumulators
 * (mr <= 6: 24 accumulators, 4 panel vectors, a broadcast), one instance per mr so edge rows
 * cost nothing extra. The M = 1 row kernel is memory-bound: it walks four panels side by side
 * (16 independent fma chains, four sequential streams) and prefetches ahead in each. Every
 * accumulator lane is one output's fmaf chain over increasing k (_mm512_fmadd_ps rounds
 * once), so the bits are the portable kernel's. Rows are spelled out with macros and guarded
 * by the constant mr so the accumulators stay in registers.
 */
#include "bqcrt_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

enum { PANEL = BQ_F32_PANEL, PREFETCH = 1024 /* bytes ahead in each panel stream */ };

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define VECS(X, i) X(i, 0) X(i, 1) X(i, 2) X(i, 3)

#define DECL(i) __m512 c##i##0 = z, c##i##1 = z, c##i##2 = z, c##i##3 = z;
#define LOAD1(i, v) c##i##v = _mm512_loadu_ps(C + (i) * ldc + 16 * (v));
#define LOAD(i) if (mr > (i) && !first) { VECS(LOAD1, i) }
#define FMA1(i, v) c##i##v = _mm512_fmadd_ps(a##i, b##v, c##i##v);
#define FMA(i)                                           \
    if (mr > (i)) {                                      \
        __m512 a##i = _mm512_set1_ps(A[(i) * lda + k]);  \
        VECS(FMA1, i)                                    \
    }
#define BIAS1(i, v) c##i##v = _mm512_add_ps(c##i##v, bias##v);
#define RELU1(i, v) c##i##v = _mm512_max_ps(z, c##i##v);   /* x < 0 ? 0 : x, NaN kept */
#define STORE1(i, v) _mm512_storeu_ps(C + (i) * ldc + 16 * (v), c##i##v);
#define END(i)                          \
    if (mr > (i)) {                     \
        if (bias) { VECS(BIAS1, i) }    \
        if (relu) { VECS(RELU1, i) }    \
        VECS(STORE1, i)                 \
    }

static inline __attribute__((always_inline)) void tile(const int mr, const float *A, int64_t lda, const float *Bp,
                                                       float *C, int64_t ldc, int64_t kc, int first,
                                                       const float *bias, int relu)
{
    const __m512 z = _mm512_setzero_ps();
    ROWS(DECL)
    ROWS(LOAD)
    for (int64_t k = 0; k < kc; k++) {
        const float *b = Bp + k * PANEL;
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 b2 = _mm512_loadu_ps(b + 32), b3 = _mm512_loadu_ps(b + 48);
        ROWS(FMA)
    }
    __m512 bias0 = z, bias1 = z, bias2 = z, bias3 = z;
    if (bias) {
        bias0 = _mm512_loadu_ps(bias), bias1 = _mm512_loadu_ps(bias + 16);
        bias2 = _mm512_loadu_ps(bias + 32), bias3 = _mm512_loadu_ps(bias + 48);
    }
    ROWS(END)
}

#define TILE_FN(m)                                                                                           \
    static void tile##m(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc,     \
                        int first, const float *bias, int relu)                                              \
    {                                                                                                        \
        tile(m, A, lda, Bp, C, ldc, kc, first, bias, relu);                                                  \
    }
TILE_FN(1) TILE_FN(2) TILE_FN(3) TILE_FN(4) TILE_FN(5) TILE_FN(6)
_Static_assert(BQ_PANEL_MR_AVX512 == 6, "one tile function per row count");

void bq_panel_avx512(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc, int mr,
                     int first, const float *bias, int relu)
{
    switch (mr) {
    case 1: tile1(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 2: tile2(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 3: tile3(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 4: tile4(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 5: tile5(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    default: tile6(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    }
    _mm256_zeroupper();
}

/* ---- M = 1: np panels side by side ---- */

#define PDECL(p) __m512 c##p##0 = z, c##p##1 = z, c##p##2 = z, c##p##3 = z;
#define PFMA1(p, v) c##p##v = _mm512_fmadd_ps(a, _mm512_loadu_ps(b##p + 16 * (v)), c##p##v);
#define PFMA(p)                                                       \
    if (np > (p)) {                                                   \
        const float *b##p = Bp + (p) * K * PANEL + k * PANEL;         \
        _mm_prefetch((const char *)b##p + PREFETCH, _MM_HINT_T0);      \
        _mm_prefetch((const char *)b##p + PREFETCH + 64, _MM_HINT_T0); \
        _mm_prefetch((const char *)b##p + PREFETCH + 128, _MM_HINT_T0); \
        _mm_prefetch((const char *)b##p + PREFETCH + 192, _MM_HINT_T0); \
        VECS(PFMA1, p)                                                \
    }
#define PEND1(p, v)                                                                  \
    if (bias) c##p##v = _mm512_add_ps(c##p##v, _mm512_loadu_ps(bias + (p) * PANEL + 16 * (v))); \
    if (relu) c##p##v = _mm512_max_ps(z, c##p##v);                                  \
    _mm512_storeu_ps(c + (p) * PANEL + 16 * (v), c##p##v);
#define PEND(p) if (np > (p)) { VECS(PEND1, p) }
#define PANELS(X) X(0) X(1) X(2) X(3)

static inline __attribute__((always_inline)) void row_group(const int np, const float *x, const float *Bp,
                                                            int64_t K, float *c, const float *bias, int relu)
{
    const __m512 z = _mm512_setzero_ps();
    PANELS(PDECL)
    for (int64_t k = 0; k < K; k++) {
        __m512 a = _mm512_set1_ps(x[k]);
        PANELS(PFMA)
    }
    PANELS(PEND)
}

void bq_panel_row_avx512(const float *a, const float *Bp, int64_t K, int64_t np, float *c, const float *bias,
                         int relu)
{
    int64_t p = 0;
    for (; p + 4 <= np; p += 4)
        row_group(4, a, Bp + p * K * PANEL, K, c + p * PANEL, bias ? bias + p * PANEL : NULL, relu);
    if (np - p >= 2) {
        row_group(2, a, Bp + p * K * PANEL, K, c + p * PANEL, bias ? bias + p * PANEL : NULL, relu);
        p += 2;
    }
    if (p < np) row_group(1, a, Bp + p * K * PANEL, K, c + p * PANEL, bias ? bias + p * PANEL : NULL, relu);
    _mm256_zeroupper();
}
#endif
