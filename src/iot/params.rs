//! The IoT pipelines' parameters (`--param NAME=VALUE`): the offline timeout, the fleet
//! windows, and the anomaly model's metrics, threshold and window.

use crate::cli::parse_duration;
use crate::pipeline::{Context, Param};
use crate::time::EventTime;
use compact_str::CompactString;

/// `offline_after=DURATION`: silence after which a device is offline.
pub const OFFLINE_AFTER: Param = Param {
    name: "offline_after",
    help: "event time without a reading after which a device is offline (default 30s)",
    check: |v| positive_ms(v).map(drop),
};

/// `window=DURATION`: the fleet statistics' window length.
pub const WINDOW: Param = Param {
    name: "window",
    help: "fleet statistics window length (default 1m)",
    check: |v| positive_ms(v).map(drop),
};

/// `slide=DURATION`: how often a fleet window starts (default: the window length — tumbling).
pub const SLIDE: Param = Param {
    name: "slide",
    help: "how often a fleet window starts; less than the window: sliding (default: tumbling)",
    check: |v| positive_ms(v).map(drop),
};

/// `metrics=A,B,…`: the metrics an anomaly sample is made of, in order.
pub const METRICS: Param = Param {
    name: "metrics",
    help:
        "the metrics a sample is made of, comma-separated (default temperature,vibration,pressure)",
    check: |v| parse_metrics(v).map(drop),
};

/// `threshold=SCORE`: the anomaly score from which an episode starts.
pub const THRESHOLD: Param = Param {
    name: "threshold",
    help: "anomaly score in (0, 1] from which an episode starts (default 0.9)",
    check: |v| parse_threshold(v).map(drop),
};

/// `hst_window=N`: samples per Half-Space Trees window.
pub const HST_WINDOW: Param = Param {
    name: "hst_window",
    help: "samples per Half-Space Trees window, per device (default 250)",
    check: |v| parse_window(v).map(drop),
};

/// `hst_seed=N`: the seed the trees' shape is drawn from.
pub const HST_SEED: Param = Param {
    name: "hst_seed",
    help: "seed of the Half-Space Trees' random splits (default 42)",
    check: |v| parse_seed(v).map(drop),
};

/// Default seed of the trees.
pub const DEFAULT_HST_SEED: u64 = 42;

/// The generator's metrics: the default sample.
pub const DEFAULT_METRICS: &str = "temperature,vibration,pressure";
/// Default anomaly threshold.
pub const DEFAULT_THRESHOLD: f64 = 0.9;
/// Default Half-Space Trees window.
pub const DEFAULT_HST_WINDOW: u32 = 250;

fn parse_metrics(value: &str) -> Result<Vec<CompactString>, String> {
    let names: Vec<CompactString> = value
        .split(',')
        .map(|m| CompactString::from(m.trim()))
        .collect();
    if names.iter().any(|m| m.is_empty()) {
        return Err(format!(
            "{value:?}: metric names, comma-separated, none empty"
        ));
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != names.len() {
        return Err(format!("{value:?} names a metric twice"));
    }
    Ok(names)
}

fn parse_threshold(value: &str) -> Result<f64, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|x| *x > 0.0 && *x <= 1.0)
        .ok_or_else(|| format!("{value:?} is not a score in (0, 1]"))
}

fn parse_seed(value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("{value:?} is not a seed (a whole number)"))
}

fn parse_window(value: &str) -> Result<u32, String> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (2..=1_000_000).contains(n))
        .ok_or_else(|| format!("{value:?} is not a window of 2 to 1000000 samples"))
}

/// The anomaly model's metrics of the run.
pub fn metrics(ctx: &Context<'_>) -> Vec<CompactString> {
    let default = DEFAULT_METRICS
        .split(',')
        .map(CompactString::from)
        .collect();
    ctx.param_or(&METRICS, parse_metrics, default)
}

/// The anomaly threshold of the run.
pub fn threshold(ctx: &Context<'_>) -> f64 {
    ctx.param_or(&THRESHOLD, parse_threshold, DEFAULT_THRESHOLD)
}

/// The Half-Space Trees window of the run.
pub fn hst_window(ctx: &Context<'_>) -> u32 {
    ctx.param_or(&HST_WINDOW, parse_window, DEFAULT_HST_WINDOW)
}

/// The trees' seed of the run.
pub fn hst_seed(ctx: &Context<'_>) -> u64 {
    ctx.param_or(&HST_SEED, parse_seed, DEFAULT_HST_SEED)
}

/// Default offline timeout, ms.
pub const DEFAULT_OFFLINE_AFTER_MS: EventTime = 30_000;
/// Default fleet window, ms.
pub const DEFAULT_WINDOW_MS: EventTime = 60_000;

fn positive_ms(value: &str) -> Result<EventTime, String> {
    let d = parse_duration(value)?;
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 || ms > 366 * 86_400_000 {
        return Err(format!("{value}: between 1ms and a year"));
    }
    Ok(ms)
}

/// The offline timeout of the run, ms.
pub fn offline_after(ctx: &Context<'_>) -> EventTime {
    ctx.param_or(&OFFLINE_AFTER, positive_ms, DEFAULT_OFFLINE_AFTER_MS)
}

/// The fleet windows of the run: length and slide, ms. A slide longer than the window is the
/// window (no gaps between windows).
pub fn fleet_windows(ctx: &Context<'_>) -> (EventTime, EventTime) {
    let size = ctx.param_or(&WINDOW, positive_ms, DEFAULT_WINDOW_MS);
    let slide = ctx.param_or(&SLIDE, positive_ms, size).min(size);
    (size, slide)
}
