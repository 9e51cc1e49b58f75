//! A client as the rules see them: who they are, how to reach them, and
//! what they have said about being reached.

use chrono::{DateTime, Utc};

use super::timestamp::{from_opt_ts, from_ts};
use super::{Channel, ClientStatus, EmailProblem, StatusReason};

/// A client as the rest of reengage sees it: statuses and channels as domain
/// types, flags as booleans. Read from a row (or a packed JSON object) of
/// `store::clients`'s record once, on the way out of the store.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: i64,
    pub external_id: String,
    pub first_name: String,
    pub preferred_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub preferred_channel: Channel,
    pub language: String,
    pub timezone: String,
    pub coach_id: i64,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub discreet: bool,
    pub status: ClientStatus,
    /// Why the client is on hold or discharged, when a reply or a coach said
    /// (a reported death).
    pub status_reason: Option<StatusReason>,
    pub opted_out_email_at: Option<i64>,
    pub opted_out_sms_at: Option<i64>,
    pub last_engaged_at: Option<i64>,
    pub next_detect_at: Option<i64>,
    pub created_at: i64,
    /// When a reply said the phone is not the client's (see `set_phone_wrong`).
    pub phone_wrong_at: Option<i64>,
    /// Why no email goes to the address, and since when (see `set_email_bad`).
    pub email_problem: Option<(EmailProblem, i64)>,
}

impl Client {
    /// The name to greet the client by.
    pub fn greeting_name(&self) -> &str {
        self.preferred_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.first_name)
    }

    /// Quiet time counts from the last engagement, or from when the client was
    /// added if there has been none yet.
    pub fn quiet_since(&self) -> DateTime<Utc> {
        from_ts(self.last_engaged_at.unwrap_or(self.created_at))
    }

    pub fn opted_out_at(&self, channel: Channel) -> Option<DateTime<Utc>> {
        from_opt_ts(match channel {
            Channel::Email => self.opted_out_email_at,
            Channel::Sms => self.opted_out_sms_at,
        })
    }

    /// A reply said the phone is not the client's, and nobody has confirmed it since.
    pub fn phone_is_wrong(&self) -> bool {
        self.phone_wrong_at.is_some()
    }

    pub fn contact(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_deref(),
            Channel::Sms => self.phone.as_deref(),
        }
        .filter(|c| !c.is_empty())
    }
}

#[cfg(test)]
impl Client {
    /// An active client who consented to both channels and has both
    /// addresses, preferring SMS, last engaged at 1,000 s.
    pub fn example() -> Self {
        Client {
            id: 1,
            external_id: "c-1".into(),
            first_name: "Ana".into(),
            preferred_name: None,
            email: Some("ana@example.org".into()),
            phone: Some("+14155550123".into()),
            preferred_channel: Channel::Sms,
            language: "en".into(),
            timezone: "America/New_York".into(),
            coach_id: 1,
            consent_email: true,
            consent_sms: true,
            discreet: false,
            status: ClientStatus::Active,
            status_reason: None,
            opted_out_email_at: None,
            opted_out_sms_at: None,
            last_engaged_at: Some(1_000),
            next_detect_at: None,
            created_at: 0,
            phone_wrong_at: None,
            email_problem: None,
        }
    }
}
