#!/usr/bin/env bash
# What the operations commands cost on a year of 100 symbols (fake provider, 2024: 1,200
# monthly 1m files, 9,774,000 bars, 25,200 coverage entries): the backfill plan when nothing
# is missing (every partition is checked against the manifest: each file is read and
# hashed), the same after one session was deleted outside mp, a re-run of `mp ingest` over
# the same range for comparison (its writes change nothing but it asks for everything again),
# `mp gaps --html` of 100 x 252, `mp health` (footers; --full: every row), and a prune dry run.
#
#   scripts/bench-operations.sh [MP_BINARY]   # default target/release/mp
# Build it first: cargo build --release -p mp --no-default-features
set -euo pipefail
mp=${1:-target/release/mp}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data="$work/data"
symbols=$(for i in $(seq 1 100); do printf 'SYM%03d,' "$i"; done)
symbols=${symbols%,}
range=(--start 2024-01-01 --end 2024-12-31)
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
timed "ingest 100 symbols x 2024 (fresh lake)" "$mp" -q --data-dir "$data" ingest --provider fake --symbols "$symbols" "${range[@]}"
timed "re-run of the same ingest (asks everything again)" "$mp" -q --data-dir "$data" ingest --provider fake --symbols "$symbols" "${range[@]}"
ingest_rerun=$(cat "$work/last")
rerun_requests=$(awk '/requests/ {print $2; exit}' "$work/out")
timed "backfill, nothing missing (plan: 1,200 files hashed)" "$mp" -q --data-dir "$data" backfill --provider fake --symbols "$symbols" "${range[@]}"
grep -q "nothing to ask" "$work/out"
backfill_noop=$(cat "$work/last")
timed "backfill --dry-run, nothing missing" "$mp" -q --data-dir "$data" backfill --provider fake --symbols "$symbols" "${range[@]}" --dry-run
# Another tool (pyarrow) deletes SYM050's session of 2024-03-12 (13:30-20:00 UTC).
"${PYTHON:-python3}" - "$data/lake/frame=1m/symbol=SYM050/year=2024/month=3/part-0.parquet" <<'PY' || echo "(pyarrow missing: the changed-file run is skipped)"
import sys, pyarrow.parquet as pq, pyarrow.compute as pc, pyarrow as pa
path = sys.argv[1]
f = pq.ParquetFile(path)
t = f.read()
keep = pc.invert(pc.and_(pc.greater_equal(t["ts"], pa.scalar(1710250200000000, pa.timestamp("us", "UTC"))),
                          pc.less(t["ts"], pa.scalar(1710273600000000, pa.timestamp("us", "UTC")))))
pq.write_table(t.filter(keep).replace_schema_metadata(t.schema.metadata), path)
PY
timed "backfill after one session was deleted outside mp" "$mp" -q --data-dir "$data" backfill --provider fake --symbols "$symbols" "${range[@]}"
timed "gaps --html, 100 symbols x 252 sessions" "$mp" -q --data-dir "$data" gaps --symbols "$symbols" "${range[@]}" --html "$work/gaps.html"
printf '%-58s %8d KiB\n' "  gaps.html size" "$(( $(stat -c %s "$work/gaps.html") / 1024 ))"
timed "health (every footer, 64 partitions hashed)" "$mp" -q --data-dir "$data" health
timed "health --full (every row of every file)" "$mp" -q --data-dir "$data" health --full
timed "prune parquet --before 2024-07-01 --dry-run" "$mp" -q --data-dir "$data" prune parquet --before 2024-07-01 --dry-run
awk -v b="$backfill_noop" -v i="$ingest_rerun" -v r="$rerun_requests" \
  'BEGIN { printf "ratio backfill (nothing missing) / ingest re-run: %.3f time, 0 vs %d provider requests\n", b / i, r }'
