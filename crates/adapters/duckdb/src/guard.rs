//! The statement guard, the first of the two read-only layers: before anything runs, the SQL
//! is tokenized the way DuckDB's own tokenizer does it (a port of DuckDB 2.0's PEG parser
//! tokenizer, `base_tokenizer.cpp`), and refused unless it is exactly one reading statement.
//!
//! What the tokenizer knows: `--` line comments, nested `/* … */` block comments, `'…'`
//! strings (`''` escapes a quote; also `N'…'`, `X'…'`, `B'…'`, and `E'…'` where a backslash
//! escapes the next character), `$$…$$` and `$tag$…$tag$` dollar-quoted strings, `"…"` and
//! `` `…` `` quoted identifiers (the quote doubled escapes it). A `;` inside any of these is no
//! statement separator, and a keyword inside them is no keyword.
//!
//! The rules: one statement (a trailing `;` is fine); its first keyword (after opening
//! parentheses) is one of [`READING`], or `EXPLAIN [ANALYZE]` of one of them; and no writing
//! keyword ([`WRITING`]) appears anywhere outside strings, comments and quoted identifiers,
//! which also catches DuckDB's data-modifying CTEs (`WITH x AS (INSERT … RETURNING *) …`). A
//! column or alias spelled like a writing keyword must be quoted (`"load"`).
//!
//! The engine then runs the statement through DuckDB's `query()` table function, whose own
//! parser accepts exactly one SELECT: should this tokenizer ever disagree with DuckDB's about
//! where a statement ends, DuckDB refuses instead of running a second statement.

use marketpipe_ports::error::QueryError;

/// First keywords of the statements that run (DuckDB parses all of them as a SELECT).
pub(crate) const READING: [&str; 12] = [
    "SELECT",
    "WITH",
    "VALUES",
    "TABLE",
    "FROM",
    "DESCRIBE",
    "SHOW",
    "SUMMARIZE",
    "PIVOT",
    "PIVOT_WIDER",
    "UNPIVOT",
    "PIVOT_LONGER",
];

/// Keywords that only a writing (or session-changing) statement contains: refused wherever
/// they appear outside strings, comments and quoted identifiers.
pub(crate) const WRITING: [&str; 30] = [
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "TRUNCATE",
    "CREATE",
    "DROP",
    "ALTER",
    "COPY",
    "ATTACH",
    "DETACH",
    "INSTALL",
    "LOAD",
    "SET",
    "RESET",
    "PRAGMA",
    "CALL",
    "EXPORT",
    "IMPORT",
    "CHECKPOINT",
    "VACUUM",
    "USE",
    "PREPARE",
    "EXECUTE",
    "DEALLOCATE",
    "GRANT",
    "REVOKE",
    "BEGIN",
    "COMMIT",
];

/// An accepted statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked<'a> {
    /// A reading statement, run as `SELECT * FROM query('<sql>')`.
    Select,
    /// `EXPLAIN [ANALYZE] <inner>`: `inner` is checked through `query()` first, then run
    /// behind the EXPLAIN.
    Explain {
        /// Whether it is `EXPLAIN ANALYZE` (which runs the statement).
        analyze: bool,
        /// The explained reading statement.
        inner: &'a str,
    },
}

/// What a token is; strings, comments and quoted identifiers carry no text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// An unquoted word (keyword or identifier), upper-cased.
    Word(String),
    /// `;`
    Terminator,
    /// `(`
    Open,
    /// Anything else: a literal, a quoted identifier, an operator, `)`.
    Other,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    kind: Kind,
    start: usize,
}

/// Checks `sql`: the accepted statement, or why it is refused (nothing has run).
pub(crate) fn check(sql: &str) -> Result<Checked<'_>, QueryError> {
    let tokens = tokenize(sql).map_err(|message| QueryError::Invalid { message })?;
    let mut statements: Vec<&[Token]> = tokens
        .split(|t| t.kind == Kind::Terminator)
        .filter(|s| !s.is_empty())
        .collect();
    if statements.len() > 1 {
        let second = first_word(statements[1]).unwrap_or("a non-keyword");
        return Err(refused(
            sql,
            format!(
                "more than one statement ({} found; the second starts with {second}): only one \
                 reading statement runs at a time",
                statements.len()
            ),
        ));
    }
    let Some(statement) = statements.pop() else {
        return Err(QueryError::Invalid {
            message: "no statement to run".into(),
        });
    };
    if let Some(word) = statement.iter().find_map(|t| match &t.kind {
        Kind::Word(w) if WRITING.contains(&w.as_str()) => Some(w.as_str()),
        _ => None,
    }) {
        return Err(refused(sql, writing_reason(word)));
    }
    let Some(first) = first_word(statement) else {
        return Err(refused(
            sql,
            "the statement does not start with a keyword; it must start with SELECT, WITH, \
             VALUES, TABLE, FROM, DESCRIBE, SHOW, SUMMARIZE, PIVOT or EXPLAIN"
                .into(),
        ));
    };
    if first == "EXPLAIN" {
        return explain(sql, statement);
    }
    if READING.contains(&first) {
        Ok(Checked::Select)
    } else {
        Err(refused(sql, writing_reason(first)))
    }
}

/// Checks `EXPLAIN [ANALYZE] <reading statement>`.
fn explain<'a>(sql: &'a str, statement: &[Token]) -> Result<Checked<'a>, QueryError> {
    let at = statement
        .iter()
        .position(|t| t.kind == Kind::Word("EXPLAIN".into()))
        .map_or(statement.len(), |i| i + 1);
    let mut rest = &statement[at..];
    let analyze = matches!(rest.first(), Some(Token { kind: Kind::Word(w), .. }) if w == "ANALYZE");
    if analyze {
        rest = &rest[1..];
    }
    match (first_word(rest), rest.first()) {
        (Some(w), Some(start)) if READING.contains(&w) => Ok(Checked::Explain {
            analyze,
            inner: &sql[start.start..],
        }),
        (first, start) => {
            let what = match (first, start.map(|t| &t.kind)) {
                (_, Some(Kind::Open)) => "an option list",
                (Some(w), _) => w,
                (None, Some(_)) => "a non-statement",
                (None, None) => "nothing",
            };
            Err(refused(
                sql,
                format!(
                    "EXPLAIN of {what} is not allowed: only EXPLAIN [ANALYZE] of a reading \
                     statement runs (without options)"
                ),
            ))
        }
    }
}

/// The refusal for a statement.
fn refused(sql: &str, reason: String) -> QueryError {
    QueryError::Refused {
        statement: shorten(sql),
        reason,
    }
}

/// Why a keyword is refused, in the user's terms.
fn writing_reason(word: &str) -> String {
    let what = match word {
        "COPY" | "EXPORT" | "IMPORT" => "reads or writes files",
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "UPSERT" | "TRUNCATE" => "changes data",
        "CREATE" | "DROP" | "ALTER" => "changes the catalog",
        "ATTACH" | "DETACH" | "USE" => "opens or switches databases",
        "INSTALL" | "LOAD" => "installs or loads extensions",
        "SET" | "RESET" | "PRAGMA" => "changes settings",
        "CALL" | "PREPARE" | "EXECUTE" | "DEALLOCATE" => "runs procedures or other statements",
        "CHECKPOINT" | "VACUUM" => "writes the database",
        _ => "is not a reading statement",
    };
    format!(
        "{word} {what}; a statement must start with SELECT, WITH, VALUES, TABLE, FROM, DESCRIBE, \
         SHOW, SUMMARIZE, PIVOT or EXPLAIN"
    )
}

/// The first word of a statement, after opening parentheses.
fn first_word(tokens: &[Token]) -> Option<&str> {
    match &tokens.iter().find(|t| t.kind != Kind::Open)?.kind {
        Kind::Word(w) => Some(w.as_str()),
        _ => None,
    }
}

/// The statement as quoted in a refusal: at most 200 characters.
fn shorten(sql: &str) -> String {
    const MAX: usize = 200;
    let trimmed = sql.trim();
    if trimmed.chars().count() <= MAX {
        trimmed.to_owned()
    } else {
        let mut s: String = trimmed.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

/// DuckDB's `StringUtil::CharacterIsSpace`.
const fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The length of a Unicode space that DuckDB turns into a plain space before tokenizing
/// (U+00A0, U+2000–U+200B, U+202F, U+205F, U+2060, U+3000, U+FEFF) at the start of `b`.
fn unicode_space_len(b: &[u8]) -> Option<usize> {
    match b {
        [0xC2, 0xA0, ..] => Some(2),
        [0xE2, 0x80, 0x80..=0x8B | 0xAF, ..]
        | [0xE2, 0x81, 0x9F | 0xA0, ..]
        | [0xE3, 0x80, 0x80, ..]
        | [0xEF, 0xBB, 0xBF, ..] => Some(3),
        _ => None,
    }
}

/// DuckDB's `StringUtil::CharacterIsOperator`: ASCII punctuation but `_`.
const fn is_punctuation(c: u8) -> bool {
    c != b'_' && c.is_ascii_punctuation()
}

/// The characters an operator token continues with (`Tokenizer::CharacterIsOperator`).
const fn is_operator(c: u8) -> bool {
    matches!(
        c,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'%'
            | b'^'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'&'
            | b'|'
    )
}

/// Single-byte operator tokens.
const fn is_single_byte_operator(c: u8) -> bool {
    matches!(
        c,
        b'(' | b')' | b'{' | b'}' | b'[' | b']' | b',' | b':' | b'?' | b'$' | b'#'
    )
}

/// Whether a byte continues a word (`Tokenizer::CharacterIsKeyword`, plus `$`).
const fn is_word(c: u8) -> bool {
    c == b'$'
        || !(is_single_byte_operator(c)
            || is_punctuation(c)
            || is_space(c)
            || matches!(c, b'\'' | b';' | b'"' | b'.'))
}

/// Whether a byte continues a dollar-quote tag.
const fn is_tag(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Whether a byte starts (and always continues) a number.
const fn is_initial_number(c: u8) -> bool {
    c.is_ascii_digit() || c == b'.'
}

/// Splits `sql` into tokens like DuckDB does, or says why it cannot be parsed.
fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let b = sql.as_bytes();
    let len = b.len();
    let mut tokens = Vec::new();
    let mut push = |kind: Kind, start: usize| tokens.push(Token { kind, start });
    let mut i = 0;
    while i < len {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if let Some(n) = unicode_space_len(&b[i..]) {
            i += n;
            continue;
        }
        let start = i;
        match c {
            b'\'' => {
                i = string_end(b, i + 1, false).ok_or("unterminated string literal")?;
                push(Kind::Other, start);
            }
            b'"' | b'`' => {
                i = quoted_end(b, i + 1, c).ok_or("unterminated quoted identifier")?;
                push(Kind::Other, start);
            }
            b';' => {
                push(Kind::Terminator, start);
                i += 1;
            }
            b'$' => {
                i = dollar(b, i)?;
                push(Kind::Other, start);
            }
            b'-' if next == Some(b'-') => {
                while i < len && b[i] != b'\n' && b[i] != b'\r' {
                    i += 1;
                }
            }
            b'/' if next == Some(b'*') => i = block_comment_end(b, i)?,
            _ if is_space(c) => i += 1,
            b':' if matches!(next, Some(b':' | b'=')) => {
                i += 2;
                push(Kind::Other, start);
            }
            b'(' => {
                push(Kind::Open, start);
                i += 1;
            }
            _ if is_single_byte_operator(c) => {
                push(Kind::Other, start);
                i += 1;
            }
            _ if is_initial_number(c) => {
                i = number_end(b, i);
                push(Kind::Other, start);
            }
            b'N' | b'n' | b'X' | b'x' | b'B' | b'b' | b'E' | b'e' if next == Some(b'\'') => {
                let escapes = matches!(c, b'E' | b'e');
                i = string_end(b, i + 2, escapes).ok_or("unterminated string literal")?;
                push(Kind::Other, start);
            }
            _ if is_punctuation(c) => {
                i += 1;
                while i < len
                    && is_operator(b[i])
                    && !matches!(
                        (b[i], b.get(i + 1)),
                        (b'-', Some(b'-')) | (b'/', Some(b'*'))
                    )
                {
                    i += 1;
                }
                push(Kind::Other, start);
            }
            _ => {
                i += 1;
                while i < len && is_word(b[i]) && unicode_space_len(&b[i..]).is_none() {
                    i += 1;
                }
                let word = String::from_utf8_lossy(&b[start..i]).to_ascii_uppercase();
                push(Kind::Word(word), start);
            }
        }
    }
    Ok(tokens)
}

/// The end (exclusive) of a string whose body starts at `i`: a lone `'` ends it, `''` is an
/// escaped quote and, when `escapes`, a backslash escapes the next byte.
fn string_end(b: &[u8], mut i: usize, escapes: bool) -> Option<usize> {
    while i < b.len() {
        match b[i] {
            b'\\' if escapes && i + 1 < b.len() => i += 2,
            b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The end (exclusive) of a quoted identifier whose body starts at `i`.
fn quoted_end(b: &[u8], mut i: usize, quote: u8) -> Option<usize> {
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// The end (exclusive) of a nested block comment starting at `i` (`/*`).
fn block_comment_end(b: &[u8], mut i: usize) -> Result<usize, String> {
    let mut depth = 0usize;
    while i < b.len() {
        match (b[i], b.get(i + 1)) {
            (b'/', Some(b'*')) => {
                depth += 1;
                i += 2;
            }
            (b'*', Some(b'/')) => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => i += 1,
        }
    }
    Err("unterminated /* comment".into())
}

/// The end (exclusive) of what starts with `$` at `i`: a parameter sign, a lone `$`, or a
/// dollar-quoted string.
fn dollar(b: &[u8], i: usize) -> Result<usize, String> {
    let Some(&next) = b.get(i + 1) else {
        return Ok(i + 1);
    };
    if next.is_ascii_digit() {
        return Ok(i + 1);
    }
    let mut j = i + 1;
    while j < b.len() && b[j] != b'$' && is_tag(b[j]) {
        j += 1;
    }
    if b.get(j) != Some(&b'$') {
        return Ok(i + 1);
    }
    let delimiter = &b[i..=j];
    let body = j + 1;
    (body..b.len())
        .find(|&k| b[k..].starts_with(delimiter))
        .map(|k| k + delimiter.len())
        .ok_or_else(|| "unterminated dollar-quoted string".into())
}

/// The end (exclusive) of a number starting at `start`, by DuckDB's rules (digits, `.`, `_`
/// between digits, one exponent with an optional sign; a trailing exponent marker or sign is
/// given back).
fn number_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        let c = b[i];
        let prev = b[i - 1];
        let scientific = |x: u8| matches!(x, b'e' | b'E');
        let keep = is_initial_number(c)
            || (c == b'_' && prev.is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit))
            || (scientific(c)
                && !scientific(prev)
                && (b[start].is_ascii_digit() || prev.is_ascii_digit()))
            || (matches!(c, b'+' | b'-') && scientific(prev));
        if !keep {
            while !is_initial_number(b[i - 1]) {
                i -= 1;
            }
            return i;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(sql: &str) -> Checked<'_> {
        match check(sql) {
            Ok(c) => c,
            Err(e) => panic!("{sql:?} was refused: {e}"),
        }
    }

    fn reason(sql: &str) -> String {
        match check(sql) {
            Err(QueryError::Refused { reason, .. }) => reason,
            other => panic!("{sql:?} was not refused: {other:?}"),
        }
    }

    fn invalid(sql: &str) -> String {
        match check(sql) {
            Err(QueryError::Invalid { message }) => message,
            other => panic!("{sql:?} was not invalid: {other:?}"),
        }
    }

    #[test]
    fn reading_statements_run() {
        for sql in [
            "select 1",
            "SELECT symbol, count(*) FROM bars_1m GROUP BY 1 ORDER BY 1;",
            "  select 1 ;  ;  ",
            "with x as (select 1 a) select * from x",
            "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) SELECT * FROM t",
            "values (1), (2)",
            "table bars_1d",
            "from bars_1m limit 3",
            "describe bars_1m",
            "show tables",
            "summarize bars_1m",
            "pivot bars_1m on symbol in ('AAPL') using count(*)",
            "(select 1) union (select 2)",
            "-- a comment\nselect 1 -- another; drop view bars_1m\n",
            "/* drop view bars_1m; */ select 1",
            "/* nested /* ; */ still ; comment */ select 1",
            "select ';' as semi, 'it''s; fine' as q",
            "select E'it\\'s; fine', e'\\\\'",
            "select $$ ; drop view bars_1m $$",
            "select $tag$ ; $$ ; $tag$",
            "select \"drop\", \"a;b\" from (select 1 as \"drop\", 2 as \"a;b\")",
            "select `copy` from (select 1 as `copy`)",
            "select x'41', b'101', n'x;'",
            "select * from bars_1m where provider = 'insert; delete'",
            "select pragma_version, settings from x",
            "select * from pragma_database_list",
            "select a$b$ from t",
            "select $1",
            "select 1e5, .5, 1_000, t.a from t",
            "select\u{a0}1",
        ] {
            assert_eq!(accepted(sql), Checked::Select, "{sql}");
        }
    }

    #[test]
    fn explain_keeps_the_explained_statement() {
        assert_eq!(
            accepted("explain select 1"),
            Checked::Explain {
                analyze: false,
                inner: "select 1"
            }
        );
        assert_eq!(
            accepted("/* c */ EXPLAIN ANALYZE (SELECT count(*) FROM bars_1m);"),
            Checked::Explain {
                analyze: true,
                inner: "(SELECT count(*) FROM bars_1m);"
            }
        );
        assert!(reason("explain (format json) select 1").contains("EXPLAIN of an option list"));
        assert!(reason("explain analyze").contains("EXPLAIN of nothing"));
        assert!(reason("explain analyze copy (select 1) to 'x.csv'").starts_with("COPY"));
        assert!(reason("explain explain select 1").contains("EXPLAIN of EXPLAIN"));
    }

    #[test]
    fn writing_statements_are_refused_by_keyword() {
        for (sql, word) in [
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("copy bars_1m from 'x.csv'", "COPY"),
            ("create table t as select 1", "CREATE"),
            ("CREATE OR REPLACE VIEW bars_1m AS SELECT 1", "CREATE"),
            ("insert into t values (1)", "INSERT"),
            ("update t set a = 1", "UPDATE"),
            ("delete from t", "DELETE"),
            ("drop view bars_1m", "DROP"),
            ("alter view bars_1m rename to x", "ALTER"),
            ("attach 'x.db'", "ATTACH"),
            ("detach x", "DETACH"),
            ("install httpfs", "INSTALL"),
            ("force install httpfs", "INSTALL"),
            ("load httpfs", "LOAD"),
            ("set threads = 1", "SET"),
            ("reset threads", "RESET"),
            ("pragma threads = 1", "PRAGMA"),
            ("PRAGMA version", "PRAGMA"),
            ("call pragma_version()", "CALL"),
            ("export database 'x'", "EXPORT"),
            ("import database 'x'", "IMPORT"),
            ("checkpoint", "CHECKPOINT"),
            ("vacuum", "VACUUM"),
            ("use memory", "USE"),
            ("begin transaction", "BEGIN"),
            ("commit", "COMMIT"),
            ("prepare p as select 1", "PREPARE"),
            ("execute p", "EXECUTE"),
            (
                "with x as (insert into t values (1) returning *) select * from x",
                "INSERT",
            ),
            ("with x as (select 1) delete from t", "DELETE"),
            ("/* c */ -- c\n  COPY (select 1) TO 'x'", "COPY"),
            ("(COPY (select 1) TO 'x')", "COPY"),
            ("select 1 as load", "LOAD"),
        ] {
            let r = reason(sql);
            assert!(r.starts_with(word), "{sql}: {r}");
        }
        assert!(reason("rollback").starts_with("ROLLBACK is not a reading statement"));
        assert!(reason("analyze").starts_with("ANALYZE"));
        assert!(reason("'select'").contains("does not start with a keyword"));
    }

    #[test]
    fn several_statements_are_refused() {
        let r = reason("SELECT 1; DROP VIEW bars_1m");
        assert!(r.contains("more than one statement"), "{r}");
        assert!(r.contains("DROP"), "{r}");
        assert!(reason("select 1; select 2").contains("2 found"));
        assert!(reason("select ';'; select 2").contains("more than one"));
        assert!(reason("select $$x$$; select 2").contains("more than one"));
        assert!(reason("select \"a\"\"\"; select 2").contains("more than one"));
        assert!(reason("select 1 /* */; select 2").contains("more than one"));
        // A backslash ends a standard string (it escapes only in E'…').
        assert!(reason("select 'a\\'; select 2").contains("more than one"));
        // After a number, `e'` starts an escape string, as in DuckDB.
        assert_eq!(accepted("select 1e'\\';'"), Checked::Select);
        assert_eq!(accepted("select e'\\'; select '"), Checked::Select);
    }

    #[test]
    fn unterminated_input_is_invalid() {
        assert!(invalid("select 'abc").contains("unterminated string"));
        assert!(invalid("select E'abc\\'").contains("unterminated string"));
        assert!(invalid("select \"abc").contains("unterminated quoted identifier"));
        assert!(invalid("select 1 /* /* */").contains("unterminated /*"));
        assert!(invalid("select $q$ abc").contains("unterminated dollar"));
        for sql in ["", "   ", ";;", "-- nothing\n", "/* nothing */"] {
            assert!(invalid(sql).contains("no statement"), "{sql:?}");
        }
    }

    #[test]
    fn refusals_quote_a_short_statement() {
        let long = format!("drop view bars_1m {}", "x ".repeat(300));
        match check(&long) {
            Err(QueryError::Refused { statement, .. }) => {
                assert!(statement.chars().count() <= 201);
                assert!(statement.ends_with('…'));
            }
            other => panic!("{other:?}"),
        }
    }
}
