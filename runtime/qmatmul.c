/* qmatmul.c — the quantised matmul: C = A · Wᵀ under bq_dot_ref's contract, fast.
 *
 * bq_dot_ref decodes and re-derives everything per element pair; here each operand is
 * decoded once per call. A format is analysed first (element code → integer mantissa M of one
 * unit 2^emin, or → float; shared byte → block scale), which decides the pair's form
 * (qmatmul_int.h): for two exact formats whose block sums fit a machine integer — every bfp,
 * int, mxint8, mxfp4/6, narrow bl/bm — the block sum is an exact int32/int64 sum, rounded to
 * float once by the int→float conversion and scaled by 2^(emin_a+emin_w) (exact: the pair is
 * only admitted when that product is a normal float), which is exactly the reference's
 * rounding of the exact sum. With an nf4 or plain operand the elements become floats and a
 * block is an fmaf chain. Pairs no machine integer holds (mxfp8e5m2, wide bl/bm) fall back to
 * bq_dot_ref. Then every output accumulates ((float)sum · 2^e) · (sa · sw) block by block in
 * fp32, in increasing K from +0, then + bias, then ReLU — the contract, operation by operation.
 *
 * Work: activation rows are quantised (bq_quantize) and decoded once (phase 1, rows split over
 * the pool); then each part of the pool owns a range of panels of QNR weight rows, decodes a
 * panel into the kernel layout, and runs the ISA's kernel over all activation rows. Outputs
 * never span two parts, so threads and ISA paths cannot change a bit. With one activation row
 * (decoding a token) the panel decode is most of the time, so the common weight codes — bytes
 * that are M, nibbles through a 16-entry table, w-bit two's complement — are decoded 16 rows at
 * a time by a SIMD transpose (AVX-512), with the rows prefetched. The format analysis is a
 * bq_qpair, made once per call here and once per attention call for all its heads.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats_int.h"
#include "qkern.h"
#include "qmatmul_int.h"

typedef enum { Q_I16, Q_I32, Q_F32, Q_REF } qform;

/* One operand's format, analysed (a bq_qpair holds two). */
typedef struct qop {
    bq_format f;
    const bq_family_row *row;
    int plain;            /* block 1: fp32, fp16, bf16 */
    int exact;            /* elements are integers times powers of two */
    int sbytes;           /* bytes of the shared field */
    int emin, bits;       /* exact: element = M · 2^emin, |M| < 2^bits (bits 64: no int32 holds M) */
    size_t bbytes;        /* bytes of a full block */
    int32_t mlut[256];    /* element code -> M */
    int16_t m16[256];     /* ... when |M| < 2^15 */
    int pack8;            /* the SIMD panel decoder applies: 8 (the code byte is M), 4 (M = lut4[code]),
                           * 2 (M is the w-bit code sign-extended), 1 (M = m8[code] fits int8), 0 (no) */
    int8_t lut4[16];
    int8_t m8[256];
    float flut[256];      /* element code -> element value (the Q_F32 form) */
    float slut[256];      /* shared byte -> block scale (sbytes == 1) */
} qop;

static int bitlen(uint64_t v)
{
    int n = 0;
    while (v) n++, v >>= 1;
    return n;
}

/* False for an invalid format. Element values do not depend on the shared field in any
 * family (it only sets the scale), so all codes are decoded in one call with a zero shared
 * field. The float form's table is only filled when the pair needs it (floats). */
static int analyse(qop *op, const bq_format *f, int floats)
{
    if (bq_format_bytes(f, 1) == 0) return 0;
    op->f = *f;
    op->row = bq_family_row_of(f->family);
    op->plain = f->block == 1;
    op->exact = op->row->exact;
    op->sbytes = op->row->sbits / 8;
    op->bbytes = bq_format_bytes(f, f->block);
    op->emin = 0;
    op->bits = 0;
    op->pack8 = 0;
    if (op->plain) return 1;
    bq_elems el;
    uint32_t ncodes = 1u << f->width, codes[256];
    int32_t m[256];
    int e[256], emin = INT_MAX;
    for (uint32_t c = 0; c < ncodes; c++) codes[c] = c;
    op->row->decode(f, 0, codes, (int)ncodes, &el);
    for (uint32_t c = 0; c < ncodes; c++) {
        if (floats) op->flut[c] = el.exact ? ldexpf((float)el.m[c], el.e[c]) : el.v[c];
        m[c] = el.exact ? el.m[c] : 0;
        e[c] = el.exact ? el.e[c] : 0;
        if (m[c] && e[c] < emin) emin = e[c];
    }
    if (op->exact) {
        op->emin = emin == INT_MAX ? 0 : emin;
        uint64_t maxm = 0;
        for (uint32_t c = 0; c < ncodes; c++) {
            int sh = e[c] - op->emin;
            uint64_t mag = m[c] < 0 ? (uint64_t)(-(int64_t)m[c]) : (uint64_t)m[c];
            if (m[c] && (sh > 40 || bitlen(mag) + sh > 31)) {
                op->bits = 64;
                break;
            }
            op->mlut[c] = m[c] ? (int32_t)((m[c] < 0 ? -1 : 1) * (int64_t)(mag << sh)) : 0;
            op->m16[c] = (int16_t)op->mlut[c];   /* used only when bits <= 15 */
            if (mag << sh > maxm) maxm = mag << sh;
        }
        if (op->bits != 64) op->bits = bitlen(maxm);
        int id8 = f->width == 8, fits8 = op->bits <= 8, twos = 1;
        for (uint32_t c = 0; c < ncodes && fits8; c++) {
            fits8 &= op->mlut[c] >= -128 && op->mlut[c] <= 127;
            id8 &= op->mlut[c] == (int8_t)c;
            twos &= op->mlut[c] == bq_twos_value(c, f->width);
            op->m8[c] = (int8_t)op->mlut[c];
            if (c < 16) op->lut4[c] = (int8_t)op->mlut[c];
        }
        op->pack8 = !fits8 ? 0 : id8 ? 8 : f->width == 4 ? 4 : twos ? 2 : 1;
    }
    if (op->sbytes == 1)
        for (uint32_t s = 0; s < 256; s++) {
            op->row->decode(f, s, NULL, 0, &el);
            op->slut[s] = el.scale;
        }
    return 1;
}

static int ceil_log2(int64_t v)
{
    int n = 0;
    while (((int64_t)1 << n) < v) n++;
    return n;
}

/* The pair's form; *ex = emin_a + emin_w for the integer forms. */
static qform pair_form(const qop *a, const qop *w, int64_t B, int *ex)
{
    *ex = 0;
    if (!a->exact || !w->exact) return Q_F32;
    *ex = a->emin + w->emin;
    int tot = a->bits + w->bits + ceil_log2(B);
    if (a->bits > 31 || w->bits > 31 || *ex < -126 || *ex + tot > 127) return Q_REF;
    if (a->bits <= 15 && w->bits <= 15 && tot <= 31) return Q_I16;
    return tot <= 62 ? Q_I32 : Q_REF;
}

/* ---- decoding a quantised run into a form ---- */

/* Eight w-bit codes from w bytes; spelled out so every shift is a constant once w is. */
#define BYTE_IN(b) (w > (b) ? (uint64_t)s[b] << (8 * (b)) : 0)
#define CODE_OUT(j) out[j] = (uint8_t)((word >> ((j) * w)) & mask);
static inline __attribute__((always_inline)) void unpack8(const uint8_t *s, const int w, int64_t groups, uint8_t *out)
{
    const uint64_t mask = (1u << w) - 1;
    for (int64_t g = 0; g < groups; g++, s += w, out += 8) {
        uint64_t word = BYTE_IN(0) | BYTE_IN(1) | BYTE_IN(2) | BYTE_IN(3) | BYTE_IN(4) | BYTE_IN(5) | BYTE_IN(6);
        CODE_OUT(0) CODE_OUT(1) CODE_OUT(2) CODE_OUT(3) CODE_OUT(4) CODE_OUT(5) CODE_OUT(6) CODE_OUT(7)
    }
}
#undef BYTE_IN
#undef CODE_OUT

/* len codes of w bits, LSB-first (docs/formats.md). */
static void unpack_codes(const uint8_t *s, int w, int64_t len, uint8_t *out)
{
    if (w == 8) {
        memcpy(out, s, (size_t)len);
        return;
    }
    if (w == 4) {
        int64_t i = 0;
        for (; i + 1 < len; i += 2, s++) {
            out[i] = (uint8_t)(*s & 15u);
            out[i + 1] = (uint8_t)(*s >> 4);
        }
        if (i < len) out[i] = (uint8_t)(*s & 15u);
        return;
    }
    /* Eight codes are w whole bytes: constant shifts per width; then the tail, where a code
     * spans at most two bytes. */
    int64_t i0 = len / 8;
    switch (w) {
    case 2: unpack8(s, 2, i0, out); break;
    case 3: unpack8(s, 3, i0, out); break;
    case 5: unpack8(s, 5, i0, out); break;
    case 6: unpack8(s, 6, i0, out); break;
    case 7: unpack8(s, 7, i0, out); break;
    default: i0 = 0; break;
    }
    uint32_t mask = (1u << w) - 1;
    int64_t nbytes = (len * w + 7) / 8;
    for (int64_t i = i0 * 8, bit = i * w; i < len; i++, bit += w) {
        int64_t b = bit >> 3;
        uint32_t v = s[b] | (b + 1 < nbytes ? (uint32_t)s[b + 1] << 8 : 0u);
        out[i] = (uint8_t)((v >> (bit & 7)) & mask);
    }
}

/* Shared fields wider than a byte (int's fp16 d, nf4's fp32 absmax): the family's decoder. */
static float scale_of_field(const qop *op, const uint8_t *blk)
{
    uint32_t s = 0;
    for (int i = 0; i < op->sbytes; i++) s |= (uint32_t)blk[i] << (8 * i);
    bq_elems el;
    op->row->decode(&op->f, s, NULL, 0, &el);
    return el.scale;
}

static inline float block_scale(const qop *op, const uint8_t *blk)
{
    return op->sbytes == 1 ? op->slut[blk[0]] : scale_of_field(op, blk);
}

/* A quantised run of K elements (a block format) into elements of `form` (int16, int32 or
 * float, K of them) and one scale per block. */
static void decode_blocks(const qop *op, qform form, const uint8_t *q, int64_t K, void *elems, float *scales)
{
    int64_t B = op->f.block;
    uint8_t codes[BQ_BLOCK_MAX];
    for (int64_t k0 = 0, b = 0; k0 < K; k0 += B, b++) {
        int64_t len = K - k0 < B ? K - k0 : B;
        const uint8_t *blk = q + (size_t)b * op->bbytes;
        scales[b] = block_scale(op, blk);
        unpack_codes(blk + op->sbytes, op->f.width, len, codes);
        if (form == Q_I16)
            for (int64_t i = 0; i < len; i++) ((int16_t *)elems)[k0 + i] = (int16_t)op->mlut[codes[i]];
        else if (form == Q_I32)
            for (int64_t i = 0; i < len; i++) ((int32_t *)elems)[k0 + i] = op->mlut[codes[i]];
        else
            for (int64_t i = 0; i < len; i++) ((float *)elems)[k0 + i] = op->flut[codes[i]];
    }
}

/* Any operand's run of K into its form: plain types become their values (fp32 as given, fp16
 * and bf16 dequantised exactly) with scale 1 for each of the nb blocks of the pair. */
static void decode_run(const qop *op, qform form, const void *q, int64_t K, int64_t nb, void *elems, float *scales)
{
    if (!op->plain) {
        decode_blocks(op, form, q, K, elems, scales);
        return;
    }
    if (op->f.family == BQ_FAM_FP32) memcpy(elems, q, (size_t)K * sizeof(float));
    else bq_dequantize(&op->f, q, K, elems);
    for (int64_t b = 0; b < nb; b++) scales[b] = 1.0f;
}

/* ---- portable kernels (the reference loops for the SIMD ones) ---- */

void bq_qk_i16_portable(const bq_qtile *t)
{
    const int16_t *W = t->w;
    for (int i = 0; i < t->mr; i++) {
        const int16_t *a = (const int16_t *)t->a + i * t->lda;
        const float *sa = t->sa + i * t->ldsa;
        float acc[QNR];
        for (int j = 0; j < QNR; j++) acc[j] = 0.0f;
        for (int64_t b = 0, k0 = 0; b < t->nb; b++, k0 += t->B) {
            int64_t k1 = k0 + t->B < t->K ? k0 + t->B : t->K;
            int32_t s[QNR] = {0};
            for (int64_t k = k0; k < k1; k++) {
                const int16_t *wk = W + (k >> 1) * 2 * QNR + (k & 1);
                for (int j = 0; j < QNR; j++) s[j] += (int32_t)a[k] * wk[2 * j];
            }
            for (int j = 0; j < QNR; j++) acc[j] = bq_qk_block_acc(acc[j], (float)s[j] * t->p2, sa[b], t->sw[b * QNR + j]);
        }
        memcpy(t->acc + i * QNR, acc, sizeof acc);
    }
}

void bq_qk_i32_portable(const bq_qtile *t)
{
    const int32_t *W = t->w;
    for (int i = 0; i < t->mr; i++) {
        const int32_t *a = (const int32_t *)t->a + i * t->lda;
        const float *sa = t->sa + i * t->ldsa;
        float acc[QNR];
        for (int j = 0; j < QNR; j++) acc[j] = 0.0f;
        for (int64_t b = 0, k0 = 0; b < t->nb; b++, k0 += t->B) {
            int64_t k1 = k0 + t->B < t->K ? k0 + t->B : t->K;
            int64_t s[QNR] = {0};
            for (int64_t k = k0; k < k1; k++)
                for (int j = 0; j < QNR; j++) s[j] += (int64_t)a[k] * W[k * QNR + j];
            for (int j = 0; j < QNR; j++) acc[j] = bq_qk_block_acc(acc[j], (float)s[j] * t->p2, sa[b], t->sw[b * QNR + j]);
        }
        memcpy(t->acc + i * QNR, acc, sizeof acc);
    }
}

void bq_qk_f32_portable(const bq_qtile *t)
{
    const float *W = t->w;
    for (int i = 0; i < t->mr; i++) {
        const float *a = (const float *)t->a + i * t->lda;
        const float *sa = t->sa + i * t->ldsa;
        float acc[QNR];
        for (int j = 0; j < QNR; j++) acc[j] = 0.0f;
        for (int64_t b = 0, k0 = 0; b < t->nb; b++, k0 += t->B) {
            int64_t k1 = k0 + t->B < t->K ? k0 + t->B : t->K;
            float s[QNR];
            for (int j = 0; j < QNR; j++) s[j] = 0.0f;
            for (int64_t k = k0; k < k1; k++)
                for (int j = 0; j < QNR; j++) s[j] = fmaf(a[k], W[k * QNR + j], s[j]);
            for (int j = 0; j < QNR; j++) acc[j] = bq_qk_block_acc(acc[j], s[j], sa[b], t->sw[b * QNR + j]);
        }
        memcpy(t->acc + i * QNR, acc, sizeof acc);
    }
}

static bq_qkernel_fn kernel_for(bq_isa isa, qform form)
{
#if defined(__x86_64__) || defined(__i386__)
    if (isa == BQ_ISA_AVX512 && form == Q_I16) return bq_qk_i16_avx512;
    if (isa == BQ_ISA_AVX512 && form == Q_F32) return bq_qk_f32_avx512;
    if (isa >= BQ_ISA_AVX2 && form == Q_I16) return bq_qk_i16_avx2;
    if (isa >= BQ_ISA_AVX2 && form == Q_F32) return bq_qk_f32_avx2;
#else
    (void)isa;
#endif
    return form == Q_I16 ? bq_qk_i16_portable : form == Q_I32 ? bq_qk_i32_portable : bq_qk_f32_portable;
}

/* ---- the job ---- */

/* Two formats analysed once (bq_qpair_create), for any number of products. */
struct bq_qpair {
    qop a, w;
};

typedef struct qjob {
    const qop *a, *w;            /* the pair's operands */
    qform form;
    bq_qkernel_fn kern;
    bq_qpack16_fn pack16;        /* SIMD panel decoder (Q_I16, blocks of 16k), or NULL */
    const float *A;
    int64_t lda;
    uint8_t *qa;                 /* quantised activation rows (qa_row bytes each) */
    size_t qa_row;
    void *ae;                    /* decoded activation elements, rows lde apart */
    int64_t lde;
    float *sa;                   /* activation block scales [M][nb] */
    const uint8_t *Wq;
    size_t w_row;                /* bytes per weight row */
    const float *bias;
    int relu;
    float *C;
    int64_t ldc, M, N, K, Kp, B, nb;
    float p2;
    size_t esize;                /* bytes of one element of the form */
    int64_t rows_per_part, panels_per_part;
    unsigned char *work;         /* per part: panel, panel scales, a decoded row, its scales, acc */
    size_t work_bytes;
} qjob;

enum { PREFETCH_BYTES = 256 };   /* how far ahead pack_panel reads each weight row */

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Phase 1: activation rows quantised and decoded. */
static void prep_rows(void *ctx, int64_t i)
{
    const qjob *j = ctx;
    int64_t m1 = (i + 1) * j->rows_per_part < j->M ? (i + 1) * j->rows_per_part : j->M;
    for (int64_t m = i * j->rows_per_part; m < m1; m++) {
        uint8_t *q = j->qa + (size_t)m * j->qa_row;
        bq_quantize(&j->a->f, j->A + m * j->lda, j->K, q);
        if (j->form == Q_REF) continue;
        void *e = (char *)j->ae + (size_t)(m * j->lde) * j->esize;
        if (j->form == Q_I16 && j->Kp > j->K) ((int16_t *)e)[j->K] = 0;
        decode_run(j->a, j->form, q, j->K, j->nb, e, j->sa + m * j->nb);
    }
}

/* Weight row l of a panel (a block format), decoded straight into the kernel's layout: with
 * one activation row the weights are read once per call, so this is the hot loop of decoding. */
static void pack_blocks(const qop *op, qform form, const uint8_t *q, int64_t K, int64_t b0, int l, void *panel,
                        float *sw)
{
    int64_t B = op->f.block;
    uint8_t buf[BQ_BLOCK_MAX];
    for (int64_t k0 = b0 * B, b = b0; k0 < K; k0 += B, b++) {
        int64_t len = K - k0 < B ? K - k0 : B;
        const uint8_t *blk = q + (size_t)b * op->bbytes, *c = blk + op->sbytes;
        sw[b * QNR + l] = block_scale(op, blk);
        if (op->f.width != 8) {
            unpack_codes(c, op->f.width, len, buf);
            c = buf;
        }
        if (form == Q_I16) {   /* pairs of k: [k/2][QNR][2]; k0 is even, a short last block is zero padded */
            int16_t *p = (int16_t *)panel + (k0 >> 1) * 2 * QNR + 2 * l;
            int64_t i = 0;
            for (; i + 1 < len; i += 2, p += 2 * QNR) {
                p[0] = op->m16[c[i]];
                p[1] = op->m16[c[i + 1]];
            }
            if (i < len) p[0] = op->m16[c[i]], p[1] = 0;
        } else if (form == Q_I32) {
            int32_t *p = (int32_t *)panel + k0 * QNR + l;
            for (int64_t i = 0; i < len; i++) p[i * QNR] = op->mlut[c[i]];
        } else {
            float *p = (float *)panel + k0 * QNR + l;
            for (int64_t i = 0; i < len; i++) p[i * QNR] = op->flut[c[i]];
        }
    }
}

/* Weight rows n0..n0+nr-1 into the panel layout; lanes past nr are zero. */
static void pack_panel(const qjob *j, int64_t n0, int nr, void *panel, float *sw, void *row, float *srow)
{
    if (nr < QNR) {   /* a full panel writes every element and scale */
        memset(panel, 0, (size_t)j->Kp * QNR * j->esize);
        memset(sw, 0, (size_t)j->nb * QNR * sizeof(float));
    }
    int64_t b0 = 0;
    if (j->pack16 && nr == QNR) {   /* whole blocks of 16 rows at once, the last short one below */
        const qop *op = j->w;
        int64_t B = op->f.block;
        const uint8_t *rows[QNR];
        uint8_t bytes[QNR][BQ_BLOCK_MAX];   /* pack8 == 1: each row's M as bytes */
        for (; (b0 + 1) * B <= j->K; b0++) {
            for (int l = 0; l < QNR; l++) {
                const uint8_t *blk = j->Wq + (size_t)(n0 + l) * j->w_row + (size_t)b0 * op->bbytes;
                /* 16 interleaved row streams defeat the hardware prefetcher: ask a few blocks ahead */
                __builtin_prefetch(blk + PREFETCH_BYTES);
                sw[b0 * QNR + l] = block_scale(op, blk);
                rows[l] = blk + op->sbytes;
                if (op->pack8 <= 2) {
                    unpack_codes(rows[l], op->f.width, B, bytes[l]);
                    if (op->pack8 == 1)
                        for (int64_t i = 0; i < B; i++) bytes[l][i] = (uint8_t)op->m8[bytes[l][i]];
                    rows[l] = bytes[l];
                }
            }
            j->pack16(rows, op->pack8 == 4 ? 4 : 8, op->pack8 == 2 ? 1 << (op->f.width - 1) : 0, op->lut4, B / 16,
                      (int16_t *)panel + b0 * B * QNR);
        }
    }
    for (int l = 0; l < nr; l++) {
        const uint8_t *q = j->Wq + (size_t)(n0 + l) * j->w_row;
        if (!j->w->plain) {
            pack_blocks(j->w, j->form, q, j->K, b0, l, panel, sw);
            continue;
        }
        decode_run(j->w, Q_F32, q, j->K, j->nb, row, srow);   /* plain weights: the float form */
        const float *r = row;
        float *p = panel;
        for (int64_t k = 0; k < j->K; k++) p[k * QNR + l] = r[k];
        for (int64_t b = 0; b < j->nb; b++) sw[b * QNR + l] = srow[b];
    }
}

static inline float epilogue(float y, const float *bias, int64_t n, int relu)
{
    if (bias) y = y + bias[n];
    if (relu) y = y < 0.0f ? 0.0f : y;
    return y;
}

/* Phase 2: part i's panels, every activation row. */
static void run_panels(void *ctx, int64_t i)
{
    const qjob *j = ctx;
    int64_t np = (j->N + QNR - 1) / QNR;
    int64_t p1 = (i + 1) * j->panels_per_part < np ? (i + 1) * j->panels_per_part : np;
    unsigned char *w = j->work + (size_t)i * j->work_bytes;
    size_t panel_bytes = align64((size_t)j->Kp * QNR * j->esize), sw_bytes = align64((size_t)j->nb * QNR * 4);
    size_t row_bytes = align64((size_t)j->Kp * 4);
    void *panel = w, *row = w + panel_bytes + sw_bytes;
    float *sw = (float *)(w + panel_bytes), *srow = (float *)(w + panel_bytes + sw_bytes + row_bytes);
    float *acc = srow + ((j->nb + 15) & ~(int64_t)15);
    for (int64_t p = i * j->panels_per_part; p < p1; p++) {
        int64_t n0 = p * QNR;
        int nr = (int)(j->N - n0 < QNR ? j->N - n0 : QNR);
        if (j->form == Q_REF) {
            for (int l = 0; l < nr; l++)
                for (int64_t m = 0; m < j->M; m++) {
                    float y = bq_dot_ref(&j->a->f, j->qa + (size_t)m * j->qa_row, &j->w->f,
                                         j->Wq + (size_t)(n0 + l) * j->w_row, j->K);
                    j->C[m * j->ldc + n0 + l] = epilogue(y, j->bias, n0 + l, j->relu);
                }
            continue;
        }
        pack_panel(j, n0, nr, panel, sw, row, srow);
        for (int64_t m0 = 0; m0 < j->M; m0 += QMR) {
            int mr = (int)(j->M - m0 < QMR ? j->M - m0 : QMR);
            bq_qtile t = {(const char *)j->ae + (size_t)(m0 * j->lde) * j->esize, j->lde, j->sa + m0 * j->nb, j->nb,
                          panel, sw, j->Kp, j->nb, j->B, j->p2, acc, mr};
            j->kern(&t);
            for (int r = 0; r < mr; r++)
                for (int l = 0; l < nr; l++)
                    j->C[(m0 + r) * j->ldc + n0 + l] = epilogue(acc[r * QNR + l], j->bias, n0 + l, j->relu);
        }
    }
}

bq_status bq_qpair_create(const bq_format *A_fmt, const bq_format *W_fmt, bq_qpair **out)
{
    *out = NULL;
    const bq_family_row *ra = A_fmt ? bq_family_row_of(A_fmt->family) : NULL;
    const bq_family_row *rw = W_fmt ? bq_family_row_of(W_fmt->family) : NULL;
    if (!ra || !rw) return BQ_ERR_ARG;
    bq_qpair *p = malloc(sizeof *p);
    if (!p) return BQ_ERR_NOMEM;
    int floats = !ra->exact || !rw->exact;
    if (!analyse(&p->a, A_fmt, floats) || !analyse(&p->w, W_fmt, floats) ||
        (!p->a.plain && !p->w.plain && A_fmt->block != W_fmt->block)) {
        free(p);
        return BQ_ERR_ARG;
    }
    *out = p;
    return BQ_OK;
}

void bq_qpair_destroy(bq_qpair *p) { free(p); }

bq_status bq_qmatmul_pair(bq_isa isa, bq_pool *pool, const bq_qpair *pair, const float *A, int64_t lda,
                          const void *Wq, const float *bias, int relu, float *C, int64_t ldc, int64_t M, int64_t N,
                          int64_t K)
{
    if (M < 0 || N < 0 || K < 0) return BQ_ERR_ARG;
    if (M == 0 || N == 0) return BQ_OK;
    qjob *j = malloc(sizeof *j);
    if (!j) return BQ_ERR_NOMEM;
    const bq_format *A_fmt = &pair->a.f, *W_fmt = &pair->w.f;
    j->a = &pair->a, j->w = &pair->w;
    int ex;
    j->B = !j->a->plain ? A_fmt->block : !j->w->plain ? W_fmt->block : (K > 0 ? K : 1);
    j->form = pair_form(j->a, j->w, j->B, &ex);
    j->kern = kernel_for(isa, j->form);
    j->pack16 = NULL;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == BQ_ISA_AVX512 && j->form == Q_I16 && j->w->pack8 && W_fmt->block % 16 == 0) j->pack16 = bq_qpack16_avx512;
#endif
    j->p2 = ldexpf(1.0f, ex);
    j->A = A, j->lda = lda, j->Wq = Wq, j->bias = bias, j->relu = relu, j->C = C, j->ldc = ldc;
    j->M = M, j->N = N, j->K = K;
    j->Kp = j->form == Q_I16 ? (K + 1) & ~(int64_t)1 : K;
    j->nb = (K + j->B - 1) / j->B;
    j->esize = j->form == Q_I16 ? 2 : 4;
    j->w_row = bq_format_bytes(W_fmt, K);
    j->qa_row = bq_format_bytes(A_fmt, K);
    int threads = bq_pool_threads(pool);
    int64_t np = (N + QNR - 1) / QNR, parts = np < threads ? np : threads;
    j->panels_per_part = (np + parts - 1) / parts;
    parts = (np + j->panels_per_part - 1) / j->panels_per_part;
    j->rows_per_part = (M + threads - 1) / threads;
    /* fp32 activations in the float form are used in place */
    int a_direct = j->form == Q_F32 && A_fmt->family == BQ_FAM_FP32;
    j->work_bytes = align64((size_t)j->Kp * QNR * j->esize) + align64((size_t)j->nb * QNR * 4) +
                    align64((size_t)j->Kp * 4) + align64((size_t)(((j->nb + 15) & ~(int64_t)15) + QMR * QNR) * 4);
    size_t qa_bytes = a_direct ? 0 : align64((size_t)M * j->qa_row);
    size_t ae_bytes = a_direct || j->form == Q_REF ? 0 : align64((size_t)(M * j->Kp) * j->esize);
    size_t sa_bytes = align64((size_t)(M * j->nb) * sizeof(float));
    size_t work_bytes = j->form == Q_REF ? 0 : (size_t)parts * j->work_bytes;
    unsigned char *mem = aligned_alloc(64, qa_bytes + ae_bytes + sa_bytes + work_bytes + 64);
    if (!mem) {
        free(j);
        return BQ_ERR_NOMEM;
    }
    j->qa = mem;
    j->ae = mem + qa_bytes;
    j->lde = j->Kp;
    j->sa = (float *)(mem + qa_bytes + ae_bytes);
    j->work = mem + qa_bytes + ae_bytes + sa_bytes;
    if (a_direct) {
        j->ae = (void *)A;
        j->lde = lda;
        for (int64_t i = 0; i < M * j->nb; i++) j->sa[i] = 1.0f;
    } else {
        bq_pool_run(pool, prep_rows, j, (M + j->rows_per_part - 1) / j->rows_per_part);
    }
    bq_pool_run(pool, run_panels, j, parts);
    free(mem);
    free(j);
    return BQ_OK;
}

bq_status bq_qmatmul(bq_isa isa, bq_pool *pool, const bq_format *A_fmt, const float *A, int64_t lda,
                     const bq_format *W_fmt, const void *Wq, const float *bias, int relu, float *C, int64_t ldc,
                     int64_t M, int64_t N, int64_t K)
{
    bq_qpair *p;
    bq_status st = bq_qpair_create(A_fmt, W_fmt, &p);
    if (st != BQ_OK) return st;
    st = bq_qmatmul_pair(isa, pool, p, A, lda, Wq, bias, relu, C, ldc, M, N, K);
    bq_qpair_destroy(p);
    return st;
}

bq_status bq_qpack_weights(const bq_format *f, const float *B, int64_t ldb, int trans_b, int64_t N, int64_t K,
                           void *dst)
{
    if (!f || N < 0 || K < 0 || bq_format_bytes(f, 1) == 0) return BQ_ERR_ARG;
    size_t row = bq_format_bytes(f, K);
    float *col = trans_b || K == 0 ? NULL : malloc((size_t)K * sizeof *col);
    if (!trans_b && K > 0 && !col) return BQ_ERR_NOMEM;
    for (int64_t n = 0; n < N && K > 0; n++) {
        const float *src = B + n * ldb;
        if (!trans_b) {
            for (int64_t k = 0; k < K; k++) col[k] = B[k * ldb + n];
            src = col;
        }
        bq_quantize(f, src, K, (uint8_t *)dst + (size_t)n * row);
    }
    free(col);
    return BQ_OK;
}
