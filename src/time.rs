//! Event time: one `u64` millisecond type everywhere, the Flink timestamp text form, and the
//! watermark policy that turns "max event time seen" into a timely capability.
//!
//! The timely timestamp of every Sluice dataflow is event time in milliseconds since the Unix
//! epoch ([`EventTime`]). A source holds its capability at the *watermark*
//! (`max event time seen − allowed delay`), so the frontier of any stream is the global
//! watermark. Records are stamped by [`WatermarkPolicy::stamp`]: never below the watermark, and
//! never above their own event time unless they arrived late.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Event time: milliseconds since 1970-01-01T00:00:00Z. The timely timestamp of every dataflow.
pub type EventTime = u64;

/// An instant written to JSON as Flink writes `TIMESTAMP(3)`: `"yyyy-MM-dd HH:mm:ss.SSS"` (UTC).
///
/// Human-readable formats (JSON) use the text form and also accept integer epoch milliseconds;
/// binary formats (timely's exchange encoding) carry the plain `u64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub EventTime);

/// Why a timestamp text was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid timestamp {text:?}: expected \"yyyy-MM-dd HH:mm:ss.SSS\" (UTC) or epoch milliseconds"
)]
pub struct TimestampError {
    text: String,
}

/// The calendar fields of an instant, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
    /// Millisecond, 0–999.
    pub milli: u32,
}

/// The latest instant the calendar conversions represent: 9999-12-31 23:59:59.999 UTC (the
/// range of four-digit years). Later event times are shown as this instant.
pub const MAX_CIVIL_MILLIS: EventTime = 253_402_300_799_999;

impl Civil {
    /// The calendar fields of `ms` milliseconds since the epoch (clamped to
    /// [`MAX_CIVIL_MILLIS`]). The calendar arithmetic is `jiff`'s.
    pub fn from_millis(ms: EventTime) -> Self {
        let ms = ms.min(MAX_CIVIL_MILLIS) as i64;
        // In range by the clamp above: 0 ..= the largest instant jiff represents in UTC.
        let at = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let dt = jiff::tz::Offset::UTC.to_datetime(at);
        Civil {
            year: i64::from(dt.year()),
            month: dt.month() as u32,
            day: dt.day() as u32,
            hour: dt.hour() as u32,
            minute: dt.minute() as u32,
            second: dt.second() as u32,
            milli: (dt.subsec_nanosecond() / 1_000_000) as u32,
        }
    }
}

/// Writes `ms` as `yyyy-MM-dd HH:mm:ss.SSS` into a fixed buffer (years 0–9999).
pub fn format_millis(ms: EventTime) -> [u8; 23] {
    let c = Civil::from_millis(ms);
    let mut out = *b"0000-00-00 00:00:00.000";
    let mut put = |at: usize, width: usize, mut value: u64| {
        for i in (0..width).rev() {
            out[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, c.year.clamp(0, 9999) as u64);
    put(5, 2, c.month.into());
    put(8, 2, c.day.into());
    put(11, 2, c.hour.into());
    put(14, 2, c.minute.into());
    put(17, 2, c.second.into());
    put(20, 3, c.milli.into());
    out
}

/// `ms` as a `String` in the Flink text form.
pub fn format_timestamp(ms: EventTime) -> String {
    let bytes = format_millis(ms);
    // The buffer holds ASCII digits and separators only.
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Parses `yyyy-MM-dd HH:mm:ss[.f…]` (a `T` separator and a trailing `Z` are also accepted;
/// fractions beyond milliseconds are truncated) or a plain non-negative integer of epoch ms.
///
/// The fixed layout is scanned here (it is on the hot path of every file and Kafka record);
/// whether the fields form a real date and which instant it is, `jiff` decides.
pub fn parse_timestamp(text: &str) -> Result<EventTime, TimestampError> {
    let err = || TimestampError {
        text: text.chars().take(64).collect(),
    };
    let b = text.as_bytes();
    if !b.is_empty() && b.iter().all(u8::is_ascii_digit) {
        return text.parse().map_err(|_| err());
    }
    let b = b.strip_suffix(b"Z").unwrap_or(b);
    if b.len() < 19 {
        return Err(err());
    }
    let num = |from: usize, to: usize| -> Result<i32, TimestampError> {
        let digits = &b[from..to];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        Ok(digits
            .iter()
            .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0')))
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b' ' || b[10] == b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(err());
    }
    let mut milli = 0;
    if b.len() > 19 {
        let frac = &b[20..];
        if b[19] != b'.' || frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
            return Err(err());
        }
        for (i, d) in frac.iter().take(3).enumerate() {
            milli += i32::from(d - b'0') * [100, 10, 1][i];
        }
    }
    let year = num(0, 4)?;
    if year < 1970 {
        return Err(err());
    }
    // Two-digit fields are at most 99: they fit an i8, and jiff rejects what is out of range
    // (month 13, February 30, hour 24, …).
    let field = |from: usize| num(from, from + 2).map(|v| v as i8);
    let dt = jiff::civil::DateTime::new(
        year as i16,
        field(5)?,
        field(8)?,
        field(11)?,
        field(14)?,
        field(17)?,
        milli * 1_000_000,
    )
    .map_err(|_| err())?;
    let at = jiff::tz::Offset::UTC.to_timestamp(dt).map_err(|_| err())?;
    u64::try_from(at.as_millisecond()).map_err(|_| err())
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            let bytes = format_millis(self.0);
            // Always ASCII; `from_utf8` cannot fail here.
            serializer.serialize_str(std::str::from_utf8(&bytes).unwrap_or_default())
        } else {
            serializer.serialize_u64(self.0)
        }
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a \"yyyy-MM-dd HH:mm:ss.SSS\" string or integer epoch milliseconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
        Ok(Timestamp(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
        u64::try_from(v)
            .map(Timestamp)
            .map_err(|_| E::custom(format!("negative timestamp {v}")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
        parse_timestamp(v).map(Timestamp).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_any(TimestampVisitor)
        } else {
            deserializer.deserialize_u64(TimestampVisitor)
        }
    }
}

/// How a source turns event times into a watermark and record stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatermarkPolicy {
    /// Allowed out-of-orderness: the watermark trails the max event time seen by this much.
    pub delay_ms: u64,
    /// Records are stamped with their event time rounded down to this many ms (then raised to
    /// the watermark). 1 stamps every record at exactly its event time; coarser stamps give
    /// timely fewer, larger messages. Windows always use a record's own event time.
    pub granularity_ms: u64,
}

impl Default for WatermarkPolicy {
    fn default() -> Self {
        WatermarkPolicy {
            delay_ms: 4000,
            granularity_ms: 100,
        }
    }
}

impl WatermarkPolicy {
    /// The watermark implied by the largest event time seen so far.
    pub fn watermark(&self, max_seen: EventTime) -> EventTime {
        max_seen.saturating_sub(self.delay_ms)
    }

    /// The timely time a record with `event_time` is emitted at, given the current `watermark`
    /// (the source's capability). A result above `event_time` means the record is late.
    pub fn stamp(&self, event_time: EventTime, watermark: EventTime) -> EventTime {
        let g = self.granularity_ms.max(1);
        (event_time - event_time % g).max(watermark)
    }
}

/// Whether a record stamped at `stamp` arrived behind the watermark (its event time is below the
/// source's capability when it was read). Event-time operators route such records to their
/// late-data output once the window they belong to has closed.
pub fn is_late(event_time: EventTime, stamp: EventTime) -> bool {
    event_time < stamp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for ms in [
            0,
            1,
            999,
            86_399_999,
            951_782_400_000,
            1_709_164_800_123,
            4_102_444_799_999,
        ] {
            let text = format_timestamp(ms);
            assert_eq!(parse_timestamp(&text), Ok(ms), "{text}");
        }
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            format_timestamp(1_709_164_800_123),
            "2024-02-29 00:00:00.123"
        );
    }

    #[test]
    fn accepts_variants_and_rejects_garbage() {
        assert_eq!(
            parse_timestamp("2024-02-29T00:00:00.5Z"),
            Ok(1_709_164_800_500)
        );
        assert_eq!(
            parse_timestamp("2024-02-29 00:00:00"),
            Ok(1_709_164_800_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29 00:00:00.123456"),
            Ok(1_709_164_800_123)
        );
        assert_eq!(parse_timestamp("1709164800123"), Ok(1_709_164_800_123));
        for bad in [
            "",
            "2023-02-29 00:00:00.000",
            "2024-13-01 00:00:00.000",
            "2024-01-01 24:00:00.000",
            "2024-01-01 00:00:00.",
            "2024/01/01 00:00:00.000",
            "yesterday",
            "-5",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_uses_text_and_accepts_integers() {
        let t = Timestamp(1_709_164_800_123);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2024-02-29 00:00:00.123\""
        );
        assert_eq!(
            serde_json::from_str::<Timestamp>("1709164800123").unwrap(),
            t
        );
        assert!(serde_json::from_str::<Timestamp>("-1").is_err());
        assert!(serde_json::from_str::<Timestamp>("\"nope\"").is_err());
    }

    #[test]
    fn stamps_never_below_watermark() {
        let p = WatermarkPolicy {
            delay_ms: 4000,
            granularity_ms: 100,
        };
        assert_eq!(p.watermark(10_000), 6000);
        assert_eq!(p.watermark(1000), 0);
        assert_eq!(p.stamp(7_250, 6000), 7200);
        assert_eq!(p.stamp(6_050, 6030), 6030);
        assert!(is_late(5_000, p.stamp(5_000, 6000)));
        assert!(!is_late(7_250, p.stamp(7_250, 6000)));
    }
}
