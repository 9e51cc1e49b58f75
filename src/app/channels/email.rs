//! Building the RFC 5322 message, shared by every email transport.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue, MessageId};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use super::Outgoing;
use crate::app::config::EmailSettings;

/// Who an email comes from: the configured sender, and the neutral display name
/// that replaces its name for discreet clients.
#[derive(Debug, Clone)]
pub struct Sender {
    pub from: Mailbox,
    pub discreet_name: String,
}

impl Sender {
    pub fn from_settings(settings: &EmailSettings) -> Self {
        Self {
            from: settings.from.clone(),
            discreet_name: settings.discreet_name.clone(),
        }
    }

    fn mailbox(&self, discreet: bool) -> Mailbox {
        if discreet {
            Mailbox::new(Some(self.discreet_name.clone()), self.from.email.clone())
        } else {
            self.from.clone()
        }
    }
}

/// A multipart plain-text and HTML message with the stored Message-ID, so that
/// every attempt of the same message is the same email. Replies go to the coach;
/// mail clients get an RFC 8058 one-click unsubscribe.
pub fn build(sender: &Sender, message: &Outgoing) -> anyhow::Result<Message> {
    let to: Mailbox = message
        .to
        .parse()
        .map_err(|e| anyhow::anyhow!("recipient `{}` is not an address: {e}", message.to))?;
    let mut builder = Message::builder()
        .from(sender.mailbox(message.discreet))
        .to(to)
        .subject(message.subject.clone().unwrap_or_default())
        .date(SystemTime::from(message.attempted_at))
        .header(MessageId::from(
            message.email_message_id.clone().unwrap_or_default(),
        ));
    if let Some(answered) = &message.in_reply_to {
        builder = builder
            .in_reply_to(answered.clone())
            .references(answered.clone());
    }
    if let Some(reply_to) = message
        .reply_to
        .as_deref()
        .and_then(|r| r.parse::<Mailbox>().ok())
    {
        builder = builder.reply_to(reply_to);
    }
    if let Some(url) = &message.unsubscribe_url {
        builder = builder
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(message.body.clone());
    let body = match &message.html {
        Some(html) => MultiPart::alternative().singlepart(text).singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html.clone()),
        ),
        None => MultiPart::mixed().singlepart(text),
    };
    Ok(builder.multipart(body)?)
}

/// [`build`], with a message that cannot be built (a bad recipient) reported as
/// the permanent failure it is.
pub fn build_or_fail(sender: &Sender, message: &Outgoing) -> Result<Message, super::Delivery> {
    build(sender, message).map_err(|e| super::Delivery::Failed {
        code: None,
        error: e.to_string(),
    })
}

/// A new Message-ID in the sender's domain.
pub fn new_message_id(from: &Mailbox) -> String {
    format!("<{}@{}>", uuid::Uuid::new_v4(), from.email.domain())
}
