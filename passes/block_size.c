/* block_size.c — variance-aware block size (design.md; bqc's own extension of the paper).
 *
 * For every matmul operand whose format has block 0 ("auto"), measure the quantisation SQNR
 * of each candidate block size of the plan (block_size.weight / block_size.input, by role)
 * and pick the LARGEST block whose SQNR meets block_size.target_sqnr_db; if none does, the
 * block with the best SQNR (the larger one on a tie). Larger blocks cost fewer bits (the
 * shared field is amortised over more elements), so this is the cheapest block that is good
 * enough, and the best one available when nothing is. Candidates the format's family does
 * not allow are skipped, and so are candidates longer than the operand's K when it is fixed
 * (a Linear's in_features, a head's size): they would all quantise as one block of K yet claim
 * fewer bits per element, so only the smallest of them stays if none is <= K.
 *
 * Statistics: a Linear's weight from its values (each output row quantised along K, as
 * quantise-weights will). Activations from a calibration run of the reference interpreter on
 * an fp32 copy of the graph (every format reset to fp32: the statistics are those of the
 * unquantised model) over text from --calib FILE, tokenised byte-level (byte b is token
 * b + 4; ids 0..3 are specials), in windows of the model's context (the position table's rows
 * minus OPT's offset 2; 128 if the graph has none; --calib-seq overrides) spread evenly over
 * the text, at most PassEnv.calib_windows (default 4). Each window is one sequence, batch 1,
 * no past, attention mask all ones.
 *
 * What is measured, blocked along each matmul's K as formats.md §0 prescribes:
 *   Linear input    X rows (K = in_features)
 *   attn_qk input   q, per token and head (K = head dim)      — q as it enters the node
 *   attn_qk weight  the keys k, per token and head (K = head dim)
 *   attn_pv input   the probabilities P, recomputed exactly from q and k as bqc.Attention
 *                   does (qs = fl(q·scale), fmaf dot products, causal mask, softmax): per
 *                   head and query, a row over the keys (K = keys)
 *   attn_pv weight  the values v, per head and channel, a column over the keys (K = keys)
 * q, k and v are the node's inputs, so apart from the scaling of q (exact when the scale is a
 * power of two, as for every OPT head size) they are the operands themselves.
 *
 * Per window, an operand's runs are measured in full up to CALIB_VALUES (2^20) values, else
 * every s-th run (evenly spaced, s the smallest stride within the budget): the reference
 * quantiser is the cost, and P alone has heads·T² values. Operands reading the same value the
 * same way (the q/k/v projections' shared input) are measured once.
 *
 * Both operands of one product share a block (the kernels sum a block of each at once,
 * formats.md §0), so when both are "auto" the product chooses: the largest block in both
 * candidate lists whose SQNR meets the target for both operands, else the common block whose
 * worse SQNR is best. (An "auto" operand whose partner has a fixed block keeps its own choice;
 * a mismatch is then the executors' error.)
 *
 * With --calib and a report sink, activation operands with fixed formats are measured too,
 * so the report has an SQNR for every quantised activation. The evidence (variance, SQNR per
 * candidate, the choice) goes to PassEnv.report.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pass.h"

#define DEFAULT_WINDOWS 4
#define DEFAULT_CONTEXT 128
#define OPT_POSITION_OFFSET 2
#define TOKEN_OFFSET 4            /* byte b -> token b + 4 */
#define CALIB_VALUES (1 << 20)    /* values measured per activation operand and window, at most */

typedef struct Operand {
    PlanMatmul mm;
    PlanRole role;
    bq_format fmt;                /* as planned (block 0: auto) */
    bool is_auto;
    bool activation;              /* statistics from calibration */
    uint32_t ncand;               /* auto: candidates, ascending; fixed: 1 (fmt itself) */
    bq_format cand[PLAN_MAX_CAND];
    PlanQStats st[PLAN_MAX_CAND];
    uint32_t want[2];             /* indices into the calibration's wanted values */
    int pick;                     /* the product's choice for both its auto operands, or -1 */
    bool pick_met;                /* ... and whether it meets the target for both */
} Operand;

static void add_run(Operand *o, const float *x, int64_t k, int64_t stride, void *scratch)
{
    for (uint32_t i = 0; i < o->ncand; i++) plan_qstats_add(&o->st[i], &o->cand[i], x, k, stride, scratch);
}

static const char *fmt_name(const bq_format *f, char *buf, size_t n)
{
    if (bq_format_name(f, buf, n) < 0) snprintf(buf, n, "?");
    return buf;
}

/* "attn_qk " for an attention operand (a node has two of each role), "" for a Linear's. */
static const char *what(const Operand *o)
{
    return o->mm.kind == PLAN_ATTN_QK ? "attn_qk " : o->mm.kind == PLAN_ATTN_PV ? "attn_pv " : "";
}

/* The operand's K when it is fixed (a Linear's inputs, a head's size), else -1 (P·V: the keys). */
static int64_t reduction_len(const IrGraph *g, const Operand *o)
{
    const IrNode *n = &g->nodes[o->mm.node];
    const IrType *x = &g->vals[n->in[0]].type;
    if (o->mm.kind == PLAN_ATTN_PV || x->rank < 1 || !IR_DIM_IS_CONST(x->dims[x->rank - 1])) return -1;
    int64_t k = x->dims[x->rank - 1];
    return n->op == OP_LINEAR ? k : k / n->attr.attention.num_heads;
}

/* The candidate formats of an auto operand, ascending; false (reported) when there are none. */
static bool candidates(PassCtx *c, Operand *o)
{
    const Plan *p = c->env->plan;
    const PlanBlocks *b = p ? &p->blocks[o->role] : NULL;
    uint16_t sizes[PLAN_MAX_CAND];
    uint32_t n = 0;
    for (uint32_t i = 0; b && i < b->n; i++) sizes[n++] = b->size[i];
    for (uint32_t i = 1; i < n; i++)   /* insertion sort: a handful of entries */
        for (uint32_t j = i; j > 0 && sizes[j - 1] > sizes[j]; j--) {
            uint16_t t = sizes[j];
            sizes[j] = sizes[j - 1];
            sizes[j - 1] = t;
        }
    for (uint32_t i = 0; i < n; i++) {
        bq_format f = o->fmt;
        f.block = sizes[i];
        if (isfinite(bq_format_bpe(&f))) o->cand[o->ncand++] = f;
    }
    /* Blocks longer than K all quantise as one block of K but would claim fewer bits per
     * element: keep the candidates <= K, or the smallest one if none is. */
    int64_t K = reduction_len(c->g, o);
    uint32_t keep = 0;
    for (uint32_t i = 0; i < o->ncand; i++)
        if (K < 0 || o->cand[i].block <= K) o->cand[keep++] = o->cand[i];
    if (o->ncand && !keep) keep = 1;
    o->ncand = keep;
    if (o->ncand) return true;
    char fn[64];
    return ir_node_error(c->g, o->mm.node, "the %s%s format %s has an 'auto' block but %s", what(o),
                         plan_role_name(o->role), fmt_name(&o->fmt, fn, sizeof fn),
                         b && b->n ? "no candidate in the plan's block_size list suits it"
                                   : "there are no candidate block sizes (the plan's block_size)");
}

/* Which operands to measure: every auto one; fixed activations too when calibrating for a report. */
static bool collect(PassCtx *c, Operand **out, uint32_t *nout)
{
    PlanMatmul *mm;
    uint32_t n = plan_matmuls(c->g, &mm);
    Operand *ops = calloc(2 * n + 1, sizeof *ops);
    if (!ops) unreachable("out of memory");
    uint32_t k = 0;
    bool ok = true, measure_fixed = c->env->calib_path && c->env->report;
    for (uint32_t i = 0; ok && i < n; i++) {
        IrNode *nd = &c->g->nodes[mm[i].node];
        const bq_format *bias = plan_format_attr(nd, mm[i].kind, PLAN_BIAS);
        if (bias && bias->block == 0) {
            char fn[64];
            ok = ir_node_error(c->g, mm[i].node, "the bias format %s has an 'auto' block: a bias has no K dimension",
                               fmt_name(bias, fn, sizeof fn));
        }
        for (int r = PLAN_INPUT; ok && r <= PLAN_WEIGHT; r++) {
            const bq_format *f = plan_format_attr(nd, mm[i].kind, (PlanRole)r);
            if (!f || ir_format_is_fp32(f)) continue;
            Operand *o = &ops[k];
            *o = (Operand){.mm = mm[i], .role = (PlanRole)r, .fmt = *f, .is_auto = f->block == 0,
                           .activation = !(nd->op == OP_LINEAR && r == PLAN_WEIGHT)};
            if (!o->is_auto && !(o->activation && measure_fixed)) continue;
            if (o->is_auto) ok = candidates(c, o);
            else o->cand[o->ncand++] = *f;
            k++;
        }
    }
    free(mm);
    *out = ops;
    *nout = k;
    return ok;
}

/* ---- weights ---- */

static bool measure_weight(PassCtx *c, Operand *o)
{
    const IrGraph *g = c->g;
    const IrNode *n = &g->nodes[o->mm.node];
    const IrValue *w = &g->vals[n->in[1]];
    if (!ir_is_const(g, n->in[1]) || w->type.dtype != DT_F32 || w->type.rank != 2 || !ir_type_is_concrete(&w->type))
        return ir_node_error(c->g, o->mm.node, "the weight '%s' must be a constant f32 matrix to choose its block", w->name);
    int tb = n->attr.linear.trans_b != 0;
    int64_t K = w->type.dims[tb], N = w->type.dims[1 - tb];
    bq_format fp32 = ir_format_fp32();
    void *scratch = malloc(plan_qstats_scratch(&fp32, K));
    if (!scratch) unreachable("out of memory");
    const float *W = w->data;
    for (int64_t j = 0; j < N; j++) add_run(o, tb ? W + j * K : W + j, K, tb ? 1 : N, scratch);
    free(scratch);
    return true;
}

/* ---- calibration ---- */

typedef struct Calib {
    IrModel *m;                   /* the fp32 copy */
    IrGraph *g;
    IrId want[4096];
    uint32_t nwant;
    uint8_t *text;
    int64_t len, T;               /* bytes of text, tokens per window */
    IrId ids;                     /* the input_ids input */
} Calib;

static uint32_t want(Calib *k, IrId v)
{
    for (uint32_t i = 0; i < k->nwant; i++)
        if (k->want[i] == v) return i;
    if (k->nwant == sizeof k->want / sizeof k->want[0]) unreachable("too many calibration values");
    k->want[k->nwant] = v;
    return k->nwant++;
}

static bool is_view(const IrNode *n) { return n && (ir_ops[n->op].flags & F_LAYOUT); }

static bool reaches(const IrGraph *g, IrId v, IrId target)
{
    for (IrNode *n = pat_def(g, v); is_view(n) || (n && n->op == OP_CAST); n = pat_def(g, v)) v = n->in[0];
    return v == target;
}

/* The model's context (OPT's learned position table minus its offset) and vocabulary. */
static int64_t model_context(const IrGraph *g, IrId ids, int64_t *vocab)
{
    int64_t pos = -1;
    int npos = 0;
    *vocab = -1;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        if (n->dead || n->op != OP_GATHER || !ir_is_const(g, n->in[0])) continue;
        const IrType *t = &g->vals[n->in[0]].type;
        if (t->rank != 2 || !IR_DIM_IS_CONST(t->dims[0]) || !ir_dtype_is_float(t->dtype)) continue;
        if (reaches(g, n->in[1], ids)) *vocab = t->dims[0];
        else npos++, pos = t->dims[0];
    }
    return npos == 1 && pos > OPT_POSITION_OFFSET ? pos - OPT_POSITION_OFFSET : DEFAULT_CONTEXT;
}

static bool read_text(PassCtx *c, Calib *k)
{
    const char *path = c->env->calib_path;
    FILE *f = fopen(path, "rb");
    if (!f) return diag_error(c->m->diag, path, "cannot read the calibration text");
    size_t cap = 1 << 16;
    k->text = malloc(cap);
    size_t r;
    while (k->text && (r = fread(k->text + k->len, 1, cap - (size_t)k->len, f)) > 0) {
        k->len += (int64_t)r;
        if ((size_t)k->len == cap) k->text = realloc(k->text, cap *= 2);
    }
    if (!k->text) unreachable("out of memory");
    bool err = ferror(f);
    fclose(f);
    if (err) return diag_error(c->m->diag, path, "cannot read the calibration text");
    if (k->len == 0) return diag_error(c->m->diag, path, "the calibration text is empty");
    return true;
}

static void set_elem(IrTensor *t, int64_t i, int64_t v)
{
    switch (t->dtype) {
    case DT_I64: ((int64_t *)t->data)[i] = v; break;
    case DT_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case DT_F32: ((float *)t->data)[i] = (float)v; break;
    case DT_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: unreachable("calibration input of an unexpected type");
    }
}

/* Values for every graph input of one window of tokens text[0..T). */
static bool make_inputs(PassCtx *c, const Calib *k, const uint8_t *text, IrTensor *in)
{
    const IrGraph *g = k->g;
    for (uint32_t i = 0; i < g->ninputs; i++) {
        const IrValue *v = &g->vals[g->inputs[i]];
        const IrType *t = &v->type;
        int64_t dims[IR_MAX_RANK] = {1, k->T};
        bool ids = g->inputs[i] == k->ids, mask = strcmp(v->name, "attention_mask") == 0;
        bool intlike = ir_dtype_is_int(t->dtype) || t->dtype == DT_F32 || t->dtype == DT_BOOL;
        if ((ids || mask) && t->rank == 2 && intlike && (t->dtype != DT_BOOL || mask)) {
            ir_tensor_alloc(&in[i], t->dtype, 2, dims);
            for (int64_t j = 0; j < k->T; j++) set_elem(&in[i], j, ids ? text[j] + TOKEN_OFFSET : 1);
        } else if (t->rank == 4 && t->dtype == DT_F32 && IR_DIM_IS_CONST(t->dims[1]) && IR_DIM_IS_CONST(t->dims[3])) {
            int64_t pd[4] = {1, t->dims[1], 0, t->dims[3]};   /* past key/values: empty */
            ir_tensor_alloc(&in[i], DT_F32, 4, pd);
        } else if (t->dtype == DT_BOOL && t->rank <= 1 && ir_type_numel(t) == 1) {
            int64_t one[1] = {1};                              /* use_cache_branch: false */
            ir_tensor_alloc(&in[i], DT_BOOL, t->rank, one);
        } else {
            return diag_error(c->m->diag, c->m->path,
                              "calibration: no value for graph input '%s' (bqc feeds input_ids, attention_mask, "
                              "empty past key/values and use_cache_branch)", v->name);
        }
    }
    return true;
}

/* Softmax probabilities of head h for query i over keys 0..T-1, as bqc.Attention computes them. */
static void probs(const IrNode *n, const float *q, const float *kk, int64_t T, int64_t HD, int64_t D, int64_t h,
                  int64_t i, float *row)
{
    float scale = n->attr.attention.scale;
    for (int64_t j = 0; j < T; j++) {
        if (n->attr.attention.causal && j > i) {
            row[j] = -FLT_MAX;
            continue;
        }
        float s = 0;
        for (int64_t d = 0; d < D; d++) s = fmaf(q[i * HD + h * D + d] * scale, kk[j * HD + h * D + d], s);
        row[j] = s;
    }
    bq_softmax_f32(row, 1, T);
}

/* Every stride-th of `runs` runs: at most CALIB_VALUES values of one operand per window. */
static int64_t stride_for(int64_t runs, int64_t k)
{
    int64_t total = runs * k;
    return total > CALIB_VALUES ? (total + CALIB_VALUES - 1) / CALIB_VALUES : 1;
}

static void measure_activation(const Calib *k, Operand *o, IrTensor *vals, void *scratch, float *row)
{
    const IrNode *n = &k->g->nodes[o->mm.node];
    const IrTensor *x = &vals[o->want[0]];
    const float *d = x->data;
    if (n->op == OP_LINEAR) {                 /* X: per token, along K */
        int64_t K = x->dims[x->rank - 1], rows = K ? ir_tensor_numel(x) / K : 0, st = stride_for(rows, K);
        for (int64_t r = 0; r < rows; r += st) add_run(o, d + r * K, K, 1, scratch);
        return;
    }
    int64_t T = x->dims[1], HD = x->dims[2], H = n->attr.attention.num_heads, D = HD / H;
    if (o->mm.kind == PLAN_ATTN_QK) {         /* q or k: per token and head, along D */
        int64_t st = stride_for(T * H, D);
        for (int64_t r = 0; r < T * H; r += st) add_run(o, d + r * D, D, 1, scratch);
    } else if (o->role == PLAN_WEIGHT) {      /* v: per head and channel, along the keys */
        int64_t st = stride_for(HD, T);
        for (int64_t c = 0; c < HD; c += st) add_run(o, d + c, T, HD, scratch);
    } else {                                  /* P: per head and query, along the keys */
        const float *kk = vals[o->want[1]].data;
        int64_t st = stride_for(H * T, T);
        for (int64_t r = 0; r < H * T; r += st) {
            probs(n, d, kk, T, HD, D, r / T, r % T, row);
            add_run(o, row, T, 1, scratch);
        }
    }
}

/* An earlier operand measuring the same values the same way (q/k/v projections share their
 * input), whose statistics this one can copy; -1 if none. */
static int32_t same_as(const Calib *k, const Operand *ops, uint32_t i)
{
    const Operand *o = &ops[i];
    if (k->g->nodes[o->mm.node].op != OP_LINEAR) return -1;
    for (uint32_t j = 0; j < i; j++) {
        const Operand *p = &ops[j];
        if (!p->activation || k->g->nodes[p->mm.node].op != OP_LINEAR || p->want[0] != o->want[0] || p->ncand != o->ncand)
            continue;
        bool same = true;
        for (uint32_t c = 0; c < o->ncand && same; c++) same = ir_format_eq(&p->cand[c], &o->cand[c]);
        if (same) return (int32_t)j;
    }
    return -1;
}

/* The fp32 copy of the graph, the text and the window length; false (reported) on error. */
static bool calib_open(PassCtx *c, Calib *k)
{
    if (!read_text(c, k)) return false;
    k->m = ir_model_clone(c->m);
    k->g = k->m->graph;
    k->ids = ir_value_find(k->g, "input_ids");
    for (uint32_t i = 0; i < k->g->nnodes; i++)   /* the statistics are those of the fp32 model */
        for (int kind = 0; kind < PLAN_NKINDS; kind++)
            for (int r = 0; r < PLAN_NROLES; r++) {
                bq_format *f = plan_format_attr(&k->g->nodes[i], (PlanKind)kind, (PlanRole)r);
                if (f) *f = ir_format_fp32();
            }
    if (k->ids == IR_NONE || k->g->vals[k->ids].kind != IR_VAL_INPUT)
        return diag_error(c->m->diag, c->m->path, "calibration: the model has no graph input 'input_ids'");
    int64_t vocab, ctx = model_context(k->g, k->ids, &vocab);
    if (c->env->calib_seq > 0) ctx = c->env->calib_seq;
    for (int64_t i = 0; vocab > 0 && i < k->len; i++)
        if (k->text[i] + TOKEN_OFFSET >= vocab)
            return diag_error(c->m->diag, c->env->calib_path,
                              "byte 0x%02x at offset %lld is token %d, outside the model's vocabulary of %lld",
                              k->text[i], (long long)i, k->text[i] + TOKEN_OFFSET, (long long)vocab);
    k->T = k->len < ctx ? k->len : ctx;
    return true;
}

/* The values each activation operand needs, and which operands can copy another's statistics. */
static int32_t *calib_wants(Calib *k, Operand *ops, uint32_t nops)
{
    for (uint32_t i = 0; i < nops; i++) {
        if (!ops[i].activation) continue;
        const IrNode *n = &k->g->nodes[ops[i].mm.node];
        IrId v = plan_operand(k->g, &ops[i].mm, ops[i].role);
        ops[i].want[0] = want(k, v != IR_NONE ? v : n->in[0]);     /* P: from q ... */
        if (v == IR_NONE) ops[i].want[1] = want(k, n->in[1]);      /* ... and k */
    }
    int32_t *same = malloc((nops + 1) * sizeof *same);
    if (!same) unreachable("out of memory");
    for (uint32_t i = 0; i < nops; i++) same[i] = ops[i].activation ? same_as(k, ops, i) : -1;
    return same;
}

/* The longest run any operand measures (scratch size). */
static int64_t longest_run(const Calib *k)
{
    int64_t n = k->T;
    for (uint32_t i = 0; i < k->g->nvals; i++) {
        const IrType *t = &k->g->vals[i].type;
        if (t->rank > 0 && IR_DIM_IS_CONST(t->dims[t->rank - 1]) && t->dims[t->rank - 1] > n) n = t->dims[t->rank - 1];
    }
    return n;
}

/* Runs the fp32 copy over the calibration windows, accumulating every activation operand. */
static bool calibrate(PassCtx *c, Operand *ops, uint32_t nops)
{
    Calib k = {0};
    bool ok = calib_open(c, &k);
    int64_t maxw = c->env->calib_windows > 0 ? c->env->calib_windows : DEFAULT_WINDOWS;
    int64_t nwin = ok ? k.len / k.T : 0;
    nwin = nwin > maxw ? maxw : nwin < 1 ? 1 : nwin;
    int32_t *same = ok ? calib_wants(&k, ops, nops) : NULL;
    IrTensor *in = ok ? calloc(k.g->ninputs + 1, sizeof *in) : NULL, *out = ok ? calloc(k.nwant + 1, sizeof *out) : NULL;
    bq_format fp32 = ir_format_fp32();
    void *scratch = ok ? malloc(plan_qstats_scratch(&fp32, longest_run(&k))) : NULL;
    float *row = ok ? malloc((size_t)k.T * sizeof *row) : NULL;
    if (ok && (!in || !out || !scratch || !row)) unreachable("out of memory");
    IrRunOptions ro = {.n_threads = 1};
    for (int64_t w = 0; ok && w < nwin; w++) {
        int64_t start = nwin > 1 ? w * ((k.len - k.T) / (nwin - 1)) : 0;   /* spread over the text */
        ok = make_inputs(c, &k, k.text + start, in) &&
             ir_eval(k.g, k.g->inputs, in, k.g->ninputs, k.want, out, k.nwant, &ro);
        for (uint32_t i = 0; ok && i < nops; i++)
            if (ops[i].activation && same[i] < 0) measure_activation(&k, &ops[i], out, scratch, row);
        for (uint32_t i = 0; i < k.g->ninputs; i++) ir_tensor_free(&in[i]);
        for (uint32_t i = 0; i < k.nwant; i++) ir_tensor_free(&out[i]);
        if (ok && c->env->progress) c->env->progress(c->env->progress_ud, "calibration windows", w + 1, nwin);
    }
    for (uint32_t i = 0; ok && i < nops; i++)
        if (same[i] >= 0) memcpy(ops[i].st, ops[same[i]].st, sizeof ops[i].st);
    if (ok && c->env->report) c->env->report->calib_tokens = nwin * k.T;
    free(same);
    free(in);
    free(out);
    free(scratch);
    free(row);
    free(k.text);
    if (k.m) ir_model_destroy(k.m);
    return ok;
}

/* ---- the choice ---- */

static uint32_t choose(const Operand *o, double target, bool *met)
{
    for (uint32_t i = o->ncand; i-- > 0;)
        if (plan_qstats_sqnr_db(&o->st[i]) >= target) return *met = true, i;
    *met = false;
    uint32_t best = o->ncand - 1;   /* no statistics at all: the largest block */
    double bs = -INFINITY;
    for (uint32_t i = o->ncand; i-- > 0;) {
        double s = plan_qstats_sqnr_db(&o->st[i]);
        if (s > bs) bs = s, best = i;
    }
    return best;
}

/* The block of a product whose two operands are both auto (see the top of the file). */
static bool pair(PassCtx *c, Operand *a, Operand *b, double target)
{
    int ia = -1, ib = -1;
    bool met = false;
    double best = -INFINITY;
    for (uint32_t i = 0; i < a->ncand; i++)
        for (uint32_t j = 0; j < b->ncand; j++) {
            if (a->cand[i].block != b->cand[j].block) continue;
            double sa = plan_qstats_sqnr_db(&a->st[i]), sb = plan_qstats_sqnr_db(&b->st[j]);
            bool m = sa >= target && sb >= target;
            double worse = sa < sb ? sa : sb;   /* candidates ascend: a later one is larger */
            if (m || (!met && (ia < 0 || worse >= best))) {
                ia = (int)i, ib = (int)j, met = m;
                best = worse;
            }
        }
    if (ia < 0) {
        char fa[64], fb[64];
        return ir_node_error(c->g, a->mm.node,
                             "the %s%s format %s and the %s format %s have 'auto' blocks but no candidate block in "
                             "common: the two operands of a product need the same block",
                             what(a), plan_role_name(a->role), fmt_name(&a->fmt, fa, sizeof fa), plan_role_name(b->role),
                             fmt_name(&b->fmt, fb, sizeof fb));
    }
    a->pick = ia, b->pick = ib;
    a->pick_met = b->pick_met = met;
    return true;
}

/* Pairs the auto operands of every product (Operand.pick); the rest choose alone. */
static bool pair_products(PassCtx *c, Operand *ops, uint32_t n)
{
    double target = c->env->plan ? c->env->plan->target_sqnr_db : PLAN_DEFAULT_TARGET_DB;
    bool ok = true;
    for (uint32_t i = 0; i < n; i++) ops[i].pick = -1;
    for (uint32_t i = 0; ok && i < n; i++)
        for (uint32_t j = i + 1; ok && j < n; j++)
            if (ops[i].is_auto && ops[j].is_auto && ops[i].mm.node == ops[j].mm.node && ops[i].mm.kind == ops[j].mm.kind)
                ok = pair(c, &ops[i], &ops[j], target);
    return ok;
}

static void settle(PassCtx *c, Operand *o)
{
    IrNode *nd = &c->g->nodes[o->mm.node];
    double target = c->env->plan ? c->env->plan->target_sqnr_db : PLAN_DEFAULT_TARGET_DB;
    bool met = o->pick_met;
    uint32_t pick = !o->is_auto ? 0 : o->pick >= 0 ? (uint32_t)o->pick : choose(o, target, &met);
    if (o->is_auto) {
        *plan_format_attr(nd, o->mm.kind, o->role) = o->cand[pick];
        c->changed++;
    }
    if (!c->env->report) return;
    PlanReportRow *row = plan_report_row(c->env->report, nd->name ? nd->name : "", o->mm.kind, o->role);
    row->variance = plan_qstats_variance(&o->st[0]);
    row->sqnr_db = plan_qstats_sqnr_db(&o->st[pick]);
    row->nvalues = o->st[0].n;
    row->calibrated = o->activation;
    if (!o->is_auto) return;
    row->ev.ncand = o->ncand;
    for (uint32_t i = 0; i < o->ncand; i++) {
        row->ev.cand[i] = o->cand[i].block;
        row->ev.sqnr_db[i] = plan_qstats_sqnr_db(&o->st[i]);
    }
    row->ev.chosen = o->cand[pick].block;
    row->ev.met = met;
    row->ev.target_db = target;
}

bool pass_block_size(PassCtx *c)
{
    Operand *ops;
    uint32_t n;
    bool ok = collect(c, &ops, &n), calib = false;
    uint32_t nweights = 0, done = 0;
    for (uint32_t i = 0; i < n; i++) nweights += !ops[i].activation;
    for (uint32_t i = 0; ok && i < n; i++) {
        Operand *o = &ops[i];
        if (!o->activation) {
            ok = measure_weight(c, o);
            if (ok && c->env->progress) c->env->progress(c->env->progress_ud, "block-size weights", ++done, nweights);
        } else if (c->env->calib_path) calib = true;
        else if (o->is_auto) {
            char fn[64];
            ok = ir_node_error(c->g, o->mm.node,
                               "the %s%s format %s has an 'auto' block, which needs activation statistics: give a "
                               "calibration text with --calib FILE",
                               what(o), plan_role_name(o->role), fmt_name(&o->fmt, fn, sizeof fn));
        }
    }
    ok = ok && (!calib || calibrate(c, ops, n)) && pair_products(c, ops, n);
    for (uint32_t i = 0; ok && i < n; i++)
        if (!ops[i].activation || c->env->calib_path) settle(c, &ops[i]);
    free(ops);
    return ok;
}
