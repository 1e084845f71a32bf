//! Closing auctions in event time: the operator behind q4, q6 and q9.
//!
//! Keyed by auction id, it follows each auction's bids timed within `[dateTime, expires]`
//! (inclusive) and keeps only the best so far — highest price, then the earliest, then the least
//! bid by its fields, so the winner does not depend on arrival order. When the frontier passes
//! `expires`, every bid that could count has been seen: the auction and its winning bid leave
//! once, as a settled fact, and the auction's state is dropped. What the operator holds is the
//! auctions still open, not every bid ever made.
//!
//! Event time decides everything, so the results are the same at any worker count and arrival
//! order within the watermark delay:
//! - a bid that arrives before its auction (out of order) waits for it until the frontier passes
//!   the bid's time — by then any auction it could belong to has arrived (an auction opens no
//!   later than its in-time bids); a bid no auction claims is an unmatched row of the join, as
//!   in the batch definition;
//! - an auction that arrives behind the watermark is a dead letter (reason `late`): bids timed
//!   before its arrival may already have been passed over, so its result could be wrong;
//! - a bid that arrives behind the watermark still counts if its auction is open; if its
//!   auction has closed (or never came), it is a dead letter — the settled result is not
//!   reopened.

use crate::deadletter::{DeadLetter, Origin, Reason};
use crate::nexmark::model::{Auction, Bid, Event};
use crate::operators::keyed::{keyed_options, late_letter, Emit, KeyedCore, KeyedLogic};
use crate::time::EventTime;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::fmt::Debug;
use timely::dataflow::operators::vec::Map;
use timely::dataflow::operators::{Concat, OkErr};
use timely::dataflow::StreamVec;
use timely::ExchangeData;

/// An auction as the operator needs it: its id and the interval its bids must fall in. A query
/// that needs only some fields keeps a slimmer type ([`Listing`]) while the auction is open.
pub trait Lot: ExchangeData + Clone + Serialize + DeserializeOwned + Debug {
    /// The auction id.
    fn id(&self) -> u64;
    /// When it opened (its `dateTime`), ms.
    fn opened(&self) -> EventTime;
    /// When it closes, ms.
    fn expires(&self) -> EventTime;
}

/// A bid as the operator needs it: its auction, price and time; the rest of it (its order)
/// breaks ties. A query that needs only the price keeps a [`Price`].
pub trait Offer: ExchangeData + Clone + Serialize + DeserializeOwned + Debug + Ord {
    /// The auction bid on.
    fn auction(&self) -> u64;
    /// The price, cents.
    fn price(&self) -> u64;
    /// The bid's time, ms.
    fn time(&self) -> EventTime;
}

impl Lot for Box<Auction> {
    fn id(&self) -> u64 {
        self.id
    }
    fn opened(&self) -> EventTime {
        self.date_time.0
    }
    fn expires(&self) -> EventTime {
        self.expires.0
    }
}

impl Offer for Bid {
    fn auction(&self) -> u64 {
        self.auction
    }
    fn price(&self) -> u64 {
        self.price
    }
    fn time(&self) -> EventTime {
        self.date_time.0
    }
}

/// The fields of an auction that q4 and q6 use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// Auction id.
    pub id: u64,
    /// Seller.
    pub seller: u64,
    /// Category.
    pub category: u64,
    /// Opened, ms.
    pub opened: EventTime,
    /// Closes, ms.
    pub expires: EventTime,
}

impl Listing {
    /// The listing of an auction (boxed, as events carry it: the signature
    /// [`close_auctions`] takes).
    #[allow(clippy::boxed_local)]
    pub fn of(a: Box<Auction>) -> Listing {
        Listing {
            id: a.id,
            seller: a.seller,
            category: a.category,
            opened: a.date_time.0,
            expires: a.expires.0,
        }
    }
}

impl Lot for Listing {
    fn id(&self) -> u64 {
        self.id
    }
    fn opened(&self) -> EventTime {
        self.opened
    }
    fn expires(&self) -> EventTime {
        self.expires
    }
}

/// The fields of a bid that a winning price needs (ties between equal prices go to the earlier
/// bid, then the lesser bidder: the price is the same either way).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Price {
    /// Auction id.
    pub auction: u64,
    /// Price, cents.
    pub price: u64,
    /// Time, ms.
    pub time: EventTime,
    /// Bidder.
    pub bidder: u64,
}

impl Price {
    /// The price of a bid.
    pub fn of(b: Bid) -> Price {
        Price {
            auction: b.auction,
            price: b.price,
            time: b.date_time.0,
            bidder: b.bidder,
        }
    }
}

impl Offer for Price {
    fn auction(&self) -> u64 {
        self.auction
    }
    fn price(&self) -> u64 {
        self.price
    }
    fn time(&self) -> EventTime {
        self.time
    }
}

/// What the operator reads: auctions and bids, whole (the defaults) or slimmed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuctionOrBid<A = Box<Auction>, B = Bid> {
    /// An auction opening.
    Auction(A),
    /// A bid on an auction.
    Bid(B),
}

impl<A, B> AuctionOrBid<A, B> {
    /// The auction or bid of a Nexmark event (none for a person), kept as `lot` and `offer`
    /// make them.
    pub fn project(
        event: Event,
        lot: impl FnOnce(Box<Auction>) -> A,
        offer: impl FnOnce(Bid) -> B,
    ) -> Option<Self> {
        match event {
            Event::Auction(a) => Some(AuctionOrBid::Auction(lot(a))),
            Event::Bid(b) => Some(AuctionOrBid::Bid(offer(b))),
            Event::Person(_) => None,
        }
    }
}

impl AuctionOrBid {
    /// The auction or bid of a Nexmark event (none for a person), whole.
    pub fn of(event: Event) -> Option<AuctionOrBid> {
        AuctionOrBid::project(event, std::convert::identity, std::convert::identity)
    }
}

/// Whether `bid` beats `best` for an auction: a higher price, then an earlier time, then the
/// lesser bid by its fields.
pub fn beats<B: Offer>(bid: &B, best: &B) -> bool {
    (Reverse(bid.price()), bid.time(), bid) < (Reverse(best.price()), best.time(), best)
}

/// One auction's state while it is open (or while bids wait for it).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "A: Serialize, B: Serialize",
    deserialize = "A: DeserializeOwned, B: DeserializeOwned"
))]
pub struct Open<A, B> {
    /// The auction, once it arrived.
    auction: Option<A>,
    /// Its best in-time bid so far.
    best: Option<B>,
    /// Bids that arrived before their auction.
    waiting: Vec<B>,
}

impl<A, B> Default for Open<A, B> {
    fn default() -> Self {
        Open {
            auction: None,
            best: None,
            waiting: Vec::new(),
        }
    }
}

/// Keeps `bid` in `best` if it is timed within auction `a` (`[dateTime, expires]`) and beats
/// what is there.
fn keep_best<A: Lot, B: Offer>(a: &A, best: &mut Option<B>, bid: B) {
    let in_time = a.opened() <= bid.time() && bid.time() <= a.expires();
    if in_time && best.as_ref().is_none_or(|b| beats(&bid, b)) {
        *best = Some(bid);
    }
}

impl<A: Lot, B: Offer> Open<A, B> {
    /// Takes `bid` into account for the (known) auction.
    fn offer(&mut self, bid: B) {
        if let Some(a) = &self.auction {
            keep_best(a, &mut self.best, bid);
        }
    }
}

/// The dead letter of a second auction with an id already taken.
pub fn duplicate_auction<A: Lot>(operator: &str, auction: &A) -> DeadLetter {
    let raw = serde_json::to_vec(auction).unwrap_or_default();
    DeadLetter::new(
        Origin::Operator {
            operator: operator.to_string(),
        },
        Reason::InvalidEvent,
        format!("a second auction with id {}", auction.id()),
        &raw,
    )
}

/// One auction's records of one stamp, waiting for the frontier.
pub struct Arrivals<A, B> {
    /// The stamp's (first) auction with this id.
    auction: Option<A>,
    /// The best of the bids folded on arrival: their auction was known — applied already and
    /// still open at the stamp, or this stamp's — so only the best in-time one can matter (the
    /// others are dropped at once, which keeps memory at one bid per auction and stamp however
    /// fast bids arrive).
    best: Option<B>,
    /// The rest, in arrival order: bids whose auction was not known yet, repeated auctions.
    records: Vec<AuctionOrBid<A, B>>,
}

impl<A, B> Default for Arrivals<A, B> {
    fn default() -> Self {
        Arrivals {
            auction: None,
            best: None,
            records: Vec::new(),
        }
    }
}

/// The keyed logic of [`close_auctions`].
struct CloseAuctions<A, B> {
    name: String,
    _types: std::marker::PhantomData<fn() -> (A, B)>,
    /// Closes are rounded up to a multiple of this (the stamp granularity, ms): auctions that
    /// expire within one stamp close together, and what follows changes once per stamp.
    granularity: EventTime,
}

impl<A: Lot, B: Offer> CloseAuctions<A, B> {
    /// When auction `a` closes: bids timed at `expires` still count, so once the frontier
    /// passes it, at the next stamp boundary.
    fn close_time(&self, a: &A) -> EventTime {
        a.expires()
            .saturating_add(1)
            .div_ceil(self.granularity)
            .saturating_mul(self.granularity)
    }
}

impl<A: Lot, B: Offer> KeyedLogic for CloseAuctions<A, B> {
    type Record = AuctionOrBid<A, B>;
    type Key = u64;
    type State = Open<A, B>;
    type Pending = Arrivals<A, B>;
    type Output = Result<(A, B), DeadLetter>;

    fn key(&self, record: &AuctionOrBid<A, B>) -> u64 {
        match record {
            AuctionOrBid::Auction(a) => a.id(),
            AuctionOrBid::Bid(b) => b.auction(),
        }
    }

    fn too_late(&self, record: &AuctionOrBid<A, B>, stamp: EventTime) -> Option<String> {
        match record {
            AuctionOrBid::Auction(a) if a.opened() < stamp => Some(format!(
                "auction {} opened at {} but arrived when the watermark was {}: bids before then may have been passed over",
                a.id(),
                crate::time::format_timestamp(a.opened()),
                crate::time::format_timestamp(stamp)
            )),
            _ => None,
        }
    }

    fn stash(&self, pending: &mut Arrivals<A, B>, record: AuctionOrBid<A, B>) {
        self.stash_seeing(pending, record, None, 0);
    }

    const STASH_SEES_STATE: bool = true;

    fn stash_seeing(
        &self,
        pending: &mut Arrivals<A, B>,
        record: AuctionOrBid<A, B>,
        open: Option<&Open<A, B>>,
        stamp: EventTime,
    ) {
        let bid = match record {
            AuctionOrBid::Auction(a) if pending.auction.is_none() => {
                pending.auction = Some(a);
                return;
            }
            AuctionOrBid::Bid(bid) => bid,
            repeated => return pending.records.push(repeated),
        };
        // The auction the bid will be offered to when this stamp is applied: one applied
        // already that closes after the stamp (an auction is never replaced and leaves only at
        // its close), else this stamp's own (applied first). Offers keep the best whatever the
        // order, so only the best in-time bid needs to wait. (A repeated id is refused when
        // applied; bids folded against the refused copy count by its interval.)
        let applied = open
            .and_then(|o| o.auction.as_ref())
            .filter(|a| stamp < self.close_time(a));
        match applied.or(pending.auction.as_ref()) {
            Some(a) => keep_best(a, &mut pending.best, bid),
            None => pending.records.push(AuctionOrBid::Bid(bid)),
        }
    }

    fn apply(
        &self,
        id: &u64,
        open: &mut Open<A, B>,
        pending: Arrivals<A, B>,
        out: &mut Emit<'_, Result<(A, B), DeadLetter>>,
    ) {
        let now = out.now();
        let Arrivals {
            auction,
            best,
            mut records,
        } = pending;
        // The auction first (bids of the same stamp may be its), then the bids folded against
        // it, then the rest — repeated auctions before bids.
        records.sort_by_key(|r| matches!(r, AuctionOrBid::Bid(_)));
        let auction = auction.map(AuctionOrBid::Auction);
        let best = best.map(AuctionOrBid::Bid);
        for record in auction.into_iter().chain(best).chain(records) {
            match record {
                AuctionOrBid::Auction(a) if open.auction.is_some() => {
                    out.give(Err(duplicate_auction(&self.name, &a)));
                }
                AuctionOrBid::Auction(a) => {
                    open.auction = Some(a);
                    for bid in std::mem::take(&mut open.waiting) {
                        open.offer(bid);
                    }
                }
                AuctionOrBid::Bid(bid) if open.auction.is_some() => open.offer(bid),
                AuctionOrBid::Bid(bid) if bid.time() < now => {
                    let detail = format!(
                        "bid on auction {id} arrived when the watermark was {}: the auction has closed or never opened",
                        crate::time::format_timestamp(now)
                    );
                    out.give(Err(late_letter(&self.name, &bid, detail)));
                }
                AuctionOrBid::Bid(bid) => open.waiting.push(bid),
            }
        }
    }

    fn next_due(&self, open: &Open<A, B>) -> Option<EventTime> {
        match &open.auction {
            Some(a) => Some(self.close_time(a)),
            None => open
                .waiting
                .iter()
                .map(|b| b.time().saturating_add(1))
                .min(),
        }
    }

    fn on_due(
        &self,
        _id: &u64,
        open: &mut Open<A, B>,
        out: &mut Emit<'_, Result<(A, B), DeadLetter>>,
    ) {
        let now = out.now();
        match open.auction.take() {
            Some(auction) => {
                if let Some(best) = open.best.take() {
                    out.give(Ok((auction, best)));
                }
            }
            // No auction opened by a waiting bid's time can claim it any more.
            None => open.waiting.retain(|b| b.time() >= now),
        }
    }

    fn is_done(&self, open: &Open<A, B>) -> bool {
        open.auction.is_none() && open.waiting.is_empty()
    }
}

/// Closes the auctions of `events` as the frontier passes their `expires`: each auction with a
/// bid in time leaves once, with its winning bid, at the first multiple of `granularity` ms
/// after `expires` (the pipeline's stamp granularity: see [`Context::policy`]). Auctions and
/// bids are kept as `lot` and `offer` make them — whole ([`std::convert::identity`]) or only
/// what the query uses ([`Listing::of`], [`Price::of`]): bids wait in the operator up to the
/// watermark delay, so their size is most of its memory. The second stream holds the dead
/// letters (late auctions, late bids of closed auctions, duplicate ids).
///
/// [`Context::policy`]: crate::pipeline::Context::policy
pub fn close_auctions<'s, A: Lot, B: Offer>(
    events: StreamVec<'s, EventTime, Event>,
    name: &str,
    granularity: EventTime,
    lot: fn(Box<Auction>) -> A,
    offer: fn(Bid) -> B,
) -> (
    StreamVec<'s, EventTime, (A, B)>,
    StreamVec<'s, EventTime, DeadLetter>,
) {
    let logic = CloseAuctions {
        name: name.to_string(),
        granularity: granularity.max(1),
        _types: std::marker::PhantomData,
    };
    let (outcomes, late) = events
        .flat_map(move |e| AuctionOrBid::project(e, lot, offer))
        .keyed(name, logic, keyed_options(name));
    let (closed, rejected) = outcomes.ok_err(|o| o);
    (closed, late.concat(rejected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    fn auction(id: u64, opened: EventTime, expires: EventTime) -> AuctionOrBid {
        AuctionOrBid::Auction(Box::new(Auction {
            id,
            item_name: "i".into(),
            description: "d".into(),
            initial_bid: 1,
            reserve: 1,
            date_time: Timestamp(opened),
            expires: Timestamp(expires),
            seller: 7,
            category: 10,
            extra: String::new(),
        }))
    }

    fn bid(auction: u64, price: u64, at: EventTime) -> Bid {
        Bid {
            auction,
            bidder: price,
            price,
            channel: "c".into(),
            url: "u".into(),
            date_time: Timestamp(at),
            extra: String::new(),
        }
    }

    /// Applies `records` at stamp `now`, then fires every due time up to `until`; returns what
    /// left, as (time, winning price) or (time, dead-letter detail).
    type Whole = CloseAuctions<Box<Auction>, Bid>;

    fn step(
        logic: &Whole,
        open: &mut Open<Box<Auction>, Bid>,
        now: EventTime,
        records: Vec<AuctionOrBid>,
        until: EventTime,
    ) -> Vec<(EventTime, Result<u64, String>)> {
        let mut out = Vec::new();
        // Stashed as the core does: seeing the state as of the times before `now`.
        let mut pending = Arrivals::default();
        for record in records {
            logic.stash_seeing(&mut pending, record, Some(&*open), now);
        }
        logic.apply(&1, open, pending, &mut Emit::new(now, &mut out));
        while let Some(due) = logic.next_due(open).filter(|&d| d <= until) {
            logic.on_due(&1, open, &mut Emit::new(due, &mut out));
        }
        out.into_iter()
            .map(|(t, o)| (t, o.map(|(_, b)| b.price).map_err(|d| d.detail)))
            .collect()
    }

    fn logic() -> Whole {
        CloseAuctions {
            name: "test".into(),
            granularity: 100,
            _types: std::marker::PhantomData,
        }
    }

    #[test]
    fn the_winner_leaves_once_when_the_auction_closes_and_the_state_is_dropped() {
        let logic = logic();
        let mut open: Open<Box<Auction>, Bid> = Open::default();
        // A bid before its auction (out of order) waits for it; one before the auction opened
        // and one after it expired do not count.
        let early = step(
            &logic,
            &mut open,
            900,
            vec![
                AuctionOrBid::Bid(bid(1, 50, 1500)),
                AuctionOrBid::Bid(bid(1, 99, 900)),
            ],
            900,
        );
        assert!(early.is_empty());
        let opened = step(&logic, &mut open, 1000, vec![auction(1, 1000, 2000)], 1999);
        assert!(opened.is_empty());
        // A later, higher bid at exactly `expires` counts; one just after does not.
        let late = step(
            &logic,
            &mut open,
            2000,
            vec![
                AuctionOrBid::Bid(bid(1, 70, 2000)),
                AuctionOrBid::Bid(bid(1, 500, 2001)),
            ],
            2100,
        );
        assert_eq!(
            late,
            vec![(2100, Ok(70))],
            "closed at the next stamp after expires"
        );
        assert!(logic.is_done(&open), "a closed auction holds nothing");
    }

    #[test]
    fn bids_of_a_known_open_auction_wait_as_one_and_the_others_as_they_came() {
        let logic = logic();
        let mut open: Open<Box<Auction>, Bid> = Open::default();
        step(&logic, &mut open, 1000, vec![auction(1, 1000, 2000)], 1000);
        let mut pending = Arrivals::default();
        for (price, at) in [(30, 1200), (90, 1250), (90, 1210), (10, 1300), (500, 2500)] {
            logic.stash_seeing(
                &mut pending,
                AuctionOrBid::Bid(bid(1, price, at)),
                Some(&open),
                1200,
            );
        }
        // The best in-time bid is all that waits (the one after `expires` cannot count).
        assert!(pending.records.is_empty());
        assert_eq!(
            pending.best.as_ref().map(|b| (b.price, b.date_time.0)),
            Some((90, 1210))
        );
        // At or after the auction's close (2100), bids wait whole: they become dead letters.
        let mut after = Arrivals::default();
        logic.stash_seeing(
            &mut after,
            AuctionOrBid::Bid(bid(1, 40, 1900)),
            Some(&open),
            2100,
        );
        assert_eq!(after.records.len(), 1);
        // Without the state (a bid before its auction), nothing is folded.
        let mut unknown = Arrivals::<Box<Auction>, Bid>::default();
        logic.stash_seeing(
            &mut unknown,
            AuctionOrBid::Bid(bid(2, 40, 1900)),
            None,
            1900,
        );
        assert_eq!(unknown.records.len(), 1);
        // ... until its auction arrives in the same stamp: later bids fold against it.
        logic.stash_seeing(&mut unknown, auction(2, 1850, 3000), None, 1900);
        logic.stash_seeing(
            &mut unknown,
            AuctionOrBid::Bid(bid(2, 45, 1910)),
            None,
            1900,
        );
        logic.stash_seeing(
            &mut unknown,
            AuctionOrBid::Bid(bid(2, 41, 1920)),
            None,
            1900,
        );
        assert_eq!(unknown.records.len(), 1);
        assert_eq!(unknown.best.as_ref().map(|b| b.price), Some(45));
        let mut second: Open<Box<Auction>, Bid> = Open::default();
        let mut out = Vec::new();
        logic.apply(&2, &mut second, unknown, &mut Emit::new(1900, &mut out));
        assert_eq!(second.best.as_ref().map(|b| b.price), Some(45));
        assert!(second.waiting.is_empty() && out.is_empty());
        logic.apply(&1, &mut open, pending, &mut Emit::new(1200, &mut out));
        assert_eq!(open.best.as_ref().map(|b| b.price), Some(90));
    }

    #[test]
    fn ties_go_to_the_earlier_bid_whatever_the_arrival_order() {
        let logic = logic();
        for order in [[0, 1], [1, 0]] {
            let bids = [bid(1, 80, 1200), bid(1, 80, 1100)];
            let mut open: Open<Box<Auction>, Bid> = Open::default();
            step(&logic, &mut open, 1000, vec![auction(1, 1000, 2000)], 1000);
            let records = order
                .iter()
                .map(|&i| AuctionOrBid::Bid(bids[i].clone()))
                .collect();
            step(&logic, &mut open, 1100, records, 1100);
            assert_eq!(open.best.as_ref().map(|b| b.date_time.0), Some(1100));
        }
    }

    #[test]
    fn late_records_are_dead_letters_unless_their_auction_is_still_open() {
        let logic = logic();
        // The auction itself behind the watermark: refused before it reaches the state.
        let AuctionOrBid::Auction(a) = auction(1, 1000, 2000) else {
            unreachable!()
        };
        assert!(logic
            .too_late(&AuctionOrBid::Auction(a.clone()), 1100)
            .is_some());
        assert!(logic.too_late(&AuctionOrBid::Auction(a), 1000).is_none());
        // A late bid of an open auction still counts.
        let mut open: Open<Box<Auction>, Bid> = Open::default();
        step(&logic, &mut open, 1000, vec![auction(1, 1000, 2000)], 1000);
        let counted = step(
            &logic,
            &mut open,
            1800,
            vec![AuctionOrBid::Bid(bid(1, 60, 1500))],
            1800,
        );
        assert!(counted.is_empty());
        assert_eq!(open.best.as_ref().map(|b| b.price), Some(60));
        // Once closed, a late bid is a dead letter; so is one for an auction never seen.
        let closed = step(&logic, &mut open, 1900, vec![], 2100);
        assert_eq!(closed, vec![(2100, Ok(60))]);
        let refused = step(
            &logic,
            &mut open,
            2200,
            vec![AuctionOrBid::Bid(bid(1, 90, 1900))],
            2200,
        );
        assert!(matches!(&refused[..], [(2200, Err(detail))] if detail.contains("closed")));
        assert!(logic.is_done(&open));
    }

    #[test]
    fn a_bid_no_auction_claims_is_dropped_when_the_frontier_passes_it() {
        let logic = logic();
        let mut open: Open<Box<Auction>, Bid> = Open::default();
        let out = step(
            &logic,
            &mut open,
            1000,
            vec![AuctionOrBid::Bid(bid(1, 10, 1050))],
            1051,
        );
        assert!(out.is_empty());
        assert!(
            logic.is_done(&open),
            "no auction opened by 1050 can claim it"
        );
    }
}
