/* isa.c — CPU feature detection and the runtime's status strings.
 *
 * A kernel path is usable only if the CPU has the instructions and the OS saves the wider
 * registers on context switch (XCR0 via xgetbv); a CPU flag alone is not enough. Nothing is
 * cached: detection is a few cpuid instructions, and keeping it stateless keeps the library
 * free of globals. BQC_ISA caps the choice so tests and users can force a slower path.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bqcrt_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static bq_isa isa_hw(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return BQ_ISA_PORTABLE;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12;
    if ((c & (osxsave | avx | fma)) != (osxsave | avx | fma)) return BQ_ISA_PORTABLE;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) return BQ_ISA_PORTABLE;          /* SSE and AVX state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return BQ_ISA_PORTABLE;
    if (!(b & (1u << 5))) return BQ_ISA_PORTABLE;              /* AVX2 */
    const unsigned f = 1u << 16, bw = 1u << 30, vl = 1u << 31, vnni = 1u << 11;
    bool zmm_state = (xcr0 & 0xe6) == 0xe6;                     /* opmask, ZMM_Hi256, Hi16_ZMM */
    if (zmm_state && (b & (f | bw | vl)) == (f | bw | vl) && (c & vnni)) return BQ_ISA_AVX512;
    return BQ_ISA_AVX2;
}
#else
static bq_isa isa_hw(void) { return BQ_ISA_PORTABLE; }
#endif

bq_isa bq_isa_detect(void)
{
    bq_isa hw = isa_hw();
    const char *cap = getenv("BQC_ISA");
    if (!cap) return hw;
    bq_isa want = hw;
    if (strcmp(cap, "portable") == 0) want = BQ_ISA_PORTABLE;
    else if (strcmp(cap, "avx2") == 0) want = BQ_ISA_AVX2;
    else if (strcmp(cap, "avx512") == 0) want = BQ_ISA_AVX512;
    return want < hw ? want : hw;
}

const char *bq_isa_name(bq_isa isa)
{
    switch (isa) {
    case BQ_ISA_PORTABLE: return "portable";
    case BQ_ISA_AVX2: return "avx2";
    case BQ_ISA_AVX512: return "avx512";
    }
    return "?";
}

const char *bq_status_str(bq_status s)
{
    switch (s) {
    case BQ_OK: return "ok";
    case BQ_ERR_ARG: return "invalid argument";
    case BQ_ERR_NOMEM: return "out of memory";
    case BQ_ERR_IO: return "I/O error";
    case BQ_ERR_FORMAT: return "file does not match the model";
    case BQ_ERR_CAPACITY: return "sequence longer than the state's capacity";
    }
    return "unknown status";
}
