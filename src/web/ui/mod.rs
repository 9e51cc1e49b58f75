//! The coach's web UI: server-rendered HTML that works without JavaScript.
//! Every form posts with a CSRF token and redirects after success; a coach sees
//! and acts on their own clients only (anything else is 404, as for an id that
//! does not exist).

mod charts;
mod pages;
mod session;

/// A page in the app's frame with no one signed in, for routes outside the UI.
pub fn plain_page(title: &str, body: maud::Markup) -> maud::Markup {
    pages::layout(title, None, body)
}

/// A page that tells the person what happened, with its status.
pub fn notice_page(status: StatusCode, title: &str, text: &str) -> Response {
    pages::message(status, title, text)
}

/// The page for an error whose cause has been logged.
pub fn error_page(e: anyhow::Error) -> Response {
    pages::internal_error(e)
}

/// An error a page could not get past: the cause is logged and the coach sees
/// the plain "something went wrong" page. Handlers return it with `?`.
pub struct UiError(anyhow::Error);

impl From<anyhow::Error> for UiError {
    fn from(e: anyhow::Error) -> Self {
        UiError(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        pages::internal_error(self.0)
    }
}

/// Why a form was not done: what to tell the person, or a failure to log.
#[derive(Debug, thiserror::Error)]
enum FormError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for FormError {
    fn from(e: sqlx::Error) -> Self {
        FormError::Unexpected(e.into())
    }
}

fn refused<T>(problem: impl Into<String>) -> Result<T, FormError> {
    Err(FormError::Refused(problem.into()))
}

use std::sync::LazyLock;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use secrecy::SecretString;
use serde::Deserialize;

use crate::app::auth;
use crate::app::context::AppContext;
use crate::domain::local_time::local_to_utc;
use crate::domain::outcomes::By;
use crate::domain::{Channel, ClientStatus, MessageStatus};
use crate::pipeline;
use crate::pipeline::casework::{self, CaseAction, CaseError};
use crate::pipeline::coaches::{Change, CoachError};
use crate::pipeline::conversation::{self, Answer, AnswerError};
use crate::pipeline::replies;
use crate::pipeline::reports;
use crate::pipeline::review::{self, ActionError, EditError, InDoubtDecision};
use crate::pipeline::tokens::TokenError;
use crate::store::audit::{self, Actor};
use crate::store::conversation as conversation_store;
use crate::store::inbound::Listing;
use crate::store::{
    clients, coaches, episodes, events, inbound, messages, send_log, sessions, tokens,
};
use pages::ReplyBox;
use session::{
    CheckedForm, LOGIN_CSRF_COOKIE, SESSION_COOKIE, UiCoach, WithCsrf, cookie, cookie_value,
    same_token,
};

const SESSION_HOURS: i64 = 12;
const QUEUE_PAGE: i64 = 50;
/// The most of a conversation the client page shows.
const THREAD_PAGE: i64 = 500;

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/style.css", get(stylesheet))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/", get(queue))
        .route("/drafts/approve", post(approve_many))
        .route("/drafts/{id}", get(draft_page))
        .route("/drafts/{id}/edit", post(edit))
        .route("/drafts/{id}/approve", post(approve))
        .route("/drafts/{id}/reject", post(reject))
        .route("/drafts/{id}/snooze", post(snooze))
        .route("/sends", get(sends))
        .route("/messages/{id}/{decision}", post(decide))
        .route("/replies", get(replies))
        .route("/replies/{id}/{action}", post(reply_action))
        .route("/account", get(account_page))
        .route("/account/{change}", post(account_change))
        .route("/admin", get(admin_page))
        .route("/admin/coaches", post(admin_coach))
        .route("/admin/tokens/{id}/revoke", post(admin_token_revoke))
        .route("/admin/templates", get(template_preview))
        .route("/clients", get(clients))
        .route("/reports", get(reports_page))
        .route("/reports.csv", get(reports_csv))
        .route("/clients/{external_id}", get(client_page))
        .route("/clients/{external_id}/action", post(client_action))
        .route("/clients/{external_id}/message", post(client_message))
}

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn forbidden() -> Response {
    pages::message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "Nothing was changed. Reload the page and try again.",
    )
}

fn not_found() -> Response {
    pages::message(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
}

fn action_error(e: ActionError) -> Response {
    match e {
        ActionError::NeedsConfirmation { .. } => pages::message(
            StatusCode::BAD_REQUEST,
            "Please look at the findings first",
            "This draft has error findings. Read them on the draft, and tick \"Approve anyway\" if it should go as it is.",
        ),
        ActionError::NotPending { .. } | ActionError::NotInDoubt { .. } => pages::message(
            StatusCode::CONFLICT,
            "Already handled",
            "Someone has already acted on this draft, so nothing was changed.",
        ),
        ActionError::Unexpected(e) => pages::internal_error(e),
        _ => not_found(),
    }
}

/// Runs an action's result into a redirect on success, or the right page.
fn after<E: Into<EditError>>(result: Result<(), E>, to: String) -> Response {
    match result {
        Ok(()) => Redirect::to(&to).into_response(),
        Err(e) => match e.into() {
            EditError::Action(a) => action_error(a),
            EditError::Invalid { field, problem } => pages::message(
                StatusCode::BAD_REQUEST,
                "Please check the form",
                &format!("{field}: {problem}"),
            ),
        },
    }
}

/// The pages' one stylesheet. It holds no client data, so browsers may keep
/// it for a day.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        pages::STYLE,
    )
        .into_response()
}

async fn login_page(State(ctx): State<AppContext>) -> Response {
    let csrf = random_token();
    let set = cookie(&ctx, LOGIN_CSRF_COOKIE, csrf.clone(), 3600);
    ([(header::SET_COOKIE, set)], pages::login(&csrf, None)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

/// A hash to verify against when the email has no account, so that a wrong
/// email takes as long as a wrong password.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| auth::hash_password(&SecretString::from("no such account here")).ok());

const LOGIN_FAILED: &str = "That email and password did not match. After 5 failed tries, logins for an email pause for 15 minutes.";
const LOGIN_LOCKED: &str =
    "Too many failed tries for this email: logins for it pause for 15 minutes.";

async fn login(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let expected = cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, &expected) {
        return Ok(forbidden());
    }
    Ok(match try_login(&ctx, &form).await {
        Ok(token) => {
            let set = cookie(&ctx, SESSION_COOKIE, token, SESSION_HOURS * 3600);
            let clear = cookie(&ctx, LOGIN_CSRF_COOKIE, String::new(), 0);
            let mut response = Redirect::to("/").into_response();
            for value in [set, clear] {
                if let Ok(value) = value.parse() {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
        Err(FormError::Refused(problem)) => pages::page(
            StatusCode::UNAUTHORIZED,
            pages::login(&form.csrf, Some(&problem)),
        ),
        Err(FormError::Unexpected(e)) => return Err(e.into()),
    })
}

/// A new session's token, or what to tell the person. Every try is audited.
async fn try_login(ctx: &AppContext, form: &LoginForm) -> Result<String, FormError> {
    let now = ctx.clock.now();
    let email = form.email.trim();
    let mut conn = ctx.store.conn().await?;
    if sessions::locked(&mut conn, email, now).await? {
        return refused(LOGIN_LOCKED);
    }
    let coach = coaches::by_email(&mut conn, email)
        .await?
        .filter(|c| c.is_active());
    let hash = match &coach {
        Some(c) => sessions::password_hash(&mut conn, c.id).await?,
        None => None,
    };
    let password = SecretString::from(form.password.clone());
    // Argon2 takes tens of milliseconds of CPU: off the async workers, so
    // that a flood of logins never stalls them (and the probes).
    let known = hash.is_some();
    let against = hash.or_else(|| DUMMY_HASH.clone());
    drop(conn);
    let matched = match against {
        Some(hash) => auth::verify_password_async(password, hash).await?,
        None => false,
    };
    let ok = known && matched;
    let mut conn = ctx.store.conn().await?;
    let (actor, action) = match (&coach, ok) {
        (Some(c), true) => (Actor::coach(c), "login"),
        (Some(c), false) => (Actor::coach(c), "login_failed"),
        (None, _) => (Actor::System("unknown email"), "login_failed"),
    };
    audit::record(
        &mut conn,
        audit::Entry {
            actor,
            action,
            client_id: None,
            message_id: None,
            detail: None,
        },
        now,
    )
    .await?;
    match coach.filter(|_| ok) {
        Some(coach) => {
            sessions::record_success(&mut conn, email).await?;
            Ok(sessions::create(&mut conn, coach.id, now, Duration::hours(SESSION_HOURS)).await?)
        }
        None => {
            sessions::record_failure(&mut conn, email, now).await?;
            refused(if sessions::locked(&mut conn, email, now).await? {
                LOGIN_LOCKED
            } else {
                LOGIN_FAILED
            })
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(ctx): State<AppContext>,
    CheckedForm(ui, _): CheckedForm<CsrfForm>,
) -> Result<Response, UiError> {
    let now = ctx.clock.now();
    let mut conn = ctx.store.conn().await?;
    sessions::revoke(&mut conn, &ui.token, now).await?;
    audit::record(
        &mut conn,
        audit::Entry {
            actor: Actor::coach(&ui.coach),
            action: "logout",
            client_id: None,
            message_id: None,
            detail: None,
        },
        now,
    )
    .await?;
    Ok((
        [(
            header::SET_COOKIE,
            cookie(&ctx, SESSION_COOKIE, String::new(), 0),
        )],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Deserialize)]
struct QueueQuery {
    #[serde(default)]
    after: i64,
}

async fn queue(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<QueueQuery>,
) -> Result<Response, UiError> {
    let now = ctx.clock.now();
    let (drafts, replies, tasks) = async {
        let scope = ui.scope(&ctx).await?;
        let mut conn = ctx.store.conn().await?;
        let drafts = messages::queue(&mut conn, &scope, now, query.after, QUEUE_PAGE).await?;
        let replies = inbound::in_scope(&mut conn, &scope, Listing::Waiting, 20).await?;
        let tasks = episodes::outreach_tasks(&mut conn, &scope).await?;
        anyhow::Ok((drafts, replies, tasks))
    }
    .await?;
    let next = crate::web::next_after(&drafts, QUEUE_PAGE, |d| d.id);
    Ok(pages::page(
        StatusCode::OK,
        pages::queue(&ui.coach, &ui.csrf, &drafts, next, &replies, &tasks, now),
    ))
}

/// The client's recent events and messages.
async fn history(ctx: &AppContext, client_id: i64) -> anyhow::Result<maud::Markup> {
    let mut conn = ctx.store.conn().await?;
    let events = events::recent(&mut conn, client_id, 20).await?;
    let messages = messages::for_client(&mut conn, client_id, 20).await?;
    Ok(pages::timeline(&events, &messages))
}

async fn draft_page(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Path(id): Path<i64>,
) -> Result<Response, UiError> {
    let m = match review::read(&ctx, &ui.coach, id).await {
        Ok(m) => m,
        Err(ActionError::Unexpected(e)) => return Err(e.into()),
        Err(_) => return Ok(not_found()),
    };
    let history = history(&ctx, m.client_id).await?;
    Ok(pages::page(
        StatusCode::OK,
        pages::draft(&ui.coach, &ui.csrf, &m, history, ctx.clock.now()),
    ))
}

#[derive(Deserialize)]
struct ClientsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: i64,
}

async fn clients(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<ClientsQuery>,
) -> Result<Response, UiError> {
    let rows = async {
        let scope = ui.scope(&ctx).await?;
        let mut conn = ctx.store.conn().await?;
        let status = query.status.parse::<ClientStatus>().ok();
        clients::search(&mut conn, &scope, &query.q, status, query.after, QUEUE_PAGE).await
    }
    .await?;
    let next = crate::web::next_after(&rows, QUEUE_PAGE, |r| r.client.id);
    Ok(pages::page(
        StatusCode::OK,
        pages::clients(&ui.coach, &ui.csrf, &rows, &query.q, &query.status, next),
    ))
}

async fn client_page(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Path(external_id): Path<String>,
) -> Result<Response, UiError> {
    client_view(&ctx, &ui, &external_id, StatusCode::OK, ReplyBox::default()).await
}

/// The client page: their details, the conversation and a box to write in
/// (kept as written, with what was wrong, when a message comes back).
async fn client_view(
    ctx: &AppContext,
    ui: &UiCoach,
    external_id: &str,
    status: StatusCode,
    reply: ReplyBox<'_>,
) -> Result<Response, UiError> {
    let (client, items) =
        match conversation::thread(ctx, &ui.coach, external_id, None, THREAD_PAGE).await {
            Ok(found) => found,
            Err(AnswerError::Unexpected(e)) => return Err(e.into()),
            Err(_) => return Ok(not_found()),
        };
    let mut conn = ctx.store.conn().await?;
    let coach_email = coaches::by_id(&mut conn, client.coach_id)
        .await?
        .map(|c| c.email)
        .unwrap_or_default();
    drop(conn);
    let history = history(ctx, client.id).await?;
    // Write back on the channel the client last wrote on.
    let last_in = items
        .iter()
        .rev()
        .find(|i| i.direction == conversation_store::Direction::In)
        .map(|i| i.channel);
    let reply = ReplyBox {
        channel: reply.channel.or(last_in),
        ..reply
    };
    Ok(pages::page(
        status,
        pages::client(
            &ui.coach,
            &ui.csrf,
            pages::ClientPage {
                client: &client,
                coach_email: &coach_email,
                thread: &items,
                reply,
                window_minutes: ctx.settings.replies.conversation_window_minutes,
                history,
            },
        ),
    ))
}

#[derive(Deserialize)]
struct MessageForm {
    csrf: String,
    channel: Option<String>,
    subject: Option<String>,
    body: String,
    /// Ticked: send despite the lint's error findings.
    confirm: Option<String>,
}

/// A coach's own message from the client page.
async fn client_message(
    State(ctx): State<AppContext>,
    Path(external_id): Path<String>,
    CheckedForm(ui, form): CheckedForm<MessageForm>,
) -> Result<Response, UiError> {
    let channel = form.channel.as_deref().and_then(|c| c.parse().ok());
    let answer = Answer {
        channel,
        subject: form.subject.as_deref(),
        body: &form.body,
        confirm: form.confirm.is_some(),
        hold_for_warnings: true,
    };
    let problem =
        match conversation::answer(&ctx, &ui.coach, &external_id, &answer, ctx.clock.now()).await {
            Ok(_) => {
                let to = format!("{}#thread", pages::client_path(&external_id));
                return Ok(Redirect::to(&to).into_response());
            }
            Err(AnswerError::NotFound) => return Ok(not_found()),
            Err(AnswerError::Unexpected(e)) => return Err(e.into()),
            Err(problem) => problem,
        };
    let status = match &problem {
        AnswerError::Invalid { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::CONFLICT,
    };
    let (findings, needs_confirmation) = match &problem {
        AnswerError::NeedsConfirmation { findings, .. } => (findings.clone(), true),
        _ => (Vec::new(), false),
    };
    let reply = ReplyBox {
        channel,
        subject: form.subject.as_deref().unwrap_or_default(),
        body: &form.body,
        problem: Some(format!("Not sent: {problem}.")),
        findings: &findings,
        needs_confirmation,
    };
    client_view(&ctx, &ui, &external_id, status, reply).await
}

#[derive(Deserialize)]
struct ClientActionForm {
    csrf: String,
    action: String,
    to: Option<String>,
}

async fn client_action(
    State(ctx): State<AppContext>,
    Path(external_id): Path<String>,
    CheckedForm(ui, form): CheckedForm<ClientActionForm>,
) -> Response {
    let action = match form.action.as_str() {
        "reached" => CaseAction::ReachedPersonally,
        "pause" => CaseAction::SetStatus(ClientStatus::Paused),
        "hold" => CaseAction::SetStatus(ClientStatus::Hold),
        "resume" => CaseAction::SetStatus(ClientStatus::Active),
        "opt_out_sms" => CaseAction::OptOut(Channel::Sms),
        "opt_out_email" => CaseAction::OptOut(Channel::Email),
        "reassign" => CaseAction::Reassign(form.to.unwrap_or_default().trim().to_owned()),
        "dismiss_outreach" => CaseAction::DismissOutreach,
        "opt_in_sms" => CaseAction::OptIn(Channel::Sms),
        "opt_in_email" => CaseAction::OptIn(Channel::Email),
        "confirm_phone" => CaseAction::ConfirmPhone,
        _ => {
            return pages::message(
                StatusCode::BAD_REQUEST,
                "Please check the form",
                "action: unknown",
            );
        }
    };
    match casework::act(&ctx, &ui.coach, &external_id, &action, ctx.clock.now()).await {
        Ok(()) => Redirect::to(&pages::client_path(&external_id)).into_response(),
        Err(CaseError::NotFound) => not_found(),
        Err(CaseError::Unexpected(e)) => pages::internal_error(e),
        Err(e @ (CaseError::AdminOnly | CaseError::UnknownCoach(_))) => {
            pages::message(StatusCode::BAD_REQUEST, "Not done", &e.to_string())
        }
    }
}

#[derive(Deserialize)]
struct EditForm {
    csrf: String,
    subject: Option<String>,
    body: String,
}

async fn edit(
    State(ctx): State<AppContext>,
    Path(id): Path<i64>,
    CheckedForm(ui, form): CheckedForm<EditForm>,
) -> Response {
    let result = review::edit(
        &ctx,
        &ui.coach,
        id,
        form.subject.as_deref(),
        &form.body,
        ctx.clock.now(),
    )
    .await;
    after(result, format!("/drafts/{id}"))
}

#[derive(Deserialize)]
struct ApproveForm {
    csrf: String,
    /// Ticked: approve despite the lint's error findings.
    confirm: Option<String>,
}

async fn approve(
    State(ctx): State<AppContext>,
    Path(id): Path<i64>,
    CheckedForm(ui, form): CheckedForm<ApproveForm>,
) -> Response {
    let confirmed = form.confirm.is_some();
    after(
        review::approve(&ctx, &ui.coach, id, confirmed, ctx.clock.now()).await,
        "/".into(),
    )
}

/// Approves every selected draft; each is checked on its own.
async fn approve_many(
    State(ctx): State<AppContext>,
    CheckedForm(ui, fields): CheckedForm<Vec<(String, String)>>,
) -> Response {
    let now = ctx.clock.now();
    for id in fields
        .iter()
        .filter(|(k, _)| k == "ids")
        .filter_map(|(_, v)| v.parse::<i64>().ok())
    {
        match review::approve(&ctx, &ui.coach, id, false, now).await {
            Ok(()) => {}
            Err(e) => return action_error(e),
        }
    }
    Redirect::to("/").into_response()
}

#[derive(Deserialize)]
struct RejectForm {
    csrf: String,
    reason: Option<String>,
}

async fn reject(
    State(ctx): State<AppContext>,
    Path(id): Path<i64>,
    CheckedForm(ui, form): CheckedForm<RejectForm>,
) -> Response {
    let reason = form
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    after(
        review::reject(&ctx, &ui.coach, id, reason, ctx.clock.now()).await,
        "/".into(),
    )
}

#[derive(Deserialize)]
struct SnoozeForm {
    csrf: String,
    until: String,
}

async fn snooze(
    State(ctx): State<AppContext>,
    Path(id): Path<i64>,
    CheckedForm(ui, form): CheckedForm<SnoozeForm>,
) -> Response {
    let Ok(date) = NaiveDate::parse_from_str(form.until.trim(), "%Y-%m-%d") else {
        return pages::message(
            StatusCode::BAD_REQUEST,
            "Please check the form",
            "until: pick a date",
        );
    };
    // Midnight in the coach's own timezone opens the day they picked.
    let until = local_to_utc(
        ui.coach.tz(ctx.settings.defaults.timezone),
        date.and_time(chrono::NaiveTime::MIN),
    );
    after(
        review::snooze(&ctx, &ui.coach, id, until, ctx.clock.now()).await,
        "/".into(),
    )
}

#[derive(Deserialize)]
struct SendsQuery {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    since: String,
}

/// The send log, filtered by outcome, channel and date, with the messages in
/// doubt that wait for a coach's decision.
async fn sends(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<SendsQuery>,
) -> Result<Response, UiError> {
    let scope = ui.scope(&ctx).await?;
    let since = NaiveDate::parse_from_str(query.since.trim(), "%Y-%m-%d")
        .ok()
        .map(|d| {
            local_to_utc(
                ui.coach.tz(ctx.settings.defaults.timezone),
                d.and_time(chrono::NaiveTime::MIN),
            )
        });
    let filter = send_log::Filter {
        scope: scope.clone(),
        outcome: Some(query.outcome.trim().to_owned()).filter(|o| !o.is_empty()),
        channel: Some(query.channel.trim().to_owned()).filter(|c| !c.is_empty()),
        since,
    };
    let mut conn = ctx.store.conn().await?;
    let entries = send_log::list(&mut conn, &filter, 0, 500).await?;
    let in_doubt = messages::page(&mut conn, Some(MessageStatus::InDoubt), &scope, 0, 100).await?;
    Ok(pages::page(
        StatusCode::OK,
        pages::sends(
            &ui.coach,
            &ui.csrf,
            &entries,
            &in_doubt,
            &filter,
            &query.since,
        ),
    ))
}

/// A coach's decision about a message in doubt: `resend` or `resolve`.
async fn decide(
    State(ctx): State<AppContext>,
    Path((id, decision)): Path<(i64, String)>,
    CheckedForm(ui, _): CheckedForm<CsrfForm>,
) -> Response {
    let decision = match decision.as_str() {
        "resend" => InDoubtDecision::Resend,
        "resolve" => InDoubtDecision::Resolve,
        _ => return not_found(),
    };
    let result = review::decide_in_doubt(&ctx, &ui.coach, id, decision, ctx.clock.now()).await;
    after(result, "/sends".into())
}

async fn replies(State(ctx): State<AppContext>, ui: UiCoach) -> Result<Response, UiError> {
    let replies = async {
        let scope = ui.scope(&ctx).await?;
        let mut conn = ctx.store.conn().await?;
        inbound::in_scope(&mut conn, &scope, Listing::All, 200).await
    }
    .await?;
    Ok(pages::page(
        StatusCode::OK,
        pages::replies(&ui.coach, &ui.csrf, &replies, ctx.clock.now()),
    ))
}

#[derive(Deserialize)]
struct ReplyForm {
    csrf: String,
    #[serde(default)]
    back: String,
}

/// "Mark handled" or "I'm on it" on a reply; back to the page it came from.
async fn reply_action(
    State(ctx): State<AppContext>,
    Path((id, action)): Path<(i64, String)>,
    CheckedForm(ui, form): CheckedForm<ReplyForm>,
) -> Response {
    let Ok(action) = action.parse() else {
        return not_found();
    };
    let back = if form.back == "/" { "/" } else { "/replies" };
    match replies::act(&ctx, &ui.coach, id, action, ctx.clock.now()).await {
        Ok(_) => Redirect::to(back).into_response(),
        Err(replies::ReplyError::NotFound) => not_found(),
        Err(replies::ReplyError::Unexpected(e)) => pages::internal_error(e),
        Err(e) => pages::message(StatusCode::CONFLICT, "Already done", &e.to_string()),
    }
}

#[derive(Deserialize)]
struct AccountQuery {
    #[serde(default)]
    email: String,
}

/// The coach's own page; an admin may open any coach's with `?email=`.
async fn account_page(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<AccountQuery>,
) -> Result<Response, UiError> {
    let everyone = {
        let mut conn = ctx.store.conn().await?;
        coaches::all(&mut conn).await?
    };
    let wanted = query.email.trim();
    let target = if wanted.is_empty() || !ui.coach.is_admin() {
        everyone.iter().find(|c| c.id == ui.coach.id)
    } else {
        everyone
            .iter()
            .find(|c| c.email.eq_ignore_ascii_case(wanted))
    };
    Ok(match target {
        Some(target) => pages::page(
            StatusCode::OK,
            pages::account(&ui.coach, &ui.csrf, target, &everyone, ctx.clock.now()),
        ),
        None => not_found(),
    })
}

#[derive(Deserialize)]
struct AwayForm {
    csrf: String,
    email: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    backup: String,
}

/// `away` (with a last day and a backup) or `back`.
async fn account_change(
    State(ctx): State<AppContext>,
    Path(change): Path<String>,
    CheckedForm(ui, form): CheckedForm<AwayForm>,
) -> Response {
    let now = ctx.clock.now();
    let result = match change.as_str() {
        "away" => {
            let backup = Some(form.backup.as_str()).filter(|b| !b.trim().is_empty());
            casework::set_away(&ctx, Some(&ui.coach), &form.email, &form.until, backup, now).await
        }
        "back" => casework::set_back(&ctx, Some(&ui.coach), &form.email, now).await,
        _ => return not_found(),
    };
    match result {
        Ok(_) => {
            let back = if form.email.eq_ignore_ascii_case(&ui.coach.email) {
                "/account".to_owned()
            } else {
                format!(
                    "/account?email={}",
                    url::form_urlencoded::byte_serialize(form.email.as_bytes()).collect::<String>()
                )
            };
            Redirect::to(&back).into_response()
        }
        Err(casework::AwayError::Unexpected(e)) => pages::internal_error(e),
        Err(e) => pages::message(StatusCode::BAD_REQUEST, "Not done", &e.to_string()),
    }
}

async fn admin_page(State(ctx): State<AppContext>, ui: UiCoach) -> Result<Response, UiError> {
    if !ui.coach.is_admin() {
        return Ok(not_found());
    }
    let mut conn = ctx.store.conn().await?;
    let all = coaches::all(&mut conn).await?;
    let tokens = tokens::list(&mut conn, None).await?;
    let expired = messages::recent_with_status(&mut conn, MessageStatus::Expired, 50).await?;
    Ok(pages::page(
        StatusCode::OK,
        pages::admin(&ui.coach, &ui.csrf, &all, &tokens, &expired, &ctx.settings),
    ))
}

/// Revokes an API token: from now on it gets 401. Admins only; audited.
async fn admin_token_revoke(
    State(ctx): State<AppContext>,
    Path(id): Path<i64>,
    CheckedForm(ui, _): CheckedForm<CsrfForm>,
) -> Result<Response, UiError> {
    Ok(
        match pipeline::tokens::revoke(&ctx, Some(&ui.coach), id, ctx.clock.now()).await {
            Ok(()) => Redirect::to("/admin").into_response(),
            Err(TokenError::NotLive(_)) => pages::message(
                StatusCode::CONFLICT,
                "Not revoked",
                "No live token has that id: it may be revoked already.",
            ),
            Err(TokenError::Unexpected(e)) => return Err(e.into()),
            Err(TokenError::AdminOnly | TokenError::UnknownCoach(_)) => not_found(),
        },
    )
}

#[derive(Deserialize)]
struct AdminCoachForm {
    csrf: String,
    action: String,
    email: String,
    name: Option<String>,
    role: Option<String>,
    password: Option<String>,
}

/// Adds a coach, turns one off or on, or sets a new password (which ends
/// their sessions): `pipeline::coaches`, admins only.
async fn admin_coach(
    State(ctx): State<AppContext>,
    CheckedForm(ui, form): CheckedForm<AdminCoachForm>,
) -> Result<Response, UiError> {
    let now = ctx.clock.now();
    let password = form
        .password
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| SecretString::from(p.to_owned()));
    let by = Some(&ui.coach);
    let change = |change| pipeline::coaches::change(&ctx, by, &form.email, change, now);
    let done = match form.action.as_str() {
        "add" => {
            let new = pipeline::coaches::NewCoach {
                email: &form.email,
                name: form.name.as_deref().unwrap_or_default(),
                role: form.role.as_deref(),
                phone: None,
                timezone: None,
                password,
            };
            pipeline::coaches::add(&ctx, by, new, now).await.map(|_| ())
        }
        "deactivate" => change(Change::Deactivate).await,
        "activate" => change(Change::Activate).await,
        "password" => change(Change::Password(password.unwrap_or_default())).await,
        _ => Err(CoachError::Invalid("action: unknown".into())),
    };
    Ok(match done {
        Ok(()) => Redirect::to("/admin").into_response(),
        Err(CoachError::AdminOnly) => not_found(),
        Err(CoachError::Unexpected(e)) => return Err(e.into()),
        Err(e) => pages::message(
            StatusCode::BAD_REQUEST,
            "Please check the form",
            &e.to_string(),
        ),
    })
}

/// Every template rendered for a sample client, regular and discreet.
async fn template_preview(State(ctx): State<AppContext>, ui: UiCoach) -> Response {
    if !ui.coach.is_admin() {
        return not_found();
    }
    let previews: Vec<_> = ctx
        .composer
        .render_samples(
            &ctx.settings.agency.name,
            ctx.settings.http.public_url.as_str(),
        )
        .into_iter()
        .map(|s| {
            (
                format!("{}/{} · {}", s.language, s.template, s.channel),
                s.discreet,
                s.rendered.map_err(|e| e.to_string()),
            )
        })
        .collect();
    pages::page(
        StatusCode::OK,
        pages::template_preview(&ui.coach, &ui.csrf, &previews),
    )
}

/// Every form of the UI carries the session's CSRF token as `csrf`.
macro_rules! with_csrf {
    ($($form:ty),* $(,)?) => {$(
        impl WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}

with_csrf!(
    CsrfForm,
    ClientActionForm,
    MessageForm,
    EditForm,
    ApproveForm,
    RejectForm,
    SnoozeForm,
    ReplyForm,
    AwayForm,
    AdminCoachForm,
);

#[derive(Deserialize)]
struct ReportsQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

impl ReportsQuery {
    /// The report's span, or which field cannot be read.
    fn read(&self, now: DateTime<Utc>) -> Result<reports::Span, String> {
        reports::Span::read(Some(&self.by), Some(&self.since), Some(&self.until), now)
            .map_err(|(field, problem)| format!("{field}: {problem}"))
    }

    fn to_query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("by", &self.by)
            .append_pair("since", &self.since)
            .append_pair("until", &self.until)
            .finish()
    }
}

/// The page for a report query that cannot be read.
fn unreadable_report(problem: &str) -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "Please check the report's settings",
        problem,
    )
}

/// `/reports`: the coach's own caseload (an admin's: everyone's).
async fn reports_page(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<ReportsQuery>,
) -> Result<Response, UiError> {
    let span = match query.read(ctx.clock.now()) {
        Ok(span) => span,
        Err(problem) => return Ok(unreadable_report(&problem)),
    };
    let scope = ui.scope(&ctx).await?;
    let reading = reports::read(&ctx, &scope, span.since, span.until).await?;
    let (report, monthly) = (reading.report(span.by), reading.report(By::Month));
    Ok(pages::page(
        StatusCode::OK,
        pages::reports(&ui.coach, &ui.csrf, &report, &monthly, &query.to_query()),
    ))
}

/// The same report's rows as a CSV download.
async fn reports_csv(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<ReportsQuery>,
) -> Result<Response, UiError> {
    let span = match query.read(ctx.clock.now()) {
        Ok(span) => span,
        Err(problem) => return Ok(unreadable_report(&problem)),
    };
    let scope = ui.scope(&ctx).await?;
    let report = reports::outcomes(&ctx, &scope, span.by, span.since, span.until).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"reengage-outcomes.csv\"",
            ),
        ],
        report.to_csv()?,
    )
        .into_response())
}
