#!/usr/bin/env bash
# bench/accuracy.sh — the accuracy table (docs/accuracy.md): perplexity, Δ vs fp32, KL, top-1,
# average bpw and memory density of every format family the paper compares, its coarse
# baselines, mixed plans and variance-aware blocks, on the trained byte-level OPT
# (models/opt-wt2.pt) and its outlier copy, over WikiText-2 test.
#
#   bash bench/accuracy.sh                 # the default slice: 64 windows spread over test.txt
#   bash bench/accuracy.sh --windows 8     # a quicker look (the doc says which slice it holds)
#   bash bench/accuracy.sh --full          # every window of test.txt (several hours on 2 cores)
#   bash bench/accuracy.sh --out /tmp/acc.md
#
# It exports both models (tools/models.py, cached under $BQC_BUILD_DIR/models), writes the
# plans under $BQC_BUILD_DIR/accuracy/ (not committed), tunes the variance-aware plans'
# SQNR target to the bits of fixed B = 16 (bqc --report=json), scores every plan of a model
# in one `bqc eval` process (both models side by side, one core each), and writes the doc
# with the model's provenance. bench/accuracy.py does the work; this script finds the pieces.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$BENCH_ROOT"
: "${BQC_BUILD_DIR:=$BENCH_ROOT/build}"
: "${BQC:=$BQC_BUILD_DIR/bqc}"
export BQC_BUILD_DIR
[ -x "$BQC" ] || { echo "bench: no bqc at $BQC: build it (cmake --build build) or set BQC" >&2; exit 1; }
echo "bench: exporting the trained model and its outlier copy (tools/models.py, cached)"
mapfile -t models < <("$PY" tools/models.py --which both --opset 17)
[ "${#models[@]}" -eq 2 ] || { echo "bench: tools/models.py did not give two models" >&2; exit 1; }
exec "$PY" bench/accuracy.py --bqc "$BQC" --natural "${models[0]}" --outliers "${models[1]}" \
  --work "$BQC_BUILD_DIR/accuracy" "$@"
