#!/usr/bin/env bash
# test_plan.sh — precision plans through the command line on a tiny OPT export: plans bfp8/16,
# bfp6/16 and bfp4/16 everywhere go through the pipeline (every matmul gets its formats, every
# weight is packed); --report's numbers (W6A6 bfp6/16: 6.5 bpw and memory density 4.92x, the
# paper's "5x"; JSON that parses and holds the per-tensor rows); --emit=plan round trips through
# the CLI (the resolved plan resolves to itself and compiles to the same IR); block "auto" with
# --calib; every spelling of -plan; `bqc run -plan`; and plan errors: one line, non-zero exit.
source "$(dirname "$0")/lib.sh"
e2e_require_bqc
[ -x "$PY" ] || die "$PY not found: run scripts/setup (python3-torch python3-onnx python3-numpy)"

W=$E2E_WORK
M=$(e2e_export tiny --preset tiny --opset 17 --seed 3) || die "export failed"
CALIB=$BQC_SOURCE_DIR/README.md    # any text: bytes become tokens b + 4 (the vocabulary is 512)
e2e_inputs "$M" "$W/in" --batch 1 --seq 6 >/dev/null || die "make_inputs failed"

plan_everywhere() {  # plan_everywhere FORMAT FILE — FORMAT for every input and weight
  printf '{"default": {"weight": "%s", "input": "%s"}}\n' "$1" "$1" >"$2"
}
for f in bfp8 bfp6 bfp4; do plan_everywhere "$f/16" "$W/$f.json"; done
printf '{"default": {"weight": "fp32"}}\n' >"$W/fp32.json"

# The mixed plan of design.md, with auto blocks for weights and activations.
cat >"$W/mixed.json" <<'EOF'
{
  "default": { "weight": "bfp6/16", "input": "bfp6/16", "bias": "fp32" },
  "rules": [
    { "match": "*/lm_head*",  "weight": "fp32", "input": "fp32" },
    { "kind": "attn_qk",      "input": "bfp8/16", "weight": "bfp8/16" },
    { "kind": "attn_pv",      "input": "bfp6/auto" },
    { "match": "*/layers.0/*", "weight": { "format": "bfp", "width": 8, "block": "auto" } },
    { "match": "*/fc2/*",     "input": "bfp8/auto", "bias": "bfp8/16" }
  ],
  "block_size": { "weight": [16, 32, 64, 128], "input": [8, 16, 32], "target_sqnr_db": 30 }
}
EOF

everywhere() {
  local f n
  for f in bfp8 bfp6 bfp4; do
    "$BQC" "$M" -plan "$W/$f.json" --emit=ir -o "$W/$f.ir" --verify-each || return 1
    n=$(grep -c "bqc.Linear(.*weight_format = \"$f/16\"" "$W/$f.ir")
    [ "$n" -eq 13 ] || { echo "$f: $n of 13 Linear nodes have weight_format $f/16"; return 1; }
    n=$(grep -c "bqc.Linear(.* {.*input_format = \"$f/16\"" "$W/$f.ir")
    [ "$n" -eq 13 ] || { echo "$f: $n of 13 Linear nodes have input_format $f/16"; return 1; }
    n=$(grep -c "= const u8\[" "$W/$f.ir")
    [ "$n" -eq 13 ] || { echo "$f: $n of 13 weights packed"; return 1; }
    n=$(grep -c "qk_input_format = \"$f/16\", qk_weight_format = \"$f/16\", pv_input_format = \"$f/16\", pv_weight_format = \"$f/16\"" "$W/$f.ir")
    [ "$n" -eq 2 ] || { echo "$f: $n of 2 attentions have the formats"; return 1; }
    ! grep -q "trans_b = 1" "$W/$f.ir" || { echo "$f: a packed weight kept trans_b"; return 1; }
    echo "$f/16: 13 Linear weights packed, 2 attentions formatted"
  done
  # fc1 [K=64 -> N=256] in bfp6/16: 4 blocks of (1 + 12) bytes per row
  grep -q "model.decoder.layers.0.fc1.weight.bfp6_16 = const u8\[256, 52\]" "$W/bfp6.ir" ||
    { echo "fc1's packed weight is not u8[256, 52]"; return 1; }
}

report_w6a6() {
  mkdir -p "$W/rep" && (cd "$W/rep" && "$BQC" "$M" -plan "$W/bfp6.json" --report >"$W/report.txt") || return 1
  cat "$W/report.txt"
  grep -Eq '^weight bpw +6\.50 ' "$W/report.txt" || { echo "no 'weight bpw 6.50'"; return 1; }
  grep -Eq '^activation bpw +6\.50 ' "$W/report.txt" || { echo "no 'activation bpw 6.50'"; return 1; }
  grep -Eq '^memory density +4\.92x ' "$W/report.txt" || { echo "no 'memory density 4.92x'"; return 1; }
  [ -z "$(ls -A "$W/rep")" ] || { echo "--report alone must not generate code: $(ls "$W/rep")"; return 1; }
}

report_json() {  # report_json PLAN BPW DENSITY
  "$BQC" "$M" -plan "$1" --report=json --report-seq 64 >"$W/report.json" || return 1
  "$PY" - "$W/report.json" "$2" "$3" <<'PY'
import json, math, sys
r = json.load(open(sys.argv[1]))
bpw, density = float(sys.argv[2]), float(sys.argv[3])
s = r["summary"]
assert s["seq"] == 64, s
assert abs(s["weight_bpw"] - bpw) < 1e-9 and abs(s["activation_bpw"] - bpw) < 1e-9, s
assert abs(s["memory_density"] - density) < 1e-9, (s["memory_density"], density)
rows = r["tensors"]
# 13 Linear (12 with a bias) and 2 attentions of 2 matmuls x 2 operands
assert len(rows) == 13 * 2 + 12 + 2 * 4, len(rows)
keys = {"node", "kind", "role", "tensor", "format", "block", "bpw", "sqnr_db", "variance", "values", "source", "rule"}
for t in rows:
    assert keys <= set(t), t
w = [t for t in rows if t["role"] == "weight" and t["kind"] in ("linear", "lm_head")]
assert len(w) == 13 and all(t["sqnr_db"] > 10 and t["variance"] > 0 and t["source"] == "weights" for t in w), w[:2]
assert {t["kind"] for t in rows} == {"linear", "attn_qk", "attn_pv", "lm_head"}
assert sum(t["kind"] == "lm_head" for t in rows) == 2
print(f"json: {len(rows)} tensor rows, weight bpw {s['weight_bpw']}, density {s['memory_density']:.4f}")
PY
}

mixed_auto() {
  "$BQC" "$M" -plan "$W/mixed.json" --calib "$CALIB" --report >"$W/mixed.txt" 2>"$W/mixed.err" || { cat "$W/mixed.err"; return 1; }
  cat "$W/mixed.txt"
  [ ! -s "$W/mixed.err" ] || { echo "stderr is not a terminal: no progress expected"; cat "$W/mixed.err"; return 1; }
  grep -q "calibration 512 tokens of" "$W/mixed.txt" || { echo "no calibration (4 windows of 128 tokens)"; return 1; }
  # every auto operand shows its evidence and a chosen block; none is left auto
  local n
  n=$(grep -c "(target 30 dB " "$W/mixed.txt")
  # layers.0: 6 Linear weights and the attn_pv weight (the glob matches the attention node too,
  # and no earlier rule sets that role); 2 fc2 inputs; 2 attn_pv inputs
  [ "$n" -eq 11 ] || { echo "$n evidence lines, expected 11"; return 1; }
  grep -Eq '^/decoder/layers.0/self_attn/Attention +attn_pv +weight +bfp8/' "$W/mixed.txt" || { echo "layers.0 attn_pv weight"; return 1; }
  grep -Eq '^/decoder/layers.1/self_attn/Attention +attn_pv +weight +bfp6/16 ' "$W/mixed.txt" || { echo "layers.1 attn_pv weight"; return 1; }
  ! grep -q "/auto" "$W/mixed.txt" || { echo "an operand is still auto"; return 1; }
  grep -Eq '^/lm_head/MatMul +lm_head +weight +fp32 ' "$W/mixed.txt" || { echo "lm_head is not fp32"; return 1; }
}

emit_plan_roundtrip() {
  "$BQC" "$M" -plan "$W/mixed.json" --calib "$CALIB" --emit=plan -o "$W/r1.json" &&
    "$BQC" "$M" -plan "$W/r1.json" --emit=plan -o "$W/r2.json" &&
    "$BQC" "$M" -plan "$W/r1.json" --emit=plan >"$W/r3.json" || return 1
  cmp "$W/r1.json" "$W/r2.json" && cmp "$W/r1.json" "$W/r3.json" || { echo "the resolved plan is not a fixed point"; return 1; }
  "$BQC" "$M" -plan "$W/mixed.json" --calib "$CALIB" --emit=ir -o "$W/m1.ir" &&
    "$BQC" "$M" -plan "$W/r1.json" --emit=ir -o "$W/m2.ir" || return 1
  diff <(tail -n +2 "$W/m1.ir") <(tail -n +2 "$W/m2.ir") >/dev/null || { echo "the resolved plan compiles differently"; return 1; }
  "$PY" - "$W/r1.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
rules = p["rules"]
assert set(p) == {"rules"}, p.keys()
assert len(rules) == 13 + 2 * 2, len(rules)
for r in rules:
    assert set(r) >= {"match", "kind", "input", "weight"} and "auto" not in json.dumps(r), r
    assert ("bias" in r) == (r["kind"] in ("linear",)), r   # the tiny lm_head has no bias
print(f"resolved plan: {len(rules)} rules, a fixed point, same IR")
PY
}

spellings() {
  local a
  "$BQC" "$M" -plan "$W/bfp4.json" --emit=ir -o "$W/s0.ir" || return 1
  for a in "--plan $W/bfp4.json" "--plan=$W/bfp4.json" "-plan=$W/bfp4.json"; do
    # shellcheck disable=SC2086
    "$BQC" "$M" $a --emit=ir -o "$W/s1.ir" && cmp -s "$W/s0.ir" "$W/s1.ir" || { echo "'$a' differs from -plan"; return 1; }
  done
  echo "-plan FILE, --plan FILE, --plan=FILE, -plan=FILE agree"
}

run_with_plan() {
  "$BQC" run "$M" --inputs "$W/in" -o "$W/run-none" >/dev/null &&
    "$BQC" run "$M" -plan "$W/fp32.json" --inputs "$W/in" -o "$W/run-fp32" >/dev/null &&
    cmp "$W/run-none/logits.npy" "$W/run-fp32/logits.npy" || { echo "an fp32 plan changed the result"; return 1; }
  # the plan reaches bqc run's pipeline
  "$BQC" run "$M" --plan "$W/bfp8.json" --inputs "$W/in" -o "$W/run-bfp8" --dump-after=quantise-weights \
    >"$W/run.out" 2>"$W/run.err"
  local status=$?
  grep -q 'weight_format = "bfp8/16"' "$W/run.err" && grep -q "const u8\[" "$W/run.err" ||
    { echo "bqc run -plan: the dump shows no formats"; return 1; }
  [ "$status" -eq 0 ] || { cat "$W/run.err" | grep -v '^  ' | tail -3; echo "bqc run -plan failed"; return 1; }
  # the quantised model runs: bfp8 logits stay close to fp32 ones
  "$PY" - "$W/run-none/logits.npy" "$W/run-bfp8/logits.npy" <<'PY'
import numpy as np, sys
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
err = float(np.abs(a - b).max()); scale = float(np.abs(a).max())
print(f"bfp8/16 vs fp32 logits: max |diff| {err:.3g} (max |logit| {scale:.3g})")
assert 0 < err < 0.1 * scale
PY
}

# expect_error STATUS LINES PATTERN CMD... — exit STATUS, LINES lines on stderr, the first
# matching PATTERN (grep -E), nothing that looks like a crash
expect_error() {
  local want_status=$1 want_lines=$2 pattern=$3; shift 3
  "$@" >"$W/stdout" 2>"$W/stderr"
  local status=$? lines
  lines=$(wc -l <"$W/stderr")
  cat "$W/stderr"
  [ "$status" -eq "$want_status" ] || { echo "exit status $status, expected $want_status"; return 1; }
  [ "$lines" -eq "$want_lines" ] || { echo "$lines lines on stderr, expected $want_lines"; return 1; }
  head -1 "$W/stderr" | grep -Eq -- "$pattern" || { echo "first line does not match /$pattern/"; return 1; }
  ! grep -Eqi 'sanitizer|segmentation|internal error|aborted' "$W/stderr" || { echo "looks like a crash"; return 1; }
}

errors() {
  printf '{"default": {"weight": "bfp6/16",\n "input": }}\n' >"$W/badjson.json"
  printf '{"rules": [{"kind": "linear", "weight": "bfq6/16"}]}\n' >"$W/badfmt.json"
  printf '{"rules": [{"kind": "linear", "weight": "bfp6/16"}, {"match": "*/layer.0/*", "weight": "bfp4/16"}]}\n' >"$W/nomatch.json"
  printf '{"default": {"input": "bfp6/auto"}, "block_size": {"input": [8, 16]}}\n' >"$W/nocalib.json"
  printf '{"default": {"weight": "bfp6/16"}, "blocksize": {}}\n' >"$W/badkey.json"
  expect_error 1 1 "badjson.json:2:[0-9]+: error: invalid JSON" "$BQC" "$M" -plan "$W/badjson.json" --report &&
    expect_error 1 1 "badfmt.json: rules\[0\]\.weight: error: unknown format 'bfq6/16'" "$BQC" "$M" -plan "$W/badfmt.json" --report &&
    expect_error 1 1 "badkey.json: blocksize: error: unknown key" "$BQC" "$M" -plan "$W/badkey.json" --report &&
    expect_error 1 1 "nomatch.json: rules\[1\]: error: matches no node" "$BQC" "$M" -plan "$W/nomatch.json" --report &&
    expect_error 1 1 "nomatch.json: rules\[1\]: error: matches no node" "$BQC" run "$M" -plan "$W/nomatch.json" --inputs "$W/in" -o "$W/x" &&
    expect_error 1 1 "nowhere.json: error: cannot read the plan" "$BQC" "$M" -plan "$W/nowhere.json" --report &&
    expect_error 1 1 "node '/decoder/layers.0/self_attn/q_proj/MatMul' \(bqc.Linear\): error: the input format bfp6/auto has an 'auto' block, which needs activation statistics: give a calibration text with --calib FILE" \
      "$BQC" "$M" -plan "$W/nocalib.json" --report &&
    expect_error 1 1 "nowhere.txt: error: cannot read the calibration text" "$BQC" "$M" -plan "$W/nocalib.json" --calib "$W/nowhere.txt" --report &&
    expect_error 2 2 "option '-plan' needs a value" "$BQC" "$M" -plan &&
    expect_error 2 2 "--report takes no value or =json" "$BQC" "$M" --report=xml &&
    expect_error 2 2 "--report-seq expects a positive number" "$BQC" "$M" --report --report-seq 0 &&
    expect_error 2 2 "--report and --emit=ir both write to stdout" "$BQC" "$M" --report --emit=ir &&
    expect_error 2 2 "unknown --emit kind 'mlir' \(supported: c, obj, llvm, ir, plan\)" "$BQC" "$M" --emit=mlir
}

help_and_passes() {
  "$BQC" --help >"$W/help.txt" || return 1
  local f
  for f in "-plan FILE" "--calib FILE" "--report\[=json\]" "--report-seq N" "--emit=c\|ir\|plan"; do
    grep -q -- "$f" "$W/help.txt" || { echo "--help lacks $f"; return 1; }
  done
  "$BQC" --list-passes | cut -d' ' -f1 | tr '\n' ' ' >"$W/passes.txt"
  [ "$(cat "$W/passes.txt")" = "canonicalize fuse-layernorm fuse-linear fuse-attention apply-plan block-size quantise-weights kv-cache " ] ||
    { echo "pipeline order: $(cat "$W/passes.txt")"; return 1; }
}

e2e_case "bfp8/16, bfp6/16, bfp4/16 everywhere go through the pipeline" everywhere
e2e_case "W6A6 bfp6/16 report: 6.5 bpw, memory density 4.92x" report_w6a6
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.17g", a / b }'; }
report_json_others() {
  report_json "$W/bfp8.json" 8.5 "$(ratio 32 8.5)" && report_json "$W/bfp4.json" 4.5 "$(ratio 32 4.5)"
}
e2e_case "--report=json W6A6 parses, per-tensor rows" report_json "$W/bfp6.json" 6.5 "$(ratio 32 6.5)"
e2e_case "--report=json W8A8 (8.5 bpw, 3.76x) and W4A4 (4.5 bpw, 7.11x)" report_json_others
e2e_case "mixed plan, auto blocks with --calib, evidence in the report" mixed_auto
e2e_case "--emit=plan round trip through the CLI" emit_plan_roundtrip
e2e_case "-plan / --plan / --plan= spellings" spellings
e2e_case "bqc run -plan" run_with_plan
e2e_case "plan errors: one line, non-zero exit" errors
e2e_case "--help and the pipeline order" help_and_passes
e2e_finish
