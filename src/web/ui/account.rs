//! `/account`: a coach's own page, and away periods.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::app::context::AppContext;
use crate::pipeline::casework::{self};
use crate::store::coaches;

use super::pages::{self};
use super::respond::{UiError, not_found};
use super::session::{CheckedForm, UiCoach, with_csrf};

#[derive(Deserialize)]
pub(super) struct AccountQuery {
    #[serde(default)]
    email: String,
}

/// The coach's own page; an admin may open any coach's with `?email=`.
pub(super) async fn page(
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
pub(super) struct AwayForm {
    csrf: String,
    email: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    backup: String,
}

/// `away` (with a last day and a backup) or `back`.
pub(super) async fn change(
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

with_csrf!(AwayForm);
