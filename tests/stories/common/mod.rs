//! A fresh reengage for each test, on SQLite or PostgreSQL, driven the way a
//! coach or an operator would drive it, with helpers that read what they would see.

use std::path::PathBuf;

mod browser;
pub use browser::{Browser, PASSWORD, Page, set_passwords};

use chrono::{DateTime, Utc};
use reengage::app::config::Settings;
use reengage::app::context::AppContext;
use reengage::domain::{MessageStatus, Role};
use reengage::pipeline::detect::{self, DetectSummary};
use reengage::pipeline::dispatch::{self, DispatchSummary};
use reengage::pipeline::intake::{self, ImportOptions, ImportReport, Table};
use reengage::pipeline::replies::alerts::{self, FollowUp};
use reengage::pipeline::review::{self, ActionError};
use reengage::store::coaches::{self, NewCoach};
use reengage::store::messages::{self, MessageView};
use reengage::store::send_log::{self, SendLogEntry};
use tempfile::TempDir;
use tower::ServiceExt as _;

/// Runs each named story on SQLite, and on PostgreSQL when `TEST_DATABASE_URL`
/// is set. Plain `cargo test` lists the PostgreSQL runs as ignored, not passed.
#[macro_export]
macro_rules! on_both_backends {
    (with $settings:ident; $($story:ident),* $(,)?) => {$(
        mod $story {
            #[tokio::test]
            async fn sqlite() {
                super::$story($crate::common::TestApp::sqlite_with(&super::$settings()).await).await
            }

            #[tokio::test]
            #[ignore = "needs PostgreSQL: scripts/test runs it with TEST_DATABASE_URL"]
            async fn postgres() {
                super::$story($crate::common::TestApp::postgres_with(&super::$settings()).await).await
            }
        }
    )*};
    ($($story:ident),* $(,)?) => {$(
        mod $story {
            #[tokio::test]
            async fn sqlite() {
                super::$story($crate::common::TestApp::sqlite().await).await
            }

            #[tokio::test]
            #[ignore = "needs PostgreSQL: scripts/test runs it with TEST_DATABASE_URL"]
            async fn postgres() {
                super::$story($crate::common::TestApp::postgres().await).await
            }
        }
    )*};
}

pub struct TestApp {
    pub ctx: AppContext,
    /// Holds the test's folder (database, outbox, config) until the test ends.
    pub _dir: TempDir,
    pub outbox: PathBuf,
    /// `[email.inbound.folder] dir`, where a test drops the emails clients send.
    pub inbox: PathBuf,
    /// The config file, for running the `reengage` binary on the same database.
    pub config: PathBuf,
}

pub fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("a valid RFC 3339 time in the test")
        .with_timezone(&Utc)
}

pub const COACH: &str = "rosa@example.org";
pub const OTHER_COACH: &str = "marcus@example.org";
pub const ADMIN: &str = "admin@example.org";

pub const CLIENT_HEADER: &str = "external_id,first_name,preferred_name,email,phone,preferred_channel,language,timezone,coach_email,consent_email,consent_sms,discreet,status";

impl TestApp {
    pub async fn sqlite() -> Self {
        Self::sqlite_with("").await
    }

    /// SQLite with extra TOML settings.
    pub async fn sqlite_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}/reengage.db", dir.path().display());
        Self::with_database(dir, url, extra).await
    }

    pub async fn postgres() -> Self {
        Self::postgres_with("").await
    }

    /// A fresh PostgreSQL database with extra TOML settings.
    pub async fn postgres_with(extra: &str) -> Self {
        let admin_url = std::env::var("TEST_DATABASE_URL").expect(
            "TEST_DATABASE_URL is not set: the PostgreSQL tests need a server (scripts/test starts one)",
        );
        let name = format!("reengage_test_{}", uuid::Uuid::new_v4().simple());
        {
            use sqlx::{Connection, Executor};
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("TEST_DATABASE_URL answers");
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .expect("a fresh test database");
        }
        let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
        url.set_path(&name);
        let dir = tempfile::tempdir().expect("a temporary folder");
        Self::with_database(dir, url.to_string(), extra).await
    }

    /// Builds the app with the built-in defaults, this database, an outbox in
    /// the test's folder, no scheduled jobs, plus `extra` TOML (which must not
    /// repeat the [database], [outbox], [templates] or [schedule] headers).
    pub async fn with_database(dir: TempDir, url: String, extra: &str) -> Self {
        let outbox = dir.path().join("outbox");
        let inbox = dir.path().join("inbox");
        let config = dir.path().join("test.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{url}\"\n[outbox]\ndir = \"{}\"\n[templates]\ndir = \"{}\"\n\
                 [email.inbound.folder]\ndir = \"{}\"\n\
                 [schedule]\ndetect = \"\"\ndispatch = \"\"\n{extra}",
                outbox.display(),
                dir.path().join("no-template-overrides").display(),
                inbox.display()
            ),
        )
        .expect("the test config is written");
        reengage::install_crypto_provider();
        let settings = Settings::load(Some(&config), None).expect("the test config is valid");
        let ctx = AppContext::build(settings).await.expect("the app starts");
        let app = Self {
            ctx,
            _dir: dir,
            outbox,
            inbox,
            config,
        };
        app.add_coach(COACH, "Rosa Diaz", Role::Coach).await;
        app.add_coach(OTHER_COACH, "Marcus Lee", Role::Coach).await;
        app.add_coach(ADMIN, "Avery Admin", Role::Admin).await;
        app
    }

    pub async fn add_coach(&self, email: &str, name: &str, role: Role) {
        let mut conn = self.ctx.store.conn().await.unwrap();
        coaches::insert(
            &mut conn,
            &NewCoach {
                email,
                name,
                phone: None,
                role,
                password_hash: None,
                timezone: None,
            },
            Utc::now(),
        )
        .await
        .unwrap()
        .expect("a new coach");
    }

    pub async fn import_clients(&self, csv: &str, now: DateTime<Utc>) -> ImportReport {
        self.import_clients_with(csv, ImportOptions::default(), now)
            .await
    }

    pub async fn import_clients_with(
        &self,
        csv: &str,
        options: ImportOptions,
        now: DateTime<Utc>,
    ) -> ImportReport {
        intake::import(
            &self.ctx,
            Table::Clients,
            std::io::Cursor::new(csv.to_owned()),
            options,
            now,
        )
        .await
        .expect("the import runs")
    }

    pub async fn import_events(&self, csv: &str, now: DateTime<Utc>) -> ImportReport {
        intake::import(
            &self.ctx,
            Table::Events,
            std::io::Cursor::new(csv.to_owned()),
            ImportOptions::default(),
            now,
        )
        .await
        .expect("the import runs")
    }

    pub async fn detect(&self, now: DateTime<Utc>) -> DetectSummary {
        detect::run(&self.ctx, now).await.expect("detection runs")
    }

    /// What the `dispatch` command does: the reply follow-up, then sending.
    pub async fn dispatch(&self, now: DateTime<Utc>) -> DispatchSummary {
        self.follow_up(now).await;
        dispatch::run_once(&self.ctx, now)
            .await
            .expect("dispatch runs")
    }

    /// The `alerts` job: crisis alerts retried and escalated, reply notices.
    pub async fn follow_up(&self, now: DateTime<Utc>) -> FollowUp {
        alerts::run(&self.ctx, now)
            .await
            .expect("the reply follow-up runs")
    }

    pub async fn approve(
        &self,
        id: i64,
        coach: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ActionError> {
        let coach = review::acting_coach(&self.ctx, coach).await?;
        review::approve(&self.ctx, &coach, id, false, now).await
    }

    /// A coach's action on one of their clients, which must succeed.
    pub async fn act(
        &self,
        coach: &str,
        external_id: &str,
        action: reengage::pipeline::casework::CaseAction,
        now: DateTime<Utc>,
    ) {
        let coach = review::acting_coach(&self.ctx, coach)
            .await
            .expect("an active coach");
        reengage::pipeline::casework::act(&self.ctx, &coach, external_id, &action, now)
            .await
            .expect("the action is allowed");
    }

    pub async fn reject(
        &self,
        id: i64,
        coach: &str,
        now: DateTime<Utc>,
    ) -> Result<(), review::EditError> {
        let coach = review::acting_coach(&self.ctx, coach).await?;
        review::reject(&self.ctx, &coach, id, Some("not now"), now).await
    }

    pub async fn messages(&self, status: Option<MessageStatus>) -> Vec<MessageView> {
        let mut conn = self.ctx.store.conn().await.unwrap();
        messages::list(&mut conn, status, &reengage::store::Scope::All)
            .await
            .unwrap()
    }

    /// The one number an SQL query answers, such as a `COUNT(*)`.
    pub async fn count(&self, sql: &'static str) -> i64 {
        let mut conn = self.ctx.store.conn().await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut *conn).await.unwrap()
    }

    /// One client, quiet for ten days at `now`, and the draft detection
    /// writes for them.
    pub async fn one_draft(&self, now: DateTime<Utc>) -> MessageView {
        self.import_clients(
            &clients_csv(&[ClientCsv::default()]),
            now - chrono::Duration::days(10),
        )
        .await;
        self.detect(now).await;
        self.pending().await.pop().expect("a draft")
    }

    pub async fn pending(&self) -> Vec<MessageView> {
        self.messages(Some(MessageStatus::Pending)).await
    }

    pub async fn message(&self, id: i64) -> MessageView {
        let mut conn = self.ctx.store.conn().await.unwrap();
        messages::view(&mut conn, id)
            .await
            .unwrap()
            .expect("the message exists")
    }

    pub async fn send_log(&self) -> Vec<SendLogEntry> {
        let mut conn = self.ctx.store.conn().await.unwrap();
        send_log::list(
            &mut conn,
            &send_log::Filter::scope(reengage::store::Scope::All),
            0,
            i64::MAX,
        )
        .await
        .unwrap()
    }

    /// The outbox's file names, sorted.
    pub fn outbox_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.outbox) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub fn outbox_file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.outbox.join(name)).expect("the outbox file exists")
    }
}

/// A client row for `clients.csv` with sensible defaults; override with `..`.
pub struct ClientCsv<'a> {
    pub external_id: &'a str,
    pub first_name: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub channel: &'a str,
    pub language: &'a str,
    pub timezone: &'a str,
    pub coach: &'a str,
    pub consent_email: &'a str,
    pub consent_sms: &'a str,
    pub status: &'a str,
}

impl Default for ClientCsv<'_> {
    fn default() -> Self {
        Self {
            external_id: "c-1",
            first_name: "Jordan",
            email: "jordan@example.org",
            phone: "(201) 555-0123",
            channel: "sms",
            language: "en",
            timezone: "America/New_York",
            coach: COACH,
            consent_email: "yes",
            consent_sms: "yes",
            status: "active",
        }
    }
}

impl ClientCsv<'_> {
    pub fn line(&self) -> String {
        format!(
            "{},{},,{},\"{}\",{},{},{},{},{},{},no,{}",
            self.external_id,
            self.first_name,
            self.email,
            self.phone,
            self.channel,
            self.language,
            self.timezone,
            self.coach,
            self.consent_email,
            self.consent_sms,
            self.status
        )
    }
}

pub fn clients_csv(rows: &[ClientCsv<'_>]) -> String {
    let mut csv = String::from(CLIENT_HEADER);
    for row in rows {
        csv.push('\n');
        csv.push_str(&row.line());
    }
    csv.push('\n');
    csv
}

/// Approved messages for `n` clients quiet for 10 days, ready to dispatch at `now`.
/// Even-numbered clients prefer SMS, odd ones email. Returns the message ids.
pub async fn approved_messages(app: &TestApp, n: usize, now: DateTime<Utc>) -> Vec<i64> {
    let mut csv = String::from(CLIENT_HEADER);
    let mut events = String::from("external_id,kind,occurred_at,note");
    for i in 0..n {
        let channel = if i % 2 == 0 { "sms" } else { "email" };
        csv.push_str(&format!(
            "\nc-{i:04},Client{i},,client{i}@example.org,+1201555{:04},{channel},en,America/New_York,{COACH},yes,yes,no,active",
            1000 + i
        ));
        events.push_str(&format!(
            "\nc-{i:04},check_in,{},",
            (now - chrono::Duration::days(10)).to_rfc3339()
        ));
    }
    csv.push('\n');
    events.push('\n');
    let report = app
        .import_clients(&csv, now - chrono::Duration::days(20))
        .await;
    assert!(report.committed, "{:?}", report.errors);
    assert!(app.import_events(&events, now).await.committed);
    assert_eq!(app.detect(now).await.drafted, n as u64);
    let mut ids = Vec::new();
    for draft in app.pending().await {
        app.approve(draft.id, COACH, now).await.unwrap();
        ids.push(draft.id);
    }
    ids
}

/// postfix's smtp-sink on a loopback port: a real SMTP server that stores each
/// message it accepts as a file, and can be told to fail on purpose.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    pub dir: TempDir,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpSink {
    /// Starts on a free port; `flags` inject failures (`-r rcpt`, `-f rcpt`, `-q .`).
    pub fn start(flags: &[&str]) -> Self {
        Self::start_on(free_port(), flags)
    }

    pub fn start_on(port: u16, flags: &[&str]) -> Self {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut cmd = std::process::Command::new("smtp-sink");
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        if root {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg("-d")
            .arg(format!("{}/%M.", dir.path().display()))
            .args(flags)
            .arg(format!("127.0.0.1:{port}"))
            .arg("16")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let child = cmd
            .spawn()
            .expect("smtp-sink runs (apt-get install postfix; scripts/test does)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "smtp-sink did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Self { child, port, dir }
    }

    /// The settings that send email through this sink.
    pub fn settings(&self) -> String {
        format!(
            "[email]\ntransport = \"smtp\"\n[email.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
             timeout_seconds = 5\npool_size = 2\n",
            self.port
        )
    }

    /// Every message the sink accepted, parsed.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Twilio-compatible API that accepts every message, remembers it, and lists
/// what it has, as the real one does for reconciliation.
#[derive(Clone, Default)]
pub struct FakeTwilio {
    pub received: std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>,
}

impl FakeTwilio {
    /// (sid, to, body) of every message accepted.
    pub fn received(&self) -> Vec<(String, String, String)> {
        self.received.lock().unwrap().clone()
    }

    pub async fn mount(&self, server: &wiremock::MockServer) {
        use wiremock::matchers::{method, path_regex};
        wiremock::Mock::given(method("POST"))
            .and(path_regex(
                r"^/2010-04-01/Accounts/AC[0-9a-f]+/Messages\.json$",
            ))
            .respond_with(self.clone())
            .mount(server)
            .await;
        wiremock::Mock::given(method("GET"))
            .and(path_regex(
                r"^/2010-04-01/Accounts/AC[0-9a-f]+/Messages\.json$",
            ))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }
}

impl wiremock::Respond for FakeTwilio {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        if request.method == wiremock::http::Method::GET {
            let to = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "To")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let messages: Vec<serde_json::Value> = self
                .received()
                .into_iter()
                .filter(|(_, t, _)| *t == to)
                .map(|(sid, to, body)| serde_json::json!({"sid": sid, "to": to, "body": body, "status": "sent"}))
                .collect();
            return wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"messages": messages}));
        }
        let form: Vec<(String, String)> = url::form_urlencoded::parse(&request.body)
            .into_owned()
            .collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut received = self.received.lock().unwrap();
        let sid = format!("SM{:032x}", received.len() + 1);
        received.push((sid.clone(), field("To"), field("Body")));
        wiremock::ResponseTemplate::new(201)
            .set_body_json(serde_json::json!({"sid": sid, "status": "queued", "error_code": null, "error_message": null}))
    }
}

/// The settings that send SMS through a mock at `base_url`.
pub fn twilio_settings(base_url: &str) -> String {
    format!(
        "[sms]\ntransport = \"twilio\"\n[sms.twilio]\nbase_url = \"{base_url}\"\n\
         account_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = \"test-auth-token\"\n\
         max_per_second = 0\ntimeout_seconds = 2\n"
    )
}

/// Rosa's client c-1 (named `first_name`, phone +12015550123) and Marcus's
/// client m-1 (Devon), both quiet for 10 days, each with a pending draft.
/// Returns (Rosa's draft, Marcus's draft).
pub async fn drafts_for_rosa_and_marcus(app: &TestApp, first_name: &str) -> (i64, i64) {
    let now = Utc::now();
    app.import_clients(
        &clients_csv(&[
            ClientCsv {
                first_name,
                ..Default::default()
            },
            ClientCsv {
                external_id: "m-1",
                first_name: "Devon",
                coach: OTHER_COACH,
                ..Default::default()
            },
        ]),
        now - chrono::Duration::days(10),
    )
    .await;
    app.detect(now).await;
    let drafts = app.pending().await;
    let id = |ext: &str| {
        drafts
            .iter()
            .find(|d| d.client_external_id == ext)
            .unwrap()
            .id
    };
    (id("c-1"), id("m-1"))
}

/// A new API token for the coach with this email.
pub async fn token(app: &TestApp, email: &str) -> String {
    let coach = reengage::pipeline::review::acting_coach(&app.ctx, email)
        .await
        .unwrap();
    let mut conn = app.ctx.store.conn().await.unwrap();
    reengage::store::tokens::create(&mut conn, coach.id, None, chrono::Utc::now())
        .await
        .unwrap()
}

/// One API request as that token's coach: the status and the JSON body
/// (`null` when the body is not JSON).
pub async fn call(
    app: &TestApp,
    method: axum::http::Method,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (axum::http::StatusCode, serde_json::Value) {
    let mut request = axum::http::Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string())),
        None => request.body(axum::body::Body::empty()),
    }
    .unwrap();
    let response = reengage::web::router(app.ctx.clone())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, value)
}

/// The agency's reply mailbox in the email-reply stories.
pub const REPLIES: &str = "replies@hope.example.org";

/// Email replies are read from the test's inbox folder.
pub fn inbound_settings() -> String {
    format!("[email.inbound]\ntransport = \"folder\"\naddress = \"{REPLIES}\"\n")
}

/// 10:00 in New York, when nothing waits for quiet hours.
pub fn morning() -> DateTime<Utc> {
    at("2026-03-10T15:00:00Z")
}

impl TestApp {
    /// Drops a raw email into the inbox folder as `name` (its lines end in
    /// CRLF, as mail's do; `raw` may use either).
    pub fn deliver(&self, name: &str, raw: &str) {
        std::fs::create_dir_all(&self.inbox).unwrap();
        let crlf = raw.replace("\r\n", "\n").replace('\n', "\r\n");
        std::fs::write(self.inbox.join(name), crlf).unwrap();
    }
}
