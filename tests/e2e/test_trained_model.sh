#!/usr/bin/env bash
# test_trained_model.sh — the committed trained OPT (models/opt-wt2.pt), its outlier copy and the
# byte vocabulary, without bqc.
#
# The byte vocabulary round-trips text and cuts perplexity windows as documented; the perplexity
# function gives hand-computed values; the checkpoint is small, matches its provenance .json and
# beats the unigram baseline on test.txt; tools/models.py exports it (and the outlier copy) at
# opsets 14 and 17, and onnxruntime's logits on windows of test.txt agree with PyTorch's
# (max |diff| <= 1e-4 * max |logit|); the outlier copy computes the same logits (1e-5 relative,
# in PyTorch and in onnxruntime) while its chosen channels really are >= 10x the others.
# BQC_TRAINED_CKPT=path.pt tests another checkpoint (with its .json next to it).
source "$(dirname "$0")/lib.sh"

e2e_require_tools
W=$E2E_WORK
CKPT=${BQC_TRAINED_CKPT:-$BQC_SOURCE_DIR/models/opt-wt2.pt}
TEST_TXT=/work/shared/data/wikitext-2/test.txt
[ -f "$CKPT" ] || die "$CKPT: missing (it is committed; tools/train_opt.py makes it)"
[ -f "$TEST_TXT" ] || die "$TEST_TXT: missing"

py() { "$PY" - "$TOOLS" "$@"; }   # py ARGS... <<'EOF' (sys.argv[1] is tools/)

# ---- the byte vocabulary ------------------------------------------------------------------
vocab() {
  py <<'EOF'
import sys; sys.path.insert(0, sys.argv[1])
import bytevocab as bv
assert (bv.S_ID, bv.PAD_ID, bv.EOS_ID, bv.UNK_ID, bv.BYTE_OFFSET, bv.VOCAB_SIZE) == (0, 1, 2, 3, 4, 260)
assert bv.encode("Hi\n") == [72 + 4, 105 + 4, 10 + 4]
for text in ("", "Homarus gammarus , known as the European lobster", "naïve café — 東京 🦞\n\t"):
    ids = bv.encode(text)
    assert len(ids) == len(text.encode("utf-8")) and all(4 <= i < 260 for i in ids)
    assert bv.decode(ids) == text, text
every = bytes(range(256))
assert bv.decode_bytes(bv.encode(every)) == every and bv.encode(every) == list(range(4, 260))
assert bv.decode([2, 76, 0, 109, 1, 3]) == "Hi", "specials must be dropped"
assert bv.decode(bv.encode(b"\xff")) == "\ufffd"
assert [bv.token_str(i) for i in (0, 1, 2, 3, 4 + 65, 4 + 10)] == ["<s>", "<pad>", "</s>", "<unk>", "A", "\\x0a"]
try:
    bv.decode([260]); raise SystemExit("id 260 accepted")
except ValueError as e:
    print(f"out-of-range id refused: {e}")
# windows: 10 tokens, ctx 4 -> [0,4) [4,8) [8,10): 3 + 3 + 1 scored; 9 tokens: [8,9) is dropped
assert bv.eval_windows(10, 4) == [(0, 4), (4, 4), (8, 2)] and bv.scored_tokens(10, 4) == 7
assert bv.eval_windows(9, 4) == [(0, 4), (4, 4)] and bv.scored_tokens(9, 4) == 6
print("byte vocabulary: specials 0-3, byte b = b + 4, UTF-8 round trip, all 256 bytes, windows: OK")
EOF
}
e2e_case "byte vocabulary: ids, round trip, specials, windows" vocab

# ---- perplexity on cases computable by hand -----------------------------------------------
ppl_hand() {
  py <<'EOF'
import sys; sys.path.insert(0, sys.argv[1])
import math, torch, train_opt, bytevocab as bv
V = bv.VOCAB_SIZE
# uniform logits: perplexity is exactly the vocabulary size, 8 bits/byte-ish (log2 260)
ids = torch.tensor(bv.encode("abcdefghij"))
nll, n = train_opt.window_nll(lambda x: torch.zeros(*x.shape, V), ids, ctx=4)
assert n == 7 and abs(bv.ppl_from_nll(nll, n) - V) < 1e-9, (n, bv.ppl_from_nll(nll, n))
assert abs(bv.bits_per_byte(nll, n) - math.log2(V)) < 1e-12
# 3 tokens "abc", one window: the model gives p(b | a) = 1/2 and p(c | a b) = 1/4
a, b, c = bv.encode("abc")
def logits(x):
    out = torch.full((*x.shape, V), -math.inf, dtype=torch.float64)
    out[0, 0, b] = out[0, 0, a] = 0.0            # position 0: b and a, 1/2 each
    out[0, 1, c] = 0.0; out[0, 1, [5, 6, 7]] = 0.0  # position 1: c and 3 others, 1/4 each
    out[0, 2, :] = 0.0                            # position 2 predicts nothing (window end)
    return out
nll, n = train_opt.window_nll(logits, torch.tensor([a, b, c]), ctx=256)
want = math.exp((math.log(2) + math.log(4)) / 2)   # exp(mean NLL) = sqrt(8)
assert n == 2 and abs(bv.ppl_from_nll(nll, n) - want) < 1e-12, (n, nll)
assert abs(bv.bits_per_byte(nll, n) - 1.5) < 1e-12
# unigram fitted on "aab": add-one over 256 bytes -> p(a) = 3/259, p(b) = 2/259
lp = train_opt.unigram_logprobs(torch.tensor(bv.encode("aab")))
assert abs(lp[a].exp().item() - 3 / 259) < 1e-15 and abs(lp[b].exp().item() - 2 / 259) < 1e-15
assert lp[:4].eq(-math.inf).all() and abs(lp.exp().sum().item() - 1) < 1e-12
print(f"uniform: ppl {V}; 'abc' with p = 1/2, 1/4: ppl sqrt(8) = {want:.6f}, 1.5 bits/byte; unigram add-one: OK")
EOF
}
e2e_case "perplexity = exp(mean NLL) on hand-computed cases; unigram smoothing" ppl_hand

# ---- the checkpoint and its provenance ----------------------------------------------------
checkpoint() {
  py "$CKPT" "$TEST_TXT" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1])
import hashlib, json, os, torch, opt_model, train_opt, bytevocab as bv
ck, test = sys.argv[2], sys.argv[3]
size = os.path.getsize(ck)
assert size < 30e6, f"{ck} is {size / 1e6:.1f} MB (limit 30 MB)"
prov = json.load(open(ck[:-3] + ".json"))
assert hashlib.sha256(open(ck, "rb").read()).hexdigest() == prov["checkpoint_sha256"], "checkpoint != its .json"
cfg = opt_model.OPTConfig.from_dict(opt_model.checkpoint_config(ck))
assert cfg.to_dict() == prov["config"] and cfg.vocab_size == bv.VOCAB_SIZE and cfg.do_layer_norm_before
m = opt_model.OPTForCausalLM(cfg).eval()
opt_model.load_weights(m, ck)
assert all(v.dtype == torch.float32 for v in m.state_dict().values())
assert opt_model.num_parameters(m) == prov["parameters"]
for k in ("command", "seed", "steps", "train_seconds", "final_train_loss", "test_perplexity",
          "test_bits_per_byte", "unigram_perplexity"):
    assert k in prov, f"provenance lacks {k}"
assert prov["test_perplexity"] < 0.5 * prov["unigram_perplexity"], prov
# the loaded weights are the trained ones: 8 windows of test.txt, well below the unigram model
torch.set_num_threads(2)
ids = torch.tensor(bv.read_ids(test))
train = torch.tensor(bv.read_ids(train_opt.DATA_DIR + "/valid.txt"))
r = train_opt.evaluate(m, ids, train, cfg.max_position_embeddings, limit=8)
print(f"{os.path.basename(ck)}: {size / 1e6:.1f} MB, {prov['parameters']} parameters; provenance: test ppl "
      f"{prov['test_perplexity']:.3f} ({prov['test_bits_per_byte']:.3f} bits/byte) vs unigram {prov['unigram_perplexity']:.3f}")
print(f"first 8 windows of test.txt: ppl {r['test_perplexity']:.3f}, unigram {r['unigram_perplexity']:.3f}")
assert r["test_perplexity"] < 0.5 * r["unigram_perplexity"], r
EOF
}
e2e_case "checkpoint: < 30 MB, fp32, matches its provenance, beats the unigram model" checkpoint

# ---- export through tools/models.py -------------------------------------------------------
MODELS_OUT=$W/models.txt
export_models() {
  "$PY" "$TOOLS/models.py" --checkpoint "$CKPT" --which both --opset 14 --opset 17 >"$MODELS_OUT" || return 1
  cat "$MODELS_OUT"
  [ "$(wc -l <"$MODELS_OUT")" -eq 4 ] || { echo "expected 4 exported models"; return 1; }
  local m
  while read -r m; do [ -f "$m" ] && [ -f "${m%.onnx}.json" ] || { echo "missing $m or its .json"; return 1; }; done <"$MODELS_OUT"
  echo "a second call is served from the cache:"
  "$PY" "$TOOLS/models.py" --checkpoint "$CKPT" --which both --opset 14 --opset 17 2>&1 >/dev/null | tee "$W/again.log"
  ! grep -q exporting "$W/again.log" && grep -q cached "$W/again.log"
}
e2e_case "models.py: exports the checkpoint and its outlier copy at opsets 14 and 17 (cached)" export_models

# ---- onnxruntime vs PyTorch on windows of test.txt ----------------------------------------
ort_vs_torch() {
  [ -s "$MODELS_OUT" ] || { echo "no exports (the export case failed)"; return 1; }
  local copy
  copy=$("$PY" "$TOOLS/models.py" --checkpoint "$CKPT" --which outliers --checkpoint-only 2>/dev/null) || return 1
  py "$TEST_TXT" "$W/ort" "$MODELS_OUT" "$CKPT" "$copy" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1])
import os, numpy as np, torch, make_outliers, e2e_check, bytevocab as bv
test, work, listing, ck, copy = sys.argv[2:7]
exports = open(listing).read().split()
torch.set_num_threads(2)
ids = np.array(bv.read_ids(test), dtype=np.int64)
ok, ort_logits = True, {}
for path in exports:
    name = os.path.basename(path)[:-5]
    # each export against the checkpoint it was made from
    model = make_outliers.load(copy if "-outliers" in name else ck)
    ctx = model.config.max_position_embeddings
    # two full windows (the 1st and the 100th) and a short one
    feeds = [{"input_ids": np.stack([ids[:ctx], ids[99 * ctx:100 * ctx]])},
             {"input_ids": ids[None, 5000:5037].copy()}]
    for n, f in enumerate(feeds):
        f["attention_mask"] = np.ones_like(f["input_ids"])
        d = os.path.join(work, f"{name}-{n}")
        os.makedirs(os.path.join(d, "in"), exist_ok=True)
        for k, v in f.items():
            np.save(os.path.join(d, "in", k + ".npy"), v)
        e2e_check.run_ort(path, os.path.join(d, "in"), os.path.join(d, "ort"))
        got = e2e_check.load_dir(os.path.join(d, "ort"))["logits"]
        with torch.no_grad():
            ref = model(torch.from_numpy(f["input_ids"]), torch.from_numpy(f["attention_mask"]))[0].numpy()
        good, line, _, _ = e2e_check.compare_one("logits", got, ref, "onnxruntime", "torch")
        print(f"{name} {list(f['input_ids'].shape)}: {line}")
        ok &= good
        ort_logits[(name, n)] = got
# in onnxruntime too, the outlier copy's logits equal the original's (same opset, same inputs)
for (name, n), got in sorted(ort_logits.items()):
    if "-outliers" in name:
        ref = ort_logits[(name.replace("-outliers", ""), n)]
        rel = float(np.abs(got - ref).max() / np.abs(ref).max())
        print(f"{name} vs original, onnxruntime, input {n}: max |diff| / max |logit| = {rel:.1e}"
              f"{'' if rel <= 1e-5 else ' FAIL (limit 1e-5)'}")
        ok &= rel <= 1e-5
sys.exit(0 if ok else 1)
EOF
}
e2e_case "onnxruntime == PyTorch (1e-4 * max|logit|) on test.txt windows; outlier copy == original" ort_vs_torch

# ---- the outlier copy in PyTorch: same function, large channels ---------------------------
outliers() {
  local copy
  copy=$("$PY" "$TOOLS/models.py" --checkpoint "$CKPT" --which outliers --checkpoint-only) || return 1
  py "$CKPT" "$copy" "$TEST_TXT" <<'EOF'
import sys; sys.path.insert(0, sys.argv[1])
import torch, make_outliers as mo
ck, copy, test = sys.argv[2:5]
torch.set_num_threads(2)
meta = torch.load(copy)["outliers"]
orig, out = mo.load(ck), mo.load(copy)
chans, alpha = meta["channels"], meta["alpha"]
assert alpha == 40 and len(chans) == orig.config.num_hidden_layers and all(len(c) == 6 for c in chans), meta
ids = mo.sample_ids(test, orig.config.max_position_embeddings, 4)
ref, st0 = mo.activation_stats(orig, ids, chans)
got, st1 = mo.activation_stats(out, ids, chans)
rel = ((got - ref).abs().max() / ref.abs().max()).item()
print(f"channels {chans[0]} (every layer), alpha {alpha:g}")
print(f"logits on 4 x {ids.shape[1]} bytes of test.txt: max |copy - original| / max |original| = {rel:.2e}")
print(f"max |chosen| / max |other| per LayerNorm output: original min {mo.min_ratio(st0):.2f}x, "
      f"copy {' '.join(f'{v[0] / v[1]:.1f}x' for v in st1.values())}")
# exactly the planted weights changed
sd0, sd1 = orig.state_dict(), out.state_dict()
changed = sorted(k for k in sd0 if not torch.equal(sd0[k], sd1[k]))
want = sorted(f"model.decoder.layers.{i}.{n}" for i in range(len(chans)) for n in (
    "self_attn_layer_norm.weight", "self_attn_layer_norm.bias", "final_layer_norm.weight",
    "final_layer_norm.bias", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
    "self_attn.v_proj.weight", "fc1.weight"))
assert changed == want, sorted(set(changed) ^ set(want))
assert rel <= 1e-5, f"the outlier copy is not functionally identical ({rel:.2e})"
assert mo.min_ratio(st1) >= 10, f"outlier channels only {mo.min_ratio(st1):.2f}x the others"
print("functionally identical, outliers >= 10x, only the planted weights changed: OK")
EOF
}
e2e_case "outlier copy: logits == original (1e-5 rel), chosen channels >= 10x the rest" outliers

# ---- make_outliers.py refuses what it cannot do -------------------------------------------
outliers_refuse() {
  py "$W/post" <<'EOF' || return 1
import sys; sys.path.insert(0, sys.argv[1])
import os, opt_model
os.makedirs(sys.argv[2], exist_ok=True)
m = opt_model.OPTForCausalLM(opt_model.OPTConfig(**opt_model.PRESETS["tiny-post"]))
opt_model.randomize_all(m, 1)
opt_model.save_checkpoint(m, f"{sys.argv[2]}/post.pt")
EOF
  e2e_expect_fail 'post-LN' "$PY" "$TOOLS/make_outliers.py" "$W/post/post.pt" -o "$W/post/x.pt" &&
    e2e_expect_fail 'channels must be in' "$PY" "$TOOLS/make_outliers.py" "$CKPT" --channels 0 -o "$W/post/x.pt"
}
e2e_case "make_outliers.py: refuses post-LN models and bad options" outliers_refuse

e2e_finish
