//! Session windows: per key, bursts of activity separated by at least `gap` of event time.
//!
//! Each record opens the interval `[t, t + gap)`; intervals of one key that overlap or touch
//! merge (as Flink's session windows do), so a session is `[first event, last event + gap)`. A
//! session fires once, when the frontier passes its end — no record that could still extend it
//! (one at or before its end) can arrive — with `diff = +1`, stamped at its end; then its state
//! is dropped. A record whose own interval ended before its stamp (the source's watermark when it
//! was read) cannot join a session that is still open: it is a dead letter (reason `late`).
//!
//! It is a [`KeyedLogic`] on the keyed core. State: per key, the open sessions ordered by start
//! ([`SessionState`]); it shrinks as sessions close, so memory follows the open sessions. A
//! session's result is stamped just after its end (once records stamped at its end are in).

use super::aggregate::Aggregate;
use super::keyed::{Emit, KeyedLogic};
use super::spec::Fold;
use super::window::{Window, WindowResult};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::ExchangeData;

/// One key's open sessions, `(start, end, accumulator)` ordered by start: plain data that a
/// checkpoint can write and a restore read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionState<A> {
    /// The open sessions, disjoint and ascending.
    pub open: Vec<(EventTime, EventTime, A)>,
}

impl<A> Default for SessionState<A> {
    fn default() -> Self {
        SessionState { open: Vec::new() }
    }
}

impl<A> SessionState<A> {
    /// Adds a record at `t` with inactivity `gap`, merging every session it touches.
    pub fn add<G: Aggregate<Acc = A>>(&mut self, agg: &G, gap: u64, t: EventTime, value: G::In) {
        let (mut start, mut end) = (t, t + gap);
        let mut acc = agg.empty();
        agg.add(&mut acc, value);
        // Sessions that touch [t, t + gap]: they start at or before its end and end at or
        // after its start. They are consecutive in the ordered list.
        let first = self.open.partition_point(|(_, e, _)| *e < start);
        let last = self.open.partition_point(|(s, _, _)| *s <= end);
        for (s, e, other) in self.open.drain(first..last.max(first)) {
            agg.merge(&mut acc, &other);
            start = start.min(s);
            end = end.max(e);
        }
        self.open.insert(first, (start, end, acc));
    }

    /// Removes and returns every session ending before `upto`.
    pub fn close_before(&mut self, upto: EventTime) -> Vec<(Window, A)> {
        let mut closed = Vec::new();
        let mut i = 0;
        while i < self.open.len() {
            if self.open[i].1 < upto {
                let (start, end, acc) = self.open.remove(i);
                closed.push((Window { start, end }, acc));
            } else {
                i += 1;
            }
        }
        closed
    }
}

/// Session windows as a [`KeyedLogic`]: a key's records of one stamp wait as `(event time,
/// value)` pairs; applied in stamp order they open or extend sessions; a session closes once
/// every record stamped at or before its end has been applied.
pub struct SessionLogic<R, F> {
    gap: u64,
    fold: F,
    _records: std::marker::PhantomData<fn(R)>,
}

impl<R, F: Fold<R>> SessionLogic<R, F> {
    /// Sessions with inactivity `gap` over records folded as `fold` says (for
    /// [`KeyedCore::keyed`](super::KeyedCore::keyed) with restored state or snapshots).
    pub fn new(fold: F, gap: u64) -> Self {
        SessionLogic {
            gap,
            fold,
            _records: std::marker::PhantomData,
        }
    }
}

type Agg<R, F> = <F as Fold<R>>::Agg;

impl<R: ExchangeData + Serialize, F: Fold<R>> KeyedLogic for SessionLogic<R, F> {
    type Record = R;
    type Key = F::Key;
    type State = SessionState<<Agg<R, F> as Aggregate>::Acc>;
    type Pending = Vec<(EventTime, <Agg<R, F> as Aggregate>::In)>;
    type Output = WindowResult<F::Key, <Agg<R, F> as Aggregate>::Out>;

    fn key(&self, record: &R) -> F::Key {
        self.fold.key(record)
    }

    fn too_late(&self, record: &R, stamp: EventTime) -> Option<String> {
        let (t, gap) = (self.fold.time(record), self.gap);
        (t.saturating_add(gap) < stamp).then(|| {
            format!("session of event time {t} (gap {gap} ms) ended before the watermark {stamp}")
        })
    }

    fn stash(&self, pending: &mut Self::Pending, record: R) {
        pending.push((self.fold.time(&record), self.fold.value(&record)));
    }

    fn apply(
        &self,
        _key: &F::Key,
        state: &mut Self::State,
        pending: Self::Pending,
        _out: &mut Emit<'_, Self::Output>,
    ) {
        for (t, value) in pending {
            state.add(self.fold.agg(), self.gap, t, value);
        }
    }

    fn next_due(&self, state: &Self::State) -> Option<EventTime> {
        // A session ending at `end` can still grow by a record stamped `end`: it closes once
        // that stamp is done.
        state.open.iter().map(|(_, end, _)| end + 1).min()
    }

    fn on_due(&self, key: &F::Key, state: &mut Self::State, out: &mut Emit<'_, Self::Output>) {
        for (window, acc) in state.close_before(out.now()) {
            let (key, value) = (key.clone(), self.fold.agg().finish(&acc));
            out.give(WindowResult {
                window,
                key,
                value,
                diff: 1,
            });
        }
    }

    fn is_done(&self, state: &Self::State) -> bool {
        state.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::Count;

    #[test]
    fn sessions_merge_when_they_touch_and_close_after_their_end() {
        let mut s: SessionState<u64> = SessionState::default();
        let agg = Count;
        s.add(&agg, 10, 100, ());
        s.add(&agg, 10, 110, ()); // touches [100, 110): one session [100, 120)
        s.add(&agg, 10, 200, ()); // a new session
        assert!(s.close_before(120).is_empty());
        let closed = s.close_before(121);
        assert_eq!(
            closed,
            vec![(
                Window {
                    start: 100,
                    end: 120
                },
                2
            )]
        );
        // One-event sessions.
        let rest = s.close_before(u64::MAX);
        assert_eq!(
            rest,
            vec![(
                Window {
                    start: 200,
                    end: 210
                },
                1
            )]
        );
        assert!(s.open.is_empty());
    }

    #[test]
    fn a_late_record_bridges_two_sessions() {
        let mut s: SessionState<u64> = SessionState::default();
        let agg = Count;
        s.add(&agg, 10, 100, ()); // [100, 110)
        s.add(&agg, 10, 118, ()); // [118, 128): apart
        s.add(&agg, 10, 109, ()); // [109, 119) touches both: [100, 128)
        let closed = s.close_before(u64::MAX);
        assert_eq!(
            closed,
            vec![(
                Window {
                    start: 100,
                    end: 128
                },
                3
            )]
        );
    }
}
