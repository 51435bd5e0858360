#!/usr/bin/env bash
# test_bench.sh — `bqc bench`: a small shape of each kind of fast kernel runs and reports
# (text and --json), the pair without a fast kernel says it falls back, --peaks reports, and
# bad input (an unknown format, blocks that differ, a bad or missing shape, a plain weight
# format, unknown flags) is one error line naming what is wrong, the usage, exit status 2.
source "$(dirname "$0")/lib.sh"
e2e_require_bqc

# expect_status STATUS PATTERN CMD... — CMD exits with STATUS and its stderr's first line matches
expect_status() {
  local want=$1 pattern=$2 out status; shift 2
  out=$("$@" 2>&1 >/dev/null); status=$?
  printf '%s\n' "$out"
  [ "$status" -eq "$want" ] || { echo "exit status $status, expected $want"; return 1; }
  head -1 <<<"$out" | grep -Eq -- "$pattern" || { echo "first line does not match /$pattern/"; return 1; }
}

runs() {
  local f out
  for f in bfp8/16 bfp6/16 bfp4/16 int4/32 mxint8 mxfp4; do
    out=$("$BQC" bench -f "$f" -m 3 -n 40 -k 200 --repeats 1 --json) || return 1
    grep -q "\"weight\": \"$f\"" <<<"$out" && grep -q '"kernel": "integer vpdpbusd' <<<"$out" ||
      { echo "$f: $out"; return 1; }
  done
  out=$("$BQC" bench -f nf4/64 -a fp32 -m 1 -n 40 -k 200 --repeats 1) || return 1
  grep -q "fp32 chain" <<<"$out" && grep -q "weight GB/s / read bandwidth" <<<"$out" || { echo "$out"; return 1; }
  out=$("$BQC" bench -f mxfp8e5m2 -m 1 -n 16 -k 64 --repeats 1) || return 1
  grep -q "bq_qmatmul (no fast kernel for this pair)" <<<"$out" || { echo "$out"; return 1; }
  BQC_ISA=portable "$BQC" bench -f bfp6/16 -m 2 -n 20 -k 48 --repeats 1 | grep -q "portable" || return 1
  echo "every kernel kind runs and reports (text, --json, fallback, BQC_ISA=portable)"
}
e2e_case "bqc bench runs every kernel kind" runs

peaks() {
  local out
  out=$("$BQC" bench --peaks --repeats 1 --json) || return 1
  grep -Eq '"read_gbs": [0-9.]+, "vnni_int8_gops": [0-9.]+, "fma_fp32_gflops": [0-9.]+' <<<"$out" || { echo "$out"; return 1; }
  echo "$out"
}
if [ "$("$BQC" bench -f bfp8/16 -m 1 -n 16 -k 16 --repeats 1 | grep -c avx512)" -gt 0 ]; then
  e2e_case "bqc bench --peaks" peaks
fi

errors() {
  expect_status 2 "unknown format 'bfq6'" "$BQC" bench -f bfq6 -m 1 -n 16 -k 16 &&
    expect_status 2 "bfp width 9 is outside" "$BQC" bench -f bfp9/16 -m 1 -n 16 -k 16 &&
    expect_status 2 "blocks differ" "$BQC" bench -f bfp6/16 -a bfp6/32 -m 1 -n 16 -k 16 &&
    expect_status 2 "must be a block format, not 'fp32'" "$BQC" bench -f fp32 -m 1 -n 16 -k 16 &&
    expect_status 2 "-n needs a positive integer, not '0'" "$BQC" bench -f bfp6/16 -m 1 -n 0 -k 16 &&
    expect_status 2 "-k needs a positive integer, not '12x'" "$BQC" bench -f bfp6/16 -m 1 -n 16 -k 12x &&
    expect_status 2 "the shape needs -m, -n and -k" "$BQC" bench -f bfp6/16 -m 1 -n 16 &&
    expect_status 2 "no weight format" "$BQC" bench -m 1 -n 16 -k 16 &&
    expect_status 2 "missing value after '-f'" "$BQC" bench -f &&
    expect_status 2 "unknown option '--bogus'" "$BQC" bench --bogus &&
    expect_status 2 "--peaks takes only" "$BQC" bench --peaks -f bfp6/16 &&
    expect_status 2 "--threads needs 1..256" "$BQC" bench -f bfp6/16 -m 1 -n 16 -k 16 --threads 999 &&
    echo "bad formats, shapes and flags: one named error, the usage, exit 2"
}
e2e_case "bqc bench errors name what is wrong" errors
e2e_finish
