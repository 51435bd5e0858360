/* test_golden.c — the golden-test runner, tests/golden/run_golden.sh, against a stand-in bqc
 * (a shell script that prints its input back as the identity pass would): matching and
 * differing output, the ignored first comment line, BQC_UPDATE_GOLDEN, failure cases with
 * .err files, crashes that must not pass as expected failures, missing files and cases.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

/* Stands in for bqc: the identity pass, with inputs named *bad* failing and *crash* aborting. */
static const char FAKE_BQC[] =
    "#!/bin/sh\n"
    "case \"$1\" in\n"
    "  *crash*) echo 'half a message' >&2; kill -ABRT $$ ;;\n"
    "  *bad*) echo \"$1:3:8: error: unknown op 'Frob'\" >&2; exit 1 ;;\n"
    "esac\n"
    "if [ \"$2 $3 $4\" != '--passes=demo --verify-each --emit=ir' ]; then echo \"bad args: $*\" >&2; exit 1; fi\n"
    "echo \"# bqc IR $1\"\n"
    "sed '1{/^#/d}' \"$1\"\n";

static const char GOLDEN_IR[] = "opset 17\ngraph @main() -> () {\n}\n";

/* Runs the runner on the demo pass; returns its exit status, output (both streams) in *out. */
static int run_golden(const char *dir, const char *env, char **out)
{
    static char cmd[4096];
    const char *script = test_source_path("tests/golden/run_golden.sh");
    if (access(script, R_OK) != 0) fail_msg("%s not found: set BQC_SOURCE_DIR to the source tree", script);
    char fake[1024];
    snprintf(fake, sizeof fake, "%s/fake-bqc", test_tmpdir());
    snprintf(cmd, sizeof cmd, "%s bash '%s' '%s' demo '%s' 2>&1", env, script, fake, dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = 0, cap = 4096;
    *out = malloc(cap);
    for (size_t k; (k = fread(*out + n, 1, cap - n - 1, f)) > 0;) {
        n += k;
        if (n + 1 == cap) *out = realloc(*out, cap *= 2);
    }
    (*out)[n] = 0;
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void expect_run(const char *dir, const char *env, int want_status, const char *want_text)
{
    char *out;
    int status = run_golden(dir, env, &out);
    if (status != want_status || !strstr(out, want_text))
        fail_msg("run_golden.sh: want status %d and \"%s\", got %d:\n%s", want_status, want_text, status, out);
    free(out);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void remove_case_file(const char *dir, const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(unlink(path), 0);
}

static void test_golden_runner(void **state)
{
    (void)state;
    const char *fake = test_write_file("fake-bqc", FAKE_BQC, strlen(FAKE_BQC));
    assert_int_equal(chmod(fake, 0755), 0);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/golden-demo", test_tmpdir());
    mkdir(dir, 0755);
    expect_run(dir, "", 1, "no golden cases for pass demo");

    test_write_file("golden-demo/ok.ir", GOLDEN_IR, strlen(GOLDEN_IR));
    const char *expected = test_write_file("golden-demo/ok.expected", "", 0);
    expect_run(dir, "", 1, "FAIL demo/ok: output differs from ok.expected");
    expect_run(dir, "", 1, "+opset 17");
    expect_run(dir, "BQC_UPDATE_GOLDEN=1", 0, "UPDATED");
    char *text = slurp(expected);
    assert_string_equal(text, "# ok.ir after --passes=demo\nopset 17\ngraph @main() -> () {\n}\n");
    free(text);
    expect_run(dir, "", 0, "golden demo: 1 cases passed");
    /* Only the first line is free, and only when it is a comment. */
    test_write_file("golden-demo/ok.expected", GOLDEN_IR, strlen(GOLDEN_IR));
    expect_run(dir, "", 0, "PASS demo/ok");
    test_write_file("golden-demo/ok.expected", "# x\n# y\nopset 17\ngraph @main() -> () {\n}\n", 40);
    expect_run(dir, "", 1, "-# y");

    test_write_file("golden-demo/ok.expected", GOLDEN_IR, strlen(GOLDEN_IR));
    test_write_file("golden-demo/bad.ir", GOLDEN_IR, strlen(GOLDEN_IR));
    const char *err = "error: unknown op 'Frob'\n\nbad.ir:3:8:\n";
    test_write_file("golden-demo/bad.err", err, strlen(err));
    expect_run(dir, "", 0, "PASS demo/bad (fails as expected)");
    err = "error: unknown op 'Frob'\nerror: something else\n";
    test_write_file("golden-demo/bad.err", err, strlen(err));
    expect_run(dir, "", 1, "missing: error: something else");

    remove_case_file(dir, "bad.err");
    expect_run(dir, "", 1, "FAIL demo/bad: bqc failed (status 1)");
    test_write_file("golden-demo/bad.err", "unknown op", 10);
    test_write_file("golden-demo/ok.err", "error", 5);
    expect_run(dir, "", 1, "FAIL demo/ok: bqc succeeded, but ok.err expects an error");
    remove_case_file(dir, "ok.err");

    /* An abort is not the expected failure, even when stderr has the expected text. */
    test_write_file("golden-demo/crash.ir", GOLDEN_IR, strlen(GOLDEN_IR));
    test_write_file("golden-demo/crash.err", "half a message", 14);
    expect_run(dir, "", 1, "FAIL demo/crash: bqc crashed");
    remove_case_file(dir, "crash.err");
    expect_run(dir, "", 1, "golden demo: 1 of 3 cases failed");

    remove_case_file(dir, "crash.ir");
    test_write_file("golden-demo/new.ir", GOLDEN_IR, strlen(GOLDEN_IR));
    expect_run(dir, "", 1, "FAIL demo/new: no new.expected");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_runner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
