//! HTTP: the coach UI, the JSON API, health, metrics and provider webhooks. The
//! unsubscribe route joins this router in a later issue.

pub mod api;
mod twilio;
mod ui;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::context::AppContext;

pub fn router(ctx: AppContext) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/webhooks/twilio/status", post(twilio::status_callback))
        .nest("/api/v1", api::routes())
        .merge(ui::routes())
        .with_state(ctx)
}

/// 200 when the database answers and every channel is running; 503 with the
/// reason when the database is down or a channel is paused for an operator.
async fn healthz(State(ctx): State<AppContext>) -> (StatusCode, String) {
    if let Err(e) = ctx.store.ping().await {
        tracing::error!(error = format!("{e:#}"), "health check failed");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unavailable\n".into(),
        );
    }
    let paused = ctx.channels.paused();
    if paused.is_empty() {
        return (StatusCode::OK, "ok\n".into());
    }
    let mut body = String::new();
    for (channel, reason) in paused {
        body.push_str(&format!("{channel} channel paused: {reason}\n"));
    }
    (StatusCode::SERVICE_UNAVAILABLE, body)
}

async fn metrics(State(ctx): State<AppContext>) -> Response {
    match ctx.metrics.render(&ctx.store, &ctx.channels).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "metrics failed");
            (StatusCode::SERVICE_UNAVAILABLE, "metrics unavailable\n").into_response()
        }
    }
}
