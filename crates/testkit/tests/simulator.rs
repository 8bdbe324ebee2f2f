//! The provider simulator, driven over loopback HTTP with reqwest as a raw client.

// `clippy.toml` allows unwrap in `#[test]` functions; the helpers below are test code too.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::NaiveDate;
use marketpipe_domain::{Bar, Price, SessionKind, Symbol, TradingCalendar};
use marketpipe_fake::FakeProvider;
use marketpipe_testkit::simulator::{Faults, SimRateLimit, SimStats, Simulator, SimulatorConfig};
use serde_json::Value;

const ALPACA_ID: &str = "PKTEST";
const ALPACA_SECRET: &str = "s3cret";
const POLYGON_KEY: &str = "polykey";
const FINNHUB_KEY: &str = "fhpremium";
const FINNHUB_FREE: &str = "fhfree";

fn config() -> SimulatorConfig {
    SimulatorConfig {
        alpaca_keys: vec![(ALPACA_ID.into(), ALPACA_SECRET.into())],
        polygon_keys: vec![POLYGON_KEY.into(), "polykey2".into()],
        finnhub_keys: vec![FINNHUB_KEY.into()],
        finnhub_free_keys: vec![FINNHUB_FREE.into()],
        ..SimulatorConfig::default()
    }
}

async fn start() -> Simulator {
    Simulator::start(config()).await.unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// The fake generator's extended-hours bars of one session.
fn fake_bars(symbol: &str, y: i32, m: u32, d: u32) -> Vec<Bar> {
    let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let session = TradingCalendar::xnys().session(date).unwrap().unwrap();
    FakeProvider::new().session_bars(
        Symbol::new(symbol).unwrap(),
        &session,
        SessionKind::Extended,
    )
}

/// A JSON price as an adapter reads it: f64, rounded to 1e-9.
fn price(json: &Value) -> Price {
    Price::from_f64(json.as_f64().unwrap()).unwrap()
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

async fn alpaca(sim: &Simulator, path_and_query: &str) -> Answer {
    send(
        client()
            .get(format!("{}{path_and_query}", sim.base_url()))
            .header("APCA-API-KEY-ID", ALPACA_ID)
            .header("APCA-API-SECRET-KEY", ALPACA_SECRET),
    )
    .await
}

async fn polygon(sim: &Simulator, path_and_query: &str) -> Answer {
    send(
        client()
            .get(format!("{}{path_and_query}", sim.base_url()))
            .bearer_auth(POLYGON_KEY),
    )
    .await
}

async fn finnhub(sim: &Simulator, query: &str, token: &str) -> Answer {
    send(
        client()
            .get(format!("{}/api/v1/stock/candle?{query}", sim.base_url()))
            .header("X-Finnhub-Token", token),
    )
    .await
}

fn assert_alpaca_bar(json: &Value, bar: &Bar) {
    assert_eq!(json["t"], bar.ts.to_rfc3339());
    assert_eq!(price(&json["o"]), bar.open);
    assert_eq!(price(&json["h"]), bar.high);
    assert_eq!(price(&json["l"]), bar.low);
    assert_eq!(price(&json["c"]), bar.close);
    assert_eq!(json["v"].as_u64().unwrap(), bar.volume);
    assert_eq!(json["n"].as_u64(), bar.trade_count);
    assert_eq!(Some(price(&json["vw"])), bar.vwap);
}

fn assert_polygon_bar(json: &Value, bar: &Bar) {
    assert_eq!(json["t"].as_i64().unwrap(), bar.ts.nanos() / 1_000_000);
    assert_eq!(price(&json["o"]), bar.open);
    assert_eq!(price(&json["h"]), bar.high);
    assert_eq!(price(&json["l"]), bar.low);
    assert_eq!(price(&json["c"]), bar.close);
    // A double on the wire: `1234` or `1234.0`.
    let volume = json["v"].to_string();
    assert_eq!(
        volume.trim_end_matches(".0").parse::<u64>().unwrap(),
        bar.volume
    );
    assert_eq!(json["n"].as_u64(), bar.trade_count);
    assert_eq!(Some(price(&json["vw"])), bar.vwap);
}

const ALPACA_DAY: &str = "/v2/stocks/bars?symbols=MSFT,AAPL&timeframe=1Min\
&start=2024-03-15T08:00:00Z&end=2024-03-15T23:59:00Z&limit=1000&adjustment=raw&feed=sip";

// ---------------------------------------------------------------------------------------
// Alpaca
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn alpaca_pages_split_a_symbol_and_end_with_null() {
    let sim = start().await;
    let page1 = alpaca(&sim, ALPACA_DAY).await;
    assert_eq!(page1.status, 200);
    assert_eq!(
        page1.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    let json1 = page1.json();
    // Symbols in alphabetical order, then time; the limit counts across symbols.
    let aapl = json1["bars"]["AAPL"].as_array().unwrap();
    let msft1 = json1["bars"]["MSFT"].as_array().unwrap();
    assert_eq!((aapl.len(), msft1.len()), (960, 40));
    assert!(
        page1
            .text
            .starts_with(r#"{"bars":{"AAPL":[{"t":"2024-03-15T08:00:00Z","o":"#)
    );
    let token = json1["next_page_token"].as_str().unwrap();

    // The same query, plus the token (percent-encoded: base64 may hold '+', '/', '=').
    let page2 = alpaca(
        &sim,
        &format!(
            "{ALPACA_DAY}&page_token={}",
            url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
        ),
    )
    .await;
    assert_eq!(page2.status, 200);
    let json2 = page2.json();
    assert!(json2["bars"].get("AAPL").is_none());
    let msft2 = json2["bars"]["MSFT"].as_array().unwrap();
    assert_eq!(msft2.len(), 920);
    assert_eq!(json2["next_page_token"], Value::Null);
    assert!(page2.text.ends_with(r#""next_page_token":null}"#));

    // Bar for bar equal to the fake generator (the inclusive end keeps 23:59Z = 19:59 ET).
    let fake_aapl = fake_bars("AAPL", 2024, 3, 15);
    let fake_msft = fake_bars("MSFT", 2024, 3, 15);
    for (json, bar) in aapl.iter().zip(&fake_aapl) {
        assert_alpaca_bar(json, bar);
    }
    for (json, bar) in msft1.iter().chain(msft2).zip(&fake_msft) {
        assert_alpaca_bar(json, bar);
    }
    // Prices are written as short exact decimals (cents, VWAP on a 1e-4 grid).
    for field in ["\"o\":", "\"vw\":"] {
        for value in page1.text.split(field).skip(1) {
            let number = value.split([',', '}']).next().unwrap();
            let decimals = number.split_once('.').map_or(0, |(_, f)| f.len());
            assert!(decimals <= 4, "{number}");
        }
    }
    assert_eq!(sim.stats().ok, 2);
}

#[tokio::test]
async fn alpaca_offsets_dates_single_endpoint_and_empty_bodies() {
    let sim = start().await;
    // An offset start (encoded '+'), a nanosecond end, the 1T alias.
    let answer = alpaca(
        &sim,
        "/v2/stocks/bars?symbols=AAPL&timeframe=1T&start=2024-03-15T09%3A30%3A00-04%3A00\
         &end=2024-03-15T13%3A31%3A00.000000000%2B00%3A00",
    )
    .await;
    let json = answer.json();
    let bars = json["bars"]["AAPL"].as_array().unwrap();
    assert_eq!(bars.len(), 2);
    assert_eq!(bars[1]["t"], "2024-03-15T13:31:00Z");

    // Date-only bounds are New York days, inclusive: the whole extended session.
    let answer = alpaca(
        &sim,
        "/v2/stocks/AAPL/bars?timeframe=1Min&start=2024-03-15&end=2024-03-15&limit=10000",
    )
    .await;
    let json = answer.json();
    assert_eq!(json["symbol"], "AAPL");
    assert_eq!(json["bars"].as_array().unwrap().len(), 960);
    assert_eq!(json["next_page_token"], Value::Null);

    // Empty: a weekend.
    let answer = alpaca(
        &sim,
        "/v2/stocks/bars?symbols=AAPL,MSFT&timeframe=1Min&start=2024-03-16&end=2024-03-17",
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text, r#"{"bars":{},"next_page_token":null}"#);
    let answer = alpaca(
        &sim,
        "/v2/stocks/AAPL/bars?timeframe=1Min&start=2024-03-16&end=2024-03-17",
    )
    .await;
    assert_eq!(
        answer.text,
        r#"{"bars":null,"symbol":"AAPL","next_page_token":null}"#
    );
}

#[tokio::test]
async fn alpaca_desc_sort_pages_backwards() {
    let sim = start().await;
    let base = "/v2/stocks/AAPL/bars?timeframe=1Min&start=2024-03-14&end=2024-03-15\
                &sort=desc&limit=1500";
    let page1 = alpaca(&sim, base).await.json();
    let bars1 = page1["bars"].as_array().unwrap();
    assert_eq!(bars1[0]["t"], "2024-03-15T23:59:00Z");
    let token = page1["next_page_token"].as_str().unwrap();
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    let page2 = alpaca(&sim, &format!("{base}&page_token={encoded}"))
        .await
        .json();
    let bars2 = page2["bars"].as_array().unwrap();
    assert_eq!(bars1.len() + bars2.len(), 1920);
    assert_eq!(bars2.last().unwrap()["t"], "2024-03-14T08:00:00Z");
    assert_eq!(page2["next_page_token"], Value::Null);
}

#[tokio::test]
async fn alpaca_rejects_bad_parameters_with_documented_bodies() {
    let sim = start().await;
    let cases = [
        (
            "/v2/stocks/bars?symbols=AAPL&timeframe=5Min&start=2024-03-15",
            422,
            r#"{"code":42210000,"message":"invalid timeframe"}"#,
        ),
        (
            "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&bogus=1",
            400,
            r#"{"code":40010000,"message":"unexpected parameter(s): bogus"}"#,
        ),
        (
            "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&end=2024-03-14",
            422,
            r#"{"code":42210000,"message":"end should not be before start"}"#,
        ),
        (
            "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&limit=10001",
            422,
            r#"{"code":42210000,"message":"invalid limit: must be between 1 and 10000"}"#,
        ),
        (
            "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&page_token=bogus",
            400,
            r#"{"code":40010001,"message":"invalid page token"}"#,
        ),
        (
            "/v2/stocks/bars?symbols=aa%2Fpl&timeframe=1Min&start=2024-03-15",
            400,
            r#"{"message":"invalid symbol: aa/pl"}"#,
        ),
        (
            "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&feed=nasdaq",
            400,
            r#"{"code":40010001,"message":"invalid feed: nasdaq"}"#,
        ),
    ];
    for (path, status, body) in cases {
        let answer = alpaca(&sim, path).await;
        assert_eq!(
            (answer.status, answer.text.as_str()),
            (status, body),
            "{path}"
        );
    }
    // Every documented feed is accepted.
    for feed in ["iex", "sip", "delayed_sip", "boats", "overnight", "otc"] {
        let path = format!(
            "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&end=2024-03-15\
             &feed={feed}&asof=-&currency=USD&adjustment=split,dividend&limit=1"
        );
        assert_eq!(alpaca(&sim, &path).await.status, 200, "{feed}");
    }
    assert_eq!(sim.stats().ok, 6);
}

#[tokio::test]
async fn alpaca_auth_failures() {
    let sim = start().await;
    let url = format!("{}{ALPACA_DAY}", sim.base_url());
    let missing = send(client().get(&url).header("APCA-API-KEY-ID", ALPACA_ID)).await;
    assert_eq!(
        (missing.status, missing.text.as_str()),
        (401, r#"{"message":"unauthorized."}"#)
    );
    let wrong = send(
        client()
            .get(&url)
            .header("APCA-API-KEY-ID", ALPACA_ID)
            .header("APCA-API-SECRET-KEY", "nope"),
    )
    .await;
    assert_eq!(
        (wrong.status, wrong.text.as_str()),
        (403, r#"{"message":"forbidden"}"#)
    );
    let stats = sim.stats();
    assert_eq!((stats.requests, stats.auth_failures, stats.ok), (2, 2, 0));
}

// ---------------------------------------------------------------------------------------
// Polygon
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn polygon_pages_follow_next_url_without_the_key() {
    let sim = start().await;
    // First request authenticates with ?apiKey=, which must not leak into next_url.
    let first = send(client().get(format!(
        "{}/v2/aggs/ticker/AAPL/range/1/minute/2024-03-15/2024-03-15?adjusted=false&sort=asc\
         &limit=500&apiKey={POLYGON_KEY}",
        sim.base_url()
    )))
    .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert!(first.text.starts_with(
        r#"{"ticker":"AAPL","queryCount":500,"resultsCount":500,"adjusted":false,"results":[{"v":"#
    ));
    let json1 = first.json();
    assert_eq!(json1["status"], "OK");
    assert_eq!(json1["count"], 500);
    let request_id = json1["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 32);
    assert!(request_id.bytes().all(|c| c.is_ascii_hexdigit()));
    let next_url = json1["next_url"].as_str().unwrap();
    assert!(next_url.starts_with(&format!(
        "{}/v2/aggs/ticker/AAPL/range/1/minute/",
        sim.base_url()
    )));
    assert!(next_url.contains("?cursor="));
    assert!(!next_url.contains(POLYGON_KEY) && !next_url.contains("apiKey"));

    // Follow it with the header key.
    let second = send(client().get(next_url).bearer_auth(POLYGON_KEY)).await;
    let json2 = second.json();
    assert_eq!(json2["resultsCount"], 460);
    assert_eq!(json2["adjusted"], false);
    assert!(json2.get("next_url").is_none());

    let fake = fake_bars("AAPL", 2024, 3, 15);
    let results: Vec<&Value> = json1["results"]
        .as_array()
        .unwrap()
        .iter()
        .chain(json2["results"].as_array().unwrap())
        .collect();
    assert_eq!(results.len(), fake.len());
    for (json, bar) in results.iter().zip(&fake) {
        assert_polygon_bar(json, bar);
    }
    // Volume is written both as `1234` and `1234.0`.
    assert!(results.iter().any(|r| r["v"].is_u64()));
    assert!(results.iter().any(|r| r["v"].is_f64()));
}

#[tokio::test]
async fn polygon_ms_bounds_desc_empty_and_errors() {
    let sim = start().await;
    // 13:30:00Z–13:32:59.999Z, inclusive and snapped: three bars, newest first.
    let answer = polygon(
        &sim,
        "/v2/aggs/ticker/AAPL/range/1/minute/1710509400000/1710509579999?sort=desc",
    )
    .await
    .json();
    let ts: Vec<i64> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["t"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ts,
        [1_710_509_520_000, 1_710_509_460_000, 1_710_509_400_000]
    );
    assert_eq!(answer["adjusted"], true);

    // Desc paging also ends.
    let mut url = format!(
        "{}/v2/aggs/ticker/AAPL/range/1/minute/2024-03-14/2024-03-15?sort=desc&limit=700",
        sim.base_url()
    );
    let mut seen = Vec::new();
    loop {
        let page = send(client().get(&url).bearer_auth(POLYGON_KEY))
            .await
            .json();
        seen.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["t"].as_i64().unwrap()),
        );
        match page["next_url"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1920);
    assert!(seen.windows(2).all(|w| w[0] > w[1]));

    // Empty: Good Friday. No `results`, no `next_url`.
    let empty = polygon(
        &sim,
        "/v2/aggs/ticker/AAPL/range/1/minute/2024-03-29/2024-03-29",
    )
    .await;
    assert_eq!(empty.status, 200);
    let id = empty.json()["request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        empty.text,
        format!(
            r#"{{"ticker":"AAPL","queryCount":0,"resultsCount":0,"adjusted":true,"status":"OK","request_id":"{id}"}}"#
        )
    );

    let bad = polygon(
        &sim,
        "/v2/aggs/ticker/AAPL/range/1/minute/yesterday/2024-03-15",
    )
    .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["status"], "ERROR");
    assert_eq!(
        bad.json()["error"],
        "Could not parse the time parameter: 'from'. Use YYYY-MM-DD or Unix MS Timestamps"
    );
    let backwards = polygon(
        &sim,
        "/v2/aggs/ticker/AAPL/range/1/minute/2024-03-15/2024-03-14",
    )
    .await;
    assert_eq!(backwards.status, 400);
    assert_eq!(
        backwards.json()["error"],
        "The parameter 'to' cannot be a time that occurs before 'from'"
    );
}

#[tokio::test]
async fn polygon_auth_failures() {
    let sim = start().await;
    let url = format!(
        "{}/v2/aggs/ticker/AAPL/range/1/minute/2024-03-15/2024-03-15",
        sim.base_url()
    );
    let none = send(client().get(&url)).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.json()["error"], "API Key was not provided");
    assert_eq!(none.json()["status"], "ERROR");
    let wrong = send(client().get(&url).bearer_auth("nope")).await;
    assert_eq!(wrong.status, 401);
    let id = wrong.json()["request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        wrong.text,
        format!(r#"{{"status":"ERROR","request_id":"{id}","error":"Unknown API Key"}}"#)
    );
    let wrong_query = send(client().get(format!("{url}?apiKey=nope"))).await;
    assert_eq!(wrong_query.status, 401);
    assert_eq!(sim.stats().auth_failures, 3);
}

// ---------------------------------------------------------------------------------------
// Finnhub
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn finnhub_arrays_no_data_and_keys() {
    let sim = start().await;
    // Thursday 2024-03-28 (EDT): 04:00 ET = 08:00Z = 1711612800, 20:00 ET = 1711670400.
    let query = "symbol=AAPL&resolution=1&from=1711612800&to=1711670400";
    let answer = finnhub(&sim, query, FINNHUB_KEY).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(answer.text.starts_with(r#"{"c":["#));
    let json = answer.json();
    assert_eq!(json["s"], "ok");
    let fake = fake_bars("AAPL", 2024, 3, 28);
    for field in ["c", "h", "l", "o", "t", "v"] {
        assert_eq!(json[field].as_array().unwrap().len(), fake.len(), "{field}");
    }
    for (i, bar) in fake.iter().enumerate() {
        assert_eq!(
            json["t"][i].as_i64().unwrap(),
            bar.ts.nanos() / 1_000_000_000
        );
        assert_eq!(price(&json["o"][i]), bar.open);
        assert_eq!(price(&json["h"][i]), bar.high);
        assert_eq!(price(&json["l"][i]), bar.low);
        assert_eq!(price(&json["c"][i]), bar.close);
        assert_eq!(json["v"][i].as_u64().unwrap(), bar.volume);
    }

    // Token as a query parameter works too; Good Friday has no data.
    let holiday = send(client().get(format!(
        "{}/api/v1/stock/candle?symbol=AAPL&resolution=1&from=1711699200&to=1711756800&token={FINNHUB_KEY}",
        sim.base_url()
    )))
    .await;
    assert_eq!(
        (holiday.status, holiday.text.as_str()),
        (200, r#"{"s":"no_data"}"#)
    );
    // A window longer than a month: no_data as well.
    let long = finnhub(
        &sim,
        "symbol=AAPL&resolution=1&from=1704067200&to=1711670400",
        FINNHUB_KEY,
    )
    .await;
    assert_eq!(long.text, r#"{"s":"no_data"}"#);

    let free = finnhub(&sim, query, FINNHUB_FREE).await;
    assert_eq!(
        (free.status, free.text.as_str()),
        (
            403,
            r#"{"error":"You don't have access to this resource."}"#
        )
    );
    let five = finnhub(
        &sim,
        "symbol=AAPL&resolution=5&from=1711612800&to=1711670400",
        FINNHUB_KEY,
    )
    .await;
    assert_eq!(five.status, 400);
    let bad = finnhub(
        &sim,
        "symbol=AAPL&resolution=2&from=1711612800&to=1711670400",
        FINNHUB_KEY,
    )
    .await;
    assert_eq!(
        (bad.status, bad.text.as_str()),
        (400, r#"{"error":"Wrong resolution"}"#)
    );
    let wrong = finnhub(&sim, query, "nope").await;
    assert_eq!(
        (wrong.status, wrong.text.as_str()),
        (401, r#"{"error":"Invalid API key"}"#)
    );
    let stats = sim.stats();
    assert_eq!((stats.ok, stats.auth_failures), (3, 2));
}

// ---------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_answers_each_providers_429_per_key() {
    let sim = Simulator::start(SimulatorConfig {
        rate_limit: Some(SimRateLimit {
            requests: 2,
            window: Duration::from_mins(1),
            retry_after: true,
        }),
        ..config()
    })
    .await
    .unwrap();
    let path =
        "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&end=2024-03-15&limit=1";
    let first = alpaca(&sim, path).await;
    assert_eq!(first.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("1"));
    let reset: u64 = first.header("x-ratelimit-reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 55..=now + 61).contains(&reset), "{reset} vs {now}");
    assert_eq!(
        alpaca(&sim, path).await.header("x-ratelimit-remaining"),
        Some("0")
    );
    let limited = alpaca(&sim, path).await;
    assert_eq!(
        (limited.status, limited.text.as_str()),
        (429, r#"{"message":"too many requests."}"#)
    );
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry), "{retry}");

    // Polygon: its own body, no X-Ratelimit headers; another key has its own window.
    let pg = "/v2/aggs/ticker/AAPL/range/1/minute/2024-03-15/2024-03-15?limit=1";
    polygon(&sim, pg).await;
    polygon(&sim, pg).await;
    let limited = polygon(&sim, pg).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.json()["status"], "ERROR");
    assert!(
        limited.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("You've exceeded the maximum requests per minute")
    );
    assert!(limited.header("x-ratelimit-limit").is_none());
    assert!(limited.header("retry-after").is_some());
    let other = send(
        client()
            .get(format!("{}{pg}", sim.base_url()))
            .bearer_auth("polykey2"),
    )
    .await;
    assert_eq!(other.status, 200);

    // Finnhub.
    let q = "symbol=AAPL&resolution=1&from=1711612800&to=1711616400";
    finnhub(&sim, q, FINNHUB_KEY).await;
    finnhub(&sim, q, FINNHUB_KEY).await;
    let limited = finnhub(&sim, q, FINNHUB_KEY).await;
    assert_eq!(
        (limited.status, limited.text.as_str()),
        (
            429,
            r#"{"error":"API limit reached. Please try again later. Remaining Limit: 0"}"#
        )
    );
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));

    let stats = sim.stats();
    assert_eq!((stats.rate_limited, stats.ok), (3, 7));
}

// A paused clock: the simulator's window runs on tokio's clock, so the test moves it on
// with `advance` instead of sleeping.
#[tokio::test(start_paused = true)]
async fn rate_limit_window_reopens_and_retry_after_is_optional() {
    let sim = Simulator::start(SimulatorConfig {
        rate_limit: Some(SimRateLimit {
            requests: 1,
            window: Duration::from_secs(1),
            retry_after: false,
        }),
        ..config()
    })
    .await
    .unwrap();
    let q = "symbol=AAPL&resolution=1&from=1711612800&to=1711616400";
    assert_eq!(finnhub(&sim, q, FINNHUB_KEY).await.status, 200);
    let limited = finnhub(&sim, q, FINNHUB_KEY).await;
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_none());
    // The 429 did not use up anything: after the window one request passes again.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(finnhub(&sim, q, FINNHUB_KEY).await.status, 429);
    tokio::time::advance(Duration::from_millis(600)).await;
    assert_eq!(finnhub(&sim, q, FINNHUB_KEY).await.status, 200);
    assert_eq!(finnhub(&sim, q, FINNHUB_KEY).await.status, 429);
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

const ONE_BAR: &str =
    "/v2/stocks/bars?symbols=AAPL&timeframe=1Min&start=2024-03-15&end=2024-03-15&limit=5";

#[tokio::test]
async fn faults_fire_as_bursts_in_priority_order() {
    let sim = start().await;
    sim.set_faults(Faults {
        dropped_connections: 1,
        forced_429: 1,
        server_errors: 2,
        html_errors: 1,
        truncated_json: 1,
        malformed_json: 2,
        ..Faults::default()
    });
    let url = format!("{}{ONE_BAR}", sim.base_url());
    let request = || {
        client()
            .get(&url)
            .header("APCA-API-KEY-ID", ALPACA_ID)
            .header("APCA-API-SECRET-KEY", ALPACA_SECRET)
    };

    // Dropped: no response at all.
    let error = request().send().await.unwrap_err();
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");

    let forced = send(request()).await;
    assert_eq!(
        (forced.status, forced.text.as_str()),
        (429, r#"{"message":"too many requests."}"#)
    );
    assert_eq!(forced.header("retry-after"), Some("1"));

    let json500 = send(request()).await;
    assert_eq!(json500.status, 500);
    assert!(json500.json()["message"].is_string());
    let plain503 = send(request()).await;
    assert_eq!(plain503.status, 503);
    assert!(
        plain503
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(serde_json::from_str::<Value>(&plain503.text).is_err());

    let html = send(request()).await;
    assert_eq!(html.status, 502);
    assert_eq!(html.header("content-type"), Some("text/html"));
    assert!(html.text.contains("<title>502 Bad Gateway</title>"));

    let truncated = send(request()).await;
    assert_eq!(truncated.status, 200);
    assert!(truncated.text.starts_with(r#"{"bars":{"AAPL":[{"t":"#));
    assert!(serde_json::from_str::<Value>(&truncated.text).is_err());

    // Malformed: first valid JSON of the wrong shape, then not JSON at all.
    let wrong_types = send(request()).await;
    assert_eq!(wrong_types.status, 200);
    let json = wrong_types.json();
    assert!(json["bars"]["AAPL"][0]["t"].is_number());
    assert!(json["next_page_token"].is_number());
    let garbage = send(request()).await;
    assert_eq!(garbage.status, 200);
    assert!(serde_json::from_str::<Value>(&garbage.text).is_err());

    // The bursts are used up.
    let normal = send(request()).await;
    assert_eq!(normal.status, 200);
    assert_eq!(normal.json()["bars"]["AAPL"].as_array().unwrap().len(), 5);
    assert_eq!(sim.faults(), Faults::default());

    assert_eq!(
        sim.stats(),
        SimStats {
            requests: 9,
            ok: 1,
            rate_limited: 0,
            auth_failures: 0,
            faults_injected: 8,
        }
    );
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [0, 429, 500, 503, 502, 200, 200, 200, 200]);
}

#[tokio::test]
async fn faults_skip_unauthenticated_requests_and_hit_every_provider() {
    let sim = start().await;
    sim.set_faults(Faults {
        server_errors: 1,
        ..Faults::default()
    });
    let wrong = send(
        client()
            .get(format!("{}{ONE_BAR}", sim.base_url()))
            .header("APCA-API-KEY-ID", "x")
            .header("APCA-API-SECRET-KEY", "y"),
    )
    .await;
    assert_eq!(wrong.status, 403);
    assert_eq!(sim.faults().server_errors, 1);

    let pg500 = polygon(
        &sim,
        "/v2/aggs/ticker/AAPL/range/1/minute/2024-03-15/2024-03-15",
    )
    .await;
    assert_eq!(pg500.status, 500);
    assert_eq!(pg500.json()["status"], "ERROR");

    sim.set_faults(Faults {
        html_errors: 1,
        truncated_json: 1,
        malformed_json: 1,
        ..Faults::default()
    });
    let q = "symbol=AAPL&resolution=1&from=1711612800&to=1711616400";
    assert_eq!(finnhub(&sim, q, FINNHUB_KEY).await.status, 502);
    let truncated = finnhub(&sim, q, FINNHUB_KEY).await;
    assert!(truncated.text.starts_with(r#"{"c":["#));
    assert!(serde_json::from_str::<Value>(&truncated.text).is_err());
    let malformed = finnhub(&sim, q, FINNHUB_KEY).await.json();
    assert!(malformed["h"].is_string());
    assert_eq!(finnhub(&sim, q, FINNHUB_KEY).await.json()["s"], "ok");
}

#[tokio::test]
async fn a_pooled_client_recovers_after_a_dropped_connection() {
    let sim = start().await;
    let shared = client();
    let url = format!("{}{ONE_BAR}", sim.base_url());
    let get = || {
        shared
            .get(&url)
            .header("APCA-API-KEY-ID", ALPACA_ID)
            .header("APCA-API-SECRET-KEY", ALPACA_SECRET)
            .send()
    };
    assert_eq!(get().await.unwrap().status(), 200);
    sim.set_faults(Faults {
        dropped_connections: 1,
        ..Faults::default()
    });
    assert!(get().await.is_err());
    assert_eq!(get().await.unwrap().status(), 200);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 0, 200]);
}

/// In virtual time (a paused clock): the simulator's delay and the clients' timeouts are
/// tokio timers, and the clock moves only when every task waits on one, so the delay is
/// exact and the test measures virtual time, never the wall clock.
#[tokio::test(start_paused = true)]
async fn slow_responses_are_delayed() {
    let sim = Simulator::start(SimulatorConfig {
        faults: Faults {
            slow: Some(Duration::from_millis(600)),
            ..Faults::default()
        },
        ..config()
    })
    .await
    .unwrap();
    let virtual_start = tokio::time::Instant::now();
    assert_eq!(alpaca(&sim, ONE_BAR).await.status, 200);
    let waited = tokio::time::Instant::now() - virtual_start;
    assert!(waited >= Duration::from_millis(600), "{waited:?}");
    // A client with a shorter timeout gives up.
    let short = || {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(100))
            .build()
            .unwrap()
            .get(format!("{}{ONE_BAR}", sim.base_url()))
            .header("APCA-API-KEY-ID", ALPACA_ID)
            .header("APCA-API-SECRET-KEY", ALPACA_SECRET)
            .send()
    };
    let error = short().await.unwrap_err();
    assert!(error.is_timeout());
    // Without the fault the same client gets its answer: no delay at all.
    sim.set_faults(Faults::default());
    let virtual_start = tokio::time::Instant::now();
    assert_eq!(short().await.unwrap().status(), 200);
    assert_eq!(tokio::time::Instant::now(), virtual_start);
}

#[tokio::test]
async fn duplicate_across_pages_repeats_the_last_bar() {
    let sim = start().await;
    sim.set_faults(Faults {
        duplicate_across_pages: true,
        ..Faults::default()
    });
    // Alpaca: two symbols, 1000 per page.
    let mut path = ALPACA_DAY.to_owned();
    let mut pages: Vec<Vec<(String, String)>> = Vec::new();
    loop {
        let json = alpaca(&sim, &path).await.json();
        let mut page = Vec::new();
        for (symbol, bars) in json["bars"].as_object().unwrap() {
            for bar in bars.as_array().unwrap() {
                page.push((symbol.clone(), bar["t"].as_str().unwrap().to_owned()));
            }
        }
        pages.push(page);
        match json["next_page_token"].as_str() {
            Some(token) => {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
                path = format!("{ALPACA_DAY}&page_token={encoded}");
            }
            None => break,
        }
    }
    assert_eq!(pages.len(), 2);
    assert_eq!(pages[0].last(), pages[1].first());
    assert_eq!(pages[0].len() + pages[1].len(), 1921);

    // Polygon.
    let first = polygon(
        &sim,
        "/v2/aggs/ticker/AAPL/range/1/minute/2024-03-15/2024-03-15?limit=600",
    )
    .await
    .json();
    let second = send(
        client()
            .get(first["next_url"].as_str().unwrap())
            .bearer_auth(POLYGON_KEY),
    )
    .await
    .json();
    let last = first["results"][599]["t"].as_i64().unwrap();
    assert_eq!(second["results"][0]["t"].as_i64().unwrap(), last);
    assert_eq!(second["resultsCount"], 361);
}

// ---------------------------------------------------------------------------------------
// Server plumbing
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn records_requests_and_stops_when_dropped() {
    let sim = start().await;
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert!(!sim.base_url().ends_with('/'));
    let missing = send(client().get(format!("{}/v2/nothing", sim.base_url()))).await;
    assert_eq!((missing.status, missing.text.as_str()), (404, "Not Found"));
    alpaca(&sim, ONE_BAR).await;
    let recorded = sim.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].path, "/v2/nothing");
    assert_eq!(recorded[0].status, 404);
    assert_eq!(recorded[1].method, "GET");
    assert_eq!(recorded[1].path, "/v2/stocks/bars");
    assert_eq!(recorded[1].query, ONE_BAR.split_once('?').unwrap().1);
    assert!(
        recorded[1]
            .headers
            .contains(&("apca-api-key-id".to_owned(), ALPACA_ID.to_owned()))
    );
    assert!(recorded[0].at <= recorded[1].at);

    let (url, addr) = (sim.base_url(), sim.addr());
    drop(sim);
    // The aborted server task closes its listener when the runtime next polls it: wait for
    // that (a refused connection), a bounded number of turns.
    let mut refused = false;
    for _ in 0..1_000 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(refused, "the listener is still open");
    assert!(
        client()
            .get(format!("{url}/v2/stocks/bars"))
            .send()
            .await
            .is_err()
    );

    let sim = start().await;
    let url = sim.base_url();
    sim.shutdown().await;
    assert!(
        client()
            .get(format!("{url}/v2/stocks/bars"))
            .send()
            .await
            .is_err()
    );
}
