//! What a record is to the engine: plain serde data with an event time.
//!
//! Every stream Sluice reads is a stream of some [`Record`] type: a Nexmark event, a sensor
//! reading, a transaction. The engine reads records from files, stdin and Kafka in one of the
//! [`Format`]s the type supports (decoding with serde: `serde_json`, and the `csv` crate for CSV
//! with a header row), exchanges them between workers (serde + bincode), and places each at its
//! [`event_time`](Record::event_time).
//!
//! # Examples
//!
//! A sensor reading that can come as JSON or CSV:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use sluice::record::{Format, Record};
//! use sluice::time::EventTime;
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct Reading {
//!     device: String,
//!     time: EventTime,
//!     celsius: f64,
//! }
//!
//! impl Record for Reading {
//!     fn event_time(&self) -> EventTime {
//!         self.time
//!     }
//! }
//!
//! assert!(Reading::FORMATS.contains(&Format::Csv));
//! ```

use crate::time::EventTime;
use timely::ExchangeData;

/// A record of a stream: serde data (so any supported format can decode it and workers can
/// exchange it) that knows its event time.
pub trait Record: ExchangeData + Clone + std::fmt::Debug {
    /// The formats records of this type can be read from. Flat structs can come as JSON or as
    /// CSV rows (columns named by the header); nested ones (enums, envelopes) as JSON only.
    const FORMATS: &'static [Format] = &[Format::Json, Format::Csv];

    /// When the record happened, in milliseconds since the Unix epoch: the timely timestamp it
    /// is placed at (rounded to the stamping granularity).
    fn event_time(&self) -> EventTime;
}

/// How records are written in a file, on stdin or in Kafka record values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    /// One JSON value per line (or per Kafka record).
    Json,
    /// CSV: a header row naming the columns (files, stdin), then one record per line; a Kafka
    /// record value is one row, with columns in the header of `--csv-header` or in the order
    /// of the record type's fields.
    Csv,
}

impl Format {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

/// A small record type for the library's own tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::Record;
    use crate::time::EventTime;

    /// A device's reading at a time: flat, so JSON and CSV both hold it.
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    pub struct Reading {
        pub device: String,
        pub time: EventTime,
        pub value: f64,
    }

    impl Record for Reading {
        fn event_time(&self) -> EventTime {
            self.time
        }
    }
}
