#!/usr/bin/env bash
# bench/interp_opt125m.sh — the foundation's scale check: an opt-125m-dimension export
# (random weights, ~650 MB, one file) is loaded, canonicalised and interpreted on one
# 128-token sequence; logits are compared with onnxruntime and peak memory (GNU time -v)
# with the file size. Writes the "interp-opt125m" section of docs/benchmarks.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
BQC=${BQC:-$BENCH_ROOT/build/bqc}
[ -x "$BQC" ] || { echo "bench: build bqc first (cmake --build build)" >&2; exit 1; }
work=$BENCH_ROOT/build/bench/opt125m
mkdir -p "$work"
model=$work/opt-125m.onnx
if [ ! -f "$model" ]; then
  echo "bench: exporting opt-125m dimensions (about 20 s)"
  "$PY" tools/export_opt.py --preset opt-125m --opset 14 --seed 1 -o "$model"
fi
"$PY" tools/make_inputs.py "${model%.onnx}.json" --batch 1 --seq 128 --seed 3 -o "$work/in" >/dev/null

echo "bench: bqc run (interpreter, 1 thread) under /usr/bin/time -v"
/usr/bin/time -v "$BQC" run "$model" --inputs "$work/in" -o "$work/bqc" 2>"$work/time.txt" >/dev/null
echo "bench: bqc compile only (load + passes, --emit=ir)"
/usr/bin/time -v "$BQC" "$model" --emit=ir -o "$work/opt.ir" 2>"$work/time-compile.txt"
echo "bench: onnxruntime-node (1 thread)"
node tools/ort/ortrun.js "$model" --inputs "$work/in" -o "$work/ort" --threads 1 >"$work/ort.txt"
cmp=$("$PY" tools/e2e_check.py "$work/bqc" "$work/ort")
echo "$cmp"

rss() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1"; }
size_kb=$(( $(stat -c %s "$model") / 1024 ))
run_kb=$(rss "$work/time.txt"); comp_kb=$(rss "$work/time-compile.txt")
body=$(mktemp)
cat >"$body" <<MD
## Interpreter at opt-125m scale (bench/interp_opt125m.sh)

Machine: $(bench_machine). Model: opt-125m dimensions (12 layers, d 768, vocab 50272),
random weights, opset 14, one file of $((size_kb / 1024)) MiB (raw_data initializers).
Input: one sequence of 128 tokens; default pass pipeline; 1 thread.

| what | wall | peak RSS | peak RSS / file size |
|---|---|---|---|
| \`bqc model.onnx --emit=ir\` (load, infer, passes) | $(wall "$work/time-compile.txt") | $((comp_kb / 1024)) MiB | $(awk "BEGIN {printf \"%.2f\", $comp_kb / $size_kb}") |
| \`bqc run\` (load, passes, interpret 128 tokens) | $(wall "$work/time.txt") | $((run_kb / 1024)) MiB | $(awk "BEGIN {printf \"%.2f\", $run_kb / $size_kb}") |

Agreement with onnxruntime-node 1.30 (graph optimisation level basic, 1 thread):
\`$cmp\`

Weights are borrowed from the mapped file where their offset is aligned and copied once
(the source pages then released) where it is not, so peak memory stays near one copy of
the weights; the target is below 2x the file size.
MD
bench_section interp-opt125m "$body"
rm -f "$body"
echo "bench: wrote the interp-opt125m section of docs/benchmarks.md"
