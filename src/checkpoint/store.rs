//! Where checkpoints live: a directory shared by every process of the mesh, written so that a
//! crash at any instant leaves either the previous complete checkpoint or the new one.
//!
//! ```text
//! DIR/epoch-<c>/part-w<worker>-x<execution>.bin   one worker's part of checkpoint c
//! DIR/manifest-<c>.json                           the checkpoint: written last, by rename
//! ```
//!
//! Every file is written to a temporary name, synced, renamed into place, and its directory
//! synced: a part that exists is whole, and a manifest that exists names parts that exist,
//! with their lengths and CRC-32C checksums so that a damaged one is noticed.

use super::manifest::{Manifest, PartFile, PartHead, SinkFile};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

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
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store in `dir` (created if missing).
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn epoch_dir(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("epoch-{epoch:020}"))
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
        write_durably(&self.dir.join(&name), bytes)?;
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
        if let Ok(entries) = fs::read_dir(self.epoch_dir(epoch)) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if !name.ends_with(&suffix) {
                    continue;
                }
                if name.starts_with("part-w") {
                    parts += 1;
                } else if name.starts_with("skip-w") {
                    skips += 1;
                }
            }
        }
        (parts, skips)
    }

    /// Records that worker `worker` cannot write its part of checkpoint `epoch`.
    pub fn write_skip(&self, epoch: u64, worker: usize, execution: u64) -> io::Result<()> {
        let name = format!("epoch-{epoch:020}/skip-w{worker}-x{execution}.bin");
        write_durably(&self.dir.join(name), b"")
    }

    /// The manifest entry of worker `worker`'s part of checkpoint `epoch` — its length and
    /// checksum, read back from the store —
    /// and the sink files it lists.
    pub fn part_file(
        &self,
        epoch: u64,
        worker: usize,
        execution: u64,
    ) -> io::Result<(PartFile, Vec<SinkFile>)> {
        let name = Store::part_name(epoch, worker, execution);
        let bytes = fs::read(self.dir.join(&name))?;
        let head: PartHead =
            bincode::deserialize(&bytes).map_err(|e| io::Error::other(format!("{name}: {e}")))?;
        let file = PartFile {
            file: name,
            len: bytes.len() as u64,
            crc32c: crc32c::crc32c(&bytes),
        };
        Ok((file, head.sink_files))
    }

    fn target_path(&self, execution: u64) -> PathBuf {
        self.dir.join(format!("target-x{execution}"))
    }

    /// Names checkpoint `epoch` as the one to take now (`last`: the final one of a stop).
    pub fn set_target(&self, execution: u64, epoch: u64, last: bool) -> io::Result<()> {
        let text = format!("{epoch}{}", if last { " last" } else { "" });
        write_durably(&self.target_path(execution), text.as_bytes())
    }

    /// The checkpoint named for execution `execution`, and whether it is a stop's last.
    pub fn target(&self, execution: u64) -> Option<(u64, bool)> {
        let text = fs::read_to_string(self.target_path(execution)).ok()?;
        let mut words = text.split_whitespace();
        let epoch = words.next()?.parse().ok()?;
        Some((epoch, words.next() == Some("last")))
    }

    fn final_path(&self, execution: u64) -> PathBuf {
        self.dir.join(format!("final-x{execution}"))
    }

    /// Records how execution `execution` ends: at checkpoint `epoch` (a stop's, or the end).
    pub fn set_final(&self, execution: u64, epoch: u64) -> io::Result<()> {
        write_durably(&self.final_path(execution), epoch.to_string().as_bytes())
    }

    /// How execution `execution` ends, once its coordinator decided.
    pub fn final_decision(&self, execution: u64) -> Option<u64> {
        fs::read_to_string(self.final_path(execution))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn stop_path(&self, execution: u64) -> PathBuf {
        self.dir.join(format!("stop-x{execution}"))
    }

    /// Asks the coordinator of execution `execution` for a stop with a final checkpoint.
    pub fn request_stop(&self, execution: u64) -> io::Result<()> {
        write_durably(&self.stop_path(execution), b"stop")
    }

    /// Whether a process of execution `execution` asked for a stop.
    pub fn stop_requested(&self, execution: u64) -> bool {
        self.stop_path(execution).exists()
    }

    /// Removes the control files (targets, stop requests) of earlier executions.
    pub fn clear_controls(&self, execution: u64) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let of = name
                .strip_prefix("target-x")
                .or_else(|| name.strip_prefix("stop-x"))
                .or_else(|| name.strip_prefix("final-x"))
                .and_then(|x| x.parse::<u64>().ok());
            if of.is_some_and(|x| x != execution) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Reads a part named by a manifest, checking its length and checksum.
    pub fn read_part(&self, part: &PartFile) -> Result<Vec<u8>, String> {
        let bytes =
            fs::read(self.dir.join(&part.file)).map_err(|e| format!("{}: {e}", part.file))?;
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

    fn manifest_path(&self, epoch: u64) -> PathBuf {
        self.dir.join(format!("manifest-{epoch:020}.json"))
    }

    /// Writes checkpoint `manifest.epoch`'s manifest, last and atomically.
    pub fn write_manifest(&self, manifest: &Manifest) -> io::Result<()> {
        self.write_manifest_with(manifest, || {})
    }

    /// [`Store::write_manifest`], calling `between` after the temporary file is synced and
    /// before it is renamed into place (a fail point).
    pub fn write_manifest_with(
        &self,
        manifest: &Manifest,
        between: impl FnOnce(),
    ) -> io::Result<()> {
        let text = serde_json::to_vec_pretty(manifest).map_err(io::Error::other)?;
        write_durably_with(&self.manifest_path(manifest.epoch), &text, between)
    }

    /// Whether checkpoint `epoch` is complete (its manifest exists).
    pub fn has_manifest(&self, epoch: u64) -> bool {
        self.manifest_path(epoch).exists()
    }

    /// The epochs with a manifest, newest first.
    pub fn manifests(&self) -> Vec<u64> {
        let mut epochs: Vec<u64> = fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        name.strip_prefix("manifest-")?
                            .strip_suffix(".json")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default();
        epochs.sort_unstable_by(|a, b| b.cmp(a));
        epochs
    }

    /// Reads checkpoint `epoch`'s manifest.
    pub fn read_manifest(&self, epoch: u64) -> Result<Manifest, String> {
        let path = self.manifest_path(epoch);
        let text = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
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
            let _ = fs::remove_file(self.manifest_path(*epoch));
        }
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let epoch = name
                    .strip_prefix("epoch-")
                    .and_then(|e| e.parse::<u64>().ok());
                if epoch.is_some_and(|e| e < oldest_kept) {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }

    /// Removes everything newer than checkpoint `epoch`: manifests that did not verify and the
    /// parts of checkpoints that never completed, from the execution that crashed.
    pub fn remove_after(&self, epoch: u64) {
        for newer in self.manifests().into_iter().filter(|e| *e > epoch) {
            let _ = fs::remove_file(self.manifest_path(newer));
        }
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let newer = name
                    .strip_prefix("epoch-")
                    .and_then(|e| e.parse::<u64>().ok())
                    .is_some_and(|e| e > epoch);
                if newer {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}
