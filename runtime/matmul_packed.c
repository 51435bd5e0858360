/* matmul_packed.c — fp32 matmul on weights packed once into 64-column panels.
 *
 * Generated code knows its weights at compile time, so it packs them once (bq_pack_f32) into
 * the layout the kernels read: panel p is K rows of 64 consecutive columns, one contiguous run.
 * A decode step (M = 1) is then a pure stream over the panels, several at a time, and a
 * prefill (M > 1) reuses each K block of a panel, held in L1, across register tiles of rows.
 * The numerics are bq_matmul_f32's: one fmaf chain per output over increasing k from 0.0f, then
 * + bias, then relu. K blocks only pause a chain (the partial sum waits in C), panels only
 * choose which outputs are computed together, and the pool hands out whole panels, so neither
 * blocking nor threads change a bit. Partial (tail) panels run the same kernels into a
 * 64-wide buffer. The portable kernels here are the plain oracle for the SIMD ones.
 */
#include <math.h>
#include <string.h>

#include "bqcrt_int.h"

enum { PANEL = BQ_F32_PANEL, PACKED_KC = 256 /* K block of a panel (64 KiB) reused across row tiles */ };

_Static_assert(BQ_PANEL_MR_PORTABLE <= BQ_PANEL_MR_MAX && BQ_PANEL_MR_AVX2 <= BQ_PANEL_MR_MAX &&
                   BQ_PANEL_MR_AVX512 <= BQ_PANEL_MR_MAX, "tail buffer");

size_t bq_pack_f32_bytes(int64_t N, int64_t K)
{
    if (N <= 0 || K <= 0) return 0;
    return (size_t)((N + PANEL - 1) / PANEL) * (size_t)K * PANEL * sizeof(float);
}

void bq_pack_f32(const float *B, int64_t ldb, int trans_b, int64_t N, int64_t K, float *packed)
{
    for (int64_t p = 0; p * PANEL < N; p++) {
        float *dst = packed + p * K * PANEL;
        int64_t n0 = p * PANEL, nr = N - n0 < PANEL ? N - n0 : PANEL;
        if (trans_b) {   /* rows of B are columns here: read each sequentially */
            for (int64_t j = 0; j < nr; j++)
                for (int64_t k = 0; k < K; k++) dst[k * PANEL + j] = B[(n0 + j) * ldb + k];
        } else {
            for (int64_t k = 0; k < K; k++) memcpy(dst + k * PANEL, B + k * ldb + n0, (size_t)nr * sizeof(float));
        }
        for (int64_t k = 0; k < K && nr < PANEL; k++)
            for (int64_t j = nr; j < PANEL; j++) dst[k * PANEL + j] = 0.0f;
    }
}

/* ---- portable kernels (the oracle) ---- */

void bq_panel_portable(const float *A, int64_t lda, const float *Bp, float *C, int64_t ldc, int64_t kc, int mr,
                       int first, const float *bias, int relu)
{
    float c[BQ_PANEL_MR_PORTABLE][PANEL];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < PANEL; j++) c[i][j] = first ? 0.0f : C[i * ldc + j];
    for (int64_t k = 0; k < kc; k++) {
        const float *b = Bp + k * PANEL;
        for (int i = 0; i < mr; i++) {
            float a = A[i * lda + k];
            for (int j = 0; j < PANEL; j++) c[i][j] = fmaf(a, b[j], c[i][j]);
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < PANEL; j++) {
            float x = c[i][j];
            if (bias) x = x + bias[j];
            if (relu) x = x < 0.0f ? 0.0f : x;
            C[i * ldc + j] = x;
        }
}

void bq_panel_row_portable(const float *a, const float *Bp, int64_t K, int64_t np, float *c, const float *bias,
                           int relu)
{
    for (int64_t p = 0; p < np; p++)
        bq_panel_portable(a, 0, Bp + p * K * PANEL, c + p * PANEL, PANEL, K, 1, 1, bias ? bias + p * PANEL : NULL,
                          relu);
}

/* ---- driver ---- */

typedef struct panel_kernels {
    bq_panel_fn panel;
    bq_panel_row_fn row;
    int mr;
} panel_kernels;

static panel_kernels kernels_for(bq_isa isa)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa == BQ_ISA_AVX512) return (panel_kernels){bq_panel_avx512, bq_panel_row_avx512, BQ_PANEL_MR_AVX512};
    if (isa == BQ_ISA_AVX2) return (panel_kernels){bq_panel_avx2, bq_panel_row_avx2, BQ_PANEL_MR_AVX2};
#else
    (void)isa;
#endif
    return (panel_kernels){bq_panel_portable, bq_panel_row_portable, BQ_PANEL_MR_PORTABLE};
}

typedef struct packed_job {
    panel_kernels pk;
    const float *A, *Bp, *bias;
    float *C;
    int64_t lda, ldc, M, N, K;
    int64_t chunk;   /* panels per pool index */
    int relu;
} packed_job;

/* A whole panel, M > 1: K blocks outside, so a block stays in L1 across the row tiles. (The
 * hardware prefetcher keeps up with the one sequential panel stream; software prefetches of
 * the next block measured slower.) */
static void full_panel(const packed_job *j, int64_t p)
{
    const float *bp = j->Bp + p * j->K * PANEL, *bias = j->bias ? j->bias + p * PANEL : NULL;
    float *c = j->C + p * PANEL;
    int64_t kb = j->M <= j->pk.mr ? j->K : PACKED_KC;
    for (int64_t k0 = 0; k0 < j->K; k0 += kb) {
        int64_t kc = j->K - k0 < kb ? j->K - k0 : kb;
        int last = k0 + kc == j->K;
        for (int64_t i0 = 0; i0 < j->M; i0 += j->pk.mr) {
            int mr = (int)(j->M - i0 < j->pk.mr ? j->M - i0 : j->pk.mr);
            j->pk.panel(j->A + i0 * j->lda + k0, j->lda, bp + k0 * PANEL, c + i0 * j->ldc, j->ldc, kc, mr, k0 == 0,
                        last ? bias : NULL, last && j->relu);
        }
    }
}

/* The last panel when N is not a multiple of 64: whole K per row tile, into a 64-wide buffer. */
static void tail_panel(const packed_job *j, int64_t p)
{
    float ct[BQ_PANEL_MR_MAX * PANEL], bt[PANEL];
    int64_t n0 = p * PANEL, nr = j->N - n0;
    if (j->bias) {
        memset(bt, 0, sizeof bt);
        memcpy(bt, j->bias + n0, (size_t)nr * sizeof(float));
    }
    for (int64_t i0 = 0; i0 < j->M; i0 += j->pk.mr) {
        int mr = (int)(j->M - i0 < j->pk.mr ? j->M - i0 : j->pk.mr);
        j->pk.panel(j->A + i0 * j->lda, j->lda, j->Bp + p * j->K * PANEL, ct, PANEL, j->K, mr, 1,
                    j->bias ? bt : NULL, j->relu);
        for (int i = 0; i < mr; i++) memcpy(j->C + (i0 + i) * j->ldc + n0, ct + i * PANEL, (size_t)nr * sizeof(float));
    }
}

static void panels(const packed_job *j, int64_t p0, int64_t p1)
{
    int64_t full = j->N / PANEL, end = p1 < full ? p1 : full;
    if (j->M == 1 && end > p0)
        j->pk.row(j->A, j->Bp + p0 * j->K * PANEL, j->K, end - p0, j->C + p0 * PANEL,
                  j->bias ? j->bias + p0 * PANEL : NULL, j->relu);
    else
        for (int64_t p = p0; p < end; p++) full_panel(j, p);
    if (end < p1) tail_panel(j, end);
}

static void packed_part(void *ctx, int64_t i)
{
    const packed_job *j = ctx;
    int64_t np = (j->N + PANEL - 1) / PANEL, p0 = i * j->chunk;
    panels(j, p0, p0 + j->chunk < np ? p0 + j->chunk : np);
}

void bq_matmul_f32_packed(bq_isa isa, bq_pool *pool, const float *A, int64_t lda, const float *Bp,
                          const float *bias, int relu, float *C, int64_t ldc, int64_t M, int64_t N, int64_t K)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {   /* no panels to read: C = relu(0 + bias) */
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                float x = 0.0f;
                if (bias) x = x + bias[n];
                if (relu) x = x < 0.0f ? 0.0f : x;
                C[m * ldc + n] = x;
            }
        return;
    }
    int64_t np = (N + PANEL - 1) / PANEL, threads = bq_pool_threads(pool);
    packed_job j = {kernels_for(isa), A, Bp, bias, C, lda, ldc, M, N, K, np, relu};
    if (threads == 1 || np == 1) {
        panels(&j, 0, np);
        return;
    }
    /* About four chunks per thread: balance on a shared machine, long runs for the prefetcher. */
    int64_t parts = 4 * threads;
    j.chunk = (np + parts - 1) / parts;
    bq_pool_run(pool, packed_part, &j, (np + j.chunk - 1) / j.chunk);
}
