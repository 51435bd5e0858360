/* eval.c — `bqc eval MODEL [-plan P] --text FILE`: the accuracy a plan costs, measured.
 *
 * The text is tokenised with bqc's byte vocabulary and cut into non-overlapping windows of
 * the model's context; each window's next-token predictions are scored with the model as
 * compiled (quantised per the plan) and with the same model in fp32: perplexity (and bits
 * per byte: tokens are bytes), the KL divergence of the quantised next-token distribution
 * from the fp32 one, and how often both pick the same top-1 token. Windows run in batches
 * through the interpreter, or through the generated C code (--exec=c) — which computes the
 * same bits, so "deployed == predicted" is a statement about these printed numbers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

typedef struct EvalOpts {
    const char *text;
    int64_t ctx, limit, batch;
    bool json;
} EvalOpts;

typedef struct Scores {
    double nll, nll_fp32, kl;  /* sums over predictions */
    int64_t n, top1;
} Scores;

/* The positional embedding's rows - 2 (OPT's offset): the longest window the model takes.
 * Found as the Gather from a constant table whose indices are computed from the mask. */
static int64_t model_context(const IrGraph *g)
{
    if (g->ninputs < 2) return -1;
    IrId mask = g->inputs[1];
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        if (n->op != OP_GATHER || !ir_is_const(g, n->in[0]) || g->vals[n->in[0]].type.rank != 2) continue;
        /* Walk the index computation back; it must reach the mask. */
        IrId v = n->in[1];
        for (int depth = 0; depth < 32 && v != IR_NONE && v != mask; depth++) {
            IrId d = g->vals[v].def;
            if (d == IR_NONE) break;
            const IrNode *p = &g->nodes[d];
            IrId next = IR_NONE;
            for (uint32_t k = 0; k < p->nin && next == IR_NONE; k++)
                if (p->in[k] != IR_NONE && !ir_is_const(g, p->in[k])) next = p->in[k];
            v = next;
        }
        if (v == mask) return g->vals[n->in[0]].type.dims[0] - 2;
    }
    return -1;
}

static void progress(int64_t done, int64_t total, double t0)
{
    if (!isatty(2)) return;
    int w = 30, fill = total ? (int)(w * done / total) : w;
    double el = (double)clock() / CLOCKS_PER_SEC - t0;
    fprintf(stderr, "\r[%.*s%*s] %lld/%lld windows  %.1f s", fill, "==============================", w - fill, "",
            (long long)done, (long long)total, el);
    if (done == total) fputc('\n', stderr);
}

/* log-softmax of one row into lp (double). */
static void log_softmax(const float *x, int64_t V, double *lp)
{
    double m = -INFINITY, s = 0;
    for (int64_t v = 0; v < V; v++) m = fmax(m, x[v]);
    for (int64_t v = 0; v < V; v++) s += exp((double)x[v] - m);
    double lse = m + log(s);
    for (int64_t v = 0; v < V; v++) lp[v] = (double)x[v] - lse;
}

static int64_t argmax(const float *x, int64_t V)
{
    int64_t b = 0;
    for (int64_t v = 1; v < V; v++)
        if (x[v] > x[b]) b = v;
    return b;
}

/* Scores one batch: logits [B, ctx, V] of both models against the windows' next tokens. */
static void score(Scores *s, const float *lq, const float *lf, const int64_t *ids, int64_t B, int64_t ctx, int64_t V,
                  double *pq, double *pf)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t + 1 < ctx; t++) {
            const float *xq = lq + (b * ctx + t) * V, *xf = lf + (b * ctx + t) * V;
            int64_t target = ids[b * ctx + t + 1];
            log_softmax(xq, V, pq);
            log_softmax(xf, V, pf);
            s->nll -= pq[target];
            s->nll_fp32 -= pf[target];
            double kl = 0;
            for (int64_t v = 0; v < V; v++) kl += exp(pf[v]) * (pf[v] - pq[v]);
            s->kl += kl;
            s->top1 += argmax(xq, V) == argmax(xf, V);
            s->n++;
        }
}

/* Runs one batch of windows through a model (interpreter or generated code). */
static bool logits_of(Diag *d, IrModel *m, ExecC *x, const int64_t *ids, int64_t B, int64_t ctx, IrTensor *out,
                      int threads)
{
    IrGraph *g = m->graph;
    if (g->ninputs != 2) return diag_error(d, m->path, "eval needs a model with inputs (input_ids, attention_mask)");
    IrTensor in[2];
    int64_t dims[2] = {B, ctx};
    if (!ir_tensor_alloc(&in[0], g->vals[g->inputs[0]].type.dtype, 2, dims) ||
        !ir_tensor_alloc(&in[1], g->vals[g->inputs[1]].type.dtype, 2, dims))
        return diag_error(d, NULL, "out of memory");
    for (int64_t i = 0; i < B * ctx; i++) {
        ((int64_t *)in[0].data)[i] = ids[i];
        ((int64_t *)in[1].data)[i] = 1;
    }
    IrTensor *outs = calloc(g->noutputs, sizeof *outs);
    IrRunOptions ro = {.n_threads = threads};
    bool ok = outs && (x ? driver_exec_c_run(d, x, in, outs) : ir_run(g, in, outs, &ro));
    if (ok) *out = outs[0];
    for (uint32_t k = ok ? 1 : 0; outs && k < g->noutputs; k++) ir_tensor_free(&outs[k]);
    free(outs);
    ir_tensor_free(&in[0]);
    ir_tensor_free(&in[1]);
    return ok;
}

static int eval_parse(int argc, char **argv, DriverOptions *o, EvalOpts *e)
{
    /* eval's own flags first; the rest (-plan, --passes, --threads, --exec) are run flags. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    rest[nrest++] = argv[0];
    memset(e, 0, sizeof *e);
    e->batch = 4;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        struct { const char *flag; int64_t *dst; } nums[] = {{"--ctx", &e->ctx}, {"--limit", &e->limit}, {"--batch", &e->batch}};
        bool done = false;
        for (size_t k = 0; k < 3 && !done; k++)
            if ((v = driver_flag_value(argc, argv, &i, nums[k].flag, &missing)) || missing) {
                char *end;
                if (missing || (*nums[k].dst = strtoll(v, &end, 10)) < 1 || *end) {
                    free(rest);
                    return driver_usage_error("%s expects a positive integer", nums[k].flag);
                }
                done = true;
            }
        if (done) continue;
        if ((v = driver_flag_value(argc, argv, &i, "--text", &missing)) || missing) {
            if (missing) {
                free(rest);
                return driver_usage_error("option '--text' needs a value");
            }
            e->text = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            e->json = true;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    int rc = driver_parse_common(nrest, rest, 1, o, true);
    free(rest);
    if (rc >= 0) return rc;
    if (!o->model) return driver_usage_error("eval: no input model");
    if (!e->text) return driver_usage_error("eval: no text (--text FILE)");
    return -1;
}

int cmd_eval(int argc, char **argv)
{
    DriverOptions o;
    EvalOpts e;
    int rc = eval_parse(argc, argv, &o, &e);
    if (rc >= 0) return rc;
    Diag diag;
    diag_init(&diag, diag_sink_stderr, NULL);
    int64_t ntok = 0;
    int64_t *ids = text_read_ids(&diag, e.text, &ntok);
    if (!ids) return 1;
    /* The model as compiled (with the plan) and its fp32 reference (no plan). */
    DriverOptions of = o;
    driver_options_fp32(&of);
    IrModel *mq = driver_load(&diag, &o), *mf = mq ? driver_load(&diag, &of) : NULL;
    ExecC *xq = NULL, *xf = NULL;
    bool ok = mq && mf;
    int64_t ctxmax = ok ? model_context(mf->graph) : -1;
    if (ok && !e.ctx) e.ctx = ctxmax;
    if (ok && e.ctx < 2) ok = diag_error(&diag, o.model, "cannot tell the model's context length: give --ctx N");
    if (ok && ctxmax > 0 && e.ctx > ctxmax)
        ok = diag_error(&diag, o.model, "--ctx %lld exceeds the model's %lld positions", (long long)e.ctx, (long long)ctxmax);
    int64_t windows = ok ? ntok / e.ctx : 0;
    if (ok && e.limit && e.limit < windows) windows = e.limit;
    if (ok && windows < 1)
        ok = diag_error(&diag, e.text, "shorter than one window of %lld tokens", (long long)e.ctx);
    if (ok && strcmp(o.exec, "c") == 0) {
        xq = driver_exec_c_prepare(&diag, mq, &o);
        xf = xq ? driver_exec_c_prepare(&diag, mf, &of) : NULL;
        ok = xq && xf;
    }
    Scores s = {0};
    int64_t V = 0;
    double *pq = NULL, *pf = NULL, t0 = (double)clock() / CLOCKS_PER_SEC;
    for (int64_t w = 0; ok && w < windows; w += e.batch) {
        int64_t B = windows - w < e.batch ? windows - w : e.batch;
        IrTensor lq = {0}, lf = {0};
        const int64_t *win = ids + w * e.ctx;
        ok = logits_of(&diag, mq, xq, win, B, e.ctx, &lq, o.threads) && logits_of(&diag, mf, xf, win, B, e.ctx, &lf, o.threads);
        if (ok && (lq.rank != 3 || lq.dtype != DT_F32 || lq.dims[1] != e.ctx))
            ok = diag_error(&diag, o.model, "the first output is not f32 logits [batch, seq, vocab]");
        if (ok && !V) {
            V = lq.dims[2];
            pq = malloc((size_t)V * sizeof *pq);
            pf = malloc((size_t)V * sizeof *pf);
        }
        if (ok) score(&s, lq.data, lf.data, win, B, e.ctx, V, pq, pf);
        ir_tensor_free(&lq);
        ir_tensor_free(&lf);
        if (ok) progress(w + B, windows, t0);
    }
    if (ok) {
        double nll = s.nll / (double)s.n, nllf = s.nll_fp32 / (double)s.n;
        double ppl = exp(nll), pplf = exp(nllf), bpb = nll / log(2.0), kl = s.kl / (double)s.n;
        double top1 = 100.0 * (double)s.top1 / (double)s.n;
        if (e.json)
            printf("{\"model\": \"%s\", \"text\": \"%s\", \"windows\": %lld, \"context\": %lld, \"predictions\": %lld, "
                   "\"perplexity\": %.6f, \"perplexity_fp32\": %.6f, \"bits_per_byte\": %.6f, \"kl\": %.8f, \"top1\": %.4f}\n",
                   o.model, e.text, (long long)windows, (long long)e.ctx, (long long)s.n, ppl, pplf, bpb, kl, top1);
        else
            printf("%s on %s: %lld windows of %lld tokens, %lld predictions\n"
                   "perplexity %.4f (fp32 %.4f, %+.2f%%)  bits/byte %.4f  KL %.6f  top-1 %.2f%%\n",
                   o.model, e.text, (long long)windows, (long long)e.ctx, (long long)s.n, ppl, pplf,
                   100.0 * (ppl / pplf - 1.0), bpb, kl, top1);
    }
    free(pq);
    free(pf);
    free(ids);
    driver_exec_c_free(xq);
    driver_exec_c_free(xf);
    ir_model_destroy(mq);
    ir_model_destroy(mf);
    return ok ? 0 : 1;
}
