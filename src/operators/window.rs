//! Tumbling and sliding (hopping) event-time windows, fired by the frontier.
//!
//! [`Windowing::window_aggregate`](super::Windowing::window_aggregate) folds records into per-key accumulators of **panes**
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
//! It is a [`KeyedLogic`] on the keyed core: records of one key and stamp are folded into pane
//! accumulators while they wait for the frontier; each key's whole state is a [`PaneState`]
//! (its panes and how far its windows fired), plain data a checkpoint can write.

use super::aggregate::Aggregate;
use super::keyed::{Emit, KeyedLogic};
use super::spec::Fold;
use crate::deadletter::DeadLetter;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
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

/// A window's size and slide (equal for tumbling windows), aligned to the epoch, and how long
/// after a window fired a late record may still correct it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    /// Window length, ms.
    pub size: u64,
    /// Distance between window starts, ms.
    pub slide: u64,
    /// Allowed lateness, ms (0: a record for a fired window is a dead letter).
    pub lateness: u64,
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
        Windows::sliding(size, size)
    }

    /// Windows of `size` ms starting every `slide` ms.
    pub fn sliding(size: u64, slide: u64) -> Self {
        Windows {
            size,
            slide,
            lateness: 0,
        }
    }

    /// The same windows, correctable by late records for `lateness` ms after they fired.
    pub fn allowed_lateness(self, lateness: u64) -> Self {
        Windows { lateness, ..self }
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

/// One key's window state: its panes' accumulators, by pane start (ascending), and how far
/// its windows have fired. Plain data that a checkpoint can write and a restore read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaneState<A> {
    /// `(pane start, accumulator)`, ascending. One pane is kept inline (a tumbling window's
    /// key holds one most of the time): finding it costs no pointer to follow, and no cache
    /// miss of its own when keys are many.
    pub panes: SmallVec<[(EventTime, A); 1]>,
    /// Every window of this key with `end <= fired_upto` has fired.
    pub fired_upto: EventTime,
}

impl<A> Default for PaneState<A> {
    fn default() -> Self {
        PaneState {
            panes: SmallVec::new(),
            fired_upto: 0,
        }
    }
}

impl<A: Clone> PaneState<A> {
    /// The accumulator of `pane`, created empty if missing.
    fn pane_mut(&mut self, pane: EventTime, empty: impl FnOnce() -> A) -> &mut A {
        let at = match self.panes.binary_search_by_key(&pane, |(p, _)| *p) {
            Ok(at) => at,
            Err(at) => {
                self.panes.insert(at, (pane, empty()));
                at
            }
        };
        &mut self.panes[at].1
    }

    /// The aggregate over `window`, if any of its panes holds something.
    fn merged<G: Aggregate<Acc = A>>(&self, agg: &G, window: Window) -> Option<A> {
        let mut out: Option<A> = None;
        for (_, acc) in self
            .panes
            .iter()
            .filter(|(p, _)| (window.start..window.end).contains(p))
        {
            match &mut out {
                Some(total) => agg.merge(total, acc),
                None => out = Some(acc.clone()),
            }
        }
        out
    }

    /// The earliest window end after `fired_upto` whose window holds a pane, if any.
    fn next_end(&self, windows: Windows) -> Option<EventTime> {
        let after =
            (self.fired_upto - self.fired_upto % windows.slide).checked_add(windows.slide)?;
        let lowest_useful = after.saturating_sub(windows.size);
        let &(pane, _) = self.panes.iter().find(|(p, _)| *p >= lowest_useful)?;
        Some(windows.first_end_of_pane(pane).max(after))
    }

    /// Drops the panes whose every window fired at least `lateness` ago.
    fn evict(&mut self, windows: Windows, lateness: u64) {
        let keep_from = self
            .panes
            .iter()
            .position(|(p, _)| {
                windows.last_end_of_pane(*p).saturating_add(lateness) > self.fired_upto
            })
            .unwrap_or(self.panes.len());
        self.panes.drain(..keep_from);
    }
}

/// Windowed aggregation as a [`KeyedLogic`]: records fold into their key's pane accumulators;
/// a window fires (once) when the frontier passes its end; within the allowed lateness a record
/// for a fired window emits a correction (`-1` old, `+1` new); after it, a record is late.
pub struct WindowLogic<R, F> {
    windows: Windows,
    fold: F,
    _records: std::marker::PhantomData<fn(R)>,
}

impl<R, F: Fold<R>> WindowLogic<R, F> {
    /// `windows` over records folded as `fold` says (for [`KeyedCore::keyed`](super::KeyedCore::keyed) with restored
    /// state or snapshots).
    pub fn new(fold: F, windows: Windows) -> Self {
        WindowLogic {
            windows,
            fold,
            _records: std::marker::PhantomData,
        }
    }

    /// Adds records to `key`'s `pane` with `add`; windows of the pane that already fired get
    /// a correction (`-1` old, `+1` new).
    fn add_to_pane(
        &self,
        key: &F::Key,
        state: &mut PaneState<Acc<R, F>>,
        pane: EventTime,
        out: &mut Emit<'_, WindowResult<F::Key, Out<R, F>>>,
        add: impl FnOnce(&mut PaneState<Acc<R, F>>),
    ) {
        let (windows, agg) = (self.windows, self.fold.agg());
        let last_fired = state.fired_upto.min(windows.last_end_of_pane(pane));
        let fired: Vec<Window> = (windows.first_end_of_pane(pane)..=last_fired)
            .step_by(windows.slide as usize)
            .map(|end| Window {
                start: end - windows.size,
                end,
            })
            .collect();
        let before: Vec<_> = fired.iter().map(|w| state.merged(agg, *w)).collect();
        add(state);
        for (window, old) in fired.into_iter().zip(before) {
            let new = state.merged(agg, window);
            for (acc, diff) in [(old, -1), (new, 1)] {
                if let Some(acc) = acc {
                    out.give(WindowResult {
                        window,
                        key: key.clone(),
                        value: agg.finish(&acc),
                        diff,
                    });
                }
            }
        }
    }
}

type Acc<R, F> = <<F as Fold<R>>::Agg as Aggregate>::Acc;
type In<R, F> = <<F as Fold<R>>::Agg as Aggregate>::In;

/// One key's records of one stamp, waiting for the frontier: folded per pane, or (for an
/// aggregate with [`Aggregate::STASH_VALUES`]) their values as they are.
pub struct Stashed<A, I> {
    /// `(pane start, accumulator)`.
    folded: Vec<(EventTime, A)>,
    /// `(pane start, value)`: most keys have one record per stamp, kept inline.
    values: SmallVec<[(EventTime, I); 1]>,
}

impl<A, I> Default for Stashed<A, I> {
    fn default() -> Self {
        Stashed {
            folded: Vec::new(),
            values: SmallVec::new(),
        }
    }
}
type Out<R, F> = <<F as Fold<R>>::Agg as Aggregate>::Out;

impl<R: ExchangeData + Serialize, F: Fold<R>> KeyedLogic for WindowLogic<R, F> {
    type Record = R;
    type Key = F::Key;
    type State = PaneState<Acc<R, F>>;
    /// One stamp's records of a key, by pane.
    type Pending = Stashed<Acc<R, F>, In<R, F>>;
    type Output = WindowResult<F::Key, Out<R, F>>;

    fn key(&self, record: &R) -> F::Key {
        self.fold.key(record)
    }

    fn too_late(&self, record: &R, stamp: EventTime) -> Option<String> {
        // Windows ending at or before the stamp have fired by the time it is applied; with
        // the lateness they may still be corrected.
        let (windows, lateness) = (self.windows, self.windows.lateness);
        let t = self.fold.time(record);
        let last_end = windows.last_end_of_pane(windows.pane_of(t));
        (last_end.saturating_add(lateness) <= stamp).then(|| {
            format!(
                "event time {t} is behind the window operator's frontier {stamp} (allowed lateness {lateness} ms)"
            )
        })
    }

    fn stash(&self, pending: &mut Self::Pending, record: R) {
        let agg = self.fold.agg();
        let pane = self.windows.pane_of(self.fold.time(&record));
        let value = self.fold.value(&record);
        if <F::Agg as Aggregate>::STASH_VALUES {
            pending.values.push((pane, value));
            return;
        }
        match pending.folded.iter_mut().find(|(p, _)| *p == pane) {
            Some((_, acc)) => agg.add(acc, value),
            None => {
                let mut acc = agg.empty();
                agg.add(&mut acc, value);
                pending.folded.push((pane, acc));
            }
        }
    }

    fn apply(
        &self,
        key: &F::Key,
        state: &mut Self::State,
        pending: Self::Pending,
        out: &mut Emit<'_, Self::Output>,
    ) {
        let (windows, agg) = (self.windows, self.fold.agg());
        // Every window ending at or before this stamp has fired (due times come first).
        state.fired_upto = state.fired_upto.max(out.now());
        for (pane, acc) in pending.folded {
            self.add_to_pane(key, state, pane, out, |state| {
                agg.merge(state.pane_mut(pane, || agg.empty()), &acc)
            });
        }
        let mut values = pending.values;
        values.sort_by_key(|(pane, _)| *pane);
        let mut values = values.into_iter().peekable();
        while let Some(&(pane, _)) = values.peek() {
            self.add_to_pane(key, state, pane, out, |state| {
                let acc = state.pane_mut(pane, || agg.empty());
                while let Some((_, value)) = values.next_if(|(p, _)| *p == pane) {
                    agg.add(acc, value);
                }
            });
        }
        state.evict(windows, windows.lateness);
    }

    fn next_due(&self, state: &Self::State) -> Option<EventTime> {
        let (windows, lateness) = (self.windows, self.windows.lateness);
        let fire = state.next_end(windows);
        // Panes kept only for late corrections go when their lateness has passed.
        let evict = state
            .panes
            .first()
            .filter(|_| lateness > 0)
            .map(|(p, _)| windows.last_end_of_pane(*p).saturating_add(lateness));
        fire.into_iter().chain(evict).min()
    }

    fn on_due(&self, key: &F::Key, state: &mut Self::State, out: &mut Emit<'_, Self::Output>) {
        let (windows, agg) = (self.windows, self.fold.agg());
        while let Some(end) = state.next_end(windows).filter(|e| *e <= out.now()) {
            let window = Window {
                start: end.saturating_sub(windows.size),
                end,
            };
            if let Some(acc) = state.merged(agg, window) {
                let (key, value) = (key.clone(), agg.finish(&acc));
                out.give_at(
                    end,
                    WindowResult {
                        window,
                        key,
                        value,
                        diff: 1,
                    },
                );
            }
            state.fired_upto = end;
        }
        state.fired_upto = state.fired_upto.max(out.now());
        state.evict(windows, windows.lateness);
    }

    fn is_done(&self, state: &Self::State) -> bool {
        state.panes.is_empty()
    }
}

/// The results of a window operator and the dead letters of records that came too late.
pub type WindowStreams<'s, K, O> = (
    StreamVec<'s, EventTime, WindowResult<K, O>>,
    StreamVec<'s, EventTime, DeadLetter>,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::{by, Count, Windowing};
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

    /// [`Count`], with the records' values stashed as they are while they wait.
    struct CountValues;

    impl Aggregate for CountValues {
        type In = ();
        type Acc = u64;
        type Out = u64;
        const STASH_VALUES: bool = true;
        fn empty(&self) -> u64 {
            0
        }
        fn add(&self, acc: &mut u64, _: ()) {
            *acc += 1;
        }
        fn merge(&self, acc: &mut u64, other: &u64) {
            *acc += other;
        }
        fn finish(&self, acc: &u64) -> u64 {
            *acc
        }
    }

    /// Counts `(key, event time)` records arriving at the given stamps (nondecreasing) per key
    /// and window, on `workers` threads; returns every result and dead letter — the same
    /// whether the values wait folded or as they are (checked).
    fn count_windows(records: &[(u64, (u64, u64))], windows: Windows, workers: usize) -> Results {
        let folded = count_windows_as(records, windows, workers, false);
        let values = count_windows_as(records, windows, workers, true);
        assert_eq!(folded.0, values.0, "stashed values count as folded ones");
        assert_eq!(folded.1.len(), values.1.len());
        folded
    }

    fn count_windows_as(
        records: &[(u64, (u64, u64))],
        windows: Windows,
        workers: usize,
        values: bool,
    ) -> Results {
        let records = records.to_vec();
        let out = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let sink = Arc::clone(&out);
        timely::execute(timely::Config::process(workers), move |worker| {
            let mut input = InputHandleVec::<u64, (u64, u64)>::new();
            let (results, late) = worker.dataflow::<u64, _, _>(|scope| {
                let spec = by("test.count", |r: &(u64, u64)| r.0, |r| r.1);
                let records = scope.input_from(&mut input);
                let (r, l) = if values {
                    records.window_aggregate(spec.fold(|_| (), CountValues), windows)
                } else {
                    records.window_aggregate(spec.fold(|_| (), Count), windows)
                };
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
            let (results, late) = count_windows(&records, Windows::tumbling(10_000), workers);
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
            let (results, _) = count_windows(&records, windows, workers);
            assert_eq!(results, want, "-w {workers}");
        }
    }

    #[test]
    fn late_records_correct_within_lateness_and_dead_letter_after() {
        // Window [0, 10000) fires when the frontier passes 10000. A record for it stamped
        // 12000 is within a 5000 ms lateness: retract 1, insert 2 — always, as records and due
        // times are taken in time order. One stamped 16000 is past it: a dead letter.
        let records = [
            (0, (1, 0)),
            (10_000, (1, 10_000)),
            (12_000, (1, 5_000)),
            (16_000, (1, 6_000)),
        ];
        for workers in [1, 2] {
            let windows = Windows::tumbling(10_000).allowed_lateness(5_000);
            let (results, late) = count_windows(&records, windows, workers);
            assert_eq!(
                results,
                vec![
                    result(0, 10_000, 1, 1, -1),
                    result(0, 10_000, 1, 1, 1),
                    result(0, 10_000, 1, 2, 1),
                    result(10_000, 20_000, 1, 1, 1),
                ]
            );
            assert_eq!(late.len(), 1);
            assert_eq!(late[0].reason, crate::deadletter::Reason::Late);
            assert_eq!(late[0].raw, "[1,6000]");
        }
    }

    #[test]
    fn a_key_holds_only_the_panes_of_windows_in_flight() {
        let windows = Windows::sliding(10_000, 2_000);
        let spec = by("t", |r: &(u64, u64)| r.0, |r| r.1).fold(|_| (), Count);
        let logic = WindowLogic::new(spec, windows);
        let mut state = PaneState::default();
        let mut out = Vec::new();
        let mut most = 0;
        let mut emitted = 0;
        for second in 0..1_000u64 {
            let t = second * 1000;
            let mut pending = Stashed::default();
            logic.stash(&mut pending, (7, t));
            let mut emit = Emit::new(t, &mut out);
            logic.apply(&7, &mut state, pending, &mut emit);
            while let Some(due) = logic.next_due(&state).filter(|d| *d <= t + 1000) {
                let mut emit = Emit::new(due, &mut out);
                logic.on_due(&7, &mut state, &mut emit);
            }
            most = most.max(state.panes.len());
            emitted += out.drain(..).count();
        }
        assert!(most <= 6, "panes in flight stay bounded: {most}");
        // One result per window: 1000 s of records, a window every 2 s.
        assert!((495..=500).contains(&emitted), "{emitted}");
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(
            serde_json::from_str::<PaneState<u64>>(&text).unwrap(),
            state
        );
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
