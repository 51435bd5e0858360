/* wire.c — the model's bytes: a protobuf wire walk that keeps the weights out of protobuf-c,
 * and placement of tensor payloads (borrowed from mapped files, or copied when misaligned).
 *
 * Why walk the wire format by hand: protobuf_c_message_unpack copies every bytes field, so
 * unpacking a 650 MB model would hold the mapping plus a malloc'd copy of every weight. But
 * only three levels lead to the weights: ModelProto.graph (7) -> GraphProto.initializer (5) ->
 * TensorProto.raw_data (9). We walk those levels (varint, fixed and length-delimited fields
 * only), record each initializer's raw_data payload as (offset, length) in the file, and write
 * a "skeleton": the same model with those raw_data fields dropped and the length prefixes of
 * the enclosing TensorProto, GraphProto and ModelProto re-encoded. protobuf-c unpacks the
 * skeleton (kilobytes) and the loader points constants into the mapping. The walk also gives
 * precise messages for truncated files, which protobuf-c would only report as "failed".
 *
 * Placement: a payload is borrowed when its address is a multiple of its element size (the
 * mapping is page aligned, so that is the file offset). Otherwise it is copied into 64-byte
 * aligned arena memory — downstream code loads floats directly, and a misaligned load is
 * undefined behaviour — and the fully covered source pages are dropped with MADV_DONTNEED, so
 * resident memory stays about one copy of the weights.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "onnx_int.h"

enum { L_MODEL, L_GRAPH, L_TENSOR };                   /* the levels the walk descends */
enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };
enum { F_MODEL_GRAPH = 7, F_GRAPH_INITIALIZER = 5, F_TENSOR_RAW_DATA = 9 };

typedef struct Wire {
    Diag *d;
    const char *path;
    const uint8_t *base;       /* start of the file: offsets are relative to it */
    OnnxSkeleton *s;
    size_t cur;                /* index of the initializer being written */
} Wire;

typedef struct Field {
    uint32_t num;
    int wt;
    const uint8_t *start;      /* tag */
    const uint8_t *payload;    /* value (after the length prefix for WT_LEN) */
    const uint8_t *end;        /* one past the field */
} Field;

/* 0: ok; 1: ran out of bytes; 2: longer than 10 bytes. */
static int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t r = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (p == end) return 1;
        uint8_t b = *p++;
        if (shift < 64) r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            *pp = p;
            return 0;
        }
    }
    return 2;
}

static size_t put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        if (v) b |= 0x80;
        if (out) out[n] = b;
        n++;
    } while (v);
    return n;
}

/* Only the top level can run past the end of the file; below it, a field that overruns its
 * enclosing message is corruption. */
static bool field_error(Wire *w, int level, const Field *f, const char *what, uint64_t need, uint64_t have)
{
    size_t at = (size_t)(f->start - w->base);
    if (level == L_MODEL)
        return diag_error(w->d, w->path, "file is truncated: field %u at byte %zu needs %llu bytes, %llu remain",
                          f->num, at, (unsigned long long)need, (unsigned long long)have);
    return diag_error(w->d, w->path, "file is corrupt: %s field %u at byte %zu needs %llu bytes, %llu remain in it",
                      what, f->num, at, (unsigned long long)need, (unsigned long long)have);
}

static bool next_field(Wire *w, int level, const uint8_t **pp, const uint8_t *end, Field *f)
{
    static const char *const msg[] = {"ModelProto", "GraphProto", "TensorProto"};
    const uint8_t *p = *pp;
    uint64_t tag, len;
    f->start = p;
    size_t at = (size_t)(p - w->base);
    int r = get_varint(&p, end, &tag);
    if (r == 1 && level == L_MODEL)
        return diag_error(w->d, w->path, "file is truncated: field header at byte %zu is incomplete", at);
    if (r != 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
        return diag_error(w->d, w->path, "not an ONNX model: invalid protobuf field header at byte %zu", at);
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    switch (f->wt) {
    case WT_VARINT: {
        uint64_t v;
        r = get_varint(&p, end, &v);
        if (r == 1) return field_error(w, level, f, msg[level], 1, 0);
        if (r == 2) return diag_error(w->d, w->path, "not an ONNX model: invalid varint at byte %zu", at);
        f->payload = f->start;
        f->end = p;
        break;
    }
    case WT_I64:
    case WT_I32:
        len = f->wt == WT_I64 ? 8 : 4;
        if ((uint64_t)(end - p) < len) return field_error(w, level, f, msg[level], len, (uint64_t)(end - p));
        f->payload = p;
        f->end = p + len;
        break;
    case WT_LEN:
        r = get_varint(&p, end, &len);
        if (r == 1) return field_error(w, level, f, msg[level], 1, 0);
        if (r == 2) return diag_error(w->d, w->path, "not an ONNX model: invalid length at byte %zu", at);
        if (len > (uint64_t)(end - p)) return field_error(w, level, f, msg[level], len, (uint64_t)(end - p));
        f->payload = p;
        f->end = p + len;
        break;
    default:
        return diag_error(w->d, w->path, "not an ONNX model: unsupported protobuf wire type %d at byte %zu", f->wt, at);
    }
    *pp = f->end;
    return true;
}

static int child_level(int level, const Field *f)
{
    if (f->wt != WT_LEN) return -1;
    if (level == L_MODEL && f->num == F_MODEL_GRAPH) return L_GRAPH;
    if (level == L_GRAPH && f->num == F_GRAPH_INITIALIZER) return L_TENSOR;
    return -1;
}

static void raw_push(OnnxSkeleton *s)
{
    if (s->nraw == s->capraw) {
        size_t cap = s->capraw ? s->capraw * 2 : 64;
        OnnxRaw *r = realloc(s->raw, cap * sizeof *r);
        if (!r) unreachable("out of memory");
        s->raw = r;
        s->capraw = cap;
    }
    s->raw[s->nraw++] = (OnnxRaw){0};
}

/* Re-encodes the message [p, end) at `level` without the raw_data fields; out == NULL only
 * measures. Payload offsets are recorded while writing, so each is recorded once. */
static bool skel(Wire *w, int level, const uint8_t *p, const uint8_t *end, uint8_t *out, size_t *size)
{
    size_t n = 0;
    while (p < end) {
        Field f = {0};
        if (!next_field(w, level, &p, end, &f)) return false;
        if (level == L_TENSOR && f.num == F_TENSOR_RAW_DATA && f.wt == WT_LEN) {
            if (out) /* a repeated field: the last one wins, as in protobuf */
                w->s->raw[w->cur] = (OnnxRaw){true, (uint64_t)(f.payload - w->base), (uint64_t)(f.end - f.payload)};
            continue;
        }
        int child = child_level(level, &f);
        if (child < 0) {
            if (out) memcpy(out + n, f.start, (size_t)(f.end - f.start));
            n += (size_t)(f.end - f.start);
            continue;
        }
        size_t sub;
        if (!skel(w, child, f.payload, f.end, NULL, &sub)) return false;
        n += put_varint(out ? out + n : NULL, ((uint64_t)f.num << 3) | WT_LEN);
        n += put_varint(out ? out + n : NULL, sub);
        if (out) {
            if (child == L_TENSOR) {
                raw_push(w->s);
                w->cur = w->s->nraw - 1;
            }
            if (!skel(w, child, f.payload, f.end, out + n, &sub)) return false;
        }
        n += sub;
    }
    *size = n;
    return true;
}

bool onnx_wire_skeleton(Diag *d, const char *path, const uint8_t *p, size_t n, OnnxSkeleton *s)
{
    memset(s, 0, sizeof *s);
    Wire w = {d, path, p, s, 0};
    size_t len;
    if (!skel(&w, L_MODEL, p, p + n, NULL, &len)) return false;
    s->buf = malloc(len ? len : 1);
    if (!s->buf) unreachable("out of memory");
    if (!skel(&w, L_MODEL, p, p + n, s->buf, &s->len)) unreachable("skeleton walk not repeatable");
    assert(s->len == len);
    return true;
}

void onnx_skeleton_free(OnnxSkeleton *s)
{
    free(s->buf);
    free(s->raw);
    memset(s, 0, sizeof *s);
}

/* ---- placing payloads ---- */

/* Drops the pages that lie entirely inside [p, p+n) from this process's resident set; they
 * come back from the file if anything reads them again. */
static void release_pages(const uint8_t *p, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + n) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void onnx_place(IrModel *m, uint32_t file, uint64_t offset, const OnnxTensorInfo *info, OnnxPayload *out)
{
    assert(file < m->nfiles && offset <= m->files[file].size && info->nbytes <= m->files[file].size - offset);
    const uint8_t *src = m->files[file].base + offset;
    size_t esize = ir_dtype_size(info->dtype);
    out->file = file + 1;
    out->file_offset = offset;
    if (info->nbytes == 0) {
        out->data = arena_alloc(m->arena, 1);
        return;
    }
    if ((uintptr_t)src % esize == 0) {
        out->data = src;
        return;
    }
    void *dst = arena_alloc_aligned(m->arena, (size_t)info->nbytes, 64);
    memcpy(dst, src, (size_t)info->nbytes);
    release_pages(src, (size_t)info->nbytes);
    out->data = dst;
}

/* A decimal byte count from external_data ("offset"/"length"). */
static bool parse_u64(const char *s, uint64_t *v)
{
    if (!s || !*s) return false;
    uint64_t r = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || r > (UINT64_MAX - 9) / 10) return false;
        r = r * 10 + (uint64_t)(*s - '0');
    }
    *v = r;
    return true;
}

/* Relative, and no ".." component: external data must stay beside the model. */
static bool location_ok(Diag *d, const char *where, const char *loc)
{
    if (!loc || !*loc) return diag_error(d, where, "external data has no location");
    if (loc[0] == '/')
        return diag_error(d, where, "external data location '%s' is absolute; it must be relative to the model's "
                          "directory", loc);
    for (const char *c = loc; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return diag_error(d, where, "external data location '%s' leaves the model's directory ('..')", loc);
        c += n;
        if (*c == '/') c++;
    }
    return true;
}

bool onnx_place_external(IrModel *m, const char *where, const Onnx__TensorProto *t, const OnnxTensorInfo *info,
                         OnnxPayload *out)
{
    const char *loc = NULL, *soff = NULL, *slen = NULL;
    for (size_t i = 0; i < t->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = t->external_data[i];
        const char *k = e->key ? e->key : "";
        if (strcmp(k, "location") == 0) loc = e->value;
        else if (strcmp(k, "offset") == 0) soff = e->value;
        else if (strcmp(k, "length") == 0) slen = e->value;
    }
    if (!location_ok(m->diag, where, loc)) return false;
    uint64_t off = 0, len = info->nbytes;
    if (soff && !parse_u64(soff, &off))
        return diag_error(m->diag, where, "external data offset '%s' is not a byte count", soff);
    if (slen && !parse_u64(slen, &len))
        return diag_error(m->diag, where, "external data length '%s' is not a byte count", slen);
    if (len != info->nbytes)
        return diag_error(m->diag, where, "external data length %llu does not match the tensor's %llu bytes",
                          (unsigned long long)len, (unsigned long long)info->nbytes);
    char *path = arena_printf(m->arena, "%s/%s", m->dir, loc);
    int f = ir_model_map_file(m, path, where);
    if (f < 0) return false;
    size_t size = m->files[f].size;
    if (off > size || info->nbytes > size - off)
        return diag_error(m->diag, where,
                          "external data out of range: %llu bytes at offset %llu, but '%s' has %zu bytes",
                          (unsigned long long)info->nbytes, (unsigned long long)off, path, size);
    onnx_place(m, (uint32_t)f, off, info, out);
    return true;
}
