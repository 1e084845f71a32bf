//! # recommend — real-time recommendations from co-occurrence
//!
//! **Asks:** for the user who just acted, which `k` items they have not seen go best with what
//! they did lately? Rows `time, user, item, score, diff`: `+1` when an item enters the user's
//! top-k (or its score changes), `−1` when it leaves; `score` sums, over the user's recent
//! items, the share of their holders who also hold the item.
//!
//! **Illustrates:** incremental recommendation as three keyed stages — users' recent items,
//! items' co-occurrence counts, users' lists — where an action updates only the counts it
//! changes and the acting user's list, with retractions when items age out of a user's recent
//! history or the user goes idle ([`topk`](crate::recommend::topk)).
//!
//! **Windows and state:** no windows. Per user the latest `seen` distinct items
//! (`recommend.history`, retired after `idle`) and the current list (`recommend.users`); per
//! item its holders and co-occurrence counts (`recommend.items`) — bounded by the users'
//! recent items. `--param history=20,seen=100,neighbours=20,k=10,idle=30d`.

use crate::pipeline::{Context, Pipeline};
use crate::recommend::history::history;
use crate::recommend::model::Behaviour;
use crate::recommend::params::{Settings, HISTORY, IDLE, K, NEIGHBOURS, SEEN};
use crate::recommend::topk::{recommendations, RECOMMENDATION_COLUMNS};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(behaviours: StreamVec<'s, EventTime, Behaviour>, ctx: &mut Context<'s>) {
    let settings = Settings::of(ctx);
    let (changes, late) = history(behaviours, "recommend.history", settings);
    ctx.dead_letter(late);
    ctx.emit(recommendations(
        changes,
        "recommend",
        settings.neighbours,
        settings.k,
    ));
}

/// Registry entry.
pub const QUERY: Pipeline<Behaviour> = Pipeline {
    name: "recommend",
    description: "the acting user's top-k unseen items by co-occurrence with their recent items",
    columns: RECOMMENDATION_COLUMNS,
    writes_files: false,
    params: &[HISTORY, SEEN, NEIGHBOURS, K, IDLE],
    build,
};
