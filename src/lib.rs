//! reengage notices when a client in a recovery program goes quiet, drafts a warm
//! check-in for their coach to approve, and sends it. See DESIGN.md for the map.

pub mod auth;
pub mod caseload;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod compose;
pub mod config;
pub mod context;
pub mod demo;
pub mod detect;
pub mod digest;
pub mod dispatch;
pub mod domain;
pub mod drafts;
pub mod housekeeping;
pub mod import;
pub mod metrics;
pub mod replies;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod unsubscribe;
pub mod web;

/// Installs the process-wide TLS crypto provider (ring). Call once at start;
/// calling again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
