//! `mp calendar`.

use predicates::prelude::*;

use crate::mp;

#[test]
fn year_2024_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = mp(dir.path())
        .args(["calendar", "--start", "2024-01-01", "--end", "2024-12-31"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("2024-")).collect();
    assert_eq!(rows.len(), 252);
    assert!(text.ends_with("252 sessions\n"));
    let early: Vec<&str> = rows
        .iter()
        .filter(|r| r.contains("early close"))
        .map(|r| &r[..10])
        .collect();
    assert_eq!(early, ["2024-07-03", "2024-11-29", "2024-12-24"]);
    for r in rows.iter().filter(|r| r.contains("early close")) {
        assert!(r.contains("13:00"), "{r}");
    }
    assert!(!text.contains("2024-03-29"), "Good Friday is not a session");
    let first = rows[0];
    assert!(
        first.starts_with(
            "2024-01-02  Tue    09:30     16:00  2024-01-02T14:30:00Z  2024-01-02T21:00:00Z"
        ),
        "{first}"
    );
    // Summer time: 09:30 ET is 13:30 UTC.
    assert!(text.contains("2024-07-01  Mon    09:30     16:00  2024-07-01T13:30:00Z"));
}

#[test]
fn json_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let out = mp(dir.path())
        .args([
            "calendar",
            "--start",
            "2024-01-01",
            "--end",
            "2024-12-31",
            "--json",
        ])
        .assert()
        .success();
    let sessions: Vec<serde_json::Value> =
        serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(sessions.len(), 252);
    let early: Vec<&str> = sessions
        .iter()
        .filter(|s| s["early_close"] == true)
        .map(|s| s["date"].as_str().unwrap())
        .collect();
    assert_eq!(early, ["2024-07-03", "2024-11-29", "2024-12-24"]);
    let nov29 = sessions.iter().find(|s| s["date"] == "2024-11-29").unwrap();
    assert_eq!(nov29["close_et"], "13:00");
    assert_eq!(nov29["close_utc"], "2024-11-29T18:00:00Z");
    assert!(!sessions.iter().any(|s| s["date"] == "2024-03-29"));
}

#[test]
fn include_closed_names_holidays() {
    let dir = tempfile::tempdir().unwrap();
    mp(dir.path())
        .args([
            "calendar",
            "--start",
            "2025-01-06",
            "--end",
            "2025-01-10",
            "--include-closed",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "closed: National Day of Mourning for Jimmy Carter",
        ))
        .stdout(predicate::str::contains("4 sessions"));
}

#[test]
fn bad_dates_exit_2_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    mp(dir.path())
        .args(["calendar", "--start", "2024-12-31", "--end", "2024-01-01"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "start 2024-12-31 is after end 2024-01-01",
        ));
    mp(dir.path())
        .args(["calendar", "--start", "2024-02-30", "--end", "2024-03-01"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("2024-02-30"));
    mp(dir.path())
        .args(["calendar", "--start", "1990-01-01", "--end", "1990-01-05"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("1990-01-01"));
}
