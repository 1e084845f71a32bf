//! The IoT domain's record: one sensor reading of one device — a flat row, so a stream of them
//! can be JSON lines or CSV with a header row (and, later, MQTT payloads).
//!
//! A reading names its device, the site and model the device belongs to (for fleet
//! statistics), the metric measured and its value. The optional `fault` and `fails_at` columns
//! are ground truth — what a generator injected or a data set annotated — carried through for
//! evaluation and never read by a detector. A value that is not a finite number (CSV `NaN`,
//! `inf`) is a decoding error, a dead letter, never a reading.

use crate::record::Record;
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize};

/// One reading of one metric of one device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Event time, epoch ms.
    pub time: EventTime,
    /// The device, e.g. `dev-00042`.
    pub device: CompactString,
    /// Where it is installed, e.g. `site-3`.
    pub site: CompactString,
    /// Its model, e.g. `pump-b`.
    pub model: CompactString,
    /// What was measured, e.g. `temperature`.
    pub metric: CompactString,
    /// The measured value: a finite number.
    #[serde(deserialize_with = "finite")]
    pub value: f64,
    /// Ground truth, if known: the fault this reading shows (`spike`, `stuck`, `drift`,
    /// `degradation`), empty for a normal reading.
    #[serde(default)]
    pub fault: Option<CompactString>,
    /// Ground truth for a degrading device: when it fails (stops reporting), epoch ms.
    #[serde(default)]
    pub fails_at: Option<EventTime>,
}

fn finite<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(serde::de::Error::custom(format!(
            "value {value} is not a finite number"
        )))
    }
}

impl Reading {
    /// Why this reading, stamped `stamp`, is too late for the detector `what` (a keyed logic's
    /// [`too_late`](crate::operators::keyed::KeyedLogic::too_late)): its event time is behind
    /// the stamp, so the device's state has moved past it.
    pub fn behind(&self, stamp: EventTime, what: &str) -> Option<String> {
        crate::operators::keyed::behind(self.time, stamp, what)
    }
}

impl Record for Reading {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_reads_from_json_and_csv_and_refuses_non_finite_values() {
        let json = r#"{"time":5,"device":"d1","site":"s","model":"m","metric":"temperature","value":21.5}"#;
        let r: Reading = serde_json::from_str(json).unwrap();
        assert_eq!((r.time, r.value, r.fault.clone()), (5, 21.5, None));
        let csv_text = "time,device,site,model,metric,value,fault,fails_at\n\
                        5,d1,s,m,temperature,21.5,,\n\
                        6,d1,s,m,vibration,0.9,degradation,900\n\
                        7,d1,s,m,temperature,NaN,,\n";
        let mut rows = csv::Reader::from_reader(csv_text.as_bytes());
        let got: Vec<Result<Reading, _>> = rows.deserialize().collect();
        assert_eq!(got[0].as_ref().unwrap(), &r);
        let degrading = got[1].as_ref().unwrap();
        assert_eq!(degrading.fault.as_deref(), Some("degradation"));
        assert_eq!(degrading.fails_at, Some(900));
        let err = got[2].as_ref().unwrap_err().to_string();
        assert!(err.contains("not a finite number"), "{err}");
    }
}
