#!/usr/bin/env python3
"""Reads a MarketPipe lake with every common reader, with no option, and compares each row
with what `mp query` returned.

    read_lake.py LAKE_DIR EXPECTED_CSV

LAKE_DIR is DATA_DIR/lake. EXPECTED_CSV is the output of
`mp query --format csv "SELECT symbol, epoch_us(ts) AS ts_us, open, high, low, close, volume,
 provider, feed FROM bars_1m ORDER BY symbol, ts"`.

Each reader reads `LAKE_DIR/frame=1m` (the frame's directory) as a user would: DuckDB
`read_parquet` on the glob with and without `hive_partitioning`, polars `scan_parquet` with
hive partitioning, a pyarrow dataset, `pandas.read_parquet` on the directory and on one file,
and Spark `spark.read.parquet`. It checks the rows (symbol, ts in UTC, prices, volume,
provider, feed), that `year` and `month` are integers, and that one file's key-value metadata
names its partition. Prints one line per reader; exits 0 when all agree, 1 on a mismatch, and
77 when a reader is not installed (the caller reports the test as skipped, with the reason).
"""
import csv
import math
import os
import shutil
import sys

MODULES = ["duckdb", "polars", "pyarrow", "pandas", "pyspark"]


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


missing = []
for name in MODULES:
    try:
        __import__(name)
    except ImportError:
        missing.append(name)
if missing:
    skip(f"python modules missing: {', '.join(missing)} (pip install {' '.join(MODULES)})")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    skip("no Java for Spark (install a JDK 17)")

import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import polars as pl  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

lake, expected_csv = sys.argv[1], sys.argv[2]
frame_dir = os.path.join(lake, "frame=1m")
glob = os.path.join(frame_dir, "**", "*.parquet")
COLUMNS = ["symbol", "ts_us", "open", "high", "low", "close", "volume", "provider", "feed"]


def load_expected():
    rows = []
    with open(expected_csv, newline="") as f:
        for r in csv.DictReader(f):
            rows.append((r["symbol"], int(r["ts_us"]), float(r["open"]), float(r["high"]),
                         float(r["low"]), float(r["close"]), int(r["volume"]), r["provider"],
                         r["feed"] or None))
    return rows


def norm(rows):
    out = []
    for r in rows:
        feed = r[8]
        if feed is not None and isinstance(feed, float) and math.isnan(feed):
            feed = None
        out.append((str(r[0]), int(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5]),
                    int(r[6]), str(r[7]), feed))
    out.sort(key=lambda r: (r[0], r[1]))
    return out


expected = load_expected()
failures = []


def compare(reader, rows, types=None, integer_keys=None):
    got = norm(rows)
    if got == expected:
        note = ""
        if types:
            note = "  " + ", ".join(f"{k}: {v}" for k, v in types.items())
        print(f"ok    {reader}: {len(got)} rows equal to mp query's{note}")
    else:
        first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        failures.append(reader)
        print(f"FAIL  {reader}: {len(got)} rows vs {len(expected)} expected; first difference at row {first}: "
              f"{got[first] if first < len(got) else None} vs {expected[first] if first < len(expected) else None}")
    if integer_keys is not None and not integer_keys:
        failures.append(f"{reader} (year/month types)")
        print(f"FAIL  {reader}: year/month are not integers: {types}")


def run(reader, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - report any reader's failure as a failure
        failures.append(reader)
        print(f"FAIL  {reader}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


def duckdb_reader(hive):
    def fn():
        con = duckdb.connect()
        option = "" if hive is None else f", hive_partitioning = {str(hive).lower()}"
        rel = f"read_parquet('{glob}'{option})"
        types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {rel})").fetchall())
        sql = (f"SELECT symbol, epoch_us(ts), open, high, low, close, volume, provider, feed FROM {rel}"
               if "symbol" in types else None)
        if sql is None:
            # Without hive partitioning the symbol is only in the path (the Hive convention).
            sql = (f"SELECT regexp_extract(filename, 'symbol=([^/]+)', 1), epoch_us(ts), open, high, low, close, "
                   f"volume, provider, feed FROM read_parquet('{glob}', hive_partitioning = false, filename = true)")
        rows = con.execute(sql).fetchall()
        shown = {k: types.get(k) for k in ("symbol", "ts", "year", "month") if k in types}
        ints = None
        if "year" in types:
            ints = types["year"] in ("BIGINT", "INTEGER") and types["month"] in ("BIGINT", "INTEGER")
        compare(f"duckdb read_parquet({'default' if hive is None else 'hive_partitioning=' + str(hive).lower()})",
                rows, shown, ints)
    return fn


def polars_reader():
    lf = pl.scan_parquet(glob, hive_partitioning=True)
    schema = lf.collect_schema()
    df = lf.select(pl.col("symbol"), pl.col("ts").dt.epoch("us"), "open", "high", "low", "close", "volume",
                   "provider", "feed").collect()
    types = {k: str(schema[k]) for k in ("symbol", "ts", "year", "month")}
    ints = schema["year"].is_integer() and schema["month"].is_integer()
    compare("polars scan_parquet(hive_partitioning=True)", df.rows(), types, ints)


def pyarrow_reader():
    dataset = ds.dataset(frame_dir, partitioning="hive")
    table = dataset.to_table()
    import pyarrow.compute as pc
    import pyarrow as pa
    ts_us = pc.cast(pc.cast(table["ts"], pa.timestamp("us", tz="UTC")), pa.int64())
    rows = zip(table["symbol"].to_pylist(), ts_us.to_pylist(), table["open"].to_pylist(), table["high"].to_pylist(),
               table["low"].to_pylist(), table["close"].to_pylist(), table["volume"].to_pylist(),
               table["provider"].to_pylist(), table["feed"].to_pylist())
    types = {k: str(table.schema.field(k).type) for k in ("symbol", "ts", "year", "month")}
    ints = pa.types.is_integer(table.schema.field("year").type) and pa.types.is_integer(table.schema.field("month").type)
    compare("pyarrow dataset(partitioning='hive')", list(rows), types, ints)


def pandas_frame_rows(df, symbol=None):
    ts = df["ts"]
    if str(ts.dt.tz) != "UTC":
        raise ValueError(f"ts is not UTC: {ts.dtype}")
    ts_us = ts.astype("datetime64[us, UTC]").astype("int64")
    symbols = df["symbol"].astype(str) if symbol is None else [symbol] * len(df)
    feed = df["feed"].astype(object).where(df["feed"].notna(), None)
    return list(zip(symbols, ts_us, df["open"], df["high"], df["low"], df["close"], df["volume"], df["provider"], feed))


def pandas_reader():
    df = pd.read_parquet(frame_dir)
    types = {k: str(df[k].dtype) for k in ("symbol", "ts", "year", "month")}
    compare("pandas read_parquet(frame dir)", pandas_frame_rows(df), types)


def pandas_one_file():
    path = None
    for root, _dirs, files in sorted(os.walk(frame_dir)):
        if "part-0.parquet" in files:
            path = os.path.join(root, "part-0.parquet")
            break
    meta = pq.read_metadata(path).metadata or {}
    symbol = meta.get(b"marketpipe.symbol", b"").decode()
    if f"symbol={symbol}" not in path or meta.get(b"marketpipe.format_version") != b"2":
        raise ValueError(f"{path}: key-value metadata {meta} does not name its partition")
    df = pd.read_parquet(path)
    want = [r for r in expected if r[0] == symbol]
    got = norm(pandas_frame_rows(df, symbol))
    ts = set(r[1] for r in got)
    want = [r for r in want if r[1] in ts]
    if got == want and len(got) == len(df) > 0:
        print(f"ok    pandas read_parquet(one file): {len(got)} rows of {symbol} equal to mp query's "
              f"(symbol from marketpipe.symbol in the file's metadata)")
    else:
        failures.append("pandas one file")
        print(f"FAIL  pandas read_parquet(one file): {len(got)} rows vs {len(want)}")


def spark_reader():
    from pyspark.sql import SparkSession
    spark = (SparkSession.builder.master("local[1]").appName("marketpipe-interop")
             .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        df = spark.read.parquet(frame_dir)
        types = {f.name: f.dataType.simpleString() for f in df.schema.fields if f.name in ("symbol", "ts", "year", "month")}
        rows = df.selectExpr("symbol", "unix_micros(ts)", "open", "high", "low", "close", "volume", "provider",
                             "feed").collect()
        ints = types.get("year") in ("int", "bigint") and types.get("month") in ("int", "bigint")
        compare("spark read.parquet(frame dir)", [tuple(r) for r in rows], types, ints)
    finally:
        spark.stop()


print(f"expected: {len(expected)} rows from mp query")
run("duckdb default", duckdb_reader(None))
run("duckdb hive", duckdb_reader(True))
run("duckdb no hive", duckdb_reader(False))
run("polars", polars_reader)
run("pyarrow", pyarrow_reader)
run("pandas", pandas_reader)
run("pandas one file", pandas_one_file)
run("spark", spark_reader)
if failures:
    print(f"{len(failures)} reader(s) failed: {', '.join(failures)}")
    sys.exit(1)
print("every reader agrees with mp query")
