//! Each user's recent items, as an updating collection: the keyed stage every recommendation
//! stands on.
//!
//! Per user the stage keeps the most recent distinct items the user acted on (any action), up
//! to `seen` of them, newest last; acting on an item again makes it the newest. The newest
//! `history` of them are the user's **recent** items (they co-occur with each other); all of
//! them are **seen** (never recommended back). Whenever a stamp changes either set, the items
//! that left and the ones that came are reported ([`Changed`]) at that stamp — so an item
//! pushed out of the recent window by newer ones, or a user idle for `idle`, takes its
//! co-occurrences with it. Records of one stamp are applied in `(time, item, action)` order,
//! so the sets are the same at any worker count and arrival order.

use super::model::Behaviour;
use super::params::Settings;
use crate::deadletter::DeadLetter;
use crate::operators::keyed::{keyed_options, Emit, KeyedCore, KeyedLogic};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::collections::VecDeque;
use timely::dataflow::StreamVec;

/// How one stamp (or the user's retirement) changed a user's items; every list sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changed {
    /// The user.
    pub user: u64,
    /// The recent items after the change.
    pub recent: Vec<u64>,
    /// Recent items that came in.
    pub recent_in: Vec<u64>,
    /// Recent items that went out.
    pub recent_out: Vec<u64>,
    /// Seen items that came in.
    pub seen_in: Vec<u64>,
    /// Seen items that went out.
    pub seen_out: Vec<u64>,
}

impl Changed {
    /// Whether the recent items changed.
    pub fn recent_changed(&self) -> bool {
        !self.recent_in.is_empty() || !self.recent_out.is_empty()
    }

    /// The recent items' changes as `((user, item), ±1)` updates.
    pub fn recent_changes(self) -> impl Iterator<Item = ((u64, u64), i64)> {
        let user = self.user;
        let out = self.recent_out.into_iter().map(move |i| ((user, i), -1));
        out.chain(self.recent_in.into_iter().map(move |i| ((user, i), 1)))
    }

    /// The co-occurrence changes: `(a, b, ±1)` for every ordered pair of distinct recent items
    /// that came together or apart.
    pub fn pair_changes(&self, mut give: impl FnMut(u64, u64, i64)) {
        let came = |i: &u64| self.recent_in.binary_search(i).is_ok();
        // Pairs that went: an item that went out with every item it was with before (the
        // ones that stayed and the others that went).
        for &x in &self.recent_out {
            for &y in self.recent.iter().filter(|y| !came(y)) {
                give(x, y, -1);
                give(y, x, -1);
            }
            for &y in self.recent_out.iter().filter(|y| **y != x) {
                give(x, y, -1);
            }
        }
        // Pairs that came: an item that came in with every item it is with now.
        for &x in &self.recent_in {
            for &y in self.recent.iter().filter(|y| **y != x) {
                give(x, y, 1);
                if !came(&y) {
                    give(y, x, 1);
                }
            }
        }
    }
}

/// One user's items, newest last, and the stamp of their latest action.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserItems {
    items: VecDeque<u64>,
    last: Option<EventTime>,
}

/// The keyed logic of [`history`].
struct History {
    settings: Settings,
}

impl History {
    fn recent(&self, items: &VecDeque<u64>) -> Vec<u64> {
        let skip = items.len().saturating_sub(self.settings.history);
        items.iter().skip(skip).copied().collect()
    }

    fn sets(&self, items: &VecDeque<u64>) -> (Vec<u64>, Vec<u64>) {
        (self.recent(items), items.iter().copied().collect())
    }
}

/// The items of `before` not in `after` and of `after` not in `before` (both sorted).
fn diff(before: &[u64], after: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let out = before
        .iter()
        .filter(|i| after.binary_search(i).is_err())
        .copied()
        .collect();
    let came = after
        .iter()
        .filter(|i| before.binary_search(i).is_err())
        .copied()
        .collect();
    (came, out)
}

/// What changed from `(recent, seen)` before to after, if anything did.
fn changed(
    user: u64,
    (mut recent_before, mut seen_before): (Vec<u64>, Vec<u64>),
    (mut recent, mut seen): (Vec<u64>, Vec<u64>),
) -> Option<Changed> {
    recent_before.sort_unstable();
    seen_before.sort_unstable();
    recent.sort_unstable();
    seen.sort_unstable();
    let (recent_in, recent_out) = diff(&recent_before, &recent);
    let (seen_in, seen_out) = diff(&seen_before, &seen);
    let change = Changed {
        user,
        recent,
        recent_in,
        recent_out,
        seen_in,
        seen_out,
    };
    (change.recent_changed() || !change.seen_in.is_empty() || !change.seen_out.is_empty())
        .then_some(change)
}

impl KeyedLogic for History {
    type Record = Behaviour;
    type Key = u64;
    type State = UserItems;
    type Pending = SmallVec<[(EventTime, u64, u8); 2]>;
    type Output = Changed;

    const DUE_AT_END: bool = false;

    fn key(&self, record: &Behaviour) -> u64 {
        record.user
    }

    fn too_late(&self, record: &Behaviour, stamp: EventTime) -> Option<String> {
        record.behind(stamp, "user history")
    }

    fn stash(&self, pending: &mut Self::Pending, record: Behaviour) {
        pending.push((record.time, record.item, record.action as u8));
    }

    fn apply(
        &self,
        user: &u64,
        state: &mut UserItems,
        mut pending: Self::Pending,
        out: &mut Emit<'_, Changed>,
    ) {
        pending.sort_unstable();
        let before = self.sets(&state.items);
        for (_, item, _) in pending {
            if let Some(at) = state.items.iter().position(|i| *i == item) {
                state.items.remove(at);
            }
            state.items.push_back(item);
            if state.items.len() > self.settings.seen {
                state.items.pop_front();
            }
        }
        state.last = Some(out.now());
        if let Some(change) = changed(*user, before, self.sets(&state.items)) {
            out.give(change);
        }
    }

    fn next_due(&self, state: &UserItems) -> Option<EventTime> {
        state.last.map(|t| t.saturating_add(self.settings.idle))
    }

    fn on_due(&self, user: &u64, state: &mut UserItems, out: &mut Emit<'_, Changed>) {
        let before = self.sets(&state.items);
        *state = UserItems::default();
        if let Some(change) = changed(*user, before, Default::default()) {
            out.give(change);
        }
    }

    fn is_done(&self, state: &UserItems) -> bool {
        state.last.is_none()
    }
}

/// How each user's recent and seen items change (one [`Changed`] per user at each stamp or
/// retirement that changed them), by the keyed stage `name`; behaviours behind the stage's
/// frontier are dead letters.
pub fn history<'s>(
    behaviours: StreamVec<'s, EventTime, Behaviour>,
    name: &str,
    settings: Settings,
) -> (
    StreamVec<'s, EventTime, Changed>,
    StreamVec<'s, EventTime, DeadLetter>,
) {
    behaviours.keyed(name, History { settings }, keyed_options(name))
}
