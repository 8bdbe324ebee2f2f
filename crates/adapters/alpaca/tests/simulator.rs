//! The Alpaca adapter against the testkit simulator (real HTTP on loopback): the bars it
//! reads, page by page, are the fake generator's bars of the requested hours.

// `allow-unwrap-in-tests` covers `#[test]` functions only, not this file's helpers.
#![allow(clippy::unwrap_used)]

use chrono::NaiveDate;
use marketpipe_alpaca::AlpacaProvider;
use marketpipe_domain::{
    Bar, DateRange, SessionKind, Symbol, TimeRange, Timeframe, TradingCalendar,
};
use marketpipe_fake::FakeProvider;
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider, RateLimit};
use marketpipe_provider_kit::{MapEnv, ProviderSettings};
use marketpipe_testkit::simulator::{Simulator, SimulatorConfig};

const KEY_ID: &str = "PKSIMKEY";
const SECRET: &str = "simsecret";

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

#[tokio::test]
async fn reads_the_fake_bars_through_the_simulator() {
    let sim = Simulator::start(SimulatorConfig {
        alpaca_keys: vec![(KEY_ID.into(), SECRET.into())],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let settings = ProviderSettings {
        base_url: Some(sim.base_url()),
        rate_limit: Some(RateLimit::per_minute(10_000)),
        ..ProviderSettings::default()
    };
    let env = MapEnv::from_pairs([("APCA_API_KEY_ID", KEY_ID), ("APCA_API_SECRET_KEY", SECRET)]);
    let provider = AlpacaProvider::new(&settings, &env).unwrap();

    // Wednesday, Thanksgiving (closed) and the early close on Friday.
    let dates = DateRange::new(
        NaiveDate::from_ymd_opt(2024, 11, 27).unwrap(),
        NaiveDate::from_ymd_opt(2024, 11, 29).unwrap(),
    )
    .unwrap();
    let (start, end) = TradingCalendar::xnys().utc_bounds(dates);
    let request = BarRequest {
        symbols: vec![Symbol::new("AAPL").unwrap(), Symbol::new("MSFT").unwrap()],
        range: TimeRange::new(start, end).unwrap(),
        timeframe: Timeframe::M1,
        session: SessionKind::Regular,
        feed: None,
        adjustment: Adjustment::Raw,
        page_size: Some(1000),
        cursor: None,
    };
    let (mut got, pages) = all_pages(&provider, request.clone()).await;
    let (mut want, _) = all_pages(
        &FakeProvider::new(),
        BarRequest {
            page_size: None,
            ..request
        },
    )
    .await;
    got.sort_by_key(|b| (b.symbol, b.ts));
    want.sort_by_key(|b| (b.symbol, b.ts));
    assert_eq!(got.len(), 2 * (390 + 210));
    assert_eq!(got, want);
    // 2 symbols x (960 + 780) extended-hours bars at 1000 a page.
    assert_eq!(pages, 4);

    provider.test_connection().await.unwrap();
    let requests = sim.requests();
    assert_eq!(requests.len(), 5);
    for r in &requests {
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            !r.query.contains(KEY_ID) && !r.query.contains(SECRET),
            "{}",
            r.query
        );
        assert!(
            r.headers
                .iter()
                .any(|(k, v)| k == "apca-api-key-id" && v == KEY_ID)
        );
    }
    assert_eq!(provider.metrics().requests, 5);
}

#[tokio::test]
async fn wrong_keys_are_an_auth_error_naming_the_variables() {
    let sim = Simulator::start(SimulatorConfig {
        alpaca_keys: vec![(KEY_ID.into(), SECRET.into())],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let settings = ProviderSettings {
        base_url: Some(sim.base_url()),
        ..ProviderSettings::default()
    };
    let env = MapEnv::from_pairs([("ALPACA_KEY_ID", KEY_ID), ("ALPACA_SECRET_KEY", "wrong")]);
    let provider = AlpacaProvider::new(&settings, &env).unwrap();
    let err = provider.test_connection().await.unwrap_err();
    assert!(
        matches!(err, marketpipe_ports::ProviderError::Auth { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("ALPACA_SECRET_KEY"), "{err}");
    assert!(!err.to_string().contains("wrong"), "{err}");
}

fn day_request(symbols: &[&str], page_size: usize) -> BarRequest {
    let date = NaiveDate::from_ymd_opt(2024, 3, 15).unwrap();
    let (start, end) = TradingCalendar::xnys().utc_bounds(DateRange::new(date, date).unwrap());
    BarRequest {
        symbols: symbols.iter().map(|s| Symbol::new(s).unwrap()).collect(),
        range: TimeRange::new(start, end).unwrap(),
        timeframe: Timeframe::M1,
        session: SessionKind::Extended,
        feed: Some("iex".into()),
        adjustment: Adjustment::Raw,
        page_size: Some(page_size),
        cursor: None,
    }
}

#[tokio::test]
async fn transient_faults_are_retried_and_counted_and_truncated_json_is_malformed() {
    use marketpipe_testkit::simulator::Faults;
    let sim = Simulator::start(SimulatorConfig {
        alpaca_keys: vec![(KEY_ID.into(), SECRET.into())],
        faults: Faults {
            dropped_connections: 1,
            server_errors: 2,
            html_errors: 1,
            ..Faults::default()
        },
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let settings = ProviderSettings {
        base_url: Some(sim.base_url()),
        ..ProviderSettings::default()
    };
    let env = MapEnv::from_pairs([("ALPACA_KEY_ID", KEY_ID), ("ALPACA_SECRET_KEY", SECRET)]);
    let provider = AlpacaProvider::new(&settings, &env).unwrap();
    let page = provider
        .fetch_bars(&day_request(&["AAPL"], 10_000))
        .await
        .unwrap();
    assert_eq!(page.bars.len(), 960);
    assert_eq!((page.stats.requests, page.stats.retries), (5, 4));
    assert_eq!(sim.stats().faults_injected, 4);

    sim.set_faults(Faults {
        truncated_json: 1,
        ..Faults::default()
    });
    let err = provider
        .fetch_bars(&day_request(&["AAPL"], 10_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, marketpipe_ports::ProviderError::Malformed { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("GET /v2/stocks/bars: EOF while parsing"),
        "{text}"
    );
    assert!(
        !text.contains(KEY_ID) && !text.contains("symbols="),
        "{text}"
    );
    assert_eq!(sim.requests().len(), 6, "malformed JSON is not retried");
}

/// The rate-limit rule on the real wire: the simulator allows 5 requests per key in a
/// fixed window from the first; 12 pages through a client limited to 5 per second get no
/// 429. (The simulator's window is 0.9 s so a slow first request on a loaded machine cannot
/// make this flaky; the limiter's arithmetic is tested exactly in virtual time.)
#[tokio::test]
async fn the_client_limit_keeps_under_the_provider_quota() {
    use marketpipe_testkit::simulator::SimRateLimit;
    use std::time::Duration;
    let sim = Simulator::start(SimulatorConfig {
        alpaca_keys: vec![(KEY_ID.into(), SECRET.into())],
        rate_limit: Some(SimRateLimit {
            requests: 5,
            window: Duration::from_millis(900),
            retry_after: true,
        }),
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    let settings = ProviderSettings {
        base_url: Some(sim.base_url()),
        rate_limit: Some(RateLimit {
            requests: 5,
            per: Duration::from_secs(1),
        }),
        ..ProviderSettings::default()
    };
    let env = MapEnv::from_pairs([("ALPACA_KEY_ID", KEY_ID), ("ALPACA_SECRET_KEY", SECRET)]);
    let provider = AlpacaProvider::new(&settings, &env).unwrap();
    // 960 extended-hours bars at 85 a page: 12 pages.
    let (bars, pages) = all_pages(&provider, day_request(&["MSFT"], 85)).await;
    assert_eq!((bars.len(), pages), (960, 12));
    assert_eq!(sim.stats().rate_limited, 0);
    let m = provider.metrics();
    assert_eq!((m.requests, m.rate_limited), (12, 0));
    assert!(m.throttled > Duration::ZERO);
}

/// A day's request through an adapter whose retry policy comes from `settings`, against a
/// simulator that first fails as `faults` says. Returns the page's stats and how much
/// (paused, virtual) time the call took.
async fn fetch_with_faults(
    settings: ProviderSettings,
    faults: marketpipe_testkit::simulator::Faults,
) -> (marketpipe_ports::FetchStats, std::time::Duration) {
    let sim = Simulator::start(SimulatorConfig {
        alpaca_keys: vec![(KEY_ID.into(), SECRET.into())],
        ..SimulatorConfig::default()
    })
    .await
    .unwrap();
    sim.set_faults(faults);
    let settings = ProviderSettings {
        base_url: Some(sim.base_url()),
        rate_limit: Some(RateLimit::per_minute(10_000)),
        // Far beyond any wait below, so that the paused clock only ever jumps to a retry.
        timeout: Some(std::time::Duration::from_hours(24)),
        ..settings
    };
    let env = MapEnv::from_pairs([("APCA_API_KEY_ID", KEY_ID), ("APCA_API_SECRET_KEY", SECRET)]);
    let provider = AlpacaProvider::new(&settings, &env).unwrap();
    let day = NaiveDate::from_ymd_opt(2024, 3, 5).unwrap();
    let (start, end) = TradingCalendar::xnys().utc_bounds(DateRange::new(day, day).unwrap());
    let request = BarRequest {
        symbols: vec![Symbol::new("AAPL").unwrap()],
        range: TimeRange::new(start, end).unwrap(),
        timeframe: Timeframe::M1,
        session: SessionKind::Regular,
        feed: None,
        adjustment: Adjustment::Raw,
        page_size: None,
        cursor: None,
    };
    // Virtual time: the tests run on tokio's paused clock, so this is what the adapter slept,
    // not how long the machine took.
    let started = tokio::time::Instant::now();
    let page = provider.fetch_bars(&request).await.unwrap();
    let took = tokio::time::Instant::now().duration_since(started);
    assert!(!page.bars.is_empty());
    sim.shutdown().await;
    (page.stats, took)
}

#[tokio::test(start_paused = true)]
async fn the_configured_retry_delays_are_what_the_adapter_waits() {
    use marketpipe_testkit::simulator::Faults;
    use std::time::Duration;

    // A base delay of 40 s (the default is 250 ms): two server errors, two retries, each
    // waiting at most its ceiling (40 s, then 80 s capped at the 60 s maximum); the adapter
    // really sleeps what it reports (on the paused clock, so the test takes no time).
    let (stats, took) = fetch_with_faults(
        ProviderSettings {
            max_retries: Some(3),
            retry_base_delay: Some(Duration::from_secs(40)),
            retry_max_delay: Some(Duration::from_mins(1)),
            ..ProviderSettings::default()
        },
        Faults {
            server_errors: 2,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(stats.retries, 2);
    assert!(stats.retry_wait <= Duration::from_secs(100), "{stats:?}");
    assert!(
        took >= stats.retry_wait,
        "slept {took:?}, reported {stats:?}"
    );

    // A base delay of zero: the retries do not wait at all (the default would wait up to
    // 250 ms, then 500 ms).
    let (stats, took) = fetch_with_faults(
        ProviderSettings {
            retry_base_delay: Some(Duration::ZERO),
            ..ProviderSettings::default()
        },
        Faults {
            server_errors: 2,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(stats.retries, 2);
    assert_eq!(stats.retry_wait, Duration::ZERO);
    assert!(took < Duration::from_millis(250), "{took:?}");

    // The maximum delay caps the provider's `Retry-After: 1`: two 429s, 300 ms each.
    let (stats, took) = fetch_with_faults(
        ProviderSettings {
            retry_max_delay: Some(Duration::from_millis(300)),
            ..ProviderSettings::default()
        },
        Faults {
            forced_429: 2,
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(stats.retries, 2);
    assert_eq!(stats.retry_wait, Duration::from_millis(600));
    assert!(took >= Duration::from_millis(600), "{took:?}");
}
