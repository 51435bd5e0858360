/* test_runtime.c — libbqcrt's fp32 kernels against plain references.
 *
 * The matmul contract is bit-exact, so every ISA path this CPU has is compared with a scalar
 * fmaf loop by memcmp over awkward shapes (edges of every tile and block, strided operands,
 * trans_b, bias, relu). LayerNorm and softmax are checked against double precision and on
 * rows whose results are exact; attention against a naive transcription of docs/ir.md.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "bqcrt.h"

static float *rand_buf(uint64_t *s, size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = test_rng_float(s);
    return p;
}

static void ref_matmul(const float *A, int64_t lda, const float *B, int64_t ldb, int trans_b, const float *bias,
                       int relu, float *C, int64_t ldc, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int64_t k = 0; k < K; k++) acc = fmaf(A[m * lda + k], trans_b ? B[n * ldb + k] : B[k * ldb + n], acc);
            if (bias) acc = acc + bias[n];
            if (relu) acc = acc < 0.0f ? 0.0f : acc;
            C[m * ldc + n] = acc;
        }
}

/* Runs one shape on every available path; the padding past N in each C row must survive. */
static void check_matmul(uint64_t *s, int64_t M, int64_t N, int64_t K, int trans_b, int use_bias, int relu,
                         int64_t pad)
{
    int64_t lda = K + pad, ldb = (trans_b ? K : N) + pad, ldc = N + pad;
    float *A = rand_buf(s, (size_t)(M * lda)), *B = rand_buf(s, (size_t)((trans_b ? N : K) * ldb));
    float *bias = use_bias ? rand_buf(s, (size_t)N) : NULL;
    float *want = malloc((size_t)(M * ldc) * sizeof(float)), *got = malloc((size_t)(M * ldc) * sizeof(float));
    for (int64_t i = 0; i < M * ldc; i++) want[i] = -7.0f;
    ref_matmul(A, lda, B, ldb, trans_b, bias, relu, want, ldc, M, N, K);
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++) {
        for (int64_t i = 0; i < M * ldc; i++) got[i] = -7.0f;
        bq_matmul_f32((bq_isa)isa, NULL, A, lda, B, ldb, trans_b, bias, relu, got, ldc, M, N, K);
        if (memcmp(want, got, (size_t)(M * ldc) * sizeof(float)) != 0) {
            int64_t i = 0;
            while (memcmp(&want[i], &got[i], sizeof(float)) == 0) i++;
            fail_msg("%s M=%lld N=%lld K=%lld trans_b=%d bias=%d relu=%d pad=%lld: C[%lld][%lld] = %a, want %a",
                     bq_isa_name((bq_isa)isa), (long long)M, (long long)N, (long long)K, trans_b, use_bias, relu,
                     (long long)pad, (long long)(i / ldc), (long long)(i % ldc), got[i], want[i]);
        }
    }
    free(A), free(B), free(bias), free(want), free(got);
}

static void test_matmul_shapes(void **state)
{
    static const int64_t sizes[] = {1, 3, 16, 17, 63, 64, 65, 129};
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int v = 0;
    for (size_t a = 0; a < 8; a++)
        for (size_t b = 0; b < 8; b++)
            for (size_t c = 0; c < 8; c++, v++)
                check_matmul(&s, sizes[a], sizes[b], sizes[c], v & 1, (v >> 1) & 1, (v >> 2) & 1, v % 3 == 0 ? 0 : 5);
}

/* Across the K block (256) and the M block (192): partial sums wait in C between blocks. */
static void test_matmul_blocks(void **state)
{
    uint64_t s = 42;
    for (int t = 0; t < 2; t++) {
        check_matmul(&s, 200, 70, 600, t, 1, 1, 3);
        check_matmul(&s, 7, 130, 513, t, 0, 0, 0);
    }
    check_matmul(&s, 5, 9, 0, 0, 1, 1, 0);   /* K = 0: C = relu(0 + bias) */
}

/* The reference above is sensitive: an unfused product-then-add gives other bits here. */
static void test_matmul_is_fused(void **state)
{
    float a[2] = {1.0f, 1.0f + 0x1p-12f}, b[2] = {-1.0f, 1.0f + 0x1p-12f}, c;   /* 2^-11 + 2^-24 */
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++) {
        bq_matmul_f32((bq_isa)isa, NULL, a, 2, b, 1, 0, NULL, 0, &c, 1, 1, 1, 2);
        float unfused = a[0] * b[0] + a[1] * b[1];
        assert_true(c == fmaf(a[1], b[1], fmaf(a[0], b[0], 0.0f)));
        assert_true(c != unfused);
    }
}

static void test_matmul_relu_special(void **state)
{
    /* relu(x) = x < 0 ? 0 : x on every path: NaN and -0 pass through. */
    float a[3] = {1.0f, 1.0f, 1.0f}, b[3] = {NAN, -0.0f, -2.0f}, bias[3] = {0.0f, -0.0f, 0.0f}, c[3];
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++) {
        bq_matmul_f32((bq_isa)isa, NULL, a, 1, b, 3, 0, bias, 1, c, 3, 1, 3, 1);
        assert_true(isnan(c[0]));
        assert_true(c[1] == 0.0f && !signbit(c[1]));   /* fmaf(1, -0, +0) = +0; + -0 = +0 */
        assert_true(c[2] == 0.0f && !signbit(c[2]));
    }
}

static void test_isa_env(void **state)
{
    bq_isa hw = bq_isa_detect();
    setenv("BQC_ISA", "portable", 1);
    assert_int_equal(bq_isa_detect(), BQ_ISA_PORTABLE);
    setenv("BQC_ISA", "avx2", 1);
    assert_int_equal(bq_isa_detect(), hw < BQ_ISA_AVX2 ? hw : BQ_ISA_AVX2);
    setenv("BQC_ISA", "avx512", 1);
    assert_int_equal(bq_isa_detect(), hw);
    unsetenv("BQC_ISA");
    assert_int_equal(bq_isa_detect(), hw);
    assert_string_equal(bq_isa_name(BQ_ISA_AVX512), "avx512");
    assert_string_equal(bq_status_str(BQ_ERR_NOMEM), "out of memory");
}

/* ---- layernorm, softmax ---- */

static void test_layernorm(void **state)
{
    uint64_t s = 7;
    const int64_t rows = 5, n = 77;
    float *x = rand_buf(&s, (size_t)(rows * n)), *g = rand_buf(&s, (size_t)n), *b = rand_buf(&s, (size_t)n);
    float *y = malloc((size_t)(rows * n) * sizeof *y);
    bq_layernorm_f32(x, g, b, 1e-5f, y, rows, n);
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n; i++) mean += x[r * n + i];
        mean /= n;
        for (int64_t i = 0; i < n; i++) var += (x[r * n + i] - mean) * (x[r * n + i] - mean);
        var /= n;
        for (int64_t i = 0; i < n; i++) {
            double want = (x[r * n + i] - mean) / sqrt(var + 1e-5) * g[i] + b[i];
            assert_true(fabs(y[r * n + i] - want) <= 1e-5 * (1 + fabs(want)));
        }
    }
    /* Exact rows: mean 0, variance 1 (eps 0); a constant row normalises to beta. */
    float e[4] = {-1, 1, -1, 1}, eg[4] = {2, 2, 2, 2}, eb[4] = {0.5f, 0.5f, 0.5f, 0.5f}, ey[4];
    bq_layernorm_f32(e, eg, eb, 0.0f, ey, 1, 4);
    assert_true(ey[0] == -1.5f && ey[1] == 2.5f && ey[2] == -1.5f && ey[3] == 2.5f);
    float k[3] = {3, 3, 3}, ky[3];
    bq_layernorm_f32(k, NULL, eb, 1e-5f, ky, 1, 3);
    assert_true(ky[0] == 0.5f && ky[1] == 0.5f && ky[2] == 0.5f);
    bq_layernorm_f32(e, NULL, NULL, 0.0f, e, 1, 4);   /* in place, no affine */
    assert_true(e[0] == -1.0f && e[1] == 1.0f);
    free(x), free(g), free(b), free(y);
}

static void test_softmax(void **state)
{
    uint64_t s = 11;
    const int64_t rows = 4, n = 33;
    float *x = rand_buf(&s, (size_t)(rows * n)), *y = malloc((size_t)(rows * n) * sizeof *y);
    memcpy(y, x, (size_t)(rows * n) * sizeof *y);
    bq_softmax_f32(y, rows, n);
    for (int64_t r = 0; r < rows; r++) {
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; j++) m = fmax(m, x[r * n + j]);
        for (int64_t j = 0; j < n; j++) sum += exp(x[r * n + j] - m);
        for (int64_t j = 0; j < n; j++) {
            double want = exp(x[r * n + j] - m) / sum;
            assert_true(fabs(y[r * n + j] - want) <= 2e-6 * want + 1e-12);
        }
    }
    float eq[4] = {3, 3, 3, 3}, big[2] = {1000.0f, 1000.0f}, masked[3] = {-FLT_MAX, -FLT_MAX, -FLT_MAX};
    bq_softmax_f32(eq, 1, 4);
    bq_softmax_f32(big, 1, 2);
    bq_softmax_f32(masked, 1, 3);
    assert_true(eq[0] == 0.25f && eq[3] == 0.25f && big[0] == 0.5f && big[1] == 0.5f);
    assert_true(masked[0] == 1.0f / 3.0f && masked[2] == 1.0f / 3.0f);
    free(x), free(y);
}

/* ---- attention ---- */

/* docs/ir.md, transcribed without the kernels: one query row at a time. */
static void naive_attention(const float *q, const float *k, const float *v, int64_t ld, const float *pk,
                            const float *pv, const int64_t *mask, int causal, float scale, float *out, int64_t B,
                            int64_t S, int64_t P, int64_t H, int64_t D)
{
    int64_t T = P + S;
    float *p = malloc((size_t)T * sizeof *p);
#define KEY(b, h, j, d) ((j) < P ? pk[(((b) * H + (h)) * P + (j)) * D + (d)] : k[((b) * S + (j) - P) * ld + (h) * D + (d)])
#define VAL(b, h, j, d) ((j) < P ? pv[(((b) * H + (h)) * P + (j)) * D + (d)] : v[((b) * S + (j) - P) * ld + (h) * D + (d)])
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < S; i++) {
                for (int64_t j = 0; j < T; j++) {
                    float acc = 0.0f;
                    for (int64_t d = 0; d < D; d++) acc = fmaf(q[(b * S + i) * ld + h * D + d] * scale, KEY(b, h, j, d), acc);
                    bool masked = (mask && mask[b * T + j] == 0) || (causal && j > P + i);
                    p[j] = masked ? -FLT_MAX : acc;
                }
                float m = p[0], sum = 0.0f;
                for (int64_t j = 1; j < T; j++) m = p[j] > m ? p[j] : m;
                for (int64_t j = 0; j < T; j++) sum += (p[j] = expf(p[j] - m));
                for (int64_t j = 0; j < T; j++) p[j] = p[j] / sum;
                for (int64_t d = 0; d < D; d++) {
                    float acc = 0.0f;
                    for (int64_t j = 0; j < T; j++) acc = fmaf(p[j], VAL(b, h, j, d), acc);
                    out[(b * S + i) * H * D + h * D + d] = acc;
                }
            }
#undef KEY
#undef VAL
    free(p);
}

static void check_attention(int64_t B, int64_t S, int64_t P, int64_t H, int64_t D, int causal, const int64_t *mask)
{
    uint64_t s = (uint64_t)(B * 1000 + S * 100 + P * 10 + H + D + causal) | 1;
    int64_t ld = 3 * H * D, T = P + S;   /* q, k, v interleaved in one [B, S, 3·H·D] buffer */
    float *qkv = rand_buf(&s, (size_t)(B * S * ld));
    float *pk = P ? rand_buf(&s, (size_t)(B * H * P * D)) : NULL, *pv = P ? rand_buf(&s, (size_t)(B * H * P * D)) : NULL;
    size_t no = (size_t)(B * S * H * D), np = (size_t)(B * H * T * D);
    float *want = malloc(no * sizeof(float)), *got = malloc(no * sizeof(float));
    float *prk = malloc(np * sizeof(float)), *prv = malloc(np * sizeof(float));
    float *scratch = malloc((size_t)bq_attention_scratch(S, P, D) * sizeof(float));
    naive_attention(qkv, qkv + H * D, qkv + 2 * H * D, ld, pk, pv, mask, causal, 0.125f, want, B, S, P, H, D);
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++) {
        memset(got, 0, no * sizeof(float));
        bq_attention_f32((bq_isa)isa, NULL, qkv, qkv + H * D, qkv + 2 * H * D, ld, pk, pv, mask, causal, 0.125f,
                         prk, prv, got, B, S, P, H, D, scratch);
        assert_memory_equal(got, want, no * sizeof(float));
        /* present = concat(past, new) */
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t j = 0; j < T; j++) {
                    const float *pr = prk + ((b * H + h) * T + j) * D;
                    const float *src = j < P ? pk + ((b * H + h) * P + j) * D : qkv + (b * S + j - P) * ld + H * D + h * D;
                    assert_memory_equal(pr, src, (size_t)D * sizeof(float));
                }
    }
    free(qkv), free(pk), free(pv), free(want), free(got), free(prk), free(prv), free(scratch);
}

static void test_attention(void **state)
{
    check_attention(1, 5, 0, 2, 8, 1, NULL);
    check_attention(2, 4, 0, 3, 16, 0, NULL);
    int64_t pad[2 * 6] = {0, 0, 1, 1, 1, 1, /* left padding */ 1, 1, 1, 1, 1, 1};
    check_attention(2, 6, 0, 2, 8, 1, pad);
    int64_t past_mask[2 * 7] = {1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1};
    check_attention(2, 4, 3, 2, 8, 1, past_mask);   /* with a KV cache */
    check_attention(1, 1, 9, 4, 64, 1, NULL);       /* one decode step */
}

/* A fully masked row (left padding under a causal mask) averages V over every key. */
static void test_attention_fully_masked(void **state)
{
    const int64_t S = 3, H = 1, D = 2;
    float q[3 * 2] = {1, 2, 3, 4, 5, 6}, k[3 * 2] = {1, 0, 0, 1, 1, 1}, v[3 * 2] = {1, 10, 2, 20, 6, 60};
    int64_t mask[3] = {0, 0, 1};
    float out[3 * 2], pk[3 * 2], pv[3 * 2], scratch[3 * 2 + 3 * 3];
    assert_int_equal(bq_attention_scratch(S, 0, D), 15);
    bq_attention_f32(bq_isa_detect(), NULL, q, k, v, 2, NULL, NULL, mask, 1, 1.0f, pk, pv, out, 1, S, 0, H, D, scratch);
    /* rows 0 and 1 see only masked keys: uniform over all three keys */
    float third = 1.0f / 3.0f;
    float avg0 = fmaf(third, 6.0f, fmaf(third, 2.0f, fmaf(third, 1.0f, 0.0f)));
    assert_true(out[0] == avg0 && out[2] == avg0);
    assert_true(out[4] == 6.0f && out[5] == 60.0f);   /* row 2 sees only key 2 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_shapes),
        cmocka_unit_test(test_matmul_blocks),
        cmocka_unit_test(test_matmul_is_fused),
        cmocka_unit_test(test_matmul_relu_special),
        cmocka_unit_test(test_isa_env),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_attention_fully_masked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
