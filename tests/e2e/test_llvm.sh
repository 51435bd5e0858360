#!/usr/bin/env bash
# test_llvm.sh — the LLVM backend end to end (issue 7):
#   * `bqc run --exec=llvm` (the model JIT-compiled in process) == `bqc run --exec=c` (generated
#     C) == `bqc run` (the interpreter), byte for byte, for every exporter variant (opset 13/14/17
#     x pre-LN / post-LN with project_in/out x without / with past, external data; merged
#     decoders, whose If neither backend compiles, get the same clear error from both) and every format family on the Linears and the attention products (bfp, bm, bl,
#     mxint, mxfp, int, nf4, fp16/bf16), 1 and 3 threads;
#   * an object from --emit=obj links with examples/generate.c and libbqcrt (no C compiler
#     generates model code) and generates the C backend's tokens; decode_check.c (prefill +
#     decode == full forward) passes against the object, on an fp32 and a quantised model;
#   * --emit=llvm for a bfp plan: the quantised Linears run specialised kernels with vpdpbusd
#     when the target has AVX-512 VNNI, and a portable path for -mcpu=x86-64-v2;
#   * errors: unknown --emit, bad -mtriple, -mcpu, -mattr, -O name what is wrong and fail.
source "$(dirname "$0")/lib.sh"
e2e_require_tools
e2e_require_bqc

W=$E2E_WORK
RT_INC=$BQC_SOURCE_DIR/runtime
RT_LIB=$(dirname "$BQC")/libbqcrt.a
CFLAGS="-std=c11 -O2 -ffp-contract=off -Wall -Wextra -Werror"
RT_FLAGS=${BQC_RUNTIME_FLAGS:-}

# A bqc built without LLVM (BQC_LLVM=OFF): the backend says it is unavailable, the rest works.
M0=$(e2e_export tiny --preset tiny --opset 17 --seed 19) || die "export failed"
probe=$("$BQC" "$M0" --emit=obj -o "$W/probe" 2>&1) || true
if grep -q 'built without LLVM' <<<"$probe"; then
  unavailable() {
    e2e_inputs "$M0" "$W/u/in" --batch 1 --seq 5 >/dev/null &&
      e2e_expect_fail "--emit=obj: this bqc was built without LLVM, so the LLVM backend is unavailable" \
        "$BQC" "$M0" --emit=obj -o "$W/u/obj" &&
      e2e_expect_fail "--emit=llvm: this bqc was built without LLVM" "$BQC" "$M0" --emit=llvm -o "$W/u/obj" &&
      e2e_expect_fail "--exec=llvm: this bqc was built without LLVM" "$BQC" run "$M0" --exec=llvm --inputs "$W/u/in" -o "$W/u/l" &&
      "$BQC" run "$M0" --inputs "$W/u/in" -o "$W/u/interp" >/dev/null && "$BQC" "$M0" -o "$W/u/c" >/dev/null &&
      echo "without LLVM: a clear error for the LLVM backend; the interpreter and the C backend work"
  }
  e2e_case "built without LLVM: the backend is unavailable, the rest works" unavailable
  e2e_finish
fi

# same TAG DIR_A DIR_B — every output file byte-identical
same() {
  local f n=0
  for f in "$2"/*.npy; do
    cmp -s "$f" "$3/$(basename "$f")" || { echo "$1: $(basename "$f") differs"; return 1; }
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "$1: no outputs"; return 1; }
}

# three MODEL IN TAG [run args] — interpreter, generated C and the JIT: byte-identical
three() {
  local model=$1 in=$2 d="$W/$3"; shift 3
  "$BQC" run "$model" "$@" --inputs "$in" -o "$d/interp" >/dev/null &&
    "$BQC" run "$model" "$@" --exec=c --inputs "$in" -o "$d/c" >/dev/null &&
    "$BQC" run "$model" "$@" --exec=llvm --inputs "$in" -o "$d/llvm" >/dev/null &&
    "$BQC" run "$model" "$@" --exec=llvm --threads 3 --inputs "$in" -o "$d/llvm3" >/dev/null || return 1
  same "generated C" "$d/interp" "$d/c" && same "LLVM JIT" "$d/interp" "$d/llvm" &&
    same "LLVM JIT, 3 threads" "$d/interp" "$d/llvm3" &&
    echo "interpreter == generated C == LLVM JIT (1 and 3 threads): $(ls "$d/llvm" | wc -l) outputs byte-identical"
}

variant() {  # MODEL TAG make_inputs-args...
  local model=$1 tag=$2; shift 2
  e2e_inputs "$model" "$W/$tag/in" "$@" >/dev/null && three "$model" "$W/$tag/in" "$tag"
}

for opset in 13 14 17; do
  for preset in tiny tiny-post; do
    seed=$((opset + ${#preset}))
    M=$(e2e_export "$preset" --preset "$preset" --opset "$opset" --seed "$seed") || die "export failed"
    MP=$(e2e_export "$preset-past" --preset "$preset" --opset "$opset" --seed "$seed" --with-past) || die "export failed"
    e2e_case "opset$opset/$preset: LLVM == C == interpreter (batch 2, left pad)" \
      variant "$M" "o$opset-$preset" --batch 2 --seq 7 --left-pad 3
    e2e_case "opset$opset/$preset with past: LLVM == C == interpreter" \
      variant "$MP" "o$opset-$preset-past" --batch 2 --seq 4 --past 3 --left-pad 2
  done
done
MM=$(e2e_export tiny-merged --preset tiny --opset 14 --seed 7 --merged) || die "export failed"
merged() {  # If subgraphs: the interpreter runs them; both backends (one planner) refuse clearly
  e2e_inputs "$MM" "$W/merged/in" --batch 2 --seq 4 --past 3 --left-pad 2 >/dev/null &&
    "$BQC" run "$MM" --inputs "$W/merged/in" -o "$W/merged/interp" >/dev/null &&
    e2e_expect_fail "graphs with If are not supported" "$BQC" run "$MM" --exec=llvm --inputs "$W/merged/in" -o "$W/merged/llvm" &&
    e2e_expect_fail "graphs with If are not supported" "$BQC" run "$MM" --exec=c --inputs "$W/merged/in" -o "$W/merged/c"
}
e2e_case "merged decoder opset14/tiny (If): interpreter runs it, both backends refuse it clearly" merged
ME=$(e2e_export tiny-post-ext --preset tiny-post --opset 17 --seed 7 --ffn 300 --external-data) || die "export failed"
e2e_case "external data opset17/tiny-post (ffn 300): LLVM == C == interpreter" variant "$ME" ext --batch 2 --seq 6 --left-pad 1

# ---- number formats (the IR text with formats written in, as test_quant_exec.sh does) ----
with_formats() {  # IR OUT LINEAR_ATTRS [ATTENTION_ATTRS]
  local ir=$1 out=$2 lin=$3 att=${4:-}
  sed -E "/= bqc\.Linear\(/{s#\) \{([^}]*)\} : #) {\1, $lin} : #;t;s#\) : #) {$lin} : #}" "$ir" >"$out.tmp" || return 1
  if [ -n "$att" ]; then
    sed -E "/= bqc\.Attention\(/s#\{([^}]*)\} : #{\1, $att} : #" "$out.tmp" >"$out" && rm -f "$out.tmp"
  else
    mv "$out.tmp" "$out"
  fi
  grep -q 'weight_format' "$out" || { echo "no bqc.Linear received formats"; return 1; }
}
lin() { printf 'input_format = "%s", weight_format = "%s"' "$1" "$2"; }
att() { printf 'qk_input_format = "%s", qk_weight_format = "%s", pv_input_format = "%s", pv_weight_format = "%s"' "$@"; }

MQ=$(e2e_export tiny --preset tiny --opset 17 --seed 31) || die "export failed"
MQP=$(e2e_export tiny-post --preset tiny-post --opset 14 --seed 32 --ffn 300) || die "export failed"
QIN=$W/qin
e2e_inputs "$MQ" "$QIN" --batch 2 --seq 7 --left-pad 3 >/dev/null || die "make_inputs failed"
"$BQC" "$MQ" --emit=ir --inline-weights -o "$W/pre.ir" || die "bqc --emit=ir failed"
"$BQC" "$MQP" --emit=ir --inline-weights -o "$W/post.ir" || die "bqc --emit=ir failed"

formats() {  # BASE TAG LIN [ATT]
  with_formats "$1" "$W/$2.ir" "$3" "${4:-}" && three "$W/$2.ir" "$QIN" "$2"
}
for f in bfp8/16 bfp6/16 bfp4/16 bm8e4/16 bl5/16 mxint8 mxfp4 mxfp6e3m2 int4/32 int8/32 nf4/64; do
  t=$(tr '/' '_' <<<"$f")
  e2e_case "pre-LN, $f weights and activations: LLVM == C == interpreter" formats "$W/pre.ir" "pre-$t" "$(lin "$f" "$f")"
done
for f in bfp6/16 mxfp4 int4/32 nf4/64; do
  t=$(tr '/' '_' <<<"$f")
  e2e_case "post-LN (K 300, 32), $f: LLVM == C == interpreter" formats "$W/post.ir" "post-$t" "$(lin "$f" "$f")"
done
e2e_case "mixed pairs and attention formats (bfp8/32 x int4/32, fp16 x nf4): LLVM == C == interpreter" bash -c "
  $(declare -f with_formats three same lin att formats); W='$W' BQC='$BQC' QIN='$QIN';
  formats '$W/pre.ir' mixa \"\$(lin bfp8/32 int4/32)\" \"\$(att bfp6/16 bfp6/16 bfp8/16 bfp4/16)\" &&
  formats '$W/post.ir' mixb \"\$(lin fp16 nf4/64)\" \"\$(att mxfp4 mxint8 nf4/16 fp32)\" &&
  formats '$W/pre.ir' mixc \"\$(lin bf16 bfp8/16), bias_format = \\\"bfp6/16\\\"\" \"\$(att fp32 int8/32 fp32 bf16)\""

# ---- the object file in applications ----
obj_app() {  # an object from --emit=obj with examples/generate.c: the C backend's tokens
  local d="$W/app" out
  "$BQC" "$MQ" --emit=obj -o "$d/obj" -name opt >"$d.log" || { cat "$d.log"; return 1; }
  cat "$d.log"
  gcc $CFLAGS $RT_FLAGS -march=native -DMODEL=opt -DMODEL_UPPER=OPT -I"$RT_INC" -I"$d/obj" \
    "$BQC_SOURCE_DIR/examples/generate.c" "$d/obj/opt.o" "$RT_LIB" -lpthread -lm -o "$d/gen-llvm" || return 1
  "$BQC" "$MQ" -o "$d/c" -name opt >/dev/null &&
    gcc $CFLAGS $RT_FLAGS -march=native -DMODEL=opt -DMODEL_UPPER=OPT -I"$RT_INC" -I"$d/c" \
      "$BQC_SOURCE_DIR/examples/generate.c" "$d/c/opt.c" "$RT_LIB" -lpthread -lm -o "$d/gen-c" || return 1
  "$d/gen-llvm" "$d/obj/opt.weights" -i 2,17,33,100 -n 8 -t 2 >"$d/llvm.txt" 2>"$d/llvm.err" || { cat "$d/llvm.err"; return 1; }
  "$d/gen-c" "$d/c/opt.weights" -i 2,17,33,100 -n 8 -t 2 >"$d/c.txt" 2>/dev/null || return 1
  cat "$d/llvm.err"
  cmp -s "$d/llvm.txt" "$d/c.txt" || { echo "the object generates other tokens than the C code"; return 1; }
  cmp -s "$d/obj/opt.weights" "$d/c/opt.weights" && cmp -s "$d/obj/opt.h" "$d/c/opt.h" ||
    { echo "the weights or the header differ from the C backend's"; return 1; }
  echo "object + generate.c + libbqcrt: the same tokens as the C backend; same header and weights file"
}
e2e_case "--emit=obj links with examples/generate.c and libbqcrt and runs" obj_app

decode_obj() {  # IR-or-ONNX TAG — decode_check.c against the object
  local d="$W/$2-dec"
  "$BQC" "$1" --emit=obj -o "$d" -name model >/dev/null 2>"$d.log" || { cat "$d.log"; return 1; }
  gcc $CFLAGS $RT_FLAGS -march=native -I"$RT_INC" -I"$d" "$BQC_SOURCE_DIR/tests/e2e/decode_check.c" "$d/model.o" \
    "$RT_LIB" -lpthread -lm -o "$d/decode_check" && "$d/decode_check" "$d/model.weights" 5 6
}
MP13=$(e2e_export tiny-post-past --preset tiny-post --opset 13 --seed 22 --with-past) || die "export failed"
e2e_case "object, KV cache added by the compiler: prefill + decode == full forward" decode_obj "$MQ" fp32
e2e_case "object, with-past export: prefill + decode == full forward" decode_obj "$MP13" past13
e2e_case "object, quantised Linears and attention: prefill + decode == full forward" bash -c "
  $(declare -f with_formats lin att decode_obj); W='$W' BQC='$BQC' CFLAGS='$CFLAGS' RT_FLAGS='$RT_FLAGS' RT_INC='$RT_INC' RT_LIB='$RT_LIB' BQC_SOURCE_DIR='$BQC_SOURCE_DIR';
  with_formats '$W/pre.ir' '$W/dec.ir' \"\$(lin bfp6/16 bfp6/16)\" \"\$(att bfp6/16 bfp6/16 bfp6/16 bfp6/16)\" && decode_obj '$W/dec.ir' q"

# ---- what the code is made of ----
kernels() {
  with_formats "$W/pre.ir" "$W/k.ir" "$(lin bfp6/16 bfp6/16)" || return 1
  "$BQC" "$W/k.ir" --emit=llvm -o "$W/k/host.ll" -name k >/dev/null || return 1
  if grep -Eq 'avx512_?vnni' /proc/cpuinfo; then
    grep -q 'llvm.x86.avx512.vpdpbusd.512' "$W/k/host.ll" || { echo "no vpdpbusd in the host's code"; return 1; }
    echo "host (AVX-512 VNNI): the quantised Linears use llvm.x86.avx512.vpdpbusd.512"
  fi
  "$BQC" "$W/k.ir" --emit=llvm -mcpu=x86-64-v2 -o "$W/k/v2.ll" -name k >/dev/null || return 1
  ! grep -q 'vpdpbusd' "$W/k/v2.ll" || { echo "-mcpu=x86-64-v2 code uses vpdpbusd"; return 1; }
  echo "-mcpu=x86-64-v2: portable kernels only"
  "$BQC" "$W/k.ir" --emit=obj -mcpu=x86-64-v2 -o "$W/k/v2" -name model >/dev/null &&
    gcc $CFLAGS $RT_FLAGS -I"$RT_INC" -I"$W/k/v2" "$BQC_SOURCE_DIR/tests/e2e/decode_check.c" "$W/k/v2/model.o" \
      "$RT_LIB" -lpthread -lm -o "$W/k/v2/decode_check" && BQC_ISA=portable "$W/k/v2/decode_check" "$W/k/v2/model.weights" 3 2 |
    tail -1
}
e2e_case "bfp plan: vpdpbusd on the host, portable with -mcpu=x86-64-v2 (and it runs)" kernels

errors() {
  e2e_expect_fail "unknown --emit kind 'asm'" "$BQC" "$MQ" --emit=asm &&
    e2e_expect_fail "-mtriple 'nonsense-foo-bar'" "$BQC" "$MQ" --emit=obj -mtriple nonsense-foo-bar -o "$W/e1" &&
    e2e_expect_fail "-mtriple 'aarch64-linux-gnu': .*x86_64" "$BQC" "$MQ" --emit=obj -mtriple aarch64-linux-gnu -o "$W/e2" &&
    e2e_expect_fail "-mcpu 'pentium9000' is not a processor" "$BQC" "$MQ" --emit=obj -mcpu pentium9000 -o "$W/e3" &&
    e2e_expect_fail "-mattr '\+frobnicate'" "$BQC" "$MQ" --emit=llvm -mattr=+frobnicate -o "$W/e4" &&
    e2e_expect_fail "-O expects 0, 1, 2 or 3" "$BQC" "$MQ" --emit=obj -O7 &&
    e2e_expect_fail "--exec must be interp, c or llvm" "$BQC" run "$MQ" --exec=jit -o "$W/e5" &&
    "$BQC" "$MQ" --emit=obj -O0 -mtriple x86_64-unknown-linux-gnu -mcpu skylake-avx512 -o "$W/ok/m.o" >/dev/null &&
    [ -s "$W/ok/m.o" ] && echo "-O0 -mtriple x86_64-unknown-linux-gnu -mcpu skylake-avx512: object written"
}
e2e_case "errors: --emit, -mtriple, -mcpu, -mattr, -O, --exec" errors
e2e_finish
