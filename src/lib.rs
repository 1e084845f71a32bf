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
//!   of a long run on stderr.
//! - [`launch`], [`local`], [`driver`] — forming the worker mesh and running a query on it;
//!   [`cli`] — the command line.
//!
//! [timely dataflow]: https://github.com/TimelyDataflow/timely-dataflow
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// mimalloc for every program built on Sluice (the binary, tests, benchmarks): dataflows allocate
/// and free many small strings per event, and glibc's allocator spent ~40 % of q0's time on them.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod cli;
pub mod deadletter;
pub mod driver;
pub mod kafka;
pub mod launch;
pub mod local;
pub mod metrics;
pub mod model;
pub mod operators;
pub mod progress;
#[path = "../queries/mod.rs"]
pub mod queries;
pub mod query;
pub mod sink;
pub mod source;
pub mod state;
pub mod time;
