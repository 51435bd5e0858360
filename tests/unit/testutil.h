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

#endif
