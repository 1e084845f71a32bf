//! # Nexmark q3 — local item suggestion
//!
//! **Asks:** auctions in category 10 whose seller lives in Oregon, Idaho or California:
//! `name, city, state, id` (the seller's name, city and state, and the auction id), with `diff`.
//!
//! **Illustrates:** an incremental, unwindowed join: a person may register before or after
//! their auctions, and every match is reported once, as soon as both sides have arrived.
//!
//! **State:** differential — both filtered inputs are arranged by person id and joined
//! (`q3.people`, `q3.auctions`); the arrangements compact as the watermark advances. As in any
//! unwindowed join (Flink's included) they hold every qualifying person and auction. Inputs only
//! grow, so every row has `diff = 1`.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::collections::{ToRows, ToUpdates};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Seller name.
    pub name: String,
    /// Seller city.
    pub city: String,
    /// Seller state.
    pub state: String,
    /// Auction id.
    pub id: u64,
    /// +1 insert, −1 retraction.
    pub diff: i64,
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    let people = events
        .clone()
        .flat_map(|e| match e {
            Event::Person(p) if matches!(p.state.as_str(), "OR" | "ID" | "CA") => {
                Some((p.id, (p.name, p.city, p.state)))
            }
            _ => None,
        })
        .to_updates("q3.people_in");
    let auctions = events
        .flat_map(|e| match e {
            Event::Auction(a) if a.category == 10 => Some((a.seller, a.id)),
            _ => None,
        })
        .to_updates("q3.auctions_in");
    let joined = people
        .arrange_by_key_named("q3.people")
        .join_core(auctions.arrange_by_key_named("q3.auctions"), |_seller, person, auction| {
            Some((person.clone(), *auction))
        });
    ctx.emit(joined.to_rows(|((name, city, state), id), diff| Row {
        name,
        city,
        state,
        id,
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q3",
    description: "local item suggestion: category-10 auctions of sellers in OR, ID or CA (incremental join)",
    columns: &["name", "city", "state", "id", "diff"],
    writes_files: false,
    params: &[],
    build,
};
