//! The exactly-once Kafka sink: with checkpoints, `--sink kafka://…` commits each checkpoint's
//! rows in one Kafka transaction, together with a progress record on `<topic>-sluice-progress`
//! (one partition) that says which checkpoint the transaction completes
//! ([`transaction`](crate::checkpoint::transaction) has the protocol).
//!
//! The transactional id is `sluice-<run>`: the same in every execution of a run, so that
//! `init_transactions` on a restart fences a producer of an earlier execution that is still
//! alive (a zombie gets `_FENCED`) and aborts its open transaction — which matters, since some
//! brokers never time transactions out and consumers reading committed records would wait on it
//! forever. A transaction is open only while a checkpoint's rows are sent (the rows wait in the
//! checkpoint's epoch files until then), so `transaction.timeout.ms` (60 s) only needs to cover
//! one commit.
//!
//! Errors: a retriable commit error is retried; an abortable one aborts the transaction and fails
//! the run (a restart rolls the checkpoint forward again); a fatal one (fenced) fails the run.
//! Readers of the topic should use `isolation.level=read_committed` (`sluice cat` does).

use super::client::{self, Logged};
use super::producer::{send_when_room, Deliveries};
use super::{first_field_value, KafkaSinkOptions, KafkaUrl};
use crate::checkpoint::transaction::{OpenTransactional, Transactional};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many times a retriable commit error is retried.
const COMMIT_RETRIES: u32 = 5;

/// The progress topic of `topic`.
pub fn progress_topic(topic: &str) -> String {
    format!("{topic}-sluice-progress")
}

/// One progress record: the checkpoint a transaction of `id` completed.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    id: String,
    epoch: u64,
    execution: u64,
    rows: u64,
    written_ms: u64,
}

/// Opens the exactly-once sink to `url` for a run (see [`OpenTransactional`]).
pub fn open_transactional(url: &KafkaUrl, options: &KafkaSinkOptions) -> OpenTransactional {
    let (url, options) = (url.clone(), options.clone());
    Box::new(move |run: &str| {
        let producer = TransactionalProducer::open(&url, &options, run)?;
        Ok(Box::new(producer) as Box<dyn Transactional>)
    })
}

/// A transactional producer to a topic and its progress topic.
pub struct TransactionalProducer {
    producer: ThreadedProducer<Deliveries>,
    url: KafkaUrl,
    progress: KafkaUrl,
    id: String,
    options: KafkaSinkOptions,
}

fn io_error(context: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{context}: {e}"))
}

impl TransactionalProducer {
    /// Connects, creating the topic and the progress topic if they are missing.
    pub fn open(url: &KafkaUrl, options: &KafkaSinkOptions, run: &str) -> io::Result<Self> {
        let progress = KafkaUrl {
            topic: progress_topic(&url.topic),
            ..url.clone()
        };
        client::ensure_topic(url, &options.props, options.partitions, options.timeout)
            .map_err(io::Error::other)?;
        client::ensure_topic(&progress, &options.props, 1, options.timeout)
            .map_err(io::Error::other)?;
        let id = format!("sluice-{run}");
        let queue = super::producer::QUEUE_MESSAGES.to_string();
        let config = client::config(
            url,
            &[
                ("transactional.id", id.as_str()),
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "5"),
                ("queue.buffering.max.messages", queue.as_str()),
                ("transaction.timeout.ms", "60000"),
            ],
            &options.props,
        );
        let producer = ThreadedProducer::from_config_and_context(&config, Deliveries::default())
            .map_err(|e| io_error("creating a transactional producer", e))?;
        Ok(TransactionalProducer {
            producer,
            url: url.clone(),
            progress,
            id,
            options: options.clone(),
        })
    }

    /// The last progress record of this id, read committed from the progress topic.
    fn last_progress(&self) -> io::Result<Option<Progress>> {
        let config = client::config(
            &self.progress,
            &[
                ("group.id", "sluice-progress"),
                ("enable.auto.commit", "false"),
                ("enable.partition.eof", "true"),
                ("isolation.level", "read_committed"),
            ],
            &self.options.props,
        );
        let consumer: BaseConsumer<Logged> = BaseConsumer::from_config_and_context(&config, Logged)
            .map_err(|e| io_error("creating a consumer of the progress topic", e))?;
        let timeout = self.options.timeout;
        let (low, high) = consumer
            .fetch_watermarks(&self.progress.topic, 0, timeout)
            .map_err(|e| io_error(&format!("reading {}", self.progress), e))?;
        if high <= low {
            return Ok(None);
        }
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&self.progress.topic, 0, Offset::Beginning)
            .map_err(|e| io_error("assigning the progress topic", e))?;
        consumer
            .assign(&list)
            .map_err(|e| io_error("assigning the progress topic", e))?;
        let mut last = None;
        let mut heard = Instant::now();
        loop {
            match consumer.poll(Duration::from_millis(100)) {
                None if heard.elapsed() > timeout => {
                    return Err(io_error(
                        &format!("reading {}", self.progress),
                        format!("nothing for {timeout:?} before its end"),
                    ))
                }
                None => {}
                Some(Err(RdError::PartitionEOF(_))) => return Ok(last),
                Some(Err(e)) => tracing::warn!("reading {}: {e}", self.progress),
                Some(Ok(m)) => {
                    heard = Instant::now();
                    if m.key() == Some(self.id.as_bytes()) {
                        match serde_json::from_slice::<Progress>(m.payload().unwrap_or_default()) {
                            Ok(p) => last = Some(p),
                            Err(e) => tracing::warn!(
                                "a progress record of {} at offset {} is unreadable: {e}",
                                self.progress,
                                m.offset()
                            ),
                        }
                    }
                }
            }
        }
    }

    fn send(&self, record: BaseRecord<'_, [u8], [u8]>) -> io::Result<()> {
        send_when_room(&self.producer, record)
            .map_err(|e| io_error(&format!("producing to {}", self.url), e))
    }

    /// Sends the rows of `path` from byte `skip` on; returns how many.
    fn send_file(&self, path: &PathBuf, skip: u64) -> io::Result<u64> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(skip))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut line = Vec::new();
        let mut rows = 0;
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(rows);
            }
            let row = line.strip_suffix(b"\n").unwrap_or(&line);
            if row.is_empty() {
                continue;
            }
            let mut record = BaseRecord::to(&self.url.topic).payload(row);
            if let Some(key) = first_field_value(row) {
                record = record.key(key);
            }
            self.send(record)?;
            rows += 1;
        }
    }

    fn try_commit(&self) -> Result<(), RdError> {
        let mut attempt = 0;
        loop {
            match self.producer.commit_transaction(Timeout::Never) {
                Ok(()) => return Ok(()),
                Err(RdError::Transaction(e)) if e.is_retriable() && attempt < COMMIT_RETRIES => {
                    attempt += 1;
                    tracing::warn!("committing a transaction to {}: {e} (retrying)", self.url);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Transactional for TransactionalProducer {
    fn recover(&mut self) -> io::Result<u64> {
        self.producer
            .init_transactions(self.options.timeout)
            .map_err(|e| io_error(&format!("initialising transactions of {}", self.id), e))?;
        let last = self.last_progress()?;
        if let Some(p) = &last {
            tracing::info!(
                "{} last committed checkpoint {} (execution {}, {} rows)",
                self.url,
                p.epoch,
                p.execution,
                p.rows
            );
        }
        Ok(last.map_or(0, |p| p.epoch))
    }

    fn commit(&mut self, epoch: u64, execution: u64, files: &[(PathBuf, u64)]) -> io::Result<u64> {
        self.producer
            .begin_transaction()
            .map_err(|e| io_error("beginning a transaction", e))?;
        let sent = (|| {
            let mut rows = 0;
            for (path, skip) in files {
                rows += self.send_file(path, *skip)?;
            }
            let progress = Progress {
                id: self.id.clone(),
                epoch,
                execution,
                rows,
                written_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            };
            let payload = serde_json::to_vec(&progress).map_err(io::Error::other)?;
            let record = BaseRecord::to(&self.progress.topic)
                .partition(0)
                .key(self.id.as_bytes())
                .payload(payload.as_slice());
            self.send(record)?;
            Ok::<u64, io::Error>(rows)
        })();
        let result = sent.and_then(|rows| {
            self.try_commit()
                .map(|()| rows)
                .map_err(|e| io_error(&format!("committing checkpoint {epoch} to {}", self.url), e))
        });
        if result.is_err() {
            // Abortable or not, nothing of it is visible; a restart sends it again.
            if let Err(e) = self.producer.abort_transaction(self.options.timeout) {
                tracing::debug!("aborting the transaction: {e}");
            }
        }
        result
    }
}
