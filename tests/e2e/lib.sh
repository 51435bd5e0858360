# tests/e2e/lib.sh — shell helpers shared by the end-to-end tests (sourced, not run).
#
# The e2e tests export OPT graphs with PyTorch (tools/export_opt.py), make inputs
# (tools/make_inputs.py), run them through bqc and through onnxruntime-node
# (tools/ort/ortrun.js) and compare (tools/e2e_check.py). This file holds the plumbing:
# locations (CTest sets BQC, BQC_SOURCE_DIR and BQC_BUILD_DIR; by hand they default to this
# checkout and its build/), a cache of exported models keyed by the export arguments and the
# exporter's own source, a work folder kept only when something fails, and e2e_case, which
# runs one named case, times it and records PASS/FAIL so one failure does not hide the rest.

set -uo pipefail

E2E_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${BQC_SOURCE_DIR:=$(cd "$E2E_LIB_DIR/../.." && pwd)}"
: "${BQC_BUILD_DIR:=$BQC_SOURCE_DIR/build}"
: "${BQC:=$BQC_BUILD_DIR/bqc}"
export BQC BQC_SOURCE_DIR BQC_BUILD_DIR

PY=/usr/bin/python3          # Debian's python3: the one with torch, onnx and numpy
TOOLS=$BQC_SOURCE_DIR/tools
E2E_MODELS=${BQC_MODEL_CACHE:-$BQC_BUILD_DIR/e2e-models}   # scripts/test shares one cache between builds
E2E_NAME=$(basename "${0%.sh}")
E2E_PASSED=()
E2E_FAILED=()
E2E_T0=$SECONDS

say() { printf '%s: %s\n' "$E2E_NAME" "$*"; }
die() {
  printf '%s: error: %s\n' "$E2E_NAME" "$*" >&2
  [ -n "${E2E_WORK:-}" ] && rmdir "$E2E_WORK" 2>/dev/null
  exit 1
}

# Fail early and clearly when a prerequisite is missing (never "pass" by skipping work).
e2e_require_tools() {
  [ -x "$PY" ] || die "$PY not found: run scripts/setup (python3-torch python3-onnx python3-numpy)"
  command -v node >/dev/null || die "node not found: run scripts/setup"
  [ -f "$TOOLS/ort/node_modules/onnxruntime-node/package.json" ] ||
    die "onnxruntime-node is not installed in tools/ort/node_modules: run scripts/setup"
}
e2e_require_bqc() {
  [ -n "$BQC" ] && [ -x "$BQC" ] ||
    die "bqc binary not found at '$BQC': build it (cmake --build build) or set \$BQC"
}

# One work folder per script run; removed at the end unless a case failed.
E2E_WORK=$(mkdir -p "$BQC_BUILD_DIR/e2e-work" && mktemp -d "$BQC_BUILD_DIR/e2e-work/$E2E_NAME.XXXXXX") ||
  die "cannot create a work folder under $BQC_BUILD_DIR/e2e-work"

# e2e_export NAME EXPORT_ARGS... — print the path of NAME.onnx, exported with EXPORT_ARGS
# (export_opt.py options, without -o) unless the cache already has it. The cache key is the
# arguments plus a hash of the exporter's sources, so editing the exporter re-exports.
e2e_export() {
  local name=$1; shift
  local src_hash key dir
  src_hash=$(cat "$TOOLS/export_opt.py" "$TOOLS/opt_model.py" | sha1sum | cut -c1-10)
  key=$(printf '%s' "$*" | tr -s ' /=' '___' | tr -cd 'A-Za-z0-9_.+-')
  dir="$E2E_MODELS/$name${key:+_$key}-$src_hash"
  if [ ! -f "$dir/$name.onnx" ]; then
    # exports made by an older exporter can never be hit again: drop them
    find "$E2E_MODELS" -mindepth 1 -maxdepth 1 -type d ! -name "*-$src_hash" ! -name '.tmp.*' \
      -exec rm -rf {} + 2>/dev/null
    local tmp
    mkdir -p "$E2E_MODELS" && tmp=$(mktemp -d "$E2E_MODELS/.tmp.XXXXXX") || return 1
    say "export $name: export_opt.py $*" >&2
    if ! "$PY" "$TOOLS/export_opt.py" "$@" -o "$tmp/$name.onnx" >"$tmp/export.log" 2>&1; then
      cat "$tmp/export.log" >&2
      rm -rf "$tmp"
      return 1
    fi
    # atomic publish: a concurrent test exporting the same model just loses the race
    mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
  fi
  printf '%s\n' "$dir/$name.onnx"
}

# e2e_model_json MODEL.onnx — the .json export_opt.py writes next to the model
e2e_model_json() { printf '%s\n' "${1%.onnx}.json"; }

e2e_inputs() {  # e2e_inputs MODEL.onnx DIR make_inputs-args...
  local model=$1 dir=$2; shift 2
  "$PY" "$TOOLS/make_inputs.py" "$(e2e_model_json "$model")" -o "$dir" "$@"
}
e2e_ort() {     # e2e_ort MODEL.onnx INDIR OUTDIR
  node "$TOOLS/ort/ortrun.js" "$1" --inputs "$2" -o "$3" --threads 1
}
e2e_bqc() {     # e2e_bqc MODEL.onnx INDIR OUTDIR
  echo "+ bqc run $(basename "$1") --inputs $(basename "$2") -o $(basename "$3")"
  "$BQC" run "$1" --inputs "$2" -o "$3"
}
e2e_compare() { # e2e_compare BQC_OUT ORT_OUT
  "$PY" "$TOOLS/e2e_check.py" "$1" "$2"
}

# e2e_run_compare MODEL.onnx TAG make_inputs-args... — inputs, bqc, onnxruntime, compare
e2e_run_compare() {
  local model=$1 tag=$2; shift 2
  local d="$E2E_WORK/$tag"
  e2e_inputs "$model" "$d/in" "$@" &&
    e2e_bqc "$model" "$d/in" "$d/bqc" &&
    e2e_ort "$model" "$d/in" "$d/ort" &&
    e2e_compare "$d/bqc" "$d/ort"
}

# e2e_case NAME CMD ARGS... — run one case, indenting its output; record the verdict.
# E2E_FILTER=REGEX runs only the matching cases (by hand, while debugging; cases may need
# models an earlier case exported).
e2e_case() {
  local name=$1; shift
  local t0=$SECONDS status
  if [ -n "${E2E_FILTER:-}" ] && ! grep -Eq -- "$E2E_FILTER" <<<"$name"; then
    return 0
  fi
  say "--- $name"
  ( set -o pipefail; "$@" ) 2>&1 | sed 's/^/    /'
  status=${PIPESTATUS[0]}
  if [ "$status" -eq 0 ]; then
    say "PASS $name ($((SECONDS - t0)) s)"
    E2E_PASSED+=("$name")
  else
    say "FAIL $name ($((SECONDS - t0)) s, exit $status)"
    E2E_FAILED+=("$name")
  fi
}

# e2e_expect_fail NAME PATTERN CMD ARGS... — CMD must fail and print PATTERN (grep -E)
e2e_expect_fail() {
  local pattern=$1; shift
  local out
  if out=$("$@" 2>&1); then
    printf '%s\n' "$out"
    echo "expected a failure, but the command succeeded: $*"
    return 1
  fi
  printf '%s\n' "$out"
  if ! grep -Eq -- "$pattern" <<<"$out"; then
    echo "the failure message does not match /$pattern/"
    return 1
  fi
}

# e2e_finish — summary line, exit status; keeps the work folder when something failed
e2e_finish() {
  local total=$((${#E2E_PASSED[@]} + ${#E2E_FAILED[@]}))
  if [ "$total" -eq 0 ]; then
    say "no cases ran"; exit 1
  fi
  if [ "${#E2E_FAILED[@]}" -gt 0 ]; then
    say "${#E2E_FAILED[@]} of $total cases FAILED in $((SECONDS - E2E_T0)) s:"
    printf '  %s\n' "${E2E_FAILED[@]}"
    say "inputs and outputs kept in $E2E_WORK"
    exit 1
  fi
  rm -rf "$E2E_WORK"
  say "all $total cases passed in $((SECONDS - E2E_T0)) s"
  exit 0
}
