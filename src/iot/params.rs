//! The IoT pipelines' parameters (`--param NAME=VALUE`): the offline timeout and the fleet
//! windows.

use crate::cli::parse_duration;
use crate::pipeline::{Context, Param};
use crate::time::EventTime;

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

fn ms_or(ctx: &Context<'_>, param: &Param, default: EventTime) -> EventTime {
    ctx.param(param.name)
        .and_then(|v| positive_ms(v).ok())
        .unwrap_or(default)
}

/// The offline timeout of the run, ms.
pub fn offline_after(ctx: &Context<'_>) -> EventTime {
    ms_or(ctx, &OFFLINE_AFTER, DEFAULT_OFFLINE_AFTER_MS)
}

/// The fleet windows of the run: length and slide, ms. A slide longer than the window is the
/// window (no gaps between windows).
pub fn fleet_windows(ctx: &Context<'_>) -> (EventTime, EventTime) {
    let size = ms_or(ctx, &WINDOW, DEFAULT_WINDOW_MS);
    let slide = ms_or(ctx, &SLIDE, size).min(size);
    (size, slide)
}
