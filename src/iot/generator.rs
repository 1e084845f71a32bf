//! The IoT domain's generator: a fleet of devices reporting three metrics, with injected,
//! labelled faults (`--source iot`).
//!
//! Record `n` is a pure function of `(config, n)`, like every generator's. Readings come in
//! *samples*: record `n` is metric `n mod 3` (temperature, vibration, pressure) of sample
//! `n / 3`, which is device slot `sample mod devices` at cycle `sample / devices`; the three
//! readings of a sample share its event time (that of its first record). `--devices`
//! (default [`DEVICES`]) sets the fleet; the rate sets how often each device reports.
//!
//! **Normal operation:** each device has a model (one of four) and a site (one of eight) and,
//! per metric, its own level drawn from its id; temperature follows a daily cycle; every
//! reading has Gaussian noise.
//!
//! **Faults** come per device and *epoch* of [`EPOCH_CYCLES`] cycles: one device-epoch in
//! [`FAULT_EVERY`] holds one, of four kinds, labelled in the `fault` column of the readings
//! that show it — a *spike* (one reading of one metric 8–12 σ off), a *stuck* sensor (one
//! metric repeats a value for 300 cycles), *drift* (one metric's offset grows to 6 σ over 800
//! cycles and stays until the epoch ends) and *degradation* (vibration and temperature rise
//! over 1,200 cycles; then the device **fails**: it stops reporting, a spare `dev-NNNNN-spare`
//! takes its slot until the epoch ends, and the repaired device comes back at the next
//! epoch). Degrading readings carry the failure time in `fails_at`.

use super::model::Reading;
use crate::connectors::generator::{Generate, GeneratorConfig, SplitMix64 as Rng};
use crate::pipeline::Param;
use crate::time::EventTime;
use compact_str::{format_compact, CompactString};

/// Devices in the fleet by default.
pub const DEVICES: u64 = 1_000;
/// Cycles per fault epoch.
pub const EPOCH_CYCLES: u64 = 4_096;
/// One device-epoch in this many holds a fault.
pub const FAULT_EVERY: u64 = 20;
/// Metrics every device reports, in record order.
pub const METRICS: [&str; 3] = ["temperature", "vibration", "pressure"];
/// Device models.
pub const MODELS: [&str; 4] = ["pump-a", "pump-b", "fan-c", "compressor-d"];
/// Sites.
pub const SITES: u64 = 8;
/// Noise per metric (one standard deviation).
const SIGMA: [f64; 3] = [0.5, 0.05, 0.05];
/// Cycles a stuck sensor repeats its value.
const STUCK_CYCLES: u64 = 300;
/// Cycles drift takes to reach its full offset.
const DRIFT_CYCLES: u64 = 800;
/// Cycles from the start of degradation to failure.
const DEGRADATION_CYCLES: u64 = 1_200;

/// The generator's own settings (`--devices` on `sluice run` and `sluice gen`).
pub const OPTIONS: &[Param] = &[Param {
    name: "devices",
    help: "Devices in the fleet (default 1000)",
    check: |text| parse_devices(text).map(drop),
}];

fn parse_devices(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (1..=1 << 32).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a number of devices in 1..=2^32")),
    }
}

/// The kinds of fault the generator injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// One reading far off.
    Spike,
    /// A value repeated.
    Stuck,
    /// An offset that grows, then stays.
    Drift,
    /// A slow rise ending in failure.
    Degradation,
}

impl Fault {
    /// The name in the `fault` column.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Spike => "spike",
            Fault::Stuck => "stuck",
            Fault::Drift => "drift",
            Fault::Degradation => "degradation",
        }
    }
}

/// A device-epoch's fault: its kind, the metric it hits, the cycle in the epoch it starts at
/// and the spike's size in σ.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Episode {
    /// Its kind.
    pub fault: Fault,
    /// The metric it hits (degradation: vibration and temperature).
    pub metric: usize,
    /// The cycle within the epoch it starts at.
    pub start: u64,
    /// A spike's size, σ (signed).
    size: f64,
}

/// The IoT fleet generator.
pub struct Generator {
    config: GeneratorConfig,
    devices: u64,
}

impl Generator {
    /// The generator for `config`.
    pub fn new(config: GeneratorConfig) -> Self {
        let devices = config.option("devices", parse_devices, DEVICES);
        Generator { config, devices }
    }

    /// Devices in the fleet.
    pub fn devices(&self) -> u64 {
        self.devices
    }

    /// The record number of metric `metric` of device slot `device` at cycle `cycle`.
    pub fn record_of(&self, cycle: u64, device: u64, metric: usize) -> u64 {
        3 * (cycle * self.devices + device) + metric as u64
    }

    /// The event time of device slot `device`'s sample at cycle `cycle`.
    pub fn time_of(&self, cycle: u64, device: u64) -> EventTime {
        self.config.event_time(self.record_of(cycle, device, 0))
    }

    /// The fault of device slot `device` in epoch `epoch`, if it has one.
    pub fn episode(&self, device: u64, epoch: u64) -> Option<Episode> {
        let stream = epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ device;
        let mut rng = Rng::seeded(self.config.seed ^ 0xfa17, stream);
        if rng.below(FAULT_EVERY) != 0 {
            return None;
        }
        let fault =
            [Fault::Spike, Fault::Stuck, Fault::Drift, Fault::Degradation][rng.below(4) as usize];
        let metric = rng.below(3) as usize;
        // Early enough that a degradation fails, and the spare reports, within the epoch.
        let start = 64 + rng.below(EPOCH_CYCLES - DEGRADATION_CYCLES - 512);
        let size = (8.0 + 4.0 * rng.unit()) * if rng.chance(0.5) { 1.0 } else { -1.0 };
        Some(Episode {
            fault,
            metric,
            start,
            size,
        })
    }

    /// When device slot `device` fails in epoch `epoch` (its first silent cycle's time), if it
    /// degrades then.
    pub fn failure_time(&self, device: u64, epoch: u64) -> Option<EventTime> {
        let e = self.episode(device, epoch)?;
        (e.fault == Fault::Degradation).then(|| {
            let cycle = epoch * EPOCH_CYCLES + e.start + DEGRADATION_CYCLES;
            self.time_of(cycle, device)
        })
    }

    /// A device slot's level of `metric`, drawn from its id.
    fn level(&self, device: u64, metric: usize) -> f64 {
        let mut rng = Rng::seeded(self.config.seed ^ 0x1e7e1, device * 3 + metric as u64);
        let model = self.model(device);
        match metric {
            0 => 40.0 + 10.0 * model as f64 + 5.0 * rng.unit(),
            1 => 1.0 + 0.5 * model as f64 + 0.3 * rng.unit(),
            _ => 2.0 + model as f64 + 0.5 * rng.unit(),
        }
    }

    fn model(&self, device: u64) -> usize {
        (Rng::seeded(self.config.seed ^ 0x30de1, device).below(MODELS.len() as u64)) as usize
    }

    /// The normal value of a reading: level, daily cycle (temperature), noise of record `n`.
    fn normal(&self, n: u64, device: u64, metric: usize, time: EventTime) -> f64 {
        let day = (time % 86_400_000) as f64 / 86_400_000.0;
        let cycle = if metric == 0 {
            3.0 * (day * std::f64::consts::TAU).sin()
        } else {
            0.0
        };
        self.level(device, metric)
            + cycle
            + SIGMA[metric] * Rng::seeded(self.config.seed, n).normal()
    }

    /// Reading `n`.
    pub fn reading(&self, n: u64) -> Reading {
        let metric = (n % 3) as usize;
        let sample = n / 3;
        let (device, cycle) = (sample % self.devices, sample / self.devices);
        let time = self.config.event_time(n - metric as u64);
        let (epoch, k) = (cycle / EPOCH_CYCLES, cycle % EPOCH_CYCLES);
        let model = self.model(device);
        let mut reading = Reading {
            time,
            device: format_compact!("dev-{device:05}"),
            site: format_compact!("site-{}", device % SITES),
            model: CompactString::const_new(MODELS[model]),
            metric: CompactString::const_new(METRICS[metric]),
            value: self.normal(n, device, metric, time),
            fault: None,
            fails_at: None,
        };
        let Some(e) = self.episode(device, epoch) else {
            return reading;
        };
        let since = k.wrapping_sub(e.start);
        let label = |r: &mut Reading| r.fault = Some(CompactString::const_new(e.fault.name()));
        match e.fault {
            Fault::Spike if k == e.start && metric == e.metric => {
                reading.value += e.size * SIGMA[metric];
                label(&mut reading);
            }
            Fault::Stuck if since < STUCK_CYCLES && metric == e.metric => {
                let first = self.record_of(epoch * EPOCH_CYCLES + e.start, device, metric);
                let stuck_at = self.config.event_time(first - metric as u64);
                reading.value = self.normal(first, device, metric, stuck_at);
                label(&mut reading);
            }
            Fault::Drift if k >= e.start && metric == e.metric => {
                let x = (since as f64 / DRIFT_CYCLES as f64).min(1.0);
                reading.value += 6.0 * SIGMA[metric] * x;
                label(&mut reading);
            }
            Fault::Degradation if k >= e.start => {
                if since >= DEGRADATION_CYCLES {
                    // Failed: the spare reports in its slot, normally.
                    reading.device = format_compact!("dev-{device:05}-spare");
                    return reading;
                }
                let x = since as f64 / DEGRADATION_CYCLES as f64;
                match metric {
                    0 => reading.value += 12.0 * x * x,
                    1 => reading.value *= 1.0 + 3.0 * x * x,
                    _ => {}
                }
                label(&mut reading);
                reading.fails_at = self.failure_time(device, epoch);
            }
            _ => {}
        }
        reading
    }
}

impl Generate for Generator {
    type Record = Reading;

    fn record(&mut self, n: u64) -> Reading {
        self.reading(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn generator(devices: &str) -> Generator {
        let mut config = GeneratorConfig {
            rate: 3_000,
            ..GeneratorConfig::default()
        };
        config.options.insert("devices".into(), devices.into());
        Generator::new(config)
    }

    #[test]
    fn samples_share_a_time_and_devices_report_in_turn() {
        let g = generator("10");
        for n in 0..3_000 {
            let r = g.reading(n);
            assert_eq!(r.time, g.reading(n - n % 3).time);
            assert_eq!(r.metric, METRICS[(n % 3) as usize]);
            assert!(r.device.starts_with(&format!("dev-{:05}", (n / 3) % 10)));
            assert!(r.value.is_finite());
        }
        assert_eq!(g.reading(12_345), g.reading(12_345), "a pure function of n");
    }

    #[test]
    fn every_fault_kind_shows_and_is_labelled_where_it_happens() {
        let g = generator("200");
        let epochs = 3;
        let mut seen: HashMap<&str, u64> = HashMap::new();
        let mut failures = 0;
        for device in 0..200 {
            for epoch in 0..epochs {
                let Some(e) = g.episode(device, epoch) else {
                    continue;
                };
                let at =
                    |k: u64, m: usize| g.reading(g.record_of(epoch * EPOCH_CYCLES + k, device, m));
                let before = at(e.start - 1, e.metric);
                assert_eq!(before.fault, None);
                let first = at(e.start, e.metric);
                assert_eq!(first.fault.as_deref(), Some(e.fault.name()), "{e:?}");
                *seen.entry(e.fault.name()).or_default() += 1;
                match e.fault {
                    Fault::Spike => {
                        let off = (first.value - before.value).abs() / SIGMA[e.metric];
                        assert!(off > 4.0, "{off}");
                        assert_eq!(at(e.start + 1, e.metric).fault, None);
                    }
                    Fault::Stuck => {
                        assert_eq!(at(e.start + 299, e.metric).value, first.value);
                        assert_eq!(at(e.start + 300, e.metric).fault, None);
                    }
                    Fault::Drift => {
                        // Full at the epoch's last cycle: 6 σ above the normal value.
                        let k = EPOCH_CYCLES - 1;
                        let last = at(k, e.metric);
                        assert_eq!(last.fault.as_deref(), Some("drift"));
                        let n = g.record_of(epoch * EPOCH_CYCLES + k, device, e.metric);
                        let normal = g.normal(n, device, e.metric, last.time);
                        let off = (last.value - normal) / SIGMA[e.metric];
                        assert!((off - 6.0).abs() < 1e-6, "{off}");
                        assert_eq!(at(EPOCH_CYCLES, e.metric).fault, None, "gone next epoch");
                    }
                    Fault::Degradation => {
                        failures += 1;
                        let fails = g.failure_time(device, epoch).unwrap();
                        assert_eq!(first.fails_at, Some(fails));
                        let last = at(e.start + DEGRADATION_CYCLES - 1, 1);
                        assert!(last.value > 2.5 * g.level(device, 1), "{last:?}");
                        let spare = at(e.start + DEGRADATION_CYCLES, 0);
                        assert!(spare.device.ends_with("-spare"));
                        assert_eq!(spare.time, fails);
                        // Back at the next epoch.
                        let back = g.reading(g.record_of((epoch + 1) * EPOCH_CYCLES, device, 0));
                        assert_eq!(back.device, format!("dev-{device:05}"));
                    }
                }
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        let faults: u64 = seen.values().sum();
        assert!(
            (10..=60).contains(&faults),
            "{faults} faults in 600 device-epochs"
        );
        assert!(failures > 0);
    }
}
