//! Distinct integer ids with a few flag bits each, for distinct counts inside an aggregate's
//! accumulator ("how many bidders, and how many of them bid in each price band").
//!
//! Ids that arrive clustered — sequence numbers, the recent auctions and people of a stream —
//! are kept in dense pages of one byte per id, found through a small page index: adding an id
//! touches a page that is already in cache, where a hash map of every id would scatter
//! neighbouring ids over a table of millions and miss the cache on most of them. Ids spread
//! thinly (a few hundred per key over a wide range) stay in a compact hash table of one word
//! per id; a set moves between the two forms as its density says. The number of ids with each
//! bit is kept as ids are added, so counting is free.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Ids per dense page (one byte each).
const PAGE: usize = 256;
/// A sparse set is considered for pages when it reaches this many ids, and again at each
/// doubling.
const DENSE_FROM: usize = 1024;
/// Pages are used when they would hold at least one id per this many bytes …
const DENSE_ENOUGH: usize = 16;
/// … and abandoned when they hold fewer than one id per this many bytes.
const TOO_SPARSE: usize = 128;

/// A set of `u64` ids, each with up to eight flag bits (an id is in the set once some bit was
/// added for it), with the number of ids per bit kept up to date.
///
/// # Examples
///
/// ```
/// use sluice::operators::distinct::IdBits;
///
/// let mut bidders = IdBits::default();
/// bidders.insert(7, 0b01);
/// bidders.insert(7, 0b10);
/// bidders.insert(9, 0b10);
/// assert_eq!(bidders.len(), 2);
/// assert_eq!(bidders.with_bit(0), 1);
/// assert_eq!(bidders.with_bit(1), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct IdBits {
    store: Store,
    len: u64,
    per_bit: [u64; 8],
}

#[derive(Clone, Debug)]
enum Store {
    Sparse(Packed),
    /// Boxed: most sets of a query are small, and stay sparse.
    Paged(Box<Pages>),
}

impl Default for Store {
    fn default() -> Self {
        Store::Sparse(Packed::default())
    }
}

/// Ids below this are packed with their bits into one word of a [`Packed`] table.
const PACKABLE: u64 = (1 << 56) - 1;

/// A sparse set as one word per id: `bits << 56 | (id + 1)` (0: an empty slot), in an open
/// addressing table with linear probing, at most three quarters full. Finding an id reads one
/// cache line, where a map of `(id, bits)` entries reads a line of control bytes and a line of
/// entries (hashbrown's layout) — on sets too many to stay in cache, half the misses. Ids from
/// [`PACKABLE`] up (never seen in practice) go to a map of their own.
#[derive(Clone, Debug, Default)]
struct Packed {
    /// A power of two long, or empty.
    slots: Vec<u64>,
    used: usize,
    wide: Option<Box<FxHashMap<u64, u8>>>,
}

impl Packed {
    /// The first slot to look at for `id` in a table of `len` (a power of two) slots.
    fn home(id: u64, len: usize) -> usize {
        // Fibonacci hashing: the high bits of the product spread consecutive ids.
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - len.trailing_zeros())) as usize
    }

    /// The slot holding `id`, or the empty one where it would go.
    fn find(&self, id: u64) -> usize {
        let (key, mask) = (id + 1, self.slots.len() - 1);
        let mut at = Self::home(id, self.slots.len());
        loop {
            let word = self.slots[at];
            if word == 0 || word & PACKABLE == key {
                return at;
            }
            at = (at + 1) & mask;
        }
    }

    /// Adds `bits` to `id`; returns its bits before.
    fn or_bits(&mut self, id: u64, bits: u8) -> u8 {
        if id >= PACKABLE {
            let slot = self.wide.get_or_insert_default().entry(id).or_insert(0);
            return std::mem::replace(slot, *slot | bits);
        }
        if (self.used + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let at = self.find(id);
        let word = self.slots[at];
        if word == 0 {
            self.used += 1;
            self.slots[at] = u64::from(bits) << 56 | (id + 1);
        } else {
            self.slots[at] = word | u64::from(bits) << 56;
        }
        (word >> 56) as u8
    }

    fn get(&self, id: u64) -> u8 {
        if id >= PACKABLE {
            return self
                .wide
                .as_ref()
                .and_then(|m| m.get(&id))
                .copied()
                .unwrap_or(0);
        }
        if self.slots.is_empty() {
            return 0;
        }
        (self.slots[self.find(id)] >> 56) as u8
    }

    fn grow(&mut self) {
        let len = (self.slots.len() * 2).max(8);
        let old = std::mem::replace(&mut self.slots, vec![0; len]);
        for word in old.into_iter().filter(|w| *w != 0) {
            let at = self.find((word & PACKABLE) - 1);
            self.slots[at] = word;
        }
    }

    fn for_each(&self, mut f: impl FnMut(u64, u8)) {
        for &word in self.slots.iter().filter(|w| **w != 0) {
            f((word & PACKABLE) - 1, (word >> 56) as u8);
        }
        for (&id, &bits) in self.wide.iter().flat_map(|m| m.iter()) {
            f(id, bits);
        }
    }
}

/// Dense pages: `index` maps a page number (`id / PAGE`) to its position in `pages`.
#[derive(Clone, Debug, Default)]
struct Pages {
    index: FxHashMap<u64, u32>,
    pages: Vec<[u8; PAGE]>,
    /// The page found last (number, position): consecutive ids mostly share one.
    last: Option<(u64, u32)>,
}

impl Pages {
    /// The page number of `id` and its offset in the page.
    fn locate(id: u64) -> (u64, usize) {
        (id / PAGE as u64, (id % PAGE as u64) as usize)
    }

    fn slot(&mut self, id: u64) -> &mut u8 {
        let (number, offset) = Self::locate(id);
        let at = match self.last {
            Some((n, at)) if n == number => at,
            _ => {
                let next = self.pages.len() as u32;
                let at = *self.index.entry(number).or_insert(next);
                if at == next {
                    self.pages.push([0; PAGE]);
                }
                self.last = Some((number, at));
                at
            }
        };
        &mut self.pages[at as usize][offset]
    }

    fn get(&self, id: u64) -> u8 {
        let (number, offset) = Self::locate(id);
        self.index
            .get(&number)
            .map_or(0, |&at| self.pages[at as usize][offset])
    }

    fn for_each(&self, mut f: impl FnMut(u64, u8)) {
        for (&number, &at) in &self.index {
            for (offset, &bits) in self.pages[at as usize].iter().enumerate() {
                if bits != 0 {
                    f(number * PAGE as u64 + offset as u64, bits);
                }
            }
        }
    }

    fn bytes(&self) -> usize {
        self.pages.len() * PAGE
    }
}

impl IdBits {
    /// Adds `bits` to `id` (and `id` to the set); returns the bits it had before (0: new).
    /// Adding no bits adds nothing.
    pub fn insert(&mut self, id: u64, bits: u8) -> u8 {
        if bits == 0 {
            return self.get(id);
        }
        let before = match &mut self.store {
            Store::Sparse(packed) => packed.or_bits(id, bits),
            Store::Paged(pages) => {
                let slot = pages.slot(id);
                std::mem::replace(slot, *slot | bits)
            }
        };
        let new = bits & !before;
        if new != 0 {
            if before == 0 {
                self.len += 1;
            }
            for (bit, count) in self.per_bit.iter_mut().enumerate() {
                *count += u64::from(new >> bit & 1);
            }
            self.adapt();
        }
        before
    }

    /// The bits of `id` (0: not in the set).
    pub fn get(&self, id: u64) -> u8 {
        match &self.store {
            Store::Sparse(packed) => packed.get(id),
            Store::Paged(pages) => pages.get(id),
        }
    }

    /// Every id with its bits, in no particular order.
    pub fn for_each(&self, f: impl FnMut(u64, u8)) {
        match &self.store {
            Store::Sparse(packed) => packed.for_each(f),
            Store::Paged(pages) => pages.for_each(f),
        }
    }

    /// Adds every id of `other` with its bits.
    pub fn merge(&mut self, other: &IdBits) {
        other.for_each(|id, bits| {
            self.insert(id, bits);
        });
    }

    /// The number of ids.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no id was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of ids with bit `bit` (0–7).
    pub fn with_bit(&self, bit: u32) -> u64 {
        self.per_bit[bit as usize]
    }

    /// Whether the set is kept in dense pages.
    pub fn is_paged(&self) -> bool {
        matches!(self.store, Store::Paged(_))
    }

    /// Moves between the sparse and the paged form when the density says so: at each power of
    /// two from [`DENSE_FROM`] ids a sparse set counts the pages it would fill; a paged set
    /// returns to a table when new pages leave it too thin.
    fn adapt(&mut self) {
        let len = self.len as usize;
        let to_pages = match &self.store {
            Store::Sparse(packed) if len >= DENSE_FROM && len.is_power_of_two() => {
                let mut numbers = Vec::with_capacity(len);
                packed.for_each(|id, _| numbers.push(id / PAGE as u64));
                numbers.sort_unstable();
                numbers.dedup();
                numbers.len() * PAGE <= len * DENSE_ENOUGH
            }
            Store::Paged(pages) if pages.bytes() > len * TOO_SPARSE => {
                let mut packed = Packed::default();
                for (id, bits) in self.entries() {
                    packed.or_bits(id, bits);
                }
                self.store = Store::Sparse(packed);
                return;
            }
            _ => false,
        };
        if to_pages {
            let mut pages = Box::<Pages>::default();
            for (id, bits) in self.entries() {
                *pages.slot(id) = bits;
            }
            self.store = Store::Paged(pages);
        }
    }

    fn entries(&self) -> Vec<(u64, u8)> {
        let mut entries = Vec::with_capacity(self.len as usize);
        self.for_each(|id, bits| entries.push((id, bits)));
        entries
    }
}

/// A checkpoint keeps the ids and their bits, in id order, not the form they were held in
/// (written from the set itself: the state a checkpoint copies is not copied again).
impl Serialize for IdBits {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut entries = self.entries();
        entries.sort_unstable();
        entries.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for IdBits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut set = IdBits::default();
        for (id, bits) in Vec::<(u64, u8)>::deserialize(deserializer)? {
            set.insert(id, bits);
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// The same ids through a plain ordered map.
    fn reference(ids: &[(u64, u8)]) -> BTreeMap<u64, u8> {
        let mut map = BTreeMap::new();
        for &(id, bits) in ids {
            if bits != 0 {
                *map.entry(id).or_insert(0) |= bits;
            }
        }
        map
    }

    fn check(set: &IdBits, expected: &BTreeMap<u64, u8>) {
        let mut got = set.entries();
        got.sort_unstable();
        let want: Vec<(u64, u8)> = expected.iter().map(|(&i, &b)| (i, b)).collect();
        assert_eq!(got, want);
        assert_eq!(set.len(), expected.len() as u64);
        for bit in 0..8 {
            let n = expected.values().filter(|b| *b >> bit & 1 == 1).count() as u64;
            assert_eq!(set.with_bit(bit), n, "bit {bit}");
        }
    }

    /// A small deterministic generator of test ids.
    fn ids(n: usize, spread: u64, seed: u64) -> Vec<(u64, u8)> {
        let mut x = seed;
        (0..n)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = i as u64 / 4 + (x >> 33) % spread;
                (id, 1 << ((x >> 20) % 3) as u8)
            })
            .collect()
    }

    #[test]
    fn clustered_ids_go_to_pages_and_count_exactly() {
        let input = ids(50_000, 100, 1);
        let mut set = IdBits::default();
        for &(id, bits) in &input {
            set.insert(id, bits);
        }
        assert!(set.is_paged());
        check(&set, &reference(&input));
    }

    #[test]
    fn scattered_ids_stay_in_a_map() {
        let input: Vec<(u64, u8)> = ids(20_000, 1, 2)
            .into_iter()
            .map(|(id, bits)| (id.wrapping_mul(0x9E37_79B9_7F4A_7C15), bits))
            .collect();
        let mut set = IdBits::default();
        for &(id, bits) in &input {
            set.insert(id, bits);
        }
        assert!(!set.is_paged());
        check(&set, &reference(&input));
    }

    #[test]
    fn pages_left_thin_return_to_a_map() {
        let mut input = ids(8192, 10, 3);
        let mut set = IdBits::default();
        for &(id, bits) in &input {
            set.insert(id, bits);
        }
        assert!(set.is_paged());
        // Far-apart ids, one per page, until the pages are too thin.
        for i in 0..4000u64 {
            let far = (1 << 40) + i * 10_000;
            set.insert(far, 4);
            input.push((far, 4));
        }
        assert!(!set.is_paged());
        check(&set, &reference(&input));
    }

    #[test]
    fn merge_and_a_checkpoint_round_trip_keep_every_id() {
        let (a, b) = (ids(30_000, 50, 4), ids(3_000, 5_000, 5));
        let (mut x, mut y) = (IdBits::default(), IdBits::default());
        a.iter().for_each(|&(id, bits)| {
            x.insert(id, bits);
        });
        b.iter().for_each(|&(id, bits)| {
            y.insert(id, bits);
        });
        x.merge(&y);
        let all: Vec<_> = a.iter().chain(&b).copied().collect();
        check(&x, &reference(&all));
        let encoded = serde_json::to_string(&x).unwrap();
        let restored: IdBits = serde_json::from_str(&encoded).unwrap();
        check(&restored, &reference(&all));
        assert_eq!(x.insert(a[0].0, 0), x.get(a[0].0));
        assert_ne!(x.get(a[0].0), 0);
        assert_eq!(x.get(u64::MAX), 0);
    }
}
