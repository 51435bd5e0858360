/* test_infer_math.c — shape and type inference for matrix products, reductions, normalisation,
 * elementwise ops, If and the fused bqc ops (ir/infer_math.c, infer_ew.c, infer.c's If): graphs
 * built with infer_fixture.h, checked as printed types and error messages. */
#include "infer_fixture.h"

/* ---- matrix products, reductions, elementwise ops ---- */

static void test_matmul_gemm(void **state)
{
    Fx *f = *state;
    IrId a = OP1(f, OP_MATMUL, in(f, "x", "f32[batch, seq, 768]"), in(f, "w", "f32[768, 3072]"));
    IrId b = OP1(f, OP_MATMUL, in(f, "p", "f32[2, 1, 4, 8]"), in(f, "q", "f32[3, 8, 5]"));
    IrId c = OP1(f, OP_MATMUL, in(f, "v", "f32[8]"), in(f, "m", "f32[8, 5]"));
    IrId d = OP1(f, OP_MATMUL, in(f, "m2", "f32[4, 8]"), in(f, "v2", "f32[8]"));
    IrId e = OP1(f, OP_MATMUL, in(f, "qh", "f32[batch, 12, seq, 64]"), in(f, "kh", "f32[batch, 12, 64, seq + past]"));
    IrId g = OP1(f, OP_GEMM, in(f, "a", "f32[batch, 768]"), in(f, "bt", "f32[3072, 768]"), in(f, "c", "f32[3072]"));
    LAST(f)->attr.gemm.trans_b = 1;
    infer_ok(f);
    assert_string_equal(ty(f, a), "f32[batch, seq, 3072]");
    assert_string_equal(ty(f, b), "f32[2, 3, 4, 5]");
    assert_string_equal(ty(f, c), "f32[5]");
    assert_string_equal(ty(f, d), "f32[4]");
    assert_string_equal(ty(f, e), "f32[batch, 12, seq, seq + past]");
    assert_string_equal(ty(f, g), "f32[batch, 3072]");
    LAST(f)->in[2] = in(f, "c5", "f32[5]");
    infer_fails(f, "C f32[5] does not broadcast to the result f32[batch, 3072]");
}

static void test_matmul_errors(void **state)
{
    Fx *f = *state;
    ir_node_add(f->g, OP_MATMUL, "/decoder/layers.3/fc2/MatMul", INS(in(f, "x", "f32[batch, seq, 768]"), in(f, "w", "f32[3072, 768]")), 1, NULL);
    infer_fails(f, "model.onnx: node '/decoder/layers.3/fc2/MatMul' (MatMul): error: inner dimensions differ (768 vs 3072)");
    LAST(f)->in[0] = in(f, "x2", "f32[2, seq, 768]");
    LAST(f)->in[1] = in(f, "wb", "f32[3, 768, 5]");
    infer_fails(f, "cannot broadcast the batch dimensions of f32[2, seq, 768] and f32[3, 768, 5]");
    /* symbolic inner dimensions are left to the interpreter */
    LAST(f)->in[0] = in(f, "xs", "f32[batch, seq]");
    LAST(f)->in[1] = in(f, "ws", "f32[past, 5]");
    int before = f->td.d.nerrors;
    assert_true(ir_infer_graph(f->g, NULL));
    assert_int_equal(f->td.d.nerrors, before);
}

static void test_reduce_layernorm_cumsum(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId a = OP1(f, OP_REDUCE_MEAN, x);
    LAST(f)->attr.reduce.axes = (IrInts){1, {-1}};
    IrId b = OP1(f, OP_REDUCE_MEAN, x);
    LAST(f)->attr.reduce.axes = (IrInts){2, {0, 2}};
    LAST(f)->attr.reduce.keepdims = 0;
    IrId c = OP1(f, OP_REDUCE_SUM, x, VEC(f, 1));
    IrId d = OP1(f, OP_REDUCE_SUM, x);
    IrId e = OP1(f, OP_REDUCE_SUM, x);
    LAST(f)->attr.reduce.noop_with_empty_axes = 1;
    IrId pr = OP1(f, OP_REDUCE_PROD, VEC(f, 2, 3, 4));
    LAST(f)->attr.reduce.keepdims = 0;
    IrId ln = node_n(f, OP_LAYER_NORM, NULL, INS(x, in(f, "g", "f32[768]"), in(f, "b", "f32[768]")), 3);
    IrId cs = OP1(f, OP_CUMSUM, in(f, "mask", "i64[batch, seq]"), SCAL(f, 1));
    IrId cv = OP1(f, OP_CUMSUM, VEC(f, 1, 1, 0, 1), SCAL(f, 0));
    IrId ce = OP1(f, OP_CUMSUM, VEC(f, 1, 2, 3), SCAL(f, 0));
    LAST(f)->attr.cumsum.exclusive = 1;
    LAST(f)->attr.cumsum.reverse = 1;
    IrId am = OP1(f, OP_ARGMAX, x);
    LAST(f)->attr.argmax.axis = -1;
    LAST(f)->attr.argmax.keepdims = 0;
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_string_equal(ty(f, a), "f32[batch, seq, 1]");
    assert_string_equal(ty(f, b), "f32[seq]");
    assert_string_equal(ty(f, c), "f32[batch, 1, 768]");
    assert_string_equal(ty(f, d), "f32[1, 1, 1]");
    assert_string_equal(ty(f, e), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, pr), "i64[]");
    assert_int_equal(sv[pr].v[0], 24);
    assert_string_equal(ty(f, RES(f, ln, 0)), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, RES(f, ln, 1)), "f32[batch, seq, 1]");
    assert_string_equal(ty(f, RES(f, ln, 2)), "f32[batch, seq, 1]");
    assert_string_equal(ty(f, cs), "i64[batch, seq]");
    const int64_t want[4] = {1, 2, 2, 3}, wante[3] = {5, 3, 0};
    for (int i = 0; i < 4; i++) assert_int_equal(sv[cv].v[i], want[i]);
    for (int i = 0; i < 3; i++) assert_int_equal(sv[ce].v[i], wante[i]);
    assert_string_equal(ty(f, am), "i64[batch, seq]");
    free(sv);
    ir_node(f->g, ln)->in[1] = in(f, "g2", "f32[512]");
    infer_fails(f, "scale f32[512] does not match the normalized dimensions of f32[batch, seq, 768] (axis 2)");
    ir_node(f->g, ln)->in[1] = in(f, "g3", "f32[768]");
    ir_node(f->g, ir_val(f->g, cs)->def)->in[1] = SCAL(f, 2);
    infer_fails(f, "axis 2 is out of range for rank 2");
    ir_node(f->g, ir_val(f->g, cs)->def)->in[1] = SCAL(f, 1);
    ir_node(f->g, ir_val(f->g, b)->def)->attr.reduce.axes = (IrInts){2, {1, -2}};
    infer_fails(f, "axis -2 is repeated");
}

static void test_where_dropout_unary(void **state)
{
    Fx *f = *state;
    IrId w = OP1(f, OP_WHERE, in(f, "c", "bool[batch, 1, 1, seq]"), in(f, "z", "f32[]"), in(f, "s", "f32[batch, 12, seq, seq]"));
    IrId dr = node_n(f, OP_DROPOUT, NULL, INS(in(f, "x", "f32[batch, seq, 768]")), 2);
    IrId sm = OP1(f, OP_SOFTMAX, in(f, "y", "f32[batch, 12, seq, seq]"));
    IrId nan = OP1(f, OP_ISNAN, in(f, "v", "f32[3]"));
    IrId tri = OP1(f, OP_TRILU, in(f, "m", "f32[4, 4]"), SCAL(f, 1));
    infer_ok(f);
    assert_string_equal(ty(f, w), "f32[batch, 12, seq, seq]");
    assert_string_equal(ty(f, RES(f, dr, 0)), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, RES(f, dr, 1)), "bool[batch, seq, 768]");
    assert_string_equal(ty(f, sm), "f32[batch, 12, seq, seq]");
    assert_string_equal(ty(f, nan), "bool[3]");
    assert_string_equal(ty(f, tri), "f32[4, 4]");
    ir_node(f->g, ir_val(f->g, w)->def)->in[0] = in(f, "fc", "f32[batch, 1, 1, seq]");
    infer_fails(f, "the condition must be bool, got f32");
    ir_node(f->g, ir_val(f->g, w)->def)->in[0] = in(f, "c2", "bool[batch, 1, 1, seq]");
    ir_node(f->g, ir_val(f->g, sm)->def)->attr.axis.axis = 4;
    infer_fails(f, "axis 4 is out of range for rank 4");
    ir_node(f->g, ir_val(f->g, sm)->def)->attr.axis.axis = -1;
    ir_node(f->g, ir_val(f->g, tri)->def)->in[0] = in(f, "m1", "f32[4]");
    infer_fails(f, "the input must have rank 2 or more, got f32[4]");
    ir_node(f->g, ir_val(f->g, tri)->def)->in[0] = in(f, "m2", "f32[4, 4]");
    OP1(f, OP_EXP, in(f, "i", "i64[3]"));
    infer_fails(f, "the input must be a float type, got i64");
}

/* ---- If ---- */

static IrGraph *branch(Fx *f, const char *name, const char *spec, IrOp op)
{
    IrGraph *b = ir_graph_create(f->m, f->g, name);
    IrType t = T(f, spec);
    IrId x = ir_input_add(b, "x", &t);
    if (op == OP__COUNT) {
        ir_output_add(b, x);
    } else {
        IrId steps[4] = {0};
        const int64_t one = 1, big = INT64_MAX;
        IrType vt = {.dtype = DT_I64, .rank = 1, .dims = {1}};
        steps[0] = ir_const_add(b, "st", &vt, arena_memdup(f->m->arena, &one, 8), 8);
        steps[1] = ir_const_add(b, "en", &vt, arena_memdup(f->m->arena, &big, 8), 8);
        steps[2] = ir_const_add(b, "ax", &vt, arena_memdup(f->m->arena, &one, 8), 8);
        IrId ins[4] = {x, steps[0], steps[1], steps[2]};
        IrId n = ir_node_add(b, op, "/branch/op", ins, op == OP_SLICE ? 4 : 1, 1, NULL);
        ir_output_add(b, ir_node(b, n)->out[0]);
    }
    ir_graph_add_sub(f->g, b);
    return b;
}

static IrId if_node(Fx *f, IrId cond, IrId x, uint32_t then_g, uint32_t else_g)
{
    IrId n = ir_node_add(f->g, OP_IF, "/if", INS(cond, x), 1, NULL);
    ir_node(f->g, n)->attr.if_.then_g = then_g;
    ir_node(f->g, n)->attr.if_.else_g = else_g;
    return ir_node(f->g, n)->out[0];
}

static void test_if(void **state)
{
    Fx *f = *state;
    IrId cond = in(f, "cond", "bool[]");
    IrId x = in(f, "x", "f32[batch, seq, 64]");
    branch(f, "then_0", "f32[1]", OP__COUNT);     /* input types are replaced by the captures' */
    branch(f, "else_0", "f32[1]", OP_NEG);
    branch(f, "else_1", "f32[1]", OP_SLICE);
    IrId same = if_node(f, cond, x, 0, 1);
    IrId diff = if_node(f, cond, x, 0, 2);
    const uint8_t yes = 1;
    IrType bt = {.dtype = DT_BOOL, .rank = 0};
    IrId k = ir_const_add(f->g, "yes", &bt, &yes, 1);
    IrId taken = if_node(f, k, x, 2, 0);
    infer_ok(f);
    assert_string_equal(ty(f, same), "f32[batch, seq, 64]");
    const IrType *t = &ir_val(f->g, diff)->type;
    assert_true(t->dims[0] == ir_dim_sym(f->m, "batch") && is_unknown(f, t->dims[1]) && t->dims[2] == 64);
    assert_string_equal(ty(f, taken), "f32[batch, seq - 1, 64]");
    /* the branch graphs got types too */
    IrGraph *e = f->g->subs[1];
    char buf[64];
    ir_type_format(f->m, &ir_val(e, e->outputs[0])->type, buf, sizeof buf);
    assert_string_equal(buf, "f32[batch, seq, 64]");
    /* errors */
    IrGraph *bad = ir_graph_create(f->m, f->g, "else_bad");
    IrType it = T(f, "f32[1]");
    IrId bx = ir_input_add(bad, "x", &it);
    ir_output_add(bad, ir_node(bad, ir_node_add(bad, OP_SHAPE, NULL, &bx, 1, 1, NULL))->out[0]);
    ir_graph_add_sub(f->g, bad);
    if_node(f, cond, x, 0, 3);
    infer_fails(f, "the branches give result 0 different element types (f32 and i64)");
    LAST(f)->attr.if_.else_g = 9;
    infer_fails(f, "else_branch refers to subgraph 9, but the graph has 4");
    LAST(f)->attr.if_.else_g = 1;
    LAST(f)->in[0] = x;
    infer_fails(f, "the condition must be bool, got f32");
}

static void test_if_idempotent(void **state)
{
    Fx *f = *state;
    IrId cond = in(f, "cond", "bool[]");
    IrId x = in(f, "x", "f32[batch, seq, 64]");
    branch(f, "then_0", "f32[1]", OP__COUNT);
    branch(f, "else_0", "f32[1]", OP_SLICE);
    IrId y = OP1(f, OP_NEG, if_node(f, cond, x, 0, 1));
    infer_ok(f);
    char t[64];
    snprintf(t, sizeof t, "%s", ty(f, y));
    assert_true(is_unknown(f, ir_val(f->g, y)->type.dims[1]));
    uint32_t npoly = f->m->dims.npoly;
    infer_ok(f);
    assert_string_equal(ty(f, y), t);
    assert_int_equal(f->m->dims.npoly, npoly);
}

/* ---- fused ops ---- */

static void test_linear(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId a = OP1(f, OP_LINEAR, x, in(f, "w", "f32[768, 3072]"));
    IrId b = OP1(f, OP_LINEAR, x, in(f, "wt", "f32[3072, 768]"), in(f, "bias", "f32[3072]"));
    LAST(f)->attr.linear.trans_b = 1;
    infer_ok(f);
    assert_string_equal(ty(f, a), "f32[batch, seq, 3072]");
    assert_string_equal(ty(f, b), "f32[batch, seq, 3072]");
    LAST(f)->in[2] = in(f, "b2", "f32[768]");
    infer_fails(f, "the bias f32[768] does not match the 3072 outputs");
    LAST(f)->attr.linear.trans_b = 0;
    infer_fails(f, "inner dimensions differ (768 vs 3072)");
}

static void test_attention(void **state)
{
    Fx *f = *state;
    IrId q = in(f, "q", "f32[batch, seq, 768]"), k = in(f, "k", "f32[batch, seq, 768]"), v = in(f, "v", "f32[batch, seq, 768]");
    IrId a = node_n(f, OP_ATTENTION, "/attn0", INS(q, k, v, in(f, "mask", "i64[batch, seq]")), 3);
    ir_node(f->g, a)->attr.attention.num_heads = 12;
    IrId pk = in(f, "pk", "f32[batch, 12, past, 64]"), pv = in(f, "pv", "f32[batch, 12, past, 64]");
    IrId b = node_n(f, OP_ATTENTION, "/attn1", INS(q, k, v, in(f, "mask2", "i64[batch, past + seq]"), pk, pv), 3);
    ir_node(f->g, b)->attr.attention.num_heads = 12;
    IrId c = node_n(f, OP_ATTENTION, "/attn2", INS(q, k, v, in(f, "mask3", "i64[batch, seq]")), 1);
    ir_node(f->g, c)->attr.attention.num_heads = 12;
    infer_ok(f);
    assert_string_equal(ty(f, RES(f, a, 0)), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, RES(f, a, 1)), "f32[batch, 12, seq, 64]");
    assert_string_equal(ty(f, RES(f, b, 0)), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, RES(f, b, 2)), "f32[batch, 12, seq + past, 64]");
    assert_string_equal(ty(f, RES(f, c, 0)), "f32[batch, seq, 768]");
    ir_node(f->g, a)->attr.attention.num_heads = 7;
    infer_fails(f, "node '/attn0' (bqc.Attention): error: hidden size 768 is not a multiple of num_heads 7");
    ir_node(f->g, a)->attr.attention.num_heads = 12;
    ir_node(f->g, b)->in[3] = in(f, "m4", "i64[batch, 5]");
    ir_node(f->g, b)->in[4] = in(f, "pk2", "f32[batch, 12, 3, 64]");
    ir_node(f->g, b)->in[5] = in(f, "pv2", "f32[batch, 12, 3, 64]");
    ir_val(f->g, q)->type = T(f, "f32[batch, 1, 768]");
    ir_val(f->g, k)->type = ir_val(f->g, q)->type;
    ir_val(f->g, v)->type = ir_val(f->g, q)->type;
    infer_fails(f, "the key count of the mask is 5, expected 4");
    ir_node(f->g, b)->in[3] = in(f, "m5", "i64[batch, 4]");
    ir_node(f->g, b)->in[5] = in(f, "pv3", "f32[batch, 8, 3, 64]");
    infer_fails(f, "the head count of past_v is 8, expected 12");
    ir_node(f->g, b)->nin = 5;
    infer_fails(f, "past_k and past_v must be given together");
}

int main(void)
{
#define T_(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_matmul_gemm),
        T_(test_matmul_errors),
        T_(test_reduce_layernorm_cumsum),
        T_(test_where_dropout_unary),
        T_(test_if),
        T_(test_if_idempotent),
        T_(test_linear),
        T_(test_attention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
