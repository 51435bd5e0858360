/* formats_int.h — private to the number-format files of libbqcrt (formats*.c).
 *
 * Every family is two reference kernels over one block: `quant` turns up to B floats into the
 * block's shared field and element codes, `decode` turns those back into a bq_elems — the
 * block scale the dot product multiplies plus each element as an exact small integer times a
 * power of two (or, for nf4 and the plain types, as an fp32 value). Packing the fields into
 * bytes, dequantisation and the dot product are written once on top of that (formats.c,
 * formats_dot.c), so a new family is a row in formats.def and these two functions.
 */
#ifndef BQ_FORMATS_INT_H
#define BQ_FORMATS_INT_H

#include "bqcrt.h"

#define BQ_BLOCK_MAX 4096          /* largest block any row allows (int's row blocks: rmax) */

enum { EB_NONE, EB_FREE, EB_MX };  /* formats.def `eb` column */

/* One decoded block. An element's value is scale · m[i] · 2^e[i] (exact families) or
 * scale · v[i] (nf4, plain types); a non-finite block has scale NaN. */
typedef struct bq_elems {
    float scale;                   /* the block scale of the dot-product contract */
    int exact;                     /* m/e are set (else v) */
    int32_t m[BQ_BLOCK_MAX];       /* signed integer mantissa */
    int16_t e[BQ_BLOCK_MAX];       /* its power of two */
    float v[BQ_BLOCK_MAX];
} bq_elems;

typedef void (*bq_quant_fn)(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes);
typedef void (*bq_decode_fn)(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out);

typedef struct bq_family_row {
    const char *name, *form;
    int wname, wmin, wmax, wdef, eb, ebdef, bmin, bmax, bdef, rmax, sbits;
    const char *sname;
    int twos, exact;
    bq_quant_fn quant;
    bq_decode_fn decode;
} bq_family_row;

typedef struct bq_mxelem_row {
    const char *name;
    int width, ebits, mbits, bias;
    uint32_t maxcode;
} bq_mxelem_row;

const bq_family_row *bq_family_row_of(int family);   /* NULL if out of range */
const bq_mxelem_row *bq_mxelem_find(int width, int ebits);

/* The kernels of every row. */
#define FAMILY(id, name, form, wname, wmin, wmax, wdef, eb, ebdef, bmin, bmax, bdef, rmax, sbits, sname, twos, \
               exact, kernel)                                                                                        \
    void bq_##kernel##_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes);   \
    void bq_##kernel##_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out);
#include "formats.def"

/* Decodes elements [k0, k0+len) of a quantised run of n: one block (k0 on a block boundary,
 * len the block's length) or, for plain types, any len <= BQ_BLOCK_MAX. Returns the row's
 * `exact`. (formats.c) */
int bq_decode_run(const bq_format *f, const void *src, int64_t n, int64_t k0, int64_t len, bq_elems *out);

/* ---- helpers (formats_mf.c) ---- */

/* A sign-magnitude minifloat grid: mbits mantissa bits, exponent bias, subnormals, and the
 * largest magnitude code (all codes up to it are finite values). */
typedef struct bq_minifloat {
    int mbits, bias;
    uint32_t maxcode;
} bq_minifloat;

/* Magnitude code of v >= 0 on the grid: round half to even, saturating at maxcode. v must be
 * finite and below 2^(maxexp+2) (the callers' scaling guarantees it). */
uint32_t bq_mf_code(const bq_minifloat *g, double v);
/* The magnitude code's value as m · 2^e. */
void bq_mf_value(const bq_minifloat *g, uint32_t code, int32_t *m, int *e);
/* Largest element exponent: floor(log2(max value)). */
int bq_mf_emax(const bq_minifloat *g);
/* IEEE binary16: round half to even from a double (overflow to inf, NaN kept); and back. */
uint16_t bq_f16_from_double(double v);
float bq_f16_to_float(uint16_t h);

/* ---- helpers (formats_kernels.c) ---- */
int bq_block_finite(const float *x, int len);   /* no NaN or Inf */
float bq_block_amax(const float *x, int len);   /* max |x_i| (finite input) */
int bq_floor_log2(float a);                     /* a > 0 finite, exact */
int bq_ceil_log2(float a);
int bq_clamp_int(int v, int lo, int hi);
/* Two's complement code of q in `width` bits, and back. */
uint32_t bq_twos_code(int32_t q, int width);
int32_t bq_twos_value(uint32_t code, int width);

#endif
