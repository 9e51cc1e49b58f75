//! Replies from clients, through one way in ([`receive`], for SMS, IMAP and
//! the folder alike): the client found, the text read once and stored
//! before anything else, then acted on, class by class (a text may be
//! several):
//!
//! - **Crisis:** the client goes on hold, the coach (or whoever covers) is
//!   alerted at once, the alert stays open until someone says "I'm on it", and
//!   it escalates until then ([`alerts`]). If the agency turned it on, the
//!   client gets the resources message once.
//! - **Opt-out** (a keyword or the client's own words): SMS ends at once and
//!   unsent SMS are cancelled; at most one confirmation is sent.
//! - **Wrong number:** the phone is marked a stranger's, unsent SMS are
//!   cancelled, the sender gets one short apology with no program words. It
//!   is not engagement.
//! - **Help:** the help text. **Opt-in:** SMS again, if the client had opted
//!   out (otherwise "yes" is just a reply).
//! - **Anything else** is the engagement event `message_reply`.
//!
//! Every stored reply that is not one bare keyword waits for a person
//! (`needs_reply`) until a coach handles it or records a contact; the
//! `alerts` job tells coaches what is waiting ([`alerts::notify_replies`]).

pub mod alerts;
mod coach;
mod incoming;
mod receive;
mod respond;

pub use crate::domain::words::{Class, Classification, Match, Words};
pub use coach::{ReplyError, act};
pub use incoming::{Incoming, Kind, Sender};
pub use receive::{Received, receive};
