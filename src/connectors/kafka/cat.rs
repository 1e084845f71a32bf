//! `sluice cat kafka://HOST:PORT/TOPIC`: prints every record value of a topic, one per line,
//! from the start of each partition up to the end it had when the command started — to look at
//! what a Kafka sink wrote, or to compare it with a file sink's rows.
//!
//! Records are read partition by partition in offset order; no consumer group is joined (the group
//! id `sluice-cat` only satisfies librdkafka) and no offsets are committed.

use super::client::{self, Logged};
use super::{KafkaError, KafkaProps, KafkaUrl};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError as RdError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::io::Write;
use std::time::{Duration, Instant};

/// Writes the values of `url`'s records to `out`, each followed by a newline; returns how many.
/// Fails when the topic is missing, or when no record arrives for `timeout` while some are due.
pub fn cat(
    url: &KafkaUrl,
    props: &KafkaProps,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<u64, KafkaError> {
    // librdkafka's assign() wants a group id; nothing is committed to it.
    let config = client::config(
        url,
        &[
            ("group.id", "sluice-cat"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            // What an exactly-once sink committed, never an aborted transaction's rows.
            ("isolation.level", "read_committed"),
        ],
        props,
    );
    let consumer: BaseConsumer<Logged> = BaseConsumer::from_config_and_context(&config, Logged)
        .map_err(|e| client::client_error("creating a consumer", e))?;
    let partitions = client::existing_partitions(&consumer, url, timeout)?;
    let mut remaining = Vec::new();
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&url.topic, p, timeout)
            .map_err(|e| client::client_error("reading partition ends", e))?;
        if high > low {
            list.add_partition_offset(&url.topic, p, Offset::Beginning)
                .map_err(|e| client::client_error("assigning partitions", e))?;
            remaining.push((p, high));
        }
    }
    consumer
        .assign(&list)
        .map_err(|e| client::client_error("assigning partitions", e))?;
    let mut written = 0;
    let mut last_progress = Instant::now();
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if last_progress.elapsed() > timeout {
                    return Err(client::client_error(
                        &format!("reading {url}"),
                        format!("no record for {timeout:?} before the end of the topic"),
                    ));
                }
            }
            Some(Err(RdError::PartitionEOF(p))) => remaining.retain(|(q, _)| *q != p),
            Some(Err(e)) => tracing::warn!("reading {url}: {e}"),
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let (p, offset) = (m.partition(), m.offset());
                let io = |e: std::io::Error| client::client_error("writing records", e);
                out.write_all(m.payload().unwrap_or_default()).map_err(io)?;
                out.write_all(b"\n").map_err(io)?;
                written += 1;
                remaining.retain(|(q, high)| !(*q == p && offset + 1 >= *high));
            }
        }
    }
    Ok(written)
}
