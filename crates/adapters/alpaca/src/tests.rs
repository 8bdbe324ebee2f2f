//! Unit tests: the documented bodies of `alpaca.md`, URL building, errors, credentials.

use std::collections::BTreeMap;

use marketpipe_domain::{Price, SessionKind, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider, PageCursor, ProviderError};
use marketpipe_provider_kit::{MapEnv, ProviderSettings, SessionFilter, SetupError};
use url::Url;

use super::*;

const PAGE_1: &str = r#"{
  "bars": {
    "AAPL": [
      {"t":"2024-03-15T13:30:00Z","o":171.17,"h":171.62,"l":170.91,"c":171.48,"v":1432211,"n":11873,"vw":171.305412},
      {"t":"2024-03-15T13:31:00Z","o":171.49,"h":171.8,"l":171.3,"c":171.66,"v":512034,"n":5210,"vw":171.566031},
      {"t":"2024-03-15T13:32:00Z","o":171.66,"h":171.71,"l":171.42,"c":171.5,"v":388120,"n":4102,"vw":171.574877}
    ]
  },
  "next_page_token": "QUFQTHxNfDIwMjQtMDMtMTVUMTM6MzI6MDAuMDAwMDAwMDAwWg=="
}"#;

const PAGE_2: &str = r#"{
  "bars": {
    "MSFT": [
      {"t":"2024-03-15T13:30:00Z","o":418.11,"h":419.0,"l":417.6,"c":418.74,"v":301455,"n":6021,"vw":418.356221},
      {"t":"2024-03-15T13:31:00Z","o":418.7,"h":418.95,"l":418.2,"c":418.31,"v":98210,"n":2144,"vw":418.553909},
      {"t":"2024-03-15T13:32:00Z","o":418.3,"h":418.52,"l":417.95,"c":418.02,"v":87344,"n":1933,"vw":418.240118}
    ]
  },
  "next_page_token": null
}"#;

const SINGLE: &str = r#"{
  "bars": [
    {"t":"2024-03-15T08:00:00Z","o":171.9,"h":172.05,"l":171.85,"c":172.0,"v":4310,"n":96,"vw":171.962114}
  ],
  "symbol": "AAPL",
  "next_page_token": null
}"#;

const KEY_ID: &str = "PKTESTKEYID0001";
const SECRET_KEY: &str = "sEcReTkEy0002";

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn px(s: &str) -> Price {
    s.parse().unwrap()
}

fn request(symbols: &[&str], start: &str, end: &str, session: SessionKind) -> BarRequest {
    BarRequest {
        symbols: symbols.iter().map(|s| Symbol::new(s).unwrap()).collect(),
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
        &["AAPL", "MSFT"],
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:33:00Z",
        SessionKind::Regular,
    )
}

fn url() -> Url {
    Url::parse("https://data.alpaca.markets/v2/stocks/bars?symbols=AAPL").unwrap()
}

fn parse(body: &str, request: &BarRequest) -> Result<marketpipe_ports::BarPage, ProviderError> {
    let filter = SessionFilter::new(request.range, request.session).unwrap();
    wire::parse_page(body.as_bytes(), &url(), request, &filter)
}

fn env() -> MapEnv {
    MapEnv::from_pairs([("ALPACA_KEY_ID", KEY_ID), ("ALPACA_SECRET_KEY", SECRET_KEY)])
}

fn provider() -> AlpacaProvider {
    let settings = ProviderSettings {
        base_url: Some("http://127.0.0.1:9".into()),
        ..ProviderSettings::default()
    };
    AlpacaProvider::new(&settings, &env()).unwrap()
}

#[test]
fn parses_the_documented_pages() {
    let req = example_request();
    let page = parse(PAGE_1, &req).unwrap();
    assert_eq!(page.bars.len(), 3);
    assert_eq!(
        page.next,
        Some(PageCursor(
            "QUFQTHxNfDIwMjQtMDMtMTVUMTM6MzI6MDAuMDAwMDAwMDAwWg==".into()
        ))
    );
    assert_eq!(page.fractional_volumes_rounded, 0);
    let b = &page.bars[0];
    assert_eq!(b.symbol.as_str(), "AAPL");
    assert_eq!(b.ts, ts("2024-03-15T13:30:00Z"));
    assert_eq!(b.ts.nanos(), 1_710_509_400_000_000_000);
    assert_eq!(
        (b.open, b.high, b.low, b.close),
        (px("171.17"), px("171.62"), px("170.91"), px("171.48"))
    );
    assert_eq!((b.volume, b.trade_count), (1_432_211, Some(11_873)));
    assert_eq!(b.vwap, Some(px("171.305412")));
    assert_eq!(page.bars[2].ts, ts("2024-03-15T13:32:00Z"));
    assert_eq!(page.stats.requests, 0); // filled in by fetch_bars

    let mut req2 = req.clone();
    req2.cursor = page.next.clone();
    let page2 = parse(PAGE_2, &req2).unwrap();
    assert_eq!(page2.next, None);
    assert!(page2.bars.iter().all(|b| b.symbol.as_str() == "MSFT"));
    assert_eq!(page2.bars[0].high, px("419"));
    assert_eq!(page2.bars[2].vwap, Some(px("418.240118")));
}

#[test]
fn parses_single_and_empty_shapes_and_filters_sessions() {
    // 08:00Z on 2024-03-15 is 04:00 ET: pre-market.
    let regular = request(
        &["AAPL"],
        "2024-03-15T04:00:00Z",
        "2024-03-16T04:00:00Z",
        SessionKind::Regular,
    );
    let extended = BarRequest {
        session: SessionKind::Extended,
        ..regular.clone()
    };
    assert!(parse(SINGLE, &regular).unwrap().bars.is_empty());
    let page = parse(SINGLE, &extended).unwrap();
    assert_eq!(page.bars.len(), 1);
    assert_eq!(page.bars[0].ts, ts("2024-03-15T08:00:00Z"));
    for empty in [
        r#"{"bars":{},"next_page_token":null}"#,
        r#"{"bars":null,"symbol":"XYZ","next_page_token":null}"#,
        r#"{"bars":{"AAPL":null},"next_page_token":null}"#,
        r#"{"next_page_token":null}"#,
    ] {
        let page = parse(empty, &extended).unwrap();
        assert!(page.bars.is_empty() && page.next.is_none(), "{empty}");
    }
    // Bars outside the range are dropped too: the example page with a narrower range.
    let narrow = request(
        &["AAPL"],
        "2024-03-15T13:31:00Z",
        "2024-03-15T13:32:00Z",
        SessionKind::Regular,
    );
    let page = parse(PAGE_1, &narrow).unwrap();
    assert_eq!(page.bars.len(), 1);
    assert_eq!(page.bars[0].ts, ts("2024-03-15T13:31:00Z"));
}

#[test]
fn tolerates_fractional_volume_and_missing_optional_fields() {
    let body = r#"{"bars":{"BRK.B":[{"t":"2024-03-15T13:30:00.000Z","o":1,"h":2,"l":0.5,"c":1.5,"v":10.5}]},"next_page_token":""}"#;
    let page = parse(
        body,
        &request(
            &["BRK.B"],
            "2024-03-15T13:30:00Z",
            "2024-03-15T14:00:00Z",
            SessionKind::Regular,
        ),
    )
    .unwrap();
    assert_eq!(page.bars[0].volume, 11);
    assert_eq!(page.fractional_volumes_rounded, 1);
    assert_eq!((page.bars[0].trade_count, page.bars[0].vwap), (None, None));
    assert_eq!(page.next, None, "an empty token ends the paging");
}

#[test]
fn bad_bodies_are_malformed_and_name_the_path() {
    let req = example_request();
    for (body, needle) in [
        (&PAGE_1[..300], "EOF while parsing"),
        (
            r#"{"bars":{"AAPL":[{"t":"yesterday","o":1,"h":1,"l":1,"c":1,"v":1}]}}"#,
            "expected RFC 3339",
        ),
        (
            r#"{"bars":{"AAPL":[{"t":"2024-03-15T13:30:00Z","o":-1,"h":1,"l":1,"c":1,"v":1}]}}"#,
            "AAPL 2024-03-15T13:30:00Z o",
        ),
        (
            r#"{"bars":{"AAPL":[{"t":"2024-03-15T13:30:00Z","o":"1","h":1,"l":1,"c":1,"v":1}]}}"#,
            "invalid type",
        ),
        (
            r#"{"bars":{"AAPL":[{"t":"2024-03-15T13:30:00Z","o":1,"h":1,"l":1,"c":1,"v":-5}]}}"#,
            "negative volume",
        ),
    ] {
        let err = parse(body, &req).unwrap_err();
        assert!(matches!(err, ProviderError::Malformed { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("GET /v2/stocks/bars: "), "{text}");
        assert!(text.contains(needle), "{needle}: {text}");
        assert!(!text.contains("symbols="), "{text}");
    }
    // A token that repeats the request's own is a loop.
    let mut again = req;
    again.cursor = Some(PageCursor(
        "QUFQTHxNfDIwMjQtMDMtMTVUMTM6MzI6MDAuMDAwMDAwMDAwWg==".into(),
    ));
    let err = parse(PAGE_1, &again).unwrap_err();
    assert!(err.to_string().contains("repeats"), "{err}");
}

#[test]
fn builds_the_query_with_an_inclusive_end_and_no_key() {
    let p = provider();
    let mut req = example_request();
    let url = p.bars_url(&req).unwrap().unwrap();
    assert_eq!(url.path(), "/v2/stocks/bars");
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let expected: BTreeMap<String, String> = [
        ("symbols", "AAPL,MSFT"),
        ("timeframe", "1Min"),
        ("start", "2024-03-15T13:30:00Z"),
        ("end", "2024-03-15T13:32:59Z"),
        ("limit", "10000"),
        ("adjustment", "raw"),
        ("feed", "sip"),
        ("sort", "asc"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(q, expected);
    assert!(!url.as_str().contains(KEY_ID) && !url.as_str().contains(SECRET_KEY));

    req.page_size = Some(50_000);
    req.feed = Some("iex".into());
    req.adjustment = Adjustment::All;
    req.cursor = Some(PageCursor("tok/en+=".into()));
    let url = p.bars_url(&req).unwrap().unwrap();
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["limit"], "10000");
    assert_eq!(q["feed"], "iex");
    assert_eq!(q["adjustment"], "all");
    assert_eq!(q["page_token"], "tok/en+=");
    req.page_size = Some(0);
    let url = p.bars_url(&req).unwrap().unwrap();
    assert!(url.query_pairs().any(|(k, v)| k == "limit" && v == "1"));

    req.feed = Some("boats".into());
    assert!(matches!(
        p.bars_url(&req),
        Err(ProviderError::Unsupported { .. })
    ));

    // A range with no whole second in it asks for nothing.
    let tiny = BarRequest {
        range: TimeRange::new(ts("2024-03-15T13:30:00.2Z"), ts("2024-03-15T13:30:00.7Z")).unwrap(),
        ..example_request()
    };
    assert!(p.bars_url(&tiny).unwrap().is_none());
}

#[tokio::test]
async fn refuses_what_it_cannot_ask_before_sending() {
    let p = provider();
    let mut req = example_request();
    req.timeframe = Timeframe::M5;
    assert!(matches!(
        p.fetch_bars(&req).await,
        Err(ProviderError::Unsupported { .. })
    ));
    let many: Vec<String> = (0..101).map(|i| format!("S{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let req = request(
        &many,
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:33:00Z",
        SessionKind::Regular,
    );
    assert!(matches!(
        p.fetch_bars(&req).await,
        Err(ProviderError::BadRequest { .. })
    ));
    // An empty range needs no request at all (the base URL is unreachable).
    let empty = request(
        &["AAPL"],
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:30:00Z",
        SessionKind::Regular,
    );
    let page = p.fetch_bars(&empty).await.unwrap();
    assert!(page.bars.is_empty() && page.next.is_none());
    assert_eq!(p.metrics().requests, 0);
}

#[test]
fn maps_error_bodies() {
    let e = classify(
        403,
        br#"{"message":"subscription does not permit querying recent SIP data"}"#,
    )
    .unwrap();
    let text = e.to_string();
    assert!(matches!(e, ProviderError::Auth { .. }));
    assert!(
        text.contains("15 minutes") && text.contains("ALPACA_KEY_ID"),
        "{text}"
    );
    let e = classify(401, br#"{"message":"unauthorized."}"#).unwrap();
    assert!(e.to_string().contains("ALPACA_SECRET_KEY"), "{e}");
    let e = classify(403, br#"{"message":"forbidden"}"#).unwrap();
    assert!(matches!(e, ProviderError::Auth { .. }) && e.to_string().contains("APCA_API_KEY_ID"));
    let e = classify(422, br#"{"code":42210000,"message":"invalid timeframe"}"#).unwrap();
    assert!(
        matches!(&e, ProviderError::BadRequest { message, .. } if message.ends_with("invalid timeframe"))
    );
    let e = classify(400, br#"{"message":"invalid symbol: CSP1"}"#).unwrap();
    assert!(e.to_string().contains("invalid symbol: CSP1"));
    let e = classify(404, b"Not Found").unwrap();
    assert!(matches!(e, ProviderError::NotFound { .. }));
    assert!(classify(409, b"").is_none());
}

#[test]
fn credentials_and_info() {
    let none = MapEnv::default();
    let settings = ProviderSettings::default();
    assert!(!credentials_present(&settings, &none));
    let err = AlpacaProvider::new(&settings, &none).unwrap_err();
    assert!(
        matches!(&err, SetupError::MissingCredentials { variables, .. } if variables == CREDENTIAL_VARIABLES)
    );
    assert!(
        err.to_string()
            .contains("ALPACA_KEY_ID and ALPACA_SECRET_KEY"),
        "{err}"
    );
    // Only one of the two is not enough.
    let half = MapEnv::from_pairs([("ALPACA_KEY_ID", KEY_ID)]);
    assert!(!credentials_present(&settings, &half));
    // The APCA_* names work too, and config placeholders win over the environment.
    let apca = MapEnv::from_pairs([
        ("APCA_API_KEY_ID", KEY_ID),
        ("APCA_API_SECRET_KEY", SECRET_KEY),
        ("MY_SECRET", "other"),
    ]);
    assert!(credentials_present(&settings, &apca));
    let mut with_config = settings.clone();
    with_config
        .credentials
        .insert("secret_key".into(), "${MY_SECRET}".into());
    assert!(credentials_present(&with_config, &apca));
    with_config
        .credentials
        .insert("secret_key".into(), "${UNSET}".into());
    assert!(!credentials_present(&with_config, &apca));
    assert!(matches!(
        AlpacaProvider::new(&with_config, &apca),
        Err(SetupError::UnsetPlaceholder { .. })
    ));

    let p = provider();
    let debug = format!("{p:?}");
    assert!(
        !debug.contains(KEY_ID) && !debug.contains(SECRET_KEY),
        "{debug}"
    );
    let i = p.info();
    assert_eq!(i, info());
    assert_eq!(i.name, NAME);
    assert_eq!(i.rate_limit, Some(RateLimit::per_minute(200)));
    assert_eq!((i.max_page_size, i.max_symbols_per_request), (10_000, 100));
    assert_eq!(i.feeds, ["iex", "sip", "delayed_sip"]);
    assert_eq!(i.default_feed.as_deref(), Some("sip"));
    assert!(i.retries_internally && i.requires_credentials);

    let paid = ProviderSettings {
        rate_limit: Some(RateLimit::per_minute(10_000)),
        ..ProviderSettings::default()
    };
    let p = AlpacaProvider::new(&paid, &env()).unwrap();
    assert_eq!(p.info().rate_limit, Some(RateLimit::per_minute(10_000)));
    let bad_url = MapEnv::from_pairs([
        ("ALPACA_KEY_ID", KEY_ID),
        ("ALPACA_SECRET_KEY", SECRET_KEY),
        ("MP_ALPACA_BASE_URL", "data.alpaca.markets"),
    ]);
    let err = AlpacaProvider::new(&ProviderSettings::default(), &bad_url).unwrap_err();
    assert!(err.to_string().contains("MP_ALPACA_BASE_URL"), "{err}");
}
