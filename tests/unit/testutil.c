/* testutil.c — shared helpers for the cmocka unit tests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

void test_diag_init(TestDiag *t)
{
    memset(t, 0, sizeof *t);
    diag_init(&t->d, diag_sink_buffer, &t->buf);
}

void test_diag_free(TestDiag *t) { diag_buffer_free(&t->buf); }

void test_assert_contains(const char *hay, const char *needle, const char *file, int line)
{
    if (hay && strstr(hay, needle)) return;
    fprintf(stderr, "%s:%d: expected diagnostics to contain \"%s\", got:\n%s\n", file, line, needle,
            hay ? hay : "(nothing)");
    _fail(file, line);
}

const char *test_source_path(const char *rel)
{
    static char buf[8][1024];
    static int k;
    const char *root = getenv("BQC_SOURCE_DIR");
    char *b = buf[k++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", root ? root : ".", rel);
    return b;
}

const char *test_tmpdir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("BQC_BUILD_DIR");
        snprintf(dir, sizeof dir, "%s/test-tmp-%d", base ? base : "/tmp", (int)getpid());
        mkdir(dir, 0755);
    }
    return dir;
}

const char *test_write_file(const char *name, const void *data, size_t n)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ & 7];
    snprintf(p, sizeof buf[0], "%s/%s", test_tmpdir(), name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    return p;
}
