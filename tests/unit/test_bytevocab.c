/* test_bytevocab.c — the byte-level vocabulary reader (frontend/text.c). */
#include <stdlib.h>
#include <string.h>

#include "frontend.h"
#include "testutil.h"

static void test_bytes_map_to_ids(void **state)
{
    (void)state;
    TestDiag t;
    test_diag_init(&t);
    const unsigned char text[] = {'H', 'i', '\n', 0, 255};
    const char *p = test_write_file("bytes.txt", text, sizeof text);
    int64_t n = -1;
    int64_t *ids = text_read_ids(&t.d, p, &n);
    assert_non_null(ids);
    assert_int_equal(n, 5);
    const int64_t want[] = {'H' + 4, 'i' + 4, '\n' + 4, 4, 259};
    assert_memory_equal(ids, want, sizeof want);
    for (int64_t i = 0; i < n; i++) assert_true(ids[i] >= BYTEVOCAB_OFFSET && ids[i] < BYTEVOCAB_SIZE);
    free(ids);
    test_diag_free(&t);
}

static void test_large_and_empty_files(void **state)
{
    (void)state;
    TestDiag t;
    test_diag_init(&t);
    size_t big = 200000;   /* crosses the reader's buffer and growth steps */
    unsigned char *buf = malloc(big);
    for (size_t i = 0; i < big; i++) buf[i] = (unsigned char)(i * 7);
    const char *p = test_write_file("big.txt", buf, big);
    int64_t n = 0;
    int64_t *ids = text_read_ids(&t.d, p, &n);
    assert_non_null(ids);
    assert_int_equal(n, (int64_t)big);
    for (size_t i = 0; i < big; i++) assert_int_equal(ids[i], buf[i] + 4);
    free(ids);
    free(buf);
    const char *e = test_write_file("empty.txt", "", 0);
    ids = text_read_ids(&t.d, e, &n);
    assert_non_null(ids);
    assert_int_equal(n, 0);
    free(ids);
    test_diag_free(&t);
}

static void test_missing_file(void **state)
{
    (void)state;
    TestDiag t;
    test_diag_init(&t);
    int64_t n;
    assert_null(text_read_ids(&t.d, "/nonexistent/wiki.txt", &n));
    assert_diag_contains(&t, "cannot open '/nonexistent/wiki.txt': No such file or directory");
    test_diag_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_map_to_ids),
        cmocka_unit_test(test_large_and_empty_files),
        cmocka_unit_test(test_missing_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
