/* test_frontend.c — the ONNX loader: models built in C with protobuf-c, packed to files, loaded.
 *
 * Covers initializers (raw_data borrowed or copied, every typed field), Constant nodes,
 * external data, attributes through the schema, If captures (flat and nested), graph input
 * types, every error the loader reports, and a few of ONNX's own node-test models.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx.pb-c.h"

#include "frontend.h"
#include "testutil.h"

/* ---- a tiny builder: every allocation is recorded and freed after each test ---- */

static void *pool[4096];
static int npool;

static void *talloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    assert_true(npool < 4096);
    pool[npool++] = p;
    return p;
}

static int pool_free(void **state)
{
    (void)state;
    while (npool) free(pool[--npool]);
    return 0;
}

#define CAP 16
#define PUSH(arr, n, x)                                              \
    do {                                                             \
        if (!(arr)) (arr) = talloc(CAP * sizeof *(arr));             \
        assert_true((n) < CAP);                                      \
        (arr)[(n)++] = (x);                                          \
    } while (0)

static char *tstr(const char *s) { return strcpy(talloc(strlen(s) + 1), s); }

static Onnx__GraphProto *graph_new(const char *name)
{
    Onnx__GraphProto *g = talloc(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = tstr(name);
    return g;
}

static Onnx__ModelProto *model_new(int64_t opset)
{
    Onnx__ModelProto *m = talloc(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = true;
    m->ir_version = 8;
    m->producer_name = tstr("unit");
    m->producer_version = tstr("1.0");
    Onnx__OperatorSetIdProto *o = talloc(sizeof *o);
    onnx__operator_set_id_proto__init(o);
    o->domain = tstr("");
    o->has_version = true;
    o->version = opset;
    PUSH(m->opset_import, m->n_opset_import, o);
    m->graph = graph_new("g");
    return m;
}

/* Comma-separated names; "" entries are kept (omitted optional operands). */
static void split_names(const char *list, char ***out, size_t *n)
{
    *n = 0;
    if (!list) return;
    for (const char *p = list;;) {
        size_t k = strcspn(p, ",");
        char *s = talloc(k + 1);
        memcpy(s, p, k);
        PUSH(*out, *n, s);
        if (!p[k]) break;
        p += k + 1;
    }
}

static Onnx__NodeProto *node_add(Onnx__GraphProto *g, const char *op, const char *name, const char *ins,
                                 const char *outs)
{
    Onnx__NodeProto *n = talloc(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = tstr(op);
    n->name = tstr(name);
    split_names(ins, &n->input, &n->n_input);
    split_names(outs, &n->output, &n->n_output);
    PUSH(g->node, g->n_node, n);
    return n;
}

static Onnx__AttributeProto *attr_add(Onnx__NodeProto *n, const char *name, Onnx__AttributeProto__AttributeType t)
{
    Onnx__AttributeProto *a = talloc(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = tstr(name);
    a->has_type = true;
    a->type = t;
    PUSH(n->attribute, n->n_attribute, a);
    return a;
}

static void attr_int(Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr_add(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = true;
    a->i = v;
}

static void attr_float(Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = attr_add(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = true;
    a->f = v;
}

static void attr_ints(Onnx__NodeProto *n, const char *name, const int64_t *v, size_t k)
{
    Onnx__AttributeProto *a = attr_add(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = k;
    a->ints = talloc(k * sizeof *v);
    memcpy(a->ints, v, k * sizeof *v);
}

static void attr_graph(Onnx__NodeProto *n, const char *name, Onnx__GraphProto *g)
{
    attr_add(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH)->g = g;
}

static Onnx__TensorProto *tensor_new(const char *name, int dtype, int rank, const int64_t *dims)
{
    Onnx__TensorProto *t = talloc(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = tstr(name);
    t->has_data_type = true;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = talloc((size_t)rank * sizeof(int64_t));
    if (rank) memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
    return t;
}

static Onnx__TensorProto *tensor_raw(const char *name, int dtype, int rank, const int64_t *dims, const void *data,
                                     size_t n)
{
    Onnx__TensorProto *t = tensor_new(name, dtype, rank, dims);
    t->has_raw_data = true;
    t->raw_data.len = n;
    t->raw_data.data = talloc(n);
    memcpy(t->raw_data.data, data, n);
    return t;
}

static void attr_tensor(Onnx__NodeProto *n, const char *name, Onnx__TensorProto *t)
{
    attr_add(n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR)->t = t;
}

static void init_add(Onnx__GraphProto *g, Onnx__TensorProto *t) { PUSH(g->initializer, g->n_initializer, t); }

static void external_add(Onnx__TensorProto *t, const char *key, const char *value)
{
    Onnx__StringStringEntryProto *e = talloc(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = tstr(key);
    e->value = tstr(value);
    PUSH(t->external_data, t->n_external_data, e);
    t->has_data_location = true;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
}

/* dims: >= 0 known; -1 a dim_param from params (in order); -2 no value at all. */
static Onnx__ValueInfoProto *value_info(const char *name, int elem, int rank, const int64_t *dims, const char **params)
{
    Onnx__ValueInfoProto *v = talloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = tstr(name);
    Onnx__TypeProto *tp = talloc(sizeof *tp);
    onnx__type_proto__init(tp);
    v->type = tp;
    Onnx__TypeProto__Tensor *tt = talloc(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = true;
    tt->elem_type = elem;
    if (rank < 0) return v;
    tt->shape = talloc(sizeof *tt->shape);
    onnx__tensor_shape_proto__init(tt->shape);
    for (int i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = talloc(sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else if (dims[i] == -1) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = tstr(*params++);
        }
        PUSH(tt->shape->dim, tt->shape->n_dim, d);
    }
    return v;
}

static void input_add(Onnx__GraphProto *g, const char *name, int elem, int rank, const int64_t *dims)
{
    PUSH(g->input, g->n_input, value_info(name, elem, rank, dims, NULL));
}

static void output_add(Onnx__GraphProto *g, const char *name)
{
    Onnx__ValueInfoProto *v = talloc(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = tstr(name);
    PUSH(g->output, g->n_output, v);
}

static uint8_t *pack(const Onnx__ModelProto *m, size_t *n)
{
    *n = onnx__model_proto__get_packed_size(m);
    uint8_t *b = talloc(*n);
    onnx__model_proto__pack(m, b);
    return b;
}

static const char *save(const Onnx__ModelProto *m, const char *file)
{
    size_t n;
    uint8_t *b = pack(m, &n);
    return test_write_file(file, b, n);
}

/* Loads and expects failure with `msg` in the diagnostics. */
static void expect_error(const Onnx__ModelProto *mp, const char *file, const char *msg)
{
    TestDiag td;
    test_diag_init(&td);
    IrModel *m = onnx_load(&td.d, save(mp, file));
    assert_null(m);
    assert_true(td.d.nerrors >= 1);
    assert_diag_contains(&td, msg);
    test_diag_free(&td);
}

static IrModel *load_ok(const char *path, TestDiag *td)
{
    test_diag_init(td);
    IrModel *m = onnx_load(&td->d, path);
    if (!m) fail_msg("load failed: %s", td->buf.text ? td->buf.text : "");
    assert_int_equal(td->d.nerrors, 0);
    return m;
}

static IrId find(const IrGraph *g, const char *name)
{
    IrId v = ir_value_find(g, name);
    if (v == IR_NONE) fail_msg("no value '%s'", name);
    return v;
}

static const int64_t d2[] = {2}, d23[] = {2, 3}, d0[] = {0};

/* ---- initializers ---- */

static void test_raw_and_typed_initializers(void **state)
{
    (void)state;
    Onnx__ModelProto *mp = model_new(17);
    Onnx__GraphProto *g = mp->graph;
    float f[6] = {1, -2, 3.5f, 4, 5, 6};
    init_add(g, tensor_raw("raw_f32", 1, 2, d23, f, sizeof f));
    Onnx__TensorProto *t = tensor_new("typed_f32", 1, 1, d2);
    t->n_float_data = 2;
    t->float_data = talloc(2 * sizeof(float));
    t->float_data[0] = 0.5f, t->float_data[1] = -0.25f;
    init_add(g, t);
    struct { const char *name; int code; int32_t v[2]; } i32rows[] = {
        {"i8", 3, {-5, 7}}, {"u8", 2, {200, 1}}, {"bool", 9, {1, 0}}, {"f16", 10, {0x3c00, 0xc000}},
        {"i16", 5, {-300, 300}}, {"u16", 4, {65535, 2}}, {"i32", 6, {-70000, 5}}, {"bf16", 16, {0x3f80, 0x4040}}};
    for (size_t i = 0; i < sizeof i32rows / sizeof *i32rows; i++) {
        t = tensor_new(i32rows[i].name, i32rows[i].code, 1, d2);
        t->n_int32_data = 2;
        t->int32_data = talloc(2 * sizeof(int32_t));
        memcpy(t->int32_data, i32rows[i].v, sizeof i32rows[i].v);
        init_add(g, t);
    }
    t = tensor_new("i64", 7, 1, d2);
    t->n_int64_data = 2;
    t->int64_data = talloc(16);
    t->int64_data[0] = -((int64_t)1 << 40), t->int64_data[1] = 3;
    init_add(g, t);
    t = tensor_new("f64", 11, 1, d2);
    t->n_double_data = 2;
    t->double_data = talloc(16);
    t->double_data[0] = 1e300, t->double_data[1] = -0.125;
    init_add(g, t);
    t = tensor_new("u32", 12, 1, d2);
    t->n_uint64_data = 2;
    t->uint64_data = talloc(16);
    t->uint64_data[0] = 4000000000u, t->uint64_data[1] = 9;
    init_add(g, t);
    t = tensor_new("u64", 13, 1, d2);
    t->n_uint64_data = 2;
    t->uint64_data = talloc(16);
    t->uint64_data[0] = UINT64_MAX, t->uint64_data[1] = 1;
    init_add(g, t);
    init_add(g, tensor_new("empty", 1, 1, d0));
    output_add(g, "raw_f32");

    TestDiag td;
    IrModel *m = load_ok(save(mp, "typed.onnx"), &td);
    IrGraph *ig = m->graph;
    assert_int_equal(m->opset, 17);
    assert_string_equal(m->producer, "unit 1.0");
    const IrValue *v = ir_val(ig, find(ig, "raw_f32"));
    assert_int_equal(v->kind, IR_VAL_CONST);
    assert_int_equal(v->type.dtype, DT_F32);
    assert_int_equal(v->type.rank, 2);
    assert_int_equal(v->type.dims[1], 3);
    assert_int_equal(v->nbytes, 24);
    assert_memory_equal(v->data, f, sizeof f);
    assert_int_equal(v->file, 1);
    v = ir_val(ig, find(ig, "typed_f32"));
    assert_int_equal(v->file, 0);
    assert_true(((const float *)v->data)[1] == -0.25f);
    int8_t i8[2] = {-5, 7};
    assert_memory_equal(ir_val(ig, find(ig, "i8"))->data, i8, 2);
    uint8_t u8[2] = {200, 1}, b[2] = {1, 0};
    assert_memory_equal(ir_val(ig, find(ig, "u8"))->data, u8, 2);
    assert_memory_equal(ir_val(ig, find(ig, "bool"))->data, b, 2);
    assert_int_equal(ir_val(ig, find(ig, "bool"))->type.dtype, DT_BOOL);
    uint16_t h[2] = {0x3c00, 0xc000}, bf[2] = {0x3f80, 0x4040}, u16[2] = {65535, 2};
    int16_t i16[2] = {-300, 300};
    int32_t i32[2] = {-70000, 5};
    assert_memory_equal(ir_val(ig, find(ig, "f16"))->data, h, 4);
    assert_memory_equal(ir_val(ig, find(ig, "bf16"))->data, bf, 4);
    assert_memory_equal(ir_val(ig, find(ig, "i16"))->data, i16, 4);
    assert_memory_equal(ir_val(ig, find(ig, "u16"))->data, u16, 4);
    assert_memory_equal(ir_val(ig, find(ig, "i32"))->data, i32, 8);
    int64_t i64[2] = {-((int64_t)1 << 40), 3};
    assert_memory_equal(ir_val(ig, find(ig, "i64"))->data, i64, 16);
    double f64[2] = {1e300, -0.125};
    assert_memory_equal(ir_val(ig, find(ig, "f64"))->data, f64, 16);
    uint32_t u32[2] = {4000000000u, 9};
    assert_memory_equal(ir_val(ig, find(ig, "u32"))->data, u32, 8);
    assert_int_equal(ir_val(ig, find(ig, "u32"))->nbytes, 8);
    uint64_t u64[2] = {UINT64_MAX, 1};
    assert_memory_equal(ir_val(ig, find(ig, "u64"))->data, u64, 16);
    v = ir_val(ig, find(ig, "empty"));
    assert_int_equal(v->nbytes, 0);
    assert_non_null(v->data);
    assert_int_equal(ig->noutputs, 1);
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* Packs a model with one raw f32 initializer of 64 elements whose payload lands at an offset
 * with the wanted remainder mod 4 (by varying the tensor's name length). */
static const char *model_with_payload_at(int rem, size_t *offset, float *vals)
{
    for (int i = 0; i < 64; i++) vals[i] = (float)i * 0.5f - 3;
    const int64_t d64[] = {64};
    for (int len = 1; len < 8; len++) {
        char name[16];
        memset(name, 'w', (size_t)len);
        name[len] = 0;
        Onnx__ModelProto *mp = model_new(13);
        init_add(mp->graph, tensor_raw(name, 1, 1, d64, vals, 64 * sizeof(float)));
        output_add(mp->graph, name);
        size_t n;
        uint8_t *b = pack(mp, &n);
        uint8_t *p = memmem(b, n, vals, 64 * sizeof(float));
        assert_non_null(p);
        *offset = (size_t)(p - b);
        if ((int)(*offset % 4) == rem) return test_write_file(rem ? "misaligned.onnx" : "aligned.onnx", b, n);
    }
    fail_msg("no name length gives remainder %d", rem);
    return NULL;
}

static void test_zero_copy_aligned(void **state)
{
    (void)state;
    size_t off;
    float vals[64];
    const char *path = model_with_payload_at(0, &off, vals);
    TestDiag td;
    IrModel *m = load_ok(path, &td);
    const IrValue *v = ir_val(m->graph, m->graph->outputs[0]);
    const uint8_t *base = m->files[0].base;
    assert_true((const uint8_t *)v->data >= base && (const uint8_t *)v->data < base + m->files[0].size);
    assert_ptr_equal(v->data, base + off);
    assert_int_equal(v->file, 1);
    assert_int_equal(v->file_offset, off);
    assert_memory_equal(v->data, vals, sizeof vals);
    ir_model_destroy(m);
    test_diag_free(&td);
}

static void test_zero_copy_misaligned_is_copied(void **state)
{
    (void)state;
    size_t off;
    float vals[64];
    const char *path = model_with_payload_at(1, &off, vals);
    TestDiag td;
    IrModel *m = load_ok(path, &td);
    const IrValue *v = ir_val(m->graph, m->graph->outputs[0]);
    const uint8_t *base = m->files[0].base;
    assert_false((const uint8_t *)v->data >= base && (const uint8_t *)v->data < base + m->files[0].size);
    assert_int_equal((uintptr_t)v->data % sizeof(float), 0);
    assert_int_equal(v->file, 1);
    assert_int_equal(v->file_offset, off);
    assert_memory_equal(v->data, vals, sizeof vals);
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* ---- Constant nodes, attributes, inputs ---- */

static void test_constant_nodes(void **state)
{
    (void)state;
    Onnx__ModelProto *mp = model_new(13);
    Onnx__GraphProto *g = mp->graph;
    int64_t iv[3] = {4, 5, 6};
    attr_tensor(node_add(g, "Constant", "c0", NULL, "t"), "value", tensor_raw("", 7, 1, (int64_t[]){3}, iv, sizeof iv));
    attr_float(node_add(g, "Constant", "c1", NULL, "f"), "value_float", 2.5f);
    Onnx__AttributeProto *a = attr_add(node_add(g, "Constant", "c2", NULL, "fs"), "value_floats",
                                       ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = 2;
    a->floats = talloc(8);
    a->floats[0] = 1, a->floats[1] = 2;
    attr_int(node_add(g, "Constant", "c3", NULL, "i"), "value_int", -7);
    attr_ints(node_add(g, "Constant", "c4", NULL, "is"), "value_ints", iv, 3);
    node_add(g, "Add", "add", "f,fs", "y");
    output_add(g, "y");
    TestDiag td;
    IrModel *m = load_ok(save(mp, "const.onnx"), &td);
    IrGraph *ig = m->graph;
    assert_int_equal(ig->nnodes, 1);   /* Constants are folded into constant values */
    const IrValue *v = ir_val(ig, find(ig, "t"));
    assert_int_equal(v->kind, IR_VAL_CONST);
    assert_int_equal(v->type.dtype, DT_I64);
    assert_memory_equal(v->data, iv, sizeof iv);
    v = ir_val(ig, find(ig, "f"));
    assert_int_equal(v->type.rank, 0);
    assert_true(*(const float *)v->data == 2.5f);
    v = ir_val(ig, find(ig, "fs"));
    assert_int_equal(v->type.rank, 1);
    assert_int_equal(v->type.dims[0], 2);
    assert_true(((const float *)v->data)[1] == 2.0f);
    v = ir_val(ig, find(ig, "i"));
    assert_int_equal(v->type.dtype, DT_I64);
    assert_int_equal(*(const int64_t *)v->data, -7);
    v = ir_val(ig, find(ig, "is"));
    assert_int_equal(v->type.dims[0], 3);
    assert_memory_equal(v->data, iv, sizeof iv);
    const IrNode *n = ir_node(ig, 0);
    assert_int_equal(n->in[0], find(ig, "f"));
    assert_int_equal(n->in[1], find(ig, "fs"));
    ir_model_destroy(m);
    test_diag_free(&td);
}

static void test_attributes_and_operands(void **state)
{
    (void)state;
    Onnx__ModelProto *mp = model_new(17);
    Onnx__GraphProto *g = mp->graph;
    const char *params[] = {"batch size", "2seq"};
    PUSH(g->input, g->n_input, value_info("x", 1, 3, (int64_t[]){-1, -1, 4}, params));
    input_add(g, "u", 1, 2, (int64_t[]){-2, 4});
    input_add(g, "r", 1, -1, NULL);
    float w[16] = {0};
    init_add(g, tensor_raw("w", 1, 2, (int64_t[]){4, 4}, w, sizeof w));
    input_add(g, "w", 1, 2, (int64_t[]){4, 4});   /* an initializer listed as input: skipped */
    Onnx__NodeProto *n = node_add(g, "Gemm", "gemm", "u,w", "gy");
    attr_float(n, "alpha", 0.5f);
    attr_int(n, "transB", 1);
    n = node_add(g, "Transpose", "tr", "x", "xt");
    attr_ints(n, "perm", (int64_t[]){2, 0, 1}, 3);
    attr_int(node_add(g, "Cast", "cast", "xt", "xc"), "to", 10);
    Onnx__TensorProto *one = tensor_new("", 7, 1, (int64_t[]){1});
    one->n_int64_data = 1;
    one->int64_data = talloc(8);
    one->int64_data[0] = 42;
    attr_tensor(node_add(g, "ConstantOfShape", "cos", "shape", "filled"), "value", one);
    input_add(g, "shape", 7, 1, (int64_t[]){2});
    Onnx__TensorProto *half = tensor_new("", 10, 1, (int64_t[]){1});
    half->n_int32_data = 1;
    half->int32_data = talloc(4);
    half->int32_data[0] = 0x3e00;   /* 1.5 */
    attr_tensor(node_add(g, "ConstantOfShape", "cos2", "shape", "filled2"), "value", half);
    node_add(g, "Slice", "slice", "x,starts,ends,,steps", "s");
    input_add(g, "starts", 7, 1, d2);
    input_add(g, "ends", 7, 1, d2);
    input_add(g, "steps", 7, 1, d2);
    node_add(g, "LayerNormalization", "ln", "x,scale", "ln_y,,");
    input_add(g, "scale", 1, 1, (int64_t[]){4});
    attr_int(node_add(g, "Dropout", "drop", "r", "dr"), "seed", 3);
    output_add(g, "gy");
    /* The inputs added after the nodes that use them are still graph inputs (defined first). */
    TestDiag td;
    IrModel *m = load_ok(save(mp, "attrs.onnx"), &td);
    IrGraph *ig = m->graph;
    assert_int_equal(ig->ninputs, 8);   /* x u r shape starts ends steps scale; w skipped */
    const IrValue *x = ir_val(ig, find(ig, "x"));
    assert_int_equal(x->kind, IR_VAL_INPUT);
    assert_int_equal(x->type.rank, 3);
    assert_int_equal(x->type.dims[0], ir_dim_sym(m, "batch_size"));
    assert_int_equal(x->type.dims[1], ir_dim_sym(m, "_2seq"));
    assert_int_equal(x->type.dims[2], 4);
    const IrValue *u = ir_val(ig, find(ig, "u"));
    assert_false(IR_DIM_IS_CONST(u->type.dims[0]));
    assert_int_equal(ir_val(ig, find(ig, "r"))->type.rank, -1);
    assert_int_equal(ir_val(ig, find(ig, "w"))->kind, IR_VAL_CONST);

    assert_int_equal(ig->nnodes, 8);
    const IrNode *nd = ir_node(ig, 0);
    assert_int_equal(nd->op, OP_GEMM);
    assert_true(nd->attr.gemm.alpha == 0.5f && nd->attr.gemm.beta == 1.0f);
    assert_int_equal(nd->attr.gemm.trans_b, 1);
    assert_int_equal(nd->attr.gemm.trans_a, 0);
    nd = ir_node(ig, 1);
    assert_int_equal(nd->attr.transpose.perm.n, 3);
    assert_int_equal(nd->attr.transpose.perm.v[0], 2);
    assert_int_equal(ir_node(ig, 2)->attr.cast.to, DT_F16);
    nd = ir_node(ig, 3);
    assert_int_equal(nd->attr.cos.value.dtype, DT_I64);
    assert_int_equal(nd->attr.cos.value.i, 42);
    nd = ir_node(ig, 4);
    assert_int_equal(nd->attr.cos.value.dtype, DT_F16);
    assert_true(nd->attr.cos.value.f == 1.5);
    nd = ir_node(ig, 5);
    assert_int_equal(nd->op, OP_SLICE);
    assert_int_equal(nd->nin, 5);
    assert_int_equal(nd->in[3], IR_NONE);
    assert_int_equal(nd->in[4], find(ig, "steps"));
    nd = ir_node(ig, 6);
    assert_int_equal(nd->op, OP_LAYER_NORM);
    assert_int_equal(nd->nout, 3);
    assert_string_equal(ir_val(ig, nd->out[0])->name, "ln_y");
    assert_string_equal(ir_val(ig, nd->out[1])->name, "ln.out1");
    assert_string_equal(ir_val(ig, nd->out[2])->name, "ln.out2");
    assert_true(nd->attr.layernorm.epsilon == 1e-5f);
    assert_int_equal(nd->attr.layernorm.axis, -1);
    assert_string_equal(nd->name, "ln");
    assert_int_equal(ir_node(ig, 7)->op, OP_DROPOUT);
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* ---- If: explicit captures ---- */

static void test_if_captures(void **state)
{
    (void)state;
    Onnx__ModelProto *mp = model_new(13);
    Onnx__GraphProto *g = mp->graph;
    input_add(g, "cond", 9, 0, NULL);
    input_add(g, "x", 1, 1, d2);
    input_add(g, "y", 1, 1, d2);
    input_add(g, "z", 1, 1, d2);
    Onnx__GraphProto *th = graph_new("then_body"), *el = graph_new("else_body");
    node_add(th, "Add", "t_add", "y,x", "t_out");
    output_add(th, "t_out");
    node_add(el, "Sub", "e_sub", "x,z", "e_out");
    node_add(el, "Neg", "e_neg", "e_out", "e_out2");
    output_add(el, "e_out2");
    Onnx__NodeProto *n = node_add(g, "If", "if", "cond", "res");
    attr_graph(n, "then_branch", th);
    attr_graph(n, "else_branch", el);
    output_add(g, "res");
    TestDiag td;
    IrModel *m = load_ok(save(mp, "if.onnx"), &td);
    IrGraph *ig = m->graph;
    assert_int_equal(ig->nnodes, 1);
    const IrNode *nd = ir_node(ig, 0);
    assert_int_equal(nd->op, OP_IF);
    assert_int_equal(nd->nin, 4);   /* cond, then the union of captures in first-use order: y x z */
    assert_int_equal(nd->in[0], find(ig, "cond"));
    assert_int_equal(nd->in[1], find(ig, "y"));
    assert_int_equal(nd->in[2], find(ig, "x"));
    assert_int_equal(nd->in[3], find(ig, "z"));
    assert_int_equal(ig->nsubs, 2);
    const IrGraph *t = ig->subs[nd->attr.if_.then_g], *e = ig->subs[nd->attr.if_.else_g];
    assert_string_equal(t->name, "then_0");
    assert_string_equal(e->name, "else_0");
    assert_ptr_equal(t->parent, ig);
    const char *order[] = {"y", "x", "z"};
    for (int k = 0; k < 2; k++) {
        const IrGraph *b = k ? e : t;
        assert_int_equal(b->ninputs, 3);
        for (int i = 0; i < 3; i++) {
            assert_string_equal(ir_val(b, b->inputs[i])->name, order[i]);
            assert_int_equal(ir_val(b, b->inputs[i])->kind, IR_VAL_INPUT);
            assert_int_equal(ir_val(b, b->inputs[i])->type.dims[0], 2);
        }
        assert_int_equal(b->noutputs, 1);
    }
    assert_int_equal(t->nnodes, 1);
    assert_int_equal(ir_node(t, 0)->in[0], t->inputs[0]);
    assert_int_equal(ir_node(t, 0)->in[1], t->inputs[1]);
    assert_int_equal(e->nnodes, 2);
    assert_int_equal(ir_node(e, 0)->in[0], e->inputs[1]);
    assert_int_equal(ir_node(e, 0)->in[1], e->inputs[2]);
    assert_string_equal(ir_val(e, e->outputs[0])->name, "e_out2");
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* A value read by an inner branch is threaded through the middle graph; a branch may output an
 * outer value directly and hold its own initializers. */
static void test_if_nested(void **state)
{
    (void)state;
    Onnx__ModelProto *mp = model_new(13);
    Onnx__GraphProto *g = mp->graph;
    input_add(g, "c1", 9, 0, NULL);
    input_add(g, "c2", 9, 0, NULL);
    input_add(g, "x", 1, 1, d2);
    input_add(g, "y", 1, 1, d2);
    Onnx__GraphProto *mid = graph_new("mid"), *outer_else = graph_new("oe");
    Onnx__GraphProto *it = graph_new("it"), *ie = graph_new("ie");
    node_add(it, "Neg", "neg", "x", "it_out");
    output_add(it, "it_out");
    output_add(ie, "y");                  /* outputs a captured value directly */
    Onnx__NodeProto *inner = node_add(mid, "If", "inner", "c2", "m_out");
    attr_graph(inner, "then_branch", it);
    attr_graph(inner, "else_branch", ie);
    output_add(mid, "m_out");
    float k[2] = {1, 2};
    init_add(outer_else, tensor_raw("k", 1, 1, d2, k, sizeof k));
    node_add(outer_else, "Add", "oe_add", "x,k", "oe_out");
    output_add(outer_else, "oe_out");
    Onnx__NodeProto *outer = node_add(g, "If", "outer", "c1", "res");
    attr_graph(outer, "then_branch", mid);
    attr_graph(outer, "else_branch", outer_else);
    output_add(g, "res");
    TestDiag td;
    IrModel *m = load_ok(save(mp, "nested.onnx"), &td);
    IrGraph *ig = m->graph;
    const IrNode *o = ir_node(ig, 0);
    assert_int_equal(o->nin, 4);   /* c1; the middle graph's captures c2 x y */
    assert_int_equal(o->in[1], find(ig, "c2"));
    assert_int_equal(o->in[2], find(ig, "x"));
    assert_int_equal(o->in[3], find(ig, "y"));
    IrGraph *mg = ig->subs[o->attr.if_.then_g], *eg = ig->subs[o->attr.if_.else_g];
    assert_string_equal(mg->name, "then_0");
    assert_int_equal(mg->ninputs, 3);
    assert_int_equal(eg->ninputs, 3);   /* x used; c2 and y unused but present, same order */
    assert_string_equal(ir_val(eg, eg->inputs[0])->name, "c2");
    assert_string_equal(ir_val(eg, eg->inputs[1])->name, "x");
    assert_int_equal(ir_val(eg, find(eg, "k"))->kind, IR_VAL_CONST);
    assert_int_equal(mg->nnodes, 1);
    const IrNode *in = ir_node(mg, 0);
    assert_int_equal(in->nin, 3);
    assert_int_equal(in->in[0], mg->inputs[0]);
    assert_int_equal(in->in[1], mg->inputs[1]);
    assert_int_equal(in->in[2], mg->inputs[2]);
    assert_int_equal(mg->nsubs, 2);
    IrGraph *tg = mg->subs[in->attr.if_.then_g], *fg = mg->subs[in->attr.if_.else_g];
    assert_ptr_equal(tg->parent, mg);
    assert_string_equal(tg->name, "then_1");
    assert_int_equal(tg->ninputs, 2);
    assert_string_equal(ir_val(tg, tg->inputs[0])->name, "x");
    assert_string_equal(ir_val(tg, tg->inputs[1])->name, "y");
    assert_int_equal(fg->ninputs, 2);
    assert_int_equal(fg->nnodes, 0);
    assert_int_equal(fg->outputs[0], fg->inputs[1]);
    ir_model_destroy(m);
    test_diag_free(&td);
}

/* ---- external data ---- */

static Onnx__ModelProto *external_model(const char *location, const char *offset, const char *length)
{
    Onnx__ModelProto *mp = model_new(13);
    Onnx__TensorProto *t = tensor_new("w", 1, 1, (int64_t[]){4});
    external_add(t, "location", location);
    if (offset) external_add(t, "offset", offset);
    if (length) external_add(t, "length", length);
    init_add(mp->graph, t);
    output_add(mp->graph, "w");
    return mp;
}

static void test_external_data(void **state)
{
    (void)state;
    uint8_t blob[64 + 16 + 1];
    float w[4] = {1, 2, 3, 4};
    memset(blob, 0xee, sizeof blob);
    memcpy(blob + 64, w, sizeof w);
    test_write_file("weights.bin", blob, sizeof blob);
    TestDiag td;
    IrModel *m = load_ok(save(external_model("weights.bin", "64", "16"), "ext.onnx"), &td);
    const IrValue *v = ir_val(m->graph, m->graph->outputs[0]);
    assert_int_equal(m->nfiles, 2);
    assert_ptr_equal(v->data, m->files[1].base + 64);   /* aligned: borrowed */
    assert_int_equal(v->file, 2);
    assert_int_equal(v->file_offset, 64);
    assert_memory_equal(v->data, w, sizeof w);
    ir_model_destroy(m);
    test_diag_free(&td);

    memmove(blob + 65, blob + 64, sizeof w);   /* misaligned: copied */
    test_write_file("weights.bin", blob, sizeof blob);
    m = load_ok(save(external_model("weights.bin", "65", NULL), "ext.onnx"), &td);
    v = ir_val(m->graph, m->graph->outputs[0]);
    assert_int_equal((uintptr_t)v->data % sizeof(float), 0);
    assert_int_equal(v->file, 2);
    assert_int_equal(v->file_offset, 65);
    assert_memory_equal(v->data, w, sizeof w);
    ir_model_destroy(m);
    test_diag_free(&td);
}

static void test_external_data_errors(void **state)
{
    (void)state;
    uint8_t blob[32] = {0};
    test_write_file("small.bin", blob, sizeof blob);
    expect_error(external_model("nothere.bin", NULL, NULL), "e1.onnx", "initializer 'w': error: cannot open '");
    expect_error(external_model("nothere.bin", NULL, NULL), "e1.onnx", "nothere.bin': No such file or directory");
    expect_error(external_model("small.bin", "24", NULL), "e2.onnx",
                 "external data out of range: 16 bytes at offset 24");
    expect_error(external_model("small.bin", "99999999999999999999999", NULL), "e2.onnx",
                 "external data offset '99999999999999999999999' is not a byte count");
    expect_error(external_model("small.bin", "0", "12"), "e2.onnx", "external data length 12 does not match");
    expect_error(external_model("/etc/passwd", NULL, NULL), "e3.onnx", "location '/etc/passwd' is absolute");
    expect_error(external_model("sub/../../x.bin", NULL, NULL), "e4.onnx", "leaves the model's directory ('..')");
    expect_error(external_model("", NULL, NULL), "e4.onnx", "external data has no location");
}

/* ---- errors ---- */

static void test_file_errors(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    assert_null(onnx_load(&td.d, "x.onnx"));
    assert_diag_contains(&td, "cannot open 'x.onnx': No such file or directory");
    assert_null(onnx_load(&td.d, test_write_file("empty.onnx", "", 0)));
    assert_diag_contains(&td, "empty.onnx: error: file is empty");
    assert_null(onnx_load(&td.d, test_write_file("text.onnx", "hello world\n", 12)));
    assert_diag_contains(&td, "text.onnx: error: not an ONNX model");
    /* A graph field whose initializer overruns the graph; a field of the wrong wire type. */
    assert_null(onnx_load(&td.d, test_write_file("corrupt.onnx", "\x3a\x03\x2a\x05\x00", 5)));
    assert_diag_contains(&td, "corrupt.onnx: error: file is corrupt: GraphProto field 5 at byte 2 needs 5 bytes, "
                              "1 remain in it");
    assert_null(onnx_load(&td.d, test_write_file("wiretype.onnx", "\x0a\x01\x00", 3)));
    assert_diag_contains(&td, "wiretype.onnx: error: not an ONNX model (protobuf parse failed)");
    assert_null(onnx_load(&td.d, test_write_file("group.onnx", "\x08\x01\x0b", 3)));
    assert_diag_contains(&td, "group.onnx: error: not an ONNX model: unsupported protobuf wire type 3 at byte 2");
    assert_int_equal(td.d.nerrors, 6);
    test_diag_free(&td);

    Onnx__ModelProto *mp = model_new(13);
    float big[1000] = {0};
    init_add(mp->graph, tensor_raw("w", 1, 1, (int64_t[]){1000}, big, sizeof big));
    output_add(mp->graph, "w");
    size_t n;
    uint8_t *b = pack(mp, &n);
    test_diag_init(&td);
    assert_null(onnx_load(&td.d, test_write_file("trunc.onnx", b, n - 1000)));
    assert_diag_contains(&td, "trunc.onnx: error: file is truncated: field 7 at byte ");
    assert_diag_contains(&td, "remain");
    assert_int_equal(td.d.nerrors, 1);
    test_diag_free(&td);

    mp = model_new(13);
    mp->graph = NULL;
    expect_error(mp, "nograph.onnx", "nograph.onnx: error: model has no graph");
    expect_error(model_new(9), "old.onnx", "model uses opset 9; bqc supports opsets 13-17");
    expect_error(model_new(18), "new.onnx", "model uses opset 18; bqc supports opsets 13-17");
    mp = model_new(13);
    mp->opset_import[0]->domain = tstr("com.microsoft");
    expect_error(mp, "noopset.onnx", "model declares no opset for the default ONNX domain");
}

static void test_op_errors(void **state)
{
    (void)state;
    Onnx__ModelProto *mp = model_new(13);
    Onnx__GraphProto *g = mp->graph;
    input_add(g, "x", 1, 1, d2);
    node_add(g, "NonZero", "/x/NonZero_3", "x", "a");
    node_add(g, "Neg", "neg", "a", "b");
    node_add(g, "NonZero", "/x/NonZero_4", "b", "c");
    node_add(g, "LayerNormalization", "/ln", "x,x", "d");
    node_add(g, "bqc.Linear", "lin", "x,x", "e");
    node_add(g, "MatMulNBits", "q", "x", "f")->domain = tstr("com.microsoft");
    output_add(g, "c");
    TestDiag td;
    test_diag_init(&td);
    assert_null(onnx_load(&td.d, save(mp, "ops.onnx")));
    assert_diag_contains(&td, "ops.onnx: node '/x/NonZero_3' (NonZero): error: unsupported op 'NonZero'");
    assert_diag_contains(&td, "node '/x/NonZero_4' (NonZero): error: unsupported op 'NonZero'");
    assert_diag_contains(&td, "node '/ln' (LayerNormalization): error: op 'LayerNormalization' needs opset 17; "
                              "the model uses opset 13");
    assert_diag_contains(&td, "node 'lin' (bqc.Linear): error: unsupported op 'bqc.Linear'");
    assert_diag_contains(&td, "node 'q' (MatMulNBits): error: unsupported op 'MatMulNBits' from domain 'com.microsoft'");
    assert_int_equal(td.d.nerrors, 5);   /* one per unsupported node, no cascade */
    test_diag_free(&td);

    /* Unsupported ops inside a branch are found too. */
    mp = model_new(13);
    input_add(mp->graph, "c", 9, 0, NULL);
    Onnx__GraphProto *th = graph_new("t"), *el = graph_new("e");
    node_add(th, "Loop", "loop", "c", "o");
    output_add(th, "o");
    output_add(el, "c");
    Onnx__NodeProto *n = node_add(mp->graph, "If", "if", "c", "r");
    attr_graph(n, "then_branch", th);
    attr_graph(n, "else_branch", el);
    output_add(mp->graph, "r");
    expect_error(mp, "branchop.onnx", "node 'loop' (Loop): error: unsupported op 'Loop'");
}

/* A one-node model around op `op` with inputs "x" (and "x2"). */
static Onnx__NodeProto *one_node(Onnx__ModelProto **mp, const char *op, const char *ins)
{
    *mp = model_new(17);
    input_add((*mp)->graph, "x", 1, 2, (int64_t[]){2, 3});
    input_add((*mp)->graph, "x2", 1, 2, (int64_t[]){2, 3});
    output_add((*mp)->graph, "y");
    return node_add((*mp)->graph, op, "/n", ins, "y");
}

static void test_attribute_errors(void **state)
{
    (void)state;
    Onnx__ModelProto *mp;
    attr_int(one_node(&mp, "Softmax", "x"), "axes", 1);
    expect_error(mp, "a1.onnx", "a1.onnx: node '/n' (Softmax): error: unknown attribute 'axes'");
    attr_float(one_node(&mp, "Softmax", "x"), "axis", 1.0f);
    expect_error(mp, "a2.onnx", "node '/n' (Softmax): error: attribute 'axis' has type FLOAT; expected INT");
    one_node(&mp, "Cast", "x");
    expect_error(mp, "a3.onnx", "node '/n' (Cast): error: missing required attribute 'to'");
    attr_int(one_node(&mp, "Cast", "x"), "to", 8);
    expect_error(mp, "a4.onnx", "node '/n' (Cast): error: attribute 'to': unsupported element type STRING");
    attr_ints(one_node(&mp, "Transpose", "x"), "perm", (int64_t[]){0, 1, 2, 3, 4, 5, 6, 7, 8}, 9);
    expect_error(mp, "a5.onnx", "attribute 'perm' has 9 values; at most 8 are supported");
    Onnx__TensorProto *two = tensor_new("", 1, 1, d2);
    two->n_float_data = 2;
    two->float_data = talloc(8);
    attr_tensor(one_node(&mp, "ConstantOfShape", "x"), "value", two);
    expect_error(mp, "a6.onnx", "attribute 'value': error: must hold one element, has 2");
    one_node(&mp, "Add", "x");
    expect_error(mp, "a7.onnx", "node '/n' (Add): error: expects 2 inputs, got 1");
    attr_add(one_node(&mp, "Constant", NULL), "sparse_value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR);
    expect_error(mp, "a8.onnx", "node '/n' (Constant): error: unsupported Constant attribute 'sparse_value'");
    attr_add(one_node(&mp, "Constant", NULL), "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    expect_error(mp, "a10.onnx", "node '/n' (Constant): error: attribute 'value' has no value");
    attr_int(one_node(&mp, "Constant", NULL), "value_float", 1);
    expect_error(mp, "a9.onnx", "attribute 'value_float' has type INT; expected FLOAT");
}

static void test_value_errors(void **state)
{
    (void)state;
    Onnx__ModelProto *mp;
    one_node(&mp, "Add", "x,nope");
    expect_error(mp, "v1.onnx", "node '/n' (Add): error: input 'nope' is not defined");
    one_node(&mp, "Add", "x,later");
    node_add(mp->graph, "Neg", "/neg", "x", "later");
    expect_error(mp, "v2.onnx", "input 'later' is used before node #1 ('/neg') defines it");
    one_node(&mp, "Add", "x,x2");
    node_add(mp->graph, "Neg", "/neg", "x", "y");
    expect_error(mp, "v3.onnx", "node '/neg' (Neg): error: value 'y' is defined twice");
    one_node(&mp, "Add", "x,x2");
    input_add(mp->graph, "x", 1, 0, NULL);
    expect_error(mp, "v4.onnx", "graph input 'x': error: value 'x' is defined twice");
    one_node(&mp, "Neg", "x");
    output_add(mp->graph, "zz");
    expect_error(mp, "v5.onnx", "graph 'main': error: output 'zz' is not defined");

    /* Types and payloads. */
    one_node(&mp, "Neg", "x");
    input_add(mp->graph, "s", 8, 1, d2);
    expect_error(mp, "t1.onnx", "graph input 's': error: unsupported element type STRING");
    one_node(&mp, "Neg", "x");
    input_add(mp->graph, "c", 14, 1, d2);
    expect_error(mp, "t2.onnx", "graph input 'c': error: unsupported element type COMPLEX64");
    one_node(&mp, "Neg", "x");
    mp->graph->input[1]->type->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    mp->graph->input[1]->type->sequence_type = talloc(sizeof(Onnx__TypeProto__Sequence));
    onnx__type_proto__sequence__init(mp->graph->input[1]->type->sequence_type);
    expect_error(mp, "t3.onnx", "graph input 'x2': error: unsupported type (a sequence); only tensors are supported");
    one_node(&mp, "Neg", "x");
    init_add(mp->graph, tensor_new("str", 8, 1, d2));
    expect_error(mp, "t4.onnx", "initializer 'str': error: unsupported element type STRING");
    one_node(&mp, "Neg", "x");
    float f[5] = {0};
    init_add(mp->graph, tensor_raw("short", 1, 2, d23, f, sizeof f));
    expect_error(mp, "t5.onnx", "initializer 'short': error: raw_data has 20 bytes; 6 elements of f32 need 24");
    one_node(&mp, "Neg", "x");
    Onnx__TensorProto *t = tensor_new("few", 7, 2, d23);
    t->n_int64_data = 5;
    t->int64_data = talloc(40);
    init_add(mp->graph, t);
    expect_error(mp, "t6.onnx", "initializer 'few': error: int64_data has 5 values; 6 elements expected");
    one_node(&mp, "Neg", "x");
    init_add(mp->graph, tensor_new("none", 7, 2, d23));
    expect_error(mp, "t7.onnx", "initializer 'none': error: no data: a i64 tensor of 6 elements needs raw_data or int64_data");
    one_node(&mp, "Neg", "x");
    init_add(mp->graph, tensor_new("huge", 1, 1, (int64_t[]){(int64_t)1 << 40}));   /* never allocated */
    expect_error(mp, "t7b.onnx", "initializer 'huge': error: no data: a f32 tensor of 1099511627776 elements");
    one_node(&mp, "Neg", "x");
    init_add(mp->graph, tensor_new("neg", 1, 1, (int64_t[]){-3}));
    expect_error(mp, "t8.onnx", "initializer 'neg': error: dimension 0 is negative (-3)");
    one_node(&mp, "Neg", "x");
    init_add(mp->graph, tensor_raw("x", 1, 1, (int64_t[]){1}, f, 4));
    init_add(mp->graph, tensor_raw("x", 1, 1, (int64_t[]){1}, f, 4));
    expect_error(mp, "t9.onnx", "initializer 'x': error: value 'x' is defined twice");
}

static void test_if_errors(void **state)
{
    (void)state;
    Onnx__ModelProto *mp = model_new(13);
    input_add(mp->graph, "c", 9, 0, NULL);
    Onnx__GraphProto *th = graph_new("t"), *el = graph_new("e");
    output_add(th, "c");
    output_add(el, "undefined_in_branch");
    Onnx__NodeProto *n = node_add(mp->graph, "If", "if", "c", "r");
    attr_graph(n, "then_branch", th);
    attr_graph(n, "else_branch", el);
    output_add(mp->graph, "r");
    expect_error(mp, "if1.onnx", "graph 'else_0': error: output 'undefined_in_branch' is not defined");

    mp = model_new(13);
    input_add(mp->graph, "c", 9, 0, NULL);
    th = graph_new("t");
    output_add(th, "c");
    output_add(th, "c");
    n = node_add(mp->graph, "If", "if", "c", "r");
    attr_graph(n, "then_branch", th);
    output_add(mp->graph, "r");
    expect_error(mp, "if2.onnx", "node 'if' (If): error: missing required attribute 'else_branch'");
    attr_graph(n, "else_branch", th);
    expect_error(mp, "if3.onnx", "subgraph 'then_0' has 2 outputs; the node has 1");
    input_add(th, "bad", 9, 0, NULL);
    expect_error(mp, "if4.onnx", "subgraph 'then_branch' declares 1 inputs");
}

/* ---- ONNX's own node-test models ---- */

#define NODE_DIR "/usr/share/libonnx-testdata/data/node/"

/* Some node tests predate opset 13: check they are refused, then re-save them at opset 13. */
static const char *at_opset13(const char *test, TestDiag *td)
{
    char path[512];
    snprintf(path, sizeof path, NODE_DIR "%s/model.onnx", test);
    uint8_t *buf;
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = talloc(n);
    assert_int_equal(fread(buf, 1, n, f), n);
    fclose(f);
    test_diag_init(td);
    assert_null(onnx_load(&td->d, path));
    assert_diag_contains(td, "bqc supports opsets 13-17");
    test_diag_free(td);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, n, buf);
    assert_non_null(mp);
    mp->opset_import[0]->version = 13;
    char name[128];
    snprintf(name, sizeof name, "%s.onnx", test);
    const char *out = save(mp, name);
    onnx__model_proto__free_unpacked(mp, NULL);
    return out;
}

static void test_node_models(void **state)
{
    (void)state;
    TestDiag td;
    IrModel *m = load_ok(NODE_DIR "test_add/model.onnx", &td);
    assert_int_equal(m->graph->nnodes, 1);
    assert_int_equal(ir_node(m->graph, 0)->op, OP_ADD);
    assert_int_equal(m->graph->ninputs, 2);
    assert_int_equal(m->graph->noutputs, 1);
    assert_int_equal(ir_val(m->graph, m->graph->inputs[0])->type.dims[2], 5);
    assert_int_equal(m->opset, 14);
    ir_model_destroy(m);
    test_diag_free(&td);

    m = load_ok(NODE_DIR "test_matmul_2d/model.onnx", &td);
    assert_int_equal(m->graph->nnodes, 1);
    assert_int_equal(ir_node(m->graph, 0)->op, OP_MATMUL);
    ir_model_destroy(m);
    test_diag_free(&td);

    const char *p = at_opset13("test_if", &td);
    if (p) {
        m = load_ok(p, &td);
        IrGraph *g = m->graph;
        assert_int_equal(g->nnodes, 1);
        assert_int_equal(ir_node(g, 0)->op, OP_IF);
        assert_int_equal(ir_node(g, 0)->nin, 1);   /* the branches are Constants: no captures */
        assert_int_equal(g->nsubs, 2);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(g->subs[k]->nnodes, 0);
            assert_int_equal(g->subs[k]->ninputs, 0);
            assert_int_equal(ir_val(g->subs[k], g->subs[k]->outputs[0])->kind, IR_VAL_CONST);
        }
        ir_model_destroy(m);
        test_diag_free(&td);
    }
    p = at_opset13("test_constantofshape_float_ones", &td);
    if (p) {
        m = load_ok(p, &td);
        const IrNode *n = ir_node(m->graph, 0);
        assert_int_equal(n->op, OP_CONSTANT_OF_SHAPE);
        assert_int_equal(n->attr.cos.value.dtype, DT_F32);
        assert_true(n->attr.cos.value.f == 1.0);
        ir_model_destroy(m);
        test_diag_free(&td);
    }
    p = at_opset13("test_constantofshape_int_zeros", &td);
    if (p) {
        m = load_ok(p, &td);
        const IrNode *n = ir_node(m->graph, 0);
        assert_int_equal(n->attr.cos.value.dtype, DT_I32);
        assert_int_equal(n->attr.cos.value.i, 0);
        ir_model_destroy(m);
        test_diag_free(&td);
    }
}

/* ---- memory: weights are not copied twice ---- */

/* Sums every constant of the main graph (touching each cache line, as a compiler pass or the
 * interpreter would) and counts borrowed and copied payloads. */
static uint64_t touch_constants(const IrModel *m, uint64_t *borrowed, uint64_t *copied)
{
    const IrGraph *g = m->graph;
    uint64_t sum = 0;
    *borrowed = *copied = 0;
    for (uint32_t i = 0; i < g->nvals; i++) {
        const IrValue *v = &g->vals[i];
        if (v->kind != IR_VAL_CONST || !v->nbytes) continue;
        const uint8_t *p = v->data, *base = v->file ? m->files[v->file - 1].base : NULL;
        bool in_file = base && p >= base && p < base + m->files[v->file - 1].size;
        *(in_file ? borrowed : copied) += v->nbytes;
        for (uint64_t k = 0; k < v->nbytes; k += 64) sum += p[k];
    }
    return sum;
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    if (f) fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A 64 MB model of four 16 MB raw_data initializers (two land misaligned and are copied), loaded
 * and fully read in a child process: the child's peak RSS must stay within 1.3x the file size
 * above what it inherited. Copying every weight (protobuf-c's unpack) would need 2x. */
static void test_peak_memory(void **state)
{
    (void)state;
    enum { N = 4 << 20 };
    const char *names[4] = {"w1", "w22", "w333", "w4444"};
    Onnx__ModelProto *mp = model_new(13);
    input_add(mp->graph, "x", 1, 1, (int64_t[]){N});
    float *w = malloc(N * sizeof(float));
    assert_non_null(w);
    for (int i = 0; i < N; i++) w[i] = (float)(i & 1023);
    const char *prev = "x";
    for (int k = 0; k < 4; k++) {
        Onnx__TensorProto *t = tensor_new(names[k], 1, 1, (int64_t[]){N});
        t->has_raw_data = true;
        t->raw_data.len = N * sizeof(float);
        t->raw_data.data = (uint8_t *)w;
        init_add(mp->graph, t);
        char *out = talloc(16);
        snprintf(out, 16, "y%d", k);
        char *ins = talloc(32);
        snprintf(ins, 32, "%s,%s", prev, names[k]);
        node_add(mp->graph, "Add", out, ins, out);
        prev = out;
    }
    output_add(mp->graph, prev);
    size_t n = onnx__model_proto__get_packed_size(mp);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    onnx__model_proto__pack(mp, buf);
    const char *path = test_write_file("big.onnx", buf, n);
    free(buf);
    free(w);

    long base_kb = rss_kb();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        Diag d;
        diag_init(&d, NULL, NULL);
        IrModel *m = onnx_load(&d, path);
        if (!m) _exit(255);
        uint64_t borrowed, copied;
        touch_constants(m, &borrowed, &copied);
        _exit((int)(borrowed / (N * sizeof(float))) * 16 + (int)(copied / (N * sizeof(float))));
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_not_equal(WEXITSTATUS(status), 255);
    assert_int_equal(WEXITSTATUS(status) >> 4, 2);    /* borrowed */
    assert_int_equal(WEXITSTATUS(status) & 15, 2);    /* copied */
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    long file_kb = (long)(n / 1024);
    if (ru.ru_maxrss - base_kb > file_kb * 13 / 10)
        fail_msg("peak RSS %ld kB (%ld kB inherited) exceeds 1.3x the %ld kB model", ru.ru_maxrss, base_kb, file_kb);
    unlink(path);
}

/* `test_frontend --load model.onnx`: loads a model and reads every weight, for measuring peak
 * memory with /usr/bin/time -v on large models. */
static int load_and_touch(const char *path)
{
    Diag d;
    diag_init(&d, diag_sink_stderr, NULL);
    IrModel *m = onnx_load(&d, path);
    if (!m) return 1;
    uint64_t borrowed, copied, sum = touch_constants(m, &borrowed, &copied);
    printf("%s: %u nodes, %llu bytes borrowed, %llu bytes copied, checksum %llu\n", path, m->graph->nnodes,
           (unsigned long long)borrowed, (unsigned long long)copied, (unsigned long long)sum);
    ir_model_destroy(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--load") == 0) return load_and_touch(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_raw_and_typed_initializers, pool_free),
        cmocka_unit_test_teardown(test_zero_copy_aligned, pool_free),
        cmocka_unit_test_teardown(test_zero_copy_misaligned_is_copied, pool_free),
        cmocka_unit_test_teardown(test_constant_nodes, pool_free),
        cmocka_unit_test_teardown(test_attributes_and_operands, pool_free),
        cmocka_unit_test_teardown(test_if_captures, pool_free),
        cmocka_unit_test_teardown(test_if_nested, pool_free),
        cmocka_unit_test_teardown(test_external_data, pool_free),
        cmocka_unit_test_teardown(test_external_data_errors, pool_free),
        cmocka_unit_test_teardown(test_file_errors, pool_free),
        cmocka_unit_test_teardown(test_op_errors, pool_free),
        cmocka_unit_test_teardown(test_attribute_errors, pool_free),
        cmocka_unit_test_teardown(test_value_errors, pool_free),
        cmocka_unit_test_teardown(test_if_errors, pool_free),
        cmocka_unit_test_teardown(test_node_models, pool_free),
        cmocka_unit_test_teardown(test_peak_memory, pool_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
