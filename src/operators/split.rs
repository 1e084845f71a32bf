//! Splitting a stream several ways without copying it: [`split`] moves each record to one of
//! `N` streams (a second reader of one stream would get a copy of every record).
//!
//! # Examples
//!
//! ```
//! use sluice::operators::split;
//! use timely::dataflow::operators::{Capture, ToStream};
//! use timely::dataflow::operators::capture::Extract;
//!
//! let (evens, odds) = timely::example(|scope| {
//!     let [evens, odds] = split((0..6u64).to_stream(scope), |x| (*x % 2) as usize);
//!     (evens.capture(), odds.capture())
//! });
//! let flat = |c: Vec<(u64, Vec<u64>)>| c.into_iter().flat_map(|(_, v)| v).collect::<Vec<_>>();
//! assert_eq!(flat(evens.extract()), vec![0, 2, 4]);
//! assert_eq!(flat(odds.extract()), vec![1, 3, 5]);
//! ```

use timely::dataflow::operators::vec::Partition;
use timely::dataflow::StreamVec;
use timely::progress::Timestamp;

/// `stream` split `N` ways by `part` (its index, below `N`; a larger one goes to the last).
pub fn split<'s, T: Timestamp, D: 'static, const N: usize>(
    stream: StreamVec<'s, T, D>,
    part: impl Fn(&D) -> usize + 'static,
) -> [StreamVec<'s, T, D>; N] {
    let last = N.saturating_sub(1) as u64;
    let parts = stream.partition(N as u64, move |d| ((part(&d) as u64).min(last), d));
    match <[_; N]>::try_from(parts) {
        Ok(parts) => parts,
        // `partition` makes exactly N streams.
        Err(parts) => unreachable!("{} parts, not {N}", parts.len()),
    }
}
