/* quant.c — `bqc quant -f FORMAT [--codes] [--stats]`: quantise numbers from stdin and print
 * what the format makes of them, through the runtime's reference kernels (the same ones the
 * interpreter and every generated kernel are checked against).
 *
 * The numbers are whitespace-separated (anything strtof reads, "nan" and "inf" included) and
 * form consecutive blocks along K, the last one possibly short. Each dequantised value is
 * printed on its own line by one rule: the shortest decimal that reads back as the same
 * double (the float32 widened exactly), laid out like Python's repr — "1.0", "-0.3125",
 * "0.0", "1.1017745733261108", "1e-05", "nan", "inf". That reproduces ../shared/formats.md's
 * worked examples character for character, and numpy prints the same strings. --codes adds a
 * "# block" line before each block (shared field and element codes); --stats a final "#" line
 * with the SQNR and bits per element, so `grep -v '^#'` always leaves just the values.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt.h"
#include "driver.h"

static const char quant_usage[] = "usage: bqc quant -f FORMAT [--codes] [--stats] < numbers";

/* A bad command line: one error line, then quant's usage line; exit status 2. */
static int quant_usage_error(const char *what, const char *arg)
{
    fprintf(stderr, "bqc: error: %s%s%s%s\n%s\n", what, arg ? " '" : "", arg ? arg : "", arg ? "'" : "", quant_usage);
    return 2;
}

/* Python-repr layout of the shortest round-tripping decimal of v. */
static void repr(double v, char *out, size_t size)
{
    if (isnan(v)) {
        snprintf(out, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, size, v < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e = [-]d[.ddd]e±XX */
    const char *s = e;
    int neg = *s == '-';
    s += neg;
    char dig[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') dig[nd++] = *s;
    dig[nd] = 0;
    int X = atoi(s + 1);
    char *o = out;
    size_t left = size;
#define PUT(...)                                                     \
    do {                                                             \
        int r_ = snprintf(o, left, __VA_ARGS__);                     \
        if (r_ > 0 && (size_t)r_ < left) o += r_, left -= (size_t)r_; \
    } while (0)
    if (neg) PUT("-");
    if (X < -4 || X >= 16) {
        PUT("%c", dig[0]);
        if (nd > 1) PUT(".%s", dig + 1);
        PUT("e%c%02d", X < 0 ? '-' : '+', X < 0 ? -X : X);
    } else if (X >= 0) {
        for (int i = 0; i <= X; i++) PUT("%c", i < nd ? dig[i] : '0');
        PUT(".%s", nd > X + 1 ? dig + X + 1 : "0");
    } else {
        PUT("0.");
        for (int i = 0; i < -X - 1; i++) PUT("0");
        PUT("%s", dig);
    }
#undef PUT
}

/* Reads all of stdin; every token must be a float. Exit status 1 (one line) otherwise. */
static int read_numbers(float **xs, int64_t *count)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + len, 1, cap - len - 1, stdin)) > 0;) {
        len += r;
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    if (!buf) {
        fprintf(stderr, "bqc: error: out of memory reading stdin\n");
        return 1;
    }
    buf[len] = 0;
    int64_t n = 0, ncap = 1024, line = 1;
    float *x = malloc((size_t)ncap * sizeof *x);
    const char *line_start = buf;
    for (char *p = buf; x && *p;) {
        if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n' || *p == '\f' || *p == '\v') {
            if (*p == '\n') line++, line_start = p + 1;
            p++;
            continue;
        }
        char *tok = p;
        while (*p && !strchr(" \t\r\n\f\v", *p)) p++;
        char saved = *p;
        *p = 0;
        char *end;
        errno = 0;
        float v = strtof(tok, &end);
        const char *why = end == tok || *end ? "is not a number"
                          : errno == ERANGE && isinf(v) ? "is out of the float range" : NULL;
        if (why) {
            fprintf(stderr, "bqc: error: stdin:%lld:%lld: '%.40s' %s (value %lld)\n", (long long)line,
                    (long long)(tok - line_start + 1), tok, why, (long long)n + 1);
            free(buf);
            free(x);
            return 1;
        }
        *p = saved;
        if (n == ncap) {
            float *nx = realloc(x, (size_t)(ncap *= 2) * sizeof *x);
            if (!nx) free(x);
            x = nx;
        }
        if (x) x[n++] = v;
    }
    free(buf);
    if (!x) {
        fprintf(stderr, "bqc: error: out of memory reading stdin\n");
        return 1;
    }
    *xs = x;
    *count = n;
    return 0;
}

static void print_block_line(const bq_format *f, const void *q, int64_t n, int64_t b)
{
    bq_block_info bi;
    int32_t codes[256];
    int64_t len = bq_block_fields(f, q, n, b, &bi, codes);
    char v[64];
    if (bi.shared_bits == 0) {
        printf("# block %lld: code 0x%0*x\n", (long long)b, f->width / 4, (unsigned)codes[0]);
        return;
    }
    if (isnan(bi.shared_value)) snprintf(v, sizeof v, "nan");
    else if (bi.shared_bits == 8) snprintf(v, sizeof v, "%d", (int)bi.shared_value);
    else repr(bi.shared_value, v, sizeof v);
    printf("# block %lld: %s=%s (0x%0*x) codes", (long long)b, bi.shared_name, v, bi.shared_bits / 4,
           (unsigned)bi.shared);
    for (int64_t i = 0; i < len; i++) printf(" %d", (int)codes[i]);
    printf("\n");
}

int cmd_quant(int argc, char **argv)
{
    const char *fname = NULL;
    bool codes = false, stats = false;
    for (int i = 1; i < argc; i++) {
        bool missing = false;
        const char *v;
        if ((v = driver_flag_value(argc, argv, &i, "-f", &missing)) ||
            (v = driver_flag_value(argc, argv, &i, "--format", &missing)))
            fname = v;
        else if (missing) return quant_usage_error("missing value for", argv[i]);
        else if (strcmp(argv[i], "--codes") == 0) codes = true;
        else if (strcmp(argv[i], "--stats") == 0) stats = true;
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("%s\n\n"
                   "Quantises whitespace-separated numbers from stdin (consecutive blocks along K, the\n"
                   "last one may be short) and prints each dequantised value on a line: the shortest\n"
                   "decimal that reads back as the same value, laid out like Python's repr.\n\n"
                   "  -f, --format FORMAT   bfp6/16, bm8e4/16, bl5/16, mxint8, mxfp4, int4/32, nf4/64, fp16, ...\n"
                   "  --codes               before each block, a '# block' line: shared field and codes\n"
                   "  --stats               a final '#' line: n, SQNR in dB (inf when exact), bits per element\n",
                   quant_usage);
            return 0;
        } else return quant_usage_error("unknown quant option", argv[i]);
    }
    if (!fname) return quant_usage_error("quant needs -f FORMAT", NULL);

    bq_format f;
    char why[256], forms[512];
    if (bq_format_parse(fname, strlen(fname), 0, &f, why, sizeof why) != BQ_OK) {
        bq_format_forms(forms, sizeof forms);
        fprintf(stderr, "bqc: error: %s; valid formats: %s\n", why, forms);
        return 2;
    }
    float *x;
    int64_t n;
    if (read_numbers(&x, &n) != 0) return 1;
    size_t bytes = bq_format_bytes(&f, n);
    void *q = malloc(bytes ? bytes : 1);
    float *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    if (!q || !y) {
        fprintf(stderr, "bqc: error: out of memory\n");
        free(x), free(q), free(y);
        return 1;
    }
    bq_quantize(&f, x, n, q);
    bq_dequantize(&f, q, n, y);
    int64_t B = f.block;
    char s[64];
    for (int64_t i = 0; i < n; i++) {
        if (codes && i % B == 0) print_block_line(&f, q, n, i / B);
        repr(y[i], s, sizeof s);
        printf("%s\n", s);
    }
    if (stats) {
        double sx = 0, se = 0;
        for (int64_t i = 0; i < n; i++) {
            double d = (double)x[i] - (double)y[i];
            sx += (double)x[i] * x[i];
            se += d * d;
        }
        if (isnan(sx) || isnan(se)) snprintf(s, sizeof s, "nan");
        else if (se == 0) snprintf(s, sizeof s, "inf");
        else snprintf(s, sizeof s, "%.2f", 10.0 * log10(sx / se));
        printf("# n=%lld sqnr_db=%s bpw=%g\n", (long long)n, s, bq_format_bpe(&f));
    }
    free(x), free(q), free(y);
    return fflush(stdout) == 0 ? 0 : 1;
}
