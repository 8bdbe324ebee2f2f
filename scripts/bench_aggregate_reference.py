#!/usr/bin/env python3
"""The reference implementations `scripts/bench-aggregate.sh` times beside `mp aggregate`
and `mp query`: the same work on the same lake files, done by DuckDB's own SQL
(time_bucket, arg_min/arg_max) and by polars (group_by_dynamic).

    bench_aggregate_reference.py aggregate duckdb|polars LAKE OUT
    bench_aggregate_reference.py query duckdb|polars LAKE SYMBOL

`aggregate` reads every 1m file under LAKE and writes 5m, 15m, 1h and 1d Parquet files
(zstd, partitioned like the lake: symbol/year/month for 5m and 15m, symbol/year for 1h and
1d) under OUT; a 1d bar is a New York session date, as in `mp aggregate`.
`query` prints one symbol's 1m bars as CSV on stdout, as `mp query ... --format csv` does.
"""
import sys

FRAMES = [("5m", "5 minutes", True), ("15m", "15 minutes", True), ("1h", "1 hour", False)]


def duckdb_aggregate(lake, out):
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""CREATE VIEW m1 AS SELECT symbol, ts, open, high, low, close, volume, trade_count, vwap
            FROM read_parquet('{lake}/frame=1m/*/*/*/*.parquet')"""
    )
    for name, width, monthly in FRAMES:
        parts = "symbol, year, month" if monthly else "symbol, year"
        con.execute(
            f"""COPY (
                  SELECT symbol, bucket AS ts, arg_min(open, ts) AS open, max(high) AS high,
                         min(low) AS low, arg_max(close, ts) AS close,
                         sum(volume)::BIGINT AS volume, sum(trade_count)::BIGINT AS trade_count,
                         sum(vwap * volume) / sum(volume) AS vwap,
                         year(bucket) AS year, month(bucket) AS month
                  FROM (SELECT *, time_bucket(INTERVAL '{width}', ts) AS bucket FROM m1)
                  GROUP BY symbol, bucket)
                TO '{out}/frame={name}' (FORMAT parquet, COMPRESSION zstd,
                                         PARTITION_BY ({parts}), OVERWRITE_OR_IGNORE)"""
        )
    # The session date: New York time. Python's duckdb has ICU, so AT TIME ZONE works.
    con.execute(
        f"""COPY (
              SELECT symbol, session::TIMESTAMP AS ts, arg_min(open, ts) AS open,
                     max(high) AS high, min(low) AS low, arg_max(close, ts) AS close,
                     sum(volume)::BIGINT AS volume, sum(trade_count)::BIGINT AS trade_count,
                     sum(vwap * volume) / sum(volume) AS vwap, year(session) AS year
              FROM (SELECT *, (ts AT TIME ZONE 'America/New_York')::DATE AS session FROM m1)
              GROUP BY symbol, session)
            TO '{out}/frame=1d' (FORMAT parquet, COMPRESSION zstd,
                                 PARTITION_BY (symbol, year), OVERWRITE_OR_IGNORE)"""
    )


def polars_aggregate(lake, out):
    import polars as pl

    m1 = pl.scan_parquet(f"{lake}/frame=1m/*/*/*/*.parquet", hive_partitioning=False).select(
        "symbol", "ts", "open", "high", "low", "close", "volume", "trade_count", "vwap"
    )
    aggs = [
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
        pl.col("trade_count").sum(),
        ((pl.col("vwap") * pl.col("volume")).sum() / pl.col("volume").sum()).alias("vwap"),
    ]
    sorted_m1 = m1.sort("symbol", "ts")
    for name, width, monthly in FRAMES:
        every = width.replace(" minutes", "m").replace(" hour", "h")
        frame = (
            sorted_m1.group_by_dynamic("ts", every=every, group_by="symbol")
            .agg(aggs)
            .with_columns(pl.col("ts").dt.year().alias("year"), pl.col("ts").dt.month().alias("month"))
            .collect()
        )
        parts = ["symbol", "year", "month"] if monthly else ["symbol", "year"]
        if not monthly:
            frame = frame.drop("month")
        frame.write_parquet(f"{out}/frame={name}", compression="zstd", partition_by=parts)
    daily = (
        sorted_m1.with_columns(
            pl.col("ts").dt.convert_time_zone("America/New_York").dt.date().alias("session")
        )
        .group_by("symbol", "session", maintain_order=True)
        .agg(aggs)
        .with_columns(pl.col("session").dt.year().alias("year"))
        .collect()
    )
    daily.write_parquet(f"{out}/frame=1d", compression="zstd", partition_by=["symbol", "year"])


def duckdb_query(lake, symbol):
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT * FROM read_parquet('{lake}/frame=1m/*/*/*/*.parquet', hive_partitioning = true)
                  WHERE symbol = '{symbol}' ORDER BY ts) TO '/dev/stdout' (FORMAT csv, HEADER)"""
    )


def polars_query(lake, symbol):
    import polars as pl

    (
        pl.scan_parquet(f"{lake}/frame=1m/symbol={symbol}/*/*/*.parquet", hive_partitioning=False)
        .sort("ts")
        .collect()
        .write_csv(sys.stdout)
    )


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    work, engine, lake, arg = sys.argv[1:]
    {
        ("aggregate", "duckdb"): duckdb_aggregate,
        ("aggregate", "polars"): polars_aggregate,
        ("query", "duckdb"): duckdb_query,
        ("query", "polars"): polars_query,
    }[(work, engine)](lake, arg)


if __name__ == "__main__":
    main()
