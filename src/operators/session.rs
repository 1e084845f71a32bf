//! Session windows: per key, bursts of activity separated by at least `gap` of event time.
//!
//! Each record opens the interval `[t, t + gap)`; intervals of one key that overlap or touch
//! merge (as Flink's session windows do), so a session is `[first event, last event + gap)`. A
//! session fires once, when the frontier passes its end — no record that could still extend it
//! (one at or before its end) can arrive — with `diff = +1`, stamped at its end; then its state
//! is dropped. A record whose own interval ended before its stamp (the source's watermark when it
//! was read) cannot join a session that is still open: it is a dead letter (reason `late`).
//!
//! State: per key, the open sessions ordered by start; and a queue of session ends to fire.
//! Both shrink as sessions close, so memory follows the number of open sessions.

use super::aggregate::Aggregate;
use super::keyed::{advance, keyed_ports, late_letter, KeyedPorts};
use super::window::{Window, WindowResult};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::Hash;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

use super::window::WindowStreams;

/// One key's open sessions: start → (end, accumulator).
type Sessions<A> = BTreeMap<EventTime, (EventTime, A)>;

/// The complete state of one worker's session operator: plain data that a checkpoint can
/// serialise at a frontier and restore.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Hash + Eq + Ord, A: Serialize",
    deserialize = "K: Deserialize<'de> + Hash + Eq + Ord, A: Deserialize<'de>"
))]
pub struct SessionState<K, A> {
    /// Open sessions per key.
    pub open: HashMap<K, Sessions<A>>,
    /// `(end, key)` of every open session, in firing order.
    pub ends: BTreeSet<(EventTime, K)>,
}

impl<K, A> Default for SessionState<K, A> {
    fn default() -> Self {
        SessionState {
            open: HashMap::new(),
            ends: BTreeSet::new(),
        }
    }
}

impl<K: Hash + Eq + Ord + Clone, A> SessionState<K, A> {
    /// Adds a record at `t` to `key`'s sessions, merging every session it touches.
    pub fn add<G: Aggregate<Acc = A>>(
        &mut self,
        agg: &G,
        gap: u64,
        key: K,
        t: EventTime,
        value: G::In,
    ) {
        let sessions = self.open.entry(key.clone()).or_default();
        let (mut start, mut end) = (t, t + gap);
        let mut acc = agg.empty();
        agg.add(&mut acc, value);
        // Sessions starting at or before our end may touch us; those ending before t do not.
        let touching: Vec<EventTime> = sessions
            .range(..=end)
            .filter(|(_, (e, _))| *e >= start)
            .map(|(s, _)| *s)
            .collect();
        for s in touching {
            if let Some((e, other)) = sessions.remove(&s) {
                self.ends.remove(&(e, key.clone()));
                agg.merge(&mut acc, &other);
                start = start.min(s);
                end = end.max(e);
            }
        }
        sessions.insert(start, (end, acc));
        self.ends.insert((end, key));
    }

    /// Removes and returns every session whose end is before `frontier`.
    pub fn close_before(&mut self, frontier: EventTime) -> Vec<(Window, K, A)> {
        let mut closed = Vec::new();
        while let Some((end, key)) = self.ends.first().cloned() {
            if end >= frontier {
                break;
            }
            self.ends.pop_first();
            if let Some(sessions) = self.open.get_mut(&key) {
                if let Some(start) = sessions
                    .iter()
                    .find(|(_, (e, _))| *e == end)
                    .map(|(s, _)| *s)
                {
                    if let Some((_, acc)) = sessions.remove(&start) {
                        closed.push((Window { start, end }, key.clone(), acc));
                    }
                }
                if sessions.is_empty() {
                    self.open.remove(&key);
                }
            }
        }
        closed
    }
}

/// Session-window aggregation of a stream of records.
pub trait SessionAggregate<'s, R> {
    /// Folds `value(r)` into per-key (`key(r)`) sessions with inactivity `gap` by event time
    /// `time(r)`; returns one result per closed session (its window is `[start, last + gap)`)
    /// and the dead letters of records that came too late.
    #[allow(clippy::too_many_arguments)]
    fn session_aggregate<K, G>(
        self,
        name: &str,
        gap: u64,
        key: impl Fn(&R) -> K + 'static,
        time: impl Fn(&R) -> EventTime + 'static,
        value: impl Fn(&R) -> G::In + 'static,
        agg: G,
    ) -> WindowStreams<'s, K, G::Out>
    where
        K: ExchangeData + Hash + Eq + Ord + Clone,
        G: Aggregate;
}

impl<'s, R> SessionAggregate<'s, R> for StreamVec<'s, EventTime, R>
where
    R: ExchangeData + Serialize,
{
    fn session_aggregate<K, G>(
        self,
        name: &str,
        gap: u64,
        key: impl Fn(&R) -> K + 'static,
        time: impl Fn(&R) -> EventTime + 'static,
        value: impl Fn(&R) -> G::In + 'static,
        agg: G,
    ) -> WindowStreams<'s, K, G::Out>
    where
        K: ExchangeData + Hash + Eq + Ord + Clone,
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
            let mut state: SessionState<K, G::Acc> = SessionState::default();
            move |frontiers| {
                let frontier = frontiers[0].frontier().first().copied();
                let (Some(cap), Some(lcap)) = (held.as_mut(), late_cap.as_mut()) else {
                    input.for_each(|_, _| {});
                    return;
                };
                let mut late_handle = late_out.activate();
                input.for_each(|stamp, batch| {
                    let stamp = stamp.least().copied().unwrap_or(0);
                    for r in batch.drain(..) {
                        let t = time(&r);
                        if t.saturating_add(gap) < stamp {
                            let detail = format!(
                                "session of event time {t} (gap {gap} ms) ended before the watermark {stamp}"
                            );
                            late_handle.session(&*lcap).give(late_letter(&operator, &r, detail));
                            continue;
                        }
                        state.add(&agg, gap, key(&r), t, value(&r));
                    }
                });
                let mut out = results_out.activate();
                // A session ending at `end` can still grow by a record at `end`: it is complete
                // once the frontier is beyond `end`. Sessions closing together leave as one
                // message, stamped at the earliest of their ends.
                let upto = frontier.unwrap_or(EventTime::MAX);
                let closed = state.close_before(upto);
                if let Some(first_end) = closed.iter().map(|(w, _, _)| w.end).min() {
                    let at = cap.delayed(&first_end.max(*cap.time()));
                    out.session(&at).give_iterator(closed.into_iter().map(|(window, k, acc)| WindowResult {
                        window,
                        key: k,
                        value: agg.finish(&acc),
                        diff: 1,
                    }));
                }
                let next = state.ends.first().map(|(end, _)| *end);
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

    #[test]
    fn sessions_merge_when_they_touch_and_close_after_their_end() {
        let mut s: SessionState<u64, u64> = SessionState::default();
        let agg = Count;
        s.add(&agg, 10, 1, 100, ());
        s.add(&agg, 10, 1, 110, ()); // touches [100, 110): one session [100, 120)
        s.add(&agg, 10, 1, 200, ()); // a new session
        s.add(&agg, 10, 2, 105, ()); // another key
        assert!(s.close_before(120).iter().all(|(w, _, _)| w.end < 120));
        let closed = s.close_before(121);
        assert_eq!(
            closed,
            vec![(
                Window {
                    start: 100,
                    end: 120
                },
                1,
                2
            )]
        );
        // One-event sessions.
        let rest = s.close_before(u64::MAX);
        assert_eq!(rest.len(), 1);
        assert_eq!(
            rest[0],
            (
                Window {
                    start: 200,
                    end: 210
                },
                1,
                1
            )
        );
        assert!(s.open.is_empty() && s.ends.is_empty());
    }

    #[test]
    fn a_late_record_bridges_two_sessions() {
        let mut s: SessionState<u64, u64> = SessionState::default();
        let agg = Count;
        s.add(&agg, 10, 1, 100, ()); // [100, 110)
        s.add(&agg, 10, 1, 118, ()); // [118, 128): apart
        s.add(&agg, 10, 1, 109, ()); // [109, 119) touches both: [100, 128)
        let closed = s.close_before(u64::MAX);
        let window = Window {
            start: 100,
            end: 128,
        };
        assert_eq!(closed, vec![(window, 1, 3)]);
    }
}
