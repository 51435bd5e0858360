/* test_qmatmul.c — the quantised matmul and attention against bq_quantize + bq_dot_ref.
 *
 * bq_qmatmul must be a loop of bq_dot_ref, bit for bit, so every format row is run as the
 * weight format (fp32 activations), as the activation format (fp32 weights), against itself,
 * and in mixed pairs, over shapes whose K is not a multiple of the block, on data with
 * outliers, all-zero blocks, -0, tiny rows whose scale products underflow, and NaN in some
 * activation blocks — on every ISA path this CPU has and with 1, 2 and 3 threads, compared
 * by memcmp (padding past N in each C row must survive). Quantised attention is compared with
 * a transcription of docs/ir.md built from bq_quantize and bq_dot_ref, and prefill + decode
 * with the full forward for every format combination that leaves pv_weight fp32.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "bqcrt.h"

/* Rows of K values: varied magnitudes, an outlier, an all-zero block, some -0, rows scaled by
 * 2^20 down to 2^-100 (so scale products of two rows land in fp32's subnormals or below), and
 * NaN or Inf in one block of some rows (activations only). */
static float *make_data(uint64_t *s, int64_t rows, int64_t K, int64_t ld, int nan_rows)
{
    float *x = malloc((size_t)(rows * ld + 1) * sizeof *x);
    for (int64_t r = 0; r < rows; r++) {
        static const float row_scale[8] = {1.0f, 0x1p+20f, 1.0f, 0x1p-100f, 0x1p-60f, 0x1p-66f, 0x1p-63f, 0x1p-3f};
        float rs = row_scale[r % 8];
        for (int64_t k = 0; k < ld; k++) x[r * ld + k] = k < K ? test_rng_float(s) * rs : 1234.5f;
        if (K > 9) x[r * ld + (int64_t)(test_rng_next(s) % (uint64_t)K)] *= 300.0f;            /* outlier */
        if (K > 40)
            for (int64_t k = 16; k < 32; k++) x[r * ld + k] = (k & 1) ? -0.0f : 0.0f;      /* zero block */
        if (nan_rows && r % 4 == 1) x[r * ld + K / 2] = NAN;
        if (nan_rows && r % 7 == 3) x[r * ld + 0] = INFINITY;
    }
    return x;
}

typedef struct Case {
    const char *a, *w;   /* activation and weight formats */
} Case;

static int check_pair(uint64_t *s, const char *an, const char *wn, int64_t M, int64_t N, int64_t K, int relu,
                      bq_pool **pools, int npools)
{
    bq_format fa = test_format(an), fw = test_format(wn);
    int64_t lda = K + 3, ldc = N + 2;
    float *A = make_data(s, M, K, lda, 1), *W = make_data(s, N, K, K, 0);
    float *bias = malloc((size_t)N * sizeof *bias);
    for (int64_t n = 0; n < N; n++) bias[n] = n % 4 == 3 ? -0.0f : test_rng_float(s);
    unsigned char *qw = malloc(bq_format_bytes(&fw, K) * (size_t)N + 1);
    assert_int_equal(bq_qpack_weights(&fw, W, K, 1, N, K, qw), BQ_OK);
    float *want = malloc((size_t)(M * ldc) * sizeof *want), *got = malloc((size_t)(M * ldc) * sizeof *got);
    test_ref_matmul(&fa, A, lda, &fw, qw, bias, relu, want, ldc, M, N, K);
    int bad = 0;
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect() && !bad; isa++)
        for (int p = 0; p < npools && !bad; p++) {
            for (int64_t i = 0; i < M * ldc; i++) got[i] = -7.0f;
            bq_status st = bq_qmatmul((bq_isa)isa, pools[p], &fa, A, lda, &fw, qw, bias, relu, got, ldc, M, N, K);
            if (st != BQ_OK) {
                print_error("%s x %s: status %s\n", an, wn, bq_status_str(st));
                bad = 1;
            } else if (test_first_diff(want, got, M * ldc) >= 0) {
                int64_t i = test_first_diff(want, got, M * ldc);
                print_error("%s x %s, %s, %d threads, M=%lld N=%lld K=%lld relu=%d: C[%lld][%lld] = %a, want %a\n", an,
                            wn, bq_isa_name((bq_isa)isa), bq_pool_threads(pools[p]), (long long)M, (long long)N,
                            (long long)K, relu, (long long)(i / ldc), (long long)(i % ldc), got[i], want[i]);
                bad = 1;
            }
        }
    free(A), free(W), free(bias), free(qw), free(want), free(got);
    return bad;
}

/* Shapes: K a multiple of the block, one more, a short single block; M and N across the
 * kernels' row groups (4) and panels (16). */
static int check_shapes(uint64_t *s, const char *a, const char *w, int block)
{
    int64_t Ks[3] = {2 * block, 3 * block + 5, block > 8 ? block - 3 : 5};
    static const int64_t MN[3][2] = {{5, 17}, {1, 33}, {9, 3}};
    int bad = 0;
    for (int i = 0; i < 3 && !bad; i++) bad = check_pair(s, a, w, MN[i][0], MN[i][1], Ks[i], i == 1, test_pools, 3);
    return bad;
}

static int block_of(const char *name)
{
    bq_format f = test_format(name);
    return f.block > 1 ? f.block : 16;
}

/* Every row of formats.def: as weight (fp32 activations), as activation (fp32 weights), and
 * against itself. */
static void test_every_format(void **state)
{
    static const char *const formats[] = {
        "bfp3/8",    "bfp4/16",   "bfp5/32",   "bfp6/16",   "bfp6/64",    "bfp7/16",    "bfp8/8",    "bfp8/16",
        "bfp8/32",   "bfp8/64",   "bfp4/64",   "bfp3/32",   "bm8e4/16",   "bm8e5/16",   "bm8e7/16",  "bm6e3/32",
        "bm5e2/16",  "bm4e1/8",   "bm8e2/64",  "bl3/16",    "bl4/16",     "bl5/32",     "bl6/16",    "bl8/16",
        "mxint8",    "mxfp8e4m3", "mxfp8e5m2", "mxfp6e3m2", "mxfp6e2m3",  "mxfp4",      "int2/32",   "int3/16",
        "int4/32",   "int5/8",    "int6/64",   "int7/32",   "int8/32",    "int8/256",   "nf4/64",    "nf4/16",
        "nf4/8",     "fp16",      "bf16",      "fp32",
    };
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int bad = 0;
    for (size_t i = 0; i < sizeof formats / sizeof *formats; i++) {
        const char *f = formats[i];
        int b = block_of(f);
        bad |= check_shapes(&s, "fp32", f, b);
        bad |= check_shapes(&s, f, "fp32", b);
        bad |= check_shapes(&s, f, f, b);
    }
    assert_int_equal(bad, 0);
}

static void test_mixed_pairs(void **state)
{
    static const Case pairs[] = {
        {"bfp8/16", "int4/16"},   {"fp32", "nf4/64"},       {"bfp6/32", "mxfp4"},      {"mxint8", "bfp4/32"},
        {"nf4/16", "bfp8/16"},    {"fp16", "bfp6/16"},      {"bf16", "int8/32"},       {"mxfp8e4m3", "mxint8"},
        {"bl5/16", "bm8e4/16"},   {"bfp8/16", "fp16"},      {"int8/32", "nf4/32"},     {"mxfp6e2m3", "mxfp6e3m2"},
        {"bfp4/16", "bl6/16"},    {"mxfp8e5m2", "bfp8/32"}, {"bf16", "fp16"},          {"fp16", "fp32"},
        {"bfp8/64", "nf4/64"},    {"int4/32", "mxfp4"},     {"bm8e7/16", "bfp3/16"},   {"bl8/16", "int8/16"},
    };
    uint64_t s = 12345;
    int bad = 0;
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        bq_format fa = test_format(pairs[i].a), fw = test_format(pairs[i].w);
        int b = fa.block > 1 ? fa.block : fw.block > 1 ? fw.block : 16;
        bad |= check_shapes(&s, pairs[i].a, pairs[i].w, b);
    }
    assert_int_equal(bad, 0);
}

/* Bigger shapes (many panels and row groups, several threads) for the fast forms. */
static void test_larger(void **state)
{
    uint64_t s = 99;
    int bad = 0;
    bad |= check_pair(&s, "bfp8/16", "bfp8/16", 37, 130, 300, 1, test_pools, 3);
    bad |= check_pair(&s, "bfp4/16", "bfp6/16", 64, 70, 768, 0, test_pools, 3);
    bad |= check_pair(&s, "fp32", "nf4/64", 13, 99, 320, 0, test_pools, 3);
    bad |= check_pair(&s, "mxfp8e4m3", "mxfp8e4m3", 6, 40, 200, 0, test_pools, 3);
    assert_int_equal(bad, 0);
}

static void test_edges(void **state)
{
    bq_format b16 = test_format("bfp8/16"), b32 = test_format("bfp8/32"), f32 = test_format("fp32"), bad = {.family = 99, .width = 8, .block = 16};
    float a[4] = {1, 2, 3, 4}, c[4] = {9, 9, 9, 9}, bias[2] = {0.5f, -1.0f};
    unsigned char w[64] = {0};
    /* blocks that differ, an invalid format */
    assert_int_equal(bq_qmatmul(BQ_ISA_PORTABLE, NULL, &b16, a, 4, &b32, w, NULL, 0, c, 2, 1, 2, 4), BQ_ERR_ARG);
    assert_int_equal(bq_qmatmul(BQ_ISA_PORTABLE, NULL, &bad, a, 4, &f32, w, NULL, 0, c, 2, 1, 2, 4), BQ_ERR_ARG);
    assert_int_equal(bq_qpack_weights(&bad, a, 4, 1, 1, 4, w), BQ_ERR_ARG);
    /* K = 0: relu(0 + bias); M = 0 and N = 0 write nothing */
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++) {
        c[0] = c[1] = 9;
        assert_int_equal(bq_qmatmul((bq_isa)isa, NULL, &b16, a, 4, &b16, w, bias, 1, c, 2, 1, 2, 0), BQ_OK);
        assert_true(c[0] == 0.5f && c[1] == 0.0f);
        c[0] = 9;
        assert_int_equal(bq_qmatmul((bq_isa)isa, NULL, &b16, a, 4, &b16, w, bias, 1, c, 2, 0, 2, 4), BQ_OK);
        assert_true(c[0] == 9.0f);
    }
    /* fp32 x fp32 is the fmaf chain, then 0 + chain·1: -0 comes out +0 (bq_dot_ref) */
    float x[1] = {-1.0f}, y[1] = {0.0f}, z = 5;
    assert_int_equal(bq_qmatmul(BQ_ISA_PORTABLE, NULL, &f32, x, 1, &f32, y, NULL, 0, &z, 1, 1, 1, 1), BQ_OK);
    assert_true(z == 0.0f && !signbit(z));
}

/* ---- attention ---- */

static int fp32_fmt(const bq_format *f) { return f->family == BQ_FAM_FP32; }

/* One product of the attention: a row against a row, both of n elements, per the formats. */
static float attn_dot(const bq_format *fa, const float *a, const bq_format *fw, const float *w, int64_t n)
{
    if (fp32_fmt(fa) && fp32_fmt(fw)) {   /* the fp32 matmul's chain */
        float acc = 0.0f;
        for (int64_t i = 0; i < n; i++) acc = fmaf(a[i], w[i], acc);
        return acc;
    }
    unsigned char *qa = malloc(bq_format_bytes(fa, n) + 1), *qw = malloc(bq_format_bytes(fw, n) + 1);
    bq_quantize(fa, a, n, qa);
    bq_quantize(fw, w, n, qw);
    float r = bq_dot_ref(fa, qa, fw, qw, n);
    free(qa), free(qw);
    return r;
}

/* docs/ir.md with formats, one query row at a time; a query's value columns are quantised over
 * the keys up to its causal horizon, masked keys' values as zeros (their probabilities are
 * exact zeros). */
static void ref_attention(const bq_attn_formats *f, const float *q, const float *k, const float *v, int64_t ld,
                          const float *pk, const float *pv, const int64_t *mask, int causal, float scale, float *out,
                          int64_t B, int64_t S, int64_t P, int64_t H, int64_t D)
{
    int64_t T = P + S;
    float *p = malloc((size_t)T * sizeof *p), *qs = malloc((size_t)D * sizeof *qs);
    float *key = malloc((size_t)(T * D) * sizeof *key), *vcol = malloc((size_t)(D * T) * sizeof *vcol);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            for (int64_t j = 0; j < T; j++)
                for (int64_t d = 0; d < D; d++) {
                    key[j * D + d] = j < P ? pk[((b * H + h) * P + j) * D + d] : k[(b * S + j - P) * ld + h * D + d];
                    vcol[d * T + j] = j < P ? pv[((b * H + h) * P + j) * D + d] : v[(b * S + j - P) * ld + h * D + d];
                    if (mask && mask[b * T + j] == 0 && !(fp32_fmt(&f->pv_input) && fp32_fmt(&f->pv_weight)))
                        vcol[d * T + j] = 0.0f;
                }
            for (int64_t i = 0; i < S; i++) {
                for (int64_t d = 0; d < D; d++) qs[d] = q[(b * S + i) * ld + h * D + d] * scale;
                float m = -INFINITY, sum = 0.0f;
                for (int64_t j = 0; j < T; j++) {
                    p[j] = attn_dot(&f->qk_input, qs, &f->qk_weight, key + j * D, D);
                    if ((mask && mask[b * T + j] == 0) || (causal && j > P + i)) p[j] = -FLT_MAX;
                    m = p[j] > m ? p[j] : m;
                }
                for (int64_t j = 0; j < T; j++) {
                    p[j] = expf(p[j] - m);
                    sum += p[j];
                }
                for (int64_t j = 0; j < T; j++) p[j] = p[j] / sum;
                int64_t seen = causal ? P + i + 1 : T;
                for (int64_t d = 0; d < D; d++)
                    out[(b * S + i) * H * D + h * D + d] = attn_dot(&f->pv_input, p, &f->pv_weight, vcol + d * T, seen);
            }
        }
    free(p), free(qs), free(key), free(vcol);
}

static bq_attn_formats attn_fmts(const char *qi, const char *qw, const char *pi, const char *pw)
{
    return (bq_attn_formats){test_format(qi), test_format(qw), test_format(pi), test_format(pw)};
}

static void test_attention_reference(void **state)
{
    const bq_attn_formats sets[] = {
        attn_fmts("bfp8/16", "bfp8/16", "bfp8/16", "bfp8/16"), attn_fmts("bfp6/16", "bfp4/16", "fp32", "fp32"),
        attn_fmts("fp32", "fp32", "int4/32", "nf4/32"),        attn_fmts("mxfp4", "mxint8", "mxfp8e4m3", "fp32"),
        attn_fmts("fp32", "nf4/16", "bf16", "fp16"),            attn_fmts("bfp8/8", "fp32", "fp32", "bfp5/8"),
        /* the int8-row fast path (both formats of a product bfp, int or mxint8): every family,
         * blocks 8..32 (D = 24: a short last block along D; T = 16: horizons inside a block) */
        attn_fmts("bfp6/16", "bfp6/16", "bfp6/16", "bfp6/16"),  attn_fmts("mxint8", "mxint8", "mxint8", "mxint8"),
        attn_fmts("int8/8", "int4/8", "bfp4/8", "int8/8"),      attn_fmts("bfp8/32", "int8/32", "mxint8", "bfp5/32"),
        attn_fmts("bfp3/16", "bfp8/16", "int2/16", "bfp4/16"),  attn_fmts("mxint8", "bfp8/32", "fp32", "fp32"),
    };
    const int64_t B = 2, S = 5, P = 11, H = 3, D = 24, HD = H * D, T = P + S, ld = HD + 4;
    uint64_t s = 5;
    float *q = make_data(&s, B * S, ld, ld, 0), *k = make_data(&s, B * S, ld, ld, 0), *v = make_data(&s, B * S, ld, ld, 0);
    float *pk = make_data(&s, B * H * P, D, D, 0), *pv = make_data(&s, B * H * P, D, D, 0);
    int64_t mask[2 * 16];
    for (int64_t i = 0; i < B * T; i++) mask[i] = !(i == 3 || i == T + 1 || (i >= T && i < T + 3));
    float *want = malloc((size_t)(B * S * HD) * sizeof *want), *got = malloc((size_t)(B * S * HD) * sizeof *got);
    float *prk = malloc((size_t)(B * H * T * D) * sizeof(float)), *prv = malloc((size_t)(B * H * T * D) * sizeof(float));
    float *scratch = malloc((size_t)bq_attention_scratch_threads(S, P, D, 3) * sizeof(float));
    for (size_t c = 0; c < sizeof sets / sizeof *sets; c++)
        for (int causal = 1; causal >= 0; causal--) {
            ref_attention(&sets[c], q, k, v, ld, pk, pv, mask, causal, 0.125f, want, B, S, P, H, D);
            for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++)
                for (int t = 0; t < 3; t++) {
                    memset(got, 0, (size_t)(B * S * HD) * sizeof *got);
                    assert_int_equal(bq_attention_q_f32((bq_isa)isa, test_pools[t], &sets[c], q, k, v, ld, pk, pv, mask,
                                                        causal, 0.125f, prk, prv, got, B, S, P, H, D, scratch),
                                     BQ_OK);
                    int64_t i = test_first_diff(want, got, B * S * HD);
                    if (i >= 0) {
                        fail_msg("attention set %zu (causal %d), %s, %d threads: out[%lld] = %a, want %a", c, causal,
                                 bq_isa_name((bq_isa)isa), t + 1, (long long)i, got[i], want[i]);
                    }
                }
        }
    /* NULL and all-fp32 formats are bq_attention_f32, bit for bit */
    bq_attn_formats f32 = attn_fmts("fp32", "fp32", "fp32", "fp32");
    bq_attention_f32(bq_isa_detect(), NULL, q, k, v, ld, pk, pv, mask, 1, 0.125f, prk, prv, want, B, S, P, H, D, scratch);
    for (int z = 0; z < 2; z++) {
        assert_int_equal(bq_attention_q_f32(bq_isa_detect(), NULL, z ? &f32 : NULL, q, k, v, ld, pk, pv, mask, 1, 0.125f,
                                            prk, prv, got, B, S, P, H, D, scratch),
                         BQ_OK);
        assert_memory_equal(want, got, (size_t)(B * S * HD) * sizeof *got);
    }
    bq_attn_formats mismatch = attn_fmts("bfp8/16", "bfp8/32", "fp32", "fp32");
    assert_int_equal(bq_attention_q_f32(bq_isa_detect(), NULL, &mismatch, q, k, v, ld, pk, pv, mask, 1, 0.125f, prk,
                                        prv, got, B, S, P, H, D, scratch),
                     BQ_ERR_ARG);
    free(q), free(k), free(v), free(pk), free(pv), free(want), free(got), free(prk), free(prv), free(scratch);
}

/* Prefill then chunks of 1..4 tokens over a KV cache equal one forward over all of them, for
 * every format set: values are quantised per query over the keys it can see. Checked without
 * a qcache and with one (filled with garbage first: P = 0 must need no initialisation), with
 * no key hidden and with keys the mask hides (every query keeps key 0: a query that sees no key
 * averages over all T keys in fp32, which differ between a full forward and decode). With
 * `change`, keys are hidden only in calls up to 12 keys: the qcache must hold the unmasked
 * values for the calls after (compared with the calls without a qcache: no full forward has
 * such a mask). */
static int decode_equals_full(const bq_attn_formats *f, uint64_t *s, const int64_t *mask, int change)
{
    enum { T = 21, H = 2, D = 16, HD = H * D, cap = 32 };
    static const int64_t chunks[] = {6, 1, 1, 3, 1, 2, 1, 1, 4, 1};   /* 21 tokens; crossing blocks of 8 and 16 */
    static const int64_t ones[cap] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                      1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    float *q = make_data(s, T, HD, HD, 0), *k = make_data(s, T, HD, HD, 0), *v = make_data(s, T, HD, HD, 0);
    float *full = malloc((size_t)(T * HD) * sizeof *full), *step = malloc((size_t)(T * HD) * sizeof *step);
    float *kc = calloc((size_t)(H * cap * D), sizeof(float)), *vc = calloc((size_t)(H * cap * D), sizeof(float));
    float *scratch = malloc((size_t)bq_attention_scratch_threads(cap, cap, D, 2) * sizeof(float));
    size_t qbytes = bq_attention_qcache_bytes(f, 1, H, cap, D);
    unsigned char *qc = qbytes ? aligned_alloc(64, (qbytes + 63) & ~(size_t)63) : NULL;
    if (qc) memset(qc, 0xA5, qbytes);
    int same = 1;
    assert_int_equal(bq_attention_cached_q_f32(bq_isa_detect(), test_pools[1], f, q, k, v, HD, mask, 1, 0.25f, kc, vc, NULL,
                                               cap, full, 1, T, 0, H, D, scratch),
                     BQ_OK);
    for (int use = 0; use < 2; use++) {
        memset(step, 0, (size_t)(T * HD) * sizeof *step);
        for (int64_t c = 0, t = 0; t < T; t += chunks[c++]) {
            const int64_t *m = change && t + chunks[c] > 12 ? ones : mask;
            assert_int_equal(bq_attention_cached_q_f32(bq_isa_detect(), test_pools[1], f, q + t * HD, k + t * HD, v + t * HD,
                                                       HD, m, 1, 0.25f, kc, vc, use ? qc : NULL, cap, step + t * HD, 1,
                                                       chunks[c], t, H, D, scratch),
                             BQ_OK);
        }
        if (change && !use) memcpy(full, step, (size_t)(T * HD) * sizeof *full);
        same = same && memcmp(full, step, (size_t)(T * HD) * sizeof *full) == 0;
    }
    free(q), free(k), free(v), free(full), free(step), free(kc), free(vc), free(scratch), free(qc);
    return same;
}

static void test_attention_decode(void **state)
{
    const bq_attn_formats keep[] = {
        attn_fmts("bfp8/16", "bfp8/16", "bfp8/16", "fp32"), attn_fmts("bfp4/16", "int4/16", "nf4/16", "fp32"),
        attn_fmts("mxfp4", "mxfp4", "mxint8", "fp32"),      attn_fmts("fp32", "fp32", "bfp6/8", "fp32"),
        attn_fmts("fp16", "bf16", "fp32", "fp32"),
        /* V quantised along the keys: 21 keys leave a partly filled last block */
        attn_fmts("fp32", "fp32", "fp32", "bfp4/16"),       attn_fmts("bfp6/16", "bfp6/16", "bfp6/16", "bfp6/16"),
        attn_fmts("fp32", "fp32", "int4/32", "int4/32"),
        /* the int8-row fast path (and its qcache): horizons inside blocks of 8, 16 and 32 keys */
        attn_fmts("mxint8", "mxint8", "mxint8", "mxint8"),      attn_fmts("int8/8", "bfp4/8", "int4/8", "bfp8/8"),
        attn_fmts("bfp4/16", "bfp4/16", "bfp4/16", "bfp4/16"), attn_fmts("bfp6/32", "bfp6/32", "bfp6/32", "bfp6/32"),
        attn_fmts("bfp8/16", "int8/16", "fp32", "fp32"),       attn_fmts("fp32", "nf4/8", "int8/8", "bfp5/8"),
    };
    static const char *what[] = {"no key hidden", "hidden keys", "keys hidden in early calls only"};
    int64_t ones[32], padded[32];
    for (int i = 0; i < 32; i++) ones[i] = 1, padded[i] = !(i == 1 || i == 2 || i == 9 || i == 17);
    uint64_t s = 77;
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++)
        for (int m = 0; m < 3; m++)
            if (!decode_equals_full(&keep[i], &s, m ? padded : ones, m == 2))
                fail_msg("format set %zu (%s): decode differs from the full forward", i, what[m]);
    /* a qcache exists exactly for the sets with a fast product */
    assert_true(bq_attention_qcache_bytes(&keep[8], 1, 2, 32, 16) > 0);
    assert_true(bq_attention_qcache_bytes(&keep[12], 1, 2, 32, 16) > 0);
    assert_true(bq_attention_qcache_bytes(&keep[13], 1, 2, 32, 16) > 0);
    assert_true(bq_attention_qcache_bytes(&keep[7], 1, 2, 32, 16) > 0);
    for (int i = 2; i <= 4; i++) assert_int_equal(bq_attention_qcache_bytes(&keep[i], 1, 2, 32, 16), 0);
    bq_attn_formats mismatch = attn_fmts("bfp8/16", "bfp8/32", "fp32", "fp32");
    assert_int_equal(bq_attention_qcache_bytes(&mismatch, 1, 2, 32, 16), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_format),     cmocka_unit_test(test_mixed_pairs),
        cmocka_unit_test(test_larger),           cmocka_unit_test(test_edges),
        cmocka_unit_test(test_attention_reference), cmocka_unit_test(test_attention_decode),
    };
    return cmocka_run_group_tests(tests, test_pools_setup, test_pools_teardown);
}
