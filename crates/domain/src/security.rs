//! The symbol master's value types: one normal form for a security's symbol across vendors
//! ([`SecuritySymbol`]), the listing exchange, the asset type, Nasdaq's financial status,
//! and one source's description of a security ([`SecurityRecord`]) with the interval it was
//! valid ([`MasterRow`]).
//!
//! Vendors spell the same security differently: Berkshire's class B is `BRK.B` at Alpaca,
//! Polygon and Nasdaq, `BRK/B` in old CQS files and `BRK-B` at the SEC; Arbor's preferred D is
//! `ABRpD` (CQS, Polygon), `ABR$D` (ACT) and `ABR-PD` (SEC style). Each is parsed into
//! `(root, suffix)` by its [`SymbolConvention`] and written in one canonical text, which is
//! the lake's [`Symbol`]: `BRK.B`, `ABR.PR.D`, `AACT.WS`, `AACT.U`.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::symbol::Symbol;

/// How a vendor writes the suffix of a class share, preferred, warrant, unit or right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SymbolConvention {
    /// Our own canonical text (`BRK.B`, `ABR.PR.D`, `AACT.WS`).
    Canonical,
    /// The CQS/CTS convention of `otherlisted.txt`'s CQS column, Polygon and Alpaca: `.` or
    /// `/` before a class, `WS` or `U` (`BRK.B`, `BRK/B`, `AACT.WS`, `AIG/WS/A`), a lower-case
    /// `p`, `r` or `w` for preferreds, rights and when-issued (`ABRpD`, `XYZr`).
    Cqs,
    /// Nasdaq's ACT/CTCI convention (`otherlisted.txt`'s ACT Symbol column): `.A` class,
    /// `.W` warrant, `.U` unit, `.R` right, `$` preferred (`ABR$D`).
    Act,
    /// The SEC's company ticker files (and Yahoo): a dash (`BRK-B`, `CTA-PA` preferred A).
    Sec,
    /// `nasdaqlisted.txt`: up to five letters with no delimiter, kept as they are (the fifth
    /// letter is ambiguous: `AAPL` is no preferred).
    NasdaqListed,
}

impl SymbolConvention {
    /// The convention's name in messages.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Canonical => "canonical",
            Self::Cqs => "CQS",
            Self::Act => "ACT",
            Self::Sec => "SEC",
            Self::NasdaqListed => "Nasdaq-listed",
        }
    }
}

/// What follows a security's root symbol.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolSuffix {
    /// The common share (or a symbol kept whole, as in `nasdaqlisted.txt`).
    None,
    /// A share class: `BRK.B`.
    Class(String),
    /// A preferred, with its series when it has one: `ABR.PR.D`.
    Preferred(Option<String>),
    /// A warrant, with its class when it has one: `AACT.WS`, `AIG.WS.A`.
    Warrant(Option<String>),
    /// A unit: `AACT.U`.
    Unit,
    /// A right: `XYZ.RT`.
    Right,
    /// When issued: `XYZ.WI`.
    WhenIssued,
    /// When distributed: `XYZ.WD`.
    WhenDistributed,
}

/// A security's symbol in normal form: the root and what follows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecuritySymbol {
    root: String,
    suffix: SymbolSuffix,
    // The canonical text as a lake symbol, checked once when built.
    symbol: Symbol,
}

/// A series or class: one to two upper-case letters.
fn is_series(text: &str) -> bool {
    (1..=2).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_uppercase())
}

/// A root: one to fourteen upper-case letters or digits.
fn is_root(text: &str) -> bool {
    (1..=14).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl SecuritySymbol {
    /// Reads `text` as written in `convention`.
    pub fn parse(text: &str, convention: SymbolConvention) -> Result<Self, DomainError> {
        let reject = |reason| DomainError::InvalidVendorSymbol {
            value: text.to_owned(),
            convention: convention.name(),
            reason,
        };
        let text_trimmed = text.trim();
        if text_trimmed.is_empty() {
            return Err(reject("the symbol is empty"));
        }
        let parsed = match convention {
            SymbolConvention::Canonical | SymbolConvention::Cqs => parse_cqs(text_trimmed),
            SymbolConvention::Act => parse_act(text_trimmed),
            SymbolConvention::Sec => parse_sec(text_trimmed),
            SymbolConvention::NasdaqListed => {
                if text_trimmed.contains(['.', '/']) {
                    parse_cqs(text_trimmed)
                } else {
                    Ok((text_trimmed.to_owned(), SymbolSuffix::None))
                }
            }
        };
        let (root, suffix) = parsed.map_err(reject)?;
        Self::new(root, suffix).map_err(|e| match e {
            DomainError::InvalidVendorSymbol { reason, .. } => reject(reason),
            other => other,
        })
    }

    /// A symbol from its parts; the root must be 1–14 upper-case letters or digits and the
    /// canonical text a valid lake [`Symbol`].
    pub fn new(root: impl Into<String>, suffix: SymbolSuffix) -> Result<Self, DomainError> {
        let root = root.into();
        let reject = |reason| DomainError::InvalidVendorSymbol {
            value: root.clone(),
            convention: SymbolConvention::Canonical.name(),
            reason,
        };
        if !is_root(&root) {
            return Err(reject("the root must be 1-14 upper-case letters or digits"));
        }
        let text = canonical(&root, &suffix);
        let symbol = Symbol::new(&text).map_err(|_| reject("the symbol is too long"))?;
        Ok(Self {
            root,
            suffix,
            symbol,
        })
    }

    /// The root (`BRK` of `BRK.B`).
    pub fn root(&self) -> &str {
        &self.root
    }

    /// What follows the root.
    pub const fn suffix(&self) -> &SymbolSuffix {
        &self.suffix
    }

    /// The canonical text: `BRK.B`, `ABR.PR.D`, `AACT.WS`, `AACT.U`, `XYZ.RT`.
    pub fn canonical_text(&self) -> String {
        self.format(SymbolConvention::Canonical)
    }

    /// The lake symbol of this security.
    pub const fn symbol(&self) -> Symbol {
        self.symbol
    }

    /// The symbol as `convention` writes it.
    pub fn format(&self, convention: SymbolConvention) -> String {
        let root = &self.root;
        match convention {
            SymbolConvention::Canonical | SymbolConvention::NasdaqListed => {
                canonical(root, &self.suffix)
            }
            SymbolConvention::Cqs => match &self.suffix {
                SymbolSuffix::None => root.clone(),
                SymbolSuffix::Class(c) => format!("{root}.{c}"),
                SymbolSuffix::Preferred(s) => format!("{root}p{}", s.as_deref().unwrap_or("")),
                SymbolSuffix::Warrant(None) => format!("{root}.WS"),
                SymbolSuffix::Warrant(Some(c)) => format!("{root}.WS.{c}"),
                SymbolSuffix::Unit => format!("{root}.U"),
                SymbolSuffix::Right => format!("{root}r"),
                SymbolSuffix::WhenIssued => format!("{root}w"),
                SymbolSuffix::WhenDistributed => format!("{root}.WD"),
            },
            SymbolConvention::Act => match &self.suffix {
                SymbolSuffix::None => root.clone(),
                SymbolSuffix::Class(c) => format!("{root}.{c}"),
                SymbolSuffix::Preferred(s) => format!("{root}${}", s.as_deref().unwrap_or("")),
                SymbolSuffix::Warrant(None) => format!("{root}.W"),
                SymbolSuffix::Warrant(Some(c)) => format!("{root}.W{c}"),
                SymbolSuffix::Unit => format!("{root}.U"),
                SymbolSuffix::Right => format!("{root}.R"),
                SymbolSuffix::WhenIssued => format!("{root}.V"),
                SymbolSuffix::WhenDistributed => format!("{root}.Z"),
            },
            SymbolConvention::Sec => match &self.suffix {
                SymbolSuffix::None => root.clone(),
                SymbolSuffix::Class(c) => format!("{root}-{c}"),
                SymbolSuffix::Preferred(s) => format!("{root}-P{}", s.as_deref().unwrap_or("")),
                SymbolSuffix::Warrant(None) => format!("{root}-WS"),
                SymbolSuffix::Warrant(Some(c)) => format!("{root}-WS-{c}"),
                SymbolSuffix::Unit => format!("{root}-U"),
                SymbolSuffix::Right => format!("{root}-RT"),
                SymbolSuffix::WhenIssued => format!("{root}-WI"),
                SymbolSuffix::WhenDistributed => format!("{root}-WD"),
            },
        }
    }
}

/// The canonical text of a root and suffix.
fn canonical(root: &str, suffix: &SymbolSuffix) -> String {
    match suffix {
        SymbolSuffix::None => root.to_owned(),
        SymbolSuffix::Class(c) => format!("{root}.{c}"),
        SymbolSuffix::Preferred(None) => format!("{root}.PR"),
        SymbolSuffix::Preferred(Some(s)) => format!("{root}.PR.{s}"),
        SymbolSuffix::Warrant(None) => format!("{root}.WS"),
        SymbolSuffix::Warrant(Some(c)) => format!("{root}.WS.{c}"),
        SymbolSuffix::Unit => format!("{root}.U"),
        SymbolSuffix::Right => format!("{root}.RT"),
        SymbolSuffix::WhenIssued => format!("{root}.WI"),
        SymbolSuffix::WhenDistributed => format!("{root}.WD"),
    }
}

impl fmt::Display for SecuritySymbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical_text())
    }
}

type Parsed = Result<(String, SymbolSuffix), &'static str>;

/// The words after a `.` or `/` separator (CQS, Alpaca, Polygon, canonical).
fn dotted_suffix(parts: &[&str]) -> Result<SymbolSuffix, &'static str> {
    match parts {
        [] => Ok(SymbolSuffix::None),
        ["U"] => Ok(SymbolSuffix::Unit),
        ["WS"] => Ok(SymbolSuffix::Warrant(None)),
        ["WS", c] if is_series(c) => Ok(SymbolSuffix::Warrant(Some((*c).to_owned()))),
        ["RT"] => Ok(SymbolSuffix::Right),
        ["WI"] => Ok(SymbolSuffix::WhenIssued),
        ["WD"] => Ok(SymbolSuffix::WhenDistributed),
        ["PR"] => Ok(SymbolSuffix::Preferred(None)),
        ["PR", s] if is_series(s) => Ok(SymbolSuffix::Preferred(Some((*s).to_owned()))),
        [c] if c.len() == 1 && is_series(c) => Ok(SymbolSuffix::Class((*c).to_owned())),
        _ => Err("unknown suffix (expected a class letter, WS, U, RT, WI, WD or PR)"),
    }
}

fn parse_cqs(text: &str) -> Parsed {
    // A lower-case p, r or w marks a preferred, right or when-issued (CQS, Polygon).
    if let Some(pos) = text.find(|c: char| c.is_ascii_lowercase()) {
        let (root, rest) = text.split_at(pos);
        let mut chars = rest.chars();
        let marker = chars.next().unwrap_or(' ');
        let tail: String = chars.collect();
        let suffix = match marker {
            'p' if tail.is_empty() => SymbolSuffix::Preferred(None),
            'p' if is_series(&tail) => SymbolSuffix::Preferred(Some(tail)),
            'r' if tail.is_empty() || tail == "w" => SymbolSuffix::Right,
            'w' if tail.is_empty() => SymbolSuffix::WhenIssued,
            _ => return Err("unknown lower-case suffix (expected p, p<series>, r or w)"),
        };
        return Ok((root.to_owned(), suffix));
    }
    let mut parts = text.split(['.', '/']);
    let root = parts.next().unwrap_or("").to_owned();
    let rest: Vec<&str> = parts.collect();
    if rest.iter().any(|p| p.is_empty()) {
        return Err("an empty part between separators");
    }
    Ok((root, dotted_suffix(&rest)?))
}

fn parse_act(text: &str) -> Parsed {
    if let Some((root, series)) = text.split_once('$') {
        let suffix = if series.is_empty() {
            SymbolSuffix::Preferred(None)
        } else if is_series(series) {
            SymbolSuffix::Preferred(Some(series.to_owned()))
        } else {
            return Err("a preferred's series must be one or two letters");
        };
        return Ok((root.to_owned(), suffix));
    }
    let Some((root, rest)) = text.split_once('.') else {
        return Ok((text.to_owned(), SymbolSuffix::None));
    };
    let suffix = match rest {
        "W" => SymbolSuffix::Warrant(None),
        "U" => SymbolSuffix::Unit,
        "R" => SymbolSuffix::Right,
        "V" => SymbolSuffix::WhenIssued,
        "Z" => SymbolSuffix::WhenDistributed,
        w if w.len() == 2 && w.starts_with('W') && is_series(&w[1..]) => {
            SymbolSuffix::Warrant(Some(w[1..].to_owned()))
        }
        c if c.len() == 1 && is_series(c) => SymbolSuffix::Class(c.to_owned()),
        _ => return Err("unknown ACT suffix (expected .A-.Z class, .W, .U, .R or $)"),
    };
    Ok((root.to_owned(), suffix))
}

fn parse_sec(text: &str) -> Parsed {
    let mut parts = text.split('-');
    let root = parts.next().unwrap_or("").to_owned();
    let rest: Vec<&str> = parts.collect();
    let suffix = match rest.as_slice() {
        [] => SymbolSuffix::None,
        ["P"] => SymbolSuffix::Preferred(None),
        [p] if p.len() >= 2 && p.starts_with('P') && is_series(&p[1..]) && p.len() <= 3 => {
            SymbolSuffix::Preferred(Some(p[1..].to_owned()))
        }
        ["WS"] => SymbolSuffix::Warrant(None),
        ["WS", c] if is_series(c) => SymbolSuffix::Warrant(Some((*c).to_owned())),
        ["U" | "UN"] => SymbolSuffix::Unit,
        ["RT"] => SymbolSuffix::Right,
        ["WI"] => SymbolSuffix::WhenIssued,
        ["WD"] => SymbolSuffix::WhenDistributed,
        [c] if c.len() == 1 && is_series(c) => SymbolSuffix::Class((*c).to_owned()),
        _ => {
            return Err("unknown suffix after '-' (expected a class letter, P<series>, WS, U, RT)");
        }
    };
    Ok((root, suffix))
}

macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name in files, flags and output.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DomainError;

            /// Case-insensitive.
            fn from_str(value: &str) -> Result<Self, DomainError> {
                let wanted = value.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(wanted))
                    .ok_or_else(|| DomainError::UnknownName {
                        what: $what,
                        value: value.to_owned(),
                        expected: concat!($($text, " "),+),
                    })
            }
        }
    };
}

named_enum! {
    /// A security's primary listing exchange.
    Exchange, "exchange" {
        /// The Nasdaq Stock Market (`XNAS`).
        Nasdaq => "NASDAQ",
        /// The New York Stock Exchange (`XNYS`).
        Nyse => "NYSE",
        /// NYSE American, formerly AMEX (`XASE`).
        NyseAmerican => "NYSE_AMERICAN",
        /// NYSE Arca (`ARCX`).
        NyseArca => "NYSE_ARCA",
        /// Cboe BZX (`BATS`).
        CboeBzx => "CBOE_BZX",
        /// The Investors Exchange (`IEXG`).
        Iex => "IEX",
        /// Over the counter.
        Otc => "OTC",
        /// A code the source used that we do not know (kept, and flagged by the update).
        Unknown => "UNKNOWN",
    }
}

impl Exchange {
    /// From `otherlisted.txt`'s Exchange code (`A`, `N`, `P`, `Z`, `V`).
    pub fn from_nasdaq_code(code: &str) -> Self {
        match code.trim() {
            "N" => Self::Nyse,
            "A" => Self::NyseAmerican,
            "P" => Self::NyseArca,
            "Z" => Self::CboeBzx,
            "V" => Self::Iex,
            "Q" | "T" => Self::Nasdaq,
            _ => Self::Unknown,
        }
    }

    /// From an ISO 10383 MIC (Polygon's `primary_exchange`).
    pub fn from_mic(mic: &str) -> Self {
        match mic.trim() {
            "XNAS" | "XNGS" | "XNMS" | "XNCM" => Self::Nasdaq,
            "XNYS" => Self::Nyse,
            "XASE" => Self::NyseAmerican,
            "ARCX" => Self::NyseArca,
            "BATS" => Self::CboeBzx,
            "IEXG" => Self::Iex,
            "OTCM" | "OOTC" => Self::Otc,
            _ => Self::Unknown,
        }
    }

    /// From Alpaca's asset `exchange` (`NASDAQ`, `NYSE`, `AMEX`, `ARCA`, `NYSEARCA`, `BATS`,
    /// `OTC`; other or empty strings are `Unknown`).
    pub fn from_alpaca(name: &str) -> Self {
        match name.trim() {
            "NASDAQ" => Self::Nasdaq,
            "NYSE" => Self::Nyse,
            "AMEX" => Self::NyseAmerican,
            "ARCA" | "NYSEARCA" => Self::NyseArca,
            "BATS" => Self::CboeBzx,
            "IEX" => Self::Iex,
            "OTC" => Self::Otc,
            _ => Self::Unknown,
        }
    }
}

named_enum! {
    /// What kind of security a listing is.
    AssetType, "asset type" {
        /// A common share or a share class.
        Stock => "stock",
        /// An exchange-traded fund.
        Etf => "etf",
        /// An exchange-traded note.
        Etn => "etn",
        /// A preferred share.
        Preferred => "preferred",
        /// A warrant.
        Warrant => "warrant",
        /// A unit (typically a SPAC's share plus warrant).
        Unit => "unit",
        /// A right.
        Right => "right",
        /// An American depositary receipt.
        Adr => "adr",
        /// A closed-end or other fund.
        Fund => "fund",
        /// Anything else (bonds, structured products, …).
        Other => "other",
    }
}

impl AssetType {
    /// The type of a listing from its symbol's suffix, its ETF flag and its name, for sources
    /// without a type field (the Nasdaq Trader files). Never from the last letter of a
    /// five-letter Nasdaq symbol alone.
    pub fn classify(suffix: &SymbolSuffix, etf: bool, name: &str) -> Self {
        match suffix {
            SymbolSuffix::Preferred(_) => return Self::Preferred,
            SymbolSuffix::Warrant(_) => return Self::Warrant,
            SymbolSuffix::Unit => return Self::Unit,
            SymbolSuffix::Right => return Self::Right,
            _ => {}
        }
        // Nasdaq writes "Company - Issue": judge the issue, not the company's name
        // ("Preferred Bank - Common Stock" is a common stock).
        let issue = name.rsplit_once(" - ").map_or(name, |(_, issue)| issue);
        let lower = issue.to_ascii_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        let word = |w: &str| words.contains(&w);
        let phrase = |p: &str| lower.contains(p);
        if etf || word("etf") {
            Self::Etf
        } else if word("unit") || word("units") {
            Self::Unit
        } else if word("warrant") || word("warrants") {
            Self::Warrant
        } else if word("right") || word("rights") {
            Self::Right
        } else if phrase("american depositary") || word("ads") || word("adr") {
            Self::Adr
        } else if phrase("common stock")
            || phrase("common shares")
            || phrase("ordinary share")
            || phrase("capital stock")
            || phrase("shares of beneficial interest")
            || word("class")
        {
            Self::Stock
        } else if word("preferred") || phrase("depositary shares") {
            Self::Preferred
        } else if word("etn") || phrase("exchange traded note") {
            Self::Etn
        } else if word("fund") {
            Self::Fund
        } else {
            Self::Other
        }
    }

    /// From Polygon's ticker `type` code (`CS`, `ETF`, `PFD`, …).
    pub fn from_polygon(code: &str) -> Self {
        match code.trim() {
            "CS" | "OS" | "NYRS" => Self::Stock,
            "ETF" => Self::Etf,
            "ETN" => Self::Etn,
            "PFD" | "ADRP" => Self::Preferred,
            "WARRANT" | "ADRW" => Self::Warrant,
            "UNIT" => Self::Unit,
            "RIGHT" | "ADRR" => Self::Right,
            "ADRC" | "GDR" => Self::Adr,
            "FUND" => Self::Fund,
            _ => Self::Other,
        }
    }
}

named_enum! {
    /// Nasdaq's financial status of a Nasdaq-listed security (`nasdaqlisted.txt`).
    FinancialStatus, "financial status" {
        /// `N`: normal.
        Normal => "normal",
        /// `D`: deficient (fails continued-listing requirements).
        Deficient => "deficient",
        /// `E`: delinquent (missed a filing deadline).
        Delinquent => "delinquent",
        /// `Q`: bankrupt.
        Bankrupt => "bankrupt",
        /// `G`: deficient and bankrupt.
        DeficientBankrupt => "deficient_bankrupt",
        /// `H`: deficient and delinquent.
        DeficientDelinquent => "deficient_delinquent",
        /// `J`: delinquent and bankrupt.
        DelinquentBankrupt => "delinquent_bankrupt",
        /// `K`: deficient, delinquent and bankrupt.
        DeficientDelinquentBankrupt => "deficient_delinquent_bankrupt",
    }
}

impl FinancialStatus {
    /// From Nasdaq's one-letter code; `None` for a code Nasdaq does not define.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code.trim() {
            "N" => Self::Normal,
            "D" => Self::Deficient,
            "E" => Self::Delinquent,
            "Q" => Self::Bankrupt,
            "G" => Self::DeficientBankrupt,
            "H" => Self::DeficientDelinquent,
            "J" => Self::DelinquentBankrupt,
            "K" => Self::DeficientDelinquentBankrupt,
            _ => return None,
        })
    }
}

/// The coarse sector of a four-digit SIC code (the SIC divisions); `None` when the code is
/// not a number.
pub fn sector_of_sic(sic: &str) -> Option<&'static str> {
    let code: u32 = sic.trim().parse().ok()?;
    Some(match code {
        100..=999 => "agriculture",
        1000..=1499 => "mining",
        1500..=1799 => "construction",
        2000..=3999 => "manufacturing",
        4000..=4999 => "transportation_utilities",
        5000..=5199 => "wholesale",
        5200..=5999 => "retail",
        6000..=6799 => "finance",
        7000..=8999 => "services",
        9100..=9729 => "public_administration",
        _ => "nonclassifiable",
    })
}

/// One source's description of one security on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityRecord {
    /// The canonical (lake) symbol.
    pub symbol: Symbol,
    /// The symbol as the source wrote it (`BRK/B`, `ABRpD`).
    pub vendor_symbol: String,
    /// The security's name.
    pub name: String,
    /// The primary listing exchange.
    pub exchange: Exchange,
    /// The kind of security.
    pub asset_type: AssetType,
    /// A test issue (never a real security).
    pub test_issue: bool,
    /// Nasdaq's financial status; `None` when the source does not report one (every
    /// security not listed on Nasdaq).
    pub financial_status: Option<FinancialStatus>,
    /// Shares per round lot, when the source says.
    pub round_lot: Option<u32>,
    /// Market capitalisation in dollars, when the source has it.
    pub market_cap: Option<f64>,
    /// The four-digit SIC code, when the source has it.
    pub sic_code: Option<String>,
    /// The source's stable id (Alpaca's asset id, Polygon's composite FIGI), when it has one.
    pub source_id: Option<String>,
}

impl SecurityRecord {
    /// The coarse sector of the SIC code (see [`sector_of_sic`]).
    pub fn sector(&self) -> Option<&'static str> {
        self.sic_code.as_deref().and_then(sector_of_sic)
    }

    /// Whether `other` describes the security with the same attributes (the symbol master
    /// opens a new row when any of them changes).
    pub fn same_attributes(&self, other: &Self) -> bool {
        self == other
    }
}

/// A version of a security in one source's history: valid from `valid_from` (inclusive) to
/// `valid_to` (exclusive; `None` while current).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MasterRow {
    /// The source the row came from (`nasdaq-trader`, `alpaca`, `polygon`).
    pub source: String,
    /// The description.
    pub record: SecurityRecord,
    /// The first date it was valid.
    pub valid_from: NaiveDate,
    /// The first date it no longer was; `None` while it still is.
    pub valid_to: Option<NaiveDate>,
}

impl MasterRow {
    /// Whether the row was valid on `date`.
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_to.is_none_or(|to| date < to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, convention: SymbolConvention) -> String {
        match SecuritySymbol::parse(text, convention) {
            Ok(s) => s.canonical_text(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn the_spellings_of_one_security_have_one_normal_form() {
        use SymbolConvention::{Act, Canonical, Cqs, Sec};
        assert_eq!(parse("BRK.B", Cqs), "BRK.B");
        assert_eq!(parse("BRK/B", Cqs), "BRK.B");
        assert_eq!(parse("BRK-B", Sec), "BRK.B");
        assert_eq!(parse("BRK.B", Act), "BRK.B");
        assert_eq!(parse("ABRpD", Cqs), "ABR.PR.D");
        assert_eq!(parse("ABR$D", Act), "ABR.PR.D");
        assert_eq!(parse("ABR-PD", Sec), "ABR.PR.D");
        assert_eq!(parse("AACT.WS", Cqs), "AACT.WS");
        assert_eq!(parse("AIG/WS", Cqs), "AIG.WS");
        assert_eq!(parse("AACT.W", Act), "AACT.WS");
        assert_eq!(parse("AACT.U", Cqs), "AACT.U");
        assert_eq!(parse("AACT.U", Act), "AACT.U");
        assert_eq!(parse("AIG/WS/A", Cqs), "AIG.WS.A");
        assert_eq!(parse("XYZr", Cqs), "XYZ.RT");
        assert_eq!(parse("CTA-PA", Sec), "CTA.PR.A");
        assert_eq!(parse("ABR.PR.D", Canonical), "ABR.PR.D");
        assert_eq!(parse("AACIW", SymbolConvention::NasdaqListed), "AACIW");
        assert_eq!(parse("AAPL", SymbolConvention::NasdaqListed), "AAPL");
    }

    #[test]
    fn every_suffix_round_trips_through_every_convention() {
        let suffixes = [
            SymbolSuffix::None,
            SymbolSuffix::Class("B".into()),
            SymbolSuffix::Preferred(None),
            SymbolSuffix::Preferred(Some("D".into())),
            SymbolSuffix::Warrant(None),
            SymbolSuffix::Warrant(Some("A".into())),
            SymbolSuffix::Unit,
            SymbolSuffix::Right,
            SymbolSuffix::WhenIssued,
            SymbolSuffix::WhenDistributed,
        ];
        for convention in [
            SymbolConvention::Canonical,
            SymbolConvention::Cqs,
            SymbolConvention::Act,
            SymbolConvention::Sec,
        ] {
            for suffix in &suffixes {
                let symbol = SecuritySymbol::new("ABC", suffix.clone()).unwrap();
                let text = symbol.format(convention);
                let back = SecuritySymbol::parse(&text, convention);
                assert_eq!(back.as_ref(), Ok(&symbol), "{convention:?} {text}");
            }
        }
    }

    #[test]
    fn bad_spellings_name_the_value_and_the_convention() {
        let err = SecuritySymbol::parse("BRK.XYZ", SymbolConvention::Cqs).unwrap_err();
        assert!(err.to_string().contains("\"BRK.XYZ\""), "{err}");
        assert!(err.to_string().contains("CQS"), "{err}");
        assert!(SecuritySymbol::parse("", SymbolConvention::Sec).is_err());
        assert!(SecuritySymbol::parse("brk", SymbolConvention::Sec).is_err());
        assert!(SecuritySymbol::parse("A..B", SymbolConvention::Cqs).is_err());
        assert!(SecuritySymbol::parse("ABRpXYZ", SymbolConvention::Cqs).is_err());
    }

    #[test]
    fn exchanges_types_and_statuses_parse_from_each_source() {
        assert_eq!(Exchange::from_nasdaq_code("P"), Exchange::NyseArca);
        assert_eq!(Exchange::from_nasdaq_code("X"), Exchange::Unknown);
        assert_eq!(Exchange::from_mic("XNYS"), Exchange::Nyse);
        assert_eq!(Exchange::from_alpaca("NYSEARCA"), Exchange::NyseArca);
        assert_eq!(Exchange::from_alpaca(""), Exchange::Unknown);
        assert_eq!(
            "nyse_american".parse::<Exchange>(),
            Ok(Exchange::NyseAmerican)
        );
        let err = "LSE".parse::<Exchange>().unwrap_err().to_string();
        assert!(err.contains("\"LSE\"") && err.contains("NASDAQ"), "{err}");
        assert_eq!(
            FinancialStatus::from_code("E"),
            Some(FinancialStatus::Delinquent)
        );
        assert_eq!(FinancialStatus::from_code("X"), None);
        assert_eq!(AssetType::from_polygon("CS"), AssetType::Stock);
        assert_eq!(
            AssetType::classify(&SymbolSuffix::None, false, "Apple Inc. - Common Stock"),
            AssetType::Stock
        );
        assert_eq!(
            AssetType::classify(
                &SymbolSuffix::None,
                false,
                "Armada Acquisition Corp. II - Warrant"
            ),
            AssetType::Warrant
        );
        assert_eq!(
            AssetType::classify(&SymbolSuffix::None, true, "Invesco QQQ Trust, Series 1"),
            AssetType::Etf
        );
        assert_eq!(
            AssetType::classify(&SymbolSuffix::None, false, "Preferred Bank - Common Stock"),
            AssetType::Stock
        );
        assert_eq!(
            AssetType::classify(
                &SymbolSuffix::None,
                false,
                "First United Corporation - Common Stock"
            ),
            AssetType::Stock
        );
        assert_eq!(
            AssetType::classify(
                &SymbolSuffix::None,
                false,
                "Bright Horizons Family Solutions Inc. Common Stock"
            ),
            AssetType::Stock
        );
        assert_eq!(
            AssetType::classify(&SymbolSuffix::None, false, "Acme Acquisition Corp - Units"),
            AssetType::Unit
        );
        assert_eq!(
            AssetType::classify(
                &SymbolSuffix::None,
                false,
                "Arbor Realty Trust 6.375% Series D Preferred Stock"
            ),
            AssetType::Preferred
        );
        assert_eq!(
            AssetType::classify(
                &SymbolSuffix::None,
                false,
                "Baidu, Inc. - American Depositary Shares, each representing eight Class A Ordinary Shares"
            ),
            AssetType::Adr
        );
        assert_eq!(sector_of_sic("3571"), Some("manufacturing"));
        assert_eq!(sector_of_sic(""), None);
    }

    #[test]
    fn a_row_is_valid_from_its_start_to_before_its_end() {
        let record = SecurityRecord {
            symbol: Symbol::new("AAPL").unwrap(),
            vendor_symbol: "AAPL".into(),
            name: "Apple".into(),
            exchange: Exchange::Nasdaq,
            asset_type: AssetType::Stock,
            test_issue: false,
            financial_status: Some(FinancialStatus::Normal),
            round_lot: Some(100),
            market_cap: None,
            sic_code: None,
            source_id: None,
        };
        let day = |d| NaiveDate::from_ymd_opt(2024, 3, d).unwrap();
        let row = MasterRow {
            source: "nasdaq-trader".into(),
            record,
            valid_from: day(4),
            valid_to: Some(day(8)),
        };
        assert!(!row.valid_on(day(3)));
        assert!(row.valid_on(day(4)));
        assert!(row.valid_on(day(7)));
        assert!(!row.valid_on(day(8)));
    }
}
