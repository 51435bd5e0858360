/* test_formats.c — the number formats against ../shared/formats.md, by an independent model.
 *
 * The runtime rounds with binade arithmetic on doubles and sums block products in a
 * fixed-point accumulator; this file re-derives every value another way: exponents by
 * comparing with powers of two, rounding by explicit floor/fraction tests, minifloat and
 * fp16 rounding by scanning every code of the grid for the nearest value, NF4 by scanning
 * the table, and exact dot products with Shewchuk expansions in long double whose float
 * rounding is decided by exact comparisons with the midpoints. One table-driven test walks
 * every format (family × width × exponent bits × block) on random blocks with outliers,
 * zeros, tiny values, a power-of-two maximum and a short last block, and checks values,
 * codes, shared fields, scales, error bounds, idempotence, storage size and the dot product;
 * the other tests pin the worked examples, ties, special blocks and the names.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "bqcrt.h"

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}
static double uni(uint64_t *s) { return (double)(rng(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0; }

static int same(float a, float b) { return memcmp(&a, &b, 4) == 0 || (isnan(a) && isnan(b)); }
/* "bfp6/16": the name of the format under test, for messages (buf holds 32 chars). */
static const char *nm(const bq_format *f, char *buf)
{
    bq_format_name(f, buf, 32);
    return buf;
}
#define assert_same(f, a, b)                                                                        \
    do {                                                                                            \
        float a_ = (a), b_ = (b);                                                                   \
        char n_[32];                                                                                \
        if (!same(a_, b_)) fail_msg("%s = %.9g, expected %s = %.9g (%s)", #a, a_, #b, b_, nm(f, n_)); \
    } while (0)

/* ---- independent model ---- */

static long double p2(int e) { return ldexpl(1.0L, e); }
static int ceil_log2(long double a) { int E = -160; while (p2(E) < a) E++; return E; }
static int floor_log2(long double a) { int E = 160; while (p2(E) > a) E--; return E; }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static long double rne(long double t)
{
    long double fl = floorl(t), fr = t - fl;
    return fr > 0.5L ? fl + 1 : fr < 0.5L ? fl : fmodl(fl, 2.0L) == 0 ? fl : fl + 1;
}

typedef struct Grid { int mbits, bias; unsigned maxcode; } Grid;
static long double gval(const Grid *g, unsigned c)
{
    unsigned ef = c >> g->mbits, mf = c & ((1u << g->mbits) - 1);
    return ef ? ldexpl((long double)((1u << g->mbits) + mf), (int)ef - g->bias - g->mbits)
              : ldexpl((long double)mf, 1 - g->bias - g->mbits);
}
/* The code whose value is nearest to target/k (k > 0), by bisection over the codes (values
 * grow with the code): the first one whose k·value reaches target, then the nearer of it and
 * the one below, compared exactly.
 * A tie goes to the even multiple of the step of the tie's binade (the even code; with no
 * mantissa bits, the next power of two). gnearest is k = 1. */
static unsigned gnearest_k(const Grid *g, long double target, long double k)
{
    unsigned lo = 0, hi = g->maxcode;
    if (target >= k * gval(g, hi)) return hi;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (k * gval(g, mid) >= target) hi = mid;
        else lo = mid + 1;
    }
    if (lo == 0) return 0;
    long double a = k * gval(g, lo - 1), b = k * gval(g, lo);
    if (target - a != b - target) return target - a < b - target ? lo - 1 : lo;
    long double v = target / k;
    int bin = floor_log2(v) < 1 - g->bias ? 1 - g->bias : floor_log2(v);
    return fmodl(gval(g, lo) / p2(bin - g->mbits), 2.0L) == 0 ? lo : lo - 1;
}
static unsigned gnearest(const Grid *g, long double v) { return gnearest_k(g, v, 1); }
static const Grid g_f16 = {10, 15, 0x7BFF}, g_bf16 = {7, 127, 0x7F7F};
/* formats.md's MX table: width, ebits, grid, max normal, min subnormal */
static const struct { int w, e; Grid g; double maxn, minsub; } mx[] = {
    {8, 4, {3, 7, 0x7E}, 448, 0x1p-9}, {8, 5, {2, 15, 0x7B}, 57344, 0x1p-16}, {6, 3, {2, 3, 0x1F}, 28, 0.0625},
    {6, 2, {3, 1, 0x1F}, 7.5, 0.125},  {4, 2, {1, 1, 0x7}, 6, 0.5},
};
static const float nf4v[16] = {-1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f,
    0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f,
    0.5626170039176941f, 0.7229568362236023f, 1.0f};

static Grid grid_of(const bq_format *f)
{
    if (f->family == BQ_FAM_BM)
        return (Grid){f->width - 1 - f->ebits, (1 << (f->ebits - 1)) - 1, (1u << (f->width - 1)) - 1};
    for (size_t i = 0; i < sizeof mx / sizeof mx[0]; i++)
        if (mx[i].w == f->width && mx[i].e == f->ebits) return mx[i].g;
    fail_msg("no grid for family %d", f->family);
    return g_f16;
}

#define MAXB 4096   /* the longest block: int's row blocks (formats.def rmax) */

/* What one block must hold: values, codes, shared value, scale, and an error bound each. */
typedef struct Want {
    long double y[MAXB], bound[MAXB], scale;
    int32_t code[MAXB];
    double shared;
    int has_codes;
} Want;

static void model_block(const bq_format *f, const float *x, int len, Want *w)
{
    long double amax = 0;
    for (int i = 0; i < len; i++) amax = fabsl(x[i]) > amax ? fabsl(x[i]) : amax;
    int W = f->width, m = W - 1;
    w->has_codes = 1;
    if (f->family == BQ_FAM_BFP || f->family == BQ_FAM_BL) {
        int E = amax == 0 ? -127 : clampi(ceil_log2(amax), -127, 127), cmax = (1 << m) - 2;
        w->shared = E;
        w->scale = p2(f->family == BQ_FAM_BFP ? E - m : E);
        for (int i = 0; i < len; i++) {
            long double a = fabsl(x[i]);
            int neg = signbit(x[i]) != 0;
            if (f->family == BQ_FAM_BFP) {
                long double q = rne(a * p2(m - E)), qmax = (1 << m) - 1;
                w->bound[i] = q >= qmax ? p2(E - m) : p2(E - m - 1);
                q = q > qmax ? qmax : q;
                w->y[i] = (neg && q ? -q : q) * p2(E - m);   /* a zero magnitude is +0 */
                w->code[i] = neg ? -(int)q : (int)q;
                continue;
            }
            int k = a == 0 ? 0 : floor_log2(a), e = k + (a * a >= p2(2 * k + 1));   /* log-domain rounding */
            if (a == 0 || e < E - cmax) {
                w->y[i] = 0, w->code[i] = cmax + 1;
                w->bound[i] = p2(E - cmax) / sqrtl(2);   /* |x| < 2^(E-cmax-0.5) */
            } else {
                int c = E - e < 0 ? 0 : E - e;
                w->y[i] = (neg ? -1 : 1) * p2(E - c);
                w->code[i] = c | (neg << m);
                w->bound[i] = fabsl(w->y[i]) * (sqrtl(2) - 1);   /* within 2^±0.5 */
            }
        }
    } else if (f->family == BQ_FAM_BM || f->family == BQ_FAM_MXFP) {
        Grid g = grid_of(f);
        long double maxv = gval(&g, g.maxcode);
        int emax = floor_log2(maxv);
        int S = amax == 0 ? -127 : clampi(floor_log2(amax) - emax, -127, 127);
        w->shared = S;
        w->scale = p2(f->family == BQ_FAM_BM ? S + emax : S);
        for (int i = 0; i < len; i++) {
            long double v = fabsl(x[i]) * p2(-S);
            unsigned c = gnearest(&g, v);
            int neg = signbit(x[i]) && c;
            w->y[i] = (neg ? -1 : 1) * gval(&g, c) * p2(S);
            w->code[i] = (int32_t)(c | ((unsigned)neg << m));
            int b = v == 0 || v > maxv ? 0 : floor_log2(v);   /* half a step, or saturated below 2^(emax+1) */
            b = b < 1 - g.bias ? 1 - g.bias : b;
            w->bound[i] = (v > maxv ? p2(emax + 1) - maxv : p2(b - g.mbits - 1)) * p2(S);
        }
    } else if (f->family == BQ_FAM_MXINT) {
        int S = amax == 0 ? -127 : clampi(floor_log2(amax), -127, 127);
        w->shared = S, w->scale = p2(S);
        for (int i = 0; i < len; i++) {
            long double q = rne(x[i] * p2(6 - S));
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            q = q == 0 ? 0 : q;   /* +0 */
            w->y[i] = q * p2(S - 6), w->code[i] = (int32_t)q, w->bound[i] = p2(S - 7);
        }
    } else if (f->family == BQ_FAM_INT) {
        long double qmax = (1 << m) - 1;
        unsigned best = gnearest_k(&g_f16, amax, qmax);   /* nearest fp16 to amax/qmax, exactly */
        long double d = gval(&g_f16, best);
        w->shared = (double)d, w->scale = d;
        for (int i = 0; i < len; i++) {
            long double q = d == 0 ? 0 : rne(x[i] / d);
            q = q > qmax ? qmax : q < -qmax ? -qmax : q == 0 ? 0 : q;
            w->y[i] = q * d, w->code[i] = (int32_t)q;
            w->bound[i] = d == 0 ? qmax * p2(-25)   /* amax/qmax below half the least fp16 */
                                 : d / 2 + (fabsl(q) == qmax ? fabsl(amax - qmax * d) : 0);
        }
    } else if (f->family == BQ_FAM_NF4) {
        float am = (float)amax, inv = 1.0f / am;
        w->shared = am, w->scale = am;
        for (int i = 0; i < len; i++) {
            float t = isinf(inv) ? x[i] / am : x[i] * inv;   /* 1/absmax overflows: divide */
            int c = 7;
            for (int j = 0; amax > 0 && j < 16; j++)
                if (fabsl((long double)t - nf4v[j]) < fabsl((long double)t - nf4v[c]) ||
                    (j < c && fabsl((long double)t - nf4v[j]) == fabsl((long double)t - nf4v[c])))
                    c = j;
            w->code[i] = c;
            w->y[i] = nf4v[c] * am;   /* fp32 product */
            long double gap = 0;   /* half the widest gap of the table (-1 .. -0.696) */
            for (int j = 0; j < 15; j++) gap = nf4v[j + 1] - nf4v[j] > gap ? nf4v[j + 1] - nf4v[j] : gap;
            w->bound[i] = (gap / 2 + 0x1p-22L) * am + 0x1p-149L;
        }
    } else {   /* plain: exact fp32; fp16/bf16 nearest on their grids, IEEE overflow to inf */
        w->has_codes = 0, w->shared = 0, w->scale = 1;
        const Grid *g = f->family == BQ_FAM_FP16 ? &g_f16 : &g_bf16;
        for (int i = 0; i < len; i++) {
            long double a = fabsl(x[i]), top = gval(g, g->maxcode), half = p2(floor_log2(top) - g->mbits - 1);
            if (f->family == BQ_FAM_FP32) w->y[i] = x[i], w->bound[i] = 0;
            else if (a >= top + half) w->y[i] = signbit(x[i]) ? -INFINITY : INFINITY, w->bound[i] = INFINITY;
            else {
                w->y[i] = (signbit(x[i]) ? -1 : 1) * gval(g, gnearest(g, a));
                w->bound[i] = a == 0 ? 0 : p2((floor_log2(a) < 1 - g->bias ? 1 - g->bias : floor_log2(a)) - g->mbits - 1);
            }
        }
    }
}

/* ---- independent exact dot: Shewchuk expansions in long double ---- */

typedef struct Exp { long double c[64]; int n; } Exp;
static void exp_add(Exp *e, long double b)
{
    int k = 0;
    for (int i = 0; i < e->n; i++) {
        long double s = b + e->c[i], bv = s - b, err = (b - (s - bv)) + (e->c[i] - bv);
        if (err != 0) e->c[k++] = err;
        b = s;
    }
    if (b != 0) e->c[k++] = b;
    e->n = k;
    assert_true(k < 64);
}
static int exp_sign_minus(const Exp *e, long double m)   /* sign(value - m), exactly */
{
    Exp t = *e;
    exp_add(&t, -m);
    return t.n == 0 ? 0 : t.c[t.n - 1] > 0 ? 1 : -1;
}
static float exp_round(const Exp *e)   /* round half to even, by comparison with the midpoints */
{
    long double approx = 0;
    for (int i = 0; i < e->n; i++) approx += e->c[i];
    float r = (float)approx;
    if (!isfinite(r)) fail_msg("the model dot product is not finite");
    for (;;) {
        uint32_t bits;
        memcpy(&bits, &r, 4);
        int odd = bits & 1;
        float up = nextafterf(r, INFINITY), dn = nextafterf(r, -INFINITY);
        int shi = exp_sign_minus(e, ((long double)r + up) / 2), slo = exp_sign_minus(e, ((long double)r + dn) / 2);
        if (shi > 0 || (shi == 0 && odd)) r = up;
        else if (slo < 0 || (slo == 0 && odd)) r = dn;
        else return r == 0 ? 0.0f : r;
    }
}

/* The dot product from dequantised values, block by block (elements = y / block scale). */
static float model_dot(const bq_format *fa, const void *qa, const float *ya, const bq_format *fw, const void *qw,
                       const float *yw, int64_t n)
{
    int pa = fa->block == 1, pw = fw->block == 1;
    int64_t B = pa ? fw->block : fa->block;
    float acc = 0.0f;
    if (pa && pw) {   /* one block: the fmaf chain */
        for (int64_t i = 0; i < n; i++) acc = fmaf(ya[i], yw[i], acc);
        return acc;
    }
    for (int64_t k0 = 0; k0 < n; k0 += B) {
        int len = (int)(n - k0 < B ? n - k0 : B);
        const bq_format *f[2] = {fa, fw};
        const void *q[2] = {qa, qw};
        const float *y[2] = {ya, yw};
        float scale[2] = {1, 1}, el[2][MAXB];
        long double ex[2][MAXB];
        int exact = !pa && !pw;
        for (int s = 0; s < 2; s++) {
            bq_block_info bi = {0};
            int32_t codes[MAXB] = {0};
            if (f[s]->block != 1) bq_block_fields(f[s], q[s], n, k0 / B, &bi, codes), scale[s] = bi.scale;
            exact &= f[s]->family != BQ_FAM_NF4;
            for (int i = 0; i < len; i++) {
                ex[s][i] = f[s]->block == 1 ? y[s][k0 + i] : (long double)y[s][k0 + i] / scale[s];
                el[s][i] = f[s]->family == BQ_FAM_NF4 ? nf4v[codes[i]] : (float)ex[s][i];
                if (isnan(scale[s]) || scale[s] == 0) el[s][i] = 0, ex[s][i] = 0;   /* NaN / zero nf4 block */
            }
        }
        float bsum = 0.0f;
        if (exact) {
            Exp e = {{0}, 0};
            for (int i = 0; i < len; i++) exp_add(&e, ex[0][i] * ex[1][i]);
            bsum = exp_round(&e);
        } else {
            for (int i = 0; i < len; i++) bsum = fmaf(el[0][i], el[1][i], bsum);
        }
        float s = scale[0] * scale[1], c = bsum * s;
        acc = acc + c;
    }
    return acc;
}

/* ---- the walk ---- */

/* Random blocks of varied scale with outliers, zeros and tiny values; for B > 1, block 1 is
 * all zeros, block 2 has a power-of-two max, and (with `tiny`) block 3 holds subnormals. */
static void gen(uint64_t *s, float *x, int64_t n, int B, int tiny)
{
    for (int64_t b0 = 0; b0 < n; b0 += B) {
        double scale = ldexp(1.0, (int)(rng(s) % 9) - 4);
        int64_t blk = b0 / B;
        for (int64_t i = b0; i < n && i < b0 + B; i++) {
            unsigned r = rng(s) % 100;
            double v = uni(s) * scale;
            x[i] = (float)(r < 3 ? v * 40 : r < 8 ? 0.0 : r < 11 ? v * 1e-4 : v);
            if (B > 1 && blk == 1) x[i] = (i & 1) ? -0.0f : 0.0f;           /* an all-zero block */
        }
        if (B > 1 && blk == 2) x[b0] = (float)(64 * scale);                 /* a power-of-two max */
        for (int64_t i = b0; tiny && B > 1 && blk == 3 && i < n && i < b0 + B; i++) x[i] = ldexpf(x[i], -136);
    }
}

static void quant(const bq_format *f, const float *x, int64_t n, unsigned char **q, float **y)
{
    *q = malloc(bq_format_bytes(f, n) + 1);
    *y = malloc((size_t)n * sizeof **y);
    bq_quantize(f, x, n, *q);
    bq_dequantize(f, *q, n, *y);
}

/* Values, codes, shared field, scale and bounds of every block against the model. */
static void check_values(const bq_format *f, const float *x, const unsigned char *q, const float *y, int64_t n)
{
    int64_t B = f->block;
    Want *w = malloc(sizeof *w);
    char n_[32];
    for (int64_t b = 0; b * B < n; b++) {
        bq_block_info bi;
        int32_t codes[MAXB];
        int64_t len = bq_block_fields(f, q, n, b, &bi, codes);
        assert_int_equal(len, n - b * B < B ? n - b * B : B);
        model_block(f, x + b * B, (int)len, w);
        if (B > 1) {
            if (bi.shared_value != w->shared) fail_msg("%s block %lld: shared %g, want %g", nm(f, n_), (long long)b, bi.shared_value, w->shared);
            assert_same(f, bi.scale, (float)w->scale);
        }
        for (int64_t i = 0; i < len; i++) {
            assert_same(f, y[b * B + i], (float)w->y[i]);
            if (w->has_codes && codes[i] != w->code[i]) fail_msg("%s block %lld elem %lld: code %d, want %d", nm(f, n_), (long long)b, (long long)i, codes[i], w->code[i]);
            long double err = fabsl((long double)x[b * B + i] - y[b * B + i]);
            if (!(err <= w->bound[i])) fail_msg("%s: |%.9g - %.9g| above the bound %Lg", nm(f, n_), x[b * B + i], y[b * B + i], w->bound[i]);
        }
    }
    free(w);
}

/* quantise(dequantise(q)): the same values, and the same bytes — except (formats.md's own
 * definition) bfp/bl blocks whose dequantised max is a power of two below 2^E: there E drops
 * by one, bl keeps its values and bfp saturates that max once more. */
static void check_idempotent(const bq_format *f, const unsigned char *q, const float *y, int64_t n)
{
    unsigned char *q2;
    float *y2;
    quant(f, y, n, &q2, &y2);
    int64_t B = f->block;
    size_t bb = bq_format_bytes(f, B);
    for (int64_t b = 0; b * B < n; b++) {
        int64_t len = n - b * B < B ? n - b * B : B;
        long double ym = 0;
        for (int64_t i = 0; i < len; i++) ym = fabsl(y[b * B + i]) > ym ? fabsl(y[b * B + i]) : ym;
        bq_block_info bi;
        bq_block_fields(f, q, n, b, &bi, NULL);
        int drops = (f->family == BQ_FAM_BFP || f->family == BQ_FAM_BL) && ym > 0 &&
                    clampi(ceil_log2(ym), -127, 127) < bi.shared_value;
        if (!drops) assert_memory_equal(q + b * bb, q2 + b * bb, bq_format_bytes(f, len));
        for (int64_t i = 0; i < len && !(drops && f->family == BQ_FAM_BFP); i++) assert_same(f, y2[b * B + i], y[b * B + i]);
    }
    free(q2), free(y2);
}

/* bq_format_bytes is the layout's size and exactly what bq_quantize writes. */
static void check_bytes(const bq_format *f, const float *x, int64_t n)
{
    size_t nb = bq_format_bytes(f, n);
    int B = f->block, sbits = (int)lround((bq_format_bpe(f) - f->width) * B);
    size_t want = (size_t)(n / B) * (size_t)(sbits / 8 + B * f->width / 8) +
                  (n % B ? (size_t)(sbits / 8) + (size_t)((n % B) * f->width + 7) / 8 : 0);
    assert_int_equal(nb, want);
    assert_true(bq_format_bytes(f, 4 * B) * 8 == (size_t)lround(4 * B * bq_format_bpe(f)));
    unsigned char *a = malloc(nb + 64), *b = malloc(nb + 64);
    memset(a, 0xA5, nb + 64);
    memset(b, 0x5A, nb + 64);
    bq_quantize(f, x, n, a);
    bq_quantize(f, x, n, b);
    assert_memory_equal(a, b, nb);
    for (size_t i = nb; i < nb + 64; i++) assert_true(a[i] == 0xA5 && b[i] == 0x5A);
    free(a), free(b);
}

static void check_dot(const bq_format *fa, const float *xa, const bq_format *fw, const float *xw, int64_t n)
{
    unsigned char *qa, *qw;
    float *ya, *yw;
    quant(fa, xa, n, &qa, &ya);
    quant(fw, xw, n, &qw, &yw);
    float got = bq_dot_ref(fa, qa, fw, qw, n), want = model_dot(fa, qa, ya, fw, qw, yw, n);
    char n_[32];
    if (!same(got, want)) fail_msg("%s dot: %.9g, model %.9g", nm(fa, n_), got, want);
    free(qa), free(qw), free(ya), free(yw);
}

static void walk_one(const bq_format *f, uint64_t *s)
{
    int B = f->block;
    int64_t n = B == 1 ? 300 : 4 * B + B / 2 + 3;   /* short last block */
    float *x = malloc((size_t)n * sizeof *x), *x2 = malloc((size_t)n * sizeof *x), *xp = calloc((size_t)(n + B), sizeof *x);
    gen(s, x, n, B, 1);
    gen(s, x2, n, B, 0);
    unsigned char *q, *qn, *qp;
    float *y, *yn, *yp;
    quant(f, x, n, &q, &y);
    check_values(f, x, q, y, n);
    check_idempotent(f, q, y, n);
    check_bytes(f, x, n);
    memcpy(xp, x, (size_t)n * sizeof *x);   /* zero padding to whole blocks changes nothing */
    int64_t np = (n + B - 1) / B * B;
    quant(f, xp, np, &qp, &yp);
    for (int64_t i = 0; i < n; i++) assert_same(f, yp[i], y[i]);
    /* NaN and Inf in an activation: their blocks become NaN, the others do not change */
    float *xn = malloc((size_t)n * sizeof *x);
    memcpy(xn, x, (size_t)n * sizeof *x);
    xn[1] = NAN, xn[2 * B + 3] = INFINITY, xn[3 * B] = -INFINITY;
    quant(f, xn, n, &qn, &yn);
    for (int64_t i = 0; i < n; i++) {
        int64_t b = i / B;
        if (B > 1 && (b == 0 || b == 2 || b == 3)) assert_true(isnan(yn[i]));
        else if (B == 1 && (i == 1 || i == 2 * B + 3 || i == 3 * B)) assert_true(isnan(yn[i]) == isnan(xn[i]) && (isinf(yn[i]) || isnan(yn[i])));
        else assert_same(f, yn[i], y[i]);
    }
    if (B > 1) {
        bq_block_info bi;
        bq_block_fields(f, qn, n, 2, &bi, NULL);
        assert_true(isnan(bi.scale) && isnan(bi.shared_value));
    }
    bq_format f32 = test_format("fp32");
    assert_true(isnan(bq_dot_ref(f, qn, f, q, n)));
    /* dot products: with itself, with fp32 on either side, with a wide exact and an fp32-summed partner */
    gen(s, x, n, B, 0);   /* no subnormal block: the model needs y / scale to be exact */
    check_dot(f, x, f, x2, n);
    check_dot(f, x, &f32, x2, n);
    check_dot(&f32, x, f, x2, n);
    if (B > 1 && B <= 256 && (B & (B - 1)) == 0) {   /* (other row blocks are int's alone) */
        bq_format bl8 = {BQ_FAM_BL, 8, 0, (uint16_t)B}, nf4 = {BQ_FAM_NF4, 4, 0, (uint16_t)B};
        check_dot(f, x, &bl8, x2, n);
        check_dot(&nf4, x, f, x2, n);
    }
    free(x), free(x2), free(xp), free(xn), free(q), free(y), free(qp), free(yp), free(qn), free(yn);
}

static int fmt_eq(const bq_format *a, const bq_format *b)
{
    return a->family == b->family && a->width == b->width && a->ebits == b->ebits && a->block == b->block;
}

/* Every valid format with a block from `blocks` (plain types have block 1). */
static int all_formats(bq_format *out, int max, const int *blocks, int nblocks)
{
    static const char *const fams[] = {"fp32", "fp16", "bf16", "bfp", "bm", "bl", "mxint", "mxfp", "int", "nf4"};
    int n = 0;
    for (size_t k = 0; k < sizeof fams / sizeof fams[0]; k++)
        for (int w = 1; w <= 32; w++)
            for (int e = 0; e <= 8; e++)
                for (int b = -1; b < nblocks; b++) {
                    bq_format f;
                    if (bq_format_make(fams[k], w, e, b < 0 ? 1 : blocks[b], 0, &f, NULL, 0) != BQ_OK &&
                        bq_format_make(fams[k], w, e, b < 0 ? 32 : blocks[b], 0, &f, NULL, 0) != BQ_OK)
                        continue;
                    int dup = 0;
                    for (int i = 0; i < n; i++) dup |= fmt_eq(&out[i], &f);
                    if (!dup && n < max) out[n++] = f;
                }
    return n;
}

static void test_walk(void **state)
{
    static const int blocks[] = {8, 16, 32, 64, 256};
    bq_format fs[400];
    int n = all_formats(fs, 400, blocks, 5);
    /* bfp 6 widths, bm 25 (w, x) pairs, bl 6, int 7, nf4 1 — times 5 blocks; 5 mxfp, mxint8, 3 plain */
    assert_int_equal(n, (6 + 25 + 6 + 7 + 1) * 5 + 5 + 1 + 3);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < n; i++) walk_one(&fs[i], &s);
}

/* ---- formats.md's worked examples ---- */

static void expect(const char *name, const float *x, int n, const float *want, const int32_t *codes, double shared)
{
    bq_format f = test_format(name);
    unsigned char *q;
    float *y;
    quant(&f, x, n, &q, &y);
    for (int i = 0; i < n; i++) assert_same(&f, y[i], want[i]);
    bq_block_info bi;
    int32_t c[256];
    bq_block_fields(&f, q, n, 0, &bi, c);
    for (int i = 0; codes && i < n; i++) assert_int_equal(c[i], codes[i]);
    if (f.block > 1 && !isnan(shared)) assert_true(bi.shared_value == shared);
    free(q), free(y);
}

static void test_worked_examples(void **state)
{
    const float x[4] = {1.0f, -0.3f, 0.05f, 2.5f};
    expect("bfp4/16", x, 4, (float[]){1.0f, -0.5f, 0.0f, 2.5f}, (int32_t[]){2, -1, 0, 5}, 2);
    expect("bfp5/16", x, 4, (float[]){1.0f, -0.25f, 0.0f, 2.5f}, (int32_t[]){4, -1, 0, 10}, 2);
    expect("bfp6/16", x, 4, (float[]){1.0f, -0.25f, 0.0f, 2.5f}, (int32_t[]){8, -2, 0, 20}, 2);
    expect("bfp8/16", x, 4, (float[]){1.0f, -0.3125f, 0.0625f, 2.5f}, (int32_t[]){32, -10, 2, 80}, 2);
    const float w[4] = {0.5f, 0.25f, -1.0f, 0.125f};
    expect("bfp6/16", w, 4, (float[]){0.5f, 0.25f, -0.96875f, 0.125f}, (int32_t[]){16, 8, -31, 4}, 0);
    bq_format f = test_format("bfp6/16");
    unsigned char qx[16], qw[16];
    bq_quantize(&f, x, 4, qx);
    bq_quantize(&f, w, 4, qw);
    assert_same(&f, bq_dot_ref(&f, qx, &f, qw, 4), 0.75f);
    expect("mxint8", x, 4, (float[]){1.0f, -0.3125f, 0.0625f, 2.5f}, NULL, 1);
    expect("mxfp8e4m3", x, 4, (float[]){1.0f, -0.3125f, 0.05078125f, 2.5f}, NULL, -7);
    expect("mxfp6e2m3", x, 4, (float[]){1.0f, -0.3125f, 0.0625f, 2.5f}, NULL, -1);
    expect("mxfp4", x, 4, (float[]){1.0f, -0.25f, 0.0f, 2.0f}, NULL, -1);   /* 5 ties to 4 */
    expect("mxfp8e4m3", (float[]){1.9f, 0.5f, -1.0f, 0.01f}, 4, (float[]){1.75f, 0.5f, -1.0f, 0.009765625f}, NULL, -8);
    expect("nf4/64", x, 4, (float[]){(float)1.1017745733261108, (float)-0.22762508690357208, 0.0f, 2.5f},
           (int32_t[]){12, 6, 7, 15}, 2.5);
    assert_true((double)(0.44070982933044434f * 2.5f) == 1.1017745733261108);
    /* the MX element table: max normal and min subnormal of each grid */
    for (size_t i = 0; i < sizeof mx / sizeof mx[0]; i++) {
        assert_true(gval(&mx[i].g, mx[i].g.maxcode) == mx[i].maxn);
        assert_true(gval(&mx[i].g, 1) == mx[i].minsub);
    }
}

static void test_ties(void **state)
{
    expect("bfp4/16", (float[]){3.0f, 0.25f, 0.75f, 1.25f}, 4, (float[]){3.0f, 0.0f, 1.0f, 1.0f}, (int32_t[]){6, 0, 2, 2}, 2);
    expect("bm8e4/16", (float[]){1.0625f, 1.1875f, 1.0f}, 3, (float[]){1.0f, 1.25f, 1.0f}, NULL, -8);
    float below, above;   /* the floats either side of sqrt(2): log-domain rounding's boundary */
    uint32_t b = 0x3FB504F3u, a = 0x3FB504F4u;
    memcpy(&below, &b, 4), memcpy(&above, &a, 4);
    assert_true((double)below * below < 2 && (double)above * above > 2);
    expect("bl5/16", (float[]){1.0f, below, above}, 3, (float[]){1.0f, 1.0f, 2.0f}, (int32_t[]){1, 1, 0}, 1);
    expect("mxint8", (float[]){1.0f, 2.5f / 64, 3.5f / 64, -2.5f / 64}, 4, (float[]){1.0f, 2.0f / 64, 4.0f / 64, -2.0f / 64},
           (int32_t[]){64, 2, 4, -2}, 0);
    expect("mxfp8e5m2", (float[]){1.125f, 1.375f}, 2, (float[]){1.0f, 1.5f}, NULL, -15);
    expect("int4/16", (float[]){7.0f, 2.5f, 3.5f, -0.5f, -1.5f}, 5, (float[]){7, 2, 4, 0, -2}, (int32_t[]){7, 2, 4, 0, -2}, 1);
    /* int divides by d: 7.5 / 3 is a tie (to 2), 7.5 · fl(1/3) is not */
    expect("int8/32", (float[]){381.0f, 7.5f}, 2, (float[]){381.0f, 6.0f}, (int32_t[]){127, 2}, 3);
    /* nf4: t exactly on the midpoint of codes 7|8 and 6|7 goes to the lower code */
    expect("nf4/64", (float[]){1.0f, nf4v[8] / 2, nf4v[6] / 2}, 3, (float[]){1.0f, 0.0f, nf4v[6]}, (int32_t[]){15, 7, 6}, 1);
    expect("fp16", (float[]){1 + 0x1p-11f, 1 + 0x3p-11f, 65519.0f, 65520.0f}, 4,
           (float[]){1.0f, 1 + 0x1p-9f, 65504.0f, INFINITY}, NULL, NAN);
    expect("bf16", (float[]){1 + 0x1p-8f, 1 + 0x3p-8f}, 2, (float[]){1.0f, 1 + 0x1p-6f}, NULL, NAN);
    /* nf4 computes x·(1/absmax), which here is above the 7|8 midpoint while x/absmax is not */
    expect("nf4/64", (float[]){3.0f, 0.11937045305967331f}, 2, (float[]){3.0f, nf4v[8] * 3.0f}, (int32_t[]){15, 8}, 3);
    /* ... and divides when 1/absmax overflows (absmax below 2^-128) */
    expect("nf4/64", (float[]){1e-39f, 5e-40f, 0.0f}, 3, (float[]){1e-39f, nf4v[12] * 1e-39f, 0.0f}, (int32_t[]){15, 12, 7}, (double)1e-39f);
}

/* A power-of-two block max saturates; all-zero blocks take the smallest shared code and give
 * +0; non-finite blocks are stored with the NaN marker of their family. */
static void test_special_blocks(void **state)
{
    expect("bfp6/16", (float[]){1.0f, 0.5f}, 2, (float[]){0.96875f, 0.5f}, (int32_t[]){31, 16}, 0);
    expect("bfp8/16", (float[]){-4.0f}, 1, (float[]){-4.0f * (1 - 0x1p-7f)}, (int32_t[]){-127}, 2);
    /* int: d saturates at the largest finite fp16, the elements at ±qmax */
    expect("int8/32", (float[]){1e7f, -1e7f, 1.0f}, 3, (float[]){127 * 65504.0f, -127 * 65504.0f, 0.0f}, (int32_t[]){127, -127, 0}, 65504);
    static const struct { const char *name; uint32_t zero_shared, nan_shared; } t[] = {
        {"bfp6/16", 0, 0xFF}, {"bm8e4/16", 0, 0xFF}, {"bl5/16", 0, 0xFF}, {"mxint8", 0, 0xFF},
        {"mxfp4", 0, 0xFF}, {"int8/32", 0, 0x7E00}, {"nf4/64", 0, 0x7FC00000},
    };
    float z[40] = {0}, nanb[40] = {0};
    z[3] = -0.0f;
    nanb[5] = NAN;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bq_format f = test_format(t[i].name);
        unsigned char q[64];
        float y[40];
        bq_block_info bi;
        bq_quantize(&f, z, 8, q);
        bq_dequantize(&f, q, 8, y);
        bq_block_fields(&f, q, 8, 0, &bi, NULL);
        assert_int_equal(bi.shared, t[i].zero_shared);
        for (int k = 0; k < 8; k++) assert_same(&f, y[k], 0.0f);
        bq_quantize(&f, nanb, 8, q);
        bq_dequantize(&f, q, 8, y);
        bq_block_fields(&f, q, 8, 0, &bi, NULL);
        assert_int_equal(bi.shared, t[i].nan_shared);
        for (int k = 0; k < 8; k++) assert_true(isnan(y[k]));
    }
}

static void test_bpe(void **state)
{
    static const struct { const char *name; double bpe; } t[] = {
        {"bfp6/16", 6.5}, {"bfp4/16", 4.5}, {"bfp8/16", 8.5}, {"mxfp4", 4.25}, {"mxint8", 8.25},
        {"mxfp6e3m2", 6.25}, {"int4/32", 4.5}, {"int8/32", 8.5}, {"nf4/64", 4.5}, {"bm8e4/16", 8.5},
        {"fp16", 16}, {"bf16", 16}, {"fp32", 32},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bq_format f = test_format(t[i].name);
        assert_true(bq_format_bpe(&f) == t[i].bpe);
    }
}

/* Exact block sums where fp32 sums are not: sticky bits, cancellation across 2^64 and more. */
static void test_dot_exact(void **state)
{
    static const struct { const char *name; float a[5], w[5], want; } t[] = {
        {"bl8/16", {1, 0x1p-12f, 0x1p-30f}, {1, 0x1p-12f, 0x1p-30f}, 1 + 0x1p-23f},     /* 1 + 2^-24 + 2^-60 */
        {"bl8/16", {1, 0x1p-12f, 0x1p-35f}, {1, 0x1p-12f, 0x1p-35f}, 1 + 0x1p-23f},     /* sticky 64+ bits down */
        {"bl8/16", {1, 0x1p-12f, 0}, {1, 0x1p-12f, 0}, 1.0f},                           /* 1 + 2^-24: tie, even */
        {"bl8/16", {1, 0x1p-100f, -1}, {1, 0x1p-20f, 1}, 0x1p-120f},                     /* cancellation */
        /* a subnormal block sum: 2^-130 + 2^-150 + 2^-170 rounds up to 2^-130 + 2^-149 */
        {"bl8/16", {1, 0x1p-65f, 0x1p-75f, 0x1p-85f, 0}, {0, 0x1p-65f, 0x1p-75f, 0x1p-85f, 1}, 0x1p-130f + 0x1p-149f},
        {"bl8/16", {1, 0x1p-65f, 0x1p-75f, 0, 0}, {0, -0x1p-65f, -0x1p-75f, 0, 1}, -0x1p-130f},   /* tie, even */
        {"mxfp8e5m2", {57344, 0x1p-16f, -57344}, {57344, 0x1p-16f, 57344}, 0x1p-32f},    /* over 2^64 apart */
        {"bfp8/16", {1.5f, -0.5f, 0.25f}, {0.75f, 0.5f, 0.5f}, 1.0f},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        bq_format f = test_format(t[i].name);
        unsigned char qa[64], qw[64];
        bq_quantize(&f, t[i].a, 5, qa);
        bq_quantize(&f, t[i].w, 5, qw);
        assert_same(&f, bq_dot_ref(&f, qa, &f, qw, 5), t[i].want);
    }
    /* fp32 x fp32 is bq_matmul_f32's fmaf chain */
    bq_format f = test_format("fp32");
    float a[5] = {1e8f, 1.5f, -1e8f, 3.25f, 0.1f}, w[5] = {1.0f, 1.0f, 1.0f, 0.3f, 7.0f}, want = 0.0f;
    for (int i = 0; i < 5; i++) want = fmaf(a[i], w[i], want);
    assert_same(&f, bq_dot_ref(&f, a, &f, w, 5), want);
}

/* Extreme finite inputs and arbitrary stored bytes (corrupt weights) are defined behaviour:
 * run under UBSan, this fails on any float-to-int overflow, bad shift or out-of-range index. */
static void test_extremes_and_garbage(void **state)
{
    static const int blocks[] = {8, 256};
    bq_format fs[400];
    int n = all_formats(fs, 400, blocks, 2);
    float x[600], y[600];
    unsigned char q[4096], g[4096];
    uint64_t s = 12345;
    for (int i = 0; i < 600; i++) {
        static const float ext[] = {FLT_MAX, -FLT_MAX, FLT_MIN, 0x1p-149f, -0x1p-149f, 1e-39f, 65504, 65520, 0, -0.0f};
        x[i] = rng(&s) % 3 ? ext[rng(&s) % 10] : (float)uni(&s);
    }
    for (int i = 0; i < 4096; i++) g[i] = (unsigned char)rng(&s);
    for (int k = 0; k < n; k++) {
        assert_true(bq_format_bytes(&fs[k], 600) <= sizeof q);
        bq_quantize(&fs[k], x, 600, q);
        bq_dequantize(&fs[k], q, 600, y);
        for (int i = 0; i < 600; i++) assert_false(isnan(y[i]));   /* all finite input: no NaN */
        (void)bq_dot_ref(&fs[k], q, &fs[k], q, 600);
        bq_dequantize(&fs[k], g, 600, y);
        (void)bq_dot_ref(&fs[k], g, &fs[k], q, 600);
    }
}

/* ---- names ---- */

static void test_names(void **state)
{
    static const int blocks[] = {8, 16, 32, 64, 128, 256};
    bq_format fs[400];
    int n = all_formats(fs, 400, blocks, 6);
    assert_int_equal(n, (6 + 25 + 6 + 7 + 1) * 6 + 5 + 1 + 3);
    for (int i = 0; i < n; i++) {
        char name[64], why[200];
        bq_format g;
        assert_true(bq_format_name(&fs[i], name, sizeof name) > 0);
        assert_int_equal(bq_format_parse(name, strlen(name), 0, &g, why, sizeof why), BQ_OK);
        assert_true(fmt_eq(&g, &fs[i]));
    }
    static const struct { const char *s; const char *name; } ok[] = {
        {"bfp6", "bfp6/16"}, {"nf4", "nf4/64"}, {"int4", "int4/32"}, {"mxint8/32", "mxint8"}, {"mxfp4e2m1", "mxfp4"},
        {"mxfp8e5m2", "mxfp8e5m2"}, {"bm5e2/8", "bm5e2/8"}, {"fp16", "fp16"}, {"bl3/256", "bl3/256"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char name[64];
        bq_format g = test_format(ok[i].s);
        bq_format_name(&g, name, sizeof name);
        assert_string_equal(name, ok[i].name);
    }
    static const struct { const char *s; int allow_auto; const char *why; } bad[] = {
        {"bfq6", 0, "unknown format 'bfq6'"}, {"", 0, "unknown format ''"}, {"fp8", 0, "unknown format 'fp8'"},
        {"bfp/16", 0, "unknown format 'bfp/16'"}, {"bfp6/16x", 0, "unknown format 'bfp6/16x'"},
        {"bfp9/16", 0, "bfp width 9 is outside 3..8"}, {"bfp2", 0, "bfp width 2 is outside 3..8"},
        {"bfp6/12", 0, "bfp block 12 is not a power of two in 8..256"}, {"bfp6/512", 0, "bfp block 512 is not a power of two in 8..256"},
        {"bfp6/4", 0, "bfp block 4 is not"}, {"bfp6/auto", 0, "block 'auto' is not allowed here"},
        {"bm8e8/16", 0, "bm exponent bits 8 is outside 1..7 for width 8"}, {"bm8/16", 0, "bm8 needs exponent bits"},
        {"bm3e1", 0, "bm width 3 is outside 4..8"}, {"mxfp6", 0, "mxfp6 needs an element type (mxfp6e3m2, mxfp6e2m3)"},
        {"mxfp8e3m4", 0, "mxfp8e3m4 is not an MX element type (mxfp8e4m3, mxfp8e5m2, mxfp6e3m2, mxfp6e2m3, mxfp4)"},
        {"mxfp8e4m2", 0, "mxfp8e4m2 is not an MX element type"}, {"mxfp4/64", 0, "mxfp has a fixed block of 32"},
        {"mxfp4/auto", 1, "mxfp has a fixed block of 32"}, {"mxint4", 0, "mxint width 4 is not 8"},
        {"int1/32", 0, "int width 1 is outside 2..8"}, {"nf4/48", 0, "nf4 block 48 is not a power of two"},
        {"fp16/16", 0, "fp16 has no block"}, {"bfp99999999/16", 0, "bfp width 999999 is outside 3..8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char why[200] = "";
        bq_format g;
        assert_int_equal(bq_format_parse(bad[i].s, strlen(bad[i].s), bad[i].allow_auto, &g, why, sizeof why), BQ_ERR_ARG);
        test_assert_contains(why, bad[i].why, __FILE__, __LINE__);
    }
    char name[32], why[200];
    bq_format g = test_format("int4/auto");
    assert_int_equal(g.block, 0);
    bq_format_name(&g, name, sizeof name);
    assert_string_equal(name, "int4/auto");
    assert_true(isnan(bq_format_bpe(&g)) && bq_format_bytes(&g, 64) == 0);
    /* plan objects */
    static const struct { const char *fam; int w, e, b, allow_auto; const char *want; } mk[] = {
        {"bfp", -1, -1, -1, 0, "bfp6/16"}, {"bm", -1, -1, 32, 0, "bm8e4/32"}, {"mxfp", 4, -1, -1, 0, "mxfp4"},
        {"mxfp", -1, -1, -1, 0, "mxfp8e4m3"}, {"nf4", -1, -1, -1, 0, "nf4/64"}, {"int", 4, -1, 0, 1, "int4/auto"},
        {"fp32", -1, -1, -1, 0, "fp32"}, {"mxfp", 6, 3, -1, 0, "mxfp6e3m2"}, {"mxint", -1, -1, -1, 0, "mxint8"},
        {"mxfp", 6, -1, -1, 0, "mxfp6 needs an element type"}, {"bm", 6, -1, -1, 0, "bm6 needs exponent bits"},
        {"bfp", 6, 2, -1, 0, "bfp takes no exponent bits"}, {"foo", -1, -1, -1, 0, "unknown format family 'foo' (fp32, fp16"},
        {"bfp", 6, -1, 0, 0, "block 'auto' is not allowed here"}, {"bl", 6, -1, 300, 0, "bl block 300 is not"},
    };
    for (size_t i = 0; i < sizeof mk / sizeof mk[0]; i++) {
        why[0] = 0;
        if (bq_format_make(mk[i].fam, mk[i].w, mk[i].e, mk[i].b, mk[i].allow_auto, &g, why, sizeof why) == BQ_OK) {
            bq_format_name(&g, name, sizeof name);
            assert_string_equal(name, mk[i].want);
        } else {
            test_assert_contains(why, mk[i].want, __FILE__, __LINE__);
        }
    }
    char forms[512];
    bq_format_forms(forms, sizeof forms);
    test_assert_contains(forms, "bfp<w>/<B> (widths 3..8)", __FILE__, __LINE__);
    test_assert_contains(forms, "mxfp4", __FILE__, __LINE__);
    test_assert_contains(forms, "<B> is a power of two in 8..256", __FILE__, __LINE__);
}

/* ---- row blocks (int: any multiple of 8 up to 4096; plans' "row") ---- */

static int parse_why(const char *name, int allow, bq_format *f, char *why)
{
    why[0] = 0;
    return bq_format_parse(name, strlen(name), allow, f, why, 200);
}

/* bq_qmatmul against a loop of bq_dot_ref, bit for bit, on every ISA path and 1 and 2 threads. */
static void check_qmatmul(const char *an, const char *wn, int64_t M, int64_t N, int64_t K, uint64_t *s)
{
    bq_format fa = test_format(an), fw = test_format(wn);
    size_t ra = bq_format_bytes(&fa, K), rw = bq_format_bytes(&fw, K);
    float *A = malloc((size_t)(M * K) * sizeof *A), *W = malloc((size_t)(N * K) * sizeof *W);
    float *want = malloc((size_t)(M * N) * sizeof *want), *got = malloc((size_t)(M * N) * sizeof *got);
    unsigned char *qa = malloc(ra * (size_t)M + 1), *qw = malloc(rw * (size_t)N + 1);
    gen(s, A, M * K, 64, 0);
    gen(s, W, N * K, 64, 0);
    for (int64_t i = 0; i < M * K; i += 97) A[i] *= 300.0f;   /* outliers: one scale per row suffers */
    assert_int_equal(bq_qpack_weights(&fw, W, K, 1, N, K, qw), BQ_OK);
    for (int64_t m = 0; m < M; m++) {
        bq_quantize(&fa, A + m * K, K, qa + (size_t)m * ra);
        for (int64_t n = 0; n < N; n++) want[m * N + n] = bq_dot_ref(&fa, qa + (size_t)m * ra, &fw, qw + (size_t)n * rw, K);
    }
    for (int t = 1; t <= 2; t++) {
        bq_pool *pool;
        assert_int_equal(bq_pool_create(t, &pool), BQ_OK);
        for (int isa = BQ_ISA_PORTABLE; isa <= (int)bq_isa_detect(); isa++) {
            assert_int_equal(bq_qmatmul((bq_isa)isa, pool, &fa, A, K, &fw, qw, NULL, 0, got, N, M, N, K), BQ_OK);
            for (int64_t i = 0; i < M * N; i++)
                if (!same(got[i], want[i]))
                    fail_msg("%s x %s K=%lld, %s, %d threads: C[%lld] = %a, want %a", an, wn, (long long)K,
                             bq_isa_name((bq_isa)isa), t, (long long)i, got[i], want[i]);
        }
        bq_pool_destroy(pool);
    }
    free(A), free(W), free(want), free(got), free(qa), free(qw);
}

static void test_row_blocks(void **state)
{
    bq_format f;
    char name[32], why[200];
    /* "row": an open block, like "auto", for plans; int only */
    assert_int_equal(parse_why("int8/row", BQ_ALLOW_ROW, &f, why), BQ_OK);
    assert_int_equal(f.block, BQ_BLOCK_ROW);
    bq_format_name(&f, name, sizeof name);
    assert_string_equal(name, "int8/row");
    assert_true(isnan(bq_format_bpe(&f)) && bq_format_bytes(&f, 64) == 0);
    assert_int_equal(bq_format_make("int", 4, -1, BQ_BLOCK_ROW, BQ_ALLOW_ROW, &f, why, sizeof why), BQ_OK);
    bq_format_name(&f, name, sizeof name);
    assert_string_equal(name, "int4/row");
    static const struct { const char *s; int allow; const char *why; } bad[] = {
        {"int8/row", 0, "block 'row' is not allowed here"},
        {"int8/row", BQ_ALLOW_AUTO, "block 'row' is not allowed here"},
        {"bfp6/row", BQ_ALLOW_ROW, "bfp has no block 'row' (one block per row of K: int only)"},
        {"nf4/row", BQ_ALLOW_ROW, "nf4 has no block 'row'"},
        {"mxint8/row", BQ_ALLOW_ROW, "mxint has a fixed block of 32"},
        {"fp32/row", BQ_ALLOW_ROW, "fp32 has no block"},
        {"int8/12", 0, "int block 12 is not a multiple of 8 in 8..4096"},
        {"int8/4104", 0, "int block 4104 is not a multiple of 8 in 8..4096"},
        {"int8/65535", BQ_ALLOW_ROW, "int block 65535 is not a multiple of 8 in 8..4096"},
        {"int8/rows", BQ_ALLOW_ROW, "unknown format 'int8/rows'"},
        {"bfp6/1024", 0, "bfp block 1024 is not a power of two in 8..256"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(parse_why(bad[i].s, bad[i].allow, &f, why), BQ_ERR_ARG);
        test_assert_contains(why, bad[i].why, __FILE__, __LINE__);
    }
    /* resolved row blocks are ordinary int blocks: names round-trip, bits are exact */
    static const char *const ok[] = {"int8/24", "int8/768", "int8/1024", "int4/4096", "int2/1000", "int8/8"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        f = test_format(ok[i]);
        bq_format_name(&f, name, sizeof name);
        assert_string_equal(name, ok[i]);
    }
    f = test_format("int8/768");
    assert_true(bq_format_bpe(&f) == 8.0 + 16.0 / 768);
    assert_int_equal(bq_format_bytes(&f, 768), 2 + 768);
    assert_int_equal(bq_format_bytes(&f, 1000), 2 + 768 + 2 + 232);
    /* values, codes, scales, storage and exact dot products against the model, as the walk does */
    static const char *const walk[] = {"int8/24", "int8/136", "int4/768", "int8/1024", "int3/4096", "int8/4096"};
    uint64_t s = 77;
    for (size_t i = 0; i < sizeof walk / sizeof walk[0]; i++) {
        f = test_format(walk[i]);
        walk_one(&f, &s);
    }
    /* the quantised matmul takes them: one block per row (K = B, also odd and not a multiple of
     * 16), several blocks with a short last one, int8 x int8 and against fp32 and bfp */
    check_qmatmul("int8/1024", "int8/1024", 5, 37, 1024, &s);
    check_qmatmul("int8/768", "int8/768", 3, 20, 768, &s);
    check_qmatmul("int8/4096", "int8/4096", 2, 17, 4096, &s);
    check_qmatmul("int8/40", "int8/40", 5, 33, 40, &s);
    check_qmatmul("int8/24", "int4/24", 4, 18, 3 * 24 + 10, &s);
    check_qmatmul("int8/1024", "int8/1024", 6, 16, 2 * 1024 + 100, &s);
    check_qmatmul("fp32", "int4/2048", 3, 19, 2048, &s);
    check_qmatmul("int8/512", "fp32", 2, 21, 1536, &s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk),       cmocka_unit_test(test_worked_examples), cmocka_unit_test(test_ties),
        cmocka_unit_test(test_special_blocks), cmocka_unit_test(test_bpe),         cmocka_unit_test(test_dot_exact),
        cmocka_unit_test(test_extremes_and_garbage), cmocka_unit_test(test_names),
        cmocka_unit_test(test_row_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
