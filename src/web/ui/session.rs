//! Login sessions and CSRF. The session cookie is HttpOnly and SameSite=Lax
//! (and Secure when `public_url` is https); its token is rotated at every login
//! and revoked at logout. Every form carries the session's CSRF token, compared
//! in constant time; the login form, before any session exists, uses a
//! double-submit cookie instead.

use axum::Form;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq;

use crate::app::context::AppContext;
use crate::store::coaches::{self, CoachRow};
use crate::store::{Scope, sessions};

use super::pages;

pub const SESSION_COOKIE: &str = "reengage_session";
pub const LOGIN_CSRF_COOKIE: &str = "reengage_login_csrf";

/// The coach behind a live session, with the token the page's forms must carry.
pub struct UiCoach {
    pub coach: CoachRow,
    pub csrf: String,
    pub token: String,
}

impl UiCoach {
    /// Whose clients this coach acts on now (see `coaches::scope_for`).
    pub async fn scope(&self, ctx: &AppContext) -> anyhow::Result<Scope> {
        let mut conn = ctx.store.conn().await?;
        coaches::scope_for(&mut conn, &self.coach, ctx.clock.now()).await
    }
}

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// A cookie with the flags every reengage cookie has.
pub fn cookie(ctx: &AppContext, name: &'static str, value: String, max_age_seconds: i64) -> String {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(ctx.settings.http.public_url.scheme() == "https")
        .max_age(cookie::time::Duration::seconds(max_age_seconds))
        .build()
        .to_string()
}

pub fn same_token(given: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

impl FromRequestParts<AppContext> for UiCoach {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &AppContext) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(token) = cookie_value(&parts.headers, SESSION_COOKIE) else {
            return Err(to_login());
        };
        let found = async {
            let mut conn = ctx.store.conn().await?;
            sessions::find(&mut conn, &token, ctx.clock.now()).await
        }
        .await;
        match found {
            Ok(Some(mut session)) => Ok(UiCoach {
                coach: {
                    // Times on every page are in the coach's timezone.
                    let tz = session.coach.tz(ctx.settings.defaults.timezone);
                    session.coach.timezone = Some(tz.name().to_owned());
                    session.coach
                },
                csrf: session.csrf_token,
                token,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(pages::internal_error(e)),
        }
    }
}

/// A form that carries the session's CSRF token in its `csrf` field.
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// Every form of the UI carries the session's CSRF token as `csrf`; each
/// page's file names its forms here.
macro_rules! with_csrf {
    ($($form:ty),* $(,)?) => {$(
        impl $crate::web::ui::session::WithCsrf for $form {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}
pub(super) use with_csrf;

/// A form with nothing but the token: a button.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

with_csrf!(CsrfForm);

/// A form posted by a signed-in coach whose CSRF token matched the session's.
/// Every form of the UI arrives through it: a missing or forged token is 403
/// (a missing field 422) before the handler runs, and nothing changes.
pub struct CheckedForm<T>(pub UiCoach, pub T);

impl<T> FromRequest<AppContext> for CheckedForm<T>
where
    T: serde::de::DeserializeOwned + WithCsrf + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, ctx: &AppContext) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let ui = UiCoach::from_request_parts(&mut parts, ctx).await?;
        let Form(form) = Form::<T>::from_request(Request::from_parts(parts, body), ctx)
            .await
            .map_err(IntoResponse::into_response)?;
        if !same_token(form.csrf(), &ui.csrf) {
            return Err(pages::forbidden());
        }
        Ok(CheckedForm(ui, form))
    }
}

/// A form read as its fields in order (for repeated names, like `ids`).
impl WithCsrf for Vec<(String, String)> {
    fn csrf(&self) -> &str {
        self.iter()
            .find(|(k, _)| k == "csrf")
            .map_or("", |(_, v)| v.as_str())
    }
}
