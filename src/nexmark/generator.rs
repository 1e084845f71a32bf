//! The Nexmark event generator, following the Flink/Beam suite's defaults.
//!
//! Event `n` (a global event number) is a pure function of `(config, n)`: its kind comes from
//! `n % 50` (1 person : 3 auctions : 46 bids), its event time is `base + n × 10⁶/rate µs`, and its
//! random fields come from a generator seeded with `(seed, n)` — as Beam seeds `new Random(eventId)`.
//! So any split of the event numbers over workers and processes generates exactly the same events,
//! and `sluice gen` writes the same events a `--source nexmark` run reads.
//!
//! Defaults as in Flink's `NexmarkConfiguration`: 1000 active people, 100 in-flight auctions, hot
//! auction ratio 2, hot seller/bidder ratio 4, 5 categories from 10, ids from 1000, prices
//! `round(10^(U·6)) × 100` cents, channels half from 4 hot names else one of 10,000, and `extra`
//! padding toward 200 / 500 / 100 byte persons / auctions / bids. `--hot-key P` puts P % of the
//! bids on the first auction (a skew test); `--burst` changes only the event times.

use super::model::{Auction, Bid, Event, Person};
use crate::connectors::generator::{Generate, SplitMix64 as Rng};
pub use crate::connectors::generator::{GeneratorConfig, DEFAULT_BASE_TIME};
use crate::time::{EventTime, Timestamp};

const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const TOTAL_PROPORTION: u64 = 50;
const FIRST_PERSON_ID: u64 = 1000;
const FIRST_AUCTION_ID: u64 = 1000;
const FIRST_CATEGORY_ID: u64 = 10;
const NUM_CATEGORIES: u64 = 5;
const NUM_ACTIVE_PEOPLE: u64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
const PERSON_ID_LEAD: u64 = 10;
const AUCTION_ID_LEAD: u64 = 10;
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_ID_STRIDE: u64 = 100;
const HOT_CHANNELS_RATIO: u64 = 2;
const CHANNELS_NUMBER: u64 = 10_000;
const URL_CHANNELS_RATIO: u64 = 10;
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;

const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];

/// A random byte → a letter: `a`–`y` uniformly-ish, with Beam's `z` read as a space.
const LETTERS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = b'a' + ((i * 26) >> 8) as u8;
        table[i] = if c == b'z' { b' ' } else { c };
        i += 1;
    }
    table
};

/// 64 KiB of random letters, from which strings are cut.
static LETTER_POOL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut rng = Rng::seeded(0x5EED, 0);
    let mut bytes = Vec::with_capacity(1 << 16);
    rng.push_letters(&mut bytes, 1 << 16);
    ascii(bytes)
});

/// Bytes known to be ASCII as a `String`.
fn ascii(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_default()
}

/// Nexmark's random strings and prices, drawn from the shared generator RNG.
trait Draw {
    /// Appends `len` random lowercase letters (with `z` read as a space, as Beam does).
    fn push_letters(&mut self, out: &mut Vec<u8>, len: usize);
    /// `len` random letters as a `String`.
    fn letters(&mut self, len: usize) -> String;
    /// A string of 3 to `max_len − 1` letters.
    fn string(&mut self, max_len: usize) -> String;
    /// Padding that brings an event of `current` bytes to about `average` bytes (±20 %).
    fn extra(&mut self, current: usize, average: usize) -> String;
    /// A price, `round(10^(U·6)) × 100` cents.
    fn price(&mut self) -> u64;
}

impl Draw for Rng {
    /// Appends `len` random lowercase letters (with `z` read as a space, as Beam does).
    fn push_letters(&mut self, out: &mut Vec<u8>, len: usize) {
        let mut left = len;
        while left > 0 {
            let letters = self
                .next_u64()
                .to_le_bytes()
                .map(|b| LETTERS[usize::from(b)]);
            let n = left.min(8);
            out.extend_from_slice(&letters[..n]);
            left -= n;
        }
    }

    /// `len` random letters as a `String`: a slice of the shared letter pool at a random offset
    /// (one draw and a copy, instead of one draw per eight letters).
    fn letters(&mut self, len: usize) -> String {
        let pool: &str = &LETTER_POOL;
        let len = len.min(pool.len());
        let start = self.below((pool.len() - len + 1) as u64) as usize;
        pool[start..start + len].to_owned()
    }

    /// A string of 3 to `max_len − 1` letters.
    fn string(&mut self, max_len: usize) -> String {
        let len = 3 + self.below(max_len as u64 - 3) as usize;
        self.letters(len)
    }

    /// Padding that brings an event of `current` bytes to about `average` bytes (±20 %).
    fn extra(&mut self, current: usize, average: usize) -> String {
        if current > average {
            return String::new();
        }
        let want = average - current;
        let delta = (want as f64 * 0.2).round() as usize;
        let len = want - delta
            + if delta == 0 {
                0
            } else {
                self.below(2 * delta as u64) as usize
            };
        self.letters(len)
    }

    fn price(&mut self) -> u64 {
        // 10^(6u) as e^(6u·ln 10): exp is cheaper than a general pow.
        (self.unit() * 6.0 * std::f64::consts::LN_10).exp().round() as u64 * 100
    }
}

/// The Nexmark generator: `event(n)` for any global event number `n`.
pub struct Generator {
    config: GeneratorConfig,
    hot_urls: [String; 4],
}

impl Generator {
    /// A generator for `config`.
    pub fn new(config: GeneratorConfig) -> Generator {
        let mut rng = Rng::seeded(config.seed, u64::MAX);
        let hot_urls = std::array::from_fn(|_| base_url(&mut rng));
        Generator { config, hot_urls }
    }

    /// The configuration.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// Event time of event `n`: `base + n × 10⁶ / rate` µs, in ms.
    pub fn event_time(&self, n: u64) -> EventTime {
        self.config.event_time(n)
    }

    /// Event number `n`.
    pub fn event(&mut self, n: u64) -> Event {
        let mut rng = Rng::seeded(self.config.seed, n);
        let time = Timestamp(self.event_time(n));
        let rem = n % TOTAL_PROPORTION;
        if rem < PERSON_PROPORTION {
            Event::Person(Box::new(self.person(n, time, &mut rng)))
        } else if rem < PERSON_PROPORTION + AUCTION_PROPORTION {
            Event::Auction(Box::new(self.auction(n, time, &mut rng)))
        } else {
            Event::Bid(self.bid(n, time, &mut rng))
        }
    }

    fn person(&self, n: u64, date_time: Timestamp, rng: &mut Rng) -> Person {
        let id = last_base0_person_id(n) + FIRST_PERSON_ID;
        let name = format!(
            "{} {}",
            FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize],
            LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize]
        );
        let email_address = format!("{}@{}.com", rng.string(7), rng.string(5));
        let credit_card = format!(
            "{:04} {:04} {:04} {:04}",
            rng.below(10_000),
            rng.below(10_000),
            rng.below(10_000),
            rng.below(10_000)
        );
        let city = US_CITIES[rng.below(US_CITIES.len() as u64) as usize].to_string();
        let state = US_STATES[rng.below(US_STATES.len() as u64) as usize].to_string();
        let current =
            8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
        let extra = rng.extra(current, AVG_PERSON_BYTES);
        Person {
            id,
            name,
            email_address,
            credit_card,
            city,
            state,
            date_time,
            extra,
        }
    }

    fn auction(&self, n: u64, date_time: Timestamp, rng: &mut Rng) -> Auction {
        let id = last_base0_auction_id(n) + FIRST_AUCTION_ID;
        let seller = if rng.below(HOT_SELLER_RATIO) > 0 {
            (last_base0_person_id(n) / HOT_ID_STRIDE) * HOT_ID_STRIDE
        } else {
            next_base0_person_id(n, rng)
        } + FIRST_PERSON_ID;
        let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
        let initial_bid = rng.price();
        let expires = Timestamp(date_time.0 + self.auction_length_ms(n, date_time.0, rng));
        let item_name = rng.string(20);
        let description = rng.string(100);
        let reserve = initial_bid + rng.price();
        let current = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
        let extra = rng.extra(current, AVG_AUCTION_BYTES);
        Auction {
            id,
            item_name,
            description,
            initial_bid,
            reserve,
            date_time,
            expires,
            seller,
            category,
            extra,
        }
    }

    /// An auction lasts up to twice the time 100 more auctions take to appear.
    fn auction_length_ms(&self, n: u64, now: EventTime, rng: &mut Rng) -> u64 {
        let events_for_auctions = NUM_IN_FLIGHT_AUCTIONS * TOTAL_PROPORTION / AUCTION_PROPORTION;
        let horizon = self.event_time(n + events_for_auctions).saturating_sub(now);
        1 + rng.below((horizon * 2).max(1))
    }

    fn bid(&self, n: u64, date_time: Timestamp, rng: &mut Rng) -> Bid {
        let hot = self.config.hot_key_percent;
        // The hot key (`--hot-key`): a share of the bids on the very first auction; drawn only
        // when asked for, so other runs keep Flink's generator's sequence.
        let auction = if hot > 0 && rng.below(100) < u64::from(hot) {
            0
        } else if rng.below(HOT_AUCTION_RATIO) > 0 {
            (last_base0_auction_id(n) / HOT_ID_STRIDE) * HOT_ID_STRIDE
        } else {
            next_base0_auction_id(n, rng)
        } + FIRST_AUCTION_ID;
        let bidder = if rng.below(HOT_BIDDER_RATIO) > 0 {
            (last_base0_person_id(n) / HOT_ID_STRIDE) * HOT_ID_STRIDE + 1
        } else {
            next_base0_person_id(n, rng)
        } + FIRST_PERSON_ID;
        let price = rng.price();
        let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
            let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
            (HOT_CHANNELS[i].to_string(), self.hot_urls[i].clone())
        } else {
            let c = rng.below(CHANNELS_NUMBER);
            channel(self.config.seed, c)
        };
        let extra = rng.extra(32, AVG_BID_BYTES);
        Bid {
            auction,
            bidder,
            price,
            channel,
            url,
            date_time,
            extra,
        }
    }
}

/// Name and URL of cold channel `c`, derived from `(seed, c)` alone: recomputing measured faster
/// than a cache of 10,000 channels, which misses the CPU caches. 9 in 10 URLs carry a
/// `channel_id` parameter.
fn channel(seed: u64, c: u64) -> (String, String) {
    let mut rng = Rng::seeded(seed, u64::MAX - 1 - c);
    let mut url = base_url_bytes(&mut rng);
    if rng.below(URL_CHANNELS_RATIO) > 0 {
        url.extend_from_slice(b"&channel_id=");
        push_decimal(&mut url, u64::from((c as u32).reverse_bits() >> 1));
    }
    let mut name = Vec::with_capacity(16);
    name.extend_from_slice(b"channel-");
    push_decimal(&mut name, c);
    (ascii(name), ascii(url))
}

/// Appends the decimal digits of `v`.
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `https://www.nexmark.com/xxx/xxx/xxx/item.htm?query=1` with random path segments.
fn base_url_bytes(rng: &mut Rng) -> Vec<u8> {
    let mut url = Vec::with_capacity(96);
    url.extend_from_slice(b"https://www.nexmark.com/");
    for _ in 0..3 {
        let from = url.len();
        rng.push_letters(&mut url, 5);
        for b in &mut url[from..] {
            if *b == b' ' {
                *b = b'_';
            }
        }
        url.push(b'/');
    }
    url.extend_from_slice(b"item.htm?query=1");
    url
}

fn base_url(rng: &mut Rng) -> String {
    ascii(base_url_bytes(rng))
}

/// The (0-based) id of the last person created at or before event `n` (one person per epoch of
/// 50 events, created first in its epoch).
fn last_base0_person_id(n: u64) -> u64 {
    n / TOTAL_PROPORTION * PERSON_PROPORTION
}

/// The (0-based) id of the last auction created at or before event `n`.
fn last_base0_auction_id(n: u64) -> u64 {
    let epoch = n / TOTAL_PROPORTION;
    let mut offset = n % TOTAL_PROPORTION;
    if offset < PERSON_PROPORTION {
        // Before this epoch's first auction: the last one of the previous epoch.
        if epoch == 0 {
            return 0;
        }
        return (epoch - 1) * AUCTION_PROPORTION + AUCTION_PROPORTION - 1;
    }
    offset -= PERSON_PROPORTION;
    epoch * AUCTION_PROPORTION + offset.min(AUCTION_PROPORTION - 1)
}

/// A recently active person (or one about to appear).
fn next_base0_person_id(n: u64, rng: &mut Rng) -> u64 {
    let num_people = last_base0_person_id(n) + 1;
    let active = num_people.min(NUM_ACTIVE_PEOPLE);
    num_people - active + rng.below(active + PERSON_ID_LEAD)
}

/// An in-flight auction (or one about to open).
fn next_base0_auction_id(n: u64, rng: &mut Rng) -> u64 {
    let max = last_base0_auction_id(n);
    let min = max.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
}

impl Generate for Generator {
    type Record = Event;

    fn record(&mut self, n: u64) -> Event {
        self.event(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportions_and_ids() {
        let mut g = Generator::new(GeneratorConfig::default());
        let mut kinds = [0usize; 3];
        for n in 0..5000 {
            kinds[g.event(n).event_type() as usize] += 1;
        }
        assert_eq!(kinds, [100, 300, 4600]);
        match g.event(0) {
            Event::Person(p) => assert_eq!(p.id, 1000),
            other => panic!("event 0 should be a person: {other:?}"),
        }
        match g.event(1) {
            Event::Auction(a) => {
                assert_eq!(a.id, 1000);
                assert!((10..15).contains(&a.category));
                assert!(a.expires > a.date_time);
            }
            other => panic!("event 1 should be an auction: {other:?}"),
        }
    }

    #[test]
    fn deterministic_and_split_independent() {
        let mut a = Generator::new(GeneratorConfig::default());
        let mut b = Generator::new(GeneratorConfig::default());
        for n in (0..2000).rev() {
            assert_eq!(a.event(n), b.event(n));
        }
        let mut c = Generator::new(GeneratorConfig {
            seed: 7,
            ..GeneratorConfig::default()
        });
        assert_ne!(a.event(10), c.event(10));
    }

    #[test]
    fn event_times_follow_rate() {
        let g = Generator::new(GeneratorConfig {
            rate: 1000,
            ..GeneratorConfig::default()
        });
        assert_eq!(g.event_time(0), DEFAULT_BASE_TIME);
        assert_eq!(g.event_time(1500), DEFAULT_BASE_TIME + 1500);
    }

    #[test]
    fn a_hot_key_takes_its_share_of_the_bids() {
        let mut g = Generator::new(GeneratorConfig {
            hot_key_percent: 50,
            ..GeneratorConfig::default()
        });
        let (mut bids, mut first) = (0, 0);
        // Past the start, where Nexmark's own hot auction is still the first one.
        for n in 100_000..120_000 {
            if let Event::Bid(b) = g.event(n) {
                bids += 1;
                first += usize::from(b.auction == FIRST_AUCTION_ID);
            }
        }
        let share = first as f64 / bids as f64;
        // 50 % drawn hot, plus the few the ordinary draw puts there.
        assert!((0.48..0.52).contains(&share), "hot key share {share}");
        // Without the flag, the same events as before.
        let mut plain = Generator::new(GeneratorConfig::default());
        let before = (100_000..120_000)
            .filter_map(|n| match plain.event(n) {
                Event::Bid(b) => Some(b.auction),
                _ => None,
            })
            .filter(|&a| a == FIRST_AUCTION_ID)
            .count();
        assert_eq!(before, 0);
    }

    #[test]
    fn sizes_and_prices_look_like_nexmark() {
        let mut g = Generator::new(GeneratorConfig::default());
        let (mut bytes, mut bids) = (0usize, 0usize);
        let mut hot = 0;
        for n in 0..10_000 {
            if let Event::Bid(b) = g.event(n) {
                assert_eq!(b.price % 100, 0);
                assert!(b.price >= 100 && b.price <= 100_000_000);
                bytes += b.extra.len() + 32;
                bids += 1;
                if HOT_CHANNELS.contains(&b.channel.as_str()) {
                    hot += 1;
                }
            }
        }
        let avg = bytes / bids;
        assert!((90..=110).contains(&avg), "average bid size {avg}");
        let share = hot as f64 / bids as f64;
        assert!((0.45..0.55).contains(&share), "hot channel share {share}");
    }
}
