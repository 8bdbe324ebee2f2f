//! `mp symbols update|list|show`: the symbol master.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::Arc;

use chrono::NaiveDate;
use marketpipe_alpaca::AlpacaAssets;
use marketpipe_domain::{
    Exchange, FinancialStatus, MasterRow, SecuritySymbol, Symbol, SymbolConvention,
};
use marketpipe_nasdaq_trader::{DEFAULT_BASE_URL, NasdaqTraderSource};
use marketpipe_polygon::PolygonTickers;
use marketpipe_ports::SymbolMasterSource;
use marketpipe_provider_kit::ProcessEnv;
use marketpipe_sqlite::SqliteStore;
use marketpipe_universe::{
    SymbolUpdateReport, UniverseDeps, UniverseError, list_symbols, symbol_history, update_symbols,
};
use serde_json::json;

use crate::cli::SymbolSourceName;
use crate::commands::Context;
use crate::config::ensure_writable_dir;
use crate::error::{AppError, usage};
use crate::wiring;

/// A `--as-of`-style date flag.
pub(crate) fn date_flag(flag: &str, value: &str) -> Result<NaiveDate, AppError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|e| {
        usage(anyhow::anyhow!(
            "{flag} {value:?} is not a date: {e} (write YYYY-MM-DD)"
        ))
    })
}

/// The context's error, with its exit code: bad input 2, failures 1.
pub(crate) fn universe_error(e: UniverseError) -> AppError {
    if e.is_bad_input() {
        AppError::Usage(e.into())
    } else {
        AppError::Failed(e.into())
    }
}

/// The use cases' ports over the metadata store.
pub(crate) fn deps(ctx: &Context, store: &Arc<SqliteStore>) -> UniverseDeps {
    UniverseDeps {
        master: store.clone(),
        universes: store.clone(),
        summaries: store.clone(),
        clock: Arc::clone(&ctx.clock),
    }
}

fn source(
    ctx: &Context,
    name: SymbolSourceName,
    from: Option<&str>,
    details: bool,
) -> Result<Box<dyn SymbolMasterSource>, AppError> {
    let setup = |e| usage(anyhow::Error::new(e));
    if from.is_some() && name != SymbolSourceName::NasdaqTrader {
        return Err(usage(anyhow::anyhow!(
            "--from is for --source nasdaq-trader; alpaca and polygon use their providers' base \
             URLs (MP_ALPACA_TRADING_BASE_URL, MP_POLYGON_BASE_URL)"
        )));
    }
    if details && name != SymbolSourceName::Polygon {
        return Err(usage(anyhow::anyhow!("--details is for --source polygon")));
    }
    Ok(match name {
        SymbolSourceName::NasdaqTrader => Box::new(
            NasdaqTraderSource::from_location(from.unwrap_or(DEFAULT_BASE_URL)).map_err(setup)?,
        ),
        SymbolSourceName::Alpaca => Box::new(
            AlpacaAssets::new(&wiring::alpaca_settings(&ctx.config), &ProcessEnv).map_err(setup)?,
        ),
        SymbolSourceName::Polygon => Box::new(
            PolygonTickers::new(
                &wiring::keyed_settings(&ctx.config.providers.polygon, &ctx.config),
                &ProcessEnv,
                details,
            )
            .map_err(setup)?,
        ),
    })
}

/// `mp symbols update --source S [--from DIR_OR_URL] [--as-of DATE] [--dry-run] [--json]`.
#[allow(clippy::too_many_arguments)] // one per flag of the command
pub(crate) async fn update(
    ctx: &Context,
    name: SymbolSourceName,
    from: Option<&str>,
    details: bool,
    as_of: Option<&str>,
    dry_run: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let as_of = as_of.map(|d| date_flag("--as-of", d)).transpose()?;
    let source = source(ctx, name, from, details)?;
    ensure_writable_dir(&ctx.data_dir)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = update_symbols(&deps(ctx, &store), source.as_ref(), as_of, dry_run).await;
    store.close().await;
    let report = result.map_err(universe_error)?;
    if json {
        writeln!(out, "{:#}", report_json(&report))?;
    } else {
        print_report(out, &report)?;
    }
    Ok(())
}

fn symbol_list(symbols: &[Symbol]) -> String {
    const SHOWN: usize = 20;
    let mut text = symbols
        .iter()
        .take(SHOWN)
        .map(Symbol::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if symbols.len() > SHOWN {
        let _ = write!(text, ", … ({} more)", symbols.len() - SHOWN);
    }
    text
}

fn print_report(out: &mut dyn Write, r: &SymbolUpdateReport) -> std::io::Result<()> {
    let verb = if r.dry_run { "would load" } else { "loaded" };
    writeln!(
        out,
        "{verb} {} snapshot of {}: {} securities",
        r.source, r.as_of, r.securities
    )?;
    writeln!(
        out,
        "  added      {:>6}  {}",
        r.added.len(),
        symbol_list(&r.added)
    )?;
    writeln!(
        out,
        "  changed    {:>6}  {}",
        r.changed.len(),
        symbol_list(&r.changed)
    )?;
    writeln!(
        out,
        "  removed    {:>6}  {}",
        r.removed.len(),
        symbol_list(&r.removed)
    )?;
    writeln!(out, "  unchanged  {:>6}", r.unchanged)?;
    if !r.unknown_exchange.is_empty() {
        writeln!(
            out,
            "  kept with an exchange code we do not know (UNKNOWN): {}",
            symbol_list(&r.unknown_exchange)
        )?;
    }
    writeln!(out, "  skipped    {:>6}", r.skipped.len())?;
    for s in &r.skipped {
        writeln!(out, "    {}: {}", s.vendor_symbol, s.reason)?;
    }
    if r.replaced_day {
        writeln!(out, "(this replaces the earlier load of {})", r.as_of)?;
    }
    if r.dry_run {
        writeln!(out, "dry run: nothing written")?;
    }
    Ok(())
}

fn report_json(r: &SymbolUpdateReport) -> serde_json::Value {
    fn names(v: &[Symbol]) -> Vec<&str> {
        v.iter().map(Symbol::as_str).collect()
    }
    json!({
        "source": r.source,
        "as_of": r.as_of.to_string(),
        "securities": r.securities,
        "added": names(&r.added),
        "changed": names(&r.changed),
        "removed": names(&r.removed),
        "unchanged": r.unchanged,
        "skipped": r.skipped.iter().map(|s| json!({"vendor_symbol": s.vendor_symbol, "reason": s.reason})).collect::<Vec<_>>(),
        "unknown_exchange": names(&r.unknown_exchange),
        "replaced_day": r.replaced_day,
        "dry_run": r.dry_run,
    })
}

fn row_json(row: &MasterRow) -> serde_json::Value {
    let r = &row.record;
    json!({
        "symbol": r.symbol.as_str(),
        "name": r.name,
        "exchange": r.exchange.as_str(),
        "asset_type": r.asset_type.as_str(),
        "valid_from": row.valid_from.to_string(),
        "valid_to": row.valid_to.map(|d| d.to_string()),
        "source": row.source,
        "vendor_symbol": r.vendor_symbol,
        "test_issue": r.test_issue,
        "financial_status": r.financial_status.map(FinancialStatus::as_str),
        "round_lot": r.round_lot,
        "market_cap": r.market_cap,
        "sic_code": r.sic_code,
        "sector": r.sector(),
    })
}

fn print_rows(out: &mut dyn Write, rows: &[MasterRow]) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<10} {:<14} {:<10} {:<10} {:<10} {:<14} NAME",
        "SYMBOL", "EXCHANGE", "TYPE", "FROM", "TO", "SOURCE"
    )?;
    for row in rows {
        let r = &row.record;
        writeln!(
            out,
            "{:<10} {:<14} {:<10} {:<10} {:<10} {:<14} {}{}",
            r.symbol.as_str(),
            r.exchange.as_str(),
            r.asset_type.as_str(),
            row.valid_from.to_string(),
            row.valid_to
                .map_or_else(|| "-".to_owned(), |d| d.to_string()),
            row.source,
            r.name,
            if r.test_issue { " (test issue)" } else { "" }
        )?;
    }
    Ok(())
}

/// `mp symbols list [--as-of DATE] [--exchange LIST] [--json]`.
pub(crate) async fn list(
    ctx: &Context,
    as_of: Option<&str>,
    exchanges: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let as_of = match as_of {
        Some(d) => date_flag("--as-of", d)?,
        None => marketpipe_domain::calendar::ny_date(ctx.clock.now()),
    };
    let exchanges = exchanges
        .map(|list| {
            list.split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| {
                    s.parse::<Exchange>()
                        .map_err(|e| usage(anyhow::Error::new(e).context("--exchange")))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = list_symbols(&deps(ctx, &store), as_of, &exchanges).await;
    store.close().await;
    let rows = result.map_err(universe_error)?;
    if json {
        let items: Vec<serde_json::Value> = rows.iter().map(row_json).collect();
        writeln!(out, "{:#}", serde_json::Value::Array(items))?;
    } else {
        print_rows(out, &rows)?;
        writeln!(out, "{} securities valid on {as_of}", rows.len())?;
    }
    Ok(())
}

/// A symbol as the user typed it, in normal form (BRK.B, BRK/B and BRK-B are one).
pub(crate) fn typed_symbol(text: &str) -> Result<Symbol, AppError> {
    let convention = if text.contains('-') {
        SymbolConvention::Sec
    } else {
        SymbolConvention::Cqs
    };
    SecuritySymbol::parse(text, convention)
        .map(|s| s.symbol())
        .map_err(|e| usage(anyhow::Error::new(e)))
}

/// `mp symbols show SYMBOL [--json]`.
pub(crate) async fn show(
    ctx: &Context,
    symbol: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let symbol = typed_symbol(symbol)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = symbol_history(&deps(ctx, &store), symbol).await;
    store.close().await;
    let rows = result.map_err(universe_error)?;
    if rows.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "{symbol} is not in the symbol master (see `mp symbols list`, or load a source with \
             `mp symbols update`)"
        )));
    }
    if json {
        let items: Vec<serde_json::Value> = rows.iter().map(row_json).collect();
        writeln!(
            out,
            "{:#}",
            json!({"symbol": symbol.as_str(), "history": items})
        )?;
    } else {
        print_rows(out, &rows)?;
    }
    Ok(())
}
