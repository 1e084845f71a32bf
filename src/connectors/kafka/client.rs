//! What every Kafka client of Sluice shares: the librdkafka configuration built from a
//! [`KafkaUrl`] and the user's properties, a client context that sends librdkafka's own logs and
//! errors to `tracing`, topic metadata with a bounded wait, and topic creation.

use super::{KafkaError, KafkaProps, KafkaUrl};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// A client context that forwards librdkafka's log lines and global errors to `tracing`
/// (target `librdkafka`), so `SLUICE_LOG=librdkafka=debug` shows them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Logged;

impl ClientContext for Logged {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{facility}: {message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "{facility}: {message}")
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        // Reaching the end of a partition is news, not an error; consumers see it in their
        // queue.
        if matches!(error, rdkafka::error::KafkaError::PartitionEOF(_))
            || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
        {
            return;
        }
        // Transport errors repeat while a broker is down; librdkafka retries on its own and the
        // operation that needs the broker reports the failure.
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
    }
}

impl ConsumerContext for Logged {}

/// A librdkafka configuration for `url`'s brokers: Sluice's `defaults` first, then the user's
/// properties (which win).
pub fn config(url: &KafkaUrl, defaults: &[(&str, &str)], props: &KafkaProps) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &url.brokers);
    config.set_log_level(RDKafkaLogLevel::Warning);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in props.iter() {
        config.set(k, v);
    }
    config
}

/// A failure of librdkafka while doing `context`.
pub fn client_error(context: &str, e: impl std::fmt::Display) -> KafkaError {
    KafkaError::Client {
        context: context.to_string(),
        detail: e.to_string(),
    }
}

/// A plain consumer for metadata and offsets (no group).
pub fn metadata_client(
    url: &KafkaUrl,
    props: &KafkaProps,
) -> Result<BaseConsumer<Logged>, KafkaError> {
    let mut config = config(url, &[], props);
    // Metadata clients never join a group, whatever the user's properties say.
    config.remove("group.id");
    BaseConsumer::from_config_and_context(&config, Logged)
        .map_err(|e| client_error("creating a client", e))
}

/// The partition ids of `url`'s topic, sorted; waits at most `timeout` for the brokers.
/// `Ok(None)` when the topic does not exist.
pub fn partitions<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    url: &KafkaUrl,
    timeout: Duration,
) -> Result<Option<Vec<i32>>, KafkaError> {
    let metadata = client
        .fetch_metadata(Some(&url.topic), timeout)
        .map_err(|e| KafkaError::Unreachable {
            brokers: url.brokers.clone(),
            timeout,
            detail: e.to_string(),
        })?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == url.topic) else {
        return Ok(None);
    };
    match topic.error() {
        None => {}
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
            return Ok(None)
        }
        Some(e) => {
            return Err(client_error(
                &format!("reading metadata of topic {:?}", url.topic),
                RDKafkaErrorCode::from(e),
            ))
        }
    }
    let mut ids: Vec<i32> = topic.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok((!ids.is_empty()).then_some(ids))
}

/// The partition ids of `url`'s topic, which must exist (a clear [`KafkaError::NoTopic`] if not).
pub fn existing_partitions<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    url: &KafkaUrl,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError> {
    partitions(client, url, timeout)?.ok_or_else(|| KafkaError::NoTopic {
        topic: url.topic.clone(),
        brokers: url.brokers.clone(),
    })
}

/// Creates `url`'s topic with `partitions` partitions unless it exists; returns its partitions.
pub fn ensure_topic(
    url: &KafkaUrl,
    props: &KafkaProps,
    partitions_wanted: i32,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaError> {
    let client = metadata_client(url, props)?;
    if let Some(existing) = partitions(&client, url, timeout)? {
        if existing.len() != partitions_wanted as usize {
            tracing::info!(
                "topic {:?} exists with {} partition(s); using it as it is",
                url.topic,
                existing.len()
            );
        }
        return Ok(existing);
    }
    let admin: AdminClient<Logged> =
        AdminClient::from_config_and_context(&config(url, &[], props), Logged)
            .map_err(|e| client_error("creating an admin client", e))?;
    let topic = NewTopic::new(&url.topic, partitions_wanted, TopicReplication::Fixed(1));
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results = futures_executor::block_on(admin.create_topics([&topic], &options))
        .map_err(|e| client_error(&format!("creating topic {:?}", url.topic), e))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(client_error(&format!("creating topic {name:?}"), code));
            }
        }
    }
    // The broker may take a moment to show the new topic's partitions.
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(ids) = partitions(&client, url, timeout)? {
            return Ok(ids);
        }
        if std::time::Instant::now() >= deadline {
            return Err(KafkaError::NoTopic {
                topic: url.topic.clone(),
                brokers: url.brokers.clone(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
