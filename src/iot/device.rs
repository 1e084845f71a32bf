//! The shape every per-device detector shares: readings keyed by their device, a stamp's
//! readings handed over together once the watermark passes them, readings behind the device's
//! frontier refused as late. A [`DeviceDetector`] says only what it keeps per device and what it
//! does with a device's readings; [`PerDevice`] makes it a keyed logic for the keyed core.

use super::model::Reading;
use crate::operators::keyed::{Emit, KeyedLogic};
use crate::time::EventTime;
use compact_str::CompactString;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A detector over each device's readings, in event time.
pub trait DeviceDetector: 'static {
    /// What it is called in a late reading's dead letter, e.g. `stuck-sensor detector`.
    const NAME: &'static str;
    /// What it keeps per device (checkpointed with the keyed core's state).
    type State: Clone + Serialize + DeserializeOwned + Default + 'static;
    /// What it emits.
    type Output: Clone + 'static;

    /// Takes a device's readings of one stamp (in arrival order: sort them as the detector
    /// needs).
    fn readings(
        &self,
        device: &CompactString,
        state: &mut Self::State,
        readings: Vec<Reading>,
        out: &mut Emit<'_, Self::Output>,
    );
}

/// A [`DeviceDetector`] as the keyed core runs it: keyed by device, never done with one.
pub struct PerDevice<D>(pub D);

impl<D: DeviceDetector> KeyedLogic for PerDevice<D> {
    type Record = Reading;
    type Key = CompactString;
    type State = D::State;
    type Pending = Vec<Reading>;
    type Output = D::Output;

    fn key(&self, r: &Reading) -> CompactString {
        r.device.clone()
    }

    fn too_late(&self, r: &Reading, stamp: EventTime) -> Option<String> {
        r.behind(stamp, D::NAME)
    }

    fn stash(&self, pending: &mut Vec<Reading>, r: Reading) {
        pending.push(r);
    }

    fn apply(
        &self,
        device: &CompactString,
        state: &mut D::State,
        pending: Vec<Reading>,
        out: &mut Emit<'_, D::Output>,
    ) {
        self.0.readings(device, state, pending, out);
    }

    fn is_done(&self, _: &D::State) -> bool {
        // A device is remembered: its model is what it learned.
        false
    }
}
