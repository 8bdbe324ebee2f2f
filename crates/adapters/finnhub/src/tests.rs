//! Unit tests: the documented bodies of `finnhub.md`, URL building, month windows, errors,
//! credentials.

use std::collections::BTreeMap;

use marketpipe_domain::{Price, SessionKind, Symbol, TimeRange, Timeframe, Timestamp};
use marketpipe_ports::{Adjustment, BarRequest, MarketDataProvider, PageCursor, ProviderError};
use marketpipe_provider_kit::{MapEnv, ProviderSettings, SessionFilter, SetupError};
use url::Url;

use super::*;

const EXAMPLE: &str = r#"{
  "c": [171.48, 171.66, 171.5],
  "h": [171.62, 171.8, 171.71],
  "l": [170.91, 171.3, 171.42],
  "o": [171.17, 171.49, 171.66],
  "s": "ok",
  "t": [1710509400, 1710509460, 1710509520],
  "v": [1432211, 512034, 388120]
}"#;

const TOKEN: &str = "FinnhubToken987";

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn px(s: &str) -> Price {
    s.parse().unwrap()
}

fn aapl() -> Symbol {
    Symbol::new("AAPL").unwrap()
}

fn request(start: &str, end: &str, session: SessionKind) -> BarRequest {
    BarRequest {
        symbols: vec![aapl()],
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
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:33:00Z",
        SessionKind::Regular,
    )
}

fn parse(body: &str, request: &BarRequest) -> Result<BarPage, ProviderError> {
    let url = Url::parse("https://finnhub.io/api/v1/stock/candle?symbol=AAPL").unwrap();
    let filter = SessionFilter::new(request.range, request.session).unwrap();
    wire::parse_page(body.as_bytes(), &url, aapl(), &filter, request.range)
}

fn provider() -> FinnhubProvider {
    let settings = ProviderSettings {
        base_url: Some("http://127.0.0.1:9/api/v1".into()),
        ..ProviderSettings::default()
    };
    FinnhubProvider::new(&settings, &MapEnv::from_pairs([("FINNHUB_API_KEY", TOKEN)])).unwrap()
}

#[test]
fn parses_the_documented_example() {
    let page = parse(EXAMPLE, &example_request()).unwrap();
    assert_eq!(page.bars.len(), 3);
    let b = &page.bars[0];
    assert_eq!((b.symbol, b.ts), (aapl(), ts("2024-03-15T13:30:00Z")));
    assert_eq!(b.ts.nanos(), 1_710_509_400 * 1_000_000_000);
    assert_eq!(
        (b.open, b.high, b.low, b.close),
        (px("171.17"), px("171.62"), px("170.91"), px("171.48"))
    );
    assert_eq!((b.volume, b.trade_count, b.vwap), (1_432_211, None, None));
    assert_eq!(page.bars[2].ts, ts("2024-03-15T13:32:00Z"));
    assert_eq!(page.fractional_volumes_rounded, 0);
    assert_eq!(page.next, None);
}

#[test]
fn no_data_and_filters() {
    let page = parse(r#"{"s":"no_data"}"#, &example_request()).unwrap();
    assert!(page.bars.is_empty());
    // Only 13:31 lies in this range; the fractional volume of the dropped bars is not counted.
    let narrow = request(
        "2024-03-15T13:31:00Z",
        "2024-03-15T13:32:00Z",
        SessionKind::Regular,
    );
    let body = EXAMPLE.replace("1432211, 512034, 388120", "1432211.5, 512034.5, 388120.5");
    let page = parse(&body, &narrow).unwrap();
    assert_eq!(page.bars.len(), 1);
    assert_eq!(page.bars[0].volume, 512_035);
    assert_eq!(page.fractional_volumes_rounded, 1);
    // Pre-market (08:00Z = 04:00 ET) is kept only for extended hours.
    let pre = r#"{"s":"ok","t":[1710489600],"o":[1],"h":[1],"l":[1],"c":[1],"v":[10]}"#;
    let day = request(
        "2024-03-15T04:00:00Z",
        "2024-03-16T04:00:00Z",
        SessionKind::Regular,
    );
    assert!(parse(pre, &day).unwrap().bars.is_empty());
    let day = BarRequest {
        session: SessionKind::Extended,
        ..day
    };
    assert_eq!(parse(pre, &day).unwrap().bars.len(), 1);
}

#[test]
fn bad_bodies() {
    let req = example_request();
    for (body, needle) in [
        (&EXAMPLE[..60], "EOF while parsing"),
        (
            r#"{"s":"ok","t":[1710509400,1710509460],"o":[1],"h":[1,1],"l":[1,1],"c":[1,1],"v":[1,1]}"#,
            "array o has 1 values, t has 2",
        ),
        (
            r#"{"s":"ok","t":[1710509400],"o":[1],"h":[1],"l":[1],"c":[1]}"#,
            "array v is missing",
        ),
        (r#"{"s":"weird"}"#, "unexpected status"),
        (
            r#"{"s":"ok","t":[1710509400],"o":[1],"h":[1],"l":[-1],"c":[1],"v":[1]}"#,
            "AAPL 2024-03-15T13:30:00Z l",
        ),
    ] {
        let err = parse(body, &req).unwrap_err();
        assert!(matches!(err, ProviderError::Malformed { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("GET /api/v1/stock/candle: ") && text.contains(needle),
            "{needle}: {text}"
        );
        assert!(!text.contains("symbol="), "{text}");
    }
    let err = parse(r#"{"error":"Wrong resolution"}"#, &req).unwrap_err();
    assert!(
        matches!(&err, ProviderError::BadRequest { message, .. } if message == "Wrong resolution")
    );
}

#[test]
fn builds_the_documented_url_without_the_token() {
    let p = provider();
    let req = example_request();
    let w = window(&req).unwrap();
    let url = p.candle_url(aapl(), w).unwrap();
    assert_eq!(url.path(), "/api/v1/stock/candle");
    let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    let expected: BTreeMap<String, String> = [
        ("symbol", "AAPL"),
        ("resolution", "1"),
        ("from", "1710509400"),
        ("to", "1710509579"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(q, expected);
    assert!(!url.as_str().contains(TOKEN));
}

#[test]
fn long_ranges_are_cut_into_month_windows() {
    // 2024-01-02 .. 2024-03-05: 63 days = 31 + 31 + 1.
    let mut req = request(
        "2024-01-02T05:00:00Z",
        "2024-03-05T05:00:00Z",
        SessionKind::Regular,
    );
    let w1 = window(&req).unwrap();
    assert_eq!(
        (w1.start, w1.end),
        (ts("2024-01-02T05:00:00Z"), ts("2024-02-02T05:00:00Z"))
    );
    assert_eq!(w1.next, Some(w1.end));
    req.cursor = Some(PageCursor(w1.end.nanos().to_string()));
    let w2 = window(&req).unwrap();
    assert_eq!(
        (w2.start, w2.end),
        (ts("2024-02-02T05:00:00Z"), ts("2024-03-04T05:00:00Z"))
    );
    req.cursor = Some(PageCursor(w2.end.nanos().to_string()));
    let w3 = window(&req).unwrap();
    assert_eq!((w3.end, w3.next), (ts("2024-03-05T05:00:00Z"), None));
    // Each window asks for at most 31 days minus a second.
    let p = provider();
    for w in [w1, w2, w3] {
        let url = p.candle_url(aapl(), w).unwrap();
        let q: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let span = q["to"].parse::<i64>().unwrap() - q["from"].parse::<i64>().unwrap();
        assert!(span < 31 * 86_400, "{span}");
    }
    // A bar on a window's boundary belongs to the later window only.
    let boundary = w1.end.nanos() / 1_000_000_000;
    let body = format!(r#"{{"s":"ok","t":[{boundary}],"o":[1],"h":[1],"l":[1],"c":[1],"v":[1]}}"#);
    let url = Url::parse("https://finnhub.io/api/v1/stock/candle").unwrap();
    let filter = SessionFilter::new(req.range, SessionKind::Extended).unwrap();
    let in_w1 = wire::parse_page(
        body.as_bytes(),
        &url,
        aapl(),
        &filter,
        TimeRange::new(w1.start, w1.end).unwrap(),
    );
    assert!(in_w1.unwrap().bars.is_empty());
    // A cursor outside the range, or not a number, is refused.
    for bad in ["0", "abc", &ts("2024-03-05T05:00:00Z").nanos().to_string()] {
        req.cursor = Some(PageCursor(bad.to_owned()));
        assert!(
            matches!(window(&req), Err(ProviderError::BadRequest { .. })),
            "{bad}"
        );
    }
}

#[test]
fn maps_error_bodies() {
    let e = classify(
        403,
        br#"{"error":"You don't have access to this resource."}"#,
    )
    .unwrap();
    assert!(matches!(e, ProviderError::Auth { .. }));
    let text = e.to_string();
    assert!(
        text.contains("paid Finnhub plan") && text.contains("FINNHUB_API_KEY"),
        "{text}"
    );
    assert!(
        text.contains("You don't have access to this resource."),
        "{text}"
    );
    let e = classify(401, br#"{"error":"Invalid API key"}"#).unwrap();
    assert!(matches!(e, ProviderError::Auth { .. }) && e.to_string().contains("FINNHUB_API_KEY"));
    assert!(matches!(
        classify(422, br#"{"error":"Wrong resolution"}"#),
        Some(ProviderError::BadRequest { .. })
    ));
    assert!(matches!(
        classify(404, b"Not Found"),
        Some(ProviderError::NotFound { .. })
    ));
    assert!(classify(409, b"").is_none());
}

#[test]
fn credentials_and_info() {
    let settings = ProviderSettings::default();
    assert!(!credentials_present(&settings, &MapEnv::default()));
    let err = FinnhubProvider::new(&settings, &MapEnv::default()).unwrap_err();
    assert!(
        matches!(&err, SetupError::MissingCredentials { variables, .. } if variables == "FINNHUB_API_KEY")
    );
    let p = provider();
    assert!(!format!("{p:?}").contains(TOKEN));
    let i = p.info();
    assert_eq!(i, info());
    assert_eq!(i.rate_limit, Some(RateLimit::per_minute(60)));
    assert_eq!(i.max_symbols_per_request, 1);
    assert!(i.retries_internally);
}

#[tokio::test]
async fn refuses_what_it_cannot_ask_before_sending() {
    let p = provider();
    let mut req = example_request();
    req.symbols.push(Symbol::new("MSFT").unwrap());
    assert!(matches!(
        p.fetch_bars(&req).await,
        Err(ProviderError::BadRequest { .. })
    ));
    let empty = request(
        "2024-03-15T13:30:00Z",
        "2024-03-15T13:30:00Z",
        SessionKind::Regular,
    );
    assert_eq!(p.fetch_bars(&empty).await.unwrap(), BarPage::default());
    assert_eq!(p.metrics().requests, 0);
}
