//! reengage notices when a client in a recovery program goes quiet, drafts a warm
//! check-in for their coach to approve, and sends it, then hears the replies.

// The data path, in order: clients and events come in (`pipeline::intake`),
// quiet spells are found (`pipeline::detect`), drafts go to coaches
// (`pipeline::review`, `pipeline::casework`), approved messages go out
// (`pipeline::dispatch` through `app::channels`) into the send log, and
// replies come back (`pipeline::replies`); `pipeline::follow_up` runs the
// digest and retention. Underneath: `domain` (pure rules and types, no
// database or HTTP), `store` (all SQL) and `app` (settings, context, clock,
// jobs, metrics). On top: `cli` and `web`. See docs/architecture.md.

pub mod app;
pub mod cli;
pub mod domain;
pub mod pipeline;
pub mod store;
pub mod web;

/// Installs the process-wide TLS crypto provider (ring). Call once at start;
/// calling again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
