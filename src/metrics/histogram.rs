//! The latency histogram every measure of a run records into: HDR, nanoseconds, 1 ns to an hour
//! at three significant digits (the `hdrhistogram` crate).

use hdrhistogram::Histogram;

/// The largest latency a histogram tracks exactly: one hour, in ns (larger samples are clamped).
pub const MAX_TRACKED_NS: u64 = 3_600_000_000_000;

/// A latency histogram in nanoseconds: 1 ns to one hour, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Fixed, valid bounds and precision: construction cannot fail.
    Histogram::new_with_bounds(1, MAX_TRACKED_NS, 3)
        .unwrap_or_else(|_| unreachable!("1 ns .. 1 h at 3 significant figures is valid"))
}
