//! `/unsubscribe/{token}`: the link in every email. `GET` shows a confirmation
//! page with a button; `POST` (the button, or a mail client's RFC 8058
//! one-click `List-Unsubscribe=One-Click`) opts the client out of email. The
//! pages show no client data. A bad or tampered token is 404 and changes nothing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use crate::app::context::AppContext;
use crate::pipeline::unsubscribe;

fn page(status: StatusCode, body: Markup) -> Response {
    (status, super::ui::plain_page("Email preferences", body)).into_response()
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        html! { h1 { "This link does not work" } p { "Nothing was changed." } },
    )
}

pub async fn confirm(State(ctx): State<AppContext>, Path(token): Path<String>) -> Response {
    if ctx.unsubscribe.verify(&token).is_none() {
        return not_found();
    }
    page(
        StatusCode::OK,
        html! {
            h1 { "Stop these emails?" }
            p { "You will not get check-in emails from us any more." }
            form method="post" action={ "/unsubscribe/" (token) } {
                button type="submit" { "Yes, stop the emails" }
            }
        },
    )
}

/// Opts the client out of email. Repeating it is harmless and still succeeds.
pub async fn unsubscribe(State(ctx): State<AppContext>, Path(token): Path<String>) -> Response {
    match unsubscribe::opt_out(&ctx, &token, ctx.clock.now()).await {
        Ok(true) => page(
            StatusCode::OK,
            html! { h1 { "Done" } p { "You will not get check-in emails from us any more." } },
        ),
        Ok(false) => not_found(),
        Err(e) => super::ui::error_page(e),
    }
}
