//! CSV import of clients and engagement events, as docs/architecture.md specifies.
//!
//! The file streams through one transaction, a chunk of rows at a time: a
//! thread reads and checks the next chunk while the current one is written with
//! a few multi-row statements. Memory does not grow with the file, and a large
//! file costs a few round trips per [`CHUNK`] rows, not several per row. If any row is bad the
//! transaction is rolled back and nothing is imported, unless `skip_invalid`
//! asks for the good rows to be kept. Every bad row is reported as
//! `line N: reason`. Re-importing a file changes nothing: clients are matched by
//! `external_id` and events are unique on (client, kind, time).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::str::FromStr;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use crate::app::config::Settings;
use crate::app::context::AppContext;
use crate::domain::AuditAction;
use crate::domain::client::Client;
use crate::domain::eligibility::Refusal;
use crate::domain::limits;
use crate::domain::local_time::local_to_utc;
use crate::domain::{Channel, ClientStatus, EmailAddress, EventKind, PhoneNumber};
use crate::pipeline::casework::{self, CaseError};
use crate::store::audit::{self, Actor};
use crate::store::clients::{self, ClientFields, EventTarget};
use crate::store::coaches::{self, CoachRow};
use crate::store::episodes;
use crate::store::events::{self, NewEvent};

pub const CLIENT_COLUMNS: &[&str] = &[
    "external_id",
    "first_name",
    "preferred_name",
    "email",
    "phone",
    "preferred_channel",
    "language",
    "timezone",
    "coach_email",
    "consent_email",
    "consent_sms",
    "discreet",
    "status",
];
const CLIENT_REQUIRED: &[&str] = &["external_id", "first_name", "coach_email"];
pub const EVENT_COLUMNS: &[&str] = &["external_id", "kind", "occurred_at", "note"];
const EVENT_REQUIRED: &[&str] = &["external_id", "kind", "occurred_at"];
/// Rows checked and written together. Each statement then binds at most
/// 13 × 500 values, well within what SQLite and PostgreSQL accept.
pub const CHUNK: usize = 500;

#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Import the good rows even if some are bad.
    pub skip_invalid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ImportReport {
    /// Data rows read (not counting the header).
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Clients the events show are back in touch: their open episode closed.
    pub re_engaged: u64,
    pub errors: Vec<RowError>,
    /// Whether the good rows were written.
    pub committed: bool,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.committed {
            return write!(
                f,
                "nothing imported: {} of {} rows are bad (fix them, or use --skip-invalid to import the rest)",
                self.errors.len(),
                self.rows
            );
        }
        write!(
            f,
            "{} rows: {} new, {} updated, {} unchanged",
            self.rows, self.created, self.updated, self.unchanged
        )?;
        if self.re_engaged > 0 {
            let who = if self.re_engaged == 1 {
                "client"
            } else {
                "clients"
            };
            write!(f, ", {} {who} back in touch", self.re_engaged)?;
        }
        if !self.errors.is_empty() {
            write!(f, ", {} bad rows skipped", self.errors.len())?;
        }
        Ok(())
    }
}

/// A client as the agency gives it, before checking: a CSV row or an API body.
#[derive(Debug, Default, Deserialize)]
pub struct ClientRecord {
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub preferred_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub preferred_channel: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub coach_email: Option<String>,
    #[serde(default)]
    pub consent_email: Option<String>,
    #[serde(default)]
    pub consent_sms: Option<String>,
    #[serde(default)]
    pub discreet: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl ClientRecord {
    /// Each field longer than its limit, named.
    fn too_long(&self) -> Vec<String> {
        too_long(&[
            ("external_id", &self.external_id, limits::EXTERNAL_ID),
            ("first_name", &self.first_name, limits::NAME),
            ("preferred_name", &self.preferred_name, limits::NAME),
            ("email", &self.email, limits::EMAIL),
            ("phone", &self.phone, limits::PHONE),
            ("preferred_channel", &self.preferred_channel, limits::CODE),
            ("language", &self.language, limits::CODE),
            ("timezone", &self.timezone, limits::CODE),
            ("coach_email", &self.coach_email, limits::EMAIL),
            ("consent_email", &self.consent_email, limits::CODE),
            ("consent_sms", &self.consent_sms, limits::CODE),
            ("discreet", &self.discreet, limits::CODE),
            ("status", &self.status, limits::CODE),
        ])
    }
}

/// The problem of each given field over its limit.
fn too_long(fields: &[(&str, &Option<String>, usize)]) -> Vec<String> {
    fields
        .iter()
        .filter_map(|(name, value, max)| {
            value
                .as_deref()
                .and_then(|v| limits::too_long(name, v, *max))
        })
        .collect()
}

/// An engagement event as the agency gives it, before checking.
#[derive(Debug, Default, Deserialize)]
pub struct EventRecord {
    #[serde(default)]
    pub external_id: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
}

/// Up to [`CHUNK`] rows as read and checked, the good and the bad.
struct Chunk<U> {
    rows: u64,
    good: Vec<U>,
    errors: Vec<RowError>,
}

impl<U> Chunk<U> {
    fn new() -> Self {
        Self {
            rows: 0,
            good: Vec::with_capacity(CHUNK),
            errors: Vec::new(),
        }
    }
}

/// Reads and checks the CSV on a thread of its own, handing over a [`Chunk`]
/// at a time: reading and checking the next chunk (phone numbers cost most)
/// overlaps with the database writing this one. `check` gets each record with
/// its line number. Problems with the file's shape become row errors; a bad
/// header stops the reading. The caller awaits the handle once the chunks run
/// out, so that a reader that died is an error, never a short file.
fn read_chunks<T, U>(
    input: impl Read + Send + 'static,
    known: &'static [&'static str],
    required: &'static [&'static str],
    check: impl FnMut(u64, T) -> Result<U, String> + Send + 'static,
) -> (
    tokio::sync::mpsc::Receiver<Chunk<U>>,
    tokio::task::JoinHandle<()>,
)
where
    T: DeserializeOwned,
    U: Send + 'static,
{
    // Two chunks ahead at most, so memory stays flat however long the file.
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let reader = tokio::task::spawn_blocking(move || {
        walk(input, known, required, check, |chunk| {
            sender.blocking_send(chunk).is_ok()
        })
    });
    (receiver, reader)
}

/// The reading half of [`read_chunks`]. Stops early if `emit` says the chunks
/// are no longer wanted.
fn walk<T: DeserializeOwned, U>(
    input: impl Read,
    known: &[&str],
    required: &[&str],
    mut check: impl FnMut(u64, T) -> Result<U, String>,
    mut emit: impl FnMut(Chunk<U>) -> bool,
) {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut chunk = Chunk::new();
    let header = match reader.headers() {
        Ok(h) => header_problem(h, known, required).map_or(Ok(h.clone()), Err),
        Err(e) => Err(format!("cannot read the header: {e}")),
    };
    let headers = match header {
        Ok(headers) => headers,
        Err(reason) => {
            chunk.errors.push(RowError { line: 1, reason });
            emit(chunk);
            return;
        }
    };
    let mut record = csv::StringRecord::new();
    let mut readable = true;
    while readable {
        let line = reader.position().line();
        let result = match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                match record.deserialize::<T>(Some(&headers)) {
                    Ok(parsed) => check(line, parsed).map_err(|reason| RowError { line, reason }),
                    Err(e) => Err(RowError {
                        line,
                        reason: format!("cannot read the row: {e}"),
                    }),
                }
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("has {len} fields, but the header has {expected_len}"),
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
                    // The rest of the file cannot be read: it ends here, as a bad row.
                    csv::ErrorKind::Io(e) => {
                        readable = false;
                        format!("the file could not be read from here on: {e}")
                    }
                    _ => e.to_string(),
                };
                Err(RowError { line, reason })
            }
        };
        chunk.rows += 1;
        match result {
            Ok(good) => chunk.good.push(good),
            Err(error) => chunk.errors.push(error),
        }
        if chunk.rows == CHUNK as u64 && !emit(std::mem::replace(&mut chunk, Chunk::new())) {
            return;
        }
    }
    if chunk.rows > 0 {
        emit(chunk);
    }
}

/// Adds a chunk's count and bad rows to the report; returns its good rows.
fn tally<U>(report: &mut ImportReport, chunk: Chunk<U>) -> Vec<U> {
    report.rows += chunk.rows;
    report.errors.extend(chunk.errors);
    chunk.good
}

fn header_problem(
    headers: &csv::StringRecord,
    known: &[&str],
    required: &[&str],
) -> Option<String> {
    let mut problems = Vec::new();
    let unknown: Vec<&str> = headers.iter().filter(|h| !known.contains(h)).collect();
    if !unknown.is_empty() {
        problems.push(format!("unknown column(s) {}", unknown.join(", ")));
    }
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !headers.iter().any(|h| h == *r))
        .collect();
    if !missing.is_empty() {
        problems.push(format!("missing column(s) {}", missing.join(", ")));
    }
    for (i, h) in headers.iter().enumerate() {
        if headers.iter().skip(i + 1).any(|other| other == h) {
            problems.push(format!("column {h} appears twice"));
        }
    }
    (!problems.is_empty()).then(|| {
        format!(
            "bad header: {}; expected the columns {}",
            problems.join("; "),
            known.join(",")
        )
    })
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn flag(name: &str, value: &Option<String>, reasons: &mut Vec<String>) -> bool {
    match present(value).map(str::to_ascii_lowercase).as_deref() {
        None | Some("no") | Some("false") => false,
        Some("yes") | Some("true") => true,
        Some(other) => {
            reasons.push(format!("{name} `{other}` is not yes, no, true or false"));
            false
        }
    }
}

/// Which CSV an import reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// `clients.csv`. Clients are matched on `external_id`: new ones are
    /// added, changed ones updated, identical ones left alone.
    Clients,
    /// `events.csv`. Each event's client must exist already.
    Events,
}

/// Imports one CSV in one transaction: every row or, with errors and without
/// `skip_invalid`, none.
pub async fn import(
    ctx: &AppContext,
    table: Table,
    input: impl Read + Send + 'static,
    options: ImportOptions,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportReport> {
    let mut tx = ctx.store.begin().await?;
    let run = Run {
        ctx,
        first_step: ctx.settings.first_step_after(),
        now,
    };
    let (report, action) = match table {
        Table::Clients => (
            run.clients(&mut tx, input).await?,
            AuditAction::ImportClients,
        ),
        Table::Events => (run.events(&mut tx, input).await?, AuditAction::ImportEvents),
    };
    finish(tx, options, report, action, now).await
}

/// What one import knows while it reads: the settings, the first step's delay
/// for new clients and episodes, and the time it runs at.
struct Run<'a> {
    ctx: &'a AppContext,
    first_step: Duration,
    now: DateTime<Utc>,
}

impl Run<'_> {
    /// Reads `clients.csv` a chunk at a time, checking each row against the
    /// rules and the rows before it.
    async fn clients(
        &self,
        tx: &mut AnyConnection,
        input: impl Read + Send + 'static,
    ) -> anyhow::Result<ImportReport> {
        let (ctx, first_step, now) = (self.ctx, self.first_step, self.now);
        let rules = ClientRules::load(ctx, &mut *tx).await?;
        let mut seen: HashMap<String, u64> = HashMap::new();
        let (mut chunks, reader) = read_chunks(
            input,
            CLIENT_COLUMNS,
            CLIENT_REQUIRED,
            move |line, row: ClientRecord| {
                let duplicate = present(&row.external_id).and_then(|id| match seen.get(id) {
                    Some(first) => {
                        Some(format!("external_id {id} already appears on line {first}"))
                    }
                    None => {
                        seen.insert(id.to_owned(), line);
                        None
                    }
                });
                match (rules.check(&row), duplicate) {
                    (Ok(fields), None) => Ok(fields),
                    (result, duplicate) => {
                        let mut reasons: Vec<String> = duplicate.into_iter().collect();
                        if let Err(more) = result {
                            reasons.extend(more);
                        }
                        Err(reasons.join("; "))
                    }
                }
            },
        );
        let mut report = ImportReport::default();
        while let Some(chunk) = chunks.recv().await {
            let good = tally(&mut report, chunk);
            upsert_clients(&mut *tx, &good, first_step, now, &mut report).await?;
        }
        reader.await.context("Failed to read the CSV")?;
        Ok(report)
    }

    /// Reads `events.csv` a chunk at a time.
    async fn events(
        &self,
        tx: &mut AnyConnection,
        input: impl Read + Send + 'static,
    ) -> anyhow::Result<ImportReport> {
        let (ctx, first_step, now) = (self.ctx, self.first_step, self.now);
        // Checking an event needs its client, so it happens here, a chunk at a time.
        let (mut chunks, reader) = read_chunks(
            input,
            EVENT_COLUMNS,
            EVENT_REQUIRED,
            |line, row: EventRecord| Ok((line, row)),
        );
        let mut report = ImportReport::default();
        while let Some(chunk) = chunks.recv().await {
            let rows = tally(&mut report, chunk);
            let ids: Vec<&str> = rows
                .iter()
                .filter_map(|(_, r)| present(&r.external_id))
                .collect();
            let known: HashMap<String, EventTarget> = clients::event_targets(&mut *tx, &ids)
                .await?
                .into_iter()
                .map(|c| (c.external_id.clone(), c))
                .collect();
            let mut good = Vec::with_capacity(rows.len());
            for (line, row) in &rows {
                let client = present(&row.external_id)
                    .and_then(|id| known.get(id))
                    .cloned();
                match check_event(&ctx.settings, row, client, now) {
                    Ok((client, kind, occurred_at)) => {
                        let event = NewEvent {
                            kind,
                            occurred_at,
                            source: "csv",
                            note: present(&row.note),
                            by: None,
                        };
                        good.push((client, event));
                    }
                    Err(reasons) => report.errors.push(RowError {
                        line: *line,
                        reason: reasons.join("; "),
                    }),
                }
            }
            let batch: Vec<(&EventTarget, &NewEvent)> = good.iter().map(|(c, e)| (c, e)).collect();
            let recorded = events::record_many(&mut *tx, &batch, first_step, now).await?;
            report.created += recorded.new;
            report.unchanged += batch.len() as u64 - recorded.new;
            report.re_engaged += recorded.back;
        }
        reader.await.context("Failed to read the CSV")?;
        Ok(report)
    }
}

/// What a client record is checked against: the settings, the languages that
/// have templates, and the active coaches.
pub struct ClientRules {
    settings: Arc<Settings>,
    region: phonenumber::country::Id,
    languages: BTreeSet<String>,
    coaches_by_email: HashMap<String, i64>,
}

impl ClientRules {
    pub async fn load(ctx: &AppContext, conn: &mut AnyConnection) -> anyhow::Result<Self> {
        Ok(Self {
            settings: ctx.settings.clone(),
            region: ctx.settings.phone_region(),
            languages: ctx.composer.languages(),
            coaches_by_email: coaches::all_active(conn)
                .await?
                .into_iter()
                .map(|c| (c.email.to_lowercase(), c.id))
                .collect(),
        })
    }

    /// The record as valid fields, or every reason it is not.
    pub fn check(&self, row: &ClientRecord) -> Result<ClientFields, Vec<String>> {
        let mut reasons = row.too_long();
        let external_id = present(&row.external_id).map(str::to_owned);
        if external_id.is_none() {
            reasons.push("external_id is empty".to_owned());
        }
        let first_name = present(&row.first_name).map(str::to_owned);
        if first_name.is_none() {
            reasons.push("first_name is empty".to_owned());
        }
        let coach_id = match present(&row.coach_email) {
            None => {
                reasons.push("coach_email is empty".to_owned());
                None
            }
            Some(email) => {
                let id = self.coaches_by_email.get(&email.to_lowercase()).copied();
                if id.is_none() {
                    reasons.push(format!("no active coach has the email {email}"));
                }
                id
            }
        };
        let (email, phone, preferred_channel) = self.contact(row, &mut reasons);
        let (language, timezone) = self.locale(row, &mut reasons);
        let consent_email = flag("consent_email", &row.consent_email, &mut reasons);
        let consent_sms = flag("consent_sms", &row.consent_sms, &mut reasons);
        let discreet = flag("discreet", &row.discreet, &mut reasons);
        let status = match present(&row.status) {
            None => ClientStatus::Active,
            Some(s) => ClientStatus::from_str(&s.to_ascii_lowercase()).unwrap_or_else(|_| {
                reasons.push(format!(
                    "status `{s}` is not active, paused, hold or discharged"
                ));
                ClientStatus::Active
            }),
        };
        let (Some(external_id), Some(first_name), Some(coach_id), true) =
            (external_id, first_name, coach_id, reasons.is_empty())
        else {
            return Err(reasons);
        };
        Ok(ClientFields {
            external_id,
            first_name,
            preferred_name: present(&row.preferred_name).map(str::to_owned),
            email,
            phone,
            preferred_channel,
            language,
            timezone,
            coach_id,
            consent_email,
            consent_sms,
            discreet,
            status,
        })
    }

    /// The client's addresses and the channel to prefer: a number means SMS
    /// unless the row says otherwise, and the preferred channel needs its
    /// address.
    fn contact(
        &self,
        row: &ClientRecord,
        reasons: &mut Vec<String>,
    ) -> (Option<EmailAddress>, Option<PhoneNumber>, Channel) {
        let email = present(&row.email).and_then(|e| match EmailAddress::parse(e) {
            Ok(e) => Some(e),
            Err(err) => {
                reasons.push(format!("email: {err}"));
                None
            }
        });
        let phone =
            present(&row.phone).and_then(|p| match PhoneNumber::parse(p, Some(self.region)) {
                Ok(p) => Some(p),
                Err(err) => {
                    reasons.push(format!("phone: {err}"));
                    None
                }
            });
        let preferred_channel = match present(&row.preferred_channel) {
            None if phone.is_some() || present(&row.phone).is_some() => Channel::Sms,
            None => Channel::Email,
            Some(c) => Channel::from_str(&c.to_ascii_lowercase()).unwrap_or_else(|_| {
                reasons.push(format!("preferred_channel `{c}` is not email or sms"));
                Channel::Email
            }),
        };
        let has_contact = match preferred_channel {
            Channel::Email => present(&row.email).is_some(),
            Channel::Sms => present(&row.phone).is_some(),
        };
        if !has_contact {
            reasons.push(match preferred_channel {
                Channel::Email => "email is empty, and the preferred channel is email".to_owned(),
                Channel::Sms => "phone is empty, and the preferred channel is sms".to_owned(),
            });
        }
        (email, phone, preferred_channel)
    }

    /// The language (one with templates) and the timezone, or the defaults.
    fn locale(&self, row: &ClientRecord, reasons: &mut Vec<String>) -> (String, Tz) {
        let language = present(&row.language)
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| self.settings.defaults.language.clone());
        if !self.languages.contains(&language) {
            reasons.push(format!(
                "language `{language}` has no templates (available: {})",
                self.languages
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let timezone = match present(&row.timezone) {
            None => self.settings.defaults.timezone,
            Some(tz) => Tz::from_str(tz).unwrap_or_else(|_| {
                reasons.push(format!(
                    "timezone `{tz}` is not an IANA timezone like America/Chicago"
                ));
                self.settings.defaults.timezone
            }),
        };
        (language, timezone)
    }
}

/// Adds the clients, or updates those whose fields changed (their external ids
/// distinct); pausing, holding or discharging closes the open episode and
/// cancels anything unsent. New clients go in with one statement.
pub async fn upsert_clients(
    conn: &mut AnyConnection,
    batch: &[ClientFields],
    first_step: Duration,
    now: DateTime<Utc>,
    report: &mut ImportReport,
) -> anyhow::Result<()> {
    let ids: Vec<&str> = batch.iter().map(|f| f.external_id.as_str()).collect();
    let existing: HashMap<String, Client> = clients::by_external_ids(conn, &ids)
        .await?
        .into_iter()
        .map(|c| (c.external_id.clone(), c))
        .collect();
    let mut new = Vec::new();
    for fields in batch {
        match existing.get(&fields.external_id) {
            None => new.push(fields),
            Some(existing) if fields.matches(existing) => report.unchanged += 1,
            Some(existing) => {
                clients::update(conn, existing.id, fields, now).await?;
                let changed = existing.status != fields.status;
                if let Some(reason) = Refusal::for_status(fields.status).filter(|_| changed) {
                    episodes::wind_down(conn, &[existing.id], reason, now).await?;
                }
                report.updated += 1;
            }
        }
    }
    clients::insert_many(conn, &new, now + first_step, now).await?;
    report.created += new.len() as u64;
    Ok(())
}

/// Checks an event record against `client`, the client found for its
/// `external_id` (if any): the client exists, the kind is known, and the time is
/// readable and not in the future. The error lists every reason.
pub fn check_event(
    settings: &Settings,
    row: &EventRecord,
    client: Option<EventTarget>,
    now: DateTime<Utc>,
) -> Result<(EventTarget, EventKind, DateTime<Utc>), Vec<String>> {
    let mut reasons = too_long(&[
        ("external_id", &row.external_id, limits::EXTERNAL_ID),
        ("kind", &row.kind, limits::CODE),
        ("occurred_at", &row.occurred_at, limits::TIMESTAMP),
        ("note", &row.note, limits::NOTE),
    ]);
    let kind = match present(&row.kind) {
        None => {
            reasons.push("kind is empty".to_owned());
            None
        }
        Some(k) => EventKind::from_str(&k.to_ascii_lowercase())
            .map_err(|_| {
                reasons.push(format!(
                    "kind `{k}` is not one of check_in, session_attended, coach_contact, \
                     message_reply, session_missed, dose_missed, discharged"
                ))
            })
            .ok(),
    };
    let client = match present(&row.external_id) {
        None => {
            reasons.push("external_id is empty".to_owned());
            None
        }
        Some(id) => {
            if client.is_none() {
                reasons.push(format!("no client has the external_id {id}"));
            }
            client
        }
    };
    let tz = client
        .as_ref()
        .and_then(|c| Tz::from_str(&c.timezone).ok())
        .unwrap_or(settings.defaults.timezone);
    let occurred_at = match present(&row.occurred_at) {
        None => {
            reasons.push("occurred_at is empty".to_owned());
            None
        }
        Some(text) => match parse_occurred_at(text, tz) {
            Some(at) if at > now + Duration::minutes(5) => {
                reasons.push(format!("occurred_at {text} is in the future"));
                None
            }
            Some(at) => Some(at),
            None => {
                reasons.push(format!(
                    "occurred_at `{text}` is neither RFC 3339 (2026-03-01T14:30:00Z) nor a date (2026-03-01)"
                ));
                None
            }
        },
    };
    let (Some(kind), Some(client), Some(occurred_at), true) =
        (kind, client, occurred_at, reasons.is_empty())
    else {
        return Err(reasons);
    };
    Ok((client, kind, occurred_at))
}

/// RFC 3339, or a bare date meaning midnight in the client's timezone.
fn parse_occurred_at(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(local_to_utc(tz, date.and_hms_opt(0, 0, 0)?))
}

/// Commits the good rows, or rolls everything back if there were bad rows and
/// the caller did not ask to skip them.
async fn finish(
    mut tx: sqlx::Transaction<'static, sqlx::Any>,
    options: ImportOptions,
    mut report: ImportReport,
    action: AuditAction,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportReport> {
    // Rows that could not be read are reported as they are met, the others
    // as their chunk is checked: put them back in file order.
    report.errors.sort_by_key(|e| e.line);
    let header_bad = report.errors.first().is_some_and(|e| e.line == 1);
    if header_bad || (!report.errors.is_empty() && !options.skip_invalid) {
        tx.rollback().await?;
        report.committed = false;
        return Ok(report);
    }
    audit::record(
        &mut tx,
        audit::Entry {
            actor: Actor::System("cli"),
            action,
            client_id: None,
            message_id: None,
            detail: Some(format!(
                "{} rows, {} new, {} updated, {} unchanged, {} bad",
                report.rows,
                report.created,
                report.updated,
                report.unchanged,
                report.errors.len()
            )),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    report.committed = true;
    Ok(report)
}

/// Why the API's one record was not taken.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// No such client, or not the caller's.
    #[error("no such client")]
    NotFound,
    /// The record's reasons, as a CSV import gives them.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<CaseError> for RecordError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Unexpected(e) => RecordError::Unexpected(e),
            _ => RecordError::NotFound,
        }
    }
}

/// Adds or updates one client as `coach`, checked exactly as a CSV row is.
/// A coach keeps clients for themselves (the record's coach defaults to
/// them); giving one to another coach is for admins. Returns the client and
/// whether they are new.
pub async fn put_client(
    ctx: &AppContext,
    coach: &CoachRow,
    mut record: ClientRecord,
    now: DateTime<Utc>,
) -> Result<(Client, bool), RecordError> {
    let external_id = record.external_id.clone().unwrap_or_default();
    let coach_email = record
        .coach_email
        .take()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| coach.email.clone());
    if !coach.is_admin() && !coach_email.eq_ignore_ascii_case(&coach.email) {
        return Err(RecordError::Invalid(vec![
            "coach_email: only an admin may assign a client to another coach".into(),
        ]));
    }
    record.coach_email = Some(coach_email);
    let mut tx = ctx.store.begin().await?;
    // Another coach's client is not there to change (nor to learn of).
    let scope = coaches::scope_for(&mut tx, coach, now).await?;
    if clients::by_external_id(&mut tx, &external_id)
        .await?
        .is_some_and(|c| !scope.includes(c.coach_id))
    {
        return Err(RecordError::NotFound);
    }
    let fields = ClientRules::load(ctx, &mut tx)
        .await?
        .check(&record)
        .map_err(RecordError::Invalid)?;
    let mut report = ImportReport::default();
    upsert_clients(
        &mut tx,
        &[fields],
        ctx.settings.first_step_after(),
        now,
        &mut report,
    )
    .await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    let mut conn = ctx.store.conn().await?;
    let client = clients::by_external_id(&mut conn, &external_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("client {external_id} vanished after its upsert"))?;
    Ok((client, report.created > 0))
}

/// Records one engagement event by `coach` (source `api`), with the same
/// effect as a CSV row: an engagement closes the open episode and cancels
/// unsent messages.
pub async fn record_event(
    ctx: &AppContext,
    coach: &CoachRow,
    record: &EventRecord,
    now: DateTime<Utc>,
) -> Result<events::Recorded, RecordError> {
    // The client read, and the event recorded, in one transaction.
    let mut tx = ctx.store.begin().await?;
    let client = match record.external_id.as_deref().map(str::trim) {
        Some(external_id) if !external_id.is_empty() => {
            let client = casework::visible_client_on(&mut tx, coach, external_id, now).await?;
            Some(EventTarget::from(&client))
        }
        _ => None,
    };
    let (client, kind, occurred_at) =
        check_event(&ctx.settings, record, client, now).map_err(RecordError::Invalid)?;
    let event = NewEvent {
        kind,
        occurred_at,
        source: "api",
        note: record.note.as_deref(),
        by: Some(coach.id),
    };
    let first_step = ctx.settings.first_step_after();
    let outcome = events::record(&mut tx, &client, &event, first_step, now).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok(outcome)
}
