/* lex.h — private to the IR text form (lex.c, parse.c, print.c): tokens, literals, positions,
 * and the plain-name alphabet the printer shares with the lexer.
 *
 * Not part of ir.h: nothing outside the text form reads tokens.
 */
#ifndef BQC_LEX_H
#define BQC_LEX_H

#include "ir.h"

typedef enum { T_EOF, T_ERROR, T_IDENT, T_VALUE, T_GRAPH, T_INT, T_FLOAT, T_STRING, T_ARROW, T_PUNCT } TokKind;

typedef struct Tok { TokKind kind; size_t pos; char c; } Tok;  /* c: the T_PUNCT character */

typedef struct Lexer {
    Diag *diag;
    const char *path;              /* for messages */
    const char *src;
    size_t len, pos;
    Tok tok;                       /* the current token */
    char *s;                       /* its decoded text, NUL-terminated (malloc'd) */
    size_t slen, scap;
    bool failed;                   /* an error was reported: later ones are suppressed */
} Lexer;

/* A numeric literal: '-'? (INT | FLOAT | nan | inf), converted on demand to a type. */
typedef struct Num {
    size_t pos;
    bool neg, is_int, overflow;
    uint64_t mag;                  /* is_int: the magnitude (overflow: did not fit) */
    char text[72];                 /* with its sign, for strtod */
} Num;

void lex_next(Lexer *l);
bool lex_is_punct(const Lexer *l, char c);
bool lex_is_kw(const Lexer *l, const char *kw);  /* an identifier spelled kw */
bool lex_accept(Lexer *l, char c);               /* consumes punctuation c if it is next */
bool lex_expect(Lexer *l, char c, const char *what);
/* "path:line:col" of byte offset pos. */
void lex_where(const Lexer *l, size_t pos, char *buf, size_t size);
/* Reports the first error at pos (later ones are dropped) and returns false. */
bool lex_error(Lexer *l, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Names the lexer reads back whole without quotes (the printer quotes the others). */
bool lex_plain_name(const char *s);   /* values %x, graphs @g */
bool lex_plain_sym(const char *s);    /* dimension symbols */

bool lex_num(Lexer *l, Num *n);
bool lex_num_int(Lexer *l, const Num *n, IrDType dt, uint64_t *bits);   /* two's complement */
bool lex_num_float(Lexer *l, const Num *n, IrDType dt, void *dst);     /* f16/bf16/f32/f64 */
bool lex_num_store(Lexer *l, const Num *n, IrDType dt, unsigned char *dst);
bool lex_i64(Lexer *l, int64_t *out);

#endif
