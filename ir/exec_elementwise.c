/* exec_elementwise.c — unary and broadcasting binary ops, Where, Pow, as rows of kernels.
 *
 * Each op is one row per dtype family: an expression over x (and y) that a macro turns into a
 * loop per C type, and a table [op][dtype] of the resulting kernels. Adding an op or a dtype
 * is a row, not a new switch. f16/bf16 have no rows of their own: they are widened to f32,
 * computed and rounded back once, which for + - * / sqrt gives the correctly rounded f16
 * result (f32 carries more than twice f16's precision). f32 expressions use the float libm
 * functions so the interpreter computes what generated C code computes. Integer arithmetic
 * wraps (computed in uint64_t) and integer division by zero yields 0: ONNX leaves both
 * undefined, and C's versions would be undefined behaviour.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt_ew.h"
#include "interp_int.h"

typedef void (*UnaryFn)(const void *x, void *y, int64_t n, const IrAttr *at);
typedef void (*BinaryFn)(const void *a, int64_t sa, const void *b, int64_t sb, void *o, int64_t n,
                         const IrAttr *at);

#define UN_FN(op, name, Tin, Tout, expr)                                                       \
    static void un_##op##_##name(const void *px, void *py, int64_t n, const IrAttr *at)      \
    {                                                                                          \
        typedef Tin T;                                                                         \
        const T *x = px;                                                                       \
        Tout *y = py;                                                                          \
        (void)at;                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                      \
            T v = x[i];                                                                        \
            y[i] = (Tout)(expr);                                                               \
        }                                                                                      \
    }
#define GEN_UN_FLOAT(op, e32, e64) UN_FN(op, f32, float, float, e32) UN_FN(op, f64, double, double, e64)
#define GEN_UN_INT(op, e)                                                                            \
    UN_FN(op, u8, uint8_t, uint8_t, e) UN_FN(op, i8, int8_t, int8_t, e)                              \
    UN_FN(op, u16, uint16_t, uint16_t, e) UN_FN(op, i16, int16_t, int16_t, e)                        \
    UN_FN(op, u32, uint32_t, uint32_t, e) UN_FN(op, i32, int32_t, int32_t, e)                        \
    UN_FN(op, u64, uint64_t, uint64_t, e) UN_FN(op, i64, int64_t, int64_t, e)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"   /* v < 0 on unsigned rows */
BQ_EW_UNARY_FLOAT(GEN_UN_FLOAT)
BQ_EW_UNARY_INT(GEN_UN_INT)
#pragma GCC diagnostic pop
UN_FN(NOT, bool, uint8_t, uint8_t, !v)
UN_FN(ISNAN, f32, float, uint8_t, isnan(v))
UN_FN(ISNAN, f64, double, uint8_t, isnan(v))

#define ENT_UN_FLOAT(op, e32, e64) [OP_##op][DT_F32] = un_##op##_f32, [OP_##op][DT_F64] = un_##op##_f64,
#define ENT_UN_INT(op, e)                                                                         \
    [OP_##op][DT_U8] = un_##op##_u8, [OP_##op][DT_I8] = un_##op##_i8,                             \
    [OP_##op][DT_U16] = un_##op##_u16, [OP_##op][DT_I16] = un_##op##_i16,                         \
    [OP_##op][DT_U32] = un_##op##_u32, [OP_##op][DT_I32] = un_##op##_i32,                         \
    [OP_##op][DT_U64] = un_##op##_u64, [OP_##op][DT_I64] = un_##op##_i64,
static const UnaryFn unary_rows[OP__COUNT][DT__COUNT] = {
    BQ_EW_UNARY_FLOAT(ENT_UN_FLOAT)
    BQ_EW_UNARY_INT(ENT_UN_INT)
    [OP_NOT][DT_BOOL] = un_NOT_bool,
    [OP_ISNAN][DT_F32] = un_ISNAN_f32,
    [OP_ISNAN][DT_F64] = un_ISNAN_f64,
};

/* Rows are contiguous or broadcast (stride 0); the common pairs get loops GCC vectorises. */
#define BIN_FN(op, name, Tin, Tout, expr)                                                         \
    static void bin_##op##_##name(const void *pa, int64_t sa, const void *pb, int64_t sb,       \
                                  void *po, int64_t n, const IrAttr *at)                         \
    {                                                                                             \
        typedef Tin T;                                                                            \
        const T *a = pa, *b = pb;                                                                 \
        Tout *o = po;                                                                             \
        (void)at;                                                                                 \
        if (sa == 1 && sb == 1) {                                                                 \
            for (int64_t i = 0; i < n; i++) { T x = a[i], y = b[i]; o[i] = (Tout)(expr); }       \
        } else if (sa == 1 && sb == 0) {                                                          \
            T y = b[0];                                                                           \
            for (int64_t i = 0; i < n; i++) { T x = a[i]; o[i] = (Tout)(expr); }                 \
        } else {                                                                                  \
            for (int64_t i = 0; i < n; i++) { T x = a[i * sa], y = b[i * sb]; o[i] = (Tout)(expr); } \
        }                                                                                         \
    }
#define EACH_INT(M, op, e, Tout_same)                                                                  \
    M(op, u8, uint8_t, Tout_same(uint8_t), e) M(op, i8, int8_t, Tout_same(int8_t), e)                  \
    M(op, u16, uint16_t, Tout_same(uint16_t), e) M(op, i16, int16_t, Tout_same(int16_t), e)            \
    M(op, u32, uint32_t, Tout_same(uint32_t), e) M(op, i32, int32_t, Tout_same(int32_t), e)            \
    M(op, u64, uint64_t, Tout_same(uint64_t), e) M(op, i64, int64_t, Tout_same(int64_t), e)
#define SAME(T) T
#define BOOLOUT(T) uint8_t
#define GEN_BIN_FLOAT(op, e) BIN_FN(op, f32, float, float, e) BIN_FN(op, f64, double, double, e)
#define GEN_BIN_INT(op, e) EACH_INT(BIN_FN, op, e, SAME)
#define GEN_BIN_CMP(op, e) \
    BIN_FN(op, f32, float, uint8_t, e) BIN_FN(op, f64, double, uint8_t, e) EACH_INT(BIN_FN, op, e, BOOLOUT)
#define GEN_BIN_BOOL(op, e) BIN_FN(op, bool, uint8_t, uint8_t, e)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtype-limits"   /* sign tests on unsigned rows */
#pragma GCC diagnostic ignored "-Wsign-compare"
BQ_EW_BINARY_FLOAT(GEN_BIN_FLOAT)
BQ_EW_BINARY_INT(GEN_BIN_INT)
BQ_EW_BINARY_CMP(GEN_BIN_CMP)
BQ_EW_BINARY_BOOL(GEN_BIN_BOOL)
#pragma GCC diagnostic pop

#define ENT_BIN_FLOAT(op, e) [OP_##op][DT_F32] = bin_##op##_f32, [OP_##op][DT_F64] = bin_##op##_f64,
#define ENT_BIN_INT(op, e)                                                                            \
    [OP_##op][DT_U8] = bin_##op##_u8, [OP_##op][DT_I8] = bin_##op##_i8,                               \
    [OP_##op][DT_U16] = bin_##op##_u16, [OP_##op][DT_I16] = bin_##op##_i16,                           \
    [OP_##op][DT_U32] = bin_##op##_u32, [OP_##op][DT_I32] = bin_##op##_i32,                           \
    [OP_##op][DT_U64] = bin_##op##_u64, [OP_##op][DT_I64] = bin_##op##_i64,
#define ENT_BIN_CMP(op, e) ENT_BIN_FLOAT(op, e) ENT_BIN_INT(op, e)
#define ENT_BIN_BOOL(op, e) [OP_##op][DT_BOOL] = bin_##op##_bool,
static const BinaryFn binary_rows[OP__COUNT][DT__COUNT] = {
    BQ_EW_BINARY_FLOAT(ENT_BIN_FLOAT)
    BQ_EW_BINARY_INT(ENT_BIN_INT)
    BQ_EW_BINARY_CMP(ENT_BIN_CMP)
    BQ_EW_BINARY_BOOL(ENT_BIN_BOOL)
};

/* ---- drivers ---- */

static bool is_small_float(IrDType t) { return t == DT_F16 || t == DT_BF16; }

/* f16/bf16 operands with an f32 row: widened copies in tmp[] (freed by the caller). */
static bool widen(IrExecCtx *x, IrTensor *const *in, uint32_t nin, IrTensor *tmp, IrTensor **use)
{
    for (uint32_t k = 0; k < nin; k++) {
        use[k] = in[k];
        if (!in[k] || !is_small_float(in[k]->dtype)) continue;
        if (!exec_convert_new(in[k], DT_F32, &tmp[k])) return exec_error(x, "out of memory");
        use[k] = &tmp[k];
    }
    return true;
}

static void free_all(IrTensor *t, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) ir_tensor_free(&t[k]);
}

static bool unary_run(IrExecCtx *x, const IrNode *n, const IrTensor *in, IrTensor *out)
{
    UnaryFn fn = unary_rows[n->op][in->dtype];
    if (!fn) return exec_unsupported(x, ir_ops[n->op].name, in->dtype);
    if (ir_tensor_numel(in) != ir_tensor_numel(out)) return exec_error(x, "shape inference gave the wrong result size");
    fn(in->data, out->data, ir_tensor_numel(out), &n->attr);
    return true;
}

/* Runs `body` on f32 stand-ins when the output is f16/bf16, then rounds into the output. */
static bool via_f32_out(IrExecCtx *x, const IrNode *n, IrTensor *const *in, uint32_t nin, IrTensor *out,
                        bool (*body)(IrExecCtx *, const IrNode *, IrTensor *const *, uint32_t, IrTensor *))
{
    IrTensor tmp[16] = {{0}}, *use[16], wide = {0};
    if (nin > 16) return exec_error(x, "unsupported: more than 16 f16 operands");
    bool ok = widen(x, in, nin, tmp, use);
    IrTensor *dst = out;
    if (ok && is_small_float(out->dtype)) {
        ok = exec_alloc_like(x, &wide, DT_F32, out->rank, out->dims);
        dst = &wide;
    }
    ok = ok && body(x, n, use, nin, dst);
    if (ok && dst == &wide) exec_convert(&wide, out);
    ir_tensor_free(&wide);
    free_all(tmp, nin);
    return ok;
}

static bool unary_body(IrExecCtx *x, const IrNode *n, IrTensor *const *in, uint32_t nin, IrTensor *out)
{
    return unary_run(x, n, in[0], out);
}

bool exec_unary(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    if (is_small_float(in[0]->dtype) && unary_rows[n->op][DT_F32]) return via_f32_out(x, n, in, 1, out, unary_body);
    return unary_run(x, n, in[0], &out[0]);
}

/* out = a op b with broadcasting (a may be out itself: a running fold). */
static void binary_into(const IrNode *n, BinaryFn fn, const IrTensor *a, const IrTensor *b, IrTensor *out)
{
    const IrTensor *ops[2] = {a, b};
    ExecLoop l;
    exec_loop_init(&l, out, ops, 2);
    size_t ea = ir_dtype_size(a->dtype), eb = ir_dtype_size(b->dtype), eo = ir_dtype_size(out->dtype);
    int64_t inner = exec_loop_inner(&l), off[3];
    for (int64_t r = 0; r < l.rows; r++) {
        exec_loop_row(&l, r, off);
        fn((const char *)a->data + off[1] * ea, l.st[1][l.rank - 1], (const char *)b->data + off[2] * eb,
           l.st[2][l.rank - 1], (char *)out->data + off[0] * eo, inner, &n->attr);
    }
}

static bool binary_body(IrExecCtx *x, const IrNode *n, IrTensor *const *in, uint32_t nin, IrTensor *out)
{
    IrDType dt = in[0]->dtype;
    for (uint32_t k = 1; k < nin; k++)
        if (in[k]->dtype != dt)
            return exec_error(x, "operands have different element types (%s and %s)", ir_dtype_name(dt),
                              ir_dtype_name(in[k]->dtype));
    BinaryFn fn = binary_rows[n->op][dt];
    if (!fn) return exec_unsupported(x, ir_ops[n->op].name, dt);
    if (nin == 2) {
        binary_into(n, fn, in[0], in[1], out);
    } else {   /* variadic Max/Min/Sum/Mean: broadcast the first operand, fold the others in */
        exec_broadcast_copy(in[0], out);
        for (uint32_t k = 1; k < nin; k++) binary_into(n, fn, out, in[k], out);
    }
    if (n->op == OP_MEAN) {
        int64_t cnt = ir_tensor_numel(out);
        for (int64_t i = 0; i < cnt; i++) {
            if (dt == DT_F32) ((float *)out->data)[i] /= (float)nin;
            else exec_set(out, i, exec_get(out, i) / nin);
        }
    }
    return true;
}

/* Pow: the exponent may have another type than the base; the result has the base's type.
 * f32^f32 is the hot case (with x^2 = x*x exactly, so a decomposed LayerNorm's Pow(d, 2)
 * matches the LayerNorm kernel); other pairs go through long double, and integer powers of
 * integers multiply exactly (wrapping). */
static int64_t ipow(int64_t b, int64_t e)
{
    if (e < 0) return b == 1 ? 1 : b == -1 ? ((e & 1) ? -1 : 1) : 0;   /* truncated 1/b^|e| */
    uint64_t r = 1, base = (uint64_t)b;
    for (uint64_t k = (uint64_t)e; k; k >>= 1, base *= base)
        if (k & 1) r *= base;
    return (int64_t)r;
}

static bool pow_run(IrExecCtx *x, const IrTensor *a, const IrTensor *b, IrTensor *out)
{
    const IrTensor *ops[2] = {a, b};
    ExecLoop l;
    exec_loop_init(&l, out, ops, 2);
    bool ints = !ir_dtype_is_float(a->dtype) && !ir_dtype_is_float(b->dtype);
    if (a->dtype == DT_BOOL || b->dtype == DT_BOOL) return exec_unsupported(x, "Pow", DT_BOOL);
    int64_t inner = exec_loop_inner(&l), off[3];
    for (int64_t r = 0; r < l.rows; r++) {
        exec_loop_row(&l, r, off);
        int64_t sa = l.st[1][l.rank - 1], sb = l.st[2][l.rank - 1];
        if (a->dtype == DT_F32 && b->dtype == DT_F32) {
            const float *pa = (const float *)a->data + off[1], *pb = (const float *)b->data + off[2];
            float *po = (float *)out->data + off[0];
            for (int64_t i = 0; i < inner; i++) {
                float u = pa[i * sa], v = pb[i * sb];
                po[i] = v == 2.0f ? u * u : powf(u, v);
            }
            continue;
        }
        for (int64_t i = 0; i < inner; i++) {
            if (ints)
                exec_set_i64(out, off[0] + i, ipow(exec_get_i64(a, off[1] + i * sa), exec_get_i64(b, off[2] + i * sb)));
            else
                exec_set(out, off[0] + i, powl(exec_get(a, off[1] + i * sa), exec_get(b, off[2] + i * sb)));
        }
    }
    return true;
}

/* Where: selects bytes, so one row per element size serves every dtype. */
#define WHERE_FN(bits)                                                                                       \
    static void where_##bits(const uint8_t *c, int64_t sc, const void *px, int64_t sx, const void *py,       \
                             int64_t sy, void *po, int64_t n)                                               \
    {                                                                                                        \
        const uint##bits##_t *a = px, *b = py;                                                               \
        uint##bits##_t *o = po;                                                                              \
        for (int64_t i = 0; i < n; i++) o[i] = c[i * sc] ? a[i * sx] : b[i * sy];                           \
    }
WHERE_FN(8)
WHERE_FN(16)
WHERE_FN(32)
WHERE_FN(64)

bool exec_where(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    typedef void (*WhereFn)(const uint8_t *, int64_t, const void *, int64_t, const void *, int64_t, void *, int64_t);
    static const WhereFn rows[9] = {[1] = where_8, [2] = where_16, [4] = where_32, [8] = where_64};
    if (in[0]->dtype != DT_BOOL) return exec_unsupported(x, "Where's condition", in[0]->dtype);
    if (in[1]->dtype != in[2]->dtype)
        return exec_error(x, "operands have different element types (%s and %s)", ir_dtype_name(in[1]->dtype),
                          ir_dtype_name(in[2]->dtype));
    size_t es = ir_dtype_size(out->dtype);
    const IrTensor *ops[3] = {in[0], in[1], in[2]};
    ExecLoop l;
    exec_loop_init(&l, out, ops, 3);
    int64_t inner = exec_loop_inner(&l), off[4], k = l.rank - 1;
    for (int64_t r = 0; r < l.rows; r++) {
        exec_loop_row(&l, r, off);
        rows[es]((const uint8_t *)in[0]->data + off[1], l.st[1][k], (const char *)in[1]->data + off[2] * es,
                 l.st[2][k], (const char *)in[2]->data + off[3] * es, l.st[3][k], (char *)out->data + off[0] * es,
                 inner);
    }
    return true;
}

bool exec_binary(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    if (n->op == OP_POW) return pow_run(x, in[0], in[1], out);
    IrDType dt = in[0]->dtype;
    if (is_small_float(dt) && binary_rows[n->op][DT_F32]) return via_f32_out(x, n, in, n->nin, out, binary_body);
    return binary_body(x, n, in, n->nin, out);
}
