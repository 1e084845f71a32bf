//! # A pipeline of your own: sensor readings, per-device statistics every 10 s
//!
//! **Asks:** for every device and every 10 s of event time, how many readings arrived and
//! their minimum, maximum and mean temperature:
//! `device, window_start, window_end, readings, min, max, mean`.
//!
//! **Illustrates:** everything a user writes to run Sluice on records of their own, outside
//! this crate: a record type (a [`Record`]: serde data with an event time, readable as CSV
//! with a header row or as JSON), a [`Pipeline`] built on the keyed window operator, a small
//! deterministic generator with a setting of its own (`--devices`), and one call — [`sluice::app::main`] — that gives the program
//! Sluice's whole command line: sources (`--source sensors`, `file:PATH --format csv`,
//! `kafka://…`), sinks, `-w/-n/-p/-h`, reports, dead letters, `gen`, `list`.
//!
//! **Windows and state:** 10 s tumbling windows per device on the keyed event-time core; a
//! device's state is one accumulator per open window, dropped when the window fires.
//!
//! ```sh
//! cargo run --release --example sensors -- gen --format csv --events 100000 -o out/readings.csv
//! cargo run --release --example sensors -- run sensor_stats --source file:out/readings.csv --format csv -w 2
//! ```

use serde::{Deserialize, Serialize};
use sluice::catalog::{Catalog, Domain};
use sluice::connectors::generator::{Generate, GeneratorConfig};
use sluice::operators::{by, Aggregate, WindowResult, Windowing, Windows};
use sluice::pipeline::{Context, Param, Pipeline};
use sluice::record::Record;
use sluice::time::EventTime;
use std::process::ExitCode;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One temperature reading of one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Event time, epoch ms.
    pub time: EventTime,
    /// The device.
    pub device: String,
    /// The temperature, °C.
    pub celsius: f64,
}

impl Record for Reading {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

/// Window length, ms.
const SIZE_MS: u64 = 10_000;

/// Count, minimum, maximum and sum of a device's readings in a window.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Stats {
    readings: u64,
    min: f64,
    max: f64,
    sum: f64,
}

struct Temperatures;

impl Aggregate for Temperatures {
    type In = f64;
    type Acc = Stats;
    type Out = Stats;
    fn empty(&self) -> Stats {
        Stats {
            readings: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
        }
    }
    fn add(&self, acc: &mut Stats, celsius: f64) {
        acc.readings += 1;
        acc.min = acc.min.min(celsius);
        acc.max = acc.max.max(celsius);
        acc.sum += celsius;
    }
    fn merge(&self, acc: &mut Stats, other: &Stats) {
        acc.readings += other.readings;
        acc.min = acc.min.min(other.min);
        acc.max = acc.max.max(other.max);
        acc.sum += other.sum;
    }
    fn finish(&self, acc: &Stats) -> Stats {
        *acc
    }
}

/// One output row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// The device.
    pub device: String,
    /// Window start, epoch ms.
    pub window_start: EventTime,
    /// Window end, epoch ms.
    pub window_end: EventTime,
    /// Readings in the window.
    pub readings: u64,
    /// Lowest temperature.
    pub min: f64,
    /// Highest temperature.
    pub max: f64,
    /// Mean temperature.
    pub mean: f64,
}

/// A window's statistics as an output row.
fn row(w: WindowResult<String, Stats>) -> Row {
    Row {
        device: w.key,
        window_start: w.window.start,
        window_end: w.window.end,
        readings: w.value.readings,
        min: w.value.min,
        max: w.value.max,
        mean: w.value.sum / w.value.readings as f64,
    }
}

fn stats<'s>(readings: StreamVec<'s, EventTime, Reading>, ctx: &mut Context<'s>) {
    let per_device = by(
        "sensors.stats_per_device",
        |r: &Reading| r.device.clone(),
        |r| r.time,
    );
    let (windows, late) = readings.window_aggregate(
        per_device.fold(|r| r.celsius, Temperatures),
        Windows::tumbling(SIZE_MS),
    );
    ctx.dead_letter(late); // records too late for their window
    ctx.emit(windows.map(row));
}

/// The pipeline.
pub const SENSOR_STATS: Pipeline<Reading> = Pipeline {
    name: "sensor_stats",
    description: "per device and 10 s window: readings, min, max, mean temperature",
    columns: &[
        "device",
        "window_start",
        "window_end",
        "readings",
        "min",
        "max",
        "mean",
    ],
    writes_files: false,
    params: &[],
    build: stats,
};

/// A fleet of devices (`--devices`, default 20), each reading a daily cycle plus noise; values
/// are multiples of 0.25 °C, so sums are exact in any order. Reading `n` comes from device
/// `n mod devices`.
struct Fleet {
    config: GeneratorConfig,
    devices: u64,
}

/// The generator's own setting: `--devices N` on `run` and `gen`, checked before it runs.
const FLEET_OPTIONS: &[Param] = &[Param {
    name: "devices",
    help: "Devices in the fleet (default 20)",
    check: |text| parse_devices(text).map(drop),
}];

fn parse_devices(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a number of devices in 1..=1000000"
        )),
    }
}

impl Generate for Fleet {
    type Record = Reading;

    fn record(&mut self, n: u64) -> Reading {
        let time = self.config.event_time(n);
        let device = n % self.devices;
        let mut x = (n ^ self.config.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        let day = (time % 86_400_000) as f64 / 86_400_000.0;
        let cycle = 5.0 * (day * std::f64::consts::TAU).sin();
        let noise = (x % 9) as f64 - 4.0;
        let celsius = ((20.0 + device as f64 + cycle + noise) * 4.0).round() / 4.0;
        Reading {
            time,
            device: format!("dev-{device:02}"),
            celsius,
        }
    }
}

fn fleet(config: &GeneratorConfig) -> Box<dyn Generate<Record = Reading>> {
    Box::new(Fleet {
        config: config.clone(),
        devices: config.option("devices", parse_devices, 20),
    })
}

fn main() -> ExitCode {
    sluice::app::main(Catalog::new().with(Domain {
        name: "sensors",
        description: "temperature readings of a fleet of devices",
        generator: Some(fleet),
        generator_options: FLEET_OPTIONS,
        pipelines: &[&SENSOR_STATS],
    }))
}
