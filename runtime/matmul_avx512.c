/* matmul_avx512.c — the AVX-512 matmul micro-kernel: a 6 x 64 register tile (24 zmm
 * accumulators, four B vectors, one broadcast), compiled with -mavx512f and chosen at run time.
 *
 * Each accumulator lane is one output's fmaf chain over increasing k (_mm512_fmadd_ps rounds
 * once, like fmaf), so this kernel gives the portable kernel's bits. The tile is spelled out
 * with macros so the accumulators live in registers at any optimisation level GCC accepts.
 */
#include "bqcrt_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TILE(X) \
    X(0, 0) X(0, 1) X(0, 2) X(0, 3) X(1, 0) X(1, 1) X(1, 2) X(1, 3) X(2, 0) X(2, 1) X(2, 2) X(2, 3) \
    X(3, 0) X(3, 1) X(3, 2) X(3, 3) X(4, 0) X(4, 1) X(4, 2) X(4, 3) X(5, 0) X(5, 1) X(5, 2) X(5, 3)
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

#define DECL(i, j) __m512 c##i##j = first ? _mm512_setzero_ps() : _mm512_loadu_ps(C + (i) * ldc + 16 * (j));
#define FMA_ROW(i)                                                   \
    {                                                                \
        __m512 a = _mm512_set1_ps(A[(i) * lda + k]);                 \
        c##i##0 = _mm512_fmadd_ps(a, b0, c##i##0);                   \
        c##i##1 = _mm512_fmadd_ps(a, b1, c##i##1);                   \
        c##i##2 = _mm512_fmadd_ps(a, b2, c##i##2);                   \
        c##i##3 = _mm512_fmadd_ps(a, b3, c##i##3);                   \
    }
#define BIAS(i, j) c##i##j = _mm512_add_ps(c##i##j, bias##j);
#define RELU(i, j) c##i##j = _mm512_max_ps(zero, c##i##j);   /* x < 0 ? 0 : x, NaN kept */
#define STORE(i, j) _mm512_storeu_ps(C + (i) * ldc + 16 * (j), c##i##j);

void bq_ukernel_avx512(const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                       int64_t ldc, int64_t kc, int first, const float *bias, int relu)
{
    TILE(DECL)
    for (int64_t k = 0; k < kc; k++) {
        const float *b = B + k * ldb;
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        __m512 b2 = _mm512_loadu_ps(b + 32), b3 = _mm512_loadu_ps(b + 48);
        ROWS(FMA_ROW)
    }
    if (bias) {
        __m512 bias0 = _mm512_loadu_ps(bias), bias1 = _mm512_loadu_ps(bias + 16);
        __m512 bias2 = _mm512_loadu_ps(bias + 32), bias3 = _mm512_loadu_ps(bias + 48);
        TILE(BIAS)
    }
    if (relu) {
        __m512 zero = _mm512_setzero_ps();
        TILE(RELU)
    }
    TILE(STORE)
    /* Leave no dirty upper state: SSE code after us (libm) would pay for it, and GCC only
     * inserts this itself when optimising. */
    _mm256_zeroupper();
}
#endif
