//! Reusable event-time operators that queries compose, as extension traits on timely streams.
//!
//! One keyed event-time core ([`keyed`]: routing, order, due times, lateness, state in and out)
//! carries windows fired by the frontier (tumbling, and sliding with shared panes), sessions,
//! count windows and per-window gathering, each a small [`KeyedLogic`]. Beside them:
//! processing-time windows, partitioned files, the aggregations windows fold records into
//! (with [`distinct`] sets of ids for their accumulators),
//! [`split`] (a stream several ways, without copies) and [`ingested`] (the wall-clock instant
//! a record was received, carried with it).

pub mod aggregate;
pub mod count_window;
pub mod distinct;
pub mod gather;
pub mod ingested;
pub mod keyed;
pub mod partitioned_files;
pub mod processing_time;
pub mod session;
pub mod spec;
pub mod split;
pub mod updating;
pub mod window;
pub mod windowing;

pub use aggregate::{Aggregate, Count, Max, Sum};
pub use count_window::{CountResult, CountWindows};
pub use gather::GatherWindows;
pub use keyed::{KeyedCore, KeyedLogic, KeyedOptions};
pub use partitioned_files::PartitionedFiles;
pub use processing_time::ProcessingTimeCount;
pub use spec::{by, By, Fold};
pub use split::split;
pub use window::{Window, WindowResult, WindowStreams, Windows};
pub use windowing::Windowing;
