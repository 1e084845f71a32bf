//! Incremental state on differential dataflow: turning event streams into collections of
//! updates (`(record, time, diff)`), and update streams back into output rows with a `diff`.
//!
//! Queries whose results change as data arrives (joins without windows, aggregates over
//! everything so far, top-k) keep their state in differential arrangements, which compact as the
//! frontier advances and are held only by the operators that use them (no trace handle is
//! kept outside the dataflow, so nothing stops compaction). Each record enters at its stamp (at
//! most its event time, never below the watermark), so records do not sit far ahead of their
//! message time.

use crate::time::EventTime;
use differential_dataflow::{AsCollection, VecCollection};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

/// The diff type of Sluice's collections.
pub type Diff = isize;

/// A collection of records at event-time stamps.
pub type Updates<'s, D> = VecCollection<'s, EventTime, D, Diff>;

/// Streams of records as differential collections.
pub trait ToUpdates<'s, D> {
    /// Each record becomes an insertion (`+1`) at the time of its message.
    fn to_updates(self, name: &str) -> Updates<'s, D>;
}

impl<'s, D: Clone + 'static> ToUpdates<'s, D> for StreamVec<'s, EventTime, D> {
    fn to_updates(self, name: &str) -> Updates<'s, D> {
        crate::checkpoint::not_checkpointable(name, "a differential collection");
        self.unary::<CapacityContainerBuilder<Vec<(D, EventTime, Diff)>>, _, _, _>(
            Pipeline,
            name,
            |_cap, _info| {
                move |input, output| {
                    input.for_each(|cap, batch| {
                        let Some(&time) = cap.least() else {
                            return;
                        };
                        let mut session = output.session(&cap);
                        for record in batch.drain(..) {
                            session.give((record, time, 1));
                        }
                    });
                }
            },
        )
        .as_collection()
    }
}

/// Update streams as output rows carrying their `diff`.
pub trait ToRows<'s, D> {
    /// `make(record, diff)` for every update.
    fn to_rows<R: 'static>(
        self,
        make: impl Fn(D, i64) -> R + 'static,
    ) -> StreamVec<'s, EventTime, R>;
}

impl<'s, D: Clone + 'static> ToRows<'s, D> for Updates<'s, D> {
    fn to_rows<R: 'static>(
        self,
        make: impl Fn(D, i64) -> R + 'static,
    ) -> StreamVec<'s, EventTime, R> {
        use timely::dataflow::operators::vec::Map;
        self.inner.map(move |(d, _t, r)| make(d, r as i64))
    }
}

/// Holding updates back until a time named by their data.
pub trait DelayUntil<'s, D> {
    /// Moves each update to `max(its time, until(record))`: e.g. an auction's result to the
    /// instant it closes, so that all of its changes before then consolidate into one.
    fn delay_until(self, until: impl Fn(&D) -> EventTime + 'static) -> Updates<'s, D>;
}

impl<'s, D: Clone + 'static> DelayUntil<'s, D> for Updates<'s, D> {
    fn delay_until(self, until: impl Fn(&D) -> EventTime + 'static) -> Updates<'s, D> {
        use timely::dataflow::operators::vec::Map;
        self.inner
            .map_in_place(move |(d, t, _r)| *t = (*t).max(until(d)))
            .as_collection()
    }
}
