//! Checks a run makes before doing any work, so that a mistake costs a one-line error rather than
//! a lost input or a run whose results cannot be saved:
//! - an output that is an input (`--source file:x --sink file:x` would truncate the input), or
//!   two outputs that are one file (they would overwrite each other) — [`ensure_distinct`];
//! - a Kafka sink topic that is the source topic (every row would be read back as input);
//! - a report or histogram file that cannot be written — [`PreparedFile`] creates a temporary
//!   file beside it up front and renames it into place at the end;
//! - an output directory that cannot be created or written — [`prepare_dir`].

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a run was refused before it started.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// An output would overwrite an input.
    #[error("{output} {path} is {input}: refusing to overwrite the input")]
    OverwritesInput {
        /// What the output is (`the sink`, `the dead-letter file`, …).
        output: String,
        /// The output path as given.
        path: String,
        /// The input, as given (`the input file in.jsonl`).
        input: String,
    },
    /// A pipeline parameter is unknown or unusable.
    #[error("{0}")]
    Param(String),
    /// The Kafka sink topic is the source topic.
    #[error("the sink {0} is the source topic: every row would be read back as input")]
    SinkIsSource(String),
    /// Two outputs are the same file.
    #[error("{first} and {second} are the same file ({path}): give each its own path")]
    SameOutput {
        /// One output.
        first: String,
        /// The other.
        second: String,
        /// The path.
        path: String,
    },
    /// A destination cannot be written.
    #[error("cannot write {what} {path}")]
    Unwritable {
        /// What it is.
        what: String,
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl PreflightError {
    /// Whether the error is a mistake on the command line (exit code 2) rather than a resource
    /// that is unavailable (3).
    pub fn is_usage(&self) -> bool {
        !matches!(self, PreflightError::Unwritable { .. })
    }
}

/// The kind of error alone: tempfile's errors also name the temporary file, which means
/// nothing to the user.
fn plain(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), e.kind().to_string())
}

/// Creates a temporary file in `dir`, or says plainly why not.
fn temp_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no such directory {}", dir.display()),
        ));
    }
    tempfile::Builder::new()
        .prefix(".sluice-")
        .tempfile_in(dir)
        .map_err(plain)
}

/// `path` made absolute, with its parent directory resolved (symbolic links, `..`) when that
/// exists: two spellings of one not-yet-created file compare equal.
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or(absolute),
        _ => absolute,
    }
}

/// Whether `a` and `b` name one file: the same file on disk (hard links, symbolic links), or
/// the same resolved path for files not created yet.
pub fn same_file(a: &Path, b: &Path) -> bool {
    same_file::is_same_file(a, b).unwrap_or(false) || resolved(a) == resolved(b)
}

/// Refuses outputs that are one of the `inputs` or each other. Each entry is `(what, path)`,
/// e.g. `("the sink", "out.jsonl")`.
pub fn ensure_distinct(
    inputs: &[(&str, &Path)],
    outputs: &[(&str, &Path)],
) -> Result<(), PreflightError> {
    for (i, (what, path)) in outputs.iter().enumerate() {
        if let Some((input, input_path)) = inputs.iter().find(|(_, input)| same_file(input, path)) {
            return Err(PreflightError::OverwritesInput {
                output: what.to_string(),
                path: path.display().to_string(),
                input: format!("{input} {}", input_path.display()),
            });
        }
        if let Some((other, _)) = outputs[..i].iter().find(|(_, o)| same_file(o, path)) {
            return Err(PreflightError::SameOutput {
                first: other.to_string(),
                second: what.to_string(),
                path: path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// A file written at the end of a run, checked at its start: a temporary file is created in the
/// target's directory now (so an unwritable place fails before any work), filled and renamed
/// over the target at the end (so readers never see half a file). Dropped unwritten, it leaves
/// nothing behind.
pub struct PreparedFile {
    path: PathBuf,
    temp: tempfile::NamedTempFile,
}

impl PreparedFile {
    /// Prepares `path`; `what` names it in errors (`the report file`).
    pub fn new(path: &Path, what: &str) -> Result<Self, PreflightError> {
        let unwritable = |source| PreflightError::Unwritable {
            what: what.to_string(),
            path: path.display().to_string(),
            source,
        };
        if path.is_dir() {
            return Err(PreflightError::Unwritable {
                what: what.to_string(),
                path: path.display().to_string(),
                source: std::io::Error::other("it is a directory"),
            });
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let temp = temp_in(dir).map_err(unwritable)?;
        Ok(PreparedFile {
            path: path.to_path_buf(),
            temp,
        })
    }

    /// The target path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` and renames the file into place.
    pub fn commit(mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.temp.write_all(bytes)?;
        self.temp.flush()?;
        self.temp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// Creates `dir` (and its parents) if needed and checks that files can be created in it.
pub fn prepare_dir(dir: &Path, what: &str) -> Result<(), PreflightError> {
    let unwritable = |source| PreflightError::Unwritable {
        what: what.to_string(),
        path: dir.display().to_string(),
        source: plain(source),
    };
    std::fs::create_dir_all(dir).map_err(unwritable)?;
    temp_in(dir).map(drop).map_err(unwritable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_may_not_be_an_input_or_another_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, "x\n").unwrap();
        let link = dir.path().join("link.jsonl");
        std::fs::hard_link(&input, &link).unwrap();
        let dotted = dir.path().join(".").join("in.jsonl");
        let fresh = dir.path().join("out.jsonl");
        let inputs = [("the input file", input.as_path())];
        for clash in [&input, &link, &dotted] {
            let e = ensure_distinct(&inputs, &[("the sink", clash)]).unwrap_err();
            assert!(
                e.to_string().contains("refusing to overwrite the input"),
                "{e}"
            );
            assert!(e.is_usage());
        }
        let e = ensure_distinct(
            &inputs,
            &[("the sink", &fresh), ("the dead-letter file", &fresh)],
        )
        .unwrap_err();
        assert!(e
            .to_string()
            .starts_with("the sink and the dead-letter file are the same file"));
        ensure_distinct(&inputs, &[("the sink", &fresh)]).unwrap();
    }

    #[test]
    fn prepared_files_fail_early_and_appear_whole() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir/r.json");
        let e = PreparedFile::new(&missing, "the report file")
            .err()
            .unwrap();
        assert!(!e.is_usage());
        assert!(
            e.to_string().starts_with("cannot write the report file"),
            "{e}"
        );
        assert!(PreparedFile::new(dir.path(), "the report file").is_err());
        let target = dir.path().join("r.json");
        let prepared = PreparedFile::new(&target, "the report file").unwrap();
        assert!(!target.exists());
        prepared.commit(b"{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "{}\n");
        // Nothing else is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        prepare_dir(&dir.path().join("a/b"), "the output directory").unwrap();
    }
}
