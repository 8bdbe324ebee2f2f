#!/usr/bin/env bash
# Aggregation and query benchmark (issue 4): ingests N symbols (default 100) x 2024 with the
# fake provider once, then, in the same run on the same 1m files, times
#   1. `mp aggregate` (5m, 15m, 1h, 1d from scratch) against DuckDB's SQL (time_bucket,
#      arg_min/arg_max) and polars' group_by_dynamic doing the same work and writing the
#      same zstd Parquet partitions (scripts/bench_aggregate_reference.py);
#   2. `mp query` printing one symbol's year of 1m bars as CSV against DuckDB and polars
#      printing the same rows.
# Each figure is the best of RUNS (default 3) wall times, with that run's peak RSS.
# Needs Python with duckdb and polars (`pip install duckdb polars`).
# MP_BIN=path uses an already built binary. MP_BENCH_NO_QUERY=1 builds `mp` without DuckDB (--no-default-features: a release build of
# bundled DuckDB takes about 40 minutes on 2 cores) and skips part 2.
#
#   scripts/bench-aggregate.sh [SYMBOLS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
symbols_n="${1:-100}"
runs="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/marketpipe/target}"
no_query="${MP_BENCH_NO_QUERY:-0}"
if [ -n "${MP_BIN:-}" ]; then
  mp=$MP_BIN # an already built release binary
elif [ "$no_query" = 1 ]; then
  cargo build --release --locked -p mp --no-default-features --quiet
  mp="$CARGO_TARGET_DIR/release/mp"
else
  cargo build --release --locked -p mp --quiet
  mp="$CARGO_TARGET_DIR/release/mp"
fi
ref="$PWD/scripts/bench_aggregate_reference.py"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
symbols=$(for i in $(seq 1 "$symbols_n"); do printf 'SYM%03d,' "$i"; done)
symbols=${symbols%,}
bars=$("$mp" -q --data-dir "$work/source" ingest --provider fake --symbols "$symbols" \
  --start 2024-01-01 --end 2024-12-31 | awk '$1 == "bars" {print $2}')

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "lake: $symbols_n symbols x 2024, $bars 1m bars, $(du -sh "$work/source/lake" | cut -f1)"
python3 -c 'import duckdb, polars; print(f"references: python duckdb {duckdb.__version__}, polars {polars.__version__}")'

# best NAME COMMAND...: runs COMMAND $runs times from a fresh copy of the 1m lake (so every
# run aggregates from scratch), prints the best wall time and that run's peak RSS.
best() {
  local name=$1 best_s="" best_rss=""
  shift
  for _ in $(seq 1 "$runs"); do
    rm -rf "$work/run" && cp -r "$work/source" "$work/run" && mkdir -p "$work/run/out"
    sync
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/stdout"
    read -r secs rss_kib <"$work/time"
    if [ -z "$best_s" ] || awk -v a="$secs" -v b="$best_s" 'BEGIN {exit !(a < b)}'; then
      best_s=$secs best_rss=$rss_kib
    fi
  done
  awk -v n="$name" -v s="$best_s" -v r="$best_rss" -v b="$count" 'BEGIN {
    printf "%-28s %7.2f s  %9.0f rows/s  peak RSS %5.0f MiB\n", n, s, b / s, r / 1024 }'
  echo "$best_s" >"$work/last"
}

echo
echo "== aggregate 5m,15m,1h,1d: $bars 1m bars (rows/s = 1m bars read per second) =="
count=$bars
best "mp aggregate" "$mp" -q --data-dir "$work/run" aggregate --concurrency "${MP_BENCH_CONCURRENCY:-2}"
mp_s=$(cat "$work/last")
tail -n +1 "$work/stdout" | sed 's/^/    /'
best "duckdb (time_bucket SQL)" python3 "$ref" aggregate duckdb "$work/run/lake" "$work/run/out"
duck_s=$(cat "$work/last")
best "polars (group_by_dynamic)" python3 "$ref" aggregate polars "$work/run/lake" "$work/run/out"
polars_s=$(cat "$work/last")
awk -v m="$mp_s" -v d="$duck_s" -v p="$polars_s" 'BEGIN {
  f = d < p ? d : p; printf "ratio mp / faster reference: %.2f\n", m / f }'

[ "$no_query" = 1 ] && exit 0
sql="select * from bars_1m where symbol = 'SYM001' order by ts"
echo
echo "== query: one symbol's year of 1m bars as CSV ($sql) =="
count=$((bars / symbols_n))
best "mp query --format csv" "$mp" -q --data-dir "$work/run" query "$sql" --format csv
mp_s=$(cat "$work/last")
echo "    rows: $(($(wc -l <"$work/stdout") - 1))"
best "duckdb (COPY ... TO csv)" python3 "$ref" query duckdb "$work/run/lake" SYM001
duck_s=$(cat "$work/last")
best "polars (scan + write_csv)" python3 "$ref" query polars "$work/run/lake" SYM001
polars_s=$(cat "$work/last")
awk -v m="$mp_s" -v d="$duck_s" -v p="$polars_s" 'BEGIN {
  f = d < p ? d : p; printf "ratio mp / faster reference: %.2f\n", m / f }'
