//! The report file format: RFC 4180 CSV with the header `symbol,ts,rule,severity,detail`,
//! one row per finding. Fields holding `,`, `"`, CR or LF are quoted, with `"` doubled.
//! Lines end with LF; the reader also accepts CRLF (a file saved by a spreadsheet), a UTF-8
//! byte-order mark and blank lines.

use marketpipe_domain::{Finding, RuleId, Severity, Symbol, Timestamp};

/// The header row.
pub(crate) const HEADER: [&str; 5] = ["symbol", "ts", "rule", "severity", "detail"];

/// A row that cannot be read back, with its 1-based line in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowError {
    /// The line where the record starts (or where the syntax error is).
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) message: String,
}

/// Renders findings as the report file's content, in the order given.
pub(crate) fn render(findings: &[Finding]) -> String {
    let mut out = String::with_capacity(64 + findings.len() * 96);
    push_record(&mut out, HEADER);
    for f in findings {
        let ts = f.ts.to_rfc3339();
        push_record(
            &mut out,
            [
                f.symbol.as_str(),
                &ts,
                f.rule.as_str(),
                f.severity.as_str(),
                &f.detail,
            ],
        );
    }
    out
}

fn push_record<const N: usize>(out: &mut String, fields: [&str; N]) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_field(out, field);
    }
    out.push('\n');
}

fn push_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push('"');
        for c in field.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// One CSV record and the line it starts on.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits `text` into records (RFC 4180). Blank lines are skipped.
fn records(text: &str) -> Result<Vec<Record>, RowError> {
    let err = |line, message: &str| RowError {
        line,
        message: message.to_owned(),
    };
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut blank = true;
        loop {
            let mut field = String::new();
            if chars.next_if_eq(&'"').is_some() {
                blank = false;
                let opened = line;
                loop {
                    match chars.next() {
                        None => return Err(err(opened, "a quoted field is never closed")),
                        Some('"') => {
                            if chars.next_if_eq(&'"').is_some() {
                                field.push('"');
                            } else {
                                break;
                            }
                        }
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.push(c);
                        }
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !matches!(c, ',' | '\n' | '\r')) {
                    if c == '"' {
                        return Err(err(line, "a '\"' inside a field that is not quoted"));
                    }
                    field.push(c);
                }
            }
            blank &= field.is_empty();
            fields.push(field);
            match chars.next() {
                Some(',') => blank = false,
                Some('\n') | None => {
                    line += 1;
                    break;
                }
                Some('\r') => {
                    if chars.next_if_eq(&'\n').is_none() {
                        return Err(err(line, "a carriage return not followed by a line feed"));
                    }
                    line += 1;
                    break;
                }
                Some(_) => {
                    return Err(err(
                        line,
                        "a closing '\"' must be followed by ',' or the end of the line",
                    ));
                }
            }
        }
        if !blank {
            out.push(Record {
                line: start,
                fields,
            });
        }
    }
    Ok(out)
}

/// Parses a report file's content back into findings.
pub(crate) fn parse(text: &str) -> Result<Vec<Finding>, RowError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows = records(text)?.into_iter();
    let Some(header) = rows.next() else {
        return Err(RowError {
            line: 1,
            message: format!("the header {} is missing", HEADER.join(",")),
        });
    };
    if header.fields != HEADER {
        return Err(RowError {
            line: header.line,
            message: format!(
                "the header is {:?}, expected {}",
                header.fields.join(","),
                HEADER.join(",")
            ),
        });
    }
    rows.map(|r| {
        finding(&r.fields).map_err(|message| RowError {
            line: r.line,
            message,
        })
    })
    .collect()
}

/// A finding from the fields of one row.
fn finding(fields: &[String]) -> Result<Finding, String> {
    let [symbol, ts, rule, severity, detail] = fields else {
        return Err(format!(
            "{} fields, expected {} ({})",
            fields.len(),
            HEADER.len(),
            HEADER.join(",")
        ));
    };
    Ok(Finding {
        symbol: Symbol::new(symbol).map_err(|e| e.to_string())?,
        ts: Timestamp::parse_rfc3339(ts).map_err(|e| e.to_string())?,
        rule: rule.parse::<RuleId>()?,
        severity: parse_severity(severity)?,
        detail: detail.clone(),
    })
}

/// A severity from its `as_str` name.
pub(crate) fn parse_severity(text: &str) -> Result<Severity, String> {
    [Severity::Info, Severity::Warning, Severity::Error]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| format!("unknown severity {text:?} (expected info, warning or error)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        records(text)
            .unwrap()
            .into_iter()
            .map(|r| r.fields)
            .collect()
    }

    fn finding(detail: &str) -> Finding {
        Finding {
            symbol: Symbol::new("BRK.B").unwrap(),
            ts: Timestamp::parse_rfc3339("2024-01-02T14:30:00.5Z").unwrap(),
            rule: RuleId::PriceJump,
            severity: Severity::Warning,
            detail: detail.to_owned(),
        }
    }

    #[test]
    fn renders_the_header_and_quotes_only_when_needed() {
        let text = render(&[finding("plain"), finding("a, \"b\"\nc")]);
        assert_eq!(
            text,
            "symbol,ts,rule,severity,detail\n\
             BRK.B,2024-01-02T14:30:00.500Z,price_jump,warning,plain\n\
             BRK.B,2024-01-02T14:30:00.500Z,price_jump,warning,\"a, \"\"b\"\"\nc\"\n"
        );
    }

    #[test]
    fn round_trips_awkward_details() {
        let details = [
            "",
            " leading and trailing spaces ",
            ",",
            "\"",
            "\"\"",
            "line\nbreak",
            "crlf\r\ninside",
            "lone\rcr",
            "trailing newline\n",
            "ünïcödé — 株",
            "a,\"b\",\nc",
        ];
        let findings: Vec<Finding> = details.iter().map(|d| finding(d)).collect();
        assert_eq!(parse(&render(&findings)).unwrap(), findings);
        assert_eq!(parse(&render(&[])).unwrap(), []);
    }

    #[test]
    fn reads_crlf_bom_and_blank_lines() {
        let text = "\u{feff}symbol,ts,rule,severity,detail\r\n\r\n\
                    AAPL,2024-01-02T14:30:00Z,duplicate_ts,error,\"x\r\ny\"\r\n";
        let got = parse(text).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].detail, "x\r\ny");
        assert_eq!(got[0].rule, RuleId::DuplicateTs);
        assert_eq!(got[0].severity, Severity::Error);
        // No final line break.
        assert_eq!(fields("a,b"), [["a", "b"]]);
        assert_eq!(fields("a,\"\"\n"), [["a", ""]]);
        assert_eq!(fields("\"\""), [[""]]);
        assert_eq!(fields(","), [["", ""]]);
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let cases = [
            ("a\n\"open\nstill open", 2, "never closed"),
            ("a\nb\"c", 2, "not quoted"),
            ("a\n\"x\"y", 2, "closing"),
            ("a\nb\rc", 2, "carriage return"),
            ("\"multi\nline\"\nx\"", 3, "not quoted"),
        ];
        for (text, line, what) in cases {
            let e = records(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e:?}");
            assert!(e.message.contains(what), "{text:?}: {e:?}");
        }
    }

    #[test]
    fn bad_rows_name_their_line_and_value() {
        let head = "symbol,ts,rule,severity,detail\n";
        let ok = "AAPL,2024-01-02T14:30:00Z,price_jump,warning,d\n";
        let cases = [
            ("AAPL,2024-01-02T14:30:00Z,price_jump,warning\n", "4 fields"),
            ("aapl,2024-01-02T14:30:00Z,price_jump,warning,d\n", "aapl"),
            ("AAPL,yesterday,price_jump,warning,d\n", "yesterday"),
            (
                "AAPL,2024-01-02T14:30:00Z,bogus_rule,warning,d\n",
                "bogus_rule",
            ),
            ("AAPL,2024-01-02T14:30:00Z,price_jump,fatal,d\n", "fatal"),
        ];
        // The first row's detail spans lines 2-3, so the bad row is on line 4.
        let multi = "AAPL,2024-01-02T14:30:00Z,price_jump,warning,\"multi\nline\"\n";
        for (row, what) in cases {
            let e = parse(&format!("{head}{multi}{row}")).unwrap_err();
            assert_eq!(e.line, 4, "{row:?}: {e:?}");
            assert!(e.message.contains(what), "{row:?}: {e:?}");
            let e = parse(&format!("{head}{ok}{ok}{ok}{row}")).unwrap_err();
            assert_eq!(e.line, 5, "{row:?}: {e:?}");
        }
    }

    #[test]
    fn a_missing_or_wrong_header_is_an_error() {
        assert_eq!(parse("").unwrap_err().line, 1);
        assert!(parse("\n\n").unwrap_err().message.contains("missing"));
        let e = parse("symbol,ts,rule,detail\n").unwrap_err();
        assert!(e.message.contains("symbol,ts,rule,detail"), "{e:?}");
    }

    #[test]
    fn severities_parse_by_name() {
        for s in [Severity::Info, Severity::Warning, Severity::Error] {
            assert_eq!(parse_severity(s.as_str()).unwrap(), s);
        }
        assert!(parse_severity("Error").unwrap_err().contains("\"Error\""));
    }
}
