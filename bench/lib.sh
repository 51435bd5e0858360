# bench/lib.sh — shared plumbing for the benchmark scripts (sourced).
#
# Each benchmark writes one section of docs/benchmarks.md between markers
#   <!-- bench:NAME --> ... <!-- /bench:NAME -->
# so scripts can be re-run independently and the file keeps every other section.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DOC=$BENCH_ROOT/docs/benchmarks.md
PY=/usr/bin/python3

bench_machine() {
  local cpu
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  printf '%s, %s cores, %s GiB RAM, %s' "$cpu" "$(nproc)" \
    "$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)" "$(uname -sr)"
}

# bench_section NAME FILE — replace (or append) section NAME of docs/benchmarks.md with FILE
bench_section() {
  local name=$1 body=$2
  [ -f "$BENCH_DOC" ] || printf '# Benchmarks\n\nEvery table here is written by a script in bench/; re-run it to refresh its section.\n' >"$BENCH_DOC"
  "$PY" - "$BENCH_DOC" "$name" "$body" <<'PY'
import re, sys
doc, name, body = sys.argv[1], sys.argv[2], open(sys.argv[3]).read().rstrip() + "\n"
text = open(doc).read()
begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
block = f"{begin}\n{body}{end}\n"
if begin in text and end in text:
    text = re.sub(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", lambda m: block, text, flags=re.S)
else:
    text = text.rstrip() + "\n\n" + block
open(doc, "w").write(text)
PY
}
