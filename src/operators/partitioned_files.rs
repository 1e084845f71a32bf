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
//! Several processes must share one filesystem for `_SUCCESS` to describe the whole mesh.

use super::gather::GatherWindows;
use crate::time::EventTime;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
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
        crate::checkpoint::not_checkpointable(name, "its partition files are not epoch-committed");
        let worker = self.scope().index();
        let success_dir = dir.clone();
        let committed = self.unary_frontier::<CapacityContainerBuilder<Vec<Partition>>, _, _, _>(
            Pipeline,
            name,
            move |cap, _info| {
                let mut held = Some(cap);
                // Partition end → partition → open file.
                let mut files: BTreeMap<EventTime, HashMap<String, OpenFile>> = BTreeMap::new();
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
                    let Some(cap) = held.as_mut() else {
                        return;
                    };
                    while let Some(entry) = files.first_entry() {
                        let end = *entry.key();
                        if end > f {
                            break;
                        }
                        let at = cap.delayed(&end.max(*cap.time()));
                        let mut session = output.session(&at);
                        for (partition, file) in entry.remove() {
                            if let Err(e) = commit(file) {
                                tracing::error!("committing partition {partition}: {e}");
                            }
                            session.give((partition, end));
                        }
                    }
                    if f == EventTime::MAX {
                        held = None;
                    } else {
                        let next = files.keys().next().map_or(f, |&e| e.min(f));
                        if next > *cap.time() {
                            cap.downgrade(&next);
                        }
                    }
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
