//! MQTT: readings from a broker's topics in, alerts out — the protocol of sensors and gateways.
//!
//! A source `mqtt://HOST[:PORT]/FILTER[,FILTER…]` subscribes to topic filters (with the `+` and
//! `#` wildcards) at QoS 1 (or 0); a sink `mqtt://HOST[:PORT]/TOPIC` publishes one message per
//! row, the topic a template whose `{field}`s come from the row (`alerts/{device}`). The client
//! is [`rumqttc`] (MQTT 3.1.1, pure Rust, maintained by Bytebeam): a hand-written client would
//! have to get keep-alive, packet ids, in-flight windows and retransmission right again.
//!
//! What the source guarantees, and how:
//! - **Reconnects** with exponential backoff ([`Backoff`]) when the broker goes away, and keeps
//!   its session: a worker's client id is stable (`<id>-<hash of the subscriptions>-<worker>`,
//!   or `<id>-<worker>` for an id the user chose) and connects with a persistent session (unless `--mqtt-clean-start`), so the broker queues QoS-1 messages while Sluice is
//!   disconnected and delivers them after the reconnect. A broker that lost the session (restarted
//!   without persistence) is subscribed to again.
//! - **Redeliveries do not double-count:** a QoS-1 message whose acknowledgement was lost is
//!   delivered again; the reader drops a message identical (topic and payload) to one read within
//!   the dedup window ([`Dedup`]) as a counted `duplicate` dead letter, never silently.
//! - **One subscriber by default:** worker 0 of the mesh subscribes and the pipeline spreads the
//!   records by key, so every redelivery reaches the reader that saw the original. With
//!   `--mqtt-group NAME` every worker subscribes to the shared subscription
//!   `$share/NAME/<filter>` and the broker splits the messages among them (more throughput
//!   than one reader; the broker's redeliveries still return to the same worker, but a
//!   publisher's own duplicates may land on another and be counted twice).
//! - **Topic levels become fields:** `--mqtt-topic-fields 'sensors/{site}/{device}/{metric}'`
//!   fills the record's `site`, `device` and `metric` from the topic when the payload does not
//!   have them ([`TopicTemplate`]).
//! - **Event time** comes from the payload; a subscription silent for `--idle-timeout` stops
//!   holding the watermark back and the watermark follows the wall clock, so windows close and
//!   silent devices are noticed while the whole feed is quiet.
//! - MQTT keeps no history to read again, so a run over MQTT cannot restore from a checkpoint:
//!   checkpointed runs are refused up front (bridge the topics to Kafka for exactly-once).
//!
//! The sink publishes at QoS 1 by default and waits, when the run ends, until the broker has
//! acknowledged every message.

pub mod sink;
pub mod source;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

/// The URL scheme of MQTT sources and sinks.
pub const SCHEME: &str = "mqtt://";

/// The broker's port when the URL names none.
pub const DEFAULT_PORT: u16 = 1883;

/// Failures of MQTT sources and sinks.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A malformed `mqtt://` URL, filter or template.
    #[error("{0}")]
    Usage(String),
    /// The broker could not be reached or refused the connection.
    #[error("MQTT broker {broker}: {detail}")]
    Unavailable {
        /// `HOST:PORT`.
        broker: String,
        /// What went wrong.
        detail: String,
    },
}

impl MqttError {
    /// Whether the error is a mistake on the command line (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(self, MqttError::Usage(_))
    }
}

/// A parsed `mqtt://HOST[:PORT]/PATH` URL: a source's topic filters or a sink's topic template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttUrl {
    /// The broker's host.
    pub host: String,
    /// The broker's port.
    pub port: u16,
    /// Everything after the first `/`: comma-separated filters (a source) or a topic template
    /// (a sink).
    pub path: String,
}

impl MqttUrl {
    /// Parses `mqtt://HOST[:PORT]/PATH`.
    ///
    /// # Examples
    ///
    /// ```
    /// use sluice::connectors::mqtt::MqttUrl;
    ///
    /// let url = MqttUrl::parse("mqtt://127.0.0.1:1884/sensors/+/#").unwrap();
    /// assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 1884));
    /// assert_eq!(url.filters().unwrap(), vec!["sensors/+/#".to_string()]);
    /// assert!(MqttUrl::parse("mqtt://broker").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Self, MqttError> {
        let bad = |why: &str| {
            MqttError::Usage(format!(
                "bad MQTT URL {text:?}: {why} (expected mqtt://HOST[:PORT]/TOPIC)"
            ))
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| bad("not mqtt://"))?;
        let (authority, path) = rest.split_once('/').ok_or_else(|| bad("no topic"))?;
        if path.is_empty() {
            return Err(bad("no topic"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse::<u16>()
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or_else(|| bad("bad port"))?,
            ),
            None => (authority, DEFAULT_PORT),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(MqttUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// `HOST:PORT`.
    pub fn broker(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The path as a source's topic filters, each checked: `+` and `#` stand alone in their
    /// level, and `#` only last.
    pub fn filters(&self) -> Result<Vec<String>, MqttError> {
        self.path
            .split(',')
            .map(|filter| {
                let filter = filter.trim();
                let levels: Vec<&str> = filter.split('/').collect();
                let misplaced = levels.iter().enumerate().any(|(i, level)| {
                    (level.contains('#') && (*level != "#" || i + 1 != levels.len()))
                        || (level.contains('+') && *level != "+")
                });
                if filter.is_empty() || misplaced {
                    return Err(MqttError::Usage(format!(
                        "bad MQTT topic filter {filter:?}: `+` must be a whole level and `#` the whole last level"
                    )));
                }
                Ok(filter.to_string())
            })
            .collect()
    }
}

impl fmt::Display for MqttUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}:{}/{}", self.host, self.port, self.path)
    }
}

/// The quality of service messages are read or written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Qos {
    /// At most once: no acknowledgement, nothing redelivered.
    #[value(name = "0")]
    AtMostOnce,
    /// At least once: acknowledged, redelivered until it is.
    #[value(name = "1")]
    AtLeastOnce,
}

impl Qos {
    fn to_rumqttc(self) -> rumqttc::QoS {
        match self {
            Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
            Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        }
    }
}

/// Client settings shared by MQTT sources and sinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttClient {
    /// Client id prefix; each reader appends its worker index, a sink `-sink-<process>`.
    pub client_id: String,
    /// Quality of service.
    pub qos: Qos,
    /// User name; the password is read from `SLUICE_MQTT_PASSWORD` (never from the command line).
    pub user: Option<String>,
    /// How long to wait for the broker at start-up (and, at the end, for acknowledgements).
    pub timeout: Duration,
}

impl Default for MqttClient {
    fn default() -> Self {
        MqttClient {
            client_id: "sluice".into(),
            qos: Qos::AtLeastOnce,
            user: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The environment variable a broker password is read from.
pub const PASSWORD_ENV: &str = "SLUICE_MQTT_PASSWORD";

impl MqttClient {
    /// `rumqttc` options for client `id` of broker `url`.
    fn options(&self, url: &MqttUrl, id: String, max_packet: usize) -> rumqttc::MqttOptions {
        let mut options = rumqttc::MqttOptions::new(id, url.host.clone(), url.port);
        options.set_keep_alive(KEEP_ALIVE);
        options.set_max_packet_size(max_packet, max_packet);
        options.set_inflight(IN_FLIGHT);
        if let Some(user) = &self.user {
            let password = std::env::var(PASSWORD_ENV).unwrap_or_default();
            options.set_credentials(user.clone(), password);
        }
        options
    }
}

/// How often a client shows the broker it is alive; a dead connection is noticed within ~1.5×.
const KEEP_ALIVE: Duration = Duration::from_secs(5);

/// QoS-1 messages a sink may have unacknowledged.
const IN_FLIGHT: u16 = 1000;

/// Settings of an MQTT source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttSourceOptions {
    /// Client settings.
    pub client: MqttClient,
    /// The shared-subscription group every worker subscribes in; `None`: worker 0 alone reads.
    pub group: Option<String>,
    /// Fields taken from the topic's levels.
    pub topic_fields: Option<TopicTemplate>,
    /// Messages identical to one read this recently are redeliveries (zero: no dedup).
    pub dedup_window: Duration,
    /// End the input after this long without a message (a bounded run over a live feed).
    pub until_idle: Option<Duration>,
    /// Start without the session an earlier run left at the broker (its queued messages).
    pub clean_start: bool,
    /// Make the client ids name the subscriptions too (`<id>-<hash>-<worker>`), so a run with
    /// other filters or another group gets a session of its own rather than one that still
    /// holds an earlier run's subscriptions (MQTT 3.1.1 cannot list them). Off when the user
    /// chose the id.
    pub id_per_subscription: bool,
    /// A subscription silent this long stops holding the watermark back.
    pub idle_timeout: Duration,
}

impl Default for MqttSourceOptions {
    fn default() -> Self {
        MqttSourceOptions {
            client: MqttClient::default(),
            group: None,
            topic_fields: None,
            dedup_window: Duration::from_secs(60),
            until_idle: None,
            clean_start: false,
            id_per_subscription: true,
            idle_timeout: Duration::from_secs(5),
        }
    }
}

/// A topic template: literal levels, `{field}` levels captured into the record, `+` levels
/// matched and ignored, and an optional final `#`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicTemplate {
    text: String,
    levels: Vec<Level>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Level {
    Literal(String),
    Field(String),
    Any,
    Rest,
}

impl TopicTemplate {
    /// Parses `sensors/{site}/{device}/+/#`-style templates.
    ///
    /// # Examples
    ///
    /// ```
    /// use sluice::connectors::mqtt::TopicTemplate;
    ///
    /// let t = TopicTemplate::parse("sensors/{site}/{device}/#").unwrap();
    /// assert_eq!(
    ///     t.capture("sensors/north/pump-7/temperature"),
    ///     Some(vec![("site", "north"), ("device", "pump-7")])
    /// );
    /// assert_eq!(t.capture("alarms/north/pump-7"), None);
    /// assert_eq!(t.render(|f| (f == "site").then(|| "east".to_string())), "sensors/east/_/#");
    /// ```
    pub fn parse(text: &str) -> Result<Self, MqttError> {
        let bad = |why: &str| MqttError::Usage(format!("bad MQTT topic template {text:?}: {why}"));
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let level = if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                if name.is_empty() || name.contains(['{', '}']) {
                    return Err(bad("a field needs a name, as in {device}"));
                }
                Level::Field(name.to_string())
            } else if *part == "+" {
                Level::Any
            } else if *part == "#" {
                if i + 1 != parts.len() {
                    return Err(bad("`#` must be the last level"));
                }
                Level::Rest
            } else if part.contains(['{', '}', '+', '#']) {
                return Err(bad("`{field}`, `+` and `#` must each be a whole level"));
            } else {
                Level::Literal(part.to_string())
            };
            levels.push(level);
        }
        Ok(TopicTemplate {
            text: text.to_string(),
            levels,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The names of the fields it captures.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.levels.iter().filter_map(|l| match l {
            Level::Field(name) => Some(name.as_str()),
            _ => None,
        })
    }

    /// The fields of `topic`, or `None` when it does not match.
    pub fn capture<'t>(&self, topic: &'t str) -> Option<Vec<(&str, &'t str)>> {
        let mut captured = Vec::new();
        let mut parts = topic.split('/');
        for level in &self.levels {
            if *level == Level::Rest {
                return Some(captured);
            }
            let part = parts.next()?;
            match level {
                Level::Literal(l) if l != part => return None,
                Level::Field(name) => captured.push((name.as_str(), part)),
                _ => {}
            }
        }
        parts.next().is_none().then_some(captured)
    }

    /// A topic from the template, each field's value from `value` (`_` when it has none; MQTT's
    /// `/`, `+` and `#` in a value become `_` so a value is always exactly one level).
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> String {
        let mut topic = String::with_capacity(self.text.len() + 16);
        for (i, level) in self.levels.iter().enumerate() {
            if i > 0 {
                topic.push('/');
            }
            match level {
                Level::Literal(l) => topic.push_str(l),
                Level::Field(name) => match value(name) {
                    Some(v) if !v.is_empty() => topic.extend(v.chars().map(|c| match c {
                        '/' | '+' | '#' => '_',
                        c => c,
                    })),
                    _ => topic.push('_'),
                },
                Level::Any => topic.push('+'),
                Level::Rest => topic.push('#'),
            }
        }
        topic
    }

    /// Whether the template has wildcards (a sink's topic must not).
    pub fn has_wildcards(&self) -> bool {
        self.levels
            .iter()
            .any(|l| matches!(l, Level::Any | Level::Rest))
    }
}

/// Redeliveries recognised by content: a message whose topic and payload equal those of one
/// read within the window. Kept as 64-bit hashes, at most [`Dedup::MAX_ENTRIES`] of them (the
/// oldest go first beyond that, so memory stays bounded at any message rate).
pub struct Dedup {
    window: Duration,
    seen: HashSet<u64>,
    order: VecDeque<(Instant, u64)>,
}

impl Dedup {
    /// Most messages remembered (~32 MB).
    pub const MAX_ENTRIES: usize = 1_000_000;

    /// Remembers messages for `window` (zero: remembers nothing, every message is new).
    pub fn new(window: Duration) -> Self {
        Dedup {
            window,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Whether the message was read within the window already; remembers it if not.
    ///
    /// # Examples
    ///
    /// ```
    /// use sluice::connectors::mqtt::Dedup;
    /// use std::time::{Duration, Instant};
    ///
    /// let mut dedup = Dedup::new(Duration::from_secs(60));
    /// let now = Instant::now();
    /// assert!(!dedup.is_duplicate("t/a", b"{\"v\":1}", now));
    /// assert!(dedup.is_duplicate("t/a", b"{\"v\":1}", now));
    /// assert!(!dedup.is_duplicate("t/b", b"{\"v\":1}", now));
    /// assert!(!dedup.is_duplicate("t/a", b"{\"v\":1}", now + Duration::from_secs(61)));
    /// ```
    pub fn is_duplicate(&mut self, topic: &str, payload: &[u8], now: Instant) -> bool {
        if self.window.is_zero() {
            return false;
        }
        while let Some(&(at, hash)) = self.order.front() {
            if now.saturating_duration_since(at) < self.window
                && self.order.len() < Self::MAX_ENTRIES
            {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&hash);
        }
        let mut hasher = twox_hash::XxHash64::with_seed(0);
        std::hash::Hasher::write(&mut hasher, topic.as_bytes());
        std::hash::Hasher::write_u8(&mut hasher, 0);
        std::hash::Hasher::write(&mut hasher, payload);
        let hash = std::hash::Hasher::finish(&hasher);
        if !self.seen.insert(hash) {
            return true;
        }
        self.order.push_back((now, hash));
        false
    }
}

/// Reconnection delays: 100 ms, doubling to at most 5 s; back to the start once connected.
#[derive(Debug, Default)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The first delay.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// The longest delay.
    pub const MAX: Duration = Duration::from_secs(5);

    /// The delay before the next attempt, after one more failure.
    ///
    /// # Examples
    ///
    /// ```
    /// use sluice::connectors::mqtt::Backoff;
    /// use std::time::Duration;
    ///
    /// let mut b = Backoff::default();
    /// assert_eq!(b.next_delay(), Duration::from_millis(100));
    /// assert_eq!(b.next_delay(), Duration::from_millis(200));
    /// for _ in 0..10 { b.next_delay(); }
    /// assert_eq!(b.next_delay(), Duration::from_secs(5));
    /// b.reset();
    /// assert_eq!(b.next_delay(), Duration::from_millis(100));
    /// ```
    pub fn next_delay(&mut self) -> Duration {
        let delay = Self::FIRST.saturating_mul(1 << self.failures.min(16));
        self.failures += 1;
        delay.min(Self::MAX)
    }

    /// Connected: the next failure starts over.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Connects a throw-away client (clean session, its own id) and waits for the broker's answer:
/// a clear error up front instead of a worker retrying forever.
pub fn probe(url: &MqttUrl, client: &MqttClient) -> Result<(), MqttError> {
    let id = format!("{}-probe-{}", client.client_id, std::process::id());
    let mut options = client.options(url, id, 1 << 16);
    options.set_clean_session(true);
    let (probe, mut connection) = rumqttc::Client::new(options, 4);
    let deadline = Instant::now() + client.timeout;
    let unavailable = |detail: String| MqttError::Unavailable {
        broker: url.broker(),
        detail,
    };
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match connection.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)))) => {
                let _ = probe.disconnect();
                return match ack.code {
                    rumqttc::ConnectReturnCode::Success => Ok(()),
                    refused => Err(unavailable(format!("refused the connection: {refused:?}"))),
                };
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                last = e.to_string();
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(_) => break,
        }
    }
    Err(unavailable(format!(
        "unreachable within {:?} ({last})",
        client.timeout
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_checked() {
        let url = |p: &str| MqttUrl::parse(&format!("mqtt://h/{p}")).unwrap();
        assert_eq!(url("a/+/b, c/#").filters().unwrap(), vec!["a/+/b", "c/#"]);
        for bad in ["a/#/b", "a/b+", "a#", ""] {
            assert!(
                MqttUrl::parse(&format!("mqtt://h/{bad}")).map_or(true, |u| u.filters().is_err()),
                "{bad}"
            );
        }
        assert_eq!(url("x").port, DEFAULT_PORT);
        assert!(MqttUrl::parse("mqtt://h:0/x").is_err());
        assert!(MqttUrl::parse("mqtt://:1883/x").is_err());
    }

    #[test]
    fn templates_capture_and_render() {
        let t = TopicTemplate::parse("s/{site}/+/{device}").unwrap();
        assert_eq!(
            t.capture("s/a/x/d1"),
            Some(vec![("site", "a"), ("device", "d1")])
        );
        assert_eq!(t.capture("s/a/x/d1/extra"), None);
        assert_eq!(t.capture("s/a/x"), None);
        assert_eq!(t.fields().collect::<Vec<_>>(), vec!["site", "device"]);
        assert!(t.has_wildcards());
        let alerts = TopicTemplate::parse("alerts/{device}").unwrap();
        assert!(!alerts.has_wildcards());
        assert_eq!(alerts.render(|_| Some("a/b#".to_string())), "alerts/a_b_");
        for bad in ["a/{}/b", "a/#/b", "a/x{y}", "a/b+"] {
            assert!(TopicTemplate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dedup_memory_is_bounded() {
        let mut d = Dedup::new(Duration::from_secs(3600));
        let now = Instant::now();
        for i in 0..(Dedup::MAX_ENTRIES + 10) {
            assert!(!d.is_duplicate("t", &i.to_le_bytes(), now));
        }
        assert!(d.order.len() <= Dedup::MAX_ENTRIES);
        assert!(!Dedup::new(Duration::ZERO).is_duplicate("t", b"x", now));
    }
}
