//! Reusable event-time operators that queries compose, as extension traits on timely streams:
//! windows fired by the frontier (tumbling, sliding with shared panes, sessions, counts of records per key), per-window
//! gathering, processing-time windows, and the aggregations they fold records into.

pub mod aggregate;
pub mod count_window;
pub mod gather;
pub mod keyed;
pub mod partitioned_files;
pub mod processing_time;
pub mod session;
pub mod window;

pub use aggregate::{Aggregate, Count, Max, Sum};
pub use count_window::{CountResult, CountWindowAggregate, CountWindows};
pub use gather::GatherWindows;
pub use partitioned_files::PartitionedFiles;
pub use processing_time::ProcessingTimeCount;
pub use session::SessionAggregate;
pub use window::{Window, WindowAggregate, WindowResult, WindowStreams, Windows};
