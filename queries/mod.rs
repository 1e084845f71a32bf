//! The query registry: every runnable pipeline, by name.
//!
//! Each query lives in its own file under `queries/<family>/`, with a banner saying what it asks
//! and what it illustrates, and exports one [`Query`] constant. [`ALL`] lists them; the CLI finds
//! queries only through [`find`] and [`ALL`], so adding a query is one file and one name in the
//! `registry!` list below.

use crate::query::Query;

/// Declares each query's module and lists it in [`ALL`], from one list of names.
macro_rules! registry {
    ($family:ident: $($query:ident),* $(,)?) => {
        /// Nexmark queries (see `docs/nexmark.md`).
        pub mod $family {
            $(pub mod $query;)*
        }

        /// Every registered query, in `sluice list` order.
        pub static ALL: &[&Query] = &[$(&$family::$query::QUERY),*];
    };
}

registry!(nexmark: q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, q12, q13, q14, q15, q16, q17, q18, q19, q20, q21, q22);

/// The query called `name`.
pub fn find(name: &str) -> Option<&'static Query> {
    ALL.iter().copied().find(|q| q.name == name)
}

/// Registered query names, for error messages.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|q| q.name).collect()
}
