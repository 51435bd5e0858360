/* test_verify.c — the IR verifier (ir/verify.c): a valid graph passes silently, and each
 * structural invariant, broken once on an otherwise valid graph, gives its message. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct Fx {
    TestDiag td;
    IrModel *m;
    IrGraph *g;
    IrId x, w, c, shape, add, neg, sum;   /* values */
} Fx;

/* x: f32[2, 3] -> Add(x, c) -> Neg -> Reshape(., [3, 2]) -> out */
static int setup(void **state)
{
    Fx *f = calloc(1, sizeof *f);
    test_diag_init(&f->td);
    f->m = ir_model_create(&f->td.d, "model.onnx");
    IrGraph *g = f->g = f->m->graph = ir_graph_create(f->m, NULL, "main");
    IrType t = {.dtype = DT_F32, .rank = 2, .dims = {2, 3}};
    f->x = ir_input_add(g, "x", &t);
    static const float cv[6] = {1, 2, 3, 4, 5, 6};
    f->c = ir_const_add(g, "c", &t, cv, sizeof cv);
    static const int64_t sv[2] = {3, 2};
    IrType st = {.dtype = DT_I64, .rank = 1, .dims = {2}};
    f->shape = ir_const_add(g, "shape", &st, sv, sizeof sv);
    const char *names[3] = {"add", "neg", "out"};
    f->add = ir_node(g, ir_node_add(g, OP_ADD, "/add", (IrId[]){f->x, f->c}, 2, 1, &names[0]))->out[0];
    f->neg = ir_node(g, ir_node_add(g, OP_NEG, "/neg", &f->add, 1, 1, &names[1]))->out[0];
    f->sum = ir_node(g, ir_node_add(g, OP_RESHAPE, "/reshape", (IrId[]){f->neg, f->shape}, 2, 1, &names[2]))->out[0];
    ir_output_add(g, f->sum);
    assert_true(ir_infer_graph(g, NULL));
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

/* Only this run's messages count: earlier ones are dropped first. */
static void fails(Fx *f, const char *msg)
{
    diag_buffer_free(&f->td.buf);
    f->td.d.nerrors = 0;
    assert_false(ir_verify(f->g));
    assert_diag_contains(&f->td, msg);
}

static void test_valid(void **state)
{
    Fx *f = *state;
    assert_true(ir_verify(f->g));
    assert_int_equal(f->td.d.nerrors, 0);
    /* an omitted optional input is fine */
    IrId s = ir_node_add(f->g, OP_SLICE, "/slice", (IrId[]){f->x, f->shape, f->shape, IR_NONE, f->shape}, 5, 1, NULL);
    (void)s;
    assert_true(ir_verify(f->g));
}

static void test_arity(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 0)->nin = 1;
    fails(f, "model.onnx: node '/add' (Add): error: has 1 inputs; Add takes 2");
    ir_node(f->g, 0)->nin = 2;
    ir_node(f->g, 1)->nout = 2;
    fails(f, "node '/neg' (Neg): error: has 2 results; Neg gives 1");
}

static void test_omitted_required(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 0)->in[1] = IR_NONE;
    fails(f, "node '/add' (Add): error: input 1 is omitted but required");
}

static void test_operand_range(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 1)->in[0] = 999;
    fails(f, "node '/neg' (Neg): error: input 0 refers to no value (999)");
}

static void test_result_range(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 1)->out[0] = 777;
    fails(f, "node '/neg' (Neg): error: result 0 refers to no value (777)");
}

static void test_defined_twice(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 1)->out[0] = f->add;
    fails(f, "node '/neg' (Neg): error: result 0 ('add') is also defined by node #0");
}

static void test_def_link(void **state)
{
    Fx *f = *state;
    ir_val(f->g, f->neg)->def = 0;
    fails(f, "node '/neg' (Neg): error: result 0 ('neg') names node #0 as its definition");
}

static void test_result_kind(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 1)->out[0] = f->c;
    fails(f, "node '/neg' (Neg): error: result 0 ('c') is a graph input or constant");
}

static void test_topological_order(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 0)->in[0] = f->neg;
    fails(f, "node '/add' (Add): error: input 0 ('neg') is defined by a later node");
    ir_node(f->g, 0)->in[0] = f->add;
    fails(f, "node '/add' (Add): error: input 0 ('add') is its own result");
}

static void test_undefined_use(void **state)
{
    Fx *f = *state;
    IrId z = ir_value_add(f->g, "z", IR_VAL_NODE, NULL);
    ir_node(f->g, 1)->in[0] = z;
    fails(f, "node '/neg' (Neg): error: input 0 ('z') is not defined");
}

static void test_output_undefined(void **state)
{
    Fx *f = *state;
    IrId z = ir_value_add(f->g, "z", IR_VAL_NODE, NULL);
    ir_output_add(f->g, z);
    fails(f, "model.onnx: graph 'main': error: output 1 ('z') is not defined");
    f->g->outputs[1] = 12345;
    fails(f, "graph 'main': error: output 1 refers to no value (12345)");
}

static void test_constants(void **state)
{
    Fx *f = *state;
    IrValue *c = ir_val(f->g, f->c);
    c->nbytes = 8;
    fails(f, "graph 'main': error: constant 'c' has 8 bytes; 6 elements of 4 bytes need 24");
    c->nbytes = 24;
    c->data = NULL;
    fails(f, "constant 'c' has no data");
    c->type.dims[0] = ir_dim_sym(f->m, "batch");
    fails(f, "constant 'c' has type f32[batch, 3]; constants need an element type and a concrete shape");
}

static void test_names_and_kinds(void **state)
{
    Fx *f = *state;
    ir_val(f->g, f->neg)->name = "add";
    fails(f, "value name 'add' is used more than once");
    ir_val(f->g, f->neg)->name = "neg";
    IrType t = {.dtype = DT_F32, .rank = 0};
    ir_value_add(f->g, "stray", IR_VAL_INPUT, &t);
    fails(f, "input value 'stray' is not a graph input");
}

static void test_malformed_types(void **state)
{
    Fx *f = *state;
    ir_val(f->g, f->add)->type.rank = IR_MAX_RANK + 1;
    fails(f, "value 'add' has a malformed type");
    ir_val(f->g, f->add)->type.rank = 2;
    ir_val(f->g, f->add)->type.dims[1] = IR_DIM_SYM_LIMIT - 5;   /* no such table entry */
    fails(f, "value 'add' has a malformed type");
    ir_val(f->g, f->add)->type.dims[1] = 3;
    ir_val(f->g, f->x)->type.dtype = DT_UNDEF;
    fails(f, "value 'x' has a malformed type");
}

static void test_dead_node(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 1)->dead = true;
    fails(f, "node '/neg' (Neg): error: is marked dead but still in the graph");
}

static IrGraph *branch(Fx *f, const char *name, bool bad)
{
    IrGraph *b = ir_graph_create(f->m, f->g, name);
    IrType t = {.dtype = DT_F32, .rank = 2, .dims = {2, 3}};
    IrId x = ir_input_add(b, "x", &t);
    IrId n = ir_node_add(b, OP_NEG, "/branch/neg", &x, 1, 1, NULL);
    if (bad) ir_node(b, n)->in[0] = 4242;
    ir_output_add(b, ir_node(b, n)->out[0]);
    ir_graph_add_sub(f->g, b);
    return b;
}

static void test_if(void **state)
{
    Fx *f = *state;
    IrType bt = {.dtype = DT_BOOL, .rank = 0};
    IrId cond = ir_input_add(f->g, "cond", &bt);
    branch(f, "then_0", false);
    branch(f, "else_0", false);
    IrId n = ir_node_add(f->g, OP_IF, "/if", (IrId[]){cond, f->x}, 2, 1, NULL);
    ir_node(f->g, n)->attr.if_.then_g = 0;
    ir_node(f->g, n)->attr.if_.else_g = 1;
    assert_true(ir_verify(f->g));
    ir_node(f->g, n)->attr.if_.else_g = 5;
    fails(f, "node '/if' (If): error: else_branch refers to subgraph 5, but the graph has 2");
    ir_node(f->g, n)->attr.if_.else_g = 1;
    ir_node(f->g, n)->nin = 1;
    fails(f, "node '/if' (If): error: then_branch '@then_0' has 1 inputs and 1 outputs; the node captures 0 values and has 1 results");
    ir_node(f->g, n)->nin = 2;
    /* the verifier recurses into branch graphs */
    branch(f, "else_1", true);
    ir_node(f->g, n)->attr.if_.else_g = 2;
    fails(f, "node '/branch/neg' (Neg): error: input 0 refers to no value (4242)");
    f->g->subs[2]->parent = NULL;
    fails(f, "graph 'main': error: subgraph 'else_1' does not name this graph as its parent");
}

static void test_reports_every_error(void **state)
{
    Fx *f = *state;
    ir_node(f->g, 0)->in[1] = IR_NONE;
    ir_node(f->g, 2)->in[0] = 999;
    assert_false(ir_verify(f->g));
    assert_int_equal(f->td.d.nerrors, 2);
}

int main(void)
{
#define T_(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_valid),          T_(test_arity),          T_(test_omitted_required), T_(test_operand_range),
        T_(test_result_range),   T_(test_defined_twice),  T_(test_def_link),         T_(test_result_kind),
        T_(test_topological_order), T_(test_undefined_use), T_(test_output_undefined), T_(test_constants),
        T_(test_names_and_kinds), T_(test_malformed_types), T_(test_dead_node),       T_(test_if),
        T_(test_reports_every_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
