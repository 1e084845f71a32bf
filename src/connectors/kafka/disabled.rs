//! Kafka in a build without the `kafka` cargo feature: the same calls, each saying that this
//! build has no Kafka client.

use super::{
    KafkaError, KafkaProps, KafkaSinkOptions, KafkaSourceOptions, KafkaUrl, Load, LoadSummary,
};
use crate::connectors::writer::Writer;
use crate::connectors::{InputFormat, Position, Reader};
use crate::record::Record;
use std::time::Duration;

fn not_built(what: String) -> KafkaError {
    KafkaError::NotBuilt(what)
}

/// See the `kafka` feature's `validate_source`.
pub fn validate_source(url: &KafkaUrl, _: &KafkaSourceOptions) -> Result<(), KafkaError> {
    Err(not_built(format!("source {url}")))
}

/// See the `kafka` feature's `open_reader`.
pub fn open_reader<R: Record>(
    url: &KafkaUrl,
    _: &KafkaSourceOptions,
    _: &InputFormat,
    _: usize,
    _: usize,
) -> Result<Box<dyn Reader<R>>, KafkaError> {
    Err(not_built(format!("source {url}")))
}

/// See the `kafka` feature's `commit`.
pub fn commit(url: &KafkaUrl, _: &KafkaSourceOptions, _: &[Position]) -> Result<(), KafkaError> {
    Err(not_built(format!("source {url}")))
}

/// See the `kafka` feature's `open_writer`.
pub fn open_writer(url: &KafkaUrl, _: &KafkaSinkOptions) -> Result<Box<dyn Writer>, KafkaError> {
    Err(not_built(format!("sink {url}")))
}

/// See the `kafka` feature's `open_transactional`: fails when opened.
pub fn open_transactional(
    url: &KafkaUrl,
    _: &KafkaSinkOptions,
) -> crate::checkpoint::transaction::OpenTransactional {
    let what = format!("sink {url}");
    Box::new(move |_| Err(std::io::Error::other(not_built(what))))
}

/// See the `kafka` feature's `progress_topic`.
pub fn progress_topic(topic: &str) -> String {
    format!("{topic}-sluice-progress")
}

/// See the `kafka` feature's `cat`.
pub fn cat(
    url: &KafkaUrl,
    _: &KafkaProps,
    _: Duration,
    _: &mut dyn std::io::Write,
) -> Result<u64, KafkaError> {
    Err(not_built(format!("cat {url}")))
}

/// See the `kafka` feature's `load`.
pub fn load<R: Record>(load: &Load<'_, R>) -> Result<LoadSummary, KafkaError> {
    Err(not_built(format!("gen --to {}", load.url)))
}
