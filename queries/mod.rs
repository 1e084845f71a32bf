//! The query registry: every runnable pipeline, by name.
//!
//! Each query lives in its own file under `queries/<family>/`, with a banner saying what it asks
//! and what it illustrates, and exports one [`Query`] constant. [`ALL`] lists them; the CLI finds
//! queries only through [`find`] and [`ALL`], so adding a query is one file and one line here.

use crate::query::Query;

/// Nexmark queries (see `shared/design/nexmark.md`).
pub mod nexmark {
    pub mod q0;
    pub mod q1;
    pub mod q2;
}

/// Every registered query, in `sluice list` order.
pub static ALL: &[&Query] = &[
    &nexmark::q0::QUERY,
    &nexmark::q1::QUERY,
    &nexmark::q2::QUERY,
];

/// The query called `name`.
pub fn find(name: &str) -> Option<&'static Query> {
    ALL.iter().copied().find(|q| q.name == name)
}

/// Registered query names, for error messages.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|q| q.name).collect()
}
