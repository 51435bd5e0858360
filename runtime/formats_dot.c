/* formats_dot.c — bq_dot_ref, the reference block dot product every fast kernel must match.
 *
 * Per block (of the blocked operand; plain × plain is one block spanning the whole run):
 *   block_sum = Σ a_i·w_i over the block's elements, in units of the two block scales —
 *               exact when both operands are exact families (elements m·2^e), rounded once to
 *               float (RNE); otherwise an fmaf chain in fp32 in increasing K from 0;
 *   acc      += (float)block_sum × (scale_a × scale_w)   (scales multiplied first, in fp32)
 * with acc an fp32 sum in increasing K from 0.
 *
 * Exact block sums span more than any machine integer: block-log w=8 elements reach 2^-126,
 * so products reach 2^-252, while MX E5M2 products reach 2^28. The accumulator is therefore a
 * small fixed-point number: 32-bit digits from 2^-256 up, each held in an int64 so a block's
 * additions (at most 256 per digit, each below 2^32) never carry until the end. Rounding to
 * float then looks at the top 64 bits and a sticky bit, and knows about float subnormals.
 */
#include <assert.h>
#include <math.h>

#include "formats_int.h"

#define ACC_EMIN (-256)   /* weight of the accumulator's bit 0: below every product */
#define ACC_DIGITS 11     /* 352 bits: products stay below 2^(28+14) and a block adds 256 */

typedef struct acc_t {
    int64_t d[ACC_DIGITS];   /* value = Σ d[i]·2^(32i + ACC_EMIN); d[i] in [0, 2^32) once normalised */
} acc_t;

/* + m·2^e, |m| < 2^31 */
static void acc_add(acc_t *a, int64_t m, int e)
{
    int p = e - ACC_EMIN, i = p >> 5;
    assert(p >= 0 && i + 1 < ACC_DIGITS);
    uint64_t mag = m < 0 ? (uint64_t)0 - (uint64_t)m : (uint64_t)m;
    uint64_t sh = mag << (p & 31);   /* below 2^63 */
    int64_t lo = (int64_t)(sh & 0xFFFFFFFFu), hi = (int64_t)(sh >> 32);
    if (m < 0) {
        a->d[i] -= lo;
        a->d[i + 1] -= hi;
    } else {
        a->d[i] += lo;
        a->d[i + 1] += hi;
    }
}

/* Carries so every digit but the top is in [0, 2^32) (floor division: defined for negatives). */
static void acc_carry(acc_t *a)
{
    for (int i = 0; i < ACC_DIGITS - 1; i++) {
        int64_t low = a->d[i] & 0xFFFFFFFF;
        a->d[i + 1] += (a->d[i] - low) / 4294967296;
        a->d[i] = low;
    }
}

/* The accumulated value rounded to float, half to even, subnormals included. */
static float acc_round(acc_t *a)
{
    acc_carry(a);
    int neg = a->d[ACC_DIGITS - 1] < 0;
    if (neg) {
        for (int i = 0; i < ACC_DIGITS; i++) a->d[i] = -a->d[i];
        acc_carry(a);
    }
    int t = ACC_DIGITS - 1;
    while (t >= 0 && a->d[t] == 0) t--;
    if (t < 0) return 0.0f;
    uint32_t top = (uint32_t)a->d[t];
    int lz = 0;
    while (!(top & 0x80000000u)) {
        top <<= 1;
        lz++;
    }
    /* W: the 64 bits from the top bit down; sticky: anything below them */
    uint64_t W = (uint64_t)(uint32_t)a->d[t] << 32 | (t >= 1 ? (uint32_t)a->d[t - 1] : 0u);
    uint32_t next = t >= 2 ? (uint32_t)a->d[t - 2] : 0u;
    W <<= lz;
    if (lz) W |= next >> (32 - lz);
    int sticky = (lz ? (uint32_t)(next << lz) : next) != 0;
    for (int i = t - 3; i >= 0 && !sticky; i--) sticky = a->d[i] != 0;

    int T = 32 * t + 31 - lz + ACC_EMIN;        /* exponent of the top bit */
    int keep = T >= -126 ? 24 : T + 150;        /* significant bits a float has there */
    float r;
    if (keep <= 0) {                            /* below 2^-149: 0, or 2^-149 when above the half */
        int up = keep == 0 && ((W << 1) != 0 || sticky);
        r = up ? ldexpf(1.0f, -149) : 0.0f;
    } else {
        uint64_t q = W >> (64 - keep), rest = W << keep;
        int half = (int)(rest >> 63), more = (rest << 1) != 0 || sticky;
        if (half && (more || (q & 1))) q++;
        r = ldexpf((float)q, T - keep + 1);     /* q <= 2^24: exact */
    }
    return neg ? -r : r;
}

static float exact_sum(const bq_elems *a, const bq_elems *w, int len)
{
    acc_t acc = {{0}};
    for (int i = 0; i < len; i++)
        if (a->m[i] && w->m[i]) acc_add(&acc, (int64_t)a->m[i] * w->m[i], a->e[i] + w->e[i]);
    return acc_round(&acc);
}

static float elem(const bq_elems *x, int i) { return x->exact ? ldexpf((float)x->m[i], x->e[i]) : x->v[i]; }

static float fp32_sum(const bq_elems *a, const bq_elems *w, int len, float s)
{
    for (int i = 0; i < len; i++) s = fmaf(elem(a, i), elem(w, i), s);
    return s;
}

static int is_plain(const bq_format *f) { return f->block == 1; }

float bq_dot_ref(const bq_format *fa, const void *a, const bq_format *fw, const void *w, int64_t n)
{
    bq_elems ea, ew;
    float acc = 0.0f;
    if (is_plain(fa) && is_plain(fw)) {         /* one block: the fp32 matmul's fmaf chain */
        for (int64_t k0 = 0; k0 < n; k0 += BQ_BLOCK_MAX) {
            int len = (int)(n - k0 < BQ_BLOCK_MAX ? n - k0 : BQ_BLOCK_MAX);
            bq_decode_run(fa, a, n, k0, len, &ea);
            bq_decode_run(fw, w, n, k0, len, &ew);
            acc = fp32_sum(&ea, &ew, len, acc);
        }
        float c = acc * 1.0f;
        return 0.0f + c;
    }
    assert(is_plain(fa) || is_plain(fw) || fa->block == fw->block);
    int64_t B = is_plain(fa) ? fw->block : fa->block;
    for (int64_t k0 = 0; k0 < n; k0 += B) {
        int len = (int)(n - k0 < B ? n - k0 : B);
        int xa = bq_decode_run(fa, a, n, k0, len, &ea);
        int xw = bq_decode_run(fw, w, n, k0, len, &ew);
        float bsum = xa && xw ? exact_sum(&ea, &ew, len) : fp32_sum(&ea, &ew, len, 0.0f);
        float s = ea.scale * ew.scale;
        float c = bsum * s;
        acc = acc + c;
    }
    return acc;
}
