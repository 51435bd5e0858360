/* test_text_errors.c — the IR parser on bad input (ir/parse.c, ir/lex.c).
 *
 * One exact "file:line:col: error: ..." line per malformed input, one error only (the parse
 * stops at the first), no model; then a mutation fuzz loop over the canonical samples that
 * must give one error or a model that verifies and itself round-trips — never a crash
 * (BQC_SANITIZE=ON, BQC_FUZZ_ITERS=1000000 to fuzz harder).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text_samples.h"

typedef struct ErrCase { const char *text, *want; } ErrCase;

#define HEAD "opset 17\ngraph @main(%x: f32[2]) -> (%x) {\n"
static const ErrCase ERRORS[] = {
    {HEAD "  %y = Frob(%x)\n}\n", "t.ir:3:8: error: unknown op 'Frob'"},
    {HEAD "  %y = Relu(%x) {alpha = 1.5}\n}\n", "t.ir:3:18: error: unknown attribute 'alpha' for Relu"},
    {HEAD "  %y = Relu(%z)\n}\n", "t.ir:3:13: error: undefined value %z"},
    {HEAD "  %x = Relu(%x)\n}\n", "t.ir:3:3: error: redefinition of %x"},
    {HEAD "  %y, %y = Split(%x)\n}\n", "t.ir:3:7: error: redefinition of %y"},
    {HEAD "  %y = Relu(%y)\n}\n", "t.ir:3:13: error: undefined value %y"},
    {HEAD "  %y = Relu(%x) : f33[2]\n}\n", "t.ir:3:19: error: unknown element type 'f33'"},
    {HEAD "  %c = const f32[3] [1, 2]\n}\n", "t.ir:3:21: error: constant f32[3] needs 3 elements, got 2"},
    {HEAD "  %c = const f32[1] [1, 2]\n}\n", "t.ir:3:21: error: constant f32[1] needs 1 elements, got 2"},
    {HEAD "  %y = Relu(%x) : f32[2 +]\n}\n", "t.ir:3:26: error: expected a dimension"},
    {HEAD "  %y = Relu(%x) : f32[n]\n}\n", "t.ir:3:23: error: undeclared symbol 'n'"},
    {HEAD "  %y = Relu(%x) loc(\"abc\n}\n", "t.ir:3:21: error: unterminated string"},
    {HEAD "  %y = Relu(%x) loc(\"a\\qb\")\n}\n", "t.ir:3:23: error: unknown escape in string (use \\\", \\\\ or \\xHH)"},
    {HEAD "  %y = Relu(%x) loc(\"a\\x00\")\n}\n", "t.ir:3:23: error: NUL byte in string"},
    {HEAD "  %y = Add(%x, %x\n}\n", "t.ir:4:1: error: expected ')' after operands"},
    {HEAD "  %c = const u8[1] [256]\n}\n", "t.ir:3:21: error: integer 256 out of range for u8"},
    {HEAD "  %c = const i8[1] [-129]\n}\n", "t.ir:3:21: error: integer -129 out of range for i8"},
    {HEAD "  %c = const bool[1] [2]\n}\n", "t.ir:3:23: error: integer 2 out of range for bool"},
    {HEAD "  %c = const u64[1] [18446744073709551616]\n}\n", "t.ir:3:22: error: integer 18446744073709551616 out of range for u64"},
    {HEAD "  %c = const f16[1] [70000]\n}\n", "t.ir:3:22: error: 70000 is out of range for f16"},
    {HEAD "  %c = const f32[1] [1e39]\n}\n", "t.ir:3:22: error: 1e39 is out of range for f32"},
    {HEAD "  %c = const i64[1] [1.5]\n}\n", "t.ir:3:22: error: expected an integer, got '1.5'"},
    {HEAD "  %c = const f32[1] [x]\n}\n", "t.ir:3:22: error: expected a number"},
    {HEAD "  %c = const f32[?1] [1]\n}\n", "t.ir:3:14: error: a constant needs a known shape"},
    {HEAD "  %c = const ?[1] [1]\n}\n", "t.ir:3:14: error: expected an element type"},
    {HEAD "  %c, %d = const f32[1] [1]\n}\n", "t.ir:3:12: error: a constant has exactly one result"},
    {HEAD "  %c = const f32[1] (1)\n}\n", "t.ir:3:21: error: expected '[' or 'file(' after the constant type"},
    {HEAD "  %y = Concat(%x, %x)\n}\n", "t.ir:3:8: error: Concat needs attribute 'axis'"},
    {HEAD "  %y = Add(%x)\n}\n", "t.ir:3:8: error: Add takes 2 operands, got 1"},
    {HEAD "  %y = Max()\n}\n", "t.ir:3:8: error: Max takes at least 1 operands, got 0"},
    {HEAD "  %y, %z = Relu(%x)\n}\n", "t.ir:3:12: error: Relu has 1 results, got 2"},
    {HEAD "  %y = Slice(_, %x, %x)\n}\n", "t.ir:3:8: error: operand 1 of Slice cannot be omitted"},
    {HEAD "  %y = Gemm(%x, %x) {transA = 1, transA = 0}\n}\n", "t.ir:3:34: error: attribute 'transA' given twice"},
    {HEAD "  %y = Cast(%x) {to = f99}\n}\n", "t.ir:3:23: error: unknown element type 'f99'"},
    {HEAD "  %y = Cast(%x) {to = 1}\n}\n", "t.ir:3:23: error: expected an element type"},
    {HEAD "  %y = Gemm(%x, %x) {transA = 1.0}\n}\n", "t.ir:3:31: error: expected an integer, got '1.0'"},
    {HEAD "  %y = Transpose(%x) {perm = [0, 1, 2, 3, 4, 5, 6, 7, 8]}\n}\n", "t.ir:3:55: error: at most 8 integers"},
    {HEAD "  %y = ConstantOfShape(%x) {value = 0.5}\n}\n", "t.ir:3:37: error: expected an element type and a value"},
    {HEAD "  %y = Relu(%x) {}\n}\n", "t.ir:3:18: error: expected an attribute name"},
    {HEAD "  %y, %z = Split(%x) : f32[2]\n}\n", "t.ir:3:22: error: 1 result types for 2 results"},
    {HEAD "  %y = Relu(%x) : f32[1, 1, 1, 1, 1, 1, 1, 1, 1]\n}\n", "t.ir:3:47: error: rank exceeds 8"},
    {HEAD "  %y = Relu(%x) : f32[2 3]\n}\n", "t.ir:3:25: error: expected ',' or ']' in the shape"},
    {HEAD "  %y = Relu(%x) $\n}\n", "t.ir:3:17: error: unexpected character '$'"},
    {HEAD "  %y = Relu(%x) \x01\n}\n", "t.ir:3:17: error: unexpected byte 0x01"},
    {HEAD "  % = Relu(%x)\n}\n", "t.ir:3:3: error: expected a name after '%'"},
    {HEAD "  %y = Relu(%x)\n", "t.ir:4:1: error: expected a statement or '}'"},
    {HEAD "  %y Relu(%x)\n}\n", "t.ir:3:6: error: expected '=' after the results"},
    {HEAD "  %y = 3\n}\n", "t.ir:3:8: error: expected an op name or 'const'"},
    {HEAD "}\ngraph @main() -> () {\n}\n", "t.ir:4:7: error: redefinition of graph @main"},
    {HEAD "}\ngraph @g() -> () {\n}\n", "t.ir:4:7: error: graph @g is not a branch of any If"},
    {HEAD "}\n}\n", "t.ir:4:1: error: expected 'graph' or the end of the file"},
    {"opset 17\ngraph @main(%x: f32[2]) -> (%q) {\n}\n", "t.ir:2:29: error: undefined value %q in the graph outputs"},
    {"opset 17\ngraph @main(%x: f32[2]) (%x) {\n}\n", "t.ir:2:25: error: expected '->' after the graph inputs"},
    {"opset 17\ngraph @main(%x f32[2]) -> (%x) {\n}\n", "t.ir:2:16: error: expected ':' after the input name"},
    {"graph @main() -> () {\n}\n", "t.ir:1:1: error: expected 'opset' at the start"},
    {"opset -1 graph @main() -> () {}", "t.ir:1:7: error: negative opset"},
    {"opset 17\n", "t.ir:2:1: error: expected 'graph'"},
    {"", "t.ir:1:1: error: expected 'opset' at the start"},
    {"opset 17 sym a, a graph @main() -> () {}", "t.ir:1:17: error: symbol 'a' declared twice"},
    {"opset 17 sym a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16",
     "t.ir:1:84: error: more than 16 symbols"},
    {"opset 17 sym n graph @main(%x: f32[9223372036854775807*n + 9223372036854775807*n]) -> () {}",
     "t.ir:1:36: error: dimension expression out of range"},
    {"opset 17 graph @main(%x: f32[-9223372036854775807]) -> () {}", "t.ir:1:30: error: dimension expression out of range"},
    {"opset 17 graph @main(%x: f32[?99999999999999999999]) -> () {}", "t.ir:1:30: error: unknown dimension number out of range"},
    {"opset 17\ngraph @main(%c: bool[], %x: f32[2]) -> (%y) {\n"
     "  %y = If(%c, %x) {then_branch = @t, else_branch = @nope}\n}\n"
     "graph @t(%x: f32[2]) -> (%x) {\n}\n",
     "t.ir:3:52: error: undefined graph @nope"},
    {"opset 17\ngraph @main(%c: bool[], %x: f32[2]) -> (%y) {\n"
     "  %y = If(%c, %x) {then_branch = @main, else_branch = @main}\n}\n",
     "t.ir:3:34: error: the main graph @main cannot be a branch"},
    {"opset 17\ngraph @main(%c: bool[], %x: f32[2]) -> (%y) {\n"
     "  %y = If(%c, %c, %x) {then_branch = @a, else_branch = @b}\n}\n"
     "graph @a(%c: bool[], %x: f32[2]) -> (%y) {\n  %y = If(%c, %c, %x) {then_branch = @b, else_branch = @b}\n}\n"
     "graph @b(%c: bool[], %x: f32[2]) -> (%x) {\n}\n",
     "t.ir:6:38: error: graph @b is already a branch of @main"},
    {"opset 17\ngraph @main(%c: bool[], %x: f32[2]) -> (%y) {\n"
     "  %y = If(%c, %x) {then_branch = @t, else_branch = @e}\n}\n"
     "graph @t(%x: f32[2]) -> (%x) {\n}\ngraph @e(%x: f32[2], %z: f32[2]) -> (%x) {\n}\n",
     "t.ir:3:52: error: graph @e has 2 inputs and 1 outputs, but the If passes 1 values and has 1 results"},
    {HEAD "  %y = Max(%x, _)\n}\n", "t.ir:3:8: error: operand 2 of Max cannot be omitted"},
    {HEAD "  _ = Relu(%x)\n}\n", "t.ir:3:3: error: result 1 of Relu cannot be omitted"},
    {HEAD "  %y = Relu(%x) : f32[2, 3 - 5]\n}\n", "t.ir:3:26: error: negative dimension -2"},
    {"opset 17\ngraph @main(%x: ?[2]) -> () {\n}\n", "t.ir:2:17: error: expected an element type"},
    {"opset 17\ngraph @main(%c: bool[], %x: f32[2]) -> (%y) {\n"
     "  %y = If(%c, %c, %x) {then_branch = @a, else_branch = @a}\n}\n"
     "graph @a(%c: bool[], %x: f32[2]) -> (%y) {\n  %y = If(%c, %x) {then_branch = @a, else_branch = @a}\n}\n",
     "t.ir:6:34: error: graph @a is already a branch of @main"},
    {"opset 17\ngraph @main(%c: bool[]) -> () {\n  %y = If(%c) {then_branch = %c}\n}\n",
     "t.ir:3:30: error: expected a graph reference '@name'"},
};
#undef HEAD

static void test_parse_errors(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++) {
        TestDiag td;
        test_diag_init(&td);
        IrModel *m = ir_parse_model(&td.d, "t.ir", ERRORS[i].text, strlen(ERRORS[i].text));
        if (m || td.d.nerrors != 1 || strcmp(td.d.last, ERRORS[i].want) != 0) {
            print_error("case %zu: want \"%s\", got %s (%d errors): %s\n", i, ERRORS[i].want,
                        m ? "a model" : "no model", td.d.nerrors, td.buf.text ? td.buf.text : "");
            bad++;
        }
        ir_model_destroy(m);
        test_diag_free(&td);
    }
    assert_int_equal(bad, 0);
}

static void test_file_errors(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    char data[16] = {0};
    const char *bin = test_write_file("short.bin", data, sizeof data);
    char text[2048];
    snprintf(text, sizeof text, "opset 17\ngraph @main() -> () {\n  %%a = const f32[4] file(\"%s\", 4)\n}\n", bin);
    assert_null(ir_parse_model(&td.d, "t.ir", text, strlen(text)));
    assert_int_equal(td.d.nerrors, 1);
    char where[64];
    snprintf(where, sizeof where, "t.ir:3:%zu: error: 16 bytes", 26 + strlen(bin) + 4);   /* at the offset */
    assert_diag_contains(&td, where);
    assert_diag_contains(&td, "error: 16 bytes at offset 4 are past the end of");
    assert_diag_contains(&td, "short.bin' (16 bytes)");
    snprintf(text, sizeof text, "opset 17\ngraph @main() -> () {\n  %%a = const f32[1] file(\"%s\", 99999999999999999999)\n}\n", bin);
    assert_null(ir_parse_model(&td.d, "t.ir", text, strlen(text)));
    assert_diag_contains(&td, "out of range for u64");
    const char *missing = "opset 17\ngraph @main() -> () {\n  %a = const f32[1] file(\"nowhere.bin\", 0)\n}\n";
    assert_null(ir_parse_model(&td.d, "dir/t.ir", missing, strlen(missing)));
    assert_diag_contains(&td, "dir/t.ir:3:26: error: cannot open 'dir/nowhere.bin': No such file or directory");
    assert_int_equal(td.d.nerrors, 3);
    test_diag_free(&td);
}

/* ---- fuzz ---- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Mutates text into buf: truncation, byte flips (biased to the grammar's own characters and to
 * digits, which keep most texts valid), deletion or duplication of a span, short more often
 * than long. Returns the new length. */
static size_t mutate(uint64_t *s, const char *text, size_t len, char *buf)
{
    static const char alphabet[] = "%@\"\\[](){},:=-+*?_#\n 0123456789.aefinx";
    memcpy(buf, text, len);
    size_t a = rnd(s) % len, span = rnd(s) % 2 ? 1 + rnd(s) % 4 : rnd(s) % (len - a + 1);
    size_t b = a + span < len ? a + span : len;
    switch (rnd(s) % 5) {
    case 0: return a;
    case 1:
        for (int k = 0, n = 1 + (int)(rnd(s) % 3); k < n; k++) {
            uint64_t r = rnd(s);
            buf[r % len] = (r >> 32) % 4 ? alphabet[(r >> 40) % (sizeof alphabet - 1)] : (char)(r >> 48);
        }
        return len;
    case 2:
        for (size_t i = a; i < len; i++)
            if (buf[i] >= '0' && buf[i] <= '9') {
                buf[i] = (char)('0' + rnd(s) % 10);
                break;
            }
        return len;
    case 3:
        memmove(buf + a, buf + b, len - b);
        return len - (b - a);
    default:
        memmove(buf + b, buf + a, len - a);   /* duplicate [a, b) */
        return len + (b - a);
    }
}

static void test_fuzz(void **state)
{
    (void)state;
    float vals[16] = {0};
    const char *bin = test_write_file("fuzz.bin", vals, sizeof vals);
    char filetext[1024];
    snprintf(filetext, sizeof filetext,
             "opset 17 sym n\ngraph @main(%%x: f32[n]) -> (%%a) {\n  %%a = const f32[2] file(\"%s\", 2)\n"
             "  %%b = const i8[3] file(\"%s\", 0)\n  %%y = Add(%%x, %%a) : f32[n]\n}\n", bin, bin);
    const char *bases[] = {MAIN_TEXT, CONST_TEXT, filetext, QUOTED_TEXT, DIMS_TEXT,
                           "opset 13\ngraph @main(%c: bool[], %x: f32[2]) -> (%o) {\n"
                           "  %o = If(%c, %c, %x) {then_branch = @a, else_branch = @b} : f32[2]\n}\n"
                           "graph @a(%c: bool[], %x: f32[2]) -> (%r) {\n"
                           "  %r = If(%c, %x) {then_branch = @b, else_branch = @c} : f32[?1]\n}\n"
                           "graph @b(%x: f32[2]) -> (%x) {\n}\ngraph @c(%x: f32[2]) -> (%x) {\n}\n"};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int parsed = 0, rejected = 0;
    /* BQC_FUZZ_ITERS=1000000 fuzzes harder (under BQC_SANITIZE); the default stays quick. */
    const char *env = getenv("BQC_FUZZ_ITERS");
    int iters = env && atoi(env) > 0 ? atoi(env) : 4000;
    for (int iter = 0; iter < iters; iter++) {
        const char *base = bases[iter % (sizeof bases / sizeof bases[0])];
        size_t len = strlen(base);
        char *buf = malloc(2 * len + 1);
        size_t n = mutate(&seed, base, len, buf);
        Diag d;
        diag_init(&d, NULL, NULL);
        IrModel *m = ir_parse_model(&d, "fuzz.ir", buf, n);
        if (m) {
            /* Whatever parses must round-trip like any model. */
            parsed++;
            if (!ir_verify(m->graph)) fail_msg("fuzzed model parses but does not verify: %s\n%.*s", d.last, (int)n, buf);
            char *s1 = print_model(m);
            IrModel *m2 = ir_parse_model(&d, "fuzz.ir", s1, strlen(s1));
            if (!m2) fail_msg("reprint of a fuzzed model does not parse: %s\n%s", d.last, s1);
            char *s2 = print_model(m2);
            assert_string_equal(s1, s2);
            free(s1);
            free(s2);
            ir_model_destroy(m2);
            ir_model_destroy(m);
        } else {
            if (d.nerrors != 1) fail_msg("%d errors (one expected), the last: %s\n%.*s", d.nerrors, d.last, (int)n, buf);
            rejected++;
        }
        free(buf);
    }
    print_message("fuzz: %d mutations parsed, %d rejected\n", parsed, rejected);
    /* Both outcomes must actually occur, or the loop tests nothing. */
    assert_true(parsed > 100);
    assert_true(rejected > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
