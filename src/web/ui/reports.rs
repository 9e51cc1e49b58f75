//! `/reports` and `/reports.csv`: the outcome report over the coach's caseload.

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::context::AppContext;
use crate::domain::outcomes::By;
use crate::pipeline::reports;
use crate::store::Scope;

use super::pages::{self};
use super::respond::UiError;
use super::session::UiCoach;

#[derive(Deserialize)]
pub(super) struct ReportsQuery {
    #[serde(default)]
    by: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
}

impl ReportsQuery {
    /// The report's span, or which field cannot be read.
    fn read(&self, now: DateTime<Utc>) -> Result<reports::Span, String> {
        reports::Span::read(Some(&self.by), Some(&self.since), Some(&self.until), now)
            .map_err(|(field, problem)| format!("{field}: {problem}"))
    }

    fn to_query(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("by", &self.by)
            .append_pair("since", &self.since)
            .append_pair("until", &self.until)
            .finish()
    }
}

/// The page for a report query that cannot be read.
fn unreadable_report(problem: &str) -> Response {
    pages::message(
        StatusCode::BAD_REQUEST,
        "Please check the report's settings",
        problem,
    )
}

/// The report's span over the coach's scope, or the page that says which
/// setting cannot be read.
async fn asked(
    ctx: &AppContext,
    ui: &UiCoach,
    query: &ReportsQuery,
) -> Result<Result<(reports::Span, Scope), Response>, UiError> {
    Ok(match query.read(ctx.clock.now()) {
        Ok(span) => Ok((span, ui.scope(ctx).await?)),
        Err(problem) => Err(unreadable_report(&problem)),
    })
}

/// `/reports`: the coach's own caseload (an admin's: everyone's).
pub(super) async fn page(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<ReportsQuery>,
) -> Result<Response, UiError> {
    let (span, scope) = match asked(&ctx, &ui, &query).await? {
        Ok(asked) => asked,
        Err(page) => return Ok(page),
    };
    let reading = reports::read(&ctx, &scope, span.since, span.until).await?;
    let (report, monthly) = (reading.report(span.by), reading.report(By::Month));
    Ok(pages::page(
        StatusCode::OK,
        pages::reports(&ui.coach, &ui.csrf, &report, &monthly, &query.to_query()),
    ))
}

/// The same report's rows as a CSV download.
pub(super) async fn csv(
    State(ctx): State<AppContext>,
    ui: UiCoach,
    Query(query): Query<ReportsQuery>,
) -> Result<Response, UiError> {
    let (span, scope) = match asked(&ctx, &ui, &query).await? {
        Err(page) => return Ok(page),
        Ok(asked) => asked,
    };
    let report = reports::outcomes(&ctx, &scope, span.by, span.since, span.until).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"reengage-outcomes.csv\"",
            ),
        ],
        report.to_csv()?,
    )
        .into_response())
}
