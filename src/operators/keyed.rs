//! The keyed event-time core: one operator that windows, sessions, count windows and per-window
//! gathering are written on.
//!
//! A [`KeyedLogic`] says what happens to one key's state; the core does everything else, once:
//! - **routing**: records are exchanged by [`route_hash`] of their key — a fixed hash
//!   (XXH64, seed 0), the same on every worker, process and build, so state written by one
//!   run can be re-routed by key in another;
//! - **lateness**: a record the logic calls too late *for its stamp* becomes a dead letter
//!   (reason `late`) — decided by the stamp alone, not by when the operator runs;
//! - **order**: records wait, folded per key and stamp into the logic's `Pending` value, until
//!   the input frontier passes their stamp; then stamps and due times are processed in time
//!   order — at equal times, due times first. So the per-key states at any frontier `t` hold
//!   exactly the effects of times below `t`, whatever the arrival order or worker count: the
//!   property a checkpoint cut needs;
//! - **due times**: after each change the logic names the key's next due time (a window end, a
//!   session's close); the core keeps them ordered and calls [`KeyedLogic::on_due`] when the
//!   frontier passes one;
//! - **output**: results are stamped at the time that produced them (a stamp, a due time) and
//!   leave in one message per time; the results capability is held at the earliest time that can
//!   still produce one, and dropped at the end of input;
//! - **state in and out**: the operator starts from restored per-key states
//!   ([`KeyedOptions::restore`]) and hands out a copy of them at event-time checkpoints
//!   ([`KeyedOptions::snapshots`]): at `c`, after every time below `c` and before any at or above
//!   it.

use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::time::EventTime;
use rustc_hash::FxHashMap as HashMap;

/// The map of per-key states.
type KeyMap<K, V> = griddle::HashMap<K, V, rustc_hash::FxBuildHasher>;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::hash::Hash;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

pub use crate::route::{owner, route_hash};

/// The options of keyed operator `name`: its restored states and a sink for its copies, when
/// the dataflow being built checkpoints; none otherwise.
pub fn keyed_options<K, S>(name: &str) -> KeyedOptions<K, S>
where
    K: Serialize + serde::de::DeserializeOwned + Hash + 'static,
    S: Serialize + serde::de::DeserializeOwned + 'static,
{
    let Some(checkpoint) = crate::checkpoint::current() else {
        return KeyedOptions::default();
    };
    let restore = checkpoint.restored_states(name);
    let interval = checkpoint.interval();
    let name = name.to_string();
    let asked = std::rc::Rc::clone(&checkpoint);
    KeyedOptions {
        restore,
        wanted: Some(Box::new(move || asked.wants_copies())),
        resume_at: checkpoint.shared.resume_at(),
        snapshots: Some((
            interval,
            Box::new(move |from, to, states: Option<Vec<(K, S)>>| {
                let bytes = states.map(|s| bincode::serialize(&s).unwrap_or_default());
                checkpoint.put_operator(&name, from, to, bytes);
            }),
        )),
    }
}

/// Why a record of `event_time` stamped `stamp` is too late for the stage `what`, if it is: its
/// event time is behind the stamp (it came after the watermark passed it), so the key's state has
/// moved past it. The usual [`KeyedLogic::too_late`] of a logic that applies records in event
/// time.
pub fn behind(event_time: EventTime, stamp: EventTime, what: &str) -> Option<String> {
    (event_time < stamp)
        .then(|| format!("event time {event_time} is behind the {what}'s frontier {stamp}"))
}

/// The dead letter of `record`, which arrived too late for `operator`.
pub fn late_letter<R: Serialize>(operator: &str, record: &R, detail: String) -> DeadLetter {
    let raw = serde_json::to_vec(record).unwrap_or_default();
    DeadLetter::new(
        Origin::Operator {
            operator: operator.to_string(),
        },
        Reason::Late,
        detail,
        &raw,
    )
}

/// Collects a key's results, each stamped at a time no earlier than the time being processed.
pub struct Emit<'a, O> {
    now: EventTime,
    out: &'a mut Vec<(EventTime, O)>,
}

impl<'a, O> Emit<'a, O> {
    /// Collects into `out` results of the time `now` (or later).
    pub fn new(now: EventTime, out: &'a mut Vec<(EventTime, O)>) -> Self {
        Emit { now, out }
    }

    /// The time being processed: the stamp being applied or the due time being fired.
    pub fn now(&self) -> EventTime {
        self.now
    }

    /// A result stamped at the time being processed.
    pub fn give(&mut self, output: O) {
        self.out.push((self.now, output));
    }

    /// A result stamped at `time` (never earlier than the time being processed).
    pub fn give_at(&mut self, time: EventTime, output: O) {
        self.out.push((time.max(self.now), output));
    }
}

/// What a keyed operator does with one key's records and state.
///
/// # Examples
///
/// The number of records per key so far, reported at every stamp that changed it:
///
/// ```
/// use sluice::operators::keyed::{Emit, KeyedCore, KeyedLogic, KeyedOptions};
/// use sluice::time::EventTime;
/// use timely::dataflow::operators::{Capture, Input};
/// use timely::dataflow::operators::capture::Extract;
///
/// struct Running;
///
/// impl KeyedLogic for Running {
///     type Record = (String, u64);
///     type Key = String;
///     type State = u64;
///     type Pending = u64;
///     type Output = (String, u64);
///     fn key(&self, r: &(String, u64)) -> String { r.0.clone() }
///     fn too_late(&self, _: &(String, u64), _: EventTime) -> Option<String> { None }
///     fn stash(&self, pending: &mut u64, _: (String, u64)) { *pending += 1 }
///     fn apply(&self, key: &String, total: &mut u64, n: u64, out: &mut Emit<'_, (String, u64)>) {
///         *total += n;
///         out.give((key.clone(), *total));
///     }
///     fn is_done(&self, _: &u64) -> bool { false }
/// }
///
/// let captured = timely::example(|scope| {
///     let (mut input, stream) = scope.new_input::<Vec<(String, u64)>>();
///     let (totals, _late) = stream.keyed("running", Running, KeyedOptions::default());
///     input.send(("a".to_string(), 1));
///     input.send(("a".to_string(), 2));
///     input.advance_to(5);
///     input.send(("a".to_string(), 6));
///     totals.capture()
/// });
/// let mut rows: Vec<_> = captured.extract().into_iter().flat_map(|(t, v)| v.into_iter().map(move |r| (t, r))).collect();
/// rows.sort();
/// assert_eq!(rows, vec![(0, ("a".to_string(), 2)), (5, ("a".to_string(), 3))]);
/// ```
pub trait KeyedLogic: 'static {
    /// The input record.
    type Record: ExchangeData + Serialize;
    /// The key records are routed and kept by.
    type Key: ExchangeData + Hash + Eq + Ord + Clone + Serialize + DeserializeOwned;
    /// One key's state: plain data, so a checkpoint can write it and a restore read it.
    type State: Clone + Serialize + DeserializeOwned + Default + 'static;
    /// One key's records of one stamp, folded while they wait for the frontier (e.g. an
    /// accumulator, or the records themselves when their order matters).
    type Pending: Default + 'static;
    /// A result.
    type Output: Clone + 'static;

    /// The record's key.
    fn key(&self, record: &Self::Record) -> Self::Key;
    /// Why a record stamped `stamp` (its source's watermark or its rounded event time) is too
    /// late to be used, if it is: it becomes a dead letter.
    fn too_late(&self, record: &Self::Record, stamp: EventTime) -> Option<String>;
    /// Folds a record into its key's pending value for its stamp.
    fn stash(&self, pending: &mut Self::Pending, record: Self::Record);
    /// Whether [`KeyedLogic::stash_seeing`] needs the key's state (a lookup per record).
    const STASH_SEES_STATE: bool = false;
    /// Folds a record stamped `stamp` into its pending value, seeing the key's state as of
    /// every time processed so far (`None`: no state, or `STASH_SEES_STATE` is off). A logic
    /// can fold further here than [`KeyedLogic::stash`] can — e.g. keep only the best of a
    /// known auction's bids — as long as applying the folded value at `stamp` later gives the
    /// same state as applying every record would. The pending value is not part of a checkpoint
    /// (records at or above a cut are read again), so this does not touch the cut.
    fn stash_seeing(
        &self,
        pending: &mut Self::Pending,
        record: Self::Record,
        _state: Option<&Self::State>,
        _stamp: EventTime,
    ) {
        self.stash(pending, record)
    }
    /// Applies a key's records of one stamp (`out.now()`), once every earlier time is done.
    fn apply(
        &self,
        key: &Self::Key,
        state: &mut Self::State,
        pending: Self::Pending,
        out: &mut Emit<'_, Self::Output>,
    );
    /// The next time at which the key has something to do (a window to fire), if any; it is
    /// called once every record stamped before it has been applied. By default none: a logic
    /// that acts only on records.
    fn next_due(&self, _state: &Self::State) -> Option<EventTime> {
        None
    }
    /// Does what is due at `out.now()` for the key (never called for a logic that names no
    /// due times).
    fn on_due(
        &self,
        _key: &Self::Key,
        _state: &mut Self::State,
        _out: &mut Emit<'_, Self::Output>,
    ) {
    }
    /// Whether the key's state holds nothing any more (and can be dropped).
    fn is_done(&self, state: &Self::State) -> bool;
    /// Whether due times after the latest stamp fire when the input ends (the frontier passes
    /// every time). Windows close then; a due time that means "nothing happened for a while"
    /// (an idle key's retirement) does not: the input ending is not evidence that the key went
    /// quiet. Due times up to the latest stamp fire either way.
    const DUE_AT_END: bool = true;
}

/// Receives copies of a keyed operator's states: `(from, to, states)` is valid for every
/// checkpoint `c` (a multiple of the interval) with `from < c ≤ to`; `None` means "unchanged
/// since the last copy, which now covers up to `to` too".
pub type SnapshotSink<K, S> = Box<dyn FnMut(EventTime, EventTime, Option<Vec<(K, S)>>)>;

/// How often a keyed operator hands out copies (a checkpoint interval), and where to.
pub type SnapshotSchedule<K, S> = (EventTime, SnapshotSink<K, S>);

/// Where a keyed operator's state comes from and where copies of it go.
pub struct KeyedOptions<K, S> {
    /// Per-key states to start from (this worker's share, routed by [`route_hash`]).
    pub restore: Vec<(K, S)>,
    /// The checkpoint the restored states are of: every time below it is done.
    pub resume_at: EventTime,
    /// `(interval, sink)`: whenever processing crosses a multiple `c` of `interval` — every time
    /// below `c` done, none at or above it — the sink gets a copy of every key's state, valid
    /// for the range of multiples crossed.
    pub snapshots: Option<SnapshotSchedule<K, S>>,
    /// Whether copies are wanted now (`None`: always). Copies cost a pass over every key; a run
    /// that checkpoints once a second of wall clock need not make one at every multiple its
    /// processing crosses (a replay crosses thousands a second).
    pub wanted: Option<Box<dyn Fn() -> bool>>,
}

impl<K, S> Default for KeyedOptions<K, S> {
    fn default() -> Self {
        KeyedOptions {
            restore: Vec::new(),
            resume_at: 0,
            snapshots: None,
            wanted: None,
        }
    }
}

/// One key's state and the due time it is filed under.
struct Entry<S> {
    state: S,
    due: Option<EventTime>,
}

/// Files `key` (whose entry is `entry`) under its next due time in `due`; returns whether the
/// key holds nothing any more and can be dropped.
fn refile<L: KeyedLogic>(
    logic: &L,
    due: &mut BTreeMap<EventTime, Vec<L::Key>>,
    key: &L::Key,
    entry: &mut Entry<L::State>,
) -> bool {
    let next = logic.next_due(&entry.state);
    if next != entry.due {
        if let Some(new) = next {
            due.entry(new).or_default().push(key.clone());
        }
        entry.due = next;
    }
    next.is_none() && logic.is_done(&entry.state)
}

/// One worker's keyed state, pending records and due times.
struct Core<L: KeyedLogic> {
    logic: std::rc::Rc<L>,
    /// Per-key states. The map grows incrementally (griddle): a doubling moves a few entries
    /// per insert instead of all at once, so a growing key space causes no latency spike.
    keys: KeyMap<L::Key, Entry<L::State>>,
    /// Keys by due time. A key whose due time changed stays filed under the old one too (a
    /// removal would cost more than the skip): entries that disagree with the key's own
    /// [`Entry::due`] are stale and passed over.
    due: BTreeMap<EventTime, Vec<L::Key>>,
    pending: BTreeMap<EventTime, HashMap<L::Key, L::Pending>>,
    /// Every time below this has been processed.
    done_upto: EventTime,
    /// The time of the last stamp or due time processed: copies handed out now are valid for
    /// checkpoints above it.
    last: EventTime,
    /// Whether any state changed since the last copy.
    changed: bool,
    /// Where copies go, every `interval`.
    snapshots: Option<SnapshotSchedule<L::Key, L::State>>,
    /// Whether copies are wanted now.
    wanted: Option<Box<dyn Fn() -> bool>>,
}

impl<L: KeyedLogic> Core<L> {
    /// Files `key` under its next due time (or drops it when it holds nothing).
    fn reschedule(&mut self, key: &L::Key) {
        let Some(entry) = self.keys.get_mut(key) else {
            return;
        };
        if refile(&*self.logic, &mut self.due, key, entry) {
            self.keys.remove(key);
        }
    }

    /// Applies `key`'s records of one stamp to its state (created empty for a new key) and
    /// refiles it: one lookup for a known key, and its key is not cloned.
    fn apply(&mut self, key: L::Key, pending: L::Pending, emit: &mut Emit<'_, L::Output>) {
        if let Some(entry) = self.keys.get_mut(&key) {
            self.logic.apply(&key, &mut entry.state, pending, emit);
            if refile(&*self.logic, &mut self.due, &key, entry) {
                self.keys.remove(&key);
            }
            return;
        }
        let mut entry = Entry {
            state: L::State::default(),
            due: None,
        };
        self.logic.apply(&key, &mut entry.state, pending, emit);
        if !refile(&*self.logic, &mut self.due, &key, &mut entry) {
            self.keys.insert(key, entry);
        }
    }

    /// About to process time `to` (or to stop at the frontier `to`): if a checkpoint lies in
    /// `(last, to]`, the states now are its states — hand out a copy.
    fn cross(&mut self, to: EventTime) {
        let Some((every, sink)) = self.snapshots.as_mut() else {
            return;
        };
        let first = (self.last / *every)
            .saturating_add(1)
            .saturating_mul(*every);
        if first > to || to == EventTime::MAX {
            return;
        }
        if self.wanted.as_ref().is_some_and(|wanted| !wanted()) {
            // No copy now: the next one is a whole copy (nothing to extend).
            self.changed = true;
            return;
        }
        let states = self.changed.then(|| {
            let mut states: Vec<_> = self
                .keys
                .iter()
                .map(|(k, e)| (k.clone(), e.state.clone()))
                .collect();
            states.sort_by(|a, b| a.0.cmp(&b.0));
            states
        });
        sink(self.last, to, states);
        self.changed = false;
    }

    /// Processes every stamp and due time below `limit`, in time order (due times first at
    /// equal times), into `out`; hands out copies at the checkpoints crossed.
    fn process(&mut self, limit: EventTime, out: &mut Vec<(EventTime, L::Output)>) {
        // At the end of the input, due times after the latest stamp fire only for logics that
        // want them to.
        let due_limit = if limit == EventTime::MAX && !L::DUE_AT_END {
            let latest = self.pending.last_key_value().map(|(t, _)| *t);
            latest
                .map_or(0, |t| t.saturating_add(1))
                .max(self.done_upto)
        } else {
            limit
        };
        loop {
            let next_due = self
                .due
                .first_key_value()
                .map(|(t, _)| *t)
                .filter(|t| *t < due_limit);
            let next_stamp = self.pending.first_key_value().map(|(t, _)| *t);
            let next = match (next_due, next_stamp) {
                (Some(d), Some(s)) => d.min(s),
                (Some(t), None) | (None, Some(t)) => t,
                (None, None) => break,
            };
            if next >= limit {
                break;
            }
            self.cross(next);
            // A due time in the past (a key created late) is done now.
            let now = next.max(self.done_upto);
            if next_due == Some(next) {
                for key in self.due.remove(&next).unwrap_or_default() {
                    let Some(entry) = self.keys.get_mut(&key).filter(|e| e.due == Some(next))
                    else {
                        continue; // stale: the key was refiled (or dropped) since
                    };
                    entry.due = None;
                    let mut emit = Emit { now, out };
                    self.logic.on_due(&key, &mut entry.state, &mut emit);
                    self.reschedule(&key);
                }
            } else if let Some((_, group)) = self.pending.pop_first() {
                for (key, pending) in group {
                    self.apply(key, pending, &mut Emit { now, out });
                }
            }
            self.done_upto = self.done_upto.max(next);
            self.last = next;
            self.changed = true;
        }
        self.cross(limit);
        self.done_upto = self.done_upto.max(limit);
    }
}

/// The results of a keyed operator and the dead letters of records it found too late.
pub type KeyedStreams<'s, O> = (
    StreamVec<'s, EventTime, O>,
    StreamVec<'s, EventTime, DeadLetter>,
);

/// Running a [`KeyedLogic`] over a stream.
pub trait KeyedCore<'s, R> {
    /// Runs `logic` over the stream as the operator `name`; returns its results and the dead
    /// letters of records it found too late.
    fn keyed<L>(
        self,
        name: &str,
        logic: L,
        options: KeyedOptions<L::Key, L::State>,
    ) -> KeyedStreams<'s, L::Output>
    where
        L: KeyedLogic<Record = R>;
}

impl<'s, R: ExchangeData> KeyedCore<'s, R> for StreamVec<'s, EventTime, R> {
    fn keyed<L>(
        self,
        name: &str,
        logic: L,
        options: KeyedOptions<L::Key, L::State>,
    ) -> KeyedStreams<'s, L::Output>
    where
        L: KeyedLogic<Record = R>,
    {
        let logic = std::rc::Rc::new(logic);
        let route = std::rc::Rc::clone(&logic);
        let mut builder = OperatorBuilder::new(name.to_owned(), self.scope());
        let mut input =
            builder.new_input(self, Exchange::new(move |r: &R| route_hash(&route.key(r))));
        let (results_out, results) = builder.new_output::<Vec<L::Output>>();
        let (late_out, late) = builder.new_output::<Vec<DeadLetter>>();
        let mut results_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<L::Output>>>::from(results_out);
        let mut late_out =
            OutputBuilder::<_, CapacityContainerBuilder<Vec<DeadLetter>>>::from(late_out);
        let operator = name.to_owned();
        let mut core = Core {
            logic,
            keys: KeyMap::default(),
            due: BTreeMap::new(),
            pending: BTreeMap::new(),
            done_upto: options.resume_at,
            last: options.resume_at.saturating_sub(1),
            changed: true,
            snapshots: options.snapshots,
            wanted: options.wanted,
        };
        let resumed_at = options.resume_at;
        for (key, state) in options.restore {
            core.keys.insert(key.clone(), Entry { state, due: None });
            core.reschedule(&key);
        }

        builder.build(move |mut caps| {
            let mut late_cap = caps.pop();
            let mut held = caps.pop();
            let mut emitted: Vec<(EventTime, L::Output)> = Vec::new();
            move |frontiers| {
                let frontier = frontiers[0].frontier().first().copied();
                let (Some(cap), Some(lcap)) = (held.as_mut(), late_cap.as_mut()) else {
                    input.for_each(|_, _| {});
                    return;
                };
                {
                    let mut late = late_out.activate();
                    let core = &mut core;
                    input.for_each(|stamp, batch| {
                        let stamp = stamp.least().copied().unwrap_or(0);
                        // Below the checkpoint restored: rebuilt upstream state re-deriving
                        // what the restored states already hold.
                        if stamp < resumed_at {
                            batch.clear();
                            return;
                        }
                        let group = core.pending.entry(stamp).or_default();
                        for record in batch.drain(..) {
                            if let Some(detail) = core.logic.too_late(&record, stamp) {
                                late.session(&*lcap)
                                    .give(late_letter(&operator, &record, detail));
                                continue;
                            }
                            let key = core.logic.key(&record);
                            if L::STASH_SEES_STATE {
                                let state = core.keys.get(&key).map(|e| &e.state);
                                core.logic.stash_seeing(
                                    group.entry(key).or_default(),
                                    record,
                                    state,
                                    stamp,
                                );
                            } else {
                                core.logic.stash(group.entry(key).or_default(), record);
                            }
                        }
                    });
                }
                let limit = frontier.unwrap_or(EventTime::MAX);
                core.process(limit, &mut emitted);
                if !emitted.is_empty() {
                    let mut out = results_out.activate();
                    // Results come in time order: one message per time.
                    let mut rest = emitted.drain(..).peekable();
                    while let Some((time, first)) = rest.next() {
                        let at = cap.delayed(&time.max(*cap.time()));
                        let mut session = out.session(&at);
                        session.give(first);
                        while let Some((_, o)) = rest.next_if(|(t, _)| *t == time) {
                            session.give(o);
                        }
                    }
                }
                match frontier {
                    None => {
                        held = None;
                        late_cap = None;
                    }
                    // Every time below the frontier is done: results can only come at or after it.
                    Some(f) => {
                        if f > *cap.time() {
                            cap.downgrade(&f);
                        }
                        if f > *lcap.time() {
                            lcap.downgrade(&f);
                        }
                    }
                }
            }
        });
        (results, late)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operators::window::{PaneState, WindowLogic, WindowResult, Windows};
    use crate::operators::{by, Count};
    use std::sync::{Arc, Mutex};
    use timely::dataflow::operators::capture::Event;
    use timely::dataflow::operators::{Capture, Input};
    use timely::dataflow::InputHandleVec;

    type Row = (EventTime, WindowResult<u64, u64>);
    /// A copy of one worker's states, valid for checkpoints in `(from, to]`.
    type Snapshot = (EventTime, EventTime, Vec<(u64, PaneState<u64>)>);

    /// `(stamp, (key, event time))` records: 20 keys, event times up to 60 s, stamps at the
    /// event time rounded down to 100 ms, some of them late (stamped after their event time).
    fn records() -> Vec<(EventTime, (u64, EventTime))> {
        let mut out: Vec<_> = (0..3000u64)
            .map(|i| {
                let t = (i * 7919) % 60_000;
                let stamp = if i % 50 == 0 { t + 900 } else { t - t % 100 };
                (stamp, (i % 20, t))
            })
            .collect();
        out.sort();
        out
    }

    /// Counts of sliding windows over the records stamped at or after `from` on `workers`
    /// threads, starting from `restore` (routed to the owners); returns every result with its
    /// time and every worker's copies for checkpoints at multiples of 5 s.
    fn run(
        from: EventTime,
        restore: Vec<(u64, PaneState<u64>)>,
        workers: usize,
    ) -> (Vec<Row>, Vec<Vec<Snapshot>>) {
        let out = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let sink = Arc::clone(&out);
        timely::execute(timely::Config::process(workers), move |worker| {
            let (index, peers) = (worker.index(), worker.peers());
            let mut input = InputHandleVec::<u64, (u64, u64)>::new();
            let snaps: Arc<Mutex<Vec<Snapshot>>> = Arc::new(Mutex::new(Vec::new()));
            let snap_sink = Arc::clone(&snaps);
            let windows = Windows::sliding(10_000, 2_000).allowed_lateness(3_000);
            let options = KeyedOptions {
                restore: restore
                    .iter()
                    .filter(|(k, _)| owner(k, peers) == index)
                    .cloned()
                    .collect(),
                resume_at: from,
                snapshots: Some((
                    5_000,
                    Box::new(move |lo, hi, states| {
                        let mut snaps = snap_sink.lock().unwrap();
                        match states {
                            Some(states) => snaps.push((lo, hi, states)),
                            // Unchanged: the last copy covers up to `hi` too.
                            None => snaps.last_mut().unwrap().1 = hi,
                        }
                    }),
                )),
                wanted: None,
            };
            let results = worker.dataflow::<u64, _, _>(|scope| {
                let spec = by("t", |r: &(u64, u64)| r.0, |r| r.1).fold(|_| (), Count);
                let logic = WindowLogic::new(spec, windows);
                let (r, _late) = scope.input_from(&mut input).keyed("t", logic, options);
                r.capture()
            });
            if index == 0 {
                for (stamp, r) in records().into_iter().filter(|(s, _)| *s >= from) {
                    if stamp > *input.time() {
                        input.advance_to(stamp);
                        worker.step();
                    }
                    input.send(r);
                }
            }
            drop(input);
            while worker.step_or_park(None) {}
            let rows: Vec<Row> = results
                .try_iter()
                .flat_map(|e| match e {
                    Event::Messages(stamp, v) => {
                        let t = stamp.least().copied().unwrap_or(0);
                        v.into_iter().map(|r| (t, r)).collect()
                    }
                    Event::Progress(_) => Vec::new(),
                })
                .collect();
            let mut guard = sink.lock().unwrap();
            guard.0.extend(rows);
            guard
                .1
                .push(snaps.lock().unwrap().drain(..).collect::<Vec<_>>());
        })
        .unwrap();
        let out = std::mem::take(&mut *out.lock().unwrap());
        out
    }

    fn sorted(mut rows: Vec<Row>) -> Vec<(EventTime, u64, u64, u64, i64)> {
        let mut v: Vec<_> = rows
            .drain(..)
            .map(|(t, r)| (t, r.window.start, r.key, r.value, r.diff))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_run_restored_from_a_snapshot_continues_exactly() {
        for workers in [1, 2] {
            let (all, snapshots) = run(0, Vec::new(), workers);
            assert!(all.iter().any(|(_, r)| r.diff == -1), "corrections happen");
            for c in [15_000, 30_000, 45_000] {
                // Every worker's copy covering `c`: the states of its keys, effects of times < c.
                let states: Vec<(u64, PaneState<u64>)> = snapshots
                    .iter()
                    .map(|copies| {
                        let copy = copies.iter().rev().find(|(lo, hi, _)| *lo < c && c <= *hi);
                        copy.unwrap_or_else(|| panic!("-w {workers}: no copy covers {c}"))
                    })
                    .flat_map(|(_, _, s)| s.clone())
                    .collect();
                assert!(!states.is_empty(), "-w {workers}: nothing at {c}");
                // Restored at another worker count, fed the records from c on.
                let (rest, _) = run(c, states, 3 - workers);
                let mut joined: Vec<Row> = all.iter().filter(|(t, _)| *t < c).cloned().collect();
                joined.extend(rest);
                assert_eq!(
                    sorted(joined),
                    sorted(all.clone()),
                    "-w {workers}, restored at {c}"
                );
            }
        }
    }

    #[test]
    fn the_route_hash_is_fixed() {
        // XXH64 of the key's Hash bytes: the same on every build, so states can move.
        assert_eq!(route_hash(&42u64), route_hash(&42u64));
        assert_eq!(owner(&42u64, 1), 0);
        let spread: std::collections::BTreeSet<usize> = (0..100u64).map(|k| owner(&k, 4)).collect();
        assert_eq!(spread.len(), 4);
        assert_eq!(
            route_hash(&7u64),
            609_900_476_111_905_877,
            "the hash changed: restored state would land on the wrong workers"
        );
    }
}
