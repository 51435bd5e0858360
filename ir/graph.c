/* graph.c — models, graphs, values and nodes: construction, rewiring, DCE, cloning.
 *
 * Values and nodes are flat malloc'd arrays indexed by 32-bit ids; operand arrays, names and
 * folded constants live in the model's arena. Weights are never copied: constants point into
 * mmapped files (recorded in model->files so the printer can name them) or into the arena.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir.h"

#define GROW(arr, n, cap)                                                  \
    do {                                                                   \
        if ((n) == (cap)) {                                                \
            size_t c_ = (cap) ? (size_t)(cap) * 2 : 16;                    \
            void *p_ = realloc((arr), c_ * sizeof *(arr));                 \
            if (!p_) unreachable("out of memory");                         \
            (arr) = p_;                                                    \
            (cap) = (uint32_t)c_;                                          \
        }                                                                  \
    } while (0)

/* ---- models ---- */

IrModel *ir_model_create(Diag *diag, const char *path)
{
    IrModel *m = calloc(1, sizeof *m);
    if (!m) unreachable("out of memory");
    m->arena = arena_create();
    m->diag = diag;
    m->path = arena_strdup(m->arena, path ? path : "<memory>");
    const char *slash = path ? strrchr(path, '/') : NULL;
    m->dir = slash ? arena_strndup(m->arena, path, (size_t)(slash - path)) : ".";
    return m;
}

static void graph_free(IrGraph *g)
{
    if (!g) return;
    for (uint32_t i = 0; i < g->nsubs; i++) graph_free(g->subs[i]);
    free(g->vals);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->subs);
    free(g);
}

void ir_model_destroy(IrModel *m)
{
    if (!m) return;
    graph_free(m->graph);
    for (uint32_t i = 0; i < m->nfiles && !m->files_borrowed; i++)
        if (m->files[i].size) munmap((void *)m->files[i].base, m->files[i].size);
    free(m->files);
    free(m->dims.poly);
    if (m->frontend_free) m->frontend_free(m->frontend);
    if (m->exec_cache_free) m->exec_cache_free(m->exec_cache);
    arena_destroy(m->arena);
    free(m);
}

int ir_model_map_file(IrModel *m, const char *path, const char *where)
{
    char abs[PATH_MAX];
    if (!realpath(path, abs))
        return diag_error(m->diag, where, "cannot open '%s': %s", path, strerror(errno)), -1;
    for (uint32_t i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].path, abs) == 0) return (int)i;
    int fd = open(abs, O_RDONLY);
    if (fd < 0) return diag_error(m->diag, where, "cannot open '%s': %s", path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return diag_error(m->diag, where, "'%s' is not a regular file", path), -1;
    }
    void *base = NULL;
    if (st.st_size > 0) {
        base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (base == MAP_FAILED) {
            close(fd);
            return diag_error(m->diag, where, "cannot map '%s': %s", path, strerror(errno)), -1;
        }
    }
    close(fd);
    GROW(m->files, m->nfiles, m->capfiles);
    m->files[m->nfiles] = (IrFile){arena_strdup(m->arena, abs), base, (size_t)st.st_size};
    return (int)m->nfiles++;
}

static IrGraph *graph_clone(IrModel *nm, const IrGraph *g, IrGraph *parent)
{
    IrGraph *c = calloc(1, sizeof *c);
    if (!c) unreachable("out of memory");
    *c = *g;
    c->model = nm;
    c->parent = parent;
#define DUP(field, n)                                                          \
    do {                                                                       \
        c->field = NULL;                                                       \
        if (g->n) {                                                            \
            c->field = malloc((size_t)g->n * sizeof *g->field);                \
            if (!c->field) unreachable("out of memory");                       \
            memcpy(c->field, g->field, (size_t)g->n * sizeof *g->field);       \
        }                                                                      \
    } while (0)
    DUP(vals, nvals);
    DUP(nodes, nnodes);
    DUP(inputs, ninputs);
    DUP(outputs, noutputs);
    DUP(subs, nsubs);
#undef DUP
    c->capvals = g->nvals;
    c->capnodes = g->nnodes;
    c->capinputs = g->ninputs;
    c->capoutputs = g->noutputs;
    c->capsubs = g->nsubs;
    /* Operand arrays are rewired in place by passes, so each clone owns its own. */
    for (uint32_t i = 0; i < c->nnodes; i++) {
        IrNode *n = &c->nodes[i];
        n->in = arena_memdup(nm->arena, n->in, n->nin * sizeof(IrId));
        n->out = arena_memdup(nm->arena, n->out, n->nout * sizeof(IrId));
    }
    for (uint32_t i = 0; i < c->nsubs; i++) c->subs[i] = graph_clone(nm, g->subs[i], c);
    return c;
}

IrModel *ir_model_clone(const IrModel *m)
{
    IrModel *c = calloc(1, sizeof *c);
    if (!c) unreachable("out of memory");
    *c = *m;
    c->arena = arena_create();
    /* The clone sees the same mapped files (so constants still print as file(...)), but
     * the mappings stay owned by the source. */
    c->files = NULL;
    c->capfiles = c->nfiles;
    c->files_borrowed = true;
    if (m->nfiles) {
        c->files = malloc(m->nfiles * sizeof *c->files);
        if (!c->files) unreachable("out of memory");
        memcpy(c->files, m->files, m->nfiles * sizeof *c->files);
    }
    c->frontend = NULL;
    c->frontend_free = NULL;
    c->exec_cache = NULL;
    c->exec_cache_free = NULL;
    c->dims.poly = malloc((m->dims.npoly ? m->dims.npoly : 1) * sizeof(IrDimPoly));
    if (!c->dims.poly) unreachable("out of memory");
    if (m->dims.npoly) memcpy(c->dims.poly, m->dims.poly, m->dims.npoly * sizeof(IrDimPoly));
    c->dims.cappoly = m->dims.npoly ? m->dims.npoly : 1;
    c->graph = m->graph ? graph_clone(c, m->graph, NULL) : NULL;
    return c;
}

/* ---- graphs ---- */

IrGraph *ir_graph_create(IrModel *m, IrGraph *parent, const char *name)
{
    IrGraph *g = calloc(1, sizeof *g);
    if (!g) unreachable("out of memory");
    g->model = m;
    g->parent = parent;
    g->name = arena_strdup(m->arena, name ? name : "main");
    return g;
}

IrId ir_graph_add_sub(IrGraph *g, IrGraph *sub)
{
    GROW(g->subs, g->nsubs, g->capsubs);
    sub->parent = g;
    g->subs[g->nsubs] = sub;
    return g->nsubs++;
}

/* ---- values ---- */

IrId ir_value_add(IrGraph *g, const char *name, IrValKind kind, const IrType *t)
{
    GROW(g->vals, g->nvals, g->capvals);
    IrId id = g->nvals++;
    IrValue *v = &g->vals[id];
    memset(v, 0, sizeof *v);
    v->name = name ? arena_strdup(g->model->arena, name) : arena_printf(g->model->arena, "v%u", id);
    v->kind = kind;
    v->def = IR_NONE;
    if (t) v->type = *t;
    else v->type.rank = -1;
    return id;
}

IrId ir_input_add(IrGraph *g, const char *name, const IrType *t)
{
    IrId v = ir_value_add(g, name, IR_VAL_INPUT, t);
    GROW(g->inputs, g->ninputs, g->capinputs);
    g->inputs[g->ninputs++] = v;
    return v;
}

IrId ir_const_add(IrGraph *g, const char *name, const IrType *t, const void *data, uint64_t nbytes)
{
    IrId v = ir_value_add(g, name, IR_VAL_CONST, t);
    g->vals[v].data = data;
    g->vals[v].nbytes = nbytes;
    return v;
}

IrId ir_const_scalar_i64(IrGraph *g, const char *name, int64_t x)
{
    IrType t = {.dtype = DT_I64, .rank = 0};
    return ir_const_add(g, ir_unique_name(g, name), &t, arena_memdup(g->model->arena, &x, sizeof x), sizeof x);
}

IrId ir_const_scalar_f32(IrGraph *g, const char *name, float x)
{
    IrType t = {.dtype = DT_F32, .rank = 0};
    return ir_const_add(g, ir_unique_name(g, name), &t, arena_memdup(g->model->arena, &x, sizeof x), sizeof x);
}

void ir_output_add(IrGraph *g, IrId v)
{
    GROW(g->outputs, g->noutputs, g->capoutputs);
    g->outputs[g->noutputs++] = v;
}

IrId ir_value_find(const IrGraph *g, const char *name)
{
    for (uint32_t i = 0; i < g->nvals; i++)
        if (strcmp(g->vals[i].name, name) == 0) return i;
    return IR_NONE;
}

const char *ir_unique_name(IrGraph *g, const char *base)
{
    if (ir_value_find(g, base) == IR_NONE) return arena_strdup(g->model->arena, base);
    for (unsigned k = 2;; k++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s_%u", base, k);
        if (ir_value_find(g, buf) == IR_NONE) return arena_strdup(g->model->arena, buf);
    }
}

/* ---- nodes ---- */

IrId ir_node_insert(IrGraph *g, uint32_t pos, IrOp op, const char *name, const IrId *in, uint32_t nin,
                    uint32_t nout, const char *const *out_names)
{
    Arena *a = g->model->arena;
    GROW(g->nodes, g->nnodes, g->capnodes);
    if (pos > g->nnodes) pos = g->nnodes;
    /* Shifting nodes renumbers them: fix the def links of the moved nodes' outputs. */
    memmove(&g->nodes[pos + 1], &g->nodes[pos], (g->nnodes - pos) * sizeof *g->nodes);
    g->nnodes++;
    for (uint32_t i = pos + 1; i < g->nnodes; i++)
        for (uint32_t k = 0; k < g->nodes[i].nout; k++)
            if (g->nodes[i].out[k] != IR_NONE) g->vals[g->nodes[i].out[k]].def = i;
    IrNode *n = &g->nodes[pos];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->name = arena_strdup(a, name ? name : "");
    n->nin = nin;
    n->nout = nout;
    n->in = arena_alloc(a, (nin ? nin : 1) * sizeof(IrId));
    if (nin) memcpy(n->in, in, nin * sizeof(IrId));
    n->out = arena_alloc(a, (nout ? nout : 1) * sizeof(IrId));
    ir_attr_defaults(op, &n->attr);
    for (uint32_t k = 0; k < nout; k++) {
        const char *nm = out_names && out_names[k] ? out_names[k] : NULL;
        IrId v = ir_value_add(g, nm, IR_VAL_NODE, NULL);
        g->vals[v].def = pos;
        g->nodes[pos].out[k] = v;  /* re-fetch: ir_value_add may not move nodes, but be plain */
    }
    return pos;
}

IrId ir_node_add(IrGraph *g, IrOp op, const char *name, const IrId *in, uint32_t nin, uint32_t nout,
                 const char *const *out_names)
{
    return ir_node_insert(g, g->nnodes, op, name, in, nin, nout, out_names);
}

void ir_replace_uses(IrGraph *g, IrId from, IrId to)
{
    for (uint32_t i = 0; i < g->nnodes; i++) {
        IrNode *n = &g->nodes[i];
        for (uint32_t k = 0; k < n->nin; k++)
            if (n->in[k] == from) n->in[k] = to;
    }
    for (uint32_t k = 0; k < g->noutputs; k++)
        if (g->outputs[k] == from) g->outputs[k] = to;
}

void ir_graph_compact(IrGraph *g)
{
    /* Two sweeps: a fused node may have taken over a value a dead node still lists, so
     * dead nodes' links are cleared before live nodes' links are set. */
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i].dead)
            for (uint32_t k = 0; k < g->nodes[i].nout; k++)
                if (g->nodes[i].out[k] != IR_NONE && g->vals[g->nodes[i].out[k]].def == i)
                    g->vals[g->nodes[i].out[k]].def = IR_NONE;
    uint32_t j = 0;
    for (uint32_t i = 0; i < g->nnodes; i++) {
        if (g->nodes[i].dead) continue;
        if (j != i) g->nodes[j] = g->nodes[i];
        for (uint32_t k = 0; k < g->nodes[j].nout; k++)
            if (g->nodes[j].out[k] != IR_NONE) g->vals[g->nodes[j].out[k]].def = j;
        j++;
    }
    g->nnodes = j;
}

uint32_t *ir_use_counts(const IrGraph *g)
{
    uint32_t *uses = calloc(g->nvals ? g->nvals : 1, sizeof *uses);
    if (!uses) unreachable("out of memory");
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const IrNode *n = &g->nodes[i];
        if (n->dead) continue;
        for (uint32_t k = 0; k < n->nin; k++)
            if (n->in[k] != IR_NONE) uses[n->in[k]]++;
    }
    for (uint32_t k = 0; k < g->noutputs; k++) uses[g->outputs[k]]++;
    return uses;
}

uint32_t ir_dce(IrGraph *g)
{
    uint32_t *uses = ir_use_counts(g);
    uint32_t removed = 0;
    /* Reverse topological order: one sweep removes whole dead chains. */
    for (uint32_t i = g->nnodes; i-- > 0;) {
        IrNode *n = &g->nodes[i];
        if (n->dead) continue;
        bool live = false;
        for (uint32_t k = 0; k < n->nout && !live; k++) live = n->out[k] != IR_NONE && uses[n->out[k]] > 0;
        if (live) continue;
        n->dead = true;
        removed++;
        for (uint32_t k = 0; k < n->nin; k++)
            if (n->in[k] != IR_NONE) uses[n->in[k]]--;
    }
    for (uint32_t v = 0; v < g->nvals; v++)
        if (g->vals[v].kind == IR_VAL_CONST && uses[v] == 0) {
            g->vals[v].kind = IR_VAL_DEAD;
            g->vals[v].data = NULL;
        }
    free(uses);
    if (removed) ir_graph_compact(g);
    return removed;
}

/* ---- types and messages ---- */

int64_t ir_type_numel(const IrType *t)
{
    if (t->rank < 0) return -1;
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (!IR_DIM_IS_CONST(t->dims[i]) || t->dims[i] < 0) return -1;
        if (__builtin_mul_overflow(n, t->dims[i], &n)) return -1;
    }
    return n;
}

bool ir_type_is_concrete(const IrType *t) { return ir_type_numel(t) >= 0; }

int ir_type_format(const IrModel *m, const IrType *t, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s[", ir_dtype_name(t->dtype));
    if (t->rank < 0) {
        n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, "*");
    } else {
        for (int i = 0; i < t->rank; i++) {
            if (i) n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, ", ");
            n += (size_t)ir_dim_format(m, t->dims[i], buf + (n < size ? n : size), n < size ? size - n : 0);
        }
    }
    n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, "]");
    return (int)n;
}

const char *ir_where_node(const IrGraph *g, IrId node, char *buf, size_t size)
{
    const IrNode *n = &g->nodes[node];
    if (n->name && *n->name)
        snprintf(buf, size, "%s: node '%s' (%s)", g->model->path, n->name, ir_ops[n->op].name);
    else
        snprintf(buf, size, "%s: node #%u (%s)", g->model->path, node, ir_ops[n->op].name);
    return buf;
}

bool ir_node_error(const IrGraph *g, IrId node, const char *fmt, ...)
{
    char where[768];
    ir_where_node(g, node, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(g->model->diag, DIAG_ERROR, where, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- constant payloads ---- */

double ir_const_elem_f64(const IrValue *v, int64_t i)
{
    const void *p = v->data;
    switch (v->type.dtype) {
    case DT_F32: { float x; memcpy(&x, (const float *)p + i, sizeof x); return x; }
    case DT_F64: { double x; memcpy(&x, (const double *)p + i, sizeof x); return x; }
    case DT_I64: { int64_t x; memcpy(&x, (const int64_t *)p + i, sizeof x); return (double)x; }
    case DT_I32: { int32_t x; memcpy(&x, (const int32_t *)p + i, sizeof x); return x; }
    case DT_U32: { uint32_t x; memcpy(&x, (const uint32_t *)p + i, sizeof x); return x; }
    case DT_U64: { uint64_t x; memcpy(&x, (const uint64_t *)p + i, sizeof x); return (double)x; }
    case DT_I16: { int16_t x; memcpy(&x, (const int16_t *)p + i, sizeof x); return x; }
    case DT_U16: { uint16_t x; memcpy(&x, (const uint16_t *)p + i, sizeof x); return x; }
    case DT_I8: return ((const int8_t *)p)[i];
    case DT_U8: case DT_BOOL: return ((const uint8_t *)p)[i];
    default: return 0;
    }
}

bool ir_const_i64(const IrGraph *g, IrId id, int64_t *out, int64_t max)
{
    if (!ir_is_const(g, id)) return false;
    const IrValue *v = &g->vals[id];
    int64_t n = ir_type_numel(&v->type);
    if (n < 0 || n > max || !ir_dtype_is_int(v->type.dtype)) return false;
    for (int64_t i = 0; i < n; i++) {
        if (v->type.dtype == DT_I64) memcpy(&out[i], (const int64_t *)v->data + i, sizeof *out);
        else out[i] = (int64_t)ir_const_elem_f64(v, i);
    }
    return true;
}
