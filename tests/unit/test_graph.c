/* test_graph.c — the IR core: arena, diagnostics, graph construction and rewiring, DCE,
 * compaction, cloning, file mapping (ir/arena.c, ir/diag.c, ir/graph.c). */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void test_arena_alignment(void **state)
{
    (void)state;
    Arena *a = arena_create();
    for (int i = 0; i < 200; i++) {
        void *p = arena_alloc_aligned(a, (size_t)(i * 37 % 300) + 1, 64);
        assert_int_equal((uintptr_t)p % 64, 0);
        unsigned char *q = arena_alloc(a, 3);
        assert_int_equal((uintptr_t)q % 16, 0);
        assert_true(q[0] == 0 && q[2] == 0);   /* zeroed */
    }
    /* A huge allocation gets its own chunk and is aligned too. */
    void *big = arena_alloc_aligned(a, 5u << 20, 64);
    assert_int_equal((uintptr_t)big % 64, 0);
    assert_true(arena_bytes(a) >= (5u << 20));
    assert_string_equal(arena_printf(a, "%s-%d", "x", 42), "x-42");
    assert_string_equal(arena_strndup(a, "abcdef", 3), "abc");
    arena_destroy(a);
}

static void test_diag_lines(void **state)
{
    (void)state;
    TestDiag t;
    test_diag_init(&t);
    assert_false(diag_error(&t.d, "m.onnx: node 'n' (Add)", "bad %d", 7));
    diag_warning(&t.d, NULL, "careful");
    assert_int_equal(t.d.nerrors, 1);
    assert_int_equal(t.d.nwarnings, 1);
    assert_string_equal(t.d.last, "m.onnx: node 'n' (Add): error: bad 7");
    assert_diag_contains(&t, "bqc: warning: careful");
    /* A location longer than the line buffer is truncated, never overflows it. */
    char where[3000];
    memset(where, 'w', sizeof where - 1);
    where[sizeof where - 1] = 0;
    diag_error(&t.d, where, "x");
    assert_int_equal(strlen(t.d.last), sizeof t.d.last - 1);
    test_diag_free(&t);
}

typedef struct Fx { TestDiag td; IrModel *m; IrGraph *g; IrId x, w, c; } Fx;

static int setup(void **state)
{
    Fx *f = calloc(1, sizeof *f);
    test_diag_init(&f->td);
    f->m = ir_model_create(&f->td.d, "dir/graph.onnx");
    f->g = f->m->graph = ir_graph_create(f->m, NULL, "main");
    IrType t = {.dtype = DT_F32, .rank = 1, .dims = {4}};
    f->x = ir_input_add(f->g, "x", &t);
    static const float w[4] = {1, 2, 3, 4};
    f->w = ir_const_add(f->g, "w", &t, w, sizeof w);
    f->c = ir_const_scalar_f32(f->g, "c", 2.0f);
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

static void test_build_and_names(void **state)
{
    Fx *f = *state;
    IrGraph *g = f->g;
    assert_string_equal(f->m->dir, "dir");
    IrId in[2] = {f->x, f->w};
    const char *names[] = {"y"};
    IrId n = ir_node_add(g, OP_ADD, "/add", in, 2, 1, names);
    IrId y = g->nodes[n].out[0];
    assert_int_equal(g->vals[y].def, n);
    assert_int_equal(g->vals[y].kind, IR_VAL_NODE);
    assert_int_equal(ir_value_find(g, "y"), y);
    assert_int_equal(ir_value_find(g, "nope"), IR_NONE);
    assert_string_equal(ir_unique_name(g, "y"), "y_2");
    assert_string_equal(ir_unique_name(g, "fresh"), "fresh");
    assert_true(ir_is_const(g, f->w));
    assert_false(ir_is_const(g, f->x));
    char where[256];
    assert_string_equal(ir_where_node(g, n, where, sizeof where), "dir/graph.onnx: node '/add' (Add)");
    assert_false(ir_node_error(g, n, "K=%d", 3));
    assert_string_equal(f->td.d.last, "dir/graph.onnx: node '/add' (Add): error: K=3");
}

static void test_insert_keeps_def_links(void **state)
{
    Fx *f = *state;
    IrGraph *g = f->g;
    IrId a = ir_node_add(g, OP_NEG, "a", &f->x, 1, 1, NULL);
    IrId b = ir_node_add(g, OP_EXP, "b", &g->nodes[a].out[0], 1, 1, NULL);
    IrId bout = g->nodes[b].out[0];
    /* Inserting before both shifts them; their results must follow. */
    IrId z = ir_node_insert(g, 0, OP_ABS, "z", &f->x, 1, 1, NULL);
    assert_int_equal(z, 0);
    assert_int_equal(g->vals[bout].def, 2);
    assert_int_equal(g->nodes[2].op, OP_EXP);
    assert_true(ir_verify(g));
}

static void test_replace_and_dce(void **state)
{
    Fx *f = *state;
    IrGraph *g = f->g;
    IrId in[2] = {f->x, f->c};
    IrId m1 = ir_node_add(g, OP_MUL, "m1", in, 2, 1, NULL);
    IrId y1 = g->nodes[m1].out[0];
    IrId a = ir_node_add(g, OP_NEG, "a", &y1, 1, 1, NULL);
    IrId unused = ir_node_add(g, OP_EXP, "dead", &y1, 1, 1, NULL);
    (void)unused;
    ir_output_add(g, g->nodes[a].out[0]);
    uint32_t *uses = ir_use_counts(g);
    assert_int_equal(uses[y1], 2);
    assert_int_equal(uses[f->w], 0);
    free(uses);
    /* Route the Neg to read x directly: the Mul and the Exp become dead, so do w and c. */
    ir_replace_uses(g, y1, f->x);
    assert_int_equal(ir_dce(g), 2);
    assert_int_equal(g->nnodes, 1);
    assert_int_equal(g->nodes[0].op, OP_NEG);
    assert_int_equal(g->vals[f->w].kind, IR_VAL_DEAD);
    assert_int_equal(g->vals[f->c].kind, IR_VAL_DEAD);
    assert_int_equal(g->vals[g->outputs[0]].def, 0);
    assert_true(ir_verify(g));
}

static void test_compact_two_sweeps(void **state)
{
    Fx *f = *state;
    IrGraph *g = f->g;
    /* A live node that took over the value a later dead node still lists keeps the link. */
    IrId a = ir_node_add(g, OP_NEG, "a", &f->x, 1, 1, NULL);
    IrId b = ir_node_add(g, OP_EXP, "b", &g->nodes[a].out[0], 1, 1, NULL);
    IrId v = g->nodes[b].out[0];
    g->nodes[a].out[0] = v;
    g->vals[v].def = a;
    g->nodes[b].dead = true;
    ir_graph_compact(g);
    assert_int_equal(g->nnodes, 1);
    assert_int_equal(g->vals[v].def, 0);
}

static void test_clone_is_independent(void **state)
{
    Fx *f = *state;
    IrGraph *g = f->g;
    IrDim batch = ir_dim_sym(f->m, "batch");
    (void)batch;
    IrId n = ir_node_add(g, OP_NEG, "n", &f->x, 1, 1, NULL);
    ir_output_add(g, g->nodes[n].out[0]);
    IrModel *c = ir_model_clone(f->m);
    assert_true(c->files_borrowed);
    assert_int_equal(c->graph->nnodes, 1);
    /* Rewiring the clone leaves the source alone. */
    c->graph->nodes[0].in[0] = f->w;
    assert_int_equal(g->nodes[0].in[0], f->x);
    assert_int_equal(c->dims.nsyms, 1);
    assert_ptr_not_equal(c->dims.poly, f->m->dims.poly);
    ir_model_destroy(c);
    /* A model without any symbol clones too (no NULL memcpy). */
    IrModel *e = ir_model_create(&f->td.d, "e.onnx");
    e->graph = ir_graph_create(e, NULL, "main");
    IrModel *ec = ir_model_clone(e);
    ir_model_destroy(ec);
    ir_model_destroy(e);
}

static void test_map_file(void **state)
{
    Fx *f = *state;
    const char *p = test_write_file("blob.bin", "abcd", 4);
    int i = ir_model_map_file(f->m, p, "here");
    assert_true(i >= 0);
    assert_int_equal(ir_model_map_file(f->m, p, "here"), i);   /* mapped once */
    assert_memory_equal(f->m->files[i].base, "abcd", 4);
    assert_int_equal(ir_model_map_file(f->m, "/nonexistent/x.bin", "here"), -1);
    assert_diag_contains(&f->td, "here: error: cannot open '/nonexistent/x.bin': No such file or directory");
    assert_int_equal(ir_model_map_file(f->m, test_tmpdir(), "here"), -1);
    assert_diag_contains(&f->td, "is not a regular file");
}

static void test_op_and_dtype_tables(void **state)
{
    (void)state;
    assert_int_equal(ir_op_from_name("MatMul", 6), OP_MATMUL);
    assert_int_equal(ir_op_from_name("bqc.Linear", 10), OP_LINEAR);
    assert_int_equal(ir_op_from_name("Conv", 4), OP__COUNT);
    IrAttr a;
    ir_attr_defaults(OP_SHAPE, &a);
    assert_true(a.shape.end == INT64_MAX);
    ir_attr_defaults(OP_LAYER_NORM, &a);
    assert_true(a.layernorm.epsilon == 1e-5f && a.layernorm.axis == -1);
    assert_int_equal(ir_dtype_from_onnx(1), DT_F32);
    assert_int_equal(ir_dtype_from_onnx(8), DT_UNDEF);   /* string */
    assert_int_equal(ir_dtype_from_npy("<i8"), DT_I64);
    assert_int_equal(ir_dtype_from_npy("|b1"), DT_BOOL);
    assert_int_equal(ir_dtype_from_npy(">f4"), DT_UNDEF);  /* big-endian floats */
    assert_int_equal(ir_dtype_from_name("bf16", 4), DT_BF16);
    assert_int_equal(ir_dtype_size(DT_F16), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_alignment),
        cmocka_unit_test(test_diag_lines),
        cmocka_unit_test_setup_teardown(test_build_and_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_keeps_def_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_and_dce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compact_two_sweeps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clone_is_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_file, setup, teardown),
        cmocka_unit_test(test_op_and_dtype_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
