//! The unsubscribe link in every email, on both backends.

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Duration;
use reengage::store::clients;
use tower::ServiceExt as _;

on_both_backends!(
    one_click_opts_out_and_cancels_the_unsent_email,
    a_person_confirms_on_the_page_and_a_tampered_link_changes_nothing,
);

async fn send(app: &TestApp, request: Request<Body>) -> (StatusCode, String) {
    let response = reengage::web::router(app.ctx.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// An email client with an approved draft; returns (client id, draft id, token).
async fn email_client(app: &TestApp) -> (i64, i64, String) {
    let now = chrono::Utc::now();
    app.import_clients(
        &clients_csv(&[ClientCsv {
            channel: "email",
            first_name: "Grace",
            ..Default::default()
        }]),
        now - Duration::days(10),
    )
    .await;
    app.detect(now).await;
    let draft = app.pending().await.pop().unwrap();
    app.approve(draft.id, COACH, now).await.unwrap();
    let mut conn = app.ctx.store.conn().await.unwrap();
    let client = clients::by_external_id(&mut conn, "c-1")
        .await
        .unwrap()
        .unwrap();
    // The link is the one in the email's body.
    let token = draft
        .body
        .split("/unsubscribe/")
        .nth(1)
        .expect("the body carries the unsubscribe link")
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    (client.id, draft.id, token)
}

async fn opted_out(app: &TestApp, id: i64) -> bool {
    let mut conn = app.ctx.store.conn().await.unwrap();
    clients::by_id(&mut conn, id)
        .await
        .unwrap()
        .unwrap()
        .opted_out_email_at
        .is_some()
}

async fn one_click_opts_out_and_cancels_the_unsent_email(app: TestApp) {
    let (client, draft, token) = email_client(&app).await;
    let one_click = || {
        Request::post(format!("/unsubscribe/{token}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("List-Unsubscribe=One-Click"))
            .unwrap()
    };
    let (status, body) = send(&app, one_click()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Done"));
    assert!(
        !body.contains("Grace") && !body.contains("jordan@example.org"),
        "no client data"
    );
    assert!(opted_out(&app, client).await);
    assert_eq!(app.message(draft).await.status, "cancelled");
    // Again: still a success, nothing new.
    assert_eq!(send(&app, one_click()).await.0, StatusCode::OK);
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 10).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "opt_out").count(), 1);
}

async fn a_person_confirms_on_the_page_and_a_tampered_link_changes_nothing(app: TestApp) {
    let (client, _, token) = email_client(&app).await;
    let (status, page) = send(
        &app,
        Request::get(format!("/unsubscribe/{token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Stop these emails?")
            && page.contains(&format!("action=\"/unsubscribe/{token}\""))
    );
    assert!(!opted_out(&app, client).await, "a GET changes nothing");

    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    for request in [
        Request::get(format!("/unsubscribe/{tampered}"))
            .body(Body::empty())
            .unwrap(),
        Request::post(format!("/unsubscribe/{tampered}"))
            .body(Body::empty())
            .unwrap(),
        Request::post("/unsubscribe/not-a-token")
            .body(Body::empty())
            .unwrap(),
    ] {
        assert_eq!(send(&app, request).await.0, StatusCode::NOT_FOUND);
    }
    assert!(!opted_out(&app, client).await);

    let (status, _) = send(
        &app,
        Request::post(format!("/unsubscribe/{token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(opted_out(&app, client).await);
}
