//! The ways a message leaves: email and SMS. Dispatch only sees [`Transport`];
//! which implementation stands behind each channel is the settings' choice.

pub mod email;
pub mod outbox;
pub mod pace;
pub mod smtp;
pub mod twilio;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::app::config::{EmailTransportKind, Settings, SmsTransportKind};
use crate::domain::Channel;
use pace::Pace;

/// One attempt's worth of message, as a transport needs it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The message's id; 0 for what is not a client message (a coach alert).
    pub message_id: i64,
    /// A name for this send, unique among sends: the message id, or `alert-N`.
    pub reference: String,
    pub channel: Channel,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    pub html: Option<String>,
    /// The RFC 5322 Message-ID stored with the draft (email only).
    pub email_message_id: Option<String>,
    /// The Message-ID of the client's email this one answers, so that it
    /// threads (`In-Reply-To`, `References`).
    pub in_reply_to: Option<String>,
    /// The coach's address, so that a reply reaches a person.
    pub reply_to: Option<String>,
    /// The client asked for discretion: a neutral sender name.
    pub discreet: bool,
    /// The signed one-click unsubscribe link (email only).
    pub unsubscribe_url: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

impl Outgoing {
    /// A note outside the queue (an alert or digest to a coach, crisis
    /// resources to a client): no draft, so no send-log row, no unsubscribe
    /// link, no reply-to. `reference` names it.
    pub fn note(
        channel: Channel,
        reference: String,
        to: String,
        subject: Option<String>,
        body: String,
        message_id_domain: &lettre::message::Mailbox,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            message_id: 0,
            reference,
            channel,
            to,
            subject,
            body,
            html: None,
            email_message_id: (channel == Channel::Email)
                .then(|| email::new_message_id(message_id_domain)),
            in_reply_to: None,
            reply_to: None,
            discreet: false,
            unsubscribe_url: None,
            attempted_at: at,
        }
    }
}

/// How an attempt ended, in the four outcomes of the send log, plus the
/// operator's problem that is nobody's message's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The provider took the message.
    Sent { provider_id: String },
    /// Nothing went out; trying again later may work.
    Retry { code: Option<String>, error: String },
    /// Nothing went out, and trying again will not help.
    Failed { code: Option<String>, error: String },
    /// The provider may or may not have taken it; never resent blindly.
    InDoubt { code: Option<String>, error: String },
    /// The provider refused our credentials: the whole channel stops until an
    /// operator fixes its settings. The message keeps its attempts.
    ChannelDown { code: Option<String>, error: String },
}

/// What the provider says about a message whose attempt is in doubt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciliation {
    /// It went out, with this provider id.
    Found(String),
    /// The provider has no such message: it may be sent again.
    NotFound,
    /// The provider cannot tell (or this channel never resends on its own).
    Unknown,
}

#[async_trait]
pub trait Transport: Send + Sync {
    async fn deliver(&self, message: &Outgoing) -> Delivery;

    /// Asks the provider whether a message whose attempt began at `since` went out.
    async fn reconcile(&self, _message: &Outgoing, _since: DateTime<Utc>) -> Reconciliation {
        Reconciliation::Unknown
    }
}

#[derive(Clone)]
pub struct Channels {
    pub email: Arc<dyn Transport>,
    pub sms: Arc<dyn Transport>,
    paused: Arc<Mutex<BTreeMap<&'static str, String>>>,
    email_pace: Arc<Mutex<Pace>>,
    sms_pace: Arc<Mutex<Pace>>,
}

impl Channels {
    /// Builds each channel's transport from its settings.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let email: Arc<dyn Transport> = match settings.email.transport {
            EmailTransportKind::Outbox => Arc::new(outbox::OutboxEmail::new(
                settings.outbox.dir.clone(),
                email::Sender::from_settings(&settings.email),
            )),
            EmailTransportKind::Smtp => Arc::new(smtp::SmtpEmail::from_settings(&settings.email)?),
        };
        let sms: Arc<dyn Transport> = match settings.sms.transport {
            SmsTransportKind::Outbox => Arc::new(outbox::OutboxSms::new(
                settings.outbox.dir.clone(),
                settings.sms.from.clone(),
            )),
            SmsTransportKind::Twilio => Arc::new(twilio::TwilioSms::from_settings(settings)?),
        };
        // The provider's pace binds only a real provider; the file outbox has none.
        let sms_rate = match settings.sms.transport {
            SmsTransportKind::Twilio => settings.sms.twilio.max_per_second,
            SmsTransportKind::Outbox => 0,
        };
        Ok(Self {
            email,
            sms,
            paused: Arc::default(),
            email_pace: Arc::new(Mutex::new(Pace::per_second(settings.email.max_per_second))),
            sms_pace: Arc::new(Mutex::new(Pace::per_second(sms_rate))),
        })
    }

    /// Whether sends on `channel` are held to a pace.
    pub fn is_paced(&self, channel: Channel) -> bool {
        let pace = match channel {
            Channel::Email => &self.email_pace,
            Channel::Sms => &self.sms_pace,
        };
        pace.lock().unwrap_or_else(|e| e.into_inner()).is_limited()
    }

    /// The next start time allowed on `channel` at or after `earliest`, and whether
    /// the channel is paced at all.
    pub fn pace_slot(&self, channel: Channel, earliest: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let pace = match channel {
            Channel::Email => &self.email_pace,
            Channel::Sms => &self.sms_pace,
        };
        let mut pace = pace.lock().unwrap_or_else(|e| e.into_inner());
        pace.is_limited().then(|| pace.slot(earliest))
    }

    /// Sends one message to a person outside the queue (a coach's alert,
    /// notice or digest) through the same gate as every queued send: a paused
    /// channel refuses it, the provider's pace holds, and credentials the
    /// provider refuses pause the channel.
    pub async fn deliver_gated(
        &self,
        clock: &crate::app::clock::Clock,
        channel: Channel,
        message: &Outgoing,
    ) -> Delivery {
        if let Some(reason) = self.paused().get(channel_name(channel)) {
            return Delivery::ChannelDown {
                code: None,
                error: format!("the {channel} channel is paused: {reason}"),
            };
        }
        if let Some(slot) = self.pace_slot(channel, clock.now()) {
            clock.sleep_until(slot).await;
        }
        let delivery = self.for_channel(channel).deliver(message).await;
        if let Delivery::ChannelDown { error, .. } = &delivery {
            self.pause(channel, error.clone());
        }
        delivery
    }

    pub fn for_channel(&self, channel: Channel) -> &dyn Transport {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        }
    }

    /// Stops a channel until restart, with the reason an operator must fix.
    pub fn pause(&self, channel: Channel, reason: String) {
        let mut paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        paused.insert(channel_name(channel), reason);
    }

    pub fn is_paused(&self, channel: Channel) -> bool {
        let paused = self.paused.lock().unwrap_or_else(|e| e.into_inner());
        paused.contains_key(channel_name(channel))
    }

    /// Paused channels and why, for `/healthz` and metrics.
    pub fn paused(&self) -> BTreeMap<&'static str, String> {
        self.paused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "email",
        Channel::Sms => "sms",
    }
}
