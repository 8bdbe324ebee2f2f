//! # marketpipe-lake
//!
//! The lake context: the lake's own upkeep, as opposed to what flows through it. Today that
//! is the **format upgrade** (`mp lake upgrade`): every partition file still in an older lake
//! format (docs/storage.md, "Format versions") is rewritten in the current one by the lake's
//! write protocol, one partition at a time, so that a run can be killed at any point and run
//! again; and the **format census** that `mp health` and `mp lake upgrade --dry-run` report,
//! with the lake's other **health checks** ([`lake_health`]: files readable, files equal to
//! the manifest, no orphaned files).
//! Aggregated partitions of format 1 said `provider = aggregate`; the upgrade gives their
//! bars back the provider and feed of the 1m bars they were built from. And **retention**
//! (`mp prune parquet`): the rows before a cut leave every frame, by the same write protocol,
//! with the manifest and the coverage map kept in agreement ([`prune_lake`]). Like every
//! context it depends only on the ports and the domain.

mod health;
mod retention;
mod upgrade;

pub use health::{MANIFEST_SAMPLE, lake_health};
pub use retention::{
    PruneError, PruneReport, PruneRequest, PrunedPartition, RetentionDeps, prune_lake,
};
pub use upgrade::{
    FormatCensus, HealthCheck, HealthStatus, LakeUpgrader, NoUpgradeProgress, UpgradeDeps,
    UpgradeError, UpgradeFailure, UpgradeProgress, UpgradeReport, census,
};

#[cfg(test)]
mod tests;
