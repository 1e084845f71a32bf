//! Checkpoints at frontier-aligned event times, and restoring from them.
//!
//! **The cut.** Checkpoint `c` (a multiple of `--checkpoint-interval` in event time) holds every
//! effect of the timely times below `c` and none at or above it. Frontiers replace barriers:
//! an operator whose input frontier passes `c` has seen every record it will get below `c`.
//! The keyed core applies records in time order, so its per-key states at `c` are exactly the
//! effects of times below `c`; it hands out a copy each time its processing crosses a multiple of
//! the interval, valid for every multiple in the range it crossed. A source records its cut the
//! same way when its capability crosses multiples: where to resume so that exactly the records
//! stamped at or after `c` are read again. Output rows are written to per-epoch files
//! ([`sink`]) and reach the output only once a checkpoint covering them is durable.
//!
//! **The protocol.** Global worker 0 coordinates through the checkpoint directory, which every
//! process of the mesh shares: it names the next checkpoint `c` (the latest multiple its output
//! frontier has passed) in `DIR/target`; each worker, once its own output frontier has passed
//! `c`, writes its part — its operators' states, its source cut, its completed epoch files —
//! durably; when every worker's part is there, the coordinator writes the manifest (last, by
//! atomic rename), and each process commits its epoch files up to `c` to its outputs. Old
//! checkpoints beyond `--checkpoint-retain` are deleted.
//!
//! **Restore.** `--restore` reads the newest checkpoint whose parts all verify (length and
//! CRC-32C; a damaged newest one is reported in one line and the previous used), refuses one of
//! another pipeline or configuration, rolls the output forward to it, and starts every operator
//! from its states — re-routed by key when the worker count changed — and every source from its
//! cut, at capability `c`.

pub mod manifest;
pub mod protocol;
pub mod sink;
pub mod store;
pub mod transaction;

use crate::route::owner;
use crate::time::EventTime;
pub use manifest::Manifest;
use manifest::{SinkFile, SinkKind, WorkerPart};
use serde::de::DeserializeOwned;
use sink::EpochFiles;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use store::Store;
use transaction::{Background, Committer, TransactionalSink};

/// Checkpoint settings of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointConfig {
    /// The directory every process of the mesh shares.
    pub dir: PathBuf,
    /// Event time between checkpoints, ms.
    pub interval: u64,
    /// Wall-clock time between checkpoints at least.
    pub min_pause: std::time::Duration,
    /// How many complete checkpoints to keep.
    pub retain: usize,
    /// Resume from the newest usable checkpoint.
    pub restore: bool,
    /// This execution's number (1 for a first run; a supervisor counts restarts).
    pub execution: u64,
}

/// Why checkpointing could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The directory could not be used.
    #[error("checkpoint directory {path}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint is of another pipeline or configuration.
    #[error("checkpoint {epoch} in {dir} is of another pipeline or configuration ({found}); this run is {expected}: use another --checkpoint-dir, or run without --restore")]
    Mismatch {
        /// The directory.
        dir: String,
        /// The checkpoint.
        epoch: u64,
        /// Its fingerprint.
        found: String,
        /// This run's.
        expected: String,
    },
    /// A run cannot be checkpointed or restored (e.g. standard input, processing-time windows).
    #[error("{0}")]
    Unsupported(String),
}

/// The checkpoint a run resumes from: its manifest and every worker's part.
pub struct Restored {
    /// The manifest.
    pub manifest: Manifest,
    /// The parts, by old global worker index.
    pub parts: Vec<WorkerPart>,
}

impl Restored {
    /// The event time the run resumes at.
    pub fn epoch(&self) -> EventTime {
        self.manifest.epoch
    }

    /// Every sink file the checkpoint lists (to be rolled forward).
    pub fn sink_files(&self) -> Vec<SinkFile> {
        self.parts
            .iter()
            .flat_map(|p| p.sink_files.clone())
            .collect()
    }
}

/// Finds the newest checkpoint of `store` whose parts all verify. A damaged one is reported in
/// one line and the previous tried; one of another fingerprint is an error.
pub fn find_restorable(
    store: &Store,
    fingerprint: &str,
) -> Result<Option<Restored>, CheckpointError> {
    for epoch in store.manifests() {
        let manifest = match store.read_manifest(epoch) {
            Ok(m) => m,
            Err(why) => {
                tracing::warn!("checkpoint {epoch} is unusable ({why}); trying the previous one");
                continue;
            }
        };
        if manifest.fingerprint != fingerprint {
            return Err(CheckpointError::Mismatch {
                dir: store.location().to_string(),
                epoch,
                found: manifest.fingerprint,
                expected: fingerprint.to_string(),
            });
        }
        let parts: Result<Vec<WorkerPart>, String> = manifest
            .parts
            .iter()
            .map(|p| {
                let bytes = store.read_part(p)?;
                bincode::deserialize(&bytes).map_err(|e| format!("{}: {e}", p.file))
            })
            .collect();
        match parts {
            Ok(parts) => return Ok(Some(Restored { manifest, parts })),
            Err(why) => {
                tracing::warn!("checkpoint {epoch} is unusable ({why}); trying the previous one")
            }
        }
    }
    Ok(None)
}

/// How many copies of each participant's state a worker keeps for checkpoints not named yet.
const KEPT_COPIES: usize = 32;

/// Why a worker cannot write its part of a checkpoint.
#[derive(Debug)]
pub enum PartError {
    /// The copies the checkpoint needs are gone (the worker ran far ahead): skip it.
    Gone(String),
    /// Writing failed.
    Failed(String),
}

/// A snapshot valid for every checkpoint `c` with `from < c ≤ to`.
struct Covering {
    from: EventTime,
    to: EventTime,
    bytes: Arc<Vec<u8>>,
}

/// Snapshots of one participant (an operator, the source), oldest first.
#[derive(Default)]
struct Snapshots(Vec<Covering>);

impl Snapshots {
    fn put(&mut self, from: EventTime, to: EventTime, bytes: Option<Vec<u8>>) {
        match bytes {
            Some(bytes) => {
                self.0.push(Covering {
                    from,
                    to,
                    bytes: Arc::new(bytes),
                });
                // A bounded history: a checkpoint named after its copies are gone is skipped.
                if self.0.len() > KEPT_COPIES {
                    self.0.remove(0);
                }
            }
            // Unchanged since the last copy: it now covers up to `to` as well.
            None => {
                if let Some(last) = self.0.last_mut() {
                    last.to = last.to.max(to);
                }
            }
        }
    }

    /// The copy valid for checkpoint `c`: `Ok(None)` while none has reached `c` yet, an error
    /// when the copies that covered it are gone.
    fn covering(&self, c: EventTime) -> Result<Option<Arc<Vec<u8>>>, ()> {
        if let Some(s) = self.0.iter().rev().find(|s| s.from < c && c <= s.to) {
            return Ok(Some(Arc::clone(&s.bytes)));
        }
        match self.0.last() {
            Some(last) if last.to >= c => Err(()),
            _ => Ok(None),
        }
    }

    /// Drops copies that only cover checkpoints below `c`.
    fn prune_below(&mut self, c: EventTime) {
        self.0.retain(|s| s.to >= c);
    }
}

/// A process's checkpointing, shared by its workers.
pub struct Checkpointing {
    /// Settings.
    pub config: CheckpointConfig,
    /// The directory.
    pub store: Store,
    /// The pipeline and settings that shape its state.
    pub fingerprint: String,
    /// What the run resumes from.
    pub restored: Option<Arc<Restored>>,
    /// Worker threads per process.
    pub workers: usize,
    /// Processes.
    pub processes: usize,
    /// This process's index.
    process: usize,
    /// Some worker writes an output several processes share (process 0 commits those).
    shared_outputs: std::sync::atomic::AtomicBool,
    /// This process's epoch files waiting for a manifest (by file), and the latest epoch
    /// committed.
    pending_sinks: Mutex<(BTreeMap<PathBuf, SinkFile>, u64)>,
    /// The run committed every row (its input ended), rather than stopping at a checkpoint.
    everything: std::sync::atomic::AtomicBool,
    /// The run's identity, the same in every execution (from its first manifest on).
    pub run: String,
    /// The transactional sink's epoch-file output (`DIR/sinks/<name>`), if the run has one.
    transactional_output: Option<PathBuf>,
    /// Process 0: commits the transactional sink, on a thread of its own.
    committer: Option<Background>,
}

/// A new run's identity: unique enough that two runs never share a transactional id.
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = twox_hash::XxHash64::oneshot(u64::from(std::process::id()), &nanos.to_le_bytes());
    format!("{mixed:016x}")
}

impl Checkpointing {
    /// Checkpointing as `config` says for a mesh of `processes` × `workers`, this process
    /// writing `outputs`. A first run starts its outputs afresh, refusing a directory that
    /// holds checkpoints already; with `--restore` it finds the checkpoint to resume from and
    /// brings the outputs to exactly its rows (process 0 also those of processes that no
    /// longer exist, after a rescale).
    ///
    /// A `transactional` sink (Kafka) keeps its epoch files in `DIR/sinks/`; process 0 fences
    /// the run's earlier producers, rolls the sink forward to the restored checkpoint, and
    /// commits it after each checkpoint ([`transaction`]). `trees` are directories of
    /// outputs not known in advance (a partitioned file writer's): process 0 brings every output
    /// in them to the restored checkpoint.
    pub fn start(
        mut config: CheckpointConfig,
        fingerprint: String,
        mesh: (usize, usize, usize),
        outputs: &[PathBuf],
        trees: &[PathBuf],
        transactional: Option<TransactionalSink>,
    ) -> Result<Self, CheckpointError> {
        let (workers, processes, process) = mesh;
        let dir = config.dir.display().to_string();
        let io = |source| CheckpointError::Io {
            path: dir.clone(),
            source,
        };
        let store = Store::open(&config.dir).map_err(io)?;
        let restored = if config.restore {
            find_restorable(&store, &fingerprint)?
        } else if let Some(newest) = store.manifests().first() {
            return Err(CheckpointError::Unsupported(format!(
                "{dir} holds checkpoints of an earlier run (the newest at {newest}): pass --restore to resume it, or use an empty --checkpoint-dir"
            )));
        } else {
            None
        };
        let output_error = |output: &Path, source: std::io::Error| CheckpointError::Io {
            path: output.display().to_string(),
            source,
        };
        if let Some(r) = &restored {
            // Every execution after the one that wrote the checkpoint has a number of its own,
            // also when restored by hand.
            config.execution = config.execution.max(r.manifest.execution + 1);
        }
        let run = restored
            .as_ref()
            .map(|r| r.manifest.run.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(new_run_id);
        // Process 0 reads every worker's epoch files of the sink: in the checkpoint directory,
        // which every process shares; with an object store, written locally first and kept in
        // the store once closed (see `stage`).
        let transactional_output = match (&transactional, store.local_dir()) {
            (None, _) => None,
            (Some(t), Some(local)) => Some(local.join("sinks").join(&t.name)),
            (Some(t), None) => Some(
                std::env::temp_dir()
                    .join(format!("sluice-{run}"))
                    .join(&t.name),
            ),
        };
        if let Some(dir) = transactional_output.as_ref().and_then(|o| o.parent()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        match &restored {
            Some(r) => {
                tracing::info!(
                    "restoring checkpoint {} (execution {}, {} × {} workers) as execution {}",
                    r.epoch(),
                    r.manifest.execution,
                    r.manifest.processes,
                    r.manifest.workers,
                    config.execution
                );
                let listed = r.sink_files();
                let mut mine: Vec<PathBuf> = outputs.to_vec();
                if process == 0 {
                    store.remove_after(r.epoch());
                    mine.extend(
                        listed
                            .iter()
                            .filter(|f| f.kind != SinkKind::Marker)
                            .map(|f| f.output.clone())
                            .filter(|o| Some(o) != transactional_output.as_ref()),
                    );
                }
                mine.sort();
                mine.dedup();
                for output in &mine {
                    sink::restore(output, &listed, r.epoch())
                        .map_err(|e| output_error(output, e))?;
                    sink::remove_unlisted(output, &listed, config.execution);
                }
                if process == 0 {
                    for tree in trees {
                        sink::restore_tree(tree, &listed, r.epoch(), config.execution)
                            .map_err(|e| output_error(tree, e))?;
                    }
                    let markers: Vec<SinkFile> = listed
                        .iter()
                        .filter(|f| f.kind == SinkKind::Marker)
                        .cloned()
                        .collect();
                    sink::commit(&markers, r.epoch()).map_err(|e| output_error(&config.dir, e))?;
                }
            }
            None => {
                if config.restore {
                    tracing::warn!(
                        "no checkpoint to restore in {dir}: starting from the beginning"
                    );
                }
                for output in outputs {
                    sink::reset(output).map_err(|e| output_error(output, e))?;
                }
                if process == 0 {
                    // Parts of a run that crashed before its first manifest (perhaps with this
                    // very execution number) must not count for this one.
                    store.remove_after(0);
                }
            }
        }
        if process == 0 {
            // A new execution starts: no control file of any earlier one (even one that had the
            // same number, restored by hand) may steer it.
            store.clear_controls(u64::MAX);
        }
        let mut committer = None;
        if let (Some(sink), Some(output), 0) = (transactional, &transactional_output, process) {
            let listed = restored.as_ref().map(|r| r.sink_files());
            let at = restored
                .as_ref()
                .zip(listed.as_deref())
                .map(|(r, l)| (r.epoch(), l));
            let io = |source| CheckpointError::Io {
                path: format!("the transactional sink {}", sink.name),
                source,
            };
            let remote = store.local_dir().is_none().then(|| store.clone());
            let started = Committer::start(
                output.clone(),
                sink.open,
                &run,
                at,
                config.execution,
                remote,
            )
            .map_err(io)?;
            committer =
                Some(Background::spawn(started, store.clone(), config.execution).map_err(io)?);
        }
        let committed = restored.as_ref().map_or(0, |r| r.epoch());
        Ok(Checkpointing {
            config,
            store,
            fingerprint,
            restored: restored.map(Arc::new),
            workers,
            processes,
            process,
            shared_outputs: std::sync::atomic::AtomicBool::new(false),
            pending_sinks: Mutex::new((BTreeMap::new(), committed)),
            everything: std::sync::atomic::AtomicBool::new(false),
            run,
            transactional_output,
            committer,
        })
    }

    /// Whether the run ended by committing every row (its input ended), not at a stop's
    /// checkpoint.
    pub fn committed_everything(&self) -> bool {
        self.everything.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The event time the run resumes at (0 for a fresh start).
    pub fn resume_at(&self) -> EventTime {
        self.restored.as_ref().map_or(0, |r| r.epoch())
    }

    /// Hands this process's completed epoch files over for commit (those of a transactional
    /// sink are committed by process 0, from the manifest).
    fn add_sink_files(&self, files: Vec<SinkFile>) {
        let mut pending = self.pending_sinks.lock().unwrap_or_else(|p| p.into_inner());
        for file in files {
            if file.kind == SinkKind::Rows
                && Some(&file.output) != self.transactional_output.as_ref()
            {
                pending.0.insert(file.file.clone(), file);
            }
        }
    }

    /// Where a transactional sink's rows go first (its epoch files), if the run has one.
    pub fn transactional_output(&self) -> Option<&Path> {
        self.transactional_output.as_deref()
    }

    /// With checkpoints in an object store: moves the transactional sink's newly closed epoch
    /// files into the store (`sinks/<name>/<file>`), where process 0 reads them, and names them
    /// there (a relative path is a name in the store).
    fn stage(&self, files: &mut [SinkFile]) -> std::io::Result<()> {
        let Some(output) = &self.transactional_output else {
            return Ok(());
        };
        if self.store.local_dir().is_some() {
            return Ok(());
        }
        for file in files.iter_mut().filter(|f| &f.output == output) {
            if file.file.is_relative() {
                continue; // in the store already
            }
            let name = transaction::store_name(output, &file.file);
            self.store.put_file(&name, &std::fs::read(&file.file)?)?;
            let _ = std::fs::remove_file(&file.file);
            file.file = PathBuf::from(name);
        }
        Ok(())
    }

    /// Commits this process's epoch files up to the newest complete checkpoint `upto`.
    pub fn commit_sinks(&self, upto: u64) -> std::io::Result<()> {
        let mut pending = self.pending_sinks.lock().unwrap_or_else(|p| p.into_inner());
        if upto <= pending.1 {
            return Ok(());
        }
        let ready: Vec<SinkFile> = pending
            .0
            .values()
            .filter(|f| f.epoch <= upto)
            .cloned()
            .collect();
        sink::commit(&ready, upto)?;
        pending.0.retain(|_, f| f.epoch > upto);
        pending.1 = upto;
        let shared = self.process == 0
            && self
                .shared_outputs
                .load(std::sync::atomic::Ordering::Relaxed);
        if shared || self.committer.is_some() {
            let manifest = self
                .store
                .read_manifest(upto)
                .map_err(std::io::Error::other)?;
            if shared {
                // Every worker's rows of the shared outputs, then their markers.
                let files: Vec<SinkFile> = manifest
                    .sink_files
                    .iter()
                    .filter(|f| f.kind != SinkKind::Rows)
                    .cloned()
                    .collect();
                sink::commit(&files, upto)?;
            }
            if let Some(committer) = &self.committer {
                committer.submit(upto, self.config.execution, manifest.sink_files)?;
            }
        }
        Ok(())
    }

    /// Waits until the transactional sink has committed checkpoint `c` (process 0; at the end
    /// of a run).
    pub fn await_sink(&self, c: u64, timeout: std::time::Duration) -> std::io::Result<()> {
        match &self.committer {
            Some(committer) => committer.wait(c, timeout),
            None => Ok(()),
        }
    }

    /// A failure of the transactional sink's committer, if it failed.
    pub fn sink_error(&self) -> std::io::Result<()> {
        self.committer.as_ref().map_or(Ok(()), Background::check)
    }
}

/// A participant that writes its state on demand, for any checkpoint its input frontier has
/// passed: `Ok(None)` while it has not.
pub type Provider = Box<dyn Fn(EventTime) -> Result<Option<Vec<u8>>, String>>;

/// One worker's share of checkpointing: the copies its operators and source hand out, its
/// epoch files, and how far it has written parts.
pub struct WorkerCheckpoint {
    /// The process's checkpointing.
    pub shared: Arc<Checkpointing>,
    /// Global worker index.
    pub worker: usize,
    /// Workers in the mesh.
    pub peers: usize,
    operators: RefCell<Vec<(String, Snapshots)>>,
    providers: RefCell<Vec<(String, Provider)>>,
    source: RefCell<Snapshots>,
    epoch_files: RefCell<Vec<Rc<RefCell<EpochFiles>>>>,
    /// Markers waiting for the checkpoint of their epoch.
    markers: RefCell<Vec<SinkFile>>,
    /// Epoch files closed at this worker's parts and not known committed yet: every part lists
    /// them all, so a checkpoint that never completed loses none.
    closed_files: RefCell<Vec<SinkFile>>,
    /// The source's cut of the newest checkpoint completed, until the source takes it.
    completed_source: RefCell<Option<(EventTime, Arc<Vec<u8>>)>>,
    /// Operators make copies of their states from this instant on (`None`: always).
    copies_from: std::cell::Cell<Option<std::time::Instant>>,
    /// An operator's failure to keep what a checkpoint needs: the next part fails with it.
    failure: RefCell<Option<String>>,
}

impl WorkerCheckpoint {
    /// Worker `worker` of `peers`.
    pub fn new(shared: Arc<Checkpointing>, worker: usize, peers: usize) -> Rc<Self> {
        Rc::new(WorkerCheckpoint {
            shared,
            worker,
            peers,
            operators: RefCell::new(Vec::new()),
            providers: RefCell::new(Vec::new()),
            source: RefCell::new(Snapshots::default()),
            epoch_files: RefCell::new(Vec::new()),
            markers: RefCell::new(Vec::new()),
            closed_files: RefCell::new(Vec::new()),
            completed_source: RefCell::new(None),
            copies_from: std::cell::Cell::new(None),
            failure: RefCell::new(None),
        })
    }

    /// The checkpoint interval, ms.
    pub fn interval(&self) -> EventTime {
        self.shared.config.interval.max(1)
    }

    fn operator_slot(&self, name: &str) -> usize {
        let mut ops = self.operators.borrow_mut();
        match ops.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                ops.push((name.to_string(), Snapshots::default()));
                ops.len() - 1
            }
        }
    }

    /// Records operator `name`'s state, valid for checkpoints in `(from, to]` (`None`:
    /// unchanged since its last copy).
    pub fn put_operator(&self, name: &str, from: EventTime, to: EventTime, bytes: Option<Vec<u8>>) {
        let slot = self.operator_slot(name);
        self.operators.borrow_mut()[slot].1.put(from, to, bytes);
    }

    /// Registers operator `name`, which writes its state for a checkpoint when asked.
    pub fn provide(&self, name: &str, provider: Provider) {
        self.providers
            .borrow_mut()
            .push((name.to_string(), provider));
    }

    /// The records operator `name` restores from, when they need no particular owner: those
    /// of old worker `i`'s parts for every `i` with `i % peers == worker`.
    pub fn restored_records<D: DeserializeOwned>(&self, name: &str) -> Vec<D> {
        let Some(restored) = &self.shared.restored else {
            return Vec::new();
        };
        let mut records = Vec::new();
        for (i, part) in restored.parts.iter().enumerate() {
            if i % self.peers != self.worker {
                continue;
            }
            for (op, bytes) in part.operators.iter().filter(|(op, _)| op == name) {
                match bincode::deserialize::<Vec<D>>(bytes) {
                    Ok(r) => records.extend(r),
                    Err(e) => tracing::error!("restoring {op}: {e}"),
                }
            }
        }
        records
    }

    /// Records the source's cut, valid for checkpoints in `(from, to]`.
    pub fn put_source(&self, from: EventTime, to: EventTime, bytes: Vec<u8>) {
        self.source.borrow_mut().put(from, to, Some(bytes));
    }

    /// Epoch files for `output`, written by this worker (and closed at its checkpoints).
    pub fn epoch_files(&self, output: &Path) -> Rc<RefCell<EpochFiles>> {
        let files = Rc::new(RefCell::new(EpochFiles::new(
            output,
            self.worker,
            self.shared.config.execution,
            self.interval(),
            self.shared.resume_at(),
        )));
        self.epoch_files.borrow_mut().push(Rc::clone(&files));
        files
    }

    /// Epoch files for `output`, an output several processes write (a partition of a
    /// partitioned file writer): this worker's rows, committed by process 0. The same files
    /// while this worker still holds rows for it; `fresh` starts the output afresh when new ones
    /// are made (the first rows of a run that restored nothing).
    pub fn shared_epoch_files(
        &self,
        output: &Path,
        fresh: bool,
    ) -> std::io::Result<Rc<RefCell<EpochFiles>>> {
        let mut all = self.epoch_files.borrow_mut();
        if let Some(files) = all.iter().find(|f| f.borrow().output() == output) {
            return Ok(Rc::clone(files));
        }
        if fresh {
            sink::reset(output)?;
        }
        self.shared
            .shared_outputs
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let files = Rc::new(RefCell::new(
            EpochFiles::new(
                output,
                self.worker,
                self.shared.config.execution,
                self.interval(),
                self.shared.resume_at(),
            )
            .shared(),
        ));
        all.push(Rc::clone(&files));
        Ok(files)
    }

    /// An operator could not keep rows a checkpoint needs (`why`): the next part fails, and
    /// the run with it, rather than commit without them.
    pub fn fail(&self, why: String) {
        tracing::error!("{why}");
        self.failure.borrow_mut().get_or_insert(why);
    }

    /// A marker (`_SUCCESS`) at `path`, created by process 0 once checkpoint `epoch` (or a later
    /// one) is committed, after the shared rows.
    pub fn add_marker(&self, path: &Path, epoch: EventTime) {
        if epoch < self.shared.resume_at() {
            return; // committed before the restored checkpoint
        }
        self.markers.borrow_mut().push(SinkFile {
            output: path.to_path_buf(),
            epoch,
            file: PathBuf::new(),
            len: 0,
            starts: Vec::new(),
            kind: SinkKind::Marker,
        });
    }

    /// The states operator `name` restores from: every key this worker owns, from every part
    /// of the checkpoint (whatever worker wrote it).
    pub fn restored_states<K, S>(&self, name: &str) -> Vec<(K, S)>
    where
        K: DeserializeOwned + Hash,
        S: DeserializeOwned,
    {
        let Some(restored) = &self.shared.restored else {
            return Vec::new();
        };
        let mut states = Vec::new();
        for part in &restored.parts {
            for (op, bytes) in &part.operators {
                if op != name {
                    continue;
                }
                match bincode::deserialize::<Vec<(K, S)>>(bytes) {
                    Ok(entries) => states.extend(
                        entries
                            .into_iter()
                            .filter(|(k, _)| owner(k, self.peers) == self.worker),
                    ),
                    Err(e) => tracing::error!("restoring {name}: {e}"),
                }
            }
        }
        states
    }

    /// Every old worker's source cut, by old global worker index (the reader decides what it
    /// can use), when the run restores.
    pub fn restored_source(&self) -> Option<Vec<Option<Vec<u8>>>> {
        let restored = self.shared.restored.as_ref()?;
        Some(restored.parts.iter().map(|p| p.source.clone()).collect())
    }

    /// This worker's part of checkpoint `c`, serialized: `Ok(None)` while some operator has
    /// not handed out its copy for `c` yet (it will once it runs). The final checkpoint
    /// [`protocol::END`] holds the epoch files only: nothing resumes after it.
    pub fn part(&self, c: EventTime) -> Result<Option<Vec<u8>>, PartError> {
        if let Some(why) = self.failure.borrow().clone() {
            return Err(PartError::Failed(why));
        }
        let mut part = WorkerPart {
            worker: self.worker,
            ..WorkerPart::default()
        };
        if c != protocol::END {
            for (name, snapshots) in self.operators.borrow().iter() {
                match snapshots.covering(c) {
                    Ok(Some(bytes)) => part.operators.push((name.clone(), bytes.to_vec())),
                    Ok(None) => return Ok(None),
                    Err(()) => return Err(PartError::Gone(format!("operator {name} ran past it"))),
                }
            }
            for (name, provider) in self.providers.borrow().iter() {
                match provider(c) {
                    Ok(Some(bytes)) => part.operators.push((name.clone(), bytes)),
                    Ok(None) => return Ok(None),
                    Err(why) => return Err(PartError::Failed(format!("{name}: {why}"))),
                }
            }
            match self.source.borrow().covering(c) {
                Ok(Some(bytes)) => part.source = Some(bytes.to_vec()),
                Ok(None) => return Ok(None),
                Err(()) => return Err(PartError::Gone("the source ran past it".into())),
            }
            for (_, snapshots) in self.operators.borrow_mut().iter_mut() {
                snapshots.prune_below(c);
            }
            self.source.borrow_mut().prune_below(c);
        }
        let mut closed = self.closed_files.borrow_mut();
        for files in self.epoch_files.borrow().iter() {
            let mut newly = files
                .borrow_mut()
                .close_upto(c)
                .map_err(|e| PartError::Failed(format!("closing epoch files: {e}")))?;
            self.shared
                .stage(&mut newly)
                .map_err(|e| PartError::Failed(format!("storing the sink's epoch files: {e}")))?;
            closed.extend(newly);
        }
        // Files their writer let go of, with nothing left to close, are done.
        self.epoch_files
            .borrow_mut()
            .retain(|f| Rc::strong_count(f) > 1 || !f.borrow().is_empty());
        self.markers.borrow_mut().retain(|m| {
            let due = m.epoch <= c;
            if due {
                closed.push(m.clone());
            }
            !due
        });
        part.sink_files = closed.clone();
        self.shared.add_sink_files(part.sink_files.clone());
        bincode::serialize(&part)
            .map(Some)
            .map_err(|e| PartError::Failed(e.to_string()))
    }

    /// Checkpoint `c` is complete: its epoch files need not be listed again.
    pub fn completed(&self, c: EventTime) {
        // A transactional sink's files stay listed until process 0 has committed them.
        let transactional = self.shared.transactional_output();
        let committed = match transactional {
            Some(_) => self
                .shared
                .store
                .sink_committed(self.shared.config.execution),
            None => 0,
        };
        self.closed_files.borrow_mut().retain(|f| {
            let upto = if Some(f.output.as_path()) == transactional {
                committed
            } else {
                c
            };
            f.epoch > upto
        });
        if let Ok(Some(cut)) = self.source.borrow().covering(c) {
            *self.completed_source.borrow_mut() = Some((c, cut));
        }
    }

    /// Whether operators should make copies of their states now: a checkpoint may be named
    /// soon, or one is in flight.
    pub fn wants_copies(&self) -> bool {
        self.copies_from
            .get()
            .is_none_or(|from| std::time::Instant::now() >= from)
    }

    /// No checkpoint will be named before `until` (less a margin): operators may skip their
    /// copies until then. `None`: copies are wanted from now on.
    pub fn pause_copies(&self, until: Option<std::time::Instant>) {
        self.copies_from.set(until);
    }

    /// The source's cut of the newest checkpoint completed since the last call (the source
    /// commits its positions with it).
    pub fn take_completed_source(&self) -> Option<(EventTime, Arc<Vec<u8>>)> {
        self.completed_source.borrow_mut().take()
    }

    /// Deletes this worker's epoch files no checkpoint lists (after a stop's final
    /// checkpoint: their rows are produced again on restore).
    pub fn discard_epoch_files(&self) {
        for files in self.epoch_files.borrow().iter() {
            files.borrow_mut().discard();
        }
    }
}

thread_local! {
    /// The checkpointing of the worker whose dataflow is being built on this thread.
    static BUILDING: RefCell<Option<Rc<WorkerCheckpoint>>> = const { RefCell::new(None) };
}

/// Runs `build` (a dataflow's construction) with `checkpoint` as the ambient checkpointing its
/// operators register with.
pub fn building<T>(checkpoint: Option<Rc<WorkerCheckpoint>>, build: impl FnOnce() -> T) -> T {
    BUILDING.with(|b| *b.borrow_mut() = checkpoint);
    let out = build();
    BUILDING.with(|b| *b.borrow_mut() = None);
    out
}

/// The ambient checkpointing of the dataflow being built, if the run checkpoints.
pub fn current() -> Option<Rc<WorkerCheckpoint>> {
    BUILDING.with(|b| b.borrow().clone())
}

thread_local! {
    /// While [`uncheckpointable`] builds a dataflow: the operators that declared themselves.
    static PROBING: RefCell<Option<Vec<String>>> = const { RefCell::new(None) };
}

/// Declares that operator `name` of the dataflow being built keeps state checkpoints do not
/// capture yet (`why`): a run with checkpoints is refused rather than restored wrongly.
pub fn not_checkpointable(name: &str, why: &str) {
    PROBING.with(|p| {
        if let Some(found) = p.borrow_mut().as_mut() {
            found.push(format!("{name} ({why})"));
        }
    });
}

/// The operators that declare themselves [not checkpointable](not_checkpointable) while
/// `build` builds a dataflow: a run checks its pipeline before it touches any file.
pub fn uncheckpointable(build: impl FnOnce()) -> Vec<String> {
    PROBING.with(|p| *p.borrow_mut() = Some(Vec::new()));
    build();
    PROBING.with(|p| p.borrow_mut().take()).unwrap_or_default()
}

/// The fingerprint of a run: what must match for a checkpoint to be restored.
pub fn fingerprint(parts: &[(&str, String)]) -> String {
    parts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}
