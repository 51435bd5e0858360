#!/usr/bin/env bash
# bench/decode_fp32.sh — fp32 decode tokens/s and prompt prefill time of bqc-generated code
# against onnxruntime-node, on the same with-past OPT export (opt-125m dimensions by
# default), the same thread counts, back to back. Writes the "decode-fp32" section of
# docs/benchmarks.md.
#
#   bash bench/decode_fp32.sh [--preset opt-125m] [--prompt 128] [--decode 32] [--repeats 5]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
preset=opt-125m prompt=128 decode=32 repeats=5
while [ $# -gt 0 ]; do
  case $1 in
    --preset) preset=$2; shift 2 ;; --prompt) prompt=$2; shift 2 ;;
    --decode) decode=$2; shift 2 ;; --repeats) repeats=$2; shift 2 ;;
    *) echo "usage: $0 [--preset P] [--prompt N] [--decode N] [--repeats N]" >&2; exit 2 ;;
  esac
done
BQC=${BQC:-$BENCH_ROOT/build/bqc}
[ -x "$BQC" ] || { echo "bench: build bqc first (cmake --build build)" >&2; exit 1; }
work=$BENCH_ROOT/build/bench/decode-$preset
mkdir -p "$work"
model=$work/$preset-past.onnx
if [ ! -f "$model" ]; then
  echo "bench: exporting $preset with past (fp32, random weights)"
  "$PY" tools/export_opt.py --preset "$preset" --opset 17 --with-past --seed 1 -o "$model"
fi
read -r vocab heads hd < <("$PY" -c "import json,sys; c=json.load(open(sys.argv[1]))['config']; print(c['vocab_size'], c['num_attention_heads'], c['hidden_size']//c['num_attention_heads'])" "${model%.onnx}.json")
echo "bench: bqc $preset -> C"
t0=$(date +%s.%N)
"$BQC" "$model" -o "$work/gen" -name model >/dev/null
t1=$(date +%s.%N)
cc -std=c11 -O2 -march=native -ffp-contract=off -I runtime -I "$work/gen" bench/decode_bench.c "$work/gen/model.c" \
  "$(dirname "$BQC")/libbqcrt.a" -lpthread -lm -o "$work/decode_bench"
compile_s=$(awk "BEGIN {printf \"%.1f\", $t1 - $t0}")

rows=""
for t in 1 2; do
  echo "bench: $t thread(s): bqc"
  b=$("$work/decode_bench" "$work/gen/model.weights" "$prompt" "$decode" "$repeats" "$t")
  echo "bench: $t thread(s): onnxruntime"
  o=$(node tools/ort/bench_decode.js "$model" --prompt "$prompt" --decode "$decode" --repeats "$repeats" \
        --threads "$t" --vocab "$vocab" --heads "$heads" --head-dim "$hd")
  echo "  bqc $b  onnxruntime $o"
  rows+=$("$PY" - "$t" "$b" "$o" <<'PY'
import json, sys
t, b, o = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"| {t} | {b['decode_ms']:.2f} ({1000/b['decode_ms']:.1f} tok/s) | {o['decode_ms']:.2f} ({1000/o['decode_ms']:.1f} tok/s) "
      f"| {o['decode_ms']/b['decode_ms']:.2f}x | {b['prefill_ms']:.1f} | {o['prefill_ms']:.1f} | {o['prefill_ms']/b['prefill_ms']:.2f}x |")
PY
)$'\n'
done
size_mb=$(( $(stat -c %s "$work/gen/model.weights") / 1048576 ))
body=$(mktemp)
cat >"$body" <<MD
## fp32 decode and prefill: generated code vs onnxruntime (bench/decode_fp32.sh)

Machine: $(bench_machine). Model: $preset dimensions, random weights, exported with past
(opset 17); bqc compiles it to C (weights blob $size_mb MiB, compile ${compile_s} s) and decodes
through the generated prefill/decode API; onnxruntime-node 1.30 runs the same ONNX file
(graph optimisation "all"), feeding presents back as past. Prompt $prompt tokens, then $decode
greedy decode steps; medians of $repeats repeats, measured back to back in one run. Note on
prefill: bqc's prefill returns (and computes) the logits of the last prompt token only, as its
API promises; the ONNX graph onnxruntime runs computes them for every prompt position, so part
of the prefill difference is that work (the vocabulary projection), not kernel speed.

| threads | bqc decode ms/token | onnxruntime decode ms/token | speed-up | bqc prefill ms | onnxruntime prefill ms | speed-up |
|---|---|---|---|---|---|---|
${rows}
MD
bench_section decode-fp32 "$body"
rm -f "$body"
echo "bench: wrote the decode-fp32 section of docs/benchmarks.md"
