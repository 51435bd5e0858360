/* dim.c — symbolic dimensions: canonical polynomials over named symbols, interned per model.
 *
 * Shapes of exported transformers are built from a few symbols (batch, seq, past) with +, -
 * and * (batch*seq for 2-D Linear inputs, past + seq for the KV cache). Keeping every
 * dimension as a canonical polynomial makes "is this the same extent?" an integer compare,
 * which is what folding Shape→Gather→Concat chains and matching patterns need. Anything
 * outside that algebra (inexact division, overflow, data-dependent sizes) becomes an opaque
 * unknown: never a wrong value.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

static IrDim from_index(uint32_t i) { return INT64_MIN + 1 + (int64_t)i; }
static uint32_t to_index(IrDim d) { return (uint32_t)(d - INT64_MIN - 1); }

static void poly_const(IrDimPoly *p, int64_t c)
{
    memset(p, 0, sizeof *p);
    if (c != 0) {
        p->nterms = 1;
        p->t[0].coef = c;
    }
}

bool ir_dim_poly(const IrModel *m, IrDim d, IrDimPoly *out)
{
    if (IR_DIM_IS_CONST(d)) {
        poly_const(out, d);
        return true;
    }
    uint32_t i = to_index(d);
    if (!m || i >= m->dims.npoly) return false;
    *out = m->dims.poly[i];
    return true;
}

static int degree(const IrDimTerm *t)
{
    int s = 0;
    for (int i = 0; i < IR_MAX_SYMS; i++) s += t->exp[i];
    return s;
}

/* Higher degree first, then by exponent vector: "batch*seq + seq + 2". */
static int term_cmp(const IrDimTerm *a, const IrDimTerm *b)
{
    int da = degree(a), db = degree(b);
    if (da != db) return db - da;
    for (int i = 0; i < IR_MAX_SYMS; i++)
        if (a->exp[i] != b->exp[i]) return (int)b->exp[i] - (int)a->exp[i];
    return 0;
}

/* Adds coef·x^exp into p; false when the result would need too many terms. */
static bool poly_add_term(IrDimPoly *p, const IrDimTerm *t)
{
    for (int i = 0; i < p->nterms; i++) {
        if (term_cmp(&p->t[i], t) != 0) continue;
        if (__builtin_add_overflow(p->t[i].coef, t->coef, &p->t[i].coef)) return false;
        if (p->t[i].coef == 0) {
            memmove(&p->t[i], &p->t[i + 1], (size_t)(p->nterms - i - 1) * sizeof p->t[0]);
            p->nterms--;
        }
        return true;
    }
    if (t->coef == 0) return true;
    if (p->nterms == IR_MAX_TERMS) return false;
    int at = p->nterms;
    while (at > 0 && term_cmp(&p->t[at - 1], t) > 0) at--;
    memmove(&p->t[at + 1], &p->t[at], (size_t)(p->nterms - at) * sizeof p->t[0]);
    p->t[at] = *t;
    p->nterms++;
    return true;
}

static IrDim new_entry(IrModel *m, const IrDimPoly *p)
{
    IrDimTab *t = &m->dims;
    if (t->npoly == t->cappoly) {
        uint32_t cap = t->cappoly ? t->cappoly * 2 : 32;
        IrDimPoly *np = realloc(t->poly, cap * sizeof *np);
        if (!np) unreachable("out of memory");
        t->poly = np;
        t->cappoly = cap;
    }
    t->poly[t->npoly] = *p;
    return from_index(t->npoly++);
}

IrDim ir_dim_fresh(IrModel *m)
{
    IrDimPoly p;
    memset(&p, 0, sizeof p);
    p.opaque = ++m->dims.nopaque;
    return new_entry(m, &p);
}

IrDim ir_dim_intern(IrModel *m, const IrDimPoly *p)
{
    if (p->opaque) return ir_dim_fresh(m);
    if (p->nterms == 0) return 0;
    /* A constant far enough below zero to look symbolic cannot be represented. */
    if (p->nterms == 1 && degree(&p->t[0]) == 0)
        return IR_DIM_IS_CONST(p->t[0].coef) ? p->t[0].coef : ir_dim_fresh(m);
    for (uint32_t i = 0; i < m->dims.npoly; i++) {
        const IrDimPoly *q = &m->dims.poly[i];
        if (q->opaque || q->nterms != p->nterms) continue;
        bool eq = true;
        for (int k = 0; k < p->nterms && eq; k++)
            eq = q->t[k].coef == p->t[k].coef && memcmp(q->t[k].exp, p->t[k].exp, IR_MAX_SYMS) == 0;
        if (eq) return from_index(i);
    }
    return new_entry(m, p);
}

int ir_dim_sym_index(const IrModel *m, const char *name, size_t n)
{
    for (uint32_t i = 0; i < m->dims.nsyms; i++)
        if (strlen(m->dims.sym[i]) == n && memcmp(m->dims.sym[i], name, n) == 0) return (int)i;
    return -1;
}

IrDim ir_dim_sym(IrModel *m, const char *name)
{
    int i = ir_dim_sym_index(m, name, strlen(name));
    if (i < 0) {
        if (m->dims.nsyms == IR_MAX_SYMS) {
            diag_warning(m->diag, m->path, "more than %d dimension symbols: '%s' is treated as unknown",
                         IR_MAX_SYMS, name);
            return ir_dim_fresh(m);
        }
        i = (int)m->dims.nsyms++;
        m->dims.sym[i] = arena_strdup(m->arena, name);
    }
    IrDimPoly p;
    memset(&p, 0, sizeof p);
    p.nterms = 1;
    p.t[0].coef = 1;
    p.t[0].exp[i] = 1;
    return ir_dim_intern(m, &p);
}

IrDim ir_dim_add(IrModel *m, IrDim a, IrDim b)
{
    int64_t r;
    if (IR_DIM_IS_CONST(a) && IR_DIM_IS_CONST(b)) {
        if (!__builtin_add_overflow(a, b, &r) && IR_DIM_IS_CONST(r)) return r;
        return ir_dim_fresh(m);
    }
    IrDimPoly pa, pb;
    if (!ir_dim_poly(m, a, &pa) || !ir_dim_poly(m, b, &pb) || pa.opaque || pb.opaque) return ir_dim_fresh(m);
    for (int i = 0; i < pb.nterms; i++)
        if (!poly_add_term(&pa, &pb.t[i])) return ir_dim_fresh(m);
    return ir_dim_intern(m, &pa);
}

/* Not a + (-b): the negation of a large constant lands in the symbolic range and would be
 * read as a table entry. */
IrDim ir_dim_sub(IrModel *m, IrDim a, IrDim b)
{
    int64_t r;
    if (a == b) return 0;
    if (IR_DIM_IS_CONST(a) && IR_DIM_IS_CONST(b)) {
        if (!__builtin_sub_overflow(a, b, &r) && IR_DIM_IS_CONST(r)) return r;
        return ir_dim_fresh(m);
    }
    IrDimPoly pa, pb;
    if (!ir_dim_poly(m, a, &pa) || !ir_dim_poly(m, b, &pb) || pa.opaque || pb.opaque) return ir_dim_fresh(m);
    for (int i = 0; i < pb.nterms; i++) {
        IrDimTerm t = pb.t[i];
        if (t.coef == INT64_MIN) return ir_dim_fresh(m);
        t.coef = -t.coef;
        if (!poly_add_term(&pa, &t)) return ir_dim_fresh(m);
    }
    return ir_dim_intern(m, &pa);
}

IrDim ir_dim_mul(IrModel *m, IrDim a, IrDim b)
{
    int64_t r;
    if (IR_DIM_IS_CONST(a) && IR_DIM_IS_CONST(b)) {
        if (!__builtin_mul_overflow(a, b, &r) && IR_DIM_IS_CONST(r)) return r;
        return ir_dim_fresh(m);
    }
    if (a == 0 || b == 0) return 0;
    IrDimPoly pa, pb, pr;
    if (!ir_dim_poly(m, a, &pa) || !ir_dim_poly(m, b, &pb) || pa.opaque || pb.opaque) return ir_dim_fresh(m);
    memset(&pr, 0, sizeof pr);
    for (int i = 0; i < pa.nterms; i++)
        for (int j = 0; j < pb.nterms; j++) {
            IrDimTerm t;
            if (__builtin_mul_overflow(pa.t[i].coef, pb.t[j].coef, &t.coef)) return ir_dim_fresh(m);
            for (int k = 0; k < IR_MAX_SYMS; k++) {
                unsigned e = (unsigned)pa.t[i].exp[k] + pb.t[j].exp[k];
                if (e > 255) return ir_dim_fresh(m);
                t.exp[k] = (uint8_t)e;
            }
            if (!poly_add_term(&pr, &t)) return ir_dim_fresh(m);
        }
    return ir_dim_intern(m, &pr);
}

/* a / b is an exact integer (and INT64_MIN / -1, which traps, is not). */
static bool exact_div(int64_t a, int64_t b)
{
    return b != 0 && !(a == INT64_MIN && b == -1) && a % b == 0;
}

IrDim ir_dim_div(IrModel *m, IrDim a, IrDim b)
{
    if (b == 0) return ir_dim_fresh(m);
    if (IR_DIM_IS_CONST(a) && IR_DIM_IS_CONST(b)) {
        if (a % b != 0 || (a == INT64_MIN && b == -1)) return ir_dim_fresh(m);
        return a / b;
    }
    if (a == b) return 1;
    if (a == 0) return 0;
    IrDimPoly pa, pb;
    if (!ir_dim_poly(m, a, &pa) || !ir_dim_poly(m, b, &pb) || pa.opaque || pb.opaque) return ir_dim_fresh(m);
    if (pb.nterms != 1) {
        /* (c·p) / p for a polynomial p: find c from the leading terms and check. */
        if (pa.nterms != pb.nterms || !exact_div(pa.t[0].coef, pb.t[0].coef)) return ir_dim_fresh(m);
        int64_t c = pa.t[0].coef / pb.t[0].coef;
        IrDim q = ir_dim_mul(m, b, c);
        return q == a ? c : ir_dim_fresh(m);
    }
    const IrDimTerm *d = &pb.t[0];
    for (int i = 0; i < pa.nterms; i++) {
        IrDimTerm *t = &pa.t[i];
        if (!exact_div(t->coef, d->coef)) return ir_dim_fresh(m);
        t->coef /= d->coef;
        for (int k = 0; k < IR_MAX_SYMS; k++) {
            if (t->exp[k] < d->exp[k]) return ir_dim_fresh(m);
            t->exp[k] -= d->exp[k];
        }
    }
    /* Dividing every term by one monomial keeps the order; re-sort anyway for safety. */
    IrDimPoly r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < pa.nterms; i++)
        if (!poly_add_term(&r, &pa.t[i])) return ir_dim_fresh(m);
    return ir_dim_intern(m, &r);
}

int64_t ir_dim_eval(const IrModel *m, IrDim d, const int64_t *values)
{
    if (IR_DIM_IS_CONST(d)) return d;
    IrDimPoly p;
    if (!ir_dim_poly(m, d, &p) || p.opaque || !values) return -1;
    int64_t sum = 0;
    for (int i = 0; i < p.nterms; i++) {
        int64_t v = p.t[i].coef;
        for (int k = 0; k < IR_MAX_SYMS; k++)
            for (int e = 0; e < p.t[i].exp[k]; e++) {
                if (values[k] < 0) return -1;
                if (__builtin_mul_overflow(v, values[k], &v)) return -1;
            }
        if (__builtin_add_overflow(sum, v, &sum)) return -1;
    }
    return sum;
}

int ir_dim_format(const IrModel *m, IrDim d, char *buf, size_t size)
{
    if (IR_DIM_IS_CONST(d)) return snprintf(buf, size, "%lld", (long long)d);
    IrDimPoly p;
    if (!ir_dim_poly(m, d, &p)) return snprintf(buf, size, "?");
    if (p.opaque) return snprintf(buf, size, "?%u", p.opaque);
    size_t n = 0;
#define PUT(...) n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0, __VA_ARGS__)
    for (int i = 0; i < p.nterms; i++) {
        const IrDimTerm *t = &p.t[i];
        /* The magnitude as unsigned: -INT64_MIN overflows. */
        uint64_t c = t->coef < 0 ? 0 - (uint64_t)t->coef : (uint64_t)t->coef;
        if (i > 0) PUT(t->coef < 0 ? " - " : " + ");
        else if (t->coef < 0) PUT("-");
        bool first = true;
        if (c != 1 || degree(t) == 0) {
            PUT("%llu", (unsigned long long)c);
            first = false;
        }
        for (int k = 0; k < IR_MAX_SYMS; k++)
            for (int e = 0; e < t->exp[k]; e++) {
                PUT("%s%s", first ? "" : "*", m->dims.sym[k]);
                first = false;
            }
    }
#undef PUT
    return (int)n;
}

/* ---- parsing: expr := term (('+' | '-') term)*, term := factor ('*' factor)*,
 *      factor := INT | NAME | '(' expr ')' ---- */

typedef struct DimParser {
    IrModel *m;
    const char *p, *end;
    bool declare;      /* second pass: syntax known good, create symbols */
} DimParser;

static void dp_space(DimParser *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\t')) d->p++;
}

static bool dp_expr(DimParser *d, IrDim *out);

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' && c <= '9');
}

static bool dp_factor(DimParser *d, IrDim *out)
{
    dp_space(d);
    if (d->p >= d->end) return false;
    if (*d->p == '(') {
        d->p++;
        if (!dp_expr(d, out)) return false;
        dp_space(d);
        if (d->p >= d->end || *d->p != ')') return false;
        d->p++;
        return true;
    }
    if (*d->p >= '0' && *d->p <= '9') {
        int64_t v = 0;
        while (d->p < d->end && *d->p >= '0' && *d->p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *d->p - '0', &v)) return false;
            d->p++;
        }
        *out = v;
        return true;
    }
    if (!is_name_char(*d->p, true)) return false;
    const char *start = d->p;
    while (d->p < d->end && is_name_char(*d->p, false)) d->p++;
    if (!d->declare) {
        *out = 1;  /* syntax check only */
        return true;
    }
    char *name = arena_strndup(d->m->arena, start, (size_t)(d->p - start));
    *out = ir_dim_sym(d->m, name);
    return true;
}

static bool dp_term(DimParser *d, IrDim *out)
{
    if (!dp_factor(d, out)) return false;
    for (;;) {
        dp_space(d);
        if (d->p >= d->end || *d->p != '*') return true;
        d->p++;
        IrDim r;
        if (!dp_factor(d, &r)) return false;
        *out = d->declare ? ir_dim_mul(d->m, *out, r) : 1;
    }
}

static bool dp_expr(DimParser *d, IrDim *out)
{
    if (!dp_term(d, out)) return false;
    for (;;) {
        dp_space(d);
        if (d->p >= d->end || (*d->p != '+' && *d->p != '-')) return true;
        char op = *d->p++;
        IrDim r;
        if (!dp_term(d, &r)) return false;
        if (d->declare) *out = op == '+' ? ir_dim_add(d->m, *out, r) : ir_dim_sub(d->m, *out, r);
    }
}

bool ir_dim_parse(IrModel *m, const char *s, size_t n, IrDim *out)
{
    /* Check the syntax first so a malformed string declares no symbols. */
    for (int pass = 0; pass < 2; pass++) {
        DimParser d = {m, s, s + n, pass == 1};
        IrDim v;
        if (!dp_expr(&d, &v)) return false;
        dp_space(&d);
        if (d.p != d.end) return false;
        if (pass == 1) *out = v;
    }
    return true;
}
