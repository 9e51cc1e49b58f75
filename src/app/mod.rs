//! What every part of reengage stands on: the settings, the context built
//! from them, the one clock, the scheduled jobs, metrics, passwords and
//! tokens, and the signed unsubscribe links.

pub mod auth;
pub mod channels;
pub mod clock;
pub mod config;
pub mod context;
pub mod metrics;
pub mod unsubscribe;
