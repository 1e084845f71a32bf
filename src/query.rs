//! What a query is to the engine: a registry entry ([`Query`]) whose `build` function turns the
//! event stream into result rows, and the [`QueryContext`] it hands those rows (and any late
//! records) to. The context attaches the configured sink, counts rows, and probes every output,
//! so a query file contains only the query's own logic.

use crate::deadletter::DeadLetter;
use crate::metrics::Ledger;
use crate::model::Event;
use crate::sink::{write_json_lines, SinkWriter};
use crate::time::{EventTime, WatermarkPolicy};
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use timely::dataflow::operators::Probe;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

/// Builds a query's dataflow from the event stream, emitting through the context.
pub type BuildFn = for<'s> fn(StreamVec<'s, EventTime, Event>, &mut QueryContext<'s>);

/// A registry entry: one runnable query.
pub struct Query {
    /// Name on the command line, e.g. `q1`.
    pub name: &'static str,
    /// Family, e.g. `nexmark`.
    pub family: &'static str,
    /// One-line description for `sluice list`.
    pub description: &'static str,
    /// Output columns, in order (besides `window_start`/`window_end`/`diff` where noted).
    pub columns: &'static [&'static str],
    /// Whether the query writes files of its own under the run's output directory (q10).
    pub writes_files: bool,
    /// Builds the dataflow.
    pub build: BuildFn,
}

/// Where a worker's query output goes: set up by the driver, handed to the query's context.
pub struct Outputs {
    /// Probes every output; the run ends when its frontier is empty.
    pub probe: ProbeHandle<EventTime>,
    /// The rows' sink.
    pub sink: SinkWriter,
    /// The dead letters' destination.
    pub dead_letters: SinkWriter,
    /// The worker's counters and latency histograms.
    pub ledger: Rc<RefCell<Ledger>>,
    /// Directory for queries that write files of their own.
    pub output_dir: PathBuf,
}

/// What a query's `build` function emits through.
pub struct QueryContext<'s> {
    scope: Scope<'s, EventTime>,
    policy: WatermarkPolicy,
    query: &'static str,
    outputs: Outputs,
}

impl<'s> QueryContext<'s> {
    /// A context for `query` writing to `outputs`.
    pub fn new(
        scope: Scope<'s, EventTime>,
        query: &'static str,
        policy: WatermarkPolicy,
        outputs: Outputs,
    ) -> Self {
        QueryContext {
            scope,
            policy,
            query,
            outputs,
        }
    }

    /// Where queries that write files of their own (q10's partitions) put them.
    pub fn output_dir(&self) -> &Path {
        &self.outputs.output_dir
    }

    /// Makes the run wait for `stream` too: it ends only when this stream's frontier is empty.
    pub fn track<D: 'static>(&mut self, stream: StreamVec<'s, EventTime, D>) {
        stream.probe_with(&self.outputs.probe);
    }

    /// The dataflow's scope.
    pub fn scope(&self) -> Scope<'s, EventTime> {
        self.scope
    }

    /// The source's watermark policy (allowed delay), for event-time operators.
    pub fn policy(&self) -> WatermarkPolicy {
        self.policy
    }

    /// Writes `rows` to the run's sink as JSON lines and counts them.
    pub fn emit<R: Serialize + 'static>(&mut self, rows: StreamVec<'s, EventTime, R>) {
        let ledger = Rc::clone(&self.outputs.ledger);
        let name = format!("{}.sink", self.query);
        write_json_lines(rows, &name, self.outputs.sink.clone(), move |batch| {
            ledger.borrow_mut().rows += batch.len() as u64
        })
        .probe_with(&self.outputs.probe);
    }

    /// Writes `records` (bad or late) to the dead-letter destination and counts them by reason.
    pub fn dead_letter(&mut self, records: StreamVec<'s, EventTime, DeadLetter>) {
        let ledger = Rc::clone(&self.outputs.ledger);
        let name = format!("{}.dead_letters", self.query);
        write_json_lines(
            records,
            &name,
            self.outputs.dead_letters.clone(),
            move |batch: &[DeadLetter]| {
                let mut ledger = ledger.borrow_mut();
                for d in batch {
                    ledger.dead_letter(d.reason);
                }
            },
        )
        .probe_with(&self.outputs.probe);
    }
}
