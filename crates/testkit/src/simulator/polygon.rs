//! Polygon's (Massive's) aggregates: `/v2/aggs/ticker/{T}/range/1/minute/{from}/{to}`, the key
//! by bearer header or `apiKey=`, Unix-millisecond or date bounds, `next_url` paging with a
//! cursor and 32-hex request ids (see the module documentation of the simulator).

use marketpipe_domain::time::NANOS_PER_MINUTE;
use marketpipe_domain::{Bar, Symbol, Timestamp};

use super::SimulatorConfig;
use super::bars::{
    SymbolBars, Window, json_f64, json_price, json_str, millis, ny_day, parse_date, vwap_of,
};
use super::codec::{URL_ALPHABET, base64_decode, base64_encode, percent_decode};
use super::server::{Core, Reply, RequestInfo, WireFormat};

const POLYGON_JSON: &str = "application/json";
const POLYGON_MAX_LIMIT: usize = 50_000;
const POLYGON_DEFAULT_LIMIT: usize = 5_000;

/// Polygon's wire format, with the accepted keys.
pub(super) struct Polygon {
    keys: Vec<String>,
}

impl Polygon {
    pub(super) fn new(config: &SimulatorConfig) -> Self {
        Self {
            keys: config.polygon_keys.clone(),
        }
    }
}

/// The path segments of a Polygon aggregates request, as sent (percent-encoded).
struct PolygonPath {
    ticker: String,
    multiplier: String,
    timespan: String,
    from: String,
    to: String,
}

fn endpoint(path: &str) -> Option<PolygonPath> {
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        [
            "",
            "v2",
            "aggs",
            "ticker",
            ticker,
            "range",
            multiplier,
            timespan,
            from,
            to,
        ] => Some(PolygonPath {
            ticker: (*ticker).to_owned(),
            multiplier: (*multiplier).to_owned(),
            timespan: (*timespan).to_owned(),
            from: (*from).to_owned(),
            to: (*to).to_owned(),
        }),
        _ => None,
    }
}

impl WireFormat for Polygon {
    fn name(&self) -> &'static str {
        "polygon"
    }

    fn owns(&self, path: &str) -> bool {
        endpoint(path).is_some()
    }

    fn authenticate(&self, core: &Core, incoming: &RequestInfo) -> Result<String, Reply> {
        polygon_key(&self.keys, core, incoming)
    }

    fn sends_rate_headers(&self) -> bool {
        false
    }

    fn too_many_requests(&self, core: &Core) -> Reply {
        Reply::new(
            429,
            POLYGON_JSON,
            polygon_error_body(
                &core.request_id(),
                "You've exceeded the maximum requests per minute, please wait or upgrade your \
                 subscription to continue. https://polygon.io/pricing",
            ),
        )
    }

    fn server_error(&self, core: &Core) -> Reply {
        Reply::new(
            500,
            POLYGON_JSON,
            polygon_error_body(&core.request_id(), "Internal Server Error"),
        )
    }

    fn malformed(&self, _incoming: &RequestInfo, not_json: bool) -> Reply {
        let body = if not_json {
            r#"{"results": [}}garbage"#
        } else {
            r#"{"ticker":"AAPL","queryCount":"1","resultsCount":1,"adjusted":"no","results":[{"v":"1432211","vw":null,"o":"x","c":[],"h":{},"l":true,"t":"2024-03-15T13:30:00Z","n":"many"}],"status":"OK","request_id":7}"#
        };
        Reply::new(200, POLYGON_JSON, body)
    }

    fn serve(&self, core: &Core, incoming: &RequestInfo, duplicate: bool) -> Reply {
        match endpoint(&incoming.path) {
            Some(path) => bars_answer(core, incoming, &path, duplicate),
            None => Reply::new(404, super::server::TEXT_PLAIN, "Not Found"),
        }
    }
}

/// The request's Polygon key (an `Authorization: Bearer` header or `apiKey=`) when it is one
/// of `keys`, else Polygon's 401 (no key, or an unknown one). Every Polygon endpoint checks it
/// so.
pub(super) fn polygon_key(
    keys: &[String],
    core: &Core,
    incoming: &RequestInfo,
) -> Result<String, Reply> {
    let bearer = incoming.header("authorization").and_then(|value| {
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let candidates: Vec<&str> = bearer.into_iter().chain(incoming.param("apiKey")).collect();
    if let Some(key) = candidates.iter().find(|c| keys.iter().any(|k| k == *c)) {
        return Ok((*key).to_owned());
    }
    let error = if candidates.iter().all(|c| c.is_empty()) {
        "API Key was not provided"
    } else {
        "Unknown API Key"
    };
    Err(Reply::new(
        401,
        POLYGON_JSON,
        polygon_error_body(&core.request_id(), error),
    ))
}

fn polygon_error_body(request_id: &str, error: &str) -> String {
    format!(
        r#"{{"status":"ERROR","request_id":"{request_id}","error":{}}}"#,
        json_str(error)
    )
}

struct PolygonQuery {
    window: Window,
    limit: usize,
    desc: bool,
    adjusted: bool,
}

/// `from`/`to`: Unix milliseconds (snapped to the minute) or a New York day.
fn parse_polygon_time(text: &str, end: bool) -> Option<Timestamp> {
    if let Some(date) = parse_date(text) {
        let (first, last) = ny_day(date);
        return Some(if end { last } else { first });
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ts = Timestamp::from_millis(text.parse::<i64>().ok()?)?;
    Some(ts.floor_to(NANOS_PER_MINUTE))
}

fn bad_request(core: &Core, error: &str) -> Reply {
    Reply::new(
        400,
        POLYGON_JSON,
        polygon_error_body(&core.request_id(), error),
    )
}

fn polygon_query(
    core: &Core,
    incoming: &RequestInfo,
    path: &PolygonPath,
) -> Result<PolygonQuery, Reply> {
    if path.multiplier != "1" || path.timespan != "minute" {
        return Err(bad_request(
            core,
            &format!(
                "The simulator serves range/1/minute only, not range/{}/{}",
                path.multiplier, path.timespan
            ),
        ));
    }
    let from = parse_polygon_time(&path.from, false).ok_or_else(|| {
        bad_request(
            core,
            "Could not parse the time parameter: 'from'. Use YYYY-MM-DD or Unix MS Timestamps",
        )
    })?;
    let to = parse_polygon_time(&path.to, true).ok_or_else(|| {
        bad_request(
            core,
            "Could not parse the time parameter: 'to'. Use YYYY-MM-DD or Unix MS Timestamps",
        )
    })?;
    if to < from {
        return Err(bad_request(
            core,
            "The parameter 'to' cannot be a time that occurs before 'from'",
        ));
    }
    // The cursor carries the paging parameters; plain query parameters come second.
    let cursor: Vec<(String, String)> = match incoming.param("cursor") {
        None => Vec::new(),
        Some(text) => base64_decode(text)
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .map(|decoded| {
                url::form_urlencoded::parse(decoded.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .ok_or_else(|| bad_request(core, "Invalid cursor"))?,
    };
    let param = |name: &str| {
        cursor
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .or_else(|| incoming.param(name))
    };
    let adjusted = match param("adjusted") {
        None | Some("true") => true,
        Some("false") => false,
        Some(_) => return Err(bad_request(core, "Invalid value for 'adjusted'")),
    };
    let desc = match param("sort") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(bad_request(core, "Invalid value for 'sort'")),
    };
    let limit = match param("limit") {
        None => POLYGON_DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(POLYGON_MAX_LIMIT),
            _ => return Err(bad_request(core, "Invalid value for 'limit'")),
        },
    };
    Ok(PolygonQuery {
        window: Window {
            start: from,
            end: to,
        },
        limit,
        desc,
        adjusted,
    })
}

/// The aggregates answer, one page.
fn bars_answer(core: &Core, incoming: &RequestInfo, path: &PolygonPath, duplicate: bool) -> Reply {
    let query = match polygon_query(core, incoming, path) {
        Ok(query) => query,
        Err(reply) => return reply,
    };
    let ticker = percent_decode(&path.ticker).unwrap_or_else(|| path.ticker.clone());
    let bars: Vec<Bar> = match Symbol::new(&ticker) {
        Ok(symbol) => SymbolBars::new(core.fake(), symbol, query.window, query.desc)
            .without(core.no_bars_of(symbol))
            .take(query.limit.saturating_add(1))
            .collect(),
        // A ticker the domain cannot hold is an unknown ticker: an empty answer.
        Err(_) => Vec::new(),
    };
    let page = &bars[..bars.len().min(query.limit)];
    let head = format!(
        r#"{{"ticker":{},"queryCount":{n},"resultsCount":{n},"adjusted":{}"#,
        json_str(&ticker),
        query.adjusted,
        n = page.len()
    );
    let request_id = core.request_id();
    if page.is_empty() {
        return Reply::new(
            200,
            POLYGON_JSON,
            format!(r#"{head},"status":"OK","request_id":"{request_id}"}}"#),
        );
    }
    let results: Vec<String> = page
        .iter()
        .map(|bar| {
            // `v` is a double on the wire: alternate the two spellings of whole numbers.
            #[allow(clippy::cast_precision_loss)]
            let volume = if (bar.ts.nanos() / NANOS_PER_MINUTE) % 2 == 0 {
                bar.volume.to_string()
            } else {
                json_f64(bar.volume as f64)
            };
            format!(
                r#"{{"v":{volume},"vw":{},"o":{},"c":{},"h":{},"l":{},"t":{},"n":{}}}"#,
                json_price(vwap_of(bar)),
                json_price(bar.open),
                json_price(bar.close),
                json_price(bar.high),
                json_price(bar.low),
                millis(bar.ts),
                bar.trade_count.unwrap_or(0),
            )
        })
        .collect();
    let mut body = format!(
        r#"{head},"results":[{}],"status":"OK","request_id":"{request_id}","count":{}"#,
        results.join(","),
        page.len()
    );
    if let (Some(next), Some(last)) = (bars.get(query.limit), page.last()) {
        // With the duplicate fault the next page starts at this page's last bar.
        let resume = if duplicate && query.limit >= 2 {
            last.ts
        } else {
            next.ts
        };
        let (from, to) = if query.desc {
            (path.from.clone(), millis(resume).to_string())
        } else {
            (millis(resume).to_string(), path.to.clone())
        };
        let cursor = format!(
            "limit={}&sort={}&adjusted={}",
            query.limit,
            if query.desc { "desc" } else { "asc" },
            query.adjusted
        );
        let next_url = format!(
            "{}/v2/aggs/ticker/{}/range/1/minute/{from}/{to}?cursor={}",
            core.base_url(),
            path.ticker,
            base64_encode(cursor.as_bytes(), URL_ALPHABET, false)
        );
        body.push_str(r#","next_url":"#);
        body.push_str(&json_str(&next_url));
    }
    body.push('}');
    Reply::new(200, POLYGON_JSON, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_times_snap_to_the_minute() {
        let ts = parse_polygon_time("1710509579999", true).unwrap();
        assert_eq!(millis(ts), 1_710_509_520_000);
        assert!(parse_polygon_time("-5", false).is_none());
        assert!(parse_polygon_time("2024/03/15", false).is_none());
    }
}
