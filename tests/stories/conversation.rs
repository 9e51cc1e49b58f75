//! The client's thread and a coach's own answers, through the API, on both
//! backends: what is refused and why, what is sent and how it threads.

use crate::common::*;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use reengage::pipeline::inbox;
use serde_json::json;

on_both_backends!(
    with inbound_settings;
    a_coachs_answer_threads_reaches_the_outbox_and_the_send_log,
    the_thread_shows_both_directions_in_order_in_pages,
    an_answer_to_an_opted_out_channel_is_refused_and_sends_nothing,
    bad_answers_get_a_clear_error_and_lint_errors_need_confirming,
    a_coach_may_write_to_a_client_on_hold_and_the_quiet_hours_of_a_conversation,
    an_edited_email_draft_keeps_an_html_part,
);

/// Jordan (c-1, email and SMS, prefers email), quiet for 8 days: the id of
/// the step-1 email drafted this morning.
async fn emailed_draft(app: &TestApp) -> i64 {
    app.import_clients(
        &clients_csv(&[ClientCsv {
            email: "jordan@example.com",
            channel: "email",
            ..Default::default()
        }]),
        morning() - Duration::days(8),
    )
    .await;
    app.detect(morning()).await;
    app.pending().await.pop().unwrap().id
}

/// Jordan (c-1, email and SMS, prefers email), sent step 1 by email this
/// morning, who answered by email an hour later. Returns our Message-ID and theirs.
async fn a_conversation(app: &TestApp) -> (String, String) {
    let draft = emailed_draft(app).await;
    app.approve(draft, COACH, morning()).await.unwrap();
    app.dispatch(morning()).await;
    let ours = email_in_outbox(app, 0).message_id;
    let theirs = "<j1@mail.example.com>".to_owned();
    app.deliver(
        "j1.eml",
        &format!(
            "From: Jordan <jordan@example.com>\r\nTo: {REPLIES}\r\nSubject: Re: Thinking of you\r\n\
             Message-ID: {theirs}\r\nIn-Reply-To: {ours}\r\n\r\ncan we talk this week?\r\n\r\n\
             On Tue, Mar 10, 2026 at 10:00 AM Rosa <coach@example.org> wrote:\r\n> How have you been?\r\n"
        ),
    );
    let summary = inbox::run(&app.ctx, morning() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(summary.matched, 1, "{summary}");
    (ours, theirs)
}

struct Sent {
    message_id: String,
    in_reply_to: Option<String>,
    subject: String,
    text: String,
    html: Option<String>,
}

/// The `n`th email in the outbox, in name order.
fn email_in_outbox(app: &TestApp, n: usize) -> Sent {
    let names: Vec<String> = app
        .outbox_files()
        .into_iter()
        .filter(|f| f.ends_with(".eml") && !f.starts_with("alert-"))
        .collect();
    let raw = app.outbox_file(&names[n]);
    let email = mail_parser::MessageParser::default().parse(&raw).unwrap();
    Sent {
        message_id: format!("<{}>", email.message_id().unwrap()),
        in_reply_to: email.in_reply_to().as_text().map(|id| format!("<{id}>")),
        subject: email.subject().unwrap_or_default().to_owned(),
        text: email.body_text(0).unwrap_or_default().into_owned(),
        html: email
            .body_html(0)
            .map(|h| h.into_owned())
            .filter(|_| email.html_body_count() > 0),
    }
}

/// Stops the app's clock at `at`, as if the coach acted then.
fn clock_at(app: &mut TestApp, at: DateTime<Utc>) {
    app.ctx.clock = reengage::app::clock::Clock::Fixed(at);
}

async fn answer(
    app: &TestApp,
    as_coach: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let token = token(app, as_coach).await;
    call(
        app,
        Method::POST,
        "/api/v1/clients/c-1/messages",
        Some(&token),
        Some(body),
    )
    .await
}

async fn a_coachs_answer_threads_reaches_the_outbox_and_the_send_log(mut app: TestApp) {
    let (_, theirs) = a_conversation(&app).await;
    clock_at(&mut app, morning() + Duration::hours(1));
    let rosa = token(&app, COACH).await;
    let waiting = "/api/v1/replies?needs_reply=true";
    let (_, before) = call(&app, Method::GET, waiting, Some(&rosa), None).await;
    assert_eq!(
        before["items"].as_array().unwrap().len(),
        1,
        "the client's email waits for Rosa: {before}"
    );
    // Another coach cannot write to Rosa's client.
    let (status, _) = answer(&app, OTHER_COACH, json!({"body": "hi"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, message) = answer(
        &app,
        COACH,
        json!({"body": "Of course. Does Thursday at 4 work?\n\nRosa"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(
        message["channel"], "email",
        "the channel the client wrote on"
    );
    assert_eq!(message["status"], "approved");
    assert_eq!(message["approved_by"], COACH);
    assert_eq!(message["author"], COACH);
    assert_eq!(message["step"], serde_json::Value::Null);
    // Answering clears the reply it answers.
    let (_, after) = call(&app, Method::GET, waiting, Some(&rosa), None).await;
    assert!(after["items"].as_array().unwrap().is_empty(), "{after}");

    let summary = app.dispatch(morning() + Duration::hours(1)).await;
    assert_eq!(summary.sent, 1, "{summary}");
    let sent = email_in_outbox(&app, 1);
    assert_eq!(sent.in_reply_to.as_deref(), Some(theirs.as_str()));
    assert_eq!(sent.subject, "Re: Thinking of you");
    assert!(
        sent.text.contains("Does Thursday at 4 work?"),
        "{}",
        sent.text
    );
    let html = sent.html.expect("an HTML part too");
    assert!(
        html.contains("<p>Of course. Does Thursday at 4 work?</p>"),
        "{html}"
    );
    let log = app.send_log().await;
    assert!(
        log.iter()
            .any(|row| row.message_id == message["id"].as_i64().unwrap()
                && row.outcome.is_some_and(|o| o == "sent")),
        "{log:?}"
    );
    // The next reply threads to the answer, and so the conversation goes on.
    let answer_id = sent.message_id;
    app.deliver(
        "j2.eml",
        &format!(
            // From an address no client has: only the thread can match it.
            "From: jordan.on.phone@mail.example.net\r\nTo: {REPLIES}\r\nSubject: Re: Re: Thinking of you\r\n\
             Message-ID: <j2@mail.example.com>\r\nIn-Reply-To: {answer_id}\r\n\r\nthursday works\r\n"
        ),
    );
    let summary = inbox::run(&app.ctx, morning() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(summary.matched, 1, "{summary}");
}

async fn the_thread_shows_both_directions_in_order_in_pages(mut app: TestApp) {
    a_conversation(&app).await;
    clock_at(&mut app, morning() + Duration::hours(1));
    let (status, _) = answer(&app, COACH, json!({"body": "Yes, Thursday?"})).await;
    assert_eq!(status, StatusCode::CREATED);
    app.dispatch(morning() + Duration::hours(1)).await;
    let rosa = token(&app, COACH).await;
    let (status, page) = call(
        &app,
        Method::GET,
        "/api/v1/clients/c-1/conversation?limit=2",
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["direction"], "out");
    assert_eq!(items[0]["author"], "reengage");
    assert_eq!(items[0]["status"], "sent");
    assert_eq!(items[1]["direction"], "in");
    assert_eq!(items[1]["body"], "can we talk this week?");
    assert_eq!(items[1]["classification"], "reply");
    let after = page["next_after"].as_str().expect("a next page");
    let (_, rest) = call(
        &app,
        Method::GET,
        &format!("/api/v1/clients/c-1/conversation?limit=2&after={after}"),
        Some(&rosa),
        None,
    )
    .await;
    let rest = rest["items"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["direction"], "out");
    assert_eq!(rest[0]["author"], COACH);
    assert_eq!(rest[0]["body"], "Yes, Thursday?");
    let (status, bad) = call(
        &app,
        Method::GET,
        "/api/v1/clients/c-1/conversation?after=yesterday",
        Some(&rosa),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["field"], "after");
    let marcus = token(&app, OTHER_COACH).await;
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/v1/clients/c-1/conversation",
        Some(&marcus),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn an_answer_to_an_opted_out_channel_is_refused_and_sends_nothing(mut app: TestApp) {
    a_conversation(&app).await;
    clock_at(&mut app, morning() + Duration::hours(1));
    app.act(
        COACH,
        "c-1",
        reengage::pipeline::casework::CaseAction::OptOut(reengage::domain::Channel::Email),
        morning() + Duration::hours(1),
    )
    .await;
    let before = app.send_log().await.len();
    let (status, body) = answer(&app, COACH, json!({"body": "checking in"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "opted_out");
    assert!(body["detail"].as_str().unwrap().contains("email"), "{body}");
    app.dispatch(morning() + Duration::hours(2)).await;
    assert_eq!(app.send_log().await.len(), before, "nothing sent");
    assert_eq!(app.messages(None).await.len(), 1, "nothing stored");
    // SMS is still open, when asked for.
    let (status, message) = answer(
        &app,
        COACH,
        json!({"channel": "sms", "body": "checking in"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
    assert_eq!(message["channel"], "sms");
}

async fn bad_answers_get_a_clear_error_and_lint_errors_need_confirming(mut app: TestApp) {
    a_conversation(&app).await;
    clock_at(&mut app, morning() + Duration::hours(1));
    for (body, field) in [
        (json!({"body": "   "}), "body"),
        (json!({"channel": "sms", "body": "a".repeat(1601)}), "body"),
        (json!({"channel": "fax", "body": "hi"}), "channel"),
        (
            json!({"channel": "sms", "subject": "Hi", "body": "hi"}),
            "subject",
        ),
    ] {
        let (status, error) = answer(&app, COACH, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["field"], field, "{error}");
    }
    let (status, error) = answer(&app, COACH, json!({"body": "hi", "bcc": "x"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    // The lint's errors (shaming words here) hold it until the coach confirms.
    let harsh = json!({"body": "I'm disappointed in you. This is your last chance."});
    let (status, error) = answer(&app, COACH, harsh.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"], "needs_confirmation");
    assert!(!error["findings"].as_array().unwrap().is_empty(), "{error}");
    assert_eq!(app.messages(None).await.len(), 1, "nothing stored");
    let mut confirmed = harsh;
    confirmed["confirm"] = json!(true);
    let (status, message) = answer(&app, COACH, confirmed).await;
    assert_eq!(status, StatusCode::CREATED, "{message}");
}

async fn a_coach_may_write_to_a_client_on_hold_and_the_quiet_hours_of_a_conversation(
    mut app: TestApp,
) {
    a_conversation(&app).await;
    clock_at(&mut app, morning() + Duration::hours(1));
    app.act(
        COACH,
        "c-1",
        reengage::pipeline::casework::CaseAction::SetStatus(reengage::domain::ClientStatus::Hold),
        morning() + Duration::hours(1),
    )
    .await;
    let (status, _) = answer(&app, COACH, json!({"body": "I'm here for you."})).await;
    assert_eq!(status, StatusCode::CREATED);
    let summary = app.dispatch(morning() + Duration::hours(1)).await;
    assert_eq!(
        summary.sent, 1,
        "a client on hold may hear from their coach: {summary}"
    );
    // At 23:00 in New York, long after the client last wrote: it waits for morning.
    let night = at("2026-03-11T04:00:00Z");
    let coach = reengage::pipeline::review::acting_coach(&app.ctx, COACH)
        .await
        .unwrap();
    let late = reengage::pipeline::conversation::Answer {
        body: "Sleep well.",
        ..Default::default()
    };
    let waiting = reengage::pipeline::conversation::answer(&app.ctx, &coach, "c-1", &late, night)
        .await
        .unwrap();
    let summary = app.dispatch(night).await;
    assert_eq!(summary.sent, 0, "{summary}");
    // The thread says when it will go: 09:00 in New York.
    clock_at(&mut app, night);
    let rosa = token(&app, COACH).await;
    let (_, page) = call(
        &app,
        Method::GET,
        "/api/v1/clients/c-1/conversation",
        Some(&rosa),
        None,
    )
    .await;
    let item = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == waiting.id && i["direction"] == "out")
        .unwrap()
        .clone();
    assert_eq!(item["status"], "approved");
    assert_eq!(item["due_at"], "2026-03-11T13:00:00Z");
    // But while the client is writing, at night too, an answer goes at once.
    app.deliver(
        "j3.eml",
        &format!("From: jordan@example.com\r\nTo: {REPLIES}\r\nSubject: up late\r\nMessage-ID: <j3@x>\r\n\r\ncan't sleep\r\n"),
    );
    inbox::run(&app.ctx, night + Duration::minutes(5))
        .await
        .unwrap();
    let now = night + Duration::minutes(10);
    let reply = reengage::pipeline::conversation::Answer {
        body: "I'm up too. Want to talk?",
        ..Default::default()
    };
    reengage::pipeline::conversation::answer(&app.ctx, &coach, "c-1", &reply, now)
        .await
        .unwrap();
    let summary = app.dispatch(now).await;
    assert_eq!(
        summary.sent, 1,
        "it goes while the client is writing: {summary}"
    );
    let morning = app.dispatch(at("2026-03-11T13:00:00Z")).await;
    assert_eq!(
        morning.sent, 1,
        "the one that waited goes at 09:00: {morning}"
    );
}

async fn an_edited_email_draft_keeps_an_html_part(app: TestApp) {
    let draft = emailed_draft(&app).await;
    let rosa = token(&app, COACH).await;
    let (status, edited) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/drafts/{draft}"),
        Some(&rosa),
        Some(json!({"body": "Hi Jordan,\n\nThinking of you <3\nno pressure.\n\nRosa"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    app.approve(draft, COACH, morning()).await.unwrap();
    assert_eq!(app.dispatch(morning()).await.sent, 1);
    let sent = email_in_outbox(&app, 0);
    assert!(sent.text.contains("Thinking of you <3"), "{}", sent.text);
    let html = sent
        .html
        .expect("the edited email still has an HTML part")
        .replace("\r\n", "\n");
    assert!(
        html.contains("<p>Thinking of you &lt;3<br>\nno pressure.</p>"),
        "the edit, escaped, in paragraphs: {html}"
    );
    assert!(
        html.contains("<html lang=\"en\">"),
        "in the agency's layout: {html}"
    );
}
