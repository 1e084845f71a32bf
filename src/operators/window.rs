//! Tumbling and sliding (hopping) event-time windows, fired by the frontier.
//!
//! [`WindowAggregate::window_aggregate`] folds records into per-key accumulators of **panes**
//! (intervals of `gcd(size, slide)` ms). A sliding window of `size` every `slide` merges its
//! `size / pane` panes when it fires, instead of copying each record into every window it belongs
//! to (Flink's per-window copies are what make its sliding windows slow). A tumbling window is a
//! sliding window whose slide is its size: one pane per window.
//!
//! A window `[start, end)` fires once, when the input frontier passes `end` (every record with an
//! event time below `end` that was not late has arrived), and its results are stamped at `end`
//! with `diff = +1`. With an allowed lateness `L`, a window's panes are kept until the frontier
//! passes `end + L`; a late record for a fired window in that time updates the pane and emits a
//! correction: the old result with `diff = -1` and the new one with `+1`. After that, a late record
//! is a dead letter (reason `late`). Panes are dropped as soon as no window can change: state is
//! bounded by the windows in flight, not by the number of windows seen.
//!
//! The operator's whole state is the [`PaneState`] value (panes, fired-up-to mark): no hidden
//! state in closures, so a checkpoint can capture it at a frontier.

use super::aggregate::Aggregate;
use super::keyed::{advance, keyed_ports, late_letter, KeyedPorts};
use crate::deadletter::DeadLetter;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// An event-time interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// Inclusive start, epoch ms.
    pub start: EventTime,
    /// Exclusive end, epoch ms.
    pub end: EventTime,
}

/// A window's size and slide (equal for tumbling windows). Windows are aligned to the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Window length, ms.
    pub size: u64,
    /// Distance between window starts, ms.
    pub slide: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Windows {
    /// Tumbling windows of `size` ms.
    pub fn tumbling(size: u64) -> Self {
        Windows { size, slide: size }
    }

    /// Windows of `size` ms starting every `slide` ms.
    pub fn sliding(size: u64, slide: u64) -> Self {
        Windows { size, slide }
    }

    /// The pane length: the largest interval that tiles both the size and the slide.
    pub fn pane(&self) -> u64 {
        gcd(self.size, self.slide).max(1)
    }

    /// The start of the pane holding event time `t`.
    pub fn pane_of(&self, t: EventTime) -> EventTime {
        t - t % self.pane()
    }

    /// Every window containing `t`, earliest first.
    pub fn windows_of(&self, t: EventTime) -> impl Iterator<Item = Window> + '_ {
        // Starts are multiples of the slide in (t − size, t].
        let last_start = t - t % self.slide;
        let first_start = (t + 1).saturating_sub(self.size).div_ceil(self.slide) * self.slide;
        (first_start..=last_start)
            .step_by(self.slide as usize)
            .map(|start| Window {
                start,
                end: start + self.size,
            })
    }

    /// The end of the last window containing the pane starting at `pane`.
    fn last_end_of_pane(&self, pane: EventTime) -> EventTime {
        pane - pane % self.slide + self.size
    }

    /// The end of the first window containing the pane starting at `pane`.
    fn first_end_of_pane(&self, pane: EventTime) -> EventTime {
        (pane + self.pane()).div_ceil(self.slide) * self.slide
    }
}

/// One window result: the window, the key, the aggregate, and its multiplicity change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K, O> {
    /// The window.
    pub window: Window,
    /// The key.
    pub key: K,
    /// The aggregate.
    pub value: O,
    /// +1 for a result, -1 for the retraction of an earlier one.
    pub diff: i64,
}

/// The complete state of one worker's window operator: plain data that a checkpoint can
/// serialise at a frontier and restore.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash + Eq, A: Serialize",
    deserialize = "K: Deserialize<'de> + Hash + Eq, A: Deserialize<'de>"
))]
pub struct PaneState<K, A> {
    /// Per pane start, per key, the accumulator.
    pub panes: BTreeMap<EventTime, HashMap<K, A>>,
    /// Every window with `end <= fired_upto` has fired.
    pub fired_upto: EventTime,
}

impl<K, A> Default for PaneState<K, A> {
    fn default() -> Self {
        PaneState {
            panes: BTreeMap::new(),
            fired_upto: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, Acc: Clone> PaneState<K, Acc> {
    /// The aggregate of `key` over `window`, if any pane of it holds the key.
    fn merged<G>(&self, agg: &G, window: Window, key: &K) -> Option<Acc>
    where
        G: Aggregate<Acc = Acc>,
    {
        let mut out: Option<Acc> = None;
        for (_, keys) in self.panes.range(window.start..window.end) {
            if let Some(acc) = keys.get(key) {
                match &mut out {
                    Some(total) => agg.merge(total, acc),
                    None => out = Some(acc.clone()),
                }
            }
        }
        out
    }

    /// The earliest window end after `fired_upto` whose window holds a pane, if any.
    fn next_end(&self, windows: Windows) -> Option<EventTime> {
        let after =
            (self.fired_upto - self.fired_upto % windows.slide).checked_add(windows.slide)?;
        let lowest_useful = after.saturating_sub(windows.size);
        let (&pane, _) = self.panes.range(lowest_useful..).next()?;
        Some(windows.first_end_of_pane(pane).max(after))
    }

    /// Fires every window with `fired_upto < end <= upto` (calling `emit` once per window with
    /// every key's accumulator), then drops the panes no window can use any more (after
    /// `lateness`).
    fn fire<G>(
        &mut self,
        agg: &G,
        windows: Windows,
        lateness: u64,
        upto: EventTime,
        mut emit: impl FnMut(Window, HashMap<K, Acc>),
    ) where
        G: Aggregate<Acc = Acc>,
    {
        while let Some(end) = self.next_end(windows).filter(|e| *e <= upto) {
            let window = Window {
                start: end.saturating_sub(windows.size),
                end,
            };
            let mut merged: HashMap<K, Acc> = HashMap::new();
            for (_, keys) in self.panes.range(window.start..window.end) {
                for (k, acc) in keys {
                    match merged.get_mut(k) {
                        Some(total) => agg.merge(total, acc),
                        None => {
                            merged.insert(k.clone(), acc.clone());
                        }
                    }
                }
            }
            emit(window, merged);
            self.fired_upto = end;
            self.evict(windows, lateness);
        }
        self.fired_upto = self.fired_upto.max(upto);
        self.evict(windows, lateness);
    }

    /// Drops panes whose every window fired more than `lateness` ago.
    fn evict(&mut self, windows: Windows, lateness: u64) {
        while let Some((&pane, _)) = self.panes.range(..).next() {
            if windows.last_end_of_pane(pane).saturating_add(lateness) <= self.fired_upto {
                self.panes.remove(&pane);
            } else {
                break;
            }
        }
    }
}

/// The results of a window operator and the dead letters of records that came too late.
pub type WindowStreams<'s, K, O> = (
    StreamVec<'s, EventTime, WindowResult<K, O>>,
    StreamVec<'s, EventTime, DeadLetter>,
);

/// Windowed aggregation of a stream of records.
pub trait WindowAggregate<'s, R> {
    /// Folds `value(r)` into per-key (`key(r)`) windows by the event time `time(r)`; returns the
    /// window results and the dead letters of records that arrived too late.
    #[allow(clippy::too_many_arguments)]
    fn window_aggregate<K, G>(
        self,
        name: &str,
        windows: Windows,
        lateness: u64,
        key: impl Fn(&R) -> K + 'static,
        time: impl Fn(&R) -> EventTime + 'static,
        value: impl Fn(&R) -> G::In + 'static,
        agg: G,
    ) -> WindowStreams<'s, K, G::Out>
    where
        K: ExchangeData + Hash + Eq + Clone,
        G: Aggregate;
}

impl<'s, R> WindowAggregate<'s, R> for StreamVec<'s, EventTime, R>
where
    R: ExchangeData + Serialize,
{
    fn window_aggregate<K, G>(
        self,
        name: &str,
        windows: Windows,
        lateness: u64,
        key: impl Fn(&R) -> K + 'static,
        time: impl Fn(&R) -> EventTime + 'static,
        value: impl Fn(&R) -> G::In + 'static,
        agg: G,
    ) -> WindowStreams<'s, K, G::Out>
    where
        K: ExchangeData + Hash + Eq + Clone,
        G: Aggregate,
    {
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
            let mut state: PaneState<K, G::Acc> = PaneState::default();
            move |frontiers| {
                let frontier = frontiers[0].frontier().first().copied();
                let (Some(cap), Some(lcap)) = (held.as_mut(), late_cap.as_mut()) else {
                    // Inputs after the end: nothing can arrive (the frontier is empty).
                    input.for_each(|_, _| {});
                    return;
                };
                let mut out = results_out.activate();
                let mut late_handle = late_out.activate();
                input.for_each(|stamp, batch| {
                    // A record is too late when its last window ended `lateness` before its stamp
                    // (the source's watermark when it was read) or before what has fired here:
                    // decided by the stamp, it does not depend on when this operator runs.
                    let stamp = stamp.least().copied().unwrap_or(0);
                    for r in batch.drain(..) {
                        let t = time(&r);
                        let k = key(&r);
                        let pane = windows.pane_of(t);
                        let last_end = windows.last_end_of_pane(pane);
                        if last_end.saturating_add(lateness) <= state.fired_upto.max(stamp) {
                            let detail = format!(
                                "event time {t} is behind the window operator's frontier {} (allowed lateness {lateness} ms)",
                                state.fired_upto.max(stamp)
                            );
                            late_handle.session(&*lcap).give(late_letter(&operator, &r, detail));
                            continue;
                        }
                        let fired: Vec<Window> = windows
                            .windows_of(t)
                            .filter(|w| w.end <= state.fired_upto)
                            .collect();
                        let before: Vec<Option<G::Acc>> =
                            fired.iter().map(|w| state.merged(&agg, *w, &k)).collect();
                        agg.add(
                            state.panes.entry(pane).or_default().entry(k.clone()).or_insert_with(|| agg.empty()),
                            value(&r),
                        );
                        // Corrections for windows that already fired (within the lateness).
                        if fired.is_empty() {
                            continue;
                        }
                        let mut session = out.session(&*cap);
                        for (w, old) in fired.iter().zip(before) {
                            if let Some(old) = old {
                                session.give(WindowResult {
                                    window: *w,
                                    key: k.clone(),
                                    value: agg.finish(&old),
                                    diff: -1,
                                });
                            }
                            if let Some(new) = state.merged(&agg, *w, &k) {
                                session.give(WindowResult {
                                    window: *w,
                                    key: k.clone(),
                                    value: agg.finish(&new),
                                    diff: 1,
                                });
                            }
                        }
                    }
                });

                let upto = frontier.unwrap_or(EventTime::MAX);
                if upto > state.fired_upto {
                    state.fire(&agg, windows, lateness, upto, |window, merged| {
                        // One message per window: a session per result would allocate a whole
                        // output buffer for each.
                        let at = cap.delayed(&window.end.max(*cap.time()));
                        out.session(&at).give_iterator(merged.into_iter().map(|(k, acc)| WindowResult {
                            window,
                            key: k,
                            value: agg.finish(&acc),
                            diff: 1,
                        }));
                    });
                }
                let next = state.next_end(windows);
                advance(frontier, next, &mut held, &mut late_cap);
            }
        });
        (results, late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::Count;
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::capture::Event;
    use timely::dataflow::operators::{Capture, Input};
    use timely::dataflow::InputHandleVec;

    type Results = (Vec<WindowResult<u64, u64>>, Vec<DeadLetter>);

    fn drain<D>(rx: std::sync::mpsc::Receiver<Event<u64, Vec<D>>>) -> Vec<D> {
        rx.try_iter()
            .flat_map(|e| match e {
                Event::Messages(_, v) => v,
                Event::Progress(_) => Vec::new(),
            })
            .collect()
    }

    /// Counts `(key, event time)` records arriving at the given stamps (nondecreasing) per key
    /// and window, on `workers` threads; returns every result and dead letter.
    fn count_windows(
        records: &[(u64, (u64, u64))],
        windows: Windows,
        lateness: u64,
        workers: usize,
    ) -> Results {
        let records = records.to_vec();
        let out = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let sink = Arc::clone(&out);
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut input = InputHandleVec::<u64, (u64, u64)>::new();
            let (results, late) = worker.dataflow::<u64, _, _>(|scope| {
                let (r, l) = scope.input_from(&mut input).window_aggregate(
                    "test.count",
                    windows,
                    lateness,
                    |r: &(u64, u64)| r.0,
                    |r| r.1,
                    |_| (),
                    Count,
                );
                (r.capture(), l.capture())
            });
            if worker.index() == 0 {
                for (stamp, r) in &records {
                    input.advance_to(*stamp);
                    input.send(*r);
                    worker.step();
                }
            }
            drop(input);
            while worker.step_or_park(None) {}
            let mut guard = sink.lock().unwrap();
            guard.0.extend(drain(results));
            guard.1.extend(drain(late));
        })
        .unwrap();
        let mut got = std::mem::take(&mut *out.lock().unwrap());
        got.0.sort_by_key(|r| (r.window, r.key, r.diff, r.value));
        got
    }

    fn result(start: u64, end: u64, key: u64, value: u64, diff: i64) -> WindowResult<u64, u64> {
        WindowResult {
            window: Window { start, end },
            key,
            value,
            diff,
        }
    }

    #[test]
    fn tumbling_windows_respect_boundaries_on_one_and_two_workers() {
        // Key 1 at 0 and 9999 (first window), key 1 at 10000 (second), nothing in [20000, 30000),
        // key 2 at 30000. Stamps equal event times.
        let records = [
            (0, (1, 0)),
            (9_999, (1, 9_999)),
            (10_000, (1, 10_000)),
            (30_000, (2, 30_000)),
        ];
        for workers in [1, 2] {
            let (results, late) = count_windows(&records, Windows::tumbling(10_000), 0, workers);
            assert_eq!(
                results,
                vec![
                    result(0, 10_000, 1, 2, 1),
                    result(10_000, 20_000, 1, 1, 1),
                    result(30_000, 40_000, 2, 1, 1),
                ],
                "-w {workers}"
            );
            assert!(late.is_empty());
        }
    }

    #[test]
    fn sliding_windows_match_brute_force() {
        let windows = Windows::sliding(10_000, 2_000);
        let mut records = Vec::new();
        for i in 0..400u64 {
            let t = 1_000_000 + i * 137 % 50_000;
            records.push((t, (i % 3, t)));
        }
        records.sort();
        let mut want = std::collections::BTreeMap::new();
        for (_, (k, t)) in &records {
            for w in windows.windows_of(*t) {
                *want.entry((w, *k)).or_insert(0u64) += 1;
            }
        }
        let mut want: Vec<_> = want
            .into_iter()
            .map(|((w, k), n)| result(w.start, w.end, k, n, 1))
            .collect();
        want.sort_by_key(|r| (r.window, r.key, r.diff, r.value));
        for workers in [1, 2] {
            let (results, _) = count_windows(&records, windows, 0, workers);
            assert_eq!(results, want, "-w {workers}");
        }
    }

    #[test]
    fn late_records_correct_within_lateness_and_dead_letter_after() {
        // Window [0, 10000) fires when the stamp reaches 10000. A record for it stamped 12000
        // is within a 5000 ms lateness: retract 1, insert 2. One stamped 16000 is past it.
        let records = [
            (0, (1, 0)),
            (10_000, (1, 10_000)),
            (12_000, (1, 5_000)),
            (16_000, (1, 6_000)),
        ];
        let (results, late) = count_windows(&records, Windows::tumbling(10_000), 5_000, 1);
        // Whether the window fired before the late record arrived depends on scheduling; the
        // consolidated results do not (a correction is -1 for 1, +1 for 2).
        let mut net: std::collections::BTreeMap<(Window, u64, u64), i64> = Default::default();
        for r in &results {
            *net.entry((r.window, r.key, r.value)).or_default() += r.diff;
        }
        net.retain(|_, d| *d != 0);
        let w = |s, e| Window { start: s, end: e };
        assert_eq!(
            net.into_iter().collect::<Vec<_>>(),
            vec![((w(0, 10_000), 1, 2), 1), ((w(10_000, 20_000), 1, 1), 1)]
        );
        assert!(
            results.iter().all(|r| r.diff == 1 || r.value == 1),
            "{results:?}"
        );
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].reason, crate::deadletter::Reason::Late);
        assert_eq!(late[0].raw, "[1,6000]");
    }

    #[test]
    fn state_survives_a_round_trip_through_serialisation() {
        let windows = Windows::sliding(10_000, 2_000);
        let mut state: PaneState<u64, u64> = PaneState::default();
        for t in (0..30_000).step_by(700) {
            Count.add(
                state
                    .panes
                    .entry(windows.pane_of(t))
                    .or_default()
                    .entry(t % 3)
                    .or_insert(0),
                (),
            );
        }
        state.fire(&Count, windows, 0, 12_000, |_, _| ());
        let mut restored: PaneState<u64, u64> =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        let collect = |s: &mut PaneState<u64, u64>| {
            let mut out = Vec::new();
            s.fire(&Count, windows, 0, u64::MAX, |w, keys| {
                let mut keys: Vec<_> = keys.into_iter().collect();
                keys.sort();
                out.push((w, keys));
            });
            out
        };
        assert_eq!(collect(&mut restored), collect(&mut state));
    }

    #[test]
    fn state_is_released_as_windows_close() {
        let windows = Windows::sliding(10_000, 2_000);
        let agg = Count;
        let mut state: PaneState<u64, u64> = PaneState::default();
        let mut emitted = 0;
        let mut most_panes = 0;
        for second in 0..10_000u64 {
            let t = second * 1000;
            agg.add(
                state
                    .panes
                    .entry(windows.pane_of(t))
                    .or_default()
                    .entry(second % 7)
                    .or_insert(0),
                (),
            );
            state.fire(&agg, windows, 0, t.saturating_sub(4000), |_, keys| {
                emitted += keys.len()
            });
            most_panes = most_panes.max(state.panes.len());
        }
        state.fire(&agg, windows, 0, u64::MAX, |_, keys| emitted += keys.len());
        assert!(
            most_panes <= 8,
            "panes in flight stay bounded: {most_panes}"
        );
        assert!(state.panes.is_empty());
        assert!(emitted > 10_000);
    }

    #[test]
    fn windows_of_a_time() {
        let w = Windows::sliding(10_000, 2_000);
        let got: Vec<(u64, u64)> = w.windows_of(10_500).map(|w| (w.start, w.end)).collect();
        assert_eq!(
            got,
            vec![
                (2000, 12000),
                (4000, 14000),
                (6000, 16000),
                (8000, 18000),
                (10000, 20000)
            ]
        );
        let t = Windows::tumbling(10_000);
        assert_eq!(
            t.windows_of(9_999).collect::<Vec<_>>(),
            vec![Window {
                start: 0,
                end: 10_000
            }]
        );
        assert_eq!(t.windows_of(10_000).next().unwrap().start, 10_000);
        assert_eq!(w.windows_of(1_000).count(), 1);
        assert_eq!(w.pane(), 2000);
        assert_eq!(Windows::sliding(10_000, 4_000).pane(), 2000);
    }
}
