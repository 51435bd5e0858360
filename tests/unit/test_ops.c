/* test_ops.c — the op helpers of bqcrt_ops.h (runtime/ops.c) that the LLVM backend inlines.
 *
 * Each helper against a direct transcription of the C backend's loop: a broadcasting binary
 * row over a two-level nest with offsets, the logical and comparison rows, casts (integer
 * wrapping, through double, to bool), Where, gather with negative and out-of-range indices,
 * ONNX slice clamping for both step signs, and cumsum (reverse, exclusive, integer wrap).
 */
#include <math.h>
#include <string.h>

#include "testutil.h"
#include "bqcrt_ops.h"

/* A nest of extents n0 x n1 (outer first); the rest 1. */
static bq_nest nest2(int64_t n0, int64_t n1)
{
    bq_nest L;
    memset(&L, 0, sizeof L);
    for (int k = 0; k < BQ_NEST_MAX; k++) L.n[k] = 1;
    L.n[0] = n0, L.n[1] = n1;
    return L;
}

static void test_binary_broadcast(void **state)
{
    (void)state;
    /* y[3,4] = a[3,4] (from offset 2) + b[4] (broadcast along the outer level). */
    float a[14], b[4], y[12];
    for (int i = 0; i < 14; i++) a[i] = 0.1f * (float)i - 0.5f;
    for (int i = 0; i < 4; i++) b[i] = 1.0f / (float)(i + 3);
    bq_nest L = nest2(3, 4);
    L.st[0][0] = 4, L.st[0][1] = 1, L.st[1][0] = 4, L.st[1][1] = 1, L.off[1] = 2, L.st[2][1] = 1;
    bq_ew_attr at = {{0, 0}, {0}};
    bq_ew_ADD_f32(&L, &at, y, a, b);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) assert_true(y[i * 4 + j] == a[2 + i * 4 + j] + b[j]);
}

static void test_rows(void **state)
{
    (void)state;
    bq_nest L = nest2(1, 6);
    for (int k = 0; k < 3; k++) L.st[k][1] = 1;
    bq_ew_attr at = {{0.25f, 0}, {0}};
    int32_t a[6] = {7, -7, 7, -7, 5, INT32_MIN}, b[6] = {3, 3, -3, -3, 0, -1}, m[6];
    bq_ew_MOD_i32(&L, &at, m, a, b);
    const int32_t want[6] = {1, 2, -2, -1, 0, 0};   /* Python-style modulus; y == 0 and MIN % -1 give 0 */
    assert_memory_equal(m, want, sizeof want);
    double x[6] = {1, 2, NAN, -1, 0, 3}, z[6] = {2, 2, 1, -2, -0.0, 4};
    uint8_t lt[6], xo[6];
    bq_ew_LESS_f64(&L, &at, lt, x, z);
    const uint8_t want_lt[6] = {1, 0, 0, 0, 0, 1};
    assert_memory_equal(lt, want_lt, 6);
    uint8_t p[6] = {0, 1, 0, 1, 1, 0}, q[6] = {0, 0, 1, 1, 1, 1};
    bq_ew_XOR_bool(&L, &at, xo, p, q);
    const uint8_t want_xo[6] = {0, 1, 1, 0, 0, 1};
    assert_memory_equal(xo, want_xo, 6);
    float v[6] = {-4, 4, -0.5f, 0, 1, -1}, r[6];
    L = nest2(1, 6);
    L.st[0][1] = L.st[1][1] = 1;
    bq_ew_LEAKY_RELU_f32(&L, &at, r, v);
    for (int i = 0; i < 6; i++) assert_true(r[i] == (v[i] < 0 ? 0.25f * v[i] : v[i]));
}

static void test_casts_where(void **state)
{
    (void)state;
    bq_nest L = nest2(1, 4);
    L.st[0][1] = L.st[1][1] = 1;
    int64_t a[4] = {300, -1, 9007199254740993LL, 0};
    uint8_t u[4], tb[4];
    float f[4];
    bq_cast_i64_u8(&L, u, a);
    const uint8_t want_u[4] = {44, 255, 1, 0};
    assert_memory_equal(u, want_u, 4);
    bq_cast_i64_f32(&L, f, a);
    assert_true(f[2] == (float)(double)9007199254740993LL && f[1] == -1.0f);
    float g[4] = {0.0f, -0.0f, NAN, 1e-30f};
    bq_cast_f32_bool(&L, tb, g);
    const uint8_t want_b[4] = {0, 0, 1, 1};
    assert_memory_equal(tb, want_b, 4);
    /* Where: the condition broadcast along the inner level. */
    uint32_t x[4] = {1, 2, 3, 4}, y[4] = {10, 20, 30, 40}, o[4];
    uint8_t c[2] = {1, 0};
    L = nest2(2, 2);
    L.st[0][0] = 2, L.st[0][1] = 1, L.st[1][0] = 1, L.st[2][0] = 2, L.st[2][1] = 1, L.st[3][0] = 2, L.st[3][1] = 1;
    bq_where_4(&L, o, c, x, y);
    const uint32_t want_o[4] = {1, 2, 30, 40};
    assert_memory_equal(o, want_o, sizeof want_o);
}

static void test_gather_slice_cumsum(void **state)
{
    (void)state;
    float data[2][3] = {{1, 2, 3}, {4, 5, 6}}, out[2][2];
    int64_t idx[2] = {-1, 0};
    assert_int_equal(bq_gather_i64(out, data, idx, 2, 2, 3, sizeof(float)), BQ_OK);
    assert_true(out[0][0] == 3 && out[0][1] == 1 && out[1][0] == 6 && out[1][1] == 4);
    int64_t bad[1] = {3};
    assert_int_equal(bq_gather_i64(out, data, bad, 1, 1, 3, sizeof(float)), BQ_ERR_ARG);
    int64_t s;
    assert_int_equal(bq_slice_bound(-3, INT64_MAX, 1, 10, 3, &s), BQ_OK);
    assert_int_equal(s, 7);
    assert_int_equal(bq_slice_bound(-1, INT64_MIN, -2, 10, 5, &s), BQ_OK);   /* 9, 7, 5, 3, 1 */
    assert_int_equal(s, 9);
    assert_int_equal(bq_slice_bound(0, 4, 1, 10, 5, &s), BQ_ERR_ARG);       /* extent 4, not 5 */
    int32_t x[4] = {INT32_MAX, 1, 2, 3}, y[4];
    bq_cumsum_i32(y, x, 1, 4, 1, 0, 0);
    assert_true(y[0] == INT32_MAX && y[1] == INT32_MIN && y[3] == INT32_MIN + 5);
    bq_cumsum_i32(y, x, 1, 4, 1, 1, 1);   /* reverse, exclusive */
    assert_true(y[3] == 0 && y[2] == 3 && y[1] == 5 && y[0] == 6);
    float fx[6] = {1, 2, 3, 4, 5, 6}, fy[6];
    bq_cumsum_f32(fy, fx, 1, 3, 2, 0, 0);   /* [1, 3, 2]: sums along the middle axis */
    assert_true(fy[0] == 1 && fy[1] == 2 && fy[2] == 4 && fy[3] == 6 && fy[4] == 9 && fy[5] == 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_broadcast),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_casts_where),
        cmocka_unit_test(test_gather_slice_cumsum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
