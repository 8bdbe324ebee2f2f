-- Operations (docs/operations.md): the coverage map, and who runs each job.
-- Never edit this file once released: a change is a new migration.

-- One row per (provider, feed, symbol, session date, hours) of the 1m frame: what the provider
-- answered. feed is '' for a provider without feeds (a key column cannot be NULL).
CREATE TABLE coverage (
    provider    TEXT    NOT NULL,
    feed        TEXT    NOT NULL,
    symbol      TEXT    NOT NULL,
    date        TEXT    NOT NULL,               -- the session's New York date, YYYY-MM-DD
    hours       TEXT    NOT NULL,               -- 'regular' | 'extended'
    state       TEXT    NOT NULL,               -- 'filled' | 'partial' | 'empty_confirmed' | 'failed'
    bars        INTEGER NOT NULL,               -- 1m bars delivered for the session
    expected    INTEGER NOT NULL,               -- 1m bars of a complete session
    error       TEXT,                           -- why it failed
    job_id      TEXT,                           -- no foreign key: coverage outlives its job
    recorded_at INTEGER NOT NULL,
    PRIMARY KEY (provider, feed, symbol, date, hours)
) STRICT, WITHOUT ROWID;

CREATE INDEX coverage_by_symbol_date ON coverage (symbol, date);

-- What created a job, the process that runs it (host, pid, when it took it) and its heartbeat.
ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'ingest';   -- JobKind::as_str
ALTER TABLE jobs ADD COLUMN owner_host TEXT;
ALTER TABLE jobs ADD COLUMN owner_pid INTEGER;
ALTER TABLE jobs ADD COLUMN owner_started_at INTEGER;
ALTER TABLE jobs ADD COLUMN heartbeat_at INTEGER;
