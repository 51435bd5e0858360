/* matmul_avx2.c — the AVX2+FMA matmul micro-kernel: a 6 x 16 register tile (12 ymm
 * accumulators, two B vectors, one broadcast), compiled with -mavx2 -mfma, chosen at run time.
 *
 * Each accumulator lane is one output's fmaf chain over increasing k (_mm256_fmadd_ps rounds
 * once, like fmaf), so this kernel gives the portable kernel's bits. The tile is spelled out
 * with macros so the accumulators live in registers.
 */
#include "bqcrt_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TILE(X) X(0, 0) X(0, 1) X(1, 0) X(1, 1) X(2, 0) X(2, 1) X(3, 0) X(3, 1) X(4, 0) X(4, 1) X(5, 0) X(5, 1)
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

#define DECL(i, j) __m256 c##i##j = first ? _mm256_setzero_ps() : _mm256_loadu_ps(C + (i) * ldc + 8 * (j));
#define FMA_ROW(i)                                                   \
    {                                                                \
        __m256 a = _mm256_broadcast_ss(A + (i) * lda + k);           \
        c##i##0 = _mm256_fmadd_ps(a, b0, c##i##0);                   \
        c##i##1 = _mm256_fmadd_ps(a, b1, c##i##1);                   \
    }
#define BIAS(i, j) c##i##j = _mm256_add_ps(c##i##j, bias##j);
#define RELU(i, j) c##i##j = _mm256_max_ps(zero, c##i##j);   /* x < 0 ? 0 : x, NaN kept */
#define STORE(i, j) _mm256_storeu_ps(C + (i) * ldc + 8 * (j), c##i##j);

void bq_ukernel_avx2(const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                     int64_t ldc, int64_t kc, int first, const float *bias, int relu)
{
    TILE(DECL)
    for (int64_t k = 0; k < kc; k++) {
        const float *b = B + k * ldb;
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        ROWS(FMA_ROW)
    }
    if (bias) {
        __m256 bias0 = _mm256_loadu_ps(bias), bias1 = _mm256_loadu_ps(bias + 8);
        TILE(BIAS)
    }
    if (relu) {
        __m256 zero = _mm256_setzero_ps();
        TILE(RELU)
    }
    TILE(STORE)
    /* Leave no dirty upper state: SSE code after us (libm) would pay for it, and GCC only
     * inserts this itself when optimising. */
    _mm256_zeroupper();
}
#endif
