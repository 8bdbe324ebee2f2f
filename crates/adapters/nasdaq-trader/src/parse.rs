//! The two directory files: header, rows, trailer.

use chrono::NaiveDate;
use marketpipe_domain::{
    AssetType, Exchange, FinancialStatus, SecurityRecord, SecuritySymbol, SymbolConvention,
};
use marketpipe_ports::SkippedListing;
use thiserror::Error;

/// One of the two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListingFile {
    /// `nasdaqlisted.txt`: Nasdaq listings.
    NasdaqListed,
    /// `otherlisted.txt`: every other exchange's listings.
    OtherListed,
}

impl ListingFile {
    /// The file's name.
    pub const fn file_name(self) -> &'static str {
        match self {
            Self::NasdaqListed => "nasdaqlisted.txt",
            Self::OtherListed => "otherlisted.txt",
        }
    }

    /// The exact header line.
    pub const fn header(self) -> &'static str {
        match self {
            Self::NasdaqListed => {
                "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares"
            }
            Self::OtherListed => {
                "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol"
            }
        }
    }
}

/// Why a directory file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The first line is not the file's header.
    #[error("{file}: the first line is not the header {expected:?} (found {found:?})")]
    BadHeader {
        /// The file.
        file: &'static str,
        /// The header it must have.
        expected: &'static str,
        /// What the first line was (up to 120 characters).
        found: String,
    },
    /// No `File Creation Time:` trailer: a truncated download.
    #[error(
        "{file}: no 'File Creation Time:' trailer line at the end: the file is truncated \
         (download it again)"
    )]
    MissingTrailer {
        /// The file.
        file: &'static str,
    },
    /// The trailer's time is not `mmddyyyyHH:MM`.
    #[error("{file}: the trailer's time {value:?} is not mmddyyyyHH:MM")]
    BadTrailerTime {
        /// The file.
        file: &'static str,
        /// The text after `File Creation Time:`.
        value: String,
    },
    /// A row with the wrong number of fields, or rows after the trailer.
    #[error("{file} line {line}: {reason}")]
    BadRow {
        /// The file.
        file: &'static str,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFile {
    /// The date of the trailer's file creation time.
    pub created_on: NaiveDate,
    /// The securities, in file order.
    pub securities: Vec<SecurityRecord>,
    /// Rows whose symbol could not be read.
    pub skipped: Vec<SkippedListing>,
}

const TRAILER: &str = "File Creation Time:";
const FIELDS: usize = 8;

/// Parses one directory file. The header must be exact, every row has eight fields, and the
/// last line must be the trailer (its field count is not checked: real files differ).
pub fn parse_listing(file: ListingFile, text: &str) -> Result<ParsedFile, ParseError> {
    let name = file.file_name();
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let header = lines.first().copied().unwrap_or("");
    if header != file.header() {
        return Err(ParseError::BadHeader {
            file: name,
            expected: file.header(),
            found: header.chars().take(120).collect(),
        });
    }
    // The last non-empty line is the trailer.
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0);
    let trailer = lines[last];
    let Some(time) = trailer.strip_prefix(TRAILER) else {
        return Err(ParseError::MissingTrailer { file: name });
    };
    let created_on = trailer_date(name, time)?;
    let mut securities = Vec::new();
    let mut skipped = Vec::new();
    for (index, line) in lines.iter().enumerate().take(last).skip(1) {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(TRAILER) {
            return Err(ParseError::BadRow {
                file: name,
                line: number,
                reason: "a second trailer line before the end".into(),
            });
        }
        let fields: Vec<&str> = line.split('|').collect();
        if fields.len() != FIELDS {
            return Err(ParseError::BadRow {
                file: name,
                line: number,
                reason: format!("{} fields, expected {FIELDS}", fields.len()),
            });
        }
        let row = match file {
            ListingFile::NasdaqListed => nasdaq_row(&fields),
            ListingFile::OtherListed => other_row(&fields),
        };
        match row {
            Ok(record) => securities.push(record),
            Err((vendor_symbol, reason)) => skipped.push(SkippedListing {
                vendor_symbol,
                reason: format!("{name} line {number}: {reason}"),
            }),
        }
    }
    Ok(ParsedFile {
        created_on,
        securities,
        skipped,
    })
}

/// `mmddyyyyHH:MM` (the pipes after it are ignored).
fn trailer_date(file: &'static str, time: &str) -> Result<NaiveDate, ParseError> {
    let value = time.split('|').next().unwrap_or("").trim();
    let bad = || ParseError::BadTrailerTime {
        file,
        value: value.to_owned(),
    };
    let digits = value.get(..8).ok_or_else(bad)?;
    NaiveDate::parse_from_str(digits, "%m%d%Y").map_err(|_| bad())
}

type Row = Result<SecurityRecord, (String, String)>;

fn yes(field: &str) -> bool {
    field.trim() == "Y"
}

fn round_lot(field: &str) -> Option<u32> {
    field.trim().parse().ok()
}

/// `Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares`
fn nasdaq_row(f: &[&str]) -> Row {
    let vendor = f[0].trim();
    let parsed = SecuritySymbol::parse(vendor, SymbolConvention::NasdaqListed)
        .map_err(|e| (vendor.to_owned(), e.to_string()))?;
    let name = f[1].trim();
    let etf = yes(f[6]);
    Ok(SecurityRecord {
        symbol: parsed.symbol(),
        vendor_symbol: vendor.to_owned(),
        name: name.to_owned(),
        exchange: Exchange::Nasdaq,
        asset_type: AssetType::classify(parsed.suffix(), etf, name),
        test_issue: yes(f[3]),
        financial_status: FinancialStatus::from_code(f[4]),
        round_lot: round_lot(f[5]),
        market_cap: None,
        sic_code: None,
        source_id: None,
    })
}

/// `ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol`
fn other_row(f: &[&str]) -> Row {
    let cqs = f[3].trim();
    let act = f[0].trim();
    // The CQS column is the reference; a row without one is read from the ACT column.
    let (vendor, parsed) = if cqs.is_empty() {
        (act, SecuritySymbol::parse(act, SymbolConvention::Act))
    } else {
        (cqs, SecuritySymbol::parse(cqs, SymbolConvention::Cqs))
    };
    let parsed = parsed.map_err(|e| (vendor.to_owned(), e.to_string()))?;
    let name = f[1].trim();
    let etf = yes(f[4]);
    Ok(SecurityRecord {
        symbol: parsed.symbol(),
        vendor_symbol: vendor.to_owned(),
        name: name.to_owned(),
        exchange: Exchange::from_nasdaq_code(f[2]),
        asset_type: AssetType::classify(parsed.suffix(), etf, name),
        test_issue: yes(f[6]),
        financial_status: None,
        round_lot: round_lot(f[5]),
        market_cap: None,
        sic_code: None,
        source_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The constructed example files of the reference document.
    const NASDAQ: &str = "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares
AACIW|Armada Acquisition Corp. II - Warrant|G|N|N|100|N|N
AAPL|Apple Inc. - Common Stock|Q|N|N|100|N|N
ABVE|Above Food Ingredients Inc. - Common Stock|G|N|E|100|N|N
QQQ|Invesco QQQ Trust, Series 1|G|N|N|100|Y|N
ZXZZT|NASDAQ TEST STOCK|G|Y|N|100||N
File Creation Time: 1126202621:31|||||||
";
    const OTHER: &str =
        "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol
AACT.U|Ares Acquisition Corporation II Units|N|AACT.U|N|100|N|AACT=
AACT.W|Ares Acquisition Corporation II Redeemable Warrants|N|AACT.WS|N|100|N|AACT+
ABR$D|Arbor Realty Trust 6.375% Series D Cumulative Redeemable Preferred Stock|N|ABRpD|N|100|N|ABR-D
BRK.A|Berkshire Hathaway Inc. Common Stock|N|BRK.A|N|1|N|BRK.A
BRK.B|Berkshire Hathaway Inc. New Common Stock|N|BRK.B|N|100|N|BRK.B
CBOE|Cboe Global Markets, Inc. Common Stock|Z|CBOE|N|100|N|CBOE
SPY|SPDR S&P 500 ETF Trust|P|SPY|Y|100|N|SPY
ZXIET|IEX Test Company Test Symbol Three for IEX|V|ZXIET|N|100|Y|ZXIET
File Creation Time: 1126202621:31||||||
";

    #[test]
    fn nasdaqlisted_rows_keep_their_symbols_and_read_every_column() {
        let parsed = parse_listing(ListingFile::NasdaqListed, NASDAQ).unwrap();
        assert_eq!(
            parsed.created_on,
            NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()
        );
        let by = |s: &str| {
            parsed
                .securities
                .iter()
                .find(|r| r.symbol.as_str() == s)
                .unwrap()
        };
        assert_eq!(parsed.securities.len(), 5);
        assert_eq!(by("AACIW").asset_type, AssetType::Warrant);
        assert_eq!(by("AAPL").asset_type, AssetType::Stock);
        assert_eq!(by("AAPL").exchange, Exchange::Nasdaq);
        assert_eq!(
            by("ABVE").financial_status,
            Some(FinancialStatus::Delinquent)
        );
        assert_eq!(by("QQQ").asset_type, AssetType::Etf);
        assert!(by("ZXZZT").test_issue);
        assert!(!by("AAPL").test_issue);
        assert_eq!(by("AAPL").round_lot, Some(100));
    }

    #[test]
    fn otherlisted_rows_are_read_from_the_cqs_column_in_normal_form() {
        let parsed = parse_listing(ListingFile::OtherListed, OTHER).unwrap();
        let symbols: Vec<&str> = parsed
            .securities
            .iter()
            .map(|r| r.symbol.as_str())
            .collect();
        assert_eq!(
            symbols,
            [
                "AACT.U", "AACT.WS", "ABR.PR.D", "BRK.A", "BRK.B", "CBOE", "SPY", "ZXIET"
            ]
        );
        let by = |s: &str| {
            parsed
                .securities
                .iter()
                .find(|r| r.symbol.as_str() == s)
                .unwrap()
        };
        assert_eq!(by("ABR.PR.D").vendor_symbol, "ABRpD");
        assert_eq!(by("ABR.PR.D").asset_type, AssetType::Preferred);
        assert_eq!(by("AACT.U").asset_type, AssetType::Unit);
        assert_eq!(by("BRK.B").exchange, Exchange::Nyse);
        assert_eq!(by("BRK.B").asset_type, AssetType::Stock);
        assert_eq!(by("BRK.A").round_lot, Some(1));
        assert_eq!(by("CBOE").exchange, Exchange::CboeBzx);
        assert_eq!(by("SPY").exchange, Exchange::NyseArca);
        assert_eq!(by("SPY").asset_type, AssetType::Etf);
        assert_eq!(by("ZXIET").exchange, Exchange::Iex);
        assert!(by("ZXIET").test_issue);
        assert_eq!(by("BRK.B").financial_status, None);
    }

    #[test]
    fn old_slash_separators_and_crlf_lines_read_the_same() {
        let old = OTHER
            .replace("|BRK.B|N|100|N|BRK.B", "|BRK/B|N|100|N|BRK.B")
            .replace('\n', "\r\n");
        let parsed = parse_listing(ListingFile::OtherListed, &old).unwrap();
        let brk = parsed
            .securities
            .iter()
            .find(|r| r.vendor_symbol == "BRK/B")
            .unwrap();
        assert_eq!(brk.symbol.as_str(), "BRK.B");
    }

    #[test]
    fn a_file_without_its_trailer_header_or_fields_is_refused_naming_the_line() {
        let truncated = &NASDAQ[..NASDAQ.find("QQQ").unwrap()];
        let err = parse_listing(ListingFile::NasdaqListed, truncated).unwrap_err();
        assert_eq!(
            err,
            ParseError::MissingTrailer {
                file: "nasdaqlisted.txt"
            }
        );
        let err = parse_listing(ListingFile::OtherListed, NASDAQ).unwrap_err();
        assert!(matches!(err, ParseError::BadHeader { .. }), "{err}");
        let short = NASDAQ.replace("AAPL|Apple Inc. - Common Stock|Q|N|N|100|N|N", "AAPL|Apple");
        let err = parse_listing(ListingFile::NasdaqListed, &short).unwrap_err();
        assert!(err.to_string().contains("line 3: 2 fields"), "{err}");
        let bad_time = NASDAQ.replace("1126202621:31", "yesterday");
        let err = parse_listing(ListingFile::NasdaqListed, &bad_time).unwrap_err();
        assert!(matches!(err, ParseError::BadTrailerTime { .. }), "{err}");
        assert!(parse_listing(ListingFile::NasdaqListed, "").is_err());
    }

    #[test]
    fn an_unreadable_symbol_is_reported_not_dropped() {
        let odd = OTHER.replace("|CBOE|N|100|N|CBOE", "|CBOE.XYZ|N|100|N|CBOE");
        let parsed = parse_listing(ListingFile::OtherListed, &odd).unwrap();
        assert_eq!(parsed.skipped.len(), 1);
        assert_eq!(parsed.skipped[0].vendor_symbol, "CBOE.XYZ");
        assert!(
            parsed.skipped[0].reason.contains("line 7"),
            "{:?}",
            parsed.skipped
        );
    }
}
