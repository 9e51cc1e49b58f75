//! Real delivery: email to postfix's smtp-sink, SMS to a Twilio-compatible mock,
//! delivery callbacks, pace, and two dispatchers at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::common::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Duration;
use reengage::app::channels::twilio::signature;
use reengage::app::channels::{Delivery, Outgoing, Transport};
use reengage::domain::{LogEvent, SendOutcome};
use reengage::pipeline::review::{self, InDoubtDecision};
use reengage::store::clients;
use tower::ServiceExt as _;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn now() -> chrono::DateTime<chrono::Utc> {
    at("2026-06-01T15:00:00Z") // 11:00 in New York
}

/// One approved email for a discreet client, through `sink`.
async fn one_email(sink: &SmtpSink, extra: &str) -> (TestApp, i64) {
    let app = TestApp::sqlite_with(&format!("{}{extra}", sink.settings())).await;
    let csv = clients_csv(&[ClientCsv {
        channel: "email",
        ..Default::default()
    }])
    .replace(",no,active", ",yes,active");
    app.import_clients(&csv, now() - Duration::days(10)).await;
    app.detect(now()).await;
    let draft = app.pending().await.pop().expect("a draft");
    app.approve(draft.id, COACH, now()).await.unwrap();
    (app, draft.id)
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn email_arrives_with_its_message_id_reply_to_and_one_click_unsubscribe() {
    let sink = SmtpSink::start(&[]);
    let (app, id) = one_email(&sink, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.sent, 1, "{summary}");
    let received = sink.messages();
    assert_eq!(received.len(), 1);
    let parsed = mail_parser::MessageParser::default()
        .parse(&received[0])
        .unwrap();
    let stored = app.message(id).await;
    assert_eq!(
        parsed.message_id().map(|m| format!("<{m}>")),
        stored.provider_message_id
    );
    assert_eq!(
        parsed
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(COACH)
    );
    // A discreet client: the neutral sender name, the same address.
    let from = parsed.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some("Check-in"));
    assert_eq!(from.address(), Some("coach@example.org"));
    let unsubscribe = parsed
        .header_raw("List-Unsubscribe")
        .expect("a List-Unsubscribe header")
        .trim()
        .to_owned();
    assert!(
        unsubscribe.starts_with("<http://127.0.0.1:8080/unsubscribe/")
            && unsubscribe.ends_with('>'),
        "{unsubscribe}"
    );
    let token = unsubscribe
        .trim_start_matches("<http://127.0.0.1:8080/unsubscribe/")
        .trim_end_matches('>');
    let mut conn = app.ctx.store.conn().await.unwrap();
    let client = clients::by_external_id(&mut conn, "c-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.ctx.unsubscribe.verify(token), Some(client.id));
    assert_eq!(
        parsed.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(parsed.body_html(0).is_some() && parsed.body_text(0).is_some());
    // The body's link is the same signed link.
    assert!(parsed.body_text(0).unwrap().contains(token));
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn a_4xx_reply_is_retried_later_and_then_succeeds() {
    let port = free_port();
    let sink = SmtpSink::start_on(port, &["-r", "rcpt"]);
    let (app, id) = one_email(&sink, "").await;
    let first = app.dispatch(now()).await;
    assert_eq!(first.retry, 1, "{first}");
    let log = app.send_log().await;
    assert_eq!(log[0].outcome, Some(SendOutcome::Retry));
    assert!(
        log[0].code.as_deref().unwrap().starts_with('4'),
        "{:?}",
        log[0]
    );
    assert_eq!(app.message(id).await.status, "approved");
    // Not due again at once: backoff.
    assert_eq!(app.dispatch(now()).await.retry, 0);
    sink.stop();
    let sink = SmtpSink::start_on(port, &[]);
    let later = app.dispatch(now() + Duration::minutes(5)).await;
    assert_eq!(later.sent, 1, "{later}");
    assert_eq!(sink.messages().len(), 1);
    let log = app.send_log().await;
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].attempt, log[1].outcome),
        (2, Some(SendOutcome::Sent))
    );
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn a_5xx_reply_fails_the_message_with_the_smtp_code() {
    let sink = SmtpSink::start(&["-f", "rcpt"]);
    let (app, id) = one_email(&sink, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.failed, 1, "{summary}");
    let message = app.message(id).await;
    assert_eq!(message.status, "failed");
    let log = app.send_log().await;
    assert_eq!(log[0].outcome, Some(SendOutcome::Failed));
    assert!(
        log[0].code.as_deref().unwrap().starts_with('5'),
        "{:?}",
        log[0]
    );
    assert!(sink.messages().is_empty());
    // A refusal of this message is no verdict on the address.
    assert!(client_email_ok(&app).await);
}

async fn client_email_ok(app: &TestApp) -> bool {
    let mut conn = app.ctx.store.conn().await.unwrap();
    clients::by_external_id(&mut conn, "c-1")
        .await
        .unwrap()
        .unwrap()
        .email_problem
        .is_none()
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn a_full_mailbox_is_soft_even_in_a_5xx_reply() {
    let sink = SmtpSink::start(&[
        "-f",
        "rcpt",
        "-B",
        "552 5.2.2 <jordan@example.org>: Mailbox full",
    ]);
    let (app, id) = one_email(&sink, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.retry, 1, "{summary}");
    assert_eq!(app.message(id).await.status, "approved");
    assert!(client_email_ok(&app).await);
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn a_server_that_says_the_mailbox_does_not_exist_stops_email_to_it() {
    let sink = SmtpSink::start(&[
        "-f",
        "rcpt",
        "-B",
        "550 5.1.1 <jordan@example.org>: Recipient address rejected: User unknown",
    ]);
    let (app, id) = one_email(&sink, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.failed, 1, "{summary}");
    assert_eq!(app.message(id).await.status, "failed");
    assert!(
        !client_email_ok(&app).await,
        "the address is marked bounced"
    );
    // The next step goes by SMS instead.
    app.detect(now() + Duration::days(7)).await;
    let next = app.pending().await;
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].channel, reengage::domain::Channel::Sms);
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn a_connection_dropped_after_data_leaves_the_email_in_doubt_for_a_coach() {
    let sink = SmtpSink::start(&["-q", "."]);
    let (app, id) = one_email(&sink, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.in_doubt, 1, "{summary}");
    assert_eq!(app.message(id).await.status, "in_doubt");
    // Never resent on its own.
    let later = app.dispatch(now() + Duration::hours(2)).await;
    assert_eq!((later.sent, later.retry, later.in_doubt), (0, 0, 0));
    assert_eq!(app.send_log().await.len(), 1);
    // A coach decides: resolve marks it sent, and the audit log says who.
    let coach = review::acting_coach(&app.ctx, COACH).await.unwrap();
    let other = review::acting_coach(&app.ctx, OTHER_COACH).await.unwrap();
    let refused =
        review::decide_in_doubt(&app.ctx, &other, id, InDoubtDecision::Resolve, now()).await;
    assert!(
        matches!(refused, Err(review::ActionError::NotYours { .. })),
        "{refused:?}"
    );
    assert_eq!(app.message(id).await.status, "in_doubt");
    review::decide_in_doubt(&app.ctx, &coach, id, InDoubtDecision::Resolve, now())
        .await
        .unwrap();
    assert_eq!(app.message(id).await.status, "sent");
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 5).await.unwrap();
    assert_eq!(
        (audit[0].action.as_ref(), audit[0].actor.as_str()),
        ("resolve_sent", COACH)
    );
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn a_421_and_disconnect_is_retried_and_a_coach_can_resend_an_email_in_doubt() {
    let port = free_port();
    let sink = SmtpSink::start_on(port, &["-Q", "mail"]);
    let (app, id) = one_email(&sink, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.retry, 1, "{summary}");
    assert_eq!(app.send_log().await[0].code.as_deref(), Some("421"));
    sink.stop();

    // Then a drop after DATA: in doubt; the coach chooses to resend.
    let sink = SmtpSink::start_on(port, &["-q", "."]);
    let dropped = app.dispatch(now() + Duration::minutes(5)).await;
    assert_eq!(dropped.in_doubt, 1, "{dropped} {:?}", app.send_log().await);
    sink.stop();
    let sink = SmtpSink::start_on(port, &[]);
    let coach = review::acting_coach(&app.ctx, COACH).await.unwrap();
    let resend_at = now() + Duration::minutes(10);
    review::decide_in_doubt(&app.ctx, &coach, id, InDoubtDecision::Resend, resend_at)
        .await
        .unwrap();
    assert_eq!(app.dispatch(resend_at).await.sent, 1);
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(app.message(id).await.attempts, 3);
}

#[tokio::test]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn a_connection_dropped_before_the_message_went_is_a_retry() {
    let port = free_port();
    let sink = SmtpSink::start_on(port, &["-q", "rcpt"]);
    let (app, id) = one_email(&sink, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.retry, 1, "{summary}");
    assert_eq!(app.message(id).await.status, "approved");
    sink.stop();
    let sink = SmtpSink::start_on(port, &[]);
    assert_eq!(app.dispatch(now() + Duration::minutes(5)).await.sent, 1);
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn no_smtp_server_at_all_is_a_retry() {
    let port = free_port();
    let app = TestApp::sqlite_with(&format!(
        "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\ntimeout_seconds = 2\n"
    ))
    .await;
    app.import_clients(
        &clients_csv(&[ClientCsv {
            channel: "email",
            ..Default::default()
        }]),
        now() - Duration::days(10),
    )
    .await;
    app.detect(now()).await;
    let draft = app.pending().await.pop().unwrap();
    app.approve(draft.id, COACH, now()).await.unwrap();
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.retry, 1, "{summary}");
    assert_eq!(app.message(draft.id).await.status, "approved");
}

/// An app sending SMS to `server`, with one approved SMS draft.
async fn one_sms(server: &MockServer, extra: &str) -> (TestApp, i64) {
    let app = TestApp::sqlite_with(&format!("{}{extra}", twilio_settings(&server.uri()))).await;
    app.import_clients(
        &clients_csv(&[ClientCsv::default()]),
        now() - Duration::days(10),
    )
    .await;
    app.detect(now()).await;
    let draft = app.pending().await.pop().unwrap();
    app.approve(draft.id, COACH, now()).await.unwrap();
    (app, draft.id)
}

fn messages_path() -> wiremock::matchers::PathRegexMatcher {
    path_regex(r"^/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages\.json$")
}

fn twilio_error(status: u16, code: i64) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(serde_json::json!({
        "code": code, "message": "error from the mock", "status": status
    }))
}

#[tokio::test]
async fn an_sms_is_posted_as_twilio_expects_and_its_sid_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .and(wiremock::matchers::header_exists("authorization"))
        .respond_with(ResponseTemplate::new(201).set_body_json(serde_json::json!({
            "sid": "SM0123456789abcdef0123456789abcdef", "status": "queued",
            "error_code": null, "error_message": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (app, id) = one_sms(&server, "").await;
    assert_eq!(app.dispatch(now()).await.sent, 1);
    let message = app.message(id).await;
    assert_eq!(
        message.provider_message_id.as_deref(),
        Some("SM0123456789abcdef0123456789abcdef")
    );
    let request = &server.received_requests().await.unwrap()[0];
    let form: HashMap<String, String> = url::form_urlencoded::parse(&request.body)
        .into_owned()
        .collect();
    assert_eq!(form["To"], "+12015550123");
    assert_eq!(form["From"], "+12015550100");
    assert_eq!(form["Body"], message.body);
    assert_eq!(
        form["StatusCallback"],
        "http://127.0.0.1:8080/webhooks/twilio/status"
    );
    let auth = request
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(auth.starts_with("Basic "), "{auth}");
}

#[tokio::test]
async fn a_429_is_retried_and_then_sent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(twilio_error(429, 20429))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SMabc", "status": "queued"})),
        )
        .mount(&server)
        .await;
    let (app, id) = one_sms(&server, "").await;
    assert_eq!(app.dispatch(now()).await.retry, 1);
    assert_eq!(app.dispatch(now() + Duration::minutes(5)).await.sent, 1);
    let log = app.send_log().await;
    assert_eq!(
        log.iter().map(|l| l.outcome).collect::<Vec<_>>(),
        [Some(SendOutcome::Retry), Some(SendOutcome::Sent)]
    );
    assert_eq!(log[0].code.as_deref(), Some("20429"));
    assert_eq!(app.message(id).await.status, "sent");
}

#[tokio::test]
async fn a_21610_fails_the_message_and_opts_the_client_out_of_sms() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(twilio_error(400, 21610))
        .mount(&server)
        .await;
    let (app, id) = one_sms(&server, "").await;
    assert_eq!(app.dispatch(now()).await.failed, 1);
    assert_eq!(app.message(id).await.status, "failed");
    assert_eq!(app.send_log().await[0].code.as_deref(), Some("21610"));
    let mut conn = app.ctx.store.conn().await.unwrap();
    let client = clients::by_external_id(&mut conn, "c-1")
        .await
        .unwrap()
        .unwrap();
    assert!(client.opted_out_sms_at.is_some());
    drop(conn);
    // The next step goes by email, never by SMS again.
    let summary = app.detect(now() + Duration::days(8)).await;
    assert_eq!(summary.drafted, 1, "{summary}");
    assert_eq!(app.pending().await[0].channel, "email");
}

#[tokio::test]
async fn a_500_is_in_doubt_then_reconciled_as_sent_when_the_provider_has_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let (app, id) = one_sms(&server, "").await;
    assert_eq!(app.dispatch(now()).await.in_doubt, 1);
    let body = app.message(id).await.body;
    Mock::given(method("GET"))
        .and(messages_path())
        .and(wiremock::matchers::query_param("To", "+12015550123"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "messages": [
                {"sid": "SMother", "to": "+12015550123", "body": "something else"},
                {"sid": "SMfound", "to": "+12015550123", "body": body}
            ]
        })))
        .mount(&server)
        .await;
    let summary = app.dispatch(now() + Duration::minutes(1)).await;
    assert_eq!((summary.reconciled_sent, summary.sent), (1, 0), "{summary}");
    let message = app.message(id).await;
    assert_eq!(
        (
            message.status.as_ref(),
            message.provider_message_id.as_deref()
        ),
        ("sent", Some("SMfound"))
    );
    // One POST only: never sent twice.
    let posts = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method == wiremock::http::Method::POST)
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn a_500_not_found_at_the_provider_is_sent_again() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SMsecond", "status": "queued"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(messages_path())
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"messages": []})))
        .mount(&server)
        .await;
    let (app, id) = one_sms(&server, "").await;
    assert_eq!(app.dispatch(now()).await.in_doubt, 1);
    let summary = app.dispatch(now() + Duration::minutes(1)).await;
    assert_eq!(
        (summary.reconciled_retry, summary.sent),
        (1, 1),
        "{summary}"
    );
    assert_eq!(
        app.message(id).await.provider_message_id.as_deref(),
        Some("SMsecond")
    );
    let events: Vec<LogEvent> = app.send_log().await.into_iter().map(|l| l.event).collect();
    assert_eq!(
        events,
        [LogEvent::Attempt, LogEvent::Reconcile, LogEvent::Attempt]
    );
}

#[tokio::test]
async fn a_timeout_is_in_doubt() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(ResponseTemplate::new(201).set_delay(std::time::Duration::from_secs(4)))
        .mount(&server)
        .await;
    let (app, id) = one_sms(&server, "").await;
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.in_doubt, 1, "{summary}");
    assert_eq!(app.message(id).await.status, "in_doubt");
}

#[tokio::test]
async fn refused_credentials_pause_the_sms_channel_without_burning_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(twilio_error(401, 20003))
        .expect(1)
        .mount(&server)
        .await;
    // One SMS at a time, so that exactly one request meets the refusal.
    let settings = twilio_settings(&server.uri()).replace(
        "transport = \"twilio\"",
        "transport = \"twilio\"\nconcurrency = 1",
    );
    let app = TestApp::sqlite_with(&settings).await;
    let ids = approved_messages(&app, 4, now()).await;
    let summary = app.dispatch(now()).await;
    // The two emails go; the first SMS meets the refusal, and no other SMS is tried.
    assert_eq!(summary.sent, 2, "{summary}");
    for id in &ids {
        let m = app.message(*id).await;
        if m.channel == "sms" {
            assert_eq!(
                (m.status.as_ref(), m.attempts),
                ("approved", 0),
                "message {id}"
            );
        }
    }
    assert!(app.ctx.channels.is_paused(reengage::domain::Channel::Sms));
    assert_eq!(app.dispatch(now() + Duration::minutes(1)).await.sent, 0);

    let router = reengage::web::router(app.ctx.clone());
    let health = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = body_text(health).await;
    assert!(
        text.contains("sms channel paused") && text.contains("sms.twilio.auth_token"),
        "{text}"
    );
    assert!(!text.contains("test-auth-token"));
    let metrics = router
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = body_text(metrics).await;
    assert!(
        text.contains("reengage_channel_paused{channel=\"sms\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("reengage_send_log_rows{channel=\"email\",outcome=\"sent\"} 2"),
        "{text}"
    );
    // Counted by this process as it sent, beside the send log's rows.
    assert!(
        text.contains("reengage_send_attempts_total{channel=\"email\",outcome=\"sent\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("reengage_build_info{version=\"")
            && text.contains("# TYPE reengage_send_log_rows gauge"),
        "{text}"
    );
}

async fn body_text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8_lossy(&bytes).into_owned()
}

fn form(params: &[(&str, &str)]) -> (Vec<(String, String)>, String) {
    let owned: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(owned.iter())
        .finish();
    (owned, body)
}

async fn post_status(
    app: &TestApp,
    params: &[(&str, &str)],
    signed_url: &str,
    forge: bool,
) -> StatusCode {
    let (owned, body) = form(params);
    let mut sig = signature::sign("test-auth-token", signed_url, &owned);
    if forge {
        sig = signature::sign("not-the-token", signed_url, &owned);
    }
    reengage::web::router(app.ctx.clone())
        .oneshot(
            Request::post("/webhooks/twilio/status")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", sig)
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn delivery_callbacks_are_verified_and_never_move_a_status_backwards() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(messages_path())
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"sid": "SMcb", "status": "queued"})),
        )
        .mount(&server)
        .await;
    let (app, id) = one_sms(&server, "").await;
    app.dispatch(now()).await;
    let url = "http://127.0.0.1:8080/webhooks/twilio/status";
    let delivered = [
        ("MessageSid", "SMcb"),
        ("MessageStatus", "delivered"),
        ("AccountSid", "AC0123"),
    ];

    assert_eq!(
        post_status(&app, &delivered, url, true).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post_status(
            &app,
            &delivered,
            "https://attacker.example/webhooks/twilio/status",
            false
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(app.message(id).await.delivery_status, None);
    let unsigned = reengage::web::router(app.ctx.clone())
        .oneshot(
            Request::post("/webhooks/twilio/status")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(form(&delivered).1))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::FORBIDDEN);

    assert_eq!(
        post_status(&app, &delivered, url, false).await,
        StatusCode::OK
    );
    let message = app.message(id).await;
    assert_eq!(
        (message.status.as_ref(), message.delivery_status.as_deref()),
        ("delivered", Some("delivered"))
    );
    // A late `sent` arrives after `delivered`: nothing moves back.
    let late = [("MessageSid", "SMcb"), ("MessageStatus", "sent")];
    assert_eq!(post_status(&app, &late, url, false).await, StatusCode::OK);
    assert_eq!(
        app.message(id).await.delivery_status.as_deref(),
        Some("delivered")
    );
    // An unknown sid is answered 200 and changes nothing.
    let unknown = [
        ("MessageSid", "SMnobody"),
        ("MessageStatus", "failed"),
        ("ErrorCode", "30003"),
    ];
    assert_eq!(
        post_status(&app, &unknown, url, false).await,
        StatusCode::OK
    );
    let callbacks: Vec<_> = app
        .send_log()
        .await
        .into_iter()
        .filter(|l| l.event == "callback")
        .map(|l| l.delivery_status.unwrap())
        .collect();
    assert_eq!(callbacks, ["delivered", "sent"]);
}

/// Records when each SMS attempt was scheduled, as the transport sees it.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(i64, chrono::DateTime<chrono::Utc>)>>,
}

#[async_trait::async_trait]
impl Transport for Recorder {
    async fn deliver(&self, message: &Outgoing) -> Delivery {
        self.seen
            .lock()
            .unwrap()
            .push((message.message_id, message.attempted_at));
        Delivery::Sent {
            provider_id: format!("rec-{}", message.message_id),
        }
    }
}

#[tokio::test]
async fn at_five_per_second_fifty_sms_start_at_least_200_ms_apart() {
    let server = MockServer::start().await;
    FakeTwilio::default().mount(&server).await;
    let settings =
        twilio_settings(&server.uri()).replace("max_per_second = 0", "max_per_second = 5");
    let mut app = TestApp::sqlite_with(&settings).await;
    approved_messages(&app, 100, now()).await;
    // The clock stands still: pacing computes the schedule without sleeping.
    app.ctx.clock = reengage::app::clock::Clock::Fixed(now());
    let recorder = Arc::new(Recorder::default());
    app.ctx.channels.sms = recorder.clone();
    let summary = app.dispatch(now()).await;
    assert_eq!(summary.sent, 100, "{summary}");
    let mut times: Vec<_> = recorder
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(times.len(), 50);
    times.sort();
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= Duration::milliseconds(200), "{pair:?}");
    }
    // The send log shows the same schedule: at most 5 SMS start in any second.
    let mut per_second: HashMap<i64, usize> = HashMap::new();
    for entry in app
        .send_log()
        .await
        .into_iter()
        .filter(|l| l.channel == "sms")
    {
        *per_second.entry(entry.started_at.timestamp()).or_default() += 1;
    }
    assert!(per_second.values().all(|n| *n <= 5), "{per_second:?}");
    assert_eq!(per_second.len(), 10);
}

/// Counts deliveries per message across dispatchers.
#[derive(Default)]
struct Counter {
    sends: Mutex<HashMap<i64, usize>>,
}

#[async_trait::async_trait]
impl Transport for Counter {
    async fn deliver(&self, message: &Outgoing) -> Delivery {
        *self
            .sends
            .lock()
            .unwrap()
            .entry(message.message_id)
            .or_default() += 1;
        tokio::task::yield_now().await;
        Delivery::Sent {
            provider_id: format!("count-{}", message.message_id),
        }
    }
}

on_both_backends!(two_dispatchers_at_once_never_send_a_message_twice);

async fn two_dispatchers_at_once_never_send_a_message_twice(app: TestApp) {
    let ids = approved_messages(&app, 300, now()).await;
    let settings = reengage::app::config::Settings::load(Some(&app.config), None).unwrap();
    let mut first = app.ctx.clone();
    let mut second = reengage::app::context::AppContext::build(settings)
        .await
        .unwrap();
    let counter = Arc::new(Counter::default());
    for ctx in [&mut first, &mut second] {
        ctx.channels.email = counter.clone();
        ctx.channels.sms = counter.clone();
    }
    let (a, b) = tokio::join!(
        reengage::pipeline::dispatch::run_once(&first, now()),
        reengage::pipeline::dispatch::run_once(&second, now())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.sent + b.sent, 300, "{a} / {b}");
    let sends = counter.sends.lock().unwrap().clone();
    assert_eq!(sends.len(), 300);
    assert!(sends.values().all(|n| *n == 1));
    for id in ids {
        assert!(sends.contains_key(&id));
    }
    assert_eq!(app.send_log().await.len(), 300);
}
