//! `mp config`, `mp migrate`, and how the configuration file and `MP_*` variables reach
//! the commands.

use predicates::prelude::*;

use crate::{mp, run_ok, text};

/// The names in `dir`, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn config_init_show_and_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let printed = mp(dir.path()).args(["config", "init"]).assert().success();
    let example = text(&printed.get_output().stdout);
    assert!(
        example.lines().any(|l| l == "config_version: 1"),
        "{example}"
    );
    assert!(
        names(dir.path()).is_empty(),
        "config init without --output wrote a file"
    );

    // --output writes the same text, refuses to overwrite without --force.
    mp(dir.path())
        .args(["config", "init", "--output", "mp.yaml"])
        .assert()
        .success()
        .stdout(predicate::str::contains("mp.yaml"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mp.yaml")).unwrap(),
        example
    );
    std::fs::write(dir.path().join("mp.yaml"), "config_version: 1\n").unwrap();
    mp(dir.path())
        .args(["config", "init", "--output", "mp.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mp.yaml"))
        .stderr(predicate::str::contains("--force"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mp.yaml")).unwrap(),
        "config_version: 1\n",
        "the existing file was overwritten"
    );
    mp(dir.path())
        .args(["config", "init", "--output", "mp.yaml", "--force"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mp.yaml")).unwrap(),
        example
    );

    let shown = mp(dir.path())
        .args(["--config", "mp.yaml", "config", "show"])
        .assert()
        .success();
    let shown = text(&shown.get_output().stdout);
    assert!(shown.starts_with("# from mp.yaml"), "{shown}");
    for line in [
        "config_version: 1",
        "  concurrency: 4",
        "  provider: fake",
        "  compression: zstd",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line:?} not in {shown}");
    }

    // An unknown key is a usage error naming it, before anything is created.
    std::fs::write(
        dir.path().join("bad.yaml"),
        "config_version: 1\ningest:\n  concurrancy: 3\n",
    )
    .unwrap();
    mp(dir.path())
        .args([
            "--config",
            "bad.yaml",
            "ingest",
            "--symbols",
            "AAPL",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-02",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("concurrancy"))
        .stderr(predicate::str::contains("bad.yaml"));
    mp(dir.path())
        .args(["--config", "missing.yaml", "config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.yaml"));
    std::fs::write(dir.path().join("zero.yaml"), "ingest:\n  concurrency: 0\n").unwrap();
    mp(dir.path())
        .args(["--config", "zero.yaml", "config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ingest.concurrency"));
    assert_eq!(names(dir.path()), ["bad.yaml", "mp.yaml", "zero.yaml"]);
}

#[test]
fn environment_overrides_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mp.yaml"), "ingest:\n  concurrency: 2\n").unwrap();
    mp(dir.path())
        .args(["--config", "mp.yaml", "config", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\n  concurrency: 2\n"));
    // The variable wins over the file, and applies without a file too.
    let shown = mp(dir.path())
        .env("MP_INGEST_CONCURRENCY", "3")
        .args(["--config", "mp.yaml", "config", "show"])
        .assert()
        .success();
    let shown = text(&shown.get_output().stdout);
    assert!(shown.lines().any(|l| l == "  concurrency: 3"), "{shown}");
    let shown = mp(dir.path())
        .env("MP_INGEST_CONCURRENCY", "3")
        .args(["config", "show"])
        .assert()
        .success();
    let shown = text(&shown.get_output().stdout);
    assert!(shown.lines().any(|l| l == "  concurrency: 3"), "{shown}");
    assert!(shown.starts_with("# defaults"), "{shown}");
    mp(dir.path())
        .env("MP_INGEST_CONCURRENCY", "lots")
        .args(["config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("\"lots\""));
}

#[test]
fn bad_environment_value_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    mp(dir.path())
        .env("MP_INGEST_CONCURRENCY", "lots")
        .args(["config", "show"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("MP_INGEST_CONCURRENCY"));
}

#[test]
fn config_data_dir_is_where_ingest_writes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mp.yaml"), "data_dir: store\n").unwrap();
    mp(dir.path())
        .args([
            "--config",
            "mp.yaml",
            "-q",
            "ingest",
            "--symbols",
            "AAPL",
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-02",
        ])
        .assert()
        .success();
    assert!(crate::lake::partition_file(&dir.path().join("store"), "AAPL", 2024, 1).is_file());
    assert!(dir.path().join("store").join("marketpipe.db").is_file());
    assert!(!dir.path().join("data").exists());
    // The flag wins over the file.
    mp(dir.path())
        .args(["--config", "mp.yaml", "--data-dir", "other", "jobs", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no jobs yet in other"));
}

#[test]
fn migrate_creates_the_database_and_jobs_list_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    mp(dir.path())
        .args(["jobs", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no jobs yet"));
    mp(dir.path())
        .args(["jobs", "list", "--json"])
        .assert()
        .success()
        .stdout("[]\n");
    mp(dir.path())
        .args(["jobs", "show", "20240102T000000Z-abcdef"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("20240102T000000Z-abcdef"));
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));

    for _ in 0..2 {
        mp(dir.path())
            .arg("migrate")
            .assert()
            .success()
            .stdout(predicate::str::contains("up to date"));
    }
    assert!(dir.path().join("data").join("marketpipe.db").is_file());
    assert!(!dir.path().join("data").join("lake").exists());
    mp(dir.path())
        .args(["jobs", "list", "--json"])
        .assert()
        .success()
        .stdout("[]\n");
}

/// The example configuration shown in docs/configuration.md: the fenced `yaml` block that
/// holds `config_version`, as text.
fn documented_example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");
    let page = std::fs::read_to_string(path).unwrap();
    let mut blocks = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        if line.trim_end() == "```yaml" {
            let mut block = String::new();
            for inner in lines.by_ref() {
                if inner.trim_end() == "```" {
                    break;
                }
                block.push_str(inner);
                block.push('\n');
            }
            blocks.push(block);
        }
    }
    let mut examples = blocks
        .into_iter()
        .filter(|b| b.lines().any(|l| l.starts_with("config_version:")));
    let example = examples
        .next()
        .expect("docs/configuration.md has no ```yaml block with config_version");
    assert!(
        examples.next().is_none(),
        "docs/configuration.md has more than one example configuration"
    );
    example
}

#[test]
fn documented_example_is_what_config_init_prints() {
    let dir = tempfile::tempdir().unwrap();
    let printed = mp(dir.path()).args(["config", "init"]).assert().success();
    let printed = text(&printed.get_output().stdout);
    let documented = documented_example();
    assert!(
        documented == printed,
        "docs/configuration.md's example differs from `mp config init`; paste this into the \
         ```yaml block:\n{printed}"
    );
}

#[test]
fn documented_example_loads_without_error_or_warning() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mp.yaml"), documented_example()).unwrap();
    for args in [
        &["--config", "mp.yaml", "config", "show"][..],
        &["--config", "mp.yaml", "jobs", "list"][..],
    ] {
        let out = mp(dir.path()).args(args).assert().success();
        let stderr = text(&out.get_output().stderr);
        assert!(stderr.is_empty(), "{args:?} wrote to stderr:\n{stderr}");
    }
    let shown = run_ok(dir.path(), &["--config", "mp.yaml", "config", "show"]);
    assert!(shown.starts_with("# from mp.yaml"), "{shown}");
    for line in ["config_version: 1", "data_dir: ./data", "  page_size: 0"] {
        assert!(shown.lines().any(|l| l == line), "{line:?} not in {shown}");
    }
}

#[test]
fn unknown_config_version_warns_and_reads_the_file_as_version_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v99.yaml"),
        "config_version: 99\ningest:\n  concurrency: 2\n",
    )
    .unwrap();
    let out = mp(dir.path())
        .args(["--config", "v99.yaml", "config", "show"])
        .assert()
        .code(0);
    let stderr = text(&out.get_output().stderr);
    for part in [
        "WARN",
        "unknown config_version; reading it as version 1",
        "found=99",
        "expected=1",
    ] {
        assert!(stderr.contains(part), "{part:?} not in stderr:\n{stderr}");
    }
    // The rest of the file is still read.
    let stdout = text(&out.get_output().stdout);
    assert!(stdout.lines().any(|l| l == "  concurrency: 2"), "{stdout}");

    // `-q` keeps warnings; the same warning in JSON names the versions as numbers.
    mp(dir.path())
        .args(["-q", "--config", "v99.yaml", "config", "show"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("unknown config_version"));
    mp(dir.path())
        .args([
            "--log-format",
            "json",
            "--config",
            "v99.yaml",
            "config",
            "show",
        ])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("\"found\":99"))
        .stderr(predicate::str::contains("\"expected\":1"));
}
