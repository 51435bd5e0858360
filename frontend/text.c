/* text.c — bqc's byte-level vocabulary: what `bqc eval` and the example app tokenise with.
 *
 * Ids 0..3 are OPT's specials in OPT's order (<s>, <pad>, </s>, <unk>); byte b is id b + 4,
 * 260 ids in all. Every byte of a text is a token, so perplexity per token is perplexity per
 * byte, and bits per byte is the mean negative log-likelihood in base 2. The trained model's
 * Python tools use the same mapping (tools/bytevocab.py).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frontend.h"

int64_t *text_read_ids(Diag *d, const char *path, int64_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) return diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    int64_t *ids = malloc(cap * sizeof *ids);
    unsigned char buf[1 << 15];
    size_t got;
    while (ids && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (n + got > cap) {
            while (n + got > cap) cap *= 2;
            int64_t *t = realloc(ids, cap * sizeof *ids);
            if (!t) free(ids);
            ids = t;
        }
        for (size_t i = 0; ids && i < got; i++) ids[n++] = (int64_t)buf[i] + BYTEVOCAB_OFFSET;
    }
    bool err = ferror(f);
    fclose(f);
    if (!ids) return diag_error(d, NULL, "'%s': out of memory", path), NULL;
    if (err) {
        free(ids);
        return diag_error(d, NULL, "cannot read '%s': %s", path, strerror(errno)), NULL;
    }
    *count = (int64_t)n;
    return ids;
}
