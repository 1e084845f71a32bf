//! Fraud detection as a dataflow: per-account rules and features, an online model trained from
//! the delayed labels, and a decision per transaction — deterministic at any worker count.
//!
//! Three stages:
//! 1. **Accounts** ([`Accounts`], keyed by account on the keyed core): each account's transactions
//!    and labels in event-time order (at equal times labels first, then by id). A transaction is
//!    assessed by the [rules](super::rules), its [features] computed and kept until its label
//!    arrives; a label joins its transaction's features into a training [`Example`]. A label that
//!    comes before its transaction waits for it; a label for a transaction the account never
//!    had (within [`LABEL_WAIT_MS`]) or a second label is a dead letter (`unmatched`); features
//!    not labelled within `LABEL_WAIT_MS` are dropped.
//! 2. **Trainer** ([`Trainer`], one key: one worker): the examples of each stamp, in (label
//!    time, id) order, are learned by the [`Logistic`] model; after each stamp `s` that taught it
//!    something, a copy goes to every worker, stamped `s + 1`. A model restored from a
//!    checkpoint is published once at the resume time, so scoring goes on as if never stopped.
//! 3. **Scoring** ([`score`]): a transaction stamped `s` is scored by the model that has learned
//!    every example of the stamps before `s` — prequential: scored before it is learned from,
//!    never with a label from its own future. Decision: the larger of the model's probability
//!    and the rules' score against [`Thresholds`] — the rules' score alone until the model has
//!    learned [`MODEL_WARMUP`] examples.
//!
//! [features]: super::features

use super::features::{features, COUNT};
use super::learner::Logistic;
use super::model::{FraudEvent, Label, Transaction};
use super::rulebook::{with_rule_book, RuleBook};
use super::rules::{Account, Rule, Rules};
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

/// How long, in event time, a transaction's features wait for its label (and a label for its
/// transaction): seven days.
pub const LABEL_WAIT_MS: EventTime = 7 * 86_400_000;

/// Examples the model must have learned before its score counts in a decision: an untrained
/// model says 0.5 for everything (review, at the default thresholds), so until then the rules
/// alone decide. Its score is written either way.
pub const MODEL_WARMUP: u64 = 1_000;

/// A transaction's features, kept until its label comes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Awaiting {
    id: u64,
    time: EventTime,
    x: [f64; COUNT],
}

/// An account's rules state, features awaiting labels, and labels awaiting transactions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountState {
    rules: Account,
    awaiting: Vec<Awaiting>,
    early: Vec<Label>,
    /// Ids labelled lately (a second label for one is a dead letter), with the label's time.
    labelled: Vec<(u64, EventTime)>,
}

/// A transaction assessed by the rules, with its features, waiting to be scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessed {
    /// The transaction.
    pub id: u64,
    /// Its account.
    pub account: u64,
    /// Its event time.
    pub time: EventTime,
    /// Its amount.
    pub amount: f64,
    /// The rules it fired.
    pub rules: Vec<Rule>,
    /// The rules' score.
    pub rules_score: f64,
    /// Its features.
    pub x: [f64; COUNT],
    /// When the pipeline received it ([`Ingested`]).
    pub ingested_us: u64,
}

/// A labelled transaction's features, for the trainer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The transaction.
    pub id: u64,
    /// When its label became known.
    pub label_time: EventTime,
    /// Its features.
    pub x: [f64; COUNT],
    /// Whether it was fraud.
    pub fraud: bool,
}

/// What the account stage emits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Staged {
    /// A transaction to score.
    Assessed(Assessed),
    /// A training example.
    Example(Example),
    /// A label that matched nothing, and why.
    Unmatched(Label, String),
}

/// The account stage.
pub struct Accounts {
    /// The rule versions on this worker.
    pub book: Rc<RefCell<RuleBook>>,
}

impl Accounts {
    fn label(&self, state: &mut AccountState, label: Label, out: &mut Emit<'_, Staged>) {
        if let Some(&(_, at)) = state.labelled.iter().find(|(id, _)| *id == label.id) {
            let why = format!("transaction {} was labelled already (at {at})", label.id);
            out.give(Staged::Unmatched(label, why));
        } else if let Some(i) = state.awaiting.iter().position(|a| a.id == label.id) {
            let a = state.awaiting.swap_remove(i);
            state.labelled.push((label.id, label.time));
            out.give(Staged::Example(Example {
                id: a.id,
                label_time: label.time,
                x: a.x,
                fraud: label.fraud,
            }));
        } else if state.early.iter().any(|l| l.id == label.id) {
            let why = format!("a second label for transaction {}", label.id);
            out.give(Staged::Unmatched(label, why));
        } else {
            state.early.push(label);
        }
    }

    fn transaction(
        &self,
        state: &mut AccountState,
        t: Transaction,
        ingested_us: u64,
        out: &mut Emit<'_, Staged>,
    ) {
        let assessment = self.book.borrow().at(t.time).assess(&mut state.rules, &t);
        let x = features(&t, &assessment);
        if let Some(i) = state.early.iter().position(|l| l.id == t.id) {
            // Its label came first: it is an example at once, at the transaction's time.
            let label = state.early.swap_remove(i);
            state.labelled.push((t.id, t.time));
            out.give(Staged::Example(Example {
                id: t.id,
                label_time: t.time,
                x,
                fraud: label.fraud,
            }));
        } else {
            state.awaiting.push(Awaiting {
                id: t.id,
                time: t.time,
                x,
            });
        }
        out.give(Staged::Assessed(Assessed {
            id: t.id,
            account: t.account,
            time: t.time,
            amount: t.amount,
            rules: assessment.rules,
            rules_score: assessment.score,
            x,
            ingested_us,
        }));
    }
}

/// Orders an account's records: by time, labels before transactions at equal times, then id.
fn order(e: &Ingested<FraudEvent>) -> (EventTime, u8, u64) {
    match &e.record {
        FraudEvent::Label(l) => (l.time, 0, l.id),
        FraudEvent::Transaction(t) => (t.time, 1, t.id),
        // Never here: rule changes go to the rule stage.
        FraudEvent::Rule(c) => (c.time, 2, 0),
    }
}

impl KeyedLogic for Accounts {
    type Record = Ingested<FraudEvent>;
    type Key = u64;
    type State = AccountState;
    type Pending = Vec<Ingested<FraudEvent>>;
    type Output = Staged;

    fn key(&self, e: &Ingested<FraudEvent>) -> u64 {
        e.record.account()
    }

    fn too_late(&self, e: &Ingested<FraudEvent>, stamp: EventTime) -> Option<String> {
        crate::operators::keyed::behind(order(e).0, stamp, "account stage")
    }

    fn stash(&self, pending: &mut Vec<Ingested<FraudEvent>>, e: Ingested<FraudEvent>) {
        pending.push(e);
    }

    fn apply(
        &self,
        _: &u64,
        state: &mut AccountState,
        mut pending: Vec<Ingested<FraudEvent>>,
        out: &mut Emit<'_, Staged>,
    ) {
        self.book.borrow_mut().advance(out.now());
        pending.sort_by_key(order);
        for e in pending {
            match e.record {
                FraudEvent::Label(l) => self.label(state, l, out),
                FraudEvent::Transaction(t) => self.transaction(state, t, e.at_us, out),
                FraudEvent::Rule(_) => {}
            }
        }
    }

    fn next_due(&self, state: &AccountState) -> Option<EventTime> {
        let features = state.awaiting.iter().map(|a| a.time);
        let labels = state.early.iter().map(|l| l.time);
        let labelled = state.labelled.iter().map(|(_, t)| *t);
        features
            .chain(labels)
            .chain(labelled)
            .min()
            .map(|t| t.saturating_add(LABEL_WAIT_MS))
    }

    fn on_due(&self, _: &u64, state: &mut AccountState, out: &mut Emit<'_, Staged>) {
        let now = out.now();
        let live = |t: EventTime| t.saturating_add(LABEL_WAIT_MS) > now;
        state.awaiting.retain(|a| live(a.time));
        state.labelled.retain(|(_, t)| live(*t));
        for label in std::mem::take(&mut state.early) {
            if live(label.time) {
                state.early.push(label);
            } else {
                let why = format!(
                    "no transaction {} within {LABEL_WAIT_MS} ms of its label",
                    label.id
                );
                out.give(Staged::Unmatched(label, why));
            }
        }
    }

    fn is_done(&self, _: &AccountState) -> bool {
        // An account's history is its rules' baseline: kept.
        false
    }

    /// A label still waiting at the end of the input is not known to be unmatched.
    const DUE_AT_END: bool = false;
}

/// The trainer's state: the model, and whether this run has published it yet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Training {
    model: Logistic,
    /// Not written to checkpoints: a restored model is published once, at the resume time, so
    /// the scorers' copies are what they were.
    #[serde(skip)]
    published: bool,
}

/// The trainer: one model, learning each stamp's examples in order. The version that has learned
/// stamp `s` is published at `s + 1`: the model for transactions of later stamps.
pub struct Trainer;

impl KeyedLogic for Trainer {
    type Record = Example;
    type Key = ();
    type State = Training;
    type Pending = Vec<Example>;
    /// A model version, at the first stamp it is for.
    type Output = Logistic;

    fn key(&self, _: &Example) {}

    fn too_late(&self, _: &Example, _: EventTime) -> Option<String> {
        // Examples are stamped by the account stage, never behind its frontier.
        None
    }

    fn stash(&self, pending: &mut Vec<Example>, e: Example) {
        pending.push(e);
    }

    fn apply(
        &self,
        _: &(),
        t: &mut Training,
        mut pending: Vec<Example>,
        out: &mut Emit<'_, Logistic>,
    ) {
        pending.sort_by_key(|e| (e.label_time, e.id));
        for e in &pending {
            t.model.learn(&e.x, e.fraud);
        }
        if !pending.is_empty() {
            out.give_at(out.now().saturating_add(1), t.model.clone());
        }
        t.published = true;
    }

    fn next_due(&self, t: &Training) -> Option<EventTime> {
        // A restored model not yet published is due at once.
        (!t.published).then_some(0)
    }

    fn on_due(&self, _: &(), t: &mut Training, out: &mut Emit<'_, Logistic>) {
        out.give(t.model.clone());
        t.published = true;
    }

    fn is_done(&self, _: &Training) -> bool {
        false
    }
}

/// Where a decision puts a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Goes through.
    Allow,
    /// Goes through, and to an analyst.
    Review,
    /// Stopped.
    Block,
}

/// Risk at or above which a transaction is reviewed, or blocked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Review from this risk.
    pub review: f64,
    /// Block from this risk.
    pub block: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            review: 0.5,
            block: 0.85,
        }
    }
}

/// A scored transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// The transaction.
    pub id: u64,
    /// Its account.
    pub account: u64,
    /// Its event time.
    pub time: EventTime,
    /// Its amount.
    pub amount: f64,
    /// The decision.
    pub decision: Decision,
    /// The larger of `model_score` and `rules_score`.
    pub risk: f64,
    /// The model's probability of fraud.
    pub model_score: f64,
    /// The rules' score.
    pub rules_score: f64,
    /// The rules fired.
    pub rules: Vec<Rule>,
    /// Examples the model had learned.
    pub model_examples: u64,
    /// The features it was scored on (written by `fraud_scores` only, as `features`).
    #[serde(skip)]
    pub features: [f64; COUNT],
    /// When the pipeline received the transaction ([`Ingested`]; the `fraud` pipeline writes
    /// the latency from it).
    #[serde(skip)]
    pub ingested_us: u64,
}

/// The columns of every [`Scored`] row.
const SCORED_COLUMNS: [&str; 10] = [
    "id",
    "account",
    "time",
    "amount",
    "decision",
    "risk",
    "model_score",
    "rules_score",
    "rules",
    "model_examples",
];

/// The [`Scored`] columns and one more.
const fn scored_columns_and(last: &'static str) -> [&'static str; 11] {
    let mut columns = [last; 11];
    let mut i = 0;
    while i < SCORED_COLUMNS.len() {
        columns[i] = SCORED_COLUMNS[i];
        i += 1;
    }
    columns
}

/// The output columns of a [`Scored`] row with its features (`fraud_scores`).
pub const SCORED_COLUMNS_WITH_FEATURES: &[&str] = &scored_columns_and("features");

/// The output columns of a [`Scored`] row with its ingest-to-decision latency in ms (the
/// `fraud` pipeline's alerts).
pub const SCORED_COLUMNS_WITH_LATENCY: &[&str] = &scored_columns_and("latency_ms");

/// Scores each assessed transaction stamped `s` with the latest model version stamped at or
/// before `s`, once the model stream has passed `s` (no version for `s` can come any more).
pub fn score<'s>(
    assessed: StreamVec<'s, EventTime, Assessed>,
    models: StreamVec<'s, EventTime, Logistic>,
    thresholds: Thresholds,
) -> StreamVec<'s, EventTime, Scored> {
    let models = models.broadcast();
    assessed.binary_frontier::<_, CapacityContainerBuilder<Vec<Scored>>, _, _, _, _>(
        models,
        Pipeline,
        Pipeline,
        "fraud.score",
        move |cap, _info| {
            let mut held = Some(cap);
            let mut waiting: BTreeMap<EventTime, Vec<Assessed>> = BTreeMap::new();
            let mut versions: BTreeMap<EventTime, Logistic> = BTreeMap::new();
            let untrained = Logistic::default();
            move |(input, frontier), (model_input, model_frontier), output| {
                input.for_each(|stamp, batch| {
                    let t = stamp.least().copied().unwrap_or(0);
                    waiting.entry(t).or_default().append(batch);
                });
                model_input.for_each(|stamp, batch| {
                    let t = stamp.least().copied().unwrap_or(0);
                    if let Some(model) = batch.pop() {
                        versions.insert(t, model);
                    }
                    batch.clear();
                });
                let models_done_below = model_frontier
                    .frontier()
                    .first()
                    .copied()
                    .unwrap_or(EventTime::MAX);
                if let Some(cap) = held.as_mut() {
                    while let Some(entry) = waiting
                        .first_entry()
                        .filter(|e| *e.key() < models_done_below)
                    {
                        let s = *entry.key();
                        let model = versions
                            .range(..=s)
                            .next_back()
                            .map_or(&untrained, |(_, m)| m);
                        let at = cap.delayed(&s);
                        let mut session = output.session(&at);
                        for a in entry.remove() {
                            let model_score = model.score(&a.x);
                            let risk = if model.learned >= MODEL_WARMUP {
                                model_score.max(a.rules_score)
                            } else {
                                a.rules_score
                            };
                            let decision = if risk >= thresholds.block {
                                Decision::Block
                            } else if risk >= thresholds.review {
                                Decision::Review
                            } else {
                                Decision::Allow
                            };
                            session.give(Scored {
                                id: a.id,
                                account: a.account,
                                time: a.time,
                                amount: a.amount,
                                decision,
                                risk,
                                model_score,
                                rules_score: a.rules_score,
                                rules: a.rules,
                                model_examples: model.learned,
                                features: a.x,
                                ingested_us: a.ingested_us,
                            });
                        }
                    }
                }
                // Versions older than the newest one at or below every stamp to come are done.
                let next = frontier
                    .frontier()
                    .first()
                    .copied()
                    .unwrap_or(EventTime::MAX);
                let low = waiting.keys().next().copied().unwrap_or(next).min(next);
                while versions.range(..=low).nth(1).is_some() {
                    versions.pop_first();
                }
                let hold = low.min(models_done_below);
                if hold == EventTime::MAX {
                    held = None;
                } else if let Some(cap) = held.as_mut() {
                    if *cap.time() < hold {
                        cap.downgrade(&hold);
                    }
                }
            }
        },
    )
}

/// The whole detection dataflow, over records stamped with their ingest time
/// ([`Ingested::stamp`]): scored transactions and dead letters (unmatched labels, late records,
/// late rule changes). `rules` is the rule book at the start; rule changes in the
/// stream change it from their event time on; `granularity` is the source's stamping
/// granularity (ms).
pub fn detect<'s>(
    events: StreamVec<'s, EventTime, Ingested<FraudEvent>>,
    rules: Rules,
    thresholds: Thresholds,
    granularity: EventTime,
) -> (
    StreamVec<'s, EventTime, Scored>,
    StreamVec<'s, EventTime, DeadLetter>,
) {
    let name = "fraud.accounts";
    let ruled = with_rule_book(events, rules, granularity, "fraud.rules");
    let accounts = Accounts { book: ruled.book };
    let (staged, late) = ruled.events.keyed(name, accounts, keyed_options(name));
    let [assessed, examples, unmatched] = split(staged, |s| match s {
        Staged::Assessed(_) => 0,
        Staged::Example(_) => 1,
        Staged::Unmatched(..) => 2,
    });
    let assessed = assessed.flat_map(|s| match s {
        Staged::Assessed(a) => Some(a),
        _ => None,
    });
    let examples = examples.flat_map(|s| match s {
        Staged::Example(e) => Some(e),
        _ => None,
    });
    let unmatched = unmatched.flat_map(move |s| match s {
        Staged::Unmatched(label, why) => Some(DeadLetter::new(
            Origin::Operator {
                operator: name.to_string(),
            },
            Reason::Unmatched,
            why,
            &serde_json::to_vec(&FraudEvent::Label(label)).unwrap_or_default(),
        )),
        _ => None,
    });
    let trainer = "fraud.trainer";
    let (models, _never_late) = examples.keyed(trainer, Trainer, keyed_options(trainer));
    let scored = score(assessed, models, thresholds);
    (scored, late.concat(unmatched).concat(ruled.dead))
}
