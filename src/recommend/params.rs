//! The recommendation pipelines' parameters (`--param NAME=VALUE`): how much of each user's
//! history counts, how many neighbours and recommendations are kept, when an idle user is
//! retired, and the rating model's size.

use crate::cli::parse_duration;
use crate::pipeline::{Context, Param};
use crate::time::EventTime;

/// `history=N`: a user's most recent distinct items that co-occur.
pub const HISTORY: Param = Param {
    name: "history",
    help: "a user's most recent distinct items that count as co-occurring (default 20)",
    check: |v| parse_history(v).map(drop),
};

/// `seen=N`: a user's most recent distinct items never recommended to them.
pub const SEEN: Param = Param {
    name: "seen",
    help: "a user's most recent distinct items excluded from their recommendations, at least history (default 100)",
    check: |v| parse_seen(v).map(drop),
};

/// `neighbours=M`: the most similar items kept per item.
pub const NEIGHBOURS: Param = Param {
    name: "neighbours",
    help: "the most similar items kept per item (default 20)",
    check: |v| parse_neighbours(v).map(drop),
};

/// `k=K`: recommendations per user.
pub const K: Param = Param {
    name: "k",
    help: "recommendations per user (default 10)",
    check: |v| parse_k(v).map(drop),
};

/// `idle=DURATION`: event time without an action after which a user's history is retired.
pub const IDLE: Param = Param {
    name: "idle",
    help: "event time without an action after which a user's history and recommendations are retracted (default 30d)",
    check: |v| parse_idle(v).map(drop),
};

/// `factors=N`: latent factors of the rating model.
pub const FACTORS: Param = Param {
    name: "factors",
    help: "latent factors per user and item of the rating model (default 10)",
    check: |v| parse_factors(v).map(drop),
};

/// `window=DURATION`: the trending window's length.
pub const TREND_WINDOW: Param = Param {
    name: "window",
    help: "trending window length (default 1h)",
    check: |v| parse_idle(v).map(drop),
};

/// `slide=DURATION`: how often a trending window starts.
pub const TREND_SLIDE: Param = Param {
    name: "slide",
    help: "how often a trending window starts (default 5m)",
    check: |v| parse_idle(v).map(drop),
};

/// `top=N`: items per trending window.
pub const TOP: Param = Param {
    name: "top",
    help: "items reported per trending window (default 10)",
    check: |v| parse_k(v).map(drop),
};

/// Defaults.
pub const DEFAULT_HISTORY: usize = 20;
/// Default `seen`.
pub const DEFAULT_SEEN: usize = 100;
/// Default `neighbours`.
pub const DEFAULT_NEIGHBOURS: usize = 20;
/// Default `k`.
pub const DEFAULT_K: usize = 10;
/// Default `idle`: 30 days.
pub const DEFAULT_IDLE_MS: EventTime = 30 * 86_400_000;
/// Default `factors`.
pub const DEFAULT_FACTORS: usize = 10;

fn count_in(
    value: &str,
    range: std::ops::RangeInclusive<usize>,
    what: &str,
) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{value:?}: {what} must be a whole number in {}..={}",
            range.start(),
            range.end()
        )),
    }
}

fn parse_history(v: &str) -> Result<usize, String> {
    count_in(v, 1..=1000, "history")
}

fn parse_seen(v: &str) -> Result<usize, String> {
    count_in(v, 1..=100_000, "seen")
}

fn parse_neighbours(v: &str) -> Result<usize, String> {
    count_in(v, 1..=1000, "neighbours")
}

fn parse_k(v: &str) -> Result<usize, String> {
    count_in(v, 1..=1000, "k")
}

fn parse_factors(v: &str) -> Result<usize, String> {
    count_in(v, 1..=256, "factors")
}

fn parse_idle(value: &str) -> Result<EventTime, String> {
    let d = parse_duration(value)?;
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 || ms > 10 * 366 * 86_400_000 {
        return Err(format!("{value}: between 1ms and ten years"));
    }
    Ok(ms)
}

/// How much of each user's history the recommendations use, and how many they keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Recent distinct items per user that co-occur.
    pub history: usize,
    /// Recent distinct items per user never recommended to them (≥ `history`).
    pub seen: usize,
    /// Neighbours kept per item.
    pub neighbours: usize,
    /// Recommendations per user.
    pub k: usize,
    /// Idle time after which a user is retired, ms.
    pub idle: EventTime,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            history: DEFAULT_HISTORY,
            seen: DEFAULT_SEEN,
            neighbours: DEFAULT_NEIGHBOURS,
            k: DEFAULT_K,
            idle: DEFAULT_IDLE_MS,
        }
    }
}

impl Settings {
    /// The run's settings (`seen` raised to `history` when smaller).
    pub fn of(ctx: &Context<'_>) -> Settings {
        let history = ctx.param_or(&HISTORY, parse_history, DEFAULT_HISTORY);
        Settings {
            history,
            seen: ctx.param_or(&SEEN, parse_seen, DEFAULT_SEEN).max(history),
            neighbours: ctx.param_or(&NEIGHBOURS, parse_neighbours, DEFAULT_NEIGHBOURS),
            k: ctx.param_or(&K, parse_k, DEFAULT_K),
            idle: ctx.param_or(&IDLE, parse_idle, DEFAULT_IDLE_MS),
        }
    }
}

/// The trending windows of the run: `(size, slide, top)`; a slide longer than the window is
/// the window (tumbling).
pub fn trending(ctx: &Context<'_>) -> (EventTime, EventTime, usize) {
    let size = ctx.param_or(&TREND_WINDOW, parse_idle, 3_600_000);
    let slide = ctx.param_or(&TREND_SLIDE, parse_idle, 300_000).min(size);
    (size, slide, ctx.param_or(&TOP, parse_k, DEFAULT_K))
}

/// The rating model's latent factors for the run.
pub fn factors(ctx: &Context<'_>) -> usize {
    ctx.param_or(&FACTORS, parse_factors, DEFAULT_FACTORS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_checked() {
        assert_eq!(parse_history("5"), Ok(5));
        assert!(parse_history("0").is_err());
        assert!(parse_k("x").is_err());
        assert_eq!(parse_idle("2h"), Ok(7_200_000));
        assert!(parse_idle("0s").is_err());
        assert!(parse_idle("5").is_err());
        assert!(parse_factors("300").is_err());
    }
}
