//! Updating results per key on the keyed core: a key's records fold into a small accumulator,
//! and whenever a stamp changes the key's result rows, the rows that went away are retracted
//! (`diff = −1`) and the new ones inserted (`+1`) at that stamp.
//!
//! This is what a differential `reduce` emits, but the state is the accumulator alone — the
//! last ten sales of a seller, the latest bid of a pair, a category's sum and count — instead
//! of every input record, so it does not grow with the history. Use it when the result of a key
//! can be computed from a bounded summary of its records.

use super::keyed::{Emit, KeyedCore, KeyedLogic, KeyedOptions, KeyedStreams};
use crate::time::EventTime;
use serde::de::DeserializeOwned;
use serde::Serialize;
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
    /// Appends the key's result rows for a summary (none for an empty one).
    fn rows(&self, key: &Self::Key, acc: &Self::Acc, rows: &mut Vec<Self::Row>);
}

/// The keyed logic behind [`Updating::updating`].
struct UpdatingLogic<F>(F);

impl<F: UpdatingFold> KeyedLogic for UpdatingLogic<F> {
    type Record = F::Record;
    type Key = F::Key;
    type State = F::Acc;
    type Pending = Vec<F::Record>;
    type Output = (F::Row, i64);

    fn key(&self, record: &F::Record) -> F::Key {
        self.0.key(record)
    }

    fn too_late(&self, _: &F::Record, _: EventTime) -> Option<String> {
        None
    }

    fn stash(&self, pending: &mut Vec<F::Record>, record: F::Record) {
        pending.push(record);
    }

    fn apply(
        &self,
        key: &F::Key,
        acc: &mut F::Acc,
        pending: Vec<F::Record>,
        out: &mut Emit<'_, (F::Row, i64)>,
    ) {
        let mut before = Vec::new();
        self.0.rows(key, acc, &mut before);
        for record in pending {
            self.0.add(acc, record);
        }
        let mut after = Vec::new();
        self.0.rows(key, acc, &mut after);
        before.sort();
        after.sort();
        // A merge of the two sorted lists: rows on one side only are retracted or inserted.
        let (mut i, mut j) = (0, 0);
        loop {
            match (before.get(i), after.get(j)) {
                (Some(o), Some(n)) if o == n => {
                    i += 1;
                    j += 1;
                }
                (Some(o), Some(n)) if o < n => {
                    out.give((o.clone(), -1));
                    i += 1;
                }
                (Some(o), None) => {
                    out.give((o.clone(), -1));
                    i += 1;
                }
                (_, Some(n)) => {
                    out.give((n.clone(), 1));
                    j += 1;
                }
                (None, None) => break,
            }
        }
    }

    fn next_due(&self, _: &F::Acc) -> Option<EventTime> {
        None
    }

    fn on_due(&self, _: &F::Key, _: &mut F::Acc, _: &mut Emit<'_, (F::Row, i64)>) {}

    fn is_done(&self, _: &F::Acc) -> bool {
        false
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
}

impl<'s, R: ExchangeData + Serialize> Updating<'s, R> for StreamVec<'s, EventTime, R> {
    fn updating<F: UpdatingFold<Record = R>>(
        self,
        name: &str,
        fold: F,
    ) -> KeyedStreams<'s, (F::Row, i64)> {
        let options: KeyedOptions<F::Key, F::Acc> = super::keyed::keyed_options(name);
        self.keyed(name, UpdatingLogic(fold), options)
    }
}
