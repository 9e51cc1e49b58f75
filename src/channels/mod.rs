//! The ways a message leaves: email and SMS. Dispatch only sees [`Transport`];
//! which implementation stands behind each channel is the settings' choice.

pub mod email;
pub mod outbox;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::{EmailTransportKind, Settings, SmsTransportKind};
use crate::domain::Channel;

/// One attempt's worth of message, as a transport needs it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub message_id: i64,
    pub channel: Channel,
    pub to: String,
    pub subject: Option<String>,
    pub body: String,
    pub html: Option<String>,
    /// The RFC 5322 Message-ID stored with the draft (email only).
    pub email_message_id: Option<String>,
    /// The coach's address, so that a reply reaches a person.
    pub reply_to: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

/// How an attempt ended, in the four outcomes of the send log.
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
}

#[async_trait]
pub trait Transport: Send + Sync {
    async fn deliver(&self, message: &Outgoing) -> Delivery;
}

#[derive(Clone)]
pub struct Channels {
    pub email: Arc<dyn Transport>,
    pub sms: Arc<dyn Transport>,
}

impl Channels {
    /// Builds each channel's transport from its settings.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let email: Arc<dyn Transport> = match settings.email.transport {
            EmailTransportKind::Outbox => Arc::new(outbox::OutboxEmail::new(
                settings.outbox.dir.clone(),
                settings.email.from.clone(),
            )),
        };
        let sms: Arc<dyn Transport> = match settings.sms.transport {
            SmsTransportKind::Outbox => Arc::new(outbox::OutboxSms::new(
                settings.outbox.dir.clone(),
                settings.sms.from.clone(),
            )),
        };
        Ok(Self { email, sms })
    }

    pub fn for_channel(&self, channel: Channel) -> &dyn Transport {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms => self.sms.as_ref(),
        }
    }
}
