//! Decoding one input record — a file line, a Kafka value — into a [`Record`], or into a dead
//! letter saying why not.
//!
//! JSON is read with `serde_json`; CSV with the `csv` crate, columns named by a header row (the
//! first line of a file or stdin, or `--csv-header` for Kafka) or, without one, taken in the
//! order of the record type's fields. Reasons: `too_large` (longer than the size cap),
//! `invalid_utf8`, `malformed_json` / `malformed_csv` (not valid syntax, or a row whose field
//! count differs from the header's), `invalid_event` (valid syntax that is not a record of the
//! type: wrong types, missing fields, bad timestamps).

use super::Ingest;
use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::record::{Format, Record};
use std::marker::PhantomData;

/// A decoder of records of type `R` in one format.
pub struct Decoder<R> {
    format: Format,
    headers: Option<csv::StringRecord>,
    _records: PhantomData<fn() -> R>,
}

impl<R: Record> Decoder<R> {
    /// A decoder of `format`; for CSV, `headers` name the columns (else they are positional).
    pub fn new(format: Format, headers: Option<csv::StringRecord>) -> Self {
        Decoder {
            format,
            headers,
            _records: PhantomData,
        }
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Takes a CSV header row (a file's first line).
    pub fn set_header_line(&mut self, line: &[u8]) {
        self.headers = parse_row(line).ok();
    }

    /// Decodes `bytes` into `out`: a record, or a dead letter from `origin()` (called only for
    /// dead letters). `oversized`: the caller saw more than `max_record_bytes`.
    pub fn decode(
        &self,
        bytes: &[u8],
        oversized: bool,
        max_record_bytes: usize,
        origin: impl FnOnce() -> Origin,
        out: &mut Ingest<R>,
    ) {
        let rejected = |reason, detail: String| DeadLetter::new(origin(), reason, detail, bytes);
        if oversized {
            let detail = format!("record longer than {max_record_bytes} bytes");
            out.dead.push(rejected(Reason::TooLarge, detail));
            return;
        }
        // JSON: the parser checks the UTF-8 of every string it reads (anything else that is not
        // ASCII is a syntax error), so a separate pass over the bytes is needed only to say
        // why a record was refused. CSV is checked first.
        if self.format == Format::Csv {
            if let Err(e) = std::str::from_utf8(bytes) {
                out.dead.push(rejected(Reason::InvalidUtf8, e.to_string()));
                return;
            }
        }
        match self.parse(bytes) {
            Ok(record) => out.records.push(record),
            Err((reason, detail)) => match std::str::from_utf8(bytes) {
                Err(e) => out.dead.push(rejected(Reason::InvalidUtf8, e.to_string())),
                Ok(_) => out.dead.push(rejected(reason, detail)),
            },
        }
    }

    fn parse(&self, bytes: &[u8]) -> Result<R, (Reason, String)> {
        match self.format {
            Format::Json => serde_json::from_slice(bytes).map_err(|e| {
                let reason = match e.classify() {
                    serde_json::error::Category::Data => Reason::InvalidEvent,
                    _ => Reason::MalformedJson,
                };
                (reason, e.to_string())
            }),
            Format::Csv => {
                let row = parse_row(bytes).map_err(|e| (Reason::MalformedCsv, e))?;
                if let Some(headers) = &self.headers {
                    if headers.len() != row.len() {
                        let detail = format!(
                            "{} field(s) where the header has {}",
                            row.len(),
                            headers.len()
                        );
                        return Err((Reason::MalformedCsv, detail));
                    }
                }
                row.deserialize(self.headers.as_ref())
                    .map_err(|e| (Reason::InvalidEvent, e.to_string()))
            }
        }
    }
}

/// One CSV row (without its line end).
fn parse_row(bytes: &[u8]) -> Result<csv::StringRecord, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .buffer_capacity(bytes.len().max(64) + 1)
        .from_reader(bytes);
    let mut row = csv::StringRecord::new();
    match reader.read_record(&mut row) {
        Ok(true) => Ok(row),
        Ok(false) => Err("an empty row".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::testing::Reading;

    fn decode(decoder: &Decoder<Reading>, line: &str) -> Result<Reading, (Reason, String)> {
        let mut out = Ingest::default();
        let origin = || Origin::Generator { event: 0 };
        decoder.decode(line.as_bytes(), false, 1 << 20, origin, &mut out);
        match (out.records.pop(), out.dead.pop()) {
            (Some(r), None) => Ok(r),
            (None, Some(d)) => Err((d.reason, d.detail)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_rows_by_header_or_position() {
        let mut by_header = Decoder::<Reading>::new(Format::Csv, None);
        by_header.set_header_line(b"time,device,value");
        let r = decode(&by_header, "1000,\"pump, 7\",2.5").unwrap();
        assert_eq!(r.device, "pump, 7");
        assert_eq!(r.time, 1000);
        let positional = Decoder::<Reading>::new(Format::Csv, None);
        assert_eq!(decode(&positional, "pump,1000,2.5").unwrap().time, 1000);
        assert_eq!(
            decode(&by_header, "1000,pump").unwrap_err().0,
            Reason::MalformedCsv
        );
        assert_eq!(
            decode(&by_header, "soon,pump,1").unwrap_err().0,
            Reason::InvalidEvent
        );
        assert_eq!(
            decode(&by_header, "1,\"pump,1").unwrap_err().0,
            Reason::MalformedCsv
        );
    }

    #[test]
    fn json_syntax_and_type_errors_are_told_apart() {
        let json = Decoder::<Reading>::new(Format::Json, None);
        assert_eq!(
            decode(&json, r#"{"device":"a","time":5,"value":1}"#)
                .unwrap()
                .time,
            5
        );
        assert_eq!(decode(&json, "{oops").unwrap_err().0, Reason::MalformedJson);
        assert_eq!(
            decode(&json, r#"{"device":"a","time":"x","value":1}"#)
                .unwrap_err()
                .0,
            Reason::InvalidEvent
        );
    }
}
