//! # marketpipe-sqlite
//!
//! The SQLite adapter behind MarketPipe's metadata ports (docs/storage.md): [`SqliteStore`]
//! implements `JobRepository`, `WorkItemRepository`, `PartitionManifest`,
//! `DailySummaryRepository`, `MetricsRepository`, `ValidationReportRepository`,
//! `CoverageRepository`, `MetadataRetention`, `SymbolMasterRepository` and
//! `UniverseRepository` of
//! `marketpipe-ports` with sqlx, on one database file in WAL mode with a busy timeout, so that
//! several `mp` processes can share it.
//! The schema lives in `migrations/sqlite/` and is embedded here; it is applied on
//! [`SqliteStore::open`] and by `mp migrate`. Among our crates it depends only on the ports and
//! the domain; no sqlx type crosses its API (errors are `RepositoryError`s with the driver's
//! error as a boxed source). PostgreSQL gets a sibling crate with the same contract.
//!
//! Storage conventions: timestamps are INTEGER nanoseconds, dates TEXT `YYYY-MM-DD`, prices
//! INTEGER raw 1e-9 units (exact), counts INTEGER (a `u64` above `i64::MAX` is refused rather
//! than wrapped).

mod convert;
mod coverage;
mod jobs;
mod manifest;
mod metrics;
mod reports;
mod retention;
mod summaries;
mod universe;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use marketpipe_ports::RepositoryError;
use sqlx::SqlitePool;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Mutex, MutexGuard};

use crate::convert::map_sqlx;

/// The embedded migrations of `migrations/sqlite/`.
static MIGRATOR: Migrator = sqlx::migrate!("../../../migrations/sqlite");

/// How long a statement waits for another connection's (or process's) write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections per store: writes are serialised anyway, a few readers are enough.
const MAX_CONNECTIONS: u32 = 4;

/// Migrations whose comments were edited after release, with the SHA-384 checksum of the
/// text databases recorded before the edit (see `SqliteStore::accept_comment_only_edits`).
/// Version 2: a comment cited a design document outside the repository.
const COMMENT_ONLY_EDITS: [(i64, [u8; 48]); 1] = [(
    2,
    hex_checksum(
        "65c18df3a86140ebea372b13d2c12df2b249a444af1ba70fb2dfd00cc4b648c7ca9e41a6883412078f2a3c1237ea33a4",
    ),
)];

/// 96 hex digits as 48 bytes, at compile time.
const fn hex_checksum(hex: &str) -> [u8; 48] {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        }
    }
    let bytes = hex.as_bytes();
    assert!(bytes.len() == 96, "a SHA-384 checksum has 96 hex digits");
    let mut out = [0u8; 48];
    let mut i = 0;
    while i < 48 {
        out[i] = (digit(bytes[2 * i]) << 4) | digit(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

/// Attempts at applying migrations when another process migrates the same file concurrently.
const MIGRATION_ATTEMPTS: usize = 10;

/// Opens tried while another process holds the database's exclusive lock (about 9 s in all).
const OPEN_ATTEMPTS: u32 = 50;

/// The SQLite metadata store: one database file, shared by every port it implements.
///
/// Cloning is cheap and shares the connection pool. Within a process, writes are serialised
/// by an async mutex, so the store's own connections never wait on each other in SQLite's
/// busy handler; other processes are kept apart by SQLite's locks and the busy timeout.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: Arc<PathBuf>,
    write_lock: Arc<Mutex<()>>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("connections", &self.pool.size())
            .field("closed", &self.pool.is_closed())
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the database at `path` (creating the file and its parent directory if needed)
    /// and applies pending migrations.
    pub async fn open(path: &Path) -> Result<Self, RepositoryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| RepositoryError::Backend {
                message: format!(
                    "cannot create the directory {} of the metadata database: {e}",
                    parent.display()
                ),
                source: Some(Box::new(e)),
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // Switching a new database to WAL takes an exclusive lock, and SQLite answers "database
        // is locked" at once (without its busy handler) when another process is doing the same:
        // two `mp` processes started together on a fresh data dir. Retry the open briefly.
        let mut attempt = 0u32;
        let pool = loop {
            let connected = SqlitePoolOptions::new()
                .max_connections(MAX_CONNECTIONS)
                .acquire_timeout(BUSY_TIMEOUT)
                .connect_with(options.clone())
                .await
                .map_err(|e| map_sqlx(&format!("opening {}", path.display()), e));
            match connected {
                Ok(pool) => break pool,
                Err(e) if e.is_retryable() && attempt < OPEN_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(attempt, error = %e, "metadata database busy while opening; retrying");
                    tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10))))
                        .await;
                }
                Err(e) => return Err(e),
            }
        };
        let store = Self {
            pool,
            path: Arc::new(path.to_path_buf()),
            write_lock: Arc::new(Mutex::new(())),
        };
        let applied = store.migrate().await?;
        if !applied.is_empty() {
            tracing::info!(path = %path.display(), versions = ?applied, "metadata store migrated");
        }
        Ok(store)
    }

    /// The schema of the database at `path` without changing it: the file is opened
    /// read-only, never created and never migrated (`mp health`). `Ok(None)` when there is
    /// no file.
    pub async fn schema_status(path: &Path) -> Result<Option<SchemaStatus>, RepositoryError> {
        let Some(store) = Self::open_read_only(path).await? else {
            return Ok(None);
        };
        let applied = store.applied_versions().await;
        store.close().await;
        let applied = applied?;
        let known: BTreeSet<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        Ok(Some(SchemaStatus {
            pending: known.difference(&applied).copied().collect(),
            unknown: applied.difference(&known).copied().collect(),
            applied: applied.into_iter().collect(),
        }))
    }

    /// Opens an existing database read-only, never creating or migrating it (`mp health`);
    /// `Ok(None)` when there is no file. Every write through it fails.
    pub async fn open_read_only(path: &Path) -> Result<Option<Self>, RepositoryError> {
        if !path.is_file() {
            return Ok(None);
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .map_err(|e| map_sqlx(&format!("opening {} read-only", path.display()), e))?;
        Ok(Some(Self {
            pool,
            path: Arc::new(path.to_path_buf()),
            write_lock: Arc::new(Mutex::new(())),
        }))
    }

    /// Applies pending migrations; returns the versions applied now (empty when up to date).
    pub async fn migrate(&self) -> Result<Vec<i64>, RepositoryError> {
        let _guard = self.write_guard().await;
        let before = self.applied_versions().await?;
        if !before.is_empty() {
            self.accept_comment_only_edits().await?;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => break,
                // Another process may have applied the same migration between our check and
                // our attempt (SQLite migrations take no lock beforehand): look again.
                Err(MigrateError::ExecuteMigration(..) | MigrateError::Execute(_))
                    if attempt < MIGRATION_ATTEMPTS =>
                {
                    tracing::debug!(attempt, "migration attempt failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(migration_error(e)),
            }
        }
        let after = self.applied_versions().await?;
        Ok(after.difference(&before).copied().collect())
    }

    /// sqlx checksums a migration's whole text, comments included, and refuses a database
    /// whose recorded checksum differs. A migration whose comments (only) were edited after
    /// release is listed in [`COMMENT_ONLY_EDITS`] with its old checksum: a database that
    /// recorded exactly that one is given the new checksum, so it opens as before.
    async fn accept_comment_only_edits(&self) -> Result<(), RepositoryError> {
        for (version, old_checksum) in COMMENT_ONLY_EDITS {
            let Some(current) = MIGRATOR.iter().find(|m| m.version == version) else {
                continue;
            };
            sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = ? WHERE version = ? AND checksum = ?",
            )
            .bind(current.checksum.as_ref())
            .bind(version)
            .bind(old_checksum.as_slice())
            .execute(&self.pool)
            .await
            .map_err(|e| map_sqlx("updating the checksum of an edited migration", e))?;
        }
        Ok(())
    }

    /// Closes every connection; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The versions recorded as applied (empty before the first migration).
    async fn applied_versions(&self) -> Result<BTreeSet<i64>, RepositoryError> {
        let context = "reading applied migrations";
        let table: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_sqlx(context, e))?;
        if table.is_none() {
            return Ok(BTreeSet::new());
        }
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = 1")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_sqlx(context, e))?;
        Ok(versions.into_iter().collect())
    }

    /// Serialises this process's writes (see the type's documentation).
    async fn write_guard(&self) -> MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }
}

/// Where a database's schema stands against the migrations this build embeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Versions applied.
    pub applied: Vec<i64>,
    /// Versions this build has that the database lacks (`mp migrate` applies them).
    pub pending: Vec<i64>,
    /// Versions the database has that this build does not know (written by a newer `mp`).
    pub unknown: Vec<i64>,
}

impl SchemaStatus {
    /// Whether the schema is exactly this build's.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
}

/// A migration failure, naming the migration's version.
fn migration_error(e: MigrateError) -> RepositoryError {
    let version = match &e {
        MigrateError::ExecuteMigration(_, v)
        | MigrateError::VersionMissing(v)
        | MigrateError::VersionMismatch(v)
        | MigrateError::VersionNotPresent(v)
        | MigrateError::VersionTooOld(v, _)
        | MigrateError::VersionTooNew(v, _)
        | MigrateError::Dirty(v) => Some(*v),
        _ => None,
    };
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or_default();
    let which = match version {
        Some(v) => format!("migration {v}"),
        None => format!("migration (up to version {latest})"),
    };
    let busy = match &e {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
            convert::is_busy(inner)
        }
        _ => false,
    };
    let message = format!("{which} of the metadata store failed: {e}");
    if busy {
        RepositoryError::Unavailable {
            message,
            source: Some(Box::new(e)),
        }
    } else {
        RepositoryError::Backend {
            message,
            source: Some(Box::new(e)),
        }
    }
}
