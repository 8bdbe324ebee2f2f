#!/usr/bin/env bash
# What building a universe costs over a year of 500 symbols (fake provider, 2024: 6,000
# monthly 1m files, 48.9 M bars, 126,000 daily summaries): loading a 500-security Nasdaq
# Trader snapshot, then `mp universe build` with every lake filter (price, average dollar
# volume, average volume, top 500) — median of 5 — next to the same selection by one DuckDB
# query over the 1m files (tests/interop/universe_oracle.py), when Python's duckdb is there.
#
#   scripts/bench-universe.sh [MP_BINARY]   # default target/release/mp
# Build it first: cargo build --release -p mp --no-default-features
set -euo pipefail
mp=${1:-target/release/mp}
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data="$work/data"
symbols=$(for i in $(seq 1 500); do printf 'SYM%03d,' "$i"; done)
symbols=${symbols%,}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
timed() { # label, command...
  local label=$1
  shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || {
    echo "$label failed:" >&2
    cat "$work/err" >&2
    exit 1
  }
  read -r secs kib <"$work/time"
  printf '%-58s %8.2f s %8d MiB\n' "$label" "$secs" "$((kib / 1024))"
  echo "$secs" >"$work/last"
}
timed "ingest 500 symbols x 2024 (fake)" "$mp" -q --data-dir "$data" ingest --provider fake --symbols "$symbols" --start 2024-01-01 --end 2024-12-31
mkdir -p "$work/symdir"
{
  echo "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares"
  for i in $(seq 1 500); do printf 'SYM%03d|Sym %03d Inc. - Common Stock|Q|N|N|100|N|N\n' "$i" "$i"; done
  echo "File Creation Time: 0102202418:00|||||||"
} >"$work/symdir/nasdaqlisted.txt"
{
  echo "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol"
  echo "File Creation Time: 0102202418:00||||||"
} >"$work/symdir/otherlisted.txt"
timed "symbols update (500 securities)" "$mp" -q --data-dir "$data" symbols update --source nasdaq-trader --from "$work/symdir"
cat >"$work/filters.yml" <<'YAML'
config_version: 1
name: bench
exchanges: [NASDAQ, NYSE]
asset_types: [stock]
price: {min: 5}
avg_dollar_volume: {min: 1000000, sessions: 20}
avg_volume: {min: 10000, sessions: 20}
sort_by: avg_dollar_volume
max_symbols: 500
YAML
times=()
for run in 1 2 3 4 5; do
  timed "universe build --as-of 2024-12-31 (run $run)" "$mp" -q --data-dir "$data" universe build --filters "$work/filters.yml" --as-of 2024-12-31
  times+=("$(cat "$work/last")")
done
members=$(($(wc -l <"$data/universe/universe-2024-12-31.csv") - 1))
median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)
echo "universe build: median $median s over 5 runs, $members members"
if "$python" -c 'import duckdb' 2>/dev/null; then
  cases='[{"name":"bench","price_min":5,"adv_min":1000000,"adv_sessions":20,"vol_min":10000,"vol_sessions":20,"top":500},
          {"name":"top100","price_min":5,"adv_min":1000000,"adv_sessions":20,"vol_min":10000,"vol_sessions":20,"top":100}]'
  timed "DuckDB: the same selection over the 1m files" "$python" tests/interop/universe_oracle.py "$data/lake" 2024-12-31 "$cases"
  duck=$(cat "$work/last")
  cp "$work/out" "$work/duckdb.json"
  # The same members, or the figure means nothing: the top 500 and, a real cut, the top 100.
  members_of() { tail -n +2 "$data/universe/universe-2024-12-31.csv" | cut -d, -f1 | sort | tr '\n' ' '; }
  duckdb_of() { "$python" -c 'import json,sys; print(" ".join(sorted(json.load(open(sys.argv[1]))[sys.argv[2]])) + " ")' "$work/duckdb.json" "$1"; }
  [ "$(members_of)" = "$(duckdb_of bench)" ] || { echo "mp and DuckDB selected different members" >&2; exit 1; }
  sed -i 's/^max_symbols: 500$/max_symbols: 100/' "$work/filters.yml"
  "$mp" -q --data-dir "$data" universe build --filters "$work/filters.yml" --as-of 2024-12-31 >/dev/null
  [ "$(members_of)" = "$(duckdb_of top100)" ] || { echo "mp and DuckDB selected different top 100" >&2; exit 1; }
  echo "DuckDB selects the same $members members, and the same top 100"
  awk -v m="$median" -v d="$duck" 'BEGIN { printf "ratio mp universe build / DuckDB query: %.3f\n", m / d }'
else
  echo "(Python's duckdb missing: the DuckDB comparison is skipped; set PYTHON)"
fi
