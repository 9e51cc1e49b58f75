//! `serve`: the web server and the scheduled jobs, until SIGTERM or Ctrl-C.

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::context::AppContext;
use crate::app::scheduler::Scheduler;
use crate::web;

/// Binds `http.bind`, starts the jobs and serves until shutdown. On the signal it
/// stops accepting requests, lets a send in flight finish, claims nothing new.
pub async fn serve(ctx: AppContext) -> anyhow::Result<()> {
    let bind = ctx.settings.http.bind;
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("config key `http.bind`: cannot listen on {bind}"))?;
    serve_on(ctx, listener).await
}

pub async fn serve_on(ctx: AppContext, listener: TcpListener) -> anyhow::Result<()> {
    tracing::info!(address = %listener.local_addr()?, "listening");
    let scheduler = Scheduler::start(ctx.clone()).await?;
    tokio::spawn(cancel_on_signal(ctx.shutdown.clone()));
    let shutdown = ctx.shutdown.clone();
    let served = axum::serve(listener, web::router(ctx.clone()))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    ctx.shutdown.cancel();
    scheduler.stop().await;
    ctx.store.close().await;
    tracing::info!("stopped");
    served.context("The web server failed")
}

async fn cancel_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
            _ = token.cancelled() => return,
        }
    }
    #[cfg(not(unix))]
    tokio::select! {
        _ = ctrl_c => {}
        _ = token.cancelled() => return,
    }
    tracing::info!("shutdown requested; finishing work in flight");
    token.cancel();
}
