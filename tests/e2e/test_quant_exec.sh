#!/usr/bin/env bash
# test_quant_exec.sh — number formats executed end to end, without the plan reader: an OPT
# export printed as IR (`bqc --emit=ir --inline-weights`), formats written into the text with
# sed, then
#   * `bqc run` (interpreter) and `bqc run --exec=c` (generated code, 1 and 3 threads) write
#     byte-identical logits for bfp8/16, bfp6/16, bfp4/16, mxfp4, int4/32 and nf4/64 on every
#     bqc.Linear's weights and activations (and on the attention products for bfp6/16), on a
#     pre-LN model and on a post-LN one whose K are not all multiples of the block (ffn 300,
#     project_in/out 32 wide), batch 2 with left padding;
#   * the weights packed by the quantise-weights pass (default pipeline) and the f32 weights
#     quantised by the executors themselves (--passes=) give the same bits;
#   * the logits' distance to fp32 grows bfp8 < bfp6 < bfp4 (printed);
#   * prefill + decode equals the full forward bit for bit (decode_check.c) with quantised
#     Linears and attention formats, pv_weight (V along the keys, per query's horizon) included.
source "$(dirname "$0")/lib.sh"
e2e_require_tools
e2e_require_bqc

W=$E2E_WORK
RT_INC=$BQC_SOURCE_DIR/runtime
RT_LIB=$(dirname "$BQC")/libbqcrt.a
CFLAGS="-std=c11 -O2 -ffp-contract=off -Wall -Wextra -Werror"
RT_FLAGS=${BQC_RUNTIME_FLAGS:-}

# with_formats IR OUT LINEAR_ATTRS [ATTENTION_ATTRS] — adds attributes to every bqc.Linear
# (and bqc.Attention) of the IR text
with_formats() {
  local ir=$1 out=$2 lin=$3 att=${4:-}
  sed -E "/= bqc\.Linear\(/{s#\) \{([^}]*)\} : #) {\1, $lin} : #;t;s#\) : #) {$lin} : #}" "$ir" >"$out.tmp" || return 1
  if [ -n "$att" ]; then
    sed -E "/= bqc\.Attention\(/s#\{([^}]*)\} : #{\1, $att} : #" "$out.tmp" >"$out" || return 1
    rm -f "$out.tmp"
  else
    mv "$out.tmp" "$out"
  fi
  local n
  n=$(grep -c 'weight_format' "$out")
  [ "$n" -gt 0 ] || { echo "no bqc.Linear received formats"; return 1; }
}

lin() { printf 'input_format = "%s", weight_format = "%s"' "$1" "$2"; }
att() { printf 'qk_input_format = "%s", qk_weight_format = "%s", pv_input_format = "%s", pv_weight_format = "%s"' "$@"; }

# same TAG DIR_A DIR_B — every output file byte-identical
same() {
  local f n=0
  for f in "$2"/*.npy; do
    cmp -s "$f" "$3/$(basename "$f")" || { echo "$1: $(basename "$f") differs"; return 1; }
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "$1: no outputs"; return 1; }
}

# interp_vs_c IR TAG — interpreter, generated code with 1 and 3 threads, and the executors'
# own quantisation of f32 weights (--passes=): all byte-identical
interp_vs_c() {
  local ir=$1 d="$W/$2"
  "$BQC" run "$ir" --inputs "$IN" -o "$d/interp" >/dev/null &&
    "$BQC" run "$ir" --exec=c --inputs "$IN" -o "$d/c" >/dev/null &&
    "$BQC" run "$ir" --exec=c --threads 3 --inputs "$IN" -o "$d/c3" >/dev/null &&
    "$BQC" run "$ir" --passes= --inputs "$IN" -o "$d/nopass" >/dev/null || return 1
  same "generated code" "$d/interp" "$d/c" && same "generated code, 3 threads" "$d/interp" "$d/c3" &&
    same "f32 weights quantised by the interpreter" "$d/interp" "$d/nopass" &&
    echo "interpreter == generated code (1 and 3 threads) == interpreter on f32 weights: byte-identical"
}

# run_formats BASE_IR TAG FORMAT — one format on every Linear's weights and activations
run_formats() {
  local base=$1 tag=$2 f=$3
  with_formats "$base" "$W/$tag.ir" "$(lin "$f" "$f")" && interp_vs_c "$W/$tag.ir" "$tag"
}

# distance FP32_DIR Q_DIR — relative RMS distance of the logits
distance() {
  "$PY" - "$1/logits.npy" "$2/logits.npy" <<'PY'
import sys
import numpy as np
a, b = np.load(sys.argv[1]).astype(np.float64), np.load(sys.argv[2]).astype(np.float64)
print(f"{np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(a ** 2)):.6g}")
PY
}

error_grows() {  # TAG — bfp8 < bfp6 < bfp4 on the logits (run_formats left their outputs)
  local tag=$1 e8 e6 e4
  "$BQC" run "$W/$tag.ir" --inputs "$IN" -o "$W/$tag-fp32" >/dev/null || return 1
  e8=$(distance "$W/$tag-fp32" "$W/$tag-bfp8_16/interp") && e6=$(distance "$W/$tag-fp32" "$W/$tag-bfp6_16/interp") &&
    e4=$(distance "$W/$tag-fp32" "$W/$tag-bfp4_16/interp") || return 1
  echo "relative RMS distance of the logits to fp32: bfp8/16 $e8, bfp6/16 $e6, bfp4/16 $e4"
  awk -v a="$e8" -v b="$e6" -v c="$e4" 'BEGIN { exit !(a > 0 && a < b && b < c) }' ||
    { echo "the distance does not grow with fewer bits"; return 1; }
}

decode_vs_full() {  # IR TAG — the decoder API: prefill 5 + decode 6 == a forward of 11
  local d="$W/$2-dec"
  "$BQC" "$1" -o "$d" -name model >/dev/null 2>"$d.log" || { cat "$d.log"; return 1; }
  grep -q 'model_prefill' "$d/model.h" || { cat "$d.log"; echo "no decoder API"; return 1; }
  gcc $CFLAGS $RT_FLAGS -march=native -I"$RT_INC" -I"$d" "$BQC_SOURCE_DIR/tests/e2e/decode_check.c" "$d/model.c" \
    "$RT_LIB" -lpthread -lm -o "$d/decode_check" && "$d/decode_check" "$d/model.weights" 5 6
}

M=$(e2e_export tiny --preset tiny --opset 17 --seed 31) || die "export failed"
MP=$(e2e_export tiny-post --preset tiny-post --opset 14 --seed 32 --ffn 300) || die "export failed"
IN=$W/in
e2e_inputs "$M" "$IN" --batch 2 --seq 7 --left-pad 3 >/dev/null || die "make_inputs failed"
"$BQC" "$M" --emit=ir --inline-weights -o "$W/pre.ir" || die "bqc --emit=ir failed"
"$BQC" "$MP" --emit=ir --inline-weights -o "$W/post.ir" || die "bqc --emit=ir failed"

for f in bfp8/16 bfp6/16 bfp4/16 mxfp4 int4/32 nf4/64; do
  t=$(tr '/' '_' <<<"$f")
  e2e_case "pre-LN, $f weights and activations: interpreter == generated code" run_formats "$W/pre.ir" "pre-$t" "$f"
  e2e_case "post-LN (K 300, 32), $f: interpreter == generated code" run_formats "$W/post.ir" "post-$t" "$f"
done
e2e_case "pre-LN: distance to fp32 grows bfp8 < bfp6 < bfp4" error_grows pre
e2e_case "post-LN: distance to fp32 grows bfp8 < bfp6 < bfp4" error_grows post

mixed() {  # IR TAG — mixed and one-sided formats, attention formats
  local ir=$1 tag=$2
  with_formats "$ir" "$W/$tag-a.ir" "$(lin bfp8/32 int4/32)" "$(att bfp6/16 bfp6/16 bfp8/16 bfp4/16)" &&
    interp_vs_c "$W/$tag-a.ir" "$tag-a" &&
    with_formats "$ir" "$W/$tag-b.ir" "$(lin fp32 nf4/64)" "$(att mxfp4 mxint8 nf4/16 fp32)" &&
    interp_vs_c "$W/$tag-b.ir" "$tag-b" &&
    with_formats "$ir" "$W/$tag-c.ir" "$(lin bfp8/16 fp32)" "$(att fp32 int8/32 fp32 bf16)" &&
    interp_vs_c "$W/$tag-c.ir" "$tag-c" &&
    with_formats "$ir" "$W/$tag-d.ir" "$(lin mxfp8e4m3 mxfp8e5m2), bias_format = \"bfp6/16\"" &&
    "$BQC" run "$W/$tag-d.ir" --passes= --inputs "$IN" -o "$W/$tag-d/interp" >/dev/null &&
    "$BQC" run "$W/$tag-d.ir" --passes= --exec=c --inputs "$IN" -o "$W/$tag-d/c" >/dev/null &&
    same "mxfp8 pair with a rounded bias" "$W/$tag-d/interp" "$W/$tag-d/c" &&
    echo "mixed pairs, weight-only, activation-only, attention formats, rounded bias: byte-identical"
}
e2e_case "pre-LN: mixed pairs and attention formats: interpreter == generated code" mixed "$W/pre.ir" mixpre
e2e_case "post-LN: mixed pairs and attention formats: interpreter == generated code" mixed "$W/post.ir" mixpost

dec() {
  with_formats "$W/pre.ir" "$W/dec.ir" "$(lin bfp6/16 bfp6/16)" "$(att bfp6/16 bfp6/16 bfp6/16 fp32)" &&
    decode_vs_full "$W/dec.ir" dec &&
    with_formats "$W/post.ir" "$W/dec2.ir" "$(lin bfp4/16 int4/16)" "$(att mxfp4 mxfp4 nf4/64 fp32)" &&
    decode_vs_full "$W/dec2.ir" dec2
}
e2e_case "decoder API, pv_weight fp32: prefill + decode == full forward" dec
pvq() {  # V quantised along the keys (per query over the keys it sees): decode still == full
  with_formats "$W/pre.ir" "$W/pvq.ir" "$(lin bfp6/16 bfp6/16)" "$(att bfp6/16 bfp6/16 bfp6/16 bfp6/16)" &&
    decode_vs_full "$W/pvq.ir" pvq &&
    with_formats "$W/post.ir" "$W/pvq2.ir" "$(lin bfp4/16 bfp4/16)" "$(att bfp4/16 bfp4/16 int4/32 int4/32)" &&
    decode_vs_full "$W/pvq2.ir" pvq2 &&
    # blocks of 8 keys: decode steps cross a block, so the persistent quantised K/V (qcache)
    # finalises a block and starts the next
    with_formats "$W/pre.ir" "$W/pvq3.ir" "$(lin bfp6/16 bfp6/16)" "$(att bfp6/8 int8/8 int6/8 bfp6/8)" &&
    decode_vs_full "$W/pvq3.ir" pvq3
}
e2e_case "pv_weight quantised: decoder API, prefill + decode == full forward" pvq

warning_free() {  # the generated code of a quantised model (Linear and attention formats, decoder API)
  local d="$W/wf-gen"
  "$BQC" "$W/dec.ir" -o "$d" -name opt >/dev/null 2>&1 || return 1
  # bfp6/16 x bfp6/16 has a fast kernel: instantiated from qkern.h's template, K folded
  grep -q '^BQ_QK_DEFINE(qk_bfp6_16_bfp6_16_k64, ' "$d/opt.c" && grep -q 'bq_qk_matmul_spec' "$d/opt.c" &&
    grep -q 'bq_attention_cached_q_f32' "$d/opt.c" || { echo "no quantised calls"; return 1; }
  gcc $CFLAGS -march=native -I"$RT_INC" -c "$d/opt.c" -o "$d/gcc.o" || return 1
  if command -v clang-19 >/dev/null; then
    clang-19 $CFLAGS -march=x86-64-v3 -I"$RT_INC" -c "$d/opt.c" -o "$d/clang.o" || return 1
    echo "compiles warning-free with gcc and clang-19"
  else
    echo "compiles warning-free with gcc (clang-19 not installed)"
  fi
}
e2e_case "quantised generated code compiles warning-free (gcc, clang)" warning_free

errors() {  # the executors' own checks (--passes=: no quantise-weights pass in front of them)
  with_formats "$W/pre.ir" "$W/bad-blocks.ir" "$(lin bfp6/16 int4/32)" &&
    e2e_expect_fail "input_format bfp6/16 and weight_format int4/32 have different blocks" \
      "$BQC" run "$W/bad-blocks.ir" --passes= --inputs "$IN" -o "$W/bad1" &&
    e2e_expect_fail "input_format bfp6/16 and weight_format int4/32 have different blocks" \
      "$BQC" "$W/bad-blocks.ir" --passes= -o "$W/bad1-gen" &&
    with_formats "$W/pre.ir" "$W/bad-att.ir" "$(lin fp32 fp32)" "$(att bfp8/16 fp32 nf4/64 bfp8/32)" &&
    e2e_expect_fail "pv_input_format nf4/64 and pv_weight_format bfp8/32 have different blocks" \
      "$BQC" run "$W/bad-att.ir" --passes= --inputs "$IN" -o "$W/bad2" &&
    # a NaN in the first weight of the first Linear: an error naming the tensor and element
    awk '/= const f32\[64, 64\] \[/ && !done { sub(/\] \[[^,]*,/, "] [nan,"); done = 1 } { print }' \
      "$W/bad-blocks.ir" | sed -E 's#int4/32#bfp6/16#g' >"$W/bad-nan.ir" &&
    e2e_expect_fail "has a non-finite value at element 0 \(row 0, column 0\)" \
      "$BQC" run "$W/bad-nan.ir" --passes= --inputs "$IN" -o "$W/bad3" &&
    e2e_expect_fail "has a non-finite value at element 0 \(row 0, column 0\)" \
      "$BQC" "$W/bad-nan.ir" --passes= -o "$W/bad3-gen"
}
e2e_case "errors: blocks that differ, a non-finite weight (interpreter and C backend)" errors
e2e_finish
