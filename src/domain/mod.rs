//! The pure rules and types: no database, no HTTP, nothing that waits.
//!
//! - This module: types that are valid by construction. Raw input becomes one
//!   of these at the edge (CSV row, JSON body, form) or is rejected there with
//!   a reason.
//! - [`compose`]: templates, the tone and privacy lint, SMS segments.
//! - [`window`]: quiet hours and the daily and weekly caps.
//! - [`words`]: the reply classifier and its corpus scores.

pub mod client;
pub mod compose;
pub mod eligibility;
pub mod limits;
pub mod local_time;
pub mod mail;
pub mod outcomes;
pub mod timestamp;
pub mod window;
pub mod words;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use strum::{AsRefStr, Display, EnumString};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    #[error("`{0}` is not a valid phone number")]
    Phone(String),
    #[error("`{0}` is not a valid email address")]
    Email(String),
}

/// A phone number in E.164 form (`+14155550123`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Reads an international number, or a national one in `region`.
    pub fn parse(
        input: &str,
        region: Option<phonenumber::country::Id>,
    ) -> Result<Self, DomainError> {
        let number = phonenumber::parse(region, input.trim())
            .map_err(|_| DomainError::Phone(input.to_owned()))?;
        if !phonenumber::is_valid(&number) {
            return Err(DomainError::Phone(input.to_owned()));
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(lettre::Address);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        lettre::Address::from_str(input.trim())
            .map(Self)
            .map_err(|_| DomainError::Email(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[derive(Display, EnumString, AsRefStr, Serialize, utoipa::ToSchema)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn other(self) -> Self {
        match self {
            Channel::Email => Channel::Sms,
            Channel::Sms => Channel::Email,
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, AsRefStr, Serialize
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Paused,
    Hold,
    Discharged,
}

/// Why a client is on hold or discharged, when a reply or a coach said.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, AsRefStr, Serialize
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// A reply said the client has died; on hold until a coach confirms or
    /// undoes it.
    ReportedDeceased,
    /// A coach confirmed the client's death; discharged.
    Deceased,
}

/// Why a client's email address is not to be used.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, AsRefStr, Serialize
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EmailProblem {
    /// A hard bounce: the address does not exist or refuses mail.
    Bounced,
    /// A reply said it reaches someone else.
    WrongPerson,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, AsRefStr, Serialize
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Coach,
    Admin,
}

/// A type compares with the text it is written as (`status == "sent"`), for
/// tests and scripts that read it as text.
macro_rules! compares_as_text {
    ($($t:ty),*) => {$(
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_ref() == *other
            }
        }
    )*};
}

compares_as_text!(Channel, MessageStatus, SendOutcome, LogEvent, AuditAction);

/// A message's place in its life; see the state diagram in docs/architecture.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display, EnumString)]
#[derive(AsRefStr, strum::IntoStaticStr, Serialize, utoipa::ToSchema)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Pending,
    Approved,
    Sending,
    Sent,
    Delivered,
    Undelivered,
    Failed,
    InDoubt,
    Rejected,
    Expired,
    Cancelled,
}

/// The outcome of one send attempt, as written to the send log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display, EnumString)]
#[derive(AsRefStr, Serialize, utoipa::ToSchema)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum SendOutcome {
    Sent,
    Retry,
    Failed,
    InDoubt,
}

/// What a send-log row records: an attempt, what reconciling an in-doubt
/// message found, or a provider's delivery callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display, EnumString)]
#[derive(AsRefStr, Serialize, utoipa::ToSchema)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum LogEvent {
    Attempt,
    Reconcile,
    Callback,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, AsRefStr, Serialize
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    CheckIn,
    SessionAttended,
    CoachContact,
    MessageReply,
    SessionMissed,
    /// A missed dose or refill in a medication program.
    DoseMissed,
    /// Leaving a level of care (residential, detox, hospital) or release
    /// from jail; the note says from what.
    Discharged,
}

impl EventKind {
    /// Whether the event shows the client is engaged. A missed session or
    /// dose, or a discharge, is recorded but is not engagement.
    pub fn is_engagement(self) -> bool {
        !matches!(
            self,
            EventKind::SessionMissed | EventKind::DoseMissed | EventKind::Discharged
        )
    }
}

/// What an audit-log entry records. The names are what the log holds and
/// shows; an entry is only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Display, EnumString, AsRefStr)]
#[strum(serialize_all = "snake_case")]
pub enum AuditAction {
    // A coach's decisions on a draft or a message in doubt.
    Approve,
    Edit,
    Reject,
    Snooze,
    Resend,
    ResolveSent,
    // A coach's own message.
    CoachMessage,
    // A coach's casework on a client.
    Pause,
    Hold,
    Discharge,
    Resume,
    CoachContact,
    ConfirmPhone,
    ConfirmDeceased,
    UndoDeceased,
    DismissOutreach,
    Reassign,
    // Consent, from a coach, a reply, a link or the provider.
    OptOut,
    OptIn,
    // What a client's reply did.
    CrisisHold,
    ReportedDeceased,
    WrongNumber,
    WrongPerson,
    Help,
    Reply,
    // A coach's action on a reply.
    ReplyHandled,
    CrisisAcknowledged,
    // Telling people about replies.
    CrisisAlert,
    DeceasedAlert,
    CrisisEscalation,
    ReplyNotice,
    // Mail that did not arrive.
    EmailBounced,
    // Imports.
    ImportClients,
    ImportEvents,
    // Coaches, cover, sign-in and tokens.
    CoachAdded,
    CoachActivated,
    CoachDeactivated,
    CoachAway,
    CoachBack,
    PasswordReset,
    Login,
    LoginFailed,
    Logout,
    TokenCreated,
    TokenRevoked,
}

/// What a coach does with a reply, named as its URLs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum ReplyAction {
    /// Handled: answered or dealt with outside reengage.
    Handled,
    /// "I'm on it": a crisis alert stops escalating.
    Acknowledge,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn national_numbers_are_read_in_the_default_region() {
        let us = Some(phonenumber::country::Id::US);
        assert_eq!(
            PhoneNumber::parse("(415) 555-2671", us).unwrap().as_str(),
            "+14155552671"
        );
        assert_eq!(
            PhoneNumber::parse("+44 20 7946 0958", us).unwrap().as_str(),
            "+442079460958"
        );
        assert!(PhoneNumber::parse("555-12", us).is_err());
        assert!(PhoneNumber::parse("not a phone", us).is_err());
    }

    #[test]
    fn emails_must_have_a_domain() {
        assert!(EmailAddress::parse("sam@example.org").is_ok());
        assert!(EmailAddress::parse("sam").is_err());
        assert!(EmailAddress::parse("sam@").is_err());
    }
}
