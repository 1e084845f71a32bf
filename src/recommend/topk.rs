//! Per-user top-k recommendations from item-to-item co-occurrence, refreshed incrementally for
//! the users who act.
//!
//! Three keyed stages, each updating only what an action changes:
//! 1. **users' items** ([`history`](super::history)): a user's recent and seen items; when the
//!    recent ones change, the pairs of recent items that came together or apart;
//! 2. **items** (`….items`, keyed by item `a`): how many users hold `a` among their recent items
//!    (`n(a)`) and with how many of them each other item `b` is held (`C(a, b)`), ranked; after
//!    a stamp's changes are applied, it answers the acting users' queries with its
//!    `neighbours` most co-occurring items and their conditional co-occurrence `C(a, b)/n(a)`
//!    (the share of `a`'s holders who also hold `b`);
//! 3. **users** (`….users`, keyed by user): a user whose recent items changed gets the answers
//!    of all of them; each candidate `b` scores the sum of `C(a, b)/n(a)` over the recent items
//!    `a` whose neighbour it is; seen items are left out; the `k` best (ties: the smaller id)
//!    are the user's recommendations, and what differs from the user's previous list is
//!    written — `−1` for an item that left (or changed score), `+1` for one that came.
//!
//! A stamp's co-occurrence changes are applied before any query of that stamp is answered, so
//! a user's list is computed from the counts as of the end of the stamp that changed the
//! user's items — the same at any worker count. Other users' lists are not recomputed when the
//! counts move: a list is refreshed when its user acts (or is retired, which empties it). Full
//! maintenance of every list would cost, per action, a recomputation for every user holding
//! one of the items whose counts moved (measured: ~150 row changes per action, 0.8 K actions/s)
//! — the serving question is "what to show the user who is here now".
//!
//! Scores are integers in millionths (sums are exact, in any order). State: per item its
//! holders and co-occurrence counts (dropped when no user holds it); per user the seen items
//! and the current list.

use super::history::Changed;
use super::SCALE;
use crate::operators::keyed::{keyed_options, Emit, KeyedCore, KeyedLogic};
use crate::time::EventTime;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::Concat;
use timely::dataflow::StreamVec;

/// The conditional co-occurrence `together / holders` in millionths.
pub fn share(together: i64, holders: i64) -> i64 {
    (together as f64 * SCALE / holders.max(1) as f64).round() as i64
}

/// What the item stage is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToItem {
    /// `item` and `other` came together (`+1`) or apart (`−1`) in a user's recent items.
    Pair {
        /// The item.
        item: u64,
        /// The other item.
        other: u64,
        /// ±1.
        diff: i64,
    },
    /// A user came to hold (`+1`) or stopped holding (`−1`) `item` among their recent items.
    Holder {
        /// The item.
        item: u64,
        /// ±1.
        diff: i64,
    },
    /// `user` wants `item`'s neighbours as of the end of this stamp.
    Query {
        /// The item.
        item: u64,
        /// The user asking.
        user: u64,
    },
}

impl ToItem {
    fn item(&self) -> u64 {
        match self {
            ToItem::Pair { item, .. }
            | ToItem::Holder { item, .. }
            | ToItem::Query { item, .. } => *item,
        }
    }
}

/// What the user stage is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToUser {
    /// `item` came into (`+1`) or left (`−1`) the user's seen items.
    Seen {
        /// The user.
        user: u64,
        /// The item.
        item: u64,
        /// ±1.
        diff: i64,
    },
    /// The user's recent items changed: recompute the list (from this stamp's answers).
    Refresh {
        /// The user.
        user: u64,
    },
    /// One recent item's neighbours: `(neighbour, C(a, b)/n(a) in millionths)`.
    Answer {
        /// The user.
        user: u64,
        /// The recent item.
        item: u64,
        /// Its best neighbours.
        neighbours: Vec<(u64, i64)>,
    },
}

impl ToUser {
    fn user(&self) -> u64 {
        match self {
            ToUser::Seen { user, .. } | ToUser::Refresh { user } | ToUser::Answer { user, .. } => {
                *user
            }
        }
    }
}

/// The messages a user's change sends to the item stage: pair and holder changes, and the
/// queries of a refresh.
pub fn to_items(change: &Changed) -> Vec<ToItem> {
    let mut out = Vec::new();
    change.pair_changes(|item, other, diff| out.push(ToItem::Pair { item, other, diff }));
    out.extend(
        change
            .recent_out
            .iter()
            .map(|&item| ToItem::Holder { item, diff: -1 }),
    );
    out.extend(
        change
            .recent_in
            .iter()
            .map(|&item| ToItem::Holder { item, diff: 1 }),
    );
    if change.recent_changed() {
        let user = change.user;
        out.extend(
            change
                .recent
                .iter()
                .map(|&item| ToItem::Query { item, user }),
        );
    }
    out
}

/// The messages a user's change sends straight to the user stage: seen changes and a refresh.
pub fn to_user(change: Changed) -> Vec<ToUser> {
    let user = change.user;
    let mut out: Vec<ToUser> = change
        .seen_out
        .iter()
        .map(|&item| ToUser::Seen {
            user,
            item,
            diff: -1,
        })
        .chain(change.seen_in.iter().map(|&item| ToUser::Seen {
            user,
            item,
            diff: 1,
        }))
        .collect();
    if change.recent_changed() {
        out.push(ToUser::Refresh { user });
    }
    out
}

/// One item's holders, co-occurrence counts and best co-occurring items.
///
/// The best ones are kept as counts move: a count going up can only move its item up (into the
/// best, pushing the worst of them out); a count going down moves an item down, and when it is
/// one of the best, another item may now beat it — only then is the list marked stale, and it
/// is rebuilt from the counts when next asked for (once per stamp at most).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ItemCounts {
    holders: i64,
    counts: FxHashMap<u64, i64>,
    /// `(−count, other)` of the best `m` (or all, when fewer), sorted: the most co-occurring
    /// first, ties by the smaller id. Valid unless `stale`.
    best: Vec<(i64, u64)>,
    stale: bool,
}

impl ItemCounts {
    /// `other`'s count changes by `diff` (±1); `m` best are kept.
    fn pair(&mut self, other: u64, diff: i64, m: usize) {
        let count = self.counts.entry(other).or_insert(0);
        let old = *count;
        *count += diff;
        let new = *count;
        if new <= 0 {
            self.counts.remove(&other);
        }
        if self.stale {
            return;
        }
        let at = if old > 0 {
            self.best.iter().position(|e| *e == (-old, other))
        } else {
            None
        };
        match at {
            Some(i) if diff > 0 => {
                self.best[i].0 = -new;
                self.best[..=i].sort_unstable();
            }
            Some(i) => {
                // Down: fine while no item is left outside the best.
                let outside = self.counts.len() + usize::from(new <= 0) > self.best.len();
                if !outside {
                    if new > 0 {
                        self.best[i].0 = -new;
                        self.best[i..].sort_unstable();
                    } else {
                        self.best.remove(i);
                    }
                } else {
                    self.stale = true;
                }
            }
            None if diff > 0 => {
                let entry = (-new, other);
                if self.best.len() < m {
                    let i = self.best.partition_point(|e| *e < entry);
                    self.best.insert(i, entry);
                } else if self.best.last().is_some_and(|worst| entry < *worst) {
                    self.best.pop();
                    let i = self.best.partition_point(|e| *e < entry);
                    self.best.insert(i, entry);
                }
            }
            None => {} // an item outside the best went down
        }
    }

    fn best(&mut self, m: usize) -> Vec<(u64, i64)> {
        if self.stale {
            let mut all: Vec<(i64, u64)> = self.counts.iter().map(|(o, c)| (-*c, *o)).collect();
            if all.len() > m {
                all.select_nth_unstable(m);
                all.truncate(m);
            }
            all.sort_unstable();
            self.best = all;
            self.stale = false;
        }
        self.best
            .iter()
            .map(|&(c, other)| (other, share(-c, self.holders)))
            .collect()
    }
}

struct Items {
    neighbours: usize,
}

impl KeyedLogic for Items {
    type Record = ToItem;
    type Key = u64;
    type State = ItemCounts;
    type Pending = Vec<ToItem>;
    type Output = ToUser;

    fn key(&self, m: &ToItem) -> u64 {
        m.item()
    }

    fn too_late(&self, _: &ToItem, _: EventTime) -> Option<String> {
        None
    }

    fn stash(&self, pending: &mut Vec<ToItem>, m: ToItem) {
        pending.push(m);
    }

    fn apply(
        &self,
        item: &u64,
        state: &mut ItemCounts,
        pending: Vec<ToItem>,
        out: &mut Emit<'_, ToUser>,
    ) {
        let mut users = Vec::new();
        for m in pending {
            match m {
                ToItem::Pair { other, diff, .. } => state.pair(other, diff, self.neighbours),
                ToItem::Holder { diff, .. } => state.holders += diff,
                ToItem::Query { user, .. } => users.push(user),
            }
        }
        if users.is_empty() {
            return;
        }
        users.sort_unstable();
        users.dedup();
        let neighbours = state.best(self.neighbours);
        for user in users {
            out.give(ToUser::Answer {
                user,
                item: *item,
                neighbours: neighbours.clone(),
            });
        }
    }

    fn is_done(&self, state: &ItemCounts) -> bool {
        state.holders == 0 && state.counts.is_empty()
    }
}

/// One user's seen items and current recommendations.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserList {
    /// Sorted.
    seen: Vec<u64>,
    /// `(item, score)`, best first.
    list: Vec<(u64, i64)>,
}

/// One change of a user's recommendations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// When it changed (the stamp of the action or retirement that changed it).
    pub time: EventTime,
    /// The user.
    pub user: u64,
    /// The recommended item.
    pub item: u64,
    /// Its score: the summed share of the user's recent items' holders who also hold it.
    pub score: f64,
    /// +1 recommended (with this score), −1 no longer.
    pub diff: i64,
}

/// The columns of a [`Recommendation`] row.
pub const RECOMMENDATION_COLUMNS: &[&str] = &["time", "user", "item", "score", "diff"];

struct Users {
    k: usize,
}

impl KeyedLogic for Users {
    type Record = ToUser;
    type Key = u64;
    type State = UserList;
    type Pending = Vec<ToUser>;
    type Output = Recommendation;

    fn key(&self, m: &ToUser) -> u64 {
        m.user()
    }

    fn too_late(&self, _: &ToUser, _: EventTime) -> Option<String> {
        None
    }

    fn stash(&self, pending: &mut Vec<ToUser>, m: ToUser) {
        pending.push(m);
    }

    fn apply(
        &self,
        user: &u64,
        state: &mut UserList,
        pending: Vec<ToUser>,
        out: &mut Emit<'_, Recommendation>,
    ) {
        let mut refresh = false;
        let mut answers = Vec::new();
        for m in pending {
            match m {
                ToUser::Seen { item, diff, .. } => match state.seen.binary_search(&item) {
                    Err(at) if diff > 0 => state.seen.insert(at, item),
                    Ok(at) if diff < 0 => {
                        state.seen.remove(at);
                    }
                    _ => {}
                },
                ToUser::Refresh { .. } => refresh = true,
                ToUser::Answer {
                    item, neighbours, ..
                } => answers.push((item, neighbours)),
            }
        }
        if !refresh {
            return;
        }
        // Every candidate of every recent item, summed per item (sorted and merged: cheaper
        // than a map for a few hundred).
        let mut candidates: Vec<(u64, i64)> =
            Vec::with_capacity(answers.iter().map(|(_, n)| n.len()).sum());
        for (_, neighbours) in &answers {
            candidates.extend(
                neighbours
                    .iter()
                    .filter(|(b, _)| state.seen.binary_search(b).is_err()),
            );
        }
        candidates.sort_unstable_by_key(|c| c.0);
        let mut list: Vec<(u64, i64)> = Vec::with_capacity(candidates.len());
        for (b, s) in candidates {
            match list.last_mut() {
                Some(last) if last.0 == b => last.1 += s,
                _ => list.push((b, s)),
            }
        }
        let order = |a: &(u64, i64), b: &(u64, i64)| b.1.cmp(&a.1).then(a.0.cmp(&b.0));
        if list.len() > self.k {
            list.select_nth_unstable_by(self.k, order);
            list.truncate(self.k);
        }
        list.sort_unstable_by(order);
        let now = out.now();
        let row = |(item, score): (u64, i64), diff| Recommendation {
            time: now,
            user: *user,
            item,
            score: score as f64 / SCALE,
            diff,
        };
        for old in state.list.iter().filter(|e| !list.contains(e)) {
            out.give(row(*old, -1));
        }
        for new in list.iter().filter(|e| !state.list.contains(e)) {
            out.give(row(*new, 1));
        }
        state.list = list;
    }

    fn is_done(&self, state: &UserList) -> bool {
        state.seen.is_empty() && state.list.is_empty()
    }
}

/// Each acting user's recommendation changes from their items' changes, by the keyed stages
/// `{name}.items` and `{name}.users`.
pub fn recommendations<'s>(
    changes: StreamVec<'s, EventTime, Changed>,
    name: &str,
    neighbours: usize,
    k: usize,
) -> StreamVec<'s, EventTime, Recommendation> {
    let items_name = format!("{name}.items");
    let users_name = format!("{name}.users");
    let (answers, _never_late) = changes.clone().flat_map(|c| to_items(&c)).keyed(
        &items_name,
        Items { neighbours },
        keyed_options(&items_name),
    );
    let (rows, _never_late) = answers.concat(changes.flat_map(to_user)).keyed(
        &users_name,
        Users { k },
        keyed_options(&users_name),
    );
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best `m` of `counts` from scratch.
    fn from_scratch(counts: &FxHashMap<u64, i64>, holders: i64, m: usize) -> Vec<(u64, i64)> {
        let mut all: Vec<(i64, u64)> = counts.iter().map(|(o, c)| (-*c, *o)).collect();
        all.sort_unstable();
        all.into_iter()
            .take(m)
            .map(|(c, o)| (o, share(-c, holders)))
            .collect()
    }

    #[test]
    fn the_best_co_occurring_items_follow_every_change() {
        let mut x = 99u64;
        for m in [1, 3, 6] {
            let mut item = ItemCounts {
                holders: 10,
                ..ItemCounts::default()
            };
            let mut truth: FxHashMap<u64, i64> = FxHashMap::default();
            for step in 0..20_000u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let other = x % 12;
                let have = truth.get(&other).copied().unwrap_or(0);
                let diff = if have > 0 && x.is_multiple_of(3) {
                    -1
                } else {
                    1
                };
                item.pair(other, diff, m);
                *truth.entry(other).or_insert(0) += diff;
                truth.retain(|_, c| *c > 0);
                if step.is_multiple_of(7) {
                    assert_eq!(
                        item.best(m),
                        from_scratch(&truth, 10, m),
                        "step {step}, m {m}"
                    );
                }
            }
            assert_eq!(item.counts, truth);
        }
    }
}
