//! Reusable event-time operators that queries compose, as extension traits on timely streams:
//! windows fired by the frontier (tumbling, sliding with shared panes), and the aggregations they
//! fold records into.

pub mod aggregate;
pub mod gather;
pub mod window;

pub use aggregate::{Aggregate, Count, Max, Sum};
pub use gather::GatherWindows;
pub use window::{Window, WindowAggregate, WindowResult, WindowStreams, Windows};
