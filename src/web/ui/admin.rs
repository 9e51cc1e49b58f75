//! `/admin`: coaches, API tokens and the templates; admins only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::SecretString;
use serde::Deserialize;

use crate::app::context::AppContext;
use crate::domain::MessageStatus;
use crate::pipeline;
use crate::pipeline::coaches::{Change, CoachError};
use crate::pipeline::tokens::TokenError;
use crate::store::{coaches, messages, tokens};

use super::pages::{self};
use super::respond::{UiError, not_found};
use super::session::{CheckedForm, CsrfForm, UiCoach, with_csrf};

pub(super) async fn page(State(ctx): State<AppContext>, ui: UiCoach) -> Result<Response, UiError> {
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
pub(super) async fn token_revoke(
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
pub(super) struct AdminCoachForm {
    csrf: String,
    action: String,
    email: String,
    name: Option<String>,
    role: Option<String>,
    password: Option<String>,
}

/// Adds a coach, turns one off or on, or sets a new password (which ends
/// their sessions): `pipeline::coaches`, admins only.
pub(super) async fn coach(
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
pub(super) async fn template_preview(State(ctx): State<AppContext>, ui: UiCoach) -> Response {
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

with_csrf!(AdminCoachForm);
