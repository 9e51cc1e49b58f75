//! The coach's web UI, driven the way a browser would: cookies, forms, CSRF
//! tokens, redirects. On both backends.

use crate::common::*;
use axum::http::StatusCode;
use chrono::Duration;

on_both_backends!(
    a_coach_logs_in_works_the_queue_and_logs_out,
    forms_without_a_valid_csrf_token_change_nothing,
    five_failed_logins_pause_an_email_whether_or_not_it_exists,
    a_coach_cannot_see_or_act_on_another_coachs_draft_and_a_handled_draft_is_a_conflict,
    names_and_notes_render_as_text_everywhere,
    client_pages_show_history_and_their_actions_are_the_coachs_own,
    replies_put_a_crisis_first_and_the_queue_points_to_them,
    admins_manage_coaches_and_preview_templates_and_coaches_cannot,
    a_coach_decides_about_a_message_in_doubt_from_the_send_log,
    after_the_last_step_the_queue_asks_the_coach_to_reach_out,
    a_coach_reads_the_thread_and_writes_back_from_the_client_page,
    an_admin_revokes_a_token_on_the_admin_page_and_housekeeping_forgets_ended_sessions,
    a_coach_added_from_the_command_line_is_audited_like_one_added_on_the_admin_page,
);

/// Rosa's client c-1 (`first_name`) and Marcus's client m-1, each with a draft.
async fn drafts_for_two_coaches(app: &TestApp, first_name: &str) -> (i64, i64) {
    set_passwords(app).await;
    drafts_for_rosa_and_marcus(app, first_name).await
}

async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    let mut conn = app.ctx.store.conn().await.unwrap();
    reengage::store::audit::recent(&mut conn, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.action.to_string(), a.actor))
        .collect()
}

async fn a_coach_logs_in_works_the_queue_and_logs_out(app: TestApp) {
    let (rosa_draft, _) = drafts_for_two_coaches(&app, "Jordan").await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );

    let page = browser.log_in(COACH, PASSWORD).await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/"))
    );
    let session = browser.cookies["reengage_session"].clone();
    let queue = browser.get("/").await;
    assert_eq!(queue.status, StatusCode::OK);
    assert!(queue.body.contains("Jordan"), "{}", queue.body);
    assert!(
        !queue.body.contains("Devon"),
        "another coach's client shows"
    );
    assert!(queue.body.contains("Quiet 10 days"));
    assert!(queue.body.contains("segment"));
    let csrf = Browser::csrf(&queue);

    // Edit on the draft page; the original stays beside it.
    let page = browser
        .post(
            &format!("/drafts/{rosa_draft}/edit"),
            &[
                ("csrf", &csrf),
                (
                    "body",
                    "Hi Jordan, Rosa here. No rush at all. Reply STOP to opt out.",
                ),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let draft = browser.get(&format!("/drafts/{rosa_draft}")).await;
    assert!(draft.body.contains("No rush at all"));
    assert!(draft.body.contains("Before your edit"));
    assert!(draft.body.contains("thinking of you"));

    let page = browser
        .post(&format!("/drafts/{rosa_draft}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/"))
    );
    assert_eq!(app.message(rosa_draft).await.status, "approved");
    assert!(!browser.get("/").await.body.contains("Jordan"));

    let page = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.location.as_deref(), Some("/login"));
    // The old cookie no longer works.
    browser.cookies.insert("reengage_session".into(), session);
    assert_eq!(browser.get("/").await.location.as_deref(), Some("/login"));

    let actions = audit_actions(&app).await;
    for expected in ["login", "edit", "approve", "logout"] {
        assert!(
            actions.contains(&(expected.to_owned(), COACH.to_owned())),
            "{expected} missing: {actions:?}"
        );
    }
}

async fn a_coach_decides_about_a_message_in_doubt_from_the_send_log(app: TestApp) {
    let (rosa_draft, _) = drafts_for_two_coaches(&app, "Jordan").await;
    {
        let mut conn = app.ctx.store.conn().await.unwrap();
        sqlx::query("UPDATE messages SET status = 'in_doubt', last_error = 'no answer after DATA' WHERE id = $1")
            .bind(rosa_draft)
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let mut browser = Browser::new(&app);
    browser.log_in(COACH, PASSWORD).await;
    let page = browser.get("/sends").await;
    assert!(
        page.body.contains("Not sure these went out") && page.body.contains("no answer after DATA")
    );
    let csrf = Browser::csrf(&page);
    let done = browser
        .post(
            &format!("/messages/{rosa_draft}/resolve"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/sends"));
    assert_eq!(app.message(rosa_draft).await.status, "sent");
    let again = browser
        .post(
            &format!("/messages/{rosa_draft}/resend"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
}

async fn forms_without_a_valid_csrf_token_change_nothing(app: TestApp) {
    let (rosa_draft, _) = drafts_for_two_coaches(&app, "Jordan").await;
    let mut browser = Browser::new(&app);
    // The login form itself needs its token.
    let page = browser
        .post(
            "/login",
            &[
                ("csrf", "made-up"),
                ("email", COACH),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    browser.log_in(ADMIN, PASSWORD).await;
    let reply: i64 = {
        let mut conn = app.ctx.store.conn().await.unwrap();
        sqlx::query_scalar(
            "INSERT INTO inbound (received_at, channel, from_addr, body, client_id, classification, \
               classes, needs_reply) \
             SELECT 0, 'sms', phone, 'i cant go on', id, 'crisis', 'crisis', 1 FROM clients \
             WHERE external_id = 'c-1' RETURNING id",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap()
    };
    let audited = app.count("SELECT COUNT(*) FROM audit_log").await;
    let (draft, reply) = (rosa_draft.to_string(), reply.to_string());
    // Every form of the UI, with otherwise valid fields.
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/logout".into(), vec![]),
        ("/drafts/approve".into(), vec![("ids", &draft)]),
        (
            format!("/drafts/{draft}/edit"),
            vec![("body", "a new text")],
        ),
        (format!("/drafts/{draft}/approve"), vec![]),
        (format!("/drafts/{draft}/reject"), vec![("reason", "x")]),
        (
            format!("/drafts/{draft}/snooze"),
            vec![("until", "2099-01-01")],
        ),
        (format!("/messages/{draft}/resend"), vec![]),
        (format!("/replies/{reply}/handled"), vec![("back", "/")]),
        (format!("/replies/{reply}/acknowledge"), vec![]),
        (
            "/account/away".into(),
            vec![("email", COACH), ("until", "2099-01-01")],
        ),
        ("/account/back".into(), vec![("email", COACH)]),
        (
            "/admin/coaches".into(),
            vec![("action", "deactivate"), ("email", OTHER_COACH)],
        ),
        ("/clients/c-1/action".into(), vec![("action", "hold")]),
        (
            "/clients/c-1/message".into(),
            vec![("channel", "sms"), ("body", "hello")],
        ),
    ];
    for (path, fields) in &forms {
        for token in [None, Some("made-up")] {
            let mut all = fields.clone();
            all.extend(token.map(|t| ("csrf", t)));
            let page = browser.post(path, &all).await;
            // A wrong token is refused; a form with none may also fail to parse.
            let refused = match token {
                None => matches!(
                    page.status,
                    StatusCode::FORBIDDEN | StatusCode::UNPROCESSABLE_ENTITY
                ),
                Some(_) => page.status == StatusCode::FORBIDDEN,
            };
            assert!(refused, "{path} with {token:?}: {}", page.status);
        }
    }
    // Nothing changed: the draft, the reply, the client, the coaches, the
    // session, the audit log.
    let message = app.message(rosa_draft).await;
    assert_eq!(
        (message.status.as_ref(), message.edited),
        ("pending", false)
    );
    let mut conn = app.ctx.store.conn().await.unwrap();
    let (needs_reply, acknowledged): (i64, Option<i64>) =
        sqlx::query_as("SELECT needs_reply, acknowledged_at FROM inbound WHERE id = $1")
            .bind(reply.parse::<i64>().unwrap())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!((needs_reply, acknowledged), (1, None));
    let (status, away): (String, Option<i64>) =
        sqlx::query_as("SELECT c.status, co.away_until FROM clients c JOIN coaches co ON co.id = c.coach_id WHERE c.external_id = 'c-1'")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!((status.as_str(), away), ("active", None));
    let active: i64 = sqlx::query_scalar("SELECT active FROM coaches WHERE email = $1")
        .bind(OTHER_COACH)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(active, 1);
    drop(conn);
    assert_eq!(
        browser.get("/").await.status,
        StatusCode::OK,
        "still signed in"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, audited);
}

async fn five_failed_logins_pause_an_email_whether_or_not_it_exists(app: TestApp) {
    set_passwords(&app).await;
    for email in [COACH, "nobody@example.org"] {
        let mut browser = Browser::new(&app);
        for _ in 0..4 {
            let page = browser.log_in(email, "wrong password!").await;
            assert_eq!(page.status, StatusCode::UNAUTHORIZED);
            assert!(page.body.contains("did not match"));
        }
        let page = browser.log_in(email, "wrong password!").await;
        assert!(page.body.contains("pause for 15 minutes"), "{}", page.body);
        assert!(page.body.contains("Too many failed tries"));
    }
    // Even the right password waits out the pause.
    let mut browser = Browser::new(&app);
    let page = browser.log_in(COACH, PASSWORD).await;
    assert!(page.body.contains("Too many failed tries"));
    assert!(!browser.cookies.contains_key("reengage_session"));
    let actions = audit_actions(&app).await;
    assert!(actions.contains(&("login_failed".to_owned(), COACH.to_owned())));
    assert!(actions.contains(&("login_failed".to_owned(), "unknown email".to_owned())));
    // Another coach is not affected.
    let page = Browser::new(&app).log_in(OTHER_COACH, PASSWORD).await;
    assert_eq!(page.location.as_deref(), Some("/"));
}

async fn a_coach_cannot_see_or_act_on_another_coachs_draft_and_a_handled_draft_is_a_conflict(
    app: TestApp,
) {
    let (rosa_draft, marcus_draft) = drafts_for_two_coaches(&app, "Jordan").await;
    let mut rosa = Browser::new(&app);
    rosa.log_in(COACH, PASSWORD).await;
    let csrf = Browser::csrf(&rosa.get("/").await);
    assert_eq!(
        rosa.get(&format!("/drafts/{marcus_draft}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        rosa.get("/drafts/999999").await.status,
        StatusCode::NOT_FOUND
    );
    for action in ["approve", "snooze"] {
        let page = rosa
            .post(
                &format!("/drafts/{marcus_draft}/{action}"),
                &[("csrf", &csrf), ("until", "2030-01-01")],
            )
            .await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(app.message(marcus_draft).await.status, "pending");

    let mut admin = Browser::new(&app);
    admin.log_in(ADMIN, PASSWORD).await;
    let admin_csrf = Browser::csrf(&admin.get("/").await);
    assert_eq!(
        admin
            .post(
                &format!("/drafts/{rosa_draft}/approve"),
                &[("csrf", &admin_csrf)]
            )
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    let page = rosa
        .post(&format!("/drafts/{rosa_draft}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(page.status, StatusCode::CONFLICT);
    assert!(page.body.contains("Already handled"));
}

async fn names_and_notes_render_as_text_everywhere(app: TestApp) {
    let hostile = "<script>alert(1)</script>";
    let (rosa_draft, _) = drafts_for_two_coaches(&app, hostile).await;
    let mut browser = Browser::new(&app);
    browser.log_in(COACH, PASSWORD).await;
    let queue = browser.get("/").await;
    let draft = browser.get(&format!("/drafts/{rosa_draft}")).await;
    let csrf = Browser::csrf(&queue);
    browser
        .post(
            &format!("/drafts/{rosa_draft}/edit"),
            &[
                ("csrf", &csrf),
                (
                    "body",
                    "Hi <img src=x onerror=alert(2)> there, last chance. Reply STOP to opt out.",
                ),
            ],
        )
        .await;
    let edited = browser.get(&format!("/drafts/{rosa_draft}")).await;
    // The lint speaks up on the page, and approving takes "Approve anyway".
    assert!(edited.body.contains("Guardrail findings") && edited.body.contains("Approve anyway"));
    let refused = browser
        .post(&format!("/drafts/{rosa_draft}/approve"), &[("csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.body.contains("Please look at the findings first"));
    let client_page = browser.get("/clients/c-1").await;
    let list = browser.get("/clients?q=script").await;
    assert!(
        list.body.contains("/clients/c-1"),
        "the search finds the client"
    );
    for page in [&queue, &draft, &edited, &client_page, &list] {
        assert!(!page.body.contains("<script>alert"), "{}", page.body);
        assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
    assert!(!edited.body.contains("<img src=x"));
    assert!(edited.body.contains("&lt;img src=x onerror=alert(2)&gt;"));
    browser
        .post(
            &format!("/drafts/{rosa_draft}/approve"),
            &[("csrf", &csrf), ("confirm", "yes")],
        )
        .await;
    let tomorrow = (chrono::Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(15, 0, 0)
        .unwrap()
        .and_utc();
    assert_eq!(app.dispatch(tomorrow).await.sent, 1);
    let sends = browser.get("/sends").await;
    assert!(sends.body.contains("+12015550123"));
    assert!(!sends.body.contains("<script>alert"));
    assert!(
        browser
            .get("/sends?outcome=failed")
            .await
            .body
            .contains("Nothing to show.")
    );
    assert!(
        browser
            .get("/sends?outcome=sent&channel=sms")
            .await
            .body
            .contains("+12015550123")
    );
}

async fn client_pages_show_history_and_their_actions_are_the_coachs_own(app: TestApp) {
    let (rosa_draft, marcus_draft) = drafts_for_two_coaches(&app, "Jordan").await;
    let mut rosa = Browser::new(&app);
    rosa.log_in(COACH, PASSWORD).await;
    let list = rosa.get("/clients").await;
    assert!(list.body.contains("/clients/c-1") && !list.body.contains("/clients/m-1"));
    let page = rosa.get("/clients/c-1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("step 1 sms message, pending"),
        "{}",
        page.body
    );
    let csrf = Browser::csrf(&page);
    assert_eq!(rosa.get("/clients/m-1").await.status, StatusCode::NOT_FOUND);
    let refused = rosa
        .post(
            "/clients/m-1/action",
            &[("csrf", &csrf), ("action", "hold")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(app.message(marcus_draft).await.status, "pending");
    let refused = rosa
        .post(
            "/clients/c-1/action",
            &[("csrf", "forged"), ("action", "hold")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(app.message(rosa_draft).await.status, "pending");

    // On hold: the pending draft is cancelled, and the page says so.
    let done = rosa
        .post(
            "/clients/c-1/action",
            &[("csrf", &csrf), ("action", "hold")],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/clients/c-1"));
    assert_eq!(app.message(rosa_draft).await.status, "cancelled");
    assert!(rosa.get("/clients/c-1").await.body.contains("· hold ·"));
    assert!(
        rosa.get("/clients?status=hold")
            .await
            .body
            .contains("/clients/c-1")
    );
    let active = rosa.get("/clients?status=active").await.body;
    assert!(!active.contains("/clients/c-1"), "{active}");
    // Only an admin reassigns.
    let refused = rosa
        .post(
            "/clients/c-1/action",
            &[("csrf", &csrf), ("action", "reassign"), ("to", OTHER_COACH)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let mut admin = Browser::new(&app);
    admin.log_in(ADMIN, PASSWORD).await;
    let admin_csrf = Browser::csrf(&admin.get("/clients/c-1").await);
    let done = admin
        .post(
            "/clients/c-1/action",
            &[
                ("csrf", &admin_csrf),
                ("action", "reassign"),
                ("to", OTHER_COACH),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(rosa.get("/clients/c-1").await.status, StatusCode::NOT_FOUND);

    let mut marcus = Browser::new(&app);
    marcus.log_in(OTHER_COACH, PASSWORD).await;
    let marcus_csrf = Browser::csrf(&marcus.get("/clients/c-1").await);
    marcus
        .post(
            "/clients/c-1/action",
            &[("csrf", &marcus_csrf), ("action", "reached")],
        )
        .await;
    assert!(
        marcus
            .get("/clients/c-1")
            .await
            .body
            .contains("coach contact · reached personally")
    );
    let actions = audit_actions(&app).await;
    for (action, actor) in [
        ("hold", COACH),
        ("reassign", ADMIN),
        ("coach_contact", OTHER_COACH),
    ] {
        assert!(
            actions.contains(&(action.to_owned(), actor.to_owned())),
            "{action} missing: {actions:?}"
        );
    }
}

async fn replies_put_a_crisis_first_and_the_queue_points_to_them(app: TestApp) {
    drafts_for_two_coaches(&app, "Jordan").await;
    {
        let mut conn = app.ctx.store.conn().await.unwrap();
        let now = chrono::Utc::now().timestamp();
        for (client, body, class, at) in [
            ("c-1", "thanks, doing ok", "reply", now - 60),
            ("c-1", "i cant go on <b>anymore</b>", "crisis", now - 3600),
            ("m-1", "Marcus's client writes", "reply", now),
        ] {
            sqlx::query(
                "INSERT INTO inbound (received_at, channel, from_addr, body, client_id, classification, \
                   classes, matched, needs_reply) \
                 SELECT $1, 'sms', phone, $2, id, $3, $3, \
                   '[{\"class\":\"crisis\",\"rule\":\"can not go on\",\"text\":\"cant go on\"}]', 1 \
                 FROM clients WHERE external_id = $4",
            )
            .bind(at)
            .bind(body)
            .bind(class)
            .bind(client)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
    }
    let mut rosa = Browser::new(&app);
    rosa.log_in(COACH, PASSWORD).await;
    let queue = rosa.get("/").await;
    let waiting = queue
        .body
        .find("Replies waiting for you")
        .expect("the queue opens with the replies");
    let crisis = queue
        .body
        .find("needs you now")
        .expect("the crisis is marked");
    let ordinary = queue.body.find("thanks, doing ok").unwrap();
    assert!(
        waiting < crisis && crisis < ordinary,
        "the crisis comes first"
    );
    assert!(queue.body.contains("1 h ago"), "each reply shows its age");
    assert!(
        queue.body.contains("Why: crisis: “cant go on”"),
        "the client's words that matched are shown: {}",
        queue.body
    );
    assert!(
        !queue.body.contains("can not go on"),
        "a coach reads words, not the rules"
    );
    assert!(!queue.body.contains("Marcus's client writes"));
    let mut admin = Browser::new(&app);
    admin.log_in(ADMIN, PASSWORD).await;
    assert!(
        admin.get("/replies").await.body.contains("can not go on"),
        "an admin, who keeps the word lists, sees the rule"
    );
    let page = rosa.get("/replies").await;
    let crisis = page
        .body
        .find("needs you now")
        .expect("the crisis is marked");
    let ordinary = page.body.find("thanks, doing ok").unwrap();
    assert!(crisis < ordinary, "the crisis comes first");
    assert!(page.body.contains("&lt;b&gt;anymore&lt;/b&gt;"));
    assert!(!page.body.contains("Marcus's client writes"));

    // "I'm on it", then "Mark handled": the crisis stops being open, then waiting.
    let id = app
        .count("SELECT id FROM inbound WHERE classification = 'crisis'")
        .await;
    let csrf = Browser::csrf(&page);
    let on_it = rosa
        .post(
            &format!("/replies/{id}/acknowledge"),
            &[("csrf", &csrf), ("back", "/")],
        )
        .await;
    assert_eq!(on_it.location.as_deref(), Some("/"));
    let queue = rosa.get("/").await;
    assert!(
        queue.body.contains(&format!("on it: {COACH}")),
        "{}",
        queue.body
    );
    assert!(
        queue.body.contains("&lt;b&gt;anymore"),
        "acknowledged, it still waits for an answer"
    );
    let handled = rosa
        .post(&format!("/replies/{id}/handled"), &[("csrf", &csrf)])
        .await;
    assert_eq!(handled.location.as_deref(), Some("/replies"));
    let queue = rosa.get("/").await;
    assert!(
        !queue.body.contains("&lt;b&gt;anymore"),
        "handled replies leave the queue"
    );
    // Someone else's reply is not there to act on.
    let marcus_reply = app
        .count("SELECT id FROM inbound WHERE body = 'Marcus''s client writes'")
        .await;
    let refused = rosa
        .post(
            &format!("/replies/{marcus_reply}/handled"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    let forged = rosa
        .post(
            &format!("/replies/{marcus_reply}/handled"),
            &[("csrf", "made-up")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
}

async fn admins_manage_coaches_and_preview_templates_and_coaches_cannot(app: TestApp) {
    set_passwords(&app).await;
    let mut rosa = Browser::new(&app);
    rosa.log_in(COACH, PASSWORD).await;
    let rosa_csrf = Browser::csrf(&rosa.get("/").await);
    assert_eq!(rosa.get("/admin").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        rosa.get("/admin/templates").await.status,
        StatusCode::NOT_FOUND
    );
    let refused = rosa
        .post(
            "/admin/coaches",
            &[
                ("csrf", &rosa_csrf),
                ("action", "deactivate"),
                ("email", OTHER_COACH),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);

    let mut admin = Browser::new(&app);
    admin.log_in(ADMIN, PASSWORD).await;
    let page = admin.get("/admin").await;
    assert!(page.body.contains("After 7 quiet days: checkin-1"));
    assert!(page.body.contains("Drafts that expired"));
    let csrf = Browser::csrf(&page);
    let added = admin
        .post(
            "/admin/coaches",
            &[
                ("csrf", &csrf),
                ("action", "add"),
                ("email", "sam@example.org"),
                ("name", "Sam Okafor"),
                ("role", "coach"),
                ("password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(added.location.as_deref(), Some("/admin"));
    assert_eq!(
        Browser::new(&app)
            .log_in("sam@example.org", "a brand new password")
            .await
            .location
            .as_deref(),
        Some("/")
    );

    // Deactivating Rosa ends what she can do at once.
    admin
        .post(
            "/admin/coaches",
            &[("csrf", &csrf), ("action", "deactivate"), ("email", COACH)],
        )
        .await;
    assert_eq!(rosa.get("/").await.location.as_deref(), Some("/login"));
    admin
        .post(
            "/admin/coaches",
            &[("csrf", &csrf), ("action", "activate"), ("email", COACH)],
        )
        .await;
    admin
        .post(
            "/admin/coaches",
            &[
                ("csrf", &csrf),
                ("action", "password"),
                ("email", COACH),
                ("password", "another long password"),
            ],
        )
        .await;
    assert_eq!(
        Browser::new(&app).log_in(COACH, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        Browser::new(&app)
            .log_in(COACH, "another long password")
            .await
            .location
            .as_deref(),
        Some("/")
    );

    // A form the admin got wrong is refused with what to fix, and changes nothing.
    const COACHES: &str = "SELECT COUNT(*) FROM coaches WHERE active = 1";
    let active = app.count(COACHES).await;
    let audited = app.count("SELECT COUNT(*) FROM audit_log").await;
    for (form, problem) in [
        (
            vec![("action", "deactivate"), ("email", ADMIN)],
            "you cannot deactivate yourself",
        ),
        (
            vec![("action", "add"), ("email", COACH), ("name", "Rosa again")],
            "email: a coach with this email exists",
        ),
        (
            vec![
                ("action", "add"),
                ("email", "not an address"),
                ("name", "X"),
            ],
            "email: `not an address` is not an email address",
        ),
        (
            vec![("action", "password"), ("email", "nobody@example.org")],
            "email: no coach has this email",
        ),
    ] {
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend(form);
        let page = admin.post("/admin/coaches", &fields).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{problem}");
        assert!(page.body.contains(problem), "{}", page.body);
    }
    assert_eq!(app.count(COACHES).await, active);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, audited);

    let preview = admin.get("/admin/templates").await;
    assert!(
        preview
            .body
            .contains("es/checkin-3 · sms · discreet client"),
        "{}",
        preview.body
    );
    let actions = audit_actions(&app).await;
    for action in ["coach_added", "coach_deactivated", "password_reset"] {
        assert!(
            actions.contains(&(action.to_owned(), ADMIN.to_owned())),
            "{action} missing"
        );
    }
}

async fn after_the_last_step_the_queue_asks_the_coach_to_reach_out(app: TestApp) {
    set_passwords(&app).await;
    let start = chrono::Utc::now() - Duration::days(45);
    app.import_clients(&clients_csv(&[ClientCsv::default()]), start)
        .await;
    for day in 0..=44 {
        let now = start + Duration::days(day);
        app.detect(now).await;
        for draft in app.pending().await {
            app.approve(draft.id, COACH, now).await.unwrap();
        }
        // Mid-morning in New York, whatever the hour of the run.
        let morning = now
            .date_naive()
            .and_hms_opt(15, 0, 0)
            .unwrap()
            .and_utc()
            .max(now);
        app.dispatch(morning).await;
    }
    app.detect(chrono::Utc::now()).await;
    assert_eq!(
        app.messages(None).await.len(),
        3,
        "three steps, then no more messages"
    );

    let mut browser = Browser::new(&app);
    browser.log_in(COACH, PASSWORD).await;
    let queue = browser.get("/").await;
    assert!(
        queue.body.contains("Reach out personally"),
        "{}",
        queue.body
    );
    let csrf = Browser::csrf(&queue);
    browser
        .post(
            "/clients/c-1/action",
            &[("csrf", &csrf), ("action", "reached")],
        )
        .await;
    assert!(!browser.get("/").await.body.contains("Reach out personally"));
}

async fn a_coach_reads_the_thread_and_writes_back_from_the_client_page(app: TestApp) {
    drafts_for_two_coaches(&app, "Jordan").await;
    // Both clients of the fixture share a phone: say whose reply it is.
    let jordan = app
        .count("SELECT id FROM clients WHERE external_id = 'c-1'")
        .await;
    let incoming = reengage::pipeline::replies::Incoming {
        sender: reengage::pipeline::replies::Sender::Client(jordan),
        ..reengage::pipeline::replies::Incoming::sms(
            "+12015550123",
            None,
            "hey, sorry I went quiet <3",
            Some("SMui1"),
        )
    };
    reengage::pipeline::replies::receive(&app.ctx, &incoming, chrono::Utc::now())
        .await
        .unwrap();
    let mut browser = Browser::new(&app);
    browser.log_in(COACH, PASSWORD).await;
    let page = browser.get("/clients/c-1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Conversation"), "{}", page.body);
    assert!(
        page.body.contains("hey, sorry I went quiet &lt;3"),
        "escaped: {}",
        page.body
    );
    assert!(
        page.body.contains("by reengage"),
        "the pending draft is in the thread"
    );
    assert!(
        page.body.contains(r#"<option value="sms" selected>"#),
        "it answers on the channel the client wrote on"
    );
    let csrf = Browser::csrf(&page);
    let sent = browser
        .post(
            "/clients/c-1/message",
            &[
                ("csrf", &csrf),
                ("channel", "sms"),
                ("body", "So glad you wrote. Talk Thursday?"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    assert_eq!(sent.location.as_deref(), Some("/clients/c-1#thread"));
    let page = browser.get("/clients/c-1").await;
    assert!(page.body.contains("So glad you wrote. Talk Thursday?"));
    assert!(page.body.contains(&format!("by {COACH}")));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM inbound WHERE needs_reply = 1")
            .await,
        0,
        "writing back answers the reply"
    );
    // The lint's findings show before anything is sent, warnings too.
    let stored = app.count("SELECT COUNT(*) FROM messages").await;
    let wording = "I know you relapsed, that's ok.";
    let held = browser
        .post(
            "/clients/c-1/message",
            &[("csrf", &csrf), ("channel", "sms"), ("body", wording)],
        )
        .await;
    assert_eq!(held.status, StatusCode::CONFLICT);
    assert!(held.body.contains("Guardrail findings"), "{}", held.body);
    assert!(held.body.contains("Send anyway"), "{}", held.body);
    assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, stored);
    let sent = browser
        .post(
            "/clients/c-1/message",
            &[
                ("csrf", &csrf),
                ("channel", "sms"),
                ("body", wording),
                ("confirm", "yes"),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    // Refused: the text comes back with the reason, nothing is stored.
    app.act(
        COACH,
        "c-1",
        reengage::pipeline::casework::CaseAction::OptOut(reengage::domain::Channel::Sms),
        chrono::Utc::now(),
    )
    .await;
    let stored = app.count("SELECT COUNT(*) FROM messages").await;
    let refused = browser
        .post(
            "/clients/c-1/message",
            &[
                ("csrf", &csrf),
                ("channel", "sms"),
                ("body", "one more thing"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.body.contains("opted out of sms"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(">one more thing</textarea>"),
        "{}",
        refused.body
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM messages").await, stored);
    // Another coach's client is not there for Marcus.
    let mut marcus = Browser::new(&app);
    marcus.log_in(OTHER_COACH, PASSWORD).await;
    let csrf = Browser::csrf(&marcus.get("/").await);
    let page = marcus
        .post("/clients/c-1/message", &[("csrf", &csrf), ("body", "hi")])
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
}

async fn an_admin_revokes_a_token_on_the_admin_page_and_housekeeping_forgets_ended_sessions(
    app: TestApp,
) {
    set_passwords(&app).await;
    let rosa_token = token(&app, COACH).await;
    let mut rosa = Browser::new(&app);
    rosa.log_in(COACH, PASSWORD).await;
    let rosa_csrf = Browser::csrf(&rosa.get("/").await);
    let refused = rosa
        .post("/admin/tokens/1/revoke", &[("csrf", &rosa_csrf)])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::NOT_FOUND,
        "a coach cannot revoke"
    );

    let mut admin = Browser::new(&app);
    admin.log_in(ADMIN, PASSWORD).await;
    let page = admin.get("/admin").await;
    assert!(page.body.contains("API tokens") && page.body.contains(COACH));
    assert!(
        !page.body.contains(&rosa_token),
        "the token itself is never shown"
    );
    let id: i64 = app.count("SELECT MAX(id) FROM api_tokens").await;
    let status = drafts_status(&app, &rosa_token).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = Browser::csrf(&page);
    let done = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let status = drafts_status(&app, &rosa_token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "refused at once");
    assert!(admin.get("/admin").await.body.contains("revoked "));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'token_revoked'")
            .await,
        1
    );
    let again = admin
        .post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // A failed login leaves a throttle row; a logout ends a session.
    let mut stranger = Browser::new(&app);
    stranger.log_in(OTHER_COACH, "not the password").await;
    assert_eq!(app.count("SELECT COUNT(*) FROM login_throttle").await, 1);
    let sessions = app.count("SELECT COUNT(*) FROM sessions").await;
    rosa.post("/logout", &[("csrf", &rosa_csrf)]).await;
    let now = chrono::Utc::now();
    let soon = reengage::pipeline::follow_up::housekeeping::run(
        &app.ctx,
        now + chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    assert_eq!(soon.sessions_deleted, 1, "the logged-out session");
    assert_eq!(soon.throttle_rows_deleted, 0, "its window is not over");
    let later =
        reengage::pipeline::follow_up::housekeeping::run(&app.ctx, now + chrono::Duration::days(2))
            .await
            .unwrap();
    assert_eq!(later.throttle_rows_deleted, 1);
    assert_eq!(
        later.sessions_deleted as i64,
        sessions - 1,
        "the expired ones"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions").await, 0);
}

/// What `GET /api/v1/drafts` answers with this token.
async fn drafts_status(app: &TestApp, token: &str) -> StatusCode {
    call(
        app,
        axum::http::Method::GET,
        "/api/v1/drafts",
        Some(token),
        None,
    )
    .await
    .0
}

/// `reengage coaches add` on this app's database.
fn cli_add_coach(app: &TestApp, email: &str, role: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_reengage"))
        .arg("--config")
        .arg(&app.config)
        .args(["coaches", "add", "--email", email, "--name", "Lee Park"])
        .args(["--role", role])
        .env("RUST_LOG", "warn")
        .output()
        .expect("reengage runs")
}

async fn a_coach_added_from_the_command_line_is_audited_like_one_added_on_the_admin_page(
    app: TestApp,
) {
    set_passwords(&app).await;
    let mut admin = Browser::new(&app);
    admin.log_in(ADMIN, PASSWORD).await;
    let csrf = Browser::csrf(&admin.get("/admin").await);
    let add = |email: &'static str, role: &'static str| {
        [
            ("action", "add"),
            ("email", email),
            ("name", "Sam Okafor"),
            ("role", role),
        ]
    };
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(add("sam@example.org", "coach"));
    let page = admin.post("/admin/coaches", &fields).await;
    assert_eq!(page.location.as_deref(), Some("/admin"), "{}", page.body);
    let added = cli_add_coach(&app, "lee@example.org", "coach");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    // The same action and detail; the actor is the admin, or the command line.
    let mut conn = app.ctx.store.conn().await.unwrap();
    let audit = reengage::store::audit::recent(&mut conn, 50).await.unwrap();
    let entry = |email: &str| {
        audit
            .iter()
            .find(|a| a.detail.as_deref() == Some(email))
            .map(|a| (a.action.to_string(), a.actor.clone()))
    };
    assert_eq!(
        entry("sam@example.org"),
        Some(("coach_added".to_owned(), ADMIN.to_owned()))
    );
    assert_eq!(
        entry("lee@example.org"),
        Some(("coach_added".to_owned(), "cli".to_owned()))
    );
    drop(conn);

    // An unknown role is refused from both, and adds no one.
    let coaches = app.count("SELECT COUNT(*) FROM coaches").await;
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(add("kim@example.org", "superuser"));
    let page = admin.post("/admin/coaches", &fields).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(
        page.body
            .contains("role: `superuser` is not a role: coach or admin"),
        "{}",
        page.body
    );
    let refused = cli_add_coach(&app, "kim@example.org", "superuser");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("`superuser` is not a role: coach or admin"),
        "{said}"
    );
    // An email that differs only in case is the same coach, from both.
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend(add("Sam@Example.org", "coach"));
    let page = admin.post("/admin/coaches", &fields).await;
    assert!(
        page.body.contains("a coach with this email exists"),
        "{}",
        page.body
    );
    let again = cli_add_coach(&app, "LEE@example.org", "coach");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM coaches").await, coaches);
}
