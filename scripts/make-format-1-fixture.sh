#!/usr/bin/env bash
# Rebuilds tests/fixtures/format-1/data: a data directory written by MarketPipe before lake
# format 2 (commit 8a98fa8, the last main with lake format 1), which the e2e test
# `upgrade::a_format_1_lake_works_then_upgrades_to_a_fresh_lake_after_a_kill` upgrades.
#
#   scripts/make-format-1-fixture.sh PATH_TO_MP_BUILT_AT_8a98fa8
#
# e.g. git worktree add /tmp/mp-v1 8a98fa8 && (cd /tmp/mp-v1 && cargo build -p mp) and pass
# its target/debug/mp. Three symbols, two weeks across a month boundary (September's files
# under month=09, October's under month=10, which both formats spell the same), every frame
# `ingest --aggregate` builds, and the SQLite database (checkpointed, no WAL) at migration 2.
set -euo pipefail
cd "$(dirname "$0")/.."
mp="${1:?usage: $0 PATH_TO_OLD_MP}"
out=tests/fixtures/format-1
rm -rf "$out"
mkdir -p "$out"
"$mp" -q --data-dir "$out/data" ingest --provider fake --symbols AAPL,BRK.B,MSFT \
  --start 2024-09-23 --end 2024-10-04 --aggregate >/dev/null
python3 - "$out/data/marketpipe.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1])
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.execute("PRAGMA journal_mode=DELETE")
con.close()
PY
rm -f "$out/data/marketpipe.db-wal" "$out/data/marketpipe.db-shm"
# Lock files are empty and recreated by the first write; keep only data.
find "$out" -name '.part-0.parquet.lock' -delete
find "$out" -type f | sort
