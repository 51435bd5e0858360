/* ops.c — op helpers for generators that build machine code (bqcrt_ops.h): elementwise rows,
 * copies, casts, gather, slice bounds, cumsum, batched matmul, softmax.
 *
 * Each helper is the loop the C backend prints for the op, written once over a bq_nest, so
 * when the LLVM backend inlines it with constant extents and strides the result is the C
 * backend's specialised loop; the elementwise bodies are the rows of bqcrt_ew.h, like the
 * interpreter's and the C backend's, so all three compute the same bits (this file, like
 * generated C, must be compiled with -ffp-contract=off).
 */
#include <string.h>

#include "bqcrt_ops.h"

/* The integer rows are instantiated for unsigned types too, where `v < 0` is false by design. */
#pragma GCC diagnostic ignored "-Wtype-limits"

/* Runs BODY for every point of the nest; IX(k) is operand k's element index there. */
#define NEST_FOR(L, ...)                                                                           \
    for (int64_t i0 = 0; i0 < L->n[0]; i0++)                                                       \
        for (int64_t i1 = 0; i1 < L->n[1]; i1++)                                                   \
            for (int64_t i2 = 0; i2 < L->n[2]; i2++)                                               \
                for (int64_t i3 = 0; i3 < L->n[3]; i3++)                                           \
                    for (int64_t i4 = 0; i4 < L->n[4]; i4++)                                       \
                        for (int64_t i5 = 0; i5 < L->n[5]; i5++)                                   \
                            for (int64_t i6 = 0; i6 < L->n[6]; i6++)                               \
                                for (int64_t i7 = 0; i7 < L->n[7]; i7++) __VA_ARGS__
#define IX(k)                                                                                      \
    (L->off[k] + i0 * L->st[k][0] + i1 * L->st[k][1] + i2 * L->st[k][2] + i3 * L->st[k][3] +      \
     i4 * L->st[k][4] + i5 * L->st[k][5] + i6 * L->st[k][6] + i7 * L->st[k][7])

/* ---- elementwise rows ---- */

#define UF(op, e32, e64)                                                                           \
    void bq_ew_##op##_f32(const bq_nest *L, const bq_ew_attr *at, float *y_, const float *a_)      \
    {                                                                                              \
        (void)at;                                                                                  \
        NEST_FOR(L, { float v = a_[IX(1)]; y_[IX(0)] = (float)(e32); })                            \
    }                                                                                              \
    void bq_ew_##op##_f64(const bq_nest *L, const bq_ew_attr *at, double *y_, const double *a_)   \
    {                                                                                              \
        (void)at;                                                                                  \
        NEST_FOR(L, { double v = a_[IX(1)]; y_[IX(0)] = (double)(e64); })                          \
    }
BQ_EW_UNARY_FLOAT(UF)

#define UI_T(t, Ty, op, e)                                                                         \
    void bq_ew_##op##_##t(const bq_nest *L, const bq_ew_attr *at, Ty *y_, const Ty *a_)           \
    {                                                                                              \
        typedef Ty T;                                                                              \
        (void)at;                                                                                  \
        NEST_FOR(L, { T v = a_[IX(1)]; y_[IX(0)] = (T)(e); })                                      \
    }
#define UI(op, e) BQ_OPS_INT_TYPES(UI_T, op, e)
BQ_EW_UNARY_INT(UI)

#define BIN_T(t, Ty, op, e, To)                                                                    \
    void bq_ew_##op##_##t(const bq_nest *L, const bq_ew_attr *at, To *y_, const Ty *a_, const Ty *b_) \
    {                                                                                              \
        typedef Ty T;                                                                              \
        (void)at;                                                                                  \
        NEST_FOR(L, { T x = a_[IX(1)], y = b_[IX(2)]; y_[IX(0)] = (To)(e); })                      \
    }
#define BIN_T_SAME(t, Ty, op, e) BIN_T(t, Ty, op, e, Ty)
#define BIN_T_BOOLOUT(t, Ty, op, e) BIN_T(t, Ty, op, e, uint8_t)
#define BF(op, e) BQ_OPS_FLOAT_TYPES(BIN_T_SAME, op, e)
#define BI(op, e) BQ_OPS_INT_TYPES(BIN_T_SAME, op, e)
#define BC(op, e) BQ_OPS_FLOAT_TYPES(BIN_T_BOOLOUT, op, e) BQ_OPS_INT_TYPES(BIN_T_BOOLOUT, op, e)
#define BB(op, e) BIN_T(bool, uint8_t, op, e, uint8_t)
BQ_EW_BINARY_FLOAT(BF)
BQ_EW_BINARY_INT(BI)
BQ_EW_BINARY_CMP(BC)
BQ_EW_BINARY_BOOL(BB)

/* ---- copies, where, casts ---- */

#define COPY(b, T)                                                                                 \
    void bq_copy_##b(const bq_nest *L, T *y, const T *a) { NEST_FOR(L, { y[IX(0)] = a[IX(1)]; }) } \
    void bq_where_##b(const bq_nest *L, T *y, const uint8_t *c, const T *a, const T *b_)          \
    {                                                                                              \
        NEST_FOR(L, { y[IX(0)] = c[IX(1)] ? a[IX(2)] : b_[IX(3)]; })                               \
    }
COPY(1, uint8_t)
COPY(2, uint16_t)
COPY(4, uint32_t)
COPY(8, uint64_t)

#define CAST(f, F, t, T, expr)                                                                     \
    void bq_cast_##f##_##t(const bq_nest *L, T *y, const F *a) { NEST_FOR(L, { F v = a[IX(1)]; y[IX(0)] = (expr); }) }
#define CAST_INT_TO(t, T, f, F) CAST(f, F, t, T, (T)(uint64_t)v)
/* (BQ_OPS_INT_TYPES_ is a second list: a macro cannot expand inside its own expansion.) */
#define CAST_INT_FROM(f, F, _) BQ_OPS_INT_TYPES_(CAST_INT_TO, f, F) CAST(f, F, f32, float, (float)(double)v) \
    CAST(f, F, f64, double, (double)(double)v)
BQ_OPS_INT_TYPES(CAST_INT_FROM, _)
CAST_INT_FROM(bool, uint8_t, _)
#define CAST_TO_BOOL(f, F, _) CAST(f, F, bool, uint8_t, (uint8_t)(v != 0))
BQ_OPS_INT_TYPES(CAST_TO_BOOL, _)
BQ_OPS_FLOAT_TYPES(CAST_TO_BOOL, _)
CAST_TO_BOOL(bool, uint8_t, _)
CAST(f32, float, f64, double, (double)v)

/* ---- data movement ---- */

#define GATHER(i, I)                                                                               \
    bq_status bq_gather_##i(void *out, const void *data, const I *idx, int64_t outer, int64_t ni, int64_t len, \
                            int64_t inner_bytes)                                                   \
    {                                                                                              \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t j = 0; j < ni; j++) {                                                     \
                int64_t k = (int64_t)idx[j];                                                       \
                if (k < 0) k += len;                                                               \
                if (k < 0 || k >= len) return BQ_ERR_ARG;                                          \
                memcpy((unsigned char *)out + (o * ni + j) * inner_bytes,                          \
                       (const unsigned char *)data + (o * len + k) * inner_bytes, (size_t)inner_bytes); \
            }                                                                                      \
        return BQ_OK;                                                                              \
    }
GATHER(i64, int64_t)
GATHER(i32, int32_t)

bq_status bq_slice_bound(int64_t s, int64_t e, int64_t k, int64_t dim, int64_t expect, int64_t *start)
{
    if (k > 0) {
        if (s < 0) s += dim;
        s = s < 0 ? 0 : s > dim ? dim : s;
        if (e < 0) e += dim;
        e = e < 0 ? 0 : e > dim ? dim : e;
        if ((e > s ? (e - s + k - 1) / k : 0) != expect) return BQ_ERR_ARG;
    } else {
        if (s < 0) s += dim;
        s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
        if (e < 0) e += dim;
        e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
        if ((s > e ? (s - e + -k - 1) / -k : 0) != expect) return BQ_ERR_ARG;
    }
    *start = s;
    return BQ_OK;
}

#define CUMSUM(t, T, ADD)                                                                          \
    void bq_cumsum_##t(T *y, const T *x, int64_t outer, int64_t len, int64_t inner, int rev, int ex) \
    {                                                                                              \
        for (int64_t o = 0; o < outer; o++)                                                        \
            for (int64_t i = 0; i < inner; i++) {                                                  \
                T acc = 0;                                                                         \
                for (int64_t k = 0; k < len; k++) {                                                \
                    int64_t at = (o * len + (rev ? len - 1 - k : k)) * inner + i;                  \
                    T v = x[at];                                                                   \
                    if (ex) {                                                                      \
                        y[at] = acc;                                                               \
                        acc = ADD(T, acc, v);                                                      \
                    } else {                                                                       \
                        acc = ADD(T, acc, v);                                                      \
                        y[at] = acc;                                                               \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
    }
#define ADD_FLOAT(T, a, b) ((a) + (b))
#define ADD_INT(T, a, b) ((T)((uint64_t)(a) + (uint64_t)(b)))
#define CUMSUM_F(t, T, _) CUMSUM(t, T, ADD_FLOAT)
#define CUMSUM_I(t, T, _) CUMSUM(t, T, ADD_INT)
BQ_OPS_FLOAT_TYPES(CUMSUM_F, _)
BQ_OPS_INT_TYPES(CUMSUM_I, _)

/* ---- kernels around the runtime's ---- */

void bq_matmul_batched_f32(bq_isa isa, bq_pool *pool, const float *a, const float *b, float *c, int64_t batch,
                           int64_t mk, int64_t kn, int64_t mn, int64_t M, int64_t N, int64_t K)
{
    for (int64_t i = 0; i < batch; i++)
        bq_matmul_f32(isa, pool, a + i * mk, K, b + i * kn, N, 0, NULL, 0, c + i * mn, N, M, N, K);
}

void bq_softmax_copy_f32(float *y, const float *x, int64_t rows, int64_t n)
{
    if (y != x) memcpy(y, x, (size_t)(rows * n) * sizeof(float));
    bq_softmax_f32(y, rows, n);
}
