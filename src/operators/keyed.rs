//! The shared skeleton of Sluice's keyed event-time operators (windows, sessions, counts): how
//! they route records, reject late ones, and move their capabilities forward.
//!
//! Each such operator has one input exchanged by key, a results output whose capability is held
//! at the earliest time it may still emit at, and a dead-letter output for late records.

use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::time::EventTime;
use serde::Serialize;
use std::collections::hash_map::DefaultHasher;
use std::hash::{BuildHasher, BuildHasherDefault, Hash};
use std::rc::Rc;
use timely::communication::Pull;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::channels::Message;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{InputHandleCore, OutputBuilder};
use timely::dataflow::operators::Capability;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// The hash a keyed operator routes a record's key by (the same on every worker and process).
pub fn route_hash<K: Hash>(key: &K) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
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

/// After an activation: holds the results capability at the earlier of `next_output` (the
/// earliest pending result) and the input `frontier`, the dead-letter capability at the
/// frontier, and drops both once the frontier is empty (`None`).
pub fn advance(
    frontier: Option<EventTime>,
    next_output: Option<EventTime>,
    results: &mut Option<Capability<EventTime>>,
    late: &mut Option<Capability<EventTime>>,
) {
    let Some(f) = frontier else {
        *results = None;
        *late = None;
        return;
    };
    if let Some(cap) = results.as_mut() {
        let next = next_output.map_or(f, |n| n.min(f));
        if next > *cap.time() {
            cap.downgrade(&next);
        }
    }
    if let Some(cap) = late.as_mut() {
        if f > *cap.time() {
            cap.downgrade(&f);
        }
    }
}

/// The ports of a keyed operator: its builder, its input (exchanged by key), and its results
/// and dead-letter outputs with their streams.
pub struct KeyedPorts<'s, R, O: 'static, P: Pull<Message<EventTime, Vec<R>>>> {
    /// The operator under construction.
    pub builder: OperatorBuilder<'s, EventTime>,
    /// Records, routed to the worker of their key.
    pub input: InputHandleCore<EventTime, Vec<R>, P>,
    /// The results output.
    pub results_out: OutputBuilder<EventTime, CapacityContainerBuilder<Vec<O>>>,
    /// The dead-letter output.
    pub late_out: OutputBuilder<EventTime, CapacityContainerBuilder<Vec<DeadLetter>>>,
    /// The results stream.
    pub results: StreamVec<'s, EventTime, O>,
    /// The dead-letter stream.
    pub late: StreamVec<'s, EventTime, DeadLetter>,
}

/// Sets up a keyed operator named `name` on `stream`, routing records by `route_hash(key(r))`.
pub fn keyed_ports<'s, R, K, O>(
    stream: StreamVec<'s, EventTime, R>,
    name: &str,
    key: Rc<impl Fn(&R) -> K + 'static>,
) -> KeyedPorts<'s, R, O, impl Pull<Message<EventTime, Vec<R>>>>
where
    R: ExchangeData,
    K: Hash,
    O: 'static,
{
    let mut builder = OperatorBuilder::new(name.to_owned(), stream.scope());
    let input = builder.new_input(stream, Exchange::new(move |r: &R| route_hash(&key(r))));
    let (results_out, results) = builder.new_output::<Vec<O>>();
    let (late_out, late) = builder.new_output::<Vec<DeadLetter>>();
    KeyedPorts {
        builder,
        input,
        results_out: OutputBuilder::from(results_out),
        late_out: OutputBuilder::from(late_out),
        results,
        late,
    }
}
