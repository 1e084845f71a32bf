//! The aggregating keyed operators as methods on a stream: event-time windows, sessions and
//! count windows, each a [`KeyedLogic`](super::KeyedLogic) run by the keyed core with the
//! records read as a [`Fold`] says. When the run checkpoints, each takes part under its name:
//! it starts from its restored states and hands out copies at checkpoints.
//!
//! # Examples
//!
//! Records per key in 10 ms tumbling windows:
//!
//! ```
//! use sluice::operators::{by, Count, Windowing, Windows};
//! use timely::dataflow::operators::capture::Extract;
//! use timely::dataflow::operators::vec::Map;
//! use timely::dataflow::operators::{Capture, Input};
//!
//! let captured = timely::example(|scope| {
//!     let (mut input, stream) = scope.new_input::<Vec<(String, u64)>>();
//!     for (key, t) in [("a", 1), ("a", 7), ("b", 3), ("a", 12)] {
//!         input.send((key.to_string(), t));
//!     }
//!     let per_key = by("counts", |r: &(String, u64)| r.0.clone(), |r| r.1);
//!     let (counts, _late) = stream.window_aggregate(per_key.fold(|_| (), Count), Windows::tumbling(10));
//!     counts.map(|r| (r.key, r.window.start, r.value)).capture()
//! });
//! let mut got: Vec<(String, u64, u64)> =
//!     captured.extract().into_iter().flat_map(|(_, rs)| rs).collect();
//! got.sort();
//! assert_eq!(got, vec![("a".into(), 0, 2), ("a".into(), 10, 1), ("b".into(), 0, 1)]);
//! ```

use super::aggregate::Aggregate;
use super::count_window::{CountLogic, CountStreams, CountWindows};
use super::keyed::keyed_options;
use super::keyed::KeyedCore;
use super::session::SessionLogic;
use super::spec::Fold;
use super::window::{WindowLogic, WindowStreams, Windows};
use crate::time::EventTime;
use serde::de::DeserializeOwned;
use serde::Serialize;
use timely::dataflow::StreamVec;
use timely::ExchangeData;

type In<R, F> = <<F as Fold<R>>::Agg as Aggregate>::In;
type Out<R, F> = <<F as Fold<R>>::Agg as Aggregate>::Out;

/// Windows, sessions and count windows over a stream of records.
pub trait Windowing<'s, R> {
    /// Tumbling or sliding `windows` of each key: one result per key and window when the
    /// frontier passes the window's end (and corrections within the allowed lateness); returns
    /// the results and the dead letters of records that came too late.
    fn window_aggregate<F: Fold<R>>(
        self,
        fold: F,
        windows: Windows,
    ) -> WindowStreams<'s, F::Key, Out<R, F>>;

    /// Sessions of each key with inactivity `gap`: one result per session (its window is
    /// `[first record, last record + gap)`) once it closed; returns the results and the dead
    /// letters of records that came too late to join an open session.
    fn session_aggregate<F: Fold<R>>(
        self,
        fold: F,
        gap: u64,
    ) -> WindowStreams<'s, F::Key, Out<R, F>>;

    /// The last `windows.size` records of each key, in event-time order, every
    /// `windows.every` records; returns the results and the dead letters of records that came
    /// too late to be ordered.
    fn count_window_aggregate<F: Fold<R>>(
        self,
        fold: F,
        windows: CountWindows,
    ) -> CountStreams<'s, F::Key, Out<R, F>>
    where
        R: Ord,
        In<R, F>: Clone + Serialize + DeserializeOwned;
}

impl<'s, R: ExchangeData + Serialize> Windowing<'s, R> for StreamVec<'s, EventTime, R> {
    fn window_aggregate<F: Fold<R>>(
        self,
        fold: F,
        windows: Windows,
    ) -> WindowStreams<'s, F::Key, Out<R, F>> {
        let name = fold.name().to_string();
        let logic = WindowLogic::new(fold, windows);
        self.keyed(&name, logic, keyed_options(&name))
    }

    fn session_aggregate<F: Fold<R>>(
        self,
        fold: F,
        gap: u64,
    ) -> WindowStreams<'s, F::Key, Out<R, F>> {
        let name = fold.name().to_string();
        let logic = SessionLogic::new(fold, gap);
        self.keyed(&name, logic, keyed_options(&name))
    }

    fn count_window_aggregate<F: Fold<R>>(
        self,
        fold: F,
        windows: CountWindows,
    ) -> CountStreams<'s, F::Key, Out<R, F>>
    where
        R: Ord,
        In<R, F>: Clone + Serialize + DeserializeOwned,
    {
        let name = fold.name().to_string();
        let logic = CountLogic::new(fold, windows);
        self.keyed(&name, logic, keyed_options(&name))
    }
}
