//! `mp health [--full] [--json]`: every check of the data directory, what is wrong and what
//! to do about it. It writes nothing: the database is opened read-only and never migrated.

use std::io::Write;
use std::path::Path;

use marketpipe_domain::JobStatus;
use marketpipe_lake::{HealthCheck, HealthStatus, lake_health};
use marketpipe_ports::JobRepository;
use marketpipe_provider_kit::ProcessEnv;
use marketpipe_sqlite::SqliteStore;

use crate::commands::Context;
use crate::commands::jobs::status_of;
use crate::error::AppError;
use crate::wiring::{self, Credentials, PROVIDERS};

/// `mp health` when the configuration itself could not be loaded: that one failed check.
pub(crate) fn config_failed(
    error: &AppError,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let checks = vec![HealthCheck {
        name: "config",
        status: HealthStatus::Fail,
        detail: format!("{error}; fix the file or the MP_* variable it names (`mp config show`)"),
    }];
    report(&checks, json, out)
}

/// `mp health [--full] [--json]`.
pub(crate) async fn run(
    ctx: &Context,
    config_source: Option<&Path>,
    full: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let mut checks = vec![HealthCheck {
        name: "config",
        status: HealthStatus::Ok,
        detail: match config_source {
            Some(path) => format!("{} is valid", path.display()),
            None => "no file; the built-in defaults with MP_* variables".to_owned(),
        },
    }];
    checks.push(data_dir_check(&ctx.data_dir));
    let (database, store) = database_check(&ctx.data_dir).await;
    checks.push(database);
    let lake = wiring::lake(&ctx.data_dir, &ctx.config)?;
    let manifest = store
        .as_ref()
        .map(|s| s as &dyn marketpipe_ports::PartitionManifest);
    checks.extend(lake_health(&lake, manifest, full).await);
    if let Some(store) = &store {
        checks.push(jobs_check(ctx, store).await);
        store.close().await;
    }
    checks.push(credentials_check(ctx));
    report(&checks, json, out)
}

fn report(checks: &[HealthCheck], json: bool, out: &mut dyn Write) -> Result<(), AppError> {
    if json {
        let rows: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!({"check": c.name, "status": c.status.as_str(), "detail": c.detail})
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &rows).map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
    } else {
        for check in checks {
            writeln!(
                out,
                "{:<4}  {:<14}  {}",
                check.status.as_str(),
                check.name,
                check.detail
            )?;
        }
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == HealthStatus::Fail)
        .map(|c| c.name)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(AppError::Failed(anyhow::anyhow!(
            "health checks failed: {} (each says what to do)",
            failed.join(", ")
        )))
    }
}

fn data_dir_check(dir: &Path) -> HealthCheck {
    let name = "data_dir";
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => HealthCheck {
            name,
            status: HealthStatus::Fail,
            detail: format!(
                "{} is not a directory; point --data-dir (or MP_DATA_DIR, data_dir) at one",
                dir.display()
            ),
        },
        Ok(m) if m.permissions().readonly() => HealthCheck {
            name,
            status: HealthStatus::Fail,
            detail: format!(
                "{} is read-only; make it writable for the user running mp",
                dir.display()
            ),
        },
        Ok(_) => HealthCheck {
            name,
            status: HealthStatus::Ok,
            detail: format!("{} exists and is writable", dir.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HealthCheck {
            name,
            status: HealthStatus::Warn,
            detail: format!(
                "{} does not exist yet (the first `mp ingest` or `mp backfill` creates it)",
                dir.display()
            ),
        },
        Err(e) => HealthCheck {
            name,
            status: HealthStatus::Fail,
            detail: format!("cannot read {}: {e}", dir.display()),
        },
    }
}

/// The database check, and the store opened read-only when its schema is current.
async fn database_check(data_dir: &Path) -> (HealthCheck, Option<SqliteStore>) {
    let name = "database";
    let path = wiring::database_path(data_dir);
    let fail = |detail| {
        (
            HealthCheck {
                name,
                status: HealthStatus::Fail,
                detail,
            },
            None,
        )
    };
    let status = match SqliteStore::schema_status(&path).await {
        Ok(Some(status)) => status,
        Ok(None) => {
            return (
                HealthCheck {
                    name,
                    status: HealthStatus::Warn,
                    detail: format!(
                        "no metadata database at {} yet (created by the first command that \
                         stores anything, or by `mp migrate`)",
                        path.display()
                    ),
                },
                None,
            );
        }
        Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
    };
    if !status.pending.is_empty() {
        return fail(format!(
            "{} is not migrated: migration(s) {:?} pending; run `mp migrate`",
            path.display(),
            status.pending
        ));
    }
    if !status.unknown.is_empty() {
        return fail(format!(
            "{} has migration(s) {:?} this mp does not know: it was written by a newer mp; \
             run that version",
            path.display(),
            status.unknown
        ));
    }
    match SqliteStore::open_read_only(&path).await {
        Ok(Some(store)) => (
            HealthCheck {
                name,
                status: HealthStatus::Ok,
                detail: format!(
                    "{} reachable, migrated to version {}",
                    path.display(),
                    status.applied.last().copied().unwrap_or_default()
                ),
            },
            Some(store),
        ),
        Ok(None) => fail(format!("{} disappeared during the check", path.display())),
        Err(e) => fail(format!("cannot open {}: {e}", path.display())),
    }
}

async fn jobs_check(ctx: &Context, store: &SqliteStore) -> HealthCheck {
    let name = "jobs";
    let jobs = match store.list(usize::MAX).await {
        Ok(jobs) => jobs,
        Err(e) => {
            return HealthCheck {
                name,
                status: HealthStatus::Fail,
                detail: format!("cannot list jobs: {e}"),
            };
        }
    };
    let now = ctx.clock.now();
    let interrupted: Vec<String> = jobs
        .iter()
        .filter(|j| {
            status_of(j.state, j.owner.as_ref(), j.heartbeat_at, now) == JobStatus::Interrupted
        })
        .map(|j| j.id.to_string())
        .collect();
    if interrupted.is_empty() {
        return HealthCheck {
            name,
            status: HealthStatus::Ok,
            detail: format!("{} jobs, none interrupted", jobs.len()),
        };
    }
    HealthCheck {
        name,
        status: HealthStatus::Warn,
        detail: format!(
            "{} interrupted job(s) ({}): `mp ingest --resume ID` continues one, `mp jobs doctor \
             --fix` marks them",
            interrupted.len(),
            interrupted.join(", ")
        ),
    }
}

/// Credentials of every provider that needs them, by variable name only; a fail when the
/// configured default provider lacks them.
fn credentials_check(ctx: &Context) -> HealthCheck {
    let default = &ctx.config.ingest.provider;
    let mut parts = Vec::new();
    let mut missing_default = None;
    for entry in PROVIDERS {
        match (entry.credentials)(&ctx.config, &ProcessEnv) {
            Credentials::NotNeeded => {}
            Credentials::Present => parts.push(format!("{} present", entry.name)),
            Credentials::Missing => {
                let vars = entry.credential_variables.unwrap_or("its credentials");
                parts.push(format!("{} missing ({vars})", entry.name));
                if entry.name == default.as_str() {
                    missing_default = Some(vars);
                }
            }
        }
    }
    let detail = parts.join(", ");
    match missing_default {
        Some(vars) => HealthCheck {
            name: "credentials",
            status: HealthStatus::Fail,
            detail: format!(
                "the default provider {default} has no credentials: set {vars} (or the \
                 config's providers section); {detail}"
            ),
        },
        None => HealthCheck {
            name: "credentials",
            status: HealthStatus::Ok,
            detail: format!("default provider {default} is usable; {detail}"),
        },
    }
}
