#!/usr/bin/env bash
# End-to-end ingest benchmark: N symbols (default 100) x calendar year 2024 with the fake
# provider into a fresh lake, in release mode. Prints bars, seconds, bars/s and peak RSS.
#
#   scripts/bench-ingest.sh [SYMBOLS] [CONCURRENCY] [RUNS]
#
# Results and the machine they were measured on go into docs/performance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
symbols_n="${1:-100}"
concurrency="${2:-4}"
runs="${3:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marketpipe/target}"
cargo build --release --locked -p mp --quiet
mp="$CARGO_TARGET_DIR/release/mp"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$symbols_n"); do printf 'SYM%03d\n' "$i"; done >"$work/symbols.txt"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "command: mp ingest --provider fake --symbols-file <$symbols_n symbols> --start 2024-01-01 --end 2024-12-31 --concurrency $concurrency"
for run in $(seq 1 "$runs"); do
  data="$work/data-$run"
  /usr/bin/time -f '%e %M' -o "$work/time" \
    "$mp" -q --data-dir "$data" ingest --provider fake --symbols-file "$work/symbols.txt" \
    --start 2024-01-01 --end 2024-12-31 --concurrency "$concurrency" >"$work/out"
  read -r secs rss_kib <"$work/time"
  bars=$(awk '/bars / {print $2}' "$work/out")
  inner=$(awk '/elapsed/ {print $2}' "$work/out")
  awk -v b="$bars" -v s="$secs" -v i="$inner" -v r="$rss_kib" -v n="$run" 'BEGIN {
    printf "run %d: %d bars in %.2f s wall (%.2f s in the job): %.0f bars/s wall, %.0f bars/s job, peak RSS %.0f MiB\n",
      n, b, s, i, b / s, b / i, r / 1024 }'
  rm -rf "$data"
done
