//! A reply that says the client has died: everything stops, the coach is
//! told, nothing is said back, and a coach confirms or undoes it. On both
//! backends.

use crate::common::*;
use crate::replies::{client_by, hearing_settings, post_sms, replies_seen};
use axum::http::{Method, StatusCode};
use chrono::Duration;
use reengage::domain::{ClientStatus, StatusReason};

on_both_backends!(
    with hearing_settings;
    a_reported_death_holds_the_client_cancels_an_approved_email_and_tells_the_coach,
    a_coach_undoes_a_reported_death_on_the_client_page_and_outreach_resumes,
    a_coach_confirms_a_death_through_the_api_and_the_roster_cannot_undo_it,
);

/// Rosa's client c-1 (phone +12015550123), quiet for ten days, with a draft
/// on `channel`. Returns the draft's id.
async fn quiet_client_on(app: &TestApp, channel: &str) -> i64 {
    let now = chrono::Utc::now();
    let row = ClientCsv {
        channel,
        ..Default::default()
    };
    app.import_clients(&clients_csv(&[row]), now - Duration::days(10))
        .await;
    app.detect(now).await;
    app.pending().await.pop().expect("a draft").id
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 50).await.unwrap();
    audit.into_iter().map(|a| a.action.to_string()).collect()
}

async fn a_reported_death_holds_the_client_cancels_an_approved_email_and_tells_the_coach(
    app: TestApp,
) {
    let now = chrono::Utc::now();
    let email = quiet_client_on(&app, "email").await;
    app.approve(email, COACH, now).await.unwrap();
    assert_eq!(app.message(email).await.status, "approved");

    let words = "this is his mom. Jordan passed away in march. please stop texting this number";
    let (status, twiml) = post_sms(&app, "+12015550123", words, "SMd1", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        twiml.contains("<Response/>"),
        "nothing is said back: {twiml}"
    );

    let client = client_by(&app, "c-1").await;
    assert_eq!(client.status, ClientStatus::Hold);
    assert_eq!(client.status_reason, Some(StatusReason::ReportedDeceased));
    assert!(client.phone_is_wrong(), "the text asked us to stop");
    assert_eq!(app.message(email).await.status, "cancelled");

    // The coach hears at once, by the crisis route, in words of what it is,
    // and without the reply's words; nothing goes to the client's phone.
    let files = app.outbox_files();
    let alert = files
        .iter()
        .find(|f| f.starts_with("alert-") && f.ends_with(".eml"))
        .unwrap_or_else(|| panic!("an alert email: {files:?}"));
    let alert = String::from_utf8_lossy(&app.outbox_file(alert)).into_owned();
    assert!(alert.contains(COACH), "{alert}");
    assert!(alert.contains("may have died"), "{alert}");
    assert!(
        !alert.contains("march") && !alert.contains("mom"),
        "{alert}"
    );
    assert!(
        files.iter().all(|f| f.starts_with("alert-")),
        "only the alert went out: {files:?}"
    );
    let sent = app.dispatch(now + Duration::hours(1)).await;
    assert_eq!(sent.sent, 0, "{sent:?}");
    assert!(app.outbox_files().iter().all(|f| f.starts_with("alert-")));

    let actions = audit_actions(&app).await;
    for action in ["reported_deceased", "deceased_alert"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
    assert!(!actions.iter().any(|a| a == "crisis_alert"), "{actions:?}");

    // The API shows why; the reply waits for the coach; a coach's own
    // message is refused with the reason.
    let rosa = token(&app, COACH).await;
    let (status, body) = call(&app, Method::GET, "/api/v1/clients/c-1", Some(&rosa), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "hold");
    assert_eq!(body["status_reason"], "reported_deceased");
    let waiting = replies_seen(&app, &rosa, "classification=deceased&needs_reply=true").await;
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/clients/c-1/messages",
        Some(&rosa),
        Some(serde_json::json!({"channel": "email", "subject": "Hi", "body": "Thinking of you"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "reported_deceased", "{body}");
}

async fn a_coach_undoes_a_reported_death_on_the_client_page_and_outreach_resumes(app: TestApp) {
    set_passwords(&app).await;
    let draft = quiet_client_on(&app, "sms").await;
    let (_, twiml) = post_sms(
        &app,
        "+12015550123",
        "he passed away last month",
        "SMd2",
        false,
    )
    .await;
    assert!(twiml.contains("<Response/>"), "{twiml}");
    assert_eq!(app.message(draft).await.status, "cancelled");
    assert!(
        !client_by(&app, "c-1").await.phone_is_wrong(),
        "no stop was asked"
    );

    let mut rosa = Browser::new(&app);
    rosa.log_in(COACH, PASSWORD).await;
    let page = rosa.get("/clients/c-1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("A reply said this client has died"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("he passed away last month"),
        "the reply is on the page"
    );
    let csrf = Browser::csrf(&page);
    let refused = rosa
        .post(
            "/clients/c-1/action",
            &[("csrf", &csrf), ("action", "resume")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        refused.body.contains("confirm or undo that first"),
        "{}",
        refused.body
    );

    let done = rosa
        .post(
            "/clients/c-1/action",
            &[("csrf", &csrf), ("action", "undo_deceased")],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/clients/c-1"));
    let client = client_by(&app, "c-1").await;
    assert_eq!(client.status, ClientStatus::Active);
    assert_eq!(client.status_reason, None);
    let actions = audit_actions(&app).await;
    assert!(actions.iter().any(|a| a == "undo_deceased"), "{actions:?}");

    // Still quiet: the cadence drafts again.
    app.detect(chrono::Utc::now() + Duration::hours(1)).await;
    let drafts = app.pending().await;
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    assert_ne!(drafts[0].id, draft);
}

async fn a_coach_confirms_a_death_through_the_api_and_the_roster_cannot_undo_it(app: TestApp) {
    quiet_client_on(&app, "sms").await;
    let (_, twiml) = post_sms(
        &app,
        "+12015550123",
        "murió en enero, soy su mamá",
        "SMd3",
        false,
    )
    .await;
    assert!(twiml.contains("<Response/>"), "{twiml}");
    let rosa = token(&app, COACH).await;
    let path = "/api/v1/clients/c-1/reported-death";
    let (status, body) = call(
        &app,
        Method::POST,
        path,
        Some(&rosa),
        Some(serde_json::json!({"decision": "maybe"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "decision", "{body}");
    let (status, body) = call(
        &app,
        Method::POST,
        path,
        Some(&rosa),
        Some(serde_json::json!({"decision": "confirm"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "discharged");
    assert_eq!(body["status_reason"], "deceased");

    // Tomorrow's roster still lists the client as active: it cannot bring
    // them back, and nothing is drafted.
    let now = chrono::Utc::now();
    app.import_clients(&clients_csv(&[ClientCsv::default()]), now)
        .await;
    app.detect(now + Duration::days(30)).await;
    assert!(app.pending().await.is_empty());
    let client = client_by(&app, "c-1").await;
    assert_eq!(client.status, ClientStatus::Discharged);
    assert_eq!(client.status_reason, Some(StatusReason::Deceased));
    let actions = audit_actions(&app).await;
    assert!(
        actions.iter().any(|a| a == "confirm_deceased"),
        "{actions:?}"
    );

    // Nobody reported a death for a client without one.
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/clients/c-2/reported-death",
        Some(&rosa),
        Some(serde_json::json!({"decision": "undo"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}
