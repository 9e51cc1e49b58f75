//! The JSON API (`/api/v1`) for an agency's own systems. A bearer token from
//! `reengage tokens create` acts as its coach: a coach sees and acts on their
//! own clients only (anything else is 404, as for an id that does not exist),
//! an admin on all. Errors are `{"error": code, "detail": text}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::context::AppContext;
use crate::domain::client::Client;
use crate::domain::eligibility::Refusal;
use crate::domain::{Channel, MessageStatus};
use crate::pipeline;
use crate::pipeline::casework::{self, CaseError};
use crate::pipeline::conversation::AnswerError;
use crate::pipeline::intake::{self, ClientRecord, EventRecord};
use crate::pipeline::replies;
use crate::pipeline::review::{self, ActionError, EditError};
use crate::store::clients;
use crate::store::coaches::{self, CoachRow};
use crate::store::messages::{self, MessageView};
use crate::store::{Scope, conversation, from_opt_ts, inbound, send_log, tokens};
use crate::web::openapi;

pub fn routes() -> OpenApiRouter<AppContext> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(get_client, put_client))
        .routes(routes!(post_event))
        .routes(routes!(list_drafts))
        .routes(routes!(get_draft, patch_draft))
        .routes(routes!(approve))
        .routes(routes!(reject))
        .routes(routes!(snooze))
        .routes(routes!(list_sends))
        .routes(routes!(list_replies))
        .routes(routes!(reply_action))
        .routes(routes!(confirm_phone))
        .routes(routes!(reported_death))
        .routes(routes!(get_conversation))
        .routes(routes!(post_message))
        .routes(routes!(get_outcomes))
        .routes(routes!(document))
}

/// The API's OpenAPI 3.1 document, made from the same list as the router,
/// with its paths relative to the server `/api/v1`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = routes().into_openapi();
    doc.servers = Some(vec![utoipa::openapi::Server::new("/api/v1")]);
    doc
}

/// The document, made once.
static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    serde_json::to_string_pretty(&openapi()).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document cannot be written");
        String::from("{}")
    })
});

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}

/// An API error. The cause of an internal error is logged, never returned.
#[derive(Debug)]
pub enum ApiError {
    BadRequest {
        field: Option<String>,
        detail: String,
    },
    Unauthorized,
    NotFound,
    Conflict(String),
    /// The body is over `http.body_limit_bytes`.
    TooLarge(String),
    /// 409 with its own error code (`opted_out`, `needs_confirmation`…), and
    /// what else the caller needs to decide (the lint's findings).
    Refused {
        code: &'static str,
        detail: String,
        extra: Option<Box<(&'static str, Value)>>,
    },
    Internal(anyhow::Error),
}

impl ApiError {
    /// A record's reasons, as a CSV import gives them: each starts with its
    /// field's name, and the first names the field.
    fn from_reasons(reasons: Vec<String>) -> Self {
        ApiError::BadRequest {
            field: reasons
                .first()
                .and_then(|r| r.split([' ', ':']).next())
                .map(str::to_owned),
            detail: reasons.join("; "),
        }
    }
}

impl From<intake::RecordError> for ApiError {
    fn from(e: intake::RecordError) -> Self {
        match e {
            intake::RecordError::NotFound => ApiError::NotFound,
            intake::RecordError::Invalid(reasons) => ApiError::from_reasons(reasons),
            intake::RecordError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

/// A client the caller may not see is one that is not there: 404 either way.
/// (The API's client routes ask nothing only an admin may do.)
impl From<CaseError> for ApiError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Unexpected(e) => ApiError::Internal(e),
            e @ (CaseError::ReportedDeceased | CaseError::NoDeathReported) => {
                ApiError::Conflict(e.to_string())
            }
            _ => ApiError::NotFound,
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::NotFound(_)
            | ActionError::NotYours { .. }
            | ActionError::UnknownCoach(_) => ApiError::NotFound,
            ActionError::NotPending { .. } | ActionError::NotInDoubt { .. } => {
                ApiError::Conflict(e.to_string())
            }
            ActionError::Unexpected(e) => ApiError::Internal(e),
            ActionError::NeedsConfirmation { .. } => ApiError::BadRequest {
                field: Some("confirm".into()),
                detail: format!("{e} (POST with ?confirm=true)"),
            },
        }
    }
}

impl From<EditError> for ApiError {
    fn from(e: EditError) -> Self {
        match e {
            EditError::Action(a) => a.into(),
            EditError::Invalid { field, problem } => ApiError::BadRequest {
                field: Some(field.to_owned()),
                detail: format!("{field}: {problem}"),
            },
        }
    }
}

impl From<AnswerError> for ApiError {
    fn from(e: AnswerError) -> Self {
        match e {
            AnswerError::NotFound => ApiError::NotFound,
            AnswerError::Refused { code, detail } => ApiError::Refused {
                code,
                detail,
                extra: None,
            },
            AnswerError::Invalid { field, problem } => ApiError::BadRequest {
                field: Some(field.to_owned()),
                detail: format!("{field}: {problem}"),
            },
            AnswerError::NeedsConfirmation { errors, findings } => ApiError::Refused {
                code: "needs_confirmation",
                detail: format!(
                    "the lint found {errors} error(s): read the findings, then send again with \"confirm\": true"
                ),
                extra: Some(Box::new(("findings", json!(findings)))),
            },
            AnswerError::Unexpected(e) => ApiError::Internal(e),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge(e.body_text());
        }
        ApiError::BadRequest {
            field: None,
            detail: e.body_text(),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::BadRequest {
            field: None,
            detail: e.body_text(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail, field) = match self {
            ApiError::BadRequest { field, detail } => {
                (StatusCode::BAD_REQUEST, "bad_request", detail, field)
            }
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "send `Authorization: Bearer TOKEN` with a token from `reengage tokens create`"
                    .to_owned(),
                None,
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource".to_owned(),
                None,
            ),
            ApiError::Conflict(detail) => (StatusCode::CONFLICT, "conflict", detail, None),
            ApiError::TooLarge(detail) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                detail,
                None,
            ),
            ApiError::Refused {
                code,
                detail,
                extra,
            } => {
                let mut body = json!({ "error": code, "detail": detail });
                if let Some(extra) = extra {
                    let (key, value) = *extra;
                    body[key] = value;
                }
                return (StatusCode::CONFLICT, Json(body)).into_response();
            }
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong; it has been logged".to_owned(),
                    None,
                )
            }
        };
        let mut body = json!({ "error": code, "detail": detail });
        if let Some(field) = field {
            body["field"] = json!(field);
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The coach a request acts as, from its bearer token.
pub struct ApiCoach(pub CoachRow);

impl FromRequestParts<AppContext> for ApiCoach {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let mut conn = ctx.store.conn().await?;
        tokens::coach_for(&mut conn, token, ctx.clock.now())
            .await?
            .map(ApiCoach)
            .ok_or(ApiError::Unauthorized)
    }
}

/// Whose clients the caller acts on now.
async fn scope(ctx: &AppContext, coach: &CoachRow) -> Result<Scope, ApiError> {
    let mut conn = ctx.store.conn().await?;
    Ok(coaches::scope_for(&mut conn, coach, ctx.clock.now()).await?)
}

/// A client as the API shows it: the CSV's fields, plus what reengage knows.
/// `phone_status` is `ok`, or `wrong_number` once a reply said the phone is a
/// stranger's (until a coach confirms it or the number changes).
async fn client_json(ctx: &AppContext, client: Client) -> anyhow::Result<Value> {
    let phone_status = if client.phone_is_wrong() {
        Refusal::WrongNumber.as_ref()
    } else {
        "ok"
    };
    let mut conn = ctx.store.conn().await?;
    let coach_email = coaches::by_id(&mut conn, client.coach_id)
        .await?
        .map(|c| c.email)
        .unwrap_or_default();
    Ok(json!({
        "external_id": client.external_id,
        "first_name": client.first_name,
        "preferred_name": client.preferred_name,
        "email": client.email,
        "phone": client.phone,
        "preferred_channel": client.preferred_channel.to_string(),
        "language": client.language,
        "timezone": client.timezone,
        "coach_email": coach_email,
        "consent_email": client.consent_email,
        "consent_sms": client.consent_sms,
        "discreet": client.discreet,
        "status": client.status.to_string(),
        "status_reason": client.status_reason.map(|r| r.to_string()),
        "last_engaged_at": from_opt_ts(client.last_engaged_at),
        "opted_out_email_at": from_opt_ts(client.opted_out_email_at),
        "opted_out_sms_at": from_opt_ts(client.opted_out_sms_at),
        "phone_status": phone_status,
        "phone_wrong_at": from_opt_ts(client.phone_wrong_at),
        "email_status": client.email_problem.map_or("ok".to_owned(), |(p, _)| p.to_string()),
        "email_bad_at": from_opt_ts(client.email_problem.map(|(_, at)| at)),
    }))
}

#[utoipa::path(get, path = "/clients/{external_id}", tag = "clients",
    params(("external_id" = String, Path, description = "The agency's id for the client", example = "c-1")),
    responses((status = 200, description = "The client", body = openapi::Client), openapi::Failures))]
async fn get_client(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(external_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let client = casework::visible_client(&ctx, &coach, &external_id).await?;
    Ok(Json(client_json(&ctx, client).await?))
}

/// A yes/no field: JSON `true`/`false`, or the CSV's words (yes, no, true, false).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    fn into_text(self) -> String {
        match self {
            Flag::Bool(b) => b.to_string(),
            Flag::Text(t) => t,
        }
    }
}

/// A client upsert: the CSV's columns as JSON fields. Left out: the
/// CSV's default (for `coach_email`, the caller).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"first_name": "Grace", "phone": "(201) 555-0142", "consent_sms": true, "consent_email": "yes", "language": "en"}))]
struct ClientBody {
    /// Required for a new client.
    #[schema(max_length = 100)]
    first_name: Option<String>,
    #[schema(max_length = 100)]
    preferred_name: Option<String>,
    /// Required when the preferred channel is email.
    #[schema(max_length = 254)]
    email: Option<String>,
    /// Required when the preferred channel is SMS; any common way of writing
    /// a number, read in `defaults.phone_region`.
    #[schema(max_length = 40)]
    phone: Option<String>,
    /// `email` or `sms`; default: SMS when there is a phone, else email.
    #[schema(pattern = "^(email|sms)?$")]
    preferred_channel: Option<String>,
    /// A language the templates have; default `defaults.language`.
    #[schema(max_length = 64)]
    language: Option<String>,
    /// An IANA time zone; default `defaults.timezone`.
    #[schema(max_length = 64)]
    timezone: Option<String>,
    /// Default: the caller. Only an admin may name another coach.
    #[schema(max_length = 254)]
    coach_email: Option<String>,
    consent_email: Option<Flag>,
    consent_sms: Option<Flag>,
    discreet: Option<Flag>,
    /// `active`, `paused`, `hold` or `discharged`.
    #[schema(pattern = "^(active|paused|hold|discharged)?$")]
    status: Option<String>,
}

/// Adds or updates a client, checked exactly as a CSV row is. A coach may only
/// keep a client for themselves; giving a client to another coach is for admins.
#[utoipa::path(put, path = "/clients/{external_id}", tag = "clients",
    params(("external_id" = String, Path, description = "The agency's id for the client", example = "c-1")),
    request_body = ClientBody,
    responses(
        (status = 200, description = "Updated", body = openapi::Client),
        (status = 201, description = "Added", body = openapi::Client),
        openapi::Failures))]
async fn put_client(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(external_id): Path<String>,
    body: Result<Json<ClientBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body?;
    let record = ClientRecord {
        external_id: Some(external_id),
        first_name: body.first_name,
        preferred_name: body.preferred_name,
        email: body.email,
        phone: body.phone,
        preferred_channel: body.preferred_channel,
        language: body.language,
        timezone: body.timezone,
        coach_email: body.coach_email,
        consent_email: body.consent_email.map(Flag::into_text),
        consent_sms: body.consent_sms.map(Flag::into_text),
        discreet: body.discreet.map(Flag::into_text),
        status: body.status,
    };
    let (client, created) = intake::put_client(&ctx, &coach, record, ctx.clock.now()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(client_json(&ctx, client).await?)))
}

/// Records an engagement event, with the same effect as a CSV row: an
/// engagement closes the open episode and cancels unsent messages.
#[utoipa::path(post, path = "/events", tag = "clients",
    request_body = openapi::EventBody,
    responses(
        (status = 200, description = "Known already: nothing changed", body = openapi::EventRecorded),
        (status = 201, description = "Recorded", body = openapi::EventRecorded),
        openapi::Failures))]
async fn post_event(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    body: Result<Json<EventRecord>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Json(record) = body?;
    let outcome = intake::record_event(&ctx, &coach, &record, ctx.clock.now()).await?;
    let status = if outcome.new == 0 {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(json!({
            "recorded": outcome.new > 0,
            "re_engaged": outcome.back > 0,
        })),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DraftsQuery {
    /// Only messages in this status (`pending`, `approved`, `sent`, …).
    #[param(
        pattern = "^(pending|approved|sending|in_doubt|sent|delivered|undelivered|failed|rejected|expired|cancelled)?$"
    )]
    status: Option<String>,
    /// The `next_after` of the page before.
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SendsQuery {
    /// The `next_after` of the page before.
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// A keyset page's bounds, checked: `after` (an id, 0 for the first page)
/// and the page's size (1 to 200, default 50).
fn paging(after: i64, limit: Option<i64>) -> Result<i64, ApiError> {
    if after < 0 {
        return Err(ApiError::BadRequest {
            field: Some("after".into()),
            detail: "after: must be 0 or more (a next_after this API gave out)".into(),
        });
    }
    match limit {
        None => Ok(50),
        Some(n @ 1..=200) => Ok(n),
        Some(_) => Err(ApiError::BadRequest {
            field: Some("limit".into()),
            detail: "limit: must be between 1 and 200".into(),
        }),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct Page<T> {
    items: Vec<T>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<i64>,
}

#[utoipa::path(get, path = "/drafts", tag = "drafts",
    params(DraftsQuery),
    responses((status = 200, description = "Messages, oldest first", body = Page<MessageView>), openapi::Failures))]
async fn list_drafts(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    query: Result<Query<DraftsQuery>, QueryRejection>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let Query(query) = query?;
    let limit = paging(query.after, query.limit)?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<MessageStatus>()
                .map_err(|_| ApiError::BadRequest {
                    field: Some("status".into()),
                    detail: format!("status: `{s}` is not a message status"),
                })?,
        ),
    };
    let scope = scope(&ctx, &coach).await?;
    let mut conn = ctx.store.conn().await?;
    let items = messages::page(&mut conn, status, &scope, query.after, limit).await?;
    let next_after = crate::web::next_after(&items, limit, |m| m.id);
    Ok(Json(Page { items, next_after }))
}

#[utoipa::path(get, path = "/drafts/{id}", tag = "drafts",
    params(("id" = i64, Path, description = "The message's id", example = 1)),
    responses((status = 200, description = "The message", body = MessageView), openapi::Failures))]
async fn get_draft(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(id): Path<i64>,
) -> Result<Json<MessageView>, ApiError> {
    Ok(Json(review::read(&ctx, &coach, id).await?))
}

/// New words for a pending draft.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Hi Rosa, I've been thinking of you. How have you been?"}))]
struct EditBody {
    /// Email only.
    #[schema(max_length = 200)]
    subject: Option<String>,
    /// At most 1,600 characters for an SMS, 20,000 for an email.
    #[schema(pattern = "\\S", max_length = 20000)]
    body: String,
}

#[utoipa::path(patch, path = "/drafts/{id}", tag = "drafts",
    params(("id" = i64, Path, description = "The message's id", example = 1)),
    request_body = EditBody,
    responses((status = 200, description = "The edited draft", body = MessageView), openapi::Failures))]
async fn patch_draft(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(id): Path<i64>,
    body: Result<Json<EditBody>, JsonRejection>,
) -> Result<Json<MessageView>, ApiError> {
    let Json(edit) = body?;
    let now = ctx.clock.now();
    review::edit(&ctx, &coach, id, edit.subject.as_deref(), &edit.body, now).await?;
    Ok(Json(review::read(&ctx, &coach, id).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConfirmQuery {
    /// Approve past the lint's error findings.
    #[serde(default)]
    confirm: bool,
}

/// Approves; a draft with error findings needs `?confirm=true`.
#[utoipa::path(post, path = "/drafts/{id}/approve", tag = "drafts",
    params(("id" = i64, Path, description = "The message's id", example = 1), ConfirmQuery),
    responses((status = 200, description = "Approved: it goes when due", body = MessageView), openapi::Failures))]
async fn approve(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(id): Path<i64>,
    query: Result<Query<ConfirmQuery>, QueryRejection>,
) -> Result<Json<MessageView>, ApiError> {
    let Query(query) = query?;
    review::approve(&ctx, &coach, id, query.confirm, ctx.clock.now()).await?;
    Ok(Json(review::read(&ctx, &coach, id).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reason": "I'll call her myself this week"}))]
struct RejectBody {
    reason: Option<String>,
}

#[utoipa::path(post, path = "/drafts/{id}/reject", tag = "drafts",
    params(("id" = i64, Path, description = "The message's id", example = 1)),
    request_body(content = RejectBody, description = "Optional: why"),
    responses((status = 200, description = "Rejected", body = MessageView), openapi::Failures))]
async fn reject(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(id): Path<i64>,
    body: Result<Option<Json<RejectBody>>, JsonRejection>,
) -> Result<Json<MessageView>, ApiError> {
    let reason = body?.and_then(|Json(b)| b.reason);
    review::reject(&ctx, &coach, id, reason.as_deref(), ctx.clock.now()).await?;
    Ok(Json(review::read(&ctx, &coach, id).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"until": "2030-01-15T09:00:00Z"}))]
struct SnoozeBody {
    /// Back in the queue at this time (RFC 3339, in the future).
    until: DateTime<Utc>,
}

#[utoipa::path(post, path = "/drafts/{id}/snooze", tag = "drafts",
    params(("id" = i64, Path, description = "The message's id", example = 1)),
    request_body = SnoozeBody,
    responses((status = 200, description = "Snoozed: back in the queue then", body = MessageView), openapi::Failures))]
async fn snooze(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(id): Path<i64>,
    body: Result<Json<SnoozeBody>, JsonRejection>,
) -> Result<Json<MessageView>, ApiError> {
    let Json(snooze) = body?;
    review::snooze(&ctx, &coach, id, snooze.until, ctx.clock.now()).await?;
    Ok(Json(review::read(&ctx, &coach, id).await?))
}

#[utoipa::path(get, path = "/sends", tag = "drafts",
    params(SendsQuery),
    responses((status = 200, description = "The send log, one row per attempt", body = Page<send_log::SendLogEntry>), openapi::Failures))]
async fn list_sends(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    query: Result<Query<SendsQuery>, QueryRejection>,
) -> Result<Json<Page<send_log::SendLogEntry>>, ApiError> {
    let Query(query) = query?;
    let limit = paging(query.after, query.limit)?;
    let scope = scope(&ctx, &coach).await?;
    let mut conn = ctx.store.conn().await?;
    let items = send_log::list(
        &mut conn,
        &send_log::Filter::scope(scope),
        query.after,
        limit,
    )
    .await?;
    let next_after = crate::web::next_after(&items, limit, |e| e.id);
    Ok(Json(Page { items, next_after }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct RepliesQuery {
    /// Only those waiting for a person (or only those not).
    needs_reply: Option<bool>,
    /// `crisis`, `deceased`, `opt_out`, `wrong_number`, `help`, `opt_in` or
    /// `reply`.
    #[param(pattern = "^(crisis|deceased|opt_out|wrong_number|help|opt_in|reply)?$")]
    classification: Option<String>,
    /// The `next_after` of the page before.
    #[serde(default)]
    #[param(minimum = 0)]
    after: i64,
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

/// Replies from the caller's clients (and those they cover for; an admin's
/// include unmatched senders), oldest first, in keyset pages.
#[utoipa::path(get, path = "/replies", tag = "replies",
    params(RepliesQuery),
    responses((status = 200, description = "Replies, oldest first", body = Page<inbound::ReplyView>), openapi::Failures))]
async fn list_replies(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    query: Result<Query<RepliesQuery>, QueryRejection>,
) -> Result<Json<Page<inbound::ReplyView>>, ApiError> {
    let Query(query) = query?;
    let limit = paging(query.after, query.limit)?;
    let classification = match query.classification.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<replies::Class>()
                .map_err(|_| ApiError::BadRequest {
                    field: Some("classification".into()),
                    detail: format!(
                        "classification: `{c}` is not one of crisis, deceased, opt_out, wrong_number, \
                         help, opt_in, reply"
                    ),
                })?
                .to_string(),
        ),
    };
    let filter = inbound::Filter {
        needs_reply: query.needs_reply,
        classification,
    };
    let scope = scope(&ctx, &coach).await?;
    let mut conn = ctx.store.conn().await?;
    let items = inbound::page(&mut conn, &scope, &filter, query.after, limit).await?;
    let next_after = crate::web::next_after(&items, limit, |r| r.id);
    Ok(Json(Page { items, next_after }))
}

impl From<replies::ReplyError> for ApiError {
    fn from(e: replies::ReplyError) -> Self {
        match e {
            replies::ReplyError::NotFound => ApiError::NotFound,
            replies::ReplyError::Unexpected(e) => ApiError::Internal(e),
            other => ApiError::Conflict(other.to_string()),
        }
    }
}

/// `handled`: the reply was dealt with; `acknowledge`: "I'm on it", so a
/// crisis alert stops escalating (who said so is recorded).
#[utoipa::path(post, path = "/replies/{id}/{action}", tag = "replies",
    params(
        ("id" = i64, Path, description = "The reply's id", example = 1),
        ("action" = String, Path, description = "`handled` or `acknowledge` (\"I'm on it\", for a crisis)", example = "handled"),
    ),
    responses((status = 200, description = "The reply", body = inbound::ReplyView), openapi::Failures))]
async fn reply_action(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Json<inbound::ReplyView>, ApiError> {
    let action = action.parse().map_err(|_| ApiError::NotFound)?;
    let now = ctx.clock.now();
    Ok(Json(replies::act(&ctx, &coach, id, action, now).await?))
}

/// A coach confirms that the phone a reply called a wrong number is the
/// client's: SMS may go to it again.
#[utoipa::path(post, path = "/clients/{external_id}/confirm-phone", tag = "clients",
    params(("external_id" = String, Path, description = "The agency's id for the client", example = "c-1")),
    responses((status = 200, description = "The client, whose phone may get SMS again", body = openapi::Client), openapi::Failures))]
async fn confirm_phone(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(external_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let action = casework::CaseAction::ConfirmPhone;
    act_and_show(&ctx, &coach, &external_id, &action).await
}

/// A coach's decision on a reply that said the client died.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"decision": "undo"}))]
struct DeathDecision {
    /// `confirm` (it is so: the client is discharged and nothing goes to them
    /// again) or `undo` (it is not: the client is active and outreach resumes).
    decision: String,
}

/// A coach confirms or undoes what a reply said: that the client has died.
/// Until then the client is on hold with `status_reason`
/// `reported_deceased`, and nothing goes to them on any channel.
#[utoipa::path(post, path = "/clients/{external_id}/reported-death", tag = "clients",
    params(("external_id" = String, Path, description = "The agency's id for the client", example = "c-1")),
    request_body = DeathDecision,
    responses((status = 200, description = "The client after the decision", body = openapi::Client), openapi::Failures))]
async fn reported_death(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(external_id): Path<String>,
    body: Result<Json<DeathDecision>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body?;
    let action = match body.decision.as_str() {
        "confirm" => casework::CaseAction::ConfirmDeceased,
        "undo" => casework::CaseAction::UndoDeceased,
        other => {
            return Err(ApiError::BadRequest {
                field: Some("decision".into()),
                detail: format!("decision: `{other}` is not `confirm` or `undo`"),
            });
        }
    };
    act_and_show(&ctx, &coach, &external_id, &action).await
}

/// Applies a coach's casework action and shows the client after it.
async fn act_and_show(
    ctx: &AppContext,
    coach: &CoachRow,
    external_id: &str,
    action: &casework::CaseAction,
) -> Result<Json<Value>, ApiError> {
    casework::act(ctx, coach, external_id, action, ctx.clock.now()).await?;
    let mut conn = ctx.store.conn().await?;
    let client = clients::by_external_id(&mut conn, external_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    drop(conn);
    Ok(Json(client_json(ctx, client).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConversationQuery {
    /// The `next_after` of the page before.
    after: Option<String>,
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ConversationPage {
    items: Vec<conversation::Item>,
    /// Pass as `after` for the next page; absent on the last page.
    next_after: Option<String>,
}

/// The client's conversation, oldest first, in keyset pages.
#[utoipa::path(get, path = "/clients/{external_id}/conversation", tag = "replies",
    params(("external_id" = String, Path, description = "The agency's id for the client", example = "c-1"), ConversationQuery),
    responses((status = 200, description = "The conversation, oldest first", body = ConversationPage), openapi::Failures))]
async fn get_conversation(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(external_id): Path<String>,
    query: Result<Query<ConversationQuery>, QueryRejection>,
) -> Result<Json<ConversationPage>, ApiError> {
    let Query(query) = query?;
    let limit = paging(0, query.limit)?;
    let after = match query.after.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => {
            Some(
                conversation::Cursor::parse(text).ok_or_else(|| ApiError::BadRequest {
                    field: Some("after".into()),
                    detail: format!("after: `{text}` is not a cursor this API gave out"),
                })?,
            )
        }
    };
    let (_, items) =
        pipeline::conversation::thread(&ctx, &coach, &external_id, after, limit).await?;
    let next_after = (items.len() as i64 == limit)
        .then(|| items.last().map(|i| conversation::Cursor::of(i).to_text()))
        .flatten();
    Ok(Json(ConversationPage { items, next_after }))
}

/// A coach's own message to a client.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Thanks for writing back. I'm free Thursday at 3 if you'd like to talk.", "channel": "sms"}))]
struct MessageBody {
    /// `email` or `sms`; default: where the client last wrote from, else
    /// their preferred channel.
    #[schema(pattern = "^(email|sms)?$")]
    channel: Option<String>,
    /// Email only; default "Re:" the client's subject.
    #[schema(max_length = 200)]
    subject: Option<String>,
    /// At most 1,600 characters for an SMS, 20,000 for an email.
    #[schema(pattern = "\\S", max_length = 20000)]
    body: String,
    /// Send past the lint's error findings.
    #[serde(default)]
    confirm: bool,
}

/// A coach's own message to the client: 201 and the message JSON.
#[utoipa::path(post, path = "/clients/{external_id}/messages", tag = "replies",
    params(("external_id" = String, Path, description = "The agency's id for the client", example = "c-1")),
    request_body = MessageBody,
    responses((status = 201, description = "Approved by its author; it goes at once, or after the client's quiet hours", body = MessageView), openapi::Failures))]
async fn post_message(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    Path(external_id): Path<String>,
    body: Result<Json<MessageBody>, JsonRejection>,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let Json(body) = body?;
    let channel = match body.channel.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(c) => Some(c.parse::<Channel>().map_err(|_| ApiError::BadRequest {
            field: Some("channel".into()),
            detail: format!("channel: `{c}` is not email or sms"),
        })?),
    };
    let answer = pipeline::conversation::Answer {
        channel,
        subject: body.subject.as_deref(),
        body: &body.body,
        confirm: body.confirm,
        hold_for_warnings: false,
    };
    let message =
        pipeline::conversation::answer(&ctx, &coach, &external_id, &answer, ctx.clock.now())
            .await?;
    Ok((StatusCode::CREATED, Json(message)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OutcomesQuery {
    /// `step` (default), `channel`, `template`, `variant`, `edited`,
    /// `language`, `coach` or `month`.
    #[param(pattern = "^(step|channel|template|variant|edited|language|coach|month)?$")]
    by: Option<String>,
    /// Episodes first sent from this day (YYYY-MM-DD) or time (RFC 3339).
    #[param(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2}(T.+)?)?$")]
    since: Option<String>,
    /// … until the end of this day, or this time; default now.
    #[param(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2}(T.+)?)?$")]
    until: Option<String>,
}

/// The outcome report over the caller's caseload (an admin's: everything).
#[utoipa::path(get, path = "/reports/outcomes", tag = "reports",
    params(OutcomesQuery),
    responses((status = 200, description = "The outcome report over the caller's caseload", body = pipeline::reports::Report), openapi::Failures))]
async fn get_outcomes(
    State(ctx): State<AppContext>,
    ApiCoach(coach): ApiCoach,
    query: Result<Query<OutcomesQuery>, QueryRejection>,
) -> Result<Json<pipeline::reports::Report>, ApiError> {
    let Query(query) = query?;
    let span = pipeline::reports::Span::read(
        query.by.as_deref(),
        query.since.as_deref(),
        query.until.as_deref(),
        ctx.clock.now(),
    )
    .map_err(|(field, problem)| ApiError::BadRequest {
        field: Some(field.to_owned()),
        detail: format!("{field}: {problem}"),
    })?;
    let scope = scope(&ctx, &coach).await?;
    Ok(Json(
        pipeline::reports::outcomes(&ctx, &scope, span.by, span.since, span.until).await?,
    ))
}
