//! Files partitioned by event time, committed by the frontier.
//!
//! [`PartitionedFiles::write_partitioned`] appends each record as a JSON line to the file of its
//! partition, `DIR/<partition>/.part-<worker>.jsonl.inprogress`. When the frontier passes a
//! partition's end, no more (on-time) records can belong to it: the worker flushes and renames
//! its file to `part-<worker>.jsonl` (atomic on one filesystem) and reports the partition as
//! committed. Once every worker has committed a partition, one worker writes its `_SUCCESS`
//! marker — readers take a partition only when the marker is there (Flink's `success-file`
//! commit policy). A late record for a committed partition goes to a new part file there
//! (`part-<worker>-<n>.jsonl`), committed at the next step.
//!
//! **With checkpoints** the files take part in exactly-once output instead: a worker's rows of
//! a partition go to epoch files ([`crate::checkpoint::sink`]) of the output
//! `DIR/<partition>/part-<worker>.jsonl`, listed in its checkpoint parts, and process 0 appends
//! every worker's to the outputs once the checkpoint covering them is durable (each output's
//! `.commit` marker records how far). When the frontier passes a partition's end, the worker
//! that gathers the reports queues its `_SUCCESS` for the checkpoint of that epoch: process 0
//! writes it (holding that checkpoint's time) after the rows. A restore rolls every output in
//! `DIR` to the restored checkpoint and removes markers of later ones. Late records are appended
//! to the partition's files at a later checkpoint.
//!
//! Several processes must share one filesystem for `_SUCCESS` to describe the whole mesh.

use super::gather::GatherWindows;
use crate::checkpoint::sink::{epoch_of, EpochFiles};
use crate::checkpoint::WorkerCheckpoint;
use crate::time::EventTime;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;

/// A partition: its directory (relative to the output directory) and the end of its time range.
pub type Partition = (String, EventTime);

struct OpenFile {
    temp: PathBuf,
    done: PathBuf,
    writer: BufWriter<File>,
}

fn open(dir: &Path, partition: &str, worker: usize, seq: u64) -> std::io::Result<OpenFile> {
    let folder = dir.join(partition);
    std::fs::create_dir_all(&folder)?;
    let name = if seq == 0 {
        format!("part-{worker}.jsonl")
    } else {
        format!("part-{worker}-{seq}.jsonl")
    };
    let temp = folder.join(format!(".{name}.inprogress"));
    Ok(OpenFile {
        writer: BufWriter::new(File::create(&temp)?),
        temp,
        done: folder.join(name),
    })
}

fn commit(file: OpenFile) -> std::io::Result<()> {
    let OpenFile { temp, done, writer } = file;
    writer
        .into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()?;
    std::fs::rename(temp, done)
}

/// Partition end → partition → what a worker keeps open for it.
type OpenPartitions<V> = BTreeMap<EventTime, HashMap<String, V>>;

/// Removes and returns, by end, the partitions whose end the frontier `f` has passed.
fn take_passed<V>(
    open: &mut OpenPartitions<V>,
    f: EventTime,
) -> Vec<(EventTime, HashMap<String, V>)> {
    if f == EventTime::MAX {
        return std::mem::take(open).into_iter().collect();
    }
    let still_open = open.split_off(&(f + 1));
    std::mem::replace(open, still_open).into_iter().collect()
}

/// Holds the capability at the earliest end still open (or the frontier `f`), so a partition's
/// report can leave at its end; lets it go at the end of input.
fn hold_for<V>(held: &mut Option<Capability<EventTime>>, open: &OpenPartitions<V>, f: EventTime) {
    if f == EventTime::MAX {
        *held = None;
    } else if let Some(cap) = held.as_mut() {
        let next = open.keys().next().map_or(f, |&e| e.min(f));
        if next > *cap.time() {
            cap.downgrade(&next);
        }
    }
}

/// Writing a stream into partitioned files.
pub trait PartitionedFiles<'s, R> {
    /// Writes each record under `partition_of(r)` in `dir`; returns the stream of partitions
    /// whose `_SUCCESS` marker has been written, to be tracked until the run ends.
    fn write_partitioned(
        self,
        name: &str,
        dir: PathBuf,
        partition_of: impl Fn(&R) -> Partition + 'static,
    ) -> StreamVec<'s, EventTime, Partition>;
}

impl<'s, R: Serialize + 'static> PartitionedFiles<'s, R> for StreamVec<'s, EventTime, R> {
    fn write_partitioned(
        self,
        name: &str,
        dir: PathBuf,
        partition_of: impl Fn(&R) -> Partition + 'static,
    ) -> StreamVec<'s, EventTime, Partition> {
        if let Some(checkpoint) = crate::checkpoint::current() {
            return write_checkpointed(self, name, dir, partition_of, checkpoint);
        }
        let worker = self.scope().index();
        let success_dir = dir.clone();
        let committed = self.unary_frontier::<CapacityContainerBuilder<Vec<Partition>>, _, _, _>(
            Pipeline,
            name,
            move |cap, _info| {
                let mut held = Some(cap);
                // Partition end → partition → open file.
                let mut files: OpenPartitions<OpenFile> = BTreeMap::new();
                let mut late_files: u64 = 0;
                move |(input, frontier), output| {
                    let f = frontier
                        .frontier()
                        .first()
                        .copied()
                        .unwrap_or(EventTime::MAX);
                    let mut line = Vec::new();
                    input.for_each(|_stamp, batch| {
                        for r in batch.iter() {
                            let (partition, end) = partition_of(r);
                            let slot = files.entry(end).or_default();
                            if !slot.contains_key(&partition) {
                                // A partition already committed here gets a fresh part file.
                                let seq = if end <= f {
                                    late_files += 1;
                                    late_files
                                } else {
                                    0
                                };
                                match open(&dir, &partition, worker, seq) {
                                    Ok(file) => {
                                        slot.insert(partition.clone(), file);
                                    }
                                    Err(e) => {
                                        tracing::error!(
                                            "cannot open a part file in {}: {e}",
                                            dir.display()
                                        );
                                        continue;
                                    }
                                }
                            }
                            line.clear();
                            let _ = serde_json::to_writer(&mut line, r);
                            line.push(b'\n');
                            if let Some(file) = slot.get_mut(&partition) {
                                if let Err(e) = file.writer.write_all(&line) {
                                    tracing::error!("writing {}: {e}", file.temp.display());
                                }
                            }
                        }
                    });
                    let Some(cap) = held.as_ref() else {
                        return;
                    };
                    for (end, partitions) in take_passed(&mut files, f) {
                        let at = cap.delayed(&end.max(*cap.time()));
                        let mut session = output.session(&at);
                        for (partition, file) in partitions {
                            if let Err(e) = commit(file) {
                                tracing::error!("committing partition {partition}: {e}");
                            }
                            session.give((partition, end));
                        }
                    }
                    hold_for(&mut held, &files, f);
                }
            },
        );
        committed.gather_windows(
            &format!("{name}.success"),
            |p: &Partition| p.1,
            move |_end, partitions| {
                let mut done: Vec<Partition> = partitions;
                done.sort();
                done.dedup();
                for (partition, _) in &done {
                    let marker = success_dir.join(partition).join("_SUCCESS");
                    if let Err(e) = File::create(&marker) {
                        tracing::error!("cannot write {}: {e}", marker.display());
                    }
                }
                done
            },
        )
    }
}

/// The partition writer of a run with checkpoints: rows go to epoch files of each partition's
/// output, committed by process 0 with the checkpoint; `_SUCCESS` follows the partition's last
/// epoch.
fn write_checkpointed<'s, R: Serialize + 'static>(
    rows: StreamVec<'s, EventTime, R>,
    name: &str,
    dir: PathBuf,
    partition_of: impl Fn(&R) -> Partition + 'static,
    checkpoint: Rc<WorkerCheckpoint>,
) -> StreamVec<'s, EventTime, Partition> {
    // Outputs are named by absolute paths, as the restore finds them.
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let worker = rows.scope().index();
    let interval = checkpoint.interval();
    let success_dir = dir.clone();
    let marker_checkpoint = Rc::clone(&checkpoint);
    let closed = rows.unary_frontier::<CapacityContainerBuilder<Vec<Partition>>, _, _, _>(
        Pipeline,
        name,
        move |cap, _info| {
            let mut held = Some(cap);
            // A run that restored nothing starts each output afresh, once.
            let fresh = checkpoint.shared.restored.is_none();
            let mut started: HashSet<String> = HashSet::new();
            // Partition end → partition → this worker's epoch files of it.
            let mut open: OpenPartitions<Rc<RefCell<EpochFiles>>> = BTreeMap::new();
            let mut lines: HashMap<Partition, Vec<u8>> = HashMap::new();
            // The frontier at the end of the last activation: partitions ending at or before it
            // were reported, and a record for one of them is late.
            let mut passed: EventTime = 0;
            move |(input, frontier), output| {
                let f = frontier
                    .frontier()
                    .first()
                    .copied()
                    .unwrap_or(EventTime::MAX);
                input.for_each(|stamp, batch| {
                    let time = stamp.least().copied().unwrap_or(0);
                    for r in batch.iter() {
                        let line = lines.entry(partition_of(r)).or_default();
                        let _ = serde_json::to_writer(&mut *line, r);
                        line.push(b'\n');
                    }
                    for ((partition, end), bytes) in lines.drain() {
                        let slot = open.entry(end).or_default();
                        let files = match slot.get(&partition) {
                            Some(files) => Rc::clone(files),
                            None => {
                                let output =
                                    dir.join(&partition).join(format!("part-{worker}.jsonl"));
                                let afresh = fresh && started.insert(partition.clone());
                                let made = std::fs::create_dir_all(dir.join(&partition))
                                    .and_then(|()| checkpoint.shared_epoch_files(&output, afresh));
                                match made {
                                    Ok(files) => {
                                        // A late record's partition was reported: its files
                                        // are let go of at once.
                                        if end > passed {
                                            slot.insert(partition, Rc::clone(&files));
                                        }
                                        files
                                    }
                                    Err(e) => {
                                        checkpoint.fail(format!(
                                            "cannot start {}: {e}",
                                            output.display()
                                        ));
                                        continue;
                                    }
                                }
                            }
                        };
                        files.borrow_mut().write(time, &bytes);
                    }
                });
                open.retain(|_, slot| !slot.is_empty());
                passed = f;
                let Some(cap) = held.as_ref() else {
                    return;
                };
                for (end, partitions) in take_passed(&mut open, f) {
                    let at = cap.delayed(&end.max(*cap.time()));
                    let mut session = output.session(&at);
                    // The epoch files stay with the checkpoint; only the report leaves.
                    for (partition, _files) in partitions {
                        session.give((partition, end));
                    }
                }
                hold_for(&mut held, &open, f);
            }
        },
    );
    closed.gather_windows(
        &format!("{name}.success"),
        |p: &Partition| p.1,
        move |end, partitions| {
            let mut done: Vec<Partition> = partitions;
            done.sort();
            done.dedup();
            // Every row of the partition is in an epoch up to this one.
            let epoch = epoch_of(end.saturating_sub(1), interval);
            for (partition, _) in &done {
                marker_checkpoint.add_marker(&success_dir.join(partition).join("_SUCCESS"), epoch);
            }
            done
        },
    )
}
