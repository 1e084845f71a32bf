//! The MQTT reader: one client per worker, its connection served by a thread of its own.
//!
//! The thread runs `rumqttc`'s event loop — connect, subscribe, keep alive, reconnect with
//! [`Backoff`] — and hands each message to the worker over a bounded channel, waking it. The
//! bound is the flow control: while the dataflow has no room the worker stops reading, the
//! channel fills, the thread stops reading the socket and the broker holds the messages (QoS 1:
//! it queues them in the session). Messages are acknowledged when the worker has read them, not
//! when they arrive, so what sits in the channel when the process dies is delivered again.

use super::{Backoff, Dedup, MqttError, MqttSourceOptions, MqttUrl};
use crate::connectors::format::Decoder;
use crate::connectors::{Ingest, InputFormat, ReadStatus, Reader, SourceError};
use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::record::{Format, Record};
use crate::time::EventTime;
use rumqttc::{Client, ConnectionError, Event, Packet, Publish, SubscribeReasonCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages a worker's connection thread may hold for it.
const CHANNEL: usize = 8192;

/// How soon a reader with nothing to read looks again (it is woken sooner when a message
/// arrives): the watermark of a quiet feed and `--mqtt-until-idle` move with the wall clock.
const RECHECK: Duration = Duration::from_millis(50);

/// What the connection thread hands the worker.
enum Delivery {
    Message(Publish),
    /// The broker accepted the subscriptions.
    Subscribed,
    /// The connection cannot go on (refused credentials, a refused subscription).
    Failed(String),
}

/// What the worker and its connection thread share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    wake: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl Shared {
    fn wake(&self) {
        if let Some(wake) = self.wake.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            wake();
        }
    }
}

/// One worker's MQTT subscription.
pub struct MqttReader<R> {
    url: MqttUrl,
    options: MqttSourceOptions,
    decoder: Decoder<R>,
    max_record_bytes: usize,
    client: Client,
    messages: Receiver<Delivery>,
    shared: Arc<Shared>,
    dedup: Dedup,
    opened: Instant,
    subscribed_at: Option<Instant>,
    last_message: Option<Instant>,
}

/// Opens worker `index` of `peers`' subscription: every worker's share of a shared
/// subscription, else worker 0's subscription (the others read nothing).
pub fn open_reader<R: Record>(
    url: &MqttUrl,
    options: &MqttSourceOptions,
    input: &InputFormat,
    index: usize,
    peers: usize,
) -> Result<Box<dyn Reader<R>>, SourceError> {
    if options.group.is_none() && index > 0 {
        return Ok(Box::new(crate::connectors::Exhausted));
    }
    Ok(Box::new(MqttReader::open(
        url, options, input, index, peers,
    )?))
}

impl<R: Record> MqttReader<R> {
    /// Connects worker `index` of `peers` (the connection is made by its thread; failures to
    /// reach the broker are retried, and were checked up front by [`super::probe`]).
    pub fn open(
        url: &MqttUrl,
        options: &MqttSourceOptions,
        input: &InputFormat,
        index: usize,
        peers: usize,
    ) -> Result<Self, MqttError> {
        let filters = url.filters()?;
        if options.topic_fields.is_some() && input.format != Format::Json {
            return Err(MqttError::Usage(
                "--mqtt-topic-fields needs JSON payloads (--format json)".into(),
            ));
        }
        let subscriptions: Vec<String> = match &options.group {
            Some(group) if peers > 1 => filters
                .iter()
                .map(|f| format!("$share/{group}/{f}"))
                .collect(),
            _ => filters,
        };
        let prefix = &options.client.client_id;
        let id = if options.id_per_subscription {
            let mut hasher = twox_hash::XxHash64::with_seed(0);
            for s in &subscriptions {
                std::hash::Hasher::write(&mut hasher, s.as_bytes());
                std::hash::Hasher::write_u8(&mut hasher, 0);
            }
            let tag = std::hash::Hasher::finish(&hasher) as u32;
            format!("{prefix}-{tag:08x}-{index}")
        } else {
            format!("{prefix}-{index}")
        };
        // Room for the payload cap plus the topic and header.
        let max_packet = input.max_record_bytes.saturating_add(64 * 1024);
        let mut mqtt = options.client.options(url, id, max_packet);
        mqtt.set_clean_session(options.clean_start);
        mqtt.set_manual_acks(true);
        mqtt.set_request_channel_capacity(CHANNEL);
        let (client, connection) = Client::new(mqtt, CHANNEL);
        let (sender, messages) = std::sync::mpsc::sync_channel(CHANNEL);
        let shared = Arc::new(Shared::default());
        let thread = Connection {
            client: client.clone(),
            subscriptions,
            qos: options.client.qos.to_rumqttc(),
            sender,
            shared: shared.clone(),
            broker: url.broker(),
        };
        std::thread::Builder::new()
            .name(format!("mqtt-{index}"))
            .spawn(move || thread.run(connection))
            .map_err(|e| MqttError::Unavailable {
                broker: url.broker(),
                detail: format!("cannot start the connection thread: {e}"),
            })?;
        Ok(MqttReader {
            url: url.clone(),
            options: options.clone(),
            decoder: input.decoder(),
            max_record_bytes: input.max_record_bytes,
            client,
            messages,
            shared,
            dedup: Dedup::new(options.dedup_window),
            opened: Instant::now(),
            subscribed_at: None,
            last_message: None,
        })
    }

    fn take(&mut self, message: Publish, now: Instant, out: &mut Ingest<R>) {
        let topic = message.topic.as_str();
        let payload = &message.payload[..];
        let origin = || Origin::Mqtt {
            mqtt_topic: topic.to_string(),
        };
        if self.dedup.is_duplicate(topic, payload, now) {
            out.dead.push(DeadLetter::new(
                origin(),
                Reason::Duplicate,
                format!(
                    "the same message as one read in the last {:?}: a redelivery",
                    self.options.dedup_window
                ),
                payload,
            ));
        } else {
            let oversized = payload.len() > self.max_record_bytes;
            match self.options.topic_fields.as_ref().filter(|_| !oversized) {
                None => self
                    .decoder
                    .decode(payload, oversized, self.max_record_bytes, origin, out),
                Some(template) => match template.capture(topic) {
                    None => out.dead.push(DeadLetter::new(
                        origin(),
                        Reason::InvalidEvent,
                        format!(
                            "topic does not match --mqtt-topic-fields {:?}",
                            template.as_str()
                        ),
                        payload,
                    )),
                    Some(fields) => {
                        let merged = with_fields(payload, &fields);
                        let bytes = merged.as_deref().unwrap_or(payload);
                        self.decoder
                            .decode(bytes, false, self.max_record_bytes, origin, out);
                    }
                },
            }
        }
        // Read: the broker may forget it. (A lost acknowledgement means a redelivery, which
        // the dedup window catches.)
        if message.qos != rumqttc::QoS::AtMostOnce {
            let _ = self.client.try_ack(&message);
        }
    }
}

/// The JSON object `payload` with the topic's `fields` added where it has none of its own;
/// `None` when the payload is not a JSON object (it is decoded as it is, and refused).
fn with_fields(payload: &[u8], fields: &[(&str, &str)]) -> Option<Vec<u8>> {
    let serde_json::Value::Object(mut object) = serde_json::from_slice(payload).ok()? else {
        return None;
    };
    for (name, value) in fields {
        object
            .entry(name.to_string())
            .or_insert_with(|| serde_json::Value::String(value.to_string()));
    }
    serde_json::to_vec(&object).ok()
}

impl<R: Record> Reader<R> for MqttReader<R> {
    fn read(
        &mut self,
        now: Instant,
        max: usize,
        out: &mut Ingest<R>,
    ) -> Result<ReadStatus, SourceError> {
        let mut taken = 0;
        while taken < max {
            match self.messages.try_recv() {
                Ok(Delivery::Message(message)) => {
                    taken += 1;
                    self.last_message = Some(now);
                    self.take(message, now, out);
                }
                Ok(Delivery::Subscribed) => {
                    self.subscribed_at.get_or_insert(now);
                }
                Ok(Delivery::Failed(why)) => {
                    return Err(SourceError::Mqtt(MqttError::Unavailable {
                        broker: self.url.broker(),
                        detail: why,
                    }))
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    return Err(SourceError::Mqtt(MqttError::Unavailable {
                        broker: self.url.broker(),
                        detail: "the connection thread ended".into(),
                    }))
                }
            }
        }
        if taken == max {
            return Ok(ReadStatus::More);
        }
        if let (Some(idle), Some(subscribed)) = (self.options.until_idle, self.subscribed_at) {
            let quiet_since = self.last_message.unwrap_or(subscribed).max(subscribed);
            if now.saturating_duration_since(quiet_since) >= idle {
                tracing::info!(
                    "{}: no message for {idle:?}: ending the input (--mqtt-until-idle)",
                    self.url
                );
                return Ok(ReadStatus::Done);
            }
        }
        Ok(ReadStatus::WaitUntil(now + RECHECK))
    }

    fn watermark_basis(
        &mut self,
        now: Instant,
        max_seen: Option<EventTime>,
        peers_max: Option<EventTime>,
    ) -> Option<EventTime> {
        let quiet_since = self.last_message.unwrap_or(self.opened);
        let quiet = now.saturating_duration_since(quiet_since);
        if quiet < self.options.idle_timeout && self.last_message.is_some() {
            return max_seen;
        }
        // Silent: stop holding the other workers back, and move with the wall clock from the
        // latest event time anyone read, so windows close and silent devices are noticed
        // while the whole feed is quiet.
        let latest = max_seen.max(peers_max)?;
        Some(latest + quiet.as_millis() as u64)
    }

    fn shares_progress(&self) -> bool {
        true
    }

    fn set_waker(&mut self, wake: Box<dyn Fn() + Send + Sync>) {
        *self.shared.wake.lock().unwrap_or_else(|p| p.into_inner()) = Some(wake);
    }
}

impl<R> Drop for MqttReader<R> {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = self.client.try_disconnect();
    }
}

/// A worker's connection, served on its own thread.
struct Connection {
    client: Client,
    subscriptions: Vec<String>,
    qos: rumqttc::QoS,
    sender: SyncSender<Delivery>,
    shared: Arc<Shared>,
    broker: String,
}

impl Connection {
    fn run(self, mut connection: rumqttc::Connection) {
        let mut backoff = Backoff::default();
        let mut subscribed_once = false;
        for event in connection.iter() {
            if self.shared.stop.load(Ordering::Acquire) {
                return;
            }
            let delivery = match event {
                Ok(Event::Incoming(Packet::Publish(message))) => Delivery::Message(message),
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if backoff.failures() > 0 {
                        tracing::info!(
                            "MQTT broker {}: connected again (session kept: {})",
                            self.broker,
                            ack.session_present
                        );
                    }
                    backoff.reset();
                    // A kept session keeps its subscriptions; a new one (the first connection,
                    // or a broker that lost its state) subscribes.
                    if !ack.session_present || !subscribed_once {
                        let filters = self
                            .subscriptions
                            .iter()
                            .map(|f| rumqttc::SubscribeFilter::new(f.clone(), self.qos));
                        if let Err(e) = self.client.try_subscribe_many(filters) {
                            tracing::warn!("MQTT broker {}: subscribing: {e}", self.broker);
                        }
                    }
                    continue;
                }
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, SubscribeReasonCode::Failure))
                    {
                        Delivery::Failed(format!(
                            "refused the subscription to {}",
                            self.subscriptions.join(", ")
                        ))
                    } else {
                        if !subscribed_once {
                            tracing::info!(
                                "MQTT broker {}: subscribed to {}",
                                self.broker,
                                self.subscriptions.join(", ")
                            );
                        }
                        subscribed_once = true;
                        Delivery::Subscribed
                    }
                }
                Ok(_) => continue,
                Err(ConnectionError::ConnectionRefused(code))
                    if code != rumqttc::ConnectReturnCode::ServiceUnavailable =>
                {
                    Delivery::Failed(format!("refused the connection: {code:?}"))
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    if backoff.failures().is_power_of_two() {
                        tracing::warn!(
                            "MQTT broker {}: {e}; reconnecting in {delay:?} ({} attempts so far)",
                            self.broker,
                            backoff.failures()
                        );
                    }
                    std::thread::sleep(delay);
                    continue;
                }
            };
            let failed = matches!(delivery, Delivery::Failed(_));
            if self.sender.send(delivery).is_err() {
                return;
            }
            self.shared.wake();
            if failed {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_fields_fill_only_what_the_payload_lacks() {
        let merged = with_fields(
            br#"{"value":1.5,"device":"own"}"#,
            &[("device", "t"), ("site", "s")],
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(v["device"], "own");
        assert_eq!(v["site"], "s");
        assert_eq!(v["value"], 1.5);
        assert_eq!(with_fields(b"21.5", &[("device", "t")]), None);
        assert_eq!(with_fields(b"{oops", &[("device", "t")]), None);
    }
}
