//! Item-to-item co-occurrence and similar items, maintained incrementally in differential
//! arrangements.
//!
//! From the users' recent items ([`history`](super::history)):
//! - **co-occurrence** `C(a, b)`: the users whose recent items hold both `a` and `b` (a
//!   self-join of the recent items by user, counted); **popularity** `n(a)`: the users whose
//!   recent items hold `a`;
//! - **similarity** — cosine, `C(a, b) / √(n(a)·n(b))` — in millionths (an integer, so sums
//!   are exact and the same in any order or worker count);
//! - **neighbours**: each item's `neighbours` most similar items (ties: the smaller id).
//!
//! Every stage is incremental: an action changes a handful of recent items, which change the
//! counts of their pairs, and the similarities and neighbour lists of the items involved are
//! recomputed. The output is a stream of changes: `+1` for a neighbour that appears (or a new
//! similarity), `−1` for one that goes; when a user's items age out (pushed out of the recent
//! window, or the user idle), their co-occurrences are retracted the same way.
//!
//! The cost: a change of `n(a)` changes the similarity of `a` with every item it co-occurs
//! with, and the neighbour list of `a` is a reduction over all of them — fine for catalogues of
//! thousands of items; the per-user recommendations ([`topk`](super::topk)) do not wait on it.

use super::history::Changed;
use super::params::Settings;
use super::SCALE;
use crate::collections::{ToUpdates, Updates};
use crate::time::EventTime;
use differential_dataflow::operators::CountTotal;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// Cosine similarity of two items from their co-occurrence count and popularities, in
/// millionths, at least 1 (a pair that co-occurs is never "not similar").
pub fn similarity(together: isize, a_users: isize, b_users: isize) -> i64 {
    let cosine = together as f64 / (a_users as f64 * b_users as f64).sqrt();
    ((cosine * SCALE).round() as i64).max(1)
}

/// Orders `(score, item)` pairs best first: higher score, then smaller item.
pub fn best_first(a: &(i64, u64), b: &(i64, u64)) -> std::cmp::Ordering {
    b.0.cmp(&a.0).then(a.1.cmp(&b.1))
}

/// The users' recent items as a collection of `(user, item)` (the changes logged under `name`
/// when the run checkpoints).
pub fn recent_items<'s>(
    changes: StreamVec<'s, EventTime, Changed>,
    name: &str,
) -> Updates<'s, (u64, u64)> {
    changes
        .flat_map(Changed::recent_changes)
        .to_updates(name)
        .explode(|(held, diff)| Some((held, diff as isize)))
}

/// Each item's most similar items: `(item, (neighbour, similarity in millionths))`.
pub fn neighbours<'s>(
    recent: Updates<'s, (u64, u64)>,
    settings: Settings,
) -> Updates<'s, (u64, (u64, i64))> {
    let by_user = recent
        .clone()
        .arrange_by_key_named("recommend.recent_by_user");
    let together = by_user
        .clone()
        .join_core(by_user, |_user, a, b| (a != b).then_some((*a, *b)))
        .count_total();
    let popularity = recent
        .map(|(_user, item)| item)
        .count_total()
        .arrange_by_key_named("recommend.item_users");
    let similar = together
        .map(|((a, b), c)| (a, (b, c)))
        .arrange_by_key_named("recommend.pairs_by_first")
        .join_core(popularity.clone(), |a, (b, c), na| {
            Some((*b, (*a, *c, *na)))
        })
        .arrange_by_key_named("recommend.pairs_by_second")
        .join_core(popularity, |b, (a, c, na), nb| {
            Some((*a, (*b, similarity(*c, *na, *nb))))
        });
    let keep = settings.neighbours;
    similar.reduce_named("recommend.neighbours", move |_item, input, output| {
        let mut best: Vec<(i64, u64)> = input
            .iter()
            .filter(|(_, diff)| *diff > 0)
            .map(|((b, s), _)| (*s, *b))
            .collect();
        best.sort_unstable_by(best_first);
        best.truncate(keep);
        output.extend(best.into_iter().map(|(s, b)| ((b, s), 1isize)));
    })
}
