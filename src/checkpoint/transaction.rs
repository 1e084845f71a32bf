//! Exactly-once output to a destination with transactions (a Kafka topic): the rows of each
//! checkpoint are committed in one transaction together with a progress record saying which
//! checkpoint they complete, so a restart can tell whether the commit happened.
//!
//! Rows take the same path as to a file output: every worker writes its rows to per-epoch
//! files ([`EpochFiles`](super::sink::EpochFiles)) in the checkpoint directory, synced and
//! listed in its part of each checkpoint — a write-ahead log that every process of the mesh
//! shares. Once checkpoint `c`'s manifest is durable, process 0 alone commits: one
//! transaction with every listed file of the epochs after the last committed checkpoint, and
//! the progress record `c`; then it deletes those files.
//!
//! **Recovery.** Process 0 opens the destination with the run's transactional id (the same
//! for every execution of a run, recorded in each manifest): this fences any producer of an
//! earlier execution still alive and aborts its open transaction. The progress record gives
//! the last committed checkpoint `f`:
//! - `f < c` (the crash came between the manifest and the commit): the files that manifest `c`
//!   lists for the epochs after `f` are committed now, with progress `c` — rolled forward,
//!   nothing produced twice, nothing lost, no matter where the crash hit;
//! - `f = c`: nothing to do;
//! - `f > c` (the newest checkpoint was damaged and an older one restored): the epochs up to
//!   `f` are in the destination already; their rows, produced again, are skipped when
//!   committing (the run is deterministic, so they are the same rows).
//!
//! **Object stores.** With checkpoints in an object store there is no shared directory: each
//! worker writes its epoch files to a local directory (`$TMPDIR/sluice-<run>/<name>`), and
//! when it lists them in a part it first puts them in the store (`sinks/<name>/<file>`), named
//! there by a relative path; process 0 fetches them to commit, then deletes them.
//!
//! **Off the dataflow's path.** The commits run on a thread of their own ([`Background`]), so no
//! worker waits on the destination. Until checkpoint `c` is committed, every worker keeps
//! listing its files of the epochs up to `c` in its next parts (the commit's progress is in
//! `DIR/sink-committed-x<e>`): a crash before the commit finds them in whichever manifest it
//! restores, and rolls them forward.

use super::manifest::SinkFile;
use super::store::Store;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// A destination that commits rows and a progress record atomically.
pub trait Transactional: Send {
    /// Fences earlier producers of this run, aborts their open transaction, and returns the
    /// last checkpoint whose rows are committed (0: none).
    fn recover(&mut self) -> io::Result<u64>;

    /// Commits, in one transaction, the rows of `files` (complete JSON lines; in order, and in
    /// each file from byte `skip` on) and the progress record `epoch` of execution
    /// `execution`. Returns how many rows it committed.
    fn commit(&mut self, epoch: u64, execution: u64, files: &[(PathBuf, u64)]) -> io::Result<u64>;
}

/// Opens a transactional destination for run `run` (its transactional id is derived from it).
pub type OpenTransactional = Box<dyn FnOnce(&str) -> io::Result<Box<dyn Transactional>> + Send>;

/// A run's transactional sink, as the driver describes it.
pub struct TransactionalSink {
    /// A short name (e.g. `kafka-<topic>`): its epoch files live under `DIR/sinks/<name>`.
    pub name: String,
    /// Opens it (process 0 only).
    pub open: OpenTransactional,
}

/// The name in the checkpoint store of a transactional sink's epoch file `file` (its output
/// is `output`): `sinks/<name>/<file name>`.
pub fn store_name(output: &Path, file: &Path) -> String {
    format!(
        "{}/{}",
        store_dir(output),
        file.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Where in the checkpoint store a transactional sink's epoch files are: `sinks/<name>`.
fn store_dir(output: &Path) -> String {
    format!(
        "sinks/{}",
        output.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// Process 0's committer of a transactional sink.
pub struct Committer {
    /// Where its epoch files are (`DIR/sinks/<name>`; with an object store, a local directory
    /// the files are fetched to).
    pub output: PathBuf,
    /// With checkpoints in an object store: the store, where closed epoch files are kept
    /// (named by relative paths).
    remote: Option<Store>,
    destination: Box<dyn Transactional>,
    /// The last checkpoint committed.
    committed: u64,
    /// Rows of epochs up to this are in the destination already (see the module's `f > c`).
    floor: u64,
}

impl Committer {
    /// Opens `sink` for run `run`, recovers it and brings it to checkpoint `restored` (the
    /// checkpoint this execution resumes from and the files it lists), or to a fresh start.
    pub fn start(
        output: PathBuf,
        open: OpenTransactional,
        run: &str,
        restored: Option<(u64, &[SinkFile])>,
        execution: u64,
        remote: Option<Store>,
    ) -> io::Result<Self> {
        let mut destination = open(run)?;
        let last = destination.recover()?;
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut committer = Committer {
            output,
            remote,
            destination,
            committed: 0,
            floor: 0,
        };
        // A new run has nothing to do: the progress of earlier runs (another transactional id)
        // is theirs.
        if let Some((c, listed)) = restored {
            committer.committed = last.min(c);
            if last > c {
                tracing::warn!(
                    "the sink committed checkpoint {last}, newer than the restored {c}: rows up to {last} are not written again"
                );
                committer.floor = last;
                committer.committed = last;
            } else if last < c {
                let n = committer.commit(c, execution, listed)?;
                tracing::info!(
                    "rolled the sink forward from checkpoint {last} to {c}: {n} row(s) committed"
                );
            }
        }
        // Every file left is committed or of no checkpoint.
        super::sink::remove_unlisted(&committer.output, &[], execution);
        if let Some(store) = &committer.remote {
            let dir = store_dir(&committer.output);
            for name in store.files_in(&dir) {
                if super::sink::epoch_file_execution(&name).is_some_and(|e| e < execution) {
                    store.remove_file(&format!("{dir}/{name}"));
                }
            }
        }
        Ok(committer)
    }

    /// A local copy of epoch file `file`: itself, or fetched from the store.
    fn local(&self, file: &Path) -> io::Result<PathBuf> {
        match &self.remote {
            Some(store) if file.is_relative() => {
                let name = file.to_string_lossy();
                let bytes = store.get_file(&name).map_err(|e| {
                    io::Error::new(e.kind(), format!("the sink's epoch file {name}: {e}"))
                })?;
                let local = self
                    .output
                    .with_file_name(file.file_name().unwrap_or_default());
                std::fs::write(&local, bytes)?;
                Ok(local)
            }
            _ => Ok(file.to_path_buf()),
        }
    }

    /// Commits checkpoint `c`: every file of `listed` for this sink with epochs after the last
    /// commit (and the floor), in epoch order; then deletes them. A checkpoint with no new rows
    /// is not committed (nothing to make visible). Returns the rows committed.
    pub fn commit(&mut self, c: u64, execution: u64, listed: &[SinkFile]) -> io::Result<u64> {
        if c <= self.committed {
            return Ok(0);
        }
        let after = self.committed.max(self.floor);
        let mut files: Vec<&SinkFile> = listed
            .iter()
            .filter(|f| f.output == self.output && f.epoch > after && f.epoch <= c)
            .collect();
        files.sort_by(|a, b| (a.epoch, &a.file).cmp(&(b.epoch, &b.file)));
        files.dedup_by(|a, b| a.file == b.file);
        let mut parts: Vec<(PathBuf, u64)> = Vec::new();
        for f in files.iter().filter(|f| f.len > 0) {
            if let Some(skip) = f.skip_through(self.floor) {
                parts.push((self.local(&f.file)?, skip));
            }
        }
        let rows = if parts.is_empty() {
            0
        } else {
            self.destination.commit(c, execution, &parts)?
        };
        // Every file of the epochs up to `c` is in the destination now, or had no rows.
        self.committed = c;
        for (local, _) in &parts {
            let _ = std::fs::remove_file(local);
        }
        for f in files {
            match &self.remote {
                Some(store) if f.file.is_relative() => store.remove_file(&f.file.to_string_lossy()),
                _ => {
                    let _ = std::fs::remove_file(&f.file);
                }
            }
        }
        Ok(rows)
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if self.remote.is_some() {
            // The local directory epoch files pass through; gone once empty.
            if let Some(dir) = self.output.parent() {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// What the committer thread has done.
#[derive(Default)]
struct Progress {
    /// The last checkpoint handled (committed, or nothing to commit).
    handled: u64,
    /// Why committing failed (the thread stops: the run fails, and a restart rolls forward).
    error: Option<String>,
}

/// A [`Committer`] on a thread of its own.
pub struct Background {
    jobs: Option<mpsc::Sender<(u64, u64, Vec<SinkFile>)>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn lock(progress: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    progress.lock().unwrap_or_else(|p| p.into_inner())
}

impl Background {
    /// Starts `committer` on a thread; each checkpoint it handles is recorded in `store` for
    /// execution `execution` (so that workers stop listing its files).
    pub fn spawn(mut committer: Committer, store: Store, execution: u64) -> io::Result<Self> {
        store.set_sink_committed(execution, committer.committed)?;
        let (jobs, queue) = mpsc::channel::<(u64, u64, Vec<SinkFile>)>();
        let progress = Arc::new((Mutex::new(Progress::default()), Condvar::new()));
        let shared = Arc::clone(&progress);
        let thread = std::thread::Builder::new()
            .name("sluice-sink-commit".into())
            .spawn(move || {
                for (c, execution, files) in queue {
                    let result = committer
                        .commit(c, execution, &files)
                        .and_then(|_| store.set_sink_committed(execution, c));
                    let (progress, changed) = &*shared;
                    let mut p = lock(progress);
                    match result {
                        Ok(()) => p.handled = p.handled.max(c),
                        Err(e) => p.error = Some(format!("committing checkpoint {c}: {e}")),
                    }
                    changed.notify_all();
                    if p.error.is_some() {
                        return;
                    }
                }
            })?;
        Ok(Background {
            jobs: Some(jobs),
            progress,
            thread: Some(thread),
        })
    }

    /// The error that stopped the committer, if one did.
    pub fn check(&self) -> io::Result<()> {
        match &lock(&self.progress.0).error {
            Some(e) => Err(io::Error::other(e.clone())),
            None => Ok(()),
        }
    }

    /// Queues checkpoint `c` (its manifest's sink files) for commit.
    pub fn submit(&self, c: u64, execution: u64, files: Vec<SinkFile>) -> io::Result<()> {
        self.check()?;
        if let Some(jobs) = &self.jobs {
            jobs.send((c, execution, files))
                .map_err(|_| io::Error::other("the sink's committer thread is gone"))?;
        }
        Ok(())
    }

    /// Waits until checkpoint `c` is handled (at most `timeout`).
    pub fn wait(&self, c: u64, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        let (progress, changed) = &*self.progress;
        let mut p = lock(progress);
        loop {
            if let Some(e) = &p.error {
                return Err(io::Error::other(e.clone()));
            }
            if p.handled >= c {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::other(format!(
                    "checkpoint {c} was not committed to the sink within {timeout:?}"
                )));
            }
            p = changed
                .wait_timeout(p, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has committed what it was given.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
