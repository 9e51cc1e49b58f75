//! The outcome report on clients whose outcomes are known by construction,
//! through the CLI's JSON and the API, on both backends.

use crate::common::*;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, Utc};
use reengage::domain::Channel;
use reengage::pipeline::casework::CaseAction;
use serde_json::Value;

on_both_backends!(
    outcomes_are_counted_and_credited_as_defined,
    coaches_see_their_own_caseload_and_bad_parameters_are_named,
    a_steps_variants_are_drawn_per_episode_and_compared_with_care,
    the_outcomes_page_draws_its_charts_with_their_data_and_offers_the_csv,
);

/// 10:00 in New York.
fn base() -> DateTime<Utc> {
    at("2026-03-10T14:00:00Z")
}

/// Approves and sends the pending drafts of these clients at `at`.
async fn send_to(app: &TestApp, ids: &[&str], at: DateTime<Utc>) {
    for draft in app.pending().await {
        if ids.contains(&draft.client_external_id.as_str()) {
            app.approve(draft.id, COACH, at).await.unwrap();
        }
    }
    app.dispatch(at).await;
}

/// Clients with these ids and phones from +1201555`first`…, quiet for 8
/// days at `base()`, with their step-1 drafts. Returns the phones.
async fn quiet_clients(app: &TestApp, ids: &[&str], first: usize) -> Vec<String> {
    let phones: Vec<String> = (0..ids.len())
        .map(|i| format!("+1201555{:04}", first + i))
        .collect();
    let clients: Vec<ClientCsv> = ids
        .iter()
        .zip(&phones)
        .map(|(id, phone)| ClientCsv {
            external_id: id,
            phone,
            ..Default::default()
        })
        .collect();
    app.import_clients(&clients_csv(&clients), base() - Duration::days(8))
        .await;
    app.detect(base()).await;
    phones
}

/// Seven clients, quiet for 8 days at `base()`:
/// - `back`: came back (a check-in) 3 days after step 1;
/// - `replied`: replied to step 2;
/// - `stopped`: opted out of SMS after step 1;
/// - `silent`: no response through step 3;
/// - `reached`: reached personally after step 1;
/// - `rejected`: its step 1 rejected, nothing more sent;
/// - `unseen`: its step 1 left until it expired.
async fn known_outcomes(app: &TestApp) {
    let ids = [
        "back", "replied", "stopped", "silent", "reached", "rejected", "unseen",
    ];
    let rows = quiet_clients(app, &ids, 100).await;
    let rejected = app
        .pending()
        .await
        .into_iter()
        .find(|d| d.client_external_id == "rejected")
        .unwrap();
    app.reject(rejected.id, COACH, base()).await.unwrap();
    send_to(
        app,
        &["back", "replied", "stopped", "silent", "reached"],
        base(),
    )
    .await;
    app.act(
        COACH,
        "stopped",
        CaseAction::OptOut(Channel::Sms),
        base() + Duration::days(1),
    )
    .await;
    app.act(
        COACH,
        "reached",
        CaseAction::ReachedPersonally,
        base() + Duration::days(2),
    )
    .await;
    app.import_events(
        &format!(
            "external_id,kind,occurred_at,note\nback,check_in,{},\n",
            (base() + Duration::days(3)).to_rfc3339()
        ),
        base() + Duration::days(3),
    )
    .await;
    app.detect(base() + Duration::days(7)).await;
    send_to(app, &["replied", "silent"], base() + Duration::days(7)).await;
    let incoming = reengage::pipeline::replies::Incoming::sms(
        &rows[1],
        None,
        "sorry, rough few weeks. can we talk?",
        Some("SMreport1"),
    );
    reengage::pipeline::replies::receive(
        &app.ctx,
        &incoming,
        base() + Duration::days(7) + Duration::hours(1),
    )
    .await
    .unwrap();
    app.detect(base() + Duration::days(23)).await;
    send_to(app, &["silent"], base() + Duration::days(23)).await;
}

async fn report(app: &TestApp, by: &str) -> Value {
    let admin = token(app, ADMIN).await;
    let path = format!("/api/v1/reports/outcomes?by={by}&since=2026-03-01&until=2026-04-30");
    let (status, body) = call(app, Method::GET, &path, Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn row<'a>(report: &'a Value, key: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == key)
        .unwrap_or_else(|| panic!("no row {key} in {report}"))
}

fn counts(row: &Value) -> [u64; 6] {
    [
        "episodes",
        "sent",
        "replied",
        "returned",
        "reached_personally",
        "opted_out",
    ]
    .map(|k| row[k].as_u64().unwrap())
}

async fn outcomes_are_counted_and_credited_as_defined(app: TestApp) {
    known_outcomes(&app).await;
    let by_step = report(&app, "step").await;
    assert_eq!(by_step["window_days"], 30);
    assert_eq!(by_step["rows"].as_array().unwrap().len(), 3, "{by_step}");
    // [episodes, sent, replied, returned, reached personally, opted out]
    assert_eq!(counts(row(&by_step, "1")), [5, 5, 0, 1, 1, 1]);
    assert_eq!(counts(row(&by_step, "2")), [2, 2, 1, 0, 0, 0]);
    assert_eq!(counts(row(&by_step, "3")), [1, 1, 0, 0, 0, 0]);
    let step_one = row(&by_step, "1");
    assert_eq!(step_one["return_rate"], 0.2);
    let (low, high) = (
        step_one["return_rate_low"].as_f64().unwrap(),
        step_one["return_rate_high"].as_f64().unwrap(),
    );
    assert!(
        (low - 0.036).abs() < 0.001 && (high - 0.624).abs() < 0.001,
        "{step_one}"
    );

    let by_channel = report(&app, "channel").await;
    assert_eq!(by_channel["rows"].as_array().unwrap().len(), 1);
    assert_eq!(counts(row(&by_channel, "sms")), [5, 8, 1, 1, 1, 1]);

    // The seven spells, and three new ones drafted on day 23 for the clients
    // who came back, replied or were reached and then went quiet again.
    let funnel = &by_step["funnel"];
    let stages = [
        "opened", "drafted", "approved", "sent", "replied", "returned",
    ];
    assert_eq!(
        stages.map(|k| funnel[k].as_u64().unwrap()),
        [10, 10, 5, 5, 1, 1],
        "{funnel}"
    );
    // Fell out: the rejected step 1; unseen's step 1, and the step-2 drafts of
    // `rejected` and of `stopped` (by email: it opted out of SMS only), all
    // left until they expired.
    let dropped = &funnel["dropped"];
    assert_eq!(dropped["rejected"], 1, "{dropped}");
    assert_eq!(dropped["expired"], 3, "{dropped}");
    assert_eq!(dropped["failed"], 0);
    assert_eq!(
        by_step["time_to_reply"]["median_hours"], 169.0,
        "from the episode's first send: step 1, a week and an hour before the reply"
    );
    // Rosa's queue: sixteen drafts in the opened spells; nine decided (eight
    // approved, one rejected) as soon as they were drafted; three expired
    // unseen; four still pending.
    let workload = by_step["workload"].as_array().unwrap();
    assert_eq!(workload.len(), 1, "{workload:?}");
    assert_eq!(workload[0]["coach"], COACH);
    assert_eq!(
        ["drafts", "decided", "expired"].map(|k| workload[0][k].as_u64().unwrap()),
        [16, 9, 3]
    );
    assert_eq!(workload[0]["time_to_decision"]["median_hours"], 0.0);

    // Dashboards see each reached episode once, by its best outcome.
    let metrics = Browser::new(&app).get("/metrics").await.body;
    for outcome in [
        "returned",
        "replied",
        "reached_personally",
        "opted_out",
        "none",
    ] {
        assert!(
            metrics.contains(&format!(
                "reengage_episodes_total{{outcome=\"{outcome}\"}} 1"
            )),
            "{outcome}: {metrics}"
        );
    }
    // The command line gives the same JSON.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reengage"))
        .arg("--config")
        .arg(&app.config)
        .args([
            "report",
            "--by",
            "step",
            "--since",
            "2026-03-01",
            "--until",
            "2026-04-30",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["rows"], by_step["rows"]);
    let csv = std::process::Command::new(env!("CARGO_BIN_EXE_reengage"))
        .arg("--config")
        .arg(&app.config)
        .args(["report", "--by", "channel", "--format", "csv"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&csv.stdout);
    assert!(
        text.starts_with("key,episodes,sent,delivered,replied,returned"),
        "{text}"
    );
    assert!(text.contains("\nsms,5,8,"), "{text}");
}

async fn coaches_see_their_own_caseload_and_bad_parameters_are_named(app: TestApp) {
    known_outcomes(&app).await;
    let marcus = token(&app, OTHER_COACH).await;
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v1/reports/outcomes",
        Some(&marcus),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body["rows"].as_array().unwrap().is_empty(),
        "Rosa's clients are not Marcus's: {body}"
    );
    assert_eq!(body["funnel"]["opened"], 0);
    for (query, field) in [
        ("by=weekday", "by"),
        ("since=last%20week", "since"),
        ("until=2026-13-01", "until"),
    ] {
        let (status, body) = call(
            &app,
            Method::GET,
            &format!("/api/v1/reports/outcomes?{query}"),
            Some(&marcus),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["field"], field);
    }
}

async fn a_steps_variants_are_drawn_per_episode_and_compared_with_care(mut app: TestApp) {
    // A variant of step 1's SMS, beside the built-in one.
    let dir = app._dir.path().join("no-template-overrides/en");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("checkin-1~short.sms.hbs"),
        "Hi {{client.name}}, thinking of you. Reply STOP to opt out.",
    )
    .unwrap();
    app.ctx.composer = std::sync::Arc::new(
        reengage::domain::compose::Composer::load(&app._dir.path().join("no-template-overrides"))
            .unwrap(),
    );
    let ids: Vec<String> = (0..40).map(|i| format!("v-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    quiet_clients(&app, &ids, 300).await;
    let drafts = app.pending().await;
    assert_eq!(drafts.len(), 40);
    let short: Vec<_> = drafts
        .iter()
        .filter(|d| d.variant.as_deref() == Some("short"))
        .collect();
    assert!(
        (8..=32).contains(&short.len()),
        "both drawn: {} of 40",
        short.len()
    );
    for d in &drafts {
        assert_eq!(
            d.template, "en/checkin-1",
            "the step's template is recorded"
        );
        assert_eq!(
            d.body.starts_with("Hi Jordan, thinking of you."),
            d.variant.is_some(),
            "the variant's text goes with its name"
        );
    }
    send_to(&app, &ids, base()).await;
    let events: String = ids
        .iter()
        .take(10)
        .map(|id| {
            format!(
                "{id},check_in,{},\n",
                (base() + Duration::days(2)).to_rfc3339()
            )
        })
        .collect();
    app.import_events(
        &format!("external_id,kind,occurred_at,note\n{events}"),
        base() + Duration::days(2),
    )
    .await;
    let by_variant = report(&app, "variant").await;
    let rows = by_variant["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{by_variant}");
    assert_eq!(rows[0]["key"], "en/checkin-1 (base)");
    assert_eq!(rows[1]["key"], "en/checkin-1 short");
    let episodes: u64 = rows.iter().map(|r| r["episodes"].as_u64().unwrap()).sum();
    let returned: u64 = rows.iter().map(|r| r["returned"].as_u64().unwrap()).sum();
    assert_eq!((episodes, returned), (40, 10));
    assert_eq!(
        by_variant["undecided"], true,
        "forty episodes cannot tell them apart"
    );
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_reengage"))
        .arg("--config")
        .arg(&app.config)
        .args(["report", "--by", "variant"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("cannot yet tell the rows apart"), "{text}");
    let edited = report(&app, "edited").await;
    assert_eq!(edited["rows"][0]["key"], "unedited");
}

async fn the_outcomes_page_draws_its_charts_with_their_data_and_offers_the_csv(app: TestApp) {
    known_outcomes(&app).await;
    set_passwords(&app).await;
    let mut rosa = Browser::new(&app);
    rosa.log_in(COACH, PASSWORD).await;
    let Page {
        status, body: page, ..
    } = rosa
        .get("/reports?by=step&since=2026-03-01&until=2026-04-30")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.matches("<svg role=\"img\"").count(), 4, "four charts");
    assert!(
        page.contains("<title>From opened to returned</title>"),
        "{page}"
    );
    assert!(page.contains("id=\"funnel-summary\""));
    assert!(
        page.contains("10 episodes opened; 5 sent, 1 replied, 1 returned."),
        "{page}"
    );
    assert!(
        page.contains("<td>1</td><td>20% (4–62%) of 5</td>"),
        "the data table: {page}"
    );
    assert!(!page.contains("<script"), "no JavaScript");
    assert!(
        page.contains("name=\"until\" value=\"2026-04-30\""),
        "the form keeps the day asked for, so Show again shows the same period: {page}"
    );
    let Page {
        status,
        content_type: kind,
        body: csv,
        ..
    } = rosa
        .get("/reports.csv?by=channel&since=2026-03-01&until=2026-04-30")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert!(csv.contains("\nsms,5,8,"), "{csv}");
    // Marcus has no clients here: his page is empty, not Rosa's.
    let mut marcus = Browser::new(&app);
    marcus.log_in(OTHER_COACH, PASSWORD).await;
    let page = marcus
        .get("/reports?since=2026-03-01&until=2026-04-30")
        .await
        .body;
    assert!(page.contains("0 episodes opened"), "{page}");
    // A setting that cannot be read is named, not quietly replaced.
    for (path, field) in [
        ("/reports?by=shoe-size", "by: `shoe-size`"),
        ("/reports?since=someday", "since: "),
        ("/reports.csv?until=2026-13-45", "until: "),
    ] {
        let Page { status, body, .. } = rosa.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(body.contains(field), "{path}: {body}");
    }
}
