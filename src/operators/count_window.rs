//! Count windows: per key, windows of the last `size` records, emitted every `every` records —
//! tumbling (`every == size`: each N records per key) or sliding (`every == 1`: the last N at
//! each new record).
//!
//! "The last N" needs an order, and arrival order differs between runs and worker counts, so
//! records are taken in **event-time order**: on the keyed core, a key's records wait until the
//! frontier passes their stamp, and each stamp's records are counted in `(event time, record)`
//! order — deterministic for any split. A record that arrived late at its source (stamped after
//! its event time) cannot be placed in that order any more: it is a dead letter (reason `late`).
//! A result is stamped at the event time of the record that completed it.
//!
//! State: per key, the last `size` values and a counter ([`CountState`]); records waiting for
//! the frontier are bounded by the watermark delay.

use super::aggregate::Aggregate;
use super::keyed::{Emit, KeyedLogic};
use super::spec::Fold;
use crate::deadletter::DeadLetter;
use crate::time::{is_late, EventTime};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
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

/// One key's count-window state: the last `size` (event time, value) pairs and the records
/// since the last result. Plain data that a checkpoint can write and a restore read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CountState<V> {
    /// The last values, oldest first.
    pub last: VecDeque<(EventTime, V)>,
    /// Records since the last result.
    pub since: usize,
}

impl<V> Default for CountState<V> {
    fn default() -> Self {
        CountState {
            last: VecDeque::new(),
            since: 0,
        }
    }
}

/// The results of a count-window operator and the dead letters of records that came too late.
pub type CountStreams<'s, K, O> = (
    StreamVec<'s, EventTime, CountResult<K, O>>,
    StreamVec<'s, EventTime, DeadLetter>,
);

/// Count windows as a [`KeyedLogic`].
pub struct CountLogic<R, F> {
    windows: CountWindows,
    fold: F,
    _records: std::marker::PhantomData<fn(R)>,
}

impl<R, F: Fold<R>> CountLogic<R, F> {
    /// Count `windows` over records folded as `fold` says (for
    /// [`KeyedCore::keyed`](super::KeyedCore::keyed) with restored state or snapshots).
    pub fn new(fold: F, windows: CountWindows) -> Self {
        CountLogic {
            windows: CountWindows {
                size: windows.size.max(1),
                every: windows.every.max(1),
            },
            fold,
            _records: std::marker::PhantomData,
        }
    }
}

type Agg<R, F> = <F as Fold<R>>::Agg;

impl<R, F> KeyedLogic for CountLogic<R, F>
where
    R: ExchangeData + Serialize + Ord,
    F: Fold<R>,
    <Agg<R, F> as Aggregate>::In: Clone + Serialize + DeserializeOwned,
{
    type Record = R;
    type Key = F::Key;
    type State = CountState<<Agg<R, F> as Aggregate>::In>;
    /// A stamp's records with their event times, ordered when applied.
    type Pending = Vec<(EventTime, R)>;
    type Output = CountResult<F::Key, <Agg<R, F> as Aggregate>::Out>;

    fn key(&self, record: &R) -> F::Key {
        self.fold.key(record)
    }

    fn too_late(&self, record: &R, stamp: EventTime) -> Option<String> {
        let t = self.fold.time(record);
        is_late(t, stamp).then(|| {
            format!("event time {t} arrived behind the watermark {stamp}: it cannot be placed in event-time order")
        })
    }

    fn stash(&self, pending: &mut Self::Pending, record: R) {
        pending.push((self.fold.time(&record), record));
    }

    fn apply(
        &self,
        key: &F::Key,
        state: &mut Self::State,
        mut pending: Self::Pending,
        out: &mut Emit<'_, Self::Output>,
    ) {
        let (CountWindows { size, every }, agg) = (self.windows, self.fold.agg());
        pending.sort();
        for (t, record) in pending {
            state.last.push_back((t, self.fold.value(&record)));
            if state.last.len() > size {
                state.last.pop_front();
            }
            state.since += 1;
            if state.since < every {
                continue;
            }
            state.since = 0;
            let mut acc = agg.empty();
            for (_, v) in &state.last {
                agg.add(&mut acc, v.clone());
            }
            let first = state.last.front().map_or(t, |(ft, _)| *ft);
            let (key, count, value) = (key.clone(), state.last.len(), agg.finish(&acc));
            out.give_at(
                t,
                CountResult {
                    key,
                    first,
                    last: t,
                    count,
                    value,
                },
            );
            if every == size {
                state.last.clear();
            }
        }
    }

    fn is_done(&self, _state: &Self::State) -> bool {
        // The last records of a key count towards its next window, however long it waits.
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::{by, Sum, Windowing};
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
                let spec = by("test.count_windows", |r: &(u64, u64, u64)| r.0, |r| r.1);
                let (r, _late) = scope
                    .input_from(&mut input)
                    .count_window_aggregate(spec.fold(|r| r.2, Sum), windows);
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
