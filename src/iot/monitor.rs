//! The fleet monitor: every detector of the domain over the same readings, their alerts in one
//! stream, each tagged with its `kind` — `offline` ([`offline`](super::offline)), `anomaly`
//! ([`anomaly`](super::anomaly)), `change` ([`changes`](super::changes)), `warning`
//! ([`warning`](super::warning)) and `stuck` ([`stuck`](super::stuck)).
//!
//! `--param detectors=offline,warning,…` runs a subset (Bayesian change-point detection costs
//! the most per reading). Each detector keys the readings by device on its own: the alerts are
//! exactly those of the single-detector pipelines, at any worker count. A late reading is one
//! dead letter (every detector finds the same readings late; the first one's are kept); a
//! reading of a metric outside the anomaly model still serves the other detectors.

use super::anomaly::{self, AnomalyAlert, AnomalyOutput, Mode};
use super::changes::{self, ChangeRow};
use super::model::Reading;
use super::offline::{self, DeviceAlert};
use super::stuck::{self, StuckRow};
use super::warning::{self, WarningRow};
use crate::pipeline::{Context, Param};
use crate::time::EventTime;
use serde::Serialize;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concatenate;
use timely::dataflow::StreamVec;

/// One alert of the fleet, tagged with the detector that raised it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Alert {
    /// A device went silent or came back.
    Offline(DeviceAlert),
    /// An anomaly episode began or ended.
    Anomaly(AnomalyAlert),
    /// The operating state changed.
    Change(ChangeRow),
    /// Failure is predicted, or the warning cleared.
    Warning(WarningRow),
    /// A sensor froze or moved again.
    Stuck(StuckRow),
}

/// The output columns: the tag, the columns every alert has, then each kind's own.
pub const ALERT_COLUMNS: &[&str] = &[
    "kind",
    "device",
    "site",
    "model",
    "status",
    "time",
    "…each kind's own",
];

/// The detectors, by name, in output order.
pub const DETECTORS: [&str; 5] = ["offline", "anomaly", "change", "warning", "stuck"];

/// `detectors=A,B,…`: the detectors to run.
pub const DETECTORS_PARAM: Param = Param {
    name: "detectors",
    help: "the detectors to run, comma-separated (default offline,anomaly,change,warning,stuck)",
    check: |v| parse_detectors(v).map(drop),
};

fn parse_detectors(v: &str) -> Result<Vec<&'static str>, String> {
    let mut chosen = Vec::new();
    for name in v.split(',').map(str::trim) {
        let Some(known) = DETECTORS.iter().find(|d| **d == name) else {
            return Err(format!(
                "{name:?} is not a detector (known: {})",
                DETECTORS.join(", ")
            ));
        };
        if !chosen.contains(known) {
            chosen.push(*known);
        }
    }
    Ok(chosen)
}

/// Every chosen detector's alerts over `readings`, in one stream; `name` prefixes the
/// operators' names.
pub fn monitor<'s>(
    readings: StreamVec<'s, EventTime, Reading>,
    ctx: &mut Context<'s>,
    name: &str,
) -> StreamVec<'s, EventTime, Alert> {
    let chosen = ctx.param_or(&DETECTORS_PARAM, parse_detectors, DETECTORS.to_vec());
    let mut streams = Vec::new();
    let mut late_once = None;
    for detector in chosen {
        let operator = format!("{name}.{detector}");
        let (alerts, late) = match detector {
            "offline" => {
                let (rows, late) = offline::detect(readings.clone(), ctx, &operator);
                (rows.map(Alert::Offline), late)
            }
            "anomaly" => {
                let detected = anomaly::detect(readings.clone(), ctx, &operator, Mode::Alerts);
                let rows = detected.out.flat_map(|o| match o {
                    AnomalyOutput::Alert(a) => Some(Alert::Anomaly(a)),
                    AnomalyOutput::Score(_) => None,
                });
                (rows, detected.late)
            }
            "change" => {
                let (rows, late) = changes::detect(readings.clone(), ctx, &operator);
                (rows.map(Alert::Change), late)
            }
            "warning" => {
                let (rows, late) = warning::detect(readings.clone(), ctx, &operator);
                (rows.map(Alert::Warning), late)
            }
            _ => {
                let (rows, late) = stuck::detect(readings.clone(), ctx, &operator);
                (rows.map(Alert::Stuck), late)
            }
        };
        late_once.get_or_insert(late);
        streams.push(alerts);
    }
    if let Some(late) = late_once {
        ctx.dead_letter(late);
    }
    readings.scope().concatenate(streams)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detectors_are_named_and_tagged() {
        assert_eq!(
            parse_detectors("stuck, offline,stuck").unwrap(),
            vec!["stuck", "offline"]
        );
        assert!(parse_detectors("offline,magic").is_err());
        let alert = Alert::Stuck(StuckRow {
            device: "d".into(),
            site: "s".into(),
            model: "m".into(),
            status: "stuck".into(),
            time: 5,
            metric: "pressure".into(),
            value: 2.0,
            since: 1,
            repeats: None,
        });
        let json = serde_json::to_string(&alert).unwrap();
        assert!(
            json.starts_with(r#"{"kind":"stuck","device":"d""#),
            "{json}"
        );
    }
}
