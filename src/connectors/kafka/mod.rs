//! Kafka: `kafka://HOST:PORT/TOPIC` sources and sinks, and the settings they share.
//!
//! The address and settings ([`KafkaUrl`], [`KafkaProps`], [`KafkaSourceOptions`]) are plain data
//! and always built, so the command line parses the same with or without the `kafka` cargo
//! feature. The clients — the per-worker consumer (`source`), the process-wide producer behind
//! `--sink kafka://…` (`producer`), the load tool `sluice gen --to kafka://…` (`load`) and
//! `sluice cat` (`cat`) — are built on librdkafka (the `rdkafka` crate) when the feature is on.
//! This module is the feature's only gate: the rest of Sluice calls [`open_reader`],
//! [`validate_source`], [`commit`], [`open_writer`], [`load`] and [`cat`], which without the
//! feature say that this build has no Kafka support.
//!
//! Any librdkafka property can be passed (`--kafka-prop k=v`, `--kafka-config FILE`), e.g. SASL
//! and TLS settings. Property values are never logged or shown in `Debug` output: only their
//! names are.

#[cfg(feature = "kafka")]
mod cat;
#[cfg(feature = "kafka")]
pub mod client;
#[cfg(not(feature = "kafka"))]
mod disabled;
#[cfg(feature = "kafka")]
mod load;
#[cfg(feature = "kafka")]
mod producer;
#[cfg(feature = "kafka")]
mod source;
#[cfg(feature = "kafka")]
mod transactional;

#[cfg(feature = "kafka")]
pub use {
    cat::cat,
    load::load,
    producer::open_writer,
    source::{commit, open_reader, validate_source},
    transactional::{open_transactional, progress_topic},
};

#[cfg(not(feature = "kafka"))]
pub use disabled::{
    cat, commit, load, open_reader, open_transactional, open_writer, progress_topic,
    validate_source,
};

use crate::connectors::generator::{GeneratorConfig, MakeGenerator};
use crate::stop::Stop;

use std::fmt;
use std::path::Path;
use std::time::Duration;

/// The URL scheme of Kafka sources and sinks.
pub const SCHEME: &str = "kafka://";

/// Failures of Kafka sources, sinks and the load tool.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// A `kafka://` address or property that cannot be used.
    #[error("{0}")]
    Invalid(String),
    /// This build has no Kafka client.
    #[error("{0} needs Kafka support: build with the `kafka` cargo feature (on by default)")]
    NotBuilt(String),
    /// The brokers did not answer in time.
    #[error("Kafka brokers {brokers} not reachable within {timeout:?}: {detail}")]
    Unreachable {
        /// The bootstrap servers.
        brokers: String,
        /// How long we waited.
        timeout: Duration,
        /// librdkafka's last word.
        detail: String,
    },
    /// The topic does not exist (sources never create topics).
    #[error("Kafka topic {topic:?} does not exist on {brokers}")]
    NoTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        brokers: String,
    },
    /// Any other client failure (creating a client, a fatal consumer error, a commit).
    #[error("Kafka {context}: {detail}")]
    Client {
        /// What was being done.
        context: String,
        /// librdkafka's message.
        detail: String,
    },
    /// Records the producer could not deliver (after librdkafka's own retries).
    #[error(
        "{failed} row(s) could not be delivered to Kafka topic {topic:?}; first error: {first}"
    )]
    Undelivered {
        /// The topic.
        topic: String,
        /// How many records failed.
        failed: u64,
        /// The first delivery error.
        first: String,
    },
}

impl KafkaError {
    /// Whether the error means a resource is unavailable (exit code 3) rather than a bad
    /// command line (2) or a failed run (1).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            KafkaError::Unreachable { .. } | KafkaError::NoTopic { .. }
        )
    }

    /// Whether the error is a usage error (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, KafkaError::Invalid(_) | KafkaError::NotBuilt(_))
    }
}

/// A parsed `kafka://HOST:PORT[,HOST:PORT…]/TOPIC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaUrl {
    /// Comma-separated bootstrap servers, as librdkafka's `bootstrap.servers` takes them.
    pub brokers: String,
    /// The topic.
    pub topic: String,
}

impl KafkaUrl {
    /// Parses `kafka://HOST:PORT[,HOST:PORT…]/TOPIC` (the `kafka://` may be left out). Each
    /// broker is read as a URL authority by the `url` crate (names, IPv4, bracketed IPv6, a
    /// port that fits 16 bits); the topic must follow Kafka's naming rules.
    pub fn parse(text: &str) -> Result<Self, KafkaError> {
        let rest = text.strip_prefix(SCHEME).unwrap_or(text);
        let invalid = |why: &str| {
            KafkaError::Invalid(format!(
                "invalid Kafka address {text:?}: {why} (expected kafka://HOST:PORT/TOPIC)"
            ))
        };
        let (brokers, topic) = rest.split_once('/').ok_or_else(|| invalid("no topic"))?;
        if brokers.is_empty() {
            return Err(invalid("no broker"));
        }
        for broker in brokers.split(',') {
            let parsed = url::Url::parse(&format!("{SCHEME}{broker}"))
                .map_err(|e| invalid(&format!("broker {broker:?}: {e}")))?;
            let plain = parsed.username().is_empty()
                && parsed.password().is_none()
                && parsed.path().is_empty()
                && parsed.query().is_none()
                && parsed.fragment().is_none();
            if parsed.host_str().is_none_or(str::is_empty) || parsed.port().is_none() || !plain {
                return Err(invalid("a broker must be HOST:PORT"));
            }
        }
        validate_topic(topic).map_err(|why| invalid(&why))?;
        Ok(KafkaUrl {
            brokers: brokers.to_string(),
            topic: topic.to_string(),
        })
    }
}

impl fmt::Display for KafkaUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.brokers, self.topic)
    }
}

/// Kafka's rules for topic names: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("empty topic".into());
    }
    if topic.len() > 249 {
        return Err("topic longer than 249 characters".into());
    }
    if topic == "." || topic == ".." {
        return Err("topic cannot be . or ..".into());
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("character {c:?} not allowed in a topic name"));
    }
    Ok(())
}

/// librdkafka properties given by the user, in order (later ones win). `Debug` shows the names
/// only: values may be passwords.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KafkaProps(Vec<(String, String)>);

impl fmt::Debug for KafkaProps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, _)| (k, "<redacted>")))
            .finish()
    }
}

impl KafkaProps {
    /// Properties from a Java-style properties file (`key=value` lines, `#`/`!` comments),
    /// followed by `k=v` pairs from the command line.
    pub fn load(file: Option<&Path>, pairs: &[String]) -> Result<Self, KafkaError> {
        let mut props = KafkaProps::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                KafkaError::Invalid(format!("cannot read Kafka config {}: {e}", path.display()))
            })?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                    continue;
                }
                props.push(line).map_err(|why| {
                    KafkaError::Invalid(format!("{}:{}: {why}", path.display(), n + 1))
                })?;
            }
        }
        for pair in pairs {
            props
                .push(pair)
                .map_err(|why| KafkaError::Invalid(format!("--kafka-prop: {why}")))?;
        }
        Ok(props)
    }

    fn push(&mut self, pair: &str) -> Result<(), String> {
        // The text itself is not echoed: it may hold a secret.
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| "expected key=value".to_string())?;
        let key = key.trim();
        if key.is_empty() {
            return Err("empty property name".into());
        }
        if key == "bootstrap.servers" {
            return Err("set the brokers in the kafka:// address, not bootstrap.servers".into());
        }
        self.0.push((key.to_string(), value.trim().to_string()));
        Ok(())
    }

    /// The properties, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key`, if set (the last one wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Where a source starts reading each partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StartOffset {
    /// The oldest record still in the partition.
    Earliest,
    /// Only records written after the run starts.
    Latest,
    /// The group's committed offset (written when a run ends cleanly); `earliest` where the
    /// group has none.
    Committed,
}

/// Settings of a `kafka://` source.
#[derive(Clone, Debug, PartialEq)]
pub struct KafkaSourceOptions {
    /// Consumer group id: whose committed offsets `committed` starts from and are written.
    pub group_id: String,
    /// Where each partition starts.
    pub start: StartOffset,
    /// Stop at the end each partition had when the run started, so results are final.
    pub until_end: bool,
    /// A partition that delivered nothing for this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// How long to wait for the brokers when connecting (metadata, offsets).
    pub timeout: Duration,
    /// Commit the consumed offsets to the group when the run ends cleanly (end of input,
    /// `--stop-after`, a graceful stop) and its rows are flushed.
    pub commit: bool,
    /// Extra librdkafka properties.
    pub props: KafkaProps,
}

/// Settings of a `kafka://` sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaSinkOptions {
    /// Partitions of the topic when the sink creates it.
    pub partitions: i32,
    /// How long to wait for the brokers when connecting, and for the final flush.
    pub timeout: Duration,
    /// Extra librdkafka properties.
    pub props: KafkaProps,
}

impl Default for KafkaSinkOptions {
    fn default() -> Self {
        KafkaSinkOptions {
            partitions: 1,
            timeout: Duration::from_secs(10),
            props: KafkaProps::default(),
        }
    }
}

/// What a load run ([`load`]) did.
#[derive(Clone, Copy, Debug)]
pub struct LoadSummary {
    /// Events delivered (acknowledged by the broker).
    pub delivered: u64,
    /// Seconds from the first send until the last delivery.
    pub seconds: f64,
    /// Partitions of the topic.
    pub partitions: usize,
    /// Furthest the paced sender fell behind its schedule.
    pub max_behind: Duration,
}

/// Settings of a load run ([`load`], `sluice gen --to`) of records of type `R`.
pub struct Load<'a, R> {
    /// Makes the generator.
    pub make: MakeGenerator<R>,
    /// Topic to write.
    pub url: &'a KafkaUrl,
    /// Client properties.
    pub props: &'a KafkaProps,
    /// Partitions when the topic is created.
    pub partitions: i32,
    /// Broker wait.
    pub timeout: Duration,
    /// Generator settings.
    pub config: GeneratorConfig,
    /// Events to write (`u64::MAX`: until stopped).
    pub events: u64,
    /// Send on the rate's schedule.
    pub paced: bool,
    /// Ends the load early (a signal); what was sent is still flushed and counted.
    pub stop: &'a Stop,
}

/// The value of a row's first field in serde_json's compact output (`{"auction":7,…}` → `7`),
/// used as the Kafka record key so each key's rows stay in order in one partition.
pub fn first_field_value(line: &[u8]) -> Option<&[u8]> {
    let rest = line.strip_prefix(b"{")?;
    // Skip the key: a JSON string.
    let mut i = skip_string(rest, 0)?;
    if rest.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    let start = i;
    let mut depth = 0usize;
    while i < rest.len() {
        match rest[i] {
            b'"' => {
                i = skip_string(rest, i)?;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(&rest[start..i]),
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => return Some(&rest[start..i]),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Given `s[at] == '"'`, the index just past the closing quote.
fn skip_string(s: &[u8], at: usize) -> Option<usize> {
    if s.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    while i < s.len() {
        match s[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let url = KafkaUrl::parse("kafka://127.0.0.1:9092/nexmark").unwrap();
        assert_eq!(url.brokers, "127.0.0.1:9092");
        assert_eq!(url.topic, "nexmark");
        assert_eq!(url.to_string(), "kafka://127.0.0.1:9092/nexmark");
        let two = KafkaUrl::parse("kafka://a:1,b:2/t.x-y_z").unwrap();
        assert_eq!(two.brokers, "a:1,b:2");
        assert!(KafkaUrl::parse("kafka://[::1]:9092/t").is_ok());
        for bad in [
            "kafka://h:99999/t",
            "kafka://user@h:1/t",
            "kafka://[::1/t",
            "kafka://127.0.0.1:9092",
            "kafka:///t",
            "kafka://host/t",
            "kafka://host:port/t",
            "kafka://h:1/",
            "kafka://h:1/a/b",
            "kafka://h:1/..",
        ] {
            assert!(KafkaUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn props_hide_their_values() {
        let props =
            KafkaProps::load(None, &["sasl.password=hunter2".into(), "acks = all".into()]).unwrap();
        let shown = format!("{props:?}");
        assert!(shown.contains("sasl.password") && !shown.contains("hunter2"));
        assert_eq!(props.get("acks"), Some("all"));
        assert!(KafkaProps::load(None, &["novalue".into()]).is_err());
        assert!(KafkaProps::load(None, &["bootstrap.servers=x:1".into()]).is_err());
    }

    #[test]
    fn props_files_allow_comments() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut f,
            b"# TLS\nsecurity.protocol=ssl\n\n! old style\nssl.ca.location = /etc/ca.pem\n",
        )
        .unwrap();
        let props =
            KafkaProps::load(Some(f.path()), &["security.protocol=plaintext".into()]).unwrap();
        assert_eq!(props.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(props.get("security.protocol"), Some("plaintext"));
    }

    #[test]
    fn keys_are_first_field_values() {
        let first = |s: &str| {
            first_field_value(s.as_bytes()).map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(first(r#"{"auction":7,"num":3}"#).as_deref(), Some("7"));
        assert_eq!(
            first(r#"{"name":"a,\"}b","x":1}"#).as_deref(),
            Some(r#""a,\"}b""#)
        );
        assert_eq!(
            first(r#"{"w":{"s":1,"e":[2,3]},"x":1}"#).as_deref(),
            Some(r#"{"s":1,"e":[2,3]}"#)
        );
        assert_eq!(first(r#"{"only":true}"#).as_deref(), Some("true"));
        assert_eq!(first("[1,2]"), None);
        assert_eq!(first("{}"), None);
    }
}
