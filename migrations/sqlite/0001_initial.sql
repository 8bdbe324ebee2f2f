-- MarketPipe metadata store, SQLite: ingestion jobs and their work items (checkpoints), the
-- partition manifest and aggregation marks, daily summaries and metrics history.
-- Timestamps are INTEGER nanoseconds since the Unix epoch (UTC); dates are TEXT 'YYYY-MM-DD'
-- (so text order is date order); prices are INTEGER raw units of 1e-9 (exact).
-- Never edit this file once released: a change is a new migration.

CREATE TABLE jobs (
    id          TEXT    NOT NULL PRIMARY KEY,
    provider    TEXT    NOT NULL,
    feed        TEXT,
    symbols     TEXT    NOT NULL,           -- comma-separated, in the spec's order
    start_date  TEXT    NOT NULL,
    end_date    TEXT    NOT NULL,
    session     TEXT    NOT NULL,           -- 'regular' | 'extended'
    state       TEXT    NOT NULL,           -- JobState::as_str
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    failure     TEXT
) STRICT;

CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);

CREATE TABLE work_items (
    job_id       TEXT    NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    symbol       TEXT    NOT NULL,
    start_date   TEXT    NOT NULL,
    end_date     TEXT    NOT NULL,
    status       TEXT    NOT NULL,          -- WorkItemStatus::as_str
    bars_written INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
) STRICT, WITHOUT ROWID;

CREATE TABLE partitions (
    frame        TEXT    NOT NULL,          -- Timeframe::as_str
    symbol       TEXT    NOT NULL,
    year         INTEGER NOT NULL,
    month        INTEGER NOT NULL,          -- 1-12, or 0 for yearly frames
    path         TEXT    NOT NULL,
    rows         INTEGER NOT NULL,
    min_ts       INTEGER,
    max_ts       INTEGER,
    content_hash TEXT    NOT NULL,
    job_id       TEXT,                      -- no foreign key: a partition outlives its job
    written_at   INTEGER NOT NULL,
    PRIMARY KEY (frame, symbol, year, month)
) STRICT, WITHOUT ROWID;

-- "1m partition (source) with content_hash was aggregated to target_frame".
CREATE TABLE aggregation_marks (
    source_frame TEXT    NOT NULL,
    symbol       TEXT    NOT NULL,
    year         INTEGER NOT NULL,
    month        INTEGER NOT NULL,
    target_frame TEXT    NOT NULL,
    content_hash TEXT    NOT NULL,
    PRIMARY KEY (source_frame, symbol, year, month, target_frame)
) STRICT, WITHOUT ROWID;

CREATE TABLE daily_summaries (
    symbol      TEXT    NOT NULL,
    date        TEXT    NOT NULL,
    open        INTEGER NOT NULL,
    high        INTEGER NOT NULL,
    low         INTEGER NOT NULL,
    close       INTEGER NOT NULL,
    volume      INTEGER NOT NULL,
    vwap        INTEGER,
    bar_count   INTEGER NOT NULL,
    trade_count INTEGER,
    PRIMARY KEY (symbol, date)
) STRICT, WITHOUT ROWID;

CREATE TABLE metrics (
    id     INTEGER PRIMARY KEY,
    name   TEXT    NOT NULL,
    labels TEXT    NOT NULL,                -- JSON array of [key, value] pairs
    value  REAL,                            -- NULL stands for NaN (SQLite stores NaN as NULL)
    at     INTEGER NOT NULL
) STRICT;

CREATE INDEX metrics_by_name_at ON metrics (name, at);
