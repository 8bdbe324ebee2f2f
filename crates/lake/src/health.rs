//! The lake's checks of `mp health`: files readable (footers of all, or every row with
//! `full`), files equal to the manifest (a sample, or all with `full`), no orphaned temporary
//! or lock files, and the format census. Nothing is written.

use std::fmt::Write as _;

use marketpipe_domain::Timeframe;
use marketpipe_ports::{BarStore, IntegrityDepth, LakeError, OrphanKind, PartitionManifest};

use crate::upgrade::{HealthCheck, HealthStatus, census};

/// Partitions compared with the manifest when not `full`: spread evenly over the manifest.
pub const MANIFEST_SAMPLE: usize = 64;

/// Problems named in one check's detail at most (the count says how many there are).
const NAMED: usize = 5;

/// The lake's health checks. Reading failures become failed checks, not errors: health
/// reports what it finds.
pub async fn lake_health(
    lake: &dyn BarStore,
    manifest: Option<&dyn PartitionManifest>,
    full: bool,
) -> Vec<HealthCheck> {
    let mut checks = vec![integrity_check(lake, full).await];
    if let Some(manifest) = manifest {
        checks.push(manifest_check(lake, manifest, full).await);
    }
    checks.push(orphans_check(lake).await);
    checks.push(match census(lake).await {
        Ok(census) => census.health_check(),
        Err(e) => failed(
            "lake_format",
            format!("cannot read the lake's formats: {e}"),
        ),
    });
    checks
}

fn failed(name: &'static str, detail: String) -> HealthCheck {
    HealthCheck {
        name,
        status: HealthStatus::Fail,
        detail,
    }
}

fn named(problems: &[String]) -> String {
    let mut text = problems
        .iter()
        .take(NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > NAMED {
        let _ = write!(text, "; and {} more", problems.len() - NAMED);
    }
    text
}

async fn integrity_check(lake: &dyn BarStore, full: bool) -> HealthCheck {
    let depth = if full {
        IntegrityDepth::Full
    } else {
        IntegrityDepth::Footer
    };
    let report = match lake.check_integrity(None, depth).await {
        Ok(report) => report,
        Err(e) => return failed("lake_integrity", format!("cannot check the lake: {e}")),
    };
    // Orphaned temporary and lock files have their own check; here only the data files.
    let problems: Vec<String> = report
        .problems
        .iter()
        .filter(|p| p.path.ends_with(marketpipe_ports::layout::PART_FILE))
        .map(|p| format!("{}: {}", p.path, p.problem))
        .collect();
    let what = if full {
        "every row read"
    } else {
        "footers read; --full reads every row"
    };
    if problems.is_empty() {
        return HealthCheck {
            name: "lake_integrity",
            status: HealthStatus::Ok,
            detail: format!("{} partition files readable ({what})", report.files_checked),
        };
    }
    failed(
        "lake_integrity",
        format!(
            "{} of {} partition files are damaged: {}. Move each aside and re-fetch its \
             sessions with `mp backfill` (or rebuild an aggregated frame with `mp aggregate \
             --full`)",
            problems.len(),
            report.files_checked,
            named(&problems)
        ),
    )
}

async fn manifest_check(
    lake: &dyn BarStore,
    manifest: &dyn PartitionManifest,
    full: bool,
) -> HealthCheck {
    let mut records = Vec::new();
    for frame in Timeframe::ALL {
        match manifest.list(frame, &[]).await {
            Ok(mut list) => records.append(&mut list),
            Err(e) => return failed("manifest", format!("cannot read the manifest: {e}")),
        }
    }
    let total = records.len();
    let sample: Vec<_> = if full || total <= MANIFEST_SAMPLE {
        records
    } else {
        // Evenly spread, always the same ones for the same manifest.
        (0..MANIFEST_SAMPLE)
            .filter_map(|i| records.get(i * total / MANIFEST_SAMPLE).cloned())
            .collect()
    };
    let mut problems = Vec::new();
    for record in &sample {
        match lake.partition_digest(&record.key).await {
            Ok(Some(d)) if !d.sorted_unique => problems.push(format!(
                "{} ({}): rows are not sorted by unique ts (changed outside mp)",
                record.key, record.path
            )),
            Ok(Some(d)) if d.content_hash == record.content_hash => {}
            Ok(Some(_)) => problems.push(format!(
                "{} ({}) differs from the manifest: changed outside mp",
                record.key, record.path
            )),
            Ok(None) => problems.push(format!(
                "{} ({}) is in the manifest but its file is gone",
                record.key, record.path
            )),
            Err(LakeError::Corrupt { path, message, .. }) => {
                problems.push(format!("{} ({path}): {message}", record.key));
            }
            Err(e) => problems.push(format!("{}: {e}", record.key)),
        }
    }
    let what = if sample.len() == total {
        format!("all {total}")
    } else {
        format!("{} of {total} (--full checks all)", sample.len())
    };
    if problems.is_empty() {
        return HealthCheck {
            name: "manifest",
            status: HealthStatus::Ok,
            detail: format!("{what} recorded partitions match their files"),
        };
    }
    failed(
        "manifest",
        format!(
            "{} of {what} recorded partitions do not match their files: {}. `mp backfill` \
             re-fetches the 1m sessions they lack; `mp aggregate --full` rebuilds the frames",
            problems.len(),
            named(&problems)
        ),
    )
}

async fn orphans_check(lake: &dyn BarStore) -> HealthCheck {
    let orphans = match lake.clean_orphans(false).await {
        Ok(orphans) => orphans,
        Err(e) => return failed("orphans", format!("cannot look for orphaned files: {e}")),
    };
    if orphans.is_empty() {
        return HealthCheck {
            name: "orphans",
            status: HealthStatus::Ok,
            detail: "no orphaned temporary or lock files".to_owned(),
        };
    }
    let listed: Vec<String> = orphans
        .iter()
        .map(|o| {
            let kind = match o.kind {
                OrphanKind::Temp => "temporary file",
                OrphanKind::Lock => "lock file",
            };
            format!("{kind} lake/{}", o.path)
        })
        .collect();
    failed(
        "orphans",
        format!(
            "{} orphaned files of interrupted writes: {}; `mp jobs doctor --fix` removes them",
            orphans.len(),
            named(&listed)
        ),
    )
}
