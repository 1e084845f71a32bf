//! # fraud_rules — rule alerts per account, in event time
//!
//! **Asks:** which transactions break one of the account rules — small then large (Flink's
//! walkthrough), velocity, amount anomaly, impossible travel, new country — and how badly?
//! One row per alerting transaction: `id, account, time, amount, rules, score, seen` (the
//! account's state the rules saw: transactions before, mean, standard deviation, window count
//! and sum, speed from the last card-present transaction), `latency_ms` (wall clock from when
//! the pipeline received the transaction to the alert).
//!
//! **Illustrates:** stateful per-key logic where order matters, on the keyed event-time core:
//! transactions wait for the watermark, then each account's are checked in event-time order
//! (ties by id), so the alerts are the same at any worker or process count and whatever the
//! arrival order within the allowed delay. Rules are data: the book starts from
//! `--param rules=FILE` (TOML) and rule-change records in the stream switch rules on or off and
//! change their parameters, each from its own event time — exactly, at any worker count
//! ([`rulebook`](crate::fraud::rulebook)). Labels in the stream are not used here.
//!
//! **Windows and state:** per account ([`Rules`](crate::fraud::rules::Rules)): running mean and
//! variance, the transactions of the last ten minutes (velocity; the small-then-large minute),
//! the last card-present place, the countries used and the last 32 merchants. Kept while the
//! account is active; with `--state-ttl D` an account idle for D of event time is forgotten.
//! A transaction behind the watermark is a dead letter (`late`): checking it out of order would
//! change what the rules saw.

use crate::fraud::model::{FraudEvent, Transaction};
use crate::fraud::params;
use crate::fraud::rulebook::{with_rule_book, RuleBook};
use crate::fraud::rules::{Account, Alert};
use crate::operators::ingested::{latency_ms, wall_clock_us, Ingested};
use crate::operators::keyed::{keyed_options, Emit, KeyedLogic};
use crate::operators::KeyedCore;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// The rules over each account's transactions, as a keyed logic.
pub struct AccountRules {
    /// The rule versions on this worker.
    pub book: Rc<RefCell<RuleBook>>,
    /// Idle accounts are forgotten after this long, if set.
    pub ttl: Option<EventTime>,
}

/// An alert with its ingest-to-alert latency.
#[derive(Clone, Debug, Serialize)]
pub struct TimedAlert {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// Wall-clock ms from when the pipeline received the transaction to the alert.
    pub latency_ms: f64,
}

impl KeyedLogic for AccountRules {
    type Record = Ingested<Transaction>;
    type Key = u64;
    type State = Account;
    /// A stamp's transactions, checked in event-time order when it is applied.
    type Pending = Vec<Ingested<Transaction>>;
    type Output = TimedAlert;

    fn key(&self, t: &Ingested<Transaction>) -> u64 {
        t.record.account
    }

    fn too_late(&self, t: &Ingested<Transaction>, stamp: EventTime) -> Option<String> {
        let time = t.record.time;
        (time < stamp).then(|| {
            format!("event time {time} is behind the rules' frontier {stamp}: the account has moved on")
        })
    }

    fn stash(&self, pending: &mut Vec<Ingested<Transaction>>, t: Ingested<Transaction>) {
        pending.push(t);
    }

    fn apply(
        &self,
        _: &u64,
        account: &mut Account,
        mut pending: Vec<Ingested<Transaction>>,
        out: &mut Emit<'_, TimedAlert>,
    ) {
        pending.sort_by_key(|t| (t.record.time, t.record.id));
        let mut book = self.book.borrow_mut();
        book.advance(out.now());
        for t in &pending {
            if let Some(alert) = book.at(t.record.time).check(account, &t.record) {
                let latency_ms = latency_ms(t.at_us, wall_clock_us());
                out.give(TimedAlert { alert, latency_ms });
            }
        }
    }

    fn next_due(&self, account: &Account) -> Option<EventTime> {
        let ttl = self.ttl?;
        (account.count > 0).then(|| account.last.saturating_add(ttl))
    }

    fn on_due(&self, _: &u64, account: &mut Account, out: &mut Emit<'_, TimedAlert>) {
        if self.ttl.is_some_and(|ttl| account.last.saturating_add(ttl) <= out.now()) {
            *account = Account::default();
        }
    }

    fn is_done(&self, account: &Account) -> bool {
        account.count == 0
    }

    /// Forgetting is for accounts that went quiet, which the end of an input does not show.
    const DUE_AT_END: bool = false;
}

fn build<'s>(events: StreamVec<'s, EventTime, FraudEvent>, ctx: &mut Context<'s>) {
    let name = "fraud_rules.per_account";
    let granularity = ctx.policy().granularity_ms;
    let events = Ingested::stamp(events);
    let ruled = with_rule_book(events, params::rules(ctx), granularity, "fraud_rules.rules");
    let logic = AccountRules {
        book: ruled.book,
        ttl: ctx.state_ttl(),
    };
    let (alerts, late) = ruled
        .events
        .flat_map(|e| e.record.into_transaction().map(|t| Ingested::new(t, e.at_us)))
        .keyed(name, logic, keyed_options(name));
    ctx.dead_letter(late.concat(ruled.dead));
    ctx.emit(alerts);
}

/// Registry entry.
pub const QUERY: Pipeline<FraudEvent> = Pipeline {
    name: "fraud_rules",
    description: "rule alerts per account: small then large, velocity, amount anomaly, impossible travel, new country",
    columns: &["id", "account", "time", "amount", "rules", "score", "seen", "latency_ms"],
    writes_files: false,
    params: &[params::RULES],
    build,
};
