#!/usr/bin/env python3
"""Selects universe members with one DuckDB query over a MarketPipe lake's 1m files,
independently of mp, so that `mp universe build` can be checked against it.

    universe_oracle.py LAKE_DIR AS_OF CASES_JSON

CASES_JSON is a list of objects: {"name": str, "price_min": num|null, "adv_min": num|null,
"adv_sessions": int, "vol_min": num|null, "vol_sessions": int, "top": int|null}. Per symbol,
a session is a UTC date of its regular-hours bars (the same date as New York's); the price is
the close of the last bar on or before AS_OF; the average dollar volume is the mean over the
symbol's last adv_sessions sessions of sum(vwap * volume), the average volume the mean of
sum(volume) over its last vol_sessions; a symbol with fewer sessions has no average. Members
pass every bound given; with "top", only the first `top` by average dollar volume (20
sessions) descending, then symbol. Prints {"name": [symbols sorted]} as JSON; exits 77 when
DuckDB is not installed (the caller reports the test as skipped).
"""
import json
import sys

try:
    import duckdb
except ImportError:
    print("SKIP: the Python package duckdb is not installed")
    sys.exit(77)

lake, as_of, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
glob = f"{lake}/frame=1m/**/*.parquet"
con.execute(f"""
CREATE TABLE days AS
SELECT symbol, CAST(ts AS DATE) AS d, arg_max(close, ts) AS close,
       sum(vwap * volume) AS dollar_volume, sum(volume) AS volume
FROM read_parquet('{glob}', hive_partitioning = true)
WHERE CAST(ts AS DATE) <= DATE '{as_of}'
GROUP BY symbol, d
""")
con.execute("""
CREATE TABLE ranked AS
SELECT *, row_number() OVER (PARTITION BY symbol ORDER BY d DESC) AS back FROM days
""")

out = {}
for case in cases:
    adv_n, vol_n = case["adv_sessions"], case["vol_sessions"]
    where = []
    if case.get("price_min") is not None:
        where.append(f"price >= {case['price_min']!r}")
    if case.get("adv_min") is not None:
        where.append(f"adv >= {case['adv_min']!r}")
    if case.get("vol_min") is not None:
        where.append(f"avg_vol >= {case['vol_min']!r}")
    top = case.get("top")
    if top is not None:
        where.append("adv20 IS NOT NULL")
    sql = f"""
    WITH stats AS (
      SELECT symbol,
        max(CASE WHEN back = 1 THEN close END) AS price,
        CASE WHEN count(*) FILTER (WHERE back <= {adv_n}) = {adv_n}
             THEN sum(dollar_volume) FILTER (WHERE back <= {adv_n}) / {adv_n} END AS adv,
        CASE WHEN count(*) FILTER (WHERE back <= {vol_n}) = {vol_n}
             THEN sum(volume) FILTER (WHERE back <= {vol_n}) / {vol_n} END AS avg_vol,
        CASE WHEN count(*) FILTER (WHERE back <= 20) = 20
             THEN sum(dollar_volume) FILTER (WHERE back <= 20) / 20 END AS adv20
      FROM ranked GROUP BY symbol)
    SELECT symbol FROM stats
    {"WHERE " + " AND ".join(where) if where else ""}
    ORDER BY adv20 DESC NULLS LAST, symbol
    {f"LIMIT {int(top)}" if top is not None else ""}
    """
    out[case["name"]] = sorted(r[0] for r in con.execute(sql).fetchall())
print(json.dumps(out))
