#!/usr/bin/env bash
# test_exporter.sh — the PyTorch exporter and the onnxruntime oracle, without bqc.
#
# Every variant the bqc tests use (opsets 13/14/17 x tiny/tiny-post x no-past/with-past, the
# merged decoder, external data) is exported with --check: the ONNX checker passes and
# onnxruntime agrees with PyTorch (max |diff| <= 1e-4 * max |logit|, presents too). Each
# with-past export then decodes greedily in onnxruntime and must match one no-past forward
# over the whole sequence. The graphs may only use ops in ir/ops.def (or Constant, which the
# frontend folds). And the tools themselves are checked where they could quietly go wrong:
# --weights really loads the weights, the merge renames clashing initializers, external
# tensors are 64-byte aligned, left padding looks as documented, ortrun.js round-trips every
# .npy dtype and rejects bad input, and e2e_check.py fails on a mismatch, a missing output,
# a wrong shape or a NaN.
source "$(dirname "$0")/lib.sh"

e2e_require_tools
W=$E2E_WORK

export_check() {  # export_check NAME export_opt-args... (into the work folder, with --check)
  local name=$1; shift
  "$PY" "$TOOLS/export_opt.py" "$@" --check -o "$W/models/$name.onnx"
}

# ---- the PyTorch model itself --------------------------------------------------------------
model_py() {
  "$PY" - "$TOOLS" "$W/py" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1])
import os, torch, torch.nn.functional as F, opt_model as om
os.makedirs(sys.argv[2], exist_ok=True)
for preset in ("tiny", "tiny-post"):
    cfg = om.OPTConfig(**om.PRESETS[preset])
    m = om.OPTForCausalLM(cfg).eval()
    om.randomize_all(m, 1)
    assert m.lm_head.weight is m.model.decoder.embed_tokens.weight, "lm_head not tied"
    assert (m.model.decoder.embed_tokens.weight[cfg.pad_token_id] == 0).all()
    assert (m.model.decoder.layers[0].fc1.bias != 0).all() and (m.model.decoder.layers[1].final_layer_norm.weight != 1).all()
    assert (m.model.decoder.final_layer_norm is None) == (preset == "tiny-post")
    assert (m.model.decoder.project_in is None) == (preset == "tiny")
    ids = torch.randint(3, cfg.vocab_size, (2, 7)); mask = torch.ones(2, 7, dtype=torch.long); mask[1, :2] = 0
    with torch.no_grad():
        (full,) = m(ids, mask)
        _, past = m(ids[:, :4], mask[:, :4], use_cache=True)
        step, _ = m(ids[:, 4:], mask, past_key_values=past, use_cache=True)
        loss, logits = m(ids, mask, labels=ids)
    err = (full[:, 4:] - step).abs().max().item()
    assert err <= 1e-4 * full.abs().max().item(), f"{preset}: KV-cache forward differs by {err}"
    want = F.cross_entropy(logits[:, :-1].reshape(-1, cfg.vocab_size), ids[:, 1:].reshape(-1))
    assert torch.allclose(loss, want), (loss, want)
    # HF init: biases 0, LayerNorm 1/0, padding row 0; checkpoints round-trip with the tie kept
    om.init_weights_hf(m, 2)
    assert (m.model.decoder.layers[0].fc1.bias == 0).all() and (m.model.decoder.layers[0].self_attn_layer_norm.weight == 1).all()
    om.save_checkpoint(m, f"{sys.argv[2]}/{preset}.pt")
    m2 = om.OPTForCausalLM(om.OPTConfig.from_dict(om.checkpoint_config(f"{sys.argv[2]}/{preset}.pt")))
    om.load_weights(m2, f"{sys.argv[2]}/{preset}.pt")
    assert m2.lm_head.weight is m2.model.decoder.embed_tokens.weight
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), m2.state_dict().values()))
    print(f"{preset}: tied head, KV cache == full forward ({err:.1e}), loss, HF init, checkpoint round trip: OK")
EOF
}
e2e_case "opt_model.py: KV cache, loss, init, checkpoints" model_py

# ---- every variant: checker + PyTorch vs onnxruntime --------------------------------------
for opset in 13 14 17; do
  for arch in tiny tiny-post; do
    e2e_case "export opset $opset $arch, no past: PyTorch vs onnxruntime" \
      export_check "$arch-$opset" --preset "$arch" --opset "$opset" --seed 3
    e2e_case "export opset $opset $arch, with past: PyTorch vs onnxruntime" \
      export_check "$arch-$opset-past" --preset "$arch" --opset "$opset" --seed 3 --with-past
  done
done
e2e_case "export opset 14 tiny, merged: both branches vs PyTorch" \
  export_check tiny-14-merged --preset tiny --opset 14 --seed 3 --merged
e2e_case "export opset 13 tiny-post, merged + external data (ffn 300): both branches vs PyTorch" \
  export_check tiny-post-13-merged-ext --preset tiny-post --opset 13 --seed 3 --merged --external-data --ffn 300
e2e_case "export overrides (3 layers, d 48, 6 heads, ffn 96, vocab 300, proj 24, pre-LN)" \
  export_check custom --preset tiny --layers 3 --hidden 48 --heads 6 --ffn 96 --vocab 300 \
    --word-embed-proj-dim 24 --pre-ln --opset 17 --with-past

# ---- with-past decode vs one no-past forward, onnxruntime only ----------------------------
decode_ort() {  # decode_ort ARCH OPSET
  local m="$W/models/$1-$2" d="$W/decode-$1-$2"
  [ -f "$m-past.onnx" ] && [ -f "$m.onnx" ] || { echo "missing exports $m{,-past}.onnx"; return 1; }
  "$PY" "$TOOLS/make_inputs.py" "$m-past.json" --batch 2 --seq 4 --past 0 --left-pad 2 --seed 9 -o "$d/prefill" &&
    "$PY" "$TOOLS/e2e_check.py" --ort-only --decode 3 --model "$m-past.onnx" --inputs "$d/prefill" \
      --consistency "$m.onnx"
}
for opset in 13 14 17; do
  for arch in tiny tiny-post; do
    e2e_case "onnxruntime decode == full forward, opset $opset $arch" decode_ort "$arch" "$opset"
  done
done

merged_decode_ort() {  # prefill through the no-past branch, decode through the with-past one
  local m="$W/models/tiny-14" d="$W/decode-merged"
  "$PY" "$TOOLS/make_inputs.py" "$m-merged.json" --batch 2 --seq 4 --past 0 --left-pad 1 \
      --use-cache-branch false --seed 9 -o "$d/prefill" &&
    "$PY" "$TOOLS/e2e_check.py" --ort-only --decode 3 --model "$m-merged.onnx" --inputs "$d/prefill" \
      --consistency "$m.onnx"
}
e2e_case "onnxruntime decode == full forward, merged opset 14 tiny (both branches)" merged_decode_ort

# ---- the op types the C frontend must know ------------------------------------------------
known_ops() {
  "$PY" - "$BQC_SOURCE_DIR/ir/ops.def" "$W"/models/*.json <<'EOF'
import json, re, sys
known = set(re.findall(r'^OP\(\s*\w+\s*,\s*"([A-Za-z]+)"', open(sys.argv[1]).read(), re.M))
known.add("Constant")   # folded into an initializer by the ONNX frontend
bad = {}
for f in sys.argv[2:]:
    m = json.load(open(f))
    print(f"opset {m['opset']} {m['variant']:9s} {m['model']:28s} {' '.join(sorted(m['op_types']))}")
    for op in m["op_types"]:
        if op not in known:
            bad.setdefault(op, []).append(m["model"])
for op, models in sorted(bad.items()):
    print(f"op {op} (in {', '.join(models)}) is not a row of ir/ops.def")
sys.exit(1 if bad else 0)
EOF
}
e2e_case "every exported op type is in ir/ops.def" known_ops

# ---- --weights loads a checkpoint ---------------------------------------------------------
weights_roundtrip() {
  "$PY" - "$TOOLS" "$W/ck" <<'EOF' || return 1
import sys; sys.path.insert(0, sys.argv[1])
import os, torch, opt_model
os.makedirs(sys.argv[2], exist_ok=True)
m = opt_model.OPTForCausalLM(opt_model.OPTConfig(**opt_model.PRESETS["tiny-post"]))
opt_model.randomize_all(m, 11)
opt_model.save_checkpoint(m, f"{sys.argv[2]}/seed11.pt", step=0)
torch.save(m.state_dict(), f"{sys.argv[2]}/seed11-bare.pt")
bad = {k: v for k, v in m.state_dict().items()}
bad["model.decoder.layers.0.fc1.weight"] = torch.zeros(3, 3)
torch.save(bad, f"{sys.argv[2]}/bad-shape.pt")
print("saved checkpoints of tiny-post with seed 11")
EOF
  local d=$W/ck
  "$PY" "$TOOLS/export_opt.py" --weights "$d/seed11.pt" --opset 14 -o "$d/ck.onnx" --check &&
    "$PY" "$TOOLS/export_opt.py" --preset tiny-post --weights "$d/seed11-bare.pt" --opset 14 -o "$d/bare.onnx" &&
    "$PY" "$TOOLS/export_opt.py" --preset tiny-post --seed 11 --opset 14 -o "$d/s11.onnx" &&
    "$PY" "$TOOLS/export_opt.py" --preset tiny-post --seed 12 --opset 14 -o "$d/s12.onnx" &&
    "$PY" "$TOOLS/make_inputs.py" "$d/s11.json" --batch 2 --seq 5 --left-pad 1 -o "$d/in" || return 1
  local m
  for m in ck bare s11 s12; do e2e_ort "$d/$m.onnx" "$d/in" "$d/out-$m" || return 1; done
  echo "checkpoint export == --seed 11 export:"
  "$PY" "$TOOLS/e2e_check.py" "$d/out-ck" "$d/out-s11" --rel-tol 0 &&
    "$PY" "$TOOLS/e2e_check.py" "$d/out-bare" "$d/out-s11" --rel-tol 0 || return 1
  echo "--seed 12 must differ:"
  e2e_expect_fail 'logits: .* FAIL' "$PY" "$TOOLS/e2e_check.py" "$d/out-s12" "$d/out-s11" || return 1
  echo "a checkpoint that does not fit:"
  e2e_expect_fail 'config differs.*word_embed_proj_dim' \
    "$PY" "$TOOLS/export_opt.py" --preset tiny --weights "$d/seed11.pt" -o "$d/x.onnx" || return 1
  e2e_expect_fail 'fc1.weight has shape \(3, 3\)' \
    "$PY" "$TOOLS/export_opt.py" --preset tiny-post --weights "$d/bad-shape.pt" -o "$d/x.onnx"
}
e2e_case "--weights: checkpoint and bare state_dict load exactly; bad ones are refused" weights_roundtrip

# ---- merge: dedup and renaming ------------------------------------------------------------
merge_rename() {
  "$PY" - "$TOOLS" "$W/merge" <<'EOF' || return 1
import sys; sys.path.insert(0, sys.argv[1])
import os, subprocess, numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
import export_opt, e2e_check
d = sys.argv[2]; os.makedirs(d, exist_ok=True)
def model(w_name, w, extra_name, extra):
    # logits = x @ W + E ; present.0.key = x * 2 (stand-ins with the real names)
    g = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["input_ids_f"], to=TensorProto.FLOAT),
         helper.make_node("MatMul", ["input_ids_f", w_name], ["mm"]),
         helper.make_node("Add", ["mm", extra_name], ["logits"]),
         helper.make_node("Mul", ["input_ids_f", "two"], ["present.0.key"])],
        "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [2, 2])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 2]),
         helper.make_tensor_value_info("present.0.key", TensorProto.FLOAT, [2, 2])],
        [numpy_helper.from_array(w, w_name), numpy_helper.from_array(extra, extra_name),
         numpy_helper.from_array(np.float32(2.0), "two")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
W1 = np.array([[1, 2], [3, 4]], np.float32); W2 = np.array([[5, 6], [7, 8]], np.float32)
E = np.array([0.5, -0.5], np.float32)
a = model("W", W1, "bias_a", E)          # "W" clashes with b's different "W"
b = model("W", W2, "bias_b", E)          # bias_b is identical to bias_a: stored once
b.graph.input.append(helper.make_tensor_value_info("past_key_values.0.key", TensorProto.FLOAT, [2, 2]))
m = export_opt.merge_decoders(a, b)
names = sorted(t.name for t in m.graph.initializer)
print("merged initializers:", names)
assert names == ["W", "W_merged_1", "bias_a", "two"], names
onnx.checker.check_model(m)
onnx.save(m, f"{d}/merged.onnx")
x = np.array([[1, 0], [0, 1]], np.int64)
for branch, W in ((False, W1), (True, W2)):
    ind = f"{d}/in-{branch}"; out = f"{d}/out-{branch}"; os.makedirs(ind, exist_ok=True)
    np.save(f"{ind}/input_ids.npy", x); np.save(f"{ind}/use_cache_branch.npy", np.array([branch]))
    np.save(f"{ind}/past_key_values.0.key.npy", np.zeros((2, 2), np.float32))
    e2e_check.run_ort(f"{d}/merged.onnx", ind, out)
    got = np.load(f"{out}/logits.npy")
    assert np.array_equal(got, x.astype(np.float32) @ W + E), (branch, got)
    print(f"use_cache_branch {branch}: logits use the right W: OK")
EOF
}
e2e_case "merge: identical initializers stored once, clashing names renamed" merge_rename

# ---- external data layout -----------------------------------------------------------------
external_layout() {
  "$PY" - "$W/models/tiny-post-13-merged-ext.onnx" <<'EOF'
import os, sys, onnx, numpy as np
path = sys.argv[1]
m = onnx.load(path, load_external_data=False)
data = os.path.join(os.path.dirname(path), os.path.basename(path) + ".data")
size = os.path.getsize(data)
ext, padded, end = 0, 0, 0
for t in m.graph.initializer:
    if t.data_location != onnx.TensorProto.EXTERNAL:
        continue
    kv = {e.key: e.value for e in t.external_data}
    off, n = int(kv["offset"]), int(kv["length"])
    assert kv["location"] == os.path.basename(data), kv
    assert off % 64 == 0, f"{t.name}: offset {off} not 64-byte aligned"
    assert off >= end, f"{t.name}: overlaps the previous tensor"
    padded += off > end
    end = off + n
    ext += 1
assert end == size, f"data file is {size} bytes, tensors end at {end}"
assert padded, "no tensor needed padding: the test does not exercise alignment"
full = onnx.load(path)  # loads the external data through onnx's own reader
print(f"{ext} external tensors, all 64-byte aligned, {padded} after padding, {size} bytes")
EOF
}
e2e_case "external data: 64-byte aligned offsets, padding, readable by onnx" external_layout

# ---- make_inputs: left padding ------------------------------------------------------------
left_pad() {
  local j="$W/models/tiny-14-past.json" d="$W/pad"
  "$PY" "$TOOLS/make_inputs.py" "$j" --batch 3 --seq 4 --past 2 --left-pad 3 -o "$d/a" &&
    "$PY" "$TOOLS/make_inputs.py" "$j" --batch 2 --seq 4 --past 0 --left-pad 3 -o "$d/b" || return 1
  "$PY" - "$d" <<'EOF' || return 1
import sys, numpy as np
d = sys.argv[1]
ids, mask = np.load(f"{d}/a/input_ids.npy"), np.load(f"{d}/a/attention_mask.npy")
assert mask.shape == (3, 6) and mask.dtype == np.int64 and ids.dtype == np.int64
assert mask[0].all() and (mask[1:, :3] == 0).all() and mask[1:, 3:].all(), mask
assert (ids[1:, 0] == 1).all() and (ids[:, 1:] != 1).all() and ids[0, 0] != 1, ids   # 1 of 3 pads in the new tokens
assert np.load(f"{d}/a/past_key_values.1.value.npy").shape == (3, 4, 2, 16)
ids, mask = np.load(f"{d}/b/input_ids.npy"), np.load(f"{d}/b/attention_mask.npy")
assert (ids[1, :3] == 1).all() and ids[1, 3] != 1 and (mask[1] == [0, 0, 0, 1]).all(), (ids, mask)
assert np.load(f"{d}/b/past_key_values.0.key.npy").shape == (2, 4, 0, 16)
print("left padding: masks and pad tokens as documented")
EOF
  e2e_expect_fail 'would pad every position' \
    "$PY" "$TOOLS/make_inputs.py" "$j" --batch 2 --seq 2 --past 1 --left-pad 3 -o "$d/c" &&
    e2e_expect_fail 'give --past' "$PY" "$TOOLS/make_inputs.py" "$j" --batch 1 -o "$d/c"
}
e2e_case "make_inputs: left padding, empty past, errors" left_pad

# ---- ortrun.js: every .npy dtype round-trips; bad input is refused clearly ----------------
ortrun_io() {
  local d="$W/ortrun"
  "$PY" - "$d" <<'EOF' || return 1
import sys, os, numpy as np, onnx
from onnx import helper, TensorProto as T
d = sys.argv[1]; os.makedirs(f"{d}/in", exist_ok=True)
types = {"f32": (T.FLOAT, np.float32), "f64": (T.DOUBLE, np.float64), "i64": (T.INT64, np.int64),
         "i32": (T.INT32, np.int32), "b": (T.BOOL, np.bool_), "u8": (T.UINT8, np.uint8)}
shapes = {"f32": [2, 3, 4], "f64": [5], "i64": [2, 0], "i32": [], "b": [3, 1], "u8": [7]}
declared = dict(shapes, i64=["n", "m"])   # symbolic: the -i test feeds another shape
nodes, ins, outs = [], [], []
rng = np.random.default_rng(0)
for k, (tt, dt) in types.items():
    nodes.append(helper.make_node("Identity", [k], [f"out_{k}"]))
    ins.append(helper.make_tensor_value_info(k, tt, declared[k]))
    outs.append(helper.make_tensor_value_info(f"out_{k}", tt, declared[k]))
    a = (rng.standard_normal(shapes[k]) * 1000).astype(dt)
    if k == "i64": a = np.zeros(shapes[k], np.int64)
    if k == "b": a = np.array([[True], [False], [True]])
    if k == "i32": a = np.array(-123456, np.int32)
    np.save(f"{d}/in/{k}.npy", a)
m = helper.make_model(helper.make_graph(nodes, "io", ins, outs), opset_imports=[helper.make_opsetid("", 14)])
onnx.save(m, f"{d}/io.onnx")
np.save(f"{d}/big.npy", np.array([[2**62, -2**62]], np.int64))
with open(f"{d}/bad.npy", "wb") as f: f.write(b"not a numpy file")
np.save(f"{d}/f16.npy", np.zeros(3, np.float16))
np.save(f"{d}/fortran.npy", np.asfortranarray(np.zeros((2, 3), np.float32)))
with open(f"{d}/trunc.npy", "wb") as f: f.write(open(f"{d}/in/f32.npy", "rb").read()[:-4])
EOF
  node "$TOOLS/ort/ortrun.js" "$d/io.onnx" --inputs "$d/in" -o "$d/out" || return 1
  "$PY" - "$d" <<'EOF' || return 1
import sys, os, numpy as np
d = sys.argv[1]
for f in sorted(os.listdir(f"{d}/in")):
    a, b = np.load(f"{d}/in/{f}"), np.load(f"{d}/out/out_{f}")
    assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), (f, a, b)
    print(f"{f[:-4]:4s} {str(a.dtype):8s} {list(a.shape)} round-trips exactly")
EOF
  # -i form, overriding one file of --inputs; int64 beyond 2^53 must survive
  node "$TOOLS/ort/ortrun.js" "$d/io.onnx" --inputs "$d/in" -i "i64=$d/big.npy" -o "$d/out2" &&
    "$PY" -c "import numpy as np,sys; a=np.load(sys.argv[1]); assert a.tolist()==[[2**62,-2**62]], a; print('int64 2^62 exact')" \
      "$d/out2/out_i64.npy" || return 1
  local O="node $TOOLS/ort/ortrun.js $d/io.onnx"
  mkdir -p "$d/partial" && cp "$d/in/f32.npy" "$d/partial/"
  e2e_expect_fail "missing model input\(s\): f64" $O --inputs "$d/partial" -o "$d/x" &&
    e2e_expect_fail "not a valid .npy file" $O --inputs "$d/in" -i "f32=$d/bad.npy" -o "$d/x" &&
    e2e_expect_fail "needs 96 data bytes, the file has 92" $O --inputs "$d/in" -i "f32=$d/trunc.npy" -o "$d/x" &&
    e2e_expect_fail "unsupported dtype '<f2'" $O --inputs "$d/in" -i "f32=$d/f16.npy" -o "$d/x" &&
    e2e_expect_fail "Fortran-order" $O --inputs "$d/in" -i "f32=$d/fortran.npy" -o "$d/x" &&
    e2e_expect_fail "the model has no input 'nope'" $O --inputs "$d/in" -i "nope=$d/bad.npy" -o "$d/x" &&
    e2e_expect_fail "onnxruntime run failed" $O --inputs "$d/in" -i "f64=$d/in/f32.npy" -o "$d/x" &&
    e2e_expect_fail "cannot load the model" node "$TOOLS/ort/ortrun.js" "$d/bad.npy" --inputs "$d/in" -o "$d/x" &&
    e2e_expect_fail "no output folder" $O --inputs "$d/in"
}
e2e_case "ortrun.js: .npy round trip for f32/f64/i64/i32/bool/u8; clear errors" ortrun_io

# ---- e2e_check.py fails when it should ----------------------------------------------------
check_fails() {
  local d="$W/chk" j="$W/models/tiny-14-past.json"
  "$PY" "$TOOLS/make_inputs.py" "$j" --batch 2 --seq 3 --past 2 -o "$d/in" &&
    e2e_ort "${j%.json}.onnx" "$d/in" "$d/ort" || return 1
  "$PY" - "$d" <<'EOF' || return 1
import sys, shutil, numpy as np
d = sys.argv[1]
def variant(name, edit):
    shutil.copytree(f"{d}/ort", f"{d}/{name}")
    edit(f"{d}/{name}")
def bump(p):   # logits off by 2x the tolerance at one element
    a = np.load(f"{p}/logits.npy"); a[1, 2, 3] += 2e-4 * np.abs(a).max(); np.save(f"{p}/logits.npy", a)
def tiny(p):   # within tolerance
    a = np.load(f"{p}/logits.npy"); a[0, 0, 0] += 0.5e-4 * np.abs(a).max(); np.save(f"{p}/logits.npy", a)
def nan(p):
    a = np.load(f"{p}/present.1.value.npy"); a[0, 0, 0, 0] = np.nan; np.save(f"{p}/present.1.value.npy", a)
def shape(p):
    a = np.load(f"{p}/logits.npy"); np.save(f"{p}/logits.npy", a[:, :2])
def dtype(p):
    a = np.load(f"{p}/logits.npy"); np.save(f"{p}/logits.npy", a.astype(np.float64))
import os
variant("bump", bump); variant("tiny", tiny); variant("nan", nan); variant("shape", shape); variant("dtype", dtype)
variant("missing", lambda p: os.remove(f"{p}/present.0.key.npy"))
EOF
  local C="$PY $TOOLS/e2e_check.py"
  echo "identical:"; $C "$d/ort" "$d/ort" || return 1
  # (captured, not piped into grep -q: grep would close the pipe at its first match)
  local within
  echo "within tolerance:"; within=$($C "$d/tiny" "$d/ort") || return 1
  grep -q '^logits: .* OK$' <<<"$within" || return 1
  e2e_expect_fail '^logits: max \|bqc - onnxruntime\| = .* FAIL at \[1, 2, 3\]' $C "$d/bump" "$d/ort" &&
    e2e_expect_fail '^present.1.value: 1 NaN difference' $C "$d/nan" "$d/ort" &&
    e2e_expect_fail '^logits: shape \[2, 2, 512\] \(bqc\) vs \[2, 3, 512\] \(onnxruntime\) FAIL' $C "$d/shape" "$d/ort" &&
    e2e_expect_fail '^logits: dtype float64' $C "$d/dtype" "$d/ort" &&
    e2e_expect_fail '^present.0.key: missing from bqc output FAIL' $C "$d/missing" "$d/ort" &&
    e2e_expect_fail 'no bqc binary|not executable' env BQC= $C --decode 1 --model "${j%.json}.onnx" --inputs "$d/in"
}
e2e_case "e2e_check.py: passes equal outputs, fails on mismatch/NaN/shape/dtype/missing" check_fails

e2e_finish
