//! `/clients` and `/clients/{external_id}/…`: the caseload, a client's page,
//! their thread, and what a coach does with them.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::context::AppContext;
use crate::domain::{Channel, ClientStatus};
use crate::pipeline::casework::{self, CaseAction, CaseError};
use crate::pipeline::conversation::{self, Answer, AnswerError};
use crate::store::conversation as conversation_store;
use crate::store::{clients, coaches};

use super::pages::{self, ReplyBox};
use super::queue::{QUEUE_PAGE, history};
use super::respond::{UiError, not_found};
use super::session::{CheckedForm, UiCoach, with_csrf};

/// The most of a conversation the client page shows.
const THREAD_PAGE: i64 = 500;

#[derive(Deserialize)]
pub(super) struct ClientsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    after: i64,
}

pub(super) async fn clients(
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

pub(super) async fn client_page(
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
pub(super) struct MessageForm {
    csrf: String,
    channel: Option<String>,
    subject: Option<String>,
    body: String,
    /// Ticked: send despite the lint's error findings.
    confirm: Option<String>,
}

/// A coach's own message from the client page.
pub(super) async fn client_message(
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
pub(super) struct ClientActionForm {
    csrf: String,
    action: String,
    to: Option<String>,
}

pub(super) async fn client_action(
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
        "confirm_deceased" => CaseAction::ConfirmDeceased,
        "undo_deceased" => CaseAction::UndoDeceased,
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
        Err(
            e @ (CaseError::AdminOnly
            | CaseError::UnknownCoach(_)
            | CaseError::ReportedDeceased
            | CaseError::NoDeathReported),
        ) => pages::message(StatusCode::BAD_REQUEST, "Not done", &e.to_string()),
    }
}

with_csrf!(ClientActionForm, MessageForm);
