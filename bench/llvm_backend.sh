#!/usr/bin/env bash
# bench/llvm_backend.sh — the LLVM backend against the C backend on the same model and plan:
# compile time (bqc alone for --emit=obj; bqc plus the system C compiler for C) and decode
# tokens/s (bench/decode_bench.c linked against each backend's code), at opt-125m dimensions,
# fp32 and W6A6 (bfp6/16 on every Linear). Writes the "llvm-backend" section of
# docs/benchmarks.md.
#
#   bash bench/llvm_backend.sh [--preset opt-125m] [--prompt 128] [--decode 32] [--repeats 3]
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
preset=opt-125m prompt=128 decode=32 repeats=3
while [ $# -gt 0 ]; do
  case $1 in
    --preset) preset=$2; shift 2 ;; --prompt) prompt=$2; shift 2 ;;
    --decode) decode=$2; shift 2 ;; --repeats) repeats=$2; shift 2 ;;
    *) echo "usage: $0 [--preset P] [--prompt N] [--decode N] [--repeats N]" >&2; exit 2 ;;
  esac
done
BQC=${BQC:-$BENCH_ROOT/build/bqc}
[ -x "$BQC" ] || { echo "bench: build bqc first (cmake --build build)" >&2; exit 1; }
RT_LIB=$(dirname "$BQC")/libbqcrt.a
work=$BENCH_ROOT/build/bench/llvm-$preset
mkdir -p "$work"
model=$BENCH_ROOT/build/bench/decode-$preset/$preset-past.onnx
if [ ! -f "$model" ]; then
  mkdir -p "$(dirname "$model")"
  echo "bench: exporting $preset with past (fp32, random weights)"
  "$PY" tools/export_opt.py --preset "$preset" --opset 17 --with-past --seed 1 -o "$model"
fi
printf '{"default": {"weight": "bfp6/16", "input": "bfp6/16", "bias": "fp32"}}\n' >"$work/w6a6.json"

load=$(cut -d' ' -f1 /proc/loadavg)
secs() { awk "BEGIN {printf \"%.1f\", $2 - $1}"; }
rows=""
for plan in fp32 w6a6; do
  pargs=()
  [ "$plan" = w6a6 ] && pargs=(-plan "$work/w6a6.json")
  echo "bench: $plan: C backend"
  t0=$(date +%s.%N)
  "$BQC" "$model" "${pargs[@]}" -o "$work/$plan-c" -name model >/dev/null
  t1=$(date +%s.%N)
  cc -std=c11 -O2 -march=native -ffp-contract=off -I runtime -I "$work/$plan-c" bench/decode_bench.c \
    "$work/$plan-c/model.c" "$RT_LIB" -lpthread -lm -o "$work/$plan-c/decode_bench"
  t2=$(date +%s.%N)
  echo "bench: $plan: LLVM backend"
  "$BQC" "$model" "${pargs[@]}" --emit=obj -o "$work/$plan-llvm" -name model >/dev/null
  t3=$(date +%s.%N)
  cc -std=c11 -O2 -I runtime -I "$work/$plan-llvm" bench/decode_bench.c "$work/$plan-llvm/model.o" "$RT_LIB" \
    -lpthread -lm -o "$work/$plan-llvm/decode_bench"
  cmp -s "$work/$plan-c/model.weights" "$work/$plan-llvm/model.weights" || { echo "bench: weights differ" >&2; exit 1; }
  for t in 1 2; do
    c=$("$work/$plan-c/decode_bench" "$work/$plan-c/model.weights" "$prompt" "$decode" "$repeats" "$t")
    l=$("$work/$plan-llvm/decode_bench" "$work/$plan-llvm/model.weights" "$prompt" "$decode" "$repeats" "$t")
    echo "  $plan, $t thread(s): C $c  LLVM $l"
    rows+=$("$PY" - "$plan" "$t" "$c" "$l" "$(secs "$t0" "$t1")" "$(secs "$t1" "$t2")" "$(secs "$t2" "$t3")" <<'PY'
import json, sys
plan, t, c, l = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
gen, cc, llvm = sys.argv[5:8]
print(f"| {plan} | {t} | {gen} s + cc {cc} s | {llvm} s | {1000/c['decode_ms']:.1f} | {1000/l['decode_ms']:.1f} "
      f"| {c['decode_ms']/l['decode_ms']:.2f}x | {c['prefill_ms']:.1f} | {l['prefill_ms']:.1f} |")
PY
)$'\n'
  done
done
size_mb=$(( $(stat -c %s "$work/fp32-c/model.weights") / 1048576 ))
body=$(mktemp)
cat >"$body" <<MD
## LLVM backend vs C backend (bench/llvm_backend.sh)

Machine: $(bench_machine). Model: $preset dimensions, random weights, exported with past
(opset 17; fp32 weights blob $size_mb MiB). fp32: no plan; w6a6: \`bfp6/16\` weights and
activations on every Linear (the fast quantised kernels, vpdpbusd). Both backends compile the
same plan into the same weights file and header; decode_bench.c is linked against the
generated C (\`cc -O2 -march=native -ffp-contract=off\`) or the object from \`--emit=obj\`
(default<O2>, host CPU and features). Compile time: \`bqc\` alone for the object; \`bqc\` then
the C compiler for C (both include loading the ONNX file and the pass pipeline, and writing
the weights). Prompt $prompt tokens, then $decode greedy decode steps; medians of $repeats
repeats. Load average when the run started: $load (the machine is shared: compare the two
backends within a row, which ran back to back, rather than rows or other tables).

| plan | threads | compile: C | compile: LLVM | C decode tok/s | LLVM decode tok/s | LLVM speed-up | C prefill ms | LLVM prefill ms |
|---|---|---|---|---|---|---|---|---|
$rows
MD
bench_section llvm-backend "$body"
rm -f "$body"
echo "bench: wrote the llvm-backend section of docs/benchmarks.md"
