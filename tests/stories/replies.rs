//! Replies from clients through the inbound webhook, on both backends.

use crate::common::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use reengage::app::channels::twilio::signature;
use reengage::pipeline::review::ActionError;
use reengage::store::clients;
use tower::ServiceExt as _;

on_both_backends!(
    with settings;
    stop_in_any_form_opts_out_and_start_opts_back_in,
    help_answers_with_the_help_text_and_a_plain_reply_is_engagement,
    a_crisis_reply_holds_the_client_alerts_the_coach_and_sends_resources_once,
    an_unknown_number_is_stored_unmatched_and_a_forged_request_changes_nothing,
);

on_both_backends!(with tight_webhook_limit; forged_webhooks_are_limited_and_real_replies_never_are);

fn tight_webhook_limit() -> String {
    format!("{}[http.rate_limit]\nwebhooks_per_minute = 2\n", settings())
}

/// `request`, as if from `peer`.
fn from_peer(mut request: Request<Body>, peer: &str) -> Request<Body> {
    request.extensions_mut().insert(axum::extract::ConnectInfo(
        peer.parse::<std::net::SocketAddr>().unwrap(),
    ));
    request
}

async fn forged_webhooks_are_limited_and_real_replies_never_are(app: TestApp) {
    quiet_client(&app).await;
    let router = reengage::web::router(app.ctx.clone());
    let send = |request| router.clone().oneshot(request);
    // Twilio's address: many real replies in a burst, none held back.
    for i in 0..12 {
        let request = sms_request(
            "+12015550123",
            &format!("reply number {i}"),
            &format!("SMreal{i}"),
            false,
        );
        let response = send(from_peer(request, "203.0.113.10:443")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "real reply {i}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM inbound").await, 12);
    // A forger: two refusals, then the address is held back.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let request = sms_request("+12015550123", "STOP", &format!("SMfake{i}"), true);
        let response = send(from_peer(request, "198.51.100.66:5000"))
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=30).contains(&wait), "{wait}");
        }
        statuses.push(response.status());
    }
    assert_eq!(
        statuses,
        [
            StatusCode::FORBIDDEN,
            StatusCode::FORBIDDEN,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound").await,
        12,
        "forgeries change nothing"
    );
    assert!(client(&app).await.opted_out_sms_at.is_none());
    // Twilio is still heard.
    let request = sms_request("+12015550123", "one more", "SMreal-last", false);
    let response = send(from_peer(request, "203.0.113.10:443")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

const URL: &str = "http://127.0.0.1:8080/webhooks/twilio/inbound";

/// SMS through a Twilio-compatible API (not reached here), crisis resources on.
fn settings() -> String {
    format!(
        "{}[crisis]\nauto_reply = true\n",
        twilio_settings("http://127.0.0.1:9")
    )
}

pub(crate) async fn post_sms(
    app: &TestApp,
    from: &str,
    body: &str,
    sid: &str,
    forge: bool,
) -> (StatusCode, String) {
    let response = reengage::web::router(app.ctx.clone())
        .oneshot(sms_request(from, body, sid, forge))
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// An inbound SMS webhook as Twilio sends it, signed (or, `forge`, signed
/// with the wrong token).
fn sms_request(from: &str, body: &str, sid: &str, forge: bool) -> Request<Body> {
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
    Request::post("/webhooks/twilio/inbound")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(Body::from(body))
        .unwrap()
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

async fn client(app: &TestApp) -> reengage::domain::client::Client {
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

pub(crate) async fn client_by(
    app: &TestApp,
    external_id: &str,
) -> reengage::domain::client::Client {
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
    let settings = reengage::app::config::Settings::load(Some(&app.config), None).unwrap();
    let mut ctx = app.ctx.clone();
    ctx.channels.sms = std::sync::Arc::new(reengage::app::channels::outbox::OutboxSms::new(
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
    assert_eq!(
        client(&app).await.status,
        reengage::domain::ClientStatus::Hold
    );
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
    let metrics = reengage::web::router(app.ctx.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let metrics = axum::body::to_bytes(metrics.into_body(), 1 << 20)
        .await
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("reengage_inbound_total{classification=\"crisis\"} 2"),
        "both crisis messages are counted: {metrics}"
    );
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

on_both_backends!(
    with hearing_settings;
    what_a_reply_says_is_what_happens_to_its_client,
    a_plain_reply_waits_for_a_person_and_its_coach_gets_one_notice_without_its_words,
    a_crisis_alert_escalates_to_the_admins_until_someone_is_on_it,
    a_wrong_number_gets_no_more_sms_until_the_number_changes,
    who_is_this_from_someone_with_no_coach_is_a_wrong_number_not_a_question,
    while_a_coach_is_away_their_backup_hears_and_acts_for_them,
);

/// Everything through the file outbox; the webhook's signing key set.
pub(crate) fn hearing_settings() -> String {
    "[sms.twilio]\nauth_token = \"test-auth-token\"\n".to_owned()
}

/// Clients of Rosa's, one per phone, quiet for 10 days, each with a draft.
async fn clients_with_phones(app: &TestApp, phones: &[(&str, &str)]) {
    let rows: Vec<ClientCsv> = phones
        .iter()
        .map(|(external_id, phone)| ClientCsv {
            external_id,
            phone,
            ..Default::default()
        })
        .collect();
    let now = chrono::Utc::now();
    app.import_clients(&clients_csv(&rows), now - Duration::days(10))
        .await;
    app.detect(now).await;
}

/// The replies the token's coach sees, for a query such as `needs_reply=true`.
pub(crate) async fn replies_seen(
    app: &TestApp,
    token: &str,
    query: &str,
) -> Vec<serde_json::Value> {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/api/v1/replies?{query}"),
        Some(token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

/// `POST /api/v1/replies/{id}/{action}` as the token's coach.
async fn reply_action(
    app: &TestApp,
    token: &str,
    id: i64,
    action: &str,
) -> (StatusCode, serde_json::Value) {
    call(
        app,
        Method::POST,
        &format!("/api/v1/replies/{id}/{action}"),
        Some(token),
        None,
    )
    .await
}

/// The outbox emails whose names start with `prefix`, as (file, To, whole text).
fn outbox_emails(app: &TestApp, prefix: &str) -> Vec<(String, String, String)> {
    app.outbox_files()
        .into_iter()
        .filter(|f| f.starts_with(prefix) && f.ends_with(".eml"))
        .map(|f| {
            let raw = app.outbox_file(&f);
            let parsed = mail_parser::MessageParser::default()
                .parse(&raw)
                .expect("an RFC 5322 file");
            let to = parsed
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .unwrap_or_default()
                .to_owned();
            (f, to, String::from_utf8_lossy(&raw).into_owned())
        })
        .collect()
}

async fn what_a_reply_says_is_what_happens_to_its_client(app: TestApp) {
    let cases = [
        ("r-crisis", "+12015550201", "i dont wanna be here anymore"),
        ("r-stop", "+12015550202", "quit texting me"),
        ("r-wrong", "+12015550203", "You have the wrong person"),
        ("r-work", "+12015550204", "work is killing me lol"),
        ("r-group", "+12015550205", "dying to get back to group"),
        ("r-dog", "+12015550206", "my dog died, its been a hard week"),
        ("r-es", "+12015550207", "ya no me mandes mensajes"),
    ];
    let phones: Vec<(&str, &str)> = cases.iter().map(|(id, phone, _)| (*id, *phone)).collect();
    clients_with_phones(&app, &phones).await;
    for (i, (_, phone, text)) in cases.iter().enumerate() {
        let (status, _) = post_sms(&app, phone, text, &format!("SMk{i}"), false).await;
        assert_eq!(status, StatusCode::OK, "{text}");
    }
    let admin = token(&app, ADMIN).await;
    let client = |id: &'static str| {
        let (app, admin) = (&app, &admin);
        async move {
            let (status, body) = call(
                app,
                Method::GET,
                &format!("/api/v1/clients/{id}"),
                Some(admin),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };
    assert_eq!(client("r-crisis").await["status"], "hold");
    assert!(client("r-stop").await["opted_out_sms_at"].is_string());
    assert!(client("r-es").await["opted_out_sms_at"].is_string());
    let wrong = client("r-wrong").await;
    assert_eq!(wrong["phone_status"], "wrong_number");
    assert!(wrong["opted_out_sms_at"].is_null());
    for look_alike in ["r-work", "r-group", "r-dog"] {
        let body = client(look_alike).await;
        assert_eq!(body["status"], "active", "{look_alike}");
        assert_eq!(body["phone_status"], "ok", "{look_alike}");
        assert!(body["opted_out_sms_at"].is_null(), "{look_alike}");
    }
    // Why the crisis was flagged, for the coach to see.
    let crisis = replies_seen(&app, &admin, "classification=crisis").await;
    let items = crisis;
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["client_external_id"], "r-crisis");
    assert_eq!(items[0]["needs_reply"], true);
    assert!(!items[0]["matched"].as_array().unwrap().is_empty());
    let (status, bad) = call(
        &app,
        Method::GET,
        "/api/v1/replies?classification=angry",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["field"], "classification");
}

async fn a_plain_reply_waits_for_a_person_and_its_coach_gets_one_notice_without_its_words(
    app: TestApp,
) {
    clients_with_phones(&app, &[("n-1", "+12015550211"), ("n-2", "+12015550212")]).await;
    let words = "its been a strange month, can we talk";
    let now = chrono::Utc::now();
    post_sms(&app, "+12015550211", words, "SMn1", false).await;
    app.dispatch(now + Duration::minutes(2)).await;
    assert!(
        outbox_emails(&app, "notice-").is_empty(),
        "a notice waits for replies to settle"
    );
    post_sms(&app, "+12015550212", "thanks, doing ok", "SMn2", false).await;
    let coach = token(&app, COACH).await;
    let waiting = replies_seen(&app, &coach, "needs_reply=true").await;
    let items = waiting;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0]["body"], words);
    assert_eq!(items[0]["classification"], "reply");
    assert_eq!(items[0]["needs_reply"], true);

    let summary = app.follow_up(now + Duration::minutes(10)).await;
    assert_eq!(summary.reply_notices, 1);
    let notices = outbox_emails(&app, "notice-");
    assert_eq!(notices.len(), 1, "one notice for a burst of replies");
    let (_, to, text) = &notices[0];
    assert_eq!(to, COACH);
    assert!(text.contains("2 clients replied"), "{text}");
    assert!(text.contains("/replies"));
    for secret in ["strange month", "doing ok", "Jordan", "+1201555021"] {
        assert!(!text.contains(secret), "the notice carries {secret}");
    }
    app.dispatch(now + Duration::minutes(20)).await;
    assert_eq!(outbox_emails(&app, "notice-").len(), 1, "no second notice");

    // Another coach sees none of it; marking one handled takes it off the list.
    let other = token(&app, OTHER_COACH).await;
    let theirs = replies_seen(&app, &other, "").await;
    assert!(theirs.is_empty());
    let id = items[0]["id"].as_i64().unwrap();
    let (status, _) = reply_action(&app, &other, id, "handled").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, handled) = reply_action(&app, &coach, id, "handled").await;
    assert_eq!(status, StatusCode::OK, "{handled}");
    assert_eq!(handled["needs_reply"], false);
    let waiting = replies_seen(&app, &coach, "needs_reply=true").await;
    assert_eq!(waiting.len(), 1);
    // A keyword is not waiting for anyone.
    post_sms(&app, "+12015550212", "STOP", "SMn3", false).await;
    let waiting = replies_seen(&app, &coach, "needs_reply=true").await;
    assert_eq!(waiting.len(), 1);
    // A contact the agency records (here through the API) answers the rest.
    let (status, _) = call(
        &app,
        Method::POST,
        "/api/v1/events",
        Some(&coach),
        Some(serde_json::json!({
            "external_id": "n-2", "kind": "coach_contact",
            "occurred_at": chrono::Utc::now().to_rfc3339(),
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let waiting = replies_seen(&app, &coach, "needs_reply=true").await;
    assert!(waiting.is_empty(), "{waiting:?}");
    // Each says who answered it: the coach who marked it, or who recorded the contact.
    let all = replies_seen(&app, &coach, "").await;
    let handlers: Vec<&str> = all
        .iter()
        .filter_map(|r| r["handled_by"].as_str())
        .collect();
    assert_eq!(handlers.len(), 2, "{all:?}");
    assert!(handlers.iter().all(|h| *h == COACH), "{all:?}");
}

async fn health_line(app: &TestApp) -> String {
    let response = reengage::web::router(app.ctx.clone())
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    String::from_utf8_lossy(&bytes)
        .lines()
        .find(|l| l.starts_with("crisis alerts open"))
        .unwrap_or_default()
        .to_owned()
}

async fn a_crisis_alert_escalates_to_the_admins_until_someone_is_on_it(app: TestApp) {
    clients_with_phones(&app, &[("e-1", "+12015550221")]).await;
    let now = chrono::Utc::now();
    let words = "i have the rope ready";
    post_sms(&app, "+12015550221", words, "SMe1", false).await;
    let alerts = outbox_emails(&app, "alert-");
    assert_eq!(alerts.len(), 1, "the coach is alerted in the same request");
    assert_eq!(alerts[0].1, COACH);
    assert!(!alerts[0].2.contains("rope"));
    assert!(
        health_line(&app)
            .await
            .starts_with("crisis alerts open: 1 (oldest 0 min"),
        "{}",
        health_line(&app).await
    );

    app.dispatch(now + Duration::minutes(5)).await;
    assert!(outbox_emails(&app, "escalation-").is_empty(), "not yet");
    let summary = app.follow_up(now + Duration::minutes(25)).await;
    assert_eq!(summary.escalations, 1);
    let escalations = outbox_emails(&app, "escalation-");
    assert_eq!(escalations.len(), 1, "{escalations:?}");
    assert_eq!(escalations[0].1, ADMIN);
    assert!(!escalations[0].2.contains("rope"));
    assert!(escalations[0].2.contains("I'm on it"));
    // Again every escalate_after_minutes, until someone is on it.
    app.dispatch(now + Duration::minutes(36)).await;
    assert_eq!(outbox_emails(&app, "escalation-").len(), 2);

    let coach = token(&app, COACH).await;
    let list = replies_seen(&app, &coach, "classification=crisis").await;
    let id = list[0]["id"].as_i64().unwrap();
    let (status, acked) = reply_action(&app, &coach, id, "acknowledge").await;
    assert_eq!(status, StatusCode::OK, "{acked}");
    assert_eq!(acked["acknowledged_by"], COACH);
    assert!(acked["acknowledged_at"].is_string());
    let (status, _) = reply_action(&app, &coach, id, "acknowledge").await;
    assert_eq!(status, StatusCode::CONFLICT, "acknowledged once");
    app.dispatch(now + Duration::minutes(60)).await;
    app.dispatch(now + Duration::minutes(90)).await;
    assert_eq!(
        outbox_emails(&app, "escalation-").len(),
        2,
        "no more after acknowledgement"
    );
    assert_eq!(health_line(&app).await, "crisis alerts open: 0");
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 50).await.unwrap();
    for action in ["crisis_alert", "crisis_escalation", "crisis_acknowledged"] {
        assert!(audit.iter().any(|a| a.action == action), "{action}");
    }
}

async fn a_wrong_number_gets_no_more_sms_until_the_number_changes(app: TestApp) {
    clients_with_phones(&app, &[("w-1", "+12015550231")]).await;
    let draft = app.pending().await.pop().unwrap().id;
    let (_, twiml) = post_sms(&app, "+12015550231", "wrong number", "SMw1", false).await;
    assert!(twiml.contains("Sorry for the mix-up"), "{twiml}");
    for word in ["recovery", "coach", "Riverside"] {
        assert!(!twiml.contains(word), "{twiml}");
    }
    let (_, twiml) = post_sms(&app, "+12015550231", "WRONG NUMBER!!", "SMw2", false).await;
    assert!(twiml.contains("<Response/>"), "one answer only: {twiml}");
    let message = app.message(draft).await;
    assert_eq!(message.status, "cancelled");
    let now = chrono::Utc::now();
    assert!(
        matches!(
            app.approve(draft, COACH, now).await,
            Err(ActionError::NotPending { .. })
        ),
        "a cancelled draft cannot be approved"
    );
    app.detect(now + Duration::days(8)).await;
    let drafts = app.pending().await;
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_eq!(
        drafts[0].channel, "email",
        "no new SMS draft for a stranger's phone; email still goes"
    );
    // Not engagement: the quiet spell goes on.
    let admin = token(&app, ADMIN).await;
    let (status, before) = call(&app, Method::GET, "/api/v1/clients/w-1", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    assert!(before["last_engaged_at"].is_null());

    // A new number through the API clears the mark.
    let (status, after) = call(
        &app,
        Method::PUT,
        "/api/v1/clients/w-1",
        Some(&admin),
        Some(serde_json::json!({
            "first_name": "Jordan", "phone": "+12015550239", "coach_email": COACH,
            "consent_sms": true, "preferred_channel": "sms"
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["phone_status"], "ok");
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 50).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "wrong_number"));
}

/// "Who is this?" with "I don't have a coach" is a stranger saying the
/// number is wrong: the phone is marked, and no help text (which names the
/// program) goes to them.
async fn who_is_this_from_someone_with_no_coach_is_a_wrong_number_not_a_question(app: TestApp) {
    clients_with_phones(&app, &[("w-2", "+12015550232"), ("w-3", "+12015550233")]).await;
    for (phone, text, sid) in [
        ("+12015550232", "who is this? i dont have a coach", "SMw21"),
        ("+12015550233", "quien es? yo no tengo coach", "SMw31"),
    ] {
        let (status, twiml) = post_sms(&app, phone, text, sid, false).await;
        assert_eq!(status, StatusCode::OK);
        assert!(twiml.contains("Sorry for the mix-up"), "{twiml}");
        assert!(!twiml.contains("Reply STOP"), "no help text: {twiml}");
        for word in ["recovery", "coach", "Riverside"] {
            assert!(!twiml.contains(word), "{twiml}");
        }
    }
    for id in ["w-2", "w-3"] {
        assert!(client_by(&app, id).await.phone_is_wrong(), "{id}");
    }
}

async fn while_a_coach_is_away_their_backup_hears_and_acts_for_them(app: TestApp) {
    clients_with_phones(&app, &[("a-1", "+12015550241")]).await;
    let now = chrono::Utc::now();
    let until = (now + Duration::days(3)).format("%Y-%m-%d").to_string();
    let set = reengage::pipeline::casework::set_away(
        &app.ctx,
        None,
        COACH,
        &until,
        Some(OTHER_COACH),
        now,
    )
    .await
    .unwrap();
    assert!(set.contains(OTHER_COACH), "{set}");
    let backup = token(&app, OTHER_COACH).await;
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/v1/clients/a-1",
        Some(&backup),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the backup sees the client");
    let (_, drafts) = call(
        &app,
        Method::GET,
        "/api/v1/drafts?status=pending",
        Some(&backup),
        None,
    )
    .await;
    assert_eq!(drafts["items"].as_array().unwrap().len(), 1);

    post_sms(
        &app,
        "+12015550241",
        "took 40 of my ibuprofen",
        "SMa1",
        false,
    )
    .await;
    let alerts = outbox_emails(&app, "alert-");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].1, OTHER_COACH, "the alert goes to the backup");
    let list = replies_seen(&app, &backup, "").await;
    let id = list[0]["id"].as_i64().unwrap();
    let (status, _) = reply_action(&app, &backup, id, "acknowledge").await;
    assert_eq!(status, StatusCode::OK);
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 50).await.unwrap();
    let ack = audit
        .iter()
        .find(|a| a.action == "crisis_acknowledged")
        .unwrap();
    assert!(
        ack.detail
            .as_deref()
            .unwrap_or_default()
            .contains("covering for"),
        "{:?}",
        ack.detail
    );
    drop(conn);

    // Back: everything returns to the coach.
    reengage::pipeline::casework::set_back(&app.ctx, None, COACH, now)
        .await
        .unwrap();
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/v1/clients/a-1",
        Some(&backup),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Away without a backup: notices go to the admins.
    let set = reengage::pipeline::casework::set_away(&app.ctx, None, COACH, &until, None, now)
        .await
        .unwrap();
    assert!(set.contains("no backup: notices go to the admins"), "{set}");
    post_sms(
        &app,
        "+12015550241",
        "ok i'm safe now, can we talk tomorrow",
        "SMa2",
        false,
    )
    .await;
    app.dispatch(now + Duration::minutes(10)).await;
    let notices = outbox_emails(&app, "notice-");
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].1, ADMIN);
}

/// The classifier against the labelled corpora: `replies.csv`, written for
/// the classifier, and `replies-more.csv`, written apart from it by other
/// hands (see docs/coaching.md for how each was used).
#[test]
fn the_classifier_meets_its_recall_goals_on_the_corpus() {
    use reengage::pipeline::replies::Class;
    let words = reengage::pipeline::replies::Words::load(std::path::Path::new("")).unwrap();
    let batches = (1..=7).map(|n| (format!("replies-batch-{n}.csv"), 200));
    let deaths = (1..=2).map(|n| (format!("deceased-batch-{n}.csv"), 50));
    let corpora = [
        ("replies.csv".to_owned(), 400),
        ("replies-more.csv".to_owned(), 1000),
        ("replies-benign.csv".to_owned(), 300),
    ];
    for (file, at_least) in corpora.into_iter().chain(batches).chain(deaths) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(&file);
        let corpus = std::fs::File::open(&path).unwrap();
        let report = reengage::domain::words::evaluate::evaluate(&words, corpus).unwrap();
        println!("{file}: {report}");
        for miss in &report.misses {
            println!(
                "  line {}: expected {:?}, got {:?}: {}",
                miss.line, miss.expected, miss.got, miss.text
            );
        }
        assert!(
            report.texts >= at_least,
            "{file} has {} texts",
            report.texts
        );
        // The goals, on every text once it is in the corpus.
        for (class, goal) in [
            (Class::Crisis, 0.95),
            (Class::OptOut, 0.95),
            (Class::WrongNumber, 0.90),
            (Class::Deceased, 0.85),
        ] {
            let recall = report.counts(class).recall();
            assert!(recall >= goal, "{file}: {class} recall {recall:.3}");
        }
        assert!(report.lookalike_crisis_rate() <= 0.05, "{file}");
    }
}
