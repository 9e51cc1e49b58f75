//! `serve`: the web server and the scheduled jobs, until SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::app::context::AppContext;
use crate::cli::scheduler::Scheduler;
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
    // Under systemd's Type=notify, the unit is started once this is sent:
    // migrations are applied and the port is open. Elsewhere, a no-op.
    notify_systemd(sd_notify::NotifyState::Ready);
    let served = accept(&ctx, listener).await;
    notify_systemd(sd_notify::NotifyState::Stopping);
    ctx.shutdown.cancel();
    scheduler.stop().await;
    ctx.store.close().await;
    tracing::info!("stopped");
    served.context("The web server failed")
}

/// Serves each connection until shutdown (HTTP/1.1: the TLS proxy in front
/// speaks HTTP/2 to browsers). A client must send its headers within
/// `http.header_read_timeout_seconds`; on shutdown, requests in flight get
/// `http.shutdown_drain_seconds` to finish.
async fn accept(ctx: &AppContext, listener: TcpListener) -> anyhow::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let http = &ctx.settings.http;
    let router = web::router(ctx.clone());
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_read_timeout_seconds));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait, and go on serving.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = ctx.shutdown.cancelled() => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a connection ended with an error");
            }
        });
    }
    drop(listener);
    let drain = Duration::from_secs(http.shutdown_drain_seconds);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = drain.as_secs(),
            "requests still in flight after the drain time; closing their connections"
        );
    }
    Ok(())
}

/// Tells systemd (when `NOTIFY_SOCKET` is set) how the service is.
fn notify_systemd(state: sd_notify::NotifyState<'_>) {
    if let Err(e) = sd_notify::notify(&[state]) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
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
