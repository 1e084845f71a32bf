//! # recommend_similar — items like this one
//!
//! **Asks:** for every item, which `neighbours` items are most often in the same users' recent
//! histories (cosine similarity)? Rows `time, item, neighbour, similarity, diff`, `+1`/`−1` as
//! neighbour lists change — "customers who looked at this also looked at".
//!
//! **Illustrates:** an incrementally maintained self-join and top-k per key on differential
//! dataflow, with retractions as users' recent items age out.
//!
//! **Windows and state:** no windows; per user the latest distinct items
//! (`recommend_similar.history`); arrangements of pair counts, popularity and similarities.
//! `--param history=20,neighbours=20,idle=30d`.

use crate::collections::ToRows;
use crate::pipeline::{Context, Pipeline};
use crate::recommend::cooccurrence::{neighbours, recent_items};
use crate::recommend::SCALE;
use crate::recommend::history::history;
use crate::recommend::model::Behaviour;
use crate::recommend::params::{Settings, HISTORY, IDLE, NEIGHBOURS};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::StreamVec;

/// One change of an item's neighbours.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// When it changed.
    pub time: EventTime,
    /// The item.
    pub item: u64,
    /// One of its most similar items.
    pub neighbour: u64,
    /// Cosine similarity of the two.
    pub similarity: f64,
    /// +1 a neighbour (with this similarity), −1 no longer.
    pub diff: i64,
}

fn build<'s>(behaviours: StreamVec<'s, EventTime, Behaviour>, ctx: &mut Context<'s>) {
    let mut settings = Settings::of(ctx);
    settings.seen = settings.history; // nothing here is excluded per user
    let (changes, late) = history(behaviours, "recommend_similar.history", settings);
    ctx.dead_letter(late);
    let recent = recent_items(changes, "recommend_similar.recent");
    let similar = neighbours(recent, settings);
    ctx.emit(similar.to_rows_at(|(item, (neighbour, s)), time, diff| Row {
        time,
        item,
        neighbour,
        similarity: s as f64 / SCALE,
        diff,
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Behaviour> = Pipeline {
    name: "recommend_similar",
    description: "each item's most similar items by co-occurrence in users' recent histories",
    columns: &["time", "item", "neighbour", "similarity", "diff"],
    writes_files: false,
    params: &[HISTORY, NEIGHBOURS, IDLE],
    build,
};
