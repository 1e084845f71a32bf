//! Gathering everything that belongs to one window on one worker, then deciding on it once.
//!
//! [`GatherWindows::gather_windows`] keys each record by the end of its window, keeps a window's
//! records until every record stamped at or before its end has arrived, and then hands them all
//! to `decide`, whose output is stamped just after the window's end. It is the second stage of
//! queries that compare across keys within a window: "the auctions with the most bids" (q5), "the
//! bids at the window's highest price" (q7).
//!
//! It is a [`KeyedLogic`] on the keyed core (key: the window end; state: the window's records),
//! so it is ordered, checkpointable and re-routable like every keyed operator. A window's
//! records are dropped once decided.

use super::keyed::keyed_options;
use super::keyed::{Emit, KeyedCore, KeyedLogic};
use crate::time::EventTime;
use std::cell::RefCell;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// One window's records so far.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gathered<R> {
    /// The window's end (also its key).
    pub end: EventTime,
    /// The records so far.
    pub records: Vec<R>,
}

impl<R> Default for Gathered<R> {
    fn default() -> Self {
        Gathered {
            end: 0,
            records: Vec::new(),
        }
    }
}

/// Per-window gathering as a [`KeyedLogic`].
pub struct GatherLogic<R, O, E, D> {
    end: E,
    decide: RefCell<D>,
    _types: std::marker::PhantomData<fn(R) -> O>,
}

impl<R, O, I, E, D> KeyedLogic for GatherLogic<R, O, E, D>
where
    R: ExchangeData + Clone + serde::Serialize,
    O: Clone + 'static,
    I: IntoIterator<Item = O>,
    E: Fn(&R) -> EventTime + 'static,
    D: FnMut(EventTime, Vec<R>) -> I + 'static,
{
    type Record = R;
    type Key = EventTime;
    type State = Gathered<R>;
    type Pending = Vec<R>;
    type Output = O;

    fn key(&self, record: &R) -> EventTime {
        (self.end)(record)
    }

    fn too_late(&self, _record: &R, _stamp: EventTime) -> Option<String> {
        None
    }

    fn stash(&self, pending: &mut Vec<R>, record: R) {
        pending.push(record);
    }

    fn apply(
        &self,
        end: &EventTime,
        state: &mut Gathered<R>,
        pending: Vec<R>,
        _out: &mut Emit<'_, O>,
    ) {
        state.end = *end;
        state.records.extend(pending);
    }

    fn next_due(&self, state: &Gathered<R>) -> Option<EventTime> {
        // Due once every record stamped at the window's end is in.
        (!state.records.is_empty()).then_some(state.end + 1)
    }

    fn on_due(&self, end: &EventTime, state: &mut Gathered<R>, out: &mut Emit<'_, O>) {
        let records = std::mem::take(&mut state.records);
        for o in (self.decide.borrow_mut())(*end, records) {
            out.give(o);
        }
    }

    fn is_done(&self, state: &Gathered<R>) -> bool {
        state.records.is_empty()
    }
}

/// Gathers records by window and decides on each window once it is complete.
pub trait GatherWindows<'s, R> {
    /// `end(r)` names the window of `r` by its end; records must be stamped at or before it.
    /// `decide(end, records)` runs once per window, after every record stamped at or before
    /// `end` was gathered.
    fn gather_windows<O, I>(
        self,
        name: &str,
        end: impl Fn(&R) -> EventTime + 'static,
        decide: impl FnMut(EventTime, Vec<R>) -> I + 'static,
    ) -> StreamVec<'s, EventTime, O>
    where
        O: Clone + 'static,
        I: IntoIterator<Item = O>;
}

impl<'s, R: ExchangeData + Clone + serde::Serialize> GatherWindows<'s, R>
    for StreamVec<'s, EventTime, R>
{
    fn gather_windows<O, I>(
        self,
        name: &str,
        end: impl Fn(&R) -> EventTime + 'static,
        decide: impl FnMut(EventTime, Vec<R>) -> I + 'static,
    ) -> StreamVec<'s, EventTime, O>
    where
        O: Clone + 'static,
        I: IntoIterator<Item = O>,
    {
        let logic = GatherLogic {
            end,
            decide: RefCell::new(decide),
            _types: std::marker::PhantomData,
        };
        // Nothing is ever too late for a gather: its dead-letter stream stays empty.
        let (decided, _never) = self.keyed(name, logic, keyed_options(name));
        decided
    }
}
