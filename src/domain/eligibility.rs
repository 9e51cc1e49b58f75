//! May this client be written to, now, on this channel, for this purpose?
//! The one rule for detection, dispatch, a coach's own message and the
//! answers to a client's text; its [`Refusal`] names are what the API, the
//! messages' cancel reasons and detection's skips show.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::client::Client;
use super::{Channel, ClientStatus, EmailProblem, StatusReason};

/// Why nothing may go to a client, for a purpose, on a channel. The names
/// are stable: they are API error codes, cancel reasons and skip reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[derive(strum::AsRefStr, strum::IntoStaticStr, strum::Display)]
#[derive(strum::EnumString, strum::EnumIter)]
pub enum Refusal {
    /// The client is paused: the cadence leaves them alone for now.
    #[strum(serialize = "paused")]
    Paused,
    /// On hold (after a crisis, or by a coach) until a coach resumes them.
    #[strum(serialize = "hold")]
    Hold,
    /// Discharged from the program.
    #[strum(serialize = "discharged")]
    Discharged,
    /// The client opted out of the channel.
    #[strum(serialize = "opted_out")]
    OptedOut,
    /// A reply said the phone is not the client's, and nobody has confirmed it since.
    #[strum(serialize = "wrong_number")]
    WrongNumber,
    /// Email to the address bounced for good.
    #[strum(serialize = "bounced")]
    Bounced,
    /// A reply said the email address reaches someone else.
    #[strum(serialize = "wrong_person")]
    WrongPerson,
    /// The client has not consented to the channel.
    #[strum(serialize = "no_consent")]
    NoConsent,
    /// The client has no address or number on the channel.
    #[strum(serialize = "no_address")]
    NoAddress,
    /// A reply said the client has died, and no coach has confirmed or
    /// undone it yet: nothing goes, on any channel, for any purpose but
    /// crisis resources.
    #[strum(serialize = "reported_deceased")]
    ReportedDeceased,
    /// A coach confirmed the client has died.
    #[strum(serialize = "deceased")]
    Deceased,
    /// The client was back in touch after the cadence's draft was written.
    #[strum(serialize = "re_engaged")]
    ReEngaged,
}

impl Serialize for Refusal {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_ref())
    }
}

impl Refusal {
    /// What a coach reads when their message is refused.
    pub fn explain(self, channel: Channel) -> String {
        match self {
            Refusal::Paused => "the client is paused".to_owned(),
            Refusal::Hold => "the client is on hold".to_owned(),
            Refusal::Discharged => "the client was discharged".to_owned(),
            Refusal::OptedOut => format!("the client opted out of {channel}"),
            Refusal::WrongNumber => {
                "a reply said this phone is not the client's; confirm it or give a new number"
                    .to_owned()
            }
            Refusal::Bounced => "email to this address bounced; give a new address".to_owned(),
            Refusal::WrongPerson => {
                "a reply said this address is not the client's; give a new address".to_owned()
            }
            Refusal::NoConsent => format!("the client has not consented to {channel}"),
            Refusal::NoAddress => format!("the client has no {channel} address"),
            Refusal::ReportedDeceased => {
                "a reply said the client has died; confirm or undo it on the client page".to_owned()
            }
            Refusal::Deceased => "the client has died".to_owned(),
            Refusal::ReEngaged => "the client was back in touch since it was drafted".to_owned(),
        }
    }

    /// Whether the refusal closes the channel itself (and not the client's
    /// standing or the message's timing), so that another channel may serve.
    pub fn closes_channel(self) -> bool {
        matches!(
            self,
            Refusal::OptedOut
                | Refusal::WrongNumber
                | Refusal::Bounced
                | Refusal::WrongPerson
                | Refusal::NoConsent
        )
    }

    /// The refusal a change to `status` makes for the cadence, if any.
    pub fn for_status(status: ClientStatus) -> Option<Self> {
        match status {
            ClientStatus::Active => None,
            ClientStatus::Paused => Some(Refusal::Paused),
            ClientStatus::Hold => Some(Refusal::Hold),
            ClientStatus::Discharged => Some(Refusal::Discharged),
        }
    }
}

impl From<StatusReason> for Refusal {
    fn from(reason: StatusReason) -> Self {
        match reason {
            StatusReason::ReportedDeceased => Refusal::ReportedDeceased,
            StatusReason::Deceased => Refusal::Deceased,
        }
    }
}

impl From<EmailProblem> for Refusal {
    fn from(problem: EmailProblem) -> Self {
        match problem {
            EmailProblem::Bounced => Refusal::Bounced,
            EmailProblem::WrongPerson => Refusal::WrongPerson,
        }
    }
}

/// What a message to a client is for; the rules differ by purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A step of the cadence: about to be drafted (`drafted_at` is `None`), or
    /// drafted then and about to go. Only an active client gets one, and a
    /// draft written before the client came back is stale.
    Cadence { drafted_at: Option<DateTime<Utc>> },
    /// A coach's own message. A coach may write to a client the cadence
    /// leaves alone (on hold above all); consent, opt-outs and a bad address
    /// still stop it.
    CoachMessage,
    /// An automatic answer to the text the client just sent (the help text,
    /// say). They wrote to us, so consent is not asked; but a phone a
    /// stranger holds is never told what the program is.
    Answer,
    /// The one confirmation of an opt-out (or opt-in) the client just sent,
    /// which the law expects even though the channel is now closed.
    Confirmation,
    /// Crisis resources in answer to a crisis text. Safety first: nothing
    /// the client's record says stops them.
    CrisisResource,
}

/// Whether `client` may be written to on `channel` for `purpose`, and if not,
/// the first reason why: the client's standing, then the channel (opt-out,
/// a bad number or address, consent), then the address, then the timing.
pub fn eligibility(client: &Client, channel: Channel, purpose: Purpose) -> Result<(), Refusal> {
    // A reported death stops everything, even the answers and confirmations
    // the law asks for: nobody is to be written to in the client's name.
    // Crisis resources still go: the writer may be the one in danger.
    if let Some(reason) = client.status_reason
        && purpose != Purpose::CrisisResource
    {
        return Err(reason.into());
    }
    match purpose {
        Purpose::CrisisResource | Purpose::Confirmation => Ok(()),
        Purpose::Answer => match channel {
            Channel::Sms if client.phone_is_wrong() => Err(Refusal::WrongNumber),
            _ => Ok(()),
        },
        Purpose::CoachMessage => channel_open(client, channel),
        Purpose::Cadence { drafted_at } => {
            if let Some(refusal) = Refusal::for_status(client.status) {
                return Err(refusal);
            }
            channel_open(client, channel)?;
            match drafted_at {
                Some(at) if client.quiet_since() > at => Err(Refusal::ReEngaged),
                _ => Ok(()),
            }
        }
    }
}

/// The channel's own refusals, then the address.
fn channel_open(client: &Client, channel: Channel) -> Result<(), Refusal> {
    let consent = match channel {
        Channel::Email => client.consent_email,
        Channel::Sms => client.consent_sms,
    };
    if client.opted_out_at(channel).is_some() {
        return Err(Refusal::OptedOut);
    }
    match (channel, client.email_problem) {
        (Channel::Sms, _) if client.phone_is_wrong() => return Err(Refusal::WrongNumber),
        (Channel::Email, Some((problem, _))) => return Err(problem.into()),
        _ => {}
    }
    if !consent {
        return Err(Refusal::NoConsent);
    }
    if client.contact(channel).is_none() {
        return Err(Refusal::NoAddress);
    }
    Ok(())
}

/// The channel the cadence writes on: the preferred one if it is open,
/// otherwise the other one if that is. `Err` holds the preferred channel's
/// refusal when both are closed, or the chosen channel's when the refusal is
/// not the channel's own (no address, the client's standing).
pub fn cadence_channel(client: &Client) -> Result<Channel, Refusal> {
    let preferred = client.preferred_channel;
    let purpose = Purpose::Cadence { drafted_at: None };
    let first = eligibility(client, preferred, purpose);
    match first {
        Ok(()) => Ok(preferred),
        Err(refusal) if !refusal.closes_channel() => Err(refusal),
        Err(refusal) => match eligibility(client, preferred.other(), purpose) {
            Ok(()) => Ok(preferred.other()),
            Err(other) if !other.closes_channel() => Err(other),
            Err(_) => Err(refusal),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    fn client() -> Client {
        Client::example()
    }

    const CADENCE: Purpose = Purpose::Cadence { drafted_at: None };

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn an_active_consenting_client_may_be_written_to_for_every_purpose() {
        let c = client();
        for purpose in [
            CADENCE,
            Purpose::Cadence {
                drafted_at: Some(at(2_000)),
            },
            Purpose::CoachMessage,
            Purpose::Answer,
            Purpose::Confirmation,
            Purpose::CrisisResource,
        ] {
            for channel in [Channel::Sms, Channel::Email] {
                assert_eq!(eligibility(&c, channel, purpose), Ok(()), "{purpose:?}");
            }
        }
    }

    #[test]
    fn paused_hold_and_discharged_stop_the_cadence_but_not_a_coach() {
        for (status, refusal) in [
            (ClientStatus::Paused, Refusal::Paused),
            (ClientStatus::Hold, Refusal::Hold),
            (ClientStatus::Discharged, Refusal::Discharged),
        ] {
            let c = Client { status, ..client() };
            assert_eq!(eligibility(&c, Channel::Sms, CADENCE), Err(refusal));
            assert_eq!(cadence_channel(&c), Err(refusal));
            assert_eq!(eligibility(&c, Channel::Sms, Purpose::CoachMessage), Ok(()));
        }
    }

    #[test]
    fn an_opt_out_stops_the_cadence_and_a_coach_but_not_its_confirmation() {
        let c = Client {
            opted_out_sms_at: Some(500),
            ..client()
        };
        assert_eq!(
            eligibility(&c, Channel::Sms, CADENCE),
            Err(Refusal::OptedOut)
        );
        assert_eq!(
            eligibility(&c, Channel::Sms, Purpose::CoachMessage),
            Err(Refusal::OptedOut)
        );
        assert_eq!(eligibility(&c, Channel::Sms, Purpose::Confirmation), Ok(()));
        assert_eq!(eligibility(&c, Channel::Sms, Purpose::Answer), Ok(()));
        assert_eq!(eligibility(&c, Channel::Email, CADENCE), Ok(()));
        assert_eq!(cadence_channel(&c), Ok(Channel::Email));
    }

    #[test]
    fn a_wrong_number_stops_everything_on_sms_but_crisis_resources() {
        let c = Client {
            phone_wrong_at: Some(500),
            ..client()
        };
        for purpose in [CADENCE, Purpose::CoachMessage, Purpose::Answer] {
            assert_eq!(
                eligibility(&c, Channel::Sms, purpose),
                Err(Refusal::WrongNumber),
                "{purpose:?}"
            );
        }
        assert_eq!(
            eligibility(&c, Channel::Sms, Purpose::CrisisResource),
            Ok(())
        );
        assert_eq!(eligibility(&c, Channel::Email, CADENCE), Ok(()));
    }

    #[test]
    fn a_reported_death_stops_every_purpose_on_every_channel_but_crisis_resources() {
        for (reason, refusal) in [
            (StatusReason::ReportedDeceased, Refusal::ReportedDeceased),
            (StatusReason::Deceased, Refusal::Deceased),
        ] {
            let c = Client {
                status: ClientStatus::Hold,
                status_reason: Some(reason),
                ..client()
            };
            for channel in [Channel::Sms, Channel::Email] {
                for purpose in [
                    CADENCE,
                    Purpose::CoachMessage,
                    Purpose::Answer,
                    Purpose::Confirmation,
                ] {
                    assert_eq!(
                        eligibility(&c, channel, purpose),
                        Err(refusal),
                        "{purpose:?}"
                    );
                }
                assert_eq!(eligibility(&c, channel, Purpose::CrisisResource), Ok(()));
            }
            assert_eq!(cadence_channel(&c), Err(refusal));
        }
    }

    #[test]
    fn a_bad_email_address_is_refused_by_its_problem() {
        for (problem, refusal) in [
            (EmailProblem::Bounced, Refusal::Bounced),
            (EmailProblem::WrongPerson, Refusal::WrongPerson),
        ] {
            let c = Client {
                email_problem: Some((problem, 500)),
                preferred_channel: Channel::Email,
                ..client()
            };
            assert_eq!(eligibility(&c, Channel::Email, CADENCE), Err(refusal));
            assert_eq!(
                eligibility(&c, Channel::Email, Purpose::CoachMessage),
                Err(refusal)
            );
            assert_eq!(eligibility(&c, Channel::Sms, CADENCE), Ok(()));
            assert_eq!(cadence_channel(&c), Ok(Channel::Sms));
        }
    }

    #[test]
    fn no_consent_is_refused_for_the_cadence_and_a_coach_but_an_answer_goes() {
        let c = Client {
            consent_sms: false,
            consent_email: false,
            ..client()
        };
        assert_eq!(
            eligibility(&c, Channel::Sms, CADENCE),
            Err(Refusal::NoConsent)
        );
        assert_eq!(
            eligibility(&c, Channel::Email, Purpose::CoachMessage),
            Err(Refusal::NoConsent)
        );
        assert_eq!(eligibility(&c, Channel::Sms, Purpose::Answer), Ok(()));
        // Both channels closed: the preferred one's refusal is the reason.
        assert_eq!(cadence_channel(&c), Err(Refusal::NoConsent));
    }

    #[test]
    fn no_address_is_refused_after_the_channel_is_found_open() {
        let c = Client {
            phone: Some(String::new()),
            ..client()
        };
        assert_eq!(
            eligibility(&c, Channel::Sms, CADENCE),
            Err(Refusal::NoAddress)
        );
        assert_eq!(
            eligibility(&c, Channel::Sms, Purpose::CoachMessage),
            Err(Refusal::NoAddress)
        );
        // The preferred channel is open but has no number: the cadence does
        // not quietly move to email.
        assert_eq!(cadence_channel(&c), Err(Refusal::NoAddress));
    }

    #[test]
    fn a_draft_written_before_the_client_came_back_is_stale() {
        let c = client();
        assert_eq!(
            eligibility(
                &c,
                Channel::Sms,
                Purpose::Cadence {
                    drafted_at: Some(at(999))
                }
            ),
            Err(Refusal::ReEngaged)
        );
        assert_eq!(eligibility(&c, Channel::Sms, Purpose::CoachMessage), Ok(()));
    }

    #[test]
    fn every_refusal_has_a_stable_snake_case_name_and_an_explanation() {
        for refusal in Refusal::iter() {
            let name = refusal.as_ref();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert_eq!(name.parse::<Refusal>(), Ok(refusal));
            assert_eq!(
                serde_json::to_value(refusal).unwrap(),
                serde_json::json!(name)
            );
            assert!(!refusal.explain(Channel::Sms).is_empty());
        }
    }
}
