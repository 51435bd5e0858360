/* eval.c — `bqc eval MODEL [-plan P]... --text FILE`: the accuracy a plan costs, measured.
 *
 * The text is tokenised with bqc's byte vocabulary and cut into non-overlapping windows of
 * the model's context; each window's next-token predictions are scored with the model as
 * compiled (quantised per the plan) and with the same model in fp32: perplexity (and bits
 * per byte: tokens are bytes), the KL divergence of the quantised next-token distribution
 * from the fp32 one, and how often both pick the same top-1 token. Windows run in batches
 * through the interpreter, or through the generated C code (--exec=c) — which computes the
 * same bits, so "deployed == predicted" is a statement about these printed numbers.
 *
 * Several plans (-plan given again, or --plans a,b,c) are scored in one process, each against
 * the same fp32 reference: every plan's model is loaded (and with --exec=c compiled) once,
 * and per batch of windows the reference's log-probabilities are computed once and every
 * plan's logits are scored against them and dropped, so memory stays one batch of logits
 * whatever the number of plans. The scores are the same operations in the same order as a
 * run with that plan alone, so they agree to the last digit. Each plan's line adds the
 * model-level figures of --report (plan_summarise: average weight and activation bpw,
 * memory density), counted for sequences of the window length unless --report-seq says.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "driver.h"

#define EVAL_MAX_PLANS 64

typedef struct EvalOpts {
    const char *text;
    int64_t ctx, limit, batch, report_seq;
    bool json, spread, progress;
    const char *plans[EVAL_MAX_PLANS];
    int nplans;
    char *plan_list;           /* --plans: the copy the names point into */
} EvalOpts;

typedef struct Scores {
    double nll, kl;            /* sums over predictions */
    int64_t n, top1;
} Scores;

/* One model under evaluation: the compiled plan (or the model as given, with no plan). */
typedef struct Subject {
    const char *plan;          /* NULL: no plan */
    IrModel *m;
    ExecC *x;                  /* --exec=c */
    Scores s;
    PlanSummary sum;
    double seconds;            /* spent computing its logits */
} Subject;

/* The fp32 reference of one batch: log-probabilities and top-1 per prediction. */
typedef struct Reference {
    double *lp;                /* [B·(ctx-1)][V] */
    int64_t *top;              /* [B·(ctx-1)] */
    double nll;                /* sum over every prediction so far */
} Reference;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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

/* On a terminal: one line rewritten in place; with --progress: a line per batch. */
static void progress(const EvalOpts *e, int64_t done, int64_t total, int nsubj, double t0)
{
    bool tty = isatty(2);
    if (!tty && !e->progress) return;
    double el = now() - t0, eta = done ? el * (double)(total - done) / (double)done : 0;
    char plans[32] = "";
    if (nsubj > 1) snprintf(plans, sizeof plans, " x %d plans", nsubj);
    if (tty) {
        int w = 30, fill = total ? (int)(w * done / total) : w;
        fprintf(stderr, "\r[%.*s%*s] %lld/%lld windows%s  %.1f s (eta %.0f s)", fill, "==============================",
                w - fill, "", (long long)done, (long long)total, plans, el, eta);
        if (done == total) fputc('\n', stderr);
    } else {
        fprintf(stderr, "bqc eval: %lld/%lld windows%s  %.1f s (eta %.0f s)\n", (long long)done, (long long)total, plans,
                el, eta);
    }
    fflush(stderr);
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

/* The reference's part of one batch: logits lf [B, ctx, V] against the windows' next tokens. */
static void reference(Reference *r, const float *lf, const int64_t *ids, int64_t B, int64_t ctx, int64_t V)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t + 1 < ctx; t++) {
            int64_t i = b * (ctx - 1) + t;
            const float *xf = lf + (b * ctx + t) * V;
            log_softmax(xf, V, r->lp + i * V);
            r->nll -= r->lp[i * V + ids[b * ctx + t + 1]];
            r->top[i] = argmax(xf, V);
        }
}

/* One plan's part: logits lq [B, ctx, V] scored against the reference. */
static void score(Scores *s, const float *lq, const Reference *r, const int64_t *ids, int64_t B, int64_t ctx, int64_t V,
                  double *pq)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t + 1 < ctx; t++) {
            int64_t i = b * (ctx - 1) + t;
            const float *xq = lq + (b * ctx + t) * V;
            const double *pf = r->lp + i * V;
            log_softmax(xq, V, pq);
            s->nll -= pq[ids[b * ctx + t + 1]];
            double kl = 0;
            for (int64_t v = 0; v < V; v++) kl += exp(pf[v]) * (pf[v] - pq[v]);
            s->kl += kl;
            s->top1 += argmax(xq, V) == r->top[i];
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
    if (ok && (out->rank != 3 || out->dtype != DT_F32 || out->dims[0] != B || out->dims[1] != ctx)) {
        ir_tensor_free(out);
        return diag_error(d, m->path, "the first output is not f32 logits [batch, seq, vocab]");
    }
    return ok;
}

static bool add_plan(EvalOpts *e, const char *p)
{
    if (e->nplans == EVAL_MAX_PLANS) return false;
    e->plans[e->nplans++] = p;
    return true;
}

static int eval_parse(int argc, char **argv, DriverOptions *o, EvalOpts *e)
{
    /* eval's own flags (and the plans) first; the rest (--passes, --threads, --exec, --calib)
     * are run flags. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0, rc = -1;
    rest[nrest++] = argv[0];
    memset(e, 0, sizeof *e);
    e->batch = 4;
    for (int i = 1; i < argc && rc < 0; i++) {
        const char *v;
        bool missing = false, done = false;
        struct { const char *flag; int64_t *dst; } nums[] = {
            {"--ctx", &e->ctx}, {"--limit", &e->limit}, {"--batch", &e->batch}, {"--report-seq", &e->report_seq}};
        for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !done; k++)
            if ((v = driver_flag_value(argc, argv, &i, nums[k].flag, &missing)) || missing) {
                char *end;
                if (missing || (*nums[k].dst = strtoll(v, &end, 10)) < 1 || *end)
                    rc = driver_usage_error("%s expects a positive integer", nums[k].flag);
                done = true;
            }
        if (done) continue;
        if ((v = driver_flag_value(argc, argv, &i, "--text", &missing)) || missing) {
            if (missing) rc = driver_usage_error("option '--text' needs a value");
            e->text = v;
        } else if ((v = driver_flag_value(argc, argv, &i, "--plans", &missing)) || missing) {
            if (missing || !*v) {
                rc = driver_usage_error("option '--plans' needs a value (a,b,c)");
                continue;
            }
            free(e->plan_list);
            e->plan_list = strdup(v);
            for (char *p = e->plan_list, *c; rc < 0 && p; p = c ? c + 1 : NULL) {
                if ((c = strchr(p, ','))) *c = 0;
                if (!*p) rc = driver_usage_error("--plans: an empty plan name in '%s'", v);
                else if (!add_plan(e, p)) rc = driver_usage_error("more than %d plans", EVAL_MAX_PLANS);
            }
        } else if ((v = driver_flag_value(argc, argv, &i, "-plan", &missing)) ||
                   (!missing && (v = driver_flag_value(argc, argv, &i, "--plan", &missing))) || missing) {
            if (missing) rc = driver_usage_error("option '-plan' needs a value");
            else if (!add_plan(e, v)) rc = driver_usage_error("more than %d plans", EVAL_MAX_PLANS);
        } else if (strcmp(argv[i], "--json") == 0) {
            e->json = true;
        } else if (strcmp(argv[i], "--spread") == 0) {
            e->spread = true;
        } else if (strcmp(argv[i], "--progress") == 0) {
            e->progress = true;
        } else {
            rest[nrest++] = argv[i];
        }
    }
    if (rc < 0) rc = driver_parse_common(nrest, rest, 1, o, true);
    free(rest);
    if (rc >= 0) return rc;
    if (!o->model) return driver_usage_error("eval: no input model");
    if (!e->text) return driver_usage_error("eval: no text (--text FILE)");
    if (e->spread && !e->limit) return driver_usage_error("eval: --spread spreads --limit W windows over the text: give --limit");
    return -1;
}

/* Window j of `count` taken from `total`: the first ones, or (--spread) evenly spaced. */
static int64_t window_start(const EvalOpts *e, int64_t j, int64_t count, int64_t total)
{
    return (e->spread ? j * total / count : j) * e->ctx;
}

static void print_single(const DriverOptions *o, const EvalOpts *e, int64_t windows, const Subject *q,
                         const Reference *r)
{
    const Scores *s = &q->s;
    double nll = s->nll / (double)s->n, nllf = r->nll / (double)s->n;
    double ppl = exp(nll), pplf = exp(nllf), bpb = nll / log(2.0), kl = s->kl / (double)s->n;
    double top1 = 100.0 * (double)s->top1 / (double)s->n;
    if (e->json)
        printf("{\"model\": \"%s\", \"text\": \"%s\", \"windows\": %lld, \"context\": %lld, \"predictions\": %lld, "
               "\"perplexity\": %.6f, \"perplexity_fp32\": %.6f, \"bits_per_byte\": %.6f, \"kl\": %.8f, \"top1\": %.4f}\n",
               o->model, e->text, (long long)windows, (long long)e->ctx, (long long)s->n, ppl, pplf, bpb, kl, top1);
    else
        printf("%s on %s: %lld windows of %lld tokens, %lld predictions\n"
               "perplexity %.4f (fp32 %.4f, %+.2f%%)  bits/byte %.4f  KL %.6f  top-1 %.2f%%\n",
               o->model, e->text, (long long)windows, (long long)e->ctx, (long long)s->n, ppl, pplf,
               100.0 * (ppl / pplf - 1.0), bpb, kl, top1);
}

/* JSON number, or null when not finite. */
static void json_num(const char *key, double x, const char *fmt)
{
    printf(", \"%s\": ", key);
    if (isfinite(x)) printf(fmt, x);
    else printf("null");
}

/* Several plans: a header line and one line per plan (or one JSON object per plan). The
 * scores print exactly as print_single prints them. */
static void print_multi(const DriverOptions *o, const EvalOpts *e, int64_t windows, const Subject *q, int n,
                        const Reference *r, int64_t seq)
{
    if (!e->json)
        printf("%s on %s: %lld windows of %lld tokens, %lld predictions; %d plans (bpw and density for %lld-token "
               "sequences)\n",
               o->model, e->text, (long long)windows, (long long)e->ctx, (long long)q[0].s.n, n, (long long)seq);
    for (int i = 0; i < n; i++) {
        const Scores *s = &q[i].s;
        const PlanSummary *m = &q[i].sum;
        double nll = s->nll / (double)s->n, nllf = r->nll / (double)s->n;
        double ppl = exp(nll), pplf = exp(nllf), bpb = nll / log(2.0), kl = s->kl / (double)s->n;
        double top1 = 100.0 * (double)s->top1 / (double)s->n;
        if (e->json) {
            printf("{\"model\": \"%s\", \"plan\": \"%s\", \"text\": \"%s\", \"windows\": %lld, \"context\": %lld, "
                   "\"predictions\": %lld, \"perplexity\": %.6f, \"perplexity_fp32\": %.6f, \"bits_per_byte\": %.6f, "
                   "\"kl\": %.8f, \"top1\": %.4f",
                   o->model, q[i].plan, e->text, (long long)windows, (long long)e->ctx, (long long)s->n, ppl, pplf, bpb,
                   kl, top1);
            json_num("weight_bpw", m->weight_bpw, "%.6f");
            json_num("activation_bpw", m->act_bpw, "%.6f");
            json_num("memory_density", m->density, "%.6f");
            printf(", \"density_seq\": %lld, \"seconds\": %.2f}\n", (long long)seq, q[i].seconds);
        } else {
            printf("%s: perplexity %.4f (fp32 %.4f, %+.2f%%)  bits/byte %.4f  KL %.6f  top-1 %.2f%%  "
                   "weight bpw %.2f  activation bpw %.2f  density %.2fx\n",
                   q[i].plan, ppl, pplf, 100.0 * (ppl / pplf - 1.0), bpb, kl, top1, m->weight_bpw, m->act_bpw,
                   m->density);
        }
    }
}

int cmd_eval(int argc, char **argv)
{
    DriverOptions o;
    EvalOpts e;
    int rc = eval_parse(argc, argv, &o, &e);
    if (rc >= 0) {
        free(e.plan_list);
        return rc;
    }
    /* The LLVM backend JITs a module per call (driver_exec_llvm), so eval, which runs a model
     * once per batch, scores generated code through the C backend only. */
    if (strcmp(o.exec, "llvm") == 0) {
        free(e.plan_list);
        return driver_usage_error("bqc eval takes --exec=interp or --exec=c (the LLVM backend computes the same "
                                  "bits: tests/e2e/test_llvm.sh)");
    }
    Diag diag;
    diag_init(&diag, diag_sink_stderr, NULL);
    int64_t ntok = 0;
    int64_t *ids = text_read_ids(&diag, e.text, &ntok);
    if (!ids) {
        free(e.plan_list);
        return 1;
    }
    /* The models as compiled (one per plan; the model itself with no plan) and the fp32
     * reference (no plan). */
    int nsubj = e.nplans ? e.nplans : 1;
    Subject *subj = calloc((size_t)nsubj, sizeof *subj);
    DriverOptions of = o;
    driver_options_fp32(&of);
    IrModel *mf = driver_load(&diag, &of);
    ExecC *xf = NULL;
    bool ok = mf != NULL, exec_c = strcmp(o.exec, "c") == 0;
    for (int i = 0; ok && i < nsubj; i++) {
        DriverOptions oi = o;
        oi.plan = subj[i].plan = e.nplans ? e.plans[i] : NULL;
        ok = (subj[i].m = driver_load(&diag, &oi)) != NULL;
        if (ok && exec_c) ok = (subj[i].x = driver_exec_c_prepare(&diag, subj[i].m, &oi)) != NULL;
    }
    if (ok && exec_c) ok = (xf = driver_exec_c_prepare(&diag, mf, &of)) != NULL;
    int64_t ctxmax = ok ? model_context(mf->graph) : -1;
    if (ok && !e.ctx) e.ctx = ctxmax;
    if (ok && e.ctx < 2) ok = diag_error(&diag, o.model, "cannot tell the model's context length: give --ctx N");
    if (ok && ctxmax > 0 && e.ctx > ctxmax)
        ok = diag_error(&diag, o.model, "--ctx %lld exceeds the model's %lld positions", (long long)e.ctx, (long long)ctxmax);
    int64_t total = ok ? ntok / e.ctx : 0, windows = total;
    if (ok && e.limit && e.limit < windows) windows = e.limit;
    if (ok && windows < 1)
        ok = diag_error(&diag, e.text, "shorter than one window of %lld tokens", (long long)e.ctx);
    int64_t seq = e.report_seq ? e.report_seq : e.ctx;
    for (int i = 0; ok && i < nsubj; i++) plan_summarise(subj[i].m->graph, seq, &subj[i].sum);

    Reference ref = {0};
    int64_t V = 0, *win = ok ? malloc((size_t)(e.batch * e.ctx) * sizeof *win) : NULL;
    double *pq = NULL, t0 = now();
    for (int64_t w = 0; ok && w < windows; w += e.batch) {
        int64_t B = windows - w < e.batch ? windows - w : e.batch;
        for (int64_t b = 0; b < B; b++)
            memcpy(win + b * e.ctx, ids + window_start(&e, w + b, windows, total), (size_t)e.ctx * sizeof *win);
        IrTensor lf = {0};
        ok = logits_of(&diag, mf, xf, win, B, e.ctx, &lf, o.threads);
        if (ok && !V) {
            V = lf.dims[2];
            pq = malloc((size_t)V * sizeof *pq);
            ref.lp = malloc((size_t)(e.batch * (e.ctx - 1) * V) * sizeof *ref.lp);
            ref.top = malloc((size_t)(e.batch * (e.ctx - 1)) * sizeof *ref.top);
            if (!pq || !ref.lp || !ref.top) ok = diag_error(&diag, NULL, "out of memory");
        }
        if (ok && lf.dims[2] != V) ok = diag_error(&diag, o.model, "the vocabulary changed between batches");
        if (ok) reference(&ref, lf.data, win, B, e.ctx, V);
        ir_tensor_free(&lf);
        for (int i = 0; ok && i < nsubj; i++) {
            IrTensor lq = {0};
            double t = now();
            ok = logits_of(&diag, subj[i].m, subj[i].x, win, B, e.ctx, &lq, o.threads);
            if (ok && lq.dims[2] != V)
                ok = diag_error(&diag, subj[i].plan ? subj[i].plan : o.model, "the logits have %lld entries, the fp32 model's %lld",
                                (long long)lq.dims[2], (long long)V);
            if (ok) score(&subj[i].s, lq.data, &ref, win, B, e.ctx, V, pq);
            subj[i].seconds += now() - t;
            ir_tensor_free(&lq);
        }
        if (ok) progress(&e, w + B, windows, nsubj, t0);
    }
    if (ok && e.nplans <= 1) print_single(&o, &e, windows, &subj[0], &ref);
    else if (ok) print_multi(&o, &e, windows, subj, nsubj, &ref, seq);
    fflush(stdout);
    free(pq);
    free(ref.lp);
    free(ref.top);
    free(win);
    free(ids);
    for (int i = 0; i < nsubj; i++) {
        driver_exec_c_free(subj[i].x);
        ir_model_destroy(subj[i].m);
    }
    free(subj);
    driver_exec_c_free(xf);
    ir_model_destroy(mf);
    free(e.plan_list);
    return ok ? 0 : 1;
}
