//! The Finnhub adapter against the testkit simulator (real HTTP on loopback): month windows
//! over a two-month range, and the paid-plan explanation for free keys.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use marketpipe_domain::{
    Bar, DateRange, SessionKind, Symbol, TimeRange, Timeframe, TradingCalendar,
};
use marketpipe_fake::FakeProvider;
use marketpipe_finnhub::FinnhubProvider;
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider, ProviderError, RateLimit};
use marketpipe_provider_kit::{MapEnv, ProviderSettings};
use marketpipe_testkit::simulator::{Simulator, SimulatorConfig};

const PREMIUM: &str = "fhpremiumkey";
const FREE: &str = "fhfreekey";

async fn all_pages(
    provider: &dyn MarketDataProvider,
    mut request: BarRequest,
) -> (Vec<Bar>, usize) {
    let mut bars = Vec::new();
    let mut pages = 0;
    loop {
        let page = provider.fetch_bars(&request).await.unwrap();
        pages += 1;
        assert!(pages < 100, "paging does not end");
        bars.extend(page.bars);
        match page.next {
            Some(cursor) => request.cursor = Some(cursor),
            None => return (bars, pages),
        }
    }
}

async fn start() -> Simulator {
    Simulator::start(SimulatorConfig {
        finnhub_keys: vec![PREMIUM.into()],
        finnhub_free_keys: vec![FREE.into()],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap()
}

fn provider(sim: &Simulator, key: &str) -> FinnhubProvider {
    let settings = ProviderSettings {
        base_url: Some(format!("{}/api/v1", sim.base_url())),
        rate_limit: Some(RateLimit::per_minute(10_000)),
        ..ProviderSettings::default()
    };
    FinnhubProvider::new(&settings, &MapEnv::from_pairs([("FINNHUB_API_KEY", key)])).unwrap()
}

#[tokio::test]
async fn reads_two_months_in_month_windows() {
    let sim = start().await;
    let provider = provider(&sim, PREMIUM);
    let dates = DateRange::new(
        NaiveDate::from_ymd_opt(2024, 10, 1).unwrap(),
        NaiveDate::from_ymd_opt(2024, 11, 29).unwrap(),
    )
    .unwrap();
    let (start, end) = TradingCalendar::xnys().utc_bounds(dates);
    let request = BarRequest {
        symbols: vec![Symbol::new("MSFT").unwrap()],
        range: TimeRange::new(start, end).unwrap(),
        timeframe: Timeframe::M1,
        session: SessionKind::Regular,
        feed: None,
        adjustment: Adjustment::Raw,
        page_size: None,
        cursor: None,
    };
    let (got, pages) = all_pages(&provider, request.clone()).await;
    let (want, _) = all_pages(&FakeProvider::new(), request).await;
    // Finnhub has no VWAP and no trade count.
    let want: Vec<Bar> = want
        .into_iter()
        .map(|b| Bar {
            vwap: None,
            trade_count: None,
            ..b
        })
        .collect();
    assert_eq!(pages, 2);
    assert!(!got.is_empty());
    assert_eq!(got, want);

    provider.test_connection().await.unwrap();
    let requests = sim.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            !r.query.contains(PREMIUM) && !r.query.contains("token"),
            "{}",
            r.query
        );
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "x-finnhub-token" && v == PREMIUM)
        );
    }
}

#[tokio::test]
async fn a_free_key_is_told_that_candles_need_a_paid_plan() {
    let sim = start().await;
    let err = provider(&sim, FREE).test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Auth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("paid Finnhub plan") && text.contains("FINNHUB_API_KEY"),
        "{text}"
    );
    assert!(!text.contains(FREE));
}
