//! All SQL lives here. One implementation over sqlx's `Any` driver serves both
//! SQLite and PostgreSQL: the statements are portable (`$N` parameters, `ON
//! CONFLICT`, `RETURNING`, partial indexes, Unix-second timestamps and 0/1 flags
//! in both). The dialect splits are the migration folders, the connection
//! settings in [`Store::connect`], and two helpers for the statements that work
//! hundreds of rows at a time, both for speed: [`Placeholders`] and [`packed`].
//!
//! Functions take `&mut AnyConnection` so that the same code runs inside a
//! transaction (`&mut *tx`) or on a pooled connection.

pub mod audit;
pub mod clients;
pub mod coaches;
pub mod conversation;
pub mod digest;
pub mod episodes;
pub mod events;
pub mod inbound;
pub mod messages;
pub mod reports;
pub mod retention;
pub mod send_log;
pub mod sessions;
pub mod stored;
pub mod tokens;

mod dialect;
mod pool;
mod scope;
mod state;
mod time;

pub use pool::{Backend, Store};
pub use scope::Scope;
pub use sqlx::Transaction;
pub use state::{counts, inbound_alerts_pending, oldest_pending_draft, open_crisis_alerts};
pub use time::{from_opt_ts, from_ts, ts};
