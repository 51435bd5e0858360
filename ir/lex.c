/* lex.c — the tokens and literals of the IR text form (the lexer half of parse.c).
 *
 * One token of lookahead, decoded into l->s (strings unescaped, names without their sigil).
 * Literals are checked before they are converted: integers against the range of their element
 * type, floats with strtof/strtod (correctly rounded; f16/bf16 then round to nearest even from
 * the float, exact for every representable value), so no out-of-range conversion ever happens.
 * Errors carry "file.ir:line:col", computed from the byte offset only when one is reported;
 * the first error sets l->failed, which turns the rest of the input into T_ERROR tokens.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"

void lex_where(const Lexer *l, size_t pos, char *buf, size_t size)
{
    int line = 1;
    size_t bol = 0;
    for (size_t i = 0; i < pos && i < l->len; i++)
        if (l->src[i] == '\n') line++, bol = i + 1;
    /* Bounded: the Diag line has room for a long path and the message both. */
    snprintf(buf, size, "%.400s:%d:%zu", l->path, line, pos - bol + 1);
}

bool lex_error(Lexer *l, size_t pos, const char *fmt, ...)
{
    if (l->failed) return false;
    l->failed = true;
    char where[512];
    lex_where(l, pos, where, sizeof where);
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(l->diag, DIAG_ERROR, where, fmt, ap);
    va_end(ap);
    return false;
}

/* ---- lexer ---- */

static void sput(Lexer *l, char c)
{
    if (l->slen + 1 >= l->scap) {
        l->scap = l->scap ? l->scap * 2 : 64;
        l->s = realloc(l->s, l->scap);
        if (!l->s) unreachable("out of memory");
    }
    l->s[l->slen++] = c;
    l->s[l->slen] = 0;
}

static void sset(Lexer *l, size_t from, size_t to)
{
    l->slen = 0;
    sput(l, 0);
    l->slen = 0;
    for (size_t i = from; i < to; i++) sput(l, l->src[i]);
}

static bool is_ident_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ident_char(int c) { return is_ident_start(c) || is_digit(c) || c == '.'; }
static bool is_value_char(int c) { return is_ident_char(c) || c == ':' || c == '/' || c == '-'; }

/* What the printer may write bare; everything else it quotes. A value or graph name may not
 * end in ':' — that one belongs to "%x: f32[2]". */
bool lex_plain_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || s[n - 1] == ':') return false;
    for (size_t i = 0; i < n; i++)
        if (!is_value_char((unsigned char)s[i])) return false;
    return true;
}

bool lex_plain_sym(const char *s)
{
    if (!is_ident_start((unsigned char)s[0])) return false;
    for (; *s; s++)
        if (!is_ident_char((unsigned char)*s)) return false;
    return true;
}

static int peekc(const Lexer *l, size_t off)
{
    return l->pos + off < l->len ? (unsigned char)l->src[l->pos + off] : -1;
}

static int hexval(int c)
{
    if (is_digit(c)) return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A quoted string at l->pos into l->s: escapes \" \\ \xHH; no raw newline, so that an
 * unterminated string is reported on its own line. */
static bool lex_string(Lexer *l)
{
    size_t start = l->pos++;
    l->slen = 0;
    sput(l, 0);
    l->slen = 0;
    for (;;) {
        int c = peekc(l, 0);
        if (c < 0 || c == '\n') return lex_error(l, start, "unterminated string");
        l->pos++;
        if (c == '"') return true;
        if (c == 0) return lex_error(l, l->pos - 1, "NUL byte in string");
        if (c == '\\') {
            int e = peekc(l, 0);
            if (e == '"' || e == '\\') {
                c = e;
                l->pos++;
            } else if (e == 'x' && hexval(peekc(l, 1)) >= 0 && hexval(peekc(l, 2)) >= 0) {
                c = hexval(peekc(l, 1)) * 16 + hexval(peekc(l, 2));
                if (c == 0) return lex_error(l, l->pos - 1, "NUL byte in string");
                l->pos += 3;
            } else {
                return lex_error(l, l->pos - 1, "unknown escape in string (use \\\", \\\\ or \\xHH)");
            }
        }
        sput(l, (char)c);
    }
}

static void lex_number(Lexer *l)
{
    size_t start = l->pos;
    l->tok.kind = T_INT;
    while (is_digit(peekc(l, 0))) l->pos++;
    if (peekc(l, 0) == '.') {
        l->tok.kind = T_FLOAT;
        l->pos++;
        while (is_digit(peekc(l, 0))) l->pos++;
    }
    int e = peekc(l, 0);
    if (e == 'e' || e == 'E') {
        size_t k = (peekc(l, 1) == '+' || peekc(l, 1) == '-') ? 2 : 1;
        if (is_digit(peekc(l, k))) {
            l->tok.kind = T_FLOAT;
            l->pos += k;
            while (is_digit(peekc(l, 0))) l->pos++;
        }
    }
    sset(l, start, l->pos);
}

/* %name / @name: the plain alphabet, minus trailing ':' (that one belongs to "%x: type"). */
static void lex_name(Lexer *l, TokKind kind)
{
    size_t sigil = l->pos++;
    l->tok.kind = kind;
    if (peekc(l, 0) == '"') {
        if (!lex_string(l)) l->tok.kind = T_ERROR;
        return;
    }
    size_t start = l->pos;
    while (is_value_char(peekc(l, 0))) l->pos++;
    while (l->pos > start && l->src[l->pos - 1] == ':') l->pos--;
    if (l->pos == start) {
        lex_error(l, sigil, "expected a name after '%c'", l->src[sigil]);
        l->tok.kind = T_ERROR;
        return;
    }
    sset(l, start, l->pos);
}

void lex_next(Lexer *l)
{
    for (;;) {
        int c = peekc(l, 0);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') l->pos++;
        else if (c == '#') while (l->pos < l->len && l->src[l->pos] != '\n') l->pos++;
        else break;
    }
    l->tok.pos = l->pos;
    l->tok.c = 0;
    int c = peekc(l, 0);
    if (l->failed) l->tok.kind = T_ERROR;
    else if (c < 0) l->tok.kind = T_EOF;
    else if (is_ident_start(c)) {
        size_t start = l->pos;
        while (is_ident_char(peekc(l, 0))) l->pos++;
        l->tok.kind = T_IDENT;
        sset(l, start, l->pos);
    } else if (is_digit(c)) lex_number(l);
    else if (c == '%') lex_name(l, T_VALUE);
    else if (c == '@') lex_name(l, T_GRAPH);
    else if (c == '"') l->tok.kind = lex_string(l) ? T_STRING : T_ERROR;
    else if (c == '-' && peekc(l, 1) == '>') {
        l->tok.kind = T_ARROW;
        l->pos += 2;
    } else if (c != 0 && strchr("(){}[],=:*+-?", c)) {
        l->tok.kind = T_PUNCT;
        l->tok.c = (char)c;
        l->pos++;
    } else {
        l->tok.kind = T_ERROR;
        if (c >= 0x21 && c < 0x7f) lex_error(l, l->pos, "unexpected character '%c'", c);
        else lex_error(l, l->pos, "unexpected byte 0x%02x", (unsigned)c);
    }
}

bool lex_is_punct(const Lexer *l, char c) { return l->tok.kind == T_PUNCT && l->tok.c == c; }
bool lex_is_kw(const Lexer *l, const char *kw) { return l->tok.kind == T_IDENT && strcmp(l->s, kw) == 0; }

bool lex_accept(Lexer *l, char c)
{
    if (!lex_is_punct(l, c)) return false;
    lex_next(l);
    return true;
}

bool lex_expect(Lexer *l, char c, const char *what)
{
    if (lex_accept(l, c)) return true;
    return lex_error(l, l->tok.pos, "expected '%c' %s", c, what);
}

/* ---- numbers ---- */

bool lex_num(Lexer *l, Num *n)
{
    memset(n, 0, sizeof *n);
    n->pos = l->tok.pos;
    if (lex_accept(l, '-')) n->neg = true;
    bool special = l->tok.kind == T_IDENT && (strcmp(l->s, "nan") == 0 || strcmp(l->s, "inf") == 0);
    if (l->tok.kind != T_INT && l->tok.kind != T_FLOAT && !special)
        return lex_error(l, l->tok.pos, "expected a number");
    if (l->slen > 64) return lex_error(l, l->tok.pos, "numeric literal too long");
    n->is_int = l->tok.kind == T_INT;
    for (size_t i = 0; n->is_int && i < l->slen; i++)
        if (__builtin_mul_overflow(n->mag, 10, &n->mag) || __builtin_add_overflow(n->mag, (uint64_t)(l->s[i] - '0'), &n->mag))
            n->overflow = true;
    snprintf(n->text, sizeof n->text, "%s%s", n->neg ? "-" : "", l->s);
    lex_next(l);
    return true;
}

/* The largest magnitudes of negative and positive values of an integer type. */
static void int_bounds(IrDType dt, uint64_t *neg, uint64_t *pos)
{
    unsigned bits = (unsigned)ir_dtype_size(dt) * 8;
    if (dt == DT_BOOL) *neg = 0, *pos = 1;
    else if (dt == DT_U8 || dt == DT_U16 || dt == DT_U32 || dt == DT_U64) *neg = 0, *pos = UINT64_MAX >> (64 - bits);
    else *neg = (uint64_t)1 << (bits - 1), *pos = *neg - 1;
}

/* An integer of type dt, as two's-complement bits. */
bool lex_num_int(Lexer *l, const Num *n, IrDType dt, uint64_t *bits)
{
    if (!n->is_int) return lex_error(l, n->pos, "expected an integer, got '%s'", n->text);
    uint64_t negmax, posmax;
    int_bounds(dt, &negmax, &posmax);
    if (n->overflow || n->mag > (n->neg ? negmax : posmax))
        return lex_error(l, n->pos, "integer %s out of range for %s", n->text, ir_dtype_name(dt));
    *bits = n->neg ? 0 - n->mag : n->mag;
    return true;
}

static uint16_t f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000, man = x & 0x7fffff;
    int exp = (int)((x >> 23) & 0xff);
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    uint32_t h, rem, half;
    if (e <= 0) {                 /* subnormal half: shift the 24-bit significand into place */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        unsigned shift = (unsigned)(14 - e);
        h = man >> shift;
        rem = man & ((1u << shift) - 1);
        half = 1u << (shift - 1);
    } else {
        h = ((uint32_t)e << 10) | (man >> 13);
        rem = man & 0x1fff;
        half = 0x1000;
    }
    if (rem > half || (rem == half && (h & 1))) h++;   /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

/* A float of type dt (f16/bf16 round to nearest even from the float), stored at dst. */
bool lex_num_float(Lexer *l, const Num *n, IrDType dt, void *dst)
{
    const char *t = n->text + n->neg;
    bool special = strcmp(t, "nan") == 0 || strcmp(t, "inf") == 0;
    errno = 0;
    if (dt == DT_F64) {
        double d = special ? (t[0] == 'n' ? NAN : n->neg ? -INFINITY : INFINITY) : strtod(n->text, NULL);
        if (!special && errno == ERANGE && isinf(d)) return lex_error(l, n->pos, "%s is out of range for f64", n->text);
        memcpy(dst, &d, sizeof d);
        return true;
    }
    float f = special ? (t[0] == 'n' ? NAN : n->neg ? -INFINITY : INFINITY) : strtof(n->text, NULL);
    if (!special && errno == ERANGE && isinf(f)) return lex_error(l, n->pos, "%s is out of range for %s", n->text, ir_dtype_name(dt));
    if (dt == DT_F32) {
        memcpy(dst, &f, sizeof f);
        return true;
    }
    uint16_t h = dt == DT_F16 ? f32_to_f16(f) : f32_to_bf16(f);
    if (!isinf(f) && (h & 0x7fff) == (dt == DT_F16 ? 0x7c00 : 0x7f80))
        return lex_error(l, n->pos, "%s is out of range for %s", n->text, ir_dtype_name(dt));
    memcpy(dst, &h, sizeof h);
    return true;
}

bool lex_num_store(Lexer *l, const Num *n, IrDType dt, unsigned char *dst)
{
    if (ir_dtype_is_float(dt)) return lex_num_float(l, n, dt, dst);
    uint64_t bits = 0;
    if (!lex_num_int(l, n, dt, &bits)) return false;
    switch (ir_dtype_size(dt)) {
    case 1: { uint8_t v = (uint8_t)bits; memcpy(dst, &v, 1); break; }
    case 2: { uint16_t v = (uint16_t)bits; memcpy(dst, &v, 2); break; }
    case 4: { uint32_t v = (uint32_t)bits; memcpy(dst, &v, 4); break; }
    case 8: memcpy(dst, &bits, 8); break;
    default: unreachable("integer element size");
    }
    return true;
}

bool lex_i64(Lexer *l, int64_t *out)
{
    Num n;
    return lex_num(l, &n) && lex_num_store(l, &n, DT_I64, (unsigned char *)out);
}

