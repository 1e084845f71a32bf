//! # recommend_ratings — predicting each rating before it is given
//!
//! **Asks:** what rating will this user give this item? For every `rating` action, the online
//! model's prediction made *before* it learns the rating: `time, user, item, rating,
//! prediction, raw, learned` — a prequential evaluation anyone can score (MAE, RMSE).
//!
//! **Illustrates:** an online learner as ordinary keyed state: biased matrix factorisation
//! updated per event in event-time order, the same at any worker count, checkpointed with the
//! run ([`rating`](crate::recommend::rating)).
//!
//! **Windows and state:** no windows; one model (`recommend_ratings.model`: the running mean,
//! a bias and `factors` latent factors per user and item). `--param factors=10`.

use crate::pipeline::{Context, Pipeline};
use crate::recommend::model::Behaviour;
use crate::recommend::params::{factors, FACTORS};
use crate::recommend::rating::{predict_and_learn, PREDICTION_COLUMNS};
use crate::time::EventTime;
use timely::dataflow::StreamVec;

fn build<'s>(behaviours: StreamVec<'s, EventTime, Behaviour>, ctx: &mut Context<'s>) {
    let (predictions, late) =
        predict_and_learn(behaviours, "recommend_ratings.model", factors(ctx));
    ctx.dead_letter(late);
    ctx.emit(predictions);
}

/// Registry entry.
pub const QUERY: Pipeline<Behaviour> = Pipeline {
    name: "recommend_ratings",
    description: "online biased matrix factorisation: each rating predicted before it is learned",
    columns: PREDICTION_COLUMNS,
    writes_files: false,
    params: &[FACTORS],
    build,
};
