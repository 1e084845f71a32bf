//! # Nexmark q21 — add channel id
//!
//! **Asks:** bids with a channel id: `0`–`3` for the channels Apple, Google, Facebook, Baidu
//! (case-insensitive), otherwise the `channel_id` parameter of the bid's URL (Flink's
//! `REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)`); bids with neither are dropped:
//! `auction, bidder, price, channel, channel_id`.
//!
//! **Illustrates:** string parsing per record. No windows; stateless, so late bids are
//! processed as well.

use crate::nexmark::model::Event;
use crate::pipeline::{Context, Pipeline};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use timely::dataflow::operators::vec::Map;
use timely::dataflow::StreamVec;

/// One output row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    /// Auction id.
    pub auction: u64,
    /// Bidder id.
    pub bidder: u64,
    /// Price, cents.
    pub price: u64,
    /// Channel name.
    pub channel: String,
    /// Channel id.
    pub channel_id: String,
}

/// The value of the first `channel_id=` parameter at the start of `url` or after a `&`.
pub fn channel_id_param(url: &str) -> Option<&str> {
    let mut from = 0;
    while let Some(i) = url[from..].find("channel_id=") {
        let at = from + i;
        if at == 0 || url.as_bytes()[at - 1] == b'&' {
            let value = &url[at + "channel_id=".len()..];
            return Some(value.split('&').next().unwrap_or(""));
        }
        from = at + 1;
    }
    None
}

/// The channel id of a bid, if it has one. The name is compared after Unicode lower-casing, as
/// Flink's `LOWER` does (so `FACEBOO\u{212A}`, with a Kelvin sign, is Facebook).
pub fn channel_id(channel: &str, url: &str) -> Option<String> {
    let known = match channel.to_lowercase().as_str() {
        "apple" => Some("0"),
        "google" => Some("1"),
        "facebook" => Some("2"),
        "baidu" => Some("3"),
        _ => None,
    };
    known.or_else(|| channel_id_param(url)).map(str::to_string)
}

fn build<'s>(events: StreamVec<'s, EventTime, Event>, ctx: &mut Context<'s>) {
    ctx.emit(events.flat_map(|e| {
        let b = e.into_bid()?;
        let channel_id = channel_id(&b.channel, &b.url)?;
        Some(Row {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: b.channel,
            channel_id,
        })
    }));
}

/// Registry entry.
pub const QUERY: Pipeline<Event> = Pipeline {
    name: "q21",
    description: "add channel id: from the channel name or the url's channel_id parameter",
    columns: &["auction", "bidder", "price", "channel", "channel_id"],
    writes_files: false,
    params: &[],
    build,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_like_flinks_regexp() {
        assert_eq!(channel_id_param("https://x/item.htm?query=1&channel_id=42"), Some("42"));
        assert_eq!(channel_id_param("channel_id=7&a=1"), Some("7"));
        assert_eq!(channel_id_param("https://x/?xchannel_id=1"), None);
        assert_eq!(channel_id_param("https://x/?a=1&channel_id=&b=2"), Some(""));
        assert_eq!(channel_id("GOOGLE", ""), Some("1".into()));
        // Unicode case folding: KELVIN SIGN lower-cases to 'k', as in Java's toLowerCase.
        assert_eq!(channel_id("FACEBOO\u{212A}", ""), Some("2".into()));
        assert_eq!(channel_id("Ａpple", ""), None);
        assert_eq!(channel_id("channel-5", "https://x/?query=1"), None);
    }
}
