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
    /// The run this checkpoint belongs to (fixed at its first execution, kept by every
    /// restore): a transactional sink's id, so that a restart fences the run's zombies and
    /// finds its own progress.
    #[serde(default)]
    pub run: String,
    /// Every sink file the parts list (rows of epochs up to this checkpoint, not known
    /// committed when the parts were written).
    #[serde(default)]
    pub sink_files: Vec<SinkFile>,
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
    /// The output files this worker completed for the epochs up to this checkpoint (first,
    /// so that [`PartHead`] reads them without the rest).
    pub sink_files: Vec<SinkFile>,
    /// The source reader's cut (where to resume), bincode; `None` for sources that need none.
    pub source: Option<Vec<u8>>,
    /// Each keyed operator's states, by operator name: a bincode `Vec<(key, state)>`.
    pub operators: Vec<(String, Vec<u8>)>,
}

/// The start of a [`WorkerPart`]: what the coordinator lists in the manifest.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PartHead {
    /// Global worker index.
    pub worker: usize,
    /// The output files the worker completed.
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
    /// When it holds several epochs: where each begins (epoch, byte offset), in order.
    #[serde(default)]
    pub starts: Vec<(u64, u64)>,
    /// Who commits it, and how.
    #[serde(default)]
    pub kind: SinkKind,
}

/// How a [`SinkFile`] is committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SinkKind {
    /// Rows its own process appends to its output once the checkpoint is durable.
    #[default]
    Rows,
    /// Rows of an output several processes write (a partition of a partitioned file writer,
    /// on a shared filesystem): process 0 appends every worker's, from the manifest.
    SharedRows,
    /// A marker (`_SUCCESS`) that process 0 creates at `output` after the shared rows of the
    /// same checkpoint are committed; `file` is unused. It holds the checkpoint that wrote it.
    Marker,
}

impl SinkFile {
    /// The byte offset at which the rows of epochs after `floor` begin; `None` when the file
    /// holds none.
    pub fn skip_through(&self, floor: u64) -> Option<u64> {
        if self.epoch <= floor {
            return None;
        }
        Some(
            self.starts
                .iter()
                .find(|(e, _)| *e > floor)
                .map_or(0, |(_, at)| *at),
        )
    }
}
