//! `mp gaps`: the coverage map as a table, JSON, or one self-contained HTML heat map.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use marketpipe_domain::{DateRange, Symbol};
use marketpipe_ingestion::{CellState, GapsReport, GapsRequest, gaps};

use crate::cli::GapsArgs;
use crate::commands::ingest::ingest_error;
use crate::commands::{Context, symbols_from};
use crate::error::{AppError, usage};
use crate::wiring;

pub(crate) async fn run(
    ctx: &Context,
    args: &GapsArgs,
    out: &mut dyn Write,
) -> Result<(), AppError> {
    let symbols = symbols_from(args.symbols.as_deref(), args.symbols_file.as_deref())?;
    let dates = DateRange::parse(&args.start, &args.end).map_err(usage)?;
    marketpipe_domain::TradingCalendar::xnys()
        .sessions(dates)
        .map_err(usage)?;
    if let Some(provider) = &args.provider {
        wiring::provider_entry(provider)?;
    }
    let request = GapsRequest {
        provider: args.provider.clone(),
        feed: args.feed.clone(),
        symbols,
        dates,
        hours: crate::commands::ingest::hours(ctx, args.extended_hours),
    };
    // Reading only: an empty data dir has an empty map, and no database is created.
    let store =
        marketpipe_sqlite::SqliteStore::open_read_only(&wiring::database_path(&ctx.data_dir))
            .await
            .map_err(|e| AppError::Failed(e.into()))?;
    let report = if let Some(store) = store {
        let report = gaps(&store, &request, ctx.clock.now()).await;
        store.close().await;
        report.map_err(ingest_error)?
    } else {
        gaps(&EmptyCoverage, &request, ctx.clock.now())
            .await
            .map_err(ingest_error)?
    };
    if let Some(path) = &args.html {
        write_html(path, &request, &report)?;
    }
    if args.json {
        let value = serde_json::json!({
            "provider": request.provider,
            "feed": request.feed,
            "start": dates.start().to_string(),
            "end": dates.end().to_string(),
            "hours": request.hours.as_str(),
            "sessions": report.sessions.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "not_ended": report.not_ended.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "totals": report.totals(),
            "symbols": report.symbols.iter().map(|s| serde_json::json!({
                "symbol": s.symbol,
                "expected": s.expected,
                "filled": s.filled,
                "partial": s.partial,
                "empty": s.empty,
                "failed": s.failed,
                "missing": s.missing,
                "partial_minutes_missing": s.partial_minutes_missing,
                "cells": s.cells,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{value:#}")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<10}  {:>8}  {:>6}  {:>7}  {:>5}  {:>6}  {:>7}",
        "symbol", "expected", "filled", "partial", "empty", "failed", "missing"
    )?;
    for s in &report.symbols {
        writeln!(
            out,
            "{:<10}  {:>8}  {:>6}  {:>7}  {:>5}  {:>6}  {:>7}",
            s.symbol.as_str(),
            s.expected,
            s.filled,
            s.partial,
            s.empty,
            s.failed,
            s.missing
        )?;
    }
    if !report.not_ended.is_empty() {
        let dates: Vec<String> = report.not_ended.iter().map(ToString::to_string).collect();
        writeln!(out, "not ended yet (not counted): {}", dates.join(", "))?;
    }
    if let Some(path) = &args.html {
        writeln!(out, "heat map written to {}", path.display())?;
    }
    Ok(())
}

/// The coverage map of a data dir without a database: empty.
#[derive(Debug)]
struct EmptyCoverage;

#[async_trait::async_trait]
impl marketpipe_ports::CoverageRepository for EmptyCoverage {
    async fn record_coverage(
        &self,
        _entries: &[marketpipe_domain::SessionCoverage],
    ) -> Result<(), marketpipe_ports::RepositoryError> {
        Ok(())
    }
    async fn coverage(
        &self,
        _query: &marketpipe_ports::CoverageQuery,
    ) -> Result<Vec<marketpipe_domain::SessionCoverage>, marketpipe_ports::RepositoryError> {
        Ok(Vec::new())
    }
    async fn prune_coverage(
        &self,
        _symbols: &[Symbol],
        _before: chrono::NaiveDate,
        _dry_run: bool,
    ) -> Result<marketpipe_ports::CoveragePruned, marketpipe_ports::RepositoryError> {
        Ok(marketpipe_ports::CoveragePruned::default())
    }
}

/// One letter per cell state in the page's data.
const fn letter(state: CellState) -> char {
    match state {
        CellState::Filled => 'F',
        CellState::Partial => 'P',
        CellState::EmptyConfirmed => 'E',
        CellState::Failed => 'X',
        CellState::Missing => 'M',
    }
}

/// Text safe inside HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes the page atomically (a temporary file renamed over `path`).
fn write_html(path: &Path, request: &GapsRequest, report: &GapsReport) -> Result<(), AppError> {
    let data = serde_json::json!({
        "sessions": report.sessions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "symbols": report.symbols.iter().map(|s| s.symbol.as_str()).collect::<Vec<_>>(),
        "rows": report.symbols.iter().map(|s| s.cells.iter().map(|c| letter(*c)).collect::<String>()).collect::<Vec<_>>(),
    });
    let totals = report.totals();
    let count = |state: CellState| totals.get(state.as_str()).copied().unwrap_or(0);
    let title = format!(
        "MarketPipe coverage: {} symbols x {} sessions, {}..{}{}",
        report.symbols.len(),
        report.sessions.len(),
        request.dates.start(),
        request.dates.end(),
        request
            .provider
            .as_deref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default()
    );
    let mut rows = String::new();
    for s in &report.symbols {
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(s.symbol.as_str()),
            s.expected,
            s.filled,
            s.partial,
            s.empty,
            s.failed,
            s.missing
        );
    }
    // The data is JSON inside a script element: `</` must not close it.
    let data = data.to_string().replace("</", "<\\/");
    let page = PAGE
        .replace("{{TITLE}}", &escape(&title))
        .replace("{{FILLED}}", &count(CellState::Filled).to_string())
        .replace("{{PARTIAL}}", &count(CellState::Partial).to_string())
        .replace("{{EMPTY}}", &count(CellState::EmptyConfirmed).to_string())
        .replace("{{FAILED}}", &count(CellState::Failed).to_string())
        .replace("{{MISSING}}", &count(CellState::Missing).to_string())
        .replace("{{HOURS}}", request.hours.as_str())
        .replace("{{ROWS}}", &rows)
        .replace("{{DATA}}", &data);
    super::write_file_atomically(path, page.as_bytes()).map_err(|e| {
        usage(anyhow::anyhow!(
            "cannot write --html {}: {e}; pass a path in a writable directory",
            path.display()
        ))
    })
}

/// The page: a legend with the counts, a canvas heat map (rows: symbols, columns: sessions;
/// hover a cell for its symbol, date and state), and the per-symbol table. No external
/// resource: it opens from a file, offline.
const PAGE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{TITLE}}</title>
<style>
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 16px; margin: 0 0 8px; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; border: 1px solid #999; }
#map { display: block; margin: 10px 0; image-rendering: pixelated; }
#tip { position: fixed; pointer-events: none; background: #222; color: #fff; padding: 2px 6px; border-radius: 3px; display: none; }
table { border-collapse: collapse; margin-top: 10px; }
td, th { border: 1px solid #ccc; padding: 1px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
</style>
</head>
<body>
<h1>{{TITLE}}</h1>
<div class="legend">
<span><i style="background:#2e7d32"></i>filled {{FILLED}}</span>
<span><i style="background:#f9a825"></i>partial {{PARTIAL}}</span>
<span><i style="background:#5c6bc0"></i>empty (provider had none) {{EMPTY}}</span>
<span><i style="background:#c62828"></i>failed {{FAILED}}</span>
<span><i style="background:#e0e0e0"></i>missing {{MISSING}}</span>
<span>{{HOURS}} hours</span>
</div>
<canvas id="map"></canvas>
<div id="tip"></div>
<table>
<tr><th>symbol</th><th>expected</th><th>filled</th><th>partial</th><th>empty</th><th>failed</th><th>missing</th></tr>
{{ROWS}}</table>
<script id="data" type="application/json">{{DATA}}</script>
<script>
(function () {
  var d = JSON.parse(document.getElementById("data").textContent);
  var colors = { F: "#2e7d32", P: "#f9a825", E: "#5c6bc0", X: "#c62828", M: "#e0e0e0" };
  var names = { F: "filled", P: "partial", E: "empty_confirmed", X: "failed", M: "missing" };
  var n = d.sessions.length, rows = d.rows.length;
  var label = 90, top = 18;
  var cw = Math.max(3, Math.min(24, Math.floor((Math.max(window.innerWidth, 800) - label - 40) / Math.max(n, 1))));
  var ch = rows > 200 ? 12 : 16;
  var canvas = document.getElementById("map");
  canvas.width = label + n * cw;
  canvas.height = top + rows * ch;
  var g = canvas.getContext("2d");
  g.font = "11px system-ui, sans-serif";
  g.textBaseline = "middle";
  g.fillStyle = "#555";
  var month = "";
  for (var c = 0; c < n; c++) {
    var m = d.sessions[c].slice(0, 7);
    if (m !== month) {
      month = m;
      g.fillText(m, label + c * cw, top / 2);
      g.fillRect(label + c * cw, top - 4, 1, 4);
    }
  }
  for (var r = 0; r < rows; r++) {
    var y = top + r * ch;
    g.fillStyle = "#222";
    g.fillText(d.symbols[r], 2, y + ch / 2);
    var row = d.rows[r];
    for (var c2 = 0; c2 < n; c2++) {
      g.fillStyle = colors[row.charAt(c2)] || "#fff";
      g.fillRect(label + c2 * cw, y + 1, Math.max(cw - 1, 1), ch - 2);
    }
  }
  var tip = document.getElementById("tip");
  canvas.addEventListener("mousemove", function (e) {
    var box = canvas.getBoundingClientRect();
    var c = Math.floor((e.clientX - box.left - label) / cw);
    var r = Math.floor((e.clientY - box.top - top) / ch);
    if (c < 0 || r < 0 || c >= n || r >= rows) { tip.style.display = "none"; return; }
    tip.textContent = d.symbols[r] + " " + d.sessions[c] + ": " + names[d.rows[r].charAt(c)];
    tip.style.left = (e.clientX + 12) + "px";
    tip.style.top = (e.clientY + 12) + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  canvas.setAttribute("data-cells", String(n * rows));
})();
</script>
</body>
</html>
"##;
