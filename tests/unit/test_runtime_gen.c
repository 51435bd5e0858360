/* test_runtime_gen.c — the runtime pieces generated code uses: pool, packed matmul, cached
 * attention, weights file.
 *
 * The contracts are exact, so the checks are too: the pool must run every index exactly once
 * (counted per index), the packed matmul must equal bq_matmul_f32 on the unpacked weights bit
 * for bit on every ISA path and thread count, the cached attention must equal bq_attention_f32
 * bit for bit through a whole decode, and every way a weights file can be wrong must give its
 * own status.
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "bqcrt.h"

enum { MAX_THREADS = 4 };

static float *rand_buf(uint64_t *s, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = test_rng_float(s);
    return p;
}

/* Pools of 1..MAX_THREADS threads (index = threads; [0] is NULL: no pool). */
typedef struct Pools { bq_pool *p[MAX_THREADS + 1]; } Pools;
static Pools pools_create(void)
{
    Pools ps = {{NULL}};
    for (int t = 1; t <= MAX_THREADS; t++) assert_int_equal(bq_pool_create(t, &ps.p[t]), BQ_OK);
    return ps;
}
static void pools_destroy(Pools *ps)
{
    for (int t = 0; t <= MAX_THREADS; t++) bq_pool_destroy(ps->p[t]);
}

/* ---- pool ---- */

typedef struct Count {
    atomic_int *hits;
    bq_pool *nested;   /* if set, each index also runs a small job on this pool */
    atomic_int nested_hits;
} Count;

static void count_fn(void *ctx, int64_t i)
{
    Count *c = ctx;
    atomic_fetch_add(&c->hits[i], 1);
    if (c->nested) {
        Count inner = {.hits = calloc(3, sizeof(atomic_int))};
        bq_pool_run(c->nested, count_fn, &inner, 3);
        for (int k = 0; k < 3; k++) atomic_fetch_add(&c->nested_hits, atomic_load(&inner.hits[k]));
        free(inner.hits);
    }
}

static void check_run(bq_pool *p, int64_t n)
{
    Count c = {.hits = calloc((size_t)(n ? n : 1), sizeof(atomic_int))};
    bq_pool_run(p, count_fn, &c, n);
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&c.hits[i]) != 1)
            fail_msg("%d threads, n=%lld: index %lld ran %d times", bq_pool_threads(p), (long long)n, (long long)i,
                     atomic_load(&c.hits[i]));
    free(c.hits);
}

static void test_pool_runs_each_index_once(void **state)
{
    static const int64_t ns[] = {0, 1, 2, 3, 7, 64, 1000, 100000};
    Pools ps = pools_create();
    for (int t = 0; t <= MAX_THREADS; t++) {
        assert_int_equal(bq_pool_threads(ps.p[t]), t ? t : 1);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) check_run(ps.p[t], ns[k]);
        for (int r = 0; r < 3000; r++) check_run(ps.p[t], 1 + r % 9);   /* many calls in a row */
    }
    pools_destroy(&ps);
}

/* A call from inside fn (the team is busy) runs serially instead of deadlocking. */
static void test_pool_nested(void **state)
{
    bq_pool *p;
    assert_int_equal(bq_pool_create(3, &p), BQ_OK);
    Count c = {.hits = calloc(50, sizeof(atomic_int)), .nested = p};
    atomic_init(&c.nested_hits, 0);
    bq_pool_run(p, count_fn, &c, 50);
    for (int i = 0; i < 50; i++) assert_int_equal(atomic_load(&c.hits[i]), 1);
    assert_int_equal(atomic_load(&c.nested_hits), 150);
    free(c.hits);
    bq_pool_destroy(p);
}

/* Runs many jobs; returns how many indices did not run exactly once (no cmocka off the main thread). */
static void *caller_main(void *arg)
{
    intptr_t bad = 0;
    atomic_int hits[17];
    for (int r = 0; r < 2000; r++) {
        int n = 1 + r % 17;
        for (int i = 0; i < n; i++) atomic_init(&hits[i], 0);
        Count c = {.hits = hits};
        bq_pool_run(arg, count_fn, &c, n);
        for (int i = 0; i < n; i++) bad += atomic_load(&hits[i]) != 1;
    }
    return (void *)bad;
}

/* Two threads calling the same pool: whoever finds the team busy runs its job alone. */
static void test_pool_concurrent_callers(void **state)
{
    bq_pool *p;
    assert_int_equal(bq_pool_create(3, &p), BQ_OK);
    pthread_t other;
    assert_int_equal(pthread_create(&other, NULL, caller_main, p), 0);
    void *mine = caller_main(p), *theirs = NULL;
    pthread_join(other, &theirs);
    assert_null(mine);
    assert_null(theirs);
    bq_pool_destroy(p);
}

static void test_pool_args(void **state)
{
    bq_pool *p = (bq_pool *)&p;
    assert_int_equal(bq_pool_create(2, NULL), BQ_ERR_ARG);
    assert_int_equal(bq_pool_create(100000, &p), BQ_ERR_ARG);
    assert_null(p);
    assert_int_equal(bq_pool_create(0, &p), BQ_OK);   /* no workers: runs on the caller */
    assert_int_equal(bq_pool_threads(p), 1);
    check_run(p, 5);
    bq_pool_destroy(p);
    bq_pool_destroy(NULL);
    assert_int_equal(bq_pool_threads(NULL), 1);
}

/* ---- packed matmul ---- */

static void test_pack_layout(void **state)
{
    enum { N = 70, K = 3 };
    float B[K * N], Bt[N * K], packed[2 * K * 64], packed_t[2 * K * 64];
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) B[k * N + n] = Bt[n * K + k] = (float)(k * 1000 + n + 1);
    assert_int_equal(bq_pack_f32_bytes(N, K), sizeof packed);
    assert_int_equal(bq_pack_f32_bytes(64, 5), 64 * 5 * 4);
    assert_int_equal(bq_pack_f32_bytes(0, 5), 0);
    bq_pack_f32(B, N, 0, N, K, packed);
    bq_pack_f32(Bt, K, 1, N, K, packed_t);
    assert_memory_equal(packed, packed_t, sizeof packed);
    for (int p = 0; p < 2; p++)
        for (int k = 0; k < K; k++)
            for (int j = 0; j < 64; j++) {
                int n = p * 64 + j;
                assert_true(packed[(p * K + k) * 64 + j] == (n < N ? (float)(k * 1000 + n + 1) : 0.0f));
            }
}

/* One shape: bq_matmul_f32 (portable, serial) is the oracle for every ISA and pool; the
 * padding past N in each C row must survive. The unpacked kernel is checked on pools too. */
static void check_packed(uint64_t *s, const Pools *ps, int64_t M, int64_t N, int64_t K, int trans_b, int use_bias,
                         int relu, int64_t pad)
{
    int64_t lda = K + pad, ldb = (trans_b ? K : N) + pad, ldc = N + pad;
    float *A = rand_buf(s, (size_t)(M * lda)), *B = rand_buf(s, (size_t)((trans_b ? N : K) * ldb));
    float *bias = use_bias ? rand_buf(s, (size_t)N) : NULL;
    float *Bp = malloc(bq_pack_f32_bytes(N, K) + 4);
    size_t nc = (size_t)(M * ldc);
    float *want = malloc(nc * sizeof(float)), *got = malloc(nc * sizeof(float));
    for (size_t i = 0; i < nc; i++) want[i] = -7.0f;
    bq_matmul_f32(BQ_ISA_PORTABLE, NULL, A, lda, B, ldb, trans_b, bias, relu, want, ldc, M, N, K);
    bq_pack_f32(B, ldb, trans_b, N, K, Bp);
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++)
        for (int t = 0; t <= 3; t++)
            for (int packed = 0; packed < 2; packed++) {
                for (size_t i = 0; i < nc; i++) got[i] = -7.0f;
                if (packed) bq_matmul_f32_packed((bq_isa)isa, ps->p[t], A, lda, Bp, bias, relu, got, ldc, M, N, K);
                else bq_matmul_f32((bq_isa)isa, ps->p[t], A, lda, B, ldb, trans_b, bias, relu, got, ldc, M, N, K);
                if (memcmp(want, got, nc * sizeof(float)) == 0) continue;
                size_t i = 0;
                while (memcmp(&want[i], &got[i], sizeof(float)) == 0) i++;
                fail_msg("%s %s %d threads M=%lld N=%lld K=%lld trans_b=%d bias=%d relu=%d pad=%lld: "
                         "C[%lld][%lld] = %a, want %a", packed ? "packed" : "unpacked", bq_isa_name((bq_isa)isa),
                         t, (long long)M, (long long)N, (long long)K, trans_b, use_bias, relu, (long long)pad,
                         (long long)(i / (size_t)ldc), (long long)(i % (size_t)ldc), got[i], want[i]);
            }
    free(A), free(B), free(bias), free(Bp), free(want), free(got);
}

static void test_packed_matches_unpacked(void **state)
{
    static const int64_t Ms[] = {1, 2, 5, 7, 8, 13, 64, 129};
    static const int64_t Ns[] = {1, 15, 16, 64, 65, 100, 130, 257};
    static const int64_t Ks[] = {1, 2, 17, 64, 300, 513};
    Pools ps = pools_create();
    uint64_t s = 0x2545f4914f6cdd1dull;
    int v = 0;
    for (size_t m = 0; m < 8; m++)
        for (size_t n = 0; n < 8; n++, v++) {
            int64_t K = Ks[(m + 3 * n) % 6];
            if (Ms[m] * Ns[n] * K > 4000000) K = 17;   /* keep the portable oracle quick */
            check_packed(&s, &ps, Ms[m], Ns[n], K, v & 1, (v >> 1) & 1, (v >> 2) & 1, v % 3 == 0 ? 0 : 3);
        }
    check_packed(&s, &ps, 3, 200, 0, 0, 1, 1, 0);     /* K = 0: C = relu(0 + bias) */
    check_packed(&s, &ps, 1, 1000, 64, 1, 1, 0, 0);   /* M = 1 across many panels */
    check_packed(&s, &ps, 6, 64 * 9, 40, 0, 0, 1, 1);
    pools_destroy(&ps);
}

/* NaN and -0 through bias and relu, as bq_matmul_f32's contract says, on every path. */
static void test_packed_relu_special(void **state)
{
    float a[1] = {1.0f}, b[3] = {NAN, -0.0f, -2.0f}, bias[3] = {0.0f, -0.0f, 0.0f}, c[3], bp[64];
    bq_pack_f32(b, 3, 0, 3, 1, bp);
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++) {
        bq_matmul_f32_packed((bq_isa)isa, NULL, a, 1, bp, bias, 1, c, 3, 1, 3, 1);
        assert_true(isnan(c[0]));
        assert_true(c[1] == 0.0f && !signbit(c[1]));
        assert_true(c[2] == 0.0f && !signbit(c[2]));
    }
}

/* ---- attention over a KV cache ---- */

#define SENTINEL 12345.0f

/* Random q/k/v rows for S new positions, interleaved in one [B, S, 3·H·D] buffer. */
static float *qkv_rows(uint64_t *s, int64_t B, int64_t S, int64_t H, int64_t D)
{
    return rand_buf(s, (size_t)(B * S * 3 * H * D));
}

/* The oracle: bq_attention_f32 (serial, portable) with past = cache[0, P). */
static void oracle(const float *qkv, const float *kc, const float *vc, int64_t cap, const int64_t *mask, int causal,
                   float *out, float *present_k, float *present_v, int64_t B, int64_t S, int64_t P, int64_t H,
                   int64_t D)
{
    int64_t ld = 3 * H * D;
    size_t np = (size_t)(B * H * P * D + 1);
    float *pk = malloc(np * sizeof(float)), *pv = malloc(np * sizeof(float));
    for (int64_t bh = 0; bh < B * H; bh++) {
        memcpy(pk + bh * P * D, kc + bh * cap * D, (size_t)(P * D) * sizeof(float));
        memcpy(pv + bh * P * D, vc + bh * cap * D, (size_t)(P * D) * sizeof(float));
    }
    float *scratch = malloc((size_t)bq_attention_scratch(S, P, D) * sizeof(float));
    bq_attention_f32(BQ_ISA_PORTABLE, NULL, qkv, qkv + H * D, qkv + 2 * H * D, ld, P ? pk : NULL, P ? pv : NULL, mask,
                     causal, 0.125f, present_k, present_v, out, B, S, P, H, D, scratch);
    free(pk), free(pv), free(scratch);
}

/* One step on caches that hold P positions (the same on every path): every ISA and pool must
 * give the oracle's output and cache, leaving positions past P+S untouched. */
static void check_step(const Pools *ps, float *kc, float *vc, int64_t cap, const float *qkv, const int64_t *mask,
                       int causal, int64_t B, int64_t S, int64_t P, int64_t H, int64_t D)
{
    int64_t T = P + S, ld = 3 * H * D;
    size_t no = (size_t)(B * S * H * D), nc = (size_t)(B * H * cap * D), np = (size_t)(B * H * T * D);
    float *want = malloc(no * sizeof(float)), *got = malloc(no * sizeof(float));
    float *prk = malloc(np * sizeof(float)), *prv = malloc(np * sizeof(float));
    float *kc2 = malloc(nc * sizeof(float)), *vc2 = malloc(nc * sizeof(float));
    float *scratch = malloc((size_t)bq_attention_scratch_threads(S, P, D, MAX_THREADS) * sizeof(float));
    oracle(qkv, kc, vc, cap, mask, causal, want, prk, prv, B, S, P, H, D);
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++)
        for (int t = 0; t <= MAX_THREADS; t++) {
            memcpy(kc2, kc, nc * sizeof(float));
            memcpy(vc2, vc, nc * sizeof(float));
            memset(got, 0, no * sizeof(float));
            bq_attention_cached_f32((bq_isa)isa, ps->p[t], qkv, qkv + H * D, qkv + 2 * H * D, ld, mask, causal, 0.125f,
                                    kc2, vc2, cap, got, B, S, P, H, D, scratch);
            if (memcmp(got, want, no * sizeof(float)) != 0)
                fail_msg("%s %d threads B=%lld S=%lld P=%lld H=%lld D=%lld causal=%d mask=%d: output differs",
                         bq_isa_name((bq_isa)isa), t, (long long)B, (long long)S, (long long)P, (long long)H,
                         (long long)D, causal, mask != NULL);
            for (int64_t bh = 0; bh < B * H; bh++) {
                assert_memory_equal(kc2 + bh * cap * D, prk + bh * T * D, (size_t)(T * D) * sizeof(float));
                assert_memory_equal(vc2 + bh * cap * D, prv + bh * T * D, (size_t)(T * D) * sizeof(float));
                for (int64_t i = T * D; i < cap * D; i++)
                    assert_true(kc2[bh * cap * D + i] == SENTINEL && vc2[bh * cap * D + i] == SENTINEL);
            }
        }
    /* The step the decode continues from. */
    memcpy(kc, kc2, nc * sizeof(float));
    memcpy(vc, vc2, nc * sizeof(float));
    free(want), free(got), free(prk), free(prv), free(kc2), free(vc2), free(scratch);
}

/* Prefill S0 positions, then decode one position at a time until the cache is full. */
static void check_decode(const Pools *ps, int64_t B, int64_t S0, int64_t cap, int64_t H, int64_t D, int causal,
                         int with_mask)
{
    uint64_t s = (uint64_t)(B * 7919 + S0 * 131 + cap * 17 + H * 5 + D + causal) | 1;
    size_t nc = (size_t)(B * H * cap * D);
    float *kc = malloc(nc * sizeof(float)), *vc = malloc(nc * sizeof(float));
    for (size_t i = 0; i < nc; i++) kc[i] = vc[i] = SENTINEL;
    int64_t *mask = malloc((size_t)(B * cap) * sizeof(int64_t));
    for (int64_t P = 0, S = S0; P + S <= cap; P += S, S = 1) {
        int64_t T = P + S;
        for (int64_t b = 0; b < B; b++)   /* left padding for batch 1: its first two keys masked */
            for (int64_t j = 0; j < T; j++) mask[b * T + j] = !(b == 1 && j < 2);
        float *qkv = qkv_rows(&s, B, S, H, D);
        check_step(ps, kc, vc, cap, qkv, with_mask ? mask : NULL, causal, B, S, P, H, D);
        free(qkv);
    }
    free(kc), free(vc), free(mask);
}

static void test_attention_cached(void **state)
{
    Pools ps = pools_create();
    check_decode(&ps, 1, 4, 9, 2, 8, 1, 0);     /* prefill 4, decode to 9 */
    check_decode(&ps, 2, 3, 8, 3, 16, 1, 1);    /* masked, batch 2 */
    check_decode(&ps, 2, 5, 7, 2, 8, 0, 1);     /* not causal */
    check_decode(&ps, 1, 1, 6, 5, 64, 1, 0);    /* decode from the first token */
    check_decode(&ps, 3, 6, 6, 4, 8, 1, 1);     /* prefill fills the cache */
    pools_destroy(&ps);
}

/* bq_attention_f32 with a pool equals itself without one, present included. */
static void test_attention_pool(void **state)
{
    Pools ps = pools_create();
    enum { B = 2, S = 3, P = 4, H = 3, D = 8, T = P + S };
    uint64_t s = 99;
    float *qkv = qkv_rows(&s, B, S, H, D), *pk = rand_buf(&s, B * H * P * D), *pv = rand_buf(&s, B * H * P * D);
    float want[B * S * H * D], got[B * S * H * D], prk[B * H * T * D], prv[B * H * T * D], prk2[B * H * T * D],
        prv2[B * H * T * D];
    float *scratch = malloc((size_t)bq_attention_scratch_threads(S, P, D, MAX_THREADS) * sizeof(float));
    assert_int_equal(bq_attention_scratch_threads(S, P, D, 3), 3 * bq_attention_scratch(S, P, D));
    assert_int_equal(bq_attention_scratch_threads(S, P, D, 0), bq_attention_scratch(S, P, D));
    int64_t ld = 3 * H * D;
    bq_attention_f32(bq_isa_detect(), NULL, qkv, qkv + H * D, qkv + 2 * H * D, ld, pk, pv, NULL, 1, 0.125f, prk, prv,
                     want, B, S, P, H, D, scratch);
    for (int t = 1; t <= MAX_THREADS; t++) {
        bq_attention_f32(bq_isa_detect(), ps.p[t], qkv, qkv + H * D, qkv + 2 * H * D, ld, pk, pv, NULL, 1, 0.125f, prk2,
                         prv2, got, B, S, P, H, D, scratch);
        assert_memory_equal(got, want, sizeof want);
        assert_memory_equal(prk2, prk, sizeof prk);
        assert_memory_equal(prv2, prv, sizeof prv);
    }
    free(qkv), free(pk), free(pv), free(scratch);
    pools_destroy(&ps);
}

/* ---- weights file ---- */

#define HASH 0x0123456789abcdefull
enum { TOTAL = 64 + 128 };

static const char *weights_file(const char *name, const unsigned char *header, size_t total)
{
    unsigned char *buf = calloc(1, total + 1);
    memcpy(buf, header, total < 64 ? total : 64);
    for (size_t i = 64; i < total; i++) buf[i] = (unsigned char)i;
    const char *path = test_write_file(name, buf, total);
    free(buf);
    return path;
}

static void test_weights_header(void **state)
{
    unsigned char h[64];
    memset(h, 0xee, sizeof h);
    assert_int_equal(bq_weights_write_header(h, 0x1122334455667788ull, 0xa1b2c3d4e5f60718ull), BQ_OK);
    static const unsigned char want[32] = {'B', 'Q', 'C', 'W', 'G', 'T', '0', '1', 0x88, 0x77, 0x66, 0x55, 0x44, 0x33,
                                           0x22, 0x11, 0x18, 0x07, 0xf6, 0xe5, 0xd4, 0xc3, 0xb2, 0xa1, 64, 0, 0, 0};
    assert_memory_equal(h, want, sizeof want);
    for (int i = 28; i < 64; i++) assert_int_equal(h[i], 0);
    assert_int_equal(bq_weights_write_header(h, 63, 1), BQ_ERR_ARG);
    assert_int_equal(bq_weights_write_header(NULL, 64, 1), BQ_ERR_ARG);
}

static void test_weights_open(void **state)
{
    unsigned char h[64];
    assert_int_equal(bq_weights_write_header(h, TOTAL, HASH), BQ_OK);
    const char *good = weights_file("good.weights", h, TOTAL);
    bq_weights w;
    assert_int_equal(bq_weights_open(good, HASH, TOTAL, &w), BQ_OK);
    assert_int_equal(w.size, TOTAL);
    assert_non_null(w.base);
    assert_int_equal((uintptr_t)w.base % 64, 0);
    assert_memory_equal(w.base, h, 64);
    assert_int_equal(w.base[64 + 5], 69);
    bq_weights_close(&w);
    assert_null(w.base);
    bq_weights_close(&w);   /* a closed (zeroed) handle is a no-op */
}

static void expect_open(const char *path, uint64_t hash, uint64_t total, bq_status want)
{
    bq_weights w = {(const unsigned char *)&w, 1};
    assert_int_equal(bq_weights_open(path, hash, total, &w), want);
    assert_null(w.base);
    assert_int_equal(w.size, 0);
}

static void test_weights_errors(void **state)
{
    unsigned char h[64];
    assert_int_equal(bq_weights_write_header(h, TOTAL, HASH), BQ_OK);
    const char *good = weights_file("good2.weights", h, TOTAL);
    char missing[4096];
    snprintf(missing, sizeof missing, "%s/no-such.weights", test_tmpdir());
    expect_open(missing, HASH, TOTAL, BQ_ERR_IO);
    expect_open(test_tmpdir(), HASH, TOTAL, BQ_ERR_IO);   /* a directory */
    expect_open(good, HASH ^ 1, TOTAL, BQ_ERR_FORMAT);    /* another layout */
    expect_open(good, HASH, TOTAL + 64, BQ_ERR_FORMAT);   /* another size expected */
    expect_open(weights_file("short.weights", h, 10), HASH, 10, BQ_ERR_FORMAT);
    expect_open(weights_file("truncated.weights", h, TOTAL - 64), HASH, TOTAL, BQ_ERR_FORMAT);
    expect_open(weights_file("empty.weights", h, 0), HASH, 0, BQ_ERR_FORMAT);
    unsigned char bad[64];
    memcpy(bad, h, 64);
    bad[7] = '2';
    expect_open(weights_file("magic.weights", bad, TOTAL), HASH, TOTAL, BQ_ERR_FORMAT);
    assert_int_equal(bq_weights_write_header(bad, TOTAL + 64, HASH), BQ_OK);   /* header disagrees with the file */
    expect_open(weights_file("size.weights", bad, TOTAL), HASH, TOTAL, BQ_ERR_FORMAT);
    memcpy(bad, h, 64);
    bad[24] = 32;
    expect_open(weights_file("hdr.weights", bad, TOTAL), HASH, TOTAL, BQ_ERR_FORMAT);
    bq_weights w;
    assert_int_equal(bq_weights_open(NULL, HASH, TOTAL, &w), BQ_ERR_ARG);
    assert_int_equal(bq_weights_open(good, HASH, TOTAL, NULL), BQ_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_runs_each_index_once),
        cmocka_unit_test(test_pool_nested),
        cmocka_unit_test(test_pool_concurrent_callers),
        cmocka_unit_test(test_pool_args),
        cmocka_unit_test(test_pack_layout),
        cmocka_unit_test(test_packed_matches_unpacked),
        cmocka_unit_test(test_packed_relu_special),
        cmocka_unit_test(test_attention_cached),
        cmocka_unit_test(test_attention_pool),
        cmocka_unit_test(test_weights_header),
        cmocka_unit_test(test_weights_open),
        cmocka_unit_test(test_weights_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
