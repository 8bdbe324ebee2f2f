#!/usr/bin/env bash
# What the metrics cost an ingest: 100 symbols x 2024 from the fake provider (9,774,000 bars,
# 1,200 monthly files) into a fresh data dir, without and with --metrics-addr (scraped every
# 200 ms by curl, far more often than Prometheus' 15 s) and with --metrics-textfile. Runs
# alternate (off, on, textfile, off, on, …) so that a slow phase of the machine hits all
# three; prints each run, the medians and the ratios to the run without metrics.
#
#   scripts/bench-metrics.sh [MP_BINARY] [RUNS]   # default target/release/mp, 3
# Build it first: cargo build --release -p mp --no-default-features
set -euo pipefail
mp=${1:-target/release/mp}
runs=${2:-3}
work=$(mktemp -d)
trap 'kill "${scraper:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
symbols=$(for i in $(seq 1 100); do printf 'SYM%03d,' "$i"; done)
symbols=${symbols%,}
port=$((20000 + RANDOM % 20000))
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "mp: $("$mp" --version)"
one() { # mode -> prints seconds
  local mode=$1 data="$work/data-$1"
  rm -rf "$data"
  local flags=()
  case "$mode" in
    addr) flags=(--metrics-addr "127.0.0.1:$port") ;;
    textfile) flags=(--metrics-textfile "$work/mp.prom") ;;
  esac
  if [ "$mode" = addr ]; then
    (while true; do curl -s -o /dev/null "http://127.0.0.1:$port/metrics" || true; sleep 0.2; done) >/dev/null 2>&1 &
    scraper=$!
  fi
  # The previous run's deleted files are written back first, so that no run pays for the
  # one before it.
  sync
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$work/cpu" \
    "$mp" -q --data-dir "$data" "${flags[@]}" ingest --provider fake --symbols "$symbols" \
    --start 2024-01-01 --end 2024-12-31 >"$work/out" 2>"$work/err" || {
    echo "ingest ($mode) failed:" >&2
    cat "$work/err" >&2
    exit 1
  }
  end=$(date +%s.%N)
  if [ "$mode" = addr ]; then
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
    scraper=
  fi
  rm -rf "$data"
  read -r user sys <"$work/cpu"
  awk -v s="$start" -v e="$end" -v u="$user" -v y="$sys" 'BEGIN { printf "%.2f %.2f\n", e - s, u + y }'
}
declare -A times cpus
for i in $(seq 1 "$runs"); do
  for mode in none addr textfile; do
    read -r t cpu < <(one "$mode")
    times[$mode]="${times[$mode]:-} $t"
    cpus[$mode]="${cpus[$mode]:-} $cpu"
    printf 'run %d %-9s %8s s wall %8s s cpu\n' "$i" "$mode" "$t" "$cpu"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
none=$(median <<<"${times[none]}")
addr=$(median <<<"${times[addr]}")
textfile=$(median <<<"${times[textfile]}")
grep -q '^marketpipe_bars_ingested_total' "$work/mp.prom"
bars=$(awk '/^marketpipe_bars_ingested_total/ {s += $2} END {print s}' "$work/mp.prom")
cpu_none=$(median <<<"${cpus[none]}")
cpu_addr=$(median <<<"${cpus[addr]}")
cpu_textfile=$(median <<<"${cpus[textfile]}")
printf 'median cpu (user+sys): no metrics %.2f s, --metrics-addr %.2f s, --metrics-textfile %.2f s\n' "$cpu_none" "$cpu_addr" "$cpu_textfile"
awk -v n="$cpu_none" -v a="$cpu_addr" -v t="$cpu_textfile" 'BEGIN { printf "ratio cpu --metrics-addr / none: %.3f; --metrics-textfile / none: %.3f\n", a / n, t / n }'
printf 'median: no metrics %.2f s, --metrics-addr (scraped every 200 ms) %.2f s, --metrics-textfile %.2f s\n' "$none" "$addr" "$textfile"
awk -v n="$none" -v a="$addr" -v t="$textfile" -v b="$bars" 'BEGIN {
  printf "ratio --metrics-addr / none: %.3f; --metrics-textfile / none: %.3f; %d bars counted (%.2f M bars/s without metrics)\n", a / n, t / n, b, b / n / 1e6 }'
