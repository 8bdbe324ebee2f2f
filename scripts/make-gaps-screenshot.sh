#!/usr/bin/env bash
# The picture of `mp gaps --html` in docs/operations.md: 40 symbols x Q1 2024 from the fake
# provider (10 of them only January and February), with a few answers the fake provider never
# gives written into the coverage map by hand so that every colour shows (a halt: empty; a
# failed request; a partial session), rendered by headless Chromium.
#
#   scripts/make-gaps-screenshot.sh [MP_BINARY]     # writes docs/img/gaps.png
set -euo pipefail
mp=${1:-target/debug/mp}
out=$(cd "$(dirname "$0")/.." && pwd)/docs/img/gaps.png
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
symbols=$(for i in $(seq 1 40); do printf 'SYM%02d,' "$i"; done)
symbols=${symbols%,}
first30=$(echo "$symbols" | cut -d, -f1-30)
last10=$(echo "$symbols" | cut -d, -f31-40)
"$mp" -q --data-dir "$work/data" ingest --symbols "$first30" --start 2024-01-02 --end 2024-03-28 >/dev/null
"$mp" -q --data-dir "$work/data" ingest --symbols "$last10" --start 2024-01-02 --end 2024-02-29 >/dev/null
python3 - "$work/data/marketpipe.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE coverage SET state='empty_confirmed', bars=0 WHERE symbol='SYM07' AND date BETWEEN '2024-02-05' AND '2024-02-09'")
db.execute("UPDATE coverage SET state='failed', bars=0, error='HTTP 503' WHERE symbol IN ('SYM12','SYM13') AND date='2024-03-14'")
db.execute("UPDATE coverage SET state='partial', bars=350 WHERE symbol='SYM21' AND date BETWEEN '2024-01-16' AND '2024-01-19'")
db.commit()
PY
"$mp" -q --data-dir "$work/data" gaps --symbols "$symbols" --start 2024-01-02 --end 2024-03-28 --html "$work/gaps.html" >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
  --user-data-dir="$work/profile" --window-size=1100,760 --screenshot="$out" "file://$work/gaps.html" 2>/dev/null
echo "wrote $out"
