/* tensorfile.c — tensors on disk: ONNX TensorProto payloads, and .npy / .pb tensor files.
 *
 * The TensorProto decoding here (header checks, raw_data or the typed field for the element
 * type, narrowed to the element size) is the one copy shared by the model loader (initializers,
 * Constant nodes) and the .pb reader. ONNX packs several element types into wider typed
 * fields — int8..uint16, bool, float16 and bfloat16 travel in int32_data (f16/bf16 as their
 * bit patterns), uint32 in uint64_data — so the typed path narrows element by element; the
 * raw path is a byte copy (the format is little-endian, like the host).
 *
 * .npy files are NumPy format 1.0-3.0, C order; we write 1.0 with a 64-byte aligned header
 * like NumPy does, so the data that follows is aligned in a mapped file too.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx_int.h"

/* ---- TensorProto ---- */

const char *onnx_dtype_name(int code, char *buf, size_t size)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&onnx__tensor_proto__data_type__descriptor,
                                                                       code);
    if (v) return v->name;
    snprintf(buf, size, "code %d", code);
    return buf;
}

bool onnx_tensor_info(Diag *d, const char *where, const Onnx__TensorProto *t, OnnxTensorInfo *info)
{
    memset(info, 0, sizeof *info);
    char nb[32];
    int code = t->has_data_type ? t->data_type : 0;
    info->dtype = ir_dtype_from_onnx(code);
    if (info->dtype == DT_UNDEF)
        return diag_error(d, where, "unsupported element type %s", onnx_dtype_name(code, nb, sizeof nb));
    if (t->segment) return diag_error(d, where, "segmented tensors are not supported");
    if (t->n_dims > IR_MAX_RANK)
        return diag_error(d, where, "rank %zu exceeds the maximum %d", t->n_dims, IR_MAX_RANK);
    info->rank = (int)t->n_dims;
    info->numel = 1;
    for (int i = 0; i < info->rank; i++) {
        int64_t x = t->dims[i];
        if (x < 0) return diag_error(d, where, "dimension %d is negative (%lld)", i, (long long)x);
        info->dims[i] = x;
        if (__builtin_mul_overflow(info->numel, x, &info->numel))
            return diag_error(d, where, "too many elements");
    }
    if (__builtin_mul_overflow((uint64_t)info->numel, (uint64_t)ir_dtype_size(info->dtype), &info->nbytes) ||
        info->nbytes > SIZE_MAX / 2)
        return diag_error(d, where, "too many elements");
    return true;
}

bool onnx_check_raw(Diag *d, const char *where, uint64_t have, const OnnxTensorInfo *info)
{
    if (have == info->nbytes) return true;
    return diag_error(d, where, "raw_data has %llu bytes; %lld elements of %s need %llu", (unsigned long long)have,
                      (long long)info->numel, ir_dtype_name(info->dtype), (unsigned long long)info->nbytes);
}

/* The typed field that carries a dtype's values (per the comments in onnx.proto). */
typedef enum { TF_FLOAT, TF_DOUBLE, TF_INT64, TF_UINT64, TF_INT32 } TypedField;
static const char *const typed_names[] = {"float_data", "double_data", "int64_data", "uint64_data", "int32_data"};

static TypedField typed_field(IrDType t)
{
    switch (t) {
    case DT_F32: return TF_FLOAT;
    case DT_F64: return TF_DOUBLE;
    case DT_I64: return TF_INT64;
    case DT_U32: case DT_U64: return TF_UINT64;
    default: return TF_INT32;
    }
}

static size_t typed_count(const Onnx__TensorProto *t, TypedField f)
{
    switch (f) {
    case TF_FLOAT: return t->n_float_data;
    case TF_DOUBLE: return t->n_double_data;
    case TF_INT64: return t->n_int64_data;
    case TF_UINT64: return t->n_uint64_data;
    case TF_INT32: return t->n_int32_data;
    }
    unreachable("typed field");
}

bool onnx_tensor_check(Diag *d, const char *where, const Onnx__TensorProto *t, const OnnxTensorInfo *info)
{
    if (t->has_raw_data) return onnx_check_raw(d, where, t->raw_data.len, info);
    TypedField f = typed_field(info->dtype);
    size_t n = typed_count(t, f);
    if (n == (uint64_t)info->numel) return true;
    if (n == 0)
        return diag_error(d, where, "no data: a %s tensor of %lld elements needs raw_data or %s",
                          ir_dtype_name(info->dtype), (long long)info->numel, typed_names[f]);
    return diag_error(d, where, "%s has %zu values; %lld elements expected", typed_names[f], n, (long long)info->numel);
}

bool onnx_tensor_copy(Diag *d, const char *where, const Onnx__TensorProto *t, const OnnxTensorInfo *info, void *dst)
{
    if (!onnx_tensor_check(d, where, t, info)) return false;
    if (t->has_raw_data) {
        if (info->nbytes) memcpy(dst, t->raw_data.data, (size_t)info->nbytes);
        return true;
    }
    TypedField f = typed_field(info->dtype);
    size_t n = typed_count(t, f);
    if (n == 0) return true;
    size_t esize = ir_dtype_size(info->dtype);
    uint8_t *out = dst;
    switch (f) {
    case TF_FLOAT: memcpy(out, t->float_data, n * sizeof(float)); break;
    case TF_DOUBLE: memcpy(out, t->double_data, n * sizeof(double)); break;
    case TF_INT64: memcpy(out, t->int64_data, n * sizeof(int64_t)); break;
    case TF_UINT64: /* u64, or u32 narrowed: the low bytes on a little-endian host */
        for (size_t i = 0; i < n; i++) memcpy(out + i * esize, &t->uint64_data[i], esize);
        break;
    case TF_INT32:
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)t->int32_data[i];
            memcpy(out + i * esize, &u, esize);
        }
        break;
    }
    return true;
}

/* ---- whole files ---- */

static bool read_all(Diag *d, const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return diag_error(d, NULL, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return diag_error(d, NULL, "'%s' is not a regular file", path);
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    if (!*buf) unreachable("out of memory");
    bool ok = fread(*buf, 1, *len, f) == *len;
    fclose(f);
    if (!ok) {
        free(*buf);
        return diag_error(d, NULL, "cannot read '%s'", path);
    }
    return true;
}

static bool write_all(Diag *d, const char *path, const void *a, size_t na, const void *b, size_t nb)
{
    FILE *f = fopen(path, "wb");
    if (!f) return diag_error(d, NULL, "cannot write '%s': %s", path, strerror(errno));
    bool ok = fwrite(a, 1, na, f) == na && (nb == 0 || fwrite(b, 1, nb, f) == nb);
    ok = (fclose(f) == 0) && ok;
    if (!ok) return diag_error(d, NULL, "cannot write '%s': %s", path, strerror(errno));
    return true;
}

/* Copies a decoded payload into a fresh owned tensor. */
static bool tensor_fill(Diag *d, const char *path, IrTensor *t, IrDType dt, int rank, const int64_t *dims,
                        const void *data)
{
    if (!ir_tensor_alloc(t, dt, rank, dims)) return diag_error(d, path, "tensor too large");
    if (t->nbytes) memcpy(t->data, data, t->nbytes);
    return true;
}

/* ---- .npy ---- */

static const char npy_magic[6] = "\x93NUMPY";

typedef struct NpyHeader {
    char descr[16];
    int fortran;               /* -1: not seen */
    int rank;                  /* -1: not seen */
    int64_t dims[IR_MAX_RANK];
} NpyHeader;

static void skip_ws(const char **p, const char *end)
{
    while (*p < end && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
}

static bool eat(const char **p, const char *end, char c)
{
    skip_ws(p, end);
    if (*p < end && **p == c) {
        (*p)++;
        return true;
    }
    return false;
}

/* A Python string literal in ' or " quotes (no escapes appear in NumPy headers). */
static bool npy_string(const char **p, const char *end, char *out, size_t size)
{
    skip_ws(p, end);
    if (*p >= end || (**p != '\'' && **p != '"')) return false;
    char q = *(*p)++;
    const char *s = *p;
    while (*p < end && **p != q) (*p)++;
    if (*p >= end || (size_t)(*p - s) >= size) return false;
    memcpy(out, s, (size_t)(*p - s));
    out[*p - s] = 0;
    (*p)++;
    return true;
}

static bool npy_shape(const char **p, const char *end, NpyHeader *h)
{
    if (!eat(p, end, '(')) return false;
    h->rank = 0;
    while (!eat(p, end, ')')) {
        skip_ws(p, end);
        int64_t v = 0;
        const char *s = *p;
        while (*p < end && **p >= '0' && **p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, **p - '0', &v)) return false;
            (*p)++;
        }
        if (*p == s || h->rank == IR_MAX_RANK) return false;
        if (*p < end && **p == 'L') (*p)++;   /* Python 2 longs */
        h->dims[h->rank++] = v;
        if (!eat(p, end, ',')) {
            if (!eat(p, end, ')')) return false;
            break;
        }
    }
    return true;
}

/* {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
static bool npy_dict(const char *p, const char *end, NpyHeader *h)
{
    h->descr[0] = 0;
    h->fortran = h->rank = -1;
    if (!eat(&p, end, '{')) return false;
    while (!eat(&p, end, '}')) {
        char key[32];
        if (!npy_string(&p, end, key, sizeof key) || !eat(&p, end, ':')) return false;
        skip_ws(&p, end);
        if (strcmp(key, "descr") == 0) {
            if (!npy_string(&p, end, h->descr, sizeof h->descr)) return false;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (end - p >= 4 && memcmp(p, "True", 4) == 0) h->fortran = 1, p += 4;
            else if (end - p >= 5 && memcmp(p, "False", 5) == 0) h->fortran = 0, p += 5;
            else return false;
        } else if (strcmp(key, "shape") == 0) {
            if (!npy_shape(&p, end, h)) return false;
        } else {
            return false;
        }
        if (!eat(&p, end, ',')) {
            if (!eat(&p, end, '}')) return false;
            break;
        }
    }
    return h->descr[0] && h->fortran >= 0 && h->rank >= 0;
}

static bool npy_read(Diag *d, const char *path, const uint8_t *b, size_t n, IrTensor *t)
{
    if (n < 10 || memcmp(b, npy_magic, 6) != 0) return diag_error(d, path, "not a .npy file (wrong magic)");
    int major = b[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12) return diag_error(d, path, "truncated .npy header");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        return diag_error(d, path, "unsupported .npy format version %d.%d", major, b[7]);
    }
    if (hlen > n - hstart) return diag_error(d, path, "truncated .npy header");
    NpyHeader h;
    if (!npy_dict((const char *)b + hstart, (const char *)b + hstart + hlen, &h))
        return diag_error(d, path, "bad .npy header '%.*s'", (int)(hlen < 200 ? hlen : 200), (const char *)b + hstart);
    if (h.fortran) return diag_error(d, path, "Fortran-order arrays are not supported (save with C order)");
    IrDType dt = ir_dtype_from_npy(h.descr);
    if (dt == DT_UNDEF) return diag_error(d, path, "unsupported dtype '%s'", h.descr);
    uint64_t numel = 1;
    for (int i = 0; i < h.rank; i++)
        if (__builtin_mul_overflow(numel, (uint64_t)h.dims[i], &numel)) return diag_error(d, path, "tensor too large");
    uint64_t need;
    if (__builtin_mul_overflow(numel, (uint64_t)ir_dtype_size(dt), &need))
        return diag_error(d, path, "tensor too large");
    size_t have = n - hstart - hlen;
    if (have < need)
        return diag_error(d, path, "truncated data: %llu bytes needed, %zu present", (unsigned long long)need, have);
    return tensor_fill(d, path, t, dt, h.rank, h.dims, b + hstart + hlen);
}

static bool npy_write(Diag *d, const char *path, const IrTensor *t)
{
    const char *descr = ir_dtype_npy(t->dtype);
    if (!descr) return diag_error(d, path, "%s tensors cannot be stored in .npy", ir_dtype_name(t->dtype));
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        n += snprintf(h + n, sizeof h - (size_t)n, "%lld,%s", (long long)t->dims[i], i + 1 < t->rank ? " " : "");
    if (t->rank > 1) n--;   /* NumPy writes "(3,)" but "(2, 3)" */
    n += snprintf(h + n, sizeof h - (size_t)n, "), }");
    /* Pad with spaces and a newline so magic + version + length + header is a multiple of 64. */
    size_t total = (10 + (size_t)n + 1 + 63) & ~(size_t)63;
    size_t hlen = total - 10;
    uint8_t buf[10 + sizeof h + 64];
    memcpy(buf, npy_magic, 6);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, h, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[total - 1] = '\n';
    return write_all(d, path, buf, total, t->data, t->nbytes);
}

/* ---- .pb (ONNX TensorProto) ---- */

static bool pb_read(Diag *d, const char *path, const uint8_t *b, size_t n, IrTensor *t, char **name)
{
    if (n == 0) return diag_error(d, path, "file is empty");
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, n, b);
    if (!tp) return diag_error(d, path, "not an ONNX TensorProto (protobuf parse failed)");
    OnnxTensorInfo info;
    bool ok = onnx_tensor_info(d, path, tp, &info);
    if (ok && tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        ok = diag_error(d, path, "external data is not supported in tensor files");
    if (ok) ok = onnx_tensor_check(d, path, tp, &info);   /* before allocating what the header claims */
    if (ok) {
        ok = ir_tensor_alloc(t, info.dtype, info.rank, info.dims) || diag_error(d, path, "tensor too large");
        if (ok && !onnx_tensor_copy(d, path, tp, &info, t->data)) {
            ir_tensor_free(t);
            ok = false;
        }
    }
    if (ok && name) {
        *name = tp->name && *tp->name ? strdup(tp->name) : NULL;
        if (tp->name && *tp->name && !*name) unreachable("out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return ok;
}

static bool pb_write(Diag *d, const char *path, const IrTensor *t, const char *name)
{
    int code = ir_dtype_onnx(t->dtype);
    if (!code) return diag_error(d, path, "cannot store a tensor of undefined element type");
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[IR_MAX_RANK];
    memcpy(dims, t->dims, sizeof dims);
    tp.n_dims = (size_t)t->rank;
    tp.dims = dims;
    tp.has_data_type = true;
    tp.data_type = code;
    tp.name = (char *)(name ? name : "");
    tp.has_raw_data = true;
    tp.raw_data.len = t->nbytes;
    tp.raw_data.data = t->data;
    size_t len = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) unreachable("out of memory");
    onnx__tensor_proto__pack(&tp, buf);
    bool ok = write_all(d, path, buf, len, NULL, 0);
    free(buf);
    return ok;
}

/* ---- public ---- */

typedef enum { TF_NPY, TF_PB, TF_UNKNOWN } FileKind;

static FileKind file_kind(const char *path)
{
    size_t n = strlen(path);
    if (n >= 4 && strcmp(path + n - 4, ".npy") == 0) return TF_NPY;
    if (n >= 3 && strcmp(path + n - 3, ".pb") == 0) return TF_PB;
    return TF_UNKNOWN;
}

bool tensor_read(Diag *d, const char *path, IrTensor *t, char **name)
{
    memset(t, 0, sizeof *t);
    if (name) *name = NULL;
    FileKind k = file_kind(path);
    if (k == TF_UNKNOWN) return diag_error(d, path, "unknown tensor file type (expected .npy or .pb)");
    uint8_t *buf = NULL;
    size_t n = 0;
    if (!read_all(d, path, &buf, &n)) return false;
    bool ok = k == TF_NPY ? npy_read(d, path, buf, n, t) : pb_read(d, path, buf, n, t, name);
    free(buf);
    return ok;
}

bool tensor_write(Diag *d, const char *path, const IrTensor *t, const char *name)
{
    assert(t->rank >= 0 && t->rank <= IR_MAX_RANK && (t->data || !t->nbytes));
    FileKind k = file_kind(path);
    if (k == TF_UNKNOWN) return diag_error(d, path, "unknown tensor file type (expected .npy or .pb)");
    return k == TF_NPY ? npy_write(d, path, t) : pb_write(d, path, t, name);
}

int tensor_read_dir(Diag *d, const char *dir, const char *prefix, IrTensor *t, char **names, int max)
{
    int n = 0;
    for (;; n++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, n);
        struct stat st;
        if (stat(path, &st) != 0) break;
        bool ok = n < max || diag_error(d, dir, "more than %d %s files", max, prefix);
        if (ok) ok = tensor_read(d, path, &t[n], names ? &names[n] : NULL);
        if (!ok) {
            for (int i = 0; i < n; i++) {
                ir_tensor_free(&t[i]);
                if (names) free(names[i]), names[i] = NULL;
            }
            return -1;
        }
    }
    return n;
}
