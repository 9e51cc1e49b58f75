//! A fresh reengage for each test, on SQLite or PostgreSQL, driven the way a
//! coach or an operator would drive it, with helpers that read what they would see.

#![allow(dead_code)]

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use reengage::config::Settings;
use reengage::context::AppContext;
use reengage::detect::{self, DetectSummary};
use reengage::dispatch::{self, DispatchSummary};
use reengage::domain::{MessageStatus, Role};
use reengage::drafts::{self, ActionError};
use reengage::import::{self, ImportOptions, ImportReport};
use reengage::store::coaches::{self, NewCoach};
use reengage::store::messages::{self, MessageView};
use reengage::store::send_log::{self, SendLogEntry};
use tempfile::TempDir;

/// Runs each named story on SQLite, and on PostgreSQL when `TEST_DATABASE_URL`
/// is set. Plain `cargo test` lists the PostgreSQL runs as ignored, not passed.
#[macro_export]
macro_rules! on_both_backends {
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
    pub dir: TempDir,
    pub outbox: PathBuf,
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
        let dir = tempfile::tempdir().expect("a temporary folder");
        let url = format!("sqlite://{}/reengage.db", dir.path().display());
        Self::with_database(dir, url, "").await
    }

    pub async fn postgres() -> Self {
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
        Self::with_database(dir, url.to_string(), "").await
    }

    /// Builds the app with the built-in defaults, this database, an outbox in
    /// the test's folder, no scheduled jobs, plus `extra` TOML.
    pub async fn with_database(dir: TempDir, url: String, extra: &str) -> Self {
        let outbox = dir.path().join("outbox");
        let config = dir.path().join("test.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{url}\"\n[outbox]\ndir = \"{}\"\n[templates]\ndir = \"{}\"\n\
                 [schedule]\ndetect = \"\"\ndispatch = \"\"\n{extra}",
                outbox.display(),
                dir.path().join("no-template-overrides").display()
            ),
        )
        .expect("the test config is written");
        reengage::install_crypto_provider();
        let settings = Settings::load(Some(&config), None).expect("the test config is valid");
        let ctx = AppContext::build(settings).await.expect("the app starts");
        let app = Self { ctx, dir, outbox };
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
        import::clients(&self.ctx, csv.as_bytes(), options, now)
            .await
            .expect("the import runs")
    }

    pub async fn import_events(&self, csv: &str, now: DateTime<Utc>) -> ImportReport {
        import::events(&self.ctx, csv.as_bytes(), ImportOptions::default(), now)
            .await
            .expect("the import runs")
    }

    pub async fn detect(&self, now: DateTime<Utc>) -> DetectSummary {
        detect::run(&self.ctx, now).await.expect("detection runs")
    }

    pub async fn dispatch(&self, now: DateTime<Utc>) -> DispatchSummary {
        dispatch::run_once(&self.ctx, now)
            .await
            .expect("dispatch runs")
    }

    pub async fn approve(
        &self,
        id: i64,
        coach: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ActionError> {
        let coach = drafts::acting_coach(&self.ctx, coach).await.unwrap()?;
        drafts::approve(&self.ctx, &coach, id, now).await.unwrap()
    }

    pub async fn reject(
        &self,
        id: i64,
        coach: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ActionError> {
        let coach = drafts::acting_coach(&self.ctx, coach).await.unwrap()?;
        drafts::reject(&self.ctx, &coach, id, Some("not now"), now)
            .await
            .unwrap()
    }

    pub async fn messages(&self, status: Option<MessageStatus>) -> Vec<MessageView> {
        let mut conn = self.ctx.store.conn().await.unwrap();
        messages::list(&mut conn, status, None).await.unwrap()
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
        send_log::list(&mut conn, None).await.unwrap()
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
