//! Exactly-once file output: rows go to per-epoch files first, and into the output only after
//! the checkpoint that covers them is durable.
//!
//! A worker holds the rows of timely time `t` under epoch `e = (t / I + 1) · I`, in memory (an
//! epoch grown large is spilled to `.<output>.e<e>.w<worker>.x<execution>.tmp`). When the
//! worker's output frontier passes a checkpoint `c`, its epochs up to `c` are complete: written
//! out (those in memory together, to `.<output>.c<c>.w<worker>.x<execution>.tmp`), synced and
//! listed in its part of checkpoint `c`. Once the manifest of `c` is durable, [`commit`]
//! appends the files, in epoch order, to the output and records the output's new length and epoch in a
//! marker (`.<output>.commit`, hidden as the epoch files are, written atomically) — truncating first to the marker's length, so
//! a commit interrupted by a crash is simply done again. A restore rolls forward the files its
//! manifest lists and deletes the others: every row lands in the output exactly once.

use super::manifest::{SinkFile, SinkKind};
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

/// Rows a worker holds in memory for epochs not yet checkpointed before it spills the largest
/// epoch to a file of its own.
const SPILL_BYTES: usize = 8 << 20;

/// One epoch's rows: in memory, or spilled to a file once the worker held too many.
enum Held {
    Memory(Vec<u8>),
    Spilled {
        path: PathBuf,
        writer: BufWriter<File>,
        len: u64,
    },
}

/// One worker's rows of one output, by epoch, until a checkpoint covers them.
pub struct EpochFiles {
    output: PathBuf,
    worker: usize,
    execution: u64,
    interval: u64,
    held: BTreeMap<u64, Held>,
    /// Bytes held in memory.
    in_memory: usize,
    /// The first write error: later rows are dropped and the next checkpoint fails with it.
    error: Option<io::Error>,
    /// Rows of times below this (the checkpoint a run restored) were committed before: a
    /// rebuilt differential part produces them again, and they are dropped.
    from: EventTime,
    /// How the files are committed.
    kind: SinkKind,
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
            held: BTreeMap::new(),
            in_memory: 0,
            error: None,
            from,
            kind: SinkKind::Rows,
        }
    }

    /// The same, for an output several processes write: process 0 commits its files.
    pub fn shared(mut self) -> Self {
        self.kind = SinkKind::SharedRows;
        self
    }

    /// The output the rows go to.
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// Whether no rows are held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// `.<output>.<tag>.w<worker>.x<execution>.tmp`.
    fn path(&self, tag: &str) -> PathBuf {
        let name = self
            .output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.output.with_file_name(format!(
            ".{name}.{tag}.w{}.x{}.tmp",
            self.worker, self.execution
        ))
    }

    /// Appends rows of time `time`; an error is kept for the next checkpoint to report.
    pub fn write(&mut self, time: EventTime, rows: &[u8]) {
        if self.error.is_some() || rows.is_empty() || time < self.from {
            return;
        }
        let epoch = epoch_of(time, self.interval);
        match self.held.entry(epoch).or_insert(Held::Memory(Vec::new())) {
            Held::Memory(bytes) => {
                bytes.extend_from_slice(rows);
                self.in_memory += rows.len();
            }
            Held::Spilled { writer, len, .. } => {
                *len += rows.len() as u64;
                if let Err(e) = writer.write_all(rows) {
                    self.error = Some(e);
                }
            }
        }
        if self.in_memory > SPILL_BYTES {
            if let Err(e) = self.spill() {
                self.error = Some(e);
            }
        }
    }

    /// Moves the largest epoch held in memory to a file of its own.
    fn spill(&mut self) -> io::Result<()> {
        let largest = self
            .held
            .iter()
            .filter_map(|(e, h)| match h {
                Held::Memory(bytes) => Some((bytes.len(), *e)),
                Held::Spilled { .. } => None,
            })
            .max();
        let Some((_, epoch)) = largest else {
            return Ok(());
        };
        let path = self.path(&format!("e{epoch}"));
        let mut writer = BufWriter::with_capacity(1 << 16, File::create(&path)?);
        let Some(Held::Memory(bytes)) = self.held.remove(&epoch) else {
            return Ok(());
        };
        writer.write_all(&bytes)?;
        self.in_memory -= bytes.len();
        let len = bytes.len() as u64;
        self.held.insert(epoch, Held::Spilled { path, writer, len });
        Ok(())
    }

    /// Deletes every row held (rows no checkpoint will list).
    pub fn discard(&mut self) {
        for (_, held) in std::mem::take(&mut self.held) {
            if let Held::Spilled { path, .. } = held {
                let _ = fs::remove_file(path);
            }
        }
        self.in_memory = 0;
    }

    /// Syncs and closes an epoch file; returns its entry for the checkpoint.
    fn finish_file(
        &self,
        writer: BufWriter<File>,
        file: PathBuf,
        epoch: u64,
        len: u64,
        starts: Vec<(u64, u64)>,
    ) -> io::Result<SinkFile> {
        writer
            .into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()?;
        Ok(SinkFile {
            output: self.output.clone(),
            epoch,
            file,
            len,
            starts,
            kind: self.kind,
        })
    }

    /// Writes out, syncs and closes the rows of epochs up to `upto`: those held in memory in
    /// one file (`c<upto>`), spilled epochs in their own; returns the files for the checkpoint.
    pub fn close_upto(&mut self, upto: u64) -> io::Result<Vec<SinkFile>> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let later = self.held.split_off(&(upto.saturating_add(1)));
        let done = std::mem::replace(&mut self.held, later);
        let mut files = Vec::new();
        let mut gathered: Option<(PathBuf, BufWriter<File>, u64, u64)> = None;
        let mut starts = Vec::new();
        for (epoch, held) in done {
            match held {
                Held::Memory(bytes) => {
                    self.in_memory -= bytes.len();
                    if gathered.is_none() {
                        let path = self.path(&format!("c{upto}"));
                        let file = File::create(&path)?;
                        gathered = Some((path, BufWriter::with_capacity(1 << 20, file), 0, epoch));
                    }
                    if let Some((_, writer, len, last)) = gathered.as_mut() {
                        starts.push((epoch, *len));
                        writer.write_all(&bytes)?;
                        *len += bytes.len() as u64;
                        *last = epoch;
                    }
                }
                Held::Spilled { path, writer, len } => {
                    files.push(self.finish_file(writer, path, epoch, len, Vec::new())?);
                }
            }
        }
        if let Some((path, writer, len, epoch)) = gathered {
            files.push(self.finish_file(writer, path, epoch, len, starts)?);
        }
        if !files.is_empty() {
            if let Some(dir) = self.output.parent().filter(|d| !d.as_os_str().is_empty()) {
                super::store::sync_dir(dir)?;
            }
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
    output.with_file_name(format!(".{name}{suffix}"))
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
    let (markers, rows): (Vec<&SinkFile>, Vec<&SinkFile>) = files
        .iter()
        .filter(|f| f.epoch <= upto)
        .partition(|f| f.kind == SinkKind::Marker);
    let mut by_output: BTreeMap<&Path, BTreeMap<u64, Vec<&SinkFile>>> = BTreeMap::new();
    for f in rows {
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
    // Markers last: a reader that sees one finds every row it stands for.
    for marker in markers {
        write_durably(&marker.output, format!("{}\n", marker.epoch).as_bytes())?;
    }
    Ok(())
}

/// The epoch a marker written by [`commit`] stands for (`None`: not one of ours).
fn marker_epoch(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
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
    remove_unlisted(output, &[], u64::MAX);
    match fs::remove_file(marker_path(output)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    File::create(output)?.sync_all()
}

/// Splits an epoch file's name, `.<output>.<e|c><n>.w<worker>.x<execution>.tmp`, into the
/// output's name and the execution that wrote it.
fn epoch_file_parts(name: &str) -> Option<(&str, u64)> {
    let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (rest, execution) = rest.rsplit_once('.')?;
    let execution = execution.strip_prefix('x')?.parse().ok()?;
    let (rest, worker) = rest.rsplit_once('.')?;
    worker.strip_prefix('w')?.parse::<usize>().ok()?;
    let (output, tag) = rest.rsplit_once('.')?;
    let digits = tag.strip_prefix(['e', 'c'])?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then_some((output, execution))
}

/// The execution that wrote the epoch file named `name` (`None`: not an epoch file).
pub fn epoch_file_execution(name: &str) -> Option<u64> {
    epoch_file_parts(name).map(|(_, execution)| execution)
}

/// Deletes the epoch files of `output` that are not in `keep` and were written before
/// execution `before` (rows of epochs no durable checkpoint covers: they will be produced
/// again; the running execution's own files are never touched).
pub fn remove_unlisted(output: &Path, keep: &[SinkFile], before: u64) {
    let Some(name) = output.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let file = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let garbage = epoch_file_parts(&file)
            .is_some_and(|(of, execution)| of == name && execution < before)
            && !keep
                .iter()
                .any(|k| k.file == path || k.file.file_name() == path.file_name());
        if garbage {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Brings every output under `dir` (a partitioned file writer's tree, whose outputs are not
/// all known) to checkpoint `epoch`, as [`restore`] does for one: outputs committed past it are
/// cut back, `listed` files are committed, epoch files of earlier executions that it does not
/// list are deleted, and markers of later checkpoints are removed.
pub fn restore_tree(dir: &Path, listed: &[SinkFile], epoch: u64, execution: u64) -> io::Result<()> {
    let mut outputs = std::collections::BTreeSet::new();
    let mut stale_markers = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(path);
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(output) = name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".commit"))
            {
                outputs.insert(folder.join(output));
            } else if let Some((output, _)) = epoch_file_parts(&name) {
                outputs.insert(folder.join(output));
            } else if name == "_SUCCESS" && marker_epoch(&path).is_some_and(|e| e > epoch) {
                stale_markers.push(path);
            }
        }
    }
    for marker in stale_markers {
        fs::remove_file(marker)?;
    }
    for output in &outputs {
        restore(output, listed, epoch)?;
        remove_unlisted(output, listed, execution);
    }
    let markers: Vec<SinkFile> = listed
        .iter()
        .filter(|f| f.kind == SinkKind::Marker && f.output.starts_with(dir))
        .cloned()
        .collect();
    commit(&markers, epoch)
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
        let mut first = a.close_upto(1000).unwrap();
        first.extend(b.close_upto(1000).unwrap());
        a.write(1500, b"a2\n");
        b.write(2500, b"b3\n");
        let mut second = a.close_upto(2000).unwrap();
        second.extend(b.close_upto(2000).unwrap());
        assert_eq!((first.len(), second.len()), (2, 1));
        commit(&first, 1000).unwrap();
        assert_eq!(fs::read_to_string(&output).unwrap(), "a1\nb1\n");
        // A crash after appending epoch 2000 but before the marker: simulate by appending junk.
        fs::OpenOptions::new()
            .append(true)
            .open(&output)
            .unwrap()
            .write_all(b"junk")
            .unwrap();
        commit(&second, 2000).unwrap();
        commit(&second, 2000).unwrap(); // again: nothing changes
        assert_eq!(fs::read_to_string(&output).unwrap(), "a1\nb1\na2\n");
        let mark = committed(&output).unwrap();
        assert_eq!(
            (mark.epoch, mark.len, mark.history.clone()),
            (2000, 9, vec![(1000, 6)])
        );
        // Epoch 3000 was never checkpointed: a restore deletes it.
        let late = b.close_upto(3000).unwrap();
        assert!(late[0].file.exists());
        remove_unlisted(&output, &[], 1);
        assert!(
            late[0].file.exists(),
            "the running execution's own files stay"
        );
        remove_unlisted(&output, &[], 2);
        assert!(!late[0].file.exists());
        // Restoring checkpoint 1000 (2000 found damaged) takes its rows back out.
        restore(&output, &first, 1000).unwrap();
        assert_eq!(fs::read_to_string(&output).unwrap(), "a1\nb1\n");
        assert_eq!(committed(&output).unwrap().epoch, 1000);
    }

    #[test]
    fn a_tree_of_outputs_goes_back_to_the_restored_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("p=a"), dir.path().join("p=b"));
        fs::create_dir_all(&a).unwrap();
        fs::create_dir_all(&b).unwrap();
        let (out_a, out_b) = (a.join("part-0.jsonl"), b.join("part-0.jsonl"));
        let mut files_a = EpochFiles::new(&out_a, 0, 1, 1000, 0).shared();
        let mut files_b = EpochFiles::new(&out_b, 0, 1, 1000, 0).shared();
        files_a.write(10, b"a1\n");
        let first = files_a.close_upto(1000).unwrap();
        let marker = SinkFile {
            output: a.join("_SUCCESS"),
            epoch: 1000,
            file: PathBuf::new(),
            len: 0,
            starts: Vec::new(),
            kind: SinkKind::Marker,
        };
        let mut at_1000 = first.clone();
        at_1000.push(marker);
        // Checkpoint 1000 is restored; 2000 (damaged) had committed more to both outputs.
        commit(&at_1000, 1000).unwrap();
        files_a.write(1500, b"a2\n");
        files_b.write(1500, b"b2\n");
        let mut second = files_a.close_upto(2000).unwrap();
        second.extend(files_b.close_upto(2000).unwrap());
        commit(&second, 2000).unwrap();
        write_durably(&b.join("_SUCCESS"), b"2000\n").unwrap();
        // Execution 1 left an epoch file no checkpoint lists.
        files_b.write(2500, b"b3\n");
        let stray = files_b.close_upto(3000).unwrap();
        restore_tree(dir.path(), &at_1000, 1000, 2).unwrap();
        assert_eq!(fs::read_to_string(&out_a).unwrap(), "a1\n");
        assert_eq!(fs::read_to_string(&out_b).unwrap(), "");
        assert!(
            a.join("_SUCCESS").exists(),
            "the restored checkpoint's marker stays"
        );
        assert!(
            !b.join("_SUCCESS").exists(),
            "a later checkpoint's marker goes"
        );
        assert!(!stray[0].file.exists(), "an unlisted epoch file goes");
    }

    #[test]
    fn a_large_epoch_spills_to_its_own_file() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("rows.jsonl");
        let mut files = EpochFiles::new(&output, 0, 1, 1000, 500);
        files.write(100, b"below the restored checkpoint: dropped\n");
        let row = vec![b'x'; 1 << 20];
        for _ in 0..9 {
            files.write(700, &row);
        }
        files.write(1200, b"small\n");
        assert_eq!(files.in_memory, 6, "the large epoch went to a file");
        let closed = files.close_upto(2000).unwrap();
        assert_eq!(closed.len(), 2);
        commit(&closed, 2000).unwrap();
        assert_eq!(fs::metadata(&output).unwrap().len(), 9 * (1 << 20) + 6);
    }
}
