#!/usr/bin/env bash
# bench/kernels.sh — the fast quantised matmul kernels against the machine's limits and against
# other libraries, in one run; writes the "kernels" section of docs/benchmarks.md.
#
#   bash bench/kernels.sh [--quick] [--repeats R] [--skip-kernels] [--skip-ort] [--skip-e2e] [--append]
#                         [--ort-shapes "2048x8192 8192x2048"]
#
# (a) read bandwidth (sum over 1 GiB), int8 VNNI and fp32 FMA peaks, 1 and 2 threads
#     (`bqc bench --peaks`);
# (b) GEMV cold (1 and 2 threads) and GEMM M = 128 (1 thread) at the OPT shapes N x K for every
#     format of the issue (`bqc bench --json`: the quantised kernel and bqc's fp32 kernel in the
#     same run), and OpenBLAS sgemv/sgemm (OPENBLAS_CORETYPE=SkylakeX) on the same shapes;
# (c) ONNX Runtime's MatMulNBits 4-bit (block 32 and 128, accuracy_level 0 and 4) through
#     onnxruntime-node on the same shapes (tools/matmulnbits.py, tools/ort/bench_matmul.js);
# (d) end-to-end decode ms/token and 128-token prefill of the opt-1.3b-4l preset (OPT-1.3B layer
#     dimensions, 4 layers) compiled to C with fp32, bfp8/16, bfp6/16 and bfp4/16 W+A plans (and
#     bfp6/16, bfp4/16 with the attention products fp32), against onnxruntime fp32 and
#     MatMulNBits int4 (block 32, accuracy_level 4) of the same export, 1 and 2 threads; the
#     roofline is the bytes of the matmul weights / read bandwidth.
# Raw results (one JSON line each) go to build/bench/kernels/results.jsonl; --quick runs two
# shapes and fewer formats (a smoke test of the whole pipeline).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
repeats=5 quick=0 ort=1 e2e=1 kern=1 append=0 ort_shapes=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; shift ;; --repeats) repeats=$2; shift 2 ;;
    --skip-ort) ort=0; shift ;; --skip-e2e) e2e=0; shift ;; --skip-kernels) kern=0; shift ;;
    --append) append=1; shift ;; --ort-shapes) ort_shapes=$2; shift 2 ;;
    *) echo "usage: $0 [--quick] [--repeats R] [--skip-kernels] [--skip-ort] [--skip-e2e] [--append] [--ort-shapes S]" >&2; exit 2 ;;
  esac
done
BQC=${BQC:-$BENCH_ROOT/build/bqc}
[ -x "$BQC" ] || { echo "bench: build bqc first (cmake --build build), or set BQC" >&2; exit 1; }
RTLIB=$(dirname "$BQC")/libbqcrt.a
work=$BENCH_ROOT/build/bench/kernels
mkdir -p "$work"
res=$work/results.jsonl
[ $append = 1 ] || : >"$res"   # --append: add to a previous run's results (a part re-run)
start=$(date +%s)
say() { echo "bench [$(( $(date +%s) - start ))s]: $*" >&2; }
rec() { "$PY" -c 'import json,sys; d=json.loads(sys.argv[2]); d.update(json.loads(sys.argv[1])); print(json.dumps(d))' "$1" "$2" >>"$res"; }

shapes="768x768 3072x768 768x3072 2048x2048 8192x2048 2048x8192"
formats="bfp8/16 bfp6/16 bfp4/16 bfp4/64 mxint8 int4/32 mxfp4 nf4/64"
[ $quick = 1 ] && shapes="768x768 2048x8192" && formats="bfp6/16 bfp4/16"

# ---- (a) peaks ----
for t in 1 2; do
  say "peaks, $t thread(s)"
  rec '{"kind": "peaks"}' "$("$BQC" bench --peaks --threads $t --repeats "$repeats" --json)"
done

# ---- (b) bqc kernels and OpenBLAS ----
[ $kern = 1 ] || shapes=""
cc -std=c11 -O2 bench/blas_bench.c -lopenblas -o "$work/blas_bench"
export OPENBLAS_CORETYPE=SkylakeX
for s in $shapes; do
  n=${s%x*} k=${s#*x}
  for f in $formats; do
    # nf4 weights pair with fp32 activations (bitsandbytes' use); the others are W+A
    a=$f; [ "$f" = nf4/64 ] && a=fp32
    for t in 1 2; do
      say "GEMV cold $f ${n}x${k}, $t thread(s)"
      rec "{\"kind\": \"bqc\", \"mode\": \"gemv\"}" \
        "$("$BQC" bench -f "$f" -a "$a" -m 1 -n "$n" -k "$k" --threads $t --cold --repeats "$repeats" --json)"
    done
    say "GEMM M=128 $f ${n}x${k}"
    rec "{\"kind\": \"bqc\", \"mode\": \"gemm\"}" \
      "$("$BQC" bench -f "$f" -a "$a" -m 128 -n "$n" -k "$k" --threads 1 --repeats "$repeats" --json)"
  done
  for t in 1 2; do
    say "OpenBLAS sgemv cold ${n}x${k}, $t thread(s)"
    rec '{"kind": "blas", "mode": "gemv"}' "$("$work/blas_bench" 1 "$n" "$k" $t "$repeats" --cold)"
  done
  say "OpenBLAS sgemm M=128 ${n}x${k}"
  rec '{"kind": "blas", "mode": "gemm"}' "$("$work/blas_bench" 128 "$n" "$k" 1 "$repeats")"
done
unset OPENBLAS_CORETYPE

# ---- (c) onnxruntime MatMulNBits ----
if [ $ort = 1 ]; then
  shapes=${ort_shapes:-$shapes}
  [ -n "$shapes" ] || shapes="768x768 3072x768 768x3072 2048x2048 8192x2048 2048x8192"
  llc=$(getconf LEVEL3_CACHE_SIZE 2>/dev/null || echo 0); [ "${llc:-0}" -gt 0 ] || llc=$((256 << 20))
  for s in $shapes; do
    n=${s%x*} k=${s#*x}
    for blk in 32 128; do
      for acc in 0 4; do
        bytes=$(( n * k / 2 + n * k / blk * 4 ))
        copies=$(( (2 * llc + llc / 8 + bytes - 1) / bytes ))
        m1=$work/nbits-${n}x${k}-b$blk-a$acc-gemv.onnx m128=$work/nbits-${n}x${k}-b$blk-a$acc-gemm.onnx
        say "onnxruntime MatMulNBits ${n}x${k} block $blk acc $acc ($copies copies for GEMV)"
        "$PY" tools/matmulnbits.py single -m 1 -n "$n" -k "$k" --block $blk --acc $acc --copies $copies -o "$m1"
        "$PY" tools/matmulnbits.py single -m 128 -n "$n" -k "$k" --block $blk --acc $acc -o "$m128"
        for t in 1 2; do
          o=$(node tools/ort/bench_matmul.js "$m1" -m 1 -k "$k" --threads $t --repeats "$repeats")
          rec "{\"kind\": \"ort\", \"mode\": \"gemv\", \"N\": $n, \"K\": $k, \"M\": 1, \"block\": $blk, \"acc\": $acc, \"threads\": $t, \"copies\": $copies, \"bytes\": $bytes}" "$o"
        done
        o=$(node tools/ort/bench_matmul.js "$m128" -m 128 -k "$k" --threads 1 --repeats "$repeats")
        rec "{\"kind\": \"ort\", \"mode\": \"gemm\", \"N\": $n, \"K\": $k, \"M\": 128, \"block\": $blk, \"acc\": $acc, \"threads\": 1, \"copies\": 1, \"bytes\": $bytes}" "$o"
        rm -f "$m1" "$m128"
      done
    done
  done
fi

# ---- (d) end to end: opt-1.3b-4l ----
if [ $e2e = 1 ]; then
  preset=opt-1.3b-4l prompt=128 decode=16
  [ $quick = 1 ] && decode=4
  ew=$BENCH_ROOT/build/bench/decode-$preset
  mkdir -p "$ew"
  model=$ew/$preset-past.onnx
  if [ ! -f "$model" ]; then
    say "exporting $preset with past (fp32, random weights)"
    "$PY" tools/export_opt.py --preset "$preset" --opset 17 --with-past --seed 1 -o "$model"
  fi
  read -r vocab heads hd < <("$PY" -c "import json,sys; c=json.load(open(sys.argv[1]))['config']; print(c['vocab_size'], c['num_attention_heads'], c['hidden_size']//c['num_attention_heads'])" "${model%.onnx}.json")
  if [ ! -f "$ew/$preset-nbits.onnx" ]; then
    say "MatMulNBits int4 (block 32, accuracy_level 4) version of the export"
    "$PY" tools/matmulnbits.py convert "$model" "$ew/$preset-nbits.onnx" --block 32 --acc 4
  fi
  # W+A plans (every Linear and both attention products), and two with the attention products
  # kept fp32 (",attn-fp32") to show what quantised attention costs per token
  for spec in fp32 bfp8/16 bfp6/16 bfp4/16 bfp6/16,attn-fp32 bfp4/16,attn-fp32; do
    p=${spec%%,*} label=$p rules=""
    if [ "$spec" != "$p" ]; then
      label="$p, attention fp32"
      rules=', "rules": [{"kind": "attn_qk", "input": "fp32", "weight": "fp32"}, {"kind": "attn_pv", "input": "fp32", "weight": "fp32"}]'
    fi
    tag=$(tr '/,' '__' <<<"$spec")
    plan=$ew/plan-$tag.json
    printf '{"default": {"weight": "%s", "input": "%s", "bias": "fp32"}%s}\n' "$p" "$p" "$rules" >"$plan"
    say "bqc: $preset, plan $label -> C"
    "$BQC" "$model" -plan "$plan" -o "$ew/gen-$tag" -name model >/dev/null
    cc -std=c11 -O2 -march=native -ffp-contract=off -I runtime -I "$ew/gen-$tag" bench/decode_bench.c \
      "$ew/gen-$tag/model.c" "$RTLIB" -lpthread -lm -o "$ew/decode-$tag"
    wbytes=$("$PY" bench/kernels_wbytes.py "$model" "$p")
    for t in 1 2; do
      say "bqc $label decode, $t thread(s)"
      o=$("$ew/decode-$tag" "$ew/gen-$tag/model.weights" $prompt $decode 3 $t)
      rec "{\"kind\": \"e2e\", \"engine\": \"bqc\", \"plan\": \"$label\", \"threads\": $t, \"weight_bytes\": $wbytes}" "$o"
    done
  done
  for v in fp32 nbits; do
    m=$model; [ $v = nbits ] && m=$ew/$preset-nbits.onnx
    wbytes=$("$PY" bench/kernels_wbytes.py "$model" "$([ $v = nbits ] && echo int4/32 || echo fp32)")
    for t in 1 2; do
      say "onnxruntime $v decode, $t thread(s)"
      o=$(node tools/ort/bench_decode.js "$m" --prompt $prompt --decode $decode --repeats 3 --threads $t \
            --vocab "$vocab" --heads "$heads" --head-dim "$hd")
      rec "{\"kind\": \"e2e\", \"engine\": \"ort\", \"plan\": \"$v\", \"threads\": $t, \"weight_bytes\": $wbytes}" "$o"
    done
  done
fi

say "writing docs/benchmarks.md"
body=$(mktemp)
"$PY" bench/kernels_report.py "$res" "$(bench_machine)" "$repeats" "$(( $(date +%s) - start ))" >"$body"
bench_section kernels "$body"
rm -f "$body"
say "wrote the kernels section of docs/benchmarks.md (raw results: $res)"
