//! `/login` and `/logout`. Every try is audited; a wrong email takes as long
//! as a wrong password.

use std::sync::LazyLock;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Duration;
use secrecy::SecretString;
use serde::Deserialize;

use crate::app::auth;
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::store::audit::{self, Actor};
use crate::store::{coaches, sessions};

use super::pages::{self};
use super::respond::UiError;
use super::session::{
    CheckedForm, CsrfForm, LOGIN_CSRF_COOKIE, SESSION_COOKIE, cookie, cookie_value, same_token,
};

const SESSION_HOURS: i64 = 12;

fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(super) async fn page(State(ctx): State<AppContext>) -> Response {
    let csrf = random_token();
    let set = cookie(&ctx, LOGIN_CSRF_COOKIE, csrf.clone(), 3600);
    ([(header::SET_COOKIE, set)], pages::login(&csrf, None)).into_response()
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
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

pub(super) async fn login(
    State(ctx): State<AppContext>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, UiError> {
    let expected = cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !same_token(&form.csrf, &expected) {
        return Ok(pages::forbidden());
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
        (Some(c), true) => (Actor::coach(c), AuditAction::Login),
        (Some(c), false) => (Actor::coach(c), AuditAction::LoginFailed),
        (None, _) => (Actor::System("unknown email"), AuditAction::LoginFailed),
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

pub(super) async fn logout(
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
            action: AuditAction::Logout,
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
