/* blas_bench.c — the OpenBLAS fp32 baseline of bench/kernels.sh: C = A·Wᵀ for A [M, K] and a
 * weight W [N, K] (the layout of a Linear), cblas_sgemv for M = 1 and cblas_sgemm otherwise.
 *
 *   blas_bench M N K THREADS REPEATS [--cold]
 *
 * As `bqc bench`: with --cold the weight is cycled through copies larger than 2x the
 * last-level cache, so every call reads it from DRAM; each sample is at least a pass over the
 * copies and ~30 ms; prints the median as one JSON line. OpenBLAS 0.3.21 picks slow SSE3
 * kernels on this CPU unless OPENBLAS_CORETYPE=SkylakeX is set: the script sets it and says so.
 */
#define _POSIX_C_SOURCE 200112L
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: blas_bench M N K THREADS REPEATS [--cold]\n");
        return 2;
    }
    long M = atol(argv[1]), N = atol(argv[2]), K = atol(argv[3]), T = atol(argv[4]), R = atol(argv[5]);
    int cold = argc > 6 && strcmp(argv[6], "--cold") == 0;
    if (M <= 0 || N <= 0 || K <= 0 || T <= 0 || R <= 0 || R > 100) {
        fprintf(stderr, "blas_bench: M, N, K, THREADS must be positive and REPEATS 1..100\n");
        return 2;
    }
    openblas_set_num_threads((int)T);
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc <= 0) llc = 256L << 20;
    size_t wbytes = (size_t)N * (size_t)K * sizeof(float);
    int ncopy = cold ? (int)((2 * (size_t)llc + (size_t)llc / 8 + wbytes - 1) / wbytes) : 1;
    if (cold && ncopy < 2) ncopy = 2;
    float **W = calloc((size_t)ncopy, sizeof *W), *A = malloc((size_t)(M * K) * sizeof *A), *C = malloc((size_t)(M * N) * sizeof *C);
    if (!W || !A || !C) return 1;
    for (long i = 0; i < M * K; i++) A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (int c = 0; c < ncopy; c++) {
        if (!(W[c] = aligned_alloc(64, (wbytes + 63) & ~(size_t)63))) {
            fprintf(stderr, "blas_bench: out of memory for %d copies\n", ncopy);
            return 1;
        }
        for (size_t i = 0; i < (size_t)N * (size_t)K; i++) W[c][i] = (float)((i * 104729 + (size_t)c) % 2000) / 40000.0f - 0.025f;
    }
    double s[100];
    int calls = ncopy;
    for (int warm = 0; warm < 2; warm++) {   /* warm up, then size the sample */
        double t0 = now();
        for (int i = 0; i < calls; i++) {
            const float *w = W[i % ncopy];
            if (M == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)K, 1.0f, w, (int)K, A, 1, 0.0f, C, 1);
            else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, w, (int)K, 0.0f, C, (int)N);
        }
        double per = (now() - t0) / calls;
        if (warm == 0) while (calls * per < 0.03) calls += ncopy;
    }
    for (int r = 0; r < R; r++) {
        double t0 = now();
        for (int i = 0; i < calls; i++) {
            const float *w = W[i % ncopy];
            if (M == 1) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)N, (int)K, 1.0f, w, (int)K, A, 1, 0.0f, C, 1);
            else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, w, (int)K, 0.0f, C, (int)N);
        }
        s[r] = (now() - t0) / calls;
    }
    qsort(s, (size_t)R, sizeof *s, cmp);
    double t = R % 2 ? s[R / 2] : 0.5 * (s[R / 2 - 1] + s[R / 2]);
    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("{\"M\": %ld, \"N\": %ld, \"K\": %ld, \"threads\": %ld, \"cold\": %s, \"coretype\": \"%s\", \"ms\": %.4f, "
           "\"gflops\": %.2f, \"weight_gbs\": %.3f, \"copies\": %d}\n",
           M, N, K, T, cold ? "true" : "false", core ? core : "", t * 1e3, 2.0 * M * N * K / t * 1e-9, wbytes / t * 1e-9, ncopy);
    return 0;
}
