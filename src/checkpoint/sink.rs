//! Exactly-once file output: rows go to per-epoch files first, and into the output only after
//! the checkpoint that covers them is durable.
//!
//! A worker writes the rows of timely time `t` to the file of epoch `e = (t / I + 1) · I`
//! (`<output>.e<e>.w<worker>.x<execution>.tmp`). When the worker's output frontier passes a
//! checkpoint `c`, its files of epochs up to `c` are complete: synced, closed and listed in its
//! part of checkpoint `c`. Once the manifest of `c` is durable, [`commit`] appends each epoch's
//! files, in epoch order, to the output and records the output's new length and epoch in a
//! marker (`<output>.commit`, written atomically) — truncating first to the marker's length, so
//! a commit interrupted by a crash is simply done again. A restore rolls forward the files its
//! manifest lists and deletes the others: every row lands in the output exactly once.

use super::manifest::SinkFile;
use super::store::write_durably;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

/// The epoch of rows at time `t`: the first checkpoint after `t`.
pub fn epoch_of(t: EventTime, interval: u64) -> u64 {
    (t / interval + 1).saturating_mul(interval)
}

/// One worker's open epoch files for one output.
pub struct EpochFiles {
    output: PathBuf,
    worker: usize,
    execution: u64,
    interval: u64,
    open: BTreeMap<u64, (PathBuf, BufWriter<File>, u64)>,
    /// The first write error: later rows are dropped and the next checkpoint fails with it.
    error: Option<io::Error>,
    /// Rows of times below this (the checkpoint a run restored) were committed before: a
    /// rebuilt differential part produces them again, and they are dropped.
    from: EventTime,
}

impl EpochFiles {
    /// Epoch files of worker `worker` (execution `execution`) for `output`, for rows of times
    /// at or after `from`.
    pub fn new(
        output: &Path,
        worker: usize,
        execution: u64,
        interval: u64,
        from: EventTime,
    ) -> Self {
        EpochFiles {
            output: output.to_path_buf(),
            worker,
            execution,
            interval: interval.max(1),
            open: BTreeMap::new(),
            error: None,
            from,
        }
    }

    fn path(&self, epoch: u64) -> PathBuf {
        let name = self
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.output.with_file_name(format!(
            "{name}.e{epoch}.w{}.x{}.tmp",
            self.worker, self.execution
        ))
    }

    /// Appends rows of time `time`; an error is kept for the next checkpoint to report.
    pub fn write(&mut self, time: EventTime, rows: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.append(time, rows) {
            self.error = Some(e);
        }
    }

    fn append(&mut self, time: EventTime, rows: &[u8]) -> io::Result<()> {
        if rows.is_empty() || time < self.from {
            return Ok(());
        }
        let epoch = epoch_of(time, self.interval);
        if !self.open.contains_key(&epoch) {
            let path = self.path(epoch);
            let file = File::create(&path)?;
            self.open
                .insert(epoch, (path, BufWriter::with_capacity(1 << 20, file), 0));
        }
        let (_, writer, len) = self.open.get_mut(&epoch).expect("just opened");
        writer.write_all(rows)?;
        *len += rows.len() as u64;
        Ok(())
    }

    /// Closes and deletes every open file (rows no checkpoint will list).
    pub fn discard(&mut self) {
        for (_, (path, _, _)) in std::mem::take(&mut self.open) {
            let _ = fs::remove_file(path);
        }
    }

    /// Syncs and closes the files of epochs up to `upto`; returns them for the checkpoint.
    pub fn close_upto(&mut self, upto: u64) -> io::Result<Vec<SinkFile>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let later = self.open.split_off(&(upto.saturating_add(1)));
        let done = std::mem::replace(&mut self.open, later);
        let mut files = Vec::new();
        for (epoch, (path, writer, len)) in done {
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            files.push(SinkFile {
                output: self.output.clone(),
                epoch,
                file: path,
                len,
            });
        }
        if let Some(dir) = self.output.parent().filter(|d| !d.as_os_str().is_empty()) {
            super::store::sync_dir(dir)?;
        }
        Ok(files)
    }
}

/// What an output's marker records: the last epoch committed and the output's length then,
/// with the recent history of both, so that a restore from an older checkpoint (the newest
/// was damaged) can take the output back to it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The last epoch whose rows are in the output.
    pub epoch: u64,
    /// The output's length after it.
    pub len: u64,
    /// Earlier `(epoch, len)`, oldest first, at most [`HISTORY`].
    #[serde(default)]
    pub history: Vec<(u64, u64)>,
}

/// How many earlier commits a marker remembers.
pub const HISTORY: usize = 64;

impl Committed {
    fn advance(&mut self, epoch: u64, len: u64) {
        if self.epoch > 0 || self.len > 0 {
            self.history.push((self.epoch, self.len));
            if self.history.len() > HISTORY {
                self.history.remove(0);
            }
        }
        self.epoch = epoch;
        self.len = len;
    }

    /// The state after the last commit at or before `epoch`; `None` if the history no longer
    /// reaches back that far.
    fn back_to(&self, epoch: u64) -> Option<Committed> {
        if self.epoch <= epoch {
            return Some(self.clone());
        }
        let at = self.history.iter().rposition(|(e, _)| *e <= epoch);
        match at {
            Some(i) => {
                let (e, len) = self.history[i];
                Some(Committed {
                    epoch: e,
                    len,
                    history: self.history[..i].to_vec(),
                })
            }
            // Nothing was committed at or before `epoch`: the output was empty then — if the
            // history still holds the first commit.
            None if self.history.len() < HISTORY => Some(Committed::default()),
            None => None,
        }
    }
}

fn sibling(output: &Path, suffix: &str) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{name}{suffix}"))
}

fn marker_path(output: &Path) -> PathBuf {
    sibling(output, ".commit")
}

/// The output's commit marker (nothing committed yet when there is none).
pub fn committed(output: &Path) -> io::Result<Committed> {
    match fs::read(marker_path(output)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Committed::default()),
        Err(e) => Err(e),
    }
}

/// Holds an exclusive lock on an output's commits while alive: processes restoring and
/// committing the same output take turns.
struct OutputLock(File);

impl OutputLock {
    fn take(output: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(sibling(output, ".lock"))?;
        file.lock()?;
        Ok(OutputLock(file))
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Commits `files` (any outputs, any order) up to epoch `upto`: per output, epoch by epoch,
/// truncate the output to its marker's length, append the epoch's files, sync, move the marker,
/// delete the files. Files of epochs already committed are deleted. Safe to repeat after a
/// crash at any point.
pub fn commit(files: &[SinkFile], upto: u64) -> io::Result<()> {
    let mut by_output: BTreeMap<&Path, BTreeMap<u64, Vec<&SinkFile>>> = BTreeMap::new();
    for f in files.iter().filter(|f| f.epoch <= upto) {
        by_output
            .entry(&f.output)
            .or_default()
            .entry(f.epoch)
            .or_default()
            .push(f);
    }
    for (output, epochs) in by_output {
        let _lock = OutputLock::take(output)?;
        let mut mark = committed(output)?;
        for (epoch, mut files) in epochs {
            files.sort_by(|a, b| a.file.cmp(&b.file));
            files.dedup_by(|a, b| a.file == b.file);
            if epoch > mark.epoch {
                let out = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(output)?;
                out.set_len(mark.len)?;
                let mut out = BufWriter::with_capacity(1 << 20, out);
                out.seek(io::SeekFrom::Start(mark.len))?;
                let mut len = mark.len;
                for f in &files {
                    let mut from = File::open(&f.file)?;
                    len += io::copy(&mut from, &mut out)?;
                }
                let out = out.into_inner().map_err(|e| e.into_error())?;
                out.sync_all()?;
                mark.advance(epoch, len);
                write_durably(&marker_path(output), &serde_json::to_vec(&mark)?)?;
            }
            for f in files {
                let _ = fs::remove_file(&f.file);
            }
        }
    }
    Ok(())
}

/// Brings `output` to exactly the rows of the epochs up to `epoch`, the checkpoint a run
/// restores: rows committed after it (from a newer checkpoint found damaged) are cut off, rows
/// after the marker (a commit cut short) too, and `listed` — the epoch files the checkpoint
/// lists — are committed. Safe to repeat, and to run from several processes at once.
pub fn restore(output: &Path, listed: &[SinkFile], epoch: u64) -> io::Result<()> {
    {
        let _lock = OutputLock::take(output)?;
        let mark = committed(output)?;
        let Some(back) = mark.back_to(epoch) else {
            return Err(io::Error::other(format!(
                "{} was committed up to {} and its history no longer reaches back to checkpoint {epoch}",
                output.display(),
                mark.epoch
            )));
        };
        match fs::metadata(output) {
            Ok(meta) if meta.len() > back.len => {
                OpenOptions::new()
                    .write(true)
                    .open(output)?
                    .set_len(back.len)?;
            }
            Ok(meta) if meta.len() < back.len => {
                return Err(io::Error::other(format!(
                    "{} is shorter ({} bytes) than its commit marker says ({})",
                    output.display(),
                    meta.len(),
                    back.len
                )));
            }
            _ => {}
        }
        if back != mark {
            write_durably(&marker_path(output), &serde_json::to_vec(&back)?)?;
        }
    }
    let mine: Vec<SinkFile> = listed
        .iter()
        .filter(|f| f.output == output)
        .cloned()
        .collect();
    commit(&mine, epoch)
}

/// Starts `output` afresh: no rows, no marker, no epoch files.
pub fn reset(output: &Path) -> io::Result<()> {
    let _lock = OutputLock::take(output)?;
    remove_unlisted(output, &[]);
    match fs::remove_file(marker_path(output)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    File::create(output)?.sync_all()
}

/// Deletes the epoch files of `output` that are not in `keep` (rows of epochs no durable
/// checkpoint covers: they will be produced again).
pub fn remove_unlisted(output: &Path, keep: &[SinkFile]) {
    let (Some(name), dir) = (output.file_name(), output.parent()) else {
        return;
    };
    let prefix = format!("{}.e", name.to_string_lossy());
    let dir = match dir {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let file = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if file.starts_with(&prefix)
            && file.ends_with(".tmp")
            && !keep
                .iter()
                .any(|k| k.file == path || k.file.file_name() == path.file_name())
        {
            let _ = fs::remove_file(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_commit_once_in_order_even_when_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("rows.jsonl");
        let mut a = EpochFiles::new(&output, 0, 1, 1000, 0);
        let mut b = EpochFiles::new(&output, 1, 1, 1000, 0);
        a.write(10, b"a1\n");
        b.write(999, b"b1\n");
        a.write(1500, b"a2\n");
        b.write(2500, b"b3\n");
        let mut files = a.close_upto(2000).unwrap();
        files.extend(b.close_upto(2000).unwrap());
        assert_eq!(files.len(), 3);
        commit(&files, 1000).unwrap();
        assert_eq!(fs::read_to_string(&output).unwrap(), "a1\nb1\n");
        // A crash after appending epoch 2000 but before the marker: simulate by appending junk.
        fs::OpenOptions::new()
            .append(true)
            .open(&output)
            .unwrap()
            .write_all(b"junk")
            .unwrap();
        commit(&files, 2000).unwrap();
        commit(&files, 2000).unwrap(); // again: nothing changes
        assert_eq!(fs::read_to_string(&output).unwrap(), "a1\nb1\na2\n");
        let mark = committed(&output).unwrap();
        assert_eq!(
            (mark.epoch, mark.len, mark.history),
            (2000, 9, vec![(1000, 6)])
        );
        // Epoch 3000 was never checkpointed: a restore deletes it.
        let late = b.close_upto(3000).unwrap();
        assert!(late[0].file.exists());
        remove_unlisted(&output, &[]);
        assert!(!late[0].file.exists());
    }
}
