/* exec_common.c — what every exec file needs: element access by dtype rows, Cast's
 * conversions (with f16/bf16 rounding done exactly), and the broadcasting loop.
 *
 * Element access goes through one row per dtype. Values travel as x87 long double, whose
 * 64-bit significand holds every f64, i64 and u64 exactly, so a conversion rounds once, in
 * the destination type, whatever the pair. The hot paths (f32 arithmetic, matmul) never come
 * here; this is for Cast, small integer tensors and dtypes without a specialised kernel.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_int.h"

bool exec_error(IrExecCtx *x, const char *fmt, ...)
{
    char where[768];
    ir_where_node(x->g, x->node, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(x->g->model->diag, DIAG_ERROR, where, fmt, ap);
    va_end(ap);
    return false;
}

bool exec_unsupported(IrExecCtx *x, const char *what, IrDType t)
{
    return exec_error(x, "unsupported element type %s for %s", ir_dtype_name(t), what);
}

bool exec_alloc_like(IrExecCtx *x, IrTensor *t, IrDType dt, int rank, const int64_t *dims)
{
    if (ir_tensor_alloc(t, dt, rank, dims)) return true;
    return exec_error(x, "cannot allocate a %s tensor of rank %d (out of memory)", ir_dtype_name(dt), rank);
}

bool exec_axis(IrExecCtx *x, int64_t axis, int rank, int *out)
{
    if (axis < -rank || axis >= (rank ? rank : 1)) return exec_error(x, "axis %lld is out of range for rank %d", (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

void exec_strides(const IrTensor *t, int64_t *st)
{
    int64_t s = 1;
    for (int d = t->rank - 1; d >= 0; d--) {
        st[d] = s;
        s *= t->dims[d];
    }
}

/* ---- small floats: exact decoding, round-to-nearest-even encoding ---- */

/* v rounded to a binary format with `man` fraction bits and `ebits` exponent bits. */
static uint32_t encode_small_float(long double v, int man, int ebits)
{
    uint32_t sign = signbit(v) ? 1u << (man + ebits) : 0;
    uint32_t expmask = (1u << ebits) - 1, inf = sign | (expmask << man);
    int bias = (1 << (ebits - 1)) - 1;
    if (isnan(v)) return inf | (1u << (man - 1));
    v = fabsl(v);
    if (isinf(v)) return inf;
    if (v == 0) return sign;
    int e = ilogbl(v);
    if (e < 1 - bias) e = 1 - bias;                 /* subnormal: a fixed quantum */
    uint64_t m = (uint64_t)nearbyintl(ldexpl(v, man - e));
    if (m >> (man + 1)) {                           /* rounded up to the next binade */
        m >>= 1;
        e++;
    }
    if (e > bias) return inf;
    if (m < (1ull << man)) return sign | (uint32_t)m;
    return sign | ((uint32_t)(e + bias) << man) | (uint32_t)(m - (1ull << man));
}

float exec_f16_to_f32(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    float s = (h & 0x8000) ? -1.0f : 1.0f;
    if (e == 31) return m ? copysignf(NAN, s) : s * INFINITY;
    if (e == 0) return s * ldexpf((float)m, -24);
    return s * ldexpf((float)(m + 1024), e - 25);
}

uint16_t exec_f32_to_f16(float f) { return (uint16_t)encode_small_float(f, 10, 5); }

static float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- element rows ---- */

typedef struct ElemRow {
    long double (*get)(const void *p, int64_t i);
    void (*set)(void *p, int64_t i, long double v);
    int64_t (*geti)(const void *p, int64_t i);
    void (*seti)(void *p, int64_t i, int64_t v);     /* wraps (two's complement) */
} ElemRow;

static int64_t sat_i64(long double v)
{
    if (isnan(v)) return 0;
    if (v <= (long double)INT64_MIN) return INT64_MIN;
    if (v >= (long double)INT64_MAX) return INT64_MAX;
    return (int64_t)v;
}

#define INT_ROW(name, T, lo, hi)                                                                   \
    static long double get_##name(const void *p, int64_t i) { return ((const T *)p)[i]; }         \
    static void set_##name(void *p, int64_t i, long double v)                                     \
    {                                                                                              \
        ((T *)p)[i] = isnan(v) ? 0 : v <= (long double)(lo) ? (T)(lo) : v >= (long double)(hi) ? (T)(hi) : (T)v; \
    }                                                                                              \
    static int64_t geti_##name(const void *p, int64_t i) { return (int64_t)((const T *)p)[i]; }   \
    static void seti_##name(void *p, int64_t i, int64_t v) { ((T *)p)[i] = (T)(uint64_t)v; }
INT_ROW(u8, uint8_t, 0, UINT8_MAX)
INT_ROW(i8, int8_t, INT8_MIN, INT8_MAX)
INT_ROW(u16, uint16_t, 0, UINT16_MAX)
INT_ROW(i16, int16_t, INT16_MIN, INT16_MAX)
INT_ROW(u32, uint32_t, 0, UINT32_MAX)
INT_ROW(i32, int32_t, INT32_MIN, INT32_MAX)
INT_ROW(u64, uint64_t, 0, UINT64_MAX)
INT_ROW(i64, int64_t, INT64_MIN, INT64_MAX)

#define FLOAT_ROW(name, T, decode, encode)                                                          \
    static long double get_##name(const void *p, int64_t i) { return decode(((const T *)p)[i]); } \
    static void set_##name(void *p, int64_t i, long double v) { ((T *)p)[i] = encode(v); }        \
    static int64_t geti_##name(const void *p, int64_t i) { return sat_i64(get_##name(p, i)); }    \
    static void seti_##name(void *p, int64_t i, int64_t v) { set_##name(p, i, (long double)v); }
#define AS_IS(x) (x)
#define TO_F32(v) ((float)(v))
#define TO_F64(v) ((double)(v))
#define TO_F16(v) ((uint16_t)encode_small_float((v), 10, 5))
#define TO_BF16(v) ((uint16_t)encode_small_float((v), 7, 8))
FLOAT_ROW(f32, float, AS_IS, TO_F32)
FLOAT_ROW(f64, double, AS_IS, TO_F64)
FLOAT_ROW(f16, uint16_t, exec_f16_to_f32, TO_F16)
FLOAT_ROW(bf16, uint16_t, bf16_to_f32, TO_BF16)

static long double get_bool(const void *p, int64_t i) { return ((const uint8_t *)p)[i] != 0; }
static void set_bool(void *p, int64_t i, long double v) { ((uint8_t *)p)[i] = v != 0; }
static int64_t geti_bool(const void *p, int64_t i) { return ((const uint8_t *)p)[i] != 0; }
static void seti_bool(void *p, int64_t i, int64_t v) { ((uint8_t *)p)[i] = v != 0; }

#define ROW(name) {get_##name, set_##name, geti_##name, seti_##name}
static const ElemRow elem_rows[DT__COUNT] = {
    [DT_F32] = ROW(f32), [DT_F64] = ROW(f64), [DT_F16] = ROW(f16),   [DT_BF16] = ROW(bf16),
    [DT_U8] = ROW(u8),   [DT_I8] = ROW(i8),   [DT_U16] = ROW(u16),   [DT_I16] = ROW(i16),
    [DT_U32] = ROW(u32), [DT_I32] = ROW(i32), [DT_U64] = ROW(u64),   [DT_I64] = ROW(i64),
    [DT_BOOL] = ROW(bool),
};

static const ElemRow *row_of(IrDType t)
{
    if (t <= DT_UNDEF || t >= DT__COUNT || !elem_rows[t].get) unreachable("element access to an untyped tensor");
    return &elem_rows[t];
}

long double exec_get(const IrTensor *t, int64_t i) { return row_of(t->dtype)->get(t->data, i); }
void exec_set(IrTensor *t, int64_t i, long double v) { row_of(t->dtype)->set(t->data, i, v); }
int64_t exec_get_i64(const IrTensor *t, int64_t i) { return row_of(t->dtype)->geti(t->data, i); }
void exec_set_i64(IrTensor *t, int64_t i, int64_t v) { row_of(t->dtype)->seti(t->data, i, v); }

void exec_convert(const IrTensor *src, IrTensor *dst)
{
    int64_t n = ir_tensor_numel(src);
    if (src->dtype == dst->dtype) {
        if (src->nbytes) memcpy(dst->data, src->data, src->nbytes);
        return;
    }
    const ElemRow *s = row_of(src->dtype), *d = row_of(dst->dtype);
    if (src->dtype == DT_F32 && dst->dtype == DT_F64) {   /* the common widening, exactly */
        for (int64_t i = 0; i < n; i++) ((double *)dst->data)[i] = ((const float *)src->data)[i];
    } else if (!ir_dtype_is_float(src->dtype) && !ir_dtype_is_float(dst->dtype)) {
        for (int64_t i = 0; i < n; i++) d->seti(dst->data, i, s->geti(src->data, i));
    } else {
        for (int64_t i = 0; i < n; i++) d->set(dst->data, i, s->get(src->data, i));
    }
}

bool exec_convert_new(const IrTensor *src, IrDType dt, IrTensor *dst)
{
    if (!ir_tensor_alloc(dst, dt, src->rank, src->dims)) return false;
    exec_convert(src, dst);
    return true;
}

/* ---- broadcasting loop ---- */

void exec_loop_init(ExecLoop *l, const IrTensor *out, const IrTensor *const *in, int nin)
{
    assert(nin + 1 <= EXEC_MAX_OPS);
    int r = out->rank;
    int64_t st[EXEC_MAX_OPS][IR_MAX_RANK];
    memset(l, 0, sizeof *l);
    l->nops = nin + 1;
    for (int op = 0; op < l->nops; op++) {
        const IrTensor *t = op ? in[op - 1] : out;
        int off = r - t->rank;
        assert(off >= 0);
        int64_t s = 1;
        for (int d = r - 1; d >= 0; d--) {
            int td = d - off;
            assert(td < 0 || t->dims[td] == 1 || t->dims[td] == out->dims[d]);   /* inference checked */
            st[op][d] = td < 0 || (t->dims[td] == 1 && out->dims[d] != 1) ? 0 : s;
            if (td >= 0) s *= t->dims[td];
        }
    }
    /* From the innermost dim out: skip extent-1 dims, merge a dim into the group inside it
     * when every operand steps through both contiguously. Built reversed, then flipped. */
    int64_t dims[IR_MAX_RANK], gst[EXEC_MAX_OPS][IR_MAX_RANK];
    int n = 0;
    for (int d = r - 1; d >= 0; d--) {
        if (out->dims[d] == 1) continue;
        bool merge = n > 0;
        for (int op = 0; op < l->nops && merge; op++) merge = st[op][d] == gst[op][n - 1] * dims[n - 1];
        if (merge) {
            dims[n - 1] *= out->dims[d];
            continue;
        }
        dims[n] = out->dims[d];
        for (int op = 0; op < l->nops; op++) gst[op][n] = st[op][d];
        n++;
    }
    if (n == 0) {
        dims[0] = 1;
        for (int op = 0; op < l->nops; op++) gst[op][0] = 0;
        n = 1;
    }
    l->rank = n;
    l->rows = 1;
    for (int i = 0; i < n; i++) {
        l->dims[i] = dims[n - 1 - i];
        for (int op = 0; op < l->nops; op++) l->st[op][i] = gst[op][n - 1 - i];
        if (i < n - 1) l->rows *= l->dims[i];
    }
    if (l->dims[n - 1] == 0) l->rows = 0;
}

void exec_loop_row(const ExecLoop *l, int64_t r, int64_t *off)
{
    for (int op = 0; op < l->nops; op++) off[op] = 0;
    for (int d = l->rank - 2; d >= 0; d--) {
        int64_t i = r % l->dims[d];
        r /= l->dims[d];
        for (int op = 0; op < l->nops; op++) off[op] += i * l->st[op][d];
    }
}

#define COPY_FN(bits)                                                                        \
    static void copy_##bits(const void *src, int64_t ss, void *dst, int64_t n)             \
    {                                                                                        \
        const uint##bits##_t *a = src;                                                       \
        uint##bits##_t *o = dst;                                                             \
        if (ss == 0)                                                                         \
            for (int64_t i = 0; i < n; i++) o[i] = a[0];                                     \
        else                                                                                 \
            for (int64_t i = 0; i < n; i++) o[i] = a[i * ss];                                \
    }
COPY_FN(8)
COPY_FN(16)
COPY_FN(32)
COPY_FN(64)

void exec_copy_row(size_t es, const void *src, int64_t ss, void *dst, int64_t n)
{
    typedef void (*CopyFn)(const void *, int64_t, void *, int64_t);
    static const CopyFn rows[9] = {[1] = copy_8, [2] = copy_16, [4] = copy_32, [8] = copy_64};
    assert(es <= 8 && rows[es]);
    if (n <= 0) return;
    if (ss == 1) memcpy(dst, src, (size_t)n * es);
    else rows[es](src, ss, dst, n);
}

void exec_broadcast_copy(const IrTensor *in, IrTensor *out)
{
    size_t es = ir_dtype_size(out->dtype);
    assert(in->dtype == out->dtype);
    ExecLoop l;
    exec_loop_init(&l, out, &in, 1);
    int64_t inner = exec_loop_inner(&l), off[2];
    for (int64_t r = 0; r < l.rows; r++) {
        exec_loop_row(&l, r, off);
        exec_copy_row(es, (const char *)in->data + off[1] * es, l.st[1][l.rank - 1], (char *)out->data + off[0] * es,
                      inner);
    }
}
