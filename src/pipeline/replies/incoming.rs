//! An inbound message as its source reports it: what [`super::receive`]
//! takes, from the SMS webhook, IMAP and the folder alike.

use crate::domain::Channel;
use crate::domain::mail::Bounce;

/// Who sent an inbound message, as far as its source can tell.
#[derive(Debug, Clone, Copy)]
pub enum Sender<'a> {
    /// The client whose message it answers (an email's thread).
    Client(i64),
    /// A number to look the client up by.
    Phone(&'a str),
    /// An address to look the client up by (when exactly one client has it).
    Email(&'a str),
    /// Nothing to go by.
    Nobody,
}

/// What kind of message it is.
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    /// A person wrote it.
    Person,
    /// An out-of-office or other auto-responder. One with crisis words in it
    /// is read as a person's: a missed crisis costs more than a false alarm.
    AutoReply,
    /// A delivery failure report.
    Bounce(&'a Bounce),
    /// Mail that cannot be read, and why: stored for an admin to look at.
    Unreadable(&'a str),
}

/// An inbound message as its source reports it.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub channel: Channel,
    pub from: &'a str,
    pub to: Option<&'a str>,
    /// The sender's own words (for an email, without the quoted history).
    pub body: &'a str,
    /// The provider's id (an SMS's sid, an email's Message-ID): a repeat is
    /// stored and acted on once.
    pub provider_id: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub sender: Sender<'a>,
    pub kind: Kind<'a>,
}

impl<'a> Incoming<'a> {
    /// A text as the SMS provider reports it: a person's, from a number.
    pub fn sms(from: &'a str, to: Option<&'a str>, body: &'a str, sid: Option<&'a str>) -> Self {
        Self {
            channel: Channel::Sms,
            from,
            to,
            body,
            provider_id: sid,
            subject: None,
            sender: Sender::Phone(from),
            kind: Kind::Person,
        }
    }
}
