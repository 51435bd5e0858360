/* diag.c — diagnostics as values.
 *
 * Library code never prints or exits: it formats "<where>: error: <message>" into a Diag,
 * which counts it, keeps the last error line, and hands the line to a sink (stderr for the
 * CLI, a growable buffer in tests). Returning false from diag_error lets callers write
 * `return diag_error(...)`.
 */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

_Noreturn void ir_unreachable_at(const char *file, int line, const char *what)
{
    fprintf(stderr, "bqc: internal error at %s:%d: %s\n", file, line, what);
    abort();
}

void diag_init(Diag *d, DiagSink sink, void *ud)
{
    memset(d, 0, sizeof *d);
    d->sink = sink;
    d->ud = ud;
}

void diag_sink_stderr(void *ud, DiagLevel level, const char *line)
{
    (void)ud;
    (void)level;
    fprintf(stderr, "%s\n", line);
}

void diag_sink_buffer(void *ud, DiagLevel level, const char *line)
{
    (void)level;
    DiagBuffer *b = ud;
    size_t n = strlen(line);
    if (b->len + n + 2 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 2) cap *= 2;
        char *t = realloc(b->text, cap);
        if (!t) abort();
        b->text = t;
        b->cap = cap;
    }
    memcpy(b->text + b->len, line, n);
    b->len += n;
    b->text[b->len++] = '\n';
    b->text[b->len] = 0;
}

void diag_buffer_free(DiagBuffer *b)
{
    free(b->text);
    memset(b, 0, sizeof *b);
}

void diag_emitv(Diag *d, DiagLevel level, const char *where, const char *fmt, va_list ap)
{
    static const char *const names[] = {"note", "warning", "error"};
    char line[sizeof d->last];
    size_t n = (size_t)snprintf(line, sizeof line, "%s: ", where && *where ? where : "bqc");
    /* A location longer than the line is truncated, never written past the buffer. */
    if (n < sizeof line) n += (size_t)snprintf(line + n, sizeof line - n, "%s: ", names[level]);
    if (n < sizeof line) vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (level == DIAG_ERROR) {
        d->nerrors++;
        memcpy(d->last, line, sizeof line);
    } else if (level == DIAG_WARNING) {
        d->nwarnings++;
    }
    if (d->sink) d->sink(d->ud, level, line);
}

bool diag_error(Diag *d, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(d, DIAG_ERROR, where, fmt, ap);
    va_end(ap);
    return false;
}

void diag_warning(Diag *d, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(d, DIAG_WARNING, where, fmt, ap);
    va_end(ap);
}

void diag_note(Diag *d, const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_emitv(d, DIAG_NOTE, where, fmt, ap);
    va_end(ap);
}
