#!/usr/bin/env bash
# test_eval.sh — `bqc eval`: perplexity on hand-checkable models, windowing, errors, and
# "deployed == predicted": for three plans, the generated C code's numbers on a slice of
# WikiText-2 test equal the interpreter's to the last printed digit. Several plans in one
# process score exactly as one run per plan (and with --exec=c as the interpreter), and a
# "row" block (one scale per row of K) resolves per matmul.
source "$(dirname "$0")/lib.sh"
e2e_require_tools
e2e_require_bqc

W=$E2E_WORK
TEST_TXT=/work/shared/data/wikitext-2/test.txt
[ -f "$TEST_TXT" ] || TEST_TXT=$BQC_SOURCE_DIR/../shared/data/wikitext-2/test.txt

# A model whose logits are a table row per input token: Gather(table [260, 260], ids).
table_model() {  # OUT.ir PYTHON-EXPR-FOR-THE-TABLE
  "$PY" - "$1" "$2" <<'PY'
import sys, numpy as np
out, expr = sys.argv[1], sys.argv[2]
V = 260
table = eval(expr, {"np": np, "V": V}).astype(np.float32)
vals = ", ".join("%.9g" % x for x in table.ravel())
open(out, "w").write(f"""opset 17
sym batch, seq
graph @main(%input_ids: i64[batch, seq], %attention_mask: i64[batch, seq]) -> (%logits) {{
  %table = const f32[{V}, {V}] [{vals}]
  %logits = Gather(%table, %input_ids) : f32[batch, seq, {V}]
}}
""")
PY
}

uniform() {
  table_model "$W/uniform.ir" "np.zeros((V, V))" &&
    printf 'abcdefghijklmnopqrstuvwxyz0123456789' >"$W/t.txt" &&
    "$BQC" eval "$W/uniform.ir" --text "$W/t.txt" --ctx 8 --json >"$W/u.json" && cat "$W/u.json" &&
    "$PY" - "$W/u.json" <<'PY'
import json, sys, math
r = json.load(open(sys.argv[1]))
assert r["windows"] == 4 and r["predictions"] == 4 * 7, r          # 36 bytes = 4 windows of 8
assert abs(r["perplexity"] - 260) < 1e-3, r                        # uniform over 260 ids
assert abs(r["bits_per_byte"] - math.log2(260)) < 1e-5, r
assert r["kl"] == 0 and r["top1"] == 100, r
print("uniform logits: perplexity 260, bits/byte log2(260)")
PY
}

bigram() {  # next byte after 'a' is 'b' with logit ln 3 (others 0); after 'b', 'a' likewise
  table_model "$W/bigram.ir" \
    "(lambda t: (t.__setitem__((ord('a')+4, ord('b')+4), np.log(3)), t.__setitem__((ord('b')+4, ord('a')+4), np.log(3)), t)[-1])(np.zeros((V, V)))" &&
    printf 'abababababababab' >"$W/ab.txt" &&
    "$BQC" eval "$W/bigram.ir" --text "$W/ab.txt" --ctx 4 --json >"$W/b.json" && cat "$W/b.json" &&
    "$PY" - "$W/b.json" <<'PY'
import json, sys, math
r = json.load(open(sys.argv[1]))
p = 3 / (3 + 259)                       # every prediction is the favoured byte
assert r["predictions"] == 4 * 3, r
assert abs(r["perplexity"] - 1 / p) < 1e-3, r
print(f"bigram: perplexity {r['perplexity']:.4f} = 1/p with p = 3/262")
PY
}

limit_and_errors() {
  local two
  two=$("$BQC" eval "$W/uniform.ir" --text "$W/t.txt" --ctx 8 --limit 2 --json) && grep -q '"windows": 2' <<<"$two" &&
    echo "--limit 2: 2 windows" &&
    e2e_expect_fail "shorter than one window of 64 tokens" "$BQC" eval "$W/uniform.ir" --text "$W/t.txt" --ctx 64 &&
    e2e_expect_fail "context length: give --ctx" "$BQC" eval "$W/uniform.ir" --text "$W/t.txt" &&
    e2e_expect_fail "no text \(--text FILE\)" "$BQC" eval "$W/uniform.ir" --ctx 8 &&
    e2e_expect_fail "cannot open '/nonexistent.txt'" "$BQC" eval "$W/uniform.ir" --text /nonexistent.txt --ctx 8
}

trained() {
  "$PY" "$TOOLS/models.py" --which original --opset 17 2>/dev/null | tail -1
}

deployed_equals_predicted() {  # PLAN-JSON
  local plan="$W/plan.json" m
  m=$(trained) || return 1
  printf '%s\n' "$1" >"$plan"
  "$BQC" eval "$m" -plan "$plan" --text "$TEST_TXT" --limit 4 >"$W/interp.txt" || return 1
  "$BQC" eval "$m" -plan "$plan" --text "$TEST_TXT" --limit 4 --exec=c >"$W/c.txt" || return 1
  cat "$W/c.txt"
  diff "$W/interp.txt" "$W/c.txt" && echo "generated code == interpreter, to the last printed digit"
}

# Plans for the multi-plan cases: W6A6 bfp6/16, vector-wise int8 W8A8 (one scale per row,
# P·V over the whole window: 256 keys), int4/32 weights with fp32 activations.
write_plans() {
  printf '%s\n' '{"default": {"weight": "bfp6/16", "input": "bfp6/16"}}' >"$W/p_bfp6.json"
  printf '%s\n' '{"default": {"weight": "int8/row", "input": "int8/row"},
    "rules": [{"kind": "attn_pv", "input": "int8/256", "weight": {"format": "int", "width": 8, "block": 256}}]}' >"$W/p_row.json"
  printf '%s\n' '{"rules": [{"kind": "linear", "weight": "int4/32"}, {"kind": "lm_head", "weight": "int4/32"}]}' >"$W/p_w4.json"
}

# Several plans in one process: each plan's scores are those of a run with that plan alone,
# to the last printed digit (text and JSON), and its bpw and density are --report's.
multi_equals_single() {
  local m p
  m=$(trained) || return 1
  write_plans
  local args=(--text "$TEST_TXT" --limit 3 --spread --batch 2)
  "$BQC" eval "$m" -plan "$W/p_bfp6.json" --plans "$W/p_row.json,$W/p_w4.json" "${args[@]}" >"$W/multi.txt" || return 1
  "$BQC" eval "$m" -plan "$W/p_bfp6.json" --plan "$W/p_row.json" -plan "$W/p_w4.json" "${args[@]}" --json >"$W/multi.json" || return 1
  cat "$W/multi.txt"
  [ "$(wc -l <"$W/multi.txt")" -eq 4 ] && [ "$(wc -l <"$W/multi.json")" -eq 3 ] || { echo "expected a header and 3 lines, and 3 JSON lines"; return 1; }
  for p in bfp6 row w4; do
    "$BQC" eval "$m" -plan "$W/p_$p.json" "${args[@]}" >"$W/single_$p.txt" || return 1
    "$BQC" eval "$m" -plan "$W/p_$p.json" "${args[@]}" --json >"$W/single_$p.json" || return 1
    "$BQC" "$m" -plan "$W/p_$p.json" --report=json --report-seq 256 >"$W/report_$p.json" || return 1
    grep -qF "$W/p_$p.json: $(sed -n 2p "$W/single_$p.txt")  weight bpw" "$W/multi.txt" ||
      { echo "plan $p: the multi-plan line differs from the single run:"; cat "$W/single_$p.txt"; return 1; }
  done
  "$PY" - "$W" <<'PY'
import json, sys
w = sys.argv[1]
multi = [json.loads(l) for l in open(f"{w}/multi.json")]
for r, p in zip(multi, ["bfp6", "row", "w4"]):
    single = json.load(open(f"{w}/single_{p}.json"))
    for k, v in single.items():
        assert r[k] == v, (p, k, r[k], v)
    s = json.load(open(f"{w}/report_{p}.json"))["summary"]
    for k, rk in [("weight_bpw", "weight_bpw"), ("activation_bpw", "activation_bpw"), ("memory_density", "memory_density")]:
        assert abs(r[rk] - s[k]) < 5e-7, (p, k, r[rk], s[k])
    assert r["density_seq"] == 256 and r["plan"].endswith(f"p_{p}.json")
    print(f"{p}: ppl {r['perplexity']:.6f}  KL {r['kl']:.8f}  W {r['weight_bpw']:.4f}  A {r['activation_bpw']:.4f}  density {r['memory_density']:.4f} == single run and --report")
PY
}

# --exec=c takes several plans too: every plan's generated code scores what the interpreter does.
multi_exec_c() {
  local m
  m=$(trained) || return 1
  write_plans
  local args=(-plan "$W/p_row.json" -plan "$W/p_bfp6.json" --text "$TEST_TXT" --limit 2)
  "$BQC" eval "$m" "${args[@]}" >"$W/mi.txt" && "$BQC" eval "$m" "${args[@]}" --exec=c >"$W/mc.txt" || return 1
  cat "$W/mc.txt"
  diff "$W/mi.txt" "$W/mc.txt" && echo "two plans: generated code == interpreter, to the last printed digit"
}

# "row": one block per row of K — in_features for a Linear, the head size for Q·Kᵀ.
row_blocks() {
  local m
  m=$(trained) || return 1
  write_plans
  "$BQC" "$m" -plan "$W/p_row.json" --emit=plan -o "$W/resolved.json" || return 1
  "$PY" - "$W/resolved.json" <<'PY' || return 1
import json, sys
rules = json.load(open(sys.argv[1]))["rules"]
seen = {}
for r in rules:
    name = r["match"].replace("\\", "")
    kind = "fc2" if "/fc2/" in name else "qk" if r["kind"] == "attn_qk" else "pv" if r["kind"] == "attn_pv" else "k256"
    seen.setdefault(kind, set()).update({r["input"], r["weight"]})
want = {"k256": {"int8/256"}, "fc2": {"int8/1024"}, "qk": {"int8/64"}, "pv": {"int8/256"}}
assert seen == want, seen
print("resolved: q/k/v/out, fc1, lm_head int8/256 (K = 256), fc2 int8/1024, Q·Kᵀ int8/64 (head size)")
PY
  # the resolved plan is the same model: the same numbers
  "$BQC" eval "$m" -plan "$W/p_row.json" --text "$TEST_TXT" --limit 2 >"$W/r1.txt" &&
    "$BQC" eval "$m" -plan "$W/resolved.json" --text "$TEST_TXT" --limit 2 >"$W/r2.txt" || return 1
  diff <(tail -1 "$W/r1.txt") <(tail -1 "$W/r2.txt") && tail -1 "$W/r1.txt" || return 1
  printf '%s\n' '{"rules": [{"kind": "attn_pv", "input": "int8/row"}]}' >"$W/p_pv.json"
  e2e_expect_fail "attn_pv input format int8/row needs a fixed K" "$BQC" eval "$m" -plan "$W/p_pv.json" --text "$TEST_TXT" --limit 1 &&
    printf '%s\n' '{"default": {"weight": "bfp8/row"}}' >"$W/p_bfp.json" &&
    e2e_expect_fail "default.weight: error: bfp has no block 'row'" "$BQC" "$m" -plan "$W/p_bfp.json" --report
}

multi_errors() {
  local m
  m=$(trained) || return 1
  write_plans
  e2e_expect_fail "option '--plans' needs a value" "$BQC" eval "$m" --text "$TEST_TXT" --plans &&
    e2e_expect_fail "--plans: an empty plan name" "$BQC" eval "$m" --text "$TEST_TXT" --plans "$W/p_row.json,,x" &&
    e2e_expect_fail "--spread spreads --limit W windows" "$BQC" eval "$m" --text "$TEST_TXT" --spread &&
    e2e_expect_fail "bqc eval takes --exec=interp or --exec=c" "$BQC" eval "$m" --text "$TEST_TXT" --exec=llvm &&
    e2e_expect_fail "/nonexistent.json: error: cannot read the plan" "$BQC" eval "$m" --text "$TEST_TXT" --limit 1 \
      -plan "$W/p_row.json" -plan /nonexistent.json
}

ctx_too_long() {
  local m
  m=$(trained) || return 1
  e2e_expect_fail "exceeds the model's 256 positions" "$BQC" eval "$m" --text "$TEST_TXT" --ctx 300
}

e2e_case "uniform logits: perplexity = vocabulary size" uniform
e2e_case "bigram: perplexity by hand" bigram
e2e_case "--limit, and errors" limit_and_errors
e2e_case "deployed == predicted: W6A6 bfp6/16" deployed_equals_predicted \
  '{"default": {"weight": "bfp6/16", "input": "bfp6/16"}}'
e2e_case "deployed == predicted: W4A4 bfp4/16, lm_head bfp8/16" deployed_equals_predicted \
  '{"default": {"weight": "bfp4/16", "input": "bfp4/16"}, "rules": [{"kind": "lm_head", "weight": "bfp8/16", "input": "bfp8/16"}]}'
e2e_case "deployed == predicted: int4/32 weights, mxint8 activations, attention mxfp8" deployed_equals_predicted \
  '{"default": {"weight": "int4/32", "input": "mxint8"}, "rules": [{"kind": "attn_qk", "input": "mxfp8e4m3", "weight": "mxfp8e4m3"}]}'
e2e_case "--ctx longer than the model's positions" ctx_too_long
e2e_case "several plans in one process == one run per plan (scores, bpw, density)" multi_equals_single
e2e_case "several plans with --exec=c == the interpreter" multi_exec_c
e2e_case "block \"row\": one scale per row of K (int8 W8A8, vector-wise)" row_blocks
e2e_case "several plans: errors" multi_errors
e2e_finish
