/* test_qkern.c — the fast quantised matmul kernels (runtime/qkern*) against bq_dot_ref.
 *
 * Every kernel — the runtime's specialisations, its generic instantiation, and kernels this
 * file instantiates itself with BQ_QK_DEFINE the way generated code does (shapes folded) —
 * must give the bq_dot_ref loop's bits on every ISA path this CPU has (portable forced too)
 * and with 1, 2 and 3 threads: GEMV (M = 1) and GEMM, K a multiple of 64 or not, a short last
 * block, N not a multiple of 16, on data with outliers, all-zero blocks, -0, saturating
 * maxima, rows scaled from 2^100 down to 2^-100 (scale products underflow), NaN and Inf in
 * activation blocks, and adversarial integer extremes (every code at its largest magnitude).
 * Pairs without a kernel report kind 0; weights the layout cannot hold are refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "qkern.h"

/* Data kinds: 0 random with outliers, zero blocks, -0, scaled rows, NaN/Inf and subnormal
 * rows (activations); 1 adversarial: values at ±amax so every code saturates, alternating
 * signs, some blocks with a single non-zero element. */
static float *make_data(uint64_t *s, int64_t rows, int64_t K, int64_t ld, int nan_rows, int kind)
{
    float *x = malloc((size_t)(rows * ld + 1) * sizeof *x);
    for (int64_t r = 0; r < rows; r++) {
        static const float row_scale[8] = {1.0f, 0x1p+20f, 1.0f, 0x1p-100f, 0x1p-60f, 0x1p+100f, 0x1p-63f, 0x1p-3f};
        float rs = row_scale[r % 8];
        if (nan_rows && r % 8 == 2) rs = 0x1p-140f;   /* activations: blocks whose largest value is subnormal */
        for (int64_t k = 0; k < ld; k++) {
            float v = test_rng_float(s);
            if (kind == 1) v = (k & 1 ? -1.0f : 1.0f) * (k % 5 == 0 ? 0.999f : 1.0f) * (float)(1 << (r % 3));
            if (kind == 1 && (k / 16) % 3 == 2) v = (k % 16 == 5) ? -3.5f : 0.0f;
            x[r * ld + k] = k < K ? v * rs : 1234.5f;
        }
        if (kind == 0 && K > 9) x[r * ld + (int64_t)(test_rng_next(s) % (uint64_t)K)] *= 300.0f;   /* outlier */
        if (K > 40)
            for (int64_t k = 16; k < 32; k++) x[r * ld + k] = (k & 1) ? -0.0f : 0.0f;   /* zero block */
        if (nan_rows && r % 4 == 1) x[r * ld + K / 2] = NAN;
        if (nan_rows && r % 7 == 3) x[r * ld + 0] = INFINITY;
    }
    return x;
}

/* Kernels to run besides the runtime's (bq_qk_matmul): explicit (avx512, portable) pairs. */
typedef struct Kern {
    const char *name;
    bq_qk_fn avx512, portable;
} Kern;

/* One shape of one pair: the reference loop, then every ISA x pool x kernel by memcmp. */
static int check(uint64_t *s, const char *an, const char *wn, int64_t M, int64_t N, int64_t K, int relu, int kind,
                 const Kern *kerns, int nk)
{
    bq_format fa = test_format(an), fw = test_format(wn);
    int64_t lda = K + 3, ldc = N + 2;
    float *A = make_data(s, M, K, lda, 1, kind), *W = make_data(s, N, K, K, 0, kind);
    float *bias = malloc((size_t)N * sizeof *bias);
    for (int64_t n = 0; n < N; n++) bias[n] = n % 4 == 3 ? -0.0f : test_rng_float(s);
    unsigned char *qw = malloc(bq_format_bytes(&fw, K) * (size_t)N + 1);
    assert_int_equal(bq_qpack_weights(&fw, W, K, 1, N, K, qw), BQ_OK);
    size_t pbytes = bq_qk_packed_bytes(&fw, N, K);
    assert_true(pbytes > 0);
    unsigned char *pw = aligned_alloc(64, (pbytes + 63) & ~(size_t)63);
    assert_int_equal(bq_qk_pack(&fw, qw, N, K, pw), BQ_OK);
    float *want = malloc((size_t)(M * ldc) * sizeof *want), *got = malloc((size_t)(M * ldc) * sizeof *got);
    test_ref_matmul(&fa, A, lda, &fw, qw, bias, relu, want, ldc, M, N, K);
    int bad = 0;
    for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect() && !bad; isa++)
        for (int p = 0; p < 3 && !bad; p++)
            for (int k = -1; k < nk && !bad; k++) {
                for (int64_t i = 0; i < M * ldc; i++) got[i] = -7.0f;
                bq_status st = k < 0 ? bq_qk_matmul((bq_isa)isa, test_pools[p], &fa, A, lda, &fw, pw, bias, relu, got, ldc,
                                                    M, N, K)
                                     : bq_qk_matmul_spec((bq_isa)isa, test_pools[p], &fa, A, lda, &fw, pw, bias, relu, got,
                                                         ldc, M, N, K, kerns[k].avx512, kerns[k].portable);
                int64_t i = st == BQ_OK ? test_first_diff(want, got, M * ldc) : -2;
                if (i != -1) {
                    print_error("%s x %s (%s), %s, %d threads, M=%lld N=%lld K=%lld relu=%d data=%d: ", an, wn,
                                k < 0 ? "runtime" : kerns[k].name, bq_isa_name((bq_isa)isa), bq_pool_threads(test_pools[p]),
                                (long long)M, (long long)N, (long long)K, relu, kind);
                    if (i == -2) print_error("status %s\n", bq_status_str(st));
                    else print_error("C[%lld][%lld] = %a, want %a\n", (long long)(i / ldc), (long long)(i % ldc), got[i],
                                     want[i]);
                    bad = 1;
                }
            }
    free(A), free(W), free(bias), free(qw), free(pw), free(want), free(got);
    return bad;
}

/* GEMV and GEMM shapes around the kernels' tiles (4 groups of 16 for the GEMV, 4 rows x 2
 * groups for the GEMM), K a multiple of 64 or not, and a short last block. */
static int check_shapes(uint64_t *s, const char *a, const char *w, const Kern *kerns, int nk)
{
    bq_format fw = test_format(w);
    int B = fw.block;
    const int64_t shapes[][3] = {
        {1, 70, 4 * B},      {1, 130, 3 * B + 5}, {1, 17, B - 3},       {5, 33, 2 * B + 1},
        {9, 16, 64 + B},     {2, 31, 200},        {13, 50, 3 * B},      {1, 64, 320},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes && !bad; i++)
        for (int kind = 0; kind < 2 && !bad; kind++)
            bad = check(s, a, w, shapes[i][0], shapes[i][1], shapes[i][2], (int)(i & 1), kind, kerns, nk);
    return bad;
}

/* The fast set of the paper's regime, each against itself and the usual partners. */
static void test_fast_pairs(void **state)
{
    (void)state;
    static const char *const pairs[][2] = {
        {"bfp8/16", "bfp8/16"}, {"bfp6/16", "bfp6/16"}, {"bfp8/16", "bfp6/16"}, {"bfp4/16", "bfp4/16"},
        {"bfp8/16", "bfp4/16"}, {"bfp6/32", "bfp6/32"}, {"bfp8/64", "bfp5/64"}, {"bfp7/32", "bfp7/32"},
        {"bfp3/8", "bfp3/8"},   {"bfp8/8", "bfp8/8"},   {"bfp4/64", "bfp4/64"}, {"bfp5/16", "bfp5/16"},
        {"mxint8", "mxint8"},   {"mxint8", "mxfp4"},    {"mxfp4", "mxfp4"},     {"bfp8/32", "mxint8"},
        {"int8/32", "int4/32"}, {"int4/32", "int4/32"}, {"int8/32", "int8/32"}, {"int8/64", "int6/64"},
        {"int5/16", "int5/16"}, {"int3/16", "int2/16"}, {"bfp8/32", "int4/32"}, {"int8/32", "bfp4/32"},
        {"fp32", "nf4/64"},     {"bfp8/64", "nf4/64"},  {"nf4/64", "nf4/64"},   {"fp32", "nf4/16"},
        {"fp32", "bfp4/16"},    {"fp16", "int4/32"},    {"nf4/32", "mxfp4"},    {"bf16", "bfp3/16"},
        {"mxfp6e2m3", "bfp6/32"}, {"bl4/16", "bfp8/16"}, {"mxint8", "bl4/32"},  {"bfp8/32", "mxfp6e2m3"},
    };
    uint64_t s = 0x9e3779b97f4a7c15ull;
    int bad = 0;
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        bq_format fa = test_format(pairs[i][0]), fw = test_format(pairs[i][1]);
        bq_qk_spec sp = bq_qk_spec_of(&fa, &fw);
        if (!sp.kind) {
            print_error("%s x %s: no kernel\n", pairs[i][0], pairs[i][1]);
            bad = 1;
            continue;
        }
        bad |= check_shapes(&s, pairs[i][0], pairs[i][1], NULL, 0);
    }
    assert_int_equal(bad, 0);
}

/* Kernels instantiated here with constants, as generated code does (K folded as nb). */
BQ_QK_DEFINE(k_bfp8_16, 1, 8, 0, 1, 0, 16, 20)
BQ_QK_DEFINE(k_bfp6_16, 1, 6, 0, 1, 0, 16, 20)
BQ_QK_DEFINE(k_bfp4_16, 1, 4, 0, 1, 0, 16, 20)
BQ_QK_DEFINE(k_int4_32, 1, 4, 0, 2, 0, 32, 10)
BQ_QK_DEFINE(k_mxint8, 1, 8, 0, 1, 1, 32, 10)
BQ_QK_DEFINE(k_mxfp4, 1, 4, 1, 1, 1, 32, 10)
BQ_QK_DEFINE(k_nf4_64, 2, 4, 1, 4, 0, 64, 5)
BQ_QK_DEFINE(k_bfp5_64, 1, 6, 0, 1, 0, 64, 0)

static void test_specialised(void **state)
{
    (void)state;
    static const struct {
        const char *a, *w;
        Kern k;
    } cases[] = {
        {"bfp8/16", "bfp8/16", {"bfp8/16 K=320", BQ_QK_AVX512_FN(k_bfp8_16), k_bfp8_16_portable}},
        {"bfp6/16", "bfp6/16", {"bfp6/16 K=320", BQ_QK_AVX512_FN(k_bfp6_16), k_bfp6_16_portable}},
        {"bfp8/16", "bfp4/16", {"bfp4/16 K=320", BQ_QK_AVX512_FN(k_bfp4_16), k_bfp4_16_portable}},
        {"int8/32", "int4/32", {"int4/32 K=320", BQ_QK_AVX512_FN(k_int4_32), k_int4_32_portable}},
        {"mxint8", "mxint8", {"mxint8 K=320", BQ_QK_AVX512_FN(k_mxint8), k_mxint8_portable}},
        {"mxint8", "mxfp4", {"mxfp4 K=320", BQ_QK_AVX512_FN(k_mxfp4), k_mxfp4_portable}},
        {"fp32", "nf4/64", {"nf4/64 K=320", BQ_QK_AVX512_FN(k_nf4_64), k_nf4_64_portable}},
    };
    uint64_t s = 77;
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const int64_t shapes[][2] = {{1, 70}, {1, 16}, {6, 35}, {17, 64}};
        for (int j = 0; j < 4; j++)
            for (int kind = 0; kind < 2; kind++)
                bad |= check(&s, cases[i].a, cases[i].w, shapes[j][0], shapes[j][1], 320, j & 1, kind, &cases[i].k, 1);
    }
    Kern k5 = {"bfp5/64 nb from the task", BQ_QK_AVX512_FN(k_bfp5_64), k_bfp5_64_portable};
    bad |= check(&s, "bfp8/64", "bfp5/64", 3, 40, 200, 0, 0, &k5, 1);
    bad |= check(&s, "bfp8/64", "bfp5/64", 1, 40, 700, 1, 0, &k5, 1);
    assert_int_equal(bad, 0);
}

/* Larger shapes: many groups split over threads, GEMV and GEMM. */
static void test_larger(void **state)
{
    (void)state;
    uint64_t s = 99;
    int bad = 0;
    bad |= check(&s, "bfp8/16", "bfp4/16", 1, 1000, 1024, 1, 0, NULL, 0);
    bad |= check(&s, "bfp6/16", "bfp6/16", 1, 515, 2000, 0, 0, NULL, 0);
    bad |= check(&s, "mxint8", "mxint8", 37, 130, 1000, 1, 0, NULL, 0);
    bad |= check(&s, "int8/32", "int4/32", 64, 90, 768, 0, 0, NULL, 0);
    bad |= check(&s, "fp32", "nf4/64", 19, 99, 640, 0, 0, NULL, 0);
    assert_int_equal(bad, 0);
}

/* Which pairs have kernels, and what the layout refuses. */
static void test_coverage_and_errors(void **state)
{
    (void)state;
    static const char *const none[][2] = {
        {"fp32", "bfp8/16"},   {"fp32", "fp32"},          {"bfp8/16", "fp32"},     {"mxfp8e4m3", "bfp4/32"},
        {"bfp8/16", "bfp8/32"}, {"mxfp8e5m2", "mxint8"},  {"bfp8/16", "bm8e4/16"}, {"nf4/64", "bfp8/64"},
    };
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        bq_format fa = test_format(none[i][0]), fw = test_format(none[i][1]);
        if (bq_qk_spec_of(&fa, &fw).kind != 0) fail_msg("%s x %s should have no kernel", none[i][0], none[i][1]);
    }
    bq_format fa = test_format("bfp8/16"), fw = test_format("bfp8/16"), f32 = test_format("fp32");
    assert_int_equal(bq_qk_packed_bytes(&f32, 16, 16), 0);
    /* a non-zero weight block whose scale is subnormal in fp32 has no encoding */
    float w[16];
    for (int i = 0; i < 16; i++) w[i] = 0x1p-125f * (float)(i + 1);
    unsigned char q[32], pw[4096];
    assert_int_equal(bq_qpack_weights(&fw, w, 16, 1, 1, 16, q), BQ_OK);
    assert_true(bq_qk_packed_bytes(&fw, 1, 16) <= sizeof pw);
    assert_int_equal(bq_qk_pack(&fw, q, 1, 16, pw), BQ_ERR_FORMAT);
    /* a packed weight of other extents, or of another format, is refused */
    for (int i = 0; i < 16; i++) w[i] = (float)i;
    assert_int_equal(bq_qpack_weights(&fw, w, 16, 1, 1, 16, q), BQ_OK);
    assert_int_equal(bq_qk_pack(&fw, q, 1, 16, pw), BQ_OK);
    float x[16] = {1}, c[2];
    assert_int_equal(bq_qk_matmul(BQ_ISA_PORTABLE, NULL, &fa, x, 16, &fw, pw, NULL, 0, c, 1, 1, 1, 16), BQ_OK);
    assert_int_equal(bq_qk_matmul(BQ_ISA_PORTABLE, NULL, &fa, x, 16, &fw, pw, NULL, 0, c, 1, 1, 2, 16), BQ_ERR_FORMAT);
    bq_format f4 = test_format("bfp4/16");
    assert_int_equal(bq_qk_matmul(BQ_ISA_PORTABLE, NULL, &fa, x, 16, &f4, pw, NULL, 0, c, 1, 1, 1, 16), BQ_ERR_FORMAT);
    assert_int_equal(bq_qk_matmul(BQ_ISA_PORTABLE, NULL, &f32, x, 16, &fw, pw, NULL, 0, c, 1, 1, 1, 16), BQ_ERR_ARG);
    assert_int_equal(bq_qk_matmul(BQ_ISA_PORTABLE, NULL, &fa, x, 16, &fw, pw, NULL, 0, c, 1, -1, 1, 16), BQ_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_pairs),
        cmocka_unit_test(test_specialised),
        cmocka_unit_test(test_larger),
        cmocka_unit_test(test_coverage_and_errors),
    };
    return cmocka_run_group_tests(tests, test_pools_setup, test_pools_teardown);
}
