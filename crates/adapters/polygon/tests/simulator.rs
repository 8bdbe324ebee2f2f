//! The Polygon adapter against the testkit simulator (real HTTP on loopback): it follows
//! `next_url` with the key in the header and reads the fake generator's bars.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use marketpipe_domain::{
    Bar, DateRange, SessionKind, Symbol, TimeRange, Timeframe, TradingCalendar,
};
use marketpipe_fake::FakeProvider;
use marketpipe_polygon::PolygonProvider;
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider, ProviderError, RateLimit};
use marketpipe_provider_kit::{MapEnv, ProviderSettings};
use marketpipe_testkit::simulator::{Simulator, SimulatorConfig};

const KEY: &str = "polysimkey";

async fn all_pages(
    provider: &dyn MarketDataProvider,
    mut request: BarRequest,
) -> (Vec<Bar>, usize, u64) {
    let mut bars = Vec::new();
    let mut pages = 0;
    let mut rounded = 0;
    loop {
        let page = provider.fetch_bars(&request).await.unwrap();
        pages += 1;
        assert!(pages < 100, "paging does not end");
        rounded += page.fractional_volumes_rounded;
        bars.extend(page.bars);
        match page.next {
            Some(cursor) => request.cursor = Some(cursor),
            None => return (bars, pages, rounded),
        }
    }
}

fn provider(sim: &Simulator, key: &str) -> PolygonProvider {
    let settings = ProviderSettings {
        base_url: Some(sim.base_url()),
        rate_limit: Some(RateLimit::per_minute(10_000)),
        ..ProviderSettings::default()
    };
    PolygonProvider::new(&settings, &MapEnv::from_pairs([("MASSIVE_API_KEY", key)])).unwrap()
}

#[tokio::test]
async fn follows_next_url_and_reads_the_fake_bars() {
    let sim = Simulator::start(SimulatorConfig {
        polygon_keys: vec![KEY.into()],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let provider = provider(&sim, KEY);
    let dates = DateRange::new(
        NaiveDate::from_ymd_opt(2024, 11, 27).unwrap(),
        NaiveDate::from_ymd_opt(2024, 11, 29).unwrap(),
    )
    .unwrap();
    let (start, end) = TradingCalendar::xnys().utc_bounds(dates);
    let request = BarRequest {
        symbols: vec![Symbol::new("BRK.B").unwrap()],
        range: TimeRange::new(start, end).unwrap(),
        timeframe: Timeframe::M1,
        session: SessionKind::Extended,
        feed: None,
        adjustment: Adjustment::Raw,
        page_size: Some(500),
        cursor: None,
    };
    let (got, pages, rounded) = all_pages(&provider, request.clone()).await;
    let (want, _, _) = all_pages(
        &FakeProvider::new(),
        BarRequest {
            page_size: None,
            ..request
        },
    )
    .await;
    assert_eq!(got.len(), 960 + 780);
    assert_eq!(got, want);
    assert_eq!(pages, 4);
    assert_eq!(rounded, 0, "the simulator's 1234.0 volumes are whole");

    provider.test_connection().await.unwrap();
    let requests = sim.requests();
    assert_eq!(requests.len(), 5);
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            !r.query.contains(KEY) && !r.query.to_lowercase().contains("apikey"),
            "{}",
            r.query
        );
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == &format!("Bearer {KEY}"))
        );
    }
    // Pages after the first follow the simulator's next_url (a cursor query).
    assert!(
        requests[1].query.starts_with("cursor="),
        "{}",
        requests[1].query
    );
}

#[tokio::test]
async fn an_unknown_key_is_an_auth_error_naming_the_variables() {
    let sim = Simulator::start(SimulatorConfig {
        polygon_keys: vec![KEY.into()],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let err = provider(&sim, "nope").test_connection().await.unwrap_err();
    assert!(matches!(err, ProviderError::Auth { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("Unknown API Key") && text.contains("POLYGON_API_KEY"),
        "{text}"
    );
}
