//! reengage's black-box stories, one test binary: each module drives the
//! app the way a coach, an operator or a provider would, on SQLite and (with
//! `TEST_DATABASE_URL`, as `scripts/test` sets) PostgreSQL.

#[macro_use]
mod common;

mod api;
mod browser;
mod cli;
mod conversation;
mod crash;
mod deceased;
mod delivery;
mod inbox;
mod r#loop;
mod openapi;
mod ops;
mod replies;
mod reports;
mod templates;
mod ui;
mod unsubscribe;
