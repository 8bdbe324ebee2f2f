//! Unit tests: the documented bodies of `polygon.md`, URL building and `next_url`
//! following, the fractional-volume rule, errors, credentials.

use std::collections::BTreeMap;

use marketpipe_domain::{Price, SessionKind, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider, PageCursor, ProviderError};
use marketpipe_provider_kit::{MapEnv, ProviderSettings, SessionFilter, SetupError};
use url::Url;

use super::*;

const PAGE_1: &str = r#"{
  "ticker": "AAPL",
  "queryCount": 2,
  "resultsCount": 2,
  "adjusted": false,
  "results": [
    {"v": 1432211, "vw": 171.3054, "o": 171.17, "c": 171.48, "h": 171.62, "l": 170.91, "t": 1710509400000, "n": 11873},
    {"v": 512034.5, "vw": 171.566, "o": 171.49, "c": 171.66, "h": 171.8, "l": 171.3, "t": 1710509460000, "n": 5210}
  ],
  "status": "OK",
  "request_id": "8f1c2a7be0d94c3f9a61e2d4c5b7a903",
  "next_url": "https://api.massive.com/v2/aggs/ticker/AAPL/range/1/minute/1710509520000/1710509579999?cursor=bGltaXQ9MiZzb3J0PWFzYw"
}"#;

const PAGE_2: &str = r#"{
  "ticker": "AAPL",
  "queryCount": 1,
  "resultsCount": 1,
  "adjusted": false,
  "results": [
    {"v": 388120, "vw": 171.5749, "o": 171.66, "c": 171.5, "h": 171.71, "l": 171.42, "t": 1710509520000, "n": 4102}
  ],
  "status": "OK",
  "request_id": "0b6d9e4f21a84d1e8c3f5a7b9d2e4f61"
}"#;

const EMPTY: &str = r#"{"ticker":"AAPL","queryCount":0,"resultsCount":0,"adjusted":false,"status":"OK","request_id":"5d2e"}"#;

const KEY: &str = "PolygonKey0123456789";

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn px(s: &str) -> Price {
    s.parse().unwrap()
}

fn aapl() -> Symbol {
    Symbol::new("AAPL").unwrap()
}

fn request(symbol: &str, start: &str, end: &str, session: SessionKind) -> BarRequest {
    BarRequest {
        symbols: vec![Symbol::new(symbol).unwrap()],
        range: TimeRange::new(ts(start), ts(end)).unwrap(),
        timeframe: Timeframe::M1,
        session,
        feed: None,
        adjustment: Adjustment::Raw,
        page_size: None,
        cursor: None,
    }
}

fn example_request() -> BarRequest {
    request(
        "AAPL",
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:33:00Z",
        SessionKind::Regular,
    )
}

fn parse(body: &str, request: &BarRequest) -> Result<BarPage, ProviderError> {
    let url = Url::parse("https://api.massive.com/v2/aggs/ticker/AAPL/range/1/minute/1/2?limit=2")
        .unwrap();
    let filter = SessionFilter::new(request.range, request.session).unwrap();
    wire::parse_page(body.as_bytes(), &url, request.symbols[0], &filter)
}

fn provider_at(base: &str) -> PolygonProvider {
    let settings = ProviderSettings {
        base_url: Some(base.into()),
        ..ProviderSettings::default()
    };
    PolygonProvider::new(&settings, &MapEnv::from_pairs([("POLYGON_API_KEY", KEY)])).unwrap()
}

#[test]
fn parses_the_documented_pages_with_the_fractional_volume_rule() {
    let page = parse(PAGE_1, &example_request()).unwrap();
    assert_eq!(page.bars.len(), 2);
    let b = &page.bars[0];
    assert_eq!(b.symbol, aapl());
    assert_eq!(b.ts, ts("2024-03-15T13:30:00Z"));
    assert_eq!(b.ts.nanos(), 1_710_509_400_000 * 1_000_000);
    assert_eq!(
        (b.open, b.high, b.low, b.close),
        (px("171.17"), px("171.62"), px("170.91"), px("171.48"))
    );
    assert_eq!(
        (b.volume, b.trade_count, b.vwap),
        (1_432_211, Some(11_873), Some(px("171.3054")))
    );
    // 512034.5 rounds half away from zero, and is counted.
    assert_eq!(page.bars[1].volume, 512_035);
    assert_eq!(page.fractional_volumes_rounded, 1);
    assert_eq!(
        page.next,
        Some(PageCursor(
            "https://api.massive.com/v2/aggs/ticker/AAPL/range/1/minute/1710509520000/1710509579999?cursor=bGltaXQ9MiZzb3J0PWFzYw".into()
        ))
    );
    let page = parse(PAGE_2, &example_request()).unwrap();
    assert_eq!(page.bars.len(), 1);
    assert_eq!(page.bars[0].ts, ts("2024-03-15T13:32:00Z"));
    assert_eq!(page.next, None);
    assert_eq!(page.fractional_volumes_rounded, 0);
}

#[test]
fn empty_legacy_and_sparse_answers() {
    for empty in [
        EMPTY,
        r#"{"ticker":"AAPL","resultsCount":0,"results":null,"status":"OK"}"#,
        r#"{"ticker":"AAPL","resultsCount":0,"results":[],"status":"DELAYED"}"#,
    ] {
        let page = parse(empty, &example_request()).unwrap();
        assert!(page.bars.is_empty() && page.next.is_none(), "{empty}");
    }
    // `vw`/`n` absent, `v` as 1234.0, 0.5 and 2.5 (ties away from zero), 0.4 (down to 0).
    let body = r#"{"status":"OK","results":[
        {"t":1710509400000,"o":1,"h":1,"l":1,"c":1,"v":1234.0},
        {"t":1710509460000,"o":1,"h":1,"l":1,"c":1,"v":0.5,"n":3.0},
        {"t":1710509520000,"o":1,"h":1,"l":1,"c":1,"v":2.5,"vw":1},
        {"t":1710509580000,"o":1,"h":1,"l":1,"c":1,"v":0.4}
    ]}"#;
    let req = request(
        "AAPL",
        "2024-03-15T13:30:00Z",
        "2024-03-15T14:00:00Z",
        SessionKind::Regular,
    );
    let page = parse(body, &req).unwrap();
    let volumes: Vec<u64> = page.bars.iter().map(|b| b.volume).collect();
    assert_eq!(volumes, [1234, 1, 3, 0]);
    assert_eq!(page.fractional_volumes_rounded, 3);
    assert_eq!((page.bars[0].trade_count, page.bars[0].vwap), (None, None));
    assert_eq!(page.bars[1].trade_count, Some(3));
    assert_eq!(page.bars[2].vwap, Some(px("1")));
}

#[test]
fn keeps_only_the_range_and_session() {
    // 08:00Z (04:00 ET) and 20:30Z (16:30 ET) are extended hours; 21:00Z on 2024-03-16 is a
    // Saturday.
    let body = r#"{"status":"OK","results":[
        {"t":1710489600000,"o":1,"h":1,"l":1,"c":1,"v":0.5},
        {"t":1710509400000,"o":1,"h":1,"l":1,"c":1,"v":1},
        {"t":1710534600000,"o":1,"h":1,"l":1,"c":1,"v":1},
        {"t":1710622800000,"o":1,"h":1,"l":1,"c":1,"v":1}
    ]}"#;
    let regular = request(
        "AAPL",
        "2024-03-15T04:00:00Z",
        "2024-03-17T04:00:00Z",
        SessionKind::Regular,
    );
    let page = parse(body, &regular).unwrap();
    assert_eq!(page.bars.len(), 1);
    assert_eq!(page.bars[0].ts, ts("2024-03-15T13:30:00Z"));
    assert_eq!(
        page.fractional_volumes_rounded, 0,
        "dropped bars are not counted"
    );
    let extended = BarRequest {
        session: SessionKind::Extended,
        ..regular
    };
    let page = parse(body, &extended).unwrap();
    assert_eq!(page.bars.len(), 3);
    assert_eq!(page.fractional_volumes_rounded, 1);
}

#[test]
fn bad_bodies_are_malformed_and_errors_in_200s_are_mapped() {
    let req = example_request();
    for (body, needle) in [
        (&PAGE_1[..200], "EOF while parsing"),
        (
            r#"{"results":[{"t":"x","o":1,"h":1,"l":1,"c":1,"v":1}]}"#,
            "invalid type",
        ),
        (
            r#"{"results":[{"t":1710509400000,"o":1,"h":1,"l":1,"c":1,"v":-0.5}]}"#,
            "AAPL 2024-03-15T13:30:00Z v",
        ),
        (
            r#"{"results":[{"t":1710509400000,"o":1,"h":1,"l":1,"c":-2,"v":1}]}"#,
            "AAPL 2024-03-15T13:30:00Z c",
        ),
    ] {
        let err = parse(body, &req).unwrap_err();
        assert!(matches!(err, ProviderError::Malformed { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("GET /v2/aggs/ticker/AAPL/range/1/minute/1/2: "),
            "{text}"
        );
        assert!(text.contains(needle), "{needle}: {text}");
        assert!(!text.contains("limit="), "{text}");
    }
    let err = parse(
        r#"{"status":"NOT_AUTHORIZED","message":"You are not entitled to this data."}"#,
        &req,
    )
    .unwrap_err();
    assert!(
        matches!(err, ProviderError::Auth { .. }) && err.to_string().contains("POLYGON_API_KEY")
    );
    let err = parse(r#"{"status":"ERROR","error":"bad"}"#, &req).unwrap_err();
    assert!(matches!(err, ProviderError::BadRequest { .. }));
}

#[test]
fn builds_the_documented_url_without_the_key() {
    let p = provider_at("http://127.0.0.1:9");
    let url = p.page_url(&example_request(), aapl()).unwrap().unwrap();
    assert_eq!(
        url.path(),
        "/v2/aggs/ticker/AAPL/range/1/minute/1710509400000/1710509579999"
    );
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["adjusted"], "false");
    assert_eq!(q["sort"], "asc");
    assert_eq!(q["limit"], "50000");
    assert_eq!(q.len(), 3);
    assert!(!url.as_str().contains(KEY));

    let mut req = request(
        "BRK.B",
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:33:00Z",
        SessionKind::Regular,
    );
    req.adjustment = Adjustment::Split;
    req.page_size = Some(120);
    let url = p.page_url(&req, req.symbols[0]).unwrap().unwrap();
    assert!(
        url.path()
            .starts_with("/v2/aggs/ticker/BRK.B/range/1/minute/")
    );
    assert!(
        url.query().unwrap().contains("adjusted=true")
            && url.query().unwrap().contains("limit=120")
    );
    req.adjustment = Adjustment::Dividend;
    let err = p.page_url(&req, req.symbols[0]).unwrap_err();
    assert!(matches!(err, ProviderError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("splits only"));

    let empty = request(
        "AAPL",
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:30:00Z",
        SessionKind::Regular,
    );
    assert!(p.page_url(&empty, aapl()).unwrap().is_none());
}

#[test]
fn follows_next_url_on_the_configured_host_without_a_key() {
    let p = provider_at("http://127.0.0.1:9");
    let next = "https://api.massive.com/v2/aggs/ticker/AAPL/range/1/minute/1710509520000/1710509579999?cursor=bGltaXQ9MiZzb3J0PWFzYw";
    let mut req = example_request();
    req.cursor = Some(PageCursor(next.into()));
    let url = p.page_url(&req, aapl()).unwrap().unwrap();
    assert_eq!(
        url.as_str(),
        "http://127.0.0.1:9/v2/aggs/ticker/AAPL/range/1/minute/1710509520000/1710509579999?cursor=bGltaXQ9MiZzb3J0PWFzYw"
    );
    // An apiKey someone added is dropped (the key goes in the header).
    req.cursor = Some(PageCursor(format!("{next}&apiKey=LEAKED")));
    let url = p.page_url(&req, aapl()).unwrap().unwrap();
    assert!(!url.as_str().contains("LEAKED") && !url.as_str().to_lowercase().contains("apikey"));
    assert!(url.query().unwrap().starts_with("cursor="));
    // A base URL with a path prefix keeps it.
    let prefixed = provider_at("http://127.0.0.1:9/polygon/");
    req.cursor = Some(PageCursor(next.into()));
    let url = prefixed.page_url(&req, aapl()).unwrap().unwrap();
    assert!(
        url.path().starts_with("/polygon/v2/aggs/ticker/AAPL/"),
        "{url}"
    );
    // Cursors that are not this symbol's aggregates are refused.
    for bad in [
        "https://api.massive.com/v2/aggs/ticker/MSFT/range/1/minute/1/2?cursor=x",
        "https://api.massive.com/v3/reference/tickers?cursor=x",
        "::not a url::",
    ] {
        req.cursor = Some(PageCursor(bad.into()));
        let err = p.page_url(&req, aapl()).unwrap_err();
        assert!(
            matches!(err, ProviderError::BadRequest { .. }),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn maps_error_bodies() {
    let e = classify(
        401,
        br#"{"status":"ERROR","request_id":"x","error":"Unknown API Key"}"#,
    )
    .unwrap();
    assert!(matches!(e, ProviderError::Auth { .. }));
    let text = e.to_string();
    assert!(
        text.contains("Unknown API Key") && text.contains("POLYGON_API_KEY"),
        "{text}"
    );
    let e = classify(
        403,
        br#"{"status":"NOT_AUTHORIZED","request_id":"x","message":"You are not entitled to this data. Please upgrade your plan at https://massive.com/pricing"}"#,
    )
    .unwrap();
    assert!(matches!(e, ProviderError::Auth { .. }) && e.to_string().contains("not entitled"));
    let e = classify(400, br#"{"status":"ERROR","request_id":"x","error":"Could not parse the time parameter: 'from'. Use YYYY-MM-DD or Unix MS Timestamps"}"#).unwrap();
    assert!(
        matches!(&e, ProviderError::BadRequest { message, .. } if message.contains("Could not parse the time parameter"))
    );
    assert!(matches!(
        classify(404, b"404 page not found"),
        Some(ProviderError::NotFound { .. })
    ));
    assert!(classify(409, b"").is_none());
}

#[tokio::test]
async fn refuses_what_it_cannot_ask_before_sending() {
    let p = provider_at("http://127.0.0.1:9");
    let mut req = example_request();
    req.symbols.push(Symbol::new("MSFT").unwrap());
    assert!(matches!(
        p.fetch_bars(&req).await,
        Err(ProviderError::BadRequest { .. })
    ));
    let mut req = example_request();
    req.timeframe = Timeframe::H1;
    assert!(matches!(
        p.fetch_bars(&req).await,
        Err(ProviderError::Unsupported { .. })
    ));
    assert_eq!(p.metrics().requests, 0);
}

#[test]
fn credentials_and_info() {
    let settings = ProviderSettings::default();
    assert!(!credentials_present(&settings, &MapEnv::default()));
    let err = PolygonProvider::new(&settings, &MapEnv::default()).unwrap_err();
    assert!(
        matches!(&err, SetupError::MissingCredentials { variables, .. } if variables == CREDENTIAL_VARIABLES)
    );
    assert!(err.to_string().contains("POLYGON_API_KEY"), "{err}");
    let massive = MapEnv::from_pairs([("MASSIVE_API_KEY", KEY)]);
    assert!(credentials_present(&settings, &massive));
    let mut configured = settings.clone();
    configured.credentials.insert("api_key".into(), KEY.into());
    assert!(credentials_present(&configured, &MapEnv::default()));

    let p = provider_at("http://127.0.0.1:9");
    let debug = format!("{p:?}");
    assert!(!debug.contains(KEY), "{debug}");
    let i = p.info();
    assert_eq!(i, info());
    assert_eq!(i.rate_limit, Some(RateLimit::per_minute(5)));
    assert_eq!((i.max_page_size, i.max_symbols_per_request), (50_000, 1));
    assert!(i.retries_internally && i.feeds.is_empty());
}
