#!/usr/bin/env bash
# test_quant.sh — `bqc quant` reproduces every worked example of ../shared/formats.md
# character for character (the printed text is compared, not parsed), its --codes and
# --stats lines, the printing rule against Python's repr, and its errors: one line with the
# offending format or token, exit status 2 for the command line and 1 for the input.
source "$(dirname "$0")/lib.sh"
e2e_require_bqc

W=$E2E_WORK

# expect_out FORMAT INPUT WANT [FLAGS...] — stdout of `bqc quant -f FORMAT FLAGS < INPUT` is WANT
expect_out() {
  local fmt=$1 input=$2 want=$3; shift 3
  local got
  got=$(printf '%s\n' "$input" | "$BQC" quant -f "$fmt" "$@") || { echo "exit status $?"; return 1; }
  if [ "$got" != "$want" ]; then
    echo "bqc quant -f $fmt $* printed something else (< expected, > got):"
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$got")
    return 1
  fi
}

# expect_error STATUS LINES PATTERN INPUT ARGS... — exit STATUS, LINES lines on stderr, the
# first matching PATTERN (grep -E), nothing on stdout, nothing that looks like a crash
expect_error() {
  local want_status=$1 want_lines=$2 pattern=$3 input=$4; shift 4
  printf '%s' "$input" | "$BQC" quant "$@" >"$W/stdout" 2>"$W/stderr"
  local status=$? lines
  lines=$(wc -l <"$W/stderr")
  cat "$W/stderr"
  [ "$status" -eq "$want_status" ] || { echo "exit status $status, expected $want_status"; return 1; }
  [ "$lines" -eq "$want_lines" ] || { echo "$lines lines on stderr, expected $want_lines"; return 1; }
  head -1 "$W/stderr" | grep -Eq -- "$pattern" || { echo "first line does not match /$pattern/"; return 1; }
  [ ! -s "$W/stdout" ] || { echo "unexpected output on stdout"; return 1; }
  ! grep -Eqi 'sanitizer|segmentation|internal error|aborted' "$W/stderr" || { echo "looks like a crash"; return 1; }
}

X='1.0 -0.3 0.05 2.5'
lines() { printf '%s\n' "$@"; }

worked_bfp() {
  expect_out bfp4/16 "$X" "$(lines 1.0 -0.5 0.0 2.5)" &&
    expect_out bfp5/16 "$X" "$(lines 1.0 -0.25 0.0 2.5)" &&
    expect_out bfp6/16 "$X" "$(lines 1.0 -0.25 0.0 2.5)" &&
    expect_out bfp8/16 "$X" "$(lines 1.0 -0.3125 0.0625 2.5)"
}
worked_bfp_codes() {   # the "signed q" column and E = 2; the dot product's weights (E = 0, -1.0 saturates)
  expect_out bfp4/16 "$X" "$(lines '# block 0: E=2 (0x81) codes 2 -1 0 5' 1.0 -0.5 0.0 2.5)" --codes &&
    expect_out bfp5/16 "$X" "$(lines '# block 0: E=2 (0x81) codes 4 -1 0 10' 1.0 -0.25 0.0 2.5)" --codes &&
    expect_out bfp6/16 "$X" "$(lines '# block 0: E=2 (0x81) codes 8 -2 0 20' 1.0 -0.25 0.0 2.5)" --codes &&
    expect_out bfp8/16 "$X" "$(lines '# block 0: E=2 (0x81) codes 32 -10 2 80' 1.0 -0.3125 0.0625 2.5)" --codes &&
    expect_out bfp6/16 '0.5 0.25 -1.0 0.125' "$(lines '# block 0: E=0 (0x7f) codes 16 8 -31 4' 0.5 0.25 -0.96875 0.125)" --codes
}
worked_mx() {
  expect_out mxint8 "$X" "$(lines '# block 0: S=1 (0x80) codes 32 -10 2 80' 1.0 -0.3125 0.0625 2.5)" --codes &&
    expect_out mxfp8e4m3 "$X" "$(lines '# block 0: S=-7 (0x78) codes 112 226 77 122' 1.0 -0.3125 0.05078125 2.5)" --codes &&
    expect_out mxfp6e2m3 "$X" "$(lines '# block 0: S=-1 (0x7e) codes 16 37 1 26' 1.0 -0.3125 0.0625 2.5)" --codes &&
    expect_out mxfp4 "$X" "$(lines '# block 0: S=-1 (0x7e) codes 4 9 0 6' 1.0 -0.25 0.0 2.0)" --codes &&
    expect_out mxfp8e4m3 '1.9 0.5 -1.0 0.01' "$(lines 1.75 0.5 -1.0 0.009765625)"
}
worked_nf4() {
  expect_out nf4/64 "$X" "$(lines '# block 0: absmax=2.5 (0x40200000) codes 12 6 7 15' \
    1.1017745733261108 -0.22762508690357208 0.0 2.5)" --codes &&
    expect_out nf4 "$X" "$(lines 1.1017745733261108 -0.22762508690357208 0.0 2.5)"
}
codes_blocks() {   # a short last block; a power-of-two max saturating; int's fp16 d; plain codes
  expect_out bfp4/8 "$(seq 1 10)" "$(lines '# block 0: E=3 (0x82) codes 1 2 3 4 5 6 7 7' \
    1.0 2.0 3.0 4.0 5.0 6.0 7.0 7.0 '# block 1: E=4 (0x83) codes 4 5' 8.0 10.0)" --codes &&
    expect_out int4/32 '7 2.5 3.5 -0.5' "$(lines '# block 0: d=1.0 (0x3c00) codes 7 2 4 0' 7.0 2.0 4.0 0.0)" --codes &&
    expect_out fp16 '1 65520' "$(lines '# block 0: code 0x3c00' 1.0 '# block 1: code 0x7c00' inf)" --codes
}
nonfinite() {   # an activation block with NaN or Inf is all NaN, with the family's NaN marker
  expect_out bfp6/16 '1 nan 2' "$(lines '# block 0: E=nan (0xff) codes 0 0 0' nan nan nan)" --codes &&
    expect_out mxfp4 '1 -inf 2' "$(lines '# block 0: S=nan (0xff) codes 0 0 0' nan nan nan)" --codes &&
    expect_out nf4/64 'inf 1' "$(lines '# block 0: absmax=nan (0x7fc00000) codes 7 7' nan nan)" --codes &&
    expect_out fp32 '1 inf -inf nan' "$(lines 1.0 inf -inf nan)"
}
stats() {
  expect_out bfp6/16 "$X" "$(lines 1.0 -0.25 0.0 2.5 '# n=4 sqnr_db=31.67 bpw=6.5')" --stats &&
    expect_out bfp6/16 '3 1' "$(lines 3.0 1.0 '# n=2 sqnr_db=inf bpw=6.5')" --stats &&
    expect_out mxfp4 "$X" "$(lines '# block 0: S=-1 (0x7e) codes 4 9 0 6' 1.0 -0.25 0.0 2.0 '# n=4 sqnr_db=14.59 bpw=4.25')" --codes --stats &&
    expect_out nf4/64 "$X" "$(lines 1.1017745733261108 -0.22762508690357208 0.0 2.5 '# n=4 sqnr_db=26.08 bpw=4.5')" --stats &&
    expect_out int4/32 '7 -3' "$(lines 7.0 -3.0 '# n=2 sqnr_db=inf bpw=4.5')" --stats
}
printing_rule() {   # fp32 values print exactly as Python's repr of the float32 widened to double
  local nums
  nums=$("$PY" -c '
import random, struct
random.seed(7)
xs = [0.0, -0.0, 1.0, 0.1, 1e-5, 1e-4, 123456.0, 1e16, 1e15, 3.4e38, 1.4e-45, 2.5e-40, -7.25]
xs += [random.uniform(-1, 1) * 10 ** random.randint(-30, 30) for _ in range(300)]
print(" ".join(repr(x) for x in xs))') || { echo "$PY failed"; return 1; }
  local want
  want=$("$PY" -c '
import struct, sys
for t in sys.argv[1].split():
    print(repr(struct.unpack("f", struct.pack("f", float(t)))[0]))' "$nums")
  expect_out fp32 "$nums" "$want"
}
whitespace() {   # any whitespace separates; tabs, CRLF, blank lines
  expect_out bfp6/16 "$(printf '1.0\t-0.3\r\n\n 0.05   2.5')" "$(lines 1.0 -0.25 0.0 2.5)"
}

e2e_case "formats.md BFP table" worked_bfp
e2e_case "formats.md BFP codes and dot-product weights" worked_bfp_codes
e2e_case "formats.md MX table, mxfp4 tie, e4m3 saturation" worked_mx
e2e_case "formats.md NF4 example" worked_nf4
e2e_case "--codes: blocks, short last block, int d, plain codes" codes_blocks
e2e_case "NaN/Inf activation blocks" nonfinite
e2e_case "--stats" stats
e2e_case "printing rule = Python repr of the float32" printing_rule
e2e_case "whitespace" whitespace
e2e_case "unknown format" expect_error 2 1 "^bqc: error: unknown format 'bfq6'; valid formats: .*bfp<w>/<B>.*mxfp4.*nf4/<B>" '1' -f bfq6
e2e_case "bad width" expect_error 2 1 "^bqc: error: bfp width 9 is outside 3\.\.8; valid formats: " '1' -f bfp9/16
e2e_case "bad block" expect_error 2 1 "^bqc: error: bfp block 12 is not a power of two in 8\.\.256" '1' -f bfp6/12
e2e_case "MX fixed block" expect_error 2 1 "^bqc: error: mxfp has a fixed block of 32" '1' -f mxfp4/16
e2e_case "MX element type" expect_error 2 1 "^bqc: error: mxfp6 needs an element type \(mxfp6e3m2, mxfp6e2m3\)" '1' -f mxfp6
e2e_case "not a number" expect_error 1 1 "^bqc: error: stdin:1:5: 'abc' is not a number \(value 2\)$" '1.0 abc 3' -f bfp6/16
e2e_case "not a number, line 2" expect_error 1 1 "^bqc: error: stdin:2:3: '3x' is not a number \(value 3\)$" $'1\n2 3x\n' -f int8/32
e2e_case "out of range" expect_error 1 1 "^bqc: error: stdin:1:3: '1e40' is out of the float range \(value 2\)$" '1 1e40' -f fp32
e2e_case "missing -f" expect_error 2 2 "^bqc: error: quant needs -f FORMAT$" '1'
e2e_case "unknown option" expect_error 2 2 "^bqc: error: unknown quant option '--bogus'$" '1' -f bfp6/16 --bogus
e2e_finish
