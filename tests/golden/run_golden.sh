#!/usr/bin/env bash
# run_golden.sh — the golden test of one pass: every tests/golden/<pass>/<case>.ir goes through
# `bqc <case>.ir --passes=<pass> --verify-each --emit=ir` and the printed IR must equal
# <case>.expected exactly. The first line of each side is ignored when it is a comment: bqc
# names the input path there, which differs between checkouts.
#
#   usage: run_golden.sh BQC PASS DIR
#
# A case with a <case>.err file is a failure case instead: bqc must fail (exit non-zero, not
# crash) and its stderr must contain every non-empty line of <case>.err (fixed strings).
# A <case>.args file holds extra bqc arguments (e.g. -plan plan.json --calib text.txt); such a
# case runs in its own folder, so the paths in it are relative to the case.
# BQC_UPDATE_GOLDEN=1 rewrites the .expected files from the current output (review the diff).
# A pass directory without cases fails: a pass without a golden test does not exist.
# Exit status: 0 when every case passes, 1 otherwise.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 BQC PASS DIR" >&2
    exit 1
fi
bqc=$1 pass=$2 dir=$3
update=${BQC_UPDATE_GOLDEN:-0}

shopt -s nullglob
cases=("$dir"/*.ir)
if [ ${#cases[@]} -eq 0 ]; then
    echo "run_golden: no golden cases for pass $pass (no $dir/*.ir)" >&2
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/golden.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

failed=0
fail() {
    echo "FAIL $pass/$1: $2"
    failed=$((failed + 1))
}

# The file without its first line if that line is a comment.
body() { sed '1{/^#/d}' "$1"; }

# A crash is never the expected failure: signals, sanitizers and unreachable() all count.
crashed() {
    [ "$1" -ge 128 ] || grep -qE 'Sanitizer|internal error' "$tmp/err"
}

check_failure_case() {
    local name=$1 errfile=$2 status=$3 missing=0 line
    if [ "$status" -eq 0 ]; then
        fail "$name" "bqc succeeded, but $name.err expects an error"
        return
    fi
    if crashed "$status"; then
        fail "$name" "bqc crashed (status $status):"
        sed 's/^/  /' "$tmp/err"
        return
    fi
    while IFS= read -r line || [ -n "$line" ]; do
        [ -n "$line" ] || continue
        if ! grep -qF -e "$line" "$tmp/err"; then
            [ $missing -eq 1 ] || fail "$name" "stderr lacks lines of $name.err"
            echo "  missing: $line"
            missing=1
        fi
    done <"$errfile"
    if [ $missing -eq 1 ]; then
        echo "  stderr was:"
        sed 's/^/  | /' "$tmp/err"
    else
        echo "PASS $pass/$name (fails as expected)"
    fi
}

check_output_case() {
    local name=$1 expected=$2 status=$3
    if [ "$status" -ne 0 ]; then
        fail "$name" "bqc failed (status $status):"
        sed 's/^/  | /' "$tmp/err"
        return
    fi
    if [ "$update" = 1 ]; then
        { echo "# $name.ir after --passes=$pass"; body "$tmp/out"; } >"$expected"
        echo "UPDATED $expected"
        return
    fi
    if [ ! -f "$expected" ]; then
        fail "$name" "no $name.expected (BQC_UPDATE_GOLDEN=1 writes it)"
        return
    fi
    body "$expected" >"$tmp/want"
    body "$tmp/out" >"$tmp/got"
    if cmp -s "$tmp/want" "$tmp/got"; then
        echo "PASS $pass/$name"
    else
        fail "$name" "output differs from $name.expected:"
        diff -u --label "$name.expected" --label "bqc output" "$tmp/want" "$tmp/got"
    fi
}

for ir in "${cases[@]}"; do
    stem=${ir%.ir}
    name=${stem##*/}
    if [ -f "$stem.args" ]; then
        read -r -a args <"$stem.args"
        (cd "$(dirname "$ir")" && "$(realpath "$bqc")" "$(realpath "$ir")" "${args[@]}" --passes="$pass" \
            --verify-each --emit=ir) >"$tmp/out" 2>"$tmp/err"
    else
        "$bqc" "$ir" --passes="$pass" --verify-each --emit=ir >"$tmp/out" 2>"$tmp/err"
    fi
    status=$?
    if [ -f "$stem.err" ]; then
        check_failure_case "$name" "$stem.err" "$status"
    else
        check_output_case "$name" "$stem.expected" "$status"
    fi
done

if [ $failed -ne 0 ]; then
    echo "golden $pass: $failed of ${#cases[@]} cases failed"
    exit 1
fi
echo "golden $pass: ${#cases[@]} cases passed"
exit 0
