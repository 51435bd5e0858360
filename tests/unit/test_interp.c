/* test_interp.c — the reference interpreter on small graphs built in C.
 *
 * Covers broadcasting, batched MatMul against the kernel contract, Gather, Slice, If, every
 * input-validation message, ir_eval on a region, and the property the fusion passes rely on:
 * a decomposed LayerNorm, MatMul+Add+Relu and attention subgraph give exactly the bits of
 * LayerNormalization, bqc.Linear and bqc.Attention.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "interp_int.h"   /* the f16 conversions, tested directly */

typedef struct T {
    TestDiag td;
    IrModel *m;
    IrGraph *g;
} T;

static void t_init(T *t)
{
    test_diag_init(&t->td);
    t->m = ir_model_create(&t->td.d, "test.onnx");
    t->m->opset = 17;
    t->g = t->m->graph = ir_graph_create(t->m, NULL, "main");
}

static void t_free(T *t)
{
    ir_model_destroy(t->m);
    test_diag_free(&t->td);
}

static IrType ty(IrDType dt, int rank, const int64_t *dims)
{
    IrType t = {.dtype = dt, .rank = (int8_t)rank};
    for (int i = 0; i < rank; i++) t.dims[i] = dims[i];
    return t;
}

static IrId input(T *t, const char *name, IrDType dt, int rank, const int64_t *dims)
{
    IrType tp = ty(dt, rank, dims);
    return ir_input_add(t->g, name, &tp);
}

static IrId cnst(T *t, const char *name, IrDType dt, int rank, const int64_t *dims, const void *data)
{
    IrType tp = ty(dt, rank, dims);
    uint64_t nb = (uint64_t)ir_type_numel(&tp) * ir_dtype_size(dt);
    return ir_const_add(t->g, name, &tp, arena_memdup(t->m->arena, data, nb ? nb : 1), nb);
}

/* Adds a one-result node and returns its result value. */
static IrId node(T *t, IrOp op, const char *name, const IrId *in, uint32_t nin)
{
    IrId n = ir_node_add(t->g, op, name, in, nin, 1, NULL);
    return ir_node(t->g, n)->out[0];
}
#define NODE(t, op, name, ...) node(t, op, name, (IrId[]){__VA_ARGS__}, sizeof((IrId[]){__VA_ARGS__}) / sizeof(IrId))
static IrAttr *attr_of(T *t, IrId v) { return &ir_node(t->g, ir_val(t->g, v)->def)->attr; }

static IrTensor tensor(IrDType dt, int rank, const int64_t *dims, const void *data)
{
    IrTensor x;
    assert_true(ir_tensor_alloc(&x, dt, rank, dims));
    if (x.nbytes) memcpy(x.data, data, x.nbytes);
    return x;
}

static float *rand_floats(uint64_t seed, size_t n)
{
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((int64_t)(seed >> 33) % 2001 - 1000) / 250.0f;
    }
    return p;
}

/* Runs the graph (inferred first) and checks it succeeds. */
static void run_ok(T *t, const IrTensor *in, IrTensor *out)
{
    assert_true(ir_infer_graph(t->g, NULL));
    if (!ir_run(t->g, in, out, NULL)) fail_msg("ir_run failed: %s", t->td.buf.text ? t->td.buf.text : "");
}

/* ---- elementwise and data movement ---- */

static void test_broadcast(void **state)
{
    T t;
    t_init(&t);
    int64_t d23[2] = {2, 3}, d3[1] = {3};
    IrId a = input(&t, "a", DT_F32, 2, d23), b = input(&t, "b", DT_F32, 1, d3);
    IrId ia = input(&t, "ia", DT_I64, 2, d23), ib = input(&t, "ib", DT_I64, 1, d3);
    ir_output_add(t.g, NODE(&t, OP_ADD, "add", a, b));
    ir_output_add(t.g, NODE(&t, OP_MUL, "mul", ib, ia));
    ir_output_add(t.g, NODE(&t, OP_LESS, "less", a, b));
    ir_output_add(t.g, NODE(&t, OP_DIV, "div", ia, ib));
    ir_output_add(t.g, NODE(&t, OP_MAX, "max3", a, b, a));
    float av[6] = {1, 2, 3, 4, 5, 6}, bv[3] = {10, 2.5f, -1};
    int64_t iav[6] = {7, -7, INT64_MIN, 1, 2, 3}, ibv[3] = {2, 0, -1};
    IrTensor in[4] = {tensor(DT_F32, 2, d23, av), tensor(DT_F32, 1, d3, bv), tensor(DT_I64, 2, d23, iav),
                      tensor(DT_I64, 1, d3, ibv)};
    IrTensor out[5];
    run_ok(&t, in, out);
    const float *s = out[0].data;
    assert_true(s[0] == 11 && s[1] == 4.5f && s[2] == 2 && s[3] == 14 && s[4] == 7.5f && s[5] == 5);
    const int64_t *p = out[1].data;
    assert_true(p[0] == 14 && p[1] == 0 && p[2] == INT64_MIN && p[3] == 2 && p[4] == 0 && p[5] == -3);
    const uint8_t *l = out[2].data;
    assert_true(l[0] && l[1] && !l[2] && l[3] && !l[4] && !l[5]);
    const int64_t *q = out[3].data;   /* division by zero gives 0; MIN / -1 wraps */
    assert_true(q[0] == 3 && q[1] == 0 && q[2] == INT64_MIN && q[3] == 0 && q[4] == 0 && q[5] == -3);
    const float *mx = out[4].data;
    assert_true(mx[0] == 10 && mx[1] == 2.5f && mx[2] == 3 && mx[3] == 10 && mx[5] == 6);
    for (int i = 0; i < 4; i++) ir_tensor_free(&in[i]);
    for (int i = 0; i < 5; i++) ir_tensor_free(&out[i]);
    t_free(&t);
}

static void test_f16_and_cast(void **state)
{
    T t;
    t_init(&t);
    int64_t d4[1] = {4};
    IrId a = input(&t, "a", DT_F16, 1, d4);
    IrId c = NODE(&t, OP_CAST, "cast", NODE(&t, OP_ADD, "add", a, a));
    attr_of(&t, c)->cast.to = DT_F32;
    ir_output_add(t.g, c);
    IrId i8 = NODE(&t, OP_CAST, "to_i8", c);
    attr_of(&t, i8)->cast.to = DT_U8;
    ir_output_add(t.g, i8);
    /* 1, 65504 (max), 2^-24 (smallest subnormal), 0.5 */
    uint16_t av[4] = {0x3c00, 0x7bff, 0x0001, 0x3800};
    IrTensor in = tensor(DT_F16, 1, d4, av), out[2];
    run_ok(&t, &in, out);
    const float *f = out[0].data;
    assert_true(f[0] == 2 && isinf(f[1]) && f[2] == 0x1p-23f && f[3] == 1);
    const uint8_t *u = out[1].data;   /* saturating float -> int */
    assert_true(u[0] == 2 && u[1] == 255 && u[2] == 0 && u[3] == 1);
    ir_tensor_free(&in);
    ir_tensor_free(&out[0]);
    ir_tensor_free(&out[1]);
    t_free(&t);
}

/* Round to nearest even at every edge of the f16 range. */
static void test_f16_rounding(void **state)
{
    assert_int_equal(exec_f32_to_f16(65519.0f), 0x7bff);           /* below the halfway point */
    assert_int_equal(exec_f32_to_f16(65520.0f), 0x7c00);           /* halfway to 2^16: inf */
    assert_int_equal(exec_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);    /* tie: to even */
    assert_int_equal(exec_f32_to_f16(1.0f + 0x3p-11f), 0x3c02);
    assert_int_equal(exec_f32_to_f16(0x1p-25f), 0x0000);           /* tie at the smallest subnormal */
    assert_int_equal(exec_f32_to_f16(0x1.8p-25f), 0x0001);
    assert_int_equal(exec_f32_to_f16(0x1.ffcp-15f), 0x0400);       /* rounds up into the normals */
    assert_int_equal(exec_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(exec_f32_to_f16(-INFINITY), 0xfc00);
    assert_true(isnan(exec_f16_to_f32(exec_f32_to_f16(NAN))));
    assert_true(exec_f16_to_f32(0x0001) == 0x1p-24f && exec_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(exec_f16_to_f32(0xc000) == -2.0f);
}

static void test_gather_slice(void **state)
{
    T t;
    t_init(&t);
    int64_t d34[2] = {3, 4}, d2[1] = {2}, d1[1] = {1};
    IrId x = input(&t, "x", DT_F32, 2, d34);
    int64_t idx[2] = {-1, 0}, st[1] = {-1}, en[1] = {INT64_MIN}, ax[1] = {1}, sp[1] = {-2};
    IrId gi = cnst(&t, "idx", DT_I64, 1, d2, idx);
    ir_output_add(t.g, NODE(&t, OP_GATHER, "gather", x, gi));
    IrId s = NODE(&t, OP_SLICE, "slice", x, cnst(&t, "st", DT_I64, 1, d1, st), cnst(&t, "en", DT_I64, 1, d1, en),
                  cnst(&t, "ax", DT_I64, 1, d1, ax), cnst(&t, "sp", DT_I64, 1, d1, sp));
    ir_output_add(t.g, s);
    float xv[12] = {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23};
    IrTensor in = tensor(DT_F32, 2, d34, xv), out[2];
    run_ok(&t, &in, out);
    assert_int_equal(out[0].rank, 2);
    assert_true(out[0].dims[0] == 2 && out[0].dims[1] == 4);
    const float *gv = out[0].data;
    assert_true(gv[0] == 20 && gv[3] == 23 && gv[4] == 0 && gv[7] == 3);
    /* x[:, -1::-2] over a clamped end: columns 3, 1 */
    assert_true(out[1].dims[0] == 3 && out[1].dims[1] == 2);
    const float *sv = out[1].data;
    assert_true(sv[0] == 3 && sv[1] == 1 && sv[2] == 13 && sv[3] == 11 && sv[5] == 21);
    ir_tensor_free(&in);
    ir_tensor_free(&out[0]);
    ir_tensor_free(&out[1]);
    t_free(&t);
}

static void test_gather_out_of_range(void **state)
{
    T t;
    t_init(&t);
    int64_t d3[1] = {3}, d1[1] = {1};
    IrId x = input(&t, "x", DT_F32, 1, d3), i = input(&t, "i", DT_I64, 1, d1);
    ir_output_add(t.g, NODE(&t, OP_GATHER, "/embed/Gather", x, i));
    float xv[3] = {1, 2, 3};
    int64_t iv[1] = {3};
    IrTensor in[2] = {tensor(DT_F32, 1, d3, xv), tensor(DT_I64, 1, d1, iv)}, out[1];
    assert_true(ir_infer_graph(t.g, NULL));
    assert_false(ir_run(t.g, in, out, NULL));
    assert_diag_contains(&t.td, "test.onnx: node '/embed/Gather' (Gather): error: index 3 is out of range for axis 0 of extent 3");
    assert_null(out[0].data);
    ir_tensor_free(&in[0]);
    ir_tensor_free(&in[1]);
    t_free(&t);
}

/* A dtype inference accepts but the op has no kernel row for is "unsupported" (a skip for
 * the node tests), and names the node. */
static void test_unsupported_dtype(void **state)
{
    T t;
    t_init(&t);
    int64_t d3[1] = {3};
    IrId x = input(&t, "x", DT_F16, 1, d3);
    ir_output_add(t.g, NODE(&t, OP_SOFTMAX, "/attn/Softmax", x));
    uint16_t xv[3] = {0x3c00, 0x4000, 0x4200};
    IrTensor in = tensor(DT_F16, 1, d3, xv), out[1];
    assert_true(ir_infer_graph(t.g, NULL));
    assert_false(ir_run(t.g, &in, out, NULL));
    assert_diag_contains(&t.td, "test.onnx: node '/attn/Softmax' (Softmax): error: unsupported element type f16 for Softmax");
    ir_tensor_free(&in);
    t_free(&t);
}

/* ---- MatMul ---- */

static void test_matmul_batch_broadcast(void **state)
{
    T t;
    t_init(&t);
    int64_t da[4] = {2, 1, 3, 4}, db[3] = {3, 4, 5}, dv[1] = {4};
    IrId a = input(&t, "a", DT_F32, 4, da), b = input(&t, "b", DT_F32, 3, db), v = input(&t, "v", DT_F32, 1, dv);
    ir_output_add(t.g, NODE(&t, OP_MATMUL, "mm", a, b));
    ir_output_add(t.g, NODE(&t, OP_MATMUL, "mv", a, v));   /* 1-D right operand */
    float *av = rand_floats(1, 24), *bv = rand_floats(2, 60), *vv = rand_floats(3, 4);
    IrTensor in[3] = {tensor(DT_F32, 4, da, av), tensor(DT_F32, 3, db, bv), tensor(DT_F32, 1, dv, vv)}, out[2];
    run_ok(&t, in, out);
    assert_int_equal(out[0].rank, 4);
    assert_true(out[0].dims[0] == 2 && out[0].dims[1] == 3 && out[0].dims[2] == 3 && out[0].dims[3] == 5);
    const float *o = out[0].data;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int m = 0; m < 3; m++)
                for (int n = 0; n < 5; n++) {
                    float acc = 0.0f;
                    for (int k = 0; k < 4; k++) acc = fmaf(av[(i * 3 + m) * 4 + k], bv[(j * 4 + k) * 5 + n], acc);
                    assert_memory_equal(&o[((i * 3 + j) * 3 + m) * 5 + n], &acc, sizeof acc);
                }
    assert_true(out[1].rank == 3 && out[1].dims[2] == 3);
    const float *ov = out[1].data;
    for (int r = 0; r < 6; r++) {
        float acc = 0.0f;
        for (int k = 0; k < 4; k++) acc = fmaf(av[r * 4 + k], vv[k], acc);
        assert_memory_equal(&ov[r], &acc, sizeof acc);
    }
    free(av), free(bv), free(vv);
    for (int i = 0; i < 3; i++) ir_tensor_free(&in[i]);
    ir_tensor_free(&out[0]);
    ir_tensor_free(&out[1]);
    t_free(&t);
}

/* ---- If ---- */

static void test_if(void **state)
{
    T t;
    t_init(&t);
    int64_t d3[1] = {3};
    IrId c = input(&t, "cond", DT_BOOL, 0, NULL), x = input(&t, "x", DT_F32, 1, d3);
    IrGraph *then_g = ir_graph_create(t.m, t.g, "then_0"), *else_g = ir_graph_create(t.m, t.g, "else_0");
    IrType tx = ty(DT_F32, 1, d3);
    IrId tx_in = ir_input_add(then_g, "x", &tx);
    IrId neg = ir_node_add(then_g, OP_NEG, "neg", &tx_in, 1, 1, NULL);
    ir_output_add(then_g, ir_node(then_g, neg)->out[0]);
    ir_output_add(else_g, ir_input_add(else_g, "x", &tx));   /* passes its input through */
    IrId o = NODE(&t, OP_IF, "if", c, x);
    attr_of(&t, o)->if_.then_g = ir_graph_add_sub(t.g, then_g);
    attr_of(&t, o)->if_.else_g = ir_graph_add_sub(t.g, else_g);
    ir_output_add(t.g, o);
    assert_true(ir_infer_graph(t.g, NULL));
    float xv[3] = {1, -2, 3};
    for (int branch = 0; branch < 2; branch++) {
        uint8_t cv = branch == 0;
        IrTensor in[2] = {tensor(DT_BOOL, 0, NULL, &cv), tensor(DT_F32, 1, d3, xv)}, out[1];
        assert_true(ir_run(t.g, in, out, NULL));
        const float *ov = out[0].data;
        float sgn = branch == 0 ? -1.0f : 1.0f;
        assert_true(ov[0] == sgn * 1 && ov[1] == sgn * -2 && ov[2] == sgn * 3);
        assert_true(out[0].owned && out[0].data != in[1].data);   /* a passed-through input is copied */
        ir_tensor_free(&in[0]);
        ir_tensor_free(&in[1]);
        ir_tensor_free(&out[0]);
    }
    t_free(&t);
}

/* ---- input validation ---- */

/* A model with i64[batch, seq] ids, a [batch, past + seq] mask and a [batch, past] cache. */
static void validation_model(T *t)
{
    t_init(t);
    IrDim batch = ir_dim_sym(t->m, "batch"), seq = ir_dim_sym(t->m, "seq"), past = ir_dim_sym(t->m, "past");
    IrType ids = {.dtype = DT_I64, .rank = 2, .dims = {batch, seq}};
    IrType mask = {.dtype = DT_I64, .rank = 2, .dims = {batch, ir_dim_add(t->m, past, seq)}};
    IrType cache = {.dtype = DT_F32, .rank = 3, .dims = {batch, past, 4}};
    IrId a = ir_input_add(t->g, "input_ids", &ids), b = ir_input_add(t->g, "attention_mask", &mask);
    IrId c = ir_input_add(t->g, "past", &cache);
    ir_output_add(t->g, NODE(t, OP_SHAPE, "s1", a));
    ir_output_add(t->g, NODE(t, OP_SHAPE, "s2", b));
    ir_output_add(t->g, NODE(t, OP_SHAPE, "s3", c));
    assert_true(ir_infer_graph(t->g, NULL));
}

static void expect_input_error(int64_t ids_b, int64_t ids_s, int ids_rank, IrDType ids_dt, int64_t mask_s,
                               int64_t cache_p, int64_t cache_w, const char *msg)
{
    T t;
    validation_model(&t);
    int64_t di[3] = {ids_b, ids_s, 1}, dm[2] = {2, mask_s}, dc[3] = {2, cache_p, cache_w};
    IrTensor in[3], out[3];
    assert_true(ir_tensor_alloc(&in[0], ids_dt, ids_rank, di));
    assert_true(ir_tensor_alloc(&in[1], DT_I64, 2, dm));
    assert_true(ir_tensor_alloc(&in[2], DT_F32, 3, dc));
    bool ok = ir_run(t.g, in, out, NULL);
    if (msg) {
        assert_false(ok);
        assert_diag_contains(&t.td, msg);
    } else {
        assert_true(ok);
        assert_int_equal(((int64_t *)out[1].data)[1], mask_s);
        for (int i = 0; i < 3; i++) ir_tensor_free(&out[i]);
    }
    for (int i = 0; i < 3; i++) ir_tensor_free(&in[i]);
    t_free(&t);
}

static void test_input_validation(void **state)
{
    expect_input_error(2, 5, 2, DT_I64, 8, 3, 4, NULL);
    expect_input_error(2, 5, 3, DT_I64, 8, 3, 4, "test.onnx: error: input 'input_ids' has rank 3; the model expects i64[batch, seq]");
    expect_input_error(2, 5, 2, DT_I32, 8, 3, 4, "input 'input_ids' has element type i32; the model expects i64[batch, seq]");
    expect_input_error(3, 5, 2, DT_I64, 8, 3, 4,
                       "input 'attention_mask' has shape i64[2, 8] but the model expects i64[batch, seq + past] with batch = 3 (from 'input_ids')");
    expect_input_error(2, 5, 2, DT_I64, 7, 3, 4,
                       "input 'attention_mask' has shape i64[2, 7] but the model expects i64[batch, seq + past] with seq + past = 8");
    expect_input_error(2, 5, 2, DT_I64, 8, 3, 5, "input 'past' has shape f32[2, 3, 5] but the model expects f32[batch, past, 4]");
}

static void test_input_symbol_conflict(void **state)
{
    T t;
    t_init(&t);
    IrDim seq = ir_dim_sym(t.m, "seq");
    IrType ti = {.dtype = DT_I64, .rank = 2, .dims = {2, seq}};
    IrId a = ir_input_add(t.g, "input_ids", &ti), b = ir_input_add(t.g, "attention_mask", &ti);
    ir_output_add(t.g, NODE(&t, OP_ADD, "add", a, b));
    int64_t d1[2] = {2, 5}, d2[2] = {2, 7};
    IrTensor in[2], out[1];
    assert_true(ir_tensor_alloc(&in[0], DT_I64, 2, d1));
    assert_true(ir_tensor_alloc(&in[1], DT_I64, 2, d2));
    assert_false(ir_run(t.g, in, out, NULL));
    assert_diag_contains(&t.td, "input 'attention_mask' has shape i64[2, 7] but the model expects i64[2, seq] with seq = 5 (from 'input_ids')");
    ir_tensor_free(&in[0]);
    ir_tensor_free(&in[1]);
    t_free(&t);
}

/* ---- ir_eval ---- */

static void test_eval_region(void **state)
{
    T t;
    t_init(&t);
    int64_t d2[1] = {2};
    IrId x = input(&t, "x", DT_F32, 1, d2);
    IrId a = NODE(&t, OP_NEG, "neg", x), b = NODE(&t, OP_EXP, "exp", a), c = NODE(&t, OP_ADD, "add", b, x);
    ir_output_add(t.g, c);
    assert_true(ir_infer_graph(t.g, NULL));
    float av[2] = {0, 1}, xv[2] = {5, 6};
    IrTensor ta = tensor(DT_F32, 1, d2, av), tx = tensor(DT_F32, 1, d2, xv), out[2];
    /* b needs only a */
    assert_true(ir_eval(t.g, &a, &ta, 1, &b, out, 1, NULL));
    assert_true(((float *)out[0].data)[0] == 1.0f && ((float *)out[0].data)[1] == expf(1.0f));
    ir_tensor_free(&out[0]);
    /* c also needs x */
    assert_false(ir_eval(t.g, &a, &ta, 1, &c, out, 1, NULL));
    assert_diag_contains(&t.td, "cannot evaluate: graph input 'x' is needed but not bound");
    IrId bind[2] = {a, x}, want[2] = {c, a};
    IrTensor vals[2] = {ta, tx};
    assert_true(ir_eval(t.g, bind, vals, 2, want, out, 2, NULL));
    assert_true(((float *)out[0].data)[0] == 6.0f && ((float *)out[0].data)[1] == expf(1.0f) + 6.0f);
    assert_true(out[1].owned && ((float *)out[1].data)[1] == 1.0f);   /* a bound value comes back as a copy */
    ir_tensor_free(&out[0]);
    ir_tensor_free(&out[1]);
    ir_tensor_free(&ta);
    ir_tensor_free(&tx);
    t_free(&t);
}

/* --trace prints each node with its result shapes to stderr. */
static void test_trace(void **state)
{
    T t;
    t_init(&t);
    int64_t d2[1] = {2};
    IrId y = NODE(&t, OP_NEG, "/neg", input(&t, "x", DT_F32, 1, d2));
    ir_output_add(t.g, y);
    float xv[2] = {1, 2};
    IrTensor in = tensor(DT_F32, 1, d2, xv), out[1];
    assert_true(ir_infer_graph(t.g, NULL));
    const char *path = test_write_file("trace.txt", "", 0);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    IrRunOptions opt = {.trace = true};
    bool ok = ir_run(t.g, &in, out, &opt);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    assert_true(ok);
    char buf[512] = "", want[256];
    f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    snprintf(want, sizeof want, "[bqc trace] main#0 Neg '/neg' -> %s f32[2]\n", ir_val(t.g, y)->name);
    assert_string_equal(buf, want);
    ir_tensor_free(&in);
    ir_tensor_free(&out[0]);
    t_free(&t);
}

/* ---- fused ops give the bits of the subgraphs they replace ---- */

static void test_layernorm_matches_decomposition(void **state)
{
    T t;
    t_init(&t);
    const int64_t R = 5, C = 24;
    int64_t dx[2] = {R, C}, dc[1] = {C};
    float *gv = rand_floats(7, C), *bv = rand_floats(8, C), two = 2.0f, eps = 1e-5f;
    IrId x = input(&t, "x", DT_F32, 2, dx), g = cnst(&t, "g", DT_F32, 1, dc, gv), b = cnst(&t, "b", DT_F32, 1, dc, bv);
    IrId mean = NODE(&t, OP_REDUCE_MEAN, "mean", x);
    attr_of(&t, mean)->reduce.axes = (IrInts){1, {-1}};
    IrId d = NODE(&t, OP_SUB, "sub", x, mean);
    IrId var = NODE(&t, OP_REDUCE_MEAN, "var", NODE(&t, OP_POW, "pow", d, cnst(&t, "two", DT_F32, 0, NULL, &two)));
    attr_of(&t, var)->reduce.axes = (IrInts){1, {-1}};
    IrId sd = NODE(&t, OP_SQRT, "sqrt", NODE(&t, OP_ADD, "addeps", var, cnst(&t, "eps", DT_F32, 0, NULL, &eps)));
    IrId y = NODE(&t, OP_ADD, "addb", NODE(&t, OP_MUL, "mulg", NODE(&t, OP_DIV, "div", d, sd), g), b);
    ir_output_add(t.g, y);
    IrId ln = NODE(&t, OP_LAYER_NORM, "ln", x, g, b);
    attr_of(&t, ln)->layernorm.epsilon = eps;
    ir_output_add(t.g, ln);
    float *xv = rand_floats(9, (size_t)(R * C));
    for (int i = 0; i < C; i++) xv[i] = xv[i] * 1000.0f + 3.0f;   /* a large, offset row */
    IrTensor in = tensor(DT_F32, 2, dx, xv), out[2];
    run_ok(&t, &in, out);
    assert_memory_equal(out[0].data, out[1].data, out[0].nbytes);
    free(gv), free(bv), free(xv);
    ir_tensor_free(&in);
    ir_tensor_free(&out[0]);
    ir_tensor_free(&out[1]);
    t_free(&t);
}

static void test_linear_matches_matmul_add_relu(void **state)
{
    T t;
    t_init(&t);
    int64_t dx[3] = {2, 7, 40}, dw[2] = {40, 33}, dwt[2] = {33, 40}, db[1] = {33};
    float *wv = rand_floats(11, 40 * 33), *bv = rand_floats(12, 33), *wt = malloc(40 * 33 * sizeof *wt);
    for (int k = 0; k < 40; k++)
        for (int n = 0; n < 33; n++) wt[n * 40 + k] = wv[k * 33 + n];
    IrId x = input(&t, "x", DT_F32, 3, dx), w = cnst(&t, "w", DT_F32, 2, dw, wv), b = cnst(&t, "b", DT_F32, 1, db, bv);
    IrId w_t = cnst(&t, "wt", DT_F32, 2, dwt, wt);
    ir_output_add(t.g, NODE(&t, OP_RELU, "relu", NODE(&t, OP_ADD, "add", NODE(&t, OP_MATMUL, "mm", x, w), b)));
    IrId lin = NODE(&t, OP_LINEAR, "linear", x, w, b);
    attr_of(&t, lin)->linear.relu = 1;
    ir_output_add(t.g, lin);
    IrId lin_t = NODE(&t, OP_LINEAR, "linear_t", x, w_t, b);
    attr_of(&t, lin_t)->linear.relu = 1;
    attr_of(&t, lin_t)->linear.trans_b = 1;
    ir_output_add(t.g, lin_t);
    float *xv = rand_floats(13, 2 * 7 * 40);
    IrTensor in = tensor(DT_F32, 3, dx, xv), out[3];
    run_ok(&t, &in, out);
    assert_memory_equal(out[0].data, out[1].data, out[0].nbytes);
    assert_memory_equal(out[0].data, out[2].data, out[0].nbytes);
    free(wv), free(bv), free(wt), free(xv);
    ir_tensor_free(&in);
    for (int i = 0; i < 3; i++) ir_tensor_free(&out[i]);
    t_free(&t);
}

/* OPT's exported attention for one head: MatMul(q·scale, Kᵀ) + mask → Max(·, -FLT_MAX) →
 * Softmax → MatMul(·, V), with a causal mask and left padding folded into one additive mask. */
static void test_attention_matches_decomposition(void **state)
{
    T t;
    t_init(&t);
    enum { S = 5, D = 8 };
    int64_t dq[3] = {1, S, D}, dm[3] = {1, S, S}, dkm[2] = {1, S};
    int64_t keymask[S] = {0, 1, 1, 1, 1};
    float add[S * S], scale = 0.35355339f, fmin = -FLT_MAX;
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++) add[i * S + j] = j > i || keymask[j] == 0 ? -FLT_MAX : 0.0f;
    IrId q = input(&t, "q", DT_F32, 3, dq), k = input(&t, "k", DT_F32, 3, dq), v = input(&t, "v", DT_F32, 3, dq);
    IrId kt = NODE(&t, OP_TRANSPOSE, "kt", k);
    attr_of(&t, kt)->transpose.perm = (IrInts){3, {0, 2, 1}};
    IrId s = NODE(&t, OP_MATMUL, "qk", NODE(&t, OP_MUL, "scale", q, cnst(&t, "sc", DT_F32, 0, NULL, &scale)), kt);
    s = NODE(&t, OP_ADD, "mask", s, cnst(&t, "add", DT_F32, 3, dm, add));
    s = NODE(&t, OP_MAX, "clamp", s, cnst(&t, "fmin", DT_F32, 0, NULL, &fmin));
    IrId p = NODE(&t, OP_SOFTMAX, "softmax", s);
    ir_output_add(t.g, NODE(&t, OP_MATMUL, "pv", p, v));
    IrId att = NODE(&t, OP_ATTENTION, "attn", q, k, v, cnst(&t, "km", DT_I64, 2, dkm, keymask));
    attr_of(&t, att)->attention.num_heads = 1;
    attr_of(&t, att)->attention.causal = 1;
    attr_of(&t, att)->attention.scale = scale;
    ir_output_add(t.g, att);
    float *qv = rand_floats(21, S * D), *kv = rand_floats(22, S * D), *vv = rand_floats(23, S * D);
    IrTensor in[3] = {tensor(DT_F32, 3, dq, qv), tensor(DT_F32, 3, dq, kv), tensor(DT_F32, 3, dq, vv)}, out[2];
    run_ok(&t, in, out);
    assert_memory_equal(out[0].data, out[1].data, out[0].nbytes);
    free(qv), free(kv), free(vv);
    for (int i = 0; i < 3; i++) ir_tensor_free(&in[i]);
    ir_tensor_free(&out[0]);
    ir_tensor_free(&out[1]);
    t_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_f16_and_cast),
        cmocka_unit_test(test_f16_rounding),
        cmocka_unit_test(test_gather_slice),
        cmocka_unit_test(test_gather_out_of_range),
        cmocka_unit_test(test_unsupported_dtype),
        cmocka_unit_test(test_matmul_batch_broadcast),
        cmocka_unit_test(test_if),
        cmocka_unit_test(test_input_validation),
        cmocka_unit_test(test_input_symbol_conflict),
        cmocka_unit_test(test_eval_region),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_layernorm_matches_decomposition),
        cmocka_unit_test(test_linear_matches_matmul_add_relu),
        cmocka_unit_test(test_attention_matches_decomposition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
