//! Devices that stop reporting, decided by the frontier: a device is **offline** at `last +
//! timeout` when it sent nothing for `timeout` of event time after its reading at `last`, and
//! **recovered** at its next reading — one alert per episode, in event time, the same at any
//! worker count and arrival order within the watermark delay.
//!
//! On the keyed core, per device: the time of its latest reading and whether it is offline.
//! The due time `last + timeout` fires once the watermark passes it with no reading stamped
//! before it; a reading stamped earlier but timed later than `last + timeout` (stamps are
//! rounded down) is found when the stamp is applied — either way the episode is the same. At
//! the end of a bounded input, silences running past the latest reading a worker holds do not
//! fire: the end of a file is not evidence that a device went quiet.

use super::model::Reading;
use crate::operators::keyed::{Emit, KeyedLogic};
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// What happened to a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It sent nothing for the timeout.
    Offline,
    /// It reported again.
    Recovered,
}

/// A device going offline or coming back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceAlert {
    /// The device.
    pub device: CompactString,
    /// Its site.
    pub site: CompactString,
    /// Its model.
    pub model: CompactString,
    /// Offline or recovered.
    pub status: Status,
    /// When: `last_seen + timeout` (offline), the new reading's time (recovered).
    pub time: EventTime,
    /// Its latest reading before the silence.
    pub last_seen: EventTime,
    /// How long it was silent, ms (recovered only).
    pub silent_ms: Option<u64>,
}

/// The output columns of a [`DeviceAlert`].
pub const ALERT_COLUMNS: &[&str] = &[
    "device",
    "site",
    "model",
    "status",
    "time",
    "last_seen",
    "silent_ms",
];

/// A device's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Presence {
    /// Its latest reading's time (0: none yet).
    last: EventTime,
    /// Whether it is offline.
    offline: bool,
    /// Its site and model, for alerts.
    site: CompactString,
    model: CompactString,
}

/// The offline detector: `timeout` ms of silence makes a device offline.
pub struct Offline {
    /// Silence, ms, after which a device is offline.
    pub timeout: EventTime,
}

impl Offline {
    fn alert(
        &self,
        device: &CompactString,
        p: &Presence,
        status: Status,
        time: EventTime,
    ) -> DeviceAlert {
        DeviceAlert {
            device: device.clone(),
            site: p.site.clone(),
            model: p.model.clone(),
            status,
            time,
            last_seen: p.last,
            silent_ms: (status == Status::Recovered).then(|| time - p.last),
        }
    }
}

impl KeyedLogic for Offline {
    type Record = Reading;
    type Key = CompactString;
    type State = Presence;
    /// A stamp's reading times (the latest site and model with them).
    type Pending = Vec<(EventTime, CompactString, CompactString)>;
    type Output = DeviceAlert;

    fn key(&self, r: &Reading) -> CompactString {
        r.device.clone()
    }

    fn too_late(&self, r: &Reading, stamp: EventTime) -> Option<String> {
        r.behind(stamp, "offline detector")
    }

    fn stash(&self, pending: &mut Self::Pending, r: Reading) {
        pending.push((r.time, r.site, r.model));
    }

    fn apply(
        &self,
        device: &CompactString,
        p: &mut Presence,
        mut pending: Self::Pending,
        out: &mut Emit<'_, DeviceAlert>,
    ) {
        pending.sort_by_key(|(t, ..)| *t);
        for (time, site, model) in pending {
            let known = p.last > 0 || p.offline || !p.site.is_empty();
            (p.site, p.model) = (site, model);
            if known && !p.offline && time >= p.last.saturating_add(self.timeout) {
                // Silent for the timeout, though the due time had not fired yet.
                let at = p.last + self.timeout;
                out.give(self.alert(device, p, Status::Offline, at));
                p.offline = true;
            }
            if p.offline {
                out.give(self.alert(device, p, Status::Recovered, time));
                p.offline = false;
            }
            p.last = p.last.max(time);
        }
    }

    fn next_due(&self, p: &Presence) -> Option<EventTime> {
        (!p.offline).then(|| p.last.saturating_add(self.timeout))
    }

    fn on_due(&self, device: &CompactString, p: &mut Presence, out: &mut Emit<'_, DeviceAlert>) {
        let at = p.last.saturating_add(self.timeout);
        if !p.offline && at <= out.now() {
            out.give(self.alert(device, p, Status::Offline, at));
            p.offline = true;
        }
    }

    fn is_done(&self, _: &Presence) -> bool {
        // A device is remembered: its silence is the point.
        false
    }

    /// The end of an input is not a device going quiet.
    const DUE_AT_END: bool = false;
}

/// The offline and recovered alerts of `readings` with the run's timeout, and the late
/// readings as dead letters.
pub fn detect<'s>(
    readings: timely::dataflow::StreamVec<'s, EventTime, Reading>,
    ctx: &mut crate::pipeline::Context<'s>,
    name: &str,
) -> (
    timely::dataflow::StreamVec<'s, EventTime, DeviceAlert>,
    timely::dataflow::StreamVec<'s, EventTime, crate::deadletter::DeadLetter>,
) {
    use crate::operators::keyed::keyed_options;
    use crate::operators::KeyedCore;
    let logic = Offline {
        timeout: super::params::offline_after(ctx),
    };
    readings.keyed(name, logic, keyed_options(name))
}
