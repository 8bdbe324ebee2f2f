//! `node_exporter`'s textfile collector: a `.prom` file replaced atomically, so that the
//! collector never reads half of it.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use marketpipe_ports::telemetry::Series;

use crate::render::render;

/// The textfile could not be written; the previous file, if any, is unchanged.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the metrics textfile {}: {what}: {source}", path.display())]
pub struct TextfileError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// The step that failed.
    pub what: &'static str,
    /// The operating system's error.
    #[source]
    pub source: std::io::Error,
}

/// Writes `series` to `path` in the exposition format: a temporary file beside it (a
/// dot-name the collector skips), fsynced, renamed over `path`, the directory fsynced. On
/// failure the temporary file is removed.
pub fn write_textfile(path: &Path, series: &[Series]) -> Result<(), TextfileError> {
    let fail = |what, p: &Path| {
        let p = p.to_path_buf();
        move |source| TextfileError {
            path: p,
            what,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(fail("creating the temporary file", &temp))?;
        file.write_all(render(series).as_bytes())
            .map_err(fail("writing the temporary file", &temp))?;
        file.sync_all()
            .map_err(fail("syncing the temporary file", &temp))?;
        drop(file);
        fs::rename(&temp, path).map_err(fail("renaming the temporary file into place", path))?;
        // The rename is durable once the directory is.
        if let Ok(d) = fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use marketpipe_ports::telemetry::SeriesValue;

    #[test]
    fn replaces_the_file_atomically_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mp.prom");
        fs::write(&path, "old\n").unwrap();
        let series = vec![Series {
            name: "marketpipe_jobs_total".into(),
            labels: vec![("command".into(), "ingest".into())],
            value: SeriesValue::Counter { value: 1 },
        }];
        write_textfile(&path, &series).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("marketpipe_jobs_total{command=\"ingest\"} 1\n"),
            "{text}"
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("mp.prom")]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent").join("mp.prom");
        let err = write_textfile(&path, &[]).unwrap_err();
        assert!(err.to_string().contains("absent"), "{err}");
        assert!(!dir.path().join("absent").exists());
    }
}
