/* exec_nn.c — Softmax, LogSoftmax, LayerNormalization, bqc.Linear and bqc.Attention.
 *
 * The f32 paths call the runtime kernels (bq_softmax_f32, bq_layernorm_f32, bq_matmul_f32,
 * bq_attention_f32) so a model interpreted here and the same model compiled give the same
 * bits; the fusion passes rely on that to replace a subgraph without changing results.
 * Number formats (docs/ir.md) go through the quantised kernels the same way: for a Linear
 * whose input or weight format is not fp32 (a packed u8 weight read as is, an f32 one
 * quantised here), the fast kernel of the pair (bq_qk_matmul) or bq_qmatmul, bq_attention_q_f32 for an attention with formats; a non-fp32 bias_format
 * rounds the bias through its format. What
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

/* A format the executors can run: valid and with a concrete block (not a plan's "auto"). */
static bool format_ok(IrExecCtx *x, const bq_format *f, const char *role)
{
    if (bq_format_bytes(f, 1) != 0) return true;
    char name[64];
    bq_format_name(f, name, sizeof name);
    return exec_error(x, "the %s %s cannot run%s", role, name[0] ? name : "format",
                      f->block == 0 ? ": its block is 'auto' (the block-size pass chooses it)" : "");
}

/* The two formats of one product must share a block, or one of them must be plain. */
static bool blocks_match(IrExecCtx *x, const bq_format *a, const bq_format *w, const char *an, const char *wn)
{
    if (a->block == 1 || w->block == 1 || a->block == w->block) return true;
    char fa[64], fw[64];
    bq_format_name(a, fa, sizeof fa);
    bq_format_name(w, fw, sizeof fw);
    return exec_error(x, "%s %s and %s %s have different blocks: the blocks of a product must match", an, fa, wn, fw);
}

/* Non-finite values of an f32 operand that is quantised at compile time are an error naming
 * the tensor and the element (formats.md §0). */
static bool all_finite(IrExecCtx *x, const IrNode *n, uint32_t k, const IrTensor *t, const char *what)
{
    const float *v = t->data;
    for (int64_t i = 0, ne = ir_tensor_numel(t); i < ne; i++)
        if (!isfinite(v[i])) {
            int64_t cols = t->rank == 2 ? t->dims[1] : ne;
            return exec_error(x, "%s '%s' has a non-finite value at element %lld (row %lld, column %lld)", what,
                              x->g->vals[n->in[k]].name, (long long)i, (long long)(i / cols), (long long)(i % cols));
        }
    return true;
}

/* The bias the product adds: as given, or with a non-fp32 bias_format its values rounded
 * through the format (bq_quantize then bq_dequantize over N, blocks along N) into tmp. */
static bool linear_bias(IrExecCtx *x, const IrNode *n, const IrTensor *bias, int64_t N, IrTensor *tmp,
                        const float **out)
{
    const bq_format *f = &n->attr.linear.bias_format;
    *out = bias ? bias->data : NULL;
    if (!bias || ir_format_is_fp32(f)) return true;
    if (!format_ok(x, f, "bias_format") || !all_finite(x, n, 2, bias, "the bias")) return false;
    int64_t dims[1] = {N};
    void *q = malloc(bq_format_bytes(f, N) + 1);
    if (!q) return exec_error(x, "out of memory");
    bool ok = exec_alloc_like(x, tmp, DT_F32, 1, dims);
    if (ok) {
        bq_quantize(f, bias->data, N, q);
        bq_dequantize(f, q, N, tmp->data);
        *out = tmp->data;
    }
    free(q);
    return ok;
}

/* The N weight rows bq_qmatmul reads: a packed u8 weight [N, bytes(K)] as it is; an f32
 * weight quantised here, row n = output n's K weights (fp32 weight_format: [N, K] floats). */
static bool linear_qweight(IrExecCtx *x, const IrNode *n, const IrTensor *W, int64_t K, int64_t N, IrTensor *tmp,
                           const void **out)
{
    const bq_format *f = &n->attr.linear.weight_format;
    bool tb = n->attr.linear.trans_b != 0;
    *out = W->data;
    if (W->dtype == DT_U8) return true;
    if (ir_format_is_fp32(f) && tb) return true;
    if (!ir_format_is_fp32(f) && !all_finite(x, n, 1, W, "the weight")) return false;
    int64_t dims[1] = {(int64_t)(bq_format_bytes(f, K) * (size_t)N)};
    if (!exec_alloc_like(x, tmp, DT_U8, 1, dims)) return false;
    if (bq_qpack_weights(f, W->data, tb ? K : N, tb, N, K, tmp->data) != BQ_OK) return exec_error(x, "out of memory");
    *out = tmp->data;
    return true;
}

/* Weights packed for the fast kernels, kept on the model (IrModel.exec_cache) so that repeated
 * runs (bqc eval's windows, bqc run) pack each constant weight once: packing costs ~4-7 ns a
 * weight, more than a whole decode-step GEMV. Keyed by the constant's payload and how it is
 * read; only graph constants are cached (their payloads do not change while the model lives). */
typedef struct QkEntry {
    const void *src;           /* the constant's payload */
    bq_format fw;
    int64_t N, K;
    int trans_b;
    void *packed;              /* NULL: bq_qk_pack refused the weight (bq_qmatmul serves it) */
} QkEntry;
typedef struct QkCache {
    QkEntry *e;
    uint32_t n, cap;
} QkCache;

static void qk_cache_free(void *p)
{
    QkCache *c = p;
    for (uint32_t i = 0; c && i < c->n; i++) free(c->e[i].packed);
    if (c) free(c->e);
    free(c);
}

/* The packed form of weight rows `wrows` (NULL if the pair has no kernel or the weight does
 * not pack). *owned: the caller frees it (not cached). */
static void *qk_packed(IrExecCtx *x, const IrNode *n, const void *wrows, int64_t N, int64_t K, bool *owned)
{
    const bq_format *fa = &n->attr.linear.input_format, *fw = &n->attr.linear.weight_format;
    IrModel *m = x->g->model;
    const IrValue *wv = ir_val(x->g, n->in[1]);
    int tb = n->attr.linear.trans_b != 0;
    *owned = false;
    if (!bq_qk_spec_of(fa, fw).kind) return NULL;
    bool cacheable = wv->kind == IR_VAL_CONST && wv->data && (!m->exec_cache || m->exec_cache_free == qk_cache_free);
    QkCache *c = cacheable ? m->exec_cache : NULL;
    for (uint32_t i = 0; c && i < c->n; i++)
        if (c->e[i].src == wv->data && ir_format_eq(&c->e[i].fw, fw) && c->e[i].N == N && c->e[i].K == K &&
            c->e[i].trans_b == tb)
            return c->e[i].packed;
    size_t pbytes = bq_qk_packed_bytes(fw, N, K);
    void *pw = pbytes ? aligned_alloc(64, (pbytes + 63) & ~(size_t)63) : NULL;
    if (pw && bq_qk_pack(fw, wrows, N, K, pw) != BQ_OK) {
        free(pw);
        pw = NULL;
    }
    if (!cacheable) {
        *owned = pw != NULL;
        return pw;
    }
    if (!c) {
        if (!(c = calloc(1, sizeof *c))) unreachable("out of memory");
        m->exec_cache = c;
        m->exec_cache_free = qk_cache_free;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        if (!(c->e = realloc(c->e, c->cap * sizeof *c->e))) unreachable("out of memory");
    }
    c->e[c->n++] = (QkEntry){wv->data, *fw, N, K, tb, pw};
    return pw;
}

/* The quantised product on weight rows: the fast kernel for the pair (bq_qk_matmul, on the
 * weight packed for it) when there is one and the weight packs, else bq_qmatmul. Both give
 * bq_dot_ref's bits; generated code makes the same choice at compile time (cg_plan.c). */
static bq_status linear_qmatmul(IrExecCtx *x, const IrNode *n, const float *X, const void *wrows, const float *b,
                                float *Y, int64_t M, int64_t N, int64_t K)
{
    const bq_format *fa = &n->attr.linear.input_format, *fw = &n->attr.linear.weight_format;
    int relu = n->attr.linear.relu != 0;
    bool owned;
    void *pw = qk_packed(x, n, wrows, N, K, &owned);
    bq_status st = pw ? bq_qk_matmul(x->isa, NULL, fa, X, K, fw, pw, b, relu, Y, N, M, N, K)
                      : bq_qmatmul(x->isa, NULL, fa, X, K, fw, wrows, b, relu, Y, N, M, N, K);
    if (owned) free(pw);
    return st;
}

bool exec_linear(IrExecCtx *x, const IrNode *n, IrTensor *const *in, IrTensor *out)
{
    const IrTensor *X = in[0], *W = in[1], *bias = n->nin > 2 ? in[2] : NULL;
    const bq_format *fa = &n->attr.linear.input_format, *fw = &n->attr.linear.weight_format;
    bool quant = !ir_format_is_fp32(fa) || !ir_format_is_fp32(fw);
    bool packed = W->dtype == DT_U8 && !ir_format_is_fp32(fw);
    if (X->dtype != DT_F32 || (W->dtype != DT_F32 && !packed) || (bias && bias->dtype != DT_F32))
        return exec_unsupported(x, "bqc.Linear", X->dtype != DT_F32 ? X->dtype : bias && bias->dtype != DT_F32 ? bias->dtype : W->dtype);
    bool tb = n->attr.linear.trans_b != 0;
    if (W->rank != 2 || X->rank < 1) return exec_error(x, "bqc.Linear needs X[..., K] and a 2-D weight");
    int64_t K = X->dims[X->rank - 1], N = packed ? W->dims[0] : W->dims[tb ? 0 : 1];
    if (packed && (uint64_t)W->dims[1] != bq_format_bytes(fw, K))
        return exec_error(x, "the quantised weight has %lld bytes per row; %lld inputs need %zu", (long long)W->dims[1],
                          (long long)K, bq_format_bytes(fw, K));
    if (!packed && W->dims[tb ? 1 : 0] != K)
        return exec_error(x, "inner dimensions differ (%lld vs %lld)", (long long)K, (long long)W->dims[tb ? 1 : 0]);
    if (bias && ir_tensor_numel(bias) != N) return exec_error(x, "bias has %lld elements; expected %lld",
                                                              (long long)ir_tensor_numel(bias), (long long)N);
    int64_t M = span(X, 0, X->rank - 1);
    if (ir_tensor_numel(out) != M * N) return exec_error(x, "shape inference gave the wrong result size");
    IrTensor tbias = {0}, tw = {0};
    const float *b;
    const void *wrows;
    bool ok = linear_bias(x, n, bias, N, &tbias, &b);
    if (ok && !quant) {
        bq_matmul_f32(x->isa, NULL, X->data, K, W->data, tb ? K : N, tb, b, n->attr.linear.relu != 0, out->data, N, M,
                      N, K);
    } else if (ok) {
        ok = format_ok(x, fa, "input_format") && format_ok(x, fw, "weight_format") &&
             blocks_match(x, fa, fw, "input_format", "weight_format") && linear_qweight(x, n, W, K, N, &tw, &wrows);
        bq_status st = ok ? linear_qmatmul(x, n, X->data, wrows, b, out->data, M, N, K) : BQ_OK;
        if (st != BQ_OK) ok = exec_error(x, "quantised matmul: %s", bq_status_str(st));
    }
    ir_tensor_free(&tbias);
    ir_tensor_free(&tw);
    return ok;
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
    const bq_attn_formats fmt = {n->attr.attention.qk_input_format, n->attr.attention.qk_weight_format,
                                 n->attr.attention.pv_input_format, n->attr.attention.pv_weight_format};
    bool quant = !ir_format_is_fp32(&fmt.qk_input) || !ir_format_is_fp32(&fmt.qk_weight) ||
                 !ir_format_is_fp32(&fmt.pv_input) || !ir_format_is_fp32(&fmt.pv_weight);
    ok = ok && (!quant || (format_ok(x, &fmt.qk_input, "qk_input_format") && format_ok(x, &fmt.qk_weight, "qk_weight_format") &&
                           format_ok(x, &fmt.pv_input, "pv_input_format") && format_ok(x, &fmt.pv_weight, "pv_weight_format") &&
                           blocks_match(x, &fmt.qk_input, &fmt.qk_weight, "qk_input_format", "qk_weight_format") &&
                           blocks_match(x, &fmt.pv_input, &fmt.pv_weight, "pv_input_format", "pv_weight_format")));
    float *scratch = ok ? malloc((size_t)bq_attention_scratch(S, P, D) * sizeof(float) + 64) : NULL;
    if (ok && scratch && !quant) {
        bq_attention_f32(x->isa, NULL, q->data, k->data, v->data, HD, pk ? pk->data : NULL, pv ? pv->data : NULL,
                         m64.data ? m64.data : mask->data, n->attr.attention.causal != 0, n->attr.attention.scale,
                         prk->data, prv->data, out[0].data, B, S, P, H, D, scratch);
    } else if (ok && scratch) {
        bq_status st = bq_attention_q_f32(x->isa, NULL, &fmt, q->data, k->data, v->data, HD, pk ? pk->data : NULL,
                                          pv ? pv->data : NULL, m64.data ? m64.data : mask->data,
                                          n->attr.attention.causal != 0, n->attr.attention.scale, prk->data, prv->data,
                                          out[0].data, B, S, P, H, D, scratch);
        if (st != BQ_OK) ok = exec_error(x, "quantised attention: %s", bq_status_str(st));
    } else if (ok) {
        ok = exec_error(x, "out of memory");
    }
    free(scratch);
    ir_tensor_free(&m64);
    ir_tensor_free(&tk);
    ir_tensor_free(&tv);
    return ok;
}
