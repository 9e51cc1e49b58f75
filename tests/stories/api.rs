//! The JSON API as an agency's systems use it, on both backends.

use crate::common::*;
use axum::http::{Method, StatusCode};
use chrono::Duration;
use serde_json::{Value, json};

on_both_backends!(
    a_draft_with_error_findings_is_approved_only_when_confirmed,
    a_coach_sees_and_acts_on_their_own_clients_only,
    drafts_are_edited_snoozed_approved_and_rejected_through_the_api,
    clients_and_events_posted_through_the_api_act_like_csv_rows,
);

async fn a_coach_sees_and_acts_on_their_own_clients_only(app: TestApp) {
    let (rosa_draft, marcus_draft) = drafts_for_rosa_and_marcus(&app, "Jordan").await;
    let rosa = token(&app, COACH).await;

    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v1/drafts?status=pending",
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, _) = call(&app, Method::GET, "/api/v1/drafts", Some("rg_forged"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v1/drafts?status=pending",
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![rosa_draft]);

    // Marcus's draft and client are, for Rosa, as if they did not exist.
    for (method, path, payload) in [
        (Method::GET, format!("/api/v1/drafts/{marcus_draft}"), None),
        (
            Method::POST,
            format!("/api/v1/drafts/{marcus_draft}/approve"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/drafts/{marcus_draft}/reject"),
            Some(json!({"reason": "x"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/drafts/{marcus_draft}"),
            Some(json!({"body": "hi"})),
        ),
        (Method::GET, "/api/v1/clients/m-1".to_owned(), None),
        (
            Method::PUT,
            "/api/v1/clients/m-1".to_owned(),
            Some(json!({"first_name": "Mine", "phone": "+12015550199"})),
        ),
        (
            Method::POST,
            "/api/v1/events".to_owned(),
            Some(json!({"external_id": "m-1", "kind": "check_in", "occurred_at": "2026-01-01"})),
        ),
        (Method::GET, "/api/v1/drafts/999999".to_owned(), None),
    ] {
        let (status, body) = call(&app, method.clone(), &path, Some(&rosa), payload).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
        assert_eq!(body["error"], "not_found");
    }
    let untouched = app.message(marcus_draft).await;
    assert_eq!(
        (untouched.status.as_ref(), untouched.edited),
        ("pending", false)
    );

    // An admin sees everyone's.
    let admin = token(&app, ADMIN).await;
    let (_, body) = call(&app, Method::GET, "/api/v1/drafts", Some(&admin), None).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    let (_, body) = call(
        &app,
        Method::GET,
        "/api/v1/drafts?limit=1",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let after = body["next_after"].as_i64().expect("a next page");
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v1/drafts?limit=1&after={after}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v1/drafts?limit=5000",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("limit"))
    );
}

async fn drafts_are_edited_snoozed_approved_and_rejected_through_the_api(app: TestApp) {
    let (rosa_draft, marcus_draft) = drafts_for_rosa_and_marcus(&app, "Jordan").await;
    let rosa = token(&app, COACH).await;
    let marcus = token(&app, OTHER_COACH).await;
    let original = app.message(rosa_draft).await.body;

    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/drafts/{rosa_draft}"),
        Some(&rosa),
        Some(json!({"subject": "Hi", "body": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("subject")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/drafts/{rosa_draft}"),
        Some(&rosa),
        Some(json!({"body": "Hi Jordan, Rosa here. Thinking of you this week. Reply STOP to opt out."})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["edited"], true);
    assert_eq!(body["original_body"], original.as_str());
    assert!(
        body["body"]
            .as_str()
            .unwrap()
            .starts_with("Hi Jordan, Rosa here.")
    );

    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{rosa_draft}/snooze"),
        Some(&rosa),
        Some(json!({"until": "2020-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("until"))
    );
    let later = (chrono::Utc::now() + Duration::days(1)).to_rfc3339();
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{rosa_draft}/snooze"),
        Some(&rosa),
        Some(json!({"until": later})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["snoozed_until"].is_string());

    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{rosa_draft}/approve"),
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("approved"))
    );
    // Acting again on a draft that is no longer pending is a conflict.
    let admin = token(&app, ADMIN).await;
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{rosa_draft}/approve"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{marcus_draft}/reject"),
        Some(&marcus),
        Some(json!({"reason": "I called him today"})),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("rejected"))
    );

    // Sent once, with the edited words (tomorrow at 11:00 in New York).
    let tomorrow = (chrono::Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(15, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(app.dispatch(tomorrow).await.sent, 1);
    assert_eq!(app.dispatch(tomorrow + Duration::hours(1)).await.sent, 0);
    let sms: Value =
        serde_json::from_slice(&app.outbox_file(&format!("{rosa_draft}.json"))).unwrap();
    assert!(
        sms["body"]
            .as_str()
            .unwrap()
            .starts_with("Hi Jordan, Rosa here.")
    );
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 10).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.action.as_ref(), a.actor.as_str()))
        .collect();
    for expected in [
        ("edit", COACH),
        ("snooze", COACH),
        ("approve", COACH),
        ("reject", OTHER_COACH),
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} missing from {actions:?}"
        );
    }
}

async fn clients_and_events_posted_through_the_api_act_like_csv_rows(app: TestApp) {
    let rosa = token(&app, COACH).await;
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/api-1",
        Some(&rosa),
        Some(json!({"first_name": "Grace", "phone": "(201) 555-0142", "consent_sms": true, "consent_email": "yes"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["phone"], "+12015550142");
    assert_eq!(body["coach_email"], COACH);
    assert_eq!(body["preferred_channel"], "sms");

    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/api-1",
        Some(&rosa),
        Some(json!({"first_name": "Grace", "phone": "12", "consent_sms": true})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("phone")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/api-1",
        Some(&rosa),
        Some(json!({"first_name": "Grace", "phone": "+12015550142", "consent_sms": true, "coach_email": OTHER_COACH})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("coach_email"))
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/api-1",
        Some(&rosa),
        Some(json!({"first_name": "Gracie", "phone": "+12015550142", "consent_sms": true, "shoe_size": 9})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("shoe_size"),
        "{body}"
    );

    // Quiet since it was added: detection drafts; then an event through the API
    // cancels the draft exactly as a CSV row would.
    let later = chrono::Utc::now() + Duration::days(8);
    assert_eq!(app.detect(later).await.drafted, 1);
    let draft = app.pending().await.pop().unwrap();
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/events",
        Some(&rosa),
        Some(json!({"external_id": "api-1", "kind": "check_in", "occurred_at": chrono::Utc::now().to_rfc3339()})),
    )
    .await;
    assert_eq!(
        (status, body["re_engaged"].as_bool()),
        (StatusCode::CREATED, Some(true)),
        "{body}"
    );
    assert_eq!(app.message(draft.id).await.status, "cancelled");
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/events",
        Some(&rosa),
        Some(json!({"external_id": "api-1", "kind": "waved", "occurred_at": "2026-01-01"})),
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("kind")),
        "{body}"
    );

    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v1/clients/api-1",
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["last_engaged_at"].is_string());
    let (status, body) = call(&app, Method::GET, "/api/v1/sends", Some(&rosa), None).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
}

async fn a_draft_with_error_findings_is_approved_only_when_confirmed(app: TestApp) {
    let (rosa_draft, _) = drafts_for_rosa_and_marcus(&app, "Jordan").await;
    let rosa = token(&app, COACH).await;
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v1/drafts/{rosa_draft}"),
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(body["lint"], json!([]), "the shipped copy is clean");
    let (status, body) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/drafts/{rosa_draft}"),
        Some(&rosa),
        Some(json!({"body": "Jordan, this is your last chance, you missed 3 sessions."})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let rules: Vec<(&str, &str)> = body["lint"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["severity"].as_str().unwrap()))
        .collect();
    for expected in [
        ("punitive", "error"),
        ("sms_opt_out", "error"),
        ("blame", "error"),
        ("dwelling", "warning"),
    ] {
        assert!(rules.contains(&expected), "{expected:?} not in {rules:?}");
    }
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{rosa_draft}/approve"),
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(
        (status, body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("confirm")),
        "{body}"
    );
    assert_eq!(app.message(rosa_draft).await.status, "pending");
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{rosa_draft}/approve?confirm=true"),
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 5).await.unwrap();
    let approve = audit.iter().find(|a| a.action == "approve").unwrap();
    assert!(
        approve
            .detail
            .as_deref()
            .unwrap()
            .contains("despite 3 error finding"),
        "{:?}",
        approve.detail
    );
    drop(conn);

    // A lint column that does not read is an error finding, not "no findings".
    let marcus_draft = {
        let mut conn = app.ctx.store.conn().await.unwrap();
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM messages WHERE status = 'pending' LIMIT 1")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
        sqlx::query("UPDATE messages SET lint = 'not json' WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .unwrap();
        id
    };
    let admin = token(&app, ADMIN).await;
    let (_, body) = call(
        &app,
        Method::GET,
        &format!("/api/v1/drafts/{marcus_draft}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["lint"][0]["rule"], "lint_unreadable", "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        &format!("/api/v1/drafts/{marcus_draft}/approve"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "confirm");
}
