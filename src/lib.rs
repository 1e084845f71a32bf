//! # Sluice
//!
//! A distributed stream processor on [timely dataflow]: event-time pipelines whose frontier is
//! the watermark, run on one thread, many threads, or a mesh of processes over TCP, with honest
//! latency reports.
//!
//! The pieces, in the order data meets them:
//! - [`model`] — the Nexmark events and their Flink JSON form; [`time`] — event time, the
//!   timestamp text form, the watermark policy.
//! - [`source`] — readers (generator, file) and the ingest operator that stamps records, holds
//!   the watermark capability and routes bad records to [`deadletter`].
//! - [`query`] and [`queries`] — what a query is, and the registry of queries (one file each
//!   under `queries/`).
//! - [`operators`] — reusable event-time operators (windows fired by the frontier, aggregations).
//! - [`state`] — incremental state on differential dataflow (collections of updates, rows
//!   with a `diff`).
//! - [`sink`] — JSON lines to stdout or a file, records of a Kafka topic, or `null`.
//! - [`kafka`] — `kafka://` sources (per-partition watermarks) and sinks, and the load tool.
//! - [`metrics`] — the latency ledger, its timeline and the run report; [`progress`] — progress
//!   of a long run on stderr; [`stop`] — ending a run early on a signal or a closed stdout.
//! - [`launch`], [`local`], [`driver`] — forming the worker mesh and running a query on it;
//!   [`preflight`] — the checks a run makes before any work (outputs that would overwrite an
//!   input, unwritable destinations);
//!   [`cli`] — the command line.
//!
//! The library sets no global allocator: the `sluice` binary uses mimalloc (dataflows allocate
//! and free many small strings per event, and glibc's allocator spent ~40 % of q0's time on
//! them); a program built on the library chooses its own.
//!
//! [timely dataflow]: https://github.com/TimelyDataflow/timely-dataflow
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cli;
pub mod deadletter;
pub mod driver;
pub mod kafka;
pub mod launch;
pub mod local;
pub mod metrics;
pub mod model;
pub mod operators;
pub mod preflight;
pub mod progress;
#[path = "../queries/mod.rs"]
pub mod queries;
pub mod query;
pub mod sink;
pub mod source;
pub mod state;
pub mod stop;
pub mod time;
