/* matmul.c — fp32 matrix multiply: blocking, packing and edges around per-ISA micro-kernels.
 *
 * The numerics contract (bqcrt.h) fixes each output's operation sequence: one fmaf chain over
 * increasing k from 0.0f, then + bias, then relu. Every path may therefore only vectorise
 * across n and split k into blocks whose partial sums wait in C — the next block resumes the
 * same chain, so blocking changes speed, never bits. B panels are packed into a W-column
 * [kc][W] buffer (for trans_b that is a transpose; a full non-transposed panel is read in
 * place), edge tiles run the same kernel on zero-padded copies, and the portable kernel is
 * the plain oracle the SIMD ones are tested against. A pool splits N into column ranges of
 * whole tiles, each with its own packing buffer; outputs never span two ranges, so the
 * thread count cannot change a bit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt_int.h"

static inline float relu_f32(float x) { return x < 0.0f ? 0.0f : x; }

void bq_ukernel_portable(const float *A, int64_t lda, const float *B, int64_t ldb, float *C,
                         int64_t ldc, int64_t kc, int first, const float *bias, int relu)
{
    enum { MR = BQ_PORTABLE_MR, W = BQ_PORTABLE_W };
    float c[MR][W];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < W; j++) c[i][j] = first ? 0.0f : C[i * ldc + j];
    for (int64_t k = 0; k < kc; k++) {
        const float *b = B + k * ldb;
        for (int i = 0; i < MR; i++) {
            float a = A[i * lda + k];
            for (int j = 0; j < W; j++) c[i][j] = fmaf(a, b[j], c[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < W; j++) {
            float x = c[i][j];
            if (bias) x = x + bias[j];
            if (relu) x = relu_f32(x);
            C[i * ldc + j] = x;
        }
}

_Static_assert(BQ_PORTABLE_W % 8 == 0 && BQ_AVX2_W % 8 == 0 && BQ_AVX512_W % 8 == 0, "pack_b works in 8s");
_Static_assert(BQ_PORTABLE_MR <= BQ_MAX_MR && BQ_AVX2_MR <= BQ_MAX_MR && BQ_AVX512_MR <= BQ_MAX_MR, "tile buffers");

/* No cpuid here: the caller's isa comes from bq_isa_detect (once per run or model), and a
 * check per call costs more than a small matmul on a virtual machine. */
static bq_ukernel ukernel_for(bq_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa == BQ_ISA_AVX512) return (bq_ukernel){bq_ukernel_avx512, BQ_AVX512_MR, BQ_AVX512_W};
    if (isa == BQ_ISA_AVX2) return (bq_ukernel){bq_ukernel_avx2, BQ_AVX2_MR, BQ_AVX2_W};
#else
    (void)isa;
#endif
    return (bq_ukernel){bq_ukernel_portable, BQ_PORTABLE_MR, BQ_PORTABLE_W};
}

/* B[k0.., n0..] as kc rows of w floats, columns past nr zeroed. */
static void pack_b(const float *B, int64_t ldb, int trans_b, int64_t k0, int64_t kc, int64_t n0,
                   int64_t nr, int w, float *dst)
{
    if (trans_b) {
        /* 8 rows of B at a time: 8 sequential read streams, and each k writes 32 contiguous
         * bytes, instead of one scattered store per element. */
        for (int64_t j0 = 0; j0 < w; j0 += 8) {
            const float *src = B + (n0 + j0) * ldb + k0;
            if (j0 + 8 <= nr) {
                for (int64_t k = 0; k < kc; k++)
                    for (int64_t j = 0; j < 8; j++) dst[k * w + j0 + j] = src[j * ldb + k];
                continue;
            }
            for (int64_t k = 0; k < kc; k++)
                for (int64_t j = j0; j < j0 + 8; j++) dst[k * w + j] = j < nr ? B[(n0 + j) * ldb + k0 + k] : 0.0f;
        }
        return;
    }
    for (int64_t k = 0; k < kc; k++) {
        memcpy(dst + k * w, B + (k0 + k) * ldb + n0, (size_t)nr * sizeof(float));
        for (int64_t j = nr; j < w; j++) dst[k * w + j] = 0.0f;
    }
}

/* One mr x nr tile; partial tiles run the full kernel on zero-padded copies. */
static void tile(const bq_ukernel *uk, const float *A, int64_t lda, const float *bp, int64_t ldbp,
                 float *C, int64_t ldc, int64_t mr, int64_t nr, int64_t kc, int first,
                 const float *bias, int relu)
{
    if (mr == uk->mr && nr == uk->w) {
        uk->fn(A, lda, bp, ldbp, C, ldc, kc, first, bias, relu);
        return;
    }
    float at[BQ_MAX_MR * BQ_KC], ct[BQ_MAX_MR * BQ_MAX_W], bt[BQ_MAX_W];
    const float *a = A;
    int64_t la = lda;
    if (mr < uk->mr) {
        memset(at, 0, sizeof(float) * (size_t)(uk->mr * kc));
        for (int64_t i = 0; i < mr; i++) memcpy(at + i * kc, A + i * lda, (size_t)kc * sizeof(float));
        a = at;
        la = kc;
    }
    memset(ct, 0, sizeof ct);
    if (!first)
        for (int64_t i = 0; i < mr; i++) memcpy(ct + i * uk->w, C + i * ldc, (size_t)nr * sizeof(float));
    if (bias) {
        memset(bt, 0, sizeof bt);
        memcpy(bt, bias, (size_t)nr * sizeof(float));
    }
    uk->fn(a, la, bp, ldbp, ct, uk->w, kc, first, bias ? bt : NULL, relu);
    for (int64_t i = 0; i < mr; i++) memcpy(C + i * ldc, ct + i * uk->w, (size_t)nr * sizeof(float));
}

/* The same sequence without packing, when the packing buffer cannot be allocated. */
static void matmul_unpacked(const float *A, int64_t lda, const float *B, int64_t ldb, int trans_b,
                            const float *bias, int relu, float *C, int64_t ldc, int64_t M, int64_t N,
                            int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++)
                acc = fmaf(A[m * lda + k], trans_b ? B[n * ldb + k] : B[k * ldb + n], acc);
            if (bias) acc = acc + bias[n];
            if (relu) acc = relu_f32(acc);
            C[m * ldc + n] = acc;
        }
}

/* Columns [n_begin, n_end) of C, through the K, M and N blocks, with its own packing buffer. */
static void matmul_cols(const bq_ukernel *uk, const float *A, int64_t lda, const float *B, int64_t ldb,
                        int trans_b, const float *bias, int relu, float *C, int64_t ldc, int64_t M,
                        int64_t n_begin, int64_t n_end, int64_t K)
{
    float *pack = K > 0 ? aligned_alloc(64, sizeof(float) * BQ_KC * (size_t)uk->w) : NULL;
    if (!pack) {   /* K == 0 lands here too: C = epilogue(0) */
        const float *b = K <= 0 ? B : trans_b ? B + n_begin * ldb : B + n_begin;   /* B may be NULL when K == 0 */
        matmul_unpacked(A, lda, b, ldb, trans_b, bias ? bias + n_begin : NULL, relu, C + n_begin, ldc, M,
                        n_end - n_begin, K);
        return;
    }
    for (int64_t k0 = 0; k0 < K; k0 += BQ_KC) {
        int64_t kc = K - k0 < BQ_KC ? K - k0 : BQ_KC;
        int first = k0 == 0, last = k0 + kc == K;
        for (int64_t m0 = 0; m0 < M; m0 += BQ_MC) {
            int64_t mc = M - m0 < BQ_MC ? M - m0 : BQ_MC;
            for (int64_t n0 = n_begin; n0 < n_end; n0 += uk->w) {
                int64_t nr = n_end - n0 < uk->w ? n_end - n0 : uk->w;
                const float *bp = pack;
                int64_t ldbp = uk->w;
                if (!trans_b && nr == uk->w) {
                    bp = B + k0 * ldb + n0;
                    ldbp = ldb;
                } else {
                    pack_b(B, ldb, trans_b, k0, kc, n0, nr, uk->w, pack);
                }
                const float *bi = last && bias ? bias + n0 : NULL;
                for (int64_t i0 = m0; i0 < m0 + mc; i0 += uk->mr) {
                    int64_t mr = m0 + mc - i0 < uk->mr ? m0 + mc - i0 : uk->mr;
                    tile(uk, A + i0 * lda + k0, lda, bp, ldbp, C + i0 * ldc + n0, ldc, mr, nr, kc, first, bi,
                         last && relu);
                }
            }
        }
    }
    free(pack);
}

typedef struct matmul_job {
    bq_ukernel uk;
    const float *A, *B, *bias;
    float *C;
    int64_t lda, ldb, ldc, M, N, K, cols;   /* cols: columns per pool index, a multiple of uk.w */
    int trans_b, relu;
} matmul_job;

static void matmul_part(void *ctx, int64_t i)
{
    const matmul_job *j = ctx;
    int64_t n0 = i * j->cols, n1 = n0 + j->cols < j->N ? n0 + j->cols : j->N;
    matmul_cols(&j->uk, j->A, j->lda, j->B, j->ldb, j->trans_b, j->bias, j->relu, j->C, j->ldc, j->M, n0, n1, j->K);
}

void bq_matmul_f32(bq_isa isa, bq_pool *pool, const float *A, int64_t lda, const float *B, int64_t ldb,
                   int trans_b, const float *bias, int relu, float *C, int64_t ldc, int64_t M, int64_t N,
                   int64_t K)
{
    if (M <= 0 || N <= 0) return;
    bq_ukernel uk = ukernel_for(isa);
    int threads = bq_pool_threads(pool);
    if (threads == 1) {
        matmul_cols(&uk, A, lda, B, ldb, trans_b, bias, relu, C, ldc, M, 0, N, K);
        return;
    }
    /* A few column ranges per thread (each packs on its own), whole register tiles each. */
    int64_t tiles = (N + uk.w - 1) / uk.w, parts = 2 * (int64_t)threads;
    int64_t per = (tiles + parts - 1) / parts;
    matmul_job j = {uk, A, B, bias, C, lda, ldb, ldc, M, N, K, per * uk.w, trans_b, relu};
    bq_pool_run(pool, matmul_part, &j, (N + j.cols - 1) / j.cols);
}
