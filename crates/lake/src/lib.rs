//! # marketpipe-lake
//!
//! The lake context: the lake's own upkeep, as opposed to what flows through it. Today that
//! is the **format upgrade** (`mp lake upgrade`): every partition file still in an older lake
//! format (docs/storage.md, "Format versions") is rewritten in the current one by the lake's
//! write protocol, one partition at a time, so that a run can be killed at any point and run
//! again; and the **format census** that `mp health` and `mp lake upgrade --dry-run` report.
//! Aggregated partitions of format 1 said `provider = aggregate`; the upgrade gives their
//! bars back the provider and feed of the 1m bars they were built from. Like every context it
//! depends only on the ports and the domain.

mod upgrade;

pub use upgrade::{
    FormatCensus, HealthCheck, HealthStatus, LakeUpgrader, NoUpgradeProgress, UpgradeDeps,
    UpgradeError, UpgradeFailure, UpgradeProgress, UpgradeReport, census,
};

#[cfg(test)]
mod tests;
