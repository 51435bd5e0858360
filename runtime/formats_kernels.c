/* formats_kernels.c — reference kernels of the families that are not minifloats: block
 * floating point (bfp), block logarithmic (bl), symmetric integer (int) and NF4, plus the
 * helpers every family shares.
 *
 * Exponents come from frexpf, never log2f; rounding is nearbyint (half to even under the
 * default rounding mode) applied to a double that holds the exact scaled value (a float
 * times a power of two, or a float divided by an fp16 — see intq_quant for why that quotient
 * is exact enough), and every clamp happens in floating point before the one conversion to
 * an integer, so NaN or out-of-range values never reach a float-to-int conversion. Blocks
 * containing NaN or Inf are caught first and stored with the family's NaN marker.
 */
#include <math.h>
#include <string.h>

#include "formats_int.h"

int bq_block_finite(const float *x, int len)
{
    for (int i = 0; i < len; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

float bq_block_amax(const float *x, int len)
{
    float a = 0.0f;
    for (int i = 0; i < len; i++) a = fabsf(x[i]) > a ? fabsf(x[i]) : a;
    return a;
}

int bq_floor_log2(float a)
{
    int e;
    (void)frexpf(a, &e);    /* a = f·2^e, f in [0.5, 1) */
    return e - 1;
}

int bq_ceil_log2(float a)
{
    int e;
    float f = frexpf(a, &e);
    return f == 0.5f ? e - 1 : e;
}

int bq_clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

uint32_t bq_twos_code(int32_t q, int width)
{
    return (uint32_t)q & (width >= 32 ? 0xFFFFFFFFu : (1u << width) - 1);
}

int32_t bq_twos_value(uint32_t code, int width)
{
    uint32_t sign = 1u << (width - 1);
    uint32_t c = code & ((sign << 1) - 1);
    return (c & sign) ? (int32_t)(c ^ sign) - (int32_t)sign : (int32_t)c;
}

#define EXP_NAN 255u   /* shared exponent byte of a non-finite block */

/* E = ceil(log2 amax) clamped to -127..127 (zero block -127), as the shared byte E + 127;
 * EXP_NAN (and zero codes) for a non-finite block. */
static int shared_exponent(const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    if (!bq_block_finite(x, len)) {
        memset(codes, 0, (size_t)len * sizeof *codes);
        *shared = EXP_NAN;
        return 0;
    }
    float amax = bq_block_amax(x, len);
    int E = amax == 0.0f ? -127 : bq_clamp_int(bq_ceil_log2(amax), -127, 127);
    *shared = (uint32_t)(E + 127);
    return 1;
}

/* ---- bfp<w>: q = min(RNE(|x|·2^(m-E)), 2^m - 1), two's complement ±q; scale 2^(E-m) ---- */

void bq_bfp_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    if (!shared_exponent(x, len, shared, codes)) return;
    int m = f->width - 1, E = (int)*shared - 127;
    double qmax = (double)((1 << m) - 1);
    for (int i = 0; i < len; i++) {
        double q = nearbyint(ldexp(fabs((double)x[i]), m - E));
        int32_t qi = (int32_t)(q > qmax ? qmax : q);
        codes[i] = bq_twos_code(signbit(x[i]) ? -qi : qi, f->width);
    }
}

void bq_bfp_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    out->exact = 1;
    out->scale = shared == EXP_NAN ? NAN : ldexpf(1.0f, (int)shared - 127 - (f->width - 1));
    for (int i = 0; i < len; i++) {
        out->m[i] = bq_twos_value(codes[i], f->width);
        out->e[i] = 0;
    }
}

/* ---- bl<w>: sign + c, value ±2^(E-c); c = 2^(w-1)-1 is zero; scale 2^E, elements ±2^-c ---- */

void bq_bl_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    if (!shared_exponent(x, len, shared, codes)) return;
    int E = (int)*shared - 127, cmax = (1 << (f->width - 1)) - 2;
    uint32_t zero = (uint32_t)cmax + 1;
    for (int i = 0; i < len; i++) {
        float a = fabsf(x[i]);
        if (a == 0.0f) {
            codes[i] = zero;
            continue;
        }
        int fe;
        double mant = 2.0 * frexpf(a, &fe);          /* a = mant·2^(fe-1), mant in [1, 2) */
        int e = fe - 1 + (mant * mant >= 2.0);        /* exact: mant has 24 bits, mant² 48 */
        if (e < E - cmax) {                           /* |x| < 2^(E-cmax-0.5) */
            codes[i] = zero;
            continue;
        }
        uint32_t c = (uint32_t)(E - e < 0 ? 0 : E - e);
        codes[i] = signbit(x[i]) ? c | (1u << (f->width - 1)) : c;
    }
}

void bq_bl_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    uint32_t cmask = (1u << (f->width - 1)) - 1;
    out->exact = 1;
    out->scale = shared == EXP_NAN ? NAN : ldexpf(1.0f, (int)shared - 127);
    for (int i = 0; i < len; i++) {
        uint32_t c = codes[i] & cmask;
        int neg = (codes[i] >> (f->width - 1)) & 1u;
        out->m[i] = c == cmask ? 0 : neg ? -1 : 1;
        out->e[i] = c == cmask ? 0 : (int16_t)-(int)c;
    }
}

/* ---- int<N>: d = fp16(amax / qmax), q = clamp(RNE(x / d), ±qmax); scale d ----
 * Both roundings are of the exact quotient: a double holds amax/qmax and x/d to 2^-53, far
 * closer than any non-tie can come to a rounding boundary when a 24-bit float is divided by
 * a 7-bit integer or an 11-bit fp16 (the distance is at least 2^-30 relative), so rounding
 * the double is rounding the exact value. (Rounding the fp32 quotient amax/qmax to fp16, as
 * llama.cpp does, gives the same d: 24 >= 2·11 + 2 makes that double rounding innocuous; but
 * x·fl(1/d) is not x/d.) d saturates at the largest finite fp16; a d that underflows to 0
 * gives q = 0 for the whole block. */

#define F16_NAN 0x7E00u
#define F16_MAX 0x7BFFu

void bq_intq_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    if (!bq_block_finite(x, len)) {
        memset(codes, 0, (size_t)len * sizeof *codes);
        *shared = F16_NAN;
        return;
    }
    double qmax = (double)((1 << (f->width - 1)) - 1);
    uint16_t h = bq_f16_from_double((double)bq_block_amax(x, len) / qmax);
    if (h > F16_MAX) h = F16_MAX;
    double d = bq_f16_to_float(h);
    for (int i = 0; i < len; i++) {
        double q = d == 0.0 ? 0.0 : nearbyint((double)x[i] / d);
        q = q > qmax ? qmax : q < -qmax ? -qmax : q;
        codes[i] = bq_twos_code((int32_t)q, f->width);
    }
    *shared = h;
}

void bq_intq_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    out->exact = 1;
    out->scale = bq_f16_to_float((uint16_t)shared);
    for (int i = 0; i < len; i++) {
        out->m[i] = bq_twos_value(codes[i], f->width);
        out->e[i] = 0;
    }
}

/* ---- nf4: absmax (fp32), code = nearest table value to x·(1/absmax), ties to the lower ---- */

static const float nf4_table[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};
#define NF4_ZERO 7u

void bq_nf4_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    float amax = bq_block_finite(x, len) ? bq_block_amax(x, len) : NAN;
    memcpy(shared, &amax, 4);
    if (!(amax > 0.0f)) {                 /* NaN block, or zero block (absmax 0, all codes 0.0) */
        for (int i = 0; i < len; i++) codes[i] = NF4_ZERO;
        return;
    }
    float inv = 1.0f / amax;
    for (int i = 0; i < len; i++) {
        /* bitsandbytes' x·(1/absmax); an absmax below 2^-128 has no finite inverse: divide */
        float t = isinf(inv) ? x[i] / amax : x[i] * inv;
        uint32_t c = 0;
        /* Count the midpoints below t: 2t and the sum of two neighbours are exact in double,
         * and a t on a midpoint stays with the lower code. */
        for (uint32_t j = 0; j < 15; j++)
            if (2.0 * (double)t > (double)nf4_table[j] + (double)nf4_table[j + 1]) c = j + 1;
        codes[i] = c;
    }
}

void bq_nf4_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    out->exact = 0;
    memcpy(&out->scale, &shared, 4);
    for (int i = 0; i < len; i++) out->v[i] = nf4_table[codes[i] & 15u];
}
