/* matmul_packed_avx2.c — AVX2+FMA kernels for 64-column packed panels (matmul_packed.c).
 *
 * Sixteen ymm registers hold a tile of mr <= 6 rows x 16 columns (12 accumulators, two panel
 * vectors, a broadcast), so a panel is computed as four 16-column strips; the M = 1 row
 * kernel keeps a whole panel row in 8 accumulators (8 independent fma chains) and reads the
 * panel as memory operands. Each accumulator lane is one output's fmaf chain over increasing
 * k (_mm256_fmadd_ps rounds once), so the bits are the portable kernel's.
 */
#include "bqcrt_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

enum { PANEL = BQ_F32_PANEL };

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define VECS(X, i) X(i, 0) X(i, 1)

#define DECL(i) __m256 c##i##0 = z, c##i##1 = z;
#define LOAD1(i, v) c##i##v = _mm256_loadu_ps(C + (i) * ldc + 8 * (v));
#define LOAD(i) if (mr > (i) && !first) { VECS(LOAD1, i) }
#define FMA1(i, v) c##i##v = _mm256_fmadd_ps(a##i, b##v, c##i##v);
#define FMA(i)                                              \
    if (mr > (i)) {                                         \
        __m256 a##i = _mm256_broadcast_ss(A + (i) * lda + k); \
        VECS(FMA1, i)                                       \
    }
#define BIAS1(i, v) c##i##v = _mm256_add_ps(c##i##v, bias##v);
#define RELU1(i, v) c##i##v = _mm256_max_ps(z, c##i##v);   /* x < 0 ? 0 : x, NaN kept */
#define STORE1(i, v) _mm256_storeu_ps(C + (i) * ldc + 8 * (v), c##i##v);
#define END(i)                          \
    if (mr > (i)) {                     \
        if (bias) { VECS(BIAS1, i) }    \
        if (relu) { VECS(RELU1, i) }    \
        VECS(STORE1, i)                 \
    }

/* One 16-column strip of the panel: Bp, C and bias already point at the strip. */
static inline __attribute__((always_inline)) void strip(const int mr, const float *A, int64_t lda, const float *Bp,
                                                        float *C, int64_t ldc, int64_t kc, int first,
                                                        const float *bias, int relu)
{
    const __m256 z = _mm256_setzero_ps();
    ROWS(DECL)
    ROWS(LOAD)
    for (int64_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(Bp + k * PANEL), b1 = _mm256_loadu_ps(Bp + k * PANEL + 8);
        ROWS(FMA)
    }
    __m256 bias0 = z, bias1 = z;
    if (bias) bias0 = _mm256_loadu_ps(bias), bias1 = _mm256_loadu_ps(bias + 8);
    ROWS(END)
}

#define PANEL_FN(m)                                                                                          \
    static void panel##m(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc,    \
                         int first, const float *bias, int relu)                                             \
    {                                                                                                        \
        for (int s = 0; s < PANEL; s += 16)                                                                  \
            strip(m, A, lda, Bp + s, C + s, ldc, kc, first, bias ? bias + s : NULL, relu);                   \
    }
PANEL_FN(1) PANEL_FN(2) PANEL_FN(3) PANEL_FN(4) PANEL_FN(5) PANEL_FN(6)
_Static_assert(BQ_PANEL_MR_AVX2 == 6, "one panel function per row count");

void bq_panel_avx2(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc, int mr,
                   int first, const float *bias, int relu)
{
    switch (mr) {
    case 1: panel1(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 2: panel2(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 3: panel3(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 4: panel4(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    case 5: panel5(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    default: panel6(A, lda, Bp, C, ldc, kc, first, bias, relu); break;
    }
    _mm256_zeroupper();
}

/* ---- M = 1: a whole panel row in eight accumulators ---- */

#define EIGHT(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define RDECL(v) __m256 r##v = z;
#define RFMA(v) r##v = _mm256_fmadd_ps(a, _mm256_loadu_ps(b + 8 * (v)), r##v);
#define REND(v)                                                            \
    if (bias) r##v = _mm256_add_ps(r##v, _mm256_loadu_ps(bias + 8 * (v))); \
    if (relu) r##v = _mm256_max_ps(z, r##v);                               \
    _mm256_storeu_ps(c + 8 * (v), r##v);

static void row_panel(const float *x, const float *Bp, int64_t K, float *c, const float *bias, int relu)
{
    const __m256 z = _mm256_setzero_ps();
    EIGHT(RDECL)
    for (int64_t k = 0; k < K; k++) {
        __m256 a = _mm256_broadcast_ss(x + k);
        const float *b = Bp + k * PANEL;
        EIGHT(RFMA)
    }
    EIGHT(REND)
}

void bq_panel_row_avx2(const float *a, const float *Bp, int64_t K, int64_t np, float *c, const float *bias,
                       int relu)
{
    for (int64_t p = 0; p < np; p++)
        row_panel(a, Bp + p * K * PANEL, K, c + p * PANEL, bias ? bias + p * PANEL : NULL, relu);
    _mm256_zeroupper();
}
#endif
