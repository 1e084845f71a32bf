//! The recommendation domain's record: one thing a user did with an item — viewed it, put it in
//! the cart, bought it, rated it — at an event time, within a session. A flat row, so a stream
//! of them can be JSON lines or CSV with a header row.
//!
//! `value` is the rating for a `rating` (MovieLens: 1–5) and the amount paid for a `purchase`
//! (what customer features add up); views and carts may leave it out (0). A value that is not
//! a finite number, or a negative purchase, is a decoding or validation error — a dead letter,
//! never a behaviour.

use crate::record::Record;
use crate::time::EventTime;
use serde::{Deserialize, Serialize};

/// What a user did with an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Looked at it.
    View,
    /// Put it in the cart.
    Cart,
    /// Bought it; `value` is the amount paid.
    Purchase,
    /// Rated it; `value` is the rating.
    Rating,
}

impl Action {
    /// The name in records and rows.
    pub fn name(self) -> &'static str {
        match self {
            Action::View => "view",
            Action::Cart => "cart",
            Action::Purchase => "purchase",
            Action::Rating => "rating",
        }
    }
}

/// One user's action on one item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct Behaviour {
    /// Event time, epoch ms.
    pub time: EventTime,
    /// The user (customer) id.
    pub user: u64,
    /// The item id.
    pub item: u64,
    /// What the user did.
    pub action: Action,
    /// The rating of a `rating`, the amount of a `purchase`; 0 when absent. Finite.
    #[serde(serialize_with = "as_some")]
    pub value: f64,
    /// The session the action belongs to (0 when unknown).
    #[serde(serialize_with = "as_some")]
    pub session: u64,
}

/// Writes a value as `Some(value)`: what [`Unchecked`] reads back (a CSV cell may be empty, so it
/// reads an option) — in JSON the plain value, in the workers' binary exchange an option.
fn as_some<T: Serialize, S: serde::Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    Some(value).serialize(s)
}

/// A behaviour as read, before its value is checked against its action. Its fields are
/// [`Behaviour`]'s as written, so workers exchanging behaviours in binary read them back with it.
#[derive(Deserialize)]
struct Unchecked {
    time: EventTime,
    user: u64,
    item: u64,
    action: Action,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    session: Option<u64>,
}

impl TryFrom<Unchecked> for Behaviour {
    type Error = String;

    fn try_from(r: Unchecked) -> Result<Self, String> {
        let value = r.value.unwrap_or(0.0);
        match r.action {
            _ if !value.is_finite() => return Err(format!("value {value} is not a finite number")),
            Action::Purchase if value < 0.0 => {
                return Err(format!("purchase amount {value} is negative"))
            }
            Action::Rating if value <= 0.0 => {
                return Err(format!("rating {value} is not positive"))
            }
            _ => {}
        }
        Ok(Behaviour {
            time: r.time,
            user: r.user,
            item: r.item,
            action: r.action,
            value,
            session: r.session.unwrap_or(0),
        })
    }
}

impl Behaviour {
    /// Why this behaviour, stamped `stamp`, is too late for the stage `what` (a keyed logic's
    /// [`too_late`](crate::operators::keyed::KeyedLogic::too_late)): its event time is behind
    /// the stamp, so the user's state has moved past it.
    pub fn behind(&self, stamp: EventTime, what: &str) -> Option<String> {
        crate::operators::keyed::behind(self.time, stamp, what)
    }
}

impl Record for Behaviour {
    fn event_time(&self) -> EventTime {
        self.time
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_behaviour_crosses_between_workers_unchanged() {
        let b = Behaviour {
            time: 9,
            user: 2,
            item: 3,
            action: Action::Rating,
            value: 4.5,
            session: 77,
        };
        let bytes = bincode::serialize(&b).unwrap();
        assert_eq!(bincode::deserialize::<Behaviour>(&bytes).unwrap(), b);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(
            json,
            r#"{"time":9,"user":2,"item":3,"action":"rating","value":4.5,"session":77}"#
        );
        assert_eq!(serde_json::from_str::<Behaviour>(&json).unwrap(), b);
    }

    #[test]
    fn a_behaviour_reads_from_json_and_csv() {
        let json = r#"{"time":5,"user":1,"item":7,"action":"rating","value":4}"#;
        let b: Behaviour = serde_json::from_str(json).unwrap();
        assert_eq!(
            (b.user, b.item, b.action, b.value, b.session),
            (1, 7, Action::Rating, 4.0, 0)
        );
        let csv_text =
            "time,user,item,action,value,session\n9,2,3,purchase,12.5,77\n10,2,4,view,,77\n";
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let rows: Vec<Behaviour> = reader.deserialize().map(|r| r.unwrap()).collect();
        assert_eq!(rows[0].action, Action::Purchase);
        assert_eq!(rows[0].value, 12.5);
        assert_eq!(rows[0].session, 77);
        assert_eq!(rows[1].action, Action::View);
    }

    #[test]
    fn bad_values_and_actions_are_refused() {
        for bad in [
            r#"{"time":5,"user":1,"item":7,"action":"rate","value":4}"#,
            r#"{"time":5,"user":1,"item":7,"action":"rating","value":"x"}"#,
            r#"{"time":5,"user":-1,"item":7,"action":"view"}"#,
        ] {
            assert!(serde_json::from_str::<Behaviour>(bad).is_err(), "{bad}");
        }
        let nan = "time,user,item,action,value\n1,1,1,rating,NaN\n";
        let mut reader = csv::Reader::from_reader(nan.as_bytes());
        assert!(reader.deserialize::<Behaviour>().next().unwrap().is_err());
        let negative = r#"{"time":5,"user":1,"item":7,"action":"purchase","value":-3}"#;
        let error = serde_json::from_str::<Behaviour>(negative).unwrap_err();
        assert!(error.to_string().contains("negative"), "{error}");
        let zero = r#"{"time":5,"user":1,"item":7,"action":"rating","value":0}"#;
        assert!(serde_json::from_str::<Behaviour>(zero).is_err());
    }
}
