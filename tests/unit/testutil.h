/* testutil.h — shared helpers for the cmocka unit tests. */
#ifndef BQC_TESTUTIL_H
#define BQC_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ir.h"

/* A Diag that collects messages into a buffer, so tests can assert on them. */
typedef struct TestDiag { Diag d; DiagBuffer buf; } TestDiag;
void test_diag_init(TestDiag *t);
void test_diag_free(TestDiag *t);
/* Asserts that the collected messages contain `needle`. */
#define assert_diag_contains(t, needle) test_assert_contains((t)->buf.text, (needle), __FILE__, __LINE__)
void test_assert_contains(const char *hay, const char *needle, const char *file, int line);

/* Path of a file in the source tree (BQC_SOURCE_DIR, else the compile-time source dir). */
const char *test_source_path(const char *rel);
/* A fresh scratch directory under the build tree (or /tmp), created once per process. */
const char *test_tmpdir(void);
/* Writes bytes to dir/name and returns the path (static buffer rotated among 8). */
const char *test_write_file(const char *name, const void *data, size_t n);

/* ---- numeric tests ---- */

/* xorshift: deterministic data; test_rng_float has varied magnitudes (u·2^0..5, u in [-1, 1)),
 * so a reordered or unfused sum gives other bits. */
uint64_t test_rng_next(uint64_t *s);
float test_rng_float(uint64_t *s);
/* A number format by name (bq_format_parse, "/auto" allowed); fails the test if it does not parse. */
bq_format test_format(const char *name);
/* The first index where want and got differ bitwise, -1 if none; any two NaNs are equal (C
 * fixes neither the sign nor the payload a NaN operand passes on, so only NaN-ness is part
 * of the contract). */
int64_t test_first_diff(const float *want, const float *got, int64_t n);
/* The quantised matmul's oracle: want[m][n] = bq_dot_ref(A row m quantised in fa, packed
 * weight row n of qw in fw) + bias[n] (then ReLU), rows ldc apart; columns past N are -7. */
void test_ref_matmul(const bq_format *fa, const float *A, int64_t lda, const bq_format *fw, const unsigned char *qw,
                     const float *bias, int relu, float *want, int64_t ldc, int64_t M, int64_t N, int64_t K);
/* Thread pools of 1, 2 and 3 threads, made by test_pools_setup as a cmocka group setup. */
extern bq_pool *test_pools[3];
int test_pools_setup(void **state);
int test_pools_teardown(void **state);

#endif
