//! What a pipeline is to the engine: a named [`Pipeline`] whose `build` function turns a stream
//! of records into result rows, and the [`Context`] it hands those rows (and any late records)
//! to. The context attaches the run's sink, counts rows, and probes every output, so a pipeline
//! contains only its own logic.
//!
//! # Examples
//!
//! A pipeline over sensor readings that passes on the hot ones:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use sluice::pipeline::{Context, Pipeline};
//! use sluice::record::Record;
//! use sluice::time::EventTime;
//! use timely::dataflow::operators::vec::Filter;
//! use timely::dataflow::StreamVec;
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct Reading {
//!     device: String,
//!     time: EventTime,
//!     celsius: f64,
//! }
//!
//! impl Record for Reading {
//!     fn event_time(&self) -> EventTime {
//!         self.time
//!     }
//! }
//!
//! fn build<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
//!     ctx.emit(readings.filter(|r| r.celsius > 80.0));
//! }
//!
//! const HOT: Pipeline<Reading> = Pipeline {
//!     name: "hot",
//!     description: "readings above 80 °C",
//!     columns: &["device", "time", "celsius"],
//!     writes_files: false,
//!     params: &[],
//!     build,
//! };
//! assert_eq!(HOT.name, "hot");
//! ```

use crate::connectors::sink::{write_json_lines, RowTarget};
use crate::deadletter::DeadLetter;
use crate::metrics::Ledger;
use crate::time::{EventTime, WatermarkPolicy};
use serde::Serialize;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use timely::dataflow::operators::Probe;
use timely::dataflow::{ProbeHandle, Scope, StreamVec};

/// Builds a pipeline's dataflow from its record stream, emitting through the context.
pub type BuildFn<R> = for<'s> fn(StreamVec<'s, EventTime, R>, &mut Context<'s>);

/// One runnable pipeline over records of type `R`.
pub struct Pipeline<R> {
    /// Name on the command line, e.g. `q5`.
    pub name: &'static str,
    /// One-line description for `sluice list`.
    pub description: &'static str,
    /// Output columns, in order (besides `window_start`/`window_end`/`diff` where noted).
    pub columns: &'static [&'static str],
    /// Whether the pipeline writes files of its own under the run's output directory (q10).
    pub writes_files: bool,
    /// The parameters it takes (`--param NAME=VALUE`); none for most.
    pub params: &'static [Param],
    /// Builds the dataflow.
    pub build: BuildFn<R>,
}

/// A pipeline parameter, set with `--param NAME=VALUE`: checked before the run starts, read by
/// the pipeline's `build` through [`Context::param`].
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// What it sets, with its default, for `sluice list`.
    pub help: &'static str,
    /// Whether a value is usable, or why not (one line).
    pub check: fn(&str) -> Result<(), String>,
}

/// Checks `values` (`(name, value)`, in command-line order) against `params`: an unknown name
/// or an unusable value is a one-line error naming the parameter.
pub fn check_params(
    pipeline: &str,
    params: &[Param],
    values: &[(String, String)],
) -> Result<(), String> {
    for (name, value) in values {
        let Some(param) = params.iter().find(|p| p.name == name) else {
            let known: Vec<&str> = params.iter().map(|p| p.name).collect();
            return Err(if known.is_empty() {
                format!("pipeline {pipeline} takes no parameters (--param {name})")
            } else {
                format!(
                    "pipeline {pipeline} has no parameter {name:?}; it takes: {}",
                    known.join(", ")
                )
            });
        };
        (param.check)(value).map_err(|e| format!("--param {name}={value}: {e}"))?;
    }
    Ok(())
}

/// Where a worker's pipeline output goes: set up by the driver, handed to the pipeline's
/// context.
pub struct Outputs {
    /// Probes every output; the run ends when its frontier is empty.
    pub probe: ProbeHandle<EventTime>,
    /// Where the rows go.
    pub sink: RowTarget,
    /// Where the dead letters go.
    pub dead_letters: RowTarget,
    /// The worker's counters and latency histograms.
    pub ledger: Rc<RefCell<Ledger>>,
    /// Directory for pipelines that write files of their own.
    pub output_dir: PathBuf,
}

/// What a pipeline's `build` function emits through.
pub struct Context<'s> {
    scope: Scope<'s, EventTime>,
    policy: WatermarkPolicy,
    state_ttl: Option<EventTime>,
    params: Vec<(String, String)>,
    name: &'static str,
    outputs: Outputs,
}

impl<'s> Context<'s> {
    /// A context for the pipeline `name` writing to `outputs`.
    pub fn new(
        scope: Scope<'s, EventTime>,
        name: &'static str,
        policy: WatermarkPolicy,
        outputs: Outputs,
    ) -> Self {
        Context {
            scope,
            policy,
            state_ttl: None,
            params: Vec::new(),
            name,
            outputs,
        }
    }

    /// The context with an idle-key time to live for updating results (`None`: keys are kept).
    pub fn with_state_ttl(mut self, ttl: Option<EventTime>) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// The context with the run's pipeline parameters (`(name, value)`, already checked).
    pub fn with_params(mut self, params: Vec<(String, String)>) -> Self {
        self.params = params;
        self
    }

    /// The value of parameter `name` (the last one given), if it was set.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `param` parsed by `parse`, `default` when it was not set. Values are checked
    /// before the run starts ([`check_params`]), so `parse` refuses one only if it reads more
    /// than the check did (a file that changed since); that gives `default`, with a warning.
    pub fn param_or<T>(
        &self,
        param: &Param,
        parse: fn(&str) -> Result<T, String>,
        default: T,
    ) -> T {
        let Some(text) = self.param(param.name) else {
            return default;
        };
        parse(text).unwrap_or_else(|e| {
            tracing::warn!("--param {}={text} ignored: {e}", param.name);
            default
        })
    }

    /// How long (event time) a key of an updating result may go without a record before it is
    /// retired ([`crate::operators::updating::Updating::updating_retiring`]); `None`: never.
    pub fn state_ttl(&self) -> Option<EventTime> {
        self.state_ttl
    }

    /// Where pipelines that write files of their own (q10's partitions) put them.
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
        let name = format!("{}.sink", self.name);
        write_json_lines(rows, &name, self.outputs.sink.clone(), move |batch| {
            ledger.borrow_mut().rows += batch.len() as u64
        })
        .probe_with(&self.outputs.probe);
    }

    /// Writes `records` (bad or late) to the dead-letter destination and counts them by reason.
    pub fn dead_letter(&mut self, records: StreamVec<'s, EventTime, DeadLetter>) {
        let ledger = Rc::clone(&self.outputs.ledger);
        let name = format!("{}.dead_letters", self.name);
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
