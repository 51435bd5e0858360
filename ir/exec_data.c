/* exec_data.c — data movement and shape ops: Identity and the reshaping family, Cast,
 * Dropout, Shape, Size, Transpose, Concat, Split, Gather, Slice, Expand, Tile,
 * ConstantOfShape, Range, Trilu.
 *
 * These move bytes, so they work on every dtype by element size. Output shapes arrive from
 * inference; an op recomputes only what it needs to address elements (Slice's starts, Gather's
 * indices) and checks that it agrees with the allocated result rather than trusting either
 * silently. Reshape-like ops copy: later passes may alias, the interpreter stays simple.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_int.h"

/* The allocated result disagrees with what the op computes: a bug in one of the two. */
static bool mismatch(IrExecCtx *x, const IrTensor *out, const char *what)
{
    char buf[256];
    ir_tensor_format_type(out, buf, sizeof buf);
    return exec_error(x, "shape inference gave %s, which does not match %s", buf, what);
}

/* dst (contiguous, shape dims) <- src elements at base + sum_d idx_d * st[d]. */
static void gather_strided(void *dst, const void *src, int64_t base, const int64_t *st, const int64_t *dims,
                           int rank, size_t es)
{
    if (rank == 0) {
        memcpy(dst, (const char *)src + base * (int64_t)es, es);
        return;
    }
    int64_t inner = dims[rank - 1], rows = 1;
    for (int d = 0; d < rank - 1; d++) rows *= dims[d];
    if (inner == 0) return;
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = base, q = r;
        for (int d = rank - 2; d >= 0; d--) {
            off += (q % dims[d]) * st[d];
            q /= dims[d];
        }
        exec_copy_row(es, (const char *)src + off * (int64_t)es, st[rank - 1], (char *)dst + r * inner * (int64_t)es,
                      inner);
    }
}

/* prod(dims[from:to]) */
static int64_t span(const IrTensor *t, int from, int to)
{
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= t->dims[d];
    return p;
}

bool exec_identity(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    if (in[0]->nbytes != out->nbytes || in[0]->dtype != out->dtype) {
        char buf[256];
        ir_tensor_format_type(in[0], buf, sizeof buf);
        return mismatch(x, out, buf);
    }
    if (out->nbytes) memcpy(out->data, in[0]->data, out->nbytes);
    return true;
}

bool exec_cast(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    if (ir_tensor_numel(in[0]) != ir_tensor_numel(out)) return mismatch(x, out, "the input's element count");
    exec_convert(in[0], out);
    return true;
}

/* Inference only: the output is the input, the mask all true. Training with a non-zero ratio
 * draws random masks, which a reference interpreter cannot reproduce. */
bool exec_dropout(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    for (uint32_t k = 1; k < n->nin; k++)
        if (in[k] && ir_tensor_numel(in[k]) != 1) return exec_error(x, "ratio and training_mode must be scalars");
    bool training = n->nin > 2 && in[2] && exec_get_i64(in[2], 0) != 0;
    double ratio = n->nin > 1 && in[1] ? (double)exec_get(in[1], 0) : 0.5;
    if (training && ratio != 0)
        return exec_error(x, "unsupported Dropout in training mode (ratio %g draws random masks)", ratio);
    if (!exec_identity(x, n, in, out)) return false;
    if (n->nout > 1 && out[1].data) memset(out[1].data, 1, out[1].nbytes);
    return true;
}

bool exec_shape(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    int64_t r = in[0]->rank, s = n->attr.shape.start, e = n->attr.shape.end;
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    int64_t cnt = e > s ? e - s : 0;
    if (out->dtype != DT_I64 || ir_tensor_numel(out) != cnt) return mismatch(x, out, "the requested dimensions");
    for (int64_t i = 0; i < cnt; i++) ((int64_t *)out->data)[i] = in[0]->dims[s + i];
    return true;
}

bool exec_size(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    if (out->dtype != DT_I64 || ir_tensor_numel(out) != 1) return mismatch(x, out, "a scalar i64");
    ((int64_t *)out->data)[0] = ir_tensor_numel(in[0]);
    return true;
}

bool exec_transpose(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    int r = t->rank, perm[IR_MAX_RANK];
    const IrInts *p = &n->attr.transpose.perm;
    if (p->n != 0 && p->n != r) return exec_error(x, "perm has %d entries for rank %d", p->n, r);
    int64_t st[IR_MAX_RANK], ost[IR_MAX_RANK], dims[IR_MAX_RANK];
    exec_strides(t, st);
    for (int d = 0; d < r; d++) {
        perm[d] = p->n ? (int)p->v[d] : r - 1 - d;
        if (perm[d] < 0 || perm[d] >= r) return exec_error(x, "perm entry %d is out of range", perm[d]);
        dims[d] = t->dims[perm[d]];
        ost[d] = st[perm[d]];
        if (out->rank != r || out->dims[d] != dims[d]) return mismatch(x, out, "the permuted input");
    }
    gather_strided(out->data, t->data, 0, ost, dims, r, ir_dtype_size(t->dtype));
    return true;
}

bool exec_concat(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    int axis;
    if (!exec_axis(x, n->attr.axis.axis, out->rank, &axis)) return false;
    size_t es = ir_dtype_size(out->dtype);
    int64_t outer = span(out, 0, axis), orow = span(out, axis, out->rank) * (int64_t)es, at = 0;
    for (uint32_t k = 0; k < n->nin; k++) {
        const IrTensor *t = in[k];
        if (t->rank != out->rank || t->dtype != out->dtype || span(t, 0, axis) != outer)
            return mismatch(x, out, "the operands");
        at += span(t, axis, t->rank) * (int64_t)es;
    }
    if (at != orow) return mismatch(x, out, "the concatenated operands");
    at = 0;
    for (uint32_t k = 0; k < n->nin; k++) {
        const IrTensor *t = in[k];
        int64_t row = span(t, axis, t->rank) * (int64_t)es;
        for (int64_t o = 0; o < outer && row; o++)
            memcpy((char *)out->data + o * orow + at, (const char *)t->data + o * row, (size_t)row);
        at += row;
    }
    return true;
}

bool exec_split(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    int axis;
    if (!exec_axis(x, n->attr.axis.axis, t->rank, &axis)) return false;
    size_t es = ir_dtype_size(t->dtype);
    int64_t outer = span(t, 0, axis), irow = span(t, axis, t->rank) * (int64_t)es, at = 0;
    for (uint32_t k = 0; k < n->nout; k++) {
        if (!out[k].data) return exec_error(x, "result %u is omitted; Split needs every result", k);
        if (out[k].rank != t->rank || span(&out[k], 0, axis) != outer) return mismatch(x, &out[k], "the split input");
        at += span(&out[k], axis, out[k].rank) * (int64_t)es;
    }
    if (at != irow) return mismatch(x, &out[0], "the split input");
    at = 0;
    for (uint32_t k = 0; k < n->nout; k++) {
        int64_t row = span(&out[k], axis, out[k].rank) * (int64_t)es;
        for (int64_t o = 0; o < outer && row; o++)
            memcpy((char *)out[k].data + o * row, (const char *)t->data + o * irow + at, (size_t)row);
        at += row;
    }
    return true;
}

bool exec_gather(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0], *idx = in[1];
    int axis;
    if (!exec_axis(x, n->attr.axis.axis, t->rank, &axis)) return false;
    if (idx->dtype != DT_I64 && idx->dtype != DT_I32) return exec_unsupported(x, "Gather indices", idx->dtype);
    size_t es = ir_dtype_size(t->dtype);
    int64_t outer = span(t, 0, axis), extent = t->dims[axis], inner = span(t, axis + 1, t->rank) * (int64_t)es;
    int64_t ni = ir_tensor_numel(idx);
    if (ir_tensor_numel(out) != outer * ni * span(t, axis + 1, t->rank)) return mismatch(x, out, "the gathered rows");
    for (int64_t j = 0; j < ni; j++) {
        int64_t i = exec_get_i64(idx, j);
        if (i < -extent || i >= extent)
            return exec_error(x, "index %lld is out of range for axis %d of extent %lld", (long long)i, axis,
                              (long long)extent);
        if (i < 0) i += extent;
        for (int64_t o = 0; o < outer && inner; o++)
            memcpy((char *)out->data + (o * ni + j) * inner, (const char *)t->data + (o * extent + i) * inner,
                   (size_t)inner);
    }
    return true;
}

/* ONNX Slice: per axis a start and a (possibly negative) step, clamped as the spec says. */
bool exec_slice(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0], *starts = in[1], *ends = in[2];
    const IrTensor *axes = n->nin > 3 ? in[3] : NULL, *steps = n->nin > 4 ? in[4] : NULL;
    int r = t->rank;
    int64_t st[IR_MAX_RANK], start[IR_MAX_RANK], step[IR_MAX_RANK], cnt[IR_MAX_RANK];
    exec_strides(t, st);
    for (int d = 0; d < r; d++) start[d] = 0, step[d] = 1, cnt[d] = t->dims[d];
    int64_t k = ir_tensor_numel(starts);
    if (ir_tensor_numel(ends) != k || (axes && ir_tensor_numel(axes) != k) || (steps && ir_tensor_numel(steps) != k))
        return exec_error(x, "starts, ends, axes and steps have different lengths");
    uint32_t seen = 0;
    for (int64_t i = 0; i < k; i++) {
        int d;
        if (!exec_axis(x, axes ? exec_get_i64(axes, i) : i, r, &d)) return false;
        if (seen & (1u << d)) return exec_error(x, "axis %d is sliced twice", d);
        seen |= 1u << d;
        int64_t dim = t->dims[d], s = exec_get_i64(starts, i), e = exec_get_i64(ends, i);
        int64_t p = steps ? exec_get_i64(steps, i) : 1;
        if (p == 0) return exec_error(x, "a step of 0 on axis %d", d);
        if (s < 0) s = s < -dim ? -1 : s + dim;   /* -1: below everything, clamped next */
        if (e < 0) e = e < -dim ? -1 : e + dim;
        if (p > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            cnt[d] = e > s ? (int64_t)((uint64_t)(e - s - 1) / (uint64_t)p) + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            cnt[d] = s > e ? (int64_t)((uint64_t)(s - e - 1) / (0 - (uint64_t)p)) + 1 : 0;
        }
        start[d] = s;
        step[d] = cnt[d] > 1 ? p : 1;   /* a huge step taken once never forms an address */
    }
    int64_t base = 0, sst[IR_MAX_RANK];
    for (int d = 0; d < r; d++) {
        if (out->rank != r || out->dims[d] != cnt[d]) return mismatch(x, out, "the slice bounds");
        if (cnt[d] == 0) return true;
        base += start[d] * st[d];
        sst[d] = st[d] * step[d];
    }
    gather_strided(out->data, t->data, base, sst, cnt, r, ir_dtype_size(t->dtype));
    return true;
}

bool exec_expand(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    if (in[0]->dtype != out->dtype || in[0]->rank > out->rank) return mismatch(x, out, "the expanded input");
    exec_broadcast_copy(in[0], out);
    return true;
}

bool exec_tile(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    int r = t->rank;
    if (out->rank != r || ir_tensor_numel(in[1]) != r) return mismatch(x, out, "the tiled input");
    for (int d = 0; d < r; d++) {
        int64_t want;
        if (__builtin_mul_overflow(t->dims[d], exec_get_i64(in[1], d), &want) || out->dims[d] != want)
            return mismatch(x, out, "the tiled input");
    }
    if (ir_tensor_numel(out) == 0) return true;
    if (r == 0) return exec_identity(x, n, in, out);
    size_t es = ir_dtype_size(t->dtype);
    int64_t st[IR_MAX_RANK], inner = out->dims[r - 1], rows = span(out, 0, r - 1);
    exec_strides(t, st);
    for (int64_t row = 0; row < rows; row++) {
        int64_t off = 0, q = row;
        for (int d = r - 2; d >= 0; d--) {
            off += (q % out->dims[d]) % t->dims[d] * st[d];
            q /= out->dims[d];
        }
        char *dst = (char *)out->data + row * inner * (int64_t)es;
        for (int64_t j = 0; j < inner; j += t->dims[r - 1])
            memcpy(dst + j * (int64_t)es, (const char *)t->data + off * (int64_t)es, (size_t)t->dims[r - 1] * es);
    }
    return true;
}

bool exec_cos(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrScalar *v = &n->attr.cos.value;
    int64_t cnt = ir_tensor_numel(out);
    if (cnt == 0) return true;
    if (v->dtype == DT_UNDEF || ir_dtype_is_float(v->dtype)) exec_set(out, 0, v->f);   /* saturates into ints */
    else exec_set_i64(out, 0, v->i);
    exec_copy_row(ir_dtype_size(out->dtype), out->data, 0, out->data, cnt);
    return true;
}

/* Range's length depends on the operands' values, which inference knows only for constant
 * float bounds, so exec allocates (exec_allocates in interp.c). Counted as ONNX Runtime and
 * infer_range do: max(ceil((limit - start) / delta), 0), the difference in the element type
 * and the division in double. */
bool exec_range(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    IrDType dt = in[0]->dtype;
    if (!ir_dtype_is_float(dt) && !ir_dtype_is_int(dt)) return exec_unsupported(x, "Range", dt);
    for (int k = 0; k < 3; k++)
        if (in[k]->dtype != dt || ir_tensor_numel(in[k]) != 1)
            return exec_error(x, "start, limit and delta must be scalars of one element type");
    long double s = exec_get(in[0], 0), l = exec_get(in[1], 0), d = exec_get(in[2], 0), span = l - s;
    if (d == 0) return exec_error(x, "delta is 0");
    if (dt == DT_F32) span = (float)exec_get(in[1], 0) - (float)exec_get(in[0], 0);
    else if (dt == DT_F64) span = (double)l - (double)s;
    long double c = ir_dtype_is_float(dt) ? ceil((double)span / (double)d) : ceill(span / d);
    if (isnan(c) || c > 1e12) return exec_error(x, "cannot make a range of %Lg elements", c);
    int64_t cnt = c > 0 ? (int64_t)c : 0;
    if (!exec_alloc_like(x, out, dt, 1, &cnt)) return false;
    for (int64_t i = 0; i < cnt; i++) {
        if (dt == DT_F32) ((float *)out->data)[i] = (float)s + (float)i * (float)d;
        else exec_set(out, i, s + (long double)i * d);
    }
    return true;
}

bool exec_trilu(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    if (t->rank < 2) return exec_error(x, "Trilu needs rank >= 2, got %d", t->rank);
    if (n->nin > 1 && in[1] && ir_tensor_numel(in[1]) != 1) return exec_error(x, "k must be a scalar");
    if (out->nbytes != t->nbytes) return mismatch(x, out, "the input");
    int64_t k = n->nin > 1 && in[1] ? exec_get_i64(in[1], 0) : 0;
    int64_t R = t->dims[t->rank - 2], C = t->dims[t->rank - 1], mats = span(t, 0, t->rank - 2);
    size_t es = ir_dtype_size(t->dtype);
    memset(out->data, 0, out->nbytes);
    for (int64_t m = 0; m < mats; m++)
        for (int64_t i = 0; i < R; i++) {
            /* keep j - i >= k (upper) or j - i <= k (lower), as a column range [lo, hi) */
            int64_t lo = n->attr.trilu.upper ? i + k : 0, hi = n->attr.trilu.upper ? C : i + k + 1;
            lo = lo < 0 ? 0 : lo > C ? C : lo;
            hi = hi < 0 ? 0 : hi > C ? C : hi;
            if (hi <= lo) continue;
            int64_t off = ((m * R + i) * C + lo) * (int64_t)es;
            memcpy((char *)out->data + off, (const char *)t->data + off, (size_t)(hi - lo) * es);
        }
    return true;
}
