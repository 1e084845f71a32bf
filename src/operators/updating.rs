//! Updating results per key on the keyed core: a key's records fold into a small accumulator,
//! and whenever a stamp changes the key's result rows, the rows that went away are retracted
//! (`diff = −1`) and the new ones inserted (`+1`) at that stamp.
//!
//! This is what a differential `reduce` emits, but the state is the accumulator alone — the
//! last ten sales of a seller, the latest bid of a pair, a category's sum and count — instead
//! of every input record, so it does not grow with the history. Use it when the result of a key
//! can be computed from a bounded summary of its records.
//!
//! The number of keys can still grow with the history (every seller that ever sold). With an
//! idle-key time to live ([`Updating::updating_retiring`]), a key that has had no record for
//! that much event time is retired when the frontier passes its last stamp plus the TTL: its
//! rows are retracted at that time and its summary dropped; a record arriving later starts the
//! key afresh. The end of a bounded input retires nothing (it is not a silence).

use super::keyed::{Emit, KeyedCore, KeyedLogic, KeyedOptions, KeyedStreams};
use crate::time::EventTime;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::cell::RefCell;
use std::hash::Hash;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// A result kept up to date per key from a bounded summary of its records.
///
/// # Examples
///
/// The largest value seen per key, as an updating result:
///
/// ```
/// use sluice::operators::updating::{Updating, UpdatingFold};
/// use timely::dataflow::operators::{Capture, Input};
/// use timely::dataflow::operators::capture::Extract;
///
/// struct Largest;
///
/// impl UpdatingFold for Largest {
///     type Record = (char, u64);
///     type Key = char;
///     type Acc = Option<u64>;
///     type Row = (char, u64);
///     fn key(&self, r: &(char, u64)) -> char { r.0 }
///     fn add(&self, acc: &mut Option<u64>, r: (char, u64)) { *acc = (*acc).max(Some(r.1)) }
///     fn rows(&self, key: &char, acc: &Option<u64>, rows: &mut Vec<(char, u64)>) {
///         rows.extend(acc.map(|v| (*key, v)));
///     }
/// }
///
/// let captured = timely::example(|scope| {
///     let (mut input, stream) = scope.new_input::<Vec<(char, u64)>>();
///     let (changes, _late) = stream.updating("largest", Largest);
///     input.send(('a', 3));
///     input.send(('a', 5));
///     input.advance_to(10);
///     input.send(('a', 4)); // not larger: nothing changes
///     input.advance_to(20);
///     input.send(('a', 9));
///     changes.capture()
/// });
/// let mut rows: Vec<_> = captured.extract().into_iter().flat_map(|(t, v)| v.into_iter().map(move |r| (t, r))).collect();
/// rows.sort();
/// assert_eq!(rows, vec![(0, (('a', 5), 1)), (20, (('a', 5), -1)), (20, (('a', 9), 1))]);
/// ```
pub trait UpdatingFold: 'static {
    /// The input record.
    type Record: ExchangeData + Serialize;
    /// The key results are kept per.
    type Key: ExchangeData + Hash + Eq + Ord + Clone + Serialize + DeserializeOwned;
    /// A key's summary of its records: plain data, so checkpoints can keep it.
    type Acc: Clone + Serialize + DeserializeOwned + Default + 'static;
    /// A result row.
    type Row: Clone + Ord + 'static;

    /// The record's key.
    fn key(&self, record: &Self::Record) -> Self::Key;
    /// Folds a record into its key's summary.
    fn add(&self, acc: &mut Self::Acc, record: Self::Record);
    /// Whether folding `record` in could change the summary: `false` only when [`add`] would
    /// leave it exactly as it is (a bid below an auction's top ten), so the operator can skip
    /// the record and the key's rows. The default says every record may change it.
    ///
    /// [`add`]: UpdatingFold::add
    fn changes(&self, _acc: &Self::Acc, _record: &Self::Record) -> bool {
        true
    }
    /// Appends the key's result rows for a summary (none for an empty one).
    fn rows(&self, key: &Self::Key, acc: &Self::Acc, rows: &mut Vec<Self::Row>);
}

/// The keyed logic behind [`Updating::updating`].
struct UpdatingLogic<F: UpdatingFold> {
    fold: F,
    /// Retire a key after this much event time without a record (`None`: never).
    retire_after: Option<EventTime>,
    /// A key's rows before and after a stamp: buffers reused from key to key, so a change
    /// costs no allocation of its own.
    scratch: RefCell<BeforeAfter<F::Row>>,
}

/// A key's rows before a stamp and after it.
type BeforeAfter<R> = (Vec<R>, Vec<R>);

/// A key's records of one stamp: most keys have one, kept inline.
type Stashed<R> = SmallVec<[R; 1]>;

/// A key's summary and the stamp of its latest records.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Kept<A> {
    acc: A,
    /// `None`: retired (or not yet applied).
    last: Option<EventTime>,
}

impl<F: UpdatingFold> KeyedLogic for UpdatingLogic<F> {
    type Record = F::Record;
    type Key = F::Key;
    type State = Kept<F::Acc>;
    type Pending = Stashed<F::Record>;
    type Output = (F::Row, i64);

    const DUE_AT_END: bool = false;

    fn key(&self, record: &F::Record) -> F::Key {
        self.fold.key(record)
    }

    fn too_late(&self, _: &F::Record, _: EventTime) -> Option<String> {
        None
    }

    fn stash(&self, pending: &mut Stashed<F::Record>, record: F::Record) {
        pending.push(record);
    }

    fn apply(
        &self,
        key: &F::Key,
        kept: &mut Kept<F::Acc>,
        pending: Stashed<F::Record>,
        out: &mut Emit<'_, (F::Row, i64)>,
    ) {
        kept.last = Some(out.now());
        let acc = &mut kept.acc;
        let mut scratch = self.scratch.borrow_mut();
        let (before, after) = &mut *scratch;
        before.clear();
        after.clear();
        // The key's rows before this stamp, computed once the first record that can change
        // them comes (none: nothing changes).
        let mut changed = false;
        for record in pending {
            if !self.fold.changes(acc, &record) {
                continue;
            }
            if !changed {
                self.fold.rows(key, acc, before);
                changed = true;
            }
            self.fold.add(acc, record);
        }
        if !changed {
            return;
        }
        self.fold.rows(key, acc, after);
        before.sort();
        after.sort();
        // A merge of the two sorted lists: rows on one side only are retracted or inserted
        // (moved out, not cloned).
        let mut old = before.drain(..).peekable();
        let mut new = after.drain(..).peekable();
        loop {
            match (old.peek(), new.peek()) {
                (Some(o), Some(n)) if o == n => {
                    old.next();
                    new.next();
                }
                (Some(o), Some(n)) if o > n => out.give((new.next().unwrap(), 1)),
                (Some(_), _) => out.give((old.next().unwrap(), -1)),
                (None, Some(_)) => out.give((new.next().unwrap(), 1)),
                (None, None) => break,
            }
        }
    }

    fn next_due(&self, kept: &Kept<F::Acc>) -> Option<EventTime> {
        let ttl = self.retire_after?;
        Some(kept.last?.saturating_add(ttl))
    }

    /// The key has been idle for the TTL: its rows leave the result, its summary is dropped.
    fn on_due(&self, key: &F::Key, kept: &mut Kept<F::Acc>, out: &mut Emit<'_, (F::Row, i64)>) {
        let mut rows = Vec::new();
        self.fold.rows(key, &kept.acc, &mut rows);
        for row in rows {
            out.give((row, -1));
        }
        *kept = Kept::default();
    }

    fn is_done(&self, kept: &Kept<F::Acc>) -> bool {
        kept.last.is_none()
    }
}

/// Updating results per key over a stream.
pub trait Updating<'s, R> {
    /// Runs `fold` as the operator `name` (exchanged by key; its summaries checkpointed with
    /// the run's): every change of a key's rows, as `(row, ±1)` at the stamp that made it.
    /// Records are never late for it (the second stream stays empty).
    fn updating<F: UpdatingFold<Record = R>>(
        self,
        name: &str,
        fold: F,
    ) -> KeyedStreams<'s, (F::Row, i64)>;

    /// [`Updating::updating`], retiring a key that has had no record for `idle` event time
    /// (`None`: never): when the frontier passes its last stamp plus `idle`, its rows are
    /// retracted at that time and its summary dropped. A run whose input ends retires nothing
    /// at the end.
    fn updating_retiring<F: UpdatingFold<Record = R>>(
        self,
        name: &str,
        fold: F,
        idle: Option<EventTime>,
    ) -> KeyedStreams<'s, (F::Row, i64)>;
}

impl<'s, R: ExchangeData + Serialize> Updating<'s, R> for StreamVec<'s, EventTime, R> {
    fn updating<F: UpdatingFold<Record = R>>(
        self,
        name: &str,
        fold: F,
    ) -> KeyedStreams<'s, (F::Row, i64)> {
        self.updating_retiring(name, fold, None)
    }

    fn updating_retiring<F: UpdatingFold<Record = R>>(
        self,
        name: &str,
        fold: F,
        idle: Option<EventTime>,
    ) -> KeyedStreams<'s, (F::Row, i64)> {
        let options: KeyedOptions<F::Key, Kept<F::Acc>> = super::keyed::keyed_options(name);
        let logic = UpdatingLogic {
            fold,
            retire_after: idle,
            scratch: RefCell::default(),
        };
        self.keyed(name, logic, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use timely::dataflow::operators::capture::Extract;
    use timely::dataflow::operators::{Capture, Input};

    /// The largest value per key.
    struct Largest;

    impl UpdatingFold for Largest {
        type Record = (char, u64);
        type Key = char;
        type Acc = Option<u64>;
        type Row = (char, u64);
        fn key(&self, r: &(char, u64)) -> char {
            r.0
        }
        fn add(&self, acc: &mut Option<u64>, r: (char, u64)) {
            *acc = (*acc).max(Some(r.1));
        }
        fn rows(&self, key: &char, acc: &Option<u64>, rows: &mut Vec<(char, u64)>) {
            rows.extend(acc.map(|v| (*key, v)));
        }
    }

    /// `(time, ((key, value), diff))`.
    type Change = (EventTime, ((char, u64), i64));

    /// `(time, ((key, value), diff))` of an updating run over `input` (time, record), retiring
    /// keys idle for `idle`, on `workers` threads.
    fn run(
        input: Vec<(EventTime, (char, u64))>,
        idle: Option<EventTime>,
        workers: usize,
    ) -> Vec<Change> {
        let all = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&all);
        timely::execute(timely::Config::process(workers), move |worker| {
            let (mut handle, captured) = worker.dataflow::<EventTime, _, _>(|scope| {
                let (handle, stream) = scope.new_input::<Vec<(char, u64)>>();
                let (changes, _late) = stream.updating_retiring("largest", Largest, idle);
                (handle, changes.capture())
            });
            if worker.index() == 0 {
                for (t, r) in &input {
                    handle.advance_to(*t);
                    handle.send(*r);
                }
            }
            drop(handle);
            while worker.step_or_park(None) {}
            let rows: Vec<_> = captured
                .extract()
                .into_iter()
                .flat_map(|(t, v)| v.into_iter().map(move |r| (t, r)))
                .collect();
            sink.lock().unwrap().extend(rows);
        })
        .unwrap();
        let mut rows = std::mem::take(&mut *all.lock().unwrap());
        rows.sort();
        rows
    }

    #[test]
    fn an_idle_key_is_retired_and_a_later_record_starts_it_afresh() {
        let input = vec![
            (0, ('a', 5)),
            (0, ('b', 1)),
            (40, ('b', 2)), // b stays busy
            (90, ('b', 3)),
            (200, ('a', 2)), // a was retired at 100: 2 is its largest now
            (210, ('b', 4)),
        ];
        for workers in [1, 2] {
            let rows = run(input.clone(), Some(100), workers);
            assert_eq!(
                rows,
                vec![
                    (0, (('a', 5), 1)),
                    (0, (('b', 1), 1)),
                    (40, (('b', 1), -1)),
                    (40, (('b', 2), 1)),
                    (90, (('b', 2), -1)),
                    (90, (('b', 3), 1)),
                    (100, (('a', 5), -1)),
                    (190, (('b', 3), -1)), // idle since 90
                    (200, (('a', 2), 1)),
                    (210, (('b', 4), 1)),
                    // the end of the input retires nothing
                ],
                "-w {workers}"
            );
        }
    }

    #[test]
    fn without_a_ttl_nothing_is_retired() {
        let input = vec![(0, ('a', 5)), (1_000_000, ('b', 1)), (2_000_000, ('a', 1))];
        let rows = run(input, None, 1);
        assert_eq!(rows, vec![(0, (('a', 5), 1)), (1_000_000, (('b', 1), 1))]);
    }
}
