//! The fraud domain's records: card transactions and the labels (chargebacks, confirmations)
//! that arrive for them later in event time, in one stream.
//!
//! A record is either a [`Transaction`] or a [`Label`]. Both are written as one flat row with a
//! `kind` column (`transaction` or `label`), so a stream of them can be JSON lines or CSV with a
//! header row; a label leaves the transaction's columns empty. A row missing a column its kind
//! needs is a decoding error (a dead letter naming the column), never a default.

use crate::record::Record;
use crate::time::EventTime;
use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// How a card was used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// At a merchant's terminal.
    Pos,
    /// On the web or in an app.
    Online,
    /// A cash withdrawal.
    Atm,
}

/// One card transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Transaction id, unique.
    pub id: u64,
    /// Event time, epoch ms.
    pub time: EventTime,
    /// The account (card) charged.
    pub account: u64,
    /// The merchant.
    pub merchant: u64,
    /// Amount, in `currency` units.
    pub amount: f64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: CompactString,
    /// Where it happened: latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// ISO 3166 alpha-2 country code, e.g. `DE`.
    pub country: CompactString,
    /// How the card was used.
    pub channel: Channel,
    /// Whether the card itself was at the terminal (chip, contactless).
    pub card_present: bool,
}

/// What became known about a transaction later: a chargeback (`fraud`) or its confirmation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// The transaction labelled.
    pub id: u64,
    /// When the label became known, epoch ms.
    pub time: EventTime,
    /// The transaction's account.
    pub account: u64,
    /// Whether the transaction was fraud.
    pub fraud: bool,
}

/// One record of a fraud stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Row", into = "Row")]
pub enum FraudEvent {
    /// A card transaction.
    Transaction(Transaction),
    /// A label for an earlier transaction.
    Label(Label),
}

impl FraudEvent {
    /// The transaction, if this is one.
    pub fn into_transaction(self) -> Option<Transaction> {
        match self {
            FraudEvent::Transaction(t) => Some(t),
            FraudEvent::Label(_) => None,
        }
    }

    /// The label, if this is one.
    pub fn into_label(self) -> Option<Label> {
        match self {
            FraudEvent::Label(l) => Some(l),
            FraudEvent::Transaction(_) => None,
        }
    }

    /// The account it concerns.
    pub fn account(&self) -> u64 {
        match self {
            FraudEvent::Transaction(t) => t.account,
            FraudEvent::Label(l) => l.account,
        }
    }
}

impl Record for FraudEvent {
    fn event_time(&self) -> EventTime {
        match self {
            FraudEvent::Transaction(t) => t.time,
            FraudEvent::Label(l) => l.time,
        }
    }
}

/// The record's kind column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Transaction,
    Label,
}

/// The flat row both kinds are written as (JSON or CSV): the columns of a transaction, and a
/// label's `fraud`. Every column is written (empty ones as `null`): the same encoding carries
/// records between processes, where no field may be skipped.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Row {
    kind: Kind,
    id: u64,
    time: EventTime,
    account: u64,
    #[serde(default)]
    merchant: Option<u64>,
    #[serde(default)]
    amount: Option<f64>,
    #[serde(default)]
    currency: Option<CompactString>,
    #[serde(default)]
    lat: Option<f64>,
    #[serde(default)]
    lon: Option<f64>,
    #[serde(default)]
    country: Option<CompactString>,
    #[serde(default)]
    channel: Option<Channel>,
    #[serde(default)]
    card_present: Option<bool>,
    #[serde(default)]
    fraud: Option<bool>,
}

impl TryFrom<Row> for FraudEvent {
    type Error = String;

    fn try_from(row: Row) -> Result<Self, String> {
        let need = |what: &str| format!("{:?} {} has no {what}", row.kind, row.id).to_lowercase();
        match row.kind {
            Kind::Label => Ok(FraudEvent::Label(Label {
                id: row.id,
                time: row.time,
                account: row.account,
                fraud: row.fraud.ok_or_else(|| need("fraud"))?,
            })),
            Kind::Transaction => {
                let amount = row.amount.ok_or_else(|| need("amount"))?;
                if !amount.is_finite() || amount < 0.0 {
                    return Err(format!("transaction {} has amount {amount}", row.id));
                }
                let (lat, lon) = (
                    row.lat.ok_or_else(|| need("lat"))?,
                    row.lon.ok_or_else(|| need("lon"))?,
                );
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(format!("transaction {} is at ({lat}, {lon})", row.id));
                }
                Ok(FraudEvent::Transaction(Transaction {
                    id: row.id,
                    time: row.time,
                    account: row.account,
                    merchant: row.merchant.ok_or_else(|| need("merchant"))?,
                    amount,
                    currency: row.currency.clone().ok_or_else(|| need("currency"))?,
                    lat,
                    lon,
                    country: row.country.clone().ok_or_else(|| need("country"))?,
                    channel: row.channel.ok_or_else(|| need("channel"))?,
                    card_present: row.card_present.ok_or_else(|| need("card_present"))?,
                }))
            }
        }
    }
}

impl From<FraudEvent> for Row {
    fn from(event: FraudEvent) -> Row {
        match event {
            FraudEvent::Transaction(t) => Row {
                kind: Kind::Transaction,
                id: t.id,
                time: t.time,
                account: t.account,
                merchant: Some(t.merchant),
                amount: Some(t.amount),
                currency: Some(t.currency),
                lat: Some(t.lat),
                lon: Some(t.lon),
                country: Some(t.country),
                channel: Some(t.channel),
                card_present: Some(t.card_present),
                fraud: None,
            },
            FraudEvent::Label(l) => Row {
                kind: Kind::Label,
                id: l.id,
                time: l.time,
                account: l.account,
                merchant: None,
                amount: None,
                currency: None,
                lat: None,
                lon: None,
                country: None,
                channel: None,
                card_present: None,
                fraud: Some(l.fraud),
            },
        }
    }
}

/// Great-circle distance between two points, km (haversine, mean Earth radius 6371 km).
pub fn distance_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx() -> FraudEvent {
        FraudEvent::Transaction(Transaction {
            id: 7,
            time: 1_000,
            account: 3,
            merchant: 9,
            amount: 12.5,
            currency: "EUR".into(),
            lat: 52.52,
            lon: 13.40,
            country: "DE".into(),
            channel: Channel::Pos,
            card_present: true,
        })
    }

    #[test]
    fn both_kinds_round_trip_as_json() {
        let label = FraudEvent::Label(Label {
            id: 7,
            time: 9_000,
            account: 3,
            fraud: true,
        });
        for event in [tx(), label] {
            let json = serde_json::to_string(&event).unwrap();
            let back: FraudEvent = serde_json::from_str(&json).unwrap();
            assert_eq!(back, event, "{json}");
        }
        let json = serde_json::to_string(&tx()).unwrap();
        assert!(
            json.starts_with(r#"{"kind":"transaction","id":7,"#),
            "{json}"
        );
    }

    #[test]
    fn csv_rows_hold_both_kinds() {
        let text = "kind,id,time,account,merchant,amount,currency,lat,lon,country,channel,card_present,fraud\n\
                    transaction,7,1000,3,9,12.5,EUR,52.52,13.4,DE,pos,true,\n\
                    label,7,9000,3,,,,,,,,,true\n";
        let rows: Vec<FraudEvent> = csv::Reader::from_reader(text.as_bytes())
            .deserialize()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows[0], tx());
        assert!(matches!(
            rows[1],
            FraudEvent::Label(Label { fraud: true, .. })
        ));
    }

    #[test]
    fn a_row_missing_what_its_kind_needs_is_an_error() {
        let e =
            serde_json::from_str::<FraudEvent>(r#"{"kind":"label","id":4,"time":1,"account":2}"#)
                .unwrap_err();
        assert!(e.to_string().contains("label 4 has no fraud"), "{e}");
        let e = serde_json::from_str::<FraudEvent>(
            r#"{"kind":"transaction","id":5,"time":1,"account":2,"merchant":1,"amount":-3,"currency":"EUR","lat":0,"lon":0,"country":"DE","channel":"pos","card_present":true}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("amount -3"), "{e}");
    }

    #[test]
    fn distances_are_great_circle_km() {
        let berlin = (52.52, 13.405);
        let paris = (48.8566, 2.3522);
        let d = distance_km(berlin, paris);
        assert!((d - 878.0).abs() < 5.0, "{d}");
        assert_eq!(distance_km(berlin, berlin), 0.0);
    }
}
