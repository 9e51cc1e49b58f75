//! The whole loop, import → detect → draft → approve → dispatch → send log, as
//! stories on both backends.

use crate::common::*;
use chrono::Duration;
use reengage::domain::{Channel, MessageStatus, SendOutcome};
use reengage::pipeline::casework::CaseAction;
use reengage::pipeline::detect::SkipReason;
use reengage::pipeline::intake::ImportOptions;
use reengage::pipeline::review::ActionError;
use reengage::store::clients;

on_both_backends!(
    approved_messages_reach_the_outbox_and_the_send_log_once,
    detecting_twice_or_reimporting_changes_nothing,
    a_client_who_checks_in_after_a_draft_gets_nothing,
    opt_outs_move_the_draft_to_email_or_leave_the_client_out,
    a_message_due_at_23_00_waits_for_09_00_across_spring_forward,
    a_message_due_at_23_00_waits_for_09_00_across_fall_back,
    a_second_message_the_same_day_waits_for_the_next_day,
    a_bad_csv_imports_nothing_and_names_every_bad_line,
    a_coach_cannot_approve_another_coachs_draft,
    a_client_who_stays_quiet_gets_three_drafts_then_none,
    files_longer_than_a_chunk_import_whole_and_once,
    a_file_that_fails_to_read_part_way_imports_nothing,
);

async fn approved_messages_reach_the_outbox_and_the_send_log_once(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z"); // 11:00 in New York
    let csv = clients_csv(&[
        ClientCsv {
            external_id: "c-sms",
            first_name: "Jordan",
            phone: "(201) 555-0111",
            channel: "sms",
            ..Default::default()
        },
        ClientCsv {
            external_id: "c-mail",
            first_name: "Maria",
            email: "maria@example.org",
            channel: "email",
            ..Default::default()
        },
        ClientCsv {
            external_id: "c-left-pending",
            first_name: "Devon",
            ..Default::default()
        },
        ClientCsv {
            external_id: "c-recent",
            first_name: "Aisha",
            ..Default::default()
        },
    ]);
    let report = app.import_clients(&csv, now - Duration::days(40)).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(report.created, 4);
    let events = "external_id,kind,occurred_at,note\n\
                  c-sms,check_in,2026-05-20,\n\
                  c-mail,session_attended,2026-05-22T10:00:00-04:00,group\n\
                  c-left-pending,check_in,2026-05-21,\n\
                  c-recent,check_in,2026-05-30,\n";
    assert!(app.import_events(events, now).await.committed);

    let summary = app.detect(now).await;
    assert_eq!(summary.drafted, 3, "{summary}");
    let pending = app.pending().await;
    let draft_for = |id: &str| {
        pending
            .iter()
            .find(|m| m.client_external_id == id)
            .unwrap_or_else(|| panic!("a draft for {id}"))
            .clone()
    };
    let sms = draft_for("c-sms");
    let mail = draft_for("c-mail");
    assert_eq!(sms.channel, "sms");
    assert_eq!(mail.channel, "email");
    assert!(pending.iter().all(|m| m.client_external_id != "c-recent"));

    app.approve(sms.id, COACH, now).await.unwrap();
    app.approve(mail.id, COACH, now).await.unwrap();
    let sent = app.dispatch(now).await;
    assert_eq!(sent.sent, 2, "{sent}");

    assert_eq!(
        app.outbox_files(),
        vec![format!("{}.json", sms.id), format!("{}.eml", mail.id)]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let sms_file: serde_json::Value =
        serde_json::from_slice(&app.outbox_file(&format!("{}.json", sms.id))).unwrap();
    assert_eq!(sms_file["to"], "+12015550111");
    assert_eq!(sms_file["body"], sms.body.as_str());
    assert!(
        sms.body.starts_with("Hi Jordan, it's Rosa."),
        "{}",
        sms.body
    );
    assert!(sms.body.contains("Reply STOP to opt out"));

    let eml = app.outbox_file(&format!("{}.eml", mail.id));
    let parsed = mail_parser::MessageParser::default()
        .parse(&eml)
        .expect("the .eml parses");
    assert_eq!(parsed.subject(), Some("Thinking of you, Maria"));
    assert_eq!(
        parsed
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("maria@example.org")
    );
    assert_eq!(
        parsed
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(COACH)
    );
    let text = parsed.body_text(0).expect("a plain-text part");
    assert!(text.contains("Hi Maria,"), "{text}");
    assert_eq!(text.replace("\r\n", "\n").trim(), mail.body.trim());
    let html = parsed.body_html(0).expect("an HTML part");
    assert!(html.contains("<p>Hi Maria,</p>"), "{html}");
    let stored_id = app.message(mail.id).await.provider_message_id.unwrap();
    assert_eq!(
        parsed.message_id().map(|id| format!("<{id}>")),
        Some(stored_id)
    );

    let log = app.send_log().await;
    assert_eq!(log.len(), 2);
    for entry in &log {
        assert_eq!(entry.attempt, 1);
        assert_eq!(entry.outcome, Some(SendOutcome::Sent));
        assert_eq!(entry.started_at, now);
    }
    assert_eq!(app.message(sms.id).await.status, "sent");
    assert_eq!(app.message(mail.id).await.status, "sent");
    assert_eq!(
        app.message(draft_for("c-left-pending").id).await.status,
        "pending"
    );

    // Nothing goes twice.
    let again = app.dispatch(now + Duration::hours(1)).await;
    assert_eq!(again.sent, 0);
    assert_eq!(app.send_log().await.len(), 2);
    assert_eq!(app.outbox_files().len(), 2);
}

async fn detecting_twice_or_reimporting_changes_nothing(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let csv = clients_csv(&[
        ClientCsv {
            external_id: "a",
            ..Default::default()
        },
        ClientCsv {
            external_id: "b",
            first_name: "Luis",
            language: "es",
            ..Default::default()
        },
    ]);
    // A missed session, a missed dose and a discharge are recorded, and are
    // not engagement: b is still quiet since May 10.
    let events = "external_id,kind,occurred_at,note\na,check_in,2026-05-01,\nb,check_in,2026-05-10,\n\
                  b,session_missed,2026-05-17,\nb,dose_missed,2026-05-28,morning dose\n\
                  b,discharged,2026-05-29,residential\n";
    app.import_clients(&csv, now - Duration::days(60)).await;
    app.import_events(events, now).await;
    assert_eq!(app.detect(now).await.drafted, 2);
    let first = app.messages(None).await;

    let second = app.detect(now).await;
    assert_eq!(second.drafted, 0, "{second}");
    assert_eq!(app.detect(now + Duration::hours(6)).await.drafted, 0);

    let clients_again = app.import_clients(&csv, now).await;
    assert_eq!(
        (
            clients_again.created,
            clients_again.updated,
            clients_again.unchanged
        ),
        (0, 0, 2)
    );
    let events_again = app.import_events(events, now).await;
    assert_eq!((events_again.created, events_again.unchanged), (0, 5));
    assert_eq!(app.detect(now).await.drafted, 0);

    let after: Vec<(i64, String, String)> = app
        .messages(None)
        .await
        .into_iter()
        .map(|m| (m.id, m.status.to_string(), m.body))
        .collect();
    let before: Vec<(i64, String, String)> = first
        .into_iter()
        .map(|m| (m.id, m.status.to_string(), m.body))
        .collect();
    assert_eq!(after, before);
    let spanish = after
        .iter()
        .find(|m| m.2.starts_with("Hola"))
        .expect("a Spanish draft");
    assert!(spanish.2.contains("Luis"));
}

async fn a_client_who_checks_in_after_a_draft_gets_nothing(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let csv = clients_csv(&[
        ClientCsv {
            external_id: "pending-one",
            ..Default::default()
        },
        ClientCsv {
            external_id: "approved-one",
            first_name: "Keisha",
            ..Default::default()
        },
    ]);
    app.import_clients(&csv, now - Duration::days(30)).await;
    app.import_events(
        "external_id,kind,occurred_at,note\npending-one,check_in,2026-05-20,\napproved-one,check_in,2026-05-20,\n",
        now,
    )
    .await;
    app.detect(now).await;
    let drafts = app.pending().await;
    assert_eq!(drafts.len(), 2);
    let approved = drafts
        .iter()
        .find(|m| m.client_external_id == "approved-one")
        .unwrap();
    app.approve(approved.id, COACH, now).await.unwrap();

    // Both check in before anything is sent (the approved one during quiet hours).
    let report = app
        .import_events(
            "external_id,kind,occurred_at,note\n\
             pending-one,check_in,2026-06-01T16:00:00Z,\n\
             approved-one,coach_contact,2026-06-01T16:30:00Z,called back\n",
            now + Duration::hours(2),
        )
        .await;
    assert_eq!(report.re_engaged, 2);
    for m in app.messages(None).await {
        assert_eq!(
            m.status, "cancelled",
            "message {} for {}",
            m.id, m.client_external_id
        );
    }
    let dispatched = app.dispatch(now + Duration::hours(3)).await;
    assert_eq!(dispatched.sent, 0);
    assert!(app.outbox_files().is_empty());
    assert!(app.send_log().await.is_empty());
    assert_eq!(app.detect(now + Duration::hours(3)).await.drafted, 0);
}

async fn opt_outs_move_the_draft_to_email_or_leave_the_client_out(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let csv = clients_csv(&[
        ClientCsv {
            external_id: "sms-opted-out",
            email: "grace@example.org",
            channel: "sms",
            ..Default::default()
        },
        ClientCsv {
            external_id: "both-opted-out",
            channel: "sms",
            ..Default::default()
        },
        ClientCsv {
            external_id: "no-sms-consent",
            email: "ethan@example.org",
            channel: "sms",
            consent_sms: "no",
            ..Default::default()
        },
    ]);
    app.import_clients(&csv, now - Duration::days(20)).await;
    {
        let mut conn = app.ctx.store.conn().await.unwrap();
        for (id, channels) in [
            ("sms-opted-out", &[Channel::Sms][..]),
            ("both-opted-out", &[Channel::Sms, Channel::Email][..]),
        ] {
            let client = clients::by_external_id(&mut conn, id)
                .await
                .unwrap()
                .unwrap();
            for channel in channels {
                clients::opt_out(&mut conn, client.id, *channel, now - Duration::days(1))
                    .await
                    .unwrap();
            }
        }
    }
    let summary = app.detect(now).await;
    assert_eq!(summary.drafted, 2, "{summary}");
    assert_eq!(
        summary.skipped.get(&SkipReason::NoChannel),
        Some(&1),
        "{summary}"
    );
    let drafts = app.pending().await;
    let by_client = |id: &str| drafts.iter().find(|m| m.client_external_id == id);
    let moved = by_client("sms-opted-out").expect("a draft by email");
    assert_eq!(
        (moved.channel.as_ref(), moved.to.as_str()),
        ("email", "grace@example.org")
    );
    assert_eq!(by_client("no-sms-consent").unwrap().channel, "email");
    assert!(by_client("both-opted-out").is_none());
}

/// A client in New York; the draft is approved at `approve_at` (23:00 local).
/// Nothing goes at `still_quiet`; it goes at `opens` (09:00 local the next day).
async fn quiet_hours_story(app: TestApp, approve_at: &str, still_quiet: &str, opens: &str) {
    let approve_at = at(approve_at);
    app.import_clients(
        &clients_csv(&[ClientCsv::default()]),
        approve_at - Duration::days(10),
    )
    .await;
    app.detect(approve_at).await;
    let draft = app.pending().await.pop().expect("a draft");
    app.approve(draft.id, COACH, approve_at).await.unwrap();

    let night = app.dispatch(approve_at).await;
    assert_eq!((night.sent, night.deferred_quiet_hours), (0, 1), "{night}");
    assert_eq!(app.dispatch(at(still_quiet)).await.sent, 0);
    assert!(app.outbox_files().is_empty());
    let morning = app.dispatch(at(opens)).await;
    assert_eq!(morning.sent, 1, "{morning}");
    let log = app.send_log().await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].started_at, at(opens));
    assert_eq!(app.outbox_files(), vec![format!("{}.json", draft.id)]);
}

async fn a_message_due_at_23_00_waits_for_09_00_across_spring_forward(app: TestApp) {
    // 23:00 EST on 7 March; clocks go forward that night; 09:00 EDT is 13:00 UTC.
    quiet_hours_story(
        app,
        "2026-03-08T04:00:00Z",
        "2026-03-08T12:59:00Z",
        "2026-03-08T13:00:00Z",
    )
    .await;
}

async fn a_message_due_at_23_00_waits_for_09_00_across_fall_back(app: TestApp) {
    // 23:00 EDT on 31 October; clocks go back that night; 09:00 EST is 14:00 UTC.
    quiet_hours_story(
        app,
        "2026-11-01T03:00:00Z",
        "2026-11-01T13:59:00Z",
        "2026-11-01T14:00:00Z",
    )
    .await;
}

async fn a_second_message_the_same_day_waits_for_the_next_day(app: TestApp) {
    let now = at("2026-06-01T14:00:00Z"); // 10:00 in New York
    let first = app.one_draft(now).await;
    app.approve(first.id, COACH, now).await.unwrap();
    assert_eq!(app.dispatch(now).await.sent, 1);

    // The client answers, then goes quiet again; a coach's own follow-up is
    // approved later the same day.
    let later = now + Duration::hours(3);
    let second = queue_follow_up(&app, "c-1", later).await;
    let same_day = app.dispatch(later).await;
    assert_eq!((same_day.sent, same_day.deferred_cap), (0, 1), "{same_day}");
    assert_eq!(app.message(second).await.status, "approved");
    // Next day 08:59 is still quiet hours; 09:00 it goes.
    assert_eq!(app.dispatch(at("2026-06-02T12:59:00Z")).await.sent, 0);
    assert_eq!(app.dispatch(at("2026-06-02T13:00:00Z")).await.sent, 1);
    assert_eq!(app.send_log().await.len(), 2);
}

/// Puts an approved message for the client in a new episode, as a coach's
/// follow-up would be (the cadence never drafts twice in one day by itself).
async fn queue_follow_up(
    app: &TestApp,
    external_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> i64 {
    use reengage::store::{episodes, messages};
    let mut conn = app.ctx.store.conn().await.unwrap();
    let client = clients::by_external_id(&mut conn, external_id)
        .await
        .unwrap()
        .unwrap();
    episodes::close_open(
        &mut conn,
        &[client.id],
        episodes::CloseReason::Refused(reengage::domain::eligibility::Refusal::ReEngaged),
        now,
    )
    .await
    .unwrap();
    let (_, episode) = episodes::open(&mut conn, &[(client.id, 1)], now)
        .await
        .unwrap()[0];
    let stored = messages::insert_drafts(
        &mut conn,
        &[messages::NewDraft {
            client_id: client.id,
            coach_id: client.coach_id,
            episode_id: episode,
            step: 1,
            channel: Channel::Sms,
            recipient: client.phone.as_deref().unwrap(),
            subject: None,
            body: "Thanks for getting back to me. Talk soon. Reply STOP to opt out.",
            html: None,
            template: "manual",
            template_hash: "-",
            variant: None,
            email_message_id: None,
            lint: "[]",
        }],
        now,
    )
    .await
    .unwrap();
    assert_eq!(stored, 1);
    let id: i64 = sqlx::query_scalar("SELECT id FROM messages WHERE episode_id = $1")
        .bind(episode)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    drop(conn);
    app.approve(id, COACH, now).await.unwrap();
    id
}

async fn a_bad_csv_imports_nothing_and_names_every_bad_line(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let csv = clients_csv(&[
        ClientCsv {
            external_id: "good-1",
            ..Default::default()
        },
        ClientCsv {
            external_id: "bad-phone",
            phone: "555-12",
            ..Default::default()
        },
        ClientCsv {
            external_id: "no-coach",
            coach: "nobody@example.org",
            ..Default::default()
        },
        ClientCsv {
            external_id: "good-1",
            first_name: "Twice",
            ..Default::default()
        },
        ClientCsv {
            external_id: "good-2",
            ..Default::default()
        },
    ]);
    let report = app.import_clients(&csv, now).await;
    assert!(!report.committed);
    let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5], "{:?}", report.errors);
    assert!(
        report.errors[0].to_string().starts_with("line 3: phone:"),
        "{}",
        report.errors[0]
    );
    assert!(report.errors[1].reason.contains("nobody@example.org"));
    assert!(
        report.errors[2]
            .reason
            .contains("already appears on line 2")
    );
    let mut conn = app.ctx.store.conn().await.unwrap();
    assert!(
        clients::by_external_id(&mut conn, "good-1")
            .await
            .unwrap()
            .is_none()
    );
    drop(conn);

    let skipping = app
        .import_clients_with(&csv, ImportOptions { skip_invalid: true }, now)
        .await;
    assert!(skipping.committed);
    assert_eq!((skipping.created, skipping.errors.len()), (2, 3));
    let mut conn = app.ctx.store.conn().await.unwrap();
    let good = clients::by_external_id(&mut conn, "good-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(good.first_name, "Jordan");
    assert_eq!(good.phone.as_deref(), Some("+12015550123"));
    assert!(
        clients::by_external_id(&mut conn, "good-2")
            .await
            .unwrap()
            .is_some()
    );
    drop(conn);

    let wrong_header = "id,name,coach\n1,Sam,rosa@example.org\n";
    let report = app
        .import_clients_with(wrong_header, ImportOptions { skip_invalid: true }, now)
        .await;
    assert!(!report.committed);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0]
            .to_string()
            .starts_with("line 1: bad header"),
        "{}",
        report.errors[0]
    );

    let events = "external_id,kind,occurred_at,note\n\
                  good-1,check_in,2026-05-01,\n\
                  ghost,check_in,2026-05-01,\n\
                  good-2,waved,2026-05-01,\n\
                  good-2,check_in,yesterday,\n\
                  good-2,check_in,2027-01-01,\n";
    let report = app.import_events(events, now).await;
    assert!(!report.committed);
    let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{:?}", report.errors);
    assert!(
        report.errors[0]
            .reason
            .contains("no client has the external_id ghost")
    );
    assert!(report.errors[3].reason.contains("in the future"));
}

async fn a_coach_cannot_approve_another_coachs_draft(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let draft = app.one_draft(now).await;
    assert!(matches!(
        app.approve(draft.id, OTHER_COACH, now).await,
        Err(ActionError::NotYours { id, coach }) if id == draft.id && coach == OTHER_COACH
    ));
    assert!(app.reject(draft.id, OTHER_COACH, now).await.is_err());
    assert_eq!(app.message(draft.id).await.status, "pending");
    assert_eq!(app.dispatch(now).await.sent, 0);

    // An admin may act on anyone's draft, and acting twice is refused.
    app.approve(draft.id, ADMIN, now).await.unwrap();
    assert!(matches!(
        app.approve(draft.id, COACH, now).await,
        Err(ActionError::NotPending { .. })
    ));
    assert_eq!(
        app.message(draft.id).await.approved_by.as_deref(),
        Some(ADMIN)
    );
}

async fn a_client_who_stays_quiet_gets_three_drafts_then_none(app: TestApp) {
    let start = at("2026-04-01T15:00:00Z");
    app.import_clients(&clients_csv(&[ClientCsv::default()]), start)
        .await;
    let mut drafted_on = Vec::new();
    for day in 0..=70 {
        let now = start + Duration::days(day);
        let summary = app.detect(now).await;
        for draft in app.pending().await {
            drafted_on.push((day, draft.step));
            app.approve(draft.id, COACH, now).await.unwrap();
        }
        assert!(summary.drafted <= 1);
        app.dispatch(now).await;
    }
    // Steps at 7, 14 and 30 days quiet, each once; nothing after the last.
    assert_eq!(drafted_on, vec![(7, Some(1)), (14, Some(2)), (30, Some(3))]);
    let all = app.messages(Some(MessageStatus::Sent)).await;
    assert_eq!(all.len(), 3);
    assert_eq!(app.send_log().await.len(), 3);
}

on_both_backends!(
    a_draft_no_one_acts_on_expires_and_the_cadence_moves_on,
    after_shutdown_begins_dispatch_claims_nothing_new,
);

async fn a_draft_no_one_acts_on_expires_and_the_cadence_moves_on(app: TestApp) {
    let start = at("2026-04-01T15:00:00Z");
    app.import_clients(&clients_csv(&[ClientCsv::default()]), start)
        .await;
    let day7 = start + Duration::days(7);
    assert_eq!(app.detect(day7).await.drafted, 1);
    let first = app.pending().await.pop().unwrap();
    // 72 hours later, still untouched: it expires.
    let summary = app.detect(day7 + Duration::hours(72)).await;
    assert_eq!(summary.expired, 1, "{summary}");
    assert_eq!(app.message(first.id).await.status, "expired");
    assert!(app.pending().await.is_empty());
    // Step 2 comes at 14 days quiet and at least 7 days after step 1 settled.
    assert_eq!(app.detect(start + Duration::days(14)).await.drafted, 0);
    assert_eq!(
        app.detect(day7 + Duration::hours(72) + Duration::days(7))
            .await
            .drafted,
        1
    );
    assert_eq!(app.pending().await.pop().unwrap().step, Some(2));
}

async fn after_shutdown_begins_dispatch_claims_nothing_new(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let draft = app.one_draft(now).await;
    app.approve(draft.id, COACH, now).await.unwrap();
    app.ctx.shutdown.cancel();
    let summary = app.dispatch(now).await;
    assert_eq!(summary.sent, 0);
    assert_eq!(app.message(draft.id).await.status, "approved");
    assert!(app.outbox_files().is_empty());
}

on_both_backends!(
    dispatch_never_sends_past_a_no,
    the_caps_hold_when_several_drafts_are_approved_at_once,
    a_status_this_version_does_not_know_names_its_table_and_value,
);

/// Approved, then: opted out of SMS, put on hold, or replied. None goes out.
async fn dispatch_never_sends_past_a_no(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let rows: Vec<ClientCsv> = ["no-1", "no-2", "no-3"]
        .into_iter()
        .zip(["+12015550161", "+12015550162", "+12015550163"])
        .map(|(external_id, phone)| ClientCsv {
            external_id,
            phone,
            ..Default::default()
        })
        .collect();
    app.import_clients(&clients_csv(&rows), now - Duration::days(10))
        .await;
    app.detect(now).await;
    for draft in app.pending().await {
        app.approve(draft.id, COACH, now).await.unwrap();
    }
    app.act(COACH, "no-1", CaseAction::OptOut(Channel::Sms), now)
        .await;
    app.act(
        COACH,
        "no-2",
        CaseAction::SetStatus(reengage::domain::ClientStatus::Hold),
        now,
    )
    .await;
    app.import_events(
        "external_id,kind,occurred_at,note\nno-3,message_reply,2026-06-01T14:30:00Z,\n",
        now,
    )
    .await;
    let summary = app.dispatch(now + Duration::minutes(5)).await;
    assert_eq!(summary.sent, 0, "{summary}");
    assert!(app.outbox_files().is_empty());
    for m in app.messages(None).await {
        assert_eq!(m.status, "cancelled", "{}", m.client_external_id);
    }
}

/// Two drafts for one client approved together: one goes today, one waits.
async fn the_caps_hold_when_several_drafts_are_approved_at_once(app: TestApp) {
    let now = at("2026-06-01T14:00:00Z");
    let first = app.one_draft(now).await;
    app.approve(first.id, COACH, now).await.unwrap();
    let second = queue_follow_up(&app, "c-1", now).await;
    // Both due in the same run: the first is sent, the second waits for tomorrow.
    let summary = app.dispatch(now).await;
    assert_eq!((summary.sent, summary.deferred_cap), (1, 1), "{summary}");
    assert_eq!(app.message(second).await.status, "approved");
    assert_eq!(app.outbox_files().len(), 1);
}

on_both_backends!(each_coach_gets_one_digest_a_day_with_counts_and_no_details);

async fn each_coach_gets_one_digest_a_day_with_counts_and_no_details(app: TestApp) {
    let now = at("2026-06-01T13:00:00Z");
    app.import_clients(
        &clients_csv(&[ClientCsv {
            first_name: "Jordan",
            ..Default::default()
        }]),
        now - Duration::days(10),
    )
    .await;
    app.detect(now).await;
    let summary = reengage::pipeline::follow_up::digest::run(&app.ctx, now)
        .await
        .unwrap();
    // Rosa (the draft) and the admin (who sees all); Marcus has nothing waiting.
    assert_eq!((summary.sent, summary.nothing_waiting), (2, 1), "{summary}");
    let digests: Vec<String> = app
        .outbox_files()
        .into_iter()
        .filter(|f| f.starts_with("digest-"))
        .collect();
    assert_eq!(digests.len(), 2, "{digests:?}");
    let mut conn = app.ctx.store.conn().await.unwrap();
    let rosa = reengage::store::coaches::by_email(&mut conn, COACH)
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let raw = app.outbox_file(&format!("digest-{}-2026-06-01.eml", rosa.id));
    let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("1 draft(s) wait for you"), "{text}");
    assert!(
        !text.contains("+1201") && !text.contains("jordan@example.org"),
        "no contact details"
    );
    let again = reengage::pipeline::follow_up::digest::run(&app.ctx, now + Duration::hours(3))
        .await
        .unwrap();
    assert_eq!((again.sent, again.already_sent_today), (0, 2), "{again}");
}

on_both_backends!(retention_clears_old_words_and_keeps_drafts_and_evidence);

async fn retention_clears_old_words_and_keeps_drafts_and_evidence(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    app.import_clients(
        &clients_csv(&[
            ClientCsv {
                external_id: "sent-one",
                phone: "+12015550171",
                ..Default::default()
            },
            ClientCsv {
                external_id: "pending-one",
                phone: "+12015550172",
                ..Default::default()
            },
        ]),
        now - Duration::days(10),
    )
    .await;
    app.detect(now).await;
    let drafts = app.pending().await;
    let sent = drafts
        .iter()
        .find(|d| d.client_external_id == "sent-one")
        .unwrap()
        .id;
    let pending = drafts
        .iter()
        .find(|d| d.client_external_id == "pending-one")
        .unwrap()
        .id;
    app.approve(sent, COACH, now).await.unwrap();
    app.dispatch(now).await;
    // A snooze keeps the other draft pending well past the body cutoff.
    let coach = reengage::pipeline::review::acting_coach(&app.ctx, COACH)
        .await
        .unwrap();
    reengage::pipeline::review::snooze(&app.ctx, &coach, pending, now + Duration::days(200), now)
        .await
        .unwrap();

    let early =
        reengage::pipeline::follow_up::housekeeping::run(&app.ctx, now + Duration::days(89))
            .await
            .unwrap();
    assert_eq!(early.bodies_cleared, 0);
    let later =
        reengage::pipeline::follow_up::housekeeping::run(&app.ctx, now + Duration::days(91))
            .await
            .unwrap();
    assert_eq!(later.bodies_cleared, 1, "{later}");
    assert_eq!(
        app.message(sent).await.body,
        reengage::pipeline::follow_up::housekeeping::REMOVED
    );
    assert_ne!(
        app.message(pending).await.body,
        reengage::pipeline::follow_up::housekeeping::REMOVED
    );
    assert_eq!(app.send_log().await.len(), 1, "send-log metadata stays");

    let much_later = reengage::pipeline::follow_up::housekeeping::run(
        &app.ctx,
        now + Duration::days(365 * 6 + 10),
    )
    .await
    .unwrap();
    assert_eq!(much_later.send_log_rows_deleted, 1);
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 10).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "approve"),
        "the audit log is never deleted"
    );
}

on_both_backends!(a_tick_while_the_previous_run_is_going_is_skipped);

async fn a_tick_while_the_previous_run_is_going_is_skipped(app: TestApp) {
    use reengage::cli::scheduler::{JobKind, Tick, tick};
    app.import_clients(
        &clients_csv(&[ClientCsv::default()]),
        chrono::Utc::now() - Duration::days(10),
    )
    .await;
    let gate = tokio::sync::Mutex::new(());
    let running = gate.lock().await;
    assert_eq!(tick(JobKind::Detect, &gate, &app.ctx).await, Tick::Skipped);
    assert!(
        app.pending().await.is_empty(),
        "a skipped tick does nothing"
    );
    drop(running);
    assert_eq!(tick(JobKind::Detect, &gate, &app.ctx).await, Tick::Ran);
    assert_eq!(app.pending().await.len(), 1);
    app.ctx.shutdown.cancel();
    assert_eq!(
        tick(JobKind::Detect, &gate, &app.ctx).await,
        Tick::ShuttingDown
    );
}

on_both_backends!(an_opt_out_of_one_channel_leaves_the_other_channels_draft);

async fn an_opt_out_of_one_channel_leaves_the_other_channels_draft(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    app.import_clients(
        &clients_csv(&[ClientCsv {
            channel: "email",
            ..Default::default()
        }]),
        now - Duration::days(10),
    )
    .await;
    app.detect(now).await;
    let draft = app.pending().await.pop().unwrap();
    assert_eq!(draft.channel, "email");
    app.act(COACH, "c-1", CaseAction::OptOut(Channel::Sms), now)
        .await;
    assert_eq!(
        app.message(draft.id).await.status,
        "pending",
        "an SMS opt-out leaves email alone"
    );
    app.act(COACH, "c-1", CaseAction::OptOut(Channel::Email), now)
        .await;
    assert_eq!(app.message(draft.id).await.status, "cancelled");
}

/// Imports write a chunk of rows at a time; nothing about that may show. Three
/// chunks' worth of rows, with a bad row and a repeated id in later chunks than
/// their first sight, and events repeated and reordered across chunks.
async fn files_longer_than_a_chunk_import_whole_and_once(app: TestApp) {
    let now = at("2026-06-01T15:00:00Z");
    let n = reengage::pipeline::intake::CHUNK * 2 + 203;
    let ids: Vec<String> = (0..n).map(|i| format!("c-{i:04}")).collect();
    let mut rows: Vec<ClientCsv> = ids
        .iter()
        .map(|id| ClientCsv {
            external_id: id,
            channel: "email",
            ..Default::default()
        })
        .collect();
    // Line numbers count the header as line 1.
    rows[700].phone = "555-12";
    rows[1100].external_id = "c-0003";
    let csv = clients_csv(&rows);
    let report = app.import_clients(&csv, now).await;
    assert!(!report.committed);
    let lines: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![702, 1102], "{:?}", report.errors);
    assert!(
        report.errors[1]
            .reason
            .contains("already appears on line 5")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM clients").await, 0);

    let report = app
        .import_clients_with(&csv, ImportOptions { skip_invalid: true }, now)
        .await;
    assert!(report.committed);
    assert_eq!((report.rows, report.created), (n as u64, n as u64 - 2));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM clients").await,
        n as i64 - 2
    );

    // One check-in each, a few days back; c-0010's second, newer one comes a
    // chunk later (and shows it back after a quiet day), and c-0020's first
    // one again at the very end.
    let mut events = String::from("external_id,kind,occurred_at,note\n");
    for id in ids
        .iter()
        .filter(|id| !["c-0700", "c-1100"].contains(&id.as_str()))
    {
        events.push_str(&format!("{id},check_in,2026-05-29T10:00:00Z,\n"));
    }
    events.push_str("c-0010,check_in,2026-05-30T10:00:00Z,\n");
    events.push_str("c-0020,check_in,2026-05-29T10:00:00Z,\n");
    let report = app.import_events(&events, now).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(
        (report.created, report.unchanged, report.re_engaged),
        (n as u64 - 1, 1, 1),
        "{report}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM engagement_events").await,
        n as i64 - 1
    );
    let mut conn = app.ctx.store.conn().await.unwrap();
    let c10 = clients::by_external_id(&mut conn, "c-0010")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c10.last_engaged_at,
        Some(at("2026-05-30T10:00:00Z").timestamp())
    );
    drop(conn);

    // A week later everyone is due; c-0010's newer check-in makes it a day later.
    let later = at("2026-06-05T11:00:00Z");
    assert_eq!(app.detect(later).await.drafted, n as u64 - 3);
    let again = app.import_events(&events, later).await;
    assert_eq!((again.created, again.unchanged), (0, n as u64));
    assert_eq!(app.pending().await.len(), n - 3);

    // Everyone checks in again, twice: every draft is cancelled, and each
    // client is counted back once.
    let mut back = String::from("external_id,kind,occurred_at,note\n");
    for id in ids
        .iter()
        .filter(|id| !["c-0700", "c-1100"].contains(&id.as_str()))
    {
        back.push_str(&format!("{id},check_in,2026-06-05T09:00:00Z,\n"));
        back.push_str(&format!("{id},session_attended,2026-06-05T10:00:00Z,\n"));
    }
    let report = app.import_events(&back, later).await;
    assert_eq!(
        (report.created, report.re_engaged),
        (2 * (n as u64 - 2), n as u64 - 2),
        "{report}"
    );
    assert!(app.pending().await.is_empty());
}

/// The file is read on a thread of its own; a read that fails part way is a
/// bad file, never a short one.
async fn a_file_that_fails_to_read_part_way_imports_nothing(app: TestApp) {
    struct Failing(std::io::Cursor<String>);
    impl std::io::Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::Error::other("the disk went away")),
                n => Ok(n),
            }
        }
    }
    let now = at("2026-06-01T15:00:00Z");
    let rows: Vec<String> = (0..reengage::pipeline::intake::CHUNK + 10)
        .map(|i| format!("c-{i:04}"))
        .collect();
    let csv = clients_csv(
        &rows
            .iter()
            .map(|id| ClientCsv {
                external_id: id,
                ..Default::default()
            })
            .collect::<Vec<_>>(),
    );
    let report = reengage::pipeline::intake::import(
        &app.ctx,
        reengage::pipeline::intake::Table::Clients,
        Failing(std::io::Cursor::new(csv)),
        ImportOptions::default(),
        now,
    )
    .await
    .expect("a read error is reported, not raised");
    assert!(!report.committed);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(
        report.errors[0].reason.contains("the disk went away"),
        "{}",
        report.errors[0]
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM clients").await, 0);
}

/// A row written by a newer reengage (or by hand) with a status this version
/// does not know: reading it fails and says where and what, instead of the
/// value being matched as text later and taken for something else.
async fn a_status_this_version_does_not_know_names_its_table_and_value(app: TestApp) {
    let now = at("2026-06-01T14:00:00Z");
    let draft = app.one_draft(now).await;
    let mut conn = app.ctx.store.conn().await.unwrap();
    // The schema forbids the value, as it should; a newer schema might not.
    let sqlite = sqlx::query("PRAGMA ignore_check_constraints = ON")
        .execute(&mut *conn)
        .await
        .is_ok();
    if !sqlite {
        let checks: Vec<String> = sqlx::query_scalar(
            "SELECT conname::text FROM pg_constraint \
             WHERE conrelid = 'messages'::regclass AND contype = 'c'",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap();
        for check in checks {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "ALTER TABLE messages DROP CONSTRAINT \"{check}\""
            )))
            .execute(&mut *conn)
            .await
            .unwrap();
        }
    }
    sqlx::query("UPDATE messages SET status = 'superseded' WHERE id = $1")
        .bind(draft.id)
        .execute(&mut *conn)
        .await
        .unwrap();
    let error = reengage::store::messages::view(&mut conn, draft.id)
        .await
        .expect_err("an unknown status is an error");
    let error = format!("{error:#}");
    assert!(
        error.contains("messages table") && error.contains("`superseded`"),
        "{error}"
    );
    let report = reengage::pipeline::reports::read(
        &app.ctx,
        &reengage::store::Scope::All,
        None,
        now + Duration::days(1),
    )
    .await
    .map(|_| ());
    let error = format!("{:#}", report.expect_err("the report reads the row too"));
    assert!(
        error.contains("messages table") && error.contains("`superseded`"),
        "{error}"
    );
}
