//! HTTP: the coach UI, the JSON API, unsubscribe links, health, metrics and
//! provider webhooks.

pub mod api;
mod layers;
pub mod openapi;
mod twilio;
mod ui;
mod unsubscribe;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::context::AppContext;

/// The keyset cursor of a page: the last item's id when the page is full (so
/// there may be more), else none. Every paged list, in the UI and the API.
pub(crate) fn next_after<T>(items: &[T], limit: i64, id: impl Fn(&T) -> i64) -> Option<i64> {
    (items.len() as i64 == limit)
        .then(|| items.last().map(id))
        .flatten()
}

pub fn router(ctx: AppContext) -> Router {
    let settings = ctx.settings.clone();
    let counters = ctx.metrics.clone();
    let router = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/webhooks/twilio/status", post(twilio::status_callback))
        .route("/webhooks/twilio/inbound", post(twilio::inbound))
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe::confirm).post(unsubscribe::unsubscribe),
        )
        .nest("/api/v1", api::routes().into())
        .merge(ui::routes())
        .with_state(ctx);
    layers::apply(router, &settings.http, counters)
}

/// The process is up: for a supervisor deciding whether to restart it.
async fn livez() -> &'static str {
    "ok\n"
}

/// The database answers: for a load balancer deciding whether to send
/// traffic. A paused channel or a pending crisis alert does not take an
/// instance out (the coach UI and the inbound webhooks must stay reachable);
/// `/healthz` reports those.
async fn readyz(State(ctx): State<AppContext>) -> (StatusCode, &'static str) {
    match ctx.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}

/// A small icon, so that browsers find one instead of logging a 404.
async fn favicon() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "image/svg+xml")],
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">\
         <circle cx=\"8\" cy=\"8\" r=\"7\" fill=\"#2f6f73\"/></svg>",
    )
}

/// Each part's state, one line each: the database, then each channel. 200 when
/// all are fine; 503 when the database is down or a channel is paused for an
/// operator to fix.
async fn healthz(State(ctx): State<AppContext>) -> (StatusCode, String) {
    let mut healthy = true;
    let mut body = match ctx.store.ping().await {
        Ok(()) => "database: ok\n".to_owned(),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "health check failed");
            healthy = false;
            "database: unavailable\n".to_owned()
        }
    };
    match crate::store::inbound_alerts_pending(&ctx.store).await {
        Ok(0) => body.push_str("crisis alerts: ok\n"),
        Ok(n) => {
            healthy = false;
            body.push_str(&format!(
                "crisis alerts: {n} not delivered yet (of a crisis or a reported death; \
                 retried by dispatch)\n"
            ));
        }
        Err(e) => tracing::error!(error = format!("{e:#}"), "health check of alerts failed"),
    }
    // Open alerts are people's work, not an outage: shown, never a 503.
    match crate::store::open_crisis_alerts(&ctx.store).await {
        Ok((0, _)) => body.push_str("crisis alerts open: 0\n"),
        Ok((n, oldest)) => {
            let minutes = oldest.map_or(0, |at| (ctx.clock.now() - at).num_minutes().max(0));
            body.push_str(&format!(
                "crisis alerts open: {n} (oldest {minutes} min, waiting for \"I'm on it\")\n"
            ));
        }
        Err(e) => tracing::error!(
            error = format!("{e:#}"),
            "health check of open alerts failed"
        ),
    }
    let paused = ctx.channels.paused();
    for channel in ["email", "sms"] {
        match paused.get(channel) {
            Some(reason) => {
                healthy = false;
                body.push_str(&format!("{channel} channel paused: {reason}\n"));
            }
            None => body.push_str(&format!("{channel} channel: ok\n")),
        }
    }
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

async fn metrics(State(ctx): State<AppContext>) -> Response {
    match ctx
        .metrics
        .render(
            &ctx.store,
            &ctx.channels,
            i64::from(ctx.settings.reports.window_days) * 86_400,
            ctx.clock.now(),
        )
        .await
    {
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
