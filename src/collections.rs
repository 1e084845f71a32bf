//! Incremental state on differential dataflow: turning event streams into collections of
//! updates (`(record, time, diff)`), and update streams back into output rows with a `diff`.
//!
//! Queries whose results change as data arrives (joins without windows, aggregates over
//! everything so far, top-k) keep their state in differential arrangements, which compact as the
//! frontier advances and are held only by the operators that use them (no trace handle is
//! kept outside the dataflow, so nothing stops compaction). Each record enters at its stamp (at
//! most its event time, never below the watermark), so records do not sit far ahead of their
//! message time.

use crate::time::EventTime;
use differential_dataflow::{AsCollection, VecCollection};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

/// The diff type of Sluice's collections.
pub type Diff = isize;

/// A collection of records at event-time stamps.
pub type Updates<'s, D> = VecCollection<'s, EventTime, D, Diff>;

/// Streams of records as differential collections.
pub trait ToUpdates<'s, D> {
    /// Each record becomes an insertion (`+1`) at the time of its message.
    fn to_updates(self, name: &str) -> Updates<'s, D>;
}

/// Every record a [`ToUpdates`] operator took in, with its time: the input collection, which a
/// checkpoint stores as of its time and a restore injects again (so that the differential part
/// downstream rebuilds its arrangements), instead of the arrangements themselves.
struct InputLog<D> {
    records: Vec<(D, EventTime)>,
    /// Every time below this is in `records`.
    complete_below: EventTime,
}

impl<D: Serialize> InputLog<D> {
    /// The records of times below `c`, serialized; `None` until all of them are here.
    fn below(&self, c: EventTime) -> Result<Option<Vec<u8>>, String> {
        if self.complete_below < c {
            return Ok(None);
        }
        let records: Vec<&D> = self
            .records
            .iter()
            .filter(|(_, t)| *t < c)
            .map(|(d, _)| d)
            .collect();
        bincode::serialize(&records)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

impl<'s, D> ToUpdates<'s, D> for StreamVec<'s, EventTime, D>
where
    D: Clone + Serialize + DeserializeOwned + 'static,
{
    fn to_updates(self, name: &str) -> Updates<'s, D> {
        // With checkpoints: log the input, and start from the restored records, injected just
        // below the checkpoint — what they produce there was committed before; what they
        // produce from the checkpoint on is exactly what the first run produced.
        let checkpoint = crate::checkpoint::current();
        let resume_at = checkpoint.as_ref().map_or(0, |c| c.shared.resume_at());
        let restored: Vec<D> = checkpoint
            .as_ref()
            .map(|c| c.restored_records(name))
            .unwrap_or_default();
        let replay_at = resume_at.saturating_sub(1);
        let log = checkpoint.as_ref().map(|c| {
            let log = Rc::new(RefCell::new(InputLog {
                records: restored.iter().map(|d| (d.clone(), replay_at)).collect(),
                complete_below: resume_at,
            }));
            let provider = Rc::clone(&log);
            c.provide(name, Box::new(move |at| provider.borrow().below(at)));
            log
        });
        self.unary_frontier::<CapacityContainerBuilder<Vec<(D, EventTime, Diff)>>, _, _, _>(
            Pipeline,
            name,
            move |cap, _info| {
                let mut replay = Some((cap, restored));
                move |(input, frontier), output| {
                    if let Some((cap, records)) = replay.take() {
                        if !records.is_empty() {
                            let at = cap.delayed(&replay_at);
                            let mut session = output.session(&at);
                            for record in records {
                                session.give((record, replay_at, 1));
                            }
                        }
                    }
                    input.for_each(|cap, batch| {
                        let Some(&time) = cap.least() else {
                            return;
                        };
                        if let Some(log) = &log {
                            let mut log = log.borrow_mut();
                            log.records.extend(batch.iter().map(|r| (r.clone(), time)));
                        }
                        let mut session = output.session(&cap);
                        for record in batch.drain(..) {
                            session.give((record, time, 1));
                        }
                    });
                    if let Some(log) = &log {
                        let below = frontier.frontier().first().copied();
                        log.borrow_mut().complete_below = below.unwrap_or(EventTime::MAX);
                    }
                }
            },
        )
        .as_collection()
    }
}

/// Update streams as output rows carrying their `diff`.
pub trait ToRows<'s, D> {
    /// `make(record, diff)` for every update.
    fn to_rows<R: 'static>(
        self,
        make: impl Fn(D, i64) -> R + 'static,
    ) -> StreamVec<'s, EventTime, R>;

    /// `make(record, time, diff)` for every update: rows that also say when they changed.
    fn to_rows_at<R: 'static>(
        self,
        make: impl Fn(D, EventTime, i64) -> R + 'static,
    ) -> StreamVec<'s, EventTime, R>;
}

impl<'s, D: Clone + 'static> ToRows<'s, D> for Updates<'s, D> {
    fn to_rows<R: 'static>(
        self,
        make: impl Fn(D, i64) -> R + 'static,
    ) -> StreamVec<'s, EventTime, R> {
        self.to_rows_at(move |d, _, diff| make(d, diff))
    }

    fn to_rows_at<R: 'static>(
        self,
        make: impl Fn(D, EventTime, i64) -> R + 'static,
    ) -> StreamVec<'s, EventTime, R> {
        // Each row leaves at its update's own time, never earlier (differential may send an
        // update in a message of an earlier time): a row's time decides the checkpoint epoch
        // its output belongs to, and must not depend on how the work was batched.
        self.inner
            .unary::<CapacityContainerBuilder<Vec<R>>, _, _, _>(Pipeline, "to_rows", |_, _| {
                move |input, output| {
                    input.for_each(|cap, batch| {
                        batch.sort_by_key(|(_, t, _)| *t);
                        let mut rest = batch.drain(..).peekable();
                        while let Some((d, t, r)) = rest.next() {
                            let at = cap.delayed(&t, 0);
                            let mut session = output.session(&at);
                            session.give(make(d, t, r as i64));
                            while let Some((d, _, r)) = rest.next_if(|(_, u, _)| *u == t) {
                                session.give(make(d, t, r as i64));
                            }
                        }
                    });
                }
            })
    }
}
