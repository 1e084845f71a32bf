//! The fraud domain's records: card transactions, the labels (chargebacks, confirmations) that
//! arrive for them later in event time, and changes to the rule book, in one stream.
//!
//! A record is a [`Transaction`], a [`Label`] or a [`RuleChange`]. All are written as one flat
//! row with a `kind` column (`transaction`, `label` or `rule`), so a stream of them can be JSON
//! lines or CSV with a header row; a label leaves the transaction's columns empty. A row missing
//! a column its kind needs is a decoding error (a dead letter naming the column), never a
//! default; so is a rule change naming no rule or whose `set` is not a JSON object.

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

/// A rule of the [rule book](super::rules::Rules), by name: as alerts report it and rule changes
/// name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// See [`SmallThenLarge`](super::rules::SmallThenLarge).
    SmallThenLarge,
    /// See [`Velocity`](super::rules::Velocity).
    Velocity,
    /// See [`AmountAnomaly`](super::rules::AmountAnomaly).
    AmountAnomaly,
    /// See [`ImpossibleTravel`](super::rules::ImpossibleTravel).
    ImpossibleTravel,
    /// See [`NewCountry`](super::rules::NewCountry).
    NewCountry,
    /// See [`NewMerchant`](super::rules::NewMerchant).
    NewMerchant,
}

impl Rule {
    /// Every rule, in order.
    pub const ALL: [Rule; 6] = [
        Rule::SmallThenLarge,
        Rule::Velocity,
        Rule::AmountAnomaly,
        Rule::ImpossibleTravel,
        Rule::NewCountry,
        Rule::NewMerchant,
    ];

    /// Its name: its table in a rule book, and how alerts name it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::SmallThenLarge => "small_then_large",
            Rule::Velocity => "velocity",
            Rule::AmountAnomaly => "amount_anomaly",
            Rule::ImpossibleTravel => "impossible_travel",
            Rule::NewCountry => "new_country",
            Rule::NewMerchant => "new_merchant",
        }
    }

    /// The rule named `name`.
    pub fn named(name: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// A change to one rule of the rule book, effective for transactions from `time` on.
///
/// As a row: `{"kind":"rule","time":…,"rule":"velocity","set":{"max_count":5}}` — `set` is a
/// JSON object of the rule's keys (in CSV, its JSON text), e.g. `{"enabled":false}` to switch
/// the rule off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleChange {
    /// From when it applies, epoch ms.
    pub time: EventTime,
    /// The rule changed.
    pub rule: Rule,
    /// Its new keys, as a JSON object's text (an object when read; its keys are checked when it
    /// applies).
    pub set: String,
}

/// One record of a fraud stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Row", into = "Row")]
pub enum FraudEvent {
    /// A card transaction.
    Transaction(Transaction),
    /// A label for an earlier transaction.
    Label(Label),
    /// A change to the rule book.
    Rule(RuleChange),
}

impl FraudEvent {
    /// The transaction, if this is one.
    pub fn into_transaction(self) -> Option<Transaction> {
        match self {
            FraudEvent::Transaction(t) => Some(t),
            _ => None,
        }
    }

    /// The rule change, if this is one.
    pub fn into_rule_change(self) -> Option<RuleChange> {
        match self {
            FraudEvent::Rule(c) => Some(c),
            _ => None,
        }
    }

    /// The label, if this is one.
    pub fn into_label(self) -> Option<Label> {
        match self {
            FraudEvent::Label(l) => Some(l),
            _ => None,
        }
    }

    /// The account it concerns (none for a rule change: it concerns every account).
    pub fn account(&self) -> u64 {
        match self {
            FraudEvent::Transaction(t) => t.account,
            FraudEvent::Label(l) => l.account,
            FraudEvent::Rule(_) => 0,
        }
    }
}

impl Record for FraudEvent {
    fn event_time(&self) -> EventTime {
        match self {
            FraudEvent::Transaction(t) => t.time,
            FraudEvent::Label(l) => l.time,
            FraudEvent::Rule(c) => c.time,
        }
    }
}

/// The record's kind column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Transaction,
    Label,
    Rule,
}

/// The flat row every kind is written as (JSON or CSV): the columns of a transaction, a
/// label's `fraud`, a rule change's `rule` and `set`. Every column is written (empty ones as
/// `null`): the same encoding carries records between processes, where no field may be skipped.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Row {
    kind: Kind,
    #[serde(default)]
    id: Option<u64>,
    time: EventTime,
    #[serde(default)]
    account: Option<u64>,
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
    #[serde(default)]
    rule: Option<CompactString>,
    #[serde(default, deserialize_with = "object_or_text")]
    set: Option<String>,
}

/// A rule change's `set`: a JSON object (JSON lines) or its text (CSV, and between processes).
fn object_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    if !d.is_human_readable() {
        return Option::<String>::deserialize(d);
    }
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(s) if s.is_empty() => Ok(None),
        serde_json::Value::String(s) => Ok(Some(s)),
        v => Ok(Some(v.to_string())),
    }
}

impl TryFrom<Row> for FraudEvent {
    type Error = String;

    fn try_from(row: Row) -> Result<Self, String> {
        let what = match row.id {
            Some(id) => format!("{:?} {id}", row.kind).to_lowercase(),
            None => format!("{:?} at {}", row.kind, row.time).to_lowercase(),
        };
        let need = |column: &str| format!("{what} has no {column}");
        if row.kind != Kind::Rule {
            let (id, account) = (
                row.id.ok_or_else(|| need("id"))?,
                row.account.ok_or_else(|| need("account"))?,
            );
            if row.kind == Kind::Label {
                return Ok(FraudEvent::Label(Label {
                    id,
                    time: row.time,
                    account,
                    fraud: row.fraud.ok_or_else(|| need("fraud"))?,
                }));
            }
        }
        match row.kind {
            Kind::Label => unreachable!("labels are read above"),
            Kind::Rule => {
                let name = row.rule.as_deref().ok_or_else(|| need("rule"))?;
                let rule = Rule::named(name).ok_or_else(|| {
                    let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
                    format!("{what}: no rule {name:?} (rules: {})", names.join(", "))
                })?;
                let set = row.set.clone().ok_or_else(|| need("set"))?;
                // Its keys are checked against the rule book when it applies (a dead letter if
                // they do not fit); here, that it is an object at all.
                if !matches!(
                    serde_json::from_str::<serde_json::Value>(&set),
                    Ok(serde_json::Value::Object(_))
                ) {
                    return Err(format!("{what}: set {set:?} is not a JSON object"));
                }
                Ok(FraudEvent::Rule(RuleChange {
                    time: row.time,
                    rule,
                    set,
                }))
            }
            Kind::Transaction => {
                let amount = row.amount.ok_or_else(|| need("amount"))?;
                if !amount.is_finite() || amount < 0.0 {
                    return Err(format!("{what} has amount {amount}"));
                }
                let (lat, lon) = (
                    row.lat.ok_or_else(|| need("lat"))?,
                    row.lon.ok_or_else(|| need("lon"))?,
                );
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return Err(format!("{what} is at ({lat}, {lon})"));
                }
                Ok(FraudEvent::Transaction(Transaction {
                    id: row.id.unwrap_or_default(),
                    time: row.time,
                    account: row.account.unwrap_or_default(),
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

impl Row {
    /// A row of `kind` at `time` with every other column empty.
    fn empty(kind: Kind, time: EventTime) -> Row {
        Row {
            kind,
            id: None,
            time,
            account: None,
            merchant: None,
            amount: None,
            currency: None,
            lat: None,
            lon: None,
            country: None,
            channel: None,
            card_present: None,
            fraud: None,
            rule: None,
            set: None,
        }
    }
}

impl From<FraudEvent> for Row {
    fn from(event: FraudEvent) -> Row {
        match event {
            FraudEvent::Transaction(t) => Row {
                kind: Kind::Transaction,
                id: Some(t.id),
                time: t.time,
                account: Some(t.account),
                merchant: Some(t.merchant),
                amount: Some(t.amount),
                currency: Some(t.currency),
                lat: Some(t.lat),
                lon: Some(t.lon),
                country: Some(t.country),
                channel: Some(t.channel),
                card_present: Some(t.card_present),
                fraud: None,
                rule: None,
                set: None,
            },
            FraudEvent::Label(l) => Row {
                id: Some(l.id),
                account: Some(l.account),
                fraud: Some(l.fraud),
                ..Row::empty(Kind::Label, l.time)
            },
            FraudEvent::Rule(c) => Row {
                rule: Some(c.rule.name().into()),
                set: Some(c.set),
                ..Row::empty(Kind::Rule, c.time)
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
    fn rule_changes_are_read_checked_and_round_trip() {
        let json = r#"{"kind":"rule","time":5000,"rule":"velocity","set":{"max_count":3}}"#;
        let change: FraudEvent = serde_json::from_str(json).unwrap();
        let FraudEvent::Rule(c) = &change else {
            panic!("{change:?}")
        };
        assert_eq!((c.time, c.rule), (5000, Rule::Velocity));
        let back: FraudEvent =
            serde_json::from_str(&serde_json::to_string(&change).unwrap()).unwrap();
        assert_eq!(back, change);
        let bytes = bincode::serialize(&change).unwrap();
        assert_eq!(bincode::deserialize::<FraudEvent>(&bytes).unwrap(), change);
        for (bad, why) in [
            (
                r#"{"kind":"rule","time":1,"rule":"speed","set":{}}"#,
                "no rule \"speed\"",
            ),
            (
                r#"{"kind":"rule","time":1,"rule":"velocity","set":3}"#,
                "not a JSON object",
            ),
            (
                r#"{"kind":"rule","time":1,"rule":"velocity"}"#,
                "has no set",
            ),
        ] {
            let e = serde_json::from_str::<FraudEvent>(bad).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
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
