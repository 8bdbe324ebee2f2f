//! The engine: an in-memory DuckDB database with the lake's views, sandboxed, behind the
//! `QueryEngine` port.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use duckdb::Connection;
use marketpipe_domain::Timeframe;
use marketpipe_ports::error::QueryError;
use marketpipe_ports::lake::LAKE_FORMAT_VERSION;
use marketpipe_ports::layout::FORMAT_MARKER;
use marketpipe_ports::query::{Cell, QueryEngine, QueryResult};

use crate::convert::column_cells;
use crate::guard::{self, Checked};
use crate::views::{ViewSource, create_view, glob, literal};

/// The query engine over a lake: DuckDB in memory, one view per timeframe (`bars_1m`,
/// `bars_5m`, `bars_15m`, `bars_30m`, `bars_1h`, `bars_4h`, `bars_1d`).
///
/// Read-only twice over: the statement guard refuses anything but one reading statement
/// before it runs, and DuckDB itself is locked down (no file outside the lake, no
/// extension, no setting change). Cheap to clone; queries run on Tokio's blocking pool, each
/// on its own connection to the shared database.
#[derive(Clone)]
pub struct DuckDbEngine {
    inner: Arc<Inner>,
}

struct Inner {
    /// The absolute lake root.
    root: PathBuf,
    state: Mutex<State>,
    /// A second database, sandboxed the same way, whose views are always the empty ones:
    /// same names, columns and types, no files. A statement that fails on the lake is
    /// prepared here to learn whose fault the failure is (see [`Inner::classify`]).
    probe: Mutex<Connection>,
}

/// The database and what each view currently reads.
struct State {
    conn: Connection,
    /// Per frame of [`Timeframe::ALL`]: what its view reads.
    sources: [ViewSource; Timeframe::ALL.len()],
}

impl fmt::Debug for DuckDbEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuckDbEngine")
            .field("lake_root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

/// What runs for an accepted statement.
enum Plan {
    /// One statement, streamed.
    Run { sql: String, wrapped: bool },
    /// Prepared (parsed and bound, not run) to prove it is one SELECT, then `run`.
    CheckThenRun { check: String, run: String },
}

impl DuckDbEngine {
    /// Opens an in-memory DuckDB over the lake at `lake_root` (which need not exist: every
    /// view is then empty). Nothing is written, in the lake or elsewhere.
    pub fn open(lake_root: &Path) -> Result<Self, QueryError> {
        let root = absolute_root(lake_root)?;
        let mut state = State {
            conn: empty_views(&root)?,
            sources: [ViewSource::Empty; Timeframe::ALL.len()],
        };
        refresh_views(&root, &mut state)?;
        let probe = empty_views(&root)?;
        tracing::debug!(lake = %root.display(), "DuckDB query engine opened");
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                state: Mutex::new(state),
                probe: Mutex::new(probe),
            }),
        })
    }

    /// The lake root the views read (absolute).
    pub fn lake_root(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `sql` as it is, without the statement guard: what the sandbox alone allows.
    #[cfg(test)]
    pub(crate) fn run_unguarded(&self, sql: &str) -> Result<QueryResult, QueryError> {
        let plan = Plan::Run {
            sql: sql.to_owned(),
            wrapped: false,
        };
        self.inner.run(&plan, None, sql)
    }

    /// The names of the views, finest frame first.
    pub fn view_names() -> Vec<String> {
        Timeframe::ALL
            .into_iter()
            .map(crate::views::view_name)
            .collect()
    }
}

#[async_trait]
impl QueryEngine for DuckDbEngine {
    async fn query(&self, sql: &str, limit: Option<usize>) -> Result<QueryResult, QueryError> {
        let plan = match guard::check(sql)? {
            Checked::Select => Plan::Run {
                sql: wrap(sql),
                wrapped: true,
            },
            Checked::Explain { analyze, inner } => Plan::CheckThenRun {
                check: wrap(inner),
                run: format!("EXPLAIN {}{inner}", if analyze { "ANALYZE " } else { "" }),
            },
        };
        let inner = Arc::clone(&self.inner);
        let statement = sql.to_owned();
        tokio::task::spawn_blocking(move || inner.run(&plan, limit, &statement))
            .await
            .map_err(|e| QueryError::Backend {
                message: format!("the query task failed: {e}"),
                source: Some(Box::new(e)),
            })?
    }
}

impl Inner {
    /// Runs a plan for the user's `statement` on a fresh connection to the database
    /// (blocking).
    fn run(
        &self,
        plan: &Plan,
        limit: Option<usize>,
        statement: &str,
    ) -> Result<QueryResult, QueryError> {
        let sql_error =
            |e: duckdb::Error, sql: &str, wrapped: bool| self.classify(e, sql, wrapped, statement);
        let conn = {
            let mut state = self.state.lock().map_err(|_| QueryError::Backend {
                message: "the DuckDB connection is poisoned by an earlier panic".into(),
                source: None,
            })?;
            refresh_views(&self.root, &mut state)?;
            state
                .conn
                .try_clone()
                .map_err(|e| backend("cannot open a DuckDB connection", e))?
        };
        let (sql, wrapped) = match plan {
            Plan::Run { sql, wrapped } => (sql.as_str(), *wrapped),
            Plan::CheckThenRun { check, run } => {
                conn.prepare(check).map_err(|e| sql_error(e, check, true))?;
                (run.as_str(), false)
            }
        };
        let mut stmt = conn.prepare(sql).map_err(|e| sql_error(e, sql, wrapped))?;
        let stream = stmt
            .stream_arrow([])
            .map_err(|e| sql_error(e, sql, wrapped))?;
        let columns: Vec<String> = stream
            .get_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        let mut truncated = false;
        for batch in stream {
            let batch = batch.map_err(|e| sql_error(e, sql, wrapped))?;
            let available = batch.num_rows();
            let take = limit.map_or(available, |l| available.min(l.saturating_sub(rows.len())));
            let mut cells = Vec::with_capacity(batch.num_columns());
            for column in batch.columns() {
                let column =
                    column_cells(column.as_ref(), take).map_err(|e| QueryError::Backend {
                        message: format!("cannot read a result column: {e}"),
                        source: Some(Box::new(e)),
                    })?;
                cells.push(column.into_iter());
            }
            for _ in 0..take {
                rows.push(
                    cells
                        .iter_mut()
                        .map(|c| c.next().unwrap_or(Cell::Null))
                        .collect(),
                );
            }
            if take < available {
                truncated = true;
                break;
            }
        }
        Ok(QueryResult {
            columns,
            rows,
            truncated,
        })
    }

    /// Whose fault a DuckDB failure of `sql` (the user's `statement`, or its wrapper) is.
    ///
    /// duckdb-rs reports every failure with the same code (`ErrorCode::Unknown`; it never
    /// reads `duckdb_result_error_type`), and the workspace forbids the `unsafe` of calling
    /// the C API directly, so the kind is established by trial instead of read from the
    /// message: `sql` is prepared (parsed, bound and planned, not run) against the probe
    /// database, whose views have the lake's names, columns and types but no files. If it
    /// fails there too, the statement itself is wrong (syntax, an unknown column or
    /// function, a type error, a path outside the sandbox): [`QueryError::Invalid`]. If it
    /// prepares, the statement is valid and running it over the lake's files failed (an
    /// unreadable or corrupt file, I/O, memory): [`QueryError::Execution`].
    fn classify(&self, e: duckdb::Error, sql: &str, wrapped: bool, statement: &str) -> QueryError {
        let Ok(probe) = self.probe.lock() else {
            return QueryError::Backend {
                message: format!(
                    "{} (and the probe connection is poisoned by an earlier panic)",
                    engine_message(&e, wrapped)
                ),
                source: Some(Box::new(e)),
            };
        };
        match probe.prepare(sql) {
            Ok(_) => {
                tracing::debug!(
                    statement,
                    "the statement is valid; running it over the lake failed"
                );
                QueryError::Execution {
                    message: engine_message(&e, wrapped),
                    source: Some(Box::new(e)),
                }
            }
            // The probe's own failure says what is wrong with the statement (the lake's
            // may be about a file the statement never got to).
            Err(invalid) => QueryError::Invalid {
                message: engine_message(&invalid, wrapped),
            },
        }
    }
}

/// `SELECT * FROM query('<sql>')`: DuckDB's `query()` parses its argument and accepts exactly
/// one SELECT statement, so nothing else can run whatever the guard's tokenizer thought.
fn wrap(sql: &str) -> String {
    format!("SELECT * FROM query({})", literal(sql))
}

/// The lake root as an absolute path without symbolic links (when it exists), as DuckDB's
/// `allowed_directories` compares path prefixes.
fn absolute_root(lake_root: &Path) -> Result<PathBuf, QueryError> {
    let root = std::path::absolute(lake_root).map_err(|e| QueryError::Backend {
        message: format!("cannot resolve the lake path {}: {e}", lake_root.display()),
        source: Some(Box::new(e)),
    })?;
    Ok(root.canonicalize().unwrap_or(root))
}

/// A new in-memory database, sandboxed to `root`, with every view empty.
fn empty_views(root: &Path) -> Result<Connection, QueryError> {
    let conn = Connection::open_in_memory().map_err(|e| backend("cannot open DuckDB", e))?;
    sandbox(&conn, root)?;
    for frame in Timeframe::ALL {
        conn.execute_batch(&create_view(root, frame, ViewSource::Empty))
            .map_err(|e| backend("cannot create the views", e))?;
    }
    Ok(conn)
}

/// The second read-only layer: DuckDB may read only under the lake, spill nothing to disk,
/// install or load no extension, and nobody can change that afterwards.
fn sandbox(conn: &Connection, root: &Path) -> Result<(), QueryError> {
    let settings = [
        // No spill files: a query that does not fit in memory fails instead of writing.
        "SET temp_directory = ''".to_owned(),
        format!(
            "SET allowed_directories = [{}]",
            literal(&root.to_string_lossy())
        ),
        "SET enable_external_access = false".to_owned(),
        "SET autoinstall_known_extensions = false".to_owned(),
        "SET autoload_known_extensions = false".to_owned(),
        "SET allow_community_extensions = false".to_owned(),
        "SET lock_configuration = true".to_owned(),
    ];
    for setting in settings {
        conn.execute_batch(&setting)
            .map_err(|e| backend(&format!("cannot apply `{setting}`"), e))?;
    }
    Ok(())
}

/// Points each view at its files when the frame has some and at an empty relation when it
/// has none, rebuilding only the views whose state changed (a view over a glob that matches
/// nothing would fail every query).
fn refresh_views(root: &Path, state: &mut State) -> Result<(), QueryError> {
    for (i, frame) in Timeframe::ALL.into_iter().enumerate() {
        let pattern = literal(&glob(root, frame));
        let has_files: bool = state
            .conn
            .query_row(
                &format!("SELECT EXISTS (SELECT 1 FROM glob({pattern}))"),
                [],
                |row| row.get(0),
            )
            .map_err(|e| backend("cannot list the lake", e))?;
        let source = match (has_files, format_is_current(root)) {
            (false, _) => ViewSource::Empty,
            (true, true) => ViewSource::Current,
            (true, false) => ViewSource::Mixed,
        };
        if source != state.sources[i] {
            let created = state.conn.execute_batch(&create_view(root, frame, source));
            match created {
                Ok(()) => {}
                // Binding every footer failed (a corrupt file): read as one schema instead,
                // so the other frames stay queryable and a query of this one fails naming
                // the file (a lake of one format reads right either way).
                Err(_) if source == ViewSource::Mixed => state
                    .conn
                    .execute_batch(&create_view(root, frame, ViewSource::Current))
                    .map_err(|e| backend("cannot create a view", e))?,
                Err(e) => return Err(backend("cannot create a view", e)),
            }
            state.sources[i] = source;
        }
    }
    Ok(())
}

/// Whether the lake root's format marker says every file is of the current lake format.
fn format_is_current(root: &Path) -> bool {
    std::fs::read_to_string(root.join(FORMAT_MARKER))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        == Some(LAKE_FORMAT_VERSION)
}

/// An engine failure.
fn backend(what: &str, e: duckdb::Error) -> QueryError {
    QueryError::Backend {
        message: format!("{what}: {e}"),
        source: Some(Box::new(e)),
    }
}

/// DuckDB's message for a failed statement. `wrapped` statements lose the error's position
/// context, which would show the `query()` wrapper instead of the user's SQL.
fn engine_message(e: &duckdb::Error, wrapped: bool) -> String {
    let full = e.to_string();
    if wrapped {
        full.split("\nLINE ")
            .next()
            .unwrap_or(&full)
            .trim()
            .to_owned()
    } else {
        full.trim().to_owned()
    }
}
