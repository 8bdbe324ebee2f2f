//! Polygon/Massive reference tickers (`GET /v3/reference/tickers`, and with details
//! `GET /v3/reference/tickers/{ticker}`) as a `SymbolMasterSource`.
//!
//! The list is asked for `market=stocks&active=true&limit=1000&sort=ticker&order=asc` (with
//! `date=` for a past day) and paged through `next_url`, rebased onto the configured base URL
//! with its cursor kept as it is (the key goes in the `Authorization` header, never in a URL).
//! Tickers are case-sensitive (`ABRpD` is a preferred) and put in normal form; `primary_exchange`
//! is a MIC (`XNAS`, `XNYS`, …; others are `UNKNOWN`); `type` codes map to asset types; the
//! composite FIGI (else the CIK) is the source id. A ticker listed twice keeps its latest
//! `last_updated_utc`. With details, each ticker's overview adds `market_cap` and `sic_code`
//! (one request per ticker: at the free plan's 5 a minute, a full list takes days, so it is
//! asked for only with `--details`); a ticker whose details are not found keeps its list entry.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{AssetType, Exchange, SecurityRecord, SecuritySymbol, SymbolConvention};
use marketpipe_ports::{MasterSnapshot, ProviderError, SkippedListing, SymbolMasterSource};
use marketpipe_provider_kit::{Env, HttpClient, ProviderSettings, Secret, SetupError};
use serde::Deserialize;
use url::Url;

use crate::{DEFAULT_BASE_URL, NAME};

/// Tickers per page (the documented maximum).
const PAGE_LIMIT: &str = "1000";

/// Pages followed at most (12,000 active stocks are about 12 pages; this bounds a server that
/// never stops sending `next_url`).
const MAX_PAGES: usize = 10_000;

#[derive(Debug, Deserialize)]
struct WireTicker {
    ticker: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    market: Option<String>,
    #[serde(default)]
    locale: Option<String>,
    #[serde(default)]
    primary_exchange: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    cik: Option<String>,
    #[serde(default)]
    composite_figi: Option<String>,
    #[serde(default)]
    last_updated_utc: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WirePage {
    #[serde(default)]
    results: Vec<WireTicker>,
    #[serde(default)]
    next_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireDetails {
    #[serde(default)]
    market_cap: Option<f64>,
    #[serde(default)]
    sic_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireDetailsPage {
    results: WireDetails,
}

/// The bars adapter's error mapping, but a 404 names the reference endpoints.
fn classify(status: u16, body: &[u8]) -> Option<ProviderError> {
    if status == 404 {
        return Some(ProviderError::NotFound {
            provider: NAME.into(),
            what: format!(
                "a reference endpoint /v3/reference/tickers (HTTP 404: {}); check the base URL \
                 ({DEFAULT_BASE_URL} or MP_POLYGON_BASE_URL), or the ticker",
                marketpipe_provider_kit::error_text(body)
            ),
        });
    }
    crate::classify(status, body)
}

/// Polygon's reference tickers as a symbol-master source.
#[derive(Debug, Clone)]
pub struct PolygonTickers {
    client: HttpClient,
    bearer: Secret,
    details: bool,
}

impl PolygonTickers {
    /// The key and base URL as for bars ([`crate::CREDENTIAL_VARIABLES`], `MP_POLYGON_BASE_URL`);
    /// `details` asks each ticker's overview for market cap and SIC code.
    pub fn new(
        settings: &ProviderSettings,
        env: &dyn Env,
        details: bool,
    ) -> Result<Self, SetupError> {
        let (client, bearer) = crate::connect(settings, env)?;
        Ok(Self {
            client,
            bearer,
            details,
        })
    }

    /// `next_url`'s path and query on the configured base URL (a proxy or a simulator keeps
    /// working when the server names its public host).
    fn rebase(&self, next: &str) -> Result<Url, ProviderError> {
        let base = self.client.base_url();
        let next = Url::parse(next).or_else(|_| base.join(next)).map_err(|_| {
            ProviderError::Malformed {
                provider: NAME.into(),
                message: format!("next_url {next:?} is not a URL"),
                source: None,
            }
        })?;
        Ok(crate::on_base(
            base,
            crate::path_below_base(base, &next),
            &next,
        ))
    }

    async fn details_of(
        &self,
        ticker: &str,
        as_of: Option<NaiveDate>,
    ) -> Result<Option<WireDetails>, ProviderError> {
        let mut url = self
            .client
            .endpoint(&["v3", "reference", "tickers", ticker]);
        if let Some(date) = as_of {
            url.query_pairs_mut().append_pair("date", &date.to_string());
        }
        let headers = [("Authorization", &self.bearer)];
        match self
            .client
            .get_json::<WireDetailsPage>(url, &headers, &classify)
            .await
        {
            Ok((page, _)) => Ok(Some(page.results)),
            Err(ProviderError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The list's records (one per ticker, the latest update kept), and the tickers set aside.
fn to_records(tickers: Vec<WireTicker>) -> (Vec<SecurityRecord>, Vec<SkippedListing>) {
    let mut latest: BTreeMap<String, WireTicker> = BTreeMap::new();
    let mut skipped = Vec::new();
    for t in tickers {
        let newer = latest
            .get(&t.ticker)
            .is_none_or(|old| t.last_updated_utc > old.last_updated_utc);
        let (kept, dropped) = if newer {
            (Some(t.ticker.clone()), latest.insert(t.ticker.clone(), t))
        } else {
            (None, Some(t))
        };
        if let Some(dropped) = dropped {
            let figi = dropped.composite_figi.as_deref().unwrap_or("no FIGI");
            skipped.push(SkippedListing {
                reason: format!(
                    "listed twice: an older entry ({figi}, updated {}) of {} was left out",
                    dropped
                        .last_updated_utc
                        .as_deref()
                        .unwrap_or("at an unknown time"),
                    kept.as_deref().unwrap_or(&dropped.ticker)
                ),
                vendor_symbol: dropped.ticker,
            });
        }
    }
    let mut records = Vec::new();
    for t in latest.into_values() {
        let left_out = if t.active == Some(false) {
            Some("inactive (delisted)".to_owned())
        } else if let Some(market) = t.market.as_deref().filter(|m| *m != "stocks") {
            Some(format!("market {market}, not stocks"))
        } else {
            t.locale
                .as_deref()
                .filter(|l| *l != "us")
                .map(|l| format!("locale {l}, not us"))
        };
        if let Some(reason) = left_out {
            skipped.push(SkippedListing {
                vendor_symbol: t.ticker,
                reason,
            });
            continue;
        }
        let parsed = match SecuritySymbol::parse(&t.ticker, SymbolConvention::Cqs) {
            Ok(parsed) => parsed,
            Err(e) => {
                skipped.push(SkippedListing {
                    vendor_symbol: t.ticker,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let name = t.name.unwrap_or_default();
        let asset_type = match t.kind.as_deref() {
            Some(code) => AssetType::from_polygon(code),
            None => AssetType::classify(parsed.suffix(), false, &name),
        };
        records.push(SecurityRecord {
            symbol: parsed.symbol(),
            vendor_symbol: t.ticker,
            name,
            exchange: Exchange::from_mic(t.primary_exchange.as_deref().unwrap_or("")),
            asset_type,
            test_issue: false,
            financial_status: None,
            round_lot: None,
            market_cap: None,
            sic_code: None,
            source_id: t.composite_figi.or(t.cik),
        });
    }
    (records, skipped)
}

#[async_trait]
impl SymbolMasterSource for PolygonTickers {
    fn name(&self) -> &str {
        NAME
    }

    /// Polygon lists the tickers of a past date (`date=`).
    fn point_in_time(&self) -> bool {
        true
    }

    async fn list_securities(
        &self,
        as_of: Option<NaiveDate>,
    ) -> Result<MasterSnapshot, ProviderError> {
        let headers = [("Authorization", &self.bearer)];
        let mut url = self.client.endpoint(&["v3", "reference", "tickers"]);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("market", "stocks")
                .append_pair("active", "true")
                .append_pair("sort", "ticker")
                .append_pair("order", "asc")
                .append_pair("limit", PAGE_LIMIT);
            if let Some(date) = as_of {
                q.append_pair("date", &date.to_string());
            }
        }
        let mut tickers = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut complete = false;
        for _ in 0..MAX_PAGES {
            let (page, _stats): (WirePage, _) = self
                .client
                .get_json(url.clone(), &headers, &classify)
                .await?;
            tickers.extend(page.results);
            let Some(next) = page.next_url.filter(|n| !n.is_empty()) else {
                complete = true;
                break;
            };
            if !seen.insert(next.clone()) {
                return Err(ProviderError::Malformed {
                    provider: NAME.into(),
                    message: "the ticker list's next_url repeats an earlier page".into(),
                    source: None,
                });
            }
            url = self.rebase(&next)?;
        }
        if !complete {
            // A partial list would close the rows of every ticker it did not reach.
            return Err(ProviderError::Malformed {
                provider: NAME.into(),
                message: format!("the ticker list did not end within {MAX_PAGES} pages"),
                source: None,
            });
        }
        let (mut securities, skipped) = to_records(tickers);
        if self.details {
            for record in &mut securities {
                if let Some(details) = self.details_of(&record.vendor_symbol, as_of).await? {
                    record.market_cap = details.market_cap.filter(|v| v.is_finite());
                    record.sic_code = details.sic_code.filter(|s| !s.is_empty());
                }
            }
        }
        Ok(MasterSnapshot {
            source: NAME.into(),
            created_on: None,
            securities,
            skipped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_page_reads_deduplicated_in_normal_form() {
        let body = r#"{"results":[
          {"ticker":"A","name":"Agilent Technologies Inc.","market":"stocks","locale":"us",
           "primary_exchange":"XNYS","type":"CS","active":true,"currency_name":"usd",
           "cik":"0001090872","composite_figi":"BBG000C2V3D6","share_class_figi":"BBG001SCTQY4",
           "last_updated_utc":"2025-11-03T00:00:00Z"},
          {"ticker":"BRK.B","name":"Berkshire Hathaway Inc. Class B","market":"stocks","locale":"us",
           "primary_exchange":"XNYS","type":"CS","active":true,"cik":"0001067983",
           "last_updated_utc":"2025-11-03T00:00:00Z"},
          {"ticker":"BRK.B","name":"BERKSHIRE HATHAWAY INC CLASS B","market":"stocks","locale":"us",
           "primary_exchange":"XNYS","type":"CS","active":true,"last_updated_utc":"2025-10-01T00:00:00Z"},
          {"ticker":"ABRpD","name":"Arbor Realty Trust Pref D","market":"stocks","locale":"us",
           "primary_exchange":"XNYS","type":"PFD","active":true},
          {"ticker":"SPY","name":"SPDR S&P 500 ETF Trust","market":"stocks","locale":"us",
           "primary_exchange":"ARCX","type":"ETF","active":true},
          {"ticker":"ODD.XYZ","name":"Odd","market":"stocks","locale":"us","active":true}
        ],"status":"OK","request_id":"x","count":6,
        "next_url":"https://api.massive.com/v3/reference/tickers?cursor=YWN0aXZlPXRydWU"}"#;
        let page: WirePage = serde_json::from_str(body).unwrap();
        assert!(page.next_url.is_some());
        let (records, skipped) = to_records(page.results);
        let symbols: Vec<&str> = records.iter().map(|r| r.symbol.as_str()).collect();
        assert_eq!(symbols, ["A", "ABR.PR.D", "BRK.B", "SPY"]);
        assert_eq!(records[0].source_id.as_deref(), Some("BBG000C2V3D6"));
        assert_eq!(records[1].asset_type, AssetType::Preferred);
        assert_eq!(
            records[2].name, "Berkshire Hathaway Inc. Class B",
            "the latest update"
        );
        assert_eq!(records[2].source_id.as_deref(), Some("0001067983"));
        assert_eq!(records[3].exchange, Exchange::NyseArca);
        assert_eq!(records[3].asset_type, AssetType::Etf);
        let left_out: Vec<&str> = skipped.iter().map(|s| s.vendor_symbol.as_str()).collect();
        assert_eq!(left_out, ["BRK.B", "ODD.XYZ"], "{skipped:?}");
        assert!(skipped[0].reason.contains("listed twice"), "{skipped:?}");
    }

    #[test]
    fn next_url_keeps_its_cursor_and_loses_any_key_on_the_configured_host() {
        let env = marketpipe_provider_kit::MapEnv::from_pairs([
            ("POLYGON_API_KEY", "k"),
            ("MP_POLYGON_BASE_URL", "http://127.0.0.1:9/proxy"),
        ]);
        let source = PolygonTickers::new(&ProviderSettings::default(), &env, false).unwrap();
        let url = source
            .rebase("https://api.massive.com/v3/reference/tickers?cursor=abc&apiKey=SECRET")
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/proxy/v3/reference/tickers?cursor=abc"
        );
    }
}
