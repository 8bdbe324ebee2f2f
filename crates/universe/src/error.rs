//! The context's one error type.

use chrono::NaiveDate;
use marketpipe_ports::{ProviderError, RepositoryError};
use thiserror::Error;

use crate::filters::FilterError;

/// Why a symbol-master or universe use case failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UniverseError {
    /// The filters file is not valid.
    #[error(transparent)]
    Filters(#[from] FilterError),
    /// An as-of date before the first snapshot of the symbol master.
    #[error(
        "no symbol master snapshot on or before {as_of}{}: load one with `mp symbols update \
         --as-of DATE` first",
        first.map(|d| format!(" (the first is of {d})")).unwrap_or_default()
    )]
    AsOfBeforeSnapshots {
        /// The date asked for.
        as_of: NaiveDate,
        /// The first snapshot's date, if any was loaded.
        first: Option<NaiveDate>,
    },
    /// A snapshot dated before the source's latest one: history is loaded in date order.
    #[error(
        "{source_name}: a snapshot of {as_of} is older than the latest loaded one ({latest}); \
         snapshots are loaded in date order (pass --as-of {latest} or later)"
    )]
    OutOfOrder {
        /// The source.
        source_name: String,
        /// The snapshot's date.
        as_of: NaiveDate,
        /// The latest loaded snapshot's date.
        latest: NaiveDate,
    },
    /// An as-of date before the day a source that only has its current list made it.
    #[error(
        "{source_name} only lists the securities of the day it is asked ({made_on}): a \
         snapshot dated {as_of} would put them into the past; leave out --as-of, or give \
         {made_on} or later"
    )]
    BeforeTheList {
        /// The source.
        source_name: String,
        /// The date asked for.
        as_of: NaiveDate,
        /// The day the list was made.
        made_on: NaiveDate,
    },
    /// The source listed nothing: loading it would close every row of its history.
    #[error("{source_name} listed no securities; nothing was changed")]
    EmptySnapshot {
        /// The source.
        source_name: String,
    },
    /// No universe was built for the date asked for.
    #[error("no universe was built for {0}: see `mp universe list`")]
    UnknownUniverse(NaiveDate),
    /// No universe was built at all.
    #[error("no universe has been built yet: run `mp universe build --filters FILE`")]
    NoUniverse,
    /// The source failed.
    #[error(transparent)]
    Source(#[from] ProviderError),
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Repository(#[from] RepositoryError),
}

impl UniverseError {
    /// Whether the user's input is at fault (a bad file, date or location: exit 2), rather
    /// than a failure on the way (exit 1).
    pub const fn is_bad_input(&self) -> bool {
        match self {
            Self::Filters(_)
            | Self::AsOfBeforeSnapshots { .. }
            | Self::OutOfOrder { .. }
            | Self::BeforeTheList { .. }
            | Self::EmptySnapshot { .. }
            | Self::UnknownUniverse(_)
            | Self::NoUniverse => true,
            Self::Source(e) => matches!(
                e,
                ProviderError::Malformed { .. }
                    | ProviderError::NotFound { .. }
                    | ProviderError::BadRequest { .. }
                    | ProviderError::Auth { .. }
            ),
            Self::Repository(_) => false,
        }
    }
}
