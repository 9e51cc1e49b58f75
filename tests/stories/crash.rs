//! `reengage dispatch` killed with SIGKILL at random points, again and again,
//! then run until the queue is done: nothing is lost, nothing is stuck, and
//! nothing is received twice.

use std::collections::{HashMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration as StdDuration;

use crate::common::*;
use chrono::Duration;
use wiremock::MockServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs postfix's smtp-sink: scripts/test runs it"]
async fn dispatch_killed_at_random_points_never_loses_or_doubles_a_message() {
    let sink = SmtpSink::start(&[]);
    let server = MockServer::start().await;
    let twilio = FakeTwilio::default();
    twilio.mount(&server).await;
    // One message at a time on each channel, so that a kill can cut short at
    // most one email attempt (an SMS in doubt is reconciled with the provider).
    let app = TestApp::sqlite_with(&format!(
        "{}{}[sending]\nlease_seconds = 10\n",
        sink.settings()
            .replace("[email]\n", "[email]\nconcurrency = 1\n"),
        twilio_settings(&server.uri()).replace("[sms]\n", "[sms]\nconcurrency = 1\n")
    ))
    .await;
    let start = at("2026-06-01T15:00:00Z");
    let ids = approved_messages(&app, 300, start).await;

    let dispatch = |round: i64| {
        let now = start + Duration::seconds(20 * round);
        Command::new(env!("CARGO_BIN_EXE_reengage"))
            .arg("--config")
            .arg(&app.config)
            .args(["dispatch", "--now", &now.to_rfc3339()])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("reengage runs")
    };
    let mut round = 0;
    let mut killed = 0;
    // Kill rounds: each run is cut short at a random moment.
    while killed < 6 {
        let mut child = dispatch(round);
        round += 1;
        tokio::time::sleep(StdDuration::from_millis(fastrand::u64(30..400))).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        if round > 40 {
            break;
        }
    }
    assert!(
        killed >= 5,
        "only {killed} runs were still going when killed"
    );
    // Then runs to completion, each later than the last lease.
    let mut conn = app.ctx.store.conn().await.unwrap();
    for _ in 0..20 {
        let status = dispatch(round).wait().unwrap();
        round += 1;
        assert!(status.success());
        let open: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE status IN ('approved', 'sending')",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
    }

    let rows: Vec<(i64, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, status, channel, recipient, email_message_id FROM messages ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    assert_eq!(rows.len(), ids.len());
    // Every message is accounted for: sent, or in doubt because a kill cut
    // its attempt short, and a kill cuts short at most one.
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for (id, status, ..) in &rows {
        assert!(
            matches!(status.as_str(), "sent" | "in_doubt"),
            "message {id} ended {status}"
        );
        *statuses.entry(status.clone()).or_default() += 1;
    }
    let in_doubt = statuses.get("in_doubt").copied().unwrap_or_default();
    assert!(
        in_doubt <= killed,
        "{in_doubt} in doubt after {killed} kills: {statuses:?}"
    );
    let status_of_email: HashMap<String, String> = rows
        .iter()
        .filter_map(|(_, status, _, _, mid)| mid.clone().map(|m| (m, status.clone())))
        .collect();
    let status_of_phone: HashMap<String, String> = rows
        .iter()
        .filter(|(_, _, channel, ..)| channel == "sms")
        .map(|(_, status, _, to, _)| (to.clone(), status.clone()))
        .collect();

    let mut seen_ids = HashSet::new();
    for raw in sink.messages() {
        let parsed = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("every message the sink received parses");
        let id = parsed
            .message_id()
            .expect("every message the sink received has a Message-ID");
        let id = format!("<{id}>");
        assert!(seen_ids.insert(id.clone()), "{id} was received twice");
        let status = &status_of_email[&id];
        assert!(
            matches!(status.as_str(), "sent" | "in_doubt"),
            "{id} arrived but is {status}"
        );
    }
    let mut seen_sms = HashSet::new();
    for (_, to, body) in twilio.received() {
        assert!(
            seen_sms.insert((to.clone(), body.clone())),
            "an SMS to {to} was received twice"
        );
        let status = &status_of_phone[&to];
        assert!(
            matches!(status.as_str(), "sent" | "in_doubt"),
            "SMS to {to} arrived but is {status}"
        );
    }
    // Every sent message was received; of those in doubt, some may have been.
    let count = |channel: &str, status: &str| {
        rows.iter()
            .filter(|r| r.2 == channel && r.1 == status)
            .count()
    };
    for (channel, received) in [("sms", seen_sms.len()), ("email", seen_ids.len())] {
        let (sent, doubt) = (count(channel, "sent"), count(channel, "in_doubt"));
        assert!(
            sent <= received && received <= sent + doubt,
            "{channel}: {received} received, {sent} sent, {doubt} in doubt"
        );
    }
    eprintln!("after {killed} kills in {round} runs: {statuses:?}");
}
