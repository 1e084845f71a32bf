//! Gathering everything that belongs to one window on one worker, then deciding on it once.
//!
//! [`GatherWindows::gather_windows`] routes each record to the worker of its window (by the
//! window's end), keeps the records of each window until the frontier passes the window's end —
//! every record stamped at or before it has arrived — and then hands them all to `decide`, whose
//! output is stamped at the window's end. It is the second stage of queries that compare across
//! keys within a window: "the auctions with the most bids" (q5), "the bids at the window's
//! highest price" (q7).
//!
//! Its state is the map of pending windows; a window's records are dropped once decided.

use crate::time::EventTime;
use std::collections::BTreeMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// Gathers records by window and decides on each window once it is complete.
pub trait GatherWindows<'s, R> {
    /// `end(r)` names the window of `r` by its end; records must be stamped at or before it.
    /// `decide(end, records)` runs once per window after the frontier passes `end`.
    fn gather_windows<O, I>(
        self,
        name: &str,
        end: impl Fn(&R) -> EventTime + 'static,
        decide: impl FnMut(EventTime, Vec<R>) -> I + 'static,
    ) -> StreamVec<'s, EventTime, O>
    where
        O: 'static,
        I: IntoIterator<Item = O>;
}

impl<'s, R: ExchangeData> GatherWindows<'s, R> for StreamVec<'s, EventTime, R> {
    fn gather_windows<O, I>(
        self,
        name: &str,
        end: impl Fn(&R) -> EventTime + 'static,
        mut decide: impl FnMut(EventTime, Vec<R>) -> I + 'static,
    ) -> StreamVec<'s, EventTime, O>
    where
        O: 'static,
        I: IntoIterator<Item = O>,
    {
        let end = std::rc::Rc::new(end);
        let route = std::rc::Rc::clone(&end);
        let pact = Exchange::new(move |r: &R| {
            // Spread windows over workers by their end (a multiplicative hash of it).
            route(r).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
        });
        self.unary_frontier::<CapacityContainerBuilder<Vec<O>>, _, _, _>(
            pact,
            name,
            move |cap, _info| {
                let mut held = Some(cap);
                let mut pending: BTreeMap<EventTime, Vec<R>> = BTreeMap::new();
                move |(input, frontier), output| {
                    input.for_each(|_stamp, batch| {
                        for r in batch.drain(..) {
                            pending.entry(end(&r)).or_default().push(r);
                        }
                    });
                    let Some(cap) = held.as_mut() else {
                        return;
                    };
                    while let Some(entry) = pending.first_entry() {
                        let window_end = *entry.key();
                        if frontier.less_equal(&window_end) {
                            break;
                        }
                        let records = entry.remove();
                        let at = cap.delayed(&window_end.max(*cap.time()));
                        output
                            .session(&at)
                            .give_iterator(decide(window_end, records).into_iter());
                    }
                    match frontier.frontier().first() {
                        None => held = None,
                        Some(&f) => {
                            let next = pending.keys().next().map_or(f, |&e| e.min(f));
                            if next > *cap.time() {
                                cap.downgrade(&next);
                            }
                        }
                    }
                }
            },
        )
    }
}
