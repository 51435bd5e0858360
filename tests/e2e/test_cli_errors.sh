#!/usr/bin/env bash
# test_cli_errors.sh — bad input gets one clear line on stderr and a non-zero exit, never a
# crash or silent garbage: missing/empty/non-protobuf/truncated models, unsupported ops,
# missing external data, wrong input shapes and types, bad tensor files, bad flags.
source "$(dirname "$0")/lib.sh"
e2e_require_tools
e2e_require_bqc

W=$E2E_WORK
TINY=$(e2e_export tiny --preset tiny --opset 17 --seed 3) || die "export failed"
EXT=$(e2e_export tiny-ext --preset tiny --opset 17 --seed 3 --external-data) || die "export failed"
e2e_inputs "$TINY" "$W/in" --batch 1 --seq 4 >/dev/null || die "make_inputs failed"

# expect_error STATUS LINES PATTERN CMD... — exit status STATUS, exactly LINES lines on
# stderr, the first matching PATTERN (grep -E), and nothing that looks like a crash.
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

printf '' >"$W/empty.onnx"
printf 'this is not a protobuf\n' >"$W/text.onnx"
head -c $(( $(stat -c %s "$TINY") / 2 )) "$TINY" >"$W/truncated.onnx"
mkdir -p "$W/noext" && cp "$EXT" "$W/noext/"      # the model without its .onnx.data file
"$PY" - "$W/nonzero.onnx" <<'PY' || die "cannot build the NonZero model"
import sys, onnx
from onnx import helper, TensorProto as T
g = helper.make_graph([helper.make_node("NonZero", ["x"], ["y"], name="/my/NonZero")], "g",
                      [helper.make_tensor_value_info("x", T.FLOAT, [3])],
                      [helper.make_tensor_value_info("y", T.INT64, [1, None])])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), sys.argv[1])
PY
"$PY" - "$W" <<'PY' || die "cannot write the bad inputs"
import sys, numpy as np
w = sys.argv[1]
np.save(f"{w}/mask_long.npy", np.ones((1, 7), np.int64))
np.save(f"{w}/ids_float.npy", np.ones((1, 4), np.float32))
np.save(f"{w}/ids_rank3.npy", np.ones((1, 4, 1), np.int64))
open(f"{w}/garbage.npy", "wb").write(b"\x93NUMPY\x01\x00garbage")
PY

e2e_case "missing model file" expect_error 1 1 "cannot open '.*/nope.onnx': No such file or directory" \
  "$BQC" run "$W/nope.onnx" -o "$W/out"
e2e_case "empty file" expect_error 1 1 "empty.onnx.*empty" "$BQC" "$W/empty.onnx"
e2e_case "not a protobuf" expect_error 1 1 "text.onnx.*(not a valid|protobuf|wire)" "$BQC" "$W/text.onnx"
e2e_case "truncated file" expect_error 1 1 "truncated.onnx.*truncated" "$BQC" "$W/truncated.onnx"
e2e_case "unsupported op names node and op type" \
  expect_error 1 1 "nonzero.onnx: node '/my/NonZero' \(NonZero\): error: unsupported op 'NonZero'" "$BQC" "$W/nonzero.onnx"
e2e_case "missing external data file" \
  expect_error 1 1 "noext/tiny-ext.onnx.*tiny-ext.onnx.data" "$BQC" "$W/noext/tiny-ext.onnx"
e2e_case "input shape mismatch" \
  expect_error 1 1 "input 'attention_mask' has shape i64\[1, 7\].*seq = 4" \
  "$BQC" run "$TINY" -i input_ids="$W/in/input_ids.npy" -i attention_mask="$W/mask_long.npy" -o "$W/out"
e2e_case "input element type mismatch" expect_error 1 1 "input 'input_ids'.*f32" \
  "$BQC" run "$TINY" -i input_ids="$W/ids_float.npy" -i attention_mask="$W/in/attention_mask.npy" -o "$W/out"
e2e_case "input rank mismatch" expect_error 1 1 "input 'input_ids' has rank 3" \
  "$BQC" run "$TINY" -i input_ids="$W/ids_rank3.npy" -i attention_mask="$W/in/attention_mask.npy" -o "$W/out"
e2e_case "missing input" expect_error 1 1 "no value for input 'attention_mask'" \
  "$BQC" run "$TINY" -i input_ids="$W/in/input_ids.npy" -o "$W/out"
e2e_case "input the model does not have" expect_error 1 1 "-i foo.*no input named 'foo'" \
  "$BQC" run "$TINY" --inputs "$W/in" -i foo="$W/in/input_ids.npy" -o "$W/out"
e2e_case "bad .npy file" expect_error 1 1 "garbage.npy" \
  "$BQC" run "$TINY" -i input_ids="$W/garbage.npy" -i attention_mask="$W/in/attention_mask.npy" -o "$W/out"
e2e_case "unknown option: error and usage" expect_error 2 2 "unknown option '--frobnicate'" "$BQC" "$TINY" --frobnicate
e2e_case "unknown pass" expect_error 1 1 "unknown pass 'nope'" "$BQC" "$TINY" --passes=canonicalize,nope
e2e_case "unknown --emit kind" expect_error 2 2 "unknown --emit kind 'bogus'" "$BQC" "$TINY" --emit=bogus
e2e_case "option without its value" expect_error 2 2 "option '-o' needs a value" "$BQC" run "$TINY" -o
e2e_case "the good run still works" "$BQC" run "$TINY" --inputs "$W/in" -o "$W/out"
e2e_finish
