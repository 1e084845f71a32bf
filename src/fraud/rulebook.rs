//! The rule book while a pipeline runs: changes in the stream, each effective from its own
//! event time, the same at any worker count.
//!
//! A [`RuleChange`] is a record of the fraud stream (from the same file or topic as the
//! transactions, or a second source). The changes go to one keyed stage (`RuleStage`, one key:
//! one worker), which applies them in event-time order to the book it holds — ordinary keyed
//! state, so it is checkpointed and restored with the rest — and sends each new version to every
//! worker. There a [`RuleBook`] files the versions by the time they apply from, and the account
//! stages look up the version in force at each transaction's time.
//!
//! **Exactly at its time.** The versions reach a worker's book through an operator whose
//! (empty) output is joined to the account stage's input ([`with_rule_book`]), so the
//! account stage's frontier passes a time only once every version stamped at or before it is in
//! the book. A change is stamped at its event time's stamp (ingest rounds down) and applies to
//! transactions at or after its time, which are stamped no earlier: every transaction sees
//! exactly the changes before it. A change read after the watermark has passed its stamp could
//! no longer apply exactly: it is a dead letter (`late`), not applied to some transactions and
//! not others.
//!
//! **Restore.** The stage's restored book is sent again once, at the time the run resumes from,
//! so every worker's book is what it was when the checkpoint was taken.

use super::model::{FraudEvent, RuleChange};
use super::rules::Rules;
use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::operators::ingested::Ingested;
use crate::operators::keyed::{keyed_options, Emit, KeyedLogic};
use crate::operators::{split, KeyedCore};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::{Broadcast, Map};
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// One worker's rule versions: the one in force now and later ones by the time each applies
/// from.
#[derive(Debug)]
pub struct RuleBook {
    /// In force until the first of `later`.
    current: Rc<Rules>,
    later: BTreeMap<EventTime, Rc<Rules>>,
}

impl RuleBook {
    /// A book holding `initial` from the beginning of time.
    pub fn new(initial: Rules) -> Self {
        RuleBook {
            current: Rc::new(initial),
            later: BTreeMap::new(),
        }
    }

    /// The rules in force at `time` (no earlier than the last [`RuleBook::advance`]).
    pub fn at(&self, time: EventTime) -> &Rules {
        self.later
            .range(..=time)
            .next_back()
            .map_or(&self.current, |(_, rules)| rules)
    }

    /// Files a version applying from `from`.
    fn insert(&mut self, from: EventTime, rules: Rules) {
        self.later.insert(from, Rc::new(rules));
    }

    /// Moves to `time`: versions no transaction at or after it can need are forgotten.
    pub fn advance(&mut self, time: EventTime) {
        while let Some(entry) = self.later.first_entry().filter(|e| *e.key() <= time) {
            self.current = entry.remove();
        }
    }
}

/// The rule stage's state: the book after every change applied so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Book {
    /// The rules now (`None`: no change yet, the initial book).
    rules: Option<Rules>,
    /// Not written to checkpoints: a restored book is sent once, at the resume time.
    #[serde(skip)]
    sent: bool,
}

/// A rule version for the workers' books: the rules, and the time they apply from.
pub type Version = (EventTime, Rules);

/// What the rule stage emits.
#[derive(Clone, Debug)]
enum Applied {
    /// A new version of the book.
    Version(Version),
    /// A change whose keys or values the book does not take, and why.
    Rejected(RuleChange, String),
}

/// The keyed stage that applies rule changes in event-time order.
struct RuleStage {
    initial: Rules,
    granularity: EventTime,
}

impl KeyedLogic for RuleStage {
    type Record = RuleChange;
    type Key = ();
    type State = Book;
    type Pending = Vec<RuleChange>;
    type Output = Applied;

    fn key(&self, _: &RuleChange) {}

    fn too_late(&self, c: &RuleChange, stamp: EventTime) -> Option<String> {
        let own = c.time - c.time % self.granularity.max(1);
        (stamp > own).then(|| {
            format!(
                "rule change effective at {} was read after the watermark passed it ({stamp}): publish changes ahead of their time",
                c.time
            )
        })
    }

    fn stash(&self, pending: &mut Vec<RuleChange>, c: RuleChange) {
        pending.push(c);
    }

    fn apply(
        &self,
        _: &(),
        book: &mut Book,
        mut pending: Vec<RuleChange>,
        out: &mut Emit<'_, Applied>,
    ) {
        // In time order; changes at the same time in an order that does not depend on arrival.
        pending.sort_by(|a, b| (a.time, a.rule, &a.set).cmp(&(b.time, b.rule, &b.set)));
        for c in pending {
            let now = book.rules.as_ref().unwrap_or(&self.initial);
            match now.with_change(c.rule, &c.set) {
                Ok(next) => {
                    out.give(Applied::Version((c.time, next.clone())));
                    book.rules = Some(next);
                }
                // An unknown key, a value of the wrong type or out of range: the book is
                // unchanged and the change is a dead letter.
                Err(e) => out.give(Applied::Rejected(c, e)),
            }
        }
        book.sent = true;
    }

    fn next_due(&self, book: &Book) -> Option<EventTime> {
        // A restored book not yet sent is due at once.
        (!book.sent && book.rules.is_some()).then_some(0)
    }

    fn on_due(&self, _: &(), book: &mut Book, out: &mut Emit<'_, Applied>) {
        if let Some(rules) = &book.rules {
            out.give(Applied::Version((out.now(), rules.clone())));
        }
        book.sent = true;
    }

    fn is_done(&self, book: &Book) -> bool {
        book.rules.is_none()
    }
}

/// A fraud stream with its rule changes taken out and applied to a rule book.
pub struct Ruled<'s> {
    /// The other records, held back (by their frontier) until the rule versions up to a time
    /// are in this worker's book: the account stage's input.
    pub events: StreamVec<'s, EventTime, Ingested<FraudEvent>>,
    /// This worker's book.
    pub book: Rc<RefCell<RuleBook>>,
    /// Changes too late to apply exactly (`late`) or that the book does not take
    /// (`invalid_event`).
    pub dead: StreamVec<'s, EventTime, DeadLetter>,
}

/// Takes the rule changes out of `events` and applies them to a book starting from `initial`,
/// through the rule stage `name`; `granularity` is the source's stamping granularity (ms).
pub fn with_rule_book<'s>(
    events: StreamVec<'s, EventTime, Ingested<FraudEvent>>,
    initial: Rules,
    granularity: EventTime,
    name: &str,
) -> Ruled<'s> {
    // Split, not cloned: each record goes one way.
    let [events, changes] = split(events, |e| {
        usize::from(matches!(e.record, FraudEvent::Rule(_)))
    });
    let changes = changes.flat_map(|e| e.record.into_rule_change());
    let stage = RuleStage {
        initial: initial.clone(),
        granularity,
    };
    let (applied, late) = changes.keyed(name, stage, keyed_options(name));
    let [versions, rejected] = split(applied, |a| usize::from(matches!(a, Applied::Rejected(..))));
    let operator = name.to_string();
    let rejected = rejected.flat_map(move |a| match a {
        Applied::Rejected(change, why) => Some(DeadLetter::new(
            Origin::Operator {
                operator: operator.clone(),
            },
            Reason::InvalidEvent,
            format!("rule change at {} not applied: {why}", change.time),
            &serde_json::to_vec(&FraudEvent::Rule(change)).unwrap_or_default(),
        )),
        Applied::Version(_) => None,
    });
    let versions = versions.flat_map(|a| match a {
        Applied::Version(v) => Some(v),
        Applied::Rejected(..) => None,
    });
    let book = Rc::new(RefCell::new(RuleBook::new(initial)));
    let filed = Rc::clone(&book);
    // Files the versions; its output is empty, and its frontier is the versions' frontier.
    let gate = versions
        .broadcast()
        .unary::<CapacityContainerBuilder<Vec<Ingested<FraudEvent>>>, _, _, _>(
            Pipeline,
            &format!("{name}.file"),
            move |_, _| {
                move |input, _output| {
                    input.for_each(|_, batch| {
                        let mut book = filed.borrow_mut();
                        for (from, rules) in batch.drain(..) {
                            book.insert(from, rules);
                        }
                    });
                }
            },
        );
    Ruled {
        events: events.concat(gate),
        book,
        dead: late.concat(rejected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_book_answers_with_the_version_in_force() {
        let mut book = RuleBook::new(Rules::default());
        let strict = Rules::default()
            .with_change(super::super::rules::Rule::Velocity, r#"{"max_count":2}"#)
            .unwrap();
        book.insert(1_000, strict.clone());
        assert_eq!(book.at(999).velocity.max_count, 8);
        assert_eq!(book.at(1_000), &strict);
        book.advance(500);
        assert_eq!(book.at(999).velocity.max_count, 8, "still in force at 999");
        book.advance(1_000);
        assert!(book.later.is_empty(), "the initial version is forgotten");
        assert_eq!(book.at(5_000), &strict);
    }
}
