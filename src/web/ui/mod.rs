//! The coach's web UI: server-rendered HTML that works without JavaScript.
//! Every form posts with a CSRF token and redirects after success; a coach sees
//! and acts on their own clients only (anything else is 404, as for an id that
//! does not exist). One file per URL area, each with its handlers and forms;
//! this one keeps the router.

mod account;
mod admin;
mod charts;
mod clients;
mod login;
mod pages;
mod queue;
mod replies;
mod reports;
mod respond;
mod sends;
mod session;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::context::AppContext;

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

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/style.css", get(stylesheet))
        .route("/login", get(login::page).post(login::login))
        .route("/logout", post(login::logout))
        .route("/", get(queue::queue))
        .route("/drafts/approve", post(queue::approve_many))
        .route("/drafts/{id}", get(queue::draft_page))
        .route("/drafts/{id}/edit", post(queue::edit))
        .route("/drafts/{id}/approve", post(queue::approve))
        .route("/drafts/{id}/reject", post(queue::reject))
        .route("/drafts/{id}/snooze", post(queue::snooze))
        .route("/sends", get(sends::sends))
        .route("/messages/{id}/{decision}", post(sends::decide))
        .route("/replies", get(replies::replies))
        .route("/replies/{id}/{action}", post(replies::reply_action))
        .route("/account", get(account::page))
        .route("/account/{change}", post(account::change))
        .route("/admin", get(admin::page))
        .route("/admin/coaches", post(admin::coach))
        .route("/admin/tokens/{id}/revoke", post(admin::token_revoke))
        .route("/admin/templates", get(admin::template_preview))
        .route("/clients", get(clients::clients))
        .route("/reports", get(reports::page))
        .route("/reports.csv", get(reports::csv))
        .route("/clients/{external_id}", get(clients::client_page))
        .route(
            "/clients/{external_id}/action",
            post(clients::client_action),
        )
        .route(
            "/clients/{external_id}/message",
            post(clients::client_message),
        )
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
