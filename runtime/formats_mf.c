/* formats_mf.c — minifloat element grids and the families built on them: block minifloat
 * (bm), OCP MX (mxfp, mxint8) and the plain types fp16 / bf16 / fp32.
 *
 * One rounding routine serves every minifloat: a value scaled by a power of two (exact in
 * double) is rounded half-to-even to its binade's step, and the result is the code itself
 * ((binade - lowest binade) << mantissa bits) + steps, so carries into the next binade and
 * saturation (min with the largest code) come out right without special cases. IEEE fp16 and
 * bf16 are the same grid whose "largest code" is Inf, which gives IEEE overflow for free.
 * Block scales follow formats.md: MX keeps the spec's split (scale 2^S, elements at their own
 * values); bm's scale is the block's top binade 2^(S+emax), so its elements lie in (-2, 2) and
 * a block sum stays finite even for E7M0 elements whose own values span 2^-62..2^64.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "formats_int.h"

uint32_t bq_mf_code(const bq_minifloat *g, double v)
{
    if (!(v > 0.0)) return 0;
    if (isinf(v)) return g->maxcode;
    int e;
    (void)frexp(v, &e);                /* v = f·2^e, f in [0.5, 1): floor(log2 v) = e - 1 */
    int kmin = 1 - g->bias;            /* subnormals share the lowest normal binade's step */
    int k = e - 1 < kmin ? kmin : e - 1;
    if (k - kmin + 1 > (int)(g->maxcode >> g->mbits)) return g->maxcode;   /* beyond the top binade */
    double q = nearbyint(ldexp(v, g->mbits - k));   /* steps of 2^(k - mbits): at most 2^(mbits+1) */
    uint32_t code = ((uint32_t)(k - kmin) << g->mbits) + (uint32_t)q;
    return code > g->maxcode ? g->maxcode : code;
}

void bq_mf_value(const bq_minifloat *g, uint32_t code, int32_t *m, int *e)
{
    uint32_t ef = code >> g->mbits, mf = code & ((1u << g->mbits) - 1);
    int kmin = 1 - g->bias;
    if (ef == 0) {
        *m = (int32_t)mf;
        *e = kmin - g->mbits;
    } else {
        *m = (int32_t)(mf | (1u << g->mbits));
        *e = kmin + (int)ef - 1 - g->mbits;
    }
}

int bq_mf_emax(const bq_minifloat *g) { return 1 - g->bias + (int)(g->maxcode >> g->mbits) - 1; }

static const bq_minifloat grid_f16 = {10, 15, 0x7C00};   /* largest code: Inf */
static const bq_minifloat grid_bf16 = {7, 127, 0x7F80};

static uint16_t ieee16_from_double(const bq_minifloat *g, double v, uint16_t qnan)
{
    uint16_t sign = signbit(v) ? 0x8000 : 0;
    if (isnan(v)) return (uint16_t)(qnan | sign);
    return (uint16_t)(sign | bq_mf_code(g, fabs(v)));
}

static float ieee16_to_float(const bq_minifloat *g, uint16_t h)
{
    uint32_t mag = h & 0x7FFFu;
    float y;
    if (mag > g->maxcode) y = NAN;
    else if (mag == g->maxcode) y = INFINITY;
    else {
        int32_t m;
        int e;
        bq_mf_value(g, mag, &m, &e);
        y = ldexpf((float)m, e);
    }
    return (h & 0x8000u) ? -y : y;
}

uint16_t bq_f16_from_double(double v) { return ieee16_from_double(&grid_f16, v, 0x7E00); }
float bq_f16_to_float(uint16_t h) { return ieee16_to_float(&grid_f16, h); }

/* ---- plain types: block 1, no shared field, scale 1 ---- */

static void plain_decode_header(uint32_t shared, int len, bq_elems *out)
{
    (void)shared;
    (void)len;
    out->scale = 1.0f;
    out->exact = 0;
}

void bq_f32_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    *shared = 0;
    for (int i = 0; i < len; i++) memcpy(&codes[i], &x[i], 4);
}
void bq_f32_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    plain_decode_header(shared, len, out);
    for (int i = 0; i < len; i++) memcpy(&out->v[i], &codes[i], 4);
}
void bq_f16_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    *shared = 0;
    for (int i = 0; i < len; i++) codes[i] = bq_f16_from_double(x[i]);
}
void bq_f16_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    plain_decode_header(shared, len, out);
    for (int i = 0; i < len; i++) out->v[i] = bq_f16_to_float((uint16_t)codes[i]);
}
void bq_bf16_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    *shared = 0;
    for (int i = 0; i < len; i++) codes[i] = ieee16_from_double(&grid_bf16, x[i], 0x7FC0);
}
void bq_bf16_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    plain_decode_header(shared, len, out);
    for (int i = 0; i < len; i++) out->v[i] = ieee16_to_float(&grid_bf16, (uint16_t)codes[i]);
}

/* ---- blocks of minifloats with a shared 8-bit exponent (bm, mxfp) ---- */

#define EXP_NAN 255u   /* shared exponent byte of a non-finite block (MX: E8M0 NaN) */

/* S = clamp(floor(log2 amax) - emax, -127, 127) (zero block: -127); P_i = Q(x_i / 2^S) with
 * the sign kept only on non-zero magnitudes. Returns the block's shared byte. */
static uint32_t mf_block_quant(const bq_minifloat *g, int width, const float *x, int len, uint32_t *codes)
{
    if (!bq_block_finite(x, len)) {
        memset(codes, 0, (size_t)len * sizeof *codes);
        return EXP_NAN;
    }
    float amax = bq_block_amax(x, len);
    int S = amax == 0.0f ? -127 : bq_clamp_int(bq_floor_log2(amax) - bq_mf_emax(g), -127, 127);
    for (int i = 0; i < len; i++) {
        uint32_t c = bq_mf_code(g, ldexp(fabs((double)x[i]), -S));
        codes[i] = (c && signbit(x[i])) ? c | (1u << (width - 1)) : c;
    }
    return (uint32_t)(S + 127);
}

/* Elements relative to 2^eoff: m · 2^e with e lowered by eoff; scale 2^(S + eoff). */
static void mf_block_decode(const bq_minifloat *g, int width, int eoff, uint32_t shared, const uint32_t *codes,
                            int len, bq_elems *out)
{
    out->exact = 1;
    out->scale = shared == EXP_NAN ? NAN : ldexpf(1.0f, (int)shared - 127 + eoff);
    for (int i = 0; i < len; i++) {
        int32_t m;
        int e;
        bq_mf_value(g, codes[i] & ((1u << (width - 1)) - 1), &m, &e);
        out->m[i] = (codes[i] >> (width - 1)) & 1u ? -m : m;
        out->e[i] = (int16_t)(e - eoff);
    }
}

/* bm<w>e<x>: ExMy with y = w-1-x, IEEE bias 2^(x-1)-1, every code finite. */
static bq_minifloat bm_grid(const bq_format *f)
{
    bq_minifloat g = {f->width - 1 - f->ebits, (1 << (f->ebits - 1)) - 1, (1u << (f->width - 1)) - 1};
    return g;
}

void bq_bm_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    bq_minifloat g = bm_grid(f);
    *shared = mf_block_quant(&g, f->width, x, len, codes);
}
void bq_bm_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    bq_minifloat g = bm_grid(f);
    mf_block_decode(&g, f->width, bq_mf_emax(&g), shared, codes, len, out);
}

static bq_minifloat mx_grid(const bq_format *f)
{
    const bq_mxelem_row *r = bq_mxelem_find(f->width, f->ebits);
    assert(r);
    bq_minifloat g = {r->mbits, r->bias, r->maxcode};
    return g;
}

void bq_mxfp_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    bq_minifloat g = mx_grid(f);
    *shared = mf_block_quant(&g, f->width, x, len, codes);
}
void bq_mxfp_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    bq_minifloat g = mx_grid(f);
    mf_block_decode(&g, f->width, 0, shared, codes, len, out);
}

/* MX INT8: elements q·2^-6, q in -127..127 (two's complement, -128 never written);
 * S = floor(log2 amax) (emax 0). */
void bq_mxint_quant(const bq_format *f, const float *x, int len, uint32_t *shared, uint32_t *codes)
{
    if (!bq_block_finite(x, len)) {
        memset(codes, 0, (size_t)len * sizeof *codes);
        *shared = EXP_NAN;
        return;
    }
    float amax = bq_block_amax(x, len);
    int S = amax == 0.0f ? -127 : bq_clamp_int(bq_floor_log2(amax), -127, 127);
    for (int i = 0; i < len; i++) {
        double q = nearbyint(ldexp((double)x[i], 6 - S));
        q = q > 127.0 ? 127.0 : q < -127.0 ? -127.0 : q;
        codes[i] = bq_twos_code((int32_t)q, f->width);
    }
    *shared = (uint32_t)(S + 127);
}
void bq_mxint_decode(const bq_format *f, uint32_t shared, const uint32_t *codes, int len, bq_elems *out)
{
    out->exact = 1;
    out->scale = shared == EXP_NAN ? NAN : ldexpf(1.0f, (int)shared - 127);
    for (int i = 0; i < len; i++) {
        out->m[i] = bq_twos_value(codes[i], f->width);
        out->e[i] = -6;
    }
}
