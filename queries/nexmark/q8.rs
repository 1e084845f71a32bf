//! # Nexmark q8 — monitor new users
//!
//! **Asks:** the people who registered and also opened an auction as seller within the same
//! 10 s tumbling window: `id, name, stime` (the window start, as a timestamp), plus
//! `window_start`/`window_end`.
//!
//! **Illustrates:** a windowed join of two event kinds, done as one keyed window aggregation
//! over both (key = person id = seller id), so both sides of a window meet on one worker and
//! the state is released when the window closes.
//!
//! **Operators:** timely [`window_aggregate`](crate::operators::Windowing); a windowed
//! equi-join is cheaper this way than through differential arrangements, which would keep both
//! inputs beyond the window. Append-only; final when the watermark passes the window end.

use crate::nexmark::model::Event;
use crate::operators::{by, Aggregate, Windowing, Windows};
use crate::pipeline::{Context, Pipeline};
use crate::time::{EventTime, Timestamp};
use serde::{Deserialize, Serialize};
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
enum Side {
    Person { id: u64, name: String, time: EventTime },
    Seller { id: u64, time: EventTime },
}

/// The person's names seen (in registration order) and whether they sold.
struct NewSeller;

impl Aggregate for NewSeller {
    type In = Side;
    type Acc = (Vec<String>, bool);
    type Out = (Vec<String>, bool);
    fn empty(&self) -> Self::Acc {
        (Vec::new(), false)
    }
    fn add(&self, acc: &mut Self::Acc, side: Side) {
        match side {
            Side::Person { name, .. } => {
                if !acc.0.contains(&name) {
                    acc.0.push(name);
                }
            }
            Side::Seller { .. } => acc.1 = true,
        }
    }
    fn merge(&self, acc: &mut Self::Acc, other: &Self::Acc) {
        for name in &other.0 {
            self.add(acc, Side::Person { id: 0, name: name.clone(), time: 0 });
        }
        acc.1 |= other.1;
    }
    fn finish(&self, acc: &Self::Acc) -> Self::Out {
        acc.clone()
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
    let (joined, late) = sides.window_aggregate(
        by(
            "q8.person_and_seller",
            |s: &Side| match s {
                Side::Person { id, .. } | Side::Seller { id, .. } => *id,
            },
            |s| match s {
                Side::Person { time, .. } | Side::Seller { time, .. } => *time,
            },
        )
        .fold(|s| s.clone(), NewSeller),
        Windows::tumbling(SIZE_MS),
    );
    ctx.dead_letter(late);
    let rows = joined.flat_map(|r| {
        let (names, sold) = r.value;
        let window = r.window;
        let id = r.key;
        names.into_iter().filter(move |_| sold).map(move |name| Row {
            id,
            name,
            stime: Timestamp(window.start),
            window_start: window.start,
            window_end: window.end,
        })
    });
    ctx.emit(rows);
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q8",
    description: "monitor new users: people who registered and opened an auction in the same 10 s window",
    columns: &["id", "name", "stime", "window_start", "window_end"],
    writes_files: false,
    build,
};
