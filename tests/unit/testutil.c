/* testutil.c — shared helpers for the cmocka unit tests. */
#include <math.h>
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

uint64_t test_rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

float test_rng_float(uint64_t *s)
{
    float u = (float)(test_rng_next(s) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
    return u * (float)(1 << (test_rng_next(s) % 6));
}

bq_format test_format(const char *name)
{
    bq_format f;
    char why[200];
    if (bq_format_parse(name, strlen(name), BQ_ALLOW_AUTO, &f, why, sizeof why) != BQ_OK)
        fail_msg("bad format %s: %s", name, why);
    return f;
}

int64_t test_first_diff(const float *want, const float *got, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&want[i], &got[i], sizeof *got) != 0 && !(isnan(want[i]) && isnan(got[i]))) return i;
    return -1;
}

void test_ref_matmul(const bq_format *fa, const float *A, int64_t lda, const bq_format *fw, const unsigned char *qw,
                     const float *bias, int relu, float *want, int64_t ldc, int64_t M, int64_t N, int64_t K)
{
    size_t ra = bq_format_bytes(fa, K), rw = bq_format_bytes(fw, K);
    unsigned char *qa = malloc(ra + 1);
    assert_non_null(qa);
    for (int64_t i = 0; i < M * ldc; i++) want[i] = -7.0f;
    for (int64_t m = 0; m < M; m++) {
        bq_quantize(fa, A + m * lda, K, qa);
        for (int64_t n = 0; n < N; n++) {
            float y = bq_dot_ref(fa, qa, fw, qw + (size_t)n * rw, K);
            y = y + bias[n];
            if (relu) y = y < 0.0f ? 0.0f : y;
            want[m * ldc + n] = y;
        }
    }
    free(qa);
}

bq_pool *test_pools[3];

int test_pools_setup(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        if (bq_pool_create(i + 1, &test_pools[i]) != BQ_OK) return -1;
    return 0;
}

int test_pools_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) bq_pool_destroy(test_pools[i]);
    return 0;
}
