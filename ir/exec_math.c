/* exec_math.c — reductions, ArgMax, CumSum, MatMul and Gemm.
 *
 * Reductions sum sequentially in the element type, in row-major order of the reduced
 * positions, and ReduceMean divides the sum by the count in that type: exactly the sums the
 * runtime's LayerNorm contract prescribes, so a decomposed LayerNorm and the fused kernel agree
 * bit for bit. The reduced axes are first moved innermost (a strided copy when they are not
 * already), so every reduction is a loop over contiguous rows. f32 MatMul and Gemm call the
 * runtime's bq_matmul_f32 per batch matrix: the interpreter computes what generated code does.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_int.h"

typedef void (*ReduceFn)(const void *x, int64_t rows, int64_t n, void *y);

/*        op                   init          step: acc from acc and v          final   (floats) */
#define REDUCE_FLOAT(X)                                                                          \
    X(REDUCE_SUM,          0,            acc + v,                          acc)                  \
    X(REDUCE_MEAN,         0,            acc + v,                          acc / (T)n)           \
    X(REDUCE_MAX,          -INFINITY,    v > acc || isnan(v) ? v : acc,    acc)                  \
    X(REDUCE_MIN,          INFINITY,     v < acc || isnan(v) ? v : acc,    acc)                  \
    X(REDUCE_PROD,         1,            acc * v,                          acc)                  \
    X(REDUCE_SUM_SQUARE,   0,            acc + v * v,                      acc)
/*        op                   init          step (wrapping)                   final   (integers) */
#define REDUCE_INT(X)                                                                            \
    X(REDUCE_SUM,          0,            (T)((uint64_t)acc + (uint64_t)v), acc)                  \
    X(REDUCE_MEAN,         0,            (T)((uint64_t)acc + (uint64_t)v), n ? (T)(acc / (T)n) : 0) \
    X(REDUCE_MAX,          LO,           v > acc ? v : acc,                acc)                  \
    X(REDUCE_MIN,          HI,           v < acc ? v : acc,                acc)                  \
    X(REDUCE_PROD,         1,            (T)((uint64_t)acc * (uint64_t)v), acc)                  \
    X(REDUCE_SUM_SQUARE,   0,            (T)((uint64_t)acc + (uint64_t)v * (uint64_t)v), acc)

#define RED_FN(op, name, Tt, lo, hi, init, step, final)                                  \
    static void red_##op##_##name(const void *px, int64_t rows, int64_t n, void *py)    \
    {                                                                                    \
        typedef Tt T;                                                                    \
        const T LO = lo, HI = hi;                                                        \
        (void)LO, (void)HI;                                                              \
        const T *x = px;                                                                 \
        T *y = py;                                                                       \
        for (int64_t r = 0; r < rows; r++, x += n) {                                     \
            T acc = (T)(init);                                                           \
            for (int64_t i = 0; i < n; i++) {                                            \
                T v = x[i];                                                              \
                acc = (T)(step);                                                         \
            }                                                                            \
            y[r] = (T)(final);                                                           \
        }                                                                                \
    }
#define GEN_RED_FLOAT(op, init, step, final) \
    RED_FN(op, f32, float, -INFINITY, INFINITY, init, step, final) RED_FN(op, f64, double, -INFINITY, INFINITY, init, step, final)
#define GEN_RED_INT(op, init, step, final)                                     \
    RED_FN(op, i32, int32_t, INT32_MIN, INT32_MAX, init, step, final)           \
    RED_FN(op, i64, int64_t, INT64_MIN, INT64_MAX, init, step, final)           \
    RED_FN(op, u32, uint32_t, 0, UINT32_MAX, init, step, final)                 \
    RED_FN(op, u64, uint64_t, 0, UINT64_MAX, init, step, final)
REDUCE_FLOAT(GEN_RED_FLOAT)
REDUCE_INT(GEN_RED_INT)

#define ENT_RED_FLOAT(op, i, s, f) [OP_##op][DT_F32] = red_##op##_f32, [OP_##op][DT_F64] = red_##op##_f64,
#define ENT_RED_INT(op, i, s, f)                                                            \
    [OP_##op][DT_I32] = red_##op##_i32, [OP_##op][DT_I64] = red_##op##_i64,                 \
    [OP_##op][DT_U32] = red_##op##_u32, [OP_##op][DT_U64] = red_##op##_u64,
static const ReduceFn reduce_rows[OP__COUNT][DT__COUNT] = {
    REDUCE_FLOAT(ENT_RED_FLOAT)
    REDUCE_INT(ENT_RED_INT)
};

static int64_t span(const IrTensor *t, int from, int to)
{
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= t->dims[d];
    return p;
}

/* The reduced axes as a bit mask; ReduceSum takes them as an input, the others as an attribute. */
static bool reduce_axes(IrExecCtx *x, const IrNode *n, IrTensor *const *in, uint32_t *mask, bool *noop)
{
    int r = in[0]->rank;
    int64_t k = 0, ax[IR_MAX_RANK];
    if (n->op == OP_REDUCE_SUM) {
        const IrTensor *a = n->nin > 1 ? in[1] : NULL;
        k = a ? ir_tensor_numel(a) : 0;
        if (k > IR_MAX_RANK) return exec_error(x, "%lld axes for rank %d", (long long)k, r);
        for (int64_t i = 0; i < k; i++) ax[i] = exec_get_i64(a, i);
    } else {
        k = n->attr.reduce.axes.n;
        for (int64_t i = 0; i < k; i++) ax[i] = n->attr.reduce.axes.v[i];
    }
    *noop = k == 0 && n->attr.reduce.noop_with_empty_axes;
    *mask = k == 0 ? (uint32_t)((1ull << r) - 1) : 0;
    for (int64_t i = 0; i < k; i++) {
        int d;
        if (!exec_axis(x, ax[i], r, &d)) return false;
        *mask |= 1u << d;
    }
    return true;
}

bool exec_reduce(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    uint32_t mask = 0;
    bool noop = false;
    if (!reduce_axes(x, n, in, &mask, &noop)) return false;
    if (noop) return exec_identity(x, n, in, out);
    ReduceFn fn = reduce_rows[n->op][t->dtype];
    if (!fn) return exec_unsupported(x, ir_ops[n->op].name, t->dtype);
    int r = t->rank, perm[IR_MAX_RANK], np = 0;
    int64_t kept = 1, red = 1;
    for (int d = 0; d < r; d++)
        if (!(mask & (1u << d))) perm[np++] = d, kept *= t->dims[d];
    for (int d = 0; d < r; d++)
        if (mask & (1u << d)) perm[np++] = d, red *= t->dims[d];
    if (ir_tensor_numel(out) != kept) return exec_error(x, "shape inference gave %lld elements; the reduction has %lld",
                                                        (long long)ir_tensor_numel(out), (long long)kept);
    bool moved = false;
    for (int d = 0; d < r; d++) moved |= perm[d] != d && t->dims[perm[d]] != 1;
    IrTensor tmp = {0};
    const void *src = t->data;
    if (moved) {
        /* Transpose the reduced axes innermost, keeping their relative (row-major) order. */
        int64_t dims[IR_MAX_RANK];
        for (int d = 0; d < r; d++) dims[d] = t->dims[perm[d]];
        if (!exec_alloc_like(x, &tmp, t->dtype, r, dims)) return false;
        IrNode tn = {.op = OP_TRANSPOSE, .nin = 1, .nout = 1};
        tn.attr.transpose.perm.n = (uint8_t)r;
        for (int d = 0; d < r; d++) tn.attr.transpose.perm.v[d] = perm[d];
        IrTensor *tin[1] = {(IrTensor *)t};
        if (!exec_transpose(x, &tn, tin, &tmp)) return ir_tensor_free(&tmp), false;
        src = tmp.data;
    }
    fn(src, kept, red, out->data);
    ir_tensor_free(&tmp);
    return true;
}

bool exec_argmax(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    int axis;
    if (!exec_axis(x, n->attr.argmax.axis, t->rank, &axis)) return false;
    if (t->dtype == DT_BOOL) return exec_unsupported(x, "ArgMax", t->dtype);
    int64_t outer = span(t, 0, axis), A = t->dims[axis], inner = span(t, axis + 1, t->rank);
    if (out->dtype != DT_I64 || ir_tensor_numel(out) != outer * inner)
        return exec_error(x, "shape inference gave the wrong result size for ArgMax");
    if (A == 0) return exec_error(x, "ArgMax over an empty axis");
    bool last = n->attr.argmax.select_last_index != 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * A * inner + i, best = 0;
            long double bv = exec_get(t, base);
            for (int64_t a = 1; a < A && !isnan(bv); a++) {
                long double v = exec_get(t, base + a * inner);
                if (v > bv || isnan(v) || (last && v == bv)) best = a, bv = v;
            }
            ((int64_t *)out->data)[o * inner + i] = best;
        }
    return true;
}

#define CUMSUM_FN(name, T, add)                                                                        \
    static void cumsum_##name(const void *px, void *py, int64_t outer, int64_t A, int64_t inner,      \
                              bool excl, bool rev)                                                   \
    {                                                                                                  \
        const T *xs = px;                                                                              \
        T *ys = py;                                                                                    \
        for (int64_t o = 0; o < outer; o++)                                                            \
            for (int64_t i = 0; i < inner; i++) {                                                      \
                T acc = 0;                                                                             \
                for (int64_t s = 0; s < A; s++) {                                                      \
                    int64_t at = o * A * inner + (rev ? A - 1 - s : s) * inner + i;                    \
                    T v = xs[at];                                                                      \
                    if (excl) ys[at] = acc;                                                            \
                    acc = add(T, acc, v);                                                              \
                    if (!excl) ys[at] = acc;                                                           \
                }                                                                                      \
            }                                                                                          \
    }
#define FADD(T, a, b) ((a) + (b))
#define IADD(T, a, b) ((T)((uint64_t)(a) + (uint64_t)(b)))
CUMSUM_FN(f32, float, FADD)
CUMSUM_FN(f64, double, FADD)
CUMSUM_FN(i32, int32_t, IADD)
CUMSUM_FN(i64, int64_t, IADD)
CUMSUM_FN(u32, uint32_t, IADD)
CUMSUM_FN(u64, uint64_t, IADD)

bool exec_cumsum(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    typedef void (*CumFn)(const void *, void *, int64_t, int64_t, int64_t, bool, bool);
    static const CumFn rows[DT__COUNT] = {[DT_F32] = cumsum_f32, [DT_F64] = cumsum_f64, [DT_I32] = cumsum_i32,
                                          [DT_I64] = cumsum_i64, [DT_U32] = cumsum_u32, [DT_U64] = cumsum_u64};
    const IrTensor *t = in[0];
    if (!rows[t->dtype]) return exec_unsupported(x, "CumSum", t->dtype);
    if (ir_tensor_numel(in[1]) != 1) return exec_error(x, "the axis operand must have one element");
    int axis;
    if (!exec_axis(x, exec_get_i64(in[1], 0), t->rank, &axis)) return false;
    rows[t->dtype](t->data, out->data, span(t, 0, axis), t->rank ? t->dims[axis] : 1, span(t, axis + 1, t->rank),
                   n->attr.cumsum.exclusive != 0, n->attr.cumsum.reverse != 0);
    return true;
}

/* ---- MatMul, Gemm ---- */

/* C[M,N] = A[M,K]·B for the dtypes without a runtime kernel: plain loops in the type. */
static bool matmul_generic(IrExecCtx *x, IrDType dt, const void *A, int64_t lda, const void *B, int64_t ldb,
                           int trans_b, void *C, int64_t ldc, int64_t M, int64_t N, int64_t K)
{
    for (int64_t m = 0; m < M; m++)
        for (int64_t nn = 0; nn < N; nn++) {
            int64_t bi = trans_b ? nn * ldb : nn, bs = trans_b ? 1 : ldb;
            if (dt == DT_F64) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++) acc += ((const double *)A)[m * lda + k] * ((const double *)B)[bi + k * bs];
                ((double *)C)[m * ldc + nn] = acc;
            } else if (dt == DT_I64 || dt == DT_I32) {
                uint64_t acc = 0;
                for (int64_t k = 0; k < K; k++) {
                    int64_t a = dt == DT_I64 ? ((const int64_t *)A)[m * lda + k] : ((const int32_t *)A)[m * lda + k];
                    int64_t b = dt == DT_I64 ? ((const int64_t *)B)[bi + k * bs] : ((const int32_t *)B)[bi + k * bs];
                    acc += (uint64_t)a * (uint64_t)b;
                }
                if (dt == DT_I64) ((int64_t *)C)[m * ldc + nn] = (int64_t)acc;
                else ((int32_t *)C)[m * ldc + nn] = (int32_t)(uint32_t)acc;
            } else {
                return exec_unsupported(x, "MatMul", dt);
            }
        }
    return true;
}

static bool matmul_2d(IrExecCtx *x, IrDType dt, const void *A, int64_t lda, const void *B, int64_t ldb, int trans_b,
                      const float *bias, void *C, int64_t ldc, int64_t M, int64_t N, int64_t K)
{
    if (dt == DT_F32) {
        bq_matmul_f32(x->isa, NULL, A, lda, B, ldb, trans_b, bias, 0, C, ldc, M, N, K);
        return true;
    }
    return matmul_generic(x, dt, A, lda, B, ldb, trans_b, C, ldc, M, N, K);
}

/* numpy matmul: 1-D operands gain a unit dim; batch dims broadcast, one matrix at a time. */
bool exec_matmul(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *a = in[0], *b = in[1];
    if (a->dtype != b->dtype) return exec_error(x, "operands have different element types");
    if (a->rank < 1 || b->rank < 1) return exec_error(x, "MatMul operands must have rank >= 1");
    int64_t M = a->rank > 1 ? a->dims[a->rank - 2] : 1, K = a->dims[a->rank - 1];
    int64_t Kb = b->rank > 1 ? b->dims[b->rank - 2] : b->dims[0], N = b->rank > 1 ? b->dims[b->rank - 1] : 1;
    if (K != Kb) return exec_error(x, "inner dimensions differ (%lld vs %lld)", (long long)K, (long long)Kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0, rc = ra > rb ? ra : rb;
    int64_t bd[IR_MAX_RANK], sa[IR_MAX_RANK], sb[IR_MAX_RANK], batch = 1;
    for (int d = rc - 1, ia = ra - 1, ib = rb - 1; d >= 0; d--, ia--, ib--) {
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        bd[d] = da > db ? da : db;
        batch *= bd[d];
    }
    if (ir_tensor_numel(out) != batch * M * N) return exec_error(x, "shape inference gave the wrong result size");
    /* Matrix strides of each batch dim (0 where the operand broadcasts). */
    int64_t ma = 1, mb = 1;
    for (int d = rc - 1, ia = ra - 1, ib = rb - 1; d >= 0; d--, ia--, ib--) {
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        sa[d] = da == 1 ? 0 : ma;
        sb[d] = db == 1 ? 0 : mb;
        ma *= da, mb *= db;
    }
    size_t es = ir_dtype_size(a->dtype);
    int64_t bsize = span(b, 0, rb);
    if (bsize == 1 && span(a, 0, ra) == batch) {   /* shared B: all of A's rows in one call */
        M *= batch;
        batch = 1;
    }
    for (int64_t i = 0; i < batch; i++) {
        int64_t oa = 0, ob = 0, q = i;
        for (int d = rc - 1; d >= 0; d--) {
            oa += (q % bd[d]) * sa[d];
            ob += (q % bd[d]) * sb[d];
            q /= bd[d];
        }
        if (!matmul_2d(x, a->dtype, (const char *)a->data + oa * M * K * (int64_t)es, K,
                       (const char *)b->data + ob * K * N * (int64_t)es, N, 0, NULL,
                       (char *)out->data + i * M * N * (int64_t)es, N, M, N, K))
            return false;
    }
    return true;
}

/* Y = alpha·A'·B' + beta·C: the product through the matmul kernel, then the scalings (skipped
 * at 1, which is exact), so alpha = beta = 1 with a bias row gives the Linear contract. */
bool exec_gemm(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *a = in[0], *b = in[1], *c = n->nin > 2 ? in[2] : NULL;
    IrDType dt = a->dtype;
    if (dt != DT_F32 && dt != DT_F64) return exec_unsupported(x, "Gemm", dt);
    if (a->rank != 2 || b->rank != 2 || b->dtype != dt || (c && c->dtype != dt))
        return exec_error(x, "Gemm needs 2-D operands of one element type");
    bool ta = n->attr.gemm.trans_a, tb = n->attr.gemm.trans_b;
    int64_t M = a->dims[ta ? 1 : 0], K = a->dims[ta ? 0 : 1], N = b->dims[tb ? 0 : 1];
    if (b->dims[tb ? 1 : 0] != K) return exec_error(x, "inner dimensions differ (%lld vs %lld)", (long long)K,
                                                    (long long)b->dims[tb ? 1 : 0]);
    if (out->rank != 2 || out->dims[0] != M || out->dims[1] != N)
        return exec_error(x, "shape inference gave the wrong result shape");
    IrTensor at = {0};
    const void *A = a->data;
    if (ta) {
        int64_t dims[2] = {M, K};
        if (!exec_alloc_like(x, &at, dt, 2, dims)) return false;
        IrNode tn = {.op = OP_TRANSPOSE, .nin = 1, .nout = 1};
        IrTensor *tin[1] = {(IrTensor *)a};
        if (!exec_transpose(x, &tn, tin, &at)) return ir_tensor_free(&at), false;
        A = at.data;
    }
    float alpha = n->attr.gemm.alpha, beta = n->attr.gemm.beta;
    bool row_bias = dt == DT_F32 && c && alpha == 1.0f && beta == 1.0f && ir_tensor_numel(c) == N &&
                    (c->rank == 1 || (c->rank == 2 && c->dims[0] == 1));
    bool ok = matmul_2d(x, dt, A, K, b->data, tb ? K : N, tb, row_bias ? c->data : NULL, out->data, N, M, N, K);
    ir_tensor_free(&at);
    if (!ok) return false;
    int64_t cnt = M * N;
    for (int64_t i = 0; i < cnt && alpha != 1.0f; i++) {
        if (dt == DT_F32) ((float *)out->data)[i] *= alpha;
        else ((double *)out->data)[i] *= (double)alpha;
    }
    if (!c || row_bias) return true;
    /* + beta·C with C broadcast to [M, N] */
    const IrTensor *ops[1] = {c};
    ExecLoop l;
    exec_loop_init(&l, out, ops, 1);
    int64_t inner = exec_loop_inner(&l), off[2];
    for (int64_t r = 0; r < l.rows; r++) {
        exec_loop_row(&l, r, off);
        for (int64_t i = 0; i < inner; i++) {
            int64_t o = off[0] + i, ci = off[1] + i * l.st[1][l.rank - 1];
            if (dt == DT_F32) {
                float cv = ((const float *)c->data)[ci];
                ((float *)out->data)[o] += beta == 1.0f ? cv : beta * cv;
            } else {
                ((double *)out->data)[o] += (double)beta * ((const double *)c->data)[ci];
            }
        }
    }
    return true;
}
