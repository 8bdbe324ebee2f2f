#!/usr/bin/env bash
# Validation benchmark: ingests N symbols (default 100) x 2024 with the fake provider once,
# then times `mp validate` over the whole lake (read every stored bar, apply every rule,
# write one CSV report and one metadata summary per symbol), in release mode.
#
#   scripts/bench-validate.sh [SYMBOLS] [CONCURRENCY] [RUNS]
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
symbols=$(for i in $(seq 1 "$symbols_n"); do printf 'SYM%03d,' "$i"; done)
symbols=${symbols%,}
"$mp" -q --data-dir "$work/data" ingest --provider fake --symbols "$symbols" \
  --start 2024-01-01 --end 2024-12-31 >/dev/null

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "command: mp validate --symbols <$symbols_n symbols> --start 2024-01-01 --end 2024-12-31 --concurrency $concurrency"
for run in $(seq 1 "$runs"); do
  /usr/bin/time -f '%e %M' -o "$work/time" \
    "$mp" -q --data-dir "$work/data" validate --symbols "$symbols" \
    --start 2024-01-01 --end 2024-12-31 --concurrency "$concurrency" >"$work/out"
  read -r secs rss_kib <"$work/time"
  head -1 "$work/out"
  bars=$(awk 'NR == 1 {print $5}' "$work/out")
  awk -v b="$bars" -v s="$secs" -v r="$rss_kib" -v n="$run" 'BEGIN {
    printf "run %d: %d bars in %.2f s wall: %.0f bars/s, peak RSS %.0f MiB\n", n, b, s, b / s, r / 1024 }'
done
