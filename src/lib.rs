//! # Sluice
//!
//! A distributed stream processor on [timely dataflow]: event-time pipelines whose frontier is
//! the watermark, run on one thread, many threads, or a mesh of processes over TCP, with honest
//! latency reports. The engine is generic over the record type; domains (Nexmark here, your own
//! elsewhere) bring records, generators and pipelines.
//!
//! The data path, top to bottom:
//! - [`connectors`] — readers of records (a domain's generator, files and stdin in JSON or CSV,
//!   Kafka) and writers of rows (stdout, files, Kafka, nothing); [`record`] — what a record
//!   is (serde data with an event time); [`time`] — event time, timestamps, the watermark policy.
//! - [`ingest`] — the operator every reader runs under: stamping at event time, the watermark
//!   capability, dead letters ([`deadletter`]), flow control, stopping ([`stop`]).
//! - [`operators`] — one keyed event-time core (state in and out, time-ordered) with windows,
//!   sessions, count windows and gathering on it; [`collections`] — differential helpers.
//! - [`pipeline`] — what a pipeline is and the context it emits rows through; [`catalog`] —
//!   domains and their pipelines; [`queries`] — this crate's domains (Nexmark: [`nexmark`],
//!   fraud: [`fraud`], IoT: [`iot`], recommendations: [`recommend`]).
//! - [`driver`] — running a pipeline on a worker mesh ([`launch`], [`local`]) after the checks
//!   of [`preflight`]; [`metrics`] and [`console`] observe the run (latency, throughput, memory,
//!   progress) and never steer it; [`monitoring`] serves them live over HTTP (Prometheus
//!   metrics, a dashboard, health probes).
//! - [`app`] — the whole command line ([`cli`], completed by [`config`] files and variables) as one call, for the `sluice` binary and for
//!   programs of your own.
//!
//! ## Writing your own pipeline
//!
//! A record type implements [`record::Record`]; a [`pipeline::Pipeline`] builds a timely
//! dataflow from a stream of them; a [`catalog::Domain`] groups pipelines (and, optionally, a
//! generator); [`app::main`] gives the program Sluice's command line — `run` with every source,
//! sink, mesh, report and dead-letter flag, `list`, `gen`. `examples/sensors.rs` is a complete
//! one.
//!
//! The library sets no global allocator: the `sluice` binary uses mimalloc (dataflows allocate
//! and free many small strings per event, and glibc's allocator spent ~40 % of q0's time on
//! them); a program built on the library chooses its own.
//!
//! [timely dataflow]: https://github.com/TimelyDataflow/timely-dataflow
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod catalog;
pub mod checkpoint;
pub mod cli;
pub mod collections;
pub mod config;
pub mod connectors;
pub mod console;
pub mod deadletter;
pub mod driver;
pub mod fraud;
pub mod ingest;
pub mod iot;
pub mod launch;
pub mod local;
pub mod metrics;
pub mod monitoring;
pub mod nexmark;
pub mod operators;
pub mod pipeline;
pub mod preflight;
#[path = "../queries/mod.rs"]
pub mod queries;
pub mod recommend;
pub mod record;
pub mod route;
pub mod stop;
pub mod time;
