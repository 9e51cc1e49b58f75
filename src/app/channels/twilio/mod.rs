//! SMS through a Twilio-compatible REST API (docs/domain.md has the facts).
//!
//! Outcomes of a create (`POST …/Messages.json`):
//! - 2xx with a `sid`: `Sent`;
//! - 429, or error 20429: `Retry`;
//! - 401, or error 20003: `ChannelDown` (the credentials are wrong: no message
//!   is at fault, and the channel stops until an operator fixes them);
//! - any other 4xx (21211 invalid number, 21614 not a mobile, 21610 the
//!   recipient replied STOP, …): `Failed`, with the code;
//! - a 5xx, a timeout, or a connection lost after the request went out:
//!   `InDoubt` (create has no idempotency key; reconcile before any resend);
//! - the connection refused before anything was sent: `Retry`.

pub mod signature;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Delivery, Outgoing, Reconciliation, Transport};
use crate::app::config::Settings;

pub struct TwilioSms {
    http: reqwest::Client,
    messages_url: String,
    user: String,
    password: SecretString,
    sender: SenderField,
    status_callback: String,
}

enum SenderField {
    From(String),
    MessagingService(String),
}

#[derive(Debug, Deserialize)]
struct CreatedMessage {
    sid: Option<String>,
    error_code: Option<i64>,
    error_message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: Option<i64>,
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MessageList {
    #[serde(default)]
    messages: Vec<ListedMessage>,
}

#[derive(Debug, Deserialize)]
struct ListedMessage {
    sid: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    to: Option<String>,
}

impl TwilioSms {
    /// Builds the client from `[sms.twilio]` (checked at start).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let twilio = &settings.sms.twilio;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(twilio.timeout_seconds))
            .connect_timeout(Duration::from_secs(twilio.timeout_seconds.min(10)))
            .build()
            .map_err(|e| {
                anyhow::anyhow!("config key `sms.twilio`: cannot build the HTTP client: {e}")
            })?;
        let (user, password) = if twilio.api_key_sid.is_empty() {
            (twilio.account_sid.clone(), twilio.auth_token.clone())
        } else {
            (twilio.api_key_sid.clone(), twilio.api_key_secret.clone())
        };
        let sender = if twilio.messaging_service_sid.is_empty() {
            SenderField::From(settings.sms.from.clone())
        } else {
            SenderField::MessagingService(twilio.messaging_service_sid.clone())
        };
        Ok(Self {
            http,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                twilio.base_url.as_str().trim_end_matches('/'),
                twilio.account_sid
            ),
            user,
            password,
            sender,
            status_callback: format!(
                "{}/webhooks/twilio/status",
                settings.http.public_url.as_str().trim_end_matches('/')
            ),
        })
    }
}

#[async_trait]
impl Transport for TwilioSms {
    async fn deliver(&self, message: &Outgoing) -> Delivery {
        let (sender_key, sender_value) = match &self.sender {
            SenderField::From(from) => ("From", from.as_str()),
            SenderField::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form = [
            ("To", message.to.as_str()),
            (sender_key, sender_value),
            ("Body", message.body.as_str()),
            ("StatusCallback", self.status_callback.as_str()),
        ];
        let response = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .form(&form)
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Delivery::Retry {
                    code: None,
                    error: format!("could not connect to the SMS API: {}", without_url(&e)),
                };
            }
            Err(e) => {
                return Delivery::InDoubt {
                    code: None,
                    error: format!(
                        "no answer from the SMS API after the request: {}",
                        without_url(&e)
                    ),
                };
            }
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => {
                return Delivery::InDoubt {
                    code: Some(status.as_u16().to_string()),
                    error: format!("the SMS API's answer was cut off: {}", without_url(&e)),
                };
            }
        };
        classify(status, &text)
    }

    async fn reconcile(&self, message: &Outgoing, since: DateTime<Utc>) -> Reconciliation {
        let date = since.format("%Y-%m-%d").to_string();
        let response = self
            .http
            .get(&self.messages_url)
            .basic_auth(&self.user, Some(self.password.expose_secret()))
            .query(&[
                ("To", message.to.as_str()),
                ("DateSent>", date.as_str()),
                ("PageSize", "100"),
            ])
            .send()
            .await;
        let Ok(response) = response else {
            return Reconciliation::Unknown;
        };
        if !response.status().is_success() {
            return Reconciliation::Unknown;
        }
        let Ok(list) = response.json::<MessageList>().await else {
            return Reconciliation::Unknown;
        };
        list.messages
            .into_iter()
            .find(|m| {
                m.body.as_deref() == Some(message.body.as_str())
                    && m.to.as_deref().is_none_or(|to| to == message.to)
            })
            .map_or(Reconciliation::NotFound, |m| Reconciliation::Found(m.sid))
    }
}

fn classify(status: StatusCode, text: &str) -> Delivery {
    if status.is_success() {
        return match serde_json::from_str::<CreatedMessage>(text) {
            Ok(CreatedMessage { sid: Some(sid), .. }) => Delivery::Sent { provider_id: sid },
            Ok(created) => Delivery::InDoubt {
                code: created.error_code.map(|c| c.to_string()),
                error: created
                    .error_message
                    .unwrap_or_else(|| "the SMS API accepted the request but gave no sid".into()),
            },
            Err(_) => Delivery::InDoubt {
                code: Some(status.as_u16().to_string()),
                error: "the SMS API accepted the request with an unreadable answer".into(),
            },
        };
    }
    let api: Option<ApiError> = serde_json::from_str(text).ok();
    let api_code = api.as_ref().and_then(|a| a.code);
    let code = Some(api_code.map_or_else(|| status.as_u16().to_string(), |c| c.to_string()));
    let error = format!(
        "HTTP {}: {}",
        status.as_u16(),
        api.and_then(|a| a.message)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned())
    );
    match (status.as_u16(), api_code) {
        (429, _) | (_, Some(20429)) => Delivery::Retry { code, error },
        (401, _) | (_, Some(20003)) => Delivery::ChannelDown {
            code,
            error: format!(
                "{error}. The SMS provider refused the credentials: check sms.twilio.account_sid \
                 and sms.twilio.auth_token (or the API key), then restart"
            ),
        },
        (500..=599, _) => Delivery::InDoubt { code, error },
        _ => Delivery::Failed { code, error },
    }
}

/// A reqwest error without the URL, which holds the account SID.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the API");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_are_sorted_into_outcomes() {
        let body = |code: i64| format!(r#"{{"code": {code}, "message": "m", "status": 400}}"#);
        assert!(matches!(
            classify(StatusCode::CREATED, r#"{"sid": "SM0123", "status": "queued"}"#),
            Delivery::Sent { provider_id } if provider_id == "SM0123"
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, ""),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &body(20429)),
            Delivery::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &body(21610)),
            Delivery::Failed { code: Some(c), .. } if c == "21610"
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, &body(21211)),
            Delivery::Failed { .. }
        ));
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, &body(20003)),
            Delivery::ChannelDown { .. }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, ""),
            Delivery::InDoubt { .. }
        ));
    }
}
