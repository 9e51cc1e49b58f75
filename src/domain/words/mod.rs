//! The reply classifier: one pure function from a client's text to what it is
//! and which rules said so. The webhook uses it, and so will email replies, so
//! nothing here knows about channels.
//!
//! A text is normalised first, then matched against the rules of
//! `config/words.toml` (extended by `replies.words_file`):
//!
//! - **Normalising.** Case and accents are folded ("Más" is "mas"),
//!   apostrophes go ("don’t", "don't" and "dont" are one word), letters
//!   repeated for emphasis are read once ("pleeease"), a number is split from
//!   its unit ("800mg"), and the `shortcuts` table expands texting forms and
//!   contractions ("kms", "wanna", "dont"). Filler words (`ignore`) are
//!   dropped from the text and the rules alike.
//! - **Word forms.** A word of a rule matches its forms through the Snowball
//!   stemmer of the rule's language: "die" matches "dying" and "died".
//! - **Rules** are phrases with a small syntax (see [`Rule`](rules::Rule)).
//!   Each class may list `except` rules: a benign idiom ("dying to see you")
//!   that covers the words a rule matched takes that one match back, and only
//!   that one.
//! - **Keywords** (STOP, HELP, START) count when a whole message (or, for
//!   opt-outs, a whole sentence) is the keyword, give or take courtesy words.
//!
//! The classes, by precedence: crisis, opt-out, wrong number, help, opt-in,
//! reply. A text can be several ("stop texting me, I want to die"), and the
//! caller acts on each. Rules are tuned for recall where safety or consent is
//! at stake: a false alarm costs a coach a minute, a miss can cost a life.
//!
//! By job: `normalise` turns text into tokens, `rules` parses the rule
//! language, `classify` indexes the rules and reads a text with them, and
//! `file` is the word file they are compiled from.

mod class;
mod classify;
pub mod evaluate;
mod file;
#[cfg(test)]
mod fixtures;
mod lang;
mod model;
mod normalise;
mod rules;

pub use class::Class;
pub use classify::{Classification, Match, Words};
