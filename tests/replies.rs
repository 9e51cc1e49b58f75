//! Replies from clients through the inbound webhook, on both backends.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Duration;
use common::*;
use reengage::channels::twilio::signature;
use reengage::store::clients;
use tower::ServiceExt as _;

on_both_backends!(
    with settings;
    stop_in_any_form_opts_out_and_start_opts_back_in,
    help_answers_with_the_help_text_and_a_plain_reply_is_engagement,
    a_crisis_reply_holds_the_client_alerts_the_coach_and_sends_resources_once,
    an_unknown_number_is_stored_unmatched_and_a_forged_request_changes_nothing,
);

const URL: &str = "http://127.0.0.1:8080/webhooks/twilio/inbound";

/// SMS through a Twilio-compatible API (not reached here), crisis resources on.
fn settings() -> String {
    format!(
        "{}[crisis]\nauto_reply = true\n",
        twilio_settings("http://127.0.0.1:9")
    )
}

async fn post_sms(
    app: &TestApp,
    from: &str,
    body: &str,
    sid: &str,
    forge: bool,
) -> (StatusCode, String) {
    let params: Vec<(String, String)> = [
        ("From", from),
        ("To", "+12015550100"),
        ("Body", body),
        ("MessageSid", sid),
        ("NumMedia", "0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let token = if forge {
        "someone-else"
    } else {
        "test-auth-token"
    };
    let sig = signature::sign(token, URL, &params);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let response = reengage::web::router(app.ctx.clone())
        .oneshot(
            Request::post("/webhooks/twilio/inbound")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", sig)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Client c-1 (phone +12015550123) with a pending SMS draft.
async fn quiet_client(app: &TestApp) -> i64 {
    let now = chrono::Utc::now();
    app.import_clients(
        &clients_csv(&[ClientCsv::default()]),
        now - Duration::days(10),
    )
    .await;
    app.detect(now).await;
    app.pending().await.pop().unwrap().id
}

async fn client(app: &TestApp) -> clients::ClientRow {
    client_by(app, "c-1").await
}

async fn stop_in_any_form_opts_out_and_start_opts_back_in(app: TestApp) {
    let forms = [
        "STOP",
        "Stop.",
        "stop",
        "please stop texting me",
        "Don’t text me anymore",
    ];
    let now = chrono::Utc::now();
    let phones: Vec<String> = (0..forms.len())
        .map(|i| format!("+1201555014{i}"))
        .collect();
    let rows: Vec<ClientCsv> = phones
        .iter()
        .enumerate()
        .map(|(i, phone)| ClientCsv {
            external_id: ["s-0", "s-1", "s-2", "s-3", "s-4"][i],
            phone,
            ..Default::default()
        })
        .collect();
    app.import_clients(&clients_csv(&rows), now - Duration::days(10))
        .await;
    app.detect(now).await;
    let drafts = app.pending().await;
    for (i, stop) in forms.into_iter().enumerate() {
        let external_id = format!("s-{i}");
        let draft = drafts
            .iter()
            .find(|d| d.client_external_id == external_id)
            .unwrap()
            .id;
        let (status, twiml) = post_sms(&app, &phones[i], stop, &format!("SM{i}"), false).await;
        assert_eq!(status, StatusCode::OK, "{stop}");
        assert!(twiml.starts_with("<?xml"), "{twiml}");
        assert!(
            client_by(&app, &external_id)
                .await
                .opted_out_sms_at
                .is_some(),
            "{stop} did not opt out"
        );
        assert_eq!(app.message(draft).await.status, "cancelled", "{stop}");
        if stop.split_whitespace().count() > 1 {
            // Words of the client's own: one confirmation from us.
            assert!(twiml.contains("<Message>You won"), "{twiml}");
        } else {
            assert!(
                twiml.contains("<Response/>"),
                "the provider confirms a keyword itself: {twiml}"
            );
        }
        let (_, twiml) = post_sms(&app, &phones[i], "START", &format!("SM{i}b"), false).await;
        assert!(twiml.contains("<Response/>"));
        assert!(
            client_by(&app, &external_id)
                .await
                .opted_out_sms_at
                .is_none(),
            "START opts back in"
        );
    }
}

async fn client_by(app: &TestApp, external_id: &str) -> clients::ClientRow {
    let mut conn = app.ctx.store.conn().await.unwrap();
    clients::by_external_id(&mut conn, external_id)
        .await
        .unwrap()
        .unwrap()
}

async fn help_answers_with_the_help_text_and_a_plain_reply_is_engagement(app: TestApp) {
    let draft = quiet_client(&app).await;
    let (_, twiml) = post_sms(&app, "+12015550123", "help", "SMh", false).await;
    assert!(twiml.contains("Msg&amp;data rates may apply"), "{twiml}");
    assert!(twiml.contains("Riverside Coaching"));
    assert_eq!(
        app.message(draft).await.status,
        "pending",
        "HELP is not engagement"
    );

    let (_, twiml) = post_sms(
        &app,
        "+12015550123",
        "hey, doing a bit better this week",
        "SMr",
        false,
    )
    .await;
    assert!(twiml.contains("<Response/>"));
    assert_eq!(
        app.message(draft).await.status,
        "cancelled",
        "a reply closes the spell"
    );
    assert!(client(&app).await.last_engaged_at.is_some());
    // The same delivery again is not acted on twice.
    post_sms(
        &app,
        "+12015550123",
        "hey, doing a bit better this week",
        "SMr",
        false,
    )
    .await;
    let mut conn = app.ctx.store.conn().await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(stored, 2);
}

async fn a_crisis_reply_holds_the_client_alerts_the_coach_and_sends_resources_once(app: TestApp) {
    // Alerts go through the channels; here the outbox stands in for both.
    let settings = reengage::config::Settings::load(Some(&app.config), None).unwrap();
    let mut ctx = app.ctx.clone();
    ctx.channels.sms = std::sync::Arc::new(reengage::channels::outbox::OutboxSms::new(
        app.outbox.clone(),
        settings.sms.from.clone(),
    ));
    let app = TestApp { ctx, ..app };
    {
        let mut conn = app.ctx.store.conn().await.unwrap();
        sqlx::query("UPDATE coaches SET phone = '+12015550155' WHERE email = $1")
            .bind(COACH)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let draft = quiet_client(&app).await;
    let words = "honestly i cant go on, took 40 mg tonight";
    let (status, twiml) = post_sms(&app, "+12015550123", words, "SMc1", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        twiml.contains("988") && twiml.contains("911") && twiml.contains("1-800-662-4357"),
        "{twiml}"
    );
    assert_eq!(client(&app).await.status, "hold");
    assert_eq!(app.message(draft).await.status, "cancelled");
    let files = app.outbox_files();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("alert-") && f.ends_with(".eml")),
        "{files:?}"
    );
    let sms_alert = files
        .iter()
        .find(|f| f.starts_with("alert-") && f.ends_with(".json"))
        .expect("an SMS alert");
    let alert: serde_json::Value = serde_json::from_slice(&app.outbox_file(sms_alert)).unwrap();
    assert_eq!(alert["to"], "+12015550155");
    let alert_text = alert["body"].as_str().unwrap();
    assert!(alert_text.contains("needs you now") && alert_text.contains("/replies"));
    assert!(
        !alert_text.contains("go on") && !alert_text.contains("mg"),
        "no reply words in the alert"
    );

    // A second crisis message: alerted again, but no second resources message.
    let (_, twiml) = post_sms(&app, "+12015550123", "i want to die", "SMc2", false).await;
    assert!(twiml.contains("<Response/>"), "{twiml}");
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 20).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "crisis_hold"));
    assert_eq!(
        audit.iter().filter(|a| a.action == "crisis_alert").count(),
        2
    );
    drop(conn);
    let health = reengage::web::router(app.ctx.clone())
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

async fn an_unknown_number_is_stored_unmatched_and_a_forged_request_changes_nothing(app: TestApp) {
    let draft = quiet_client(&app).await;
    let (status, _) = post_sms(&app, "+12015550123", "STOP", "SMf", true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(client(&app).await.opted_out_sms_at.is_none());
    assert_eq!(app.message(draft).await.status, "pending");
    let (status, twiml) = post_sms(&app, "+12015550999", "who is this?", "SMu", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(twiml.contains("<Response/>"));
    let mut conn = app.ctx.store.conn().await.unwrap();
    let rows: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT from_addr, client_id FROM inbound")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    assert_eq!(rows, vec![("+12015550999".to_owned(), None)]);
}
