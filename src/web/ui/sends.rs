//! `/sends` (the send log) and `/messages/{id}/{decision}` (a message in doubt).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDate;
use serde::Deserialize;

use crate::app::context::AppContext;
use crate::domain::MessageStatus;
use crate::domain::local_time::local_to_utc;
use crate::pipeline::review::{self, InDoubtDecision};
use crate::store::{messages, send_log};

use super::pages::{self};
use super::respond::{UiError, after, not_found};
use super::session::{CheckedForm, CsrfForm, UiCoach};

#[derive(Deserialize)]
pub(super) struct SendsQuery {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    since: String,
}

/// The send log, filtered by outcome, channel and date, with the messages in
/// doubt that wait for a coach's decision.
pub(super) async fn sends(
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
pub(super) async fn decide(
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
