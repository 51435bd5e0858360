/* print.c — the IR text form, printing side (docs/ir.md, "Text form").
 *
 * The printer is the mirror of parse.c: whatever it writes reads back into the same model, so
 * print(parse(print(m))) == print(m) byte for byte. That needs the text to depend only on what
 * the text can name, never on pointers or on the history of the model:
 *   - unknown dims are renumbered ?1, ?2, ... in order of first appearance (their serials only
 *     count how many unknowns passes happened to make along the way);
 *   - branch graphs print in reference order (breadth-first from the printed graph, nodes in
 *     order, then_branch before else_branch), the order in which the parser rebuilds g->subs;
 *     two graphs with the same name get distinct printed names, orphan subgraphs are skipped;
 *   - names outside the plain alphabet are quoted, floats use enough digits to round-trip.
 * A broken model still prints (as text that does not parse back) rather than crashing: the
 * printer is what one looks at while debugging a pass.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"   /* the lexer's alphabet decides what needs quotes */

typedef struct Printer {
    FILE *f;
    const IrModel *m;
    uint32_t *unk;                 /* opaque serials, in order of first appearance */
    uint32_t nunk, capunk;
    const IrGraph **gs;            /* graphs in print order */
    char **gname;                  /* their printed names (malloc'd) */
    uint32_t ngs, capgs;
    bool inline_weights;           /* print file-backed constants' bytes, not file(...) */
} Printer;

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p) unreachable("out of memory");
    return p;
}

/* ---- names and strings ---- */

static void put_string(Printer *p, const char *s)
{
    fputc('"', p->f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(p->f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f) fprintf(p->f, "\\x%02x", c);
        else fputc(c, p->f);
    }
    fputc('"', p->f);
}

static void put_name(Printer *p, char sigil, const char *s)
{
    fputc(sigil, p->f);
    if (lex_plain_name(s)) fputs(s, p->f);
    else put_string(p, s);
}

static void put_sym(Printer *p, uint32_t k)
{
    const char *s = k < p->m->dims.nsyms ? p->m->dims.sym[k] : "?";
    if (lex_plain_sym(s)) fputs(s, p->f);
    else put_string(p, s);
}

/* ---- dims and types ---- */

static uint32_t unknown_number(Printer *p, uint32_t serial)
{
    for (uint32_t i = 0; i < p->nunk; i++)
        if (p->unk[i] == serial) return i + 1;
    if (p->nunk == p->capunk) {
        p->capunk = p->capunk ? p->capunk * 2 : 16;
        p->unk = xrealloc(p->unk, p->capunk * sizeof *p->unk);
    }
    p->unk[p->nunk++] = serial;
    return p->nunk;
}

/* One term of a polynomial: " - 2*batch*seq" (leading: "-2*batch*seq"). */
static void put_term(Printer *p, const IrDimTerm *t, bool leading)
{
    bool neg = t->coef < 0, has_sym = false;
    /* Magnitude in unsigned arithmetic: -INT64_MIN does not exist. */
    uint64_t mag = neg ? 0 - (uint64_t)t->coef : (uint64_t)t->coef;
    for (int k = 0; k < IR_MAX_SYMS && !has_sym; k++) has_sym = t->exp[k] != 0;
    if (!leading) fputs(neg ? " - " : " + ", p->f);
    else if (neg) fputc('-', p->f);
    bool first = true;
    if (mag != 1 || !has_sym) {
        fprintf(p->f, "%llu", (unsigned long long)mag);
        first = false;
    }
    for (uint32_t k = 0; k < IR_MAX_SYMS; k++)
        for (int e = 0; e < t->exp[k]; e++) {
            if (!first) fputc('*', p->f);
            put_sym(p, k);
            first = false;
        }
}

/* The layout of ir_dim_format ("batch*seq - 2*past + 3"), with symbol names quoted when they
 * are not identifiers, so that every dimension table prints as parseable text. */
static void put_dim(Printer *p, IrDim d)
{
    if (IR_DIM_IS_CONST(d)) {
        fprintf(p->f, "%lld", (long long)d);
        return;
    }
    IrDimPoly poly;
    if (!ir_dim_poly(p->m, d, &poly)) {
        fputs("?", p->f);          /* not a dim of this model: left unparseable on purpose */
        return;
    }
    if (poly.opaque) {
        fprintf(p->f, "?%u", unknown_number(p, poly.opaque));
        return;
    }
    for (int i = 0; i < poly.nterms; i++) put_term(p, &poly.t[i], i == 0);
}

static void put_type(Printer *p, const IrType *t)
{
    fprintf(p->f, "%s[", ir_dtype_name(t->dtype));
    if (t->rank < 0) fputc('*', p->f);
    for (int i = 0; i < t->rank && i < IR_MAX_RANK; i++) {
        if (i) fputs(", ", p->f);
        put_dim(p, t->dims[i]);
    }
    fputc(']', p->f);
}

static bool type_unknown(const IrType *t) { return t->dtype == DT_UNDEF && t->rank < 0; }

/* ---- numbers ---- */

static void put_float(Printer *p, double x, int digits)
{
    if (isnan(x)) fputs("nan", p->f);
    else if (isinf(x)) fputs(x < 0 ? "-inf" : "inf", p->f);
    else fprintf(p->f, "%.*g", digits, x);
}

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, x;
    if (exp == 0) {
        float f = ldexpf((float)man, -24);       /* zero and subnormals, exactly */
        return sign ? -f : f;
    }
    if (exp == 0x1f) x = sign | 0x7f800000u | (man << 13);
    else x = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static float bf16_to_f32(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* Element i of a constant payload (memcpy: file-backed data may sit at any address). */
static void put_elem(Printer *p, IrDType dt, const unsigned char *data, int64_t i)
{
    const unsigned char *q = data + (size_t)i * ir_dtype_size(dt);
    union { float f; double d; int64_t i64; uint64_t u64; int32_t i32; uint32_t u32; int16_t i16;
            uint16_t u16; int8_t i8; uint8_t u8; } u;
    memcpy(&u, q, ir_dtype_size(dt));
    switch (dt) {
    case DT_F32: put_float(p, u.f, 9); break;
    case DT_F64: put_float(p, u.d, 17); break;
    case DT_F16: put_float(p, f16_to_f32(u.u16), 9); break;
    case DT_BF16: put_float(p, bf16_to_f32(u.u16), 9); break;
    case DT_I64: fprintf(p->f, "%lld", (long long)u.i64); break;
    case DT_U64: fprintf(p->f, "%llu", (unsigned long long)u.u64); break;
    case DT_I32: fprintf(p->f, "%ld", (long)u.i32); break;
    case DT_U32: fprintf(p->f, "%lu", (unsigned long)u.u32); break;
    case DT_I16: fprintf(p->f, "%d", u.i16); break;
    case DT_U16: fprintf(p->f, "%u", u.u16); break;
    case DT_I8: fprintf(p->f, "%d", u.i8); break;
    case DT_U8: fprintf(p->f, "%u", u.u8); break;
    case DT_BOOL: fprintf(p->f, "%d", u.u8 != 0); break;
    default: unreachable("constant of undefined element type");
    }
}

static void put_scalar(Printer *p, const IrScalar *s)
{
    fprintf(p->f, "%s ", ir_dtype_name(s->dtype));
    if (s->dtype == DT_F64) put_float(p, s->f, 17);
    /* A float-typed scalar holds a float value in a double; one that does not fit is broken
     * and prints as it is (the parser then rejects it) rather than through a bad conversion. */
    else if (ir_dtype_is_float(s->dtype)) put_float(p, fabs(s->f) > FLT_MAX && !isinf(s->f) ? s->f : (float)s->f, 9);
    else if (s->dtype == DT_U64) fprintf(p->f, "%llu", (unsigned long long)s->i);
    else if (s->dtype == DT_BOOL) fprintf(p->f, "%d", s->i != 0);
    else fprintf(p->f, "%lld", (long long)s->i);
}

/* ---- graphs ---- */

static uint32_t graph_index(const Printer *p, const IrGraph *g)
{
    for (uint32_t i = 0; i < p->ngs; i++)
        if (p->gs[i] == g) return i;
    return UINT32_MAX;
}

static bool name_taken(const Printer *p, const char *s)
{
    for (uint32_t i = 0; i < p->ngs; i++)
        if (strcmp(p->gname[i], s) == 0) return true;
    return false;
}

static void add_graph(Printer *p, const IrGraph *g)
{
    if (p->ngs == p->capgs) {
        p->capgs = p->capgs ? p->capgs * 2 : 8;
        p->gs = xrealloc(p->gs, p->capgs * sizeof *p->gs);
        p->gname = xrealloc(p->gname, p->capgs * sizeof *p->gname);
    }
    /* References are by name, so names must be unique in the text: later twins get a suffix. */
    size_t n = strlen(g->name) + 16;
    char *name = xrealloc(NULL, n);
    snprintf(name, n, "%s", g->name);
    for (unsigned k = 2; name_taken(p, name); k++) snprintf(name, n, "%s_%u", g->name, k);
    p->gs[p->ngs] = g;
    p->gname[p->ngs++] = name;
}

static const IrGraph *attr_graph(const IrGraph *g, const IrNode *n, const IrAttrInfo *ai)
{
    uint32_t idx;
    memcpy(&idx, (const char *)&n->attr + ai->offset, sizeof idx);
    return idx < g->nsubs ? g->subs[idx] : NULL;
}

/* Breadth-first from root over If references: the print order and the parser's g->subs order. */
static void collect_graphs(Printer *p, const IrGraph *root)
{
    add_graph(p, root);
    for (uint32_t gi = 0; gi < p->ngs; gi++) {
        const IrGraph *g = p->gs[gi];
        for (uint32_t i = 0; i < g->nnodes; i++) {
            const IrNode *n = &g->nodes[i];
            if (n->dead) continue;
            for (size_t a = 0; a < ir_nattrs; a++) {
                if (ir_attrs[a].op != n->op || ir_attrs[a].kind != AK_GRAPH) continue;
                const IrGraph *sub = attr_graph(g, n, &ir_attrs[a]);
                if (sub && graph_index(p, sub) == UINT32_MAX) add_graph(p, sub);
            }
        }
    }
}

static void put_value(Printer *p, const IrGraph *g, IrId v)
{
    if (v == IR_NONE) fputc('_', p->f);
    else if (v < g->nvals) put_name(p, '%', g->vals[v].name);
    else fprintf(p->f, "%%<bad id %u>", v);
}

/* ---- attributes ---- */

static bool attr_is_default(const IrAttrInfo *ai, const IrAttr *a, const IrAttr *d)
{
    const char *x = (const char *)a + ai->offset, *y = (const char *)d + ai->offset;
    switch (ai->kind) {
    case AK_INT: case AK_DTYPE: return memcmp(x, y, sizeof(int64_t)) == 0;
    case AK_FLOAT: return memcmp(x, y, sizeof(float)) == 0;
    case AK_INTS: {
        IrInts s, t;
        memcpy(&s, x, sizeof s);
        memcpy(&t, y, sizeof t);
        return s.n == t.n && (s.n > IR_MAX_RANK || memcmp(s.v, t.v, s.n * sizeof s.v[0]) == 0);
    }
    case AK_SCALAR: {
        IrScalar s, t;
        memcpy(&s, x, sizeof s);
        memcpy(&t, y, sizeof t);
        return s.dtype == t.dtype && memcmp(&s.f, &t.f, sizeof s.f) == 0 && s.i == t.i;
    }
    case AK_GRAPH: return false;
    case AK_IGNORE: return true;
    case AK_FORMAT: {
        bq_format s, t;
        memcpy(&s, x, sizeof s);
        memcpy(&t, y, sizeof t);
        return ir_format_eq(&s, &t);
    }
    }
    unreachable("attribute kind");
}

static void put_attr_value(Printer *p, const IrGraph *g, const IrNode *n, const IrAttrInfo *ai)
{
    const char *x = (const char *)&n->attr + ai->offset;
    switch (ai->kind) {
    case AK_INT: { int64_t v; memcpy(&v, x, sizeof v); fprintf(p->f, "%lld", (long long)v); break; }
    case AK_DTYPE: {
        int64_t v;
        memcpy(&v, x, sizeof v);
        fputs(v > 0 && v < DT__COUNT ? ir_dtype_name((IrDType)v) : "?", p->f);
        break;
    }
    case AK_FLOAT: { float v; memcpy(&v, x, sizeof v); put_float(p, v, 9); break; }
    case AK_INTS: {
        IrInts v;
        memcpy(&v, x, sizeof v);
        fputc('[', p->f);
        for (int i = 0; i < v.n && i < IR_MAX_RANK; i++) fprintf(p->f, "%s%lld", i ? ", " : "", (long long)v.v[i]);
        fputc(']', p->f);
        break;
    }
    case AK_SCALAR: { IrScalar v; memcpy(&v, x, sizeof v); put_scalar(p, &v); break; }
    case AK_GRAPH: {
        uint32_t gi = graph_index(p, attr_graph(g, n, ai));
        if (gi == UINT32_MAX) fputs("@?", p->f);   /* dangling index: broken IR */
        else put_name(p, '@', p->gname[gi]);
        break;
    }
    case AK_IGNORE: break;
    case AK_FORMAT: {
        bq_format f;
        char name[64];
        memcpy(&f, x, sizeof f);
        if (bq_format_name(&f, name, sizeof name) < 0) snprintf(name, sizeof name, "?");
        put_string(p, name);
        break;
    }
    }
}

static void put_attrs(Printer *p, const IrGraph *g, const IrNode *n)
{
    IrAttr def;
    ir_attr_defaults(n->op, &def);
    bool any = false;
    for (size_t a = 0; a < ir_nattrs; a++) {
        const IrAttrInfo *ai = &ir_attrs[a];
        if (ai->op != n->op || ai->kind == AK_IGNORE) continue;
        if (!ai->required && attr_is_default(ai, &n->attr, &def)) continue;
        fprintf(p->f, "%s%s = ", any ? ", " : " {", ai->name);
        put_attr_value(p, g, n, ai);
        any = true;
    }
    if (any) fputc('}', p->f);
}

/* ---- statements ---- */

static void put_const(Printer *p, const IrGraph *g, const IrValue *v)
{
    fputs("  ", p->f);
    put_name(p, '%', v->name);
    fputs(" = const ", p->f);
    put_type(p, &v->type);
    /* A file the model does not list (a clone keeps the data but not the mappings) cannot be
     * named: the bytes print inline instead. */
    if (v->file && v->file <= p->m->nfiles && !p->inline_weights) {
        fputs(" file(", p->f);
        put_string(p, p->m->files[v->file - 1].path);
        fprintf(p->f, ", %llu)\n", (unsigned long long)v->file_offset);
        return;
    }
    int64_t numel = ir_type_numel(&v->type);
    size_t es = ir_dtype_size(v->type.dtype);
    if (numel < 0 || es == 0 || (numel > 0 && !v->data) || (uint64_t)numel > v->nbytes / es) {
        fprintf(p->f, " []  # invalid payload: %llu bytes\n", (unsigned long long)v->nbytes);
        return;
    }
    fputs(" [", p->f);
    for (int64_t i = 0; i < numel; i++) {
        if (i) fputs(", ", p->f);
        put_elem(p, v->type.dtype, v->data, i);
    }
    fputs("]\n", p->f);
}

static void put_node(Printer *p, const IrGraph *g, const IrNode *n)
{
    fputs("  ", p->f);
    for (uint32_t k = 0; k < n->nout; k++) {
        if (k) fputs(", ", p->f);
        put_value(p, g, n->out[k]);
    }
    fprintf(p->f, " = %s(", ir_ops[n->op].name);
    for (uint32_t k = 0; k < n->nin; k++) {
        if (k) fputs(", ", p->f);
        put_value(p, g, n->in[k]);
    }
    fputc(')', p->f);
    put_attrs(p, g, n);
    /* Types of the present results; all unknown (hand-written IR before inference): none. */
    bool known = false;
    for (uint32_t k = 0; k < n->nout; k++)
        known |= n->out[k] < g->nvals && !type_unknown(&g->vals[n->out[k]].type);
    if (known) {
        bool first = true;
        for (uint32_t k = 0; k < n->nout; k++) {
            if (n->out[k] >= g->nvals) continue;
            fputs(first ? " : " : ", ", p->f);
            put_type(p, &g->vals[n->out[k]].type);
            first = false;
        }
    }
    if (n->name && *n->name) {
        fputs(" loc(", p->f);
        put_string(p, n->name);
        fputc(')', p->f);
    }
    fputc('\n', p->f);
}

static void put_graph(Printer *p, uint32_t gi)
{
    const IrGraph *g = p->gs[gi];
    fputs("graph ", p->f);
    put_name(p, '@', p->gname[gi]);
    fputc('(', p->f);
    for (uint32_t i = 0; i < g->ninputs; i++) {
        if (i) fputs(", ", p->f);
        put_value(p, g, g->inputs[i]);
        fputs(": ", p->f);
        if (g->inputs[i] < g->nvals) put_type(p, &g->vals[g->inputs[i]].type);
    }
    fputs(") -> (", p->f);
    for (uint32_t i = 0; i < g->noutputs; i++) {
        if (i) fputs(", ", p->f);
        put_value(p, g, g->outputs[i]);
    }
    fputs(") {\n", p->f);
    for (uint32_t v = 0; v < g->nvals; v++)
        if (g->vals[v].kind == IR_VAL_CONST) put_const(p, g, &g->vals[v]);
    for (uint32_t i = 0; i < g->nnodes; i++)
        if (!g->nodes[i].dead) put_node(p, g, &g->nodes[i]);
    fputs("}\n", p->f);
}

static bool print_graphs(Printer *p, const IrGraph *root)
{
    collect_graphs(p, root);
    for (uint32_t i = 0; i < p->ngs; i++) put_graph(p, i);
    for (uint32_t i = 0; i < p->ngs; i++) free(p->gname[i]);
    free(p->gname);
    free(p->gs);
    free(p->unk);
    if (ferror(p->f)) return diag_error(p->m->diag, p->m->path, "cannot write the IR text");
    return true;
}

bool ir_print_graph(FILE *f, const IrGraph *g)
{
    Printer p = {.f = f, .m = g->model};
    return print_graphs(&p, g);
}

bool ir_print_model(FILE *f, const IrModel *m) { return ir_print_model_opt(f, m, false); }

bool ir_print_model_opt(FILE *f, const IrModel *m, bool inline_weights)
{
    Printer p = {.f = f, .m = m, .inline_weights = inline_weights};
    /* The header is a comment: a path with a newline must not end it early. */
    fputs("# bqc IR ", f);
    for (const char *s = m->path; s && *s; s++) fputc(*s == '\n' || *s == '\r' ? '?' : *s, f);
    fprintf(f, "\nopset %lld\n", (long long)m->opset);
    if (m->dims.nsyms) {
        fputs("sym ", f);
        for (uint32_t k = 0; k < m->dims.nsyms; k++) {
            if (k) fputs(", ", f);
            put_sym(&p, k);
        }
        fputc('\n', f);
    }
    if (!m->graph) return diag_error(m->diag, m->path, "cannot print a model without a main graph");
    return print_graphs(&p, m->graph);
}
