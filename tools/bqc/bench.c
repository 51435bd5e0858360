/* bench.c — `bqc bench -f FORMAT [-a INPUT_FORMAT] -m M -n N -k K [--threads T] [--cold]`:
 * times the quantised matmul kernel a plan with these formats gets against the fp32 kernel on
 * the same shape, in the same run.
 *
 * The machine is shared and noisy, so every figure is a median of repeated samples taken in
 * turns (read bandwidth, fp32, quantised, again), and the useful numbers are ratios within
 * one run: the quantised kernel's weight GB/s (bytes of its packed weights per second) as a
 * fraction of the plain streaming read bandwidth measured in the same run with the same
 * threads, and its speed-up over fp32. With --cold the weights are cycled through enough
 * copies to exceed twice the last-level cache, so every call reads them from DRAM; the read
 * bandwidth is measured over the same copies. Without it one copy is reused (cache-warm).
 *
 * The quantised kernel is the runtime's (bq_qk_matmul: its specialisation for the pair, or
 * its generic instantiation), on weights packed by bq_qk_pack; a pair without a fast kernel
 * runs bq_qmatmul on the quantised rows, and says so.
 *
 * `bqc bench --peaks` measures what the kernels are held against: the plain streaming read
 * over one 1 GiB buffer (STREAM-like sum), and the int8 VNNI (vpdpbusd) and fp32 FMA peaks of
 * register-only loops, each with T threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bqcrt.h"
#include "driver.h"

static const char bench_usage[] =
    "usage: bqc bench -f FORMAT [-a INPUT_FORMAT] -m M -n N -k K [--threads T] [--cold] [--repeats R] [--json]\n"
    "       bqc bench --peaks [--threads T] [--repeats R] [--json]";

static int bench_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "bqc: error: %s%s%s%s\n%s\n", what, arg ? " '" : "", arg ? arg : "", arg ? "'" : "", bench_usage);
    return 2;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Last-level cache bytes (sysconf, then sysfs), or 256 MiB if neither knows. */
static size_t llc_bytes(void)
{
#ifdef _SC_LEVEL3_CACHE_SIZE
    long v = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (v > 0) return (size_t)v;
#endif
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    if (f) {
        unsigned long kb = 0;
        char unit = 'K';
        if (fscanf(f, "%lu%c", &kb, &unit) >= 1) {
            fclose(f);
            return kb * (unit == 'M' ? 1048576ul : 1024ul);
        }
        fclose(f);
    }
    return (size_t)256 << 20;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Roughly normal values (a sum of uniforms), scaled like trained weights, a few outliers. */
static void fill(float *x, int64_t n, float scale, uint64_t seed)
{
    uint64_t s = seed | 1;
    for (int64_t i = 0; i < n; i++) {
        float u = 0.0f;
        for (int j = 0; j < 4; j++) u += (float)(rng_next(&s) >> 40) / (float)(1 << 24) - 0.5f;
        x[i] = u * scale * ((rng_next(&s) & 1023) == 0 ? 20.0f : 1.0f);
    }
}

/* ---- the plain streaming read (the bandwidth reference) ---- */

typedef struct ReadJob {
    unsigned char **bufs;
    int nbufs;
    size_t bytes;        /* of each buffer */
    int parts;
    uint64_t sink[64];
} ReadJob;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx512f"))) static uint64_t read_avx512(const unsigned char *p, size_t n)
{
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a = _mm512_add_epi64(a, _mm512_load_si512(p + i));
        b = _mm512_add_epi64(b, _mm512_load_si512(p + i + 64));
        c = _mm512_add_epi64(c, _mm512_load_si512(p + i + 128));
        d = _mm512_add_epi64(d, _mm512_load_si512(p + i + 192));
    }
    /* lanes summed as unsigned: the sum only keeps the loads alive, and wraps (no signed overflow) */
    uint64_t lane[8], sum = 0;
    _mm512_storeu_si512(lane, _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d)));
    for (int i = 0; i < 8; i++) sum += lane[i];
    return sum;
}
#endif

static uint64_t read_plain(const unsigned char *p, size_t n)
{
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= n / 8; i += 4) a += q[i], b += q[i + 1], c += q[i + 2], d += q[i + 3];
    return a + b + c + d;
}

static bq_isa bench_isa;

/* Part i reads its share of every buffer (buffers are 64-byte aligned, shares 256-byte). */
static void read_part(void *ctx, int64_t i)
{
    ReadJob *j = ctx;
    size_t share = (j->bytes / (size_t)j->parts) & ~(size_t)255, off = share * (size_t)i;
    uint64_t s = 0;
    for (int b = 0; b < j->nbufs; b++) {
#if defined(__x86_64__) && defined(__GNUC__)
        if (bench_isa == BQ_ISA_AVX512) {
            s += read_avx512(j->bufs[b] + off, share);
            continue;
        }
#endif
        s += read_plain(j->bufs[b] + off, share);
    }
    j->sink[i] = s;
}

/* ---- machine peaks (--peaks) ---- */

/* Instructions per loop iteration of the peak loops: independent accumulators, enough to
 * cover the latency of two ports (vpdpbusd and vfmadd: latency 4-5, 1-2 per cycle). */
#define PEAK_ACC 12
#define PEAK_ITERS 20000000L

#if defined(__x86_64__) && defined(__GNUC__)
/* vpdpbusd: 16 lanes x 4 u8*s8 multiply-adds = 128 int8 operations per instruction. */
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static int64_t peak_vnni(long iters)
{
    __m512i acc[PEAK_ACC], a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
#pragma GCC unroll 16
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_set1_epi32(i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));   /* keep the loop */
    }
    __m512i s = acc[0];
    for (int i = 1; i < PEAK_ACC; i++) s = _mm512_add_epi32(s, acc[i]);
    uint32_t lane[16], sum = 0;   /* wrapping, as the lanes do */
    _mm512_storeu_si512(lane, s);
    for (int i = 0; i < 16; i++) sum += lane[i];
    return (int64_t)sum;
}
/* vfmadd231ps: 16 lanes x 2 = 32 fp32 operations per instruction. */
__attribute__((target("avx512f,fma"), noinline)) static float peak_fma(long iters)
{
    __m512 acc[PEAK_ACC], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#pragma GCC unroll 16
    for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < PEAK_ACC; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));
    }
    __m512 s = acc[0];
    for (int i = 1; i < PEAK_ACC; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
#endif

typedef struct PeakJob {
    int what;                 /* 0 VNNI, 1 FMA */
    long iters;
    double sink[64];
} PeakJob;

static void peak_part(void *ctx, int64_t i)
{
    PeakJob *j = ctx;
#if defined(__x86_64__) && defined(__GNUC__)
    j->sink[i] = j->what == 0 ? (double)peak_vnni(j->iters) : (double)peak_fma(j->iters);
#else
    j->sink[i] = 0;
#endif
}

/* Read bandwidth over one buffer of >= 1 GiB, VNNI int8 and fp32 FMA peaks, T threads. */
static int run_peaks(int64_t threads, int64_t repeats, int json)
{
    bq_isa isa = bench_isa = bq_isa_detect();
    if (isa != BQ_ISA_AVX512) {
        fprintf(stderr, "bqc: error: --peaks measures AVX-512 VNNI and FMA; this CPU (or BQC_ISA) gives %s\n",
                bq_isa_name(isa));
        return 1;
    }
    bq_pool *pool;
    if (bq_pool_create((int)threads, &pool) != BQ_OK) {
        fprintf(stderr, "bqc: error: cannot create a pool of %lld threads\n", (long long)threads);
        return 1;
    }
    size_t bytes = (size_t)1 << 30;
    unsigned char *buf = aligned_alloc(64, bytes);
    if (!buf) {
        fprintf(stderr, "bqc: error: out of memory for the 1 GiB read buffer\n");
        bq_pool_destroy(pool);
        return 1;
    }
    for (size_t i = 0; i < bytes; i += 4096) memset(buf + i, (int)(i >> 12), 4096);
    double s_bw[1000], s_v[1000], s_f[1000];
    ReadJob rj = {.bufs = &buf, .nbufs = 1, .bytes = bytes, .parts = (int)threads};
    PeakJob pj = {.iters = PEAK_ITERS};
    for (int r = 0; r < repeats; r++) {
        double t0 = now_s();
        bq_pool_run(pool, read_part, &rj, threads);
        s_bw[r] = (double)((bytes / (size_t)threads) & ~(size_t)255) * (double)threads / (now_s() - t0) * 1e-9;
        pj.what = 0;
        t0 = now_s();
        bq_pool_run(pool, peak_part, &pj, threads);
        s_v[r] = 128.0 * PEAK_ACC * (double)PEAK_ITERS * (double)threads / (now_s() - t0) * 1e-9;
        pj.what = 1;
        t0 = now_s();
        bq_pool_run(pool, peak_part, &pj, threads);
        s_f[r] = 32.0 * PEAK_ACC * (double)PEAK_ITERS * (double)threads / (now_s() - t0) * 1e-9;
    }
    double bw = median(s_bw, (int)repeats), v = median(s_v, (int)repeats), f = median(s_f, (int)repeats);
    if (json)
        printf("{\"threads\": %lld, \"repeats\": %lld, \"read_gbs\": %.3f, \"vnni_int8_gops\": %.1f, "
               "\"fma_fp32_gflops\": %.1f, \"read_bytes\": %zu}\n",
               (long long)threads, (long long)repeats, bw, v, f, bytes);
    else
        printf("bqc bench --peaks: %lld thread%s (medians of %lld)\n  read bandwidth (sum over 1 GiB): %.2f GB/s\n"
               "  int8 VNNI peak (vpdpbusd): %.1f GOP/s\n  fp32 FMA peak (vfmadd231ps zmm): %.1f GFLOP/s\n",
               (long long)threads, threads > 1 ? "s" : "", (long long)repeats, bw, v, f);
    free(buf);
    bq_pool_destroy(pool);
    return 0;
}

/* ---- the two kernels ---- */

typedef struct Bench {
    bq_isa isa;
    bq_pool *pool;
    bq_format fa, fw, f32;
    int fast;                    /* bq_qk kernel (else bq_qmatmul on rows) */
    int64_t M, N, K;
    float *A, *bias, *C;
    unsigned char **qcopy;       /* quantised weights (packed or rows), ncq copies */
    float **fcopy;               /* fp32 packed panels, ncf copies */
    int ncq, ncf;
    size_t qbytes, fbytes;
} Bench;

static int run_quant(const Bench *b, int copy)
{
    bq_status st = b->fast ? bq_qk_matmul(b->isa, b->pool, &b->fa, b->A, b->K, &b->fw, b->qcopy[copy], b->bias, 0, b->C,
                                          b->N, b->M, b->N, b->K)
                           : bq_qmatmul(b->isa, b->pool, &b->fa, b->A, b->K, &b->fw, b->qcopy[copy], b->bias, 0, b->C,
                                        b->N, b->M, b->N, b->K);
    return st == BQ_OK;
}

/* Seconds per call: `calls` calls cycling through the copies. */
static double time_quant(const Bench *b, int calls)
{
    double t0 = now_s();
    for (int i = 0; i < calls; i++)
        if (!run_quant(b, i % b->ncq)) return -1.0;
    return (now_s() - t0) / calls;
}

static double time_f32(const Bench *b, int calls)
{
    double t0 = now_s();
    for (int i = 0; i < calls; i++)
        bq_matmul_f32_packed(b->isa, b->pool, b->A, b->K, b->fcopy[i % b->ncf], b->bias, 0, b->C, b->N, b->M, b->N,
                             b->K);
    return (now_s() - t0) / calls;
}

static const char *kernel_name(const bq_qk_spec *s)
{
    static char buf[128];
    if (!s->kind) return "bq_qmatmul (no fast kernel for this pair)";
    snprintf(buf, sizeof buf, "%s, %s weights%s, block %d", s->kind == 1 ? "integer vpdpbusd" : "fp32 chain",
             s->cls == 4 ? "4-bit" : s->cls == 6 ? "6-bit (4+2 planes)" : "8-bit", s->lut ? " via table" : "",
             s->block);
    return buf;
}

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || x <= 0) return 0;
    *v = x;
    return 1;
}

int cmd_bench(int argc, char **argv)
{
    const char *fname = NULL, *aname = NULL;
    int64_t M = 0, N = 0, K = 0, threads = 1, repeats = 7;
    int cold = 0, json = 0, peaks = 0;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = driver_flag_value(argc, argv, &i, "-f", &missing))) fname = v;
        else if ((v = driver_flag_value(argc, argv, &i, "-a", &missing))) aname = v;
        else if ((v = driver_flag_value(argc, argv, &i, "-m", &missing))) {
            if (!parse_i64(v, &M)) return bench_usage_error("-m needs a positive integer, not", v);
        } else if ((v = driver_flag_value(argc, argv, &i, "-n", &missing))) {
            if (!parse_i64(v, &N)) return bench_usage_error("-n needs a positive integer, not", v);
        } else if ((v = driver_flag_value(argc, argv, &i, "-k", &missing))) {
            if (!parse_i64(v, &K)) return bench_usage_error("-k needs a positive integer, not", v);
        } else if ((v = driver_flag_value(argc, argv, &i, "--threads", &missing))) {
            if (!parse_i64(v, &threads) || threads > 256) return bench_usage_error("--threads needs 1..256, not", v);
        } else if ((v = driver_flag_value(argc, argv, &i, "--repeats", &missing))) {
            if (!parse_i64(v, &repeats) || repeats > 1000) return bench_usage_error("--repeats needs 1..1000, not", v);
        } else if (strcmp(argv[i], "--cold") == 0) cold = 1;
        else if (strcmp(argv[i], "--peaks") == 0) peaks = 1;
        else if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("%s\n", bench_usage);
            return 0;
        } else if (missing) return bench_usage_error("missing value after", argv[i]);
        else return bench_usage_error("unknown option", argv[i]);
        if (missing) return bench_usage_error("missing value after", argv[i]);
    }
    if (peaks) {
        if (fname || aname || M || N || K || cold) return bench_usage_error("--peaks takes only --threads, --repeats and --json", NULL);
        return run_peaks(threads, repeats, json);
    }
    if (!fname) return bench_usage_error("no weight format (-f)", NULL);
    if (!M || !N || !K) return bench_usage_error("the shape needs -m, -n and -k", NULL);
    Bench b = {0};
    char why[160];
    if (bq_format_parse(fname, strlen(fname), 0, &b.fw, why, sizeof why) != BQ_OK)
        return bench_usage_error(why, NULL);
    if (bq_format_parse(aname ? aname : fname, strlen(aname ? aname : fname), 0, &b.fa, why, sizeof why) != BQ_OK)
        return bench_usage_error(why, NULL);
    if (b.fw.block == 1) return bench_usage_error("the weight format must be a block format, not", fname);
    if (b.fa.block != 1 && b.fa.block != b.fw.block) return bench_usage_error("the two formats' blocks differ:", aname);
    b.f32 = (bq_format){BQ_FAM_FP32, 32, 0, 1};
    b.isa = bench_isa = bq_isa_detect();
    b.M = M, b.N = N, b.K = K;
    if (bq_pool_create((int)threads, &b.pool) != BQ_OK) {
        fprintf(stderr, "bqc: error: cannot create a pool of %lld threads\n", (long long)threads);
        return 1;
    }
    bq_qk_spec spec = bq_qk_spec_of(&b.fa, &b.fw);
    b.fast = spec.kind != 0;
    size_t llc = llc_bytes(), target = cold ? 2 * llc + (llc >> 3) : 0;

    /* weights: f32 [N, K], quantised rows, packed; fp32 panels; activations */
    int ok = 1;
    float *W = malloc((size_t)(N * K) * sizeof *W);
    b.A = malloc((size_t)(M * K) * sizeof *b.A);
    b.bias = malloc((size_t)N * sizeof *b.bias);
    b.C = malloc((size_t)(M * N) * sizeof *b.C);
    size_t rows_bytes = (size_t)N * bq_format_bytes(&b.fw, K);
    unsigned char *rows = malloc(rows_bytes + 1);
    ok = W && b.A && b.bias && b.C && rows;
    if (ok) {
        fill(W, N * K, 0.05f, 1);
        fill(b.A, M * K, 1.0f, 2);
        fill(b.bias, N, 0.1f, 3);
        ok = bq_qpack_weights(&b.fw, W, K, 1, N, K, rows) == BQ_OK;
    }
    b.qbytes = b.fast ? bq_qk_packed_bytes(&b.fw, N, K) : rows_bytes;
    b.fbytes = bq_pack_f32_bytes(N, K);
    b.ncq = cold ? (int)((target + b.qbytes - 1) / b.qbytes) : 1;
    b.ncf = cold ? (int)((target + b.fbytes - 1) / b.fbytes) : 1;
    if (b.ncq < 2 && cold) b.ncq = 2;
    if (b.ncf < 2 && cold) b.ncf = 2;
    b.qcopy = calloc((size_t)b.ncq, sizeof *b.qcopy);
    b.fcopy = calloc((size_t)b.ncf, sizeof *b.fcopy);
    ok = ok && b.qcopy && b.fcopy;
    for (int i = 0; ok && i < b.ncq; i++) {
        ok = (b.qcopy[i] = aligned_alloc(64, (b.qbytes + 63) & ~(size_t)63)) != NULL;
        if (!ok) break;
        if (i) memcpy(b.qcopy[i], b.qcopy[0], b.qbytes);
        else if (!b.fast) memcpy(b.qcopy[0], rows, rows_bytes);
        else {
            bq_status st = bq_qk_pack(&b.fw, rows, N, K, b.qcopy[0]);
            if (st != BQ_OK) {
                fprintf(stderr, "bqc: error: packing the weights: %s\n", bq_status_str(st));
                ok = 0;
            }
        }
    }
    for (int i = 0; ok && i < b.ncf; i++) {
        ok = (b.fcopy[i] = aligned_alloc(64, (b.fbytes + 63) & ~(size_t)63)) != NULL;
        if (!ok) break;
        if (i) memcpy(b.fcopy[i], b.fcopy[0], b.fbytes);
        else bq_pack_f32(W, K, 1, N, K, b.fcopy[0]);
    }
    free(rows);
    free(W);
    if (!ok) {
        fprintf(stderr, "bqc: error: out of memory for %s weights (%d + %d copies)\n", cold ? "cold" : "warm", b.ncq, b.ncf);
    } else if (!run_quant(&b, 0)) {
        fprintf(stderr, "bqc: error: the quantised matmul failed\n");
        ok = 0;
    }

    double tq = 0, tf = 0, bw = 0, s_q[1000], s_f[1000], s_bw[1000];
    int cq = 1, cf = 1;
    if (ok) {
        /* calls per sample: a pass over the copies, and at least ~30 ms */
        double eq = time_quant(&b, 1), ef = time_f32(&b, 1);
        cq = b.ncq, cf = b.ncf;
        while (cq * eq < 0.03) cq += b.ncq;
        while (cf * ef < 0.03) cf += b.ncf;
        ReadJob rj = {.bufs = b.qcopy, .nbufs = b.ncq, .bytes = b.qbytes, .parts = (int)threads};
        for (int r = 0; r < repeats; r++) {
            double t0 = now_s();
            bq_pool_run(b.pool, read_part, &rj, threads);
            double bytes = (double)((b.qbytes / (size_t)threads) & ~(size_t)255) * (double)threads * b.ncq;
            s_bw[r] = bytes / (now_s() - t0) * 1e-9;
            s_f[r] = time_f32(&b, cf);
            s_q[r] = time_quant(&b, cq);
        }
        tq = median(s_q, (int)repeats), tf = median(s_f, (int)repeats), bw = median(s_bw, (int)repeats);
    }
    if (ok) {
        char an[64], wn[64];
        bq_format_name(&b.fa, an, sizeof an);
        bq_format_name(&b.fw, wn, sizeof wn);
        double ops = 2.0 * (double)M * (double)N * (double)K;
        double gq = ops / tq * 1e-9, gf = ops / tf * 1e-9, wq = (double)b.qbytes / tq * 1e-9, wf = (double)b.fbytes / tf * 1e-9;
        if (json) {
            printf("{\"weight\": \"%s\", \"input\": \"%s\", \"M\": %lld, \"N\": %lld, \"K\": %lld, \"threads\": %lld, "
                   "\"cold\": %s, \"isa\": \"%s\", \"kernel\": \"%s\", \"repeats\": %lld, \"llc_bytes\": %zu, "
                   "\"quant_ms\": %.4f, \"fp32_ms\": %.4f, \"quant_gops\": %.2f, \"fp32_gops\": %.2f, "
                   "\"quant_weight_gbs\": %.3f, \"fp32_weight_gbs\": %.3f, \"read_gbs\": %.3f, "
                   "\"quant_bytes\": %zu, \"fp32_bytes\": %zu, \"quant_bw_fraction\": %.3f, \"fp32_bw_fraction\": %.3f, "
                   "\"speedup\": %.3f}\n",
                   wn, an, (long long)M, (long long)N, (long long)K, (long long)threads, cold ? "true" : "false",
                   bq_isa_name(b.isa), kernel_name(&spec), (long long)repeats, llc, tq * 1e3, tf * 1e3, gq, gf, wq, wf, bw,
                   b.qbytes, b.fbytes, wq / bw, wf / bw, tf / tq);
        } else {
            printf("bqc bench: weights %s, inputs %s, M=%lld N=%lld K=%lld, %lld thread%s, %s, %s\n", wn, an, (long long)M,
                   (long long)N, (long long)K, (long long)threads, threads > 1 ? "s" : "", bq_isa_name(b.isa),
                   cold ? "cold" : "warm (one copy reused)");
            if (cold)
                printf("  cold: weights cycled through %d + %d copies (%.0f + %.0f MiB, last-level cache %.0f MiB)\n", b.ncq,
                       b.ncf, (double)b.qbytes * b.ncq / 1048576.0, (double)b.fbytes * b.ncf / 1048576.0,
                       (double)llc / 1048576.0);
            printf("  quantised kernel: %s\n", kernel_name(&spec));
            printf("  %-10s %12s %10s %12s %14s %9s\n", "kernel", "ms/call", "GOP/s", "weight GB/s", "weight bytes", "speed-up");
            printf("  %-10s %12.4f %10.2f %12.2f %14zu %8.2fx\n", "fp32", tf * 1e3, gf, wf, b.fbytes, 1.0);
            printf("  %-10s %12.4f %10.2f %12.2f %14zu %8.2fx\n", wn, tq * 1e3, gq, wq, b.qbytes, tf / tq);
            printf("  read bandwidth (plain streaming read, same run, %lld thread%s): %.2f GB/s\n", (long long)threads,
                   threads > 1 ? "s" : "", bw);
            printf("  weight GB/s / read bandwidth: %s %.2f, fp32 %.2f%s\n", wn, wq / bw, wf / bw,
                   cold ? "" : " (warm: the weights may come from cache)");
            printf("  medians of %lld samples of %d and %d calls\n", (long long)repeats, cq, cf);
        }
    }
    for (int i = 0; b.qcopy && i < b.ncq; i++) free(b.qcopy[i]);
    for (int i = 0; b.fcopy && i < b.ncf; i++) free(b.fcopy[i]);
    free(b.qcopy), free(b.fcopy), free(b.A), free(b.bias), free(b.C);
    bq_pool_destroy(b.pool);
    return ok ? 0 : 1;
}
