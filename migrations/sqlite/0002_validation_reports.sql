-- MarketPipe metadata store, SQLite: validation reports (docs/storage.md). A report is one run's
-- (a job's or an ad-hoc run's) findings for one symbol, named '<run_id>_<symbol>' like its CSV
-- file. Saving a report again deletes the old one first; the cascades remove its counts and
-- findings (the store enables foreign keys on every connection).
-- Never edit this file once released: a change is a new migration.

CREATE TABLE validation_reports (
    name         TEXT    NOT NULL PRIMARY KEY,  -- '<run_id>_<symbol>'
    run_id       TEXT    NOT NULL,              -- no foreign key: ad-hoc runs have no job
    symbol       TEXT    NOT NULL,
    frame        TEXT    NOT NULL,              -- Timeframe::as_str
    bars_checked INTEGER NOT NULL,
    errors       INTEGER NOT NULL,              -- findings of severity 'error'
    warnings     INTEGER NOT NULL,              -- findings of severity 'warning'
    created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX validation_reports_by_created ON validation_reports (created_at DESC, name);

-- The run summary: how many findings each rule reported, per severity.
CREATE TABLE validation_counts (
    name     TEXT    NOT NULL REFERENCES validation_reports (name) ON DELETE CASCADE,
    rule     TEXT    NOT NULL,                  -- RuleId::as_str
    severity TEXT    NOT NULL,                  -- Severity::as_str
    count    INTEGER NOT NULL,
    PRIMARY KEY (name, rule, severity)
) STRICT, WITHOUT ROWID;

-- Every finding, in the order the rules gave them (seq from 0). A finding's symbol is the
-- report's.
CREATE TABLE validation_findings (
    name     TEXT    NOT NULL REFERENCES validation_reports (name) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    ts       INTEGER NOT NULL,
    rule     TEXT    NOT NULL,                  -- RuleId::as_str
    severity TEXT    NOT NULL,                  -- Severity::as_str
    detail   TEXT    NOT NULL,
    PRIMARY KEY (name, seq)
) STRICT, WITHOUT ROWID;
