//! The MQTT writer: each row a message, published to a topic rendered from the row.
//!
//! One client per process. `write` hands messages to the client's event loop (blocking while
//! its queue is full: a slow broker slows the pipeline, nothing piles up); a thread runs the
//! loop, reconnects with [`Backoff`] (unacknowledged QoS-1 messages are sent again), and counts
//! what the broker acknowledged. `flush` — at the end of a run — waits until every message is
//! acknowledged (QoS 1) or sent (QoS 0), and reports the shortfall as an error otherwise.

use super::{Backoff, MqttClient, MqttError, MqttUrl, TopicTemplate};
use crate::connectors::writer::Writer;
use rumqttc::{Client, Event, Outgoing, Packet};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages queued for the event loop before `write` waits.
const QUEUE: usize = 4096;

/// What the writer and its connection thread share.
#[derive(Default)]
struct Counts {
    /// Messages handed to the client.
    published: AtomicU64,
    /// Messages the broker acknowledged (QoS 1) or the loop sent (QoS 0).
    done: AtomicU64,
    stop: AtomicBool,
}

/// Rows to an MQTT topic.
pub struct MqttWriter {
    url: MqttUrl,
    template: TopicTemplate,
    fixed_topic: Option<String>,
    qos: rumqttc::QoS,
    timeout: Duration,
    client: Client,
    counts: Arc<Counts>,
}

impl MqttWriter {
    /// Connects to the broker of `url`, whose path is the topic template.
    pub fn open(url: &MqttUrl, client: &MqttClient) -> Result<Self, MqttError> {
        let template = TopicTemplate::parse(&url.path)?;
        if template.has_wildcards() {
            return Err(MqttError::Usage(format!(
                "an MQTT sink's topic {:?} cannot have wildcards (`+`, `#`); use {{field}} levels",
                url.path
            )));
        }
        super::probe(url, client)?;
        let id = format!("{}-sink-{}", client.client_id, std::process::id());
        let mut options = client.options(url, id, 1 << 20);
        options.set_request_channel_capacity(QUEUE);
        let (mqtt, connection) = Client::new(options, QUEUE);
        let counts = Arc::new(Counts::default());
        let qos = client.qos.to_rumqttc();
        let thread_counts = counts.clone();
        let broker = url.broker();
        std::thread::Builder::new()
            .name("mqtt-sink".into())
            .spawn(move || serve(connection, qos, &thread_counts, &broker))
            .map_err(|e| MqttError::Unavailable {
                broker: url.broker(),
                detail: format!("cannot start the connection thread: {e}"),
            })?;
        let fixed_topic = (template.fields().next().is_none()).then(|| template.render(|_| None));
        Ok(MqttWriter {
            url: url.clone(),
            template,
            fixed_topic,
            qos,
            timeout: client.timeout,
            client: mqtt,
            counts,
        })
    }

    fn topic(&self, row: &[u8]) -> String {
        if let Some(topic) = &self.fixed_topic {
            return topic.clone();
        }
        let object = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(row);
        self.template.render(|field| {
            let value = object.as_ref().ok()?.get(field)?;
            Some(match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => return None,
                other => other.to_string(),
            })
        })
    }
}

impl Writer for MqttWriter {
    fn write(&self, rows: &[u8]) -> io::Result<()> {
        for row in rows.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
            let topic = self.topic(row);
            self.client
                .publish(topic, self.qos, false, row.to_vec())
                .map_err(|e| io::Error::other(format!("publishing to {}: {e}", self.url)))?;
            self.counts.published.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let published = self.counts.published.load(Ordering::Relaxed);
            let done = self.counts.done.load(Ordering::Relaxed);
            if done >= published {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(io::Error::other(format!(
                    "{} of the {published} messages published to {} were not acknowledged by the broker within {:?}",
                    published - done,
                    self.url,
                    self.timeout
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for MqttWriter {
    fn drop(&mut self) {
        self.counts.stop.store(true, Ordering::Release);
        let _ = self.client.try_disconnect();
    }
}

/// Runs the sink's event loop until the writer is dropped.
fn serve(mut connection: rumqttc::Connection, qos: rumqttc::QoS, counts: &Counts, broker: &str) {
    let mut backoff = Backoff::default();
    for event in connection.iter() {
        if counts.stop.load(Ordering::Acquire) {
            return;
        }
        match event {
            Ok(Event::Incoming(Packet::PubAck(_))) if qos != rumqttc::QoS::AtMostOnce => {
                counts.done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Outgoing(Outgoing::Publish(_))) if qos == rumqttc::QoS::AtMostOnce => {
                counts.done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                if backoff.failures() > 0 {
                    tracing::info!("MQTT broker {broker}: the sink is connected again");
                }
                backoff.reset();
            }
            Ok(_) => {}
            Err(e) => {
                let delay = backoff.next_delay();
                if backoff.failures().is_power_of_two() {
                    tracing::warn!(
                        "MQTT broker {broker} (sink): {e}; reconnecting in {delay:?} ({} attempts so far)",
                        backoff.failures()
                    );
                }
                std::thread::sleep(delay);
            }
        }
    }
}
