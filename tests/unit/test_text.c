/* test_text.c — the IR text form: round trips and what the parser builds (ir/print.c,
 * ir/parse.c, ir/lex.c).
 *
 * The central property is the round trip: for canonical text T (what the printer writes),
 * print(parse(T)) == T byte for byte, which checks both directions at once. Around it: the
 * payload bytes the parser produces (every dtype, f16/bf16 rounding, file-backed constants),
 * the structure it builds (dims, branch graphs) and a model built through the API.
 * Diagnostics and fuzzing: test_text_errors.c.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text_samples.h"

static IrModel *parse_ok(TestDiag *td, const char *path, const char *text)
{
    IrModel *m = ir_parse_model(&td->d, path, text, strlen(text));
    if (!m) fail_msg("parse failed: %s", td->buf.text ? td->buf.text : "(no message)");
    return m;
}

/* `text` is canonical: it prints back unchanged. Returns the model for further checks. */
static IrModel *check_canonical(TestDiag *td, const char *text)
{
    IrModel *m = parse_ok(td, "t.ir", text);
    assert_true(ir_verify(m->graph));
    char *out = print_model(m);
    assert_string_equal(out, text);
    free(out);
    return m;
}

/* `text` parses to a model that prints as `want` (which is then canonical too). */
static void check_prints_as(const char *text, const char *want)
{
    TestDiag td;
    test_diag_init(&td);
    IrModel *m = parse_ok(&td, "t.ir", text);
    char *out = print_model(m);
    assert_string_equal(out, want);
    free(out);
    ir_model_destroy(m);
    ir_model_destroy(check_canonical(&td, want));
    test_diag_free(&td);
}

/* ---- round trips ---- */

static void test_roundtrip_main(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    /* loc("") is how an empty name would look: it parses, and prints as no loc at all. */
    const char *end = strstr(MAIN_TEXT, " loc(\"\")");
    char *canon = malloc(sizeof MAIN_TEXT);
    snprintf(canon, sizeof MAIN_TEXT, "%.*s%s", (int)(end - MAIN_TEXT), MAIN_TEXT, end + 8);
    check_prints_as(MAIN_TEXT, canon);

    IrModel *m = check_canonical(&td, canon);
    IrGraph *g = m->graph;
    assert_int_equal(m->opset, 17);
    assert_int_equal(m->dims.nsyms, 3);
    assert_string_equal(g->name, "main");
    assert_int_equal(g->ninputs, 3);
    assert_int_equal(g->noutputs, 2);
    assert_int_equal(g->nsubs, 2);
    assert_ptr_equal(g->subs[0]->parent, g);
    assert_string_equal(g->subs[0]->name, "then_0");
    assert_string_equal(g->subs[1]->name, "else_0");

    IrId x = ir_value_find(g, "x");
    assert_int_not_equal(x, IR_NONE);
    const IrNode *gather = &g->nodes[g->vals[x].def];
    assert_int_equal(gather->op, OP_GATHER);
    assert_string_equal(gather->name, "/decoder/embed_tokens/Gather");
    assert_int_equal(gather->attr.axis.axis, 1);

    const IrNode *slice = &g->nodes[g->vals[ir_value_find(g, "s")].def];
    assert_int_equal(slice->nin, 5);
    assert_int_equal(slice->in[3], IR_NONE);

    const IrNode *drop = &g->nodes[g->vals[ir_value_find(g, "d")].def];
    assert_int_equal(drop->nout, 2);
    assert_int_equal(drop->out[1], IR_NONE);

    const IrNode *tr = &g->nodes[g->vals[ir_value_find(g, "t")].def];
    assert_int_equal(tr->attr.transpose.perm.n, 3);
    assert_int_equal(tr->attr.transpose.perm.v[1], 2);
    assert_int_equal(g->nodes[g->vals[ir_value_find(g, "c")].def].attr.cast.to, DT_F32);
    assert_true(g->nodes[g->vals[ir_value_find(g, "l")].def].attr.act.alpha == 0.2f);
    const IrNode *cos = &g->nodes[g->vals[ir_value_find(g, "zi")].def];
    assert_int_equal(cos->attr.cos.value.dtype, DT_I64);
    assert_int_equal(cos->attr.cos.value.i, -7);
    const IrNode *gemm = &g->nodes[g->vals[ir_value_find(g, "g")].def];
    assert_true(gemm->attr.gemm.alpha == 0.5f && gemm->attr.gemm.beta == 1.0f);
    assert_int_equal(gemm->attr.gemm.trans_b, 1);
    const IrNode *iff = &g->nodes[g->vals[ir_value_find(g, "o")].def];
    assert_int_equal(iff->attr.if_.then_g, 0);
    assert_int_equal(iff->attr.if_.else_g, 1);

    /* An omitted result type stays unknown for inference to fill. */
    const IrValue *r = &g->vals[ir_value_find(g, "r")];
    assert_int_equal(r->type.dtype, DT_UNDEF);
    assert_int_equal(r->type.rank, -1);

    ir_model_destroy(m);
    free(canon);
    test_diag_free(&td);
}

static void test_default_attrs_and_order(void **state)
{
    (void)state;
    /* Defaults given explicitly are dropped, attributes print in schema order, branch graphs
     * in reference order, comments and spacing are free, seed (IGNORE) is accepted and dropped. */
    check_prints_as("opset 13 # comment\n"
                    "graph @m(%c: bool[], %x: f32[2]) -> (%o, %g, %d) {\n"
                    "  %g = Gemm(%x, %x) {transB = 1, alpha = 1, beta = 1.0} # trailing\n"
                    "  %d = Dropout(%x) {seed = 3}\n"
                    "  %o = If(%c, %x) {else_branch = @e, then_branch = @t}\n"
                    "}\n"
                    "graph @e(%x: f32[2]) -> (%x) {}\n"
                    "graph @t(%x: f32[2]) -> (%x) {}\n",
                    "# bqc IR t.ir\n"
                    "opset 13\n"
                    "graph @m(%c: bool[], %x: f32[2]) -> (%o, %g, %d) {\n"
                    "  %g = Gemm(%x, %x) {transB = 1}\n"
                    "  %d = Dropout(%x)\n"
                    "  %o = If(%c, %x) {then_branch = @t, else_branch = @e}\n"
                    "}\n"
                    "graph @t(%x: f32[2]) -> (%x) {\n"
                    "}\n"
                    "graph @e(%x: f32[2]) -> (%x) {\n"
                    "}\n");
}

static void test_nested_and_shared_branches(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    IrModel *m = check_canonical(&td,
        "# bqc IR t.ir\n"
        "opset 13\n"
        "graph @main(%c: bool[], %x: f32[2]) -> (%o, %p) {\n"
        "  %o = If(%c, %c, %x) {then_branch = @a, else_branch = @b} : f32[2]\n"
        "  %p = If(%c, %x) {then_branch = @s, else_branch = @s} : f32[2]\n"
        "}\n"
        "graph @a(%c: bool[], %x: f32[2]) -> (%r) {\n"
        "  %r = If(%c, %x) {then_branch = @a.t, else_branch = @a.e} : f32[2]\n"
        "}\n"
        "graph @b(%c: bool[], %x: f32[2]) -> (%x) {\n"
        "}\n"
        "graph @s(%x: f32[2]) -> (%x) {\n"
        "}\n"
        "graph @a.t(%x: f32[2]) -> (%x) {\n"
        "}\n"
        "graph @a.e(%x: f32[2]) -> (%n) {\n"
        "  %n = Neg(%x) : f32[2]\n"
        "}\n");
    IrGraph *g = m->graph;
    assert_int_equal(g->nsubs, 3);
    assert_string_equal(g->subs[2]->name, "s");
    assert_int_equal(g->nodes[1].attr.if_.then_g, 2);
    assert_int_equal(g->nodes[1].attr.if_.else_g, 2);
    IrGraph *a = g->subs[0];
    assert_int_equal(a->nsubs, 2);
    assert_ptr_equal(a->subs[1]->parent, a);
    assert_string_equal(a->subs[1]->name, "a.e");
    assert_int_equal(a->subs[1]->nnodes, 1);
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* ---- constants ---- */

static const void *payload(const IrModel *m, const char *name, uint64_t nbytes)
{
    const IrValue *v = &m->graph->vals[ir_value_find(m->graph, name)];
    assert_int_equal(v->kind, IR_VAL_CONST);
    assert_int_equal(v->nbytes, nbytes);
    assert_non_null(v->data);
    return v->data;
}

static void test_constants_every_dtype(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    IrModel *m = check_canonical(&td, CONST_TEXT);
    uint32_t f32[8];
    memcpy(f32, payload(m, "f32", 32), 32);
    const uint32_t f32_want[8] = {0x7fc00000, 0x7f800000, 0xff800000, 0x80000000, 0x00000001, 0x00800000,
                                  0x7f7fffff, 0x3dcccccd};
    assert_memory_equal(f32, f32_want, 32);
    uint64_t f64[6];
    memcpy(f64, payload(m, "f64", 48), 48);
    assert_true(f64[1] == 0xfff0000000000000ull && f64[2] == 0x8000000000000000ull && f64[3] == 1);
    assert_true(f64[4] == 0x3fb999999999999aull && f64[5] == 0x7fefffffffffffffull);
    uint16_t f16[7];
    memcpy(f16, payload(m, "f16", 14), 14);
    const uint16_t f16_want[7] = {0x7e00, 0x7c00, 0xfc00, 0x8000, 0x0001, 0x7bff, 0x2e66};
    assert_memory_equal(f16, f16_want, 14);
    uint16_t bf[5];
    memcpy(bf, payload(m, "bf16", 10), 10);
    const uint16_t bf_want[5] = {0x7fc0, 0xff80, 0x8000, 0x0001, 0x7f7f};
    assert_memory_equal(bf, bf_want, 10);
    int64_t i64[3];
    memcpy(i64, payload(m, "i64", 24), 24);
    assert_true(i64[0] == INT64_MIN && i64[1] == INT64_MAX);
    uint64_t u64;
    memcpy(&u64, payload(m, "u64", 16), 8);
    assert_true(u64 == UINT64_MAX);
    int8_t i8[2];
    memcpy(i8, payload(m, "i8", 2), 2);
    assert_true(i8[0] == -128 && i8[1] == 127);
    const uint8_t *b = payload(m, "b", 2);
    assert_true(b[0] == 0 && b[1] == 1);
    payload(m, "e", 0);
    payload(m, "e3", 0);
    ir_model_destroy(m);
    test_diag_free(&td);
}

static void test_half_rounding(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    /* Round to nearest even: 2049 and 2^-25 are ties down, 2051 and 3*2^-25 ties up; bf16 the
     * same at 1 + 2^-8 and 1 + 3*2^-8; 0.1 is not representable and rounds to nearest. */
    IrModel *m = parse_ok(&td, "t.ir",
                          "opset 17 graph @main() -> () {\n"
                          "  %h = const f16[5] [2049, 2051, 2.98023224e-08, 8.94069672e-08, 0.1]\n"
                          "  %b = const bf16[3] [1.00390625, 1.01171875, 0.1]\n"
                          "}\n");
    uint16_t h[5], b[3];
    memcpy(h, payload(m, "h", 10), 10);
    memcpy(b, payload(m, "b", 6), 6);
    const uint16_t h_want[5] = {0x6800, 0x6802, 0x0000, 0x0002, 0x2e66};
    const uint16_t b_want[3] = {0x3f80, 0x3f82, 0x3dcd};
    assert_memory_equal(h, h_want, 10);
    assert_memory_equal(b, b_want, 6);
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* ---- dims ---- */

static void test_dims(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    /* Unknowns renumber by first appearance; expressions come back canonical. */
    check_prints_as("opset 17 sym batch, past, seq, \"seq len\", s.2\n"
                    "graph @main(%x: f32[seq + past, ?7, ?3, ?7], %y: f32[3*batch - batch, \"seq len\"*s.2, 0]) -> () {\n"
                    "}\n",
                    DIMS_TEXT);
    IrModel *m = parse_ok(&td, "t.ir",
                          "opset 17 sym batch, past, seq\n"
                          "graph @main(%x: f32[past + seq, ?4, ?5, ?4, batch*seq - 2], %u: u8[*], %s: i8[]) -> () {}\n");
    const IrType *t = &m->graph->vals[0].type;
    IrDim b = ir_dim_sym(m, "batch"), p = ir_dim_sym(m, "past"), s = ir_dim_sym(m, "seq");
    assert_int_equal(m->dims.nsyms, 3);
    assert_int_equal(t->rank, 5);
    assert_true(t->dims[0] == ir_dim_add(m, s, p));
    assert_true(t->dims[1] == t->dims[3]);
    assert_true(t->dims[1] != t->dims[2]);
    assert_false(IR_DIM_IS_CONST(t->dims[1]));
    assert_true(t->dims[4] == ir_dim_sub(m, ir_dim_mul(m, b, s), 2));
    assert_int_equal(m->graph->vals[1].type.rank, -1);
    assert_int_equal(m->graph->vals[1].type.dtype, DT_U8);
    assert_int_equal(m->graph->vals[2].type.rank, 0);
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* ---- names ---- */

static void test_quoted_names(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    IrModel *m = check_canonical(&td, QUOTED_TEXT);
    IrGraph *g = m->graph;
    assert_string_equal(g->name, "my graph");
    assert_int_not_equal(ir_value_find(g, "a b"), IR_NONE);
    assert_int_not_equal(ir_value_find(g, ""), IR_NONE);
    assert_int_not_equal(ir_value_find(g, "q\"u\\o"), IR_NONE);
    assert_int_not_equal(ir_value_find(g, "x:"), IR_NONE);
    assert_string_equal(g->nodes[1].name, "n\"a\\me\n\x7f");
    ir_model_destroy(m);
    /* "%x:" with a type: the colon belongs to the parameter, not to the name. */
    m = parse_ok(&td, "t.ir", "opset 1 graph @g(%onnx::x: f32[1]) -> (%onnx::x) {}");
    assert_string_equal(m->graph->vals[0].name, "onnx::x");
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* ---- file-backed constants ---- */

static void test_file_constants(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    float vals[16];
    for (int i = 0; i < 16; i++) vals[i] = (float)i + 0.5f;
    const char *bin = test_write_file("weights.bin", vals, sizeof vals);
    char abs[PATH_MAX];
    assert_non_null(realpath(bin, abs));
    char irpath[1024], text[2 * PATH_MAX], want[6 * PATH_MAX];
    snprintf(irpath, sizeof irpath, "%s/model.ir", test_tmpdir());
    /* Relative paths resolve against the IR file's directory and print absolute. */
    snprintf(text, sizeof text,
             "opset 17 sym n\ngraph @main(%%x: f32[n]) -> (%%a) {\n"
             "  %%a = const f32[4] file(\"%s\", 4)\n"
             "  %%b = const f32[2] file(\"weights.bin\", 2)\n"
             "  %%c = const i8[3] file(\"weights.bin\", 1)\n"
             "  %%d = const f64[0] file(\"weights.bin\", 64)\n"
             "}\n", abs);
    IrModel *m = parse_ok(&td, irpath, text);
    assert_int_equal(m->nfiles, 1);
    const IrFile *f = &m->files[0];
    const IrValue *a = &m->graph->vals[1], *b = &m->graph->vals[2], *c = &m->graph->vals[3];
    assert_ptr_equal(a->data, f->base + 4);           /* aligned: borrowed */
    assert_true(((const float *)a->data)[0] == 1.5f);
    assert_int_equal(b->nbytes, 8);
    assert_ptr_not_equal(b->data, f->base + 2);       /* misaligned: copied, aligned */
    assert_int_equal((uintptr_t)b->data % 4, 0);
    assert_memory_equal(b->data, f->base + 2, 8);
    assert_ptr_equal(c->data, f->base + 1);           /* bytes have no alignment */
    assert_int_equal(b->file, 1);
    assert_int_equal(b->file_offset, 2);
    char *out = print_model(m);
    snprintf(want, sizeof want,
             "# bqc IR %s\nopset 17\nsym n\ngraph @main(%%x: f32[n]) -> (%%a) {\n"
             "  %%a = const f32[4] file(\"%s\", 4)\n"
             "  %%b = const f32[2] file(\"%s\", 2)\n"
             "  %%c = const i8[3] file(\"%s\", 1)\n"
             "  %%d = const f64[0] file(\"%s\", 64)\n"
             "}\n", irpath, abs, abs, abs, abs);
    assert_string_equal(out, want);
    /* A clone borrows the data; whether or not it keeps the file table, it prints as text
     * that reads back to the same bytes. */
    IrModel *clone = ir_model_clone(m);
    char *ctext = print_model(clone);
    IrModel *back = parse_ok(&td, irpath, ctext);
    assert_memory_equal(back->graph->vals[2].data, b->data, 8);
    assert_memory_equal(back->graph->vals[3].data, c->data, 3);
    ir_model_destroy(back);
    ir_model_destroy(clone);
    free(ctext);
    ir_model_destroy(m);
    m = parse_ok(&td, irpath, out);
    char *again = print_model(m);
    assert_string_equal(again, out);
    free(again);
    free(out);
    ir_model_destroy(m);
    test_diag_free(&td);
}

static void test_parse_file(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    const char *path = test_write_file("small.ir", MAIN_TEXT, strlen(MAIN_TEXT));
    IrModel *m = ir_parse_file(&td.d, path);
    assert_non_null(m);
    assert_string_equal(m->path, path);
    assert_int_equal(m->graph->nsubs, 2);
    ir_model_destroy(m);
    char missing[1024];
    snprintf(missing, sizeof missing, "%s/no-such.ir", test_tmpdir());
    assert_null(ir_parse_file(&td.d, missing));
    assert_diag_contains(&td, "no-such.ir: error: cannot open: No such file or directory");
    assert_null(ir_parse_file(&td.d, test_tmpdir()));
    assert_diag_contains(&td, "error: cannot read: Is a directory");
    test_diag_free(&td);
}

/* ---- a model built through the API ---- */

static IrGraph *branch(IrModel *m, const IrType *t, bool negate)
{
    IrGraph *b = ir_graph_create(m, NULL, "branch");
    IrId x = ir_input_add(b, "x", t);
    if (negate) {
        IrId n = ir_node_add(b, OP_NEG, "neg", &x, 1, 1, NULL);
        x = b->nodes[n].out[0];
        b->vals[x].type = *t;
    }
    ir_output_add(b, x);
    return b;
}

static void test_programmatic_model(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    IrModel *m = ir_model_create(&td.d, "prog.onnx");
    m->opset = 14;
    IrDim B = ir_dim_sym(m, "batch"), S = ir_dim_sym(m, "seq len");
    ir_dim_fresh(m);
    ir_dim_fresh(m);
    IrDim U = ir_dim_fresh(m);        /* serial 3: prints as ?1 */
    IrGraph *g = ir_graph_create(m, NULL, "main");
    m->graph = g;
    IrType tx = {.dtype = DT_F32, .rank = 3, .dims = {B, ir_dim_add(m, S, 1), 8}};
    IrId x = ir_input_add(g, "x", &tx);
    IrId c = ir_input_add(g, "cond \"c\"", &(IrType){.dtype = DT_BOOL, .rank = 0});
    float w[4] = {1, 2, 3, 4};
    IrType tw = {.dtype = DT_F32, .rank = 2, .dims = {2, 2}};
    IrId wv = ir_const_add(g, "w", &tw, arena_memdup(m->arena, w, sizeof w), sizeof w);
    IrId sc = ir_const_scalar_f32(g, "scale", 0.125f);
    IrId mul = ir_node_add(g, OP_MUL, "mul0", (IrId[]){x, sc}, 2, 1, NULL);
    g->vals[g->nodes[mul].out[0]].type = tx;
    IrId dead = ir_node_add(g, OP_RELU, "dead", &x, 1, 1, NULL);
    g->nodes[dead].dead = true;
    IrId gm = ir_node_add(g, OP_GEMM, "", (IrId[]){wv, wv, IR_NONE}, 3, 1, (const char *const[]){"gemm"});
    g->nodes[gm].attr.gemm.trans_b = 1;
    g->nodes[gm].attr.gemm.alpha = 0.5f;
    ir_graph_add_sub(g, branch(m, &tx, false));
    ir_graph_add_sub(g, ir_graph_create(m, NULL, "orphan"));
    ir_graph_add_sub(g, branch(m, &tx, true));
    IrId in[2] = {c, g->nodes[mul].out[0]};
    IrId iff = ir_node_add(g, OP_IF, "if0", in, 2, 1, (const char *const[]){"o"});
    g->nodes[iff].attr.if_.then_g = 0;
    g->nodes[iff].attr.if_.else_g = 2;
    g->vals[g->nodes[iff].out[0]].type = (IrType){.dtype = DT_F32, .rank = 3, .dims = {B, U, 8}};
    ir_output_add(g, g->nodes[iff].out[0]);
    ir_output_add(g, g->nodes[gm].out[0]);

    char *s1 = print_model(m);
    const char *want =
        "# bqc IR prog.onnx\n"
        "opset 14\n"
        "sym batch, \"seq len\"\n"
        "graph @main(%x: f32[batch, \"seq len\" + 1, 8], %\"cond \\\"c\\\"\": bool[]) -> (%o, %gemm) {\n"
        "  %w = const f32[2, 2] [1, 2, 3, 4]\n"
        "  %scale = const f32[] [0.125]\n"
        "  %v4 = Mul(%x, %scale) : f32[batch, \"seq len\" + 1, 8] loc(\"mul0\")\n"
        "  %gemm = Gemm(%w, %w, _) {alpha = 0.5, transB = 1}\n"
        "  %o = If(%\"cond \\\"c\\\"\", %v4) {then_branch = @branch, else_branch = @branch_2} : f32[batch, ?1, 8] loc(\"if0\")\n"
        "}\n"
        "graph @branch(%x: f32[batch, \"seq len\" + 1, 8]) -> (%x) {\n"
        "}\n"
        "graph @branch_2(%x: f32[batch, \"seq len\" + 1, 8]) -> (%v1) {\n"
        "  %v1 = Neg(%x) : f32[batch, \"seq len\" + 1, 8] loc(\"neg\")\n"
        "}\n";
    assert_string_equal(s1, want);
    IrModel *p = parse_ok(&td, "prog.onnx", s1);
    assert_true(ir_verify(p->graph));
    char *s2 = print_model(p);
    assert_string_equal(s2, s1);
    assert_int_equal(p->graph->nsubs, 2);
    assert_int_equal(p->graph->nodes[2].attr.if_.else_g, 1);

    /* ir_print_graph: one graph and its branches, no model header. */
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_true(ir_print_graph(f, p->graph->subs[1]));
    fclose(f);
    assert_string_equal(buf, strstr(want, "graph @branch_2"));
    free(buf);
    free(s1);
    free(s2);
    ir_model_destroy(p);
    ir_model_destroy(m);
    test_diag_free(&td);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_main),
        cmocka_unit_test(test_default_attrs_and_order),
        cmocka_unit_test(test_nested_and_shared_branches),
        cmocka_unit_test(test_constants_every_dtype),
        cmocka_unit_test(test_half_rounding),
        cmocka_unit_test(test_dims),
        cmocka_unit_test(test_quoted_names),
        cmocka_unit_test(test_file_constants),
        cmocka_unit_test(test_parse_file),
        cmocka_unit_test(test_programmatic_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
