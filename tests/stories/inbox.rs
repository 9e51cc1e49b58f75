//! Email replies coming back in through the folder inbox, on both backends:
//! matched by what they answer or by the sender, screened like SMS replies,
//! with auto-replies, bounces, repeats and broken mail handled.

use crate::common::*;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use reengage::domain::ClientStatus;
use reengage::pipeline::inbox::{self, InboxSummary};
use reengage::store::clients;

on_both_backends!(
    with resources_by_email;
    a_crisis_email_gets_the_resources_once_in_the_clients_language,
);

/// The folder inbox, and the crisis resources sent to a client in crisis.
fn resources_by_email() -> String {
    format!("{}[crisis]\nauto_reply = true\n", inbound_settings())
}

/// A Spanish-speaking client writes twice in crisis by email: the resources
/// go once, by email, in Spanish, threaded under what they wrote.
async fn a_crisis_email_gets_the_resources_once_in_the_clients_language(app: TestApp) {
    app.import_clients(
        &clients_csv(&[ClientCsv {
            email: "lucia@example.com",
            channel: "email",
            language: "es",
            ..Default::default()
        }]),
        morning() - Duration::days(8),
    )
    .await;
    for (name, id) in [
        ("c1.eml", "<c1@mail.example.com>"),
        ("c2.eml", "<c2@mail.example.com>"),
    ] {
        app.deliver(
            name,
            &format!(
                "From: lucia@example.com\n\
                 To: {REPLIES}\n\
                 Subject: hola\n\
                 Message-ID: {id}\n\
                 \n\
                 ya no puedo mas, me quiero morir\n"
            ),
        );
        poll(&app, morning() + Duration::hours(1)).await;
    }
    let resources: Vec<String> = app
        .outbox_files()
        .into_iter()
        .filter(|f| f.starts_with("resources-"))
        .collect();
    assert_eq!(resources.len(), 1, "once: {:?}", app.outbox_files());
    let raw = app.outbox_file(&resources[0]);
    let email = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        email.to().and_then(|a| a.first()).and_then(|a| a.address()),
        Some("lucia@example.com")
    );
    assert_eq!(email.in_reply_to().as_text(), Some("c1@mail.example.com"));
    let text = email.body_text(0).unwrap();
    assert!(text.contains("Si estás en peligro"), "in Spanish: {text}");
    assert!(text.contains("988"), "{text}");
    assert_eq!(client(&app).await.status, ClientStatus::Hold);
}

on_both_backends!(
    with inbound_settings;
    an_email_reply_to_step_one_closes_the_episode_so_step_two_is_never_drafted,
    a_crisis_email_holds_the_client_and_alerts_the_coach,
    a_hard_bounce_stops_email_to_the_address_and_tells_the_coach,
    an_auto_reply_is_stored_but_is_not_engagement,
    a_repeat_is_stored_once_and_broken_mail_never_stops_the_poll,
);

/// A client quiet for 8 days, whose step-1 check-in went out by email this
/// morning. Returns the email's Message-ID.
async fn emailed_client(app: &TestApp) -> String {
    app.import_clients(
        &clients_csv(&[ClientCsv {
            email: "maria@example.com",
            channel: "email",
            ..Default::default()
        }]),
        morning() - Duration::days(8),
    )
    .await;
    app.detect(morning()).await;
    let draft = app.pending().await.pop().expect("a step-1 draft").id;
    app.approve(draft, COACH, morning()).await.unwrap();
    let sent = app.dispatch(morning()).await;
    assert_eq!(sent.sent, 1, "{sent}");
    let name = app
        .outbox_files()
        .into_iter()
        .find(|f| f.ends_with(".eml"))
        .expect("the check-in in the outbox");
    let raw = app.outbox_file(&name);
    let email = mail_parser::MessageParser::default().parse(&raw).unwrap();
    assert_eq!(
        email
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(REPLIES),
        "replies come to the agency's reply mailbox"
    );
    format!("<{}>", email.message_id().expect("a Message-ID"))
}

/// Drops an email in the inbox folder, as a mail server would deliver it.
async fn poll(app: &TestApp, now: DateTime<Utc>) -> InboxSummary {
    inbox::run(&app.ctx, now).await.expect("the poll runs")
}

async fn replies(app: &TestApp) -> Vec<serde_json::Value> {
    let admin = token(app, ADMIN).await;
    let (status, body) = call(app, Method::GET, "/api/v1/replies", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

async fn client(app: &TestApp) -> reengage::domain::client::Client {
    let mut conn = app.ctx.store.conn().await.unwrap();
    clients::by_external_id(&mut conn, "c-1")
        .await
        .unwrap()
        .unwrap()
}

fn gmail_reply(message_id: &str, in_reply_to: &str, words: &str) -> String {
    format!(
        "From: Maria Lopez <maria.lopez.42@gmail.example>\n\
         To: {REPLIES}\n\
         Subject: Re: Checking in\n\
         Date: Tue, 10 Mar 2026 11:02:00 -0400\n\
         Message-ID: {message_id}\n\
         In-Reply-To: {in_reply_to}\n\
         References: {in_reply_to}\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=\"UTF-8\"\n\
         \n\
         {words}\n\
         \n\
         On Tue, Mar 10, 2026 at 10:00 AM Rosa Diaz <coach@example.org> wrote:\n\
         > Hi Jordan, I've noticed you've been a bit quiet lately.\n\
         > How have you been?\n"
    )
}

async fn an_email_reply_to_step_one_closes_the_episode_so_step_two_is_never_drafted(app: TestApp) {
    let ours = emailed_client(&app).await;
    let later = morning() + Duration::hours(2);
    app.deliver(
        "a.eml",
        &gmail_reply(
            "<r1@mail.example.com>",
            &ours,
            "thanks, it's been a hard month",
        ),
    );
    let summary = poll(&app, later).await;
    assert_eq!((summary.stored, summary.matched), (1, 1), "{summary}");
    assert!(app.inbox.join("processed/a.eml").exists());
    assert!(!app.inbox.join("a.eml").exists());
    let items = replies(&app).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["channel"], "email");
    assert_eq!(items[0]["client_external_id"], "c-1");
    assert_eq!(items[0]["body"], "thanks, it's been a hard month");
    assert_eq!(items[0]["needs_reply"], true);
    // The reply is engagement: at 14 days of quiet (step 2's day) nothing is
    // drafted. Quiet counts again from the reply, so a new spell's first
    // step comes a week after it.
    for days in [6, 7] {
        let summary = app.detect(morning() + Duration::days(days)).await;
        assert_eq!(summary.drafted, 0, "day {days}: {summary}");
    }
    assert_eq!(app.messages(None).await.len(), 1);
    app.detect(morning() + Duration::days(8)).await;
    let again = app.pending().await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].step, Some(1), "a new spell starts at step 1");
}

async fn a_crisis_email_holds_the_client_and_alerts_the_coach(app: TestApp) {
    emailed_client(&app).await;
    // Written as a new message, not a reply: matched by the sender.
    app.deliver(
        "b.eml",
        "From: maria@example.com\n\
         To: replies@hope.example.org\n\
         Subject: hi\n\
         Message-ID: <new1@mail.example.com>\n\
         \n\
         i cant do this anymore, i want to end it\n",
    );
    let summary = poll(&app, morning() + Duration::hours(1)).await;
    assert_eq!((summary.stored, summary.matched), (1, 1), "{summary}");
    assert_eq!(client(&app).await.status, ClientStatus::Hold);
    let items = replies(&app).await;
    assert_eq!(items[0]["classification"], "crisis");
    let alerts: Vec<String> = app
        .outbox_files()
        .into_iter()
        .filter(|f| f.starts_with("alert-"))
        .collect();
    assert_eq!(
        alerts.len(),
        1,
        "one alert, by email: {:?}",
        app.outbox_files()
    );
    let alert = String::from_utf8_lossy(&app.outbox_file(&alerts[0])).into_owned();
    assert!(
        alert
            .lines()
            .any(|l| l.starts_with("To:") && l.contains(COACH)),
        "the alert goes to the client's coach: {alert}"
    );
    assert!(
        !alert.contains("end it"),
        "no reply words in the alert: {alert}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound WHERE alerted_at IS NOT NULL")
            .await,
        1
    );
}

async fn a_hard_bounce_stops_email_to_the_address_and_tells_the_coach(app: TestApp) {
    let ours = emailed_client(&app).await;
    app.deliver("c.eml", &dsn("<dsn1@mx.example.com>", "5.1.1", &ours));
    let summary = poll(&app, morning() + Duration::hours(1)).await;
    assert_eq!((summary.bounces, summary.matched), (1, 1), "{summary}");
    let coach = token(&app, COACH).await;
    let (status, json) = call(&app, Method::GET, "/api/v1/clients/c-1", Some(&coach), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["email_status"], "bounced");
    // The coach is told: the bounce waits for them with what the server said.
    let items = replies(&app).await;
    assert_eq!(items[0]["needs_reply"], true);
    let body = items[0]["body"].as_str().unwrap();
    assert!(
        body.contains("maria@example.com") && body.contains("5.1.1"),
        "{body}"
    );
    // No email goes there: the next step falls back to SMS.
    app.detect(morning() + Duration::days(7)).await;
    let drafts = app.pending().await;
    assert_eq!(drafts.len(), 1);
    assert_eq!(drafts[0].channel, reengage::domain::Channel::Sms);
    // A new address clears it.
    app.import_clients(
        &clients_csv(&[ClientCsv {
            email: "maria.new@example.com",
            channel: "email",
            ..Default::default()
        }]),
        morning() + Duration::days(8),
    )
    .await;
    let (_, json) = call(&app, Method::GET, "/api/v1/clients/c-1", Some(&coach), None).await;
    assert_eq!(json["email_status"], "ok");
    // A late bounce for the old address says nothing of the new one, and a
    // refusal of the message (spam, policy) says nothing of the address.
    app.deliver("c2.eml", &dsn("<dsn2@mx.example.com>", "5.1.1", &ours));
    app.deliver(
        "c3.eml",
        &dsn("<dsn3@mx.example.com>", "5.7.1", &ours)
            .replace("maria@example.com", "maria.new@example.com"),
    );
    let summary = poll(&app, morning() + Duration::days(9)).await;
    assert_eq!(summary.bounces, 2, "{summary}");
    let (_, json) = call(&app, Method::GET, "/api/v1/clients/c-1", Some(&coach), None).await;
    assert_eq!(json["email_status"], "ok", "{json}");
    let bodies: Vec<String> = replies(&app)
        .await
        .iter()
        .map(|r| r["body"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("5.7.1") && b.contains("not for the address")),
        "{bodies:?}"
    );
}

/// A delivery report that email to maria@example.com failed with `status`,
/// returning the headers of our message `ours`.
fn dsn(message_id: &str, status: &str, ours: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\n\
             To: coach@example.org\n\
             Subject: Undelivered Mail Returned to Sender\n\
             Message-ID: {message_id}\n\
             Auto-Submitted: auto-replied\n\
             MIME-Version: 1.0\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"XX\"\n\
             \n\
             --XX\n\
             Content-Type: text/plain\n\
             \n\
             I'm sorry to have to inform you that your message could not be delivered.\n\
             --XX\n\
             Content-Type: message/delivery-status\n\
             \n\
             Reporting-MTA: dns; mx.example.com\n\
             \n\
             Final-Recipient: rfc822; maria@example.com\n\
             Action: failed\n\
             Status: {status}\n\
             Diagnostic-Code: smtp; 550 {status} <maria@example.com>: User unknown\n\
             --XX\n\
             Content-Type: text/rfc822-headers\n\
             \n\
             From: Rosa Diaz <coach@example.org>\n\
             To: maria@example.com\n\
             Subject: Checking in\n\
             Message-ID: {ours}\n\
             --XX--\n"
    )
}

async fn an_auto_reply_is_stored_but_is_not_engagement(app: TestApp) {
    let ours = emailed_client(&app).await;
    app.deliver(
        "d.eml",
        &format!(
            "From: maria@example.com\n\
             To: {REPLIES}\n\
             Subject: Automatic reply: Checking in\n\
             Message-ID: <ooo1@mail.example.com>\n\
             In-Reply-To: {ours}\n\
             Auto-Submitted: auto-replied\n\
             \n\
             I am out of the office until Monday with limited access to email.\n"
        ),
    );
    let summary = poll(&app, morning() + Duration::hours(1)).await;
    assert_eq!((summary.auto_replies, summary.matched), (1, 1), "{summary}");
    let items = replies(&app).await;
    assert_eq!(items[0]["needs_reply"], false);
    assert_eq!(items[0]["automatic"], "auto_reply");
    assert_eq!(items[0]["subject"], "Automatic reply: Checking in");
    // Still quiet: step 2 comes at 14 days.
    let summary = app.detect(morning() + Duration::days(7)).await;
    assert_eq!(summary.drafted, 1, "{summary}");
}

async fn a_repeat_is_stored_once_and_broken_mail_never_stops_the_poll(app: TestApp) {
    let ours = emailed_client(&app).await;
    let reply = gmail_reply("<r2@mail.example.com>", &ours, "can we talk tomorrow?");
    app.deliver("1.eml", &reply);
    app.deliver("2.eml", "\n\n\n");
    app.deliver("3.eml", &reply);
    let summary = poll(&app, morning() + Duration::hours(1)).await;
    assert_eq!(summary.duplicates, 1, "{summary}");
    assert_eq!(
        (summary.stored, summary.matched, summary.unmatched),
        (2, 1, 1),
        "{summary}"
    );
    for name in ["1.eml", "2.eml", "3.eml"] {
        assert!(app.inbox.join("processed").join(name).exists(), "{name}");
    }
    let unreadable: Vec<serde_json::Value> = replies(&app)
        .await
        .into_iter()
        .filter(|r| r["client_external_id"].is_null())
        .collect();
    assert_eq!(unreadable.len(), 1, "{unreadable:?}");
    assert_eq!(
        unreadable[0]["unmatched_reason"], "unreadable: the message is empty",
        "admins see why"
    );
    // Nothing is left to read, so a second poll does nothing.
    assert_eq!(
        poll(&app, morning() + Duration::hours(2)).await,
        InboxSummary::default()
    );
}

/// One case of `tests/data/email/cases.json`: a real message shape and what
/// a reader must get out of it.
#[derive(serde::Deserialize)]
struct Case {
    file: String,
    kind: String,
    from: Option<String>,
    in_reply_to: Option<String>,
    references_contains: Option<String>,
    #[serde(default)]
    original_message_id: Option<String>,
    body_contains: Vec<String>,
    body_excludes: Vec<String>,
    bounce_status: Option<String>,
    bounce_recipient: Option<String>,
    #[serde(default)]
    malformed: bool,
}

/// Every message in the corpus (Gmail, Outlook, Apple Mail, Yahoo and more;
/// HTML-only replies; out-of-office mail; DSN bounces; broken MIME) is read
/// as it must be: its kind, sender and thread, the client's own words kept
/// and the quoted history gone. Prints the score of each check.
#[test]
fn the_email_reader_meets_the_corpus() {
    use reengage::domain::mail::{self, Automatic};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/email");
    let cases: Vec<Case> =
        serde_json::from_slice(&std::fs::read(dir.join("cases.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut checks = std::collections::BTreeMap::<&str, (u32, u32)>::new();
    let mut check = |name: &'static str, ok: bool, case: &str, detail: String| {
        let entry = checks.entry(name).or_default();
        entry.1 += 1;
        if ok {
            entry.0 += 1;
        } else {
            failures.push(format!("{case}: {name}: {detail}"));
        }
    };
    for case in &cases {
        let raw = std::fs::read(dir.join(&case.file)).unwrap();
        let email = match mail::read(&raw) {
            Ok(email) => email,
            Err(e) => {
                check("readable", case.malformed, &case.file, e);
                continue;
            }
        };
        let kind = match &email.automatic {
            None => "reply",
            Some(Automatic::AutoReply) => "auto_reply",
            Some(Automatic::Bounce(b)) if b.hard => "bounce_hard",
            Some(Automatic::Bounce(_)) => "bounce_soft",
        };
        check(
            "kind",
            kind == case.kind,
            &case.file,
            format!("read as {kind}"),
        );
        check(
            "from",
            email.from == case.from,
            &case.file,
            format!("{:?}", email.from),
        );
        for id in [
            &case.in_reply_to,
            &case.references_contains,
            &case.original_message_id,
        ]
        .into_iter()
        .flatten()
        {
            check(
                "thread",
                email.answers.contains(id),
                &case.file,
                format!("{id} not in {:?}", email.answers),
            );
        }
        if let Some(Automatic::Bounce(bounce)) = &email.automatic {
            check(
                "bounce status",
                bounce.status == case.bounce_status,
                &case.file,
                format!("{:?}", bounce.status),
            );
            check(
                "bounce recipient",
                bounce.recipient == case.bounce_recipient,
                &case.file,
                format!("{:?}", bounce.recipient),
            );
            continue;
        }
        for phrase in &case.body_contains {
            check(
                "new words kept",
                email.text.contains(phrase.as_str()),
                &case.file,
                format!("{phrase:?} missing from {:?}", email.text),
            );
        }
        for phrase in &case.body_excludes {
            check(
                "history removed",
                !email.text.contains(phrase.as_str()),
                &case.file,
                format!("{phrase:?} left in {:?}", email.text),
            );
        }
    }
    for (name, (passed, total)) in &checks {
        println!("{name}: {passed}/{total}");
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

mod imap {
    //! The same, from a real IMAP server: Dovecot, which `scripts/test` starts
    //! on loopback (`TEST_IMAP_URL`). Each test has mailboxes of its own.

    use super::*;
    use futures::TryStreamExt;

    fn server() -> url::Url {
        let url = std::env::var("TEST_IMAP_URL").expect(
            "TEST_IMAP_URL is not set: the IMAP tests need a server (scripts/test starts one)",
        );
        url::Url::parse(&url).expect("TEST_IMAP_URL is a URL")
    }

    /// Inbound over IMAP from `mailbox`; with `processed`, done messages move there.
    fn settings(mailbox: &str, processed: &str) -> String {
        let url = server();
        format!(
            "[email.inbound]\ntransport = \"imap\"\naddress = \"{REPLIES}\"\n\
             [email.inbound.imap]\nhost = \"{}\"\nport = {}\ntls = \"none\"\nusername = \"{}\"\n\
             password = \"{}\"\nmailbox = \"{mailbox}\"\nprocessed_mailbox = \"{processed}\"\n\
             timeout_seconds = 10\n",
            url.host_str().unwrap(),
            url.port().unwrap(),
            url.username(),
            url.password().unwrap()
        )
    }

    type Session = async_imap::Session<tokio::net::TcpStream>;

    /// A mail client of our own, as the server's delivery would be.
    async fn session() -> Session {
        let url = server();
        let tcp = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap()))
            .await
            .unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client
            .login(url.username(), url.password().unwrap())
            .await
            .map_err(|(e, _)| e)
            .unwrap()
    }

    async fn unseen(session: &mut Session, mailbox: &str) -> usize {
        session.select(mailbox).await.unwrap();
        session.uid_search("UNSEEN").await.unwrap().len()
    }

    async fn count(session: &mut Session, mailbox: &str) -> u32 {
        session.select(mailbox).await.unwrap().exists
    }

    async fn app_on(mailbox: &str, processed: &str) -> TestApp {
        let mut imap = session().await;
        imap.create(mailbox).await.unwrap();
        if !processed.is_empty() {
            imap.create(processed).await.unwrap();
        }
        imap.logout().await.unwrap();
        TestApp::sqlite_with(&settings(mailbox, processed)).await
    }

    fn names() -> (String, String) {
        let id = uuid::Uuid::new_v4().simple().to_string();
        (format!("t{id}"), format!("t{id}-done"))
    }

    #[tokio::test]
    #[ignore = "needs an IMAP server: scripts/test runs it with TEST_IMAP_URL"]
    async fn replies_are_fetched_stored_then_flagged_seen_and_a_crash_between_is_no_repeat() {
        let (mailbox, _) = names();
        let app = app_on(&mailbox, "").await;
        let ours = emailed_client(&app).await;
        let mut imap = session().await;
        let first = gmail_reply("<i1@mail.example.com>", &ours, "doing better, thanks");
        let second = gmail_reply("<i2@mail.example.com>", &ours, "can you call me?");
        for raw in [&first, &second] {
            imap.append(&mailbox, None, None, raw.replace('\n', "\r\n"))
                .await
                .unwrap();
        }
        // A crash after the second was stored, before it was flagged: it is
        // still unseen on the server, and stored here.
        inbox::receive(&app.ctx, second.as_bytes(), morning())
            .await
            .unwrap();
        assert_eq!(unseen(&mut imap, &mailbox).await, 2);
        let summary = poll(&app, morning() + Duration::minutes(1)).await;
        assert_eq!(
            (summary.stored, summary.matched, summary.duplicates),
            (1, 1, 1),
            "{summary}"
        );
        assert_eq!(unseen(&mut imap, &mailbox).await, 0, "both flagged \\Seen");
        assert_eq!(count(&mut imap, &mailbox).await, 2, "and left in place");
        let bodies: Vec<String> = replies(&app)
            .await
            .iter()
            .map(|r| r["body"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(bodies, ["can you call me?", "doing better, thanks"]);
        // Nothing new: the next poll stores nothing.
        assert_eq!(
            poll(&app, morning() + Duration::minutes(2)).await,
            InboxSummary::default()
        );
        imap.logout().await.unwrap();
    }

    #[tokio::test]
    #[ignore = "needs an IMAP server: scripts/test runs it with TEST_IMAP_URL"]
    async fn with_a_processed_mailbox_done_messages_move_there() {
        let (mailbox, processed) = names();
        let app = app_on(&mailbox, &processed).await;
        let ours = emailed_client(&app).await;
        let mut imap = session().await;
        let reply = gmail_reply("<i3@mail.example.com>", &ours, "i'm ok");
        imap.append(&mailbox, None, None, reply.replace('\n', "\r\n"))
            .await
            .unwrap();
        imap.append(&mailbox, None, None, "not an email at all\r\n")
            .await
            .unwrap();
        // Someone read this one in webmail first: it is taken in all the same.
        let read = gmail_reply("<i4@mail.example.com>", &ours, "also, thank you");
        imap.append(&mailbox, Some("(\\Seen)"), None, read.replace('\n', "\r\n"))
            .await
            .unwrap();
        let summary = poll(&app, morning() + Duration::minutes(1)).await;
        assert_eq!((summary.stored, summary.matched), (3, 2), "{summary}");
        assert_eq!(count(&mut imap, &mailbox).await, 0);
        assert_eq!(count(&mut imap, &processed).await, 3);
        let fetched: Vec<_> = imap
            .fetch("1:*", "FLAGS")
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(fetched.len(), 3);
        imap.logout().await.unwrap();
    }

    #[tokio::test]
    #[ignore = "needs an IMAP server: scripts/test runs it with TEST_IMAP_URL"]
    async fn a_wrong_password_is_a_clear_error_and_stores_nothing() {
        let (mailbox, _) = names();
        let app = app_on(&mailbox, "").await;
        let mut settings = settings(&mailbox, "");
        settings = settings.replace(
            &format!("password = \"{}\"", server().password().unwrap()),
            "password = \"wrong-pw-4711\"",
        );
        let wrong = TestApp::sqlite_with(&settings).await;
        let error = inbox::run(&wrong.ctx, morning()).await.unwrap_err();
        assert!(
            format!("{error:#}").contains("refused the login"),
            "{error:#}"
        );
        assert!(
            !format!("{error:#}").contains("wrong-pw-4711"),
            "the password is never in an error"
        );
        drop(app);
    }
}
