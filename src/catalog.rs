//! The pipelines a `sluice` binary can run, grouped by domain.
//!
//! A [`Domain`] is one record type with its pipelines and, optionally, a generator of its
//! records (`--source <domain>`). A [`Catalog`] holds any number of domains of different record
//! types behind one interface, so the command line can list them all, find a pipeline by name
//! and run it without knowing its record type.
//!
//! # Examples
//!
//! ```
//! use serde::{Deserialize, Serialize};
//! use sluice::catalog::{Catalog, Domain};
//! use sluice::pipeline::{Context, Pipeline};
//! use sluice::record::Record;
//! use sluice::time::EventTime;
//! use timely::dataflow::StreamVec;
//!
//! #[derive(Clone, Debug, Serialize, Deserialize)]
//! struct Click {
//!     user: u64,
//!     time: EventTime,
//! }
//!
//! impl Record for Click {
//!     fn event_time(&self) -> EventTime {
//!         self.time
//!     }
//! }
//!
//! fn all<'s>(clicks: StreamVec<'s, EventTime, Click>, ctx: &mut Context<'s>) {
//!     ctx.emit(clicks);
//! }
//!
//! const CLICKS: Pipeline<Click> = Pipeline {
//!     name: "clicks",
//!     description: "every click",
//!     columns: &["user", "time"],
//!     writes_files: false,
//!     params: &[],
//!     build: all,
//! };
//!
//! let catalog = Catalog::new().with(Domain {
//!     name: "web",
//!     description: "clicks on a web site",
//!     generator: None,
//!     generator_options: &[],
//!     pipelines: &[&CLICKS],
//! });
//! assert_eq!(catalog.find("clicks").unwrap().1.domain, "web");
//! ```

use crate::connectors::generator::{GeneratorConfig, GeneratorSpec, MakeGenerator};
use crate::connectors::kafka::{self, KafkaError, KafkaProps, KafkaUrl};
use crate::connectors::{SourceError, SourceOptions, SourceSpec};
use crate::driver::{run, RunConfig, RunError, RunOptions, RunOutcome};
use crate::launch::Mesh;
use crate::pipeline::{Param, Pipeline};
use crate::record::{Format, Record};
use crate::stop::Stop;
use std::io::Write;
use std::time::Duration;

/// One record type, its pipelines and its generator.
pub struct Domain<R: 'static> {
    /// Its name, e.g. `nexmark`; also the name of its generator as a source.
    pub name: &'static str,
    /// One line for `sluice list`.
    pub description: &'static str,
    /// The domain's generator of records, if it has one.
    pub generator: Option<MakeGenerator<R>>,
    /// Settings of its own the generator takes (`--NAME VALUE` on `run` and `gen`, read with
    /// [`GeneratorConfig::option`]), beyond the seed, rate and the rest every generator shares.
    pub generator_options: &'static [Param],
    /// The pipelines, in `sluice list` order.
    pub pipelines: &'static [&'static Pipeline<R>],
}

/// A pipeline as the command line sees it.
#[derive(Clone, Copy, Debug)]
pub struct PipelineInfo {
    /// Its name.
    pub name: &'static str,
    /// Its domain's name.
    pub domain: &'static str,
    /// One line for `sluice list`.
    pub description: &'static str,
    /// Output columns.
    pub columns: &'static [&'static str],
    /// Whether it writes files of its own (`--output-dir`).
    pub writes_files: bool,
    /// Its parameters (`--param`).
    pub params: &'static [crate::pipeline::Param],
}

/// What a source spec names, whatever its record type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// A generator.
    Generator,
    /// A file or stdin.
    File,
    /// A Kafka topic.
    Kafka,
    /// MQTT topics.
    Mqtt,
}

/// How a pipeline's source is named and set up on the command line.
#[derive(Clone, Debug)]
pub struct SourceRequest {
    /// `<domain>` (its generator), `file:PATH` or `kafka://…`; `None`: the domain's generator.
    pub text: Option<String>,
    /// The generator's settings.
    pub generator: GeneratorSpec,
    /// The Kafka, MQTT and format settings.
    pub options: SourceOptions,
}

/// Writing generated records: where, how many, in which format.
pub struct GenerateRequest<'a> {
    /// The generator's settings.
    pub config: GeneratorConfig,
    /// Records to write (`None`: until stopped).
    pub events: Option<u64>,
    /// JSON lines or CSV (with a header row).
    pub format: Format,
    /// Ends the output early (a signal).
    pub stop: &'a Stop,
}

/// A domain of any record type, as the command line uses it.
pub trait DomainEntry: Send + Sync {
    /// The domain's name.
    fn name(&self) -> &'static str;
    /// One line for `sluice list`.
    fn description(&self) -> &'static str;
    /// Its pipelines.
    fn pipelines(&self) -> Vec<PipelineInfo>;
    /// Whether it has a generator.
    fn has_generator(&self) -> bool;
    /// The settings of its own its generator takes.
    fn generator_options(&self) -> &'static [Param];
    /// What `request` names for this domain's records, or why it names nothing usable.
    fn source_kind(&self, request: &SourceRequest) -> Result<SourceKind, SourceError>;
    /// Runs `pipeline` on this process's share of `mesh`.
    fn run(
        &self,
        pipeline: &str,
        source: &SourceRequest,
        options: RunOptions,
        mesh: &Mesh,
    ) -> Result<RunOutcome, RunError>;
    /// Writes generated records to `out`; returns how many.
    fn generate(&self, request: &GenerateRequest<'_>, out: &mut dyn Write) -> std::io::Result<u64>;
    /// Writes generated records to a Kafka topic (`sluice gen --to`).
    fn load(
        &self,
        request: &GenerateRequest<'_>,
        to: &KafkaTarget<'_>,
    ) -> Result<kafka::LoadSummary, KafkaError>;
}

/// Where and how `sluice gen --to` writes.
pub struct KafkaTarget<'a> {
    /// Brokers and topic.
    pub url: &'a KafkaUrl,
    /// Client properties.
    pub props: &'a KafkaProps,
    /// Partitions when the topic is created.
    pub partitions: i32,
    /// Broker wait.
    pub timeout: Duration,
    /// Send each record at its scheduled time, stamped with it (open loop).
    pub paced: bool,
}

impl<R: Record> Domain<R> {
    fn source(&self, request: &SourceRequest) -> Result<SourceSpec<R>, SourceError> {
        let generator = self.generator.map(|make| (self.name, make));
        let text = match &request.text {
            Some(text) => text.as_str(),
            None if self.generator.is_some() => self.name,
            None => {
                return Err(SourceError::Unknown(
                    String::new(),
                    format!("(domain {} has no generator)", self.name),
                ))
            }
        };
        SourceSpec::parse(
            text,
            generator,
            request.generator.clone(),
            request.options.clone(),
        )
    }

    fn generator(&self) -> std::io::Result<MakeGenerator<R>> {
        self.generator
            .ok_or_else(|| std::io::Error::other(format!("domain {} has no generator", self.name)))
    }
}

impl<R: Record> DomainEntry for Domain<R> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn pipelines(&self) -> Vec<PipelineInfo> {
        self.pipelines
            .iter()
            .map(|p| PipelineInfo {
                name: p.name,
                domain: self.name,
                description: p.description,
                columns: p.columns,
                writes_files: p.writes_files,
                params: p.params,
            })
            .collect()
    }

    fn has_generator(&self) -> bool {
        self.generator.is_some()
    }

    fn generator_options(&self) -> &'static [Param] {
        self.generator_options
    }

    fn source_kind(&self, request: &SourceRequest) -> Result<SourceKind, SourceError> {
        Ok(match self.source(request)? {
            SourceSpec::Generator { .. } => SourceKind::Generator,
            SourceSpec::File { .. } => SourceKind::File,
            SourceSpec::Kafka { .. } => SourceKind::Kafka,
            SourceSpec::Mqtt { .. } => SourceKind::Mqtt,
        })
    }

    fn run(
        &self,
        pipeline: &str,
        source: &SourceRequest,
        options: RunOptions,
        mesh: &Mesh,
    ) -> Result<RunOutcome, RunError> {
        let Some(pipeline) = self.pipelines.iter().copied().find(|p| p.name == pipeline) else {
            let known = format!("(domain {} has no pipeline {pipeline:?})", self.name);
            return Err(SourceError::Unknown(pipeline.to_string(), known).into());
        };
        let source = self.source(source)?;
        run(
            RunConfig {
                pipeline,
                source,
                options,
            },
            mesh,
        )
    }

    fn generate(&self, request: &GenerateRequest<'_>, out: &mut dyn Write) -> std::io::Result<u64> {
        let mut generator = (self.generator()?)(&request.config);
        let total = request.events.unwrap_or(u64::MAX);
        // A signal ends the output after a whole record.
        let stopped = |n: u64| n.is_multiple_of(4096) && request.stop.is_requested();
        if request.format == Format::Csv {
            // A header row from the field names, then one row per record.
            let mut csv = csv::Writer::from_writer(out);
            for n in 0..total {
                if stopped(n) {
                    csv.flush()?;
                    return Ok(n);
                }
                csv.serialize(generator.record(n))
                    .map_err(std::io::Error::other)?;
            }
            csv.flush()?;
            return Ok(total);
        }
        let mut line = Vec::with_capacity(1024);
        for n in 0..total {
            if stopped(n) {
                return Ok(n);
            }
            line.clear();
            serde_json::to_writer(&mut line, &generator.record(n))?;
            line.push(b'\n');
            out.write_all(&line)?;
        }
        Ok(total)
    }

    fn load(
        &self,
        request: &GenerateRequest<'_>,
        to: &KafkaTarget<'_>,
    ) -> Result<kafka::LoadSummary, KafkaError> {
        let make = self
            .generator
            .ok_or_else(|| KafkaError::Invalid(format!("domain {} has no generator", self.name)))?;
        kafka::load(&kafka::Load {
            make,
            url: to.url,
            props: to.props,
            partitions: to.partitions,
            timeout: to.timeout,
            config: request.config.clone(),
            events: request.events.unwrap_or(u64::MAX),
            paced: to.paced,
            stop: request.stop,
        })
    }
}

/// Every domain a binary knows, by name, and their pipelines.
#[derive(Default)]
pub struct Catalog {
    domains: Vec<Box<dyn DomainEntry>>,
}

impl Catalog {
    /// No domains yet.
    pub fn new() -> Self {
        Catalog::default()
    }

    /// Adds `domain`.
    ///
    /// # Panics
    ///
    /// If one of its pipelines has the name of a pipeline already in the catalog (a
    /// programming error: `sluice run NAME` must name one pipeline).
    pub fn with<R: Record>(mut self, domain: Domain<R>) -> Self {
        for p in domain.pipelines {
            assert!(
                self.find(p.name).is_none(),
                "two pipelines are named {:?}",
                p.name
            );
        }
        self.domains.push(Box::new(domain));
        self
    }

    /// The domains, in the order they were added.
    pub fn domains(&self) -> impl Iterator<Item = &dyn DomainEntry> {
        self.domains.iter().map(|d| d.as_ref())
    }

    /// The domain called `name`.
    pub fn domain(&self, name: &str) -> Option<&dyn DomainEntry> {
        self.domains().find(|d| d.name() == name)
    }

    /// Every pipeline, domain by domain.
    pub fn pipelines(&self) -> Vec<PipelineInfo> {
        self.domains().flat_map(|d| d.pipelines()).collect()
    }

    /// The pipeline called `name`, with its domain.
    pub fn find(&self, name: &str) -> Option<(&dyn DomainEntry, PipelineInfo)> {
        self.domains().find_map(|d| {
            let info = d.pipelines().into_iter().find(|p| p.name == name)?;
            Some((d, info))
        })
    }
}
