//! Webhooks from the SMS provider. Every request must carry a valid
//! `X-Twilio-Signature` over `public_url` + the path and query it called and all
//! its form parameters; anything else gets 403 and changes nothing.

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;

use crate::app::channels::twilio::signature;
use crate::app::context::AppContext;
use crate::pipeline::{delivery, replies};

/// The full URL the provider called, as it signs it.
fn called_url(ctx: &AppContext, uri: &Uri) -> String {
    let base = ctx.settings.http.public_url.as_str().trim_end_matches('/');
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    format!("{base}{path}")
}

fn verified(ctx: &AppContext, uri: &Uri, headers: &HeaderMap, params: &[(String, String)]) -> bool {
    let token = ctx.settings.sms.twilio.auth_token.expose_secret();
    if token.is_empty() {
        tracing::warn!(
            "webhook refused: sms.twilio.auth_token is not set, so signatures cannot be checked"
        );
        return false;
    }
    let Some(given) = headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
    else {
        tracing::warn!(path = uri.path(), "webhook refused: no X-Twilio-Signature");
        return false;
    };
    let ok = signature::verify(token, &called_url(ctx, uri), params, given);
    if !ok {
        tracing::warn!(
            path = uri.path(),
            "webhook refused: the signature does not match"
        );
    }
    ok
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `POST /webhooks/twilio/status`: a delivery report (see `pipeline::delivery`).
/// An unknown sid is logged and answered 200, so the provider does not retry
/// forever.
pub async fn status_callback(
    State(ctx): State<AppContext>,
    uri: Uri,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> StatusCode {
    if !verified(&ctx, &uri, &headers, &params) {
        return StatusCode::FORBIDDEN;
    }
    let (Some(sid), Some(status)) = (
        param(&params, "MessageSid"),
        param(&params, "MessageStatus"),
    ) else {
        return StatusCode::BAD_REQUEST;
    };
    let error_code = param(&params, "ErrorCode");
    let status = status.to_ascii_lowercase();
    let now = ctx.clock.now();
    match delivery::record_status(&ctx, sid, &status, error_code, now).await {
        Ok(true) => StatusCode::OK,
        Ok(false) => {
            tracing::warn!(
                sid,
                "delivery report for a message reengage does not know; ignored"
            );
            StatusCode::OK
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "delivery report not recorded");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// `POST /webhooks/twilio/inbound`: a client's SMS. It is stored before
/// anything else and always answered with TwiML: empty, or one message (the
/// help text, an opt-out confirmation, or the crisis resources).
pub async fn inbound(
    State(ctx): State<AppContext>,
    uri: Uri,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    if !verified(&ctx, &uri, &headers, &params) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let Some(from) = param(&params, "From") else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let incoming = replies::Incoming::sms(
        from,
        param(&params, "To"),
        param(&params, "Body").unwrap_or_default(),
        param(&params, "MessageSid"),
    );
    match replies::receive(&ctx, &incoming, ctx.clock.now()).await {
        Ok(received) => twiml(received.answers()),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "inbound reply not handled");
            // Not 2xx, so that the provider delivers it again.
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// A TwiML document: `<Response/>`, or one `<Message>` per answer, escaped.
fn twiml(answers: &[String]) -> Response {
    let body = if answers.is_empty() {
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>".to_owned()
    } else {
        let messages: String = answers
            .iter()
            .map(|a| format!("<Message>{}</Message>", handlebars::html_escape(a)))
            .collect();
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>{messages}</Response>")
    };
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}
