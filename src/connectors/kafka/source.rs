//! The `kafka://HOST:PORT/TOPIC` source: one consumer per worker, partitions assigned
//! deterministically, a watermark per partition.
//!
//! **Assignment.** Partition `p` belongs to global worker `p mod peers`, over every worker of
//! every process — no consumer-group rebalancing, so the same mesh always reads the same
//! partitions, and a worker without partitions finishes at once (it never holds the frontier).
//!
//! **Watermarks.** Each partition is an ordered stream of its own: the worker's watermark basis
//! is the *minimum* over its partitions of the largest event time each has delivered, so a slow
//! partition is never overtaken by a fast one. A partition that has delivered nothing for the
//! idle timeout stops counting (it would stall the frontier forever); when every partition of
//! the worker is idle, its basis moves on with the wall clock from the latest event time seen.
//! Records that then arrive on a revived partition behind the watermark are late, as anywhere.
//!
//! **Ending.** With `--until-end`, each partition is read up to the end it had when the run
//! started (or until librdkafka reports its end), so a finite topic gives final results. Only
//! committed records are read (`isolation.level=read_committed`).
//!
//! **Offsets.** The next offset of each partition is tracked and reported; when a bounded run
//! completes and its rows were flushed, the driver commits them to the consumer group
//! ([`commit`]), which is where `--kafka-start committed` resumes.
//!
//! **Checkpoints.** Positions belong to partitions, not workers: a cut holds, per partition,
//! the next offset to read and — for the records already read whose event time is at or after
//! a checkpoint interval's start — the first offset of each interval (what the checkpoint
//! needs read again). A resumed reader seeks each partition to the smallest offset it needs,
//! re-delivers only the records at or after the checkpoint from the part read before the cut,
//! and reads normally from there — at any worker count, since every worker finds its
//! partitions in whichever old worker's cut holds them. When a checkpoint completes, the
//! offsets it resumes from are committed to the consumer group (consumer lag shows what a
//! restore would read again); offsets are never committed ahead of a checkpoint.
//!
//! **Latency.** Records carry the producer's timestamp (or the broker's append time): the
//! latency ledger measures from it, so the report shows the end-to-end figure from produce to
//! output.
//!
//! Bad records (not a record of the pipeline's type, too large, empty) are dead letters with
//! their topic, partition and offset. Transient consumer errors are logged and left to librdkafka's retries;
//! a consumer that gets nothing but errors for [`OUTAGE_TIMEOUTS`] × `--kafka-timeout` fails the
//! run with the last error rather than hang.

use super::client::{self, Logged};
use super::{KafkaError, KafkaSourceOptions, KafkaUrl, StartOffset};
use crate::connectors::format::Decoder;
use crate::connectors::{
    Ingest, InputFormat, PartitionProgress, Position, ReadStatus, Reader, SourceError,
};
use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::record::Record;
use crate::time::EventTime;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a reader with nothing to read looks again at its partitions' idleness (new
/// records wake it at once).
const RECHECK: Duration = Duration::from_millis(100);

/// One assigned partition.
#[derive(Debug)]
struct Partition {
    id: i32,
    /// Offset of the next record to read (`None` until the first record).
    next_offset: Option<i64>,
    /// Where `--until-end` stops: the partition's end when the run started.
    stop_at: Option<i64>,
    /// Largest event time delivered.
    max_event_time: Option<EventTime>,
    /// When it last delivered a record (or was assigned).
    last_record: Instant,
    /// Read to its end (`--until-end`).
    finished: bool,
    /// Where reading started, when a checkpoint may need it (the offset `latest` or
    /// `committed` resolved to); `None`: the beginning.
    start_offset: Option<i64>,
    /// Checkpoints: interval start → the first offset read of a record with an event time in
    /// that interval (only intervals a checkpoint may still need).
    read_ahead: BTreeMap<EventTime, i64>,
    /// After a resume at `c`: records before this offset were read before the checkpoint;
    /// only those at or after `c` are delivered again.
    replay_until: Option<(i64, EventTime)>,
}

/// One partition's place in a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PartitionCut {
    id: i32,
    /// The next offset to read (`None`: nothing read, from the beginning).
    next_offset: Option<i64>,
    /// Interval start → first offset of a record read with an event time in it.
    read_ahead: Vec<(EventTime, i64)>,
    /// The largest event time the partition delivered.
    max_event_time: Option<EventTime>,
}

/// A Kafka reader's cut at a checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KafkaCut {
    topic: String,
    interval: EventTime,
    partitions: Vec<PartitionCut>,
}

impl PartitionCut {
    /// The offset to read from to resume at checkpoint `c`: the first record read before the
    /// cut with an event time at or after `c`, or the cut itself.
    fn resume_offset(&self, c: EventTime, interval: EventTime) -> Option<i64> {
        let bucket = c - c % interval.max(1);
        let ahead = self
            .read_ahead
            .iter()
            .filter(|(b, _)| *b >= bucket)
            .map(|(_, o)| *o)
            .min();
        match (ahead, self.next_offset) {
            (Some(a), Some(n)) => Some(a.min(n)),
            (a, n) => a.or(n),
        }
    }
}

/// One worker's consumer.
pub struct KafkaReader<R> {
    consumer: BaseConsumer<Logged>,
    decoder: Decoder<R>,
    url: KafkaUrl,
    partitions: Vec<Partition>,
    peers: i32,
    options: KafkaSourceOptions,
    max_record_bytes: usize,
    /// `Instant` and Unix-epoch ms of one moment, to place record timestamps on the monotonic
    /// clock.
    anchor: (Instant, i64),
    /// Transient consumer errors seen (logged, retried by librdkafka).
    transient_errors: u64,
    /// Since when the consumer has reported only errors (no record, no partition end).
    failing_since: Option<Instant>,
    /// The checkpoint interval (0: the run does not checkpoint).
    interval: EventTime,
    /// Partitions and start offsets, assigned at the first read — after a resume has set them
    /// (assigning twice would deliver what the first assignment fetched meanwhile as well).
    assignment: Option<TopicPartitionList>,
}

/// A consumer that has seen nothing but errors for this many `--kafka-timeout`s fails the run:
/// long enough to ride out a broker restart or a leader election, short enough not to hang.
pub const OUTAGE_TIMEOUTS: u32 = 6;

fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn unavailable(url: &KafkaUrl, timeout: Duration, e: impl std::fmt::Display) -> KafkaError {
    KafkaError::Unreachable {
        brokers: url.brokers.clone(),
        timeout,
        detail: e.to_string(),
    }
}

/// Checks that the brokers answer and the topic exists, for a clear error before any worker
/// starts.
pub fn validate_source(url: &KafkaUrl, options: &KafkaSourceOptions) -> Result<(), KafkaError> {
    let metadata = client::metadata_client(url, &options.props)?;
    client::existing_partitions(&metadata, url, options.timeout).map(drop)
}

/// Opens worker `index` of `peers`' share of `url`'s topic, reading records as `input` says.
pub fn open_reader<R: Record>(
    url: &KafkaUrl,
    options: &KafkaSourceOptions,
    input: &InputFormat,
    index: usize,
    peers: usize,
) -> Result<Box<dyn Reader<R>>, KafkaError> {
    Ok(Box::new(KafkaReader::open(
        url, options, input, index, peers,
    )?))
}

/// Where `--kafka-start` starts a partition.
fn configured_start(start: StartOffset) -> Offset {
    match start {
        StartOffset::Earliest => Offset::Beginning,
        StartOffset::Latest => Offset::End,
        StartOffset::Committed => Offset::Stored,
    }
}

fn consumer(
    url: &KafkaUrl,
    options: &KafkaSourceOptions,
) -> Result<BaseConsumer<Logged>, KafkaError> {
    let reset = match options.start {
        StartOffset::Latest => "latest",
        StartOffset::Earliest | StartOffset::Committed => "earliest",
    };
    let config = client::config(
        url,
        &[
            ("group.id", options.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "true"),
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", reset),
            // Hand records over as soon as any are fetched.
            ("fetch.wait.max.ms", "10"),
        ],
        &options.props,
    );
    BaseConsumer::from_config_and_context(&config, Logged)
        .map_err(|e| client::client_error("creating a consumer", e))
}

impl<R: Record> KafkaReader<R> {
    /// Opens worker `index` of `peers`' share of `url`'s topic.
    pub fn open(
        url: &KafkaUrl,
        options: &KafkaSourceOptions,
        input: &InputFormat,
        index: usize,
        peers: usize,
    ) -> Result<Self, KafkaError> {
        // The consumer reads the topic's metadata itself: one client per worker.
        let consumer = consumer(url, options)?;
        let all = client::existing_partitions(&consumer, url, options.timeout)?;
        let now = Instant::now();
        let mut partitions = Vec::new();
        let mut assignment = TopicPartitionList::new();
        for id in all.into_iter().filter(|p| *p as usize % peers == index) {
            assignment
                .add_partition_offset(&url.topic, id, configured_start(options.start))
                .map_err(|e| client::client_error("assigning partitions", e))?;
            let stop_at = if options.until_end {
                let (_, high) = consumer
                    .fetch_watermarks(&url.topic, id, options.timeout)
                    .map_err(|e| unavailable(url, options.timeout, e))?;
                Some(high)
            } else {
                None
            };
            partitions.push(Partition {
                id,
                next_offset: None,
                stop_at,
                max_event_time: None,
                last_record: now,
                finished: false,
                start_offset: None,
                read_ahead: BTreeMap::new(),
                replay_until: None,
            });
        }
        if options.until_end && options.start == StartOffset::Latest {
            // Nothing written before the start is read, and --until-end stops there.
            for p in &mut partitions {
                p.finished = true;
            }
        }
        tracing::info!(
            "worker {index}: reading {} partition(s) of {} ({:?})",
            partitions.len(),
            url,
            partitions.iter().map(|p| p.id).collect::<Vec<_>>()
        );
        Ok(KafkaReader {
            consumer,
            decoder: input.decoder(),
            url: url.clone(),
            partitions,
            peers: peers as i32,
            options: options.clone(),
            max_record_bytes: input.max_record_bytes,
            anchor: (Instant::now(), epoch_ms(SystemTime::now())),
            transient_errors: 0,
            failing_since: None,
            interval: 0,
            assignment: Some(assignment),
        })
    }

    fn partition(&mut self, id: i32) -> Option<&mut Partition> {
        // Partition p is the (p / peers)-th of this worker's, in id order.
        let slot = (id / self.peers) as usize;
        self.partitions.get_mut(slot).filter(|p| p.id == id)
    }

    /// The monotonic instant of a record timestamp (epoch ms), never after `now`.
    fn instant_of(&self, ms: i64, now: Instant) -> Instant {
        let (at, at_ms) = self.anchor;
        let t = if ms >= at_ms {
            at + Duration::from_millis((ms - at_ms) as u64)
        } else {
            at.checked_sub(Duration::from_millis((at_ms - ms) as u64))
                .unwrap_or(at)
        };
        t.min(now)
    }

    fn all_finished(&self) -> bool {
        self.partitions.iter().all(|p| p.finished)
    }
}

impl<R: Record> Reader<R> for KafkaReader<R> {
    fn read(
        &mut self,
        now: Instant,
        max: usize,
        out: &mut Ingest<R>,
    ) -> Result<ReadStatus, SourceError> {
        if let Some(assignment) = self.assignment.take() {
            self.consumer
                .assign(&assignment)
                .map_err(|e| client::client_error("assigning partitions", e))?;
        }
        let mut taken = 0;
        while taken < max && !self.all_finished() {
            let Some(result) = self.consumer.poll(Duration::ZERO) else {
                break;
            };
            if matches!(result, Ok(_) | Err(RdError::PartitionEOF(_))) {
                self.failing_since = None;
            }
            let message = match result {
                Ok(message) => message,
                Err(RdError::PartitionEOF(id)) => {
                    let until_end = self.options.until_end;
                    if let Some(p) = self.partition(id) {
                        // The end now is at or past the end at the start.
                        p.finished |= until_end;
                    }
                    continue;
                }
                Err(e) => {
                    let fatal = matches!(
                        e.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::Fatal)
                            | Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                            | Some(RDKafkaErrorCode::TopicAuthorizationFailed)
                            | Some(RDKafkaErrorCode::GroupAuthorizationFailed)
                    );
                    if fatal {
                        return Err(SourceError::Kafka(client::client_error(
                            &format!("consuming {}", self.url),
                            e,
                        )));
                    }
                    self.transient_errors += 1;
                    let since = *self.failing_since.get_or_insert(now);
                    let outage = self.options.timeout * OUTAGE_TIMEOUTS;
                    if now.saturating_duration_since(since) >= outage {
                        return Err(SourceError::Kafka(client::client_error(
                            &format!("consuming {}", self.url),
                            format!("nothing but errors for {outage:?}; the last: {e}"),
                        )));
                    }
                    if self.transient_errors.is_power_of_two() {
                        tracing::warn!(
                            "consuming {}: {e} (retrying; {} such errors so far)",
                            self.url,
                            self.transient_errors
                        );
                    }
                    break;
                }
            };
            taken += 1;
            let (id, offset) = (message.partition(), message.offset());
            let records_before = out.records.len();
            let dead_before = out.dead.len();
            {
                let origin = || Origin::Kafka {
                    topic: message.topic().to_string(),
                    partition: id,
                    offset,
                };
                match message.payload() {
                    None => out.dead.push(DeadLetter::new(
                        origin(),
                        Reason::InvalidEvent,
                        "record has no value",
                        b"",
                    )),
                    Some(bytes) => {
                        let oversized = bytes.len() > self.max_record_bytes;
                        self.decoder
                            .decode(bytes, oversized, self.max_record_bytes, origin, out);
                    }
                }
            }
            if let Some(ms) = message.timestamp().to_millis() {
                let at = self.instant_of(ms, now);
                out.scheduled = Some(out.scheduled.map_or(at, |s| s.max(at)));
            }
            drop(message);
            let event_time = out.records[records_before..]
                .first()
                .map(|r| r.event_time());
            let interval = self.interval;
            let Some(p) = self.partition(id) else {
                continue;
            };
            p.next_offset = Some(offset + 1);
            p.last_record = now;
            if let Some(t) = event_time {
                p.max_event_time = Some(p.max_event_time.map_or(t, |m| m.max(t)));
            }
            let mut delivered = event_time;
            if let Some((_, c)) = p.replay_until.filter(|(until, _)| offset < *until) {
                // Read before the checkpoint: its dead letter is in the checkpoint's output
                // already, and so is its record unless it is at or after the checkpoint.
                out.dead.truncate(dead_before);
                if event_time.is_some_and(|t| t < c) {
                    out.records.truncate(records_before);
                    delivered = None;
                }
            }
            if let Some(t) = delivered.filter(|_| interval > 0) {
                p.read_ahead.entry(t - t % interval).or_insert(offset);
            }
            if p.stop_at.is_some_and(|end| offset + 1 >= end) {
                p.finished = true;
            }
        }
        if self.all_finished() {
            return Ok(ReadStatus::Done);
        }
        if taken == max {
            Ok(ReadStatus::More)
        } else {
            Ok(ReadStatus::WaitUntil(now + RECHECK))
        }
    }

    fn watermark_basis(
        &mut self,
        now: Instant,
        _max_seen: Option<EventTime>,
        peers_max: Option<EventTime>,
    ) -> Option<EventTime> {
        let idle = self.options.idle_timeout;
        let mut active = self
            .partitions
            .iter()
            .filter(|p| !p.finished && now.saturating_duration_since(p.last_record) < idle)
            .peekable();
        if active.peek().is_some() {
            // Every active partition must have spoken before the watermark can move.
            return active
                .map(|p| p.max_event_time)
                .try_fold(EventTime::MAX, |min, t| t.map(|t| min.min(t)));
        }
        // Every partition is finished or idle: stop holding the others back — follow the
        // largest event time any worker has read — and move on with the wall clock from the
        // latest event time seen, so that the last windows close when every input is quiet.
        let own = self
            .partitions
            .iter()
            .filter_map(|p| p.max_event_time)
            .max();
        let latest = own.max(peers_max)?;
        let quiet_since = self.partitions.iter().map(|p| p.last_record).max()?;
        Some(latest + now.saturating_duration_since(quiet_since).as_millis() as u64)
    }

    fn shares_progress(&self) -> bool {
        true
    }

    fn set_waker(&mut self, wake: Box<dyn Fn() + Send + Sync>) {
        self.consumer.set_nonempty_callback(wake);
    }

    fn pause(&mut self, paused: bool) {
        if self.assignment.is_some() {
            return; // nothing assigned yet: nothing is fetched
        }
        let assigned = match self.consumer.assignment() {
            Ok(assigned) => assigned,
            Err(e) => {
                tracing::warn!("flow control on {}: {e}", self.url);
                return;
            }
        };
        let result = if paused {
            self.consumer.pause(&assigned)
        } else {
            self.consumer.resume(&assigned)
        };
        if let Err(e) = result {
            tracing::warn!("flow control on {}: {e}", self.url);
        }
    }

    fn checkpoints_every(&mut self, interval: EventTime) {
        self.interval = interval;
        // A checkpoint taken before a partition delivers anything must still say where it
        // started: `latest` and `committed` are resolved to offsets now.
        let committed = match self.options.start {
            StartOffset::Committed => self
                .consumer
                .committed(self.options.timeout)
                .map_err(|e| tracing::warn!("reading the committed offsets of {}: {e}", self.url))
                .ok(),
            _ => None,
        };
        for p in &mut self.partitions {
            p.start_offset = match self.options.start {
                StartOffset::Earliest => None,
                StartOffset::Latest => self
                    .consumer
                    .fetch_watermarks(&self.url.topic, p.id, self.options.timeout)
                    .ok()
                    .map(|(_, high)| high),
                StartOffset::Committed => committed.as_ref().and_then(|list| {
                    match list.find_partition(&self.url.topic, p.id)?.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    }
                }),
            };
        }
    }

    fn cut(&self, interval: EventTime) -> Option<Vec<u8>> {
        let cut = KafkaCut {
            topic: self.url.topic.clone(),
            interval,
            partitions: self
                .partitions
                .iter()
                .map(|p| PartitionCut {
                    id: p.id,
                    // While replaying, the cut stays where the checkpoint's was.
                    next_offset: p
                        .next_offset
                        .or(p.start_offset)
                        .max(p.replay_until.map(|(until, _)| until)),
                    read_ahead: p.read_ahead.iter().map(|(b, o)| (*b, *o)).collect(),
                    max_event_time: p.max_event_time,
                })
                .collect(),
        };
        bincode::serialize(&cut).ok()
    }

    fn on_watermark(&mut self, watermark: EventTime) {
        if self.interval == 0 {
            return;
        }
        // Checkpoints to come are above the watermark: intervals below it are never needed.
        let keep = watermark - watermark % self.interval;
        for p in &mut self.partitions {
            p.read_ahead = p.read_ahead.split_off(&keep);
        }
    }

    fn resume(
        &mut self,
        c: EventTime,
        cuts: &[Vec<u8>],
        _same_split: Option<usize>,
    ) -> Result<(), SourceError> {
        // Every old worker's partitions, whichever worker held them.
        let mut found: BTreeMap<i32, (PartitionCut, EventTime)> = BTreeMap::new();
        for bytes in cuts.iter().filter(|b| !b.is_empty()) {
            let cut: KafkaCut = bincode::deserialize(bytes).map_err(|e| {
                SourceError::Unresumable(format!(
                    "a Kafka cut of the checkpoint is unreadable: {e}"
                ))
            })?;
            if cut.topic != self.url.topic {
                return Err(SourceError::Unresumable(format!(
                    "the checkpoint read topic {:?}, not {:?}",
                    cut.topic, self.url.topic
                )));
            }
            for p in cut.partitions {
                found.insert(p.id, (p, cut.interval));
            }
        }
        let mut assignment = TopicPartitionList::new();
        for p in &mut self.partitions {
            let Some((cut, interval)) = found.remove(&p.id) else {
                // A partition added since the checkpoint: read it from its start.
                tracing::info!(
                    "partition {} of {} is new since the checkpoint",
                    p.id,
                    self.url
                );
                continue;
            };
            let from = cut.resume_offset(c, interval);
            tracing::info!(
                "partition {} of {}: resuming checkpoint {c} at offset {from:?} (the cut was at {:?})",
                p.id,
                self.url,
                cut.next_offset
            );
            let offset = from.map_or(Offset::Beginning, Offset::Offset);
            assignment
                .add_partition_offset(&self.url.topic, p.id, offset)
                .map_err(|e| client::client_error("assigning partitions", e))?;
            p.replay_until = cut.next_offset.map(|n| (n, c));
            // What the partition read ahead is delivered again: its largest event time
            // counts from the checkpoint on, or the watermark would run ahead of the replay
            // and make the replayed records late.
            p.max_event_time = cut.max_event_time.map(|m| m.min(c.saturating_sub(1)));
            p.next_offset = from;
            p.start_offset = from;
            p.read_ahead = cut
                .read_ahead
                .into_iter()
                .filter(|(b, _)| *b >= c)
                .collect();
            if p.stop_at.is_some_and(|end| from.unwrap_or(0) >= end) {
                p.finished = true;
            }
        }
        // Partitions without a cut keep their configured start.
        let start = configured_start(self.options.start);
        for p in &self.partitions {
            if assignment.find_partition(&self.url.topic, p.id).is_none() {
                assignment
                    .add_partition_offset(&self.url.topic, p.id, start)
                    .map_err(|e| client::client_error("assigning partitions", e))?;
            }
        }
        self.assignment = Some(assignment);
        Ok(())
    }

    fn checkpoint_completed(&mut self, c: EventTime, cut: &[u8]) {
        if !self.options.commit {
            return;
        }
        let Ok(cut) = bincode::deserialize::<KafkaCut>(cut) else {
            return;
        };
        let mut list = TopicPartitionList::new();
        for p in &cut.partitions {
            if let Some(o) = p.resume_offset(c, cut.interval) {
                let _ = list.add_partition_offset(&self.url.topic, p.id, Offset::Offset(o));
            }
        }
        if list.count() == 0 {
            return;
        }
        // Asynchronous: the worker never waits on the group coordinator.
        if let Err(e) = self.consumer.commit(&list, CommitMode::Async) {
            tracing::warn!(
                "committing the offsets of checkpoint {c} to group {:?}: {e}",
                self.options.group_id
            );
        }
    }

    fn positions(&self) -> Vec<Position> {
        self.partitions
            .iter()
            .filter_map(|p| {
                p.next_offset.map(|next_offset| Position {
                    partition: p.id,
                    next_offset,
                })
            })
            .collect()
    }

    fn progress(&self, now: Instant) -> Vec<PartitionProgress> {
        let idle = self.options.idle_timeout;
        self.partitions
            .iter()
            .map(|p| PartitionProgress {
                topic: self.url.topic.clone(),
                partition: p.id,
                next_offset: p.next_offset,
                max_event_time: p.max_event_time,
                // As the watermark sees it (watermark_basis).
                idle: p.finished || now.saturating_duration_since(p.last_record) >= idle,
            })
            .collect()
    }
}

/// Commits `positions` (next offsets) of `url`'s topic to the group of `options`.
pub fn commit(
    url: &KafkaUrl,
    options: &KafkaSourceOptions,
    positions: &[Position],
) -> Result<(), KafkaError> {
    if positions.is_empty() {
        return Ok(());
    }
    let consumer = consumer(url, options)?;
    let mut list = TopicPartitionList::new();
    for p in positions {
        list.add_partition_offset(&url.topic, p.partition, Offset::Offset(p.next_offset))
            .map_err(|e| client::client_error("committing offsets", e))?;
    }
    consumer.commit(&list, CommitMode::Sync).map_err(|e| {
        client::client_error(
            &format!(
                "committing offsets of {url} for group {:?}",
                options.group_id
            ),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader over partitions with the given (max event time, silent for) states; its
    /// consumer is never polled (nothing connects).
    use crate::record::testing::Reading;

    fn reader(partitions: &[(Option<EventTime>, Duration)], now: Instant) -> KafkaReader<Reading> {
        let url = KafkaUrl::parse("kafka://127.0.0.1:1/t").unwrap();
        let options = KafkaSourceOptions {
            group_id: "g".into(),
            start: StartOffset::Earliest,
            until_end: false,
            idle_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(1),
            commit: false,
            props: Default::default(),
        };
        KafkaReader {
            consumer: consumer(&url, &options).unwrap(),
            decoder: InputFormat::default().decoder(),
            url,
            partitions: partitions
                .iter()
                .enumerate()
                .map(|(id, (max, silent))| Partition {
                    id: id as i32,
                    next_offset: None,
                    stop_at: None,
                    max_event_time: *max,
                    last_record: now - *silent,
                    finished: false,
                    start_offset: None,
                    read_ahead: BTreeMap::new(),
                    replay_until: None,
                })
                .collect(),
            peers: 1,
            options,
            max_record_bytes: 1024,
            anchor: (now, 0),
            transient_errors: 0,
            failing_since: None,
            interval: 0,
            assignment: None,
        }
    }

    const ACTIVE: Duration = Duration::from_secs(1);
    const IDLE: Duration = Duration::from_secs(6);

    #[test]
    fn the_slowest_active_partition_sets_the_watermark() {
        let now = Instant::now();
        let mut r = reader(&[(Some(5_000), ACTIVE), (Some(9_000), ACTIVE)], now);
        assert_eq!(r.watermark_basis(now, Some(9_000), None), Some(5_000));
        // A partition that has not spoken yet holds the watermark…
        let mut r = reader(&[(None, ACTIVE), (Some(9_000), ACTIVE)], now);
        assert_eq!(r.watermark_basis(now, Some(9_000), None), None);
        // …until it is idle; idle partitions do not count.
        let mut r = reader(&[(None, IDLE), (Some(9_000), ACTIVE)], now);
        assert_eq!(r.watermark_basis(now, Some(9_000), None), Some(9_000));
        let mut r = reader(&[(Some(1_000), IDLE), (Some(9_000), ACTIVE)], now);
        assert_eq!(r.watermark_basis(now, Some(9_000), None), Some(9_000));
    }

    #[test]
    fn an_idle_worker_follows_the_others_and_the_wall_clock() {
        let now = Instant::now();
        // Nothing read anywhere: hold.
        let mut r = reader(&[(None, IDLE)], now);
        assert_eq!(r.watermark_basis(now, None, None), None);
        // Nothing read here, 20 s read elsewhere: follow it (plus the quiet time).
        assert_eq!(r.watermark_basis(now, None, Some(20_000)), Some(26_000));
        // Read up to 9 s here, quiet for 6 s: 15 s, or the others' 20 s + 6 s.
        let mut r = reader(&[(Some(9_000), IDLE), (None, IDLE)], now);
        assert_eq!(r.watermark_basis(now, Some(9_000), None), Some(15_000));
        assert_eq!(
            r.watermark_basis(now, Some(9_000), Some(20_000)),
            Some(26_000)
        );
    }

    #[test]
    fn record_timestamps_land_on_the_monotonic_clock() {
        let now = Instant::now();
        let mut r = reader(&[], now);
        r.anchor = (now - Duration::from_secs(10), 1_000_000);
        assert_eq!(r.instant_of(1_004_000, now), now - Duration::from_secs(6));
        // Never in the future (clock skew between producer and consumer).
        assert_eq!(r.instant_of(2_000_000, now), now);
    }
}
