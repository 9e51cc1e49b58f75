//! What an agency's IT sees: the probes, and the headers every answer carries.

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

on_both_backends!(
    the_probes_say_live_and_ready_and_a_paused_channel_takes_no_instance_out,
    every_answer_forbids_caching_framing_sniffing_and_referrers,
    a_revoked_or_expired_token_is_refused_at_once,
);

async fn get(app: &TestApp, path: &str) -> axum::response::Response {
    reengage::web::router(app.ctx.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn the_probes_say_live_and_ready_and_a_paused_channel_takes_no_instance_out(app: TestApp) {
    assert_eq!(get(&app, "/livez").await.status(), StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.status(), StatusCode::OK);
    app.ctx
        .channels
        .pause(reengage::domain::Channel::Sms, "credentials refused".into());
    assert_eq!(
        get(&app, "/healthz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "the detail says what is wrong"
    );
    assert_eq!(
        get(&app, "/readyz").await.status(),
        StatusCode::OK,
        "but the instance still takes traffic: the UI and the webhooks must answer"
    );
    let icon = get(&app, "/favicon.ico").await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
}

async fn every_answer_forbids_caching_framing_sniffing_and_referrers(app: TestApp) {
    for path in ["/login", "/api/v1/drafts", "/healthz", "/no-such-page"] {
        let response = get(&app, path).await;
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"),
            "{path}: {csp}"
        );
        assert!(
            !headers.contains_key("strict-transport-security"),
            "plain http is told nothing of https"
        );
    }
}

on_both_backends!(with https; over_https_browsers_are_told_to_stay_on_https);

fn https() -> String {
    "[http]\npublic_url = \"https://reengage.example.org\"\n".to_owned()
}

async fn over_https_browsers_are_told_to_stay_on_https(app: TestApp) {
    let response = get(&app, "/login").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

async fn a_revoked_or_expired_token_is_refused_at_once(mut app: TestApp) {
    use axum::http::Method;
    use reengage::store::tokens;
    let now = chrono::Utc::now();
    let rosa = reengage::pipeline::review::acting_coach(&app.ctx, COACH)
        .await
        .unwrap();
    let mut conn = app.ctx.store.conn().await.unwrap();
    let brief = tokens::create(
        &mut conn,
        rosa.id,
        Some(now + chrono::Duration::days(1)),
        now,
    )
    .await
    .unwrap();
    let revoked = tokens::create(&mut conn, rosa.id, None, now).await.unwrap();
    drop(conn);
    let (status, _) = call(&app, Method::GET, "/api/v1/drafts", Some(&brief), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, Method::GET, "/api/v1/drafts", Some(&revoked), None).await;
    assert_eq!(status, StatusCode::OK);
    let mut conn = app.ctx.store.conn().await.unwrap();
    let listed = tokens::list(&mut conn, Some(rosa.id)).await.unwrap();
    assert!(
        listed.iter().all(|t| t.last_used_at.is_some()),
        "last use recorded"
    );
    let id = listed.last().unwrap().id;
    assert!(tokens::revoke(&mut conn, id, now).await.unwrap());
    drop(conn);
    let (status, _) = call(&app, Method::GET, "/api/v1/drafts", Some(&revoked), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked");
    app.ctx.clock = reengage::app::clock::Clock::Fixed(now + chrono::Duration::days(2));
    let (status, _) = call(&app, Method::GET, "/api/v1/drafts", Some(&brief), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired");
}
