//! The fraud pipelines' parameters (`--param NAME=VALUE`): the rule book to start from and the
//! decision thresholds; and the detection dataflow built with them ([`scored`]).

use super::detect::{detect, Scored, Thresholds};
use super::model::FraudEvent;
use super::rules::Rules;
use crate::operators::ingested::Ingested;
use crate::pipeline::{Context, Param};
use crate::time::EventTime;
use std::path::Path;
use timely::dataflow::StreamVec;

/// `rules=FILE`: the rule book to start from (TOML, or JSON for `.json`).
pub const RULES: Param = Param {
    name: "rules",
    help: "the rule book to start from, a TOML (or .json) file (default: built-in rules)",
    check: check_rules,
};

/// `thresholds=REVIEW,BLOCK`: the risks from which a transaction is reviewed, or blocked.
pub const THRESHOLDS: Param = Param {
    name: "thresholds",
    help: "REVIEW,BLOCK: risk from which a transaction is reviewed, blocked (default 0.5,0.85)",
    check: check_thresholds,
};

fn check_rules(value: &str) -> Result<(), String> {
    Rules::from_file(Path::new(value)).map(|_| ())
}

fn parse_thresholds(value: &str) -> Result<Thresholds, String> {
    let (review, block) = value
        .split_once(',')
        .ok_or_else(|| "expected REVIEW,BLOCK, e.g. 0.5,0.85".to_string())?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| (0.0..=1.0).contains(x))
            .ok_or_else(|| format!("{s:?} is not a risk in [0, 1]"))
    };
    let (review, block) = (number(review)?, number(block)?);
    if review > block {
        return Err(format!("review {review} is above block {block}"));
    }
    Ok(Thresholds { review, block })
}

fn check_thresholds(value: &str) -> Result<(), String> {
    parse_thresholds(value).map(|_| ())
}

/// The rule book the run starts from. Checked before the run: a file that changed since and no
/// longer reads is logged, and the built-in rules are used.
pub fn rules(ctx: &Context<'_>) -> Rules {
    let Some(path) = ctx.param(RULES.name) else {
        return Rules::default();
    };
    Rules::from_file(Path::new(path)).unwrap_or_else(|e| {
        tracing::error!("--param rules: {e}; using the built-in rules");
        Rules::default()
    })
}

/// The decision thresholds of the run.
pub fn thresholds(ctx: &Context<'_>) -> Thresholds {
    ctx.param_or(&THRESHOLDS, parse_thresholds, Thresholds::default())
}

/// The detection dataflow ([`detect`]) over the source's records stamped with their ingest
/// time, with the run's rule book, thresholds and stamping granularity; its dead letters go to
/// the run's. For `fraud` and `fraud_scores`.
pub fn scored<'s>(
    events: StreamVec<'s, EventTime, FraudEvent>,
    ctx: &mut Context<'s>,
) -> StreamVec<'s, EventTime, Scored> {
    let granularity = ctx.policy().granularity_ms;
    let events = Ingested::stamp(events);
    let (scored, dead) = detect(events, rules(ctx), thresholds(ctx), granularity);
    ctx.dead_letter(dead);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_two_ordered_risks() {
        assert_eq!(
            parse_thresholds("0.4, 0.9").unwrap(),
            Thresholds {
                review: 0.4,
                block: 0.9
            }
        );
        assert!(parse_thresholds("0.9,0.4").unwrap_err().contains("above"));
        assert!(parse_thresholds("0.5").is_err());
        assert!(parse_thresholds("0.5,2").unwrap_err().contains("[0, 1]"));
    }
}
