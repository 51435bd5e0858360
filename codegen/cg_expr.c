/* cg_expr.c — text for the C backend: a growable output buffer, and C expressions for
 * dimensions, element types and value names.
 *
 * Dimensions are polynomials over the model's symbols (ir/dim.c); in generated code each
 * symbol is a local `const int64_t S_<name>` bound at the top of the graph function, so a
 * dimension prints as integer arithmetic over those ("(2*S_seq + S_past)"). Products of
 * extents are folded at compile time where they are known.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cg_int.h"

void out_printf(Out *o, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (o->len + (size_t)n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (cap < o->len + (size_t)n + 1) cap *= 2;
        char *b = realloc(o->buf, cap);
        if (!b) unreachable("out of memory");
        o->buf = b;
        o->cap = cap;
    }
    vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, aq);
    va_end(aq);
    o->len += (size_t)n;
}

void out_free(Out *o)
{
    free(o->buf);
    memset(o, 0, sizeof *o);
}

bool out_write_file(Diag *d, const Out *o, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return diag_error(d, NULL, "cannot write '%s': %s", path, strerror(errno));
    bool ok = fwrite(o->buf ? o->buf : "", 1, o->len, f) == o->len;
    ok = (fclose(f) == 0) && ok;
    return ok || diag_error(d, NULL, "cannot write '%s': %s", path, strerror(errno));
}

const char *cg_fmt(const CgGraph *cg, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = arena_alloc(cg->m->arena, (size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return s;
}

void cg_ident(const char *s, char *buf, size_t size)
{
    size_t k = 0;
    if (size == 0) return;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_') && k + 1 < size) buf[k++] = '_';
    for (; *s && k + 1 < size; s++) {
        char c = *s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        buf[k++] = ok ? c : '_';
    }
    buf[k] = 0;
}

const char *cg_dim(const CgGraph *cg, IrDim d)
{
    if (IR_DIM_IS_CONST(d)) return cg_fmt(cg, "%lld", (long long)d);
    IrDimPoly p;
    if (!ir_dim_poly(cg->m, d, &p) || p.opaque) return NULL;
    Out o = {0};
    out_printf(&o, "(");
    for (int i = 0; i < p.nterms; i++) {
        const IrDimTerm *t = &p.t[i];
        int64_t c = t->coef;
        if (i > 0) out_printf(&o, c < 0 ? " - " : " + ");
        else if (c < 0) out_printf(&o, "-");
        if (c < 0) c = -c;
        bool first = true;
        bool constant = true;
        for (int k = 0; k < IR_MAX_SYMS; k++) constant &= t->exp[k] == 0;
        if (c != 1 || constant) {
            out_printf(&o, "%lld", (long long)c);
            first = false;
        }
        for (int k = 0; k < IR_MAX_SYMS; k++)
            for (int e = 0; e < t->exp[k]; e++) {
                char id[128];
                cg_ident(cg->m->dims.sym[k], id, sizeof id);
                out_printf(&o, "%sS_%s", first ? "" : "*", id);
                first = false;
            }
    }
    out_printf(&o, ")");
    const char *s = cg_fmt(cg, "%s", o.buf);
    out_free(&o);
    return s;
}

const char *cg_numel(const CgGraph *cg, const IrType *t, int from, int to)
{
    IrDim n = 1;
    for (int i = from; i < to; i++) n = ir_dim_mul(cg->m, n, t->dims[i]);
    return cg_dim(cg, n);
}

const char *cg_ctype(IrDType t)
{
    switch (t) {
    case DT_F32: return "float";
    case DT_F64: return "double";
    case DT_I64: return "int64_t";
    case DT_I32: return "int32_t";
    case DT_I16: return "int16_t";
    case DT_I8: return "int8_t";
    case DT_U64: return "uint64_t";
    case DT_U32: return "uint32_t";
    case DT_U16: return "uint16_t";
    case DT_U8: case DT_BOOL: return "uint8_t";
    default: return NULL;
    }
}

const char *cg_vname(const CgGraph *cg, IrId v) { return cg_fmt(cg, "v%u", v); }
