//! How a page answers when the work is not done: the error a handler returns
//! with `?`, a refusal to show, and the redirect or page after an action.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::pipeline::review::{ActionError, EditError};

use super::pages;

/// An error a page could not get past: the cause is logged and the coach sees
/// the plain "something went wrong" page. Handlers return it with `?`.
pub struct UiError(anyhow::Error);

impl From<anyhow::Error> for UiError {
    fn from(e: anyhow::Error) -> Self {
        UiError(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        pages::internal_error(self.0)
    }
}

pub(super) fn not_found() -> Response {
    pages::message(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
}

pub(super) fn action_error(e: ActionError) -> Response {
    match e {
        ActionError::NeedsConfirmation { .. } => pages::message(
            StatusCode::BAD_REQUEST,
            "Please look at the findings first",
            "This draft has error findings. Read them on the draft, and tick \"Approve anyway\" if it should go as it is.",
        ),
        ActionError::NotPending { .. } | ActionError::NotInDoubt { .. } => pages::message(
            StatusCode::CONFLICT,
            "Already handled",
            "Someone has already acted on this draft, so nothing was changed.",
        ),
        ActionError::Unexpected(e) => pages::internal_error(e),
        _ => not_found(),
    }
}

/// Runs an action's result into a redirect on success, or the right page.
pub(super) fn after<E: Into<EditError>>(result: Result<(), E>, to: String) -> Response {
    match result {
        Ok(()) => Redirect::to(&to).into_response(),
        Err(e) => match e.into() {
            EditError::Action(a) => action_error(a),
            EditError::Invalid { field, problem } => pages::message(
                StatusCode::BAD_REQUEST,
                "Please check the form",
                &format!("{field}: {problem}"),
            ),
        },
    }
}
