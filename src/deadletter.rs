//! Dead letters: records Sluice rejected (unparseable) or could not place (late), kept with where
//! they came from, why, and the raw input, so that nothing accepted is ever silently lost.
//!
//! Each dead letter is one JSON line on the `--dead-letter PATH` file, e.g.
//! `{"origin":{"file":"in.jsonl","line":7},"reason":"malformed_json","detail":"…","raw":"{oops"}`.
//! Counts per reason appear in the run report whether or not a file was given.

use serde::{Deserialize, Serialize};

/// Raw input kept in a dead letter is cut to this many bytes (the record may be huge).
pub const MAX_RAW_BYTES: usize = 4096;

/// Where a record came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Origin {
    /// A line of a file (`-` is standard input); lines count from 1.
    File {
        /// The path as given.
        file: String,
        /// 1-based line number.
        line: u64,
    },
    /// A Kafka record.
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// A record of a generator, by record number.
    Generator {
        /// Global record number.
        event: u64,
    },
    /// An operator of the dataflow (late records dropped from a closed window).
    Operator {
        /// Operator name, e.g. `q5.window_count`.
        operator: String,
    },
    /// An MQTT message.
    Mqtt {
        /// The topic it was published to.
        mqtt_topic: String,
    },
}

/// Why a record was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not syntactically valid JSON (or truncated).
    MalformedJson,
    /// Not a valid CSV row, or one whose field count differs from the header's.
    MalformedCsv,
    /// Valid syntax, but not a record of the pipeline's type: wrong types, missing fields, an
    /// unknown kind (Nexmark's `event_type`), bad timestamps.
    InvalidEvent,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// Longer than the record size cap.
    TooLarge,
    /// Arrived after the window it belongs to had closed.
    Late,
    /// Refers to a record the pipeline does not have: a label for an unknown transaction, or a
    /// second label for one.
    Unmatched,
    /// The same message as one read shortly before: a redelivery (MQTT's QoS 1), not counted
    /// again.
    Duplicate,
}

impl Reason {
    /// Every reason, in report order.
    pub const ALL: [Reason; 8] = [
        Reason::MalformedJson,
        Reason::MalformedCsv,
        Reason::InvalidEvent,
        Reason::InvalidUtf8,
        Reason::TooLarge,
        Reason::Late,
        Reason::Unmatched,
        Reason::Duplicate,
    ];

    /// The snake_case name used in JSON and reports.
    pub fn name(self) -> &'static str {
        match self {
            Reason::MalformedJson => "malformed_json",
            Reason::MalformedCsv => "malformed_csv",
            Reason::InvalidEvent => "invalid_event",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::TooLarge => "too_large",
            Reason::Late => "late",
            Reason::Unmatched => "unmatched",
            Reason::Duplicate => "duplicate",
        }
    }
}

/// One rejected record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where it came from.
    pub origin: Origin,
    /// Why it was rejected.
    pub reason: Reason,
    /// The parser's or operator's message.
    pub detail: String,
    /// The raw input, lossily decoded as UTF-8 and cut to [`MAX_RAW_BYTES`].
    pub raw: String,
    /// Whether `raw` was cut.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw_truncated: bool,
}

impl DeadLetter {
    /// A dead letter for `raw` bytes, keeping at most [`MAX_RAW_BYTES`] of them.
    pub fn new(origin: Origin, reason: Reason, detail: impl Into<String>, raw: &[u8]) -> Self {
        let cut = raw.len().min(MAX_RAW_BYTES);
        DeadLetter {
            origin,
            reason,
            detail: detail.into(),
            raw: String::from_utf8_lossy(&raw[..cut]).into_owned(),
            raw_truncated: cut < raw.len(),
        }
    }
}

/// Counts of dead letters by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterCounts {
    /// [`Reason::MalformedJson`].
    pub malformed_json: u64,
    /// [`Reason::MalformedCsv`].
    #[serde(default)]
    pub malformed_csv: u64,
    /// [`Reason::InvalidEvent`].
    pub invalid_event: u64,
    /// [`Reason::InvalidUtf8`].
    pub invalid_utf8: u64,
    /// [`Reason::TooLarge`].
    pub too_large: u64,
    /// [`Reason::Late`].
    pub late: u64,
    /// [`Reason::Unmatched`].
    #[serde(default)]
    pub unmatched: u64,
    /// [`Reason::Duplicate`].
    #[serde(default)]
    pub duplicate: u64,
}

impl DeadLetterCounts {
    fn slot(&mut self, reason: Reason) -> &mut u64 {
        match reason {
            Reason::MalformedJson => &mut self.malformed_json,
            Reason::MalformedCsv => &mut self.malformed_csv,
            Reason::InvalidEvent => &mut self.invalid_event,
            Reason::InvalidUtf8 => &mut self.invalid_utf8,
            Reason::TooLarge => &mut self.too_large,
            Reason::Late => &mut self.late,
            Reason::Unmatched => &mut self.unmatched,
            Reason::Duplicate => &mut self.duplicate,
        }
    }

    /// Counts one dead letter.
    pub fn add(&mut self, reason: Reason) {
        *self.slot(reason) += 1;
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &DeadLetterCounts) {
        for r in Reason::ALL {
            *self.slot(r) += other.get(r);
        }
    }

    /// The count for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        match reason {
            Reason::MalformedJson => self.malformed_json,
            Reason::MalformedCsv => self.malformed_csv,
            Reason::InvalidEvent => self.invalid_event,
            Reason::InvalidUtf8 => self.invalid_utf8,
            Reason::TooLarge => self.too_large,
            Reason::Late => self.late,
            Reason::Unmatched => self.unmatched,
            Reason::Duplicate => self.duplicate,
        }
    }

    /// All dead letters.
    pub fn total(&self) -> u64 {
        Reason::ALL.into_iter().map(|r| self.get(r)).sum()
    }

    /// `(reason, count)` for the reasons with a non-zero count.
    pub fn nonzero(&self) -> impl Iterator<Item = (Reason, u64)> + '_ {
        Reason::ALL
            .into_iter()
            .map(|r| (r, self.get(r)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_one_line_with_escaped_raw() {
        let d = DeadLetter::new(
            Origin::File {
                file: "in.jsonl".into(),
                line: 7,
            },
            Reason::MalformedJson,
            "expected value",
            b"{\"oops\n\xff",
        );
        let text = serde_json::to_string(&d).unwrap();
        assert!(!text.contains('\n'));
        assert!(
            text.starts_with(r#"{"origin":{"file":"in.jsonl","line":7},"reason":"malformed_json""#)
        );
        let back: DeadLetter = serde_json::from_str(&text).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn cuts_large_raw_input() {
        let raw = vec![b'a'; MAX_RAW_BYTES + 10];
        let d = DeadLetter::new(Origin::Generator { event: 1 }, Reason::TooLarge, "", &raw);
        assert_eq!(d.raw.len(), MAX_RAW_BYTES);
        assert!(d.raw_truncated);
        let mut counts = DeadLetterCounts::default();
        counts.add(Reason::TooLarge);
        counts.add(Reason::TooLarge);
        assert_eq!(
            counts.nonzero().collect::<Vec<_>>(),
            vec![(Reason::TooLarge, 2)]
        );
    }
}
