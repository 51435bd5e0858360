/* text_samples.h — canonical IR texts shared by the text-form tests (test_text.c round-trips
 * them, test_text_errors.c fuzzes them), and the printing helper both use. Canonical: each is
 * exactly what the printer writes for the model it parses to. */
#ifndef BQC_TEXT_SAMPLES_H
#define BQC_TEXT_SAMPLES_H

#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

static inline char *print_model(const IrModel *m)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    assert_non_null(f);
    assert_true(ir_print_model(f, m));
    fclose(f);
    return buf;
}

/* Every attribute kind, multiple and omitted results and operands, symbolic and unknown dims,
 * unknown types, loc(), branch graphs. */
static const char MAIN_TEXT[] =
    "# bqc IR t.ir\n"
    "opset 17\n"
    "sym batch, past, seq\n"
    "graph @main(%ids: i64[batch, seq], %mask: i64[batch, past + seq], %cond: bool[]) -> (%y, %o) {\n"
    "  %axes = const i64[1] [0]\n"
    "  %scale = const f32[] [0.125]\n"
    "  %sizes = const i64[2] [32, 32]\n"
    "  %w = const f32[2, 3] [1, -2.5, 0.100000001, -0, 1e+10, 3.40282347e+38]\n"
    "  %x = Gather(%w, %ids) {axis = 1} : f32[batch, seq, 64] loc(\"/decoder/embed_tokens/Gather\")\n"
    "  %a, %b = Split(%x, %sizes) {axis = 2} : f32[batch, seq, 32], f32[batch, seq, 32]\n"
    "  %s = Slice(%x, %axes, %axes, _, %axes) : f32[batch, ?1, 64]\n"
    "  %t = Transpose(%a) {perm = [0, 2, 1]} : f32[batch, 32, seq]\n"
    "  %c = Cast(%mask) {to = f32} : f32[batch, past + seq]\n"
    "  %l = LeakyRelu(%c) {alpha = 0.200000003} : f32[batch, past + seq]\n"
    "  %z = ConstantOfShape(%axes) {value = f32 0.5} : f32[?2]\n"
    "  %zi = ConstantOfShape(%axes) {value = i64 -7} : i64[?2]\n"
    "  %zb = ConstantOfShape(%axes) {value = bool 1} : bool[?2]\n"
    "  %r = Reshape(%a, %sizes)\n"
    "  %p, %q = Split(%x) {axis = 2} : ?[*], ?[2, 2*batch - 1]\n"
    "  %d, _ = Dropout(%x) : f32[batch, seq, 64]\n"
    "  %mx = Max(%a, %b, %a) : f32[batch*seq, -batch + 3, batch*batch*seq]\n"
    "  %g = Gemm(%w, %w, %w) {alpha = 0.5, transB = 1} : f32[2, 2]\n"
    "  %lin = bqc.Linear(%x, %w) {trans_b = 1, relu = 1} : f32[batch, seq, 2]\n"
    "  %att = bqc.Attention(%x, %x, %x, %mask) {num_heads = 4, causal = 0} : f32[batch, seq, 64]\n"
    "  %ln = LayerNormalization(%x, %w) {epsilon = -0} : f32[*]\n"
    "  %y = Concat(%a, %b) {axis = -1} : f32[batch, seq, 64] loc(\"\")\n"
    "  %o = If(%cond, %x) {then_branch = @then_0, else_branch = @else_0} : f32[batch, seq, 64]\n"
    "}\n"
    "graph @then_0(%x: f32[batch, seq, 64]) -> (%x) {\n"
    "}\n"
    "graph @else_0(%x: f32[batch, seq, 64]) -> (%n) {\n"
    "  %n = Neg(%x) : f32[batch, seq, 64]\n"
    "}\n";

/* Every dtype at its edges: nan, infinities, -0, denormals, extreme integers, empty shapes. */
static const char CONST_TEXT[] =
    "# bqc IR t.ir\n"
    "opset 17\n"
    "graph @main() -> (%f32) {\n"
    "  %f32 = const f32[8] [nan, inf, -inf, -0, 1.40129846e-45, 1.17549435e-38, 3.40282347e+38, 0.100000001]\n"
    "  %f64 = const f64[6] [nan, -inf, -0, 4.9406564584124654e-324, 0.10000000000000001, 1.7976931348623157e+308]\n"
    "  %f16 = const f16[7] [nan, inf, -inf, -0, 5.96046448e-08, 65504, 0.0999755859]\n"
    "  %bf16 = const bf16[5] [nan, -inf, -0, 9.18354962e-41, 3.38953139e+38]\n"
    "  %i64 = const i64[3] [-9223372036854775808, 9223372036854775807, 0]\n"
    "  %u64 = const u64[2] [18446744073709551615, 0]\n"
    "  %i32 = const i32[2] [-2147483648, 2147483647]\n"
    "  %u32 = const u32[1] [4294967295]\n"
    "  %i16 = const i16[2] [-32768, 32767]\n"
    "  %u16 = const u16[1] [65535]\n"
    "  %i8 = const i8[2] [-128, 127]\n"
    "  %u8 = const u8[2] [0, 255]\n"
    "  %b = const bool[2] [0, 1]\n"
    "  %e = const f32[0] []\n"
    "  %e3 = const i64[2, 0, 3] []\n"
    "  %one = const f64[1, 1] [1]\n"
    "}\n";

static const char QUOTED_TEXT[] =
    "# bqc IR t.ir\n"
    "opset 17\n"
    "graph @\"my graph\"(%\"a b\": f32[2], %onnx::Gather_0: f32[2], %\"\": f32[2]) -> (%\"x:\") {\n"
    "  %/dec/layers.0/Add_output_0 = Add(%\"a b\", %onnx::Gather_0) : f32[2]\n"
    "  %\"q\\\"u\\\\o\" = Neg(%\"\") : f32[2] loc(\"n\\\"a\\\\me\\x0a\\x7f\")\n"
    "  %\"x:\" = Add(%/dec/layers.0/Add_output_0, %\"q\\\"u\\\\o\") : f32[2]\n"
    "}\n";

static const char DIMS_TEXT[] =
    "# bqc IR t.ir\n"
    "opset 17\n"
    "sym batch, past, seq, \"seq len\", s.2\n"
    "graph @main(%x: f32[past + seq, ?1, ?2, ?1], %y: f32[2*batch, \"seq len\"*s.2, 0]) -> () {\n"
    "}\n";

#endif
