//! What a checkpoint consists of: its manifest (the file that makes it complete) and each
//! worker's part.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A complete checkpoint: written last, after every part it names is durable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint's event time `c`: every effect of the times below it, none above.
    pub epoch: u64,
    /// The execution (1 for a first run, one more for each restore) that wrote it.
    pub execution: u64,
    /// Worker threads per process.
    pub workers: usize,
    /// Processes.
    pub processes: usize,
    /// The pipeline and the settings that shape its state; a restore refuses another.
    pub fingerprint: String,
    /// Every worker's part, by global worker index.
    pub parts: Vec<PartFile>,
    /// When it was written, epoch ms (wall clock).
    pub written_ms: u64,
}

/// One file of a checkpoint, with what it must be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartFile {
    /// Path relative to the store.
    pub file: String,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32C of the contents.
    pub crc32c: u32,
}

/// One worker's part of a checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerPart {
    /// Global worker index.
    pub worker: usize,
    /// Each keyed operator's states, by operator name: a bincode `Vec<(key, state)>`.
    pub operators: Vec<(String, Vec<u8>)>,
    /// The source reader's cut (where to resume), bincode; `None` for sources that need none.
    pub source: Option<Vec<u8>>,
    /// The output files this worker completed for the epochs up to this checkpoint.
    pub sink_files: Vec<SinkFile>,
}

/// A worker's rows of one epoch for one output, waiting to be committed to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkFile {
    /// The output they belong to.
    pub output: PathBuf,
    /// The epoch: rows with times in `[epoch − interval, epoch)`.
    pub epoch: u64,
    /// The synced file holding them.
    pub file: PathBuf,
    /// Its length.
    pub len: u64,
}
