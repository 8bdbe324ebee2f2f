#!/usr/bin/env bash
# Lake format before/after: for each `mp` binary given (e.g. one built at 8a98fa8, lake
# format 1, and one built now, format 2), ingests N symbols (default 100) x 2024 with the
# fake provider into a fresh lake, measures the 1m lake's bytes per bar, then times a full
# read of every bar (`mp validate` over the whole lake). Prints one line per binary and run,
# and the ratios of the last binary to the first.
#
#   scripts/bench-lake-format.sh [-n SYMBOLS] [-r RUNS] MP_BINARY...
#
# Build the binaries without the DuckDB feature (the numbers do not involve it), in release:
#   cargo build --release -p mp --no-default-features
set -euo pipefail
symbols_n=100
runs=2
while getopts "n:r:" opt; do
  case "$opt" in
    n) symbols_n="$OPTARG" ;;
    r) runs="$OPTARG" ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ "$#" -ge 1 ] || { echo "usage: $0 [-n SYMBOLS] [-r RUNS] MP_BINARY..." >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
symbols=$(for i in $(seq 1 "$symbols_n"); do printf 'SYM%03d,' "$i"; done)
symbols=${symbols%,}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "workload: mp ingest --provider fake --symbols <$symbols_n> --start 2024-01-01 --end 2024-12-31; mp validate over the same"
printf '%-40s %4s %12s %10s %10s %10s\n' binary run bytes/bar ingest_s read_s bars
for mp in "$@"; do
  for run in $(seq 1 "$runs"); do
    data="$work/data"
    rm -rf "$data"
    /usr/bin/time -f '%e' -o "$work/ingest_time" \
      "$mp" -q --data-dir "$data" ingest --provider fake --symbols "$symbols" \
      --start 2024-01-01 --end 2024-12-31 >"$work/ingest_out"
    bytes=$(find "$data/lake/frame=1m" -name 'part-*.parquet' -printf '%s\n' | awk '{s += $1} END {print s}')
    bars=$(awk '/bars / {print $2; exit}' "$work/ingest_out")
    /usr/bin/time -f '%e' -o "$work/read_time" \
      "$mp" -q --data-dir "$data" validate --symbols "$symbols" \
      --start 2024-01-01 --end 2024-12-31 >"$work/validate_out" || true
    awk -v m="$(basename "$(dirname "$(dirname "$(dirname "$mp")")")")/$(basename "$mp")" -v r="$run" \
      -v b="$bytes" -v n="$bars" -v i="$(cat "$work/ingest_time")" -v v="$(cat "$work/read_time")" \
      'BEGIN { printf "%-40s %4d %12.2f %10.2f %10.2f %10d\n", m, r, b / n, i, v, n }' | tee -a "$work/results"
  done
done
awk '{ key = $1; bpb[key] = $3; ing[key] += $4; rd[key] += $5; cnt[key]++; if (!(key in seen)) { order[++k] = key; seen[key] = 1 } }
  END { if (k < 2) exit; f = order[1]; l = order[k];
    printf "ratio %s / %s: bytes/bar %.3f, ingest time %.3f, read time %.3f\n", l, f,
      bpb[l] / bpb[f], (ing[l] / cnt[l]) / (ing[f] / cnt[f]), (rd[l] / cnt[l]) / (rd[f] / cnt[f]) }' "$work/results"
