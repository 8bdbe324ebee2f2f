//! `mp providers list|test` and `mp iex fetch`.

use std::io::Write;

use marketpipe_provider_kit::{Env, ProcessEnv};
use serde::Serialize;

use crate::commands::Context;
use crate::error::{AppError, usage};
use crate::wiring::{self, PROVIDERS};

/// One row of `mp providers list`.
#[derive(Debug, Serialize)]
struct ProviderRow {
    name: &'static str,
    display_name: String,
    feeds: Vec<String>,
    default_feed: Option<String>,
    /// Requests per minute: the configured override, else the documented free-plan limit.
    rate_limit_per_minute: Option<u64>,
    max_page_size: usize,
    max_symbols_per_request: usize,
    extended_hours: bool,
    /// `present`, `missing` or `not needed`; never a value.
    credentials: &'static str,
}

fn rows(ctx: &Context, env: &dyn Env) -> Vec<ProviderRow> {
    PROVIDERS
        .iter()
        .map(|entry| {
            let info = (entry.info)();
            let configured = match entry.name {
                "alpaca" => ctx.config.providers.alpaca.rate_limit_per_minute,
                "polygon" => ctx.config.providers.polygon.rate_limit_per_minute,
                "finnhub" => ctx.config.providers.finnhub.rate_limit_per_minute,
                _ => None,
            };
            let per_minute = configured.map(u64::from).or_else(|| {
                info.rate_limit.map(|r| {
                    let per = r.per.as_secs_f64().max(f64::EPSILON);
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let n = (f64::from(r.requests) * 60.0 / per).round() as u64;
                    n
                })
            });
            ProviderRow {
                name: entry.name,
                display_name: info.display_name,
                feeds: info.feeds,
                default_feed: info.default_feed,
                rate_limit_per_minute: per_minute,
                max_page_size: info.max_page_size,
                max_symbols_per_request: info.max_symbols_per_request,
                extended_hours: info.supports_extended_hours,
                credentials: (entry.credentials)(&ctx.config, env).as_str(),
            }
        })
        .collect()
}

/// `mp providers list [--json]`.
pub(crate) fn list(ctx: &Context, json: bool, out: &mut dyn Write) -> Result<(), AppError> {
    let rows = rows(ctx, &ProcessEnv);
    if json {
        serde_json::to_writer_pretty(&mut *out, &rows).map_err(|e| AppError::Failed(e.into()))?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<8}  {:<22}  {:>10}  {:>9}  {:>11}  {:<11}  {:<11}",
        "name", "feeds", "req/min", "max page", "sym/request", "ext. hours", "credentials"
    )?;
    for r in &rows {
        let feeds = if r.feeds.is_empty() {
            "-".to_owned()
        } else {
            r.feeds
                .iter()
                .map(|f| {
                    if Some(f) == r.default_feed.as_ref() {
                        format!("{f}*")
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        writeln!(
            out,
            "{:<8}  {:<22}  {:>10}  {:>9}  {:>11}  {:<11}  {:<11}",
            r.name,
            feeds,
            r.rate_limit_per_minute
                .map_or_else(|| "none".to_owned(), |n| n.to_string()),
            r.max_page_size,
            r.max_symbols_per_request,
            if r.extended_hours { "yes" } else { "no" },
            r.credentials,
        )?;
    }
    writeln!(
        out,
        "\n* default feed. Limits are the documented free plans unless set in providers.<name>.rate_limit_per_minute; see docs/providers.md."
    )?;
    Ok(())
}

/// `mp providers test NAME`: one cheap real request.
pub(crate) async fn test(ctx: &Context, name: &str, out: &mut dyn Write) -> Result<(), AppError> {
    let provider = wiring::provider(name, ctx)?;
    let started = std::time::Instant::now();
    provider.test_connection().await.map_err(|e| {
        AppError::Failed(anyhow::Error::new(e).context(format!("{name}: connection test failed")))
    })?;
    writeln!(out, "{name}: ok ({} ms)", started.elapsed().as_millis())?;
    Ok(())
}

/// `mp iex fetch --date YYYY-MM-DD`: downloads the day's TOPS file into the HIST directory.
pub(crate) async fn iex_fetch(
    ctx: &Context,
    date: &str,
    force: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let date = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|e| {
        usage(anyhow::anyhow!(
            "--date {date:?} is not a date YYYY-MM-DD: {e}"
        ))
    })?;
    let hist_dir = wiring::iex_hist_dir(ctx, &ProcessEnv);
    let base = ProcessEnv
        .var("MP_IEX_BASE_URL")
        .filter(|v| !v.is_empty())
        .or_else(|| ctx.config.providers.iex.base_url.clone())
        .unwrap_or_else(|| marketpipe_iex::fetch::DEFAULT_BASE_URL.to_owned());
    let hist = marketpipe_iex::fetch::HistFetcher::new(&base, &hist_dir)
        .map_err(|e| usage(anyhow::Error::new(e)))?;
    let fetched = hist.fetch(date, force).await.map_err(|e| match e {
        marketpipe_iex::FetchError::NotASession { .. } => usage(anyhow::Error::new(e)),
        other => AppError::Failed(anyhow::Error::new(other)),
    })?;
    match fetched {
        marketpipe_iex::fetch::Fetched::Downloaded {
            path,
            bytes,
            version,
        } => writeln!(
            out,
            "{date}: downloaded {} ({bytes} bytes, {version})",
            path.display()
        )?,
        marketpipe_iex::fetch::Fetched::AlreadyPresent { path } => writeln!(
            out,
            "{date}: already present: {} (--force downloads it again)",
            path.display()
        )?,
    }
    Ok(())
}
