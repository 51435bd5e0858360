/* qkern.h — the fast quantised matmul kernels as templates: one per family of kernels,
 * specialised by the compiler that instantiates them (docs/kernels.md).
 *
 * C[m, n] = bq_dot_ref(A_fmt, quantize(A[m]), W_fmt, W[n], K) (+ bias[n]) (ReLU), bit for bit,
 * computed on weights repacked once (bq_qk_pack) into groups of 16 outputs:
 *
 *   integer kernel (kind 1)  both operands' elements are integers M times a unit 2^emin with
 *       |M| <= 127. Weights are stored offset to unsigned (M + woff, as nibbles, nibble + 2-bit
 *       planes, or bytes) and activations as int8, so one vpdpbusd adds 4 k of 16 outputs;
 *       the block sum is exact: isum = Σ (Mw + woff)·Ma - woff·ΣMa, the second term computed
 *       once per activation block (corr). Then, per block, in the contract's order:
 *         F = (float)isum; F = F · p2 (p2 = 2^(emin_a + emin_w), when not 1);
 *         P = sa · sw;  c = F · P;  acc = acc + c       (no fma; blocks in increasing K)
 *   float kernel (kind 2)    an nf4 weight, or nibble weights against plain/nf4/wide
 *       activations: each weight nibble becomes its element value through a 16-entry table
 *       (vpermps); the block sum is the fmaf chain over k in increasing order, one chain per
 *       output lane; then c = s · (sa · sw), acc = acc + c.
 *
 * Outputs are the vector lanes (N); K order per output never changes, so every ISA path, every
 * specialisation and every thread count gives bq_dot_ref's bits.
 *
 * Layout of a packed weight (all offsets from the start, which is 64-byte aligned):
 *   bq_qk_header (128 bytes), then ngroups = ceil(N/16) groups of group_bytes each. A group is
 *   ceil(nb/SBB) superblocks; a superblock is 64 bytes of scales for SBB = 4/skind blocks
 *   (block j's 16 scales at j·16·skind: skind 1 = the scale's biased fp32 exponent (0: zero
 *   block, 255: NaN block), 2 = fp16 d, 4 = fp32 absmax) followed by those blocks' codes, each
 *   block BB = 2·cls·B bytes. Codes, for lane l (output 16g + l) and k within the block:
 *     cls 8  zmm q (64 bytes) holds k = 4q..4q+3: byte 4l + j = Mw(4q + j) + woff;
 *     cls 4  zmm u holds k = 8u..8u+7: byte 4l + j = nibble(8u + j) | nibble(8u + 4 + j) << 4;
 *     cls 6  per 16 k, three zmm: two of nibbles as cls 4 (low 4 bits of Mw + woff), then one
 *            of 2-bit planes: byte 4l + j, bits 2p..2p+1 = high bits of k = 16u + 4p + j.
 *   Outputs past N and k past K (the short last block) hold zero elements with scale 0.
 *
 * Specialisation: the templates below take their shape parameters (kind, cls, lut, skind, p2,
 * B, nb) as arguments; an instantiation with constants (BQ_QK_DEFINE, which generated code
 * emits once per distinct kernel a model uses; the runtime's own table in qkern*.c) folds them,
 * and one with run-time values (the runtime's generic kernel) serves every other case. The
 * AVX-512 templates carry their target attribute, so a file compiled without -mavx512f can
 * instantiate them; the caller picks the path at run time (bq_qk_matmul_spec).
 */
#ifndef BQ_QKERN_H
#define BQ_QKERN_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bqcrt.h"

#define BQ_QK_LANES 16          /* outputs per group: one zmm of int32/float lanes */
#define BQ_QK_HEADER 128        /* bytes of bq_qk_header before the groups */
#define BQ_QK_MAGIC "BQQK0001"

/* The packed weight's header (little-endian, 128 bytes): what was packed and how. */
typedef struct bq_qk_header {
    char magic[8];              /* BQ_QK_MAGIC */
    uint8_t family, width, ebits, cls;   /* the weight format; storage class 4, 6, 8 */
    uint16_t block;
    uint8_t lut, skind;         /* nibbles through lut8; scale field bytes 1, 2, 4 */
    int32_t woff;               /* offset added to integer weights (cls 4 without lut: 8, cls 6: 32, else 128) */
    int32_t emin;               /* weight elements are M · 2^emin */
    int64_t N, K, group_bytes;
    uint8_t lut8[16];           /* lut: nibble code -> Mw + woff (integer kernel) */
    float lutf[16];             /* nibble -> element value (float kernel) */
} bq_qk_header;
_Static_assert(sizeof(bq_qk_header) == BQ_QK_HEADER, "bq_qk_header is 128 bytes");

/* One kernel call: groups [g0, g1) of a packed weight against all M activation rows. The
 * activation rows were prepared once per call (bq_qk_matmul_spec): int8 elements (integer
 * kernel) or floats (float kernel), zero padded to nb·B, one scale per block, and for the
 * integer kernel -woff·ΣMa per block. */
struct bq_qk_task {
    const unsigned char *W;     /* the packed weight (its header) */
    int64_t group_bytes;
    const int8_t *a8;           /* integer kernel: [M][lda] */
    const float *af;            /* float kernel: [M][lda] */
    int64_t lda;                /* elements between activation rows (a multiple of 64) */
    const float *sa;            /* [M][lds] activation block scales */
    const int32_t *corr;        /* [M][lds] integer kernel: -woff · Σ Ma over the block */
    int64_t lds;
    float p2;                   /* 2^(emin_a + emin_w) */
    const uint8_t *lut8;        /* header's tables */
    const float *lutf;
    const float *bias;
    int relu;
    float *C;
    int64_t ldc, M, N, nb, B;
    int64_t g0, g1;
    int64_t prefetch;           /* GEMV: bytes ahead of each group stream to prefetch */
    bq_qk_spec sp;              /* the pair's kernel (what a generic instantiation reads) */
};

#define BQ_QK_AI static inline __attribute__((always_inline))
/* Loops over registers (rows, groups, quads) must be unrolled completely, or the accumulator
 * arrays live in memory: -O2 does not unroll them by itself. */
#define BQ_QK_UNROLL _Pragma("GCC unroll 16")

/* ---- shared scalar pieces ---- */

/* IEEE binary16 -> binary32, exact (subnormals, Inf, NaN). */
BQ_QK_AI float bq_qk_f16(uint16_t h)
{
    uint32_t s = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 1023u, bits;
    if (e == 31) bits = s | 0x7F800000u | (m << 13);
    else if (e) bits = s | ((e + 112) << 23) | (m << 13);
    else if (!m) bits = s;
    else {   /* subnormal: normalise */
        e = 113;
        while (!(m & 1024u)) m <<= 1, e--;
        bits = s | (e << 23) | ((m & 1023u) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Lane l's weight scale for block j of a superblock whose scales start at sp. */
BQ_QK_AI float bq_qk_sw1(const uint8_t *sp, int j, int l, const int SK)
{
    if (SK == 1) {
        uint32_t bits = (uint32_t)sp[16 * j + l] << 23;
        float f;
        memcpy(&f, &bits, 4);
        return f;
    }
    if (SK == 2) return bq_qk_f16((uint16_t)(sp[32 * j + 2 * l] | sp[32 * j + 2 * l + 1] << 8));
    float f;
    memcpy(&f, sp + 64 * j + 4 * l, 4);
    return f;
}

/* Lane l's stored code (u8 weight for the integer kernel, nibble for the float kernel) of k
 * (within the block) of a block's codes at w. */
BQ_QK_AI unsigned bq_qk_code1(const uint8_t *w, int64_t k, int l, const int CLS)
{
    if (CLS == 8) return w[64 * (k >> 2) + 4 * l + (k & 3)];
    if (CLS == 4) return (w[64 * (k >> 3) + 4 * l + (k & 3)] >> (k & 4)) & 15u;
    const uint8_t *u = w + 192 * (k >> 4);
    int64_t kk = k & 15;
    unsigned lo = (u[64 * (kk >> 3) + 4 * l + (kk & 3)] >> (kk & 4)) & 15u;
    unsigned hi = (u[128 + 4 * l + (kk & 3)] >> (2 * (kk >> 2))) & 3u;
    return lo | hi << 4;
}

/* One block's step of the contract above, written once for every scalar path (these
 * templates, bq_qk_idot, bq_qmatmul's tiles): acc + F·(sa·sw), each product rounded to float,
 * no fma. F is the block's sum, already times p2 where the pair has one. */
BQ_QK_AI float bq_qk_block_acc(float acc, float F, float sa, float sw)
{
    float P = sa * sw, c = F * P;
    return acc + c;
}

BQ_QK_AI float bq_qk_epilogue1(float y, const float *bias, int64_t n, int relu)
{
    if (bias) y = y + bias[n];
    if (relu) y = y < 0.0f ? 0.0f : y;
    return y;
}

/* ---- portable templates ---- */

#define BQ_QK_PMR 4   /* activation rows per pass over a decoded block */

/* Both kernels on any machine: per group, per block of rows, each weight block decoded once
 * into w[k][lane] and used for up to BQ_QK_PMR rows. */
BQ_QK_AI void bq_qk_kernel_portable(const bq_qk_task *t, const int KIND, const int CLS, const int LUT, const int SK,
                                     const int P2, const int Bc, const int64_t NBc)
{
    const int64_t B = Bc ? Bc : t->B, nb = NBc ? NBc : t->nb;
    const int SBB = 4 / SK;
    const int64_t BB = 2 * CLS * B, SBSZ = 64 + SBB * BB;
    for (int64_t g = t->g0; g < t->g1; g++) {
        const uint8_t *gbase = t->W + BQ_QK_HEADER + g * t->group_bytes;
        int nl = (int)(t->N - g * BQ_QK_LANES < BQ_QK_LANES ? t->N - g * BQ_QK_LANES : BQ_QK_LANES);
        for (int64_t m0 = 0; m0 < t->M; m0 += BQ_QK_PMR) {
            int mr = (int)(t->M - m0 < BQ_QK_PMR ? t->M - m0 : BQ_QK_PMR);
            float acc[BQ_QK_PMR][BQ_QK_LANES] = {{0}};
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *sp = gbase + (b / SBB) * SBSZ, *wc = sp + 64 + (b % SBB) * BB;
                int j = (int)(b % SBB);
                float sw[BQ_QK_LANES];
                for (int l = 0; l < BQ_QK_LANES; l++) sw[l] = bq_qk_sw1(sp, j, l, SK);
                if (KIND == 1) {
                    uint8_t w[256][BQ_QK_LANES];
                    for (int64_t k = 0; k < B; k++)
                        for (int l = 0; l < BQ_QK_LANES; l++) {
                            unsigned c = bq_qk_code1(wc, k, l, CLS);
                            w[k][l] = (uint8_t)(LUT ? t->lut8[c] : c);
                        }
                    for (int r = 0; r < mr; r++) {
                        const int8_t *a = t->a8 + (m0 + r) * t->lda + b * B;
                        int32_t s[BQ_QK_LANES];
                        for (int l = 0; l < BQ_QK_LANES; l++) s[l] = t->corr[(m0 + r) * t->lds + b];
                        for (int64_t k = 0; k < B; k++)
                            for (int l = 0; l < BQ_QK_LANES; l++) s[l] += (int32_t)w[k][l] * a[k];
                        float sa = t->sa[(m0 + r) * t->lds + b];
                        for (int l = 0; l < BQ_QK_LANES; l++) {
                            float F = (float)s[l];
                            if (P2) F = F * t->p2;
                            acc[r][l] = bq_qk_block_acc(acc[r][l], F, sa, sw[l]);
                        }
                    }
                } else {
                    float w[256][BQ_QK_LANES];
                    for (int64_t k = 0; k < B; k++)
                        for (int l = 0; l < BQ_QK_LANES; l++) w[k][l] = t->lutf[bq_qk_code1(wc, k, l, CLS)];
                    for (int r = 0; r < mr; r++) {
                        const float *a = t->af + (m0 + r) * t->lda + b * B;
                        float s[BQ_QK_LANES] = {0};
                        for (int64_t k = 0; k < B; k++)
                            for (int l = 0; l < BQ_QK_LANES; l++) s[l] = fmaf(a[k], w[k][l], s[l]);
                        float sa = t->sa[(m0 + r) * t->lds + b];
                        for (int l = 0; l < BQ_QK_LANES; l++) acc[r][l] = bq_qk_block_acc(acc[r][l], s[l], sa, sw[l]);
                    }
                }
            }
            for (int r = 0; r < mr; r++)
                for (int l = 0; l < nl; l++)
                    t->C[(m0 + r) * t->ldc + g * BQ_QK_LANES + l] =
                        bq_qk_epilogue1(acc[r][l], t->bias, g * BQ_QK_LANES + l, t->relu);
        }
    }
}

/* ---- AVX-512 templates ---- */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define BQ_QK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define BQ_QK_HAVE_AVX512 1

/* 16 weight scales of block j of a superblock (scales at sp). */
BQ_QK_AI BQ_QK_AVX512 __m512 bq_qk_sw16(const uint8_t *sp, int j, const int SK)
{
    if (SK == 1)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(sp + 16 * j))), 23));
    if (SK == 2) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(sp + 32 * j)));
    return _mm512_loadu_ps(sp + 64 * j);
}

BQ_QK_AI BQ_QK_AVX512 __m512i bq_qk_bcst4(const int8_t *a) { int32_t v; memcpy(&v, a, 4); return _mm512_set1_epi32(v); }

/* The u8 weights of quads 4q..4q+3 of a block (codes at w), q in 0..B/4-1: cls 8 one load;
 * cls 4 a nibble of zmm q/2; cls 6 a nibble plus the 2-bit plane of its 16-k unit. */
BQ_QK_AI BQ_QK_AVX512 __m512i bq_qk_wquad(const uint8_t *w, int q, const int CLS, const int LUT, __m512i lut)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if (CLS == 8) return _mm512_loadu_si512(w + 64 * q);
    if (CLS == 4) {
        __m512i v = _mm512_loadu_si512(w + 64 * (q >> 1));
        __m512i x = (q & 1) ? _mm512_and_si512(_mm512_srli_epi16(v, 4), m4) : _mm512_and_si512(v, m4);
        return LUT ? _mm512_shuffle_epi8(lut, x) : x;
    }
    const uint8_t *u = w + 192 * (q >> 2);
    int p = q & 3;
    __m512i v = _mm512_loadu_si512(u + 64 * (p >> 1)), c = _mm512_loadu_si512(u + 128);
    __m512i x = (p & 1) ? _mm512_and_si512(_mm512_srli_epi16(v, 4), m4) : _mm512_and_si512(v, m4);
    __m512i h = p == 0 ? _mm512_slli_epi16(c, 4) : p == 1 ? _mm512_slli_epi16(c, 2) : p == 2 ? c : _mm512_srli_epi16(c, 2);
    return _mm512_ternarylogic_epi32(x, h, _mm512_set1_epi8(0x30), 0xF8);   /* x | (h & 0x30) */
}

/* 16 float weights of k (within the block) from cls-4 nibbles through the 16-entry table. */
BQ_QK_AI BQ_QK_AVX512 __m512 bq_qk_wfloat(const uint8_t *w, int k, __m512 lutf)
{
    __m512i v = _mm512_loadu_si512(w + 64 * (k >> 3));
    int sh = 8 * (k & 3) + (k & 4);
    return _mm512_permutexvar_ps(_mm512_srli_epi32(v, (unsigned)sh), lutf);
}

BQ_QK_AI BQ_QK_AVX512 void bq_qk_store16(const bq_qk_task *t, int64_t m, int64_t g, __m512 y)
{
    int64_t n0 = g * BQ_QK_LANES;
    int nl = (int)(t->N - n0 < BQ_QK_LANES ? t->N - n0 : BQ_QK_LANES);
    __mmask16 k = (__mmask16)((1u << nl) - 1);
    if (t->bias) y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(k, t->bias + n0));
    if (t->relu) {
        __m512 z = _mm512_setzero_ps();
        y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(y, z, _CMP_LT_OQ), y, z);
    }
    _mm512_mask_storeu_ps(t->C + m * t->ldc + n0, k, y);
}

/* GEMV (one activation row): NG groups g, g + gs, ... at once — NG independent read streams,
 * each prefetched t->prefetch bytes ahead one superblock at a time. With gs the length of a
 * quarter of the part, each stream runs through consecutive groups, so its prefetches carry
 * on into the next group and no stream restarts cold. */
BQ_QK_AI BQ_QK_AVX512 void bq_qk_gemv_avx512(const bq_qk_task *t, int64_t g, int64_t gs, const int NG, const int KIND,
                                              const int CLS, const int LUT, const int SK, const int P2, const int Bc,
                                              const int64_t NBc)
{
    const int64_t B = Bc ? Bc : t->B, nb = NBc ? NBc : t->nb;
    const int SBB = 4 / SK;
    const int64_t BB = 2 * CLS * B, SBSZ = 64 + SBB * BB, pf = t->prefetch;
    const __m512i lut = LUT ? _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t->lut8)) : _mm512_setzero_si512();
    const __m512 lutf = KIND == 2 ? _mm512_loadu_ps(t->lutf) : _mm512_setzero_ps();
    const __m512 p2 = _mm512_set1_ps(t->p2);
    const uint8_t *gb[8];
    __m512 acc[8];
    BQ_QK_UNROLL
    for (int i = 0; i < NG; i++) {
        gb[i] = t->W + BQ_QK_HEADER + (g + i * gs) * t->group_bytes;
        acc[i] = _mm512_setzero_ps();
    }
    for (int64_t s = 0, b0 = 0; b0 < nb; s++, b0 += SBB) {
        BQ_QK_UNROLL
        for (int i = 0; i < NG; i++)
            for (int64_t o = 0; o < SBSZ; o += 64) _mm_prefetch((const char *)gb[i] + s * SBSZ + pf + o, _MM_HINT_T0);
        for (int j = 0; j < SBB && b0 + j < nb; j++) {
            int64_t b = b0 + j;
            BQ_QK_UNROLL
            for (int i = 0; i < NG; i++) {
                const uint8_t *sp = gb[i] + s * SBSZ, *w = sp + 64 + j * BB;
                __m512 sw = bq_qk_sw16(sp, j, SK), c;
                __m512 sa = _mm512_set1_ps(t->sa[b]);
                if (KIND == 1) {
                    const int8_t *a = t->a8 + b * B;
                    __m512i is = _mm512_set1_epi32(t->corr[b]);
                    BQ_QK_UNROLL
                    for (int q = 0; q < B / 4; q++) is = _mm512_dpbusd_epi32(is, bq_qk_wquad(w, q, CLS, LUT, lut), bq_qk_bcst4(a + 4 * q));
                    __m512 F = _mm512_cvtepi32_ps(is);
                    if (P2) F = _mm512_mul_ps(F, p2);
                    c = _mm512_mul_ps(F, _mm512_mul_ps(sa, sw));
                } else {
                    const float *a = t->af + b * B;
                    __m512 sf = _mm512_setzero_ps();
                    BQ_QK_UNROLL
                    for (int k = 0; k < B; k++) sf = _mm512_fmadd_ps(_mm512_set1_ps(a[k]), bq_qk_wfloat(w, k, lutf), sf);
                    c = _mm512_mul_ps(sf, _mm512_mul_ps(sa, sw));
                }
                acc[i] = _mm512_add_ps(acc[i], c);
            }
        }
    }
    BQ_QK_UNROLL
    for (int i = 0; i < NG; i++) bq_qk_store16(t, 0, g + i * gs, acc[i]);
}

/* GEMM tile: MR activation rows from m0 times NG groups from g; each weight quad (or float k)
 * is unpacked once and used for MR rows. */
BQ_QK_AI BQ_QK_AVX512 void bq_qk_tile_avx512(const bq_qk_task *t, int64_t m0, int64_t g, const int MR, const int NG,
                                              const int KIND, const int CLS, const int LUT, const int SK, const int P2,
                                              const int Bc, const int64_t NBc)
{
    const int64_t B = Bc ? Bc : t->B, nb = NBc ? NBc : t->nb;
    const int SBB = 4 / SK;
    const int64_t BB = 2 * CLS * B, SBSZ = 64 + SBB * BB;
    const __m512i lut = LUT ? _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)t->lut8)) : _mm512_setzero_si512();
    const __m512 lutf = KIND == 2 ? _mm512_loadu_ps(t->lutf) : _mm512_setzero_ps();
    const __m512 p2 = _mm512_set1_ps(t->p2);
    const uint8_t *gb[4];
    __m512 acc[8][4];
    BQ_QK_UNROLL
    for (int i = 0; i < NG; i++) gb[i] = t->W + BQ_QK_HEADER + (g + i) * t->group_bytes;
    BQ_QK_UNROLL
    for (int r = 0; r < MR; r++)
        BQ_QK_UNROLL
        for (int i = 0; i < NG; i++) acc[r][i] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        int64_t s = b / SBB;
        int j = (int)(b % SBB);
        const uint8_t *w[4];
        __m512 sw[4];
        BQ_QK_UNROLL
        for (int i = 0; i < NG; i++) {
            const uint8_t *sp = gb[i] + s * SBSZ;
            w[i] = sp + 64 + j * BB;
            sw[i] = bq_qk_sw16(sp, j, SK);
        }
        if (KIND == 1) {
            __m512i is[8][4];
            BQ_QK_UNROLL
            for (int r = 0; r < MR; r++) {
                __m512i c0 = _mm512_set1_epi32(t->corr[(m0 + r) * t->lds + b]);
                BQ_QK_UNROLL
                for (int i = 0; i < NG; i++) is[r][i] = c0;
            }
            const int8_t *a = t->a8 + m0 * t->lda + b * B;
            BQ_QK_UNROLL
            for (int q = 0; q < B / 4; q++)
                BQ_QK_UNROLL
                for (int i = 0; i < NG; i++) {
                    __m512i wq = bq_qk_wquad(w[i], q, CLS, LUT, lut);
                    BQ_QK_UNROLL
                    for (int r = 0; r < MR; r++) is[r][i] = _mm512_dpbusd_epi32(is[r][i], wq, bq_qk_bcst4(a + r * t->lda + 4 * q));
                }
            BQ_QK_UNROLL
            for (int r = 0; r < MR; r++) {
                __m512 sa = _mm512_set1_ps(t->sa[(m0 + r) * t->lds + b]);
                BQ_QK_UNROLL
                for (int i = 0; i < NG; i++) {
                    __m512 F = _mm512_cvtepi32_ps(is[r][i]);
                    if (P2) F = _mm512_mul_ps(F, p2);
                    acc[r][i] = _mm512_add_ps(acc[r][i], _mm512_mul_ps(F, _mm512_mul_ps(sa, sw[i])));
                }
            }
        } else {
            __m512 sf[8][4];
            BQ_QK_UNROLL
            for (int r = 0; r < MR; r++)
                BQ_QK_UNROLL
                for (int i = 0; i < NG; i++) sf[r][i] = _mm512_setzero_ps();
            const float *a = t->af + m0 * t->lda + b * B;
            BQ_QK_UNROLL
            for (int k = 0; k < B; k++)
                BQ_QK_UNROLL
                for (int i = 0; i < NG; i++) {
                    __m512 wk = bq_qk_wfloat(w[i], k, lutf);
                    BQ_QK_UNROLL
                    for (int r = 0; r < MR; r++) sf[r][i] = _mm512_fmadd_ps(_mm512_set1_ps(a[r * t->lda + k]), wk, sf[r][i]);
                }
            BQ_QK_UNROLL
            for (int r = 0; r < MR; r++) {
                __m512 sa = _mm512_set1_ps(t->sa[(m0 + r) * t->lds + b]);
                BQ_QK_UNROLL
                for (int i = 0; i < NG; i++) acc[r][i] = _mm512_add_ps(acc[r][i], _mm512_mul_ps(sf[r][i], _mm512_mul_ps(sa, sw[i])));
            }
        }
    }
    BQ_QK_UNROLL
    for (int r = 0; r < MR; r++)
        BQ_QK_UNROLL
        for (int i = 0; i < NG; i++) bq_qk_store16(t, m0 + r, g + i, acc[r][i]);
}

/* Tuning constants (docs/kernels.md, "Tuning"), chosen with `bqc bench`. They are constants of
 * this header, not build options, so the runtime and generated code tile alike; defining one
 * before including the header is for experiments only (tiling never changes a result: the K
 * order per output is the same for every tile). GEMV: 4 group streams keep 4 independent DRAM
 * read streams in flight (one stream doing 16 vpdpbusd per cache line stalls well below the
 * bandwidth). GEMM: 3 rows x 3 groups = 9 zmm accumulators + 9 block sums + 3 weight vectors
 * fit the 32 zmm registers. */
#ifndef BQ_QK_GEMV_NG
#define BQ_QK_GEMV_NG 4   /* group streams read at once by the GEMV */
#endif
#ifndef BQ_QK_MR
#define BQ_QK_MR 3        /* GEMM tile: rows ... */
#endif
#ifndef BQ_QK_NG
#define BQ_QK_NG 3        /* ... times groups (1..4: the tile's arrays) */
#endif

/* One task on AVX-512: M = 1 is the streaming GEMV; otherwise tiles of MR rows x NG groups,
 * all row tiles of a pair of groups before the next pair (the pair's weights stay in cache). */
BQ_QK_AI BQ_QK_AVX512 void bq_qk_kernel_avx512(const bq_qk_task *t, const int KIND, const int CLS, const int LUT,
                                                const int SK, const int P2, const int Bc, const int64_t NBc)
{
#define BQ_QK_ARGS KIND, CLS, LUT, SK, P2, Bc, NBc
    int64_t g = t->g0;
    if (t->M == 1) {
        int64_t q = (t->g1 - t->g0) / BQ_QK_GEMV_NG;
        for (int64_t j = 0; j < q; j++) bq_qk_gemv_avx512(t, t->g0 + j, q, BQ_QK_GEMV_NG, BQ_QK_ARGS);
        for (g = t->g0 + BQ_QK_GEMV_NG * q; g < t->g1; g++) bq_qk_gemv_avx512(t, g, 0, 1, BQ_QK_ARGS);
        return;
    }
    for (; g < t->g1; g += BQ_QK_NG) {
        int ng = t->g1 - g < BQ_QK_NG ? 1 : BQ_QK_NG;
        int64_t m = 0;
        for (; m + BQ_QK_MR <= t->M; m += BQ_QK_MR) {
            if (ng == BQ_QK_NG) bq_qk_tile_avx512(t, m, g, BQ_QK_MR, BQ_QK_NG, BQ_QK_ARGS);
            else bq_qk_tile_avx512(t, m, g, BQ_QK_MR, 1, BQ_QK_ARGS);
        }
        for (; m < t->M; m++) {
            if (ng == BQ_QK_NG) bq_qk_tile_avx512(t, m, g, 1, BQ_QK_NG, BQ_QK_ARGS);
            else bq_qk_tile_avx512(t, m, g, 1, 1, BQ_QK_ARGS);
        }
        if (ng == 1) g -= BQ_QK_NG - 1;
    }
#undef BQ_QK_ARGS
}
#endif /* x86-64 */

/* BQ_QK_DEFINE(name, kind, cls, lut, skind, p2, B, nb) defines two kernels with those
 * constants folded: static void name_portable(const bq_qk_task *) and, on x86-64,
 * name_avx512 (NULL elsewhere: BQ_QK_AVX512_FN(name)). The spec comes from bq_qk_spec_of;
 * nb = ceil(K / B) (0: read from the task). */
#define BQ_QK_DEFINE_PORTABLE(name, kind, cls, lut, skind, p2, B, nb) \
    static void name##_portable(const bq_qk_task *t) { bq_qk_kernel_portable(t, kind, cls, lut, skind, p2, B, nb); }
#ifdef BQ_QK_HAVE_AVX512
#define BQ_QK_DEFINE(name, kind, cls, lut, skind, p2, B, nb)                                                       \
    BQ_QK_DEFINE_PORTABLE(name, kind, cls, lut, skind, p2, B, nb)                                                  \
    static BQ_QK_AVX512 void name##_avx512(const bq_qk_task *t) { bq_qk_kernel_avx512(t, kind, cls, lut, skind, p2, B, nb); }
#define BQ_QK_AVX512_FN(name) name##_avx512
#else
#define BQ_QK_DEFINE(name, kind, cls, lut, skind, p2, B, nb) BQ_QK_DEFINE_PORTABLE(name, kind, cls, lut, skind, p2, B, nb)
#define BQ_QK_AVX512_FN(name) ((bq_qk_fn)0)
#endif

#endif
