//! `/` (the queue) and `/drafts/…`: what a coach does with drafts.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::Deserialize;

use crate::app::context::AppContext;
use crate::domain::local_time::local_to_utc;
use crate::pipeline::review::{self, ActionError};
use crate::store::inbound::Listing;
use crate::store::{episodes, events, inbound, messages};

use super::pages::{self};
use super::respond::{UiError, action_error, after, not_found};
use super::session::{CheckedForm, UiCoach, with_csrf};

pub(super) const QUEUE_PAGE: i64 = 50;

#[derive(Deserialize)]
pub(super) struct QueueQuery {
    #[serde(default)]
    after: i64,
}

pub(super) async fn queue(
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
pub(super) async fn history(ctx: &AppContext, client_id: i64) -> anyhow::Result<maud::Markup> {
    let mut conn = ctx.store.conn().await?;
    let events = events::recent(&mut conn, client_id, 20).await?;
    let messages = messages::for_client(&mut conn, client_id, 20).await?;
    Ok(pages::timeline(&events, &messages))
}

pub(super) async fn draft_page(
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
pub(super) struct EditForm {
    csrf: String,
    subject: Option<String>,
    body: String,
}

pub(super) async fn edit(
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
pub(super) struct ApproveForm {
    csrf: String,
    /// Ticked: approve despite the lint's error findings.
    confirm: Option<String>,
}

pub(super) async fn approve(
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
pub(super) async fn approve_many(
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
pub(super) struct RejectForm {
    csrf: String,
    reason: Option<String>,
}

pub(super) async fn reject(
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
pub(super) struct SnoozeForm {
    csrf: String,
    until: String,
}

pub(super) async fn snooze(
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

with_csrf!(EditForm, ApproveForm, RejectForm, SnoozeForm);
