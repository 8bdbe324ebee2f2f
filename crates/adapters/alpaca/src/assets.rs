//! Alpaca's asset master (`GET /v2/assets` of the Trading API) as a `SymbolMasterSource`.
//!
//! One request, one JSON array, no paging: `status=active&asset_class=us_equity`. The Trading
//! API is another host than market data (`https://paper-api.alpaca.markets`;
//! `MP_ALPACA_TRADING_BASE_URL` overrides it), with the same key pair. Symbols use a dot for
//! classes (`BRK.B`); exchanges `NASDAQ`, `NYSE`, `AMEX`, `ARCA`/`NYSEARCA`, `BATS`, `OTC` and
//! unknown or empty strings (kept as `UNKNOWN`); unknown keys and attributes are ignored; a
//! missing `name` is empty. Assets that are not tradable are reported as skipped, not dropped
//! silently. The asset's `id` (stable across symbol changes) is kept as the source id.

use async_trait::async_trait;
use chrono::NaiveDate;
use marketpipe_domain::{AssetType, Exchange, SecurityRecord, SecuritySymbol, SymbolConvention};
use marketpipe_ports::{MasterSnapshot, ProviderError, SkippedListing, SymbolMasterSource};
use marketpipe_provider_kit::{Env, HttpClient, ProviderSettings, Secret, SetupError, error_text};
use serde::Deserialize;

use crate::{CREDENTIAL_VARIABLES, NAME};

/// The Trading API host of paper accounts (the asset list is the same on the live host).
pub const TRADING_BASE_URL: &str = "https://paper-api.alpaca.markets";

/// The name under which the Trading API base URL is resolved (`MP_ALPACA_TRADING_BASE_URL`).
const TRADING: &str = "alpaca-trading";

/// One asset as Alpaca sends it (only what the master keeps).
#[derive(Debug, Deserialize)]
struct WireAsset {
    #[serde(default)]
    id: Option<String>,
    symbol: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    exchange: Option<String>,
    #[serde(default)]
    tradable: Option<bool>,
    #[serde(default)]
    status: Option<String>,
}

/// Alpaca's asset list as a symbol-master source.
#[derive(Debug, Clone)]
pub struct AlpacaAssets {
    client: HttpClient,
    key_id: Secret,
    secret_key: Secret,
}

impl AlpacaAssets {
    /// The key pair as for bars ([`CREDENTIAL_VARIABLES`]); the host from
    /// `MP_ALPACA_TRADING_BASE_URL`, else [`TRADING_BASE_URL`].
    pub fn new(settings: &ProviderSettings, env: &dyn Env) -> Result<Self, SetupError> {
        // The configured base URL is the market-data host's; the Trading API has its own.
        let trading = ProviderSettings {
            base_url: None,
            ..settings.clone()
        };
        let (client, key_id, secret_key) =
            crate::connect(settings, env, TRADING, &trading, TRADING_BASE_URL)?;
        Ok(Self {
            client,
            key_id,
            secret_key,
        })
    }
}

fn classify(status: u16, body: &[u8]) -> Option<ProviderError> {
    let text = error_text(body);
    match status {
        401 | 403 => Some(ProviderError::Auth {
            provider: NAME.into(),
            message: format!(
                "HTTP {status}: {text}; the asset list needs a Trading API key pair: set \
                 {CREDENTIAL_VARIABLES}"
            ),
        }),
        400 | 422 => Some(ProviderError::BadRequest {
            provider: NAME.into(),
            message: format!("HTTP {status}: {text}"),
        }),
        404 => Some(ProviderError::NotFound {
            provider: NAME.into(),
            what: format!(
                "the asset list /v2/assets (HTTP 404: {text}); check the Trading API base URL \
                 ({TRADING_BASE_URL} or MP_ALPACA_TRADING_BASE_URL)"
            ),
        }),
        _ => None,
    }
}

/// The asset list's records, and the assets set aside with why.
fn to_records(assets: Vec<WireAsset>) -> (Vec<SecurityRecord>, Vec<SkippedListing>) {
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for asset in assets {
        if let Some(status) = asset.status.as_deref().filter(|s| *s != "active") {
            skipped.push(SkippedListing {
                reason: format!("status {status}"),
                vendor_symbol: asset.symbol,
            });
            continue;
        }
        if asset.tradable == Some(false) {
            skipped.push(SkippedListing {
                vendor_symbol: asset.symbol,
                reason: "not tradable at Alpaca".into(),
            });
            continue;
        }
        let parsed = match SecuritySymbol::parse(&asset.symbol, SymbolConvention::Cqs) {
            Ok(parsed) => parsed,
            Err(e) => {
                skipped.push(SkippedListing {
                    vendor_symbol: asset.symbol,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let name = asset.name.unwrap_or_default();
        records.push(SecurityRecord {
            symbol: parsed.symbol(),
            vendor_symbol: asset.symbol,
            asset_type: AssetType::classify(parsed.suffix(), false, &name),
            name,
            exchange: Exchange::from_alpaca(asset.exchange.as_deref().unwrap_or("")),
            test_issue: false,
            financial_status: None,
            round_lot: None,
            market_cap: None,
            sic_code: None,
            source_id: asset.id,
        });
    }
    (records, skipped)
}

#[async_trait]
impl SymbolMasterSource for AlpacaAssets {
    fn name(&self) -> &str {
        NAME
    }

    /// Alpaca lists today's assets only; `as_of` is not sent.
    async fn list_securities(
        &self,
        _as_of: Option<NaiveDate>,
    ) -> Result<MasterSnapshot, ProviderError> {
        let mut url = self.client.endpoint(&["v2", "assets"]);
        url.query_pairs_mut()
            .append_pair("status", "active")
            .append_pair("asset_class", "us_equity");
        let headers = [
            ("APCA-API-KEY-ID", &self.key_id),
            ("APCA-API-SECRET-KEY", &self.secret_key),
        ];
        let (assets, _stats): (Vec<WireAsset>, _) =
            self.client.get_json(url, &headers, &classify).await?;
        let (securities, skipped) = to_records(assets);
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
    fn the_documented_example_reads_with_unknown_keys_and_exchanges() {
        let body = r#"[
          {"id":"b0b6dd9d-8b9b-48a9-ba46-b9d54906e415","class":"us_equity","exchange":"NASDAQ",
           "symbol":"AAPL","name":"Apple Inc. Common Stock","status":"active","tradable":true,
           "marginable":true,"shortable":true,"easy_to_borrow":true,"borrow_status":"easy_to_borrow",
           "fractionable":true,"cusip":null,"maintenance_margin_requirement":30,
           "margin_requirement_long":"30","margin_requirement_short":"100",
           "attributes":["has_options","fractional_eh_enabled","overnight_tradable"],"last_price":1},
          {"id":"3c5d6e7f-0000-4000-8000-000000000002","class":"us_equity","exchange":"NYSE",
           "symbol":"BRK.B","name":"Berkshire Hathaway Inc. Class B","status":"active",
           "tradable":true,"attributes":[]},
          {"id":"x","class":"us_equity","exchange":"","symbol":"ODD","status":"active","tradable":true},
          {"id":"y","class":"us_equity","exchange":"NYSE","symbol":"HALT","name":"Halted Co","status":"active","tradable":false}
        ]"#;
        let assets: Vec<WireAsset> = serde_json::from_str(body).unwrap();
        let (records, skipped) = to_records(assets);
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].symbol.as_str(), "AAPL");
        assert_eq!(records[0].exchange, Exchange::Nasdaq);
        assert_eq!(records[0].asset_type, AssetType::Stock);
        assert_eq!(
            records[0].source_id.as_deref(),
            Some("b0b6dd9d-8b9b-48a9-ba46-b9d54906e415")
        );
        assert_eq!(records[1].symbol.as_str(), "BRK.B");
        assert_eq!(records[2].exchange, Exchange::Unknown);
        assert_eq!(records[2].name, "");
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].reason.contains("tradable"));
    }

    #[test]
    fn errors_name_the_variables_and_the_host() {
        let auth = classify(403, br#"{"message":"forbidden"}"#).unwrap();
        assert!(auth.to_string().contains("ALPACA_KEY_ID"), "{auth}");
        let missing = classify(404, b"Not Found").unwrap();
        assert!(
            missing.to_string().contains("MP_ALPACA_TRADING_BASE_URL"),
            "{missing}"
        );
    }
}
