//! HTTP: health for now. The coach UI, the JSON API, provider webhooks and the
//! unsubscribe route join this router in later issues.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::context::AppContext;

pub fn router(ctx: AppContext) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(ctx)
}

/// 200 when the database answers, 503 when it does not.
async fn healthz(State(ctx): State<AppContext>) -> (StatusCode, &'static str) {
    match ctx.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
        }
    }
}
