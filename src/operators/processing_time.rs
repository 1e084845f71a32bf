//! Processing-time tumbling windows: records counted per key by the wall-clock instant they
//! reach the operator, in windows aligned to the epoch.
//!
//! A window fires when the wall clock passes its end (the operator schedules itself for that
//! instant), or at the end of input for the windows still open. Results depend on timing, not
//! only on the data: the same input gives the same per-key totals, split differently. Output is
//! stamped at the current input frontier (a processing-time result has no event time of its own).

use crate::time::EventTime;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

use super::window::Window;

fn wall_clock_ms() -> EventTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as EventTime)
        .unwrap_or(0)
}

/// Counting records per key in processing-time tumbling windows.
pub trait ProcessingTimeCount<'s, R> {
    /// Counts records per `key(r)` in wall-clock windows of `size` ms; emits
    /// `(window, key, count)` when each window's end has passed on the wall clock.
    fn processing_time_count<K>(
        self,
        name: &str,
        size: u64,
        key: impl Fn(&R) -> K + 'static,
    ) -> StreamVec<'s, EventTime, (Window, K, u64)>
    where
        K: ExchangeData + Hash + Eq + Clone;
}

impl<'s, R: ExchangeData> ProcessingTimeCount<'s, R> for StreamVec<'s, EventTime, R> {
    fn processing_time_count<K>(
        self,
        name: &str,
        size: u64,
        key: impl Fn(&R) -> K + 'static,
    ) -> StreamVec<'s, EventTime, (Window, K, u64)>
    where
        K: ExchangeData + Hash + Eq + Clone,
    {
        crate::checkpoint::not_checkpointable(name, "processing-time windows cannot be replayed");
        let key = std::rc::Rc::new(key);
        let route = std::rc::Rc::clone(&key);
        let pact = Exchange::new(move |r: &R| super::keyed::route_hash(&route(r)));
        let scope = self.scope();
        self.unary_frontier::<CapacityContainerBuilder<Vec<_>>, _, _, _>(
            pact,
            name,
            move |cap, info| {
                let activator = scope.activator_for(info.address);
                let mut held = Some(cap);
                let mut open: BTreeMap<EventTime, HashMap<K, u64>> = BTreeMap::new();
                move |(input, frontier), output| {
                    let now = wall_clock_ms();
                    let start = now - now % size;
                    input.for_each(|_stamp, batch| {
                        let counts = open.entry(start).or_default();
                        for r in batch.drain(..) {
                            *counts.entry(key(&r)).or_default() += 1;
                        }
                    });
                    let Some(cap) = held.as_mut() else {
                        return;
                    };
                    let done = frontier.is_empty();
                    while let Some(entry) = open.first_entry() {
                        let window_start = *entry.key();
                        if window_start + size > now && !done {
                            break;
                        }
                        let window = Window {
                            start: window_start,
                            end: window_start + size,
                        };
                        output
                            .session(&*cap)
                            .give_iterator(entry.remove().into_iter().map(|(k, n)| (window, k, n)));
                    }
                    match frontier.frontier().first() {
                        None => held = None,
                        Some(&f) => {
                            if f > *cap.time() {
                                cap.downgrade(&f);
                            }
                            if let Some(&window_start) = open.keys().next() {
                                let wait = (window_start + size).saturating_sub(now);
                                activator.activate_after(Duration::from_millis(wait.max(1)));
                            }
                        }
                    }
                }
            },
        )
    }
}
