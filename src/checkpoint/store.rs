//! Where checkpoints live: a directory shared by every process of the mesh — on a file system
//! (local, or NFS for a mesh across hosts) or in an S3-compatible object store
//! (`s3://BUCKET/PREFIX`) — written so that a crash at any instant leaves either the previous
//! complete checkpoint or the new one.
//!
//! ```text
//! DIR/epoch-<c>/part-w<worker>-x<execution>.bin   one worker's part of checkpoint c
//! DIR/manifest-<c>.json                           the checkpoint: written last
//! DIR/target-x<e>, stop-x<e>, final-x<e>          the protocol's control files
//! ```
//!
//! On a file system every file is written to a temporary name, synced, renamed into place, and
//! its directory synced; in an object store every object is written by one PUT, which is atomic.
//! Either way a part that exists is whole, and a manifest that exists names parts that exist, with
//! their lengths and CRC-32C checksums so that a damaged one is noticed.
//!
//! Object stores go through the `object_store` crate (the Arrow project's, used by DataFusion,
//! Delta and InfluxDB: retries, multipart, credentials from the usual `AWS_*` variables) rather
//! than a hand-written S3 client; its async calls run on a small runtime of the store's own.

mod objects;

use super::manifest::{Manifest, PartFile, PartHead, SinkFile};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writes `bytes` at `path` durably: a temporary file beside it, synced, renamed, the directory
/// synced.
pub fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_durably_with(path, bytes, || {})
}

/// [`write_durably`], calling `between` after the temporary file is synced and before the
/// rename.
fn write_durably_with(path: &Path, bytes: &[u8], between: impl FnOnce()) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    // A name of its own, so that two threads writing the same file never rename each other's.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!("{name}.{}-{n}.tmp", std::process::id()));
    {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    between();
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Syncs a directory, so that renames and new names in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A checkpoint directory.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// How the directory was named (for messages).
    location: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location)
    }
}

/// Where a store's files are.
#[derive(Clone)]
enum Backend {
    /// A directory.
    Local(PathBuf),
    /// An object store, under a prefix.
    Objects(Arc<objects::Objects>),
}

/// The URL scheme of checkpoints in an S3-compatible object store.
pub const S3_SCHEME: &str = "s3://";

/// Whether `dir` names an object store rather than a directory.
pub fn is_object_store(dir: &Path) -> bool {
    dir.to_string_lossy().starts_with(S3_SCHEME)
}

impl Backend {
    fn write(&self, name: &str, bytes: &[u8], between: impl FnOnce()) -> io::Result<()> {
        match self {
            Backend::Local(dir) => write_durably_with(&dir.join(name), bytes, between),
            Backend::Objects(o) => {
                between();
                o.put(name, bytes)
            }
        }
    }

    /// The file's bytes; `NotFound` when there is none.
    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        match self {
            Backend::Local(dir) => fs::read(dir.join(name)),
            Backend::Objects(o) => o.get(name),
        }
    }

    fn exists(&self, name: &str) -> bool {
        match self {
            Backend::Local(dir) => dir.join(name).exists(),
            Backend::Objects(o) => o.exists(name),
        }
    }

    /// The names directly in `dir` ("" for the top), and whether each is a directory.
    fn entries(&self, dir: &str) -> Vec<(String, bool)> {
        match self {
            Backend::Local(root) => fs::read_dir(root.join(dir))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| {
                            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                            (e.file_name().to_string_lossy().into_owned(), is_dir)
                        })
                        .collect()
                })
                .unwrap_or_default(),
            Backend::Objects(o) => o.entries(dir).unwrap_or_else(|e| {
                tracing::warn!("listing {dir:?} in the checkpoint store: {e}");
                Vec::new()
            }),
        }
    }

    fn remove(&self, name: &str) {
        match self {
            Backend::Local(dir) => {
                let _ = fs::remove_file(dir.join(name));
            }
            Backend::Objects(o) => o.delete(name),
        }
    }

    fn remove_dir(&self, name: &str) {
        match self {
            Backend::Local(dir) => {
                let _ = fs::remove_dir_all(dir.join(name));
            }
            Backend::Objects(o) => {
                for (file, _) in o.entries(name).unwrap_or_default() {
                    o.delete(&format!("{name}/{file}"));
                }
            }
        }
    }
}

impl Store {
    /// The store `dir` names: a directory (created if missing), or `s3://BUCKET/PREFIX`.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let location = dir.display().to_string();
        let backend = if is_object_store(dir) {
            Backend::Objects(Arc::new(objects::Objects::open(&location)?))
        } else {
            fs::create_dir_all(dir)?;
            Backend::Local(dir.to_path_buf())
        };
        Ok(Store { backend, location })
    }

    /// How the store was named (a path or a URL).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The directory, when the store is one on a file system.
    pub fn local_dir(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Local(dir) => Some(dir),
            Backend::Objects(_) => None,
        }
    }

    fn epoch_dir(epoch: u64) -> String {
        format!("epoch-{epoch:020}")
    }

    /// The name of worker `worker`'s part of checkpoint `epoch` in execution `execution`,
    /// relative to the store.
    pub fn part_name(epoch: u64, worker: usize, execution: u64) -> String {
        format!("epoch-{epoch:020}/part-w{worker}-x{execution}.bin")
    }

    /// Writes a worker's part durably; returns its entry for the manifest.
    pub fn write_part(
        &self,
        epoch: u64,
        worker: usize,
        execution: u64,
        bytes: &[u8],
    ) -> io::Result<PartFile> {
        let name = Store::part_name(epoch, worker, execution);
        self.backend.write(&name, bytes, || {})?;
        Ok(PartFile {
            file: name,
            len: bytes.len() as u64,
            crc32c: crc32c::crc32c(bytes),
        })
    }

    /// How many parts of execution `execution` checkpoint `epoch` has so far, and how many
    /// workers skipped it.
    pub fn parts_written(&self, epoch: u64, execution: u64) -> (usize, usize) {
        let suffix = format!("-x{execution}.bin");
        let (mut parts, mut skips) = (0, 0);
        for (name, _) in self.backend.entries(&Store::epoch_dir(epoch)) {
            if !name.ends_with(&suffix) {
                continue;
            }
            if name.starts_with("part-w") {
                parts += 1;
            } else if name.starts_with("skip-w") {
                skips += 1;
            }
        }
        (parts, skips)
    }

    /// Records that worker `worker` cannot write its part of checkpoint `epoch`.
    pub fn write_skip(&self, epoch: u64, worker: usize, execution: u64) -> io::Result<()> {
        let name = format!("epoch-{epoch:020}/skip-w{worker}-x{execution}.bin");
        self.backend.write(&name, b"", || {})
    }

    /// The manifest entry of worker `worker`'s part of checkpoint `epoch` — its length and
    /// checksum, read back from the store — and the sink files it lists.
    pub fn part_file(
        &self,
        epoch: u64,
        worker: usize,
        execution: u64,
    ) -> io::Result<(PartFile, Vec<SinkFile>)> {
        let name = Store::part_name(epoch, worker, execution);
        let bytes = self.backend.read(&name)?;
        let head: PartHead =
            bincode::deserialize(&bytes).map_err(|e| io::Error::other(format!("{name}: {e}")))?;
        let file = PartFile {
            file: name,
            len: bytes.len() as u64,
            crc32c: crc32c::crc32c(&bytes),
        };
        Ok((file, head.sink_files))
    }

    fn read_text(&self, name: &str) -> Option<String> {
        let bytes = self.backend.read(name).ok()?;
        String::from_utf8(bytes).ok()
    }

    /// Names checkpoint `epoch` as the one to take now (`last`: the final one of a stop).
    pub fn set_target(&self, execution: u64, epoch: u64, last: bool) -> io::Result<()> {
        let text = format!("{epoch}{}", if last { " last" } else { "" });
        self.backend
            .write(&format!("target-x{execution}"), text.as_bytes(), || {})
    }

    /// The checkpoint named for execution `execution`, and whether it is a stop's last.
    pub fn target(&self, execution: u64) -> Option<(u64, bool)> {
        let text = self.read_text(&format!("target-x{execution}"))?;
        let mut words = text.split_whitespace();
        let epoch = words.next()?.parse().ok()?;
        Some((epoch, words.next() == Some("last")))
    }

    /// Records how execution `execution` ends: at checkpoint `epoch` (a stop's, or the end).
    pub fn set_final(&self, execution: u64, epoch: u64) -> io::Result<()> {
        self.backend.write(
            &format!("final-x{execution}"),
            epoch.to_string().as_bytes(),
            || {},
        )
    }

    /// How execution `execution` ends, once its coordinator decided.
    pub fn final_decision(&self, execution: u64) -> Option<u64> {
        self.read_text(&format!("final-x{execution}"))?
            .trim()
            .parse()
            .ok()
    }

    /// Asks the coordinator of execution `execution` for a stop with a final checkpoint.
    pub fn request_stop(&self, execution: u64) -> io::Result<()> {
        self.backend
            .write(&format!("stop-x{execution}"), b"stop", || {})
    }

    /// Whether a process of execution `execution` asked for a stop.
    pub fn stop_requested(&self, execution: u64) -> bool {
        self.backend.exists(&format!("stop-x{execution}"))
    }

    /// Writes `name` (relative to the store) durably: a transactional sink's epoch file kept
    /// where every process finds it.
    pub fn put_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.backend.write(name, bytes, || {})
    }

    /// Reads `name`.
    pub fn get_file(&self, name: &str) -> io::Result<Vec<u8>> {
        self.backend.read(name)
    }

    /// Deletes `name` (nothing if it does not exist).
    pub fn remove_file(&self, name: &str) {
        self.backend.remove(name);
    }

    /// The files directly in `dir`.
    pub fn files_in(&self, dir: &str) -> Vec<String> {
        self.backend
            .entries(dir)
            .into_iter()
            .filter(|(_, is_dir)| !is_dir)
            .map(|(name, _)| name)
            .collect()
    }

    /// Records that a transactional sink has committed (or had nothing to commit) every
    /// checkpoint up to `epoch` in execution `execution`.
    pub fn set_sink_committed(&self, execution: u64, epoch: u64) -> io::Result<()> {
        self.backend.write(
            &format!("sink-committed-x{execution}"),
            epoch.to_string().as_bytes(),
            || {},
        )
    }

    /// The checkpoint up to which a transactional sink has committed in execution `execution`
    /// (0 until process 0 says).
    pub fn sink_committed(&self, execution: u64) -> u64 {
        self.read_text(&format!("sink-committed-x{execution}"))
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Removes the control files (targets, stop requests, end decisions, sink progress) of
    /// executions other than `execution` (`u64::MAX`: of every execution).
    pub fn clear_controls(&self, execution: u64) {
        for (name, is_dir) in self.backend.entries("") {
            if is_dir {
                continue;
            }
            let of = name
                .strip_prefix("target-x")
                .or_else(|| name.strip_prefix("stop-x"))
                .or_else(|| name.strip_prefix("final-x"))
                .or_else(|| name.strip_prefix("sink-committed-x"))
                .and_then(|x| x.parse::<u64>().ok());
            if of.is_some_and(|x| x != execution) {
                self.backend.remove(&name);
            }
        }
    }

    /// Reads a part named by a manifest, checking its length and checksum.
    pub fn read_part(&self, part: &PartFile) -> Result<Vec<u8>, String> {
        let bytes = self
            .backend
            .read(&part.file)
            .map_err(|e| format!("{}: {e}", part.file))?;
        if bytes.len() as u64 != part.len {
            return Err(format!(
                "{}: {} bytes where the manifest says {}",
                part.file,
                bytes.len(),
                part.len
            ));
        }
        if crc32c::crc32c(&bytes) != part.crc32c {
            return Err(format!("{}: checksum mismatch", part.file));
        }
        Ok(bytes)
    }

    fn manifest_name(epoch: u64) -> String {
        format!("manifest-{epoch:020}.json")
    }

    /// Writes checkpoint `manifest.epoch`'s manifest, last and atomically.
    pub fn write_manifest(&self, manifest: &Manifest) -> io::Result<()> {
        self.write_manifest_with(manifest, || {})
    }

    /// [`Store::write_manifest`], calling `between` after the temporary file is synced and
    /// before it is renamed into place (a fail point; in an object store, before the PUT).
    pub fn write_manifest_with(
        &self,
        manifest: &Manifest,
        between: impl FnOnce(),
    ) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
        self.backend
            .write(&Store::manifest_name(manifest.epoch), &text, between)
    }

    /// Whether checkpoint `epoch` is complete (its manifest exists).
    pub fn has_manifest(&self, epoch: u64) -> bool {
        self.backend.exists(&Store::manifest_name(epoch))
    }

    /// The epochs with a manifest, newest first.
    pub fn manifests(&self) -> Vec<u64> {
        let mut epochs: Vec<u64> = self
            .backend
            .entries("")
            .into_iter()
            .filter(|(_, is_dir)| !is_dir)
            .filter_map(|(name, _)| {
                name.strip_prefix("manifest-")?
                    .strip_suffix(".json")?
                    .parse()
                    .ok()
            })
            .collect();
        epochs.sort_unstable_by(|a, b| b.cmp(a));
        epochs
    }

    /// Reads checkpoint `epoch`'s manifest.
    pub fn read_manifest(&self, epoch: u64) -> Result<Manifest, String> {
        let name = Store::manifest_name(epoch);
        let text = self
            .backend
            .read(&name)
            .map_err(|e| format!("{}/{name}: {e}", self.location))?;
        serde_json::from_slice(&text).map_err(|e| format!("{}/{name}: {e}", self.location))
    }

    /// The epoch directories, with their epochs.
    fn epoch_dirs(&self) -> Vec<(String, u64)> {
        self.backend
            .entries("")
            .into_iter()
            .filter(|(_, is_dir)| *is_dir)
            .filter_map(|(name, _)| {
                let epoch = name.strip_prefix("epoch-")?.parse::<u64>().ok()?;
                Some((name, epoch))
            })
            .collect()
    }

    /// Keeps the `retain` newest checkpoints (and anything newer than them); deletes older
    /// manifests and epoch directories, and epoch directories no manifest will ever name
    /// (below the oldest kept).
    pub fn retain(&self, retain: usize) {
        let manifests = self.manifests();
        let Some(&oldest_kept) = manifests.get(retain.max(1) - 1) else {
            return;
        };
        for epoch in manifests.iter().filter(|e| **e < oldest_kept) {
            self.backend.remove(&Store::manifest_name(*epoch));
        }
        for (name, epoch) in self.epoch_dirs() {
            if epoch < oldest_kept {
                self.backend.remove_dir(&name);
            }
        }
    }

    /// Removes everything newer than checkpoint `epoch`: manifests that did not verify and the
    /// parts of checkpoints that never completed, from the execution that crashed.
    pub fn remove_after(&self, epoch: u64) {
        for newer in self.manifests().into_iter().filter(|e| *e > epoch) {
            self.backend.remove(&Store::manifest_name(newer));
        }
        for (name, e) in self.epoch_dirs() {
            if e > epoch {
                self.backend.remove_dir(&name);
            }
        }
    }
}
