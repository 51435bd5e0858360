#!/usr/bin/env bash
# test_opt_variants.sh — bqc run against onnxruntime on every OPT graph variant we export.
#
# For opsets 13, 14, 17 x {tiny (pre-LN), tiny-post (post-LN + project_in/out)}:
#   no past:   batch 1, and batch 2 with left padding: bqc vs onnxruntime on the logits;
#   with past: prefill from an empty past + 3 greedy decode steps (each runtime fed its own
#              presents), every step compared, and the last step checked against one no-past
#              forward over the whole sequence (same seed, so same weights); plus one run
#              from a random past of length 4 with left padding.
# Then optimum's merged decoder (If on use_cache_branch), both branches and a decode that
# prefills through one and continues through the other, and a model whose
# weights live in an external, 64-byte aligned data file.
# Tolerance everywhere: max |bqc - onnxruntime| <= 1e-4 * max |reference|.
source "$(dirname "$0")/lib.sh"

e2e_require_tools
e2e_require_bqc
say "bqc: $BQC"
say "models cached in $E2E_MODELS"

decode_case() {  # decode_case PAST_MODEL NOPAST_MODEL TAG make_inputs-args...
  local past=$1 nopast=$2 tag=$3; shift 3
  local d="$E2E_WORK/$tag"
  e2e_inputs "$past" "$d/prefill" --past 0 "$@" &&
    "$PY" "$TOOLS/e2e_check.py" --decode 3 --model "$past" --inputs "$d/prefill" \
      --consistency "$nopast" --bqc "$BQC" --work "$d/steps"
}

for opset in 13 14 17; do
  for arch in tiny tiny-post; do
    v="opset$opset/$arch"
    plain=$(e2e_export "$arch" --preset "$arch" --opset "$opset" --seed 7) || {
      E2E_FAILED+=("$v: export"); continue; }
    past=$(e2e_export "$arch-past" --preset "$arch" --opset "$opset" --seed 7 --with-past) || {
      E2E_FAILED+=("$v: export --with-past"); continue; }
    tag=${v//\//-}
    e2e_case "$v no-past, batch 1, seq 7" \
      e2e_run_compare "$plain" "$tag-b1" --batch 1 --seq 7 --seed 1
    e2e_case "$v no-past, batch 2, seq 7, left pad 3" \
      e2e_run_compare "$plain" "$tag-b2" --batch 2 --seq 7 --left-pad 3 --seed 2
    e2e_case "$v with-past, batch 1: prefill 5 + 3 decode steps + consistency" \
      decode_case "$past" "$plain" "$tag-dec1" --batch 1 --seq 5 --seed 3
    e2e_case "$v with-past, batch 2, left pad 2: prefill 5 + 3 decode steps + consistency" \
      decode_case "$past" "$plain" "$tag-dec2" --batch 2 --seq 5 --left-pad 2 --seed 4
    e2e_case "$v with-past, batch 2, random past 4, seq 3, left pad 2" \
      e2e_run_compare "$past" "$tag-past4" --batch 2 --past 4 --seq 3 --left-pad 2 --seed 5
  done
done

merged=$(e2e_export tiny-merged --preset tiny --opset 14 --seed 7 --merged) || E2E_FAILED+=("merged: export")
if [ -n "${merged:-}" ]; then
  e2e_case "merged opset14/tiny, use_cache_branch false (batch 2, seq 6, left pad 2)" \
    e2e_run_compare "$merged" merged-false --batch 2 --seq 6 --past 0 --left-pad 2 --use-cache-branch false --seed 6
  e2e_case "merged opset14/tiny, use_cache_branch true (batch 2, past 4, seq 2, left pad 2)" \
    e2e_run_compare "$merged" merged-true --batch 2 --seq 2 --past 4 --left-pad 2 --use-cache-branch true --seed 7
  plain14=$(e2e_export tiny --preset tiny --opset 14 --seed 7) &&
    e2e_case "merged opset14/tiny: prefill (false) + 3 decode steps (true) + consistency" \
      decode_case "$merged" "$plain14" merged-dec --batch 2 --seq 5 --left-pad 1 --use-cache-branch false --seed 8
fi

# ffn 300: fc1's bias (1200 bytes) is not a multiple of 64, so the data file has padding.
ext=$(e2e_export tiny-post-ext --preset tiny-post --opset 17 --seed 7 --ffn 300 --external-data) ||
  E2E_FAILED+=("external data: export")
if [ -n "${ext:-}" ]; then
  e2e_case "external data opset17/tiny-post (batch 2, seq 6, left pad 1)" \
    e2e_run_compare "$ext" ext --batch 2 --seq 6 --left-pad 1 --seed 8
fi

e2e_finish
