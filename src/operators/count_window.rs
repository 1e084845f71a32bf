//! Count windows: per key, windows of the last `size` records, emitted every `every` records —
//! tumbling (`every == size`: each N records per key) or sliding (`every == 1`: the last N at
//! each new record).
//!
//! "The last N" needs an order, and arrival order differs between runs and worker counts, so
//! records are taken in **event-time order**: each is held until the frontier passes its event
//! time, then records are counted in `(event time, record)` order — deterministic for any split.
//! A record whose event time the frontier had already passed when it arrived cannot be placed
//! in that order any more: it is a dead letter (reason `late`). A result is stamped at the event
//! time of the record that completed it.
//!
//! State: records waiting for the frontier (bounded by the watermark delay), and per key the
//! last `size` values and a counter.

use super::aggregate::Aggregate;
use super::keyed::{advance, keyed_ports, late_letter, KeyedPorts};
use crate::deadletter::DeadLetter;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// One count window's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountResult<K, O> {
    /// The key.
    pub key: K,
    /// Event time of the window's first and last record.
    pub first: EventTime,
    /// Event time of the record that completed the window.
    pub last: EventTime,
    /// Records in the window (`size`, or fewer at the start of a sliding key).
    pub count: usize,
    /// The aggregate over the window's records.
    pub value: O,
}

/// The shape of count windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountWindows {
    /// Records per window.
    pub size: usize,
    /// Emit after this many new records of a key.
    pub every: usize,
}

impl CountWindows {
    /// Every `n` records per key, disjoint.
    pub fn tumbling(n: usize) -> Self {
        CountWindows { size: n, every: n }
    }

    /// The last `n` records per key, at every record.
    pub fn last(n: usize) -> Self {
        CountWindows { size: n, every: 1 }
    }
}

/// The complete state of one worker's count-window operator: plain data that a checkpoint can
/// serialise at a frontier and restore.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash + Eq, R: Serialize, V: Serialize",
    deserialize = "K: Deserialize<'de> + Hash + Eq, R: Deserialize<'de>, V: Deserialize<'de>"
))]
pub struct CountState<K, R, V> {
    /// Records waiting for the frontier, by event time.
    pub waiting: BTreeMap<EventTime, Vec<R>>,
    /// Per key: the last `size` (event time, value) pairs and records since the last emission.
    pub keys: HashMap<K, (VecDeque<(EventTime, V)>, usize)>,
    /// Every record with an event time below this has been counted.
    pub released: EventTime,
}

impl<K, R, V> Default for CountState<K, R, V> {
    fn default() -> Self {
        CountState {
            waiting: BTreeMap::new(),
            keys: HashMap::new(),
            released: 0,
        }
    }
}

/// The results of a count-window operator and the dead letters of records that came too late.
pub type CountStreams<'s, K, O> = (
    StreamVec<'s, EventTime, CountResult<K, O>>,
    StreamVec<'s, EventTime, DeadLetter>,
);

/// Count-window aggregation of a stream of records.
pub trait CountWindowAggregate<'s, R> {
    /// Folds `value(r)` of the last `windows.size` records per `key(r)` (in event-time order)
    /// every `windows.every` records; returns the results and the dead letters of records that
    /// came too late to be ordered.
    #[allow(clippy::too_many_arguments)]
    fn count_window_aggregate<K, G>(
        self,
        name: &str,
        windows: CountWindows,
        key: impl Fn(&R) -> K + 'static,
        time: impl Fn(&R) -> EventTime + 'static,
        value: impl Fn(&R) -> G::In + 'static,
        agg: G,
    ) -> CountStreams<'s, K, G::Out>
    where
        K: ExchangeData + Hash + Eq + Clone,
        G: Aggregate,
        G::In: Clone;
}

impl<'s, R> CountWindowAggregate<'s, R> for StreamVec<'s, EventTime, R>
where
    R: ExchangeData + Serialize + Ord,
{
    fn count_window_aggregate<K, G>(
        self,
        name: &str,
        windows: CountWindows,
        key: impl Fn(&R) -> K + 'static,
        time: impl Fn(&R) -> EventTime + 'static,
        value: impl Fn(&R) -> G::In + 'static,
        agg: G,
    ) -> CountStreams<'s, K, G::Out>
    where
        K: ExchangeData + Hash + Eq + Clone,
        G: Aggregate,
        G::In: Clone,
    {
        let size = windows.size.max(1);
        let every = windows.every.max(1);
        let key = std::rc::Rc::new(key);
        let KeyedPorts {
            builder,
            mut input,
            mut results_out,
            mut late_out,
            results,
            late,
        } = keyed_ports(self, name, std::rc::Rc::clone(&key));
        let operator = name.to_owned();

        builder.build(move |mut caps| {
            let mut late_cap = caps.pop();
            let mut held = caps.pop();
            let mut state: CountState<K, R, G::In> = CountState::default();
            move |frontiers| {
                let frontier = frontiers[0].frontier().first().copied();
                let (Some(cap), Some(lcap)) = (held.as_mut(), late_cap.as_mut()) else {
                    input.for_each(|_, _| {});
                    return;
                };
                let mut late_handle = late_out.activate();
                input.for_each(|_stamp, batch| {
                    for r in batch.drain(..) {
                        let t = time(&r);
                        if t < state.released {
                            let detail = format!(
                                "event time {t} is behind the count window's ordering frontier {}",
                                state.released
                            );
                            late_handle
                                .session(&*lcap)
                                .give(late_letter(&operator, &r, detail));
                        } else {
                            state.waiting.entry(t).or_default().push(r);
                        }
                    }
                });
                let upto = frontier.unwrap_or(EventTime::MAX);
                let mut out = results_out.activate();
                while let Some(entry) = state.waiting.first_entry() {
                    let t = *entry.key();
                    if t >= upto {
                        break;
                    }
                    let mut records = entry.remove();
                    records.sort();
                    let at = cap.delayed(&t.max(*cap.time()));
                    let mut session = out.session(&at);
                    for r in records {
                        let k = key(&r);
                        let (last, since) = state.keys.entry(k.clone()).or_default();
                        last.push_back((t, value(&r)));
                        if last.len() > size {
                            last.pop_front();
                        }
                        *since += 1;
                        if *since == every {
                            *since = 0;
                            let mut acc = agg.empty();
                            for (_, v) in last.iter() {
                                agg.add(&mut acc, v.clone());
                            }
                            session.give(CountResult {
                                key: k,
                                first: last.front().map_or(t, |(ft, _)| *ft),
                                last: t,
                                count: last.len(),
                                value: agg.finish(&acc),
                            });
                            if every == size {
                                last.clear();
                            }
                        }
                    }
                }
                state.released = state.released.max(upto);
                let next = state.waiting.keys().next().copied();
                advance(frontier, next, &mut held, &mut late_cap);
            }
        });
        (results, late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::Sum;
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::capture::Event;
    use timely::dataflow::operators::{Capture, Input};
    use timely::dataflow::InputHandleVec;

    /// Sums of `(key, time, value)` records in count windows, on `workers` threads; records are
    /// sent at their event times but in the given (shuffled) order within each stamp.
    fn run(
        records: &[(u64, u64, u64)],
        windows: CountWindows,
        workers: usize,
    ) -> Vec<(u64, u64, usize, u128)> {
        let records = records.to_vec();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&out);
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut input = InputHandleVec::<u64, (u64, u64, u64)>::new();
            let results = worker.dataflow::<u64, _, _>(|scope| {
                let (r, _late) = scope.input_from(&mut input).count_window_aggregate(
                    "test.count_windows",
                    windows,
                    |r: &(u64, u64, u64)| r.0,
                    |r| r.1,
                    |r| r.2,
                    Sum,
                );
                r.capture()
            });
            if worker.index() == 0 {
                for r in &records {
                    input.send(*r);
                }
            }
            drop(input);
            while worker.step_or_park(None) {}
            let got: Vec<_> = results
                .try_iter()
                .flat_map(|e| match e {
                    Event::Messages(_, v) => v,
                    Event::Progress(_) => Vec::new(),
                })
                .map(|r| (r.key, r.last, r.count, r.value))
                .collect();
            sink.lock().unwrap().extend(got);
        })
        .unwrap();
        let mut got = std::mem::take(&mut *out.lock().unwrap());
        got.sort();
        got
    }

    #[test]
    fn tumbling_and_last_n_follow_event_time_order() {
        // Key 1 at times 5, 1, 3, 2, 4 (arrival order shuffled) with values 50, 10, 30, 20, 40;
        // key 2 once.
        let records = [
            (1, 5, 50),
            (1, 1, 10),
            (2, 7, 7),
            (1, 3, 30),
            (1, 2, 20),
            (1, 4, 40),
        ];
        for workers in [1, 2] {
            // Every 2 records of key 1: {10, 20} at t=2, {30, 40} at t=4; 50 and key 2 never fill.
            assert_eq!(
                run(&records, CountWindows::tumbling(2), workers),
                vec![(1, 2, 2, 30), (1, 4, 2, 70)]
            );
            // The last 3 at each record.
            assert_eq!(
                run(&records, CountWindows::last(3), workers),
                vec![
                    (1, 1, 1, 10),
                    (1, 2, 2, 30),
                    (1, 3, 3, 60),
                    (1, 4, 3, 90),
                    (1, 5, 3, 120),
                    (2, 7, 1, 7)
                ]
            );
        }
    }
}
