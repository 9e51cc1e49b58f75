//! `/replies`: what clients wrote back, crisis first.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::context::AppContext;
use crate::pipeline::replies;
use crate::store::inbound;
use crate::store::inbound::Listing;

use super::pages::{self};
use super::respond::{UiError, not_found};
use super::session::{CheckedForm, UiCoach, with_csrf};

pub(super) async fn replies(
    State(ctx): State<AppContext>,
    ui: UiCoach,
) -> Result<Response, UiError> {
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
pub(super) struct ReplyForm {
    csrf: String,
    #[serde(default)]
    back: String,
}

/// "Mark handled" or "I'm on it" on a reply; back to the page it came from.
pub(super) async fn reply_action(
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

with_csrf!(ReplyForm);
