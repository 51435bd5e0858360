/* test_infer.c — shape and type inference (ir/infer*.c): graphs built programmatically,
 * inferred with ir_infer_graph, checked as printed types ("f32[batch, seq, 12, 64]") and known
 * values; concrete (run-time) mode through the op table; and the error messages. */
#include "infer_fixture.h"

/* ---- the exported shape chain ---- */

static void test_shape_chain(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId s = OP1(f, OP_SHAPE, x);
    IrId b = OP1(f, OP_GATHER, s, SCAL(f, 0));
    IrId q = OP1(f, OP_GATHER, s, SCAL(f, 1));
    IrId ub = OP1(f, OP_UNSQUEEZE, b, VEC(f, 0));
    IrId uq = OP1(f, OP_UNSQUEEZE, q, VEC(f, 0));
    IrId cat = OP1(f, OP_CONCAT, ub, uq, VEC(f, 12), VEC(f, 64));
    IrId r = OP1(f, OP_RESHAPE, x, cat);
    IrSVal *sv = NULL;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_string_equal(ty(f, s), "i64[3]");
    assert_string_equal(ty(f, q), "i64[]");
    assert_string_equal(ty(f, uq), "i64[1]");
    assert_string_equal(ty(f, cat), "i64[4]");
    assert_string_equal(ty(f, r), "f32[batch, seq, 12, 64]");
    assert_int_equal(sv[s].n, 3);
    assert_int_equal(sv[s].v[2], 768);
    assert_int_equal(sv[q].n, 1);
    assert_int_equal(sv[q].v[0], ir_dim_sym(f->m, "seq"));
    assert_int_equal(sv[cat].n, 4);
    assert_int_equal(sv[cat].v[3], 64);
    assert_int_equal(sv[x].n, -1);
    free(sv);
}

static void test_shape_attrs_size(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId s1 = OP1(f, OP_SHAPE, x);
    ir_node(f->g, f->g->nnodes - 1)->attr.shape.start = -2;
    IrId s2 = OP1(f, OP_SHAPE, x);
    LAST(f)->attr.shape.start = 1;
    LAST(f)->attr.shape.end = 2;
    IrId n = OP1(f, OP_SIZE, x);
    IrId last = OP1(f, OP_GATHER, OP1(f, OP_SHAPE, x), SCAL(f, -1));
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_string_equal(ty(f, s1), "i64[2]");
    assert_int_equal(sv[s1].v[0], ir_dim_sym(f->m, "seq"));
    assert_string_equal(ty(f, s2), "i64[1]");
    assert_string_equal(ty(f, n), "i64[]");
    char buf[64];
    ir_dim_format(f->m, sv[n].v[0], buf, sizeof buf);
    assert_string_equal(buf, "768*batch*seq");
    assert_int_equal(sv[last].v[0], 768);
    free(sv);
}

static void test_reshape(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId a = OP1(f, OP_RESHAPE, x, VEC(f, -1, 768));
    IrId b = OP1(f, OP_RESHAPE, x, VEC(f, 0, 0, 12, 64));
    IrId c = OP1(f, OP_RESHAPE, x, VEC(f, 0, -1, 64));
    IrId d = OP1(f, OP_RESHAPE, x, VEC(f, 2, -1));
    IrId shape = in(f, "shape", "i64[2]");
    IrId e = OP1(f, OP_RESHAPE, x, shape);
    IrId g = OP1(f, OP_RESHAPE, a, VEC(f, 0, -1));
    infer_ok(f);
    assert_string_equal(ty(f, a), "f32[batch*seq, 768]");
    assert_string_equal(ty(f, b), "f32[batch, seq, 12, 64]");
    assert_string_equal(ty(f, c), "f32[batch, 12*seq, 64]");
    assert_string_equal(ty(f, d), "f32[2, 384*batch*seq]");
    assert_true(is_unknown(f, ir_val(f->g, e)->type.dims[0]));
    assert_int_equal(ir_val(f->g, e)->type.rank, 2);
    assert_string_equal(ty(f, g), "f32[batch*seq, 768]");
}

static void test_reshape_errors(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[2, 3]");
    OP1(f, OP_RESHAPE, x, VEC(f, 4, 2));
    infer_fails(f, "cannot reshape f32[2, 3] (6 elements) to f32[4, 2] (8 elements)");
    LAST(f)->in[1] = VEC(f, -1, 4);
    infer_fails(f, "cannot reshape f32[2, 3]: 6 elements are not a multiple of 4");
    LAST(f)->in[1] = VEC(f, -1, -1);
    infer_fails(f, "the shape has more than one -1");
    LAST(f)->in[1] = VEC(f, 6, 0, 0);
    infer_fails(f, "shape element 2 is 0 (copy) but the input f32[2, 3] has no dimension 2");
    LAST(f)->in[1] = VEC(f, 3, -2);
    infer_fails(f, "invalid shape element -2");
    IrType t = T(f, "f32[2]");
    LAST(f)->in[1] = ir_const_add(f->g, "fshape", &t, arena_alloc(f->m->arena, 8), 8);
    infer_fails(f, "the shape must be i64, got f32");
}

static void test_flatten_tile_transpose(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 12, 64]");
    IrId fl = OP1(f, OP_FLATTEN, x);
    IrId fl2 = OP1(f, OP_FLATTEN, x);
    LAST(f)->attr.axis.axis = -1;
    IrId t1 = OP1(f, OP_TRANSPOSE, x);
    LAST(f)->attr.transpose.perm = (IrInts){4, {0, 2, 1, 3}};
    IrId t2 = OP1(f, OP_TRANSPOSE, x);
    IrId tl = OP1(f, OP_TILE, in(f, "y", "f32[2, seq]"), VEC(f, 3, 2));
    /* Transpose permutes known values too */
    IrId tv = OP1(f, OP_TRANSPOSE, vec_n(f, (const int64_t[]){1, 2, 3, 4, 5, 6}, 6));
    IrId rs = OP1(f, OP_RESHAPE, tv, VEC(f, 2, 3));
    IrId tv2 = OP1(f, OP_TRANSPOSE, rs);
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_string_equal(ty(f, fl), "f32[batch, 768*seq]");
    assert_string_equal(ty(f, fl2), "f32[12*batch*seq, 64]");
    assert_string_equal(ty(f, t1), "f32[batch, 12, seq, 64]");
    assert_string_equal(ty(f, t2), "f32[64, 12, seq, batch]");
    assert_string_equal(ty(f, tl), "f32[6, 2*seq]");
    assert_string_equal(ty(f, tv2), "i64[3, 2]");
    const int64_t want[6] = {1, 4, 2, 5, 3, 6};
    assert_int_equal(sv[tv2].n, 6);
    for (int i = 0; i < 6; i++) assert_int_equal(sv[tv2].v[i], want[i]);
    free(sv);
    LAST(f)->attr.transpose.perm = (IrInts){2, {0, 0}};
    infer_fails(f, "perm is not a permutation of 0..1");
}

static void test_broadcast(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId a = OP1(f, OP_ADD, x, in(f, "b", "f32[768]"));
    IrId b = OP1(f, OP_MUL, in(f, "p", "f32[1, seq]"), in(f, "q", "f32[batch, 1]"));
    IrId c = OP1(f, OP_SUB, in(f, "r", "f32[batch]"), in(f, "s", "f32[4]"));
    IrId d = OP1(f, OP_ADD, in(f, "u", "f32[batch]"), in(f, "v", "f32[seq]"));
    IrId e = OP1(f, OP_LESS, x, in(f, "w", "f32[]"));
    IrId m = OP1(f, OP_MAX, x, in(f, "m1", "f32[seq, 1]"), in(f, "m2", "f32[1, 1, 768]"));
    IrId un = OP1(f, OP_ADD, x, in(f, "unranked", "f32[*]"));
    infer_ok(f);
    assert_string_equal(ty(f, a), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, b), "f32[batch, seq]");
    assert_string_equal(ty(f, c), "f32[4]");
    assert_true(is_unknown(f, ir_val(f->g, d)->type.dims[0]));
    assert_string_equal(ty(f, e), "bool[batch, seq, 768]");
    assert_string_equal(ty(f, m), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, un), "f32[*]");
    /* ir_broadcast itself reports nothing */
    IrInferCtx cx = {.m = f->m, .g = f->g};
    IrType t1 = T(f, "f32[2, 3]"), t2 = T(f, "f32[4]"), r;
    assert_false(ir_broadcast(&cx, &t1, &t2, &r));
    assert_int_equal(f->td.d.nerrors, 0);
}

static void test_broadcast_errors(void **state)
{
    Fx *f = *state;
    ir_node_add(f->g, OP_ADD, "/add", INS(in(f, "a", "f32[2, 3]"), in(f, "b", "f32[4]")), 1, NULL);
    infer_fails(f, "model.onnx: node '/add' (Add): error: cannot broadcast f32[2, 3] with f32[4]");
    LAST(f)->in[1] = in(f, "i", "i64[3]");
    infer_fails(f, "input 1 is i64 but input 0 is f32");
    LAST(f)->op = OP_AND;
    infer_fails(f, "input 0 must be bool, got f32");
    LAST(f)->op = OP_MOD;
    LAST(f)->in[1] = in(f, "c", "f32[3]");
    infer_fails(f, "fmod must be 1 for floating-point inputs");
}

/* Integer arithmetic on known values: what exported shape logic computes. */
static void test_value_arithmetic(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId s = OP1(f, OP_SHAPE, x);
    IrId seq = OP1(f, OP_GATHER, s, SCAL(f, 1));
    IrId bs = OP1(f, OP_MUL, OP1(f, OP_GATHER, s, SCAL(f, 0)), seq);
    IrId m1 = OP1(f, OP_SUB, seq, SCAL(f, 1));
    IrId dv = OP1(f, OP_DIV, OP1(f, OP_GATHER, s, SCAL(f, 2)), SCAL(f, 12));
    IrId inexact = OP1(f, OP_DIV, seq, SCAL(f, 2));
    IrId ng = OP1(f, OP_NEG, seq);
    IrId eq = OP1(f, OP_EQUAL, s, SCAL(f, -1));
    IrId mx = OP1(f, OP_MAX, SCAL(f, 3), SCAL(f, 7));
    IrId mxs = OP1(f, OP_MAX, seq, SCAL(f, 0));
    IrId md = OP1(f, OP_MOD, SCAL(f, -7), SCAL(f, 3));
    IrId ones = OP1(f, OP_CONSTANT_OF_SHAPE, VEC(f, 3));
    LAST(f)->attr.cos.value = (IrScalar){.dtype = DT_I64, .i = 1};
    IrId wh = OP1(f, OP_WHERE, eq, ones, s);
    IrId ex = OP1(f, OP_EXPAND, in(f, "y", "f32[1, 1, 768]"), wh);
    IrId cst = OP1(f, OP_CAST, seq);
    LAST(f)->attr.cast.to = DT_I32;
    IrId c8 = OP1(f, OP_CAST, SCAL(f, 300));
    LAST(f)->attr.cast.to = DT_I8;
    const float fl[2] = {2.0f, -3.7f};
    IrId cf = OP1(f, OP_CAST, fconst(f, "f32[2]", fl));
    LAST(f)->attr.cast.to = DT_I64;
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    char buf[64];
    ir_dim_format(f->m, sv[bs].v[0], buf, sizeof buf);
    assert_string_equal(buf, "batch*seq");
    ir_dim_format(f->m, sv[m1].v[0], buf, sizeof buf);
    assert_string_equal(buf, "seq - 1");
    assert_int_equal(sv[dv].v[0], 64);
    assert_int_equal(sv[inexact].n, -1);
    ir_dim_format(f->m, sv[ng].v[0], buf, sizeof buf);
    assert_string_equal(buf, "-seq");
    assert_string_equal(ty(f, eq), "bool[3]");
    assert_int_equal(sv[eq].n, 3);
    assert_int_equal(sv[eq].v[0] | sv[eq].v[1] | sv[eq].v[2], 0);
    assert_int_equal(sv[mx].v[0], 7);
    assert_int_equal(sv[mxs].v[0], sv[seq].v[0]);
    assert_int_equal(sv[md].v[0], 2);
    assert_string_equal(ty(f, ex), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, cst), "i32[]");
    assert_int_equal(sv[cst].v[0], sv[seq].v[0]);
    assert_int_equal(sv[c8].v[0], 44);
    assert_int_equal(sv[cf].n, 2);
    assert_int_equal(sv[cf].v[0], 2);
    assert_int_equal(sv[cf].v[1], -3);
    free(sv);
}

static void test_slice(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId a = OP1(f, OP_SLICE, x, VEC(f, 1), VEC(f, INT64_MAX), VEC(f, 1));
    IrId b = OP1(f, OP_SLICE, x, VEC(f, -1), VEC(f, INT64_MAX), VEC(f, -1));
    IrId c = OP1(f, OP_SLICE, x, VEC(f, 0, 0), VEC(f, 2, INT64_MAX), VEC(f, 1, 2), VEC(f, 1, 2));
    IrId r = OP1(f, OP_SLICE, in(f, "t", "f32[10]"), VEC(f, -1), VEC(f, INT64_MIN), VEC(f, 0), VEC(f, -1));
    IrId st = OP1(f, OP_SLICE, in(f, "u", "f32[10]"), VEC(f, 1), VEC(f, 8), VEC(f, 0), VEC(f, 3));
    IrId rv = OP1(f, OP_SLICE, x, VEC(f, -1), VEC(f, INT64_MIN), VEC(f, 1), VEC(f, -1));
    /* the OPT mask slice: mask[:, past:] of a [batch, past + seq] mask */
    IrId pk = in(f, "past_k", "f32[batch, 12, past, 64]");
    IrId past = OP1(f, OP_UNSQUEEZE, OP1(f, OP_GATHER, OP1(f, OP_SHAPE, pk), SCAL(f, 2)), VEC(f, 0));
    IrId mk = OP1(f, OP_SLICE, in(f, "mask", "i64[batch, seq + past]"), past, VEC(f, INT64_MAX), VEC(f, 1));
    /* unknown bounds */
    IrId un = OP1(f, OP_SLICE, x, in(f, "starts", "i64[1]"), VEC(f, 5), VEC(f, 2));
    /* values: Shape(x)[0:2] */
    IrId sv2 = OP1(f, OP_SLICE, OP1(f, OP_SHAPE, x), VEC(f, 0), VEC(f, 2));
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_string_equal(ty(f, a), "f32[batch, seq - 1, 768]");
    assert_string_equal(ty(f, b), "f32[batch, seq, 1]");
    assert_string_equal(ty(f, c), "f32[batch, 2, 384]");
    assert_string_equal(ty(f, r), "f32[10]");
    assert_string_equal(ty(f, st), "f32[3]");
    assert_string_equal(ty(f, rv), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, mk), "i64[batch, seq]");
    assert_true(is_unknown(f, ir_val(f->g, un)->type.dims[2]));
    assert_string_equal(ty(f, sv2), "i64[2]");
    assert_int_equal(sv[sv2].v[1], ir_dim_sym(f->m, "seq"));
    free(sv);
    OP1(f, OP_SLICE, x, VEC(f, 0), VEC(f, 1), VEC(f, 0), VEC(f, 0));
    infer_fails(f, "step 0 on axis 0");
    LAST(f)->in[3] = VEC(f, 0, 1);
    LAST(f)->in[4] = VEC(f, 1, 1);
    infer_fails(f, "starts has 1 elements but axes has 2");
}

static void test_squeeze_unsqueeze(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq]");
    IrId a = OP1(f, OP_UNSQUEEZE, x, VEC(f, -1));
    IrId b = OP1(f, OP_UNSQUEEZE, x, VEC(f, 0, -1));
    IrId c = OP1(f, OP_UNSQUEEZE, x, VEC(f, 1));
    IrId y = in(f, "y", "f32[batch, 1, seq, 1]");
    IrId d = OP1(f, OP_SQUEEZE, y, VEC(f, -1));
    IrId e = OP1(f, OP_SQUEEZE, y, VEC(f, 1, 3));
    IrId g = OP1(f, OP_SQUEEZE, in(f, "z", "f32[2, 1, 3, 1]"));
    IrId h = OP1(f, OP_SQUEEZE, y);
    infer_ok(f);
    assert_string_equal(ty(f, a), "f32[batch, seq, 1]");
    assert_string_equal(ty(f, b), "f32[1, batch, seq, 1]");
    assert_string_equal(ty(f, c), "f32[batch, 1, seq]");
    assert_string_equal(ty(f, d), "f32[batch, 1, seq]");
    assert_string_equal(ty(f, e), "f32[batch, seq]");
    assert_string_equal(ty(f, g), "f32[2, 3]");
    assert_string_equal(ty(f, h), "f32[*]");   /* batch or seq may be 1 */
    OP1(f, OP_SQUEEZE, in(f, "w", "f32[2, 3]"), VEC(f, 1));
    infer_fails(f, "cannot squeeze axis 1 of f32[2, 3]: its extent is not 1");
    LAST(f)->in[1] = VEC(f, 2);
    infer_fails(f, "axis 2 is out of range for rank 2");
    LAST(f)->op = OP_UNSQUEEZE;
    LAST(f)->in[1] = VEC(f, 1, -3);
    infer_fails(f, "axis -3 is repeated");
}

static void test_concat_split(void **state)
{
    Fx *f = *state;
    IrId pk = in(f, "past_k", "f32[batch, 12, past, 64]");
    IrId k = in(f, "k", "f32[batch, 12, seq, 64]");
    IrId cat = OP1(f, OP_CONCAT, pk, k);
    LAST(f)->attr.axis.axis = -2;
    IrId qkv = in(f, "qkv", "f32[batch, seq, 2304]");
    IrId sp = node_n(f, OP_SPLIT, NULL, INS(qkv, VEC(f, 768, 768, 768)), 3);
    ir_node(f->g, sp)->attr.axis.axis = 2;
    IrId eq = node_n(f, OP_SPLIT, NULL, INS(qkv), 2);
    ir_node(f->g, eq)->attr.axis.axis = -1;
    IrId vs = node_n(f, OP_SPLIT, NULL, INS(VEC(f, 1, 2, 3, 4), VEC(f, 1, 3)), 2);
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_string_equal(ty(f, cat), "f32[batch, 12, seq + past, 64]");
    for (int i = 0; i < 3; i++) assert_string_equal(ty(f, RES(f, sp, i)), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, RES(f, eq, 1)), "f32[batch, seq, 1152]");
    assert_int_equal(sv[RES(f, vs, 1)].n, 3);
    assert_int_equal(sv[RES(f, vs, 1)].v[2], 4);
    free(sv);
    ir_node(f->g, sp)->in[1] = VEC(f, 768, 768, 700);
    infer_fails(f, "split sizes add up to 2236 but the axis has extent 2304");
    ir_node(f->g, sp)->in[1] = VEC(f, 768, 768, 768);
    OP1(f, OP_CONCAT, k, in(f, "k2", "f32[batch, 8, seq, 64]"));
    infer_fails(f, "input 1 (f32[batch, 8, seq, 64]) and input 0 (f32[batch, 12, seq, 64]) differ in dimension 1");
    LAST(f)->in[1] = in(f, "k3", "f32[batch, 64]");
    infer_fails(f, "input 1 has rank 2 but input 0 has rank 4");
    LAST(f)->in[1] = in(f, "k4", "i64[batch, 12, seq, 64]");
    infer_fails(f, "input 1 is i64 but input 0 is f32");
    LAST(f)->in[1] = k;
    LAST(f)->attr.axis.axis = 4;
    infer_fails(f, "axis 4 is out of range for rank 4");
}

static void test_gather(void **state)
{
    Fx *f = *state;
    IrId emb = in(f, "embed", "f32[50272, 768]");
    IrId ids = in(f, "input_ids", "i64[batch, seq]");
    IrId a = OP1(f, OP_GATHER, emb, ids);
    IrId b = OP1(f, OP_GATHER, in(f, "h", "f32[batch, seq, 768]"), SCAL(f, -1));
    LAST(f)->attr.axis.axis = 1;
    infer_ok(f);
    assert_string_equal(ty(f, a), "f32[batch, seq, 768]");
    assert_string_equal(ty(f, b), "f32[batch, 768]");
    LAST(f)->in[1] = in(f, "fi", "f32[]");
    infer_fails(f, "indices must be i32 or i64, got f32");
    LAST(f)->in[1] = SCAL(f, 5);
    LAST(f)->in[0] = in(f, "small", "f32[2, 3, 4]");
    infer_fails(f, "index 5 is out of range for axis 1 of extent 3");
}

static void test_expand_range_cos(void **state)
{
    Fx *f = *state;
    IrId e1 = OP1(f, OP_EXPAND, in(f, "x", "f32[3, 1]"), VEC(f, 2, 1, 4));
    IrId e2 = OP1(f, OP_EXPAND, in(f, "y", "f32[3, 1]"), in(f, "shape", "i64[3]"));
    IrId ids = in(f, "ids", "i64[batch, seq]");
    IrId seq = OP1(f, OP_GATHER, OP1(f, OP_SHAPE, ids), SCAL(f, 1));
    IrId r1 = OP1(f, OP_RANGE, SCAL(f, 0), seq, SCAL(f, 1));
    IrId r2 = OP1(f, OP_RANGE, SCAL(f, 2), SCAL(f, 10), SCAL(f, 3));
    IrId r3 = OP1(f, OP_RANGE, SCAL(f, 0), in(f, "lim", "i64[]"), SCAL(f, 1));
    IrId r4 = OP1(f, OP_RANGE, SCAL(f, 10), SCAL(f, 2), SCAL(f, -3));
    const float fv[3] = {0.0f, 1.0f, 0.25f};
    IrId f0 = fconst(f, "f32[]", &fv[0]), f1 = fconst(f, "f32[]", &fv[1]), f2 = fconst(f, "f32[]", &fv[2]);
    IrId r5 = OP1(f, OP_RANGE, f0, f1, f2);
    IrId c1 = OP1(f, OP_CONSTANT_OF_SHAPE, VEC(f, 2, 3));
    LAST(f)->attr.cos.value = (IrScalar){.dtype = DT_I64, .i = 7};
    IrId c2 = OP1(f, OP_CONSTANT_OF_SHAPE, OP1(f, OP_SHAPE, ids));
    IrId c3 = OP1(f, OP_CONSTANT_OF_SHAPE, in(f, "dyn", "i64[2]"));
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_string_equal(ty(f, e1), "f32[2, 3, 4]");
    const IrType *t2 = &ir_val(f->g, e2)->type;
    assert_int_equal(t2->rank, 3);
    assert_true(is_unknown(f, t2->dims[0]) && t2->dims[1] == 3 && is_unknown(f, t2->dims[2]));
    assert_string_equal(ty(f, r1), "i64[seq]");
    assert_string_equal(ty(f, r2), "i64[3]");
    assert_int_equal(sv[r2].v[0], 2);
    assert_int_equal(sv[r2].v[2], 8);
    assert_true(is_unknown(f, ir_val(f->g, r3)->type.dims[0]));
    assert_string_equal(ty(f, r4), "i64[3]");
    assert_int_equal(sv[r4].v[2], 4);
    assert_string_equal(ty(f, r5), "f32[4]");
    assert_string_equal(ty(f, c1), "i64[2, 3]");
    assert_int_equal(sv[c1].n, 6);
    assert_int_equal(sv[c1].v[5], 7);
    assert_string_equal(ty(f, c2), "f32[batch, seq]");
    assert_true(is_unknown(f, ir_val(f->g, c3)->type.dims[1]));
    free(sv);
    LAST(f)->in[0] = VEC(f, 2, -3);
    infer_fails(f, "invalid shape element -3");
    LAST(f)->in[0] = VEC(f, 2);
    ir_node(f->g, ir_val(f->g, r2)->def)->in[2] = SCAL(f, 0);
    infer_fails(f, "delta is 0");
    ir_node(f->g, ir_val(f->g, r2)->def)->in[2] = VEC(f, 1);
    infer_fails(f, "delta must be a scalar, got i64[1]");
    ir_node(f->g, ir_val(f->g, r2)->def)->in[2] = SCAL(f, 1);
    ir_node(f->g, ir_val(f->g, e1)->def)->in[1] = VEC(f, 2, 5);
    infer_fails(f, "cannot expand f32[3, 1] to shape [2, 5]");
}

/* ---- run time: the same functions through the table, concrete ---- */

static bool run_concrete(Fx *f, IrId node, const IrType *types, const IrSVal *const *vals, IrType *out, IrSVal *ov)
{
    const IrNode *n = ir_node(f->g, node);
    const IrType *pin[8];
    for (uint32_t k = 0; k < n->nin; k++) pin[k] = &types[k];
    IrInferCtx c = {.m = f->m, .g = f->g, .node = node, .concrete = true};
    return ir_infer_fns[n->op](&c, n, pin, vals, out, ov);
}

static void test_concrete(void **state)
{
    Fx *f = *state;
    IrId x = in(f, "x", "f32[batch, seq, 768]");
    IrId shape = in(f, "shape", "i64[4]");
    IrId rn = node_n(f, OP_RESHAPE, "/reshape", INS(x, shape), 1);
    IrType types[3] = {T(f, "f32[2, 5, 768]"), T(f, "i64[4]")};
    IrSVal sv = {.n = 4, .v = {0, 0, 12, -1}};
    const IrSVal *vals[3] = {NULL, &sv};
    IrType out[2];
    IrSVal ov[2];
    assert_true(run_concrete(f, rn, types, vals, out, ov));
    char buf[64];
    ir_type_format(f->m, &out[0], buf, sizeof buf);
    assert_string_equal(buf, "f32[2, 5, 12, 64]");
    /* a shape the run-time values cannot settle is an error, not a symbolic result */
    vals[1] = NULL;
    assert_false(run_concrete(f, rn, types, vals, out, ov));
    assert_diag_contains(&f->td, "node '/reshape' (Reshape): error: cannot determine the shape of result 0 at run time");
    /* float Range bounds that are not constants cannot be counted */
    IrId rg = node_n(f, OP_RANGE, "/range", INS(in(f, "a", "f32[]"), in(f, "b", "f32[]"), in(f, "c", "f32[]")), 1);
    IrType ft[3] = {T(f, "f32[]"), T(f, "f32[]"), T(f, "f32[]")};
    const IrSVal *none[3] = {NULL, NULL, NULL};
    assert_false(run_concrete(f, rg, ft, none, out, ov));
    /* integer Range from run-time values */
    IrId ri = node_n(f, OP_RANGE, "/irange", INS(in(f, "ia", "i64[]"), in(f, "ib", "i64[]"), in(f, "ic", "i64[]")), 1);
    IrType it[3] = {T(f, "i64[]"), T(f, "i64[]"), T(f, "i64[]")};
    IrSVal s0 = {1, {0}}, s1 = {1, {5}}, s2 = {1, {2}};
    const IrSVal *iv[3] = {&s0, &s1, &s2};
    assert_true(run_concrete(f, ri, it, iv, out, ov));
    ir_type_format(f->m, &out[0], buf, sizeof buf);
    assert_string_equal(buf, "i64[3]");
    assert_int_equal(ov[0].v[2], 4);
    /* broadcasting concrete shapes */
    IrId ad = node_n(f, OP_ADD, "/add", INS(x, x), 1);
    IrType bt[2] = {T(f, "f32[2, 1, 3]"), T(f, "f32[4, 1]")};
    const IrSVal *nv[2] = {NULL, NULL};
    assert_true(run_concrete(f, ad, bt, nv, out, ov));
    ir_type_format(f->m, &out[0], buf, sizeof buf);
    assert_string_equal(buf, "f32[2, 4, 3]");
    bt[1] = T(f, "f32[4, 2]");
    assert_false(run_concrete(f, ad, bt, nv, out, ov));
    assert_diag_contains(&f->td, "cannot broadcast f32[2, 1, 3] with f32[4, 2]");
    /* arity is checked before anything else */
    ir_node(f->g, ad)->nin = 1;
    assert_false(run_concrete(f, ad, bt, nv, out, ov));
    assert_diag_contains(&f->td, "has 1 inputs; Add takes 2");
}

/* ---- the driver: poisoning, idempotence, constants ---- */

static void test_errors_do_not_cascade(void **state)
{
    Fx *f = *state;
    IrId a = OP1(f, OP_ADD, in(f, "a", "f32[2]"), in(f, "b", "f32[3]"));
    IrId r = OP1(f, OP_RELU, OP1(f, OP_NEG, a));
    OP1(f, OP_MATMUL, in(f, "c", "f32[2, 3]"), in(f, "d", "f32[4, 5]"));
    assert_false(ir_infer_graph(f->g, NULL));
    assert_int_equal(f->td.d.nerrors, 2);
    assert_diag_contains(&f->td, "cannot broadcast f32[2] with f32[3]");
    assert_diag_contains(&f->td, "inner dimensions differ (3 vs 4)");
    assert_string_equal(ty(f, r), "?[*]");
}

static void test_idempotent(void **state)
{
    Fx *f = *state;
    IrId lim = in(f, "lim", "i64[]");
    IrId r = OP1(f, OP_RANGE, SCAL(f, 0), lim, SCAL(f, 1));
    IrId u = OP1(f, OP_UNSQUEEZE, r, VEC(f, 0));
    IrId x = OP1(f, OP_ADD, in(f, "a", "f32[batch]"), in(f, "b", "f32[seq]"));
    IrId s = OP1(f, OP_RESHAPE, in(f, "y", "f32[6]"), in(f, "sh", "i64[2]"));
    infer_ok(f);
    char t1[4][64];
    IrId vs[4] = {r, u, x, s};
    for (int i = 0; i < 4; i++) snprintf(t1[i], sizeof t1[i], "%s", ty(f, vs[i]));
    uint32_t npoly = f->m->dims.npoly, nopaque = f->m->dims.nopaque;
    for (int pass = 0; pass < 3; pass++) {
        infer_ok(f);
        for (int i = 0; i < 4; i++) assert_string_equal(ty(f, vs[i]), t1[i]);
        assert_int_equal(f->m->dims.npoly, npoly);
        assert_int_equal(f->m->dims.nopaque, nopaque);
    }
    /* two results never end up sharing one unknown */
    const IrType *st = &ir_val(f->g, s)->type;
    assert_int_not_equal(st->dims[0], st->dims[1]);
}

static void test_constants(void **state)
{
    Fx *f = *state;
    IrId c = VEC(f, INT64_MIN + 3, 4);
    IrId n = OP1(f, OP_IDENTITY, c);
    IrId u8 = OP1(f, OP_CAST, VEC(f, 7));
    LAST(f)->attr.cast.to = DT_U8;
    IrSVal *sv;
    assert_true(ir_infer_graph(f->g, &sv));
    assert_int_equal(sv[c].n, -1);   /* far-negative data is unknown, not a symbol */
    assert_int_equal(sv[n].n, -1);
    assert_int_equal(sv[u8].v[0], 7);
    free(sv);
    IrType t = T(f, "f32[seq]");
    ir_const_add(f->g, "symbolic", &t, NULL, 0);
    infer_fails(f, "constant 'symbolic' (f32[seq]) needs a concrete shape");
    ir_val(f->g, ir_value_find(f->g, "symbolic"))->type = T(f, "f32[2]");
    infer_fails(f, "constant 'symbolic' (f32[2]) has the wrong number of bytes");
}

int main(void)
{
#define T_(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_shape_chain),
        T_(test_shape_attrs_size),
        T_(test_reshape),
        T_(test_reshape_errors),
        T_(test_flatten_tile_transpose),
        T_(test_broadcast),
        T_(test_broadcast_errors),
        T_(test_value_arithmetic),
        T_(test_slice),
        T_(test_squeeze_unsqueeze),
        T_(test_concat_split),
        T_(test_gather),
        T_(test_expand_range_cos),
        T_(test_concrete),
        T_(test_errors_do_not_cascade),
        T_(test_idempotent),
        T_(test_constants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
