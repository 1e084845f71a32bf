//! The IoT domain: sensor readings of a device fleet ([`model`]), a deterministic generator of
//! the fleet with labelled faults (`--source iot`, [`mod@generator`]), devices that go silent
//! ([`offline`]), fleet statistics ([`fleet`]), per-device anomaly detection ([`anomaly`]
//! with Half-Space Trees, [`hst`]), change points ([`changes`] with [`bocpd`]), early warning of
//! failure ([`warning`]), stuck sensors ([`stuck`]) — each a [`device::DeviceDetector`] — and all
//! of them at once ([`monitor`]). Its pipelines are under `queries/iot/`. The engine never
//! imports this module; it is registered with the binary's catalog like a user's own domain.

pub mod anomaly;
pub mod bocpd;
pub mod changes;
pub mod device;
pub mod fleet;
pub mod generator;
pub mod hst;
pub mod model;
pub mod monitor;
pub mod offline;
pub mod params;
pub mod sample;
pub mod stuck;
pub mod warning;

use crate::connectors::generator::{Generate, GeneratorConfig};
use model::Reading;

/// The name of the domain and of its generator as a source.
pub const NAME: &str = "iot";

/// Makes the IoT generator (for [`Domain::generator`](crate::catalog::Domain)).
pub fn generator(config: &GeneratorConfig) -> Box<dyn Generate<Record = Reading>> {
    Box::new(generator::Generator::new(config.clone()))
}
