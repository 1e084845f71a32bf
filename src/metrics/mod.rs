//! Metrics: the per-worker [`Ledger`] of releases and completions (processing latency,
//! event-time lag, counts), its per-interval [`timeline`], and the merged [`RunReport`] printed at
//! the end of every run; the [`live`] view that the progress line, the Prometheus endpoint and
//! the dashboard read while a run goes on.

mod histogram;
mod ledger;
pub mod live;
mod report;
pub mod timeline;

pub use histogram::{new_histogram, MAX_TRACKED_NS};
pub use ledger::{Ledger, MetricsConfig};
pub use report::{
    ccdf_tsv, dur, si, Percentiles, RunReport, StopRecord, WorkerReport, WorkerSummary, KEPT_UP_MS,
};
