//! `mp universe build|list|show|diff`, and the symbols of `--universe` for ingest and
//! backfill.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use marketpipe_domain::{AssetType, Exchange, Symbol};
use marketpipe_ports::{UniverseEntry, UniverseSnapshot};
use marketpipe_universe::{
    FilterSpec, UniverseDiff, UniverseSelector, build_universe, diff_universes, list_universes,
    store_universe, universe_csv, universe_of,
};
use serde_json::json;

use crate::commands::Context;
use crate::commands::symbols::{date_flag, deps, universe_error};
use crate::config::ensure_writable_dir;
use crate::error::{AppError, usage};
use crate::wiring;

fn selector(flag: &str, text: &str) -> Result<UniverseSelector, AppError> {
    UniverseSelector::parse(text).ok_or_else(|| {
        usage(anyhow::anyhow!(
            "{flag} {text:?} is neither a date (YYYY-MM-DD) nor latest"
        ))
    })
}

/// The universe CSV of a date: `<data_dir>/universe/universe-YYYY-MM-DD.csv`.
pub(crate) fn csv_path(data_dir: &Path, universe: &UniverseSnapshot) -> PathBuf {
    data_dir
        .join("universe")
        .join(format!("universe-{}.csv", universe.as_of))
}

/// `mp universe build --filters F [--as-of DATE] [--name N] [--json]`.
pub(crate) async fn build(
    ctx: &Context,
    filters: &Path,
    as_of: Option<&str>,
    name: Option<String>,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let text = std::fs::read_to_string(filters)
        .with_context(|| format!("cannot read the filters file {}", filters.display()))
        .map_err(usage)?;
    let spec = FilterSpec::from_yaml(&text)
        .map_err(|e| usage(anyhow::Error::new(e).context(filters.display().to_string())))?;
    let as_of = as_of.map(|d| date_flag("--as-of", d)).transpose()?;
    ensure_writable_dir(&ctx.data_dir)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let deps = deps(ctx, &store);
    let built = build_universe(&deps, &spec, &text, as_of, name).await;
    let universe = match built {
        Ok(universe) => universe,
        Err(e) => {
            store.close().await;
            return Err(universe_error(e));
        }
    };
    // The CSV is written aside first, the universe kept, then the CSV put in place: a
    // failure leaves neither a universe without its file nor a file without its universe.
    let path = csv_path(&ctx.data_dir, &universe);
    let staged = stage(&path, universe_csv(&universe).as_bytes());
    let stored = match &staged {
        Ok(_) => store_universe(&deps, &universe)
            .await
            .map_err(universe_error),
        Err(_) => Ok(()),
    };
    store.close().await;
    let temp = staged
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(AppError::Failed)?;
    if let Err(e) = stored {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, &path)
        .with_context(|| format!("cannot write {}", path.display()))
        .map_err(AppError::Failed)?;
    let members = universe.members().count();
    if json {
        let mut value = universe_json(&universe, true);
        value["csv"] = json!(path.display().to_string());
        writeln!(out, "{value:#}")?;
    } else {
        writeln!(
            out,
            "universe {} of {}: {members} members of {} candidates",
            universe.name,
            universe.as_of,
            universe.entries.len()
        )?;
        print_excluded_counts(out, &universe)?;
        writeln!(out, "wrote {}", path.display())?;
    }
    Ok(())
}

/// Writes `contents` to a temporary file beside `path` (creating the directory); the caller
/// renames it into place.
fn stage(path: &Path, contents: &[u8]) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "universe.csv".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    if let Err(e) = std::fs::write(&temp, contents) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(temp)
}

fn print_excluded_counts(out: &mut dyn Write, universe: &UniverseSnapshot) -> std::io::Result<()> {
    let mut by_filter: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for e in &universe.entries {
        if let Some(x) = &e.excluded {
            *by_filter.entry(x.filter.as_str()).or_default() += 1;
        }
    }
    for (filter, n) in by_filter {
        writeln!(out, "  excluded by {filter:<20} {n:>6}")?;
    }
    Ok(())
}

fn entry_json(e: &UniverseEntry) -> serde_json::Value {
    json!({
        "symbol": e.symbol.as_str(),
        "name": e.name,
        "exchange": e.exchange.map(Exchange::as_str),
        "asset_type": e.asset_type.map(AssetType::as_str),
        "price": e.price,
        "avg_dollar_volume": e.avg_dollar_volume,
        "avg_volume": e.avg_volume,
        "market_cap": e.market_cap,
        "sector": e.sector,
        "rank": e.rank,
        "excluded_by": e.excluded.as_ref().map(|x| x.filter.clone()),
        "reason": e.excluded.as_ref().map(|x| x.reason.clone()),
    })
}

fn universe_json(universe: &UniverseSnapshot, all: bool) -> serde_json::Value {
    let members: Vec<serde_json::Value> = universe.members().map(entry_json).collect();
    let mut value = json!({
        "as_of": universe.as_of.to_string(),
        "name": universe.name,
        "built_at": universe.built_at.to_string(),
        "members": members,
    });
    if all {
        value["excluded"] = universe
            .entries
            .iter()
            .filter(|e| e.rank.is_none())
            .map(entry_json)
            .collect();
    }
    value
}

fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// `mp universe show DATE|latest [--all] [--json]`.
pub(crate) async fn show(
    ctx: &Context,
    which: &str,
    all: bool,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let selector = selector("universe", which)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = universe_of(&deps(ctx, &store), selector).await;
    store.close().await;
    let universe = result.map_err(universe_error)?;
    if json {
        writeln!(out, "{:#}", universe_json(&universe, all))?;
        return Ok(());
    }
    writeln!(out, "universe {} of {}", universe.name, universe.as_of)?;
    writeln!(
        out,
        "{:>5} {:<10} {:<14} {:<10} {:>12} {:>18} {:>14}",
        "RANK", "SYMBOL", "EXCHANGE", "TYPE", "PRICE", "AVG_DOLLAR_VOLUME", "AVG_VOLUME"
    )?;
    for e in universe.members() {
        writeln!(
            out,
            "{:>5} {:<10} {:<14} {:<10} {:>12} {:>18} {:>14}",
            e.rank.unwrap_or_default(),
            e.symbol.as_str(),
            e.exchange.map_or("-", |x| x.as_str()),
            e.asset_type.map_or("-", |x| x.as_str()),
            figure(e.price),
            figure(e.avg_dollar_volume),
            figure(e.avg_volume),
        )?;
    }
    if all {
        writeln!(out, "excluded:")?;
        for e in universe.entries.iter().filter(|e| e.rank.is_none()) {
            if let Some(x) = &e.excluded {
                writeln!(
                    out,
                    "  {:<10} {:<20} {}",
                    e.symbol.as_str(),
                    x.filter,
                    x.reason
                )?;
            }
        }
    }
    writeln!(out, "{} members", universe.members().count())?;
    Ok(())
}

/// `mp universe list [--json]`.
pub(crate) async fn list(ctx: &Context, json: bool, out: &mut dyn Write) -> Result<(), AppError> {
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = list_universes(&deps(ctx, &store)).await;
    store.close().await;
    let universes = result.map_err(universe_error)?;
    if json {
        let items: Vec<serde_json::Value> = universes
            .iter()
            .map(|u| {
                json!({
                    "as_of": u.as_of.to_string(),
                    "name": u.name,
                    "built_at": u.built_at.to_string(),
                    "members": u.members,
                    "candidates": u.candidates,
                })
            })
            .collect();
        writeln!(out, "{:#}", serde_json::Value::Array(items))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10}  {:>8}  {:>10}  NAME",
        "AS_OF", "MEMBERS", "CANDIDATES"
    )?;
    for u in &universes {
        writeln!(
            out,
            "{:<10}  {:>8}  {:>10}  {}",
            u.as_of.to_string(),
            u.members,
            u.candidates,
            u.name
        )?;
    }
    Ok(())
}

fn diff_json(d: &UniverseDiff) -> serde_json::Value {
    json!({
        "from": d.from.to_string(),
        "to": d.to.to_string(),
        "added": d.added.iter().map(|(s, rank)| json!({"symbol": s.as_str(), "rank": rank})).collect::<Vec<_>>(),
        "removed": d.removed.iter().map(|(s, x)| json!({"symbol": s.as_str(), "excluded_by": x.filter, "reason": x.reason})).collect::<Vec<_>>(),
        "kept": d.kept,
    })
}

/// `mp universe diff A B [--json]`.
pub(crate) async fn diff(
    ctx: &Context,
    from: &str,
    to: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let from = selector("A", from)?;
    let to = selector("B", to)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = diff_universes(&deps(ctx, &store), from, to).await;
    store.close().await;
    let d = result.map_err(universe_error)?;
    if json {
        writeln!(out, "{:#}", diff_json(&d))?;
        return Ok(());
    }
    writeln!(out, "from {} to {}: {} kept", d.from, d.to, d.kept)?;
    writeln!(out, "added ({}):", d.added.len())?;
    for (symbol, rank) in &d.added {
        writeln!(
            out,
            "  + {:<10} rank {}",
            symbol.as_str(),
            rank.unwrap_or_default()
        )?;
    }
    writeln!(out, "removed ({}):", d.removed.len())?;
    for (symbol, x) in &d.removed {
        writeln!(
            out,
            "  - {:<10} {}: {}",
            symbol.as_str(),
            x.filter,
            x.reason
        )?;
    }
    Ok(())
}

/// The members of the universe `--universe DATE|latest` names, by rank.
pub(crate) async fn universe_symbols(ctx: &Context, which: &str) -> Result<Vec<Symbol>, AppError> {
    let selector = selector("--universe", which)?;
    let store = Arc::new(wiring::open_store(&ctx.data_dir).await?);
    let result = universe_of(&deps(ctx, &store), selector).await;
    store.close().await;
    let universe = result.map_err(universe_error)?;
    let symbols = universe.member_symbols();
    if symbols.is_empty() {
        return Err(usage(anyhow::anyhow!(
            "the universe of {} has no members: nothing to ingest",
            universe.as_of
        )));
    }
    Ok(symbols)
}
