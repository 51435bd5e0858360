#!/usr/bin/env bash
# test_eval.sh — `bqc eval`: perplexity on hand-checkable models, windowing, errors, and
# "deployed == predicted": for three plans, the generated C code's numbers on a slice of
# WikiText-2 test equal the interpreter's to the last printed digit.
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
e2e_finish
