//! # Nexmark q8 — monitor new users
//!
//! **Asks:** the people who registered and also opened an auction as seller within the same
//! 10 s tumbling window: `id, name, stime` (the window start, as a timestamp), plus
//! `window_start`/`window_end`.
//!
//! **Illustrates:** a windowed join of two event kinds that answers as soon as it can: a row is
//! final the moment both sides of a person's window are in (the window's end adds nothing to it),
//! so it leaves then, not when the window closes — and closing a window emits nothing, so results
//! never wait behind a pass over every person of the window.
//!
//! **Operators and state:** `q8.person_and_seller` ([`NewSellers`], a keyed logic on the keyed
//! core): people and auctions are exchanged by person id (= seller id) into [`SHARDS`](crate::route::SHARDS) (256) shards; per
//! shard and open window, each person's names seen, whether they sold, and so which rows left.
//! A window's state is dropped when the watermark passes its end. Append-only; rows are final
//! when emitted. A record whose window has closed is a dead letter (`late`).

use crate::nexmark::model::Event;
use crate::operators::keyed::{keyed_options, Emit, KeyedLogic};
use crate::operators::{KeyedCore, Window, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::route::shard;
use crate::time::{EventTime, Timestamp};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// Window length, ms.
pub const SIZE_MS: u64 = 10_000;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Person id.
    pub id: u64,
    /// Person name.
    pub name: String,
    /// Window start.
    pub stime: Timestamp,
    /// Window start, epoch ms.
    pub window_start: EventTime,
    /// Window end, epoch ms.
    pub window_end: EventTime,
}

/// A person registering or a seller opening an auction.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Side {
    /// A person registered.
    Person {
        /// Person id.
        id: u64,
        /// Name.
        name: String,
        /// Event time.
        time: EventTime,
    },
    /// A seller opened an auction.
    Seller {
        /// Seller (person) id.
        id: u64,
        /// Event time.
        time: EventTime,
    },
}

impl Side {
    fn id(&self) -> u64 {
        match self {
            Side::Person { id, .. } | Side::Seller { id, .. } => *id,
        }
    }

    fn time(&self) -> EventTime {
        match self {
            Side::Person { time, .. } | Side::Seller { time, .. } => *time,
        }
    }
}

/// One person in one window: the names seen (in order) and whether they sold. Once they have,
/// every name has left as a row.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    names: Vec<String>,
    sold: bool,
}

/// A shard's open windows, by start: the people seen in each.
pub type ShardWindows = BTreeMap<EventTime, FxHashMap<u64, Seen>>;

/// Shards of people per window, emitting a row as soon as a person both registered and sold.
pub struct NewSellers {
    windows: Windows,
}

impl NewSellers {
    /// The (tumbling) window holding event time `t`.
    fn window_of(&self, t: EventTime) -> Window {
        let start = self.windows.pane_of(t);
        Window {
            start,
            end: start + self.windows.size,
        }
    }
}

impl KeyedLogic for NewSellers {
    type Record = Side;
    type Key = u16;
    type State = ShardWindows;
    /// One stamp's records of the shard, in arrival order.
    type Pending = Vec<Side>;
    /// `(person id, name, window)`.
    type Output = (u64, String, Window);

    fn key(&self, side: &Side) -> u16 {
        shard(&side.id())
    }

    fn too_late(&self, side: &Side, stamp: EventTime) -> Option<String> {
        let (t, end) = (side.time(), self.window_of(side.time()).end);
        (end <= stamp).then(|| {
            format!("event time {t}: its window closed at {end}, at or before the frontier {stamp}")
        })
    }

    fn stash(&self, pending: &mut Vec<Side>, side: Side) {
        pending.push(side);
    }

    fn apply(
        &self,
        _shard: &u16,
        open: &mut ShardWindows,
        pending: Vec<Side>,
        out: &mut Emit<'_, Self::Output>,
    ) {
        for side in pending {
            let (id, window) = (side.id(), self.window_of(side.time()));
            let seen = open.entry(window.start).or_default().entry(id).or_default();
            match side {
                Side::Person { name, .. } => {
                    if !seen.names.contains(&name) {
                        if seen.sold {
                            out.give((id, name.clone(), window));
                        }
                        seen.names.push(name);
                    }
                }
                Side::Seller { .. } => {
                    if !seen.sold {
                        seen.sold = true;
                        for name in &seen.names {
                            out.give((id, name.clone(), window));
                        }
                    }
                }
            }
        }
    }

    fn next_due(&self, open: &ShardWindows) -> Option<EventTime> {
        open.first_key_value().map(|(start, _)| start + self.windows.size)
    }

    /// A window closed: its rows have all left; its people are dropped.
    fn on_due(&self, _shard: &u16, open: &mut ShardWindows, out: &mut Emit<'_, Self::Output>) {
        while open
            .first_key_value()
            .is_some_and(|(start, _)| start + self.windows.size <= out.now())
        {
            open.pop_first();
        }
    }

    fn is_done(&self, open: &ShardWindows) -> bool {
        open.is_empty()
    }
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let sides = events.flat_map(|e| match e {
        Event::Person(p) => Some(Side::Person {
            id: p.id,
            name: p.name,
            time: p.date_time.0,
        }),
        Event::Auction(a) => Some(Side::Seller {
            id: a.seller,
            time: a.date_time.0,
        }),
        Event::Bid(_) => None,
    });
    let name = "q8.person_and_seller";
    let logic = NewSellers {
        windows: Windows::tumbling(SIZE_MS),
    };
    let (rows, late) = sides.keyed(name, logic, keyed_options(name));
    ctx.dead_letter(late);
    ctx.emit(rows.map(|(id, name, window)| Row {
        id,
        name,
        stime: Timestamp(window.start),
        window_start: window.start,
        window_end: window.end,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q8",
    description: "monitor new users: people who registered and opened an auction in the same 10 s window",
    columns: &["id", "name", "stime", "window_start", "window_end"],
    writes_files: false,
    params: &[],
    build,
};
