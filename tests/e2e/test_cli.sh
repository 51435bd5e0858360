#!/usr/bin/env bash
# test_cli.sh — the bqc command line on a real export: the IR text round-trips at model
# scale (run from the printed IR, with file(...) weights and inlined, gives byte-identical
# outputs), the unoptimised graph agrees with onnxruntime too, .pb in and out, --dump-after,
# --verify-each and --list-passes.
source "$(dirname "$0")/lib.sh"
e2e_require_tools
e2e_require_bqc

W=$E2E_WORK
M=$(e2e_export tiny-post --preset tiny-post --opset 13 --seed 5 --with-past) || die "export failed"
e2e_inputs "$M" "$W/in" --batch 2 --seq 5 --past 3 --left-pad 2 >/dev/null || die "make_inputs failed"
e2e_ort "$M" "$W/in" "$W/ort" >/dev/null || die "onnxruntime failed"

same_outputs() {  # same_outputs DIR_A DIR_B — every .npy byte-identical
  local a=$1 b=$2 f n=0
  for f in "$a"/*.npy; do
    cmp -s "$f" "$b/$(basename "$f")" || { echo "$(basename "$f") differs between $a and $b"; return 1; }
    n=$((n + 1))
  done
  echo "$n outputs byte-identical"
  [ "$n" -gt 0 ]
}

ir_roundtrip() {
  "$BQC" "$M" --emit=ir -o "$W/m.ir" &&
    grep -q 'file(' "$W/m.ir" &&
    "$BQC" run "$M" --inputs "$W/in" -o "$W/from-onnx" >/dev/null &&
    "$BQC" run "$W/m.ir" --inputs "$W/in" -o "$W/from-ir" >/dev/null &&
    same_outputs "$W/from-onnx" "$W/from-ir" &&
    "$BQC" "$W/m.ir" --passes= --emit=ir -o "$W/m2.ir" &&
    diff <(tail -n +2 "$W/m.ir") <(tail -n +2 "$W/m2.ir") && echo "print(parse(print(m))) == print(m)"
}
inline_weights() {
  "$BQC" "$M" --emit=ir --inline-weights -o "$W/inl.ir" &&
    ! grep -q 'file(' "$W/inl.ir" &&
    "$BQC" run "$W/inl.ir" --inputs "$W/in" -o "$W/from-inl" >/dev/null &&
    same_outputs "$W/from-onnx" "$W/from-inl"
}
unoptimised() {
  "$BQC" run "$M" --passes= --inputs "$W/in" -o "$W/raw" >/dev/null && e2e_compare "$W/raw" "$W/ort"
}
pb_io() {
  "$BQC" run "$M" --inputs "$W/in" -o "$W/pb" --output-format=pb >/dev/null &&
    "$PY" - "$W/pb" "$W/from-onnx" <<'PY'
import sys, os, numpy as np, onnx.numpy_helper as nh, onnx
pb, ref = sys.argv[1], sys.argv[2]
for f in sorted(os.listdir(ref)):
    t = onnx.TensorProto(); t.ParseFromString(open(os.path.join(pb, f[:-4] + ".pb"), "rb").read())
    assert t.name == f[:-4], (t.name, f)
    assert np.array_equal(nh.to_array(t), np.load(os.path.join(ref, f))), f
print("outputs written as TensorProto .pb match the .npy outputs")
PY
}
test_data_set() {  # an ONNX test_data_set_N folder as input: input_K.pb in graph-input order
  "$PY" - "$M" "$W/in" "$W/tds" <<'PY' &&
import sys, os, json, numpy as np, onnx, onnx.numpy_helper as nh
model, src, dst = sys.argv[1:]
os.makedirs(dst, exist_ok=True)
for k, i in enumerate(onnx.load(model, load_external_data=False).graph.input):
    t = nh.from_array(np.load(os.path.join(src, i.name + ".npy")), i.name)
    open(os.path.join(dst, f"input_{k}.pb"), "wb").write(t.SerializeToString())
PY
    "$BQC" run "$M" --inputs "$W/tds" -o "$W/from-tds" >/dev/null && same_outputs "$W/from-onnx" "$W/from-tds"
}
dump_after() {
  "$BQC" "$M" --verify-each --dump-after=fuse-linear --emit=ir -o /dev/null 2>"$W/dump.txt" &&
    grep -q '^# IR after fuse-linear' "$W/dump.txt" && grep -q 'bqc.Linear' "$W/dump.txt" &&
    ! grep -q 'bqc.Attention' "$W/dump.txt" && echo "dump shows the IR between fuse-linear and fuse-attention"
}
list_passes() {
  "$BQC" --list-passes >"$W/passes.txt" && cat "$W/passes.txt" &&
    [ "$(cut -d' ' -f1 "$W/passes.txt" | tr '\n' ' ')" = "canonicalize fuse-layernorm fuse-linear fuse-attention apply-plan block-size quantise-weights kv-cache " ] &&
    grep -q '^kv-cache .*\[on demand\]' "$W/passes.txt"
}
help_and_version() {   # outputs captured: grep -q closing a pipe early would kill the writer
  local help version
  help=$("$BQC" --help) && version=$("$BQC" --version) &&
    grep -q -- '--passes' <<<"$help" && grep -q '^bqc ' <<<"$version"
}

e2e_case "IR text round trip at model scale (file weights)" ir_roundtrip
e2e_case "IR text with inlined weights runs identically" inline_weights
e2e_case "unoptimised graph (--passes=) vs onnxruntime" unoptimised
e2e_case "outputs as .pb TensorProto" pb_io
e2e_case "inputs from an ONNX test_data_set folder" test_data_set
e2e_case "--dump-after and --verify-each" dump_after
e2e_case "--list-passes in pipeline order" list_passes
e2e_case "--help and --version" help_and_version
e2e_finish
