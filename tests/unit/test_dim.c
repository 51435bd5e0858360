/* test_dim.c — symbolic dimensions (ir/dim.c): the polynomial algebra, canonical order and
 * interning, printing, unknowns, overflow and evaluation. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct Fx { TestDiag td; IrModel *m; IrDim batch, seq, past; } Fx;

static int setup(void **state)
{
    Fx *f = calloc(1, sizeof *f);
    test_diag_init(&f->td);
    f->m = ir_model_create(&f->td.d, "dims.onnx");
    f->batch = ir_dim_sym(f->m, "batch");
    f->seq = ir_dim_sym(f->m, "seq");
    f->past = ir_dim_sym(f->m, "past");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fx *f = *state;
    ir_model_destroy(f->m);
    test_diag_free(&f->td);
    free(f);
    return 0;
}

static const char *fmt(const IrModel *m, IrDim d)
{
    static char buf[4][128];
    static int k;
    char *b = buf[k++ & 3];
    ir_dim_format(m, d, b, sizeof buf[0]);
    return b;
}

static bool is_unknown(const IrModel *m, IrDim d)
{
    IrDimPoly p;
    return !IR_DIM_IS_CONST(d) && ir_dim_poly(m, d, &p) && p.opaque != 0;
}

static void test_constants(void **state)
{
    Fx *f = *state;
    /* Constant fast paths never touch the table: a NULL model is fine. */
    assert_int_equal(ir_dim_add(NULL, 2, 3), 5);
    assert_int_equal(ir_dim_sub(NULL, 2, 3), -1);
    assert_int_equal(ir_dim_mul(NULL, 6, 7), 42);
    assert_int_equal(ir_dim_div(NULL, 42, 6), 7);
    assert_int_equal(ir_dim_div(NULL, -42, 6), -7);
    assert_true(is_unknown(f->m, ir_dim_div(f->m, 7, 2)));   /* inexact */
    assert_true(is_unknown(f->m, ir_dim_div(f->m, 7, 0)));
    assert_string_equal(fmt(f->m, -12), "-12");
}

static void test_algebra(void **state)
{
    Fx *f = *state;
    IrModel *m = f->m;
    IrDim bs = ir_dim_mul(m, f->batch, f->seq);
    assert_string_equal(fmt(m, bs), "batch*seq");
    assert_string_equal(fmt(m, ir_dim_add(m, bs, 2)), "batch*seq + 2");
    assert_string_equal(fmt(m, ir_dim_add(m, f->past, f->seq)), "seq + past");
    assert_string_equal(fmt(m, ir_dim_sub(m, f->seq, 1)), "seq - 1");
    assert_string_equal(fmt(m, ir_dim_sub(m, 1, f->seq)), "-seq + 1");
    assert_string_equal(fmt(m, ir_dim_mul(m, f->seq, 3)), "3*seq");
    assert_string_equal(fmt(m, ir_dim_mul(m, f->seq, f->seq)), "seq*seq");
    /* (batch + 1)(seq - 1) expands and sorts by degree */
    IrDim e = ir_dim_mul(m, ir_dim_add(m, f->batch, 1), ir_dim_sub(m, f->seq, 1));
    assert_string_equal(fmt(m, e), "batch*seq - batch + seq - 1");
    /* terms cancel back to constants */
    assert_int_equal(ir_dim_sub(m, ir_dim_add(m, f->seq, 5), f->seq), 5);
    assert_int_equal(ir_dim_sub(m, bs, bs), 0);
    assert_int_equal(ir_dim_mul(m, f->seq, 0), 0);
    /* exact division */
    assert_int_equal(ir_dim_div(m, ir_dim_mul(m, bs, 768), 768), bs);
    assert_int_equal(ir_dim_div(m, ir_dim_mul(m, bs, 768), bs), 768);
    assert_int_equal(ir_dim_div(m, bs, f->seq), f->batch);
    assert_int_equal(ir_dim_div(m, ir_dim_add(m, ir_dim_mul(m, f->seq, 4), 8), 4), ir_dim_add(m, f->seq, 2));
    IrDim sp = ir_dim_add(m, f->seq, f->past);
    assert_int_equal(ir_dim_div(m, ir_dim_mul(m, sp, 12), sp), 12);
    assert_int_equal(ir_dim_div(m, 0, sp), 0);
    assert_true(is_unknown(m, ir_dim_div(m, f->seq, 2)));
    assert_true(is_unknown(m, ir_dim_div(m, f->seq, f->batch)));
    assert_true(is_unknown(m, ir_dim_div(m, ir_dim_add(m, sp, 1), sp)));
}

static void test_interning(void **state)
{
    Fx *f = *state;
    IrModel *m = f->m;
    /* the same expression built two ways is the same IrDim */
    IrDim a = ir_dim_add(m, ir_dim_mul(m, f->batch, f->seq), f->seq);
    IrDim b = ir_dim_mul(m, ir_dim_add(m, f->batch, 1), f->seq);
    assert_int_equal(a, b);
    assert_int_equal(ir_dim_add(m, f->seq, f->past), ir_dim_add(m, f->past, f->seq));
    assert_int_equal(ir_dim_sym(m, "seq"), f->seq);
    assert_int_equal(ir_dim_sym_index(m, "past", 4), 2);
    assert_int_equal(ir_dim_sym_index(m, "nope", 4), -1);
    uint32_t before = m->dims.npoly;
    (void)ir_dim_mul(m, f->batch, f->seq);
    assert_int_equal(m->dims.npoly, before);
    /* ir_dim_poly + ir_dim_intern round-trips; constant polynomials give constants */
    IrDimPoly p;
    assert_true(ir_dim_poly(m, a, &p));
    assert_int_equal(ir_dim_intern(m, &p), a);
    assert_true(ir_dim_poly(m, 17, &p));
    assert_int_equal(ir_dim_intern(m, &p), 17);
}

static void test_unknowns(void **state)
{
    Fx *f = *state;
    IrModel *m = f->m;
    IrDim u = ir_dim_fresh(m), v = ir_dim_fresh(m);
    assert_int_not_equal(u, v);
    assert_true(is_unknown(m, u));
    assert_false(IR_DIM_IS_CONST(u));
    char s[16];
    snprintf(s, sizeof s, "?%u", m->dims.nopaque);
    assert_string_equal(fmt(m, v), s);
    /* arithmetic with an unknown is a new unknown, never a polynomial over it */
    IrDim w = ir_dim_add(m, u, 1);
    assert_true(is_unknown(m, w));
    assert_int_not_equal(w, u);
    assert_true(is_unknown(m, ir_dim_mul(m, u, f->seq)));
    /* but an unknown equals itself */
    assert_int_equal(ir_dim_sub(m, u, u), 0);
    assert_int_equal(ir_dim_div(m, u, u), 1);
    /* a full symbol table gives unknowns, with a warning */
    for (int i = 3; i < IR_MAX_SYMS; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        assert_false(is_unknown(m, ir_dim_sym(m, name)));
    }
    assert_int_equal(f->td.d.nwarnings, 0);
    assert_true(is_unknown(m, ir_dim_sym(m, "one_too_many")));
    assert_int_equal(f->td.d.nwarnings, 1);
}

static void test_overflow(void **state)
{
    Fx *f = *state;
    IrModel *m = f->m;
    const int64_t big = INT64_C(1) << 62;
    assert_true(is_unknown(m, ir_dim_add(m, INT64_MAX, 1)));
    assert_true(is_unknown(m, ir_dim_mul(m, big, 4)));
    assert_true(is_unknown(m, ir_dim_sub(m, -big, big + 1)));
    /* a constant result too negative to be told apart from a symbol is unknown, not an alias */
    IrDim low = ir_dim_sub(m, ir_dim_sub(m, f->seq, big), big);   /* seq - 2^63 */
    assert_false(is_unknown(m, low));
    IrDim c = ir_dim_sub(m, low, f->seq);
    assert_true(is_unknown(m, c));
    IrDimPoly p = {.nterms = 1, .t = {{.coef = INT64_MIN + 5}}};
    assert_true(is_unknown(m, ir_dim_intern(m, &p)));
    /* subtracting a large constant must not alias a table entry (-INT64_MAX is entry 0) */
    IrDim d = ir_dim_sub(m, f->seq, INT64_MAX);
    assert_int_not_equal(d, ir_dim_add(m, f->seq, f->batch));
    assert_int_equal(ir_dim_add(m, d, INT64_MAX), f->seq);
    assert_int_equal(ir_dim_sub(m, INT64_MAX, INT64_MAX), 0);
    /* INT64_MIN coefficients: no trap dividing by -1, no overflow printing them */
    assert_true(is_unknown(m, ir_dim_div(m, low, -1)));
    assert_string_equal(fmt(m, low), "seq - 9223372036854775808");
    IrDim neg = ir_dim_sub(m, ir_dim_sub(m, 0, ir_dim_mul(m, f->seq, big)), ir_dim_mul(m, f->seq, big));
    assert_string_equal(fmt(m, neg), "-9223372036854775808*seq");
    assert_true(is_unknown(m, ir_dim_mul(m, neg, -1)));
}

static void test_eval(void **state)
{
    Fx *f = *state;
    IrModel *m = f->m;
    int64_t vals[IR_MAX_SYMS] = {2, 5, -1};   /* batch, seq; past unbound */
    IrDim e = ir_dim_add(m, ir_dim_mul(m, f->batch, f->seq), ir_dim_mul(m, f->seq, 3));
    assert_int_equal(ir_dim_eval(m, e, vals), 25);
    assert_int_equal(ir_dim_eval(m, 7, vals), 7);
    assert_int_equal(ir_dim_eval(m, ir_dim_add(m, f->seq, f->past), vals), -1);
    assert_int_equal(ir_dim_eval(m, ir_dim_fresh(m), vals), -1);
    assert_int_equal(ir_dim_eval(m, f->seq, NULL), -1);
    vals[1] = INT64_C(1) << 40;
    assert_int_equal(ir_dim_eval(m, ir_dim_mul(m, f->seq, f->seq), vals), -1);   /* overflow */
}

static void test_format_truncates(void **state)
{
    Fx *f = *state;
    char small[6];
    IrDim e = ir_dim_add(f->m, ir_dim_mul(f->m, f->batch, f->seq), 2);
    int n = ir_dim_format(f->m, e, small, sizeof small);
    assert_int_equal(n, (int)strlen("batch*seq + 2"));
    assert_string_equal(small, "batch");
}

/* Dimension expressions as exporters write them in dim_param (and the text form prints). */
static void test_parse(void **state)
{
    Fx *f = *state;
    IrModel *m = f->m;
    IrDim d;
    const char *ok[][2] = {
        {"past + seq", "seq + past"},
        {"past+seq", "seq + past"},
        {"batch * seq", "batch*seq"},
        {"2*seq + 1", "2*seq + 1"},
        {"(past + seq) * 2", "2*seq + 2*past"},
        {"seq - 1", "seq - 1"},
        {"17", "17"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_true(ir_dim_parse(m, ok[i][0], strlen(ok[i][0]), &d));
        assert_string_equal(fmt(m, d), ok[i][1]);
    }
    /* Parsing interns: the same expression is the same dimension. */
    IrDim a, b;
    assert_true(ir_dim_parse(m, "past + seq", 10, &a));
    assert_int_equal(a, ir_dim_add(m, f->seq, f->past));
    /* A new name becomes a new symbol. */
    assert_true(ir_dim_parse(m, "total_sequence_length", 21, &b));
    assert_string_equal(fmt(m, b), "total_sequence_length");
    uint32_t nsyms = m->dims.nsyms;
    const char *bad[] = {"", "past +", "a b", "(seq", "seq)", "3 - ", "x-y$", "1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ir_dim_parse(m, bad[i], strlen(bad[i]), &d));
    assert_int_equal(m->dims.nsyms, nsyms);   /* nothing declared by failed parses */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_constants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_algebra, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknowns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_format_truncates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
