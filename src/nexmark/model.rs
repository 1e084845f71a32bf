//! The Nexmark event model — `Person`, `Auction`, `Bid`, `Event` — and its Flink JSON form.
//!
//! One set of types serves both encodings: in JSON (human-readable) an event is Flink's envelope
//! `{"event_type":N,"person":…,"auction":…,"bid":…}` with camelCase fields and text timestamps;
//! in timely's binary exchange encoding it is a compact enum with integer timestamps.

use crate::record::{Format, Record};
use crate::time::{EventTime, Timestamp};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A person registering with the auction site.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// Person id (from 1000).
    pub id: u64,
    /// Full name.
    pub name: String,
    /// E-mail address.
    pub email_address: String,
    /// Credit card number.
    pub credit_card: String,
    /// City.
    pub city: String,
    /// US state code.
    pub state: String,
    /// Event time.
    pub date_time: Timestamp,
    /// Padding toward the average event size.
    pub extra: String,
}

/// An item put up for auction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Auction {
    /// Auction id (from 1000).
    pub id: u64,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Starting price, cents.
    pub initial_bid: u64,
    /// Reserve price, cents.
    pub reserve: u64,
    /// Event time (when the auction opened).
    pub date_time: Timestamp,
    /// When the auction closes.
    pub expires: Timestamp,
    /// Seller's person id.
    pub seller: u64,
    /// Category id (10–14 from the generator).
    pub category: u64,
    /// Padding toward the average event size.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bid {
    /// Auction id.
    pub auction: u64,
    /// Bidder's person id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Channel the bid came through.
    pub channel: String,
    /// URL of the bid.
    pub url: String,
    /// Event time.
    pub date_time: Timestamp,
    /// Padding toward the average event size.
    pub extra: String,
}

/// One Nexmark event. People and auctions (8 % of events) are boxed so that an `Event` is no
/// larger than a bid: events are moved several times on their way through a dataflow.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// `event_type` 0.
    Person(Box<Person>),
    /// `event_type` 1.
    Auction(Box<Auction>),
    /// `event_type` 2.
    Bid(Bid),
}

impl Event {
    /// The event's event time (its `dateTime`).
    pub fn event_time(&self) -> EventTime {
        match self {
            Event::Person(p) => p.date_time.0,
            Event::Auction(a) => a.date_time.0,
            Event::Bid(b) => b.date_time.0,
        }
    }

    /// Flink's `event_type` code.
    pub fn event_type(&self) -> u8 {
        match self {
            Event::Person(_) => 0,
            Event::Auction(_) => 1,
            Event::Bid(_) => 2,
        }
    }

    /// The bid, if this event is one.
    pub fn into_bid(self) -> Option<Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }

    /// Parses one Flink-format JSON record.
    pub fn from_json(bytes: &[u8]) -> Result<Event, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Appends this event as one Flink-format JSON line (with `\n`) to `out`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        // Serialising plain structs into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, self);
        out.push(b'\n');
    }
}

impl Record for Event {
    /// Flink's JSON envelope: nested, so JSON only.
    const FORMATS: &'static [Format] = &[Format::Json];

    fn event_time(&self) -> EventTime {
        Event::event_time(self)
    }
}

/// Flink's JSON envelope, borrowed for writing.
#[derive(Serialize)]
struct EnvelopeRef<'a> {
    event_type: u8,
    person: Option<&'a Person>,
    auction: Option<&'a Auction>,
    bid: Option<&'a Bid>,
}

/// Flink's JSON envelope, owned for reading. Unknown fields are ignored, as Flink does.
#[derive(Deserialize)]
struct Envelope {
    event_type: i64,
    #[serde(default)]
    person: Option<Box<Person>>,
    #[serde(default)]
    auction: Option<Box<Auction>>,
    #[serde(default)]
    bid: Option<Bid>,
}

/// The binary (exchange) form.
#[derive(Serialize)]
enum WireRef<'a> {
    Person(&'a Person),
    Auction(&'a Auction),
    Bid(&'a Bid),
}

#[derive(Deserialize)]
enum Wire {
    Person(Box<Person>),
    Auction(Box<Auction>),
    Bid(Bid),
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let (person, auction, bid) = match self {
                Event::Person(p) => (Some(&**p), None, None),
                Event::Auction(a) => (None, Some(&**a), None),
                Event::Bid(b) => (None, None, Some(b)),
            };
            EnvelopeRef {
                event_type: self.event_type(),
                person,
                auction,
                bid,
            }
            .serialize(serializer)
        } else {
            match self {
                Event::Person(p) => WireRef::Person(p),
                Event::Auction(a) => WireRef::Auction(a),
                Event::Bid(b) => WireRef::Bid(b),
            }
            .serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return Ok(match Wire::deserialize(deserializer)? {
                Wire::Person(p) => Event::Person(p),
                Wire::Auction(a) => Event::Auction(a),
                Wire::Bid(b) => Event::Bid(b),
            });
        }
        let env = Envelope::deserialize(deserializer)?;
        let present = [
            env.person.is_some(),
            env.auction.is_some(),
            env.bid.is_some(),
        ];
        if present.iter().filter(|p| **p).count() != 1 {
            return Err(de::Error::custom(
                "exactly one of `person`, `auction`, `bid` must be non-null",
            ));
        }
        match (env.event_type, env.person, env.auction, env.bid) {
            (0, Some(p), None, None) => Ok(Event::Person(p)),
            (1, None, Some(a), None) => Ok(Event::Auction(a)),
            (2, None, None, Some(b)) => Ok(Event::Bid(b)),
            (t @ 0..=2, ..) => Err(de::Error::custom(format!(
                "event_type {t} does not match the non-null payload"
            ))),
            (t, ..) => Err(de::Error::custom(format!(
                "unknown event_type {t} (expected 0 person, 1 auction, 2 bid)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bid() -> Bid {
        Bid {
            auction: 1000,
            bidder: 2001,
            price: 1234,
            channel: "Google".into(),
            url: "https://www.nexmark.com/a/b/c/item.htm?query=1".into(),
            date_time: Timestamp(1_709_164_800_123),
            extra: "x\"y".into(),
        }
    }

    #[test]
    fn writes_flink_envelope() {
        let mut out = Vec::new();
        Event::Bid(bid()).write_json_line(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"event_type\":2,\"person\":null,\"auction\":null,\"bid\":{\"auction\":1000,\"bidder\":2001,\
             \"price\":1234,\"channel\":\"Google\",\"url\":\"https://www.nexmark.com/a/b/c/item.htm?query=1\",\
             \"dateTime\":\"2024-02-29 00:00:00.123\",\"extra\":\"x\\\"y\"}}\n"
        );
        assert_eq!(
            Event::from_json(text.trim_end().as_bytes()).unwrap(),
            Event::Bid(bid())
        );
    }

    #[test]
    fn reads_epoch_millis_and_omitted_nulls() {
        let text = r#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":1709164800123,"extra":""},"other":7}"#;
        let e = Event::from_json(text.as_bytes()).unwrap();
        assert_eq!(e.event_time(), 1_709_164_800_123);
    }

    #[test]
    fn rejects_inconsistent_envelopes() {
        let b =
            r#"{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":1,"extra":""}"#;
        for bad in [
            format!(r#"{{"event_type":7,"bid":{b}}}"#),
            format!(r#"{{"event_type":1,"bid":{b}}}"#),
            r#"{"event_type":2,"bid":null}"#.to_string(),
            r#"{"event_type":2,"bid":{"auction":1}}"#.to_string(),
            r#"{"event_type":2,"bid":{"auction":"one","bidder":2,"price":3,"channel":"c","url":"u","dateTime":1,"extra":""}}"#.to_string(),
        ] {
            assert!(Event::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
