//! What the API's OpenAPI 3.1 document says beside its operations: the
//! title, the security scheme, the tags, and the shapes of the answers, which
//! the stories check every answer against. Each operation is declared on its
//! handler in `api.rs` (`#[utoipa::path]`), mounted with `utoipa_axum::routes!`,
//! and `api::openapi` builds the document from that same list: the router and
//! the document cannot drift. Nothing here uses `api`.

use chrono::{DateTime, Utc};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "reengage",
        description = "The JSON API for an agency's own systems. A bearer token from \
                       `reengage tokens create` acts as its coach: a coach sees and acts on \
                       their own clients (and those they cover for) only; anything else is 404, \
                       as for an id that does not exist. An admin's token acts on all. Every \
                       failure is `{\"error\": code, \"detail\": text}`, with `field` when one \
                       field is at fault.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "clients", description = "Clients and their engagement events"),
        (name = "drafts", description = "Messages: drafts to review, and what was sent"),
        (name = "replies", description = "What clients wrote back, and conversations"),
        (name = "reports", description = "Whether outreach works"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// Bearer tokens, as `reengage tokens create` makes them.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("A token from `reengage tokens create`.".to_owned());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// Every failure: a code to branch on, and a text for a person.
#[derive(ToSchema)]
#[schema(example = json!({"error": "bad_request", "detail": "first_name is empty", "field": "first_name"}))]
pub struct Error {
    /// `bad_request`, `unauthorized`, `not_found`, `method_not_allowed`,
    /// `conflict`, `payload_too_large`, `rate_limited`, `internal`,
    /// `unavailable`, or a refusal's own code (`opted_out`,
    /// `needs_confirmation`, …).
    pub error: String,
    pub detail: String,
    /// The field at fault, when one is.
    pub field: Option<String>,
    /// With `needs_confirmation`: the lint's findings.
    pub findings: Option<Vec<serde_json::Value>>,
}

/// The failures any operation may answer with.
#[derive(IntoResponses)]
pub enum Failures {
    /// A parameter or the body is wrong; `field` names it.
    #[response(status = 400)]
    BadRequest(#[to_schema] Error),
    /// No token, or one that is unknown, revoked or expired.
    #[response(status = 401)]
    Unauthorized(#[to_schema] Error),
    /// No such resource, or not the caller's.
    #[response(status = 404)]
    NotFound(#[to_schema] Error),
    /// The resource is not in a state for this (already decided, say), or
    /// the message may not go (`opted_out`, `wrong_number`,
    /// `needs_confirmation`, …).
    #[response(status = 409)]
    Conflict(#[to_schema] Error),
    /// The body is over `http.body_limit_bytes`.
    #[response(status = 413)]
    TooLarge(#[to_schema] Error),
    /// Too many requests from this address: see `Retry-After`.
    #[response(status = 429)]
    RateLimited(#[to_schema] Error),
    /// Something went wrong on our side; it has been logged.
    #[response(status = 500)]
    Internal(#[to_schema] Error),
    /// The request took longer than `http.request_timeout_seconds`, or the
    /// database is unavailable.
    #[response(status = 503)]
    Unavailable(#[to_schema] Error),
}

/// A client, as the CSV gives it plus what reengage knows.
#[derive(ToSchema)]
pub struct Client {
    pub external_id: String,
    pub first_name: String,
    pub preferred_name: Option<String>,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    /// `email` or `sms`.
    pub preferred_channel: String,
    pub language: String,
    pub timezone: Option<String>,
    pub coach_email: String,
    pub consent_email: bool,
    pub consent_sms: bool,
    pub discreet: bool,
    /// `active`, `paused`, `hold` or `discharged`.
    pub status: String,
    /// Why, when a reply or a coach said: `reported_deceased` (on hold: a
    /// reply said the client died; a coach confirms or undoes it) or
    /// `deceased` (discharged: a coach confirmed it).
    pub status_reason: Option<String>,
    pub last_engaged_at: Option<DateTime<Utc>>,
    pub opted_out_email_at: Option<DateTime<Utc>>,
    pub opted_out_sms_at: Option<DateTime<Utc>>,
    /// `ok`, or `wrong_number` once a reply said the phone is a stranger's.
    pub phone_status: String,
    pub phone_wrong_at: Option<DateTime<Utc>>,
    /// `ok`, `bounced` or `wrong_person`.
    pub email_status: String,
    pub email_bad_at: Option<DateTime<Utc>>,
}

/// An engagement event, as a row of `events.csv`.
#[derive(ToSchema)]
#[schema(example = json!({"external_id": "c-1", "kind": "check_in", "occurred_at": "2026-01-05T14:30:00Z", "note": "came to group"}))]
pub struct EventBody {
    #[schema(min_length = 1, max_length = 100)]
    pub external_id: String,
    #[schema(
        pattern = "^(check_in|session_attended|session_missed|dose_missed|discharged|message_reply|coach_contact)$"
    )]
    pub kind: String,
    /// RFC 3339, or a date and time (or a date) in the agency's time zone;
    /// not in the future.
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}")]
    pub occurred_at: String,
    pub note: Option<String>,
}

/// What recording an event did.
#[derive(ToSchema)]
pub struct EventRecorded {
    /// False when the same event was recorded before.
    pub recorded: bool,
    /// The client was in a quiet spell, and this ended it.
    pub re_engaged: bool,
}
