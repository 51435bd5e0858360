#!/usr/bin/env bash
# bench/quant_logits.sh — quantised plans at model scale (the formats/plan issue's evidence):
# on the tiny export and an opt-125m-dimension export (random weights), plans with bfp8/16,
# bfp6/16 and bfp4/16 for every matmul operand (weights and activations, attention included)
# run through the interpreter; the logits' distance to fp32 is measured over 128 tokens, the
# W6A6 report's bpw and memory density recorded, and the generated C code checked to produce
# the interpreter's bits. Writes the "quant-logits" section of docs/benchmarks.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
BQC=${BQC:-$BENCH_ROOT/build/bqc}
[ -x "$BQC" ] || { echo "bench: build bqc first (cmake --build build)" >&2; exit 1; }
work=$BENCH_ROOT/build/bench/quant-logits
mkdir -p "$work"

rows=""
for preset in tiny opt-125m; do
  model=$work/$preset.onnx
  if [ ! -f "$model" ]; then
    echo "bench: exporting $preset (random weights)"
    "$PY" tools/export_opt.py --preset "$preset" --opset 14 --seed 1 -o "$model" >/dev/null
  fi
  seq=128; [ "$preset" = tiny ] && seq=64
  "$PY" tools/make_inputs.py "${model%.onnx}.json" --batch 1 --seq "$seq" --seed 3 -o "$work/$preset-in" >/dev/null
  echo "bench: $preset fp32"
  "$BQC" run "$model" --inputs "$work/$preset-in" -o "$work/$preset-fp32" >/dev/null
  for f in bfp8/16 bfp6/16 bfp4/16; do
    t=${f//\//_}
    printf '{"default": {"weight": "%s", "input": "%s"}}\n' "$f" "$f" >"$work/$t.json"
    echo "bench: $preset $f (interpreter, then generated C)"
    s0=$(date +%s.%N)
    "$BQC" run "$model" -plan "$work/$t.json" --inputs "$work/$preset-in" -o "$work/$preset-$t" >/dev/null
    s1=$(date +%s.%N)
    "$BQC" run "$model" -plan "$work/$t.json" --exec=c --inputs "$work/$preset-in" -o "$work/$preset-$t-c" >/dev/null
    same=no
    cmp -s "$work/$preset-$t/logits.npy" "$work/$preset-$t-c/logits.npy" && same=yes
    report=$("$BQC" "$model" -plan "$work/$t.json" --report=json --report-seq "$seq")
    rows+=$("$PY" - "$preset" "$f" "$work/$preset-fp32/logits.npy" "$work/$preset-$t/logits.npy" "$same" \
             "$(awk "BEGIN {printf \"%.1f\", $s1 - $s0}")" "$report" <<'PY'
import json, sys, numpy as np
preset, f, a, b, same, secs, rep = sys.argv[1:]
x, y = np.load(a).astype(np.float64), np.load(b).astype(np.float64)
rel_rms = float(np.sqrt(np.mean((x - y) ** 2)) / np.sqrt(np.mean(x ** 2)))
rel_max = float(np.abs(x - y).max() / np.abs(x).max())
top1 = float(np.mean(x.argmax(-1) == y.argmax(-1))) * 100
r = json.loads(rep)
m = r["summary"]
print(f"| {preset} | {f} W+A | {rel_rms:.4f} | {rel_max:.4f} | {top1:.1f}% | {m['weight_bpw']:.2f} | "
      f"{m['activation_bpw']:.2f} | {m['memory_density']:.2f}x | {same} | {secs} s |")
PY
)$'\n'
  done
done
body=$(mktemp)
cat >"$body" <<MD
## Quantised plans at model scale (bench/quant_logits.sh)

Machine: $(bench_machine). Exports with random weights (opset 14): tiny (2 layers, d 64) over 64
tokens and opt-125m dimensions (12 layers, d 768) over 128 tokens, batch 1. Each plan sets the
format for every matmul operand — weights and activations of every Linear (lm_head included)
and both attention products. Distances compare the plan's logits with fp32 logits from the
same interpreter: relative RMS (‖Δ‖₂/‖fp32‖₂), max |Δ| / max |fp32|, and how often the argmax
agrees. bpw and memory density come from \`bqc MODEL -plan P --report=json\` (formats.md §8:
q/k/v/out, fc1, fc2 and the attention products; activations for the evaluated length).
"C == interp" is a byte comparison of the logits from \`bqc run --exec=c\` (generated code,
compiled by the system C compiler) and \`bqc run\`; "interp time" is the whole \`bqc run\`
(load, passes including weight packing, one forward).

| model | plan | rel. RMS to fp32 | max Δ / max | argmax agrees | weight bpw | act. bpw | memory density | C == interp | interp time |
|---|---|---|---|---|---|---|---|---|---|
${rows}
MD
bench_section quant-logits "$body"
rm -f "$body"
echo "bench: wrote the quant-logits section of docs/benchmarks.md"
