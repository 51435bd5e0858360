/* formats.c — the number-format table (formats.def) and everything derived from its rows:
 * names (parse, canonical name, plan objects, the list of valid forms), bits per element,
 * storage size, and the storage layout shared by all families.
 *
 * Layout (docs/formats.md): a run of n elements along K is ceil(n/B) blocks back to back;
 * each block is its shared field (sbits/8 bytes, little-endian) followed by its B element
 * codes (fewer in the last block) bit-packed LSB-first, w bits each, padded to a whole byte.
 * The plain types are the same thing with no shared field: a packed array of 16- or 32-bit
 * codes. So one packer and one unpacker serve every format, bq_format_bytes is that layout's
 * exact size, and the per-family kernels only ever see a shared field and an array of codes.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "formats_int.h"

static const bq_family_row rows[] = {
#define FAMILY(id, name, form, wname, wmin, wmax, wdef, eb, ebdef, bmin, bmax, bdef, rmax, sbits, sname, twos, \
               exact, kernel)                                                                                   \
    {name, form, wname, wmin, wmax, wdef, eb, ebdef, bmin, bmax, bdef, rmax, sbits, sname, twos, exact,       \
     bq_##kernel##_quant, bq_##kernel##_decode},
#include "formats.def"
};

static const bq_mxelem_row mxelems[] = {
#define MXELEM(name, width, ebits, mbits, bias, maxcode) {name, width, ebits, mbits, bias, maxcode},
#include "formats.def"
};

/* The rows must be in bq_family order. */
enum {
#define FAMILY(id, ...) ROW_##id,
#include "formats.def"
    ROW__COUNT
};
#define FAMILY(id, ...) _Static_assert((int)ROW_##id == (int)BQ_FAM_##id, "formats.def: row " #id " out of order");
#include "formats.def"
_Static_assert((int)ROW__COUNT == (int)BQ_FAM__COUNT, "formats.def: a bq_family has no row");
/* Every block fits the kernels' per-block buffers, and no block collides with "row". */
#define FAMILY(id, name, form, wname, wmin, wmax, wdef, eb, ebdef, bmin, bmax, bdef, rmax, ...) \
    _Static_assert((bmax) <= BQ_BLOCK_MAX && (rmax) <= BQ_BLOCK_MAX && BQ_BLOCK_MAX < BQ_BLOCK_ROW,   \
                   "formats.def: row " #id " has blocks beyond BQ_BLOCK_MAX");
#include "formats.def"

#define NROWS (sizeof rows / sizeof rows[0])
#define NMX (sizeof mxelems / sizeof mxelems[0])

const bq_family_row *bq_family_row_of(int family)
{
    return family >= 0 && (size_t)family < NROWS ? &rows[family] : NULL;
}

const bq_mxelem_row *bq_mxelem_find(int width, int ebits)
{
    for (size_t i = 0; i < NMX; i++)
        if (mxelems[i].width == width && mxelems[i].ebits == ebits) return &mxelems[i];
    return NULL;
}

/* The only MX element type of this width (mxfp4), or NULL. */
static const bq_mxelem_row *mxelem_unique(int width)
{
    const bq_mxelem_row *found = NULL;
    for (size_t i = 0; i < NMX; i++)
        if (mxelems[i].width == width) {
            if (found) return NULL;
            found = &mxelems[i];
        }
    return found;
}

static int fail(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    if (why && whylen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return BQ_ERR_ARG;
}

/* "mxfp8e4m3, mxfp8e5m2, ..., mxfp4" (widths given: only those of that width). */
static void mx_names(char *buf, size_t size, int width)
{
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NMX && k < size; i++) {
        const bq_mxelem_row *m = &mxelems[i];
        if (width && m->width != width) continue;
        int r = mxelem_unique(m->width) ? snprintf(buf + k, size - k, "%smxfp%d", k ? ", " : "", m->width)
                                        : snprintf(buf + k, size - k, "%smxfp%d%s", k ? ", " : "", m->width, m->name);
        k += r > 0 ? (size_t)r : 0;
    }
}

static int is_pow2(int v) { return v > 0 && (v & (v - 1)) == 0; }

/* "row" while a block is an int being checked (stored as BQ_BLOCK_ROW): no number is it. */
#define ROW_ARG (-2)

/* "int" (the families with row blocks), for messages. */
static void row_families(char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NROWS && k < size; i++)
        if (rows[i].rmax) {
            int n = snprintf(buf + k, size - k, "%s%s", k ? ", " : "", rows[i].name);
            k += n > 0 ? (size_t)n : 0;
        }
}

/* The rules every format obeys (ints, so out-of-range requests are reported, not wrapped).
 * Blocks: the powers of two bmin..bmax, and with row blocks (rmax) any multiple of 8 from
 * bmin to rmax; "auto" and "row" only where `allow` says. */
static int check(const bq_family_row *r, int width, int ebits, int block, int allow, char *why, size_t whylen)
{
    if (width < r->wmin || width > r->wmax)
        return r->wmin == r->wmax
                   ? fail(why, whylen, "%s width %d is not %d", r->name, width, r->wmin)
                   : fail(why, whylen, "%s width %d is outside %d..%d", r->name, width, r->wmin, r->wmax);
    if (r->eb == EB_NONE && ebits != 0) return fail(why, whylen, "%s takes no exponent bits", r->name);
    if (r->eb == EB_FREE && (ebits < 1 || ebits > width - 1))
        return fail(why, whylen, "%s exponent bits %d is outside 1..%d for width %d", r->name, ebits, width - 1,
                    width);
    if (r->eb == EB_MX && !bq_mxelem_find(width, ebits)) {
        char list[128];
        mx_names(list, sizeof list, 0);
        return fail(why, whylen, "mxfp%de%dm%d is not an MX element type (%s)", width, ebits, width - 1 - ebits,
                    list);
    }
    if (r->bmin == r->bmax) {
        if (block == r->bmin) return BQ_OK;
        return r->bmin == 1 ? fail(why, whylen, "%s has no block", r->name)
                            : fail(why, whylen, "%s has a fixed block of %d", r->name, r->bmin);
    }
    if (block == BQ_BLOCK_AUTO)
        return allow & BQ_ALLOW_AUTO ? BQ_OK : fail(why, whylen, "block 'auto' is not allowed here");
    if (block == ROW_ARG) {
        char list[64];
        row_families(list, sizeof list);
        if (!r->rmax) return fail(why, whylen, "%s has no block 'row' (one block per row of K: %s only)", r->name, list);
        return allow & BQ_ALLOW_ROW ? BQ_OK : fail(why, whylen, "block 'row' is not allowed here");
    }
    if (r->rmax && block % 8 == 0 && block >= r->bmin && block <= r->rmax) return BQ_OK;
    if (!is_pow2(block) || block < r->bmin || block > r->bmax)
        return r->rmax ? fail(why, whylen, "%s block %d is not a multiple of 8 in %d..%d", r->name, block, r->bmin, r->rmax)
                       : fail(why, whylen, "%s block %d is not a power of two in %d..%d", r->name, block, r->bmin, r->bmax);
    return BQ_OK;
}

/* The error for a name or object that leaves the element type open where it must not. */
static int need_ebits(const bq_family_row *r, int width, char *why, size_t whylen)
{
    if (r->eb == EB_MX) {
        char list[128];
        mx_names(list, sizeof list, width);
        return list[0] ? fail(why, whylen, "mxfp%d needs an element type (%s)", width, list)
                       : fail(why, whylen, "mxfp width %d is not an MX element width", width);
    }
    return fail(why, whylen, "%s%d needs exponent bits (%s%de<x>/<B>)", r->name, width, r->name, width);
}

/* Default exponent bits for a width (plan objects): the only MX element type of that width,
 * or the row's default with its default width; otherwise the object must say. */
static int default_ebits(const bq_family_row *r, int width, int *ebits, char *why, size_t whylen)
{
    const bq_mxelem_row *m = r->eb == EB_MX ? mxelem_unique(width) : NULL;
    if (r->eb == EB_NONE || m || width == r->wdef) {
        *ebits = r->eb == EB_NONE ? 0 : m ? m->ebits : r->ebdef;
        return BQ_OK;
    }
    return need_ebits(r, width, why, whylen);
}

/* ebits < 0: the default; block -1: the default (ROW_ARG: "row"). */
static int build(const bq_family_row *r, int width, int ebits, int block, int allow, bq_format *f, char *why,
                 size_t whylen)
{
    if (ebits < 0 && default_ebits(r, width, &ebits, why, whylen) != BQ_OK) return BQ_ERR_ARG;
    if (block == -1) block = r->bdef;
    if (check(r, width, ebits, block, allow, why, whylen) != BQ_OK) return BQ_ERR_ARG;
    f->family = (uint8_t)(r - rows);
    f->width = (uint8_t)width;
    f->ebits = (uint8_t)ebits;
    f->block = block == ROW_ARG ? BQ_BLOCK_ROW : (uint16_t)block;
    return BQ_OK;
}

/* Decimal digits at s[*p..n): their value (capped at 999999), or -1 if there are none. */
static int digits(const char *s, size_t n, size_t *p)
{
    int v = -1;
    for (; *p < n && s[*p] >= '0' && s[*p] <= '9'; ++*p) v = (v < 0 ? 0 : v > 99999 ? 99999 : v) * 10 + (s[*p] - '0');
    return v;
}

int bq_format_parse(const char *s, size_t n, int allow, bq_format *f, char *why, size_t whylen)
{
    const bq_family_row *r = NULL;
    if (!s) s = "", n = 0;
    for (size_t i = 0; i < NROWS; i++) {
        size_t k = strlen(rows[i].name);
        if (k <= n && memcmp(s, rows[i].name, k) == 0 && (!r || k > strlen(r->name))) r = &rows[i];
    }
    size_t p = r ? strlen(r->name) : 0;
    int width = r ? r->wdef : 0, ebits = -1, block = -1;
    if (r && r->wname) width = digits(s, n, &p);
    /* names spell the element type ("bm8e4", "mxfp8e4m3"), except the only one of a width */
    if (r && r->eb != EB_NONE && width >= 0 && (p >= n || s[p] != 'e') && !(r->eb == EB_MX && mxelem_unique(width)))
        return need_ebits(r, width, why, whylen);
    if (r && r->eb != EB_NONE && p < n && s[p] == 'e') {
        p++;
        ebits = digits(s, n, &p);
        if (r->eb == EB_MX && ebits >= 0) {
            int mbits = p < n && s[p] == 'm' ? (p++, digits(s, n, &p)) : -1;
            if (mbits >= 0 && mbits != width - 1 - ebits) {   /* e.g. mxfp8e3m3 */
                char list[128];
                mx_names(list, sizeof list, 0);
                return fail(why, whylen, "mxfp%de%dm%d is not an MX element type (%s)", width, ebits, mbits, list);
            }
            if (mbits < 0) ebits = -1;
        }
        if (ebits < 0) r = NULL;
    }
    if (r && p < n && s[p] == '/') {
        p++;
        if (n - p == 4 && memcmp(s + p, "auto", 4) == 0) {
            block = BQ_BLOCK_AUTO;
            p = n;
        } else if (n - p == 3 && memcmp(s + p, "row", 3) == 0) {
            block = ROW_ARG;
            p = n;
        } else if ((block = digits(s, n, &p)) < 0) {
            r = NULL;
        }
    }
    if (!r || width < 0 || p != n) return fail(why, whylen, "unknown format '%.*s'", (int)(n > 64 ? 64 : n), s);
    return build(r, width, ebits, block, allow, f, why, whylen);
}

int bq_format_make(const char *family, int width, int ebits, int block, int allow, bq_format *f, char *why,
                   size_t whylen)
{
    for (size_t i = 0; i < NROWS; i++)
        if (family && strcmp(family, rows[i].name) == 0)
            return build(&rows[i], width < 0 ? rows[i].wdef : width, ebits,
                         block == BQ_BLOCK_ROW ? ROW_ARG : block < 0 ? -1 : block, allow, f, why, whylen);
    char list[160];
    size_t k = 0;
    for (size_t i = 0; i < NROWS && k < sizeof list; i++) {
        int r = snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", rows[i].name);
        k += r > 0 ? (size_t)r : 0;
    }
    return fail(why, whylen, "unknown format family '%s' (%s)", family ? family : "(null)", list);
}

/* The row of a valid format (open blocks as `allow` says), else NULL. */
static const bq_family_row *valid_row(const bq_format *f, int allow)
{
    const bq_family_row *r = f ? bq_family_row_of(f->family) : NULL;
    int block = f && f->block == BQ_BLOCK_ROW ? ROW_ARG : f ? f->block : 0;
    return r && check(r, f->width, f->ebits, block, allow, NULL, 0) == BQ_OK ? r : NULL;
}

int bq_format_name(const bq_format *f, char *buf, size_t size)
{
    const bq_family_row *r = valid_row(f, BQ_ALLOW_AUTO | BQ_ALLOW_ROW);
    if (!r) {
        if (size) buf[0] = 0;
        return -1;
    }
    char w[8] = "", e[16] = "", b[16] = "";
    if (r->wname) snprintf(w, sizeof w, "%d", f->width);
    if (r->eb == EB_FREE) snprintf(e, sizeof e, "e%d", f->ebits);
    if (r->eb == EB_MX && !mxelem_unique(f->width)) snprintf(e, sizeof e, "e%dm%d", f->ebits, f->width - 1 - f->ebits);
    if (r->bmin != r->bmax && f->block == BQ_BLOCK_ROW) snprintf(b, sizeof b, "/row");
    else if (r->bmin != r->bmax && f->block) snprintf(b, sizeof b, "/%d", f->block);
    else if (r->bmin != r->bmax) snprintf(b, sizeof b, "/auto");
    return snprintf(buf, size, "%s%s%s%s", r->name, w, e, b);
}

size_t bq_format_forms(char *buf, size_t size)
{
    size_t k = 0;
    int bmin = 0, bmax = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NROWS && k < size; i++) {
        const bq_family_row *r = &rows[i];
        char list[128];
        int n;
        if (r->eb == EB_MX) {
            mx_names(list, sizeof list, 0);
            n = snprintf(buf + k, size - k, "%s%s", k ? ", " : "", list);
        } else if (r->wmin != r->wmax) {
            n = snprintf(buf + k, size - k, "%s%s (widths %d..%d)", k ? ", " : "", r->form, r->wmin, r->wmax);
        } else {
            n = snprintf(buf + k, size - k, "%s%s", k ? ", " : "", r->form);
        }
        k += n > 0 ? (size_t)n : 0;
        if (r->bmin != r->bmax) {
            bmin = bmin && bmin < r->bmin ? bmin : r->bmin;
            bmax = bmax > r->bmax ? bmax : r->bmax;
        }
    }
    if (k < size) {
        int n = snprintf(buf + k, size - k, "; <B> is a power of two in %d..%d", bmin, bmax);
        k += n > 0 ? (size_t)n : 0;
    }
    for (size_t i = 0; i < NROWS && k < size; i++)
        if (rows[i].rmax) {
            int n = snprintf(buf + k, size - k, ", for %s also any multiple of 8 up to %d (\"row\": one block per row)",
                             rows[i].name, rows[i].rmax);
            k += n > 0 ? (size_t)n : 0;
        }
    return k;
}

double bq_format_bpe(const bq_format *f)
{
    const bq_family_row *r = valid_row(f, 0);
    return r ? f->width + (double)r->sbits / f->block : NAN;
}

/* ---- storage ---- */

static size_t block_bytes(const bq_family_row *r, int width, int64_t len)
{
    return (size_t)r->sbits / 8 + ((size_t)len * (size_t)width + 7) / 8;
}

size_t bq_format_bytes(const bq_format *f, int64_t n)
{
    const bq_family_row *r = valid_row(f, 0);
    if (!r || n <= 0) return 0;
    int64_t nb = n / f->block, rem = n % f->block;
    return (size_t)nb * block_bytes(r, f->width, f->block) + (rem ? block_bytes(r, f->width, rem) : 0);
}

static uint8_t *pack(uint8_t *d, const bq_family_row *r, int width, uint32_t shared, const uint32_t *codes, int len)
{
    for (int i = 0; i < r->sbits / 8; i++) *d++ = (uint8_t)(shared >> (8 * i));
    uint32_t mask = width >= 32 ? 0xFFFFFFFFu : (1u << width) - 1;
    uint64_t acc = 0;
    int nbits = 0;
    for (int i = 0; i < len; i++) {
        acc |= (uint64_t)(codes[i] & mask) << nbits;
        for (nbits += width; nbits >= 8; nbits -= 8, acc >>= 8) *d++ = (uint8_t)acc;
    }
    if (nbits) *d++ = (uint8_t)acc;
    return d;
}

static void unpack(const uint8_t *s, const bq_family_row *r, int width, uint32_t *shared, uint32_t *codes, int len)
{
    *shared = 0;
    for (int i = 0; i < r->sbits / 8; i++) *shared |= (uint32_t)*s++ << (8 * i);
    uint32_t mask = width >= 32 ? 0xFFFFFFFFu : (1u << width) - 1;
    uint64_t acc = 0;
    int nbits = 0;
    for (int i = 0; i < len; i++) {
        for (; nbits < width; nbits += 8) acc |= (uint64_t)*s++ << nbits;
        codes[i] = (uint32_t)acc & mask;
        acc >>= width;
        nbits -= width;
    }
}

/* Runs of elements the kernels see at once: a block, or up to BQ_BLOCK_MAX plain elements. */
static int64_t run_len(const bq_family_row *r, const bq_format *f) { return r->sbits ? f->block : BQ_BLOCK_MAX; }

void bq_quantize(const bq_format *f, const float *x, int64_t n, void *dst)
{
    const bq_family_row *r = valid_row(f, 0);
    assert(r && "bq_quantize: invalid format");
    uint32_t shared, codes[BQ_BLOCK_MAX];
    uint8_t *d = dst;
    for (int64_t k0 = 0, B = run_len(r, f); k0 < n; k0 += B) {
        int len = (int)(n - k0 < B ? n - k0 : B);
        r->quant(f, x + k0, len, &shared, codes);
        d = pack(d, r, f->width, shared, codes, len);
    }
}

int bq_decode_run(const bq_format *f, const void *src, int64_t n, int64_t k0, int64_t len, bq_elems *out)
{
    const bq_family_row *r = valid_row(f, 0);
    assert(r && k0 >= 0 && len <= BQ_BLOCK_MAX && k0 + len <= n);
    assert(!r->sbits || (k0 % f->block == 0 && (len == f->block || k0 + len == n)));
    uint32_t shared, codes[BQ_BLOCK_MAX];
    size_t off = r->sbits ? (size_t)(k0 / f->block) * block_bytes(r, f->width, f->block)
                          : (size_t)k0 * (size_t)f->width / 8;
    unpack((const uint8_t *)src + off, r, f->width, &shared, codes, (int)len);
    r->decode(f, shared, codes, (int)len, out);
    return r->exact;
}

void bq_dequantize(const bq_format *f, const void *src, int64_t n, float *y)
{
    const bq_family_row *r = valid_row(f, 0);
    assert(r && "bq_dequantize: invalid format");
    bq_elems el;
    for (int64_t k0 = 0, B = run_len(r, f); k0 < n; k0 += B) {
        int len = (int)(n - k0 < B ? n - k0 : B);
        bq_decode_run(f, src, n, k0, len, &el);
        for (int i = 0; i < len; i++) {
            /* scale·m·2^e is exact in double (24 + 15 bits); one rounding to float */
            double v = el.exact ? ldexp((double)el.scale * el.m[i], el.e[i]) : (double)(el.scale * el.v[i]);
            y[k0 + i] = (float)v;
        }
    }
}

int64_t bq_block_fields(const bq_format *f, const void *src, int64_t n, int64_t b, bq_block_info *info,
                        int32_t *codes)
{
    const bq_family_row *r = valid_row(f, 0);
    if (!r || b < 0 || b * f->block >= n) return 0;
    int64_t k0 = b * f->block, len = n - k0 < f->block ? n - k0 : f->block;
    uint32_t shared, raw[BQ_BLOCK_MAX];
    size_t off = (size_t)b * block_bytes(r, f->width, f->block);
    unpack((const uint8_t *)src + off, r, f->width, &shared, raw, (int)len);
    bq_elems el;
    r->decode(f, shared, raw, (int)len, &el);
    info->len = len;
    info->shared = shared;
    info->shared_bits = r->sbits;
    info->shared_name = r->sname;
    info->scale = el.scale;
    if (r->sbits == 8) info->shared_value = shared == 255 ? NAN : (double)shared - 127;
    else if (r->sbits == 16) info->shared_value = bq_f16_to_float((uint16_t)shared);
    else if (r->sbits == 32) {
        float a;
        memcpy(&a, &shared, 4);
        info->shared_value = a;
    } else info->shared_value = 0;
    for (int64_t i = 0; i < len && codes; i++) codes[i] = r->twos ? bq_twos_value(raw[i], f->width) : (int32_t)raw[i];
    return len;
}
