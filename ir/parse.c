/* parse.c — the IR text form, reading side (docs/ir.md, "Text form"; print.c is the mirror).
 *
 * A hand-written recursive descent over the tokens of lex.c (one token of lookahead). Everything
 * is resolved as it is read — value names per graph through a hash map (SSA: defined before
 * use), ops through ir_op_from_name, attributes through the ir_attrs schema of their op, dims
 * through the model's dimension table — except If branch references, which may point forward:
 * they are kept as fixups and resolved once every graph is read, walking breadth-first from the
 * main graph so that g->subs comes out in the order print.c prints the graphs.
 *
 * Input is untrusted (hand-written golden tests, fuzzing): every count is bounded, every
 * integer range-checked before conversion, and the first error ("file.ir:12:5: error: ...")
 * stops the parse: after it the lexer's `failed` flag silences the follow-on complaints.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

typedef struct Named { const char *name; size_t pos; } Named;  /* a name and where it was read */
typedef struct PGraph { IrGraph *g; size_t pos; bool attached; } PGraph;
typedef struct Fixup { uint32_t graph; IrId node; size_t offset; Named ref; } Fixup;
typedef struct Unknown { uint64_t n; IrDim d; } Unknown;

typedef struct Parser {
    Lexer lx;
    IrModel *m;
    IrGraph *g;                    /* the graph being read */
    IrId *tab;                     /* its value names: open addressing, IR_NONE = empty */
    uint32_t tabcap, tabn;
    PGraph *graphs; uint32_t ngraphs, capgraphs;
    Fixup *fix; uint32_t nfix, capfix;
    Unknown *unk; uint32_t nunk, capunk;
    Named *outs; uint32_t nouts, capouts;   /* scratch: the current graph's outputs */
    Named *res; uint32_t nres, capres;      /* scratch: the current statement's results */
    IrId *ins; uint32_t nins, capins;       /* scratch: node operands */
    IrType *types; uint32_t ntypes, captypes;
    uint32_t *queue; uint32_t nqueue, capqueue;  /* graphs in attach order */
} Parser;

#define PUSH(arr, n, cap, x)                                                   \
    do {                                                                       \
        if ((n) == (cap)) {                                                    \
            (cap) = (cap) ? (cap) * 2 : 8;                                     \
            void *p_ = realloc((arr), (size_t)(cap) * sizeof *(arr));          \
            if (!p_) unreachable("out of memory");                             \
            (arr) = p_;                                                        \
        }                                                                      \
        (arr)[(n)++] = (x);     /* x must not read n: it is evaluated after ++ */ \
    } while (0)

/* ---- names: values per graph, graphs, symbols ---- */

static uint32_t hash_name(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static IrId lookup(const Parser *p, const char *name)
{
    for (uint32_t i = hash_name(name) & (p->tabcap - 1);; i = (i + 1) & (p->tabcap - 1)) {
        IrId v = p->tab[i];
        if (v == IR_NONE) return IR_NONE;
        if (strcmp(p->g->vals[v].name, name) == 0) return v;
    }
}

static void table_reset(Parser *p, uint32_t cap)
{
    free(p->tab);
    p->tab = malloc(cap * sizeof *p->tab);
    if (!p->tab) unreachable("out of memory");
    memset(p->tab, 0xff, cap * sizeof *p->tab);   /* IR_NONE */
    p->tabcap = cap;
    p->tabn = 0;
}

static void define(Parser *p, IrId v)
{
    if (2 * (p->tabn + 1) > p->tabcap) {
        IrId *old = p->tab;
        uint32_t oldcap = p->tabcap;
        p->tab = NULL;
        table_reset(p, oldcap * 2);
        for (uint32_t i = 0; i < oldcap; i++)
            if (old[i] != IR_NONE) define(p, old[i]);
        free(old);
    }
    uint32_t i = hash_name(p->g->vals[v].name) & (p->tabcap - 1);
    while (p->tab[i] != IR_NONE) i = (i + 1) & (p->tabcap - 1);
    p->tab[i] = v;
    p->tabn++;
}

/* A value name about to be defined; checks it is new. */
static bool new_name(Parser *p, Named *out)
{
    if (p->lx.tok.kind != T_VALUE) return lex_error(&p->lx, p->lx.tok.pos, "expected a value name");
    if (lookup(p, p->lx.s) != IR_NONE) return lex_error(&p->lx, p->lx.tok.pos, "redefinition of %%%s", p->lx.s);
    *out = (Named){arena_strndup(p->m->arena, p->lx.s, p->lx.slen), p->lx.tok.pos};
    lex_next(&p->lx);
    return true;
}

static bool use_value(Parser *p, IrId *out)
{
    if (p->lx.tok.kind == T_IDENT && strcmp(p->lx.s, "_") == 0) {
        *out = IR_NONE;
    } else if (p->lx.tok.kind == T_VALUE) {
        *out = lookup(p, p->lx.s);
        if (*out == IR_NONE) return lex_error(&p->lx, p->lx.tok.pos, "undefined value %%%s", p->lx.s);
    } else {
        return lex_error(&p->lx, p->lx.tok.pos, "expected a value or '_'");
    }
    lex_next(&p->lx);
    return true;
}

/* ---- dims and types ---- */

/* The result of dim arithmetic on known operands is opaque only when it overflowed. */
static bool dim_ok(Parser *p, IrDim d, size_t pos)
{
    IrDimPoly poly;
    if (IR_DIM_IS_CONST(d) || (ir_dim_poly(p->m, d, &poly) && !poly.opaque)) return true;
    return lex_error(&p->lx, pos, "dimension expression out of range");
}

static bool parse_factor(Parser *p, IrDim *out)
{
    size_t pos = p->lx.tok.pos;
    if (p->lx.tok.kind == T_INT) {
        /* A non-negative int64 is always a known dim; signs are the expression's business. */
        return lex_i64(&p->lx, out);
    }
    if (p->lx.tok.kind != T_IDENT && p->lx.tok.kind != T_STRING) return lex_error(&p->lx, pos, "expected a dimension");
    if (ir_dim_sym_index(p->m, p->lx.s, p->lx.slen) < 0) return lex_error(&p->lx, pos, "undeclared symbol '%s'", p->lx.s);
    *out = ir_dim_sym(p->m, p->lx.s);
    lex_next(&p->lx);
    return true;
}

static bool parse_term(Parser *p, IrDim *out)
{
    size_t pos = p->lx.tok.pos;
    if (!parse_factor(p, out)) return false;
    while (lex_accept(&p->lx, '*')) {
        IrDim f;
        if (!parse_factor(p, &f)) return false;
        *out = ir_dim_mul(p->m, *out, f);
        if (!dim_ok(p, *out, pos)) return false;
    }
    return true;
}

/* "?N" (one fresh unknown per distinct N), or a polynomial: terms joined by + and -. */
static bool parse_expr(Parser *p, IrDim *out)
{
    size_t pos = p->lx.tok.pos;
    if (lex_accept(&p->lx, '?')) {
        if (p->lx.tok.kind != T_INT) return lex_error(&p->lx, p->lx.tok.pos, "expected a number after '?'");
        Num n;
        if (!lex_num(&p->lx, &n)) return false;
        for (uint32_t i = 0; i < p->nunk; i++)
            if (p->unk[i].n == n.mag && !n.overflow) return *out = p->unk[i].d, true;
        if (n.overflow) return lex_error(&p->lx, pos, "unknown dimension number out of range");
        *out = ir_dim_fresh(p->m);
        Unknown u = {n.mag, *out};
        PUSH(p->unk, p->nunk, p->capunk, u);
        return true;
    }
    bool neg = lex_accept(&p->lx, '-');
    if (!parse_term(p, out)) return false;
    if (neg && (*out = ir_dim_mul(p->m, *out, -1), !dim_ok(p, *out, pos))) return false;
    for (;;) {
        bool minus = lex_is_punct(&p->lx, '-');
        if (!minus && !lex_is_punct(&p->lx, '+')) return true;
        lex_next(&p->lx);
        IrDim t;
        if (!parse_term(p, &t)) return false;
        *out = minus ? ir_dim_sub(p->m, *out, t) : ir_dim_add(p->m, *out, t);
        if (!dim_ok(p, *out, pos)) return false;
    }
}

/* An extent: "?N", or an expression that is not a negative constant. */
static bool parse_dim(Parser *p, IrDim *out)
{
    size_t pos = p->lx.tok.pos;
    if (!parse_expr(p, out)) return false;
    if (IR_DIM_IS_CONST(*out) && *out < 0) return lex_error(&p->lx, pos, "negative dimension %lld", (long long)*out);
    return true;
}

/* dtype "[" ("*" | dims) "]"; `?` as the dtype (not yet inferred) only where allowed. */
static bool parse_type(Parser *p, IrType *t, bool allow_undef)
{
    memset(t, 0, sizeof *t);
    if (allow_undef && lex_accept(&p->lx, '?')) {
        t->dtype = DT_UNDEF;
    } else {
        if (p->lx.tok.kind != T_IDENT) return lex_error(&p->lx, p->lx.tok.pos, "expected an element type");
        t->dtype = ir_dtype_from_name(p->lx.s, p->lx.slen);
        if (t->dtype == DT_UNDEF) return lex_error(&p->lx, p->lx.tok.pos, "unknown element type '%s'", p->lx.s);
        lex_next(&p->lx);
    }
    if (!lex_expect(&p->lx, '[', "after the element type")) return false;
    if (lex_accept(&p->lx, '*')) {
        t->rank = -1;
        return lex_expect(&p->lx, ']', "after '*'");
    }
    if (lex_accept(&p->lx, ']')) return true;
    for (;;) {
        if (t->rank == IR_MAX_RANK) return lex_error(&p->lx, p->lx.tok.pos, "rank exceeds %d", IR_MAX_RANK);
        if (!parse_dim(p, &t->dims[t->rank++])) return false;
        if (lex_accept(&p->lx, ']')) return true;
        if (!lex_expect(&p->lx, ',', "or ']' in the shape")) return false;
    }
}

/* ---- constants ---- */

static bool parse_list(Parser *p, const IrType *t, IrValue *v)
{
    size_t pos = p->lx.tok.pos, es = ir_dtype_size(t->dtype);
    uint64_t numel = (uint64_t)ir_type_numel(t), count = 0;
    lex_next(&p->lx);
    /* Each element takes at least one byte of text: a longer list cannot be here. */
    unsigned char *buf = numel <= p->lx.len - p->lx.pos ? arena_alloc_aligned(p->m->arena, numel * es + 1, 64) : NULL;
    while (!lex_is_punct(&p->lx, ']')) {
        if (count > 0 && !lex_expect(&p->lx, ',', "or ']' between elements")) return false;
        Num n;
        unsigned char scratch[8];
        if (!lex_num(&p->lx, &n) || !lex_num_store(&p->lx, &n, t->dtype, buf && count < numel ? buf + count * es : scratch))
            return false;
        count++;
    }
    lex_next(&p->lx);
    if (count != numel) {
        char ty[256];
        ir_type_format(p->m, t, ty, sizeof ty);
        return lex_error(&p->lx, pos, "constant %s needs %llu elements, got %llu", ty, (unsigned long long)numel,
                        (unsigned long long)count);
    }
    assert(buf);   /* numel elements fit in the text, so the buffer was made */
    v->data = buf;
    v->nbytes = numel * es;
    return true;
}

/* file("path", offset): bytes borrowed from a mapped file, copied only when misaligned. */
static bool parse_file_ref(Parser *p, const IrType *t, IrValue *v)
{
    lex_next(&p->lx);
    if (!lex_expect(&p->lx, '(', "after 'file'")) return false;
    if (p->lx.tok.kind != T_STRING) return lex_error(&p->lx, p->lx.tok.pos, "expected a file path string");
    size_t pos = p->lx.tok.pos;
    const char *path = p->lx.s[0] == '/' ? arena_strdup(p->m->arena, p->lx.s)
                                      : arena_printf(p->m->arena, "%s/%s", p->m->dir, p->lx.s);
    lex_next(&p->lx);
    if (!lex_expect(&p->lx, ',', "after the file path")) return false;
    size_t offpos = p->lx.tok.pos;
    Num n;
    uint64_t off;
    if (!lex_num(&p->lx, &n) || !lex_num_int(&p->lx, &n, DT_U64, &off) || !lex_expect(&p->lx, ')', "after the file offset")) return false;
    if (p->lx.failed) return false;   /* the lookahead hit an error: report nothing more */
    char where[512];
    lex_where(&p->lx, pos, where, sizeof where);
    int fi = ir_model_map_file(p->m, path, where);
    if (fi < 0) return p->lx.failed = true, false;
    const IrFile *f = &p->m->files[fi];
    uint64_t numel = (uint64_t)ir_type_numel(t), es = ir_dtype_size(t->dtype), nbytes;
    if (__builtin_mul_overflow(numel, es, &nbytes) || off > f->size || nbytes > f->size - off)
        return lex_error(&p->lx, offpos, "%llu bytes at offset %llu are past the end of '%s' (%zu bytes)",
                        (unsigned long long)numel * es, (unsigned long long)off, f->path, f->size);
    if (nbytes == 0) v->data = arena_alloc(p->m->arena, 1);
    else if ((uintptr_t)(f->base + off) % es != 0) v->data = arena_memdup(p->m->arena, f->base + off, nbytes);
    else v->data = f->base + off;
    v->nbytes = nbytes;
    v->file = (uint32_t)fi + 1;
    v->file_offset = off;
    return true;
}

static bool parse_const(Parser *p, const Named *res)
{
    size_t pos = p->lx.tok.pos;
    lex_next(&p->lx);
    if (p->nres != 1 || !res[0].name) return lex_error(&p->lx, pos, "a constant has exactly one result");
    size_t tpos = p->lx.tok.pos;
    IrType t;
    if (!parse_type(p, &t, false)) return false;
    if (ir_type_numel(&t) < 0) return lex_error(&p->lx, tpos, "a constant needs a known shape");
    IrValue v = {0};
    if (lex_is_punct(&p->lx, '[')) {
        if (!parse_list(p, &t, &v)) return false;
    } else if (lex_is_kw(&p->lx, "file")) {
        if (!parse_file_ref(p, &t, &v)) return false;
    } else {
        return lex_error(&p->lx, p->lx.tok.pos, "expected '[' or 'file(' after the constant type");
    }
    IrId id = ir_const_add(p->g, res[0].name, &t, v.data, v.nbytes);
    p->g->vals[id].file = v.file;
    p->g->vals[id].file_offset = v.file_offset;
    define(p, id);
    return true;
}

/* ---- nodes ---- */

static const IrAttrInfo *find_attr(IrOp op, const char *name, unsigned *ordinal)
{
    unsigned k = 0;
    for (size_t i = 0; i < ir_nattrs; i++) {
        if (ir_attrs[i].op != op) continue;
        if (strcmp(ir_attrs[i].name, name) == 0) return *ordinal = k, &ir_attrs[i];
        k++;
    }
    return NULL;
}

static bool parse_attr_value(Parser *p, const IrAttrInfo *ai, IrAttr *attr, IrId node)
{
    char *field = (char *)attr + ai->offset;
    Num n;
    switch (ai->kind) {
    case AK_INT: return lex_num(&p->lx, &n) && lex_num_store(&p->lx, &n, DT_I64, (unsigned char *)field);
    case AK_FLOAT: return lex_num(&p->lx, &n) && lex_num_store(&p->lx, &n, DT_F32, (unsigned char *)field);
    case AK_IGNORE: return lex_num(&p->lx, &n);
    case AK_DTYPE: {
        if (p->lx.tok.kind != T_IDENT) return lex_error(&p->lx, p->lx.tok.pos, "expected an element type");
        int64_t dt = ir_dtype_from_name(p->lx.s, p->lx.slen);
        if (dt == DT_UNDEF) return lex_error(&p->lx, p->lx.tok.pos, "unknown element type '%s'", p->lx.s);
        memcpy(field, &dt, sizeof dt);
        lex_next(&p->lx);
        return true;
    }
    case AK_INTS: {
        IrInts v = {0};
        if (!lex_expect(&p->lx, '[', "to start a list of integers")) return false;
        while (!lex_accept(&p->lx, ']')) {
            if (v.n > 0 && !lex_expect(&p->lx, ',', "or ']' between integers")) return false;
            if (v.n == IR_MAX_RANK) return lex_error(&p->lx, p->lx.tok.pos, "at most %d integers", IR_MAX_RANK);
            if (!lex_i64(&p->lx, &v.v[v.n++])) return false;
        }
        memcpy(field, &v, sizeof v);
        return true;
    }
    case AK_SCALAR: {
        IrScalar s = {0};
        if (p->lx.tok.kind != T_IDENT || !(s.dtype = ir_dtype_from_name(p->lx.s, p->lx.slen)))
            return lex_error(&p->lx, p->lx.tok.pos, "expected an element type and a value");
        lex_next(&p->lx);
        union { float f; double d; uint64_t u; } x = {0};
        IrDType as = s.dtype == DT_F64 ? DT_F64 : ir_dtype_is_float(s.dtype) ? DT_F32 : s.dtype;
        if (!lex_num(&p->lx, &n)) return false;
        if (ir_dtype_is_float(as) ? !lex_num_float(&p->lx, &n, as, &x) : !lex_num_int(&p->lx, &n, as, &x.u)) return false;
        if (as == DT_F64) s.f = x.d;
        else if (as == DT_F32) s.f = x.f;
        else memcpy(&s.i, &x.u, sizeof s.i);
        memcpy(field, &s, sizeof s);
        return true;
    }
    case AK_FORMAT: {
        if (p->lx.tok.kind != T_STRING) return lex_error(&p->lx, p->lx.tok.pos, "expected a number format \"bfp6/16\"");
        bq_format f;
        char why[256];
        if (bq_format_parse(p->lx.s, p->lx.slen, 1, &f, why, sizeof why) != BQ_OK)
            return lex_error(&p->lx, p->lx.tok.pos, "%s", why);
        memcpy(field, &f, sizeof f);
        lex_next(&p->lx);
        return true;
    }
    case AK_GRAPH: {
        if (p->lx.tok.kind != T_GRAPH) return lex_error(&p->lx, p->lx.tok.pos, "expected a graph reference '@name'");
        Fixup fx = {p->ngraphs - 1, node, ai->offset, {arena_strndup(p->m->arena, p->lx.s, p->lx.slen), p->lx.tok.pos}};
        PUSH(p->fix, p->nfix, p->capfix, fx);
        lex_next(&p->lx);
        return true;
    }
    }
    unreachable("attribute kind");
}

static bool parse_attrs(Parser *p, IrOp op, IrAttr *attr, IrId node, size_t oppos)
{
    uint64_t seen = 0;
    if (lex_accept(&p->lx, '{')) {
        do {
            if (p->lx.tok.kind != T_IDENT) return lex_error(&p->lx, p->lx.tok.pos, "expected an attribute name");
            unsigned k;
            const IrAttrInfo *ai = find_attr(op, p->lx.s, &k);
            if (!ai) return lex_error(&p->lx, p->lx.tok.pos, "unknown attribute '%s' for %s", p->lx.s, ir_ops[op].name);
            assert(k < 64);
            if (seen & (1ull << k)) return lex_error(&p->lx, p->lx.tok.pos, "attribute '%s' given twice", p->lx.s);
            seen |= 1ull << k;
            lex_next(&p->lx);
            if (!lex_expect(&p->lx, '=', "after the attribute name") || !parse_attr_value(p, ai, attr, node)) return false;
        } while (lex_accept(&p->lx, ','));
        if (!lex_expect(&p->lx, '}', "after attributes")) return false;
    }
    unsigned k = 0;
    for (size_t i = 0; i < ir_nattrs; i++) {
        if (ir_attrs[i].op != op) continue;
        if (ir_attrs[i].required && !(seen & (1ull << k)))
            return lex_error(&p->lx, oppos, "%s needs attribute '%s'", ir_ops[op].name, ir_attrs[i].name);
        k++;
    }
    return true;
}

static void arity_text(char *buf, size_t size, unsigned lo, unsigned hi)
{
    if (hi == VAR) snprintf(buf, size, "at least %u", lo);
    else if (lo == hi) snprintf(buf, size, "%u", lo);
    else snprintf(buf, size, "%u to %u", lo, hi);
}

static bool check_arity(Parser *p, IrOp op, size_t pos)
{
    const IrOpInfo *o = &ir_ops[op];
    char want[32];
    if (p->nins < o->in_min || (o->in_max != VAR && p->nins > o->in_max)) {
        arity_text(want, sizeof want, o->in_min, o->in_max);
        return lex_error(&p->lx, pos, "%s takes %s operands, got %u", o->name, want, p->nins);
    }
    if (p->nres < o->out_min || (o->out_max != VAR && p->nres > o->out_max)) {
        arity_text(want, sizeof want, o->out_min, o->out_max);
        return lex_error(&p->lx, pos, "%s has %s results, got %u", o->name, want, p->nres);
    }
    /* Only optional operands in fixed positions can be left out (ir_verify agrees). */
    for (uint32_t k = 0; k < p->nins; k++)
        if (p->ins[k] == IR_NONE && (k < o->in_min || o->in_max == VAR))
            return lex_error(&p->lx, pos, "operand %u of %s cannot be omitted", k + 1, o->name);
    for (uint32_t k = 0; k < o->out_min && k < p->nres; k++)
        if (!p->res[k].name) return lex_error(&p->lx, p->res[k].pos, "result %u of %s cannot be omitted", k + 1, o->name);
    return true;
}

/* OPNAME "(" operands ")" attrs? (":" types)? ("loc" "(" STRING ")")? for the results in p->res.
 * The node is made only when its line is complete, so its results are not in scope before. */
static bool parse_node(Parser *p)
{
    size_t oppos = p->lx.tok.pos;
    IrOp op = ir_op_from_name(p->lx.s, p->lx.slen);
    if (op == OP__COUNT) return lex_error(&p->lx, oppos, "unknown op '%s'", p->lx.s);
    lex_next(&p->lx);
    if (!lex_expect(&p->lx, '(', "after the op name")) return false;
    p->nins = 0;
    if (!lex_accept(&p->lx, ')')) {
        do {
            IrId v;
            if (!use_value(p, &v)) return false;
            PUSH(p->ins, p->nins, p->capins, v);
        } while (lex_accept(&p->lx, ','));
        if (!lex_expect(&p->lx, ')', "after operands")) return false;
    }
    if (!check_arity(p, op, oppos)) return false;
    IrAttr attr;
    ir_attr_defaults(op, &attr);
    if (!parse_attrs(p, op, &attr, p->g->nnodes, oppos)) return false;
    uint32_t present = 0;
    for (uint32_t k = 0; k < p->nres; k++) present += p->res[k].name != NULL;
    p->ntypes = 0;
    if (lex_is_punct(&p->lx, ':')) {
        size_t tpos = p->lx.tok.pos;
        lex_next(&p->lx);
        do {
            IrType t;
            if (!parse_type(p, &t, true)) return false;
            PUSH(p->types, p->ntypes, p->captypes, t);
        } while (lex_accept(&p->lx, ','));
        if (p->ntypes != present) return lex_error(&p->lx, tpos, "%u result types for %u results", p->ntypes, present);
    }
    const char *name = "";
    if (lex_is_kw(&p->lx, "loc")) {
        lex_next(&p->lx);
        if (!lex_expect(&p->lx, '(', "after 'loc'")) return false;
        if (p->lx.tok.kind != T_STRING) return lex_error(&p->lx, p->lx.tok.pos, "expected a node name string");
        name = arena_strndup(p->m->arena, p->lx.s, p->lx.slen);
        lex_next(&p->lx);
        if (!lex_expect(&p->lx, ')', "after the node name")) return false;
    }
    IrId node = ir_node_add(p->g, op, name, p->ins, p->nins, 0, NULL);
    IrId *out = arena_alloc(p->m->arena, (p->nres ? p->nres : 1) * sizeof *out);
    for (uint32_t k = 0, t = 0; k < p->nres; k++) {
        out[k] = IR_NONE;
        if (!p->res[k].name) continue;
        out[k] = ir_value_add(p->g, p->res[k].name, IR_VAL_NODE, p->ntypes ? &p->types[t++] : NULL);
        p->g->vals[out[k]].def = node;
        define(p, out[k]);
    }
    IrNode *n = &p->g->nodes[node];
    n->attr = attr;
    n->nout = p->nres;
    n->out = out;
    return true;
}

static bool parse_stmt(Parser *p)
{
    p->nres = 0;
    do {
        Named r = {NULL, p->lx.tok.pos};
        if (lex_is_kw(&p->lx, "_")) {
            lex_next(&p->lx);
        } else {
            if (!new_name(p, &r)) return false;
            for (uint32_t k = 0; k < p->nres; k++)
                if (p->res[k].name && strcmp(p->res[k].name, r.name) == 0)
                    return lex_error(&p->lx, r.pos, "redefinition of %%%s", r.name);
        }
        PUSH(p->res, p->nres, p->capres, r);
    } while (lex_accept(&p->lx, ','));
    if (!lex_expect(&p->lx, '=', "after the results")) return false;
    if (lex_is_kw(&p->lx, "const")) return parse_const(p, p->res);
    if (p->lx.tok.kind != T_IDENT) return lex_error(&p->lx, p->lx.tok.pos, "expected an op name or 'const'");
    return parse_node(p);
}

/* ---- graphs ---- */

static bool parse_params(Parser *p)
{
    if (!lex_expect(&p->lx, '(', "after the graph name")) return false;
    if (lex_accept(&p->lx, ')')) return true;
    do {
        Named in = {0};
        IrType t;
        if (!new_name(p, &in) || !lex_expect(&p->lx, ':', "after the input name") || !parse_type(p, &t, false)) return false;
        define(p, ir_input_add(p->g, in.name, &t));
    } while (lex_accept(&p->lx, ','));
    return lex_expect(&p->lx, ')', "after the graph inputs");
}

/* Output names come before the body that defines them: kept, resolved at the closing brace. */
static bool parse_results(Parser *p)
{
    if (p->lx.tok.kind != T_ARROW) return lex_error(&p->lx, p->lx.tok.pos, "expected '->' after the graph inputs");
    lex_next(&p->lx);
    if (!lex_expect(&p->lx, '(', "before the graph outputs")) return false;
    p->nouts = 0;
    if (lex_accept(&p->lx, ')')) return true;
    do {
        if (p->lx.tok.kind != T_VALUE) return lex_error(&p->lx, p->lx.tok.pos, "expected a value name");
        Named out = {arena_strndup(p->m->arena, p->lx.s, p->lx.slen), p->lx.tok.pos};
        PUSH(p->outs, p->nouts, p->capouts, out);
        lex_next(&p->lx);
    } while (lex_accept(&p->lx, ','));
    return lex_expect(&p->lx, ')', "after the graph outputs");
}

static bool parse_graph(Parser *p)
{
    lex_next(&p->lx);
    if (p->lx.tok.kind != T_GRAPH) return lex_error(&p->lx, p->lx.tok.pos, "expected a graph name '@name'");
    for (uint32_t i = 0; i < p->ngraphs; i++)
        if (strcmp(p->graphs[i].g->name, p->lx.s) == 0) return lex_error(&p->lx, p->lx.tok.pos, "redefinition of graph @%s", p->lx.s);
    IrGraph *g = ir_graph_create(p->m, NULL, p->lx.s);
    bool first = p->ngraphs == 0;
    PUSH(p->graphs, p->ngraphs, p->capgraphs, ((PGraph){g, p->lx.tok.pos, first}));
    if (!p->m->graph) p->m->graph = g;
    p->g = g;
    table_reset(p, 64);
    lex_next(&p->lx);
    if (!parse_params(p) || !parse_results(p) || !lex_expect(&p->lx, '{', "to open the graph body")) return false;
    while (p->lx.tok.kind == T_VALUE || lex_is_kw(&p->lx, "_"))
        if (!parse_stmt(p)) return false;
    if (!lex_is_punct(&p->lx, '}')) return lex_error(&p->lx, p->lx.tok.pos, "expected a statement or '}'");
    lex_next(&p->lx);
    for (uint32_t i = 0; i < p->nouts; i++) {
        IrId v = lookup(p, p->outs[i].name);
        if (v == IR_NONE) return lex_error(&p->lx, p->outs[i].pos, "undefined value %%%s in the graph outputs", p->outs[i].name);
        ir_output_add(g, v);
    }
    return true;
}

static uint32_t find_graph(const Parser *p, const char *name)
{
    for (uint32_t i = 0; i < p->ngraphs; i++)
        if (strcmp(p->graphs[i].g->name, name) == 0) return i;
    return UINT32_MAX;
}

static const Fixup *find_fixup(const Parser *p, uint32_t graph, IrId node, size_t offset)
{
    for (uint32_t i = 0; i < p->nfix; i++)
        if (p->fix[i].graph == graph && p->fix[i].node == node && p->fix[i].offset == offset) return &p->fix[i];
    unreachable("graph attribute without a fixup");
}

/* One graph attribute of node `id` in graph gi: attach the branch on first reference. */
static bool resolve_ref(Parser *p, uint32_t gi, IrId id, const IrAttrInfo *ai)
{
    IrGraph *g = p->graphs[gi].g;
    const Fixup *fx = find_fixup(p, gi, id, ai->offset);
    uint32_t ti = find_graph(p, fx->ref.name), idx = 0;
    if (ti == UINT32_MAX) return lex_error(&p->lx, fx->ref.pos, "undefined graph @%s", fx->ref.name);
    PGraph *t = &p->graphs[ti];
    if (ti == 0) return lex_error(&p->lx, fx->ref.pos, "the main graph @%s cannot be a branch", fx->ref.name);
    if (!t->attached) {
        idx = ir_graph_add_sub(g, t->g);
        t->attached = true;
        PUSH(p->queue, p->nqueue, p->capqueue, ti);
    } else if (t->g->parent == g) {
        while (g->subs[idx] != t->g) idx++;     /* both branches, or two Ifs, share it */
    } else {
        return lex_error(&p->lx, fx->ref.pos, "graph @%s is already a branch of @%s", fx->ref.name, t->g->parent->name);
    }
    /* Branches are isolated from above: they take the node's operands after the condition
     * and give its results. */
    const IrNode *n = &g->nodes[id];
    if (t->g->ninputs != n->nin - 1 || t->g->noutputs != n->nout)
        return lex_error(&p->lx, fx->ref.pos, "graph @%s has %u inputs and %u outputs, but the %s passes %u values and has %u results",
                         fx->ref.name, t->g->ninputs, t->g->noutputs, ir_ops[n->op].name, n->nin - 1, n->nout);
    memcpy((char *)&g->nodes[id].attr + ai->offset, &idx, sizeof idx);
    return true;
}

/* Breadth-first from the main graph, nodes in order, attributes in schema order: the order in
 * which print.c prints the branch graphs, so g->subs round-trips. */
static bool resolve_branches(Parser *p)
{
    PUSH(p->queue, p->nqueue, p->capqueue, 0);
    for (uint32_t qi = 0; qi < p->nqueue; qi++) {
        uint32_t gi = p->queue[qi];
        IrGraph *g = p->graphs[gi].g;
        for (IrId id = 0; id < g->nnodes; id++)
            for (size_t a = 0; a < ir_nattrs; a++)
                if (ir_attrs[a].op == g->nodes[id].op && ir_attrs[a].kind == AK_GRAPH && !resolve_ref(p, gi, id, &ir_attrs[a]))
                    return false;
    }
    for (uint32_t i = 0; i < p->ngraphs; i++)
        if (!p->graphs[i].attached)
            return lex_error(&p->lx, p->graphs[i].pos, "graph @%s is not a branch of any If", p->graphs[i].g->name);
    return true;
}

/* ---- models ---- */

static bool parse_header(Parser *p)
{
    if (!lex_is_kw(&p->lx, "opset")) return lex_error(&p->lx, p->lx.tok.pos, "expected 'opset' at the start");
    lex_next(&p->lx);
    size_t pos = p->lx.tok.pos;
    if (!lex_i64(&p->lx, &p->m->opset)) return false;
    if (p->m->opset < 0) return lex_error(&p->lx, pos, "negative opset");
    if (!lex_is_kw(&p->lx, "sym")) return true;
    lex_next(&p->lx);
    do {
        if (p->lx.tok.kind != T_IDENT && p->lx.tok.kind != T_STRING) return lex_error(&p->lx, p->lx.tok.pos, "expected a symbol name");
        if (ir_dim_sym_index(p->m, p->lx.s, p->lx.slen) >= 0) return lex_error(&p->lx, p->lx.tok.pos, "symbol '%s' declared twice", p->lx.s);
        if (p->m->dims.nsyms == IR_MAX_SYMS) return lex_error(&p->lx, p->lx.tok.pos, "more than %d symbols", IR_MAX_SYMS);
        ir_dim_sym(p->m, p->lx.s);
        lex_next(&p->lx);
    } while (lex_accept(&p->lx, ','));
    return true;
}

static bool parse_model(Parser *p)
{
    lex_next(&p->lx);
    if (!parse_header(p)) return false;
    if (!lex_is_kw(&p->lx, "graph")) return lex_error(&p->lx, p->lx.tok.pos, "expected 'graph'");
    while (lex_is_kw(&p->lx, "graph"))
        if (!parse_graph(p)) return false;
    if (p->lx.tok.kind != T_EOF) return lex_error(&p->lx, p->lx.tok.pos, "expected 'graph' or the end of the file");
    return resolve_branches(p);
}

IrModel *ir_parse_model(Diag *diag, const char *path, const char *text, size_t len)
{
    Parser p = {.lx = {.diag = diag, .path = path ? path : "<memory>", .src = text, .len = len}};
    p.m = ir_model_create(diag, path);
    if (!parse_model(&p)) {
        assert(p.lx.failed);
        /* Branch graphs not attached yet are freed with the main graph: hand them over. */
        for (uint32_t i = 1; i < p.ngraphs; i++)
            if (!p.graphs[i].attached) ir_graph_add_sub(p.m->graph, p.graphs[i].g);
        ir_model_destroy(p.m);
        p.m = NULL;
    }
    free(p.lx.s);
    free(p.tab);
    free(p.graphs);
    free(p.fix);
    free(p.unk);
    free(p.outs);
    free(p.res);
    free(p.ins);
    free(p.types);
    free(p.queue);
    return p.m;
}

IrModel *ir_parse_file(Diag *diag, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return diag_error(diag, path, "cannot open: %s", strerror(errno)), NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *b = realloc(buf, cap);
            if (!b) unreachable("out of memory");
            buf = b;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) break;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    IrModel *m = err ? (diag_error(diag, path, "cannot read: %s", strerror(err)), NULL) : ir_parse_model(diag, path, buf, n);
    free(buf);
    return m;
}
