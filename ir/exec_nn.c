/* exec_nn.c — Softmax, LogSoftmax, LayerNormalization, bqc.Linear and bqc.Attention.
 *
 * The f32 paths call the runtime kernels (bq_softmax_f32, bq_layernorm_f32, bq_matmul_f32,
 * bq_attention_f32) so a model interpreted here and the same model compiled give the same
 * bits; the fusion passes rely on that to replace a subgraph without changing results. What
 * the kernels do not cover (an axis that is not innermost, LogSoftmax, LayerNorm's optional
 * statistics, f64) is written here with the same operation order.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp_int.h"

static int64_t span(const IrTensor *t, int from, int to)
{
    int64_t p = 1;
    for (int d = from; d < to; d++) p *= t->dims[d];
    return p;
}

/* ---- Softmax, LogSoftmax ---- */

/* One row in place, in the contract's order; log: y = (x - m) - log(s). */
static void softmax_f64(double *x, int64_t n, bool log_)
{
    double m = x[0], s = 0;
    for (int64_t j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
    for (int64_t j = 0; j < n; j++) s += exp(x[j] - m);
    for (int64_t j = 0; j < n; j++) x[j] = log_ ? (x[j] - m) - log(s) : exp(x[j] - m) / s;
}

static void log_softmax_f32(float *x, int64_t n)
{
    float m = x[0], s = 0.0f;
    for (int64_t j = 1; j < n; j++) m = x[j] > m ? x[j] : m;
    for (int64_t j = 0; j < n; j++) s += expf(x[j] - m);
    float ls = logf(s);
    for (int64_t j = 0; j < n; j++) x[j] = (x[j] - m) - ls;
}

static void softmax_rows(IrDType dt, void *rows, int64_t nrows, int64_t n, bool log_)
{
    for (int64_t r = 0; r < nrows && n > 0; r++) {
        if (dt == DT_F64) softmax_f64((double *)rows + r * n, n, log_);
        else if (log_) log_softmax_f32((float *)rows + r * n, n);
        else bq_softmax_f32((float *)rows + r * n, 1, n);
    }
}

/* Along any axis (opset 13): rows that are not contiguous are gathered into a buffer. */
bool exec_softmax(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    if (t->dtype != DT_F32 && t->dtype != DT_F64) return exec_unsupported(x, ir_ops[n->op].name, t->dtype);
    int axis;
    if (!exec_axis(x, n->attr.axis.axis, t->rank, &axis)) return false;
    bool log_ = n->op == OP_LOG_SOFTMAX;
    int64_t outer = span(t, 0, axis), A = t->rank ? t->dims[axis] : 1, inner = span(t, axis + 1, t->rank);
    size_t es = ir_dtype_size(t->dtype);
    if (out->nbytes != t->nbytes) return exec_error(x, "shape inference gave the wrong result size");
    if (out->nbytes) memcpy(out->data, t->data, out->nbytes);
    if (inner == 1) {
        softmax_rows(t->dtype, out->data, outer, A, log_);
        return true;
    }
    void *row = malloc((size_t)(A ? A : 1) * es);
    if (!row) return exec_error(x, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            char *base = (char *)out->data + (o * A * inner + i) * (int64_t)es;
            exec_copy_row(es, base, inner, row, A);
            softmax_rows(t->dtype, row, 1, A, log_);
            for (int64_t a = 0; a < A; a++) memcpy(base + a * inner * (int64_t)es, (char *)row + a * (int64_t)es, es);
        }
    free(row);
    return true;
}

/* ---- LayerNormalization ---- */

/* gamma/beta as n contiguous floats: borrowed when they already are, else broadcast into tmp. */
static bool affine_row(IrExecCtx *x, const IrTensor *p, int64_t n, IrTensor *tmp, const float **out)
{
    *out = NULL;
    if (!p) return true;
    if (p->dtype != DT_F32) return exec_unsupported(x, "LayerNormalization's scale and bias", p->dtype);
    if (ir_tensor_numel(p) == n) {
        *out = p->data;
        return true;
    }
    int64_t dims[1] = {n};
    if (!exec_alloc_like(x, tmp, DT_F32, 1, dims)) return false;
    if (p->rank > 1 || (p->rank == 1 && p->dims[0] != 1))
        return exec_error(x, "scale/bias of %lld elements do not broadcast to %lld", (long long)ir_tensor_numel(p),
                          (long long)n);
    exec_broadcast_copy(p, tmp);
    *out = tmp->data;
    return true;
}

/* The optional Mean and InvStdDev results, with the kernel's sums (bqcrt.h contract). */
static void layernorm_stats(const float *xs, int64_t rows, int64_t n, float eps, float *mean, float *inv)
{
    for (int64_t r = 0; r < rows; r++, xs += n) {
        float s = 0.0f, v = 0.0f;
        for (int64_t i = 0; i < n; i++) s += xs[i];
        float m = s / (float)n;
        for (int64_t i = 0; i < n; i++) {
            float d = xs[i] - m;
            float dd = d * d;
            v += dd;
        }
        if (mean) mean[r] = m;
        if (inv) inv[r] = 1.0f / sqrtf(v / (float)n + eps);
    }
}

bool exec_layernorm(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *t = in[0];
    if (t->dtype != DT_F32) return exec_unsupported(x, "LayerNormalization", t->dtype);
    int axis;
    if (!exec_axis(x, n->attr.layernorm.axis, t->rank, &axis)) return false;
    int64_t rows = span(t, 0, axis), cols = span(t, axis, t->rank);
    if (out[0].nbytes != t->nbytes || (n->nout > 1 && out[1].data && ir_tensor_numel(&out[1]) != rows) ||
        (n->nout > 2 && out[2].data && ir_tensor_numel(&out[2]) != rows))
        return exec_error(x, "shape inference gave the wrong result sizes");
    IrTensor tg = {0}, tb = {0};
    const float *gamma, *beta;
    bool ok = affine_row(x, in[1], cols, &tg, &gamma) && affine_row(x, n->nin > 2 ? in[2] : NULL, cols, &tb, &beta);
    if (ok) {
        float eps = n->attr.layernorm.epsilon;
        bq_layernorm_f32(t->data, gamma, beta, eps, out[0].data, rows, cols);
        float *mean = n->nout > 1 ? out[1].data : NULL, *inv = n->nout > 2 ? out[2].data : NULL;
        if (mean || inv) layernorm_stats(t->data, rows, cols, eps, mean, inv);
    }
    ir_tensor_free(&tg);
    ir_tensor_free(&tb);
    return ok;
}

/* ---- bqc.Linear, bqc.Attention ---- */

bool exec_linear(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *X = in[0], *W = in[1], *bias = n->nin > 2 ? in[2] : NULL;
    if (X->dtype != DT_F32 || W->dtype != DT_F32 || (bias && bias->dtype != DT_F32))
        return exec_unsupported(x, "bqc.Linear", X->dtype != DT_F32 ? X->dtype : W->dtype);
    bool tb = n->attr.linear.trans_b != 0;
    if (W->rank != 2 || X->rank < 1) return exec_error(x, "bqc.Linear needs X[..., K] and a 2-D weight");
    int64_t K = X->dims[X->rank - 1], N = W->dims[tb ? 0 : 1];
    if (W->dims[tb ? 1 : 0] != K)
        return exec_error(x, "inner dimensions differ (%lld vs %lld)", (long long)K, (long long)W->dims[tb ? 1 : 0]);
    if (bias && ir_tensor_numel(bias) != N) return exec_error(x, "bias has %lld elements; expected %lld",
                                                              (long long)ir_tensor_numel(bias), (long long)N);
    int64_t M = span(X, 0, X->rank - 1);
    if (ir_tensor_numel(out) != M * N) return exec_error(x, "shape inference gave the wrong result size");
    bq_matmul_f32(x->isa, NULL, X->data, K, W->data, tb ? K : N, tb, bias ? bias->data : NULL,
                  n->attr.linear.relu != 0, out->data, N, M, N, K);
    return true;
}

bool exec_attention(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *q = in[0], *k = in[1], *v = in[2], *mask = in[3];
    const IrTensor *pk = n->nin > 4 ? in[4] : NULL, *pv = n->nin > 5 ? in[5] : NULL;
    if (q->dtype != DT_F32 || k->dtype != DT_F32 || v->dtype != DT_F32)
        return exec_unsupported(x, "bqc.Attention", q->dtype != DT_F32 ? q->dtype : k->dtype);
    if (q->rank != 3 || memcmp(q->dims, k->dims, 3 * sizeof(int64_t)) || memcmp(q->dims, v->dims, 3 * sizeof(int64_t)))
        return exec_error(x, "q, k and v must all be [B, S, H*D]");
    int64_t B = q->dims[0], S = q->dims[1], HD = q->dims[2], H = n->attr.attention.num_heads;
    if (H <= 0 || HD % H) return exec_error(x, "%lld features do not split into %lld heads", (long long)HD, (long long)H);
    int64_t D = HD / H, P = pk ? pk->dims[2] : 0, T = P + S;
    if (!!pk != !!pv) return exec_error(x, "past_k and past_v must be given together");
    if (pk && (pk->rank != 4 || pk->dims[0] != B || pk->dims[1] != H || pk->dims[3] != D ||
               pv->rank != 4 || pv->dims[2] != P || pk->dtype != DT_F32 || pv->dtype != DT_F32))
        return exec_error(x, "past_k/past_v must be f32[%lld, %lld, P, %lld]", (long long)B, (long long)H, (long long)D);
    if (mask->rank != 2 || mask->dims[0] != B || mask->dims[1] != T)
        return exec_error(x, "the mask must be [%lld, %lld]", (long long)B, (long long)T);
    int64_t pdims[4] = {B, H, T, D};
    IrTensor m64 = {0}, tk = {0}, tv = {0};
    bool ok = mask->dtype == DT_I64 || exec_convert_new(mask, DT_I64, &m64) || exec_error(x, "out of memory");
    IrTensor *prk = n->nout > 1 && out[1].data ? &out[1] : &tk, *prv = n->nout > 2 && out[2].data ? &out[2] : &tv;
    ok = ok && (prk != &tk || exec_alloc_like(x, &tk, DT_F32, 4, pdims));
    ok = ok && (prv != &tv || exec_alloc_like(x, &tv, DT_F32, 4, pdims));
    float *scratch = ok ? malloc((size_t)bq_attention_scratch(S, P, D) * sizeof(float) + 64) : NULL;
    if (ok && scratch) {
        bq_attention_f32(x->isa, NULL, q->data, k->data, v->data, HD, pk ? pk->data : NULL, pv ? pv->data : NULL,
                         m64.data ? m64.data : mask->data, n->attr.attention.causal != 0, n->attr.attention.scale,
                         prk->data, prv->data, out[0].data, B, S, P, H, D, scratch);
    } else if (ok) {
        ok = exec_error(x, "out of memory");
    }
    free(scratch);
    ir_tensor_free(&m64);
    ir_tensor_free(&tk);
    ir_tensor_free(&tv);
    return ok;
}
