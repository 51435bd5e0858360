/* gmodel.c — the generated model API (open, close, state size, prefill, decode, reset) from a
 * descriptor (bqcrt_ops.h), for generators that emit machine code rather than C.
 *
 * It is cg_api.c's generated C written once: the state is one block laid out by bq_gm_plan
 * (activation regions of either graph sized for the largest extents the configuration admits,
 * the KV cache and its quantised copy per layer (bq_attention_qcache_bytes of the layer's
 * formats), attention temporaries and scratch, the decoder's token and mask buffers, each
 * 64-byte aligned), so the state size and open can never disagree. The generator passes its
 * descriptor as a constant at every call, so after inlining the optimiser sees every field.
 */
#include <stdlib.h>
#include <string.h>

#include "bqcrt_ops.h"

struct bq_gm {
    bq_weights w;
    bq_pool *pool;
    bq_isa isa;
    bq_gm_config cfg;
    unsigned char *state;          /* activations, KV cache, scratch */
    int own_state;
    int64_t base[2][BQ_GM_MAX_REGIONS], cap[2][BQ_GM_MAX_REGIONS];   /* per graph (run, step) */
    float *kvtmp[2];               /* K and V of attention without past (run) */
    float *scratch;                /* attention scratch */
    int64_t *ids, *ones;           /* decoder: token ids of a call, the all-ones mask */
    int64_t n_past;                /* decoder: tokens in the cache */
    unsigned char **qkv;           /* per layer: its keys and values quantised (after kv[]) */
    float *kv[];                   /* per layer: K and V cache [heads, max_ctx, head_dim] */
};

typedef struct Layout {
    int64_t base[2][BQ_GM_MAX_REGIONS], cap[2][BQ_GM_MAX_REGIONS];
    size_t kv, qkv, kvtmp, scratch, ids, ones, total;   /* qkv: the first layer's; the rest follow */
} Layout;

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

static size_t plan_graph(const bq_gm_graph *g, const bq_gm_config *c, int which, Layout *L)
{
    size_t at = 0;
    if (!g->fn) return 0;
    int64_t sym[64], unit[BQ_GM_MAX_REGIONS];
    for (int64_t s = 0; s < g->nsyms && s < 64; s++) sym[s] = g->sym_batch[s] ? c->max_batch : c->max_ctx;
    g->units(sym, unit);
    for (int64_t r = 0; r < g->nregions; r++) {
        L->cap[which][r] = unit[r];
        L->base[which][r] = (int64_t)at;
        at += align64((size_t)g->region_units[r] * (size_t)unit[r]);
    }
    return at;
}

static size_t kvtmp_bytes(const bq_gm_desc *d, const bq_gm_config *c)
{
    return align64((size_t)c->max_batch * (size_t)c->max_ctx * (size_t)d->attn_width * sizeof(float));
}

static size_t qkv_bytes(const bq_gm_desc *d, const bq_gm_config *c, int64_t layer)
{
    if (!d->layer_fmt) return 0;
    return align64(bq_attention_qcache_bytes(&d->layer_fmt[layer], 1, d->heads, c->max_ctx, d->head_dim));
}

static void plan(const bq_gm_desc *d, const bq_gm_config *c, Layout *L)
{
    memset(L, 0, sizeof *L);
    size_t run = plan_graph(&d->run, c, 0, L), step = plan_graph(&d->step, c, 1, L);
    size_t at = align64(run > step ? run : step);
    L->kv = at;
    at += align64((size_t)d->kv_slots * (size_t)d->heads * (size_t)c->max_ctx * (size_t)d->head_dim * sizeof(float));
    L->qkv = at;
    for (int64_t i = 0; i < d->kv_slots / 2; i++) at += qkv_bytes(d, c, i);
    L->kvtmp = at;
    at += 2 * kvtmp_bytes(d, c);
    L->scratch = at;
    at += align64((size_t)bq_attention_scratch_threads(c->max_ctx, c->max_ctx, d->scratch_head_dim, c->n_threads) *
                  sizeof(float));
    L->ids = at;
    at += align64((size_t)c->max_ctx * sizeof(int64_t));
    L->ones = at;
    at += align64((size_t)c->max_ctx * sizeof(int64_t));
    L->total = at;
}

static bq_gm_config defaults(const bq_gm_config *cfg)
{
    bq_gm_config c = {256, 1, 1, NULL};
    if (cfg) {
        c = *cfg;
        if (c.max_ctx == 0) c.max_ctx = 256;
        if (c.max_batch == 0) c.max_batch = 1;
        if (c.n_threads == 0) c.n_threads = 1;
    }
    return c;
}

size_t bq_gm_state_bytes(const bq_gm_desc *d, const bq_gm_config *cfg)
{
    bq_gm_config c = defaults(cfg);
    Layout L;
    plan(d, &c, &L);
    return L.total;
}

bq_status bq_gm_open(const bq_gm_desc *d, bq_gm **out, const char *weights_path, const bq_gm_config *cfg)
{
    if (!out || !weights_path) return BQ_ERR_ARG;
    *out = NULL;
    bq_gm_config c = defaults(cfg);
    if (c.max_ctx < 1 || c.max_batch < 1 || c.n_threads < 1 || c.n_threads > 256) return BQ_ERR_ARG;
    if (c.state && (uintptr_t)c.state % 64 != 0) return BQ_ERR_ARG;
    size_t slots = (size_t)(d->kv_slots ? d->kv_slots : 1);
    bq_gm *m = calloc(1, sizeof *m + slots * sizeof(float *) + (slots / 2 + 1) * sizeof(unsigned char *));
    if (!m) return BQ_ERR_NOMEM;
    m->qkv = (unsigned char **)(void *)(m->kv + slots);
    m->cfg = c;
    bq_status s = bq_weights_open(weights_path, d->layout_hash, d->weights_bytes, &m->w);
    if (s != BQ_OK) {
        free(m);
        return s;
    }
    Layout L;
    plan(d, &c, &L);
    m->state = c.state ? (unsigned char *)c.state : (unsigned char *)aligned_alloc(64, L.total);
    m->own_state = !c.state;
    if (!m->state || bq_pool_create(c.n_threads, &m->pool) != BQ_OK) {
        bq_gm_close(m);
        return BQ_ERR_NOMEM;
    }
    memcpy(m->base, L.base, sizeof m->base);
    memcpy(m->cap, L.cap, sizeof m->cap);
    for (int64_t i = 0; i < d->kv_slots; i++)
        m->kv[i] = (float *)(m->state + L.kv) + (size_t)i * (size_t)d->heads * (size_t)c.max_ctx * (size_t)d->head_dim;
    for (int64_t i = 0, at = (int64_t)L.qkv; i < d->kv_slots / 2; at += (int64_t)qkv_bytes(d, &c, i), i++)
        m->qkv[i] = m->state + at;
    m->kvtmp[0] = (float *)(m->state + L.kvtmp);
    m->kvtmp[1] = (float *)(m->state + L.kvtmp + kvtmp_bytes(d, &c));
    m->scratch = (float *)(m->state + L.scratch);
    m->ids = (int64_t *)(m->state + L.ids);
    m->ones = (int64_t *)(m->state + L.ones);
    for (int64_t i = 0; i < c.max_ctx; i++) m->ones[i] = 1;
    m->isa = bq_isa_detect();
    *out = m;
    return BQ_OK;
}

void bq_gm_close(bq_gm *m)
{
    if (!m) return;
    bq_pool_destroy(m->pool);
    bq_weights_close(&m->w);
    if (m->own_state) free(m->state);
    free(m);
}

bq_status bq_gm_prefill(const bq_gm_desc *d, bq_gm *m, const int32_t *tokens, int64_t n, float *logits)
{
    if (!m || !tokens || !logits || n < 1) return BQ_ERR_ARG;
    if (!d->step.fn) return BQ_ERR_ARG;
    if (n > m->cfg.max_ctx - m->n_past) return BQ_ERR_CAPACITY;
    for (int64_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= d->vocab) return BQ_ERR_ARG;
        m->ids[i] = tokens[i];
    }
    int64_t sym[64];
    for (int64_t i = 0; i < d->step.nsyms && i < 64; i++) sym[i] = -1;
    sym[d->seq_sym] = n;
    sym[d->past_sym] = m->n_past;
    const void *in[64] = {0};
    void *out[64] = {0};
    in[0] = m->ids;
    in[d->mask_input] = m->ones;
    out[0] = logits;
    bq_status s = d->step.fn(m, sym, in, out);
    if (s == BQ_OK) m->n_past += n;
    return s;
}

bq_status bq_gm_decode(const bq_gm_desc *d, bq_gm *m, int32_t token, float *logits)
{
    return bq_gm_prefill(d, m, &token, 1, logits);
}

void bq_gm_reset(bq_gm *m)
{
    if (m) m->n_past = 0;
}

int64_t bq_gm_n_past(const bq_gm *m) { return m ? m->n_past : 0; }

const unsigned char *bq_gm_weights(const bq_gm *m) { return m->w.base; }
unsigned char *bq_gm_region(const bq_gm *m, int graph, int r) { return m->state + m->base[graph][r]; }
int64_t bq_gm_region_cap(const bq_gm *m, int graph, int r) { return m->cap[graph][r]; }
bq_isa bq_gm_isa(const bq_gm *m) { return m->isa; }
bq_pool *bq_gm_pool(const bq_gm *m) { return m->pool; }
float *bq_gm_kv(const bq_gm *m, int slot) { return m->kv[slot]; }
void *bq_gm_qkv(const bq_gm *m, int layer) { return m->qkv[layer]; }
float *bq_gm_kvtmp(const bq_gm *m, int which) { return m->kvtmp[which]; }
float *bq_gm_scratch(const bq_gm *m) { return m->scratch; }
int64_t bq_gm_max_ctx(const bq_gm *m) { return m->cfg.max_ctx; }
