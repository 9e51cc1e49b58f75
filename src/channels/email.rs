//! Building the RFC 5322 message, shared by every email transport.

use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{ContentType, MessageId};
use lettre::message::{Mailbox, MultiPart, SinglePart};

use super::Outgoing;

/// A multipart plain-text and HTML message with the stored Message-ID, so that
/// every attempt of the same message is the same email.
pub fn build(from: &Mailbox, message: &Outgoing) -> anyhow::Result<Message> {
    let to: Mailbox = message
        .to
        .parse()
        .map_err(|e| anyhow::anyhow!("recipient `{}` is not an address: {e}", message.to))?;
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(message.subject.clone().unwrap_or_default())
        .date(SystemTime::from(message.attempted_at))
        .header(MessageId::from(
            message.email_message_id.clone().unwrap_or_default(),
        ));
    if let Some(reply_to) = message
        .reply_to
        .as_deref()
        .and_then(|r| r.parse::<Mailbox>().ok())
    {
        builder = builder.reply_to(reply_to);
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

/// A new Message-ID in the sender's domain.
pub fn new_message_id(from: &Mailbox) -> String {
    format!("<{}@{}>", uuid::Uuid::new_v4(), from.email.domain())
}
