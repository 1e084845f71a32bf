//! Metrics: the per-worker [`Ledger`] of releases and completions (processing latency,
//! event-time lag, counts) and the merged [`RunReport`] printed at the end of every run.

mod ledger;
mod report;

pub use ledger::{new_histogram, Ledger};
pub use report::{ccdf_tsv, Percentiles, RunReport, WorkerReport, WorkerSummary, KEPT_UP_MS};
