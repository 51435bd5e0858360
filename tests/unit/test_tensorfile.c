/* test_tensorfile.c — .npy and .pb tensor files: round trips, NumPy's and ONNX's own files,
 * and every error the readers report. */
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

#include "frontend.h"
#include "testutil.h"

static void check_same(const IrTensor *a, const IrTensor *b)
{
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->rank, b->rank);
    for (int i = 0; i < a->rank; i++) assert_int_equal(a->dims[i], b->dims[i]);
    assert_int_equal(a->nbytes, b->nbytes);
    if (a->nbytes) assert_memory_equal(a->data, b->data, a->nbytes);
}

/* Writes t to file.ext and reads it back. */
static void round_trip(const IrTensor *t, const char *file, const char *name)
{
    TestDiag td;
    test_diag_init(&td);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), file);
    assert_true(tensor_write(&td.d, path, t, name));
    IrTensor r;
    char *rname = (char *)"unset";
    assert_true(tensor_read(&td.d, path, &r, &rname));
    check_same(t, &r);
    assert_true(r.owned);
    if (strstr(file, ".pb") && name) assert_string_equal(rname, name);
    else assert_null(rname);
    free(rname);
    ir_tensor_free(&r);
    assert_int_equal(td.d.nerrors, 0);
    test_diag_free(&td);
}

static void test_round_trips(void **state)
{
    (void)state;
    IrTensor t;
    float f[6] = {1.5f, -2, 0, 3e-8f, 1e30f, -0.0f};
    ir_tensor_borrow(&t, DT_F32, 2, (int64_t[]){2, 3}, f);
    round_trip(&t, "f32.npy", NULL);
    round_trip(&t, "f32.pb", "input_f");
    int64_t i[3] = {INT64_MIN, 0, INT64_MAX};
    ir_tensor_borrow(&t, DT_I64, 1, (int64_t[]){3}, i);
    round_trip(&t, "i64.npy", NULL);
    round_trip(&t, "i64.pb", "ids");
    uint8_t b[4] = {1, 0, 0, 1};
    ir_tensor_borrow(&t, DT_BOOL, 2, (int64_t[]){2, 2}, b);
    round_trip(&t, "bool.npy", NULL);
    round_trip(&t, "bool.pb", "mask");
    uint16_t h = 0x3c00;
    ir_tensor_borrow(&t, DT_F16, 0, NULL, &h);
    round_trip(&t, "f16.npy", NULL);
    round_trip(&t, "f16.pb", "half");
    uint16_t bf[2] = {0x3f80, 0xc000};
    ir_tensor_borrow(&t, DT_BF16, 1, (int64_t[]){2}, bf);
    round_trip(&t, "bf16.pb", "b");
    ir_tensor_borrow(&t, DT_F32, 2, (int64_t[]){0, 4}, NULL);
    round_trip(&t, "empty.npy", NULL);
    round_trip(&t, "empty.pb", NULL);
}

/* The header NumPy itself writes for np.save(zeros((2, 3), float32)) and for a 1-d array. */
static void test_npy_header_like_numpy(void **state)
{
    (void)state;
    static const char want23[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    static const char want3[] = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
    TestDiag td;
    test_diag_init(&td);
    float f[6] = {0};
    int64_t i[3] = {0};
    IrTensor t;
    for (int k = 0; k < 2; k++) {
        if (k == 0) ir_tensor_borrow(&t, DT_F32, 2, (int64_t[]){2, 3}, f);
        else ir_tensor_borrow(&t, DT_I64, 1, (int64_t[]){3}, i);
        const char *want = k ? want3 : want23;
        char path[1024];
        snprintf(path, sizeof path, "%s/hdr.npy", test_tmpdir());
        assert_true(tensor_write(&td.d, path, &t, NULL));
        FILE *fp = fopen(path, "rb");
        uint8_t buf[256];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        assert_int_equal(n, 128 + t.nbytes);
        assert_memory_equal(buf, "\x93NUMPY\x01\x00\x76\x00", 10);
        assert_memory_equal(buf + 10, want, strlen(want));
        for (size_t j = 10 + strlen(want); j < 127; j++) assert_int_equal(buf[j], ' ');
        assert_int_equal(buf[127], '\n');
    }
    IrTensor bf;
    uint16_t x = 0;
    ir_tensor_borrow(&bf, DT_BF16, 0, NULL, &x);
    char path[1024];
    snprintf(path, sizeof path, "%s/bf.npy", test_tmpdir());
    assert_false(tensor_write(&td.d, path, &bf, NULL));
    assert_diag_contains(&td, "bf.npy: error: bf16 tensors cannot be stored in .npy");
    test_diag_free(&td);
}

/* An .npy file with a hand-written header (version major.0) and `ndata` bytes of data. */
static const char *npy_file(const char *name, int major, const char *dict, const void *data, size_t ndata)
{
    uint8_t buf[512];
    size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    buf[8] = (uint8_t)hl;
    buf[9] = 0;
    buf[10] = buf[11] = 0;
    memcpy(buf + pre, dict, hl);
    memcpy(buf + pre + hl, data, ndata);
    return test_write_file(name, buf, pre + hl + ndata);
}

static void test_npy_versions_and_errors(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    int32_t v[4] = {1, -2, 3, -4};
    IrTensor t;
    for (int major = 1; major <= 3; major++) {
        const char *p = npy_file("v.npy", major, "{\"descr\":\"<i4\",\"shape\":(2,2,),\"fortran_order\":False}\n", v, sizeof v);
        assert_true(tensor_read(&td.d, p, &t, NULL));
        assert_int_equal(t.dtype, DT_I32);
        assert_int_equal(t.rank, 2);
        assert_memory_equal(t.data, v, sizeof v);
        ir_tensor_free(&t);
    }
    const char *p = npy_file("long.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (4L,), }", v, sizeof v);
    assert_true(tensor_read(&td.d, p, &t, NULL));
    assert_int_equal(t.dims[0], 4);
    ir_tensor_free(&t);
    assert_int_equal(td.d.nerrors, 0);

    struct { const char *file, *dict; size_t ndata; const char *msg; } bad[] = {
        {"fortran.npy", "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 2), }", 16, "fortran.npy: error: Fortran-order arrays are not supported"},
        {"short.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", 12, "short.npy: error: truncated data: 16 bytes needed, 12 present"},
        {"complex.npy", "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", 16, "complex.npy: error: unsupported dtype '<c8'"},
        {"bigend.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "unsupported dtype '>f4'"},
        {"noshape.npy", "{'descr': '<f4', 'fortran_order': False}", 8, "noshape.npy: error: bad .npy header"},
        {"badshape.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8, "bad .npy header"},
        {"rank9.npy", "{'descr': '|u1', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 1, "bad .npy header"},
        {"extra.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, "bad .npy header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = npy_file(bad[i].file, 1, bad[i].dict, v, bad[i].ndata);
        assert_false(tensor_read(&td.d, p, &t, NULL));
        assert_diag_contains(&td, bad[i].msg);
    }
    p = test_write_file("magic.npy", "\x93NUMPX\x01\x00\x00\x00", 10);
    assert_false(tensor_read(&td.d, p, &t, NULL));
    assert_diag_contains(&td, "magic.npy: error: not a .npy file (wrong magic)");
    p = test_write_file("ver.npy", "\x93NUMPY\x04\x00\x00\x00", 10);
    assert_false(tensor_read(&td.d, p, &t, NULL));
    assert_diag_contains(&td, "ver.npy: error: unsupported .npy format version 4.0");
    p = test_write_file("hdr.npy", "\x93NUMPY\x01\x00\x50\x00{'", 12);
    assert_false(tensor_read(&td.d, p, &t, NULL));
    assert_diag_contains(&td, "hdr.npy: error: truncated .npy header");
    assert_false(tensor_read(&td.d, "/nonexistent/x.npy", &t, NULL));
    assert_diag_contains(&td, "cannot open '/nonexistent/x.npy': No such file or directory");
    assert_false(tensor_read(&td.d, "x.txt", &t, NULL));
    assert_diag_contains(&td, "x.txt: error: unknown tensor file type (expected .npy or .pb)");
    test_diag_free(&td);
}

static const char *pb_file(const char *name, const Onnx__TensorProto *tp)
{
    size_t n = onnx__tensor_proto__get_packed_size(tp);
    uint8_t *b = malloc(n + 1);
    onnx__tensor_proto__pack(tp, b);
    const char *p = test_write_file(name, b, n);
    free(b);
    return p;
}

static void test_pb_typed_and_errors(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    int64_t dims[2] = {2, 1};
    int32_t halves[2] = {0x3c00, 0x4000};
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.n_dims = 2;
    tp.dims = dims;
    tp.has_data_type = true;
    tp.data_type = 10;
    tp.n_int32_data = 2;
    tp.int32_data = halves;
    IrTensor t;
    char *name = NULL;
    assert_true(tensor_read(&td.d, pb_file("typed.pb", &tp), &t, &name));
    assert_null(name);
    uint16_t want[2] = {0x3c00, 0x4000};
    assert_int_equal(t.dtype, DT_F16);
    assert_memory_equal(t.data, want, 4);
    ir_tensor_free(&t);

    tp.n_int32_data = 1;
    assert_false(tensor_read(&td.d, pb_file("few.pb", &tp), &t, NULL));
    assert_diag_contains(&td, "few.pb: error: int32_data has 1 values; 2 elements expected");
    int64_t huge[2] = {(int64_t)1 << 20, (int64_t)1 << 20};   /* 2 TB claimed, nothing present */
    tp.dims = huge;
    assert_false(tensor_read(&td.d, pb_file("huge.pb", &tp), &t, NULL));
    assert_diag_contains(&td, "huge.pb: error: int32_data has 1 values; 1099511627776 elements expected");
    tp.dims = dims;
    tp.n_int32_data = 0;
    tp.data_type = 8;
    assert_false(tensor_read(&td.d, pb_file("str.pb", &tp), &t, NULL));
    assert_diag_contains(&td, "str.pb: error: unsupported element type STRING");
    tp.data_type = 1;
    tp.has_raw_data = true;
    tp.raw_data.len = 4;
    tp.raw_data.data = (uint8_t *)halves;
    assert_false(tensor_read(&td.d, pb_file("raw.pb", &tp), &t, NULL));
    assert_diag_contains(&td, "raw.pb: error: raw_data has 4 bytes; 2 elements of f32 need 8");
    tp.has_data_location = true;
    tp.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    tp.raw_data.len = 8;
    assert_false(tensor_read(&td.d, pb_file("ext.pb", &tp), &t, NULL));
    assert_diag_contains(&td, "ext.pb: error: external data is not supported in tensor files");
    assert_false(tensor_read(&td.d, test_write_file("junk.pb", "\xff\xff\xff", 3), &t, NULL));
    assert_diag_contains(&td, "junk.pb: error: not an ONNX TensorProto");
    assert_false(tensor_read(&td.d, test_write_file("empty.pb", "", 0), &t, NULL));
    assert_diag_contains(&td, "empty.pb: error: file is empty");
    test_diag_free(&td);
}

#define ADD_SET "/usr/share/libonnx-testdata/data/node/test_add/test_data_set_0"

/* ONNX's own test data: test_add's output is the sum of its inputs. */
static void test_onnx_node_data(void **state)
{
    (void)state;
    TestDiag td;
    test_diag_init(&td);
    IrTensor t;
    char *name;
    assert_true(tensor_read(&td.d, ADD_SET "/input_0.pb", &t, &name));
    assert_string_equal(name, "x");
    assert_int_equal(t.dtype, DT_F32);
    assert_int_equal(t.rank, 3);
    assert_int_equal(t.dims[0], 3);
    assert_int_equal(t.dims[2], 5);
    free(name);
    ir_tensor_free(&t);

    IrTensor in[4], out[4];
    char *names[4];
    assert_int_equal(tensor_read_dir(&td.d, ADD_SET, "input", in, names, 4), 2);
    assert_string_equal(names[1], "y");
    assert_int_equal(tensor_read_dir(&td.d, ADD_SET, "output", out, NULL, 4), 1);
    const float *x = in[0].data, *y = in[1].data, *s = out[0].data;
    for (int i = 0; i < 60; i++) assert_float_equal(s[i], x[i] + y[i], 0);
    for (int i = 0; i < 2; i++) ir_tensor_free(&in[i]), free(names[i]);
    ir_tensor_free(&out[0]);
    assert_int_equal(tensor_read_dir(&td.d, ADD_SET, "nothing", in, NULL, 4), 0);
    assert_int_equal(td.d.nerrors, 0);
    assert_int_equal(tensor_read_dir(&td.d, ADD_SET, "input", in, names, 1), -1);
    assert_diag_contains(&td, "test_data_set_0: error: more than 1 input files");

    /* A broken file in a set fails the whole read. */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", test_tmpdir());
    float f[2] = {1, 2};
    ir_tensor_borrow(&t, DT_F32, 1, (int64_t[]){2}, f);
    char path[1100];
    snprintf(path, sizeof path, "%s/in_0.pb", dir);
    assert_true(tensor_write(&td.d, path, &t, "a"));
    test_write_file("in_1.pb", "\xff", 1);
    assert_int_equal(tensor_read_dir(&td.d, dir, "in", in, names, 4), -1);
    assert_diag_contains(&td, "in_1.pb: error: not an ONNX TensorProto");
    test_diag_free(&td);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_npy_header_like_numpy),
        cmocka_unit_test(test_npy_versions_and_errors),
        cmocka_unit_test(test_pb_typed_and_errors),
        cmocka_unit_test(test_onnx_node_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
