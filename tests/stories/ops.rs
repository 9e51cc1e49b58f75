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

/// `GET path` with a bearer token (the router is the caller's, so that its
/// limits and headers are the ones under test).
fn bearer_get(path: &str, token: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

async fn get(app: &TestApp, path: &str) -> axum::response::Response {
    reengage::web::router(app.ctx.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn the_probes_say_live_and_ready_and_a_paused_channel_takes_no_instance_out(app: TestApp) {
    assert_eq!(get(&app, "/livez").await.status(), StatusCode::OK);
    assert_eq!(get(&app, "/readyz").await.status(), StatusCode::OK);
    assert_eq!(get(&app, "/healthz").await.status(), StatusCode::OK);
    app.ctx
        .channels
        .pause(reengage::domain::Channel::Sms, "credentials refused".into());
    let health = get(&app, "/healthz").await;
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let detail = axum::body::to_bytes(health.into_body(), 1 << 16)
        .await
        .unwrap();
    let detail = String::from_utf8_lossy(&detail);
    assert!(
        detail.contains("sms channel paused: credentials refused"),
        "the detail says what is wrong: {detail}"
    );
    assert_eq!(
        get(&app, "/readyz").await.status(),
        StatusCode::OK,
        "but the instance still takes traffic: the UI and the webhooks must answer"
    );
    let icon = get(&app, "/favicon.ico").await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");
    let style = get(&app, "/style.css").await;
    assert_eq!(style.status(), StatusCode::OK);
    assert!(
        style.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(style.headers()["cache-control"], "public, max-age=86400");
}

async fn every_answer_forbids_caching_framing_sniffing_and_referrers(app: TestApp) {
    // The queue page and an API answer with client data, as their users get them.
    drafts_for_rosa_and_marcus(&app, "Jordan").await;
    set_passwords(&app).await;
    let mut browser = Browser::new(&app);
    browser.log_in(COACH, PASSWORD).await;
    let queue = browser.get("/").await;
    assert!(
        queue.body.contains("Jordan") && !queue.body.contains("Devon"),
        "Rosa's queue, with her client's draft: {}",
        queue.body
    );
    let rosa = token(&app, COACH).await;
    let router = reengage::web::router(app.ctx.clone());
    let api = router
        .clone()
        .oneshot(bearer_get("/api/v1/drafts", &rosa))
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    let mut answers = vec![
        ("/ (the queue)".to_owned(), queue.headers),
        ("/api/v1/drafts".to_owned(), api.headers().clone()),
    ];
    for path in ["/login", "/api/v1/drafts", "/healthz", "/no-such-page"] {
        answers.push((path.to_owned(), get(&app, path).await.headers().clone()));
    }
    for (path, headers) in &answers {
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(
            !headers.contains_key("strict-transport-security"),
            "plain http is told nothing of https"
        );
    }
}

on_both_backends!(with https; over_https_browsers_are_told_to_stay_on_https);

on_both_backends!(
    the_access_log_names_the_route_and_never_a_token,
    every_api_failure_answers_in_the_error_shape,
    a_field_longer_than_its_limit_is_refused_with_its_name,
);

on_both_backends!(with tight_login_limit; logins_from_one_address_are_limited_and_another_is_not);
on_both_backends!(with tight_api_limit; the_api_limit_answers_429_in_the_error_shape_with_retry_after);

fn tight_api_limit() -> String {
    "[http.rate_limit]\napi_per_minute = 2\n".to_owned()
}

async fn the_api_limit_answers_429_in_the_error_shape_with_retry_after(app: TestApp) {
    let rosa = token(&app, COACH).await;
    let router = reengage::web::router(app.ctx.clone());
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let response = router
            .clone()
            .oneshot(bearer_get("/api/v1/drafts", &rosa))
            .await
            .unwrap();
        statuses.push(response.status());
        last = Some(response);
    }
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let limited = last.unwrap();
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    assert_eq!(limited.headers()["content-type"], "application/json");
    let body = axum::body::to_bytes(limited.into_body(), 1 << 16)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("Try again in"),
        "{body}"
    );
    // The probes and the pages are not limited.
    for _ in 0..3 {
        let probe = router
            .clone()
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(probe.status(), StatusCode::OK);
    }
}

fn tight_login_limit() -> String {
    "[http]\ntrusted_proxies = [\"127.0.0.1\"]\n[http.rate_limit]\nlogin_per_minute = 3\n"
        .to_owned()
}

/// A login POST from `peer`, through a proxy when `forwarded` is given.
fn login_from(peer: &str, forwarded: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", "reengage_login_csrf=abc");
    if let Some(client) = forwarded {
        request = request.header("x-forwarded-for", client);
    }
    let mut request = request
        .body(Body::from(format!(
            "csrf=abc&email={}&password=not-the-password",
            COACH.replace('@', "%40")
        )))
        .unwrap();
    request.extensions_mut().insert(axum::extract::ConnectInfo(
        peer.parse::<std::net::SocketAddr>().unwrap(),
    ));
    request
}

async fn logins_from_one_address_are_limited_and_another_is_not(app: TestApp) {
    let router = reengage::web::router(app.ctx.clone());
    let send = |request| router.clone().oneshot(request);
    for _ in 0..3 {
        let response = send(login_from("198.51.100.1:4000", None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = send(login_from("198.51.100.1:4001", None)).await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "a page for a person"
    );
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=20).contains(&wait),
        "one login comes back every 20 s: {wait}"
    );
    let other = send(login_from("198.51.100.2:4000", None)).await.unwrap();
    assert_eq!(
        other.status(),
        StatusCode::UNAUTHORIZED,
        "another address is unaffected"
    );
    // Through the trusted proxy, the client's own address counts...
    let proxied = send(login_from("127.0.0.1:5000", Some("198.51.100.1")))
        .await
        .unwrap();
    assert_eq!(proxied.status(), StatusCode::TOO_MANY_REQUESTS);
    let proxied = send(login_from("127.0.0.1:5000", Some("203.0.113.5")))
        .await
        .unwrap();
    assert_eq!(proxied.status(), StatusCode::UNAUTHORIZED);
    // ...and from anyone else, the header is ignored.
    let forged = send(login_from("198.51.100.1:4002", Some("203.0.113.77")))
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other pages are not limited.
    let mut page = Request::get("/login").body(Body::empty()).unwrap();
    page.extensions_mut().insert(axum::extract::ConnectInfo(
        "198.51.100.1:4003".parse::<std::net::SocketAddr>().unwrap(),
    ));
    assert_eq!(send(page).await.unwrap().status(), StatusCode::OK);
}

/// Everything logged while `work` runs, as text.
async fn logged<F: std::future::Future>(work: F) -> (F::Output, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let output = work.await;
    drop(guard);
    let text = String::from_utf8_lossy(&lines.0.lock().unwrap()).into_owned();
    (output, text)
}

async fn the_access_log_names_the_route_and_never_a_token(app: TestApp) {
    let token = token(&app, COACH).await;
    let (statuses, log) = logged(async {
        let router = reengage::web::router(app.ctx.clone());
        let unsubscribe = router
            .clone()
            .oneshot(
                Request::get("/unsubscribe/SECRET-LINK-TOKEN-4711")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let api = router
            .oneshot(
                Request::get("/api/v1/drafts?status=pending")
                    .header("authorization", format!("Bearer {token}"))
                    .header("x-request-id", "req-from-the-proxy-1")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(api.headers()["x-request-id"], "req-from-the-proxy-1");
        (unsubscribe.status(), api.status())
    })
    .await;
    assert_eq!(statuses.1, StatusCode::OK);
    assert!(log.contains("route=\"/unsubscribe/{token}\""), "{log}");
    assert!(log.contains("route=\"/api/v1/drafts\""), "{log}");
    assert!(log.contains("request_id=req-from-the-proxy-1"), "{log}");
    for secret in ["SECRET-LINK-TOKEN-4711", token.as_str(), "status=pending"] {
        assert!(!log.contains(secret), "`{secret}` is in the log: {log}");
    }
    let metrics = get(&app, "/metrics").await;
    let text = String::from_utf8_lossy(
        &axum::body::to_bytes(metrics.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .into_owned();
    assert!(
        text.contains("reengage_http_requests_total{route=\"/api/v1/drafts\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "reengage_http_request_duration_seconds_count{route=\"/unsubscribe/{token}\"} 1"
        ),
        "{text}"
    );
}

async fn every_api_failure_answers_in_the_error_shape(app: TestApp) {
    use axum::http::Method;
    let rosa = token(&app, COACH).await;
    let huge = serde_json::json!({ "first_name": "x".repeat(300_000) });
    for (method, path, body, status, code) in [
        (
            Method::GET,
            "/api/v1/drafts/not-a-number",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Method::GET,
            "/api/v1/no-such-thing",
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::DELETE,
            "/api/v1/drafts",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Method::PUT,
            "/api/v1/clients/big-1",
            Some(huge),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            Method::GET,
            "/api/v1/reports/outcomes?by=shoe-size",
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let (got, value) = call(&app, method.clone(), path, Some(&rosa), body).await;
        assert_eq!(got, status, "{method} {path}: {value}");
        assert_eq!(value["error"], code, "{method} {path}: {value}");
        assert!(
            value["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{method} {path}: {value}"
        );
    }
}

async fn a_field_longer_than_its_limit_is_refused_with_its_name(app: TestApp) {
    use axum::http::Method;
    let rosa = token(&app, COACH).await;
    let (status, value) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/long-1",
        Some(&rosa),
        Some(serde_json::json!({ "first_name": "N".repeat(1_000), "phone": "+12015550142", "consent_sms": true })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert_eq!(value["field"], "first_name", "{value}");
    assert!(
        value["detail"]
            .as_str()
            .unwrap()
            .contains("1000 characters"),
        "{value}"
    );
    // The issue's own case: a 100,000-character first name.
    let (status, value) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/long-1",
        Some(&rosa),
        Some(serde_json::json!({ "first_name": "N".repeat(100_000), "phone": "+12015550142" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert_eq!(value["field"], "first_name", "{value}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM clients WHERE external_id = 'long-1'")
            .await,
        0
    );
    let (status, value) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/long-1",
        Some(&rosa),
        Some(serde_json::json!({ "first_name": "Nell", "phone": "+12015550142", "consent_sms": true })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{value}");
    let (status, value) = call(
        &app,
        Method::POST,
        "/api/v1/events",
        Some(&rosa),
        Some(serde_json::json!({ "external_id": "long-1", "kind": "check_in", "occurred_at": "2026-01-01", "note": "x".repeat(5_000) })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{value}");
    assert!(
        value["detail"]
            .as_str()
            .unwrap()
            .contains("note is 5000 characters"),
        "{value}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM engagement_events").await, 0);
}

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
