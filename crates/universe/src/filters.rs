//! `filters.yml`: what a universe selects, checked as a whole before anything is read.

use std::fmt;

use marketpipe_domain::{
    AssetType, Exchange, FinancialStatus, SecuritySymbol, Symbol, SymbolConvention,
};
use regex::Regex;
use serde::Deserialize;
use thiserror::Error;

/// The only `config_version` this build reads.
pub const FILTERS_VERSION: u32 = 1;

/// Sessions averaged when a filter does not say.
pub const DEFAULT_SESSIONS: usize = 20;

/// Why a filters file was refused. Each message names the key or value at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FilterError {
    /// Not YAML, an unknown key, or a value of the wrong type (the message names it, with its
    /// line and column).
    #[error("filters file: {message}")]
    Yaml {
        /// The parser's message.
        message: String,
        /// The parser's error.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A `config_version` this build does not read.
    #[error("filters file: config_version {found} is not supported (write config_version: 1)")]
    Version {
        /// The version found.
        found: u32,
    },
    /// `symbol_pattern` is not a regular expression.
    #[error("filters file: symbol_pattern {pattern:?} is not a regular expression: {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// The regex compiler's message.
        message: String,
    },
    /// A bound or a session count that cannot hold.
    #[error("filters file: {filter}: {reason}")]
    Invalid {
        /// The key.
        filter: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A symbol in `include` or `exclude` that is not a symbol.
    #[error("filters file: {filter}: {value:?} is not a symbol: {message}")]
    Symbol {
        /// `include` or `exclude`.
        filter: &'static str,
        /// The text.
        value: String,
        /// Why.
        message: String,
    },
}

/// A range of values; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// The smallest value kept.
    pub min: Option<f64>,
    /// The largest value kept.
    pub max: Option<f64>,
}

impl Bounds {
    /// Whether `value` is within the bounds.
    pub fn contains(&self, value: f64) -> bool {
        self.min.is_none_or(|min| value >= min) && self.max.is_none_or(|max| value <= max)
    }

    fn check(&self, filter: &'static str) -> Result<(), FilterError> {
        for (end, value) in [("min", self.min), ("max", self.max)] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                return Err(FilterError::Invalid {
                    filter,
                    reason: format!("{end} must be a number of 0 or more"),
                });
            }
        }
        if let (Some(min), Some(max)) = (self.min, self.max)
            && min > max
        {
            return Err(FilterError::Invalid {
                filter,
                reason: format!("min {min} is above max {max}"),
            });
        }
        if self.min.is_none() && self.max.is_none() {
            return Err(FilterError::Invalid {
                filter,
                reason: "give min, max or both".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(min), Some(max)) => write!(f, "{min}..{max}"),
            (Some(min), None) => write!(f, ">= {min}"),
            (None, Some(max)) => write!(f, "<= {max}"),
            (None, None) => f.write_str("any"),
        }
    }
}

/// A bound on a mean over the last sessions.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AverageFilter {
    /// The smallest mean kept.
    pub min: Option<f64>,
    /// The largest mean kept.
    pub max: Option<f64>,
    /// Sessions averaged (the symbol's last sessions with bars on or before the as-of date).
    #[serde(default = "default_sessions")]
    pub sessions: usize,
}

const fn default_sessions() -> usize {
    DEFAULT_SESSIONS
}

impl AverageFilter {
    /// The bounds.
    pub const fn bounds(&self) -> Bounds {
        Bounds {
            min: self.min,
            max: self.max,
        }
    }

    fn check(&self, filter: &'static str) -> Result<(), FilterError> {
        if self.sessions == 0 || self.sessions > 1000 {
            return Err(FilterError::Invalid {
                filter,
                reason: format!("sessions {} must be between 1 and 1000", self.sessions),
            });
        }
        self.bounds().check(filter)
    }
}

/// Sectors kept or dropped (the SIC division names: manufacturing, finance, …).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SectorFilter {
    /// Only these sectors (empty: any).
    #[serde(default)]
    pub include: Vec<String>,
    /// Never these sectors.
    #[serde(default)]
    pub exclude: Vec<String>,
}

/// What members are ranked by (descending; `symbol` ascending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Mean dollar volume.
    AvgDollarVolume,
    /// Mean volume.
    AvgVolume,
    /// Last close.
    Price,
    /// Market capitalisation.
    MarketCap,
    /// Alphabetical.
    Symbol,
}

impl SortKey {
    /// The key's name in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AvgDollarVolume => "avg_dollar_volume",
            Self::AvgVolume => "avg_volume",
            Self::Price => "price",
            Self::MarketCap => "market_cap",
            Self::Symbol => "symbol",
        }
    }
}

/// The file as written (every key optional but `config_version`; unknown keys refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    config_version: u32,
    name: Option<String>,
    #[serde(default)]
    exchanges: Vec<Exchange>,
    #[serde(default)]
    asset_types: Vec<AssetType>,
    #[serde(default = "yes")]
    exclude_test_issues: bool,
    #[serde(default)]
    financial_status: Vec<FinancialStatus>,
    symbol_pattern: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    price: Option<Bounds>,
    avg_dollar_volume: Option<AverageFilter>,
    avg_volume: Option<AverageFilter>,
    market_cap: Option<Bounds>,
    sectors: Option<SectorFilter>,
    sort_by: Option<SortKey>,
    max_symbols: Option<usize>,
}

const fn yes() -> bool {
    true
}

/// A checked `filters.yml`.
#[derive(Debug, Clone)]
pub struct FilterSpec {
    /// The universe's name (default `universe`).
    pub name: String,
    /// Listing exchanges kept (empty: any).
    pub exchanges: Vec<Exchange>,
    /// Asset types kept (empty: any).
    pub asset_types: Vec<AssetType>,
    /// Drop test issues (default true).
    pub exclude_test_issues: bool,
    /// Nasdaq financial statuses kept (empty: any). Securities whose source reports no
    /// status (every listing outside Nasdaq) are not judged by it.
    pub financial_status: Vec<FinancialStatus>,
    /// Symbols must match this (the canonical text, e.g. `BRK.B`).
    pub symbol_pattern: Option<Regex>,
    /// Always members, whatever the filters say (even beyond `max_symbols`).
    pub include: Vec<Symbol>,
    /// Never members.
    pub exclude: Vec<Symbol>,
    /// Last session close on or before the as-of date.
    pub price: Option<Bounds>,
    /// Mean over the last sessions of the session's dollar volume (VWAP × volume).
    pub avg_dollar_volume: Option<AverageFilter>,
    /// Mean over the last sessions of the session's volume.
    pub avg_volume: Option<AverageFilter>,
    /// Market capitalisation (needs a source that has it).
    pub market_cap: Option<Bounds>,
    /// Sectors kept and dropped (needs a source that has them).
    pub sectors: Option<SectorFilter>,
    /// Rank members by this, descending (default `avg_dollar_volume`).
    pub sort_by: SortKey,
    /// At most this many members, besides the `include` ones beyond it.
    pub max_symbols: Option<usize>,
}

/// A symbol of `include`/`exclude` in any common spelling (`BRK.B`, `BRK/B`, `BRK-B`).
fn listed_symbol(filter: &'static str, text: &str) -> Result<Symbol, FilterError> {
    let convention = if text.contains('-') {
        SymbolConvention::Sec
    } else {
        SymbolConvention::Cqs
    };
    SecuritySymbol::parse(text, convention)
        .map(|s| s.symbol())
        .map_err(|e| FilterError::Symbol {
            filter,
            value: text.to_owned(),
            message: e.to_string(),
        })
}

impl FilterSpec {
    /// Reads and checks a filters file.
    pub fn from_yaml(text: &str) -> Result<Self, FilterError> {
        let raw: RawSpec = serde_yaml_ng::from_str(text).map_err(|e| FilterError::Yaml {
            message: e.to_string(),
            source: e,
        })?;
        if raw.config_version != FILTERS_VERSION {
            return Err(FilterError::Version {
                found: raw.config_version,
            });
        }
        let symbol_pattern = raw
            .symbol_pattern
            .map(|p| {
                Regex::new(&p).map_err(|e| FilterError::Pattern {
                    pattern: p.clone(),
                    message: e.to_string(),
                })
            })
            .transpose()?;
        if let Some(b) = &raw.price {
            b.check("price")?;
        }
        if let Some(b) = &raw.market_cap {
            b.check("market_cap")?;
        }
        if let Some(a) = &raw.avg_dollar_volume {
            a.check("avg_dollar_volume")?;
        }
        if let Some(a) = &raw.avg_volume {
            a.check("avg_volume")?;
        }
        if raw.max_symbols == Some(0) {
            return Err(FilterError::Invalid {
                filter: "max_symbols",
                reason: "must be 1 or more (leave it out for no limit)".into(),
            });
        }
        let name = raw.name.unwrap_or_else(|| "universe".into());
        if name.trim().is_empty() {
            return Err(FilterError::Invalid {
                filter: "name",
                reason: "must not be empty".into(),
            });
        }
        let include = raw
            .include
            .iter()
            .map(|s| listed_symbol("include", s))
            .collect::<Result<Vec<_>, _>>()?;
        let exclude = raw
            .exclude
            .iter()
            .map(|s| listed_symbol("exclude", s))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(both) = include.iter().find(|s| exclude.contains(s)) {
            return Err(FilterError::Invalid {
                filter: "include",
                reason: format!("{both} is both included and excluded"),
            });
        }
        let sectors = raw.sectors.map(|s| SectorFilter {
            include: s
                .include
                .iter()
                .map(|x| x.trim().to_ascii_lowercase())
                .collect(),
            exclude: s
                .exclude
                .iter()
                .map(|x| x.trim().to_ascii_lowercase())
                .collect(),
        });
        Ok(Self {
            name,
            exchanges: raw.exchanges,
            asset_types: raw.asset_types,
            exclude_test_issues: raw.exclude_test_issues,
            financial_status: raw.financial_status,
            symbol_pattern,
            include,
            exclude,
            price: raw.price,
            avg_dollar_volume: raw.avg_dollar_volume,
            avg_volume: raw.avg_volume,
            market_cap: raw.market_cap,
            sectors,
            sort_by: raw.sort_by.unwrap_or(SortKey::AvgDollarVolume),
            max_symbols: raw.max_symbols,
        })
    }

    /// Sessions of daily summaries the build needs per symbol.
    pub fn sessions_needed(&self) -> usize {
        [self.avg_dollar_volume, self.avg_volume]
            .iter()
            .flatten()
            .map(|a| a.sessions)
            .max()
            .unwrap_or(DEFAULT_SESSIONS)
            .max(DEFAULT_SESSIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r"
config_version: 1
name: liquid-us-equities
exchanges: [NASDAQ, NYSE]
asset_types: [stock]
exclude_test_issues: true
financial_status: [normal]
symbol_pattern: '^[A-Z]{1,5}(\.[A-Z])?$'
include: [BRK.B]
exclude: [BRK-A]
price: {min: 5, max: 5000}
avg_dollar_volume: {min: 10000000, sessions: 20}
avg_volume: {min: 100000, sessions: 20}
market_cap: {min: 300000000}
sectors: {include: [Manufacturing], exclude: []}
sort_by: avg_dollar_volume
max_symbols: 500
";

    #[test]
    fn the_documented_example_reads() {
        let spec = FilterSpec::from_yaml(EXAMPLE).unwrap();
        assert_eq!(spec.name, "liquid-us-equities");
        assert_eq!(spec.exchanges, [Exchange::Nasdaq, Exchange::Nyse]);
        assert_eq!(spec.include[0].as_str(), "BRK.B");
        assert_eq!(spec.exclude[0].as_str(), "BRK.A");
        assert_eq!(spec.avg_volume.unwrap().sessions, 20);
        assert_eq!(spec.sectors.unwrap().include, ["manufacturing"]);
        assert_eq!(spec.max_symbols, Some(500));
        assert!(spec.symbol_pattern.unwrap().is_match("BRK.B"));
    }

    fn error_of(text: &str) -> String {
        FilterSpec::from_yaml(text).unwrap_err().to_string()
    }

    #[test]
    fn bad_files_are_refused_naming_the_key_or_value() {
        let err = error_of("config_version: 1\nmin_price: 5\n");
        assert!(err.contains("min_price"), "{err}");
        let err = error_of("config_version: 2\n");
        assert!(err.contains("config_version 2"), "{err}");
        let err = error_of("config_version: 1\nexchanges: [LSE]\n");
        assert!(err.contains("LSE"), "{err}");
        let err = error_of("config_version: 1\nprice: {min: 10, max: 5}\n");
        assert!(err.contains("price") && err.contains("above max"), "{err}");
        let err = error_of("config_version: 1\nprice: {mn: 10}\n");
        assert!(err.contains("mn"), "{err}");
        let err = error_of("config_version: 1\nsymbol_pattern: '(['\n");
        assert!(err.contains("symbol_pattern"), "{err}");
        let err = error_of("config_version: 1\navg_volume: {min: 1, sessions: 0}\n");
        assert!(
            err.contains("avg_volume") && err.contains("sessions 0"),
            "{err}"
        );
        let err = error_of("config_version: 1\ninclude: [brk b]\n");
        assert!(err.contains("include") && err.contains("brk b"), "{err}");
        let err = error_of("config_version: 1\nmax_symbols: 0\n");
        assert!(err.contains("max_symbols"), "{err}");
        let err = error_of("name: x\n");
        assert!(err.contains("config_version"), "{err}");
        let err = error_of("config_version: 1\ninclude: [AAPL]\nexclude: [AAPL]\n");
        assert!(err.contains("both"), "{err}");
    }

    #[test]
    fn defaults_are_documented_ones() {
        let spec = FilterSpec::from_yaml("config_version: 1\n").unwrap();
        assert_eq!(spec.name, "universe");
        assert!(spec.exclude_test_issues);
        assert_eq!(spec.sort_by, SortKey::AvgDollarVolume);
        assert_eq!(spec.sessions_needed(), DEFAULT_SESSIONS);
        let bounds = Bounds {
            min: Some(5.0),
            max: None,
        };
        assert!(bounds.contains(5.0) && !bounds.contains(4.99));
        assert_eq!(bounds.to_string(), ">= 5");
    }
}
