//! The Kafka producer behind `--sink kafka://…` and `sluice gen --to kafka://…`.
//!
//! One idempotent producer per process (`enable.idempotence=true`, `acks=all`: no duplicates or
//! reordering from librdkafka's retries), shared by the workers. Its queue is bounded
//! (`queue.buffering.max.messages`); when it is full, `send` waits for deliveries to make room,
//! so a slow broker slows the dataflow down instead of growing memory. Every delivery report is
//! counted: a record librdkafka gives up on (after `message.timeout.ms`, 60 s unless set) is an
//! error of the run, logged when it happens and returned by [`RowProducer::finish`] — never
//! a silent loss.
//!
//! Result rows are keyed by their first column (e.g. the auction of a q5 row), so all rows and
//! corrections of one key stay in order in one partition.

use super::client::{self, Logged};
use super::{first_field_value, KafkaError, KafkaProps, KafkaSinkOptions, KafkaUrl};
use crate::connectors::writer::Writer;
use rdkafka::client::ClientContext;
use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Records the producer may hold before `send` waits.
pub const QUEUE_MESSAGES: usize = 100_000;

/// Counts delivery reports (also the context of the transactional producer).
#[derive(Default)]
pub struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        Logged.log(level, facility, message);
    }

    fn error(&self, error: RdError, reason: &str) {
        Logged.error(error, reason);
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.fail(e.to_string()),
        }
    }
}

impl Deliveries {
    fn fail(&self, error: String) {
        let before = self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if before == 0 {
            tracing::error!("a record could not be delivered to Kafka: {error}");
        }
        first.get_or_insert(error);
    }
}

/// A process-wide producer to one topic.
pub struct RowProducer {
    producer: ThreadedProducer<Deliveries>,
    url: KafkaUrl,
    partitions: Vec<i32>,
    timeout: Duration,
}

impl RowProducer {
    /// Connects to `url`'s brokers, creating the topic with `partitions` partitions if it does
    /// not exist; waits at most `timeout` for the brokers.
    pub fn open(
        url: &KafkaUrl,
        props: &KafkaProps,
        partitions: i32,
        timeout: Duration,
    ) -> Result<Self, KafkaError> {
        let partitions = client::ensure_topic(url, props, partitions, timeout)?;
        let queue = QUEUE_MESSAGES.to_string();
        let config = client::config(
            url,
            &[
                ("enable.idempotence", "true"),
                ("acks", "all"),
                ("linger.ms", "5"),
                ("queue.buffering.max.messages", queue.as_str()),
                ("message.timeout.ms", "60000"),
            ],
            props,
        );
        let producer = ThreadedProducer::from_config_and_context(&config, Deliveries::default())
            .map_err(|e| client::client_error("creating a producer", e))?;
        Ok(RowProducer {
            producer,
            url: url.clone(),
            partitions,
            timeout,
        })
    }

    /// The topic's partition ids.
    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    /// Sends one record; waits while the queue is full.
    pub fn send(
        &self,
        key: Option<&[u8]>,
        payload: &[u8],
        partition: Option<i32>,
        timestamp: Option<i64>,
    ) {
        let mut record = BaseRecord::to(&self.url.topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(ms) = timestamp {
            record = record.timestamp(ms);
        }
        if let Err(e) = send_when_room(&self.producer, record) {
            self.producer.context().fail(e.to_string());
        }
    }

    /// Sends every line of `lines` (JSON rows, `\n`-terminated) as a record keyed by the row's
    /// first column.
    pub fn send_rows(&self, lines: &[u8]) {
        for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.send(first_field_value(line), line, None, None);
        }
    }

    /// Records delivered so far.
    pub fn delivered(&self) -> u64 {
        self.producer.context().delivered.load(Ordering::Relaxed)
    }

    /// Waits until every record is delivered (at most the connect timeout plus the message
    /// timeout); returns how many were delivered, or the delivery failures.
    pub fn finish(&self) -> Result<u64, KafkaError> {
        let wait = self.timeout + Duration::from_secs(60);
        if let Err(e) = self.producer.flush(wait) {
            let pending = self.producer.in_flight_count().max(0) as u64;
            self.producer
                .context()
                .failed
                .fetch_add(pending, Ordering::Relaxed);
            let mut first = self
                .producer
                .context()
                .first_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            first.get_or_insert(format!("not delivered within {wait:?}: {e}"));
        }
        let deliveries = self.producer.context();
        let failed = deliveries.failed.load(Ordering::Relaxed);
        if failed > 0 {
            let first = deliveries
                .first_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
                .unwrap_or_default();
            return Err(KafkaError::Undelivered {
                topic: self.url.topic.clone(),
                failed,
                first,
            });
        }
        Ok(self.delivered())
    }
}

/// Sends `record`, waiting while the producer's queue is full (its thread serves delivery
/// reports, which frees the queue); any other error is returned.
pub fn send_when_room(
    producer: &ThreadedProducer<Deliveries>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), RdError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// The writer of `--sink kafka://…`: one producer for the process, creating the topic (with the
/// options' partitions) if it is missing.
pub fn open_writer(
    url: &KafkaUrl,
    options: &KafkaSinkOptions,
) -> Result<Box<dyn Writer>, KafkaError> {
    let producer = RowProducer::open(url, &options.props, options.partitions, options.timeout)?;
    Ok(Box::new(producer))
}

impl Writer for RowProducer {
    fn write(&self, rows: &[u8]) -> std::io::Result<()> {
        self.send_rows(rows);
        Ok(())
    }

    fn flush(&self) -> std::io::Result<()> {
        self.finish().map(drop).map_err(std::io::Error::other)
    }
}
