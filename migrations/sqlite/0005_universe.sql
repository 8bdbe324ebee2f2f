-- The symbol master with history, and built universes (docs/universe.md).
-- Never edit this file once released: a change is a new migration.

-- One row per (source, symbol, attributes) with the dates it was valid (SCD type 2):
-- valid_from inclusive, valid_to exclusive, NULL while current.
CREATE TABLE symbol_master (
    source           TEXT    NOT NULL,          -- 'nasdaq-trader' | 'alpaca' | 'polygon'
    symbol           TEXT    NOT NULL,          -- canonical (lake) symbol: BRK.B, ABR.PR.D
    vendor_symbol    TEXT    NOT NULL,          -- as the source wrote it: BRK/B, ABRpD
    name             TEXT    NOT NULL,
    exchange         TEXT    NOT NULL,          -- Exchange::as_str
    asset_type       TEXT    NOT NULL,          -- AssetType::as_str
    test_issue       INTEGER NOT NULL,          -- 0 | 1
    financial_status TEXT,                      -- FinancialStatus::as_str; NULL: not reported
    round_lot        INTEGER,
    market_cap       REAL,
    sic_code         TEXT,
    source_id        TEXT,
    valid_from       TEXT    NOT NULL,          -- YYYY-MM-DD
    valid_to         TEXT,                      -- YYYY-MM-DD, NULL while current
    PRIMARY KEY (source, symbol, valid_from)
) STRICT, WITHOUT ROWID;

CREATE INDEX symbol_master_current ON symbol_master (source, valid_to);
CREATE INDEX symbol_master_by_symbol ON symbol_master (symbol, valid_from);

-- Each snapshot loaded, so that an as-of date before the first one is refused and
-- snapshots are applied in date order.
CREATE TABLE symbol_snapshots (
    source     TEXT    NOT NULL,
    as_of      TEXT    NOT NULL,
    loaded_at  INTEGER NOT NULL,
    securities INTEGER NOT NULL,
    opened     INTEGER NOT NULL,
    closed     INTEGER NOT NULL,
    PRIMARY KEY (source, as_of)
) STRICT, WITHOUT ROWID;

-- One built universe per as-of date.
CREATE TABLE universes (
    as_of      TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    filters    TEXT    NOT NULL,                -- the filters file as given
    built_at   INTEGER NOT NULL,
    members    INTEGER NOT NULL,
    candidates INTEGER NOT NULL
) STRICT;

-- Every candidate of a universe: a member (rank) or excluded (filter, reason).
CREATE TABLE universe_entries (
    as_of             TEXT    NOT NULL REFERENCES universes (as_of) ON DELETE CASCADE,
    symbol            TEXT    NOT NULL,
    name              TEXT,
    exchange          TEXT,
    asset_type        TEXT,
    price             REAL,
    avg_dollar_volume REAL,
    avg_volume        REAL,
    market_cap        REAL,
    sector            TEXT,
    rank              INTEGER,
    excluded_by       TEXT,
    reason            TEXT,
    PRIMARY KEY (as_of, symbol)
) STRICT, WITHOUT ROWID;
